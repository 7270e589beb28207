/*
 * The edge application: serves wsmux WebSockets, authorizes each upgrade
 * against the platform model and the store's view (SSH switches), relays
 * every stream to its service's upstream, and answers the admin API
 * (docs/ADMIN_API.md) on the same listener. One edge_t per process.
 *
 * Ownership: the edge borrows the platform, the store and the log (all
 * must outlive it; it writes the services' ssh_enabled as the store's view
 * changes) and owns its transport, connections and relays. Close the
 * store once the edge has halted and before edge_free(): admin requests
 * still waiting for a write are answered then.
 */
#ifndef WSMUX_EDGE_H
#define WSMUX_EDGE_H

#include <stddef.h>
#include <uv.h>

#include "base/log.h"
#include "edge/metrics.h"
#include "edge/platform.h"
#include "edge/store.h"

typedef struct edge edge_t;

/* Start serving: applies the view's SSH switches to the platform and
 * takes the store's hooks. NULL with a message in err. */
edge_t *edge_start(uv_loop_t *loop, platform_t *platform, store_t *store,
                   const log_t *log, char *err, size_t errlen);
/* The port actually listened on. */
int edge_port(const edge_t *e);
/* Split "/v1/projects/{p}/services/{s}/ssh" into p and s (each at most
 * idlen-1 bytes). Returns 0, or -1 when the path is not of that form. */
int edge_parse_path(const char *path, char *project, char *service,
                    size_t idlen);
/* The metrics now: the counters, and the gauges and byte totals summed
 * over the open sessions (edge/metrics.h). */
void edge_metrics(const edge_t *e, metrics_t *out);
/* cb(ctx) once the edge has stopped serving (after edge_stop, when every
 * stream finished or the drain timeout passed): the moment to close what
 * else keeps the loop running. */
void edge_on_halt(edge_t *e, void (*cb)(void *ctx), void *ctx);
/* Drain: GOAWAY to every session, refuse new ones, and stop once the
 * streams are done (drainTimeoutMs at most); a second call stops at once.
 * Safe inside loop callbacks. */
void edge_stop(edge_t *e);
/* After uv_run() has returned: free everything now. */
void edge_free(edge_t *e);

#endif
