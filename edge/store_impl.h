/*
 * Private to edge/store*.c: the store as its backends see it. A backend
 * embeds store_t as the first member of its own struct and fills ops; the
 * public calls in store.c check arguments and dispatch.
 */
#ifndef WSMUX_STORE_IMPL_H
#define WSMUX_STORE_IMPL_H

#include "edge/store.h"

typedef struct {
  void (*identity_create)(store_t *s, const identity_t *id,
                          const char *token_id, store_cb cb, void *ctx);
  void (*identity_update)(store_t *s, const identity_t *id, int64_t base_rev,
                          const char *token_id, store_cb cb, void *ctx);
  void (*identity_delete)(store_t *s, const char *id, int64_t base_rev,
                          const char *token_id, store_cb cb, void *ctx);
  void (*ssh_set)(store_t *s, const char *project_id, const char *service_id,
                  int enabled, const char *token_id, store_cb cb, void *ctx);
  void (*audit_list)(store_t *s, size_t limit, store_audit_cb cb, void *ctx);
  int (*view_fresh)(const store_t *s);
  int shared; /* other edges write to it too */
  void (*close)(store_t *s);
} store_ops_t;

struct store {
  const store_ops_t *ops;
  uv_loop_t *loop;
  const log_t *log;
  store_hooks_t hooks;
  state_t *view; /* never NULL once open */
  store_stats_t stats;
  uint64_t view_at; /* uv_now() when the view was last known current */
};

/* Make next the view (taking it), telling the changed hook. */
void store_view_replace(store_t *s, state_t *next);
/* Answer cb with a status and message (no identity). */
void store_answer(store_cb cb, void *ctx, store_status_t status,
                  const char *message);

#endif
