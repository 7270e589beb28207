/* `wsmux login`: check a token and store it as a context (cli/context.h). */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cli/api.h"
#include "cli/commands.h"
#include "cli/exitcode.h"
#include "cli/http_proxy_flags.h"
#include "base/log.h"

static const char usage[] =
    "usage: wsmux login --edge URL --token T [--ca FILE] [--insecure]\n"
    "                   [--context NAME] [--http-proxy URL |\n"
    "                   --http-proxy-file FILE]\n"
    "\n"
    "Checks the API token against the edge (it must list the projects) and\n"
    "stores edge, token and TLS options as context NAME, which becomes the\n"
    "current one: later commands need no --edge / --token. The contexts are\n"
    "kept in $XDG_CONFIG_HOME/wsmux/config.json (default\n"
    "~/.config/wsmux/config.json), readable by you only. Nothing is stored\n"
    "when the edge rejects the token.\n"
    "\n"
    "  --edge URL       wss://host[:port] of the edge\n"
    "  --token T        API token; '--token -' reads it from the first line\n"
    "                   of standard input, so it does not show in ps:\n"
    "                     wsmux login --edge URL --token - < token.txt\n"
    "  --ca FILE        also trust this CA certificate (PEM); its absolute\n"
    "                   path is stored\n"
    "  --insecure       do not verify the edge's certificate (tests only;\n"
    "                   stored, so every command of the context skips it)\n"
    "  --context NAME   name of the context (default: default), 1-64\n"
    "                   characters of [A-Za-z0-9._-]\n"
    "  --http-proxy URL  check the token through this HTTP proxy (not\n"
    "                   stored: later commands take theirs from their own\n"
    "                   flags or $HTTPS_PROXY)\n"
    "  --http-proxy-file FILE  the proxy URL from the first line of FILE\n";

/* The options; strings borrowed from argv. */
typedef struct {
  const char *edge, *token, *ca, *context, *http_proxy, *http_proxy_file;
  int insecure, help;
} login_opts_t;

/* The token of --token, read from stdin for "-". 0 or an exit code after
 * printing why. */
static int login_token_get(const char *flag, char *buf, size_t len) {
  if (strcmp(flag, "-") == 0) {
    if (context_token_read(stdin, buf, len) != 0) {
      log_print("wsmux", LOG_ERROR,
                "--token -: no token on the first line "
                "of standard input");
      return EXIT_USAGE;
    }
  } else if (strlen(flag) < len) {
    memcpy(buf, flag, strlen(flag) + 1);
  } else {
    buf[0] = '\0'; /* too long: refused below */
  }
  if (!context_token_valid(buf)) {
    log_print("wsmux", LOG_ERROR,
              "the API token is empty, too long or has "
              "spaces or control characters");
    return EXIT_USAGE;
  }
  return 0;
}

/* Check the options and fill ctx (its strings borrowed: not freed). */
static int login_check(const login_opts_t *o, char *token, size_t tokenlen,
                       char *ca, cli_context_t *ctx) {
  if (o->edge == NULL || o->token == NULL) {
    log_print("wsmux", LOG_ERROR,
              "%s is required (see 'wsmux login "
              "--help')",
              o->edge == NULL ? "--edge" : "--token");
    return EXIT_USAGE;
  }
  if (!context_edge_valid(o->edge)) {
    log_print("wsmux", LOG_ERROR,
              "--edge must be wss://HOST[:PORT] (or "
              "ws:// behind a TLS-terminating load balancer)");
    return EXIT_USAGE;
  }
  if (!context_name_valid(o->context)) {
    log_print("wsmux", LOG_ERROR,
              "--context must be 1-64 characters of "
              "[A-Za-z0-9._-]");
    return EXIT_USAGE;
  }
  if (o->ca != NULL && realpath(o->ca, ca) == NULL) {
    log_print("wsmux", LOG_ERROR, "--ca %s: %s", o->ca, strerror(errno));
    return EXIT_USAGE;
  }
  *ctx = (cli_context_t){.edge = (char *)o->edge,
                         .token = token,
                         .ca = o->ca ? ca : NULL,
                         .insecure = o->insecure};
  int rc = cli_http_proxy_choose(o->http_proxy, o->http_proxy_file, o->edge,
                                 &ctx->proxy);
  return rc != 0 ? rc : login_token_get(o->token, token, tokenlen);
}

/* Store ctx as context name in the config file at path (already loaded
 * into root). */
static int login_store(const char *path, cJSON *root, const char *name,
                       const cli_context_t *ctx) {
  char err[PATH_MAX * 2 + 256];
  if (context_store_put(root, name, ctx) != 0) {
    log_print("wsmux", LOG_ERROR, "out of memory");
    return EXIT_USAGE;
  }
  if (context_file_save(path, root, err, sizeof(err)) != 0) {
    log_print("wsmux", LOG_ERROR, "%s", err);
    return EXIT_USAGE;
  }
  return 0;
}

/* The token must list the projects of the edge. */
static int login_verify(const cli_context_t *ctx) {
  cJSON *answer = NULL;
  int rc = api_call(ctx, "GET", "/v1/projects", NULL, &answer);
  if (rc == 0 &&
      !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(answer, "projects"))) {
    log_print("wsmux", LOG_ERROR,
              "%s does not answer like a wsmux edge "
              "(GET /v1/projects)",
              ctx->edge);
    rc = EXIT_NETWORK;
  }
  cJSON_Delete(answer);
  return rc;
}

static int login_run(const login_opts_t *o) {
  char token[4097], ca[PATH_MAX], path[PATH_MAX], err[PATH_MAX * 2 + 256];
  cli_context_t ctx = {0};
  cJSON *root = NULL;
  int rc = login_check(o, token, sizeof(token), ca, &ctx);
  if (rc != 0) {
    http_proxy_clear(&ctx.proxy.proxy);
    return rc;
  }
  /* The config must be usable before the token is checked. */
  if (context_path_default(path, sizeof(path), err, sizeof(err)) != 0 ||
      context_file_load(path, &root, err, sizeof(err)) != 0) {
    log_print("wsmux", LOG_ERROR, "%s", err);
    http_proxy_clear(&ctx.proxy.proxy);
    return EXIT_USAGE;
  }
  if (ctx.insecure)
    log_print("wsmux", LOG_WARN,
              "--insecure: the edge's certificate is "
              "NOT verified, for this login and every command of "
              "context %s",
              o->context);
  rc = login_verify(&ctx);
  if (rc == 0)
    rc = login_store(path, root, o->context, &ctx);
  if (rc == 0)
    printf("Logged in to %s as context %s\n", ctx.edge, o->context);
  cJSON_Delete(root);
  explicit_bzero(token, sizeof(token));
  http_proxy_clear(&ctx.proxy.proxy);
  return rc;
}

int cmd_login(int argc, char **argv) {
  login_opts_t o = {.context = "default"};
  const args_opt_t opts[] = {{"edge", &o.edge, NULL},
                             {"token", &o.token, NULL},
                             {"ca", &o.ca, NULL},
                             {"context", &o.context, NULL},
                             {"insecure", NULL, &o.insecure},
                             {"http-proxy", &o.http_proxy, NULL},
                             {"http-proxy-file", &o.http_proxy_file, NULL},
                             {"help", NULL, &o.help},
                             {0}};
  const cmd_spec_t spec = {
      .name = "login", .usage = usage, .opts = opts, .help = &o.help};
  int rc = cmd_parse(&spec, argc, argv);
  return rc >= 0 ? rc : login_run(&o);
}
