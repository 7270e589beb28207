/*
 * The edge's mutable state: SSH identities and per-service SSH switches set
 * through the admin API (docs/ADMIN_API.md), persisted in the state file
 * (`stateFile` of docs/EDGE_CONFIG.md).
 *
 * File format (written by state_save, read by state_load):
 *
 *   {"version": 1,
 *    "identities": [Identity, ...],
 *    "services": [{"projectId": "p1", "serviceId": "web", "sshEnabled":
 * false}]}
 *
 * Changes are made copy-then-swap so a failed write leaves nothing changed:
 * clone the state, change the clone, state_save() it, and only on success
 * replace the old state with it (state_free() the loser).
 *
 * Ownership: a state_t owns its identities and switches. Pointers returned
 * by lookups stay valid until the state is changed or freed.
 */
#ifndef WSMUX_STATE_H
#define WSMUX_STATE_H

#include <stddef.h>

#include "base/file.h"
#include "edge/identity.h"
#include "edge/platform.h"

#define STATE_VERSION 1

/* An SSH switch that overrides the config's sshEnabled of one service. */
typedef struct {
  char *project_id;
  char *service_id;
  int ssh_enabled;
} state_ssh_t;

typedef struct {
  identity_t *identities; /* in creation order */
  size_t nidentities;
  state_ssh_t *ssh;
  size_t nssh;
} state_t;

/* file_write_atomic()'s results (base/file.h), under the names admin.c
 * and the fuzzer's stand-in use. */
typedef enum {
  STATE_SAVE_OK = FILE_WRITE_OK,
  /* Nothing changed on disk (the temporary file is removed). */
  STATE_SAVE_FAILED = FILE_WRITE_FAILED,
  /* The new file is in place but the directory could not be fsync'd, so a
   * crash may still bring back the old one. Treat as saved, and warn. */
  STATE_SAVE_NOT_SYNCED = FILE_WRITE_NOT_SYNCED,
} state_save_result_t;

/* An empty state; NULL when out of memory. */
state_t *state_new(void);
void state_free(state_t *s);
/* Deep copy; NULL when out of memory. */
state_t *state_clone(const state_t *s);

/*
 * Parse a state file's text. 0 with *out, or -1 with a message in err:
 * "invalid JSON at byte offset N" for syntax errors, else the JSON path of
 * the bad value ("identities[1].keys[0]: invalid base64").
 */
int state_parse(const char *text, size_t len, state_t **out, char *err,
                size_t errlen);
/* state_parse on a file; a missing file is an empty state. Messages start
 * with the path. The file is only read. */
int state_load(const char *path, state_t **out, char *err, size_t errlen);
/* The file's text (malloc'd, NUL-terminated, ends in a newline). */
char *state_serialize(const state_t *s, size_t *len);
/*
 * Write s to path with file_write_atomic() (base/file.h: a temporary file
 * in the same directory, fsync, rename over path, fsync of the directory).
 * A new file gets mode 0644 (it holds public keys and is read by sshd's
 * AuthorizedKeysCommand); an existing file keeps its mode.
 */
state_save_result_t state_save(const state_t *s, const char *path, char *err,
                               size_t errlen);

/* Index of the identity whose id, else whose name, is id_or_name; -1. */
long state_find_identity(const state_t *s, const char *id_or_name);
/* Index of the identity named name other than `except` (-1: none); -1. */
long state_find_name(const state_t *s, const char *name, long except);
/* Append *id, taking its contents (zeroes *id). 0, or -1 out of memory
 * (*id untouched). */
int state_add_identity(state_t *s, identity_t *id);
/* Replace identity i with *id, taking its contents (zeroes *id). */
void state_replace_identity(state_t *s, size_t i, identity_t *id);
void state_remove_identity(state_t *s, size_t i);

/* The switch of a service, or NULL. */
const state_ssh_t *state_find_ssh(const state_t *s, const char *project_id,
                                  const char *service_id);
/* Add or change a switch. 0, or -1 out of memory (s unchanged). */
int state_set_ssh(state_t *s, const char *project_id, const char *service_id,
                  int enabled);
/* Set every service's ssh_enabled: its switch, else the config's
 * sshEnabled (switches of services no longer in the config are kept but
 * have no effect). */
void state_apply(const state_t *s, platform_t *p);

#endif
