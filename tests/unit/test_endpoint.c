/* Loopback endpoint derivation: stable, in range, spread out. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "proxy/endpoint.h"

static void parse_quad(const char *s, unsigned q[4]) {
  assert_int_equal(sscanf(s, "%u.%u.%u.%u", &q[0], &q[1], &q[2], &q[3]), 4);
}

static void test_stable(void **state) {
  endpoint_t a, b;
  endpoint_derive("proj", "svc", &a);
  endpoint_derive("proj", "svc", &b);
  assert_string_equal(a.addr, b.addr);
  assert_int_equal(a.port, b.port);
}

static void test_range(void **state) {
  char p[32], s[32];
  for (int i = 0; i < 2000; i++) {
    endpoint_t e;
    snprintf(p, sizeof(p), "project-%d", i % 37);
    snprintf(s, sizeof(s), "service-%d", i);
    endpoint_derive(p, s, &e);
    unsigned q[4];
    parse_quad(e.addr, q);
    assert_int_equal(q[0], 127);
    for (int k = 1; k < 4; k++) {
      assert_true(q[k] >= 1 && q[k] <= 254);
    }
    assert_true(e.port >= ENDPOINT_PORT_MIN && e.port < ENDPOINT_PORT_MAX);
    assert_string_not_equal(e.addr, "127.0.0.1");
  }
}

/* The separator matters: ("ab","c") and ("a","bc") are different services. */
static void test_separator(void **state) {
  endpoint_t a, b;
  endpoint_derive("ab", "c", &a);
  endpoint_derive("a", "bc", &b);
  assert_true(strcmp(a.addr, b.addr) != 0 || a.port != b.port);
}

/* Different services rarely share an address. */
static void test_spread(void **state) {
  enum { N = 500 };
  static char seen[N][16];
  int collisions = 0;
  for (int i = 0; i < N; i++) {
    endpoint_t e;
    char s[32];
    snprintf(s, sizeof(s), "svc%d", i);
    endpoint_derive("p", s, &e);
    for (int j = 0; j < i; j++)
      collisions += strcmp(seen[j], e.addr) == 0;
    memcpy(seen[i], e.addr, sizeof(seen[i]));
  }
  /* 254^3 addresses: a collision among 500 is very unlikely. */
  assert_true(collisions <= 1);
}

/* Golden value: changing the derivation would break users' known_hosts. */
static void test_golden(void **state) {
  endpoint_t e;
  endpoint_derive("p1", "ssh", &e);
  char buf[32];
  snprintf(buf, sizeof(buf), "%s:%u", e.addr, e.port);
  assert_string_equal(buf, "127.221.188.188:24286");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_stable),    cmocka_unit_test(test_range),
      cmocka_unit_test(test_separator), cmocka_unit_test(test_spread),
      cmocka_unit_test(test_golden),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
