#include "ws/wsclient.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "base/text.h"
#include "ws/rfc6455.h"

#define HOST_MAX 256
#define RESPONSE_MAX 8192 /* upgrade response headers */
/* One read syscall takes several TLS records. */
#define RX_CHUNK (128 * 1024)
#define PLAIN_CHUNK (64 * 1024)
/* Unsent bytes the kernel may hold: small, so that a keystroke queued
 * behind bulk data waits for little more than our own WSCLIENT_OUT_MAX. */
#define NOTSENT_LOWAT (64 * 1024)
#define CLOSE_GRACE_MS 1000
#define KEEPALIVE_S 30

typedef enum {
  WSC_RESOLVING,
  WSC_CONNECTING,
  WSC_TLS,
  WSC_UPGRADE, /* request sent, reading the response */
  WSC_OPEN,
  WSC_DONE, /* finishing: handles closing, on_close pending */
} wsc_state_t;

/* Bytes for the socket, filled in place (TLS records are written straight
 * into it by our BIO) and handed to uv_write whole. */
typedef struct {
  uv_write_t req;
  wsclient_t *w;
  size_t len, cap;
  uint8_t data[];
} out_req_t;

#define FILL_CAP (WSCLIENT_OUT_MAX + 64 * 1024)

struct wsclient {
  uv_loop_t *loop;
  wsclient_handlers_t h;
  void *ctx;
  wsc_state_t state;
  uv_getaddrinfo_t gai;
  uv_connect_t connect_req;
  uv_tcp_t tcp;
  uv_timer_t timer; /* handshake deadline, then the close grace */
  uv_idle_t idle;   /* runs pump() outside the application's calls */
  int refs;         /* handles not yet closed + a pending resolve */
  int tcp_open;
  int rx_stopped; /* input is no longer delivered (closing on an error) */
  SSL *ssl;
  BIO_METHOD *bio_method; /* our BIO: reads in_ptr, appends to fill */
  const uint8_t *in_ptr;  /* ciphertext read, not yet taken by TLS */
  size_t in_len;
  out_req_t *fill;  /* being filled, not yet handed to uv_write */
  out_req_t *spare; /* a FILL_CAP buffer kept for the next fill */
  char host[HOST_MAX];
  int port;
  int insecure;
  char *request; /* the upgrade request, until sent */
  char key[RFC6455_KEY_LEN + 1];
  char response[RESPONSE_MAX];
  size_t response_len;
  char node[WSCLIENT_NODE_MAX]; /* the 101's X-Wsmux-Node, "" when none */
  rfc6455_parser_t parser;
  /* Output. */
  size_t out_pending; /* bytes handed to uv_write, not yet written */
  int want;           /* the application has something to send */
  int idle_on;
  int closing;    /* close requested: flush, then send a close frame */
  int close_sent; /* our close frame is out */
  int peer_closed;
  int finish_on_flush; /* finish once out_pending drains */
  int close_code;
  char close_reason[124];
  transport_close_t why; /* what on_close will say */
  uint8_t tx[RFC6455_HEADER_MAX + TRANSPORT_MSG_MAX];
  uint8_t rx[RX_CHUNK];
  uint8_t plain[PLAIN_CHUNK];
};

static void pump(wsclient_t *w);
static void finish(wsclient_t *w);

/* --- TLS context ------------------------------------------------------- */

SSL_CTX *wsclient_ssl_ctx_new(const char *ca_file, int insecure, char *err,
                              size_t errlen) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == NULL) {
    snprintf(err, errlen, "cannot set up TLS");
    return NULL;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  if (insecure) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    return ctx;
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  SSL_CTX_set_default_verify_paths(ctx);
  if (ca_file != NULL &&
      SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
    snprintf(err, errlen,
             "cannot set up TLS with CA %s (not a readable PEM "
             "certificate)",
             ca_file);
    SSL_CTX_free(ctx);
    return NULL;
  }
  return ctx;
}

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
  if (w->ssl != NULL)
    SSL_free(w->ssl); /* frees the BIO */
  if (w->bio_method != NULL)
    BIO_meth_free(w->bio_method);
  free(w->fill);
  free(w->spare);
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
  if (w->state == WSC_RESOLVING)
    uv_cancel((uv_req_t *)&w->gai); /* on_resolved sees WSC_DONE */
  w->why.was_open = w->state == WSC_OPEN;
  w->state = WSC_DONE;
  close_handle(w, (uv_handle_t *)&w->timer);
  close_handle(w, (uv_handle_t *)&w->idle);
  if (w->tcp_open)
    close_handle(w, (uv_handle_t *)&w->tcp);
}

static void fail_network(wsclient_t *w, const char *what) {
  set_why(w, TRANSPORT_END_NETWORK, "cannot reach the edge at %s:%d: %s",
          w->host, w->port, what);
  finish(w);
}

/* --- output ------------------------------------------------------------ */

static void on_written(uv_write_t *req, int status) {
  out_req_t *o = (out_req_t *)req;
  wsclient_t *w = o->w;
  w->out_pending -= o->len;
  if (w->spare == NULL && o->cap == FILL_CAP)
    w->spare = o;
  else
    free(o);
  if (w->state == WSC_DONE)
    return;
  if (status != 0) {
    set_why(w,
            w->state == WSC_OPEN ? TRANSPORT_END_CLOSED : TRANSPORT_END_NETWORK,
            "connection lost: %s", uv_strerror(status));
    finish(w);
    return;
  }
  if (w->finish_on_flush && w->out_pending == 0) {
    finish(w);
    return;
  }
  if (w->want && !w->idle_on)
    pump(w);
}

/* Hand what was filled to the socket as one write. */
static int flush(wsclient_t *w) {
  out_req_t *o = w->fill;
  if (o == NULL || o->len == 0)
    return 0;
  w->fill = NULL;
  uv_buf_t b = uv_buf_init((char *)o->data, (unsigned)o->len);
  if (uv_write(&o->req, (uv_stream_t *)&w->tcp, &b, 1, on_written) != 0) {
    free(o);
    return -1;
  }
  w->out_pending += o->len;
  return 0;
}

/* Room for n more bytes in the fill buffer. */
static out_req_t *fill_room(wsclient_t *w, size_t n) {
  if (w->fill != NULL && w->fill->cap - w->fill->len >= n)
    return w->fill;
  if (flush(w) != 0)
    return NULL;
  out_req_t *o = w->spare;
  w->spare = NULL;
  size_t cap = n > FILL_CAP ? n : FILL_CAP;
  if (o == NULL || o->cap < cap) {
    free(o);
    if ((o = malloc(sizeof(*o) + cap)) == NULL)
      return NULL;
    o->cap = cap;
  }
  o->w = w;
  o->len = 0;
  return w->fill = o;
}

static int out_append(wsclient_t *w, const void *p, size_t n) {
  out_req_t *o = fill_room(w, n);
  if (o == NULL)
    return -1;
  memcpy(o->data + o->len, p, n);
  o->len += n;
  return 0;
}

/* Bytes produced but not yet handed to the socket. */
static size_t tls_backlog(wsclient_t *w) {
  return w->fill != NULL ? w->fill->len : 0;
}

/* Plaintext out: TLS records (through bio_write) or the bytes themselves
 * go into the fill buffer; the caller flushes. */
static int send_plain(wsclient_t *w, const uint8_t *p, size_t n) {
  if (w->ssl == NULL)
    return out_append(w, p, n);
  /* Our BIO never refuses, so a write takes everything. */
  return SSL_write(w->ssl, p, (int)n) == (int)n ? 0 : -1;
}

/* Frame and send payload that sits at w->tx + RFC6455_HEADER_MAX (or, for
 * control frames, anywhere with header room before it). */
static int send_frame(wsclient_t *w, int opcode, uint8_t *payload, size_t n) {
  uint8_t mask[4] = {0, 0, 0, 0}, hdr[RFC6455_HEADER_MAX];
  /* Over TLS the key is zero, a deliberate deviation from RFC 6455 5.3
   * (docs/PROTOCOL.md section 1): masking guards cleartext intermediaries
   * against attacker-chosen bytes; here nobody in between sees cleartext
   * and the payload is SSH ciphertext. lws skips unmasking a zero key,
   * which was a tenth of the edge's CPU at bulk rates. */
  if (w->ssl == NULL && RAND_bytes(mask, sizeof(mask)) != 1)
    return -1;
  size_t hl = rfc6455_header_put(hdr, opcode, n, mask);
  if (w->ssl == NULL)
    rfc6455_mask(payload, n, mask, 0);
  memcpy(payload - hl, hdr, hl);
  return send_plain(w, payload - hl, hl + n);
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
    if (w->out_pending == 0)
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
         w->out_pending + tls_backlog(w) < WSCLIENT_OUT_MAX) {
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
  if (w->state != WSC_OPEN || !w->want || w->out_pending >= WSCLIENT_OUT_MAX)
    idle_stop(w); /* on_written resumes */
}

static void on_idle(uv_idle_t *idle) {
  pump(idle->data);
}

void wsclient_want_write(wsclient_t *w) {
  w->want = 1;
  if (w->state == WSC_OPEN && !w->idle_on &&
      w->out_pending < WSCLIENT_OUT_MAX) {
    uv_idle_start(&w->idle, on_idle);
    w->idle_on = 1;
  }
}

const char *wsclient_node(const wsclient_t *w) {
  return w->node;
}

size_t wsclient_backlog(const wsclient_t *w) {
  uv_os_fd_t fd;
  int n = 0;
  if (!w->tcp_open || uv_fileno((const uv_handle_t *)&w->tcp, &fd) != 0 ||
      ioctl(fd, FIONREAD, &n) != 0 || n < 0)
    return 0;
  return (size_t)n;
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

/* The value of header `name` in the response headers, or NULL. */
static const char *find_header(char *headers, const char *name, char *out,
                               size_t outlen) {
  size_t nl = strlen(name);
  for (char *line = headers; line != NULL && *line;) {
    char *end = strstr(line, "\r\n");
    if (end == NULL)
      break;
    if ((size_t)(end - line) > nl && strncasecmp(line, name, nl) == 0 &&
        line[nl] == ':') {
      const char *v = line + nl + 1;
      while (*v == ' ' || *v == '\t')
        v++;
      size_t vl = (size_t)(end - v);
      while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
        vl--;
      snprintf(out, outlen, "%.*s", (int)vl, v);
      return out;
    }
    line = end + 2;
  }
  return NULL;
}

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

/* A complete response head in w->response (NUL-terminated). */
static void upgrade_answered(wsclient_t *w) {
  char v[256], expect[RFC6455_ACCEPT_LEN + 1];
  int status = 0;
  if (sscanf(w->response, "HTTP/1.%*[01] %3d", &status) != 1) {
    fail_network(w, "the answer is not HTTP");
    return;
  }
  char *headers = strstr(w->response, "\r\n") + 2;
  if (status != 101) {
    /* The header is the edge's text, bound for the user's terminal. */
    char esc[4 * sizeof(v)];
    int has = find_header(headers, "x-wsmux-error", v, sizeof(v)) != NULL;
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
  if (!find_header(headers, "upgrade", v, sizeof(v)) ||
      strcasecmp(v, "websocket") != 0)
    why = "no Upgrade: websocket";
  else if (!find_header(headers, "sec-websocket-accept", v, sizeof(v)) ||
           strcmp(v, expect) != 0)
    why = "wrong Sec-WebSocket-Accept";
  else if (!find_header(headers, "sec-websocket-protocol", v, sizeof(v)) ||
           strcmp(v, TRANSPORT_SUBPROTOCOL) != 0)
    why = "subprotocol " TRANSPORT_SUBPROTOCOL " not selected";
  if (why != NULL) {
    char m[128];
    snprintf(m, sizeof(m), "invalid WebSocket handshake: %s", why);
    fail_network(w, m);
    return;
  }
  if (!find_header(headers, "x-wsmux-node", w->node, sizeof(w->node)))
    w->node[0] = '\0';
  open_ws(w);
}

/* Upgrade response bytes; returns how many of them belonged to the head. */
static size_t upgrade_input(wsclient_t *w, const uint8_t *p, size_t n) {
  size_t old = w->response_len;
  size_t room = sizeof(w->response) - 1 - old;
  size_t take = n < room ? n : room;
  memcpy(w->response + old, p, take);
  w->response_len += take;
  w->response[w->response_len] = '\0';
  char *end = strstr(w->response, "\r\n\r\n");
  if (end == NULL) {
    if (w->response_len == sizeof(w->response) - 1)
      fail_network(w, "the answer's headers are too long");
    return take;
  }
  size_t head = (size_t)(end + 4 - w->response);
  end[2] = '\0'; /* keep the last header's CRLF for find_header */
  upgrade_answered(w);
  return head - old;
}

static void plain_input(wsclient_t *w, const uint8_t *p, size_t n) {
  if (w->state == WSC_UPGRADE) {
    size_t used = upgrade_input(w, p, n);
    p += used;
    n -= used;
  }
  if (w->state != WSC_OPEN || w->rx_stopped || n == 0)
    return;
  rfc6455_error_t err;
  if (rfc6455_parse(&w->parser, p, n, &frame_handlers, w, &err) != 0 &&
      err.close_code != 0 && w->state == WSC_OPEN)
    protocol_close(w, err.close_code, err.message);
}

static void send_request(wsclient_t *w) {
  w->state = WSC_UPGRADE;
  int rc = send_plain(w, (const uint8_t *)w->request, strlen(w->request));
  free(w->request);
  w->request = NULL;
  if (rc != 0 || flush(w) != 0)
    fail_network(w, "cannot send the upgrade request");
}

static void tls_failed(wsclient_t *w) {
  long v = SSL_get_verify_result(w->ssl);
  unsigned long e = ERR_peek_last_error();
  if (v != X509_V_OK)
    set_why(w, TRANSPORT_END_TLS,
            "TLS certificate of %s not accepted: %s (pass --ca FILE to "
            "trust its CA)",
            w->host, X509_verify_cert_error_string(v));
  else
    set_why(w, TRANSPORT_END_TLS, "TLS handshake with %s:%d failed: %s",
            w->host, w->port,
            e ? ERR_reason_error_string(e) : "connection closed");
  ERR_clear_error();
  finish(w);
}

static void tls_handshake(wsclient_t *w) {
  int rc = SSL_do_handshake(w->ssl);
  if (flush(w) != 0) {
    fail_network(w, "cannot send");
    return;
  }
  if (rc == 1) {
    send_request(w);
    return;
  }
  if (SSL_get_error(w->ssl, rc) != SSL_ERROR_WANT_READ)
    tls_failed(w);
}

static void eof_input(wsclient_t *w, ssize_t n) {
  if (w->state != WSC_OPEN) {
    fail_network(w, n == UV_EOF ? "connection refused or closed during the "
                                  "handshake"
                                : uv_strerror((int)n));
    return;
  }
  if (n == UV_EOF)
    set_why(w, TRANSPORT_END_CLOSED, "connection closed");
  else
    set_why(w, TRANSPORT_END_CLOSED, "connection lost: %s",
            uv_strerror((int)n));
  finish(w);
}

static void tls_input(wsclient_t *w) {
  if (w->state == WSC_TLS) {
    tls_handshake(w);
    if (w->state != WSC_UPGRADE)
      return;
  }
  while (w->state == WSC_UPGRADE || (w->state == WSC_OPEN && !w->rx_stopped)) {
    int n = SSL_read(w->ssl, w->plain, sizeof(w->plain));
    if (n > 0) {
      plain_input(w, w->plain, (size_t)n);
      continue;
    }
    int e = SSL_get_error(w->ssl, n);
    if (e == SSL_ERROR_WANT_READ)
      return;
    if (e == SSL_ERROR_ZERO_RETURN) {
      eof_input(w, UV_EOF);
    } else {
      unsigned long code = ERR_peek_last_error();
      set_why(w,
              w->state == WSC_OPEN ? TRANSPORT_END_CLOSED : TRANSPORT_END_TLS,
              "TLS error from %s: %s", w->host,
              code ? ERR_reason_error_string(code) : "protocol error");
      ERR_clear_error();
      finish(w);
    }
    return;
  }
}

static void on_alloc(uv_handle_t *hd, size_t size, uv_buf_t *b) {
  wsclient_t *w = hd->data;
  (void)size;
  *b = uv_buf_init((char *)w->rx, sizeof(w->rx));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  wsclient_t *w = s->data;
  if (n == 0 || w->state == WSC_DONE)
    return;
  if (n < 0) {
    if (w->close_sent || w->peer_closed)
      finish(w);
    else
      eof_input(w, n);
    return;
  }
  if (w->ssl == NULL) {
    plain_input(w, (const uint8_t *)b->base, (size_t)n);
  } else {
    w->in_ptr = (const uint8_t *)b->base;
    w->in_len = (size_t)n;
    tls_input(w);
    w->in_len = 0; /* TLS takes all it is given until it wants more */
  }
  if (w->state != WSC_DONE && flush(w) != 0)
    fail_network(w, "cannot send");
}

/* --- connecting -------------------------------------------------------- */

static void on_deadline(uv_timer_t *tm) {
  wsclient_t *w = tm->data;
  if (w->state != WSC_OPEN)
    fail_network(w, "no WebSocket handshake in time");
}

static void tune_socket(wsclient_t *w) {
  uv_tcp_nodelay(&w->tcp, 1);
  uv_tcp_keepalive(&w->tcp, 1, KEEPALIVE_S);
  uv_os_fd_t fd;
  if (uv_fileno((uv_handle_t *)&w->tcp, &fd) == 0) {
    int lowat = NOTSENT_LOWAT;
    setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof(lowat));
  }
}

static void on_connected(uv_connect_t *req, int status) {
  wsclient_t *w = req->data;
  if (w->state == WSC_DONE)
    return;
  if (status != 0) {
    fail_network(w, uv_strerror(status));
    return;
  }
  tune_socket(w);
  uv_read_start((uv_stream_t *)&w->tcp, on_alloc, on_read);
  if (w->ssl != NULL) {
    w->state = WSC_TLS;
    tls_handshake(w);
  } else {
    send_request(w);
  }
}

static void on_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
  wsclient_t *w = req->data;
  if (w->state == WSC_DONE) {
    /* cancelled by finish() */
  } else if (status != 0) {
    set_why(w, TRANSPORT_END_NETWORK, "cannot resolve the edge host %s: %s",
            w->host, uv_strerror(status));
    finish(w);
  } else {
    w->state = WSC_CONNECTING;
    uv_tcp_init(w->loop, &w->tcp);
    w->tcp.data = w;
    w->tcp_open = 1;
    w->refs++;
    w->connect_req.data = w;
    int rc =
        uv_tcp_connect(&w->connect_req, &w->tcp, res->ai_addr, on_connected);
    if (rc != 0)
      fail_network(w, uv_strerror(rc));
  }
  if (res != NULL)
    uv_freeaddrinfo(res);
  unref(w);
}

static int is_numeric(const char *host) {
  unsigned char b[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, host, b) == 1 || inet_pton(AF_INET6, host, b) == 1;
}

/* Our BIO: TLS reads the ciphertext libuv just read, in place, and writes
 * records straight into the fill buffer: no memory BIO copies. */
static int bio_write(BIO *b, const char *data, int len) {
  BIO_clear_retry_flags(b);
  return out_append(BIO_get_data(b), data, (size_t)len) == 0 ? len : -1;
}

static int bio_read(BIO *b, char *out, int len) {
  wsclient_t *w = BIO_get_data(b);
  BIO_clear_retry_flags(b);
  if (w->in_len == 0) {
    BIO_set_retry_read(b);
    return -1;
  }
  size_t n = (size_t)len < w->in_len ? (size_t)len : w->in_len;
  memcpy(out, w->in_ptr, n);
  w->in_ptr += n;
  w->in_len -= n;
  return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
  (void)b;
  (void)num;
  (void)ptr;
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int tls_setup(wsclient_t *w, SSL_CTX *ctx) {
  w->ssl = SSL_new(ctx);
  w->bio_method =
      BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "wsclient");
  if (w->ssl == NULL || w->bio_method == NULL)
    return -1;
  BIO_meth_set_write(w->bio_method, bio_write);
  BIO_meth_set_read(w->bio_method, bio_read);
  BIO_meth_set_ctrl(w->bio_method, bio_ctrl);
  BIO *bio = BIO_new(w->bio_method);
  if (bio == NULL)
    return -1;
  BIO_set_data(bio, w);
  BIO_set_init(bio, 1);
  SSL_set_bio(w->ssl, bio, bio); /* one reference, taken by the SSL */
  SSL_set_connect_state(w->ssl);
  static const unsigned char alpn[] = "\x08http/1.1";
  SSL_set_alpn_protos(w->ssl, alpn, sizeof(alpn) - 1);
  int numeric = is_numeric(w->host);
  if (!numeric)
    SSL_set_tlsext_host_name(w->ssl, w->host);
  if (w->insecure)
    return 0;
  X509_VERIFY_PARAM *vp = SSL_get0_param(w->ssl);
  return numeric ? (X509_VERIFY_PARAM_set1_ip_asc(vp, w->host) == 1 ? 0 : -1)
                 : (SSL_set1_host(w->ssl, w->host) == 1 ? 0 : -1);
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

static void init_handles(wsclient_t *w, unsigned deadline_ms) {
  uv_timer_init(w->loop, &w->timer);
  uv_idle_init(w->loop, &w->idle);
  w->timer.data = w->idle.data = w;
  w->refs = 2;
  uv_timer_start(&w->timer, on_deadline, deadline_ms ? deadline_ms : 15000, 0);
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
  w->insecure = o->insecure;
  snprintf(w->host, sizeof(w->host), "%s", o->host);
  rfc6455_parser_init(&w->parser, 16 * (uint64_t)TRANSPORT_MSG_MAX);
  if (rfc6455_key_new(w->key) != 0 ||
      (w->request = build_request(w, o)) == NULL ||
      (o->tls && tls_setup(w, o->ssl_ctx) != 0)) {
    snprintf(err, errlen, "cannot set up the connection to %s", o->host);
    goto fail;
  }
  w->gai.data = w;
  struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
  char port[8];
  snprintf(port, sizeof(port), "%d", o->port);
  int rc = uv_getaddrinfo(loop, &w->gai, on_resolved, o->host, port, &hints);
  if (rc != 0) {
    snprintf(err, errlen, "cannot resolve the edge host %s: %s", o->host,
             uv_strerror(rc));
    goto fail;
  }
  init_handles(w, o->handshake_ms);
  w->refs++; /* the pending resolve */
  return w;
fail:
  if (w->ssl != NULL)
    SSL_free(w->ssl);
  if (w->bio_method != NULL)
    BIO_meth_free(w->bio_method);
  free(w->request);
  free(w);
  return NULL;
}
