#include "ws/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws/frame.h"
#include "ws/sched.h"

#define ERR_MAX 160
#define TABLE_MIN 16

struct session_stream {
  session_t *s;
  uint32_t id;
  void *user;
  sched_node_t node; /* in s->ready while it has something to send */
  session_stream_t *hnext;
  unsigned opened : 1;    /* OPEN_OK exchanged */
  unsigned local_fin : 1; /* the application finished sending */
  unsigned fin_sent : 1;
  unsigned fin_recv : 1;
  unsigned send_full : 1; /* told the application to stop reading */
  int64_t send_credit;    /* bytes we may still send */
  uint32_t recv_credit;   /* bytes the peer may still send */
  uint32_t recv_unacked;  /* written to TCP, not yet granted back */
  buf_queue_t sendq;
};

struct session {
  session_config_t cfg;
  const session_callbacks_t *cb;
  void *ctx;
  frame_reader_t reader;
  buf_queue_t ctrlq; /* encoded control frames, one per chunk */
  sched_t ready;
  session_stream_t **table; /* open streams by id, chained */
  size_t table_size;        /* power of two */
  size_t nstreams;
  uint32_t next_id;      /* client: next id to open */
  uint32_t last_peer_id; /* server: highest id the peer opened */
  int goaway_sent;
  int goaway_recv;
  int aborted; /* session_abort ran: no new streams */
  int failed;
  char error[ERR_MAX];
};

/* --- stream table ------------------------------------------------------ */

static size_t table_slot(const session_t *s, uint32_t id) {
  /* Ids share their parity (odd from the client): drop that bit first. */
  return ((id >> 1) * 2654435761u) & (s->table_size - 1);
}

static session_stream_t *table_find(const session_t *s, uint32_t id) {
  session_stream_t *st = s->table[table_slot(s, id)];
  while (st != NULL && st->id != id)
    st = st->hnext;
  return st;
}

static int table_grow(session_t *s) {
  size_t old = s->table_size;
  session_stream_t **t = s->table;
  session_stream_t **nt = calloc(old * 2, sizeof(*nt));
  if (nt == NULL)
    return -1;
  s->table = nt;
  s->table_size = old * 2;
  for (size_t i = 0; i < old; i++) {
    while (t[i] != NULL) {
      session_stream_t *st = t[i];
      t[i] = st->hnext;
      size_t k = table_slot(s, st->id);
      st->hnext = nt[k];
      nt[k] = st;
    }
  }
  free(t);
  return 0;
}

static int table_insert(session_t *s, session_stream_t *st) {
  if (s->nstreams >= s->table_size && table_grow(s) != 0)
    return -1;
  size_t k = table_slot(s, st->id);
  st->hnext = s->table[k];
  s->table[k] = st;
  s->nstreams++;
  return 0;
}

static void table_remove(session_t *s, session_stream_t *st) {
  session_stream_t **pp = &s->table[table_slot(s, st->id)];
  while (*pp != st)
    pp = &(*pp)->hnext;
  *pp = st->hnext;
  s->nstreams--;
}

/* --- lifecycle --------------------------------------------------------- */

session_t *session_new(const session_config_t *cfg,
                       const session_callbacks_t *cb, void *ctx) {
  session_t *s = calloc(1, sizeof(*s));
  if (s == NULL)
    return NULL;
  s->table = calloc(TABLE_MIN, sizeof(*s->table));
  if (s->table == NULL) {
    free(s);
    return NULL;
  }
  s->table_size = TABLE_MIN;
  s->cfg = *cfg;
  s->cb = cb;
  s->ctx = ctx;
  s->next_id = 1;
  frame_reader_init(&s->reader);
  buf_queue_init(&s->ctrlq);
  sched_init(&s->ready);
  return s;
}

static void stream_free(session_stream_t *st) {
  session_t *s = st->s;
  sched_remove(&st->node);
  table_remove(s, st);
  buf_queue_free(&st->sendq);
  free(st);
}

/* The protocol ended st: tell the application, then forget it. */
static void stream_end(session_stream_t *st, uint16_t code, const char *reason,
                       size_t reason_len) {
  session_t *s = st->s;
  sched_remove(&st->node);
  table_remove(s, st);
  /* Unlinked first, so a callback that looks st up finds nothing. */
  s->cb->stream_closed(s->ctx, st, code, reason, reason_len);
  buf_queue_free(&st->sendq);
  free(st);
}

static void drop_all(session_t *s, int notify, uint16_t code,
                     const char *reason) {
  for (size_t i = 0; i < s->table_size; i++) {
    while (s->table[i] != NULL) {
      session_stream_t *st = s->table[i];
      if (notify)
        stream_end(st, code, reason, reason ? strlen(reason) : 0);
      else
        stream_free(st);
    }
  }
}

void session_abort(session_t *s, uint16_t code, const char *reason) {
  /* First, so a stream_closed callback cannot open a stream that the scan
   * below has already passed (it would survive the abort). */
  s->aborted = 1;
  drop_all(s, 1, code, reason);
}

void session_free(session_t *s) {
  if (s == NULL)
    return;
  drop_all(s, 0, 0, NULL);
  free(s->table);
  frame_reader_free(&s->reader);
  buf_queue_free(&s->ctrlq);
  free(s);
}

const char *session_error(const session_t *s) {
  return s->error;
}

static int fail(session_t *s, const char *fmt, uint32_t a, uint32_t b) {
  s->failed = 1;
  snprintf(s->error, sizeof(s->error), fmt, a, b);
  return 1; /* stops frame_reader_feed */
}

/* --- output ------------------------------------------------------------ */

static void want_write(session_t *s) {
  s->cb->want_write(s->ctx);
}

static void queue_control(session_t *s, const frame_t *f) {
  uint8_t tmp[FRAME_CONTROL_MAX];
  size_t n = frame_encode(tmp, sizeof(tmp), f);
  buf_chunk_t *c = n ? buf_chunk_copy(tmp, n) : NULL;
  if (c == NULL) {
    s->failed = 1;
    snprintf(s->error, sizeof(s->error), "out of memory");
    return;
  }
  buf_queue_push(&s->ctrlq, c);
  want_write(s);
}

static void queue_coded(session_t *s, uint8_t type, uint32_t id, uint16_t code,
                        const char *reason) {
  frame_t f = {.type = type, .stream_id = id, .code = code};
  f.reason = reason;
  f.reason_len = reason ? strlen(reason) : 0;
  queue_control(s, &f);
}

static void queue_window(session_t *s, uint8_t type, uint32_t id,
                         uint32_t window) {
  frame_t f = {.type = type, .stream_id = id, .window = window};
  queue_control(s, &f);
}

static int stream_sendable(const session_stream_t *st) {
  if (!st->opened || st->fin_sent)
    return 0;
  if (st->sendq.bytes > 0)
    return st->send_credit > 0;
  return st->local_fin;
}

static void stream_update_sched(session_stream_t *st) {
  if (stream_sendable(st)) {
    if (!st->node.queued) {
      sched_push(&st->s->ready, &st->node);
      want_write(st->s);
    }
  } else {
    sched_remove(&st->node);
  }
}

int session_want_write(const session_t *s) {
  return s->ctrlq.head != NULL || !sched_empty(&s->ready);
}

static size_t put_control(session_t *s, uint8_t *out, size_t cap) {
  size_t used = 0;
  while (s->ctrlq.head != NULL) {
    buf_chunk_t *c = s->ctrlq.head;
    size_t n = c->len - c->off;
    if (used + n > cap)
      break;
    used += buf_queue_take(&s->ctrlq, out + used, n);
  }
  return used;
}

/* Put one turn of st (DATA and/or FIN) at out; returns bytes written. */
static size_t put_stream_turn(session_stream_t *st, uint8_t *out, size_t room) {
  size_t used = 0;
  size_t n = st->sendq.bytes;
  if (n > 0 && st->send_credit > 0 && room > FRAME_HEADER_LEN) {
    if (n > (size_t)st->send_credit)
      n = (size_t)st->send_credit;
    if (n > SESSION_QUANTUM)
      n = SESSION_QUANTUM;
    if (n > room - FRAME_HEADER_LEN)
      n = room - FRAME_HEADER_LEN;
    used = frame_encode_header(out, FRAME_DATA, st->id, (uint32_t)n);
    used += buf_queue_take(&st->sendq, out + used, n);
    st->send_credit -= (int64_t)n;
  }
  if (st->local_fin && st->sendq.bytes == 0 &&
      room - used >= FRAME_HEADER_LEN) {
    used += frame_encode_header(out + used, FRAME_FIN, st->id, 0);
    st->fin_sent = 1;
  }
  return used;
}

static void after_turn(session_stream_t *st) {
  session_t *s = st->s;
  if (st->fin_sent && st->fin_recv) {
    stream_end(st, FRAME_CODE_NO_ERROR, NULL, 0);
    return;
  }
  if (stream_sendable(st))
    sched_push(&s->ready, &st->node);
  if (st->send_full && st->sendq.bytes < SESSION_SENDQ_MAX) {
    st->send_full = 0;
    s->cb->stream_drained(s->ctx, st);
  }
}

size_t session_build_message(session_t *s, uint8_t *out, size_t cap) {
  if (cap > SESSION_MSG_MAX)
    cap = SESSION_MSG_MAX;
  size_t used = put_control(s, out, cap);
  if (s->ctrlq.head != NULL)
    return used; /* control frames first, DATA next time */
  while (cap - used > FRAME_HEADER_LEN) {
    sched_node_t *n = sched_pop(&s->ready);
    if (n == NULL)
      break;
    session_stream_t *st =
        (session_stream_t *)((char *)n - offsetof(session_stream_t, node));
    used += put_stream_turn(st, out + used, cap - used);
    after_turn(st);
  }
  return used;
}

/* --- stream API -------------------------------------------------------- */

static session_stream_t *stream_new(session_t *s, uint32_t id, void *user) {
  session_stream_t *st = calloc(1, sizeof(*st));
  if (st == NULL)
    return NULL;
  st->s = s;
  st->id = id;
  st->user = user;
  st->recv_credit = s->cfg.window;
  buf_queue_init(&st->sendq);
  if (table_insert(s, st) != 0) {
    free(st);
    return NULL;
  }
  return st;
}

session_stream_t *session_stream_open(session_t *s, void *user) {
  if (s->cfg.role != SESSION_ROLE_CLIENT || s->goaway_recv || s->aborted ||
      s->failed || s->next_id > 0x7ffffffdu)
    return NULL;
  session_stream_t *st = stream_new(s, s->next_id, user);
  if (st == NULL)
    return NULL;
  s->next_id += 2;
  queue_window(s, FRAME_OPEN, st->id, s->cfg.window);
  return st;
}

void session_stream_accept(session_stream_t *st) {
  st->opened = 1;
  queue_window(st->s, FRAME_OPEN_OK, st->id, st->s->cfg.window);
  stream_update_sched(st);
}

void session_stream_refuse(session_stream_t *st, uint16_t code,
                           const char *reason) {
  queue_coded(st->s, FRAME_OPEN_FAIL, st->id, code, reason);
  stream_free(st);
}

int session_stream_write(session_stream_t *st, buf_chunk_t *chunk) {
  if (st->local_fin || chunk->len == chunk->off) {
    free(chunk); /* nothing to send, or the application broke its side */
  } else {
    buf_queue_push(&st->sendq, chunk);
    stream_update_sched(st);
  }
  if (st->sendq.bytes >= SESSION_SENDQ_MAX)
    st->send_full = 1;
  return st->send_full;
}

void session_stream_fin(session_stream_t *st) {
  st->local_fin = 1;
  stream_update_sched(st);
}

void session_stream_reset(session_stream_t *st, uint16_t code,
                          const char *reason) {
  queue_coded(st->s, FRAME_RST, st->id, code, reason);
  stream_free(st);
}

void session_stream_consumed(session_stream_t *st, size_t n) {
  if (st->fin_recv)
    return; /* the peer sends nothing more: no credit to give */
  st->recv_unacked += (uint32_t)n;
  if (st->recv_unacked >= st->s->cfg.window / 4) {
    st->recv_credit += st->recv_unacked;
    queue_window(st->s, FRAME_WINDOW, st->id, st->recv_unacked);
    st->recv_unacked = 0;
  }
}

uint32_t session_stream_id(const session_stream_t *st) {
  return st->id;
}

void *session_stream_user(const session_stream_t *st) {
  return st->user;
}

void session_stream_set_user(session_stream_t *st, void *user) {
  st->user = user;
}

size_t session_stream_queued(const session_stream_t *st) {
  return st->sendq.bytes;
}

size_t session_stream_count(const session_t *s) {
  return s->nstreams;
}

void session_goaway(session_t *s, uint16_t code, const char *reason) {
  frame_t f = {.type = FRAME_GOAWAY, .code = code};
  f.last_stream_id = s->cfg.role == SESSION_ROLE_SERVER ? s->last_peer_id : 0;
  f.reason = reason;
  f.reason_len = reason ? strlen(reason) : 0;
  s->goaway_sent = 1;
  queue_control(s, &f);
}

void session_ping(session_t *s, const uint8_t payload[8]) {
  frame_t f = {.type = FRAME_PING, .ping = payload};
  queue_control(s, &f);
}

/* --- input ------------------------------------------------------------- */

/* Whether id names a stream that existed once (so late frames are benign). */
static int id_was_used(const session_t *s, uint32_t id) {
  if ((id & 1) == 0)
    return 0;
  if (s->cfg.role == SESSION_ROLE_CLIENT)
    return id < s->next_id;
  return id <= s->last_peer_id;
}

/* Stream-level error: RST the peer, tell the application. */
static void stream_fail(session_stream_t *st, uint16_t code,
                        const char *reason) {
  queue_coded(st->s, FRAME_RST, st->id, code, reason);
  stream_end(st, code, reason, strlen(reason));
}

static void on_open(session_t *s, const frame_t *f) {
  session_stream_t *st;
  if (s->goaway_sent) {
    queue_coded(s, FRAME_OPEN_FAIL, f->stream_id, FRAME_CODE_SHUTDOWN,
                "edge is shutting down");
  } else if (s->nstreams >= s->cfg.max_streams) {
    queue_coded(s, FRAME_OPEN_FAIL, f->stream_id, FRAME_CODE_LIMIT,
                "too many streams on this connection");
  } else if (f->window == 0 || f->window > SESSION_CREDIT_MAX) {
    queue_coded(s, FRAME_OPEN_FAIL, f->stream_id, FRAME_CODE_FLOW_CONTROL,
                "invalid initial window");
  } else if ((st = stream_new(s, f->stream_id, NULL)) == NULL) {
    queue_coded(s, FRAME_OPEN_FAIL, f->stream_id, FRAME_CODE_INTERNAL,
                "out of memory");
  } else {
    st->send_credit = f->window;
    s->cb->stream_incoming(s->ctx, st);
  }
}

static void on_open_ok(session_stream_t *st, const frame_t *f) {
  session_t *s = st->s;
  if (st->opened) {
    stream_fail(st, FRAME_CODE_PROTOCOL, "duplicate OPEN_OK");
  } else if (f->window == 0 || f->window > SESSION_CREDIT_MAX) {
    stream_fail(st, FRAME_CODE_FLOW_CONTROL, "invalid initial window");
  } else {
    st->opened = 1;
    st->send_credit = f->window;
    stream_update_sched(st);
    s->cb->stream_open_ok(s->ctx, st);
  }
}

static void on_data(session_stream_t *st, const frame_t *f) {
  session_t *s = st->s;
  if (!st->opened)
    stream_fail(st, FRAME_CODE_PROTOCOL, "DATA before OPEN_OK");
  else if (st->fin_recv)
    stream_fail(st, FRAME_CODE_STREAM_CLOSED, "DATA after FIN");
  else if (f->length > st->recv_credit)
    stream_fail(st, FRAME_CODE_FLOW_CONTROL, "DATA beyond the window");
  else {
    st->recv_credit -= f->length;
    s->cb->stream_data(s->ctx, st, f->payload, f->length);
  }
}

static void on_window(session_stream_t *st, const frame_t *f) {
  if (f->window == 0 ||
      st->send_credit + (int64_t)f->window > (int64_t)SESSION_CREDIT_MAX) {
    stream_fail(st, FRAME_CODE_FLOW_CONTROL, "invalid WINDOW increment");
    return;
  }
  st->send_credit += f->window;
  stream_update_sched(st);
}

static void on_fin(session_stream_t *st) {
  session_t *s = st->s;
  if (st->fin_recv || !st->opened) {
    stream_fail(st, FRAME_CODE_STREAM_CLOSED, "unexpected FIN");
    return;
  }
  st->fin_recv = 1;
  if (st->fin_sent)
    stream_end(st, FRAME_CODE_NO_ERROR, NULL, 0);
  else
    s->cb->stream_fin(s->ctx, st);
}

static int on_stream_frame(session_t *s, const frame_t *f) {
  session_stream_t *st = table_find(s, f->stream_id);
  if (st == NULL) {
    if (f->type != FRAME_RST && !id_was_used(s, f->stream_id))
      queue_coded(s, FRAME_RST, f->stream_id, FRAME_CODE_UNKNOWN_STREAM,
                  "unknown stream");
    return 0;
  }
  switch (f->type) {
  case FRAME_OPEN_OK:
    on_open_ok(st, f);
    break;
  case FRAME_OPEN_FAIL:
  case FRAME_RST:
    stream_end(st, f->code, f->reason, f->reason_len);
    break;
  case FRAME_DATA:
    on_data(st, f);
    break;
  case FRAME_WINDOW:
    on_window(st, f);
    break;
  case FRAME_FIN:
    on_fin(st);
    break;
  }
  return 0;
}

static int on_frame(void *ctx, const frame_t *f) {
  session_t *s = ctx;
  int server = s->cfg.role == SESSION_ROLE_SERVER;
  switch (f->type) {
  case FRAME_OPEN:
    if (!server)
      return fail(s, "OPEN from the edge (stream %u)", f->stream_id, 0);
    if ((f->stream_id & 1) == 0 || f->stream_id <= s->last_peer_id)
      return fail(s, "OPEN with stream id %u not above %u", f->stream_id,
                  s->last_peer_id);
    s->last_peer_id = f->stream_id;
    on_open(s, f);
    break;
  case FRAME_OPEN_OK:
  case FRAME_OPEN_FAIL:
    if (server)
      return fail(s, "OPEN_OK/OPEN_FAIL from the client (stream %u)",
                  f->stream_id, 0);
    on_stream_frame(s, f);
    break;
  case FRAME_PING: {
    frame_t pong = {.type = FRAME_PONG, .ping = f->ping};
    queue_control(s, &pong);
    break;
  }
  case FRAME_PONG:
    if (s->cb->pong)
      s->cb->pong(s->ctx, f->ping);
    break;
  case FRAME_GOAWAY:
    s->goaway_recv = 1;
    if (s->cb->goaway)
      s->cb->goaway(s->ctx, f->last_stream_id, f->code, f->reason,
                    f->reason_len);
    break;
  default:
    on_stream_frame(s, f);
  }
  if (s->ctrlq.bytes > SESSION_CTRLQ_MAX)
    return fail(s, "peer does not read (%u bytes of control frames queued)",
                (uint32_t)s->ctrlq.bytes, 0);
  return s->failed ? 1 : 0;
}

int session_feed(session_t *s, const uint8_t *data, size_t len,
                 int end_of_message) {
  if (s->failed)
    return -1;
  int rc =
      frame_reader_feed(&s->reader, data, len, end_of_message, on_frame, s);
  if (rc < 0) {
    s->failed = 1;
    snprintf(s->error, sizeof(s->error), "%s", frame_strerror(rc));
  }
  return s->failed ? -1 : 0;
}
