/*
 * The WebSocket server on libwebsockets 4.1.6. Facts this file relies on
 * (checked against the 4.1.6 source, see docs/NOTES-lws.md):
 * - upgrades are vetted in LWS_CALLBACK_HTTP_CONFIRM_UPGRADE on protocols[0],
 *   the only place where a real HTTP error with a body can be answered;
 * - h2 is disabled (alpn http/1.1): ws-over-h2 would skip that callback;
 * - lws_write() never fails short: what the socket does not take is copied
 *   into lws's own buffer and the next WRITEABLE waits for it to drain, so
 *   we write another message in the same WRITEABLE only while
 *   lws_send_pipe_choked() says nothing is buffered and the socket has room;
 * - on a foreign loop, lws_context_destroy() must be called again after the
 *   loop has run dry (transport_server_free).
 */
#include "ws/transport_server.h"

#include <assert.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>

#include "base/text.h"
#include "ws/transport_server_impl.h"

/* Socket buffers sized for whole messages, instead of lws's 4 KiB default. */
#define RX_BUFFER (64 * 1024)
#define SERV_BUF (TRANSPORT_MSG_MAX + LWS_PRE + 1024)

/* A WebSocket connection: the per-session data of protocols[1], so lws
 * allocates it (zeroed) with the wsi and frees it after CLOSED. */
struct server_conn {
  transport_conn_t base; /* first: the public handle */
  transport_server_t *t;
  struct lws *wsi;
  server_conn_t *prev, *next; /* t->conns, while open */
  int open;
  int ended; /* on_close delivered */
  int closing;
  int aborting;
  int close_code;      /* ours, or else the peer's */
  int peer_close_code; /* received in the peer's close frame, 0: none */
  char close_reason[512];
  uv_timer_t *close_timer; /* separately allocated: outlives the conn */
  int linked;              /* in t->conns */
};

/* --- connections ------------------------------------------------------- */

static void conn_link(server_conn_t *c) {
  transport_server_t *t = c->t;
  c->linked = 1;
  c->prev = NULL;
  c->next = t->conns;
  if (t->conns)
    t->conns->prev = c;
  t->conns = c;
}

static void conn_unlink(server_conn_t *c) {
  if (c->prev)
    c->prev->next = c->next;
  else if (c->t->conns == c)
    c->t->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  c->prev = c->next = NULL;
  c->linked = 0;
}

static void on_timer_freed(uv_handle_t *h) {
  free(h);
}

/* Deliver on_close once; the conn memory is released by the caller. */
static void conn_end(server_conn_t *c, transport_close_t *why) {
  if (c->ended)
    return;
  c->ended = 1;
  if (c->linked)
    conn_unlink(c);
  if (c->close_timer != NULL) {
    c->close_timer->data = NULL;
    uv_close((uv_handle_t *)c->close_timer, on_timer_freed);
    c->close_timer = NULL;
  }
  why->was_open = c->open;
  c->open = 0;
  c->t->h.on_close(c->t->hctx, &c->base, why);
}

static size_t conn_backlog(const transport_conn_t *tc) {
  const server_conn_t *c = (const server_conn_t *)tc;
  int n = 0;
  if (c->wsi == NULL || !c->open ||
      ioctl(lws_get_socket_fd(c->wsi), FIONREAD, &n) != 0 || n < 0)
    return 0;
  return (size_t)n;
}

static void conn_want_write(transport_conn_t *tc) {
  server_conn_t *c = (server_conn_t *)tc;
  if (c->wsi != NULL && c->open)
    lws_callback_on_writable(c->wsi);
}

/* lws only sends a close frame reliably when asked from outside its
 * callbacks with an empty output buffer: WRITEABLE (buffer empty) arms
 * this timer, which runs after the callback has returned. */
static void on_close_timer(uv_timer_t *tm) {
  server_conn_t *c = tm->data;
  if (c == NULL || c->wsi == NULL)
    return;
  if (c->aborting) {
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
    return;
  }
  lws_close_reason(c->wsi, (enum lws_close_status)c->close_code,
                   (unsigned char *)c->close_reason,
                   strnlen(c->close_reason, 123)); /* control frame: 125 */
  lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
}

static void conn_close(transport_conn_t *tc, int code, const char *reason) {
  server_conn_t *c = (server_conn_t *)tc;
  if (c->closing || c->wsi == NULL)
    return;
  c->closing = 1;
  c->close_code = code;
  snprintf(c->close_reason, sizeof(c->close_reason), "%s",
           reason ? reason : "");
  lws_callback_on_writable(c->wsi);
}

static int conn_start_close(server_conn_t *c);

static void conn_abort(transport_conn_t *tc) {
  server_conn_t *c = (server_conn_t *)tc;
  if (c->wsi == NULL || c->aborting)
    return;
  c->aborting = 1;
  c->closing = 1;
  conn_start_close(c);
}

static const transport_conn_ops_t conn_ops = {conn_want_write, conn_backlog,
                                              conn_close, conn_abort};

static int conn_start_close(server_conn_t *c) {
  if (c->close_timer != NULL)
    return 0;
  c->close_timer = malloc(sizeof(*c->close_timer));
  if (c->close_timer == NULL)
    return -1;
  uv_timer_init(c->t->loop, c->close_timer);
  c->close_timer->data = c;
  uv_timer_start(c->close_timer, on_close_timer, 0, 0);
  return 0;
}

/* --- websocket protocol callback (both roles) -------------------------- */

/* Messages written per WRITEABLE while the socket takes them: each extra
 * one saves a poll round trip (two epoll_ctl and an epoll_wait). */
#define WRITES_PER_WRITEABLE 8

static int on_writeable(server_conn_t *c) {
  transport_server_t *t = c->t;
  uint8_t *buf = t->txbuf + LWS_PRE;
  for (int i = 0; i < WRITES_PER_WRITEABLE; i++) {
    size_t n = t->h.on_writable(t->hctx, &c->base, buf, TRANSPORT_MSG_MAX);
    if (n == 0)
      return c->closing ? conn_start_close(c) : 0; /* flushed: now close */
    if (lws_write(c->wsi, buf, n, LWS_WRITE_BINARY) < (int)n)
      return -1;
    /* A short write left the rest in lws's buffer: wait for it to drain. */
    if (lws_send_pipe_choked(c->wsi))
      break;
  }
  /* The app may have more ready; ask again. */
  lws_callback_on_writable(c->wsi);
  return 0;
}

static int on_receive(server_conn_t *c, const void *in, size_t len) {
  transport_server_t *t = c->t;
  char msg[124];
  if (!lws_frame_is_binary(c->wsi)) {
    snprintf(msg, sizeof(msg), "text messages are not allowed");
  } else if (t->h.on_rx(t->hctx, &c->base, in, len,
                        lws_is_final_fragment(c->wsi), msg, sizeof(msg)) == 0) {
    return 0;
  }
  lws_close_reason(c->wsi, LWS_CLOSE_STATUS_PROTOCOL_ERR, (unsigned char *)msg,
                   strlen(msg));
  return -1;
}

/* RFC 6455 7.4.1 and IANA's registry: the codes a peer may send. lws has
 * already turned <1000, 1004-1006 and 1015-2999 into 1002 by the time we
 * see them (so 1012-1014 arrive as 1002 too). */
static int close_code_valid(int code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

/* What lws does not check in a peer's close frame (RFC 6455 5.5.1, 7.4):
 * a 1-byte payload or a code nobody may send is a protocol error (1002), a
 * reason that is not UTF-8 is 1007. 0 when the frame is good. */
static int close_frame_error(const void *in, size_t len, const char **why) {
  const uint8_t *p = in;
  if (len == 0)
    return 0;
  if (len == 1) {
    *why = "a close payload of 1 byte";
    return TRANSPORT_CLOSE_PROTOCOL;
  }
  if (!close_code_valid((p[0] << 8) | p[1])) {
    *why = "an invalid close code";
    return TRANSPORT_CLOSE_PROTOCOL;
  }
  if (!text_utf8_valid((const char *)p + 2, len - 2)) {
    *why = "a close reason that is not UTF-8";
    return TRANSPORT_CLOSE_INVALID_DATA;
  }
  return 0;
}

static void describe_peer_close(server_conn_t *c, const void *in, size_t len,
                                transport_close_t *why) {
  const uint8_t *p = in;
  /* RFC 6455 caps the reason at 123 bytes: escaped, it always fits. */
  char reason[4 * 123 + 1];
  if (len < 2)
    return;
  why->close_code = (p[0] << 8) | p[1];
  /* The peer's bytes, for the log: escaped (base/text.h). */
  text_escape(reason, sizeof(reason), (const char *)p + 2, len - 2);
  if (snprintf(why->message, sizeof(why->message), "closed by peer (%d%s%s)",
               why->close_code, len > 2 ? ": " : "", reason) < 0)
    why->message[0] = '\0'; /* a cut message is harmless */
  (void)c;
}

static void conn_closed(server_conn_t *c, const char *fallback) {
  transport_close_t why = {.kind = TRANSPORT_END_CLOSED,
                           .close_code = c->peer_close_code};
  if (c->close_code != 0)
    snprintf(why.message, sizeof(why.message), "%s", c->close_reason);
  else
    snprintf(why.message, sizeof(why.message), "%s", fallback);
  c->wsi = NULL;
  conn_end(c, &why);
}

static int on_established(server_conn_t *c, struct lws *wsi) {
  c->wsi = wsi;
  c->open = 1;
  conn_link(c);
  return c->t->h.on_open(c->t->hctx, &c->base) == 0 ? 0 : -1;
}

/* A custom header of the request (name lower case, with the colon), ""
 * when absent or too long. */
static void read_custom(struct lws *wsi, const char *name, char *buf,
                        size_t len) {
  if (lws_hdr_custom_copy(wsi, buf, (int)len, name, (int)strlen(name)) < 0)
    buf[0] = '\0';
}

void server_read_origin(struct lws *wsi, char *peer, char *xff,
                        transport_origin_t *o) {
  if (lws_get_peer_simple(wsi, peer, SERVER_ADDR_MAX) == NULL ||
      strncmp(peer, "getpeername", 11) == 0)
    snprintf(peer, SERVER_ADDR_MAX, "unknown");
  /* A known token in lws 4.1.6; repeated lines come joined with ",". */
  if (lws_hdr_copy(wsi, xff, SERVER_XFF_MAX, WSI_TOKEN_X_FORWARDED_FOR) < 0)
    xff[0] = '\0';
  o->peer = peer;
  o->forwarded_for = xff;
}

/* The parts of an upgrade request authorize() looks at. */
typedef struct {
  char path[SERVER_PATH_MAX];
  char auth[SERVER_TOKEN_MAX + 8];
  char resume[64];
  char node[SERVER_NODE_MAX];
  char peer[SERVER_ADDR_MAX];
  char xff[SERVER_XFF_MAX];
  transport_upgrade_t up;
} upgrade_req_t;

/* 0, or -1 when there is no path. */
static int read_upgrade(struct lws *wsi, upgrade_req_t *u) {
  if (lws_hdr_copy(wsi, u->path, sizeof(u->path), WSI_TOKEN_GET_URI) <= 0)
    return -1;
  if (lws_hdr_copy(wsi, u->auth, sizeof(u->auth),
                   WSI_TOKEN_HTTP_AUTHORIZATION) < 0)
    u->auth[0] = '\0';
  read_custom(wsi, "x-wsmux-resume:", u->resume, sizeof(u->resume));
  read_custom(wsi, "x-wsmux-node:", u->node, sizeof(u->node));
  u->up.path = u->path;
  u->up.bearer = strncasecmp(u->auth, "Bearer ", 7) == 0 ? u->auth + 7 : "";
  u->up.resume = u->resume;
  u->up.node = u->node;
  server_read_origin(wsi, u->peer, u->xff, &u->up.origin);
  return 0;
}

/* The edge names itself on every 101, so a load balancer can send a
 * resume back to it (docs/PROTOCOL.md section 8). */
static int add_node_header(transport_server_t *t, struct lws *wsi, void *in) {
  struct lws_process_html_args *a = in;
  if (t->node_id[0] == '\0')
    return 0;
  return lws_add_http_header_by_name(
             wsi, (const unsigned char *)"x-wsmux-node:",
             (const unsigned char *)t->node_id, (int)strlen(t->node_id),
             (unsigned char **)&a->p, (unsigned char *)a->p + a->max_len)
             ? 1
             : 0;
}

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason,
                       void *user, void *in, size_t len) {
  transport_server_t *t = lws_context_user(lws_get_context(wsi));
  server_conn_t *c = user;
  switch (reason) {
  case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
    /* Vetted in CONFIRM_UPGRADE already; run it again to keep the result
     * in this connection's own storage (a fresh pss). */
    upgrade_req_t u;
    char msg[256];
    memset(c, 0, sizeof(*c));
    c->base.ops = &conn_ops;
    c->t = t;
    if (read_upgrade(wsi, &u) != 0)
      return 1;
    return t->h.authorize(t->hctx, &u.up, c->base.auth, msg, sizeof(msg)) ? 1
                                                                          : 0;
  }
  case LWS_CALLBACK_ADD_HEADERS:
    return add_node_header(t, wsi, in);
  case LWS_CALLBACK_ESTABLISHED:
    return on_established(c, wsi);
  case LWS_CALLBACK_RECEIVE:
    return c && c->open ? on_receive(c, in, len) : -1;
  case LWS_CALLBACK_SERVER_WRITEABLE:
    return c && c->open ? on_writeable(c) : 0;
  case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE: {
    const char *bad_why = NULL;
    int bad = close_frame_error(in, len, &bad_why);
    if (bad != 0) {
      /* Our own close frame instead of lws's echo of the bad one. */
      lws_close_reason(wsi, (enum lws_close_status)bad,
                       (unsigned char *)bad_why, strlen(bad_why));
      if (c != NULL && c->close_code == 0) {
        c->close_code = bad;
        snprintf(c->close_reason, sizeof(c->close_reason), "peer sent %s",
                 bad_why);
      }
      return -1;
    }
    if (c != NULL) {
      transport_close_t why = {0};
      describe_peer_close(c, in, len, &why);
      c->peer_close_code = why.close_code;
      if (c->close_code == 0) {
        c->close_code = why.close_code;
        snprintf(c->close_reason, sizeof(c->close_reason), "%s", why.message);
      }
    }
    return 0;
  }
  case LWS_CALLBACK_WSI_DESTROY:
    server_peer_destroy(wsi);
    return 0;
  case LWS_CALLBACK_TIMER:
    return server_peer_timer(wsi);
  case LWS_CALLBACK_CLOSED:
    if (c != NULL && c->open)
      conn_closed(c, "connection closed");
    return 0;
  default:
    return 0;
  }
}

/* --- server ------------------------------------------------------------ */

static void set_protocols(transport_server_t *t) {
  t->protocols[0] =
      (struct lws_protocols){.name = "http",
                             .callback = server_http_callback,
                             .per_session_data_size = server_http_pss_size()};
  t->protocols[1] = (struct lws_protocols){
      .name = TRANSPORT_SUBPROTOCOL,
      .callback = ws_callback,
      .per_session_data_size = sizeof(server_conn_t),
      .rx_buffer_size = RX_BUFFER,
      .tx_packet_size = TRANSPORT_MSG_MAX + 14,
  };
  t->protocols[2] = (struct lws_protocols){0};
}

static void quiet_lws(void) {
  /* lws logs to stderr on its own; our messages say what matters. Set
   * WSMUX_LWS_DEBUG=1 to see its warnings and errors. */
  const char *d = getenv("WSMUX_LWS_DEBUG");
  lws_set_log_level(d && *d == '1' ? LLL_ERR | LLL_WARN | LLL_NOTICE : 0, NULL);
}

static transport_server_t *
server_alloc(uv_loop_t *loop, const transport_handlers_t *h, void *ctx) {
  transport_server_t *t = calloc(1, sizeof(*t));
  if (t == NULL)
    return NULL;
  t->loop = loop;
  t->h = *h;
  t->hctx = ctx;
  t->loops[0] = loop;
  set_protocols(t);
  quiet_lws();
  return t;
}

static void base_info(transport_server_t *t,
                      struct lws_context_creation_info *info) {
  memset(info, 0, sizeof(*info));
  info->options =
      LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
  info->foreign_loops = t->loops;
  info->protocols = t->protocols;
  info->user = t;
  info->pcontext = &t->ctx;
  info->pt_serv_buf_size = SERV_BUF;
  info->alpn = "http/1.1";
  info->timeout_secs = 15; /* handshakes that stall are dropped */
  /* TCP keepalive notices a peer that vanished without a FIN. */
  info->ka_time = 30;
  info->ka_probes = 3;
  info->ka_interval = 10;
}

transport_server_t *transport_server_new(uv_loop_t *loop,
                                         const transport_server_opts_t *opts,
                                         const transport_handlers_t *h,
                                         void *ctx, char *err, size_t errlen) {
  transport_server_t *t = server_alloc(loop, h, ctx);
  if (t == NULL) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  struct lws_context_creation_info info;
  base_info(t, &info);
  info.port = opts->port;
  info.iface = opts->host;
  t->request_ms = (uint64_t)info.timeout_secs * 1000;
  if (opts->node_id != NULL)
    snprintf(t->node_id, sizeof(t->node_id), "%s", opts->node_id);
  t->unauth_max = opts->max_unauthenticated;
  t->unauth_addr_max = opts->max_unauthenticated_per_addr;
  if (opts->handshake_timeout_s > 0) {
    t->request_ms = (uint64_t)opts->handshake_timeout_s * 1000;
    info.timeout_secs = opts->handshake_timeout_s;
    /* A plain TCP connection that sends nothing waits on this one. */
    info.timeout_secs_ah_idle = opts->handshake_timeout_s;
  }
  if (opts->request_timeout_ms > 0)
    t->request_ms = opts->request_timeout_ms;
  /* Without this lws binds [::] even for an IPv4 iface (4.1.6). */
  if (strchr(opts->host, ':') == NULL)
    info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
  if (!opts->plain) {
    info.ssl_cert_filepath = opts->cert;
    info.ssl_private_key_filepath = opts->key;
  }
  t->ctx = lws_create_context(&info);
  if (t->ctx == NULL) {
    snprintf(err, errlen,
             "cannot serve on %s:%d (address in use, or a bad TLS "
             "certificate/key)",
             opts->host, opts->port);
    free(t);
    return NULL;
  }
  return t;
}

void transport_server_stats(const transport_server_t *t,
                            transport_server_stats_t *out) {
  *out = t->stats;
  out->unauthenticated = t->unauth;
}

int transport_server_port(const transport_server_t *t) {
  return lws_get_vhost_listen_port(lws_get_vhost_by_name(t->ctx, "default"));
}

/* --- teardown ---------------------------------------------------------- */

void transport_server_close(transport_server_t *t) {
  if (t == NULL || t->closing)
    return;
  t->closing = 1;
  /* Closes every wsi; CLOSED callbacks deliver on_close. */
  lws_context_destroy(t->ctx);
}

void transport_server_free(transport_server_t *t) {
  if (t == NULL)
    return;
  transport_server_close(t);
  /* lws on a foreign loop finishes only when destroyed again once its
   * handles have closed (4.1.6). */
  uv_run(t->loop, UV_RUN_DEFAULT);
  if (t->ctx != NULL)
    lws_context_destroy(t->ctx);
  uv_run(t->loop, UV_RUN_DEFAULT);
  free(t->addrs);
  free(t);
}
