/* `wsmux proxy list | stop` (cli/cmd_proxy.h). */
#include "cli/cmd_proxy.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/exitcode.h"
#include "base/log.h"
#include "cli/proxy_status.h"
#include "cli/rundir.h"
#include "cli/status_line.h"

/* How long a proxy's control socket has to answer. */
#define QUERY_TIMEOUT_MS 1000
/* How long `stop` waits for a proxy to exit after SIGTERM. */
#define STOP_TIMEOUT_MS 10000

static const char usage[] =
    "usage: wsmux proxy <command>\n"
    "\n"
    "commands:\n"
    "  list   the proxies (`wsmux ssh service --proxyOnly`) running here\n"
    "  stop   stop one of them, or all\n"
    "\n"
    "  wsmux proxy <command> --help   options of a command\n";

static const char list_usage[] =
    "usage: wsmux proxy list [--output table|json]\n"
    "\n"
    "Lists the proxies of this user running on this machine, in the\n"
    "background (--detach) or not: PROJECT, SERVICE, ENDPOINT, PID, UPTIME,\n"
    "STREAMS (open), UP and DOWN (bytes to and from the edge) and LINK\n"
    "(connected or reconnecting). Files of proxies that died are removed.\n"
    "\n"
    "  --output F      table (default) or json (an array of status objects)\n";

static const char stop_usage[] =
    "usage: wsmux proxy stop (--projectId P --serviceId S | --all)\n"
    "\n"
    "Stops the proxy of service S of project P (or every proxy) like Ctrl+C\n"
    "would: no new connections, a clean close to the edge, open connections\n"
    "closed. Waits up to 10 s for each to exit. Exit 3 when no proxy runs\n"
    "for S.\n";

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

/* SIGTERM the proxy of pid_path and wait for it to exit. */
static int stop_one(const char *dir, const char *pid_path,
                    const proxy_status_t *s) {
  /* Hold the process first, then check it still owns the pidfile: the
   * signal can then only reach that proxy, never a reused pid. */
  int fd = pidfd_open_((pid_t)s->pid);
  char content[RUNDIR_CONTENT_MAX];
  proxy_status_t now;
  int held =
      fd >= 0 ? rundir_read_held(dir, pid_path, content, sizeof(content)) : 0;
  if (fd < 0 && errno != ESRCH) {
    log_print("wsmux", LOG_ERROR, "cannot watch pid %ld: %s", s->pid,
              strerror(errno));
    return EXIT_USAGE;
  }
  if (held != 1 || proxy_status_parse(content, &now) != 0 ||
      now.pid != s->pid) {
    if (fd >= 0)
      close(fd);
    /* It went away by itself meanwhile. */
    printf("stopped %s/%s (pid %ld)\n", s->project, s->service, s->pid);
    return EXIT_OK;
  }
  if (pidfd_signal(fd, SIGTERM) != 0 && errno != ESRCH) {
    log_print("wsmux", LOG_ERROR, "cannot stop pid %ld: %s", s->pid,
              strerror(errno));
    close(fd);
    return EXIT_USAGE;
  }
  /* A pidfd becomes readable when its process has exited. */
  struct pollfd p = {.fd = fd, .events = POLLIN};
  int rc;
  while ((rc = poll(&p, 1, STOP_TIMEOUT_MS)) < 0 && errno == EINTR)
    ;
  close(fd);
  if (rc <= 0) {
    log_print("wsmux", LOG_ERROR,
              "the proxy for %s/%s (pid %ld) did not stop within %d s",
              s->project, s->service, s->pid, STOP_TIMEOUT_MS / 1000);
    return EXIT_USAGE;
  }
  printf("stopped %s/%s (pid %ld)\n", s->project, s->service, s->pid);
  fflush(stdout);
  return EXIT_OK;
}

static int stop_all(const char *dir) {
  rundir_entry_t *es = NULL;
  size_t n = 0, stale = 0;
  char err[512];
  if (rundir_scan(dir, &es, &n, &stale, err, sizeof(err)) != 0) {
    log_print("wsmux", LOG_ERROR, "%s", err);
    return EXIT_USAGE;
  }
  int rc = EXIT_OK;
  for (size_t i = 0; i < n; i++) {
    proxy_status_t s;
    if (proxy_status_parse(es[i].content, &s) != 0)
      continue;
    int one = stop_one(dir, es[i].pid_path, &s);
    rc = rc != EXIT_OK ? rc : one;
  }
  if (n == 0)
    log_print("wsmux", LOG_INFO, "no proxies running");
  free(es);
  return rc;
}

static int proxy_stop(int argc, char **argv) {
  const char *project = NULL, *service = NULL;
  int all = 0, help = 0;
  const args_opt_t opts[] = {{"projectId", &project, NULL},
                             {"serviceId", &service, NULL},
                             {"all", NULL, &all},
                             {"help", NULL, &help},
                             {0}};
  const cmd_spec_t spec = {
      .name = "proxy stop", .usage = stop_usage, .opts = opts, .help = &help};
  int rc = cmd_parse(&spec, argc, argv);
  if (rc >= 0)
    return rc;
  if (all && (project || service)) {
    log_print("wsmux", LOG_ERROR,
              "--all stops every proxy: give it without --projectId and "
              "--serviceId");
    return EXIT_USAGE;
  }
  if (!all && (!project || !service)) {
    log_print("wsmux", LOG_ERROR, "%s is required (or --all)",
              project ? "--serviceId" : "--projectId");
    return EXIT_USAGE;
  }
  if (!all && ((rc = cmd_id_check("--projectId", project)) != 0 ||
               (rc = cmd_id_check("--serviceId", service)) != 0))
    return rc;
  char dir[PATH_MAX], err[512], path[PATH_MAX];
  if (rundir_dir(dir, sizeof(dir), err, sizeof(err)) != 0) {
    log_print("wsmux", LOG_ERROR, "%s", err);
    return EXIT_USAGE;
  }
  if (all)
    return stop_all(dir);
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
  return stop_one(dir, path, &s);
}

int cmd_proxy(int argc, char **argv) {
  static const cmd_sub_t subs[] = {
      {"list", proxy_list}, {"stop", proxy_stop}, {0}};
  return cmd_dispatch(usage, subs, argc, argv);
}
