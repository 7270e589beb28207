/* `wsmux ssh service` and `wsmux ssh config` (README: "Connecting"). */
#include "cli/cmd_ssh.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <stdarg.h>
#include <time.h>
#include <pwd.h>
#include <unistd.h>

#include "cli/api.h"
#include "cli/args.h"
#include "cli/exitcode.h"
#include "base/id.h"
#include "base/log.h"
#include "cli/proxy_app.h"
#include "cli/proxy_status.h"
#include "cli/rundir.h"
#include "cli/sshconf.h"
#include "proxy/endpoint.h"
#include "ws/session.h"

static const char usage[] =
    "usage: wsmux ssh service --projectId P --serviceId S\n"
    "                         [--proxyOnly [--detach] | --stdio] [--user U]\n"
    "                         [--edge URL] [--token T] [--ca FILE]\n"
    "                         [--insecure] [--address A] [--port N]\n"
    "                         [--window BYTES] [--log-level LEVEL] [--quiet]\n"
    "                         [--http-proxy URL | --http-proxy-file FILE]\n"
    "                         [-- SSH-ARGS...]\n"
    "\n"
    "Reaches the sshd of service S in project P through one authenticated\n"
    "WebSocket to the edge.\n"
    "\n"
    "  (default)       run ssh through it and return ssh's exit status;\n"
    "                  arguments after -- go to ssh (e.g. a remote command)\n"
    "  --proxyOnly     serve a local endpoint for any SSH client and print\n"
    "                  ready-made ssh/sftp/rsync/scp commands; one proxy\n"
    "                  per service (a second start shows the running one)\n"
    "  --detach        with --proxyOnly: run it in the background once it is\n"
    "                  up (log in $XDG_RUNTIME_DIR/wsmux/, see `wsmux proxy`)\n"
    "  --stdio         carry one connection over stdin/stdout, for ssh's\n"
    "                  ProxyCommand (editors: see `wsmux ssh config`)\n"
    "  --user U        login user (default root)\n"
    "  --edge URL      wss://host[:port] of the edge (default: $WSMUX_EDGE,\n"
    "                  then the context stored by `wsmux login`)\n"
    "  --token T       API token (default: $WSMUX_TOKEN, then the stored\n"
    "                  context); never printed\n"
    "  --ca FILE       also trust this CA certificate (PEM; default:\n"
    "                  $WSMUX_CA, then the stored context)\n"
    "  --insecure      do not verify the edge's certificate (tests only)\n"
    "  --http-proxy URL  reach the edge through this HTTP proxy (CONNECT):\n"
    "                  http://[USER:PASSWORD@]HOST[:PORT], '' for none\n"
    "                  (default: $HTTPS_PROXY, $ALL_PROXY; $NO_PROXY applies)\n"
    "  --http-proxy-file FILE  the proxy URL from the first line of FILE (a\n"
    "                  password there stays out of ps)\n"
    "  --address A     loopback address to listen on (default: derived from\n"
    "                  project and service, stable across runs)\n"
    "  --port N        port to listen on (default: derived; 0 = any)\n"
    "  --window BYTES  per-stream receive window (default 131072)\n"
    "  --dead-timeout MS  a link silent this long (despite PINGs) is dead\n"
    "                  and is reconnected (default 15000)\n"
    "  --log-level L   error, warn (default; info with --detach), info or\n"
    "                  debug\n"
    "  --quiet         no live status line on the terminal, no info logs\n"
    "\n"
    "Without --projectId/--serviceId on a terminal, you pick them from a\n"
    "list.\n";

static const char config_usage[] =
    "usage: wsmux ssh config --projectId P --serviceId S [--user U]\n"
    "                        [--edge URL] [--ca FILE]\n"
    "       wsmux ssh config --install --projectId P [--serviceId S]\n"
    "                        [--user U] [--edge URL] [--ca FILE]\n"
    "                        [--token T] [--insecure]\n"
    "       wsmux ssh config --uninstall [--projectId P [--serviceId S]]\n"
    "\n"
    "Prints Host blocks for ~/.ssh/config (VS Code / Cursor Remote-SSH):\n"
    "  wsmux-P-S        connects through `wsmux ssh service --stdio` (no\n"
    "                   proxy needs to be running)\n"
    "  wsmux-P-S-proxy  connects to the endpoint of a running --proxyOnly\n"
    "Both share one HostKeyAlias, so the host key is trusted once.\n"
    "\n"
    "  --install    write the blocks of service S, or of every service of\n"
    "               project P with SSH enabled (asked of the edge), into\n"
    "               ~/.ssh/wsmux.conf, replacing what was there for them,\n"
    "               and add one line, Include ~/.ssh/wsmux.conf, at the top\n"
    "               of ~/.ssh/config (once; nothing else in it changes)\n"
    "  --uninstall  remove the blocks of S, of P, or (neither given) all;\n"
    "               with none left, remove the file and the Include line\n";

#define MAX_REST 64

typedef struct {
  const char *project, *service, *user, *edge, *token, *address, *port;
  const char *ca, *window, *level, *dead, *http_proxy, *http_proxy_file;
  int proxy_only, stdio, insecure, help, detach, quiet, install, uninstall;
  char *rest[MAX_REST];
  int nrest, dashdash;
} ssh_opts_t;

static int parse_opts(int argc, char **argv, ssh_opts_t *o) {
  args_opt_t opts[] = {{"projectId", &o->project, NULL},
                       {"serviceId", &o->service, NULL},
                       {"user", &o->user, NULL},
                       {"edge", &o->edge, NULL},
                       {"token", &o->token, NULL},
                       {"address", &o->address, NULL},
                       {"port", &o->port, NULL},
                       {"ca", &o->ca, NULL},
                       {"window", &o->window, NULL},
                       {"log-level", &o->level, NULL},
                       {"dead-timeout", &o->dead, NULL},
                       {"http-proxy", &o->http_proxy, NULL},
                       {"http-proxy-file", &o->http_proxy_file, NULL},
                       {"proxyOnly", NULL, &o->proxy_only},
                       {"stdio", NULL, &o->stdio},
                       {"insecure", NULL, &o->insecure},
                       {"detach", NULL, &o->detach},
                       {"quiet", NULL, &o->quiet},
                       {"install", NULL, &o->install},
                       {"uninstall", NULL, &o->uninstall},
                       {"help", NULL, &o->help},
                       {0}};
  char err[256];
  if (args_parse(argc, argv, opts, o->rest, MAX_REST, &o->nrest, &o->dashdash,
                 err, sizeof(err))) {
    log_print("wsmux", LOG_ERROR, "%s", err);
    return -1;
  }
  if (o->nrest > 0 && o->dashdash != 0 && strcmp(o->rest[0], "-h") == 0) {
    o->help = 1;
  } else if (o->nrest > 0 && o->dashdash != 0) {
    log_print("wsmux", LOG_ERROR,
              "unexpected argument '%s' (arguments for ssh go after --)",
              o->rest[0]);
    return -1;
  }
  return 0;
}

/* Numbers and ids; 0 or an exit code after printing why. */
static int check_values(const ssh_opts_t *o, proxy_opts_t *po) {
  if (!id_valid(o->project) || !id_valid(o->service)) {
    log_print("wsmux", LOG_ERROR, "ids are 1-128 characters of [A-Za-z0-9._-]");
    return EXIT_USAGE;
  }
  long v = SESSION_WINDOW_DEFAULT, port = -1, dead = 15000;
  if (o->dead && args_parse_long(o->dead, 1000, 300000, &dead) != 0) {
    log_print("wsmux", LOG_ERROR, "--dead-timeout must be 1000..300000 ms");
    return EXIT_USAGE;
  }
  /* Three PINGs fit in the timeout before a quiet link is declared dead. */
  po->dead_ms = (uint32_t)dead;
  po->ping_ms = (uint32_t)dead / 3;
  if (o->window && args_parse_long(o->window, SESSION_WINDOW_MIN,
                                   SESSION_WINDOW_MAX, &v) != 0) {
    log_print("wsmux", LOG_ERROR, "--window must be %u..%u bytes",
              SESSION_WINDOW_MIN, SESSION_WINDOW_MAX);
    return EXIT_USAGE;
  }
  if (o->port && args_parse_long(o->port, 0, 65535, &port) != 0) {
    log_print("wsmux", LOG_ERROR, "--port must be 0..65535");
    return EXIT_USAGE;
  }
  int lvl = log_level_parse(o->level ? o->level : "warn");
  if (lvl < 0) {
    log_print("wsmux", LOG_ERROR, "unknown --log-level '%s'", o->level);
    return EXIT_USAGE;
  }
  po->window = (uint32_t)v;
  po->level = (log_level_t)lvl;
  po->port = (int)port; /* -1: derived */
  return EXIT_OK;
}

static void host_alias(const char *project, const char *service, char *out,
                       size_t len) {
  snprintf(out, len, "wsmux-%s-%s", project, service);
}

/* --- --proxyOnly: one proxy per service, maybe in the background ------- */

/* A message for the user: through the parent of a background proxy still
 * starting, else on stderr. */
#if defined(__GNUC__)
#define TELL_FORMAT __attribute__((format(printf, 3, 4)))
#else
#define TELL_FORMAT
#endif
static void tell(detach_t *d, log_level_t level, const char *fmt,
                 ...) TELL_FORMAT;
static void tell(detach_t *d, log_level_t level, const char *fmt, ...) {
  char text[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof(text), fmt, ap);
  va_end(ap);
  if (detach_pending(d))
    detach_err(d, level, text);
  else
    log_print("wsmux", level, "%s", text);
}

/* A proxy runs already: show it instead of starting another. */
static int report_running(const proxy_opts_t *po, const char *held,
                          detach_t *d) {
  proxy_status_t st;
  if (proxy_status_parse(held, &st) != 0) {
    tell(d, LOG_ERROR, "another wsmux holds the pidfile of %s/%s", po->project,
         po->service);
    return EXIT_REFUSED;
  }
  /* Different ids can share a file name ("a.b"+"c" and "a"+"b.c"). */
  if (strcmp(st.project, po->project) != 0 ||
      strcmp(st.service, po->service) != 0) {
    tell(d, LOG_ERROR,
         "the runtime files of %s/%s are used by the proxy for %s/%s (pid "
         "%ld)",
         po->project, po->service, st.project, st.service, st.pid);
    return EXIT_REFUSED;
  }
  tell(d, LOG_INFO, "A proxy for %s/%s is already running (pid %ld)",
       po->project, po->service, st.pid);
  char *colon = strrchr(st.endpoint, ':');
  if (colon == NULL)
    return EXIT_OK; /* still binding its endpoint */
  *colon = '\0';
  char text[2048];
  proxy_app_banner(NULL, st.endpoint, atoi(colon + 1), po->user, "", text,
                   sizeof(text));
  size_t n = strlen(text);
  if (st.up_file[0] != '\0') {
    if (snprintf(text + n, sizeof(text) - n,
                 "It is served by `wsmux proxy up -f %s`: remove it from that "
                 "file and run `wsmux proxy reload -f %s` to stop it\n",
                 st.up_file, st.up_file) < 0)
      text[n] = '\0'; /* a cut hint is harmless */
  } else {
    snprintf(text + n, sizeof(text) - n,
             "Stop it with: wsmux proxy stop --projectId %s --serviceId %s\n",
             po->project, po->service);
  }
  if (detach_pending(d)) {
    detach_out(d, text);
  } else {
    fputs(text, stdout);
    fflush(stdout);
  }
  return EXIT_OK;
}

/* Take the service's pidfile and run the proxy, or show the one running. */
static int run_with_pidfile(const char *dir, proxy_opts_t *po, detach_t *d) {
  proxy_status_t st = {.pid = (long)getpid(), .started_at = po->started_at};
  snprintf(st.project, sizeof(st.project), "%s", po->project);
  snprintf(st.service, sizeof(st.service), "%s", po->service);
  char *text = proxy_status_pidfile_text(&st);
  char held[RUNDIR_CONTENT_MAX], err[512] = "out of memory";
  rundir_lock_t lk;
  int rc = text != NULL
               ? rundir_acquire(dir, po->project, po->service, text, &lk, held,
                                sizeof(held), err, sizeof(err))
               : -1;
  free(text);
  if (rc == RUNDIR_HELD)
    return report_running(po, held, d);
  if (rc != 0) {
    tell(d, LOG_ERROR, "%s", err);
    return EXIT_USAGE;
  }
  po->pidfile = &lk;
  rc = proxy_app_run(po);
  rundir_release(&lk);
  return rc;
}

static int run_listen(const ssh_opts_t *o, proxy_opts_t *po) {
  char dir[PATH_MAX], err[512], log_path[PATH_MAX], ca[PATH_MAX];
  po->project = o->project;
  po->service = o->service;
  po->started_at = (int64_t)time(NULL);
  po->status_line = !o->quiet && !o->detach && isatty(2);
  if (rundir_dir(dir, sizeof(dir), err, sizeof(err)) != 0) {
    if (o->detach) {
      log_print("wsmux", LOG_ERROR, "%s", err);
      return EXIT_USAGE;
    }
    log_print("wsmux", LOG_WARN,
              "%s: this proxy runs without a pidfile (no `wsmux proxy "
              "list`, no check for a running one)",
              err);
    return proxy_app_run(po);
  }
  detach_t d = {.fd = -1};
  if (o->detach) {
    if (rundir_path(log_path, sizeof(log_path), dir, o->project, o->service,
                    "log") != 0) {
      log_print("wsmux", LOG_ERROR, "runtime file name too long");
      return EXIT_USAGE;
    }
    /* The background proxy runs in "/": relative paths would break. */
    if (po->edge.ca_file != NULL && realpath(po->edge.ca_file, ca) != NULL)
      po->edge.ca_file = ca;
    int is_child = 0;
    int rc = detach_start(log_path, &d, &is_child);
    if (rc < 0)
      return EXIT_USAGE;
    if (!is_child)
      return rc;
    po->detach = &d;
    po->log_path = log_path;
    if (o->level == NULL && !o->quiet)
      po->level = LOG_INFO;
    log_msg(&(log_t){.prog = "wsmux", .level = LOG_INFO, .timestamps = 1},
            LOG_INFO,
            "starting the proxy for %s/%s in the background (pid "
            "%ld)",
            o->project, o->service, (long)getpid());
  }
  int rc = run_with_pidfile(dir, po, &d);
  detach_fail(&d, rc); /* not ready: the parent exits with rc */
  return rc;
}

int cmd_ssh_service(int argc, char **argv) {
  ssh_opts_t o = {0};
  if (parse_opts(argc, argv, &o) != 0)
    return EXIT_USAGE;
  if (o.help) {
    fputs(usage, stdout);
    return EXIT_OK;
  }
  if (o.proxy_only && o.stdio) {
    log_print("wsmux", LOG_ERROR, "--proxyOnly and --stdio exclude each other");
    return EXIT_USAGE;
  }
  if (o.detach && !o.proxy_only) {
    log_print("wsmux", LOG_ERROR, "--detach only goes with --proxyOnly");
    return EXIT_USAGE;
  }
  if (o.install || o.uninstall) {
    log_print("wsmux", LOG_ERROR,
              "--install and --uninstall go with `wsmux ssh config`");
    return EXIT_USAGE;
  }
  cli_target_t target;
  cli_context_flags_t flags = {o.edge,     o.token,      o.ca,
                               o.insecure, o.http_proxy, o.http_proxy_file};
  int rc =
      cmd_ssh_resolve_target(o.project, o.service, &flags, !o.stdio, &target);
  if (rc != EXIT_OK)
    return rc;
  o.project = target.project;
  o.service = target.service;
  proxy_opts_t po = {0};
  if ((rc = check_values(&o, &po)) != EXIT_OK) {
    cmd_ssh_target_free(&target);
    return rc;
  }
  endpoint_t ep;
  endpoint_derive(o.project, o.service, &ep);
  char path[400], alias[300];
  snprintf(path, sizeof(path), "/v1/projects/%s/services/%s/ssh", o.project,
           o.service);
  host_alias(o.project, o.service, alias, sizeof(alias));
  po.mode = o.proxy_only ? PROXY_MODE_LISTEN
            : o.stdio    ? PROXY_MODE_STDIO
                         : PROXY_MODE_SSH;
  po.edge = target.edge;
  po.edge.path = path;
  po.addr = o.address ? o.address : ep.addr;
  /* A direct session's port is private to it: any free one will do, the
   * HostKeyAlias keeps known_hosts stable. */
  po.port = po.port >= 0 ? po.port : po.mode == PROXY_MODE_SSH ? 0 : ep.port;
  po.port_tries = ENDPOINT_PORT_TRIES;
  po.user = o.user ? o.user : "root";
  po.host_key_alias = alias;
  if (o.dashdash >= 0) {
    po.ssh_args = o.rest + o.dashdash;
    po.nssh_args = o.nrest - o.dashdash;
  }
  if (po.nssh_args > 0 && po.mode != PROXY_MODE_SSH) {
    log_print("wsmux", LOG_ERROR,
              "arguments after -- are for ssh, which only runs without "
              "--proxyOnly/--stdio");
    cmd_ssh_target_free(&target);
    return EXIT_USAGE;
  }
  if (o.quiet && po.level > LOG_WARN)
    po.level = LOG_WARN;
  rc = po.mode == PROXY_MODE_LISTEN ? run_listen(&o, &po) : proxy_app_run(&po);
  cmd_ssh_target_free(&target);
  return rc;
}

/* The running program's own path, so the ProxyCommand finds it. */
static void self_path(char *out, size_t len) {
  ssize_t n = readlink("/proc/self/exe", out, len - 1);
  if (n <= 0)
    snprintf(out, len, "wsmux");
  else
    out[n] = '\0';
}

/* The blocks of one service, as `ssh config` prints or installs them. */
static char *config_blocks(const ssh_opts_t *o, const char *service,
                           int paste) {
  endpoint_t ep;
  endpoint_derive(o->project, service, &ep);
  char self[1024], ca[PATH_MAX];
  self_path(self, sizeof(self));
  sshconf_host_t h = {.project = o->project,
                      .service = service,
                      .user = o->user ? o->user : "root",
                      .self = self,
                      .edge = o->edge,
                      .ca = o->ca ? realpath(o->ca, ca) ? ca : o->ca : NULL,
                      .addr = ep.addr,
                      .port = ep.port};
  return sshconf_blocks(&h, paste);
}

/* The services of project with SSH enabled, from the edge: their ids
 * into *ids (free each and the array), *n of them. An exit code. */
static int ssh_services(const ssh_opts_t *o, char ***ids, size_t *n) {
  cli_context_t ctx;
  cli_context_flags_t flags = {o->edge,     o->token,      o->ca,
                               o->insecure, o->http_proxy, o->http_proxy_file};
  *ids = NULL;
  *n = 0;
  int rc = cli_context_resolve_flags(&flags, &ctx);
  if (rc != 0)
    return rc;
  char path[300];
  cJSON *doc = NULL;
  snprintf(path, sizeof(path), "/v1/projects/%s/services", o->project);
  rc = api_call(&ctx, "GET", path, NULL, &doc);
  cli_context_free(&ctx);
  if (rc != EXIT_OK)
    return rc;
  const cJSON *arr = cJSON_GetObjectItemCaseSensitive(doc, "services");
  const cJSON *it;
  *ids = calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(**ids));
  if (*ids == NULL || !cJSON_IsArray(arr)) {
    log_print("wsmux", LOG_ERROR, "unexpected answer from the edge to GET %s",
              path);
    cJSON_Delete(doc);
    free(*ids);
    *ids = NULL;
    return EXIT_NETWORK;
  }
  cJSON_ArrayForEach(it, arr) {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(it, "kind");
    const cJSON *ssh = cJSON_GetObjectItemCaseSensitive(it, "sshEnabled");
    if (cJSON_IsString(id) && id_valid(id->valuestring) && cJSON_IsTrue(ssh) &&
        !(cJSON_IsString(kind) && strcmp(kind->valuestring, "job") == 0) &&
        ((*ids)[*n] = strdup(id->valuestring)) != NULL)
      (*n)++;
  }
  cJSON_Delete(doc);
  return EXIT_OK;
}

/* `ssh config --install` / `--uninstall` (cli/sshconf.h). */
static int config_install(const ssh_opts_t *o) {
  if (o->install && o->project == NULL) {
    log_print("wsmux", LOG_ERROR, "--install needs --projectId");
    return EXIT_USAGE;
  }
  if (o->service != NULL && o->project == NULL) {
    log_print("wsmux", LOG_ERROR, "--serviceId goes with --projectId");
    return EXIT_USAGE;
  }
  if ((o->project && !id_valid(o->project)) ||
      (o->service && !id_valid(o->service))) {
    log_print("wsmux", LOG_ERROR, "ids are 1-128 characters of [A-Za-z0-9._-]");
    return EXIT_USAGE;
  }
  const char *home = getenv("HOME");
  if (home == NULL || home[0] != '/') {
    log_print("wsmux", LOG_ERROR, "HOME is not set to an absolute path");
    return EXIT_USAGE;
  }
  struct passwd *pw = getpwuid(getuid());
  sshconf_paths_t paths;
  if (sshconf_paths(home, pw ? pw->pw_dir : NULL, &paths) != 0) {
    log_print("wsmux", LOG_ERROR, "out of memory");
    return EXIT_USAGE;
  }
  char **ids = NULL, *one[1] = {(char *)o->service};
  size_t n = 0;
  int rc = EXIT_OK;
  if (o->install && o->service == NULL)
    rc = ssh_services(o, &ids, &n);
  char **list = ids ? ids : one;
  if (o->install && o->service != NULL)
    n = 1;
  char **bodies = calloc(n + 1, sizeof(*bodies));
  for (size_t i = 0; rc == EXIT_OK && i < n; i++)
    if (bodies == NULL || (bodies[i] = config_blocks(o, list[i], 0)) == NULL) {
      log_print("wsmux", LOG_ERROR, "out of memory");
      rc = EXIT_USAGE;
    }
  sshconf_result_t res;
  char err[1024];
  if (rc == EXIT_OK &&
      sshconf_apply(&paths, o->project, o->service, (const char *const *)list,
                    (const char *const *)bodies, n, o->uninstall, &res, err,
                    sizeof(err)) != 0) {
    log_print("wsmux", LOG_ERROR, "%s", err);
    rc = EXIT_USAGE;
  }
  if (rc == EXIT_OK && o->install) {
    for (size_t i = 0; i < n; i++)
      printf("Host wsmux-%s-%s, wsmux-%s-%s-proxy: service %s of project %s\n",
             o->project, list[i], o->project, list[i], list[i], o->project);
    if (n == 0)
      log_print("wsmux", LOG_WARN,
                "project %s has no service with SSH enabled: nothing to "
                "install%s",
                o->project,
                res.removed ? " (its old blocks were removed)" : "");
    printf("%s: %s\n", paths.conf,
           res.conf_removed   ? "removed (no block left)"
           : res.conf_changed ? "written"
                              : "unchanged");
    printf("%s: %s\n", paths.config,
           res.include_added            ? "added \"Include\" at the top"
           : res.include_removed        ? "removed \"Include\""
           : n > 0 || !res.conf_removed ? "already includes it"
                                        : "unchanged");
  } else if (rc == EXIT_OK) {
    if (res.removed == 0)
      log_print("wsmux", LOG_INFO, "nothing of %s%s%s is installed",
                o->project ? o->project : "wsmux", o->service ? "/" : "",
                o->service ? o->service : "");
    printf("%s: %s\n", paths.conf,
           res.conf_removed   ? "removed (no block left)"
           : res.conf_changed ? "written"
                              : "unchanged");
    printf("%s: %s\n", paths.config,
           res.include_removed ? "removed \"Include\"" : "unchanged");
  }
  for (size_t i = 0; ids && i < n; i++)
    free(ids[i]);
  for (size_t i = 0; bodies && i < n; i++)
    free(bodies[i]);
  free(ids);
  free(bodies);
  sshconf_paths_free(&paths);
  return rc;
}

int cmd_ssh_config(int argc, char **argv) {
  ssh_opts_t o = {0};
  if (parse_opts(argc, argv, &o) != 0)
    return EXIT_USAGE;
  if (o.help) {
    fputs(config_usage, stdout);
    return EXIT_OK;
  }
  if (o.install && o.uninstall) {
    log_print("wsmux", LOG_ERROR,
              "--install and --uninstall exclude each other");
    return EXIT_USAGE;
  }
  if (o.install || o.uninstall)
    return config_install(&o);
  const char *missing = !o.project   ? "--projectId"
                        : !o.service ? "--serviceId"
                                     : NULL;
  if (missing != NULL) {
    log_print("wsmux", LOG_ERROR, "%s is required", missing);
    return EXIT_USAGE;
  }
  if (!id_valid(o.project) || !id_valid(o.service)) {
    log_print("wsmux", LOG_ERROR, "ids are 1-128 characters of [A-Za-z0-9._-]");
    return EXIT_USAGE;
  }
  char *text = config_blocks(&o, o.service, 1);
  if (text == NULL) {
    log_print("wsmux", LOG_ERROR, "out of memory");
    return EXIT_USAGE;
  }
  fputs(text, stdout);
  free(text);
  return EXIT_OK;
}
