/*
 * libFuzzer target for the stream state machine (ws/session.c with frame.c,
 * sched.c and buf.c compiled in): one session, CLIENT or SERVER, whose peer,
 * application and transport (the link going down and coming back, resumed
 * or not) are all played by the input.
 *
 * Input layout
 *
 *   byte 0   config: bit 0 role (0 client, 1 server); bits 1-2 window
 *            (16 KiB, 64 KiB, 256 KiB, 16 MiB); bits 3-5 max_streams
 *            (1, 2, 3, 8, 64, 1024, 1024, 1024); bit 6 sets the optional
 *            goaway and pong callbacks; bit 7 ends with session_abort
 *            (always done after a protocol error) before session_free.
 *   then     operations, read from the FRONT: one op byte b, then its
 *            operands: b % 11 picks one of 0-10 below, except that b >=
 *            0xf0 picks a link op, L(b - 0xf0) % 5. Bytes past the end read
 *            as 0.
 *              0 MSG      u16 n, then n bytes: one WebSocket message as is
 *              1 FRAMES   c, then c % 8 + 1 frame specs (below), encoded
 *                         back to back into one message
 *              2 OPEN     session_stream_open (NULL is expected on a server)
 *              3 WRITE    sel, u16 n: write n pattern bytes to a stream
 *              4 FIN      sel: session_stream_fin
 *              5 RESET    sel, code: session_stream_reset
 *              6 CONSUME  sel, u16 n: session_stream_consumed (at most what
 *                         the stream delivered and was not consumed yet)
 *              7 ANSWER   sel: accept or refuse a pending incoming stream
 *              8 PUMP     n: up to n + 1 session_build_message calls, while
 *                         the transport would be writable
 *              9 CONTROL  b: even b sends PING (8 bytes follow), odd b
 *                         GOAWAY (code byte, reason length byte)
 *             10 END      no more operations: the bytes after it are only
 *                         read as decisions
 *   Link ops (op byte 0xf0 + k, k % 5):
 *             L0 DOWN    the WebSocket is gone: session_link_down
 *             L1 UP      i: a new WebSocket. Server: session_link_up
 *                        (resume), HELLO id starting with byte i (a new
 *                        session is a new session_t, as on the edge, whose
 *                        first HELLO the harness sends at the start);
 *                        client: attached, waiting for the edge's HELLO
 *             L2 HELLO   r: the peer's HELLO, resumed = r & 1. A client on
 *                        a later WebSocket answers as the relay does:
 *                        resumed: session_link_up(resume); else, once
 *                        session_feed returned, session_restart and
 *                        session_link_up(fresh)
 *             L3 RESUME  the peer's RESUME, made of what the harness knows
 *                        of the streams: c (c % 3 + 1 frames, `more` on
 *                        all but the last; c & 4: one message each), the
 *                        last stream id byte (0xff: a raw u32 follows),
 *                        then for each stream ever made a byte m: m % 4 ==
 *                        0 leaves it out; m & 0x20: flags (m >> 2) & 7
 *                        instead of the true ones; m >> 6 picks `received`:
 *                        all we sent, that minus a u16 (lost), a raw u32
 *                        (often out of range), 0; `granted` is `received`
 *                        minus a u16 (never below 0). Then x, and x % 3
 *                        entries: raw u32 id, flags byte, u16 received.
 *             L4 RESTART c: a client with no link: session_restart (the
 *                        edge lost the session), as the proxy does once
 *                        the link was down past the grace period
 *            MSG, FRAMES and the link ops that feed are skipped while there
 *            is no link (nothing arrives without a WebSocket).
 *            `sel` picks a stream: the sel % n-th of the n live ones.
 *   Frame spec: type byte t (t < 0x80: type t % 12 + 1, else raw t & 0x7f);
 *            stream byte s (0xff: a raw u32 id follows, else id s);
 *            length byte l: l >= 0xf0 means a raw u16 length follows and
 *            the payload is taken from the input, otherwise the length is
 *            the type's natural one derived from l (DATA: l * 64 + 1
 *            bytes of filler, reasons: l % 64 bytes) and the fixed fields
 *            (windows, codes, ping bytes) are read from the input.
 *   Decisions  every choice the application makes inside a callback (and
 *            how a message is split into chunks, the capacity given to
 *            session_build_message, ...) is one byte read from the BACK of
 *            the input (0 once front and back meet), like
 *            FuzzedDataProvider does for integers.
 *
 * Oracles (abort on violation; ASan/UBSan/LSan do the rest):
 *   - every built message is at most min(cap, SESSION_MSG_MAX) bytes and
 *     decodes with frame_decode into whole, valid frames;
 *   - frames fit the role (only a client sends OPEN, only a server
 *     OPEN_OK/OPEN_FAIL), a DATA frame fits in a message (a quantum unless
 *     its stream was alone in the run queue) and
 *     carries exactly the next bytes the application wrote on that stream,
 *     only after the stream was opened; nothing follows our RST or
 *     OPEN_FAIL of a stream, no DATA or FIN follows our FIN, and FIN comes
 *     only after every written byte;
 *   - session_stream_count() == streams created - streams ended (by
 *     stream_closed, reset or refuse), after every operation and abort;
 *   - callbacks only name live streams; the application never holds more
 *     unconsumed bytes than its window; NO_ERROR closes come after our FIN
 *     with nothing left queued;
 *   - a stream that ended in order gets one FIN more (the acknowledgement
 *     of the peer's FIN) per link; after the peer's RESUME says it lacks
 *     our last bytes or FIN, they come again exactly from the offset it
 *     gave; OPEN and OPEN_OK at most once per link;
 *   - with no link nothing is built; after session_link_up(resume) only
 *     HELLO and RESUME go out until the peer's RESUME is in, and our RESUME
 *     is true to the streams at that moment: every open one exactly once,
 *     with the bytes it delivered, the credit it granted, whether it was
 *     opened and saw the peer's FIN; ENDED only for streams that ended in
 *     order; at most SESSION_KEPT_MAX of those are kept;
 *   - a transport that asks for a writable callback only when want_write
 *     fires, and stops when session_build_message returns 0, never leaves
 *     the session wanting to write (data would be stuck).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/check.h"
#include "base/buf.h"
#include "ws/frame.h"
#include "ws/session.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_RECS 256
#define MAX_OPS 2048
#define MSG_BUF (2 * SESSION_MSG_MAX)
#define PUMP_MAX 4096 /* builds at the end before giving up */

/* What the application knows of one stream. Records are never reused, so
 * a callback naming an ended stream is caught. */
typedef struct {
  session_stream_t *st; /* NULL once ended */
  uint32_t id;
  int pending;    /* server: incoming, not answered yet */
  int open_ok;    /* client: stream_open_ok seen */
  int peer_fin;   /* stream_fin seen */
  int fin_called; /* session_stream_fin called */
  int full;       /* session_stream_write said stop */
  size_t unconsumed;
  uint64_t grown;      /* WINDOW_GROW increments we sent */
  uint64_t tx_written; /* pattern bytes handed to session_stream_write */
  uint64_t rx_total;   /* bytes stream_data delivered */
  int closed_ok;       /* ended with NO_ERROR (it may be kept) */
  size_t ended_build;  /* z->builds when it ended */
  /* what went out on the wire */
  uint64_t wire_off;
  uint64_t granted; /* WINDOW increments (not growth) we sent */
  int wire_opened;  /* OPEN / OPEN_OK sent, on any link */
  int link_open;    /* ... on this link */
  int wire_fin, wire_ack, wire_rst;
} rec_t;

/* Where a stream stood when we queued our RESUME. */
typedef struct {
  uint32_t id;
  uint64_t rx, granted;
  int opened, fin, ended, seen;
} snap_t;

typedef struct {
  const uint8_t *data;
  size_t front, back; /* ops from data[front..], decisions from data[..back) */
} input_t;

typedef struct {
  input_t in;
  session_t *s;
  session_config_t cfg;
  session_callbacks_t cb;
  rec_t recs[MAX_RECS];
  size_t nrecs;
  size_t created, ended;
  int armed;  /* the transport asked for a writable callback */
  int failed; /* session_feed returned -1 */
  int aborting;
  int ops_done; /* END seen */
  /* the link */
  int attached;   /* a WebSocket is there (bytes may arrive) */
  int links;      /* WebSockets so far */
  int awaiting;   /* our RESUME is queued; the peer's is not in yet */
  int need_fresh; /* client: HELLO said the edge lost the session */
  frame_resume_entry_t peer[MAX_RECS + 8]; /* the peer's RESUME, gathering */
  size_t npeer;
  int peer_overflow;
  snap_t snap[MAX_RECS]; /* what our RESUME must say */
  size_t nsnap;
  int our_resume_done; /* our last RESUME frame (more = 0) went out */
  int goaway_called;
  size_t builds; /* session_build_message calls, the current one included */
} fz_t;

/* WSMUX_FUZZ_TRACE=1 prints every frame in and out (to debug a finding). */
static int trace;
static uint8_t msgbuf[MSG_BUF];
static uint8_t feedbuf[8 * (FRAME_HEADER_LEN + FRAME_MAX_PAYLOAD)];

/* ---- input ------------------------------------------------------------- */

static int more(const input_t *in) {
  return in->front < in->back;
}

static uint8_t next(input_t *in) {
  return more(in) ? in->data[in->front++] : 0;
}

static uint16_t next16(input_t *in) {
  uint16_t hi = next(in);
  return (uint16_t)(hi << 8 | next(in));
}

static uint32_t next32(input_t *in) {
  uint32_t v = next16(in);
  return v << 16 | next16(in);
}

static uint8_t decide(input_t *in) {
  return more(in) ? in->data[--in->back] : 0;
}

/* ---- streams ----------------------------------------------------------- */

static uint8_t pattern(uint32_t id, uint64_t off) {
  return (uint8_t)(id * 131u + off * 7u + (off >> 8));
}

static rec_t *rec_of(fz_t *z, session_stream_t *st) {
  rec_t *r = session_stream_user(st);
  CHECK(r != NULL);
  CHECK(r >= z->recs && r < z->recs + z->nrecs);
  CHECK(r->st == st);
  return r;
}

static rec_t *rec_by_id(fz_t *z, uint32_t id) {
  for (size_t i = z->nrecs; i-- > 0;)
    if (z->recs[i].id == id)
      return &z->recs[i];
  return NULL;
}

static rec_t *rec_new(fz_t *z, session_stream_t *st) {
  rec_t *r;
  if (z->nrecs == MAX_RECS)
    return NULL;
  r = &z->recs[z->nrecs++];
  memset(r, 0, sizeof *r);
  r->st = st;
  r->id = session_stream_id(st);
  session_stream_set_user(st, r);
  z->created++;
  return r;
}

static void rec_end(fz_t *z, rec_t *r) {
  r->st = NULL;
  r->ended_build = z->builds;
  z->ended++;
}

/* Whether r may be on the wire in the message just built: open, ended
 * while it was built (a callback of the build), or ended in order (kept:
 * what it sends again after a resume). */
static int rec_sends(const fz_t *z, const rec_t *r) {
  return r->st != NULL || r->closed_ok || r->ended_build == z->builds;
}

/* The sel-th live stream (pending ones only when want_pending). */
static rec_t *pick(fz_t *z, uint8_t sel, int want_pending) {
  size_t n = 0, k;
  for (size_t i = 0; i < z->nrecs; i++)
    n += z->recs[i].st != NULL && z->recs[i].pending == want_pending;
  if (n == 0)
    return NULL;
  k = sel % n;
  for (size_t i = 0; i < z->nrecs; i++)
    if (z->recs[i].st != NULL && z->recs[i].pending == want_pending && k-- == 0)
      return &z->recs[i];
  return NULL;
}

/* Every stream the harness opens is tracked, so it stops at MAX_RECS. */
static void app_open(fz_t *z) {
  session_stream_t *st;

  if (z->nrecs == MAX_RECS)
    return;
  st = session_stream_open(z->s, NULL);
  if (z->cfg.role == SESSION_ROLE_SERVER || z->aborting)
    CHECK(st == NULL);
  if (st != NULL)
    CHECK(rec_new(z, st) != NULL);
}

static void app_write(fz_t *z, rec_t *r, size_t n) {
  uint8_t off = decide(&z->in) % 4;
  buf_chunk_t *c;

  if (r->st == NULL || r->pending || r->full || r->fin_called)
    return;
  c = buf_chunk_new(off + n);
  CHECK(c != NULL);
  memset(c->data, 0xEE, off);
  for (size_t i = 0; i < n; i++)
    c->data[off + i] = pattern(r->id, r->tx_written + i);
  c->off = off;
  c->len = off + n;
  r->tx_written += n;
  r->full = session_stream_write(r->st, c);
  if (session_stream_queued(r->st) >= SESSION_SENDQ_MAX)
    CHECK(r->full);
}

static void app_fin(fz_t *z, rec_t *r) {
  if (r->st == NULL || r->pending || r->fin_called)
    return;
  r->fin_called = 1;
  session_stream_fin(r->st);
}

static void app_reset(fz_t *z, rec_t *r, uint8_t code) {
  if (r->st == NULL || r->pending)
    return;
  /* Any code but UNKNOWN_STREAM, which the oracle reads as the session's
   * answer to a frame for an id not opened yet. */
  session_stream_reset(r->st, code % FRAME_CODE_UNKNOWN_STREAM, "fuzz reset");
  rec_end(z, r);
}

static void app_consume(fz_t *z, rec_t *r, size_t n) {
  if (r->st == NULL || r->pending)
    return;
  if (n > r->unconsumed)
    n = r->unconsumed;
  r->unconsumed -= n;
  session_stream_consumed(r->st, n);
}

static void app_answer(fz_t *z, rec_t *r, uint8_t how) {
  if (r->st == NULL || !r->pending)
    return;
  r->pending = 0;
  if (how % 4 == 3) {
    session_stream_refuse(r->st, how % 12, "fuzz refuse");
    rec_end(z, r);
    return;
  }
  session_stream_accept(r->st);
  if (how % 4 == 1)
    app_write(z, r, (size_t)decide(&z->in) * 97 + 1);
}

/* ---- callbacks --------------------------------------------------------- */

static void cb_want_write(void *ctx) {
  fz_t *z = ctx;
  z->armed = 1;
}

static void cb_incoming(void *ctx, session_stream_t *st) {
  fz_t *z = ctx;
  rec_t *r;

  CHECK(z->cfg.role == SESSION_ROLE_SERVER);
  CHECK(session_stream_user(st) == NULL);
  CHECK(rec_by_id(z, session_stream_id(st)) == NULL);
  r = rec_new(z, st);
  if (r == NULL) {
    session_stream_refuse(st, FRAME_CODE_INTERNAL, "harness full");
    return;
  }
  r->pending = 1;
  switch (decide(&z->in) % 4) {
  case 0:
    break; /* answered later by an ANSWER op */
  case 1:
  case 2:
    app_answer(z, r, 0);
    break;
  default:
    app_answer(z, r, 3);
  }
}

static void cb_open_ok(void *ctx, session_stream_t *st) {
  fz_t *z = ctx;
  rec_t *r = rec_of(z, st);

  CHECK(z->cfg.role == SESSION_ROLE_CLIENT);
  CHECK(!r->open_ok);
  r->open_ok = 1;
  switch (decide(&z->in) % 4) {
  case 1:
    app_write(z, r, (size_t)decide(&z->in) * 131 + 1);
    break;
  case 2:
    app_fin(z, r);
    break;
  case 3:
    if (decide(&z->in) & 1)
      app_reset(z, r, FRAME_CODE_RESET);
    break;
  }
}

static void cb_data(void *ctx, session_stream_t *st, const uint8_t *data,
                    size_t len) {
  fz_t *z = ctx;
  rec_t *r = rec_of(z, st);

  CHECK(len > 0 && len <= FRAME_MAX_PAYLOAD);
  CHECK(!r->pending);
  CHECK(!r->peer_fin);
  CHECK(z->cfg.role == SESSION_ROLE_SERVER || r->open_ok);
  (void)data[len - 1];
  r->unconsumed += len;
  r->rx_total += len;
  /* The window may have grown (the frame saying so can still be queued):
   * never beyond SESSION_WINDOW_GROW_MAX, checked on the wire too. */
  CHECK(r->unconsumed <= z->cfg.window ||
        r->unconsumed <= SESSION_WINDOW_GROW_MAX);
  switch (decide(&z->in) % 8) {
  case 0:
  case 1:
    app_consume(z, r, r->unconsumed);
    break;
  case 2:
    break;
  case 3:
    app_consume(z, r, len / 2);
    break;
  case 4:
    app_write(z, r, len);
    break;
  case 5:
    app_fin(z, r);
    break;
  case 6:
    app_reset(z, r, FRAME_CODE_RESET);
    break;
  default:
    app_consume(z, r, len);
    if (r->st != NULL)
      app_write(z, r, len);
  }
}

static void cb_fin(void *ctx, session_stream_t *st) {
  fz_t *z = ctx;
  rec_t *r = rec_of(z, st);

  CHECK(!r->pending);
  CHECK(!r->peer_fin);
  r->peer_fin = 1;
  switch (decide(&z->in) % 4) {
  case 1:
    app_fin(z, r);
    break;
  case 2:
    app_reset(z, r, FRAME_CODE_RESET);
    break;
  case 3:
    app_consume(z, r, r->unconsumed);
    break;
  }
}

static void cb_drained(void *ctx, session_stream_t *st) {
  fz_t *z = ctx;
  rec_t *r = rec_of(z, st);

  CHECK(r->full);
  CHECK(session_stream_queued(st) < SESSION_SENDQ_MAX);
  r->full = 0;
  switch (decide(&z->in) % 4) {
  case 1:
    app_write(z, r, (size_t)decide(&z->in) * 257 + 1);
    break;
  case 2:
    app_reset(z, r, FRAME_CODE_RESET);
    break;
  case 3:
    app_fin(z, r);
    break;
  }
}

static void cb_closed(void *ctx, session_stream_t *st, uint16_t code,
                      const char *reason, size_t reason_len) {
  fz_t *z = ctx;
  rec_t *r = rec_of(z, st);
  uint8_t d;

  CHECK(reason_len == 0 || reason != NULL);
  if (reason_len > 0)
    (void)reason[reason_len - 1];
  if (code == FRAME_CODE_NO_ERROR && !z->aborting) {
    CHECK(r->fin_called);
    CHECK(session_stream_queued(st) == 0);
    r->closed_ok = 1;
  }
  rec_end(z, r);
  d = decide(&z->in);
  if (d % 4 == 1 && z->cfg.role == SESSION_ROLE_CLIENT) {
    app_open(z);
  } else if (d % 4 == 2) {
    rec_t *o = pick(z, decide(&z->in), 0);
    if (o != NULL)
      app_reset(z, o, FRAME_CODE_RESET);
  }
}

static void cb_goaway(void *ctx, uint32_t last, uint16_t code,
                      const char *reason, size_t reason_len) {
  if (reason_len > 0)
    (void)reason[reason_len - 1];
}

static void cb_pong(void *ctx, const uint8_t *payload) {
  (void)payload[FRAME_PING_LEN - 1];
}

/* ---- the link ---------------------------------------------------------- */

/* What our RESUME must say: taken when session_link_up(resume) queues it. */
static void snap_take(fz_t *z) {
  int client = z->cfg.role == SESSION_ROLE_CLIENT;
  z->nsnap = 0;
  z->our_resume_done = 0;
  for (size_t i = 0; i < z->nrecs; i++) {
    rec_t *r = &z->recs[i];
    if (r->st == NULL && !r->closed_ok)
      continue;
    z->snap[z->nsnap++] = (snap_t){.id = r->id,
                                   .rx = r->rx_total,
                                   .granted = r->granted,
                                   .opened = client ? r->open_ok : !r->pending,
                                   .fin = r->peer_fin,
                                   .ended = r->st == NULL};
  }
}

/* session_link_up, with what the harness expects from then on. (During
 * session_feed, feed() sets awaiting and the peer's RESUME again from the
 * message itself, see observe_peer.) */
static void link_up(fz_t *z, int resume, const session_hello_t *hello) {
  z->npeer = 0;
  z->peer_overflow = 0;
  if (resume)
    snap_take(z);
  z->awaiting = resume;
  session_link_up(z->s, resume, hello);
  CHECK(session_link_is_up(z->s));
}

static void link_down(fz_t *z) {
  session_link_down(z->s);
  CHECK(!session_link_is_up(z->s));
  z->attached = 0;
  z->armed = 0;
  z->awaiting = 0;
  z->npeer = 0;
  z->nsnap = 0;
  z->need_fresh = 0;
  /* What was sent on the old link may be sent again on the next. */
  for (size_t i = 0; i < z->nrecs; i++) {
    z->recs[i].link_open = 0;
    z->recs[i].wire_rst = 0;
  }
}

/* Client: the edge's HELLO, as the relay answers it. */
static void cb_hello(void *ctx, const uint8_t *session_id, int resumed,
                     uint32_t grace_ms) {
  fz_t *z = ctx;

  (void)session_id[FRAME_SESSION_ID_LEN - 1];
  CHECK(z->cfg.role == SESSION_ROLE_CLIENT);
  if (z->links < 2)
    return; /* the first WebSocket: nothing to resume */
  if (resumed)
    link_up(z, 1, NULL);
  else
    z->need_fresh = 1; /* once session_feed has returned */
}

/* The peer's RESUME went through (the session applied it): what we send
 * from now on starts where it says. */
static void peer_resume_applied(fz_t *z) {
  for (size_t i = 0; i < z->npeer; i++) {
    const frame_resume_entry_t *e = &z->peer[i];
    rec_t *r = rec_by_id(z, e->stream_id);
    if (r == NULL)
      continue;
    /* Counts the session accepts rewind it there; others reset the
     * stream, after which it sends nothing. */
    if (e->received <= r->wire_off && e->granted <= e->received)
      r->wire_off = e->received;
    if (!(e->flags & FRAME_RESUME_FIN_RECEIVED))
      r->wire_fin = r->wire_ack = 0;
    /* A client saying it has our OPEN_OK is taken at its word (the OPEN_OK
     * is not sent again): DATA may follow. */
    if (z->cfg.role == SESSION_ROLE_SERVER &&
        (e->flags & FRAME_RESUME_OPENED) && r->st != NULL && !r->pending)
      r->wire_opened = 1;
  }
  z->npeer = 0;
  z->awaiting = 0;
}

/* Follow the HELLO and RESUME frames of a message the session took. */
static void observe_peer(fz_t *z, const uint8_t *msg, size_t n) {
  size_t off = 0, used;
  frame_t f;

  while (off < n && frame_decode(msg + off, n - off, &f, &used) == FRAME_OK) {
    off += used;
    if (f.type == FRAME_HELLO && z->cfg.role == SESSION_ROLE_CLIENT &&
        z->links >= 2 && (f.hello_flags & FRAME_HELLO_RESUMED)) {
      z->npeer = 0; /* cb_hello ran link_up(resume) */
      z->peer_overflow = 0;
      z->awaiting = 1;
    } else if (f.type == FRAME_RESUME) {
      for (uint32_t i = 0; i < f.count; i++) {
        frame_resume_entry_t e;
        frame_resume_entry(&f, i, &e);
        if (rec_by_id(z, e.stream_id) == NULL)
          continue; /* nothing to expect of it */
        /* More than fit: some id twice, which the session refuses. */
        if (z->npeer < sizeof z->peer / sizeof z->peer[0])
          z->peer[z->npeer++] = e;
        else
          z->peer_overflow = 1;
      }
      if (!f.more) {
        /* Taken only while awaiting (else the session failed). */
        CHECK(z->awaiting && !z->peer_overflow);
        peer_resume_applied(z);
      }
    }
  }
}

/* ---- output ------------------------------------------------------------ */

/* Our RESUME frame: each entry as the streams stood when it was queued
 * (z->snap); the last frame, every open stream listed. */
static void check_our_resume(fz_t *z, const frame_t *f) {
  CHECK(z->nsnap > 0 || f->count == 0);
  CHECK(!z->our_resume_done);
  for (uint32_t i = 0; i < f->count; i++) {
    frame_resume_entry_t e;
    snap_t *sn = NULL;
    frame_resume_entry(f, i, &e);
    for (size_t k = 0; k < z->nsnap && sn == NULL; k++)
      if (z->snap[k].id == e.stream_id)
        sn = &z->snap[k];
    CHECK(sn != NULL && !sn->seen);
    sn->seen = 1;
    /* Granted: at least what our WINDOWs carried; a WINDOW still queued
     * when the link dropped counts too (the RESUME gives it instead). */
    CHECK(e.received == sn->rx);
    CHECK(e.granted >= sn->granted && e.granted <= e.received);
    if (sn->ended) {
      /* Ended in order: all received, the peer's FIN included. */
      CHECK(e.flags == (FRAME_RESUME_OPENED | FRAME_RESUME_FIN_RECEIVED |
                        FRAME_RESUME_ENDED));
    } else {
      CHECK(!(e.flags & FRAME_RESUME_ENDED));
      CHECK(((e.flags & FRAME_RESUME_OPENED) != 0) == sn->opened);
      CHECK(((e.flags & FRAME_RESUME_FIN_RECEIVED) != 0) == sn->fin);
    }
  }
  if (f->more)
    return;
  z->our_resume_done = 1;
  for (size_t k = 0; k < z->nsnap; k++)
    CHECK(z->snap[k].seen || z->snap[k].ended); /* an ended one may be gone */
}

static void check_frame(fz_t *z, const frame_t *f) {
  int client = z->cfg.role == SESSION_ROLE_CLIENT;
  rec_t *r = f->stream_id != 0 ? rec_by_id(z, f->stream_id) : NULL;

  /* After session_link_up(resume): HELLO and RESUME, nothing else, until
   * the peer's RESUME is in. */
  if (z->awaiting)
    CHECK(f->type == FRAME_HELLO || f->type == FRAME_RESUME);
  /* Answers a frame the peer sent before opening the id; it may still be
   * queued when the peer then opens the id for real. */
  if (f->type == FRAME_RST && f->code == FRAME_CODE_UNKNOWN_STREAM &&
      r != NULL) {
    CHECK(!r->wire_opened);
    return;
  }
  if (r != NULL) {
    /* Nothing after our RST or OPEN_FAIL of a stream (on this link) but
     * another RST: the answer to a RESUME that crossed the first. */
    CHECK(!r->wire_rst || f->type == FRAME_RST);
    if (f->type == FRAME_DATA)
      CHECK(!r->wire_fin);
  }
  switch (f->type) {
  case FRAME_OPEN:
    CHECK(client);
    CHECK(r != NULL && r->wire_off == 0 && !r->link_open);
    CHECK(f->window == z->cfg.window);
    r->wire_opened = r->link_open = 1;
    break;
  case FRAME_OPEN_OK:
    CHECK(!client);
    CHECK(r != NULL && !r->link_open && !r->pending);
    CHECK(f->window == z->cfg.window);
    r->wire_opened = r->link_open = 1;
    break;
  case FRAME_OPEN_FAIL:
    CHECK(!client);
    if (r != NULL) {
      CHECK(!r->wire_opened);
      r->wire_rst = 1;
    }
    break;
  case FRAME_DATA:
    CHECK(r != NULL);
    CHECK(f->length <= SESSION_MSG_MAX - FRAME_HEADER_LEN);
    /* Client: after the edge's OPEN_OK (which a hostile edge may send
     * before our OPEN went out); server: after our OPEN_OK. */
    CHECK(client ? r->open_ok : r->wire_opened);
    CHECK(rec_sends(z, r));
    CHECK(r->wire_off + f->length <= r->tx_written);
    for (uint32_t i = 0; i < f->length; i++)
      CHECK(f->payload[i] == pattern(r->id, r->wire_off + i));
    r->wire_off += f->length;
    break;
  case FRAME_FIN:
    CHECK(r != NULL);
    if (r->wire_fin) {
      /* The acknowledgement of the peer's FIN: once, on a stream that
       * ended in order. */
      CHECK(r->st == NULL && r->closed_ok && !r->wire_ack);
      r->wire_ack = 1;
      break;
    }
    CHECK(rec_sends(z, r));
    CHECK(r->fin_called && r->wire_off == r->tx_written);
    r->wire_fin = 1;
    break;
  case FRAME_RST:
    if (r != NULL)
      r->wire_rst = 1;
    break;
  case FRAME_WINDOW:
    CHECK(r != NULL);
    CHECK(f->window > 0 && f->window <= SESSION_WINDOW_MAX);
    if (f->flags & FRAME_WINDOW_GROW) {
      r->grown += f->window;
      CHECK(z->cfg.window + r->grown <= SESSION_WINDOW_GROW_MAX);
    } else {
      r->granted += f->window;
      CHECK(r->granted <= r->rx_total);
    }
    break;
  case FRAME_HELLO:
    CHECK(!client);
    break;
  case FRAME_RESUME:
    check_our_resume(z, f);
    break;
  case FRAME_GOAWAY:
    CHECK(z->goaway_called);
    break;
  default:
    break;
  }
}

static void trace_frames(const char *dir, const uint8_t *msg, size_t n) {
  size_t off = 0, used;
  frame_t f;

  while (trace && off < n) {
    int rc = frame_decode(msg + off, n - off, &f, &used);
    if (rc != FRAME_OK) {
      fprintf(stderr, "%s %s\n", dir, frame_strerror(rc));
      return;
    }
    fprintf(stderr, "%s %s id=%u len=%u window=%u code=%u\n", dir,
            frame_type_name(f.type), f.stream_id, f.length, f.window, f.code);
    off += used;
  }
}

static void check_message(fz_t *z, const uint8_t *msg, size_t n, size_t cap) {
  size_t off = 0, used;
  frame_t f;

  trace_frames("out", msg, n);

  CHECK(n <= cap && n <= SESSION_MSG_MAX);
  while (off < n) {
    int rc = frame_decode(msg + off, n - off, &f, &used);
    if (rc != FRAME_OK)
      fprintf(stderr, "built message: frame at %zu: %s\n", off,
              frame_strerror(rc));
    CHECK(rc == FRAME_OK);
    check_frame(z, &f);
    off += used;
  }
  CHECK(off == n);
}

static size_t pick_cap(fz_t *z) {
  static const size_t caps[] = {SESSION_MSG_MAX, FRAME_CONTROL_MAX,
                                FRAME_CONTROL_MAX + 13, 4096, MSG_BUF};
  return caps[decide(&z->in) % (sizeof caps / sizeof caps[0])];
}

/* One writable callback, as the transport does it. */
static int pump_once(fz_t *z) {
  size_t cap, n;
  int wanted = session_want_write(z->s);

  if (!z->armed)
    return 0;
  cap = pick_cap(z);
  z->builds++;
  n = session_build_message(z->s, msgbuf, cap);
  if (wanted)
    CHECK(n > 0); /* else the transport stops while data waits */
  if (n == 0) {
    CHECK(!session_want_write(z->s));
    z->armed = 0;
    return 0;
  }
  check_message(z, msgbuf, n, cap);
  return 1;
}

static void check_state(fz_t *z) {
  size_t ended_ok = 0;

  CHECK(z->created - z->ended == session_stream_count(z->s));
  for (size_t i = 0; i < z->nrecs; i++)
    ended_ok += z->recs[i].st == NULL && z->recs[i].closed_ok;
  CHECK(session_kept_count(z->s) <= SESSION_KEPT_MAX);
  CHECK(session_kept_count(z->s) <= ended_ok);
  if (!z->attached) {
    /* No WebSocket: nothing to send. */
    CHECK(!session_want_write(z->s));
    z->builds++;
    CHECK(session_build_message(z->s, msgbuf, SESSION_MSG_MAX) == 0);
  }
  /* Something to send must have asked for a writable callback. */
  if (session_want_write(z->s))
    CHECK(z->armed);
}

/* ---- feeding ----------------------------------------------------------- */

static void feed(fz_t *z, const uint8_t *msg, size_t n) {
  size_t pos = 0, npeer = z->npeer;
  int pieces = decide(&z->in) % 4 + 1, awaiting = z->awaiting;
  int overflow = z->peer_overflow;

  if (!z->attached)
    return; /* nothing arrives without a WebSocket */
  trace_frames("in ", msg, n);

  for (int i = 0; i < pieces && !z->failed; i++) {
    size_t k = i + 1 == pieces ? n - pos : (n - pos) * decide(&z->in) / 256;
    if (session_feed(z->s, msg + pos, k, i + 1 == pieces) != 0) {
      const char *e = session_error(z->s);
      CHECK(e != NULL && e[0] != '\0');
      CHECK(session_failed(z->s));
      z->failed = 1;
    }
    pos += k;
  }
  if (z->failed)
    return;
  /* Replayed in order: a HELLO's link_up may sit between RESUME frames. */
  z->awaiting = awaiting;
  z->npeer = npeer;
  z->peer_overflow = overflow;
  observe_peer(z, msg, n);
  if (z->need_fresh) {
    /* The edge no longer had our session: as relay_renew_session. */
    z->need_fresh = 0;
    session_restart(z->s, FRAME_CODE_SHUTDOWN, "session expired");
    link_up(z, 0, NULL);
  }
}

static size_t natural_len(uint8_t type, uint8_t l) {
  switch (type) {
  case FRAME_OPEN:
  case FRAME_OPEN_OK:
  case FRAME_WINDOW:
    return 4;
  case FRAME_FIN:
    return 0;
  case FRAME_PING:
  case FRAME_PONG:
    return FRAME_PING_LEN;
  case FRAME_OPEN_FAIL:
  case FRAME_RST:
    return 2 + l % 64;
  case FRAME_GOAWAY:
    return 6 + l % 64;
  case FRAME_DATA:
    return (size_t)l * 64 + 1;
  case 0x0B: /* HELLO, in later protocol versions */
    return 21;
  case 0x0C: /* RESUME: fixed part and l % 4 entries */
    return 9 + (size_t)(l % 4) * 21;
  default:
    return l;
  }
}

/* One frame spec from the input into out; returns its size. */
static size_t build_frame(fz_t *z, uint8_t *out) {
  uint8_t t = next(&z->in), s = next(&z->in), l;
  uint8_t type = t < 0x80 ? (uint8_t)(t % 12 + 1) : (uint8_t)(t & 0x7f);
  uint32_t id = s == 0xff ? next32(&z->in) : s;
  size_t len;

  l = next(&z->in);
  if (l >= 0xf0) {
    len = next16(&z->in);
    frame_encode_header(out, type, id, (uint32_t)len);
    for (size_t i = 0; i < len; i++)
      out[FRAME_HEADER_LEN + i] = next(&z->in);
    return FRAME_HEADER_LEN + len;
  }
  len = natural_len(type, l);
  frame_encode_header(out, type, id, (uint32_t)len);
  for (size_t i = 0; i < len; i++) {
    /* Fixed fields from the input, bulk bytes as filler. */
    int fixed = type == FRAME_DATA ? i < 1 : i < 24;
    out[FRAME_HEADER_LEN + i] = fixed ? next(&z->in) : (uint8_t)('a' + i % 26);
  }
  return FRAME_HEADER_LEN + len;
}

/* ---- the peer's HELLO and RESUME ---------------------------------------- */

static void feed_hello(fz_t *z, int resumed) {
  static const uint8_t id[FRAME_SESSION_ID_LEN] = {0x5e, 0x55};
  frame_t f = {.type = FRAME_HELLO,
               .session_id = id,
               .hello_flags = resumed ? FRAME_HELLO_RESUMED : 0,
               .grace_ms = 60000};
  size_t n = frame_encode(feedbuf, sizeof feedbuf, &f);
  CHECK(n == FRAME_HEADER_LEN + FRAME_HELLO_LEN);
  feed(z, feedbuf, n);
}

/* One entry of the peer's RESUME for r, shaped by m (see the top). */
static frame_resume_entry_t peer_entry(fz_t *z, const rec_t *r, uint8_t m) {
  int client = z->cfg.role == SESSION_ROLE_CLIENT;
  frame_resume_entry_t e = {.stream_id = r->id};
  /* The truth, as far as the harness knows it: the peer saw our OPEN_OK
   * (client: it accepted), our FIN, and has ended the stream if we did. */
  e.flags =
      (uint8_t)((r->wire_opened && (!client || r->open_ok) ? FRAME_RESUME_OPENED
                                                           : 0) |
                (r->wire_fin ? FRAME_RESUME_FIN_RECEIVED : 0));
  if (m & 0x20)
    e.flags = (uint8_t)((m >> 2) & 7);
  switch (m >> 6) {
  case 0:
    e.received = r->wire_off;
    break;
  case 1: {
    uint16_t lost = next16(&z->in);
    e.received = lost < r->wire_off ? r->wire_off - lost : 0;
    break;
  }
  case 2:
    e.received = next32(&z->in);
    break;
  default:
    e.received = 0;
  }
  uint16_t ungranted = next16(&z->in);
  e.granted = ungranted < e.received ? e.received - ungranted : 0;
  return e;
}

static void feed_resume(fz_t *z) {
  static frame_resume_entry_t all[MAX_RECS + 3];
  static uint8_t ent[MAX_RECS * FRAME_RESUME_ENTRY_LEN + 3 * 21];
  uint8_t c = next(&z->in), l = next(&z->in);
  uint32_t last = l == 0xff ? next32(&z->in) : l;
  size_t n = 0, frames = c % 3 + 1, done = 0, len = 0;

  for (size_t i = 0; i < z->nrecs; i++) {
    uint8_t m = next(&z->in);
    if (m % 4 != 0)
      all[n++] = peer_entry(z, &z->recs[i], m);
  }
  for (uint8_t x = next(&z->in) % 3; x > 0; x--)
    all[n++] = (frame_resume_entry_t){.stream_id = next32(&z->in),
                                      .flags = next(&z->in),
                                      .received = next16(&z->in)};
  for (size_t f = 0; f < frames; f++) {
    size_t k = f + 1 == frames ? n - done : (n - done) / (frames - f);
    for (size_t i = 0; i < k; i++)
      frame_resume_entry_encode(ent + i * FRAME_RESUME_ENTRY_LEN,
                                &all[done + i]);
    frame_t fr = {.type = FRAME_RESUME,
                  .more = f + 1 < frames,
                  .last_stream_id = last,
                  .count = (uint32_t)k,
                  .entries = ent};
    size_t m = frame_encode(feedbuf + len, sizeof feedbuf - len, &fr);
    CHECK(m > 0);
    done += k;
    if (c & 4) {
      feed(z, feedbuf + len, m);
      if (z->failed)
        return;
    } else {
      len += m;
    }
  }
  if (len > 0)
    feed(z, feedbuf, len);
}

/* One of the link ops L0-L4. */
static void link_op(fz_t *z, uint8_t code) {
  int client = z->cfg.role == SESSION_ROLE_CLIENT;

  switch (code % 5) {
  case 0:
    if (z->attached)
      link_down(z);
    break;
  case 1: {
    /* A server always resumes: a WebSocket that does not resume gets a new
     * session on the edge. */
    session_hello_t h = {.id = {next(&z->in)}, .grace_ms = 60000};
    if (z->attached)
      break;
    z->attached = 1;
    z->links++;
    if (!client)
      link_up(z, 1, &h);
    break;
  }
  case 2:
    feed_hello(z, next(&z->in) & 1);
    break;
  case 3:
    feed_resume(z);
    break;
  default: {
    uint8_t c = next(&z->in);
    if (!client || z->attached)
      break;
    /* Any code but NO_ERROR, which would read as an orderly end. */
    session_restart(z->s, c % 11 + 1, "fuzz restart");
    CHECK(session_kept_count(z->s) == 0);
  }
  }
}

/* ---- operations -------------------------------------------------------- */

static void op(fz_t *z) {
  uint8_t ob = next(&z->in), code = ob % 11;
  rec_t *r;
  size_t n;

  if (ob >= 0xf0) {
    link_op(z, (uint8_t)(ob - 0xf0));
    return;
  }
  switch (code) {
  case 0:
    n = next16(&z->in);
    for (size_t i = 0; i < n; i++)
      feedbuf[i] = next(&z->in);
    feed(z, feedbuf, n);
    break;
  case 1: {
    int c = next(&z->in) % 8 + 1;
    n = 0;
    for (int i = 0; i < c; i++)
      n += build_frame(z, feedbuf + n);
    feed(z, feedbuf, n);
    break;
  }
  case 2:
    app_open(z);
    break;
  case 3:
    r = pick(z, next(&z->in), 0);
    n = next16(&z->in);
    if (r != NULL)
      app_write(z, r, n + 1);
    break;
  case 4:
    if ((r = pick(z, next(&z->in), 0)) != NULL)
      app_fin(z, r);
    break;
  case 5:
    r = pick(z, next(&z->in), 0);
    n = next(&z->in);
    if (r != NULL)
      app_reset(z, r, (uint8_t)n);
    break;
  case 6:
    r = pick(z, next(&z->in), 0);
    n = next16(&z->in);
    if (r != NULL)
      app_consume(z, r, n);
    break;
  case 7:
    if ((r = pick(z, next(&z->in), 1)) != NULL)
      app_answer(z, r, decide(&z->in));
    break;
  case 8:
    n = (size_t)next(&z->in) + 1;
    for (size_t i = 0; i < n && pump_once(z); i++)
      ;
    break;
  case 10:
    z->ops_done = 1;
    break;
  default: {
    uint8_t b = next(&z->in);
    if (b % 2 == 0) {
      uint8_t ping[FRAME_PING_LEN];
      for (size_t i = 0; i < sizeof ping; i++)
        ping[i] = next(&z->in);
      session_ping(z->s, ping);
    } else {
      char reason[256];
      uint8_t c = next(&z->in);
      size_t k = next(&z->in);
      memset(reason, 'g', k);
      reason[k] = '\0';
      z->goaway_called = 1;
      session_goaway(z->s, c % 12, reason);
    }
  }
  }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  trace = getenv("WSMUX_FUZZ_TRACE") != NULL;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const uint32_t windows[] = {SESSION_WINDOW_MIN, 64u * 1024u,
                                     SESSION_WINDOW_DEFAULT,
                                     SESSION_WINDOW_MAX};
  static const uint32_t limits[] = {1, 2, 3, 8, 64, 1024, 1024, 1024};
  static fz_t z;
  uint8_t conf;
  int ops = 0;

  if (size < 1)
    return 0;
  memset(&z, 0, sizeof z);
  conf = data[0];
  z.in = (input_t){data, 1, size};
  z.cfg.role = conf & 1 ? SESSION_ROLE_SERVER : SESSION_ROLE_CLIENT;
  z.cfg.window = windows[(conf >> 1) & 3];
  z.cfg.max_streams = limits[(conf >> 3) & 7];
  z.cb = (session_callbacks_t){
      .want_write = cb_want_write,
      .stream_incoming = cb_incoming,
      .stream_open_ok = cb_open_ok,
      .stream_data = cb_data,
      .stream_fin = cb_fin,
      .stream_drained = cb_drained,
      .stream_closed = cb_closed,
      .goaway = conf & 0x40 ? cb_goaway : NULL,
      .pong = conf & 0x40 ? cb_pong : NULL,
      .hello = cb_hello,
  };
  z.s = session_new(&z.cfg, &z.cb, &z);
  CHECK(z.s != NULL);
  z.attached = 1;
  z.links = 1;
  if (z.cfg.role == SESSION_ROLE_SERVER) {
    /* The edge's first frame on a new session (edge.c new_session). */
    session_hello_t h = {.id = {1}, .grace_ms = 60000};
    link_up(&z, 0, &h);
  }

  while (more(&z.in) && !z.ops_done && !z.failed && ops++ < MAX_OPS) {
    op(&z);
    if (!z.failed)
      check_state(&z);
  }
  if (!z.failed) {
    /* Drain what is left, as a writable socket would. */
    for (int i = 0; i < PUMP_MAX && pump_once(&z); i++)
      ;
    check_state(&z);
  }
  if (z.failed || (conf & 0x80)) {
    z.aborting = 1;
    session_abort(z.s, FRAME_CODE_SHUTDOWN, "fuzz abort");
    CHECK(session_stream_count(z.s) == 0);
    CHECK(z.created == z.ended);
    CHECK(session_stream_open(z.s, NULL) == NULL);
  }
  session_free(z.s);
  return 0;
}
