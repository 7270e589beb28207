/*
 * WebSocket transport on libwebsockets, running on the caller's libuv loop.
 * The only module that knows lws. It moves opaque message bytes: received
 * chunks go to on_rx, and when the socket can take a message on_writable
 * fills one. It never buffers more than one outgoing message per connection.
 *
 * Ownership: a transport_t owns its lws context and every transport_conn_t.
 * A conn is valid from the call that returns (client) or on_open (server)
 * until on_close returns. Teardown is two steps because lws on a foreign
 * loop needs its handles closed before it can finish: transport_free()
 * (safe anywhere, also inside a loop callback) closes every connection, each
 * getting on_close; once uv_run() has returned, transport_destroy() finishes
 * and frees the transport, after which uv_loop_close() succeeds.
 */
#ifndef WSMUX_TRANSPORT_LWS_H
#define WSMUX_TRANSPORT_LWS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define TRANSPORT_SUBPROTOCOL "wsmux.v1"
#define TRANSPORT_MSG_MAX (64 * 1024)

/* WebSocket close codes we send (RFC 6455). */
#define TRANSPORT_CLOSE_NORMAL 1000
#define TRANSPORT_CLOSE_GOING_AWAY 1001
#define TRANSPORT_CLOSE_PROTOCOL 1002
#define TRANSPORT_CLOSE_INTERNAL 1011

typedef struct transport transport_t;
typedef struct transport_conn transport_conn_t;

typedef enum {
  TRANSPORT_END_CLOSED = 0, /* closed after being open */
  TRANSPORT_END_HTTP,       /* client: the server answered with an HTTP error */
  TRANSPORT_END_NETWORK,    /* client: could not connect, or lost the socket */
  TRANSPORT_END_TLS,        /* client: TLS handshake / certificate failure */
} transport_end_t;

typedef struct {
  transport_end_t kind;
  int was_open;    /* the WebSocket had been established */
  int http_status; /* TRANSPORT_END_HTTP */
  int close_code;  /* WebSocket close code received, 0 when none */
  char message[512];
} transport_close_t;

/* A plain HTTP request to the server (not a WebSocket upgrade). Strings
 * are NUL-terminated and valid during the on_http call only. */
typedef struct {
  const char *method; /* "GET", "POST", "PATCH", "PUT", "DELETE" */
  const char *path;   /* URL-decoded path, without the query */
  const char *bearer; /* token of "Authorization: Bearer", "" when none */
  const uint8_t *body;
  size_t body_len; /* at most TRANSPORT_HTTP_BODY_MAX */
} transport_http_request_t;

/* on_http's answer. body is malloc'd by the handler (or NULL) and freed by
 * the transport; content_type must be a static string. */
typedef struct {
  int status;
  const char *content_type;
  char *body;
  size_t body_len;
} transport_http_response_t;

#define TRANSPORT_HTTP_BODY_MAX (64 * 1024)

/* Room for what authorize() keeps for the connection (see below). */
#define TRANSPORT_AUTH_MAX 64

typedef struct {
  /* Server only: decide on an upgrade request before it is answered.
   * Return 0 to accept, after copying at most TRANSPORT_AUTH_MAX bytes of
   * plain data (borrowed pointers, ids) into auth for
   * transport_conn_auth(); or an HTTP status (401, 404, 409...) with the
   * text for the body in msg. Nothing is owned, so nothing leaks when the
   * upgrade then fails. */
  int (*authorize)(void *ctx, const char *path, const char *bearer,
                   const char *resume, void *auth, char *msg, size_t msglen);
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
  /* Server only, optional: answer a plain HTTP request synchronously.
   * Without it every such request gets 404. A body over
   * TRANSPORT_HTTP_BODY_MAX is answered 413 without calling it. */
  void (*on_http)(void *ctx, const transport_http_request_t *req,
                  transport_http_response_t *resp);
  /* Server only, optional: a connection was dropped because it had not
   * sent a whole request head (upgrade or HTTP request) within the
   * handshake timeout (TLS handshake included). */
  void (*on_handshake_timeout)(void *ctx);
} transport_handlers_t;

typedef struct {
  const char *host; /* listen address, numeric */
  int port;         /* 0: the kernel picks */
  const char *cert; /* PEM paths, NULL with plain */
  const char *key;
  int plain;                    /* serve ws:// without TLS */
  unsigned handshake_timeout_s; /* drop connections not upgraded by then */
} transport_server_opts_t;

typedef struct {
  const char *url;     /* wss://host[:port] or ws://host[:port] (base) */
  const char *path;    /* request path */
  const char *token;   /* sent as Authorization: Bearer */
  const char *ca_file; /* extra trusted CA (PEM), or NULL */
  int insecure;        /* skip certificate verification */
} transport_client_opts_t;

/* NULL with a message in err on failure. */
transport_t *transport_server_new(uv_loop_t *loop,
                                  const transport_server_opts_t *opts,
                                  const transport_handlers_t *h, void *ctx,
                                  char *err, size_t errlen);
/* The port the server listens on. */
int transport_server_port(const transport_t *t);

transport_t *transport_client_new(uv_loop_t *loop,
                                  const transport_client_opts_t *opts,
                                  const transport_handlers_t *h, void *ctx,
                                  char *err, size_t errlen);
/* The session to resume on the next connection (X-Wsmux-Resume: hex id),
 * or NULL for a new one. */
void transport_client_set_resume(transport_t *t, const char *hex_id);
/* Start one connection. NULL with err on an immediate failure. */
transport_conn_t *transport_client_connect(transport_t *t, void *user,
                                           char *err, size_t errlen);

/*
 * One HTTP(S) request from a client, for the CLI's admin commands: runs a
 * private libuv loop until the answer is complete (the CLI has nothing else
 * to do meanwhile). The base URL is the edge URL (wss:// means https, ws://
 * http); TLS is verified as for the WebSocket (system store, ca_file,
 * insecure).
 */
typedef struct {
  const char *url;     /* wss://host[:port][/prefix] or ws://... */
  const char *ca_file; /* or NULL */
  int insecure;
  const char *token; /* Authorization: Bearer, or NULL */
  const char *method;
  const char *path; /* appended to the URL's prefix */
  const char *body; /* JSON, or NULL */
  size_t body_len;
  unsigned timeout_ms; /* whole request; 0 = 30 s */
} transport_http_call_t;

typedef struct {
  int status; /* HTTP status, 0 when no answer */
  char *
      body; /* NUL-terminated, malloc'd; free with transport_http_result_free */
  size_t body_len;
  int tls_error;   /* the failure was the certificate */
  char error[512]; /* why there is no answer */
} transport_http_result_t;

/* 0 with r->status and r->body, or -1 with r->error (network, TLS,
 * timeout). */
int transport_http_call(const transport_http_call_t *call,
                        transport_http_result_t *r);
void transport_http_result_free(transport_http_result_t *r);

void transport_free(transport_t *t);
/* After uv_run() returned: finish lws and free t (calls transport_free
 * first if needed). */
void transport_destroy(transport_t *t);

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
