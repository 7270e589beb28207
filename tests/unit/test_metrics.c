/* Unit tests for the edge's metrics text (Prometheus format 0.0.4). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge/metrics.h"

/* Every sample line of a snapshot, in order, for distinct values. */
static const char expected_samples[] =
    "wsmux_edge_up 1\n"
    "wsmux_edge_connections_open 2\n"
    "wsmux_edge_connections_total 3\n"
    "wsmux_edge_streams_open 4\n"
    "wsmux_edge_stream_opens_total{result=\"ok\"} 10\n"
    "wsmux_edge_stream_opens_total{result=\"refused\"} 11\n"
    "wsmux_edge_stream_opens_total{result=\"denied\"} 12\n"
    "wsmux_edge_stream_opens_total{result=\"limit\"} 13\n"
    "wsmux_edge_stream_opens_total{result=\"error\"} 14\n"
    "wsmux_edge_bytes_total{direction=\"to_upstream\"} 20\n"
    "wsmux_edge_bytes_total{direction=\"from_upstream\"} 21\n"
    "wsmux_edge_resumes_total{result=\"ok\"} 30\n"
    "wsmux_edge_resumes_total{result=\"expired\"} 31\n"
    "wsmux_edge_resumes_total{result=\"other_edge\"} 32\n"
    "wsmux_edge_auth_failures_total{reason=\"no_token\"} 40\n"
    "wsmux_edge_auth_failures_total{reason=\"bad_token\"} 41\n"
    "wsmux_edge_auth_failures_total{reason=\"forbidden\"} 42\n"
    "wsmux_edge_auth_failures_total{reason=\"not_found\"} 43\n"
    "wsmux_edge_limit_rejections_total{limit=\"streams\"} 50\n"
    "wsmux_edge_limit_rejections_total{limit=\"connections_per_token\"} 51\n"
    "wsmux_edge_limit_rejections_total{limit=\"handshake_timeout\"} 52\n"
    "wsmux_edge_limit_rejections_total{limit=\"unauthenticated\"} 53\n"
    "wsmux_edge_limit_rejections_total{limit=\"unauthenticated_per_address\"} "
    "54\n"
    "wsmux_edge_limit_rejections_total{limit=\"streams_per_token\"} 55\n"
    "wsmux_edge_limit_rejections_total{limit=\"open_files\"} 56\n"
    "wsmux_edge_store_backend{backend=\"file\"} 0\n"
    "wsmux_edge_store_backend{backend=\"postgres\"} 1\n"
    "wsmux_edge_store_up 1\n"
    "wsmux_edge_store_view_age_seconds 61\n"
    "wsmux_edge_store_reloads_total 62\n"
    "wsmux_edge_store_writes_total{result=\"ok\"} 63\n"
    "wsmux_edge_store_writes_total{result=\"failed\"} 64\n"
    "wsmux_edge_store_outages_total 65\n"
    "wsmux_edge_connections_unauthenticated 67\n"
    "wsmux_edge_requests_malformed_total 68\n"
    "wsmux_edge_state_unavailable_total 66\n";

static metrics_t distinct_values(void) {
  metrics_t m = {.connections_open = 2,
                 .connections_total = 3,
                 .streams_open = 4,
                 .bytes_to_upstream = 20,
                 .bytes_from_upstream = 21,
                 .store_postgres = 1,
                 .store_up = 1,
                 .store_view_age_ms = 61999,
                 .store_reloads = 62,
                 .store_writes = {63, 64},
                 .store_outages = 65,
                 .state_unavailable = 66,
                 .unauthenticated = 67,
                 .malformed = 68};
  for (int i = 0; i < METRICS_OPEN_N; i++)
    m.stream_opens[i] = 10 + (uint64_t)i;
  for (int i = 0; i < METRICS_RESUME_N; i++)
    m.resumes[i] = 30 + (uint64_t)i;
  for (int i = 0; i < METRICS_AUTH_N; i++)
    m.auth_failures[i] = 40 + (uint64_t)i;
  for (int i = 0; i < METRICS_LIMIT_N; i++)
    m.limit_rejections[i] = 50 + (uint64_t)i;
  return m;
}

/* The lines of text not starting with '#', concatenated. */
static char *samples_of(const char *text) {
  char *out = calloc(1, strlen(text) + 1);
  size_t o = 0;
  assert_non_null(out);
  for (const char *l = text; *l;) {
    const char *eol = strchr(l, '\n');
    assert_non_null(eol); /* every line ends with a newline */
    if (*l != '#') {
      memcpy(out + o, l, (size_t)(eol - l) + 1);
      o += (size_t)(eol - l) + 1;
    }
    l = eol + 1;
  }
  return out;
}

static void test_samples(void **state) {
  metrics_t m = distinct_values();
  char buf[METRICS_TEXT_MAX];
  size_t n = metrics_render(&m, buf, sizeof(buf));

  assert_true(n < sizeof(buf));
  assert_int_equal(strlen(buf), n);
  assert_int_equal(buf[n - 1], '\n');
  char *samples = samples_of(buf);
  assert_string_equal(samples, expected_samples);
  free(samples);
}

/* Each metric family has one HELP and one TYPE line, before its samples,
 * with the right type. */
static void test_help_and_type(void **state) {
  static const struct {
    const char *name, *type;
  } families[] = {
      {"wsmux_edge_up", "gauge"},
      {"wsmux_edge_connections_open", "gauge"},
      {"wsmux_edge_connections_total", "counter"},
      {"wsmux_edge_streams_open", "gauge"},
      {"wsmux_edge_stream_opens_total", "counter"},
      {"wsmux_edge_bytes_total", "counter"},
      {"wsmux_edge_resumes_total", "counter"},
      {"wsmux_edge_auth_failures_total", "counter"},
      {"wsmux_edge_limit_rejections_total", "counter"},
      {"wsmux_edge_store_backend", "gauge"},
      {"wsmux_edge_store_up", "gauge"},
      {"wsmux_edge_store_view_age_seconds", "gauge"},
      {"wsmux_edge_store_reloads_total", "counter"},
      {"wsmux_edge_store_writes_total", "counter"},
      {"wsmux_edge_store_outages_total", "counter"},
      {"wsmux_edge_connections_unauthenticated", "gauge"},
      {"wsmux_edge_requests_malformed_total", "counter"},
      {"wsmux_edge_state_unavailable_total", "counter"},
  };
  metrics_t m = distinct_values();
  char buf[METRICS_TEXT_MAX], line[128];
  metrics_render(&m, buf, sizeof(buf));

  for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
    snprintf(line, sizeof(line), "\n# TYPE %s %s\n%s", families[i].name,
             families[i].type, families[i].name);
    /* The first family starts the text, so look from a newline before. */
    char *text = malloc(strlen(buf) + 2);
    assert_non_null(text);
    text[0] = '\n';
    strcpy(text + 1, buf);
    const char *type = strstr(text, line);
    if (type == NULL)
      fail_msg("no '# TYPE %s %s' right before its samples", families[i].name,
               families[i].type);
    snprintf(line, sizeof(line), "# HELP %s ", families[i].name);
    const char *help = strstr(text, line);
    assert_non_null(help);
    assert_true(help < type);
    /* Exactly one of each. */
    assert_null(strstr(help + 1, line));
    snprintf(line, sizeof(line), "# TYPE %s ", families[i].name);
    assert_null(strstr(type + 2, line));
    free(text);
  }
}

/* The largest values fit METRICS_TEXT_MAX, and print in full. */
static void test_max_values(void **state) {
  metrics_t m;
  char buf[METRICS_TEXT_MAX];
  memset(&m, 0xff, sizeof(m));
  size_t n = metrics_render(&m, buf, sizeof(buf));

  assert_true(n < sizeof(buf));
  assert_non_null(strstr(buf,
                         "wsmux_edge_bytes_total{direction=\"to_upstream\"} "
                         "18446744073709551615\n"));
  assert_non_null(strstr(buf, "wsmux_edge_up 1\n"));
}

/* Like snprintf: the length is right whatever the room, the output cut and
 * NUL-terminated, and nothing written past cap. */
static void test_short_buffer(void **state) {
  metrics_t m = distinct_values();
  char full[METRICS_TEXT_MAX];
  size_t n = metrics_render(&m, full, sizeof(full));

  assert_int_equal(metrics_render(&m, NULL, 0), n);
  for (size_t cap = 1; cap <= n + 1; cap += 97) {
    char *buf = malloc(cap); /* exact size: ASan catches an overrun */
    assert_non_null(buf);
    assert_int_equal(metrics_render(&m, buf, cap), n);
    assert_int_equal(strlen(buf), cap - 1 < n ? cap - 1 : n);
    assert_memory_equal(buf, full, strlen(buf));
    free(buf);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_samples),
      cmocka_unit_test(test_help_and_type),
      cmocka_unit_test(test_max_values),
      cmocka_unit_test(test_short_buffer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
