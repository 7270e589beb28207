/* The store's public calls over its backends. See store.h. */
#include "edge/store.h"

#include <assert.h>
#include <stdlib.h>

#include "edge/store_impl.h"

void store_view_replace(store_t *s, state_t *next) {
  state_t *before = s->view;
  assert(next != NULL);
  s->view = next;
  s->view_at = uv_now(s->loop);
  if (s->hooks.changed != NULL && before != NULL)
    s->hooks.changed(s->hooks.ctx, before, next);
  state_free(before);
}

void store_answer(store_cb cb, void *ctx, store_status_t status,
                  const char *message) {
  store_result_t r = {.status = status, .message = message ? message : ""};
  cb(ctx, &r);
}

void store_set_hooks(store_t *s, const store_hooks_t *hooks) {
  s->hooks = *hooks;
}

const state_t *store_view(const store_t *s) {
  return s->view;
}

int store_view_fresh(const store_t *s) {
  return s->ops->view_fresh(s);
}

int store_is_shared(const store_t *s) {
  return s->ops->shared;
}

void store_stats(const store_t *s, store_stats_t *out) {
  *out = s->stats;
  out->view_age_ms =
      s->view_at != 0 && !s->stats.up ? uv_now(s->loop) - s->view_at : 0;
}

void store_identity_create(store_t *s, const identity_t *id,
                           const char *token_id, store_cb cb, void *ctx) {
  assert(id->id != NULL && id->name != NULL);
  s->ops->identity_create(s, id, token_id, cb, ctx);
}

void store_identity_update(store_t *s, const identity_t *id, int64_t base_rev,
                           const char *token_id, store_cb cb, void *ctx) {
  assert(id->id != NULL && id->name != NULL);
  s->ops->identity_update(s, id, base_rev, token_id, cb, ctx);
}

void store_identity_delete(store_t *s, const char *id, int64_t base_rev,
                           const char *token_id, store_cb cb, void *ctx) {
  s->ops->identity_delete(s, id, base_rev, token_id, cb, ctx);
}

void store_ssh_set(store_t *s, const char *project_id, const char *service_id,
                   int enabled, const char *token_id, store_cb cb, void *ctx) {
  s->ops->ssh_set(s, project_id, service_id, enabled, token_id, cb, ctx);
}

void store_audit_list(store_t *s, size_t limit, store_audit_cb cb, void *ctx) {
  s->ops->audit_list(s, limit, cb, ctx);
}

void store_close(store_t *s) {
  if (s != NULL)
    s->ops->close(s);
}
