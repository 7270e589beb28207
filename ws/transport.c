/* The connection calls both transports share. See transport.h. */
#include "ws/transport.h"

#include <assert.h>

#include "ws/transport_impl.h"

const void *transport_conn_auth(const transport_conn_t *c) {
  return c->auth;
}

void *transport_conn_user(const transport_conn_t *c) {
  return c->user;
}

void transport_conn_set_user(transport_conn_t *c, void *user) {
  c->user = user;
}

void transport_conn_want_write(transport_conn_t *c) {
  assert(c->ops != NULL);
  c->ops->want_write(c);
}

size_t transport_conn_backlog(const transport_conn_t *c) {
  return c->ops->backlog(c);
}

void transport_conn_close(transport_conn_t *c, int code, const char *reason) {
  c->ops->close(c, code, reason);
}

void transport_conn_abort(transport_conn_t *c) {
  c->ops->abort(c);
}
