/* ssh_config entries and their installation (cli/sshconf.h). */
#include "cli/sshconf.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/file.h"

#define BEGIN_MARK "# >>> wsmux "
#define END_MARK "# <<< wsmux "
/* Our files are small; a larger one is not ours, or a mistake. */
#define CONF_MAX (4 * 1024 * 1024)

static const char header[] =
    "# Written by `wsmux ssh config --install`, one section per service;\n"
    "# `wsmux ssh config --install` / `--uninstall` rewrite it: do not edit.\n"
    "# ~/.ssh/config includes it with one line at its top.\n";

/* --- growing text ------------------------------------------------------ */

typedef struct {
  char *p;
  size_t len, cap;
  int oom;
} text_t;

static void put(text_t *t, const char *s, size_t n) {
  if (t->oom)
    return;
  if (t->len + n + 1 > t->cap) {
    size_t cap = t->cap ? t->cap : 256;
    while (t->len + n + 1 > cap)
      cap *= 2;
    char *p = realloc(t->p, cap);
    if (p == NULL) {
      t->oom = 1;
      return;
    }
    t->p = p;
    t->cap = cap;
  }
  memcpy(t->p + t->len, s, n);
  t->len += n;
  t->p[t->len] = '\0';
}

static void puts_(text_t *t, const char *s) {
  put(t, s, strlen(s));
}

static char *done(text_t *t) {
  if (t->oom || t->p == NULL) {
    free(t->p);
    return t->oom ? NULL : strdup("");
  }
  return t->p;
}

/* --- the blocks -------------------------------------------------------- */

char *sshconf_blocks(const sshconf_host_t *h, int paste) {
  char line[4096];
  text_t t = {0};
  snprintf(line, sizeof(line), "# wsmux: service %s of project %s.%s\n",
           h->service, h->project, paste ? " Paste into ~/.ssh/config." : "");
  puts_(&t, line);
  snprintf(line, sizeof(line),
           "# The API token comes from `wsmux login` or $WSMUX_TOKEN.\n"
           "Host wsmux-%s-%s\n"
           "  User %s\n"
           "  HostKeyAlias wsmux-%s-%s\n"
           "  ProxyCommand %s ssh service --projectId %s --serviceId %s "
           "--stdio",
           h->project, h->service, h->user, h->project, h->service, h->self,
           h->project, h->service);
  puts_(&t, line);
  if (h->edge != NULL) {
    puts_(&t, " --edge ");
    puts_(&t, h->edge);
  }
  if (h->ca != NULL) {
    puts_(&t, " --ca ");
    puts_(&t, h->ca);
  }
  snprintf(line, sizeof(line),
           "\n\n# With `wsmux ssh service --projectId %s --serviceId %s "
           "--proxyOnly` running:\n"
           "Host wsmux-%s-%s-proxy\n"
           "  HostName %s\n"
           "  Port %u\n"
           "  User %s\n"
           "  HostKeyAlias wsmux-%s-%s\n",
           h->project, h->service, h->project, h->service, h->addr, h->port,
           h->user, h->project, h->service);
  puts_(&t, line);
  return done(&t);
}

/* --- sections ---------------------------------------------------------- */

void sshconf_sections_free(sshconf_sections_t *s) {
  for (size_t i = 0; i < s->n; i++) {
    free(s->v[i].project);
    free(s->v[i].service);
    free(s->v[i].body);
  }
  free(s->v);
  s->v = NULL;
  s->n = 0;
}

/* "P/S" after a marker into a new section; -1 when malformed or OOM. */
static int section_add(sshconf_sections_t *s, const char *id, size_t len,
                       const char *body, size_t blen) {
  const char *slash = memchr(id, '/', len);
  if (slash == NULL)
    return -1;
  sshconf_section_t *v = realloc(s->v, (s->n + 1) * sizeof(*v));
  if (v == NULL)
    return -1;
  s->v = v;
  sshconf_section_t *e = &v[s->n];
  e->project = strndup(id, (size_t)(slash - id));
  e->service = strndup(slash + 1, len - (size_t)(slash - id) - 1);
  e->body = strndup(body, blen);
  s->n++; /* freed by sshconf_sections_free even when incomplete */
  return e->project && e->service && e->body ? 0 : -1;
}

int sshconf_sections_parse(const char *text, size_t len,
                           sshconf_sections_t *out) {
  out->v = NULL;
  out->n = 0;
  const char *p = text, *end = text + len;
  const char *id = NULL, *body = NULL;
  size_t idlen = 0;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *eol = nl ? nl : end, *next = nl ? nl + 1 : end;
    size_t n = (size_t)(eol - p);
    if (id == NULL && n > strlen(BEGIN_MARK) &&
        memcmp(p, BEGIN_MARK, strlen(BEGIN_MARK)) == 0) {
      id = p + strlen(BEGIN_MARK);
      idlen = n - strlen(BEGIN_MARK);
      body = next;
    } else if (id != NULL && n == strlen(END_MARK) + idlen &&
               memcmp(p, END_MARK, strlen(END_MARK)) == 0 &&
               memcmp(p + strlen(END_MARK), id, idlen) == 0) {
      if (section_add(out, id, idlen, body, (size_t)(p - body)) != 0) {
        sshconf_sections_free(out);
        return -1;
      }
      id = NULL;
    }
    p = next;
  }
  if (id != NULL) {
    sshconf_sections_free(out);
    return -1;
  }
  return 0;
}

size_t sshconf_sections_remove(sshconf_sections_t *s, const char *project,
                               const char *service) {
  size_t kept = 0, gone = 0;
  for (size_t i = 0; i < s->n; i++) {
    sshconf_section_t *e = &s->v[i];
    int match = project == NULL ||
                (strcmp(e->project, project) == 0 &&
                 (service == NULL || strcmp(e->service, service) == 0));
    if (match) {
      free(e->project);
      free(e->service);
      free(e->body);
      gone++;
    } else {
      s->v[kept++] = *e;
    }
  }
  s->n = kept;
  return gone;
}

int sshconf_sections_put(sshconf_sections_t *s, const char *project,
                         const char *service, const char *body) {
  sshconf_sections_remove(s, project, service);
  char id[600];
  int n = snprintf(id, sizeof(id), "%s/%s", project, service);
  if (n < 0 || (size_t)n >= sizeof(id))
    return -1;
  return section_add(s, id, (size_t)n, body, strlen(body));
}

static int by_id(const void *a, const void *b) {
  const sshconf_section_t *x = a, *y = b;
  int c = strcmp(x->project, y->project);
  return c != 0 ? c : strcmp(x->service, y->service);
}

char *sshconf_sections_text(const sshconf_sections_t *s) {
  if (s->n > 1)
    qsort(s->v, s->n, sizeof(*s->v), by_id);
  text_t t = {0};
  puts_(&t, header);
  for (size_t i = 0; i < s->n; i++) {
    const sshconf_section_t *e = &s->v[i];
    puts_(&t, "\n" BEGIN_MARK);
    puts_(&t, e->project);
    puts_(&t, "/");
    puts_(&t, e->service);
    puts_(&t, "\n");
    puts_(&t, e->body);
    if (e->body[0] != '\0' && e->body[strlen(e->body) - 1] != '\n')
      puts_(&t, "\n");
    puts_(&t, END_MARK);
    puts_(&t, e->project);
    puts_(&t, "/");
    puts_(&t, e->service);
    puts_(&t, "\n");
  }
  return done(&t);
}

/* --- the Include line -------------------------------------------------- */

/* Where the whole line `line` starts in text, or NULL. */
static const char *find_line(const char *text, size_t len, const char *line) {
  size_t n = strlen(line);
  for (const char *p = text; p + n <= text + len;) {
    if (memcmp(p, line, n) == 0 && (p + n == text + len || p[n] == '\n'))
      return p;
    const char *nl = memchr(p, '\n', (size_t)(text + len - p));
    if (nl == NULL)
      break;
    p = nl + 1;
  }
  return NULL;
}

int sshconf_include_add(const char *text, size_t len, const char *line,
                        char **out, size_t *outlen) {
  if (find_line(text, len, line) != NULL)
    return 0;
  text_t t = {0};
  puts_(&t, line);
  puts_(&t, "\n");
  put(&t, text, len);
  if (t.oom) {
    free(t.p);
    return -1;
  }
  *out = t.p;
  *outlen = t.len;
  return 1;
}

int sshconf_include_remove(const char *text, size_t len, const char *line,
                           char **out, size_t *outlen) {
  size_t n = strlen(line);
  const char *p = find_line(text, len, line);
  if (p == NULL)
    return 0;
  text_t t = {0};
  const char *from = text;
  while (p != NULL) {
    put(&t, from, (size_t)(p - from));
    from = p + n < text + len ? p + n + 1 : text + len; /* and its '\n' */
    p = find_line(from, (size_t)(text + len - from), line);
  }
  put(&t, from, (size_t)(text + len - from));
  if (t.oom) {
    free(t.p);
    return -1;
  }
  *out = t.p ? t.p : strdup("");
  *outlen = t.len;
  return *out != NULL ? 1 : -1;
}

/* --- paths ------------------------------------------------------------- */

static char *join(const char *a, const char *b) {
  size_t n = strlen(a) + strlen(b) + 1;
  char *s = malloc(n);
  if (s != NULL)
    snprintf(s, n, "%s%s", a, b);
  return s;
}

static int same_dir(const char *a, const char *b) {
  char ra[PATH_MAX], rb[PATH_MAX];
  if (a == NULL || b == NULL)
    return 0;
  if (realpath(a, ra) == NULL || realpath(b, rb) == NULL)
    return strcmp(a, b) == 0;
  return strcmp(ra, rb) == 0;
}

int sshconf_paths(const char *home, const char *tilde, sshconf_paths_t *p) {
  memset(p, 0, sizeof(*p));
  p->home = home;
  p->tilde = tilde;
  p->ssh_dir = join(home, "/.ssh");
  p->conf = join(home, "/.ssh/wsmux.conf");
  char *config = join(home, "/.ssh/config"), real[PATH_MAX];
  /* A symlinked config (dotfiles) is written where it points. */
  p->config = config && realpath(config, real) ? strdup(real) : config;
  if (p->config != config)
    free(config);
  if (same_dir(home, tilde)) {
    p->include = strdup("Include ~/.ssh/wsmux.conf");
  } else if (p->conf != NULL) {
    /* OpenSSH splits the line at spaces unless quoted. */
    size_t n = strlen(p->conf) + 16;
    if ((p->include = malloc(n)) != NULL)
      snprintf(p->include, n,
               strchr(p->conf, ' ') ? "Include \"%s\"" : "Include %s", p->conf);
  }
  if (p->ssh_dir && p->conf && p->config && p->include)
    return 0;
  sshconf_paths_free(p);
  return -1;
}

void sshconf_paths_free(sshconf_paths_t *p) {
  free(p->ssh_dir);
  free(p->conf);
  free(p->config);
  free(p->include);
  memset(p, 0, sizeof(*p));
}

/* --- applying ---------------------------------------------------------- */

/* Read path, "" when missing. */
static int read_opt(const char *path, char **text, size_t *len, char *err,
                    size_t errlen) {
  file_read_result_t r =
      file_read(path, CONF_MAX, FILE_READ_MISSING_OK, text, len, err, errlen);
  if (r == FILE_READ_MISSING) {
    *text = strdup("");
    *len = 0;
    if (*text == NULL) {
      snprintf(err, errlen, "out of memory");
      return -1;
    }
    return 0;
  }
  return r == FILE_READ_OK ? 0 : -1;
}

static int write_file(const char *path, const char *text, size_t len, char *err,
                      size_t errlen) {
  /* 0600 for a new file: OpenSSH refuses one others may write. */
  return file_write_atomic(path, text, len, 0600, FILE_WRITE_KEEP_MODE, err,
                           errlen) == FILE_WRITE_FAILED
             ? -1
             : 0;
}

/* Make ~/.ssh/config include wsmux.conf (on) or not (off). */
static int set_include(const sshconf_paths_t *p, int on, sshconf_result_t *res,
                       char *err, size_t errlen) {
  char *text = NULL, *out = NULL;
  size_t len = 0, outlen = 0;
  if (read_opt(p->config, &text, &len, err, errlen) != 0)
    return -1;
  int rc = on ? sshconf_include_add(text, len, p->include, &out, &outlen)
              : sshconf_include_remove(text, len, p->include, &out, &outlen);
  if (rc < 0)
    snprintf(err, errlen, "out of memory");
  else if (rc == 1 && !on && outlen == 0 && unlink(p->config) == 0)
    rc = 1; /* nothing else was in it: we created it */
  else if (rc == 1 && write_file(p->config, out, outlen, err, errlen) != 0)
    rc = -1;
  if (rc == 1) {
    res->include_added = on;
    res->include_removed = !on;
  }
  free(text);
  free(out);
  return rc < 0 ? -1 : 0;
}

int sshconf_apply(const sshconf_paths_t *p, const char *project,
                  const char *service, const char *const *services,
                  const char *const *bodies, size_t n, int remove_only,
                  sshconf_result_t *res, char *err, size_t errlen) {
  memset(res, 0, sizeof(*res));
  if (mkdir(p->ssh_dir, 0700) != 0 && errno != EEXIST) {
    snprintf(err, errlen, "cannot create %s: %s", p->ssh_dir, strerror(errno));
    return -1;
  }
  char *old = NULL, *text = NULL;
  size_t len = 0;
  sshconf_sections_t s = {0};
  int rc = -1;
  if (read_opt(p->conf, &old, &len, err, errlen) != 0)
    return -1;
  if (sshconf_sections_parse(old, len, &s) != 0) {
    snprintf(err, errlen,
             "%s: a section is not closed (edited by hand?): fix or remove "
             "the file",
             p->conf);
    goto done;
  }
  res->removed = sshconf_sections_remove(&s, project, service);
  for (size_t i = 0; i < n && !remove_only; i++)
    if (sshconf_sections_put(&s, project, services[i], bodies[i]) != 0) {
      snprintf(err, errlen, "out of memory");
      goto done;
    }
  if (s.n > 0) {
    if ((text = sshconf_sections_text(&s)) == NULL) {
      snprintf(err, errlen, "out of memory");
      goto done;
    }
    res->conf_changed = strcmp(text, old) != 0;
    /* The file first: the Include never names a half-written one. */
    if ((res->conf_changed &&
         write_file(p->conf, text, strlen(text), err, errlen) != 0) ||
        set_include(p, 1, res, err, errlen) != 0)
      goto done;
  } else {
    /* The line first: ssh never reads a dangling Include meanwhile. */
    if (set_include(p, 0, res, err, errlen) != 0)
      goto done;
    if (unlink(p->conf) == 0)
      res->conf_changed = res->conf_removed = 1;
    else if (errno != ENOENT) {
      snprintf(err, errlen, "cannot remove %s: %s", p->conf, strerror(errno));
      goto done;
    }
  }
  rc = 0;
done:
  sshconf_sections_free(&s);
  free(old);
  free(text);
  return rc;
}
