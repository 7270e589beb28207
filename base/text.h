/*
 * Text from outside (JSON values, request paths, ids, a peer's close and
 * reset reasons) made safe to show in a message, a log line or an HTTP
 * header, so that a hostile value cannot break a line, forge a log line or
 * a header, or drive a terminal; cut so that one error stays one line. And
 * the UTF-8 rule every JSON string wsmux accepts must follow, and the hex
 * digits read from outside (tokens' SHA-256, resume ids, chunk sizes,
 * percent escapes), by one strict rule: no sign, blank or "0x".
 *
 * Ownership: the caller owns every buffer; nothing is allocated.
 */
#ifndef WSMUX_TEXT_H
#define WSMUX_TEXT_H

#include <stddef.h>
#include <stdint.h>

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
/*
 * src (len bytes, NULs included) for a log line: valid UTF-8 that prints is
 * kept; "\\" for a backslash (so an escape in the output always means one
 * was made); \n \r \t \e for those; every other control character (C0,
 * DEL, and the C1 controls U+0080..U+009F as their two bytes) and every
 * byte that is not part of valid UTF-8 as \xNN. Written into dst (n bytes,
 * always NUL-terminated when n > 0) and cut before a character or escape
 * that does not fit, then ending in "...". The output is at most 4 bytes
 * per input byte, so 4 * len + 1 never cuts.
 */
void text_escape(char *dst, size_t n, const char *src, size_t len);

/* Bytes of the valid UTF-8 character at s (len > 0 bytes available): 1..4;
 * 0 when s does not start one (a stray continuation byte, a truncated
 * sequence, an overlong form, a surrogate U+D800..DFFF, beyond U+10FFFF). */
size_t text_utf8_char(const char *s, size_t len);
/* 1 when the len bytes of s are valid UTF-8 (a NUL byte is), else 0. */
int text_utf8_valid(const char *s, size_t len);

/* The value of the hex digit c ('0'-'9', 'a'-'f', 'A'-'F'): 0..15; -1 for
 * any other character. */
int text_hex_digit(int c);
/* Decode hex[0..hexlen), which must be exactly 2 * n hex digits, into
 * out[0..n): 0, or -1 (out untouched) for another length or any other
 * character. */
int text_hex_decode(const char *hex, size_t hexlen, uint8_t *out, size_t n);

#endif
