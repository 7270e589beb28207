/* wsmux-edge: the platform side of wsmux (docs/EDGE_CONFIG.md). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "cli/args.h"
#include "base/log.h"
#include "base/rlimit.h"
#include "edge/edge.h"
#include "edge/identity.h"
#include "edge/metrics_server.h"
#include "edge/platform.h"
#include "edge/state.h"
#include "edge/store.h"
#include "edge/store_pg_cli.h"

enum { EXIT_OK = 0, EXIT_ERROR = 1 };

static const char usage[] =
    "usage: wsmux-edge --config FILE [--log-level error|warn|info|debug]\n"
    "       wsmux-edge authorized-keys --config FILE --service S "
    "[--project P]\n"
    "       wsmux-edge migrate --config FILE [--from-file STATE.json]\n"
    "\n"
    "Serves wsmux WebSockets (docs/PROTOCOL.md) and relays each SSH stream\n"
    "to the upstream of its service, as configured in FILE\n"
    "(docs/EDGE_CONFIG.md); serves the admin API (docs/ADMIN_API.md) on the\n"
    "same listener. SIGINT/SIGTERM stop it.\n"
    "\n"
    "authorized-keys prints the authorized_keys lines of every SSH identity\n"
    "matching service S (in project P; without --project, S must be unique\n"
    "across projects), for sshd's AuthorizedKeysCommand.\n"
    "\n"
    "migrate brings the PostgreSQL schema of the config's store to this\n"
    "version (safe to repeat, and to run from two edges at once); with\n"
    "--from-file it then imports a state file into it, once.\n";

/* ---- authorized-keys ---------------------------------------------------- */

/* Service S of project P, or - without P - the only service with id S. */
static const platform_service_t *find_service(const platform_t *p,
                                              const char *project,
                                              const char *service, char *err,
                                              size_t errlen) {
  const platform_service_t *found = NULL;
  size_t n = 0, o = 0;

  if (project != NULL) {
    found = platform_find_service(p, project, service);
    if (found == NULL)
      snprintf(err, errlen, "service %s not found in project %s", service,
               project);
    return found;
  }
  for (size_t i = 0; i < p->nservices; i++)
    if (strcmp(p->services[i].id, service) == 0) {
      found = &p->services[i];
      n++;
    }
  if (n == 1)
    return found;
  if (n == 0) {
    snprintf(err, errlen, "service %s not found in any project", service);
    return NULL;
  }
  o = (size_t)snprintf(err, errlen,
                       "service %s is ambiguous, pass --project: it exists in "
                       "projects",
                       service);
  for (size_t i = 0; i < p->nservices && o < errlen; i++)
    if (strcmp(p->services[i].id, service) == 0)
      o += (size_t)snprintf(err + o, errlen - o, " %s",
                            p->services[i].project_id);
  return NULL;
}

static int keys_print(const platform_service_t *svc, const state_t *st) {
  size_t len = 0;
  char *text =
      identity_authorized_keys(st->identities, st->nidentities, svc->project_id,
                               svc->tags, svc->ntags, &len);
  int ok;

  if (text == NULL) {
    log_print("wsmux-edge", LOG_ERROR, "out of memory");
    return EXIT_ERROR;
  }
  ok = fwrite(text, 1, len, stdout) == len && fflush(stdout) == 0;
  free(text);
  if (!ok) {
    log_print("wsmux-edge", LOG_ERROR, "cannot write the keys to stdout");
    return EXIT_ERROR;
  }
  return EXIT_OK;
}

/* Parse the options of a subcommand, which takes no other words. -1 to go
 * on, with *extra set when words were left over; else the exit code, the
 * usage printed (on stdout for --help / -h, after the error on stderr). */
static int parse_subcommand(int argc, char **argv, args_opt_t *opts,
                            const int *help, int *extra) {
  char *rest[4], err[1024];
  int nrest, dd;

  if (args_parse(argc, argv, opts, rest, 4, &nrest, &dd, err, sizeof(err)) !=
      0) {
    log_print("wsmux-edge", LOG_ERROR, "%s", err);
    fputs(usage, stderr);
    return EXIT_ERROR;
  }
  /* -h like every other command (the parser takes it for an argument). */
  if (*help || (nrest == 1 && dd < 0 && strcmp(rest[0], "-h") == 0)) {
    fputs(usage, stdout);
    return EXIT_OK;
  }
  *extra = nrest > 0;
  return -1;
}

/* Run by sshd for every login attempt: read-only, prints only keys on
 * stdout (anything else would be taken for a key line), and errors on
 * stderr with exit 1, which sshd treats as "no keys". */
static int cmd_authorized_keys(int argc, char **argv) {
  const char *config = NULL, *service = NULL, *project = NULL;
  int help = 0, extra, rc;
  char err[1024];
  args_opt_t opts[] = {{"config", &config, NULL},
                       {"service", &service, NULL},
                       {"project", &project, NULL},
                       {"help", NULL, &help},
                       {0}};
  platform_t *platform;
  state_t *state;
  const platform_service_t *svc;

  if ((rc = parse_subcommand(argc, argv, opts, &help, &extra)) >= 0)
    return rc;
  if (config == NULL || service == NULL || extra) {
    log_print("wsmux-edge", LOG_ERROR, "%s",
              config == NULL    ? "--config is required"
              : service == NULL ? "--service is required"
                                : "unexpected argument");
    fputs(usage, stderr);
    return EXIT_ERROR;
  }
  if (platform_load(config, &platform, err, sizeof(err)) != 0) {
    log_print("wsmux-edge", LOG_ERROR, "%s", err);
    return EXIT_ERROR;
  }
  svc = find_service(platform, project, service, err, sizeof(err));
  if (svc == NULL) {
    log_print("wsmux-edge", LOG_ERROR, "%s", err);
    platform_free(platform);
    return EXIT_ERROR;
  }
  /* One short query with the postgres store (sshd waits for this); while
   * the database is away, its last answer for maxStaleMs. */
  long stale = 0;
  if ((platform->store_dsn != NULL
           ? store_pg_load_cached(
                 platform->store_dsn, platform->store_connect_timeout_ms,
                 platform->state_file, platform->store_max_stale_ms, &state,
                 &stale, err, sizeof(err))
           : state_load(platform->state_file, &state, err, sizeof(err))) != 0) {
    log_print("wsmux-edge", LOG_ERROR, "%s", err);
    platform_free(platform);
    return EXIT_ERROR;
  }
  if (stale > 0)
    log_print("wsmux-edge", LOG_WARN,
              "%s: the keys are from the cached state of %ld s ago", err,
              stale / 1000);
  rc = keys_print(svc, state);
  state_free(state);
  platform_free(platform);
  return rc;
}

/* ---- migrate ------------------------------------------------------------ */

/* The audit log's "who" of an import: no API token made it. */
#define IMPORT_ACTOR "wsmux-edge migrate"

static int cmd_migrate(int argc, char **argv) {
  const char *config = NULL, *from_file = NULL;
  int help = 0, extra, from, to, rc;
  char err[1024];
  args_opt_t opts[] = {{"config", &config, NULL},
                       {"from-file", &from_file, NULL},
                       {"help", NULL, &help},
                       {0}};
  platform_t *platform;
  state_t *state = NULL;

  if ((rc = parse_subcommand(argc, argv, opts, &help, &extra)) >= 0)
    return rc;
  if (config == NULL || extra) {
    log_print("wsmux-edge", LOG_ERROR, "%s",
              config == NULL ? "--config is required" : "unexpected argument");
    fputs(usage, stderr);
    return EXIT_ERROR;
  }
  if (platform_load(config, &platform, err, sizeof(err)) != 0) {
    log_print("wsmux-edge", LOG_ERROR, "%s", err);
    return EXIT_ERROR;
  }
  if (platform->store_dsn == NULL) {
    log_print("wsmux-edge", LOG_ERROR,
              "%s has no \"store\": {\"postgres\": ...}: the file store "
              "needs no migration",
              config);
    platform_free(platform);
    return EXIT_ERROR;
  }
  /* The file first: a bad one is refused before the database is touched. A
   * missing one is an error here, not an empty state. */
  if (from_file != NULL &&
      (access(from_file, F_OK) != 0
           ? (snprintf(err, sizeof(err), "cannot open %s: %s", from_file,
                       strerror(errno)),
              -1)
           : state_load(from_file, &state, err, sizeof(err))) != 0) {
    log_print("wsmux-edge", LOG_ERROR, "%s", err);
    platform_free(platform);
    return EXIT_ERROR;
  }
  rc = EXIT_ERROR;
  unsigned timeout =
      platform->store_connect_timeout_ms + platform->store_query_timeout_ms;
  if (store_pg_migrate(platform->store_dsn, timeout, &from, &to, err,
                       sizeof(err)) != 0) {
    log_print("wsmux-edge", LOG_ERROR, "migrate: %s", err);
  } else {
    if (from == to)
      printf("schema: at version %d already, nothing to do\n", to);
    else
      printf("schema: migrated from version %d to %d\n", from, to);
    rc = EXIT_OK;
  }
  if (rc == EXIT_OK && state != NULL) {
    if (store_pg_import(platform->store_dsn, timeout, state, from_file,
                        IMPORT_ACTOR, err, sizeof(err)) != 0) {
      log_print("wsmux-edge", LOG_ERROR, "import: %s", err);
      rc = EXIT_ERROR;
    } else {
      printf("imported %zu SSH identities and %zu SSH switches from %s\n",
             state->nidentities, state->nssh, from_file);
    }
  }
  state_free(state);
  platform_free(platform);
  return rc;
}

/* ---- the edge ----------------------------------------------------------- */

typedef struct {
  uv_signal_t sigint;
  uv_signal_t sigterm;
  edge_t *edge;
  store_t *store;
  int started;               /* the postgres store's first outcome came */
  char start_error[1024];    /* and was this failure ("": none) */
  metrics_server_t *metrics; /* NULL without metricsListen */
  const log_t *log;
} app_t;

static void metrics_snapshot(void *ctx, metrics_t *out) {
  app_t *app = ctx;
  edge_metrics(app->edge, out);
}

/* The edge has stopped serving: so do its metrics (scrapes go on while it
 * drains), and uv_run can return. */
static void on_edge_halt(void *ctx) {
  app_t *app = ctx;
  metrics_server_close(app->metrics);
  app->metrics = NULL;
  /* Admin requests waiting for a write are answered now, while the edge
   * and its transport still exist. */
  store_close(app->store);
  app->store = NULL;
}

static void on_store_started(void *ctx, const char *err) {
  app_t *app = ctx;
  app->started = 1;
  if (err != NULL)
    snprintf(app->start_error, sizeof(app->start_error), "%s", err);
}

/* The store of the config: the state file, or PostgreSQL (connected and
 * read before anything is served). NULL after printing why. */
static store_t *store_start(uv_loop_t *loop, const platform_t *platform,
                            app_t *app, const log_t *log) {
  char err[1024];
  store_config_t cfg = {.state_file = platform->state_file,
                        .audit_file = platform->audit_file,
                        .dsn = platform->store_dsn,
                        .max_stale_ms = platform->store_max_stale_ms,
                        .connect_timeout_ms =
                            platform->store_connect_timeout_ms,
                        .query_timeout_ms = platform->store_query_timeout_ms};
  store_t *s;
  if (platform->store_dsn == NULL) {
    /* A state file that does not parse is refused, not replaced: starting
     * empty would drop every identity at the next write. */
    s = store_open_file(loop, &cfg, NULL, log, err, sizeof(err));
    if (s == NULL) {
      log_print("wsmux-edge", LOG_ERROR, "%s", err);
      return NULL;
    }
    log_msg(log, LOG_INFO, "state: %zu SSH identities, %zu SSH switches (%s)",
            store_view(s)->nidentities, store_view(s)->nssh,
            platform->state_file);
    return s;
  }
  s = store_open_postgres(loop, &cfg, NULL, log, on_store_started, app, err,
                          sizeof(err));
  if (s == NULL) {
    log_print("wsmux-edge", LOG_ERROR, "%s", err);
    uv_run(loop, UV_RUN_DEFAULT); /* release what it started */
    return NULL;
  }
  while (!app->started && uv_run(loop, UV_RUN_ONCE) != 0)
    ;
  if (app->start_error[0] != '\0') {
    log_print("wsmux-edge", LOG_ERROR, "store: %s", app->start_error);
    store_close(s);
    uv_run(loop, UV_RUN_DEFAULT);
    return NULL;
  }
  log_msg(log, LOG_INFO,
          "state: %zu SSH identities, %zu SSH switches "
          "(PostgreSQL)",
          store_view(s)->nidentities, store_view(s)->nssh);
  return s;
}

/* metricsListen, if set. -1 with a message in err. */
static int metrics_start(uv_loop_t *loop, const platform_t *platform,
                         app_t *app, char *err, size_t errlen) {
  if (platform->metrics_host == NULL)
    return 0;
  metrics_server_opts_t o = {.host = platform->metrics_host,
                             .port = platform->metrics_port,
                             .snapshot = metrics_snapshot,
                             .ctx = app,
                             .log = app->log};
  app->metrics = metrics_server_start(loop, &o, err, errlen);
  return app->metrics != NULL ? 0 : -1;
}

static void on_signal(uv_signal_t *h, int signum) {
  app_t *app = h->data;
  log_msg(app->log, LOG_INFO,
          "signal %d: draining open streams (a second signal stops at once)",
          signum);
  uv_close((uv_handle_t *)&app->sigint, NULL);
  uv_close((uv_handle_t *)&app->sigterm, NULL);
  edge_stop(app->edge);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "authorized-keys") == 0)
    return cmd_authorized_keys(argc - 2, argv + 2);
  if (argc > 1 && strcmp(argv[1], "migrate") == 0)
    return cmd_migrate(argc - 2, argv + 2);
  const char *config = NULL, *level = "info";
  int help = 0, version = 0, nrest, dd;
  char *rest[4], err[1024];
  args_opt_t opts[] = {{"config", &config, NULL},
                       {"log-level", &level, NULL},
                       {"help", NULL, &help},
                       {"version", NULL, &version},
                       {0}};
  if (args_parse(argc - 1, argv + 1, opts, rest, 4, &nrest, &dd, err,
                 sizeof(err)) != 0) {
    log_print("wsmux-edge", LOG_ERROR, "%s", err);
    fputs(usage, stderr);
    return 1;
  }
  if (help || (nrest > 0 && strcmp(rest[0], "-h") == 0)) {
    fputs(usage, stdout);
    return 0;
  }
  if (version) {
    printf("wsmux-edge %s\n", WSMUX_VERSION);
    return 0;
  }
  int lvl = log_level_parse(level);
  if (config == NULL || nrest > 0 || lvl < 0) {
    log_print("wsmux-edge", LOG_ERROR, "%s",
              lvl < 0          ? "unknown --log-level"
              : config == NULL ? "--config is required"
                               : "unexpected argument");
    fputs(usage, stderr);
    return 1;
  }
  log_t log = {.prog = "wsmux-edge", .level = (log_level_t)lvl};

  platform_t *platform;
  if (platform_load(config, &platform, err, sizeof(err)) != 0) {
    log_print("wsmux-edge", LOG_ERROR, "%s", err);
    return 1;
  }
  /* A config from before roles keeps working, but says so. */
  for (size_t i = 0; i < platform->ntokens; i++)
    if (platform->tokens[i].role_default)
      log_msg(&log, LOG_WARN,
              "%s: tokens[%zu] (%s) has no \"role\": it is an admin; give it "
              "\"role\": \"admin\" or \"member\" (docs/EDGE_CONFIG.md)",
              config, i, platform->tokens[i].id);
  signal(SIGPIPE, SIG_IGN);
  log_msg(&log, LOG_INFO, "open files limit: %ld (one per stream)",
          rlimit_raise_nofile());
  uv_loop_t loop;
  uv_loop_init(&loop);
  app_t app = {.log = &log};
  app.store = store_start(&loop, platform, &app, &log);
  if (app.store == NULL) {
    uv_loop_close(&loop);
    platform_free(platform);
    return 1;
  }
  app.edge = edge_start(&loop, platform, app.store, &log, err, sizeof(err));
  if (app.edge == NULL) {
    log_print("wsmux-edge", LOG_ERROR, "%s", err);
    store_close(app.store);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    platform_free(platform);
    return 1;
  }
  edge_on_halt(app.edge, on_edge_halt, &app);
  if (metrics_start(&loop, platform, &app, err, sizeof(err)) != 0) {
    log_print("wsmux-edge", LOG_ERROR, "%s", err);
    edge_stop(app.edge); /* nothing open yet: stops at once */
    uv_run(&loop, UV_RUN_DEFAULT);
    edge_free(app.edge);
    uv_loop_close(&loop);
    platform_free(platform);
    return 1;
  }
  fprintf(stderr, "wsmux-edge: listening on %s://%s:%d\n",
          platform->plain_ws ? "ws" : "wss", platform->listen_host,
          edge_port(app.edge));
  if (app.metrics != NULL) {
    int v6 = strchr(platform->metrics_host, ':') != NULL;
    fprintf(stderr, "wsmux-edge: metrics on http://%s%s%s:%d/metrics\n",
            v6 ? "[" : "", platform->metrics_host, v6 ? "]" : "",
            metrics_server_port(app.metrics));
  }
  uv_signal_init(&loop, &app.sigint);
  uv_signal_init(&loop, &app.sigterm);
  app.sigint.data = app.sigterm.data = &app;
  uv_signal_start(&app.sigint, on_signal, SIGINT);
  uv_signal_start(&app.sigterm, on_signal, SIGTERM);

  uv_run(&loop, UV_RUN_DEFAULT);
  edge_free(app.edge);
  int rc = uv_loop_close(&loop);
  if (rc != 0)
    log_msg(&log, LOG_WARN, "loop not empty at exit: %s", uv_strerror(rc));
  platform_free(platform);
  return 0;
}
