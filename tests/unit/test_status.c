/*
 * Unit tests of what `wsmux proxy` and the live status line are made of:
 * size/rate/duration formatting and the status line text
 * (cli/status_line.h), the status JSON and pidfile text
 * (cli/proxy_status.h), the pidfiles in the runtime directory
 * (cli/rundir.h): one holder at a time, stale files removed, release; and
 * the file of `wsmux proxy up` (cli/upfile.h).
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/proxy_status.h"
#include "cli/rundir.h"
#include "cli/status_line.h"
#include "cli/upfile.h"

/* ---- status_line ---------------------------------------------------- */

static const char *size_of(uint64_t b) {
  static char buf[32];
  status_format_size(b, buf, sizeof(buf));
  return buf;
}

static void test_sizes(void **state) {
  assert_string_equal(size_of(0), "0 B");
  assert_string_equal(size_of(999), "999 B");
  assert_string_equal(size_of(1000), "1 kB");
  assert_string_equal(size_of(1049), "1 kB");
  assert_string_equal(size_of(1050), "1.1 kB"); /* rounds half up */
  assert_string_equal(size_of(12345), "12.3 kB");
  assert_string_equal(size_of(99949), "99.9 kB");
  assert_string_equal(size_of(99950), "100 kB");   /* no decimal from 100 */
  assert_string_equal(size_of(40000000), "40 MB"); /* ".0" dropped */
  assert_string_equal(size_of(999499), "999 kB");
  assert_string_equal(size_of(999500), "1 MB"); /* never "1000 kB" */
  assert_string_equal(size_of(1200000000), "1.2 GB");
  assert_string_equal(size_of(3000000000000ULL), "3 TB");
  assert_string_equal(size_of(UINT64_MAX), "18447 PB");
  char small[6];
  status_format_size(123456, small, sizeof(small)); /* truncated, ended */
  assert_string_equal(small, "123 k");
}

static void test_rates(void **state) {
  char buf[32];
  status_format_rate(0, buf, sizeof(buf));
  assert_string_equal(buf, "0 B/s");
  status_format_rate(-5, buf, sizeof(buf));
  assert_string_equal(buf, "0 B/s");
  status_format_rate(12300000.4, buf, sizeof(buf));
  assert_string_equal(buf, "12.3 MB/s");
  assert_true(status_rate(1000, 3000, 500) == 4000.0);
  assert_true(status_rate(1000, 3000, 0) == 0.0);
  assert_true(status_rate(3000, 1000, 500) == 0.0); /* went back */
}

static void test_durations(void **state) {
  char buf[32];
  status_format_duration(0, buf, sizeof(buf));
  assert_string_equal(buf, "0s");
  status_format_duration(59, buf, sizeof(buf));
  assert_string_equal(buf, "59s");
  status_format_duration(723, buf, sizeof(buf));
  assert_string_equal(buf, "12m03s");
  status_format_duration(5 * 3600 + 7 * 60 + 59, buf, sizeof(buf));
  assert_string_equal(buf, "5h07m");
  status_format_duration(3 * 86400 + 4 * 3600 + 1, buf, sizeof(buf));
  assert_string_equal(buf, "3d04h");
}

static void test_line_text(void **state) {
  char buf[256];
  status_view_t v = {.connected = 1,
                     .streams = 3,
                     .rate_up = 12300000,
                     .rate_down = 1100000,
                     .total_up = 1200000000,
                     .total_down = 40000000};
  status_line_format(&v, buf, sizeof(buf));
  assert_string_equal(buf, "connected | 3 streams | \u2191 12.3 MB/s \u2193 "
                           "1.1 MB/s | total \u2191 1.2 GB \u2193 40 MB");
  v = (status_view_t){.reconnect_in_s = 2, .streams = 1};
  status_line_format(&v, buf, sizeof(buf));
  assert_string_equal(buf, "reconnecting in 2 s | 1 stream | \u2191 0 B/s "
                           "\u2193 0 B/s | total \u2191 0 B \u2193 0 B");
  v.reconnect_in_s = -1; /* an attempt under way */
  v.streams = 0;
  status_line_format(&v, buf, sizeof(buf));
  assert_non_null(strstr(buf, "reconnecting | 0 streams |"));
}

static void test_fit(void **state) {
  assert_int_equal(status_fit("abc", 2), 2);
  assert_int_equal(status_fit("abc", 3), 3);
  assert_int_equal(status_fit("abc", 80), 3);
  assert_int_equal(status_fit("", 5), 0);
  /* A 3-byte arrow is one column, never cut in the middle. */
  assert_int_equal(status_fit("\u2191x", 1), 3);
  assert_int_equal(status_fit("a\u2191x", 1), 1);
  assert_int_equal(status_fit("a\u2191x", 2), 4);
}

/* ---- proxy_status --------------------------------------------------- */

static proxy_status_t sample(void) {
  proxy_status_t s = {.pid = 4242, .started_at = 1700000000};
  snprintf(s.project, sizeof(s.project), "p1");
  snprintf(s.service, sizeof(s.service), "web.eu");
  snprintf(s.endpoint, sizeof(s.endpoint), "127.24.1.1:37071");
  return s;
}

static void test_status_json(void **state) {
  proxy_status_t s = sample(), back;
  s.live = 1;
  s.reconnect_in_s = 3;
  s.streams = 2;
  s.streams_total = 17;
  s.bytes_up = 5000000000ULL; /* above 32 bits */
  s.bytes_down = 12;
  cJSON *o = proxy_status_json(&s, 1700000100);
  assert_non_null(o);
  char *text = cJSON_PrintUnformatted(o);
  assert_string_equal(
      text, "{\"pid\":4242,\"projectId\":\"p1\",\"serviceId\":\"web.eu\","
            "\"endpoint\":\"127.24.1.1:37071\",\"startedAt\":1700000000,"
            "\"uptimeSeconds\":100,\"link\":\"reconnecting\","
            "\"reconnectInSeconds\":3,\"streams\":2,\"streamsTotal\":17,"
            "\"bytesUp\":5000000000,\"bytesDown\":12}");
  assert_int_equal(proxy_status_parse(text, &back), 0);
  assert_int_equal(back.pid, 4242);
  assert_string_equal(back.service, "web.eu");
  assert_true(back.live && !back.connected);
  assert_int_equal(back.reconnect_in_s, 3);
  assert_true(back.bytes_up == 5000000000ULL && back.streams_total == 17);
  free(text);
  cJSON_Delete(o);
}

static void test_status_pidfile(void **state) {
  proxy_status_t s = sample(), back;
  char *text = proxy_status_pidfile_text(&s);
  assert_string_equal(text, "{\"pid\":4242,\"projectId\":\"p1\",\"serviceId\":"
                            "\"web.eu\",\"endpoint\":\"127.24.1.1:37071\","
                            "\"startedAt\":1700000000}");
  assert_int_equal(proxy_status_parse(text, &back), 0);
  assert_false(back.live);
  assert_string_equal(back.endpoint, "127.24.1.1:37071");
  free(text);
  /* From the pidfile alone, the live fields are null. */
  cJSON *o = proxy_status_json(&back, 1700000005);
  text = cJSON_PrintUnformatted(o);
  assert_non_null(strstr(text, "\"uptimeSeconds\":5,\"link\":null,"
                               "\"reconnectInSeconds\":null,\"streams\":"
                               "null"));
  free(text);
  cJSON_Delete(o);
  s.endpoint[0] = '\0'; /* not bound yet */
  text = proxy_status_pidfile_text(&s);
  assert_non_null(strstr(text, "\"endpoint\":null"));
  assert_int_equal(proxy_status_parse(text, &back), 0);
  assert_string_equal(back.endpoint, "");
  free(text);
  assert_int_equal(proxy_status_parse("", &back), -1);
  assert_int_equal(proxy_status_parse("[]", &back), -1);
  assert_int_equal(proxy_status_parse("{\"pid\":1,\"projectId\":\"p\"}", &back),
                   -1);
  assert_int_equal(
      proxy_status_parse("{\"pid\":0,\"projectId\":\"p\",\"serviceId\":\"s\"}",
                         &back),
      -1);
}

/* ---- rundir --------------------------------------------------------- */

typedef struct {
  char tmp[64];
  char dir[PATH_MAX];
} rundir_fixture_t;

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw) {
  return remove(path);
}

static int setup_run(void **state) {
  rundir_fixture_t *f = calloc(1, sizeof(*f));
  snprintf(f->tmp, sizeof(f->tmp), "/tmp/wsmux-test-status.XXXXXX");
  assert_non_null(mkdtemp(f->tmp));
  setenv("XDG_RUNTIME_DIR", f->tmp, 1);
  char err[256];
  assert_int_equal(rundir_dir(f->dir, sizeof(f->dir), err, sizeof(err)), 0);
  *state = f;
  return 0;
}

static int teardown_run(void **state) {
  rundir_fixture_t *f = *state;
  nftw(f->tmp, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
  free(f);
  return 0;
}

static int exists(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

static void test_rundir_dir(void **state) {
  rundir_fixture_t *f = *state;
  char want[PATH_MAX + 32], err[256], again[PATH_MAX];
  snprintf(want, sizeof(want), "%s/wsmux", f->tmp);
  assert_string_equal(f->dir, want);
  struct stat st;
  assert_int_equal(stat(f->dir, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0700);
  /* Loosened by hand: made private again. */
  chmod(f->dir, 0755);
  assert_int_equal(rundir_dir(again, sizeof(again), err, sizeof(err)), 0);
  stat(f->dir, &st);
  assert_int_equal(st.st_mode & 0777, 0700);
  /* Without XDG_RUNTIME_DIR: ~/.cache/wsmux. */
  char home[256];
  snprintf(home, sizeof(home), "%s/home", f->tmp);
  mkdir(home, 0700);
  unsetenv("XDG_RUNTIME_DIR");
  setenv("HOME", home, 1);
  assert_int_equal(rundir_dir(again, sizeof(again), err, sizeof(err)), 0);
  snprintf(want, sizeof(want), "%s/.cache/wsmux", home);
  assert_string_equal(again, want);
  unsetenv("HOME");
  assert_int_equal(rundir_dir(again, sizeof(again), err, sizeof(err)), -1);
  assert_non_null(strstr(err, "XDG_RUNTIME_DIR"));
  char path[PATH_MAX];
  assert_int_equal(rundir_path(path, sizeof(path), "/d", "p1", "web", "sock"),
                   0);
  assert_string_equal(path, "/d/p1.web.sock");
  assert_int_equal(rundir_path(path, 8, "/d", "p1", "web", "sock"), -1);
}

static void test_rundir_one_holder(void **state) {
  rundir_fixture_t *f = *state;
  rundir_lock_t a, b;
  char held[RUNDIR_CONTENT_MAX], err[256];
  assert_int_equal(rundir_acquire(f->dir, "p1", "web", "{\"a\":1}", &a, held,
                                  sizeof(held), err, sizeof(err)),
                   0);
  assert_true(exists(a.pid_path));
  /* Another opener (another process, as far as flock goes) loses and
   * gets the holder's content. */
  assert_int_equal(rundir_acquire(f->dir, "p1", "web", "{\"b\":2}", &b, held,
                                  sizeof(held), err, sizeof(err)),
                   RUNDIR_HELD);
  assert_string_equal(held, "{\"a\":1}");
  assert_int_equal(rundir_update(&a, "{\"a\":22}"), 0);
  char buf[RUNDIR_CONTENT_MAX];
  assert_int_equal(rundir_read_held(f->dir, a.pid_path, buf, sizeof(buf)), 1);
  assert_string_equal(buf, "{\"a\":22}"); /* shorter content: no leftovers */
  rundir_entry_t *es;
  size_t n, stale;
  assert_int_equal(rundir_scan(f->dir, &es, &n, &stale, err, sizeof(err)), 0);
  assert_int_equal(n, 1);
  assert_int_equal(stale, 0);
  assert_string_equal(es[0].content, "{\"a\":22}");
  assert_string_equal(es[0].sock_path, a.sock_path);
  free(es);
  /* A socket file of the holder survives scans. */
  FILE *sock = fopen(a.sock_path, "w");
  fclose(sock);
  rundir_release(&a);
  assert_false(exists(a.pid_path));
  assert_false(exists(a.sock_path));
  rundir_release(&a); /* twice: no-op */
  assert_int_equal(rundir_read_held(f->dir, a.pid_path, buf, sizeof(buf)), 0);
  assert_int_equal(rundir_acquire(f->dir, "p1", "web", "{\"b\":2}", &b, held,
                                  sizeof(held), err, sizeof(err)),
                   0);
  rundir_release(&b);
}

/* A holder that dies without cleaning up (SIGKILL): its files are stale. */
static void test_rundir_stale(void **state) {
  rundir_fixture_t *f = *state;
  char pid_path[PATH_MAX], sock_path[PATH_MAX];
  rundir_path(pid_path, sizeof(pid_path), f->dir, "p1", "dead", "pid");
  rundir_path(sock_path, sizeof(sock_path), f->dir, "p1", "dead", "sock");
  pid_t child = fork();
  assert_true(child >= 0);
  if (child == 0) {
    rundir_lock_t lk;
    char held[64], err[256];
    int rc = rundir_acquire(f->dir, "p1", "dead", "{\"dead\":1}", &lk, held,
                            sizeof(held), err, sizeof(err));
    FILE *sock = fopen(sock_path, "w");
    if (sock != NULL)
      fclose(sock);
    _exit(rc == 0 ? 0 : 1);
  }
  int st;
  assert_int_equal(waitpid(child, &st, 0), child);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  assert_true(exists(pid_path) && exists(sock_path));
  /* A live one next to it stays. */
  rundir_lock_t live;
  char held[RUNDIR_CONTENT_MAX], err[256];
  assert_int_equal(rundir_acquire(f->dir, "p1", "live", "{\"live\":1}", &live,
                                  held, sizeof(held), err, sizeof(err)),
                   0);
  rundir_entry_t *es;
  size_t n, stale;
  assert_int_equal(rundir_scan(f->dir, &es, &n, &stale, err, sizeof(err)), 0);
  assert_int_equal(n, 1);
  assert_int_equal(stale, 1);
  assert_string_equal(es[0].content, "{\"live\":1}");
  free(es);
  assert_false(exists(pid_path));
  assert_false(exists(sock_path));
  /* And a new start over a stale file (and socket) just takes it. */
  child = fork();
  if (child == 0) {
    rundir_lock_t lk;
    char h[64], e[256];
    FILE *sock = fopen(sock_path, "w");
    if (sock != NULL)
      fclose(sock);
    _exit(rundir_acquire(f->dir, "p1", "dead", "{}", &lk, h, sizeof(h), e,
                         sizeof(e)) == 0
              ? 0
              : 1);
  }
  assert_int_equal(waitpid(child, &st, 0), child);
  rundir_lock_t again;
  assert_int_equal(rundir_acquire(f->dir, "p1", "dead", "{\"new\":1}", &again,
                                  held, sizeof(held), err, sizeof(err)),
                   0);
  assert_false(exists(sock_path)); /* the dead one's socket is gone */
  rundir_release(&again);
  rundir_release(&live);
}

/* Processes starting at once: exactly one wins each round. */
static void test_rundir_race(void **state) {
  rundir_fixture_t *f = *state;
  enum { RACERS = 6, ROUNDS = 10 };
  for (int round = 0; round < ROUNDS; round++) {
    /* go: closed to start them all; told: each says W (won) or L; done:
     * closed once all have told, so the winner holds the lock until every
     * racer has tried. */
    int go[2], told[2], done[2];
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(told), 0);
    assert_int_equal(pipe(done), 0);
    pid_t kids[RACERS];
    for (int i = 0; i < RACERS; i++) {
      kids[i] = fork();
      assert_true(kids[i] >= 0);
      if (kids[i] == 0) {
        close(go[1]);
        close(told[0]);
        close(done[1]);
        char c;
        if (read(go[0], &c, 1) < 0)
          _exit(9);
        rundir_lock_t lk;
        char held[RUNDIR_CONTENT_MAX], err[256];
        int rc = rundir_acquire(f->dir, "p1", "race", "{\"r\":1}", &lk, held,
                                sizeof(held), err, sizeof(err));
        c = rc == 0 ? 'W' : rc == RUNDIR_HELD ? 'L' : 'E';
        if (write(told[1], &c, 1) != 1 || read(done[0], &c, 1) < 0)
          _exit(9);
        rundir_release(&lk);
        _exit(0);
      }
    }
    close(go[0]);
    close(told[1]);
    close(done[0]);
    close(go[1]);
    int winners = 0;
    for (int i = 0; i < RACERS; i++) {
      char c = 0;
      assert_int_equal(read(told[0], &c, 1), 1);
      assert_true(c == 'W' || c == 'L');
      winners += c == 'W';
    }
    close(done[1]);
    close(told[0]);
    for (int i = 0; i < RACERS; i++) {
      int st;
      assert_int_equal(waitpid(kids[i], &st, 0), kids[i]);
      assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    assert_int_equal(winners, 1);
  }
}

/* ---- upfile --------------------------------------------------------- */

static int parse(const char *text, upfile_t *f, char *err, size_t len) {
  return upfile_parse(text, strlen(text), "/etc/wsmux", f, err, len);
}

static void test_upfile_ok(void **state) {
  upfile_t f;
  char err[256] = "";
  assert_int_equal(
      parse("{\"edge\": \"wss://e.example:8443\", \"ca\": \"ca.pem\",\n"
            " \"user\": \"deploy\", \"services\": [\n"
            "  {\"projectId\": \"p1\", \"serviceId\": \"web\"},\n"
            "  {\"projectId\": \"p1\", \"serviceId\": \"api\", \"user\": "
            "\"root\", \"address\": \"127.0.0.1\", \"port\": 0}]}\n",
            &f, err, sizeof(err)),
      0);
  assert_string_equal(f.edge, "wss://e.example:8443");
  assert_string_equal(f.ca, "/etc/wsmux/ca.pem"); /* relative to the file */
  assert_int_equal(f.n, 2);
  assert_string_equal(f.services[0].user, "deploy"); /* the file's user */
  assert_null(f.services[0].address);
  assert_int_equal(f.services[0].port, -1); /* derived */
  assert_string_equal(f.services[1].user, "root");
  assert_string_equal(f.services[1].address, "127.0.0.1");
  assert_int_equal(f.services[1].port, 0);
  assert_ptr_equal(upfile_find(&f, "p1", "api"), &f.services[1]);
  assert_null(upfile_find(&f, "p1", "nope"));
  assert_false(upfile_service_equal(&f.services[0], &f.services[1]));
  assert_true(upfile_service_equal(&f.services[1], &f.services[1]));
  upfile_free(&f);
  /* Minimal: no edge, no ca, user root; an absolute ca stays. */
  assert_int_equal(parse("{\"ca\": \"/x/ca.pem\", \"services\": "
                         "[{\"projectId\": \"p\", \"serviceId\": \"s\"}]}",
                         &f, err, sizeof(err)),
                   0);
  assert_null(f.edge);
  assert_string_equal(f.ca, "/x/ca.pem");
  assert_string_equal(f.services[0].user, "root");
  upfile_free(&f);
}

static void test_upfile_errors(void **state) {
  static const struct {
    const char *text, *err;
  } cases[] = {
      {"{\"services\": []}", "services: empty: list at least one service"},
      {"{}", "services: missing"},
      {"{\"services\": {}}", "services: expected an array, got an object"},
      {"{\"services\": [1]}", "services[0]: expected an object, got 1"},
      {"{\"services\": [{\"serviceId\": \"s\"}]}",
       "services[0].projectId: missing"},
      {"{\"services\": [{\"projectId\": \"p\", \"serviceId\": \"a b\"}]}",
       "services[0].serviceId: \"a b\" is not 1-128 characters of "
       "[A-Za-z0-9._-]"},
      {"{\"services\": [{\"projectId\": \"p\", \"serviceId\": \"s\", "
       "\"port\": 70000}]}",
       "services[0].port: expected an integer 0..65535, got 70000"},
      {"{\"services\": [{\"projectId\": \"p\", \"serviceId\": \"s\", "
       "\"port\": 1.5}]}",
       "services[0].port: expected an integer 0..65535, got 1.5"},
      {"{\"services\": [{\"projectId\": \"p\", \"serviceId\": \"s\", "
       "\"address\": \"localhost\"}]}",
       "services[0].address: \"localhost\" is not an IPv4 address"},
      {"{\"services\": [{\"projectId\": \"p\", \"serviceId\": \"s\", "
       "\"prot\": 1}]}",
       "services[0]: unknown key \"prot\""},
      {"{\"services\": [{\"projectId\": \"p\", \"serviceId\": \"s\"}, "
       "{\"projectId\": \"p\", \"serviceId\": \"s\"}]}",
       "services[1]: p/s is already listed at services[0]"},
      {"{\"edge\": \"https://e\", \"services\": []}",
       "edge: \"https://e\" is not a ws:// or wss:// URL"},
      {"{\"token\": \"t\", \"services\": []}", "unknown key \"token\""},
      {"{\"user\": \"\", \"services\": []}",
       "user: expected a non-empty string, got \"\""},
      {"{\"services\": []} x", "invalid JSON at byte offset"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    upfile_t f;
    char err[256] = "";
    assert_int_equal(parse(cases[i].text, &f, err, sizeof(err)), -1);
    if (strncmp(err, cases[i].err, strlen(cases[i].err)) != 0)
      fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, cases[i].err);
    assert_int_equal(f.n, 0);
    assert_null(f.services);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sizes),
      cmocka_unit_test(test_rates),
      cmocka_unit_test(test_durations),
      cmocka_unit_test(test_line_text),
      cmocka_unit_test(test_fit),
      cmocka_unit_test(test_status_json),
      cmocka_unit_test(test_status_pidfile),
      cmocka_unit_test(test_upfile_ok),
      cmocka_unit_test(test_upfile_errors),
      cmocka_unit_test_setup_teardown(test_rundir_dir, setup_run, teardown_run),
      cmocka_unit_test_setup_teardown(test_rundir_one_holder, setup_run,
                                      teardown_run),
      cmocka_unit_test_setup_teardown(test_rundir_stale, setup_run,
                                      teardown_run),
      cmocka_unit_test_setup_teardown(test_rundir_race, setup_run,
                                      teardown_run),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
