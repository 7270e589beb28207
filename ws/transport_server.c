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

#include <libwebsockets.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>

#include "ws/transport_impl.h"

#include <assert.h>

#define PATH_MAX_LEN 512
#define TOKEN_MAX_LEN 1024
#define TRANSPORT_NODE_MAX 129
#define ADDR_MAX 64
#define XFF_MAX 512
/* Socket buffers sized for whole messages, instead of lws's 4 KiB default. */
#define RX_BUFFER (64 * 1024)
#define SERV_BUF (TRANSPORT_MSG_MAX + LWS_PRE + 1024)

/* A WebSocket connection: the per-session data of protocols[1], so lws
 * allocates it (zeroed) with the wsi and frees it after CLOSED. */
typedef struct server_conn server_conn_t;
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

struct transport_server {
  uv_loop_t *loop;
  char node_id[TRANSPORT_NODE_MAX]; /* "" when none */
  struct lws_context *ctx;
  transport_handlers_t h;
  void *hctx;
  void *loops[2];
  struct lws_protocols protocols[3];
  server_conn_t *conns;
  int closing;
  uint64_t handshake_ms; /* the timeout lws applies */
  uint8_t txbuf[LWS_PRE + TRANSPORT_MSG_MAX];
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

static void describe_peer_close(server_conn_t *c, const void *in, size_t len,
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

/* Where the request came from (bufs of ADDR_MAX and XFF_MAX). */
static void read_origin(struct lws *wsi, char *peer, char *xff,
                        transport_origin_t *o) {
  if (lws_get_peer_simple(wsi, peer, ADDR_MAX) == NULL ||
      strncmp(peer, "getpeername", 11) == 0)
    snprintf(peer, ADDR_MAX, "unknown");
  /* A known token in lws 4.1.6; repeated lines come joined with ",". */
  if (lws_hdr_copy(wsi, xff, XFF_MAX, WSI_TOKEN_X_FORWARDED_FOR) < 0)
    xff[0] = '\0';
  o->peer = peer;
  o->forwarded_for = xff;
}

/* The parts of an upgrade request authorize() looks at. */
typedef struct {
  char path[PATH_MAX_LEN];
  char auth[TOKEN_MAX_LEN + 8];
  char resume[64];
  char node[TRANSPORT_NODE_MAX];
  char peer[ADDR_MAX];
  char xff[XFF_MAX];
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
  read_origin(wsi, u->peer, u->xff, &u->up.origin);
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

static int confirm_upgrade(transport_server_t *t, struct lws *wsi,
                           const char *in) {
  upgrade_req_t u;
  char msg[256];
  uint8_t scratch[TRANSPORT_AUTH_MAX];
  if (in == NULL || strcasecmp(in, "websocket") != 0)
    return http_reject(wsi, 400, "only WebSocket upgrades are served");
  if (!offers_subprotocol(wsi))
    return http_reject(wsi, 400,
                       "the " TRANSPORT_SUBPROTOCOL
                       " WebSocket subprotocol is required");
  if (read_upgrade(wsi, &u) != 0)
    return http_reject(wsi, 404, "unknown path");
  int status = t->h.authorize(t->hctx, &u.up, scratch, msg, sizeof(msg));
  return status == 0 ? 0 : http_reject(wsi, (unsigned)status, msg);
}

/*
 * A request handed to on_http and not answered yet. Allocated apart from
 * lws's per-session data because either side may end first: the
 * application answers (transport_http_respond) or lws closes the
 * connection (CLOSED_HTTP clears wsi). The one that comes second frees it.
 */
struct transport_http {
  struct lws *wsi; /* NULL once the connection is gone */
  int answered;
  int deferred; /* on_http returned without answering */
  transport_http_response_t resp;
  char *headers; /* resp.headers, copied */
};

/* A plain HTTP request being received (protocols[0]'s per-session data,
 * zeroed by lws; body freed on close). */
typedef struct {
  char method[8];
  char path[PATH_MAX_LEN];
  char bearer[TOKEN_MAX_LEN + 8];
  char peer[ADDR_MAX];
  char xff[XFF_MAX];
  uint8_t *body;
  size_t body_len;
  int too_big;
  transport_http_t *pending; /* on_http did not answer at once */
} http_req_t;

/* An answer lws may take this long to be given, so that a request whose
 * answer never comes is not kept for ever (the store's own timeouts are
 * far shorter). */
#define HTTP_ANSWER_TIMEOUT_S 60

static const struct {
  enum lws_token_indexes tok;
  const char *name;
} http_methods[] = {
    {WSI_TOKEN_GET_URI, "GET"},       {WSI_TOKEN_POST_URI, "POST"},
    {WSI_TOKEN_PATCH_URI, "PATCH"},   {WSI_TOKEN_PUT_URI, "PUT"},
    {WSI_TOKEN_DELETE_URI, "DELETE"},
};

/* Add "Name: value\r\n" lines (NULL: none) to a response head. */
static int add_header_lines(struct lws *wsi, const char *lines,
                            unsigned char **p, unsigned char *end) {
  while (lines != NULL && *lines != '\0') {
    const char *eol = strstr(lines, "\r\n");
    const char *colon = strchr(lines, ':');
    if (eol == NULL || colon == NULL || colon > eol)
      return -1;
    char name[128];
    size_t nlen = (size_t)(colon - lines) + 1; /* with the colon */
    if (nlen >= sizeof(name))
      return -1;
    memcpy(name, lines, nlen);
    name[nlen] = '\0';
    const char *v = colon + 1;
    while (*v == ' ')
      v++;
    if (lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                    (const unsigned char *)v, (int)(eol - v), p,
                                    end))
      return -1;
    lines = eol + 2;
  }
  return 0;
}

/* Write a whole response (headers and body) and finish the transaction. */
static int http_respond(struct lws *wsi, int status, const char *ctype,
                        const char *headers, const char *body, size_t len) {
  size_t hlen = headers != NULL ? strlen(headers) : 0;
  size_t cap = LWS_PRE + 1024 + hlen + len;
  uint8_t *b = malloc(cap);
  if (b == NULL)
    return -1;
  uint8_t *start = b + LWS_PRE, *p = start, *end = b + cap;
  int rc = -1;
  /* A 204 has no body and must not announce one (RFC 9110 8.6). */
  lws_filepos_t clen = status == 204 ? LWS_ILLEGAL_HTTP_CONTENT_LEN : len;
  if (lws_add_http_common_headers(wsi, (unsigned)status, ctype, clen, &p,
                                  end) == 0 &&
      add_header_lines(wsi, headers, &p, end) == 0 &&
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

static void http_handle_free(transport_http_t *h) {
  free(h->resp.body);
  free(h->headers);
  free(h);
}

/* Write h's answer on its connection and free h. */
static int http_write_answer(transport_http_t *h) {
  int rc =
      http_respond(h->wsi, h->resp.status, h->resp.content_type, h->headers,
                   h->resp.body, h->resp.body ? h->resp.body_len : 0);
  http_handle_free(h);
  return rc;
}

void transport_http_respond(transport_http_t *h,
                            transport_http_response_t *resp) {
  assert(!h->answered);
  h->answered = 1;
  h->resp = *resp;
  resp->body = NULL;
  h->headers = resp->headers != NULL ? strdup(resp->headers) : NULL;
  if (resp->headers != NULL && h->headers == NULL)
    h->resp.status = 500; /* out of memory: no half-headed answer */
  h->resp.headers = NULL;
  if (h->wsi == NULL) {
    http_handle_free(h); /* the client went away meanwhile */
    return;
  }
  if (h->deferred) {
    /* Answered later, from outside lws: wake the connection to write. */
    lws_rx_flow_control(h->wsi, 1);
    lws_callback_on_writable(h->wsi);
  }
}

static int http_dispatch(transport_server_t *t, struct lws *wsi,
                         http_req_t *r) {
  if (r->too_big) {
    static const char msg[] = "{\"error\": \"request body too large\"}\n";
    return http_respond(wsi, 413, "application/json", NULL, msg,
                        sizeof(msg) - 1);
  }
  if (t->h.on_http == NULL)
    return http_reject(wsi, 404, "not found: this is a wsmux edge");
  transport_http_t *h = calloc(1, sizeof(*h));
  if (h == NULL)
    return -1;
  h->wsi = wsi;
  transport_http_request_t req = {.method = r->method,
                                  .path = r->path,
                                  .bearer = r->bearer,
                                  .body = r->body,
                                  .body_len = r->body_len};
  read_origin(wsi, r->peer, r->xff, &req.origin);
  t->h.on_http(t->hctx, h, &req);
  if (h->answered)
    return http_write_answer(h);
  /* Deferred: no reading meanwhile (lws would spin on a closed client's
   * readable socket, and pipelined requests wait), and a bound on the
   * wait. */
  r->pending = h;
  h->deferred = 1;
  lws_rx_flow_control(wsi, 0);
  lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, HTTP_ANSWER_TIMEOUT_S);
  return 0;
}

/* The application answered a deferred request: write it now. */
static int http_writeable(struct lws *wsi, http_req_t *r) {
  transport_http_t *h = r->pending;
  if (h == NULL || !h->answered)
    return 0;
  r->pending = NULL;
  lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
  return http_write_answer(h);
}

/* The connection is gone: an answer still to come is dropped on arrival. */
static void http_forget(struct lws *wsi, http_req_t *r) {
  transport_http_t *h = r->pending;
  if (h == NULL)
    return;
  r->pending = NULL;
  if (h->answered)
    http_handle_free(h);
  else
    h->wsi = NULL;
}

/* Headers are in: note method, path and token; wait for a body if any. */
static int http_begin(transport_server_t *t, struct lws *wsi, http_req_t *r) {
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

static void handshake_started(transport_server_t *t, struct lws *wsi) {
  lws_set_opaque_user_data(wsi, (void *)(uintptr_t)(uv_now(t->loop) + 1));
}

static void handshake_done(struct lws *wsi) {
  lws_set_opaque_user_data(wsi, NULL);
}

static void handshake_check(transport_server_t *t, struct lws *wsi) {
  uintptr_t mark = (uintptr_t)lws_get_opaque_user_data(wsi);
  if (mark == 0)
    return;
  handshake_done(wsi);
  if (!t->closing && t->h.on_handshake_timeout != NULL &&
      uv_now(t->loop) + HANDSHAKE_SLACK_MS >= (mark - 1) + t->handshake_ms)
    t->h.on_handshake_timeout(t->hctx);
}

static int http_callback(struct lws *wsi, enum lws_callback_reasons reason,
                         void *user, void *in, size_t len) {
  transport_server_t *t = lws_context_user(lws_get_context(wsi));
  http_req_t *r = user;
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
  case LWS_CALLBACK_HTTP_WRITEABLE:
    return r ? http_writeable(wsi, r) : 0;
  case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
  case LWS_CALLBACK_CLOSED_HTTP:
    if (r != NULL) {
      http_forget(wsi, r);
      free(r->body);
      r->body = NULL;
    }
    return 0;
  default:
    return lws_callback_http_dummy(wsi, reason, user, in, len);
  }
}

static void set_protocols(transport_server_t *t) {
  t->protocols[0] =
      (struct lws_protocols){.name = "http",
                             .callback = http_callback,
                             .per_session_data_size = sizeof(http_req_t)};
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
  t->handshake_ms = (uint64_t)info.timeout_secs * 1000;
  if (opts->node_id != NULL)
    snprintf(t->node_id, sizeof(t->node_id), "%s", opts->node_id);
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
  free(t);
}
