/* HTTP proxies for the client, without I/O. See http_proxy.h. */
#include "ws/http_proxy.h"

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/text.h"

#define ENTRY_MAX 256

/* --- the URL ----------------------------------------------------------- */

/* Percent-decode s[0..n) into out (outlen bytes with the NUL): 0, or -1
 * for a bad escape, a NUL byte or no room. */
static int percent_decode(const char *s, size_t n, char *out, size_t outlen) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= n)
        return -1;
      int a = text_hex_digit(s[i + 1]), b = text_hex_digit(s[i + 2]);
      if (a < 0 || b < 0)
        return -1;
      c = (char)(a * 16 + b);
      i += 2;
    }
    if (c == '\0' || o + 1 >= outlen)
      return -1;
    out[o++] = c;
  }
  out[o] = '\0';
  return 0;
}

static int host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

/* Refuse the schemes we do not speak, by name. */
static int scheme_error(const char *url, size_t n, char *err, size_t errlen) {
  char raw[17], scheme[24];
  size_t rl = n < 16 ? n : 16;
  memcpy(raw, url, rl);
  raw[rl] = '\0';
  text_clean(scheme, sizeof(scheme), raw, 16);
  if (n == 5 && strncasecmp(url, "https", 5) == 0)
    snprintf(err, errlen,
             "https:// proxies (TLS to the proxy) are not supported: give "
             "the proxy's http:// URL");
  else if (n >= 5 && strncasecmp(url, "socks", 5) == 0)
    snprintf(err, errlen,
             "SOCKS proxies are not supported: give an HTTP proxy, "
             "http://HOST:PORT");
  else
    snprintf(err, errlen,
             "unsupported proxy scheme %s:// (only http:// proxies are "
             "supported)",
             scheme);
  return -1;
}

/* HOST[:PORT][/] of a URL into p. */
static int parse_hostport(const char *s, http_proxy_t *p, char *err,
                          size_t errlen) {
  const char *h = s, *he;
  if (*s == '[') {
    h = s + 1;
    he = strchr(h, ']');
    if (he == NULL) {
      snprintf(err, errlen, "the proxy's IPv6 address lacks its ']'");
      return -1;
    }
    unsigned char b[16];
    char v6[INET6_ADDRSTRLEN + 1];
    size_t n = (size_t)(he - h);
    if (n >= sizeof(v6) ||
        (memcpy(v6, h, n), v6[n] = '\0', inet_pton(AF_INET6, v6, b) != 1)) {
      snprintf(err, errlen, "the proxy's IPv6 address is not valid");
      return -1;
    }
    s = he + 1;
  } else {
    he = h;
    while (host_char(*he))
      he++;
    s = he;
  }
  size_t hl = (size_t)(he - h);
  if (hl == 0 || hl >= sizeof(p->host)) {
    snprintf(err, errlen, "the proxy URL has no valid host");
    return -1;
  }
  memcpy(p->host, h, hl);
  p->host[hl] = '\0';
  p->port = HTTP_PROXY_DEFAULT_PORT;
  if (*s == ':') {
    char *end;
    long port = strtol(s + 1, &end, 10);
    if (end == s + 1 || s[1] < '0' || s[1] > '9' || port < 1 || port > 65535) {
      snprintf(err, errlen, "the proxy's port must be 1-65535");
      return -1;
    }
    p->port = (int)port;
    s = end;
  }
  if (*s == '/')
    s++;
  if (*s != '\0') {
    snprintf(err, errlen,
             "the proxy URL must be [http://][USER:PASSWORD@]HOST[:PORT] "
             "(no path; percent-encode '@', ':' and '/' in credentials)");
    return -1;
  }
  return 0;
}

/* USER[:PASSWORD] of a URL, s[0..n), into p. */
static int parse_userinfo(const char *s, size_t n, http_proxy_t *p, char *err,
                          size_t errlen) {
  const char *colon = memchr(s, ':', n);
  size_t ul = colon ? (size_t)(colon - s) : n;
  if (percent_decode(s, ul, p->user, sizeof(p->user)) != 0 ||
      (colon != NULL &&
       percent_decode(colon + 1, n - ul - 1, p->pass, sizeof(p->pass)) != 0)) {
    snprintf(err, errlen,
             "the proxy's credentials are too long or badly "
             "percent-encoded");
    return -1;
  }
  if (strchr(p->user, ':') != NULL) {
    snprintf(err, errlen, "the proxy's user name cannot hold a ':'");
    return -1;
  }
  p->has_auth = 1;
  return 0;
}

int http_proxy_parse(const char *url, http_proxy_t *p, char *err,
                     size_t errlen) {
  memset(p, 0, sizeof(*p));
  const char *s = url, *sep = strstr(url, "://");
  if (sep != NULL) {
    size_t n = (size_t)(sep - url);
    if (n != 4 || strncasecmp(url, "http", 4) != 0)
      return scheme_error(url, n, err, errlen);
    s = sep + 3;
  }
  /* The last '@': a password holding an unencoded '@' still works. */
  const char *at = strrchr(s, '@');
  if (at != NULL && parse_userinfo(s, (size_t)(at - s), p, err, errlen) != 0)
    goto fail;
  if (parse_hostport(at ? at + 1 : s, p, err, errlen) != 0)
    goto fail;
  int v6 = strchr(p->host, ':') != NULL;
  snprintf(p->display, sizeof(p->display), "http://%s%s%s%s:%d",
           p->has_auth ? "***@" : "", v6 ? "[" : "", p->host, v6 ? "]" : "",
           p->port);
  return 0;
fail:
  http_proxy_clear(p);
  return -1;
}

void http_proxy_clear(http_proxy_t *p) {
  explicit_bzero(p, sizeof(*p));
}

/* --- NO_PROXY ---------------------------------------------------------- */

/* An address, with /bits: family, bytes, prefix length. -1 when s is not
 * one. */
static int parse_net(const char *s, unsigned char *addr, int *bits) {
  char a[INET6_ADDRSTRLEN + 8];
  const char *slash = strchr(s, '/');
  size_t n = slash ? (size_t)(slash - s) : strlen(s);
  if (n >= sizeof(a))
    return -1;
  memcpy(a, s, n);
  a[n] = '\0';
  int family = strchr(a, ':') ? AF_INET6 : AF_INET;
  if (inet_pton(family, a, addr) != 1)
    return -1;
  int max = family == AF_INET ? 32 : 128;
  *bits = max;
  if (slash != NULL) {
    char *end;
    long b = strtol(slash + 1, &end, 10);
    if (end == slash + 1 || *end != '\0' || b < 0 || b > max)
      return -1;
    *bits = (int)b;
  }
  return family;
}

static int prefix_equal(const unsigned char *a, const unsigned char *b,
                        int bits) {
  int whole = bits / 8, rest = bits % 8;
  if (memcmp(a, b, (size_t)whole) != 0)
    return 0;
  if (rest == 0)
    return 1;
  unsigned char mask = (unsigned char)(0xff << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

/* host is name (lowercase, no trailing dot), or under domain d. */
static int domain_match(const char *host, const char *d) {
  while (*d == '*' && d[1] == '.')
    d += 2;
  while (*d == '.')
    d++;
  size_t dl = strlen(d), hl = strlen(host);
  while (dl > 0 && d[dl - 1] == '.')
    dl--;
  if (dl == 0 || dl > hl)
    return 0;
  if (strncasecmp(host + hl - dl, d, dl) != 0)
    return 0;
  return hl == dl || host[hl - dl - 1] == '.';
}

/* Split entry e into its host part (into h) and port (0: any). -1 when it
 * cannot be an entry. */
static int split_entry(const char *e, char *h, size_t hlen, int *port) {
  const char *hs = e, *he, *ps = NULL;
  *port = 0;
  if (*e == '[') {
    hs = e + 1;
    he = strchr(hs, ']');
    if (he == NULL)
      return -1;
    if (he[1] == ':')
      ps = he + 2;
    else if (he[1] != '\0')
      return -1;
  } else {
    const char *c1 = strchr(e, ':');
    if (c1 != NULL && strchr(c1 + 1, ':') == NULL) {
      he = c1; /* one colon: host:port */
      ps = c1 + 1;
    } else {
      he = e + strlen(e); /* none, or a bare IPv6 address */
    }
  }
  size_t n = (size_t)(he - hs);
  if (n >= hlen)
    return -1;
  memcpy(h, hs, n);
  h[n] = '\0';
  if (ps != NULL) {
    char *end;
    long p = strtol(ps, &end, 10);
    if (end == ps || *end != '\0' || p < 1 || p > 65535)
      return -1;
    *port = (int)p;
  }
  return 0;
}

/* One entry against host (no brackets, no trailing dot) and port. */
static int entry_match(const char *e, const char *host, int port) {
  if (strcmp(e, "*") == 0)
    return 1;
  char h[ENTRY_MAX];
  int eport;
  if (split_entry(e, h, sizeof(h), &eport) != 0 || h[0] == '\0')
    return 0;
  if (eport != 0 && eport != port)
    return 0;
  unsigned char net[16], addr[16];
  int bits, hbits;
  int family = parse_net(h, net, &bits);
  if (family < 0)
    return domain_match(host, h);
  int hfamily = strchr(host, '/') ? -1 : parse_net(host, addr, &hbits);
  return hfamily == family && prefix_equal(net, addr, bits);
}

int http_proxy_bypass(const char *list, const char *host, int port, char *entry,
                      size_t entrylen) {
  char h[HTTP_PROXY_HOST_MAX], e[ENTRY_MAX];
  size_t hl = strlen(host);
  if (hl > 1 && host[0] == '[' && host[hl - 1] == ']') {
    host++;
    hl -= 2;
  }
  while (hl > 0 && host[hl - 1] == '.')
    hl--;
  if (hl == 0 || hl >= sizeof(h))
    return 0;
  memcpy(h, host, hl);
  h[hl] = '\0';
  for (const char *s = list; *s != '\0';) {
    s += strspn(s, ", \t\r\n");
    size_t n = strcspn(s, ", \t\r\n");
    if (n > 0 && n < sizeof(e)) {
      memcpy(e, s, n);
      e[n] = '\0';
      if (entry_match(e, h, port)) {
        if (entrylen > 0)
          text_clean(entry, entrylen, e, entrylen - 1);
        return 1;
      }
    }
    s += n;
  }
  return 0;
}

/* --- the choice -------------------------------------------------------- */

static const char *env_value(http_proxy_getenv_t get, void *ctx,
                             const char *name) {
  const char *v = get(ctx, name);
  return v != NULL && *v != '\0' ? v : NULL;
}

int http_proxy_choose(const char *explicit_url, const char *explicit_origin,
                      http_proxy_getenv_t get, void *ctx, int tls,
                      const char *host, int port, http_proxy_choice_t *out,
                      char *err, size_t errlen) {
  static const char *const https_vars[] = {"https_proxy", "HTTPS_PROXY",
                                           "all_proxy", "ALL_PROXY", NULL};
  static const char *const http_vars[] = {"http_proxy", "all_proxy",
                                          "ALL_PROXY", NULL};
  memset(out, 0, sizeof(*out));
  const char *url = explicit_url;
  if (url != NULL) {
    snprintf(out->origin, sizeof(out->origin), "%s", explicit_origin);
    if (*url == '\0')
      return 0; /* explicitly none */
  } else {
    for (const char *const *v = tls ? https_vars : http_vars; *v; v++)
      if ((url = env_value(get, ctx, *v)) != NULL) {
        snprintf(out->origin, sizeof(out->origin), "%s", *v);
        break;
      }
    if (url == NULL)
      return 0;
  }
  http_proxy_t p;
  /* A URL given explicitly must be valid even where it is not used. */
  if (explicit_url != NULL && http_proxy_parse(url, &p, err, errlen) != 0)
    goto bad;
  const char *var = "no_proxy", *list = env_value(get, ctx, var);
  if (list == NULL)
    list = env_value(get, ctx, var = "NO_PROXY");
  if (list != NULL &&
      http_proxy_bypass(list, host, port, out->bypass, sizeof(out->bypass))) {
    snprintf(out->bypass_var, sizeof(out->bypass_var), "%s", var);
    http_proxy_clear(&p);
    return 0;
  }
  if (explicit_url == NULL && http_proxy_parse(url, &p, err, errlen) != 0)
    goto bad;
  out->use = 1;
  out->proxy = p;
  http_proxy_clear(&p);
  return 0;
bad:;
  char why[256];
  snprintf(why, sizeof(why), "%s", err);
  snprintf(err, errlen, "%s: %s", out->origin, why);
  memset(out, 0, sizeof(*out));
  return -1;
}

void http_proxy_describe(const http_proxy_choice_t *c, char *out, size_t len) {
  if (c->use)
    snprintf(out, len, "HTTP proxy %s (from %s)", c->proxy.display, c->origin);
  else if (c->bypass_var[0] != '\0')
    snprintf(out, len, "direct (%s matches %s)", c->bypass_var, c->bypass);
  else if (c->origin[0] != '\0')
    snprintf(out, len, "direct (%s is empty)", c->origin);
  else
    snprintf(out, len, "direct");
}

/* --- CONNECT ----------------------------------------------------------- */

int http_proxy_connect_request(const http_proxy_t *p, const char *host,
                               int port, char *buf, size_t len) {
  /* The host goes into the request line: a name or an address, nothing
   * that could end the line. */
  for (const char *h = host; *h; h++)
    if (!host_char(*h) && *h != ':')
      return -1;
  if (*host == '\0' || port < 1 || port > 65535)
    return -1;
  char auth[HTTP_PROXY_CRED_MAX * 2 + 8], b64[(sizeof(auth) + 2) / 3 * 4 + 1];
  const char *v6 = strchr(host, ':') ? "[" : "", *v6e = *v6 ? "]" : "";
  int n = 0;
  b64[0] = '\0';
  if (p->has_auth) {
    n = snprintf(auth, sizeof(auth), "%s:%s", p->user, p->pass);
    EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)auth, n);
    explicit_bzero(auth, sizeof(auth));
  }
  n = snprintf(buf, len,
               "CONNECT %s%s%s:%d HTTP/1.1\r\n"
               "Host: %s%s%s:%d\r\n"
               "User-Agent: wsmux/" WSMUX_VERSION "\r\n"
               "%s%s%s"
               "\r\n",
               v6, host, v6e, port, v6, host, v6e, port,
               p->has_auth ? "Proxy-Authorization: Basic " : "", b64,
               p->has_auth ? "\r\n" : "");
  explicit_bzero(b64, sizeof(b64));
  return n > 0 && (size_t)n < len ? n : -1;
}
