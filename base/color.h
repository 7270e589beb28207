/*
 * Terminal emphasis for the programs' own output (bold table headers, a
 * red "error:", a yellow "warning:"), following https://no-color.org:
 * used only when the stream is a terminal, NO_COLOR is unset or empty and
 * TERM is not "dumb". The environment is read at each call: no state.
 */
#ifndef WSMUX_COLOR_H
#define WSMUX_COLOR_H

#include <stdio.h>

typedef enum {
  COLOR_RESET = 0,
  COLOR_BOLD,
  COLOR_RED,    /* bold red: "error:" */
  COLOR_YELLOW, /* bold yellow: "warning:" */
} color_t;

/* 1 when emphasis may be written to f (see above), else 0. */
int color_enabled(FILE *f);

/* The SGR sequence of c, or "" when enabled is 0; a static string. */
const char *color_code(int enabled, color_t c);

#endif
