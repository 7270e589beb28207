/*
 * A client's byte stream to the edge on a libuv TCP handle: resolve,
 * connect (directly, or to an HTTP proxy that opens a tunnel with
 * CONNECT), then TLS (OpenSSL with our own BIO: it reads the ciphertext
 * libuv just read, in place, and writes records straight into the buffer
 * handed to uv_write). ws/wsclient runs the WebSocket on it and
 * ws/http_client the admin calls; the proxy costs nothing once the stream
 * is up: the CONNECT exchange happens before the first TLS byte.
 *
 * Output is queued with netconn_write() and handed to the socket as one
 * write by netconn_flush(); netconn_unsent() is what the kernel has not
 * taken yet, for the owner's own bound.
 *
 * Ownership: netconn_connect() returns a connection the owner ends with
 * netconn_close(), always (also after on_end); no callback comes after
 * that, and it frees itself once its handles are closed. Callbacks never
 * run inside a call of the owner into this module, except that
 * netconn_fail_timeout() delivers on_end.
 */
#ifndef WSMUX_NETCONN_H
#define WSMUX_NETCONN_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "ws/http_proxy.h"
#include "ws/transport.h"

typedef struct netconn netconn_t;

typedef struct {
  const char *host; /* the edge: DNS name or numeric address */
  int port;
  int tls;
  SSL_CTX *ssl_ctx;          /* borrowed; from netconn_ssl_ctx_new() */
  int insecure;              /* do not check the certificate's name either */
  const http_proxy_t *proxy; /* NULL: direct; copied */
} netconn_opts_t;

/* Why the stream ended, or could not be made. */
typedef struct {
  /* While connecting: TRANSPORT_END_NETWORK, _TLS, or _PROXY (the proxy
   * refused: a 4xx to CONNECT); the message is a whole sentence ("cannot
   * reach the edge at h:p: ..."). Once up: _CLOSED, or _TLS for a TLS
   * error; the message is short ("connection closed", "connection lost:
   * ...", "TLS error from h: ..."), for the owner to place. */
  transport_end_t kind;
  int up;           /* it ended after on_up */
  int eof;          /* up: the server closed the stream (no error) */
  int proxy_status; /* the proxy's HTTP status to CONNECT, 0 when none */
  char message[400];
} netconn_end_t;

typedef struct {
  /* Connected (through the proxy) and TLS is up: send. */
  void (*on_up)(void *ctx);
  /* Plaintext from the server. Return -1 to stop reading: nothing more is
   * delivered (the owner is closing). */
  int (*on_data)(void *ctx, const uint8_t *data, size_t len);
  /* A write completed: netconn_unsent() went down. */
  void (*on_drain)(void *ctx);
  /* The stream failed or ended; nothing more is delivered. */
  void (*on_end)(void *ctx, const netconn_end_t *e);
} netconn_handlers_t;

/* A client TLS context trusting the system store and ca_file (or nothing
 * checked with insecure). NULL with a message in err. */
SSL_CTX *netconn_ssl_ctx_new(const char *ca_file, int insecure, char *err,
                             size_t errlen);

/* Start connecting. NULL with err (and no callback) on an immediate
 * failure. */
netconn_t *netconn_connect(uv_loop_t *loop, const netconn_opts_t *o,
                           const netconn_handlers_t *h, void *ctx, char *err,
                           size_t errlen);
/* Queue plaintext (after on_up); TLS records are made at once. 0, or -1
 * when out of memory or ended. */
int netconn_write(netconn_t *c, const void *data, size_t len);
/* Hand what was queued to the socket as one write. 0 or -1. */
int netconn_flush(netconn_t *c);
/* Bytes queued or written but not yet taken by the kernel. */
size_t netconn_unsent(const netconn_t *c);
/* Bytes waiting in the socket's receive queue (FIONREAD); 0 if unknown. */
size_t netconn_backlog(const netconn_t *c);
/* Whether the stream is TLS. */
int netconn_tls(const netconn_t *c);
/* The owner's deadline passed: when the wait is on the HTTP proxy (its
 * connect, or its answer to CONNECT), end with a message saying so
 * (on_end, during this call) and return 1; else 0 and nothing happens. */
int netconn_fail_timeout(netconn_t *c);
/* Drop the stream: no callback after this; c is invalid on return. */
void netconn_close(netconn_t *c);

#endif
