#include "proxy/relay.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/text.h"
#include "ws/frame.h"

/* Reads land in chunks of this size; short reads are copied into a chunk of
 * their own so an idle interactive stream holds no 64 KiB buffer. */
#define READ_CHUNK (128 * 1024)
#define SMALL_READ 4096

struct relay {
  uv_loop_t *loop;
  transport_conn_t *conn; /* NULL once the WebSocket is gone */
  session_t *session;
  relay_hooks_t hooks;
  void *ctx;
  const log_t *log;
  session_callbacks_t cb;
  buf_chunk_t *spare; /* a READ_CHUNK buffer kept between reads */
  size_t live;        /* stream handles and the timer not closed yet */
  int dying;
  session_config_t cfg;
  unsigned attaches; /* WebSockets that carried it; from the 2nd, resumes */
  int need_fresh;    /* the edge lost our session: start a new one */
  char restart_reason[FRAME_REASON_MAX + 1];
  uv_timer_t timer; /* liveness */
  int timer_on;
  uint32_t ping_ms, dead_ms;
  uint64_t last_rx; /* uv_now() of the last bytes received */
  relay_totals_t totals;
};

/* Standard input and output as one stream's two ends (--stdio). */
typedef struct {
  union uv_any_handle in;
  union uv_any_handle out;
} stdio_handles_t;

struct relay_stream {
  relay_t *r;
  session_stream_t *st; /* NULL once the protocol stream ended */
  void *user;
  uv_tcp_t tcp;
  /* Where bytes are read and written: &tcp both, or the two stdio handles
   * (owned, freed with rs). */
  uv_stream_t *in;
  uv_stream_t *out;
  stdio_handles_t *io;
  int handles;               /* libuv handles not closed yet */
  buf_chunk_t *reading_into; /* chunk handed to libuv by alloc_cb */
  size_t writes_pending;     /* bytes queued in uv_write */
  unsigned reading : 1;
  unsigned eof_read : 1; /* TCP EOF seen, FIN queued */
  unsigned peer_fin : 1; /* no more bytes will come from the peer */
  unsigned shutting : 1; /* uv_shutdown issued */
  unsigned shut_done : 1;
  unsigned closing : 1;
  unsigned opened : 1; /* OPEN_OK exchanged */
  uint32_t id;
  uint16_t end_code;
  relay_stats_t stats;
};

typedef struct {
  uv_write_t req;
  relay_stream_t *rs;
  size_t len;
  uint8_t data[];
} write_req_t;

static void stream_close_tcp(relay_stream_t *rs, int reset);

/* --- TCP side ---------------------------------------------------------- */

static void relay_unref(relay_t *r) {
  assert(r->live > 0);
  if (--r->live == 0 && r->dying) {
    free(r->spare);
    free(r);
  }
}

static void on_tcp_closed(uv_handle_t *h) {
  relay_stream_t *rs = h->data;
  relay_t *r = rs->r;
  assert(rs->handles > 0);
  if (--rs->handles > 0)
    return;
  assert(rs->writes_pending == 0); /* uv_close cancelled and ran them */
  free(rs->reading_into);
  free(rs->io);
  free(rs);
  relay_unref(r);
}

/* A half-opened stdio stream is dropped before it counted as live. */
static void on_stdio_dropped(uv_handle_t *h) {
  relay_stream_t *rs = h->data;
  if (--rs->handles > 0)
    return;
  free(rs->io);
  free(rs);
}

static void stream_finish(relay_stream_t *rs, uint16_t code,
                          const char *reason) {
  relay_t *r = rs->r;
  if (r->hooks.finished != NULL)
    r->hooks.finished(r->ctx, rs, code, reason, &rs->stats);
}

/* Close the TCP socket; reset makes the local peer see a reset, not EOF. */
static void stream_close_tcp(relay_stream_t *rs, int reset) {
  if (rs->closing)
    return;
  rs->closing = 1;
  if (rs->st != NULL) {
    session_stream_set_user(rs->st, NULL);
    rs->st = NULL;
  }
  if (rs->io != NULL) {
    uv_close((uv_handle_t *)rs->in, on_tcp_closed);
    if (!uv_is_closing((uv_handle_t *)rs->out))
      uv_close((uv_handle_t *)rs->out, on_tcp_closed);
  } else if (!reset || rs->shutting ||
             uv_tcp_close_reset(&rs->tcp, on_tcp_closed) != 0) {
    uv_close((uv_handle_t *)&rs->tcp, on_tcp_closed);
  }
}

/* Abort from our side: RST the peer, close the socket. */
static void stream_abort(relay_stream_t *rs, uint16_t code,
                         const char *reason) {
  if (rs->st != NULL) {
    session_stream_reset(rs->st, code, reason);
    rs->st = NULL;
  }
  stream_finish(rs, code, reason);
  stream_close_tcp(rs, 1);
}

/* Both directions done and flushed: an orderly close. */
static void stream_maybe_done(relay_stream_t *rs) {
  if (rs->eof_read && rs->shut_done && rs->st == NULL && !rs->closing) {
    assert(rs->writes_pending == 0);
    stream_finish(rs, rs->end_code, NULL);
    stream_close_tcp(rs, 0);
  }
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  relay_stream_t *rs = req->data;
  free(req);
  if (rs->closing)
    return;
  rs->shut_done = 1;
  stream_maybe_done(rs);
}

static void stream_maybe_shutdown(relay_stream_t *rs) {
  /* Never a half-close before every byte of the peer was handed to TCP. */
  if (!rs->peer_fin || rs->writes_pending > 0 || rs->shutting || rs->closing)
    return;
  rs->shutting = 1;
  if (rs->io != NULL) {
    /* A pipe has no half-close: closing our output is its end of data. */
    uv_close((uv_handle_t *)rs->out, on_tcp_closed);
    rs->shut_done = 1;
    stream_maybe_done(rs);
    return;
  }
  uv_shutdown_t *req = malloc(sizeof(*req));
  if (req == NULL) {
    stream_abort(rs, FRAME_CODE_INTERNAL, "out of memory");
    return;
  }
  req->data = rs;
  if (uv_shutdown(req, rs->out, on_shutdown) != 0) {
    free(req);
    rs->shut_done = 1; /* the socket is already gone: nothing to flush */
    stream_maybe_done(rs);
  }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  relay_stream_t *rs = h->data;
  relay_t *r = rs->r;
  assert(rs->reading_into == NULL); /* one read at a time per stream */
  buf_chunk_t *c = r->spare != NULL ? r->spare : buf_chunk_new(READ_CHUNK);
  r->spare = NULL;
  rs->reading_into = c;
  *buf = uv_buf_init(c ? (char *)c->data : NULL, c ? READ_CHUNK : 0);
}

/* Take the chunk libuv filled; copy a short read so the big one is reused. */
static buf_chunk_t *take_read_chunk(relay_stream_t *rs, size_t n) {
  buf_chunk_t *c = rs->reading_into;
  rs->reading_into = NULL;
  if (c == NULL)
    return NULL;
  c->off = 0;
  c->len = n;
  if (n >= SMALL_READ)
    return c;
  buf_chunk_t *small = n > 0 ? buf_chunk_copy(c->data, n) : NULL;
  if (rs->r->spare == NULL)
    rs->r->spare = c;
  else
    free(c);
  return small;
}

static void stream_stop_reading(relay_stream_t *rs) {
  if (rs->reading) {
    uv_read_stop(rs->in);
    rs->reading = 0;
  }
}

static void stream_start_reading(relay_stream_t *rs);

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  relay_stream_t *rs = s->data;
  buf_chunk_t *c = take_read_chunk(rs, nread > 0 ? (size_t)nread : 0);
  if (nread > 0 && c == NULL) {
    stream_abort(rs, FRAME_CODE_INTERNAL, "out of memory");
    return;
  }
  if (nread == 0 || rs->closing || rs->st == NULL) {
    free(c);
    if (rs->st == NULL)
      stream_stop_reading(rs);
    return;
  }
  if (nread == UV_EOF) {
    stream_stop_reading(rs);
    rs->eof_read = 1;
    session_stream_fin(rs->st);
    return;
  }
  if (nread < 0) {
    stream_abort(rs, FRAME_CODE_RESET, uv_strerror((int)nread));
    return;
  }
  rs->stats.bytes_read += (uint64_t)nread;
  rs->r->totals.bytes_up += (uint64_t)nread;
  if (session_stream_write(rs->st, c))
    stream_stop_reading(rs);
}

static void stream_start_reading(relay_stream_t *rs) {
  if (rs->reading || rs->eof_read || rs->closing)
    return;
  if (uv_read_start(rs->in, on_alloc, on_read) == 0)
    rs->reading = 1;
}

static void on_written(uv_write_t *req, int status) {
  write_req_t *w = (write_req_t *)req;
  relay_stream_t *rs = w->rs;
  size_t len = w->len;
  free(w);
  assert(rs->writes_pending >= len);
  rs->writes_pending -= len;
  if (rs->closing)
    return;
  if (status < 0) {
    stream_abort(rs, FRAME_CODE_RESET, uv_strerror(status));
    return;
  }
  if (rs->st != NULL)
    session_stream_consumed(rs->st, len);
  stream_maybe_shutdown(rs);
}

/* Write to TCP: straight to the socket when it takes everything, else the
 * rest is copied and queued (bounded by the stream's window). */
static int stream_write_tcp(relay_stream_t *rs, const uint8_t *data,
                            size_t len) {
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  int n = uv_try_write(rs->out, &b, 1);
  if (n < 0 && n != UV_EAGAIN)
    return n;
  size_t done = n > 0 ? (size_t)n : 0;
  rs->stats.bytes_written += len;
  rs->r->totals.bytes_down += len;
  if (done > 0 && rs->st != NULL)
    session_stream_consumed(rs->st, done);
  if (done == len)
    return 0;
  write_req_t *w = malloc(sizeof(*w) + (len - done));
  if (w == NULL)
    return UV_ENOMEM;
  w->rs = rs;
  w->len = len - done;
  memcpy(w->data, data + done, w->len);
  b = uv_buf_init((char *)w->data, (unsigned)w->len);
  int rc = uv_write(&w->req, rs->out, &b, 1, on_written);
  if (rc != 0) {
    free(w);
    return rc;
  }
  rs->writes_pending += w->len;
  return 0;
}

/* --- session callbacks ------------------------------------------------- */

/* How far behind this side is on the WebSocket (PROTOCOL.md 4). */
static size_t cb_input_backlog(void *ctx) {
  relay_t *r = ctx;
  return r->conn != NULL ? transport_conn_backlog(r->conn) : 0;
}

static void cb_want_write(void *ctx) {
  relay_t *r = ctx;
  if (r->conn != NULL)
    transport_conn_want_write(r->conn);
}

static relay_stream_t *stream_alloc(relay_t *r) {
  relay_stream_t *rs = calloc(1, sizeof(*rs));
  if (rs == NULL)
    return NULL;
  rs->r = r;
  uv_tcp_init(r->loop, &rs->tcp);
  rs->tcp.data = rs;
  rs->in = rs->out = (uv_stream_t *)&rs->tcp;
  rs->handles = 1;
  r->live++;
  return rs;
}

static void cb_incoming(void *ctx, session_stream_t *st) {
  relay_t *r = ctx;
  relay_stream_t *rs = stream_alloc(r);
  if (rs == NULL) {
    session_stream_refuse(st, FRAME_CODE_INTERNAL, "out of memory");
    return;
  }
  rs->st = st;
  rs->id = session_stream_id(st);
  r->totals.streams_total++;
  session_stream_set_user(st, rs);
  r->hooks.incoming(r->ctx, rs);
}

static void cb_open_ok(void *ctx, session_stream_t *st) {
  relay_stream_t *rs = session_stream_user(st);
  if (rs == NULL)
    return;
  rs->opened = 1;
  stream_start_reading(rs);
}

static void cb_data(void *ctx, session_stream_t *st, const uint8_t *data,
                    size_t len) {
  relay_stream_t *rs = session_stream_user(st);
  if (rs == NULL)
    return;
  int rc = stream_write_tcp(rs, data, len);
  if (rc != 0)
    stream_abort(rs, FRAME_CODE_RESET, uv_strerror(rc));
}

static void cb_fin(void *ctx, session_stream_t *st) {
  relay_stream_t *rs = session_stream_user(st);
  if (rs == NULL)
    return;
  rs->peer_fin = 1;
  stream_maybe_shutdown(rs);
}

static void cb_drained(void *ctx, session_stream_t *st) {
  relay_stream_t *rs = session_stream_user(st);
  if (rs != NULL)
    stream_start_reading(rs);
}

static void cb_closed(void *ctx, session_stream_t *st, uint16_t code,
                      const char *reason, size_t reason_len) {
  relay_t *r = ctx;
  relay_stream_t *rs = session_stream_user(st);
  if (rs == NULL)
    return;
  rs->st = NULL;
  /* The peer's bytes become text here, for the hooks' logs: escaped, so a
   * reason cannot forge a log line or drive a terminal. */
  char text[RELAY_REASON_SIZE];
  text_escape(text, sizeof(text), reason ? reason : "", reason_len);
  size_t n = strlen(text);
  if (code == FRAME_CODE_NO_ERROR) {
    /* Both FINs exchanged: flush what the peer sent, then close. */
    rs->peer_fin = 1;
    stream_maybe_shutdown(rs);
    stream_maybe_done(rs);
    return;
  }
  int never_opened = !rs->opened;
  if (never_opened && r->hooks.open_failed != NULL)
    r->hooks.open_failed(r->ctx, rs, code, text, n);
  stream_finish(rs, code, text);
  /* An OPEN_FAIL closes quietly (no bytes ever flowed); an abort resets. */
  stream_close_tcp(rs, !never_opened);
}

static void cb_refused(void *ctx, uint32_t id, uint16_t code) {
  relay_t *r = ctx;
  if (r->hooks.answered != NULL)
    r->hooks.answered(r->ctx, NULL, code);
}

static void cb_goaway(void *ctx, uint32_t last, uint16_t code,
                      const char *reason, size_t len) {
  relay_t *r = ctx;
  char text[RELAY_REASON_SIZE];
  if (r->hooks.goaway == NULL)
    return;
  text_escape(text, sizeof(text), reason ? reason : "", len);
  r->hooks.goaway(r->ctx, code, text, strlen(text));
}

static void cb_hello(void *ctx, const uint8_t *id, int resumed,
                     uint32_t grace_ms) {
  relay_t *r = ctx;
  if (r->attaches > 1) {
    if (resumed)
      session_link_up(r->session, 1, NULL);
    else
      r->need_fresh = 1; /* swapped once session_feed has returned */
  }
  if (r->hooks.hello != NULL)
    r->hooks.hello(r->ctx, id, resumed, grace_ms);
}

/* --- relay ------------------------------------------------------------- */

relay_t *relay_new(uv_loop_t *loop, transport_conn_t *conn,
                   const session_config_t *cfg, const relay_hooks_t *hooks,
                   void *ctx, const log_t *log) {
  relay_t *r = calloc(1, sizeof(*r));
  if (r == NULL)
    return NULL;
  r->loop = loop;
  r->conn = conn;
  r->hooks = *hooks;
  r->ctx = ctx;
  r->log = log;
  r->cb = (session_callbacks_t){
      .want_write = cb_want_write,
      .stream_incoming = cb_incoming,
      .stream_open_ok = cb_open_ok,
      .stream_data = cb_data,
      .stream_fin = cb_fin,
      .stream_drained = cb_drained,
      .stream_closed = cb_closed,
      .goaway = cb_goaway,
      .hello = cb_hello,
      .stream_refused = cb_refused,
      .input_backlog = cb_input_backlog,
  };
  r->cfg = *cfg;
  r->attaches = conn != NULL;
  r->session = session_new(cfg, &r->cb, r);
  if (r->session == NULL) {
    free(r);
    return NULL;
  }
  return r;
}

static void on_timer_closed(uv_handle_t *h) {
  relay_unref(h->data);
}

void relay_close(relay_t *r, const char *reason) {
  if (r == NULL)
    return;
  assert(!r->dying); /* closed once */
  r->conn = NULL;
  session_abort(r->session, FRAME_CODE_SHUTDOWN, reason);
  session_free(r->session);
  r->session = NULL;
  r->dying = 1;
  r->live++; /* held across the timer's close, if any */
  if (r->timer_on) {
    r->timer_on = 0;
    r->live++;
    uv_close((uv_handle_t *)&r->timer, on_timer_closed);
  }
  relay_unref(r);
}

/* The edge no longer has our session: end the streams it knew, open the
 * others (accepted during the outage) on the new one. */
static void relay_renew_session(relay_t *r) {
  r->need_fresh = 0;
  relay_restart(r, r->restart_reason[0] ? r->restart_reason
                                        : "session expired while disconnected");
  session_link_up(r->session, 0, NULL);
}

void relay_set_restart_reason(relay_t *r, const char *reason) {
  snprintf(r->restart_reason, sizeof(r->restart_reason), "%s", reason);
}

void relay_restart(relay_t *r, const char *reason) {
  session_restart(r->session, FRAME_CODE_SHUTDOWN, reason);
}

int relay_on_rx(relay_t *r, const uint8_t *data, size_t len, int eom, char *msg,
                size_t msglen) {
  r->last_rx = uv_now(r->loop);
  int rc = session_feed(r->session, data, len, eom);
  if (r->need_fresh)
    relay_renew_session(r);
  if (rc == 0)
    return 0;
  snprintf(msg, msglen, "%s", session_error(r->session));
  return -1;
}

void relay_detach(relay_t *r) {
  r->conn = NULL;
  session_link_down(r->session);
}

void relay_attach(relay_t *r, transport_conn_t *conn) {
  r->conn = conn;
  r->attaches++;
  r->last_rx = uv_now(r->loop);
  if (session_want_write(r->session)) /* queued while there was no link */
    transport_conn_want_write(conn);
}

void relay_link_up(relay_t *r, int resume, const session_hello_t *hello) {
  session_link_up(r->session, resume, hello);
}

int relay_attached(const relay_t *r) {
  return r->conn != NULL;
}

static void on_liveness(uv_timer_t *t) {
  relay_t *r = t->data;
  if (r->conn == NULL)
    return;
  uint64_t idle = uv_now(r->loop) - r->last_rx;
  if (idle >= r->dead_ms) {
    if (r->hooks.dead != NULL)
      r->hooks.dead(r->ctx);
  } else if (idle >= r->ping_ms) {
    uint8_t payload[8];
    uint64_t now = uv_now(r->loop);
    memcpy(payload, &now, sizeof(payload));
    session_ping(r->session, payload);
  }
}

void relay_set_liveness(relay_t *r, uint32_t ping_ms, uint32_t dead_ms) {
  r->ping_ms = ping_ms;
  r->dead_ms = dead_ms;
  r->last_rx = uv_now(r->loop);
  if (!r->timer_on) {
    uv_timer_init(r->loop, &r->timer);
    r->timer.data = r;
    r->timer_on = 1;
  }
  /* A tick per half interval keeps detection within 1.5 intervals. */
  uint64_t tick = ping_ms / 2 ? ping_ms / 2 : 1;
  uv_timer_start(&r->timer, on_liveness, tick, tick);
}

size_t relay_on_writable(relay_t *r, uint8_t *buf, size_t cap) {
  return session_build_message(r->session, buf, cap);
}

session_t *relay_session(relay_t *r) {
  return r->session;
}

size_t relay_stream_count(const relay_t *r) {
  return r->session ? session_stream_count(r->session) : 0;
}

void relay_totals(const relay_t *r, relay_totals_t *out) {
  *out = r->totals;
  out->streams_open = relay_stream_count(r);
}

relay_stream_t *relay_stream_open(relay_t *r, uv_stream_t *server, void *user) {
  relay_stream_t *rs = stream_alloc(r);
  if (rs == NULL)
    return NULL;
  rs->user = user;
  if (uv_accept(server, (uv_stream_t *)&rs->tcp) != 0) {
    stream_close_tcp(rs, 0);
    return NULL;
  }
  uv_tcp_nodelay(&rs->tcp, 1);
  rs->st = session_stream_open(r->session, rs);
  if (rs->st == NULL) {
    stream_close_tcp(rs, 1);
    return NULL;
  }
  rs->id = session_stream_id(rs->st);
  r->totals.streams_total++;
  return rs;
}

/* Wrap fd in a libuv stream handle of the right kind. Returns 1 when the
 * handle got registered with the loop (so it must be closed), with *rc the
 * libuv result. */
static int open_stdio_handle(uv_loop_t *loop, union uv_any_handle *h, int fd,
                             int readable, int *rc) {
  switch (uv_guess_handle(fd)) {
  case UV_TTY:
    *rc = uv_tty_init(loop, &h->tty, fd, readable);
    return *rc == 0;
  case UV_NAMED_PIPE:
    uv_pipe_init(loop, &h->pipe, 0);
    *rc = uv_pipe_open(&h->pipe, fd);
    return 1;
  case UV_TCP:
    uv_tcp_init(loop, &h->tcp);
    *rc = uv_tcp_open(&h->tcp, fd);
    return 1;
  default:
    *rc = UV_EINVAL;
    return 0;
  }
}

relay_stream_t *relay_stream_open_stdio(relay_t *r, int in_fd, int out_fd,
                                        void *user, char *err, size_t errlen) {
  relay_stream_t *rs = calloc(1, sizeof(*rs));
  stdio_handles_t *io = calloc(1, sizeof(*io));
  if (rs == NULL || io == NULL) {
    free(rs);
    free(io);
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  rs->r = r;
  rs->user = user;
  rs->io = io;
  rs->in = (uv_stream_t *)&io->in;
  rs->out = (uv_stream_t *)&io->out;
  int rc_in, rc_out;
  int reg_in = open_stdio_handle(r->loop, &io->in, in_fd, 1, &rc_in);
  int reg_out = open_stdio_handle(r->loop, &io->out, out_fd, 0, &rc_out);
  rs->in->data = rs->out->data = rs;
  rs->handles = reg_in + reg_out;
  if (rc_in != 0 || rc_out != 0) {
    snprintf(err, errlen,
             "standard input and output must be pipes, sockets or a "
             "terminal: %s",
             uv_strerror(rc_in ? rc_in : rc_out));
    if (reg_in)
      uv_close((uv_handle_t *)rs->in, on_stdio_dropped);
    if (reg_out)
      uv_close((uv_handle_t *)rs->out, on_stdio_dropped);
    if (!reg_in && !reg_out) {
      free(io);
      free(rs);
    }
    return NULL;
  }
  r->live++;
  rs->st = session_stream_open(r->session, rs);
  if (rs->st == NULL) {
    stream_close_tcp(rs, 0);
    snprintf(err, errlen, "cannot open a stream");
    return NULL;
  }
  rs->id = session_stream_id(rs->st);
  r->totals.streams_total++;
  return rs;
}

void relay_stream_accept(relay_stream_t *rs) {
  uv_tcp_nodelay(&rs->tcp, 1);
  rs->opened = 1;
  session_stream_accept(rs->st);
  if (rs->r->hooks.answered != NULL)
    rs->r->hooks.answered(rs->r->ctx, rs, FRAME_CODE_NO_ERROR);
  stream_start_reading(rs);
}

void relay_stream_refuse(relay_stream_t *rs, uint16_t code,
                         const char *reason) {
  if (rs->st != NULL) {
    session_stream_refuse(rs->st, code, reason);
    rs->st = NULL;
    if (rs->r->hooks.answered != NULL)
      rs->r->hooks.answered(rs->r->ctx, rs, code);
  }
  stream_finish(rs, code, reason);
  stream_close_tcp(rs, 0);
}

uv_tcp_t *relay_stream_tcp(relay_stream_t *rs) {
  return &rs->tcp;
}

uint32_t relay_stream_id(const relay_stream_t *rs) {
  return rs->id;
}

void *relay_stream_user(const relay_stream_t *rs) {
  return rs->user;
}

void relay_stream_set_user(relay_stream_t *rs, void *user) {
  rs->user = user;
}
