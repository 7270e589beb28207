/* Contexts: resolution and the config file (cli/context.h). */
#include "cli/context.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/exitcode.h"
#include "cli/http_proxy_flags.h"
#include "base/file.h"
#include "base/log.h"

#define CONFIG_MAX (1024 * 1024)
#define TOKEN_MAX 4096

static const char id_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                               "abcdefghijklmnopqrstuvwxyz0123456789._-";

int context_name_valid(const char *name) {
  size_t n = strlen(name);
  return n > 0 && n <= 64 && strspn(name, id_chars) == n;
}

int context_token_valid(const char *token) {
  size_t n = strlen(token);
  if (n == 0 || n > TOKEN_MAX)
    return 0;
  for (const char *c = token; *c; c++)
    if (*c <= ' ' || *c > '~')
      return 0;
  return 1;
}

int context_edge_valid(const char *url) {
  const char *host = strncmp(url, "wss://", 6) == 0  ? url + 6
                     : strncmp(url, "ws://", 5) == 0 ? url + 5
                                                     : NULL;
  if (host == NULL || *host == '\0' || *host == '/' || *host == ':')
    return 0;
  for (const char *c = url; *c; c++)
    if (*c <= ' ' || *c > '~')
      return 0;
  return 1;
}

int context_token_read(FILE *f, char *buf, size_t len) {
  if (fgets(buf, (int)len, f) == NULL)
    return -1;
  size_t n = strlen(buf);
  if (n > 0 && buf[n - 1] == '\n')
    buf[--n] = '\0';
  else if (!feof(f))
    return -1; /* longer than the buffer */
  if (n > 0 && buf[n - 1] == '\r')
    buf[--n] = '\0';
  return n > 0 ? 0 : -1;
}

int context_path_build(const char *xdg, const char *home, char *buf,
                       size_t len) {
  int n;
  if (xdg != NULL && xdg[0] == '/')
    n = snprintf(buf, len, "%s/wsmux/config.json", xdg);
  else if (home != NULL && home[0] != '\0')
    n = snprintf(buf, len, "%s/.config/wsmux/config.json", home);
  else
    return -1;
  return n > 0 && (size_t)n < len ? 0 : -1;
}

int context_path_default(char *buf, size_t len, char *err, size_t errlen) {
  if (context_path_build(getenv("XDG_CONFIG_HOME"), getenv("HOME"), buf, len) ==
      0)
    return 0;
  snprintf(err, errlen,
           "cannot locate the config file: set HOME or "
           "XDG_CONFIG_HOME");
  return -1;
}

/* ---- the parsed config ---------------------------------------------- */

static const char *string_field(const cJSON *obj, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int check_context(const cJSON *c, char *err, size_t errlen) {
  const char *edge = string_field(c, "edge");
  const char *token = string_field(c, "token");
  const cJSON *ca = cJSON_GetObjectItemCaseSensitive(c, "ca");
  const cJSON *insecure = cJSON_GetObjectItemCaseSensitive(c, "insecure");
  const char *why =
      !cJSON_IsObject(c)                             ? "not an object"
      : edge == NULL || !context_edge_valid(edge)    ? "bad \"edge\""
      : token == NULL || !context_token_valid(token) ? "bad \"token\""
      : ca != NULL && !cJSON_IsString(ca)            ? "bad \"ca\""
      : insecure != NULL && !cJSON_IsBool(insecure)  ? "bad \"insecure\""
                                                     : NULL;
  if (why == NULL)
    return 0;
  snprintf(err, errlen, "context \"%.64s\": %s", c->string ? c->string : "",
           why);
  return -1;
}

int context_store_check(const cJSON *root, char *err, size_t errlen) {
  if (!cJSON_IsObject(root)) {
    snprintf(err, errlen, "not a JSON object");
    return -1;
  }
  const cJSON *cur = cJSON_GetObjectItemCaseSensitive(root, "current");
  const cJSON *ctxs = cJSON_GetObjectItemCaseSensitive(root, "contexts");
  if (cur != NULL && !cJSON_IsString(cur) && !cJSON_IsNull(cur)) {
    snprintf(err, errlen, "\"current\" is not a string");
    return -1;
  }
  if (ctxs != NULL && !cJSON_IsObject(ctxs)) {
    snprintf(err, errlen, "\"contexts\" is not an object");
    return -1;
  }
  const cJSON *c;
  cJSON_ArrayForEach(c, ctxs) {
    if (check_context(c, err, errlen) != 0)
      return -1;
  }
  return 0;
}

static cJSON *context_to_json(const cli_context_t *c) {
  cJSON *o = cJSON_CreateObject();
  if (o == NULL || cJSON_AddStringToObject(o, "edge", c->edge) == NULL ||
      cJSON_AddStringToObject(o, "token", c->token) == NULL ||
      (c->ca != NULL && cJSON_AddStringToObject(o, "ca", c->ca) == NULL) ||
      cJSON_AddBoolToObject(o, "insecure", c->insecure != 0) == NULL) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

/* root's member name, replaced by (or set to) item, which it then owns. */
static int set_member(cJSON *root, const char *name, cJSON *item) {
  if (item == NULL)
    return -1;
  if (cJSON_GetObjectItemCaseSensitive(root, name) != NULL)
    return cJSON_ReplaceItemInObjectCaseSensitive(root, name, item) ? 0 : -1;
  return cJSON_AddItemToObject(root, name, item) ? 0 : -1;
}

int context_store_put(cJSON *root, const char *name, const cli_context_t *c) {
  cJSON *ctxs = cJSON_GetObjectItemCaseSensitive(root, "contexts");
  if (ctxs == NULL) {
    ctxs = cJSON_AddObjectToObject(root, "contexts");
    if (ctxs == NULL)
      return -1;
  }
  if (set_member(ctxs, name, context_to_json(c)) != 0)
    return -1;
  return set_member(root, "current", cJSON_CreateString(name));
}

static char *dup_or_null(const char *s) {
  return s ? strdup(s) : NULL;
}

void cli_context_free(cli_context_t *c) {
  free(c->name);
  free(c->edge);
  free(c->token);
  free(c->ca);
  http_proxy_clear(&c->proxy.proxy);
  *c = (cli_context_t){0};
}

int context_store_current(const cJSON *root, cli_context_t *out) {
  *out = (cli_context_t){0};
  const char *name = string_field(root, "current");
  const cJSON *c = cJSON_GetObjectItemCaseSensitive(
      cJSON_GetObjectItemCaseSensitive(root, "contexts"), name ? name : "");
  if (name == NULL || c == NULL)
    return 1;
  out->name = strdup(name);
  out->edge = strdup(string_field(c, "edge"));
  out->token = strdup(string_field(c, "token"));
  out->ca = dup_or_null(string_field(c, "ca"));
  out->insecure = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "insecure"));
  if (out->name && out->edge && out->token &&
      (out->ca || !string_field(c, "ca")))
    return 0;
  cli_context_free(out);
  return -1;
}

/* ---- the config file ------------------------------------------------ */

/* The file must be a regular file that only its owner can access. */
static int check_mode(int fd, const char *path, char *err, size_t errlen) {
  struct stat st;
  if (fstat(fd, &st) != 0) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return -1;
  }
  if (!S_ISREG(st.st_mode)) {
    snprintf(err, errlen, "%s is not a regular file", path);
    return -1;
  }
  if ((st.st_mode & 077) != 0) {
    snprintf(err, errlen,
             "%s holds API tokens but group or others can access it (mode "
             "%03o): run 'chmod 600 %s' (and replace the tokens if someone "
             "else may have read them)",
             path, (unsigned)(st.st_mode & 0777), path);
    return -1;
  }
  return 0;
}

static int parse_config(const char *path, const char *text, size_t len,
                        cJSON **root, char *err, size_t errlen) {
  char why[256];
  *root = cJSON_ParseWithLength(text, len);
  if (*root == NULL) {
    const char *at = cJSON_GetErrorPtr();
    long off = at && at >= text && at <= text + len ? (long)(at - text) : -1;
    snprintf(err, errlen, "%s: not valid JSON (near byte %ld)", path, off);
    return -1;
  }
  if (context_store_check(*root, why, sizeof(why)) != 0) {
    snprintf(err, errlen, "%s: %s", path, why);
    cJSON_Delete(*root);
    *root = NULL;
    return -1;
  }
  return 0;
}

int context_file_load(const char *path, cJSON **root, char *err,
                      size_t errlen) {
  char *text;
  size_t len;
  *root = NULL;
  /* Opened here rather than with file_read(), so that the mode is checked
   * on the file that is then read. */
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    *root = cJSON_CreateObject();
    return *root ? 0 : -1;
  }
  if (fd < 0) {
    snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
    return -1;
  }
  if (check_mode(fd, path, err, errlen) != 0) {
    close(fd);
    return -1;
  }
  file_read_result_t got =
      file_read_fd(fd, path, CONFIG_MAX, &text, &len, err, errlen);
  close(fd);
  if (got != FILE_READ_OK)
    return -1;
  int rc = parse_config(path, text, len, root, err, errlen);
  free(text);
  return rc;
}

/* mkdir -p of dir; the components created are 0700. */
static int make_dirs(char *dir, char *err, size_t errlen) {
  for (char *s = strchr(dir + 1, '/');; s = strchr(s + 1, '/')) {
    if (s != NULL)
      *s = '\0';
    struct stat st;
    int rc = mkdir(dir, 0700);
    int e = errno;
    if (rc != 0 && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
      rc = 0; /* there already (EEXIST, or EACCES / EROFS above it) */
    if (rc != 0)
      snprintf(err, errlen, "cannot create %s: %s", dir, strerror(e));
    if (s != NULL)
      *s = '/';
    if (rc != 0)
      return -1;
    if (s == NULL)
      return 0;
  }
}

/* Create the config directory, or make sure it is private. */
static int prepare_dir(const char *path, char *dir, size_t dirlen, char *err,
                       size_t errlen) {
  const char *slash = strrchr(path, '/');
  size_t n = slash ? (size_t)(slash - path) : 0;
  if (n == 0 || n >= dirlen) {
    snprintf(err, errlen, "bad config path %s", path);
    return -1;
  }
  memcpy(dir, path, n);
  dir[n] = '\0';
  if (make_dirs(dir, err, errlen) != 0)
    return -1;
  struct stat st;
  if (stat(dir, &st) == 0 && (st.st_mode & 077) != 0 &&
      st.st_uid == geteuid() && chmod(dir, 0700) != 0) {
    snprintf(err, errlen, "cannot chmod 700 %s: %s", dir, strerror(errno));
    return -1;
  }
  return 0;
}

int context_file_save(const char *path, const cJSON *root, char *err,
                      size_t errlen) {
  char dir[PATH_MAX];
  if (prepare_dir(path, dir, sizeof(dir), err, errlen) != 0)
    return -1;
  char *text = cJSON_Print(root);
  size_t len = text ? strlen(text) : 0;
  char *nl = text ? realloc(text, len + 2) : NULL;
  if (nl == NULL) {
    free(text);
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  nl[len++] = '\n';
  nl[len] = '\0';
  /* Always 0600, whatever the old file's mode: it holds tokens. The
   * directory sync is best effort: the new file is in place either way. */
  file_write_result_t rc =
      file_write_atomic(path, nl, len, 0600, 0, err, errlen);
  free(nl);
  return rc == FILE_WRITE_FAILED ? -1 : 0;
}

/* ---- resolution ----------------------------------------------------- */

static const char *nonempty(const char *s) {
  return s != NULL && *s != '\0' ? s : NULL;
}

/* The current stored context: 0, 1 when none, -1 after printing why it
 * cannot be read. */
static int load_current(cli_context_t *stored) {
  char path[PATH_MAX], err[PATH_MAX * 2 + 256];
  cJSON *root;
  if (context_path_default(path, sizeof(path), err, sizeof(err)) != 0)
    return 1; /* no HOME: as if there were no contexts */
  if (context_file_load(path, &root, err, sizeof(err)) != 0) {
    log_print("wsmux", LOG_ERROR, "%s", err);
    return -1;
  }
  int rc = context_store_current(root, stored);
  cJSON_Delete(root);
  if (rc < 0)
    log_print("wsmux", LOG_ERROR, "out of memory");
  return rc;
}

/* The error when no token was found for edge (or no edge at all). */
static int report_missing(const char *edge, const char *token,
                          const cli_context_t *stored) {
  if (edge != NULL && stored->edge != NULL) {
    log_print("wsmux", LOG_ERROR,
              "not logged in to %s (the current context '%s' is "
              "for %s): run 'wsmux login --edge %s --token T' or set "
              "WSMUX_TOKEN",
              edge, stored->name, stored->edge, edge);
    return EXIT_AUTH;
  }
  log_print("wsmux", LOG_ERROR, CLI_NOT_LOGGED_IN);
  return token == NULL ? EXIT_AUTH : EXIT_USAGE;
}

static int fill_out(const char *edge, const char *token, const char *ca,
                    int insecure, const char *name, cli_context_t *out) {
  out->edge = strdup(edge);
  out->token = strdup(token);
  out->ca = dup_or_null(ca);
  out->name = dup_or_null(name);
  out->insecure = insecure;
  if (out->edge && out->token && (out->ca || !ca) && (out->name || !name))
    return 0;
  cli_context_free(out);
  log_print("wsmux", LOG_ERROR, "out of memory");
  return EXIT_USAGE;
}

static int resolve(const char *edge_flag, const char *token_flag,
                   const char *ca_flag, int insecure_flag,
                   const char *proxy_flag, const char *proxy_file,
                   cli_context_t *out) {
  const char *edge =
      nonempty(edge_flag) ? edge_flag : nonempty(getenv("WSMUX_EDGE"));
  const char *token =
      nonempty(token_flag) ? token_flag : nonempty(getenv("WSMUX_TOKEN"));
  cli_context_t stored = {0};
  *out = (cli_context_t){0};
  if (edge == NULL || token == NULL) {
    if (load_current(&stored) < 0)
      return EXIT_USAGE;
  }
  /* A stored token goes to its own edge only. */
  int use = stored.edge != NULL && (edge == NULL || !strcmp(edge, stored.edge));
  edge = edge ? edge : stored.edge;
  token = token ? token : use ? stored.token : NULL;
  int rc;
  if (edge == NULL || token == NULL) {
    rc = report_missing(edge, token, &stored);
  } else if (!context_token_valid(token)) {
    log_print("wsmux", LOG_ERROR,
              "the API token is empty, too long or has "
              "spaces or control characters");
    rc = EXIT_AUTH;
  } else {
    const char *ca_env = nonempty(getenv("WSMUX_CA"));
    rc = fill_out(edge, token,
                  ca_flag  ? ca_flag
                  : ca_env ? ca_env
                  : use    ? stored.ca
                           : NULL,
                  insecure_flag || (use && stored.insecure),
                  use ? stored.name : NULL, out);
  }
  cli_context_free(&stored);
  if (rc == 0 && (rc = cli_http_proxy_choose(proxy_flag, proxy_file, out->edge,
                                             &out->proxy)) != 0)
    cli_context_free(out);
  return rc;
}

int cli_context_resolve(const char *edge_flag, const char *token_flag,
                        const char *ca_flag, int insecure_flag,
                        cli_context_t *out) {
  return resolve(edge_flag, token_flag, ca_flag, insecure_flag, NULL, NULL,
                 out);
}

int cli_context_resolve_flags(const cli_context_flags_t *f,
                              cli_context_t *out) {
  return resolve(f->edge, f->token, f->ca, f->insecure, f->http_proxy,
                 f->http_proxy_file, out);
}
