/* Cleaning and quoting text for messages. See text.h. */
#include "base/text.h"

#include <stdio.h>
#include <string.h>

_Static_assert(TEXT_QUOTE_SIZE >= TEXT_QUOTE_MAX + 8,
               "room for the quotes, \"...\" and NUL");

void text_clean(char *dst, size_t n, const char *s, size_t max) {
  size_t i = 0, o = 0;

  if (n == 0)
    return;
  for (; s[i] != '\0' && i < max && o + 1 < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    dst[o++] = (ch >= 0x20 && ch < 0x7f && ch != '"') ? (char)ch : '?';
  }
  if (s[i] != '\0' && o + 4 < n) {
    memcpy(dst + o, "...", 3);
    o += 3;
  }
  dst[o] = '\0';
}

void text_quote(char *dst, size_t n, const char *s) {
  char clean[TEXT_QUOTE_SIZE];

  if (n == 0)
    return;
  text_clean(clean, sizeof clean, s, TEXT_QUOTE_MAX);
  /* Checking the result keeps gcc -O2 -Wformat-truncation quiet; a cut
   * message is harmless. */
  if (snprintf(dst, n, "\"%s\"", clean) < 0)
    dst[0] = '\0';
}
