/* The file of `wsmux proxy up` (cli/upfile.h). */
#include "cli/upfile.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "base/id.h"
#include "base/json.h"
#include "base/text.h"
#include "cli/context.h"

#define PATH_LEN 96

static const char *const top_keys[] = {"edge", "ca", "user", "services", NULL};
static const char *const service_keys[] = {"projectId", "serviceId", "user",
                                           "address",   "port",      NULL};

/* An optional string member: 0 with *out (NULL when absent), or -1. */
static int opt_string(const cJSON *obj, const char *parent, const char *key,
                      const char **out, char *err, size_t errlen) {
  char path[PATH_LEN];
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  *out = NULL;
  if (v == NULL)
    return 0;
  json_path_key(path, sizeof(path), parent, key);
  if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
    return json_fail_got(err, errlen, path, "a non-empty string", v);
  *out = v->valuestring;
  return 0;
}

/* A member that must follow the id rule (base/id.h). */
static int id_member(const cJSON *obj, const char *parent, const char *key,
                     int required, const char **out, char *err, size_t errlen) {
  char path[PATH_LEN];
  json_path_key(path, sizeof(path), parent, key);
  if (opt_string(obj, parent, key, out, err, errlen) != 0)
    return -1;
  if (*out == NULL && required)
    return json_fail(err, errlen, path, "missing");
  if (*out != NULL && !id_valid(*out)) {
    char q[TEXT_QUOTE_SIZE];
    text_quote(q, sizeof(q), *out);
    return json_fail(err, errlen, path,
                     "%s is not 1-128 characters of [A-Za-z0-9._-]", q);
  }
  return 0;
}

static char *dup_or_null(const char *s) {
  return s ? strdup(s) : NULL;
}

static int parse_service(const cJSON *o, const char *path,
                         const char *default_user, upfile_service_t *s,
                         char *err, size_t errlen) {
  const char *project, *service, *user, *address;
  char sub[PATH_LEN];
  if (json_check_object(o, path, service_keys, "key", err, errlen) != 0 ||
      id_member(o, path, "projectId", 1, &project, err, errlen) != 0 ||
      id_member(o, path, "serviceId", 1, &service, err, errlen) != 0 ||
      id_member(o, path, "user", 0, &user, err, errlen) != 0 ||
      opt_string(o, path, "address", &address, err, errlen) != 0)
    return -1;
  struct in_addr ia;
  if (address != NULL && inet_pton(AF_INET, address, &ia) != 1) {
    char q[TEXT_QUOTE_SIZE];
    text_quote(q, sizeof(q), address);
    json_path_key(sub, sizeof(sub), path, "address");
    return json_fail(err, errlen, sub, "%s is not an IPv4 address", q);
  }
  const cJSON *port = cJSON_GetObjectItemCaseSensitive(o, "port");
  s->port = -1;
  if (port != NULL) {
    json_path_key(sub, sizeof(sub), path, "port");
    double d = cJSON_IsNumber(port) ? port->valuedouble : -1;
    if (d < 0 || d > 65535 || d != (double)(int)d)
      return json_fail_got(err, errlen, sub, "an integer 0..65535", port);
    s->port = (int)d;
  }
  s->project = strdup(project);
  s->service = strdup(service);
  s->user = strdup(user ? user : default_user ? default_user : "root");
  s->address = dup_or_null(address);
  if (s->project == NULL || s->service == NULL || s->user == NULL ||
      (address != NULL && s->address == NULL))
    return json_fail(err, errlen, NULL, "out of memory");
  return 0;
}

static int parse_services(const cJSON *arr, const char *default_user,
                          upfile_t *f, char *err, size_t errlen) {
  if (arr == NULL)
    return json_fail(err, errlen, "services", "missing");
  if (!cJSON_IsArray(arr))
    return json_fail_got(err, errlen, "services", "an array", arr);
  int n = cJSON_GetArraySize(arr);
  if (n == 0)
    return json_fail(err, errlen, "services",
                     "empty: list at least one service");
  if (n > UPFILE_SERVICES_MAX)
    return json_fail(err, errlen, "services", "more than %d services",
                     UPFILE_SERVICES_MAX);
  f->services = calloc((size_t)n, sizeof(*f->services));
  if (f->services == NULL)
    return json_fail(err, errlen, NULL, "out of memory");
  size_t i = 0;
  char path[PATH_LEN];
  for (const cJSON *o = arr->child; o != NULL; o = o->next, i++) {
    json_path_index(path, sizeof(path), "services", i);
    upfile_service_t *s = &f->services[i];
    f->n = i + 1; /* so that upfile_free frees what was filled */
    if (parse_service(o, path, default_user, s, err, errlen) != 0)
      return -1;
    for (size_t j = 0; j < i; j++)
      if (strcmp(f->services[j].project, s->project) == 0 &&
          strcmp(f->services[j].service, s->service) == 0)
        return json_fail(err, errlen, path,
                         "%s/%s is already listed at services[%zu]", s->project,
                         s->service, j);
  }
  return 0;
}

int upfile_parse(const char *text, size_t len, const char *base_dir,
                 upfile_t *out, char *err, size_t errlen) {
  memset(out, 0, sizeof(*out));
  cJSON *root = json_parse_strict(text, len, err, errlen);
  if (root == NULL)
    return -1;
  const char *edge, *ca, *user;
  int rc = -1;
  if (json_check_object(root, "", top_keys, "key", err, errlen) != 0 ||
      opt_string(root, "", "edge", &edge, err, errlen) != 0 ||
      opt_string(root, "", "ca", &ca, err, errlen) != 0 ||
      id_member(root, "", "user", 0, &user, err, errlen) != 0)
    goto done;
  if (edge != NULL && !context_edge_valid(edge)) {
    char q[TEXT_QUOTE_SIZE];
    text_quote(q, sizeof(q), edge);
    json_fail(err, errlen, "edge", "%s is not a ws:// or wss:// URL", q);
    goto done;
  }
  if (parse_services(cJSON_GetObjectItemCaseSensitive(root, "services"), user,
                     out, err, errlen) != 0)
    goto done;
  out->edge = dup_or_null(edge);
  out->ca = ca ? file_path_resolve(base_dir, ca) : NULL;
  if ((edge && !out->edge) || (ca && !out->ca)) {
    json_fail(err, errlen, NULL, "out of memory");
    goto done;
  }
  rc = 0;
done:
  cJSON_Delete(root);
  if (rc != 0)
    upfile_free(out);
  return rc;
}

int upfile_load(const char *path, upfile_t *out, char *err, size_t errlen) {
  char *text = NULL, msg[512];
  size_t len = 0;
  memset(out, 0, sizeof(*out));
  if (file_read(path, UPFILE_MAX_BYTES, 0, &text, &len, err, errlen) !=
      FILE_READ_OK)
    return -1;
  char *dir = file_dirname(path);
  int rc = dir != NULL ? upfile_parse(text, len, dir, out, msg, sizeof(msg))
                       : json_fail(msg, sizeof(msg), NULL, "out of memory");
  if (rc != 0)
    snprintf(err, errlen, "%s: %s", path, msg);
  free(dir);
  free(text);
  return rc;
}

void upfile_free(upfile_t *f) {
  for (size_t i = 0; i < f->n; i++) {
    free(f->services[i].project);
    free(f->services[i].service);
    free(f->services[i].user);
    free(f->services[i].address);
  }
  free(f->services);
  free(f->edge);
  free(f->ca);
  memset(f, 0, sizeof(*f));
}

const upfile_service_t *upfile_find(const upfile_t *f, const char *project,
                                    const char *service) {
  for (size_t i = 0; i < f->n; i++)
    if (strcmp(f->services[i].project, project) == 0 &&
        strcmp(f->services[i].service, service) == 0)
      return &f->services[i];
  return NULL;
}

static int same_string(const char *a, const char *b) {
  return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

int upfile_service_equal(const upfile_service_t *a, const upfile_service_t *b) {
  return same_string(a->project, b->project) &&
         same_string(a->service, b->service) && same_string(a->user, b->user) &&
         same_string(a->address, b->address) && a->port == b->port;
}
