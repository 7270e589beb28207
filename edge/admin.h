/*
 * The edge's admin API (docs/ADMIN_API.md): a request in, a status and a
 * body out, over the platform model and the store (edge/store.h). No
 * sockets here, so every route is unit-tested; the edge calls
 * admin_handle() from the transport's on_http handler.
 *
 * Reads are answered from the store's view at once; writes go to the
 * store and are answered when it has made them durable (at once for the
 * file backend, after the database's commit for postgres). A 2xx is only
 * ever sent for a change that was made; a database that is away gives 503.
 *
 * Ownership: an admin_t borrows the platform and the store, which must
 * outlive it and every request still waiting for its reply.
 */
#ifndef WSMUX_ADMIN_H
#define WSMUX_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "edge/platform.h"
#include "edge/store.h"

/* Request bodies beyond this are refused with 413. */
#define ADMIN_BODY_MAX (64 * 1024)

#define ADMIN_TYPE_JSON "application/json"
#define ADMIN_TYPE_TEXT "text/plain; charset=utf-8"

typedef struct {
  int status;
  const char *content_type; /* static; NULL when there is no body (204) */
  char *body;               /* malloc'd, owned by the caller; or NULL */
  size_t body_len;
} admin_response_t;

typedef struct {
  const char *method; /* as received */
  const char *path;   /* without the query, URL-decoded */
  const char *bearer; /* the token of "Authorization: Bearer"; "" or NULL */
  const char *body;
  size_t len;
} admin_request_t;

/* The answer to one request; the reply takes resp->body. */
typedef void (*admin_reply_fn)(void *ctx, admin_response_t *resp);

/* What an edge holds open for one service: WebSockets of proxies
 * (attached or held for a resume) and the streams (ssh, scp, ...) in them. */
typedef struct {
  size_t proxies;
  size_t streams;
  int other_edges; /* the store is shared: other edges may hold more */
} admin_open_t;

typedef struct {
  /* SSH of svc was just disabled: close its open connections. Optional. */
  void (*ssh_disabled)(void *ctx, const platform_service_t *svc);
  /* Fill *out for svc; a Service then carries "open". Optional. */
  void (*open_count)(void *ctx, const platform_service_t *svc,
                     admin_open_t *out);
  /* Current time in Unix seconds; NULL means time(). Tests set it. */
  int64_t (*now)(void *ctx);
  void *ctx;
} admin_hooks_t;

typedef struct admin admin_t;

/* hooks may be NULL. NULL when out of memory. */
admin_t *admin_new(platform_t *platform, store_t *store,
                   const admin_hooks_t *hooks);
void admin_free(admin_t *a);

/* Answer one request: reply is called exactly once, before this returns
 * (reads, errors, the file store) or later (a database write). The
 * request's strings are copied. */
void admin_handle(admin_t *a, const admin_request_t *req, admin_reply_fn reply,
                  void *ctx);
void admin_response_clear(admin_response_t *resp);

#endif
