/*
 * libFuzzer target for the frame codec.
 *
 * Input layout: byte 0 = (stop_at << 3) | nsizes, then nsizes chunk-size
 * bytes, then the body, fed to frame_reader_feed as one WebSocket message in
 * chunks of those sizes (cycled; 0 feeds an empty chunk, then one byte).
 * stop_at != 0 makes the callback stop on that frame.
 *
 * Oracles: the reader must deliver exactly the frames a plain frame_decode
 * loop finds in the body and fail with the same error where that loop stops
 * (FRAME_ETRUNCATED for FRAME_ENEED); every decoded control frame must
 * re-encode to its own bytes and decode back to equal fields.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/check.h"
#include "ws/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int bytes_equal(const void *a, const void *b, size_t n) {
  return n == 0 || memcmp(a, b, n) == 0;
}

static int frames_equal(const frame_t *a, const frame_t *b) {
  return a->type == b->type && a->stream_id == b->stream_id &&
         a->length == b->length && a->window == b->window &&
         a->code == b->code && a->last_stream_id == b->last_stream_id &&
         a->reason_len == b->reason_len &&
         (a->ping == NULL) == (b->ping == NULL) &&
         bytes_equal(a->payload, b->payload, a->length) &&
         bytes_equal(a->reason, b->reason, a->reason_len) &&
         (a->ping == NULL || bytes_equal(a->ping, b->ping, FRAME_PING_LEN));
}

/* f was decoded from wire, so its encoding must be exactly those bytes. */
static void check_reencode(const frame_t *f, const uint8_t *wire) {
  /* Any frame but DATA: RESUME can be as large as a full payload. */
  static uint8_t out[FRAME_HEADER_LEN + FRAME_MAX_PAYLOAD];
  size_t n, used;
  frame_t g;

  if (f->type == FRAME_DATA)
    return;
  n = frame_encode(out, sizeof out, f);
  CHECK(n == FRAME_HEADER_LEN + f->length);
  CHECK(memcmp(out, wire, n) == 0);
  CHECK(frame_encode(out, n - 1, f) == 0);
  CHECK(frame_decode(out, n, &g, &used) == FRAME_OK);
  CHECK(used == n);
  CHECK(frames_equal(f, &g));
}

typedef struct {
  const uint8_t *body;
  size_t len;
  size_t off; /* where the reference decoder is in body */
  int frames;
  int stop_at;
} oracle_t;

static int on_frame(void *ctx, const frame_t *f) {
  oracle_t *o = ctx;
  frame_t want;
  size_t used;

  CHECK(frame_decode(o->body + o->off, o->len - o->off, &want, &used) ==
        FRAME_OK);
  CHECK(frames_equal(f, &want));
  check_reencode(f, o->body + o->off);
  o->off += used;
  o->frames++;
  return o->frames == o->stop_at ? 1000 + o->frames : 0;
}

static int feed_chunks(frame_reader_t *r, oracle_t *o, const uint8_t *sizes,
                       size_t nsizes) {
  size_t pos = 0;
  size_t i = 0;
  int rc = FRAME_OK;

  do {
    size_t n = nsizes == 0 ? o->len : sizes[i++ % nsizes];

    if (n == 0) {
      rc = frame_reader_feed(r, o->body + pos, 0, 0, on_frame, o);
      n = 1;
    }
    if (n > o->len - pos)
      n = o->len - pos;
    if (rc == FRAME_OK)
      rc = frame_reader_feed(r, o->body + pos, n, pos + n == o->len, on_frame,
                             o);
    pos += n;
  } while (rc == FRAME_OK && pos < o->len);
  CHECK(r->cap <= FRAME_HEADER_LEN + FRAME_MAX_PAYLOAD);
  return rc;
}

static void check_reader(const uint8_t *data, size_t size) {
  size_t nsizes = data[0] & 7;
  oracle_t o = {.stop_at = data[0] >> 3};
  frame_reader_t r;
  frame_t f;
  size_t used;
  int rc, want;

  if (size < 1 + nsizes)
    return;
  o.body = data + 1 + nsizes;
  o.len = size - 1 - nsizes;
  frame_reader_init(&r);
  rc = feed_chunks(&r, &o, data + 1, nsizes);
  frame_reader_free(&r);
  if (rc > 0) {
    CHECK(rc == 1000 + o.stop_at && o.frames == o.stop_at);
    return;
  }
  if (o.off == o.len) {
    CHECK(rc == FRAME_OK);
    return;
  }
  want = frame_decode(o.body + o.off, o.len - o.off, &f, &used);
  CHECK(want != FRAME_OK);
  CHECK(rc == (want == FRAME_ENEED ? FRAME_ETRUNCATED : want));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  frame_t f;
  size_t used;

  if (frame_decode(data, size, &f, &used) == FRAME_OK) {
    CHECK(used >= FRAME_HEADER_LEN && used <= size);
    check_reencode(&f, data);
  }
  if (size > 0)
    check_reader(data, size);
  return 0;
}
