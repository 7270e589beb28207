#include "edge/metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

/* An snprintf-like writer: counts what would be written past cap. */
typedef struct {
  char *buf;
  size_t cap;
  size_t len;
} out_t;

static void out_printf(out_t *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void out_printf(out_t *o, const char *fmt, ...) {
  va_list ap;
  char *dst = o->len < o->cap ? o->buf + o->len : NULL;
  size_t room = o->len < o->cap ? o->cap - o->len : 0;

  va_start(ap, fmt);
  int n = vsnprintf(dst, room, fmt, ap);
  va_end(ap);
  if (n > 0)
    o->len += (size_t)n;
}

static void header(out_t *o, const char *name, const char *type,
                   const char *help) {
  out_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void single(out_t *o, const char *name, const char *type,
                   const char *help, uint64_t v) {
  header(o, name, type, help);
  out_printf(o, "%s %" PRIu64 "\n", name, v);
}

/* One counter with a label taking each of n values. */
static void labelled_as(out_t *o, const char *type, const char *name,
                        const char *help, const char *label,
                        const char *const *values, const uint64_t *v,
                        size_t n) {
  header(o, name, type, help);
  for (size_t i = 0; i < n; i++)
    out_printf(o, "%s{%s=\"%s\"} %" PRIu64 "\n", name, label, values[i], v[i]);
}

static void labelled(out_t *o, const char *name, const char *help,
                     const char *label, const char *const *values,
                     const uint64_t *v, size_t n) {
  labelled_as(o, "counter", name, help, label, values, v, n);
}

/* Label values, indexed by the enums of metrics.h. */
static const char *const open_results[METRICS_OPEN_N] = {
    "ok", "refused", "denied", "limit", "error"};
static const char *const resume_results[METRICS_RESUME_N] = {"ok", "expired",
                                                             "other_edge"};
static const char *const auth_reasons[METRICS_AUTH_N] = {
    "no_token", "bad_token", "forbidden", "not_found"};
static const char *const limits[METRICS_LIMIT_N] = {
    "streams",         "connections_per_token",       "handshake_timeout",
    "unauthenticated", "unauthenticated_per_address", "streams_per_token",
    "open_files"};

size_t metrics_render(const metrics_t *m, char *buf, size_t cap) {
  out_t o = {.buf = buf, .cap = cap, .len = 0};
  const uint64_t bytes[2] = {m->bytes_to_upstream, m->bytes_from_upstream};
  static const char *const directions[2] = {"to_upstream", "from_upstream"};

  if (cap > 0)
    buf[0] = '\0';
  single(&o, "wsmux_edge_up", "gauge", "1 while the edge is serving.", 1);
  single(&o, "wsmux_edge_connections_open", "gauge",
         "WebSockets from proxies open now.", m->connections_open);
  single(&o, "wsmux_edge_connections_total", "counter",
         "WebSockets from proxies accepted since the edge started.",
         m->connections_total);
  single(&o, "wsmux_edge_streams_open", "gauge",
         "Streams open now, with those of sessions kept for a resume.",
         m->streams_open);
  labelled(&o, "wsmux_edge_stream_opens_total",
           "Stream OPENs answered, by answer.", "result", open_results,
           m->stream_opens, METRICS_OPEN_N);
  labelled(&o, "wsmux_edge_bytes_total",
           "Stream payload bytes relayed to and from the upstreams.",
           "direction", directions, bytes, 2);
  labelled(&o, "wsmux_edge_resumes_total",
           "WebSockets that asked to resume a session, by outcome.", "result",
           resume_results, m->resumes, METRICS_RESUME_N);
  labelled(&o, "wsmux_edge_auth_failures_total",
           "Requests refused by authentication or authorization.", "reason",
           auth_reasons, m->auth_failures, METRICS_AUTH_N);
  labelled(&o, "wsmux_edge_limit_rejections_total",
           "Connections and streams refused or dropped by a limit.", "limit",
           limits, m->limit_rejections, METRICS_LIMIT_N);
  static const char *const backends[2] = {"file", "postgres"};
  const uint64_t info[2] = {!m->store_postgres, m->store_postgres != 0};
  labelled_as(&o, "gauge", "wsmux_edge_store_backend",
              "1 for the store backend of the platform state in use.",
              "backend", backends, info, 2);
  single(&o, "wsmux_edge_store_up", "gauge",
         "1 while the store's backend is reachable.", m->store_up);
  single(&o, "wsmux_edge_store_view_age_seconds", "gauge",
         "How old the state served is: 0 while the backend is up, else the "
         "time since it went away.",
         m->store_view_age_ms / 1000);
  single(&o, "wsmux_edge_store_reloads_total", "counter",
         "Views of the platform state read from the backend.",
         m->store_reloads);
  static const char *const write_results[2] = {"ok", "failed"};
  labelled(&o, "wsmux_edge_store_writes_total",
           "Admin writes made durable or refused by the backend.", "result",
           write_results, m->store_writes, 2);
  single(&o, "wsmux_edge_store_outages_total", "counter",
         "Times the store's backend went away.", m->store_outages);
  single(&o, "wsmux_edge_connections_unauthenticated", "gauge",
         "Connections whose request is not authorized yet.",
         m->unauthenticated);
  single(&o, "wsmux_edge_requests_malformed_total", "counter",
         "HTTP requests refused for their framing or headers (400, 411).",
         m->malformed);
  single(&o, "wsmux_edge_state_unavailable_total", "counter",
         "WebSockets and API reads refused 503 because the state was too "
         "old.",
         m->state_unavailable);
  return o.len;
}
