/*
 * One HTTP(S) request from a client, for the CLI's admin commands: runs a
 * private libuv loop until the answer is complete (the CLI has nothing else
 * to do meanwhile). The base URL is the edge URL (wss:// means https, ws://
 * http); the stream is the WebSocket's (ws/netconn: directly or through an
 * HTTP proxy's CONNECT, TLS verified the same way: system store, ca_file,
 * insecure). HTTP/1.1 with Connection: close; the answer's body is
 * delimited by Content-Length, the chunked coding or the end of the stream.
 *
 * Ownership: the result's body is malloc'd; http_client_result_free()
 * releases it.
 */
#ifndef WSMUX_HTTP_CLIENT_H
#define WSMUX_HTTP_CLIENT_H

#include <stddef.h>

#include "ws/http_proxy.h"

typedef struct {
  const char *url;     /* wss://host[:port][/prefix] or ws://... */
  const char *ca_file; /* or NULL */
  int insecure;
  const char *token; /* Authorization: Bearer, or NULL */
  const char *method;
  const char *path; /* appended to the URL's prefix */
  const char *body; /* JSON, or NULL */
  size_t body_len;
  unsigned timeout_ms;       /* whole request; 0 = 30 s */
  const http_proxy_t *proxy; /* HTTP proxy to tunnel through, or NULL */
} http_client_request_t;

typedef struct {
  int status;       /* HTTP status, 0 when no answer */
  char *body;       /* NUL-terminated, malloc'd */
  size_t body_len;  /* without the NUL */
  int tls_error;    /* the failure was TLS (the certificate...) */
  int proxy_status; /* the HTTP proxy refused the tunnel with this 4xx */
  char error[512];  /* why there is no answer */
} http_client_result_t;

/* 0 with r->status and r->body, or -1 with r->error (network, TLS, the
 * proxy, timeout). */
int http_client_call(const http_client_request_t *req, http_client_result_t *r);
void http_client_result_free(http_client_result_t *r);

#endif
