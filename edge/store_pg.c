/*
 * The postgres backend: one connection per edge (edge/pg.h) for the
 * writes, the reloads of the view and LISTEN. Writes are single
 * statements (edge/store_sql.h) that also NOTIFY the new revision; every
 * edge reloads its view when it hears of a revision newer than its own,
 * and checks the revision every few seconds in case a notification was
 * missed. A write is answered once this edge's view holds it, so the
 * client's next request sees its change.
 *
 * When the database goes away the store logs it once (availability
 * hook), answers writes STORE_UNAVAILABLE, keeps the view it has (fresh
 * for max_stale_ms) and reconnects with backoff.
 */
#include "edge/store.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/json.h"
#include "edge/pg.h"
#include "edge/store_impl.h"
#include "edge/store_sql.h"

#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 5000
#define HEARTBEAT_MS 5000
#define AUDIT_LIST_MAX 1000
#define MSG_SIZE 512

typedef struct store_pg store_pg_t;

typedef enum { OP_CREATE, OP_UPDATE, OP_DELETE, OP_SSH, OP_AUDIT } op_kind_t;

/* A write (or audit listing) from its call until it is answered. */
typedef struct op op_t;
struct op {
  store_pg_t *p;
  op_t *next; /* p->waiting, once the database answered */
  op_kind_t kind;
  store_cb cb;
  store_audit_cb audit_cb;
  void *ctx;
  char id[IDENTITY_ID_SIZE + 8]; /* the identity written */
  store_status_t status;         /* the database's answer */
  char message[MSG_SIZE];
  int64_t need_rev; /* answered once the view is at least this new */
};

struct store_pg {
  store_t base;
  store_config_t cfg;
  char *dsn;
  char where[256]; /* host:port/db for messages: never the DSN itself */
  pg_conn_t *pg;
  int up;      /* connected, schema checked, listening, view read */
  int ever_up; /* started has been told */
  int closed;
  int64_t view_rev;
  int64_t seen_rev; /* the newest revision heard of */
  int reloading;    /* a snapshot query is on its way */
  op_t *waiting;    /* written, waiting for the view to catch up */
  unsigned backoff_ms;
  uv_timer_t *retry;     /* reconnect after backoff */
  uv_timer_t *heartbeat; /* revision check */
  uint64_t down_since;   /* uv_now() when the database went away */
  int timers;            /* retry and heartbeat not closed yet */
  char last_error[MSG_SIZE];
  void (*started)(void *ctx, const char *err);
  void *started_ctx;
};

static void pg_connect(store_pg_t *p);
static void reload(store_pg_t *p);

static uint64_t now_ms(const store_pg_t *p) {
  return uv_now(p->base.loop);
}

/* ---- answering ----------------------------------------------------------- */

static void op_answer(op_t *op) {
  store_pg_t *p = op->p;
  if (op->kind == OP_AUDIT) {
    op->audit_cb(op->ctx, op->status, NULL, 0, op->message);
  } else {
    const identity_t *id = NULL;
    if (op->status == STORE_OK &&
        (op->kind == OP_CREATE || op->kind == OP_UPDATE)) {
      long i = state_find_identity(p->base.view, op->id);
      id = i >= 0 ? &p->base.view->identities[i] : NULL;
    }
    store_result_t r = {
        .status = op->status, .message = op->message, .identity = id};
    op->cb(op->ctx, &r);
  }
  free(op);
}

static void answer_now(op_t *op, store_status_t st, const char *fmt,
                       const char *arg) {
  op->status = st;
  /* A cut message is harmless; the check keeps -Wformat-truncation quiet. */
  if (snprintf(op->message, sizeof(op->message), fmt, arg) < 0)
    op->message[0] = '\0';
  if (st == STORE_OK)
    op->p->base.stats.write_ok++;
  else if (st == STORE_FAILED)
    op->p->base.stats.write_failed++;
  op_answer(op);
}

/* Answer every waiting write the view has caught up with; all of them when
 * the database went away (they were made, but this edge cannot show them:
 * still a success for the client, whose change is durable). */
static void answer_waiting(store_pg_t *p, int all) {
  op_t **pp = &p->waiting;
  op_t *ready = NULL, **tail = &ready;
  while (*pp != NULL) {
    op_t *op = *pp;
    if (all || op->need_rev <= p->view_rev) {
      *pp = op->next;
      op->next = NULL;
      *tail = op;
      tail = &op->next;
    } else {
      pp = &op->next;
    }
  }
  while (ready != NULL) {
    op_t *op = ready;
    ready = op->next;
    if (op->status == STORE_OK)
      p->base.stats.write_ok++;
    op_answer(op);
  }
}

/* ---- availability -------------------------------------------------------- */

static void set_up(store_pg_t *p) {
  int was = p->up;
  p->up = 1;
  p->base.stats.up = 1;
  p->backoff_ms = 0;
  if (!p->ever_up) {
    p->ever_up = 1;
    if (p->started != NULL)
      p->started(p->started_ctx, NULL);
    return;
  }
  if (!was && p->base.hooks.availability != NULL) {
    char why[MSG_SIZE + 64];
    snprintf(why, sizeof(why),
             "PostgreSQL at %s is back (down for %" PRIu64 " ms)", p->where,
             now_ms(p) - p->down_since);
    p->base.hooks.availability(p->base.hooks.ctx, 1, why);
  }
}

static void on_retry(uv_timer_t *t) {
  pg_connect(t->data);
}

/* The connection failed or broke: report once, retry with backoff. */
static void set_down(store_pg_t *p, const char *why) {
  snprintf(p->last_error, sizeof(p->last_error), "%s", why);
  pg_conn_close(p->pg);
  p->pg = NULL;
  p->reloading = 0;
  answer_waiting(p, 1);
  if (!p->ever_up) {
    /* Starting: the caller decides (it stops the edge). */
    p->ever_up = 1;
    p->closed = 1; /* no retry: store_close follows */
    if (p->started != NULL) {
      char msg[MSG_SIZE + 300];
      snprintf(msg, sizeof(msg), "PostgreSQL at %s: %s", p->where, why);
      p->started(p->started_ctx, msg);
    }
    return;
  }
  if (p->up) {
    p->up = 0;
    p->base.stats.up = 0;
    p->base.stats.outages++;
    p->down_since = now_ms(p);
    if (p->base.hooks.availability != NULL) {
      char msg[MSG_SIZE + 300];
      snprintf(msg, sizeof(msg),
               "PostgreSQL at %s is unavailable: %s; admin writes are "
               "refused and the view is served for %u ms at most until it "
               "is back",
               p->where, why, p->cfg.max_stale_ms);
      p->base.hooks.availability(p->base.hooks.ctx, 0, msg);
    }
  }
  if (p->closed)
    return;
  p->backoff_ms = p->backoff_ms == 0                   ? BACKOFF_MIN_MS
                  : p->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
                                                       : p->backoff_ms * 2;
  /* Jitter, so a fleet does not reconnect in step. */
  unsigned wait = p->backoff_ms - p->backoff_ms / 4 +
                  (unsigned)(rand() % (int)(p->backoff_ms / 2 + 1));
  uv_timer_start(p->retry, on_retry, wait, 0);
}

/* ---- the view ------------------------------------------------------------ */

static int parse_revs(const char *text, int64_t **out, size_t *n) {
  char err[128];
  cJSON *a = json_parse_strict(text, strlen(text), err, sizeof(err));
  *out = NULL;
  *n = 0;
  if (!cJSON_IsArray(a)) {
    cJSON_Delete(a);
    return -1;
  }
  size_t k = (size_t)cJSON_GetArraySize(a);
  *out = calloc(k + 1, sizeof(**out));
  if (*out == NULL) {
    cJSON_Delete(a);
    return -1;
  }
  const cJSON *v;
  cJSON_ArrayForEach(v, a) {
    if (!cJSON_IsNumber(v))
      break;
    (*out)[(*n)++] = (int64_t)v->valuedouble;
  }
  cJSON_Delete(a);
  return *n == k ? 0 : -1;
}

int store_sql_snapshot(const PGresult *res, int64_t *rev, state_t **out,
                       char *err, size_t errlen) {
  *out = NULL;
  if (PQntuples(res) != 1 || PQnfields(res) != 4) {
    snprintf(err, errlen, "unexpected snapshot shape");
    return -1;
  }
  *rev = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
  const char *ids = PQgetvalue(res, 0, 1), *svcs = PQgetvalue(res, 0, 3);
  size_t len = strlen(ids) + strlen(svcs) + 64;
  char *text = malloc(len);
  if (text == NULL) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  snprintf(text, len, "{\"version\": %d, \"identities\": %s, \"services\": %s}",
           STATE_VERSION, ids, svcs);
  int rc = state_parse(text, strlen(text), out, err, errlen);
  free(text);
  if (rc != 0)
    return -1;
  int64_t *revs;
  size_t n;
  if (parse_revs(PQgetvalue(res, 0, 2), &revs, &n) != 0 ||
      n != (*out)->nidentities) {
    free(revs);
    state_free(*out);
    *out = NULL;
    snprintf(err, errlen, "unexpected revisions in the snapshot");
    return -1;
  }
  for (size_t i = 0; i < n; i++)
    (*out)->identities[i].rev = revs[i];
  free(revs);
  return 0;
}

static void on_snapshot(void *ctx, const PGresult *res, const char *err) {
  store_pg_t *p = ctx;
  char why[MSG_SIZE];
  p->reloading = 0;
  if (p->closed)
    return;
  if (err != NULL || res == NULL) {
    if (res == NULL)
      return; /* the connection broke: lost does the rest */
    set_down(p, err);
    return;
  }
  int64_t rev;
  state_t *next;
  if (store_sql_snapshot(res, &rev, &next, why, sizeof(why)) != 0) {
    /* Not ours to fix at run time: keep the old view, say why. */
    char msg[MSG_SIZE + 64];
    snprintf(msg, sizeof(msg), "the database's state is invalid: %s", why);
    set_down(p, msg);
    return;
  }
  p->base.stats.reloads++;
  if (!p->ever_up) {
    /* The first view: nothing changed, it is what the edge starts with. */
    p->view_rev = rev;
    state_free(p->base.view);
    p->base.view = next;
    p->base.view_at = now_ms(p);
  } else if (rev >= p->view_rev) {
    p->view_rev = rev;
    store_view_replace(&p->base, next);
  } else {
    state_free(next);
  }
  if (p->seen_rev < p->view_rev)
    p->seen_rev = p->view_rev;
  if (!p->up)
    set_up(p);
  answer_waiting(p, 0);
  /* Heard of something newer meanwhile, or a write waits: again. */
  if (p->seen_rev > p->view_rev || p->waiting != NULL)
    reload(p);
}

static void reload(store_pg_t *p) {
  if (p->reloading || p->pg == NULL)
    return;
  if (pg_conn_query(p->pg, STORE_SQL_SNAPSHOT, 0, NULL, p->cfg.query_timeout_ms,
                    on_snapshot, p) == 0)
    p->reloading = 1;
}

static void heard_of(store_pg_t *p, int64_t rev) {
  if (rev > p->seen_rev)
    p->seen_rev = rev;
  if (p->seen_rev > p->view_rev)
    reload(p);
}

static void on_notify(void *ctx, const char *channel, const char *payload) {
  heard_of(ctx, strtoll(payload, NULL, 10));
}

static void on_revision(void *ctx, const PGresult *res, const char *err) {
  if (err == NULL && res != NULL && PQntuples(res) == 1)
    heard_of(ctx, strtoll(PQgetvalue(res, 0, 0), NULL, 10));
}

/* A notification can be lost (the connection broke in between): check
 * the revision now and then. The query's timeout also notices a database
 * that stopped answering without closing the connection. */
static void on_heartbeat(uv_timer_t *t) {
  store_pg_t *p = t->data;
  if (p->up && p->pg != NULL)
    pg_conn_query(p->pg, STORE_SQL_REVISION, 0, NULL, p->cfg.query_timeout_ms,
                  on_revision, p);
}

/* ---- connecting ---------------------------------------------------------- */

static void on_listen(void *ctx, const PGresult *res, const char *err) {
  store_pg_t *p = ctx;
  if (p->closed || res == NULL)
    return;
  if (err != NULL) {
    set_down(p, err);
    return;
  }
  reload(p); /* up once the view is read */
}

static void on_schema(void *ctx, const PGresult *res, const char *err) {
  store_pg_t *p = ctx;
  char why[MSG_SIZE];
  if (p->closed || res == NULL)
    return;
  if (err != NULL) {
    if (strcmp(pg_sqlstate(res), "42P01") == 0)
      snprintf(why, sizeof(why),
               "the database has no wsmux schema: run `wsmux-edge migrate "
               "--config FILE` first");
    else
      snprintf(why, sizeof(why), "%s", err);
    set_down(p, why);
    return;
  }
  long v = PQntuples(res) == 1 ? strtol(PQgetvalue(res, 0, 0), NULL, 10) : -1;
  if (v != STORE_SQL_VERSION) {
    if (v > STORE_SQL_VERSION)
      snprintf(why, sizeof(why),
               "the database schema is version %ld, newer than this "
               "wsmux-edge knows (version %d): upgrade wsmux-edge",
               v, STORE_SQL_VERSION);
    else
      snprintf(why, sizeof(why),
               "the database schema is version %ld; this wsmux-edge needs "
               "version %d: run `wsmux-edge migrate --config FILE`",
               v, STORE_SQL_VERSION);
    set_down(p, why);
    return;
  }
  if (pg_conn_query(p->pg, "LISTEN " STORE_SQL_CHANNEL, 0, NULL,
                    p->cfg.query_timeout_ms, on_listen, p) != 0)
    set_down(p, "cannot send LISTEN");
}

static void on_ready(void *ctx) {
  store_pg_t *p = ctx;
  if (pg_conn_query(p->pg, STORE_SQL_SCHEMA_VERSION, 0, NULL,
                    p->cfg.query_timeout_ms, on_schema, p) != 0)
    set_down(p, "cannot send a query");
}

static void on_lost(void *ctx, const char *why) {
  store_pg_t *p = ctx;
  if (!p->closed)
    set_down(p, why);
}

static void pg_connect(store_pg_t *p) {
  char err[MSG_SIZE];
  pg_hooks_t h = {
      .ready = on_ready, .lost = on_lost, .notify = on_notify, .ctx = p};
  p->pg = pg_conn_start(p->base.loop, p->dsn, p->cfg.connect_timeout_ms, &h,
                        err, sizeof(err));
  if (p->pg == NULL)
    set_down(p, err);
}

/* ---- writes -------------------------------------------------------------- */

static op_t *op_new(store_pg_t *p, op_kind_t kind, store_cb cb, void *ctx) {
  op_t *op = calloc(1, sizeof(*op));
  if (op == NULL) {
    if (cb != NULL)
      store_answer(cb, ctx, STORE_FAILED, "out of memory");
    return NULL;
  }
  op->p = p;
  op->kind = kind;
  op->cb = cb;
  op->ctx = ctx;
  return op;
}

static int refuse_if_down(store_pg_t *p, op_t *op) {
  if (p->up && p->pg != NULL && pg_conn_ready(p->pg))
    return 0;
  answer_now(op, STORE_UNAVAILABLE,
             "the database is unavailable (%s): nothing changed, try again "
             "later",
             p->last_error[0] ? p->last_error : "not connected");
  return -1;
}

/* The database answered a write: wait for the view to hold need_rev. */
static void op_wait(store_pg_t *p, op_t *op, store_status_t st,
                    int64_t need_rev) {
  op->status = st;
  op->need_rev = need_rev;
  if (need_rev <= p->view_rev) {
    if (st == STORE_OK)
      p->base.stats.write_ok++;
    op_answer(op);
    return;
  }
  op->next = p->waiting;
  p->waiting = op;
  heard_of(p, need_rev);
}

static int64_t col_rev(const PGresult *res, int col) {
  if (PQntuples(res) != 1 || PQgetisnull(res, 0, col))
    return -1;
  return strtoll(PQgetvalue(res, 0, col), NULL, 10);
}

/* A write's statement failed: classify for the client. */
static void op_failed(op_t *op, const PGresult *res, const char *err) {
  if (res == NULL) {
    answer_now(op, STORE_UNAVAILABLE,
               "the database went away (%s): the change was not confirmed; "
               "check and try again",
               err);
    return;
  }
  const char *cons = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
  if (strcmp(pg_sqlstate(res), PG_UNIQUE_VIOLATION) == 0 && cons != NULL &&
      strcmp(cons, "wsmux_identities_name_key") == 0) {
    answer_now(op, STORE_CONFLICT, "%s", "the name is already used");
    return;
  }
  if (strcmp(pg_sqlstate(res), PG_UNIQUE_VIOLATION) == 0) {
    answer_now(op, STORE_CONFLICT, "%s", "the id is already used");
    return;
  }
  answer_now(op, STORE_FAILED, "the database refused the change: %s", err);
}

static void on_written(void *ctx, const PGresult *res, const char *err) {
  op_t *op = ctx;
  store_pg_t *p = op->p;
  if (err != NULL || res == NULL) {
    op_failed(op, res, err != NULL ? err : "closed");
    return;
  }
  int64_t rev = col_rev(res, 0);
  if (op->kind == OP_CREATE || op->kind == OP_SSH) {
    if (rev < 0)
      answer_now(op, STORE_FAILED, "%s", "the database returned no row");
    else
      op_wait(p, op, STORE_OK, rev);
    return;
  }
  /* Update and delete: (new rev, rev before). */
  int64_t before = col_rev(res, 1);
  if (rev >= 0)
    op_wait(p, op, STORE_OK, rev);
  else if (before < 0)
    answer_now(op, STORE_NOT_FOUND, "%s", "no such SSH identity");
  else
    op_wait(p, op, STORE_STALE, before); /* retry on the newer view */
}

static void identity_params(const identity_t *id, char *json[3]) {
  cJSON *k = json_strings(id->keys, id->nkeys);
  cJSON *pr = json_strings(id->projects, id->nprojects);
  cJSON *t = json_strings(id->tags, id->ntags);
  json[0] = k ? cJSON_PrintUnformatted(k) : NULL;
  json[1] = pr ? cJSON_PrintUnformatted(pr) : NULL;
  json[2] = t ? cJSON_PrintUnformatted(t) : NULL;
  cJSON_Delete(k);
  cJSON_Delete(pr);
  cJSON_Delete(t);
}

static void send_write(store_pg_t *p, op_t *op, const char *sql, int n,
                       const char *const *params) {
  if (pg_conn_query(p->pg, sql, n, params, p->cfg.query_timeout_ms, on_written,
                    op) != 0)
    answer_now(op, STORE_UNAVAILABLE, "%s",
               "the database is unavailable: nothing changed, try again "
               "later");
}

static void pg_identity_write(store_t *s, op_kind_t kind, const identity_t *id,
                              int64_t base_rev, const char *token_id,
                              store_cb cb, void *ctx) {
  store_pg_t *p = (store_pg_t *)s;
  op_t *op = op_new(p, kind, cb, ctx);
  if (op == NULL || refuse_if_down(p, op) != 0)
    return;
  snprintf(op->id, sizeof(op->id), "%s", id->id);
  char *json[3], created[24], updated[24], rev[24];
  identity_params(id, json);
  if (json[0] == NULL || json[1] == NULL || json[2] == NULL) {
    answer_now(op, STORE_FAILED, "%s", "out of memory");
  } else if (kind == OP_CREATE) {
    snprintf(created, sizeof(created), "%" PRId64, id->created_at);
    snprintf(updated, sizeof(updated), "%" PRId64, id->updated_at);
    const char *params[] = {
        id->id,  id->name, id->description ? id->description : "", json[0],
        json[1], json[2],  id->match_all_tags ? "true" : "false",  created,
        updated, token_id};
    send_write(p, op, STORE_SQL_CREATE, 10, params);
  } else {
    snprintf(updated, sizeof(updated), "%" PRId64, id->updated_at);
    snprintf(rev, sizeof(rev), "%" PRId64, base_rev);
    const char *params[] = {
        id->id,   id->name, id->description ? id->description : "", json[0],
        json[1],  json[2],  id->match_all_tags ? "true" : "false",  updated,
        token_id, rev};
    send_write(p, op, STORE_SQL_UPDATE, 10, params);
  }
  for (int i = 0; i < 3; i++)
    free(json[i]);
}

static void pg_identity_create(store_t *s, const identity_t *id,
                               const char *token_id, store_cb cb, void *ctx) {
  pg_identity_write(s, OP_CREATE, id, 0, token_id, cb, ctx);
}

static void pg_identity_update(store_t *s, const identity_t *id,
                               int64_t base_rev, const char *token_id,
                               store_cb cb, void *ctx) {
  pg_identity_write(s, OP_UPDATE, id, base_rev, token_id, cb, ctx);
}

static void pg_identity_delete(store_t *s, const char *id, int64_t base_rev,
                               const char *token_id, store_cb cb, void *ctx) {
  store_pg_t *p = (store_pg_t *)s;
  op_t *op = op_new(p, OP_DELETE, cb, ctx);
  if (op == NULL || refuse_if_down(p, op) != 0)
    return;
  snprintf(op->id, sizeof(op->id), "%s", id);
  char rev[24];
  snprintf(rev, sizeof(rev), "%" PRId64, base_rev);
  const char *params[] = {id, rev, token_id};
  send_write(p, op, STORE_SQL_DELETE, 3, params);
}

static void pg_ssh_set(store_t *s, const char *project_id,
                       const char *service_id, int enabled,
                       const char *token_id, store_cb cb, void *ctx) {
  store_pg_t *p = (store_pg_t *)s;
  op_t *op = op_new(p, OP_SSH, cb, ctx);
  if (op == NULL || refuse_if_down(p, op) != 0)
    return;
  char target[2 * IDENTITY_NAME_MAX + 2];
  snprintf(target, sizeof(target), "%s/%s", project_id, service_id);
  const char *params[] = {
      project_id, service_id, enabled ? "true" : "false",
      token_id,   target,     enabled ? "enabled" : "disabled"};
  send_write(p, op, STORE_SQL_SSH, 6, params);
}

/* ---- audit ----------------------------------------------------------------
 */

static void on_audit(void *ctx, const PGresult *res, const char *err) {
  op_t *op = ctx;
  if (err != NULL || res == NULL) {
    op->audit_cb(op->ctx, STORE_UNAVAILABLE, NULL, 0,
                 err != NULL ? err : "closed");
    free(op);
    return;
  }
  int n = PQntuples(res);
  store_audit_t *recs = calloc((size_t)n + 1, sizeof(*recs));
  if (recs == NULL) {
    op->audit_cb(op->ctx, STORE_FAILED, NULL, 0, "out of memory");
    free(op);
    return;
  }
  for (int i = 0; i < n; i++)
    recs[i] = (store_audit_t){.at = strtoll(PQgetvalue(res, i, 0), NULL, 10),
                              .token_id = PQgetvalue(res, i, 1),
                              .action = PQgetvalue(res, i, 2),
                              .target = PQgetvalue(res, i, 3),
                              .detail = PQgetvalue(res, i, 4)};
  op->audit_cb(op->ctx, STORE_OK, recs, (size_t)n, "");
  free(recs);
  free(op);
}

static void pg_audit_list(store_t *s, size_t limit, store_audit_cb cb,
                          void *ctx) {
  store_pg_t *p = (store_pg_t *)s;
  char lim[24];
  if (!p->up || p->pg == NULL) {
    cb(ctx, STORE_UNAVAILABLE, NULL, 0, "the database is unavailable");
    return;
  }
  op_t *op = calloc(1, sizeof(*op));
  if (op == NULL) {
    cb(ctx, STORE_FAILED, NULL, 0, "out of memory");
    return;
  }
  op->p = p;
  op->kind = OP_AUDIT;
  op->audit_cb = cb;
  op->ctx = ctx;
  snprintf(lim, sizeof(lim), "%zu",
           limit > AUDIT_LIST_MAX ? (size_t)AUDIT_LIST_MAX : limit);
  const char *params[] = {lim};
  if (pg_conn_query(p->pg, STORE_SQL_AUDIT, 1, params, p->cfg.query_timeout_ms,
                    on_audit, op) != 0) {
    free(op);
    cb(ctx, STORE_UNAVAILABLE, NULL, 0, "the database is unavailable");
  }
}

/* ---- lifecycle ----------------------------------------------------------- */

static int pg_view_fresh(const store_t *s) {
  const store_pg_t *p = (const store_pg_t *)s;
  if (p->up)
    return 1;
  return p->base.view != NULL && p->ever_up &&
         now_ms(p) - p->down_since <= p->cfg.max_stale_ms;
}

/* The store's memory goes with its last timer. */
static void on_timer_closed(uv_handle_t *h) {
  store_pg_t *p = h->data;
  free(h);
  if (--p->timers > 0)
    return;
  state_free(p->base.view);
  free(p->dsn);
  free(p);
}

static void pg_close(store_t *s) {
  store_pg_t *p = (store_pg_t *)s;
  p->closed = 1;
  pg_conn_close(p->pg); /* fails the queued statements: answered above */
  p->pg = NULL;
  answer_waiting(p, 1);
  uv_close((uv_handle_t *)p->retry, on_timer_closed);
  uv_close((uv_handle_t *)p->heartbeat, on_timer_closed);
}

static const store_ops_t pg_ops = {
    .identity_create = pg_identity_create,
    .identity_update = pg_identity_update,
    .identity_delete = pg_identity_delete,
    .ssh_set = pg_ssh_set,
    .audit_list = pg_audit_list,
    .view_fresh = pg_view_fresh,
    .shared = 1,
    .close = pg_close,
};

store_t *store_open_postgres(uv_loop_t *loop, const store_config_t *cfg,
                             const store_hooks_t *hooks, const log_t *log,
                             void (*started)(void *ctx, const char *err),
                             void *started_ctx, char *err, size_t errlen) {
  store_pg_t *p = calloc(1, sizeof(*p));
  if (p == NULL || (p->base.view = state_new()) == NULL ||
      (p->dsn = strdup(cfg->dsn)) == NULL ||
      (p->retry = malloc(sizeof(*p->retry))) == NULL ||
      (p->heartbeat = malloc(sizeof(*p->heartbeat))) == NULL) {
    snprintf(err, errlen, "out of memory");
    goto fail;
  }
  p->base.ops = &pg_ops;
  p->base.loop = loop;
  p->base.log = log;
  if (hooks != NULL)
    p->base.hooks = *hooks;
  p->base.stats.backend = "postgres";
  p->cfg = *cfg;
  p->cfg.dsn = NULL; /* the copy in p->dsn is the one kept */
  p->started = started;
  p->started_ctx = started_ctx;
  pg_dsn_describe(cfg->dsn, p->where, sizeof(p->where));
  uv_timer_init(loop, p->retry);
  uv_timer_init(loop, p->heartbeat);
  p->timers = 2;
  p->retry->data = p->heartbeat->data = p;
  uv_timer_start(p->heartbeat, on_heartbeat, HEARTBEAT_MS, HEARTBEAT_MS);
  p->pg = pg_conn_start(
      loop, p->dsn, cfg->connect_timeout_ms,
      &(pg_hooks_t){
          .ready = on_ready, .lost = on_lost, .notify = on_notify, .ctx = p},
      err, errlen);
  if (p->pg == NULL) {
    /* A DSN that does not even parse: an error now, not a retry. */
    uv_close((uv_handle_t *)p->retry, on_timer_closed);
    uv_close((uv_handle_t *)p->heartbeat, on_timer_closed);
    return NULL;
  }
  return &p->base;
fail:
  if (p != NULL) {
    state_free(p->base.view);
    free(p->dsn);
    free(p->retry);
    free(p->heartbeat);
    free(p);
  }
  return NULL;
}
