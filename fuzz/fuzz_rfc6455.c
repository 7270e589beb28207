/*
 * libFuzzer target for the client-side WebSocket parser (ws/rfc6455.c).
 *
 * Input layout: byte 0 = chunk size seed, the rest is the server's byte
 * stream. It is parsed twice: whole, and in chunks (sizes cycled from the
 * seed). Oracle: both runs deliver the same events (data bytes, message
 * ends, control frames) and stop with the same error; data never exceeds
 * the message limit; a control payload is at most 125 bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/check.h"
#include "ws/rfc6455.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LIMIT 4096

typedef struct {
  uint8_t log[1 << 16]; /* events, serialised */
  size_t len;
} trace_t;

static void put(trace_t *t, const void *p, size_t n) {
  if (n > sizeof(t->log) - t->len)
    n = sizeof(t->log) - t->len;
  memcpy(t->log + t->len, p, n);
  t->len += n;
}

static int on_data(void *ctx, const uint8_t *p, size_t n, int eom) {
  CHECK(n <= LIMIT);
  put(ctx, p, n);
  if (eom)
    put(ctx, "|EOM|", 5);
  return 0;
}

static int on_control(void *ctx, int opcode, const uint8_t *p, size_t n) {
  CHECK(n <= RFC6455_CONTROL_MAX);
  CHECK(opcode == RFC6455_OP_CLOSE || opcode == RFC6455_OP_PING ||
        opcode == RFC6455_OP_PONG);
  uint8_t op = (uint8_t)opcode;
  put(ctx, "|C", 2);
  put(ctx, &op, 1);
  put(ctx, p, n);
  return 0;
}

static const rfc6455_handlers_t handlers = {on_data, on_control};

static int run(const uint8_t *in, size_t len, uint8_t seed, trace_t *t,
               rfc6455_error_t *err) {
  rfc6455_parser_t p;
  rfc6455_parser_init(&p, LIMIT);
  size_t step = seed ? seed : len;
  for (size_t off = 0; off < len;) {
    size_t n = len - off < step ? len - off : step;
    if (rfc6455_parse(&p, in + off, n, &handlers, t, err) != 0)
      return -1;
    off += n;
    step = step % 17 + 1; /* vary the chunk sizes */
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  static trace_t a, b;
  a.len = b.len = 0;
  rfc6455_error_t ea, eb;
  int ra = run(data + 1, size - 1, 0, &a, &ea);
  int rb = run(data + 1, size - 1, data[0], &b, &eb);
  CHECK(ra == rb);
  if (ra != 0) {
    CHECK(ea.close_code == eb.close_code);
    CHECK(strcmp(ea.message, eb.message) == 0);
    /* Events before the error are the same, the split run may stop a
     * little earlier only when the whole run had nothing more to say. */
  }
  CHECK(a.len == b.len);
  CHECK(memcmp(a.log, b.log, a.len) == 0);
  return 0;
}
