/*
 * Strict JSON, the one set of rules for everything wsmux reads as JSON:
 * the edge config, the state file, admin API bodies. On top of cJSON: no
 * data after the document, no NUL byte or \u0000 (cJSON would silently
 * cut the string there), only valid UTF-8, no unknown or repeated keys,
 * and messages that
 * start with the JSON path of the bad value ("services[2].upstream:
 * expected a string, got 8080").
 *
 * Ownership: json_parse_strict() returns a tree the caller frees with
 * cJSON_Delete(); json_add() takes the item it is given. Messages go into
 * the caller's err (errlen bytes, cut to fit, NUL-terminated).
 */
#ifndef WSMUX_JSON_H
#define WSMUX_JSON_H

#include <stdarg.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#if defined(__GNUC__)
#define JSON_PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define JSON_PRINTF_LIKE(f, a)
#endif

/* Longest JSON path json_check_utf8() builds; a deeper one is cut (it only
 * appears in messages). */
#define JSON_PATH_MAX 256
/* How every syntax error of json_parse_strict() starts. */
#define JSON_SYNTAX_ERROR "invalid JSON at byte offset"

/*
 * Parse a whole JSON document of len bytes (no NUL needed). Only
 * whitespace may follow it, NUL bytes and "\u0000" are refused, and every
 * string and key must be valid UTF-8 (json_check_utf8()). NULL with
 * JSON_SYNTAX_ERROR " N[: why]" in err for a syntax error, or the message
 * of json_check_utf8() (which starts with the path of the value).
 */
cJSON *json_parse_strict(const char *text, size_t len, char *err,
                         size_t errlen);
/*
 * Every string value and key in v must be valid UTF-8 (base/text.h: no
 * overlongs, surrogates or code points past U+10FFFF): cJSON passes any
 * bytes through, and a file or answer holding them is refused by other
 * JSON readers and can carry terminal sequences. 0, or -1 with "PATH:
 * invalid UTF-8" (path of the string, below `path`) or "PATH: invalid
 * UTF-8 in a key" (path of the object) in err.
 */
int json_check_utf8(const cJSON *v, const char *path, char *err, size_t errlen);
/*
 * obj must be an object whose keys are all in `allowed` (NULL-terminated,
 * at most 32 entries) and none repeated. `what` names a key in messages:
 * "key" for config files, "field" for API bodies and the state file
 * ("tls: unknown key \"crt\""). 0, or -1 with a message starting with path
 * (none when path is "").
 */
int json_check_object(const cJSON *obj, const char *path,
                      const char *const *allowed, const char *what, char *err,
                      size_t errlen);

/* What a JSON value is, for "expected ..., got ..." messages: a quoted
 * string (text_quote), a number, true/false/null, an array, an object.
 * TEXT_QUOTE_SIZE bytes always suffice. */
void json_describe(char *dst, size_t n, const cJSON *v);

/* The path of member key of parent ("tls" + "cert" = "tls.cert"; "" +
 * "listen" = "listen") and of element i ("tokens[3]"). Paths only appear
 * in messages, so one cut to n bytes is harmless. */
void json_path_key(char *dst, size_t n, const char *parent, const char *key);
void json_path_index(char *dst, size_t n, const char *parent, size_t i);

/* "PATH: message" into err (just the message when path is NULL or "").
 * Always -1, so that a check can `return json_fail(...)`. */
JSON_PRINTF_LIKE(4, 5)
int json_fail(char *err, size_t errlen, const char *path, const char *fmt, ...);
JSON_PRINTF_LIKE(4, 0)
int json_vfail(char *err, size_t errlen, const char *path, const char *fmt,
               va_list ap);
/* json_fail() of "expected EXPECTED, got " and json_describe(v). */
int json_fail_got(char *err, size_t errlen, const char *path,
                  const char *expected, const cJSON *v);

/* A JSON array of the n strings v; NULL when out of memory. */
cJSON *json_strings(char *const *v, size_t n);
/* Add item (which may be NULL after a failed allocation) to obj under key,
 * taking ownership: 0, or -1 with item freed. */
int json_add(cJSON *obj, const char *key, cJSON *item);

#endif
