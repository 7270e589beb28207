/* Unit tests for the stream state machine and flow control (ws/session.[ch],
 * docs/PROTOCOL.md sections 2-6): a CLIENT and a SERVER session wired to
 * each other in memory. Every message built by one side is decoded and
 * checked by a wire monitor (message size, DATA quantum, credit never
 * overdrawn, control frames first, nothing after RST/FIN) before it is fed
 * to the other side. Hand-crafted frames (ws/frame.h) are injected to test
 * the error paths.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ws/frame.h"
#include "ws/session.h"

#define MAX_ID 256    /* stream ids the harness tracks (ids below this) */
#define LOG_MAX 16384 /* non-DATA frames logged per side */
#define MSGBUF (2 * SESSION_MSG_MAX) /* more than allowed: checks the clamp */
#define UNKNOWN_ID 201               /* an odd id no test opens */

/* ---- harness ------------------------------------------------------------ */

typedef struct side side_t;

typedef struct {
  uint8_t type;
  uint32_t id;
  uint32_t window;
  uint16_t code;
  char reason[96];
} wire_ev_t;

/* What the application saw of one stream, and what it does. */
typedef struct {
  session_stream_t *st; /* NULL once ended */
  int incoming, open_ok, fins, closes, drained, data_calls;
  uint16_t code;
  char reason[FRAME_REASON_MAX + 1];
  size_t reason_len;
  size_t rx;         /* bytes received (each checked against the pattern) */
  size_t rx_at_fin;  /* rx when the peer's FIN was seen */
  size_t unconsumed; /* received, not yet passed to session_stream_consumed */
  /* sending side of the application */
  size_t tx_goal, tx_off;
  int tx_fin;   /* FIN once tx_goal bytes are written */
  int fin_done; /* session_stream_fin called */
  int full;     /* session_stream_write said stop */
  /* behaviours */
  int no_consume;       /* never call session_stream_consumed */
  int reset_on_data;    /* session_stream_reset from stream_data */
  int reset_on_drained; /* session_stream_reset from stream_drained */
  int reset_on_open_ok; /* session_stream_reset from stream_open_ok */
  int fin_on_fin;       /* answer the peer's FIN with ours, from stream_fin */
} srec_t;

struct side {
  session_t *s;
  session_role_t role;
  uint32_t window;
  side_t *peer;
  session_callbacks_t cb;
  srec_t rec[MAX_ID];
  int auto_accept; /* server: 1 accept, -1 refuse, 0 leave to the test */
  int auto_consume;
  size_t wchunk; /* application write size */
  int wants;     /* want_write calls since the session last went idle */
  int pongs;
  uint8_t pong[FRAME_PING_LEN];
  int goaways;
  uint32_t goaway_last;
  uint16_t goaway_code;
  char goaway_reason[64];
  int closes_total;
  int reset_other_on_close; /* from stream_closed, reset another stream */
  int reopen_budget;        /* client: open a new stream from stream_closed */
  /* wire monitor: frames this side sent */
  wire_ev_t log[LOG_MAX];
  size_t nlog;
  size_t msgs, max_msg, data_frames, mixed_msgs;
  uint8_t msg_first_type;
  int64_t credit[MAX_ID]; /* this side's DATA credit per stream */
  size_t data_sent[MAX_ID];
  uint8_t w_open_ok[MAX_ID]; /* OPEN_OK seen on the wire */
  uint8_t w_fin[MAX_ID];     /* this side sent FIN */
  uint8_t w_end[MAX_ID];     /* this side sent RST or OPEN_FAIL */
};

static side_t *C, *S;
static uint8_t msg1[MSGBUF], msg2[MSGBUF];

static uint8_t pat(uint32_t id, int from_server, size_t off) {
  uint32_t x =
      (uint32_t)off * 2654435761u + id * 40503u + (uint32_t)from_server * 977u;
  x ^= x >> 15;
  return (uint8_t)(x >> 7);
}

static srec_t *rec_of(side_t *sd, session_stream_t *st) {
  uint32_t id = session_stream_id(st);
  assert_true(id > 0 && id < MAX_ID);
  return &sd->rec[id];
}

static size_t live_streams(const side_t *sd) {
  size_t n = 0;
  for (size_t i = 0; i < MAX_ID; i++)
    n += sd->rec[i].st != NULL;
  return n;
}

static uint32_t open_stream(side_t *sd);

static void cb_want_write(void *ctx) {
  side_t *sd = ctx;
  sd->wants++;
}

static void cb_incoming(void *ctx, session_stream_t *st) {
  side_t *sd = ctx;
  srec_t *r = rec_of(sd, st);
  assert_int_equal(sd->role, SESSION_ROLE_SERVER);
  assert_int_equal(r->incoming, 0);
  assert_null(r->st);
  assert_null(session_stream_user(st));
  assert_int_equal(session_stream_id(st) & 1, 1);
  r->incoming++;
  r->st = st;
  session_stream_set_user(st, r);
  if (sd->auto_accept > 0) {
    session_stream_accept(st);
  } else if (sd->auto_accept < 0) {
    session_stream_refuse(st, FRAME_CODE_REFUSED, "connection refused");
    r->st = NULL;
  }
}

static void cb_open_ok(void *ctx, session_stream_t *st) {
  side_t *sd = ctx;
  srec_t *r = rec_of(sd, st);
  assert_int_equal(sd->role, SESSION_ROLE_CLIENT);
  assert_ptr_equal(r->st, st);
  assert_ptr_equal(session_stream_user(st), r);
  assert_int_equal(r->open_ok, 0);
  r->open_ok++;
  if (r->reset_on_open_ok) {
    session_stream_reset(st, FRAME_CODE_CONNECT_ERROR, "changed my mind");
    r->st = NULL;
  }
}

static void cb_data(void *ctx, session_stream_t *st, const uint8_t *data,
                    size_t len) {
  side_t *sd = ctx;
  srec_t *r = rec_of(sd, st);
  uint32_t id = session_stream_id(st);
  assert_ptr_equal(r->st, st);
  assert_int_equal(r->closes, 0);
  assert_int_equal(r->fins, 0); /* nothing after the peer's FIN */
  assert_true(len > 0);
  for (size_t k = 0; k < len; k++) {
    if (data[k] != pat(id, sd->role == SESSION_ROLE_CLIENT, r->rx + k))
      fail_msg("stream %u: byte %zu corrupt", id, r->rx + k);
  }
  r->rx += len;
  r->data_calls++;
  if (r->reset_on_data) {
    session_stream_reset(st, FRAME_CODE_RESET, "tcp write failed");
    r->st = NULL;
    return;
  }
  if (sd->auto_consume && !r->no_consume)
    session_stream_consumed(st, len);
  else
    r->unconsumed += len;
}

static void cb_fin(void *ctx, session_stream_t *st) {
  side_t *sd = ctx;
  srec_t *r = rec_of(sd, st);
  assert_ptr_equal(r->st, st);
  assert_int_equal(r->fins, 0);
  assert_int_equal(r->closes, 0);
  r->fins++;
  r->rx_at_fin = r->rx;
  if (r->fin_on_fin && !r->fin_done) {
    r->fin_done = 1;
    session_stream_fin(st);
  }
}

static void cb_drained(void *ctx, session_stream_t *st) {
  side_t *sd = ctx;
  srec_t *r = rec_of(sd, st);
  assert_ptr_equal(r->st, st);
  assert_true(session_stream_queued(st) < SESSION_SENDQ_MAX);
  assert_true(r->full); /* only after write said "full" */
  r->drained++;
  r->full = 0;
  if (r->reset_on_drained) {
    session_stream_reset(st, FRAME_CODE_RESET, "gave up");
    r->st = NULL;
  }
}

static void cb_closed(void *ctx, session_stream_t *st, uint16_t code,
                      const char *reason, size_t reason_len) {
  side_t *sd = ctx;
  srec_t *r = rec_of(sd, st);
  assert_ptr_equal(r->st, st);
  assert_int_equal(r->closes, 0);
  r->closes++;
  r->st = NULL;
  r->code = code;
  assert_true(reason_len <= FRAME_REASON_MAX);
  if (reason_len > 0)
    memcpy(r->reason, reason, reason_len);
  r->reason[reason_len] = '\0';
  r->reason_len = reason_len;
  if (code == FRAME_CODE_NO_ERROR && r->fins == 0)
    r->rx_at_fin = r->rx;
  sd->closes_total++;
  /* Unlinked before the callback. */
  assert_int_equal(session_stream_count(sd->s), live_streams(sd));
  if (sd->reset_other_on_close) {
    for (size_t i = 1; i < MAX_ID; i++) {
      if (sd->rec[i].st != NULL) {
        session_stream_reset(sd->rec[i].st, FRAME_CODE_INTERNAL, "cascade");
        sd->rec[i].st = NULL;
        break;
      }
    }
  }
  if (sd->reopen_budget > 0) {
    sd->reopen_budget--;
    (void)open_stream(sd);
  }
}

static void cb_goaway(void *ctx, uint32_t last, uint16_t code,
                      const char *reason, size_t reason_len) {
  side_t *sd = ctx;
  sd->goaways++;
  sd->goaway_last = last;
  sd->goaway_code = code;
  assert_true(reason_len < sizeof(sd->goaway_reason));
  if (reason_len > 0)
    memcpy(sd->goaway_reason, reason, reason_len);
  sd->goaway_reason[reason_len] = '\0';
}

static void cb_pong(void *ctx, const uint8_t *payload) {
  side_t *sd = ctx;
  sd->pongs++;
  memcpy(sd->pong, payload, FRAME_PING_LEN);
}

static side_t *side_new(session_role_t role, uint32_t window,
                        uint32_t max_streams) {
  side_t *sd = calloc(1, sizeof(*sd));
  assert_non_null(sd);
  sd->role = role;
  sd->window = window;
  sd->auto_accept = 1;
  sd->auto_consume = 1;
  sd->wchunk = 7001;
  sd->cb = (session_callbacks_t){.want_write = cb_want_write,
                                 .stream_incoming = cb_incoming,
                                 .stream_open_ok = cb_open_ok,
                                 .stream_data = cb_data,
                                 .stream_fin = cb_fin,
                                 .stream_drained = cb_drained,
                                 .stream_closed = cb_closed,
                                 .goaway = cb_goaway,
                                 .pong = cb_pong};
  session_config_t cfg = {
      .role = role, .window = window, .max_streams = max_streams};
  sd->s = session_new(&cfg, &sd->cb, sd);
  assert_non_null(sd->s);
  return sd;
}

static void pair_free(void) {
  if (C != NULL) {
    session_free(C->s);
    free(C);
  }
  if (S != NULL) {
    session_free(S->s);
    free(S);
  }
  C = S = NULL;
}

static void pair_init(uint32_t cwin, uint32_t swin, uint32_t max_streams) {
  pair_free();
  C = side_new(SESSION_ROLE_CLIENT, cwin, 0);
  S = side_new(SESSION_ROLE_SERVER, swin, max_streams);
  C->peer = S;
  S->peer = C;
}

static int setup(void **state) {
  pair_init(SESSION_WINDOW_MIN, SESSION_WINDOW_MIN, 64);
  return 0;
}

static int teardown(void **state) {
  pair_free();
  return 0;
}

/* ---- wire monitor ------------------------------------------------------- */

static void monitor(side_t *from, const frame_t *f) {
  side_t *to = from->peer;
  uint32_t id = f->stream_id;
  int tracked = id > 0 && id < MAX_ID;

  if (f->type != FRAME_DATA && from->nlog < LOG_MAX) {
    wire_ev_t *e = &from->log[from->nlog++];
    e->type = f->type;
    e->id = id;
    e->window = f->window;
    e->code = f->code;
    size_t n = f->reason_len < sizeof(e->reason) - 1 ? f->reason_len
                                                     : sizeof(e->reason) - 1;
    if (n > 0)
      memcpy(e->reason, f->reason, n);
    e->reason[n] = '\0';
  }
  if (!tracked)
    return;
  if (from->w_end[id])
    fail_msg("%s frame on stream %u after RST/OPEN_FAIL",
             frame_type_name(f->type), id);
  switch (f->type) {
  case FRAME_OPEN:
    assert_int_equal(from->role, SESSION_ROLE_CLIENT);
    to->credit[id] = f->window;
    break;
  case FRAME_OPEN_OK:
    assert_int_equal(from->role, SESSION_ROLE_SERVER);
    to->credit[id] = f->window;
    from->w_open_ok[id] = to->w_open_ok[id] = 1;
    break;
  case FRAME_DATA:
    from->data_frames++;
    assert_true(f->length <= SESSION_QUANTUM);
    assert_true(from->w_open_ok[id]); /* no DATA before OPEN_OK */
    assert_false(from->w_fin[id]);    /* no DATA after FIN */
    from->credit[id] -= f->length;
    if (from->credit[id] < 0)
      fail_msg("stream %u: DATA beyond the peer's window", id);
    from->data_sent[id] += f->length;
    break;
  case FRAME_WINDOW:
    assert_true(f->window > 0);
    to->credit[id] += f->window;
    break;
  case FRAME_FIN:
    assert_true(from->w_open_ok[id]);
    assert_false(from->w_fin[id]);
    from->w_fin[id] = 1;
    break;
  case FRAME_RST:
  case FRAME_OPEN_FAIL:
    from->w_end[id] = 1;
    break;
  default:
    break;
  }
}

/* Decode and check a message that from built. */
static void inspect(side_t *from, const uint8_t *buf, size_t n) {
  size_t off = 0;
  int in_data = 0, nframes = 0;
  uint32_t first_data_id = 0;
  int mixed = 0;

  assert_true(n > 0);
  assert_true(n <= SESSION_MSG_MAX);
  from->msgs++;
  if (n > from->max_msg)
    from->max_msg = n;
  while (off < n) {
    frame_t f;
    size_t used = 0;
    assert_int_equal(frame_decode(buf + off, n - off, &f, &used), FRAME_OK);
    off += used;
    if (nframes++ == 0)
      from->msg_first_type = f.type;
    if (f.type == FRAME_DATA || f.type == FRAME_FIN) {
      in_data = 1;
      if (f.type == FRAME_DATA) {
        if (first_data_id == 0)
          first_data_id = f.stream_id;
        else if (f.stream_id != first_data_id)
          mixed = 1;
      }
    } else if (in_data) {
      fail_msg("%s after DATA: control frames must come first",
               frame_type_name(f.type));
    }
    monitor(from, &f);
  }
  assert_int_equal(off, n);
  from->mixed_msgs += mixed;
}

/* Build one message from `from` into buf (checked); 0 when idle. */
static size_t take_msg(side_t *from, uint8_t *buf) {
  int ww = session_want_write(from->s);
  if (ww)
    assert_true(from->wants > 0); /* want_write was signalled */
  size_t n = session_build_message(from->s, buf, MSGBUF);
  assert_int_equal(ww, n > 0);
  if (!session_want_write(from->s))
    from->wants = 0;
  if (n > 0)
    inspect(from, buf, n);
  return n;
}

/* Feed a whole message to `to`; split > 0 feeds it in pieces first. */
static int give(side_t *to, const uint8_t *buf, size_t n, size_t split) {
  if (split == 0)
    return session_feed(to->s, buf, n, 1);
  size_t off = 0, step = split;
  while (n - off > step) {
    if (session_feed(to->s, buf + off, step, 0) != 0)
      return -1;
    off += step;
    step = step * 7 % 4093 + 1;
  }
  return session_feed(to->s, buf + off, n - off, 1);
}

/* One message from -> peer; returns its size. */
static size_t pump1(side_t *from) {
  size_t n = take_msg(from, msg1);
  if (n > 0)
    assert_int_equal(give(from->peer, msg1, n, 0), 0);
  return n;
}

/* Write the next chunk of the pattern on stream r; returns write's result. */
static int app_write(side_t *sd, srec_t *r, size_t len) {
  uint32_t id = session_stream_id(r->st);
  size_t skip = r->tx_off % 3; /* consumed prefix: only off..len is sent */
  buf_chunk_t *c = buf_chunk_new(len + skip);
  assert_non_null(c);
  memset(c->data, 0xEE, skip);
  for (size_t k = 0; k < len; k++)
    c->data[skip + k] = pat(id, sd->role == SESSION_ROLE_SERVER, r->tx_off + k);
  c->off = skip;
  c->len = len + skip;
  r->tx_off += len;
  int full = session_stream_write(r->st, c);
  if (full)
    r->full = 1;
  size_t q = session_stream_queued(r->st);
  if (q >= SESSION_SENDQ_MAX)
    assert_int_equal(full, 1);
  if (!full)
    assert_true(q < SESSION_SENDQ_MAX);
  return full;
}

/* The application: write pending bytes while allowed, then FIN. */
static int feed_app(side_t *sd) {
  int did = 0;
  for (size_t i = 1; i < MAX_ID; i++) {
    srec_t *r = &sd->rec[i];
    while (r->st != NULL && !r->full && r->tx_off < r->tx_goal) {
      size_t len = r->tx_goal - r->tx_off;
      if (len > sd->wchunk)
        len = sd->wchunk;
      r->full = app_write(sd, r, len);
      did = 1;
    }
    if (r->st != NULL && r->tx_fin && !r->fin_done && r->tx_off == r->tx_goal) {
      r->fin_done = 1;
      session_stream_fin(r->st);
      did = 1;
    }
  }
  return did;
}

/* Run both sides until neither has anything to do. */
static void pump_all(void) {
  for (int iter = 0;; iter++) {
    assert_true(iter < 200000);
    int did = feed_app(C);
    did |= feed_app(S);
    size_t a = pump1(C);
    size_t b = pump1(S);
    if (a == 0 && b == 0 && !did)
      break;
  }
  assert_int_equal(session_stream_count(C->s), live_streams(C));
  assert_int_equal(session_stream_count(S->s), live_streams(S));
}

static uint32_t open_stream(side_t *sd) {
  session_stream_t *st = session_stream_open(sd->s, NULL);
  if (st == NULL)
    return 0;
  uint32_t id = session_stream_id(st);
  assert_true(id < MAX_ID);
  assert_null(sd->rec[id].st);
  sd->rec[id].st = st;
  session_stream_set_user(st, &sd->rec[id]);
  return id;
}

/* Open n streams from the client and let the server accept them. */
static void establish(uint32_t *ids, int n) {
  for (int i = 0; i < n; i++) {
    ids[i] = open_stream(C);
    assert_true(ids[i] != 0);
  }
  pump_all();
  for (int i = 0; i < n; i++) {
    assert_int_equal(C->rec[ids[i]].open_ok, 1);
    assert_int_equal(S->rec[ids[i]].incoming, 1);
  }
}

/* How many frames of type on id (0: any id) sd sent since the log was
 * cleared, and the last one. */
static int sent_count(const side_t *sd, uint8_t type, uint32_t id) {
  int n = 0;
  for (size_t i = 0; i < sd->nlog; i++)
    n += sd->log[i].type == type && (id == 0 || sd->log[i].id == id);
  return n;
}

static const wire_ev_t *sent_last(const side_t *sd, uint8_t type, uint32_t id) {
  for (size_t i = sd->nlog; i-- > 0;) {
    if (sd->log[i].type == type && (id == 0 || sd->log[i].id == id))
      return &sd->log[i];
  }
  fail_msg("no %s on stream %u", frame_type_name(type), id);
  return NULL;
}

static void expect_closed(const side_t *sd, uint32_t id, uint16_t code,
                          const char *reason) {
  const srec_t *r = &sd->rec[id];
  assert_int_equal(r->closes, 1);
  assert_null(r->st);
  assert_int_equal(r->code, code);
  if (reason != NULL)
    assert_string_equal(r->reason, reason);
}

static void expect_healthy(void) {
  assert_string_equal(session_error(C->s), "");
  assert_string_equal(session_error(S->s), "");
}

/* ---- hand-crafted frames ------------------------------------------------ */

static size_t mk(uint8_t *out, uint8_t type, uint32_t id, uint32_t window,
                 uint16_t code, const char *reason) {
  frame_t f = {.type = type, .stream_id = id, .window = window, .code = code};
  f.reason = reason;
  f.reason_len = reason ? strlen(reason) : 0;
  size_t n = frame_encode(out, FRAME_CONTROL_MAX, &f);
  assert_true(n >= FRAME_HEADER_LEN);
  return n;
}

static size_t mk_data(uint8_t *out, uint32_t id, size_t len, uint8_t byte) {
  size_t n = frame_encode_header(out, FRAME_DATA, id, (uint32_t)len);
  memset(out + n, byte, len);
  return n + len;
}

static size_t mk_ping(uint8_t *out, uint8_t type, const uint8_t *ping) {
  frame_t f = {.type = type, .ping = ping};
  return frame_encode(out, FRAME_CONTROL_MAX, &f);
}

/* Feed hand-made frames to `to` as if its peer had sent them; credit-
 * carrying frames also update the monitor's view of to's credit. */
static int inject(side_t *to, const uint8_t *buf, size_t n) {
  size_t off = 0;
  while (off < n) {
    frame_t f;
    size_t used;
    if (frame_decode(buf + off, n - off, &f, &used) != FRAME_OK)
      break;
    off += used;
    if (f.stream_id > 0 && f.stream_id < MAX_ID) {
      if (f.type == FRAME_WINDOW)
        to->credit[f.stream_id] += f.window;
      if (f.type == FRAME_OPEN || f.type == FRAME_OPEN_OK)
        to->credit[f.stream_id] = f.window;
    }
  }
  return session_feed(to->s, buf, n, 1);
}

static void inject_ok(side_t *to, const uint8_t *buf, size_t n) {
  assert_int_equal(inject(to, buf, n), 0);
}

/* ---- open / accept / data ----------------------------------------------- */

static void test_open_accept(void **state) {
  S->auto_accept = 0;
  int marker;
  session_stream_t *st = session_stream_open(C->s, &marker);
  assert_non_null(st);
  assert_ptr_equal(session_stream_user(st), &marker);
  assert_int_equal(session_stream_id(st), 1);
  assert_int_equal(session_stream_count(C->s), 1);
  C->rec[1].st = st;
  session_stream_set_user(st, &C->rec[1]);
  assert_true(session_want_write(C->s));
  assert_true(C->wants > 0);

  /* OPEN carries the client's window; the server sees stream_incoming. */
  assert_true(pump1(C) > 0);
  assert_int_equal(sent_count(C, FRAME_OPEN, 1), 1);
  assert_int_equal(sent_last(C, FRAME_OPEN, 1)->window, C->window);
  assert_int_equal(S->rec[1].incoming, 1);
  assert_int_equal(session_stream_count(S->s), 1);
  assert_false(session_want_write(S->s)); /* nothing until accept */

  session_stream_accept(S->rec[1].st);
  assert_true(pump1(S) > 0);
  assert_int_equal(sent_last(S, FRAME_OPEN_OK, 1)->window, S->window);
  assert_int_equal(C->rec[1].open_ok, 1);

  /* Ids are odd and increasing. */
  assert_int_equal(open_stream(C), 3);
  assert_int_equal(open_stream(C), 5);
  S->auto_accept = 1;
  pump_all();
  assert_int_equal(C->rec[3].open_ok, 1);
  assert_int_equal(C->rec[5].open_ok, 1);
  assert_int_equal(session_stream_count(C->s), 3);
  assert_int_equal(session_stream_count(S->s), 3);
  expect_healthy();
}

/* A server session cannot open streams. */
static void test_server_cannot_open(void **state) {
  assert_null(session_stream_open(S->s, NULL));
  assert_int_equal(session_stream_count(S->s), 0);
}

static void test_small_both_ways(void **state) {
  uint32_t id;
  establish(&id, 1);
  C->rec[id].tx_goal = 5;
  S->rec[id].tx_goal = 11;
  pump_all();
  assert_int_equal(S->rec[id].rx, 5);
  assert_int_equal(C->rec[id].rx, 11);
  assert_int_equal(C->data_sent[id], 5);
  assert_int_equal(S->data_sent[id], 11);
  expect_healthy();
}

/* Client writes before OPEN_OK are held until it arrives. */
static void test_write_before_open_ok(void **state) {
  S->auto_accept = 0;
  uint32_t id = open_stream(C);
  C->rec[id].tx_goal = 3000;
  pump_all();
  assert_int_equal(session_stream_queued(C->rec[id].st), 3000);
  assert_int_equal(C->data_frames, 0);
  session_stream_accept(S->rec[id].st);
  pump_all();
  assert_int_equal(S->rec[id].rx, 3000);
  assert_int_equal(session_stream_queued(C->rec[id].st), 0);
}

/* Several streams, both ways, large and tiny, each ending with FIN; the
 * server side is fed in odd pieces to exercise split frames too. */
static void test_interleaved_large(void **state) {
  static const size_t goal_c[] = {1u << 20, 300000, 1, 70001, 0, 65536};
  static const size_t goal_s[] = {777777, 0, 2, 1u << 20, 5, 16385};
  enum { N = 6 };
  uint32_t ids[N];
  pair_init(SESSION_WINDOW_DEFAULT, SESSION_WINDOW_MIN * 2, 64);
  establish(ids, N);
  for (int i = 0; i < N; i++) {
    C->rec[ids[i]].tx_goal = goal_c[i];
    C->rec[ids[i]].tx_fin = 1;
    S->rec[ids[i]].tx_goal = goal_s[i];
    S->rec[ids[i]].tx_fin = 1;
  }
  for (int iter = 0;; iter++) {
    assert_true(iter < 100000);
    int did = feed_app(C) | feed_app(S);
    size_t a = take_msg(C, msg1);
    if (a > 0)
      assert_int_equal(give(S, msg1, a, 1 + (size_t)iter % 5000), 0);
    size_t b = pump1(S);
    if (a == 0 && b == 0 && !did)
      break;
  }
  for (int i = 0; i < N; i++) {
    uint32_t id = ids[i];
    assert_int_equal(S->rec[id].rx, goal_c[i]);
    assert_int_equal(C->rec[id].rx, goal_s[i]);
    assert_int_equal(S->rec[id].rx_at_fin, goal_c[i]);
    assert_int_equal(C->rec[id].rx_at_fin, goal_s[i]);
    expect_closed(C, id, FRAME_CODE_NO_ERROR, "");
    expect_closed(S, id, FRAME_CODE_NO_ERROR, "");
  }
  assert_int_equal(session_stream_count(C->s), 0);
  assert_int_equal(session_stream_count(S->s), 0);
  assert_true(C->msgs > 10);
  assert_true(C->max_msg <= SESSION_MSG_MAX);
  assert_true(S->max_msg <= SESSION_MSG_MAX);
  assert_true(C->mixed_msgs > 0); /* streams share messages */
  assert_true(S->mixed_msgs > 0);
  expect_healthy();
}

/* One bulk stream: messages fill up to SESSION_MSG_MAX, DATA frames are at
 * most SESSION_QUANTUM. */
static void test_message_packing(void **state) {
  uint32_t id;
  pair_init(SESSION_WINDOW_DEFAULT, SESSION_WINDOW_MAX, 64);
  establish(&id, 1);
  srec_t *r = &C->rec[id];
  for (int i = 0; i < 4; i++)
    app_write(C, r, SESSION_QUANTUM);
  size_t n = take_msg(C, msg1);
  assert_true(n <= SESSION_MSG_MAX);
  assert_true(n > SESSION_MSG_MAX - FRAME_HEADER_LEN);
  assert_int_equal(give(S, msg1, n, 0), 0);
  /* 4 quanta do not fit with 4 headers: the rest goes next time. */
  assert_int_equal(session_stream_queued(r->st),
                   4 * FRAME_HEADER_LEN - (SESSION_MSG_MAX - n));
  assert_true(C->data_frames >= 4);
  pump_all();
  assert_int_equal(S->rec[id].rx, 4 * SESSION_QUANTUM);

  /* A small cap is respected too. */
  app_write(C, r, 5000);
  size_t m = session_build_message(C->s, msg1, FRAME_CONTROL_MAX);
  assert_int_equal(m, FRAME_CONTROL_MAX);
  inspect(C, msg1, m);
  assert_int_equal(give(S, msg1, m, 0), 0);
  pump_all();
  assert_int_equal(S->rec[id].rx, 4 * SESSION_QUANTUM + 5000);
}

/* ---- flow control ------------------------------------------------------- */

static void test_window_exact_stop(void **state) {
  const uint32_t w = SESSION_WINDOW_MIN;
  uint32_t id;
  establish(&id, 1);
  S->rec[id].no_consume = 1;
  C->rec[id].tx_goal = 10 * w;
  C->rec[id].tx_fin = 1;
  S->nlog = 0;
  pump_all();
  /* Exactly the window, and no WINDOW without consumption. */
  assert_int_equal(S->rec[id].rx, w);
  assert_int_equal(C->data_sent[id], w);
  assert_int_equal(C->credit[id], 0);
  assert_int_equal(sent_count(S, FRAME_WINDOW, 0), 0);
  assert_true(session_stream_queued(C->rec[id].st) > 0);

  /* Below a quarter of the window: still nothing. */
  session_stream_consumed(S->rec[id].st, w / 4 - 1);
  assert_false(session_want_write(S->s));
  pump_all();
  assert_int_equal(S->rec[id].rx, w);
  /* Reaching a quarter grants exactly what was consumed. */
  S->wants = 0;
  session_stream_consumed(S->rec[id].st, 1);
  assert_true(session_want_write(S->s));
  assert_true(S->wants > 0);
  pump_all();
  assert_int_equal(sent_count(S, FRAME_WINDOW, id), 1);
  assert_int_equal(sent_last(S, FRAME_WINDOW, id)->window, w / 4);
  assert_int_equal(S->rec[id].rx, w + w / 4);

  /* Byte-by-byte consumption: one WINDOW per quarter. */
  for (uint32_t i = 0; i < w / 2; i++)
    session_stream_consumed(S->rec[id].st, 1);
  pump_all();
  assert_int_equal(sent_count(S, FRAME_WINDOW, id), 3);
  assert_int_equal(S->rec[id].rx, w + w / 4 + w / 2);

  /* Consume everything from now on: the rest arrives, then FIN. */
  S->rec[id].no_consume = 0;
  session_stream_consumed(S->rec[id].st,
                          S->rec[id].rx - (w / 4 - 1) - 1 - w / 2);
  pump_all();
  assert_int_equal(S->rec[id].rx, 10 * w);
  assert_int_equal(S->rec[id].fins, 1);
  assert_int_equal(S->rec[id].rx_at_fin, 10 * w);
  expect_healthy();
}

/* A stalled stream stops at exactly its window, another keeps flowing in
 * the meantime (no head-of-line blocking). */
static void test_no_head_of_line(void **state) {
  const uint32_t w = SESSION_WINDOW_MIN;
  uint32_t ids[2];
  establish(ids, 2);
  C->rec[ids[0]].no_consume = 1; /* client never writes stream A */
  for (int i = 0; i < 2; i++) {
    S->rec[ids[i]].tx_goal = 1u << 20;
    S->rec[ids[i]].tx_fin = 1;
    C->rec[ids[i]].fin_on_fin = 1;
  }
  pump_all();
  assert_int_equal(C->rec[ids[0]].rx, w);
  assert_int_equal(S->data_sent[ids[0]], w);
  assert_int_equal(C->rec[ids[1]].rx, 1u << 20);
  expect_closed(C, ids[1], FRAME_CODE_NO_ERROR, "");
  expect_closed(S, ids[1], FRAME_CODE_NO_ERROR, "");
  assert_true(S->mixed_msgs > 0);
  /* A is held back by its own credit, its queue bounded. */
  assert_non_null(S->rec[ids[0]].st);
  assert_true(S->rec[ids[0]].full);
  assert_true(session_stream_queued(S->rec[ids[0]].st) >= SESSION_SENDQ_MAX);
  assert_true(session_stream_queued(S->rec[ids[0]].st) <
              SESSION_SENDQ_MAX + S->wchunk);
  assert_int_equal(session_stream_count(S->s), 1);

  /* Unblock A. */
  C->rec[ids[0]].no_consume = 0;
  session_stream_consumed(C->rec[ids[0]].st, C->rec[ids[0]].unconsumed);
  pump_all();
  assert_int_equal(C->rec[ids[0]].rx, 1u << 20);
  expect_closed(C, ids[0], FRAME_CODE_NO_ERROR, "");
  expect_closed(S, ids[0], FRAME_CODE_NO_ERROR, "");
  assert_true(S->rec[ids[0]].drained > 0);
  assert_int_equal(session_stream_count(C->s), 0);
  assert_int_equal(session_stream_count(S->s), 0);
}

static void test_sendq_full_and_drained(void **state) {
  uint32_t ids[2];
  pair_init(SESSION_WINDOW_MIN, SESSION_WINDOW_DEFAULT, 64);
  establish(ids, 2);
  srec_t *r = &C->rec[ids[0]];
  for (int i = 0; i < 3; i++)
    assert_int_equal(app_write(C, r, SESSION_SENDQ_MAX / 4), 0);
  assert_int_equal(app_write(C, r, SESSION_SENDQ_MAX / 4 - 1), 0);
  assert_int_equal(session_stream_queued(r->st), SESSION_SENDQ_MAX - 1);
  assert_int_equal(app_write(C, r, 1), 1); /* exactly the bound */
  r->full = 1;
  assert_int_equal(app_write(C, r, 100), 1); /* stays full */
  assert_int_equal(session_stream_queued(r->st), SESSION_SENDQ_MAX + 100);
  /* Small writes elsewhere are not full. */
  assert_int_equal(app_write(C, &C->rec[ids[1]], 10), 0);

  assert_true(pump1(C) > 0);
  assert_int_equal(r->drained, 1);
  assert_int_equal(r->full, 0);
  assert_true(session_stream_queued(r->st) < SESSION_SENDQ_MAX);
  pump_all();
  assert_int_equal(r->drained, 1); /* once per "full" */
  assert_int_equal(C->rec[ids[1]].drained, 0);
  assert_int_equal(S->rec[ids[0]].rx, SESSION_SENDQ_MAX + 100);
  assert_int_equal(S->rec[ids[1]].rx, 10);
}

/* WINDOW for a stream we are done sending on, and a consumed() after the
 * peer's FIN, are harmless. */
static void test_consumed_after_fin(void **state) {
  uint32_t id;
  establish(&id, 1);
  S->rec[id].no_consume = 1;
  C->rec[id].tx_goal = 5000;
  C->rec[id].tx_fin = 1;
  pump_all();
  assert_int_equal(S->rec[id].fins, 1);
  S->nlog = 0;
  session_stream_consumed(S->rec[id].st, 5000);
  pump_all();
  assert_int_equal(sent_count(S, FRAME_WINDOW, 0), 0);
  session_stream_fin(S->rec[id].st);
  S->rec[id].fin_done = 1;
  pump_all();
  expect_closed(C, id, FRAME_CODE_NO_ERROR, "");
  expect_closed(S, id, FRAME_CODE_NO_ERROR, "");
}

/* ---- FIN ---------------------------------------------------------------- */

static void test_fin_client_first(void **state) {
  uint32_t id;
  establish(&id, 1);
  C->rec[id].tx_goal = 40000; /* > window: FIN waits behind credit */
  C->rec[id].tx_fin = 1;
  pump_all();
  assert_int_equal(S->rec[id].fins, 1);
  assert_int_equal(S->rec[id].rx_at_fin, 40000);
  assert_int_equal(S->rec[id].closes, 0);
  assert_int_equal(C->rec[id].closes, 0);
  /* The server still sends, then finishes. */
  S->rec[id].tx_goal = 30000;
  S->rec[id].tx_fin = 1;
  pump_all();
  assert_int_equal(C->rec[id].rx, 30000);
  assert_int_equal(C->rec[id].fins, 0); /* closed directly: we had finished */
  expect_closed(C, id, FRAME_CODE_NO_ERROR, "");
  expect_closed(S, id, FRAME_CODE_NO_ERROR, "");
  assert_int_equal(C->rec[id].rx_at_fin, 30000);
  assert_int_equal(session_stream_count(C->s), 0);
  assert_int_equal(session_stream_count(S->s), 0);
  assert_int_equal(sent_count(C, FRAME_RST, 0), 0);
  assert_int_equal(sent_count(S, FRAME_RST, 0), 0);
  expect_healthy();
}

static void test_fin_server_first(void **state) {
  uint32_t id;
  establish(&id, 1);
  S->rec[id].tx_goal = 50000;
  S->rec[id].tx_fin = 1;
  pump_all();
  assert_int_equal(C->rec[id].fins, 1);
  assert_int_equal(C->rec[id].rx_at_fin, 50000);
  C->rec[id].tx_goal = 1;
  C->rec[id].tx_fin = 1;
  pump_all();
  assert_int_equal(S->rec[id].fins, 0);
  expect_closed(C, id, FRAME_CODE_NO_ERROR, "");
  expect_closed(S, id, FRAME_CODE_NO_ERROR, "");
  assert_int_equal(S->rec[id].rx_at_fin, 1);
  assert_int_equal(session_stream_count(C->s), 0);
  assert_int_equal(session_stream_count(S->s), 0);
  expect_healthy();
}

/* Both FINs cross on the wire. */
static void test_fin_simultaneous(void **state) {
  uint32_t id;
  establish(&id, 1);
  C->rec[id].tx_goal = 100;
  C->rec[id].tx_fin = 1;
  S->rec[id].tx_goal = 200;
  S->rec[id].tx_fin = 1;
  feed_app(C);
  feed_app(S);
  size_t a = take_msg(C, msg1);
  size_t b = take_msg(S, msg2);
  assert_true(C->w_fin[id] && S->w_fin[id]);
  assert_int_equal(give(S, msg1, a, 0), 0);
  assert_int_equal(give(C, msg2, b, 0), 0);
  expect_closed(C, id, FRAME_CODE_NO_ERROR, "");
  expect_closed(S, id, FRAME_CODE_NO_ERROR, "");
  assert_int_equal(C->rec[id].fins, 0);
  assert_int_equal(S->rec[id].fins, 0);
  assert_int_equal(C->rec[id].rx_at_fin, 200);
  assert_int_equal(S->rec[id].rx_at_fin, 100);
  pump_all();
  assert_int_equal(C->closes_total, 1);
  assert_int_equal(S->closes_total, 1);
  assert_int_equal(session_stream_count(C->s), 0);
  assert_int_equal(session_stream_count(S->s), 0);
  expect_healthy();
}

/* FIN answered from inside stream_fin, no data at all. */
static void test_fin_echo_in_callback(void **state) {
  uint32_t ids[3];
  establish(ids, 3);
  for (int i = 0; i < 3; i++) {
    S->rec[ids[i]].fin_on_fin = 1;
    C->rec[ids[i]].tx_fin = 1;
  }
  pump_all();
  for (int i = 0; i < 3; i++) {
    expect_closed(C, ids[i], FRAME_CODE_NO_ERROR, "");
    expect_closed(S, ids[i], FRAME_CODE_NO_ERROR, "");
    assert_int_equal(S->rec[ids[i]].fins, 1);
  }
  assert_int_equal(session_stream_count(C->s), 0);
  assert_int_equal(session_stream_count(S->s), 0);
}

/* Writes after FIN are dropped, not sent. */
static void test_write_after_fin_dropped(void **state) {
  uint32_t id;
  establish(&id, 1);
  srec_t *r = &C->rec[id];
  app_write(C, r, 10);
  session_stream_fin(r->st);
  r->fin_done = 1;
  app_write(C, r, 10);
  assert_int_equal(session_stream_queued(r->st), 10);
  pump_all();
  assert_int_equal(S->rec[id].rx, 10);
  assert_int_equal(S->rec[id].fins, 1);
}

/* ---- RST / refuse ------------------------------------------------------- */

static void test_rst_from_client(void **state) {
  uint32_t ids[2];
  establish(ids, 2);
  S->rec[ids[0]].tx_goal = 1u << 20; /* data in flight the other way */
  C->rec[ids[0]].no_consume = 1;
  pump_all();
  session_stream_reset(C->rec[ids[0]].st, FRAME_CODE_RESET,
                       "connection reset by peer");
  C->rec[ids[0]].st = NULL;
  assert_int_equal(session_stream_count(C->s), 1);
  pump_all();
  expect_closed(S, ids[0], FRAME_CODE_RESET, "connection reset by peer");
  assert_int_equal(C->rec[ids[0]].closes, 0); /* no callback for our own */
  assert_int_equal(sent_count(S, FRAME_RST, 0), 0); /* RST not answered */
  assert_int_equal(session_stream_count(C->s), 1);
  assert_int_equal(session_stream_count(S->s), 1);
  /* The other stream is fine. */
  C->rec[ids[1]].tx_goal = 20000;
  pump_all();
  assert_int_equal(S->rec[ids[1]].rx, 20000);
  expect_healthy();
}

static void test_rst_from_server(void **state) {
  uint32_t id;
  establish(&id, 1);
  /* Queued data is dropped with the RST. */
  S->rec[id].tx_goal = 60000;
  feed_app(S);
  assert_true(session_stream_queued(S->rec[id].st) > 0);
  session_stream_reset(S->rec[id].st, FRAME_CODE_UNREACHABLE, "no route");
  S->rec[id].st = NULL;
  pump_all();
  expect_closed(C, id, FRAME_CODE_UNREACHABLE, "no route");
  assert_int_equal(C->rec[id].rx, 0);
  assert_int_equal(S->data_sent[id], 0);
  assert_int_equal(sent_count(C, FRAME_RST, 0), 0);
  assert_int_equal(session_stream_count(C->s), 0);
  assert_int_equal(session_stream_count(S->s), 0);
}

static void test_refuse(void **state) {
  S->auto_accept = 0;
  uint32_t id = open_stream(C);
  C->rec[id].tx_goal = 100; /* queued, never sent */
  pump_all();
  session_stream_refuse(S->rec[id].st, FRAME_CODE_REFUSED,
                        "connect 10.0.0.5:22: connection refused");
  S->rec[id].st = NULL;
  assert_int_equal(session_stream_count(S->s), 0);
  pump_all();
  expect_closed(C, id, FRAME_CODE_REFUSED,
                "connect 10.0.0.5:22: connection refused");
  assert_int_equal(C->rec[id].open_ok, 0);
  assert_int_equal(sent_count(S, FRAME_OPEN_FAIL, id), 1);
  assert_int_equal(C->data_frames, 0);
  assert_int_equal(session_stream_count(C->s), 0);
  /* Refusing from inside stream_incoming works as well. */
  S->auto_accept = -1;
  uint32_t id2 = open_stream(C);
  pump_all();
  expect_closed(C, id2, FRAME_CODE_REFUSED, "connection refused");
  assert_int_equal(S->rec[id2].closes, 0);
  expect_healthy();
}

/* The client gives up while OPENING; the OPEN_OK that crosses the RST is
 * ignored, not answered. */
static void test_rst_while_opening(void **state) {
  uint32_t id = open_stream(C);
  assert_true(pump1(C) > 0); /* OPEN; the server accepts at once */
  session_stream_reset(C->rec[id].st, FRAME_CODE_SHUTDOWN, "bye");
  C->rec[id].st = NULL;
  assert_true(pump1(S) > 0); /* OPEN_OK to a closed id */
  pump_all();
  expect_closed(S, id, FRAME_CODE_SHUTDOWN, "bye");
  assert_int_equal(C->rec[id].open_ok, 0);
  assert_int_equal(sent_count(C, FRAME_RST, id), 1);
  assert_int_equal(sent_count(S, FRAME_RST, 0), 0);
  assert_int_equal(session_stream_count(C->s), 0);
  assert_int_equal(session_stream_count(S->s), 0);
  expect_healthy();
}

/* ---- stream-level errors ------------------------------------------------ */

/* After an error on `bad`, stream `good` still carries data both ways. */
static void expect_good_stream(uint32_t good) {
  size_t c0 = S->rec[good].rx, s0 = C->rec[good].rx;
  C->rec[good].tx_goal += 30000;
  S->rec[good].tx_goal += 30000;
  pump_all();
  assert_int_equal(S->rec[good].rx, c0 + 30000);
  assert_int_equal(C->rec[good].rx, s0 + 30000);
  expect_healthy();
}

static void test_data_beyond_window(void **state) {
  const uint32_t w = SESSION_WINDOW_MIN;
  uint8_t buf[FRAME_HEADER_LEN + FRAME_MAX_PAYLOAD];
  uint32_t ids[3];
  establish(ids, 3);
  /* The client fills stream A's window legitimately; one byte more. */
  S->rec[ids[0]].no_consume = 1;
  C->rec[ids[0]].tx_goal = w;
  pump_all();
  assert_int_equal(S->rec[ids[0]].rx, w);
  inject_ok(S, buf, mk_data(buf, ids[0], 1, 0));
  expect_closed(S, ids[0], FRAME_CODE_FLOW_CONTROL, NULL);
  assert_int_equal(sent_count(S, FRAME_RST, ids[0]), 0);
  pump_all();
  assert_int_equal(sent_last(S, FRAME_RST, ids[0])->code,
                   FRAME_CODE_FLOW_CONTROL);
  expect_closed(C, ids[0], FRAME_CODE_FLOW_CONTROL, S->rec[ids[0]].reason);
  assert_true(C->rec[ids[0]].reason_len > 0);
  assert_int_equal(S->rec[ids[0]].rx, w); /* the bad DATA is not delivered */

  /* One frame larger than the whole window. */
  inject_ok(S, buf, mk_data(buf, ids[1], w + 1, 0));
  assert_int_equal(S->rec[ids[1]].rx, 0);
  pump_all();
  expect_closed(S, ids[1], FRAME_CODE_FLOW_CONTROL, NULL);
  expect_closed(C, ids[1], FRAME_CODE_FLOW_CONTROL, NULL);

  expect_good_stream(ids[2]);
  assert_int_equal(session_stream_count(C->s), 1);
  assert_int_equal(session_stream_count(S->s), 1);
}

static void test_window_zero(void **state) {
  uint8_t buf[64];
  uint32_t ids[2];
  establish(ids, 2);
  inject_ok(C, buf, mk(buf, FRAME_WINDOW, ids[0], 0, 0, NULL));
  expect_closed(C, ids[0], FRAME_CODE_FLOW_CONTROL, NULL);
  pump_all();
  assert_int_equal(sent_last(C, FRAME_RST, ids[0])->code,
                   FRAME_CODE_FLOW_CONTROL);
  expect_closed(S, ids[0], FRAME_CODE_FLOW_CONTROL, NULL);
  /* The same towards the server. */
  inject_ok(S, buf, mk(buf, FRAME_WINDOW, ids[1], 0, 0, NULL));
  pump_all();
  expect_closed(S, ids[1], FRAME_CODE_FLOW_CONTROL, NULL);
  expect_closed(C, ids[1], FRAME_CODE_FLOW_CONTROL, NULL);
  assert_int_equal(session_stream_count(C->s), 0);
  assert_int_equal(session_stream_count(S->s), 0);
  expect_healthy();
}

static void test_window_overflow(void **state) {
  uint8_t buf[64];
  uint32_t ids[4];
  establish(ids, 4);
  /* Up to exactly SESSION_CREDIT_MAX is fine, one more is not. */
  uint32_t inc = SESSION_CREDIT_MAX - S->window;
  inject_ok(C, buf, mk(buf, FRAME_WINDOW, ids[0], inc, 0, NULL));
  assert_non_null(C->rec[ids[0]].st);
  assert_false(session_want_write(C->s));
  inject_ok(C, buf, mk(buf, FRAME_WINDOW, ids[0], 1, 0, NULL));
  expect_closed(C, ids[0], FRAME_CODE_FLOW_CONTROL, NULL);
  /* Too much at once. */
  inject_ok(C, buf, mk(buf, FRAME_WINDOW, ids[1], inc + 1, 0, NULL));
  expect_closed(C, ids[1], FRAME_CODE_FLOW_CONTROL, NULL);
  /* An increment that would wrap 32 bits. */
  inject_ok(C, buf, mk(buf, FRAME_WINDOW, ids[2], 0xffffffffu, 0, NULL));
  expect_closed(C, ids[2], FRAME_CODE_FLOW_CONTROL, NULL);
  pump_all();
  for (int i = 0; i < 3; i++) {
    assert_int_equal(sent_last(C, FRAME_RST, ids[i])->code,
                     FRAME_CODE_FLOW_CONTROL);
    expect_closed(S, ids[i], FRAME_CODE_FLOW_CONTROL, NULL);
  }
  expect_good_stream(ids[3]);
  assert_int_equal(session_stream_count(C->s), 1);
}

/* Credit spent makes room for a larger increment. */
static void test_window_overflow_after_spending(void **state) {
  uint8_t buf[64];
  uint32_t id;
  establish(&id, 1);
  S->rec[id].no_consume = 1;
  C->rec[id].tx_goal = 1000;
  pump_all();
  assert_int_equal(C->credit[id], S->window - 1000);
  inject_ok(C, buf,
            mk(buf, FRAME_WINDOW, id, SESSION_CREDIT_MAX - S->window + 1000, 0,
               NULL));
  assert_non_null(C->rec[id].st);
  assert_false(session_want_write(C->s));
}

/* Two WINDOWs that each fit but together overflow. */
static void test_window_overflow_cumulative(void **state) {
  uint8_t buf[128];
  uint32_t id;
  establish(&id, 1);
  uint32_t half = (SESSION_CREDIT_MAX - S->window) / 2 + 1;
  size_t n = mk(buf, FRAME_WINDOW, id, half, 0, NULL);
  n += mk(buf + n, FRAME_WINDOW, id, half, 0, NULL);
  inject_ok(C, buf, n);
  expect_closed(C, id, FRAME_CODE_FLOW_CONTROL, NULL);
}

static void test_data_after_fin(void **state) {
  uint8_t buf[128];
  uint32_t ids[3];
  establish(ids, 3);
  C->rec[ids[0]].tx_goal = 10;
  C->rec[ids[0]].tx_fin = 1;
  C->rec[ids[1]].tx_fin = 1;
  pump_all();
  assert_int_equal(S->rec[ids[0]].fins, 1);
  inject_ok(S, buf, mk_data(buf, ids[0], 5, 0));
  expect_closed(S, ids[0], FRAME_CODE_STREAM_CLOSED, NULL);
  assert_int_equal(S->rec[ids[0]].rx, 10);
  /* A second FIN is the same mistake. */
  inject_ok(S, buf, mk(buf, FRAME_FIN, ids[1], 0, 0, NULL));
  expect_closed(S, ids[1], FRAME_CODE_STREAM_CLOSED, NULL);
  pump_all();
  assert_int_equal(sent_last(S, FRAME_RST, ids[0])->code,
                   FRAME_CODE_STREAM_CLOSED);
  expect_closed(C, ids[0], FRAME_CODE_STREAM_CLOSED, NULL);
  expect_closed(C, ids[1], FRAME_CODE_STREAM_CLOSED, NULL);
  expect_good_stream(ids[2]);
}

static void test_data_before_open_ok(void **state) {
  uint8_t buf[128];
  uint32_t good;
  establish(&good, 1);
  /* Towards the server: the stream is not accepted yet. */
  S->auto_accept = 0;
  uint32_t a = open_stream(C);
  pump_all();
  assert_int_equal(S->rec[a].incoming, 1);
  inject_ok(S, buf, mk_data(buf, a, 3, 0));
  expect_closed(S, a, FRAME_CODE_PROTOCOL, NULL);
  assert_int_equal(S->rec[a].rx, 0);
  pump_all();
  expect_closed(C, a, FRAME_CODE_PROTOCOL, NULL);
  /* Towards the client: OPEN sent, no OPEN_OK yet. */
  uint32_t b = open_stream(C);
  inject_ok(C, buf, mk_data(buf, b, 3, 0));
  expect_closed(C, b, FRAME_CODE_PROTOCOL, NULL);
  assert_int_equal(C->rec[b].open_ok, 0);
  pump_all(); /* OPEN then RST reach the server */
  assert_int_equal(S->rec[b].incoming, 1);
  expect_closed(S, b, FRAME_CODE_PROTOCOL, NULL);
  expect_good_stream(good);
}

/* An initial window of 0 or above SESSION_CREDIT_MAX, in OPEN or OPEN_OK. */
static void test_invalid_initial_window(void **state) {
  uint8_t buf[64];
  uint32_t good;
  establish(&good, 1);
  S->auto_accept = 0;
  uint32_t a = open_stream(C), b = open_stream(C);
  pump_all();
  inject_ok(C, buf, mk(buf, FRAME_OPEN_OK, a, 0, 0, NULL));
  inject_ok(C, buf, mk(buf, FRAME_OPEN_OK, b, 0x80000000u, 0, NULL));
  expect_closed(C, a, FRAME_CODE_FLOW_CONTROL, NULL);
  expect_closed(C, b, FRAME_CODE_FLOW_CONTROL, NULL);
  assert_int_equal(C->rec[a].open_ok + C->rec[b].open_ok, 0);
  pump_all();
  expect_closed(S, a, FRAME_CODE_FLOW_CONTROL, NULL);
  expect_closed(S, b, FRAME_CODE_FLOW_CONTROL, NULL);
  /* (Ids above what the real client will use.) */
  inject_ok(S, buf, mk(buf, FRAME_OPEN, 101, 0, 0, NULL));
  inject_ok(S, buf, mk(buf, FRAME_OPEN, 103, 0x80000000u, 0, NULL));
  assert_int_equal(S->rec[101].incoming + S->rec[103].incoming, 0);
  S->nlog = 0;
  pump_all();
  assert_int_equal(sent_last(S, FRAME_OPEN_FAIL, 101)->code,
                   FRAME_CODE_FLOW_CONTROL);
  assert_int_equal(sent_last(S, FRAME_OPEN_FAIL, 103)->code,
                   FRAME_CODE_FLOW_CONTROL);
  expect_good_stream(good);
}

/* A duplicate OPEN_OK breaks only that stream. */
static void test_duplicate_open_ok(void **state) {
  uint8_t buf[64];
  uint32_t ids[2];
  establish(ids, 2);
  inject_ok(C, buf, mk(buf, FRAME_OPEN_OK, ids[0], 4096, 0, NULL));
  expect_closed(C, ids[0], FRAME_CODE_PROTOCOL, NULL);
  pump_all();
  expect_closed(S, ids[0], FRAME_CODE_PROTOCOL, NULL);
  expect_good_stream(ids[1]);
}

static void test_unknown_stream(void **state) {
  uint8_t buf[256];
  uint32_t good;
  establish(&good, 1);
  S->nlog = C->nlog = 0;
  /* Server: ids above the last one opened. */
  size_t n = mk_data(buf, UNKNOWN_ID, 4, 0);
  n += mk(buf + n, FRAME_WINDOW, UNKNOWN_ID + 2, 100, 0, NULL);
  n += mk(buf + n, FRAME_FIN, UNKNOWN_ID + 4, 0, 0, NULL);
  n += mk_data(buf + n, 2, 4, 0); /* even: never a client id */
  inject_ok(S, buf, n);
  /* Client: an even id and an odd id it never used. */
  n = mk_data(buf, 4, 1, 0);
  n += mk(buf + n, FRAME_FIN, UNKNOWN_ID, 0, 0, NULL);
  n += mk(buf + n, FRAME_OPEN_OK, UNKNOWN_ID + 2, 4096, 0, NULL);
  n += mk(buf + n, FRAME_OPEN_FAIL, UNKNOWN_ID + 4, 0, 4, "x");
  inject_ok(C, buf, n);
  assert_int_equal(S->closes_total + C->closes_total, 0);
  pump_all();
  assert_int_equal(sent_count(S, FRAME_RST, 0), 4);
  assert_int_equal(sent_count(C, FRAME_RST, 0), 4);
  static const uint32_t sids[] = {UNKNOWN_ID, UNKNOWN_ID + 2, UNKNOWN_ID + 4,
                                  2};
  static const uint32_t cids[] = {4, UNKNOWN_ID, UNKNOWN_ID + 2,
                                  UNKNOWN_ID + 4};
  for (int i = 0; i < 4; i++) {
    assert_int_equal(sent_last(S, FRAME_RST, sids[i])->code,
                     FRAME_CODE_UNKNOWN_STREAM);
    assert_int_equal(sent_last(C, FRAME_RST, cids[i])->code,
                     FRAME_CODE_UNKNOWN_STREAM);
  }
  /* The RSTs reached the other side and were not answered (pump_all ran
   * dry), nothing else happened. */
  assert_int_equal(S->closes_total + C->closes_total, 0);
  expect_good_stream(good);
}

static void test_rst_unknown_not_answered(void **state) {
  uint8_t buf[128];
  size_t n = mk(buf, FRAME_RST, UNKNOWN_ID, 0, FRAME_CODE_RESET, "x");
  n += mk(buf + n, FRAME_RST, 2, 0, FRAME_CODE_RESET, NULL);
  inject_ok(S, buf, n);
  inject_ok(C, buf, n);
  assert_false(session_want_write(S->s));
  assert_false(session_want_write(C->s));
  expect_healthy();
}

/* Late frames for ids that were open once are ignored, whatever they are. */
static void test_closed_ids_ignored(void **state) {
  uint8_t buf[512];
  uint32_t ids[3];
  establish(ids, 3);
  /* ids[0]: both FINs; ids[1]: RST by the client; ids[2]: refused. */
  C->rec[ids[0]].tx_fin = 1;
  S->rec[ids[0]].fin_on_fin = 1;
  pump_all();
  expect_closed(C, ids[0], FRAME_CODE_NO_ERROR, "");
  session_stream_reset(C->rec[ids[1]].st, FRAME_CODE_RESET, NULL);
  C->rec[ids[1]].st = NULL;
  pump_all();
  S->auto_accept = -1;
  uint32_t refused = open_stream(C);
  pump_all();
  expect_closed(C, refused, FRAME_CODE_REFUSED, NULL);
  int cc = C->closes_total, sc = S->closes_total;

  for (uint32_t id = ids[0]; id <= refused; id += 2) {
    if (id == ids[2])
      continue;
    size_t n = mk_data(buf, id, 7, 0);
    n += mk(buf + n, FRAME_WINDOW, id, 1000, 0, NULL);
    n += mk(buf + n, FRAME_FIN, id, 0, 0, NULL);
    n += mk(buf + n, FRAME_RST, id, 0, FRAME_CODE_RESET, "late");
    inject_ok(S, buf, n);
    n += mk(buf + n, FRAME_OPEN_OK, id, 1000, 0, NULL);
    n += mk(buf + n, FRAME_OPEN_FAIL, id, 0, FRAME_CODE_REFUSED, "late");
    inject_ok(C, buf, n);
  }
  assert_false(session_want_write(S->s));
  assert_false(session_want_write(C->s));
  assert_int_equal(C->closes_total, cc);
  assert_int_equal(S->closes_total, sc);
  expect_good_stream(ids[2]);
}

/* ---- connection-level protocol errors ----------------------------------- */

static void expect_conn_error(side_t *to, const uint8_t *buf, size_t n) {
  static const uint8_t p[FRAME_PING_LEN] = {1, 2, 3, 4, 5, 6, 7, 8};
  uint8_t ping[32];
  int closes = to->closes_total;
  assert_int_equal(session_feed(to->s, buf, n, 1), -1);
  assert_non_null(session_error(to->s));
  assert_true(session_error(to->s)[0] != '\0');
  /* Unusable from then on. */
  size_t k = mk_ping(ping, FRAME_PING, p);
  assert_int_equal(session_feed(to->s, ping, k, 1), -1);
  assert_int_equal(to->closes_total, closes);
}

static void test_conn_open_from_server(void **state) {
  uint8_t buf[64];
  /* An odd id, as a client would use, and an even one. */
  expect_conn_error(C, buf, mk(buf, FRAME_OPEN, 1, 4096, 0, NULL));
  assert_false(session_want_write(C->s));
  pair_init(SESSION_WINDOW_MIN, SESSION_WINDOW_MIN, 64);
  uint32_t id;
  establish(&id, 1);
  expect_conn_error(C, buf, mk(buf, FRAME_OPEN, id + 2, 4096, 0, NULL));
  pair_init(SESSION_WINDOW_MIN, SESSION_WINDOW_MIN, 64);
  expect_conn_error(C, buf, mk(buf, FRAME_OPEN, 2, 4096, 0, NULL));
  assert_string_equal(session_error(S->s), "");
}

static void test_conn_open_even_id(void **state) {
  uint8_t buf[64];
  expect_conn_error(S, buf, mk(buf, FRAME_OPEN, 2, 4096, 0, NULL));
  assert_int_equal(S->rec[2].incoming, 0);
}

static void test_conn_open_not_increasing(void **state) {
  uint8_t buf[64];
  inject_ok(S, buf, mk(buf, FRAME_OPEN, 5, 4096, 0, NULL));
  assert_int_equal(S->rec[5].incoming, 1);
  expect_conn_error(S, buf, mk(buf, FRAME_OPEN, 5, 4096, 0, NULL));
  pair_init(SESSION_WINDOW_MIN, SESSION_WINDOW_MIN, 64);
  inject_ok(S, buf, mk(buf, FRAME_OPEN, 5, 4096, 0, NULL));
  expect_conn_error(S, buf, mk(buf, FRAME_OPEN, 3, 4096, 0, NULL));
  assert_int_equal(S->rec[3].incoming, 0);
}

static void test_conn_open_ok_to_server(void **state) {
  uint8_t buf[64];
  uint32_t id;
  establish(&id, 1);
  expect_conn_error(S, buf, mk(buf, FRAME_OPEN_OK, id, 4096, 0, NULL));
  pair_init(SESSION_WINDOW_MIN, SESSION_WINDOW_MIN, 64);
  establish(&id, 1);
  expect_conn_error(S, buf, mk(buf, FRAME_OPEN_FAIL, id, 0, 4, "no"));
}

static void test_conn_truncated(void **state) {
  static const uint8_t p[FRAME_PING_LEN] = {0};
  uint8_t buf[128];
  size_t n = mk_ping(buf, FRAME_PING, p);
  /* Inside the header, and inside the payload. */
  expect_conn_error(S, buf, 7);
  pair_init(SESSION_WINDOW_MIN, SESSION_WINDOW_MIN, 64);
  expect_conn_error(S, buf, n - 1);
  /* A whole frame followed by a partial one. */
  pair_init(SESSION_WINDOW_MIN, SESSION_WINDOW_MIN, 64);
  size_t m = mk_ping(buf + n, FRAME_PING, p);
  expect_conn_error(C, buf, n + m - 3);
  /* Split over chunks is fine as long as the message ends on a boundary. */
  pair_init(SESSION_WINDOW_MIN, SESSION_WINDOW_MIN, 64);
  assert_int_equal(session_feed(S->s, buf, 5, 0), 0);
  assert_int_equal(session_feed(S->s, buf + 5, n + m - 5, 1), 0);
  pump_all();
  assert_int_equal(C->pongs, 2);
}

static void test_conn_oversize(void **state) {
  uint8_t buf[FRAME_HEADER_LEN];
  uint32_t id;
  establish(&id, 1);
  /* Refused from the header alone, before any payload arrives. */
  frame_encode_header(buf, FRAME_DATA, id, FRAME_MAX_PAYLOAD + 1);
  assert_int_equal(session_feed(S->s, buf, sizeof buf, 0), -1);
  assert_true(session_error(S->s)[0] != '\0');
  pair_init(SESSION_WINDOW_MIN, SESSION_WINDOW_MIN, 64);
  frame_encode_header(buf, FRAME_PING, 0, 0xffffffffu);
  expect_conn_error(C, buf, sizeof buf);
}

static void test_conn_bad_headers(void **state) {
  uint8_t buf[64];
  static const uint8_t bad_types[] = {0x00, 0x0B, 0xff};
  for (size_t i = 0; i < sizeof bad_types; i++) {
    pair_init(SESSION_WINDOW_MIN, SESSION_WINDOW_MIN, 64);
    frame_encode_header(buf, bad_types[i], 1, 0);
    expect_conn_error(i % 2 ? C : S, buf, FRAME_HEADER_LEN);
  }
  /* Non-zero flags. */
  pair_init(SESSION_WINDOW_MIN, SESSION_WINDOW_MIN, 64);
  size_t n = mk(buf, FRAME_FIN, 1, 0, 0, NULL);
  buf[1] = 1;
  expect_conn_error(S, buf, n);
  /* A stream frame on id 0, a connection frame on a stream. */
  pair_init(SESSION_WINDOW_MIN, SESSION_WINDOW_MIN, 64);
  n = mk(buf, FRAME_WINDOW, 0, 10, 0, NULL);
  expect_conn_error(C, buf, n);
  pair_init(SESSION_WINDOW_MIN, SESSION_WINDOW_MIN, 64);
  frame_encode_header(buf, FRAME_PING, 1, FRAME_PING_LEN);
  memset(buf + FRAME_HEADER_LEN, 0, FRAME_PING_LEN);
  expect_conn_error(S, buf, FRAME_HEADER_LEN + FRAME_PING_LEN);
  /* Wrong payload size for the type. */
  pair_init(SESSION_WINDOW_MIN, SESSION_WINDOW_MIN, 64);
  frame_encode_header(buf, FRAME_WINDOW, 1, 3);
  expect_conn_error(S, buf, FRAME_HEADER_LEN + 3);
}

/* Frames after the bad one in the same message are not acted upon. */
static void test_conn_error_stops_message(void **state) {
  static const uint8_t p[FRAME_PING_LEN] = {9};
  uint8_t buf[128];
  size_t n = mk(buf, FRAME_OPEN, 2, 4096, 0, NULL); /* even */
  n += mk_ping(buf + n, FRAME_PING, p);
  n += mk(buf + n, FRAME_OPEN, 3, 4096, 0, NULL);
  expect_conn_error(S, buf, n);
  assert_false(session_want_write(S->s));
  assert_int_equal(S->rec[3].incoming, 0);
}

/* ---- limits, GOAWAY, PING, abort ---------------------------------------- */

static void test_max_streams(void **state) {
  pair_init(SESSION_WINDOW_MIN, SESSION_WINDOW_MIN, 2);
  uint32_t a = open_stream(C), b = open_stream(C), c = open_stream(C);
  pump_all();
  assert_int_equal(C->rec[a].open_ok, 1);
  assert_int_equal(C->rec[b].open_ok, 1);
  expect_closed(C, c, FRAME_CODE_LIMIT, NULL);
  assert_true(C->rec[c].reason_len > 0);
  assert_int_equal(S->rec[c].incoming, 0);
  assert_int_equal(sent_last(S, FRAME_OPEN_FAIL, c)->code, FRAME_CODE_LIMIT);
  assert_int_equal(session_stream_count(S->s), 2);
  /* Frames for the refused id are ignored (it was used). */
  uint8_t buf[64];
  inject_ok(S, buf, mk_data(buf, c, 1, 0));
  assert_false(session_want_write(S->s));
  /* Once one ends, a new stream fits. */
  session_stream_reset(C->rec[a].st, FRAME_CODE_RESET, NULL);
  C->rec[a].st = NULL;
  pump_all();
  uint32_t d = open_stream(C);
  pump_all();
  assert_int_equal(C->rec[d].open_ok, 1);
  assert_int_equal(session_stream_count(S->s), 2);
  expect_healthy();
}

static void test_goaway(void **state) {
  uint32_t id;
  establish(&id, 1);
  session_goaway(S->s, FRAME_CODE_SHUTDOWN, "edge is stopping");
  pump_all();
  assert_int_equal(C->goaways, 1);
  assert_int_equal(C->goaway_last, id);
  assert_int_equal(C->goaway_code, FRAME_CODE_SHUTDOWN);
  assert_string_equal(C->goaway_reason, "edge is stopping");
  assert_null(session_stream_open(C->s, NULL));
  assert_int_equal(session_stream_count(C->s), 1);
  /* Existing streams continue to the end. */
  C->rec[id].tx_goal = 50000;
  C->rec[id].tx_fin = 1;
  S->rec[id].tx_goal = 50000;
  S->rec[id].tx_fin = 1;
  pump_all();
  assert_int_equal(S->rec[id].rx, 50000);
  assert_int_equal(C->rec[id].rx, 50000);
  expect_closed(C, id, FRAME_CODE_NO_ERROR, "");
  expect_closed(S, id, FRAME_CODE_NO_ERROR, "");
  expect_healthy();
}

/* An OPEN that crosses the server's GOAWAY is refused with SHUTDOWN; a
 * client's GOAWAY reaches the server's callback. */
static void test_goaway_crossing_open(void **state) {
  session_goaway(S->s, FRAME_CODE_SHUTDOWN, "bye");
  uint32_t id = open_stream(C);
  assert_true(pump1(C) > 0); /* OPEN arrives after GOAWAY was queued */
  pump_all();
  expect_closed(C, id, FRAME_CODE_SHUTDOWN, NULL);
  assert_int_equal(S->rec[id].incoming, 0);
  assert_int_equal(C->goaways, 1);
  assert_int_equal(C->goaway_last, 0);

  session_goaway(C->s, FRAME_CODE_SHUTDOWN, "ctrl-c");
  pump_all();
  assert_int_equal(S->goaways, 1);
  assert_int_equal(S->goaway_code, FRAME_CODE_SHUTDOWN);
  assert_string_equal(S->goaway_reason, "ctrl-c");
}

static void test_ping_pong(void **state) {
  static const uint8_t p[FRAME_PING_LEN] = {0xde, 0xad, 0xbe, 0xef,
                                            0,    1,    2,    0xff};
  session_ping(C->s, p);
  pump_all();
  assert_int_equal(C->pongs, 1);
  assert_memory_equal(C->pong, p, FRAME_PING_LEN);
  assert_int_equal(sent_count(S, FRAME_PONG, 0), 1);
  assert_int_equal(S->pongs, 0);
  /* The other way round too. */
  session_ping(S->s, p);
  pump_all();
  assert_int_equal(S->pongs, 1);
  assert_memory_equal(S->pong, p, FRAME_PING_LEN);
}

/* A PONG goes ahead of DATA already queued. */
static void test_pong_before_data(void **state) {
  static const uint8_t p[FRAME_PING_LEN] = {7, 7, 7, 7, 7, 7, 7, 7};
  uint32_t id;
  pair_init(SESSION_WINDOW_DEFAULT, SESSION_WINDOW_DEFAULT, 64);
  establish(&id, 1);
  S->rec[id].tx_goal = 200000;
  feed_app(S);
  assert_true(pump1(S) > 0); /* some DATA out, more queued */
  assert_true(session_stream_queued(S->rec[id].st) > 0);
  session_ping(C->s, p);
  assert_true(pump1(C) > 0);
  assert_true(pump1(S) > 0);
  assert_int_equal(S->msg_first_type, FRAME_PONG);
  assert_int_equal(C->pongs, 1);
  assert_memory_equal(C->pong, p, FRAME_PING_LEN);
  pump_all();
  assert_int_equal(C->rec[id].rx, 200000);
}

/* A control backlog larger than one message goes out entirely before any
 * DATA: here an OPEN_OK queued behind many PONGs must precede the DATA of
 * its stream (the monitor checks DATA only follows OPEN_OK). */
static void test_control_backlog_before_data(void **state) {
  static const uint8_t p[FRAME_PING_LEN] = {3};
  const size_t pings = SESSION_MSG_MAX / (FRAME_HEADER_LEN + 8) + 200;
  S->auto_accept = 0;
  uint32_t id = open_stream(C);
  for (size_t i = 0; i < pings; i++)
    session_ping(C->s, p);
  while (pump1(C) > 0)
    ;
  session_stream_accept(S->rec[id].st);
  S->rec[id].tx_goal = 5000;
  feed_app(S);
  size_t n = take_msg(S, msg1);
  assert_int_equal(S->data_frames, 0);
  assert_int_equal(sent_count(S, FRAME_OPEN_OK, 0), 0);
  assert_int_equal(give(C, msg1, n, 0), 0);
  pump_all();
  assert_int_equal(C->pongs, (int)pings);
  assert_int_equal(C->rec[id].rx, 5000);
}

static void test_abort(void **state) {
  uint32_t ids[4];
  establish(ids, 4);
  S->auto_accept = 0;
  uint32_t pending = open_stream(C); /* incoming, not answered */
  for (int i = 0; i < 4; i++) {
    S->rec[ids[i]].tx_goal = 100000; /* stalls: queued data is dropped */
    C->rec[ids[i]].tx_goal = 100000;
    S->rec[ids[i]].no_consume = 1;
    C->rec[ids[i]].no_consume = 1;
  }
  pump_all();
  assert_true(session_stream_queued(C->rec[ids[0]].st) > 0);
  assert_true(session_stream_queued(S->rec[ids[0]].st) > 0);
  assert_int_equal(session_stream_count(C->s), 5);
  assert_int_equal(session_stream_count(S->s), 5);

  session_abort(C->s, FRAME_CODE_SHUTDOWN, "websocket closed");
  assert_int_equal(C->closes_total, 5);
  for (int i = 0; i < 4; i++)
    expect_closed(C, ids[i], FRAME_CODE_SHUTDOWN, "websocket closed");
  expect_closed(C, pending, FRAME_CODE_SHUTDOWN, "websocket closed");
  assert_int_equal(session_stream_count(C->s), 0);
  assert_false(session_want_write(C->s)); /* nothing sent */

  session_abort(S->s, FRAME_CODE_INTERNAL, NULL);
  assert_int_equal(S->closes_total, 5);
  expect_closed(S, pending, FRAME_CODE_INTERNAL, "");
  expect_closed(S, ids[3], FRAME_CODE_INTERNAL, "");
  assert_int_equal(S->rec[pending].reason_len, 0);
  assert_int_equal(session_stream_count(S->s), 0);
  assert_false(session_want_write(S->s));
  /* Aborting again is a no-op. */
  session_abort(S->s, FRAME_CODE_INTERNAL, NULL);
  assert_int_equal(S->closes_total, 5);
}

/* stream_closed callbacks that reset other streams during an abort. */
static void test_abort_cascading_callbacks(void **state) {
  uint32_t ids[20];
  establish(ids, 20);
  S->reset_other_on_close = 1;
  session_abort(S->s, FRAME_CODE_SHUTDOWN, "x");
  assert_int_equal(session_stream_count(S->s), 0);
  assert_int_equal(S->closes_total, 10);
  assert_int_equal(live_streams(S), 0);
}

/* A client that opens a replacement from stream_closed during an abort must
 * not keep the abort going forever, nor survive it with streams. */
static void test_abort_reopen_in_callback(void **state) {
  uint32_t ids[20];
  establish(ids, 20);
  C->reopen_budget = 100;
  session_abort(C->s, FRAME_CODE_SHUTDOWN, "x");
  assert_int_equal(session_stream_count(C->s), live_streams(C));
  assert_int_equal(session_stream_count(C->s), 0);
  assert_int_equal(C->closes_total, 20); /* replacements were not opened */
}

/* A peer that floods PINGs while never reading our PONGs fails the session
 * once SESSION_CTRLQ_MAX bytes are queued. */
static void test_ctrlq_flood_ping(void **state) {
  static const uint8_t p[FRAME_PING_LEN] = {1};
  const size_t per = FRAME_HEADER_LEN + FRAME_PING_LEN;
  size_t n = 0, sent = 0;
  while (n + per <= SESSION_MSG_MAX)
    n += mk_ping(msg1 + n, FRAME_PING, p);
  int rc = 0;
  for (int i = 0; i < 1000 && rc == 0; i++) {
    rc = session_feed(S->s, msg1, n, 1);
    sent += n / per;
  }
  assert_int_equal(rc, -1);
  assert_true(session_error(S->s)[0] != '\0');
  /* Failed just past the bound, not much later. */
  assert_true(sent * per > SESSION_CTRLQ_MAX);
  assert_true(sent * per <= SESSION_CTRLQ_MAX + n + per);
  assert_int_equal(session_feed(S->s, msg1, per, 1), -1);
}

/* The same with frames for unknown streams (each answered with RST). */
static void test_ctrlq_flood_unknown(void **state) {
  size_t n = 0;
  for (uint32_t id = 1001; n + 16 <= SESSION_MSG_MAX; id += 2)
    n += mk(msg1 + n, FRAME_WINDOW, id, 1, 0, NULL);
  int rc = 0, i;
  for (i = 0; i < 1000 && rc == 0; i++)
    rc = session_feed(C->s, msg1, n, 1);
  assert_int_equal(rc, -1);
  assert_true(i < 100);
  assert_true(session_error(C->s)[0] != '\0');
}

/* ---- callbacks that end streams ----------------------------------------- */

/* stream_data resets its stream while more frames for it follow in the
 * same message: they are ignored, no RST(UNKNOWN_STREAM) goes back. */
static void test_reset_in_data_callback(void **state) {
  uint32_t ids[2];
  pair_init(SESSION_WINDOW_DEFAULT, SESSION_WINDOW_DEFAULT, 64);
  establish(ids, 2);
  C->rec[ids[0]].reset_on_data = 1;
  S->rec[ids[0]].tx_goal = 40000; /* three DATA frames and FIN */
  S->rec[ids[0]].tx_fin = 1;
  S->rec[ids[1]].tx_goal = 100;
  feed_app(S);
  size_t n = take_msg(S, msg1);
  assert_true(S->w_fin[ids[0]]);
  assert_int_equal(give(C, msg1, n, 0), 0);
  assert_int_equal(C->rec[ids[0]].data_calls, 1);
  assert_int_equal(C->rec[ids[1]].rx, 100);
  pump_all();
  assert_int_equal(sent_count(C, FRAME_RST, 0), 1);
  assert_int_equal(sent_last(C, FRAME_RST, ids[0])->code, FRAME_CODE_RESET);
  expect_closed(S, ids[0], FRAME_CODE_RESET, "tcp write failed");
  expect_good_stream(ids[1]);
}

static void test_reset_in_drained_callback(void **state) {
  uint32_t ids[2];
  pair_init(SESSION_WINDOW_MIN, SESSION_WINDOW_DEFAULT, 64);
  establish(ids, 2);
  srec_t *r = &C->rec[ids[0]];
  r->reset_on_drained = 1;
  r->tx_goal = 200000;
  C->rec[ids[1]].tx_goal = 200000;
  pump_all();
  assert_int_equal(r->drained, 1);
  expect_closed(S, ids[0], FRAME_CODE_RESET, "gave up");
  assert_true(S->rec[ids[0]].rx < 200000);
  assert_int_equal(S->rec[ids[1]].rx, 200000);
}

static void test_reset_in_open_ok_callback(void **state) {
  uint32_t ids[2];
  C->rec[1].reset_on_open_ok = 1;
  ids[0] = open_stream(C);
  C->rec[ids[0]].tx_goal = 1000; /* queued before OPEN_OK, then dropped */
  feed_app(C);
  ids[1] = open_stream(C);
  pump_all();
  assert_int_equal(C->rec[ids[0]].open_ok, 1);
  expect_closed(S, ids[0], FRAME_CODE_CONNECT_ERROR, "changed my mind");
  assert_int_equal(S->rec[ids[0]].rx, 0);
  assert_int_equal(C->rec[ids[1]].open_ok, 1);
  expect_good_stream(ids[1]);
}

/* A closed stream's callback opens the next one (client). */
static void test_open_in_closed_callback(void **state) {
  uint32_t id = open_stream(C);
  C->reopen_budget = 1;
  S->auto_accept = -1;
  pump_all();
  expect_closed(C, id, FRAME_CODE_REFUSED, NULL);
  assert_int_equal(C->rec[id + 2].closes, 1); /* refused as well */
  S->auto_accept = 1;
  uint32_t next = open_stream(C);
  assert_int_equal(next, id + 4);
  pump_all();
  assert_int_equal(C->rec[next].open_ok, 1);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_open_accept),
      T(test_server_cannot_open),
      T(test_small_both_ways),
      T(test_write_before_open_ok),
      T(test_interleaved_large),
      T(test_message_packing),
      T(test_window_exact_stop),
      T(test_no_head_of_line),
      T(test_sendq_full_and_drained),
      T(test_consumed_after_fin),
      T(test_fin_client_first),
      T(test_fin_server_first),
      T(test_fin_simultaneous),
      T(test_fin_echo_in_callback),
      T(test_write_after_fin_dropped),
      T(test_rst_from_client),
      T(test_rst_from_server),
      T(test_refuse),
      T(test_rst_while_opening),
      T(test_data_beyond_window),
      T(test_window_zero),
      T(test_window_overflow),
      T(test_window_overflow_after_spending),
      T(test_window_overflow_cumulative),
      T(test_data_after_fin),
      T(test_data_before_open_ok),
      T(test_invalid_initial_window),
      T(test_duplicate_open_ok),
      T(test_unknown_stream),
      T(test_rst_unknown_not_answered),
      T(test_closed_ids_ignored),
      T(test_conn_open_from_server),
      T(test_conn_open_even_id),
      T(test_conn_open_not_increasing),
      T(test_conn_open_ok_to_server),
      T(test_conn_truncated),
      T(test_conn_oversize),
      T(test_conn_bad_headers),
      T(test_conn_error_stops_message),
      T(test_max_streams),
      T(test_goaway),
      T(test_goaway_crossing_open),
      T(test_ping_pong),
      T(test_pong_before_data),
      T(test_control_backlog_before_data),
      T(test_abort),
      T(test_abort_cascading_callbacks),
      T(test_abort_reopen_in_callback),
      T(test_ctrlq_flood_ping),
      T(test_ctrlq_flood_unknown),
      T(test_reset_in_data_callback),
      T(test_reset_in_drained_callback),
      T(test_reset_in_open_ok_callback),
      T(test_open_in_closed_callback),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
