/* wsmux frame codec: see frame.h and docs/PROTOCOL.md section 2. */
#include "ws/frame.h"

#include <stdlib.h>
#include <string.h>

#define FRAME_BUF_MAX (FRAME_HEADER_LEN + FRAME_MAX_PAYLOAD)
/* Small first allocation: most split frames are control frames. */
#define FRAME_BUF_MIN 256

/* Payload size bounds per type; min is also the fixed part before a reason. */
typedef struct {
  uint32_t min;
  uint32_t max;
} size_range_t;

static const size_range_t payload_sizes[] = {
    [FRAME_OPEN] = {4, 4},
    [FRAME_OPEN_OK] = {4, 4},
    [FRAME_OPEN_FAIL] = {2, 2 + FRAME_REASON_MAX},
    [FRAME_DATA] = {1, FRAME_MAX_PAYLOAD},
    [FRAME_WINDOW] = {4, 4},
    [FRAME_FIN] = {0, 0},
    [FRAME_RST] = {2, 2 + FRAME_REASON_MAX},
    [FRAME_PING] = {FRAME_PING_LEN, FRAME_PING_LEN},
    [FRAME_PONG] = {FRAME_PING_LEN, FRAME_PING_LEN},
    [FRAME_GOAWAY] = {6, 6 + FRAME_REASON_MAX},
    [FRAME_HELLO] = {FRAME_HELLO_LEN, FRAME_HELLO_LEN},
    [FRAME_RESUME] = {FRAME_RESUME_FIXED, FRAME_MAX_PAYLOAD},
};

static const char *const type_names[] = {
    [FRAME_OPEN] = "OPEN",
    [FRAME_OPEN_OK] = "OPEN_OK",
    [FRAME_OPEN_FAIL] = "OPEN_FAIL",
    [FRAME_DATA] = "DATA",
    [FRAME_WINDOW] = "WINDOW",
    [FRAME_FIN] = "FIN",
    [FRAME_RST] = "RST",
    [FRAME_PING] = "PING",
    [FRAME_PONG] = "PONG",
    [FRAME_GOAWAY] = "GOAWAY",
    [FRAME_HELLO] = "HELLO",
    [FRAME_RESUME] = "RESUME",
};

static const char *const code_names[] = {
    [FRAME_CODE_NO_ERROR] = "NO_ERROR",
    [FRAME_CODE_PROTOCOL] = "PROTOCOL",
    [FRAME_CODE_FLOW_CONTROL] = "FLOW_CONTROL",
    [FRAME_CODE_STREAM_CLOSED] = "STREAM_CLOSED",
    [FRAME_CODE_REFUSED] = "REFUSED",
    [FRAME_CODE_UNREACHABLE] = "UNREACHABLE",
    [FRAME_CODE_CONNECT_ERROR] = "CONNECT_ERROR",
    [FRAME_CODE_RESET] = "RESET",
    [FRAME_CODE_INTERNAL] = "INTERNAL",
    [FRAME_CODE_LIMIT] = "LIMIT",
    [FRAME_CODE_SHUTDOWN] = "SHUTDOWN",
    [FRAME_CODE_UNKNOWN_STREAM] = "UNKNOWN_STREAM",
};

static uint16_t load16(const uint8_t *p) {
  return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t load32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         (uint32_t)p[3];
}

static void store16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static void store32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static int known_type(uint8_t type) {
  return type >= FRAME_OPEN && type <= FRAME_RESUME;
}

static int is_connection_type(uint8_t type) {
  return type == FRAME_PING || type == FRAME_PONG || type == FRAME_GOAWAY ||
         type == FRAME_HELLO || type == FRAME_RESUME;
}

static int has_reason(uint8_t type) {
  return type == FRAME_OPEN_FAIL || type == FRAME_RST || type == FRAME_GOAWAY;
}

const char *frame_type_name(uint8_t type) {
  return known_type(type) ? type_names[type] : "UNKNOWN";
}

const char *frame_code_name(uint16_t code) {
  if (code >= sizeof code_names / sizeof code_names[0])
    return "UNKNOWN";
  return code_names[code];
}

const char *frame_strerror(int err) {
  switch (err) {
  case FRAME_OK:
    return "ok";
  case FRAME_ENEED:
    return "incomplete frame";
  case FRAME_ETYPE:
    return "unknown frame type";
  case FRAME_EFLAGS:
    return "non-zero flags or reserved bits";
  case FRAME_ETOOBIG:
    return "frame payload too large";
  case FRAME_ESIZE:
    return "wrong payload size for frame type";
  case FRAME_ESTREAM:
    return "stream id not allowed for frame type";
  case FRAME_ETRUNCATED:
    return "message ends inside a frame";
  case FRAME_ENOMEM:
    return "out of memory";
  default:
    return "unknown frame error";
  }
}

/* Everything is decidable from the 12 header bytes, so a bad frame is
 * refused before its payload is waited for or buffered. */
static int check_header(const uint8_t *h) {
  uint8_t type = h[0];
  uint32_t stream_id = load32(h + 4);
  uint32_t length = load32(h + 8);

  if (!known_type(type))
    return FRAME_ETYPE;
  uint8_t allowed = type == FRAME_WINDOW ? FRAME_WINDOW_GROW : 0;
  if ((h[1] & ~allowed) != 0 || load16(h + 2) != 0)
    return FRAME_EFLAGS;
  if (length > FRAME_MAX_PAYLOAD)
    return FRAME_ETOOBIG;
  if ((stream_id == 0) != is_connection_type(type))
    return FRAME_ESTREAM;
  if (length < payload_sizes[type].min || length > payload_sizes[type].max)
    return FRAME_ESIZE;
  if (type == FRAME_RESUME &&
      (length - FRAME_RESUME_FIXED) % FRAME_RESUME_ENTRY_LEN != 0)
    return FRAME_ESIZE;
  return FRAME_OK;
}

static void set_reason(frame_t *f, const uint8_t *p, size_t len) {
  f->reason = (const char *)p;
  f->reason_len = len;
}

/* Sizes were checked by check_header, so every read is in bounds. */
static void parse_payload(frame_t *f) {
  const uint8_t *p = f->payload;

  switch (f->type) {
  case FRAME_OPEN:
  case FRAME_OPEN_OK:
  case FRAME_WINDOW:
    f->window = load32(p);
    break;
  case FRAME_OPEN_FAIL:
  case FRAME_RST:
    f->code = load16(p);
    set_reason(f, p + 2, f->length - 2);
    break;
  case FRAME_GOAWAY:
    f->last_stream_id = load32(p);
    f->code = load16(p + 4);
    set_reason(f, p + 6, f->length - 6);
    break;
  case FRAME_PING:
  case FRAME_PONG:
    f->ping = p;
    break;
  case FRAME_HELLO:
    f->session_id = p;
    f->hello_flags = p[FRAME_SESSION_ID_LEN];
    f->grace_ms = load32(p + FRAME_SESSION_ID_LEN + 1);
    break;
  case FRAME_RESUME:
    f->more = p[0];
    f->last_stream_id = load32(p + 1);
    f->count = load32(p + 5);
    f->entries = p + FRAME_RESUME_FIXED;
    break;
  default:
    break;
  }
}

static uint64_t load64(const uint8_t *p) {
  return (uint64_t)load32(p) << 32 | load32(p + 4);
}

static void store64(uint8_t *p, uint64_t v) {
  store32(p, (uint32_t)(v >> 32));
  store32(p + 4, (uint32_t)v);
}

void frame_resume_entry(const frame_t *f, uint32_t i, frame_resume_entry_t *e) {
  const uint8_t *p = f->entries + (size_t)i * FRAME_RESUME_ENTRY_LEN;
  e->stream_id = load32(p);
  e->flags = p[4];
  e->received = load64(p + 5);
  e->granted = load64(p + 13);
}

void frame_resume_entry_encode(uint8_t *out, const frame_resume_entry_t *e) {
  store32(out, e->stream_id);
  out[4] = e->flags;
  store64(out + 5, e->received);
  store64(out + 13, e->granted);
}

int frame_decode(const uint8_t *buf, size_t len, frame_t *f, size_t *used) {
  uint32_t length;
  int rc;

  if (len < FRAME_HEADER_LEN)
    return FRAME_ENEED;
  rc = check_header(buf);
  if (rc != FRAME_OK)
    return rc;
  length = load32(buf + 8);
  if (len - FRAME_HEADER_LEN < length)
    return FRAME_ENEED;

  memset(f, 0, sizeof *f);
  f->type = buf[0];
  f->flags = buf[1];
  f->stream_id = load32(buf + 4);
  f->payload = buf + FRAME_HEADER_LEN;
  f->length = length;
  parse_payload(f);
  if (f->type == FRAME_RESUME &&
      f->count != (length - FRAME_RESUME_FIXED) / FRAME_RESUME_ENTRY_LEN)
    return FRAME_ESIZE;
  *used = FRAME_HEADER_LEN + (size_t)length;
  return FRAME_OK;
}

size_t frame_encode_header(uint8_t *out, uint8_t type, uint32_t stream_id,
                           uint32_t length) {
  out[0] = type;
  out[1] = 0;
  store16(out + 2, 0);
  store32(out + 4, stream_id);
  store32(out + 8, length);
  return FRAME_HEADER_LEN;
}

static void encode_code_reason(uint8_t *p, const frame_t *f,
                               size_t reason_len) {
  store16(p, f->code);
  if (reason_len > 0)
    memcpy(p + 2, f->reason, reason_len);
}

static void encode_payload(uint8_t *p, const frame_t *f, size_t reason_len) {
  switch (f->type) {
  case FRAME_OPEN:
  case FRAME_OPEN_OK:
  case FRAME_WINDOW:
    store32(p, f->window);
    break;
  case FRAME_OPEN_FAIL:
  case FRAME_RST:
    encode_code_reason(p, f, reason_len);
    break;
  case FRAME_GOAWAY:
    store32(p, f->last_stream_id);
    encode_code_reason(p + 4, f, reason_len);
    break;
  case FRAME_PING:
  case FRAME_PONG:
    if (f->ping != NULL)
      memcpy(p, f->ping, FRAME_PING_LEN);
    else
      memset(p, 0, FRAME_PING_LEN);
    break;
  case FRAME_HELLO:
    if (f->session_id != NULL)
      memcpy(p, f->session_id, FRAME_SESSION_ID_LEN);
    else
      memset(p, 0, FRAME_SESSION_ID_LEN);
    p[FRAME_SESSION_ID_LEN] = f->hello_flags;
    store32(p + FRAME_SESSION_ID_LEN + 1, f->grace_ms);
    break;
  case FRAME_RESUME:
    p[0] = f->more;
    store32(p + 1, f->last_stream_id);
    store32(p + 5, f->count);
    if (f->count > 0)
      memcpy(p + FRAME_RESUME_FIXED, f->entries,
             (size_t)f->count * FRAME_RESUME_ENTRY_LEN);
    break;
  default:
    break;
  }
}

size_t frame_encode(uint8_t *out, size_t cap, const frame_t *f) {
  size_t reason_len = 0;
  size_t length;

  if (!known_type(f->type) || f->type == FRAME_DATA)
    return 0;
  if (has_reason(f->type) && f->reason != NULL)
    reason_len =
        f->reason_len < FRAME_REASON_MAX ? f->reason_len : FRAME_REASON_MAX;
  length = payload_sizes[f->type].min + reason_len;
  if (f->type == FRAME_RESUME) {
    if (f->count > FRAME_RESUME_MAX_ENTRIES)
      return 0;
    length = FRAME_RESUME_FIXED + (size_t)f->count * FRAME_RESUME_ENTRY_LEN;
  }
  if (cap < FRAME_HEADER_LEN + length)
    return 0;
  frame_encode_header(out, f->type, f->stream_id, (uint32_t)length);
  if (f->type == FRAME_WINDOW)
    out[1] = f->flags & FRAME_WINDOW_GROW;
  encode_payload(out + FRAME_HEADER_LEN, f, reason_len);
  return FRAME_HEADER_LEN + length;
}

void frame_reader_init(frame_reader_t *r) {
  r->buf = NULL;
  r->len = 0;
  r->cap = 0;
}

void frame_reader_free(frame_reader_t *r) {
  free(r->buf);
  frame_reader_init(r);
}

static int reserve(frame_reader_t *r, size_t need) {
  size_t cap = r->cap < FRAME_BUF_MIN ? FRAME_BUF_MIN : r->cap;
  uint8_t *buf;

  if (need <= r->cap)
    return FRAME_OK;
  while (cap < need)
    cap *= 2;
  if (cap > FRAME_BUF_MAX)
    cap = FRAME_BUF_MAX;
  buf = realloc(r->buf, cap);
  if (buf == NULL)
    return FRAME_ENOMEM;
  r->buf = buf;
  r->cap = cap;
  return FRAME_OK;
}

/* Copies no further than want, so whatever follows in the chunk is still
 * decoded in place. */
static int take(frame_reader_t *r, const uint8_t **data, size_t *len,
                size_t want) {
  size_t n;
  int rc;

  if (r->len >= want)
    return FRAME_OK;
  n = want - r->len < *len ? want - r->len : *len;
  rc = reserve(r, r->len + n);
  if (rc != FRAME_OK)
    return rc;
  memcpy(r->buf + r->len, *data, n);
  r->len += n;
  *data += n;
  *len -= n;
  return FRAME_OK;
}

static int deliver(const frame_t *f, frame_reader_cb cb, void *ctx) {
  int rc = cb(ctx, f);

  return rc > 0 ? rc : FRAME_OK;
}

/* Continue a frame split across chunks. The header is gathered first and
 * checked before any payload byte is buffered, so an oversize or otherwise
 * bad length never makes the buffer grow. */
static int gather(frame_reader_t *r, const uint8_t **data, size_t *len,
                  frame_reader_cb cb, void *ctx) {
  frame_t f;
  size_t used;
  int rc = take(r, data, len, FRAME_HEADER_LEN);

  if (rc != FRAME_OK || r->len < FRAME_HEADER_LEN)
    return rc;
  rc = frame_decode(r->buf, r->len, &f, &used);
  if (rc == FRAME_ENEED) {
    rc = take(r, data, len, FRAME_HEADER_LEN + (size_t)load32(r->buf + 8));
    if (rc != FRAME_OK)
      return rc;
    rc = frame_decode(r->buf, r->len, &f, &used);
  }
  if (rc != FRAME_OK)
    return rc == FRAME_ENEED ? FRAME_OK : rc;
  /* Reset first so a stopping callback leaves the reader at a boundary. */
  r->len = 0;
  return deliver(&f, cb, ctx);
}

/* Decode one frame in place from the chunk, or start gathering its tail. */
static int decode_direct(frame_reader_t *r, const uint8_t **data, size_t *len,
                         frame_reader_cb cb, void *ctx) {
  frame_t f;
  size_t used;
  int rc = frame_decode(*data, *len, &f, &used);

  if (rc == FRAME_ENEED)
    return gather(r, data, len, cb, ctx);
  if (rc != FRAME_OK)
    return rc;
  *data += used;
  *len -= used;
  return deliver(&f, cb, ctx);
}

int frame_reader_feed(frame_reader_t *r, const uint8_t *data, size_t len,
                      int end_of_message, frame_reader_cb cb, void *ctx) {
  int rc = FRAME_OK;

  while (rc == FRAME_OK && len > 0) {
    if (r->len > 0)
      rc = gather(r, &data, &len, cb, ctx);
    else
      rc = decode_direct(r, &data, &len, cb, ctx);
  }
  if (rc != FRAME_OK)
    return rc;
  if (end_of_message && r->len > 0)
    return FRAME_ETRUNCATED;
  return FRAME_OK;
}
