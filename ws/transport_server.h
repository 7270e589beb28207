/*
 * The WebSocket server: libwebsockets 4.1 on the caller's libuv loop (a
 * foreign loop), serving wsmux WebSocket upgrades and plain HTTP requests
 * (on_http) on one listener, with or without TLS. The only module that
 * knows libwebsockets' server side; docs/NOTES-lws.md lists the lws facts
 * it relies on.
 *
 * Ownership: a transport_server_t owns its lws context and every
 * connection. Teardown is two steps because lws on a foreign loop needs
 * its handles closed before it can finish: transport_server_close() (safe
 * anywhere, also inside a loop callback) closes every connection, each
 * getting on_close; once uv_run() has returned, transport_server_free()
 * finishes and frees the server, after which uv_loop_close() succeeds.
 */
#ifndef WSMUX_TRANSPORT_SERVER_H
#define WSMUX_TRANSPORT_SERVER_H

#include <stddef.h>
#include <uv.h>

#include "ws/transport.h"

typedef struct transport_server transport_server_t;

typedef struct {
  const char *host; /* listen address, numeric */
  int port;         /* 0: the kernel picks */
  const char *cert; /* PEM paths, NULL with plain */
  const char *key;
  int plain;                    /* serve ws:// without TLS */
  unsigned handshake_timeout_s; /* drop connections not upgraded by then */
  const char *node_id; /* sent as X-Wsmux-Node on every 101 (NULL: none) */
} transport_server_opts_t;

/* Listen now. NULL with a message in err. */
transport_server_t *transport_server_new(uv_loop_t *loop,
                                         const transport_server_opts_t *opts,
                                         const transport_handlers_t *h,
                                         void *ctx, char *err, size_t errlen);
/* The port the server listens on. */
int transport_server_port(const transport_server_t *t);
/* Stop listening and close every connection (on_close follows for each). */
void transport_server_close(transport_server_t *t);
/* After uv_run() returned: finish lws and free t (closes first if needed). */
void transport_server_free(transport_server_t *t);

#endif
