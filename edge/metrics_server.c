#include "edge/metrics_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ws/http1.h"

#define BACKLOG 64
/* Room for the status line and headers of any response we send. */
#define RESPONSE_HEAD_MAX 512

typedef enum {
  CONN_READING = 0, /* collecting the request head */
  CONN_WRITING,     /* the response is being sent */
  CONN_LINGERING,   /* response sent, FIN sent: draining the client's rest */
} conn_state_t;

typedef struct mconn mconn_t;

struct metrics_server {
  uv_loop_t *loop;
  uv_tcp_t listener;
  metrics_snapshot_fn snapshot;
  void *ctx;
  const log_t *log;
  int port;
  mconn_t *conns; /* open connections */
  size_t nconns;  /* in conns: the cap applies to these */
  size_t live;    /* allocated, closing ones included */
  int listening;  /* until the listener's close callback */
  int stopping;
};

struct mconn {
  metrics_server_t *s;
  mconn_t *next;
  mconn_t **pprev;
  uv_tcp_t tcp;
  uv_timer_t timer; /* the connection's deadline */
  uv_write_t write;
  uv_shutdown_t shutdown;
  conn_state_t state;
  int closing;
  int handles;    /* libuv handles not closed yet */
  char *response; /* being written */
  size_t len;     /* request bytes in head */
  char head[METRICS_SERVER_HEAD_MAX];
};

static void server_maybe_free(metrics_server_t *s) {
  if (s->stopping && !s->listening && s->live == 0)
    free(s);
}

/* --- connection teardown ------------------------------------------------ */

static void on_conn_handle_closed(uv_handle_t *h) {
  mconn_t *c = h->data;
  metrics_server_t *s = c->s;

  if (--c->handles > 0)
    return;
  free(c->response);
  free(c);
  s->live--;
  server_maybe_free(s);
}

/* reset: the client does not read: drop what is unsent at once rather
 * than leave it to the kernel's retransmissions. */
static void conn_close(mconn_t *c, int reset) {
  if (c->closing)
    return;
  c->closing = 1;
  *c->pprev = c->next;
  if (c->next != NULL)
    c->next->pprev = c->pprev;
  c->s->nconns--;
  uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
  /* A reset is refused once uv_shutdown() was issued (lingering). */
  if (!reset || c->state == CONN_LINGERING ||
      uv_tcp_close_reset(&c->tcp, on_conn_handle_closed) != 0)
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
}

/* Time is up: a client still sending its request is closed, one not
 * reading its response is reset (nothing worth flushing), a lingering one
 * closed. */
static void on_timeout(uv_timer_t *t) {
  mconn_t *c = t->data;
  conn_close(c, c->state == CONN_WRITING);
}

/* --- reading ------------------------------------------------------------ */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  mconn_t *c = h->data;

  /* Lingering: what still comes is discarded into the spent head. */
  if (c->state == CONN_LINGERING)
    *buf = uv_buf_init(c->head, sizeof(c->head));
  else
    *buf = uv_buf_init(c->head + c->len, (unsigned)(sizeof(c->head) - c->len));
}

/* The length of the request head (through its empty line) in buf, looking
 * from `from` on, or 0 when it is not complete yet. Lines end with CRLF or
 * a bare LF (RFC 9112 section 2.2). */
static size_t head_end(const char *buf, size_t len, size_t from) {
  for (size_t i = from; i < len; i++) {
    if (buf[i] != '\n')
      continue;
    if (i + 1 < len && buf[i + 1] == '\n')
      return i + 2;
    if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
      return i + 3;
  }
  return 0;
}

/* --- responding --------------------------------------------------------- */

static void on_shutdown(uv_shutdown_t *req, int status) {
  mconn_t *c = req->data;

  if (status < 0 && !c->closing)
    conn_close(c, 0);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf);

/*
 * The response is out. Closing now could reset the connection (and lose
 * the response at the client) if the client sent more than we read, so
 * send a FIN and read until its EOF, for a bounded time.
 */
static void on_written(uv_write_t *req, int status) {
  mconn_t *c = req->data;

  free(c->response);
  c->response = NULL;
  if (c->closing)
    return;
  if (status < 0) {
    conn_close(c, 1);
    return;
  }
  c->state = CONN_LINGERING;
  c->shutdown.data = c;
  if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) != 0 ||
      uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
    conn_close(c, 0);
    return;
  }
  uv_timer_start(&c->timer, on_timeout, METRICS_SERVER_LINGER_MS, 0);
}

/* Send one whole response, then close (Connection: close). */
static void respond(mconn_t *c, int status, const char *ctype, const char *body,
                    size_t blen) {
  char date[64] = "";
  time_t now = time(NULL);
  struct tm tm;

  uv_read_stop((uv_stream_t *)&c->tcp);
  c->state = CONN_WRITING;
  if (gmtime_r(&now, &tm) != NULL)
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  c->response = malloc(RESPONSE_HEAD_MAX + blen);
  if (c->response == NULL) {
    conn_close(c, 1);
    return;
  }
  int n = snprintf(c->response, RESPONSE_HEAD_MAX,
                   "HTTP/1.1 %d %s\r\n"
                   "Date: %s\r\n"
                   "Content-Type: %s\r\n"
                   "Content-Length: %zu\r\n"
                   "%s"
                   "Connection: close\r\n\r\n",
                   status, http1_reason_phrase(status), date, ctype, blen,
                   status == 405 ? "Allow: GET\r\n" : "");
  if (n < 0 || n >= RESPONSE_HEAD_MAX) {
    conn_close(c, 1);
    return;
  }
  memcpy(c->response + n, body, blen);
  log_msg(c->s->log, LOG_DEBUG, "metrics: answered %d", status);
  /* uv_write sends all of it, however many partial writes that takes. */
  uv_buf_t b = uv_buf_init(c->response, (unsigned)((size_t)n + blen));
  c->write.data = c;
  if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0)
    conn_close(c, 1);
}

static void respond_text(mconn_t *c, int status, const char *text) {
  respond(c, status, "text/plain; charset=utf-8", text, strlen(text));
}

static void respond_metrics(mconn_t *c) {
  metrics_server_t *s = c->s;
  metrics_t m;
  char body[METRICS_TEXT_MAX];

  memset(&m, 0, sizeof(m));
  s->snapshot(s->ctx, &m);
  size_t n = metrics_render(&m, body, sizeof(body));
  if (n >= sizeof(body)) {
    respond_text(c, 500, "metrics text too long\n");
    return;
  }
  respond(c, 200, METRICS_CONTENT_TYPE, body, n);
}

/* --- the request -------------------------------------------------------- */

/* A method must be an RFC 9110 token: anything else is not HTTP. */
static int is_token(const char *s, size_t n) {
  static const char extra[] = "!#$%&'*+-.^_`|~";
  if (n == 0)
    return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
          (ch >= '0' && ch <= '9') || (ch != '\0' && strchr(extra, ch))))
      return 0;
  }
  return 1;
}

/* How many header lines in head[start, end) are named `name` (with the
 * colon, e.g. "host:"). */
static int header_count(const char *head, size_t start, size_t end,
                        const char *name) {
  size_t nl = strlen(name);
  int count = 0;
  for (size_t i = start; i < end;) {
    const char *eol = memchr(head + i, '\n', end - i);
    size_t len = eol ? (size_t)(eol - (head + i)) : end - i;
    if (len >= nl && strncasecmp(head + i, name, nl) == 0)
      count++;
    i += len + 1;
  }
  return count;
}

/* head[0, end) is a complete request head: answer it. */
static void handle_request(mconn_t *c, size_t end) {
  const char *line = c->head;
  const char *eol = memchr(line, '\n', end); /* found: end is past one */
  size_t n = (size_t)(eol - line);
  if (n > 0 && line[n - 1] == '\r')
    n--;
  /* request-line = method SP request-target SP HTTP-version */
  const char *sp1 = memchr(line, ' ', n);
  const char *sp2 =
      sp1 ? memchr(sp1 + 1, ' ', n - (size_t)(sp1 + 1 - line)) : NULL;
  if (sp1 == NULL || sp2 == NULL || sp2 == sp1 + 1 ||
      !is_token(line, (size_t)(sp1 - line))) {
    respond_text(c, 400, "bad request\n");
    return;
  }
  const char *version = sp2 + 1;
  size_t vlen = n - (size_t)(version - line);
  int http11 = vlen == 8 && memcmp(version, "HTTP/1.1", 8) == 0;
  if (!http11 && !(vlen == 8 && memcmp(version, "HTTP/1.0", 8) == 0)) {
    if (vlen >= 5 && memcmp(version, "HTTP/", 5) == 0)
      respond_text(c, 505, "only HTTP/1.0 and HTTP/1.1 are served\n");
    else
      respond_text(c, 400, "bad request\n");
    return;
  }
  /* RFC 9112 section 3.2: exactly one Host in an HTTP/1.1 request. */
  if (http11 &&
      header_count(c->head, (size_t)(eol + 1 - line), end, "host:") != 1) {
    respond_text(c, 400, "bad request: one Host header is required\n");
    return;
  }
  const char *target = sp1 + 1;
  size_t tlen = (size_t)(sp2 - target);
  const char *q = memchr(target, '?', tlen);
  size_t plen = q ? (size_t)(q - target) : tlen;
  if (plen != 8 || memcmp(target, "/metrics", 8) != 0) {
    respond_text(c, 404, "not found: only /metrics is served here\n");
    return;
  }
  if ((size_t)(sp1 - line) != 3 || memcmp(line, "GET", 3) != 0) {
    respond_text(c, 405, "method not allowed: use GET\n");
    return;
  }
  respond_metrics(c);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  mconn_t *c = st->data;

  if (c->closing || n == 0)
    return;
  if (c->state == CONN_LINGERING) {
    if (n < 0) /* the client's EOF (or an error): done */
      conn_close(c, 0);
    return;
  }
  if (n < 0) { /* gone before a whole request: nothing to answer */
    conn_close(c, 0);
    return;
  }
  size_t from = c->len >= 2 ? c->len - 2 : 0;
  c->len += (size_t)n;
  size_t end = head_end(c->head, c->len, from);
  if (end > 0)
    handle_request(c, end);
  else if (c->len == sizeof(c->head))
    respond_text(c, 431, "request head too large\n");
}

/* --- accepting ---------------------------------------------------------- */

static void on_refused_closed(uv_handle_t *h) {
  free(h);
}

/* Over the cap: accept and close at once, so the listener keeps going
 * (libuv stops accepting until a pending connection is taken). */
static void refuse_connection(metrics_server_t *s, uv_stream_t *listener) {
  uv_tcp_t *t = malloc(sizeof(*t));

  if (t == NULL)
    return;
  uv_tcp_init(s->loop, t);
  if (uv_accept(listener, (uv_stream_t *)t) == 0)
    log_msg(s->log, LOG_DEBUG,
            "metrics: %d connections open already, closing a new one",
            METRICS_SERVER_CONNS_MAX);
  uv_close((uv_handle_t *)t, on_refused_closed);
}

static void on_connection(uv_stream_t *listener, int status) {
  metrics_server_t *s = listener->data;
  mconn_t *c;

  if (status < 0) {
    log_msg(s->log, LOG_WARN, "metrics: accept failed: %s",
            uv_strerror(status));
    return;
  }
  if (s->nconns >= METRICS_SERVER_CONNS_MAX ||
      (c = calloc(1, sizeof(*c))) == NULL) {
    refuse_connection(s, listener);
    return;
  }
  c->s = s;
  uv_tcp_init(s->loop, &c->tcp);
  uv_timer_init(s->loop, &c->timer);
  c->tcp.data = c->timer.data = c;
  c->handles = 2;
  c->next = s->conns;
  if (c->next != NULL)
    c->next->pprev = &c->next;
  c->pprev = &s->conns;
  s->conns = c;
  s->nconns++;
  s->live++;
  if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0 ||
      uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
    conn_close(c, 0);
    return;
  }
  uv_timer_start(&c->timer, on_timeout, METRICS_SERVER_TIMEOUT_MS, 0);
}

/* --- the server --------------------------------------------------------- */

static void on_listener_closed(uv_handle_t *h) {
  metrics_server_t *s = h->data;
  s->listening = 0;
  server_maybe_free(s);
}

metrics_server_t *metrics_server_start(uv_loop_t *loop,
                                       const metrics_server_opts_t *o,
                                       char *err, size_t errlen) {
  struct sockaddr_storage ss;
  int rc;

  if (uv_ip4_addr(o->host, o->port, (struct sockaddr_in *)&ss) != 0 &&
      uv_ip6_addr(o->host, o->port, (struct sockaddr_in6 *)&ss) != 0) {
    snprintf(err, errlen, "metrics address %s is not a numeric IP address",
             o->host);
    return NULL;
  }
  metrics_server_t *s = calloc(1, sizeof(*s));
  if (s == NULL) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  s->loop = loop;
  s->snapshot = o->snapshot;
  s->ctx = o->ctx;
  s->log = o->log;
  uv_tcp_init(loop, &s->listener);
  s->listener.data = s;
  s->listening = 1;
  /* libuv reports a taken port at uv_listen, not at bind. */
  rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&ss, 0);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&s->listener, BACKLOG, on_connection);
  struct sockaddr_storage got;
  int len = sizeof(got);
  if (rc == 0)
    rc = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&got, &len);
  if (rc != 0) {
    snprintf(err, errlen, "cannot serve metrics on %s%s%s:%u: %s",
             strchr(o->host, ':') ? "[" : "", o->host,
             strchr(o->host, ':') ? "]" : "", (unsigned)o->port,
             uv_strerror(rc));
    s->stopping = 1;
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
    return NULL;
  }
  s->port =
      ntohs(got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port
                                      : ((struct sockaddr_in *)&got)->sin_port);
  return s;
}

int metrics_server_port(const metrics_server_t *s) {
  return s->port;
}

void metrics_server_close(metrics_server_t *s) {
  if (s == NULL || s->stopping)
    return;
  s->stopping = 1;
  uv_close((uv_handle_t *)&s->listener, on_listener_closed);
  while (s->conns != NULL)
    conn_close(s->conns, 0);
}
