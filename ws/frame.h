/*
 * wsmux frame codec (docs/PROTOCOL.md section 2). No I/O, no allocation
 * except inside frame_reader_t. Every decoder entry point validates the
 * whole header and the payload size its type requires; a frame it returns
 * is well-formed, the stream-level rules are the session's business.
 */
#ifndef WSMUX_FRAME_H
#define WSMUX_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_HEADER_LEN 12
#define FRAME_MAX_PAYLOAD 65536
#define FRAME_REASON_MAX 1024
#define FRAME_PING_LEN 8
#define FRAME_SESSION_ID_LEN 16
#define FRAME_HELLO_LEN (FRAME_SESSION_ID_LEN + 1 + 4)
/* RESUME: u8 more, u32 last stream id, u32 count, then the entries. */
#define FRAME_RESUME_FIXED 9
#define FRAME_RESUME_ENTRY_LEN 21
#define FRAME_RESUME_MAX_ENTRIES                                               \
  ((FRAME_MAX_PAYLOAD - FRAME_RESUME_FIXED) / FRAME_RESUME_ENTRY_LEN)
/* HELLO flags; RESUME entry flags. ENDED: the sender has ended the stream
 * in order (both FINs) and keeps it only in case the peer still waits for
 * its last bytes or FIN (docs/PROTOCOL.md section 8); readers that predate
 * it ignore it. */
#define FRAME_HELLO_RESUMED 0x01
#define FRAME_RESUME_OPENED 0x01
#define FRAME_RESUME_FIN_RECEIVED 0x02
#define FRAME_RESUME_ENDED 0x04
/* WINDOW header flag: the increment raises the stream's window (the sender's
 * credit and how much it keeps for a resume); it acknowledges nothing. */
#define FRAME_WINDOW_GROW 0x01
/* Largest encoded control frame (GOAWAY with a full reason). */
#define FRAME_CONTROL_MAX (FRAME_HEADER_LEN + 6 + FRAME_REASON_MAX)

typedef enum {
  FRAME_OPEN = 0x01,
  FRAME_OPEN_OK = 0x02,
  FRAME_OPEN_FAIL = 0x03,
  FRAME_DATA = 0x04,
  FRAME_WINDOW = 0x05,
  FRAME_FIN = 0x06,
  FRAME_RST = 0x07,
  FRAME_PING = 0x08,
  FRAME_PONG = 0x09,
  FRAME_GOAWAY = 0x0A,
  FRAME_HELLO = 0x0B,
  FRAME_RESUME = 0x0C,
} frame_type_t;

/* Reason codes carried by OPEN_FAIL, RST and GOAWAY. */
typedef enum {
  FRAME_CODE_NO_ERROR = 0,
  FRAME_CODE_PROTOCOL = 1,
  FRAME_CODE_FLOW_CONTROL = 2,
  FRAME_CODE_STREAM_CLOSED = 3,
  FRAME_CODE_REFUSED = 4,
  FRAME_CODE_UNREACHABLE = 5,
  FRAME_CODE_CONNECT_ERROR = 6,
  FRAME_CODE_RESET = 7,
  FRAME_CODE_INTERNAL = 8,
  FRAME_CODE_LIMIT = 9,
  FRAME_CODE_SHUTDOWN = 10,
  FRAME_CODE_UNKNOWN_STREAM = 11,
} frame_code_t;

/* Decoder results. FRAME_ENEED is not an error: more bytes are needed. */
typedef enum {
  FRAME_OK = 0,
  FRAME_ENEED = -1,
  FRAME_ETYPE = -2,   /* unknown frame type */
  FRAME_EFLAGS = -3,  /* non-zero flags or reserved bits */
  FRAME_ETOOBIG = -4, /* payload length above FRAME_MAX_PAYLOAD */
  FRAME_ESIZE = -5,   /* payload size wrong for the type */
  FRAME_ESTREAM =
      -6, /* stream id 0 on a stream frame, or non-zero on a connection frame */
  FRAME_ETRUNCATED = -7, /* reader: message ended inside a frame */
  FRAME_ENOMEM = -8      /* reader: no memory to gather a split frame */
} frame_err_t;

/*
 * A decoded frame. Pointers point into the buffer that was decoded and are
 * valid only as long as it is. Fields not used by the type are zero.
 */
typedef struct {
  uint8_t type;
  uint8_t flags; /* header flags: FRAME_WINDOW_GROW on WINDOW, else 0 */
  uint32_t stream_id;
  const uint8_t *payload; /* whole payload as on the wire */
  uint32_t length;
  uint32_t window;         /* OPEN, OPEN_OK: window; WINDOW: increment */
  uint16_t code;           /* OPEN_FAIL, RST, GOAWAY */
  uint32_t last_stream_id; /* GOAWAY */
  const char *reason;      /* OPEN_FAIL, RST, GOAWAY: not NUL-terminated */
  size_t reason_len;
  const uint8_t *ping; /* PING, PONG: FRAME_PING_LEN bytes */
  /* HELLO */
  const uint8_t *session_id; /* FRAME_SESSION_ID_LEN bytes */
  uint8_t hello_flags;
  uint32_t grace_ms;
  /* RESUME (last_stream_id above too) */
  uint8_t more;           /* another RESUME frame follows */
  uint32_t count;         /* entries */
  const uint8_t *entries; /* count * FRAME_RESUME_ENTRY_LEN bytes */
} frame_t;

/* One stream's state in a RESUME frame. */
typedef struct {
  uint32_t stream_id;
  uint8_t flags;     /* FRAME_RESUME_OPENED, _FIN_RECEIVED, _ENDED */
  uint64_t received; /* DATA bytes received on the stream so far */
  uint64_t granted;  /* credit granted back (WINDOW increments) so far */
} frame_resume_entry_t;

/* Entry i (< f->count) of a decoded RESUME frame. */
void frame_resume_entry(const frame_t *f, uint32_t i, frame_resume_entry_t *e);
/* Encode one entry at out (FRAME_RESUME_ENTRY_LEN bytes). */
void frame_resume_entry_encode(uint8_t *out, const frame_resume_entry_t *e);

/* Human-readable name of a type ("DATA"), or "UNKNOWN". */
const char *frame_type_name(uint8_t type);
/* Stable text for a frame_code_t ("REFUSED"), or "UNKNOWN". */
const char *frame_code_name(uint16_t code);
/* Text for a frame_err_t. */
const char *frame_strerror(int err);

/*
 * Decode one frame from buf[0..len). On FRAME_OK fills *f and sets *used to
 * the bytes the frame occupies. FRAME_ENEED when len is short of a whole
 * frame (never when the header alone is already invalid: header errors are
 * reported as soon as 12 bytes are there). Negative frame_err_t otherwise.
 */
int frame_decode(const uint8_t *buf, size_t len, frame_t *f, size_t *used);

/* Write the 12-byte header of any frame. Returns FRAME_HEADER_LEN. */
size_t frame_encode_header(uint8_t *out, uint8_t type, uint32_t stream_id,
                           uint32_t length);

/*
 * Encode a control frame (every type but DATA) from f's typed fields
 * (window, code, last_stream_id, reason/reason_len, ping) into out, which has
 * room for cap bytes. A reason longer than FRAME_REASON_MAX is cut.
 * Returns the encoded size, or 0 when cap is too small or type is DATA or
 * unknown.
 */
size_t frame_encode(uint8_t *out, size_t cap, const frame_t *f);

/*
 * Incremental decoder over the bytes of WebSocket messages. Complete frames
 * inside a chunk are handed out without copying; only a frame split across
 * chunks is gathered into buf (owned by the reader, at most
 * FRAME_HEADER_LEN + FRAME_MAX_PAYLOAD bytes, freed by frame_reader_free).
 */
typedef struct {
  uint8_t *buf;
  size_t len;
  size_t cap;
} frame_reader_t;

/* Called once per decoded frame; a positive return stops frame_reader_feed
 * and is returned by it (negative values are reserved for frame_err_t). */
typedef int (*frame_reader_cb)(void *ctx, const frame_t *f);

void frame_reader_init(frame_reader_t *r);
void frame_reader_free(frame_reader_t *r);
/*
 * Feed len bytes. end_of_message says this chunk ends a WebSocket message,
 * so the reader must then be at a frame boundary (else FRAME_ETRUNCATED).
 * Returns FRAME_OK, a negative frame_err_t on a protocol error or
 * FRAME_ENOMEM (the reader is then unusable), or the callback's positive
 * value (the rest of the chunk is then dropped).
 */
int frame_reader_feed(frame_reader_t *r, const uint8_t *data, size_t len,
                      int end_of_message, frame_reader_cb cb, void *ctx);

#endif
