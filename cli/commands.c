/* Plumbing of the admin commands (cli/commands.h). */
#include "cli/commands.h"

#include <stdlib.h>
#include <string.h>

#include "cli/api.h"
#include "cli/exitcode.h"
#include "base/id.h"
#include "base/log.h"

static int is_help(const char *s) {
  return strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0;
}

int cmd_dispatch(const char *usage, const cmd_sub_t *subs, int argc,
                 char **argv) {
  if (argc < 1) {
    log_print("wsmux", LOG_ERROR, "missing command");
    fputs(usage, stderr);
    return EXIT_USAGE;
  }
  if (is_help(argv[0])) {
    fputs(usage, stdout);
    return EXIT_OK;
  }
  for (const cmd_sub_t *s = subs; s->name != NULL; s++)
    if (strcmp(s->name, argv[0]) == 0)
      return s->run(argc - 1, argv + 1);
  log_print("wsmux", LOG_ERROR, "unknown command '%s'", argv[0]);
  fputs(usage, stderr);
  return EXIT_USAGE;
}

static int parse_error(const cmd_spec_t *spec, const char *msg,
                       const char *word) {
  log_print("wsmux", LOG_ERROR, "%s%s%s (see 'wsmux %s --help')", msg,
            word ? " " : "", word ? word : "", spec->name);
  return EXIT_USAGE;
}

/* argv with "-f" (before "--") as "--NAME": a copy, or NULL. */
static char **map_dash_f(int argc, char **argv, char *longf) {
  char **v = calloc((size_t)argc + 1, sizeof(*v));
  if (v == NULL)
    return NULL;
  int after = 0;
  for (int i = 0; i < argc; i++) {
    after = after || strcmp(argv[i], "--") == 0;
    v[i] = !after && strcmp(argv[i], "-f") == 0 ? longf : argv[i];
  }
  return v;
}

int cmd_parse(const cmd_spec_t *spec, int argc, char **argv) {
  char *rest[4], err[256], longf[64];
  int nrest, dashdash;
  char **mapped = NULL;
  if (spec->dash_f != NULL) {
    snprintf(longf, sizeof(longf), "--%s", spec->dash_f);
    if ((mapped = map_dash_f(argc, argv, longf)) == NULL)
      return parse_error(spec, "out of memory", NULL);
    argv = mapped;
  }
  int rc = args_parse_lists(argc, argv, spec->opts, spec->lists, rest, 4,
                            &nrest, &dashdash, err, sizeof(err));
  /* The values point into the caller's argv: only "--NAME" was ours. */
  free(mapped);
  if (rc != 0)
    return parse_error(spec, err, NULL);
  if (*spec->help || (nrest == 1 && dashdash < 0 && is_help(rest[0]))) {
    fputs(spec->usage, stdout);
    return EXIT_OK;
  }
  if (spec->arg == NULL && nrest > 0)
    return parse_error(spec, "unexpected argument", rest[0]);
  if (spec->arg != NULL && nrest == 0)
    return parse_error(spec, "missing argument", spec->arg);
  if (spec->arg != NULL && nrest > 1)
    return parse_error(spec, "unexpected argument", rest[1]);
  if (spec->arg != NULL)
    *spec->value = rest[0];
  return -1;
}

int cmd_output_parse(const char *s, output_format_t *fmt) {
  if (output_format_parse(s, fmt) == 0)
    return 0;
  log_print("wsmux", LOG_ERROR, "unknown --output '%s': use table or json", s);
  return EXIT_USAGE;
}

int cmd_id_check(const char *what, const char *id) {
  if (id_valid(id))
    return 0;
  log_print("wsmux", LOG_ERROR, "%s must be 1-128 characters of [A-Za-z0-9._-]",
            what);
  return EXIT_USAGE;
}

int cmd_api_run(const cli_context_flags_t *flags, const char *method,
                const char *path, const cJSON *body, output_format_t fmt,
                cmd_printer_t print) {
  cli_context_t ctx;
  cJSON *answer = NULL;
  int rc = cli_context_resolve_flags(flags, &ctx);
  if (rc != 0)
    return rc;
  if (ctx.insecure)
    log_print("wsmux", LOG_WARN,
              "the edge's certificate is NOT verified "
              "(--insecure)");
  rc = api_call(&ctx, method, path, body, print ? &answer : NULL);
  cli_context_free(&ctx);
  if (rc == 0 && print != NULL &&
      (answer == NULL || print(answer, fmt, stdout) != 0)) {
    log_print("wsmux", LOG_ERROR,
              "unexpected answer from the edge to %s "
              "%s",
              method, path);
    rc = EXIT_NETWORK;
  }
  cJSON_Delete(answer);
  return rc;
}
