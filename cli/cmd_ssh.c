/* `wsmux ssh service`: the local proxy (docs/PROTOCOL.md, README). */
#include "cli/cmd_ssh.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cli/args.h"
#include "cli/exitcode.h"
#include "cli/log.h"
#include "proxy/endpoint.h"
#include "proxy/listener.h"
#include "proxy/relay.h"
#include "ws/frame.h"
#include "ws/session.h"
#include "ws/transport_lws.h"

static const char usage[] =
    "usage: wsmux ssh service --projectId P --serviceId S --proxyOnly\n"
    "                         [--user U] [--edge URL] [--token T]\n"
    "                         [--address A] [--port N] [--ca FILE]\n"
    "                         [--insecure] [--window BYTES]\n"
    "                         [--log-level error|warn|info|debug]\n"
    "\n"
    "Starts a local SSH proxy for service S of project P: every TCP\n"
    "connection to the printed endpoint is carried to the service's sshd\n"
    "over one authenticated WebSocket to the edge.\n"
    "\n"
    "  --edge URL      wss://host[:port] of the edge (or $WSMUX_EDGE)\n"
    "  --token T       API token (or $WSMUX_TOKEN); never printed\n"
    "  --user U        user shown in the example commands (default root)\n"
    "  --address A     loopback address to listen on (default: derived from\n"
    "                  project and service, stable across runs)\n"
    "  --port N        port to listen on (default: derived; 0 = any)\n"
    "  --ca FILE       also trust this CA certificate (PEM)\n"
    "  --insecure      do not verify the edge's certificate (tests only)\n"
    "  --window BYTES  per-stream receive window (default 262144)\n";

/* How long Ctrl+C waits for the WebSocket close handshake. */
#define SHUTDOWN_GRACE_MS 2000

typedef struct {
  uv_loop_t *loop;
  log_t log;
  const char *user;
  const char *addr;
  int port;
  uint32_t window;
  transport_t *transport;
  transport_conn_t *conn;
  relay_t *relay;
  listener_t *listener;
  uv_signal_t sigint;
  uv_signal_t sigterm;
  uv_timer_t stop_timer; /* runs teardown outside lws callbacks */
  transport_handlers_t handlers;
  relay_hooks_t hooks;
  int stopping;
  int exit_code;
} proxy_t;

static int valid_id(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 128)
    return 0;
  return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                   "0123456789._-") == n;
}

static void print_banner(const proxy_t *p) {
  const char *a = listener_addr(p->listener);
  int port = listener_port(p->listener);
  printf("SSH proxy started on endpoint: %s:%d, stop with Ctrl+C\n"
         "Use with any SSH compatible client. Example usages:\n"
         "> SSH session: ssh %s@%s -p %d\n"
         "> SFTP: sftp -P %d %s@%s\n"
         "> RSYNC: rsync -avz -e \"ssh -p %d\" ./data/ %s@%s:/rsync-test/\n"
         "> SCP: scp -P %d file.txt %s@%s:/remote/path/\n",
         a, port, p->user, a, port, port, p->user, a, port, p->user, a, port,
         p->user, a);
  fflush(stdout);
}

static void on_stop_timer(uv_timer_t *t) {
  proxy_t *p = t->data;
  if (uv_is_closing((uv_handle_t *)&p->stop_timer))
    return;
  uv_close((uv_handle_t *)&p->stop_timer, NULL);
  if (!uv_is_closing((uv_handle_t *)&p->sigint)) {
    uv_close((uv_handle_t *)&p->sigint, NULL);
    uv_close((uv_handle_t *)&p->sigterm, NULL);
  }
  listener_close(p->listener);
  p->listener = NULL;
  transport_free(p->transport); /* transport_destroy() follows uv_run */
}

/* Tear down from a safe place (a timer, not an lws callback), after
 * delay_ms: a graceful stop gives the close handshake that long. */
static void proxy_stop_after(proxy_t *p, int exit_code, uint64_t delay_ms) {
  if (!p->stopping)
    p->exit_code = exit_code;
  p->stopping = 1;
  if (!uv_is_closing((uv_handle_t *)&p->stop_timer))
    uv_timer_start(&p->stop_timer, on_stop_timer, delay_ms, 0);
}

static void proxy_stop(proxy_t *p, int exit_code) {
  proxy_stop_after(p, exit_code, 0);
}

static void on_accept(void *ctx, uv_stream_t *server) {
  proxy_t *p = ctx;
  if (p->relay == NULL || relay_stream_open(p->relay, server, NULL) == NULL)
    log_msg(&p->log, LOG_WARN, "cannot open a stream: connection refused");
}

static void on_open_failed(void *ctx, relay_stream_t *rs, uint16_t code,
                           const char *reason, size_t len) {
  proxy_t *p = ctx;
  log_msg(&p->log, LOG_ERROR, "stream %u: open failed: %s: %.*s",
          relay_stream_id(rs), frame_code_name(code), (int)len, reason);
}

static void on_finished(void *ctx, relay_stream_t *rs, uint16_t code,
                        const char *reason, const relay_stats_t *st) {
  proxy_t *p = ctx;
  log_msg(&p->log, LOG_DEBUG, "stream %u closed: sent=%llu received=%llu %s %s",
          relay_stream_id(rs), (unsigned long long)st->bytes_read,
          (unsigned long long)st->bytes_written, frame_code_name(code),
          reason ? reason : "");
}

static int on_open(void *ctx, transport_conn_t *c) {
  proxy_t *p = ctx;
  session_config_t cfg = {.role = SESSION_ROLE_CLIENT,
                          .window = p->window,
                          .max_streams = UINT32_MAX};
  p->relay = relay_new(p->loop, c, &cfg, &p->hooks, p, &p->log);
  if (p->relay == NULL || listener_start(p->listener, on_accept, p) != 0) {
    log_msg(&p->log, LOG_ERROR, "cannot start the local listener");
    return -1;
  }
  print_banner(p);
  return 0;
}

static int on_rx(void *ctx, transport_conn_t *c, const uint8_t *data,
                 size_t len, int eom, char *msg, size_t msglen) {
  proxy_t *p = ctx;
  int rc = relay_on_rx(p->relay, data, len, eom, msg, msglen);
  if (rc != 0)
    log_msg(&p->log, LOG_ERROR, "protocol error from the edge: %s", msg);
  return rc;
}

static size_t on_writable(void *ctx, transport_conn_t *c, uint8_t *buf,
                          size_t cap) {
  proxy_t *p = ctx;
  return p->relay ? relay_on_writable(p->relay, buf, cap) : 0;
}

static int http_exit_code(int status) {
  switch (status) {
  case 401:
  case 403:
    return EXIT_AUTH;
  case 404:
    return EXIT_NOT_FOUND;
  case 409:
    return EXIT_REFUSED;
  default:
    return EXIT_NETWORK;
  }
}

static void report_close(proxy_t *p, const transport_close_t *why) {
  if (why->kind == TRANSPORT_END_HTTP) {
    log_msg(&p->log, LOG_ERROR, "%s (HTTP %d)", why->message, why->http_status);
    proxy_stop(p, http_exit_code(why->http_status));
  } else if (!why->was_open) {
    log_msg(&p->log, LOG_ERROR, "cannot connect to the edge: %s", why->message);
    proxy_stop(p, EXIT_NETWORK);
  } else {
    log_msg(&p->log, LOG_ERROR, "connection to the edge lost: %s",
            why->message[0] ? why->message : "closed");
    proxy_stop(p, EXIT_NETWORK);
  }
}

static void on_close(void *ctx, transport_conn_t *c,
                     const transport_close_t *why) {
  proxy_t *p = ctx;
  p->conn = NULL;
  if (p->relay != NULL) {
    relay_free(p->relay, "connection to the edge closed");
    p->relay = NULL;
  }
  if (p->stopping)
    proxy_stop(p, p->exit_code); /* the close handshake finished */
  else
    report_close(p, why);
}

static void on_signal(uv_signal_t *h, int signum) {
  proxy_t *p = h->data;
  if (p->stopping)
    return;
  log_msg(&p->log, LOG_INFO, "stopping");
  /* Stop taking connections, tell the edge, close the WebSocket cleanly;
   * local connections are closed when the relay goes. */
  listener_close(p->listener);
  p->listener = NULL;
  if (p->relay != NULL && p->conn != NULL) {
    session_goaway(relay_session(p->relay), FRAME_CODE_SHUTDOWN,
                   "client shutting down");
    transport_conn_close(p->conn, TRANSPORT_CLOSE_NORMAL,
                         "client shutting down");
    proxy_stop_after(p, EXIT_OK, SHUTDOWN_GRACE_MS);
  } else {
    proxy_stop(p, EXIT_OK);
  }
}

typedef struct {
  const char *project, *service, *user, *edge, *token, *address, *port;
  const char *ca, *window, *level;
  int proxy_only, insecure, help;
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
                       {"proxyOnly", NULL, &o->proxy_only},
                       {"insecure", NULL, &o->insecure},
                       {"help", NULL, &o->help},
                       {0}};
  char *rest[8], err[256];
  int nrest, dd;
  if (args_parse(argc, argv, opts, rest, 8, &nrest, &dd, err, sizeof(err))) {
    fprintf(stderr, "wsmux: error: %s\n", err);
    return -1;
  }
  if (nrest == 1 && strcmp(rest[0], "-h") == 0)
    o->help = 1;
  else if (nrest > 0) {
    fprintf(stderr, "wsmux: error: unexpected argument '%s'\n", rest[0]);
    return -1;
  }
  return 0;
}

/* Check options and fill p; returns 0 or an exit code. */
static int configure(const ssh_opts_t *o, proxy_t *p, endpoint_t *ep,
                     transport_client_opts_t *to, char *path, size_t pathlen) {
  const char *missing = !o->project      ? "--projectId"
                        : !o->service    ? "--serviceId"
                        : !o->proxy_only ? "--proxyOnly"
                                         : NULL;
  if (missing != NULL) {
    fprintf(stderr, "wsmux: error: %s is required\n%s", missing,
            !o->proxy_only && o->project && o->service
                ? "(direct sessions without --proxyOnly are not available "
                  "yet; run the proxy and use the printed ssh command)\n"
                : "");
    return EXIT_USAGE;
  }
  if (!valid_id(o->project) || !valid_id(o->service)) {
    fprintf(stderr, "wsmux: error: ids are 1-128 characters of "
                    "[A-Za-z0-9._-]\n");
    return EXIT_USAGE;
  }
  to->url = o->edge ? o->edge : getenv("WSMUX_EDGE");
  if (to->url == NULL || *to->url == '\0') {
    fprintf(stderr, "wsmux: error: no edge URL: pass --edge wss://HOST or "
                    "set WSMUX_EDGE\n");
    return EXIT_USAGE;
  }
  to->token = o->token ? o->token : getenv("WSMUX_TOKEN");
  if (to->token == NULL || *to->token == '\0') {
    fprintf(stderr, "wsmux: error: no API token: pass --token or set "
                    "WSMUX_TOKEN\n");
    return EXIT_AUTH;
  }
  long v = SESSION_WINDOW_DEFAULT, port = -1;
  if (o->window && args_parse_long(o->window, SESSION_WINDOW_MIN,
                                   SESSION_WINDOW_MAX, &v) != 0) {
    fprintf(stderr, "wsmux: error: --window must be %u..%u bytes\n",
            SESSION_WINDOW_MIN, SESSION_WINDOW_MAX);
    return EXIT_USAGE;
  }
  if (o->port && args_parse_long(o->port, 0, 65535, &port) != 0) {
    fprintf(stderr, "wsmux: error: --port must be 0..65535\n");
    return EXIT_USAGE;
  }
  int lvl = log_level_parse(o->level ? o->level : "warn");
  if (lvl < 0) {
    fprintf(stderr, "wsmux: error: unknown --log-level '%s'\n", o->level);
    return EXIT_USAGE;
  }
  p->log = (log_t){.prog = "wsmux", .level = (log_level_t)lvl};
  p->window = (uint32_t)v;
  p->user = o->user ? o->user : "root";
  endpoint_derive(o->project, o->service, ep);
  p->addr = o->address ? o->address : ep->addr;
  p->port = port >= 0 ? (int)port : ep->port;
  snprintf(path, pathlen, "/v1/projects/%s/services/%s/ssh", o->project,
           o->service);
  to->path = path;
  to->ca_file = o->ca;
  to->insecure = o->insecure;
  return EXIT_OK;
}

static int run(proxy_t *p, const transport_client_opts_t *to) {
  char err[512];
  int tries = p->port == 0 ? 0 : ENDPOINT_PORT_TRIES;
  if (listener_bind(p->loop, p->addr, p->port, tries, &p->listener, err,
                    sizeof(err)) != 0) {
    log_msg(&p->log, LOG_ERROR, "%s", err);
    proxy_stop(p, EXIT_USAGE);
    uv_run(p->loop, UV_RUN_DEFAULT);
    return p->exit_code;
  }
  if (to->insecure)
    log_msg(&p->log, LOG_WARN,
            "--insecure: the edge's certificate is NOT "
            "verified; anyone on the path can read and "
            "change this session");
  p->transport =
      transport_client_new(p->loop, to, &p->handlers, p, err, sizeof(err));
  if (p->transport != NULL)
    p->conn = transport_client_connect(p->transport, NULL, err, sizeof(err));
  if (p->conn == NULL) {
    log_msg(&p->log, LOG_ERROR, "%s", err);
    proxy_stop(p, EXIT_NETWORK);
  }
  uv_run(p->loop, UV_RUN_DEFAULT);
  transport_destroy(p->transport);
  return p->exit_code;
}

int cmd_ssh_service(int argc, char **argv) {
  ssh_opts_t o = {0};
  if (parse_opts(argc, argv, &o) != 0)
    return EXIT_USAGE;
  if (o.help) {
    fputs(usage, stdout);
    return EXIT_OK;
  }
  proxy_t p = {0};
  endpoint_t ep;
  transport_client_opts_t to = {0};
  char path[400];
  int rc = configure(&o, &p, &ep, &to, path, sizeof(path));
  if (rc != EXIT_OK)
    return rc;
  signal(SIGPIPE, SIG_IGN);
  uv_loop_t loop;
  uv_loop_init(&loop);
  p.loop = &loop;
  p.handlers = (transport_handlers_t){.on_open = on_open,
                                      .on_rx = on_rx,
                                      .on_writable = on_writable,
                                      .on_close = on_close};
  p.hooks =
      (relay_hooks_t){.open_failed = on_open_failed, .finished = on_finished};
  uv_timer_init(&loop, &p.stop_timer);
  p.stop_timer.data = &p;
  uv_signal_init(&loop, &p.sigint);
  uv_signal_init(&loop, &p.sigterm);
  p.sigint.data = p.sigterm.data = &p;
  uv_signal_start(&p.sigint, on_signal, SIGINT);
  uv_signal_start(&p.sigterm, on_signal, SIGTERM);
  rc = run(&p, &to);
  if (uv_loop_close(&loop) != 0)
    log_msg(&p.log, LOG_DEBUG, "loop not empty at exit");
  return rc;
}
