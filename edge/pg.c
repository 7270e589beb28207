/* A PostgreSQL connection on libuv. See pg.h. */
#include "edge/pg.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
  PG_CONNECTING,
  PG_READY,
  PG_BROKEN, /* failed: no more queries, lost was called */
  PG_CLOSED, /* pg_conn_close() ran */
} pg_state_t;

typedef struct query query_t;
struct query {
  query_t *next;
  char *sql;
  char **params;
  int nparams;
  unsigned timeout_ms;
  pg_result_cb cb;
  void *ctx;
};

struct pg_conn {
  uv_loop_t *loop;
  PGconn *conn;
  pg_hooks_t hooks;
  pg_state_t state;
  int handles; /* open libuv handles: the memory goes with the last */
  uv_poll_t *poll;
  int poll_fd;
  int poll_events;
  uv_timer_t timer; /* connect deadline, then the running query's */
  query_t *head, *tail;
  int running;      /* head was sent and is being answered */
  int flushing;     /* libpq has unsent output */
  PGresult *result; /* the running query's last result so far */
  char errbuf[512]; /* the running query's error, "" when none */
  PostgresPollingStatusType connect_poll;
};

static void on_poll(uv_poll_t *h, int status, int events);

/* ---- lifecycle helpers -------------------------------------------------- */

/* The timer is part of the connection; poll handles are allocated, one
 * per socket libpq used. */
static void handle_closed(uv_handle_t *h) {
  pg_conn_t *c = h->data;
  if (h != (uv_handle_t *)&c->timer)
    free(h);
  assert(c->handles > 0);
  if (--c->handles == 0)
    free(c);
}

static void query_free(query_t *q) {
  for (int i = 0; i < q->nparams; i++)
    free(q->params[i]);
  free(q->params);
  free(q->sql);
  free(q);
}

/* One line of libpq's (possibly multi-line) message. */
static void one_line(char *dst, size_t n, const char *msg) {
  snprintf(dst, n, "%s", msg != NULL && *msg ? msg : "unknown error");
  for (char *p = dst; *p; p++)
    if (*p == '\n' || *p == '\r' || *p == '\t')
      *p = ' ';
  size_t len = strlen(dst);
  while (len > 0 && dst[len - 1] == ' ')
    dst[--len] = '\0';
}

static void poll_stop(pg_conn_t *c) {
  if (c->poll != NULL && c->poll_events != 0) {
    uv_poll_stop(c->poll);
    c->poll_events = 0;
  }
}

/* Fail the running and every queued query with why, in order. The
 * callbacks may queue nothing (the connection is broken or closed). */
static void fail_queries(pg_conn_t *c, const char *why) {
  if (c->result != NULL) {
    PQclear(c->result);
    c->result = NULL;
  }
  c->running = 0;
  while (c->head != NULL) {
    query_t *q = c->head;
    c->head = q->next;
    if (c->head == NULL)
      c->tail = NULL;
    q->cb(q->ctx, NULL, why);
    query_free(q);
  }
}

/* The connection is unusable: answer the queries, tell the owner once. */
static void conn_break(pg_conn_t *c, const char *why) {
  char line[512];
  if (c->state == PG_BROKEN || c->state == PG_CLOSED)
    return;
  one_line(line, sizeof(line), why);
  c->state = PG_BROKEN;
  poll_stop(c);
  uv_timer_stop(&c->timer);
  fail_queries(c, line);
  if (c->hooks.lost != NULL)
    c->hooks.lost(c->hooks.ctx, line);
}

/* Watch the socket libpq uses now for events (UV_READABLE/UV_WRITABLE);
 * the socket may change while connecting. */
static int poll_watch(pg_conn_t *c, int events) {
  int fd = PQsocket(c->conn);
  if (fd < 0) {
    conn_break(c, "no socket to the database");
    return -1;
  }
  if (c->poll != NULL && c->poll_fd != fd) {
    poll_stop(c);
    uv_close((uv_handle_t *)c->poll, handle_closed);
    c->poll = NULL;
  }
  if (c->poll == NULL) {
    uv_poll_t *p = malloc(sizeof(*p));
    if (p == NULL || uv_poll_init_socket(c->loop, p, fd) != 0) {
      free(p);
      conn_break(c, "cannot watch the database socket");
      return -1;
    }
    p->data = c;
    c->poll = p;
    c->poll_fd = fd;
    c->poll_events = 0;
    c->handles++;
  }
  if (events != c->poll_events) {
    if (events == 0)
      uv_poll_stop(c->poll);
    else
      uv_poll_start(c->poll, events, on_poll);
    c->poll_events = events;
  }
  return 0;
}

/* ---- queries ------------------------------------------------------------ */

static void on_query_timeout(uv_timer_t *t) {
  pg_conn_t *c = t->data;
  char why[128];
  snprintf(why, sizeof(why), "the database did not answer within %u ms",
           c->head != NULL ? c->head->timeout_ms : 0);
  conn_break(c, why);
}

static void on_connect_timeout(uv_timer_t *t) {
  conn_break(t->data, "timed out connecting to the database");
}

static void on_start_failed(uv_timer_t *t) {
  pg_conn_t *c = t->data;
  conn_break(c, c->errbuf);
}

/* Send the next query if none is running. */
static void query_next(pg_conn_t *c) {
  if (c->state != PG_READY || c->running || c->head == NULL)
    return;
  query_t *q = c->head;
  if (!PQsendQueryParams(c->conn, q->sql, q->nparams, NULL,
                         (const char *const *)q->params, NULL, NULL, 0)) {
    conn_break(c, PQerrorMessage(c->conn));
    return;
  }
  c->running = 1;
  c->errbuf[0] = '\0';
  uv_timer_start(&c->timer, on_query_timeout, q->timeout_ms, 0);
  int f = PQflush(c->conn);
  if (f < 0) {
    conn_break(c, PQerrorMessage(c->conn));
    return;
  }
  c->flushing = f == 1;
  poll_watch(c, UV_READABLE | (c->flushing ? UV_WRITABLE : 0));
}

/* The running query has all its results: answer it. */
static void query_done(pg_conn_t *c) {
  query_t *q = c->head;
  PGresult *res = c->result;
  assert(q != NULL && c->running);
  c->head = q->next;
  if (c->head == NULL)
    c->tail = NULL;
  c->running = 0;
  c->result = NULL;
  uv_timer_stop(&c->timer);
  q->cb(q->ctx, res, c->errbuf[0] ? c->errbuf : NULL);
  PQclear(res);
  query_free(q);
}

/* Read what the server sent: notifications, results. */
static void conn_read(pg_conn_t *c) {
  if (!PQconsumeInput(c->conn)) {
    conn_break(c, PQerrorMessage(c->conn));
    return;
  }
  PGnotify *n;
  while (c->state == PG_READY && (n = PQnotifies(c->conn)) != NULL) {
    if (c->hooks.notify != NULL)
      c->hooks.notify(c->hooks.ctx, n->relname, n->extra ? n->extra : "");
    PQfreemem(n);
  }
  while (c->state == PG_READY && c->running && !PQisBusy(c->conn)) {
    PGresult *res = PQgetResult(c->conn);
    if (res == NULL) {
      query_done(c);
      query_next(c);
      continue;
    }
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_FATAL_ERROR && c->errbuf[0] == '\0')
      one_line(c->errbuf, sizeof(c->errbuf), PQresultErrorMessage(res));
    if (c->result != NULL)
      PQclear(c->result);
    c->result = res;
  }
  if (c->state == PG_READY && PQstatus(c->conn) == CONNECTION_BAD)
    conn_break(c, PQerrorMessage(c->conn));
}

/* ---- connecting --------------------------------------------------------- */

static void conn_connect_step(pg_conn_t *c) {
  PostgresPollingStatusType st = PQconnectPoll(c->conn);
  switch (st) {
  case PGRES_POLLING_OK:
    uv_timer_stop(&c->timer);
    if (PQsetnonblocking(c->conn, 1) != 0) {
      conn_break(c, PQerrorMessage(c->conn));
      return;
    }
    c->state = PG_READY;
    if (poll_watch(c, UV_READABLE) != 0)
      return;
    if (c->hooks.ready != NULL)
      c->hooks.ready(c->hooks.ctx);
    query_next(c);
    return;
  case PGRES_POLLING_READING:
    poll_watch(c, UV_READABLE);
    return;
  case PGRES_POLLING_WRITING:
    poll_watch(c, UV_WRITABLE);
    return;
  default:
    conn_break(c, PQerrorMessage(c->conn));
    return;
  }
}

static void on_poll(uv_poll_t *h, int status, int events) {
  pg_conn_t *c = h->data;
  if (c->state == PG_BROKEN || c->state == PG_CLOSED)
    return;
  if (status < 0) {
    conn_break(c, uv_strerror(status));
    return;
  }
  if (c->state == PG_CONNECTING) {
    conn_connect_step(c);
    return;
  }
  if ((events & UV_WRITABLE) && c->flushing) {
    int f = PQflush(c->conn);
    if (f < 0) {
      conn_break(c, PQerrorMessage(c->conn));
      return;
    }
    c->flushing = f == 1;
    if (poll_watch(c, UV_READABLE | (c->flushing ? UV_WRITABLE : 0)) != 0)
      return;
  }
  if (events & UV_READABLE)
    conn_read(c);
}

pg_conn_t *pg_conn_start(uv_loop_t *loop, const char *dsn,
                         unsigned connect_timeout_ms, const pg_hooks_t *hooks,
                         char *err, size_t errlen) {
  char *perr = NULL;
  PQconninfoOption *opts = PQconninfoParse(dsn, &perr);
  if (opts == NULL) {
    char line[256];
    one_line(line, sizeof(line), perr ? perr : "out of memory");
    snprintf(err, errlen, "invalid PostgreSQL DSN: %s", line);
    PQfreemem(perr);
    return NULL;
  }
  PQconninfoFree(opts);
  pg_conn_t *c = calloc(1, sizeof(*c));
  if (c == NULL) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  c->loop = loop;
  c->hooks = *hooks;
  c->conn = PQconnectStart(dsn);
  if (c->conn == NULL) {
    snprintf(err, errlen, "out of memory");
    free(c);
    return NULL;
  }
  uv_timer_init(loop, &c->timer);
  c->timer.data = c;
  c->handles = 1;
  c->state = PG_CONNECTING;
  if (PQstatus(c->conn) == CONNECTION_BAD) {
    /* Reported from the loop like any other failure, so the owner has one
     * path for it. */
    snprintf(c->errbuf, sizeof(c->errbuf), "%s", PQerrorMessage(c->conn));
    uv_timer_start(&c->timer, on_start_failed, 0, 0);
    return c;
  }
  uv_timer_start(&c->timer, on_connect_timeout, connect_timeout_ms, 0);
  /* Before the first PQconnectPoll, libpq's rule is to wait for
   * writability. A failure here has already called lost. */
  poll_watch(c, UV_WRITABLE);
  return c;
}

int pg_conn_query(pg_conn_t *c, const char *sql, int nparams,
                  const char *const *params, unsigned timeout_ms,
                  pg_result_cb cb, void *ctx) {
  if (c == NULL || c->state == PG_BROKEN || c->state == PG_CLOSED)
    return -1;
  query_t *q = calloc(1, sizeof(*q));
  if (q == NULL)
    return -1;
  q->sql = strdup(sql);
  q->params = nparams > 0 ? calloc((size_t)nparams, sizeof(char *)) : NULL;
  if (q->sql == NULL || (nparams > 0 && q->params == NULL)) {
    query_free(q);
    return -1;
  }
  q->nparams = nparams;
  for (int i = 0; i < nparams; i++)
    if (params[i] != NULL && (q->params[i] = strdup(params[i])) == NULL) {
      query_free(q);
      return -1;
    }
  q->timeout_ms = timeout_ms;
  q->cb = cb;
  q->ctx = ctx;
  if (c->tail != NULL)
    c->tail->next = q;
  else
    c->head = q;
  c->tail = q;
  query_next(c);
  return 0;
}

int pg_conn_ready(const pg_conn_t *c) {
  return c != NULL && c->state == PG_READY;
}

void pg_conn_close(pg_conn_t *c) {
  if (c == NULL || c->state == PG_CLOSED)
    return;
  c->state = PG_CLOSED;
  fail_queries(c, "the database connection was closed");
  if (c->poll != NULL) {
    poll_stop(c);
    uv_close((uv_handle_t *)c->poll, handle_closed);
    c->poll = NULL;
  }
  PQfinish(c->conn);
  c->conn = NULL;
  uv_close((uv_handle_t *)&c->timer, handle_closed);
}

const char *pg_sqlstate(const PGresult *res) {
  const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  return s != NULL ? s : "";
}

void pg_dsn_describe(const char *dsn, char *out, size_t outlen) {
  char *perr = NULL;
  PQconninfoOption *opts = PQconninfoParse(dsn, &perr);
  const char *host = NULL, *port = NULL, *db = NULL;
  PQfreemem(perr);
  if (opts == NULL) {
    snprintf(out, outlen, "(invalid DSN)");
    return;
  }
  for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
    if (o->val == NULL || o->val[0] == '\0')
      continue;
    if (strcmp(o->keyword, "host") == 0 ||
        (strcmp(o->keyword, "hostaddr") == 0 && host == NULL))
      host = o->val;
    else if (strcmp(o->keyword, "port") == 0)
      port = o->val;
    else if (strcmp(o->keyword, "dbname") == 0)
      db = o->val;
  }
  snprintf(out, outlen, "%s:%s/%s", host ? host : "localhost",
           port ? port : "5432", db ? db : "(default)");
  PQconninfoFree(opts);
}
