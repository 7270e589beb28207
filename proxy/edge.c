#include "proxy/edge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/admin.h"
#include "proxy/identity.h"
#include "proxy/relay.h"
#include "proxy/upstream.h"
#include "ws/frame.h"
#include "ws/transport_lws.h"

#define ID_MAX 129
/* RFC 6455 "policy violation": the service no longer allows SSH. */
#define EDGE_CLOSE_POLICY 1008

typedef struct edge_conn edge_conn_t;

struct edge {
  uv_loop_t *loop;
  platform_t *platform;
  const log_t *log;
  transport_t *transport;
  transport_handlers_t handlers;
  relay_hooks_t hooks;
  admin_t *admin;
  /* Open connections of each service, indexed like platform->services, so
   * disabling SSH can close exactly that service's WebSockets. */
  edge_conn_t **by_service;
};

/* What authorize() keeps for a connection: borrowed platform records. */
typedef struct {
  const platform_service_t *svc;
  const platform_token_t *tok;
} edge_auth_t;

_Static_assert(sizeof(edge_auth_t) <= TRANSPORT_AUTH_MAX,
               "edge_auth_t must fit the transport's auth room");

/* One WebSocket. */
struct edge_conn {
  edge_t *e;
  transport_conn_t *c;
  edge_auth_t auth;
  relay_t *relay;
  /* In e->by_service[service index] until it closes or is being closed. */
  edge_conn_t *next;
  edge_conn_t **pprev; /* NULL when not listed */
};

static size_t service_index(const edge_t *e, const platform_service_t *svc) {
  return (size_t)(svc - e->platform->services);
}

static void conn_link(edge_conn_t *ec) {
  edge_conn_t **head = &ec->e->by_service[service_index(ec->e, ec->auth.svc)];

  ec->next = *head;
  if (ec->next != NULL)
    ec->next->pprev = &ec->next;
  ec->pprev = head;
  *head = ec;
}

static void conn_unlink(edge_conn_t *ec) {
  if (ec->pprev == NULL)
    return;
  *ec->pprev = ec->next;
  if (ec->next != NULL)
    ec->next->pprev = ec->pprev;
  ec->next = NULL;
  ec->pprev = NULL;
}

int edge_parse_path(const char *path, char *project, char *service,
                    size_t idlen) {
  static const char pre[] = "/v1/projects/";
  if (strncmp(path, pre, sizeof(pre) - 1) != 0)
    return -1;
  const char *p = path + sizeof(pre) - 1;
  const char *slash = strchr(p, '/');
  if (slash == NULL || slash == p || (size_t)(slash - p) >= idlen)
    return -1;
  memcpy(project, p, (size_t)(slash - p));
  project[slash - p] = '\0';
  static const char mid[] = "/services/";
  if (strncmp(slash, mid, sizeof(mid) - 1) != 0)
    return -1;
  const char *s = slash + sizeof(mid) - 1;
  const char *end = strchr(s, '/');
  if (end == NULL || end == s || (size_t)(end - s) >= idlen ||
      strcmp(end, "/ssh") != 0)
    return -1;
  memcpy(service, s, (size_t)(end - s));
  service[end - s] = '\0';
  return 0;
}

static int on_authorize(void *ctx, const char *path, const char *bearer,
                        void *auth, char *msg, size_t msglen) {
  edge_t *e = ctx;
  char project[ID_MAX], service[ID_MAX];
  if (edge_parse_path(path, project, service, sizeof(project)) != 0) {
    snprintf(msg, msglen, "unknown path");
    return 404;
  }
  edge_auth_t a;
  platform_access_t r =
      platform_check_ssh(e->platform, bearer, bearer ? strlen(bearer) : 0,
                         project, service, &a.svc, &a.tok, msg, msglen);
  if (r != PLATFORM_ACCESS_OK) {
    log_msg(e->log, LOG_INFO, "refused %s: %s", path, msg);
    return platform_access_http_status(r);
  }
  memcpy(auth, &a, sizeof(a));
  return 0;
}

static void on_incoming(void *ctx, relay_stream_t *rs) {
  edge_conn_t *ec = ctx;
  const platform_service_t *svc = ec->auth.svc;
  log_msg(ec->e->log, LOG_DEBUG, "stream %u: connecting to %s:%u",
          relay_stream_id(rs), svc->upstream_host, svc->upstream_port);
  upstream_connect(ec->e->loop, rs, svc->upstream_host, svc->upstream_port,
                   ec->e->platform->connect_timeout_ms);
}

static void on_finished(void *ctx, relay_stream_t *rs, uint16_t code,
                        const char *reason, const relay_stats_t *st) {
  edge_conn_t *ec = ctx;
  upstream_detach(rs);
  log_msg(ec->e->log, code == FRAME_CODE_NO_ERROR ? LOG_DEBUG : LOG_INFO,
          "stream %u closed: token=%s project=%s service=%s to_service=%llu "
          "from_service=%llu result=%s%s%s",
          relay_stream_id(rs), ec->auth.tok->id, ec->auth.svc->project_id,
          ec->auth.svc->id, (unsigned long long)st->bytes_written,
          (unsigned long long)st->bytes_read, frame_code_name(code),
          reason && *reason ? ": " : "", reason ? reason : "");
}

static int on_open(void *ctx, transport_conn_t *c) {
  edge_t *e = ctx;
  edge_auth_t auth;
  memcpy(&auth, transport_conn_auth(c), sizeof(auth));
  /* SSH may have been disabled between the upgrade's authorization and
   * now (an admin request can run in between). */
  if (!auth.svc->ssh_enabled) {
    log_msg(e->log, LOG_INFO,
            "connection refused: SSH was disabled for service %s meanwhile",
            auth.svc->id);
    return -1;
  }
  edge_conn_t *ec = calloc(1, sizeof(*ec));
  if (ec == NULL)
    return -1;
  ec->e = e;
  ec->c = c;
  ec->auth = auth;
  session_config_t cfg = {.role = SESSION_ROLE_SERVER,
                          .window = e->platform->window,
                          .max_streams = e->platform->max_streams};
  ec->relay = relay_new(e->loop, c, &cfg, &e->hooks, ec, e->log);
  if (ec->relay == NULL) {
    free(ec);
    return -1;
  }
  transport_conn_set_user(c, ec);
  conn_link(ec);
  log_msg(e->log, LOG_INFO, "connection open: token=%s project=%s service=%s",
          ec->auth.tok->id, ec->auth.svc->project_id, ec->auth.svc->id);
  return 0;
}

static int on_rx(void *ctx, transport_conn_t *c, const uint8_t *data,
                 size_t len, int eom, char *msg, size_t msglen) {
  edge_conn_t *ec = transport_conn_user(c);
  int rc = relay_on_rx(ec->relay, data, len, eom, msg, msglen);
  if (rc != 0)
    log_msg(ec->e->log, LOG_WARN, "protocol error from client (token=%s): %s",
            ec->auth.tok->id, msg);
  return rc;
}

static size_t on_writable(void *ctx, transport_conn_t *c, uint8_t *buf,
                          size_t cap) {
  edge_conn_t *ec = transport_conn_user(c);
  return ec ? relay_on_writable(ec->relay, buf, cap) : 0;
}

static void on_close(void *ctx, transport_conn_t *c,
                     const transport_close_t *why) {
  edge_conn_t *ec = transport_conn_user(c);
  if (ec == NULL)
    return;
  log_msg(ec->e->log, LOG_INFO, "connection closed: token=%s service=%s: %s",
          ec->auth.tok->id, ec->auth.svc->id,
          why->message[0] ? why->message : "closed");
  transport_conn_set_user(c, NULL);
  conn_unlink(ec);
  relay_free(ec->relay, "connection to the proxy closed");
  free(ec);
}

/* Admin hook: close every open WebSocket of svc (and so its streams). */
static void on_ssh_disabled(void *ctx, const platform_service_t *svc) {
  edge_t *e = ctx;
  edge_conn_t **head = &e->by_service[service_index(e, svc)];
  char reason[ID_MAX + 40];
  size_t n = 0;

  snprintf(reason, sizeof(reason), "SSH was disabled for service %s", svc->id);
  /* Unlinked first: on_close may come later, and must not find it. */
  while (*head != NULL) {
    edge_conn_t *ec = *head;
    conn_unlink(ec);
    transport_conn_close(ec->c, EDGE_CLOSE_POLICY, reason);
    n++;
  }
  log_msg(e->log, LOG_INFO,
          "SSH disabled for project=%s service=%s: closing %zu connection(s)",
          svc->project_id, svc->id, n);
}

static void on_admin_warn(void *ctx, const char *msg) {
  edge_t *e = ctx;
  log_msg(e->log, LOG_WARN, "admin: %s", msg);
}

static void on_http(void *ctx, const transport_http_request_t *req,
                    transport_http_response_t *resp) {
  edge_t *e = ctx;
  admin_response_t r;
  char path[IDENTITY_QUOTE_SIZE];

  admin_handle(e->admin, req->method, req->path, req->bearer,
               (const char *)req->body, req->body_len, &r);
  /* The path is the client's (URL-decoded, so it may hold a line break):
   * quoted and cleaned. The token is never logged; the status says whether
   * it was accepted. */
  identity_quote(path, sizeof(path), req->path);
  log_msg(e->log, r.status >= 500 ? LOG_WARN : LOG_INFO, "admin: %s %s: %d",
          req->method, path, r.status);
  resp->status = r.status;
  if (r.content_type != NULL)
    resp->content_type = r.content_type;
  resp->body = r.body; /* the transport frees it */
  resp->body_len = r.body_len;
}

static void edge_free(edge_t *e) {
  admin_free(e->admin);
  free(e->by_service);
  free(e);
}

edge_t *edge_start(uv_loop_t *loop, platform_t *platform, state_t *state,
                   const log_t *log, char *err, size_t errlen) {
  edge_t *e = calloc(1, sizeof(*e));
  if (e == NULL || (platform->nservices > 0 &&
                    (e->by_service = calloc(platform->nservices,
                                            sizeof(*e->by_service))) == NULL)) {
    snprintf(err, errlen, "out of memory");
    state_free(state);
    free(e);
    return NULL;
  }
  e->loop = loop;
  e->platform = platform;
  e->log = log;
  admin_hooks_t ah = {
      .ssh_disabled = on_ssh_disabled, .warn = on_admin_warn, .ctx = e};
  e->admin = admin_new(platform, state, &ah);
  if (e->admin == NULL) {
    snprintf(err, errlen, "out of memory");
    edge_free(e);
    return NULL;
  }
  e->handlers = (transport_handlers_t){.authorize = on_authorize,
                                       .on_open = on_open,
                                       .on_rx = on_rx,
                                       .on_writable = on_writable,
                                       .on_close = on_close,
                                       .on_http = on_http};
  e->hooks = (relay_hooks_t){.incoming = on_incoming, .finished = on_finished};
  transport_server_opts_t o = {.host = platform->listen_host,
                               .port = platform->listen_port,
                               .cert = platform->tls_cert,
                               .key = platform->tls_key,
                               .plain = platform->plain_ws};
  e->transport = transport_server_new(loop, &o, &e->handlers, e, err, errlen);
  if (e->transport == NULL) {
    edge_free(e);
    return NULL;
  }
  return e;
}

int edge_port(const edge_t *e) {
  return transport_server_port(e->transport);
}

void edge_stop(edge_t *e) {
  transport_free(e->transport);
}

void edge_destroy(edge_t *e) {
  transport_destroy(e->transport);
  edge_free(e);
}
