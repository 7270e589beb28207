#include "proxy/listener.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct listener {
  uv_tcp_t tcp;
  char addr[64];
  int port;
  listener_accept_cb cb;
  void *ctx;
};

static void on_closed(uv_handle_t *h) {
  free(h->data);
}

/* Bind, and find out now whether it worked, while the next port can still
 * be tried: libuv defers a bind's EADDRINUSE to uv_listen(), so check the
 * bound port, then listen(2) at once (uv_listen later keeps the backlog) to
 * catch a socket that bound the same port without listening yet. */
static int try_bind(uv_loop_t *loop, listener_t *l, const char *addr,
                    int port) {
  struct sockaddr_in sa;
  uv_ip4_addr(addr, port, &sa);
  uv_tcp_init(loop, &l->tcp);
  l->tcp.data = l;
  int rc = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&sa, 0);
  struct sockaddr_in got;
  int len = sizeof(got);
  if (rc == 0 &&
      (uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&got, &len) != 0 ||
       got.sin_port == 0 || (port != 0 && ntohs(got.sin_port) != port)))
    rc = UV_EADDRINUSE;
  uv_os_fd_t fd;
  if (rc == 0 && (rc = uv_fileno((uv_handle_t *)&l->tcp, &fd)) == 0)
    rc = listen(fd, SOMAXCONN) == 0 ? 0 : UV_EADDRINUSE;
  return rc;
}

int listener_bind(uv_loop_t *loop, const char *addr, int port, int tries,
                  listener_t **out, char *err, size_t errlen) {
  struct sockaddr_in probe;
  int rc = uv_ip4_addr(addr, 0, &probe);
  if (rc != 0) {
    snprintf(err, errlen, "invalid listen address '%s'", addr);
    return rc;
  }
  for (int i = 0; i <= tries; i++) {
    listener_t *l = calloc(1, sizeof(*l));
    if (l == NULL)
      return UV_ENOMEM;
    int p = (port == 0 || i == tries || port + i > 65535) ? 0 : port + i;
    rc = try_bind(loop, l, addr, p);
    if (rc == 0) {
      struct sockaddr_in sa;
      int len = sizeof(sa);
      uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&sa, &len);
      snprintf(l->addr, sizeof(l->addr), "%s", addr);
      l->port = ntohs(sa.sin_port);
      *out = l;
      return 0;
    }
    uv_close((uv_handle_t *)&l->tcp, on_closed);
    if (rc != UV_EADDRINUSE || port == 0)
      break;
  }
  snprintf(err, errlen, "cannot listen on %s:%d: %s", addr, port,
           uv_strerror(rc));
  return rc;
}

static void on_connection(uv_stream_t *server, int status) {
  listener_t *l = server->data;
  if (status == 0)
    l->cb(l->ctx, server);
}

int listener_start(listener_t *l, listener_accept_cb cb, void *ctx) {
  l->cb = cb;
  l->ctx = ctx;
  return uv_listen((uv_stream_t *)&l->tcp, SOMAXCONN, on_connection);
}

const char *listener_addr(const listener_t *l) {
  return l->addr;
}

int listener_port(const listener_t *l) {
  return l->port;
}

void listener_close(listener_t *l) {
  if (l != NULL)
    uv_close((uv_handle_t *)&l->tcp, on_closed);
}
