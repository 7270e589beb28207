#include "cli/proxy_app.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "cli/exitcode.h"
#include "proxy/listener.h"
#include "proxy/relay.h"
#include "ws/frame.h"
#include "ws/session.h"

/* How long a stop waits for the WebSocket close handshake. */
#define SHUTDOWN_GRACE_MS 2000
#define SSH_ARGV_FIXED 12

typedef struct {
  const proxy_opts_t *o;
  uv_loop_t *loop;
  log_t log;
  transport_t *transport;
  transport_conn_t *conn;
  relay_t *relay;
  listener_t *listener;
  uv_signal_t sigint;
  uv_signal_t sigterm;
  uv_timer_t stop_timer; /* runs teardown outside lws callbacks */
  uv_process_t child;    /* PROXY_MODE_SSH */
  int child_running;
  transport_handlers_t handlers;
  relay_hooks_t hooks;
  int stopping;
  int exit_code;
} proxy_t;

/* --- stopping ---------------------------------------------------------- */

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

/* Stop taking connections, tell the edge, close the WebSocket cleanly;
 * local connections are closed when the relay goes. */
static void proxy_stop_gracefully(proxy_t *p, int exit_code) {
  if (p->stopping)
    return;
  listener_close(p->listener);
  p->listener = NULL;
  if (p->relay != NULL && p->conn != NULL) {
    session_goaway(relay_session(p->relay), FRAME_CODE_SHUTDOWN,
                   "client shutting down");
    transport_conn_close(p->conn, TRANSPORT_CLOSE_NORMAL,
                         "client shutting down");
    proxy_stop_after(p, exit_code, SHUTDOWN_GRACE_MS);
  } else {
    proxy_stop(p, exit_code);
  }
}

/* --- modes ------------------------------------------------------------- */

static void print_banner(const proxy_t *p) {
  const char *a = listener_addr(p->listener), *u = p->o->user;
  int port = listener_port(p->listener);
  printf("SSH proxy started on endpoint: %s:%d, stop with Ctrl+C\n"
         "Use with any SSH compatible client. Example usages:\n"
         "> SSH session: ssh %s@%s -p %d\n"
         "> SFTP: sftp -P %d %s@%s\n"
         "> RSYNC: rsync -avz -e \"ssh -p %d\" ./data/ %s@%s:/rsync-test/\n"
         "> SCP: scp -P %d file.txt %s@%s:/remote/path/\n",
         a, port, u, a, port, port, u, a, port, u, a, port, u, a);
  fflush(stdout);
}

static void on_child_exit(uv_process_t *h, int64_t status, int signum) {
  proxy_t *p = h->data;
  p->child_running = 0;
  uv_close((uv_handle_t *)h, NULL);
  /* ssh's own convention: 255 for its errors, 128+n after a signal. */
  int code = signum ? 128 + signum : (int)status;
  proxy_stop_gracefully(p, code);
}

static int spawn_ssh(proxy_t *p) {
  const proxy_opts_t *o = p->o;
  char port[8], alias[300];
  snprintf(port, sizeof(port), "%d", listener_port(p->listener));
  snprintf(alias, sizeof(alias), "HostKeyAlias=%s", o->host_key_alias);
  char **argv =
      calloc(SSH_ARGV_FIXED + (size_t)o->nssh_args + 1, sizeof(*argv));
  if (argv == NULL)
    return UV_ENOMEM;
  int n = 0;
  argv[n++] = "ssh";
  argv[n++] = "-p";
  argv[n++] = port;
  argv[n++] = "-o";
  argv[n++] = alias;
  argv[n++] = "-l";
  argv[n++] = (char *)o->user;
  argv[n++] = (char *)listener_addr(p->listener);
  for (int i = 0; i < o->nssh_args; i++)
    argv[n++] = o->ssh_args[i];
  uv_stdio_container_t stdio[3];
  for (int i = 0; i < 3; i++) {
    stdio[i].flags = UV_INHERIT_FD;
    stdio[i].data.fd = i;
  }
  uv_process_options_t po = {.exit_cb = on_child_exit,
                             .file = "ssh",
                             .args = argv,
                             .stdio_count = 3,
                             .stdio = stdio};
  p->child.data = p;
  int rc = uv_spawn(p->loop, &p->child, &po);
  free(argv);
  if (rc == 0)
    p->child_running = 1;
  return rc;
}

static void on_accept(void *ctx, uv_stream_t *server) {
  proxy_t *p = ctx;
  if (p->relay == NULL || relay_stream_open(p->relay, server, NULL) == NULL)
    log_msg(&p->log, LOG_WARN, "cannot open a stream: connection refused");
}

static int start_mode(proxy_t *p) {
  char err[256];
  switch (p->o->mode) {
  case PROXY_MODE_STDIO:
    if (relay_stream_open_stdio(p->relay, 0, 1, NULL, err, sizeof(err)) ==
        NULL) {
      log_msg(&p->log, LOG_ERROR, "%s", err);
      return -1;
    }
    return 0;
  case PROXY_MODE_SSH:
    if (listener_start(p->listener, on_accept, p) != 0)
      return -1;
    int rc = spawn_ssh(p);
    if (rc != 0)
      log_msg(&p->log, LOG_ERROR, "cannot run ssh: %s", uv_strerror(rc));
    return rc == 0 ? 0 : -1;
  default:
    if (listener_start(p->listener, on_accept, p) != 0)
      return -1;
    print_banner(p);
    return 0;
  }
}

/* --- relay hooks ------------------------------------------------------- */

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
  /* --stdio carries exactly one stream: its end is the program's end. */
  if (p->o->mode == PROXY_MODE_STDIO)
    proxy_stop_gracefully(p,
                          code == FRAME_CODE_NO_ERROR ? EXIT_OK : EXIT_NETWORK);
}

/* --- transport handlers ------------------------------------------------ */

static int on_open(void *ctx, transport_conn_t *c) {
  proxy_t *p = ctx;
  session_config_t cfg = {.role = SESSION_ROLE_CLIENT,
                          .window = p->o->window,
                          .max_streams = UINT32_MAX};
  p->relay = relay_new(p->loop, c, &cfg, &p->hooks, p, &p->log);
  if (p->relay == NULL || start_mode(p) != 0) {
    log_msg(&p->log, LOG_ERROR, "cannot start the local side");
    return -1;
  }
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
  if (p->child_running) {
    /* The terminal already sent ^C to ssh, our child, which decides what it
     * means; a SIGTERM meant for us is passed on. */
    if (signum == SIGTERM)
      uv_process_kill(&p->child, SIGTERM);
    return;
  }
  log_msg(&p->log, LOG_INFO, "stopping");
  proxy_stop_gracefully(p, EXIT_OK);
}

/* --- run --------------------------------------------------------------- */

static int proxy_start(proxy_t *p) {
  const proxy_opts_t *o = p->o;
  char err[512];
  if (o->mode != PROXY_MODE_STDIO &&
      listener_bind(p->loop, o->addr, o->port, o->port ? o->port_tries : 0,
                    &p->listener, err, sizeof(err)) != 0) {
    log_msg(&p->log, LOG_ERROR, "%s", err);
    return EXIT_USAGE;
  }
  if (o->edge.insecure)
    log_msg(&p->log, LOG_WARN,
            "--insecure: the edge's certificate is NOT verified; anyone on "
            "the path can read and change this session");
  p->transport = transport_client_new(p->loop, &o->edge, &p->handlers, p, err,
                                      sizeof(err));
  if (p->transport != NULL)
    p->conn = transport_client_connect(p->transport, NULL, err, sizeof(err));
  if (p->conn == NULL) {
    log_msg(&p->log, LOG_ERROR, "%s", err);
    return EXIT_NETWORK;
  }
  return EXIT_OK;
}

int proxy_app_run(const proxy_opts_t *o) {
  signal(SIGPIPE, SIG_IGN);
  uv_loop_t loop;
  uv_loop_init(&loop);
  proxy_t p = {.o = o, .loop = &loop};
  p.log = (log_t){.prog = "wsmux", .level = o->level};
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
  int rc = proxy_start(&p);
  if (rc != EXIT_OK)
    proxy_stop(&p, rc);
  uv_run(&loop, UV_RUN_DEFAULT);
  transport_destroy(p.transport);
  if (uv_loop_close(&loop) != 0)
    log_msg(&p.log, LOG_DEBUG, "loop not empty at exit");
  return p.exit_code;
}
