#include "ws/session.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws/frame.h"
#include "ws/sched.h"

#define ERR_MAX 160
#define TABLE_MIN 16
/* Entries per RESUME frame: like every control frame it fits
 * FRAME_CONTROL_MAX, so that any message capacity session_build_message
 * accepts can carry it (a frame never spans two messages). */
#define RESUME_ENTRIES_PER_FRAME                                               \
  ((FRAME_CONTROL_MAX - FRAME_HEADER_LEN - FRAME_RESUME_FIXED) /               \
   FRAME_RESUME_ENTRY_LEN)
_Static_assert(RESUME_ENTRIES_PER_FRAME <= FRAME_RESUME_MAX_ENTRIES &&
                   RESUME_ENTRIES_PER_FRAME > 0,
               "a RESUME frame fits FRAME_CONTROL_MAX");

struct session_stream {
  session_t *s;
  uint32_t id;
  void *user;
  sched_node_t node;       /* in s->ready while it has something to send */
  session_stream_t *hnext; /* next in its table chain, or in s->kept */
  unsigned opened : 1;     /* OPEN_OK exchanged */
  unsigned local_fin : 1;  /* the application finished sending */
  unsigned fin_sent : 1;
  unsigned fin_recv : 1;
  unsigned send_full : 1; /* told the application to stop reading */
  unsigned kept : 1;      /* ended in order, kept for the peer (s->kept) */
  int64_t send_credit;    /* peer_window + acked_total - sent_total */
  uint32_t peer_window;   /* the peer's initial window for this stream */
  uint32_t window;        /* our receive window: cfg.window, grown */
  uint32_t recv_credit;   /* bytes the peer may still send */
  uint32_t recv_unacked;  /* written to TCP, not yet granted back */
  /* Bytes from the first one the peer has not acknowledged (by granting
   * credit for it) to the last one queued: the part before the cursor was
   * sent and is kept for a resume, the part after it is unsent. */
  buf_queue_t sendq;
  buf_chunk_t *cur;       /* chunk of the next unsent byte, NULL: none queued */
  size_t cur_off;         /* its offset in cur->data */
  size_t unsent;          /* bytes at and after the cursor */
  uint64_t sent_total;    /* DATA bytes sent */
  uint64_t acked_total;   /* of those, acknowledged (front of sendq) */
  uint64_t recv_total;    /* DATA bytes received */
  uint64_t granted_total; /* credit granted back with WINDOW */
};

struct session {
  session_config_t cfg;
  const session_callbacks_t *cb;
  void *ctx;
  frame_reader_t reader;
  buf_queue_t ctrlq;   /* encoded control frames, one per chunk */
  buf_queue_t resumeq; /* HELLO and RESUME: sent before anything else */
  int link_up;         /* a WebSocket carries the session */
  int awaiting_resume; /* our RESUME is out; hold the rest for the peer's */
  int hello_recv;      /* client: the edge's HELLO came on this link */
  frame_resume_entry_t *peer_entries; /* the peer's RESUME, gathering */
  size_t npeer_entries;
  uint32_t peer_last_id; /* from the peer's RESUME */
  sched_t ready;
  session_stream_t **table; /* open streams by id, chained */
  size_t table_size;        /* power of two */
  size_t nstreams;
  /* Streams that ended in order and may still owe the peer their last
   * bytes or FIN (docs/PROTOCOL.md section 8), oldest first, chained by
   * hnext; kept_bytes is what their send queues hold. */
  session_stream_t *kept;
  session_stream_t *kept_last;
  size_t nkept;
  size_t kept_bytes;
  buf_chunk_t *goaway; /* our GOAWAY, encoded: sent again on each link */
  uint64_t grown;      /* sum of the streams' window growth */

  uint32_t next_id;      /* client: next id to open */
  uint32_t last_peer_id; /* server: highest id the peer opened */
  int goaway_sent;
  int goaway_recv;
  int aborted; /* session_abort ran: no new streams */
  int failed;
  char error[ERR_MAX];
};

/* --- invariants -------------------------------------------------------- */

/* What must hold for every stream between calls into the session; the
 * unit tests and fuzz_session run with assertions on, so a bookkeeping
 * slip stops there instead of corrupting a transfer. */
static void stream_check(const session_stream_t *st) {
  const session_t *s = st->s;
  (void)s;
  assert(st->acked_total <= st->sent_total);
  /* sendq holds the unacknowledged sent bytes, then the unsent ones. */
  assert(st->sendq.bytes == (st->sent_total - st->acked_total) + st->unsent);
  assert((st->cur == NULL) == (st->unsent == 0));
  assert(st->send_credit == (int64_t)st->peer_window -
                                (int64_t)(st->sent_total - st->acked_total));
  assert(st->window >= s->cfg.window);
  assert(st->granted_total + st->recv_unacked <= st->recv_total);
  assert((uint64_t)st->recv_credit + (st->recv_total - st->granted_total) ==
         st->window);
  assert(!st->fin_sent || st->local_fin);
  /* A kept stream had both FINs; at most it sends its own again. */
  assert(!st->kept || (st->fin_recv && st->local_fin && !st->send_full));
}

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
  while (*pp != st) {
    assert(*pp != NULL); /* st is in the table */
    pp = &(*pp)->hnext;
  }
  *pp = st->hnext;
  assert(s->nstreams > 0);
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
  buf_queue_init(&s->resumeq);
  s->link_up = 1; /* until the application says otherwise */
  sched_init(&s->ready);
  return s;
}

/* Take st out of the table and the run queue (it is ending). */
static void stream_unlink(session_stream_t *st) {
  session_t *s = st->s;
  assert(s->grown >= st->window - s->cfg.window);
  s->grown -= st->window - s->cfg.window;
  sched_remove(&st->node);
  table_remove(s, st);
}

static void stream_release(session_stream_t *st) {
  buf_queue_free(&st->sendq);
  free(st);
}

static void stream_free(session_stream_t *st) {
  stream_unlink(st);
  stream_release(st);
}

/* The protocol ended st: tell the application, then forget it. */
static void stream_end(session_stream_t *st, uint16_t code, const char *reason,
                       size_t reason_len) {
  session_t *s = st->s;
  /* Unlinked first, so a callback that looks st up finds nothing. */
  stream_unlink(st);
  s->cb->stream_closed(s->ctx, st, code, reason, reason_len);
  stream_release(st);
}

/* --- streams that ended in order (docs/PROTOCOL.md section 8) ----------- */

/* Streams the application saw end in order are kept (s->kept) while the
 * peer may still lack our last bytes or FIN: the link can drop with them
 * in flight, and the peer, still waiting, lists the stream in its RESUME.
 * Then they are sent again, as for an open stream. The peer's FIN on the
 * ended stream (its acknowledgement), or a resume in which the peer does
 * not wait for them, releases a kept stream; so do the bounds below, the
 * oldest first (a peer that never acknowledges costs at most that). */

static session_stream_t *kept_find(const session_t *s, uint32_t id) {
  session_stream_t *st = s->kept;
  while (st != NULL && st->id != id)
    st = st->hnext;
  return st;
}

static void kept_free(session_stream_t *st) {
  session_t *s = st->s;
  session_stream_t **pp = &s->kept, *prev = NULL;
  while (*pp != st) {
    assert(*pp != NULL); /* st is kept */
    prev = *pp;
    pp = &prev->hnext;
  }
  *pp = st->hnext;
  if (s->kept_last == st)
    s->kept_last = prev;
  assert(s->nkept > 0 && s->kept_bytes >= st->sendq.bytes);
  s->nkept--;
  s->kept_bytes -= st->sendq.bytes;
  sched_remove(&st->node);
  stream_release(st);
}

static void kept_free_all(session_t *s) {
  while (s->kept != NULL)
    kept_free(s->kept);
  assert(s->nkept == 0 && s->kept_bytes == 0);
}

/* st ended in order and is out of the table: keep it, within the bounds. */
static void kept_add(session_stream_t *st) {
  session_t *s = st->s;
  size_t n = st->sendq.bytes;
  if (s->aborted || n > SESSION_KEPT_BYTES) {
    stream_release(st);
    return;
  }
  while (s->kept != NULL && (s->nkept >= SESSION_KEPT_MAX ||
                             s->kept_bytes + n > SESSION_KEPT_BYTES))
    kept_free(s->kept);
  st->kept = 1;
  st->user = NULL;
  st->hnext = NULL;
  if (s->kept_last != NULL)
    s->kept_last->hnext = st;
  else
    s->kept = st;
  s->kept_last = st;
  s->nkept++;
  s->kept_bytes += n;
}

static void drop_all(session_t *s, int notify, uint16_t code,
                     const char *reason) {
  kept_free_all(s);
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
  buf_queue_free(&s->resumeq);
  free(s->peer_entries);
  free(s->goaway);
  free(s);
}

const char *session_error(const session_t *s) {
  return s->error;
}

int session_failed(const session_t *s) {
  return s->failed;
}

static int fail(session_t *s, const char *fmt, uint32_t a, uint32_t b) {
  s->failed = 1;
  snprintf(s->error, sizeof(s->error), fmt, a, b);
  return 1; /* stops frame_reader_feed */
}

/* --- output ------------------------------------------------------------ */

static void want_write(session_t *s) {
  if (s->link_up)
    s->cb->want_write(s->ctx);
}

/* Both sides know where they stand: OPEN and OPEN_OK may be queued. Until
 * then (link down, RESUME exchange) they are queued by the resume, once,
 * OPENs in id order. */
static int link_synced(const session_t *s) {
  return s->link_up && !s->awaiting_resume;
}

/* A copy of the encoded control frame(s) p[0..n) on the control queue. */
static void queue_control_bytes(session_t *s, const uint8_t *p, size_t n) {
  buf_chunk_t *c = buf_chunk_copy(p, n);
  if (c == NULL) {
    s->failed = 1;
    snprintf(s->error, sizeof(s->error), "out of memory");
    return;
  }
  buf_queue_push(&s->ctrlq, c);
  want_write(s);
}

static void queue_control(session_t *s, const frame_t *f) {
  uint8_t tmp[FRAME_CONTROL_MAX];
  size_t n = frame_encode(tmp, sizeof(tmp), f);
  assert(n > 0); /* every control frame fits FRAME_CONTROL_MAX */
  queue_control_bytes(s, tmp, n);
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
  if (st->unsent > 0)
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
  if (!s->link_up)
    return 0;
  if (s->resumeq.head != NULL || s->awaiting_resume)
    return s->resumeq.head != NULL;
  return s->ctrlq.head != NULL || !sched_empty(&s->ready);
}

static size_t put_control(buf_queue_t *q, uint8_t *out, size_t cap) {
  size_t used = 0;
  while (q->head != NULL) {
    buf_chunk_t *c = q->head;
    size_t n = c->len - c->off;
    if (used + n > cap)
      break;
    used += buf_queue_take(q, out + used, n);
  }
  return used;
}

/* Copy n unsent bytes from the cursor to out and move the cursor; the
 * bytes stay queued until acknowledged. */
static void stream_take(session_stream_t *st, uint8_t *out, size_t n) {
  assert(n <= st->unsent);
  while (n > 0) {
    assert(st->cur != NULL);
    size_t k = st->cur->len - st->cur_off;
    if (k > n)
      k = n;
    memcpy(out, st->cur->data + st->cur_off, k);
    out += k;
    n -= k;
    st->cur_off += k;
    st->unsent -= k;
    if (st->cur_off == st->cur->len) { /* never rest at a chunk's end */
      st->cur = st->cur->next;
      st->cur_off = st->cur ? st->cur->off : 0;
    }
  }
}

/* The peer acknowledged n more bytes: they need not be kept any more. The
 * cursor is past them, in a chunk that survives. */
static void stream_ack(session_stream_t *st, uint64_t n) {
  assert(n <= st->sent_total - st->acked_total); /* only sent bytes */
  buf_queue_drop(&st->sendq, (size_t)n);
  st->acked_total += n;
  st->send_credit += (int64_t)n;
}

/* Put the cursor back at absolute offset `to` (acked_total <= to <=
 * sent_total): what follows is sent again. */
static void stream_rewind(session_stream_t *st, uint64_t to) {
  assert(st->acked_total <= to && to <= st->sent_total);
  size_t skip = (size_t)(to - st->acked_total);
  buf_chunk_t *c = st->sendq.head;
  while (c != NULL && skip >= c->len - c->off) {
    skip -= c->len - c->off;
    c = c->next;
  }
  st->cur = c;
  st->cur_off = c ? c->off + skip : 0;
  st->unsent = st->sendq.bytes - (size_t)(to - st->acked_total);
  st->send_credit = (int64_t)st->peer_window - (int64_t)(to - st->acked_total);
  st->sent_total = to;
}

/* Put one turn of st (DATA and/or FIN) at out; returns bytes written. A
 * stream alone in the run queue is not held to the quantum: nobody waits,
 * and one big frame is one write on the far side instead of four. */
static size_t put_stream_turn(session_stream_t *st, uint8_t *out, size_t room,
                              int alone) {
  size_t used = 0;
  size_t n = st->unsent;
  if (n > 0 && st->send_credit > 0 && room > FRAME_HEADER_LEN) {
    if (n > (size_t)st->send_credit)
      n = (size_t)st->send_credit;
    if (n > SESSION_QUANTUM && !alone)
      n = SESSION_QUANTUM;
    if (n > room - FRAME_HEADER_LEN)
      n = room - FRAME_HEADER_LEN;
    used = frame_encode_header(out, FRAME_DATA, st->id, (uint32_t)n);
    stream_take(st, out + used, n);
    used += n;
    st->send_credit -= (int64_t)n;
    st->sent_total += n;
    assert(st->send_credit >= 0);
  }
  if (st->local_fin && st->unsent == 0 && room - used >= FRAME_HEADER_LEN) {
    used += frame_encode_header(out + used, FRAME_FIN, st->id, 0);
    st->fin_sent = 1;
  }
  assert(used <= room);
  stream_check(st);
  return used;
}

/* A FIN on a stream that ended here: we have everything, the peer's FIN
 * included (docs/PROTOCOL.md section 8). A peer that predates it ignores
 * it, as any frame for an ended stream. */
static void queue_fin_ack(session_t *s, uint32_t id) {
  frame_t f = {.type = FRAME_FIN, .stream_id = id};
  queue_control(s, &f);
}

/* Both directions of st finished in order: acknowledge the peer's FIN,
 * tell the application, and keep st until the peer confirms ours. */
static void stream_finish(session_stream_t *st) {
  session_t *s = st->s;
  stream_unlink(st);
  queue_fin_ack(s, st->id);
  s->cb->stream_closed(s->ctx, st, FRAME_CODE_NO_ERROR, NULL, 0);
  kept_add(st);
}

static void after_turn(session_stream_t *st) {
  session_t *s = st->s;
  if (st->fin_sent && st->fin_recv) {
    if (st->kept) /* our FIN sent again: so is the acknowledgement */
      queue_fin_ack(s, st->id);
    else
      stream_finish(st);
    return;
  }
  if (stream_sendable(st))
    sched_push(&s->ready, &st->node);
  if (st->send_full && st->unsent < SESSION_SENDQ_RESUME) {
    st->send_full = 0;
    s->cb->stream_drained(s->ctx, st);
  }
}

size_t session_build_message(session_t *s, uint8_t *out, size_t cap) {
  if (cap > SESSION_MSG_MAX)
    cap = SESSION_MSG_MAX;
  if (!s->link_up)
    return 0;
  size_t used = put_control(&s->resumeq, out, cap);
  if (s->resumeq.head != NULL || s->awaiting_resume)
    return used; /* nothing else until both sides agree where they are */
  used += put_control(&s->ctrlq, out + used, cap - used);
  if (s->ctrlq.head != NULL)
    return used; /* control frames first, DATA next time */
  while (cap - used > FRAME_HEADER_LEN) {
    sched_node_t *n = sched_pop(&s->ready);
    if (n == NULL)
      break;
    session_stream_t *st =
        (session_stream_t *)((char *)n - offsetof(session_stream_t, node));
    used += put_stream_turn(st, out + used, cap - used, sched_empty(&s->ready));
    after_turn(st);
  }
  assert(used <= cap);
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
  st->window = st->recv_credit = s->cfg.window;
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
  if (link_synced(s))
    queue_window(s, FRAME_OPEN, st->id, s->cfg.window);
  return st;
}

void session_stream_accept(session_stream_t *st) {
  st->opened = 1;
  if (link_synced(st->s))
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
    st->unsent += chunk->len - chunk->off;
    if (st->cur == NULL) {
      st->cur = chunk;
      st->cur_off = chunk->off;
    }
    stream_update_sched(st);
  }
  if (st->unsent >= SESSION_SENDQ_MAX)
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

/* The window, not this side, limits st: the peer has nearly no credit left
 * and yet little of what it sent waits here to be written. Double it. */
static void stream_maybe_grow(session_stream_t *st) {
  session_t *s = st->s;
  uint64_t held = st->recv_total - st->granted_total - st->recv_unacked;
  if (st->recv_credit >= st->window / 4 || held >= st->window / 4 ||
      (s->cb->input_backlog != NULL &&
       s->cb->input_backlog(s->ctx) >= SESSION_BACKLOG_MAX))
    return;
  uint64_t inc = st->window;
  if (inc > SESSION_WINDOW_GROW_MAX - st->window)
    inc = SESSION_WINDOW_GROW_MAX - st->window;
  if (inc > SESSION_GROW_BUDGET - s->grown)
    inc = SESSION_GROW_BUDGET - s->grown;
  if (st->window >= SESSION_WINDOW_GROW_MAX || inc == 0)
    return;
  st->window += (uint32_t)inc;
  st->recv_credit += (uint32_t)inc;
  s->grown += inc;
  assert(s->grown <= SESSION_GROW_BUDGET);
  frame_t f = {.type = FRAME_WINDOW,
               .flags = FRAME_WINDOW_GROW,
               .stream_id = st->id,
               .window = (uint32_t)inc};
  queue_control(s, &f);
}

/* Give back what st has written out, once a quarter of its window. */
static void stream_grant(session_stream_t *st) {
  session_t *s = st->s;
  if (st->fin_recv || st->recv_unacked < st->window / 4)
    return;
  stream_maybe_grow(st);
  st->recv_credit += st->recv_unacked;
  st->granted_total += st->recv_unacked;
  queue_window(s, FRAME_WINDOW, st->id, st->recv_unacked);
  st->recv_unacked = 0;
}

void session_stream_consumed(session_stream_t *st, size_t n) {
  if (st->fin_recv)
    return; /* the peer sends nothing more: no credit to give */
  /* Only bytes that were delivered can have been written out. */
  assert(n <= st->recv_total - st->granted_total - st->recv_unacked);
  st->recv_unacked += (uint32_t)n;
  stream_grant(st);
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
  return st->unsent;
}

size_t session_stream_count(const session_t *s) {
  return s->nstreams;
}

size_t session_kept_count(const session_t *s) {
  return s->nkept;
}

/* Queue our GOAWAY, if we sent one: also on each new link, as it may have
 * been lost with the old one; the peer takes a repeated one as the same
 * (docs/PROTOCOL.md section 8). */
static void queue_goaway(session_t *s) {
  if (s->goaway != NULL)
    queue_control_bytes(s, s->goaway->data + s->goaway->off,
                        s->goaway->len - s->goaway->off);
}

void session_goaway(session_t *s, uint16_t code, const char *reason) {
  frame_t f = {.type = FRAME_GOAWAY, .code = code};
  f.last_stream_id = s->cfg.role == SESSION_ROLE_SERVER ? s->last_peer_id : 0;
  f.reason = reason;
  f.reason_len = reason ? strlen(reason) : 0;
  uint8_t tmp[FRAME_CONTROL_MAX];
  size_t n = frame_encode(tmp, sizeof(tmp), &f);
  assert(n > 0); /* a control frame fits FRAME_CONTROL_MAX */
  s->goaway_sent = 1;
  free(s->goaway);
  s->goaway = buf_chunk_copy(tmp, n);
  if (s->goaway == NULL) {
    s->failed = 1;
    snprintf(s->error, sizeof(s->error), "out of memory");
    return;
  }
  queue_goaway(s);
}

void session_ping(session_t *s, const uint8_t payload[8]) {
  frame_t f = {.type = FRAME_PING, .ping = payload};
  queue_control(s, &f);
}

/* --- input ------------------------------------------------------------- */

/* Sent bytes are kept until acknowledged, up to the peer's window: a peer
 * announcing 2 GiB must not make us hold that much. Using less of the
 * window it offers is always allowed. */
static uint32_t usable_window(uint32_t announced) {
  return announced < SESSION_WINDOW_MAX ? announced : SESSION_WINDOW_MAX;
}

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

/* OPEN_FAIL for an OPEN no stream was made for. */
static void refuse_open(session_t *s, uint32_t id, uint16_t code,
                        const char *reason) {
  queue_coded(s, FRAME_OPEN_FAIL, id, code, reason);
  if (s->cb->stream_refused != NULL)
    s->cb->stream_refused(s->ctx, id, code);
}

static void on_open(session_t *s, const frame_t *f) {
  session_stream_t *st;
  if (s->goaway_sent) {
    refuse_open(s, f->stream_id, FRAME_CODE_SHUTDOWN, "edge is shutting down");
  } else if (s->nstreams >= s->cfg.max_streams) {
    refuse_open(s, f->stream_id, FRAME_CODE_LIMIT,
                "too many streams on this connection");
  } else if (f->window == 0 || f->window > SESSION_CREDIT_MAX) {
    refuse_open(s, f->stream_id, FRAME_CODE_FLOW_CONTROL,
                "invalid initial window");
  } else if ((st = stream_new(s, f->stream_id, NULL)) == NULL) {
    refuse_open(s, f->stream_id, FRAME_CODE_INTERNAL, "out of memory");
  } else {
    st->send_credit = st->peer_window = usable_window(f->window);
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
    st->send_credit = st->peer_window = usable_window(f->window);
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
    st->recv_total += f->length;
    stream_check(st);
    s->cb->stream_data(s->ctx, st, f->payload, f->length);
  }
}

static void on_window_grow(session_stream_t *st, const frame_t *f) {
  if (f->window == 0 ||
      (uint64_t)st->peer_window + f->window > SESSION_WINDOW_MAX) {
    stream_fail(st, FRAME_CODE_FLOW_CONTROL, "invalid WINDOW growth");
    return;
  }
  st->peer_window += f->window;
  st->send_credit += f->window;
  stream_update_sched(st);
}

static void on_window(session_stream_t *st, const frame_t *f) {
  if (f->flags & FRAME_WINDOW_GROW) {
    on_window_grow(st, f);
    return;
  }
  /* Credit comes back only for bytes the peer received and wrote out, so
   * an increment beyond the bytes in flight is a broken (or hostile) peer. */
  if (f->window == 0 ||
      st->send_credit + (int64_t)f->window > (int64_t)SESSION_CREDIT_MAX ||
      f->window > st->sent_total - st->acked_total) {
    stream_fail(st, FRAME_CODE_FLOW_CONTROL, "invalid WINDOW increment");
    return;
  }
  stream_ack(st, f->window);
  stream_check(st);
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
    stream_finish(st);
  else
    s->cb->stream_fin(s->ctx, st);
}

/* A frame for a stream that ended in order here: the peer's FIN on it
 * acknowledges ours, an RST says it is gone anyway; anything else is late
 * and ignored, as for any ended stream. */
static void on_kept_frame(session_stream_t *st, const frame_t *f) {
  if (f->type == FRAME_FIN || f->type == FRAME_RST ||
      f->type == FRAME_OPEN_FAIL)
    kept_free(st);
}

static int on_stream_frame(session_t *s, const frame_t *f) {
  session_stream_t *st = table_find(s, f->stream_id);
  if (st == NULL) {
    if ((st = kept_find(s, f->stream_id)) != NULL)
      on_kept_frame(st, f);
    else if (f->type != FRAME_RST && !id_was_used(s, f->stream_id))
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
    /* NO_ERROR tells the application that both directions ended in order;
     * an abort carrying it (nonsense from the peer) must not look like
     * that, so it reads as INTERNAL, like an unknown code. */
    stream_end(st,
               f->code == FRAME_CODE_NO_ERROR ? FRAME_CODE_INTERNAL : f->code,
               f->reason, f->reason_len);
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

/* --- resume ------------------------------------------------------------ */

static int entry_cmp(const void *a, const void *b) {
  uint32_t x = ((const frame_resume_entry_t *)a)->stream_id;
  uint32_t y = ((const frame_resume_entry_t *)b)->stream_id;
  return x < y ? -1 : x > y;
}

static const frame_resume_entry_t *find_entry(const session_t *s, uint32_t id) {
  if (s->npeer_entries == 0)
    return NULL;
  frame_resume_entry_t key = {.stream_id = id};
  return bsearch(&key, s->peer_entries, s->npeer_entries,
                 sizeof(*s->peer_entries), entry_cmp);
}

/* Queue our RESUME: where each open stream stands, and each kept one (an
 * ended stream: everything received, the peer's FIN included), in as many
 * frames as it takes. */
static void queue_resume(session_t *s) {
  size_t total = s->nstreams + s->nkept, done = 0;
  uint8_t *buf = malloc(FRAME_HEADER_LEN + FRAME_MAX_PAYLOAD);
  if (buf == NULL) {
    s->failed = 1;
    snprintf(s->error, sizeof(s->error), "out of memory");
    return;
  }
  size_t slot = 0;
  session_stream_t *st = NULL;
  do {
    uint8_t *e = buf + FRAME_HEADER_LEN + FRAME_RESUME_FIXED;
    uint32_t n = 0;
    while (n < RESUME_ENTRIES_PER_FRAME && done < total) {
      /* The table's chains, then the kept streams (chained by hnext too). */
      while (st == NULL) {
        assert(slot <= s->table_size);
        st = slot < s->table_size ? s->table[slot] : s->kept;
        slot++;
      }
      frame_resume_entry_t en = {
          .stream_id = st->id,
          .flags = (uint8_t)((st->opened ? FRAME_RESUME_OPENED : 0) |
                             (st->fin_recv ? FRAME_RESUME_FIN_RECEIVED : 0) |
                             (st->kept ? FRAME_RESUME_ENDED : 0)),
          .received = st->recv_total,
          .granted = st->granted_total};
      frame_resume_entry_encode(e + (size_t)n * FRAME_RESUME_ENTRY_LEN, &en);
      n++;
      done++;
      st = st->hnext;
    }
    frame_t f = {.type = FRAME_RESUME,
                 .more = done < total,
                 .last_stream_id =
                     s->cfg.role == SESSION_ROLE_SERVER ? s->last_peer_id : 0,
                 .count = n,
                 .entries = buf + FRAME_HEADER_LEN + FRAME_RESUME_FIXED};
    uint8_t *out = malloc(FRAME_HEADER_LEN + FRAME_MAX_PAYLOAD);
    size_t len =
        out ? frame_encode(out, FRAME_HEADER_LEN + FRAME_MAX_PAYLOAD, &f) : 0;
    buf_chunk_t *c = len ? buf_chunk_copy(out, len) : NULL;
    free(out);
    if (c == NULL) {
      s->failed = 1;
      snprintf(s->error, sizeof(s->error), "out of memory");
      break;
    }
    buf_queue_push(&s->resumeq, c);
  } while (done < total);
  free(buf);
}

/* One of our streams after the peer's RESUME. Returns 1 when st ended. */
static int resume_stream(session_t *s, session_stream_t *st) {
  const frame_resume_entry_t *e = find_entry(s, st->id);
  int client = s->cfg.role == SESSION_ROLE_CLIENT;
  if (e == NULL) {
    if (client && !st->opened && st->id > s->peer_last_id)
      return 0; /* the server never saw its OPEN: queue_opens sends it */
    static const char lost[] = "stream lost while reconnecting";
    stream_end(st, FRAME_CODE_RESET, lost, sizeof(lost) - 1);
    return 1;
  }
  if (e->granted < st->acked_total || e->received < e->granted ||
      e->received > st->sent_total) {
    stream_fail(st, FRAME_CODE_PROTOCOL, "RESUME counts out of range");
    return 1;
  }
  stream_ack(st, e->granted - st->acked_total);
  stream_rewind(st, e->received);
  stream_check(st);
  if (st->fin_sent && !(e->flags & FRAME_RESUME_FIN_RECEIVED))
    st->fin_sent = 0; /* our FIN was lost: send it again after the data */
  stream_update_sched(st);
  return 0;
}

/* Our kept streams after the peer's RESUME. One the peer lists without our
 * FIN still waits for our last bytes and FIN: they are sent again, as for
 * an open stream (the acknowledgement follows the FIN, see after_turn). Any
 * other is settled: the peer has it all, or has forgotten the stream.
 * Nothing here calls back. */
static void resume_kept(session_t *s) {
  session_stream_t *next;
  for (session_stream_t *st = s->kept; st != NULL; st = next) {
    next = st->hnext;
    const frame_resume_entry_t *e = find_entry(s, st->id);
    if (e == NULL || (e->flags & FRAME_RESUME_FIN_RECEIVED)) {
      kept_free(st);
    } else if (!(e->flags & FRAME_RESUME_OPENED) ||
               e->granted < st->acked_total || e->received < e->granted ||
               e->received > st->sent_total) {
      /* A stream that ended in order here was opened, and the peer cannot
       * have more than we sent. */
      queue_coded(s, FRAME_RST, st->id, FRAME_CODE_PROTOCOL,
                  "RESUME counts out of range");
      kept_free(st);
    } else {
      size_t before = st->sendq.bytes;
      stream_ack(st, e->granted - st->acked_total);
      stream_rewind(st, e->received);
      s->kept_bytes -= before - st->sendq.bytes;
      st->fin_sent = 0;
      stream_check(st);
      stream_update_sched(st);
    }
  }
}

/* Every stream the peer has and we do not is gone here: say so. */
static void resume_reset_unknown(session_t *s) {
  for (size_t i = 0; i < s->npeer_entries; i++) {
    const frame_resume_entry_t *e = &s->peer_entries[i];
    if (table_find(s, e->stream_id) != NULL ||
        kept_find(s, e->stream_id) != NULL)
      continue;
    /* A server ignores streams the client has not seen opened: the client
     * sends their OPEN again (or ends them itself). A stream the peer ended
     * in order and we no longer have needs nothing from us either: it
     * has all our bytes, and we have its FIN. */
    if ((s->cfg.role == SESSION_ROLE_SERVER &&
         !(e->flags & FRAME_RESUME_OPENED)) ||
        (e->flags & FRAME_RESUME_ENDED))
      continue;
    queue_coded(s, FRAME_RST, e->stream_id, FRAME_CODE_STREAM_CLOSED,
                "stream closed while reconnecting");
  }
}

static int id_cmp(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

/* The ids of all our streams, or NULL (session failed) when out of memory. */
static uint32_t *stream_ids(session_t *s, size_t *n) {
  uint32_t *ids = malloc((s->nstreams + 1) * sizeof(*ids));
  *n = 0;
  if (ids == NULL) {
    s->failed = 1;
    snprintf(s->error, sizeof(s->error), "out of memory");
    return NULL;
  }
  for (size_t i = 0; i < s->table_size; i++)
    for (session_stream_t *st = s->table[i]; st != NULL; st = st->hnext)
      ids[(*n)++] = st->id;
  return ids;
}

/* The OPENs and OPEN_OKs the peer has not seen (none was queued while the
 * link was not synced): client, OPEN in id order (the server requires
 * increasing ids) for each stream not opened above `above` that the peer
 * does not list; server, OPEN_OK for each accepted stream the client lists
 * as not opened. Nothing here calls back into the application. */
static void queue_opens(session_t *s, uint32_t above) {
  size_t n;
  uint32_t *ids = stream_ids(s, &n);
  if (ids == NULL)
    return;
  qsort(ids, n, sizeof(*ids), id_cmp);
  for (size_t i = 0; i < n; i++) {
    session_stream_t *st = table_find(s, ids[i]);
    const frame_resume_entry_t *e = find_entry(s, ids[i]);
    if (s->cfg.role == SESSION_ROLE_CLIENT) {
      if (!st->opened && st->id > above && e == NULL)
        queue_window(s, FRAME_OPEN, st->id, s->cfg.window);
    } else if (st->opened && e != NULL && !(e->flags & FRAME_RESUME_OPENED)) {
      queue_window(s, FRAME_OPEN_OK, st->id, s->cfg.window);
    }
  }
  free(ids);
}

void session_restart(session_t *s, uint16_t code, const char *reason) {
  kept_free_all(s); /* the peer has nothing left to wait for */
  /* By id, not along the table's chains: a stream_closed callback may end
   * other streams (the next one in a chain) or open new ones. */
  size_t n;
  uint32_t *ids = stream_ids(s, &n);
  if (ids != NULL) {
    for (size_t i = 0; i < n; i++) {
      session_stream_t *st = table_find(s, ids[i]);
      if (st != NULL && st->opened)
        stream_end(st, code, reason, reason ? strlen(reason) : 0);
    }
    free(ids);
  }
  s->goaway_recv = 0;
  s->peer_last_id = 0;
}

static void resume_apply(session_t *s) {
  qsort(s->peer_entries, s->npeer_entries, sizeof(*s->peer_entries), entry_cmp);
  for (size_t i = 0; i < s->npeer_entries; i++) {
    const frame_resume_entry_t *e = &s->peer_entries[i];
    /* Which of the two would count is anyone's guess. */
    if (i > 0 && e->stream_id == e[-1].stream_id) {
      fail(s, "RESUME lists stream %u twice", e->stream_id, 0);
      return;
    }
    /* An id we never used cannot name a stream the peer saw opened (a
     * client's stream whose OPEN we never got is listed as not opened: it
     * comes again). Answering it with RST would burn an id we may still
     * open. */
    if (!id_was_used(s, e->stream_id) && (s->cfg.role == SESSION_ROLE_CLIENT ||
                                          (e->flags & FRAME_RESUME_OPENED))) {
      fail(s, "RESUME lists stream %u, never opened", e->stream_id, 0);
      return;
    }
  }
  resume_reset_unknown(s);
  resume_kept(s); /* first: no callbacks, so the list stays as it is */
  /* By id, not along the table's chains: a stream_closed callback run by
   * resume_stream may end other streams (the next one in a chain) or open
   * new ones (the table may grow). */
  size_t n;
  uint32_t *ids = stream_ids(s, &n);
  if (ids == NULL)
    return;
  for (size_t i = 0; i < n; i++) {
    session_stream_t *st = table_find(s, ids[i]);
    if (st != NULL)
      resume_stream(s, st);
  }
  free(ids);
  queue_opens(s, s->peer_last_id);
  queue_goaway(s);
  free(s->peer_entries);
  s->peer_entries = NULL;
  s->npeer_entries = 0;
  s->awaiting_resume = 0;
  want_write(s);
}

static int on_resume(session_t *s, const frame_t *f) {
  if (!s->awaiting_resume)
    return fail(s, "RESUME without a reconnect", 0, 0);
  if (s->npeer_entries + f->count > (size_t)s->nstreams + 1000000u)
    return fail(s, "RESUME lists too many streams (%u)", f->count, 0);
  frame_resume_entry_t *ne =
      realloc(s->peer_entries, (s->npeer_entries + f->count + 1) * sizeof(*ne));
  if (ne == NULL)
    return fail(s, "out of memory", 0, 0);
  s->peer_entries = ne;
  for (uint32_t i = 0; i < f->count; i++) {
    frame_resume_entry_t *e = &s->peer_entries[s->npeer_entries++];
    frame_resume_entry(f, i, e);
    /* No stream has id 0 (an RST for it could not even be encoded). */
    if (e->stream_id == 0)
      return fail(s, "RESUME lists stream 0", 0, 0);
  }
  if (f->last_stream_id > s->peer_last_id)
    s->peer_last_id = f->last_stream_id;
  if (!f->more)
    resume_apply(s);
  return s->failed ? 1 : 0;
}

/* Whatever control frame was queued is void once the link changes: a
 * RESUME supersedes it. */
static void clear_output(session_t *s) {
  buf_queue_free(&s->ctrlq);
  buf_queue_free(&s->resumeq);
  free(s->peer_entries);
  s->peer_entries = NULL;
  s->npeer_entries = 0;
  s->awaiting_resume = 0;
}

void session_link_down(session_t *s) {
  s->link_up = 0;
  s->hello_recv = 0;
  clear_output(s);
  /* A frame cut by the drop must not be glued to the next link's bytes. */
  frame_reader_free(&s->reader);
  frame_reader_init(&s->reader);
}

void session_link_up(session_t *s, int resume, const session_hello_t *hello) {
  clear_output(s); /* not the reader: a client calls this while reading */
  s->link_up = 1;
  if (hello != NULL) {
    frame_t f = {.type = FRAME_HELLO,
                 .session_id = hello->id,
                 .hello_flags = resume ? FRAME_HELLO_RESUMED : 0,
                 .grace_ms = hello->grace_ms};
    uint8_t tmp[FRAME_HEADER_LEN + FRAME_HELLO_LEN];
    size_t n = frame_encode(tmp, sizeof(tmp), &f);
    buf_chunk_t *c = n ? buf_chunk_copy(tmp, n) : NULL;
    if (c != NULL)
      buf_queue_push(&s->resumeq, c);
  }
  if (resume) {
    queue_resume(s);
    s->awaiting_resume = 1;
  } else {
    /* A fresh link for this session: streams simply go on (first use). */
    queue_opens(s, 0);
    queue_goaway(s);
  }
  want_write(s);
}

int session_link_is_up(const session_t *s) {
  return s->link_up;
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
  case FRAME_HELLO:
    if (server)
      return fail(s, "HELLO from the client", 0, 0);
    /* Once per WebSocket: another would make us send our RESUME, or our
     * OPENs, again on the same one. */
    if (s->hello_recv)
      return fail(s, "HELLO twice on one WebSocket", 0, 0);
    s->hello_recv = 1;
    if (s->cb->hello != NULL)
      s->cb->hello(s->ctx, f->session_id,
                   (f->hello_flags & FRAME_HELLO_RESUMED) != 0, f->grace_ms);
    break;
  case FRAME_RESUME:
    return on_resume(s, f);
  case FRAME_GOAWAY:
    if (s->goaway_recv)
      break; /* the same one again, after a resume (section 8) */
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
