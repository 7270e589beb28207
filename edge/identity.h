/*
 * SSH identities (docs/ADMIN_API.md): named sets of OpenSSH public keys,
 * optionally restricted to projects and service tags, that the edge turns
 * into authorized_keys lines for the sshd of each service they match.
 *
 * Pure data, validation and JSON; no I/O. JSON is read with base/json.h's
 * rules, like the state file, request bodies and the edge config (no
 * unknown or repeated keys, errors name the JSON path).
 *
 * Ownership: an identity_t owns every string and array in it; release it
 * with identity_clear(). Functions that fill an identity_t leave it zeroed
 * on failure.
 */
#ifndef WSMUX_IDENTITY_H
#define WSMUX_IDENTITY_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "base/id.h"

/* Names follow the id rule (base/id.h). */
#define IDENTITY_NAME_MAX ID_MAX
#define IDENTITY_DESCRIPTION_MAX 1024
#define IDENTITY_TAG_MAX 256
/* A 16384-bit RSA key is about 2.8 KB of base64; a line beyond this is not
 * a key. */
#define IDENTITY_KEY_MAX 16384
/* "idt-" and 16 lower-case hex digits, plus the NUL. */
#define IDENTITY_ID_PREFIX "idt-"
#define IDENTITY_ID_SIZE 21
/* "2026-11-25T12:00:00Z" plus the NUL. */
#define IDENTITY_TIME_SIZE 21
/* Enough for any message these functions write. */
#define IDENTITY_ERR_SIZE 512

typedef struct {
  char *id;          /* IDENTITY_ID_PREFIX + 16 hex digits, set by the edge */
  char *name;        /* unique, 1..128 of [A-Za-z0-9._-] */
  char *description; /* "" when none */
  char **keys;       /* normalized: "type base64" or "type base64 comment" */
  size_t nkeys;      /* at least 1 */
  char **projects;   /* project ids; none = every project */
  size_t nprojects;
  char **tags; /* service tags; none = every service */
  size_t ntags;
  int match_all_tags; /* 1: the service needs every tag; 0: any one */
  int64_t created_at; /* Unix seconds, UTC */
  int64_t updated_at;
  /* The store's revision of this record (edge/store.h), for detecting a
   * change made meanwhile by another edge; 0 in the file backend. Not part
   * of the JSON forms. */
  int64_t rev;
} identity_t;

/* Free every member and zero *id (NULL-safe). */
void identity_clear(identity_t *id);
/* Deep copy into *dst. 0, or -1 (out of memory) with *dst zeroed. */
int identity_copy(identity_t *dst, const identity_t *src);

/*
 * Validate one OpenSSH public key line, "type base64 [comment]", and write
 * its normalized form (single spaces, no surrounding blanks) to *out
 * (malloc'd). The base64 must decode to a well-formed key blob of the
 * stated type (its embedded type string must equal the stated one).
 * Returns 0, or -1 with the reason in err (`unknown key type "ssh-foo"`,
 * `invalid base64`, ...), without a field name.
 */
int identity_key_normalize(const char *line, char **out, char *err,
                           size_t errlen);

/*
 * The rule of docs/ADMIN_API.md: (no project restriction, or project_id is
 * listed) AND (no tag restriction, or - with match_all_tags - every listed
 * tag is among tags[0..ntags), or - without - at least one is). 1 or 0.
 */
int identity_matches(const identity_t *id, const char *project_id,
                     char *const *tags, size_t ntags);

/* The Identity JSON object of docs/ADMIN_API.md; NULL when out of memory. */
cJSON *identity_to_json(const identity_t *id);
/*
 * Parse a stored Identity (every field of identity_to_json(); description,
 * projects, tags and matchAllTags may be absent). Messages start with
 * `path` ("identities[2]").
 */
int identity_from_json(const cJSON *obj, const char *path, identity_t *out,
                       char *err, size_t errlen);
/*
 * Apply an API request body to a copy of `base` (NULL: start empty, and
 * `name` and `keys` become required): each of name, description, keys,
 * projects, tags, matchAllTags that is present replaces the old value;
 * anything else is an error naming the field. id and times are copied
 * from base unchanged. 0 with *out filled, or -1 with the message in err
 * ("keys[1]: unknown key type \"ssh-foo\"") and *out zeroed.
 */
int identity_apply_json(const identity_t *base, const cJSON *body,
                        identity_t *out, char *err, size_t errlen);

/*
 * authorized_keys text for a service: one line per key of each identity in
 * ids[0..n) that matches (project_id, tags), in order. A key without a
 * comment gets "wsmux:<identity name>" so sshd's logs say whose it is.
 * Returns a malloc'd NUL-terminated string ("" when nothing matches) and
 * its length in *len, or NULL when out of memory.
 */
char *identity_authorized_keys(const identity_t *ids, size_t n,
                               const char *project_id, char *const *tags,
                               size_t ntags, size_t *len);

/* A new random id into out. 0, or -1 when the RNG fails. */
int identity_id_generate(char out[IDENTITY_ID_SIZE]);
/* Whether s has the form of a generated id (so it cannot be a name). */
int identity_id_is_generated(const char *s);

/* "2026-11-25T12:00:00Z". 0, or -1 for a time gmtime cannot represent. */
int identity_time_format(int64_t t, char out[IDENTITY_TIME_SIZE]);
/* Exactly that form (UTC, seconds). 0, or -1. */
int identity_time_parse(const char *s, int64_t *out);

#endif
