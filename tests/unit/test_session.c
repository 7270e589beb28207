/* Unit tests for the stream state machine and flow control (ws/session.[ch],
 * docs/PROTOCOL.md sections 2-6): a CLIENT and a SERVER session wired to
 * each other in memory. Every message built by one side is decoded and
 * checked by a wire monitor (message size, DATA quantum, credit never
 * overdrawn, control frames first, nothing after RST/FIN) before it is fed
 * to the other side. Hand-crafted frames (ws/frame.h) are injected to test
 * the error paths.
 *
 * Resume (session_link_down / session_link_up): a side can be told to lose
 * what it sends (the WebSocket is dying: a suffix of each direction never
 * arrives). Lost messages are still checked, against the sender's own view
 * (what it sent, delivered or not); the per-stream accounting follows what
 * was delivered, and a delivered RESUME resets the peer's credit to what the
 * RESUME says it must be.
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

#define MAX_ID 6600   /* stream ids the harness tracks (ids below this) */
#define LOG_MAX 16384 /* non-DATA frames logged per side */
#define MSGBUF (2 * SESSION_MSG_MAX) /* more than allowed: checks the clamp */
#define UNKNOWN_ID 201               /* an odd id no test opens */
/* The log's type for a FIN on a stream its sender has ended: the
 * acknowledgement of the peer's FIN (docs/PROTOCOL.md section 8). */
#define FIN_ACK (0x80 | FRAME_FIN)

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
  uint32_t top;    /* above every id in rec[] that was used */
  int auto_accept; /* server: 1 accept, -1 refuse, 0 leave to the test */
  int auto_consume;
  size_t wchunk; /* application write size */
  size_t split;  /* pump1 feeds this side in pieces (see feed_msg) */
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
  int64_t grown[MAX_ID];  /* window growth (WINDOW_GROW) received */
  size_t backlog;         /* what input_backlog reports */
  size_t data_sent[MAX_ID];
  uint8_t w_open_ok[MAX_ID]; /* OPEN_OK seen on the wire */
  uint8_t w_fin[MAX_ID];     /* this side sent FIN */
  uint8_t w_ack[MAX_ID];     /* ... and its FIN acknowledgement */
  uint8_t w_end[MAX_ID];     /* this side sent RST or OPEN_FAIL */
  /* resume */
  int lose;        /* what this side sends from now on is lost */
  int auto_resume; /* client: session_link_up(resume) on a resumed HELLO */
  int hellos, hello_resumed;
  uint8_t hello_id[FRAME_SESSION_ID_LEN];
  uint32_t hello_grace;
  int resuming;    /* since link_drop: HELLO/RESUME first */
  size_t since_up; /* frames sent since link_drop */
  int resume_sent; /* our last RESUME frame (more = 0) is out */
  int resume_got;  /* the peer's last RESUME frame was delivered to us */
  size_t resume_frames, resume_more, resume_entries; /* since link_drop */
  size_t lost_msgs, lost_frames[16];                 /* lost, by frame type */
  size_t lost_acks;                                  /* FIN_ACK lost */
  /* the sender's view of what it sent on the dying link and was lost */
  int64_t l_data[MAX_ID];
  uint8_t l_open_ok[MAX_ID], l_fin[MAX_ID], l_ack[MAX_ID], l_end[MAX_ID];
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
  if (id >= sd->top)
    sd->top = id + 1;
  return &sd->rec[id];
}

static size_t live_streams(const side_t *sd) {
  size_t n = 0;
  for (size_t i = 0; i < sd->top; i++)
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
  assert_true(session_stream_queued(st) < SESSION_SENDQ_RESUME);
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
    for (size_t i = 1; i < sd->top; i++) {
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

static void cb_hello(void *ctx, const uint8_t *session_id, int resumed,
                     uint32_t grace_ms) {
  side_t *sd = ctx;
  assert_int_equal(sd->role, SESSION_ROLE_CLIENT);
  sd->hellos++;
  sd->hello_resumed = resumed;
  memcpy(sd->hello_id, session_id, FRAME_SESSION_ID_LEN);
  sd->hello_grace = grace_ms;
  if (resumed && sd->auto_resume)
    session_link_up(sd->s, 1, NULL);
}

static size_t cb_backlog(void *ctx) {
  return ((side_t *)ctx)->backlog;
}

static side_t *side_new(session_role_t role, uint32_t window,
                        uint32_t max_streams) {
  side_t *sd = calloc(1, sizeof(*sd));
  assert_non_null(sd);
  sd->role = role;
  sd->window = window;
  sd->auto_accept = 1;
  sd->auto_consume = 1;
  sd->auto_resume = 1;
  sd->wchunk = 7001;
  sd->cb = (session_callbacks_t){.want_write = cb_want_write,
                                 .stream_incoming = cb_incoming,
                                 .stream_open_ok = cb_open_ok,
                                 .stream_data = cb_data,
                                 .stream_fin = cb_fin,
                                 .stream_drained = cb_drained,
                                 .stream_closed = cb_closed,
                                 .goaway = cb_goaway,
                                 .pong = cb_pong,
                                 .hello = cb_hello,
                                 .input_backlog = cb_backlog};
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

/* A RESUME from `from` reached its peer: the peer's credit on each stream
 * is now what the RESUME says (lost WINDOWs are recovered by it). */
static void monitor_resume(side_t *from, const frame_t *f) {
  side_t *to = from->peer;
  for (uint32_t i = 0; i < f->count; i++) {
    frame_resume_entry_t e;
    frame_resume_entry(f, i, &e);
    uint32_t id = e.stream_id;
    assert_true(e.granted <= e.received);
    if (id == 0 || id >= MAX_ID)
      continue;
    /* Exactly the bytes delivered, and the FIN if it was. */
    assert_int_equal(e.received, to->data_sent[id]);
    assert_int_equal((e.flags & FRAME_RESUME_FIN_RECEIVED) != 0, to->w_fin[id]);
    if (from->role == SESSION_ROLE_CLIENT)
      assert_int_equal((e.flags & FRAME_RESUME_OPENED) != 0,
                       from->w_open_ok[id]);
    /* ENDED: only a stream the sender ended in order, all received. */
    if (e.flags & FRAME_RESUME_ENDED) {
      assert_int_equal(from->rec[id].closes, 1);
      assert_int_equal(from->rec[id].code, FRAME_CODE_NO_ERROR);
      assert_true(e.flags & FRAME_RESUME_OPENED);
      assert_true(e.flags & FRAME_RESUME_FIN_RECEIVED);
    }
    to->credit[id] = (int64_t)from->window + to->grown[id] +
                     (int64_t)e.granted - (int64_t)e.received;
  }
}

/* A FIN after this side's FIN went out (or was lost) acknowledges the
 * peer's: a control frame, on a stream that ended in order here. */
static int is_fin_ack(const side_t *from, const frame_t *f) {
  uint32_t id = f->stream_id;
  return f->type == FRAME_FIN && id > 0 && id < MAX_ID &&
         (from->w_fin[id] || from->l_fin[id]);
}

/* One frame `from` sent; lost: it never reaches the peer. */
static void monitor(side_t *from, const frame_t *f, int lost) {
  side_t *to = from->peer;
  uint32_t id = f->stream_id;
  int tracked = id > 0 && id < MAX_ID;

  if (from->resuming) {
    /* After a reconnect: the server's HELLO, then RESUMEs, then nothing
     * until both RESUMEs are through. */
    if (f->type == FRAME_HELLO) {
      assert_int_equal(from->role, SESSION_ROLE_SERVER);
      assert_int_equal(from->since_up, 0);
    } else if (f->type == FRAME_RESUME) {
      if (from->role == SESSION_ROLE_SERVER)
        assert_true(from->since_up > 0);
      assert_false(from->resume_sent);
    } else if (!from->resume_sent || !from->resume_got) {
      fail_msg("%s on stream %u before the RESUME exchange was done",
               frame_type_name(f->type), id);
    }
    from->since_up++;
  }
  if (f->type == FRAME_RESUME) {
    from->resume_frames++;
    from->resume_more += f->more != 0;
    from->resume_entries += f->count;
    if (!f->more) {
      from->resume_sent = 1;
      if (!lost)
        to->resume_got = 1;
    }
    if (!lost)
      monitor_resume(from, f);
  }
  int ack = is_fin_ack(from, f);
  if (ack) {
    assert_int_equal(from->rec[id].closes, 1);
    assert_int_equal(from->rec[id].code, FRAME_CODE_NO_ERROR);
  }
  if (lost) {
    if (ack)
      from->lost_acks++;
    else
      from->lost_frames[f->type & 15]++;
  } else if (f->type != FRAME_DATA && from->nlog < LOG_MAX) {
    wire_ev_t *e = &from->log[from->nlog++];
    e->type = ack ? FIN_ACK : f->type;
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
  if (from->w_end[id] || from->l_end[id])
    fail_msg("%s frame on stream %u after RST/OPEN_FAIL",
             frame_type_name(f->type), id);
  int open_ok = from->w_open_ok[id] || from->l_open_ok[id];
  int fin = from->w_fin[id] || from->l_fin[id];
  switch (f->type) {
  case FRAME_OPEN:
    assert_int_equal(from->role, SESSION_ROLE_CLIENT);
    if (!lost)
      to->credit[id] = f->window;
    break;
  case FRAME_OPEN_OK:
    assert_int_equal(from->role, SESSION_ROLE_SERVER);
    if (lost) {
      from->l_open_ok[id] = 1;
    } else {
      assert_false(from->w_open_ok[id]); /* delivered once */
      to->credit[id] = f->window;
      from->w_open_ok[id] = to->w_open_ok[id] = 1;
    }
    break;
  case FRAME_DATA:
    from->data_frames++;
    assert_true(f->length <= SESSION_MSG_MAX - FRAME_HEADER_LEN);
    assert_true(open_ok); /* no DATA before OPEN_OK */
    assert_false(fin);    /* no DATA after FIN */
    if (from->credit[id] - from->l_data[id] - (int64_t)f->length < 0)
      fail_msg("stream %u: DATA beyond the peer's window", id);
    if (lost) {
      from->l_data[id] += f->length;
    } else {
      from->credit[id] -= f->length;
      from->data_sent[id] += f->length;
    }
    break;
  case FRAME_WINDOW:
    assert_true(f->window > 0);
    if (!lost)
      to->credit[id] += f->window;
    if (!lost && (f->flags & FRAME_WINDOW_GROW))
      to->grown[id] += f->window;
    break;
  case FRAME_FIN:
    assert_true(open_ok);
    if (ack) {
      /* One per link, one delivered: once it is, the peer has let the
       * stream go and asks for nothing again. */
      assert_false(from->l_ack[id]);
      assert_false(from->w_ack[id]);
      if (lost)
        from->l_ack[id] = 1;
      else
        from->w_ack[id] = 1;
      break;
    }
    if (lost)
      from->l_fin[id] = 1;
    else
      from->w_fin[id] = 1;
    break;
  case FRAME_RST:
  case FRAME_OPEN_FAIL:
    if (lost)
      from->l_end[id] = 1;
    else
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
  from->lost_msgs += from->lose != 0;
  if (n > from->max_msg)
    from->max_msg = n;
  while (off < n) {
    frame_t f;
    size_t used = 0;
    assert_int_equal(frame_decode(buf + off, n - off, &f, &used), FRAME_OK);
    off += used;
    if (nframes++ == 0)
      from->msg_first_type = f.type;
    if (f.type == FRAME_DATA ||
        (f.type == FRAME_FIN && !is_fin_ack(from, &f))) {
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
    monitor(from, &f, from->lose);
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
static int feed_msg(side_t *to, const uint8_t *buf, size_t n, size_t split) {
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

/* feed_msg, saying why when the session fails. */
static int give(side_t *to, const uint8_t *buf, size_t n, size_t split) {
  int rc = feed_msg(to, buf, n, split);
  if (rc != 0)
    print_message("session failed: %s\n", session_error(to->s));
  return rc;
}

/* One message from -> peer (or lost, if from->lose); returns its size. */
static size_t pump1(side_t *from) {
  size_t n = take_msg(from, msg1);
  if (n > 0 && !from->lose)
    assert_int_equal(give(from->peer, msg1, n, from->peer->split), 0);
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
  for (size_t i = 1; i < sd->top; i++) {
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
  if (id >= sd->top)
    sd->top = id + 1;
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
 * cleared (delivered ones: lost frames are only counted in lost_frames),
 * and the last one. */
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
    if (f.type == FRAME_RESUME && !f.more)
      to->resume_got = 1;
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

/* One bulk stream, alone: one DATA frame fills the message (no quantum:
 * nobody waits). Two streams: turns of at most SESSION_QUANTUM each. */
static void test_message_packing(void **state) {
  uint32_t id;
  pair_init(SESSION_WINDOW_DEFAULT, SESSION_WINDOW_MAX, 64);
  establish(&id, 1);
  srec_t *r = &C->rec[id];
  for (int i = 0; i < 4; i++)
    app_write(C, r, SESSION_MSG_MAX / 4);
  size_t n = take_msg(C, msg1);
  assert_true(n <= SESSION_MSG_MAX);
  assert_int_equal(n, SESSION_MSG_MAX);
  assert_int_equal(C->data_frames, 1);
  assert_int_equal(give(S, msg1, n, 0), 0);
  /* The header took room: its size in bytes goes next time. */
  assert_int_equal(session_stream_queued(r->st), FRAME_HEADER_LEN);
  pump_all();
  assert_int_equal(S->rec[id].rx, SESSION_MSG_MAX);

  /* Two streams with data: turns alternate, each at most a quantum. */
  uint32_t id2;
  establish(&id2, 1);
  srec_t *r2 = &C->rec[id2];
  for (int i = 0; i < 4; i++) {
    app_write(C, r, SESSION_QUANTUM);
    app_write(C, r2, SESSION_QUANTUM);
  }
  n = take_msg(C, msg1);
  uint32_t seen[2] = {0, 0};
  for (size_t off = 0; off < n;) {
    frame_t f;
    size_t used;
    assert_int_equal(frame_decode(msg1 + off, n - off, &f, &used), FRAME_OK);
    assert_true(f.length <= SESSION_QUANTUM);
    seen[f.stream_id == id2]++;
    off += used;
  }
  assert_true(seen[0] >= 1 && seen[1] >= 1);
  assert_int_equal(give(S, msg1, n, 0), 0);
  pump_all();
  assert_int_equal(S->rec[id].rx, SESSION_MSG_MAX + 4 * SESSION_QUANTUM);
  assert_int_equal(S->rec[id2].rx, 4 * SESSION_QUANTUM);

  /* A small cap is respected too. */
  app_write(C, r, 5000);
  size_t m = session_build_message(C->s, msg1, FRAME_CONTROL_MAX);
  assert_int_equal(m, FRAME_CONTROL_MAX);
  inspect(C, msg1, m);
  assert_int_equal(give(S, msg1, m, 0), 0);
  pump_all();
  assert_int_equal(S->rec[id].rx, SESSION_MSG_MAX + 4 * SESSION_QUANTUM + 5000);
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
  /* A is held back by its own credit, its queue bounded (and not below
   * the resume mark: what went out did not make it "drained"). */
  assert_non_null(S->rec[ids[0]].st);
  assert_true(S->rec[ids[0]].full);
  assert_true(session_stream_queued(S->rec[ids[0]].st) >= SESSION_SENDQ_RESUME);
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

  /* One message takes 64 KiB: still above the resume mark, still full. */
  assert_true(pump1(C) > 0);
  assert_int_equal(r->drained, 0);
  assert_true(session_stream_queued(r->st) >= SESSION_SENDQ_RESUME);
  assert_true(pump1(C) > 0);
  assert_int_equal(r->drained, 1);
  assert_int_equal(r->full, 0);
  assert_true(session_stream_queued(r->st) < SESSION_SENDQ_RESUME);
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

/* Credit comes back only for bytes sent: a WINDOW acknowledging more than
 * is in flight is a FLOW_CONTROL error, however large or small. */
static void test_window_overflow(void **state) {
  uint8_t buf[64];
  uint32_t ids[4];
  establish(ids, 4);
  /* Nothing in flight: even 1 is too much. */
  inject_ok(C, buf, mk(buf, FRAME_WINDOW, ids[0], 1, 0, NULL));
  expect_closed(C, ids[0], FRAME_CODE_FLOW_CONTROL, NULL);
  /* Up to the window, at once. */
  inject_ok(C, buf, mk(buf, FRAME_WINDOW, ids[1], S->window, 0, NULL));
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

/* A sender waiting for credit while the receiver writes everything out at
 * once (the window is the limit): the receiver doubles the window with
 * WINDOW_GROW, up to SESSION_WINDOW_GROW_MAX; every byte arrives. */
static void test_window_grows_when_window_bound(void **state) {
  uint32_t id;
  pair_init(SESSION_WINDOW_DEFAULT, SESSION_WINDOW_MIN, 64);
  establish(&id, 1);
  C->rec[id].tx_goal = 20u * 1024 * 1024;
  pump_all();
  assert_int_equal(S->rec[id].rx, 20u * 1024 * 1024);
  assert_true(C->grown[id] > 0);
  assert_true(SESSION_WINDOW_MIN + C->grown[id] <= SESSION_WINDOW_GROW_MAX);
  expect_good_stream(id);
}

/* A receiver that does not write out what it got (slow TCP reader) never
 * grows the window: memory stays bounded by the announced window. */
static void test_window_no_growth_for_slow_reader(void **state) {
  uint32_t id;
  establish(&id, 1);
  S->rec[id].no_consume = 1;
  C->rec[id].tx_goal = 4u * 1024 * 1024;
  pump_all();
  assert_int_equal(C->grown[id], 0);
  assert_int_equal(S->rec[id].rx, S->window);
  assert_int_equal(C->credit[id], 0);
}

/* WINDOW_GROW raising the window past SESSION_WINDOW_MAX, or by 0, is a
 * FLOW_CONTROL error on that stream only; a valid one adds credit without
 * acknowledging anything. */
static void test_window_grow_invalid(void **state) {
  uint8_t buf[64];
  uint32_t ids[4];
  establish(ids, 4);
  size_t n = mk(buf, FRAME_WINDOW, ids[0], SESSION_WINDOW_MAX, 0, NULL);
  buf[1] = FRAME_WINDOW_GROW;
  inject_ok(C, buf, n);
  expect_closed(C, ids[0], FRAME_CODE_FLOW_CONTROL, "invalid WINDOW growth");
  n = mk(buf, FRAME_WINDOW, ids[1], 0, 0, NULL);
  buf[1] = FRAME_WINDOW_GROW;
  inject_ok(C, buf, n);
  expect_closed(C, ids[1], FRAME_CODE_FLOW_CONTROL, NULL);
  n = mk(buf, FRAME_WINDOW, ids[2], 4096, 0, NULL);
  buf[1] = FRAME_WINDOW_GROW;
  inject_ok(C, buf, n);
  assert_non_null(C->rec[ids[2]].st);
  assert_int_equal(sent_count(C, FRAME_RST, ids[2]), 0);
  pump_all();
  expect_good_stream(ids[3]);
}

/* A receiver that is behind on its input (a backlog in its socket) never
 * grows a window: more credit would only lengthen the queue. */
static void test_window_no_growth_while_behind(void **state) {
  uint32_t id;
  pair_init(SESSION_WINDOW_DEFAULT, SESSION_WINDOW_MIN, 64);
  establish(&id, 1);
  S->backlog = SESSION_BACKLOG_MAX;
  C->rec[id].tx_goal = 4u * 1024 * 1024;
  pump_all();
  assert_int_equal(S->rec[id].rx, 4u * 1024 * 1024);
  assert_int_equal(C->grown[id], 0);
  S->backlog = SESSION_BACKLOG_MAX - 1;
  C->rec[id].tx_goal += 4u * 1024 * 1024;
  pump_all();
  assert_true(C->grown[id] > 0);
  expect_good_stream(id);
}

/* Bytes in flight may be acknowledged, exactly, and no more. */
static void test_window_overflow_after_spending(void **state) {
  uint8_t buf[64];
  uint32_t id;
  establish(&id, 1);
  S->rec[id].no_consume = 1;
  C->rec[id].tx_goal = 1000;
  pump_all();
  assert_int_equal(C->credit[id], S->window - 1000);
  inject_ok(C, buf, mk(buf, FRAME_WINDOW, id, 1000, 0, NULL));
  assert_non_null(C->rec[id].st);
  assert_false(session_want_write(C->s));
  inject_ok(C, buf, mk(buf, FRAME_WINDOW, id, 1, 0, NULL));
  expect_closed(C, id, FRAME_CODE_FLOW_CONTROL, NULL);
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

/* ---- resume ------------------------------------------------------------- */

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_HEAP_BYTES 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_HEAP_BYTES 1
#endif
#endif
#ifdef HAVE_HEAP_BYTES
/* From the sanitizer runtime (sanitizer/allocator_interface.h, which not
 * every compiler installs). */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

static const session_hello_t HELLO = {
    .id = {0x5e, 0x55, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14},
    .grace_ms = 60000};

enum { LOSE_NONE = 0, LOSE_C = 1, LOSE_S = 2, LOSE_BOTH = 3 };

static void lose(int which) {
  C->lose = (which & LOSE_C) != 0;
  S->lose = (which & LOSE_S) != 0;
}

/* The WebSocket is gone: both sides learn it; what was lost stays lost. */
static void link_drop(void) {
  side_t *sides[2] = {C, S};
  for (int k = 0; k < 2; k++) {
    side_t *sd = sides[k];
    session_link_down(sd->s);
    assert_false(session_link_is_up(sd->s));
    assert_false(session_want_write(sd->s));
    assert_int_equal(session_build_message(sd->s, msg2, MSGBUF), 0);
    sd->lose = 0;
    sd->resuming = 1;
    sd->since_up = 0;
    sd->resume_sent = sd->resume_got = 0;
    sd->resume_frames = sd->resume_more = sd->resume_entries = 0;
    memset(sd->l_data, 0, sizeof(sd->l_data));
    memset(sd->l_open_ok, 0, sizeof(sd->l_open_ok));
    memset(sd->l_fin, 0, sizeof(sd->l_fin));
    memset(sd->l_ack, 0, sizeof(sd->l_ack));
    memset(sd->l_end, 0, sizeof(sd->l_end));
  }
}

/* A new WebSocket: the server resumes (HELLO, RESUME); the client follows
 * from its hello callback when the HELLO arrives. */
static void link_resume(void) {
  session_link_up(S->s, 1, &HELLO);
  assert_true(session_link_is_up(S->s));
  assert_true(session_want_write(S->s));
}

static void reconnect(void) {
  link_drop();
  link_resume();
}

/* Up to n rounds of application + one message each way. */
static int pump_steps(int n) {
  int any = 0;
  for (int i = 0; i < n; i++) {
    int did = feed_app(C);
    did |= feed_app(S);
    size_t a = pump1(C);
    size_t b = pump1(S);
    if (a == 0 && b == 0 && !did)
      break;
    any = 1;
  }
  return any;
}

/* Both RESUMEs went through on the last link. */
static void expect_resumed(void) {
  assert_true(C->resume_sent && C->resume_got);
  assert_true(S->resume_sent && S->resume_got);
  assert_true(session_link_is_up(C->s));
  assert_true(session_link_is_up(S->s));
  assert_true(C->hellos > 0);
  assert_true(C->hello_resumed);
  assert_memory_equal(C->hello_id, HELLO.id, FRAME_SESSION_ID_LEN);
  assert_int_equal(C->hello_grace, HELLO.grace_ms);
}

/* At rest, on every stream both sides still have: a sender's credit is
 * within its peer's window, and if the peer consumed everything and may
 * still grant, within a quarter of it (the last, not yet granted part). */
static void check_credit(void) {
  side_t *sides[2] = {C, S};
  for (int k = 0; k < 2; k++) {
    side_t *sd = sides[k], *pe = sd->peer;
    uint32_t top = sd->top > pe->top ? sd->top : pe->top;
    for (uint32_t id = 1; id < top; id++) {
      if (sd->rec[id].st == NULL || pe->rec[id].st == NULL ||
          !sd->w_open_ok[id])
        continue;
      int64_t win = (int64_t)pe->window + sd->grown[id];
      if (sd->credit[id] < 0 || sd->credit[id] > win)
        fail_msg("stream %u: credit %lld outside 0..%lld", id,
                 (long long)sd->credit[id], (long long)win);
      if (pe->rec[id].fins == 0 && pe->auto_consume &&
          !pe->rec[id].no_consume && sd->credit[id] <= win - win / 4)
        fail_msg("stream %u: credit %lld not given back", id,
                 (long long)sd->credit[id]);
    }
  }
}

static void expect_no_rst(void) {
  assert_int_equal(sent_count(C, FRAME_RST, 0), 0);
  assert_int_equal(sent_count(S, FRAME_RST, 0), 0);
}

/* (1) Bulk data both ways on several streams; each phase loses what is in
 * flight in one or both directions, then resumes: every byte arrives once
 * and in order (cb_data checks the pattern at each offset). */
static void test_resume_bulk(void **state) {
  enum { N = 5, PHASES = 6 };
  static const size_t goal_c[N] = {900000, 1, 150001, 0, 70000};
  static const size_t goal_s[N] = {700000, 90000, 3, 33333, 0};
  static const int loss[PHASES] = {LOSE_BOTH, LOSE_C,    LOSE_S,
                                   LOSE_BOTH, LOSE_NONE, LOSE_BOTH};
  uint32_t ids[N];
  pair_init(SESSION_WINDOW_DEFAULT, SESSION_WINDOW_MIN * 2, 64);
  establish(ids, N);
  for (int ph = 0; ph < PHASES; ph++) {
    for (int i = 0; i < N; i++) {
      C->rec[ids[i]].tx_goal = goal_c[i] * (size_t)(ph + 1) / PHASES;
      S->rec[ids[i]].tx_goal = goal_s[i] * (size_t)(ph + 1) / PHASES;
    }
    pump_steps(2 + ph); /* delivered */
    lose(loss[ph]);
    pump_steps(1 + ph % 3); /* in flight when the link died */
    reconnect();
    pump_all();
    expect_resumed();
    for (int i = 0; i < N; i++) {
      assert_int_equal(S->rec[ids[i]].rx, C->rec[ids[i]].tx_goal);
      assert_int_equal(C->rec[ids[i]].rx, S->rec[ids[i]].tx_goal);
      assert_int_equal(S->data_sent[ids[i]], S->rec[ids[i]].tx_goal);
      assert_int_equal(C->data_sent[ids[i]], C->rec[ids[i]].tx_goal);
    }
    check_credit();
    expect_healthy();
  }
  /* Something was lost each way, DATA included. */
  assert_true(C->lost_frames[FRAME_DATA] > 0);
  assert_true(S->lost_frames[FRAME_DATA] > 0);
  assert_true(C->lost_frames[FRAME_WINDOW] + S->lost_frames[FRAME_WINDOW] > 0);
  for (int i = 0; i < N; i++) {
    C->rec[ids[i]].tx_fin = 1;
    S->rec[ids[i]].tx_fin = 1;
  }
  pump_all();
  for (int i = 0; i < N; i++) {
    expect_closed(C, ids[i], FRAME_CODE_NO_ERROR, "");
    expect_closed(S, ids[i], FRAME_CODE_NO_ERROR, "");
    assert_int_equal(S->rec[ids[i]].rx_at_fin, goal_c[i]);
    assert_int_equal(C->rec[ids[i]].rx_at_fin, goal_s[i]);
  }
  assert_true(C->max_msg <= SESSION_MSG_MAX);
  assert_true(S->max_msg <= SESSION_MSG_MAX);
  expect_no_rst();
  expect_healthy();
}

/* (2) Every WINDOW of the receiver is lost: the sender stops at one window,
 * keeping those bytes; the RESUME acknowledges them (they are freed) and
 * the sender goes on beyond the window. */
static void test_resume_window_lost(void **state) {
  const uint32_t w = SESSION_WINDOW_MIN;
  uint32_t id;
  establish(&id, 1);
  srec_t *c = &C->rec[id];
  c->tx_goal = 4 * w;
  c->tx_fin = 1;
  lose(LOSE_S);
  pump_all();
  assert_int_equal(S->rec[id].rx, w);
  assert_int_equal(C->data_sent[id], w);
  assert_true(S->lost_frames[FRAME_WINDOW] > 0);
  assert_int_equal(session_stream_queued(c->st), 3 * w);

  reconnect();
  size_t n = take_msg(S, msg1); /* HELLO, RESUME */
  assert_int_equal(S->msg_first_type, FRAME_HELLO);
#ifdef HAVE_HEAP_BYTES
  size_t before = __sanitizer_get_current_allocated_bytes();
#endif
  assert_int_equal(give(C, msg1, n, 0), 0);
#ifdef HAVE_HEAP_BYTES
  size_t after = __sanitizer_get_current_allocated_bytes();
  /* The window's worth of kept chunks (7001 bytes each) was freed. */
  assert_true(before > after && before - after >= w / 2);
#endif
  assert_int_equal(session_stream_queued(c->st), 3 * w); /* nothing resent */
  pump_all();
  expect_resumed();
  assert_int_equal(S->rec[id].rx, 4 * w);
  assert_int_equal(C->data_sent[id], 4 * w);
  assert_int_equal(S->rec[id].fins, 1);
  assert_int_equal(S->rec[id].rx_at_fin, 4 * w);
  check_credit();
  expect_no_rst();
  expect_healthy();
}

/* (3) A FIN (after data) lost in flight on a stream the peer has not
 * finished: sent again after the data, seen once, then the stream closes
 * in order on both sides. One stream each way. */
static void test_resume_fin_lost(void **state) {
  uint32_t ids[2];
  establish(ids, 2);
  C->rec[ids[0]].tx_goal = 5000;
  C->rec[ids[0]].tx_fin = 1;
  S->rec[ids[1]].tx_goal = 3000;
  S->rec[ids[1]].tx_fin = 1;
  lose(LOSE_BOTH);
  pump_all();
  assert_int_equal(C->lost_frames[FRAME_FIN], 1);
  assert_int_equal(S->lost_frames[FRAME_FIN], 1);
  assert_int_equal(S->rec[ids[0]].rx, 0);
  reconnect();
  pump_all();
  expect_resumed();
  assert_int_equal(S->rec[ids[0]].fins, 1);
  assert_int_equal(S->rec[ids[0]].rx_at_fin, 5000);
  assert_int_equal(C->rec[ids[1]].fins, 1);
  assert_int_equal(C->rec[ids[1]].rx_at_fin, 3000);
  assert_int_equal(sent_count(C, FRAME_FIN, ids[0]), 1);
  assert_int_equal(sent_count(S, FRAME_FIN, ids[1]), 1);
  /* The other directions finish too. */
  S->rec[ids[0]].tx_goal = 10;
  S->rec[ids[0]].tx_fin = 1;
  C->rec[ids[1]].tx_fin = 1;
  pump_all();
  for (int i = 0; i < 2; i++) {
    expect_closed(C, ids[i], FRAME_CODE_NO_ERROR, "");
    expect_closed(S, ids[i], FRAME_CODE_NO_ERROR, "");
  }
  assert_int_equal(C->rec[ids[0]].rx, 10);
  assert_int_equal(C->closes_total, 2);
  assert_int_equal(S->closes_total, 2);
  expect_no_rst();
  expect_healthy();
}

/* Nothing kept on either side, and each side's FIN acknowledged once. */
static void expect_settled(const uint32_t *ids, int n) {
  assert_int_equal(session_kept_count(C->s), 0);
  assert_int_equal(session_kept_count(S->s), 0);
  for (int i = 0; i < n; i++) {
    assert_int_equal(sent_count(C, FIN_ACK, ids[i]), 1);
    assert_int_equal(sent_count(S, FIN_ACK, ids[i]), 1);
  }
}

/* A stream ending in order: each side acknowledges the other's FIN (a FIN
 * on the ended stream), after which neither keeps anything. The
 * acknowledgement is a control frame: it may precede others in a message. */
static void test_fin_acknowledged(void **state) {
  uint32_t ids[3];
  establish(ids, 3);
  for (int i = 0; i < 3; i++) {
    C->rec[ids[i]].tx_goal = 1000 * (size_t)(i + 1);
    C->rec[ids[i]].tx_fin = 1;
    S->rec[ids[i]].fin_on_fin = 1;
  }
  S->rec[ids[2]].tx_goal = 7; /* no answer before the FIN */
  S->rec[ids[2]].tx_fin = 1;
  S->rec[ids[2]].fin_on_fin = 0;
  pump_all();
  for (int i = 0; i < 3; i++) {
    expect_closed(C, ids[i], FRAME_CODE_NO_ERROR, "");
    expect_closed(S, ids[i], FRAME_CODE_NO_ERROR, "");
    assert_int_equal(sent_count(C, FRAME_FIN, ids[i]), 1);
    assert_int_equal(sent_count(S, FRAME_FIN, ids[i]), 1);
  }
  expect_settled(ids, 3);
  expect_no_rst();
  expect_healthy();
}

/* The last FIN of a stream, after its data, is lost with the link: its
 * sender had the peer's FIN and ended the stream (NO_ERROR), but keeps it;
 * the peer, still waiting, lists it in its RESUME and gets the data and
 * the FIN again: both sides end in order, every byte delivered once. Then
 * the same with the server's last FIN. */
static void last_fin_lost(side_t *last) {
  side_t *first = last->peer;
  uint32_t id;
  establish(&id, 1);
  first->rec[id].tx_goal = 100;
  first->rec[id].tx_fin = 1;
  pump_all();
  assert_int_equal(last->rec[id].fins, 1);
  last->rec[id].tx_goal = 2000;
  last->rec[id].tx_fin = 1;
  lose(last == C ? LOSE_C : LOSE_S);
  pump_all();
  expect_closed(last, id, FRAME_CODE_NO_ERROR, ""); /* its view: all done */
  assert_int_equal(last->lost_frames[FRAME_FIN], 1);
  assert_int_equal(last->lost_acks, 1);
  assert_int_equal(first->rec[id].rx, 0);
  assert_int_equal(session_stream_count(last->s), 0);
  assert_int_equal(session_kept_count(last->s), 1); /* a session to keep */
  reconnect();
  pump_all();
  expect_resumed();
  expect_closed(first, id, FRAME_CODE_NO_ERROR, "");
  assert_int_equal(first->rec[id].rx, 2000);
  assert_int_equal(first->rec[id].rx_at_fin, 2000);
  assert_int_equal(last->rec[id].rx, 100);
  assert_int_equal(last->data_sent[id], 2000);
  assert_int_equal(last->closes_total, 1); /* told once, before the drop */
  assert_int_equal(first->closes_total, 1);
  expect_settled(&id, 1);
  expect_no_rst();
  expect_healthy();
}

static void test_resume_last_fin_lost(void **state) {
  last_fin_lost(C);
}

static void test_resume_last_fin_lost_server(void **state) {
  last_fin_lost(S);
}

/* Both FINs cross; the client's (and its data) is lost. The client ended
 * the stream on the server's FIN; the server still waits: resumed, the
 * client's bytes and FIN come again and both end in order. */
static void test_resume_crossing_fin_lost(void **state) {
  uint32_t id;
  establish(&id, 1);
  C->rec[id].tx_goal = 3000;
  C->rec[id].tx_fin = 1;
  S->rec[id].tx_goal = 4000;
  S->rec[id].tx_fin = 1;
  feed_app(C);
  feed_app(S);
  lose(LOSE_C);
  assert_true(pump1(C) > 0); /* DATA and FIN, lost */
  assert_true(pump1(S) > 0); /* DATA and FIN, delivered */
  assert_int_equal(C->lost_frames[FRAME_FIN], 1);
  expect_closed(C, id, FRAME_CODE_NO_ERROR, "");
  assert_non_null(S->rec[id].st);
  pump_all(); /* the client's acknowledgement: lost too */
  assert_int_equal(C->lost_acks, 1);
  reconnect();
  pump_all();
  expect_resumed();
  expect_closed(S, id, FRAME_CODE_NO_ERROR, "");
  assert_int_equal(S->rec[id].rx_at_fin, 3000);
  assert_int_equal(C->rec[id].rx_at_fin, 4000);
  expect_settled(&id, 1);
  expect_no_rst();
  expect_healthy();
}

/* The link drops again while a kept stream sends its last bytes again,
 * and once more right after the RESUME exchange: it converges. */
static void test_resume_last_fin_lost_twice(void **state) {
  uint32_t id;
  pair_init(SESSION_WINDOW_MIN, SESSION_WINDOW_DEFAULT, 64); /* 90000 fit */
  establish(&id, 1);
  S->rec[id].tx_fin = 1;
  pump_all();
  C->rec[id].tx_goal = 90000;
  C->rec[id].tx_fin = 1;
  lose(LOSE_C);
  pump_all();
  expect_closed(C, id, FRAME_CODE_NO_ERROR, "");
  assert_int_equal(S->rec[id].rx, 0);
  reconnect();
  pump_steps(2); /* the RESUMEs, then a part of the bytes */
  expect_resumed();
  assert_true(S->rec[id].rx > 0 && S->rec[id].rx < 90000);
  lose(LOSE_C);
  pump_steps(2);
  assert_int_equal(C->lost_frames[FRAME_FIN], 2); /* lost once more */
  reconnect();
  lose(LOSE_BOTH);
  pump_steps(3);
  reconnect();
  pump_all();
  expect_resumed();
  expect_closed(S, id, FRAME_CODE_NO_ERROR, "");
  assert_int_equal(S->rec[id].rx_at_fin, 90000);
  assert_int_equal(C->closes_total, 1);
  assert_int_equal(session_kept_count(C->s), 0);
  assert_int_equal(session_kept_count(S->s), 0);
  expect_no_rst();
  expect_healthy();
}

/* The last FIN arrives, its acknowledgement is lost: the stream is over on
 * both sides, but its sender keeps it. The resume settles it: the RESUME
 * entries say ENDED, nothing is sent again, nobody resets anything. */
static void test_resume_fin_ack_lost(void **state) {
  uint32_t id;
  establish(&id, 1);
  C->rec[id].tx_goal = 500;
  C->rec[id].tx_fin = 1;
  pump_all();
  S->rec[id].tx_goal = 600;
  S->rec[id].tx_fin = 1;
  feed_app(S);
  assert_true(pump1(S) > 0); /* DATA and FIN: the server ends it */
  expect_closed(S, id, FRAME_CODE_NO_ERROR, "");
  lose(LOSE_C);
  pump_all(); /* the client ends it; its acknowledgement is lost */
  expect_closed(C, id, FRAME_CODE_NO_ERROR, "");
  assert_int_equal(C->lost_acks, 1);
  assert_int_equal(session_kept_count(S->s), 1);
  assert_int_equal(session_kept_count(C->s), 0);
  size_t data = C->data_sent[id] + S->data_sent[id];
  reconnect();
  pump_all();
  expect_resumed();
  assert_int_equal(S->resume_entries, 1);
  assert_int_equal(C->resume_entries, 0);
  assert_int_equal(session_kept_count(S->s), 0);
  assert_int_equal(C->data_sent[id] + S->data_sent[id], data);
  assert_int_equal(C->closes_total, 1);
  assert_int_equal(S->closes_total, 1);
  expect_no_rst();
  expect_healthy();
}

/* A client stream whose server is played by hand: OPEN_OK and FIN come
 * in, len bytes and FIN go out, never acknowledged. Returns its id. */
static uint32_t end_by_hand(size_t len) {
  uint8_t buf[FRAME_CONTROL_MAX * 2];
  uint32_t id = open_stream(C);
  C->rec[id].tx_goal = len;
  C->rec[id].tx_fin = 1;
  feed_app(C);
  (void)take_msg(C, msg1); /* the OPEN */
  size_t n = mk(buf, FRAME_OPEN_OK, id, SESSION_WINDOW_MAX, 0, NULL);
  n += mk(buf + n, FRAME_FIN, id, 0, 0, NULL);
  inject_ok(C, buf, n);
  C->w_open_ok[id] = 1;
  while (feed_app(C) | (take_msg(C, msg1) > 0))
    ;
  expect_closed(C, id, FRAME_CODE_NO_ERROR, "");
  assert_int_equal(C->data_sent[id], len);
  return id;
}

/* A peer that never acknowledges (as one predating it): at most
 * SESSION_KEPT_MAX streams and SESSION_KEPT_BYTES of their bytes are
 * kept, the oldest give way. Its FIN on a kept stream releases it; on one
 * that gave way it is ignored, as on any ended stream. */
static void test_kept_bounds(void **state) {
  enum { N = SESSION_KEPT_MAX + 8, BIG = 120000 };
  uint8_t buf[FRAME_CONTROL_MAX];
  uint32_t ids[N];
  for (size_t i = 0; i < N; i++) {
    ids[i] = end_by_hand(10);
    assert_int_equal(session_kept_count(C->s),
                     i < SESSION_KEPT_MAX ? i + 1 : SESSION_KEPT_MAX);
  }
  /* The newest is released by the peer's FIN; the oldest gave way. */
  inject_ok(C, buf, mk(buf, FRAME_FIN, ids[N - 1], 0, 0, NULL));
  assert_int_equal(session_kept_count(C->s), SESSION_KEPT_MAX - 1);
  inject_ok(C, buf, mk(buf, FRAME_FIN, ids[0], 0, 0, NULL));
  inject_ok(C, buf, mk(buf, FRAME_RST, ids[N - 2], 0, FRAME_CODE_RESET, "x"));
  assert_int_equal(session_kept_count(C->s), SESSION_KEPT_MAX - 2);
  assert_false(session_want_write(C->s)); /* none of it answered */

  /* Bytes: streams whose sent bytes were never acknowledged. */
  pair_init(SESSION_WINDOW_MIN, SESSION_WINDOW_MIN, 64);
  const size_t fit = SESSION_KEPT_BYTES / BIG;
  for (size_t i = 0; i < fit + 3; i++) {
    (void)end_by_hand(BIG);
    assert_int_equal(session_kept_count(C->s), i < fit ? i + 1 : fit);
  }
  /* One stream alone beyond the budget is not kept at all. */
  (void)end_by_hand(SESSION_KEPT_BYTES + 1);
  assert_int_equal(session_kept_count(C->s), fit);
  expect_healthy();
}

/* A session that expired at the edge (client, session_restart), or was
 * aborted, keeps nothing. */
static void test_kept_dropped_on_restart(void **state) {
  uint32_t id;
  establish(&id, 1);
  S->rec[id].tx_fin = 1;
  pump_all();
  C->rec[id].tx_goal = 100;
  C->rec[id].tx_fin = 1;
  lose(LOSE_C);
  pump_all();
  assert_int_equal(session_kept_count(C->s), 1);
  link_drop();
  session_restart(C->s, FRAME_CODE_SHUTDOWN, "session expired");
  assert_int_equal(session_kept_count(C->s), 0);
  assert_int_equal(C->closes_total, 1);
  session_abort(S->s, FRAME_CODE_SHUTDOWN, "gone");
  expect_closed(S, id, FRAME_CODE_SHUTDOWN, "gone");
  assert_int_equal(session_kept_count(S->s), 0);
}

/* A GOAWAY lost with the link is sent again after the resume; one that
 * arrived is sent again too, and reported once: both ways. A fresh session
 * on the client (the edge had lost it) carries its GOAWAY as well. */
static void test_resume_goaway_lost(void **state) {
  uint32_t id;
  establish(&id, 1);
  lose(LOSE_S);
  session_goaway(S->s, FRAME_CODE_SHUTDOWN, "edge is stopping");
  pump_all();
  assert_int_equal(S->lost_frames[FRAME_GOAWAY], 1);
  assert_int_equal(C->goaways, 0);
  reconnect();
  pump_all();
  expect_resumed();
  assert_int_equal(C->goaways, 1);
  assert_int_equal(C->goaway_last, id);
  assert_int_equal(C->goaway_code, FRAME_CODE_SHUTDOWN);
  assert_string_equal(C->goaway_reason, "edge is stopping");
  assert_null(session_stream_open(C->s, NULL));
  reconnect();
  pump_all();
  expect_resumed();
  assert_int_equal(sent_count(S, FRAME_GOAWAY, 0), 2);
  assert_int_equal(C->goaways, 1);
  expect_good_stream(id);

  lose(LOSE_C);
  session_goaway(C->s, FRAME_CODE_SHUTDOWN, "ctrl-c");
  pump_all();
  assert_int_equal(C->lost_frames[FRAME_GOAWAY], 1);
  reconnect();
  pump_all();
  expect_resumed();
  assert_int_equal(S->goaways, 1);
  assert_string_equal(S->goaway_reason, "ctrl-c");
  assert_int_equal(sent_count(C, FRAME_GOAWAY, 0), 1);
  expect_good_stream(id);

  link_drop();
  session_restart(C->s, FRAME_CODE_SHUTDOWN, "session expired");
  session_link_up(C->s, 0, NULL);
  C->resuming = 0;
  C->lose = 1;
  assert_true(take_msg(C, msg1) > 0);
  assert_int_equal(C->lost_frames[FRAME_GOAWAY], 2);
  expect_healthy();
}

/* (4) OPEN lost in flight, and OPEN of a stream opened while the link was
 * down: each reaches the server once, the streams work. */
static void test_resume_open_lost(void **state) {
  uint32_t first;
  establish(&first, 1);
  lose(LOSE_C);
  uint32_t a = open_stream(C);
  C->rec[a].tx_goal = 20000; /* queued behind OPEN_OK */
  pump_all();
  assert_int_equal(C->lost_frames[FRAME_OPEN], 1);
  assert_int_equal(S->rec[a].incoming, 0);
  link_drop();
  uint32_t b = open_stream(C); /* during the outage */
  C->rec[b].tx_goal = 30000;
  size_t msgs = C->msgs;
  pump_all(); /* nothing moves: no link */
  assert_int_equal(C->msgs, msgs);
  assert_false(session_want_write(C->s));
  link_resume();
  pump_all();
  expect_resumed();
  uint32_t ids[2] = {a, b};
  for (int i = 0; i < 2; i++) {
    uint32_t id = ids[i];
    assert_int_equal(S->rec[id].incoming, 1);
    assert_int_equal(sent_count(C, FRAME_OPEN, id), 1);
    assert_int_equal(C->rec[id].open_ok, 1);
    assert_int_equal(S->rec[id].rx, C->rec[id].tx_goal);
    expect_good_stream(id);
  }
  expect_good_stream(first);
  expect_no_rst();
}

/* Many streams opened during the outage: their OPENs go out in id order
 * (the server requires increasing ids), each once. */
static void test_resume_open_many_in_outage(void **state) {
  enum { N = 40 };
  uint32_t first, ids[N];
  establish(&first, 1);
  reconnect(); /* a resume with nothing lost, to start with */
  pump_all();
  expect_resumed();
  link_drop();
  for (int i = 0; i < N; i++) {
    ids[i] = open_stream(C);
    C->rec[ids[i]].tx_goal = 1000 + (size_t)i;
    C->rec[ids[i]].tx_fin = 1;
    S->rec[ids[i]].fin_on_fin = 1;
  }
  link_resume();
  pump_all();
  expect_resumed();
  for (int i = 0; i < N; i++) {
    assert_int_equal(sent_count(C, FRAME_OPEN, ids[i]), 1);
    assert_int_equal(S->rec[ids[i]].rx, 1000 + (size_t)i);
    expect_closed(C, ids[i], FRAME_CODE_NO_ERROR, "");
    expect_closed(S, ids[i], FRAME_CODE_NO_ERROR, "");
  }
  expect_good_stream(first);
  expect_no_rst();
}

/* A stream opened after the client's RESUME went out but before the
 * server's arrived (a large RESUME spans several messages): one OPEN. */
static void test_resume_open_while_awaiting(void **state) {
  uint32_t first;
  establish(&first, 1);
  reconnect();
  size_t n = take_msg(S, msg1);
  frame_t f;
  size_t used;
  assert_int_equal(frame_decode(msg1, n, &f, &used), FRAME_OK);
  assert_int_equal(f.type, FRAME_HELLO);
  assert_true(used < n);
  assert_int_equal(give(C, msg1, used, 0), 0); /* the HELLO alone */
  assert_int_equal(C->hellos, 1);
  assert_true(session_want_write(C->s)); /* its RESUME */
  uint32_t late = open_stream(C);
  C->rec[late].tx_goal = 5000;
  feed_app(C);
  size_t m = take_msg(C, msg2); /* the client's RESUME, nothing else */
  assert_int_equal(C->msg_first_type, FRAME_RESUME);
  assert_int_equal(sent_count(C, FRAME_OPEN, late), 0);
  assert_false(session_want_write(C->s));
  assert_int_equal(give(C, msg1 + used, n - used, 0), 0); /* server RESUME */
  assert_int_equal(give(S, msg2, m, 0), 0);
  pump_all();
  expect_resumed();
  assert_int_equal(sent_count(C, FRAME_OPEN, late), 1);
  assert_int_equal(S->rec[late].incoming, 1);
  assert_int_equal(S->rec[late].rx, 5000);
  expect_good_stream(late);
  expect_good_stream(first);
  expect_no_rst();
}

/* OPEN_OK lost in flight (with DATA after it); a stream accepted during the
 * outage; one accepted after the server's RESUME went out but before the
 * client's arrived: each OPEN_OK reaches the client once. */
static void test_resume_open_ok_lost(void **state) {
  uint32_t ids[3];
  S->auto_accept = 0;
  for (int i = 0; i < 3; i++) {
    ids[i] = open_stream(C);
    C->rec[ids[i]].tx_goal = 7000;
    S->rec[ids[i]].tx_goal = 9000;
  }
  pump_all();
  for (int i = 0; i < 3; i++)
    assert_int_equal(S->rec[ids[i]].incoming, 1);
  lose(LOSE_S);
  session_stream_accept(S->rec[ids[0]].st);
  pump_all();
  assert_int_equal(S->lost_frames[FRAME_OPEN_OK], 1);
  assert_true(S->lost_frames[FRAME_DATA] > 0);
  link_drop();
  session_stream_accept(S->rec[ids[1]].st); /* during the outage */
  link_resume();
  session_stream_accept(S->rec[ids[2]].st); /* awaiting the client's RESUME */
  pump_all();
  expect_resumed();
  for (int i = 0; i < 3; i++) {
    uint32_t id = ids[i];
    assert_int_equal(sent_count(S, FRAME_OPEN_OK, id), 1);
    assert_int_equal(C->rec[id].open_ok, 1);
    assert_int_equal(C->rec[id].rx, 9000);
    assert_int_equal(S->rec[id].rx, 7000);
    expect_good_stream(id);
  }
  expect_no_rst();
}

/* (5) The server reset a stream, its RST was lost: after the resume the
 * client's stream is reset; the client's own lost RST likewise resets the
 * server's. Other streams go on. */
static void test_resume_rst_lost(void **state) {
  uint32_t ids[3];
  establish(ids, 3);
  for (int i = 0; i < 3; i++) {
    C->rec[ids[i]].tx_goal = 50000;
    S->rec[ids[i]].tx_goal = 50000;
  }
  pump_steps(3);
  lose(LOSE_BOTH);
  session_stream_reset(S->rec[ids[0]].st, FRAME_CODE_CONNECT_ERROR, "gone");
  S->rec[ids[0]].st = NULL;
  session_stream_reset(C->rec[ids[1]].st, FRAME_CODE_RESET, "tcp reset");
  C->rec[ids[1]].st = NULL;
  pump_steps(2);
  /* The original codes do not survive: the streams are "lost". */
  assert_int_equal(S->lost_frames[FRAME_RST], 1);
  assert_int_equal(C->lost_frames[FRAME_RST], 1);
  reconnect();
  pump_all();
  expect_resumed();
  expect_closed(C, ids[0], FRAME_CODE_RESET, NULL);
  expect_closed(S, ids[1], FRAME_CODE_RESET, NULL);
  assert_int_equal(C->closes_total, 1);
  assert_int_equal(S->closes_total, 1);
  assert_int_equal(C->rec[ids[2]].rx, 50000);
  assert_int_equal(S->rec[ids[2]].rx, 50000);
  expect_good_stream(ids[2]);
  assert_int_equal(session_stream_count(C->s), 1);
  assert_int_equal(session_stream_count(S->s), 1);
}

/* (6) Streams only the client still has, because the server freed them
 * while the link was down (reset, refused): the client's are reset; a
 * stream only the server has (the client reset it meanwhile) likewise. */
static void test_resume_stream_only_one_side(void **state) {
  uint32_t ids[3];
  establish(ids, 3);
  S->auto_accept = 0;
  uint32_t pending = open_stream(C);
  pump_all();
  assert_int_equal(S->rec[pending].incoming, 1);
  link_drop();
  session_stream_reset(S->rec[ids[0]].st, FRAME_CODE_RESET, "x");
  S->rec[ids[0]].st = NULL;
  session_stream_refuse(S->rec[pending].st, FRAME_CODE_REFUSED, "refused");
  S->rec[pending].st = NULL;
  session_stream_reset(C->rec[ids[1]].st, FRAME_CODE_RESET, "y");
  C->rec[ids[1]].st = NULL;
  link_resume();
  pump_all();
  expect_resumed();
  expect_closed(C, ids[0], FRAME_CODE_RESET, NULL);
  expect_closed(C, pending, FRAME_CODE_RESET, NULL);
  assert_int_equal(C->rec[pending].open_ok, 0);
  expect_closed(S, ids[1], FRAME_CODE_RESET, NULL);
  /* The server does not answer the client's unopened entry. */
  assert_int_equal(sent_count(S, FRAME_RST, pending), 0);
  expect_good_stream(ids[2]);
  assert_int_equal(session_stream_count(C->s), 1);
  assert_int_equal(session_stream_count(S->s), 1);
  expect_healthy();
}

/* (7) Drops during the RESUME exchange and right after it converge. */
static void test_resume_repeated_drops(void **state) {
  enum { N = 3 };
  uint32_t ids[N];
  pair_init(SESSION_WINDOW_MIN * 4, SESSION_WINDOW_MIN, 64);
  establish(ids, N);
  for (int i = 0; i < N; i++) {
    C->rec[ids[i]].tx_goal = 3000000 + (size_t)i;
    S->rec[ids[i]].tx_goal = 2000000 + (size_t)i;
    C->rec[ids[i]].tx_fin = S->rec[ids[i]].tx_fin = 1;
  }
  int partial = 0;
  for (int round = 0; round < 4; round++) {
    pump_steps(3);
    lose(LOSE_BOTH);
    pump_steps(2);
    /* The server's HELLO and RESUME are lost. */
    reconnect();
    lose(LOSE_S);
    pump_steps(1);
    assert_true(S->lost_frames[FRAME_HELLO] > 0);
    assert_int_equal(C->hellos, 4 * round); /* 4 got through per round */
    /* The client resumes, its RESUME (and what follows) is lost. */
    reconnect();
    assert_true(pump1(S) > 0);
    assert_true(C->resume_got);
    lose(LOSE_C);
    assert_true(pump1(C) > 0);
    assert_true(C->lost_frames[FRAME_RESUME] > 0);
    pump_steps(2);
    /* Both RESUMEs through, then everything in flight lost. */
    reconnect();
    pump_steps(3);
    expect_resumed();
    lose(round & 1 ? LOSE_BOTH : LOSE_C);
    pump_steps(2);
    /* And once more right away, before anything got through. */
    reconnect();
    lose(LOSE_BOTH);
    pump_steps(2);
    reconnect();
    pump_steps(2);
    expect_resumed();
    /* A message cut inside its first frame: the reader holds a partial
     * frame when the link drops; it must not be glued to the next link. */
    feed_app(C);
    lose(LOSE_C);
    size_t n = take_msg(C, msg1);
    if (n > 0) {
      frame_t f;
      size_t used;
      assert_int_equal(frame_decode(msg1, n, &f, &used), FRAME_OK);
      assert_int_equal(session_feed(S->s, msg1, used - 1, 0), 0);
      partial++;
    }
    reconnect();
    pump_steps(2);
    expect_resumed();
  }
  assert_true(partial > 0);
  pump_all();
  expect_resumed();
  for (int i = 0; i < N; i++) {
    expect_closed(C, ids[i], FRAME_CODE_NO_ERROR, "");
    expect_closed(S, ids[i], FRAME_CODE_NO_ERROR, "");
    assert_int_equal(S->rec[ids[i]].rx, 3000000 + (size_t)i);
    assert_int_equal(C->rec[ids[i]].rx, 2000000 + (size_t)i);
  }
  expect_no_rst();
  expect_healthy();
}

/* ---- hand-made RESUME frames --- */

static size_t mk_resume(uint8_t *out, size_t cap, uint8_t more, uint32_t last,
                        const frame_resume_entry_t *e, uint32_t n) {
  static uint8_t ent[FRAME_MAX_PAYLOAD];
  for (uint32_t i = 0; i < n; i++)
    frame_resume_entry_encode(ent + (size_t)i * FRAME_RESUME_ENTRY_LEN, &e[i]);
  frame_t f = {.type = FRAME_RESUME,
               .more = more,
               .last_stream_id = last,
               .count = n,
               .entries = ent};
  size_t len = frame_encode(out, cap, &f);
  assert_true(len > 0);
  return len;
}

static size_t mk_hello(uint8_t *out, int resumed) {
  frame_t f = {.type = FRAME_HELLO,
               .session_id = HELLO.id,
               .hello_flags = resumed ? FRAME_HELLO_RESUMED : 0,
               .grace_ms = HELLO.grace_ms};
  size_t len = frame_encode(out, FRAME_CONTROL_MAX, &f);
  assert_int_equal(len, FRAME_HEADER_LEN + FRAME_HELLO_LEN);
  return len;
}

/* (8) A RESUME whose counts cannot be true ends that stream with
 * RST(PROTOCOL) (server side): received beyond what was sent, granted
 * beyond received, granted below what was already acknowledged. */
static void test_resume_bad_counts_server(void **state) {
  uint8_t buf[512];
  uint32_t ids[4];
  establish(ids, 4);
  for (int i = 0; i < 4; i++)
    S->rec[ids[i]].tx_goal = 10000; /* one DATA, granted back at once */
  pump_all();
  for (int i = 0; i < 4; i++)
    assert_int_equal(S->credit[ids[i]], C->window);
  link_drop();
  link_resume();
  S->lose = 1;
  (void)take_msg(S, msg1); /* HELLO, RESUME: not delivered */
  S->lose = 0;
  frame_resume_entry_t e[4] = {
      {ids[0], FRAME_RESUME_OPENED, 10001, 10000}, /* received > sent */
      {ids[1], FRAME_RESUME_OPENED, 5000, 6000},   /* granted > received */
      {ids[2], FRAME_RESUME_OPENED, 10000, 0},     /* granted < acked */
      {ids[3], FRAME_RESUME_OPENED, 10000, 10000}, /* right */
  };
  inject_ok(S, buf, mk_resume(buf, sizeof(buf), 0, 0, e, 4));
  for (int i = 0; i < 3; i++)
    expect_closed(S, ids[i], FRAME_CODE_PROTOCOL, "RESUME counts out of range");
  assert_non_null(S->rec[ids[3]].st);
  S->rec[ids[3]].tx_goal += 100;
  feed_app(S);
  assert_true(take_msg(S, msg1) > 0);
  for (int i = 0; i < 3; i++)
    assert_int_equal(sent_last(S, FRAME_RST, ids[i])->code,
                     FRAME_CODE_PROTOCOL);
  assert_int_equal(sent_count(S, FRAME_RST, ids[3]), 0);
  assert_int_equal(S->data_sent[ids[3]], 10100);
  expect_healthy();
}

/* The same on the client, after a resumed HELLO. */
static void test_resume_bad_counts_client(void **state) {
  uint8_t buf[512];
  uint32_t ids[3];
  establish(ids, 3);
  for (int i = 0; i < 3; i++)
    C->rec[ids[i]].tx_goal = 6000;
  pump_all();
  link_drop();
  size_t n = mk_hello(buf, 1);
  inject_ok(C, buf, n);
  assert_int_equal(C->hellos, 1);
  C->lose = 1;
  (void)take_msg(C, msg1); /* its RESUME, not delivered */
  C->lose = 0;
  frame_resume_entry_t e[3] = {
      {ids[0], FRAME_RESUME_OPENED, 6001, 6000},
      {ids[1], FRAME_RESUME_OPENED, 6000, 6001},
      {ids[2], FRAME_RESUME_OPENED, 6000, 6000},
  };
  inject_ok(C, buf, mk_resume(buf, sizeof(buf), 0, ids[2], e, 3));
  expect_closed(C, ids[0], FRAME_CODE_PROTOCOL, NULL);
  expect_closed(C, ids[1], FRAME_CODE_PROTOCOL, NULL);
  assert_non_null(C->rec[ids[2]].st);
  assert_true(take_msg(C, msg1) > 0);
  assert_int_equal(sent_last(C, FRAME_RST, ids[0])->code, FRAME_CODE_PROTOCOL);
  assert_int_equal(sent_last(C, FRAME_RST, ids[1])->code, FRAME_CODE_PROTOCOL);
  expect_healthy();
}

/* A peer's RESUME that cannot be true of a stream we ended in order (more
 * received than we sent, or not even opened) resets it with PROTOCOL; the
 * application was told long ago and hears nothing more. */
static void test_resume_kept_bad_counts(void **state) {
  uint8_t buf[512];
  uint32_t ids[3];
  establish(ids, 3);
  for (int i = 0; i < 3; i++)
    S->rec[ids[i]].tx_fin = 1;
  pump_all();
  for (int i = 0; i < 3; i++) {
    C->rec[ids[i]].tx_goal = 700;
    C->rec[ids[i]].tx_fin = 1;
  }
  lose(LOSE_C);
  pump_all();
  assert_int_equal(session_kept_count(C->s), 3);
  link_drop();
  inject_ok(C, buf, mk_hello(buf, 1));
  C->lose = 1;
  (void)take_msg(C, msg1); /* its RESUME, not delivered */
  C->lose = 0;
  frame_resume_entry_t e[3] = {
      {ids[0], FRAME_RESUME_OPENED, 701, 0}, /* received > sent */
      {ids[1], 0, 0, 0},                     /* not opened */
      {ids[2], FRAME_RESUME_OPENED, 300, 0}, /* right */
  };
  inject_ok(C, buf, mk_resume(buf, sizeof(buf), 0, ids[2], e, 3));
  assert_int_equal(session_kept_count(C->s), 1);
  while (take_msg(C, msg1) > 0)
    ;
  assert_int_equal(sent_last(C, FRAME_RST, ids[0])->code, FRAME_CODE_PROTOCOL);
  assert_int_equal(sent_last(C, FRAME_RST, ids[1])->code, FRAME_CODE_PROTOCOL);
  assert_int_equal(sent_count(C, FRAME_RST, ids[2]), 0);
  assert_int_equal(sent_count(C, FRAME_FIN, ids[2]), 1); /* again */
  assert_int_equal(C->closes_total, 3);
  expect_healthy();
}

/* The edge's HELLO comes once per WebSocket: a second one on the same
 * WebSocket is a connection error (it made the client send its OPENs, or
 * its RESUME, again on it; found by fuzz_session). A new WebSocket brings
 * a new one. */
static void test_hello_twice(void **state) {
  uint8_t buf[64];
  uint32_t id;
  inject_ok(C, buf, mk_hello(buf, 0)); /* the first WebSocket's */
  establish(&id, 1);
  reconnect();
  pump_all();
  expect_resumed();
  assert_int_equal(C->hellos, 2);
  assert_int_equal(inject(C, buf, mk_hello(buf, 1)), -1);
  assert_non_null(strstr(session_error(C->s), "HELLO twice"));
  assert_int_equal(C->hellos, 2);

  pair_init(SESSION_WINDOW_MIN, SESSION_WINDOW_MIN, 64);
  open_stream(C);
  inject_ok(C, buf, mk_hello(buf, 0));
  assert_int_equal(inject(C, buf, mk_hello(buf, 0)), -1);
  assert_int_equal(C->hellos, 1);
}

/* A RESUME that lists stream 0 (the connection): a connection error, not
 * an RST for stream 0, which no encoder may produce (found by
 * fuzz_session). */
static void test_resume_stream_zero(void **state) {
  uint8_t buf[512];
  uint32_t id;
  establish(&id, 1);
  link_drop();
  link_resume();
  S->lose = 1;
  (void)take_msg(S, msg1);
  S->lose = 0;
  frame_resume_entry_t e[2] = {{id, FRAME_RESUME_OPENED, 0, 0},
                               {0, FRAME_RESUME_OPENED, 0, 0}};
  assert_int_equal(inject(S, buf, mk_resume(buf, sizeof(buf), 0, 0, e, 2)), -1);
  assert_non_null(strstr(session_error(S->s), "stream 0"));
}

/* A RESUME that lists a stream twice: which entry would count is anyone's
 * guess, so it is a connection error. */
static void test_resume_duplicate_entry(void **state) {
  uint8_t buf[512];
  uint32_t ids[2];
  establish(ids, 2);
  link_drop();
  link_resume();
  S->lose = 1;
  (void)take_msg(S, msg1);
  S->lose = 0;
  frame_resume_entry_t e[3] = {
      {ids[0], FRAME_RESUME_OPENED, 0, 0},
      {ids[1], FRAME_RESUME_OPENED, 0, 0},
      {ids[0], FRAME_RESUME_OPENED, 0, 0},
  };
  assert_int_equal(inject(S, buf, mk_resume(buf, sizeof(buf), 0, 0, e, 3)), -1);
  assert_true(session_failed(S->s));
  assert_non_null(strstr(session_error(S->s), "twice"));
  assert_int_equal(S->closes_total, 0);
}

/* A RESUME entry for an id we never used, for a stream the peer saw
 * opened: no correct peer sends it, and answering it with RST would burn
 * an id we may still open (found by fuzz_session: RST, then OPEN of the
 * same id on the same WebSocket). A connection error, on either side; a
 * client's entry for a stream not opened (its OPEN was lost) is fine. */
static void test_resume_unknown_id(void **state) {
  uint8_t buf[512];
  uint32_t id;
  establish(&id, 1);
  link_drop();
  inject_ok(C, buf, mk_hello(buf, 1));
  C->lose = 1;
  (void)take_msg(C, msg1);
  C->lose = 0;
  frame_resume_entry_t e[2] = {{id, FRAME_RESUME_OPENED, 0, 0},
                               {UNKNOWN_ID, FRAME_RESUME_OPENED, 0, 0}};
  assert_int_equal(inject(C, buf, mk_resume(buf, sizeof(buf), 0, 0, e, 2)), -1);
  assert_non_null(strstr(session_error(C->s), "never opened"));

  pair_init(SESSION_WINDOW_MIN, SESSION_WINDOW_MIN, 64);
  establish(&id, 1);
  link_drop();
  link_resume();
  S->lose = 1;
  (void)take_msg(S, msg1);
  S->lose = 0;
  e[1].flags = 0; /* not opened: its OPEN comes again */
  inject_ok(S, buf, mk_resume(buf, sizeof(buf), 0, 0, e, 2));
  while (take_msg(S, msg1) > 0)
    ;
  assert_int_equal(sent_count(S, FRAME_RST, UNKNOWN_ID), 0);
  expect_healthy();

  pair_init(SESSION_WINDOW_MIN, SESSION_WINDOW_MIN, 64);
  establish(&id, 1);
  link_drop();
  link_resume();
  S->lose = 1;
  (void)take_msg(S, msg1);
  S->lose = 0;
  e[1].flags = FRAME_RESUME_OPENED;
  assert_int_equal(inject(S, buf, mk_resume(buf, sizeof(buf), 0, 0, e, 2)), -1);
  assert_non_null(strstr(session_error(S->s), "never opened"));
}

/* A RESUME nobody waits for, or a HELLO to the server, is a connection
 * error; so is a RESUME after the exchange is over. */
static void test_resume_unexpected(void **state) {
  uint8_t buf[512];
  uint32_t id;
  establish(&id, 1);
  frame_resume_entry_t e = {id, FRAME_RESUME_OPENED, 0, 0};
  size_t n = mk_resume(buf, sizeof(buf), 0, 0, &e, 1);
  assert_int_equal(session_feed(S->s, buf, n, 1), -1);
  assert_true(strstr(session_error(S->s), "RESUME") != NULL);
  assert_int_equal(session_feed(C->s, buf, n, 1), -1);
  assert_true(strstr(session_error(C->s), "RESUME") != NULL);

  pair_init(SESSION_WINDOW_MIN, SESSION_WINDOW_MIN, 64);
  n = mk_hello(buf, 1);
  assert_int_equal(session_feed(S->s, buf, n, 1), -1);
  assert_true(strstr(session_error(S->s), "HELLO") != NULL);

  /* A RESUME whose count disagrees with its size, or whose size is not a
   * whole number of entries, or with a stream id: malformed. */
  static const int bad_kind[] = {0, 1, 2};
  for (size_t k = 0; k < sizeof(bad_kind) / sizeof(bad_kind[0]); k++) {
    pair_init(SESSION_WINDOW_MIN, SESSION_WINDOW_MIN, 64);
    establish(&id, 1);
    link_drop();
    link_resume();
    n = mk_resume(buf, sizeof(buf), 0, 0, &e, 1);
    if (bad_kind[k] == 0) {
      buf[FRAME_HEADER_LEN + 8] = 2; /* count 2, one entry */
    } else if (bad_kind[k] == 1) {
      buf[11]--; /* length one short */
      n--;
    } else {
      buf[7] = 1; /* stream id 1 */
    }
    assert_int_equal(session_feed(S->s, buf, n, 1), -1);
    assert_int_equal(S->rec[id].closes, 0);
  }

  /* After a complete exchange, one more RESUME. */
  pair_init(SESSION_WINDOW_MIN, SESSION_WINDOW_MIN, 64);
  establish(&id, 1);
  reconnect();
  pump_all();
  expect_resumed();
  n = mk_resume(buf, sizeof(buf), 0, 0, &e, 1);
  assert_int_equal(session_feed(C->s, buf, n, 1), -1);
  assert_int_equal(session_feed(S->s, buf, n, 1), -1);
}

/* (9) More streams than fit in one RESUME frame: several frames (more
 * flag), each in a message of at most SESSION_MSG_MAX, all applied. A first
 * attempt dies after the HELLO, with a partial RESUME gathered. */
static void test_resume_many_streams(void **state) {
  enum { N = 3200 };
  assert_true(N > FRAME_RESUME_MAX_ENTRIES);
  pair_init(SESSION_WINDOW_MIN, SESSION_WINDOW_MIN, N + 10);
  for (int i = 0; i < N; i++)
    assert_int_equal(open_stream(C), 2 * (uint32_t)i + 1);
  pump_all();
  assert_int_equal(session_stream_count(S->s), N);
  assert_int_equal(session_stream_count(C->s), N);
  static const uint32_t busy[] = {1, 2001, 4001, 2 * N - 1};
  for (size_t i = 0; i < 4; i++) {
    C->rec[busy[i]].tx_goal = 40000;
    S->rec[busy[i]].tx_goal = 40000;
  }
  pump_steps(2);
  lose(LOSE_BOTH);
  pump_steps(2);

  /* Messages of many RESUME frames (each fits FRAME_CONTROL_MAX, as every
   * control frame) arrive in pieces. */
  C->split = 1000;
  S->split = 777;
  /* First try: the HELLO and the first message of RESUME frames get
   * through. */
  reconnect();
  assert_true(pump1(S) > SESSION_MSG_MAX - FRAME_CONTROL_MAX);
  assert_int_equal(S->msg_first_type, FRAME_HELLO);
  assert_int_equal(C->hellos, 1);
  assert_true(S->resume_more > 1);
  assert_int_equal(S->resume_more, S->resume_frames);
  assert_false(C->resume_got);
  /* Second try: the server's RESUME is through, the client's first
   * message of RESUME frames too, then the link drops. */
  reconnect();
  while (!C->resume_got)
    assert_true(pump1(S) > 0);
  assert_true(pump1(C) > 0);
  assert_true(C->resume_more > 1);
  assert_int_equal(C->resume_more, C->resume_frames);
  assert_false(S->resume_got);
  reconnect();
  pump_all();
  expect_resumed();
  assert_int_equal(S->resume_entries, N);
  assert_int_equal(C->resume_entries, N);
  assert_true(S->resume_frames >= 2);
  assert_int_equal(S->resume_more, S->resume_frames - 1);
  assert_true(C->resume_frames >= 2);
  assert_int_equal(C->resume_more, C->resume_frames - 1);
  assert_true(S->max_msg <= SESSION_MSG_MAX);
  assert_true(C->max_msg <= SESSION_MSG_MAX);
  assert_int_equal(session_stream_count(S->s), N);
  assert_int_equal(session_stream_count(C->s), N);
  for (size_t i = 0; i < 4; i++) {
    assert_int_equal(S->rec[busy[i]].rx, 40000);
    assert_int_equal(C->rec[busy[i]].rx, 40000);
  }
  expect_good_stream(2 * N - 1);
  expect_no_rst();
}

/* session_build_message promises that FRAME_CONTROL_MAX bytes of room
 * carry any control frame: RESUME frames included, however many streams
 * (a RESUME frame as big as a message got stuck: found by fuzz_session). */
static void test_resume_small_messages(void **state) {
  enum { N = 200 };
  uint32_t ids[N];
  pair_init(SESSION_WINDOW_MIN, SESSION_WINDOW_MIN, N);
  establish(ids, N);
  reconnect();
  for (int i = 0; i < 400 && !(C->resume_got && S->resume_got); i++) {
    side_t *sides[2] = {S, C};
    for (int k = 0; k < 2; k++) {
      int ww = session_want_write(sides[k]->s);
      size_t n = session_build_message(sides[k]->s, msg1, FRAME_CONTROL_MAX);
      assert_int_equal(ww, n > 0);
      if (n == 0)
        continue;
      assert_true(n <= FRAME_CONTROL_MAX);
      inspect(sides[k], msg1, n);
      assert_int_equal(give(sides[k]->peer, msg1, n, 0), 0);
    }
  }
  expect_resumed();
  assert_true(S->resume_frames > 1 && C->resume_frames > 1);
  assert_int_equal(S->resume_entries, N);
  pump_all();
  expect_good_stream(ids[N - 1]);
  expect_no_rst();
}

/* Streams in one hash chain: a stream_closed callback run by the resume
 * (a stream the peer no longer has) resets the next stream of the chain,
 * or opens a new one. Client side, then server side. */
static void chain_setup(void) {
  /* 16 streams (ids 1..31) fill the initial table; keep 1, then 33 lands
   * in the slot of 1 without the table growing. */
  uint32_t ids[16];
  establish(ids, 16);
  for (int i = 1; i < 16; i++) {
    session_stream_reset(C->rec[ids[i]].st, FRAME_CODE_RESET, "x");
    C->rec[ids[i]].st = NULL;
  }
  assert_int_equal(open_stream(C), 33);
  pump_all();
  assert_int_equal(session_stream_count(C->s), 2);
  assert_int_equal(session_stream_count(S->s), 2);
  assert_non_null(S->rec[1].st);
  assert_non_null(S->rec[33].st);
}

static void test_resume_close_callback_client(void **state) {
  chain_setup();
  lose(LOSE_S);
  session_stream_reset(S->rec[33].st, FRAME_CODE_RESET, "z");
  S->rec[33].st = NULL;
  pump_all();
  reconnect();
  C->reset_other_on_close = 1; /* 33 ends: the callback resets 1 */
  pump_all();
  expect_resumed();
  expect_closed(C, 33, FRAME_CODE_RESET, NULL);
  expect_closed(S, 1, FRAME_CODE_INTERNAL, "cascade");
  assert_int_equal(session_stream_count(C->s), 0);
  assert_int_equal(session_stream_count(S->s), 0);
  expect_healthy();
}

static void test_resume_close_callback_server(void **state) {
  chain_setup();
  lose(LOSE_C);
  session_stream_reset(C->rec[33].st, FRAME_CODE_RESET, "z");
  C->rec[33].st = NULL;
  pump_all();
  reconnect();
  S->reset_other_on_close = 1;
  pump_all();
  expect_resumed();
  expect_closed(S, 33, FRAME_CODE_RESET, NULL);
  expect_closed(C, 1, FRAME_CODE_INTERNAL, "cascade");
  assert_int_equal(session_stream_count(C->s), 0);
  assert_int_equal(session_stream_count(S->s), 0);
  expect_healthy();
}

/* The same for session_restart (the edge lost the session): a callback
 * that resets the next stream of the chain, or opens a new one. */
static void test_restart_close_callback(void **state) {
  chain_setup();
  link_drop();
  C->reset_other_on_close = 1; /* 33 ends first: the callback resets 1 */
  session_restart(C->s, FRAME_CODE_SHUTDOWN, "session expired");
  assert_int_equal(C->closes_total, 1);
  expect_closed(C, 33, FRAME_CODE_SHUTDOWN, "session expired");
  assert_null(C->rec[1].st);
  assert_int_equal(session_stream_count(C->s), 0);

  pair_init(SESSION_WINDOW_MIN, SESSION_WINDOW_MIN, 64);
  chain_setup();
  link_drop();
  C->reopen_budget = 2; /* each end opens one, not opened: it stays */
  session_restart(C->s, FRAME_CODE_SHUTDOWN, "session expired");
  assert_int_equal(C->closes_total, 2);
  assert_int_equal(session_stream_count(C->s), 2);
  session_link_up(C->s, 0, NULL);
  C->resuming = 0;
  assert_true(take_msg(C, msg1) > 0);
  assert_int_equal(sent_count(C, FRAME_OPEN, 35), 1);
  assert_int_equal(sent_count(C, FRAME_OPEN, 37), 1);
}

/* A client that opens replacements from stream_closed during the resume:
 * their OPENs go out once, in order, after the re-sent ones. */
static void test_resume_reopen_in_callback(void **state) {
  chain_setup();
  lose(LOSE_BOTH);
  uint32_t lost_open = open_stream(C); /* 35, OPEN lost */
  session_stream_reset(S->rec[33].st, FRAME_CODE_RESET, "z");
  S->rec[33].st = NULL;
  pump_all();
  reconnect();
  C->reopen_budget = 3; /* 33 ends: open 37 */
  pump_all();
  expect_resumed();
  expect_closed(C, 33, FRAME_CODE_RESET, NULL);
  assert_int_equal(C->reopen_budget, 2);
  uint32_t ids[3] = {1, lost_open, lost_open + 2};
  for (int i = 0; i < 3; i++) {
    assert_non_null(C->rec[ids[i]].st);
    assert_int_equal(C->rec[ids[i]].open_ok, 1);
    expect_good_stream(ids[i]);
  }
  assert_int_equal(sent_count(C, FRAME_OPEN, lost_open), 1);
  assert_int_equal(sent_count(C, FRAME_OPEN, lost_open + 2), 1);
  expect_healthy();
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
      T(test_window_grows_when_window_bound),
      T(test_window_no_growth_for_slow_reader),
      T(test_window_grow_invalid),
      T(test_window_no_growth_while_behind),
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
      T(test_resume_bulk),
      T(test_resume_window_lost),
      T(test_resume_fin_lost),
      T(test_fin_acknowledged),
      T(test_resume_last_fin_lost),
      T(test_resume_last_fin_lost_server),
      T(test_resume_crossing_fin_lost),
      T(test_resume_last_fin_lost_twice),
      T(test_resume_fin_ack_lost),
      T(test_kept_bounds),
      T(test_kept_dropped_on_restart),
      T(test_resume_kept_bad_counts),
      T(test_resume_goaway_lost),
      T(test_resume_open_lost),
      T(test_resume_open_many_in_outage),
      T(test_resume_open_while_awaiting),
      T(test_resume_open_ok_lost),
      T(test_resume_rst_lost),
      T(test_resume_stream_only_one_side),
      T(test_resume_repeated_drops),
      T(test_resume_bad_counts_server),
      T(test_resume_bad_counts_client),
      T(test_hello_twice),
      T(test_resume_stream_zero),
      T(test_resume_duplicate_entry),
      T(test_resume_unknown_id),
      T(test_resume_unexpected),
      T(test_resume_many_streams),
      T(test_resume_small_messages),
      T(test_resume_close_callback_client),
      T(test_resume_close_callback_server),
      T(test_resume_reopen_in_callback),
      T(test_restart_close_callback),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
