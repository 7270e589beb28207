/*
 * Where a command finds the edge and its API token, and how it reaches it.
 *
 * Resolution, field by field: the flags (--edge, --token, --ca,
 * --insecure), then WSMUX_EDGE / WSMUX_TOKEN / WSMUX_CA, then the current
 * context stored by `wsmux login`. A stored token is only ever sent to its own
 * edge: with --edge or WSMUX_EDGE naming another edge, the stored context is
 * not used at all. The HTTP proxy to the edge comes from --http-proxy /
 * --http-proxy-file and the environment (cli/http_proxy_flags.h); it is
 * never stored.
 *
 * The contexts live in $XDG_CONFIG_HOME/wsmux/config.json (default
 * ~/.config/wsmux/config.json):
 *
 *   {"current": NAME,
 *    "contexts": {NAME: {"edge": URL, "token": T, "ca": ABS_PATH,
 *                        "insecure": bool}}}
 *
 * "ca" is absent when not set. The file holds tokens: its directory is
 * 0700, the file 0600, written to a temporary file created 0600 (never
 * readable by others, not even briefly), fsync'd and renamed over the old
 * one. A config file that group or others can access is refused.
 */
#ifndef WSMUX_CONTEXT_H
#define WSMUX_CONTEXT_H

#include <stddef.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "ws/http_proxy.h"

/* A resolved context. Owns its strings: free with cli_context_free(). */
typedef struct {
  char *name;  /* the stored context used, or NULL */
  char *edge;  /* wss://host[:port][/prefix] or ws://... */
  char *token; /* never printed */
  char *ca;    /* extra trusted CA (PEM), or NULL */
  int insecure;
  http_proxy_choice_t proxy; /* through an HTTP proxy (proxy.use), or not */
} cli_context_t;

/* The connection flags every command accepts (borrowed from argv). */
typedef struct {
  const char *edge;
  const char *token;
  const char *ca;
  int insecure;
  const char *http_proxy;      /* NULL: not given; "": none */
  const char *http_proxy_file; /* NULL: not given */
} cli_context_flags_t;

/* args_opt_t entries for cli_context_flags_t *f (cli/args.h). */
#define CLI_CONTEXT_OPTS(f)                                                    \
  {"edge", &(f)->edge, NULL}, {"token", &(f)->token, NULL},                    \
      {"ca", &(f)->ca, NULL}, {"insecure", NULL, &(f)->insecure},              \
      {"http-proxy", &(f)->http_proxy, NULL}, {                                \
    "http-proxy-file", &(f)->http_proxy_file, NULL                             \
  }

/* The HTTP proxy the context of c goes through, or NULL (for
 * transport_client_opts_t and http_client_request_t). */
#define CLI_CONTEXT_PROXY(c) ((c)->proxy.use ? &(c)->proxy.proxy : NULL)

/* Help text of CLI_CONTEXT_OPTS. */
#define CLI_CONTEXT_HELP                                                       \
  "connection (default: $WSMUX_EDGE / $WSMUX_TOKEN / $WSMUX_CA, then the\n"    \
  "context stored by 'wsmux login'):\n"                                        \
  "  --edge URL      wss://host[:port] of the edge\n"                          \
  "  --token T       API token (prefer $WSMUX_TOKEN: arguments show in ps)\n"  \
  "  --ca FILE       also trust this CA certificate (PEM)\n"                   \
  "  --insecure      do not verify the edge's certificate (tests only)\n"      \
  "  --http-proxy URL  reach the edge through this HTTP proxy (CONNECT):\n"    \
  "                  http://[USER:PASSWORD@]HOST[:PORT], '' for none\n"        \
  "                  (default: $HTTPS_PROXY, $ALL_PROXY; $NO_PROXY applies)\n" \
  "  --http-proxy-file FILE  the proxy URL from the first line of FILE (a\n"   \
  "                  password there stays out of ps)\n"

#define CLI_NOT_LOGGED_IN                                                      \
  "not logged in: run 'wsmux login --edge URL --token T' or set "              \
  "WSMUX_EDGE and WSMUX_TOKEN"

/*
 * Resolve the context of a command (see the top of this file). Any flag
 * may be NULL / 0. Returns 0 with *out filled (free it with
 * cli_context_free), or, after printing `wsmux: error: ...` on stderr, an
 * exit code: EXIT_AUTH without a token, EXIT_USAGE without an edge, when
 * the config file cannot be used or the HTTP proxy setting cannot. The
 * proxy comes from the environment only.
 */
int cli_context_resolve(const char *edge_flag, const char *token_flag,
                        const char *ca_flag, int insecure_flag,
                        cli_context_t *out);
/* cli_context_resolve() with the flags of f, the proxy flags included. */
int cli_context_resolve_flags(const cli_context_flags_t *f, cli_context_t *out);
void cli_context_free(cli_context_t *c);

/* The config file path from the values of XDG_CONFIG_HOME and HOME (NULL
 * or "" when unset; a relative XDG_CONFIG_HOME is ignored, as the XDG spec
 * says). 0, or -1 when neither is usable or the path does not fit. */
int context_path_build(const char *xdg, const char *home, char *buf,
                       size_t len);
/* context_path_build() from the environment; -1 with a message in err. */
int context_path_default(char *buf, size_t len, char *err, size_t errlen);

/* Read the config file into *root, which the caller frees with
 * cJSON_Delete. A missing file gives an empty config. -1 with a message in
 * err when it cannot be read, is accessible by group or others (the
 * message says how to fix it), or is not a valid config. */
int context_file_load(const char *path, cJSON **root, char *err, size_t errlen);
/* Write root to path atomically, creating its directory (0700) when
 * needed. -1 with a message in err; the old file is then untouched. */
int context_file_save(const char *path, const cJSON *root, char *err,
                      size_t errlen);

/* Check a parsed config: 0, or -1 with the reason in err. */
int context_store_check(const cJSON *root, char *err, size_t errlen);
/* Store edge/token/ca/insecure of c as context name (replacing one of that
 * name) and make it current. -1 when out of memory. */
int context_store_put(cJSON *root, const char *name, const cli_context_t *c);
/* The current context of a checked config: 0 with *out filled (free with
 * cli_context_free), 1 when there is none. -1 when out of memory. */
int context_store_current(const cJSON *root, cli_context_t *out);

/* Context names: 1-64 characters of [A-Za-z0-9._-]. */
int context_name_valid(const char *name);
/* Tokens: 1-4096 printable ASCII characters, no spaces (they go in an
 * HTTP header). */
int context_token_valid(const char *token);
/* Edge URLs: ws:// or wss:// and a host. */
int context_edge_valid(const char *url);
/* Read a token: the first line of f, without its line ending. 0, or -1
 * when there is none or it does not fit in len. */
int context_token_read(FILE *f, char *buf, size_t len);

#endif
