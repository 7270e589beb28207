/*
 * The platform model the edge serves: API tokens, projects and services,
 * loaded from the edge's JSON config (docs/EDGE_CONFIG.md). Pure data and
 * checks, no I/O beyond reading the config file.
 *
 * Ownership: platform_t owns every string and array reachable from it;
 * pointers returned by lookups stay valid until platform_free().
 */
#ifndef WSMUX_PLATFORM_H
#define WSMUX_PLATFORM_H

#include <stddef.h>

#include "base/cidr.h"
#include <stdint.h>

typedef enum {
  PLATFORM_KIND_SERVICE = 0,
  PLATFORM_KIND_JOB = 1,
} platform_kind_t;

/* What a token may do (docs/ADMIN_API.md, "Roles"). */
typedef enum {
  PLATFORM_ROLE_ADMIN = 0,  /* everything */
  PLATFORM_ROLE_MEMBER = 1, /* list, read identities and keys, connect */
} platform_role_t;

typedef struct {
  char *id;           /* shown in logs, never the token itself */
  uint8_t sha256[32]; /* SHA-256 of the token's bytes */
  platform_role_t role;
  int role_default; /* the config gave no "role": admin, and a warning */
  /* The only projects it may see and use (ids of the config's projects,
   * at least one); NULL/0: every project. */
  char **projects;
  size_t nprojects;
} platform_token_t;

typedef struct {
  char *id;
  char *name;
} platform_project_t;

typedef struct {
  char *id;
  char *project_id;
  char *name;
  platform_kind_t kind;
  char **tags;
  size_t ntags;
  /* Effective value: the config's, replaced by the state file's override
   * (state_apply()) so that platform_check_ssh() sees what the admin API
   * set. */
  int ssh_enabled;        /* now: the config's, or the store's switch */
  int ssh_enabled_config; /* the config's sshEnabled */
  char *upstream_host;    /* numeric IPv4/IPv6 or host name */
  uint16_t upstream_port;
} platform_service_t;

typedef struct {
  /* listener */
  char *listen_host;
  uint16_t listen_port;
  int plain_ws;   /* 1: serve ws:// without TLS (explicit opt-in) */
  char *tls_cert; /* PEM paths; required unless plain_ws */
  char *tls_key;
  uint32_t window;             /* per-stream receive window, bytes */
  uint32_t max_streams;        /* per WebSocket */
  uint32_t connect_timeout_ms; /* upstream TCP connect */
  /* Sessions per API token, open or held for a resume; one more is
   * refused with 429. */
  uint32_t max_conns_per_token;
  /* Streams of one token over all its sessions; one more: LIMIT. */
  uint32_t max_streams_per_token;
  /* Descriptors an OPEN may not take (kept for WebSockets, the API). */
  uint32_t fd_reserve;
  /* A TCP/TLS connection that has not completed its HTTP upgrade (or HTTP
   * request, body included) within this time is dropped. */
  uint32_t handshake_timeout_ms;
  /* Connections whose request is not authorized yet, in all and per client
   * address (trusted proxies apart); more are closed at accept. */
  uint32_t max_unauthenticated;
  uint32_t max_unauthenticated_per_addr;
  /* Liveness: a PING every ping_interval_ms; a link on which nothing was
   * received for dead_timeout_ms is dead. dead_timeout_ms is always greater
   * than ping_interval_ms. */
  uint32_t ping_interval_ms;
  uint32_t dead_timeout_ms;
  /* How long the streams of a dropped session are kept for a resume; 0
   * disables resuming. */
  uint32_t resume_grace_ms;
  /* On SIGTERM, how long open streams may finish before they are reset; 0
   * resets them at once. */
  uint32_t drain_timeout_ms;
  char *state_file; /* identities and SSH switches (edge/state.h); never
                       NULL after a successful parse */
  char *audit_file; /* the file store's audit log (JSON lines); never NULL */
  /* "store": the postgres backend's DSN (a secret: never print it), or NULL
   * for the file backend; and its bounds. */
  char *store_dsn;
  uint32_t store_max_stale_ms;
  uint32_t store_connect_timeout_ms;
  uint32_t store_query_timeout_ms;
  /* This edge's name in a fleet (docs/PROTOCOL.md section 8): an id, the
   * host name unless "nodeId" says otherwise. Never NULL. */
  char *node_id;
  /* "trustedProxies": peers whose X-Forwarded-For is believed. */
  cidr_t *trusted;
  size_t ntrusted;
  /* Where GET /metrics is served (edge/metrics_server.h): a numeric
   * address, never the WebSocket listener's; NULL when not configured. */
  char *metrics_host;
  uint16_t metrics_port; /* 0: the kernel picks */
  /* Serve the web console's files under /console/ (edge/console.h) on
   * the listener. On by default: the files hold no data, and everything
   * the console shows comes through the admin API with a token. */
  int console;

  platform_token_t *tokens;
  size_t ntokens;
  platform_project_t *projects;
  size_t nprojects;
  platform_service_t *services;
  size_t nservices;
} platform_t;

/* Result of an SSH access check, in the order the edge checks them. */
typedef enum {
  PLATFORM_ACCESS_OK = 0,
  PLATFORM_ACCESS_UNAUTHORIZED, /* 401: missing or unknown token */
  PLATFORM_ACCESS_FORBIDDEN,    /* 403: a project outside the token's */
  PLATFORM_ACCESS_NOT_FOUND,    /* 404: unknown project or service */
  PLATFORM_ACCESS_JOB,          /* 409: target is a job */
  PLATFORM_ACCESS_SSH_DISABLED, /* 409: SSH not enabled on the service */
} platform_access_t;

/*
 * Parse a config from text (len bytes, need not be NUL-terminated).
 * Returns 0 and a new platform_t in *out, or -1 with a message naming the
 * offending field (or the byte offset of a JSON syntax error) in err.
 * Relative tls paths are resolved against base_dir when it is not NULL.
 */
int platform_parse(const char *text, size_t len, const char *base_dir,
                   platform_t **out, char *err, size_t errlen);
/* platform_parse on a file's contents; base_dir is the file's directory. */
int platform_load(const char *path, platform_t **out, char *err, size_t errlen);
void platform_free(platform_t *p);

/* Token whose SHA-256 matches (constant-time compare), or NULL. */
const platform_token_t *platform_find_token(const platform_t *p,
                                            const char *token, size_t len);
const platform_project_t *platform_find_project(const platform_t *p,
                                                const char *id);
/* Service `service_id` inside project `project_id`, or NULL. */
const platform_service_t *platform_find_service(const platform_t *p,
                                                const char *project_id,
                                                const char *service_id);

/* "admin" or "member". */
const char *platform_role_name(platform_role_t role);
/* Whether t may see and use project_id (any project when t has none). */
int platform_token_has_project(const platform_token_t *t,
                               const char *project_id);
/* For messages: "role member", "role admin for projects p1, p2" (a long
 * list cut with "..."). Written to buf (n bytes, NUL-terminated);
 * PLATFORM_DESCRIBE_SIZE suits a message. */
#define PLATFORM_DESCRIBE_SIZE 256
void platform_token_describe(const platform_token_t *t, char *buf, size_t n);

/*
 * Whether `token` (may be NULL) may open SSH streams to the service. A
 * token may connect to the services of its projects whatever its role; a
 * project outside them is refused (403) before it is looked up, so the
 * answer does not tell whether it exists. On
 * PLATFORM_ACCESS_OK sets *svc and *tok. Writes the user-facing message
 * (docs/PROTOCOL.md section 1) into msg for every other result.
 */
platform_access_t platform_check_ssh(const platform_t *p, const char *token,
                                     size_t token_len, const char *project_id,
                                     const char *service_id,
                                     const platform_service_t **svc,
                                     const platform_token_t **tok, char *msg,
                                     size_t msglen);
/* HTTP status for an access result (200, 401, 403, 404, 409). */
int platform_access_http_status(platform_access_t a);

/*
 * The client's address for logs: the TCP peer, or - when the peer is a
 * trusted proxy - the address X-Forwarded-For gives, read right to left
 * past every trusted proxy. Written to out (numeric, at most outlen-1).
 */
void platform_client_addr(const platform_t *p, const char *peer,
                          const char *forwarded_for, char *out, size_t outlen);
/* Whether ip is in trustedProxies. */
int platform_proxy_trusted(const platform_t *p, const char *ip);

#endif
