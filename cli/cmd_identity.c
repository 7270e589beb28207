/* `wsmux ssh-identity ...` (README, docs/ADMIN_API.md). */
#include <stdio.h>

#include "cli/api.h"
#include "cli/commands.h"
#include "cli/exitcode.h"
#include "base/log.h"

#define MAX_KEYS 64
#define MAX_KEY_FILES 64
#define MAX_PROJECTS 128
#define MAX_TAGS 128

static const char usage[] =
    "usage: wsmux ssh-identity <command>\n"
    "\n"
    "An SSH identity is a named set of public keys allowed into the\n"
    "services it matches (all, or those of some projects and/or tags).\n"
    "\n"
    "commands:\n"
    "  create   create an identity\n"
    "  list     list the identities\n"
    "  get      show one identity\n"
    "  update   change an identity\n"
    "  delete   delete an identity\n"
    "\n"
    "  wsmux ssh-identity <command> --help   options of a command\n";

#define FIELDS_HELP                                                            \
  "  --name N            unique name, 1-128 characters of [A-Za-z0-9._-]\n"    \
  "  --description D     free text, at most 1024 bytes\n"                      \
  "  --key-file F        public keys, one per line (blank lines and # lines\n" \
  "                      skipped; - reads standard input); repeatable\n"       \
  "  --key K             one public key 'TYPE BASE64 [COMMENT]'; repeatable\n" \
  "  --project P         only services of project P; repeatable\n"             \
  "  --tag T             only services tagged T; repeatable\n"                 \
  "  --match-all-tags    a service needs every --tag (default: any one)\n"     \
  "  --output F          table (default) or json (the edge's answer)\n"

static const char create_usage[] =
    "usage: wsmux ssh-identity create --name N [--description D]\n"
    "           (--key-file F | --key K)... [--project P]... [--tag T]...\n"
    "           [--match-all-tags] [--output table|json]\n"
    "           [connection options]\n"
    "\n"
    "Creates an SSH identity and prints it. Without --project or --tag it\n"
    "matches every service.\n"
    "\n" FIELDS_HELP "\n" CLI_CONTEXT_HELP;

static const char update_usage[] =
    "usage: wsmux ssh-identity update ID_OR_NAME [--name N]\n"
    "           [--description D] [--key-file F]... [--key K]...\n"
    "           [--project P]... [--clear-projects] [--tag T]...\n"
    "           [--clear-tags] [--match-all-tags | --no-match-all-tags]\n"
    "           [--output table|json] [connection options]\n"
    "\n"
    "Changes an SSH identity and prints it. Each field given replaces the\n"
    "old value: the keys given replace all the keys, the projects given all\n"
    "the projects, the tags all the tags.\n"
    "\n" FIELDS_HELP "  --clear-projects    remove the project restriction\n"
    "  --clear-tags        remove the tag restriction\n"
    "  --no-match-all-tags a service needs any one of the tags\n"
    "\n" CLI_CONTEXT_HELP;

static const char list_usage[] =
    "usage: wsmux ssh-identity list [--output table|json]\n"
    "                               [connection options]\n"
    "\n"
    "Lists the SSH identities: ID, NAME, number of KEYS, PROJECTS and TAGS\n"
    "they are restricted to ((all) / (any): no restriction), whether a\n"
    "service needs all or any of the tags, DESCRIPTION.\n"
    "\n"
    "  --output F      table (default) or json (the edge's answer)\n"
    "\n" CLI_CONTEXT_HELP;

static const char get_usage[] =
    "usage: wsmux ssh-identity get ID_OR_NAME [--output table|json]\n"
    "                              [connection options]\n"
    "\n"
    "Shows one SSH identity with its keys.\n"
    "\n"
    "  --output F      table (default) or json (the edge's answer)\n"
    "\n" CLI_CONTEXT_HELP;

static const char delete_usage[] =
    "usage: wsmux ssh-identity delete ID_OR_NAME [connection options]\n"
    "\n"
    "Deletes an SSH identity: its keys no longer open any service.\n"
    "\n" CLI_CONTEXT_HELP;

/* The options of create and update (values borrowed from argv). */
typedef struct {
  cli_context_flags_t cf;
  const char *name, *description, *output;
  const char *keys[MAX_KEYS], *key_files[MAX_KEY_FILES];
  const char *projects[MAX_PROJECTS], *tags[MAX_TAGS];
  int nkeys, nkey_files, nprojects, ntags;
  int match_all, no_match_all, clear_projects, clear_tags, help;
} identity_opts_t;

/* Parse create (id == NULL) or update options. -1 to go on, else the exit
 * code. */
static int identity_opts_parse(int argc, char **argv, identity_opts_t *o,
                               const char **id) {
  args_opt_t opts[] = {CLI_CONTEXT_OPTS(&o->cf),
                       {"name", &o->name, NULL},
                       {"description", &o->description, NULL},
                       {"output", &o->output, NULL},
                       {"match-all-tags", NULL, &o->match_all},
                       {"help", NULL, &o->help},
                       /* update only, from here */
                       {"no-match-all-tags", NULL, &o->no_match_all},
                       {"clear-projects", NULL, &o->clear_projects},
                       {"clear-tags", NULL, &o->clear_tags},
                       {0}};
  const args_list_t lists[] = {
      {"key", o->keys, MAX_KEYS, &o->nkeys},
      {"key-file", o->key_files, MAX_KEY_FILES, &o->nkey_files},
      {"project", o->projects, MAX_PROJECTS, &o->nprojects},
      {"tag", o->tags, MAX_TAGS, &o->ntags},
      {0}};
  const size_t nopts = sizeof(opts) / sizeof(opts[0]);
  if (id == NULL)
    opts[nopts - 4] = (args_opt_t){0}; /* drop the update-only options */
  const cmd_spec_t spec = {.name = id ? "ssh-identity update"
                                      : "ssh-identity create",
                           .usage = id ? update_usage : create_usage,
                           .opts = opts,
                           .lists = lists,
                           .help = &o->help,
                           .arg = id ? "ID_OR_NAME" : NULL,
                           .value = id};
  return cmd_parse(&spec, argc, argv);
}

/* The keys of --key-file and --key into the array keys; 0 or EXIT_USAGE
 * after printing why. */
static int identity_keys_read(const identity_opts_t *o, cJSON *keys) {
  char err[512];
  for (int i = 0; i < o->nkey_files; i++)
    if (api_keys_add_file(keys, o->key_files[i], err, sizeof(err)) < 0)
      goto fail;
  for (int i = 0; i < o->nkeys; i++) {
    int n = api_keys_add_text(keys, o->keys[i], "--key", err, sizeof(err));
    if (n == 0)
      snprintf(err, sizeof(err), "--key '%s' holds no key", o->keys[i]);
    if (n <= 0)
      goto fail;
  }
  return 0;
fail:
  log_print("wsmux", LOG_ERROR, "%s", err);
  return EXIT_USAGE;
}

/* The request body of create (create=1) or update; NULL after printing
 * the error. */
static cJSON *identity_body_build(const identity_opts_t *o, int create) {
  char err[512];
  cJSON *keys = cJSON_CreateArray(), *body = NULL;
  api_identity_fields_t f = {.name = o->name,
                             .description = o->description,
                             .keys = keys,
                             .projects = o->projects,
                             .nprojects = o->nprojects,
                             .clear_projects = o->clear_projects,
                             .tags = o->tags,
                             .ntags = o->ntags,
                             .clear_tags = o->clear_tags,
                             .match_all = o->match_all,
                             .no_match_all = o->no_match_all};
  if (keys == NULL) {
    log_print("wsmux", LOG_ERROR, "out of memory");
  } else if (identity_keys_read(o, keys) != 0) {
    /* printed */
  } else if (api_identity_check(&f, create, err, sizeof(err)) != 0) {
    log_print("wsmux", LOG_ERROR, "%s (see 'wsmux ssh-identity %s --help')",
              err, create ? "create" : "update");
  } else if ((body = api_identity_body(&f)) == NULL) {
    log_print("wsmux", LOG_ERROR, "out of memory");
  }
  cJSON_Delete(keys);
  return body;
}

static int identity_create(int argc, char **argv) {
  identity_opts_t o = {0};
  output_format_t fmt;
  int rc = identity_opts_parse(argc, argv, &o, NULL);
  if (rc >= 0)
    return rc;
  if ((rc = cmd_output_parse(o.output, &fmt)) != 0)
    return rc;
  cJSON *body = identity_body_build(&o, 1);
  if (body == NULL)
    return EXIT_USAGE;
  rc = cmd_api_run(&o.cf, "POST", "/v1/ssh-identities", body, fmt,
                   output_identity_print);
  cJSON_Delete(body);
  return rc;
}

static int identity_update(int argc, char **argv) {
  identity_opts_t o = {0};
  const char *id = NULL;
  output_format_t fmt;
  char path[256];
  int rc = identity_opts_parse(argc, argv, &o, &id);
  if (rc >= 0)
    return rc;
  if ((rc = cmd_output_parse(o.output, &fmt)) != 0 ||
      (rc = cmd_id_check("ID_OR_NAME", id)) != 0)
    return rc;
  cJSON *body = identity_body_build(&o, 0);
  if (body == NULL)
    return EXIT_USAGE;
  snprintf(path, sizeof(path), "/v1/ssh-identities/%s", id);
  rc = cmd_api_run(&o.cf, "PATCH", path, body, fmt, output_identity_print);
  cJSON_Delete(body);
  return rc;
}

/* list, get and delete: connection options, --output but for delete, and
 * the identity for get and delete. */
typedef struct {
  const char *name; /* "ssh-identity get" */
  const char *usage;
  const char *arg; /* "ID_OR_NAME" or NULL */
  int with_output;
} simple_cmd_t;

/* -1 to go on, else the exit code. */
static int simple_parse(const simple_cmd_t *c, int argc, char **argv,
                        cli_context_flags_t *cf, output_format_t *fmt,
                        const char **id) {
  const char *output = NULL;
  int help = 0;
  args_opt_t opts[] = {CLI_CONTEXT_OPTS(cf),
                       {"help", NULL, &help},
                       {"output", &output, NULL},
                       {0}};
  if (!c->with_output)
    opts[sizeof(opts) / sizeof(opts[0]) - 2] = (args_opt_t){0};
  const cmd_spec_t spec = {.name = c->name,
                           .usage = c->usage,
                           .opts = opts,
                           .help = &help,
                           .arg = c->arg,
                           .value = id};
  int rc = cmd_parse(&spec, argc, argv);
  if (rc >= 0)
    return rc;
  if ((rc = cmd_output_parse(output, fmt)) != 0 ||
      (c->arg && (rc = cmd_id_check(c->arg, *id)) != 0))
    return rc;
  return -1;
}

static int identity_list(int argc, char **argv) {
  static const simple_cmd_t c = {"ssh-identity list", list_usage, NULL, 1};
  cli_context_flags_t cf = {0};
  output_format_t fmt;
  int rc = simple_parse(&c, argc, argv, &cf, &fmt, NULL);
  if (rc >= 0)
    return rc;
  return cmd_api_run(&cf, "GET", "/v1/ssh-identities", NULL, fmt,
                     output_identities_print);
}

static int identity_get(int argc, char **argv) {
  static const simple_cmd_t c = {"ssh-identity get", get_usage, "ID_OR_NAME",
                                 1};
  cli_context_flags_t cf = {0};
  output_format_t fmt;
  const char *id = NULL;
  char path[256];
  int rc = simple_parse(&c, argc, argv, &cf, &fmt, &id);
  if (rc >= 0)
    return rc;
  snprintf(path, sizeof(path), "/v1/ssh-identities/%s", id);
  return cmd_api_run(&cf, "GET", path, NULL, fmt, output_identity_print);
}

static int identity_delete(int argc, char **argv) {
  static const simple_cmd_t c = {"ssh-identity delete", delete_usage,
                                 "ID_OR_NAME", 0};
  cli_context_flags_t cf = {0};
  output_format_t fmt;
  const char *id = NULL;
  char path[256];
  int rc = simple_parse(&c, argc, argv, &cf, &fmt, &id);
  if (rc >= 0)
    return rc;
  snprintf(path, sizeof(path), "/v1/ssh-identities/%s", id);
  rc = cmd_api_run(&cf, "DELETE", path, NULL, fmt, NULL);
  if (rc == 0)
    printf("Deleted SSH identity %s\n", id);
  return rc;
}

int cmd_identity(int argc, char **argv) {
  static const cmd_sub_t subs[] = {
      {"create", identity_create}, {"list", identity_list},
      {"get", identity_get},       {"update", identity_update},
      {"delete", identity_delete}, {0}};
  return cmd_dispatch(usage, subs, argc, argv);
}
