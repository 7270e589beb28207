/* The console's static files. See console.h. */
#include "edge/console.h"

#include <stdio.h>
#include <string.h>

enum {
  HTTP_OK = 200,
  HTTP_MOVED = 301,
  HTTP_NOT_MODIFIED = 304,
  HTTP_NOT_FOUND = 404,
  HTTP_METHOD_NOT_ALLOWED = 405,
};

/* Sent with every answer, also errors: a page of ours must never run
 * without the policy. no-cache makes the browser ask again each time (with
 * If-None-Match), so a new edge's files are seen at once, at the price of
 * a 304. */
#define SECURITY_HEADERS                                                       \
  "Content-Security-Policy: " CONSOLE_CSP "\r\n"                               \
  "X-Content-Type-Options: nosniff\r\n"                                        \
  "X-Frame-Options: DENY\r\n"                                                  \
  "Referrer-Policy: no-referrer\r\n"                                           \
  "Cross-Origin-Opener-Policy: same-origin\r\n"                                \
  "Cross-Origin-Resource-Policy: same-origin\r\n"                              \
  "Cache-Control: no-cache\r\n"

#define TYPE_TEXT "text/plain; charset=utf-8"

static const char msg_not_found[] = "no such file in the console\n";
static const char msg_not_allowed[] = "the console only answers GET\n";
static const char msg_moved[] = "the console is at /console/\n";

static const struct {
  const char *ext;
  const char *type;
} types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
};

/* The embed script only takes these extensions, so every asset has one. */
static const char *content_type(const char *name) {
  size_t n = strlen(name);

  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
    size_t e = strlen(types[i].ext);
    if (n > e && strcmp(name + n - e, types[i].ext) == 0)
      return types[i].type;
  }
  return "application/octet-stream";
}

int console_owns(const char *path) {
  static const char pre[] = CONSOLE_PREFIX;
  size_t n = sizeof pre - 1;

  return path != NULL && strncmp(path, pre, n) == 0 &&
         (path[n] == '\0' || path[n] == '/');
}

const console_asset_t *console_find(const char *name) {
  for (size_t i = 0; i < console_nassets; i++)
    if (strcmp(console_assets[i].name, name) == 0)
      return &console_assets[i];
  return NULL;
}

/* Whether an If-None-Match list ("*", or ETags separated by commas, weak
 * ones W/-prefixed) names etag. Weak comparison, as RFC 9110 13.1.2 asks
 * for If-None-Match. */
static int etag_listed(const char *list, const char *etag) {
  size_t elen = strlen(etag);
  const char *p = list;

  while (p != NULL && *p != '\0') {
    while (*p == ' ' || *p == '\t' || *p == ',')
      p++;
    if (*p == '*')
      return 1;
    if (strncmp(p, "W/", 2) == 0)
      p += 2;
    size_t len = strcspn(p, ", \t");
    if (len == elen && strncmp(p, etag, len) == 0)
      return 1;
    p += len;
  }
  return 0;
}

static void answer(console_response_t *out, int status, const char *type,
                   const void *body, size_t len, const char *extra) {
  out->status = status;
  out->content_type = type;
  out->body = body;
  out->body_len = len;
  snprintf(out->headers, sizeof out->headers, "%s%s", SECURITY_HEADERS,
           extra != NULL ? extra : "");
}

void console_handle(const char *method, const char *path,
                    const char *if_none_match, console_response_t *out) {
  char extra[128];
  const console_asset_t *a;
  const char *name;

  memset(out, 0, sizeof *out);
  if (method == NULL || strcmp(method, "GET") != 0) {
    answer(out, HTTP_METHOD_NOT_ALLOWED, TYPE_TEXT, msg_not_allowed,
           sizeof msg_not_allowed - 1, "Allow: GET\r\n");
    return;
  }
  if (!console_owns(path)) {
    answer(out, HTTP_NOT_FOUND, TYPE_TEXT, msg_not_found,
           sizeof msg_not_found - 1, NULL);
    return;
  }
  /* Relative URLs in index.html resolve against the directory. */
  if (path[sizeof CONSOLE_PREFIX - 1] == '\0') {
    answer(out, HTTP_MOVED, TYPE_TEXT, msg_moved, sizeof msg_moved - 1,
           "Location: " CONSOLE_PREFIX "/\r\n");
    return;
  }
  name = path + sizeof CONSOLE_PREFIX; /* after "/console/" */
  a = console_find(*name == '\0' ? "index.html" : name);
  if (a == NULL) {
    answer(out, HTTP_NOT_FOUND, TYPE_TEXT, msg_not_found,
           sizeof msg_not_found - 1, NULL);
    return;
  }
  snprintf(extra, sizeof extra, "ETag: %s\r\n", a->etag);
  if (if_none_match != NULL && etag_listed(if_none_match, a->etag)) {
    answer(out, HTTP_NOT_MODIFIED, content_type(a->name), NULL, 0, extra);
    return;
  }
  answer(out, HTTP_OK, content_type(a->name), a->data, a->len, extra);
}
