/* Unit tests for base/: cleaning and quoting text, the id rule, strict
 * JSON and its messages, bounded reads and atomic writes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cidr.h"
#include "base/file.h"
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

static void test_text_utf8(void **state) {
  static const struct {
    const char *s;
    size_t len;
    int valid;
  } cases[] = {
      {"", 0, 1},
      {"plain ascii", 11, 1},
      {"a\0b", 3, 1},                 /* NUL is a character */
      {"\xc3\xa9", 2, 1},             /* U+00E9 */
      {"\xe2\x82\xac", 3, 1},         /* U+20AC */
      {"\xf0\x9f\x98\x80", 4, 1},     /* U+1F600 */
      {"\xf4\x8f\xbf\xbf", 4, 1},     /* U+10FFFF, the last one */
      {"\xef\xbf\xbf", 3, 1},         /* U+FFFF */
      {"\xed\x9f\xbf", 3, 1},         /* U+D7FF, just below the surrogates */
      {"\xff", 1, 0},                 /* never in UTF-8 */
      {"\x80", 1, 0},                 /* a stray continuation byte */
      {"\xc3", 1, 0},                 /* truncated */
      {"\xe2\x82", 2, 0},             /* truncated */
      {"\xc3(", 2, 0},                /* not a continuation */
      {"\xc0\xaf", 2, 0},             /* overlong '/' */
      {"\xc1\xbf", 2, 0},             /* overlong */
      {"\xe0\x80\xaf", 3, 0},         /* overlong */
      {"\xf0\x8f\xbf\xbf", 4, 0},     /* overlong U+FFFF */
      {"\xed\xa0\x80", 3, 0},         /* U+D800, a surrogate */
      {"\xed\xbf\xbf", 3, 0},         /* U+DFFF */
      {"\xf4\x90\x80\x80", 4, 0},     /* U+110000 */
      {"\xf5\x80\x80\x80", 4, 0},     /* beyond */
      {"ok \xe2\x82\xac \xa0", 8, 0}, /* bad at the end */
  };

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    if (text_utf8_valid(cases[i].s, cases[i].len) != cases[i].valid)
      fail_msg("case %zu", i);
  assert_int_equal(text_utf8_char("\xe2\x82\xac", 3), 3);
  assert_int_equal(text_utf8_char("\xe2\x82\xac", 2), 0);
  assert_int_equal(text_utf8_char("a", 0), 0);
}

static void test_text_escape(void **state) {
  static const struct {
    const char *s;
    size_t len;
    const char *want;
  } cases[] = {
      {"", 0, ""},
      {"plain text: ok", 14, "plain text: ok"},
      /* A forged log line and a terminal sequence stay on this line, inert. */
      {"bye\nwsmux-edge: FORGED", 22, "bye\\nwsmux-edge: FORGED"},
      {"\x1b[2J\r\t", 6, "\\e[2J\\r\\t"},
      {"a\\nb", 4, "a\\\\nb"}, /* a backslash is escaped itself */
      {"\x01\x7f", 2, "\\x01\\x7f"},
      {"a\0b", 3, "a\\x00b"},
      {"caf\xc3\xa9 \xe2\x82\xac", 9, "caf\xc3\xa9 \xe2\x82\xac"},
      {"\xc2\x9b"
       "31m",
       5, "\\xc2\\x9b31m"},                                       /* C1 CSI */
      {"\xff\xc3(\xed\xa0\x80", 6, "\\xff\\xc3(\\xed\\xa0\\x80"}, /* bytes */
  };
  char b[64];

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    text_escape(b, sizeof b, cases[i].s, cases[i].len);
    if (strcmp(b, cases[i].want) != 0)
      fail_msg("case %zu: got \"%s\"", i, b);
  }
  /* Exactly fits: not cut. */
  text_escape(b, 7, "abcdef", 6);
  assert_string_equal(b, "abcdef");
  /* Cut: whole pieces, then "...". */
  text_escape(b, 7, "abcdefg", 7);
  assert_string_equal(b, "abc...");
  /* Never inside an escape or a UTF-8 character. */
  text_escape(b, 9, "ab\ncdefg", 8);
  assert_string_equal(b, "ab\\nc...");
  text_escape(b, 8, "ab\ncdefg", 8);
  assert_string_equal(b, "ab\\n...");
  text_escape(b, 7, "ab\ncdefg", 8);
  assert_string_equal(b, "ab...");
  text_escape(b, 8,
              "ab\xe2\x82\xac"
              "cdef",
              9);
  assert_string_equal(b, "ab...");
  /* 4 bytes of output per input byte at most. */
  char big[4 * 6 + 1];
  text_escape(big, sizeof big, "\x01\xff\x1b\xc2\x85\n", 6);
  assert_string_equal(big, "\\x01\\xff\\e\\xc2\\x85\\n");
  /* Tiny buffers cut without the mark, never overrun. */
  memset(b, '#', sizeof b);
  text_escape(b, 3, "abcdef", 6);
  assert_string_equal(b, "ab");
  assert_int_equal(b[3], '#');
  text_escape(b, 1, "abc", 3);
  assert_string_equal(b, "");
  text_escape(b, 0, "abc", 3); /* n == 0 writes nothing */
  assert_int_equal(b[0], '\0');
}

/* ---- ids --------------------------------------------------------------- */

static void test_text_hex(void **state) {
  static const char digits[] = "0123456789abcdefABCDEF";
  static const uint8_t want[] = {0x00, 0xff, 0x10, 0xab, 0x9c};
  uint8_t out[8];

  for (size_t i = 0; digits[i] != '\0'; i++)
    assert_int_equal(text_hex_digit(digits[i]), i < 16 ? (int)i : (int)i - 6);
  /* The neighbours of each range, signs, blanks, "0x", NUL, high bytes. */
  static const int other[] = {'/',  ':', '@', 'G',  '`',  'g',  'x', 'X',   ' ',
                              '\t', '+', '-', '\0', 0x80, 0xff, -1,  '\xe9'};
  for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
    if (text_hex_digit(other[i]) != -1)
      fail_msg("case %zu: %d taken for a hex digit", i, other[i]);

  assert_int_equal(text_hex_decode("00ff10AB9c", 10, out, 5), 0);
  assert_memory_equal(out, want, sizeof want);
  assert_int_equal(text_hex_decode("", 0, out, 0), 0);
  /* Exactly 2n digits: shorter, longer, odd. */
  static const struct {
    const char *hex;
    size_t n;
  } bad[] = {
      {"00ff", 3},
      {"00ff10", 2},
      {"00f", 2},
      {"00ff1", 2},
      {" 0ff", 2},
      {"+0ff", 2},
      {"-0ff", 2},
      {"0x0f", 2},
      {"00 f", 2},
      {"00fg", 2},
      {"00f\n", 2},
      {"\xc3\xa9"
       "ff",
       2},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    memset(out, 0x55, sizeof out);
    if (text_hex_decode(bad[i].hex, strlen(bad[i].hex), out, bad[i].n) != -1)
      fail_msg("case %zu: \"%s\" decoded", i, bad[i].hex);
    for (size_t k = 0; k < sizeof out; k++)
      assert_int_equal(out[k], 0x55); /* untouched */
  }
  /* The length is hexlen, not the string's: a NUL inside is no digit,
   * and digits past hexlen are not read. */
  assert_int_equal(text_hex_decode("00\0f", 4, out, 2), -1);
  assert_int_equal(text_hex_decode("0a0bzz", 4, out, 2), 0);
  assert_int_equal(out[0], 0x0a);
  assert_int_equal(out[1], 0x0b);
}

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

  /* Strings and keys must be valid UTF-8, named by their path; \u escapes
   * (cJSON refuses lone surrogates) and valid multi-byte text pass. */
  parse_good("{\"caf\xc3\xa9\": [\"\xe2\x82\xac\", \"\\ud83d\\ude00\"]}");
  parse_bad("{\"a\": {\"description\": \"x\xff\"}}", 28,
            "a.description: invalid UTF-8");
  parse_bad("{\"tokens\": [{\"id\": \"a\"}, {\"id\": \"\xc0\xaf\"}]}", 39,
            "tokens[1].id: invalid UTF-8");
  parse_bad("[\"\xed\xa0\x80\"]", 7, "[0]: invalid UTF-8");
  parse_bad("\"\xf4\x90\x80\x80\"", 6, "invalid UTF-8");
  parse_bad("{\"x\": {\"k\xff\": 1}}", 16, "x: invalid UTF-8 in a key");
  parse_bad("{\"k\xff\": 1}", 9, "invalid UTF-8 in a key");
  /* A hostile key in a path is cleaned. */
  parse_bad("{\"a\x1b[2J\": \"\xff\"}", 14, "a?[2J: invalid UTF-8");
  parse_bad("[\"\\ud800\"]", 10, "invalid JSON at byte offset 2");
  /* Below a given path. */
  cJSON *doc = cJSON_CreateObject();
  cJSON_AddStringToObject(doc, "ok", "\xc3\xa9");
  assert_int_equal(json_check_utf8(doc, "state", err, sizeof err), 0);
  cJSON_AddStringToObject(doc, "bad", "\xe2\x82");
  assert_int_equal(json_check_utf8(doc, "state", err, sizeof err), -1);
  assert_string_equal(err, "state.bad: invalid UTF-8");
  cJSON_Delete(doc);

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

/* ---- files ------------------------------------------------------------- */

typedef struct {
  char dir[64];
  char path[128]; /* dir/f, not created */
} fixture_t;

static int setup_dir(void **state) {
  fixture_t *f = calloc(1, sizeof *f);

  if (f == NULL)
    return -1;
  snprintf(f->dir, sizeof f->dir, "/tmp/wsmux-test-base.XXXXXX");
  if (mkdtemp(f->dir) == NULL) {
    free(f);
    return -1;
  }
  snprintf(f->path, sizeof f->path, "%s/f", f->dir);
  *state = f;
  return 0;
}

/* Removes what a test left in dir (files only), then dir. */
static int teardown_dir(void **state) {
  fixture_t *f = *state;
  DIR *d = opendir(f->dir);
  char p[384];

  for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    snprintf(p, sizeof p, "%s/%s", f->dir, e->d_name);
    unlink(p);
  }
  if (d != NULL)
    closedir(d);
  rmdir(f->dir);
  free(f);
  return 0;
}

static void write_bytes(const char *path, const void *data, size_t len,
                        mode_t mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

  assert_true(fd >= 0);
  assert_int_equal(write(fd, data, len), (ssize_t)len);
  assert_int_equal(fchmod(fd, mode), 0);
  assert_int_equal(close(fd), 0);
}

/* Entries of dir other than . and .. */
static int dir_count(const char *dir) {
  DIR *d = opendir(dir);
  int n = 0;

  assert_non_null(d);
  for (struct dirent *e; (e = readdir(d)) != NULL;)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
      n++;
  closedir(d);
  return n;
}

static mode_t mode_of(const char *path) {
  struct stat st;

  assert_int_equal(stat(path, &st), 0);
  return st.st_mode & 07777;
}

static void test_file_read(void **state) {
  fixture_t *f = *state;
  char err[512], want[512], sentinel = 0, *text = &sentinel;
  size_t len = 99; /* both reset on every result */

  /* Missing: an error, or with the flag its own result and err kept. */
  assert_int_equal(file_read(f->path, 100, 0, &text, &len, err, sizeof err),
                   FILE_READ_FAILED);
  snprintf(want, sizeof want, "cannot open %s: No such file or directory",
           f->path);
  assert_string_equal(err, want);
  assert_null(text);
  strcpy(err, "untouched");
  assert_int_equal(file_read(f->path, 100, FILE_READ_MISSING_OK, &text, &len,
                             err, sizeof err),
                   FILE_READ_MISSING);
  assert_string_equal(err, "untouched");
  assert_null(text);
  assert_int_equal(len, 0);

  /* Normal, NUL-terminated, a NUL inside counted in len. */
  write_bytes(f->path, "ab\0cd", 5, 0644);
  assert_int_equal(file_read(f->path, 100, 0, &text, &len, err, sizeof err),
                   FILE_READ_OK);
  assert_int_equal(len, 5);
  assert_memory_equal(text, "ab\0cd", 6);
  free(text);
  write_bytes(f->path, "", 0, 0644);
  assert_int_equal(file_read(f->path, 100, 0, &text, &len, err, sizeof err),
                   FILE_READ_OK);
  assert_int_equal(len, 0);
  assert_string_equal(text, "");
  free(text);

  /* Exactly max bytes is fine, one more is not. */
  write_bytes(f->path, "0123456789", 10, 0644);
  assert_int_equal(file_read(f->path, 10, 0, &text, &len, err, sizeof err),
                   FILE_READ_OK);
  assert_string_equal(text, "0123456789");
  free(text);
  assert_int_equal(file_read(f->path, 9, 0, &text, &len, err, sizeof err),
                   FILE_READ_TOO_LARGE);
  snprintf(want, sizeof want, "%s: file is larger than 9 bytes", f->path);
  assert_string_equal(err, want);
  assert_null(text);

  /* Larger than 16 MiB, refused before reading (sparse, so cheap). */
  assert_int_equal(truncate(f->path, (16 << 20) + 1), 0);
  assert_int_equal(
      file_read(f->path, 16u << 20, 0, &text, &len, err, sizeof err),
      FILE_READ_TOO_LARGE);
  snprintf(want, sizeof want, "%s: file is larger than 16 MiB", f->path);
  assert_string_equal(err, want);
  assert_int_equal(unlink(f->path), 0);

  /* A directory. */
  assert_int_equal(file_read(f->dir, 100, FILE_READ_MISSING_OK, &text, &len,
                             err, sizeof err),
                   FILE_READ_FAILED);
  snprintf(want, sizeof want, "cannot read %s: Is a directory", f->dir);
  assert_string_equal(err, want);
}

/* A pipe has no size to check first: the bound holds while reading. */
static void test_file_read_fd(void **state) {
  char err[256], big[5000], *text;
  size_t len;
  int fds[2];

  memset(big, 'k', sizeof big);
  assert_int_equal(pipe(fds), 0);
  assert_int_equal(write(fds[1], big, sizeof big), (ssize_t)sizeof big);
  close(fds[1]);
  assert_int_equal(file_read_fd(fds[0], "standard input", 4096, &text, &len,
                                err, sizeof err),
                   FILE_READ_TOO_LARGE);
  assert_string_equal(err, "standard input: file is larger than 4 KiB");
  close(fds[0]);

  assert_int_equal(pipe(fds), 0);
  assert_int_equal(write(fds[1], big, sizeof big), (ssize_t)sizeof big);
  close(fds[1]);
  assert_int_equal(file_read_fd(fds[0], "standard input", sizeof big, &text,
                                &len, err, sizeof err),
                   FILE_READ_OK);
  assert_int_equal(len, sizeof big);
  assert_int_equal(text[len], '\0');
  assert_memory_equal(text, big, sizeof big);
  free(text);
  close(fds[0]);
}

static void test_file_write_atomic(void **state) {
  fixture_t *f = *state;
  char err[256], *text;
  size_t len;

  /* A new file gets mode, whether or not existing modes are kept. */
  assert_int_equal(file_write_atomic(f->path, "one\n", 4, 0644,
                                     FILE_WRITE_KEEP_MODE, err, sizeof err),
                   FILE_WRITE_OK);
  assert_int_equal(mode_of(f->path), 0644);
  assert_int_equal(file_read(f->path, 100, 0, &text, &len, err, sizeof err),
                   FILE_READ_OK);
  assert_string_equal(text, "one\n");
  free(text);
  assert_int_equal(dir_count(f->dir), 1);

  /* An existing file keeps its mode with FILE_WRITE_KEEP_MODE... */
  assert_int_equal(chmod(f->path, 0640), 0);
  assert_int_equal(file_write_atomic(f->path, "two", 3, 0644,
                                     FILE_WRITE_KEEP_MODE, err, sizeof err),
                   FILE_WRITE_OK);
  assert_int_equal(mode_of(f->path), 0640);
  /* ... and gets mode without it. */
  assert_int_equal(chmod(f->path, 0644), 0);
  assert_int_equal(
      file_write_atomic(f->path, "three", 5, 0600, 0, err, sizeof err),
      FILE_WRITE_OK);
  assert_int_equal(mode_of(f->path), 0600);
  assert_int_equal(file_read(f->path, 100, 0, &text, &len, err, sizeof err),
                   FILE_READ_OK);
  assert_string_equal(text, "three");
  free(text);
  /* Nothing to write is a valid, empty file. */
  assert_int_equal(file_write_atomic(f->path, "", 0, 0600, 0, err, sizeof err),
                   FILE_WRITE_OK);
  assert_int_equal(file_read(f->path, 100, 0, &text, &len, err, sizeof err),
                   FILE_READ_OK);
  assert_int_equal(len, 0);
  free(text);
  assert_int_equal(dir_count(f->dir), 1);
}

static void test_file_write_atomic_fails(void **state) {
  fixture_t *f = *state;
  char err[512], want[512], path[192], *text;
  size_t len;

  /* The tests run as root, so a read-only directory would not stop the
   * write; a directory that does not exist does. */
  snprintf(path, sizeof path, "%s/missing/f", f->dir);
  assert_int_equal(file_write_atomic(path, "x", 1, 0644, 0, err, sizeof err),
                   FILE_WRITE_FAILED);
  snprintf(want, sizeof want,
           "cannot create a temporary file next to %s: No such file or "
           "directory",
           path);
  assert_string_equal(err, want);
  assert_int_equal(dir_count(f->dir), 0);

  /* rename() fails (a non-empty directory is in the way) after the
   * temporary file was written: it is removed, nothing else changes. */
  snprintf(path, sizeof path, "%s/d", f->dir);
  assert_int_equal(mkdir(path, 0755), 0);
  snprintf(want, sizeof want, "%s/d/keep", f->dir);
  write_bytes(want, "k", 1, 0644);
  assert_int_equal(file_write_atomic(path, "x", 1, 0644, 0, err, sizeof err),
                   FILE_WRITE_FAILED);
  assert_non_null(strstr(err, "cannot rename"));
  assert_int_equal(dir_count(f->dir), 1); /* only d */
  assert_int_equal(dir_count(path), 1);
  assert_int_equal(file_read(want, 100, 0, &text, &len, err, sizeof err),
                   FILE_READ_OK);
  assert_string_equal(text, "k");
  free(text);
  assert_int_equal(unlink(want), 0);
  assert_int_equal(rmdir(path), 0);
}

static void test_file_paths(void **state) {
  static const char *const dirs[][2] = {
      {"a/b", "a"}, {"b", "."}, {"/x", "/"}, {"/a/b/c", "/a/b"}, {"", "."}};
  static const char *const resolved[][3] = {{"/etc", "x", "/etc/x"},
                                            {"/etc/", "x", "/etc/x"},
                                            {"conf", "a/b", "conf/a/b"},
                                            {"/etc", "/abs", "/abs"},
                                            {"", "x", "x"},
                                            {NULL, "x", "x"}};

  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
    char *d = file_dirname(dirs[i][0]);
    assert_non_null(d);
    if (strcmp(d, dirs[i][1]) != 0)
      fail_msg("dirname of \"%s\": got \"%s\"", dirs[i][0], d);
    free(d);
  }
  for (size_t i = 0; i < sizeof resolved / sizeof resolved[0]; i++) {
    char *p = file_path_resolve(resolved[i][0], resolved[i][1]);
    assert_non_null(p);
    assert_string_equal(p, resolved[i][2]);
    free(p);
  }
}

/* ---- cidr ---------------------------------------------------------------- */

static void test_cidr(void **state) {
  static const struct {
    const char *range, *ip;
    int match;
  } cases[] = {
      {"10.0.0.0/8", "10.255.1.2", 1},
      {"10.0.0.0/8", "11.0.0.1", 0},
      {"10.1.2.3", "10.1.2.3", 1},
      {"10.1.2.3", "10.1.2.4", 0},
      {"0.0.0.0/0", "192.0.2.1", 1},
      {"0.0.0.0/0", "::1", 0},
      {"172.16.0.0/12", "172.31.255.255", 1},
      {"172.16.0.0/12", "172.32.0.0", 0},
      {"fd00::/8", "fd12:3456::1", 1},
      {"fd00::/8", "fe80::1", 0},
      {"::1", "::1", 1},
      {"::/0", "2001:db8::1", 1},
      /* a v4-mapped address is its IPv4 address */
      {"10.0.0.0/8", "::ffff:10.2.3.4", 1},
      {"10.0.0.0/8", "not an address", 0},
      {"10.0.0.0/8", "", 0},
  };
  cidr_t c;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    assert_int_equal(cidr_parse(cases[i].range, &c), 0);
    if (cidr_match(&c, cases[i].ip) != cases[i].match)
      fail_msg("%s in %s: want %d", cases[i].ip, cases[i].range,
               cases[i].match);
  }
  static const char *const bad[] = {
      "",           "10.0.0.0/",   "10.0.0.0/33", "10.0.0.1/8",
      "::1/129",    "10.0.0.0/-1", "10.0.0.0/8x", "host",
      "10.0.0.256", "/8"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (cidr_parse(bad[i], &c) != -1)
      fail_msg("\"%s\" parsed", bad[i]);
  assert_int_equal(cidr_match(&c, NULL), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_text_quote),
      cmocka_unit_test(test_text_clean),
      cmocka_unit_test(test_text_utf8),
      cmocka_unit_test(test_text_escape),
      cmocka_unit_test(test_text_hex),
      cmocka_unit_test(test_id_valid),
      cmocka_unit_test(test_json_parse_strict),
      cmocka_unit_test(test_json_check_object),
      cmocka_unit_test(test_json_messages),
      cmocka_unit_test(test_json_build),
      cmocka_unit_test_setup_teardown(test_file_read, setup_dir, teardown_dir),
      cmocka_unit_test(test_file_read_fd),
      cmocka_unit_test_setup_teardown(test_file_write_atomic, setup_dir,
                                      teardown_dir),
      cmocka_unit_test_setup_teardown(test_file_write_atomic_fails, setup_dir,
                                      teardown_dir),
      cmocka_unit_test(test_file_paths),
      cmocka_unit_test(test_cidr),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
