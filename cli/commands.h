/*
 * The admin commands of `wsmux` (`wsmux ssh ...` is cli/cmd_ssh.h), and
 * the plumbing they share. Each cmd_* entry point takes the words after
 * its command name and returns the process exit code (cli/exitcode.h).
 */
#ifndef WSMUX_COMMANDS_H
#define WSMUX_COMMANDS_H

#include <stdio.h>

#include <cjson/cJSON.h>

#include "cli/args.h"
#include "cli/context.h"
#include "cli/output.h"

/* `wsmux login --edge URL --token T ...` (cli/cmd_login.c) */
int cmd_login(int argc, char **argv);
/* `wsmux project list` (cli/cmd_project.c) */
int cmd_project(int argc, char **argv);
/* `wsmux service list | ssh enable | ssh disable` (cli/cmd_service.c) */
int cmd_service(int argc, char **argv);
/* `wsmux ssh-identity create | list | get | update | delete`
 * (cli/cmd_identity.c) */
int cmd_identity(int argc, char **argv);

/* ---- plumbing (cli/commands.c) -------------------------------------- */

/* A subcommand: its name and entry point. */
typedef struct {
  const char *name;
  int (*run)(int argc, char **argv);
} cmd_sub_t;

/*
 * Run the subcommand named by argv[0] (subs ends with a zero entry) with
 * the words after it. `--help` / `-h` print usage on stdout (exit 0); no
 * or an unknown subcommand print the error and usage on stderr (exit 1).
 */
int cmd_dispatch(const char *usage, const cmd_sub_t *subs, int argc,
                 char **argv);

/* How one command parses its words. Borrowed pointers. */
typedef struct {
  const char *name;         /* e.g. "ssh-identity get", for messages */
  const char *usage;        /* printed by --help */
  const args_opt_t *opts;   /* with {"help", NULL, help} */
  const args_list_t *lists; /* repeatable options, or NULL */
  const int *help;
  const char *arg;    /* name of the one positional argument, or NULL */
  const char **value; /* receives it */
  const char *dash_f; /* the long option "-f" stands for, or NULL */
} cmd_spec_t;

/*
 * Parse argv per spec. Returns -1 when the command should go on, else the
 * exit code to return at once: EXIT_OK after printing the usage for
 * --help / -h, EXIT_USAGE after printing the error on stderr.
 */
int cmd_parse(const cmd_spec_t *spec, int argc, char **argv);

/* --output: 0 with *fmt, or EXIT_USAGE after printing the error. */
int cmd_output_parse(const char *s, output_format_t *fmt);

/* Prints an answer of the admin API (cli/output.h). */
typedef int (*cmd_printer_t)(const cJSON *answer, output_format_t fmt, FILE *f);

/*
 * Resolve the context of flags, make one admin API call and print its
 * answer on stdout with print (when not NULL). Returns the exit code; the
 * errors are printed.
 */
int cmd_api_run(const cli_context_flags_t *flags, const char *method,
                const char *path, const cJSON *body, output_format_t fmt,
                cmd_printer_t print);

/* A path id: 0, or EXIT_USAGE after printing why it is not valid. */
int cmd_id_check(const char *what, const char *id);

#endif
