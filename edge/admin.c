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

/* "/v1/projects/{p}/services/{s}/authorized-keys" has 6 segments. */
#define SEG_MAX 6
#define MSG_SIZE 768
/* Tries at a fresh random id; a clash in 64 bits means a broken RNG. */
#define ID_TRIES 4

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
  HTTP_NOT_FOUND = 404,
  HTTP_METHOD_NOT_ALLOWED = 405,
  HTTP_CONFLICT = 409,
  HTTP_TOO_LARGE = 413,
  HTTP_INTERNAL = 500,
};

struct admin {
  platform_t *platform; /* borrowed */
  state_t *state;       /* owned; replaced wholesale on every change */
  admin_hooks_t hooks;
};

/* The request being answered. */
typedef struct {
  admin_t *a;
  const char *method;
  const char *path;
  const char *body;
  size_t len;
  admin_response_t *resp;
  char *seg[SEG_MAX]; /* path segments, into segbuf */
  size_t nseg;
  char *segbuf;
} req_t;

/* ---- responses --------------------------------------------------------- */

static int respond(req_t *r, int status, const char *type, char *body,
                   size_t len) {
  r->resp->status = status;
  r->resp->content_type = type;
  r->resp->body = body;
  r->resp->body_len = len;
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
  r->resp->status = status;
  return status;
}

static int respond_oom(req_t *r) {
  return respond_error(r, HTTP_INTERNAL, "out of memory");
}

void admin_response_clear(admin_response_t *resp) {
  free(resp->body);
  memset(resp, 0, sizeof *resp);
}

/* ---- JSON views -------------------------------------------------------- */

/* Effective: a job never takes SSH, whatever its config says. */
static int service_ssh_on(const platform_service_t *s) {
  return s->kind == PLATFORM_KIND_SERVICE && s->ssh_enabled;
}

/* The Service of docs/ADMIN_API.md; the upstream stays private. */
static cJSON *service_json(const platform_service_t *s) {
  cJSON *o = cJSON_CreateObject();

  if (o == NULL || json_add(o, "id", cJSON_CreateString(s->id)) != 0 ||
      json_add(o, "projectId", cJSON_CreateString(s->project_id)) != 0 ||
      json_add(o, "name", cJSON_CreateString(s->name)) != 0 ||
      json_add(o, "kind",
               cJSON_CreateString(
                   s->kind == PLATFORM_KIND_JOB ? "job" : "service")) != 0 ||
      json_add(o, "tags", json_strings(s->tags, s->ntags)) != 0 ||
      json_add(o, "sshEnabled", cJSON_CreateBool(service_ssh_on(s))) != 0) {
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

/* Persist next and make it current, or drop it. 0, or an error response. */
static int commit(req_t *r, state_t *next) {
  admin_t *a = r->a;
  char err[MSG_SIZE];
  state_save_result_t rc =
      state_save(next, a->platform->state_file, err, sizeof err);

  if (rc == STATE_SAVE_FAILED) {
    state_free(next);
    respond_error(r, HTTP_INTERNAL,
                  "the state file could not be written, "
                  "nothing changed: %s",
                  err);
    return -1;
  }
  if (rc == STATE_SAVE_NOT_SYNCED && a->hooks.warn != NULL)
    a->hooks.warn(a->hooks.ctx, err);
  state_free(a->state);
  a->state = next;
  return 0;
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
  for (size_t i = 0; i < p->nprojects; i++)
    items[i] = project_json(&p->projects[i]);
  doc = list_json("projects", items, p->nprojects);
  free(items);
  return doc != NULL ? respond_json(r, HTTP_OK, doc) : respond_oom(r);
}

static int get_services(req_t *r, const char *pid) {
  const platform_t *p = r->a->platform;
  cJSON **items;
  cJSON *doc;
  size_t n = 0;

  if (find_project(r, pid) == NULL)
    return r->resp->status;
  items = p->nservices ? calloc(p->nservices, sizeof *items) : NULL;
  if (p->nservices > 0 && items == NULL)
    return respond_oom(r);
  for (size_t i = 0; i < p->nservices; i++)
    if (strcmp(p->services[i].project_id, pid) == 0)
      items[n++] = service_json(&p->services[i]);
  doc = list_json("services", items, n);
  free(items);
  return doc != NULL ? respond_json(r, HTTP_OK, doc) : respond_oom(r);
}

static int get_service(req_t *r, const char *pid, const char *sid) {
  platform_service_t *s = find_service(r, pid, sid);
  cJSON *doc;

  if (s == NULL)
    return r->resp->status;
  doc = service_json(s);
  return doc != NULL ? respond_json(r, HTTP_OK, doc) : respond_oom(r);
}

static cJSON *parse_body(req_t *r, const char *const *allowed) {
  char err[MSG_SIZE];
  cJSON *doc = json_parse_strict(r->body, r->len, err, sizeof err);

  if (doc == NULL) {
    respond_error(r, HTTP_BAD_REQUEST, "request body: %s", err);
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

static int patch_service(req_t *r, const char *pid, const char *sid) {
  admin_t *a = r->a;
  platform_service_t *s = find_service(r, pid, sid);
  state_t *next;
  int on;

  if (s == NULL || parse_ssh_switch(r, &on) != 0)
    return r->resp->status;
  if (on && s->kind == PLATFORM_KIND_JOB)
    return respond_error(r, HTTP_CONFLICT,
                         "SSH access is available for services only");
  next = state_clone(a->state);
  if (next == NULL || state_set_ssh(next, s->project_id, s->id, on) != 0) {
    state_free(next);
    return respond_oom(r);
  }
  if (commit(r, next) != 0)
    return r->resp->status;
  s->ssh_enabled = on;
  /* Tell the edge even when it was already off: closing nothing is
   * harmless, and no connection can outlive a "false" answer. */
  if (!on && a->hooks.ssh_disabled != NULL)
    a->hooks.ssh_disabled(a->hooks.ctx, s);
  return get_service(r, pid, sid);
}

static int get_authorized_keys(req_t *r, const char *pid, const char *sid) {
  const state_t *st = r->a->state;
  platform_service_t *s = find_service(r, pid, sid);
  char *text;
  size_t len = 0;

  if (s == NULL)
    return r->resp->status;
  text = identity_authorized_keys(st->identities, st->nidentities,
                                  s->project_id, s->tags, s->ntags, &len);
  if (text == NULL)
    return respond_oom(r);
  return respond(r, HTTP_OK, ADMIN_TYPE_TEXT, text, len);
}

/* ---- identities -------------------------------------------------------- */

static int get_identities(req_t *r) {
  const state_t *st = r->a->state;
  cJSON **items =
      st->nidentities ? calloc(st->nidentities, sizeof *items) : NULL;
  cJSON *doc;

  if (st->nidentities > 0 && items == NULL)
    return respond_oom(r);
  for (size_t i = 0; i < st->nidentities; i++)
    items[i] = identity_to_json(&st->identities[i]);
  doc = list_json("identities", items, st->nidentities);
  free(items);
  return doc != NULL ? respond_json(r, HTTP_OK, doc) : respond_oom(r);
}

static long find_identity(req_t *r, const char *key) {
  long i = state_find_identity(r->a->state, key);

  if (i < 0)
    respond_error(r, HTTP_NOT_FOUND, "SSH identity %s not found", key);
  return i;
}

static int respond_identity(req_t *r, int status, const identity_t *id) {
  cJSON *doc = identity_to_json(id);

  return doc != NULL ? respond_json(r, status, doc) : respond_oom(r);
}

static int check_name_free(req_t *r, const identity_t *id, long self) {
  char q[TEXT_QUOTE_SIZE];
  const state_t *st = r->a->state;
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
                q, r->a->state->identities[other].id);
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

static int post_identity(req_t *r) {
  admin_t *a = r->a;
  identity_t id;
  state_t *next;

  if (identity_from_body(r, NULL, -1, &id) != 0)
    return r->resp->status;
  if (new_id(a->state, &id) != 0) {
    identity_clear(&id);
    return respond_error(r, HTTP_INTERNAL, "cannot generate an identity id");
  }
  id.created_at = id.updated_at = admin_now(a);
  next = state_clone(a->state);
  if (next == NULL || state_add_identity(next, &id) != 0) {
    identity_clear(&id);
    state_free(next);
    return respond_oom(r);
  }
  if (commit(r, next) != 0)
    return r->resp->status;
  return respond_identity(r, HTTP_CREATED,
                          &a->state->identities[a->state->nidentities - 1]);
}

static int get_identity(req_t *r, const char *key) {
  long i = find_identity(r, key);

  return i < 0 ? r->resp->status
               : respond_identity(r, HTTP_OK, &r->a->state->identities[i]);
}

static int patch_identity(req_t *r, const char *key) {
  admin_t *a = r->a;
  long i = find_identity(r, key);
  identity_t id;
  state_t *next;

  if (i < 0 || identity_from_body(r, &a->state->identities[i], i, &id) != 0)
    return r->resp->status;
  id.updated_at = admin_now(a);
  next = state_clone(a->state);
  if (next == NULL) {
    identity_clear(&id);
    return respond_oom(r);
  }
  state_replace_identity(next, (size_t)i, &id);
  if (commit(r, next) != 0)
    return r->resp->status;
  return respond_identity(r, HTTP_OK, &a->state->identities[i]);
}

static int delete_identity(req_t *r, const char *key) {
  long i = find_identity(r, key);
  state_t *next;

  if (i < 0)
    return r->resp->status;
  next = state_clone(r->a->state);
  if (next == NULL)
    return respond_oom(r);
  state_remove_identity(next, (size_t)i);
  if (commit(r, next) != 0)
    return r->resp->status;
  return respond(r, HTTP_NO_CONTENT, NULL, NULL, 0);
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
  return not_found(r);
}

int admin_handle(admin_t *a, const char *method_, const char *path,
                 const char *bearer, const char *body, size_t len,
                 admin_response_t *resp) {
  req_t r = {.a = a,
             .method = method_ != NULL ? method_ : "",
             .path = path != NULL ? path : "",
             .body = body,
             .len = len,
             .resp = resp};
  int status;

  memset(resp, 0, sizeof *resp);
  /* Checked first, so a caller without a token learns nothing about which
   * routes, projects or identities exist. */
  if (platform_find_token(a->platform, bearer,
                          bearer != NULL ? strlen(bearer) : 0) == NULL)
    return respond_error(&r, HTTP_UNAUTHORIZED, "invalid or missing API token");
  status = route(&r);
  free(r.segbuf);
  return status;
}

/* ---- lifecycle --------------------------------------------------------- */

admin_t *admin_new(platform_t *platform, state_t *state,
                   const admin_hooks_t *hooks) {
  admin_t *a = calloc(1, sizeof *a);

  if (a == NULL) {
    state_free(state);
    return NULL;
  }
  a->platform = platform;
  a->state = state;
  if (hooks != NULL)
    a->hooks = *hooks;
  state_apply(state, platform);
  return a;
}

void admin_free(admin_t *a) {
  if (a == NULL)
    return;
  state_free(a->state);
  free(a);
}

const state_t *admin_state(const admin_t *a) {
  return a->state;
}
