/*
 * Private to ws/transport_server.c (the lws context, WebSockets) and
 * ws/transport_http.c (every connection until its request is authorized,
 * plain HTTP requests and their answers): the server's state and what the
 * two files call in each other.
 */
#ifndef WSMUX_TRANSPORT_SERVER_IMPL_H
#define WSMUX_TRANSPORT_SERVER_IMPL_H

#include <libwebsockets.h>

#include "ws/transport_impl.h"
#include "ws/transport_server.h"

#define SERVER_PATH_MAX 512
#define SERVER_TOKEN_MAX 1024
#define SERVER_NODE_MAX 129
#define SERVER_ADDR_MAX 64
#define SERVER_XFF_MAX 512

typedef struct server_conn server_conn_t;

/* How many connections of one address have not been authorized yet. */
typedef struct {
  char ip[SERVER_ADDR_MAX];
  unsigned count;
} server_addr_t;

struct transport_server {
  uv_loop_t *loop;
  char node_id[SERVER_NODE_MAX]; /* "" when none */
  struct lws_context *ctx;
  transport_handlers_t h;
  void *hctx;
  void *loops[2];
  struct lws_protocols protocols[3];
  server_conn_t *conns;
  int closing;
  uint64_t request_ms; /* accept to the last byte of the request */
  /* Connections whose request is not authorized yet (docs/EDGE_CONFIG.md
   * maxUnauthenticated*): in all, and per address (trusted proxies apart). */
  unsigned unauth, unauth_max, unauth_addr_max;
  server_addr_t *addrs;
  size_t naddrs;
  transport_server_stats_t stats;
  uint8_t txbuf[LWS_PRE + TRANSPORT_MSG_MAX];
};

/* Where the request on wsi came from (bufs of SERVER_ADDR_MAX and
 * SERVER_XFF_MAX). */
void server_read_origin(struct lws *wsi, char *peer, char *xff,
                        transport_origin_t *o);

/* A whole response with a correct status line (lws's own says HTTP/1.0 on
 * a fresh connection and has no reason phrase for several codes);
 * close_after: "Connection: close" and the connection ends once it is
 * written. Returns what an lws HTTP callback returns next. */
int server_reply(struct lws *wsi, unsigned status, const char *ctype,
                 const char *headers, const char *body, size_t len,
                 int close_after);

/* The accepted connection's life, whatever protocol it ends on (lws calls
 * WSI_DESTROY and TIMER on the protocol the wsi has at the time). */
int server_peer_open(transport_server_t *t, struct lws *wsi); /* -1: drop */
void server_peer_authorized(struct lws *wsi);
void server_peer_request_done(struct lws *wsi);
void server_peer_next_request(struct lws *wsi);
int server_peer_timer(struct lws *wsi); /* -1: the deadline passed */
void server_peer_destroy(struct lws *wsi);

/* protocols[0]: plain HTTP requests and upgrade requests. */
int server_http_callback(struct lws *wsi, enum lws_callback_reasons reason,
                         void *user, void *in, size_t len);
size_t server_http_pss_size(void);

#endif
