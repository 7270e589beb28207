/*
 * libwebsockets 4.1.6 glue. Facts this file relies on (checked against the
 * 4.1.6 source, see docs/NOTES-lws.md):
 * - upgrades are vetted in LWS_CALLBACK_HTTP_CONFIRM_UPGRADE on protocols[0],
 *   the only place where a real HTTP error with a body can be answered;
 * - h2 is disabled (alpn http/1.1): ws-over-h2 would skip that callback;
 * - lws_write() never fails short: what the socket does not take is copied
 *   into lws's own buffer and the next WRITEABLE waits for it to drain, so
 *   we write another message in the same WRITEABLE only while
 *   lws_send_pipe_choked() says nothing is buffered and the socket has room;
 * - on a foreign loop, lws_context_destroy() must be called again after the
 *   loop has run dry (transport_destroy).
 */
#include "ws/transport.h"

#include <libwebsockets.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>

#include "ws/wsclient.h"

#define PATH_MAX_LEN 512
#define HOST_MAX_LEN 256
#define TOKEN_MAX_LEN 1024
/* Socket buffers sized for whole messages, instead of lws's 4 KiB default. */
#define RX_BUFFER (64 * 1024)
#define SERV_BUF (TRANSPORT_MSG_MAX + LWS_PRE + 1024)

struct transport_conn {
  transport_t *t;
  struct lws *wsi;
  void *user;
  transport_conn_t *prev, *next; /* t->conns, while open */
  uint8_t auth[TRANSPORT_AUTH_MAX];
  int open;
  int ended; /* on_close delivered */
  int closing;
  int aborting;
  int close_code;      /* ours, or else the peer's */
  int peer_close_code; /* received in the peer's close frame, 0: none */
  char close_reason[512];
  uv_timer_t *close_timer; /* separately allocated: outlives a server conn */
  uv_getaddrinfo_t gai;    /* client: resolving the edge */
  const char *http_method; /* lws client: the HTTP call's method */
  wsclient_t *wsc;         /* client WebSocket (ws/wsclient), not lws */
  int linked;              /* in t->conns */
};

struct transport {
  uv_loop_t *loop;
  struct lws_context *ctx;
  transport_handlers_t h;
  void *hctx;
  int server;
  void *loops[2];
  struct lws_protocols protocols[3];
  transport_conn_t *conns;
  int destroying;
  uint64_t handshake_ms; /* server: the timeout lws applies */
  uint8_t txbuf[LWS_PRE + TRANSPORT_MSG_MAX];
  /* client: parsed URL and options */
  int tls;
  int insecure;
  int port;
  char host[HOST_MAX_LEN];
  char path[PATH_MAX_LEN];
  char auth_header[TOKEN_MAX_LEN + 8];
  char resume_header[64]; /* client: session to resume, "" for none */
  char *ca_file;
  SSL_CTX *ssl_ctx; /* client WebSockets over TLS */
};

/* --- connections ------------------------------------------------------- */

static void conn_link(transport_conn_t *c) {
  transport_t *t = c->t;
  c->linked = 1;
  c->prev = NULL;
  c->next = t->conns;
  if (t->conns)
    t->conns->prev = c;
  t->conns = c;
}

static void conn_unlink(transport_conn_t *c) {
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
static void conn_end(transport_conn_t *c, transport_close_t *why) {
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
  c->t->h.on_close(c->t->hctx, c, why);
}

void *transport_conn_user(const transport_conn_t *c) {
  return c->user;
}

void transport_conn_set_user(transport_conn_t *c, void *user) {
  c->user = user;
}

const void *transport_conn_auth(const transport_conn_t *c) {
  return c->auth;
}

size_t transport_conn_backlog(const transport_conn_t *c) {
  if (c->wsc != NULL)
    return wsclient_backlog(c->wsc);
  int n = 0;
  if (c->wsi == NULL || !c->open ||
      ioctl(lws_get_socket_fd(c->wsi), FIONREAD, &n) != 0 || n < 0)
    return 0;
  return (size_t)n;
}

void transport_conn_want_write(transport_conn_t *c) {
  if (c->wsc != NULL)
    wsclient_want_write(c->wsc);
  else if (c->wsi != NULL && c->open)
    lws_callback_on_writable(c->wsi);
}

/* lws only sends a close frame reliably when asked from outside its
 * callbacks with an empty output buffer: WRITEABLE (buffer empty) arms
 * this timer, which runs after the callback has returned. */
static void on_close_timer(uv_timer_t *tm) {
  transport_conn_t *c = tm->data;
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

void transport_conn_close(transport_conn_t *c, int code, const char *reason) {
  if (c->wsc != NULL) {
    wsclient_close(c->wsc, code, reason);
    return;
  }
  if (c->closing || c->wsi == NULL)
    return;
  c->closing = 1;
  c->close_code = code;
  snprintf(c->close_reason, sizeof(c->close_reason), "%s",
           reason ? reason : "");
  lws_callback_on_writable(c->wsi);
}

static int conn_start_close(transport_conn_t *c);

void transport_conn_abort(transport_conn_t *c) {
  if (c->wsc != NULL) {
    wsclient_abort(c->wsc);
    return;
  }
  if (c->wsi == NULL || c->aborting)
    return;
  c->aborting = 1;
  c->closing = 1;
  conn_start_close(c);
}

static int conn_start_close(transport_conn_t *c) {
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

static int on_writeable(transport_conn_t *c) {
  transport_t *t = c->t;
  uint8_t *buf = t->txbuf + LWS_PRE;
  for (int i = 0; i < WRITES_PER_WRITEABLE; i++) {
    size_t n = t->h.on_writable(t->hctx, c, buf, TRANSPORT_MSG_MAX);
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

static int on_receive(transport_conn_t *c, const void *in, size_t len) {
  transport_t *t = c->t;
  char msg[124];
  if (!lws_frame_is_binary(c->wsi)) {
    snprintf(msg, sizeof(msg), "text messages are not allowed");
  } else if (t->h.on_rx(t->hctx, c, in, len, lws_is_final_fragment(c->wsi), msg,
                        sizeof(msg)) == 0) {
    return 0;
  }
  lws_close_reason(c->wsi, LWS_CLOSE_STATUS_PROTOCOL_ERR, (unsigned char *)msg,
                   strlen(msg));
  return -1;
}

static void describe_peer_close(transport_conn_t *c, const void *in, size_t len,
                                transport_close_t *why) {
  const uint8_t *p = in;
  if (len < 2)
    return;
  why->close_code = (p[0] << 8) | p[1];
  snprintf(why->message, sizeof(why->message), "closed by peer (%d%s%.*s)",
           why->close_code, len > 2 ? ": " : "", (int)(len - 2),
           (const char *)p + 2);
  (void)c;
}

static void conn_closed(transport_conn_t *c, const char *fallback) {
  transport_close_t why = {.kind = TRANSPORT_END_CLOSED,
                           .close_code = c->peer_close_code};
  if (c->close_code != 0)
    snprintf(why.message, sizeof(why.message), "%s", c->close_reason);
  else
    snprintf(why.message, sizeof(why.message), "%s", fallback);
  c->wsi = NULL;
  conn_end(c, &why);
}

static int on_established(transport_conn_t *c, struct lws *wsi) {
  c->wsi = wsi;
  c->open = 1;
  conn_link(c);
  return c->t->h.on_open(c->t->hctx, c) == 0 ? 0 : -1;
}

/* An HTTP call's Authorization header (WebSockets: ws/wsclient). */
static int add_auth_header(transport_t *t, struct lws *wsi, void *in,
                           size_t len) {
  unsigned char **p = in;
  if (t->auth_header[0] == '\0')
    return 0;
  return lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION,
                                      (unsigned char *)t->auth_header,
                                      (int)strlen(t->auth_header), p, *p + len)
             ? -1
             : 0;
}

/* The X-Wsmux-Resume header of an upgrade request, "" when absent. */
static void read_resume(struct lws *wsi, char *buf, size_t len) {
  if (lws_hdr_custom_copy(wsi, buf, (int)len, "x-wsmux-resume:", 15) < 0)
    buf[0] = '\0';
}

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason,
                       void *user, void *in, size_t len) {
  transport_t *t = lws_context_user(lws_get_context(wsi));
  transport_conn_t *c = user;
  switch (reason) {
  case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
    /* Vetted in CONFIRM_UPGRADE already; run it again to keep the result
     * in this connection's own storage (a fresh pss). */
    char path[PATH_MAX_LEN], auth[TOKEN_MAX_LEN + 8], msg[256];
    memset(c, 0, sizeof(*c));
    c->t = t;
    if (lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI) < 0)
      return 1;
    if (lws_hdr_copy(wsi, auth, sizeof(auth), WSI_TOKEN_HTTP_AUTHORIZATION) < 0)
      auth[0] = '\0';
    const char *bearer = strncasecmp(auth, "Bearer ", 7) == 0 ? auth + 7 : "";
    char resume[64];
    read_resume(wsi, resume, sizeof(resume));
    return t->h.authorize(t->hctx, path, bearer, resume, c->auth, msg,
                          sizeof(msg))
               ? 1
               : 0;
  }
  case LWS_CALLBACK_ESTABLISHED:
    return on_established(c, wsi);
  case LWS_CALLBACK_RECEIVE:
    return c && c->open ? on_receive(c, in, len) : -1;
  case LWS_CALLBACK_SERVER_WRITEABLE:
    return c && c->open ? on_writeable(c) : 0;
  case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
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
  case LWS_CALLBACK_CLOSED:
    if (c != NULL && c->open)
      conn_closed(c, "connection closed");
    return 0;
  default:
    return 0;
  }
}

/* --- server ------------------------------------------------------------ */

static int http_reject(struct lws *wsi, unsigned status, const char *msg) {
  uint8_t b[LWS_PRE + 2048], *start = b + LWS_PRE, *p = start;
  uint8_t *end = b + sizeof(b) - 1;
  size_t n = strlen(msg);
  if (n > 512)
    n = 512;
  if (lws_add_http_common_headers(wsi, status, "text/plain", n + 1, &p, end) ||
      lws_add_http_header_by_name(wsi, (unsigned char *)"x-wsmux-error:",
                                  (unsigned char *)msg, (int)n, &p, end) ||
      lws_finalize_http_header(wsi, &p, end))
    return -1;
  memcpy(p, msg, n);
  p += n;
  *p++ = '\n';
  int len = (int)(p - start);
  return lws_write(wsi, start, (size_t)len, LWS_WRITE_HTTP) == len ? 1 : -1;
}

/* Whether the comma-separated Sec-WebSocket-Protocol list names ours. */
static int offers_subprotocol(struct lws *wsi) {
  char list[256];
  if (lws_hdr_copy(wsi, list, sizeof(list), WSI_TOKEN_PROTOCOL) <= 0)
    return 0;
  char *save = NULL;
  for (char *tok = strtok_r(list, ", \t", &save); tok != NULL;
       tok = strtok_r(NULL, ", \t", &save))
    if (strcmp(tok, TRANSPORT_SUBPROTOCOL) == 0)
      return 1;
  return 0;
}

static int confirm_upgrade(transport_t *t, struct lws *wsi, const char *in) {
  char path[PATH_MAX_LEN], auth[TOKEN_MAX_LEN + 8], msg[256];
  uint8_t scratch[TRANSPORT_AUTH_MAX];
  if (in == NULL || strcasecmp(in, "websocket") != 0)
    return http_reject(wsi, 400, "only WebSocket upgrades are served");
  if (!offers_subprotocol(wsi))
    return http_reject(wsi, 400,
                       "the " TRANSPORT_SUBPROTOCOL
                       " WebSocket subprotocol is required");
  if (lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI) <= 0)
    return http_reject(wsi, 404, "unknown path");
  if (lws_hdr_copy(wsi, auth, sizeof(auth), WSI_TOKEN_HTTP_AUTHORIZATION) < 0)
    auth[0] = '\0';
  const char *bearer = strncasecmp(auth, "Bearer ", 7) == 0 ? auth + 7 : "";
  char resume[64];
  read_resume(wsi, resume, sizeof(resume));
  int status =
      t->h.authorize(t->hctx, path, bearer, resume, scratch, msg, sizeof(msg));
  return status == 0 ? 0 : http_reject(wsi, (unsigned)status, msg);
}

/* A plain HTTP request being received (protocols[0]'s per-session data,
 * zeroed by lws; body freed on close). */
typedef struct {
  char method[8];
  char path[PATH_MAX_LEN];
  char bearer[TOKEN_MAX_LEN + 8];
  uint8_t *body;
  size_t body_len;
  int too_big;
} http_req_t;

static const struct {
  enum lws_token_indexes tok;
  const char *name;
} http_methods[] = {
    {WSI_TOKEN_GET_URI, "GET"},       {WSI_TOKEN_POST_URI, "POST"},
    {WSI_TOKEN_PATCH_URI, "PATCH"},   {WSI_TOKEN_PUT_URI, "PUT"},
    {WSI_TOKEN_DELETE_URI, "DELETE"},
};

/* Write a whole response (headers and body) and finish the transaction. */
static int http_respond(struct lws *wsi, int status, const char *ctype,
                        const char *body, size_t len) {
  size_t cap = LWS_PRE + 1024 + len;
  uint8_t *b = malloc(cap);
  if (b == NULL)
    return -1;
  uint8_t *start = b + LWS_PRE, *p = start, *end = b + cap;
  int rc = -1;
  /* A 204 has no body and must not announce one (RFC 9110 8.6). */
  lws_filepos_t clen = status == 204 ? LWS_ILLEGAL_HTTP_CONTENT_LEN : len;
  if (lws_add_http_common_headers(wsi, (unsigned)status, ctype, clen, &p,
                                  end) == 0 &&
      lws_finalize_http_header(wsi, &p, end) == 0) {
    if (len > 0)
      memcpy(p, body, len);
    p += len;
    int n = (int)(p - start);
    if (lws_write(wsi, start, (size_t)n, LWS_WRITE_HTTP_FINAL) == n)
      rc = lws_http_transaction_completed(wsi) ? -1 : 0;
  }
  free(b);
  return rc;
}

static int http_dispatch(transport_t *t, struct lws *wsi, http_req_t *r) {
  if (r->too_big) {
    static const char msg[] = "{\"error\": \"request body too large\"}\n";
    return http_respond(wsi, 413, "application/json", msg, sizeof(msg) - 1);
  }
  if (t->h.on_http == NULL)
    return http_reject(wsi, 404, "not found: this is a wsmux edge");
  transport_http_request_t req = {.method = r->method,
                                  .path = r->path,
                                  .bearer = r->bearer,
                                  .body = r->body,
                                  .body_len = r->body_len};
  transport_http_response_t resp = {.status = 500,
                                    .content_type = "text/plain"};
  t->h.on_http(t->hctx, &req, &resp);
  int rc = http_respond(wsi, resp.status, resp.content_type, resp.body,
                        resp.body ? resp.body_len : 0);
  free(resp.body);
  return rc;
}

/* Headers are in: note method, path and token; wait for a body if any. */
static int http_begin(transport_t *t, struct lws *wsi, http_req_t *r) {
  memset(r, 0, sizeof(*r));
  for (size_t i = 0; i < sizeof(http_methods) / sizeof(http_methods[0]); i++)
    if (lws_hdr_total_length(wsi, http_methods[i].tok) > 0) {
      snprintf(r->method, sizeof(r->method), "%s", http_methods[i].name);
      if (lws_hdr_copy(wsi, r->path, sizeof(r->path), http_methods[i].tok) < 0)
        return http_reject(wsi, 414, "request path too long");
    }
  if (r->method[0] == '\0')
    return http_reject(wsi, 405, "method not allowed");
  char auth[TOKEN_MAX_LEN + 8];
  if (lws_hdr_copy(wsi, auth, sizeof(auth), WSI_TOKEN_HTTP_AUTHORIZATION) > 7 &&
      strncasecmp(auth, "Bearer ", 7) == 0)
    snprintf(r->bearer, sizeof(r->bearer), "%s", auth + 7);
  char cl[24] = "";
  if (lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) < 0)
    cl[0] = '\0';
  long long n = atoll(cl);
  if (n > TRANSPORT_HTTP_BODY_MAX)
    r->too_big = 1;
  if (n <= 0 || r->too_big)
    return http_dispatch(t, wsi, r);
  return 0; /* LWS_CALLBACK_HTTP_BODY follows */
}

static int http_body(http_req_t *r, const void *in, size_t len) {
  if (r->too_big || r->body_len + len > TRANSPORT_HTTP_BODY_MAX) {
    r->too_big = 1;
    return 0;
  }
  uint8_t *nb = realloc(r->body, r->body_len + len + 1);
  if (nb == NULL)
    return -1;
  r->body = nb;
  memcpy(r->body + r->body_len, in, len);
  r->body_len += len;
  r->body[r->body_len] = '\0';
  return 0;
}

static int http_client_callback(transport_t *t, struct lws *wsi,
                                enum lws_callback_reasons reason, void *in,
                                size_t len);

/*
 * Handshake timeouts. lws drops a connection that has not sent a whole
 * request head within its timeout, without saying why it closed one. So
 * each accepted wsi carries its accept time (loop ms + 1, in the wsi's
 * opaque pointer: no allocation to leak) until its request head is in. A
 * wsi destroyed still carrying it, at least the timeout after its accept,
 * was dropped for that: a client giving up on its own before would be
 * closed sooner, and lws would have dropped it before any later.
 */
#define HANDSHAKE_SLACK_MS 100 /* lws's clock and the loop's differ a bit */

static void handshake_started(transport_t *t, struct lws *wsi) {
  lws_set_opaque_user_data(wsi, (void *)(uintptr_t)(uv_now(t->loop) + 1));
}

static void handshake_done(struct lws *wsi) {
  lws_set_opaque_user_data(wsi, NULL);
}

static void handshake_check(transport_t *t, struct lws *wsi) {
  uintptr_t mark = (uintptr_t)lws_get_opaque_user_data(wsi);
  if (mark == 0)
    return;
  handshake_done(wsi);
  if (!t->destroying && t->h.on_handshake_timeout != NULL &&
      uv_now(t->loop) + HANDSHAKE_SLACK_MS >= (mark - 1) + t->handshake_ms)
    t->h.on_handshake_timeout(t->hctx);
}

static int http_callback(struct lws *wsi, enum lws_callback_reasons reason,
                         void *user, void *in, size_t len) {
  transport_t *t = lws_context_user(lws_get_context(wsi));
  http_req_t *r = user;
  if (!t->server)
    return http_client_callback(t, wsi, reason, in, len);
  switch (reason) {
  case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
    handshake_started(t, wsi);
    return lws_callback_http_dummy(wsi, reason, user, in, len);
  case LWS_CALLBACK_WSI_DESTROY:
    handshake_check(t, wsi);
    return lws_callback_http_dummy(wsi, reason, user, in, len);
  case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
    handshake_done(wsi);
    return confirm_upgrade(t, wsi, in);
  case LWS_CALLBACK_HTTP:
    handshake_done(wsi);
    return r ? http_begin(t, wsi, r) : -1;
  case LWS_CALLBACK_HTTP_BODY:
    return r ? http_body(r, in, len) : -1;
  case LWS_CALLBACK_HTTP_BODY_COMPLETION:
    return r ? http_dispatch(t, wsi, r) : -1;
  case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
  case LWS_CALLBACK_CLOSED_HTTP:
    if (r != NULL) {
      free(r->body);
      r->body = NULL;
    }
    return 0;
  default:
    return lws_callback_http_dummy(wsi, reason, user, in, len);
  }
}

static void set_protocols(transport_t *t) {
  t->protocols[0] = (struct lws_protocols){
      .name = "http",
      .callback = http_callback,
      .per_session_data_size = t->server ? sizeof(http_req_t) : 0};
  t->protocols[1] = (struct lws_protocols){
      .name = TRANSPORT_SUBPROTOCOL,
      .callback = ws_callback,
      .per_session_data_size = t->server ? sizeof(transport_conn_t) : 0,
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

static transport_t *transport_alloc(uv_loop_t *loop,
                                    const transport_handlers_t *h, void *ctx,
                                    int server) {
  transport_t *t = calloc(1, sizeof(*t));
  if (t == NULL)
    return NULL;
  t->loop = loop;
  t->h = *h;
  t->hctx = ctx;
  t->server = server;
  t->loops[0] = loop;
  set_protocols(t);
  quiet_lws();
  return t;
}

static void base_info(transport_t *t, struct lws_context_creation_info *info) {
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

transport_t *transport_server_new(uv_loop_t *loop,
                                  const transport_server_opts_t *opts,
                                  const transport_handlers_t *h, void *ctx,
                                  char *err, size_t errlen) {
  transport_t *t = transport_alloc(loop, h, ctx, 1);
  if (t == NULL) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  struct lws_context_creation_info info;
  base_info(t, &info);
  info.port = opts->port;
  info.iface = opts->host;
  t->handshake_ms = (uint64_t)info.timeout_secs * 1000;
  if (opts->handshake_timeout_s > 0) {
    t->handshake_ms = (uint64_t)opts->handshake_timeout_s * 1000;
    info.timeout_secs = opts->handshake_timeout_s;
    /* A plain TCP connection that sends nothing waits on this one. */
    info.timeout_secs_ah_idle = opts->handshake_timeout_s;
  }
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

void transport_client_set_resume(transport_t *t, const char *hex_id) {
  snprintf(t->resume_header, sizeof(t->resume_header), "%s",
           hex_id ? hex_id : "");
}

int transport_server_port(const transport_t *t) {
  return lws_get_vhost_listen_port(lws_get_vhost_by_name(t->ctx, "default"));
}

/* --- client ------------------------------------------------------------ */

/* wss://host[:port][/prefix] -> host, port, tls, prefix. */
static int parse_url(transport_t *t, const char *url, const char *path,
                     char *err, size_t errlen) {
  const char *rest;
  if (strncmp(url, "wss://", 6) == 0) {
    t->tls = 1;
    t->port = 443;
    rest = url + 6;
  } else if (strncmp(url, "ws://", 5) == 0) {
    t->port = 80;
    rest = url + 5;
  } else {
    snprintf(err, errlen, "edge URL must start with wss:// (or ws://): '%s'",
             url);
    return -1;
  }
  size_t hl = strcspn(rest, ":/");
  if (hl == 0 || hl >= sizeof(t->host)) {
    snprintf(err, errlen, "edge URL has no valid host: '%s'", url);
    return -1;
  }
  memcpy(t->host, rest, hl);
  t->host[hl] = '\0';
  rest += hl;
  if (*rest == ':') {
    char *end;
    long p = strtol(rest + 1, &end, 10);
    if (end == rest + 1 || p < 1 || p > 65535 || (*end && *end != '/')) {
      snprintf(err, errlen, "edge URL has an invalid port: '%s'", url);
      return -1;
    }
    t->port = (int)p;
    rest = end;
  }
  size_t pl = strlen(rest);
  while (pl > 0 && rest[pl - 1] == '/')
    pl--;
  if (snprintf(t->path, sizeof(t->path), "%.*s%s", (int)pl, rest, path) >=
      (int)sizeof(t->path)) {
    snprintf(err, errlen, "edge URL too long");
    return -1;
  }
  return 0;
}

transport_t *transport_client_new(uv_loop_t *loop,
                                  const transport_client_opts_t *opts,
                                  const transport_handlers_t *h, void *ctx,
                                  char *err, size_t errlen) {
  transport_t *t = transport_alloc(loop, h, ctx, 0);
  if (t == NULL) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  if (parse_url(t, opts->url, opts->path, err, errlen) != 0)
    goto fail;
  if (opts->token && strlen(opts->token) > TOKEN_MAX_LEN) {
    snprintf(err, errlen, "API token too long");
    goto fail;
  }
  if (opts->token)
    snprintf(t->auth_header, sizeof(t->auth_header), "Bearer %s", opts->token);
  t->insecure = opts->insecure;
  if (opts->ca_file && (t->ca_file = strdup(opts->ca_file)) == NULL) {
    snprintf(err, errlen, "out of memory");
    goto fail;
  }
  if (t->tls && (t->ssl_ctx = wsclient_ssl_ctx_new(t->ca_file, t->insecure, err,
                                                   errlen)) == NULL)
    goto fail;
  struct lws_context_creation_info info;
  base_info(t, &info);
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.client_ssl_ca_filepath = t->ca_file;
  t->ctx = lws_create_context(&info);
  if (t->ctx == NULL) {
    snprintf(err, errlen, "cannot set up TLS%s%s",
             t->ca_file ? " with CA " : "", t->ca_file ? t->ca_file : "");
    goto fail;
  }
  return t;
fail:
  if (t->ssl_ctx != NULL)
    SSL_CTX_free(t->ssl_ctx);
  free(t->ca_file);
  free(t);
  return NULL;
}

static void client_error(transport_conn_t *c, struct lws *wsi, const char *in) {
  transport_t *t = c->t;
  transport_close_t why = {.kind = TRANSPORT_END_NETWORK};
  SSL *ssl = t->tls ? lws_get_ssl(wsi) : NULL;
  long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
  if (v != X509_V_OK) {
    why.kind = TRANSPORT_END_TLS;
    snprintf(why.message, sizeof(why.message),
             "TLS certificate of %s not accepted: %s (pass --ca FILE to "
             "trust its CA)",
             t->host, X509_verify_cert_error_string(v));
  } else {
    snprintf(why.message, sizeof(why.message),
             "cannot reach the edge at %s:%d: %s", t->host, t->port,
             in && strstr(in, "closed before established")
                 ? "connection refused or closed during the handshake"
                 : (in ? in : "connection failed"));
  }
  c->wsi = NULL;
  conn_end(c, &why);
}

static void client_fail_now(transport_conn_t *c, const char *fmt,
                            const char *arg) {
  transport_close_t why = {.kind = TRANSPORT_END_NETWORK};
  snprintf(why.message, sizeof(why.message), fmt, c->t->host, arg);
  conn_end(c, &why); /* an HTTP call's conn is its caller's: not freed */
}

static void client_dial(transport_conn_t *c, const char *numeric) {
  transport_t *t = c->t;
  struct lws_client_connect_info i;
  memset(&i, 0, sizeof(i));
  i.context = t->ctx;
  i.address = numeric;
  i.port = t->port;
  i.path = t->path;
  i.host = t->host;
  i.origin = t->host;
  i.method = c->http_method;
  i.local_protocol_name = "http";
  i.alpn = "http/1.1";
  i.userdata = c;
  i.pwsi = &c->wsi;
  if (t->tls) {
    i.ssl_connection = LCCSCF_USE_SSL;
    if (t->insecure)
      i.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED | LCCSCF_ALLOW_INSECURE |
                          LCCSCF_ALLOW_EXPIRED |
                          LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK;
  }
  /* An immediate failure may or may not have run CONNECTION_ERROR (which
   * ends c); c->wsi tells which. */
  c->wsi = (struct lws *)1;
  struct lws *wsi = lws_client_connect_via_info(&i);
  if (wsi == NULL && c->wsi != NULL)
    client_fail_now(c, "cannot connect to the edge at %s%s", "");
}

static void on_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
  transport_conn_t *c = req->data;
  if (status != 0 || c->t->destroying) {
    client_fail_now(c, "cannot resolve the edge host %s: %s",
                    status ? uv_strerror(status) : "shutting down");
  } else {
    char ip[INET6_ADDRSTRLEN] = "";
    if (res->ai_family == AF_INET6)
      uv_ip6_name((struct sockaddr_in6 *)res->ai_addr, ip, sizeof(ip));
    else
      uv_ip4_name((struct sockaddr_in *)res->ai_addr, ip, sizeof(ip));
    client_dial(c, ip);
  }
  uv_freeaddrinfo(res);
}

/* Resolve, then dial (on_resolved). lws resolves synchronously and drops
 * the error text, so we resolve ourselves. */
static int client_start(transport_conn_t *c, char *err, size_t errlen) {
  transport_t *t = c->t;
  c->gai.data = c;
  struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
  int rc = uv_getaddrinfo(t->loop, &c->gai, on_resolved, t->host, NULL, &hints);
  if (rc != 0)
    snprintf(err, errlen, "cannot resolve the edge host %s: %s", t->host,
             uv_strerror(rc));
  return rc;
}

/* WebSocket connections run on ws/wsclient; these forward its events. */
static int wsc_open(void *ctx) {
  transport_conn_t *c = ctx;
  c->open = 1;
  return c->t->h.on_open(c->t->hctx, c);
}

static int wsc_rx(void *ctx, const uint8_t *data, size_t len, int eom,
                  char *msg, size_t msglen) {
  transport_conn_t *c = ctx;
  return c->t->h.on_rx(c->t->hctx, c, data, len, eom, msg, msglen);
}

static size_t wsc_writable(void *ctx, uint8_t *buf, size_t cap) {
  transport_conn_t *c = ctx;
  return c->t->h.on_writable(c->t->hctx, c, buf, cap);
}

static void wsc_closed(void *ctx, const transport_close_t *why) {
  transport_conn_t *c = ctx;
  transport_close_t w = *why;
  c->wsc = NULL;
  conn_end(c, &w);
  free(c);
}

static const wsclient_handlers_t wsc_handlers = {wsc_open, wsc_rx, wsc_writable,
                                                 wsc_closed};

transport_conn_t *transport_client_connect(transport_t *t, void *user,
                                           char *err, size_t errlen) {
  transport_conn_t *c = calloc(1, sizeof(*c));
  if (c == NULL) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  c->t = t;
  c->user = user;
  char headers[sizeof(t->auth_header) + sizeof(t->resume_header) + 64] = "";
  if (t->auth_header[0] != '\0')
    snprintf(headers, sizeof(headers), "Authorization: %s\r\n", t->auth_header);
  if (t->resume_header[0] != '\0')
    snprintf(headers + strlen(headers), sizeof(headers) - strlen(headers),
             "X-Wsmux-Resume: %s\r\n", t->resume_header);
  wsclient_opts_t o = {.host = t->host,
                       .port = t->port,
                       .tls = t->tls,
                       .ssl_ctx = t->ssl_ctx,
                       .insecure = t->insecure,
                       .path = t->path,
                       .subprotocol = TRANSPORT_SUBPROTOCOL,
                       .headers = headers,
                       .handshake_ms = 15000};
  c->wsc = wsclient_connect(t->loop, &o, &wsc_handlers, c, err, errlen);
  if (c->wsc == NULL) {
    free(c);
    return NULL;
  }
  conn_link(c);
  return c;
}

/* --- teardown ---------------------------------------------------------- */

void transport_free(transport_t *t) {
  if (t == NULL || t->destroying)
    return;
  t->destroying = 1;
  for (transport_conn_t *c = t->conns; c != NULL; c = c->next)
    if (c->wsc != NULL)
      wsclient_abort(c->wsc); /* on_close follows from the loop */
  /* Closes every wsi; CLOSED callbacks deliver on_close. */
  lws_context_destroy(t->ctx);
}

void transport_destroy(transport_t *t) {
  if (t == NULL)
    return;
  transport_free(t);
  /* lws on a foreign loop finishes only when destroyed again once its
   * handles have closed (4.1.6). */
  uv_run(t->loop, UV_RUN_DEFAULT);
  if (t->ctx != NULL)
    lws_context_destroy(t->ctx);
  uv_run(t->loop, UV_RUN_DEFAULT);
  if (t->ssl_ctx != NULL)
    SSL_CTX_free(t->ssl_ctx);
  free(t->ca_file);
  free(t);
}

/* --- one-shot HTTP calls ----------------------------------------------- */

/* State of one transport_http_call(), reached as the transport's hctx. */
typedef struct {
  const transport_http_call_t *call;
  transport_http_result_t *r;
  transport_t *t;
  transport_conn_t conn; /* ours: never freed by the callbacks */
  uv_timer_t timer;      /* timeout, then the deferred teardown */
  int finished;
} http_call_t;

static void http_call_stop_cb(uv_timer_t *tm) {
  http_call_t *hc = tm->data;
  uv_close((uv_handle_t *)&hc->timer, NULL);
  transport_free(hc->t);
}

/* Done, one way or another: tear down outside lws's callbacks. */
static void http_call_finish(http_call_t *hc) {
  if (hc->finished)
    return;
  hc->finished = 1;
  uv_timer_start(&hc->timer, http_call_stop_cb, 0, 0);
}

static void http_call_timeout(uv_timer_t *tm) {
  http_call_t *hc = tm->data;
  if (hc->r->error[0] == '\0')
    snprintf(hc->r->error, sizeof(hc->r->error),
             "no answer from the edge within %u ms", hc->call->timeout_ms);
  hc->r->status = 0;
  hc->finished = 1;
  uv_close((uv_handle_t *)&hc->timer, NULL);
  transport_free(hc->t);
}

static void http_call_on_close(void *ctx, transport_conn_t *c,
                               const transport_close_t *why) {
  http_call_t *hc = ctx;
  if (hc->r->status == 0 && hc->r->error[0] == '\0') {
    snprintf(hc->r->error, sizeof(hc->r->error), "%s",
             why->message[0] ? why->message : "connection closed");
    hc->r->tls_error = why->kind == TRANSPORT_END_TLS;
  }
  http_call_finish(hc);
}

static int http_call_append(http_call_t *hc, const void *in, size_t len) {
  transport_http_result_t *r = hc->r;
  char *nb = realloc(r->body, r->body_len + len + 1);
  if (nb == NULL)
    return -1;
  r->body = nb;
  memcpy(r->body + r->body_len, in, len);
  r->body_len += len;
  r->body[r->body_len] = '\0';
  return 0;
}

static int http_call_headers(http_call_t *hc, struct lws *wsi, void *in,
                             size_t len) {
  const transport_http_call_t *call = hc->call;
  unsigned char **p = in, *end = *p + len;
  if (add_auth_header(hc->t, wsi, in, len) != 0)
    return -1;
  if (call->body == NULL)
    return 0;
  char n[24];
  snprintf(n, sizeof(n), "%zu", call->body_len);
  if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                   (unsigned char *)"application/json", 16, p,
                                   end) ||
      lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH,
                                   (unsigned char *)n, (int)strlen(n), p, end))
    return -1;
  lws_client_http_body_pending(wsi, 1);
  lws_callback_on_writable(wsi);
  return 0;
}

static int http_call_send_body(http_call_t *hc, struct lws *wsi) {
  const transport_http_call_t *call = hc->call;
  uint8_t *b = malloc(LWS_PRE + call->body_len);
  if (b == NULL)
    return -1;
  memcpy(b + LWS_PRE, call->body, call->body_len);
  int n = lws_write(wsi, b + LWS_PRE, call->body_len, LWS_WRITE_HTTP_FINAL);
  free(b);
  lws_client_http_body_pending(wsi, 0);
  return n < (int)call->body_len ? -1 : 0;
}

static int http_client_callback(transport_t *t, struct lws *wsi,
                                enum lws_callback_reasons reason, void *in,
                                size_t len) {
  http_call_t *hc = t->hctx;
  switch (reason) {
  case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
    return http_call_headers(hc, wsi, in, len);
  case LWS_CALLBACK_CLIENT_HTTP_WRITEABLE:
    return hc->call->body ? http_call_send_body(hc, wsi) : 0;
  case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
    hc->r->status = (int)lws_http_client_http_response(wsi);
    return 0;
  case LWS_CALLBACK_RECEIVE_CLIENT_HTTP: {
    char buf[LWS_PRE + 4096], *p = buf + LWS_PRE;
    int n = (int)sizeof(buf) - LWS_PRE;
    return lws_http_client_read(wsi, &p, &n) < 0 ? -1 : 0;
  }
  case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
    return http_call_append(hc, in, len);
  case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
    http_call_finish(hc);
    return 0;
  case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
    hc->r->status = 0;
    client_error(&hc->conn, wsi, in);
    return 0;
  case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
    if (hc->r->status == 0 && hc->r->error[0] == '\0')
      snprintf(hc->r->error, sizeof(hc->r->error),
               "the edge closed the connection before answering");
    http_call_finish(hc);
    return 0;
  default:
    return 0;
  }
}

int transport_http_call(const transport_http_call_t *call,
                        transport_http_result_t *r) {
  memset(r, 0, sizeof(*r));
  http_call_t hc = {.call = call, .r = r};
  uv_loop_t loop;
  uv_loop_init(&loop);
  transport_handlers_t h = {.on_close = http_call_on_close};
  transport_client_opts_t o = {.url = call->url,
                               .path = call->path,
                               .token = call->token,
                               .ca_file = call->ca_file,
                               .insecure = call->insecure};
  hc.t = transport_client_new(&loop, &o, &h, &hc, r->error, sizeof(r->error));
  if (hc.t != NULL) {
    unsigned ms = call->timeout_ms ? call->timeout_ms : 30000;
    uv_timer_init(&loop, &hc.timer);
    hc.timer.data = &hc;
    uv_timer_start(&hc.timer, http_call_timeout, ms, 0);
    hc.conn.t = hc.t;
    hc.conn.http_method = call->method;
    if (client_start(&hc.conn, r->error, sizeof(r->error)) != 0)
      http_call_finish(&hc);
    uv_run(&loop, UV_RUN_DEFAULT);
    transport_destroy(hc.t);
  }
  uv_loop_close(&loop);
  if (r->status != 0 && r->body == NULL && (r->body = strdup("")) == NULL)
    r->status = 0;
  return r->status != 0 ? 0 : -1;
}

void transport_http_result_free(transport_http_result_t *r) {
  free(r->body);
  r->body = NULL;
  r->body_len = 0;
}
