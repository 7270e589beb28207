/*
 * The proxy's live status line: what it says (pure formatting, unit
 * tested) and how it is drawn on a terminal (one line on stderr, rewritten
 * in place with "\r" and erase-line).
 *
 *   connected | 3 streams | ↑ 12.3 MB/s ↓ 1.1 MB/s | total ↑ 1.2 GB ↓ 40 MB
 *   reconnecting in 2 s | 1 stream | ↑ 0 B/s ↓ 0 B/s | total ↑ 3.4 kB ↓ 1 MB
 *
 * Sizes are decimal (1 kB = 1000 B): one decimal below 100, none above, a
 * trailing ".0" dropped. A status_line_t holds no resources; the FILE it
 * draws on is borrowed.
 */
#ifndef WSMUX_STATUS_LINE_H
#define WSMUX_STATUS_LINE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* What the line shows. */
typedef struct {
  int connected;      /* else reconnecting */
  int reconnect_in_s; /* reconnecting: seconds to the next attempt; < 0
                         while an attempt is under way */
  uint64_t streams;   /* open now */
  double rate_up;     /* bytes/s, proxy -> edge */
  double rate_down;   /* bytes/s, edge -> proxy */
  uint64_t total_up;  /* bytes since the start */
  uint64_t total_down;
} status_view_t;

/* "0 B", "999 B", "1 kB", "12.3 MB", "1.2 GB", "140 GB", "3 TB". */
void status_format_size(uint64_t bytes, char *out, size_t len);
/* status_format_size of the rounded rate, then "/s": "12.3 MB/s". */
void status_format_rate(double bytes_per_s, char *out, size_t len);
/* "45s", "12m03s", "5h07m", "3d04h". */
void status_format_duration(uint64_t seconds, char *out, size_t len);
/* Bytes per second between two readings of a counter ms apart (0 when
 * ms is 0 or the counter went back). */
double status_rate(uint64_t before, uint64_t after, uint64_t ms);
/* The whole line (UTF-8, no newline). */
void status_line_format(const status_view_t *v, char *out, size_t len);

/* A line drawn on a terminal. */
typedef struct {
  FILE *f;
  int width;      /* columns of the terminal; the line is cut to width - 1 */
  int shown;      /* the line is on the screen now */
  char text[512]; /* what was drawn last */
} status_line_t;

/* Draw on f (a terminal); its width is read at each draw (80 if unknown). */
void status_line_init(status_line_t *s, FILE *f);
/* Replace the line by text (cut to the terminal's width). */
void status_line_show(status_line_t *s, const char *text);
/* Erase the line, e.g. before a log line is printed or at exit. */
void status_line_clear(status_line_t *s);
/* The first bytes of text that fit in cols columns (UTF-8 aware). */
size_t status_fit(const char *text, int cols);

#endif
