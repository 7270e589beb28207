/* Unit tests for HTTP/1.x heads and the chunked coding (ws/http1.[ch]). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ws/http1.h"

static void test_head_len(void **state) {
  (void)state;
  const char *h = "HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody";
  assert_int_equal(http1_head_len(h, strlen(h)), strlen(h) - 4);
  /* Every prefix short of the empty line is incomplete. */
  for (size_t n = 0; n < strlen(h) - 4; n++)
    assert_int_equal(http1_head_len(h, n), 0);
  assert_int_equal(http1_head_len("\r\n\r\n", 4), 4);
  assert_int_equal(http1_head_len("a\n\n", 3), 0); /* bare LFs: not an end */
}

/* Feeds h the text in pieces of step bytes, as reads would; the result
 * of the last feed, with *taken the bytes all the feeds took. */
static int feed_split(http1_head_t *h, const char *in, size_t len, size_t step,
                      size_t *taken) {
  int rc = HTTP1_HEAD_MORE;
  *taken = 0;
  for (size_t off = 0; off < len && rc == HTTP1_HEAD_MORE; off += step) {
    size_t n = len - off < step ? len - off : step, used = 99999;
    rc = http1_head_feed(h, (const uint8_t *)in + off, n, &used);
    assert_true(used <= n);
    if (rc == HTTP1_HEAD_MORE)
      assert_int_equal(used, n);
    *taken += used;
  }
  return rc;
}

static void test_head_feed(void **state) {
  (void)state;
  static http1_head_t h;
  static char big[HTTP1_HEAD_MAX + 16];
  const char *in = "HTTP/1.1 101 Switching\r\nA: b\r\n\r\n\x81\x02hi";
  size_t hl = strlen(in) - 4, taken, used;

  /* Whole, and in every piece size (so the CRLF CRLF split every way):
   * the head and nothing after it, NUL-terminated. */
  for (size_t step = 1; step <= strlen(in); step++) {
    memset(&h, 0, sizeof(h));
    assert_int_equal(feed_split(&h, in, strlen(in), step, &taken),
                     HTTP1_HEAD_DONE);
    assert_int_equal(taken, hl);
    assert_int_equal(h.len, hl);
    assert_memory_equal(h.buf, in, hl);
    assert_int_equal(h.buf[hl], '\0');
  }
  /* Once DONE it takes nothing more. */
  assert_int_equal(http1_head_feed(&h, (const uint8_t *)"x", 1, &used),
                   HTTP1_HEAD_DONE);
  assert_int_equal(used, 0);
  assert_int_equal(h.len, hl);
  assert_string_equal(h.buf, "HTTP/1.1 101 Switching\r\nA: b\r\n\r\n");

  /* Nothing, and bare LFs: no end yet. */
  memset(&h, 0, sizeof(h));
  assert_int_equal(http1_head_feed(&h, NULL, 0, &used), HTTP1_HEAD_MORE);
  assert_int_equal(used, 0);
  assert_int_equal(feed_split(&h, "HTTP/1.1 200 OK\n\n", 17, 5, &taken),
                   HTTP1_HEAD_MORE);
  assert_int_equal(taken, 17);

  /* A head of exactly HTTP1_HEAD_MAX bytes fits. */
  memset(big, 'a', sizeof(big));
  memcpy(big + HTTP1_HEAD_MAX - 4, "\r\n\r\n", 4);
  for (size_t step = 1000; step <= sizeof(big); step += sizeof(big) - 1000) {
    memset(&h, 0, sizeof(h));
    assert_int_equal(feed_split(&h, big, sizeof(big), step, &taken),
                     HTTP1_HEAD_DONE);
    assert_int_equal(taken, HTTP1_HEAD_MAX);
    assert_int_equal(h.len, HTTP1_HEAD_MAX);
    assert_int_equal(h.buf[HTTP1_HEAD_MAX], '\0');
  }
  /* One byte more is too long: the buffer fills, the rest is not taken,
   * and it stays too long. */
  memcpy(big + HTTP1_HEAD_MAX - 4, "a\r\n\r\n", 5);
  memset(&h, 0, sizeof(h));
  assert_int_equal(feed_split(&h, big, HTTP1_HEAD_MAX - 1, 4096, &taken),
                   HTTP1_HEAD_MORE);
  assert_int_equal(http1_head_feed(&h, (const uint8_t *)big + taken,
                                   sizeof(big) - taken, &used),
                   HTTP1_HEAD_TOO_LONG);
  assert_int_equal(used, 1);
  assert_int_equal(h.len, HTTP1_HEAD_MAX);
  assert_int_equal(http1_head_feed(&h, (const uint8_t *)"\r\n\r\n", 4, &used),
                   HTTP1_HEAD_TOO_LONG);
  assert_int_equal(used, 0);
}

static void test_status(void **state) {
  (void)state;
  int st = 0;
  char reason[HTTP1_REASON_MAX];
  assert_int_equal(http1_status("HTTP/1.1 200 Connection established\r\n\r\n",
                                &st, reason, sizeof(reason)),
                   0);
  assert_int_equal(st, 200);
  assert_string_equal(reason, "Connection established");
  assert_int_equal(
      http1_status("HTTP/1.0 407 Proxy Authentication Required\r\n", &st,
                   reason, sizeof(reason)),
      0);
  assert_int_equal(st, 407);
  assert_string_equal(reason, "Proxy Authentication Required");
  /* No reason phrase at all, with and without the space. */
  assert_int_equal(http1_status("HTTP/1.1 204\r\n", &st, reason, 64), 0);
  assert_int_equal(st, 204);
  assert_string_equal(reason, "");
  assert_int_equal(http1_status("HTTP/1.1 500 \r\n", &st, reason, 64), 0);
  assert_string_equal(reason, "");
  /* Control characters from the network are not passed on; cut to fit. */
  assert_int_equal(
      http1_status("HTTP/1.1 403 a\x1b[31mb\r\n", &st, reason, sizeof(reason)),
      0);
  assert_string_equal(reason, "a?[31mb");
  assert_int_equal(http1_status("HTTP/1.1 403 abcdefgh\r\n", &st, reason, 4),
                   0);
  assert_string_equal(reason, "abc");
  /* Not HTTP/1.x NNN. */
  const char *bad[] = {"SSH-2.0-OpenSSH\r\n", "HTTP/2 200\r\n",
                       "HTTP/1.1 20\r\n",     "HTTP/1.1 2000\r\n",
                       "HTTP/1.1 099 x\r\n",  "HTTP/1.1  200\r\n",
                       "HTTP/1.x 200\r\n",    ""};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(http1_status(bad[i], &st, reason, sizeof(reason)), -1);
}

static void test_reason_phrase(void **state) {
  (void)state;
  static const struct {
    int status;
    const char *want;
  } cases[] = {
      {200, "OK"},
      {204, "No Content"},
      {304, "Not Modified"},
      {404, "Not Found"},
      {429, "Too Many Requests"},
      {431, "Request Header Fields Too Large"},
      {500, "Internal Server Error"},
      {505, "HTTP Version Not Supported"},
      /* Not listed: its class. */
      {299, "OK"},
      {418, "Client Error"},
      {599, "Server Error"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    assert_string_equal(http1_reason_phrase(cases[i].status), cases[i].want);
}

static void test_header(void **state) {
  (void)state;
  const char *h = "HTTP/1.1 101 Switching Protocols\r\n"
                  "Upgrade: websocket\r\n"
                  "content-LENGTH:   42  \r\n"
                  "X-Empty:\r\n"
                  "X-Long: 0123456789\r\n"
                  "\r\n";
  char v[64];
  assert_non_null(http1_header(h, "upgrade", v, sizeof(v)));
  assert_string_equal(v, "websocket");
  assert_non_null(http1_header(h, "Content-Length", v, sizeof(v)));
  assert_string_equal(v, "42");
  assert_non_null(http1_header(h, "x-empty", v, sizeof(v)));
  assert_string_equal(v, "");
  assert_non_null(http1_header(h, "x-long", v, 5));
  assert_string_equal(v, "0123");
  assert_null(http1_header(h, "x-none", v, sizeof(v)));
  /* A prefix of a name is not the name; the status line is no header. */
  assert_null(http1_header(h, "Upgrad", v, sizeof(v)));
  assert_null(http1_header("HTTP/1.1 200 OK:x\r\n\r\n", "HTTP/1.1 200 OK", v,
                           sizeof(v)));
  assert_true(http1_has_token("gzip, Chunked", "chunked"));
  assert_true(http1_has_token("chunked", "chunked"));
  assert_false(http1_has_token("chunkedx, gzip", "chunked"));
  assert_false(http1_has_token("", "chunked"));
}

typedef struct {
  char out[256];
  size_t len;
  int refuse;
} sink_t;

static int sink(void *ctx, const uint8_t *p, size_t n) {
  sink_t *s = ctx;
  if (s->refuse)
    return -1;
  assert_true(s->len + n < sizeof(s->out));
  memcpy(s->out + s->len, p, n);
  s->len += n;
  s->out[s->len] = '\0';
  return 0;
}

static int decode_split(const char *in, size_t step, sink_t *s,
                        size_t *consumed) {
  http1_chunked_t d;
  memset(&d, 0, sizeof(d));
  memset(s, 0, sizeof(*s));
  size_t len = strlen(in), used = 0;
  *consumed = 0;
  for (size_t i = 0; i < len; i += step) {
    size_t n = len - i < step ? len - i : step;
    int rc = http1_chunked(&d, (const uint8_t *)in + i, n, &used, sink, s);
    *consumed += used;
    if (rc != HTTP1_CHUNKED_MORE)
      return rc;
  }
  return HTTP1_CHUNKED_MORE;
}

static void test_chunked(void **state) {
  (void)state;
  const char *body = "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n"
                     "Trailer: x\r\n\r\nNEXT";
  sink_t s;
  size_t consumed;
  /* Split at every size, the answer is the same. */
  for (size_t step = 1; step <= strlen(body); step++) {
    assert_int_equal(decode_split(body, step, &s, &consumed),
                     HTTP1_CHUNKED_DONE);
    assert_string_equal(s.out, "hello, world");
    assert_int_equal(consumed, strlen(body) - 4); /* not NEXT */
  }
  assert_int_equal(
      decode_split("A\r\n0123456789\r\n0\r\n\r\n", 3, &s, &consumed),
      HTTP1_CHUNKED_DONE);
  assert_string_equal(s.out, "0123456789");
  /* Bare LFs are tolerated. */
  assert_int_equal(decode_split("2\nab\n0\n\n", 1, &s, &consumed),
                   HTTP1_CHUNKED_DONE);
  assert_string_equal(s.out, "ab");
  /* Incomplete. */
  assert_int_equal(decode_split("5\r\nhel", 2, &s, &consumed),
                   HTTP1_CHUNKED_MORE);
  /* Malformed: no size, a bad digit, data overrunning its size, a size
   * that does not fit. */
  const char *bad[] = {"\r\n", "g\r\n", "2\r\nabc\r\n", "2\r\nab\rx",
                       "fffffffffffffffff\r\n"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(decode_split(bad[i], 1, &s, &consumed),
                     HTTP1_CHUNKED_ERROR);
  /* A sink that refuses stops it. */
  http1_chunked_t d;
  memset(&d, 0, sizeof(d));
  memset(&s, 0, sizeof(s));
  s.refuse = 1;
  assert_int_equal(
      http1_chunked(&d, (const uint8_t *)"1\r\na", 4, &consumed, sink, &s),
      HTTP1_CHUNKED_ERROR);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_head_len), cmocka_unit_test(test_head_feed),
      cmocka_unit_test(test_status),   cmocka_unit_test(test_header),
      cmocka_unit_test(test_chunked),  cmocka_unit_test(test_reason_phrase),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
