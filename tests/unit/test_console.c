/* Unit tests for the console's static files (edge/console.h): the paths it
 * owns, the answers and their headers, conditional requests, and the
 * compiled-in files themselves (types, no inline script or style). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "edge/console.h"

static void test_owns(void **state) {
  (void)state;
  assert_true(console_owns("/console"));
  assert_true(console_owns("/console/"));
  assert_true(console_owns("/console/js/app.js"));
  assert_false(console_owns("/consolex"));
  assert_false(console_owns("/console.js"));
  assert_false(console_owns("/v1/projects"));
  assert_false(console_owns("/"));
  assert_false(console_owns(""));
  assert_false(console_owns(NULL));
}

/* The value of header name in the lines, or "" (static buffer). */
static const char *header(const console_response_t *r, const char *name) {
  static char value[512];
  size_t n = strlen(name);

  value[0] = '\0';
  for (const char *p = r->headers; p != NULL && *p != '\0';) {
    const char *eol = strstr(p, "\r\n");
    assert_non_null(eol);
    if (strncmp(p, name, n) == 0 && p[n] == ':') {
      const char *v = p + n + 1 + (p[n + 1] == ' ');
      snprintf(value, sizeof value, "%.*s", (int)(eol - v), v);
      return value;
    }
    p = eol + 2;
  }
  return value;
}

static void assert_secured(const console_response_t *r) {
  assert_string_equal(header(r, "Content-Security-Policy"), CONSOLE_CSP);
  assert_string_equal(header(r, "X-Content-Type-Options"), "nosniff");
  assert_string_equal(header(r, "Referrer-Policy"), "no-referrer");
  assert_string_equal(header(r, "X-Frame-Options"), "DENY");
  assert_string_equal(header(r, "Cache-Control"), "no-cache");
}

static void test_index(void **state) {
  console_response_t r;
  const console_asset_t *index = console_find("index.html");

  (void)state;
  assert_non_null(index);
  console_handle("GET", "/console/", NULL, &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.content_type, "text/html; charset=utf-8");
  assert_ptr_equal(r.body, index->data);
  assert_int_equal(r.body_len, index->len);
  assert_string_equal(header(&r, "ETag"), index->etag);
  assert_secured(&r);
  /* The file by its name is the same file. */
  console_handle("GET", "/console/index.html", "", &r);
  assert_int_equal(r.status, 200);
  assert_ptr_equal(r.body, index->data);
}

static void test_redirect(void **state) {
  console_response_t r;

  (void)state;
  console_handle("GET", "/console", NULL, &r);
  assert_int_equal(r.status, 301);
  assert_string_equal(header(&r, "Location"), "/console/");
  assert_secured(&r);
}

static void test_types(void **state) {
  static const struct {
    const char *path, *type;
  } cases[] = {
      {"/console/app.css", "text/css; charset=utf-8"},
      {"/console/js/app.js", "text/javascript; charset=utf-8"},
      {"/console/js/match.js", "text/javascript; charset=utf-8"},
      {"/console/icon.svg", "image/svg+xml"},
  };
  console_response_t r;

  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    console_handle("GET", cases[i].path, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, cases[i].type);
    assert_true(r.body_len > 0);
  }
}

static void test_not_found(void **state) {
  static const char *const paths[] = {
      "/console/nope.js", "/console/js",          "/console/js/",
      "/console/../v1",   "/console//index.html", "/console/INDEX.HTML"};
  console_response_t r;

  (void)state;
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
    console_handle("GET", paths[i], NULL, &r);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.content_type, "text/plain; charset=utf-8");
    assert_secured(&r);
  }
  /* Not one of its paths at all. */
  console_handle("GET", "/v1/projects", NULL, &r);
  assert_int_equal(r.status, 404);
}

static void test_methods(void **state) {
  static const char *const methods[] = {"POST",   "PATCH", "PUT",
                                        "DELETE", "HEAD",  ""};
  console_response_t r;

  (void)state;
  for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
    console_handle(methods[i], "/console/", NULL, &r);
    assert_int_equal(r.status, 405);
    assert_string_equal(header(&r, "Allow"), "GET");
  }
  console_handle(NULL, "/console/", NULL, &r);
  assert_int_equal(r.status, 405);
}

static void test_conditional(void **state) {
  const console_asset_t *a = console_find("js/app.js");
  char list[256];
  console_response_t r;

  (void)state;
  assert_non_null(a);
  console_handle("GET", "/console/js/app.js", a->etag, &r);
  assert_int_equal(r.status, 304);
  assert_null(r.body);
  assert_int_equal(r.body_len, 0);
  assert_string_equal(header(&r, "ETag"), a->etag);
  assert_secured(&r);
  snprintf(list, sizeof list, "W/%s", a->etag);
  console_handle("GET", "/console/js/app.js", list, &r);
  assert_int_equal(r.status, 304);
  snprintf(list, sizeof list, "\"0000000000000000\", %s", a->etag);
  console_handle("GET", "/console/js/app.js", list, &r);
  assert_int_equal(r.status, 304);
  console_handle("GET", "/console/js/app.js", "*", &r);
  assert_int_equal(r.status, 304);
  /* Another file's ETag, a cut one, garbage: the file. */
  console_handle("GET", "/console/js/app.js", console_find("index.html")->etag,
                 &r);
  assert_int_equal(r.status, 200);
  snprintf(list, sizeof list, "%.10s", a->etag);
  console_handle("GET", "/console/js/app.js", list, &r);
  assert_int_equal(r.status, 200);
  console_handle("GET", "/console/js/app.js", ",,, W/ \t", &r);
  assert_int_equal(r.status, 200);
}

/* Whether the bytes hold needle (case-insensitive). */
static int holds(const console_asset_t *a, const char *needle) {
  size_t n = strlen(needle);

  for (size_t i = 0; i + n <= a->len; i++) {
    size_t j = 0;
    while (j < n && (a->data[i + j] | 0x20) == (needle[j] | 0x20))
      j++;
    if (j == n)
      return 1;
  }
  return 0;
}

/* The policy allows no inline script or style: the HTML must not need
 * any, and every file must have a type the edge names. */
static void test_assets(void **state) {
  const console_asset_t *index = console_find("index.html");
  console_response_t r;
  char path[256];

  (void)state;
  assert_true(console_nassets >= 4);
  for (size_t i = 0; i < console_nassets; i++) {
    const console_asset_t *a = &console_assets[i];
    assert_true(strlen(a->etag) == 18 && a->etag[0] == '"');
    snprintf(path, sizeof path, "/console/%s", a->name);
    console_handle("GET", path, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_not_equal(r.content_type, "application/octet-stream");
    if (strstr(a->name, ".html") == NULL)
      continue;
    assert_false(holds(a, "<script>"));
    assert_false(holds(a, " style="));
    assert_false(holds(a, "<style"));
    assert_false(holds(a, " onclick="));
    assert_false(holds(a, " onload="));
    assert_false(holds(a, "javascript:"));
  }
  assert_true(holds(index, "<script type=\"module\" src=\"js/app.js\">"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_owns),        cmocka_unit_test(test_index),
      cmocka_unit_test(test_redirect),    cmocka_unit_test(test_types),
      cmocka_unit_test(test_not_found),   cmocka_unit_test(test_methods),
      cmocka_unit_test(test_conditional), cmocka_unit_test(test_assets),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
