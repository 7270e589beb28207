/* `wsmux ssh doctor`: find the first reason SSH to a service would fail. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/api.h"
#include "cli/args.h"
#include "cli/cmd_ssh.h"
#include "cli/exitcode.h"
#include "cli/output.h"
#include "base/log.h"
#include "edge/identity.h"

static const char usage[] =
    "usage: wsmux ssh doctor --projectId P --serviceId S [--key-file F]\n"
    "                        [--edge URL] [--token T] [--ca FILE] "
    "[--insecure]\n"
    "                        [--http-proxy URL | --http-proxy-file FILE]\n"
    "\n"
    "Says how it reaches the edge (`via` line: the HTTP proxy, or direct),\n"
    "then checks, in order, and stops at the first failure, saying what to\n"
    "do:\n"
    "  1. the edge is reachable and accepts the API token;\n"
    "  2. project P exists and S is a service in it (not a job);\n"
    "  3. SSH is enabled on S;\n"
    "  4. your public key (from --key-file, else every key `ssh-add -L`\n"
    "     lists) is in an SSH identity that matches S, and if it is only in\n"
    "     identities that do not, which restriction excludes S.\n"
    "Exit status: 0 when everything passes, else the code of the failed\n"
    "check (2 token, 3 not found, 4 network, 5 job or SSH disabled, 7 key,\n"
    "8 the HTTP proxy refused).\n";

#define KEYS_MAX 64

typedef struct {
  cli_target_t target;
  cJSON *service; /* the Service object */
  cJSON *keys;    /* our public keys, normalized strings */
} doctor_t;

static void ok(const char *fmt, const char *a, const char *b) {
  printf("ok    ");
  printf(fmt, a, b);
  putchar('\n');
}

static int fail(int code, const char *fmt, const char *a, const char *b) {
  printf("FAIL  ");
  printf(fmt, a, b);
  putchar('\n');
  return code;
}

/* How the edge is reached: through which HTTP proxy, or directly. */
static void show_route(const doctor_t *d) {
  char route[512];
  http_proxy_describe(&d->target.ctx.proxy, route, sizeof(route));
  printf("via   %s\n", route);
}

static int check_token(doctor_t *d) {
  cJSON *doc = NULL;
  int rc = api_call(&d->target.ctx, "GET", "/v1/projects", NULL, &doc);
  if (rc == EXIT_PROXY)
    return fail(rc,
                "proxy: the HTTP proxy %s refused the tunnel to %s (see "
                "the error above)",
                d->target.ctx.proxy.proxy.display, d->target.ctx.edge);
  if (rc == EXIT_AUTH)
    return fail(rc, "token: the edge at %s rejects the API token%s",
                d->target.ctx.edge,
                " (run `wsmux login` again or fix $WSMUX_TOKEN)");
  if (rc != EXIT_OK)
    return fail(rc, "edge: cannot use the edge at %s%s", d->target.ctx.edge,
                d->target.ctx.proxy.use ? " through the HTTP proxy (see the "
                                          "error above)"
                                        : " (see the error above)");
  ok("token: accepted by %s%s", d->target.ctx.edge, "");
  const cJSON *p;
  int found = 0;
  cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(doc, "projects")) {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(p, "id");
    found |=
        cJSON_IsString(id) && strcmp(id->valuestring, d->target.project) == 0;
  }
  cJSON_Delete(doc);
  if (!found)
    return fail(EXIT_NOT_FOUND, "project: %s does not exist%s",
                d->target.project, " (`wsmux project list` shows them)");
  return EXIT_OK;
}

static int check_service(doctor_t *d) {
  char path[400];
  snprintf(path, sizeof(path), "/v1/projects/%s/services/%s", d->target.project,
           d->target.service);
  int rc = api_call(&d->target.ctx, "GET", path, NULL, &d->service);
  if (rc == EXIT_NOT_FOUND)
    return fail(rc, "service: %s not found in project %s", d->target.service,
                d->target.project);
  if (rc != EXIT_OK)
    return fail(rc, "service: cannot read %s%s", d->target.service, "");
  const cJSON *kind = cJSON_GetObjectItemCaseSensitive(d->service, "kind");
  if (cJSON_IsString(kind) && strcmp(kind->valuestring, "job") == 0)
    return fail(EXIT_REFUSED,
                "service: %s is a job; SSH access is available for services "
                "only%s",
                d->target.service, "");
  ok("service: %s found in project %s", d->target.service, d->target.project);
  const cJSON *ssh = cJSON_GetObjectItemCaseSensitive(d->service, "sshEnabled");
  if (!cJSON_IsTrue(ssh))
    return fail(EXIT_REFUSED,
                "ssh: SSH is not enabled on %s: enable it in the service's "
                "Resources, or run `wsmux service ssh enable --projectId %s "
                "--serviceId <service>`",
                d->target.service, d->target.project);
  ok("ssh: enabled on %s%s", d->target.service, "");
  return EXIT_OK;
}

/* Our public keys: --key-file, else the agent's. */
static int load_keys(doctor_t *d, const char *key_file) {
  char err[512];
  d->keys = cJSON_CreateArray();
  if (d->keys == NULL)
    return EXIT_USAGE;
  if (key_file != NULL) {
    if (api_keys_add_file(d->keys, key_file, err, sizeof(err)) < 0)
      return fail(EXIT_USAGE, "key: %s%s", err, "");
    return EXIT_OK;
  }
  FILE *f = popen("ssh-add -L 2>/dev/null", "r");
  char text[KEYS_MAX * 1024];
  size_t n = f ? fread(text, 1, sizeof(text) - 1, f) : 0;
  int status = f ? pclose(f) : -1;
  text[n] = '\0';
  if (status != 0 ||
      api_keys_add_text(d->keys, text, "ssh-agent", err, sizeof(err)) <= 0)
    return fail(EXIT_USAGE,
                "key: no key given and none in ssh-agent: pass --key-file "
                "~/.ssh/id_ed25519.pub%s%s",
                "", "");
  return EXIT_OK;
}

/* "type base64" of a key line, to compare keys whatever their comments. */
static int same_key(const char *a, const char *b) {
  const char *sa = strchr(a, ' '), *sb = strchr(b, ' ');
  if (sa == NULL || sb == NULL)
    return 0;
  size_t la = strcspn(sa + 1, " ") + (size_t)(sa + 1 - a);
  size_t lb = strcspn(sb + 1, " ") + (size_t)(sb + 1 - b);
  return la == lb && strncmp(a, b, la) == 0;
}

static int holds_our_key(const doctor_t *d, const identity_t *id) {
  for (size_t i = 0; i < id->nkeys; i++) {
    const cJSON *k;
    cJSON_ArrayForEach(k, d->keys) {
      char *norm = NULL, err[IDENTITY_ERR_SIZE];
      if (identity_key_normalize(k->valuestring, &norm, err, sizeof(err)) ==
          0) {
        int same = same_key(norm, id->keys[i]);
        free(norm);
        if (same)
          return 1;
      }
    }
  }
  return 0;
}

static int has(char *const *list, size_t n, const char *s) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(list[i], s) == 0)
      return 1;
  return 0;
}

/* The items of list, printable (the edge's text, for the terminal). */
static void join(char *out, size_t len, char *const *list, size_t n) {
  char item[512];
  out[0] = '\0';
  for (size_t i = 0; i < n; i++) {
    output_printable(item, sizeof(item), list[i]);
    snprintf(out + strlen(out), len - strlen(out), "%s%s", i ? ", " : "", item);
  }
}

/* Append to out which restriction of id leaves the service out. */
static void explain(const doctor_t *d, const identity_t *id, char *const *tags,
                    size_t ntags, char *out, size_t len) {
  char want[1024], have[1024];
  size_t used = strlen(out);
  join(have, sizeof(have), tags, ntags);
  if (id->nprojects > 0 &&
      !has(id->projects, id->nprojects, d->target.project)) {
    join(want, sizeof(want), id->projects, id->nprojects);
    snprintf(out + used, len - used,
             "\n      identity %s is restricted to projects [%s]; the "
             "service is in project %s",
             id->name, want, d->target.project);
    return;
  }
  join(want, sizeof(want), id->tags, id->ntags);
  snprintf(out + used, len - used,
           "\n      identity %s needs %s of the tags [%s]; the service has "
           "[%s]",
           id->name, id->match_all_tags ? "all" : "one", want, have);
}

/* The service's tags as a NULL-free array borrowed from d->service. */
static size_t service_tags(const doctor_t *d, char **tags, size_t max) {
  size_t n = 0;
  const cJSON *t;
  cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(d->service, "tags")) {
    if (cJSON_IsString(t) && n < max)
      tags[n++] = t->valuestring;
  }
  return n;
}

static int check_identities(doctor_t *d) {
  cJSON *doc = NULL;
  int rc = api_call(&d->target.ctx, "GET", "/v1/ssh-identities", NULL, &doc);
  if (rc != EXIT_OK)
    return fail(rc, "identities: cannot list SSH identities%s%s", "", "");
  char *tags[64], why[4096] = "", match[IDENTITY_NAME_MAX + 1] = "";
  size_t ntags = service_tags(d, tags, 64);
  int i = 0;
  const cJSON *it;
  cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(doc, "identities")) {
    identity_t id;
    char path[32], err[IDENTITY_ERR_SIZE];
    snprintf(path, sizeof(path), "identities[%d]", i++);
    if (identity_from_json(it, path, &id, err, sizeof(err)) != 0)
      continue;
    if (holds_our_key(d, &id)) {
      if (!identity_matches(&id, d->target.project, tags, ntags))
        explain(d, &id, tags, ntags, why, sizeof(why));
      else if (match[0] == '\0')
        snprintf(match, sizeof(match), "%s", id.name);
    }
    identity_clear(&id);
  }
  cJSON_Delete(doc);
  if (match[0] != '\0') {
    ok("key: in identity %s, which matches service %s", match,
       d->target.service);
    return EXIT_OK;
  }
  if (why[0] != '\0')
    return fail(EXIT_KEY,
                "key: your key is only in SSH identities that exclude "
                "service %s:%s",
                d->target.service, why);
  return fail(EXIT_KEY,
              "key: your key is in no SSH identity; add it with `wsmux "
              "ssh-identity create --name NAME --key-file FILE`%s%s",
              "", "");
}

int cmd_ssh_doctor(int argc, char **argv) {
  const char *project = NULL, *service = NULL, *key_file = NULL;
  cli_context_flags_t flags = {0};
  int help = 0, nrest, dd;
  char *rest[4], err[256];
  args_opt_t opts[] = {
      {"projectId", &project, NULL}, {"serviceId", &service, NULL},
      {"key-file", &key_file, NULL}, CLI_CONTEXT_OPTS(&flags),
      {"help", NULL, &help},         {0}};
  if (args_parse(argc, argv, opts, rest, 4, &nrest, &dd, err, sizeof(err))) {
    log_print("wsmux", LOG_ERROR, "%s", err);
    return EXIT_USAGE;
  }
  if (help || (nrest == 1 && strcmp(rest[0], "-h") == 0)) {
    fputs(usage, stdout);
    return EXIT_OK;
  }
  if (project == NULL || service == NULL) {
    log_print("wsmux", LOG_ERROR, "%s is required",
              project ? "--serviceId" : "--projectId");
    return EXIT_USAGE;
  }
  doctor_t d = {0};
  int rc = cmd_ssh_resolve_target(project, service, &flags, 0, &d.target);
  if (rc != EXIT_OK)
    return rc;
  show_route(&d);
  if ((rc = check_token(&d)) == EXIT_OK &&
      (rc = check_service(&d)) == EXIT_OK &&
      (rc = load_keys(&d, key_file)) == EXIT_OK &&
      (rc = check_identities(&d)) == EXIT_OK)
    printf("all checks passed: ssh to %s should work\n", service);
  cJSON_Delete(d.service);
  cJSON_Delete(d.keys);
  cmd_ssh_target_free(&d.target);
  return rc;
}
