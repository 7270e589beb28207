/* Unit tests for SSH identities: key validation, the matching rule, JSON,
 * authorized_keys rendering. */
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
#include "edge/identity.h"

/*
 * Real public keys. The plain ones were made with ssh-keygen (-t ed25519,
 * rsa -b 2048, ecdsa -b 256/384/521). ssh-keygen cannot make a FIDO (sk-)
 * key without a token attached, so those two were assembled from the
 * ed25519 and nistp256 keys above in the sk wire format (type, key,
 * application "ssh:") and checked with `ssh-keygen -l -f`, which accepts
 * them. The broken blobs below were assembled the same way.
 */
#define ED25519_B64                                                            \
  "AAAAC3NzaC1lZDI1NTE5AAAAIIkWlsat2POOFofVeSiV0pyO+A8ispB4N6S6UwzZgFKl"
#define RSA_B64                                                                \
  "AAAAB3NzaC1yc2EAAAADAQABAAABAQDK9YktkJEL0qoistUduROcSs3yQymhrg5ZuOYCwT"     \
  "HMOdupB9nw7fIXfnhPFSxKcC3qWxq1DzQko/+/ffErz37mC4ioNA9fVOcy32NplZRaOziU"     \
  "LCeCRNkHb1BA01Y0TATwo0Ae+3fLwXw7gtTlN2roRpX8WHcF0PPAD5fy0z73K8sNUZTfRr"     \
  "oi+LklEXqkEv57Yf4N6aQTDQzrfSrWFCQDwX7TNwgBza2B3ej76HbIShf8u4Bwt5UTZYLK"     \
  "bYRhF9jAEL20q7qNjyRT4MJ3/Ku3oSIxZ3Coiq/HDUe/QS7zG+oJQIFljUfg5lho57eeOm"     \
  "Ib6jHs3CxB2SKCbgtljHqH"
#define ECDSA256_B64                                                           \
  "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBF8c89kfgeAw2Dp37X"     \
  "aS+drhJk8JczVkbEriZReEdVrrSrFSI9WFKzA1xtOi26kT8aJZkQT8j9F31kvWWgq9UGs="
#define ECDSA384_B64                                                           \
  "AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBArFGUysaMLK9ZwITG"     \
  "826AQC357VTj18KJTthTcYX83/itGaY8GICHtfWT2YWXR2tLAdaS8/amn0bYzZ7LU6Tl36"     \
  "aN732aaYkmJQgNHOON5gyO4VmKaFzWX6S4Uz5KrpBg=="
#define ECDSA521_B64                                                           \
  "AAAAE2VjZHNhLXNoYTItbmlzdHA1MjEAAAAIbmlzdHA1MjEAAACFBAFt8b741Mz4+mX01r"     \
  "1LB9wYSWTOVfnN0Jf2o/aiztDhmirRO36vNxd+IY8sUkgQuKFP6hQu5PObz1aobCPJbjI8"     \
  "SABtSfa1W7yIhIrLNyXBHEASX9CwDMHsntLmDArvoW2eMvB0YmgiW62uTBGW8K7k9cJWqP"     \
  "RtmVqzp5BN+d/OJwD74Q=="
#define SK_ED25519_B64                                                         \
  "AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAIIkWlsat2POOFofVeSiV0pyO+A"     \
  "8ispB4N6S6UwzZgFKlAAAABHNzaDo="
#define SK_ECDSA256_B64                                                        \
  "AAAAInNrLWVjZHNhLXNoYTItbmlzdHAyNTZAb3BlbnNzaC5jb20AAAAIbmlzdHAyNTYAAA"     \
  "BBBF8c89kfgeAw2Dp37XaS+drhJk8JczVkbEriZReEdVrrSrFSI9WFKzA1xtOi26kT8aJZ"     \
  "kQT8j9F31kvWWgq9UGsAAAAEc3NoOg=="
#define ED25519_TRAILING_B64                                                   \
  "AAAAC3NzaC1lZDI1NTE5AAAAIIkWlsat2POOFofVeSiV0pyO+A8ispB4N6S6UwzZgFKlAAA="
#define ED25519_TRUNCATED_B64                                                  \
  "AAAAC3NzaC1lZDI1NTE5AAAAIIkWlsat2POOFofVeSiV0pyO+A8ispB4N6S6Uw=="
#define ED25519_SHORT_PK_B64                                                   \
  "AAAAC3NzaC1lZDI1NTE5AAAAHwEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
#define ECDSA384_WRONG_CURVE_B64                                               \
  "AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAyNTYAAABBBF8c89kfgeAw2Dp37XaS+"  \
  "drhJk8JczVkbEriZReEdVrrSrFSI9WFKzA1xtOi26kT8aJZkQT8j9F31kvWWgq9UGs="
#define ECDSA256_COMPRESSED_B64                                                \
  "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAAAhAhERERERERERERERERERER" \
  "ERERERERERERERERERERER"
#define SK_ED25519_NO_APP_B64                                                  \
  "AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAIAcHBwcHBwcHBwcHBwcHBwcHBwcHBw" \
  "cHBwcHBwcHBwcH"
#define RSA768_B64                                                             \
  "AAAAB3NzaC1yc2EAAAADAQABAAAAYQDFMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMz" \
  "MzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMz" \
  "MzMzMzMzMzM="

#define ED25519 "ssh-ed25519 " ED25519_B64
#define RSA "ssh-rsa " RSA_B64

/* JSON below uses ' for " to stay readable; swapped before parsing. */
static char *unquote(const char *s) {
  char *t = strdup(s);
  assert_non_null(t);
  for (char *c = t; *c; c++)
    if (*c == '\'')
      *c = '"';
  return t;
}

static cJSON *json(const char *squoted) {
  char *text = unquote(squoted);
  char err[IDENTITY_ERR_SIZE];
  cJSON *doc = json_parse_strict(text, strlen(text), err, sizeof err);

  if (doc == NULL)
    fail_msg("bad test JSON (%s): %s", err, text);
  free(text);
  return doc;
}

/* ---- key validation ---------------------------------------------------- */

typedef struct {
  const char *line;
  const char *want; /* normalized form */
} key_ok_t;

static const key_ok_t good_keys[] = {
    {"ssh-ed25519 " ED25519_B64 " alice@laptop",
     "ssh-ed25519 " ED25519_B64 " alice@laptop"},
    {"ssh-rsa " RSA_B64 " bob@ci", "ssh-rsa " RSA_B64 " bob@ci"},
    {"ecdsa-sha2-nistp256 " ECDSA256_B64 " e256",
     "ecdsa-sha2-nistp256 " ECDSA256_B64 " e256"},
    {"ecdsa-sha2-nistp384 " ECDSA384_B64 " e384",
     "ecdsa-sha2-nistp384 " ECDSA384_B64 " e384"},
    {"ecdsa-sha2-nistp521 " ECDSA521_B64 " e521",
     "ecdsa-sha2-nistp521 " ECDSA521_B64 " e521"},
    {"sk-ssh-ed25519@openssh.com " SK_ED25519_B64 " carol@yubikey",
     "sk-ssh-ed25519@openssh.com " SK_ED25519_B64 " carol@yubikey"},
    {"sk-ecdsa-sha2-nistp256@openssh.com " SK_ECDSA256_B64 " dave@yubikey",
     "sk-ecdsa-sha2-nistp256@openssh.com " SK_ECDSA256_B64 " dave@yubikey"},
    /* No comment; surrounding and separating blanks normalized; a comment
     * keeps its inner spaces. */
    {ED25519, ED25519},
    {"  ssh-ed25519\t " ED25519_B64 "  \t", ED25519},
    {"ssh-ed25519 " ED25519_B64 "   Alice's  laptop (2026) ",
     "ssh-ed25519 " ED25519_B64 " Alice's  laptop (2026)"},
    {"ssh-ed25519 " ED25519_B64 " caf\xc3\xa9", /* UTF-8 comment */
     "ssh-ed25519 " ED25519_B64 " caf\xc3\xa9"},
};

static void test_key_accept(void **state) {
  for (size_t i = 0; i < sizeof good_keys / sizeof good_keys[0]; i++) {
    char err[IDENTITY_ERR_SIZE], *out = NULL;
    if (identity_key_normalize(good_keys[i].line, &out, err, sizeof err) != 0)
      fail_msg("case %zu refused: %s", i, err);
    assert_string_equal(out, good_keys[i].want);
    free(out);
  }
}

typedef struct {
  const char *line;
  const char *error; /* the whole message */
} key_bad_t;

static const key_bad_t bad_keys[] = {
    /* empty */
    {"", "empty key"},
    {" \t ", "empty key"},
    /* type */
    {"ssh-foo AAAAC3NzaC1lZDI1NTE5", "unknown key type \"ssh-foo\""},
    {"ssh-dss AAAAB3NzaC1kc3M=", "unknown key type \"ssh-dss\""},
    {"SSH-ED25519 " ED25519_B64, "unknown key type \"SSH-ED25519\""},
    /* the echo is cut at 64 characters */
    {ED25519_B64,
     "unknown key type \"AAAAC3NzaC1lZDI1NTE5AAAAIIkWlsat2POOFofVeSiV0pyO+"
     "A8ispB4N6S6UwzZ...\""},
    {"ssh-ed25519", "no base64 key data after the type"},
    {"ssh-ed25519  \t", "no base64 key data after the type"},
    /* options before the type */
    {"command=\"ls\" " ED25519, "key options before the type (such as "
                                "command=\"...\") are not allowed"},
    {"no-pty " ED25519, "key options before the type (such as "
                        "command=\"...\") are not allowed"},
    {"restrict,pty " ED25519 " x", "key options before the type (such as "
                                   "command=\"...\") are not allowed"},
    {"from=\"10.0.0.1\" ssh-foo AAAA", "key options before the type (such as "
                                       "command=\"...\") are not allowed"},
    /* base64 */
    {"ssh-ed25519 AAAA!AAA", "invalid base64"},
    {"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIkWlsat2POOFofVeSiV0pyO+A8ispB4N6S"
     "6UwzZgFK",
     "invalid base64"}, /* length not a multiple of 4 */
    {"ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAAB"
     "hBArFGUysaMLK9ZwITG826AQC357VTj18KJTthTcYX83/itGaY8GICHtfWT2YWXR2tLAdaS8"
     "/amn0bYzZ7LU6Tl36aN732aaYkmJQgNHOON5gyO4VmKaFzWX6S4Uz5KrpBg",
     "invalid base64"}, /* padding missing */
    {"ssh-ed25519 " ED25519_B64 "=", "invalid base64"},
    {"ssh-ed25519 " ED25519_B64 "xyz! c", "invalid base64"},
    {"ssh-ed25519 AAA=AAAA", "invalid base64"}, /* padding in the middle */
    {"ssh-ed25519 AAB=", "invalid base64"},     /* non-zero unused bits */
    {"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIkWlsat2POOFofVeSiV0pyO+A8ispB4N6S"
     "6Uw\nzZgFKl",
     "contains a control character"},
    /* the blob */
    {"ssh-rsa " ED25519_B64,
     "the key data is of type \"ssh-ed25519\", not \"ssh-rsa\""},
    {"ssh-ed25519 " RSA_B64 " bob",
     "the key data is of type \"ssh-rsa\", not \"ssh-ed25519\""},
    {"ecdsa-sha2-nistp384 " ECDSA256_B64,
     "the key data is of type \"ecdsa-sha2-nistp256\", not "
     "\"ecdsa-sha2-nistp384\""},
    {"sk-ssh-ed25519@openssh.com " ED25519_B64,
     "the key data is of type \"ssh-ed25519\", not "
     "\"sk-ssh-ed25519@openssh.com\""},
    {"ecdsa-sha2-nistp384 " ECDSA384_WRONG_CURVE_B64,
     "key data is for curve \"nistp256\", not the type's \"nistp384\""},
    {"ecdsa-sha2-nistp256 " ECDSA256_COMPRESSED_B64,
     "malformed ecdsa-sha2-nistp256 key data: not an uncompressed nistp256 "
     "point"},
    {"ssh-ed25519 " ED25519_TRAILING_B64,
     "malformed ssh-ed25519 key data: 2 unexpected bytes at the end"},
    {"ssh-ed25519 " ED25519_TRUNCATED_B64, "malformed ssh-ed25519 key data"},
    {"ssh-ed25519 " ED25519_SHORT_PK_B64, "malformed ssh-ed25519 key data"},
    {"ssh-ed25519 AAAA", "malformed ssh-ed25519 key data"},
    {"sk-ssh-ed25519@openssh.com " SK_ED25519_NO_APP_B64,
     "malformed sk-ssh-ed25519@openssh.com key data: no application string"},
    {"ssh-rsa " RSA768_B64, "RSA key of 768 bits, OpenSSH accepts 1024..16384"},
    /* two keys on one line, or a line break: would be a second
     * authorized_keys line */
    {ED25519 "\n" RSA, "contains a control character"},
    {ED25519 " a\rb", "contains a control character"},
    {ED25519 " a\x7f", "contains a control character"},
};

static void test_key_reject(void **state) {
  for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++) {
    char err[IDENTITY_ERR_SIZE], *out = (char *)1;
    if (identity_key_normalize(bad_keys[i].line, &out, err, sizeof err) == 0)
      fail_msg("case %zu accepted: %s", i, bad_keys[i].line);
    assert_null(out);
    if (strcmp(err, bad_keys[i].error) != 0)
      fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, bad_keys[i].error);
  }
}

static void test_key_too_long(void **state) {
  size_t n = IDENTITY_KEY_MAX + 1;
  char *line = malloc(n + 1), err[IDENTITY_ERR_SIZE], *out = NULL;

  assert_non_null(line);
  memcpy(line, ED25519 " ", sizeof(ED25519));
  memset(line + sizeof(ED25519), 'c', n - sizeof(ED25519));
  line[n] = '\0';
  assert_int_equal(identity_key_normalize(line, &out, err, sizeof err), -1);
  assert_string_equal(err, "longer than 16384 bytes");
  /* At the limit it is fine (a long comment). */
  line[n - 1] = '\0';
  assert_int_equal(identity_key_normalize(line, &out, err, sizeof err), 0);
  free(out);
  free(line);
}

/* ---- matching ---------------------------------------------------------- */

typedef struct {
  const char *projects[3]; /* NULL-terminated */
  const char *tags[3];
  int all;
  const char *svc_project;
  const char *svc_tags[4];
  int want;
  const char *why;
} match_case_t;

static size_t count(const char *const *v) {
  size_t n = 0;
  while (n < 3 && v[n] != NULL)
    n++;
  return n;
}

static const match_case_t match_cases[] = {
    /* no restriction */
    {{0}, {0}, 0, "p1", {0}, 1, "open, service without tags"},
    {{0}, {0}, 0, "p2", {"a", "b"}, 1, "open, service with tags"},
    {{0}, {0}, 1, "p1", {0}, 1, "open with matchAllTags, no tags listed"},
    /* project only */
    {{"p1"}, {0}, 0, "p1", {0}, 1, "project listed"},
    {{"p1"}, {0}, 0, "p2", {0}, 0, "project not listed"},
    {{"p1", "p2"}, {0}, 0, "p2", {"a"}, 1, "second project listed"},
    {{"p1"}, {0}, 0, "p10", {0}, 0, "prefix of a project is not it"},
    /* tags, any of */
    {{0}, {"a", "b"}, 0, "p1", {0}, 0, "any-of: service has none"},
    {{0}, {"a", "b"}, 0, "p1", {"c"}, 0, "any-of: 0 of the tags"},
    {{0}, {"a", "b"}, 0, "p1", {"c", "b"}, 1, "any-of: 1 of the tags"},
    {{0}, {"a", "b"}, 0, "p1", {"b", "a"}, 1, "any-of: all of the tags"},
    {{0}, {"a"}, 0, "p1", {"A"}, 0, "tags are case-sensitive"},
    /* tags, all of */
    {{0}, {"a", "b"}, 1, "p1", {0}, 0, "all-of: service has none"},
    {{0}, {"a", "b"}, 1, "p1", {"c"}, 0, "all-of: 0 of the tags"},
    {{0}, {"a", "b"}, 1, "p1", {"a", "c"}, 0, "all-of: some of the tags"},
    {{0}, {"a", "b"}, 1, "p1", {"b", "a"}, 1, "all-of: all of the tags"},
    {{0}, {"a", "b"}, 1, "p1", {"c", "a", "b"}, 1, "all-of: all and more"},
    /* project AND tags */
    {{"p1"}, {"a"}, 0, "p1", {"a"}, 1, "project ok, tags ok"},
    {{"p1"}, {"a"}, 0, "p2", {"a"}, 0, "project wrong, tags ok"},
    {{"p1"}, {"a"}, 0, "p1", {"b"}, 0, "project ok, tags wrong"},
    {{"p1"}, {"a"}, 0, "p2", {"b"}, 0, "both wrong"},
    {{"p1"}, {"a", "b"}, 1, "p1", {"a", "b"}, 1, "project ok, all tags"},
    {{"p1"}, {"a", "b"}, 1, "p1", {"a"}, 0, "project ok, some tags"},
    {{"p1"}, {"a", "b"}, 1, "p2", {"a", "b"}, 0, "project wrong, all tags"},
    {{"p1", "p2"}, {"a", "b"}, 0, "p2", {"b"}, 1, "2nd project, 2nd tag"},
};

static void test_matching(void **state) {
  for (size_t i = 0; i < sizeof match_cases / sizeof match_cases[0]; i++) {
    const match_case_t *c = &match_cases[i];
    identity_t id = {.name = "x",
                     .projects = (char **)c->projects,
                     .nprojects = count(c->projects),
                     .tags = (char **)c->tags,
                     .ntags = count(c->tags),
                     .match_all_tags = c->all};
    size_t nsvc = 0;
    while (nsvc < 4 && c->svc_tags[nsvc] != NULL)
      nsvc++;
    if (identity_matches(&id, c->svc_project, (char *const *)c->svc_tags,
                         nsvc) != c->want)
      fail_msg("case %zu (%s): want %d", i, c->why, c->want);
  }
  /* A project restriction never matches an unknown project. */
  identity_t id = {.name = "x", .projects = (char *[]){"p1"}, .nprojects = 1};
  assert_int_equal(identity_matches(&id, NULL, NULL, 0), 0);
}

/* ---- JSON -------------------------------------------------------------- */

static void test_apply_create(void **state) {
  char err[IDENTITY_ERR_SIZE];
  identity_t id;
  cJSON *body = json("{'name':'alice-laptop','description':'Alice laptop',"
                     "'keys':['  " ED25519 " alice@laptop ','" RSA "'],"
                     "'projects':['p1','p2'],'tags':['prod'],"
                     "'matchAllTags':true}");

  if (identity_apply_json(NULL, body, &id, err, sizeof err) != 0)
    fail_msg("%s", err);
  cJSON_Delete(body);
  assert_null(id.id); /* the edge assigns it */
  assert_string_equal(id.name, "alice-laptop");
  assert_string_equal(id.description, "Alice laptop");
  assert_int_equal(id.nkeys, 2);
  assert_string_equal(id.keys[0], ED25519 " alice@laptop");
  assert_string_equal(id.keys[1], RSA);
  assert_int_equal(id.nprojects, 2);
  assert_string_equal(id.projects[1], "p2");
  assert_int_equal(id.ntags, 1);
  assert_string_equal(id.tags[0], "prod");
  assert_int_equal(id.match_all_tags, 1);
  identity_clear(&id);
  assert_null(id.name);

  /* Defaults. */
  body = json("{'name':'n','keys':['" ED25519 "']}");
  assert_int_equal(identity_apply_json(NULL, body, &id, err, sizeof err), 0);
  cJSON_Delete(body);
  assert_string_equal(id.description, "");
  assert_int_equal(id.nprojects + id.ntags, 0);
  assert_int_equal(id.match_all_tags, 0);
  identity_clear(&id);
}

typedef struct {
  const char *body;
  const char *error;
} body_bad_t;

#define K "'" ED25519 "'"

static const body_bad_t bad_bodies[] = {
    {"[]", "expected an object, got an array"},
    {"{}", "name: required"},
    {"{'keys':[" K "]}", "name: required"},
    {"{'name':'a'}", "keys: required"},
    {"{'name':'a','keys':[]}", "keys: at least one is required"},
    {"{'name':'a','keys':" K "}", "keys: expected an array, got \"ssh-ed25519"},
    {"{'name':'a','keys':[1]}", "keys[0]: expected a string, got 1"},
    {"{'name':'a','keys':[" K ",'ssh-foo AAAA']}",
     "keys[1]: unknown key type \"ssh-foo\""},
    {"{'name':'a','keys':['ssh-ed25519 AAA']}", "keys[0]: invalid base64"},
    {"{'name':'a','keys':[" K ",'" ED25519 " other comment']}",
     "keys[1]: same as keys[0]"},
    {"{'name':'','keys':[" K "]}",
     "name: expected 1..128 characters of [A-Za-z0-9._-], got \"\""},
    {"{'name':'a b','keys':[" K "]}",
     "name: expected 1..128 characters of [A-Za-z0-9._-], got \"a b\""},
    {"{'name':'a/b','keys':[" K "]}", "name: expected 1..128 characters"},
    {"{'name':7,'keys':[" K "]}", "name: expected a string, got 7"},
    {"{'name':'idt-0123456789abcdef','keys':[" K "]}",
     "name: \"idt-0123456789abcdef\" has the form of an identity id (idt-...); "
     "choose another name"},
    {"{'name':'a','keys':[" K "],'description':null}",
     "description: expected a string, got null"},
    {"{'name':'a','keys':[" K "],'description':'a\\nb'}",
     "description: contains a control character"},
    {"{'name':'a','keys':[" K "],'projects':'p1'}",
     "projects: expected an array, got \"p1\""},
    {"{'name':'a','keys':[" K "],'projects':['p 1']}",
     "projects[0]: expected a project id (1..128 characters of "
     "[A-Za-z0-9._-]), got \"p 1\""},
    {"{'name':'a','keys':[" K "],'projects':['p1','p2','p1']}",
     "projects[2]: same as projects[0]"},
    {"{'name':'a','keys':[" K "],'tags':['']}",
     "tags[0]: expected a non-empty string of at most 256 bytes without "
     "control characters, got \"\""},
    {"{'name':'a','keys':[" K "],'tags':['x','x']}",
     "tags[1]: same as tags[0]"},
    {"{'name':'a','keys':[" K "],'tags':[null]}",
     "tags[0]: expected a string, got null"},
    {"{'name':'a','keys':[" K "],'matchAllTags':'yes'}",
     "matchAllTags: expected true or false, got \"yes\""},
    {"{'name':'a','keys':[" K "],'matchAllTags':1}",
     "matchAllTags: expected true or false, got 1"},
    {"{'name':'a','keys':[" K "],'id':'idt-0123456789abcdef'}",
     "unknown field \"id\""},
    {"{'name':'a','keys':[" K "],'createdAt':'x'}",
     "unknown field \"createdAt\""},
    {"{'name':'a','name':'b','keys':[" K "]}", "duplicate field \"name\""},
};

static void test_apply_errors(void **state) {
  for (size_t i = 0; i < sizeof bad_bodies / sizeof bad_bodies[0]; i++) {
    char err[IDENTITY_ERR_SIZE];
    identity_t id;
    cJSON *body = json(bad_bodies[i].body);

    if (identity_apply_json(NULL, body, &id, err, sizeof err) == 0)
      fail_msg("case %zu accepted: %s", i, bad_bodies[i].body);
    cJSON_Delete(body);
    assert_null(id.name);
    assert_null(id.keys);
    if (strncmp(err, bad_bodies[i].error, strlen(bad_bodies[i].error)) != 0)
      fail_msg("case %zu: got \"%s\", want \"%s...\"", i, err,
               bad_bodies[i].error);
  }
}

static void test_description_limit(void **state) {
  char body[1200], desc[1026], err[IDENTITY_ERR_SIZE];
  identity_t id;
  cJSON *doc;

  memset(desc, 'd', 1024);
  desc[1024] = '\0';
  snprintf(body, sizeof body,
           "{\"name\":\"a\",\"keys\":[\"%s\"],\"description\":\"%s\"}", ED25519,
           desc);
  doc = json_parse_strict(body, strlen(body), err, sizeof err);
  assert_non_null(doc);
  assert_int_equal(identity_apply_json(NULL, doc, &id, err, sizeof err), 0);
  assert_int_equal(strlen(id.description), 1024);
  identity_clear(&id);
  cJSON_Delete(doc);

  desc[1024] = 'd';
  desc[1025] = '\0';
  snprintf(body, sizeof body,
           "{\"name\":\"a\",\"keys\":[\"%s\"],\"description\":\"%s\"}", ED25519,
           desc);
  doc = json_parse_strict(body, strlen(body), err, sizeof err);
  assert_non_null(doc);
  assert_int_equal(identity_apply_json(NULL, doc, &id, err, sizeof err), -1);
  assert_string_equal(err, "description: longer than 1024 bytes");
  cJSON_Delete(doc);
}

static identity_t make_identity(const char *squoted_body) {
  char err[IDENTITY_ERR_SIZE];
  identity_t id;
  cJSON *body = json(squoted_body);

  if (identity_apply_json(NULL, body, &id, err, sizeof err) != 0)
    fail_msg("%s", err);
  cJSON_Delete(body);
  id.id = strdup("idt-00112233445566ff");
  id.created_at = 1795608000; /* 2026-11-25T12:00:00Z */
  id.updated_at = 1795608061;
  return id;
}

static void test_apply_patch(void **state) {
  char err[IDENTITY_ERR_SIZE];
  identity_t base = make_identity("{'name':'a','description':'d','keys':[" K
                                  "],'projects':['p1'],'tags':['t']}");
  identity_t out;
  cJSON *body = json("{'tags':['x','y'],'matchAllTags':true}");

  assert_int_equal(identity_apply_json(&base, body, &out, err, sizeof err), 0);
  cJSON_Delete(body);
  /* Given fields replace, the others stay, and so do id and times. */
  assert_string_equal(out.id, base.id);
  assert_int_equal(out.created_at, base.created_at);
  assert_string_equal(out.name, "a");
  assert_string_equal(out.description, "d");
  assert_int_equal(out.nkeys, 1);
  assert_int_equal(out.nprojects, 1);
  assert_int_equal(out.ntags, 2);
  assert_string_equal(out.tags[1], "y");
  assert_int_equal(out.match_all_tags, 1);
  identity_clear(&out);

  /* Empty lists lift a restriction; an empty description clears it. */
  body = json("{'projects':[],'tags':[],'description':''}");
  assert_int_equal(identity_apply_json(&base, body, &out, err, sizeof err), 0);
  cJSON_Delete(body);
  assert_int_equal(out.nprojects + out.ntags, 0);
  assert_null(out.projects);
  assert_string_equal(out.description, "");
  identity_clear(&out);

  /* {} changes nothing. */
  body = json("{}");
  assert_int_equal(identity_apply_json(&base, body, &out, err, sizeof err), 0);
  cJSON_Delete(body);
  assert_string_equal(out.name, "a");
  identity_clear(&out);

  /* A PATCH cannot leave an identity without keys; base is untouched. */
  body = json("{'keys':[]}");
  assert_int_equal(identity_apply_json(&base, body, &out, err, sizeof err), -1);
  cJSON_Delete(body);
  assert_string_equal(err, "keys: at least one is required");
  body = json("{'name':'b','keys':['x']}");
  assert_int_equal(identity_apply_json(&base, body, &out, err, sizeof err), -1);
  cJSON_Delete(body);
  assert_string_equal(err, "keys[0]: unknown key type \"x\"");
  assert_null(out.name);
  assert_string_equal(base.name, "a");
  assert_int_equal(base.nkeys, 1);
  identity_clear(&base);
}

static void test_json_round_trip(void **state) {
  char err[IDENTITY_ERR_SIZE];
  identity_t a = make_identity(
      "{'name':'alice-laptop','description':'Alice\\u00e9 \\\"x\\\"',"
      "'keys':['" ED25519 " alice@laptop','ecdsa-sha2-nistp521 " ECDSA521_B64
      "'],'projects':['p1'],'tags':['prod','eu'],'matchAllTags':true}");
  identity_t b;
  cJSON *doc = identity_to_json(&a);
  char *text1, *text2;

  assert_non_null(doc);
  text1 = cJSON_PrintUnformatted(doc);
  cJSON_Delete(doc);
  assert_non_null(strstr(text1, "\"id\":\"idt-00112233445566ff\""));
  assert_non_null(strstr(text1, "\"createdAt\":\"2026-11-25T12:00:00Z\""));
  assert_non_null(strstr(text1, "\"updatedAt\":\"2026-11-25T12:01:01Z\""));
  assert_non_null(strstr(text1, "\"matchAllTags\":true"));

  doc = json_parse_strict(text1, strlen(text1), err, sizeof err);
  assert_non_null(doc);
  if (identity_from_json(doc, "identities[0]", &b, err, sizeof err) != 0)
    fail_msg("%s", err);
  cJSON_Delete(doc);
  assert_string_equal(b.id, a.id);
  assert_string_equal(b.name, a.name);
  assert_string_equal(b.description, a.description);
  assert_int_equal(b.nkeys, 2);
  assert_string_equal(b.keys[1], a.keys[1]);
  assert_int_equal(b.ntags, 2);
  assert_int_equal(b.match_all_tags, 1);
  assert_int_equal(b.created_at, a.created_at);
  assert_int_equal(b.updated_at, a.updated_at);

  doc = identity_to_json(&b);
  text2 = cJSON_PrintUnformatted(doc);
  cJSON_Delete(doc);
  assert_string_equal(text1, text2);
  free(text1);
  free(text2);

  /* And a deep copy is equal and independent. */
  identity_t c;
  assert_int_equal(identity_copy(&c, &b), 0);
  identity_clear(&b);
  assert_string_equal(c.keys[0], a.keys[0]);
  assert_string_equal(c.tags[1], "eu");
  identity_clear(&c);
  identity_clear(&a);
}

static const body_bad_t bad_stored[] = {
    {"{'name':'a','keys':[" K "],'createdAt':'2026-11-25T12:00:00Z',"
     "'updatedAt':'2026-11-25T12:00:00Z'}",
     "identities[3].id: required"},
    {"{'id':'a b','name':'a','keys':[" K "]}",
     "identities[3].id: expected 1..128 characters"},
    {"{'id':'i','keys':[" K "]}", "identities[3].name: required"},
    {"{'id':'i','name':'a','keys':['x'],'createdAt':'2026-11-25T12:00:00Z',"
     "'updatedAt':'2026-11-25T12:00:00Z'}",
     "identities[3].keys[0]: unknown key type \"x\""},
    {"{'id':'i','name':'a','keys':[" K "],'updatedAt':'2026-11-25T12:00:00Z'}",
     "identities[3].createdAt: required"},
    {"{'id':'i','name':'a','keys':[" K "],'createdAt':'2026-02-30T00:00:00Z',"
     "'updatedAt':'2026-11-25T12:00:00Z'}",
     "identities[3].createdAt: expected a UTC time such as "
     "\"2026-11-25T12:00:00Z\", got \"2026-02-30T00:00:00Z\""},
    {"{'id':'i','name':'a','keys':[" K "],'createdAt':'2026-11-25T12:00:00Z',"
     "'updatedAt':5}",
     "identities[3].updatedAt: expected a UTC time"},
    {"{'id':'i','name':'a','keys':[" K "],'createdAt':'2026-11-25T12:00:00Z',"
     "'updatedAt':'2026-11-25T12:00:00Z','owner':'x'}",
     "identities[3]: unknown field \"owner\""},
};

static void test_from_json_errors(void **state) {
  for (size_t i = 0; i < sizeof bad_stored / sizeof bad_stored[0]; i++) {
    char err[IDENTITY_ERR_SIZE];
    identity_t id;
    cJSON *doc = json(bad_stored[i].body);

    if (identity_from_json(doc, "identities[3]", &id, err, sizeof err) == 0)
      fail_msg("case %zu accepted", i);
    cJSON_Delete(doc);
    assert_null(id.id);
    if (strncmp(err, bad_stored[i].error, strlen(bad_stored[i].error)) != 0)
      fail_msg("case %zu: got \"%s\", want \"%s...\"", i, err,
               bad_stored[i].error);
  }
}

/* ---- authorized_keys --------------------------------------------------- */

static void test_authorized_keys(void **state) {
  identity_t ids[3];
  char *text;
  size_t len = 99;
  char *tags_prod[] = {"prod"};

  ids[0] = make_identity("{'name':'alice','keys':['" ED25519
                         " alice@laptop','" RSA "']}");
  ids[1] =
      make_identity("{'name':'bob','keys':['ecdsa-sha2-nistp256 " ECDSA256_B64
                    "'],'projects':['p2']}");
  ids[2] = make_identity(
      "{'name':'carol','keys':['sk-ssh-ed25519@openssh.com " SK_ED25519_B64
      " carol@yubikey'],'tags':['prod']}");

  text = identity_authorized_keys(ids, 3, "p1", tags_prod, 1, &len);
  assert_non_null(text);
  assert_string_equal(text, ED25519 " alice@laptop\n" RSA " wsmux:alice\n"
                                    "sk-ssh-ed25519@openssh.com " SK_ED25519_B64
                                    " carol@yubikey\n");
  assert_int_equal(len, strlen(text));
  free(text);

  text = identity_authorized_keys(ids, 3, "p2", NULL, 0, &len);
  assert_string_equal(text, ED25519 " alice@laptop\n" RSA " wsmux:alice\n"
                                    "ecdsa-sha2-nistp256 " ECDSA256_B64
                                    " wsmux:bob\n");
  free(text);

  /* Nothing matches: an empty text, not NULL. */
  text = identity_authorized_keys(&ids[1], 1, "p1", NULL, 0, &len);
  assert_string_equal(text, "");
  assert_int_equal(len, 0);
  free(text);
  text = identity_authorized_keys(NULL, 0, "p1", NULL, 0, &len);
  assert_string_equal(text, "");
  free(text);

  for (size_t i = 0; i < 3; i++)
    identity_clear(&ids[i]);
}

/* ---- ids, times, strict JSON ------------------------------------------- */

static void test_ids(void **state) {
  char a[IDENTITY_ID_SIZE], b[IDENTITY_ID_SIZE];

  assert_int_equal(identity_id_generate(a), 0);
  assert_int_equal(identity_id_generate(b), 0);
  assert_int_equal(strlen(a), 20);
  assert_int_equal(strncmp(a, "idt-", 4), 0);
  assert_true(identity_id_is_generated(a));
  assert_true(id_valid(a));
  assert_string_not_equal(a, b);
  assert_false(identity_id_is_generated("idt-0123456789ABCDEF"));
  assert_false(identity_id_is_generated("idt-0123456789abcde"));
  assert_false(identity_id_is_generated("idt-0123456789abcdef0"));
  assert_false(identity_id_is_generated("idx-0123456789abcdef"));
  assert_false(identity_id_is_generated("alice"));

  char name[130];
  memset(name, 'n', 128);
  name[128] = '\0';
  assert_true(id_valid(name));
  name[128] = 'n';
  name[129] = '\0';
  assert_false(id_valid(name));
  assert_false(id_valid(""));
  assert_false(id_valid(NULL));
  assert_true(id_valid("a.b_c-D9"));
  assert_false(id_valid("a@b"));
}

static void test_times(void **state) {
  char buf[IDENTITY_TIME_SIZE];
  int64_t t = -1;

  assert_int_equal(identity_time_format(0, buf), 0);
  assert_string_equal(buf, "1970-01-01T00:00:00Z");
  assert_int_equal(identity_time_format(1795608000, buf), 0);
  assert_string_equal(buf, "2026-11-25T12:00:00Z");
  assert_int_equal(identity_time_parse("2026-11-25T12:00:00Z", &t), 0);
  assert_int_equal(t, 1795608000);
  assert_int_equal(identity_time_parse("2024-02-29T23:59:59Z", &t), 0);

  static const char *const bad[] = {
      "",
      "2026-11-25",
      "2026-11-25T12:00:00",
      "2026-11-25T12:00:00+00:00",
      "2026-11-25 12:00:00Z",
      "2026-11-25T12:00:00.5Z",
      "2025-02-29T00:00:00Z",
      "2026-13-01T00:00:00Z",
      "2026-11-25T24:00:00Z",
      "2026-1a-25T12:00:00Z",
      "+026-11-25T12:00:00Z",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (identity_time_parse(bad[i], &t) == 0)
      fail_msg("accepted time \"%s\"", bad[i]);
}

static void test_json_parse(void **state) {
  char err[IDENTITY_ERR_SIZE];
  cJSON *doc;

  doc = json_parse_strict("{\"a\":1} \n", 9, err, sizeof err);
  assert_non_null(doc);
  cJSON_Delete(doc);
  /* Not NUL-terminated: only len bytes are read. */
  doc = json_parse_strict("[1]xyz", 3, err, sizeof err);
  assert_non_null(doc);
  cJSON_Delete(doc);

  assert_null(json_parse_strict("", 0, err, sizeof err));
  assert_string_equal(err, "invalid JSON at byte offset 0");
  assert_null(json_parse_strict("{\"a\": }", 7, err, sizeof err));
  assert_string_equal(err, "invalid JSON at byte offset 6");
  assert_null(json_parse_strict("{} x", 4, err, sizeof err));
  assert_string_equal(err,
                      "invalid JSON at byte offset 3: data after the document");
  assert_null(json_parse_strict("[\"a\\u0000\"]", 11, err, sizeof err));
  assert_string_equal(err,
                      "invalid JSON at byte offset 3: \\u0000 is not allowed");
  doc = json_parse_strict("[\"a\\\\u0000\"]", 12, err, sizeof err);
  assert_non_null(doc);
  cJSON_Delete(doc);
}

static void test_quote(void **state) {
  char q[80];
  char long_s[100];

  text_quote(q, sizeof q, "a\"b\nc");
  assert_string_equal(q, "\"a?b?c\"");
  memset(long_s, 'x', 99);
  long_s[99] = '\0';
  text_quote(q, sizeof q, long_s);
  assert_int_equal(strlen(q), 64 + 3 + 2);
  text_quote(q, 4, "abcdef"); /* cut, never overrun */
  assert_int_equal(strlen(q), 3);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_key_accept),
      cmocka_unit_test(test_key_reject),
      cmocka_unit_test(test_key_too_long),
      cmocka_unit_test(test_matching),
      cmocka_unit_test(test_apply_create),
      cmocka_unit_test(test_apply_errors),
      cmocka_unit_test(test_description_limit),
      cmocka_unit_test(test_apply_patch),
      cmocka_unit_test(test_json_round_trip),
      cmocka_unit_test(test_from_json_errors),
      cmocka_unit_test(test_authorized_keys),
      cmocka_unit_test(test_ids),
      cmocka_unit_test(test_times),
      cmocka_unit_test(test_json_parse),
      cmocka_unit_test(test_quote),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
