/*
 * libFuzzer target for the two files the edge reads at start-up: the edge
 * config (platform_parse, edge/platform.c) and the state file
 * (state_parse, edge/state.c, with identity.c's JSON and key checks).
 * Both parsers work from memory, so nothing touches the disk.
 *
 * Input layout: the whole input is one document, given to both parsers
 * (a config rarely parses as a state file and the other way round; the
 * corpus holds both kinds). platform_parse resolves relative TLS and state
 * paths against a fixed base directory.
 *
 * Oracles:
 *   - failure: no result, and a one-line, printable, NUL-terminated message
 *     (it is logged and shown to operators); the same failure with a tiny
 *     error buffer stays inside it;
 *   - platform success: every documented bound holds (ids, ranges, TLS xor
 *     plainWs, upstream for services, projects referenced exist, ids
 *     unique, the state path absolute, metricsListen numeric and apart
 *     from listen), and lookups find every service;
 *   - state success: serialize, parse back and serialize again gives the
 *     same bytes (what the edge writes it can read);
 *   - an accepted document is valid UTF-8 (every string and key is
 *     checked, and the rest of JSON is ASCII);
 *   - token roles: admin or member (admin when not given), and a token's
 *     projects are among the config's;
 *   - an accepted document holds no NUL byte and no \u escape that cJSON
 *     decodes to U+0000 ("\u0000", and any escape not followed by four hex
 *     digits, which cJSON 1.7 reads as 0): cJSON would silently cut the
 *     string there;
 *   - no leaks (LeakSanitizer).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/check.h"
#include "base/id.h"
#include "base/text.h"
#include "edge/identity.h"
#include "edge/platform.h"
#include "edge/state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BASE_DIR "/etc/wsmux"
#define ERR_SIZE 512
#define TINY_ERR 7

static void check_message(const char *err, size_t errlen) {
  size_t n = strnlen(err, errlen);

  CHECK(n > 0 && n < errlen);
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)err[i] < 0x20 || err[i] == 0x7f) {
      fprintf(stderr, "control byte 0x%02x in message: %s\n",
              (unsigned char)err[i], err);
      abort();
    }
}

/* Whether cJSON would decode a NUL somewhere in the document: a raw NUL,
 * or a \u escape (after an odd number of backslashes) that is "0000" or
 * not four hex digits. */
static int has_nul(const uint8_t *d, size_t n) {
  for (size_t i = 0; i < n; i++) {
    size_t nbs = 0;
    if (d[i] == 0)
      return 1;
    if (d[i] != 'u')
      continue;
    while (nbs < i && d[i - 1 - nbs] == '\\')
      nbs++;
    if (nbs % 2 == 0)
      continue;
    if (i + 5 > n || memcmp(d + i + 1, "0000", 4) == 0)
      return 1;
    for (size_t k = 1; k <= 4; k++)
      if (!isxdigit(d[i + k]))
        return 1;
  }
  return 0;
}

static int id_ok(const char *s) {
  return s != NULL && id_valid(s);
}

static void check_platform(const platform_t *p) {
  CHECK(p->listen_host != NULL && p->state_file != NULL);
  CHECK(p->state_file[0] == '/');
  CHECK(p->plain_ws ? p->tls_cert == NULL && p->tls_key == NULL
                    : p->tls_cert != NULL && p->tls_key != NULL);
  if (!p->plain_ws)
    CHECK(p->tls_cert[0] == '/' && p->tls_key[0] == '/');
  CHECK(p->window >= 16384 && p->window <= 16777216);
  CHECK(p->max_streams >= 1 && p->max_streams <= 1000000);
  CHECK(p->connect_timeout_ms >= 100 && p->connect_timeout_ms <= 600000);
  if (p->metrics_host != NULL) {
    struct in6_addr a;
    CHECK(inet_pton(AF_INET, p->metrics_host, &a) == 1 ||
          inet_pton(AF_INET6, p->metrics_host, &a) == 1);
    CHECK(p->metrics_port == 0 || p->metrics_port != p->listen_port ||
          strcmp(p->metrics_host, p->listen_host) != 0);
  }
  for (size_t i = 0; i < p->ntokens; i++) {
    const platform_token_t *t = &p->tokens[i];
    CHECK(id_ok(t->id));
    CHECK(t->role == PLATFORM_ROLE_ADMIN || t->role == PLATFORM_ROLE_MEMBER);
    CHECK(!t->role_default || t->role == PLATFORM_ROLE_ADMIN);
    CHECK(t->nprojects == 0 || t->projects != NULL);
    for (size_t j = 0; j < t->nprojects; j++)
      CHECK(platform_find_project(p, t->projects[j]) != NULL &&
            platform_token_has_project(t, t->projects[j]));
    for (size_t j = 0; j < i; j++) {
      CHECK(strcmp(p->tokens[i].id, p->tokens[j].id) != 0);
      CHECK(memcmp(p->tokens[i].sha256, p->tokens[j].sha256, 32) != 0);
    }
  }
  for (size_t i = 0; i < p->nprojects; i++) {
    CHECK(id_ok(p->projects[i].id) && p->projects[i].name != NULL);
    CHECK(platform_find_project(p, p->projects[i].id) == &p->projects[i]);
  }
  for (size_t i = 0; i < p->nservices; i++) {
    const platform_service_t *s = &p->services[i];
    CHECK(id_ok(s->id) && id_ok(s->project_id) && s->name != NULL);
    CHECK(platform_find_project(p, s->project_id) != NULL);
    CHECK(platform_find_service(p, s->project_id, s->id) == s);
    CHECK(s->ntags == 0 || s->tags != NULL);
    for (size_t j = 0; j < s->ntags; j++)
      CHECK(s->tags[j] != NULL && s->tags[j][0] != '\0');
    if (s->kind == PLATFORM_KIND_SERVICE)
      CHECK(s->upstream_host != NULL && s->upstream_port != 0);
  }
}

static void check_state_roundtrip(const state_t *s) {
  size_t len = 0, len2 = 0;
  char *text = state_serialize(s, &len), *text2, err[IDENTITY_ERR_SIZE];
  state_t *back = NULL;

  CHECK(text != NULL);
  if (state_parse(text, len, &back, err, sizeof err) != 0) {
    fprintf(stderr, "serialized state does not parse: %s\n%s", err, text);
    abort();
  }
  CHECK(back->nidentities == s->nidentities && back->nssh == s->nssh);
  text2 = state_serialize(back, &len2);
  CHECK(text2 != NULL);
  if (len != len2 || memcmp(text, text2, len) != 0) {
    fprintf(stderr, "state changes on reload:\n%s---\n%s", text, text2);
    abort();
  }
  free(text);
  free(text2);
  state_free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* Exactly size bytes on the heap, so reads past the end are caught. */
  char *text = size > 0 ? malloc(size) : NULL;
  char err[ERR_SIZE], tiny[TINY_ERR + 1];
  platform_t *p = (platform_t *)1;
  state_t *s = (state_t *)1;
  int nul = has_nul(data, size);
  /* JSON's structure is ASCII and every string is checked: a document
   * that is accepted is valid UTF-8 as a whole. */
  int utf8 = text_utf8_valid((const char *)data, size);

  if (size > 0) {
    CHECK(text != NULL);
    memcpy(text, data, size);
  }

  memset(err, 'x', sizeof err);
  if (platform_parse(text, size, BASE_DIR, &p, err, sizeof err) == 0) {
    CHECK(p != NULL);
    CHECK(!nul && utf8);
    check_platform(p);
    platform_free(p);
  } else {
    CHECK(p == NULL);
    check_message(err, sizeof err);
    memset(tiny, 'x', sizeof tiny);
    CHECK(platform_parse(text, size, BASE_DIR, &p, tiny, TINY_ERR) != 0);
    CHECK(p == NULL && tiny[TINY_ERR] == 'x');
    CHECK(strnlen(tiny, TINY_ERR) < TINY_ERR);
  }

  memset(err, 'x', sizeof err);
  if (state_parse(text, size, &s, err, sizeof err) == 0) {
    CHECK(s != NULL);
    CHECK(!nul && utf8);
    check_state_roundtrip(s);
    state_free(s);
  } else {
    CHECK(s == NULL);
    check_message(err, sizeof err);
    memset(tiny, 'x', sizeof tiny);
    CHECK(state_parse(text, size, &s, tiny, TINY_ERR) != 0);
    CHECK(s == NULL && tiny[TINY_ERR] == 'x');
    CHECK(strnlen(tiny, TINY_ERR) < TINY_ERR);
  }
  free(text);
  return 0;
}
