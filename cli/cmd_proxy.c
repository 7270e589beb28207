/* `wsmux proxy list | stop` (cli/cmd_proxy.h). */
#include "cli/cmd_proxy.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/exitcode.h"
#include "base/log.h"
#include "cli/proxy_status.h"
#include "cli/rundir.h"
#include "cli/status_line.h"
#include "cli/upfile.h"

/* How long a proxy's control socket has to answer. */
#define QUERY_TIMEOUT_MS 1000
/* How long `stop` waits for a proxy to exit after SIGTERM. */
#define STOP_TIMEOUT_MS 10000
/* How long `reload` waits for the new set of services. */
#define RELOAD_TIMEOUT_MS 10000

const char cmd_proxy_usage[] =
    "usage: wsmux proxy <command>\n"
    "\n"
    "commands:\n"
    "  list     the proxies (`wsmux ssh service --proxyOnly`, `wsmux proxy\n"
    "           up`) running here\n"
    "  stop     stop one of them, a `proxy up`, or all\n"
    "  up       serve every service of a file in one process\n"
    "  reload   make a `proxy up` apply its changed file\n"
    "\n"
    "  wsmux proxy <command> --help   options of a command\n";

static const char list_usage[] =
    "usage: wsmux proxy list [--output table|json]\n"
    "\n"
    "Lists the proxies of this user running on this machine, in the\n"
    "background (--detach) or not: PROJECT, SERVICE, ENDPOINT, PID, UPTIME,\n"
    "STREAMS (open), UP and DOWN (bytes to and from the edge) and LINK\n"
    "(connected or reconnecting), one row per service (those of one `proxy\n"
    "up` share its PID). Files of proxies that died are removed.\n"
    "\n"
    "  --output F      table (default) or json (an array of status objects)\n";

static const char stop_usage[] =
    "usage: wsmux proxy stop (--projectId P --serviceId S | -f FILE | --all)\n"
    "\n"
    "Stops the proxy of service S of project P (or every proxy) like Ctrl+C\n"
    "would: no new connections, a clean close to the edge, open connections\n"
    "closed. Waits up to 10 s for each to exit. Exit 3 when no proxy runs\n"
    "for S.\n"
    "\n"
    "  -f, --file FILE  stop the `wsmux proxy up -f FILE` process, all its\n"
    "                   services. One service of it cannot be stopped alone\n"
    "                   (exit 5): remove it from FILE and `wsmux proxy\n"
    "                   reload`.\n"
    "  --all            every proxy and `proxy up` of this user\n";

static const char reload_usage[] =
    "usage: wsmux proxy reload [-f FILE]\n"
    "\n"
    "Makes the `wsmux proxy up -f FILE` process apply FILE as it is now (as\n"
    "SIGHUP does): removed services stop, added ones start, changed ones\n"
    "restart, the others keep their sessions. FILE is checked first: one\n"
    "that does not parse is refused here (exit 1) and nothing is sent.\n"
    "Waits up to 10 s for the process to serve exactly the services of\n"
    "FILE, then lists them.\n"
    "\n"
    "  -f, --file FILE  the file of the `proxy up` to reload (default: the\n"
    "                   only one running)\n";

/* --- list -------------------------------------------------------------- */

/* A proxy's status: from its control socket, else from its pidfile. */
static int entry_status(const rundir_entry_t *e, proxy_status_t *s) {
  proxy_status_t live;
  if (proxy_status_parse(e->content, s) != 0)
    return -1;
  if (proxy_status_query(e->sock_path, QUERY_TIMEOUT_MS, &live) == 0 &&
      live.pid == s->pid)
    *s = live;
  return 0;
}

static void table_row(output_table_t *t, const proxy_status_t *s, int64_t now) {
  char pid[24], up[32] = "", streams[24] = "", tx[32] = "", rx[32] = "";
  snprintf(pid, sizeof(pid), "%ld", s->pid);
  status_format_duration(
      (uint64_t)(now > s->started_at ? now - s->started_at : 0), up,
      sizeof(up));
  const char *link = NULL;
  if (s->live) {
    snprintf(streams, sizeof(streams), "%llu", (unsigned long long)s->streams);
    status_format_size(s->bytes_up, tx, sizeof(tx));
    status_format_size(s->bytes_down, rx, sizeof(rx));
    link = s->connected ? "connected" : "reconnecting";
  }
  const char *cells[] = {s->project, s->service, s->endpoint, pid, up,
                         streams,    tx,         rx,          link};
  output_table_add(t, cells);
}

static int proxy_list(int argc, char **argv) {
  const char *output = NULL;
  int help = 0;
  const args_opt_t opts[] = {
      {"output", &output, NULL}, {"help", NULL, &help}, {0}};
  const cmd_spec_t spec = {
      .name = "proxy list", .usage = list_usage, .opts = opts, .help = &help};
  output_format_t fmt;
  int rc = cmd_parse(&spec, argc, argv);
  if (rc >= 0)
    return rc;
  if ((rc = cmd_output_parse(output, &fmt)) != 0)
    return rc;
  char dir[PATH_MAX], err[512];
  rundir_entry_t *es = NULL;
  size_t n = 0, stale = 0;
  if (rundir_dir(dir, sizeof(dir), err, sizeof(err)) != 0 ||
      rundir_scan(dir, &es, &n, &stale, err, sizeof(err)) != 0) {
    log_print("wsmux", LOG_ERROR, "%s", err);
    return EXIT_USAGE;
  }
  if (stale > 0)
    log_print("wsmux", LOG_INFO,
              "removed the files of %zu proxy process%s that had died", stale,
              stale == 1 ? "" : "es");
  static const char *const heads[] = {"PROJECT", "SERVICE", "ENDPOINT",
                                      "PID",     "UPTIME",  "STREAMS",
                                      "UP",      "DOWN",    "LINK"};
  output_table_t *t = output_table_new(9, heads);
  cJSON *arr = cJSON_CreateArray();
  int64_t now = (int64_t)time(NULL);
  size_t shown = 0;
  for (size_t i = 0; i < n && t != NULL && arr != NULL; i++) {
    proxy_status_t s;
    if (entry_status(&es[i], &s) != 0)
      continue;
    table_row(t, &s, now);
    cJSON *o = proxy_status_json(&s, now);
    if (o != NULL)
      cJSON_AddItemToArray(arr, o);
    shown++;
  }
  free(es);
  if (t == NULL || arr == NULL) {
    log_print("wsmux", LOG_ERROR, "out of memory");
    rc = EXIT_USAGE;
  } else if (fmt == OUTPUT_JSON) {
    output_json_print(arr, stdout);
  } else if (shown > 0) {
    output_table_print(t, stdout);
  }
  if (rc == EXIT_OK && shown == 0)
    log_print("wsmux", LOG_INFO, "no proxies running");
  output_table_free(t);
  cJSON_Delete(arr);
  return rc;
}

/* --- stop -------------------------------------------------------------- */

static int pidfd_open_(pid_t pid) {
  return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int pidfd_signal(int fd, int sig) {
  return (int)syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0);
}

/* Send sig to the process of s if it still holds pid_path. 1 with *fd (a
 * pidfd, the caller closes it) when sent; 0 when it is gone already; else
 * an error was printed: -1. */
static int signal_holder(const char *dir, const char *pid_path,
                         const proxy_status_t *s, int sig, int *fd) {
  /* Hold the process first, then check it still owns the pidfile: the
   * signal can then only reach that proxy, never a reused pid. */
  *fd = pidfd_open_((pid_t)s->pid);
  char content[RUNDIR_CONTENT_MAX];
  proxy_status_t now;
  int held =
      *fd >= 0 ? rundir_read_held(dir, pid_path, content, sizeof(content)) : 0;
  if (*fd < 0 && errno != ESRCH) {
    log_print("wsmux", LOG_ERROR, "cannot watch pid %ld: %s", s->pid,
              strerror(errno));
    return -1;
  }
  if (held != 1 || proxy_status_parse(content, &now) != 0 ||
      now.pid != s->pid) {
    if (*fd >= 0)
      close(*fd);
    *fd = -1;
    return 0; /* it went away by itself meanwhile */
  }
  if (pidfd_signal(*fd, sig) != 0 && errno != ESRCH) {
    log_print("wsmux", LOG_ERROR, "cannot signal pid %ld: %s", s->pid,
              strerror(errno));
    close(*fd);
    *fd = -1;
    return -1;
  }
  return 1;
}

/* SIGTERM the process holding pid_path and wait for it to exit. */
static int stop_process(const char *dir, const char *pid_path,
                        const proxy_status_t *s) {
  int fd;
  int rc = signal_holder(dir, pid_path, s, SIGTERM, &fd);
  if (rc <= 0)
    return rc == 0 ? EXIT_OK : EXIT_USAGE;
  /* A pidfd becomes readable when its process has exited. */
  struct pollfd p = {.fd = fd, .events = POLLIN};
  while ((rc = poll(&p, 1, STOP_TIMEOUT_MS)) < 0 && errno == EINTR)
    ;
  close(fd);
  if (rc <= 0) {
    log_print("wsmux", LOG_ERROR, "%s (pid %ld) did not stop within %d s",
              s->up_file[0] ? "the `wsmux proxy up`" : "the proxy", s->pid,
              STOP_TIMEOUT_MS / 1000);
    return EXIT_USAGE;
  }
  return EXIT_OK;
}

/* The running proxies, parsed; es[i] and ss[i] go together. */
typedef struct {
  rundir_entry_t *es;
  proxy_status_t *ss;
  size_t n;
} running_t;

static int running_scan(const char *dir, running_t *r) {
  size_t stale = 0, n = 0;
  char err[512];
  memset(r, 0, sizeof(*r));
  if (rundir_scan(dir, &r->es, &n, &stale, err, sizeof(err)) != 0) {
    log_print("wsmux", LOG_ERROR, "%s", err);
    return -1;
  }
  r->ss = calloc(n ? n : 1, sizeof(*r->ss));
  if (r->ss == NULL) {
    free(r->es);
    log_print("wsmux", LOG_ERROR, "out of memory");
    return -1;
  }
  for (size_t i = 0; i < n; i++)
    if (proxy_status_parse(r->es[i].content, &r->ss[r->n]) == 0)
      r->es[r->n++] = r->es[i];
  return 0;
}

static void running_free(running_t *r) {
  free(r->es);
  free(r->ss);
}

/* Stop the processes of the entries that match (up_file, or all when
 * NULL), each once, and print a line per service. */
static int stop_matching(const char *dir, const char *up_file) {
  running_t r;
  if (running_scan(dir, &r) != 0)
    return EXIT_USAGE;
  int rc = EXIT_OK;
  size_t found = 0;
  for (size_t i = 0; i < r.n; i++) {
    const proxy_status_t *s = &r.ss[i];
    int first = 1;
    for (size_t j = 0; j < i && first; j++)
      first = r.ss[j].pid != s->pid;
    if (!first || (up_file != NULL && strcmp(s->up_file, up_file) != 0))
      continue;
    found++;
    int one = stop_process(dir, r.es[i].pid_path, s);
    rc = rc != EXIT_OK ? rc : one;
    for (size_t j = i; j < r.n && one == EXIT_OK; j++)
      if (r.ss[j].pid == s->pid)
        printf("stopped %s/%s (pid %ld)\n", r.ss[j].project, r.ss[j].service,
               s->pid);
    fflush(stdout);
  }
  running_free(&r);
  if (found == 0 && up_file != NULL) {
    log_print("wsmux", LOG_ERROR, "no `wsmux proxy up` running %s", up_file);
    return EXIT_NOT_FOUND;
  }
  if (found == 0)
    log_print("wsmux", LOG_INFO, "no proxies running");
  return rc;
}

/* The absolute path of a file of `proxy up`, even once it is gone. */
static int up_file_path(const char *file, char *out, size_t len) {
  char cwd[PATH_MAX];
  if (realpath(file, out) != NULL)
    return 0;
  if (file[0] == '/')
    return snprintf(out, len, "%s", file) < (int)len ? 0 : -1;
  if (getcwd(cwd, sizeof(cwd)) == NULL)
    return -1;
  return snprintf(out, len, "%s/%s", cwd, file) < (int)len ? 0 : -1;
}

static int proxy_stop(int argc, char **argv) {
  const char *project = NULL, *service = NULL, *file = NULL;
  int all = 0, help = 0;
  const args_opt_t opts[] = {
      {"projectId", &project, NULL}, {"serviceId", &service, NULL},
      {"file", &file, NULL},         {"all", NULL, &all},
      {"help", NULL, &help},         {0}};
  const cmd_spec_t spec = {.name = "proxy stop",
                           .usage = stop_usage,
                           .opts = opts,
                           .help = &help,
                           .dash_f = "file"};
  int rc = cmd_parse(&spec, argc, argv);
  if (rc >= 0)
    return rc;
  if ((all + (file != NULL) + (project || service)) > 1) {
    log_print("wsmux", LOG_ERROR,
              "give one of --projectId/--serviceId, -f FILE and --all");
    return EXIT_USAGE;
  }
  if (!all && !file && (!project || !service)) {
    log_print("wsmux", LOG_ERROR, "%s is required (or -f FILE, or --all)",
              project ? "--serviceId" : "--projectId");
    return EXIT_USAGE;
  }
  if (!all && !file &&
      ((rc = cmd_id_check("--projectId", project)) != 0 ||
       (rc = cmd_id_check("--serviceId", service)) != 0))
    return rc;
  char dir[PATH_MAX], err[512], path[PATH_MAX], abs[PATH_MAX];
  if (rundir_dir(dir, sizeof(dir), err, sizeof(err)) != 0) {
    log_print("wsmux", LOG_ERROR, "%s", err);
    return EXIT_USAGE;
  }
  if (all)
    return stop_matching(dir, NULL);
  if (file) {
    if (up_file_path(file, abs, sizeof(abs)) != 0) {
      log_print("wsmux", LOG_ERROR, "%s: path too long", file);
      return EXIT_USAGE;
    }
    return stop_matching(dir, abs);
  }
  char content[RUNDIR_CONTENT_MAX];
  proxy_status_t s;
  if (rundir_path(path, sizeof(path), dir, project, service, "pid") != 0 ||
      rundir_read_held(dir, path, content, sizeof(content)) != 1 ||
      proxy_status_parse(content, &s) != 0 || strcmp(s.project, project) != 0 ||
      strcmp(s.service, service) != 0) {
    log_print("wsmux", LOG_ERROR, "no proxy running for %s/%s", project,
              service);
    return EXIT_NOT_FOUND;
  }
  if (s.up_file[0] != '\0') {
    log_print("wsmux", LOG_ERROR,
              "%s/%s is served by `wsmux proxy up -f %s` (pid %ld) with its "
              "other services: remove it from that file and run `wsmux "
              "proxy reload -f %s`, or stop them all with `wsmux proxy stop "
              "-f %s`",
              project, service, s.up_file, s.pid, s.up_file, s.up_file);
    return EXIT_REFUSED;
  }
  if ((rc = stop_process(dir, path, &s)) == EXIT_OK)
    printf("stopped %s/%s (pid %ld)\n", s.project, s.service, s.pid);
  return rc;
}

/* --- reload ------------------------------------------------------------ */

/* 1 when the services of pid running up_file are exactly those of f. */
static int serves_exactly(const running_t *r, long pid, const char *up_file,
                          const upfile_t *f) {
  size_t mine = 0;
  for (size_t i = 0; i < r->n; i++) {
    const proxy_status_t *s = &r->ss[i];
    if (s->pid != pid || strcmp(s->up_file, up_file) != 0)
      continue;
    if (upfile_find(f, s->project, s->service) == NULL)
      return 0;
    mine++;
  }
  return mine == f->n;
}

/* Wait, up to RELOAD_TIMEOUT_MS, for pid to serve exactly f: woken by
 * every change in the runtime directory (inotify), no polling. */
static int wait_reloaded(const char *dir, int ino, long pid,
                         const char *up_file, const upfile_t *f) {
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    running_t r;
    if (running_scan(dir, &r) != 0)
      return EXIT_USAGE;
    int ok = serves_exactly(&r, pid, up_file, f);
    if (ok) {
      printf("reloaded %s (pid %ld):", up_file, pid);
      for (size_t i = 0; i < r.n; i++)
        if (r.ss[i].pid == pid)
          printf(" %s/%s", r.ss[i].project, r.ss[i].service);
      printf("\n");
    }
    running_free(&r);
    if (ok)
      return EXIT_OK;
    clock_gettime(CLOCK_MONOTONIC, &t);
    long left = RELOAD_TIMEOUT_MS - ((t.tv_sec - t0.tv_sec) * 1000 +
                                     (t.tv_nsec - t0.tv_nsec) / 1000000);
    struct pollfd p = {.fd = ino, .events = POLLIN};
    int rc = left > 0 ? poll(&p, 1, (int)left) : 0;
    if (rc < 0 && errno == EINTR)
      continue;
    if (rc <= 0) {
      log_print("wsmux", LOG_ERROR,
                "after %d s, `wsmux proxy up -f %s` (pid %ld) does not serve "
                "exactly the services of the file: see its log (`wsmux proxy "
                "list` shows what runs)",
                RELOAD_TIMEOUT_MS / 1000, up_file, pid);
      return EXIT_USAGE;
    }
    char buf[4096];
    while (read(ino, buf, sizeof(buf)) > 0)
      ;
  }
}

static int proxy_reload(int argc, char **argv) {
  const char *file = NULL;
  int help = 0;
  const args_opt_t opts[] = {{"file", &file, NULL}, {"help", NULL, &help}, {0}};
  const cmd_spec_t spec = {.name = "proxy reload",
                           .usage = reload_usage,
                           .opts = opts,
                           .help = &help,
                           .dash_f = "file"};
  int rc = cmd_parse(&spec, argc, argv);
  if (rc >= 0)
    return rc;
  char dir[PATH_MAX], err[1024], abs[PATH_MAX];
  if (rundir_dir(dir, sizeof(dir), err, sizeof(err)) != 0) {
    log_print("wsmux", LOG_ERROR, "%s", err);
    return EXIT_USAGE;
  }
  if (file != NULL && realpath(file, abs) == NULL) {
    log_print("wsmux", LOG_ERROR, "cannot open %s: %s", file, strerror(errno));
    return EXIT_USAGE;
  }
  running_t r;
  if (running_scan(dir, &r) != 0)
    return EXIT_USAGE;
  /* The `proxy up` processes: their first entry each. */
  size_t pick = r.n, ups = 0;
  for (size_t i = 0; i < r.n; i++) {
    const proxy_status_t *s = &r.ss[i];
    int first = s->up_file[0] != '\0';
    for (size_t j = 0; j < i && first; j++)
      first = r.ss[j].pid != s->pid;
    if (!first)
      continue;
    ups++;
    if (file == NULL ? pick == r.n : strcmp(s->up_file, abs) == 0)
      pick = i;
  }
  rc = EXIT_OK;
  if (pick == r.n) {
    if (file)
      log_print("wsmux", LOG_ERROR, "no `wsmux proxy up` running %s", abs);
    else
      log_print("wsmux", LOG_ERROR, "no `wsmux proxy up` is running");
    rc = EXIT_NOT_FOUND;
  } else if (file == NULL && ups > 1) {
    log_print("wsmux", LOG_ERROR,
              "%zu `wsmux proxy up` are running: say which with -f FILE", ups);
    rc = EXIT_USAGE;
  }
  proxy_status_t s = pick < r.n ? r.ss[pick] : (proxy_status_t){0};
  char pid_path[PATH_MAX];
  snprintf(pid_path, sizeof(pid_path), "%s",
           pick < r.n ? r.es[pick].pid_path : "");
  running_free(&r);
  if (rc != EXIT_OK)
    return rc;
  /* Check the file here first: a bad one is refused before anything is
   * sent, and its error shown where the user is. */
  upfile_t f;
  if (upfile_load(s.up_file, &f, err, sizeof(err)) != 0) {
    log_print("wsmux", LOG_ERROR, "%s; nothing was changed", err);
    return EXIT_USAGE;
  }
  int ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (ino < 0 || inotify_add_watch(ino, dir,
                                   IN_CREATE | IN_DELETE | IN_MODIFY |
                                       IN_CLOSE_WRITE | IN_MOVED_TO) < 0) {
    log_print("wsmux", LOG_ERROR, "cannot watch %s: %s", dir, strerror(errno));
    rc = EXIT_USAGE;
  } else {
    int fd;
    rc = signal_holder(dir, pid_path, &s, SIGHUP, &fd);
    if (fd >= 0)
      close(fd);
    if (rc == 0) {
      log_print("wsmux", LOG_ERROR, "`wsmux proxy up -f %s` (pid %ld) exited",
                s.up_file, s.pid);
      rc = EXIT_NOT_FOUND;
    } else if (rc < 0) {
      rc = EXIT_USAGE;
    } else {
      rc = wait_reloaded(dir, ino, s.pid, s.up_file, &f);
    }
  }
  if (ino >= 0)
    close(ino);
  upfile_free(&f);
  return rc;
}

int cmd_proxy_list(int argc, char **argv) {
  return proxy_list(argc, argv);
}
int cmd_proxy_stop(int argc, char **argv) {
  return proxy_stop(argc, argv);
}
int cmd_proxy_reload(int argc, char **argv) {
  return proxy_reload(argc, argv);
}
