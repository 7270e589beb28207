/*
 * libFuzzer target for the admin API router (edge/admin.c, with
 * identity.c, state.c, platform.c and the file store compiled in):
 * admin_handle() over a fixed platform and state, requests taken from the
 * input. This exercises
 * routing, identity JSON parsing and validation (identity_apply_json) and
 * OpenSSH key validation (identity_key_normalize).
 *
 * Input layout: requests separated by the 4 bytes "\n@@\n". Each request
 * is
 *
 *   FLAGS METHOD ' ' PATH '\n' BODY
 *
 * FLAGS is one byte: bit 0 sends a wrong bearer token; bits 1-2 make the
 * state save fail (1) or report an unsynced directory (2); bit 3 makes the
 * clock return a time that cannot be formatted; bit 4 passes a NULL body
 * when BODY is empty; bits 6-7 choose the token: 0 "ci" (admin), 1
 * "member", 2 "deploy" (admin of project p2), 3 "viewer" (member of p1).
 * ASCII '0' (0x30) is a plain request with the admin token ('p', 0x70, the
 * same as "member"). METHOD and PATH end at the first ' ' and '\n' (or
 * NUL); BODY is the rest, any bytes.
 *
 * Each input starts from the same platform (an edge config parsed once) and
 * a clone of the same state (two identities, one SSH switch), so runs do
 * not depend on each other.
 *
 * No disk: the file store's calls to state_save() and admin.c's to
 * identity_id_generate() are redirected at link time (-Wl,--wrap, see
 * CMakeLists.txt) to the wrappers below. The save wrapper checks that the state
 * about to be written serializes, parses back with state_parse() (what the next
 * start-up would do) and serializes again to the same bytes; the id wrapper
 * hands out predictable ids (so inputs can name them, and reproduce).
 *
 * Oracles: exactly one reply per request, before admin_handle() returns
 * (the file store answers at once), with one of the documented codes; JSON
 * bodies parse and are NUL-free with the stated length; an authorized-keys body
 * is lines that each validate again as an OpenSSH key (no options injected);
 * the platform's SSH switches agree with the state after every request; no
 * leaks (LeakSanitizer).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/check.h"
#include "edge/admin.h"
#include "edge/identity.h"
#include "edge/platform.h"
#include "edge/state.h"
#include "edge/store.h"

#include <uv.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
state_save_result_t __wrap_state_save(const state_t *s, const char *path,
                                      char *err, size_t errlen);
int __wrap_identity_id_generate(char out[IDENTITY_ID_SIZE]);

#define TOKEN "secret"
#define SECRET_HEX                                                             \
  "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
#define KEY1                                                                   \
  "ssh-ed25519 "                                                               \
  "AAAAC3NzaC1lZDI1NTE5AAAAIIkWlsat2POOFofVeSiV0pyO+A8ispB4N6S6UwzZgFKl"
#define KEY2                                                                   \
  "ecdsa-sha2-nistp256 "                                                       \
  "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBF8c89kfgeAw2Dp37XaS+"  \
  "drhJk8JczVkbEriZReEdVrrSrFSI9WFKzA1xtOi26kT8aJZkQT8j9F31kvWWgq9UGs="
#define T0 1795608000 /* 2026-11-25T12:00:00Z */
/* SHA-256 of the tokens "member", "deploy" and "viewer". */
#define MEMBER_HEX                                                             \
  "e31ab643c44f7a0ec824b59d1194d60dac334200d845e61d2d289daa0f087ea4"
#define DEPLOY_HEX                                                             \
  "b7bd55c11b781b0ccc43aa6e57f9dadf0660e9d1d4e27e0979ee43a407d454ae"
#define VIEWER_HEX                                                             \
  "d35ca5051b82ffc326a3b0b6574a9a3161dee16b9478a199ee39cd803ce5b799"
#define MAX_REQUESTS 64

/* The state file path does not exist, so even an unwrapped save could not
 * write anything. */
static const char config[] =
    "{\"listen\":\"127.0.0.1:0\",\"plainWs\":true,"
    "\"stateFile\":\"/nonexistent/wsmux-fuzz/state.json\","
    "\"auditFile\":\"/nonexistent/wsmux-fuzz/audit.jsonl\","
    "\"tokens\":[{\"id\":\"ci\",\"sha256\":\"" SECRET_HEX "\"},"
    "{\"id\":\"member\",\"sha256\":\"" MEMBER_HEX "\",\"role\":\"member\"},"
    "{\"id\":\"deploy\",\"sha256\":\"" DEPLOY_HEX "\",\"role\":\"admin\","
    "\"projects\":[\"p2\"]},"
    "{\"id\":\"viewer\",\"sha256\":\"" VIEWER_HEX "\",\"role\":\"member\","
    "\"projects\":[\"p1\"]}],"
    "\"projects\":[{\"id\":\"p1\",\"name\":\"Demo\"},{\"id\":\"p2\"}],"
    "\"services\":["
    "{\"id\":\"web\",\"projectId\":\"p1\",\"name\":\"Web\","
    "\"tags\":[\"prod\",\"eu\"],\"sshEnabled\":true,"
    "\"upstream\":\"10.0.0.5:22\"},"
    "{\"id\":\"db\",\"projectId\":\"p1\",\"tags\":[\"prod\"],"
    "\"upstream\":\"10.0.0.6:22\"},"
    "{\"id\":\"cron\",\"projectId\":\"p1\",\"kind\":\"job\","
    "\"sshEnabled\":true},"
    "{\"id\":\"web\",\"projectId\":\"p2\",\"sshEnabled\":true,"
    "\"upstream\":\"h:22\"}]}";

/* A state file as an older edge or an operator may have written it: the
 * second identity's id is not of the generated form, which the parser
 * accepts. */
static const char state_text[] =
    "{\"version\":1,\"identities\":["
    "{\"id\":\"idt-0000000000000001\",\"name\":\"alice\",\"description\":"
    "\"Alice's laptop\",\"keys\":[\"" KEY1 "\"],\"projects\":[\"p1\"],"
    "\"tags\":[\"prod\",\"eu\"],\"matchAllTags\":true,"
    "\"createdAt\":\"2026-11-25T12:00:00Z\","
    "\"updatedAt\":\"2026-11-25T12:00:00Z\"},"
    "{\"id\":\"legacy-bob\",\"name\":\"bob\",\"keys\":[\"" KEY2 " bob@ci\"],"
    "\"createdAt\":\"2026-11-25T12:00:00Z\","
    "\"updatedAt\":\"2026-11-25T12:00:00Z\"}],"
    "\"services\":[{\"projectId\":\"p1\",\"serviceId\":\"db\","
    "\"sshEnabled\":true}]}";

static platform_t *platform;
static uv_loop_t loop;  /* the store's clock; never run */
static int *config_ssh; /* each service's ssh_enabled as configured */
static state_t *base_state;

/* Per request, set from FLAGS. */
static int save_mode;
static int weird_clock;
static uint64_t next_id;
static int64_t clock_now;

/* ---- wrappers ---------------------------------------------------------- */

state_save_result_t __wrap_state_save(const state_t *s, const char *path,
                                      char *err, size_t errlen) {
  size_t len = 0, len2 = 0;
  char *text = state_serialize(s, &len), *text2, perr[IDENTITY_ERR_SIZE];
  state_t *back = NULL;

  CHECK(path != NULL);
  CHECK(text != NULL && strlen(text) == len);
  if (state_parse(text, len, &back, perr, sizeof perr) != 0) {
    fprintf(stderr, "the saved state would not load: %s\n%s", perr, text);
    abort();
  }
  text2 = state_serialize(back, &len2);
  CHECK(text2 != NULL);
  if (len != len2 || memcmp(text, text2, len) != 0) {
    fprintf(stderr, "state changes on reload:\n%s---\n%s", text, text2);
    abort();
  }
  free(text);
  free(text2);
  state_free(back);
  switch (save_mode) {
  case 1:
    snprintf(err, errlen, "cannot write %s: fuzz: no space left", path);
    return STATE_SAVE_FAILED;
  case 2:
    snprintf(err, errlen, "%s was written but fuzz skipped the sync", path);
    return STATE_SAVE_NOT_SYNCED;
  default:
    return STATE_SAVE_OK;
  }
}

/* Predictable: idt-0000000000000001 is already taken by the base state,
 * so the first POST also walks admin.c's retry loop. */
int __wrap_identity_id_generate(char out[IDENTITY_ID_SIZE]) {
  snprintf(out, IDENTITY_ID_SIZE, IDENTITY_ID_PREFIX "%016llx",
           (unsigned long long)next_id++);
  return 0;
}

/* ---- hooks ------------------------------------------------------------- */

static void on_disabled(void *ctx, const platform_service_t *svc) {
  CHECK(svc >= platform->services &&
        svc < platform->services + platform->nservices);
  CHECK(!svc->ssh_enabled);
}

static void on_warn(void *ctx, const char *msg) {
  CHECK(msg != NULL && msg[0] != '\0');
}

/* What the edge does when the view changes: the switches apply. */
static void on_changed(void *ctx, const state_t *before, const state_t *after) {
  CHECK(before != NULL && after != NULL);
  state_apply(after, platform);
}

static int64_t fake_now(void *ctx) {
  /* Beyond year 9999, and before year 0: identity_time_format refuses. */
  static const int64_t weird[] = {INT64_MAX, 253402300800, -62167219201,
                                  INT64_MIN};
  if (weird_clock)
    return weird[clock_now++ & 3];
  return T0 + clock_now++;
}

/* ---- checks ------------------------------------------------------------ */

static void check_json_body(const admin_response_t *r) {
  cJSON *doc;

  CHECK(r->body != NULL && r->body_len > 0);
  CHECK(strlen(r->body) == r->body_len);
  CHECK(r->body[r->body_len - 1] == '\n');
  doc = cJSON_ParseWithLength(r->body, r->body_len);
  CHECK(doc != NULL);
  if (r->status >= 400) {
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(doc, "error");
    CHECK(cJSON_IsString(e));
    for (const char *c = e->valuestring; *c; c++)
      CHECK((unsigned char)*c >= 0x20 && *c != 0x7f);
  }
  cJSON_Delete(doc);
}

/* Every line must be an OpenSSH key again: nothing else reaches sshd. */
static void check_authorized_keys(const admin_response_t *r) {
  char *copy, *line, *save = NULL, err[IDENTITY_ERR_SIZE];

  CHECK(r->body != NULL && strlen(r->body) == r->body_len);
  if (r->body_len == 0)
    return;
  CHECK(r->body[r->body_len - 1] == '\n');
  copy = strdup(r->body);
  CHECK(copy != NULL);
  for (line = strtok_r(copy, "\n", &save); line != NULL;
       line = strtok_r(NULL, "\n", &save)) {
    char *norm = NULL;
    if (identity_key_normalize(line, &norm, err, sizeof err) != 0) {
      fprintf(stderr, "authorized_keys line is not a key (%s): %s\n", err,
              line);
      abort();
    }
    CHECK(strcmp(norm, line) == 0);
    free(norm);
  }
  free(copy);
}

static void check_response(const admin_response_t *r) {
  int status = r->status;
  switch (status) {
  case 200:
  case 201:
  case 400:
  case 401:
  case 403:
  case 404:
  case 405:
  case 409:
  case 413:
  case 500:
    break;
  case 204:
    CHECK(r->body == NULL && r->content_type == NULL);
    return;
  default:
    fprintf(stderr, "unexpected status %d\n", status);
    abort();
  }
  if (r->content_type != NULL && strcmp(r->content_type, ADMIN_TYPE_JSON) == 0)
    check_json_body(r);
  else if (r->content_type != NULL)
    check_authorized_keys(r);
  else
    CHECK(status == 500 && r->body == NULL);
}

static void check_switches(const store_t *store) {
  const state_t *st = store_view(store);

  for (size_t i = 0; i < platform->nservices; i++) {
    const platform_service_t *svc = &platform->services[i];
    const state_ssh_t *w = state_find_ssh(st, svc->project_id, svc->id);
    CHECK(svc->ssh_enabled == (w != NULL ? w->ssh_enabled : config_ssh[i]));
  }
}

/* ---- driver ------------------------------------------------------------ */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  char err[512];

  if (platform_parse(config, sizeof config - 1, NULL, &platform, err,
                     sizeof err) != 0 ||
      state_parse(state_text, sizeof state_text - 1, &base_state, err,
                  sizeof err) != 0) {
    fprintf(stderr, "fuzz_admin: bad built-in config or state: %s\n", err);
    abort();
  }
  config_ssh = calloc(platform->nservices, sizeof *config_ssh);
  CHECK(config_ssh != NULL);
  for (size_t i = 0; i < platform->nservices; i++)
    config_ssh[i] = platform->services[i].ssh_enabled;
  CHECK(uv_loop_init(&loop) == 0);
  /* OpenSSL's one-time set-up (digest tables) outside any input. */
  CHECK(platform_find_token(platform, TOKEN, strlen(TOKEN)) != NULL);
  return 0;
}

static const uint8_t *find_delim(const uint8_t *p, const uint8_t *end) {
  static const char delim[] = "\n@@\n";
  for (; end - p >= 4; p++)
    if (memcmp(p, delim, 4) == 0)
      return p;
  return end;
}

/* Up to the first stop byte (or NUL, or end) as a C string. */
static char *take_word(const uint8_t **p, const uint8_t *end, char stop) {
  const uint8_t *s = *p;
  char *w;

  while (*p < end && **p != (uint8_t)stop && **p != '\0')
    (*p)++;
  w = malloc((size_t)(*p - s) + 1);
  CHECK(w != NULL);
  memcpy(w, s, (size_t)(*p - s));
  w[*p - s] = '\0';
  if (*p < end)
    (*p)++;
  return w;
}

typedef struct {
  admin_response_t resp;
  int replies;
} reply_t;

static void on_reply(void *ctx, admin_response_t *r) {
  reply_t *got = ctx;
  got->replies++;
  got->resp = *r;
  r->body = NULL;
}

static void one_request(admin_t *a, store_t *store, const uint8_t *p,
                        const uint8_t *end) {
  reply_t got = {0};
  uint8_t flags = p < end ? *p++ : '0';
  char *method = take_word(&p, end, ' ');
  char *path = take_word(&p, end, '\n');
  size_t len = (size_t)(end - p);
  /* A copy of exactly len bytes, so reads past the body are caught. */
  char *body = len > 0 ? malloc(len) : NULL;
  if (len > 0) {
    CHECK(body != NULL);
    memcpy(body, p, len);
  } else if (!(flags & 0x10)) {
    body = malloc(1); /* an empty, non-NULL body */
    CHECK(body != NULL);
  }
  save_mode = (flags >> 1) & 3;
  weird_clock = (flags >> 3) & 1;
  static const char *const as[] = {TOKEN, "member", "deploy", "viewer"};
  int who = (flags >> 6) & 3;
  admin_request_t req = {.method = method,
                         .path = path,
                         .bearer = flags & 1 ? "wrong-token" : as[who],
                         .body = body,
                         .len = len};
  size_t before = store_view(store)->nidentities;
  admin_handle(a, &req, on_reply, &got);
  CHECK(got.replies == 1);
  check_response(&got.resp);
  if (flags & 1)
    CHECK(got.resp.status == 401);
  /* Roles: only "ci" is an admin of every project; a member never
   * changes anything. */
  if (who == 0)
    CHECK(got.resp.status != 403);
  if (!(flags & 1) && (who == 1 || who == 3) && strcmp(method, "GET") != 0) {
    CHECK(got.resp.status >= 400);
    CHECK(store_view(store)->nidentities == before);
  }
  admin_response_clear(&got.resp);
  CHECK(got.resp.body == NULL && got.resp.status == 0);
  check_switches(store);
  free(body);
  free(method);
  free(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  admin_hooks_t hooks = {
      .ssh_disabled = on_disabled, .now = fake_now, .ctx = NULL};
  store_hooks_t sh = {.changed = on_changed, .warn = on_warn};
  store_config_t cfg = {.state_file = platform->state_file,
                        .audit_file = platform->audit_file,
                        .initial = state_clone(base_state)};
  const uint8_t *p = data, *end = data + size;
  char err[512];
  admin_t *a;
  store_t *store;

  next_id = 1;
  clock_now = 0;
  CHECK(cfg.initial != NULL);
  store = store_open_file(&loop, &cfg, &sh, NULL, err, sizeof err);
  CHECK(store != NULL);
  state_apply(store_view(store), platform);
  a = admin_new(platform, store, &hooks);
  CHECK(a != NULL);
  check_switches(store);
  for (int n = 0; n < MAX_REQUESTS && p < end; n++) {
    const uint8_t *stop = find_delim(p, end);
    one_request(a, store, p, stop);
    p = stop < end ? stop + 4 : end;
  }
  admin_free(a);
  store_close(store);
  return 0;
}
