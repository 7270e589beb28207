/* A client's byte stream to the edge: TCP, HTTP proxy, TLS. See netconn.h. */
#include "ws/netconn.h"

#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "ws/http1.h"

#define HOST_MAX 256
/* One read syscall takes several TLS records. */
#define RX_CHUNK (128 * 1024)
#define PLAIN_CHUNK (64 * 1024)
/* Unsent bytes the kernel may hold: small, so that a keystroke queued
 * behind bulk data waits for little more than the owner's own bound. */
#define NOTSENT_LOWAT (64 * 1024)
#define KEEPALIVE_S 30
/* The fill buffer: a whole WebSocket bound's worth of records and more. */
#define FILL_CAP (192 * 1024)

typedef enum {
  NC_RESOLVING,
  NC_CONNECTING,
  NC_PROXY, /* CONNECT sent, reading the proxy's answer */
  NC_TLS,
  NC_UP,
  NC_ENDED, /* on_end delivered */
} nc_state_t;

/* Bytes for the socket, filled in place (TLS records are written straight
 * into it by our BIO) and handed to uv_write whole. */
typedef struct {
  uv_write_t req;
  netconn_t *c;
  size_t len, cap;
  int secret; /* the CONNECT request: wiped once written */
  uint8_t data[];
} out_req_t;

struct netconn {
  uv_loop_t *loop;
  netconn_handlers_t h;
  void *ctx;
  nc_state_t state;
  int closing;      /* netconn_close() was called: no more callbacks */
  int rx_stopped;   /* on_data asked for no more data */
  int proxy_status; /* the proxy's answer to CONNECT, once read */
  int refs;         /* the TCP handle + a pending resolve */
  int resolving;    /* the resolve has not called back yet */
  uv_getaddrinfo_t gai;
  uv_connect_t connect_req;
  uv_tcp_t tcp;
  SSL *ssl;
  BIO_METHOD *bio_method; /* our BIO: reads in_ptr, appends to fill */
  const uint8_t *in_ptr;  /* ciphertext read, not yet taken by TLS */
  size_t in_len;
  out_req_t *fill;    /* being filled, not yet handed to uv_write */
  out_req_t *spare;   /* a FILL_CAP buffer kept for the next fill */
  size_t out_pending; /* handed to uv_write, not yet written */
  char host[HOST_MAX];
  int port;
  int insecure;
  int via_proxy;
  http_proxy_t proxy;
  http1_head_t head; /* the proxy's answer to CONNECT */
  uint8_t rx[RX_CHUNK];
  uint8_t plain[PLAIN_CHUNK];
};

/* --- TLS context ------------------------------------------------------- */

SSL_CTX *netconn_ssl_ctx_new(const char *ca_file, int insecure, char *err,
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

static void end(netconn_t *c, transport_end_t kind, int eof, const char *fmt,
                ...) __attribute__((format(printf, 4, 5)));

/* Stop reading and tell the owner, once. */
static void end(netconn_t *c, transport_end_t kind, int eof, const char *fmt,
                ...) {
  if (c->closing || c->state == NC_ENDED)
    return;
  netconn_end_t e = {.kind = kind,
                     .up = c->state == NC_UP,
                     .eof = eof,
                     .proxy_status = c->proxy_status};
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e.message, sizeof(e.message), fmt, ap);
  va_end(ap);
  c->state = NC_ENDED;
  if (uv_is_active((uv_handle_t *)&c->tcp))
    uv_read_stop((uv_stream_t *)&c->tcp);
  c->h.on_end(c->ctx, &e);
}

/* While connecting: the edge cannot be reached, saying through what. */
static void fail_edge(netconn_t *c, transport_end_t kind, const char *what) {
  if (c->via_proxy)
    end(c, kind, 0,
        "cannot reach the edge at %s:%d through the HTTP proxy "
        "at %s: %s",
        c->host, c->port, c->proxy.display, what);
  else
    end(c, kind, 0, "cannot reach the edge at %s:%d: %s", c->host, c->port,
        what);
}

static void destroy(netconn_t *c) {
  assert(c->closing);
  if (c->ssl != NULL)
    SSL_free(c->ssl); /* frees the BIO */
  if (c->bio_method != NULL)
    BIO_meth_free(c->bio_method);
  free(c->fill);
  free(c->spare);
  free(c);
}

static void unref(netconn_t *c) {
  if (--c->refs == 0)
    destroy(c);
}

static void on_tcp_closed(uv_handle_t *hd) {
  unref(hd->data);
}

void netconn_close(netconn_t *c) {
  if (c == NULL || c->closing)
    return;
  c->closing = 1;
  if (c->resolving) /* also after a timeout: do not wait for the DNS */
    uv_cancel((uv_req_t *)&c->gai); /* on_resolved sees closing */
  http_proxy_clear(&c->proxy);
  uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
}

/* --- output ------------------------------------------------------------ */

static void on_written(uv_write_t *req, int status) {
  out_req_t *o = (out_req_t *)req;
  netconn_t *c = o->c;
  c->out_pending -= o->len;
  if (o->secret) {
    explicit_bzero(o->data, o->len);
    o->secret = 0;
  }
  if (c->spare == NULL && o->cap == FILL_CAP)
    c->spare = o;
  else
    free(o);
  if (c->closing || c->state == NC_ENDED)
    return;
  if (status != 0) {
    if (c->state == NC_UP)
      end(c, TRANSPORT_END_CLOSED, 0, "connection lost: %s",
          uv_strerror(status));
    else
      fail_edge(c, TRANSPORT_END_NETWORK, uv_strerror(status));
    return;
  }
  if (c->state == NC_UP && c->h.on_drain != NULL)
    c->h.on_drain(c->ctx);
}

int netconn_flush(netconn_t *c) {
  out_req_t *o = c->fill;
  if (o == NULL || o->len == 0)
    return 0;
  if (c->closing)
    return -1;
  c->fill = NULL;
  uv_buf_t b = uv_buf_init((char *)o->data, (unsigned)o->len);
  if (uv_write(&o->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) {
    if (o->secret)
      explicit_bzero(o->data, o->len);
    free(o);
    return -1;
  }
  c->out_pending += o->len;
  return 0;
}

/* Room for n more bytes in the fill buffer. */
static out_req_t *fill_room(netconn_t *c, size_t n) {
  if (c->fill != NULL && c->fill->cap - c->fill->len >= n)
    return c->fill;
  if (netconn_flush(c) != 0)
    return NULL;
  out_req_t *o = c->spare;
  c->spare = NULL;
  size_t cap = n > FILL_CAP ? n : FILL_CAP;
  if (o == NULL || o->cap < cap) {
    free(o);
    if ((o = malloc(sizeof(*o) + cap)) == NULL)
      return NULL;
    o->cap = cap;
  }
  o->c = c;
  o->len = 0;
  o->secret = 0;
  return c->fill = o;
}

static int out_append(netconn_t *c, const void *p, size_t n) {
  out_req_t *o = fill_room(c, n);
  if (o == NULL)
    return -1;
  memcpy(o->data + o->len, p, n);
  o->len += n;
  return 0;
}

int netconn_write(netconn_t *c, const void *data, size_t len) {
  if (c->state != NC_UP || c->closing)
    return -1;
  if (c->ssl == NULL)
    return out_append(c, data, len);
  /* Our BIO never refuses, so a write takes everything. */
  return SSL_write(c->ssl, data, (int)len) == (int)len ? 0 : -1;
}

size_t netconn_unsent(const netconn_t *c) {
  return c->out_pending + (c->fill != NULL ? c->fill->len : 0);
}

size_t netconn_backlog(const netconn_t *c) {
  uv_os_fd_t fd;
  int n = 0;
  if (c->closing || uv_fileno((const uv_handle_t *)&c->tcp, &fd) != 0 ||
      ioctl(fd, FIONREAD, &n) != 0 || n < 0)
    return 0;
  return (size_t)n;
}

int netconn_tls(const netconn_t *c) {
  return c->ssl != NULL;
}

/* --- input ------------------------------------------------------------- */

static void deliver(netconn_t *c, const uint8_t *p, size_t n) {
  if (!c->rx_stopped && c->h.on_data(c->ctx, p, n) != 0)
    c->rx_stopped = 1;
}

static void go_up(netconn_t *c) {
  c->state = NC_UP;
  c->h.on_up(c->ctx);
}

static void tls_failed(netconn_t *c) {
  long v = SSL_get_verify_result(c->ssl);
  unsigned long e = ERR_peek_last_error();
  if (v != X509_V_OK)
    end(c, TRANSPORT_END_TLS, 0,
        "TLS certificate of %s not accepted: %s (pass --ca FILE to "
        "trust its CA)",
        c->host, X509_verify_cert_error_string(v));
  else
    end(c, TRANSPORT_END_TLS, 0, "TLS handshake with %s:%d failed: %s", c->host,
        c->port, e ? ERR_reason_error_string(e) : "connection closed");
  ERR_clear_error();
}

static void tls_handshake(netconn_t *c) {
  int rc = SSL_do_handshake(c->ssl);
  if (netconn_flush(c) != 0) {
    fail_edge(c, TRANSPORT_END_NETWORK, "cannot send");
    return;
  }
  if (rc == 1)
    go_up(c);
  else if (SSL_get_error(c->ssl, rc) != SSL_ERROR_WANT_READ)
    tls_failed(c);
}

/* The stream ended: EOF (n == UV_EOF) or a read error. */
static void input_end(netconn_t *c, ssize_t n) {
  const char *why = n == UV_EOF ? NULL : uv_strerror((int)n);
  if (c->state == NC_UP)
    end(c, TRANSPORT_END_CLOSED, why == NULL,
        why ? "connection lost: %s" : "connection closed", why);
  else if (c->state == NC_PROXY)
    fail_edge(c, TRANSPORT_END_NETWORK,
              why ? why
                  : "the proxy closed the connection before answering "
                    "CONNECT");
  else
    fail_edge(c, TRANSPORT_END_NETWORK,
              why ? why : "connection refused or closed during the handshake");
}

static void tls_input(netconn_t *c) {
  if (c->state == NC_TLS) {
    tls_handshake(c);
    if (c->state != NC_UP || c->closing)
      return;
  }
  while (c->state == NC_UP && !c->closing && !c->rx_stopped) {
    int n = SSL_read(c->ssl, c->plain, sizeof(c->plain));
    if (n > 0) {
      deliver(c, c->plain, (size_t)n);
      continue;
    }
    int e = SSL_get_error(c->ssl, n);
    if (e == SSL_ERROR_WANT_READ)
      return;
    if (e == SSL_ERROR_ZERO_RETURN) {
      input_end(c, UV_EOF);
    } else {
      unsigned long code = ERR_peek_last_error();
      end(c, TRANSPORT_END_TLS, 0, "TLS error from %s: %s", c->host,
          code ? ERR_reason_error_string(code) : "protocol error");
      ERR_clear_error();
    }
    return;
  }
}

/* Bytes after the proxy's answer, or any bytes once the stream is up. */
static void stream_input(netconn_t *c, const uint8_t *p, size_t n) {
  if (c->ssl == NULL) {
    if (c->state == NC_UP && n > 0)
      deliver(c, p, n);
    return;
  }
  c->in_ptr = p;
  c->in_len = n;
  tls_input(c);
  c->in_len = 0; /* TLS takes all it is given until it wants more */
}

/* The tunnel is open: TLS (or the plain stream) starts on it. */
static void tunnel_open(netconn_t *c, const uint8_t *rest, size_t n) {
  if (c->ssl != NULL) {
    c->state = NC_TLS;
    if (n == 0) {
      tls_handshake(c);
      return;
    }
  } else {
    go_up(c);
    if (c->closing || c->state != NC_UP)
      return;
  }
  stream_input(c, rest, n);
}

/* A whole answer to CONNECT in c->head.buf (NUL-terminated). */
static void proxy_answered(netconn_t *c, const uint8_t *rest, size_t n) {
  char reason[HTTP1_REASON_MAX], what[HTTP1_REASON_MAX + 64];
  int status;
  if (http1_status(c->head.buf, &status, reason, sizeof(reason)) != 0) {
    fail_edge(c, TRANSPORT_END_NETWORK,
              "the proxy's answer to CONNECT is not HTTP");
    return;
  }
  c->proxy_status = status;
  if (status >= 200 && status <= 299) {
    tunnel_open(c, rest, n);
    return;
  }
  /* Whatever the proxy says, its word is the reason: no retry will do
   * better unless it is a 5xx (it could not reach the edge). */
  snprintf(what, sizeof(what), "HTTP %d%s%s", status, reason[0] ? " " : "",
           reason);
  transport_end_t kind = status >= 400 && status <= 499 ? TRANSPORT_END_PROXY
                                                        : TRANSPORT_END_NETWORK;
  int has_auth = c->proxy.has_auth;
  const char *shown = c->proxy.display;
  if (status == 407 || status == 401) {
    /* tinyproxy answers 401 to wrong credentials, most proxies 407. */
    if (has_auth)
      end(c, kind, 0,
          "the HTTP proxy at %s refused the credentials in its URL (%s)", shown,
          what);
    else
      end(c, kind, 0,
          "the HTTP proxy at %s requires credentials (%s): put them in "
          "its URL, http://USER:PASSWORD@HOST:PORT",
          shown, what);
  } else if (kind == TRANSPORT_END_PROXY) {
    end(c, kind, 0, "the HTTP proxy at %s refused to connect to %s:%d (%s)",
        shown, c->host, c->port, what);
  } else {
    char m[sizeof(what) + 32];
    snprintf(m, sizeof(m), "the proxy answered %s", what);
    fail_edge(c, kind, m);
  }
}

/* Answer bytes from the proxy, p[0..n): the rx buffer itself. */
static void proxy_input(netconn_t *c, const uint8_t *p, size_t n) {
  size_t used;
  int rc = http1_head_feed(&c->head, p, n, &used);
  if (rc == HTTP1_HEAD_TOO_LONG)
    fail_edge(c, TRANSPORT_END_NETWORK,
              "the proxy's answer to CONNECT is too long");
  if (rc != HTTP1_HEAD_DONE)
    return;
  /* What follows the head came in this read: the tunnel's first bytes. */
  proxy_answered(c, p + used, n - used);
}

static void on_alloc(uv_handle_t *hd, size_t size, uv_buf_t *b) {
  netconn_t *c = hd->data;
  (void)size;
  *b = uv_buf_init((char *)c->rx, sizeof(c->rx));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  netconn_t *c = s->data;
  if (n == 0 || c->closing || c->state == NC_ENDED)
    return;
  if (n < 0) {
    input_end(c, n);
    return;
  }
  if (c->state == NC_PROXY)
    proxy_input(c, (const uint8_t *)b->base, (size_t)n);
  else
    stream_input(c, (const uint8_t *)b->base, (size_t)n);
  if (!c->closing && c->state != NC_ENDED && netconn_flush(c) != 0)
    fail_edge(c, TRANSPORT_END_NETWORK, "cannot send");
}

/* --- connecting -------------------------------------------------------- */

int netconn_fail_timeout(netconn_t *c) {
  if (c->closing || !c->via_proxy)
    return 0;
  if (c->state == NC_RESOLVING || c->state == NC_CONNECTING) {
    end(c, TRANSPORT_END_NETWORK, 0,
        "cannot reach the HTTP proxy at %s: no connection in time",
        c->proxy.display);
    return 1;
  }
  if (c->state == NC_PROXY) {
    fail_edge(c, TRANSPORT_END_NETWORK,
              "the proxy did not answer CONNECT in time");
    return 1;
  }
  return 0;
}

static void tune_socket(netconn_t *c) {
  uv_tcp_nodelay(&c->tcp, 1);
  uv_tcp_keepalive(&c->tcp, 1, KEEPALIVE_S);
  uv_os_fd_t fd;
  if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0) {
    int lowat = NOTSENT_LOWAT;
    setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof(lowat));
  }
}

/* Ask the proxy for a tunnel to the edge. */
static void send_connect(netconn_t *c) {
  char req[HTTP_PROXY_REQUEST_MAX];
  int n =
      http_proxy_connect_request(&c->proxy, c->host, c->port, req, sizeof(req));
  int rc = n > 0 ? out_append(c, req, (size_t)n) : -1;
  explicit_bzero(req, sizeof(req));
  if (rc == 0)
    c->fill->secret = 1; /* it holds the proxy's credentials */
  c->state = NC_PROXY;
  if (rc != 0 || netconn_flush(c) != 0)
    fail_edge(c, TRANSPORT_END_NETWORK, "cannot send CONNECT");
}

static void on_connected(uv_connect_t *req, int status) {
  netconn_t *c = req->data;
  if (c->closing || c->state == NC_ENDED)
    return;
  if (status != 0) {
    if (c->via_proxy)
      end(c, TRANSPORT_END_NETWORK, 0, "cannot reach the HTTP proxy at %s: %s",
          c->proxy.display, uv_strerror(status));
    else
      fail_edge(c, TRANSPORT_END_NETWORK, uv_strerror(status));
    return;
  }
  tune_socket(c);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  if (c->via_proxy)
    send_connect(c);
  else
    tunnel_open(c, NULL, 0);
}

static void on_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
  netconn_t *c = req->data;
  c->resolving = 0;
  if (c->closing || c->state == NC_ENDED) {
    /* cancelled by netconn_close(), or timed out */
  } else if (status != 0) {
    end(c, TRANSPORT_END_NETWORK, 0, "cannot resolve the %s host %s: %s",
        c->via_proxy ? "HTTP proxy" : "edge",
        c->via_proxy ? c->proxy.host : c->host, uv_strerror(status));
  } else {
    c->state = NC_CONNECTING;
    c->connect_req.data = c;
    int rc =
        uv_tcp_connect(&c->connect_req, &c->tcp, res->ai_addr, on_connected);
    if (rc != 0)
      fail_edge(c, TRANSPORT_END_NETWORK, uv_strerror(rc));
  }
  if (res != NULL)
    uv_freeaddrinfo(res);
  unref(c);
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
  netconn_t *c = BIO_get_data(b);
  BIO_clear_retry_flags(b);
  if (c->in_len == 0) {
    BIO_set_retry_read(b);
    return -1;
  }
  size_t n = (size_t)len < c->in_len ? (size_t)len : c->in_len;
  memcpy(out, c->in_ptr, n);
  c->in_ptr += n;
  c->in_len -= n;
  return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
  (void)b;
  (void)num;
  (void)ptr;
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int tls_setup(netconn_t *c, SSL_CTX *ctx) {
  c->ssl = SSL_new(ctx);
  c->bio_method =
      BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "netconn");
  if (c->ssl == NULL || c->bio_method == NULL)
    return -1;
  BIO_meth_set_write(c->bio_method, bio_write);
  BIO_meth_set_read(c->bio_method, bio_read);
  BIO_meth_set_ctrl(c->bio_method, bio_ctrl);
  BIO *bio = BIO_new(c->bio_method);
  if (bio == NULL)
    return -1;
  BIO_set_data(bio, c);
  BIO_set_init(bio, 1);
  SSL_set_bio(c->ssl, bio, bio); /* one reference, taken by the SSL */
  SSL_set_connect_state(c->ssl);
  static const unsigned char alpn[] = "\x08http/1.1";
  SSL_set_alpn_protos(c->ssl, alpn, sizeof(alpn) - 1);
  int numeric = is_numeric(c->host);
  if (!numeric)
    SSL_set_tlsext_host_name(c->ssl, c->host);
  if (c->insecure)
    return 0;
  X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
  return numeric ? (X509_VERIFY_PARAM_set1_ip_asc(vp, c->host) == 1 ? 0 : -1)
                 : (SSL_set1_host(c->ssl, c->host) == 1 ? 0 : -1);
}

netconn_t *netconn_connect(uv_loop_t *loop, const netconn_opts_t *o,
                           const netconn_handlers_t *h, void *ctx, char *err,
                           size_t errlen) {
  netconn_t *c = calloc(1, sizeof(*c));
  if (c == NULL) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  c->loop = loop;
  c->h = *h;
  c->ctx = ctx;
  c->port = o->port;
  c->insecure = o->insecure;
  snprintf(c->host, sizeof(c->host), "%s", o->host);
  if (o->proxy != NULL) {
    c->via_proxy = 1;
    c->proxy = *o->proxy;
  }
  if (o->tls && tls_setup(c, o->ssl_ctx) != 0) {
    snprintf(err, errlen, "cannot set up the connection to %s", o->host);
    goto fail;
  }
  /* Through a proxy, the proxy resolves the edge: often the only one that
   * can. The edge is dialled over IPv4, as always; a proxy over either. */
  const char *dial = c->via_proxy ? c->proxy.host : c->host;
  struct addrinfo hints = {.ai_family = c->via_proxy ? AF_UNSPEC : AF_INET,
                           .ai_socktype = SOCK_STREAM};
  char port[8];
  snprintf(port, sizeof(port), "%d", c->via_proxy ? c->proxy.port : c->port);
  c->gai.data = c;
  int rc = uv_getaddrinfo(loop, &c->gai, on_resolved, dial, port, &hints);
  if (rc != 0) {
    snprintf(err, errlen, "cannot resolve the %s host %s: %s",
             c->via_proxy ? "HTTP proxy" : "edge", dial, uv_strerror(rc));
    goto fail;
  }
  uv_tcp_init(loop, &c->tcp);
  c->tcp.data = c;
  c->refs = 2; /* the handle, the resolve */
  c->resolving = 1;
  c->state = NC_RESOLVING;
  return c;
fail:
  if (c->ssl != NULL)
    SSL_free(c->ssl);
  if (c->bio_method != NULL)
    BIO_meth_free(c->bio_method);
  http_proxy_clear(&c->proxy);
  free(c);
  return NULL;
}
