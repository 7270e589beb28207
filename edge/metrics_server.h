/*
 * The edge's metrics endpoint: a minimal HTTP/1.1 server on its own listen
 * address (metricsListen), on the process's libuv loop, answering
 * `GET /metrics` with a fresh snapshot in Prometheus text format
 * (edge/metrics.h). Anything else gets 404 (another path), 405 (another
 * method), 400 / 505 (not HTTP/1.x) or 431 (request head over
 * METRICS_SERVER_HEAD_MAX). One request per connection: every response
 * says `Connection: close`.
 *
 * Bounded by design, since anything that can reach the address can
 * connect: at most METRICS_SERVER_CONNS_MAX connections at once (more are
 * closed on accept), and each one lives at most METRICS_SERVER_TIMEOUT_MS
 * to send its request and read the answer, plus METRICS_SERVER_LINGER_MS
 * to finish closing.
 *
 * Ownership: the server owns its listener and connections, and frees
 * itself once metrics_server_close() has closed them all (keep the loop
 * running). The snapshot callback's ctx is borrowed: it must stay valid
 * until metrics_server_close().
 */
#ifndef WSMUX_METRICS_SERVER_H
#define WSMUX_METRICS_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/log.h"
#include "edge/metrics.h"

#define METRICS_SERVER_HEAD_MAX (8 * 1024)
#define METRICS_SERVER_CONNS_MAX 16
#define METRICS_SERVER_TIMEOUT_MS 5000
#define METRICS_SERVER_LINGER_MS 1000

typedef struct metrics_server metrics_server_t;

/* Fill *out with the current values; called once per GET /metrics. */
typedef void (*metrics_snapshot_fn)(void *ctx, metrics_t *out);

typedef struct {
  const char *host; /* numeric IPv4 or IPv6 address */
  uint16_t port;    /* 0: the kernel picks */
  metrics_snapshot_fn snapshot;
  void *ctx;
  const log_t *log;
} metrics_server_opts_t;

/* Listen now. NULL with a message in err (bad address, port taken). */
metrics_server_t *metrics_server_start(uv_loop_t *loop,
                                       const metrics_server_opts_t *opts,
                                       char *err, size_t errlen);
/* The port actually listened on. */
int metrics_server_port(const metrics_server_t *s);
/* Stop listening and close every connection; safe inside loop callbacks
 * and with NULL. s is invalid on return. */
void metrics_server_close(metrics_server_t *s);

#endif
