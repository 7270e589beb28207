/*
 * Text from outside (JSON values, request paths, ids) made safe to show in
 * a message, a log line or an HTTP header: printable ASCII only, so a
 * hostile value cannot break a line or forge a header, and cut so that one
 * error stays one line.
 *
 * Ownership: the caller owns every buffer; nothing is allocated.
 */
#ifndef WSMUX_TEXT_H
#define WSMUX_TEXT_H

#include <stddef.h>

/* Characters of a value text_quote() echoes before cutting it. */
#define TEXT_QUOTE_MAX 64
/* Always enough for text_quote(): the quotes, "..." and the NUL. */
#define TEXT_QUOTE_SIZE 72

/*
 * Copy up to max characters of s into dst (n bytes, always NUL-terminated
 * when n > 0), each byte outside printable ASCII and each '"' replaced by
 * '?'; "..." is appended when s was cut and there is room for it.
 */
void text_clean(char *dst, size_t n, const char *s, size_t max);
/* s for messages: text_clean() to TEXT_QUOTE_MAX characters, in double
 * quotes ("\"a?b...\""). Cut to n bytes, never overrun. */
void text_quote(char *dst, size_t n, const char *s);
/* Whether s[0..len) is well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF). */
int text_utf8_valid(const char *s, size_t len);

#endif
