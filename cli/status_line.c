/* The proxy's live status line (cli/status_line.h). */
#include "cli/status_line.h"

#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define SIZE_STEP 1000.0
/* A value that would print as "1000" belongs to the next unit. */
#define SIZE_NEXT 999.5
#define DEFAULT_COLUMNS 80

void status_format_size(uint64_t bytes, char *out, size_t len) {
  static const char *const units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
  const int last = (int)(sizeof(units) / sizeof(units[0])) - 1;
  if (bytes < SIZE_STEP) {
    snprintf(out, len, "%llu B", (unsigned long long)bytes);
    return;
  }
  double v = (double)bytes;
  int u = 0;
  while (v >= SIZE_NEXT && u < last) {
    v /= SIZE_STEP;
    u++;
  }
  char num[32];
  snprintf(num, sizeof(num), v < 99.95 ? "%.1f" : "%.0f", v);
  size_t n = strlen(num);
  if (n > 2 && strcmp(num + n - 2, ".0") == 0)
    num[n - 2] = '\0';
  snprintf(out, len, "%s %s", num, units[u]);
}

void status_format_rate(double bytes_per_s, char *out, size_t len) {
  uint64_t b = bytes_per_s > 0 ? (uint64_t)(bytes_per_s + 0.5) : 0;
  status_format_size(b, out, len);
  size_t n = strlen(out);
  if (n + 3 <= len)
    memcpy(out + n, "/s", 3);
}

void status_format_duration(uint64_t s, char *out, size_t len) {
  unsigned long long v = s;
  if (v < 60)
    snprintf(out, len, "%llus", v);
  else if (v < 3600)
    snprintf(out, len, "%llum%02llus", v / 60, v % 60);
  else if (v < 86400)
    snprintf(out, len, "%lluh%02llum", v / 3600, v % 3600 / 60);
  else
    snprintf(out, len, "%llud%02lluh", v / 86400, v % 86400 / 3600);
}

double status_rate(uint64_t before, uint64_t after, uint64_t ms) {
  if (ms == 0 || after < before)
    return 0;
  return (double)(after - before) * 1000.0 / (double)ms;
}

void status_line_format(const status_view_t *v, char *out, size_t len) {
  char link[48], up[32], down[32], tup[32], tdown[32];
  if (v->connected)
    snprintf(link, sizeof(link), "connected");
  else if (v->reconnect_in_s >= 0)
    snprintf(link, sizeof(link), "reconnecting in %d s", v->reconnect_in_s);
  else
    snprintf(link, sizeof(link), "reconnecting");
  status_format_rate(v->rate_up, up, sizeof(up));
  status_format_rate(v->rate_down, down, sizeof(down));
  status_format_size(v->total_up, tup, sizeof(tup));
  status_format_size(v->total_down, tdown, sizeof(tdown));
  snprintf(out, len,
           "%s | %llu stream%s | \u2191 %s \u2193 %s | total \u2191 %s "
           "\u2193 %s",
           link, (unsigned long long)v->streams, v->streams == 1 ? "" : "s", up,
           down, tup, tdown);
}

/* --- drawing ----------------------------------------------------------- */

size_t status_fit(const char *text, int cols) {
  size_t i = 0;
  int used = 0;
  for (; text[i] != '\0'; i++) {
    /* A byte that starts a code point takes a column. */
    if (((unsigned char)text[i] & 0xc0) != 0x80 && used++ == cols)
      break;
  }
  return i;
}

/* Read at each draw: the terminal may have been resized. */
static int term_width(FILE *f) {
  struct winsize ws;
  if (ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1)
    return ws.ws_col;
  return DEFAULT_COLUMNS;
}

void status_line_init(status_line_t *s, FILE *f) {
  memset(s, 0, sizeof(*s));
  s->f = f;
  s->width = term_width(f);
}

static void draw(status_line_t *s) {
  s->width = term_width(s->f);
  /* One column stays free: a full line would wrap on some terminals and
   * "\r" would then no longer reach its start. */
  size_t n = status_fit(s->text, s->width - 1);
  fprintf(s->f, "\r%.*s\033[K", (int)n, s->text);
  fflush(s->f);
  s->shown = 1;
}

void status_line_show(status_line_t *s, const char *text) {
  snprintf(s->text, sizeof(s->text), "%s", text);
  draw(s);
}

void status_line_clear(status_line_t *s) {
  if (!s->shown)
    return;
  fputs("\r\033[K", s->f);
  fflush(s->f);
  s->shown = 0;
}
