/*
 * Unit tests of the CLI without an edge: repeatable options, the context
 * file and resolution, output formatting, request bodies and key files,
 * the argument checks of every admin command, and the installed
 * ssh_config entries (cli/sshconf.h). The only socket used is a connection
 * to 127.0.0.1:1 that is refused.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/api.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/context.h"
#include "cli/exitcode.h"
#include "cli/http_proxy_flags.h"
#include "cli/output.h"
#include "cli/sshconf.h"
#include "base/id.h"

/* ---- helpers -------------------------------------------------------- */

/* Per-test state: a private temporary directory used as XDG_CONFIG_HOME. */
typedef struct {
  char dir[64];
  char config[PATH_MAX];
} fixture_t;

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw) {
  return remove(path);
}

static int setup_dir(void **state) {
  fixture_t *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  snprintf(f->dir, sizeof(f->dir), "/tmp/wsmux-test-cli.XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->config, sizeof(f->config), "%s/xdg/wsmux/config.json", f->dir);
  char xdg[PATH_MAX];
  snprintf(xdg, sizeof(xdg), "%s/xdg", f->dir);
  setenv("XDG_CONFIG_HOME", xdg, 1);
  unsetenv("WSMUX_EDGE");
  unsetenv("WSMUX_TOKEN");
  unsetenv("WSMUX_CA");
  const char *proxy_vars[] = {
      "HTTPS_PROXY", "https_proxy", "HTTP_PROXY",
      "http_proxy",  "ALL_PROXY",   "all_proxy",
      "NO_PROXY",    "no_proxy",    "WSMUX_HTTP_PROXY_FILE"};
  for (size_t i = 0; i < sizeof(proxy_vars) / sizeof(proxy_vars[0]); i++)
    unsetenv(proxy_vars[i]);
  *state = f;
  return 0;
}

static int teardown_dir(void **state) {
  fixture_t *f = *state;
  nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  free(f);
  return 0;
}

static char *read_stream_all(FILE *fp) {
  fflush(fp);
  long n = ftell(fp);
  assert_true(n >= 0);
  char *s = malloc((size_t)n + 1);
  assert_non_null(s);
  rewind(fp);
  assert_int_equal(fread(s, 1, (size_t)n, fp), (size_t)n);
  s[n] = '\0';
  return s;
}

/* fd 2 sent to a temporary file, from stderr_begin() to stderr_end(). */
typedef struct {
  FILE *f;
  int saved;
} stderr_capture_t;

static stderr_capture_t stderr_begin(void) {
  stderr_capture_t c = {.f = tmpfile()};
  assert_non_null(c.f);
  fflush(stderr);
  c.saved = dup(2);
  dup2(fileno(c.f), 2);
  return c;
}

/* What was written to stderr since stderr_begin() (owned). */
static char *stderr_end(stderr_capture_t c) {
  fflush(stderr);
  dup2(c.saved, 2);
  close(c.saved);
  fseek(c.f, 0, SEEK_END);
  char *s = read_stream_all(c.f);
  fclose(c.f);
  return s;
}

static char *read_path(const char *path) {
  FILE *fp = fopen(path, "r");
  assert_non_null(fp);
  fseek(fp, 0, SEEK_END);
  char *s = read_stream_all(fp);
  fclose(fp);
  return s;
}

static void write_path(const char *path, const char *text, mode_t mode) {
  int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, mode);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  assert_int_equal(fchmod(fd, mode), 0);
  close(fd);
}

/* What a command did: exit code and what it printed (owned). */
typedef struct {
  int rc;
  char *out;
  char *err;
} run_t;

/* Run fn with the words of argv (NULL-terminated), capturing fds 1 and 2.
 * Standard input is /dev/null unless stdin_text is given. */
static run_t run_words(int (*fn)(int, char **), const char *stdin_text,
                       const char *const *argv) {
  char *words[32];
  int argc = 0;
  for (; argv[argc] != NULL; argc++) {
    assert_true(argc < 31);
    words[argc] = strdup(argv[argc]);
  }
  words[argc] = NULL;
  FILE *out = tmpfile(), *err = tmpfile(), *in = tmpfile();
  assert_true(out && err && in);
  if (stdin_text != NULL)
    fputs(stdin_text, in);
  fflush(in);
  rewind(in);
  fflush(stdout);
  fflush(stderr);
  int saved[3] = {dup(0), dup(1), dup(2)};
  dup2(fileno(in), 0);
  dup2(fileno(out), 1);
  dup2(fileno(err), 2);
  clearerr(stdin);
  run_t r = {.rc = fn(argc, words)};
  fflush(stdout);
  fflush(stderr);
  for (int i = 0; i < 3; i++) {
    dup2(saved[i], i);
    close(saved[i]);
  }
  clearerr(stdin);
  fseek(out, 0, SEEK_END);
  fseek(err, 0, SEEK_END);
  r.out = read_stream_all(out);
  r.err = read_stream_all(err);
  fclose(out);
  fclose(err);
  fclose(in);
  for (int i = 0; i < argc; i++)
    free(words[i]);
  return r;
}

#define RUN(fn, ...)                                                           \
  run_words(fn, NULL, (const char *const[]){__VA_ARGS__, NULL})
#define RUN_IN(fn, in, ...)                                                    \
  run_words(fn, in, (const char *const[]){__VA_ARGS__, NULL})

static void run_free(run_t *r) {
  free(r->out);
  free(r->err);
}

/* The command failed with rc and an error line mentioning needle. */
static void expect_error(run_t r, int rc, const char *needle) {
  if (r.rc != rc || strncmp(r.err, "wsmux: error: ", 14) != 0 ||
      strstr(r.err, needle) == NULL)
    fail_msg("want exit %d and an error with '%s'; got exit %d, stderr: %s", rc,
             needle, r.rc, r.err);
  assert_string_equal(r.out, "");
  run_free(&r);
}

/* --help printed usage on stdout and exited 0. */
static void expect_help(run_t r) {
  if (r.rc != 0 || strncmp(r.out, "usage: wsmux ", 13) != 0)
    fail_msg("want usage on stdout and exit 0; got exit %d, stdout: %s", r.rc,
             r.out);
  assert_string_equal(r.err, "");
  run_free(&r);
}

/* ---- args ----------------------------------------------------------- */

static void test_args_lists(void **state) {
  const char *name = NULL, *keys[3], *tags[2];
  int nkeys = 42, ntags = 42, flag = 0, nrest, dd;
  char *rest[4], err[128];
  const args_opt_t opts[] = {{"name", &name, NULL}, {"flag", NULL, &flag}, {0}};
  const args_list_t lists[] = {
      {"key", keys, 3, &nkeys}, {"tag", tags, 2, &ntags}, {0}};
  char *argv[] = {"--key",  "a",  "pos",   "--name", "n1", "--key=b", "--flag",
                  "--name", "n2", "--key", "c d",    "--", "--key"};
  assert_int_equal(args_parse_lists(13, argv, opts, lists, rest, 4, &nrest, &dd,
                                    err, sizeof(err)),
                   0);
  assert_int_equal(nkeys, 3);
  assert_string_equal(keys[0], "a");
  assert_string_equal(keys[1], "b");
  assert_string_equal(keys[2], "c d");
  assert_int_equal(ntags, 0);      /* reset although absent */
  assert_string_equal(name, "n2"); /* a plain option keeps the last */
  assert_int_equal(flag, 1);
  assert_int_equal(nrest, 2);
  assert_string_equal(rest[0], "pos");
  assert_string_equal(rest[1], "--key");
  assert_int_equal(dd, 1);
}

static void test_args_list_errors(void **state) {
  const char *tags[2];
  int ntags, nrest, dd;
  char *rest[2], err[128];
  const args_opt_t opts[] = {{0}};
  const args_list_t lists[] = {{"tag", tags, 2, &ntags}, {0}};
  char *three[] = {"--tag", "a", "--tag", "b", "--tag", "c"};
  assert_int_equal(args_parse_lists(6, three, opts, lists, rest, 2, &nrest, &dd,
                                    err, sizeof(err)),
                   -1);
  assert_string_equal(err, "option '--tag' given more than 2 times");
  char *novalue[] = {"--tag"};
  assert_int_equal(args_parse_lists(1, novalue, opts, lists, rest, 2, &nrest,
                                    &dd, err, sizeof(err)),
                   -1);
  assert_string_equal(err, "option '--tag' needs a value");
  char *unknown[] = {"--tags", "x"};
  assert_int_equal(args_parse_lists(2, unknown, opts, lists, rest, 2, &nrest,
                                    &dd, err, sizeof(err)),
                   -1);
  assert_string_equal(err, "unknown option '--tags'");
  /* args_parse (no lists) is unchanged. */
  assert_int_equal(
      args_parse(2, unknown, opts, rest, 2, &nrest, &dd, err, sizeof(err)), -1);
  const char *v = NULL;
  const args_opt_t one[] = {{"v", &v, NULL}, {0}};
  char *twice[] = {"--v", "1", "--v=2"};
  assert_int_equal(
      args_parse(3, twice, one, rest, 2, &nrest, &dd, err, sizeof(err)), 0);
  assert_string_equal(v, "2");
}

/* ---- context -------------------------------------------------------- */

static void test_context_path(void **state) {
  char buf[64];
  assert_int_equal(context_path_build("/x/cfg", "/home/u", buf, sizeof(buf)),
                   0);
  assert_string_equal(buf, "/x/cfg/wsmux/config.json");
  assert_int_equal(context_path_build("relative", "/home/u", buf, sizeof(buf)),
                   0);
  assert_string_equal(buf, "/home/u/.config/wsmux/config.json");
  assert_int_equal(context_path_build("", "/home/u", buf, sizeof(buf)), 0);
  assert_string_equal(buf, "/home/u/.config/wsmux/config.json");
  assert_int_equal(context_path_build(NULL, NULL, buf, sizeof(buf)), -1);
  assert_int_equal(context_path_build(NULL, "", buf, sizeof(buf)), -1);
  assert_int_equal(
      context_path_build("/a-very-long-directory-name/for/sure", NULL, buf, 32),
      -1);
}

static void test_context_validity(void **state) {
  assert_true(context_name_valid("default"));
  assert_true(context_name_valid("prod-eu.1_x"));
  assert_false(context_name_valid(""));
  assert_false(context_name_valid("a b"));
  assert_false(context_name_valid("a/b"));
  char long_name[66];
  memset(long_name, 'a', 65);
  long_name[65] = '\0';
  assert_false(context_name_valid(long_name));
  long_name[64] = '\0';
  assert_true(context_name_valid(long_name));

  assert_true(context_token_valid("abc-DEF_123.~"));
  assert_false(context_token_valid(""));
  assert_false(context_token_valid("a b"));
  assert_false(context_token_valid("a\r\nX-Evil: 1"));
  assert_false(context_token_valid("tab\there"));

  assert_true(context_edge_valid("wss://edge.example.com"));
  assert_true(context_edge_valid("wss://127.0.0.1:8443/prefix"));
  assert_true(context_edge_valid("ws://lb:80"));
  assert_false(context_edge_valid("https://edge.example.com"));
  assert_false(context_edge_valid("edge.example.com"));
  assert_false(context_edge_valid("wss://"));
  assert_false(context_edge_valid("wss:///path"));
  assert_false(context_edge_valid("wss://host\r\n"));
}

static void test_context_token_read(void **state) {
  char buf[16];
  FILE *f = tmpfile();
  fputs("tok-1\r\nsecond\n", f);
  rewind(f);
  assert_int_equal(context_token_read(f, buf, sizeof(buf)), 0);
  assert_string_equal(buf, "tok-1");
  fclose(f);

  f = tmpfile(); /* no final newline */
  fputs("tok-2", f);
  rewind(f);
  assert_int_equal(context_token_read(f, buf, sizeof(buf)), 0);
  assert_string_equal(buf, "tok-2");
  fclose(f);

  f = tmpfile(); /* empty line, empty input, too long */
  fputs("\n", f);
  rewind(f);
  assert_int_equal(context_token_read(f, buf, sizeof(buf)), -1);
  assert_int_equal(context_token_read(f, buf, sizeof(buf)), -1);
  fclose(f);
  f = tmpfile();
  fputs("0123456789abcdefXYZ\n", f);
  rewind(f);
  assert_int_equal(context_token_read(f, buf, sizeof(buf)), -1);
  fclose(f);
}

static cli_context_t ctx_of(char *edge, char *token, char *ca, int insecure) {
  return (cli_context_t){
      .edge = edge, .token = token, .ca = ca, .insecure = insecure};
}

static void test_context_file_roundtrip(void **state) {
  fixture_t *fx = *state;
  char err[PATH_MAX * 3];
  cJSON *root;
  /* A missing file is an empty config. */
  assert_int_equal(context_file_load(fx->config, &root, err, sizeof(err)), 0);
  assert_non_null(root);
  cli_context_t cur;
  assert_int_equal(context_store_current(root, &cur), 1);

  cli_context_t a = ctx_of("wss://a.example", "tok-a", "/etc/ca.pem", 0);
  cli_context_t b = ctx_of("ws://b.example:80", "tok-b", NULL, 1);
  assert_int_equal(context_store_put(root, "a", &a), 0);
  assert_int_equal(context_store_put(root, "b", &b), 0);
  assert_int_equal(context_file_save(fx->config, root, err, sizeof(err)), 0);
  cJSON_Delete(root);

  struct stat st;
  assert_int_equal(stat(fx->config, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  char dir[PATH_MAX];
  snprintf(dir, sizeof(dir), "%s/xdg/wsmux", fx->dir);
  assert_int_equal(stat(dir, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0700);

  assert_int_equal(context_file_load(fx->config, &root, err, sizeof(err)), 0);
  assert_int_equal(context_store_current(root, &cur), 0);
  assert_string_equal(cur.name, "b");
  assert_string_equal(cur.edge, "ws://b.example:80");
  assert_string_equal(cur.token, "tok-b");
  assert_null(cur.ca);
  assert_int_equal(cur.insecure, 1);
  cli_context_free(&cur);

  /* Replacing "a" keeps "b" and makes "a" current. */
  cli_context_t a2 = ctx_of("wss://a2.example", "tok-a2", NULL, 0);
  assert_int_equal(context_store_put(root, "a", &a2), 0);
  assert_int_equal(context_file_save(fx->config, root, err, sizeof(err)), 0);
  cJSON_Delete(root);
  char *text = read_path(fx->config);
  cJSON *j = cJSON_Parse(text);
  free(text);
  assert_string_equal(cJSON_GetObjectItem(j, "current")->valuestring, "a");
  cJSON *ctxs = cJSON_GetObjectItem(j, "contexts");
  assert_int_equal(cJSON_GetArraySize(ctxs), 2);
  cJSON *ja = cJSON_GetObjectItem(ctxs, "a");
  assert_string_equal(cJSON_GetObjectItem(ja, "edge")->valuestring,
                      "wss://a2.example");
  assert_null(cJSON_GetObjectItem(ja, "ca"));
  assert_true(cJSON_IsFalse(cJSON_GetObjectItem(ja, "insecure")));
  assert_string_equal(
      cJSON_GetObjectItem(cJSON_GetObjectItem(ctxs, "b"), "token")->valuestring,
      "tok-b");
  cJSON_Delete(j);

  /* No temporary file is left behind: the directory holds config.json
   * alone. */
  DIR *d = opendir(dir);
  assert_non_null(d);
  int entries = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
      entries++;
  closedir(d);
  assert_int_equal(entries, 1);
}

static void test_context_file_private(void **state) {
  fixture_t *fx = *state;
  char err[PATH_MAX * 3], dir[PATH_MAX];
  cJSON *root = cJSON_CreateObject();
  /* A config directory that others can read is made private. */
  snprintf(dir, sizeof(dir), "%s/xdg", fx->dir);
  assert_int_equal(mkdir(dir, 0755), 0);
  snprintf(dir, sizeof(dir), "%s/xdg/wsmux", fx->dir);
  assert_int_equal(mkdir(dir, 0755), 0);
  assert_int_equal(chmod(dir, 0755), 0);
  cli_context_t a = ctx_of("wss://a.example", "tok-a", NULL, 0);
  assert_int_equal(context_store_put(root, "a", &a), 0);
  assert_int_equal(context_file_save(fx->config, root, err, sizeof(err)), 0);
  cJSON_Delete(root);
  struct stat st;
  assert_int_equal(stat(dir, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0700);

  /* A config file others can read is refused, with the fix. */
  assert_int_equal(chmod(fx->config, 0644), 0);
  assert_int_equal(context_file_load(fx->config, &root, err, sizeof(err)), -1);
  assert_null(root);
  assert_non_null(strstr(err, "mode 644"));
  assert_non_null(strstr(err, "chmod 600"));
  assert_non_null(strstr(err, fx->config));
  assert_int_equal(chmod(fx->config, 0640), 0);
  assert_int_equal(context_file_load(fx->config, &root, err, sizeof(err)), -1);
  assert_int_equal(chmod(fx->config, 0600), 0);
  assert_int_equal(context_file_load(fx->config, &root, err, sizeof(err)), 0);
  cJSON_Delete(root);
}

static void test_context_file_invalid(void **state) {
  fixture_t *fx = *state;
  char err[PATH_MAX * 3];
  cJSON *root = cJSON_CreateObject();
  assert_int_equal(context_file_save(fx->config, root, err, sizeof(err)), 0);
  cJSON_Delete(root);
  static const char *bad[] = {
      "{\"current\": ",
      "[]",
      "{\"current\": 3}",
      "{\"contexts\": []}",
      "{\"contexts\": {\"a\": {\"token\": \"t\"}}}",
      "{\"contexts\": {\"a\": {\"edge\": \"https://x\", \"token\": \"t\"}}}",
      "{\"contexts\": {\"a\": {\"edge\": \"wss://x\", \"token\": \"a b\"}}}",
      "{\"contexts\": {\"a\": {\"edge\": \"wss://x\", \"token\": \"t\", "
      "\"ca\": 1}}}",
      "{\"contexts\": {\"a\": {\"edge\": \"wss://x\", \"token\": \"t\", "
      "\"insecure\": \"yes\"}}}",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    write_path(fx->config, bad[i], 0600);
    root = NULL;
    if (context_file_load(fx->config, &root, err, sizeof(err)) != -1)
      fail_msg("accepted %s", bad[i]);
    assert_null(root);
    assert_non_null(strstr(err, fx->config));
  }
  /* current naming a missing context: no current context. */
  write_path(fx->config, "{\"current\": \"gone\", \"contexts\": {}}", 0600);
  assert_int_equal(context_file_load(fx->config, &root, err, sizeof(err)), 0);
  cli_context_t cur;
  assert_int_equal(context_store_current(root, &cur), 1);
  cJSON_Delete(root);
}

/* Store one context "stored" for wss://stored.example. */
static void store_context(const fixture_t *fx, const char *ca, int insecure) {
  char err[PATH_MAX * 3];
  cJSON *root = cJSON_CreateObject();
  cli_context_t c =
      ctx_of("wss://stored.example", "stored-token", (char *)ca, insecure);
  assert_int_equal(context_store_put(root, "stored", &c), 0);
  assert_int_equal(context_file_save(fx->config, root, err, sizeof(err)), 0);
  cJSON_Delete(root);
}

/* cli_context_resolve with its stderr captured in *err (owned). */
static int resolve(const char *edge, const char *token, const char *ca,
                   int insecure, cli_context_t *out, char **err) {
  stderr_capture_t c = stderr_begin();
  int rc = cli_context_resolve(edge, token, ca, insecure, out);
  *err = stderr_end(c);
  return rc;
}

static void test_resolve_nothing(void **state) {
  cli_context_t c;
  char *err;
  assert_int_equal(resolve(NULL, NULL, NULL, 0, &c, &err), EXIT_AUTH);
  assert_string_equal(err, "wsmux: error: " CLI_NOT_LOGGED_IN "\n");
  free(err);
  assert_int_equal(resolve("wss://e", NULL, NULL, 0, &c, &err), EXIT_AUTH);
  free(err);
  assert_int_equal(resolve(NULL, "tok", NULL, 0, &c, &err), EXIT_USAGE);
  assert_non_null(strstr(err, "not logged in"));
  free(err);
  assert_int_equal(resolve("wss://e", "bad token", NULL, 0, &c, &err),
                   EXIT_AUTH);
  free(err);
}

static void test_resolve_flags_env(void **state) {
  fixture_t *fx = *state;
  cli_context_t c;
  char *err;
  store_context(fx, "/stored/ca.pem", 1);
  setenv("WSMUX_EDGE", "wss://env.example", 1);
  setenv("WSMUX_TOKEN", "env-token", 1);
  /* Flags first. */
  assert_int_equal(
      resolve("wss://flag.example", "flag-token", "ca.pem", 0, &c, &err), 0);
  assert_string_equal(c.edge, "wss://flag.example");
  assert_string_equal(c.token, "flag-token");
  assert_string_equal(c.ca, "ca.pem");
  assert_int_equal(c.insecure, 0);
  assert_null(c.name);
  cli_context_free(&c);
  free(err);
  /* Then the environment; the stored context is for another edge. */
  assert_int_equal(resolve(NULL, NULL, NULL, 0, &c, &err), 0);
  assert_string_equal(c.edge, "wss://env.example");
  assert_string_equal(c.token, "env-token");
  assert_null(c.ca);
  assert_int_equal(c.insecure, 0);
  cli_context_free(&c);
  free(err);
  /* WSMUX_CA after --ca. */
  setenv("WSMUX_CA", "/env/ca.pem", 1);
  assert_int_equal(resolve(NULL, NULL, NULL, 0, &c, &err), 0);
  assert_string_equal(c.ca, "/env/ca.pem");
  cli_context_free(&c);
  free(err);
  assert_int_equal(resolve(NULL, NULL, "flag.pem", 0, &c, &err), 0);
  assert_string_equal(c.ca, "flag.pem");
  cli_context_free(&c);
  free(err);
  unsetenv("WSMUX_CA");
}

static void test_resolve_stored(void **state) {
  fixture_t *fx = *state;
  cli_context_t c;
  char *err;
  store_context(fx, "/stored/ca.pem", 1);
  assert_int_equal(resolve(NULL, NULL, NULL, 0, &c, &err), 0);
  assert_string_equal(c.name, "stored");
  assert_string_equal(c.edge, "wss://stored.example");
  assert_string_equal(c.token, "stored-token");
  assert_string_equal(c.ca, "/stored/ca.pem");
  assert_int_equal(c.insecure, 1);
  cli_context_free(&c);
  free(err);
  /* A token from the environment with the stored edge. */
  setenv("WSMUX_TOKEN", "env-token", 1);
  assert_int_equal(resolve(NULL, NULL, "other-ca.pem", 0, &c, &err), 0);
  assert_string_equal(c.edge, "wss://stored.example");
  assert_string_equal(c.token, "env-token");
  assert_string_equal(c.ca, "other-ca.pem");
  cli_context_free(&c);
  free(err);
  unsetenv("WSMUX_TOKEN");
  /* The same edge by flag still uses the stored token. */
  assert_int_equal(resolve("wss://stored.example", NULL, NULL, 0, &c, &err), 0);
  assert_string_equal(c.token, "stored-token");
  cli_context_free(&c);
  free(err);
  /* Never the stored token for another edge. */
  assert_int_equal(resolve("wss://evil.example", NULL, NULL, 0, &c, &err),
                   EXIT_AUTH);
  assert_non_null(strstr(err, "not logged in to wss://evil.example"));
  assert_null(strstr(err, "stored-token"));
  assert_null(c.token);
  free(err);
}

/* cli_http_proxy_choose() for wss://edge.example with its stderr in *err
 * (owned). */
static int choose_proxy(const char *flag, const char *file,
                        http_proxy_choice_t *out, char **err) {
  stderr_capture_t c = stderr_begin();
  int rc = cli_http_proxy_choose(flag, file, "wss://edge.example", out);
  *err = stderr_end(c);
  return rc;
}

static void test_http_proxy_flags(void **state) {
  fixture_t *fx = *state;
  http_proxy_choice_t c;
  char *err, file[PATH_MAX], line[512];
  /* Nothing set: direct, silently. */
  assert_int_equal(choose_proxy(NULL, NULL, &c, &err), EXIT_OK);
  assert_false(c.use);
  assert_string_equal(err, "");
  free(err);
  /* The environment; NO_PROXY. */
  setenv("HTTPS_PROXY", "http://env.proxy:3128", 1);
  assert_int_equal(choose_proxy(NULL, NULL, &c, &err), EXIT_OK);
  assert_true(c.use);
  assert_string_equal(c.proxy.host, "env.proxy");
  assert_string_equal(c.origin, "HTTPS_PROXY");
  free(err);
  setenv("NO_PROXY", "example", 1);
  assert_int_equal(choose_proxy(NULL, NULL, &c, &err), EXIT_OK);
  assert_false(c.use);
  http_proxy_describe(&c, line, sizeof(line));
  assert_string_equal(line, "direct (NO_PROXY matches example)");
  free(err);
  unsetenv("NO_PROXY");
  /* A password in the flag works, with a warning; never printed. */
  assert_int_equal(choose_proxy("http://u:s3cret@flag:8", NULL, &c, &err),
                   EXIT_OK);
  assert_true(c.use);
  assert_string_equal(c.proxy.host, "flag");
  assert_non_null(strstr(err, "wsmux: warning: --http-proxy holds a password"));
  assert_null(strstr(err, "s3cret"));
  free(err);
  assert_int_equal(choose_proxy("", NULL, &c, &err), EXIT_OK);
  assert_false(c.use);
  free(err);
  /* Not both. */
  assert_int_equal(choose_proxy("http://a:1", "/x", &c, &err), EXIT_USAGE);
  assert_non_null(strstr(err, "exclude each other"));
  free(err);
  /* A file: its first line, blanks trimmed; private when it has a
   * password. */
  snprintf(file, sizeof(file), "%s/proxy.url", fx->dir);
  write_path(file, "  http://u:s3cret@file.proxy:9 \nignored\n", 0600);
  assert_int_equal(choose_proxy(NULL, file, &c, &err), EXIT_OK);
  assert_true(c.use);
  assert_string_equal(c.proxy.host, "file.proxy");
  assert_string_equal(c.proxy.pass, "s3cret");
  assert_non_null(strstr(c.origin, "--http-proxy-file "));
  assert_string_equal(err, "");
  free(err);
  write_path(file, "http://u:s3cret@file.proxy:9\n", 0644);
  assert_int_equal(choose_proxy(NULL, file, &c, &err), EXIT_USAGE);
  assert_non_null(strstr(err, "group or others can read it (mode 644)"));
  assert_null(strstr(err, "s3cret"));
  assert_false(c.use);
  free(err);
  write_path(file, "http://file.proxy:9\n", 0644);
  assert_int_equal(choose_proxy(NULL, file, &c, &err), EXIT_OK);
  assert_true(c.use);
  free(err);
  /* Named by WSMUX_HTTP_PROXY_FILE; an empty one means none. */
  write_path(file, "\n", 0600);
  setenv("WSMUX_HTTP_PROXY_FILE", file, 1);
  assert_int_equal(choose_proxy(NULL, NULL, &c, &err), EXIT_OK);
  assert_false(c.use);
  http_proxy_describe(&c, line, sizeof(line));
  assert_non_null(strstr(line, "direct (WSMUX_HTTP_PROXY_FILE "));
  free(err);
  unsetenv("WSMUX_HTTP_PROXY_FILE");
  snprintf(file, sizeof(file), "%s/missing", fx->dir);
  assert_int_equal(choose_proxy(NULL, file, &c, &err), EXIT_USAGE);
  assert_non_null(strstr(err, "cannot open the proxy file"));
  free(err);
  /* An unusable variable is named. */
  setenv("HTTPS_PROXY", "socks5://h:1080", 1);
  assert_int_equal(choose_proxy(NULL, NULL, &c, &err), EXIT_USAGE);
  assert_non_null(strstr(err, "wsmux: error: HTTPS_PROXY: SOCKS proxies"));
  free(err);
  unsetenv("HTTPS_PROXY");
}

static void test_resolve_unsafe_file(void **state) {
  fixture_t *fx = *state;
  cli_context_t c;
  char *err;
  store_context(fx, NULL, 0);
  assert_int_equal(chmod(fx->config, 0604), 0);
  assert_int_equal(resolve(NULL, NULL, NULL, 0, &c, &err), EXIT_USAGE);
  assert_non_null(strstr(err, "chmod 600"));
  assert_null(strstr(err, "stored-token"));
  free(err);
  /* Not read at all when flags say everything. */
  assert_int_equal(resolve("wss://e", "t", NULL, 0, &c, &err), 0);
  cli_context_free(&c);
  free(err);
}

/* ---- output --------------------------------------------------------- */

/* What print() wrote, owned. */
static char *capture(int (*print)(const cJSON *, output_format_t, FILE *),
                     const char *json, output_format_t fmt, int want_rc) {
  cJSON *j = cJSON_Parse(json);
  assert_non_null(j);
  FILE *f = tmpfile();
  assert_int_equal(print(j, fmt, f), want_rc);
  char *s = read_stream_all(f);
  fclose(f);
  cJSON_Delete(j);
  return s;
}

static void test_output_format(void **state) {
  output_format_t f;
  assert_int_equal(output_format_parse(NULL, &f), 0);
  assert_int_equal(f, OUTPUT_TABLE);
  assert_int_equal(output_format_parse("json", &f), 0);
  assert_int_equal(f, OUTPUT_JSON);
  assert_int_equal(output_format_parse("table", &f), 0);
  assert_int_equal(f, OUTPUT_TABLE);
  assert_int_equal(output_format_parse("yaml", &f), -1);
}

static void test_output_table(void **state) {
  static const char *const heads[] = {"ID", "NAME", "NOTE"};
  static const char *const r1[] = {"p1", "Démo", "x"};
  static const char *const r2[] = {"project-long", NULL, "esc\x1b[31m\xc2\x9b"};
  output_table_t *t = output_table_new(3, heads);
  assert_non_null(t);
  assert_int_equal(output_table_add(t, r1), 0);
  assert_int_equal(output_table_add(t, r2), 0);
  FILE *f = tmpfile();
  output_table_print(t, f);
  char *s = read_stream_all(f);
  assert_string_equal(s, "ID             NAME   NOTE\n"
                         "p1             Démo   x\n"
                         "project-long   -      esc?[31m?\n");
  free(s);
  fclose(f);
  output_table_free(t);
  assert_null(output_table_new(0, heads));
}

static void test_output_printable(void **state) {
  char buf[8];
  output_printable(buf, sizeof(buf), "a\tb\nc\x7f");
  assert_string_equal(buf, "a?b?c?");
  output_printable(buf, sizeof(buf), "0123456789");
  assert_string_equal(buf, "0123456");
  output_printable(buf, sizeof(buf), "\xc3\xa9\xc2\x85!");
  assert_string_equal(buf, "\xc3\xa9?!");
  /* Bytes that are not UTF-8 (a lone CSI, an overlong, a surrogate) and an
   * escape sequence never reach the terminal. */
  output_printable(buf, sizeof(buf),
                   "\x9b"
                   "1m\xc0\xaf");
  assert_string_equal(buf, "?1m??");
  output_printable(buf, sizeof(buf), "\x1b[2J\xed\xa0\x80");
  assert_string_equal(buf, "?[2J???");
  /* Cut before a character that does not fit whole. */
  output_printable(buf, sizeof(buf), "abcde\xe2\x82\xac");
  assert_string_equal(buf, "abcde");
  output_printable(buf, sizeof(buf), "abcd\xe2\x82\xac");
  assert_string_equal(buf, "abcd\xe2\x82\xac");
}

static void test_output_json_terminal_safe(void **state) {
  /* The same values, written so that no control byte reaches the
   * terminal: DEL and C1 escaped as well as C0; a byte that is not UTF-8
   * (which cannot be said in JSON) becomes U+FFFD. */
  char *s = capture(output_identity_print,
                    "{\"name\":\"a\\u001b[2J\\u007f\xc2\x9b\xc3\xa9\xff\","
                    "\"k\\n\":1}",
                    OUTPUT_JSON, 0);
  assert_string_equal(
      s, "{\n"
         "  \"name\": \"a\\u001b[2J\\u007f\\u009b\xc3\xa9\\ufffd\",\n"
         "  \"k\\u000a\": 1\n"
         "}\n");
  cJSON *back = cJSON_Parse(s);
  assert_non_null(back);
  cJSON_Delete(back);
  free(s);
}

static void test_output_json(void **state) {
  char *s = capture(output_projects_print,
                    "{\"projects\":[{\"id\":\"p1\",\"name\":\"D\\\"q\"}],"
                    "\"e\":{},\"a\":[],\"n\":1.5,\"t\":true,\"z\":null}",
                    OUTPUT_JSON, 0);
  assert_string_equal(s, "{\n"
                         "  \"projects\": [\n"
                         "    {\n"
                         "      \"id\": \"p1\",\n"
                         "      \"name\": \"D\\\"q\"\n"
                         "    }\n"
                         "  ],\n"
                         "  \"e\": {},\n"
                         "  \"a\": [],\n"
                         "  \"n\": 1.5,\n"
                         "  \"t\": true,\n"
                         "  \"z\": null\n"
                         "}\n");
  free(s);
}

static void test_output_projects_services(void **state) {
  char *s = capture(output_projects_print,
                    "{\"projects\":[{\"id\":\"p1\",\"name\":\"Demo\"},"
                    "{\"id\":\"second\"}]}",
                    OUTPUT_TABLE, 0);
  assert_string_equal(s, "ID       NAME\n"
                         "p1       Demo\n"
                         "second   -\n");
  free(s);
  s = capture(output_services_print,
              "{\"services\":[{\"id\":\"ssh\",\"projectId\":\"p1\","
              "\"name\":\"SSH box\",\"kind\":\"service\",\"tags\":[\"t1\","
              "\"t2\"],\"sshEnabled\":true},{\"id\":\"job1\",\"kind\":\"job\","
              "\"tags\":[],\"sshEnabled\":false}]}",
              OUTPUT_TABLE, 0);
  assert_string_equal(s, "ID     NAME      KIND      TAGS    SSH\n"
                         "ssh    SSH box   service   t1,t2   enabled\n"
                         "job1   -         job       -       disabled\n");
  free(s);
  s = capture(output_services_print, "{\"services\":[]}", OUTPUT_TABLE, 0);
  assert_string_equal(s, "ID   NAME   KIND   TAGS   SSH\n");
  free(s);
  /* Not the documented shape. */
  s = capture(output_services_print, "{\"projects\":[]}", OUTPUT_TABLE, -1);
  assert_string_equal(s, "");
  free(s);
  s = capture(output_projects_print, "[1]", OUTPUT_TABLE, -1);
  free(s);
}

#define IDENTITY                                                               \
  "{\"id\":\"idt-1\",\"name\":\"alice\",\"description\":\"Alice's laptop\","   \
  "\"keys\":[\"ssh-ed25519 AAAA a@l\",\"ssh-rsa BBBB\"],\"projects\":[],"      \
  "\"tags\":[\"prod\",\"eu\"],\"matchAllTags\":true,"                          \
  "\"createdAt\":\"2026-11-25T12:00:00Z\","                                    \
  "\"updatedAt\":\"2026-11-25T12:30:00Z\"}"

static void test_output_identities(void **state) {
  char *s = capture(output_identity_print, IDENTITY, OUTPUT_TABLE, 0);
  assert_string_equal(s, "ID:             idt-1\n"
                         "Name:           alice\n"
                         "Description:    Alice's laptop\n"
                         "Keys:           ssh-ed25519 AAAA a@l\n"
                         "                ssh-rsa BBBB\n"
                         "Projects:       (all)\n"
                         "Tags:           prod, eu\n"
                         "Match tags:     all\n"
                         "Created:        2026-11-25T12:00:00Z\n"
                         "Updated:        2026-11-25T12:30:00Z\n");
  free(s);
  s = capture(output_identities_print,
              "{\"identities\":[" IDENTITY ",{\"id\":\"idt-2\",\"name\":\"b\","
              "\"keys\":[\"k\"],\"projects\":[\"p1\",\"p2\"],\"tags\":[]}]}",
              OUTPUT_TABLE, 0);
  assert_string_equal(
      s, "ID      NAME    KEYS   PROJECTS   TAGS      MATCH   DESCRIPTION\n"
         "idt-1   alice   2      (all)      prod,eu   all     Alice's laptop\n"
         "idt-2   b       1      p1,p2      (any)     any     -\n");
  free(s);
  s = capture(output_identity_print, "{\"name\":\"no id\"}", OUTPUT_TABLE, -1);
  free(s);
  s = capture(output_identity_print, "{\"id\":\"x\"}", OUTPUT_JSON, 0);
  assert_string_equal(s, "{\n  \"id\": \"x\"\n}\n");
  free(s);
}

/* ---- api ------------------------------------------------------------ */

static void test_api_status(void **state) {
  assert_int_equal(api_status_exit_code(400), EXIT_INVALID);
  assert_int_equal(api_status_exit_code(401), EXIT_AUTH);
  assert_int_equal(api_status_exit_code(403), EXIT_REFUSED);
  assert_int_equal(api_status_exit_code(404), EXIT_NOT_FOUND);
  assert_int_equal(api_status_exit_code(409), EXIT_REFUSED);
  assert_int_equal(api_status_exit_code(413), EXIT_INVALID);
  assert_int_equal(api_status_exit_code(405), EXIT_USAGE);
  assert_int_equal(api_status_exit_code(500), EXIT_NETWORK);
  assert_int_equal(api_status_exit_code(502), EXIT_NETWORK);
  assert_int_equal(EXIT_INVALID, 6);

  char msg[64];
  api_error_message(409, "{\"error\":\"name already used\"}", msg, sizeof(msg));
  assert_string_equal(msg, "name already used");
  api_error_message(400, "{\"error\":\"bad\\u001b[2Jthing\"}", msg,
                    sizeof(msg));
  assert_string_equal(msg, "bad?[2Jthing");
  api_error_message(401, "<html>nope</html>", msg, sizeof(msg));
  assert_string_equal(msg, "invalid or missing API token");
  api_error_message(502, NULL, msg, sizeof(msg));
  assert_string_equal(msg, "the edge failed");
  api_error_message(404, "{\"error\":\"\"}", msg, sizeof(msg));
  assert_string_equal(msg, "not found");
}

static void test_api_ids(void **state) {
  assert_true(id_valid("p1"));
  assert_true(id_valid("idt-3f9c.A_b"));
  assert_false(id_valid(""));
  assert_false(id_valid("../x"));
  assert_false(id_valid("a b"));
  assert_false(id_valid("a?b"));
  assert_false(id_valid("a%2f"));
  char id[130];
  memset(id, 'x', 129);
  id[129] = '\0';
  assert_false(id_valid(id));
  id[128] = '\0';
  assert_true(id_valid(id));
}

static void test_api_keys_text(void **state) {
  char err[256];
  cJSON *keys = cJSON_CreateArray();
  assert_int_equal(api_keys_add_text(keys,
                                     "# my keys\n"
                                     "\n"
                                     "ssh-ed25519 AAAA one@host\r\n"
                                     "   \t\n"
                                     "  ssh-rsa BBBB two  \n"
                                     "  # indented comment\n"
                                     "ecdsa-sha2-nistp256 CCCC",
                                     "f", err, sizeof(err)),
                   3);
  char *s = cJSON_PrintUnformatted(keys);
  assert_string_equal(s, "[\"ssh-ed25519 AAAA one@host\",\"ssh-rsa BBBB "
                         "two\",\"ecdsa-sha2-nistp256 CCCC\"]");
  free(s);
  assert_int_equal(api_keys_add_text(keys, "# only\n\n", "f", err, sizeof(err)),
                   0);
  assert_int_equal(cJSON_GetArraySize(keys), 3);
  assert_int_equal(api_keys_add_text(
                       keys,
                       "ssh-ed25519 DDDD\n-----BEGIN OPENSSH PRIVATE KEY-----\n"
                       "b3BlbnNzaC1rZXktdjEAAAAA\n",
                       "id_ed25519", err, sizeof(err)),
                   -1);
  assert_non_null(strstr(err, "id_ed25519 (line 2) is a private key"));
  assert_null(strstr(err, "b3Blbn"));
  cJSON_Delete(keys);
}

static void test_api_keys_file(void **state) {
  fixture_t *fx = *state;
  char err[PATH_MAX + 256], path[PATH_MAX];
  cJSON *keys = cJSON_CreateArray();
  snprintf(path, sizeof(path), "%s/keys.pub", fx->dir);
  write_path(path, "ssh-ed25519 AAAA a\nssh-ed25519 BBBB b\n", 0644);
  assert_int_equal(api_keys_add_file(keys, path, err, sizeof(err)), 2);
  write_path(path, "# nothing\n\n", 0644);
  assert_int_equal(api_keys_add_file(keys, path, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "holds no public key"));
  write_path(path, "", 0644);
  assert_int_equal(api_keys_add_file(keys, path, err, sizeof(err)), -1);
  FILE *f = fopen(path, "w");
  fwrite("ssh-ed25519 A\0B\n", 1, 16, f);
  fclose(f);
  assert_int_equal(api_keys_add_file(keys, path, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "not a text file"));
  snprintf(path, sizeof(path), "%s/missing.pub", fx->dir);
  assert_int_equal(api_keys_add_file(keys, path, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "cannot open"));
  assert_int_equal(cJSON_GetArraySize(keys), 2);
  cJSON_Delete(keys);
}

static void test_api_identity_body(void **state) {
  char err[512];
  cJSON *keys = cJSON_CreateArray();
  cJSON_AddItemToArray(keys, cJSON_CreateString("ssh-ed25519 AAAA"));
  const char *projects[] = {"p1", "p2"}, *tags[] = {"prod"};
  api_identity_fields_t f = {.name = "alice",
                             .description = "d",
                             .keys = keys,
                             .projects = projects,
                             .nprojects = 2,
                             .tags = tags,
                             .ntags = 1,
                             .match_all = 1};
  assert_int_equal(api_identity_check(&f, 1, err, sizeof(err)), 0);
  cJSON *body = api_identity_body(&f);
  char *s = cJSON_PrintUnformatted(body);
  assert_string_equal(s, "{\"name\":\"alice\",\"description\":\"d\",\"keys\":"
                         "[\"ssh-ed25519 AAAA\"],\"projects\":[\"p1\",\"p2\"],"
                         "\"tags\":[\"prod\"],\"matchAllTags\":true}");
  free(s);
  cJSON_Delete(body);

  /* An update sends only what is given; clearing sends empty lists. */
  api_identity_fields_t u = {
      .clear_projects = 1, .clear_tags = 1, .no_match_all = 1};
  assert_int_equal(api_identity_check(&u, 0, err, sizeof(err)), 0);
  body = api_identity_body(&u);
  s = cJSON_PrintUnformatted(body);
  assert_string_equal(s,
                      "{\"projects\":[],\"tags\":[],\"matchAllTags\":false}");
  free(s);
  cJSON_Delete(body);
  cJSON_Delete(keys);
}

static void test_api_identity_check(void **state) {
  char err[512];
  cJSON *keys = cJSON_CreateArray();
  const char *tags[] = {"t"};
  api_identity_fields_t f = {.name = "n"};
  assert_int_equal(api_identity_check(&f, 1, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "at least one key"));
  f.keys = keys; /* empty */
  assert_int_equal(api_identity_check(&f, 1, err, sizeof(err)), -1);
  cJSON_AddItemToArray(keys, cJSON_CreateString("k"));
  f.name = NULL;
  assert_int_equal(api_identity_check(&f, 1, err, sizeof(err)), -1);
  assert_string_equal(err, "--name is required");
  assert_int_equal(api_identity_check(&f, 0, err, sizeof(err)), 0);
  api_identity_fields_t none = {0};
  assert_int_equal(api_identity_check(&none, 0, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "nothing to update"));
  api_identity_fields_t c1 = {.tags = tags, .ntags = 1, .clear_tags = 1};
  assert_int_equal(api_identity_check(&c1, 0, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "--clear-tags and --tag"));
  api_identity_fields_t c2 = {
      .projects = tags, .nprojects = 1, .clear_projects = 1};
  assert_int_equal(api_identity_check(&c2, 0, err, sizeof(err)), -1);
  api_identity_fields_t c3 = {.match_all = 1, .no_match_all = 1};
  assert_int_equal(api_identity_check(&c3, 0, err, sizeof(err)), -1);
  cJSON_Delete(keys);
}

/* ---- commands: arguments -------------------------------------------- */

static void test_cmd_help(void **state) {
  expect_help(RUN(cmd_login, "--help"));
  expect_help(RUN(cmd_project, "--help"));
  expect_help(RUN(cmd_project, "list", "--help"));
  expect_help(RUN(cmd_project, "list", "-h"));
  expect_help(RUN(cmd_service, "--help"));
  expect_help(RUN(cmd_service, "list", "--help"));
  expect_help(RUN(cmd_service, "ssh", "--help"));
  expect_help(RUN(cmd_service, "ssh", "enable", "--help"));
  expect_help(RUN(cmd_service, "ssh", "disable", "--help"));
  expect_help(RUN(cmd_identity, "--help"));
  static const char *const subs[] = {"create", "list", "get", "update",
                                     "delete"};
  for (int i = 0; i < 5; i++)
    expect_help(RUN(cmd_identity, subs[i], "--help"));
  /* --help wins over missing arguments. */
  expect_help(RUN(cmd_identity, "get", "--help"));
  run_t r = RUN(cmd_identity, "create", "--help");
  assert_non_null(strstr(r.out, "--key-file F"));
  assert_null(strstr(r.out, "--clear-tags"));
  run_free(&r);
  r = RUN(cmd_login, "--help");
  assert_non_null(strstr(r.out, "--token -"));
  run_free(&r);
}

static void test_cmd_usage_errors(void **state) {
  expect_error(RUN(cmd_project, "lst"), EXIT_USAGE, "unknown command 'lst'");
  expect_error(RUN(cmd_project, "list", "--bogus"), EXIT_USAGE,
               "unknown option '--bogus'");
  expect_error(RUN(cmd_project, "list", "extra"), EXIT_USAGE,
               "unexpected argument extra");
  expect_error(RUN(cmd_project, "list", "--output", "yaml"), EXIT_USAGE,
               "unknown --output 'yaml'");
  expect_error(RUN(cmd_service, "list"), EXIT_USAGE, "--projectId is required");
  expect_error(RUN(cmd_service, "list", "--projectId", "../etc"), EXIT_USAGE,
               "--projectId must be 1-128 characters");
  expect_error(RUN(cmd_service, "ssh", "enable", "--projectId", "p1"),
               EXIT_USAGE, "--serviceId is required");
  expect_error(RUN(cmd_service, "ssh", "disable", "--serviceId", "s"),
               EXIT_USAGE, "--projectId is required");
  expect_error(RUN(cmd_service, "ssh", "enable", "--projectId", "p1",
                   "--serviceId", "a/b"),
               EXIT_USAGE, "--serviceId must be");
  expect_error(RUN(cmd_service, "ssh"), EXIT_USAGE, "missing command");
  expect_error(RUN(cmd_service, "ssh", "on"), EXIT_USAGE,
               "unknown command 'on'");
  expect_error(RUN(cmd_identity, "get"), EXIT_USAGE,
               "missing argument ID_OR_NAME");
  expect_error(RUN(cmd_identity, "get", "a", "b"), EXIT_USAGE,
               "unexpected argument b");
  expect_error(RUN(cmd_identity, "delete", "a b"), EXIT_USAGE,
               "ID_OR_NAME must be");
  expect_error(RUN(cmd_identity, "delete", "x", "--output", "json"), EXIT_USAGE,
               "unknown option '--output'");
  expect_error(RUN(cmd_identity, "create", "--key", "ssh-ed25519 AAAA"),
               EXIT_USAGE, "--name is required");
  expect_error(RUN(cmd_identity, "create", "--name", "n"), EXIT_USAGE,
               "at least one key is required");
  expect_error(RUN(cmd_identity, "create", "--name", "n", "--key", "  "),
               EXIT_USAGE, "holds no key");
  expect_error(RUN(cmd_identity, "create", "--name", "n", "--key-file",
                   "/nonexistent/key.pub"),
               EXIT_USAGE, "cannot open /nonexistent/key.pub");
  expect_error(
      RUN(cmd_identity, "create", "--name", "n", "--key", "k", "--clear-tags"),
      EXIT_USAGE, "unknown option '--clear-tags'");
  expect_error(RUN(cmd_identity, "update", "n"), EXIT_USAGE,
               "nothing to update");
  expect_error(RUN(cmd_identity, "update", "n", "--tag", "t", "--clear-tags"),
               EXIT_USAGE, "cannot be used together");
  expect_error(RUN(cmd_identity, "update", "n", "--match-all-tags",
                   "--no-match-all-tags"),
               EXIT_USAGE, "cannot be used together");
  expect_error(RUN(cmd_identity, "update", "--name", "x"), EXIT_USAGE,
               "missing argument ID_OR_NAME");
  expect_error(RUN_IN(cmd_identity, "-----BEGIN OPENSSH PRIVATE KEY-----\n",
                      "create", "--name", "n", "--key-file", "-"),
               EXIT_USAGE, "standard input (line 1) is a private key");
  expect_error(RUN(cmd_login, NULL), EXIT_USAGE, "--edge is required");
  expect_error(RUN(cmd_login, "--edge", "wss://e"), EXIT_USAGE,
               "--token is required");
  expect_error(RUN(cmd_login, "--edge", "https://e", "--token", "t"),
               EXIT_USAGE, "--edge must be wss://");
  expect_error(
      RUN(cmd_login, "--edge", "wss://e", "--token", "t", "--context", "a/b"),
      EXIT_USAGE, "--context must be");
  expect_error(RUN(cmd_login, "--edge", "wss://e", "--token", "t", "--ca",
                   "/nonexistent/ca.pem"),
               EXIT_USAGE, "--ca /nonexistent/ca.pem");
  expect_error(RUN(cmd_login, "--edge", "wss://e", "--token", "a b"),
               EXIT_USAGE, "API token");
  expect_error(RUN_IN(cmd_login, "", "--edge", "wss://e", "--token", "-"),
               EXIT_USAGE, "--token -: no token");
}

/* Valid arguments get as far as the network: nothing listens on port 1. */
static void test_cmd_network_errors(void **state) {
  fixture_t *fx = *state;
  setenv("WSMUX_EDGE", "ws://127.0.0.1:1", 1);
  setenv("WSMUX_TOKEN", "tok", 1);
  expect_error(RUN(cmd_project, "list"), EXIT_NETWORK, "127.0.0.1");
  expect_error(
      RUN(cmd_service, "list", "--projectId", "p1", "--output", "json"),
      EXIT_NETWORK, "127.0.0.1");
  expect_error(RUN(cmd_identity, "create", "--name", "n", "--key",
                   "ssh-ed25519 AAAA", "--tag", "a", "--tag", "b"),
               EXIT_NETWORK, "127.0.0.1");
  /* Through an HTTP proxy that is not there: the proxy is named. */
  expect_error(RUN(cmd_project, "list", "--http-proxy", "127.0.0.1:1"),
               EXIT_NETWORK,
               "cannot reach the HTTP proxy at http://127.0.0.1:1: connection "
               "refused");
  expect_error(RUN(cmd_project, "list", "--http-proxy", "https://p:1"),
               EXIT_USAGE, "--http-proxy: https:// proxies");
  unsetenv("WSMUX_EDGE");
  unsetenv("WSMUX_TOKEN");
  expect_error(RUN(cmd_project, "list"), EXIT_AUTH, "not logged in");
  /* A failed login stores nothing, and the token (from stdin) is not
   * printed. */
  run_t r = RUN_IN(cmd_login, "secret-token-123\n", "--edge",
                   "ws://127.0.0.1:1", "--token", "-");
  assert_int_equal(r.rc, EXIT_NETWORK);
  assert_null(strstr(r.err, "secret-token-123"));
  run_free(&r);
  assert_int_equal(access(fx->config, F_OK), -1);
}

/* ---- sshconf ------------------------------------------------------- */

static void test_sshconf_include(void **state) {
  const char *line = "Include ~/.ssh/wsmux.conf";
  /* Odd spacing, tabs, CRs, no final newline: every byte kept. */
  const char *orig = "# mine\r\nHost a\n\tUser  b \n\nHost *\n  Port 2";
  char *out, *back;
  size_t n, m;
  assert_int_equal(sshconf_include_add(orig, strlen(orig), line, &out, &n), 1);
  assert_int_equal(n, strlen(line) + 1 + strlen(orig));
  assert_memory_equal(out, "Include ~/.ssh/wsmux.conf\n# mine\r\n", 34);
  assert_memory_equal(out + strlen(line) + 1, orig, strlen(orig));
  /* Once only. */
  assert_int_equal(sshconf_include_add(out, n, line, &back, &m), 0);
  assert_int_equal(sshconf_include_remove(out, n, line, &back, &m), 1);
  assert_int_equal(m, strlen(orig));
  assert_memory_equal(back, orig, m);
  free(back);
  free(out);
  /* Only a whole line equal to ours goes. */
  const char *other =
      "Include ~/.ssh/wsmux.conf.bak\n  Include ~/.ssh/wsmux.conf\n";
  assert_int_equal(sshconf_include_remove(other, strlen(other), line, &out, &n),
                   0);
  /* Anywhere, and the last line without a newline too. */
  const char *moved =
      "Host a\nInclude ~/.ssh/wsmux.conf\nX\nInclude ~/.ssh/wsmux.conf";
  assert_int_equal(sshconf_include_remove(moved, strlen(moved), line, &out, &n),
                   1);
  assert_int_equal(n, 9);
  assert_memory_equal(out, "Host a\nX\n", 9);
  free(out);
  /* An empty file. */
  assert_int_equal(sshconf_include_add("", 0, line, &out, &n), 1);
  assert_int_equal(sshconf_include_remove(out, n, line, &back, &m), 1);
  assert_int_equal(m, 0);
  free(out);
  free(back);
}

static void test_sshconf_sections(void **state) {
  sshconf_sections_t s;
  assert_int_equal(sshconf_sections_parse("", 0, &s), 0);
  assert_int_equal(s.n, 0);
  assert_int_equal(sshconf_sections_put(&s, "p2", "db", "Host b\n"), 0);
  assert_int_equal(sshconf_sections_put(&s, "p1", "web", "Host a\n"), 0);
  assert_int_equal(sshconf_sections_put(&s, "p1", "api", "Host c\n"), 0);
  assert_int_equal(sshconf_sections_put(&s, "p1", "web", "Host a2\n"), 0);
  char *text = sshconf_sections_text(&s);
  sshconf_sections_free(&s);
  /* Sorted, one section per service, the replaced one once. */
  const char *a =
      strstr(text, "# >>> wsmux p1/api\nHost c\n# <<< wsmux p1/api\n");
  const char *b =
      strstr(text, "# >>> wsmux p1/web\nHost a2\n# <<< wsmux p1/web\n");
  const char *c =
      strstr(text, "# >>> wsmux p2/db\nHost b\n# <<< wsmux p2/db\n");
  assert_true(a != NULL && b != NULL && c != NULL && a < b && b < c);
  assert_null(strstr(text, "Host a\n"));
  /* Read back: the same three; a project removed as a whole. */
  assert_int_equal(sshconf_sections_parse(text, strlen(text), &s), 0);
  assert_int_equal(s.n, 3);
  char *again = sshconf_sections_text(&s);
  assert_string_equal(again, text);
  assert_int_equal(sshconf_sections_remove(&s, "p1", NULL), 2);
  assert_int_equal(s.n, 1);
  assert_string_equal(s.v[0].service, "db");
  assert_int_equal(sshconf_sections_remove(&s, NULL, NULL), 1);
  sshconf_sections_free(&s);
  /* A section not closed is not ours to rewrite. */
  const char *open_ = "# >>> wsmux p1/web\nHost a\n";
  assert_int_equal(sshconf_sections_parse(open_, strlen(open_), &s), -1);
  free(again);
  free(text);
}

static char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  rewind(f);
  char *s = malloc((size_t)len + 1);
  assert_int_equal(fread(s, 1, (size_t)len, f), (size_t)len);
  fclose(f);
  s[len] = '\0';
  *n = (size_t)len;
  return s;
}

static void test_sshconf_apply(void **state) {
  fixture_t *fx = *state;
  char home[PATH_MAX], cfg[PATH_MAX + 32], conf[PATH_MAX + 32];
  snprintf(home, sizeof(home), "%s/home", fx->dir);
  snprintf(cfg, sizeof(cfg), "%s/.ssh/config", home);
  snprintf(conf, sizeof(conf), "%s/.ssh/wsmux.conf", home);
  assert_int_equal(mkdir(home, 0755), 0);
  sshconf_paths_t p;
  /* Another home for "~": the line names the file. */
  assert_int_equal(sshconf_paths(home, "/nonexistent", &p), 0);
  char want[PATH_MAX + 64];
  snprintf(want, sizeof(want), "Include %s/.ssh/wsmux.conf", home);
  assert_string_equal(p.include, want);
  sshconf_paths_free(&p);
  assert_int_equal(sshconf_paths(home, home, &p), 0);
  assert_string_equal(p.include, "Include ~/.ssh/wsmux.conf");
  /* No ~/.ssh: made 0700, config 0600, conf 0600. */
  const char *svc[] = {"web", "api"}, *body[] = {"Host w\n", "Host a\n"};
  sshconf_result_t r;
  char err[512] = "";
  assert_int_equal(
      sshconf_apply(&p, "p1", NULL, svc, body, 2, 0, &r, err, sizeof(err)), 0);
  assert_true(r.conf_changed && r.include_added);
  struct stat st;
  assert_int_equal(stat(p.ssh_dir, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0700);
  assert_int_equal(stat(cfg, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_int_equal(stat(conf, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  size_t n;
  char *c = slurp(cfg, &n);
  assert_string_equal(c, "Include ~/.ssh/wsmux.conf\n");
  free(c);
  /* Again: nothing changes. */
  assert_int_equal(
      sshconf_apply(&p, "p1", NULL, svc, body, 2, 0, &r, err, sizeof(err)), 0);
  assert_true(!r.conf_changed && !r.include_added && r.removed == 2);
  /* The project again with one service fewer: the other goes. */
  assert_int_equal(
      sshconf_apply(&p, "p1", NULL, svc, body, 1, 0, &r, err, sizeof(err)), 0);
  char *t = slurp(conf, &n);
  assert_non_null(strstr(t, "p1/web"));
  assert_null(strstr(t, "p1/api"));
  free(t);
  /* Uninstall everything: the created config goes too. */
  assert_int_equal(
      sshconf_apply(&p, NULL, NULL, NULL, NULL, 0, 1, &r, err, sizeof(err)), 0);
  assert_true(r.conf_removed && r.include_removed);
  assert_int_equal(access(cfg, F_OK), -1);
  assert_int_equal(access(conf, F_OK), -1);
  /* A hand-broken file is refused, untouched. */
  FILE *f = fopen(conf, "w");
  fputs("# >>> wsmux p1/web\nHost x\n", f);
  fclose(f);
  assert_int_equal(
      sshconf_apply(&p, "p1", "web", svc, body, 1, 0, &r, err, sizeof(err)),
      -1);
  assert_non_null(strstr(err, "a section is not closed"));
  sshconf_paths_free(&p);
}

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, setup_dir, teardown_dir)
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_args_lists),
      cmocka_unit_test(test_args_list_errors),
      cmocka_unit_test(test_context_path),
      cmocka_unit_test(test_context_validity),
      cmocka_unit_test(test_context_token_read),
      T(test_context_file_roundtrip),
      T(test_context_file_private),
      T(test_context_file_invalid),
      T(test_resolve_nothing),
      T(test_resolve_flags_env),
      T(test_resolve_stored),
      T(test_resolve_unsafe_file),
      T(test_http_proxy_flags),
      cmocka_unit_test(test_output_format),
      cmocka_unit_test(test_output_table),
      cmocka_unit_test(test_output_printable),
      cmocka_unit_test(test_output_json),
      cmocka_unit_test(test_output_json_terminal_safe),
      cmocka_unit_test(test_output_projects_services),
      cmocka_unit_test(test_output_identities),
      cmocka_unit_test(test_api_status),
      cmocka_unit_test(test_api_ids),
      cmocka_unit_test(test_api_keys_text),
      T(test_api_keys_file),
      cmocka_unit_test(test_api_identity_body),
      cmocka_unit_test(test_api_identity_check),
      T(test_cmd_help),
      T(test_cmd_usage_errors),
      T(test_cmd_network_errors),
      cmocka_unit_test(test_sshconf_include),
      cmocka_unit_test(test_sshconf_sections),
      T(test_sshconf_apply),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
