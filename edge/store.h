/*
 * The platform's mutable state behind one interface: SSH identities, the
 * SSH switch of each service and an audit record of every change. Two
 * backends:
 *   file      the state file (edge/state.h), one edge; writes are done
 *             before the call returns;
 *   postgres  a PostgreSQL database shared by every edge of a fleet
 *             (edge/store_pg.c): writes are one statement each, every edge
 *             LISTENs for changes and reloads its view.
 *
 * Reads are served from the view: the whole state as last read (or
 * written) by this edge, so authorizing a WebSocket or answering GET never
 * waits for the database. Writes are asynchronous: the callback runs once,
 * possibly before the call returns, and a STORE_OK is only reported once
 * the change is durable (renamed into place, or committed).
 *
 * Ownership: the store owns its view; store_view()'s pointer is valid
 * until control returns to the loop or the next write's callback.
 * store_close() completes on the loop (no hook or callback runs after it
 * returns; pending writes are answered STORE_UNAVAILABLE first).
 */
#ifndef WSMUX_STORE_H
#define WSMUX_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/log.h"
#include "edge/identity.h"
#include "edge/state.h"

typedef struct store store_t;

typedef enum {
  STORE_OK = 0,
  STORE_NOT_FOUND,   /* no such identity (any more) */
  STORE_CONFLICT,    /* the name is taken by another identity */
  STORE_STALE,       /* changed meanwhile by someone else: the view was
                        reloaded, apply the change again */
  STORE_UNAVAILABLE, /* the backend cannot be reached: nothing changed */
  STORE_FAILED,      /* the backend failed otherwise: nothing changed */
} store_status_t;

typedef struct {
  store_status_t status;
  const char *message;        /* why, for the client; "" when OK */
  const identity_t *identity; /* create/update OK: as stored (borrowed) */
} store_result_t;

typedef void (*store_cb)(void *ctx, const store_result_t *r);

/* One audit record: who (the API token's id), what, when. */
typedef struct {
  int64_t at;           /* Unix seconds */
  const char *token_id; /* the config's id of the token */
  const char *action;   /* "identity.create", "identity.update",
                           "identity.delete", "service.ssh" */
  const char *target;   /* an identity id, or "project/service" */
  const char *detail;   /* the identity's name, or "enabled"/"disabled" */
} store_audit_t;

typedef void (*store_audit_cb)(void *ctx, store_status_t status,
                               const store_audit_t *records, size_t n,
                               const char *message);

typedef struct {
  /* The view changed: this edge's write, or another edge's seen on a
   * reload. before is the old view (valid during the call). Optional. */
  void (*changed)(void *ctx, const state_t *before, const state_t *after);
  /* The backend went away (up == 0) or came back; why says how. Called
   * once per change of state, so the caller logs outages once. Optional. */
  void (*availability)(void *ctx, int up, const char *why);
  /* Worth a log line, not an error for the client. Optional. */
  void (*warn)(void *ctx, const char *msg);
  void *ctx;
} store_hooks_t;

/* The figures of /metrics. */
typedef struct {
  const char *backend; /* "file" or "postgres" */
  int up;              /* reachable now */
  uint64_t view_age_ms;
  uint64_t reloads;      /* views read from the backend */
  uint64_t write_ok;     /* writes that were made durable */
  uint64_t write_failed; /* writes refused by the backend's state */
  uint64_t outages;      /* times the backend went away */
} store_stats_t;

/* ---- opening ------------------------------------------------------------- */

typedef struct {
  const char *state_file; /* file: the state file (edge/state.h) */
  const char *audit_file; /* file: the audit log (JSON lines) */
  state_t *initial;       /* file: the state to start from (taken), instead
                             of loading state_file; tests and fuzzing */
  const char *dsn;        /* postgres: the connection string (secret) */
  unsigned max_stale_ms;  /* postgres: serve a view this old at most */
  unsigned connect_timeout_ms;
  unsigned query_timeout_ms;
} store_config_t;

/* The file backend: loads the state file now (a corrupt one is refused
 * with its byte offset). NULL with a message in err. */
store_t *store_open_file(uv_loop_t *loop, const store_config_t *cfg,
                         const store_hooks_t *hooks, const log_t *log,
                         char *err, size_t errlen);
/*
 * The postgres backend: connects, checks the schema version, LISTENs and
 * reads the view, then calls started(ctx, NULL); on the first failure
 * (unreachable, no or another schema version) started(ctx, why) instead,
 * and the caller closes the store. Once started, the store reconnects by
 * itself. NULL with a message in err when the DSN does not parse (run the
 * loop once more to release it).
 */
store_t *store_open_postgres(uv_loop_t *loop, const store_config_t *cfg,
                             const store_hooks_t *hooks, const log_t *log,
                             void (*started)(void *ctx, const char *err),
                             void *started_ctx, char *err, size_t errlen);

/* Replace the hooks given at opening (the edge takes them once it exists). */
void store_set_hooks(store_t *s, const store_hooks_t *hooks);

/* ---- the view ------------------------------------------------------------ */

const state_t *store_view(const store_t *s);
/* Whether the view may authorize new WebSockets: the backend is up, or
 * was within max_stale_ms. The file backend is always fresh. */
int store_view_fresh(const store_t *s);
/* Whether other edges share this store (and so serve its services too). */
int store_is_shared(const store_t *s);
void store_stats(const store_t *s, store_stats_t *out);

/* ---- writes -------------------------------------------------------------- */

/* Add id (its id, name, times set by the caller). CONFLICT when the name
 * or id is taken. */
void store_identity_create(store_t *s, const identity_t *id,
                           const char *token_id, store_cb cb, void *ctx);
/* Replace the identity with id->id by *id. base_rev is the rev of the
 * identity the change was computed from (STALE when it changed since). */
void store_identity_update(store_t *s, const identity_t *id, int64_t base_rev,
                           const char *token_id, store_cb cb, void *ctx);
void store_identity_delete(store_t *s, const char *id, int64_t base_rev,
                           const char *token_id, store_cb cb, void *ctx);
void store_ssh_set(store_t *s, const char *project_id, const char *service_id,
                   int enabled, const char *token_id, store_cb cb, void *ctx);
/* The newest records first, at most limit. */
void store_audit_list(store_t *s, size_t limit, store_audit_cb cb, void *ctx);

void store_close(store_t *s);

#endif
