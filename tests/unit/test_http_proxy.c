/* Unit tests for the HTTP proxy choice and URLs (ws/http_proxy.[ch]). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws/http_proxy.h"

static void test_parse(void **state) {
  (void)state;
  http_proxy_t p;
  char err[256];
  assert_int_equal(http_proxy_parse("http://proxy.corp:3128", &p, err, 256), 0);
  assert_string_equal(p.host, "proxy.corp");
  assert_int_equal(p.port, 3128);
  assert_false(p.has_auth);
  assert_string_equal(p.display, "http://proxy.corp:3128");
  /* No scheme, no port: http and curl's 1080; a trailing slash; any case. */
  assert_int_equal(http_proxy_parse("10.0.0.1", &p, err, 256), 0);
  assert_string_equal(p.host, "10.0.0.1");
  assert_int_equal(p.port, 1080);
  assert_int_equal(http_proxy_parse("HTTP://h:8080/", &p, err, 256), 0);
  assert_int_equal(p.port, 8080);
  assert_int_equal(http_proxy_parse("http://[::1]:3128", &p, err, 256), 0);
  assert_string_equal(p.host, "::1");
  assert_string_equal(p.display, "http://[::1]:3128");
}

static void test_credentials(void **state) {
  (void)state;
  http_proxy_t p;
  char err[256];
  assert_int_equal(
      http_proxy_parse("http://alice:s3cr%40t%3A@h:3128", &p, err, 256), 0);
  assert_true(p.has_auth);
  assert_string_equal(p.user, "alice");
  assert_string_equal(p.pass, "s3cr@t:");
  assert_string_equal(p.display, "http://***@h:3128");
  /* An unencoded '@' in the password: the last '@' ends the userinfo. */
  assert_int_equal(http_proxy_parse("http://bob:p@ss@h:1", &p, err, 256), 0);
  assert_string_equal(p.user, "bob");
  assert_string_equal(p.pass, "p@ss");
  /* A user without a password; an empty password. */
  assert_int_equal(http_proxy_parse("carol@h", &p, err, 256), 0);
  assert_true(p.has_auth);
  assert_string_equal(p.user, "carol");
  assert_string_equal(p.pass, "");
  assert_int_equal(http_proxy_parse("http://dave:@h", &p, err, 256), 0);
  assert_string_equal(p.pass, "");
  http_proxy_clear(&p);
  assert_string_equal(p.user, "");
}

static void test_parse_errors(void **state) {
  (void)state;
  http_proxy_t p;
  char err[256];
  struct {
    const char *url, *msg;
  } cases[] = {
      {"https://u:secret@h:1", "https:// proxies"},
      {"socks5://u:secret@h:1", "SOCKS proxies are not supported"},
      {"socks5h://h:1080", "SOCKS"},
      {"ftp://h:1", "unsupported proxy scheme ftp://"},
      {"http://u:secret@:3128", "no valid host"},
      {"http://u:secret@h:0", "port must be 1-65535"},
      {"http://u:secret@h:65536", "port must be 1-65535"},
      {"http://u:secret@h:x", "port must be 1-65535"},
      {"http://u:secret@h:80/path", "no path"},
      {"http://u:secret@h h", "no path"},
      {"http://u:sec%2ret@h", "badly percent-encoded"},
      {"http://u:sec%00ret@h", "badly percent-encoded"},
      {"http://u:secret%4@h", "badly percent-encoded"},
      {"http://u%3Av:secret@h", "cannot hold a ':'"},
      {"http://u:secret@[::1", "lacks its ']'"},
      {"http://u:secret@[zz]:1", "IPv6 address is not valid"},
      {"", "no valid host"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    err[0] = '\0';
    assert_int_equal(http_proxy_parse(cases[i].url, &p, err, sizeof(err)), -1);
    if (strstr(err, cases[i].msg) == NULL)
      fail_msg("%s: '%s' lacks '%s'", cases[i].url, err, cases[i].msg);
    /* The message never repeats the URL, so never the password. */
    assert_null(strstr(err, "secret"));
    assert_string_equal(p.pass, "");
  }
}

static int bypass(const char *list, const char *host, int port) {
  char entry[96];
  return http_proxy_bypass(list, host, port, entry, sizeof(entry));
}

static void test_no_proxy(void **state) {
  (void)state;
  char entry[96];
  /* Domains: the name and what is under it, at a dot boundary. */
  assert_true(bypass("example.com", "example.com", 443));
  assert_true(bypass("example.com", "edge.example.com", 443));
  assert_true(bypass(".example.com", "example.com", 443));
  assert_true(bypass(".example.com", "a.b.example.com", 443));
  assert_true(bypass("*.example.com", "a.example.com", 443));
  assert_false(bypass("example.com", "badexample.com", 443));
  assert_false(bypass("example.com", "example.com.evil", 443));
  assert_false(bypass("edge.example.com", "example.com", 443));
  assert_true(bypass("EXAMPLE.com.", "Edge.Example.COM.", 443));
  /* Lists: commas, blanks, empty entries; * alone matches everything. */
  assert_true(bypass("a.org, ,b.org  c.org", "c.org", 1));
  assert_true(bypass("localhost,*", "anything", 1));
  assert_false(bypass("", "a.org", 1));
  assert_false(bypass(" , ", "a.org", 1));
  assert_false(bypass("*.", "a.org", 1));
  /* Addresses and networks match addresses only: names are not resolved. */
  assert_true(bypass("127.0.0.1", "127.0.0.1", 8443));
  assert_false(bypass("127.0.0.1", "127.0.0.2", 8443));
  assert_false(bypass("127.0.0.1", "localhost", 8443));
  assert_true(bypass("10.0.0.0/8", "10.200.3.4", 1));
  assert_false(bypass("10.0.0.0/8", "11.0.0.1", 1));
  assert_true(bypass("192.168.1.0/25", "192.168.1.127", 1));
  assert_false(bypass("192.168.1.0/25", "192.168.1.128", 1));
  assert_true(bypass("0.0.0.0/0", "8.8.8.8", 1));
  assert_true(bypass("::1", "::1", 1));
  assert_true(bypass("fd00::/8", "[fd12::5]", 1));
  assert_false(bypass("fd00::/8", "fe80::1", 1));
  assert_false(bypass("10.0.0.0/8", "::ffff:10.0.0.1", 1));
  assert_false(bypass("10.0.0.0/33", "10.0.0.1", 1));
  /* Ports: an entry with one matches that port only. */
  assert_true(bypass("edge.corp:8443", "edge.corp", 8443));
  assert_false(bypass("edge.corp:8443", "edge.corp", 443));
  assert_true(bypass("127.0.0.1:9", "127.0.0.1", 9));
  assert_false(bypass("127.0.0.1:9", "127.0.0.1", 10));
  assert_true(bypass("[::1]:443", "::1", 443));
  assert_false(bypass("[::1]:443", "::1", 80));
  assert_false(bypass("edge.corp:0", "edge.corp", 443));
  assert_false(bypass("edge.corp:x", "edge.corp", 443));
  /* The entry that matched, for messages. */
  assert_true(http_proxy_bypass("a.org,.corp", "e.corp", 1, entry, 96));
  assert_string_equal(entry, ".corp");
}

/* A fake environment: NAME=VALUE strings. */
typedef struct {
  const char *vars[8];
} env_t;

static const char *fake_getenv(void *ctx, const char *name) {
  env_t *e = ctx;
  size_t n = strlen(name);
  for (int i = 0; i < 8 && e->vars[i]; i++)
    if (strncmp(e->vars[i], name, n) == 0 && e->vars[i][n] == '=')
      return e->vars[i] + n + 1;
  return NULL;
}

static int choose(env_t *e, const char *flag, int tls, const char *host,
                  int port, http_proxy_choice_t *c, char *err) {
  return http_proxy_choose(flag, "--http-proxy", fake_getenv, e, tls, host,
                           port, c, err, 256);
}

static void test_choose(void **state) {
  (void)state;
  http_proxy_choice_t c;
  char err[256], line[512];
  env_t none = {{NULL}};
  assert_int_equal(choose(&none, NULL, 1, "e", 443, &c, err), 0);
  assert_false(c.use);
  http_proxy_describe(&c, line, sizeof(line));
  assert_string_equal(line, "direct");
  /* Lowercase first, then uppercase, then all_proxy / ALL_PROXY. */
  env_t both = {{"HTTPS_PROXY=http://upper:1", "https_proxy=http://lower:2"}};
  assert_int_equal(choose(&both, NULL, 1, "e", 443, &c, err), 0);
  assert_true(c.use);
  assert_string_equal(c.proxy.host, "lower");
  assert_string_equal(c.origin, "https_proxy");
  env_t all = {{"ALL_PROXY=http://all:3", "https_proxy="}};
  assert_int_equal(choose(&all, NULL, 1, "e", 443, &c, err), 0);
  assert_string_equal(c.proxy.host, "all");
  assert_string_equal(c.origin, "ALL_PROXY");
  /* ws://: http_proxy only, never HTTP_PROXY; HTTPS_PROXY is not for it. */
  env_t http = {{"HTTP_PROXY=http://cgi:1", "HTTPS_PROXY=http://s:1"}};
  assert_int_equal(choose(&http, NULL, 0, "e", 80, &c, err), 0);
  assert_false(c.use);
  env_t http2 = {{"http_proxy=http://plain:8"}};
  assert_int_equal(choose(&http2, NULL, 0, "e", 80, &c, err), 0);
  assert_string_equal(c.proxy.host, "plain");
  /* The flag wins; "" means none. */
  env_t env = {{"HTTPS_PROXY=http://env:1"}};
  assert_int_equal(choose(&env, "http://u:pw@flag:2", 1, "e", 443, &c, err), 0);
  assert_string_equal(c.proxy.host, "flag");
  assert_string_equal(c.proxy.pass, "pw");
  http_proxy_describe(&c, line, sizeof(line));
  assert_string_equal(line, "HTTP proxy http://***@flag:2 (from --http-proxy)");
  assert_int_equal(choose(&env, "", 1, "e", 443, &c, err), 0);
  assert_false(c.use);
  http_proxy_describe(&c, line, sizeof(line));
  assert_string_equal(line, "direct (--http-proxy is empty)");
  /* no_proxy before NO_PROXY; it applies to the flag too. */
  env_t np = {{"HTTPS_PROXY=http://env:1", "NO_PROXY=other", "no_proxy=.corp"}};
  assert_int_equal(choose(&np, NULL, 1, "edge.corp", 443, &c, err), 0);
  assert_false(c.use);
  http_proxy_describe(&c, line, sizeof(line));
  assert_string_equal(line, "direct (no_proxy matches .corp)");
  assert_int_equal(choose(&np, "http://flag:2", 1, "edge.corp", 443, &c, err),
                   0);
  assert_false(c.use);
  assert_int_equal(choose(&np, NULL, 1, "other", 443, &c, err), 0);
  assert_true(c.use);
}

static void test_choose_errors(void **state) {
  (void)state;
  http_proxy_choice_t c;
  char err[256];
  env_t bad = {{"HTTPS_PROXY=socks5://u:secret@h:1080", "NO_PROXY=.corp"}};
  assert_int_equal(choose(&bad, NULL, 1, "edge.example", 443, &c, err), -1);
  assert_non_null(strstr(err, "HTTPS_PROXY: SOCKS proxies"));
  assert_null(strstr(err, "secret"));
  /* As curl: an unusable variable does not matter where it is bypassed. */
  assert_int_equal(choose(&bad, NULL, 1, "edge.corp", 443, &c, err), 0);
  assert_false(c.use);
  /* A flag must be valid anyway. */
  assert_int_equal(choose(&bad, "http://h:99999", 1, "edge.corp", 443, &c, err),
                   -1);
  assert_non_null(strstr(err, "--http-proxy: the proxy's port"));
}

static void test_connect_request(void **state) {
  (void)state;
  http_proxy_t p;
  char err[256], buf[HTTP_PROXY_REQUEST_MAX];
  assert_int_equal(http_proxy_parse("http://h:1", &p, err, 256), 0);
  int n = http_proxy_connect_request(&p, "edge.example", 443, buf, sizeof(buf));
  assert_true(n > 0);
  assert_int_equal((size_t)n, strlen(buf));
  assert_memory_equal(buf, "CONNECT edge.example:443 HTTP/1.1\r\n", 35);
  assert_non_null(strstr(buf, "\r\nHost: edge.example:443\r\n"));
  assert_null(strstr(buf, "Proxy-Authorization"));
  assert_string_equal(buf + n - 4, "\r\n\r\n");
  /* Basic credentials: base64 of "Aladdin:open sesame" (RFC 7617). */
  assert_int_equal(
      http_proxy_parse("http://Aladdin:open%20sesame@h:1", &p, err, 256), 0);
  n = http_proxy_connect_request(&p, "::1", 8443, buf, sizeof(buf));
  assert_true(n > 0);
  assert_memory_equal(buf, "CONNECT [::1]:8443 HTTP/1.1\r\n", 29);
  assert_non_null(strstr(
      buf, "\r\nProxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n"));
  /* Too small a buffer; a host that would end the request line. */
  assert_int_equal(http_proxy_connect_request(&p, "e", 1, buf, 16), -1);
  assert_int_equal(
      http_proxy_connect_request(&p, "e\r\nX: y", 1, buf, sizeof(buf)), -1);
  assert_int_equal(http_proxy_connect_request(&p, "e", 0, buf, sizeof(buf)),
                   -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse),
      cmocka_unit_test(test_credentials),
      cmocka_unit_test(test_parse_errors),
      cmocka_unit_test(test_no_proxy),
      cmocka_unit_test(test_choose),
      cmocka_unit_test(test_choose_errors),
      cmocka_unit_test(test_connect_request),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
