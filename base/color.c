/* Terminal emphasis (base/color.h). */
#include "base/color.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int color_enabled(FILE *f) {
  const char *no_color = getenv("NO_COLOR");
  const char *term = getenv("TERM");
  if (no_color != NULL && no_color[0] != '\0')
    return 0;
  if (term != NULL && strcmp(term, "dumb") == 0)
    return 0;
  return isatty(fileno(f));
}

const char *color_code(int enabled, color_t c) {
  static const char *const codes[] = {"\033[0m", "\033[1m", "\033[1;31m",
                                      "\033[1;33m"};
  if (!enabled || (unsigned)c >= sizeof(codes) / sizeof(codes[0]))
    return "";
  return codes[c];
}
