/* Which service `wsmux ssh` reaches: flags, or a choice from a list. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/api.h"
#include "cli/cmd_ssh.h"
#include "cli/exitcode.h"
#include "base/id.h"
#include "base/log.h"

#define CHOICE_MAX 256

/* GET path on the edge as JSON; NULL after printing why (*rc set). */
static cJSON *get_json(const cli_target_t *t, const char *path, int *rc) {
  cJSON *doc = NULL;
  *rc = api_call(&t->ctx, "GET", path, NULL, &doc);
  if (*rc == EXIT_OK && doc == NULL) {
    log_print("wsmux", LOG_ERROR, "the edge sent nothing for %s", path);
    *rc = EXIT_NETWORK;
  }
  return *rc == EXIT_OK ? doc : NULL;
}

/* Print the items of array and read a number; the chosen item's id. */
static char *choose(const char *what, const cJSON *array, int services) {
  int n = cJSON_GetArraySize(array);
  if (n == 0) {
    log_print("wsmux", LOG_ERROR, "no %s to choose from", what);
    return NULL;
  }
  fprintf(stderr, "Choose a %s:\n", what);
  for (int i = 0; i < n; i++) {
    const cJSON *it = cJSON_GetArrayItem(array, i);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(it, "name");
    fprintf(stderr, "  %2d) %s", i + 1, cJSON_GetStringValue(id));
    if (cJSON_IsString(name) && strcmp(name->valuestring, id->valuestring))
      fprintf(stderr, " (%s)", name->valuestring);
    if (services) {
      const cJSON *kind = cJSON_GetObjectItemCaseSensitive(it, "kind");
      const cJSON *ssh = cJSON_GetObjectItemCaseSensitive(it, "sshEnabled");
      int job = cJSON_IsString(kind) && strcmp(kind->valuestring, "job") == 0;
      fprintf(stderr, "  [%s]",
              job                 ? "job: no SSH"
              : cJSON_IsTrue(ssh) ? "SSH on"
                                  : "SSH off");
    }
    fputc('\n', stderr);
  }
  char line[CHOICE_MAX];
  for (;;) {
    fprintf(stderr, "Number (1-%d): ", n);
    if (fgets(line, sizeof(line), stdin) == NULL)
      return NULL;
    int k = atoi(line);
    if (k >= 1 && k <= n) {
      const cJSON *id = cJSON_GetObjectItemCaseSensitive(
          cJSON_GetArrayItem(array, k - 1), "id");
      return cJSON_IsString(id) ? strdup(id->valuestring) : NULL;
    }
  }
}

static int pick(cli_target_t *t, int *rc) {
  if (t->project == NULL) {
    cJSON *doc = get_json(t, "/v1/projects", rc);
    if (doc == NULL)
      return -1;
    t->project =
        choose("project", cJSON_GetObjectItemCaseSensitive(doc, "projects"), 0);
    cJSON_Delete(doc);
    if (t->project == NULL || !id_valid(t->project))
      return -1;
  }
  if (t->service == NULL) {
    char path[300];
    snprintf(path, sizeof(path), "/v1/projects/%s/services", t->project);
    cJSON *doc = get_json(t, path, rc);
    if (doc == NULL)
      return -1;
    t->service =
        choose("service", cJSON_GetObjectItemCaseSensitive(doc, "services"), 1);
    cJSON_Delete(doc);
    if (t->service == NULL)
      return -1;
  }
  return 0;
}

int cmd_ssh_resolve_target(const char *project, const char *service,
                           const cli_context_flags_t *flags, int may_prompt,
                           cli_target_t *out) {
  memset(out, 0, sizeof(*out));
  if ((project == NULL || service == NULL) &&
      !(may_prompt && isatty(0) && isatty(2))) {
    log_print("wsmux", LOG_ERROR,
              "%s is required (without a terminal it cannot be "
              "chosen from a list)",
              project == NULL ? "--projectId" : "--serviceId");
    return EXIT_USAGE;
  }
  int rc = cli_context_resolve_flags(flags, &out->ctx);
  if (rc != 0)
    return rc;
  out->project = project ? strdup(project) : NULL;
  out->service = service ? strdup(service) : NULL;
  rc = EXIT_USAGE;
  if ((project && !out->project) || (service && !out->service) ||
      pick(out, &rc) != 0) {
    cmd_ssh_target_free(out);
    return rc;
  }
  out->edge = (transport_client_opts_t){.url = out->ctx.edge,
                                        .token = out->ctx.token,
                                        .ca_file = out->ctx.ca,
                                        .insecure = out->ctx.insecure,
                                        .proxy = CLI_CONTEXT_PROXY(&out->ctx)};
  return EXIT_OK;
}

void cmd_ssh_target_free(cli_target_t *t) {
  free(t->project);
  free(t->service);
  cli_context_free(&t->ctx);
  memset(t, 0, sizeof(*t));
}
