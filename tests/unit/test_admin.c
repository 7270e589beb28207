/* Unit tests for the admin API router: every route and error of
 * docs/ADMIN_API.md, over a real platform and the file store (its state
 * file and audit log in a temporary directory), which answers at once. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "edge/admin.h"

#define TOKEN "secret" /* sha256 below */
#define SECRET_HEX                                                             \
  "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
#define KEY1                                                                   \
  "ssh-ed25519 "                                                               \
  "AAAAC3NzaC1lZDI1NTE5AAAAIIkWlsat2POOFofVeSiV0pyO+A8ispB4N6S6UwzZgFKl"
#define KEY2                                                                   \
  "ecdsa-sha2-nistp256 "                                                       \
  "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBF8c89kfgeAw2Dp37XaS+"  \
  "drhJk8JczVkbEriZReEdVrrSrFSI9WFKzA1xtOi26kT8aJZkQT8j9F31kvWWgq9UGs="
#define T0 1795608000 /* 2026-11-25T12:00:00Z */
/* Tokens named after their secrets: SHA-256 of "member", "deploy",
 * "viewer". */
#define MEMBER_HEX                                                             \
  "e31ab643c44f7a0ec824b59d1194d60dac334200d845e61d2d289daa0f087ea4"
#define DEPLOY_HEX                                                             \
  "b7bd55c11b781b0ccc43aa6e57f9dadf0660e9d1d4e27e0979ee43a407d454ae"
#define VIEWER_HEX                                                             \
  "d35ca5051b82ffc326a3b0b6574a9a3161dee16b9478a199ee39cd803ce5b799"

/* ' is swapped for " before use. */
static const char config[] =
    "{'listen':'127.0.0.1:0','plainWs':true,"
    "'tokens':[{'id':'ci','sha256':'" SECRET_HEX "','role':'admin'},"
    "{'id':'member','sha256':'" MEMBER_HEX "','role':'member'},"
    "{'id':'deploy','sha256':'" DEPLOY_HEX "','role':'admin',"
    "'projects':['p2']},"
    "{'id':'viewer','sha256':'" VIEWER_HEX "','role':'member',"
    "'projects':['p1']}],"
    "'projects':[{'id':'p1','name':'Demo'},{'id':'p2'}],"
    "'services':["
    "{'id':'web','projectId':'p1','name':'Web','tags':['prod','eu'],"
    "'sshEnabled':true,'upstream':'10.0.0.5:22'},"
    "{'id':'db','projectId':'p1','tags':['prod'],'upstream':'10.0.0.6:22'},"
    "{'id':'cron','projectId':'p1','kind':'job','sshEnabled':true},"
    "{'id':'web','projectId':'p2','sshEnabled':true,'upstream':'h:22'}]}";

typedef struct {
  char dir[64];
  uv_loop_t loop;
  platform_t *p;
  store_t *store;
  admin_t *a;
  admin_response_t r;
  int64_t now;
  const platform_service_t *disabled[8]; /* ssh_disabled hook calls */
  size_t ndisabled;
  int shared; /* what fake_open says of the store */
  char warned[512];
} fx_t;

static char *unquote(const char *s) {
  char *t = strdup(s);
  assert_non_null(t);
  for (char *c = t; *c; c++)
    if (*c == '\'')
      *c = '"';
  return t;
}

static void on_disabled(void *ctx, const platform_service_t *svc) {
  fx_t *f = ctx;
  assert_true(f->ndisabled < 8);
  f->disabled[f->ndisabled++] = svc;
}

static void on_warn(void *ctx, const char *msg) {
  fx_t *f = ctx;
  snprintf(f->warned, sizeof f->warned, "%s", msg);
}

/* What the edge does when the view changes: the switches apply. */
static void on_changed(void *ctx, const state_t *before, const state_t *after) {
  fx_t *f = ctx;
  (void)before;
  state_apply(after, f->p);
}

static int64_t fake_now(void *ctx) {
  return ((fx_t *)ctx)->now;
}

static store_t *open_store(fx_t *f, platform_t *p) {
  char err[512];
  store_config_t cfg = {.state_file = p->state_file,
                        .audit_file = p->audit_file};
  store_hooks_t sh = {.changed = on_changed, .warn = on_warn, .ctx = f};
  store_t *s = store_open_file(&f->loop, &cfg, &sh, NULL, err, sizeof err);
  if (s == NULL)
    fail_msg("%s", err);
  state_apply(store_view(s), p);
  return s;
}

static admin_t *make_admin(fx_t *f) {
  admin_hooks_t h = {.ssh_disabled = on_disabled, .now = fake_now, .ctx = f};
  f->store = open_store(f, f->p);
  admin_t *a = admin_new(f->p, f->store, &h);
  assert_non_null(a);
  return a;
}

static int setup(void **state) {
  fx_t *f = calloc(1, sizeof *f);
  char *text = unquote(config), err[512];

  assert_non_null(f);
  strcpy(f->dir, "/tmp/wsmux_admin_XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  if (platform_parse(text, strlen(text), f->dir, &f->p, err, sizeof err) != 0)
    fail_msg("%s", err);
  free(text);
  f->now = T0;
  assert_int_equal(uv_loop_init(&f->loop), 0);
  f->a = make_admin(f);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx_t *f = *state;
  char path[128];

  admin_response_clear(&f->r);
  admin_free(f->a);
  store_close(f->store);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  snprintf(path, sizeof path, "%s/wsmux-edge-state.json", f->dir);
  unlink(path);
  snprintf(path, sizeof path, "%s/wsmux-edge-audit.jsonl", f->dir);
  unlink(path);
  if (rmdir(f->dir) != 0)
    fail_msg("%s not empty: a temporary file was left behind?", f->dir);
  platform_free(f->p);
  free(f);
  return 0;
}

static void on_reply(void *ctx, admin_response_t *resp) {
  fx_t *f = ctx;
  assert_int_equal(f->r.status, 0); /* one reply per request */
  f->r = *resp;
  resp->body = NULL;
}

/* One request with the good token; body uses ' for ". The file store
 * answers before admin_handle() returns. */
static int call_as(fx_t *f, const char *bearer, const char *method,
                   const char *path, const char *body) {
  char *b = body != NULL ? unquote(body) : NULL;
  admin_request_t req = {.method = method,
                         .path = path,
                         .bearer = bearer,
                         .body = b,
                         .len = b ? strlen(b) : 0};

  admin_response_clear(&f->r);
  admin_handle(f->a, &req, on_reply, f);
  free(b);
  assert_int_not_equal(f->r.status, 0);
  if (f->r.body != NULL)
    assert_int_equal(strlen(f->r.body), f->r.body_len);
  return f->r.status;
}

static int call(fx_t *f, const char *method, const char *path,
                const char *body) {
  return call_as(f, TOKEN, method, path, body);
}

/* The response is exactly this JSON (' for ") and a newline. */
static void expect_body(fx_t *f, const char *squoted) {
  char *want = unquote(squoted);

  assert_non_null(f->r.body);
  assert_string_equal(f->r.content_type, ADMIN_TYPE_JSON);
  assert_int_equal(f->r.body[f->r.body_len - 1], '\n');
  f->r.body[f->r.body_len - 1] = '\0';
  if (strcmp(f->r.body, want) != 0)
    fail_msg("body\n  %s\nwant\n  %s", f->r.body, want);
  f->r.body[f->r.body_len - 1] = '\n';
  free(want);
}

static void expect_error(fx_t *f, int status, const char *message) {
  char want[1024];

  assert_int_equal(f->r.status, status);
  snprintf(want, sizeof want, "{'error':'%s'}", message);
  expect_body(f, want);
}

static cJSON *body_json(fx_t *f) {
  cJSON *doc = cJSON_ParseWithLength(f->r.body, f->r.body_len);
  assert_non_null(doc);
  return doc;
}

static const char *str_field(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  assert_true(cJSON_IsString(v));
  return v->valuestring;
}

/* The state file holds exactly what the admin has in memory. */
static void expect_file_matches(fx_t *f) {
  state_t *disk = NULL;
  char err[512], *a, *b;
  size_t n;

  if (state_load(f->p->state_file, &disk, err, sizeof err) != 0)
    fail_msg("%s", err);
  a = state_serialize(store_view(f->store), &n);
  b = state_serialize(disk, &n);
  assert_string_equal(a, b);
  free(a);
  free(b);
  state_free(disk);
}

/* ---- auth and routing -------------------------------------------------- */

static void test_unauthorized(void **state) {
  fx_t *f = *state;
  static const char *const paths[] = {
      "/v1/projects", "/v1/projects/p1/services/web", "/v1/ssh-identities",
      "/nope", "/v1/ssh-identities/alice"};
  static const char *const tokens[] = {NULL, "", "wrong", "secret ", "Secret"};

  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
    for (size_t t = 0; t < sizeof tokens / sizeof tokens[0]; t++) {
      assert_int_equal(call_as(f, tokens[t], "GET", paths[i], NULL), 401);
      expect_error(f, 401, "invalid or missing API token");
    }
  /* Even a change is refused before the body is looked at. */
  assert_int_equal(call_as(f, "x", "POST", "/v1/ssh-identities", "{"), 401);
  assert_int_equal(store_view(f->store)->nidentities, 0);
}

static void test_not_found_routes(void **state) {
  fx_t *f = *state;
  static const char *const paths[] = {
      "",
      "/",
      "/v1",
      "/v1/",
      "/v2/projects",
      "/v1/projects/",
      "//v1/projects",
      "/v1//projects",
      "/v1/nope",
      "/v1/projects/p1/nope",
      "/v1/projects/p1/services/web/nope",
      "/v1/projects/p1/services/web/authorized-keys/x",
      "/v1/ssh-identities/a/b",
      "/v1/projects/p 1/services",
      "relative"};

  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
    if (call(f, "GET", paths[i], NULL) != 404)
      fail_msg("GET \"%s\": %d", paths[i], f->r.status);
    if (strstr(f->r.body, "\"error\":\"no such route: ") == NULL)
      fail_msg("GET \"%s\": %s", paths[i], f->r.body);
  }
  /* ".." is a well-formed id (paths arrive URL-decoded and unnormalized),
   * and names nothing. */
  assert_int_equal(call(f, "GET", "/v1/projects/../services", NULL), 404);
  expect_error(f, 404, "project .. not found");
  assert_int_equal(call(f, "GET", "/v1/projects/p1/services/web/ssh", NULL),
                   404);
  expect_error(f, 404,
               "/v1/projects/p1/services/web/ssh is the WebSocket endpoint of "
               "the service; use `wsmux ssh service`");
}

typedef struct {
  const char *method;
  const char *path;
  const char *allowed;
} not_allowed_t;

static void test_method_not_allowed(void **state) {
  fx_t *f = *state;
  static const not_allowed_t cases[] = {
      {"POST", "/v1/projects", "GET"},
      {"DELETE", "/v1/projects/p1/services", "GET"},
      {"PUT", "/v1/projects/p1/services/web", "GET, PATCH"},
      {"DELETE", "/v1/projects/p1/services/web", "GET, PATCH"},
      {"PATCH", "/v1/projects/p1/services/web/authorized-keys", "GET"},
      {"DELETE", "/v1/ssh-identities", "GET, POST"},
      {"PUT", "/v1/ssh-identities/alice", "GET, PATCH, DELETE"},
      {"POST", "/v1/ssh-identities/alice", "GET, PATCH, DELETE"},
      {"get", "/v1/projects", "GET"},
  };
  char want[256];

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    assert_int_equal(call(f, cases[i].method, cases[i].path, "{}"), 405);
    snprintf(want, sizeof want,
             "method \\\"%s\\\" is not allowed here (allowed: %s)",
             cases[i].method, cases[i].allowed);
    assert_non_null(f->r.body);
    if (strstr(f->r.body, want) == NULL)
      fail_msg("case %zu: %s lacks %s", i, f->r.body, want);
  }
}

static void test_too_large(void **state) {
  fx_t *f = *state;
  size_t n = ADMIN_BODY_MAX + 1;
  char *big = malloc(n);

  assert_non_null(big);
  memset(big, ' ', n);
  admin_request_t req = {.method = "POST",
                         .path = "/v1/ssh-identities",
                         .bearer = TOKEN,
                         .body = big,
                         .len = n};
  admin_response_clear(&f->r);
  admin_handle(f->a, &req, on_reply, f);
  assert_int_equal(f->r.status, 413);
  expect_error(f, 413, "request body larger than 65536 bytes");
  /* At the limit it is parsed (and is not JSON). */
  admin_response_clear(&f->r);
  req.len = n - 1;
  admin_handle(f->a, &req, on_reply, f);
  assert_int_equal(f->r.status, 400);
  free(big);
}

/* ---- projects and services --------------------------------------------- */

static void test_get_projects(void **state) {
  fx_t *f = *state;

  assert_int_equal(call(f, "GET", "/v1/projects", NULL), 200);
  expect_body(f, "{'projects':[{'id':'p1','name':'Demo'},"
                 "{'id':'p2','name':'p2'}]}");
}

static void test_get_services(void **state) {
  fx_t *f = *state;

  assert_int_equal(call(f, "GET", "/v1/projects/p1/services", NULL), 200);
  expect_body(f, "{'services':["
                 "{'id':'web','projectId':'p1','name':'Web','kind':'service',"
                 "'tags':['prod','eu'],'sshEnabled':true},"
                 "{'id':'db','projectId':'p1','name':'db','kind':'service',"
                 "'tags':['prod'],'sshEnabled':false},"
                 "{'id':'cron','projectId':'p1','name':'cron','kind':'job',"
                 "'tags':[],'sshEnabled':false}]}");
  assert_null(strstr(f->r.body, "10.0.0.5")); /* upstream stays private */
  assert_int_equal(call(f, "GET", "/v1/projects/p2/services", NULL), 200);
  expect_body(f, "{'services':[{'id':'web','projectId':'p2','name':'web',"
                 "'kind':'service','tags':[],'sshEnabled':true}]}");
  assert_int_equal(call(f, "GET", "/v1/projects/p3/services", NULL), 404);
  expect_error(f, 404, "project p3 not found");

  assert_int_equal(call(f, "GET", "/v1/projects/p1/services/web", NULL), 200);
  expect_body(f, "{'id':'web','projectId':'p1','name':'Web','kind':'service',"
                 "'tags':['prod','eu'],'sshEnabled':true}");
  assert_int_equal(call(f, "GET", "/v1/projects/p2/services/db", NULL), 404);
  expect_error(f, 404, "service db not found in project p2");
  assert_int_equal(call(f, "GET", "/v1/projects/p3/services/web", NULL), 404);
  expect_error(f, 404, "project p3 not found");
}

/* The edge's count of what SSH off would close: p1/web has two proxies
 * with three streams on this edge, the others none. */
static void fake_open(void *ctx, const platform_service_t *svc,
                      admin_open_t *out) {
  fx_t *f = ctx;
  if (svc == &f->p->services[0]) {
    out->proxies = 2;
    out->streams = 3;
  }
  out->other_edges = f->shared;
}

static void test_open_counts(void **state) {
  fx_t *f = *state;
  admin_hooks_t h = {.open_count = fake_open, .now = fake_now, .ctx = f};

  admin_free(f->a);
  f->a = admin_new(f->p, f->store, &h);
  assert_non_null(f->a);
  assert_int_equal(call(f, "GET", "/v1/projects/p1/services/web", NULL), 200);
  expect_body(f, "{'id':'web','projectId':'p1','name':'Web','kind':'service',"
                 "'tags':['prod','eu'],'sshEnabled':true,"
                 "'open':{'proxies':2,'streams':3,'otherEdges':false}}");
  f->shared = 1;
  assert_int_equal(call(f, "GET", "/v1/projects/p2/services", NULL), 200);
  expect_body(f, "{'services':[{'id':'web','projectId':'p2','name':'web',"
                 "'kind':'service','tags':[],'sshEnabled':true,"
                 "'open':{'proxies':0,'streams':0,'otherEdges':true}}]}");
}

static void test_patch_service(void **state) {
  fx_t *f = *state;
  platform_service_t *web = &f->p->services[0];
  const state_ssh_t *sw;

  /* Off: saved, applied to the platform (so new WebSockets are refused),
   * and the edge is told to close the open ones. */
  assert_int_equal(
      call(f, "PATCH", "/v1/projects/p1/services/web", "{'ssh':false}"), 200);
  expect_body(f, "{'id':'web','projectId':'p1','name':'Web','kind':'service',"
                 "'tags':['prod','eu'],'sshEnabled':false}");
  assert_int_equal(web->ssh_enabled, 0);
  assert_int_equal(f->ndisabled, 1);
  assert_ptr_equal(f->disabled[0], web);
  sw = state_find_ssh(store_view(f->store), "p1", "web");
  assert_non_null(sw);
  assert_int_equal(sw->ssh_enabled, 0);
  expect_file_matches(f);
  assert_int_equal(
      platform_check_ssh(f->p, TOKEN, 6, "p1", "web", NULL, NULL, NULL, 0),
      PLATFORM_ACCESS_SSH_DISABLED);
  /* The other project's "web" is a different service. */
  assert_int_equal(f->p->services[3].ssh_enabled, 1);

  /* On again: no close. */
  assert_int_equal(
      call(f, "PATCH", "/v1/projects/p1/services/db", "{'ssh':true}"), 200);
  assert_non_null(strstr(f->r.body, "\"sshEnabled\":true"));
  assert_int_equal(f->p->services[1].ssh_enabled, 1);
  assert_int_equal(f->ndisabled, 1);
  assert_int_equal(store_view(f->store)->nssh, 2);
  expect_file_matches(f);
  assert_int_equal(
      platform_check_ssh(f->p, TOKEN, 6, "p1", "db", NULL, NULL, NULL, 0),
      PLATFORM_ACCESS_OK);

  /* A restarted edge applies the switches from the file. */
  platform_t *p2 = NULL;
  char *text = unquote(config), err[512];
  assert_int_equal(
      platform_parse(text, strlen(text), f->dir, &p2, err, sizeof err), 0);
  free(text);
  store_t *s2 = open_store(f, p2);
  assert_int_equal(p2->services[0].ssh_enabled, 0);
  assert_int_equal(p2->services[1].ssh_enabled, 1);
  store_close(s2);
  platform_free(p2);
}

static void test_patch_job(void **state) {
  fx_t *f = *state;

  assert_int_equal(
      call(f, "PATCH", "/v1/projects/p1/services/cron", "{'ssh':true}"), 409);
  expect_error(f, 409, "SSH access is available for services only");
  assert_int_equal(store_view(f->store)->nssh, 0);
  /* The config says true, but a job never takes SSH: shown as false. */
  assert_int_equal(call(f, "GET", "/v1/projects/p1/services/cron", NULL), 200);
  expect_body(f, "{'id':'cron','projectId':'p1','name':'cron','kind':'job',"
                 "'tags':[],'sshEnabled':false}");
  /* Turning it off is what it already is: allowed. */
  assert_int_equal(
      call(f, "PATCH", "/v1/projects/p1/services/cron", "{'ssh':false}"), 200);
}

static void test_patch_service_errors(void **state) {
  fx_t *f = *state;
  static const struct {
    const char *body;
    const char *error;
  } cases[] = {
      {"", "request body: invalid JSON at byte offset 0"},
      {"{'ssh':", "request body: invalid JSON at byte offset 6"},
      {"{}", "ssh: required"},
      {"{'ssh':1}", "ssh: expected true or false"},
      {"{'ssh':'true'}", "ssh: expected true or false"},
      {"{'ssh':true,'tags':[]}", "unknown field \\\"tags\\\""},
      {"[true]", "expected an object, got an array"},
  };

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    assert_int_equal(
        call(f, "PATCH", "/v1/projects/p1/services/web", cases[i].body), 400);
    expect_error(f, 400, cases[i].error);
  }
  assert_int_equal(f->p->services[0].ssh_enabled, 1);
  assert_int_equal(f->ndisabled, 0);
  assert_int_equal(
      call(f, "PATCH", "/v1/projects/p1/services/nope", "{'ssh':false}"), 404);
  expect_error(f, 404, "service nope not found in project p1");
  /* No change was made, so no file was written. */
  assert_int_equal(access(f->p->state_file, F_OK), -1);
}

/* ---- identities -------------------------------------------------------- */

static const char *post_alice(fx_t *f) {
  static char id[IDENTITY_ID_SIZE];
  cJSON *doc;

  assert_int_equal(call(f, "POST", "/v1/ssh-identities",
                        "{'name':'alice-laptop','description':'Alice',"
                        "'keys':['" KEY1 " alice@laptop'],'projects':['p1'],"
                        "'tags':['prod']}"),
                   201);
  doc = body_json(f);
  snprintf(id, sizeof id, "%s", str_field(doc, "id"));
  cJSON_Delete(doc);
  return id;
}

static void test_identity_lifecycle(void **state) {
  fx_t *f = *state;
  const char *id = post_alice(f);
  char path[128], want[1024];

  assert_true(identity_id_is_generated(id));
  snprintf(want, sizeof want,
           "{'id':'%s','name':'alice-laptop','description':'Alice',"
           "'keys':['" KEY1 " alice@laptop'],'projects':['p1'],"
           "'tags':['prod'],'matchAllTags':false,"
           "'createdAt':'2026-11-25T12:00:00Z',"
           "'updatedAt':'2026-11-25T12:00:00Z'}",
           id);
  expect_body(f, want);
  expect_file_matches(f);

  /* By id and by name. */
  snprintf(path, sizeof path, "/v1/ssh-identities/%s", id);
  assert_int_equal(call(f, "GET", path, NULL), 200);
  expect_body(f, want);
  assert_int_equal(call(f, "GET", "/v1/ssh-identities/alice-laptop", NULL),
                   200);
  expect_body(f, want);

  /* A second one; the list keeps creation order. */
  f->now = T0 + 60;
  assert_int_equal(call(f, "POST", "/v1/ssh-identities",
                        "{'name':'bob','keys':['" KEY2 "'],"
                        "'tags':['a','b'],'matchAllTags':true}"),
                   201);
  assert_int_equal(call(f, "GET", "/v1/ssh-identities", NULL), 200);
  cJSON *doc = body_json(f);
  const cJSON *list = cJSON_GetObjectItemCaseSensitive(doc, "identities");
  assert_int_equal(cJSON_GetArraySize(list), 2);
  assert_string_equal(str_field(cJSON_GetArrayItem(list, 0), "name"),
                      "alice-laptop");
  assert_string_equal(str_field(cJSON_GetArrayItem(list, 1), "createdAt"),
                      "2026-11-25T12:01:00Z");
  cJSON_Delete(doc);

  /* PATCH replaces the given fields and bumps updatedAt only. */
  f->now = T0 + 3600;
  assert_int_equal(
      call(f, "PATCH", path, "{'name':'alice','tags':[],'matchAllTags':true}"),
      200);
  snprintf(want, sizeof want,
           "{'id':'%s','name':'alice','description':'Alice',"
           "'keys':['" KEY1 " alice@laptop'],'projects':['p1'],"
           "'tags':[],'matchAllTags':true,"
           "'createdAt':'2026-11-25T12:00:00Z',"
           "'updatedAt':'2026-11-25T13:00:00Z'}",
           id);
  expect_body(f, want);
  expect_file_matches(f);
  assert_int_equal(call(f, "GET", "/v1/ssh-identities/alice-laptop", NULL),
                   404);
  /* Keeping one's own name is no conflict. */
  assert_int_equal(
      call(f, "PATCH", "/v1/ssh-identities/alice", "{'name':'alice'}"), 200);

  /* DELETE: 204 without a body, then gone. */
  assert_int_equal(call(f, "DELETE", "/v1/ssh-identities/alice", NULL), 204);
  assert_null(f->r.body);
  assert_null(f->r.content_type);
  assert_int_equal(call(f, "GET", path, NULL), 404);
  assert_int_equal(store_view(f->store)->nidentities, 1);
  expect_file_matches(f);
}

static void test_identity_errors(void **state) {
  fx_t *f = *state;

  post_alice(f);
  /* 409: the name is taken (by POST or by renaming). */
  assert_int_equal(call(f, "POST", "/v1/ssh-identities",
                        "{'name':'alice-laptop','keys':['" KEY2 "']}"),
                   409);
  assert_non_null(strstr(f->r.body, "name \\\"alice-laptop\\\" is already "
                                    "used by SSH identity idt-"));
  assert_int_equal(call(f, "POST", "/v1/ssh-identities",
                        "{'name':'bob','keys':['" KEY2 "']}"),
                   201);
  assert_int_equal(
      call(f, "PATCH", "/v1/ssh-identities/bob", "{'name':'alice-laptop'}"),
      409);

  /* 400: the message names the field. */
  static const struct {
    const char *body;
    const char *error;
  } cases[] = {
      {"{'name':'c','keys':['ssh-foo AAAA']}",
       "keys[0]: unknown key type \\\"ssh-foo\\\""},
      {"{'name':'c','keys':['" KEY1 "','ssh-ed25519 AAA']}",
       "keys[1]: invalid base64"},
      {"{'name':'c','keys':['command=\\\"ls\\\" " KEY1 "']}",
       "keys[0]: key options before the type (such as command=\\\"...\\\") "
       "are not allowed"},
      {"{'name':'c'}", "keys: required"},
      {"{'keys':['" KEY1 "']}", "name: required"},
      {"{'name':'c','keys':['" KEY1 "'],'projects':['p1','p 9']}",
       "projects[1]: expected a project id (1..128 characters of "
       "[A-Za-z0-9._-]), got \\\"p 9\\\""},
      {"{'name':'c','keys':['" KEY1 "'],'id':'x'}", "unknown field \\\"id\\\""},
      /* not UTF-8: named, and the request changes nothing */
      {"{'name':'c','keys':['" KEY1 "'],'description':'a\xff'}",
       "description: invalid UTF-8"},
      {"{'name':'c','keys':['" KEY1 "'],'tags':['ok','\xed\xa0\x80']}",
       "tags[1]: invalid UTF-8"},
      {"{'name':'c','keys':['" KEY1 "'],}",
       "request body: invalid JSON at byte offset 104"},
      {"", "request body: invalid JSON at byte offset 0"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    if (call(f, "POST", "/v1/ssh-identities", cases[i].body) != 400)
      fail_msg("case %zu: %d %s", i, f->r.status, f->r.body);
    expect_error(f, 400, cases[i].error);
  }
  assert_int_equal(call(f, "PATCH", "/v1/ssh-identities/bob", "{'keys':[]}"),
                   400);
  expect_error(f, 400, "keys: at least one is required");
  assert_int_equal(
      call(f, "PATCH", "/v1/ssh-identities/bob", "{'projects':['later']}"),
      200);
  /* (A project the config does not have, yet, is a valid restriction.) */
  assert_int_equal(store_view(f->store)->nidentities, 2);

  /* 404 on every method for an unknown identity. */
  assert_int_equal(call(f, "GET", "/v1/ssh-identities/carol", NULL), 404);
  expect_error(f, 404, "SSH identity carol not found");
  assert_int_equal(call(f, "PATCH", "/v1/ssh-identities/carol", "{'name':'x'}"),
                   404);
  assert_int_equal(call(f, "DELETE", "/v1/ssh-identities/carol", NULL), 404);
  assert_int_equal(call(f, "GET", "/v1/ssh-identities", NULL), 200);
}

/* ---- failed writes ------------------------------------------------------ */

static void test_write_failure_changes_nothing(void **state) {
  fx_t *f = *state;
  char moved[128], *before, *after;
  size_t n;

  post_alice(f);
  before = state_serialize(store_view(f->store), &n);
  /* The tests run as root, so a read-only directory would not do: the
   * state file's directory goes away for a while. */
  snprintf(moved, sizeof moved, "%s.moved", f->dir);
  assert_int_equal(rename(f->dir, moved), 0);

  assert_int_equal(call(f, "POST", "/v1/ssh-identities",
                        "{'name':'bob','keys':['" KEY2 "']}"),
                   500);
  assert_non_null(strstr(f->r.body, "\"error\":\"the state file could not be "
                                    "written, nothing changed: cannot create "
                                    "a temporary file next to"));
  assert_int_equal(call(f, "PATCH", "/v1/ssh-identities/alice-laptop",
                        "{'description':'x'}"),
                   500);
  assert_int_equal(call(f, "DELETE", "/v1/ssh-identities/alice-laptop", NULL),
                   500);
  assert_int_equal(
      call(f, "PATCH", "/v1/projects/p1/services/web", "{'ssh':false}"), 500);
  /* Nothing changed: not the identities, not the switch, no close. */
  after = state_serialize(store_view(f->store), &n);
  assert_string_equal(before, after);
  assert_int_equal(f->p->services[0].ssh_enabled, 1);
  assert_int_equal(f->ndisabled, 0);
  free(before);
  free(after);

  assert_int_equal(rename(moved, f->dir), 0);
  expect_file_matches(f);
}

/* ---- authorized_keys ---------------------------------------------------- */

static void test_authorized_keys(void **state) {
  fx_t *f = *state;

  post_alice(f); /* p1, tag prod */
  assert_int_equal(call(f, "POST", "/v1/ssh-identities",
                        "{'name':'bob','keys':['" KEY2 "'],"
                        "'tags':['prod','eu'],'matchAllTags':true}"),
                   201);

  assert_int_equal(
      call(f, "GET", "/v1/projects/p1/services/web/authorized-keys", NULL),
      200);
  assert_string_equal(f->r.content_type, ADMIN_TYPE_TEXT);
  assert_string_equal(f->r.body, KEY1 " alice@laptop\n" KEY2 " wsmux:bob\n");
  /* db has prod but not eu: alice only. */
  assert_int_equal(
      call(f, "GET", "/v1/projects/p1/services/db/authorized-keys", NULL), 200);
  assert_string_equal(f->r.body, KEY1 " alice@laptop\n");
  /* p2's web has no tags: nobody. */
  assert_int_equal(
      call(f, "GET", "/v1/projects/p2/services/web/authorized-keys", NULL),
      200);
  assert_string_equal(f->r.body, "");
  assert_int_equal(f->r.body_len, 0);
  assert_string_equal(f->r.content_type, ADMIN_TYPE_TEXT);
  assert_int_equal(
      call(f, "GET", "/v1/projects/p2/services/db/authorized-keys", NULL), 404);
  expect_error(f, 404, "service db not found in project p2");
}

/* ---- roles ------------------------------------------------------------ */

#define KEYS "'keys':['" KEY1 "']"

static void test_role_member(void **state) {
  fx_t *f = *state;

  /* Reads: everything, like an admin. */
  assert_int_equal(call_as(f, "member", "GET", "/v1/projects", NULL), 200);
  expect_body(f, "{'projects':[{'id':'p1','name':'Demo'},"
                 "{'id':'p2','name':'p2'}]}");
  assert_int_equal(
      call_as(f, "member", "GET", "/v1/projects/p1/services", NULL), 200);
  assert_int_equal(
      call_as(f, "member", "GET", "/v1/projects/p2/services/web", NULL), 200);
  assert_int_equal(call_as(f, "member", "GET",
                           "/v1/projects/p1/services/web/authorized-keys",
                           NULL),
                   200);
  assert_int_equal(
      call(f, "POST", "/v1/ssh-identities", "{'name':'bob'," KEYS "}"), 201);
  assert_int_equal(call_as(f, "member", "GET", "/v1/ssh-identities", NULL),
                   200);
  assert_non_null(strstr(f->r.body, "\"name\":\"bob\""));
  assert_int_equal(call_as(f, "member", "GET", "/v1/ssh-identities/bob", NULL),
                   200);

  /* Writes: 403 naming the role, before anything else is looked at. */
  assert_int_equal(call_as(f, "member", "POST", "/v1/ssh-identities",
                           "{'name':'eve'," KEYS "}"),
                   403);
  expect_error(f, 403,
               "token member has role member: it may not create SSH "
               "identities");
  assert_int_equal(call_as(f, "member", "PATCH", "/v1/ssh-identities/bob",
                           "{'projects':[]}"),
                   403);
  expect_error(f, 403,
               "token member has role member: it may not update SSH "
               "identities");
  assert_int_equal(
      call_as(f, "member", "DELETE", "/v1/ssh-identities/nobody", NULL), 403);
  expect_error(f, 403,
               "token member has role member: it may not delete SSH "
               "identities");
  assert_int_equal(call_as(f, "member", "PATCH", "/v1/projects/p1/services/db",
                           "{'ssh':true}"),
                   403);
  expect_error(f, 403,
               "token member has role member: it may not switch SSH of "
               "services");
  assert_int_equal(call_as(f, "member", "GET", "/v1/audit", NULL), 403);
  expect_error(f, 403,
               "token member has role member: it may not read the audit log "
               "(an admin of every project may)");
  /* Nothing changed. */
  assert_int_equal(store_view(f->store)->nidentities, 1);
  assert_false(platform_find_service(f->p, "p1", "db")->ssh_enabled);
  expect_file_matches(f);
}

static void test_role_projects(void **state) {
  fx_t *f = *state;
  static const char *const made[] = {
      "{'name':'all'," KEYS "}",
      "{'name':'one'," KEYS ",'projects':['p1']}",
      "{'name':'two'," KEYS ",'projects':['p2']}",
      "{'name':'both'," KEYS ",'projects':['p1','p2']}",
  };
  cJSON *doc;

  for (size_t i = 0; i < 4; i++)
    assert_int_equal(call(f, "POST", "/v1/ssh-identities", made[i]), 201);

  /* Listing and access: its projects only; another project is 403 whether
   * or not it exists. */
  assert_int_equal(call_as(f, "deploy", "GET", "/v1/projects", NULL), 200);
  expect_body(f, "{'projects':[{'id':'p2','name':'p2'}]}");
  assert_int_equal(
      call_as(f, "deploy", "GET", "/v1/projects/p2/services", NULL), 200);
  assert_int_equal(
      call_as(f, "deploy", "GET", "/v1/projects/p1/services", NULL), 403);
  expect_error(f, 403,
               "token deploy has role admin for projects p2: it may not "
               "access project p1");
  assert_int_equal(
      call_as(f, "deploy", "GET", "/v1/projects/p9/services/x", NULL), 403);
  expect_error(f, 403,
               "token deploy has role admin for projects p2: it may not "
               "access project p9");
  assert_int_equal(call_as(f, "deploy", "GET",
                           "/v1/projects/p1/services/web/authorized-keys",
                           NULL),
                   403);
  assert_int_equal(call_as(f, "deploy", "PATCH", "/v1/projects/p1/services/web",
                           "{'ssh':false}"),
                   403);
  assert_true(platform_find_service(f->p, "p1", "web")->ssh_enabled);
  assert_int_equal(call_as(f, "deploy", "PATCH", "/v1/projects/p2/services/web",
                           "{'ssh':false}"),
                   200);
  assert_false(platform_find_service(f->p, "p2", "web")->ssh_enabled);

  /* Identities: those that can apply to its projects. */
  assert_int_equal(call_as(f, "deploy", "GET", "/v1/ssh-identities", NULL),
                   200);
  doc = body_json(f);
  const cJSON *list = cJSON_GetObjectItemCaseSensitive(doc, "identities");
  assert_int_equal(cJSON_GetArraySize(list), 3);
  assert_string_equal(str_field(cJSON_GetArrayItem(list, 0), "name"), "all");
  assert_string_equal(str_field(cJSON_GetArrayItem(list, 1), "name"), "two");
  assert_string_equal(str_field(cJSON_GetArrayItem(list, 2), "name"), "both");
  cJSON_Delete(doc);
  assert_int_equal(call_as(f, "deploy", "GET", "/v1/ssh-identities/one", NULL),
                   403);
  expect_error(f, 403,
               "token deploy has role admin for projects p2: it may not "
               "access SSH identity one, which applies to none of its "
               "projects");

  /* Writes: only identities restricted to its projects. */
  assert_int_equal(call_as(f, "deploy", "POST", "/v1/ssh-identities",
                           "{'name':'new'," KEYS "}"),
                   403);
  expect_error(f, 403,
               "token deploy has role admin for projects p2: it may not "
               "create an SSH identity that applies outside its projects "
               "(give \\\"projects\\\" among them)");
  assert_int_equal(call_as(f, "deploy", "POST", "/v1/ssh-identities",
                           "{'name':'new'," KEYS ",'projects':['p2','p1']}"),
                   403);
  assert_int_equal(call_as(f, "deploy", "POST", "/v1/ssh-identities",
                           "{'name':'new'," KEYS ",'projects':['p2']}"),
                   201);
  assert_int_equal(call_as(f, "deploy", "PATCH", "/v1/ssh-identities/both",
                           "{'description':'x'}"),
                   403);
  expect_error(f, 403,
               "token deploy has role admin for projects p2: it may not "
               "update SSH identity both, which applies outside its projects");
  assert_int_equal(call_as(f, "deploy", "PATCH", "/v1/ssh-identities/two",
                           "{'projects':[]}"),
                   403);
  expect_error(f, 403,
               "token deploy has role admin for projects p2: it may not make "
               "SSH identity two apply outside its projects");
  assert_int_equal(call_as(f, "deploy", "PATCH", "/v1/ssh-identities/two",
                           "{'description':'mine'}"),
                   200);
  assert_int_equal(
      call_as(f, "deploy", "DELETE", "/v1/ssh-identities/all", NULL), 403);
  expect_error(f, 403,
               "token deploy has role admin for projects p2: it may not "
               "delete SSH identity all, which applies outside its projects");
  assert_int_equal(
      call_as(f, "deploy", "DELETE", "/v1/ssh-identities/new", NULL), 204);
  assert_int_equal(store_view(f->store)->nidentities, 4);
  expect_file_matches(f);

  /* The audit log covers every project: not for a limited admin. */
  assert_int_equal(call_as(f, "deploy", "GET", "/v1/audit", NULL), 403);
  expect_error(f, 403,
               "token deploy has role admin for projects p2: it may not read "
               "the audit log (an admin of every project may)");
  /* ...whose writes it records with the token's id. */
  assert_int_equal(call(f, "GET", "/v1/audit", NULL), 200);
  doc = body_json(f);
  const cJSON *rec =
      cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(doc, "audit"), 0);
  assert_string_equal(str_field(rec, "tokenId"), "deploy");
  assert_string_equal(str_field(rec, "action"), "identity.delete");
  assert_string_equal(str_field(rec, "detail"), "new");
  cJSON_Delete(doc);

  /* A limited member: its projects, and no writes. */
  assert_int_equal(call_as(f, "viewer", "GET", "/v1/projects", NULL), 200);
  expect_body(f, "{'projects':[{'id':'p1','name':'Demo'}]}");
  assert_int_equal(call_as(f, "viewer", "POST", "/v1/ssh-identities",
                           "{'name':'v'," KEYS ",'projects':['p1']}"),
                   403);
  expect_error(f, 403,
               "token viewer has role member for projects p1: it may not "
               "create SSH identities");
  assert_int_equal(call_as(f, "viewer", "GET", "/v1/ssh-identities/two", NULL),
                   403);
  assert_int_equal(
      call_as(f, "viewer", "GET", "/v1/projects/p2/services/web", NULL), 403);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_unauthorized),         T(test_not_found_routes),
      T(test_method_not_allowed),   T(test_too_large),
      T(test_get_projects),         T(test_get_services),
      T(test_patch_service),        T(test_patch_job),
      T(test_patch_service_errors), T(test_identity_lifecycle),
      T(test_identity_errors),      T(test_write_failure_changes_nothing),
      T(test_authorized_keys),      T(test_role_member),
      T(test_role_projects),        T(test_open_counts),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
