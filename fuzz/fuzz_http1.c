/*
 * libFuzzer target for what the client reads over HTTP and the proxy
 * settings it is given: ws/http1.c (response heads, the chunked coding)
 * and ws/http_proxy.c (proxy URLs, NO_PROXY lists, the CONNECT request).
 *
 * Input layout: byte 0 = mode (mod 4) and, in its high bits, a chunk size
 * seed; the rest is the text.
 *   0: a response head: http1_head_len(), then on the head (NUL-terminated)
 *      http1_status() and http1_header() for a few names; and the same
 *      bytes fed to http1_head_feed() in pieces (sizes from the seed).
 *      Oracle: the head length is within the input and ends with CRLF
 *      CRLF; a status is 100-999 and its reason printable ASCII; a header
 *      value fits; the feeds find the same head, or are too long exactly
 *      when it does not end within HTTP1_HEAD_MAX bytes.
 *   1: a chunked body, decoded whole and in chunks (sizes cycled from the
 *      seed). Oracle: both runs give the same bytes and the same outcome,
 *      and DONE's used count is the same.
 *   2: a proxy URL. Oracle: a parsed URL has a host, a port 1-65535, a
 *      display form without the password or user, and gives a CONNECT
 *      request that ends with CRLF CRLF; a failed one leaves no credentials
 *      behind.
 *   3: "LIST\nHOST": NO_PROXY list and host. Oracle: "*" added to the list
 *      always matches; the matching entry fits its buffer.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/check.h"
#include "ws/http1.h"
#include "ws/http_proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BODY_MAX 8192

static int printable(const char *s) {
  for (; *s; s++)
    if (*s < ' ' || *s > '~')
      return 0;
  return 1;
}

/* in[0..len), whose head is hl bytes (0: no end), fed in pieces. */
static void feed_head(const uint8_t *in, size_t len, size_t hl, size_t step) {
  static http1_head_t h;
  size_t taken = 0;
  int rc = HTTP1_HEAD_MORE;
  memset(&h, 0, sizeof(h));
  for (size_t off = 0; off < len && rc == HTTP1_HEAD_MORE; off += step) {
    size_t n = len - off < step ? len - off : step, used;
    rc = http1_head_feed(&h, in + off, n, &used);
    CHECK(used <= n && (rc != HTTP1_HEAD_MORE || used == n));
    taken += used;
  }
  if (hl > 0 && hl <= HTTP1_HEAD_MAX) {
    CHECK(rc == HTTP1_HEAD_DONE && taken == hl && h.len == hl);
    CHECK(memcmp(h.buf, in, hl) == 0 && h.buf[hl] == '\0');
  } else if (len >= HTTP1_HEAD_MAX) {
    CHECK(rc == HTTP1_HEAD_TOO_LONG && taken == HTTP1_HEAD_MAX);
    CHECK(h.len == HTTP1_HEAD_MAX);
  } else {
    CHECK(rc == HTTP1_HEAD_MORE && taken == len);
  }
}

static void fuzz_head(const uint8_t *in, size_t len, uint8_t seed) {
  char *buf = malloc(len + 1);
  CHECK(buf != NULL);
  memcpy(buf, in, len);
  size_t hl = http1_head_len(buf, len);
  CHECK(hl <= len);
  feed_head(in, len, hl, seed ? seed : 1);
  if (hl > 0) {
    CHECK(hl >= 4 && memcmp(buf + hl - 4, "\r\n\r\n", 4) == 0);
    buf[hl] = '\0';
    int status;
    char reason[HTTP1_REASON_MAX], v[32];
    if (http1_status(buf, &status, reason, sizeof(reason)) == 0) {
      CHECK(status >= 100 && status <= 999);
      CHECK(strlen(reason) < sizeof(reason) && printable(reason));
    }
    const char *names[] = {"content-length", "transfer-encoding", "upgrade",
                           "x"};
    for (size_t i = 0; i < 4; i++)
      if (http1_header(buf, names[i], v, sizeof(v)) != NULL) {
        CHECK(strlen(v) < sizeof(v));
        (void)http1_has_token(v, "chunked");
      }
  }
  free(buf);
}

typedef struct {
  uint8_t out[BODY_MAX];
  size_t len;
} body_t;

static int sink(void *ctx, const uint8_t *p, size_t n) {
  body_t *b = ctx;
  if (n > BODY_MAX - b->len)
    return -1; /* too much: both runs stop at the same byte */
  memcpy(b->out + b->len, p, n);
  b->len += n;
  return 0;
}

static int chunked_run(const uint8_t *in, size_t len, size_t step, body_t *b,
                       size_t *consumed) {
  http1_chunked_t d;
  memset(&d, 0, sizeof(d));
  b->len = 0;
  *consumed = 0;
  for (size_t off = 0; off < len;) {
    size_t n = len - off < step ? len - off : step, used = 0;
    int rc = http1_chunked(&d, in + off, n, &used, sink, b);
    CHECK(used <= n);
    *consumed += used;
    if (rc != HTTP1_CHUNKED_MORE)
      return rc;
    CHECK(used == n);
    off += n;
  }
  return HTTP1_CHUNKED_MORE;
}

static void fuzz_chunked(const uint8_t *in, size_t len, uint8_t seed) {
  static body_t whole, parts;
  size_t cw, cp;
  int rw = chunked_run(in, len, len ? len : 1, &whole, &cw);
  int rp = chunked_run(in, len, seed ? seed : 1, &parts, &cp);
  if (rw == HTTP1_CHUNKED_ERROR || rp == HTTP1_CHUNKED_ERROR) {
    /* The error may come at a different place in the data handed out (a
     * chunk cut by the sink), but it comes. */
    CHECK(rw == rp);
    return;
  }
  CHECK(rw == rp);
  CHECK(whole.len == parts.len);
  CHECK(memcmp(whole.out, parts.out, whole.len) == 0);
  if (rw == HTTP1_CHUNKED_DONE)
    CHECK(cw == cp);
}

static void fuzz_url(const uint8_t *in, size_t len) {
  char url[512], err[256], req[HTTP_PROXY_REQUEST_MAX];
  if (len >= sizeof(url))
    len = sizeof(url) - 1;
  memcpy(url, in, len);
  url[len] = '\0';
  http_proxy_t p;
  if (http_proxy_parse(url, &p, err, sizeof(err)) != 0) {
    CHECK(p.user[0] == '\0' && p.pass[0] == '\0' && !p.has_auth);
    return;
  }
  CHECK(p.host[0] != '\0');
  CHECK(p.port >= 1 && p.port <= 65535);
  CHECK(strncmp(p.display, "http://", 7) == 0);
  CHECK(strchr(p.display + 7, '@') == NULL || p.has_auth);
  if (p.has_auth)
    CHECK(strncmp(p.display + 7, "***@", 4) == 0);
  int n = http_proxy_connect_request(&p, "edge.example", 443, req, sizeof(req));
  CHECK(n > 0 && strcmp(req + n - 4, "\r\n\r\n") == 0);
  http_proxy_clear(&p);
}

static void fuzz_no_proxy(const uint8_t *in, size_t len) {
  char list[1024], host[300], entry[96];
  const uint8_t *nl = memchr(in, '\n', len);
  size_t ll = nl ? (size_t)(nl - in) : len;
  size_t hl = nl ? len - ll - 1 : 0;
  if (ll > sizeof(list) - 3)
    ll = sizeof(list) - 3;
  if (hl >= sizeof(host))
    hl = sizeof(host) - 1;
  memcpy(list, in, ll);
  list[ll] = '\0';
  if (memchr(list, '\0', ll) != NULL)
    return; /* the environment cannot hold a NUL */
  memcpy(host, nl ? nl + 1 : in, hl);
  host[hl] = '\0';
  int port = 1 + (int)(len % 65535);
  if (http_proxy_bypass(list, host, port, entry, sizeof(entry)))
    CHECK(strlen(entry) < sizeof(entry) && printable(entry));
  size_t n = strlen(list);
  memcpy(list + n, ",*", 3);
  /* "*" matches any host that is one: not empty, not all dots, not "[]". */
  size_t h = strlen(host);
  int usable = h > 0 && h < 250;
  for (size_t i = 0; i < h && usable; i++)
    usable = host[i] != '.' && host[i] != '[';
  if (usable)
    CHECK(http_proxy_bypass(list, host, port, entry, sizeof(entry)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  uint8_t mode = data[0] & 3, seed = data[0] >> 2;
  data++;
  size--;
  switch (mode) {
  case 0:
    fuzz_head(data, size, seed);
    break;
  case 1:
    fuzz_chunked(data, size, seed);
    break;
  case 2:
    fuzz_url(data, size);
    break;
  default:
    fuzz_no_proxy(data, size);
    break;
  }
  return 0;
}
