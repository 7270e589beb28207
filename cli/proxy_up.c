/* `wsmux proxy up -f FILE` (cli/proxy_up.h). */
#include "cli/proxy_up.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "base/log.h"
#include "base/rlimit.h"
#include "cli/commands.h"
#include "cli/detach.h"
#include "cli/exitcode.h"
#include "cli/proxy_app.h"
#include "cli/proxy_status.h"
#include "cli/rundir.h"
#include "cli/upfile.h"
#include "proxy/endpoint.h"
#include "ws/session.h"

/* The liveness of --proxyOnly's defaults: a PING after 5 s of silence, dead
 * after 15 s. */
#define UP_DEAD_MS 15000

static const char usage[] =
    "usage: wsmux proxy up -f FILE [--detach] [--log-level LEVEL] [--quiet]\n"
    "                      [--edge URL] [--token T] [--ca FILE] [--insecure]\n"
    "\n"
    "Runs one process serving every service listed in FILE (JSON), each on\n"
    "its own endpoint with its own WebSocket, as --proxyOnly would, and\n"
    "prints the ready-made commands of each.\n"
    "\n"
    "  -f, --file FILE  {\"services\": [{\"projectId\": \"p1\", "
    "\"serviceId\":\n"
    "                   \"web\", \"user\"?, \"address\"?, \"port\"?}, ...],\n"
    "                   \"edge\"?, \"ca\"?, \"user\"?}\n"
    "  --detach         run in the background once every service is up (log\n"
    "                   in $XDG_RUNTIME_DIR/wsmux/)\n"
    "  --log-level L    error, warn (default; info with --detach), info or\n"
    "                   debug\n"
    "  --quiet          no info logs\n"
    "\n"
    "SIGHUP or `wsmux proxy reload -f FILE` applies a changed FILE: removed\n"
    "services stop, added ones start, the others keep their sessions.\n"
    "`wsmux proxy list` shows one row per service; `wsmux proxy stop -f\n"
    "FILE` stops them all.\n"
    "\n" CLI_CONTEXT_HELP;

typedef struct up up_t;

/* One service of the file and its proxy. */
typedef struct svc {
  up_t *up;
  struct svc *next;
  upfile_service_t spec; /* as the file gives it; owned copies */
  endpoint_t derived;    /* used where the spec gives no address, port */
  char name[2 * PROXY_STATUS_ID_MAX + 2];
  char path[2 * PROXY_STATUS_ID_MAX + 64];
  proxy_opts_t po;
  rundir_lock_t lock;
  proxy_t *proxy;
  int stopping; /* asked to stop: removed, changed, or all stop */
  int done;     /* the proxy reported done: reap it */
  int counted;  /* one of the start's services not yet up or failed */
  upfile_service_t *next_spec; /* changed: starts once this one is gone */
} svc_t;

struct up {
  uv_loop_t *loop;
  log_t log;
  const char *file; /* absolute */
  const char *dir;  /* the runtime directory */
  upfile_t start;   /* the file as read at the start ("edge", "ca") */
  transport_client_opts_t edge;
  log_level_t level;
  int64_t started_at;
  detach_t *detach;
  const char *log_path;
  svc_t *svcs;
  uv_signal_t sigint, sigterm, sighup;
  uv_timer_t reap;
  int starting; /* services of the start not yet up or failed */
  int summary_done;
  int stopping;
  int closed;
  int exit_code; /* of the first service that failed */
};

static const proxy_events_t svc_events;

/* --- output ------------------------------------------------------------ */

/* Text for stdout: the parent's while it waits for a background start,
 * else ours (the log file once in the background). */
static void up_out(up_t *up, const char *text) {
  if (up->detach != NULL && detach_pending(up->detach)) {
    detach_out(up->detach, text);
    return;
  }
  fputs(text, stdout);
  fflush(stdout);
}

/* --- services ---------------------------------------------------------- */

static int spec_copy(upfile_service_t *dst, const upfile_service_t *src) {
  *dst = (upfile_service_t){.port = src->port};
  dst->project = strdup(src->project);
  dst->service = strdup(src->service);
  dst->user = strdup(src->user);
  dst->address = src->address ? strdup(src->address) : NULL;
  return dst->project && dst->service && dst->user &&
                 (dst->address || !src->address)
             ? 0
             : -1;
}

static void spec_free(upfile_service_t *s) {
  if (s == NULL)
    return;
  free(s->project);
  free(s->service);
  free(s->user);
  free(s->address);
}

static void svc_free(svc_t *s) {
  spec_free(&s->spec);
  if (s->next_spec != NULL) {
    spec_free(s->next_spec);
    free(s->next_spec);
  }
  free(s);
}

/* A pidfile someone else holds: why this service cannot start. */
static void report_held(up_t *up, const char *name, const char *held) {
  proxy_status_t st;
  if (proxy_status_parse(held, &st) != 0)
    log_msg(&up->log, LOG_ERROR, "%s: another wsmux holds its pidfile", name);
  else if (st.up_file[0] != '\0')
    log_msg(&up->log, LOG_ERROR,
            "%s: already served by `wsmux proxy up -f %s` (pid %ld)", name,
            st.up_file, st.pid);
  else
    log_msg(&up->log, LOG_ERROR,
            "%s: a proxy for it already runs (pid %ld): stop it with `wsmux "
            "proxy stop --projectId %s --serviceId %s`",
            name, st.pid, st.project, st.service);
}

/* Take the service's pidfile: 0, RUNDIR_HELD (held copied), or -1. */
static int svc_lock(up_t *up, const upfile_service_t *spec, rundir_lock_t *lk,
                    char *held, size_t heldlen) {
  proxy_status_t st = {.pid = (long)getpid(), .started_at = up->started_at};
  snprintf(st.project, sizeof(st.project), "%s", spec->project);
  snprintf(st.service, sizeof(st.service), "%s", spec->service);
  snprintf(st.up_file, sizeof(st.up_file), "%s", up->file);
  char *text = proxy_status_pidfile_text(&st), err[512] = "out of memory";
  int rc = text != NULL
               ? rundir_acquire(up->dir, spec->project, spec->service, text, lk,
                                held, heldlen, err, sizeof(err))
               : -1;
  free(text);
  if (rc < 0)
    log_msg(&up->log, LOG_ERROR, "%s/%s: %s", spec->project, spec->service,
            err);
  return rc;
}

/* Start the proxy of spec with its pidfile lk taken; NULL (lk released)
 * when out of memory. */
static svc_t *svc_start_locked(up_t *up, const upfile_service_t *spec,
                               rundir_lock_t *lk) {
  svc_t *s = calloc(1, sizeof(*s));
  if (s == NULL || spec_copy(&s->spec, spec) != 0) {
    if (s != NULL)
      svc_free(s);
    rundir_release(lk);
    log_msg(&up->log, LOG_ERROR, "out of memory");
    return NULL;
  }
  s->up = up;
  s->lock = *lk;
  snprintf(s->name, sizeof(s->name), "%s/%s", spec->project, spec->service);
  snprintf(s->path, sizeof(s->path), "/v1/projects/%s/services/%s/ssh",
           spec->project, spec->service);
  endpoint_derive(spec->project, spec->service, &s->derived);
  s->po = (proxy_opts_t){
      .mode = PROXY_MODE_LISTEN,
      .edge = up->edge,
      .addr = s->spec.address ? s->spec.address : s->derived.addr,
      .port = spec->port >= 0 ? spec->port : s->derived.port,
      .port_tries = ENDPOINT_PORT_TRIES,
      .user = s->spec.user,
      .window = SESSION_WINDOW_DEFAULT,
      .ping_ms = UP_DEAD_MS / 3,
      .dead_ms = UP_DEAD_MS,
      .level = up->level,
      .project = s->spec.project,
      .service = s->spec.service,
      .name = s->name,
      .up_file = up->file,
      .pidfile = &s->lock,
      .started_at = up->started_at,
      .detach = up->detach,
      .log_path = up->log_path,
  };
  s->po.edge.path = s->path;
  s->proxy = proxy_new(up->loop, &s->po, &svc_events, s);
  if (s->proxy == NULL) {
    rundir_release(&s->lock);
    svc_free(s);
    log_msg(&up->log, LOG_ERROR, "out of memory");
    return NULL;
  }
  s->next = up->svcs;
  up->svcs = s;
  return s;
}

/* Reload: take the pidfile and start; 0 when started. */
static int svc_start(up_t *up, const upfile_service_t *spec) {
  char held[RUNDIR_CONTENT_MAX], name[2 * PROXY_STATUS_ID_MAX + 2];
  rundir_lock_t lk;
  snprintf(name, sizeof(name), "%s/%s", spec->project, spec->service);
  int rc = svc_lock(up, spec, &lk, held, sizeof(held));
  if (rc == RUNDIR_HELD)
    report_held(up, name, held);
  if (rc != 0)
    return -1;
  return svc_start_locked(up, spec, &lk) != NULL ? 0 : -1;
}

/* The service of these ids, running, stopping or done (not yet reaped). */
static svc_t *svc_find(up_t *up, const char *project, const char *service) {
  for (svc_t *s = up->svcs; s != NULL; s = s->next)
    if (strcmp(s->spec.project, project) == 0 &&
        strcmp(s->spec.service, service) == 0)
      return s;
  return NULL;
}

static void svc_stop(svc_t *s) {
  if (s->stopping)
    return;
  s->stopping = 1;
  proxy_shutdown(s->proxy);
}

/* --- the start's summary ----------------------------------------------- */

static void maybe_summary(up_t *up) {
  if (up->summary_done || up->starting > 0)
    return;
  up->summary_done = 1;
  int running = 0;
  for (svc_t *s = up->svcs; s != NULL; s = s->next)
    running += !s->done && !s->stopping;
  if (running == 0)
    return; /* nothing is up: the process ends, with the failure's code */
  char text[3 * PATH_MAX];
  if (up->detach == NULL) {
    snprintf(text, sizeof(text),
             "%d service%s up from %s (pid %ld): `wsmux proxy list` shows "
             "them; reload with `wsmux proxy reload -f %s` or SIGHUP, stop "
             "with Ctrl+C\n",
             running, running == 1 ? "" : "s", up->file, (long)getpid(),
             up->file);
    up_out(up, text);
    return;
  }
  snprintf(text, sizeof(text),
           "%d service%s running in the background (pid %ld), log: %s\n"
           "Reload with: wsmux proxy reload -f %s\n"
           "Stop them with: wsmux proxy stop -f %s\n",
           running, running == 1 ? "" : "s", (long)getpid(), up->log_path,
           up->file, up->file);
  up_out(up, text);
  detach_ready(up->detach);
  log_msg(&up->log, LOG_INFO, "%d services of %s running", running, up->file);
}

/* --- events of the proxies --------------------------------------------- */

static void on_svc_up(void *ctx, proxy_t *p, const char *banner) {
  svc_t *s = ctx;
  (void)p;
  up_out(s->up, banner);
  if (s->counted) {
    s->counted = 0;
    s->up->starting--;
    maybe_summary(s->up);
  }
}

static void on_reap(uv_timer_t *t);

static void on_svc_done(void *ctx, proxy_t *p, int code) {
  svc_t *s = ctx;
  up_t *up = s->up;
  (void)p;
  s->done = 1;
  if (!s->stopping && code != EXIT_OK) {
    if (up->exit_code == EXIT_OK)
      up->exit_code = code;
    log_msg(&up->log, LOG_WARN,
            "%s stopped (exit %d); the other services keep running, a "
            "reload starts it again",
            s->name, code);
  }
  uv_timer_start(&up->reap, on_reap, 0, 0);
}

static const proxy_events_t svc_events = {.up = on_svc_up, .done = on_svc_done};

static void up_close(up_t *up) {
  if (up->closed)
    return;
  up->closed = 1;
  uv_close((uv_handle_t *)&up->sigint, NULL);
  uv_close((uv_handle_t *)&up->sigterm, NULL);
  uv_close((uv_handle_t *)&up->sighup, NULL);
  uv_close((uv_handle_t *)&up->reap, NULL);
}

/* Free the proxies that are done, outside their callbacks; start what
 * waited for them; end when no service is left. */
static void on_reap(uv_timer_t *t) {
  up_t *up = t->data;
  svc_t **pp = &up->svcs;
  upfile_service_t *restart[UPFILE_SERVICES_MAX];
  int nrestart = 0;
  while (*pp != NULL) {
    svc_t *s = *pp;
    if (!s->done) {
      pp = &s->next;
      continue;
    }
    *pp = s->next;
    if (s->counted) {
      s->counted = 0;
      up->starting--;
    }
    proxy_free(s->proxy);
    rundir_release(&s->lock);
    if (s->next_spec != NULL && !up->stopping &&
        nrestart < UPFILE_SERVICES_MAX) {
      restart[nrestart++] = s->next_spec;
      s->next_spec = NULL;
    }
    svc_free(s);
  }
  for (int i = 0; i < nrestart; i++) {
    svc_start(up, restart[i]);
    spec_free(restart[i]);
    free(restart[i]);
  }
  maybe_summary(up);
  if (up->svcs == NULL)
    up_close(up);
}

/* --- signals ----------------------------------------------------------- */

static int same_string(const char *a, const char *b) {
  return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* SIGHUP: apply the file as it is now (see cli/proxy_up.h). */
static void reload(up_t *up) {
  upfile_t nf;
  char err[1024];
  if (upfile_load(up->file, &nf, err, sizeof(err)) != 0) {
    log_msg(&up->log, LOG_ERROR, "reload refused, nothing changed: %s", err);
    return;
  }
  const char *changed = !same_string(nf.edge, up->start.edge) ? "edge"
                        : !same_string(nf.ca, up->start.ca)   ? "ca"
                                                              : NULL;
  if (changed != NULL) {
    log_msg(&up->log, LOG_ERROR,
            "reload refused, nothing changed: %s: \"%s\" differs from the "
            "start; restart `wsmux proxy up` to use another",
            up->file, changed);
    upfile_free(&nf);
    return;
  }
  int started = 0, stopped = 0, restarted = 0, same = 0, failed = 0;
  for (svc_t *s = up->svcs; s != NULL; s = s->next) {
    if (s->done || s->stopping)
      continue;
    const upfile_service_t *ns =
        upfile_find(&nf, s->spec.project, s->spec.service);
    if (ns == NULL) {
      svc_stop(s);
      stopped++;
    } else if (!upfile_service_equal(&s->spec, ns)) {
      s->next_spec = calloc(1, sizeof(*s->next_spec));
      if (s->next_spec != NULL && spec_copy(s->next_spec, ns) != 0) {
        spec_free(s->next_spec);
        free(s->next_spec);
        s->next_spec = NULL;
        failed++; /* it stops, and does not come back */
      }
      svc_stop(s);
      restarted++;
    } else {
      same++;
    }
  }
  for (size_t i = 0; i < nf.n; i++) {
    const upfile_service_t *ns = &nf.services[i];
    svc_t *cur = svc_find(up, ns->project, ns->service);
    if (cur == NULL) {
      if (svc_start(up, ns) == 0)
        started++;
      else
        failed++;
    } else if ((cur->stopping || cur->done) && cur->next_spec == NULL) {
      /* Removed by an earlier reload and still closing, or stopped on an
       * error: it holds its pidfile until reaped; back once gone. */
      cur->next_spec = calloc(1, sizeof(*cur->next_spec));
      if (cur->next_spec != NULL && spec_copy(cur->next_spec, ns) == 0) {
        started++;
      } else {
        spec_free(cur->next_spec);
        free(cur->next_spec);
        cur->next_spec = NULL;
        failed++;
      }
    }
  }
  upfile_free(&nf);
  char text[PATH_MAX + 256];
  snprintf(text, sizeof(text),
           "Reloaded %s: %d started, %d stopped, %d restarted (settings "
           "changed), %d unchanged%s\n",
           up->file, started, stopped, restarted, same,
           failed ? ", some could not start (see the errors above)" : "");
  up_out(up, text);
}

static void on_signal(uv_signal_t *h, int signum) {
  up_t *up = h->data;
  if (up->stopping)
    return;
  if (signum == SIGHUP) {
    reload(up);
    return;
  }
  log_msg(&up->log, LOG_INFO, "stopping every service of %s", up->file);
  up->stopping = 1;
  for (svc_t *s = up->svcs; s != NULL; s = s->next)
    if (!s->done)
      svc_stop(s);
  if (up->svcs == NULL)
    up_close(up);
}

/* --- the command ------------------------------------------------------- */

typedef struct {
  const char *file, *level;
  cli_context_flags_t flags;
  int detach, quiet, help;
} up_args_t;

/* A `proxy up` of the same file runs: show its endpoints. */
static void show_ours(up_t *up, const upfile_service_t *sp,
                      const proxy_status_t *st, int first) {
  if (first)
    log_msg(&up->log, LOG_INFO,
            "`wsmux proxy up` of %s is already running (pid %ld)", up->file,
            st->pid);
  char endpoint[sizeof(st->endpoint)], text[2048];
  char name[2 * PROXY_STATUS_ID_MAX + 2];
  snprintf(endpoint, sizeof(endpoint), "%s", st->endpoint);
  char *colon = strrchr(endpoint, ':');
  if (colon == NULL)
    return; /* still binding its endpoint */
  *colon = '\0';
  snprintf(name, sizeof(name), "%s/%s", st->project, st->service);
  proxy_app_banner(name, endpoint, atoi(colon + 1), sp->user, "", text,
                   sizeof(text));
  up_out(up, text);
}

/* Every pidfile of the file's services, all or nothing. EXIT_OK with
 * every locks[i] taken; -1 when the same file's `proxy up` runs (shown);
 * else an exit code after saying why. Nothing is held unless EXIT_OK. */
static int lock_all(up_t *up, const upfile_t *f, rundir_lock_t *locks) {
  char held[RUNDIR_CONTENT_MAX];
  int rc = EXIT_OK, ours = 0;
  for (size_t i = 0; i < f->n && rc == EXIT_OK; i++) {
    const upfile_service_t *sp = &f->services[i];
    int got = svc_lock(up, sp, &locks[i], held, sizeof(held));
    proxy_status_t st;
    if (got == 0)
      continue;
    if (got == RUNDIR_HELD && proxy_status_parse(held, &st) == 0 &&
        strcmp(st.up_file, up->file) == 0) {
      show_ours(up, sp, &st, !ours);
      ours = 1;
      continue;
    }
    if (got == RUNDIR_HELD) {
      char name[2 * PROXY_STATUS_ID_MAX + 2];
      snprintf(name, sizeof(name), "%s/%s", sp->project, sp->service);
      report_held(up, name, held);
    }
    rc = got == RUNDIR_HELD ? EXIT_REFUSED : EXIT_USAGE;
  }
  if (rc == EXIT_OK && !ours)
    return EXIT_OK;
  for (size_t i = 0; i < f->n; i++)
    rundir_release(&locks[i]); /* safe on one not taken */
  if (rc != EXIT_OK)
    return rc;
  char text[2 * PATH_MAX + 128];
  snprintf(text, sizeof(text),
           "Stop it with: wsmux proxy stop -f %s\n"
           "Apply changes of the file with: wsmux proxy reload -f %s\n",
           up->file, up->file);
  up_out(up, text);
  return -1;
}

static int up_run(up_t *up) {
  rundir_lock_t *locks = calloc(up->start.n, sizeof(*locks));
  if (locks == NULL) {
    log_msg(&up->log, LOG_ERROR, "out of memory");
    return EXIT_USAGE;
  }
  for (size_t i = 0; i < up->start.n; i++)
    locks[i].fd = -1;
  int rc = lock_all(up, &up->start, locks);
  if (rc != EXIT_OK) {
    free(locks);
    return rc < 0 ? EXIT_OK : rc;
  }
  signal(SIGPIPE, SIG_IGN);
  rlimit_raise_nofile(); /* one socket per stream */
  uv_loop_t loop;
  uv_loop_init(&loop);
  up->loop = &loop;
  uv_signal_t *sigs[] = {&up->sigint, &up->sigterm, &up->sighup};
  int nums[] = {SIGINT, SIGTERM, SIGHUP};
  for (int i = 0; i < 3; i++) {
    uv_signal_init(&loop, sigs[i]);
    sigs[i]->data = up;
    uv_signal_start(sigs[i], on_signal, nums[i]);
  }
  uv_timer_init(&loop, &up->reap);
  up->reap.data = up;
  for (size_t i = 0; i < up->start.n; i++) {
    svc_t *s = svc_start_locked(up, &up->start.services[i], &locks[i]);
    if (s != NULL) {
      s->counted = 1;
      up->starting++;
    }
  }
  free(locks);
  if (up->svcs == NULL)
    up_close(up);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0 && up->level >= LOG_DEBUG)
    log_msg(&up->log, LOG_DEBUG, "loop not empty at exit");
  return up->stopping ? EXIT_OK : up->exit_code;
}

int cmd_proxy_up(int argc, char **argv) {
  up_args_t a = {0};
  const args_opt_t opts[] = {{"file", &a.file, NULL},
                             {"log-level", &a.level, NULL},
                             {"detach", NULL, &a.detach},
                             {"quiet", NULL, &a.quiet},
                             {"help", NULL, &a.help},
                             CLI_CONTEXT_OPTS(&a.flags),
                             {0}};
  const cmd_spec_t spec = {.name = "proxy up",
                           .usage = usage,
                           .opts = opts,
                           .help = &a.help,
                           .dash_f = "file"};
  int rc = cmd_parse(&spec, argc, argv);
  if (rc >= 0)
    return rc;
  if (a.file == NULL) {
    log_print("wsmux", LOG_ERROR, "-f FILE is required");
    return EXIT_USAGE;
  }
  int lvl = log_level_parse(a.level ? a.level : a.detach ? "info" : "warn");
  if (lvl < 0) {
    log_print("wsmux", LOG_ERROR, "unknown --log-level '%s'", a.level);
    return EXIT_USAGE;
  }
  if (a.quiet && lvl > LOG_WARN)
    lvl = LOG_WARN;
  char file[PATH_MAX], dir[PATH_MAX], err[1024], ca[PATH_MAX];
  char log_path[PATH_MAX];
  if (realpath(a.file, file) == NULL) {
    log_print("wsmux", LOG_ERROR, "cannot open %s: %s", a.file,
              strerror(errno));
    return EXIT_USAGE;
  }
  if (strlen(file) >= PROXY_STATUS_PATH_MAX) {
    log_print("wsmux", LOG_ERROR, "%s: path too long", file);
    return EXIT_USAGE;
  }
  up_t up = {.file = file,
             .dir = dir,
             .level = (log_level_t)lvl,
             .started_at = (int64_t)time(NULL),
             .log = {.prog = "wsmux", .level = (log_level_t)lvl}};
  if (upfile_load(file, &up.start, err, sizeof(err)) != 0) {
    log_print("wsmux", LOG_ERROR, "%s", err);
    return EXIT_USAGE;
  }
  /* The file's "edge" and "ca" are defaults the options override. */
  cli_context_flags_t flags = a.flags;
  flags.edge = flags.edge ? flags.edge : up.start.edge;
  flags.ca = flags.ca ? flags.ca : up.start.ca;
  cli_context_t ctx;
  if ((rc = cli_context_resolve_flags(&flags, &ctx)) != 0) {
    upfile_free(&up.start);
    return rc;
  }
  up.edge = (transport_client_opts_t){.url = ctx.edge,
                                      .token = ctx.token,
                                      .ca_file = ctx.ca,
                                      .insecure = ctx.insecure};
  if (up.edge.insecure)
    log_print("wsmux", LOG_WARN,
              "--insecure: the edge's certificate is NOT verified; anyone on "
              "the path can read and change these sessions");
  detach_t d = {.fd = -1};
  rc = EXIT_USAGE;
  if (rundir_dir(dir, sizeof(dir), err, sizeof(err)) != 0) {
    log_print("wsmux", LOG_ERROR, "%s", err);
    goto done;
  }
  if (a.detach) {
    /* One log per file: its path hashed (FNV-1a), the name for people. */
    uint32_t h = 2166136261u;
    for (const char *c = file; *c; c++)
      h = (h ^ (uint8_t)*c) * 16777619u;
    const char *base = strrchr(file, '/') + 1;
    int n = snprintf(log_path, sizeof(log_path), "%s/up.%.64s.%08x.log", dir,
                     base, h);
    if (n < 0 || (size_t)n >= sizeof(log_path)) {
      log_print("wsmux", LOG_ERROR, "runtime file name too long");
      goto done;
    }
    /* The background process runs in "/": relative paths would break. */
    if (up.edge.ca_file != NULL && realpath(up.edge.ca_file, ca) != NULL)
      up.edge.ca_file = ca;
    int is_child = 0;
    rc = detach_start(log_path, &d, &is_child);
    if (rc < 0 || !is_child) {
      rc = rc < 0 ? EXIT_USAGE : rc;
      goto done;
    }
    up.detach = &d;
    up.log_path = log_path;
    up.log.timestamps = 1;
    log_msg(&up.log, LOG_INFO,
            "starting the services of %s in the background (pid %ld)", file,
            (long)getpid());
  }
  rc = up_run(&up);
  detach_fail(&d, rc); /* not ready: the parent exits with rc */
done:
  cli_context_free(&ctx);
  upfile_free(&up.start);
  return rc;
}
