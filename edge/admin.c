/* The admin API router. See admin.h and docs/ADMIN_API.md. */
#include "edge/admin.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/id.h"
#include "base/json.h"
#include "base/text.h"
#include "edge/identity.h"

#include <assert.h>

/* "/v1/projects/{p}/services/{s}/authorized-keys" has 6 segments. */
#define SEG_MAX 6
#define MSG_SIZE 768
/* Tries at a fresh random id; a clash in 64 bits means a broken RNG. */
#define ID_TRIES 4
/* A change computed from a view another edge changed meanwhile is made
 * again on the new view; this many times at most. */
#define STALE_TRIES 3
#define AUDIT_LIMIT 100

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF_LIKE(f, a)
#endif

enum {
  HTTP_OK = 200,
  HTTP_CREATED = 201,
  HTTP_NO_CONTENT = 204,
  HTTP_BAD_REQUEST = 400,
  HTTP_UNAUTHORIZED = 401,
  HTTP_FORBIDDEN = 403,
  HTTP_NOT_FOUND = 404,
  HTTP_METHOD_NOT_ALLOWED = 405,
  HTTP_CONFLICT = 409,
  HTTP_TOO_LARGE = 413,
  HTTP_INTERNAL = 500,
  HTTP_UNAVAILABLE = 503,
};

struct admin {
  platform_t *platform; /* borrowed */
  store_t *store;       /* borrowed */
  admin_hooks_t hooks;
};

/*
 * The request being answered, from admin_handle() until its reply. A
 * route either responds at once or starts a store write (async set); the
 * write's callback responds, possibly before the route has returned
 * (in_route), in which case the reply waits for the route to finish.
 */
typedef struct {
  admin_t *a;
  char *method;
  char *path;
  char *body;
  size_t len;
  const platform_token_t *token; /* the caller's */
  admin_response_t resp;
  int responded;
  char *seg[SEG_MAX]; /* path segments, into segbuf */
  size_t nseg;
  char *segbuf;
  admin_reply_fn reply;
  void *reply_ctx;
  int in_route;
  int async; /* a store call is under way */
  int rerun; /* the store said STALE: route again on the new view */
  int stale_tries;
  char key[ID_MAX + 1];  /* the identity being written */
  char name[ID_MAX + 1]; /* and its name */
} req_t;

/* ---- responses --------------------------------------------------------- */

static int respond(req_t *r, int status, const char *type, char *body,
                   size_t len) {
  assert(!r->responded);
  r->responded = 1;
  r->resp.status = status;
  r->resp.content_type = type;
  r->resp.body = body;
  r->resp.body_len = len;
  return status;
}

/* A JSON body: the document and a newline (for curl users). */
static int respond_json(req_t *r, int status, cJSON *doc) {
  char *text = doc != NULL ? cJSON_PrintUnformatted(doc) : NULL, *nl;
  size_t n;

  cJSON_Delete(doc);
  if (text == NULL)
    return respond(r, HTTP_INTERNAL, NULL, NULL, 0);
  n = strlen(text);
  nl = realloc(text, n + 2);
  if (nl == NULL) {
    free(text);
    return respond(r, HTTP_INTERNAL, NULL, NULL, 0);
  }
  memcpy(nl + n, "\n", 2);
  return respond(r, status, ADMIN_TYPE_JSON, nl, n + 1);
}

PRINTF_LIKE(3, 4)
static int respond_error(req_t *r, int status, const char *fmt, ...) {
  char msg[MSG_SIZE];
  cJSON *doc = cJSON_CreateObject();
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (doc == NULL || cJSON_AddStringToObject(doc, "error", msg) == NULL) {
    cJSON_Delete(doc);
    return respond(r, HTTP_INTERNAL, NULL, NULL, 0);
  }
  respond_json(r, status, doc);
  /* Out of memory while building the error still reports the error's
   * status, with no body. */
  r->resp.status = status;
  return status;
}

static int respond_oom(req_t *r) {
  return respond_error(r, HTTP_INTERNAL, "out of memory");
}

void admin_response_clear(admin_response_t *resp) {
  free(resp->body);
  memset(resp, 0, sizeof *resp);
}

/* ---- roles (docs/ADMIN_API.md, "Roles") ---------------------------------- */

/* 403 naming the token and its role: "token ci has role member: it may
 * not create SSH identities". */
PRINTF_LIKE(2, 3)
static int deny(req_t *r, const char *fmt, ...) {
  char role[PLATFORM_DESCRIBE_SIZE], what[MSG_SIZE / 2];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  platform_token_describe(r->token, role, sizeof role);
  return respond_error(r, HTTP_FORBIDDEN, "token %s has %s: it may not %s",
                       r->token->id, role, what);
}

/* Admin of every project: the audit log covers them all. */
static int may_all(req_t *r, const char *what) {
  if (r->token->role == PLATFORM_ROLE_ADMIN && r->token->nprojects == 0)
    return 1;
  deny(r, "%s", what);
  return 0;
}

/* A write: admins only. */
static int may_write(req_t *r, const char *what) {
  if (r->token->role == PLATFORM_ROLE_ADMIN)
    return 1;
  deny(r, "%s", what);
  return 0;
}

/* A project outside the token's is refused before it is looked up, so the
 * answer does not tell whether it exists. */
static int may_project(req_t *r, const char *pid) {
  if (platform_token_has_project(r->token, pid))
    return 1;
  deny(r, "access project %s", pid);
  return 0;
}

/* An identity a project-limited token may see: one that can apply to one
 * of its projects (no project restriction, or one of them listed). */
static int identity_visible(const platform_token_t *t, const identity_t *id) {
  if (t->nprojects == 0 || id->nprojects == 0)
    return 1;
  for (size_t i = 0; i < id->nprojects; i++)
    if (platform_token_has_project(t, id->projects[i]))
      return 1;
  return 0;
}

/* An identity a project-limited token may write: one that applies to its
 * projects only (restricted, and to none but them); identities are
 * team-wide, so an unrestricted one is an admin's of every project. */
static int identity_within(const platform_token_t *t, const identity_t *id) {
  if (t->nprojects == 0)
    return 1;
  if (id->nprojects == 0)
    return 0;
  for (size_t i = 0; i < id->nprojects; i++)
    if (!platform_token_has_project(t, id->projects[i]))
      return 0;
  return 1;
}

/* ---- JSON views -------------------------------------------------------- */

/* Effective: a job never takes SSH, whatever its config says. */
static int service_ssh_on(const platform_service_t *s) {
  return s->kind == PLATFORM_KIND_SERVICE && s->ssh_enabled;
}

/* {"proxies", "streams", "otherEdges"}: what closes when SSH goes off. */
static cJSON *open_json(const admin_t *a, const platform_service_t *s) {
  admin_open_t n = {0};
  cJSON *o = cJSON_CreateObject();

  a->hooks.open_count(a->hooks.ctx, s, &n);
  if (o == NULL ||
      json_add(o, "proxies", cJSON_CreateNumber((double)n.proxies)) != 0 ||
      json_add(o, "streams", cJSON_CreateNumber((double)n.streams)) != 0 ||
      json_add(o, "otherEdges", cJSON_CreateBool(n.other_edges)) != 0) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

/* The Service of docs/ADMIN_API.md; the upstream stays private. */
static cJSON *service_json(const admin_t *a, const platform_service_t *s) {
  cJSON *o = cJSON_CreateObject();

  if (o == NULL || json_add(o, "id", cJSON_CreateString(s->id)) != 0 ||
      json_add(o, "projectId", cJSON_CreateString(s->project_id)) != 0 ||
      json_add(o, "name", cJSON_CreateString(s->name)) != 0 ||
      json_add(o, "kind",
               cJSON_CreateString(
                   s->kind == PLATFORM_KIND_JOB ? "job" : "service")) != 0 ||
      json_add(o, "tags", json_strings(s->tags, s->ntags)) != 0 ||
      json_add(o, "sshEnabled", cJSON_CreateBool(service_ssh_on(s))) != 0 ||
      (a->hooks.open_count != NULL &&
       json_add(o, "open", open_json(a, s)) != 0)) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

static cJSON *project_json(const platform_project_t *p) {
  cJSON *o = cJSON_CreateObject();

  if (o == NULL || json_add(o, "id", cJSON_CreateString(p->id)) != 0 ||
      json_add(o, "name", cJSON_CreateString(p->name)) != 0) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

/* {"<key>": [items...]}, taking each item. */
static cJSON *list_json(const char *key, cJSON **items, size_t n) {
  cJSON *doc = cJSON_CreateObject(), *arr = cJSON_CreateArray();
  int ok = doc != NULL && arr != NULL;

  for (size_t i = 0; i < n; i++) {
    if (ok && items[i] != NULL && cJSON_AddItemToArray(arr, items[i]))
      continue;
    ok = 0;
    cJSON_Delete(items[i]);
  }
  if (ok && cJSON_AddItemToObject(doc, key, arr))
    return doc;
  if (!ok || doc == NULL)
    cJSON_Delete(arr);
  cJSON_Delete(doc);
  return NULL;
}

/* ---- state changes ----------------------------------------------------- */

static int64_t admin_now(const admin_t *a) {
  return a->hooks.now != NULL ? a->hooks.now(a->hooks.ctx)
                              : (int64_t)time(NULL);
}

static void route_run(req_t *r);
static void req_finish(req_t *r);
static int method(const req_t *r, const char *m);

/* The view must be current enough to answer from (edge/store.h). */
static int view_ok(req_t *r) {
  if (store_view_fresh(r->a->store))
    return 1;
  respond_error(r, HTTP_UNAVAILABLE,
                "the platform state is unavailable (the database is away): "
                "try again later");
  return 0;
}

static const state_t *view(const req_t *r) {
  return store_view(r->a->store);
}

/* A store call is about to start: its callback answers. */
static void begin_async(req_t *r) {
  assert(!r->async);
  r->async = 1;
}

/* The store's answer, for any write: 0 when OK, else the error response
 * (or a rerun for STALE) is set up. */
static int store_failed(req_t *r, const store_result_t *res) {
  switch (res->status) {
  case STORE_OK:
    return 0;
  case STORE_STALE:
    if (r->stale_tries++ < STALE_TRIES) {
      r->rerun = 1;
      return -1;
    }
    respond_error(r, HTTP_CONFLICT,
                  "SSH identity %s keeps changing concurrently: try again",
                  r->key);
    return -1;
  case STORE_NOT_FOUND:
    respond_error(r, HTTP_NOT_FOUND, "SSH identity %s not found", r->key);
    return -1;
  case STORE_CONFLICT: {
    /* Another edge took the name after this one checked its view. */
    char q[TEXT_QUOTE_SIZE];
    text_quote(q, sizeof q, r->name);
    respond_error(r, HTTP_CONFLICT,
                  "name %s is already used by another SSH identity", q);
    return -1;
  }
  case STORE_UNAVAILABLE:
    respond_error(r, HTTP_UNAVAILABLE, "%s", res->message);
    return -1;
  default:
    respond_error(r, HTTP_INTERNAL, "%s", res->message);
    return -1;
  }
}

/* After a store callback: reply, unless the route is still running (it
 * replies when it returns) or must run again. */
static void end_async(req_t *r) {
  r->async = 0;
  if (r->in_route)
    return;
  if (r->rerun)
    route_run(r);
  else
    req_finish(r);
}

/* ---- projects and services --------------------------------------------- */

/* Ids from the path passed segments_valid(), so they are echoed as they
 * are, like platform_check_ssh() does. */
static const platform_project_t *find_project(req_t *r, const char *id) {
  const platform_project_t *p = platform_find_project(r->a->platform, id);

  if (p == NULL)
    respond_error(r, HTTP_NOT_FOUND, "project %s not found", id);
  return p;
}

static platform_service_t *find_service(req_t *r, const char *pid,
                                        const char *sid) {
  const platform_service_t *s;

  if (find_project(r, pid) == NULL)
    return NULL;
  s = platform_find_service(r->a->platform, pid, sid);
  if (s == NULL) {
    respond_error(r, HTTP_NOT_FOUND, "service %s not found in project %s", sid,
                  pid);
    return NULL;
  }
  /* The admin owns the effective SSH switch of the platform's services
   * (admin.h); the platform's lookups are const for everyone else. */
  return (platform_service_t *)s;
}

static int get_projects(req_t *r) {
  const platform_t *p = r->a->platform;
  cJSON **items = p->nprojects ? calloc(p->nprojects, sizeof *items) : NULL;
  cJSON *doc;

  if (p->nprojects > 0 && items == NULL)
    return respond_oom(r);
  size_t n = 0;
  for (size_t i = 0; i < p->nprojects; i++)
    if (platform_token_has_project(r->token, p->projects[i].id))
      items[n++] = project_json(&p->projects[i]);
  doc = list_json("projects", items, n);
  free(items);
  return doc != NULL ? respond_json(r, HTTP_OK, doc) : respond_oom(r);
}

static int get_services(req_t *r, const char *pid) {
  const platform_t *p = r->a->platform;
  cJSON **items;
  cJSON *doc;
  size_t n = 0;

  if (find_project(r, pid) == NULL)
    return r->resp.status;
  items = p->nservices ? calloc(p->nservices, sizeof *items) : NULL;
  if (p->nservices > 0 && items == NULL)
    return respond_oom(r);
  for (size_t i = 0; i < p->nservices; i++)
    if (strcmp(p->services[i].project_id, pid) == 0)
      items[n++] = service_json(r->a, &p->services[i]);
  doc = list_json("services", items, n);
  free(items);
  return doc != NULL ? respond_json(r, HTTP_OK, doc) : respond_oom(r);
}

static int get_service(req_t *r, const char *pid, const char *sid) {
  platform_service_t *s = find_service(r, pid, sid);
  cJSON *doc;

  if (s == NULL)
    return r->resp.status;
  doc = service_json(r->a, s);
  return doc != NULL ? respond_json(r, HTTP_OK, doc) : respond_oom(r);
}

static cJSON *parse_body(req_t *r, const char *const *allowed) {
  char err[MSG_SIZE];
  cJSON *doc = json_parse_strict(r->body, r->len, err, sizeof err);

  if (doc == NULL) {
    /* A byte offset needs saying what it counts in; any other message
     * starts with the path of the field. */
    respond_error(r, HTTP_BAD_REQUEST, "%s%s",
                  strncmp(err, JSON_SYNTAX_ERROR, strlen(JSON_SYNTAX_ERROR)) ==
                          0
                      ? "request body: "
                      : "",
                  err);
    return NULL;
  }
  if (allowed != NULL &&
      json_check_object(doc, "", allowed, "field", err, sizeof err) != 0) {
    cJSON_Delete(doc);
    respond_error(r, HTTP_BAD_REQUEST, "%s", err);
    return NULL;
  }
  return doc;
}

/* {"ssh": true|false}; 0 with *on, or an error response. */
static int parse_ssh_switch(req_t *r, int *on) {
  static const char *const fields[] = {"ssh", NULL};
  cJSON *doc = parse_body(r, fields);
  const cJSON *v;

  if (doc == NULL)
    return -1;
  v = cJSON_GetObjectItemCaseSensitive(doc, "ssh");
  if (!cJSON_IsBool(v)) {
    respond_error(r, HTTP_BAD_REQUEST, "ssh: %s",
                  v == NULL ? "required" : "expected true or false");
    cJSON_Delete(doc);
    return -1;
  }
  *on = cJSON_IsTrue(v);
  cJSON_Delete(doc);
  return 0;
}

typedef struct {
  req_t *r;
  platform_service_t *svc;
  int on;
} ssh_write_t;

static int get_service(req_t *r, const char *pid, const char *sid);

static void on_ssh_written(void *ctx, const store_result_t *res) {
  req_t *r = ctx;
  if (store_failed(r, res) == 0) {
    platform_service_t *s = (platform_service_t *)platform_find_service(
        r->a->platform, r->seg[2], r->seg[4]);
    /* The view changed (and with it the platform's switch) already; the
     * edge is told anyway when SSH goes off: closing nothing is harmless,
     * and no connection may outlive a "false" answer. */
    if (s != NULL && !s->ssh_enabled && r->a->hooks.ssh_disabled != NULL)
      r->a->hooks.ssh_disabled(r->a->hooks.ctx, s);
    get_service(r, r->seg[2], r->seg[4]);
  }
  end_async(r);
}

static int patch_service(req_t *r, const char *pid, const char *sid) {
  platform_service_t *s;
  int on;

  if (!may_write(r, "switch SSH of services"))
    return r->resp.status;
  s = find_service(r, pid, sid);
  if (s == NULL || parse_ssh_switch(r, &on) != 0)
    return r->resp.status;
  if (on && s->kind == PLATFORM_KIND_JOB)
    return respond_error(r, HTTP_CONFLICT,
                         "SSH access is available for services only");
  begin_async(r);
  store_ssh_set(r->a->store, s->project_id, s->id, on, r->token->id,
                on_ssh_written, r);
  return 0;
}

static int get_authorized_keys(req_t *r, const char *pid, const char *sid) {
  const state_t *st = view(r);
  platform_service_t *s = find_service(r, pid, sid);
  char *text;
  size_t len = 0;

  if (s == NULL || !view_ok(r))
    return r->resp.status;
  text = identity_authorized_keys(st->identities, st->nidentities,
                                  s->project_id, s->tags, s->ntags, &len);
  if (text == NULL)
    return respond_oom(r);
  return respond(r, HTTP_OK, ADMIN_TYPE_TEXT, text, len);
}

/* ---- identities -------------------------------------------------------- */

static int get_identities(req_t *r) {
  const state_t *st = view(r);
  cJSON **items;
  cJSON *doc;

  if (!view_ok(r))
    return r->resp.status;
  items = st->nidentities ? calloc(st->nidentities, sizeof *items) : NULL;
  if (st->nidentities > 0 && items == NULL)
    return respond_oom(r);
  size_t n = 0;
  for (size_t i = 0; i < st->nidentities; i++)
    if (identity_visible(r->token, &st->identities[i]))
      items[n++] = identity_to_json(&st->identities[i]);
  doc = list_json("identities", items, n);
  free(items);
  return doc != NULL ? respond_json(r, HTTP_OK, doc) : respond_oom(r);
}

static long find_identity(req_t *r, const char *key) {
  long i;

  if (!view_ok(r))
    return -1;
  i = state_find_identity(view(r), key);
  if (i < 0) {
    respond_error(r, HTTP_NOT_FOUND, "SSH identity %s not found", key);
  } else if (!identity_visible(r->token, &view(r)->identities[i])) {
    deny(r, "access SSH identity %s, which applies to none of its projects",
         key);
    i = -1;
  }
  return i;
}

static int respond_identity(req_t *r, int status, const identity_t *id) {
  cJSON *doc = identity_to_json(id);

  return doc != NULL ? respond_json(r, status, doc) : respond_oom(r);
}

static int check_name_free(req_t *r, const identity_t *id, long self) {
  char q[TEXT_QUOTE_SIZE];
  const state_t *st = view(r);
  long other = state_find_name(st, id->name, self);

  /* Nor another identity's id: lookups take either, and state_parse()
   * refuses such a file at the next start (ids need not look generated). */
  for (size_t i = 0; other < 0 && i < st->nidentities; i++)
    if ((long)i != self && strcmp(st->identities[i].id, id->name) == 0)
      other = (long)i;
  if (other < 0)
    return 0;
  text_quote(q, sizeof q, id->name);
  respond_error(r, HTTP_CONFLICT, "name %s is already used by SSH identity %s",
                q, st->identities[other].id);
  return -1;
}

/* Validate the body against base (NULL: create) into *out. 0, or an error
 * response with *out zeroed. */
static int identity_from_body(req_t *r, const identity_t *base, long self,
                              identity_t *out) {
  char err[MSG_SIZE];
  cJSON *doc = parse_body(r, NULL);
  int rc;

  memset(out, 0, sizeof *out);
  if (doc == NULL)
    return -1;
  rc = identity_apply_json(base, doc, out, err, sizeof err);
  cJSON_Delete(doc);
  if (rc != 0) {
    respond_error(r, HTTP_BAD_REQUEST, "%s", err);
    return -1;
  }
  if (check_name_free(r, out, self) != 0) {
    identity_clear(out);
    return -1;
  }
  return 0;
}

static int new_id(const state_t *st, identity_t *id) {
  char buf[IDENTITY_ID_SIZE];

  for (int i = 0; i < ID_TRIES; i++) {
    if (identity_id_generate(buf) != 0)
      return -1;
    if (state_find_identity(st, buf) < 0)
      return (id->id = strdup(buf)) != NULL ? 0 : -1;
  }
  return -1;
}

/* A create or update was stored: answer with the identity as stored. */
static void on_identity_written(void *ctx, const store_result_t *res) {
  req_t *r = ctx;
  if (store_failed(r, res) == 0) {
    if (res->identity != NULL)
      respond_identity(r, method(r, "POST") ? HTTP_CREATED : HTTP_OK,
                       res->identity);
    else
      respond_error(r, HTTP_INTERNAL,
                    "the identity was stored but is not "
                    "in the view");
  }
  end_async(r);
}

static int post_identity(req_t *r) {
  admin_t *a = r->a;
  identity_t id;

  if (!may_write(r, "create SSH identities") || !view_ok(r) ||
      identity_from_body(r, NULL, -1, &id) != 0)
    return r->resp.status;
  if (!identity_within(r->token, &id)) {
    identity_clear(&id);
    return deny(r, "create an SSH identity that applies outside its projects "
                   "(give \"projects\" among them)");
  }
  if (new_id(view(r), &id) != 0) {
    identity_clear(&id);
    return respond_error(r, HTTP_INTERNAL, "cannot generate an identity id");
  }
  id.created_at = id.updated_at = admin_now(a);
  snprintf(r->key, sizeof r->key, "%s", id.id);
  snprintf(r->name, sizeof r->name, "%s", id.name);
  begin_async(r);
  store_identity_create(a->store, &id, r->token->id, on_identity_written, r);
  identity_clear(&id);
  return 0;
}

static int get_identity(req_t *r, const char *key) {
  long i = find_identity(r, key);

  return i < 0 ? r->resp.status
               : respond_identity(r, HTTP_OK, &view(r)->identities[i]);
}

static int patch_identity(req_t *r, const char *key) {
  admin_t *a = r->a;
  long i;
  identity_t id;

  if (!may_write(r, "update SSH identities") || (i = find_identity(r, key)) < 0)
    return r->resp.status;
  const identity_t *base = &view(r)->identities[i];
  int64_t base_rev = base->rev;
  if (!identity_within(r->token, base))
    return deny(r, "update SSH identity %s, which applies outside its projects",
                key);
  if (identity_from_body(r, base, i, &id) != 0)
    return r->resp.status;
  if (!identity_within(r->token, &id)) {
    identity_clear(&id);
    return deny(r, "make SSH identity %s apply outside its projects", key);
  }
  id.updated_at = admin_now(a);
  snprintf(r->key, sizeof r->key, "%s", id.id);
  snprintf(r->name, sizeof r->name, "%s", id.name);
  begin_async(r);
  store_identity_update(a->store, &id, base_rev, r->token->id,
                        on_identity_written, r);
  identity_clear(&id);
  return 0;
}

static void on_identity_deleted(void *ctx, const store_result_t *res) {
  req_t *r = ctx;
  if (store_failed(r, res) == 0)
    respond(r, HTTP_NO_CONTENT, NULL, NULL, 0);
  end_async(r);
}

static int delete_identity(req_t *r, const char *key) {
  long i;

  if (!may_write(r, "delete SSH identities") || (i = find_identity(r, key)) < 0)
    return r->resp.status;
  const identity_t *id = &view(r)->identities[i];
  if (!identity_within(r->token, id))
    return deny(r, "delete SSH identity %s, which applies outside its projects",
                key);
  snprintf(r->key, sizeof r->key, "%s", id->id);
  begin_async(r);
  store_identity_delete(r->a->store, r->key, id->rev, r->token->id,
                        on_identity_deleted, r);
  return 0;
}

/* ---- audit ------------------------------------------------------------- */

static void on_audit(void *ctx, store_status_t st, const store_audit_t *recs,
                     size_t n, const char *message) {
  req_t *r = ctx;
  char at[IDENTITY_TIME_SIZE];
  cJSON *doc = NULL, *arr = NULL;

  if (st != STORE_OK) {
    respond_error(r, st == STORE_UNAVAILABLE ? HTTP_UNAVAILABLE : HTTP_INTERNAL,
                  "the audit log cannot be read: %s", message);
    end_async(r);
    return;
  }
  doc = cJSON_CreateObject();
  arr = doc != NULL ? cJSON_AddArrayToObject(doc, "audit") : NULL;
  for (size_t i = 0; arr != NULL && i < n; i++) {
    cJSON *o = cJSON_CreateObject();
    if (identity_time_format(recs[i].at, at) != 0)
      snprintf(at, sizeof at, "1970-01-01T00:00:00Z");
    if (o == NULL || json_add(o, "at", cJSON_CreateString(at)) != 0 ||
        json_add(o, "tokenId", cJSON_CreateString(recs[i].token_id)) != 0 ||
        json_add(o, "action", cJSON_CreateString(recs[i].action)) != 0 ||
        json_add(o, "target", cJSON_CreateString(recs[i].target)) != 0 ||
        json_add(o, "detail", cJSON_CreateString(recs[i].detail)) != 0 ||
        !cJSON_AddItemToArray(arr, o)) {
      cJSON_Delete(o);
      arr = NULL;
    }
  }
  if (arr == NULL) {
    cJSON_Delete(doc);
    respond_oom(r);
  } else {
    respond_json(r, HTTP_OK, doc);
  }
  end_async(r);
}

static int get_audit(req_t *r) {
  if (!may_all(r, "read the audit log (an admin of every project may)"))
    return r->resp.status;
  begin_async(r);
  store_audit_list(r->a->store, AUDIT_LIMIT, on_audit, r);
  return 0;
}

/* ---- routing ----------------------------------------------------------- */

/* Splits "/v1/a/b" into segments; an empty one ("//", trailing "/") makes
 * the path unroutable. 0, or -1. */
static int split_path(req_t *r) {
  char *save = NULL, *tok;
  size_t n = strlen(r->path);

  if (n < 2 || r->path[0] != '/' || r->path[n - 1] == '/' ||
      strstr(r->path, "//") != NULL)
    return -1;
  r->segbuf = strdup(r->path + 1);
  if (r->segbuf == NULL)
    return -1;
  for (tok = strtok_r(r->segbuf, "/", &save); tok != NULL;
       tok = strtok_r(NULL, "/", &save)) {
    if (r->nseg == SEG_MAX)
      return -1;
    r->seg[r->nseg++] = tok;
  }
  return 0;
}

static int is(const req_t *r, size_t i, const char *word) {
  return i < r->nseg && strcmp(r->seg[i], word) == 0;
}

static int not_found(req_t *r) {
  char q[TEXT_QUOTE_SIZE];

  text_quote(q, sizeof q, r->path);
  return respond_error(r, HTTP_NOT_FOUND, "no such route: %s", q);
}

static int not_allowed(req_t *r, const char *allowed) {
  char q[TEXT_QUOTE_SIZE];

  text_quote(q, sizeof q, r->method);
  return respond_error(r, HTTP_METHOD_NOT_ALLOWED,
                       "method %s is not allowed here (allowed: %s)", q,
                       allowed);
}

static int method(const req_t *r, const char *m) {
  return strcmp(r->method, m) == 0;
}

/* /v1/projects/... */
static int route_projects(req_t *r) {
  const char *pid = r->nseg > 2 ? r->seg[2] : NULL;
  const char *sid = r->nseg > 4 ? r->seg[4] : NULL;

  if (r->nseg == 2)
    return method(r, "GET") ? get_projects(r) : not_allowed(r, "GET");
  if (r->nseg < 4 || !is(r, 3, "services"))
    return not_found(r);
  if (!may_project(r, pid))
    return r->resp.status;
  if (r->nseg == 4)
    return method(r, "GET") ? get_services(r, pid) : not_allowed(r, "GET");
  if (r->nseg == 5) {
    if (method(r, "GET"))
      return get_service(r, pid, sid);
    return method(r, "PATCH") ? patch_service(r, pid, sid)
                              : not_allowed(r, "GET, PATCH");
  }
  if (is(r, 5, "authorized-keys"))
    return method(r, "GET") ? get_authorized_keys(r, pid, sid)
                            : not_allowed(r, "GET");
  /* .../ssh is the WebSocket endpoint; a plain request there is a client
   * that does not speak WebSocket. */
  if (is(r, 5, "ssh"))
    return respond_error(r, HTTP_NOT_FOUND,
                         "%s is the WebSocket endpoint of the service; use "
                         "`wsmux ssh service`",
                         r->path);
  return not_found(r);
}

/* /v1/ssh-identities[/{idOrName}] */
static int route_identities(req_t *r) {
  if (r->nseg == 2) {
    if (method(r, "GET"))
      return get_identities(r);
    return method(r, "POST") ? post_identity(r) : not_allowed(r, "GET, POST");
  }
  if (r->nseg != 3)
    return not_found(r);
  if (method(r, "GET"))
    return get_identity(r, r->seg[2]);
  if (method(r, "PATCH"))
    return patch_identity(r, r->seg[2]);
  if (method(r, "DELETE"))
    return delete_identity(r, r->seg[2]);
  return not_allowed(r, "GET, PATCH, DELETE");
}

/* Ids in paths follow the id rule; anything else cannot name a thing. */
static int segments_valid(const req_t *r) {
  for (size_t i = 0; i < r->nseg; i++)
    if (!id_valid(r->seg[i]))
      return 0;
  return 1;
}

static int route(req_t *r) {
  if (split_path(r) != 0 || !is(r, 0, "v1") || !segments_valid(r))
    return not_found(r);
  if (r->len > ADMIN_BODY_MAX)
    return respond_error(r, HTTP_TOO_LARGE, "request body larger than %d bytes",
                         ADMIN_BODY_MAX);
  if (is(r, 1, "projects"))
    return route_projects(r);
  if (is(r, 1, "ssh-identities"))
    return route_identities(r);
  if (is(r, 1, "audit") && r->nseg == 2)
    return method(r, "GET") ? get_audit(r) : not_allowed(r, "GET");
  return not_found(r);
}

static void req_free(req_t *r) {
  free(r->resp.body);
  free(r->method);
  free(r->path);
  free(r->body);
  free(r->segbuf);
  free(r);
}

static void req_finish(req_t *r) {
  assert(r->responded && !r->async);
  admin_response_t resp = r->resp;
  r->resp.body = NULL; /* the reply takes it */
  r->reply(r->reply_ctx, &resp);
  req_free(r);
}

/* Route r (again, after a STALE), then reply unless a store call is
 * under way. */
static void route_run(req_t *r) {
  do {
    r->rerun = 0;
    if (r->responded) { /* a STALE's error response is superseded */
      admin_response_clear(&r->resp);
      r->responded = 0;
    }
    free(r->segbuf);
    r->segbuf = NULL;
    r->nseg = 0;
    r->in_route = 1;
    route(r);
    r->in_route = 0;
  } while (r->rerun && !r->async);
  if (!r->async)
    req_finish(r);
}

static char *dup_bytes(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (d != NULL) {
    if (n > 0)
      memcpy(d, s, n);
    d[n] = '\0';
  }
  return d;
}

void admin_handle(admin_t *a, const admin_request_t *req, admin_reply_fn reply,
                  void *ctx) {
  req_t *r = calloc(1, sizeof *r);
  const char *m = req->method != NULL ? req->method : "";
  const char *path = req->path != NULL ? req->path : "";

  if (r == NULL || (r->method = strdup(m)) == NULL ||
      (r->path = strdup(path)) == NULL ||
      (r->body = dup_bytes(req->body ? req->body : "", req->len)) == NULL) {
    admin_response_t oom = {.status = HTTP_INTERNAL};
    if (r != NULL)
      req_free(r);
    reply(ctx, &oom);
    return;
  }
  r->a = a;
  r->len = req->len;
  r->reply = reply;
  r->reply_ctx = ctx;
  /* Checked first, so a caller without a token learns nothing about which
   * routes, projects or identities exist. */
  r->token = platform_find_token(a->platform, req->bearer,
                                 req->bearer != NULL ? strlen(req->bearer) : 0);
  if (r->token == NULL) {
    respond_error(r, HTTP_UNAUTHORIZED, "invalid or missing API token");
    req_finish(r);
    return;
  }
  route_run(r);
}

/* ---- lifecycle --------------------------------------------------------- */

admin_t *admin_new(platform_t *platform, store_t *store,
                   const admin_hooks_t *hooks) {
  admin_t *a = calloc(1, sizeof *a);

  if (a == NULL)
    return NULL;
  a->platform = platform;
  a->store = store;
  if (hooks != NULL)
    a->hooks = *hooks;
  return a;
}

void admin_free(admin_t *a) {
  free(a);
}
