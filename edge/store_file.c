/*
 * The file backend: the state file (edge/state.h), written atomically on
 * every change (copy-then-swap: the view changes only once the new file is
 * in place), and an audit log of JSON lines appended next to it. One edge
 * owns the file; writes finish before the call returns.
 */
#include "edge/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/file.h"
#include "base/json.h"
#include "edge/store_impl.h"

/* The audit log is read from its end: the newest records are what is
 * asked for, and an old log can be long. */
#define AUDIT_TAIL_MAX (1u << 20)
#define AUDIT_LIST_MAX 1000
#define ERR_SIZE 768

typedef struct {
  store_t base;
  char *state_file;
  char *audit_file;
} store_file_t;

/* ---- writes ------------------------------------------------------------ */

/* Persist next and make it the view, or drop it: FAILED with why. */
static store_status_t commit(store_file_t *f, state_t *next, char *err,
                             size_t errlen) {
  char why[ERR_SIZE];
  state_save_result_t rc = state_save(next, f->state_file, why, sizeof(why));
  if (rc == STATE_SAVE_FAILED) {
    state_free(next);
    if (snprintf(err, errlen,
                 "the state file could not be written, nothing changed: %s",
                 why) < 0)
      err[0] = '\0'; /* a cut message is harmless */
    f->base.stats.write_failed++;
    return STORE_FAILED;
  }
  if (rc == STATE_SAVE_NOT_SYNCED && f->base.hooks.warn != NULL)
    f->base.hooks.warn(f->base.hooks.ctx, why);
  store_view_replace(&f->base, next);
  f->base.stats.write_ok++;
  return STORE_OK;
}

/* One JSON line appended to the audit log. The change it records is
 * already made, so a failure here is a warning, not an error. */
static void audit_append(store_file_t *f, const char *token_id,
                         const char *action, const char *target,
                         const char *detail) {
  cJSON *o = cJSON_CreateObject();
  char *line = NULL;
  if (o != NULL &&
      json_add(o, "at", cJSON_CreateNumber((double)time(NULL))) == 0 &&
      json_add(o, "tokenId", cJSON_CreateString(token_id)) == 0 &&
      json_add(o, "action", cJSON_CreateString(action)) == 0 &&
      json_add(o, "target", cJSON_CreateString(target)) == 0 &&
      json_add(o, "detail", cJSON_CreateString(detail)) == 0)
    line = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  int fd = line != NULL ? open(f->audit_file,
                               O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)
                        : -1;
  int ok = 0;
  if (fd >= 0) {
    size_t n = strlen(line);
    line[n] = '\n'; /* over the NUL: one write() is one whole line */
    ok = write(fd, line, n + 1) == (ssize_t)(n + 1) && fdatasync(fd) == 0;
    close(fd);
  }
  if (!ok && f->base.hooks.warn != NULL) {
    char msg[ERR_SIZE];
    snprintf(msg, sizeof(msg), "cannot append to the audit log %s: %s",
             f->audit_file, line != NULL ? strerror(errno) : "out of memory");
    f->base.hooks.warn(f->base.hooks.ctx, msg);
  }
  free(line);
}

static void answer_identity(store_cb cb, void *ctx, const state_t *view,
                            const char *id) {
  long i = state_find_identity(view, id);
  store_result_t r = {.status = STORE_OK,
                      .message = "",
                      .identity = i >= 0 ? &view->identities[i] : NULL};
  cb(ctx, &r);
}

/* Ids and names are one namespace for lookups. */
static int name_taken(const state_t *s, const identity_t *id, long self) {
  for (size_t i = 0; i < s->nidentities; i++) {
    if ((long)i == self)
      continue;
    if (strcmp(s->identities[i].name, id->name) == 0 ||
        strcmp(s->identities[i].id, id->name) == 0 ||
        strcmp(s->identities[i].name, id->id) == 0 ||
        (self < 0 && strcmp(s->identities[i].id, id->id) == 0))
      return 1;
  }
  return 0;
}

/* Write id as a new identity (at < 0) or over the identity at, then
 * record action in the audit and answer with the identity as written. */
static void put_identity(store_t *s, const identity_t *id, long at,
                         const char *action, const char *token_id, store_cb cb,
                         void *ctx) {
  store_file_t *f = (store_file_t *)s;
  char err[ERR_SIZE];
  identity_t copy;
  state_t *next = state_clone(s->view);
  if (next == NULL || identity_copy(&copy, id) != 0) {
    state_free(next);
    store_answer(cb, ctx, STORE_FAILED, "out of memory");
    return;
  }
  if (at < 0 && state_add_identity(next, &copy) != 0) {
    identity_clear(&copy);
    state_free(next);
    store_answer(cb, ctx, STORE_FAILED, "out of memory");
    return;
  }
  if (at >= 0)
    state_replace_identity(next, (size_t)at, &copy);
  store_status_t st = commit(f, next, err, sizeof(err));
  if (st != STORE_OK) {
    store_answer(cb, ctx, st, err);
    return;
  }
  audit_append(f, token_id, action, id->id, id->name);
  answer_identity(cb, ctx, s->view, id->id);
}

static void file_identity_create(store_t *s, const identity_t *id,
                                 const char *token_id, store_cb cb, void *ctx) {
  if (name_taken(s->view, id, -1)) {
    store_answer(cb, ctx, STORE_CONFLICT, "the name or id is already used");
    return;
  }
  put_identity(s, id, -1, "identity.create", token_id, cb, ctx);
}

static void file_identity_update(store_t *s, const identity_t *id,
                                 int64_t base_rev, const char *token_id,
                                 store_cb cb, void *ctx) {
  long i = state_find_identity(s->view, id->id);
  (void)base_rev; /* one writer: the view is the file */
  if (i < 0) {
    store_answer(cb, ctx, STORE_NOT_FOUND, "no such SSH identity");
    return;
  }
  if (name_taken(s->view, id, i)) {
    store_answer(cb, ctx, STORE_CONFLICT, "the name is already used");
    return;
  }
  put_identity(s, id, i, "identity.update", token_id, cb, ctx);
}

static void file_identity_delete(store_t *s, const char *id, int64_t base_rev,
                                 const char *token_id, store_cb cb, void *ctx) {
  store_file_t *f = (store_file_t *)s;
  char err[ERR_SIZE], name[IDENTITY_NAME_MAX + 1];
  long i = state_find_identity(s->view, id);
  (void)base_rev;
  if (i < 0) {
    store_answer(cb, ctx, STORE_NOT_FOUND, "no such SSH identity");
    return;
  }
  snprintf(name, sizeof(name), "%s", s->view->identities[i].name);
  state_t *next = state_clone(s->view);
  if (next == NULL) {
    store_answer(cb, ctx, STORE_FAILED, "out of memory");
    return;
  }
  state_remove_identity(next, (size_t)i);
  store_status_t st = commit(f, next, err, sizeof(err));
  if (st == STORE_OK)
    audit_append(f, token_id, "identity.delete", id, name);
  store_answer(cb, ctx, st, st == STORE_OK ? "" : err);
}

static void file_ssh_set(store_t *s, const char *project_id,
                         const char *service_id, int enabled,
                         const char *token_id, store_cb cb, void *ctx) {
  store_file_t *f = (store_file_t *)s;
  char err[ERR_SIZE], target[2 * IDENTITY_NAME_MAX + 2];
  state_t *next = state_clone(s->view);
  if (next == NULL ||
      state_set_ssh(next, project_id, service_id, enabled) != 0) {
    state_free(next);
    store_answer(cb, ctx, STORE_FAILED, "out of memory");
    return;
  }
  store_status_t st = commit(f, next, err, sizeof(err));
  if (st == STORE_OK) {
    snprintf(target, sizeof(target), "%s/%s", project_id, service_id);
    audit_append(f, token_id, "service.ssh", target,
                 enabled ? "enabled" : "disabled");
  }
  store_answer(cb, ctx, st, st == STORE_OK ? "" : err);
}

/* ---- the audit log ----------------------------------------------------- */

typedef struct {
  store_audit_t *recs;
  cJSON **docs;
  size_t n;
} audit_lines_t;

static void audit_lines_free(audit_lines_t *a) {
  for (size_t i = 0; i < a->n; i++)
    cJSON_Delete(a->docs[i]);
  free(a->docs);
  free(a->recs);
}

static const char *str_of(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The complete lines of text, newest first, at most limit; a line that is
 * not a record (cut by a crash, edited by hand) is skipped. */
static int audit_parse(const char *text, size_t len, int cut, size_t limit,
                       audit_lines_t *out) {
  memset(out, 0, sizeof(*out));
  out->recs = calloc(limit ? limit : 1, sizeof(*out->recs));
  out->docs = calloc(limit ? limit : 1, sizeof(*out->docs));
  if (out->recs == NULL || out->docs == NULL)
    return -1;
  size_t end = len;
  while (end > 0 && out->n < limit) {
    size_t start = end - 1; /* text[end-1] is the newline ending a line */
    while (start > 0 && text[start - 1] != '\n')
      start--;
    if (start == 0 && cut)
      break; /* the first line of a cut tail may be partial */
    char err[64];
    cJSON *o = json_parse_strict(text + start, end - start, err, sizeof(err));
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(o, "at");
    store_audit_t r = {.token_id = str_of(o, "tokenId"),
                       .action = str_of(o, "action"),
                       .target = str_of(o, "target"),
                       .detail = str_of(o, "detail")};
    if (cJSON_IsNumber(at) && r.token_id && r.action && r.target && r.detail) {
      r.at = (int64_t)at->valuedouble;
      out->recs[out->n] = r;
      out->docs[out->n++] = o;
    } else {
      cJSON_Delete(o);
    }
    end = start;
  }
  return 0;
}

static void file_audit_list(store_t *s, size_t limit, store_audit_cb cb,
                            void *ctx) {
  store_file_t *f = (store_file_t *)s;
  char err[ERR_SIZE];
  audit_lines_t lines = {0};
  if (limit > AUDIT_LIST_MAX)
    limit = AUDIT_LIST_MAX;
  int fd = open(f->audit_file, O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    cb(ctx, STORE_OK, NULL, 0, "");
    return;
  }
  off_t size = fd >= 0 ? lseek(fd, 0, SEEK_END) : -1;
  off_t from = size > (off_t)AUDIT_TAIL_MAX ? size - (off_t)AUDIT_TAIL_MAX : 0;
  char *text = NULL;
  size_t len = 0;
  if (size < 0 || lseek(fd, from, SEEK_SET) < 0 ||
      file_read_fd(fd, f->audit_file, 2 * AUDIT_TAIL_MAX, &text, &len, err,
                   sizeof(err)) != FILE_READ_OK) {
    if (size < 0 || from < 0)
      snprintf(err, sizeof(err), "cannot read %s: %s", f->audit_file,
               strerror(errno));
    if (fd >= 0)
      close(fd);
    cb(ctx, STORE_FAILED, NULL, 0, err);
    return;
  }
  close(fd);
  /* Only whole lines: a line being appended right now is left out. */
  while (len > 0 && text[len - 1] != '\n')
    len--;
  if (audit_parse(text, len, from > 0, limit, &lines) != 0)
    cb(ctx, STORE_FAILED, NULL, 0, "out of memory");
  else
    cb(ctx, STORE_OK, lines.recs, lines.n, "");
  audit_lines_free(&lines);
  free(text);
}

/* ---- lifecycle --------------------------------------------------------- */

static int file_view_fresh(const store_t *s) {
  (void)s;
  return 1;
}

static void file_close(store_t *s) {
  store_file_t *f = (store_file_t *)s;
  state_free(s->view);
  free(f->state_file);
  free(f->audit_file);
  free(f);
}

static const store_ops_t file_ops = {
    .identity_create = file_identity_create,
    .identity_update = file_identity_update,
    .identity_delete = file_identity_delete,
    .ssh_set = file_ssh_set,
    .audit_list = file_audit_list,
    .view_fresh = file_view_fresh,
    .shared = 0,
    .close = file_close,
};

store_t *store_open_file(uv_loop_t *loop, const store_config_t *cfg,
                         const store_hooks_t *hooks, const log_t *log,
                         char *err, size_t errlen) {
  store_file_t *f = calloc(1, sizeof(*f));
  if (f == NULL) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  f->base.ops = &file_ops;
  f->base.loop = loop;
  f->base.log = log;
  if (hooks != NULL)
    f->base.hooks = *hooks;
  f->base.stats.backend = "file";
  f->base.stats.up = 1;
  f->state_file = strdup(cfg->state_file);
  f->audit_file = strdup(cfg->audit_file);
  if (f->state_file == NULL || f->audit_file == NULL) {
    snprintf(err, errlen, "out of memory");
    state_free(cfg->initial);
    goto fail;
  }
  if (cfg->initial != NULL)
    f->base.view = cfg->initial;
  else if (state_load(f->state_file, &f->base.view, err, errlen) != 0)
    goto fail;
  f->base.stats.reloads = 1;
  return &f->base;
fail:
  free(f->state_file);
  free(f->audit_file);
  free(f);
  return NULL;
}
