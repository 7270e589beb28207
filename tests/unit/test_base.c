/* Unit tests for base/: cleaning and quoting text, the id rule, strict
 * JSON and its messages. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/id.h"
#include "base/json.h"
#include "base/text.h"

/* ---- text -------------------------------------------------------------- */

static void test_text_quote(void **state) {
  char q[TEXT_QUOTE_SIZE], s[TEXT_QUOTE_MAX + 2];

  text_quote(q, sizeof q, "");
  assert_string_equal(q, "\"\"");
  /* Quotes, control bytes, DEL and non-ASCII all become '?'. */
  text_quote(q, sizeof q, "a\"b\n\t\x7f\xc3\xa9z");
  assert_string_equal(q, "\"a?b?????z\"");

  /* Exactly TEXT_QUOTE_MAX characters: not cut. */
  memset(s, 'x', TEXT_QUOTE_MAX);
  s[TEXT_QUOTE_MAX] = '\0';
  text_quote(q, sizeof q, s);
  assert_int_equal(strlen(q), TEXT_QUOTE_MAX + 2);
  assert_null(strstr(q, "..."));
  /* One more: cut and marked, and TEXT_QUOTE_SIZE is enough. */
  s[TEXT_QUOTE_MAX] = 'y';
  s[TEXT_QUOTE_MAX + 1] = '\0';
  text_quote(q, sizeof q, s);
  assert_int_equal(strlen(q), TEXT_QUOTE_MAX + 3 + 2);
  assert_string_equal(q + TEXT_QUOTE_MAX + 1, "...\"");

  /* A small buffer cuts, never overruns. */
  memset(q, '#', sizeof q);
  text_quote(q, 4, "abcdef");
  assert_string_equal(q, "\"ab");
  assert_int_equal(q[4], '#');
  text_quote(q, 0, "abc"); /* n == 0 writes nothing */
  assert_int_equal(q[0], '"');
}

static void test_text_clean(void **state) {
  char b[16];

  text_clean(b, sizeof b, "p1\r\nx", 128);
  assert_string_equal(b, "p1??x");
  /* Cut at max characters, marked. */
  text_clean(b, sizeof b, "abcdef", 3);
  assert_string_equal(b, "abc...");
  /* Cut by the buffer: no room for the mark, still terminated. */
  text_clean(b, 5, "abcdef", 128);
  assert_string_equal(b, "abcd");
  text_clean(b, 8, "abcdefghijkl", 128);
  assert_string_equal(b, "abcdefg");
  text_clean(b, 9, "abcdefghijkl", 4);
  assert_string_equal(b, "abcd...");
}

/* ---- ids --------------------------------------------------------------- */

static void test_id_valid(void **state) {
  char id[ID_MAX + 2];

  assert_true(id_valid("p1"));
  assert_true(id_valid("a.b_c-D9"));
  assert_false(id_valid(NULL));
  assert_false(id_valid(""));
  const char *bad[] = {"a b", "a/b", "a@b", "a%2f", "a\nb", "\xc3\xa9", "a:b"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (id_valid(bad[i]))
      fail_msg("accepted id \"%s\"", bad[i]);
  memset(id, 'x', ID_MAX + 1);
  id[ID_MAX + 1] = '\0';
  assert_false(id_valid(id));
  id[ID_MAX] = '\0';
  assert_true(id_valid(id));
}

/* ---- strict JSON ------------------------------------------------------- */

/* text (len bytes) must be refused with exactly want. */
static void parse_bad(const char *text, size_t len, const char *want) {
  char err[256] = "untouched";
  cJSON *doc = json_parse_strict(text, len, err, sizeof err);

  if (doc != NULL) {
    cJSON_Delete(doc);
    fail_msg("parsed: %.*s", (int)len, text);
  }
  if (strcmp(err, want) != 0)
    fail_msg("got \"%s\", want \"%s\"", err, want);
}

static void parse_good(const char *text) {
  char err[256];
  cJSON *doc = json_parse_strict(text, strlen(text), err, sizeof err);

  if (doc == NULL)
    fail_msg("refused %s: %s", text, err);
  cJSON_Delete(doc);
}

static void test_json_parse_strict(void **state) {
  char err[64];

  parse_good("{}");
  parse_good(" [1, \"a\"] \t\r\n");
  parse_good("[\"\\u0041\\\\u0000\"]"); /* an escaped backslash, then text */
  parse_good("[\"\\\\\\u0041\"]");      /* "\\" then a real \u escape */
  parse_good("[\"\\u00e9\"]");

  parse_bad(NULL, 0, "invalid JSON at byte offset 0");
  parse_bad("{\"a\":1,}", 8, "invalid JSON at byte offset 7");
  parse_bad("[1] [2]", 7,
            "invalid JSON at byte offset 4: data after the document");
  parse_bad("[\"a\\u0000\"]", 11,
            "invalid JSON at byte offset 3: \\u0000 is not allowed");
  parse_bad("[\"\\\\\\u0000\"]", 12,
            "invalid JSON at byte offset 4: \\u0000 is not allowed");
  parse_bad("[\"a\\u00zz\"]", 11,
            "invalid JSON at byte offset 3: \\u must be followed by 4 hex "
            "digits");
  parse_bad("[\"a\"]\0", 6,
            "invalid JSON at byte offset 5: data after the document");
  parse_bad("[\"a\0b\"]", 7,
            "invalid JSON at byte offset 3: NUL bytes are not allowed");

  /* A small err is cut, never overrun; a NULL err is allowed. */
  assert_null(json_parse_strict("x", 1, err, 8));
  assert_string_equal(err, "invalid");
  assert_null(json_parse_strict("x", 1, NULL, 0));
}

static void check_object(const char *text, const char *path, const char *what,
                         const char *want) {
  static const char *const allowed[] = {"a", "b", NULL};
  char err[256] = "";
  cJSON *doc = cJSON_Parse(text);
  int rc;

  assert_non_null(doc);
  rc = json_check_object(doc, path, allowed, what, err, sizeof err);
  cJSON_Delete(doc);
  if (want == NULL) {
    assert_int_equal(rc, 0);
    return;
  }
  assert_int_equal(rc, -1);
  if (strcmp(err, want) != 0)
    fail_msg("got \"%s\", want \"%s\"", err, want);
}

static void test_json_check_object(void **state) {
  check_object("{}", "", "key", NULL);
  check_object("{\"b\":1,\"a\":[]}", "tls", "key", NULL);
  check_object("{\"c\":1}", "", "field", "unknown field \"c\"");
  check_object("{\"c\":1}", "tls", "key", "tls: unknown key \"c\"");
  check_object("{\"a\":1,\"b\":2,\"a\":3}", "services[1]", "field",
               "services[1]: duplicate field \"a\"");
  check_object("{\"x\\ny\":1}", "config", "key", "config: unknown key \"x?y\"");
  check_object("[1]", "tokens[0]", "key",
               "tokens[0]: expected an object, got an array");
  check_object("\"s\"", "", "field", "expected an object, got \"s\"");
}

static void test_json_messages(void **state) {
  char err[128], d[TEXT_QUOTE_SIZE], p[16];
  cJSON *v;

  assert_int_equal(json_fail(err, sizeof err, "a.b", "bad %d", 7), -1);
  assert_string_equal(err, "a.b: bad 7");
  json_fail(err, sizeof err, "", "bad");
  assert_string_equal(err, "bad");
  json_fail(err, sizeof err, NULL, "bad");
  assert_string_equal(err, "bad");
  json_fail(err, 4, "long.path", "bad"); /* the path alone does not fit */
  assert_int_equal(strlen(err), 3);

  v = cJSON_CreateNumber(8080);
  assert_int_equal(json_fail_got(err, sizeof err, "upstream", "a string", v),
                   -1);
  assert_string_equal(err, "upstream: expected a string, got 8080");
  cJSON_Delete(v);

  v = cJSON_Parse("[\"q\\\"\", 1.5, true, false, null, [], {}]");
  const char *want[] = {"\"q?\"", "1.5",      "true",     "false",
                        "null",   "an array", "an object"};
  for (int i = 0; i < 7; i++) {
    json_describe(d, sizeof d, cJSON_GetArrayItem(v, i));
    assert_string_equal(d, want[i]);
  }
  cJSON_Delete(v);

  json_path_key(p, sizeof p, "", "listen");
  assert_string_equal(p, "listen");
  json_path_key(p, sizeof p, "tls", "cert");
  assert_string_equal(p, "tls.cert");
  json_path_index(p, sizeof p, "tokens", 12);
  assert_string_equal(p, "tokens[12]");
  json_path_index(p, 8, "services", 3); /* cut, never overrun */
  assert_string_equal(p, "service");
}

static void test_json_build(void **state) {
  char *const v[] = {"a", "b"};
  cJSON *o = cJSON_CreateObject();
  char *text;

  assert_int_equal(json_add(o, "list", json_strings(v, 2)), 0);
  assert_int_equal(json_add(o, "none", json_strings(v, 0)), 0);
  assert_int_equal(json_add(o, "nothing", NULL), -1);
  text = cJSON_PrintUnformatted(o);
  assert_string_equal(text, "{\"list\":[\"a\",\"b\"],\"none\":[]}");
  free(text);
  cJSON_Delete(o);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_text_quote),
      cmocka_unit_test(test_text_clean),
      cmocka_unit_test(test_id_valid),
      cmocka_unit_test(test_json_parse_strict),
      cmocka_unit_test(test_json_check_object),
      cmocka_unit_test(test_json_messages),
      cmocka_unit_test(test_json_build),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
