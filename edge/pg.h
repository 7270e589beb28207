/*
 * One PostgreSQL connection on the process's libuv loop: libpq's
 * non-blocking API (PQconnectStart/PQconnectPoll, PQsendQueryParams,
 * PQconsumeInput) driven by a uv_poll on the connection's socket, so no
 * database call ever blocks the loop. Queries run one at a time, in the
 * order given; LISTEN notifications are delivered as they arrive.
 *
 * A connection that fails (connect error or timeout, a query timeout, the
 * server gone) is broken for good: every pending query is answered with
 * the error, then on_lost is called once. Reconnecting is the owner's
 * business (edge/store_pg.c).
 *
 * Ownership: the caller owns the pg_conn_t. pg_conn_close() completes on
 * the loop (pending queries are answered "closed" before it returns; no
 * hook runs after it); the memory goes with the last handle. A PGresult
 * passed to a callback is freed when the callback returns.
 */
#ifndef WSMUX_PG_H
#define WSMUX_PG_H

#include <libpq-fe.h>
#include <stddef.h>
#include <uv.h>

typedef struct pg_conn pg_conn_t;

typedef struct {
  /* Connected and ready for queries. */
  void (*ready)(void *ctx);
  /* Connect failed or the connection broke; why is a one-line message
   * without the DSN. The connection takes no more queries. */
  void (*lost)(void *ctx, const char *why);
  /* A NOTIFY on a channel this connection LISTENs to. Optional. */
  void (*notify)(void *ctx, const char *channel, const char *payload);
  void *ctx;
} pg_hooks_t;

/*
 * Answer of one query: res is the last result (NULL when the connection
 * failed or closed first), err a one-line message when the query failed
 * (the connection, or the server's error: see pg_sqlstate()), else NULL.
 */
typedef void (*pg_result_cb)(void *ctx, const PGresult *res, const char *err);

/* Start connecting to dsn (a libpq connection string or URI). NULL with a
 * message in err when the DSN cannot even be parsed or memory runs out;
 * else ready or lost follows. */
pg_conn_t *pg_conn_start(uv_loop_t *loop, const char *dsn,
                         unsigned connect_timeout_ms, const pg_hooks_t *hooks,
                         char *err, size_t errlen);
/* Queue a query with text parameters (NULL entries are SQL NULL); the
 * strings are copied. A query not answered within timeout_ms breaks the
 * connection. 0, or -1 when the connection is broken or closing (cb is
 * then not called). */
int pg_conn_query(pg_conn_t *c, const char *sql, int nparams,
                  const char *const *params, unsigned timeout_ms,
                  pg_result_cb cb, void *ctx);
/* Whether the connection is ready for queries (connected, not broken). */
int pg_conn_ready(const pg_conn_t *c);
/* Close; NULL is allowed. */
void pg_conn_close(pg_conn_t *c);

/* The SQLSTATE of a failed result ("23505"), or "" when none. */
const char *pg_sqlstate(const PGresult *res);
#define PG_UNIQUE_VIOLATION "23505"
#define PG_LOCK_NOT_AVAILABLE "55P03"

/* "host:port/dbname" of a DSN for messages (never its password), into
 * out; "(invalid DSN)" when it does not parse. */
void pg_dsn_describe(const char *dsn, char *out, size_t outlen);

#endif
