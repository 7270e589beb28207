/* Unit tests for the platform model: config parsing, lookups, SSH checks. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/id.h"
#include "edge/platform.h"

/* sha256("secret") and sha256("other") */
#define SECRET_HEX                                                             \
  "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
/* SHA-256 of "deploy". */
#define DEPLOY_HEX                                                             \
  "b7bd55c11b781b0ccc43aa6e57f9dadf0660e9d1d4e27e0979ee43a407d454ae"
#define OTHER_HEX_UPPER                                                        \
  "D9298A10D1B0735837DC4BD85DAC641B0F3CEF27A47E5D53A54F2F3F5B2FCFFA"

/* Configs below use ' for " to stay readable; swapped before parsing. */
#define HEAD "{'listen':'127.0.0.1:0','plainWs':true"
#define PROJ ",'projects':[{'id':'p1'}]"
#define SVC1(x) PROJ ",'services':[" x "]}"
#define WEB "{'id':'web','projectId':'p1','upstream':'127.0.0.1:22'"

static char *unquote(const char *s) {
  char *t = strdup(s);
  assert_non_null(t);
  for (char *c = t; *c; c++)
    if (*c == '\'')
      *c = '"';
  return t;
}

/* Parses from an exact-size heap copy without a NUL, so ASan catches any
 * read past the length. */
static int parse_at(const char *squoted, const char *base_dir, platform_t **out,
                    char *err, size_t errlen) {
  char *text = unquote(squoted);
  size_t len = strlen(text);
  char *exact = malloc(len ? len : 1);
  int rc;

  assert_non_null(exact);
  memcpy(exact, text, len);
  rc = platform_parse(exact, len, base_dir, out, err, errlen);
  free(exact);
  free(text);
  return rc;
}

static platform_t *parse_ok(const char *squoted) {
  platform_t *p = NULL;
  char err[512];

  if (parse_at(squoted, NULL, &p, err, sizeof err) != 0)
    fail_msg("unexpected error: %s", err);
  assert_non_null(p);
  return p;
}

static const char full_config[] =
    "{'listen':'[::1]:8443','tls':{'cert':'edge.crt','key':'/keys/edge.key'},"
    "'plainWs':false,'windowBytes':65536,'maxStreams':7,"
    "'connectTimeoutMs':2500,'maxConnectionsPerToken':3,"
    "'handshakeTimeoutMs':4000,'pingIntervalMs':1000,'deadTimeoutMs':3500,"
    "'resumeGraceMs':0,'drainTimeoutMs':45000,'console':false,"
    "'tokens':[{'id':'ci','sha256':'" SECRET_HEX "'},"
    "{'id':'ops.team_2','sha256':'" OTHER_HEX_UPPER "'}],"
    "'projects':[{'id':'p1','name':'Demo project'},{'id':'p2'}],"
    "'services':["
    "{'id':'web','projectId':'p1','name':'Web','kind':'service',"
    "'tags':['prod','eu'],'sshEnabled':true,'upstream':'127.0.0.1:2222'},"
    "{'id':'db','projectId':'p1','upstream':'db.internal:5432'},"
    "{'id':'cron','projectId':'p1','kind':'job','sshEnabled':true},"
    "{'id':'web','projectId':'p2','upstream':'[fe80::1]:22','sshEnabled':true}"
    "]}";

static void test_full_config(void **state) {
  platform_t *p = NULL;
  char err[512];
  const platform_service_t *s;

  assert_int_equal(parse_at(full_config, "/etc/wsmux", &p, err, sizeof err), 0);
  assert_string_equal(p->listen_host, "::1");
  assert_int_equal(p->listen_port, 8443);
  assert_int_equal(p->plain_ws, 0);
  assert_string_equal(p->tls_cert, "/etc/wsmux/edge.crt");
  assert_string_equal(p->tls_key, "/keys/edge.key");
  assert_int_equal(p->window, 65536);
  assert_int_equal(p->max_streams, 7);
  assert_int_equal(p->connect_timeout_ms, 2500);
  assert_int_equal(p->max_conns_per_token, 3);
  assert_int_equal(p->handshake_timeout_ms, 4000);
  assert_int_equal(p->ping_interval_ms, 1000);
  assert_int_equal(p->dead_timeout_ms, 3500);
  assert_int_equal(p->resume_grace_ms, 0);
  assert_int_equal(p->drain_timeout_ms, 45000);

  assert_int_equal(p->ntokens, 2);
  assert_string_equal(p->tokens[0].id, "ci");
  assert_int_equal(p->tokens[0].sha256[0], 0x2b);
  assert_int_equal(p->tokens[0].sha256[31], 0x5b);
  assert_string_equal(p->tokens[1].id, "ops.team_2");
  assert_int_equal(p->tokens[1].sha256[0], 0xd9);
  assert_int_equal(p->tokens[1].sha256[31], 0xfa);

  assert_int_equal(p->nprojects, 2);
  assert_string_equal(p->projects[0].id, "p1");
  assert_string_equal(p->projects[0].name, "Demo project");
  assert_string_equal(p->projects[1].name, "p2");

  assert_int_equal(p->nservices, 4);
  s = &p->services[0];
  assert_string_equal(s->id, "web");
  assert_string_equal(s->project_id, "p1");
  assert_string_equal(s->name, "Web");
  assert_int_equal(s->kind, PLATFORM_KIND_SERVICE);
  assert_int_equal(s->ntags, 2);
  assert_string_equal(s->tags[0], "prod");
  assert_string_equal(s->tags[1], "eu");
  assert_int_equal(s->ssh_enabled, 1);
  assert_string_equal(s->upstream_host, "127.0.0.1");
  assert_int_equal(s->upstream_port, 2222);

  s = &p->services[1];
  assert_string_equal(s->name, "db");
  assert_int_equal(s->ssh_enabled, 0);
  assert_int_equal(s->ntags, 0);
  assert_null(s->tags);
  assert_string_equal(s->upstream_host, "db.internal");
  assert_int_equal(s->upstream_port, 5432);

  s = &p->services[2];
  assert_int_equal(s->kind, PLATFORM_KIND_JOB);
  assert_null(s->upstream_host);
  assert_int_equal(s->upstream_port, 0);

  s = &p->services[3];
  assert_string_equal(s->project_id, "p2");
  assert_string_equal(s->upstream_host, "fe80::1");
  assert_int_equal(s->upstream_port, 22);

  assert_ptr_equal(platform_find_project(p, "p2"), &p->projects[1]);
  assert_null(platform_find_project(p, "p3"));
  assert_null(platform_find_project(p, NULL));
  assert_ptr_equal(platform_find_service(p, "p2", "web"), &p->services[3]);
  assert_ptr_equal(platform_find_service(p, "p1", "web"), &p->services[0]);
  assert_null(platform_find_service(p, "p2", "db"));
  assert_null(platform_find_service(p, NULL, "web"));
  platform_free(p);
}

static void test_defaults(void **state) {
  platform_t *p = parse_ok(
      HEAD PROJ ",'services':[{'id':'s','projectId':'p1','upstream':'h:1'}]}"
                " \n\t ");

  assert_string_equal(p->listen_host, "127.0.0.1");
  assert_int_equal(p->listen_port, 0);
  assert_int_equal(p->plain_ws, 1);
  assert_null(p->tls_cert);
  assert_null(p->tls_key);
  assert_int_equal(p->window, 131072);
  assert_int_equal(p->max_streams, 1024);
  assert_int_equal(p->connect_timeout_ms, 10000);
  assert_int_equal(p->max_conns_per_token, 64);
  assert_int_equal(p->handshake_timeout_ms, 10000);
  assert_int_equal(p->ping_interval_ms, 5000);
  assert_int_equal(p->dead_timeout_ms, 15000);
  assert_int_equal(p->resume_grace_ms, 60000);
  assert_int_equal(p->drain_timeout_ms, 30000);
  assert_null(p->metrics_host);
  assert_int_equal(p->console, 1);
  assert_int_equal(p->ntokens, 0);
  assert_string_equal(p->projects[0].name, "p1");
  assert_string_equal(p->services[0].name, "s");
  assert_int_equal(p->services[0].kind, PLATFORM_KIND_SERVICE);
  assert_int_equal(p->services[0].ssh_enabled, 0);
  assert_int_equal(p->services[0].ntags, 0);
  platform_free(p);

  /* Minimal: no lists at all, explicit limits at their bounds. */
  p = parse_ok("{'listen':'localhost:65535','plainWs':true,"
               "'windowBytes':16384,'maxStreams':1000000,"
               "'connectTimeoutMs':100,'tokens':[],'projects':[],"
               "'services':[]}");
  assert_int_equal(p->listen_port, 65535);
  assert_int_equal(p->window, 16384);
  assert_int_equal(p->max_streams, 1000000);
  assert_int_equal(p->connect_timeout_ms, 100);
  assert_int_equal(p->nprojects + p->nservices + p->ntokens, 0);
  platform_free(p);

  /* The connection limits at their lower bounds... */
  p = parse_ok(HEAD ",'maxConnectionsPerToken':1,'handshakeTimeoutMs':1000,"
                    "'pingIntervalMs':500,'deadTimeoutMs':1000,"
                    "'resumeGraceMs':0,'drainTimeoutMs':0}");
  assert_int_equal(p->max_conns_per_token, 1);
  assert_int_equal(p->handshake_timeout_ms, 1000);
  assert_int_equal(p->ping_interval_ms, 500);
  assert_int_equal(p->dead_timeout_ms, 1000);
  assert_int_equal(p->resume_grace_ms, 0);
  assert_int_equal(p->drain_timeout_ms, 0);
  platform_free(p);

  /* The caps on connections not authorized yet, and the token budgets. */
  p = parse_ok(HEAD "}");
  assert_int_equal(p->max_unauthenticated, 1024);
  assert_int_equal(p->max_unauthenticated_per_addr, 64);
  assert_int_equal(p->max_streams_per_token, 4096);
  assert_int_equal(p->fd_reserve, 128);
  platform_free(p);
  p = parse_ok(HEAD ",'maxStreamsPerToken':1,'fdReserve':16}");
  assert_int_equal(p->max_streams_per_token, 1);
  assert_int_equal(p->fd_reserve, 16);
  platform_free(p);
  p = parse_ok(
      HEAD ",'maxUnauthenticated':1,'maxUnauthenticatedPerAddress':1000000}");
  assert_int_equal(p->max_unauthenticated, 1);
  assert_int_equal(p->max_unauthenticated_per_addr, 1000000);
  platform_free(p);

  /* ...and at their upper bounds. */
  p = parse_ok(HEAD ",'maxConnectionsPerToken':100000,"
                    "'handshakeTimeoutMs':120000,'pingIntervalMs':60000,"
                    "'deadTimeoutMs':300000,'resumeGraceMs':3600000,"
                    "'drainTimeoutMs':3600000}");
  assert_int_equal(p->max_conns_per_token, 100000);
  assert_int_equal(p->handshake_timeout_ms, 120000);
  assert_int_equal(p->ping_interval_ms, 60000);
  assert_int_equal(p->dead_timeout_ms, 300000);
  assert_int_equal(p->resume_grace_ms, 3600000);
  assert_int_equal(p->drain_timeout_ms, 3600000);
  platform_free(p);

  /* Only one of the liveness pair given: the other keeps its default. */
  p = parse_ok(HEAD ",'pingIntervalMs':14999}");
  assert_int_equal(p->ping_interval_ms, 14999);
  assert_int_equal(p->dead_timeout_ms, 15000);
  platform_free(p);
  p = parse_ok(HEAD ",'deadTimeoutMs':5001}");
  assert_int_equal(p->ping_interval_ms, 5000);
  assert_int_equal(p->dead_timeout_ms, 5001);
  platform_free(p);
}

typedef struct {
  const char *config;
  const char *error;
} bad_case_t;

static const bad_case_t bad_cases[] = {
    /* a fleet's keys */
    {"{'listen':'a:1','plainWs':true,'nodeId':'edge a'}",
     "nodeId: expected 1..128 characters of [A-Za-z0-9._-], got \"edge a\""},
    {"{'listen':'a:1','plainWs':true,'nodeId':7}",
     "nodeId: expected a string, got 7"},
    {"{'listen':'a:1','plainWs':true,'trustedProxies':'10.0.0.1'}",
     "trustedProxies: expected an array"},
    {"{'listen':'a:1','plainWs':true,'trustedProxies':['10.0.0.1/8']}",
     "trustedProxies[0]: expected a numeric address or ADDRESS/PREFIX (no "
     "host bits set), got \"10.0.0.1/8\""},
    {"{'listen':'a:1','plainWs':true,'trustedProxies':['lb.internal']}",
     "trustedProxies[0]: expected a numeric address"},
    {"{'listen':'a:1','plainWs':true,'trustedProxies':['::1/129']}",
     "trustedProxies[0]: expected a numeric address"},
    /* JSON syntax */
    {"", "invalid JSON at byte offset 0"},
    {"{'listen': }", "invalid JSON at byte offset 11"},
    {"{'listen':'a:1'", "invalid JSON at byte offset"},
    {"{} x", "invalid JSON at byte offset 3"},
    {"[]", "config: expected an object, got an array"},
    /* token roles */
    {HEAD ",'tokens':[{'id':'ci','sha256':'" SECRET_HEX "','role':'root'}]}",
     "tokens[0].role: expected 'admin' or 'member', got 'root'"},
    {HEAD ",'tokens':[{'id':'ci','sha256':'" SECRET_HEX "','role':true}]}",
     "tokens[0].role: expected a string, got true"},
    {HEAD PROJ ",'tokens':[{'id':'ci','sha256':'" SECRET_HEX
               "','projects':[]}]}",
     "tokens[0].projects: expected at least one project id (leave 'projects' "
     "out for every project)"},
    {HEAD PROJ ",'tokens':[{'id':'ci','sha256':'" SECRET_HEX
               "','projects':'p1'}]}",
     "tokens[0].projects: expected an array, got 'p1'"},
    {HEAD PROJ ",'tokens':[{'id':'ci','sha256':'" SECRET_HEX
               "','projects':['p 1']}]}",
     "tokens[0].projects[0]: expected a project id (1..128 characters of "
     "[A-Za-z0-9._-]), got 'p 1'"},
    {HEAD PROJ ",'tokens':[{'id':'ci','sha256':'" SECRET_HEX
               "','projects':['p1','p1']}]}",
     "tokens[0].projects[1]: same as projects[0]"},
    {HEAD PROJ ",'tokens':[{'id':'ci','sha256':'" SECRET_HEX
               "','projects':['p1']},{'id':'b','sha256':'" OTHER_HEX_UPPER
               "','projects':['p1','p9']}]}",
     "tokens[1].projects[1]: unknown project 'p9' (not in 'projects')"},
    {HEAD ",'tokens':[{'id':'ci','sha256':'" SECRET_HEX "','scope':'x'}]}",
     "tokens[0]: unknown key 'scope'"},
    /* not UTF-8 (an overlong '/', a lone byte) */
    {HEAD ",'projects':[{'id':'p1','name':'a\xc0\xaf'}]}",
     "projects[0].name: invalid UTF-8"},
    {HEAD ",'tokens':[{'id':'ci','sha256':'" SECRET_HEX "','x\xff':1}]}",
     "tokens[0]: invalid UTF-8 in a key"},
    {"null", "config: expected an object, got null"},
    /* unknown and repeated keys */
    {HEAD ",'windowbytes':16384}", "config: unknown key 'windowbytes'"},
    {HEAD ",'plainWs':true}", "config: duplicate key 'plainWs'"},
    {HEAD ",'console':1}", "console: expected true or false, got 1"},
    /* listen */
    {"{'plainWs':true}", "listen: required"},
    {"{'listen':8443,'plainWs':true}", "listen: expected a string, got 8443"},
    {"{'listen':'localhost','plainWs':true}",
     "listen: expected 'host:port', got 'localhost'"},
    {"{'listen':'::1:80','plainWs':true}", "listen: expected 'host:port'"},
    {"{'listen':':80','plainWs':true}", "listen: expected 'host:port'"},
    {"{'listen':'[zz]:80','plainWs':true}", "listen: expected 'host:port'"},
    {"{'listen':'[::1]80','plainWs':true}", "listen: expected 'host:port'"},
    {"{'listen':'a b:80','plainWs':true}", "listen: expected 'host:port'"},
    {"{'listen':'h:8x','plainWs':true}", "listen: expected 'host:port'"},
    {"{'listen':'h:','plainWs':true}", "listen: expected 'host:port'"},
    {"{'listen':'h:-1','plainWs':true}", "listen: expected 'host:port'"},
    {"{'listen':'h:123456','plainWs':true}", "listen: expected 'host:port'"},
    {"{'listen':'h:65536','plainWs':true}",
     "listen: port must be in 0..65535, got 'h:65536'"},
    /* tls / plainWs */
    {"{'listen':'h:1'}", "tls: required"},
    {"{'listen':'h:1','plainWs':false}", "tls: required"},
    {"{'listen':'h:1','plainWs':true,'tls':{'cert':'c','key':'k'}}",
     "plainWs: cannot be true when 'tls' is set"},
    {"{'listen':'h:1','tls':{'cert':'c'}}", "tls.key: required"},
    {"{'listen':'h:1','tls':{'key':'k'}}", "tls.cert: required"},
    {"{'listen':'h:1','tls':'x'}", "tls: expected an object, got 'x'"},
    {"{'listen':'h:1','tls':{'cert':'c','key':'k','ca':'x'}}",
     "tls: unknown key 'ca'"},
    {"{'listen':'h:1','tls':{'cert':'','key':'k'}}",
     "tls.cert: expected a non-empty string"},
    {"{'listen':'h:1','tls':{'cert':'c','key':5}}",
     "tls.key: expected a string, got 5"},
    {"{'listen':'h:1','plainWs':1}", "plainWs: expected true or false, got 1"},
    /* limits */
    {HEAD ",'windowBytes':1000}",
     "windowBytes: expected an integer in 16384..16777216, got 1000"},
    {HEAD ",'windowBytes':16777217}",
     "windowBytes: expected an integer in 16384..16777216, got 16777217"},
    {HEAD ",'windowBytes':16384.5}", "windowBytes: expected an integer"},
    {HEAD ",'windowBytes':'64k'}", "windowBytes: expected an integer"},
    {HEAD ",'windowBytes':1e400}", "windowBytes: expected an integer"},
    {HEAD ",'maxStreams':0}",
     "maxStreams: expected an integer in 1..1000000, got 0"},
    {HEAD ",'maxStreams':1000001}", "maxStreams: expected an integer"},
    {HEAD ",'maxStreams':-1}", "maxStreams: expected an integer"},
    {HEAD ",'connectTimeoutMs':99}",
     "connectTimeoutMs: expected an integer in 100..600000, got 99"},
    {HEAD ",'connectTimeoutMs':600001}", "connectTimeoutMs: expected"},
    {HEAD ",'maxConnectionsPerToken':0}",
     "maxConnectionsPerToken: expected an integer in 1..100000, got 0"},
    {HEAD ",'maxConnectionsPerToken':100001}",
     "maxConnectionsPerToken: expected an integer in 1..100000, got 100001"},
    {HEAD ",'maxConnectionsPerToken':2.5}",
     "maxConnectionsPerToken: expected an integer in 1..100000, got 2.5"},
    {HEAD ",'maxConnectionsPerToken':'2'}",
     "maxConnectionsPerToken: expected an integer in 1..100000, got '2'"},
    {HEAD ",'maxconnectionspertoken':2}",
     "config: unknown key 'maxconnectionspertoken'"},
    {HEAD ",'maxStreamsPerToken':0}",
     "maxStreamsPerToken: expected an integer in 1..1000000, got 0"},
    {HEAD ",'fdReserve':15}",
     "fdReserve: expected an integer in 16..100000, got 15"},
    {HEAD ",'maxUnauthenticated':0}",
     "maxUnauthenticated: expected an integer in 1..1000000, got 0"},
    {HEAD ",'maxUnauthenticatedPerAddress':1000001}",
     "maxUnauthenticatedPerAddress: expected an integer in 1..1000000, got "
     "1000001"},
    {HEAD ",'handshakeTimeoutMs':999}",
     "handshakeTimeoutMs: expected an integer in 1000..120000, got 999"},
    {HEAD ",'handshakeTimeoutMs':120001}",
     "handshakeTimeoutMs: expected an integer in 1000..120000, got 120001"},
    {HEAD ",'handshakeTimeoutMs':null}",
     "handshakeTimeoutMs: expected an integer in 1000..120000, got null"},
    {HEAD ",'pingIntervalMs':499}",
     "pingIntervalMs: expected an integer in 500..60000, got 499"},
    {HEAD ",'pingIntervalMs':60001}",
     "pingIntervalMs: expected an integer in 500..60000, got 60001"},
    {HEAD ",'deadTimeoutMs':999}",
     "deadTimeoutMs: expected an integer in 1000..300000, got 999"},
    {HEAD ",'deadTimeoutMs':300001}",
     "deadTimeoutMs: expected an integer in 1000..300000, got 300001"},
    {HEAD ",'deadTimeoutMs':true}",
     "deadTimeoutMs: expected an integer in 1000..300000, got true"},
    /* deadTimeoutMs must exceed pingIntervalMs, given or defaulted */
    {HEAD ",'pingIntervalMs':5000,'deadTimeoutMs':5000}",
     "deadTimeoutMs: must be greater than pingIntervalMs (5000), got 5000"},
    {HEAD ",'pingIntervalMs':8000,'deadTimeoutMs':2000}",
     "deadTimeoutMs: must be greater than pingIntervalMs (8000), got 2000"},
    {HEAD ",'deadTimeoutMs':5000}",
     "deadTimeoutMs: must be greater than pingIntervalMs (5000, the "
     "default), got 5000"},
    {HEAD ",'pingIntervalMs':15000}",
     "pingIntervalMs: must be less than deadTimeoutMs (15000, the default), "
     "got 15000"},
    {HEAD ",'pingIntervalMs':60000}",
     "pingIntervalMs: must be less than deadTimeoutMs (15000, the default), "
     "got 60000"},
    {HEAD ",'resumeGraceMs':-1}",
     "resumeGraceMs: expected an integer in 0..3600000, got -1"},
    {HEAD ",'resumeGraceMs':3600001}",
     "resumeGraceMs: expected an integer in 0..3600000, got 3600001"},
    {HEAD ",'resumeGraceMs':0.5}",
     "resumeGraceMs: expected an integer in 0..3600000, got 0.5"},
    {HEAD ",'drainTimeoutMs':-1}",
     "drainTimeoutMs: expected an integer in 0..3600000, got -1"},
    {HEAD ",'drainTimeoutMs':3600001}",
     "drainTimeoutMs: expected an integer in 0..3600000, got 3600001"},
    {HEAD ",'drainTimeoutMs':'30s'}",
     "drainTimeoutMs: expected an integer in 0..3600000, got '30s'"},
    {HEAD ",'drainTimeoutMs':1,'drainTimeoutMs':2}",
     "config: duplicate key 'drainTimeoutMs'"},
    /* metricsListen */
    {HEAD ",'metricsListen':9100}",
     "metricsListen: expected a string, got 9100"},
    {HEAD ",'metricsListen':''}", "metricsListen: expected 'host:port'"},
    {HEAD ",'metricsListen':'127.0.0.1'}",
     "metricsListen: expected 'host:port', got '127.0.0.1'"},
    {HEAD ",'metricsListen':'::1:9100'}",
     "metricsListen: expected 'host:port'"},
    {HEAD ",'metricsListen':'127.0.0.1:65536'}",
     "metricsListen: port must be in 0..65535, got '127.0.0.1:65536'"},
    {HEAD ",'metricsListen':'localhost:9100'}",
     "metricsListen: expected a numeric IP address and a port "
     "('127.0.0.1:9100' or '[::1]:9100'), got 'localhost:9100'"},
    {HEAD ",'metricsListen':'127.0.0.256:9100'}",
     "metricsListen: expected a numeric IP address"},
    {"{'listen':'127.0.0.1:8443','plainWs':true,"
     "'metricsListen':'127.0.0.1:8443'}",
     "metricsListen: must differ from listen, got '127.0.0.1:8443' for both"},
    {HEAD ",'metricsListen':'127.0.0.1:1','metricsListen':'127.0.0.1:2'}",
     "config: duplicate key 'metricsListen'"},
    /* tokens */
    {HEAD ",'tokens':{}}", "tokens: expected an array, got an object"},
    {HEAD ",'tokens':['x']}", "tokens[0]: expected an object, got 'x'"},
    {HEAD ",'tokens':[{'sha256':'" SECRET_HEX "'}]}", "tokens[0].id: required"},
    {HEAD ",'tokens':[{'id':'','sha256':'" SECRET_HEX "'}]}",
     "tokens[0].id: expected 1..128 characters of [A-Za-z0-9._-], got ''"},
    {HEAD ",'tokens':[{'id':'a b','sha256':'" SECRET_HEX "'}]}",
     "tokens[0].id: expected 1..128 characters"},
    {HEAD ",'tokens':[{'id':'a'}]}", "tokens[0].sha256: required"},
    {HEAD ",'tokens':[{'id':'a','sha256':'abc'}]}",
     "tokens[0].sha256: expected 64 hex characters (SHA-256 of the token), "
     "got 'abc'"},
    {HEAD ",'tokens':[{'id':'a','sha256':'" SECRET_HEX "0'}]}",
     "tokens[0].sha256: expected 64 hex characters"},
    {HEAD
     ",'tokens':[{'id':'a','sha256':'"
     "gbb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b'}]}",
     "tokens[0].sha256: expected 64 hex characters"},
    {HEAD ",'tokens':[{'id':'a','sha256':'" SECRET_HEX "','secret':'x'}]}",
     "tokens[0]: unknown key 'secret'"},
    {HEAD ",'tokens':[{'id':'a','sha256':'" SECRET_HEX "'},"
          "{'id':'b','sha256':'" OTHER_HEX_UPPER "'},"
          "{'id':'a','sha256':'" OTHER_HEX_UPPER "'}]}",
     "tokens[2].id: duplicate id 'a' (also tokens[0])"},
    {HEAD ",'tokens':[{'id':'a','sha256':'" SECRET_HEX "'},"
          "{'id':'b','sha256':'2BB80D537B1DA3E38BD30361AA855686BDE0EACD7162FEF6"
          "A25FE97BF527A25B'}]}",
     "tokens[1].sha256: same hash as tokens[0]"},
    /* projects */
    {HEAD ",'projects':{}}", "projects: expected an array"},
    {HEAD ",'projects':[{'name':'x'}]}", "projects[0].id: required"},
    {HEAD ",'projects':[{'id':'p1'},{'id':'p2'},{'id':'p1'}]}",
     "projects[2].id: duplicate id 'p1' (also projects[0])"},
    {HEAD ",'projects':[{'id':'p/1'}]}", "projects[0].id: expected 1..128"},
    {HEAD ",'projects':[{'id':'p1','name':''}]}",
     "projects[0].name: expected a non-empty string"},
    {HEAD ",'projects':[{'id':'p1','name':'a\\nb'}]}",
     "projects[0].name: expected a non-empty string of at most 256 bytes "
     "without control characters, got 'a?b'"},
    {HEAD ",'projects':[{'id':'p1','name':7}]}",
     "projects[0].name: expected a string, got 7"},
    {HEAD ",'projects':[{'id':'p1','Name':'x'}]}",
     "projects[0]: unknown key 'Name'"},
    /* services */
    {HEAD SVC1("{'projectId':'p1','upstream':'h:1'}"),
     "services[0].id: required"},
    {HEAD SVC1("{'id':'s','upstream':'h:1'}"),
     "services[0].projectId: required"},
    {HEAD SVC1("{'id':'s','projectId':'p9','upstream':'h:1'}"),
     "services[0].projectId: unknown project 'p9'"},
    {HEAD ",'services':[{'id':'s','projectId':'p1','upstream':'h:1'}]}",
     "services[0].projectId: unknown project 'p1'"},
    {HEAD SVC1(WEB "},{'id':'api','projectId':'p1','upstream':'h:1'}," WEB "}"),
     "services[2].id: duplicate service 'web' in project 'p1' (also "
     "services[0])"},
    {HEAD SVC1(WEB ",'kind':'vm'}"),
     "services[0].kind: expected 'service' or 'job', got 'vm'"},
    {HEAD SVC1(WEB ",'kind':1}"), "services[0].kind: expected a string, got 1"},
    {HEAD SVC1("{'id':'s','projectId':'p1'}"),
     "services[0].upstream: required for kind 'service'"},
    {HEAD SVC1(WEB "},{'id':'a','projectId':'p1','upstream':'h:1'},"
                   "{'id':'b','projectId':'p1','upstream':'foo'}"),
     "services[2].upstream: expected 'host:port', got 'foo'"},
    {HEAD SVC1("{'id':'s','projectId':'p1','upstream':'h:0'}"),
     "services[0].upstream: port must be in 1..65535, got 'h:0'"},
    {HEAD SVC1("{'id':'s','projectId':'p1','upstream':'1.2.3.4:99999'}"),
     "services[0].upstream: port must be in 1..65535"},
    {HEAD SVC1("{'id':'j','projectId':'p1','kind':'job','upstream':'x'}"),
     "services[0].upstream: expected 'host:port', got 'x'"},
    {HEAD SVC1("{'id':'j','projectId':'p1','kind':'job','upstream':1}"),
     "services[0].upstream: expected a string, got 1"},
    {HEAD SVC1(WEB ",'tags':'prod'}"),
     "services[0].tags: expected an array, got 'prod'"},
    {HEAD SVC1(WEB ",'tags':['prod','']}"),
     "services[0].tags[1]: expected a non-empty string"},
    {HEAD SVC1(WEB ",'tags':[1]}"),
     "services[0].tags[0]: expected a string, got 1"},
    {HEAD SVC1(WEB ",'sshEnabled':'yes'}"),
     "services[0].sshEnabled: expected true or false, got 'yes'"},
    {HEAD SVC1(WEB ",'sshEnable':true}"),
     "services[0]: unknown key 'sshEnable'"},
    {HEAD SVC1(WEB ",'name':null}"),
     "services[0].name: expected a string, got null"},
    {HEAD SVC1("[]"), "services[0]: expected an object, got an array"},
};

static void test_metrics_listen(void **state) {
  platform_t *p = parse_ok(HEAD ",'metricsListen':'127.0.0.1:9100'}");
  assert_string_equal(p->metrics_host, "127.0.0.1");
  assert_int_equal(p->metrics_port, 9100);
  platform_free(p);

  p = parse_ok(HEAD ",'metricsListen':'[::1]:0'}");
  assert_string_equal(p->metrics_host, "::1");
  assert_int_equal(p->metrics_port, 0);
  platform_free(p);

  /* Port 0 twice is two kernel-picked ports: no conflict. */
  p = parse_ok(HEAD ",'metricsListen':'127.0.0.1:0'}");
  assert_int_equal(p->metrics_port, 0);
  platform_free(p);

  /* The same port on another address does not collide. */
  p = parse_ok("{'listen':'127.0.0.1:8443','plainWs':true,"
               "'metricsListen':'127.0.0.2:8443'}");
  assert_string_equal(p->metrics_host, "127.0.0.2");
  assert_int_equal(p->metrics_port, 8443);
  platform_free(p);
}

static void test_invalid_configs(void **state) {
  for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
    platform_t *p = (platform_t *)1;
    char err[512];
    char *want = unquote(bad_cases[i].error);

    if (parse_at(bad_cases[i].config, NULL, &p, err, sizeof err) != -1)
      fail_msg("case %zu parsed: %s", i, bad_cases[i].config);
    assert_null(p);
    if (strstr(err, want) == NULL)
      fail_msg("case %zu: error \"%s\" lacks \"%s\"", i, err, want);
    free(want);
  }
}

static void test_long_id_limit(void **state) {
  char cfg[512], id[130];
  platform_t *p = NULL;
  char err[512];

  memset(id, 'x', 128);
  id[128] = '\0';
  snprintf(cfg, sizeof cfg, HEAD ",'projects':[{'id':'%s'}]}", id);
  p = parse_ok(cfg);
  assert_int_equal(strlen(p->projects[0].id), 128);
  platform_free(p);

  id[128] = 'x';
  id[129] = '\0';
  snprintf(cfg, sizeof cfg, HEAD ",'projects':[{'id':'%s'}]}", id);
  assert_int_equal(parse_at(cfg, NULL, &p, err, sizeof err), -1);
  assert_non_null(strstr(err, "projects[0].id: expected 1..128 characters"));
  /* The echoed value is cut short. */
  assert_non_null(strstr(err, "...\""));
}

/* cJSON would cut "p\u0000x" to "p"; an escaped backslash is fine. */
static void test_nul_escape(void **state) {
  platform_t *p = NULL;
  char err[512];

  assert_int_equal(parse_at(HEAD ",'projects':[{'id':'p\\u0000x'}]}", NULL, &p,
                            err, sizeof err),
                   -1);
  assert_string_equal(err,
                      "invalid JSON at byte offset 59: \\u0000 is not allowed");
  p = parse_ok(HEAD ",'projects':[{'id':'p','name':'a\\\\u0000'}]}");
  assert_string_equal(p->projects[0].name, "a\\u0000");
  platform_free(p);
}

static void test_error_buffer(void **state) {
  platform_t *p = NULL;
  char err[8];

  /* Tiny and missing error buffers: truncated, never overrun. */
  assert_int_equal(parse_at("{'listen':1}", NULL, &p, err, sizeof err), -1);
  assert_string_equal(err, "listen:");
  assert_int_equal(parse_at("{'listen':1}", NULL, &p, NULL, 0), -1);
  assert_int_equal(platform_parse(NULL, 0, NULL, &p, err, sizeof err), -1);
  assert_null(p);
}

static void test_roles(void **state) {
  platform_t *p =
      parse_ok(HEAD ",'tokens':[{'id':'old','sha256':'" SECRET_HEX "'},"
                    "{'id':'m','sha256':'" OTHER_HEX_UPPER "','role':'member',"
                    "'projects':['p2','p1']},"
                    "{'id':'a','sha256':'" DEPLOY_HEX "','role':'admin'}],"
                    "'projects':[{'id':'p1'},{'id':'p2'},{'id':'p3'}]}");
  char d[PLATFORM_DESCRIBE_SIZE];

  /* No "role": an admin, marked so the edge can warn. */
  assert_int_equal(p->tokens[0].role, PLATFORM_ROLE_ADMIN);
  assert_true(p->tokens[0].role_default);
  assert_int_equal(p->tokens[0].nprojects, 0);
  assert_int_equal(p->tokens[1].role, PLATFORM_ROLE_MEMBER);
  assert_false(p->tokens[1].role_default);
  assert_int_equal(p->tokens[1].nprojects, 2);
  assert_string_equal(p->tokens[1].projects[0], "p2");
  assert_int_equal(p->tokens[2].role, PLATFORM_ROLE_ADMIN);
  assert_false(p->tokens[2].role_default);

  assert_true(platform_token_has_project(&p->tokens[0], "p3"));
  assert_true(platform_token_has_project(&p->tokens[1], "p1"));
  assert_false(platform_token_has_project(&p->tokens[1], "p3"));
  assert_false(platform_token_has_project(&p->tokens[1], NULL));

  platform_token_describe(&p->tokens[0], d, sizeof d);
  assert_string_equal(d, "role admin");
  platform_token_describe(&p->tokens[1], d, sizeof d);
  assert_string_equal(d, "role member for projects p2, p1");
  /* A list that does not fit is cut whole, and says so. */
  platform_token_describe(&p->tokens[1], d, 34);
  assert_string_equal(d, "role member for projects p2, ...");
  platform_token_describe(&p->tokens[1], d, 32);
  assert_string_equal(d, "role member for projects ...");
  platform_token_describe(&p->tokens[1], d, 4);
  assert_string_equal(d, "rol");
  assert_string_equal(platform_role_name(PLATFORM_ROLE_MEMBER), "member");
  platform_free(p);
}

static platform_t *access_platform(void) {
  return parse_ok(HEAD ",'tokens':[{'id':'ci','sha256':'" SECRET_HEX "'},"
                       "{'id':'ops','sha256':'" OTHER_HEX_UPPER "'},"
                       "{'id':'deploy','sha256':'" DEPLOY_HEX "',"
                       "'role':'member','projects':['p2']}],"
                       "'projects':[{'id':'p1'},{'id':'p2'}],'services':["
                       "{'id':'web','projectId':'p1','upstream':'h:22',"
                       "'sshEnabled':true},"
                       "{'id':'db','projectId':'p1','upstream':'h:22'},"
                       "{'id':'cron','projectId':'p1','kind':'job',"
                       "'sshEnabled':true},"
                       "{'id':'only2','projectId':'p2','upstream':'h:22',"
                       "'sshEnabled':true}]}");
}

static void test_find_token(void **state) {
  platform_t *p = access_platform();
  const platform_token_t *t;

  t = platform_find_token(p, "secret", 6);
  assert_non_null(t);
  assert_string_equal(t->id, "ci");
  t = platform_find_token(p, "other", 5);
  assert_non_null(t);
  assert_string_equal(t->id, "ops");
  /* Only the given length counts. */
  t = platform_find_token(p, "secretXYZ", 6);
  assert_non_null(t);
  assert_string_equal(t->id, "ci");
  assert_null(platform_find_token(p, "secret", 5));
  assert_null(platform_find_token(p, "Secret", 6));
  assert_null(platform_find_token(p, "secret\n", 7));
  assert_null(platform_find_token(p, "", 0));
  assert_null(platform_find_token(p, NULL, 0));
  assert_null(platform_find_token(p, NULL, 6));
  assert_null(platform_find_token(NULL, "secret", 6));
  platform_free(p);
}

typedef struct {
  const char *token;
  const char *project;
  const char *service;
  platform_access_t want;
  int status;
  const char *msg;
} access_case_t;

static const access_case_t access_cases[] = {
    {NULL, "p1", "web", PLATFORM_ACCESS_UNAUTHORIZED, 401,
     "invalid or missing API token"},
    {"wrong", "p1", "web", PLATFORM_ACCESS_UNAUTHORIZED, 401,
     "invalid or missing API token"},
    {"", "p1", "web", PLATFORM_ACCESS_UNAUTHORIZED, 401,
     "invalid or missing API token"},
    /* The token is checked first: no hint about which services exist. */
    {"wrong", "p9", "nope", PLATFORM_ACCESS_UNAUTHORIZED, 401,
     "invalid or missing API token"},
    {"secret", "p9", "web", PLATFORM_ACCESS_NOT_FOUND, 404,
     "service web not found in project p9"},
    {"secret", "p1", "nope", PLATFORM_ACCESS_NOT_FOUND, 404,
     "service nope not found in project p1"},
    {"secret", "p1", "only2", PLATFORM_ACCESS_NOT_FOUND, 404,
     "service only2 not found in project p1"},
    {"secret", "p1", "a\r\nX-Evil: 1", PLATFORM_ACCESS_NOT_FOUND, 404,
     "service a??X-Evil: 1 not found in project p1"},
    {"secret", NULL, NULL, PLATFORM_ACCESS_NOT_FOUND, 404,
     "service  not found in project "},
    {"secret", "p1", "cron", PLATFORM_ACCESS_JOB, 409,
     "SSH access is available for services only"},
    {"secret", "p1", "db", PLATFORM_ACCESS_SSH_DISABLED, 409,
     "SSH is not enabled for service db: enable SSH in the service's "
     "Resources"},
    /* A project outside the token's: 403 before the lookup, so an
     * unknown one is not told apart. */
    {"deploy", "p1", "web", PLATFORM_ACCESS_FORBIDDEN, 403,
     "token deploy has role member for projects p2: it may not access "
     "project p1"},
    {"deploy", "p9", "x", PLATFORM_ACCESS_FORBIDDEN, 403,
     "token deploy has role member for projects p2: it may not access "
     "project p9"},
    {"deploy", "p1\r\nX: 1", "x", PLATFORM_ACCESS_FORBIDDEN, 403,
     "token deploy has role member for projects p2: it may not access "
     "project p1??X: 1"},
    {"deploy", "p2", "only2", PLATFORM_ACCESS_OK, 200, ""},
    {"secret", "p1", "web", PLATFORM_ACCESS_OK, 200, ""},
    {"other", "p2", "only2", PLATFORM_ACCESS_OK, 200, ""},
};

static void test_check_ssh(void **state) {
  platform_t *p = access_platform();

  for (size_t i = 0; i < sizeof access_cases / sizeof access_cases[0]; i++) {
    const access_case_t *c = &access_cases[i];
    const platform_service_t *svc = (const platform_service_t *)1;
    const platform_token_t *tok = (const platform_token_t *)1;
    char msg[256] = "unset";
    size_t len = c->token ? strlen(c->token) : 0;
    platform_access_t a = platform_check_ssh(
        p, c->token, len, c->project, c->service, &svc, &tok, msg, sizeof msg);

    if (a != c->want || strcmp(msg, c->msg) != 0)
      fail_msg("case %zu: got %d \"%s\", want %d \"%s\"", i, (int)a, msg,
               (int)c->want, c->msg);
    assert_int_equal(platform_access_http_status(a), c->status);
    if (a == PLATFORM_ACCESS_OK) {
      assert_ptr_equal(svc, platform_find_service(p, c->project, c->service));
      assert_ptr_equal(tok, platform_find_token(p, c->token, len));
    } else {
      assert_null(svc);
      assert_null(tok);
    }
  }
  /* Output pointers are optional. */
  assert_int_equal(
      platform_check_ssh(p, "secret", 6, "p1", "web", NULL, NULL, NULL, 0),
      PLATFORM_ACCESS_OK);
  assert_int_equal(
      platform_check_ssh(p, "secret", 6, "p1", "db", NULL, NULL, NULL, 0),
      PLATFORM_ACCESS_SSH_DISABLED);
  platform_free(p);
}

static void test_http_status(void **state) {
  assert_int_equal(platform_access_http_status(PLATFORM_ACCESS_OK), 200);
  assert_int_equal(platform_access_http_status(PLATFORM_ACCESS_UNAUTHORIZED),
                   401);
  assert_int_equal(platform_access_http_status(PLATFORM_ACCESS_FORBIDDEN), 403);
  assert_int_equal(platform_access_http_status(PLATFORM_ACCESS_NOT_FOUND), 404);
  assert_int_equal(platform_access_http_status(PLATFORM_ACCESS_JOB), 409);
  assert_int_equal(platform_access_http_status(PLATFORM_ACCESS_SSH_DISABLED),
                   409);
}

static void expect_tls(const char *base_dir, const char *cert,
                       const char *want_cert, const char *want_key) {
  char cfg[512], err[512];
  platform_t *p = NULL;

  snprintf(cfg, sizeof cfg,
           "{'listen':'h:1','tls':{'cert':'%s','key':'/abs/edge.key'}}", cert);
  if (parse_at(cfg, base_dir, &p, err, sizeof err) != 0)
    fail_msg("%s", err);
  assert_string_equal(p->tls_cert, want_cert);
  assert_string_equal(p->tls_key, want_key);
  platform_free(p);
}

static void test_tls_paths(void **state) {
  expect_tls("/etc/wsmux", "edge.crt", "/etc/wsmux/edge.crt", "/abs/edge.key");
  expect_tls("/etc/wsmux/", "edge.crt", "/etc/wsmux/edge.crt", "/abs/edge.key");
  expect_tls("/etc/wsmux", "certs/edge.crt", "/etc/wsmux/certs/edge.crt",
             "/abs/edge.key");
  expect_tls("/", "edge.crt", "/edge.crt", "/abs/edge.key");
  expect_tls("conf", "edge.crt", "conf/edge.crt", "/abs/edge.key");
  expect_tls("/etc/wsmux", "/srv/edge.crt", "/srv/edge.crt", "/abs/edge.key");
  expect_tls(NULL, "edge.crt", "edge.crt", "/abs/edge.key");
}

static void expect_state_file(const char *base_dir, const char *config,
                              const char *want) {
  char err[512];
  platform_t *p = NULL;

  if (parse_at(config, base_dir, &p, err, sizeof err) != 0)
    fail_msg("%s", err);
  assert_string_equal(p->state_file, want);
  platform_free(p);
}

static void test_state_file(void **state) {
  /* Default: next to the config. */
  expect_state_file("/etc/wsmux", HEAD "}", "/etc/wsmux/wsmux-edge-state.json");
  expect_state_file(NULL, HEAD "}", "wsmux-edge-state.json");
  /* Relative paths resolve like the tls paths; absolute ones are kept. */
  expect_state_file("/etc/wsmux", HEAD ",'stateFile':'state/s.json'}",
                    "/etc/wsmux/state/s.json");
  expect_state_file("/etc/wsmux", HEAD ",'stateFile':'/var/lib/wsmux/s.json'}",
                    "/var/lib/wsmux/s.json");
}

static const bad_case_t bad_state_files[] = {
    {HEAD ",'stateFile':1}", "stateFile: expected a string, got 1"},
    {HEAD ",'stateFile':''}", "stateFile: expected a non-empty string"},
    {HEAD ",'stateFile':'a\nb'}", "stateFile: expected a non-empty string"},
    {HEAD ",'stateFile':null}", "stateFile: expected a string, got null"},
    {HEAD ",'statefile':'x'}", "config: unknown key 'statefile'"},
};

/* nodeId names the edge (the host name by default, cut to an id);
 * trustedProxies decides whose X-Forwarded-For is believed, read right to
 * left past every trusted hop. */
static void test_fleet(void **state) {
  platform_t *p = parse_ok("{'listen':'a:1','plainWs':true}");
  char host[256], out[64];
  assert_int_equal(gethostname(host, sizeof host), 0);
  assert_true(id_valid(p->node_id));
  if (id_valid(host))
    assert_string_equal(p->node_id, host);
  assert_int_equal(p->ntrusted, 0);
  /* Nobody trusted: the peer, whatever the header says. */
  platform_client_addr(p, "10.0.0.5", "6.6.6.6", out, sizeof out);
  assert_string_equal(out, "10.0.0.5");
  platform_free(p);

  p = parse_ok("{'listen':'a:1','plainWs':true,'nodeId':'edge-a',"
               "'trustedProxies':['10.0.0.0/24','fd00::1','127.0.0.1']}");
  assert_string_equal(p->node_id, "edge-a");
  assert_int_equal(p->ntrusted, 3);
  static const struct {
    const char *peer, *xff, *want;
  } cases[] = {
      {"10.0.0.5", "", "10.0.0.5"},               /* no header */
      {"10.0.0.5", "203.0.113.7", "203.0.113.7"}, /* one trusted hop */
      {"10.0.1.5", "203.0.113.7", "10.0.1.5"},    /* peer not trusted */
      /* a client's own text is left of what the proxies appended */
      {"10.0.0.5", "6.6.6.6, 203.0.113.7", "203.0.113.7"},
      /* two trusted hops */
      {"10.0.0.5", "6.6.6.6, 203.0.113.7, 10.0.0.9", "203.0.113.7"},
      {"fd00::1", "2001:db8::7", "2001:db8::7"},
      {"::ffff:10.0.0.5", "198.51.100.1", "198.51.100.1"}, /* v4-mapped */
      /* garbage stops the walk at the last address believed */
      {"10.0.0.5", "x, 10.0.0.8", "10.0.0.8"},
      {"10.0.0.5", "10.0.0.7,  10.0.0.8", "10.0.0.7"}, /* all trusted */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    platform_client_addr(p, cases[i].peer, cases[i].xff, out, sizeof out);
    if (strcmp(out, cases[i].want) != 0)
      fail_msg("case %zu: %s, \"%s\" -> %s, want %s", i, cases[i].peer,
               cases[i].xff, out, cases[i].want);
  }
  platform_free(p);
}

static void test_state_file_invalid(void **state) {
  for (size_t i = 0; i < sizeof bad_state_files / sizeof bad_state_files[0];
       i++) {
    platform_t *p = (platform_t *)1;
    char err[512];
    char *want = unquote(bad_state_files[i].error);

    if (parse_at(bad_state_files[i].config, NULL, &p, err, sizeof err) != -1)
      fail_msg("case %zu parsed: %s", i, bad_state_files[i].config);
    assert_null(p);
    if (strstr(err, want) == NULL)
      fail_msg("case %zu: error \"%s\" lacks \"%s\"", i, err, want);
    free(want);
  }
}

static void test_load_missing(void **state) {
  platform_t *p = (platform_t *)1;
  char err[512];

  assert_int_equal(
      platform_load("/nonexistent/wsmux/edge.json", &p, err, sizeof err), -1);
  assert_null(p);
  assert_non_null(strstr(err, "/nonexistent/wsmux/edge.json"));
  assert_non_null(strstr(err, "No such file or directory"));
}

static void write_file(const char *path, const char *squoted) {
  char *text = unquote(squoted);
  FILE *f = fopen(path, "w");

  assert_non_null(f);
  assert_int_equal(fputs(text, f) >= 0, 1);
  assert_int_equal(fclose(f), 0);
  free(text);
}

static void test_load_file(void **state) {
  char dir[] = "/tmp/wsmux_platform_XXXXXX";
  char path[64], want[256], err[512];
  platform_t *p = NULL;
  FILE *f;

  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/edge.json", dir);

  write_file(path, "{'listen':'0.0.0.0:8443',"
                   "'tls':{'cert':'edge.crt','key':'keys/edge.key'}}\n");
  if (platform_load(path, &p, err, sizeof err) != 0)
    fail_msg("%s", err);
  snprintf(want, sizeof want, "%s/edge.crt", dir);
  assert_string_equal(p->tls_cert, want);
  snprintf(want, sizeof want, "%s/keys/edge.key", dir);
  assert_string_equal(p->tls_key, want);
  assert_int_equal(p->listen_port, 8443);
  snprintf(want, sizeof want, "%s/wsmux-edge-state.json", dir);
  assert_string_equal(p->state_file, want);
  platform_free(p);

  /* Parse errors name the file, then the JSON path. */
  write_file(path, "{'listen':'0.0.0.0:8443','plainWs':true,'x':1}");
  assert_int_equal(platform_load(path, &p, err, sizeof err), -1);
  snprintf(want, sizeof want, "%s: config: unknown key \"x\"", path);
  assert_string_equal(err, want);
  assert_null(p);

  /* Larger than 16 MiB (sparse, so cheap). */
  f = fopen(path, "w");
  assert_non_null(f);
  assert_int_equal(ftruncate(fileno(f), (16 << 20) + 1), 0);
  fclose(f);
  assert_int_equal(platform_load(path, &p, err, sizeof err), -1);
  assert_non_null(strstr(err, "larger than 16 MiB"));

  /* A directory is not a config. */
  assert_int_equal(platform_load(dir, &p, err, sizeof err), -1);
  assert_non_null(strstr(err, "Is a directory"));

  assert_int_equal(unlink(path), 0);
  assert_int_equal(rmdir(dir), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_full_config),
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_metrics_listen),
      cmocka_unit_test(test_invalid_configs),
      cmocka_unit_test(test_long_id_limit),
      cmocka_unit_test(test_nul_escape),
      cmocka_unit_test(test_error_buffer),
      cmocka_unit_test(test_find_token),
      cmocka_unit_test(test_roles),
      cmocka_unit_test(test_check_ssh),
      cmocka_unit_test(test_http_status),
      cmocka_unit_test(test_tls_paths),
      cmocka_unit_test(test_state_file),
      cmocka_unit_test(test_state_file_invalid),
      cmocka_unit_test(test_fleet),
      cmocka_unit_test(test_load_missing),
      cmocka_unit_test(test_load_file),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
