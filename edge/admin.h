/*
 * The edge's admin API (docs/ADMIN_API.md) as a pure function over the
 * platform model and the edge state: a request in, a status and a body
 * out. No sockets here, so every route is unit-tested; the edge calls
 * admin_handle() from the transport's on_http handler.
 *
 * Changes go copy-then-swap (edge/state.h): the new state is written to
 * the state file first and replaces the old one in memory only when that
 * worked, so a failed write (500) changes nothing.
 *
 * Ownership: an admin_t borrows the platform (which must outlive it; the
 * admin writes its services' ssh_enabled) and owns the state it is given.
 */
#ifndef WSMUX_ADMIN_H
#define WSMUX_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "edge/platform.h"
#include "edge/state.h"

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
  /* SSH of svc was just disabled: close its open connections. Optional. */
  void (*ssh_disabled)(void *ctx, const platform_service_t *svc);
  /* Something worth a log line that is not an error for the client (the
   * state was saved but its directory could not be synced). Optional. */
  void (*warn)(void *ctx, const char *msg);
  /* Current time in Unix seconds; NULL means time(). Tests set it. */
  int64_t (*now)(void *ctx);
  void *ctx;
} admin_hooks_t;

typedef struct admin admin_t;

/* Takes ownership of state (also on failure); hooks may be NULL. Applies
 * the state's SSH switches to the platform. NULL when out of memory. */
admin_t *admin_new(platform_t *platform, state_t *state,
                   const admin_hooks_t *hooks);
void admin_free(admin_t *a);
/* The current state (valid until the next admin_handle()). */
const state_t *admin_state(const admin_t *a);

/*
 * Answer one request. method and path as received (path without query,
 * URL-decoded), bearer the token of "Authorization: Bearer" ("" or NULL
 * when none), body/len the request body. Fills *resp (release with
 * admin_response_clear()) and returns resp->status.
 */
int admin_handle(admin_t *a, const char *method, const char *path,
                 const char *bearer, const char *body, size_t len,
                 admin_response_t *resp);
void admin_response_clear(admin_response_t *resp);

#endif
