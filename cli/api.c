/* The admin API client (cli/api.h). */
#include "cli/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/exitcode.h"
#include "cli/output.h"
#include "base/file.h"
#include "base/log.h"
#include "ws/http_client.h"

#define KEY_FILE_MAX (1024 * 1024)

int api_status_exit_code(int status) {
  switch (status) {
  case 400:
  case 413:
    return EXIT_INVALID;
  case 401:
    return EXIT_AUTH;
  case 403: /* a valid token whose role does not allow it */
    return EXIT_REFUSED;
  case 404:
    return EXIT_NOT_FOUND;
  case 409:
    return EXIT_REFUSED;
  default:
    return status >= 500 ? EXIT_NETWORK : EXIT_USAGE;
  }
}

static const char *status_text(int status) {
  switch (status) {
  case 400:
    return "invalid request";
  case 401:
    return "invalid or missing API token";
  case 403:
    return "forbidden";
  case 404:
    return "not found";
  case 405:
    return "method not allowed";
  case 409:
    return "conflict";
  case 413:
    return "request too large";
  default:
    return status >= 500 ? "the edge failed"
                         : "unexpected answer from the edge";
  }
}

void api_error_message(int status, const char *body, char *buf, size_t len) {
  cJSON *j = body ? cJSON_Parse(body) : NULL;
  const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
  if (cJSON_IsString(e) && e->valuestring[0] != '\0')
    output_printable(buf, len, e->valuestring);
  else
    output_printable(buf, len, status_text(status));
  cJSON_Delete(j);
}

/* The outcome of an answer: 0 with *out on 2xx, else the exit code. */
static int api_answer(const http_client_result_t *r, cJSON **out) {
  if (r->status < 200 || r->status > 299) {
    char msg[1024];
    api_error_message(r->status, r->body, msg, sizeof(msg));
    log_print("wsmux", LOG_ERROR, "%s (HTTP %d)", msg, r->status);
    return api_status_exit_code(r->status);
  }
  if (out == NULL)
    return 0;
  *out = NULL;
  if (r->body == NULL || r->body_len == 0)
    return 0;
  *out = cJSON_ParseWithLength(r->body, r->body_len);
  if (*out != NULL)
    return 0;
  log_print("wsmux", LOG_ERROR,
            "the edge answered HTTP %d with a body that is not "
            "JSON",
            r->status);
  return EXIT_NETWORK;
}

int api_call(const cli_context_t *ctx, const char *method, const char *path,
             const cJSON *body, cJSON **out) {
  char *text = body ? cJSON_PrintUnformatted(body) : NULL;
  if (body != NULL && text == NULL) {
    log_print("wsmux", LOG_ERROR, "out of memory");
    return EXIT_USAGE;
  }
  http_client_request_t call = {.url = ctx->edge,
                                .ca_file = ctx->ca,
                                .insecure = ctx->insecure,
                                .token = ctx->token,
                                .method = method,
                                .path = path,
                                .body = text,
                                .body_len = text ? strlen(text) : 0,
                                .proxy = CLI_CONTEXT_PROXY(ctx)};
  http_client_result_t r = {0};
  int rc = http_client_call(&call, &r);
  free(text);
  if (rc != 0) {
    log_print("wsmux", LOG_ERROR, "%s",
              r.error[0] ? r.error : "the request to the edge failed");
    rc = r.proxy_status != 0 ? EXIT_PROXY : EXIT_NETWORK;
  } else {
    rc = api_answer(&r, out);
  }
  http_client_result_free(&r);
  return rc;
}

/* ---- keys ----------------------------------------------------------- */

static int is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\r';
}

/* One line [s, e) of a key text: trimmed, then added unless blank or a
 * comment. 1 added, 0 skipped, -1 error. */
static int add_key_line(cJSON *keys, const char *s, const char *e,
                        const char *origin, int lineno, char *err,
                        size_t errlen) {
  while (s < e && is_blank(*s))
    s++;
  while (e > s && is_blank(e[-1]))
    e--;
  if (s == e || *s == '#')
    return 0;
  size_t n = (size_t)(e - s);
  char *line = strndup(s, n);
  if (line == NULL) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  if (strstr(line, "PRIVATE KEY") != NULL ||
      strncmp(line, "PuTTY-User-Key-File", 19) == 0) {
    snprintf(err, errlen,
             "%s (line %d) is a private key: give the public key (the .pub "
             "file) instead",
             origin, lineno);
    free(line);
    return -1;
  }
  cJSON *item = cJSON_CreateString(line);
  free(line);
  if (item == NULL || !cJSON_AddItemToArray(keys, item)) {
    cJSON_Delete(item);
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  return 1;
}

int api_keys_add_text(cJSON *keys, const char *text, const char *origin,
                      char *err, size_t errlen) {
  int added = 0, lineno = 1;
  for (const char *s = text; *s; lineno++) {
    const char *e = strchr(s, '\n');
    if (e == NULL)
      e = s + strlen(s);
    int rc = add_key_line(keys, s, e, origin, lineno, err, errlen);
    if (rc < 0)
      return -1;
    added += rc;
    s = *e ? e + 1 : e;
  }
  return added;
}

/* A key file, or standard input for "-": its text, NUL-terminated; NULL
 * with err. */
static char *read_key_file(const char *path, const char *name, char *err,
                           size_t errlen) {
  char *text;
  size_t len;
  file_read_result_t got =
      strcmp(path, "-") == 0
          ? file_read_fd(STDIN_FILENO, name, KEY_FILE_MAX, &text, &len, err,
                         errlen)
          : file_read(path, KEY_FILE_MAX, 0, &text, &len, err, errlen);
  if (got == FILE_READ_TOO_LARGE)
    snprintf(err, errlen, "%s is too large for a key file", name);
  if (got != FILE_READ_OK)
    return NULL;
  if (memchr(text, '\0', len) == NULL)
    return text;
  snprintf(err, errlen, "%s is not a text file", name);
  free(text);
  return NULL;
}

int api_keys_add_file(cJSON *keys, const char *path, char *err, size_t errlen) {
  const char *name = strcmp(path, "-") == 0 ? "standard input" : path;
  char *text = read_key_file(path, name, err, errlen);
  if (text == NULL)
    return -1;
  int n = api_keys_add_text(keys, text, name, err, errlen);
  free(text);
  if (n == 0)
    snprintf(err, errlen, "%s holds no public key", name);
  return n > 0 ? n : -1;
}

/* ---- identities ----------------------------------------------------- */

static int nkeys(const api_identity_fields_t *f) {
  return f->keys ? cJSON_GetArraySize(f->keys) : 0;
}

static const char *identity_conflict(const api_identity_fields_t *f) {
  if (f->clear_projects && f->nprojects > 0)
    return "--clear-projects and --project cannot be used together";
  if (f->clear_tags && f->ntags > 0)
    return "--clear-tags and --tag cannot be used together";
  if (f->match_all && f->no_match_all)
    return "--match-all-tags and --no-match-all-tags cannot be used together";
  return NULL;
}

int api_identity_check(const api_identity_fields_t *f, int create, char *err,
                       size_t errlen) {
  const char *why = identity_conflict(f);
  if (why == NULL && create && f->name == NULL)
    why = "--name is required";
  if (why == NULL && create && nkeys(f) == 0)
    why = "at least one key is required: --key-file FILE or --key 'TYPE "
          "BASE64 [COMMENT]'";
  if (why == NULL && !create && f->name == NULL && f->description == NULL &&
      nkeys(f) == 0 && f->nprojects == 0 && !f->clear_projects &&
      f->ntags == 0 && !f->clear_tags && !f->match_all && !f->no_match_all)
    why = "nothing to update: give at least one of --name, --description, "
          "--key, --key-file, --project, --clear-projects, --tag, "
          "--clear-tags, --match-all-tags, --no-match-all-tags";
  if (why == NULL)
    return 0;
  snprintf(err, errlen, "%s", why);
  return -1;
}

static int add_string_array(cJSON *o, const char *name,
                            const char *const *items, int n) {
  cJSON *a = cJSON_AddArrayToObject(o, name);
  if (a == NULL)
    return -1;
  for (int i = 0; i < n; i++) {
    cJSON *s = cJSON_CreateString(items[i]);
    if (s == NULL || !cJSON_AddItemToArray(a, s)) {
      cJSON_Delete(s);
      return -1;
    }
  }
  return 0;
}

static int add_identity_fields(cJSON *o, const api_identity_fields_t *f) {
  if (f->name && cJSON_AddStringToObject(o, "name", f->name) == NULL)
    return -1;
  if (f->description &&
      cJSON_AddStringToObject(o, "description", f->description) == NULL)
    return -1;
  if (nkeys(f) > 0) {
    cJSON *keys = cJSON_Duplicate(f->keys, 1);
    if (keys == NULL || !cJSON_AddItemToObject(o, "keys", keys)) {
      cJSON_Delete(keys);
      return -1;
    }
  }
  if ((f->nprojects > 0 || f->clear_projects) &&
      add_string_array(o, "projects", f->projects, f->nprojects) != 0)
    return -1;
  if ((f->ntags > 0 || f->clear_tags) &&
      add_string_array(o, "tags", f->tags, f->ntags) != 0)
    return -1;
  if ((f->match_all || f->no_match_all) &&
      cJSON_AddBoolToObject(o, "matchAllTags", f->match_all != 0) == NULL)
    return -1;
  return 0;
}

cJSON *api_identity_body(const api_identity_fields_t *f) {
  cJSON *o = cJSON_CreateObject();
  if (o != NULL && add_identity_fields(o, f) != 0) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}
