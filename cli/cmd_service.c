/* `wsmux service ...` (README, docs/ADMIN_API.md). */
#include <stdio.h>

#include "cli/commands.h"
#include "cli/exitcode.h"
#include "base/log.h"

static const char usage[] =
    "usage: wsmux service <command>\n"
    "\n"
    "commands:\n"
    "  list          list the services of a project\n"
    "  ssh enable    allow SSH to a service\n"
    "  ssh disable   refuse SSH to a service (closes its open sessions)\n"
    "\n"
    "  wsmux service <command> --help   options of a command\n";

static const char list_usage[] =
    "usage: wsmux service list --projectId P [--output table|json]\n"
    "                          [connection options]\n"
    "\n"
    "Lists the services of project P: ID, NAME, KIND (service or job),\n"
    "TAGS and SSH (enabled or disabled).\n"
    "\n"
    "  --projectId P   the project\n"
    "  --output F      table (default) or json (the edge's answer)\n"
    "\n" CLI_CONTEXT_HELP;

static const char ssh_usage[] =
    "usage: wsmux service ssh enable|disable --projectId P --serviceId S\n"
    "                                        [connection options]\n"
    "\n"
    "Allows or refuses SSH to service S of project P, at once for new\n"
    "connections. Disabling also closes the service's open sessions. Jobs\n"
    "cannot have SSH.\n"
    "\n" CLI_CONTEXT_HELP;

/* Build /v1/projects/P/services[/S] after checking the ids. */
static int service_path(const char *project, const char *service, char *buf,
                        size_t len) {
  int rc;
  if (project == NULL) {
    log_print("wsmux", LOG_ERROR, "--projectId is required");
    return EXIT_USAGE;
  }
  if ((rc = cmd_id_check("--projectId", project)) != 0 ||
      (service && (rc = cmd_id_check("--serviceId", service)) != 0))
    return rc;
  snprintf(buf, len, "/v1/projects/%s/services%s%s", project,
           service ? "/" : "", service ? service : "");
  return 0;
}

static int service_list(int argc, char **argv) {
  cli_context_flags_t cf = {0};
  const char *project = NULL, *output = NULL;
  int help = 0;
  const args_opt_t opts[] = {CLI_CONTEXT_OPTS(&cf),
                             {"projectId", &project, NULL},
                             {"output", &output, NULL},
                             {"help", NULL, &help},
                             {0}};
  const cmd_spec_t spec = {
      .name = "service list", .usage = list_usage, .opts = opts, .help = &help};
  output_format_t fmt;
  char path[512];
  int rc = cmd_parse(&spec, argc, argv);
  if (rc >= 0)
    return rc;
  if ((rc = cmd_output_parse(output, &fmt)) != 0 ||
      (rc = service_path(project, NULL, path, sizeof(path))) != 0)
    return rc;
  return cmd_api_run(&cf, "GET", path, NULL, fmt, output_services_print);
}

/* `service ssh enable|disable`: PATCH {"ssh": on}. */
static int service_ssh_set(int argc, char **argv, int on) {
  cli_context_flags_t cf = {0};
  const char *project = NULL, *service = NULL;
  int help = 0;
  const args_opt_t opts[] = {CLI_CONTEXT_OPTS(&cf),
                             {"projectId", &project, NULL},
                             {"serviceId", &service, NULL},
                             {"help", NULL, &help},
                             {0}};
  const cmd_spec_t spec = {.name = on ? "service ssh enable"
                                      : "service ssh disable",
                           .usage = ssh_usage,
                           .opts = opts,
                           .help = &help};
  char path[512];
  int rc = cmd_parse(&spec, argc, argv);
  if (rc >= 0)
    return rc;
  if (service == NULL && project != NULL) {
    log_print("wsmux", LOG_ERROR, "--serviceId is required");
    return EXIT_USAGE;
  }
  if ((rc = service_path(project, service, path, sizeof(path))) != 0)
    return rc;
  cJSON *body = cJSON_CreateObject();
  if (body == NULL || cJSON_AddBoolToObject(body, "ssh", on) == NULL) {
    cJSON_Delete(body);
    log_print("wsmux", LOG_ERROR, "out of memory");
    return EXIT_USAGE;
  }
  rc = cmd_api_run(&cf, "PATCH", path, body, OUTPUT_TABLE, NULL);
  cJSON_Delete(body);
  if (rc == 0)
    printf("SSH %s for service %s in project %s\n", on ? "enabled" : "disabled",
           service, project);
  return rc;
}

static int service_ssh_enable(int argc, char **argv) {
  return service_ssh_set(argc, argv, 1);
}

static int service_ssh_disable(int argc, char **argv) {
  return service_ssh_set(argc, argv, 0);
}

static int service_ssh(int argc, char **argv) {
  static const cmd_sub_t subs[] = {
      {"enable", service_ssh_enable}, {"disable", service_ssh_disable}, {0}};
  return cmd_dispatch(ssh_usage, subs, argc, argv);
}

int cmd_service(int argc, char **argv) {
  static const cmd_sub_t subs[] = {
      {"list", service_list}, {"ssh", service_ssh}, {0}};
  return cmd_dispatch(usage, subs, argc, argv);
}
