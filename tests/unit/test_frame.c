/* Unit tests for the frame codec (ws/frame.[ch], docs/PROTOCOL.md section 2).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ws/frame.h"

#define BE16(x) (uint8_t)((x) >> 8), (uint8_t)(x)
#define BE32(x)                                                                \
  (uint8_t)((x) >> 24), (uint8_t)((x) >> 16), (uint8_t)((x) >> 8), (uint8_t)(x)
#define HDR(type, flags, reserved, sid, len)                                   \
  (type), (flags), BE16(reserved), BE32(sid), BE32(len)

/* ---- helpers ---------------------------------------------------------- */

static frame_t decode_ok(const uint8_t *buf, size_t len) {
  frame_t f;
  size_t used = 0;

  assert_int_equal(frame_decode(buf, len, &f, &used), FRAME_OK);
  assert_int_equal(used, len);
  return f;
}

/* Encode f, decode it back and check every typed field survived. */
static frame_t roundtrip(const frame_t *in, uint8_t *out, size_t cap) {
  size_t n = frame_encode(out, cap, in);
  frame_t f;

  assert_true(n >= FRAME_HEADER_LEN);
  assert_int_equal(frame_encode(out, n - 1, in), 0);
  f = decode_ok(out, n);
  assert_int_equal(f.type, in->type);
  assert_int_equal(f.stream_id, in->stream_id);
  assert_int_equal(f.length, n - FRAME_HEADER_LEN);
  assert_ptr_equal(f.payload, out + FRAME_HEADER_LEN);
  return f;
}

/* ---- round trips -------------------------------------------------------- */

static void test_roundtrip_window_types(void **state) {
  static const uint8_t types[] = {FRAME_OPEN, FRAME_OPEN_OK, FRAME_WINDOW};
  uint8_t out[64];

  for (size_t i = 0; i < sizeof types; i++) {
    frame_t in = {
        .type = types[i], .stream_id = 0x80000001u, .window = 0xfedcba98u};
    frame_t f = roundtrip(&in, out, sizeof out);

    assert_int_equal(f.length, 4);
    assert_int_equal(f.window, 0xfedcba98u);
    assert_int_equal(f.code, 0);
    assert_null(f.reason);
    assert_null(f.ping);
  }
}

static void test_roundtrip_fin(void **state) {
  uint8_t out[FRAME_HEADER_LEN];
  frame_t in = {.type = FRAME_FIN, .stream_id = 7, .window = 99};
  frame_t f = roundtrip(&in, out, sizeof out);
  static const uint8_t wire[] = {HDR(FRAME_FIN, 0, 0, 7, 0)};

  assert_int_equal(f.length, 0);
  assert_int_equal(f.window, 0);
  assert_memory_equal(out, wire, sizeof wire);
}

static void test_roundtrip_ping_pong(void **state) {
  static const uint8_t ping[FRAME_PING_LEN] = {1, 2, 3, 4, 5, 6, 7, 0xff};
  uint8_t out[64];

  for (uint8_t t = FRAME_PING; t <= FRAME_PONG; t++) {
    frame_t in = {.type = t, .ping = ping};
    frame_t f = roundtrip(&in, out, sizeof out);

    assert_int_equal(f.length, FRAME_PING_LEN);
    assert_non_null(f.ping);
    assert_memory_equal(f.ping, ping, FRAME_PING_LEN);
  }
}

static void test_roundtrip_code_types(void **state) {
  static const uint8_t types[] = {FRAME_OPEN_FAIL, FRAME_RST};
  static const char text[] = "connection refused";
  uint8_t out[256];

  for (size_t i = 0; i < sizeof types; i++) {
    frame_t in = {.type = types[i],
                  .stream_id = 3,
                  .code = FRAME_CODE_REFUSED,
                  .reason = text,
                  .reason_len = strlen(text)};
    frame_t f = roundtrip(&in, out, sizeof out);

    assert_int_equal(f.length, 2 + strlen(text));
    assert_int_equal(f.code, FRAME_CODE_REFUSED);
    assert_int_equal(f.reason_len, strlen(text));
    assert_memory_equal(f.reason, text, strlen(text));
    assert_int_equal(f.last_stream_id, 0);
  }
}

static void test_roundtrip_goaway(void **state) {
  uint8_t out[64];
  frame_t in = {.type = FRAME_GOAWAY,
                .last_stream_id = 41,
                .code = FRAME_CODE_SHUTDOWN,
                .reason = "bye",
                .reason_len = 3};
  frame_t f = roundtrip(&in, out, sizeof out);
  static const uint8_t wire[] = {
      HDR(FRAME_GOAWAY, 0, 0, 0, 9), BE32(41), BE16(10), 'b', 'y', 'e'};

  assert_int_equal(f.last_stream_id, 41);
  assert_int_equal(f.code, FRAME_CODE_SHUTDOWN);
  assert_int_equal(f.reason_len, 3);
  assert_memory_equal(out, wire, sizeof wire);
}

static void test_roundtrip_empty_reason(void **state) {
  uint8_t out[64];
  frame_t in = {.type = FRAME_RST, .stream_id = 5, .code = 7};
  frame_t f = roundtrip(&in, out, sizeof out);

  assert_int_equal(f.length, 2);
  assert_int_equal(f.reason_len, 0);
  assert_int_equal(f.code, 7);
}

/* A reason over FRAME_REASON_MAX is cut, and the result still decodes. */
static void test_roundtrip_reason_cut(void **state) {
  static const uint8_t types[] = {FRAME_OPEN_FAIL, FRAME_RST, FRAME_GOAWAY};
  char text[FRAME_REASON_MAX + 100];
  uint8_t out[FRAME_CONTROL_MAX];

  for (size_t i = 0; i < sizeof text; i++)
    text[i] = (char)('a' + i % 26);
  for (size_t i = 0; i < sizeof types; i++) {
    frame_t in = {.type = types[i],
                  .code = FRAME_CODE_INTERNAL,
                  .stream_id = types[i] == FRAME_GOAWAY ? 0 : 9,
                  .reason = text,
                  .reason_len = sizeof text};
    frame_t f = roundtrip(&in, out, sizeof out);

    assert_int_equal(f.reason_len, FRAME_REASON_MAX);
    assert_memory_equal(f.reason, text, FRAME_REASON_MAX);
    if (types[i] == FRAME_GOAWAY)
      assert_int_equal(frame_encode(out, sizeof out, &in), FRAME_CONTROL_MAX);
  }
}

static void test_encode_refuses(void **state) {
  uint8_t out[FRAME_CONTROL_MAX];
  frame_t data = {.type = FRAME_DATA, .stream_id = 1};
  frame_t unknown = {.type = 0x0D, .stream_id = 1};
  frame_t zero = {.type = 0};
  frame_t open = {.type = FRAME_OPEN, .stream_id = 1, .window = 1};

  assert_int_equal(frame_encode(out, sizeof out, &data), 0);
  assert_int_equal(frame_encode(out, sizeof out, &unknown), 0);
  assert_int_equal(frame_encode(out, sizeof out, &zero), 0);
  assert_int_equal(frame_encode(out, 0, &open), 0);
  assert_int_equal(frame_encode(out, FRAME_HEADER_LEN + 3, &open), 0);
  assert_int_equal(frame_encode(out, FRAME_HEADER_LEN + 4, &open),
                   FRAME_HEADER_LEN + 4);
}

static void check_data(size_t n) {
  uint8_t *buf = malloc(FRAME_HEADER_LEN + n);
  frame_t f;

  assert_non_null(buf);
  assert_int_equal(
      frame_encode_header(buf, FRAME_DATA, 0xffffffffu, (uint32_t)n),
      FRAME_HEADER_LEN);
  for (size_t i = 0; i < n; i++)
    buf[FRAME_HEADER_LEN + i] = (uint8_t)(i * 7);
  f = decode_ok(buf, FRAME_HEADER_LEN + n);
  assert_int_equal(f.type, FRAME_DATA);
  assert_int_equal(f.stream_id, 0xffffffffu);
  assert_int_equal(f.length, n);
  assert_ptr_equal(f.payload, buf + FRAME_HEADER_LEN);
  assert_int_equal(f.window, 0);
  assert_null(f.reason);
  assert_null(f.ping);
  free(buf);
}

static void test_roundtrip_data(void **state) {
  check_data(1);
  check_data(1000);
  check_data(FRAME_MAX_PAYLOAD);
}

static void test_encode_header_bytes(void **state) {
  uint8_t out[FRAME_HEADER_LEN];
  static const uint8_t want[] = {HDR(FRAME_DATA, 0, 0, 0x01020304u, 0x10000)};

  assert_int_equal(frame_encode_header(out, FRAME_DATA, 0x01020304u, 0x10000),
                   FRAME_HEADER_LEN);
  assert_memory_equal(out, want, sizeof want);
}

/* Trailing bytes after a frame are the next frame's business. */
static void test_decode_leaves_trailing_bytes(void **state) {
  static const uint8_t buf[] = {HDR(FRAME_FIN, 0, 0, 1, 0), 0xff, 0xff};
  frame_t f;
  size_t used = 0;

  assert_int_equal(frame_decode(buf, sizeof buf, &f, &used), FRAME_OK);
  assert_int_equal(used, FRAME_HEADER_LEN);
}

/* Every strict prefix of a valid frame needs more bytes. */
static void test_decode_prefixes_need_more(void **state) {
  static const uint8_t buf[] = {HDR(FRAME_GOAWAY, 0, 0, 0, 8), BE32(3), BE16(0),
                                'o', 'k'};
  frame_t f;
  size_t used;

  for (size_t n = 0; n < sizeof buf; n++)
    assert_int_equal(frame_decode(buf, n, &f, &used), FRAME_ENEED);
}

/* ---- rejections --------------------------------------------------------- */

typedef struct {
  const char *name;
  const uint8_t *bytes;
  size_t len;
  int err;
} reject_case_t;

#define REJECT(name, err, ...)                                                 \
  {                                                                            \
    name, (const uint8_t[]){__VA_ARGS__},                                      \
        sizeof((const uint8_t[]){__VA_ARGS__}), err                            \
  }

static const reject_case_t reject_cases[] = {
    /* Short input. */
    REJECT("11-byte header", FRAME_ENEED, FRAME_OPEN, 0, 0, 0, 0, 0, 0, 1, 0, 0,
           0),
    REJECT("OPEN missing payload", FRAME_ENEED, HDR(FRAME_OPEN, 0, 0, 1, 4), 0,
           0),
    REJECT("DATA missing last byte", FRAME_ENEED, HDR(FRAME_DATA, 0, 0, 1, 3),
           'a', 'b'),
    REJECT("max DATA header only", FRAME_ENEED,
           HDR(FRAME_DATA, 0, 0, 1, FRAME_MAX_PAYLOAD)),
    /* Oversize: refused from the header alone. */
    REJECT("DATA length 65537", FRAME_ETOOBIG,
           HDR(FRAME_DATA, 0, 0, 1, FRAME_MAX_PAYLOAD + 1)),
    REJECT("DATA length 0xffffffff", FRAME_ETOOBIG,
           HDR(FRAME_DATA, 0, 0, 1, 0xffffffffu)),
    REJECT("RST length 65537", FRAME_ETOOBIG,
           HDR(FRAME_RST, 0, 0, 1, FRAME_MAX_PAYLOAD + 1)),
    /* Unknown types. */
    REJECT("type 0", FRAME_ETYPE, HDR(0x00, 0, 0, 1, 0)),
    REJECT("type 0x0D", FRAME_ETYPE, HDR(0x0D, 0, 0, 1, 0)),
    REJECT("type 0xFF", FRAME_ETYPE, HDR(0xFF, 0, 0, 1, 0)),
    /* Flags and reserved. */
    REJECT("flags 0x01", FRAME_EFLAGS, HDR(FRAME_FIN, 0x01, 0, 1, 0)),
    REJECT("flags 0x80", FRAME_EFLAGS, HDR(FRAME_FIN, 0x80, 0, 1, 0)),
    REJECT("WINDOW flags 0x02", FRAME_EFLAGS, HDR(FRAME_WINDOW, 0x02, 0, 1, 4),
           0, 0, 0, 1),
    REJECT("OPEN_OK grow flag", FRAME_EFLAGS,
           HDR(FRAME_OPEN_OK, FRAME_WINDOW_GROW, 0, 1, 4), 0, 0, 0, 1),
    REJECT("reserved high", FRAME_EFLAGS, HDR(FRAME_FIN, 0, 0x0100, 1, 0)),
    REJECT("reserved low", FRAME_EFLAGS, HDR(FRAME_FIN, 0, 0x0001, 1, 0)),
    /* Stream ids. */
    REJECT("OPEN on stream 0", FRAME_ESTREAM, HDR(FRAME_OPEN, 0, 0, 0, 4),
           BE32(1)),
    REJECT("OPEN_OK on stream 0", FRAME_ESTREAM, HDR(FRAME_OPEN_OK, 0, 0, 0, 4),
           BE32(1)),
    REJECT("OPEN_FAIL on stream 0", FRAME_ESTREAM,
           HDR(FRAME_OPEN_FAIL, 0, 0, 0, 2), BE16(4)),
    REJECT("DATA on stream 0", FRAME_ESTREAM, HDR(FRAME_DATA, 0, 0, 0, 1), 'x'),
    REJECT("WINDOW on stream 0", FRAME_ESTREAM, HDR(FRAME_WINDOW, 0, 0, 0, 4),
           BE32(1)),
    REJECT("FIN on stream 0", FRAME_ESTREAM, HDR(FRAME_FIN, 0, 0, 0, 0)),
    REJECT("RST on stream 0", FRAME_ESTREAM, HDR(FRAME_RST, 0, 0, 0, 2),
           BE16(1)),
    REJECT("PING on stream 1", FRAME_ESTREAM, HDR(FRAME_PING, 0, 0, 1, 8),
           BE32(0), BE32(0)),
    REJECT("PONG on stream 2", FRAME_ESTREAM, HDR(FRAME_PONG, 0, 0, 2, 8),
           BE32(0), BE32(0)),
    REJECT("GOAWAY on stream 0x80000000", FRAME_ESTREAM,
           HDR(FRAME_GOAWAY, 0, 0, 0x80000000u, 6), BE32(0), BE16(0)),
    /* Payload sizes; detected from the header, so no payload is needed. */
    REJECT("OPEN 3 bytes", FRAME_ESIZE, HDR(FRAME_OPEN, 0, 0, 1, 3), 0, 0, 1),
    REJECT("OPEN 5 bytes", FRAME_ESIZE, HDR(FRAME_OPEN, 0, 0, 1, 5), 0, 0, 0, 1,
           0),
    REJECT("OPEN_OK 0 bytes", FRAME_ESIZE, HDR(FRAME_OPEN_OK, 0, 0, 1, 0)),
    REJECT("OPEN_OK 8 bytes", FRAME_ESIZE, HDR(FRAME_OPEN_OK, 0, 0, 1, 8)),
    REJECT("WINDOW 2 bytes", FRAME_ESIZE, HDR(FRAME_WINDOW, 0, 0, 1, 2), 0, 1),
    REJECT("WINDOW 6 bytes", FRAME_ESIZE, HDR(FRAME_WINDOW, 0, 0, 1, 6)),
    REJECT("FIN 1 byte", FRAME_ESIZE, HDR(FRAME_FIN, 0, 0, 1, 1), 0),
    REJECT("PING 7 bytes", FRAME_ESIZE, HDR(FRAME_PING, 0, 0, 0, 7), 1, 2, 3, 4,
           5, 6, 7),
    REJECT("PING 9 bytes", FRAME_ESIZE, HDR(FRAME_PING, 0, 0, 0, 9)),
    REJECT("PONG 0 bytes", FRAME_ESIZE, HDR(FRAME_PONG, 0, 0, 0, 0)),
    REJECT("PONG 16 bytes", FRAME_ESIZE, HDR(FRAME_PONG, 0, 0, 0, 16)),
    REJECT("OPEN_FAIL 1 byte", FRAME_ESIZE, HDR(FRAME_OPEN_FAIL, 0, 0, 1, 1),
           4),
    REJECT("OPEN_FAIL 1027 bytes", FRAME_ESIZE,
           HDR(FRAME_OPEN_FAIL, 0, 0, 1, 2 + FRAME_REASON_MAX + 1)),
    REJECT("RST 0 bytes", FRAME_ESIZE, HDR(FRAME_RST, 0, 0, 1, 0)),
    REJECT("RST 1027 bytes", FRAME_ESIZE,
           HDR(FRAME_RST, 0, 0, 1, 2 + FRAME_REASON_MAX + 1)),
    REJECT("GOAWAY 5 bytes", FRAME_ESIZE, HDR(FRAME_GOAWAY, 0, 0, 0, 5),
           BE32(1), 0),
    REJECT("GOAWAY 1031 bytes", FRAME_ESIZE,
           HDR(FRAME_GOAWAY, 0, 0, 0, 6 + FRAME_REASON_MAX + 1)),
    REJECT("empty DATA", FRAME_ESIZE, HDR(FRAME_DATA, 0, 0, 1, 0)),
};

static void test_rejections(void **state) {
  for (size_t i = 0; i < sizeof reject_cases / sizeof reject_cases[0]; i++) {
    const reject_case_t *c = &reject_cases[i];
    frame_t f;
    size_t used = 12345;
    int rc = frame_decode(c->bytes, c->len, &f, &used);

    if (rc != c->err)
      fail_msg("%s: got %d (%s), want %d (%s)", c->name, rc, frame_strerror(rc),
               c->err, frame_strerror(c->err));
    assert_int_equal(used, 12345);
  }
}

/* The largest sizes each type allows are accepted. */
static void test_size_limits_accepted(void **state) {
  static const uint8_t max_reason[] = {FRAME_OPEN_FAIL, FRAME_RST,
                                       FRAME_GOAWAY};
  uint8_t *buf = calloc(1, FRAME_HEADER_LEN + 6 + FRAME_REASON_MAX);

  assert_non_null(buf);
  for (size_t i = 0; i < sizeof max_reason; i++) {
    uint8_t t = max_reason[i];
    uint32_t fixed = t == FRAME_GOAWAY ? 6 : 2;
    frame_t f;

    frame_encode_header(buf, t, t == FRAME_GOAWAY ? 0 : 1,
                        fixed + FRAME_REASON_MAX);
    f = decode_ok(buf, FRAME_HEADER_LEN + fixed + FRAME_REASON_MAX);
    assert_int_equal(f.reason_len, FRAME_REASON_MAX);
    assert_ptr_equal(f.reason, buf + FRAME_HEADER_LEN + fixed);
  }
  free(buf);
}

/* Zero window increments and odd codes are the session's business. */
static void test_stream_rules_left_to_session(void **state) {
  static const uint8_t window0[] = {HDR(FRAME_WINDOW, 0, 0, 2, 4), BE32(0)};
  static const uint8_t code99[] = {HDR(FRAME_RST, 0, 0, 4, 2), BE16(999)};
  frame_t f = decode_ok(window0, sizeof window0);

  assert_int_equal(f.window, 0);
  f = decode_ok(code99, sizeof code99);
  assert_int_equal(f.code, 999);
}

/* ---- reader ------------------------------------------------------------- */

/* Frames as a flat, comparable record: copied in the callback because
 * gathered frames point into the reader's buffer. */
typedef struct {
  uint8_t rec[8192];
  size_t len;
  int frames;
  int stop_at; /* 1-based frame whose callback returns stop_with */
  int stop_with;
  const uint8_t *chunk; /* when set, payloads must point into it */
  size_t chunk_len;
} sink_t;

static void put(sink_t *s, const void *p, size_t n) {
  assert_true(s->len + n <= sizeof s->rec);
  memcpy(s->rec + s->len, p, n);
  s->len += n;
}

static void record(sink_t *s, const frame_t *f) {
  put(s, &f->type, sizeof f->type);
  put(s, &f->stream_id, sizeof f->stream_id);
  put(s, &f->length, sizeof f->length);
  put(s, f->payload, f->length);
  put(s, &f->window, sizeof f->window);
  put(s, &f->code, sizeof f->code);
  put(s, &f->last_stream_id, sizeof f->last_stream_id);
  put(s, &f->reason_len, sizeof f->reason_len);
  if (f->reason_len > 0)
    put(s, f->reason, f->reason_len);
  if (f->ping != NULL)
    put(s, f->ping, FRAME_PING_LEN);
}

static int sink_cb(void *ctx, const frame_t *f) {
  sink_t *s = ctx;

  s->frames++;
  if (s->chunk != NULL) {
    assert_true(f->payload >= s->chunk + FRAME_HEADER_LEN);
    assert_true(f->payload + f->length <= s->chunk + s->chunk_len);
  }
  record(s, f);
  return s->frames == s->stop_at ? s->stop_with : 0;
}

/* Frames of several types back to back, as one WebSocket message. */
static size_t build_message(uint8_t *out, size_t cap) {
  static const uint8_t ping[FRAME_PING_LEN] = {8, 7, 6, 5, 4, 3, 2, 1};
  const frame_t ctl[] = {
      {.type = FRAME_OPEN, .stream_id = 1, .window = 262144},
      {.type = FRAME_OPEN_OK, .stream_id = 1, .window = 65536},
      {.type = FRAME_PING, .ping = ping},
      {.type = FRAME_WINDOW, .stream_id = 1, .window = 4096},
      {.type = FRAME_OPEN_FAIL,
       .stream_id = 3,
       .code = 5,
       .reason = "unreachable",
       .reason_len = 11},
      {.type = FRAME_FIN, .stream_id = 1},
      {.type = FRAME_PONG, .ping = ping},
      {.type = FRAME_RST, .stream_id = 5, .code = 7},
      {.type = FRAME_GOAWAY,
       .last_stream_id = 5,
       .code = 10,
       .reason = "shutting down",
       .reason_len = 13},
  };
  size_t n = 0;

  for (size_t i = 0; i < sizeof ctl / sizeof ctl[0]; i++) {
    size_t m = frame_encode(out + n, cap - n, &ctl[i]);

    assert_true(m > 0);
    n += m;
    if (i == 1 || i == 5) { /* DATA of 1 and of 100 bytes */
      size_t dlen = i == 1 ? 1 : 100;

      n += frame_encode_header(out + n, FRAME_DATA, 1, (uint32_t)dlen);
      for (size_t j = 0; j < dlen; j++)
        out[n++] = (uint8_t)(j + i);
    }
  }
  return n;
}

static void reference(const uint8_t *msg, size_t len, sink_t *want) {
  size_t off = 0;

  memset(want, 0, sizeof *want);
  while (off < len) {
    frame_t f;
    size_t used;

    assert_int_equal(frame_decode(msg + off, len - off, &f, &used), FRAME_OK);
    sink_cb(want, &f);
    off += used;
  }
}

/* Feed msg cut at the given offsets (ascending), end_of_message on the
 * last chunk, and check the frames match the reference. */
static void feed_cut(const uint8_t *msg, size_t len, const size_t *cuts,
                     size_t ncuts, const sink_t *want, sink_t *got) {
  frame_reader_t r;
  size_t from = 0;

  frame_reader_init(&r);
  memset(got, 0, sizeof *got);
  for (size_t i = 0; i <= ncuts; i++) {
    size_t to = i < ncuts ? cuts[i] : len;

    assert_int_equal(
        frame_reader_feed(&r, msg + from, to - from, i == ncuts, sink_cb, got),
        FRAME_OK);
    assert_true(r.cap <= FRAME_HEADER_LEN + FRAME_MAX_PAYLOAD);
    from = to;
  }
  assert_int_equal(got->frames, want->frames);
  assert_int_equal(got->len, want->len);
  assert_memory_equal(got->rec, want->rec, want->len);
  frame_reader_free(&r);
}

static void test_reader_whole_message_in_place(void **state) {
  uint8_t msg[1024];
  size_t len = build_message(msg, sizeof msg);
  sink_t want, got;
  frame_reader_t r;

  reference(msg, len, &want);
  assert_int_equal(want.frames, 11);
  memset(&got, 0, sizeof got);
  got.chunk = msg;
  got.chunk_len = len;
  frame_reader_init(&r);
  assert_int_equal(frame_reader_feed(&r, msg, len, 1, sink_cb, &got), FRAME_OK);
  /* Nothing was split, so nothing was gathered. */
  assert_null(r.buf);
  assert_int_equal(r.cap, 0);
  assert_int_equal(got.len, want.len);
  assert_memory_equal(got.rec, want.rec, want.len);
  frame_reader_free(&r);
}

static void test_reader_split_everywhere(void **state) {
  uint8_t msg[1024];
  size_t len = build_message(msg, sizeof msg);
  sink_t want, got;

  reference(msg, len, &want);
  for (size_t cut = 0; cut <= len; cut++)
    feed_cut(msg, len, &cut, 1, &want, &got);
}

static void test_reader_split_twice(void **state) {
  uint8_t msg[1024];
  size_t len = build_message(msg, sizeof msg);
  sink_t want, got;

  reference(msg, len, &want);
  /* Two cuts close together land inside one frame's header or payload. */
  for (size_t a = 0; a <= len; a++)
    for (size_t b = a; b <= len && b <= a + 40; b++) {
      size_t cuts[2] = {a, b};

      feed_cut(msg, len, cuts, 2, &want, &got);
    }
}

static void test_reader_byte_by_byte(void **state) {
  uint8_t msg[1024];
  size_t len = build_message(msg, sizeof msg);
  size_t *cuts = malloc(2 * len * sizeof *cuts);
  sink_t want, got;

  assert_non_null(cuts);
  reference(msg, len, &want);
  for (size_t i = 0; i < len; i++)
    cuts[i] = i + 1;
  feed_cut(msg, len, cuts, len - 1, &want, &got);
  /* Empty chunks in between change nothing. */
  for (size_t i = 0; i < 2 * len; i++)
    cuts[i] = i / 2;
  feed_cut(msg, len, cuts, 2 * len, &want, &got);
  free(cuts);
}

static int count_cb(void *ctx, const frame_t *f) {
  int *n = ctx;

  (*n)++;
  return 0;
}

static int max_data_cb(void *ctx, const frame_t *f) {
  const uint8_t *msg = ctx;

  assert_int_equal(f->type, FRAME_DATA);
  assert_int_equal(f->length, FRAME_MAX_PAYLOAD);
  assert_memory_equal(f->payload, msg + FRAME_HEADER_LEN, FRAME_MAX_PAYLOAD);
  return 9;
}

/* A maximum DATA frame split in its header and in its payload. */
static void test_reader_max_data_split(void **state) {
  const size_t len = FRAME_HEADER_LEN + FRAME_MAX_PAYLOAD;
  const size_t cut_sets[][2] = {{5, 30000}, {12, 13}, {1, len - 1}};
  uint8_t *msg = malloc(len);
  frame_reader_t r;

  assert_non_null(msg);
  frame_encode_header(msg, FRAME_DATA, 9, FRAME_MAX_PAYLOAD);
  for (size_t i = FRAME_HEADER_LEN; i < len; i++)
    msg[i] = (uint8_t)(i * 31);
  for (size_t k = 0; k < sizeof cut_sets / sizeof cut_sets[0]; k++) {
    const size_t *c = cut_sets[k];

    frame_reader_init(&r);
    assert_int_equal(frame_reader_feed(&r, msg, c[0], 0, max_data_cb, msg),
                     FRAME_OK);
    assert_int_equal(
        frame_reader_feed(&r, msg + c[0], c[1] - c[0], 0, max_data_cb, msg),
        FRAME_OK);
    /* The callback's 9 proves the frame was delivered, exactly once. */
    assert_int_equal(
        frame_reader_feed(&r, msg + c[1], len - c[1], 1, max_data_cb, msg), 9);
    assert_true(r.cap <= len);
    frame_reader_free(&r);
  }
  free(msg);
}

static void test_reader_truncated(void **state) {
  uint8_t msg[1024];
  size_t len = build_message(msg, sizeof msg);
  size_t first = FRAME_HEADER_LEN + 4; /* the leading OPEN */

  /* Ending a message anywhere inside a frame is an error... */
  for (size_t cut = 1; cut < len; cut++) {
    frame_reader_t r;
    int n = 0;
    frame_t f;
    size_t used;
    int at_boundary = 1;
    size_t off = 0;

    while (off < cut) {
      int rc = frame_decode(msg + off, cut - off, &f, &used);

      if (rc != FRAME_OK) {
        at_boundary = 0;
        break;
      }
      off += used;
    }
    frame_reader_init(&r);
    assert_int_equal(frame_reader_feed(&r, msg, cut, 1, count_cb, &n),
                     at_boundary ? FRAME_OK : FRAME_ETRUNCATED);
    frame_reader_free(&r);
  }
  /* ...also when the chunk that ends it is empty. */
  {
    frame_reader_t r;
    int n = 0;

    frame_reader_init(&r);
    assert_int_equal(frame_reader_feed(&r, msg, first + 3, 0, count_cb, &n),
                     FRAME_OK);
    assert_int_equal(n, 1);
    assert_int_equal(frame_reader_feed(&r, NULL, 0, 1, count_cb, &n),
                     FRAME_ETRUNCATED);
    frame_reader_free(&r);
  }
}

/* The reader carries on across messages that end at frame boundaries. */
static void test_reader_several_messages(void **state) {
  uint8_t msg[1024];
  size_t len = build_message(msg, sizeof msg);
  frame_reader_t r;
  int n = 0;

  frame_reader_init(&r);
  for (int i = 0; i < 3; i++)
    assert_int_equal(frame_reader_feed(&r, msg, len, 1, count_cb, &n),
                     FRAME_OK);
  assert_int_equal(n, 33);
  assert_int_equal(frame_reader_feed(&r, NULL, 0, 1, count_cb, &n), FRAME_OK);
  frame_reader_free(&r);
}

static void test_reader_callback_stop(void **state) {
  uint8_t msg[1024];
  size_t len = build_message(msg, sizeof msg);
  frame_reader_t r;
  sink_t *s = calloc(1, sizeof *s);

  assert_non_null(s);
  s->stop_at = 3;
  s->stop_with = 42;
  frame_reader_init(&r);
  assert_int_equal(frame_reader_feed(&r, msg, len, 1, sink_cb, s), 42);
  assert_int_equal(s->frames, 3);
  frame_reader_free(&r);

  /* Same when the stopping frame was gathered across chunks. */
  memset(s, 0, sizeof *s);
  s->stop_at = 1;
  s->stop_with = 1;
  frame_reader_init(&r);
  assert_int_equal(frame_reader_feed(&r, msg, 5, 0, sink_cb, s), FRAME_OK);
  assert_int_equal(frame_reader_feed(&r, msg + 5, len - 5, 1, sink_cb, s), 1);
  assert_int_equal(s->frames, 1);
  frame_reader_free(&r);
  free(s);
}

/* A bad header is refused as soon as it is complete, before any payload is
 * buffered. */
static void test_reader_rejects_header_early(void **state) {
  static const uint8_t big[] = {HDR(FRAME_DATA, 0, 0, 1, 0x7fffffffu)};
  static const uint8_t bad_type[] = {HDR(0x0D, 0, 0, 1, 4), 1, 2};
  static const uint8_t max_hdr[] = {HDR(FRAME_DATA, 0, 0, 1, 65536)};
  frame_reader_t r;
  int n = 0;

  frame_reader_init(&r);
  assert_int_equal(frame_reader_feed(&r, big, 7, 0, count_cb, &n), FRAME_OK);
  assert_int_equal(frame_reader_feed(&r, big + 7, 5, 0, count_cb, &n),
                   FRAME_ETOOBIG);
  assert_true(r.cap < 1024);
  frame_reader_free(&r);

  frame_reader_init(&r);
  assert_int_equal(frame_reader_feed(&r, big, sizeof big, 0, count_cb, &n),
                   FRAME_ETOOBIG);
  frame_reader_free(&r);

  frame_reader_init(&r);
  assert_int_equal(
      frame_reader_feed(&r, bad_type, sizeof bad_type, 0, count_cb, &n),
      FRAME_ETYPE);
  frame_reader_free(&r);

  /* A valid maximum header waits for its payload. */
  frame_reader_init(&r);
  assert_int_equal(
      frame_reader_feed(&r, max_hdr, sizeof max_hdr, 0, count_cb, &n),
      FRAME_OK);
  assert_int_equal(n, 0);
  frame_reader_free(&r);
}

/* A protocol error after good frames: the good ones are delivered first. */
static void test_reader_error_after_frames(void **state) {
  static const uint8_t msg[] = {HDR(FRAME_FIN, 0, 0, 1, 0),
                                HDR(FRAME_FIN, 0, 0, 3, 0),
                                HDR(FRAME_FIN, 1, 0, 5, 0)};
  frame_reader_t r;
  int n = 0;

  frame_reader_init(&r);
  assert_int_equal(frame_reader_feed(&r, msg, sizeof msg, 1, count_cb, &n),
                   FRAME_EFLAGS);
  assert_int_equal(n, 2);
  frame_reader_free(&r);
}

static void test_reader_free_twice(void **state) {
  frame_reader_t r;

  frame_reader_init(&r);
  frame_reader_free(&r);
  frame_reader_free(&r);
  assert_null(r.buf);
  assert_int_equal(r.len, 0);
  assert_int_equal(r.cap, 0);
}

/* ---- names -------------------------------------------------------------- */

static void test_type_names(void **state) {
  static const char *const want[] = {NULL,   "OPEN",   "OPEN_OK", "OPEN_FAIL",
                                     "DATA", "WINDOW", "FIN",     "RST",
                                     "PING", "PONG",   "GOAWAY"};

  for (uint8_t t = 1; t <= FRAME_GOAWAY; t++)
    assert_string_equal(frame_type_name(t), want[t]);
  assert_string_equal(frame_type_name(0), "UNKNOWN");
  assert_string_equal(frame_type_name(0x0D), "UNKNOWN");
  assert_string_equal(frame_type_name(0xFF), "UNKNOWN");
}

static void test_code_names(void **state) {
  static const char *const want[] = {
      "NO_ERROR", "PROTOCOL",    "FLOW_CONTROL",  "STREAM_CLOSED",
      "REFUSED",  "UNREACHABLE", "CONNECT_ERROR", "RESET",
      "INTERNAL", "LIMIT",       "SHUTDOWN",      "UNKNOWN_STREAM"};

  for (uint16_t c = 0; c <= FRAME_CODE_UNKNOWN_STREAM; c++)
    assert_string_equal(frame_code_name(c), want[c]);
  assert_string_equal(frame_code_name(12), "UNKNOWN");
  assert_string_equal(frame_code_name(0xffff), "UNKNOWN");
}

static void test_strerror(void **state) {
  const char *seen[16];
  int n = 0;

  for (int e = FRAME_OK; e >= FRAME_ENOMEM; e--) {
    const char *s = frame_strerror(e);

    assert_non_null(s);
    assert_true(strlen(s) > 0);
    for (int i = 0; i < n; i++)
      assert_string_not_equal(s, seen[i]);
    seen[n++] = s;
  }
  assert_string_equal(frame_strerror(FRAME_ETOOBIG), "frame payload too large");
  assert_non_null(frame_strerror(-100));
  assert_non_null(frame_strerror(5));
}

/* WINDOW_GROW is the one flag, and only on WINDOW; it survives a round
 * trip and an ordinary WINDOW has none. */
static void test_window_grow_flag(void **state) {
  (void)state;
  uint8_t buf[64];
  frame_t in = {.type = FRAME_WINDOW,
                .flags = FRAME_WINDOW_GROW,
                .stream_id = 7,
                .window = 65536};
  size_t n = frame_encode(buf, sizeof(buf), &in);
  assert_int_equal(buf[1], FRAME_WINDOW_GROW);
  frame_t f = decode_ok(buf, n);
  assert_int_equal(f.flags, FRAME_WINDOW_GROW);
  assert_int_equal(f.window, 65536);
  in.flags = 0;
  n = frame_encode(buf, sizeof(buf), &in);
  assert_int_equal(decode_ok(buf, n).flags, 0);
  frame_t fin = {.type = FRAME_FIN, .flags = FRAME_WINDOW_GROW, .stream_id = 7};
  n = frame_encode(buf, sizeof(buf), &fin);
  assert_int_equal(buf[1], 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip_window_types),
      cmocka_unit_test(test_roundtrip_fin),
      cmocka_unit_test(test_window_grow_flag),
      cmocka_unit_test(test_roundtrip_ping_pong),
      cmocka_unit_test(test_roundtrip_code_types),
      cmocka_unit_test(test_roundtrip_goaway),
      cmocka_unit_test(test_roundtrip_empty_reason),
      cmocka_unit_test(test_roundtrip_reason_cut),
      cmocka_unit_test(test_encode_refuses),
      cmocka_unit_test(test_roundtrip_data),
      cmocka_unit_test(test_encode_header_bytes),
      cmocka_unit_test(test_decode_leaves_trailing_bytes),
      cmocka_unit_test(test_decode_prefixes_need_more),
      cmocka_unit_test(test_rejections),
      cmocka_unit_test(test_size_limits_accepted),
      cmocka_unit_test(test_stream_rules_left_to_session),
      cmocka_unit_test(test_reader_whole_message_in_place),
      cmocka_unit_test(test_reader_split_everywhere),
      cmocka_unit_test(test_reader_split_twice),
      cmocka_unit_test(test_reader_byte_by_byte),
      cmocka_unit_test(test_reader_max_data_split),
      cmocka_unit_test(test_reader_truncated),
      cmocka_unit_test(test_reader_several_messages),
      cmocka_unit_test(test_reader_callback_stop),
      cmocka_unit_test(test_reader_rejects_header_early),
      cmocka_unit_test(test_reader_error_after_frames),
      cmocka_unit_test(test_reader_free_twice),
      cmocka_unit_test(test_type_names),
      cmocka_unit_test(test_code_names),
      cmocka_unit_test(test_strerror),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
