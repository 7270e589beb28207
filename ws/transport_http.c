/*
 * The server's HTTP side on libwebsockets 4.1.6: every accepted connection
 * until its request is authorized (a deadline for the whole request, caps
 * on connections not authorized yet), the checks lws's lenient parser does
 * not make, plain HTTP requests (head authorized before the body is read,
 * answers now or later) and status lines. Facts from the 4.1.6 source
 * (docs/NOTES-lws.md):
 * - lws re-arms its body timeout after every read, so a trickled body never
 *   times out: the deadline is our own hrtimer (lws_set_timer_usecs), and
 *   since LWS_SET_TIMER_USEC_CANCEL fires the timer at once instead of
 *   cancelling it, a completed request is marked and a later TIMER ignored;
 * - WSI_DESTROY and TIMER go to the protocol the wsi has then (the
 *   WebSocket one after an upgrade), so both protocols forward them here;
 * - repeated known headers are fragments (lws_hdr_fragment_length), a
 *   chunked request body is never decoded and a POST without
 *   Content-Length is given 100 MiB of body: refused here instead;
 * - lws's status lines say HTTP/1.0 before a request's version is parsed
 *   and lack reasons for some codes: we write our own.
 */
#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ws/http1.h"
#include "ws/transport_server_impl.h"

/* An answer lws may take this long to be given, so that a request whose
 * answer never comes is not kept for ever (the store's own timeouts are
 * far shorter). */
#define HTTP_ANSWER_TIMEOUT_S 60
#define CL_DIGITS_MAX 19 /* Content-Length beyond this is not a length */
/* If-None-Match: a few ETags; a longer list is ignored (a full answer). */
#define ETAG_LIST_MAX 256

/* ---- the connection before its request is authorized -------------------- */

/* Per accepted connection, in the wsi's opaque user data from
 * NEW_CLIENT_INSTANTIATED to WSI_DESTROY. */
typedef struct {
  transport_server_t *t;
  char ip[SERVER_ADDR_MAX];
  int counted;      /* among t->unauth and its address's count */
  int counted_addr; /* in t->addrs */
  int done;         /* the request is complete: the deadline is over */
} peer_t;

static server_addr_t *addr_find(transport_server_t *t, const char *ip) {
  for (size_t i = 0; i < t->naddrs; i++)
    if (strcmp(t->addrs[i].ip, ip) == 0)
      return &t->addrs[i];
  return NULL;
}

static void peer_uncount(peer_t *p) {
  transport_server_t *t = p->t;
  if (!p->counted)
    return;
  p->counted = 0;
  assert(t->unauth > 0);
  t->unauth--;
  if (!p->counted_addr)
    return;
  p->counted_addr = 0;
  server_addr_t *a = addr_find(t, p->ip);
  assert(a != NULL && a->count > 0);
  if (--a->count == 0)
    *a = t->addrs[--t->naddrs]; /* order does not matter */
}

static void peer_arm(struct lws *wsi, peer_t *p) {
  p->done = 0;
  lws_set_timer_usecs(wsi, (lws_usec_t)p->t->request_ms * 1000);
}

int server_peer_open(transport_server_t *t, struct lws *wsi) {
  peer_t *p = calloc(1, sizeof(*p));
  if (p == NULL)
    return -1;
  p->t = t;
  if (lws_get_peer_simple(wsi, p->ip, sizeof(p->ip)) == NULL ||
      strncmp(p->ip, "getpeername", 11) == 0)
    snprintf(p->ip, sizeof(p->ip), "unknown");
  int exempt = t->h.peer_trusted != NULL && t->h.peer_trusted(t->hctx, p->ip);
  server_addr_t *a = exempt ? NULL : addr_find(t, p->ip);
  if (t->unauth_max > 0 && t->unauth >= t->unauth_max) {
    t->stats.rejected_unauth++;
    free(p);
    return -1;
  }
  if (!exempt && t->unauth_addr_max > 0 && a != NULL &&
      a->count >= t->unauth_addr_max) {
    t->stats.rejected_unauth_addr++;
    free(p);
    return -1;
  }
  if (!exempt && a == NULL && t->unauth_addr_max > 0) {
    /* At most unauth_max addresses can be counted at once. */
    size_t cap = t->unauth_max > 0 ? t->unauth_max : 65536;
    if (t->naddrs < cap) {
      if (t->addrs == NULL &&
          (t->addrs = calloc(cap, sizeof(*t->addrs))) == NULL) {
        free(p);
        return -1;
      }
      a = &t->addrs[t->naddrs++];
      snprintf(a->ip, sizeof(a->ip), "%s", p->ip);
      a->count = 0;
    }
  }
  t->unauth++;
  p->counted = 1;
  if (a != NULL) {
    a->count++;
    p->counted_addr = 1;
  }
  lws_set_opaque_user_data(wsi, p);
  peer_arm(wsi, p);
  return 0;
}

static peer_t *peer_of(struct lws *wsi) {
  return lws_get_opaque_user_data(wsi);
}

void server_peer_authorized(struct lws *wsi) {
  peer_t *p = peer_of(wsi);
  if (p != NULL)
    peer_uncount(p);
}

void server_peer_request_done(struct lws *wsi) {
  peer_t *p = peer_of(wsi);
  if (p != NULL)
    p->done = 1;
}

void server_peer_next_request(struct lws *wsi) {
  peer_t *p = peer_of(wsi);
  if (p != NULL)
    peer_arm(wsi, p);
}

int server_peer_timer(struct lws *wsi) {
  peer_t *p = peer_of(wsi);
  if (p == NULL || p->done)
    return 0; /* an old timer, or a cancel (which fires it) */
  transport_server_t *t = p->t;
  t->stats.request_timeouts++;
  if (t->h.on_handshake_timeout != NULL && !t->closing)
    t->h.on_handshake_timeout(t->hctx);
  return -1;
}

void server_peer_destroy(struct lws *wsi) {
  peer_t *p = peer_of(wsi);
  if (p == NULL)
    return;
  lws_set_opaque_user_data(wsi, NULL);
  peer_uncount(p);
  free(p);
}

/* ---- answers ---------------------------------------------------------- */

/* Add "Name: value\r\n" lines (NULL: none) to a response head. */
static int add_header_lines(struct lws *wsi, const char *lines,
                            unsigned char **p, unsigned char *end) {
  while (lines != NULL && *lines != '\0') {
    const char *eol = strstr(lines, "\r\n");
    const char *colon = strchr(lines, ':');
    if (eol == NULL || colon == NULL || colon > eol)
      return -1;
    char name[128];
    size_t nlen = (size_t)(colon - lines) + 1; /* with the colon */
    if (nlen >= sizeof(name))
      return -1;
    memcpy(name, lines, nlen);
    name[nlen] = '\0';
    const char *v = colon + 1;
    while (*v == ' ')
      v++;
    if (lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                    (const unsigned char *)v, (int)(eol - v), p,
                                    end))
      return -1;
    lines = eol + 2;
  }
  return 0;
}

int server_reply(struct lws *wsi, unsigned status, const char *ctype,
                 const char *headers, const char *body, size_t len,
                 int close_after) {
  size_t hlen = headers != NULL ? strlen(headers) : 0;
  size_t cap = LWS_PRE + 1024 + hlen + len;
  uint8_t *b = malloc(cap);
  if (b == NULL)
    return -1;
  uint8_t *start = b + LWS_PRE, *p = start, *end = b + cap;
  char line[96], n[24];
  int rc = -1;
  snprintf(line, sizeof(line), "HTTP/1.1 %u %s", status,
           http1_reason_phrase((int)status));
  snprintf(n, sizeof(n), "%zu", len);
  /* A 304 has no body, and a Content-Length would have to be the 200's:
   * it gets its status and the given lines only (docs/NOTES-lws.md). */
  int bodiless = status == 204 || status == 304;
  if (status == 304)
    len = 0;
  /* A name of NULL writes the value as a line of its own: the status. */
  if (lws_add_http_header_by_name(wsi, NULL, (const unsigned char *)line,
                                  (int)strlen(line), &p, end) == 0 &&
      (ctype == NULL || bodiless ||
       lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                    (const unsigned char *)ctype,
                                    (int)strlen(ctype), &p, end) == 0) &&
      /* A 204 has no body and must not announce one (RFC 9110 8.6). */
      (bodiless ||
       lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH,
                                    (const unsigned char *)n, (int)strlen(n),
                                    &p, end) == 0) &&
      (!close_after || lws_add_http_header_by_token(
                           wsi, WSI_TOKEN_CONNECTION,
                           (const unsigned char *)"close", 5, &p, end) == 0) &&
      add_header_lines(wsi, headers, &p, end) == 0 &&
      lws_finalize_http_header(wsi, &p, end) == 0) {
    if (len > 0)
      memcpy(p, body, len);
    p += len;
    int w = (int)(p - start);
    if (lws_write(wsi, start, (size_t)w, LWS_WRITE_HTTP_FINAL) == w) {
      if (close_after) {
        rc = -1; /* lws flushes what it holds, then closes */
      } else {
        rc = lws_http_transaction_completed(wsi) ? -1 : 0;
        if (rc == 0)
          server_peer_next_request(wsi);
      }
    }
  }
  free(b);
  return rc;
}

/* A refused request: a text body and X-Wsmux-Error (for clients that show
 * headers, not bodies), and the connection closed after it. */
static int reject(struct lws *wsi, unsigned status, const char *msg) {
  char hdr[640], body[600];
  size_t n = strlen(msg);
  if (n > 512)
    n = 512;
  snprintf(hdr, sizeof(hdr), "X-Wsmux-Error: %.*s\r\n", (int)n, msg);
  snprintf(body, sizeof(body), "%.*s\n", (int)n, msg);
  return server_reply(wsi, status, "text/plain", hdr, body, strlen(body), 1);
}

/* ---- the checks lws does not make --------------------------------------- */

static int header_count(struct lws *wsi, enum lws_token_indexes tok) {
  if (lws_hdr_total_length(wsi, tok) <= 0)
    return 0;
  return lws_hdr_fragment_length(wsi, tok, 1) > 0 ? 2 : 1;
}

/* Whether the request line said HTTP/1.1 (or later). */
static int is_http11(struct lws *wsi) {
  char v[16];
  if (lws_hdr_copy(wsi, v, sizeof(v), WSI_TOKEN_HTTP) <= 0)
    return 1; /* no version is not HTTP/1.0 either: hold it to 1.1 */
  return strcmp(v, "HTTP/1.0") != 0;
}

/* The framing and Host rules of RFC 9112 that matter behind a balancer
 * (two parsers must agree on where a request ends). 0, or a status with
 * the reason in msg. with_body: the method carries one. */
static unsigned check_head(struct lws *wsi, int with_body, long long *clen,
                           char *msg, size_t msglen) {
  char cl[32];
  *clen = 0;
  if (is_http11(wsi) && header_count(wsi, WSI_TOKEN_HOST) != 1) {
    snprintf(msg, msglen, "%s",
             header_count(wsi, WSI_TOKEN_HOST) == 0
                 ? "an HTTP/1.1 request needs a Host header"
                 : "more than one Host header");
    return 400;
  }
  /* lws keeps "Content-Length :" as an unknown header and would then see
   * no length at all. */
  if (lws_hdr_custom_length(wsi, "content-length :", 16) >= 0 ||
      lws_hdr_custom_length(wsi, "transfer-encoding :", 19) >= 0) {
    snprintf(msg, msglen, "white space before a header's colon");
    return 400;
  }
  int ncl = header_count(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
  int te = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0;
  if (ncl > 1) {
    snprintf(msg, msglen, "more than one Content-Length header");
    return 400;
  }
  if (ncl == 1 && te) {
    snprintf(msg, msglen, "both Content-Length and Transfer-Encoding");
    return 400;
  }
  if (te) {
    snprintf(msg, msglen,
             "chunked request bodies are not accepted: send Content-Length");
    return 411;
  }
  if (ncl == 1) {
    int n = lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH);
    if (n <= 0 || n > CL_DIGITS_MAX) {
      snprintf(msg, msglen, "invalid Content-Length");
      return 400;
    }
    for (int i = 0; i < n; i++)
      if (!isdigit((unsigned char)cl[i])) {
        snprintf(msg, msglen, "invalid Content-Length");
        return 400;
      }
    *clen = atoll(cl);
  } else if (with_body) {
    snprintf(msg, msglen, "a request with a body needs Content-Length");
    return 411;
  }
  return 0;
}

/* ---- upgrades ------------------------------------------------------------ */

/* Whether the comma-separated Sec-WebSocket-Protocol list names ours. */
static int offers_subprotocol(struct lws *wsi) {
  char list[256];
  if (lws_hdr_copy(wsi, list, sizeof(list), WSI_TOKEN_PROTOCOL) <= 0)
    return 0;
  char *save = NULL;
  for (char *tok = strtok_r(list, ", \t", &save); tok != NULL;
       tok = strtok_r(NULL, ", \t", &save))
    if (strcmp(tok, TRANSPORT_SUBPROTOCOL) == 0)
      return 1;
  return 0;
}

/* A request is done (the deadline is over) once its head is in; the
 * upgrade is authorized in protocols[1]'s FILTER_PROTOCOL_CONNECTION. */
static int confirm_upgrade(transport_server_t *t, struct lws *wsi,
                           const char *in) {
  char msg[256];
  long long clen;
  server_peer_request_done(wsi);
  if (in == NULL || strcasecmp(in, "websocket") != 0)
    return reject(wsi, 400, "only WebSocket upgrades are served");
  if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0) {
    t->stats.malformed++;
    return reject(wsi, 400, "a WebSocket upgrade is a GET");
  }
  unsigned st = check_head(wsi, 0, &clen, msg, sizeof(msg));
  if (st == 0 && clen > 0) {
    snprintf(msg, sizeof(msg), "a WebSocket upgrade has no body");
    st = 400;
  }
  if (st != 0) {
    t->stats.malformed++;
    return reject(wsi, st, msg);
  }
  if (!offers_subprotocol(wsi))
    return reject(wsi, 400,
                  "the " TRANSPORT_SUBPROTOCOL
                  " WebSocket subprotocol is required");
  /* The upgrade's own authorization: with the body of the error, which
   * only this callback can send. */
  transport_upgrade_t up;
  char path[SERVER_PATH_MAX], auth[SERVER_TOKEN_MAX + 8], resume[64];
  char node[SERVER_NODE_MAX], peer[SERVER_ADDR_MAX], xff[SERVER_XFF_MAX];
  uint8_t scratch[TRANSPORT_AUTH_MAX];
  if (lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI) <= 0)
    return reject(wsi, 414, "request path too long");
  if (lws_hdr_copy(wsi, auth, sizeof(auth), WSI_TOKEN_HTTP_AUTHORIZATION) < 0)
    auth[0] = '\0';
  if (lws_hdr_custom_copy(wsi, resume, sizeof(resume), "x-wsmux-resume:", 15) <
      0)
    resume[0] = '\0';
  if (lws_hdr_custom_copy(wsi, node, sizeof(node), "x-wsmux-node:", 13) < 0)
    node[0] = '\0';
  up.path = path;
  up.bearer = strncasecmp(auth, "Bearer ", 7) == 0 ? auth + 7 : "";
  up.resume = resume;
  up.node = node;
  server_read_origin(wsi, peer, xff, &up.origin);
  int status = t->h.authorize(t->hctx, &up, scratch, msg, sizeof(msg));
  if (status != 0)
    return reject(wsi, (unsigned)status, msg);
  server_peer_authorized(wsi);
  return 0;
}

/* ---- plain requests ---------------------------------------------------- */

/*
 * A request handed to on_http and not answered yet. Allocated apart from
 * lws's per-session data because either side may end first: the
 * application answers (transport_http_respond) or lws closes the
 * connection (CLOSED_HTTP clears wsi). The one that comes second frees it.
 */
struct transport_http {
  struct lws *wsi; /* NULL once the connection is gone */
  int answered;
  int deferred; /* on_http returned without answering */
  transport_http_response_t resp;
  char *headers; /* resp.headers, copied */
};

/* A plain HTTP request being received (protocols[0]'s per-session data,
 * zeroed by lws; body freed on close). */
typedef struct {
  char method[8];
  char path[SERVER_PATH_MAX];
  char bearer[SERVER_TOKEN_MAX + 8];
  char peer[SERVER_ADDR_MAX];
  char xff[SERVER_XFF_MAX];
  char if_none_match[ETAG_LIST_MAX];
  uint8_t *body;
  size_t body_len;
  size_t expect;             /* Content-Length */
  transport_http_t *pending; /* on_http did not answer at once */
} http_req_t;

size_t server_http_pss_size(void) {
  return sizeof(http_req_t);
}

static const struct {
  enum lws_token_indexes tok;
  const char *name;
  int body;
} http_methods[] = {
    {WSI_TOKEN_GET_URI, "GET", 0},       {WSI_TOKEN_POST_URI, "POST", 1},
    {WSI_TOKEN_PATCH_URI, "PATCH", 1},   {WSI_TOKEN_PUT_URI, "PUT", 1},
    {WSI_TOKEN_DELETE_URI, "DELETE", 0},
};

static void http_handle_free(transport_http_t *h) {
  free(h->resp.body);
  free(h->headers);
  free(h);
}

/* Write h's answer on its connection and free h. */
static int http_write_answer(transport_http_t *h) {
  int rc = server_reply(h->wsi, (unsigned)h->resp.status, h->resp.content_type,
                        h->headers, h->resp.body,
                        h->resp.body ? h->resp.body_len : 0, 0);
  http_handle_free(h);
  return rc;
}

void transport_http_respond(transport_http_t *h,
                            transport_http_response_t *resp) {
  assert(!h->answered);
  h->answered = 1;
  h->resp = *resp;
  resp->body = NULL;
  h->headers = resp->headers != NULL ? strdup(resp->headers) : NULL;
  if (resp->headers != NULL && h->headers == NULL)
    h->resp.status = 500; /* out of memory: no half-headed answer */
  h->resp.headers = NULL;
  if (h->wsi == NULL) {
    http_handle_free(h); /* the client went away meanwhile */
    return;
  }
  if (h->deferred) {
    /* Answered later, from outside lws: wake the connection to write. */
    lws_rx_flow_control(h->wsi, 1);
    lws_callback_on_writable(h->wsi);
  }
}

static void request_view(struct lws *wsi, http_req_t *r,
                         transport_http_request_t *req) {
  *req = (transport_http_request_t){.method = r->method,
                                    .path = r->path,
                                    .bearer = r->bearer,
                                    .if_none_match = r->if_none_match,
                                    .body = r->body,
                                    .body_len = r->body_len};
  server_read_origin(wsi, r->peer, r->xff, &req->origin);
}

static int http_dispatch(transport_server_t *t, struct lws *wsi,
                         http_req_t *r) {
  server_peer_request_done(wsi);
  if (t->h.on_http == NULL)
    return reject(wsi, 404, "not found: this is a wsmux edge");
  transport_http_t *h = calloc(1, sizeof(*h));
  if (h == NULL)
    return -1;
  h->wsi = wsi;
  transport_http_request_t req;
  request_view(wsi, r, &req);
  t->h.on_http(t->hctx, h, &req);
  if (h->answered)
    return http_write_answer(h);
  /* Deferred: no reading meanwhile (lws would spin on a closed client's
   * readable socket, and pipelined requests wait), and a bound on the
   * wait. */
  r->pending = h;
  h->deferred = 1;
  lws_rx_flow_control(wsi, 0);
  lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, HTTP_ANSWER_TIMEOUT_S);
  return 0;
}

/* The application answered a deferred request: write it now. */
static int http_writeable(struct lws *wsi, http_req_t *r) {
  transport_http_t *h = r->pending;
  if (h == NULL || !h->answered)
    return 0;
  r->pending = NULL;
  lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
  return http_write_answer(h);
}

/* The connection is gone: an answer still to come is dropped on arrival. */
static void http_forget(http_req_t *r) {
  transport_http_t *h = r->pending;
  if (h == NULL)
    return;
  r->pending = NULL;
  if (h->answered)
    http_handle_free(h);
  else
    h->wsi = NULL;
}

/* The head is in: check it, let the application refuse it before the body
 * is read (no token: 401 at once), then wait for the body if any. */
static int http_begin(transport_server_t *t, struct lws *wsi, http_req_t *r) {
  char msg[256];
  int with_body = 0;
  long long clen = 0;
  free(r->body);
  memset(r, 0, sizeof(*r));
  for (size_t i = 0; i < sizeof(http_methods) / sizeof(http_methods[0]); i++)
    if (lws_hdr_total_length(wsi, http_methods[i].tok) > 0) {
      snprintf(r->method, sizeof(r->method), "%s", http_methods[i].name);
      with_body = http_methods[i].body;
      if (lws_hdr_copy(wsi, r->path, sizeof(r->path), http_methods[i].tok) < 0)
        return reject(wsi, 414, "request path too long");
    }
  if (r->method[0] == '\0')
    return reject(wsi, 405, "method not allowed");
  unsigned st = check_head(wsi, with_body, &clen, msg, sizeof(msg));
  if (st != 0) {
    t->stats.malformed++;
    return reject(wsi, st, msg);
  }
  char auth[SERVER_TOKEN_MAX + 8];
  if (lws_hdr_copy(wsi, auth, sizeof(auth), WSI_TOKEN_HTTP_AUTHORIZATION) > 7 &&
      strncasecmp(auth, "Bearer ", 7) == 0)
    snprintf(r->bearer, sizeof(r->bearer), "%s", auth + 7);
  if (lws_hdr_copy(wsi, r->if_none_match, sizeof(r->if_none_match),
                   WSI_TOKEN_HTTP_IF_NONE_MATCH) < 0)
    r->if_none_match[0] = '\0';
  if (t->h.on_http_head != NULL) {
    transport_http_request_t req;
    transport_http_response_t resp = {0};
    request_view(wsi, r, &req);
    if (t->h.on_http_head(t->hctx, &req, &resp)) {
      /* Before the body: nothing of it is read, the connection ends. */
      int rc = server_reply(wsi, (unsigned)resp.status, resp.content_type,
                            resp.headers, resp.body,
                            resp.body ? resp.body_len : 0, 1);
      free(resp.body);
      return rc;
    }
  }
  server_peer_authorized(wsi);
  if (clen > TRANSPORT_HTTP_BODY_MAX) {
    static const char too[] = "{\"error\": \"request body too large\"}\n";
    return server_reply(wsi, 413, "application/json", NULL, too,
                        sizeof(too) - 1, 1);
  }
  if (clen == 0)
    return http_dispatch(t, wsi, r);
  r->expect = (size_t)clen;
  return 0; /* LWS_CALLBACK_HTTP_BODY follows */
}

static int http_body(http_req_t *r, const void *in, size_t len) {
  if (r->body_len + len > r->expect)
    return -1; /* lws frames the body by Content-Length: cannot happen */
  if (r->body == NULL && (r->body = malloc(r->expect + 1)) == NULL)
    return -1;
  memcpy(r->body + r->body_len, in, len);
  r->body_len += len;
  r->body[r->body_len] = '\0';
  return 0;
}

int server_http_callback(struct lws *wsi, enum lws_callback_reasons reason,
                         void *user, void *in, size_t len) {
  transport_server_t *t = lws_context_user(lws_get_context(wsi));
  http_req_t *r = user;
  switch (reason) {
  case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
    if (server_peer_open(t, wsi) != 0)
      return -1;
    return lws_callback_http_dummy(wsi, reason, user, in, len);
  case LWS_CALLBACK_WSI_DESTROY:
    server_peer_destroy(wsi);
    return lws_callback_http_dummy(wsi, reason, user, in, len);
  case LWS_CALLBACK_TIMER:
    return server_peer_timer(wsi);
  case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
    return confirm_upgrade(t, wsi, in);
  case LWS_CALLBACK_HTTP:
    return r ? http_begin(t, wsi, r) : -1;
  case LWS_CALLBACK_HTTP_BODY:
    return r ? http_body(r, in, len) : -1;
  case LWS_CALLBACK_HTTP_BODY_COMPLETION:
    return r ? http_dispatch(t, wsi, r) : -1;
  case LWS_CALLBACK_HTTP_WRITEABLE:
    return r ? http_writeable(wsi, r) : 0;
  case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
  case LWS_CALLBACK_CLOSED_HTTP:
    if (r != NULL) {
      http_forget(r);
      free(r->body);
      r->body = NULL;
    }
    return 0;
  default:
    return lws_callback_http_dummy(wsi, reason, user, in, len);
  }
}
