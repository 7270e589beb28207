/* Unit tests for the edge state: parse, atomic save, load, edits. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "edge/state.h"

#define KEY1                                                                   \
  "ssh-ed25519 "                                                               \
  "AAAAC3NzaC1lZDI1NTE5AAAAIIkWlsat2POOFofVeSiV0pyO+A8ispB4N6S6UwzZgFKl "      \
  "alice@laptop"
#define KEY2                                                                   \
  "ecdsa-sha2-nistp256 "                                                       \
  "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBF8c89kfgeAw2Dp37XaS+"  \
  "drhJk8JczVkbEriZReEdVrrSrFSI9WFKzA1xtOi26kT8aJZkQT8j9F31kvWWgq9UGs="

#define T0                                                                     \
  "'createdAt':'2026-11-25T12:00:00Z','updatedAt':'2026-11-25T12:00:00Z'"
#define ID1                                                                    \
  "{'id':'idt-0000000000000001','name':'alice','keys':['" KEY1 "']," T0 "}"
#define ID2                                                                    \
  "{'id':'idt-0000000000000002','name':'bob','keys':['" KEY2 "'],"             \
  "'projects':['p1'],'tags':['a','b'],'matchAllTags':true," T0 "}"
#define GOOD                                                                   \
  "{'version':1,'identities':[" ID1 "," ID2 "],'services':["                   \
  "{'projectId':'p1','serviceId':'web','sshEnabled':false},"                   \
  "{'projectId':'p1','serviceId':'db','sshEnabled':true}]}"

typedef struct {
  char dir[64];
  char path[128];
} fixture_t;

static char *unquote(const char *s) {
  char *t = strdup(s);
  assert_non_null(t);
  for (char *c = t; *c; c++)
    if (*c == '\'')
      *c = '"';
  return t;
}

static state_t *parse_ok(const char *squoted) {
  char *text = unquote(squoted), err[512];
  state_t *s = NULL;

  if (state_parse(text, strlen(text), &s, err, sizeof err) != 0)
    fail_msg("%s", err);
  free(text);
  return s;
}

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);

  assert_non_null(f);
  strcpy(f->dir, "/tmp/wsmux_state_XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->path, sizeof f->path, "%s/state.json", f->dir);
  *state = f;
  return 0;
}

/* Removes the test directory, which must hold at most state.json (so a
 * left-over temporary file fails the test). */
static int teardown(void **state) {
  fixture_t *f = *state;

  unlink(f->path);
  if (rmdir(f->dir) != 0)
    fail_msg("%s not empty: a temporary file was left behind?", f->dir);
  free(f);
  return 0;
}

/* Entries of dir other than . and .. */
static int dir_count(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  int n = 0;

  assert_non_null(d);
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
      n++;
  closedir(d);
  return n;
}

static char *read_all(const char *path) {
  FILE *fp = fopen(path, "rb");
  char *buf = calloc(1, 1 << 20);
  size_t n;

  assert_non_null(fp);
  assert_non_null(buf);
  n = fread(buf, 1, (1 << 20) - 1, fp);
  buf[n] = '\0';
  fclose(fp);
  return buf;
}

static void write_all(const char *path, const char *text) {
  FILE *fp = fopen(path, "wb");

  assert_non_null(fp);
  assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
  assert_int_equal(fclose(fp), 0);
}

/* ---- round trip -------------------------------------------------------- */

static void test_round_trip(void **state) {
  fixture_t *f = *state;
  state_t *a = parse_ok(GOOD), *b = NULL;
  char err[512], *t1, *t2;
  size_t len;
  struct stat st;

  assert_int_equal(a->nidentities, 2);
  assert_string_equal(a->identities[1].name, "bob");
  assert_int_equal(a->identities[1].match_all_tags, 1);
  assert_int_equal(a->nssh, 2);
  assert_int_equal(a->ssh[0].ssh_enabled, 0);

  assert_int_equal(state_save(a, f->path, err, sizeof err), STATE_SAVE_OK);
  assert_int_equal(dir_count(f->dir), 1);
  assert_int_equal(stat(f->path, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0644);
  if (state_load(f->path, &b, err, sizeof err) != 0)
    fail_msg("%s", err);
  t1 = state_serialize(a, &len);
  assert_int_equal(len, strlen(t1));
  assert_int_equal(t1[len - 1], '\n');
  t2 = state_serialize(b, &len);
  assert_string_equal(t1, t2);
  /* What is on disk is exactly the serialization. */
  free(t2);
  t2 = read_all(f->path);
  assert_string_equal(t1, t2);
  free(t1);
  free(t2);
  state_free(a);
  state_free(b);
}

static void test_empty_and_missing(void **state) {
  fixture_t *f = *state;
  state_t *s = NULL;
  char err[512];

  /* A missing file is an empty state, and loading creates nothing. */
  assert_int_equal(state_load(f->path, &s, err, sizeof err), 0);
  assert_int_equal(s->nidentities + s->nssh, 0);
  assert_int_equal(dir_count(f->dir), 0);
  /* An empty state saves and loads. */
  assert_int_equal(state_save(s, f->path, err, sizeof err), STATE_SAVE_OK);
  state_free(s);
  assert_int_equal(state_load(f->path, &s, err, sizeof err), 0);
  assert_int_equal(s->nidentities + s->nssh, 0);
  state_free(s);
  /* Without identities or services lists. */
  s = parse_ok("{'version':1}");
  assert_int_equal(s->nidentities + s->nssh, 0);
  state_free(s);
}

/* ---- corrupt files ----------------------------------------------------- */

static void test_corrupt_refused(void **state) {
  fixture_t *f = *state;
  static const char corrupt[] = "{\"version\":1,\"identities\":[{\"id\":}]}";
  char err[512], want[256], *after;
  state_t *s = (state_t *)1;
  struct stat before, st;

  write_all(f->path, corrupt);
  assert_int_equal(stat(f->path, &before), 0);
  assert_int_equal(state_load(f->path, &s, err, sizeof err), -1);
  assert_null(s);
  snprintf(want, sizeof want, "%s: invalid JSON at byte offset 33", f->path);
  assert_string_equal(err, want);
  /* Untouched: same bytes, same inode, same mtime, nothing new around. */
  after = read_all(f->path);
  assert_string_equal(after, corrupt);
  free(after);
  assert_int_equal(stat(f->path, &st), 0);
  assert_int_equal(st.st_ino, before.st_ino);
  assert_int_equal(st.st_mtim.tv_sec, before.st_mtim.tv_sec);
  assert_int_equal(st.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
  assert_int_equal(dir_count(f->dir), 1);

  /* Truncated (as a non-atomic writer could leave it; cJSON points at the
   * start of the unfinished value) and empty. */
  write_all(f->path, "{\"version\":1,\"identities\":[");
  assert_int_equal(state_load(f->path, &s, err, sizeof err), -1);
  assert_non_null(strstr(err, ": invalid JSON at byte offset 26"));
  write_all(f->path, "");
  assert_int_equal(state_load(f->path, &s, err, sizeof err), -1);
  assert_non_null(strstr(err, ": invalid JSON at byte offset 0"));

  /* A directory where the file should be. */
  assert_int_equal(state_load(f->dir, &s, err, sizeof err), -1);
  assert_non_null(strstr(err, f->dir));
}

typedef struct {
  const char *text;
  const char *error;
} bad_t;

static const bad_t bad_states[] = {
    {"[]", "state: expected an object, got an array"},
    {"{}", "version: required"},
    {"{'version':2}", "version: expected 1 (this edge's format)"},
    {"{'version':'1'}", "version: expected 1"},
    {"{'version':1,'extra':1}", "state: unknown field \"extra\""},
    {"{'version':1,'identities':{}}", "identities: expected an array"},
    {"{'version':1,'identities':[1]}",
     "identities[0]: expected an object, got 1"},
    {"{'version':1,'identities':[" ID1 ",{'id':'x','name':'y','keys':['k']," T0
     "}]}",
     "identities[1].keys[0]: unknown key type \"k\""},
    {"{'version':1,'identities':[" ID1 "," ID1 "]}",
     "identities[1].id: \"idt-0000000000000001\" is already used by "
     "identities[0]"},
    {"{'version':1,'identities':[" ID1
     ",{'id':'x','name':'alice','keys':['" KEY2 "']," T0 "}]}",
     "identities[1].name: \"alice\" is already used by identities[0]"},
    /* an id equal to another's name would make lookups ambiguous */
    {"{'version':1,'identities':[" ID1
     ",{'id':'alice','name':'x','keys':['" KEY2 "']," T0 "}]}",
     "identities[1].id: \"alice\" is already used by identities[0]"},
    {"{'version':1,'services':{}}", "services: expected an array"},
    {"{'version':1,'services':[{'projectId':'p1','serviceId':'s'}]}",
     "services[0].sshEnabled: expected true or false"},
    {"{'version':1,'services':[{'projectId':'p 1','serviceId':'s',"
     "'sshEnabled':true}]}",
     "services[0].projectId: expected a project id"},
    {"{'version':1,'services':[{'projectId':'p1','sshEnabled':true}]}",
     "services[0].serviceId: expected a service id"},
    {"{'version':1,'services':[{'projectId':'p1','serviceId':'s',"
     "'sshEnabled':true,'x':1}]}",
     "services[0]: unknown field \"x\""},
    {"{'version':1,'services':[{'projectId':'p1','serviceId':'s',"
     "'sshEnabled':true},{'projectId':'p1','serviceId':'s',"
     "'sshEnabled':false}]}",
     "services[1]: a second entry for the same service"},
    /* not UTF-8: other JSON readers would refuse the file */
    {"{'version':1,'identities':[{'id':'x','name':'y','description':'caf\xc3"
     "','keys':['" KEY2 "']," T0 "}]}",
     "identities[0].description: invalid UTF-8"},
    {"{'version':1} x", "invalid JSON at byte offset 14: data after the "
                        "document"},
};

static void test_invalid_states(void **state) {
  for (size_t i = 0; i < sizeof bad_states / sizeof bad_states[0]; i++) {
    char *text = unquote(bad_states[i].text), err[512];
    state_t *s = (state_t *)1;

    if (state_parse(text, strlen(text), &s, err, sizeof err) == 0)
      fail_msg("case %zu parsed", i);
    assert_null(s);
    if (strncmp(err, bad_states[i].error, strlen(bad_states[i].error)) != 0)
      fail_msg("case %zu: got \"%s\", want \"%s...\"", i, err,
               bad_states[i].error);
    free(text);
  }
}

/* ---- failed saves ------------------------------------------------------ */

static void test_save_no_directory(void **state) {
  fixture_t *f = *state;
  state_t *s = parse_ok(GOOD);
  char err[512], path[256];

  /* The tests run as root, so a read-only directory would not stop the
   * write; a directory that does not exist does. */
  snprintf(path, sizeof path, "%s/missing/state.json", f->dir);
  assert_int_equal(state_save(s, path, err, sizeof err), STATE_SAVE_FAILED);
  assert_non_null(strstr(err, "cannot create a temporary file next to"));
  assert_non_null(strstr(err, "No such file or directory"));
  assert_int_equal(dir_count(f->dir), 0);

  /* A file where the directory should be. */
  write_all(f->path, "old");
  snprintf(path, sizeof path, "%s/state.json", f->path);
  assert_int_equal(state_save(s, path, err, sizeof err), STATE_SAVE_FAILED);
  assert_non_null(strstr(err, "Not a directory"));
  char *old = read_all(f->path);
  assert_string_equal(old, "old");
  free(old);
  assert_int_equal(dir_count(f->dir), 1);
  state_free(s);
}

/* rename() fails after the temporary file was written: it must go. */
static void test_save_rename_fails(void **state) {
  fixture_t *f = *state;
  state_t *s = parse_ok(GOOD);
  char err[512], inner[256];

  assert_int_equal(mkdir(f->path, 0755), 0);
  snprintf(inner, sizeof inner, "%s/keep", f->path);
  write_all(inner, "x");
  assert_int_equal(state_save(s, f->path, err, sizeof err), STATE_SAVE_FAILED);
  assert_non_null(strstr(err, "cannot rename"));
  assert_int_equal(dir_count(f->dir), 1); /* only the directory */
  assert_int_equal(dir_count(f->path), 1);
  assert_int_equal(unlink(inner), 0);
  assert_int_equal(rmdir(f->path), 0);
  state_free(s);
}

/* A write error (here: the file size limit) keeps the old file. */
static void test_save_write_fails(void **state) {
  fixture_t *f = *state;
  state_t *small = parse_ok("{'version':1}"), *big = parse_ok(GOOD);
  char err[512], *before, *after;
  struct rlimit old, lim;
  void (*prev)(int);

  assert_int_equal(state_save(small, f->path, err, sizeof err), STATE_SAVE_OK);
  before = read_all(f->path);
  assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
  lim = old;
  lim.rlim_cur = 100;
  prev = signal(SIGXFSZ, SIG_IGN);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
  state_save_result_t rc = state_save(big, f->path, err, sizeof err);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
  signal(SIGXFSZ, prev);

  assert_int_equal(rc, STATE_SAVE_FAILED);
  assert_non_null(strstr(err, "cannot write"));
  after = read_all(f->path);
  assert_string_equal(before, after);
  assert_int_equal(dir_count(f->dir), 1);
  free(before);
  free(after);
  state_free(small);
  state_free(big);
}

static void test_save_keeps_mode(void **state) {
  fixture_t *f = *state;
  state_t *s = parse_ok(GOOD);
  char err[512];
  struct stat st;

  write_all(f->path, "{}");
  assert_int_equal(chmod(f->path, 0600), 0);
  assert_int_equal(state_save(s, f->path, err, sizeof err), STATE_SAVE_OK);
  assert_int_equal(stat(f->path, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0600);
  assert_int_equal(dir_count(f->dir), 1);
  state_free(s);
}

/* ---- edits ------------------------------------------------------------- */

static void test_edits(void **state) {
  state_t *s = parse_ok(GOOD), *c;
  identity_t id;

  assert_int_equal(state_find_identity(s, "idt-0000000000000002"), 1);
  assert_int_equal(state_find_identity(s, "bob"), 1);
  assert_int_equal(state_find_identity(s, "alice"), 0);
  assert_int_equal(state_find_identity(s, "carol"), -1);
  assert_int_equal(state_find_name(s, "bob", -1), 1);
  assert_int_equal(state_find_name(s, "bob", 1), -1);

  /* A clone is deep: changing it leaves the original alone. */
  c = state_clone(s);
  assert_non_null(c);
  assert_int_equal(identity_copy(&id, &c->identities[0]), 0);
  free(id.name);
  id.name = strdup("carol");
  free(id.id);
  id.id = strdup("idt-0000000000000003");
  assert_int_equal(state_add_identity(c, &id), 0);
  assert_null(id.name);
  assert_int_equal(c->nidentities, 3);
  state_remove_identity(c, 0);
  assert_int_equal(c->nidentities, 2);
  assert_string_equal(c->identities[0].name, "bob");
  assert_string_equal(c->identities[1].name, "carol");
  assert_int_equal(identity_copy(&id, &c->identities[1]), 0);
  free(id.description);
  id.description = strdup("new");
  state_replace_identity(c, 1, &id);
  assert_string_equal(c->identities[1].description, "new");
  assert_int_equal(state_set_ssh(c, "p1", "web", 1), 0);
  assert_int_equal(state_set_ssh(c, "p2", "web", 0), 0);
  assert_int_equal(c->nssh, 3);
  assert_int_equal(state_find_ssh(c, "p1", "web")->ssh_enabled, 1);
  assert_int_equal(state_find_ssh(c, "p2", "web")->ssh_enabled, 0);
  assert_null(state_find_ssh(c, "p2", "db"));

  assert_int_equal(s->nidentities, 2);
  assert_string_equal(s->identities[0].name, "alice");
  assert_int_equal(s->nssh, 2);
  assert_int_equal(state_find_ssh(s, "p1", "web")->ssh_enabled, 0);
  state_free(c);
  state_free(s);
}

static void test_apply(void **state) {
  static const char cfg[] =
      "{\"listen\":\"h:1\",\"plainWs\":true,\"projects\":[{\"id\":\"p1\"}],"
      "\"services\":[{\"id\":\"web\",\"projectId\":\"p1\",\"upstream\":\"h:1\","
      "\"sshEnabled\":true},{\"id\":\"db\",\"projectId\":\"p1\","
      "\"upstream\":\"h:1\"},{\"id\":\"api\",\"projectId\":\"p1\","
      "\"upstream\":\"h:1\",\"sshEnabled\":true}]}";
  platform_t *p = NULL;
  char err[512];
  state_t *s = parse_ok(GOOD);

  assert_int_equal(platform_parse(cfg, strlen(cfg), NULL, &p, err, sizeof err),
                   0);
  /* A switch for a service the config no longer has is harmless. */
  assert_int_equal(state_set_ssh(s, "p9", "gone", 1), 0);
  state_apply(s, p);
  assert_int_equal(p->services[0].ssh_enabled, 0); /* switched off */
  assert_int_equal(p->services[1].ssh_enabled, 1); /* switched on */
  assert_int_equal(p->services[2].ssh_enabled, 1); /* config's value */
  state_free(s);
  platform_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_empty_and_missing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_corrupt_refused, setup, teardown),
      cmocka_unit_test(test_invalid_states),
      cmocka_unit_test_setup_teardown(test_save_no_directory, setup, teardown),
      cmocka_unit_test_setup_teardown(test_save_rename_fails, setup, teardown),
      cmocka_unit_test_setup_teardown(test_save_write_fails, setup, teardown),
      cmocka_unit_test_setup_teardown(test_save_keeps_mode, setup, teardown),
      cmocka_unit_test(test_edits),
      cmocka_unit_test(test_apply),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
