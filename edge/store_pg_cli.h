/*
 * Blocking PostgreSQL operations for wsmux-edge's one-shot commands, which
 * have no loop to keep running: `migrate` (the schema), `migrate
 * --from-file` (importing a state file once) and `authorized-keys` (one
 * short query). The edge server itself uses edge/store_pg.c.
 *
 * Messages never contain the DSN.
 */
#ifndef WSMUX_STORE_PG_CLI_H
#define WSMUX_STORE_PG_CLI_H

#include <stddef.h>

#include "edge/state.h"

/* Bring the schema to this edge's version under an advisory lock, each
 * migration in its own transaction, so two edges migrating at once are
 * safe. *from and *to: the versions before and after (equal: nothing to
 * do). 0, or -1 with err (a schema newer than this edge knows included). */
int store_pg_migrate(const char *dsn, unsigned timeout_ms, int *from, int *to,
                     char *err, size_t errlen);

/* Import st (a state file, already parsed) once: its identities, SSH
 * switches, and an audit record "state.import" by token_id. Refused when
 * a state file was imported before (saying from where and when) or when
 * the schema is not this edge's. One transaction: all or nothing. */
int store_pg_import(const char *dsn, unsigned timeout_ms, const state_t *st,
                    const char *source, const char *token_id, char *err,
                    size_t errlen);

/* The current state (one snapshot query). 0 with *out, or -1 with err. */
int store_pg_load(const char *dsn, unsigned timeout_ms, state_t **out,
                  char *err, size_t errlen);

/*
 * store_pg_load() for `authorized-keys`, with a cache at cache_path (the
 * config's stateFile, unused otherwise with this store) so that logins go
 * on through a database outage, for as long as the edges do: each good
 * read refreshes the cache (rewritten when it changed, else touched);
 * when the database cannot be read, a cache younger than max_stale_ms is
 * used and *stale says how old it is (ms), else -1 with both reasons.
 */
int store_pg_load_cached(const char *dsn, unsigned timeout_ms,
                         const char *cache_path, unsigned max_stale_ms,
                         state_t **out, long *stale, char *err, size_t errlen);

#endif
