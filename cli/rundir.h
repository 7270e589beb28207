/*
 * The runtime directory of the running proxies and the pidfile that makes
 * one proxy per service (README: "Background proxies").
 *
 * Directory: $XDG_RUNTIME_DIR/wsmux when XDG_RUNTIME_DIR is set, else
 * ~/.cache/wsmux; mode 0700, created on demand. Per proxy, named
 * <project>.<service>.<ext>:
 *   pid   the pidfile: one JSON object (cli/proxy_status.h), locked with
 *         flock(LOCK_EX) by its proxy for the proxy's whole life. A pidfile
 *         nobody holds a lock on belongs to a dead process: it is stale.
 *   sock  the proxy's control socket (cli/proxy_status.h)
 *   log   the log of a background proxy (--detach)
 *
 * Races: every step that creates, rewrites, inspects or removes a pidfile
 * runs under a flock of the directory itself, held only for those few
 * file operations. So two proxies starting at once cannot both win, a
 * reader never sees a half-written pidfile, and stale files are removed
 * without ever removing a live proxy's.
 */
#ifndef WSMUX_RUNDIR_H
#define WSMUX_RUNDIR_H

#include <limits.h>
#include <stddef.h>

#define RUNDIR_CONTENT_MAX 4096
#define RUNDIR_HELD 1

/* The directory, created (0700) if missing, into out. 0, or -1 with a
 * message in err. */
int rundir_dir(char *out, size_t len, char *err, size_t errlen);

/* dir/<project>.<service>.<ext>; -1 when it does not fit. */
int rundir_path(char *out, size_t len, const char *dir, const char *project,
                const char *service, const char *ext);

/* A pidfile this process holds. Owns fd. */
typedef struct {
  int fd; /* -1: none */
  char dir[PATH_MAX];
  char pid_path[PATH_MAX];
  char sock_path[PATH_MAX];
} rundir_lock_t;

/*
 * Take the pidfile of project/service in dir and write content into it;
 * a stale pidfile and socket are replaced. Returns 0 when taken (release
 * with rundir_release), RUNDIR_HELD when a live process holds it (its
 * content copied into held, RUNDIR_CONTENT_MAX bytes suffice), or -1 with
 * a message in err.
 */
int rundir_acquire(const char *dir, const char *project, const char *service,
                   const char *content, rundir_lock_t *lk, char *held,
                   size_t heldlen, char *err, size_t errlen);
/* Replace the content of a pidfile taken by rundir_acquire. 0 or -1. */
int rundir_update(rundir_lock_t *lk, const char *content);
/* Remove the pidfile and the socket, then let go of the lock. Safe on a
 * lock not taken (fd -1) and twice. */
void rundir_release(rundir_lock_t *lk);

/* A live proxy's pidfile, as found by rundir_scan. */
typedef struct {
  char pid_path[PATH_MAX];
  char sock_path[PATH_MAX]; /* the pidfile's name with ".sock" */
  char content[RUNDIR_CONTENT_MAX];
} rundir_entry_t;

/* The pidfiles of dir held by live processes, into *out (free() it),
 * *n of them, sorted by name. Stale pidfiles are removed with their
 * sockets; *stale counts them. 0, or -1 with a message in err. */
int rundir_scan(const char *dir, rundir_entry_t **out, size_t *n, size_t *stale,
                char *err, size_t errlen);

/* 1 with the content in buf when pid_path is held by a live process, 0
 * when not (missing or stale), -1 on error. */
int rundir_read_held(const char *dir, const char *pid_path, char *buf,
                     size_t len);

#endif
