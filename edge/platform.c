/* Platform model: config parsing and access checks. See platform.h and
 * docs/EDGE_CONFIG.md. */
#include "edge/platform.h"

#include "base/file.h"
#include "base/cidr.h"
#include "base/id.h"
#include "base/json.h"
#include "base/text.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PLATFORM_FILE_MAX (16u << 20)
#define PLATFORM_TEXT_MAX 256
#define PLATFORM_PATH_MAX 4096
#define PLATFORM_HOST_MAX 253
/* Longest JSON path we build: "services[N].tags[M]" plus a key. */
#define PATH_BUF 96

#define WINDOW_DEFAULT 131072
#define WINDOW_MIN 16384
#define WINDOW_MAX 16777216
#define STREAMS_DEFAULT 1024
#define STREAMS_MIN 1
#define STREAMS_MAX 1000000
#define CONNECT_DEFAULT 10000
#define CONNECT_MIN 100
#define CONNECT_MAX 600000
#define CONNS_PER_TOKEN_DEFAULT 64
#define CONNS_PER_TOKEN_MIN 1
#define CONNS_PER_TOKEN_MAX 100000
/* Streams (upstream sockets) of one token over all its sessions, held
 * ones included: one token cannot take every descriptor. */
#define STREAMS_PER_TOKEN_DEFAULT 4096
/* Descriptors kept free for new WebSockets, API requests and the store:
 * an OPEN that would eat into them is refused with LIMIT. */
#define FD_RESERVE_DEFAULT 128
#define FD_RESERVE_MIN 16
#define FD_RESERVE_MAX 100000
#define HANDSHAKE_DEFAULT 10000
/* Connections whose request is not authorized yet (a slow or idle client,
 * or one without a token): in all, and per client address. */
#define UNAUTH_DEFAULT 1024
#define UNAUTH_MIN 1
#define UNAUTH_MAX 1000000
#define UNAUTH_ADDR_DEFAULT 64
#define HANDSHAKE_MIN 1000
#define HANDSHAKE_MAX 120000
#define PING_DEFAULT 5000
#define PING_MIN 500
#define PING_MAX 60000
#define DEAD_DEFAULT 15000
#define DEAD_MIN 1000
#define DEAD_MAX 300000
#define RESUME_DEFAULT 60000
#define RESUME_MIN 0
#define RESUME_MAX 3600000
#define DRAIN_DEFAULT 30000
#define DRAIN_MIN 0
#define DRAIN_MAX 3600000
/* Next to the config unless "stateFile" says otherwise. */
#define STATE_FILE_DEFAULT "wsmux-edge-state.json"
#define AUDIT_FILE_DEFAULT "wsmux-edge-audit.jsonl"
#define DSN_FILE_MAX 4096
/* How long a view may serve new WebSockets while the database is away. */
#define STALE_DEFAULT 300000
#define STALE_MIN 0
#define STALE_MAX 86400000
#define STORE_CONNECT_DEFAULT 5000
#define STORE_QUERY_DEFAULT 5000
#define STORE_TIMEOUT_MIN 100
#define STORE_TIMEOUT_MAX 600000

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF_LIKE(f, a)
#endif

typedef struct {
  char *err;
  size_t errlen;
  const char *base_dir;
} parse_ctx_t;

/* Sorting keys find duplicates and resolve projectId in O(n log n), so a
 * large generated config does not take quadratic time to load. */
typedef struct {
  const void *a; /* id, project id, or 32-byte hash */
  const char *b; /* service id, else NULL */
  size_t idx;
} sort_key_t;

typedef int (*key_cmp_fn)(const sort_key_t *x, const sort_key_t *y);

/* At most 32 keys per list: json_check_object tracks them in a uint32_t. */
static const char *const root_keys[] = {"listen",
                                        "tls",
                                        "plainWs",
                                        "windowBytes",
                                        "maxStreams",
                                        "connectTimeoutMs",
                                        "maxConnectionsPerToken",
                                        "maxStreamsPerToken",
                                        "fdReserve",
                                        "handshakeTimeoutMs",
                                        "maxUnauthenticated",
                                        "maxUnauthenticatedPerAddress",
                                        "pingIntervalMs",
                                        "deadTimeoutMs",
                                        "resumeGraceMs",
                                        "drainTimeoutMs",
                                        "tokens",
                                        "projects",
                                        "services",
                                        "stateFile",
                                        "auditFile",
                                        "store",
                                        "nodeId",
                                        "trustedProxies",
                                        "metricsListen",
                                        "console",
                                        NULL};
static const char *const store_keys[] = {
    "postgres", "maxStaleMs", "connectTimeoutMs", "queryTimeoutMs", NULL};
static const char *const dsn_keys[] = {"dsnFile", NULL};
static const char *const tls_keys[] = {"cert", "key", NULL};
static const char *const token_keys[] = {"id", "sha256", "role", "projects",
                                         NULL};
static const char *const project_keys[] = {"id", "name", NULL};
static const char *const service_keys[] = {
    "id", "projectId", "name", "kind", "tags", "sshEnabled", "upstream", NULL};

/* ---- messages ---------------------------------------------------------- */

/* Messages about the top level name it "config" rather than nothing. */
static const char *config_path(const char *path) {
  return path != NULL && path[0] == '\0' ? "config" : path;
}

PRINTF_LIKE(3, 4)
static int parse_fail(parse_ctx_t *c, const char *path, const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  json_vfail(c->err, c->errlen, config_path(path), fmt, ap);
  va_end(ap);
  return -1;
}

static int fail_got(parse_ctx_t *c, const char *path, const char *expected,
                    const cJSON *v) {
  return json_fail_got(c->err, c->errlen, config_path(path), expected, v);
}

static int fail_oom(parse_ctx_t *c, const char *path) {
  return parse_fail(c, path, "out of memory");
}

/* ---- JSON access ------------------------------------------------------- */

/* Member `key` of obj (case-sensitive, unlike cJSON_GetObjectItem), with its
 * JSON path written to p. */
static const cJSON *member(const cJSON *obj, const char *parent,
                           const char *key, char *p, size_t n) {
  json_path_key(p, n, parent, key);
  return cJSON_GetObjectItemCaseSensitive(obj, key);
}

/* Config files say "key" where the API says "field". */
static int check_object(parse_ctx_t *c, const cJSON *obj, const char *path,
                        const char *const *allowed) {
  return json_check_object(obj, config_path(path), allowed, "key", c->err,
                           c->errlen);
}

static int want_string(parse_ctx_t *c, const char *p, const cJSON *v,
                       const char *missing, const char **out) {
  *out = NULL;
  if (v == NULL)
    return missing != NULL ? parse_fail(c, p, "%s", missing) : 0;
  if (!cJSON_IsString(v) || v->valuestring == NULL)
    return fail_got(c, p, "a string", v);
  *out = v->valuestring;
  return 0;
}

static int dup_string(parse_ctx_t *c, const char *p, const char *s,
                      char **out) {
  *out = strdup(s);
  return *out != NULL ? 0 : fail_oom(c, p);
}

/* Free text (names, tags, paths): no control bytes, since it ends up in
 * logs and listings. Valid UTF-8 (json_parse_strict() checked it) is
 * passed through. */
static int text_valid(const char *s, size_t max) {
  size_t n = strlen(s);

  if (n == 0 || n > max)
    return 0;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
      return 0;
  return 1;
}

static int get_id(parse_ctx_t *c, const cJSON *obj, const char *parent,
                  const char *key, char **out) {
  char p[PATH_BUF], q[TEXT_QUOTE_SIZE];
  const char *s;
  const cJSON *v = member(obj, parent, key, p, sizeof p);

  if (want_string(c, p, v, "required", &s) != 0)
    return -1;
  if (!id_valid(s)) {
    text_quote(q, sizeof q, s);
    return parse_fail(
        c, p, "expected 1..128 characters of [A-Za-z0-9._-], got %s", q);
  }
  return dup_string(c, p, s, out);
}

static int want_text(parse_ctx_t *c, const char *p, const char *s, size_t max) {
  char q[TEXT_QUOTE_SIZE];

  if (text_valid(s, max))
    return 0;
  text_quote(q, sizeof q, s);
  return parse_fail(c, p,
                    "expected a non-empty string of at most %zu bytes without "
                    "control characters, got %s",
                    max, q);
}

/* Optional text member; absent means `def`. */
static int get_text(parse_ctx_t *c, const cJSON *obj, const char *parent,
                    const char *key, const char *def, char **out) {
  char p[PATH_BUF];
  const char *s;
  const cJSON *v = member(obj, parent, key, p, sizeof p);

  if (want_string(c, p, v, NULL, &s) != 0)
    return -1;
  if (s != NULL && want_text(c, p, s, PLATFORM_TEXT_MAX) != 0)
    return -1;
  return dup_string(c, p, s != NULL ? s : def, out);
}

static int get_bool(parse_ctx_t *c, const cJSON *obj, const char *parent,
                    const char *key, int def, int *out) {
  char p[PATH_BUF];
  const cJSON *v = member(obj, parent, key, p, sizeof p);

  *out = def;
  if (v == NULL)
    return 0;
  if (!cJSON_IsBool(v))
    return fail_got(c, p, "true or false", v);
  *out = cJSON_IsTrue(v) ? 1 : 0;
  return 0;
}

static int get_uint_in(parse_ctx_t *c, const cJSON *obj, const char *parent,
                       const char *key, uint32_t lo, uint32_t hi, uint32_t def,
                       uint32_t *out) {
  char p[PATH_BUF], expected[64];
  const cJSON *v = member(obj, parent, key, p, sizeof p);
  double d;

  *out = def;
  if (v == NULL)
    return 0;
  snprintf(expected, sizeof expected, "an integer in %u..%u", (unsigned)lo,
           (unsigned)hi);
  if (!cJSON_IsNumber(v))
    return fail_got(c, p, expected, v);
  d = v->valuedouble;
  /* The range test also rejects NaN and infinities; after it the cast is
   * defined, and it detects a fraction. */
  if (!(d >= lo && d <= hi) || d != (double)(uint32_t)d)
    return fail_got(c, p, expected, v);
  *out = (uint32_t)d;
  return 0;
}

static int get_uint(parse_ctx_t *c, const cJSON *obj, const char *key,
                    uint32_t lo, uint32_t hi, uint32_t def, uint32_t *out) {
  return get_uint_in(c, obj, "", key, lo, hi, def, out);
}

static int get_array(parse_ctx_t *c, const cJSON *obj, const char *parent,
                     const char *key, const cJSON **arr, size_t *n) {
  char p[PATH_BUF];
  const cJSON *v = member(obj, parent, key, p, sizeof p);

  *arr = NULL;
  *n = 0;
  if (v == NULL)
    return 0;
  if (!cJSON_IsArray(v))
    return fail_got(c, p, "an array", v);
  *arr = v;
  *n = (size_t)cJSON_GetArraySize(v);
  return 0;
}

/* calloc that also works for empty arrays (leaves NULL) and checks n*size. */
static int alloc_array(parse_ctx_t *c, const char *p, size_t n, size_t size,
                       void **out) {
  *out = NULL;
  if (n == 0)
    return 0;
  *out = calloc(n, size);
  return *out != NULL ? 0 : fail_oom(c, p);
}

/* ---- host:port --------------------------------------------------------- */

static int hostname_valid(const char *s, size_t n) {
  if (n == 0 || n > PLATFORM_HOST_MAX)
    return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
          (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '_'))
      return 0;
  }
  return 1;
}

static int ipv6_valid(const char *s, size_t n) {
  char buf[INET6_ADDRSTRLEN];
  struct in6_addr addr;

  if (n == 0 || n >= sizeof buf)
    return 0;
  memcpy(buf, s, n);
  buf[n] = '\0';
  return inet_pton(AF_INET6, buf, &addr) == 1;
}

/* Decimal port, 1..5 digits; -1 if malformed. */
static long port_parse(const char *s) {
  long v = 0;
  size_t n = strlen(s);

  if (n == 0 || n > 5)
    return -1;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

/* Splits "host:port" or "[v6addr]:port"; host must not contain ':' unless
 * bracketed, so a bare IPv6 address is never misread as host and port. */
static int hostport_split(const char *s, const char **host, size_t *hostlen,
                          long *port) {
  const char *colon;

  if (s[0] == '[') {
    const char *close = strchr(s, ']');
    if (close == NULL || close[1] != ':' ||
        !ipv6_valid(s + 1, (size_t)(close - s - 1)))
      return -1;
    *host = s + 1;
    *hostlen = (size_t)(close - s - 1);
    colon = close + 1;
  } else {
    colon = strchr(s, ':');
    if (colon == NULL || strchr(colon + 1, ':') != NULL ||
        !hostname_valid(s, (size_t)(colon - s)))
      return -1;
    *host = s;
    *hostlen = (size_t)(colon - s);
  }
  *port = port_parse(colon + 1);
  return *port < 0 ? -1 : 0;
}

/* `missing` is the error when absent, or NULL when the member is optional. */
static int get_hostport(parse_ctx_t *c, const cJSON *obj, const char *parent,
                        const char *key, const char *missing, long min_port,
                        char **host, uint16_t *port) {
  char p[PATH_BUF], q[TEXT_QUOTE_SIZE];
  const char *s, *h;
  size_t hlen;
  long v;
  const cJSON *m = member(obj, parent, key, p, sizeof p);

  if (want_string(c, p, m, missing, &s) != 0)
    return -1;
  if (s == NULL)
    return 0;
  text_quote(q, sizeof q, s);
  if (hostport_split(s, &h, &hlen, &v) != 0)
    return parse_fail(c, p, "expected \"host:port\", got %s", q);
  if (v < min_port || v > 65535)
    return parse_fail(c, p, "port must be in %ld..65535, got %s", min_port, q);
  *host = strndup(h, hlen);
  if (*host == NULL)
    return fail_oom(c, p);
  *port = (uint16_t)v;
  return 0;
}

/* The metrics listener binds a numeric address (no name to resolve at
 * start-up), and a port the WebSocket listener does not already take. */
static int get_metrics_listen(parse_ctx_t *c, const cJSON *root,
                              platform_t *p) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "metricsListen");
  char q[TEXT_QUOTE_SIZE];
  struct in6_addr a6;
  struct in_addr a4;

  if (get_hostport(c, root, "", "metricsListen", NULL, 0, &p->metrics_host,
                   &p->metrics_port) != 0)
    return -1;
  if (p->metrics_host == NULL)
    return 0;
  text_quote(q, sizeof q, v->valuestring);
  if (inet_pton(AF_INET, p->metrics_host, &a4) != 1 &&
      inet_pton(AF_INET6, p->metrics_host, &a6) != 1)
    return parse_fail(c, "metricsListen",
                      "expected a numeric IP address and a port "
                      "(\"127.0.0.1:9100\" or \"[::1]:9100\"), got %s",
                      q);
  if (p->metrics_port != 0 && p->metrics_port == p->listen_port &&
      strcmp(p->metrics_host, p->listen_host) == 0)
    return parse_fail(c, "metricsListen",
                      "must differ from listen, got %s for both", q);
  return 0;
}

/* ---- listener and limits ----------------------------------------------- */

static int get_file(parse_ctx_t *c, const cJSON *obj, const char *parent,
                    const char *key, char **out) {
  char p[PATH_BUF];
  const char *s;
  const cJSON *v = member(obj, parent, key, p, sizeof p);

  if (want_string(c, p, v, "required", &s) != 0 ||
      want_text(c, p, s, PLATFORM_PATH_MAX) != 0)
    return -1;
  *out = file_path_resolve(c->base_dir, s);
  return *out != NULL ? 0 : fail_oom(c, p);
}

/* The state file is written by the edge (docs/ADMIN_API.md), so it lives
 * with the config by default: one directory to back up. */
static int get_state_file(parse_ctx_t *c, const cJSON *root, platform_t *p) {
  char path[PATH_BUF];
  const char *s;
  const cJSON *v = member(root, "", "stateFile", path, sizeof path);

  if (want_string(c, path, v, NULL, &s) != 0 ||
      (s != NULL && want_text(c, path, s, PLATFORM_PATH_MAX) != 0))
    return -1;
  p->state_file =
      file_path_resolve(c->base_dir, s != NULL ? s : STATE_FILE_DEFAULT);
  return p->state_file != NULL ? 0 : fail_oom(c, path);
}

static int get_audit_file(parse_ctx_t *c, const cJSON *root, platform_t *p) {
  char path[PATH_BUF];
  const char *s;
  const cJSON *v = member(root, "", "auditFile", path, sizeof path);

  if (want_string(c, path, v, NULL, &s) != 0 ||
      (s != NULL && want_text(c, path, s, PLATFORM_PATH_MAX) != 0))
    return -1;
  p->audit_file =
      file_path_resolve(c->base_dir, s != NULL ? s : AUDIT_FILE_DEFAULT);
  return p->audit_file != NULL ? 0 : fail_oom(c, path);
}

/* A DSN holds a password: it is never echoed, and a file may hold it so
 * that the config does not. Only the first line of the file counts. */
static int read_dsn_file(parse_ctx_t *c, const char *p, const char *file,
                         platform_t *pf) {
  char err[PATH_BUF + PLATFORM_PATH_MAX];
  char *text = NULL;
  size_t len = 0;

  if (file_read(file, DSN_FILE_MAX, 0, &text, &len, err, sizeof err) !=
      FILE_READ_OK)
    return parse_fail(c, p, "%s", err);
  len = strcspn(text, "\r\n");
  text[len] = '\0';
  if (len == 0) {
    free(text);
    return parse_fail(c, p, "%s holds no DSN on its first line", file);
  }
  pf->store_dsn = text;
  return 0;
}

static int get_dsn(parse_ctx_t *c, const cJSON *store, platform_t *pf) {
  char p[PATH_BUF], q[PATH_BUF];
  const cJSON *v = member(store, "store", "postgres", p, sizeof p);
  char *file;

  if (cJSON_IsString(v)) {
    if (v->valuestring[0] == '\0')
      return parse_fail(c, p, "expected a PostgreSQL DSN, got \"\"");
    pf->store_dsn = strdup(v->valuestring);
    return pf->store_dsn != NULL ? 0 : fail_oom(c, p);
  }
  if (!cJSON_IsObject(v))
    return parse_fail(c, p,
                      "expected a DSN (string) or {\"dsnFile\": PATH}, got "
                      "%s",
                      v == NULL ? "nothing" : "another value");
  if (check_object(c, v, p, dsn_keys) != 0 ||
      get_file(c, v, p, "dsnFile", &file) != 0)
    return -1;
  json_path_key(q, sizeof q, p, "dsnFile");
  int rc = read_dsn_file(c, q, file, pf);
  free(file);
  return rc;
}

/* "store": the postgres backend and its bounds; absent: the state file. */
static int parse_store(parse_ctx_t *c, const cJSON *root, platform_t *p) {
  char path[PATH_BUF];
  const cJSON *v = member(root, "", "store", path, sizeof path);

  p->store_max_stale_ms = STALE_DEFAULT;
  p->store_connect_timeout_ms = STORE_CONNECT_DEFAULT;
  p->store_query_timeout_ms = STORE_QUERY_DEFAULT;
  if (v == NULL)
    return 0;
  if (check_object(c, v, path, store_keys) != 0 || get_dsn(c, v, p) != 0 ||
      get_uint_in(c, v, path, "maxStaleMs", STALE_MIN, STALE_MAX, STALE_DEFAULT,
                  &p->store_max_stale_ms) != 0 ||
      get_uint_in(c, v, path, "connectTimeoutMs", STORE_TIMEOUT_MIN,
                  STORE_TIMEOUT_MAX, STORE_CONNECT_DEFAULT,
                  &p->store_connect_timeout_ms) != 0 ||
      get_uint_in(c, v, path, "queryTimeoutMs", STORE_TIMEOUT_MIN,
                  STORE_TIMEOUT_MAX, STORE_QUERY_DEFAULT,
                  &p->store_query_timeout_ms) != 0)
    return -1;
  return 0;
}

/* The edge's name in a fleet, on every 101 for the load balancer to route
 * a resume back by; the host name by default (cut to an id). */
static int get_node_id(parse_ctx_t *c, const cJSON *root, platform_t *p) {
  char path[PATH_BUF], host[256];
  if (member(root, "", "nodeId", path, sizeof path) != NULL)
    return get_id(c, root, "", "nodeId", &p->node_id);
  if (gethostname(host, sizeof host) != 0)
    snprintf(host, sizeof host, "edge");
  host[sizeof host - 1] = '\0';
  host[ID_MAX] = '\0';
  for (char *h = host; *h; h++)
    if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') ||
          (*h >= '0' && *h <= '9') || *h == '.' || *h == '_' || *h == '-'))
      *h = '-';
  if (host[0] == '\0')
    snprintf(host, sizeof host, "edge");
  return dup_string(c, path, host, &p->node_id);
}

/* Addresses whose X-Forwarded-For the edge believes (a load balancer). */
static int get_trusted(parse_ctx_t *c, const cJSON *root, platform_t *p) {
  char path[PATH_BUF], ip[PATH_BUF];
  const cJSON *arr, *v;
  const char *s;
  size_t i = 0;

  json_path_key(path, sizeof path, "", "trustedProxies");
  if (get_array(c, root, "", "trustedProxies", &arr, &p->ntrusted) != 0 ||
      alloc_array(c, path, p->ntrusted, sizeof *p->trusted,
                  (void **)&p->trusted) != 0)
    return -1;
  cJSON_ArrayForEach(v, arr) {
    json_path_index(ip, sizeof ip, path, i);
    if (want_string(c, ip, v, NULL, &s) != 0)
      return -1;
    if (cidr_parse(s, &p->trusted[i++]) != 0) {
      char q[TEXT_QUOTE_SIZE];
      text_quote(q, sizeof q, s);
      return parse_fail(c, ip,
                        "expected a numeric address or ADDRESS/PREFIX "
                        "(no host bits set), got %s",
                        q);
    }
  }
  return 0;
}

/* TLS is the default; plain ws:// must be asked for explicitly, and asking
 * for both is a contradiction we refuse rather than guess. */
static int parse_transport(parse_ctx_t *c, const cJSON *root, platform_t *p) {
  const cJSON *tls = cJSON_GetObjectItemCaseSensitive(root, "tls");

  if (get_bool(c, root, "", "plainWs", 0, &p->plain_ws) != 0)
    return -1;
  if (tls != NULL && p->plain_ws)
    return parse_fail(c, "plainWs", "cannot be true when \"tls\" is set");
  if (tls == NULL && !p->plain_ws)
    return parse_fail(c, "tls",
                      "required (or set \"plainWs\": true to serve without "
                      "TLS)");
  if (tls == NULL)
    return 0;
  if (check_object(c, tls, "tls", tls_keys) != 0 ||
      get_file(c, tls, "tls", "cert", &p->tls_cert) != 0)
    return -1;
  return get_file(c, tls, "tls", "key", &p->tls_key);
}

/* A dead link must be told apart from one that merely waits for the next
 * PING, so the dead timeout must exceed the ping interval. The message names
 * the key that was given (the other may be its default). */
static int check_liveness(parse_ctx_t *c, const cJSON *root,
                          const platform_t *p) {
  if (p->dead_timeout_ms > p->ping_interval_ms)
    return 0;
  if (cJSON_GetObjectItemCaseSensitive(root, "deadTimeoutMs") != NULL)
    return parse_fail(c, "deadTimeoutMs",
                      "must be greater than pingIntervalMs (%u%s), got %u",
                      (unsigned)p->ping_interval_ms,
                      cJSON_GetObjectItemCaseSensitive(root, "pingIntervalMs")
                          ? ""
                          : ", the default",
                      (unsigned)p->dead_timeout_ms);
  return parse_fail(c, "pingIntervalMs",
                    "must be less than deadTimeoutMs (%u, the default), got %u",
                    (unsigned)p->dead_timeout_ms,
                    (unsigned)p->ping_interval_ms);
}

static int parse_limits(parse_ctx_t *c, const cJSON *root, platform_t *p) {
  if (get_uint(c, root, "windowBytes", WINDOW_MIN, WINDOW_MAX, WINDOW_DEFAULT,
               &p->window) != 0 ||
      get_uint(c, root, "maxStreams", STREAMS_MIN, STREAMS_MAX, STREAMS_DEFAULT,
               &p->max_streams) != 0 ||
      get_uint(c, root, "connectTimeoutMs", CONNECT_MIN, CONNECT_MAX,
               CONNECT_DEFAULT, &p->connect_timeout_ms) != 0 ||
      get_uint(c, root, "maxConnectionsPerToken", CONNS_PER_TOKEN_MIN,
               CONNS_PER_TOKEN_MAX, CONNS_PER_TOKEN_DEFAULT,
               &p->max_conns_per_token) != 0 ||
      get_uint(c, root, "maxStreamsPerToken", STREAMS_MIN, STREAMS_MAX,
               STREAMS_PER_TOKEN_DEFAULT, &p->max_streams_per_token) != 0 ||
      get_uint(c, root, "fdReserve", FD_RESERVE_MIN, FD_RESERVE_MAX,
               FD_RESERVE_DEFAULT, &p->fd_reserve) != 0 ||
      get_uint(c, root, "handshakeTimeoutMs", HANDSHAKE_MIN, HANDSHAKE_MAX,
               HANDSHAKE_DEFAULT, &p->handshake_timeout_ms) != 0 ||
      get_uint(c, root, "maxUnauthenticated", UNAUTH_MIN, UNAUTH_MAX,
               UNAUTH_DEFAULT, &p->max_unauthenticated) != 0 ||
      get_uint(c, root, "maxUnauthenticatedPerAddress", UNAUTH_MIN, UNAUTH_MAX,
               UNAUTH_ADDR_DEFAULT, &p->max_unauthenticated_per_addr) != 0 ||
      get_uint(c, root, "pingIntervalMs", PING_MIN, PING_MAX, PING_DEFAULT,
               &p->ping_interval_ms) != 0 ||
      get_uint(c, root, "deadTimeoutMs", DEAD_MIN, DEAD_MAX, DEAD_DEFAULT,
               &p->dead_timeout_ms) != 0 ||
      check_liveness(c, root, p) != 0 ||
      get_uint(c, root, "resumeGraceMs", RESUME_MIN, RESUME_MAX, RESUME_DEFAULT,
               &p->resume_grace_ms) != 0)
    return -1;
  return get_uint(c, root, "drainTimeoutMs", DRAIN_MIN, DRAIN_MAX,
                  DRAIN_DEFAULT, &p->drain_timeout_ms);
}

/* ---- duplicates -------------------------------------------------------- */

static int str_key_cmp(const sort_key_t *x, const sort_key_t *y) {
  int r = strcmp(x->a, y->a);

  if (r == 0 && x->b != NULL)
    r = strcmp(x->b, y->b);
  return r;
}

static int hash_key_cmp(const sort_key_t *x, const sort_key_t *y) {
  return memcmp(x->a, y->a, 32);
}

static int idx_cmp(const sort_key_t *x, const sort_key_t *y) {
  return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int str_key_sort(const void *x, const void *y) {
  int r = str_key_cmp(x, y);
  return r != 0 ? r : idx_cmp(x, y);
}

static int hash_key_sort(const void *x, const void *y) {
  int r = hash_key_cmp(x, y);
  return r != 0 ? r : idx_cmp(x, y);
}

/* Sorts keys, then reports the duplicate that comes first in the document
 * (and the entry it repeats), as a linear scan would have. */
static int keys_find_dup(sort_key_t *keys, size_t n, key_cmp_fn same,
                         size_t *dup, size_t *orig) {
  int found = 0;

  if (n < 2)
    return 0;
  qsort(keys, n, sizeof *keys,
        same == hash_key_cmp ? hash_key_sort : str_key_sort);
  for (size_t i = 1, first = 0; i < n; i++) {
    if (same(&keys[first], &keys[i]) != 0) {
      first = i;
      continue;
    }
    if (i == first + 1 && (!found || keys[i].idx < *dup)) {
      *dup = keys[i].idx;
      *orig = keys[first].idx;
      found = 1;
    }
  }
  return found;
}

static int keys_alloc(parse_ctx_t *c, const char *p, size_t n,
                      sort_key_t **out) {
  return alloc_array(c, p, n, sizeof **out, (void **)out);
}

/* ---- tokens ------------------------------------------------------------ */

static int get_sha256(parse_ctx_t *c, const cJSON *obj, const char *parent,
                      uint8_t out[32]) {
  char p[PATH_BUF], q[TEXT_QUOTE_SIZE];
  const char *s;
  const cJSON *v = member(obj, parent, "sha256", p, sizeof p);

  if (want_string(c, p, v, "required", &s) != 0)
    return -1;
  if (text_hex_decode(s, strlen(s), out, 32) == 0)
    return 0;
  text_quote(q, sizeof q, s);
  return parse_fail(
      c, p, "expected 64 hex characters (SHA-256 of the token), got %s", q);
}

/* "role": "admin" | "member". Absent is admin, so that a config written
 * before roles keeps working; the edge warns about each such token at
 * start (docs/EDGE_CONFIG.md). */
static int get_role(parse_ctx_t *c, const cJSON *obj, const char *parent,
                    platform_token_t *t) {
  char p[PATH_BUF], q[TEXT_QUOTE_SIZE];
  const char *s;
  const cJSON *v = member(obj, parent, "role", p, sizeof p);

  t->role = PLATFORM_ROLE_ADMIN;
  t->role_default = v == NULL;
  if (want_string(c, p, v, NULL, &s) != 0)
    return -1;
  if (s == NULL || strcmp(s, "admin") == 0)
    return 0;
  if (strcmp(s, "member") == 0) {
    t->role = PLATFORM_ROLE_MEMBER;
    return 0;
  }
  text_quote(q, sizeof q, s);
  return parse_fail(c, p, "expected \"admin\" or \"member\", got %s", q);
}

/* "projects": ids, at least one, no repeats; that each is one of the
 * config's projects is checked once those are parsed
 * (check_token_projects). */
static int get_token_projects(parse_ctx_t *c, const cJSON *obj,
                              const char *parent, platform_token_t *t) {
  char p[PATH_BUF], ip[PATH_BUF], q[TEXT_QUOTE_SIZE];
  const cJSON *arr, *v;
  size_t i = 0;

  json_path_key(p, sizeof p, parent, "projects");
  if (get_array(c, obj, parent, "projects", &arr, &t->nprojects) != 0)
    return -1;
  if (arr != NULL && t->nprojects == 0)
    return parse_fail(c, p,
                      "expected at least one project id (leave \"projects\" "
                      "out for every project)");
  if (alloc_array(c, p, t->nprojects, sizeof *t->projects,
                  (void **)&t->projects) != 0)
    return -1;
  cJSON_ArrayForEach(v, arr) {
    const char *s;
    json_path_index(ip, sizeof ip, p, i);
    if (want_string(c, ip, v, NULL, &s) != 0)
      return -1;
    if (!id_valid(s)) {
      text_quote(q, sizeof q, s);
      return parse_fail(c, ip,
                        "expected a project id (1..128 characters of "
                        "[A-Za-z0-9._-]), got %s",
                        q);
    }
    for (size_t j = 0; j < i; j++)
      if (strcmp(t->projects[j], s) == 0)
        return parse_fail(c, ip, "same as projects[%zu]", j);
    if (dup_string(c, ip, s, &t->projects[i++]) != 0)
      return -1;
  }
  return 0;
}

static int parse_token(parse_ctx_t *c, const cJSON *v, const char *p,
                       platform_token_t *t) {
  if (check_object(c, v, p, token_keys) != 0 ||
      get_id(c, v, p, "id", &t->id) != 0 ||
      get_sha256(c, v, p, t->sha256) != 0 || get_role(c, v, p, t) != 0)
    return -1;
  return get_token_projects(c, v, p, t);
}

static int check_token_dups(parse_ctx_t *c, const platform_t *p,
                            sort_key_t *keys) {
  char path[PATH_BUF], q[TEXT_QUOTE_SIZE];
  size_t dup = 0, orig = 0;

  for (size_t i = 0; i < p->ntokens; i++)
    keys[i] = (sort_key_t){p->tokens[i].id, NULL, i};
  if (keys_find_dup(keys, p->ntokens, str_key_cmp, &dup, &orig)) {
    snprintf(path, sizeof path, "tokens[%zu].id", dup);
    text_quote(q, sizeof q, p->tokens[dup].id);
    return parse_fail(c, path, "duplicate id %s (also tokens[%zu])", q, orig);
  }
  /* Two ids for one secret would make the logged id depend on list order. */
  for (size_t i = 0; i < p->ntokens; i++)
    keys[i] = (sort_key_t){p->tokens[i].sha256, NULL, i};
  if (keys_find_dup(keys, p->ntokens, hash_key_cmp, &dup, &orig)) {
    snprintf(path, sizeof path, "tokens[%zu].sha256", dup);
    return parse_fail(c, path, "same hash as tokens[%zu]", orig);
  }
  return 0;
}

static int parse_tokens(parse_ctx_t *c, const cJSON *root, platform_t *p) {
  const cJSON *arr, *v;
  char path[PATH_BUF];
  sort_key_t *keys;
  size_t i = 0;
  int rc;

  if (get_array(c, root, "", "tokens", &arr, &p->ntokens) != 0 ||
      alloc_array(c, "tokens", p->ntokens, sizeof *p->tokens,
                  (void **)&p->tokens) != 0)
    return -1;
  cJSON_ArrayForEach(v, arr) {
    json_path_index(path, sizeof path, "tokens", i);
    if (parse_token(c, v, path, &p->tokens[i++]) != 0)
      return -1;
  }
  if (keys_alloc(c, "tokens", p->ntokens, &keys) != 0)
    return -1;
  rc = check_token_dups(c, p, keys);
  free(keys);
  return rc;
}

/* ---- projects and services --------------------------------------------- */

static int parse_project(parse_ctx_t *c, const cJSON *v, const char *p,
                         platform_project_t *pr) {
  if (check_object(c, v, p, project_keys) != 0 ||
      get_id(c, v, p, "id", &pr->id) != 0)
    return -1;
  return get_text(c, v, p, "name", pr->id, &pr->name);
}

/* On success keys holds the projects sorted by id, for projectId lookups. */
static int parse_projects(parse_ctx_t *c, const cJSON *root, platform_t *p,
                          sort_key_t **keys) {
  const cJSON *arr, *v;
  char path[PATH_BUF], q[TEXT_QUOTE_SIZE];
  size_t i = 0, dup = 0, orig = 0;

  *keys = NULL;
  if (get_array(c, root, "", "projects", &arr, &p->nprojects) != 0 ||
      alloc_array(c, "projects", p->nprojects, sizeof *p->projects,
                  (void **)&p->projects) != 0)
    return -1;
  cJSON_ArrayForEach(v, arr) {
    json_path_index(path, sizeof path, "projects", i);
    if (parse_project(c, v, path, &p->projects[i++]) != 0)
      return -1;
  }
  if (keys_alloc(c, "projects", p->nprojects, keys) != 0)
    return -1;
  for (i = 0; i < p->nprojects; i++)
    (*keys)[i] = (sort_key_t){p->projects[i].id, NULL, i};
  if (!keys_find_dup(*keys, p->nprojects, str_key_cmp, &dup, &orig))
    return 0;
  snprintf(path, sizeof path, "projects[%zu].id", dup);
  text_quote(q, sizeof q, p->projects[dup].id);
  return parse_fail(c, path, "duplicate id %s (also projects[%zu])", q, orig);
}

static int key_find(const void *x, const void *y) {
  return str_key_cmp(x, y);
}

static int check_project_ref(parse_ctx_t *c, const char *p,
                             const sort_key_t *projects, size_t nprojects,
                             const char *project_id) {
  char path[PATH_BUF], q[TEXT_QUOTE_SIZE];
  sort_key_t want = {project_id, NULL, 0};

  if (nprojects > 0 &&
      bsearch(&want, projects, nprojects, sizeof *projects, key_find) != NULL)
    return 0;
  json_path_key(path, sizeof path, p, "projectId");
  text_quote(q, sizeof q, project_id);
  return parse_fail(c, path, "unknown project %s (not in \"projects\")", q);
}

/* A token limited to a project the config does not have is a typo that
 * would only show as refusals. */
static int check_token_projects(parse_ctx_t *c, const platform_t *p,
                                const sort_key_t *projects) {
  char path[PATH_BUF], q[TEXT_QUOTE_SIZE];

  for (size_t i = 0; i < p->ntokens; i++)
    for (size_t j = 0; j < p->tokens[i].nprojects; j++) {
      sort_key_t want = {p->tokens[i].projects[j], NULL, 0};
      if (p->nprojects > 0 && bsearch(&want, projects, p->nprojects,
                                      sizeof *projects, key_find) != NULL)
        continue;
      snprintf(path, sizeof path, "tokens[%zu].projects[%zu]", i, j);
      text_quote(q, sizeof q, p->tokens[i].projects[j]);
      return parse_fail(c, path, "unknown project %s (not in \"projects\")", q);
    }
  return 0;
}

static int get_kind(parse_ctx_t *c, const cJSON *obj, const char *parent,
                    platform_kind_t *out) {
  char p[PATH_BUF], q[TEXT_QUOTE_SIZE];
  const char *s;
  const cJSON *v = member(obj, parent, "kind", p, sizeof p);

  *out = PLATFORM_KIND_SERVICE;
  if (want_string(c, p, v, NULL, &s) != 0)
    return -1;
  if (s == NULL || strcmp(s, "service") == 0)
    return 0;
  if (strcmp(s, "job") == 0) {
    *out = PLATFORM_KIND_JOB;
    return 0;
  }
  text_quote(q, sizeof q, s);
  return parse_fail(c, p, "expected \"service\" or \"job\", got %s", q);
}

static int get_tags(parse_ctx_t *c, const cJSON *obj, const char *parent,
                    platform_service_t *s) {
  char p[PATH_BUF], tp[PATH_BUF];
  const cJSON *arr, *v;
  const char *tag;
  size_t i = 0;

  json_path_key(p, sizeof p, parent, "tags");
  if (get_array(c, obj, parent, "tags", &arr, &s->ntags) != 0 ||
      alloc_array(c, p, s->ntags, sizeof *s->tags, (void **)&s->tags) != 0)
    return -1;
  cJSON_ArrayForEach(v, arr) {
    json_path_index(tp, sizeof tp, p, i);
    if (want_string(c, tp, v, NULL, &tag) != 0 ||
        want_text(c, tp, tag, PLATFORM_TEXT_MAX) != 0 ||
        dup_string(c, tp, tag, &s->tags[i++]) != 0)
      return -1;
  }
  return 0;
}

static int parse_service(parse_ctx_t *c, const cJSON *v, const char *p,
                         const sort_key_t *projects, size_t nprojects,
                         platform_service_t *s) {
  if (check_object(c, v, p, service_keys) != 0 ||
      get_id(c, v, p, "id", &s->id) != 0 ||
      get_id(c, v, p, "projectId", &s->project_id) != 0 ||
      check_project_ref(c, p, projects, nprojects, s->project_id) != 0 ||
      get_text(c, v, p, "name", s->id, &s->name) != 0 ||
      get_kind(c, v, p, &s->kind) != 0 || get_tags(c, v, p, s) != 0 ||
      get_bool(c, v, p, "sshEnabled", 0, &s->ssh_enabled) != 0)
    return -1;
  s->ssh_enabled_config = s->ssh_enabled;
  /* A job has no long-running listener, so nothing to point SSH at. */
  return get_hostport(
      c, v, p, "upstream",
      s->kind == PLATFORM_KIND_SERVICE ? "required for kind \"service\"" : NULL,
      1, &s->upstream_host, &s->upstream_port);
}

static int check_service_dups(parse_ctx_t *c, const platform_t *p) {
  char path[PATH_BUF], q[TEXT_QUOTE_SIZE], pq[TEXT_QUOTE_SIZE];
  sort_key_t *keys;
  size_t dup = 0, orig = 0;
  int found;

  if (keys_alloc(c, "services", p->nservices, &keys) != 0)
    return -1;
  for (size_t i = 0; i < p->nservices; i++)
    keys[i] = (sort_key_t){p->services[i].project_id, p->services[i].id, i};
  found = keys_find_dup(keys, p->nservices, str_key_cmp, &dup, &orig);
  free(keys);
  if (!found)
    return 0;
  snprintf(path, sizeof path, "services[%zu].id", dup);
  text_quote(q, sizeof q, p->services[dup].id);
  text_quote(pq, sizeof pq, p->services[dup].project_id);
  return parse_fail(c, path,
                    "duplicate service %s in project %s (also services[%zu])",
                    q, pq, orig);
}

static int parse_services(parse_ctx_t *c, const cJSON *root, platform_t *p,
                          const sort_key_t *projects) {
  const cJSON *arr, *v;
  char path[PATH_BUF];
  size_t i = 0;

  if (get_array(c, root, "", "services", &arr, &p->nservices) != 0 ||
      alloc_array(c, "services", p->nservices, sizeof *p->services,
                  (void **)&p->services) != 0)
    return -1;
  cJSON_ArrayForEach(v, arr) {
    json_path_index(path, sizeof path, "services", i);
    if (parse_service(c, v, path, projects, p->nprojects, &p->services[i++]) !=
        0)
      return -1;
  }
  return check_service_dups(c, p);
}

static int parse_root(parse_ctx_t *c, const cJSON *root, platform_t *p) {
  sort_key_t *projects;
  int rc;

  if (check_object(c, root, "", root_keys) != 0 ||
      get_hostport(c, root, "", "listen", "required", 0, &p->listen_host,
                   &p->listen_port) != 0 ||
      get_metrics_listen(c, root, p) != 0 || parse_transport(c, root, p) != 0 ||
      get_bool(c, root, "", "console", 1, &p->console) != 0 ||
      parse_limits(c, root, p) != 0 || get_state_file(c, root, p) != 0 ||
      get_audit_file(c, root, p) != 0 || parse_store(c, root, p) != 0 ||
      get_node_id(c, root, p) != 0 || get_trusted(c, root, p) != 0 ||
      parse_tokens(c, root, p) != 0)
    return -1;
  rc = parse_projects(c, root, p, &projects);
  if (rc == 0)
    rc = check_token_projects(c, p, projects);
  if (rc == 0)
    rc = parse_services(c, root, p, projects);
  free(projects);
  return rc;
}

/* ---- public API -------------------------------------------------------- */

int platform_parse(const char *text, size_t len, const char *base_dir,
                   platform_t **out, char *err, size_t errlen) {
  parse_ctx_t c = {err, errlen, base_dir};
  platform_t *p;
  cJSON *root;
  int rc;

  if (err != NULL && errlen > 0)
    err[0] = '\0';
  *out = NULL;
  /* The same strict JSON rules as the state file and API bodies: no
   * trailing data, no NUL bytes or escapes that cJSON would cut strings at.
   */
  root = json_parse_strict(text, len, err, errlen);
  if (root == NULL)
    return -1;
  p = calloc(1, sizeof *p);
  rc = p != NULL ? parse_root(&c, root, p) : fail_oom(&c, NULL);
  cJSON_Delete(root);
  if (rc != 0) {
    platform_free(p);
    return -1;
  }
  *out = p;
  return 0;
}

int platform_load(const char *path, platform_t **out, char *err,
                  size_t errlen) {
  char *text = NULL, *dir, perr[512];
  size_t len = 0;
  int rc;

  *out = NULL;
  if (file_read(path, PLATFORM_FILE_MAX, 0, &text, &len, err, errlen) !=
      FILE_READ_OK)
    return -1;
  dir = file_dirname(path);
  if (dir == NULL) {
    free(text);
    return json_fail(err, errlen, path, "out of memory");
  }
  rc = platform_parse(text, len, dir, out, perr, sizeof perr);
  if (rc != 0)
    json_fail(err, errlen, path, "%s", perr);
  free(dir);
  free(text);
  return rc;
}

void platform_free(platform_t *p) {
  if (p == NULL)
    return;
  free(p->listen_host);
  free(p->tls_cert);
  free(p->tls_key);
  free(p->state_file);
  free(p->audit_file);
  free(p->node_id);
  free(p->trusted);
  if (p->store_dsn != NULL) {
    /* It may hold a password: not left in freed memory. */
    OPENSSL_cleanse(p->store_dsn, strlen(p->store_dsn));
    free(p->store_dsn);
  }
  free(p->metrics_host);
  for (size_t i = 0; i < p->ntokens && p->tokens != NULL; i++) {
    free(p->tokens[i].id);
    for (size_t j = 0; j < p->tokens[i].nprojects; j++)
      free(p->tokens[i].projects[j]);
    free(p->tokens[i].projects);
  }
  free(p->tokens);
  for (size_t i = 0; i < p->nprojects && p->projects != NULL; i++) {
    free(p->projects[i].id);
    free(p->projects[i].name);
  }
  free(p->projects);
  for (size_t i = 0; i < p->nservices && p->services != NULL; i++) {
    platform_service_t *s = &p->services[i];
    free(s->id);
    free(s->project_id);
    free(s->name);
    for (size_t j = 0; j < s->ntags && s->tags != NULL; j++)
      free(s->tags[j]);
    free(s->tags);
    free(s->upstream_host);
  }
  free(p->services);
  free(p);
}

/* Comparing digests rather than the tokens keeps the compare fixed-length,
 * and CRYPTO_memcmp plus scanning every entry keeps its time independent of
 * where (or whether) a match is. */
const platform_token_t *platform_find_token(const platform_t *p,
                                            const char *token, size_t len) {
  const platform_token_t *found = NULL;
  uint8_t md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;

  if (p == NULL || token == NULL || len == 0)
    return NULL;
  if (EVP_Digest(token, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
      mdlen != 32)
    return NULL;
  for (size_t i = 0; i < p->ntokens; i++) {
    int match = CRYPTO_memcmp(md, p->tokens[i].sha256, 32) == 0;
    if (match && found == NULL)
      found = &p->tokens[i];
  }
  OPENSSL_cleanse(md, sizeof md);
  return found;
}

const platform_project_t *platform_find_project(const platform_t *p,
                                                const char *id) {
  if (p == NULL || id == NULL)
    return NULL;
  for (size_t i = 0; i < p->nprojects; i++)
    if (strcmp(p->projects[i].id, id) == 0)
      return &p->projects[i];
  return NULL;
}

const platform_service_t *platform_find_service(const platform_t *p,
                                                const char *project_id,
                                                const char *service_id) {
  if (p == NULL || project_id == NULL || service_id == NULL)
    return NULL;
  for (size_t i = 0; i < p->nservices; i++) {
    const platform_service_t *s = &p->services[i];
    if (strcmp(s->id, service_id) == 0 &&
        strcmp(s->project_id, project_id) == 0)
      return s;
  }
  return NULL;
}

const char *platform_role_name(platform_role_t role) {
  return role == PLATFORM_ROLE_MEMBER ? "member" : "admin";
}

int platform_token_has_project(const platform_token_t *t,
                               const char *project_id) {
  if (t->nprojects == 0)
    return 1;
  for (size_t i = 0; project_id != NULL && i < t->nprojects; i++)
    if (strcmp(t->projects[i], project_id) == 0)
      return 1;
  return 0;
}

void platform_token_describe(const platform_token_t *t, char *buf, size_t n) {
  /* Room kept for ", ..." so that a long list still says it was cut. */
  size_t o, keep = n > 6 ? n - 6 : 0;
  int w;

  if (n == 0)
    return;
  w = snprintf(buf, n, "role %s%s", platform_role_name(t->role),
               t->nprojects > 0 ? " for projects " : "");
  o = w < 0 ? 0 : (size_t)w < n ? (size_t)w : n - 1;
  for (size_t i = 0; i < t->nprojects; i++) {
    size_t len = strlen(t->projects[i]) + (i > 0 ? 2 : 0);
    if (o + len >= keep) {
      snprintf(buf + o, n - o, "%s...", i > 0 ? ", " : "");
      return;
    }
    snprintf(buf + o, n - o, "%s%s", i > 0 ? ", " : "", t->projects[i]);
    o += len;
  }
}

PRINTF_LIKE(4, 5)
static platform_access_t access_deny(platform_access_t a, char *msg,
                                     size_t msglen, const char *fmt, ...) {
  va_list ap;

  if (msg != NULL && msglen > 0) {
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
  }
  return a;
}

platform_access_t platform_check_ssh(const platform_t *p, const char *token,
                                     size_t token_len, const char *project_id,
                                     const char *service_id,
                                     const platform_service_t **svc,
                                     const platform_token_t **tok, char *msg,
                                     size_t msglen) {
  const platform_token_t *t = platform_find_token(p, token, token_len);
  const platform_service_t *s;
  /* Ids come from the request path; cleaned because the message is also
   * sent as an HTTP header. */
  char sid[ID_MAX + 8], pid[ID_MAX + 8];

  if (svc != NULL)
    *svc = NULL;
  if (tok != NULL)
    *tok = NULL;
  if (t == NULL)
    return access_deny(PLATFORM_ACCESS_UNAUTHORIZED, msg, msglen,
                       "invalid or missing API token");
  if (!platform_token_has_project(t, project_id)) {
    char role[PLATFORM_DESCRIBE_SIZE];
    platform_token_describe(t, role, sizeof role);
    text_clean(pid, sizeof pid, project_id ? project_id : "", ID_MAX);
    return access_deny(PLATFORM_ACCESS_FORBIDDEN, msg, msglen,
                       "token %s has %s: it may not access project %s", t->id,
                       role, pid);
  }
  s = platform_find_service(p, project_id, service_id);
  if (s == NULL) {
    text_clean(sid, sizeof sid, service_id ? service_id : "", ID_MAX);
    text_clean(pid, sizeof pid, project_id ? project_id : "", ID_MAX);
    return access_deny(PLATFORM_ACCESS_NOT_FOUND, msg, msglen,
                       "service %s not found in project %s", sid, pid);
  }
  if (s->kind == PLATFORM_KIND_JOB)
    return access_deny(PLATFORM_ACCESS_JOB, msg, msglen,
                       "SSH access is available for services only");
  if (!s->ssh_enabled)
    return access_deny(PLATFORM_ACCESS_SSH_DISABLED, msg, msglen,
                       "SSH is not enabled for service %s: enable SSH in the "
                       "service's Resources",
                       s->id);
  if (svc != NULL)
    *svc = s;
  if (tok != NULL)
    *tok = t;
  if (msg != NULL && msglen > 0)
    msg[0] = '\0';
  return PLATFORM_ACCESS_OK;
}

int platform_access_http_status(platform_access_t a) {
  switch (a) {
  case PLATFORM_ACCESS_OK:
    return 200;
  case PLATFORM_ACCESS_UNAUTHORIZED:
    return 401;
  case PLATFORM_ACCESS_FORBIDDEN:
    return 403;
  case PLATFORM_ACCESS_NOT_FOUND:
    return 404;
  case PLATFORM_ACCESS_JOB:
  case PLATFORM_ACCESS_SSH_DISABLED:
    return 409;
  }
  return 500;
}

static int trusted(const platform_t *p, const char *ip) {
  for (size_t i = 0; i < p->ntrusted; i++)
    if (cidr_match(&p->trusted[i], ip))
      return 1;
  return 0;
}

void platform_client_addr(const platform_t *p, const char *peer,
                          const char *forwarded_for, char *out, size_t outlen) {
  char list[512], *items[32];
  size_t n = 0;
  snprintf(out, outlen, "%s", peer);
  if (forwarded_for == NULL || *forwarded_for == '\0' || !trusted(p, peer))
    return;
  /* Right to left: the nearest hop first; the first address not of a
   * trusted proxy is the client. Anything a client wrote itself is left
   * of what the proxies appended, so it is never believed. */
  snprintf(list, sizeof list, "%s", forwarded_for);
  char *save = NULL;
  for (char *tok = strtok_r(list, ",", &save); tok != NULL && n < 32;
       tok = strtok_r(NULL, ",", &save)) {
    while (*tok == ' ' || *tok == '\t')
      tok++;
    size_t l = strlen(tok);
    while (l > 0 && (tok[l - 1] == ' ' || tok[l - 1] == '\t'))
      tok[--l] = '\0';
    items[n++] = tok;
  }
  while (n > 0) {
    const char *ip = items[--n];
    cidr_t probe;
    if (cidr_parse(ip, &probe) != 0 || probe.bits != (probe.v6 ? 128u : 32u))
      return; /* not an address: stop at the last one believed */
    snprintf(out, outlen, "%s", ip);
    if (!trusted(p, ip))
      return;
  }
}

int platform_proxy_trusted(const platform_t *p, const char *ip) {
  return trusted(p, ip);
}
