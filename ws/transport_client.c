/* The WebSocket client transport on ws/wsclient. See transport_client.h. */
#include "ws/transport_client.h"

#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws/netconn.h"
#include "ws/transport_impl.h"
#include "ws/wsclient.h"

typedef struct client_conn client_conn_t;
struct client_conn {
  transport_conn_t base; /* first: the public handle */
  transport_client_t *t;
  wsclient_t *wsc;
  client_conn_t *prev, *next; /* t->conns, until on_close */
  int open;
};

struct transport_client {
  uv_loop_t *loop;
  transport_handlers_t h;
  void *hctx;
  client_conn_t *conns;
  int closing;
  transport_url_t url;
  int insecure;
  char auth_header[TRANSPORT_TOKEN_MAX + 8];
  char resume_header[64];              /* session to resume, "" for none */
  char node_header[WSCLIENT_NODE_MAX]; /* the edge that held it, or "" */
  SSL_CTX *ssl_ctx;                    /* wss:// only */
  int via_proxy;
  http_proxy_t proxy; /* when via_proxy */
};

int transport_url_parse(const char *url, const char *path, transport_url_t *u,
                        char *err, size_t errlen) {
  const char *rest;
  memset(u, 0, sizeof(*u));
  if (strncmp(url, "wss://", 6) == 0) {
    u->tls = 1;
    u->port = 443;
    rest = url + 6;
  } else if (strncmp(url, "ws://", 5) == 0) {
    u->port = 80;
    rest = url + 5;
  } else {
    snprintf(err, errlen, "edge URL must start with wss:// (or ws://): '%s'",
             url);
    return -1;
  }
  size_t hl = strcspn(rest, ":/");
  if (hl == 0 || hl >= sizeof(u->host)) {
    snprintf(err, errlen, "edge URL has no valid host: '%s'", url);
    return -1;
  }
  memcpy(u->host, rest, hl);
  u->host[hl] = '\0';
  rest += hl;
  if (*rest == ':') {
    char *end;
    long p = strtol(rest + 1, &end, 10);
    if (end == rest + 1 || p < 1 || p > 65535 || (*end && *end != '/')) {
      snprintf(err, errlen, "edge URL has an invalid port: '%s'", url);
      return -1;
    }
    u->port = (int)p;
    rest = end;
  }
  size_t pl = strlen(rest);
  while (pl > 0 && rest[pl - 1] == '/')
    pl--;
  if (snprintf(u->path, sizeof(u->path), "%.*s%s", (int)pl, rest, path) >=
      (int)sizeof(u->path)) {
    snprintf(err, errlen, "edge URL too long");
    return -1;
  }
  return 0;
}

transport_client_t *transport_client_new(uv_loop_t *loop,
                                         const transport_client_opts_t *opts,
                                         const transport_handlers_t *h,
                                         void *ctx, char *err, size_t errlen) {
  transport_client_t *t = calloc(1, sizeof(*t));
  if (t == NULL) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  t->loop = loop;
  t->h = *h;
  t->hctx = ctx;
  if (transport_url_parse(opts->url, opts->path, &t->url, err, errlen) != 0)
    goto fail;
  if (opts->token && strlen(opts->token) > TRANSPORT_TOKEN_MAX) {
    snprintf(err, errlen, "API token too long");
    goto fail;
  }
  if (opts->token)
    snprintf(t->auth_header, sizeof(t->auth_header), "Bearer %s", opts->token);
  t->insecure = opts->insecure;
  if (opts->proxy != NULL) {
    t->via_proxy = 1;
    t->proxy = *opts->proxy;
  }
  if (t->url.tls && (t->ssl_ctx = netconn_ssl_ctx_new(
                         opts->ca_file, t->insecure, err, errlen)) == NULL)
    goto fail;
  return t;
fail:
  http_proxy_clear(&t->proxy);
  free(t);
  return NULL;
}

void transport_client_set_resume(transport_client_t *t, const char *hex_id,
                                 const char *node) {
  snprintf(t->resume_header, sizeof(t->resume_header), "%s",
           hex_id ? hex_id : "");
  snprintf(t->node_header, sizeof(t->node_header), "%s",
           hex_id && node ? node : "");
}

const char *transport_client_node(const transport_conn_t *tc) {
  const client_conn_t *c = (const client_conn_t *)tc;
  return c->wsc != NULL ? wsclient_node(c->wsc) : "";
}

static void conn_link(client_conn_t *c) {
  transport_client_t *t = c->t;
  c->prev = NULL;
  c->next = t->conns;
  if (t->conns)
    t->conns->prev = c;
  t->conns = c;
}

static void conn_unlink(client_conn_t *c) {
  if (c->prev)
    c->prev->next = c->next;
  else
    c->t->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  c->prev = c->next = NULL;
}

static void conn_want_write(transport_conn_t *tc) {
  client_conn_t *c = (client_conn_t *)tc;
  if (c->wsc != NULL)
    wsclient_want_write(c->wsc);
}

static size_t conn_backlog(const transport_conn_t *tc) {
  const client_conn_t *c = (const client_conn_t *)tc;
  return c->wsc != NULL ? wsclient_backlog(c->wsc) : 0;
}

static void conn_close(transport_conn_t *tc, int code, const char *reason) {
  client_conn_t *c = (client_conn_t *)tc;
  if (c->wsc != NULL)
    wsclient_close(c->wsc, code, reason);
}

static void conn_abort(transport_conn_t *tc) {
  client_conn_t *c = (client_conn_t *)tc;
  if (c->wsc != NULL)
    wsclient_abort(c->wsc);
}

static const transport_conn_ops_t conn_ops = {conn_want_write, conn_backlog,
                                              conn_close, conn_abort};

/* ws/wsclient's events, forwarded to the application. */
static int wsc_open(void *ctx) {
  client_conn_t *c = ctx;
  c->open = 1;
  return c->t->h.on_open(c->t->hctx, &c->base);
}

static int wsc_rx(void *ctx, const uint8_t *data, size_t len, int eom,
                  char *msg, size_t msglen) {
  client_conn_t *c = ctx;
  return c->t->h.on_rx(c->t->hctx, &c->base, data, len, eom, msg, msglen);
}

static size_t wsc_writable(void *ctx, uint8_t *buf, size_t cap) {
  client_conn_t *c = ctx;
  return c->t->h.on_writable(c->t->hctx, &c->base, buf, cap);
}

/* wsclient delivers this exactly once and frees itself after. */
static void wsc_closed(void *ctx, const transport_close_t *why) {
  client_conn_t *c = ctx;
  transport_close_t w = *why;
  c->wsc = NULL;
  conn_unlink(c);
  w.was_open = c->open;
  c->open = 0;
  c->t->h.on_close(c->t->hctx, &c->base, &w);
  free(c);
}

static const wsclient_handlers_t wsc_handlers = {wsc_open, wsc_rx, wsc_writable,
                                                 wsc_closed};

transport_conn_t *transport_client_connect(transport_client_t *t, void *user,
                                           char *err, size_t errlen) {
  if (t->closing) {
    snprintf(err, errlen, "shutting down");
    return NULL;
  }
  client_conn_t *c = calloc(1, sizeof(*c));
  if (c == NULL) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  c->base.ops = &conn_ops;
  c->base.user = user;
  c->t = t;
  char headers[sizeof(t->auth_header) + sizeof(t->resume_header) +
               sizeof(t->node_header) + 64] = "";
  if (t->auth_header[0] != '\0')
    snprintf(headers, sizeof(headers), "Authorization: %s\r\n", t->auth_header);
  if (t->resume_header[0] != '\0')
    snprintf(headers + strlen(headers), sizeof(headers) - strlen(headers),
             "X-Wsmux-Resume: %s\r\n", t->resume_header);
  /* For a load balancer to send the resume to that edge (PROTOCOL.md 8). */
  if (t->node_header[0] != '\0')
    snprintf(headers + strlen(headers), sizeof(headers) - strlen(headers),
             "X-Wsmux-Node: %s\r\n", t->node_header);
  wsclient_opts_t o = {.host = t->url.host,
                       .port = t->url.port,
                       .tls = t->url.tls,
                       .ssl_ctx = t->ssl_ctx,
                       .insecure = t->insecure,
                       .path = t->url.path,
                       .subprotocol = TRANSPORT_SUBPROTOCOL,
                       .headers = headers,
                       .handshake_ms = 15000,
                       .proxy = t->via_proxy ? &t->proxy : NULL};
  c->wsc = wsclient_connect(t->loop, &o, &wsc_handlers, c, err, errlen);
  if (c->wsc == NULL) {
    free(c);
    return NULL;
  }
  conn_link(c);
  return &c->base;
}

void transport_client_close(transport_client_t *t) {
  if (t == NULL || t->closing)
    return;
  t->closing = 1;
  for (client_conn_t *c = t->conns; c != NULL; c = c->next)
    wsclient_abort(c->wsc); /* on_close follows from the loop */
}

void transport_client_free(transport_client_t *t) {
  if (t == NULL)
    return;
  transport_client_close(t);
  /* Once every connection has closed there is nothing to wait for, and a
   * loop serving other clients must not be run from here. */
  if (t->conns != NULL)
    uv_run(t->loop, UV_RUN_DEFAULT); /* the aborts' on_close */
  if (t->ssl_ctx != NULL)
    SSL_CTX_free(t->ssl_ctx);
  http_proxy_clear(&t->proxy);
  free(t);
}
