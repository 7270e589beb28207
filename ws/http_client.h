/*
 * One HTTP(S) request from a client, for the CLI's admin commands: runs a
 * private libuv loop until the answer is complete (the CLI has nothing else
 * to do meanwhile). The base URL is the edge URL (wss:// means https, ws://
 * http); TLS is verified as for the WebSocket (system store, ca_file,
 * insecure). Runs on libwebsockets' client.
 *
 * Ownership: the result's body is malloc'd; http_client_result_free()
 * releases it.
 */
#ifndef WSMUX_HTTP_CLIENT_H
#define WSMUX_HTTP_CLIENT_H

#include <stddef.h>

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
} http_client_request_t;

typedef struct {
  int status;      /* HTTP status, 0 when no answer */
  char *body;      /* NUL-terminated, malloc'd */
  size_t body_len; /* without the NUL */
  int tls_error;   /* the failure was the certificate */
  char error[512]; /* why there is no answer */
} http_client_result_t;

/* 0 with r->status and r->body, or -1 with r->error (network, TLS,
 * timeout). */
int http_client_call(const http_client_request_t *req, http_client_result_t *r);
void http_client_result_free(http_client_result_t *r);

#endif
