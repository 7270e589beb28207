/*
 * The web console's static files (README "The console"), served by the
 * edge under /console/ on its own listener: a path in, a status, headers
 * and a body out; no sockets here, so it is unit-tested like the admin
 * API. The files hold no data and need no token: everything the console
 * shows comes from the admin API, with the Bearer token the user signs in
 * with. Every answer carries a strict Content-Security-Policy (no inline
 * script or style, Trusted Types so that no script can write HTML), so
 * that a value from the API can never run as code in the page that holds
 * the token.
 *
 * The files themselves are compiled in from edge/console/ at build time
 * (cmake/embed_console.cmake writes console_assets[]).
 *
 * Ownership: nothing is allocated; an answer borrows static memory.
 */
#ifndef WSMUX_CONSOLE_H
#define WSMUX_CONSOLE_H

#include <stddef.h>

/* The console's URL; "/console" itself redirects to "/console/". */
#define CONSOLE_PREFIX "/console"

/* The policy of every console answer (also documented in README). */
#define CONSOLE_CSP                                                            \
  "default-src 'none'; script-src 'self'; style-src 'self'; "                  \
  "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "                \
  "form-action 'none'; frame-ancestors 'none'; "                               \
  "require-trusted-types-for 'script'; trusted-types 'none'"

/* One compiled-in file. */
typedef struct {
  const char *name; /* path under /console/, as "js/app.js" */
  const unsigned char *data;
  size_t len;
  const char *etag; /* quoted, as sent: "\"0123456789abcdef\"" */
} console_asset_t;

/* Generated from edge/console/ (cmake/embed_console.cmake). */
extern const console_asset_t console_assets[];
extern const size_t console_nassets;

/* Room for the header lines of any answer. */
#define CONSOLE_HEADERS_SIZE 1024

typedef struct {
  int status;
  const char *content_type;  /* static */
  const unsigned char *body; /* static; NULL when none */
  size_t body_len;
  /* "Name: value\r\n" lines for transport_http_response_t.headers. */
  char headers[CONSOLE_HEADERS_SIZE];
} console_response_t;

/* Whether path is the console's: "/console" or anything under
 * "/console/". Other paths belong to the admin API. */
int console_owns(const char *path);

/* The answer to a request for a path console_owns(): the file (200, or
 * 304 when if_none_match, the request's If-None-Match or NULL, names its
 * ETag), a redirect of "/console" to "/console/" (301), 404 for a file
 * that is not there, 405 for a method other than GET. */
void console_handle(const char *method, const char *path,
                    const char *if_none_match, console_response_t *out);

/* The compiled-in file at name ("index.html", "js/app.js"); NULL if none. */
const console_asset_t *console_find(const char *name);

#endif
