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

int text_utf8_valid(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s, *end = p + len;
  while (p < end) {
    unsigned c = *p++;
    size_t more;
    unsigned min, cp;
    if (c < 0x80)
      continue;
    if (c >= 0xc2 && c <= 0xdf) {
      more = 1, min = 0x80, cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      more = 2, min = 0x800, cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      more = 3, min = 0x10000, cp = c & 0x07;
    } else {
      return 0; /* a continuation byte, 0xc0/0xc1, or above 0xf4 */
    }
    if ((size_t)(end - p) < more)
      return 0;
    for (size_t i = 0; i < more; i++) {
      if ((p[i] & 0xc0) != 0x80)
        return 0;
      cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return 0;
    p += more;
  }
  return 1;
}
