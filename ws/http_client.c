/*
 * One-shot HTTP calls on libwebsockets' client, on a private loop. See
 * http_client.h. lws resolves synchronously and drops the error text, so
 * the host is resolved here first and lws dials the numeric address.
 */
#include "ws/http_client.h"

#include <libwebsockets.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "ws/transport_client.h"

/* State of one http_client_call(), the lws context's user. */
typedef struct {
  const http_client_request_t *req;
  http_client_result_t *r;
  uv_loop_t *loop;
  transport_url_t url;
  char auth_header[TRANSPORT_TOKEN_MAX + 8];
  void *loops[2];
  struct lws_protocols protocols[2];
  struct lws_context *ctx;
  struct lws *wsi;
  uv_getaddrinfo_t gai;
  uv_timer_t timer; /* timeout, then the deferred teardown */
  int finished;
  int ctx_closed;
} call_t;

static void fail_now(call_t *hc, const char *fmt, const char *arg);

static void call_close_ctx(call_t *hc) {
  if (hc->ctx_closed)
    return;
  hc->ctx_closed = 1;
  if (hc->ctx != NULL)
    lws_context_destroy(hc->ctx);
}

static void on_stop(uv_timer_t *tm) {
  call_t *hc = tm->data;
  uv_close((uv_handle_t *)&hc->timer, NULL);
  call_close_ctx(hc);
}

/* Done, one way or another: tear down outside lws's callbacks. */
static void call_finish(call_t *hc) {
  if (hc->finished)
    return;
  hc->finished = 1;
  uv_timer_start(&hc->timer, on_stop, 0, 0);
}

static void on_timeout(uv_timer_t *tm) {
  call_t *hc = tm->data;
  if (hc->r->error[0] == '\0')
    snprintf(hc->r->error, sizeof(hc->r->error),
             "no answer from the edge within %u ms", hc->req->timeout_ms);
  hc->r->status = 0;
  hc->finished = 1;
  uv_close((uv_handle_t *)&hc->timer, NULL);
  call_close_ctx(hc);
}

static void set_error(call_t *hc, int tls, const char *msg) {
  if (hc->r->status == 0 && hc->r->error[0] == '\0') {
    snprintf(hc->r->error, sizeof(hc->r->error), "%s", msg);
    hc->r->tls_error = tls;
  }
  call_finish(hc);
}

static void connection_error(call_t *hc, struct lws *wsi, const char *in) {
  char msg[512];
  SSL *ssl = hc->url.tls ? lws_get_ssl(wsi) : NULL;
  long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
  if (v != X509_V_OK) {
    snprintf(msg, sizeof(msg),
             "TLS certificate of %s not accepted: %s (pass --ca FILE to "
             "trust its CA)",
             hc->url.host, X509_verify_cert_error_string(v));
  } else {
    snprintf(msg, sizeof(msg), "cannot reach the edge at %s:%d: %s",
             hc->url.host, hc->url.port,
             in && strstr(in, "closed before established")
                 ? "connection refused or closed during the handshake"
                 : (in ? in : "connection failed"));
  }
  set_error(hc, v != X509_V_OK, msg);
}

static void fail_now(call_t *hc, const char *fmt, const char *arg) {
  char msg[512];
  snprintf(msg, sizeof(msg), fmt, hc->url.host, arg);
  set_error(hc, 0, msg);
}

static int append_body(call_t *hc, const void *in, size_t len) {
  http_client_result_t *r = hc->r;
  char *nb = realloc(r->body, r->body_len + len + 1);
  if (nb == NULL)
    return -1;
  r->body = nb;
  memcpy(r->body + r->body_len, in, len);
  r->body_len += len;
  r->body[r->body_len] = '\0';
  return 0;
}

static int add_headers(call_t *hc, struct lws *wsi, void *in, size_t len) {
  const http_client_request_t *req = hc->req;
  unsigned char **p = in, *end = *p + len;
  if (hc->auth_header[0] != '\0' &&
      lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION,
                                   (unsigned char *)hc->auth_header,
                                   (int)strlen(hc->auth_header), p, end))
    return -1;
  if (req->body == NULL)
    return 0;
  char n[24];
  snprintf(n, sizeof(n), "%zu", req->body_len);
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

static int send_body(call_t *hc, struct lws *wsi) {
  const http_client_request_t *req = hc->req;
  uint8_t *b = malloc(LWS_PRE + req->body_len);
  if (b == NULL)
    return -1;
  memcpy(b + LWS_PRE, req->body, req->body_len);
  int n = lws_write(wsi, b + LWS_PRE, req->body_len, LWS_WRITE_HTTP_FINAL);
  free(b);
  lws_client_http_body_pending(wsi, 0);
  return n < (int)req->body_len ? -1 : 0;
}

static int http_callback(struct lws *wsi, enum lws_callback_reasons reason,
                         void *user, void *in, size_t len) {
  call_t *hc = lws_context_user(lws_get_context(wsi));
  switch (reason) {
  case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
    return add_headers(hc, wsi, in, len);
  case LWS_CALLBACK_CLIENT_HTTP_WRITEABLE:
    return hc->req->body ? send_body(hc, wsi) : 0;
  case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
    hc->r->status = (int)lws_http_client_http_response(wsi);
    return 0;
  case LWS_CALLBACK_RECEIVE_CLIENT_HTTP: {
    char buf[LWS_PRE + 4096], *p = buf + LWS_PRE;
    int n = (int)sizeof(buf) - LWS_PRE;
    return lws_http_client_read(wsi, &p, &n) < 0 ? -1 : 0;
  }
  case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
    return append_body(hc, in, len);
  case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
    call_finish(hc);
    return 0;
  case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
    hc->r->status = 0;
    hc->wsi = NULL;
    connection_error(hc, wsi, in);
    return 0;
  case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
    set_error(hc, 0, "the edge closed the connection before answering");
    return 0;
  default:
    return 0;
  }
}

static void dial(call_t *hc, const char *numeric) {
  struct lws_client_connect_info i;
  memset(&i, 0, sizeof(i));
  i.context = hc->ctx;
  i.address = numeric;
  i.port = hc->url.port;
  i.path = hc->url.path;
  i.host = hc->url.host;
  i.origin = hc->url.host;
  i.method = hc->req->method;
  i.local_protocol_name = "http";
  i.alpn = "http/1.1";
  i.pwsi = &hc->wsi;
  if (hc->url.tls) {
    i.ssl_connection = LCCSCF_USE_SSL;
    if (hc->req->insecure)
      i.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED | LCCSCF_ALLOW_INSECURE |
                          LCCSCF_ALLOW_EXPIRED |
                          LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK;
  }
  /* An immediate failure may or may not have run CONNECTION_ERROR (which
   * clears hc->wsi); hc->wsi tells which. */
  hc->wsi = (struct lws *)1;
  if (lws_client_connect_via_info(&i) == NULL && hc->wsi != NULL)
    fail_now(hc, "cannot connect to the edge at %s%s", "");
}

static void on_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
  call_t *hc = req->data;
  if (status != 0 || hc->finished) {
    fail_now(hc, "cannot resolve the edge host %s: %s",
             status ? uv_strerror(status) : "shutting down");
  } else {
    char ip[INET6_ADDRSTRLEN] = "";
    if (res->ai_family == AF_INET6)
      uv_ip6_name((struct sockaddr_in6 *)res->ai_addr, ip, sizeof(ip));
    else
      uv_ip4_name((struct sockaddr_in *)res->ai_addr, ip, sizeof(ip));
    dial(hc, ip);
  }
  uv_freeaddrinfo(res);
}

static void quiet_lws(void) {
  /* Our messages say what matters; WSMUX_LWS_DEBUG=1 shows lws's own. */
  const char *d = getenv("WSMUX_LWS_DEBUG");
  lws_set_log_level(d && *d == '1' ? LLL_ERR | LLL_WARN | LLL_NOTICE : 0, NULL);
}

static int call_setup(call_t *hc, char *err, size_t errlen) {
  const http_client_request_t *req = hc->req;
  if (transport_url_parse(req->url, req->path, &hc->url, err, errlen) != 0)
    return -1;
  if (req->token && strlen(req->token) > TRANSPORT_TOKEN_MAX) {
    snprintf(err, errlen, "API token too long");
    return -1;
  }
  if (req->token)
    snprintf(hc->auth_header, sizeof(hc->auth_header), "Bearer %s", req->token);
  hc->loops[0] = hc->loop;
  hc->protocols[0] =
      (struct lws_protocols){.name = "http", .callback = http_callback};
  struct lws_context_creation_info info;
  memset(&info, 0, sizeof(info));
  info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
  info.foreign_loops = hc->loops;
  info.protocols = hc->protocols;
  info.user = hc;
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.alpn = "http/1.1";
  info.timeout_secs = 15;
  info.client_ssl_ca_filepath = req->ca_file;
  info.pcontext = &hc->ctx; /* lws clears it once finally destroyed */
  quiet_lws();
  hc->ctx = lws_create_context(&info);
  if (hc->ctx == NULL) {
    snprintf(err, errlen, "cannot set up TLS%s%s",
             req->ca_file ? " with CA " : "", req->ca_file ? req->ca_file : "");
    return -1;
  }
  return 0;
}

int http_client_call(const http_client_request_t *req,
                     http_client_result_t *r) {
  memset(r, 0, sizeof(*r));
  call_t *hc = calloc(1, sizeof(*hc));
  uv_loop_t loop;
  if (hc == NULL) {
    snprintf(r->error, sizeof(r->error), "out of memory");
    return -1;
  }
  uv_loop_init(&loop);
  hc->req = req;
  hc->r = r;
  hc->loop = &loop;
  if (call_setup(hc, r->error, sizeof(r->error)) == 0) {
    unsigned ms = req->timeout_ms ? req->timeout_ms : 30000;
    uv_timer_init(&loop, &hc->timer);
    hc->timer.data = hc;
    uv_timer_start(&hc->timer, on_timeout, ms, 0);
    hc->gai.data = hc;
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    int rc = uv_getaddrinfo(&loop, &hc->gai, on_resolved, hc->url.host, NULL,
                            &hints);
    if (rc != 0) {
      snprintf(r->error, sizeof(r->error),
               "cannot resolve the edge host %s: %s", hc->url.host,
               uv_strerror(rc));
      call_finish(hc);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    /* lws on a foreign loop finishes only when destroyed again once its
     * handles have closed (4.1.6). */
    if (hc->ctx != NULL)
      lws_context_destroy(hc->ctx);
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  uv_loop_close(&loop);
  free(hc);
  if (r->status != 0 && r->body == NULL && (r->body = strdup("")) == NULL)
    r->status = 0;
  return r->status != 0 ? 0 : -1;
}

void http_client_result_free(http_client_result_t *r) {
  free(r->body);
  r->body = NULL;
  r->body_len = 0;
}
