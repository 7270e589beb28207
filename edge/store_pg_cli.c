/* Blocking PostgreSQL operations of the one-shot commands. See
 * store_pg_cli.h. */
#include "edge/store_pg_cli.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>

#include "base/file.h"
#include "base/json.h"
#include "edge/pg.h"
#include "edge/store_sql.h"

#define MSG_SIZE 512

/* One line of a libpq message, "what: message". */
static int fail(char *err, size_t errlen, const char *what, const char *msg) {
  char line[MSG_SIZE];
  snprintf(line, sizeof(line), "%s", msg != NULL && *msg ? msg : "failed");
  for (char *p = line; *p; p++)
    if (*p == '\n' || *p == '\r' || *p == '\t')
      *p = ' ';
  size_t n = strlen(line);
  while (n > 0 && line[n - 1] == ' ')
    line[--n] = '\0';
  snprintf(err, errlen, "%s: %s", what, line);
  return -1;
}

static void quiet_notice(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

/* Connect with a bound on the time (libpq's connect_timeout is in whole
 * seconds, at least 2) and on every statement (statement_timeout). */
static PGconn *connect_db(const char *dsn, unsigned timeout_ms, char *err,
                          size_t errlen) {
  char where[256], secs[16], ms[64];
  const char *keys[] = {"dbname", "connect_timeout", "options", NULL};
  unsigned s = (timeout_ms + 999) / 1000;
  snprintf(secs, sizeof(secs), "%u", s < 2 ? 2 : s);
  snprintf(ms, sizeof(ms), "-c statement_timeout=%u", timeout_ms);
  const char *vals[] = {dsn, secs, ms, NULL};
  pg_dsn_describe(dsn, where, sizeof(where));
  /* expand_dbname: the DSN is parsed as a connection string and the other
   * keys are added; a key set in the DSN itself wins. */
  PGconn *c = PQconnectdbParams(keys, vals, 1);
  if (c == NULL) {
    snprintf(err, errlen, "PostgreSQL at %s: out of memory", where);
    return NULL;
  }
  /* NOTICEs ("relation already exists, skipping") are not ours to show. */
  PQsetNoticeProcessor(c, quiet_notice, NULL);
  if (PQstatus(c) != CONNECTION_OK) {
    char what[300];
    snprintf(what, sizeof(what), "PostgreSQL at %s", where);
    fail(err, errlen, what, PQerrorMessage(c));
    PQfinish(c);
    return NULL;
  }
  return c;
}

/* Run a statement; 0 with *res (PQclear it), or -1 with err. */
static int exec_params(PGconn *c, const char *sql, int n,
                       const char *const *params, PGresult **res, char *err,
                       size_t errlen, const char *what) {
  /* Without parameters, PQexec: a migration is several statements. */
  PGresult *r = n > 0 ? PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0)
                      : PQexec(c, sql);
  ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    fail(err, errlen, what, r ? PQresultErrorMessage(r) : PQerrorMessage(c));
    PQclear(r);
    return -1;
  }
  if (res != NULL)
    *res = r;
  else
    PQclear(r);
  return 0;
}

static int exec_sql(PGconn *c, const char *sql, char *err, size_t errlen,
                    const char *what) {
  return exec_params(c, sql, 0, NULL, NULL, err, errlen, what);
}

static int rollback(PGconn *c) {
  PQclear(PQexec(c, "ROLLBACK"));
  return -1;
}

/* Take the migrate lock in the open transaction. Waiting for it is waiting
 * for another edge's whole migration or import, many statements long: that
 * wait gets MIGRATE_LOCK_WAIT_MS, the statements after it timeout_ms again. */
#define MIGRATE_LOCK_WAIT_MS 120000
static int take_migrate_lock(PGconn *c, unsigned timeout_ms, char *err,
                             size_t errlen) {
  char wait[64], back[64];
  snprintf(wait, sizeof(wait), "SET LOCAL statement_timeout = %u",
           timeout_ms > MIGRATE_LOCK_WAIT_MS ? timeout_ms
                                             : MIGRATE_LOCK_WAIT_MS);
  snprintf(back, sizeof(back), "SET LOCAL statement_timeout = %u", timeout_ms);
  if (exec_sql(c, wait, err, errlen, "setting the lock wait") != 0 ||
      exec_sql(c, "SELECT pg_advisory_xact_lock(" STORE_SQL_LOCK ")", err,
               errlen, "taking the migrate lock") != 0 ||
      exec_sql(c, back, err, errlen, "setting the statement timeout") != 0)
    return -1;
  return 0;
}

/* The schema version, in a transaction that holds the migrate lock. */
static int locked_version(PGconn *c, unsigned timeout_ms, int *version,
                          char *err, size_t errlen) {
  PGresult *r;
  if (exec_sql(c, "BEGIN", err, errlen, "BEGIN") != 0 ||
      take_migrate_lock(c, timeout_ms, err, errlen) != 0 ||
      exec_sql(c, STORE_SQL_SCHEMA_TABLE, err, errlen,
               "creating wsmux_schema") != 0 ||
      exec_params(c, STORE_SQL_SCHEMA_VERSION, 0, NULL, &r, err, errlen,
                  "reading the schema version") != 0)
    return rollback(c);
  *version = atoi(PQgetvalue(r, 0, 0));
  PQclear(r);
  if (*version > STORE_SQL_VERSION) {
    snprintf(err, errlen,
             "the database schema is version %d, newer than this wsmux-edge "
             "knows (version %d): upgrade wsmux-edge",
             *version, STORE_SQL_VERSION);
    return rollback(c);
  }
  return 0;
}

int store_pg_migrate(const char *dsn, unsigned timeout_ms, int *from, int *to,
                     char *err, size_t errlen) {
  PGconn *c = connect_db(dsn, timeout_ms, err, errlen);
  int v = 0, rc = 0;
  if (c == NULL)
    return -1;
  *from = *to = -1;
  /* One transaction per version: a failure keeps the versions before it. */
  for (;;) {
    if (locked_version(c, timeout_ms, &v, err, errlen) != 0) {
      rc = -1;
      break;
    }
    if (*from < 0)
      *from = v;
    if (v == STORE_SQL_VERSION) {
      exec_sql(c, "COMMIT", err, errlen, "COMMIT");
      break;
    }
    char what[64], ver[16];
    snprintf(what, sizeof(what), "migration %d", v + 1);
    snprintf(ver, sizeof(ver), "%d", v + 1);
    const char *params[] = {ver};
    if (exec_sql(c, store_sql_migrations[v], err, errlen, what) != 0 ||
        exec_params(c, "INSERT INTO wsmux_schema (version) VALUES ($1::int)", 1,
                    params, NULL, err, errlen, what) != 0 ||
        exec_sql(c, "COMMIT", err, errlen, what) != 0) {
      rollback(c);
      rc = -1;
      break;
    }
  }
  *to = v;
  PQfinish(c);
  return rc;
}

/* The schema must be exactly this edge's. */
static int check_version(PGconn *c, char *err, size_t errlen) {
  PGresult *r = PQexec(c, STORE_SQL_SCHEMA_VERSION);
  int ok = r != NULL && PQresultStatus(r) == PGRES_TUPLES_OK;
  int v = ok ? atoi(PQgetvalue(r, 0, 0)) : -1;
  if (!ok && strcmp(pg_sqlstate(r), "42P01") == 0)
    snprintf(err, errlen,
             "the database has no wsmux schema: run `wsmux-edge "
             "migrate --config FILE` first");
  else if (!ok)
    fail(err, errlen, "reading the schema version",
         r ? PQresultErrorMessage(r) : PQerrorMessage(c));
  else if (v != STORE_SQL_VERSION)
    snprintf(err, errlen,
             "the database schema is version %d; this wsmux-edge needs "
             "version %d%s",
             v, STORE_SQL_VERSION,
             v < STORE_SQL_VERSION ? ": run `wsmux-edge migrate --config FILE`"
                                   : ": upgrade wsmux-edge");
  PQclear(r);
  return ok && v == STORE_SQL_VERSION ? 0 : -1;
}

static char *strings_json(char *const *v, size_t n) {
  cJSON *a = json_strings(v, n);
  char *s = a != NULL ? cJSON_PrintUnformatted(a) : NULL;
  cJSON_Delete(a);
  return s;
}

static int import_identity(PGconn *c, const identity_t *id, char *err,
                           size_t errlen) {
  char *keys = strings_json(id->keys, id->nkeys);
  char *projects = strings_json(id->projects, id->nprojects);
  char *tags = strings_json(id->tags, id->ntags);
  char created[24], updated[24], what[200];
  int rc = -1;
  snprintf(created, sizeof(created), "%" PRId64, id->created_at);
  snprintf(updated, sizeof(updated), "%" PRId64, id->updated_at);
  snprintf(what, sizeof(what), "importing SSH identity %s", id->name);
  const char *params[] = {
      id->id,   id->name, id->description ? id->description : "", keys,
      projects, tags,     id->match_all_tags ? "true" : "false",  created,
      updated};
  if (keys == NULL || projects == NULL || tags == NULL)
    snprintf(err, errlen, "out of memory");
  else
    rc = exec_params(c,
                     "INSERT INTO wsmux_identities (id, name, description, "
                     "keys, projects, tags, match_all_tags, created_at, "
                     "updated_at, rev) VALUES ($1, $2, $3, $4::jsonb, "
                     "$5::jsonb, $6::jsonb, $7::boolean, $8::bigint, "
                     "$9::bigint, (SELECT value FROM wsmux_revision))",
                     9, params, NULL, err, errlen, what);
  free(keys);
  free(projects);
  free(tags);
  return rc;
}

static int already_imported(PGconn *c, char *err, size_t errlen) {
  PGresult *r;
  if (exec_params(c,
                  "SELECT source, " STORE_SQL_TIME(
                      "imported_at") " FROM wsmux_imports LIMIT 1",
                  0, NULL, &r, err, errlen, "reading wsmux_imports") != 0)
    return -1;
  int n = PQntuples(r);
  if (n > 0)
    snprintf(err, errlen,
             "a state file was already imported into this database (%s, at "
             "%s): nothing imported",
             PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
  PQclear(r);
  return n > 0 ? -1 : 0;
}

int store_pg_import(const char *dsn, unsigned timeout_ms, const state_t *st,
                    const char *source, const char *token_id, char *err,
                    size_t errlen) {
  PGconn *c = connect_db(dsn, timeout_ms, err, errlen);
  char now[24], nid[24], nsvc[24];
  if (c == NULL)
    return -1;
  snprintf(now, sizeof(now), "%" PRId64, (int64_t)time(NULL));
  snprintf(nid, sizeof(nid), "%zu", st->nidentities);
  snprintf(nsvc, sizeof(nsvc), "%zu", st->nssh);
  int rc = -1;
  if (exec_sql(c, "BEGIN", err, errlen, "BEGIN") != 0 ||
      take_migrate_lock(c, timeout_ms, err, errlen) != 0 ||
      check_version(c, err, errlen) != 0 ||
      already_imported(c, err, errlen) != 0 ||
      exec_sql(c, "UPDATE wsmux_revision SET value = value + 1", err, errlen,
               "bumping the revision") != 0)
    goto done;
  for (size_t i = 0; i < st->nidentities; i++)
    if (import_identity(c, &st->identities[i], err, errlen) != 0)
      goto done;
  for (size_t i = 0; i < st->nssh; i++) {
    const state_ssh_t *w = &st->ssh[i];
    const char *params[] = {w->project_id, w->service_id,
                            w->ssh_enabled ? "true" : "false"};
    if (exec_params(c,
                    "INSERT INTO wsmux_service_ssh VALUES ($1, $2, "
                    "$3::boolean, (SELECT value FROM wsmux_revision)) ON "
                    "CONFLICT (project_id, service_id) DO UPDATE SET "
                    "ssh_enabled = EXCLUDED.ssh_enabled, rev = EXCLUDED.rev",
                    3, params, NULL, err, errlen,
                    "importing an SSH switch") != 0)
      goto done;
  }
  const char *imp[] = {source, now, nid, nsvc, token_id};
  if (exec_params(c,
                  "INSERT INTO wsmux_imports VALUES ($1, $2::bigint, "
                  "$3::integer, $4::integer)",
                  4, imp, NULL, err, errlen, "recording the import") != 0 ||
      exec_params(c,
                  "INSERT INTO wsmux_audit (at, token_id, action, target, "
                  "detail) VALUES ($2::bigint, $5, 'state.import', $1, "
                  "$3 || ' identities, ' || $4 || ' SSH switches')",
                  5, imp, NULL, err, errlen, "recording the import") != 0 ||
      exec_sql(c,
               "SELECT pg_notify('" STORE_SQL_CHANNEL
               "', value::text) FROM wsmux_revision",
               err, errlen, "notifying the edges") != 0 ||
      exec_sql(c, "COMMIT", err, errlen, "COMMIT") != 0)
    goto done;
  rc = 0;
done:
  if (rc != 0)
    rollback(c);
  PQfinish(c);
  return rc;
}

int store_pg_load(const char *dsn, unsigned timeout_ms, state_t **out,
                  char *err, size_t errlen) {
  PGconn *c = connect_db(dsn, timeout_ms, err, errlen);
  PGresult *r = NULL;
  *out = NULL;
  if (c == NULL)
    return -1;
  int rc = -1;
  int64_t rev;
  char perr[MSG_SIZE];
  if (check_version(c, err, errlen) == 0 &&
      exec_params(c, STORE_SQL_SNAPSHOT, 0, NULL, &r, err, errlen,
                  "reading the state") == 0) {
    if (store_sql_snapshot(r, &rev, out, perr, sizeof(perr)) == 0)
      rc = 0;
    else
      snprintf(err, errlen, "the database's state is invalid: %s", perr);
    PQclear(r);
  }
  PQfinish(c);
  return rc;
}

/* Make cache_path hold st (mode 0644, like the state file: public keys
 * only). Best effort: a cache that cannot be written costs nothing now. */
static void cache_update(const char *cache_path, const state_t *st) {
  size_t len = 0, old_len = 0;
  char *text = state_serialize(st, &len), *old = NULL, err[MSG_SIZE];
  if (text == NULL)
    return;
  if (file_read(cache_path, 16u << 20, FILE_READ_MISSING_OK, &old, &old_len,
                err, sizeof(err)) == FILE_READ_OK &&
      old_len == len && memcmp(old, text, len) == 0)
    utimes(cache_path, NULL); /* same state, checked just now */
  else
    file_write_atomic(cache_path, text, len, 0644, 0, err, sizeof(err));
  free(old);
  free(text);
}

int store_pg_load_cached(const char *dsn, unsigned timeout_ms,
                         const char *cache_path, unsigned max_stale_ms,
                         state_t **out, long *stale, char *err, size_t errlen) {
  char why[MSG_SIZE], cerr[MSG_SIZE];
  struct stat st;
  *stale = 0;
  if (store_pg_load(dsn, timeout_ms, out, why, sizeof(why)) == 0) {
    cache_update(cache_path, *out);
    return 0;
  }
  if (stat(cache_path, &st) != 0) {
    snprintf(err, errlen, "%s; and no cached state (%s)", why, cache_path);
    return -1;
  }
  long age = (long)difftime(time(NULL), st.st_mtime) * 1000;
  if (age < 0)
    age = 0;
  if ((unsigned long)age > max_stale_ms) {
    snprintf(err, errlen,
             "%s; and the cached state %s is %ld s old, more than maxStaleMs",
             why, cache_path, age / 1000);
    return -1;
  }
  if (state_load(cache_path, out, cerr, sizeof(cerr)) != 0) {
    snprintf(err, errlen, "%s; and the cache is unusable: %s", why, cerr);
    return -1;
  }
  *stale = age;
  snprintf(err, errlen, "%s", why);
  return 0;
}
