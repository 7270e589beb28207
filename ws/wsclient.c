#include "ws/wsclient.h"

#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/text.h"
#include "ws/http1.h"
#include "ws/netconn.h"
#include "ws/rfc6455.h"

#define HOST_MAX 256
#define CLOSE_GRACE_MS 1000

typedef enum {
  WSC_CONNECTING, /* the stream: resolve, connect, proxy, TLS */
  WSC_UPGRADE,    /* request sent, reading the response */
  WSC_OPEN,
  WSC_DONE, /* finishing: handles closing, on_close pending */
} wsc_state_t;

struct wsclient {
  uv_loop_t *loop;
  wsclient_handlers_t h;
  void *ctx;
  wsc_state_t state;
  netconn_t *nc;    /* the stream; NULL once finished */
  uv_timer_t timer; /* handshake deadline, then the close grace */
  uv_idle_t idle;   /* runs pump() outside the application's calls */
  int refs;         /* handles not yet closed */
  int tls;
  int rx_stopped; /* input is no longer delivered (closing on an error) */
  char host[HOST_MAX];
  int port;
  char *request; /* the upgrade request, until sent */
  char key[RFC6455_KEY_LEN + 1];
  http1_head_t response;        /* the answer to the upgrade */
  char node[WSCLIENT_NODE_MAX]; /* the 101's X-Wsmux-Node, "" when none */
  rfc6455_parser_t parser;
  /* Output. */
  int want; /* the application has something to send */
  int idle_on;
  int closing;    /* close requested: flush, then send a close frame */
  int close_sent; /* our close frame is out */
  int peer_closed;
  int finish_on_flush; /* finish once the stream has sent everything */
  int close_code;
  char close_reason[124];
  transport_close_t why; /* what on_close will say */
  uint8_t tx[RFC6455_HEADER_MAX + TRANSPORT_MSG_MAX];
};

static void pump(wsclient_t *w);
static void finish(wsclient_t *w);

/* --- ending ------------------------------------------------------------ */

static void set_why(wsclient_t *w, transport_end_t kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The first reason recorded is the one reported. */
static void set_why(wsclient_t *w, transport_end_t kind, const char *fmt, ...) {
  if (w->why.message[0] != '\0')
    return;
  w->why.kind = kind;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(w->why.message, sizeof(w->why.message), fmt, ap);
  va_end(ap);
}

static void unref(wsclient_t *w) {
  if (--w->refs > 0)
    return;
  w->h.on_close(w->ctx, &w->why);
  free(w->request);
  free(w);
}

static void on_handle_closed(uv_handle_t *hd) {
  unref(hd->data);
}

static void close_handle(wsclient_t *w, uv_handle_t *hd) {
  if (!uv_is_closing(hd))
    uv_close(hd, on_handle_closed);
}

/* Stop everything; on_close follows from the last handle's close. */
static void finish(wsclient_t *w) {
  if (w->state == WSC_DONE)
    return;
  w->why.was_open = w->state == WSC_OPEN;
  w->state = WSC_DONE;
  netconn_close(w->nc);
  w->nc = NULL;
  close_handle(w, (uv_handle_t *)&w->timer);
  close_handle(w, (uv_handle_t *)&w->idle);
}

static void fail_network(wsclient_t *w, const char *what) {
  set_why(w, TRANSPORT_END_NETWORK, "cannot reach the edge at %s:%d: %s",
          w->host, w->port, what);
  finish(w);
}

/* --- output ------------------------------------------------------------ */

static int flush(wsclient_t *w) {
  return netconn_flush(w->nc);
}

/* Frame and send payload that sits at w->tx + RFC6455_HEADER_MAX (or, for
 * control frames, anywhere with header room before it). */
static int send_frame(wsclient_t *w, int opcode, uint8_t *payload, size_t n) {
  uint8_t mask[4] = {0, 0, 0, 0}, hdr[RFC6455_HEADER_MAX];
  /* Over TLS the key is zero, a deliberate deviation from RFC 6455 5.3
   * (docs/PROTOCOL.md section 1): masking guards cleartext intermediaries
   * against attacker-chosen bytes; here nobody in between sees cleartext
   * (an HTTP proxy only relays the TLS records of its tunnel) and the
   * payload is SSH ciphertext. lws skips unmasking a zero key, which was a
   * tenth of the edge's CPU at bulk rates. */
  if (!w->tls && RAND_bytes(mask, sizeof(mask)) != 1)
    return -1;
  size_t hl = rfc6455_header_put(hdr, opcode, n, mask);
  if (!w->tls)
    rfc6455_mask(payload, n, mask, 0);
  memcpy(payload - hl, hdr, hl);
  return netconn_write(w->nc, payload - hl, hl + n);
}

static int send_control(wsclient_t *w, int opcode, const uint8_t *p, size_t n) {
  uint8_t buf[RFC6455_HEADER_MAX + RFC6455_CONTROL_MAX];
  if (n > RFC6455_CONTROL_MAX)
    n = RFC6455_CONTROL_MAX;
  memcpy(buf + RFC6455_HEADER_MAX, p, n);
  return send_frame(w, opcode, buf + RFC6455_HEADER_MAX, n);
}

static int send_close_frame(wsclient_t *w) {
  uint8_t p[2 + sizeof(w->close_reason)];
  size_t rl = strnlen(w->close_reason, RFC6455_CONTROL_MAX - 2);
  p[0] = (uint8_t)(w->close_code >> 8);
  p[1] = (uint8_t)w->close_code;
  memcpy(p + 2, w->close_reason, rl);
  w->close_sent = 1;
  return send_control(w, RFC6455_OP_CLOSE, p, 2 + rl);
}

static void on_close_grace(uv_timer_t *tm) {
  finish(tm->data);
}

/* Our close frame is queued: wait for the server's answer, briefly. */
static void await_close_answer(wsclient_t *w) {
  if (w->peer_closed) {
    w->finish_on_flush = 1;
    if (netconn_unsent(w->nc) == 0)
      finish(w);
    return;
  }
  uv_timer_start(&w->timer, on_close_grace, CLOSE_GRACE_MS, 0);
}

static void idle_stop(wsclient_t *w) {
  if (w->idle_on) {
    uv_idle_stop(&w->idle);
    w->idle_on = 0;
  }
}

/* Fill the socket up to WSCLIENT_OUT_MAX with the application's messages,
 * then (closing) the close frame. */
static void pump(wsclient_t *w) {
  if (w->state != WSC_OPEN || w->close_sent) {
    idle_stop(w);
    return;
  }
  int rc = 0;
  while (rc == 0 && w->want && w->state == WSC_OPEN &&
         netconn_unsent(w->nc) < WSCLIENT_OUT_MAX) {
    uint8_t *p = w->tx + RFC6455_HEADER_MAX;
    size_t n = w->h.on_writable(w->ctx, p, TRANSPORT_MSG_MAX);
    if (w->state != WSC_OPEN)
      return; /* the application aborted from inside */
    if (n == 0)
      w->want = 0;
    else
      rc = send_frame(w, RFC6455_OP_BINARY, p, n);
  }
  if (rc == 0 && !w->want && w->closing && !w->close_sent)
    rc = send_close_frame(w);
  if (rc == 0)
    rc = flush(w);
  if (rc != 0) {
    set_why(w, TRANSPORT_END_CLOSED, "cannot send on the WebSocket");
    finish(w);
    return;
  }
  if (w->close_sent)
    await_close_answer(w);
  if (w->state != WSC_OPEN || !w->want ||
      netconn_unsent(w->nc) >= WSCLIENT_OUT_MAX)
    idle_stop(w); /* nc_drain resumes */
}

static void on_idle(uv_idle_t *idle) {
  pump(idle->data);
}

void wsclient_want_write(wsclient_t *w) {
  w->want = 1;
  if (w->state == WSC_OPEN && !w->idle_on &&
      netconn_unsent(w->nc) < WSCLIENT_OUT_MAX) {
    uv_idle_start(&w->idle, on_idle);
    w->idle_on = 1;
  }
}

const char *wsclient_node(const wsclient_t *w) {
  return w->node;
}

size_t wsclient_backlog(const wsclient_t *w) {
  return w->nc != NULL ? netconn_backlog(w->nc) : 0;
}

void wsclient_close(wsclient_t *w, int code, const char *reason) {
  if (w->closing || w->state == WSC_DONE)
    return;
  w->closing = 1;
  w->close_code = code;
  snprintf(w->close_reason, sizeof(w->close_reason), "%s",
           reason ? reason : "");
  set_why(w, TRANSPORT_END_CLOSED, "%s", w->close_reason);
  if (w->state != WSC_OPEN) {
    finish(w);
    return;
  }
  /* The pump drains the application's messages, then sends the close. */
  wsclient_want_write(w);
}

void wsclient_abort(wsclient_t *w) {
  set_why(w, TRANSPORT_END_CLOSED, "connection closed");
  if (w->state == WSC_DONE)
    return;
  finish(w); /* on_close comes from the loop, after the handles close */
}

/* --- input ------------------------------------------------------------- */

/* Stop reading and close with code (1002 for a protocol error). */
static void protocol_close(wsclient_t *w, int code, const char *msg) {
  w->rx_stopped = 1;
  w->want = 0;
  if (w->closing)
    return;
  w->closing = 1;
  w->close_code = code;
  snprintf(w->close_reason, sizeof(w->close_reason), "%s", msg);
  set_why(w, TRANSPORT_END_CLOSED, "%s", msg);
  if (send_close_frame(w) != 0 || flush(w) != 0) {
    finish(w);
    return;
  }
  await_close_answer(w);
}

static int rx_data(void *ctx, const uint8_t *p, size_t n, int eom) {
  wsclient_t *w = ctx;
  char msg[124] = "";
  if (w->parser.msg_opcode != RFC6455_OP_BINARY) {
    protocol_close(w, TRANSPORT_CLOSE_PROTOCOL,
                   "text messages are not allowed");
    return -1;
  }
  if (w->h.on_rx(w->ctx, p, n, eom, msg, sizeof(msg)) != 0) {
    if (w->state == WSC_OPEN)
      protocol_close(w, TRANSPORT_CLOSE_PROTOCOL, msg);
    return -1;
  }
  return w->state == WSC_OPEN && !w->rx_stopped ? 0 : -1;
}

static void peer_close(wsclient_t *w, const uint8_t *p, size_t n) {
  w->peer_closed = 1;
  w->rx_stopped = 1;
  if (n >= 2) {
    int code = (p[0] << 8) | p[1];
    /* The edge's bytes, for the user's log: escaped (base/text.h). RFC
     * 6455 caps the reason at 123 bytes; a longer one is cut. */
    char reason[4 * 123 + 1];
    text_escape(reason, sizeof(reason), (const char *)p + 2, n - 2);
    w->why.close_code = code;
    set_why(w, TRANSPORT_END_CLOSED, "closed by peer (%d%s%s)", code,
            n > 2 ? ": " : "", reason);
  } else {
    set_why(w, TRANSPORT_END_CLOSED, "closed by peer");
  }
  if (!w->close_sent) {
    /* Echo the code (RFC 6455 5.5.1); whatever the app still had is moot. */
    w->want = 0;
    w->close_code = n >= 2 ? w->why.close_code : TRANSPORT_CLOSE_NORMAL;
    w->close_reason[0] = '\0';
    if (send_close_frame(w) != 0 || flush(w) != 0) {
      finish(w);
      return;
    }
  }
  await_close_answer(w);
}

static int rx_control(void *ctx, int opcode, const uint8_t *p, size_t n) {
  wsclient_t *w = ctx;
  if (opcode == RFC6455_OP_PING && !w->close_sent)
    return send_control(w, RFC6455_OP_PONG, p, n) == 0 ? 0 : -1;
  if (opcode == RFC6455_OP_CLOSE) {
    peer_close(w, p, n);
    return -1; /* nothing follows a close frame */
  }
  return 0;
}

static const rfc6455_handlers_t frame_handlers = {rx_data, rx_control};

static int open_ws(wsclient_t *w) {
  w->state = WSC_OPEN;
  uv_timer_stop(&w->timer);
  if (w->h.on_open(w->ctx) != 0) {
    set_why(w, TRANSPORT_END_CLOSED, "closed by the application");
    finish(w);
    return -1;
  }
  return 0;
}

/* A complete response head in w->response.buf (NUL-terminated). */
static void upgrade_answered(wsclient_t *w) {
  char v[256], expect[RFC6455_ACCEPT_LEN + 1], reason[HTTP1_REASON_MAX];
  int status = 0;
  const char *head = w->response.buf;
  if (http1_status(head, &status, reason, sizeof(reason)) != 0) {
    fail_network(w, "the answer is not HTTP");
    return;
  }
  if (status != 101) {
    /* The header is the edge's text, bound for the user's terminal. */
    char esc[4 * sizeof(v)];
    int has = http1_header(head, "x-wsmux-error", v, sizeof(v)) != NULL;
    if (has)
      text_escape(esc, sizeof(esc), v, strlen(v));
    w->why.http_status = status;
    set_why(w, TRANSPORT_END_HTTP, "%s",
            has ? esc : "the edge refused the request");
    finish(w);
    return;
  }
  rfc6455_accept_for(w->key, expect);
  const char *why = NULL;
  if (!http1_header(head, "upgrade", v, sizeof(v)) ||
      strcasecmp(v, "websocket") != 0)
    why = "no Upgrade: websocket";
  else if (!http1_header(head, "sec-websocket-accept", v, sizeof(v)) ||
           strcmp(v, expect) != 0)
    why = "wrong Sec-WebSocket-Accept";
  else if (!http1_header(head, "sec-websocket-protocol", v, sizeof(v)) ||
           strcmp(v, TRANSPORT_SUBPROTOCOL) != 0)
    why = "subprotocol " TRANSPORT_SUBPROTOCOL " not selected";
  if (why != NULL) {
    char m[128];
    snprintf(m, sizeof(m), "invalid WebSocket handshake: %s", why);
    fail_network(w, m);
    return;
  }
  if (!http1_header(head, "x-wsmux-node", w->node, sizeof(w->node)))
    w->node[0] = '\0';
  open_ws(w);
}

/* Upgrade response bytes; returns how many of them belonged to the head. */
static size_t upgrade_input(wsclient_t *w, const uint8_t *p, size_t n) {
  size_t used;
  int rc = http1_head_feed(&w->response, p, n, &used);
  if (rc == HTTP1_HEAD_TOO_LONG)
    fail_network(w, "the answer's headers are too long");
  else if (rc == HTTP1_HEAD_DONE)
    upgrade_answered(w);
  return used;
}

/* Plaintext from the edge: the upgrade's answer, then frames. */
static int nc_data(void *ctx, const uint8_t *p, size_t n) {
  wsclient_t *w = ctx;
  if (w->state == WSC_UPGRADE) {
    size_t used = upgrade_input(w, p, n);
    p += used;
    n -= used;
  }
  if (w->state == WSC_OPEN && !w->rx_stopped && n > 0) {
    rfc6455_error_t err;
    if (rfc6455_parse(&w->parser, p, n, &frame_handlers, w, &err) != 0 &&
        err.close_code != 0 && w->state == WSC_OPEN)
      protocol_close(w, err.close_code, err.message);
  }
  return (w->state == WSC_OPEN || w->state == WSC_UPGRADE) && !w->rx_stopped
             ? 0
             : -1;
}

/* The stream is up: ask for the upgrade. */
static void nc_up(void *ctx) {
  wsclient_t *w = ctx;
  w->state = WSC_UPGRADE;
  int rc = netconn_write(w->nc, w->request, strlen(w->request));
  free(w->request);
  w->request = NULL;
  if (rc != 0 || flush(w) != 0)
    fail_network(w, "cannot send the upgrade request");
}

static void nc_drain(void *ctx) {
  wsclient_t *w = ctx;
  if (w->finish_on_flush && netconn_unsent(w->nc) == 0) {
    finish(w);
    return;
  }
  if (w->want && !w->idle_on)
    pump(w);
}

static void nc_end(void *ctx, const netconn_end_t *e) {
  wsclient_t *w = ctx;
  /* After a close frame either way the reason is already recorded. */
  if (w->state == WSC_OPEN)
    set_why(w, TRANSPORT_END_CLOSED, "%s", e->message);
  else if (e->up && e->eof)
    set_why(w, TRANSPORT_END_NETWORK,
            "cannot reach the edge at %s:%d: connection refused or closed "
            "during the handshake",
            w->host, w->port);
  else if (e->up && e->kind == TRANSPORT_END_CLOSED)
    set_why(w, TRANSPORT_END_NETWORK, "cannot reach the edge at %s:%d: %s",
            w->host, w->port, e->message);
  else
    set_why(w, e->kind, "%s", e->message);
  if (e->kind == TRANSPORT_END_PROXY)
    w->why.http_status = e->proxy_status;
  finish(w);
}

static const netconn_handlers_t nc_handlers = {nc_up, nc_data, nc_drain,
                                               nc_end};

/* --- connecting -------------------------------------------------------- */

static void on_deadline(uv_timer_t *tm) {
  wsclient_t *w = tm->data;
  if (w->state == WSC_OPEN || w->state == WSC_DONE)
    return;
  if (!netconn_fail_timeout(w->nc))
    fail_network(w, "no WebSocket handshake in time");
}

static char *build_request(wsclient_t *w, const wsclient_opts_t *o) {
  char hostport[HOST_MAX + 8];
  int dflt = o->port == (o->tls ? 443 : 80);
  int v6 = strchr(o->host, ':') != NULL;
  snprintf(hostport, sizeof(hostport), "%s%s%s", v6 ? "[" : "", o->host,
           v6 ? "]" : "");
  if (!dflt)
    snprintf(hostport + strlen(hostport), 8, ":%d", o->port);
  const char *fmt = "GET %s HTTP/1.1\r\n"
                    "Host: %s\r\n"
                    "Upgrade: websocket\r\n"
                    "Connection: Upgrade\r\n"
                    "Sec-WebSocket-Key: %s\r\n"
                    "Sec-WebSocket-Version: 13\r\n"
                    "Sec-WebSocket-Protocol: %s\r\n"
                    "%s\r\n";
  const char *extra = o->headers ? o->headers : "";
  int n =
      snprintf(NULL, 0, fmt, o->path, hostport, w->key, o->subprotocol, extra);
  char *r = malloc((size_t)n + 1);
  if (r != NULL)
    snprintf(r, (size_t)n + 1, fmt, o->path, hostport, w->key, o->subprotocol,
             extra);
  return r;
}

wsclient_t *wsclient_connect(uv_loop_t *loop, const wsclient_opts_t *o,
                             const wsclient_handlers_t *h, void *ctx, char *err,
                             size_t errlen) {
  wsclient_t *w = calloc(1, sizeof(*w));
  if (w == NULL) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  w->loop = loop;
  w->h = *h;
  w->ctx = ctx;
  w->port = o->port;
  w->tls = o->tls;
  snprintf(w->host, sizeof(w->host), "%s", o->host);
  rfc6455_parser_init(&w->parser, 16 * (uint64_t)TRANSPORT_MSG_MAX);
  if (rfc6455_key_new(w->key) != 0 ||
      (w->request = build_request(w, o)) == NULL) {
    snprintf(err, errlen, "cannot set up the connection to %s", o->host);
    free(w->request);
    free(w);
    return NULL;
  }
  netconn_opts_t no = {.host = o->host,
                       .port = o->port,
                       .tls = o->tls,
                       .ssl_ctx = o->ssl_ctx,
                       .insecure = o->insecure,
                       .proxy = o->proxy};
  w->nc = netconn_connect(loop, &no, &nc_handlers, w, err, errlen);
  if (w->nc == NULL) {
    free(w->request);
    free(w);
    return NULL;
  }
  w->state = WSC_CONNECTING;
  uv_timer_init(loop, &w->timer);
  uv_idle_init(loop, &w->idle);
  w->timer.data = w->idle.data = w;
  w->refs = 2;
  uv_timer_start(&w->timer, on_deadline,
                 o->handshake_ms ? o->handshake_ms : 15000, 0);
  return w;
}
