/* Cleaning and quoting text for messages; UTF-8; hex. See text.h. */
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

size_t text_utf8_char(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  unsigned char lo = 0x80, hi = 0xbf;
  size_t need;

  if (len == 0)
    return 0;
  if (p[0] < 0x80)
    return 1;
  /* The ranges of RFC 3629 section 4: the second byte's bounds exclude
   * overlongs (e0, f0), surrogates (ed) and code points past U+10FFFF
   * (f4); c0, c1 and f5..ff never start a character. */
  if (p[0] >= 0xc2 && p[0] <= 0xdf)
    need = 2;
  else if (p[0] >= 0xe0 && p[0] <= 0xef)
    need = 3;
  else if (p[0] >= 0xf0 && p[0] <= 0xf4)
    need = 4;
  else
    return 0;
  if (p[0] == 0xe0)
    lo = 0xa0;
  else if (p[0] == 0xed)
    hi = 0x9f;
  else if (p[0] == 0xf0)
    lo = 0x90;
  else if (p[0] == 0xf4)
    hi = 0x8f;
  if (len < need || p[1] < lo || p[1] > hi)
    return 0;
  for (size_t i = 2; i < need; i++)
    if (p[i] < 0x80 || p[i] > 0xbf)
      return 0;
  return need;
}

int text_utf8_valid(const char *s, size_t len) {
  size_t i = 0;

  while (i < len) {
    size_t k = text_utf8_char(s + i, len - i);
    if (k == 0)
      return 0;
    i += k;
  }
  return 1;
}

int text_hex_digit(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

int text_hex_decode(const char *hex, size_t hexlen, uint8_t *out, size_t n) {
  /* Checked whole first, so that a bad digit leaves out as it was. */
  if (hexlen / 2 != n || hexlen % 2 != 0)
    return -1;
  for (size_t i = 0; i < hexlen; i++)
    if (text_hex_digit(hex[i]) < 0)
      return -1;
  for (size_t i = 0; i < n; i++)
    out[i] = (uint8_t)(text_hex_digit(hex[2 * i]) << 4 |
                       text_hex_digit(hex[2 * i + 1]));
  return 0;
}

/* The escape for the character of k bytes at p into out (room for 16):
 * its length, 0 when it prints as it is. */
static size_t escape_one(const unsigned char *p, size_t k, char *out) {
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;

  if (k == 1 && p[0] >= 0x20 && p[0] < 0x7f && p[0] != '\\')
    return 0;
  if (k > 2 || (k == 2 && !(p[0] == 0xc2 && p[1] < 0xa0)))
    return 0; /* printable beyond ASCII; only C1 controls are 2-byte */
  if (k == 1) {
    const char *named = p[0] == '\\'   ? "\\\\"
                        : p[0] == '\n' ? "\\n"
                        : p[0] == '\r' ? "\\r"
                        : p[0] == '\t' ? "\\t"
                        : p[0] == 0x1b ? "\\e"
                                       : NULL;
    if (named != NULL) {
      memcpy(out, named, 2);
      return 2;
    }
  }
  for (size_t i = 0; i < (k ? k : 1); i++) {
    out[o++] = '\\';
    out[o++] = 'x';
    out[o++] = hex[p[i] >> 4];
    out[o++] = hex[p[i] & 15];
  }
  return o;
}

/* One character (or stray byte) of src at i: its output piece in *out
 * (esc or src itself), its length, and the input bytes it takes. */
static size_t escape_piece(const char *src, size_t i, size_t len, char *esc,
                           const char **out, size_t *taken) {
  size_t k = text_utf8_char(src + i, len - i);
  size_t e = escape_one((const unsigned char *)src + i, k, esc);

  *taken = k ? k : 1;
  *out = e > 0 ? esc : src + i;
  return e > 0 ? e : k;
}

void text_escape(char *dst, size_t n, const char *src, size_t len) {
  char esc[16];
  const char *out;
  size_t i, o = 0, m, taken, total = 0, room;

  if (n == 0)
    return;
  for (i = 0; i < len; i += taken)
    total += escape_piece(src, i, len, esc, &out, &taken);
  /* Everything when it fits; else whole pieces and "..." (when even that
   * fits: n < 4 just cuts). */
  room = total < n ? n - 1 : n >= 4 ? n - 4 : n - 1;
  for (i = 0; i < len; i += taken) {
    m = escape_piece(src, i, len, esc, &out, &taken);
    if (o + m > room)
      break;
    memcpy(dst + o, out, m);
    o += m;
  }
  if (i < len && n >= 4) {
    memcpy(dst + o, "...", 3);
    o += 3;
  }
  dst[o] = '\0';
}
