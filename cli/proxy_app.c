#include "cli/proxy_app.h"

#include <assert.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "cli/api.h"
#include "cli/exitcode.h"
#include "cli/proxy_status.h"
#include "base/rlimit.h"
#include "cli/status_line.h"
#include "proxy/listener.h"
#include "proxy/relay.h"
#include "ws/frame.h"
#include "ws/session.h"
#include "ws/wsclient.h"

/* How long a stop waits for the WebSocket close handshake. */
#define SHUTDOWN_GRACE_MS 2000
#define SSH_ARGV_FIXED 12
/* Reconnect backoff: first delay, cap, and +-20% jitter. */
#define BACKOFF_FIRST_MS 250
#define BACKOFF_MAX_MS 8000
/* Without a HELLO yet, how long the edge is assumed to keep a session. */
#define DEFAULT_GRACE_MS 60000
/* RFC 6455 "policy violation": the edge ends the session on purpose. */
#define EDGE_CLOSE_POLICY 1008
/* The live status line is redrawn this often (at most twice a second). */
#define STATUS_TICK_MS 500

struct proxy {
  const proxy_opts_t *o;
  uv_loop_t *loop;
  log_t log;
  char prog[PROXY_STATUS_ID_MAX * 2 + 16]; /* "wsmux[P/S]" */
  const proxy_events_t *ev;
  void *ev_ctx;
  int handles;   /* of ours, not yet closed (timers, child) */
  int conns;     /* WebSockets (or attempts) whose on_close is due */
  int torn_down; /* on_stop_timer ran: handles are closing */
  int done_sent;
  transport_client_t *transport;
  transport_conn_t *conn; /* the current WebSocket (or attempt), or NULL */
  relay_t *relay;         /* the current session; NULL when none */
  relay_t *old;           /* a session finishing on an edge that said GOAWAY */
  transport_conn_t *old_conn;
  uv_timer_t old_check; /* 0 ms: is the old session empty now? */
  listener_t *listener;
  /* Reconnecting (docs/PROTOCOL.md section 8). */
  uv_timer_t retry_timer;
  unsigned attempts;      /* failed attempts since the link was up */
  uint64_t lost_at;       /* uv_now() when the link dropped, 0 when up */
  uint8_t session_id[16]; /* from the edge's HELLO */
  int have_session;
  /* The edge that holds the session (its X-Wsmux-Node), for the balancer
   * to send a resume back there; and the one a resume was sent for. */
  char node[WSCLIENT_NODE_MAX];
  char resume_node[WSCLIENT_NODE_MAX];
  /* Why the streams of a lost session were reset, for one line each. */
  char reset_reason[FRAME_REASON_MAX + 1]; /* as the relay passes it on */
  uint32_t grace_ms; /* how long the edge keeps a dropped session */
  int ever_open;     /* a WebSocket was up once: keep trying */
  uv_timer_t stop_timer; /* runs teardown outside lws callbacks */
  uv_process_t child;    /* PROXY_MODE_SSH */
  int child_running;
  transport_handlers_t handlers;
  relay_hooks_t hooks;
  int stopping;
  int exit_code;
  /* Live status: the control socket and the terminal line. */
  relay_totals_t done; /* of the relays already freed */
  proxy_status_server_t *status_server;
  int line_on;
  status_line_t line;
  uv_timer_t line_timer;
  relay_totals_t line_last; /* at the previous tick */
  uint64_t line_last_ms;
};

/* --- live status ------------------------------------------------------- */

static void totals_add(relay_totals_t *sum, const relay_t *r) {
  if (r == NULL)
    return;
  relay_totals_t t;
  relay_totals(r, &t);
  sum->bytes_up += t.bytes_up;
  sum->bytes_down += t.bytes_down;
  sum->streams_open += t.streams_open;
  sum->streams_total += t.streams_total;
}

/* Close a relay, keeping what it carried in the proxy's totals. */
static void proxy_close_relay(proxy_t *p, relay_t *r, const char *reason) {
  relay_totals_t t = {0};
  totals_add(&t, r);
  p->done.bytes_up += t.bytes_up;
  p->done.bytes_down += t.bytes_down;
  p->done.streams_total += t.streams_total;
  relay_close(r, reason);
}

static void proxy_totals(const proxy_t *p, relay_totals_t *t) {
  *t = p->done;
  t->streams_open = 0;
  totals_add(t, p->relay);
  totals_add(t, p->old);
}

static int proxy_connected(const proxy_t *p) {
  return p->conn != NULL && p->lost_at == 0 && p->relay != NULL &&
         relay_attached(p->relay);
}

/* Whole seconds until the next attempt (rounded up); -1 when an attempt
 * is under way. */
static int proxy_retry_in(const proxy_t *p) {
  if (!uv_is_active((const uv_handle_t *)&p->retry_timer))
    return -1;
  return (int)((uv_timer_get_due_in(&p->retry_timer) + 999) / 1000);
}

static void get_status(void *ctx, proxy_status_t *s) {
  proxy_t *p = ctx;
  relay_totals_t t;
  proxy_totals(p, &t);
  s->pid = (long)getpid();
  snprintf(s->project, sizeof(s->project), "%s", p->o->project);
  snprintf(s->service, sizeof(s->service), "%s", p->o->service);
  snprintf(s->up_file, sizeof(s->up_file), "%s",
           p->o->up_file ? p->o->up_file : "");
  if (p->listener != NULL)
    snprintf(s->endpoint, sizeof(s->endpoint), "%s:%d",
             listener_addr(p->listener), listener_port(p->listener));
  s->started_at = p->o->started_at;
  s->live = 1;
  s->connected = proxy_connected(p);
  int in = proxy_retry_in(p);
  s->reconnect_in_s = s->connected || in < 0 ? 0 : in;
  s->streams = t.streams_open;
  s->streams_total = t.streams_total;
  s->bytes_up = t.bytes_up;
  s->bytes_down = t.bytes_down;
}

static void on_line_tick(uv_timer_t *t) {
  proxy_t *p = t->data;
  relay_totals_t now;
  proxy_totals(p, &now);
  uint64_t ms = uv_now(p->loop), dt = ms - p->line_last_ms;
  status_view_t v = {
      .connected = proxy_connected(p),
      .reconnect_in_s = proxy_retry_in(p),
      .streams = now.streams_open,
      .rate_up = status_rate(p->line_last.bytes_up, now.bytes_up, dt),
      .rate_down = status_rate(p->line_last.bytes_down, now.bytes_down, dt),
      .total_up = now.bytes_up,
      .total_down = now.bytes_down,
  };
  p->line_last = now;
  p->line_last_ms = ms;
  char text[sizeof(p->line.text)];
  status_line_format(&v, text, sizeof(text));
  status_line_show(&p->line, text);
}

static void line_start(proxy_t *p) {
  p->line_on = 1;
  status_line_init(&p->line, stderr);
  proxy_totals(p, &p->line_last);
  p->line_last_ms = uv_now(p->loop);
  uv_timer_start(&p->line_timer, on_line_tick, 0, STATUS_TICK_MS);
}

static void line_stop(proxy_t *p) {
  if (!p->line_on)
    return;
  p->line_on = 0;
  uv_timer_stop(&p->line_timer);
  status_line_clear(&p->line);
}

/* Before every log line: the status line steps aside (it is back at the
 * next tick, with what the line reported already taken into account);
 * before the background proxy is up, what goes wrong is also told to the
 * parent. */
static void on_log_line(void *ctx, log_level_t level, const char *line,
                        int printed) {
  proxy_t *p = ctx;
  if (printed)
    return;
  if (p->line_on)
    status_line_clear(&p->line);
  if (p->o->detach == NULL || level > LOG_WARN)
    return;
  if (p->o->name == NULL) {
    detach_err(p->o->detach, level, line);
    return;
  }
  char named[1024];
  snprintf(named, sizeof(named), "%s: %s", p->o->name, line);
  detach_err(p->o->detach, level, named);
}

/* --- stopping ---------------------------------------------------------- */

/* Done once torn down, with no handle of ours open and no on_close due. */
static void maybe_done(proxy_t *p) {
  if (!p->torn_down || p->handles > 0 || p->conns > 0 || p->done_sent)
    return;
  p->done_sent = 1;
  p->ev->done(p->ev_ctx, p, p->exit_code);
}

static void on_handle_closed(uv_handle_t *h) {
  proxy_t *p = h->data;
  assert(p->handles > 0);
  p->handles--;
  maybe_done(p);
}

static void close_handle(proxy_t *p, void *h) {
  ((uv_handle_t *)h)->data = p;
  uv_close((uv_handle_t *)h, on_handle_closed);
}

static void on_stop_timer(uv_timer_t *t) {
  proxy_t *p = t->data;
  if (p->torn_down)
    return;
  p->torn_down = 1;
  close_handle(p, &p->stop_timer);
  close_handle(p, &p->retry_timer);
  close_handle(p, &p->old_check);
  line_stop(p);
  close_handle(p, &p->line_timer);
  proxy_status_server_close(p->status_server);
  p->status_server = NULL;
  if (p->relay != NULL && p->conn == NULL) {
    proxy_close_relay(p, p->relay, "proxy stopped"); /* detached: no on_close */
    p->relay = NULL;
  }
  listener_close(p->listener);
  p->listener = NULL;
  /* Every connection's on_close follows; then the client can be freed
   * without running the loop (proxy_free). */
  transport_client_close(p->transport);
}

/* Tear down from a safe place (a timer, not an lws callback), after
 * delay_ms: a graceful stop gives the close handshake that long. */
static void proxy_stop_after(proxy_t *p, int exit_code, uint64_t delay_ms) {
  if (!p->stopping)
    p->exit_code = exit_code;
  p->stopping = 1;
  line_stop(p);
  if (!p->torn_down)
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

void proxy_app_banner(const char *name, const char *a, int port, const char *u,
                      const char *tail, char *out, size_t len) {
  char head[PROXY_STATUS_ID_MAX * 2 + 32] = "SSH proxy";
  if (name != NULL)
    snprintf(head, sizeof(head), "SSH proxy for %s", name);
  snprintf(out, len,
           "%s started on endpoint: %s:%d%s\n"
           "Use with any SSH compatible client. Example usages:\n"
           "> SSH session: ssh %s@%s -p %d\n"
           "> SFTP: sftp -P %d %s@%s\n"
           "> RSYNC: rsync -avz -e \"ssh -p %d\" ./data/ %s@%s:/rsync-test/\n"
           "> SCP: scp -P %d file.txt %s@%s:/remote/path/\n",
           head, a, port, tail, u, a, port, port, u, a, port, u, a, port, u, a);
}

/* The endpoint is up: serve the control socket and tell the user, on
 * stdout or through the parent of a background proxy. */
static void announce(proxy_t *p) {
  const proxy_opts_t *o = p->o;
  char text[2048], err[512];
  if (o->pidfile != NULL) {
    p->status_server = proxy_status_serve(p->loop, o->pidfile->sock_path,
                                          get_status, p, err, sizeof(err));
    if (p->status_server == NULL)
      log_msg(&p->log, LOG_WARN,
              "%s: `wsmux proxy list` shows no live figures for it", err);
  }
  if (p->ev->up != NULL) {
    proxy_app_banner(o->name, listener_addr(p->listener),
                     listener_port(p->listener), o->user, "", text,
                     sizeof(text));
    log_msg(&p->log, LOG_INFO, "proxy started on endpoint %s:%d",
            listener_addr(p->listener), listener_port(p->listener));
    p->ev->up(p->ev_ctx, p, text);
    return;
  }
  if (o->detach == NULL) {
    proxy_app_banner(o->name, listener_addr(p->listener),
                     listener_port(p->listener), o->user, ", stop with Ctrl+C",
                     text, sizeof(text));
    fputs(text, stdout);
    fflush(stdout);
    if (o->status_line)
      line_start(p);
    return;
  }
  proxy_app_banner(o->name, listener_addr(p->listener),
                   listener_port(p->listener), o->user, "", text, sizeof(text));
  size_t n = strlen(text);
  snprintf(text + n, sizeof(text) - n,
           "Proxy running in the background (pid %ld), log: %s\n"
           "Stop it with: wsmux proxy stop --projectId %s --serviceId %s\n",
           (long)getpid(), o->log_path, o->project, o->service);
  detach_out(o->detach, text);
  detach_ready(o->detach);
  log_msg(&p->log, LOG_INFO, "proxy started on endpoint %s:%d",
          listener_addr(p->listener), listener_port(p->listener));
}

static void on_child_exit(uv_process_t *h, int64_t status, int signum) {
  proxy_t *p = h->data;
  p->child_running = 0;
  close_handle(p, h);
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
  if (rc == 0) {
    p->child_running = 1;
    p->handles++;
  } else {
    /* A failed spawn still initialized the handle: it must be closed. */
    p->handles++;
    close_handle(p, &p->child);
  }
  return rc;
}

static relay_t *proxy_new_relay(proxy_t *p, transport_conn_t *c);

static void on_accept(void *ctx, uv_stream_t *server) {
  proxy_t *p = ctx;
  /* During an outage the stream waits, queued, for the next WebSocket. */
  if (p->relay == NULL)
    p->relay = proxy_new_relay(p, NULL);
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
    announce(p);
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

static void on_old_check(uv_timer_t *t) {
  proxy_t *p = t->data;
  if (p->old != NULL && p->old_conn != NULL && relay_stream_count(p->old) == 0)
    transport_conn_close(p->old_conn, TRANSPORT_CLOSE_NORMAL,
                         "all streams finished after GOAWAY");
}

static void on_finished(void *ctx, relay_stream_t *rs, uint16_t code,
                        const char *reason, const relay_stats_t *st) {
  proxy_t *p = ctx;
  /* A connection the session's loss ended: the user hears of each. */
  if (code != FRAME_CODE_NO_ERROR && reason != NULL &&
      p->reset_reason[0] != '\0' && strcmp(reason, p->reset_reason) == 0)
    log_msg(&p->log, LOG_WARN, "stream %u reset: %s", relay_stream_id(rs),
            reason);
  log_msg(&p->log, LOG_DEBUG, "stream %u closed: sent=%llu received=%llu %s %s",
          relay_stream_id(rs), (unsigned long long)st->bytes_read,
          (unsigned long long)st->bytes_written, frame_code_name(code),
          reason ? reason : "");
  /* The session on a draining edge closes once its last stream is gone;
   * this one still counts until the hook returns, so look again later. */
  if (p->old != NULL)
    uv_timer_start(&p->old_check, on_old_check, 0, 0);
  /* --stdio carries exactly one stream: its end is the program's end. */
  if (p->o->mode == PROXY_MODE_STDIO)
    proxy_stop_gracefully(p,
                          code == FRAME_CODE_NO_ERROR ? EXIT_OK : EXIT_NETWORK);
}

/* --- transport handlers ------------------------------------------------ */

static void on_hello(void *ctx, const uint8_t *id, int resumed,
                     uint32_t grace_ms) {
  proxy_t *p = ctx;
  int had = p->have_session;
  memcpy(p->session_id, id, sizeof(p->session_id));
  p->have_session = 1;
  p->grace_ms = grace_ms;
  if (had && p->lost_at != 0 && !resumed) {
    /* Say why: the balancer could not bring us back to the edge that held
     * the session (it is gone), or that edge let it expire. */
    if (p->resume_node[0] != '\0' && strcmp(p->resume_node, p->node) != 0)
      snprintf(p->reset_reason, sizeof(p->reset_reason),
               "the session was on edge %s, which is gone or out of "
               "reach (now connected to edge %s)",
               p->resume_node, p->node[0] ? p->node : "(unnamed)");
    else
      snprintf(p->reset_reason, sizeof(p->reset_reason),
               "the edge no longer had the session (it keeps one %u ms "
               "after a drop)",
               p->grace_ms);
    relay_set_restart_reason(p->relay, p->reset_reason);
    log_msg(&p->log, LOG_WARN,
            "reconnected to the edge: %s: open connections are reset, new "
            "ones work",
            p->reset_reason);
  } else if (had && p->lost_at != 0) {
    log_msg(&p->log, LOG_WARN,
            "reconnected to the edge: session resumed, open connections "
            "continue");
  }
  p->lost_at = 0;
  p->attempts = 0;
}

static void on_dead(void *ctx) {
  proxy_t *p = ctx;
  log_msg(&p->log, LOG_WARN, "no answer from the edge: the link is dead");
  if (p->conn != NULL)
    transport_conn_abort(p->conn);
}

static void proxy_connect(proxy_t *p);

static void on_goaway(void *ctx, uint16_t code, const char *reason,
                      size_t len) {
  proxy_t *p = ctx;
  if (p->stopping || p->old != NULL || p->relay == NULL)
    return;
  log_msg(&p->log, LOG_WARN,
          "the edge is going away (%.*s): new connections use a new "
          "WebSocket, open ones finish on the old one",
          (int)len, reason);
  p->old = p->relay;
  p->old_conn = p->conn;
  p->relay = NULL;
  p->conn = NULL;
  p->have_session = 0;
  if (relay_stream_count(p->old) == 0)
    transport_conn_close(p->old_conn, TRANSPORT_CLOSE_NORMAL, "GOAWAY");
  proxy_connect(p);
}

static relay_t *proxy_new_relay(proxy_t *p, transport_conn_t *c) {
  session_config_t cfg = {.role = SESSION_ROLE_CLIENT,
                          .window = p->o->window,
                          .max_streams = UINT32_MAX};
  relay_t *r = relay_new(p->loop, c, &cfg, &p->hooks, p, &p->log);
  if (r != NULL)
    relay_set_liveness(r, p->o->ping_ms, p->o->dead_ms);
  return r;
}

static int on_open(void *ctx, transport_conn_t *c) {
  proxy_t *p = ctx;
  int first = !p->ever_open;
  p->ever_open = 1;
  if (p->relay == NULL && (p->relay = proxy_new_relay(p, NULL)) == NULL)
    return -1;
  relay_attach(p->relay, c);
  transport_conn_set_user(c, p->relay);
  snprintf(p->node, sizeof(p->node), "%s", transport_client_node(c));
  if (first && start_mode(p) != 0) {
    log_msg(&p->log, LOG_ERROR, "cannot start the local side");
    return -1;
  }
  return 0;
}

static int on_rx(void *ctx, transport_conn_t *c, const uint8_t *data,
                 size_t len, int eom, char *msg, size_t msglen) {
  proxy_t *p = ctx;
  relay_t *r = transport_conn_user(c);
  if (r == NULL)
    return 0;
  int rc = relay_on_rx(r, data, len, eom, msg, msglen);
  if (rc != 0)
    log_msg(&p->log, LOG_ERROR, "protocol error from the edge: %s", msg);
  return rc;
}

static size_t on_writable(void *ctx, transport_conn_t *c, uint8_t *buf,
                          size_t cap) {
  relay_t *r = transport_conn_user(c);
  return r ? relay_on_writable(r, buf, cap) : 0;
}

static void report_close(proxy_t *p, const transport_close_t *why) {
  if (why->kind == TRANSPORT_END_PROXY) {
    log_msg(&p->log, LOG_ERROR, "cannot connect to the edge: %s", why->message);
    proxy_stop(p, EXIT_PROXY);
  } else if (why->kind == TRANSPORT_END_HTTP) {
    log_msg(&p->log, LOG_ERROR, "%s (HTTP %d)", why->message, why->http_status);
    proxy_stop(p, api_status_exit_code(why->http_status));
  } else if (why->close_code == EDGE_CLOSE_POLICY) {
    log_msg(&p->log, LOG_ERROR, "the edge closed the connection: %s",
            why->message);
    proxy_stop(p, EXIT_REFUSED);
  } else if (!why->was_open) {
    log_msg(&p->log, LOG_ERROR, "cannot connect to the edge: %s", why->message);
    proxy_stop(p, EXIT_NETWORK);
  } else {
    log_msg(&p->log, LOG_ERROR, "connection to the edge lost: %s",
            why->message[0] ? why->message : "closed");
    proxy_stop(p, EXIT_NETWORK);
  }
}

/* Exponential backoff with jitter, so many proxies do not come back in
 * lockstep after an edge restart. */
static uint64_t backoff_ms(proxy_t *p) {
  uint64_t d = BACKOFF_FIRST_MS;
  for (unsigned i = 0; i < p->attempts && d < BACKOFF_MAX_MS; i++)
    d *= 2;
  if (d > BACKOFF_MAX_MS)
    d = BACKOFF_MAX_MS;
  uint8_t r = 0;
  uv_random(NULL, NULL, &r, 1, 0, NULL);
  return d * (80 + (uint64_t)r % 41) / 100;
}

/* Past the edge's grace period the session is gone there: reset our side
 * now instead of keeping connections that cannot come back. */
static int session_expired(proxy_t *p) {
  uint32_t grace = p->have_session ? p->grace_ms : DEFAULT_GRACE_MS;
  return p->lost_at != 0 && uv_now(p->loop) - p->lost_at > grace;
}

static void on_retry(uv_timer_t *t) {
  proxy_t *p = t->data;
  if (p->stopping)
    return;
  if (p->relay != NULL && session_expired(p)) {
    snprintf(p->reset_reason, sizeof(p->reset_reason),
             "the link stayed down longer than the edge keeps a session "
             "(%u ms)",
             p->have_session ? p->grace_ms : DEFAULT_GRACE_MS);
    log_msg(&p->log, LOG_WARN, "%s: open connections are reset",
            p->reset_reason);
    relay_restart(p->relay, p->reset_reason);
    p->have_session = 0;
  }
  proxy_connect(p);
}

static void schedule_retry(proxy_t *p) {
  uint64_t d = backoff_ms(p);
  p->attempts++;
  log_msg(&p->log, LOG_WARN, "reconnecting in %llu ms (attempt %u)",
          (unsigned long long)d, p->attempts);
  uv_timer_start(&p->retry_timer, on_retry, d, 0);
}

static void proxy_connect(proxy_t *p) {
  char hex[33] = "", err[512];
  if (p->relay != NULL && p->have_session)
    for (int i = 0; i < 16; i++)
      snprintf(hex + 2 * i, 3, "%02x", p->session_id[i]);
  snprintf(p->resume_node, sizeof(p->resume_node), "%s", hex[0] ? p->node : "");
  transport_client_set_resume(p->transport, hex[0] ? hex : NULL,
                              p->resume_node);
  p->conn = transport_client_connect(p->transport, NULL, err, sizeof(err));
  if (p->conn == NULL) {
    log_msg(&p->log, LOG_WARN, "%s", err);
    schedule_retry(p);
  } else {
    p->conns++;
  }
}

/* Give up only on answers that another attempt cannot change: a refused
 * upgrade, the edge closing on purpose (1008: SSH was disabled), or the
 * HTTP proxy refusing the tunnel (a 4xx: its credentials or its policy
 * would refuse every attempt alike, and a proxy that keeps seeing wrong
 * credentials may lock the account). A proxy that is down, or that cannot
 * reach the edge (5xx), is retried like any network failure. */
static int permanent(const transport_close_t *why) {
  if (why->close_code == EDGE_CLOSE_POLICY || why->kind == TRANSPORT_END_PROXY)
    return 1;
  return why->kind == TRANSPORT_END_HTTP && why->http_status != 503 &&
         why->http_status != 429 && why->http_status < 500;
}

static void conn_closed(proxy_t *p, transport_conn_t *c,
                        const transport_close_t *why) {
  relay_t *r = transport_conn_user(c);
  if (r != NULL && r == p->old) {
    proxy_close_relay(p, p->old, "the edge went away");
    p->old = NULL;
    p->old_conn = NULL;
    return;
  }
  if (c != p->conn)
    return;
  p->conn = NULL;
  if (p->stopping) {
    if (p->relay != NULL) {
      proxy_close_relay(p, p->relay, "connection to the edge closed");
      p->relay = NULL;
    }
    proxy_stop(p, p->exit_code); /* the close handshake finished */
    return;
  }
  if (!p->ever_open || permanent(why) || p->o->mode == PROXY_MODE_STDIO) {
    if (p->relay != NULL) {
      proxy_close_relay(p, p->relay, "connection to the edge closed");
      p->relay = NULL;
    }
    report_close(p, why);
    return;
  }
  if (p->relay != NULL && relay_attached(p->relay))
    relay_detach(p->relay);
  if (p->relay != NULL && session_failed(relay_session(p->relay))) {
    /* A protocol error: this session can carry no link any more (it
     * refuses every byte from now on, and the edge does not keep it).
     * Its connections are lost; new ones get a new session. */
    log_msg(&p->log, LOG_WARN,
            "the session broke down: open connections reset");
    proxy_close_relay(p, p->relay, "protocol error");
    p->relay = NULL;
    p->have_session = 0;
  }
  if (p->lost_at == 0) {
    p->lost_at = uv_now(p->loop);
    log_msg(&p->log, LOG_WARN,
            "connection to the edge lost: %s; open connections wait for "
            "the link (up to %u ms)",
            why->message[0] ? why->message : "closed",
            p->have_session ? p->grace_ms : DEFAULT_GRACE_MS);
  } else {
    log_msg(&p->log, LOG_INFO, "reconnect failed: %s", why->message);
  }
  schedule_retry(p);
}

static void on_close(void *ctx, transport_conn_t *c,
                     const transport_close_t *why) {
  proxy_t *p = ctx;
  assert(p->conns > 0);
  p->conns--;
  conn_closed(p, c, why);
  maybe_done(p);
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
  if (o->pidfile != NULL) {
    proxy_status_t st = {.pid = (long)getpid(), .started_at = o->started_at};
    snprintf(st.project, sizeof(st.project), "%s", o->project);
    snprintf(st.service, sizeof(st.service), "%s", o->service);
    snprintf(st.up_file, sizeof(st.up_file), "%s",
             o->up_file ? o->up_file : "");
    snprintf(st.endpoint, sizeof(st.endpoint), "%s:%d",
             listener_addr(p->listener), listener_port(p->listener));
    char *text = proxy_status_pidfile_text(&st);
    if (text == NULL || rundir_update(o->pidfile, text) != 0)
      log_msg(&p->log, LOG_WARN, "cannot write the endpoint into %s",
              o->pidfile->pid_path);
    free(text);
  }
  if (o->edge.insecure)
    log_msg(&p->log, LOG_WARN,
            "--insecure: the edge's certificate is NOT verified; anyone on "
            "the path can read and change this session");
  if (o->edge.proxy != NULL)
    log_msg(&p->log, LOG_INFO, "reaching the edge through the HTTP proxy %s",
            o->edge.proxy->display);
  p->transport = transport_client_new(p->loop, &o->edge, &p->handlers, p, err,
                                      sizeof(err));
  if (p->transport != NULL)
    p->conn = transport_client_connect(p->transport, NULL, err, sizeof(err));
  if (p->conn == NULL) {
    log_msg(&p->log, LOG_ERROR, "%s", err);
    return EXIT_NETWORK;
  }
  p->conns++;
  return EXIT_OK;
}

proxy_t *proxy_new(uv_loop_t *loop, const proxy_opts_t *o,
                   const proxy_events_t *ev, void *ctx) {
  proxy_t *p = calloc(1, sizeof(*p));
  if (p == NULL)
    return NULL;
  p->o = o;
  p->loop = loop;
  p->ev = ev;
  p->ev_ctx = ctx;
  if (o->name != NULL)
    snprintf(p->prog, sizeof(p->prog), "wsmux[%s]", o->name);
  else
    snprintf(p->prog, sizeof(p->prog), "wsmux");
  p->log = (log_t){.prog = p->prog,
                   .level = o->level,
                   .timestamps = o->detach != NULL,
                   .hook = on_log_line,
                   .hook_ctx = p};
  p->handlers = (transport_handlers_t){.on_open = on_open,
                                       .on_rx = on_rx,
                                       .on_writable = on_writable,
                                       .on_close = on_close};
  p->hooks = (relay_hooks_t){.open_failed = on_open_failed,
                             .finished = on_finished,
                             .hello = on_hello,
                             .dead = on_dead,
                             .goaway = on_goaway};
  uv_timer_t *timers[] = {&p->retry_timer, &p->old_check, &p->stop_timer,
                          &p->line_timer};
  for (size_t i = 0; i < sizeof(timers) / sizeof(timers[0]); i++) {
    uv_timer_init(loop, timers[i]);
    timers[i]->data = p;
    p->handles++;
  }
  int rc = proxy_start(p);
  if (rc != EXIT_OK)
    proxy_stop(p, rc);
  return p;
}

void proxy_shutdown(proxy_t *p) {
  log_msg(&p->log, LOG_INFO, "stopping");
  proxy_stop_gracefully(p, EXIT_OK);
}

void proxy_free(proxy_t *p) {
  if (p == NULL)
    return;
  assert(p->done_sent);
  transport_client_free(p->transport); /* no connection left: frees now */
  free(p);
}

/* --- one proxy on a loop of its own ------------------------------------ */

typedef struct {
  proxy_t *p;
  uv_signal_t sigint;
  uv_signal_t sigterm;
  int exit_code;
} app_t;

static void on_app_done(void *ctx, proxy_t *p, int exit_code) {
  app_t *a = ctx;
  (void)p;
  a->exit_code = exit_code;
  uv_close((uv_handle_t *)&a->sigint, NULL);
  uv_close((uv_handle_t *)&a->sigterm, NULL);
}

static void on_signal(uv_signal_t *h, int signum) {
  app_t *a = h->data;
  proxy_t *p = a->p;
  if (p->child_running) {
    /* The terminal already sent ^C to ssh, our child, which decides what it
     * means; a SIGTERM meant for us is passed on. */
    if (signum == SIGTERM)
      uv_process_kill(&p->child, SIGTERM);
    return;
  }
  proxy_shutdown(p);
}

int proxy_app_run(const proxy_opts_t *o) {
  signal(SIGPIPE, SIG_IGN);
  rlimit_raise_nofile(); /* one socket per stream */
  uv_loop_t loop;
  uv_loop_init(&loop);
  static const proxy_events_t ev = {.done = on_app_done};
  app_t a = {0};
  uv_signal_init(&loop, &a.sigint);
  uv_signal_init(&loop, &a.sigterm);
  a.sigint.data = a.sigterm.data = &a;
  uv_signal_start(&a.sigint, on_signal, SIGINT);
  uv_signal_start(&a.sigterm, on_signal, SIGTERM);
  a.p = proxy_new(&loop, o, &ev, &a);
  if (a.p == NULL) {
    log_print("wsmux", LOG_ERROR, "out of memory");
    uv_close((uv_handle_t *)&a.sigint, NULL);
    uv_close((uv_handle_t *)&a.sigterm, NULL);
    a.exit_code = EXIT_USAGE;
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  proxy_free(a.p);
  if (uv_loop_close(&loop) != 0 && o->level >= LOG_DEBUG)
    log_print("wsmux", LOG_DEBUG, "loop not empty at exit");
  return a.exit_code;
}
