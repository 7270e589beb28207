/* wsmux-edge: the platform side of wsmux (docs/EDGE_CONFIG.md). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cli/args.h"
#include "cli/log.h"
#include "proxy/edge.h"
#include "proxy/platform.h"

static const char usage[] =
    "usage: wsmux-edge --config FILE [--log-level error|warn|info|debug]\n"
    "\n"
    "Serves wsmux WebSockets (docs/PROTOCOL.md) and relays each SSH stream\n"
    "to the upstream of its service, as configured in FILE\n"
    "(docs/EDGE_CONFIG.md). SIGINT/SIGTERM stop it.\n";

typedef struct {
  uv_signal_t sigint;
  uv_signal_t sigterm;
  edge_t *edge;
  const log_t *log;
} app_t;

static void on_signal(uv_signal_t *h, int signum) {
  app_t *app = h->data;
  log_msg(app->log, LOG_INFO, "signal %d: stopping", signum);
  uv_close((uv_handle_t *)&app->sigint, NULL);
  uv_close((uv_handle_t *)&app->sigterm, NULL);
  edge_stop(app->edge);
}

int main(int argc, char **argv) {
  const char *config = NULL, *level = "info";
  int help = 0, version = 0, nrest, dd;
  char *rest[4], err[512];
  args_opt_t opts[] = {{"config", &config, NULL},
                       {"log-level", &level, NULL},
                       {"help", NULL, &help},
                       {"version", NULL, &version},
                       {0}};
  if (args_parse(argc - 1, argv + 1, opts, rest, 4, &nrest, &dd, err,
                 sizeof(err)) != 0) {
    fprintf(stderr, "wsmux-edge: error: %s\n%s", err, usage);
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
    fprintf(stderr, "wsmux-edge: error: %s\n%s",
            lvl < 0          ? "unknown --log-level"
            : config == NULL ? "--config is required"
                             : "unexpected argument",
            usage);
    return 1;
  }
  log_t log = {.prog = "wsmux-edge", .level = (log_level_t)lvl};

  platform_t *platform;
  if (platform_load(config, &platform, err, sizeof(err)) != 0) {
    fprintf(stderr, "wsmux-edge: error: %s\n", err);
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  uv_loop_t loop;
  uv_loop_init(&loop);
  app_t app = {.log = &log};
  app.edge = edge_start(&loop, platform, &log, err, sizeof(err));
  if (app.edge == NULL) {
    fprintf(stderr, "wsmux-edge: error: %s\n", err);
    uv_loop_close(&loop);
    platform_free(platform);
    return 1;
  }
  fprintf(stderr, "wsmux-edge: listening on %s://%s:%d\n",
          platform->plain_ws ? "ws" : "wss", platform->listen_host,
          edge_port(app.edge));
  uv_signal_init(&loop, &app.sigint);
  uv_signal_init(&loop, &app.sigterm);
  app.sigint.data = app.sigterm.data = &app;
  uv_signal_start(&app.sigint, on_signal, SIGINT);
  uv_signal_start(&app.sigterm, on_signal, SIGTERM);

  uv_run(&loop, UV_RUN_DEFAULT);
  edge_destroy(app.edge);
  int rc = uv_loop_close(&loop);
  if (rc != 0)
    log_msg(&log, LOG_WARN, "loop not empty at exit: %s", uv_strerror(rc));
  platform_free(platform);
  return 0;
}
