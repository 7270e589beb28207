/*
 * Private to ws/transport*.c: a connection as both transports see it. Each
 * transport embeds transport_conn_t as the first member of its own
 * connection and fills ops; ws/transport.c dispatches the public calls.
 */
#ifndef WSMUX_TRANSPORT_IMPL_H
#define WSMUX_TRANSPORT_IMPL_H

#include "ws/transport.h"

typedef struct {
  void (*want_write)(transport_conn_t *c);
  size_t (*backlog)(const transport_conn_t *c);
  void (*close)(transport_conn_t *c, int code, const char *reason);
  void (*abort)(transport_conn_t *c);
} transport_conn_ops_t;

struct transport_conn {
  const transport_conn_ops_t *ops;
  void *user;
  uint8_t auth[TRANSPORT_AUTH_MAX];
};

#endif
