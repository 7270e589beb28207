/* `wsmux project ...` (README, docs/ADMIN_API.md). */
#include "cli/commands.h"
#include "cli/exitcode.h"

static const char usage[] =
    "usage: wsmux project <command>\n"
    "\n"
    "commands:\n"
    "  list   list the projects the token can see\n"
    "\n"
    "  wsmux project <command> --help   options of a command\n";

static const char list_usage[] =
    "usage: wsmux project list [--output table|json] [connection options]\n"
    "\n"
    "Lists the projects: ID and NAME.\n"
    "\n"
    "  --output F      table (default) or json (the edge's answer)\n"
    "\n" CLI_CONTEXT_HELP;

static int project_list(int argc, char **argv) {
  cli_context_flags_t cf = {0};
  const char *output = NULL;
  int help = 0;
  const args_opt_t opts[] = {CLI_CONTEXT_OPTS(&cf),
                             {"output", &output, NULL},
                             {"help", NULL, &help},
                             {0}};
  const cmd_spec_t spec = {
      .name = "project list", .usage = list_usage, .opts = opts, .help = &help};
  output_format_t fmt;
  int rc = cmd_parse(&spec, argc, argv);
  if (rc >= 0)
    return rc;
  if ((rc = cmd_output_parse(output, &fmt)) != 0)
    return rc;
  return cmd_api_run(&cf, "GET", "/v1/projects", NULL, fmt,
                     output_projects_print);
}

int cmd_project(int argc, char **argv) {
  static const cmd_sub_t subs[] = {{"list", project_list}, {0}};
  return cmd_dispatch(usage, subs, argc, argv);
}
