#include "proxy/upstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws/frame.h"

typedef struct {
  relay_stream_t *rs; /* NULL once the stream is gone or answered */
  uv_connect_t connect;
  uv_getaddrinfo_t gai;
  uv_timer_t timer;
  int refs; /* callbacks still to come: connect-or-gai, timer close */
  char where[300];
  uint32_t timeout_ms;
} pending_t;

static void pending_unref(pending_t *p) {
  if (--p->refs == 0)
    free(p);
}

static void on_timer_closed(uv_handle_t *h) {
  pending_unref(h->data);
}

/* Answer the stream once; later callbacks find p->rs NULL. */
static void finish(pending_t *p, int status) {
  relay_stream_t *rs = p->rs;
  if (!uv_is_closing((uv_handle_t *)&p->timer))
    uv_close((uv_handle_t *)&p->timer, on_timer_closed);
  if (rs == NULL)
    return;
  p->rs = NULL;
  relay_stream_set_user(rs, NULL);
  if (status == 0) {
    relay_stream_accept(rs);
    return;
  }
  char reason[400];
  uint16_t code = FRAME_CODE_CONNECT_ERROR;
  if (status == UV_ECONNREFUSED) {
    code = FRAME_CODE_REFUSED;
    snprintf(reason, sizeof(reason), "connection refused by %s", p->where);
  } else if (status == UV_ETIMEDOUT) {
    code = FRAME_CODE_UNREACHABLE;
    snprintf(reason, sizeof(reason), "connect to %s timed out after %u ms",
             p->where, p->timeout_ms);
  } else {
    if (status == UV_EHOSTUNREACH || status == UV_ENETUNREACH)
      code = FRAME_CODE_UNREACHABLE;
    snprintf(reason, sizeof(reason), "connect to %s failed: %s", p->where,
             uv_strerror(status));
  }
  relay_stream_refuse(rs, code, reason);
}

static void on_connect(uv_connect_t *req, int status) {
  pending_t *p = req->data;
  if (status != UV_ECANCELED)
    finish(p, status);
  pending_unref(p);
}

static void on_timeout(uv_timer_t *t) {
  finish(t->data, UV_ETIMEDOUT);
}

static void start_connect(pending_t *p, const struct sockaddr *sa) {
  int rc = uv_tcp_connect(&p->connect, relay_stream_tcp(p->rs), sa, on_connect);
  if (rc != 0) {
    finish(p, rc);
    pending_unref(p);
  }
}

static void on_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
  pending_t *p = req->data;
  if (p->rs == NULL) {
    /* answered (timeout) or gone while resolving */
    finish(p, UV_ECANCELED);
    pending_unref(p);
  } else if (status != 0) {
    finish(p, status);
    pending_unref(p);
  } else {
    start_connect(p, res->ai_addr);
  }
  uv_freeaddrinfo(res);
}

void upstream_connect(uv_loop_t *loop, relay_stream_t *rs, const char *host,
                      uint16_t port, uint32_t timeout_ms) {
  pending_t *p = calloc(1, sizeof(*p));
  if (p == NULL) {
    relay_stream_refuse(rs, FRAME_CODE_INTERNAL, "out of memory");
    return;
  }
  p->rs = rs;
  p->refs = 2;
  p->timeout_ms = timeout_ms;
  p->connect.data = p->gai.data = p->timer.data = p;
  snprintf(p->where, sizeof(p->where), strchr(host, ':') ? "[%s]:%u" : "%s:%u",
           host, port);
  relay_stream_set_user(rs, p);
  uv_timer_init(loop, &p->timer);
  uv_timer_start(&p->timer, on_timeout, timeout_ms, 0);

  struct sockaddr_storage ss;
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) == 0 ||
      uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) == 0) {
    start_connect(p, (struct sockaddr *)&ss);
    return;
  }
  char portstr[8];
  snprintf(portstr, sizeof(portstr), "%u", port);
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  int rc = uv_getaddrinfo(loop, &p->gai, on_resolved, host, portstr, &hints);
  if (rc != 0) {
    finish(p, rc);
    pending_unref(p);
  }
}

void upstream_detach(relay_stream_t *rs) {
  pending_t *p = relay_stream_user(rs);
  if (p != NULL) {
    p->rs = NULL;
    relay_stream_set_user(rs, NULL);
    if (!uv_is_closing((uv_handle_t *)&p->timer))
      uv_close((uv_handle_t *)&p->timer, on_timer_closed);
  }
}
