/*
 * Leveled logging to stderr: "PROG: error: ...", "PROG: warning: ...",
 * "PROG: ..." (info), "PROG: debug: ...", one line each. On a colour
 * terminal the "error:" / "warning:" tags are red / yellow (base/color.h:
 * never with NO_COLOR set, TERM=dumb or stderr not a terminal). A log_t is
 * created in main and passed down; there is no global logger.
 */
#ifndef WSMUX_LOG_H
#define WSMUX_LOG_H

typedef enum {
  LOG_ERROR = 0,
  LOG_WARN = 1,
  LOG_INFO = 2,
  LOG_DEBUG = 3,
} log_level_t;

typedef struct {
  const char *prog; /* prefix of every line, e.g. "wsmux" */
  log_level_t level;
  int timestamps; /* prefix each line with the local date and time */
  /* Optional, called around each line printed: printed == 0 just before it
   * is written (line is the text without prefix), 1 just after; lets a
   * status line on the terminal step aside, or a line be copied elsewhere. */
  void (*hook)(void *ctx, log_level_t level, const char *line, int printed);
  void *hook_ctx;
} log_t;

/* Parse "error|warn|info|debug"; -1 when unknown. */
int log_level_parse(const char *s);
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
void log_msg(const log_t *log, log_level_t level, const char *fmt, ...);

/* One line like log_msg()'s, whatever the level of any log_t: for
 * commands that report a failure and exit, e.g.
 * log_print("wsmux", LOG_ERROR, "--projectId is required"). */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
void log_print(const char *prog, log_level_t level, const char *fmt, ...);

#endif
