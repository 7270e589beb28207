/*
 * The WebSocket client: connections to the edge on ws/wsclient (TLS and
 * RFC 6455 framing of our own, on the caller's libuv loop), directly or
 * through an HTTP proxy's CONNECT tunnel, each carrying
 * the wsmux subprotocol with the API token and, after a link drop, the
 * session to resume.
 *
 * Ownership: a transport_client_t owns its TLS context and its
 * connections; a connection frees itself after on_close.
 * transport_client_close() aborts every connection (on_close follows from
 * the loop); once uv_run() has returned, or once on_close was delivered for
 * every connection, transport_client_free() frees the client.
 */
#ifndef WSMUX_TRANSPORT_CLIENT_H
#define WSMUX_TRANSPORT_CLIENT_H

#include <stddef.h>
#include <uv.h>

#include "ws/http_proxy.h"
#include "ws/transport.h"

#define TRANSPORT_HOST_MAX 256
#define TRANSPORT_PATH_MAX 512
#define TRANSPORT_TOKEN_MAX 1024

typedef struct transport_client transport_client_t;

typedef struct {
  const char *url;     /* wss://host[:port][/prefix] or ws://host[:port] */
  const char *path;    /* request path, appended to the URL's prefix */
  const char *token;   /* sent as Authorization: Bearer */
  const char *ca_file; /* extra trusted CA (PEM), or NULL */
  int insecure;        /* skip certificate verification */
  const http_proxy_t *proxy; /* HTTP proxy to tunnel through (CONNECT), or
                                NULL; copied */
} transport_client_opts_t;

/* An edge URL taken apart. */
typedef struct {
  int tls;  /* wss:// */
  int port; /* default 443 (wss) or 80 (ws) */
  char host[TRANSPORT_HOST_MAX];
  char path[TRANSPORT_PATH_MAX]; /* the URL's prefix + the request path */
} transport_url_t;

/* Parse url (wss://host[:port][/prefix]) and append path to its prefix.
 * 0, or -1 with a message in err. */
int transport_url_parse(const char *url, const char *path, transport_url_t *out,
                        char *err, size_t errlen);

/* NULL with a message in err (bad URL, token too long, CA unreadable). */
transport_client_t *transport_client_new(uv_loop_t *loop,
                                         const transport_client_opts_t *opts,
                                         const transport_handlers_t *h,
                                         void *ctx, char *err, size_t errlen);
/* The session to resume on the next connection (X-Wsmux-Resume: hex id),
 * or NULL for a new one, and the edge that held it (X-Wsmux-Node, as that
 * edge named itself; NULL or "": none). */
void transport_client_set_resume(transport_client_t *t, const char *hex_id,
                                 const char *node);
/* The name the edge gave itself on c's 101 (X-Wsmux-Node), "" when none. */
const char *transport_client_node(const transport_conn_t *c);
/* Start one connection; on_open or on_close follows. NULL with err on an
 * immediate failure. */
transport_conn_t *transport_client_connect(transport_client_t *t, void *user,
                                           char *err, size_t errlen);
/* Abort every connection; on_close follows for each from the loop. */
void transport_client_close(transport_client_t *t);
/* Free t. With connections left (only after uv_run() returned) it closes
 * them and runs the loop for their on_close; with none (on_close delivered
 * for each) it frees at once, so a loop serving others can call it. */
void transport_client_free(transport_client_t *t);

#endif
