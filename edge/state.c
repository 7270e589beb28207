/* Edge state: parse, serialize, atomic save, edits. See state.h. */
#include "edge/state.h"

#include "base/file.h"
#include "base/id.h"
#include "base/json.h"
#include "base/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Same bound as the config: the state is small, a huge file is a mistake. */
#define STATE_FILE_MAX (16u << 20)
#define PATH_BUF 96
#define NEW_FILE_MODE 0644

static const char *const root_fields[] = {"version", "identities", "services",
                                          NULL};
static const char *const ssh_fields[] = {"projectId", "serviceId", "sshEnabled",
                                         NULL};

/* ---- memory ------------------------------------------------------------ */

state_t *state_new(void) {
  return calloc(1, sizeof(state_t));
}

static void ssh_clear(state_ssh_t *w) {
  free(w->project_id);
  free(w->service_id);
  memset(w, 0, sizeof *w);
}

void state_free(state_t *s) {
  if (s == NULL)
    return;
  for (size_t i = 0; i < s->nidentities; i++)
    identity_clear(&s->identities[i]);
  free(s->identities);
  for (size_t i = 0; i < s->nssh; i++)
    ssh_clear(&s->ssh[i]);
  free(s->ssh);
  free(s);
}

static int ssh_init(state_ssh_t *w, const char *project_id,
                    const char *service_id, int enabled) {
  w->project_id = strdup(project_id);
  w->service_id = strdup(service_id);
  w->ssh_enabled = enabled;
  if (w->project_id != NULL && w->service_id != NULL)
    return 0;
  ssh_clear(w);
  return -1;
}

state_t *state_clone(const state_t *s) {
  state_t *c = state_new();

  if (c == NULL)
    return NULL;
  if (s->nidentities > 0 &&
      (c->identities = calloc(s->nidentities, sizeof *c->identities)) == NULL)
    goto oom;
  for (; c->nidentities < s->nidentities; c->nidentities++)
    if (identity_copy(&c->identities[c->nidentities],
                      &s->identities[c->nidentities]) != 0)
      goto oom;
  if (s->nssh > 0 && (c->ssh = calloc(s->nssh, sizeof *c->ssh)) == NULL)
    goto oom;
  for (; c->nssh < s->nssh; c->nssh++)
    if (ssh_init(&c->ssh[c->nssh], s->ssh[c->nssh].project_id,
                 s->ssh[c->nssh].service_id, s->ssh[c->nssh].ssh_enabled) != 0)
      goto oom;
  return c;
oom:
  state_free(c);
  return NULL;
}

/* ---- edits ------------------------------------------------------------- */

long state_find_identity(const state_t *s, const char *id_or_name) {
  for (size_t i = 0; i < s->nidentities; i++)
    if (strcmp(s->identities[i].id, id_or_name) == 0)
      return (long)i;
  return state_find_name(s, id_or_name, -1);
}

long state_find_name(const state_t *s, const char *name, long except) {
  for (size_t i = 0; i < s->nidentities; i++)
    if ((long)i != except && strcmp(s->identities[i].name, name) == 0)
      return (long)i;
  return -1;
}

int state_add_identity(state_t *s, identity_t *id) {
  identity_t *v =
      realloc(s->identities, (s->nidentities + 1) * sizeof *s->identities);

  if (v == NULL)
    return -1;
  s->identities = v;
  s->identities[s->nidentities++] = *id;
  memset(id, 0, sizeof *id);
  return 0;
}

void state_replace_identity(state_t *s, size_t i, identity_t *id) {
  identity_clear(&s->identities[i]);
  s->identities[i] = *id;
  memset(id, 0, sizeof *id);
}

void state_remove_identity(state_t *s, size_t i) {
  identity_clear(&s->identities[i]);
  /* Keeps creation order, which listings and authorized_keys follow. */
  memmove(&s->identities[i], &s->identities[i + 1],
          (s->nidentities - i - 1) * sizeof *s->identities);
  s->nidentities--;
}

static long ssh_index(const state_t *s, const char *project_id,
                      const char *service_id) {
  for (size_t i = 0; i < s->nssh; i++)
    if (strcmp(s->ssh[i].project_id, project_id) == 0 &&
        strcmp(s->ssh[i].service_id, service_id) == 0)
      return (long)i;
  return -1;
}

const state_ssh_t *state_find_ssh(const state_t *s, const char *project_id,
                                  const char *service_id) {
  long i = ssh_index(s, project_id, service_id);

  return i >= 0 ? &s->ssh[i] : NULL;
}

int state_set_ssh(state_t *s, const char *project_id, const char *service_id,
                  int enabled) {
  long i = ssh_index(s, project_id, service_id);
  state_ssh_t *w;

  if (i >= 0) {
    s->ssh[i].ssh_enabled = enabled;
    return 0;
  }
  w = realloc(s->ssh, (s->nssh + 1) * sizeof *s->ssh);
  if (w == NULL)
    return -1;
  s->ssh = w;
  if (ssh_init(&s->ssh[s->nssh], project_id, service_id, enabled) != 0)
    return -1;
  s->nssh++;
  return 0;
}

void state_apply(const state_t *s, platform_t *p) {
  for (size_t i = 0; i < p->nservices; i++) {
    platform_service_t *svc = &p->services[i];
    const state_ssh_t *w = state_find_ssh(s, svc->project_id, svc->id);
    svc->ssh_enabled = w != NULL ? w->ssh_enabled : svc->ssh_enabled_config;
  }
}

/* ---- parse ------------------------------------------------------------- */

static int parse_version(const cJSON *root, char *err, size_t errlen) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "version");

  if (v == NULL)
    return json_fail(err, errlen, "version", "required");
  /* A newer edge's file may hold what this one would drop on its next
   * write; refusing keeps it intact. */
  if (!cJSON_IsNumber(v) || v->valuedouble != STATE_VERSION)
    return json_fail(err, errlen, "version", "expected %d (this edge's format)",
                     STATE_VERSION);
  return 0;
}

static const cJSON *get_array(const cJSON *root, const char *key, char *err,
                              size_t errlen, int *bad) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);

  *bad = 0;
  if (v == NULL || cJSON_IsArray(v))
    return v;
  *bad = 1;
  json_fail(err, errlen, key, "expected an array");
  return NULL;
}

/* Ids and names must stay unambiguous for lookups by id or name. */
static int check_identity_unique(const state_t *s, size_t i, char *err,
                                 size_t errlen) {
  const identity_t *id = &s->identities[i];
  char q[TEXT_QUOTE_SIZE];

  for (size_t j = 0; j < i; j++) {
    const identity_t *o = &s->identities[j];
    if (strcmp(o->id, id->id) == 0 || strcmp(o->name, id->id) == 0) {
      text_quote(q, sizeof q, id->id);
      return json_fail(
          err, errlen, NULL,
          "identities[%zu].id: %s is already used by identities[%zu]", i, q, j);
    }
    if (strcmp(o->name, id->name) == 0 || strcmp(o->id, id->name) == 0) {
      text_quote(q, sizeof q, id->name);
      return json_fail(err, errlen, NULL,
                       "identities[%zu].name: %s is already used by "
                       "identities[%zu]",
                       i, q, j);
    }
  }
  return 0;
}

static int parse_identities(const cJSON *root, state_t *s, char *err,
                            size_t errlen) {
  char path[PATH_BUF];
  const cJSON *arr, *v;
  int bad;

  arr = get_array(root, "identities", err, errlen, &bad);
  if (bad)
    return -1;
  if (arr == NULL || cJSON_GetArraySize(arr) == 0)
    return 0;
  s->identities = calloc((size_t)cJSON_GetArraySize(arr), sizeof(identity_t));
  if (s->identities == NULL)
    return json_fail(err, errlen, "identities", "out of memory");
  cJSON_ArrayForEach(v, arr) {
    json_path_index(path, sizeof path, "identities", s->nidentities);
    if (identity_from_json(v, path, &s->identities[s->nidentities], err,
                           errlen) != 0)
      return -1;
    s->nidentities++;
    if (check_identity_unique(s, s->nidentities - 1, err, errlen) != 0)
      return -1;
  }
  return 0;
}

static int parse_ssh_entry(const cJSON *v, const char *path, state_t *s,
                           char *err, size_t errlen) {
  const cJSON *pid = cJSON_GetObjectItemCaseSensitive(v, "projectId");
  const cJSON *sid = cJSON_GetObjectItemCaseSensitive(v, "serviceId");
  const cJSON *on = cJSON_GetObjectItemCaseSensitive(v, "sshEnabled");

  if (json_check_object(v, path, ssh_fields, "field", err, errlen) != 0)
    return -1;
  if (!cJSON_IsString(pid) || !id_valid(pid->valuestring))
    return json_fail(err, errlen, NULL, "%s.projectId: expected a project id",
                     path);
  if (!cJSON_IsString(sid) || !id_valid(sid->valuestring))
    return json_fail(err, errlen, NULL, "%s.serviceId: expected a service id",
                     path);
  if (!cJSON_IsBool(on))
    return json_fail(err, errlen, NULL, "%s.sshEnabled: expected true or false",
                     path);
  if (state_find_ssh(s, pid->valuestring, sid->valuestring) != NULL)
    return json_fail(err, errlen, path, "a second entry for the same service");
  if (ssh_init(&s->ssh[s->nssh], pid->valuestring, sid->valuestring,
               cJSON_IsTrue(on)) != 0)
    return json_fail(err, errlen, path, "out of memory");
  s->nssh++;
  return 0;
}

static int parse_services(const cJSON *root, state_t *s, char *err,
                          size_t errlen) {
  char path[PATH_BUF];
  const cJSON *arr, *v;
  int bad;

  arr = get_array(root, "services", err, errlen, &bad);
  if (bad)
    return -1;
  if (arr == NULL || cJSON_GetArraySize(arr) == 0)
    return 0;
  s->ssh = calloc((size_t)cJSON_GetArraySize(arr), sizeof *s->ssh);
  if (s->ssh == NULL)
    return json_fail(err, errlen, "services", "out of memory");
  cJSON_ArrayForEach(v, arr) {
    json_path_index(path, sizeof path, "services", s->nssh);
    if (parse_ssh_entry(v, path, s, err, errlen) != 0)
      return -1;
  }
  return 0;
}

int state_parse(const char *text, size_t len, state_t **out, char *err,
                size_t errlen) {
  cJSON *root = json_parse_strict(text, len, err, errlen);
  state_t *s;
  int rc;

  *out = NULL;
  if (root == NULL)
    return -1;
  s = state_new();
  if (s == NULL)
    rc = json_fail(err, errlen, NULL, "out of memory");
  else if (json_check_object(root, "state", root_fields, "field", err,
                             errlen) != 0)
    rc = -1;
  else
    rc = parse_version(root, err, errlen) != 0 ||
                 parse_identities(root, s, err, errlen) != 0 ||
                 parse_services(root, s, err, errlen) != 0
             ? -1
             : 0;
  cJSON_Delete(root);
  if (rc != 0) {
    state_free(s);
    return -1;
  }
  *out = s;
  return 0;
}

/* ---- load -------------------------------------------------------------- */

int state_load(const char *path, state_t **out, char *err, size_t errlen) {
  char *text = NULL, perr[IDENTITY_ERR_SIZE];
  size_t len = 0;
  file_read_result_t got;
  int rc;

  *out = NULL;
  got = file_read(path, STATE_FILE_MAX, FILE_READ_MISSING_OK, &text, &len, err,
                  errlen);
  /* No file yet: the edge writes it on the first change. */
  if (got == FILE_READ_MISSING) {
    *out = state_new();
    return *out != NULL ? 0 : json_fail(err, errlen, path, "out of memory");
  }
  if (got != FILE_READ_OK)
    return -1;
  rc = state_parse(text, len, out, perr, sizeof perr);
  free(text);
  if (rc != 0)
    return json_fail(err, errlen, path, "%s", perr);
  return 0;
}

/* ---- save -------------------------------------------------------------- */

static cJSON *ssh_to_json(const state_ssh_t *w) {
  cJSON *o = cJSON_CreateObject();

  if (o == NULL ||
      cJSON_AddStringToObject(o, "projectId", w->project_id) == NULL ||
      cJSON_AddStringToObject(o, "serviceId", w->service_id) == NULL ||
      cJSON_AddBoolToObject(o, "sshEnabled", w->ssh_enabled) == NULL) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

static cJSON *state_to_json(const state_t *s) {
  cJSON *root = cJSON_CreateObject(), *ids, *sw;

  if (root == NULL ||
      cJSON_AddNumberToObject(root, "version", STATE_VERSION) == NULL ||
      (ids = cJSON_AddArrayToObject(root, "identities")) == NULL ||
      (sw = cJSON_AddArrayToObject(root, "services")) == NULL)
    goto oom;
  for (size_t i = 0; i < s->nidentities; i++) {
    cJSON *o = identity_to_json(&s->identities[i]);
    if (o == NULL || !cJSON_AddItemToArray(ids, o)) {
      cJSON_Delete(o);
      goto oom;
    }
  }
  for (size_t i = 0; i < s->nssh; i++) {
    cJSON *o = ssh_to_json(&s->ssh[i]);
    if (o == NULL || !cJSON_AddItemToArray(sw, o)) {
      cJSON_Delete(o);
      goto oom;
    }
  }
  return root;
oom:
  cJSON_Delete(root);
  return NULL;
}

char *state_serialize(const state_t *s, size_t *len) {
  cJSON *root = state_to_json(s);
  char *text = root != NULL ? cJSON_Print(root) : NULL, *nl;
  size_t n;

  cJSON_Delete(root);
  if (text == NULL)
    return NULL;
  n = strlen(text);
  /* A trailing newline keeps `cat` and diffs of the file tidy. */
  nl = realloc(text, n + 2);
  if (nl == NULL) {
    free(text);
    return NULL;
  }
  nl[n] = '\n';
  nl[n + 1] = '\0';
  *len = n + 1;
  return nl;
}

state_save_result_t state_save(const state_t *s, const char *path, char *err,
                               size_t errlen) {
  size_t len = 0;
  char *text = state_serialize(s, &len);
  file_write_result_t rc;

  if (text == NULL) {
    json_fail(err, errlen, NULL, "cannot write %s: out of memory", path);
    return STATE_SAVE_FAILED;
  }
  /* An existing file keeps its mode: an admin may have narrowed it. */
  rc = file_write_atomic(path, text, len, NEW_FILE_MODE, FILE_WRITE_KEEP_MODE,
                         err, errlen);
  free(text);
  return (state_save_result_t)rc;
}
