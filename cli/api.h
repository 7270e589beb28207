/*
 * The client side of the edge's admin API (docs/ADMIN_API.md): one
 * synchronous call per request over http_client_call(), the mapping of
 * HTTP statuses to exit codes, and the request bodies of SSH identities.
 */
#ifndef WSMUX_API_H
#define WSMUX_API_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "cli/context.h"

/* The exit code (cli/exitcode.h) of a non-2xx HTTP status. */
int api_status_exit_code(int status);

/* The message of a failed call: the "error" field of a JSON body, or a
 * generic text naming the status. Control characters become '?'. */
void api_error_message(int status, const char *body, char *buf, size_t len);

/*
 * One admin API call: method and path (docs/ADMIN_API.md) to the edge of
 * ctx, with body as JSON when not NULL. On a 2xx answer returns 0 and, when
 * out is not NULL, *out is its parsed JSON (NULL for an empty body; the
 * caller frees it with cJSON_Delete). Otherwise prints
 * `wsmux: error: MESSAGE (HTTP STATUS)` or the network/TLS error on stderr
 * and returns the exit code.
 */
int api_call(const cli_context_t *ctx, const char *method, const char *path,
             const cJSON *body, cJSON **out);

/*
 * Append the public keys in text to the JSON array keys: one per line;
 * blank lines and lines starting with '#' are skipped, line endings and
 * surrounding blanks dropped. origin names the source in errors ("--key",
 * a file name). Refuses a private key (it must never be sent anywhere).
 * Returns the number of keys added, or -1 with a message in err.
 */
int api_keys_add_text(cJSON *keys, const char *text, const char *origin,
                      char *err, size_t errlen);
/* api_keys_add_text() of the contents of file path ("-": standard input);
 * -1 with err also when it cannot be read or holds no key. */
int api_keys_add_file(cJSON *keys, const char *path, char *err, size_t errlen);

/* The fields of `ssh-identity create` / `update` (strings borrowed). */
typedef struct {
  const char *name;            /* NULL: not given */
  const char *description;     /* NULL: not given */
  cJSON *keys;                 /* array, NULL or empty: not given (borrowed) */
  const char *const *projects; /* nprojects of them */
  int nprojects;
  int clear_projects; /* send "projects": [] */
  const char *const *tags;
  int ntags;
  int clear_tags;
  int match_all;    /* --match-all-tags: send "matchAllTags": true */
  int no_match_all; /* --no-match-all-tags: send false */
} api_identity_fields_t;

/* Check the fields of a create (create=1) or an update: 0, or -1 with the
 * usage error in err (a required field missing, conflicting flags,
 * nothing to update). The server checks the values themselves. */
int api_identity_check(const api_identity_fields_t *f, int create, char *err,
                       size_t errlen);
/* The request body of f; NULL when out of memory. */
cJSON *api_identity_body(const api_identity_fields_t *f);

#endif
