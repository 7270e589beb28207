/* Unit tests for the client-side WebSocket codec (ws/rfc6455.[ch]). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ws/rfc6455.h"

/* What the parser delivered: data bytes, message ends, control frames. */
typedef struct {
  uint8_t data[4096];
  size_t data_len;
  int messages;
  int controls[8];
  uint8_t ctrl_data[8][RFC6455_CONTROL_MAX];
  size_t ctrl_len[8];
  int ncontrols;
  int stop_on_data; /* return -1 from on_data */
} events_t;

static int on_data(void *ctx, const uint8_t *p, size_t n, int eom) {
  events_t *e = ctx;
  assert_true(e->data_len + n <= sizeof(e->data));
  memcpy(e->data + e->data_len, p, n);
  e->data_len += n;
  e->messages += eom;
  return e->stop_on_data ? -1 : 0;
}

static int on_control(void *ctx, int opcode, const uint8_t *p, size_t n) {
  events_t *e = ctx;
  assert_true(e->ncontrols < 8);
  e->controls[e->ncontrols] = opcode;
  memcpy(e->ctrl_data[e->ncontrols], p, n);
  e->ctrl_len[e->ncontrols++] = n;
  return 0;
}

static const rfc6455_handlers_t handlers = {on_data, on_control};

/* Feed in pieces of `step` bytes (0: all at once). */
static int feed(events_t *e, const uint8_t *in, size_t len, size_t step,
                rfc6455_error_t *err) {
  rfc6455_parser_t p;
  rfc6455_parser_init(&p, 1024);
  memset(e, 0, sizeof(*e));
  if (step == 0)
    step = len ? len : 1;
  for (size_t off = 0; off < len; off += step) {
    size_t n = len - off < step ? len - off : step;
    if (rfc6455_parse(&p, in + off, n, &handlers, e, err) != 0)
      return -1;
  }
  return 0;
}

static void test_accept_rfc_vector(void **state) {
  (void)state;
  char out[RFC6455_ACCEPT_LEN + 1];
  rfc6455_accept_for("dGhlIHNhbXBsZSBub25jZQ==", out);
  assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  char key[RFC6455_KEY_LEN + 1], key2[RFC6455_KEY_LEN + 1];
  assert_int_equal(rfc6455_key_new(key), 0);
  assert_int_equal(rfc6455_key_new(key2), 0);
  assert_int_equal(strlen(key), RFC6455_KEY_LEN);
  assert_string_not_equal(key, key2);
}

static void test_header_lengths(void **state) {
  (void)state;
  const uint8_t m[4] = {1, 2, 3, 4};
  uint8_t h[RFC6455_HEADER_MAX];
  assert_int_equal(rfc6455_header_put(h, RFC6455_OP_BINARY, 125, m), 6);
  assert_int_equal(h[0], 0x82);
  assert_int_equal(h[1], 0x80 | 125);
  assert_memory_equal(h + 2, m, 4);
  assert_int_equal(rfc6455_header_put(h, RFC6455_OP_BINARY, 126, m), 8);
  assert_int_equal(h[1], 0x80 | 126);
  assert_int_equal(h[2], 0);
  assert_int_equal(h[3], 126);
  assert_int_equal(rfc6455_header_put(h, RFC6455_OP_CLOSE, 65535, m), 8);
  assert_int_equal(h[0], 0x88);
  assert_int_equal(rfc6455_header_put(h, RFC6455_OP_BINARY, 65536, m), 14);
  assert_int_equal(h[1], 0x80 | 127);
  assert_int_equal(h[7], 1); /* 0x0000000000010000, big-endian */
  assert_int_equal(h[8], 0);
  assert_memory_equal(h + 10, m, 4);
}

static void test_mask_matches_bytewise(void **state) {
  (void)state;
  const uint8_t m[4] = {0xa1, 0x02, 0xf3, 0x44};
  uint8_t buf[300], ref[300];
  for (size_t i = 0; i < sizeof(buf); i++)
    buf[i] = (uint8_t)(i * 7);
  for (uint64_t off = 0; off < 5; off++) {
    for (size_t n = 0; n < 40; n++) {
      memcpy(ref, buf, sizeof(buf));
      uint8_t got[300];
      memcpy(got, buf, sizeof(buf));
      for (size_t i = 0; i < n; i++)
        ref[3 + i] ^= m[(off + i) & 3];
      rfc6455_mask(got + 3, n, m, off);
      assert_memory_equal(got, ref, sizeof(buf));
      rfc6455_mask(got + 3, n, m, off);
      assert_memory_equal(got, buf, sizeof(buf));
    }
  }
}

static void test_parse_split_anywhere(void **state) {
  (void)state;
  /* "he" (not final) + ping "x" + continuation "llo" (final) + binary
   * 200 bytes with a 16-bit length + close 1000 "bye". */
  uint8_t in[512];
  size_t n = 0;
  const uint8_t a[] = {0x02, 2, 'h', 'e', 0x89, 1, 'x', 0x80, 3, 'l', 'l', 'o'};
  memcpy(in, a, sizeof(a));
  n = sizeof(a);
  in[n++] = 0x82;
  in[n++] = 126;
  in[n++] = 0;
  in[n++] = 200;
  for (int i = 0; i < 200; i++)
    in[n++] = (uint8_t)i;
  const uint8_t c[] = {0x88, 5, 0x03, 0xe8, 'b', 'y', 'e'};
  memcpy(in + n, c, sizeof(c));
  n += sizeof(c);
  for (size_t step = 0; step <= 13; step++) {
    events_t e;
    rfc6455_error_t err;
    assert_int_equal(feed(&e, in, n, step, &err), 0);
    assert_int_equal(e.data_len, 205);
    assert_memory_equal(e.data, "hello", 5);
    assert_int_equal(e.data[5 + 199], 199);
    assert_int_equal(e.messages, 2);
    assert_int_equal(e.ncontrols, 2);
    assert_int_equal(e.controls[0], RFC6455_OP_PING);
    assert_int_equal(e.ctrl_len[0], 1);
    assert_int_equal(e.controls[1], RFC6455_OP_CLOSE);
    assert_memory_equal(e.ctrl_data[1],
                        "\x03\xe8"
                        "bye",
                        5);
  }
}

static void test_empty_frames(void **state) {
  (void)state;
  const uint8_t in[] = {0x82, 0, 0x8a, 0};
  events_t e;
  rfc6455_error_t err;
  assert_int_equal(feed(&e, in, sizeof(in), 1, &err), 0);
  assert_int_equal(e.messages, 1);
  assert_int_equal(e.data_len, 0);
  assert_int_equal(e.ncontrols, 1);
  assert_int_equal(e.controls[0], RFC6455_OP_PONG);
}

static void expect_error(const uint8_t *in, size_t n, int code,
                         const char *words) {
  events_t e;
  rfc6455_error_t err;
  assert_int_equal(feed(&e, in, n, 1, &err), -1);
  assert_int_equal(err.close_code, code);
  assert_non_null(strstr(err.message, words));
}

static void test_errors(void **state) {
  (void)state;
  expect_error((const uint8_t[]){0x82, 0x81, 1, 2, 3, 4, 'x'}, 7, 1002,
               "masked");
  expect_error((const uint8_t[]){0xc2, 0}, 2, 1002, "reserved");
  expect_error((const uint8_t[]){0x89, 126, 0, 126}, 4, 1002, "control");
  expect_error((const uint8_t[]){0x09, 0}, 2, 1002, "control");
  expect_error((const uint8_t[]){0x80, 0}, 2, 1002, "continuation");
  expect_error((const uint8_t[]){0x02, 0, 0x82, 0}, 4, 1002, "inside");
  expect_error((const uint8_t[]){0x83, 0}, 2, 1002, "opcode");
  expect_error((const uint8_t[]){0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0}, 10,
               1002, "range");
  /* The limit is 1024 bytes per message, also across fragments. */
  expect_error((const uint8_t[]){0x82, 126, 0x04, 0x01}, 4, 1009, "too big");
}

static void test_fragments_count_toward_limit(void **state) {
  (void)state;
  uint8_t in[4 + 1000 + 4];
  memset(in, 0, sizeof(in));
  in[0] = 0x02;
  in[1] = 126;
  in[2] = 0x03;
  in[3] = 0xe8; /* 1000 */
  in[1004] = 0x80;
  in[1005] = 126;
  in[1006] = 0;
  in[1007] = 25; /* 1025 in all */
  events_t e;
  rfc6455_error_t err;
  assert_int_equal(feed(&e, in, sizeof(in), 0, &err), -1);
  assert_int_equal(err.close_code, 1009);
}

static void test_callback_stops(void **state) {
  (void)state;
  const uint8_t in[] = {0x82, 1, 'a', 0x82, 1, 'b'};
  rfc6455_parser_t p;
  rfc6455_parser_init(&p, 0);
  events_t e;
  memset(&e, 0, sizeof(e));
  e.stop_on_data = 1;
  rfc6455_error_t err;
  assert_int_equal(rfc6455_parse(&p, in, sizeof(in), &handlers, &e, &err), -1);
  assert_int_equal(err.close_code, 0);
  assert_int_equal(e.data_len, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_accept_rfc_vector),
      cmocka_unit_test(test_header_lengths),
      cmocka_unit_test(test_mask_matches_bytewise),
      cmocka_unit_test(test_parse_split_anywhere),
      cmocka_unit_test(test_empty_frames),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_fragments_count_toward_limit),
      cmocka_unit_test(test_callback_stops),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
