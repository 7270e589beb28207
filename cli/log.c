#include "cli/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int log_level_parse(const char *s) {
  static const char *names[] = {"error", "warn", "info", "debug"};
  for (int i = 0; i < 4; i++)
    if (strcmp(s, names[i]) == 0)
      return i;
  return -1;
}

void log_msg(const log_t *log, log_level_t level, const char *fmt, ...) {
  if (log == NULL || level > log->level)
    return;
  static const char *tags[] = {"error: ", "warning: ", "", "debug: "};
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  /* One fprintf per line keeps lines whole when stderr is shared. */
  fprintf(stderr, "%s: %s%s\n", log->prog, tags[level], line);
}
