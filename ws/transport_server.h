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
  /* A request (TLS handshake, head and body) must be complete this long
   * after the connection was accepted (or the previous answer on it was
   * written); 0: handshake_timeout_s. */
  unsigned request_timeout_ms;
  /* Connections whose request is not authorized yet: at most this many in
   * all, and per client address (peers handlers.peer_trusted accepts
   * apart); more are closed at accept. 0: no cap. */
  unsigned max_unauthenticated;
  unsigned max_unauthenticated_per_addr;
} transport_server_opts_t;

/* What the server refused on its own, and how many connections wait for
 * their request's authorization now. */
typedef struct {
  uint64_t unauthenticated;      /* gauge */
  uint64_t rejected_unauth;      /* closed at accept: max_unauthenticated */
  uint64_t rejected_unauth_addr; /* closed: max_unauthenticated_per_addr */
  uint64_t request_timeouts;     /* closed: request_timeout_ms passed */
  uint64_t malformed;            /* answered 400/411/413/505 by the parser */
} transport_server_stats_t;

/* Listen now. NULL with a message in err. */
transport_server_t *transport_server_new(uv_loop_t *loop,
                                         const transport_server_opts_t *opts,
                                         const transport_handlers_t *h,
                                         void *ctx, char *err, size_t errlen);
/* The port the server listens on. */
int transport_server_port(const transport_server_t *t);
void transport_server_stats(const transport_server_t *t,
                            transport_server_stats_t *out);
/* Stop listening and close every connection (on_close follows for each). */
void transport_server_close(transport_server_t *t);
/* After uv_run() returned: finish lws and free t (closes first if needed). */
void transport_server_free(transport_server_t *t);

#endif
