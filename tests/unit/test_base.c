/* Unit tests for base/: cleaning and quoting text, the id rule. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/id.h"
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_text_quote),
      cmocka_unit_test(test_text_clean),
      cmocka_unit_test(test_id_valid),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
