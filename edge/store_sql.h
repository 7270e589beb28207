/*
 * Private to the postgres backend (edge/store_pg.c) and its blocking
 * helpers (edge/migrate.c): the schema's migrations and the statements.
 *
 * Every write is one statement, so it is atomic without an explicit
 * transaction: it bumps the revision (whose row lock also orders the
 * writers), changes the row, appends the audit record and NOTIFYs
 * STORE_SQL_CHANNEL with the new revision, which PostgreSQL delivers to
 * every listening edge at commit.
 */
#ifndef WSMUX_STORE_SQL_H
#define WSMUX_STORE_SQL_H

#include <libpq-fe.h>
#include <stdint.h>

#include "edge/state.h"

#define STORE_SQL_CHANNEL "wsmux_changes"
/* pg_advisory_xact_lock key of `wsmux-edge migrate` ("wsmx"). */
#define STORE_SQL_LOCK "2004316024"

/* The schema versions this edge knows: migration N brings version N-1 to
 * N. An edge runs against exactly STORE_SQL_VERSION. */
#define STORE_SQL_VERSION 1

static const char *const store_sql_migrations[STORE_SQL_VERSION] = {
    /* 1: identities, SSH switches, audit, import marker. */
    "CREATE TABLE wsmux_revision ("
    "  one boolean PRIMARY KEY DEFAULT true CHECK (one),"
    "  value bigint NOT NULL);"
    "INSERT INTO wsmux_revision VALUES (true, 0);"
    "CREATE TABLE wsmux_identities ("
    "  id text PRIMARY KEY,"
    "  name text NOT NULL UNIQUE,"
    "  description text NOT NULL,"
    "  keys jsonb NOT NULL,"
    "  projects jsonb NOT NULL,"
    "  tags jsonb NOT NULL,"
    "  match_all_tags boolean NOT NULL,"
    "  created_at bigint NOT NULL,"
    "  updated_at bigint NOT NULL,"
    "  seq bigserial NOT NULL,"
    "  rev bigint NOT NULL);"
    "CREATE TABLE wsmux_service_ssh ("
    "  project_id text NOT NULL,"
    "  service_id text NOT NULL,"
    "  ssh_enabled boolean NOT NULL,"
    "  rev bigint NOT NULL,"
    "  PRIMARY KEY (project_id, service_id));"
    "CREATE TABLE wsmux_audit ("
    "  seq bigserial PRIMARY KEY,"
    "  at bigint NOT NULL,"
    "  token_id text NOT NULL,"
    "  action text NOT NULL,"
    "  target text NOT NULL,"
    "  detail text NOT NULL);"
    "CREATE TABLE wsmux_imports ("
    "  source text NOT NULL,"
    "  imported_at bigint NOT NULL,"
    "  identities integer NOT NULL,"
    "  services integer NOT NULL);",
};

/* The applied versions, created by the first migrate. */
#define STORE_SQL_SCHEMA_TABLE                                                 \
  "CREATE TABLE IF NOT EXISTS wsmux_schema ("                                  \
  "  version integer PRIMARY KEY,"                                             \
  "  applied_at timestamptz NOT NULL DEFAULT now())"

/* One row: the schema version, 0 when none is applied. Fails with
 * undefined_table (42P01) on a database never migrated. */
#define STORE_SQL_SCHEMA_VERSION                                               \
  "SELECT coalesce(max(version), 0) FROM wsmux_schema"

#define STORE_SQL_TIME(col)                                                    \
  "to_char(to_timestamp(" col ") AT TIME ZONE 'UTC', "                         \
  "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* The whole view in one statement, so one snapshot: the revision, the
 * identities in the state file's JSON form (edge/state.h) in creation
 * order with their revs alongside, and the SSH switches. */
#define STORE_SQL_SNAPSHOT                                                     \
  "SELECT (SELECT value FROM wsmux_revision),"                                 \
  " (SELECT coalesce(json_agg(json_build_object("                              \
  "   'id', id, 'name', name, 'description', description, 'keys', keys,"       \
  "   'projects', projects, 'tags', tags, 'matchAllTags', match_all_tags,"     \
  "   'createdAt', " STORE_SQL_TIME(                                           \
      "created_at") ","                                                        \
                    "   'updatedAt', " STORE_SQL_TIME(                         \
                        "updated_at") ") ORDER BY seq), '[]')"                 \
                                      "  FROM wsmux_identities),"              \
                                      " (SELECT coalesce(json_agg(rev ORDER "  \
                                      "BY seq), '[]') FROM wsmux_identities)," \
                                      " (SELECT "                              \
                                      "coalesce(json_agg(json_build_object('"  \
                                      "projectId', project_id,"                \
                                      "   'serviceId', service_id, "           \
                                      "'sshEnabled', ssh_enabled)"             \
                                      "   ORDER BY project_id, service_id), "  \
                                      "'[]') FROM wsmux_service_ssh)"

#define STORE_SQL_REVISION "SELECT value FROM wsmux_revision"

#define STORE_SQL_BUMP                                                         \
  "WITH r AS (UPDATE wsmux_revision SET value = value + 1 RETURNING value)"

/* When an audit record is made: the database's clock, one for every edge. */
#define STORE_SQL_NOW "extract(epoch FROM now())::bigint"

/* $1 id, $2 name, $3 description, $4 keys, $5 projects, $6 tags (JSON
 * arrays), $7 matchAllTags, $8 createdAt, $9 updatedAt (Unix seconds),
 * $10 the token id. Returns the new rev. */
#define STORE_SQL_CREATE                                                       \
  STORE_SQL_BUMP                                                               \
  ","                                                                          \
  " i AS (INSERT INTO wsmux_identities (id, name, description, keys,"          \
  "   projects, tags, match_all_tags, created_at, updated_at, rev)"            \
  "   SELECT $1, $2, $3, $4::jsonb, $5::jsonb, $6::jsonb, $7::boolean,"        \
  "   $8::bigint, $9::bigint, r.value FROM r RETURNING id, name, rev),"        \
  " a AS (INSERT INTO wsmux_audit (at, token_id, action, target, detail)"      \
  "   SELECT " STORE_SQL_NOW ", $10, 'identity.create', id, name FROM i)"      \
  " SELECT rev, pg_notify('" STORE_SQL_CHANNEL "', rev::text) FROM i"

/* $1 id, $2 name, $3 description, $4 keys, $5 projects, $6 tags, $7
 * matchAllTags, $8 updatedAt, $9 the token id, $10 the rev the change was
 * computed from. Returns (new rev, rev before): new rev NULL with a rev
 * before is STALE, both NULL is NOT_FOUND. */
#define STORE_SQL_UPDATE                                                       \
  STORE_SQL_BUMP                                                               \
  ","                                                                          \
  " u AS (UPDATE wsmux_identities SET name = $2, description = $3,"            \
  "   keys = $4::jsonb, projects = $5::jsonb, tags = $6::jsonb,"               \
  "   match_all_tags = $7::boolean, updated_at = $8::bigint,"                  \
  "   rev = (SELECT value FROM r)"                                             \
  "   WHERE id = $1 AND rev = $10::bigint RETURNING id, name, rev),"           \
  " a AS (INSERT INTO wsmux_audit (at, token_id, action, target, detail)"      \
  "   SELECT " STORE_SQL_NOW ", $9, 'identity.update', id, name FROM u)"       \
  " SELECT (SELECT rev FROM u),"                                               \
  "  (SELECT rev FROM wsmux_identities WHERE id = $1),"                        \
  "  (SELECT pg_notify('" STORE_SQL_CHANNEL "', rev::text) FROM u)"

/* $1 id, $2 the rev it was seen at, $3 token id. Returns (deleted rev, rev
 * before) like UPDATE. */
#define STORE_SQL_DELETE                                                       \
  STORE_SQL_BUMP                                                               \
  ","                                                                          \
  " d AS (DELETE FROM wsmux_identities WHERE id = $1 AND rev = $2::bigint"     \
  "   RETURNING id, name, (SELECT value FROM r) AS rev),"                      \
  " a AS (INSERT INTO wsmux_audit (at, token_id, action, target, detail)"      \
  "   SELECT " STORE_SQL_NOW ", $3, 'identity.delete', id, name FROM d)"       \
  " SELECT (SELECT rev FROM d),"                                               \
  "  (SELECT rev FROM wsmux_identities WHERE id = $1),"                        \
  "  (SELECT pg_notify('" STORE_SQL_CHANNEL "', rev::text) FROM d)"

/* $1 project, $2 service, $3 enabled, $4 token id, $5 "p/s", $6
 * "enabled"/"disabled". Returns the new rev. */
#define STORE_SQL_SSH                                                          \
  STORE_SQL_BUMP                                                               \
  ","                                                                          \
  " s AS (INSERT INTO wsmux_service_ssh (project_id, service_id,"              \
  "   ssh_enabled, rev) SELECT $1, $2, $3::boolean, r.value FROM r"            \
  "   ON CONFLICT (project_id, service_id) DO UPDATE SET"                      \
  "   ssh_enabled = EXCLUDED.ssh_enabled, rev = EXCLUDED.rev RETURNING "       \
  "rev),"                                                                      \
  " a AS (INSERT INTO wsmux_audit (at, token_id, action, target, detail)"      \
  "   SELECT " STORE_SQL_NOW ", $4, 'service.ssh', $5, $6 FROM s)"             \
  " SELECT rev, pg_notify('" STORE_SQL_CHANNEL "', rev::text) FROM s"

/* $1 limit. */
#define STORE_SQL_AUDIT                                                        \
  "SELECT at, token_id, action, target, detail FROM wsmux_audit"               \
  " ORDER BY seq DESC LIMIT $1::integer"

/* A STORE_SQL_SNAPSHOT row into a state (edge/store_pg.c): the JSON parts
 * go through the state file's parser, so the database is held to the same
 * rules; each identity gets its rev. 0, or -1 with err. */
int store_sql_snapshot(const PGresult *res, int64_t *rev, state_t **out,
                       char *err, size_t errlen);

#endif
