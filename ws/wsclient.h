/*
 * A WebSocket client (RFC 6455) on the client's stream to the edge
 * (ws/netconn: TCP, an optional HTTP proxy's CONNECT, TLS with our own
 * BIO), framing by ws/rfc6455. The client transport (ws/transport_client.c)
 * runs its connections on it; lws keeps the server only. Why not lws
 * here: docs/PERFORMANCE.md.
 *
 * Writes follow the transport's model: the application asks with
 * wsclient_want_write() and is called back (on_writable) outside its own
 * calls, as long as less than WSCLIENT_OUT_MAX bytes wait for the socket,
 * so at most that much is ever buffered per connection.
 *
 * Ownership: wsclient_connect() returns a client that frees itself after
 * delivering on_close, which happens exactly once and always from the loop
 * (never inside a call of the application into this module). The caller's
 * pointer is invalid once on_close has returned.
 */
#ifndef WSMUX_WSCLIENT_H
#define WSMUX_WSCLIENT_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "ws/http_proxy.h"
#include "ws/transport.h"

#define WSCLIENT_OUT_MAX (128 * 1024)
#define WSCLIENT_NODE_MAX 129

typedef struct wsclient wsclient_t;

typedef struct {
  const char *host; /* DNS name or numeric address: dialled, verified, Host */
  int port;
  int tls;
  SSL_CTX *ssl_ctx; /* borrowed; from netconn_ssl_ctx_new() */
  int insecure;     /* do not check the certificate's name either */
  const char *path;
  const char *subprotocol;
  const char *headers;       /* extra request headers, "Name: value\r\n" each */
  unsigned handshake_ms;     /* connect + proxy + TLS + upgrade deadline */
  const http_proxy_t *proxy; /* NULL: direct (ws/netconn.h) */
} wsclient_opts_t;

typedef struct {
  /* The WebSocket is up. Return -1 to close it. */
  int (*on_open)(void *ctx);
  /* A chunk of a binary message; -1 with msg closes with 1002. */
  int (*on_rx)(void *ctx, const uint8_t *data, size_t len, int end_of_message,
               char *msg, size_t msglen);
  /* Fill at most cap bytes of the next message; 0 when none. */
  size_t (*on_writable)(void *ctx, uint8_t *buf, size_t cap);
  void (*on_close)(void *ctx, const transport_close_t *why);
} wsclient_handlers_t;

/* Resolve, connect (through the proxy), handshake. NULL (and no on_close)
 * with err on an immediate failure. */
wsclient_t *wsclient_connect(uv_loop_t *loop, const wsclient_opts_t *o,
                             const wsclient_handlers_t *h, void *ctx, char *err,
                             size_t errlen);
void wsclient_want_write(wsclient_t *w);
/* The edge's name from the 101 (X-Wsmux-Node), "" when it gave none or the
 * WebSocket is not open yet. */
const char *wsclient_node(const wsclient_t *w);
/* Bytes waiting in the socket's receive queue (FIONREAD); 0 if unknown. */
size_t wsclient_backlog(const wsclient_t *w);
/* Send what the application still has, then a close frame; on_close when
 * the server answers (or after a short grace). */
void wsclient_close(wsclient_t *w, int code, const char *reason);
/* Drop the connection now, without a close handshake. */
void wsclient_abort(wsclient_t *w);

#endif
