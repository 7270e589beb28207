#include "edge/edge.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "base/id.h"
#include "base/rlimit.h"
#include "base/text.h"
#include "edge/admin.h"
#include "edge/console.h"
#include "edge/identity.h"
#include "proxy/relay.h"
#include "proxy/upstream.h"
#include "ws/frame.h"
#include "ws/transport_server.h"

/* A numeric IPv6 address with its scope fits. */
#define EDGE_ADDR_MAX 64
/* RFC 6455 "policy violation": the service no longer allows SSH. */
#define EDGE_CLOSE_POLICY 1008

typedef struct edge_conn edge_conn_t;

struct edge {
  uv_loop_t *loop;
  platform_t *platform;
  store_t *store; /* borrowed */
  const log_t *log;
  transport_server_t *transport;
  transport_handlers_t handlers;
  relay_hooks_t hooks;
  admin_t
      *admin; /* Sessions of each service, indexed like platform->services, so
               * disabling SSH can close exactly that service's WebSockets. */
  edge_conn_t **by_service;
  /* Sessions of each token, with or without a WebSocket (one held for a
   * resume keeps its upstream sockets): indexed like tokens. */
  uint32_t *sessions_per_token;
  /* Descriptors: the soft limit, and those open at start (listeners, the
   * loop, the store) that the streams and WebSockets come on top of. */
  long nofile;
  long fds_base;
  int draining; /* SIGTERM: GOAWAY sent, no new sessions */
  int stopped;
  uv_timer_t *drain_timer; /* drainTimeoutMs */
  uv_timer_t *drain_check; /* 0 ms: look again once a stream is gone */
  void (*on_halt)(void *ctx);
  void *on_halt_ctx;
  /* Metrics: the counters; gauges and bytes are summed over `sessions`
   * (every session, listed or not in by_service) when asked, plus the
   * bytes of the sessions already ended, so no counter ever goes down. */
  metrics_t counters;
  edge_conn_t *sessions;
  uint64_t ended_to_upstream;
  uint64_t ended_from_upstream;
};

static void edge_maybe_drained(edge_t *e);

static void on_drain_check(uv_timer_t *t) {
  edge_maybe_drained(t->data);
}

/* What authorize() keeps for a connection: borrowed platform records and
 * the session the client asks to resume (has_resume 0: a new one). */
typedef struct {
  const platform_service_t *svc;
  const platform_token_t *tok;
  uint8_t resume_id[FRAME_SESSION_ID_LEN];
  int has_resume;
  int other_node; /* the resume names another edge: not here, surely */
  char addr[EDGE_ADDR_MAX]; /* the client's, for the log */
} edge_auth_t;

_Static_assert(sizeof(edge_auth_t) <= TRANSPORT_AUTH_MAX,
               "edge_auth_t must fit the transport's auth room");

/*
 * One client session: its relay (streams and their upstream sockets) and
 * the WebSocket carrying it, if any. A session outlives its WebSocket for
 * resumeGraceMs so a proxy that lost the link can resume it
 * (docs/PROTOCOL.md section 8). The transport conn's user points here.
 */
struct edge_conn {
  edge_t *e;
  transport_conn_t *c; /* NULL while detached */
  edge_auth_t auth;
  relay_t *relay;
  uint8_t id[FRAME_SESSION_ID_LEN];
  uv_timer_t *grace; /* while detached; closes itself */
  int no_resume;     /* closed on purpose (SSH disabled): do not keep */
  /* The limit behind the OPEN refused with LIMIT just now, for the metrics
   * (the session's own maxStreams when none). */
  int refused_limit;
  /* In e->by_service[service index] until it ends or is being closed. */
  edge_conn_t *next;
  edge_conn_t **pprev; /* NULL when not listed */
  /* In e->sessions from new_session() to session_end(). */
  edge_conn_t *all_next;
  edge_conn_t **all_pprev;
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

static size_t token_index(const edge_t *e, const platform_token_t *tok) {
  return (size_t)(tok - e->platform->tokens);
}

static edge_conn_t *find_session(edge_t *e, const edge_auth_t *a);

static void count_auth_failure(edge_t *e, platform_access_t r,
                               const char *bearer) {
  metrics_auth_t why = METRICS_AUTH_FORBIDDEN; /* a job, SSH disabled */
  if (r == PLATFORM_ACCESS_UNAUTHORIZED)
    why = bearer == NULL || *bearer == '\0' ? METRICS_AUTH_NO_TOKEN
                                            : METRICS_AUTH_BAD_TOKEN;
  else if (r == PLATFORM_ACCESS_NOT_FOUND)
    why = METRICS_AUTH_NOT_FOUND;
  e->counters.auth_failures[why]++;
}

static int on_authorize(void *ctx, const transport_upgrade_t *up, void *auth,
                        char *msg, size_t msglen) {
  edge_t *e = ctx;
  const char *path = up->path, *bearer = up->bearer, *resume = up->resume;
  char project[ID_MAX + 1], service[ID_MAX + 1];
  edge_auth_t a = {0};
  platform_client_addr(e->platform, up->origin.peer, up->origin.forwarded_for,
                       a.addr, sizeof(a.addr));
  if (edge_parse_path(path, project, service, sizeof(project)) != 0) {
    snprintf(msg, msglen, "unknown path");
    e->counters.auth_failures[METRICS_AUTH_NOT_FOUND]++;
    return 404;
  }
  if (e->draining) {
    snprintf(msg, msglen, "the edge is shutting down; try again");
    return 503;
  }
  platform_access_t r =
      platform_check_ssh(e->platform, bearer, bearer ? strlen(bearer) : 0,
                         project, service, &a.svc, &a.tok, msg, msglen);
  if (r != PLATFORM_ACCESS_OK) {
    char q[TEXT_QUOTE_SIZE];
    text_quote(q, sizeof(q), path);
    log_msg(e->log, LOG_INFO, "refused %s from=%s: %s", q, a.addr, msg);
    count_auth_failure(e, r, bearer);
    return platform_access_http_status(r);
  }
  /* The SSH switch comes from the store: a view older than maxStaleMs
   * (the database away that long) authorizes nothing new. */
  if (!store_view_fresh(e->store)) {
    snprintf(msg, msglen,
             "the platform state is unavailable (its database is away): try "
             "again later");
    e->counters.state_unavailable++;
    return 503;
  }
  a.has_resume = resume != NULL && *resume != '\0' &&
                 text_hex_decode(resume, strlen(resume), a.resume_id,
                                 sizeof(a.resume_id)) == 0;
  /* A session held for a resume counts: its upstream sockets are open. Its
   * own resume is let in, or the limit would strand it. */
  if (e->sessions_per_token[token_index(e, a.tok)] >=
          e->platform->max_conns_per_token &&
      !(a.has_resume && find_session(e, &a) != NULL)) {
    char q[TEXT_QUOTE_SIZE];
    snprintf(msg, msglen, "too many connections for this token");
    text_quote(q, sizeof(q), path);
    log_msg(e->log, LOG_WARN,
            "refused %s from=%s: token=%s has %u sessions (open, or held for "
            "a resume)",
            q, a.addr, a.tok->id, e->platform->max_conns_per_token);
    e->counters.limit_rejections[METRICS_LIMIT_CONNS_PER_TOKEN]++;
    return 429;
  }
  /* The balancer could not reach the edge that held it (gone, or no more
   * in its rotation): a new session here, and the log says why. */
  a.other_node = a.has_resume && up->node[0] != '\0' &&
                 strcmp(up->node, e->platform->node_id) != 0;
  memcpy(auth, &a, sizeof(a));
  return 0;
}

/* One walk over the sessions: the streams of tok, and the descriptors in
 * use (those at start, the connections not authorized yet, each stream's
 * upstream socket and each attached WebSocket). */
static void count_usage(const edge_t *e, const platform_token_t *tok,
                        size_t *tok_streams, long *fds) {
  transport_server_stats_t ts;
  transport_server_stats(e->transport, &ts);
  *tok_streams = 0;
  *fds = e->fds_base + (long)ts.unauthenticated;
  for (const edge_conn_t *ec = e->sessions; ec != NULL; ec = ec->all_next) {
    size_t n = relay_stream_count(ec->relay);
    if (ec->auth.tok == tok)
      *tok_streams += n;
    *fds += (long)n + (ec->c != NULL);
  }
}

/* The budgets a new stream (already counted in its session) must fit:
 * its token's streams, and the descriptors kept for new WebSockets and
 * the API. 0, or the metrics' limit with the reason for OPEN_FAIL. */
static int stream_over_budget(const edge_conn_t *ec, char *why, size_t n) {
  const edge_t *e = ec->e;
  const platform_t *p = e->platform;
  size_t tok_streams;
  long fds;
  count_usage(e, ec->auth.tok, &tok_streams, &fds);
  if (tok_streams > p->max_streams_per_token) {
    snprintf(why, n, "too many streams for this token (maxStreamsPerToken %u)",
             p->max_streams_per_token);
    return METRICS_LIMIT_STREAMS_PER_TOKEN;
  }
  if (e->nofile > 0 && fds + (long)p->fd_reserve > e->nofile) {
    snprintf(why, n,
             "the edge is near its open-files limit (%ld, %u kept for new "
             "connections)",
             e->nofile, p->fd_reserve);
    return METRICS_LIMIT_OPEN_FILES;
  }
  return 0;
}

static void on_incoming(void *ctx, relay_stream_t *rs) {
  edge_conn_t *ec = ctx;
  const platform_service_t *svc = ec->auth.svc;
  char why[128];
  int limit = stream_over_budget(ec, why, sizeof(why));
  if (limit != 0) {
    log_msg(ec->e->log, LOG_WARN,
            "stream %u refused: token=%s project=%s service=%s: %s",
            relay_stream_id(rs), ec->auth.tok->id, svc->project_id, svc->id,
            why);
    ec->refused_limit = limit;
    relay_stream_refuse(rs, FRAME_CODE_LIMIT, why);
    return;
  }
  log_msg(ec->e->log, LOG_INFO,
          "stream %u open: token=%s project=%s service=%s upstream=%s:%u",
          relay_stream_id(rs), ec->auth.tok->id, svc->project_id, svc->id,
          svc->upstream_host, svc->upstream_port);
  upstream_connect(ec->e->loop, rs, svc->upstream_host, svc->upstream_port,
                   ec->e->platform->connect_timeout_ms);
}

static void on_finished(void *ctx, relay_stream_t *rs, uint16_t code,
                        const char *reason, const relay_stats_t *st) {
  edge_conn_t *ec = ctx;
  upstream_detach(rs);
  if (ec->e->drain_check != NULL) /* draining: the count drops once gone */
    uv_timer_start(ec->e->drain_check, on_drain_check, 0, 0);
  log_msg(ec->e->log, LOG_INFO,
          "stream %u closed: token=%s project=%s service=%s to_service=%llu "
          "from_service=%llu result=%s%s%s",
          relay_stream_id(rs), ec->auth.tok->id, ec->auth.svc->project_id,
          ec->auth.svc->id, (unsigned long long)st->bytes_written,
          (unsigned long long)st->bytes_read, frame_code_name(code),
          reason && *reason ? ": " : "", reason ? reason : "");
}

/* How the edge answered an OPEN, for the metrics. */
static void on_answered(void *ctx, relay_stream_t *rs, uint16_t code) {
  edge_conn_t *ec = ctx;
  metrics_t *m = &ec->e->counters;
  switch (code) {
  case FRAME_CODE_NO_ERROR:
    m->stream_opens[METRICS_OPEN_OK]++;
    break;
  case FRAME_CODE_REFUSED:
    m->stream_opens[METRICS_OPEN_REFUSED]++;
    break;
  case FRAME_CODE_SHUTDOWN:
    m->stream_opens[METRICS_OPEN_DENIED]++;
    break;
  case FRAME_CODE_LIMIT:
    m->stream_opens[METRICS_OPEN_LIMIT]++;
    m->limit_rejections[ec->refused_limit ? ec->refused_limit
                                          : METRICS_LIMIT_STREAMS]++;
    ec->refused_limit = 0;
    break;
  default:
    m->stream_opens[METRICS_OPEN_ERROR]++;
  }
}

static void session_hello(edge_conn_t *ec, session_hello_t *h) {
  memcpy(h->id, ec->id, sizeof(h->id));
  h->grace_ms = ec->e->platform->resume_grace_ms;
}

/* The detached session a resume names, if this client may have it. */
static edge_conn_t *find_session(edge_t *e, const edge_auth_t *a) {
  for (edge_conn_t *ec = e->by_service[service_index(e, a->svc)]; ec;
       ec = ec->next)
    if (memcmp(ec->id, a->resume_id, sizeof(ec->id)) == 0 &&
        ec->auth.tok == a->tok)
      return ec;
  return NULL;
}

static void on_grace_closed(uv_handle_t *h) {
  free(h);
}

static void stop_grace(edge_conn_t *ec) {
  if (ec->grace != NULL) {
    uv_close((uv_handle_t *)ec->grace, on_grace_closed);
    ec->grace = NULL;
  }
}

/* Take over a session from its old WebSocket (if still there). */
static int resume_session(edge_conn_t *ec, transport_conn_t *c) {
  if (ec->c != NULL) {
    /* The client saw the link die before we did: drop the old one. */
    transport_conn_set_user(ec->c, NULL);
    transport_conn_abort(ec->c);
    relay_detach(ec->relay);
  }
  stop_grace(ec);
  ec->c = c;
  relay_attach(ec->relay, c);
  session_hello_t h;
  session_hello(ec, &h);
  relay_link_up(ec->relay, 1, &h);
  return 0;
}

static edge_conn_t *new_session(edge_t *e, transport_conn_t *c,
                                const edge_auth_t *auth) {
  edge_conn_t *ec = calloc(1, sizeof(*ec));
  if (ec == NULL || RAND_bytes(ec->id, sizeof(ec->id)) != 1) {
    free(ec);
    return NULL;
  }
  ec->e = e;
  ec->c = c;
  ec->auth = *auth;
  session_config_t cfg = {.role = SESSION_ROLE_SERVER,
                          .window = e->platform->window,
                          .max_streams = e->platform->max_streams};
  ec->relay = relay_new(e->loop, c, &cfg, &e->hooks, ec, e->log);
  if (ec->relay == NULL) {
    free(ec);
    return NULL;
  }
  relay_set_liveness(ec->relay, e->platform->ping_interval_ms,
                     e->platform->dead_timeout_ms);
  session_hello_t h;
  session_hello(ec, &h);
  relay_link_up(ec->relay, 0, &h);
  conn_link(ec);
  ec->all_next = e->sessions;
  if (ec->all_next != NULL)
    ec->all_next->all_pprev = &ec->all_next;
  ec->all_pprev = &e->sessions;
  e->sessions = ec;
  return ec;
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
    e->counters.auth_failures[METRICS_AUTH_FORBIDDEN]++;
    return -1;
  }
  edge_conn_t *ec =
      auth.has_resume && !auth.other_node ? find_session(e, &auth) : NULL;
  int resumed = ec != NULL;
  if (resumed) {
    resume_session(ec, c);
    memcpy(ec->auth.addr, auth.addr, sizeof(ec->auth.addr));
  } else if ((ec = new_session(e, c, &auth)) == NULL) {
    return -1;
  }
  transport_conn_set_user(c, ec);
  if (!resumed)
    e->sessions_per_token[token_index(e, auth.tok)]++;
  e->counters.connections_total++;
  if (auth.has_resume)
    e->counters.resumes[resumed           ? METRICS_RESUME_OK
                        : auth.other_node ? METRICS_RESUME_OTHER_EDGE
                                          : METRICS_RESUME_EXPIRED]++;
  log_msg(e->log, LOG_INFO,
          "connection open: token=%s project=%s service=%s from=%s%s",
          ec->auth.tok->id, ec->auth.svc->project_id, ec->auth.svc->id,
          auth.addr,
          resumed ? " (session resumed)"
          : auth.other_node
              ? " (resume of a session held by another edge: new session)"
          : auth.has_resume ? " (resume asked, session unknown: new session)"
                            : "");
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

static void session_end(edge_conn_t *ec, const char *reason) {
  edge_t *e = ec->e;
  relay_totals_t t;
  stop_grace(ec);
  conn_unlink(ec);
  assert(e->sessions_per_token[token_index(e, ec->auth.tok)] > 0);
  e->sessions_per_token[token_index(e, ec->auth.tok)]--;
  /* Its bytes stay counted; nothing is relayed once relay_free starts. */
  relay_totals(ec->relay, &t);
  e->ended_to_upstream += t.bytes_down;
  e->ended_from_upstream += t.bytes_up;
  *ec->all_pprev = ec->all_next;
  if (ec->all_next != NULL)
    ec->all_next->all_pprev = ec->all_pprev;
  relay_close(ec->relay, reason);
  free(ec);
}

static void on_grace_expired(uv_timer_t *t) {
  edge_conn_t *ec = t->data;
  log_msg(ec->e->log, LOG_INFO,
          "session expired: token=%s service=%s: not resumed within %u ms",
          ec->auth.tok->id, ec->auth.svc->id, ec->e->platform->resume_grace_ms);
  session_end(ec, "session expired: the proxy did not come back in time");
}

/* Keep a session whose WebSocket dropped, for a resume. */
static void session_detach(edge_conn_t *ec) {
  edge_t *e = ec->e;
  ec->c = NULL;
  relay_detach(ec->relay);
  ec->grace = malloc(sizeof(*ec->grace));
  if (ec->grace == NULL) {
    session_end(ec, "out of memory");
    return;
  }
  uv_timer_init(e->loop, ec->grace);
  ec->grace->data = ec;
  uv_timer_start(ec->grace, on_grace_expired, e->platform->resume_grace_ms, 0);
}

/* Whether the WebSocket merely dropped, so that the proxy will want its
 * session back (docs/PROTOCOL.md section 8), by the close code the proxy
 * (or whatever is in between) sent. */
static int link_dropped(const transport_close_t *why) {
  switch (why->close_code) {
  case 0: /* no close frame (a reset, a dead link), or one without a code */
  case TRANSPORT_CLOSE_GOING_AWAY: /* an intermediary going down */
  case TRANSPORT_CLOSE_ABNORMAL:
  case TRANSPORT_CLOSE_INTERNAL: /* a server or gateway in between failing */
  case TRANSPORT_CLOSE_RESTART:
  case TRANSPORT_CLOSE_TRY_AGAIN:
  case TRANSPORT_CLOSE_BAD_GATEWAY:
    return 1;
  default: /* 1000: the proxy ended the session; 1002 and the rest: a
            * peer that found the session broken, or another program */
    return 0;
  }
}

static void on_close(void *ctx, transport_conn_t *c,
                     const transport_close_t *why) {
  edge_conn_t *ec = transport_conn_user(c);
  if (ec == NULL)
    return;
  edge_t *e = ec->e;
  transport_conn_set_user(c, NULL);
  /* Streams that ended here while the proxy may not have their last bytes
   * count: it would reset them if the session were gone. */
  const session_t *s = relay_session(ec->relay);
  size_t open = session_stream_count(s);
  int keep = !ec->no_resume && !e->draining &&
             e->platform->resume_grace_ms > 0 && link_dropped(why) &&
             !session_failed(s) && (open > 0 || session_kept_count(s) > 0);
  log_msg(e->log, LOG_INFO, "connection closed: token=%s service=%s: %s%s",
          ec->auth.tok->id, ec->auth.svc->id,
          why->message[0] ? why->message : "closed",
          keep       ? " (streams kept for a resume)"
          : open > 0 ? " (session ended: its streams are closed)"
                     : "");
  if (keep)
    session_detach(ec);
  else
    session_end(ec, "connection to the proxy closed");
  edge_maybe_drained(e);
}

/* Liveness: nothing from the proxy for deadTimeoutMs. */
static void on_dead(void *ctx) {
  edge_conn_t *ec = ctx;
  log_msg(ec->e->log, LOG_WARN,
          "connection dead: token=%s service=%s: nothing received for %u ms",
          ec->auth.tok->id, ec->auth.svc->id, ec->e->platform->dead_timeout_ms);
  if (ec->c != NULL)
    transport_conn_abort(ec->c);
}

/* Admin hook: close every open WebSocket of svc (and so its streams). */
static void on_ssh_disabled(void *ctx, const platform_service_t *svc) {
  edge_t *e = ctx;
  edge_conn_t **head = &e->by_service[service_index(e, svc)];
  char reason[sizeof "SSH was disabled for service " + ID_MAX];
  size_t n = 0;

  snprintf(reason, sizeof(reason), "SSH was disabled for service %s", svc->id);
  /* Unlinked first: on_close may come later, and must not find it. */
  while (*head != NULL) {
    edge_conn_t *ec = *head;
    conn_unlink(ec);
    ec->no_resume = 1;
    if (ec->c != NULL)
      transport_conn_close(ec->c, EDGE_CLOSE_POLICY, reason);
    else
      session_end(ec, reason); /* detached: nothing to tell */
    n++;
  }
  /* Told by the view's change and by the write itself: one line. */
  log_msg(e->log, n > 0 ? LOG_INFO : LOG_DEBUG,
          "SSH disabled for project=%s service=%s: closing %zu connection(s)",
          svc->project_id, svc->id, n);
}

/* Admin hook: what disabling SSH of svc would close on this edge. */
static void on_open_count(void *ctx, const platform_service_t *svc,
                          admin_open_t *out) {
  const edge_t *e = ctx;
  for (const edge_conn_t *ec = e->by_service[service_index(e, svc)]; ec;
       ec = ec->next) {
    out->proxies++;
    out->streams += relay_stream_count(ec->relay);
  }
  out->other_edges = store_is_shared(e->store);
}

/* A plain HTTP request on its way through the admin API. */
typedef struct {
  edge_t *e;
  transport_http_t *h;
  char method[16];
  char path[TEXT_QUOTE_SIZE];
  char addr[EDGE_ADDR_MAX];
  int no_bearer;
} http_call_t;

static void on_admin_reply(void *ctx, admin_response_t *r) {
  http_call_t *call = ctx;
  edge_t *e = call->e;
  log_msg(e->log, r->status >= 500 ? LOG_WARN : LOG_INFO,
          "admin: %s %s from=%s: %d", call->method, call->path, call->addr,
          r->status);
  if (r->status == 401)
    count_auth_failure(e, PLATFORM_ACCESS_UNAUTHORIZED,
                       call->no_bearer ? "" : "x");
  /* The console reads these in a browser: a token's answers are not
   * kept in its cache, and never sniffed into another type. */
  transport_http_response_t resp = {
      .status = r->status,
      .content_type = r->content_type != NULL ? r->content_type : "text/plain",
      .body = r->body, /* the transport frees it */
      .body_len = r->body_len,
      .headers = "Cache-Control: no-store\r\n"
                 "X-Content-Type-Options: nosniff\r\n"};
  r->body = NULL;
  transport_http_respond(call->h, &resp);
  free(call);
}

/* GET /healthz (or /readyz): whether a load balancer should send this edge
 * new WebSockets. 200 while serving; 503 once draining (SIGTERM), or while
 * the platform state is too old to authorize anything. No token: it tells
 * nothing but that. */
static int health_answer(edge_t *e, transport_http_t *h,
                         const transport_http_request_t *req) {
  if (strcmp(req->path, "/healthz") != 0 && strcmp(req->path, "/readyz") != 0)
    return 0;
  const char *status = e->draining                   ? "draining"
                       : !store_view_fresh(e->store) ? "state unavailable"
                                                     : "ok";
  int ok = strcmp(status, "ok") == 0;
  char *body = malloc(256 + strlen(e->platform->node_id));
  int n = body != NULL ? sprintf(body, "{\"status\":\"%s\",\"node\":\"%s\"}\n",
                                 status, e->platform->node_id)
                       : 0;
  transport_http_response_t resp = {.status = ok ? 200 : 503,
                                    .content_type = "application/json",
                                    .body = body,
                                    .body_len = (size_t)n,
                                    .headers = "Cache-Control: no-store\r\n"};
  if (strcmp(req->method, "GET") != 0) {
    free(body);
    resp = (transport_http_response_t){.status = 405,
                                       .content_type = "text/plain",
                                       .headers = "Allow: GET\r\n"};
  }
  transport_http_respond(h, &resp);
  return 1;
}

/* Paths anyone may ask for: their answers hold nothing of the platform
 * (the console's files neither: what it shows comes from the API). */
static int public_path(const edge_t *e, const char *path) {
  return strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0 ||
         (e->platform->console && console_owns(path));
}

/* Before the body: a request for the API without a valid token is
 * answered 401 at once, so a slow or large body costs nothing. */
static int on_http_head(void *ctx, const transport_http_request_t *req,
                        transport_http_response_t *resp) {
  edge_t *e = ctx;
  char path[TEXT_QUOTE_SIZE], addr[EDGE_ADDR_MAX];
  if (public_path(e, req->path) ||
      platform_find_token(e->platform, req->bearer, strlen(req->bearer)) !=
          NULL)
    return 0;
  static const char body[] = "{\"error\":\"invalid or missing API token\"}\n";
  text_quote(path, sizeof(path), req->path);
  platform_client_addr(e->platform, req->origin.peer, req->origin.forwarded_for,
                       addr, sizeof(addr));
  log_msg(e->log, LOG_INFO, "admin: %s %s from=%s: 401 (before the body)",
          req->method, path, addr);
  count_auth_failure(e, PLATFORM_ACCESS_UNAUTHORIZED, req->bearer);
  *resp = (transport_http_response_t){.status = 401,
                                      .content_type = "application/json",
                                      .body = strdup(body),
                                      .body_len = sizeof(body) - 1};
  if (resp->body == NULL)
    resp->body_len = 0;
  return 1;
}

static int on_peer_trusted(void *ctx, const char *ip) {
  edge_t *e = ctx;
  return platform_proxy_trusted(e->platform, ip);
}

/* A file of the web console: no token (the files hold no data), logged
 * at debug only (a page load is several requests). */
static void serve_console(edge_t *e, transport_http_t *h,
                          const transport_http_request_t *req) {
  console_response_t cr;
  char path[TEXT_QUOTE_SIZE], method[16];
  char *body = NULL;

  console_handle(req->method, req->path, req->if_none_match, &cr);
  if (cr.body_len > 0 && (body = malloc(cr.body_len)) == NULL) {
    transport_http_response_t oom = {.status = 500,
                                     .content_type = "text/plain"};
    transport_http_respond(h, &oom);
    return;
  }
  if (body != NULL)
    memcpy(body, cr.body, cr.body_len);
  text_quote(path, sizeof(path), req->path);
  text_clean(method, sizeof(method), req->method, 8);
  log_msg(e->log, LOG_DEBUG, "console: %s %s: %d", method, path, cr.status);
  transport_http_response_t resp = {.status = cr.status,
                                    .content_type = cr.content_type,
                                    .body = body,
                                    .body_len = cr.body_len,
                                    .headers = cr.headers};
  transport_http_respond(h, &resp);
}

static void on_http(void *ctx, transport_http_t *h,
                    const transport_http_request_t *req) {
  edge_t *e = ctx;
  if (health_answer(e, h, req))
    return;
  if (e->platform->console && console_owns(req->path)) {
    serve_console(e, h, req);
    return;
  }
  http_call_t *call = calloc(1, sizeof(*call));
  if (call == NULL) {
    transport_http_response_t oom = {.status = 500,
                                     .content_type = "text/plain"};
    transport_http_respond(h, &oom);
    return;
  }
  call->e = e;
  call->h = h;
  /* The path is the client's (URL-decoded, so it may hold a line break):
   * quoted and cleaned. The token is never logged; the status says whether
   * it was accepted. */
  text_quote(call->path, sizeof(call->path), req->path);
  text_clean(call->method, sizeof(call->method), req->method, 8);
  platform_client_addr(e->platform, req->origin.peer, req->origin.forwarded_for,
                       call->addr, sizeof(call->addr));
  call->no_bearer = req->bearer == NULL || req->bearer[0] == '\0';
  admin_request_t ar = {.method = req->method,
                        .path = req->path,
                        .bearer = req->bearer,
                        .body = (const char *)req->body,
                        .len = req->body_len};
  admin_handle(e->admin, &ar, on_admin_reply, call);
}

/* The store's view changed (a write here, or another edge's): apply the
 * SSH switches, and close the WebSockets of every service whose SSH went
 * off, as for a write through this edge's own API. */
static void on_store_changed(void *ctx, const state_t *before,
                             const state_t *after) {
  edge_t *e = ctx;
  (void)before;
  for (size_t i = 0; i < e->platform->nservices; i++) {
    platform_service_t *svc = &e->platform->services[i];
    const state_ssh_t *w = state_find_ssh(after, svc->project_id, svc->id);
    int was = svc->ssh_enabled;
    svc->ssh_enabled = w != NULL ? w->ssh_enabled : svc->ssh_enabled_config;
    if (was && !svc->ssh_enabled)
      on_ssh_disabled(e, svc);
  }
}

/* Logged once per change: an outage is one warning, its end one line. */
static void on_store_availability(void *ctx, int up, const char *why) {
  edge_t *e = ctx;
  log_msg(e->log, up ? LOG_INFO : LOG_WARN, "store: %s", why);
}

static void on_store_warn(void *ctx, const char *msg) {
  edge_t *e = ctx;
  log_msg(e->log, LOG_WARN, "store: %s", msg);
}

/* Anyone can connect and send nothing, so this is counted, not logged
 * above debug. */
static void on_handshake_timeout(void *ctx) {
  edge_t *e = ctx;
  e->counters.limit_rejections[METRICS_LIMIT_HANDSHAKE_TIMEOUT]++;
  log_msg(e->log, LOG_DEBUG,
          "dropped a connection without a request after %u ms",
          e->platform->handshake_timeout_ms);
}

static void edge_release(edge_t *e) {
  admin_free(e->admin);
  free(e->by_service);
  free(e->sessions_per_token);
  free(e);
}

edge_t *edge_start(uv_loop_t *loop, platform_t *platform, store_t *store,
                   const log_t *log, char *err, size_t errlen) {
  edge_t *e = calloc(1, sizeof(*e));
  if (e == NULL || (platform->nservices > 0 &&
                    (e->by_service = calloc(platform->nservices,
                                            sizeof(*e->by_service))) == NULL)) {
    snprintf(err, errlen, "out of memory");
    free(e);
    return NULL;
  }
  e->loop = loop;
  e->platform = platform;
  e->store = store;
  e->log = log;
  e->sessions_per_token = calloc(platform->ntokens + 1, sizeof(uint32_t));
  if (e->sessions_per_token == NULL) {
    snprintf(err, errlen, "out of memory");
    edge_release(e);
    return NULL;
  }
  state_apply(store_view(store), platform);
  store_set_hooks(store, &(store_hooks_t){.changed = on_store_changed,
                                          .availability = on_store_availability,
                                          .warn = on_store_warn,
                                          .ctx = e});
  admin_hooks_t ah = {
      .ssh_disabled = on_ssh_disabled, .open_count = on_open_count, .ctx = e};
  e->admin = admin_new(platform, store, &ah);
  if (e->admin == NULL) {
    snprintf(err, errlen, "out of memory");
    edge_release(e);
    return NULL;
  }
  e->handlers =
      (transport_handlers_t){.authorize = on_authorize,
                             .on_open = on_open,
                             .on_rx = on_rx,
                             .on_writable = on_writable,
                             .on_close = on_close,
                             .on_http = on_http,
                             .on_http_head = on_http_head,
                             .peer_trusted = on_peer_trusted,
                             .on_handshake_timeout = on_handshake_timeout};
  e->hooks = (relay_hooks_t){.incoming = on_incoming,
                             .finished = on_finished,
                             .dead = on_dead,
                             .answered = on_answered};
  transport_server_opts_t o = {
      .host = platform->listen_host,
      .port = platform->listen_port,
      .cert = platform->tls_cert,
      .key = platform->tls_key,
      .plain = platform->plain_ws,
      .handshake_timeout_s = (platform->handshake_timeout_ms + 999) / 1000,
      .node_id = platform->node_id,
      .request_timeout_ms = platform->handshake_timeout_ms,
      .max_unauthenticated = platform->max_unauthenticated,
      .max_unauthenticated_per_addr = platform->max_unauthenticated_per_addr};
  e->transport = transport_server_new(loop, &o, &e->handlers, e, err, errlen);
  if (e->transport == NULL) {
    edge_release(e);
    return NULL;
  }
  /* Where /proc is missing the descriptor budget is off (nofile 0). */
  e->fds_base = rlimit_fds_open();
  e->nofile = e->fds_base >= 0 ? rlimit_nofile() : 0;
  return e;
}

int edge_port(const edge_t *e) {
  return transport_server_port(e->transport);
}

void edge_on_halt(edge_t *e, void (*cb)(void *ctx), void *ctx) {
  e->on_halt = cb;
  e->on_halt_ctx = ctx;
}

void edge_metrics(const edge_t *e, metrics_t *out) {
  store_stats_t st;
  *out = e->counters;
  store_stats(e->store, &st);
  out->store_postgres = strcmp(st.backend, "postgres") == 0;
  out->store_up = (uint64_t)st.up;
  out->store_view_age_ms = st.view_age_ms;
  out->store_reloads = st.reloads;
  out->store_writes[0] = st.write_ok;
  out->store_writes[1] = st.write_failed;
  out->store_outages = st.outages;
  transport_server_stats_t ts;
  transport_server_stats(e->transport, &ts);
  out->unauthenticated = ts.unauthenticated;
  out->malformed = ts.malformed;
  out->limit_rejections[METRICS_LIMIT_UNAUTH] = ts.rejected_unauth;
  out->limit_rejections[METRICS_LIMIT_UNAUTH_ADDR] = ts.rejected_unauth_addr;
  out->bytes_to_upstream = e->ended_to_upstream;
  out->bytes_from_upstream = e->ended_from_upstream;
  for (const edge_conn_t *ec = e->sessions; ec != NULL; ec = ec->all_next) {
    relay_totals_t t;
    relay_totals(ec->relay, &t);
    out->bytes_to_upstream += t.bytes_down;
    out->bytes_from_upstream += t.bytes_up;
    out->streams_open += t.streams_open;
    out->connections_open += ec->c != NULL;
  }
}

static size_t edge_open_streams(const edge_t *e) {
  size_t n = 0;
  for (size_t i = 0; i < e->platform->nservices; i++)
    for (const edge_conn_t *ec = e->by_service[i]; ec; ec = ec->next)
      n += relay_stream_count(ec->relay);
  return n;
}

static void on_timer_freed(uv_handle_t *h) {
  free(h);
}

/* End the sessions that are waiting for a resume. */
static void end_detached(edge_t *e, const char *reason) {
  for (size_t i = 0; i < e->platform->nservices; i++) {
    edge_conn_t *next;
    for (edge_conn_t *ec = e->by_service[i]; ec; ec = next) {
      next = ec->next;
      if (ec->c == NULL)
        session_end(ec, reason);
    }
  }
}

/* Everything finished (or the drain timeout passed): stop for real. */
static void edge_halt(edge_t *e) {
  if (e->stopped)
    return;
  e->stopped = 1;
  if (e->drain_timer != NULL) {
    uv_close((uv_handle_t *)e->drain_timer, on_timer_freed);
    uv_close((uv_handle_t *)e->drain_check, on_timer_freed);
    e->drain_timer = e->drain_check = NULL;
  }
  end_detached(e, "edge stopped"); /* no on_close will come for them */
  transport_server_close(
      e->transport); /* closes the rest; on_close ends them */
  if (e->on_halt != NULL)
    e->on_halt(e->on_halt_ctx);
}

static void edge_maybe_drained(edge_t *e) {
  if (e->draining && !e->stopped && edge_open_streams(e) == 0) {
    log_msg(e->log, LOG_INFO, "drained: every stream finished");
    edge_halt(e);
  }
}

static void on_drain_timeout(uv_timer_t *t) {
  edge_t *e = t->data;
  log_msg(e->log, LOG_WARN, "drain timeout: closing %zu open stream(s)",
          edge_open_streams(e));
  edge_halt(e);
}

/* GOAWAY to every session, no new ones, streams finish up to the drain
 * timeout (docs/PROTOCOL.md section 6). A second call stops at once. */
void edge_stop(edge_t *e) {
  if (e->draining) {
    edge_halt(e);
    return;
  }
  e->draining = 1;
  end_detached(e, "edge shutting down"); /* no proxy left to finish them */
  e->drain_timer = malloc(sizeof(*e->drain_timer));
  e->drain_check = malloc(sizeof(*e->drain_check));
  if (e->drain_timer == NULL || e->drain_check == NULL) {
    free(e->drain_timer);
    free(e->drain_check);
    e->drain_timer = e->drain_check = NULL;
    edge_halt(e);
    return;
  }
  uv_timer_init(e->loop, e->drain_timer);
  uv_timer_init(e->loop, e->drain_check);
  e->drain_timer->data = e->drain_check->data = e;
  uv_timer_start(e->drain_timer, on_drain_timeout,
                 e->platform->drain_timeout_ms, 0);
  for (size_t i = 0; i < e->platform->nservices; i++)
    for (edge_conn_t *ec = e->by_service[i]; ec; ec = ec->next)
      if (ec->c != NULL)
        session_goaway(relay_session(ec->relay), FRAME_CODE_SHUTDOWN,
                       "edge shutting down");
  log_msg(e->log, LOG_INFO, "draining: %zu open stream(s), up to %u ms",
          edge_open_streams(e), e->platform->drain_timeout_ms);
  edge_maybe_drained(e);
}

void edge_free(edge_t *e) {
  transport_server_free(e->transport);
  edge_release(e);
}
