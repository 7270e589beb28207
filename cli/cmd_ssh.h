/* `wsmux ssh ...` commands. */
#ifndef WSMUX_CMD_SSH_H
#define WSMUX_CMD_SSH_H

#include "cli/context.h"
#include "ws/transport_client.h"

/* `wsmux ssh service ARGS`: argv holds the words after "service".
 * Returns the process exit code (cli/exitcode.h). */
int cmd_ssh_service(int argc, char **argv);

/* `wsmux ssh config ARGS`: argv holds the words after "config". */
int cmd_ssh_config(int argc, char **argv);

/* `wsmux ssh doctor ARGS`: argv holds the words after "doctor". */
int cmd_ssh_doctor(int argc, char **argv);

/* The service `wsmux ssh` reaches and how. Owns its strings and ctx; edge
 * borrows from ctx. Free with cmd_ssh_target_free(). */
typedef struct {
  cli_context_t ctx;
  char *project;
  char *service;
  transport_client_opts_t edge;
} cli_target_t;

/* Resolve the context of flags and the project/service (chosen from a list
 * on a terminal when NULL and may_prompt). EXIT_OK with *out filled, or an
 * exit code after printing why. */
int cmd_ssh_resolve_target(const char *project, const char *service,
                           const cli_context_flags_t *flags, int may_prompt,
                           cli_target_t *out);
void cmd_ssh_target_free(cli_target_t *t);

#endif
