/*
 * What the two WebSocket transports have in common: a connection that
 * moves opaque message bytes for the application. Received chunks go to
 * on_rx; when the socket can take a message, on_writable fills one. A
 * transport never buffers more than one outgoing message per connection.
 *
 * The server (ws/transport_server.h) runs on libwebsockets, the client
 * (ws/transport_client.h) on ws/wsclient; both on the caller's libuv loop.
 * The relay (proxy/relay.h) only sees this header.
 *
 * Ownership: a connection belongs to its transport. It is valid from the
 * call that returns it (client) or on_open (server) until on_close
 * returns; the application's pointer (transport_conn_user) is borrowed.
 */
#ifndef WSMUX_TRANSPORT_H
#define WSMUX_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#define TRANSPORT_SUBPROTOCOL "wsmux.v1"
#define TRANSPORT_MSG_MAX (64 * 1024)

/* WebSocket close codes (RFC 6455 section 7.4 and the IANA registry). We
 * send 1000 and 1002 (and 1008 from the edge); the others are what an
 * intermediary or a failing server may say. 1006 is never sent: some
 * stacks report it for a connection that ended without a close frame. */
#define TRANSPORT_CLOSE_NORMAL 1000
#define TRANSPORT_CLOSE_GOING_AWAY 1001
#define TRANSPORT_CLOSE_PROTOCOL 1002
#define TRANSPORT_CLOSE_ABNORMAL 1006
#define TRANSPORT_CLOSE_INVALID_DATA 1007
#define TRANSPORT_CLOSE_INTERNAL 1011
#define TRANSPORT_CLOSE_RESTART 1012
#define TRANSPORT_CLOSE_TRY_AGAIN 1013
#define TRANSPORT_CLOSE_BAD_GATEWAY 1014

typedef struct transport_conn transport_conn_t;

typedef enum {
  TRANSPORT_END_CLOSED = 0, /* closed after being open */
  TRANSPORT_END_HTTP,       /* client: the server answered with an HTTP error */
  TRANSPORT_END_NETWORK,    /* client: could not connect, or lost the socket */
  TRANSPORT_END_TLS,        /* client: TLS handshake / certificate failure */
  TRANSPORT_END_PROXY,      /* client: the HTTP proxy refused the tunnel (a 4xx
                               to CONNECT: credentials, policy) */
} transport_end_t;

typedef struct {
  transport_end_t kind;
  int was_open;    /* the WebSocket had been established */
  int http_status; /* TRANSPORT_END_HTTP: the edge's status; _PROXY: the
                      proxy's answer to CONNECT */
  int close_code;  /* WebSocket close code received, 0 when none */
  char message[512];
} transport_close_t;

/* Where a request came from: the TCP peer, and what a proxy in between
 * said about the client (X-Forwarded-For, "" when none: trust it only
 * from a trusted peer). */
typedef struct {
  const char *peer;          /* numeric address of the TCP peer */
  const char *forwarded_for; /* the X-Forwarded-For header, "" when none */
} transport_origin_t;

/* A WebSocket upgrade request, for authorize(). Strings are valid during
 * the call only, "" when absent. */
typedef struct {
  const char *path;   /* the request path */
  const char *bearer; /* token of "Authorization: Bearer" */
  const char *resume; /* X-Wsmux-Resume: the session to resume (hex) */
  const char *node;   /* X-Wsmux-Node: the edge that held it */
  transport_origin_t origin;
} transport_upgrade_t;

/* A plain HTTP request to the server (not a WebSocket upgrade). Strings
 * are NUL-terminated and valid during the on_http call only. */
typedef struct {
  const char *method; /* "GET", "POST", "PATCH", "PUT", "DELETE" */
  const char *path;   /* URL-decoded path, without the query */
  const char *bearer; /* token of "Authorization: Bearer", "" when none */
  /* The If-None-Match header as sent, "" when none (static files answer
   * 304 to a copy they already have). */
  const char *if_none_match;
  const uint8_t *body;
  size_t body_len; /* at most TRANSPORT_HTTP_BODY_MAX */
  transport_origin_t origin;
} transport_http_request_t;

/* An answer to a plain HTTP request. body is malloc'd by the handler (or
 * NULL) and taken by transport_http_respond(); content_type is a static
 * string; headers, if not NULL, are extra header lines ("Name: value\r\n"
 * each), copied. */
typedef struct {
  int status;
  const char *content_type;
  char *body;
  size_t body_len;
  const char *headers;
} transport_http_response_t;

/* A plain HTTP request waiting for its answer (see on_http). */
typedef struct transport_http transport_http_t;

#define TRANSPORT_HTTP_BODY_MAX (64 * 1024)

/* Room for what authorize() keeps for the connection (see below). */
#define TRANSPORT_AUTH_MAX 128

typedef struct {
  /* Server only: decide on an upgrade request before it is answered.
   * Return 0 to accept, after copying at most TRANSPORT_AUTH_MAX bytes of
   * plain data (borrowed pointers, ids) into auth for
   * transport_conn_auth(); or an HTTP status (401, 404, 409...) with the
   * text for the body in msg. Nothing is owned, so nothing leaks when the
   * upgrade then fails. */
  int (*authorize)(void *ctx, const transport_upgrade_t *up, void *auth,
                   char *msg, size_t msglen);
  /* The WebSocket is up. Return -1 to close it. */
  int (*on_open)(void *ctx, transport_conn_t *c);
  /* A chunk of a binary message. Return 0, or -1 with a reason in msg to
   * close with TRANSPORT_CLOSE_PROTOCOL. */
  int (*on_rx)(void *ctx, transport_conn_t *c, const uint8_t *data, size_t len,
               int end_of_message, char *msg, size_t msglen);
  /* Fill at most cap bytes of the next message; 0 when nothing to send. */
  size_t (*on_writable)(void *ctx, transport_conn_t *c, uint8_t *buf,
                        size_t cap);
  /* The connection is gone (or a client connection never opened). */
  void (*on_close)(void *ctx, transport_conn_t *c,
                   const transport_close_t *why);
  /* Server only, optional: the head of a plain HTTP request, before its
   * body is read (req->body is NULL). Return 0 to go on, or fill *resp and
   * return 1 to answer now and close the connection: a request without a
   * valid token gets its 401 before its body costs anything. */
  int (*on_http_head)(void *ctx, const transport_http_request_t *req,
                      transport_http_response_t *resp);
  /* Server only, optional: whether ip (a TCP peer) is a trusted proxy,
   * exempt from the per-address cap (every client comes from it). */
  int (*peer_trusted)(void *ctx, const char *ip);
  /* Server only, optional: a plain HTTP request. Answer it with
   * transport_http_respond(h, ...) exactly once, during the call or later
   * (after a database query); req is valid during the call only. Without
   * it every such request gets 404. A body over TRANSPORT_HTTP_BODY_MAX is
   * answered 413 without calling it. */
  void (*on_http)(void *ctx, transport_http_t *h,
                  const transport_http_request_t *req);
  /* Server only, optional: a connection was dropped because it had not
   * sent a whole request head (upgrade or HTTP request) within the
   * handshake timeout (TLS handshake included). */
  void (*on_handshake_timeout)(void *ctx);
} transport_handlers_t;

/* Answer h (see on_http); takes resp->body. When the client is gone
 * meanwhile the answer is dropped. h is invalid on return. */
void transport_http_respond(transport_http_t *h,
                            transport_http_response_t *resp);

/* Server: the bytes authorize() stored. */
const void *transport_conn_auth(const transport_conn_t *c);
void *transport_conn_user(const transport_conn_t *c);
void transport_conn_set_user(transport_conn_t *c, void *user);
/* Ask for an on_writable call. */
void transport_conn_want_write(transport_conn_t *c);
/* Bytes received by the kernel on c's socket and not yet read (FIONREAD):
 * how far behind this side is. 0 when unknown. */
size_t transport_conn_backlog(const transport_conn_t *c);
/* Close with a WebSocket close code and reason; on_close follows. */
void transport_conn_close(transport_conn_t *c, int code, const char *reason);
/* Drop the connection at once, without a close handshake (a dead link);
 * on_close follows. Safe inside and outside transport callbacks. */
void transport_conn_abort(transport_conn_t *c);

#endif
