/*
 * `--proxyOnly --detach`: running the proxy in the background.
 *
 * detach_start() forks before any event loop or library state exists. The
 * child becomes a daemon (new session, cwd "/", umask 077, stdin from
 * /dev/null, stdout and stderr appended to the log file, every other
 * descriptor closed) and runs the proxy; the parent only relays what the
 * child reports over a pipe: text for its stdout and stderr, then either
 * "ready" (the parent exits 0, the child runs on) or "exiting with code N"
 * (the parent waits for the child to be gone and exits N, so a failure
 * looks exactly like a foreground one and leaves nothing behind).
 *
 * The child owns the detach_t; every call is a no-op once ready or failed
 * was sent.
 */
#ifndef WSMUX_DETACH_H
#define WSMUX_DETACH_H

#include <sys/types.h>

#include "base/log.h"

typedef struct {
  int fd; /* the pipe to the parent; -1 once done */
} detach_t;

/*
 * Fork. In the parent, returns the exit code the command should end with
 * after printing the child's report (*is_child = 0). In the child, returns
 * 0 with *is_child = 1 and d ready to report. -1 (printed) when the log
 * file cannot be opened or fork fails.
 */
int detach_start(const char *log_path, detach_t *d, int *is_child);

/* Text for the parent's stdout, printed as is. */
void detach_out(detach_t *d, const char *text);
/* A message for the parent's stderr, printed as a log line of level. */
void detach_err(detach_t *d, log_level_t level, const char *text);
/* Up and running: the parent prints what it got and exits 0. */
void detach_ready(detach_t *d);
/* Not running: the parent waits for this process to exit and exits with
 * code. Call it last, after the runtime files are removed. */
void detach_fail(detach_t *d, int code);
/* 1 until ready or failed was sent. */
int detach_pending(const detach_t *d);

#endif
