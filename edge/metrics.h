/*
 * The edge's metrics: a snapshot of its gauges and counters, and its
 * rendering in the Prometheus text exposition format 0.0.4. Pure data and
 * formatting, no I/O (the HTTP listener is edge/metrics_server.h).
 *
 * Counters only ever grow (the edge increments them and never resets
 * them); gauges are sampled when the snapshot is taken.
 *
 * Ownership: plain values; nothing to free.
 */
#ifndef WSMUX_METRICS_H
#define WSMUX_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4"

/* How the edge answered a client's OPEN. */
typedef enum {
  METRICS_OPEN_OK = 0,  /* upstream connected, OPEN_OK */
  METRICS_OPEN_REFUSED, /* the upstream refused the TCP connection */
  METRICS_OPEN_DENIED,  /* the edge is draining (GOAWAY sent) */
  METRICS_OPEN_LIMIT,   /* maxStreams reached on that WebSocket */
  METRICS_OPEN_ERROR,   /* unreachable, timed out, or any other failure */
  METRICS_OPEN_N
} metrics_open_t;

typedef enum {
  METRICS_RESUME_OK = 0,     /* the session was still kept: resumed */
  METRICS_RESUME_EXPIRED,    /* the session was gone: a new one started */
  METRICS_RESUME_OTHER_EDGE, /* it was another edge's: a new one started */
  METRICS_RESUME_N
} metrics_resume_t;

typedef enum {
  METRICS_AUTH_NO_TOKEN = 0, /* 401 without a bearer token */
  METRICS_AUTH_BAD_TOKEN,    /* 401 with an unknown token */
  METRICS_AUTH_FORBIDDEN,    /* 409: a job, or SSH not enabled */
  METRICS_AUTH_NOT_FOUND,    /* 404: unknown path, project or service */
  METRICS_AUTH_N
} metrics_auth_t;

typedef enum {
  METRICS_LIMIT_STREAMS = 0,       /* OPEN_FAIL(LIMIT): maxStreams */
  METRICS_LIMIT_CONNS_PER_TOKEN,   /* HTTP 429: maxConnectionsPerToken */
  METRICS_LIMIT_HANDSHAKE_TIMEOUT, /* dropped: handshakeTimeoutMs */
  METRICS_LIMIT_UNAUTH,            /* closed at accept: maxUnauthenticated */
  METRICS_LIMIT_UNAUTH_ADDR,       /* ...: maxUnauthenticatedPerAddress */
  METRICS_LIMIT_STREAMS_PER_TOKEN, /* OPEN_FAIL(LIMIT): maxStreamsPerToken */
  METRICS_LIMIT_OPEN_FILES,        /* OPEN_FAIL(LIMIT): fdReserve reached */
  METRICS_LIMIT_N
} metrics_limit_t;

typedef struct {
  /* gauges */
  uint64_t connections_open; /* WebSockets carrying a session */
  uint64_t streams_open;     /* streams of every session, kept ones too */
  /* counters */
  uint64_t connections_total; /* WebSockets accepted (on_open) */
  uint64_t stream_opens[METRICS_OPEN_N];
  uint64_t bytes_to_upstream;   /* from the proxies, written to upstreams */
  uint64_t bytes_from_upstream; /* read from upstreams, sent to the proxies */
  uint64_t resumes[METRICS_RESUME_N];
  uint64_t auth_failures[METRICS_AUTH_N];
  uint64_t limit_rejections[METRICS_LIMIT_N];
  /* the store (edge/store.h) */
  int store_postgres;         /* the backend: 0 file, 1 postgres */
  uint64_t store_up;          /* gauge: 1 while the backend is reachable */
  uint64_t store_view_age_ms; /* gauge: 0 while up, else since it went */
  uint64_t store_reloads;     /* views read from the backend */
  uint64_t store_writes[2];   /* made durable, refused by the backend */
  uint64_t store_outages;     /* times the backend went away */
  uint64_t state_unavailable; /* WebSockets and API calls refused 503 */
  uint64_t unauthenticated;   /* gauge: connections not authorized yet */
  uint64_t malformed;         /* requests refused by the HTTP checks */
} metrics_t;

/* Upper bound of metrics_render's output, whatever the values. */
#define METRICS_TEXT_MAX 8192

/*
 * Write m as Prometheus text (every metric with # HELP and # TYPE, ending
 * with a newline) into buf, which has room for cap bytes, NUL-terminated
 * when cap > 0. Returns the text's length, as snprintf: the output was
 * complete iff the result is < cap.
 */
size_t metrics_render(const metrics_t *m, char *buf, size_t cap);

#endif
