#include "proxy/edge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/relay.h"
#include "proxy/upstream.h"
#include "ws/frame.h"
#include "ws/transport_lws.h"

#define ID_MAX 129

struct edge {
  uv_loop_t *loop;
  const platform_t *platform;
  const log_t *log;
  transport_t *transport;
  transport_handlers_t handlers;
  relay_hooks_t hooks;
};

/* What authorize() keeps for a connection: borrowed platform records. */
typedef struct {
  const platform_service_t *svc;
  const platform_token_t *tok;
} edge_auth_t;

_Static_assert(sizeof(edge_auth_t) <= TRANSPORT_AUTH_MAX,
               "edge_auth_t must fit the transport's auth room");

/* One WebSocket. */
typedef struct {
  edge_t *e;
  edge_auth_t auth;
  relay_t *relay;
} edge_conn_t;

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
  edge_conn_t *ec = calloc(1, sizeof(*ec));
  if (ec == NULL)
    return -1;
  ec->e = e;
  memcpy(&ec->auth, transport_conn_auth(c), sizeof(ec->auth));
  session_config_t cfg = {.role = SESSION_ROLE_SERVER,
                          .window = e->platform->window,
                          .max_streams = e->platform->max_streams};
  ec->relay = relay_new(e->loop, c, &cfg, &e->hooks, ec, e->log);
  if (ec->relay == NULL) {
    free(ec);
    return -1;
  }
  transport_conn_set_user(c, ec);
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
  relay_free(ec->relay, "connection to the proxy closed");
  free(ec);
}

edge_t *edge_start(uv_loop_t *loop, const platform_t *platform,
                   const log_t *log, char *err, size_t errlen) {
  edge_t *e = calloc(1, sizeof(*e));
  if (e == NULL) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  e->loop = loop;
  e->platform = platform;
  e->log = log;
  e->handlers = (transport_handlers_t){.authorize = on_authorize,
                                       .on_open = on_open,
                                       .on_rx = on_rx,
                                       .on_writable = on_writable,
                                       .on_close = on_close};
  e->hooks = (relay_hooks_t){.incoming = on_incoming, .finished = on_finished};
  transport_server_opts_t o = {.host = platform->listen_host,
                               .port = platform->listen_port,
                               .cert = platform->tls_cert,
                               .key = platform->tls_key,
                               .plain = platform->plain_ws};
  e->transport = transport_server_new(loop, &o, &e->handlers, e, err, errlen);
  if (e->transport == NULL) {
    free(e);
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
  free(e);
}
