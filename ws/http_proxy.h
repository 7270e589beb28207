/*
 * HTTP proxies for the client, without I/O: a proxy URL taken apart (its
 * credentials percent-decoded), the choice between a proxy and a direct
 * connection the way curl makes it, and the CONNECT request. ws/netconn
 * speaks CONNECT with it; cli/ reads the flags and the environment and
 * asks http_proxy_choose(). Everything here is unit-tested and fuzzed.
 *
 * The choice, for a wss:// edge at host:port:
 *   1. an explicit URL (--http-proxy, or a file's): "" means no proxy;
 *   2. else https_proxy, HTTPS_PROXY (for ws://: http_proxy only, as curl:
 *      HTTP_PROXY may come from a CGI request's Proxy header), then
 *      all_proxy, ALL_PROXY; an empty variable counts as unset;
 *   3. no_proxy, else NO_PROXY, lists hosts reached directly, separated
 *      by commas or blanks: "*" (everything), a domain ("example.com" and
 *      ".example.com" both match example.com and every name under it, not
 *      badexample.com; case-insensitive, a trailing dot ignored), an IP
 *      address or network ("10.1.2.3", "10.0.0.0/8", "::1", "fd00::/8",
 *      matching a host written as an address: names are not resolved),
 *      each optionally with ":PORT" ("[::1]:8443" for IPv6) to match that
 *      port only. It applies to explicit URLs too.
 *
 * A proxy URL is [http://][USER[:PASSWORD]@]HOST[:PORT][/]: USER and
 * PASSWORD percent-encoded (%40 for '@', %3A for ':' in USER), HOST a
 * name, an IPv4 address or [IPv6]; PORT 1080 when absent, as curl.
 * https:// (TLS to the proxy) and SOCKS proxies are refused with a message
 * saying so.
 *
 * Secrets: messages show a proxy only as http_proxy_t.display, where the
 * credentials are "***"; no error quotes a URL. http_proxy_clear() wipes
 * the credentials from memory.
 */
#ifndef WSMUX_HTTP_PROXY_H
#define WSMUX_HTTP_PROXY_H

#include <stddef.h>

#define HTTP_PROXY_HOST_MAX 256
#define HTTP_PROXY_CRED_MAX 256
#define HTTP_PROXY_DEFAULT_PORT 1080
/* Room for a CONNECT request (credentials included). */
#define HTTP_PROXY_REQUEST_MAX 2048

typedef struct {
  char host[HTTP_PROXY_HOST_MAX]; /* name, IPv4, or IPv6 without brackets */
  int port;
  int has_auth;                   /* Basic credentials: user and pass */
  char user[HTTP_PROXY_CRED_MAX]; /* decoded; no ':' */
  char pass[HTTP_PROXY_CRED_MAX];
  char display[HTTP_PROXY_HOST_MAX + 24]; /* "http://host:port", the
                                            credentials shown as stars */
} http_proxy_t;

/* Parse url into *p: 0, or -1 with a message in err that never repeats
 * the URL (it may hold a password). */
int http_proxy_parse(const char *url, http_proxy_t *p, char *err,
                     size_t errlen);
/* Wipe p (its credentials) from memory. */
void http_proxy_clear(http_proxy_t *p);

/* Whether the no_proxy list says to reach host:port directly (rules
 * above). On a match, the entry (cleaned for messages) goes to entry. */
int http_proxy_bypass(const char *list, const char *host, int port, char *entry,
                      size_t entrylen);

/* Reads an environment variable: NULL when unset. */
typedef const char *(*http_proxy_getenv_t)(void *ctx, const char *name);

typedef struct {
  int use;            /* 1: through proxy; 0: direct */
  http_proxy_t proxy; /* when use */
  char origin[96];    /* where the proxy came from ("HTTPS_PROXY",
                         "--http-proxy"...); "" when none was set */
  char bypass[96];    /* direct although a proxy is set: the matching
                         entry of bypass_var */
  char bypass_var[16];
} http_proxy_choice_t;

/*
 * Choose how to reach host:port (tls: a wss:// edge) by the rules above.
 * explicit_url: the URL given explicitly (NULL: none; "": no proxy) and
 * explicit_origin how messages name it. get reads the environment. 0 with
 * *out, or -1 with a message in err (a URL that cannot be used; an
 * environment variable's only when it is not bypassed, as curl).
 */
int http_proxy_choose(const char *explicit_url, const char *explicit_origin,
                      http_proxy_getenv_t get, void *ctx, int tls,
                      const char *host, int port, http_proxy_choice_t *out,
                      char *err, size_t errlen);

/* One line for the user: "HTTP proxy http://USERINFO@h:3128 (from
 * HTTPS_PROXY)" (USERINFO being three stars), "direct (NO_PROXY matches
 * .corp)", "direct". */
void http_proxy_describe(const http_proxy_choice_t *c, char *out, size_t len);

/* The CONNECT request to host:port through p (with Proxy-Authorization:
 * Basic when p has credentials) into buf: its length, or -1 when it does
 * not fit or host is not a name or an address. buf holds the password:
 * wipe it after sending. */
int http_proxy_connect_request(const http_proxy_t *p, const char *host,
                               int port, char *buf, size_t len);

#endif
