/*
 * One-shot HTTP calls on ws/netconn, on a private loop. See http_client.h.
 * The request goes out whole once the stream is up; the answer's head is
 * read into a bounded buffer (ws/http1), then its body by whichever
 * framing the head names.
 */
#include "ws/http_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "ws/http1.h"
#include "ws/netconn.h"
#include "ws/transport.h"
#include "ws/transport_client.h"

/* Nothing the admin API answers comes near it; a mistake past it. */
#define BODY_MAX (16u << 20)

typedef enum {
  BODY_NONE,    /* 204, 304: no body whatever the headers say */
  BODY_LENGTH,  /* Content-Length */
  BODY_CHUNKED, /* Transfer-Encoding: chunked */
  BODY_CLOSE,   /* up to the end of the stream */
} framing_t;

/* State of one http_client_call(). */
typedef struct {
  const http_client_request_t *req;
  http_client_result_t *r;
  uv_loop_t *loop;
  transport_url_t url;
  SSL_CTX *ssl_ctx;
  netconn_t *nc;
  uv_timer_t timer;
  char *request; /* until sent: it holds the token */
  size_t request_len;
  http1_head_t head;
  int head_done; /* the head is in and its status is HTTP */
  int status;
  framing_t framing;
  uint64_t left; /* BODY_LENGTH */
  http1_chunked_t chunked;
  int finished;
} call_t;

static void wipe_request(call_t *hc) {
  if (hc->request != NULL)
    explicit_bzero(hc->request, hc->request_len);
  free(hc->request);
  hc->request = NULL;
}

/* Done, one way or another: the loop ends once the handles are closed. */
static void call_finish(call_t *hc) {
  if (hc->finished)
    return;
  hc->finished = 1;
  netconn_close(hc->nc);
  hc->nc = NULL;
  uv_close((uv_handle_t *)&hc->timer, NULL);
}

static void fail(call_t *hc, const char *msg) {
  http_client_result_t *r = hc->r;
  if (r->error[0] == '\0' &&
      snprintf(r->error, sizeof(r->error), "%s", msg) < 0)
    r->error[0] = '\0'; /* a cut message is harmless */
  call_finish(hc);
}

/* The whole answer is in. */
static void answered(call_t *hc) {
  hc->r->status = hc->status;
  call_finish(hc);
}

static int append_body(void *ctx, const uint8_t *p, size_t n) {
  call_t *hc = ctx;
  http_client_result_t *r = hc->r;
  if (n == 0)
    return 0;
  if (r->body_len + n > BODY_MAX) {
    fail(hc, "the edge's answer is too large");
    return -1;
  }
  char *nb = realloc(r->body, r->body_len + n + 1);
  if (nb == NULL) {
    fail(hc, "out of memory");
    return -1;
  }
  r->body = nb;
  memcpy(r->body + r->body_len, p, n);
  r->body_len += n;
  r->body[r->body_len] = '\0';
  return 0;
}

static void body_input(call_t *hc, const uint8_t *p, size_t n) {
  size_t used;
  switch (hc->framing) {
  case BODY_LENGTH:
    if ((uint64_t)n > hc->left)
      n = (size_t)hc->left;
    if (append_body(hc, p, n) != 0)
      return;
    hc->left -= n;
    if (hc->left == 0)
      answered(hc);
    return;
  case BODY_CHUNKED: {
    int rc = http1_chunked(&hc->chunked, p, n, &used, append_body, hc);
    if (rc == HTTP1_CHUNKED_DONE)
      answered(hc);
    else if (rc == HTTP1_CHUNKED_ERROR)
      fail(hc, "the edge's answer has a malformed chunked body");
    return;
  }
  case BODY_CLOSE:
    append_body(hc, p, n);
    return;
  default:
    return;
  }
}

/* How the body of the answer in hc->head.buf is delimited. -1 after fail(). */
static int choose_framing(call_t *hc) {
  char v[64];
  if (hc->status == 204 || hc->status == 304 ||
      strcmp(hc->req->method, "HEAD") == 0) {
    hc->framing = BODY_NONE;
  } else if (http1_header(hc->head.buf, "transfer-encoding", v, sizeof(v))) {
    if (!http1_has_token(v, "chunked")) {
      fail(hc, "the edge's answer has a transfer coding other than chunked");
      return -1;
    }
    hc->framing = BODY_CHUNKED;
  } else if (http1_header(hc->head.buf, "content-length", v, sizeof(v))) {
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    if (end == v || *end != '\0' || v[0] < '0' || v[0] > '9' || n > BODY_MAX) {
      fail(hc, "the edge's answer has an invalid or too large "
               "Content-Length");
      return -1;
    }
    hc->left = n;
    hc->framing = n > 0 ? BODY_LENGTH : BODY_NONE;
  } else {
    hc->framing = BODY_CLOSE;
  }
  return 0;
}

/* Head bytes; returns how many of them belonged to the head. */
static size_t head_input(call_t *hc, const uint8_t *p, size_t n) {
  size_t used;
  int rc = http1_head_feed(&hc->head, p, n, &used);
  if (rc == HTTP1_HEAD_TOO_LONG)
    fail(hc, "the edge's answer has too long a head");
  if (rc != HTTP1_HEAD_DONE)
    return used;
  char reason[HTTP1_REASON_MAX];
  if (http1_status(hc->head.buf, &hc->status, reason, sizeof(reason)) != 0 ||
      hc->status < 200) {
    fail(hc, "the edge's answer is not HTTP");
    return used;
  }
  hc->head_done = 1;
  if (choose_framing(hc) == 0 && hc->framing == BODY_NONE)
    answered(hc);
  return used;
}

static int nc_data(void *ctx, const uint8_t *p, size_t n) {
  call_t *hc = ctx;
  if (!hc->head_done) {
    size_t used = head_input(hc, p, n);
    p += used;
    n -= used;
  }
  if (!hc->finished && hc->head_done && n > 0)
    body_input(hc, p, n);
  return hc->finished ? -1 : 0;
}

static void nc_up(void *ctx) {
  call_t *hc = ctx;
  int rc = netconn_write(hc->nc, hc->request, hc->request_len);
  wipe_request(hc);
  if (rc != 0 || netconn_flush(hc->nc) != 0)
    fail(hc, "cannot send the request to the edge");
}

static void nc_end(void *ctx, const netconn_end_t *e) {
  call_t *hc = ctx;
  char msg[sizeof(e->message) + TRANSPORT_HOST_MAX + 64];
  if (e->up && e->eof && hc->head_done && hc->framing == BODY_CLOSE) {
    answered(hc);
    return;
  }
  if (!e->up) {
    hc->r->tls_error = e->kind == TRANSPORT_END_TLS;
    if (e->kind == TRANSPORT_END_PROXY)
      hc->r->proxy_status = e->proxy_status;
    fail(hc, e->message);
  } else if (e->eof) {
    fail(hc, hc->head_done ? "the edge closed the connection in the middle "
                             "of its answer"
                           : "the edge closed the connection before "
                             "answering");
  } else {
    snprintf(msg, sizeof(msg), "cannot reach the edge at %s:%d: %s",
             hc->url.host, hc->url.port, e->message);
    fail(hc, msg);
  }
}

static const netconn_handlers_t nc_handlers = {nc_up, nc_data, NULL, nc_end};

static void on_timeout(uv_timer_t *tm) {
  call_t *hc = tm->data;
  char msg[96];
  if (hc->nc != NULL && netconn_fail_timeout(hc->nc))
    return; /* nc_end said what the proxy did not do */
  snprintf(msg, sizeof(msg), "no answer from the edge within %u ms",
           hc->req->timeout_ms ? hc->req->timeout_ms : 30000);
  fail(hc, msg);
}

/* The request, whole: head and body. */
static char *build_request(call_t *hc, size_t *len) {
  const http_client_request_t *req = hc->req;
  char host[TRANSPORT_HOST_MAX + 16], auth[TRANSPORT_TOKEN_MAX + 32] = "";
  char length[64] = "";
  int dflt = hc->url.port == (hc->url.tls ? 443 : 80);
  snprintf(host, sizeof(host), "%s", hc->url.host);
  if (!dflt)
    snprintf(host + strlen(host), sizeof(host) - strlen(host), ":%d",
             hc->url.port);
  if (req->token != NULL)
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", req->token);
  /* Every method but GET says how long its (maybe empty) body is. */
  if (req->body != NULL || strcmp(req->method, "GET") != 0)
    snprintf(length, sizeof(length), "%sContent-Length: %zu\r\n",
             req->body ? "Content-Type: application/json\r\n" : "",
             req->body ? req->body_len : 0);
  const char *fmt = "%s %s HTTP/1.1\r\n"
                    "Host: %s\r\n"
                    "User-Agent: wsmux/" WSMUX_VERSION "\r\n"
                    "Accept: application/json\r\n"
                    "%s%s"
                    "Connection: close\r\n"
                    "\r\n";
  int n = snprintf(NULL, 0, fmt, req->method, hc->url.path, host, auth, length);
  size_t body = req->body ? req->body_len : 0;
  char *r = malloc((size_t)n + 1 + body);
  if (r != NULL) {
    snprintf(r, (size_t)n + 1, fmt, req->method, hc->url.path, host, auth,
             length);
    if (body > 0)
      memcpy(r + n, req->body, body);
    *len = (size_t)n + body;
  }
  explicit_bzero(auth, sizeof(auth));
  return r;
}

static int call_setup(call_t *hc, char *err, size_t errlen) {
  const http_client_request_t *req = hc->req;
  if (transport_url_parse(req->url, req->path, &hc->url, err, errlen) != 0)
    return -1;
  if (req->token && strlen(req->token) > TRANSPORT_TOKEN_MAX) {
    snprintf(err, errlen, "API token too long");
    return -1;
  }
  if (hc->url.tls && (hc->ssl_ctx = netconn_ssl_ctx_new(
                          req->ca_file, req->insecure, err, errlen)) == NULL)
    return -1;
  if ((hc->request = build_request(hc, &hc->request_len)) == NULL) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  netconn_opts_t o = {.host = hc->url.host,
                      .port = hc->url.port,
                      .tls = hc->url.tls,
                      .ssl_ctx = hc->ssl_ctx,
                      .insecure = req->insecure,
                      .proxy = req->proxy};
  hc->nc = netconn_connect(hc->loop, &o, &nc_handlers, hc, err, errlen);
  return hc->nc != NULL ? 0 : -1;
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
    uv_timer_init(&loop, &hc->timer);
    hc->timer.data = hc;
    uv_timer_start(&hc->timer, on_timeout,
                   req->timeout_ms ? req->timeout_ms : 30000, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  uv_loop_close(&loop);
  wipe_request(hc);
  if (hc->ssl_ctx != NULL)
    SSL_CTX_free(hc->ssl_ctx);
  free(hc);
  if (r->status == 0) {
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
  } else if (r->body == NULL && (r->body = strdup("")) == NULL) {
    r->status = 0;
    snprintf(r->error, sizeof(r->error), "out of memory");
  }
  return r->status != 0 ? 0 : -1;
}

void http_client_result_free(http_client_result_t *r) {
  free(r->body);
  r->body = NULL;
  r->body_len = 0;
}
