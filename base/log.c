#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/color.h"

int log_level_parse(const char *s) {
  static const char *names[] = {"error", "warn", "info", "debug"};
  for (int i = 0; i < 4; i++)
    if (strcmp(s, names[i]) == 0)
      return i;
  return -1;
}

/* "PROG: TAG: MESSAGE\n" on stderr, the tag emphasised on a colour
 * terminal (base/color.h). One fprintf per line keeps lines whole when
 * stderr is shared. */
static void log_vprint(const log_t *log, const char *prog, log_level_t level,
                       const char *fmt, va_list ap) {
  static const char *const tags[] = {"error:", "warning:", "", "debug:"};
  static const color_t colors[] = {COLOR_RED, COLOR_YELLOW, COLOR_RESET,
                                   COLOR_BOLD};
  char line[1024], *text = line;
  va_list again;
  va_copy(again, ap);
  int n = vsnprintf(line, sizeof(line), fmt, ap);
  /* A long message (a path in it, say) is printed whole. */
  if (n >= (int)sizeof(line) && (text = malloc((size_t)n + 1)) != NULL)
    vsnprintf(text, (size_t)n + 1, fmt, again);
  va_end(again);
  if (text == NULL)
    text = line;
  char when[40] = "";
  if (log != NULL && log->timestamps) {
    time_t now = time(NULL);
    struct tm tm;
    if (localtime_r(&now, &tm) != NULL)
      strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S%z ", &tm);
  }
  if (log != NULL && log->hook != NULL)
    log->hook(log->hook_ctx, level, text, 0);
  int on = level != LOG_INFO && color_enabled(stderr);
  fprintf(stderr, "%s%s: %s%s%s%s%s\n", when, prog,
          color_code(on, colors[level]), tags[level],
          color_code(on, COLOR_RESET), *tags[level] ? " " : "", text);
  if (log != NULL && log->hook != NULL)
    log->hook(log->hook_ctx, level, text, 1);
  if (text != line)
    free(text);
}

void log_msg(const log_t *log, log_level_t level, const char *fmt, ...) {
  if (log == NULL || level > log->level)
    return;
  va_list ap;
  va_start(ap, fmt);
  log_vprint(log, log->prog, level, fmt, ap);
  va_end(ap);
}

void log_print(const char *prog, log_level_t level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  log_vprint(NULL, prog, level, fmt, ap);
  va_end(ap);
}
