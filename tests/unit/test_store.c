/*
 * The store's conformance suite (edge/store.h): the same cases against
 * each backend, chosen by the first argument:
 *
 *   test_store file       the state file, in a temporary directory;
 *   test_store postgres   a real PostgreSQL, reached through the DSN in
 *                         WSMUX_TEST_PG_DSN (a maintenance database: each
 *                         case creates and migrates a database of its own;
 *                         tests/e2e/store_conformance.sh starts the server).
 *
 * Every case runs the store on a real libuv loop, as the edge does. The
 * cases marked "postgres" test what only a shared database has: several
 * edges, writers racing, a view gone stale, migrations and the import.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "edge/store.h"
#include "edge/store_pg_cli.h"

#define TOKEN_ID "ci"
#define KEY1                                                                   \
  "ssh-ed25519 "                                                               \
  "AAAAC3NzaC1lZDI1NTE5AAAAIIkWlsat2POOFofVeSiV0pyO+A8ispB4N6S6UwzZgFKl"
#define T0 1795608000 /* 2026-11-25T12:00:00Z */
#define WAIT_MS 10000

static int use_pg;
static const char *pg_admin_dsn;
static int db_counter;

typedef struct {
  uv_loop_t loop;
  char dir[64];
  char dsn[256];
  store_t *store;
  /* hooks */
  int changes;
  int downs, ups;
  /* the last answer */
  int answered;
  store_status_t status;
  char message[512];
  identity_t got;
  /* audit */
  store_audit_t audit[16];
  char audit_text[16][5][160];
  size_t naudit;
  /* postgres start-up */
  int started;
  char start_error[512];
} fx_t;

/* ---- the loop ------------------------------------------------------------ */

static void on_deadline(uv_timer_t *t) {
  *(int *)t->data = 1;
}

/* Run the loop until *flag is set, failing after WAIT_MS. */
static void run_until(fx_t *f, const int *flag) {
  uv_timer_t t;
  int late = 0;
  uv_timer_init(&f->loop, &t);
  t.data = &late;
  uv_timer_start(&t, on_deadline, WAIT_MS, 0);
  while (!*flag && !late)
    uv_run(&f->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  if (!*flag)
    fail_msg("no answer within %d ms", WAIT_MS);
}

/* ---- hooks and answers --------------------------------------------------- */

static void on_changed(void *ctx, const state_t *before, const state_t *after) {
  fx_t *f = ctx;
  assert_non_null(before);
  assert_non_null(after);
  f->changes++;
}

static void on_availability(void *ctx, int up, const char *why) {
  fx_t *f = ctx;
  assert_non_null(why);
  if (up)
    f->ups++;
  else
    f->downs++;
}

static void on_answer(void *ctx, const store_result_t *r) {
  fx_t *f = ctx;
  assert_int_equal(f->answered, 0); /* exactly once */
  f->answered = 1;
  f->status = r->status;
  snprintf(f->message, sizeof f->message, "%s", r->message);
  identity_clear(&f->got);
  if (r->identity != NULL)
    assert_int_equal(identity_copy(&f->got, r->identity), 0);
}

static void on_audit(void *ctx, store_status_t st, const store_audit_t *recs,
                     size_t n, const char *message) {
  fx_t *f = ctx;
  f->answered = 1;
  f->status = st;
  snprintf(f->message, sizeof f->message, "%s", message);
  f->naudit = n < 16 ? n : 16;
  for (size_t i = 0; i < f->naudit; i++) {
    char(*t)[160] = f->audit_text[i];
    snprintf(t[0], 160, "%s", recs[i].token_id);
    snprintf(t[1], 160, "%s", recs[i].action);
    snprintf(t[2], 160, "%s", recs[i].target);
    snprintf(t[3], 160, "%s", recs[i].detail);
    f->audit[i] = (store_audit_t){.at = recs[i].at,
                                  .token_id = t[0],
                                  .action = t[1],
                                  .target = t[2],
                                  .detail = t[3]};
  }
}

static void on_started(void *ctx, const char *err) {
  fx_t *f = ctx;
  f->started = 1;
  if (err != NULL)
    snprintf(f->start_error, sizeof f->start_error, "%s", err);
}

/* ---- databases ----------------------------------------------------------- */

static void pg_exec(const char *dsn, const char *sql) {
  PGconn *c = PQconnectdb(dsn);
  if (PQstatus(c) != CONNECTION_OK)
    fail_msg("%s", PQerrorMessage(c));
  PGresult *r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK &&
      PQresultStatus(r) != PGRES_TUPLES_OK)
    fail_msg("%s: %s", sql, PQresultErrorMessage(r));
  PQclear(r);
  PQfinish(c);
}

/* A database of this case's own, migrated unless raw. */
static void new_database(fx_t *f, int raw) {
  char sql[128], err[512], name[64];
  int from, to;
  snprintf(name, sizeof name, "store_%d_%d", (int)getpid(), ++db_counter);
  snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
  pg_exec(pg_admin_dsn, sql);
  snprintf(f->dsn, sizeof f->dsn, "%s dbname=%s", pg_admin_dsn, name);
  if (raw)
    return;
  if (store_pg_migrate(f->dsn, 5000, &from, &to, err, sizeof err) != 0)
    fail_msg("migrate: %s", err);
  assert_int_equal(from, 0);
  assert_int_equal(to, 1);
}

/* ---- opening ------------------------------------------------------------- */

static store_t *open_store(fx_t *f, const char *dsn, char *err, size_t errlen) {
  char sf[128], af[128];
  store_hooks_t h = {
      .changed = on_changed, .availability = on_availability, .ctx = f};
  snprintf(sf, sizeof sf, "%s/state.json", f->dir);
  snprintf(af, sizeof af, "%s/audit.jsonl", f->dir);
  store_config_t cfg = {.state_file = sf,
                        .audit_file = af,
                        .dsn = dsn,
                        .max_stale_ms = 2000,
                        .connect_timeout_ms = 2000,
                        .query_timeout_ms = 3000};
  if (!use_pg)
    return store_open_file(&f->loop, &cfg, &h, NULL, err, errlen);
  f->started = 0;
  f->start_error[0] = '\0';
  store_t *s =
      store_open_postgres(&f->loop, &cfg, &h, NULL, on_started, f, err, errlen);
  if (s == NULL)
    return NULL;
  run_until(f, &f->started);
  if (f->start_error[0] != '\0') {
    snprintf(err, errlen, "%s", f->start_error);
    store_close(s);
    uv_run(&f->loop, UV_RUN_NOWAIT); /* the fixture's store keeps it busy */
    return NULL;
  }
  return s;
}

static store_t *must_open(fx_t *f) {
  char err[512];
  store_t *s = open_store(f, f->dsn, err, sizeof err);
  if (s == NULL)
    fail_msg("%s", err);
  return s;
}

static int setup(void **state) {
  fx_t *f = calloc(1, sizeof *f);
  assert_non_null(f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  strcpy(f->dir, "/tmp/wsmux_store_XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  if (use_pg)
    new_database(f, 0);
  f->store = must_open(f);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx_t *f = *state;
  char path[128];
  store_close(f->store);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  identity_clear(&f->got);
  snprintf(path, sizeof path, "%s/state.json", f->dir);
  unlink(path);
  snprintf(path, sizeof path, "%s/audit.jsonl", f->dir);
  unlink(path);
  assert_int_equal(rmdir(f->dir), 0);
  free(f);
  return 0;
}

/* ---- writes -------------------------------------------------------------- */

static char *xstrdup(const char *s) {
  char *d = strdup(s);
  assert_non_null(d);
  return d;
}

static void make_identity(identity_t *id, const char *idstr, const char *name) {
  memset(id, 0, sizeof *id);
  id->id = xstrdup(idstr);
  id->name = xstrdup(name);
  id->description = xstrdup("test");
  id->keys = calloc(1, sizeof(char *));
  assert_non_null(id->keys);
  id->keys[0] = xstrdup(KEY1);
  id->nkeys = 1;
  id->created_at = id->updated_at = T0;
}

static store_status_t create(fx_t *f, store_t *s, const char *idstr,
                             const char *name) {
  identity_t id;
  make_identity(&id, idstr, name);
  f->answered = 0;
  store_identity_create(s, &id, TOKEN_ID, on_answer, f);
  identity_clear(&id);
  run_until(f, &f->answered);
  return f->status;
}

static const identity_t *find(const store_t *s, const char *id) {
  long i = state_find_identity(store_view(s), id);
  return i >= 0 ? &store_view(s)->identities[i] : NULL;
}

static store_status_t update(fx_t *f, store_t *s, const char *idstr,
                             const char *name, const char *desc,
                             int64_t base_rev) {
  identity_t id;
  make_identity(&id, idstr, name);
  free(id.description);
  id.description = xstrdup(desc);
  id.updated_at = T0 + 60;
  f->answered = 0;
  store_identity_update(s, &id, base_rev, TOKEN_ID, on_answer, f);
  identity_clear(&id);
  run_until(f, &f->answered);
  return f->status;
}

static store_status_t delete_id(fx_t *f, store_t *s, const char *idstr,
                                int64_t base_rev) {
  f->answered = 0;
  store_identity_delete(s, idstr, base_rev, TOKEN_ID, on_answer, f);
  run_until(f, &f->answered);
  return f->status;
}

static store_status_t set_ssh(fx_t *f, store_t *s, int on) {
  f->answered = 0;
  store_ssh_set(s, "p1", "web", on, TOKEN_ID, on_answer, f);
  run_until(f, &f->answered);
  return f->status;
}

static void list_audit(fx_t *f, size_t limit) {
  f->answered = 0;
  store_audit_list(f->store, limit, on_audit, f);
  run_until(f, &f->answered);
  assert_int_equal(f->status, STORE_OK);
}

/* ---- cases: every backend ------------------------------------------------ */

static void test_empty(void **state) {
  fx_t *f = *state;
  assert_int_equal(store_view(f->store)->nidentities, 0);
  assert_int_equal(store_view(f->store)->nssh, 0);
  assert_true(store_view_fresh(f->store));
  list_audit(f, 10);
  assert_int_equal(f->naudit, 0);
  store_stats_t st;
  store_stats(f->store, &st);
  assert_string_equal(st.backend, use_pg ? "postgres" : "file");
  assert_int_equal(st.up, 1);
}

static void test_create(void **state) {
  fx_t *f = *state;
  assert_int_equal(create(f, f->store, "idt-0000000000000001", "alice"),
                   STORE_OK);
  /* The answer is the identity as stored, and the view already has it. */
  assert_string_equal(f->got.id, "idt-0000000000000001");
  assert_string_equal(f->got.name, "alice");
  assert_string_equal(f->got.keys[0], KEY1);
  assert_int_equal(f->got.created_at, T0);
  const identity_t *v = find(f->store, "alice");
  assert_non_null(v);
  assert_string_equal(v->id, "idt-0000000000000001");
  assert_int_equal(f->changes, 1);
  list_audit(f, 10);
  assert_int_equal(f->naudit, 1);
  assert_string_equal(f->audit[0].token_id, TOKEN_ID);
  assert_string_equal(f->audit[0].action, "identity.create");
  assert_string_equal(f->audit[0].target, "idt-0000000000000001");
  assert_string_equal(f->audit[0].detail, "alice");
  assert_true(f->audit[0].at > T0);
}

static void test_create_conflict(void **state) {
  fx_t *f = *state;
  assert_int_equal(create(f, f->store, "idt-0000000000000001", "alice"),
                   STORE_OK);
  assert_int_equal(create(f, f->store, "idt-0000000000000002", "alice"),
                   STORE_CONFLICT);
  assert_non_null(strstr(f->message, "already used"));
  /* The same id under another name. */
  assert_int_equal(create(f, f->store, "idt-0000000000000001", "bob"),
                   STORE_CONFLICT);
  assert_int_equal(store_view(f->store)->nidentities, 1);
  assert_int_equal(f->changes, 1);
}

static void test_update(void **state) {
  fx_t *f = *state;
  create(f, f->store, "idt-0000000000000001", "alice");
  int64_t rev = find(f->store, "alice")->rev;
  assert_int_equal(
      update(f, f->store, "idt-0000000000000001", "alice2", "changed", rev),
      STORE_OK);
  assert_string_equal(f->got.name, "alice2");
  assert_string_equal(f->got.description, "changed");
  assert_int_equal(f->got.updated_at, T0 + 60);
  assert_null(find(f->store, "alice"));
  assert_non_null(find(f->store, "alice2"));
  list_audit(f, 10);
  assert_int_equal(f->naudit, 2);
  assert_string_equal(f->audit[0].action, "identity.update");
  assert_string_equal(f->audit[0].detail, "alice2");
}

static void test_update_conflict_and_missing(void **state) {
  fx_t *f = *state;
  create(f, f->store, "idt-0000000000000001", "alice");
  create(f, f->store, "idt-0000000000000002", "bob");
  int64_t rev = find(f->store, "bob")->rev;
  assert_int_equal(
      update(f, f->store, "idt-0000000000000002", "alice", "x", rev),
      STORE_CONFLICT);
  assert_non_null(find(f->store, "bob"));
  assert_int_equal(
      update(f, f->store, "idt-00000000000000ff", "carol", "x", rev),
      STORE_NOT_FOUND);
}

static void test_delete(void **state) {
  fx_t *f = *state;
  create(f, f->store, "idt-0000000000000001", "alice");
  int64_t rev = find(f->store, "alice")->rev;
  assert_int_equal(delete_id(f, f->store, "idt-0000000000000001", rev),
                   STORE_OK);
  assert_int_equal(store_view(f->store)->nidentities, 0);
  assert_int_equal(delete_id(f, f->store, "idt-0000000000000001", rev),
                   STORE_NOT_FOUND);
  list_audit(f, 10);
  assert_int_equal(f->naudit, 2);
  assert_string_equal(f->audit[0].action, "identity.delete");
  assert_string_equal(f->audit[0].detail, "alice");
}

static void test_ssh_switch(void **state) {
  fx_t *f = *state;
  assert_int_equal(set_ssh(f, f->store, 0), STORE_OK);
  const state_ssh_t *w = state_find_ssh(store_view(f->store), "p1", "web");
  assert_non_null(w);
  assert_int_equal(w->ssh_enabled, 0);
  assert_int_equal(set_ssh(f, f->store, 1), STORE_OK);
  w = state_find_ssh(store_view(f->store), "p1", "web");
  assert_int_equal(w->ssh_enabled, 1);
  assert_int_equal(store_view(f->store)->nssh, 1);
  list_audit(f, 1); /* the limit holds, newest first */
  assert_int_equal(f->naudit, 1);
  assert_string_equal(f->audit[0].action, "service.ssh");
  assert_string_equal(f->audit[0].target, "p1/web");
  assert_string_equal(f->audit[0].detail, "enabled");
  list_audit(f, 10);
  assert_int_equal(f->naudit, 2);
  assert_string_equal(f->audit[1].detail, "disabled");
}

/* What was written is what a restarted edge reads. */
static void test_reopen(void **state) {
  fx_t *f = *state;
  size_t n1, n2;
  create(f, f->store, "idt-0000000000000001", "alice");
  create(f, f->store, "idt-0000000000000002", "bob");
  set_ssh(f, f->store, 0);
  char *before = state_serialize(store_view(f->store), &n1);
  store_close(f->store);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  f->store = must_open(f);
  char *after = state_serialize(store_view(f->store), &n2);
  assert_string_equal(before, after);
  free(before);
  free(after);
}

/* ---- cases: postgres ------------------------------------------------------
 */

/* A change computed from an old view is refused, and the view is then
 * current: the caller applies the change again. */
static void test_pg_stale(void **state) {
  fx_t *f = *state;
  create(f, f->store, "idt-0000000000000001", "alice");
  int64_t old = find(f->store, "alice")->rev;
  assert_int_equal(
      update(f, f->store, "idt-0000000000000001", "alice", "one", old),
      STORE_OK);
  assert_int_equal(
      update(f, f->store, "idt-0000000000000001", "alice", "two", old),
      STORE_STALE);
  assert_string_equal(find(f->store, "alice")->description, "one");
  assert_true(find(f->store, "alice")->rev > old);
  assert_int_equal(delete_id(f, f->store, "idt-0000000000000001", old),
                   STORE_STALE);
  assert_non_null(find(f->store, "alice"));
}

typedef struct {
  fx_t *f;
  int answered;
  store_status_t status;
} race_t;

static void on_race(void *ctx, const store_result_t *r) {
  race_t *x = ctx;
  x->answered = 1;
  x->status = r->status;
}

/* Two edges on one database: each sees the other's writes within 1 s
 * (NOTIFY), and one name created through both at once is created once. */
static void test_pg_two_edges(void **state) {
  fx_t *f = *state;
  fx_t *g = calloc(1, sizeof *g);
  assert_non_null(g);
  /* The second edge shares f's loop, as two processes would share the
   * database: its hooks count into g. */
  memcpy(g->dir, f->dir, sizeof g->dir);
  char err[512];
  store_hooks_t h = {.changed = on_changed, .ctx = g};
  store_config_t cfg = {.dsn = f->dsn,
                        .max_stale_ms = 2000,
                        .connect_timeout_ms = 2000,
                        .query_timeout_ms = 3000};
  store_t *other = store_open_postgres(&f->loop, &cfg, &h, NULL, on_started, f,
                                       err, sizeof err);
  assert_non_null(other);
  f->started = 0;
  run_until(f, &f->started);
  assert_string_equal(f->start_error, "");

  uint64_t t0 = uv_now(&f->loop);
  assert_int_equal(create(f, f->store, "idt-0000000000000001", "alice"),
                   STORE_OK);
  while (find(other, "alice") == NULL && uv_now(&f->loop) - t0 < 1000)
    uv_run(&f->loop, UV_RUN_ONCE);
  assert_non_null(find(other, "alice"));
  assert_true(uv_now(&f->loop) - t0 < 1000);
  assert_int_equal(g->changes, 1);

  t0 = uv_now(&f->loop);
  store_ssh_set(other, "p1", "web", 0, TOKEN_ID, on_answer, f);
  f->answered = 0;
  run_until(f, &f->answered);
  while (state_find_ssh(store_view(f->store), "p1", "web") == NULL &&
         uv_now(&f->loop) - t0 < 1000)
    uv_run(&f->loop, UV_RUN_ONCE);
  assert_non_null(state_find_ssh(store_view(f->store), "p1", "web"));

  /* The race: both sent before either is answered. */
  identity_t a, b;
  make_identity(&a, "idt-00000000000000a1", "carol");
  make_identity(&b, "idt-00000000000000b2", "carol");
  race_t ra = {.f = f}, rb = {.f = f};
  store_identity_create(f->store, &a, TOKEN_ID, on_race, &ra);
  store_identity_create(other, &b, TOKEN_ID, on_race, &rb);
  identity_clear(&a);
  identity_clear(&b);
  run_until(f, &ra.answered);
  run_until(f, &rb.answered);
  assert_true((ra.status == STORE_OK && rb.status == STORE_CONFLICT) ||
              (ra.status == STORE_CONFLICT && rb.status == STORE_OK));

  store_close(other);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  free(g);
}

/* A database that cannot be reached is an error at start, which names the
 * server but never the DSN's password. */
static void test_pg_unreachable(void **state) {
  fx_t *f = *state;
  char err[512];
  store_t *s = open_store(f,
                          "host=127.0.0.1 port=1 user=wsmux dbname=x "
                          "password=hunter2secret",
                          err, sizeof err);
  assert_null(s);
  assert_non_null(strstr(err, "127.0.0.1:1/x"));
  assert_null(strstr(err, "hunter2secret"));
  s = open_store(f, "host=127.0.0.1 port=1 nonsense=2", err, sizeof err);
  assert_null(s);
  assert_non_null(strstr(err, "invalid PostgreSQL DSN"));
  uv_run(&f->loop, UV_RUN_NOWAIT);
}

static void test_pg_schema(void **state) {
  fx_t *f = *state;
  char err[512];
  int from, to;
  fx_t tmp = {0};
  memcpy(tmp.dir, f->dir, sizeof tmp.dir);
  new_database(&tmp, 1); /* never migrated */
  store_t *s = open_store(f, tmp.dsn, err, sizeof err);
  assert_null(s);
  assert_non_null(strstr(err, "no wsmux schema: run `wsmux-edge migrate"));
  /* migrate twice: the second is a no-op. */
  assert_int_equal(store_pg_migrate(tmp.dsn, 5000, &from, &to, err, sizeof err),
                   0);
  assert_int_equal(from, 0);
  assert_int_equal(to, 1);
  assert_int_equal(store_pg_migrate(tmp.dsn, 5000, &from, &to, err, sizeof err),
                   0);
  assert_int_equal(from, 1);
  assert_int_equal(to, 1);
  /* A newer schema than this edge knows. */
  pg_exec(tmp.dsn, "INSERT INTO wsmux_schema (version) VALUES (99)");
  s = open_store(f, tmp.dsn, err, sizeof err);
  assert_null(s);
  assert_non_null(strstr(err, "version 99, newer than this wsmux-edge knows "
                              "(version 1): upgrade wsmux-edge"));
  assert_int_equal(store_pg_migrate(tmp.dsn, 5000, &from, &to, err, sizeof err),
                   -1);
  assert_non_null(strstr(err, "newer than this wsmux-edge knows"));
  uv_run(&f->loop, UV_RUN_NOWAIT);
}

static void test_pg_import(void **state) {
  fx_t *f = *state;
  char err[512];
  static const char text[] =
      "{\"version\":1,\"identities\":[{\"id\":\"idt-0000000000000007\","
      "\"name\":\"dave\",\"keys\":[\"" KEY1 "\"],"
      "\"createdAt\":\"2026-11-25T12:00:00Z\","
      "\"updatedAt\":\"2026-11-25T12:00:00Z\"}],"
      "\"services\":[{\"projectId\":\"p1\",\"serviceId\":\"db\","
      "\"sshEnabled\":true}]}";
  state_t *st = NULL;
  assert_int_equal(state_parse(text, strlen(text), &st, err, sizeof err), 0);
  assert_int_equal(
      store_pg_import(f->dsn, 5000, st, "old.json", "migrate", err, sizeof err),
      0);
  /* The running store hears of it. */
  uint64_t t0 = uv_now(&f->loop);
  while (find(f->store, "dave") == NULL && uv_now(&f->loop) - t0 < 1000)
    uv_run(&f->loop, UV_RUN_ONCE);
  assert_non_null(find(f->store, "dave"));
  assert_non_null(state_find_ssh(store_view(f->store), "p1", "db"));
  /* Once only. */
  assert_int_equal(
      store_pg_import(f->dsn, 5000, st, "old.json", "migrate", err, sizeof err),
      -1);
  assert_non_null(strstr(err, "already imported into this database "
                              "(old.json, at "));
  state_free(st);
  state_t *loaded = NULL;
  assert_int_equal(store_pg_load(f->dsn, 5000, &loaded, err, sizeof err), 0);
  assert_int_equal(loaded->nidentities, 1);
  state_free(loaded);
  list_audit(f, 10);
  assert_string_equal(f->audit[0].action, "state.import");
}

int main(int argc, char **argv) {
  if (argc != 2 ||
      (strcmp(argv[1], "file") != 0 && strcmp(argv[1], "postgres") != 0)) {
    fprintf(stderr, "usage: test_store file|postgres\n");
    return 2;
  }
  use_pg = strcmp(argv[1], "postgres") == 0;
  if (use_pg && (pg_admin_dsn = getenv("WSMUX_TEST_PG_DSN")) == NULL) {
    fprintf(stderr, "test_store postgres: set WSMUX_TEST_PG_DSN (see "
                    "tests/e2e/store_conformance.sh)\n");
    return 2;
  }
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
  const struct CMUnitTest all[] = {
      T(test_empty),
      T(test_create),
      T(test_create_conflict),
      T(test_update),
      T(test_update_conflict_and_missing),
      T(test_delete),
      T(test_ssh_switch),
      T(test_reopen),
  };
  const struct CMUnitTest pg[] = {
      T(test_pg_stale),  T(test_pg_two_edges), T(test_pg_unreachable),
      T(test_pg_schema), T(test_pg_import),
  };
#undef T
  int failed = cmocka_run_group_tests_name(
      use_pg ? "store postgres" : "store file", all, NULL, NULL);
  if (use_pg)
    failed +=
        cmocka_run_group_tests_name("store postgres only", pg, NULL, NULL);
  return failed;
}
