/* Strict JSON and its messages. See json.h. */
#include "base/json.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/text.h"

/* ---- messages ---------------------------------------------------------- */

int json_vfail(char *err, size_t errlen, const char *path, const char *fmt,
               va_list ap) {
  int n = 0;

  if (err == NULL || errlen == 0)
    return -1;
  err[0] = '\0';
  if (path != NULL && path[0] != '\0')
    n = snprintf(err, errlen, "%s: ", path);
  if (n < 0 || (size_t)n >= errlen)
    return -1;
  vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
  return -1;
}

int json_fail(char *err, size_t errlen, const char *path, const char *fmt,
              ...) {
  va_list ap;

  va_start(ap, fmt);
  json_vfail(err, errlen, path, fmt, ap);
  va_end(ap);
  return -1;
}

void json_describe(char *dst, size_t n, const cJSON *v) {
  if (cJSON_IsString(v) && v->valuestring != NULL)
    text_quote(dst, n, v->valuestring);
  else if (cJSON_IsNumber(v))
    snprintf(dst, n, "%.15g", v->valuedouble);
  else if (cJSON_IsBool(v))
    snprintf(dst, n, "%s", cJSON_IsTrue(v) ? "true" : "false");
  else if (cJSON_IsNull(v))
    snprintf(dst, n, "null");
  else if (cJSON_IsArray(v))
    snprintf(dst, n, "an array");
  else
    snprintf(dst, n, "an object");
}

int json_fail_got(char *err, size_t errlen, const char *path,
                  const char *expected, const cJSON *v) {
  char got[TEXT_QUOTE_SIZE];

  json_describe(got, sizeof got, v);
  return json_fail(err, errlen, path, "expected %s, got %s", expected, got);
}

void json_path_key(char *dst, size_t n, const char *parent, const char *key) {
  if (snprintf(dst, n, "%s%s%s", parent, parent[0] ? "." : "", key) < 0)
    dst[0] = '\0';
}

void json_path_index(char *dst, size_t n, const char *parent, size_t i) {
  if (snprintf(dst, n, "%s[%zu]", parent, i) < 0)
    dst[0] = '\0';
}

/* ---- parsing ----------------------------------------------------------- */

static int json_space(char ch) {
  return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static int hex4(const char *s) {
  for (int k = 0; k < 4; k++)
    if (!isxdigit((unsigned char)s[k]))
      return 0;
  return 1;
}

/* cJSON turns "\u0000" into a NUL that silently ends the C string, and
 * so it does a raw NUL byte and a \u escape that is not four hex digits
 * ("\u00zz": its hex parser returns 0 for them). Outside strings a
 * backslash is a syntax error anyway, so counting the backslashes before
 * "u" tells an escape from an escaped backslash. Returns the offset of the
 * NUL byte or the escape's backslash (*why says which), or len. */
static size_t find_nul_escape(const char *text, size_t len, const char **why) {
  for (size_t i = 0; i < len; i++) {
    size_t nbs = 0;
    if (text[i] == '\0') {
      *why = "NUL bytes are not allowed";
      return i;
    }
    if (i == 0 || text[i] != 'u')
      continue;
    while (nbs < i && text[i - 1 - nbs] == '\\')
      nbs++;
    if (nbs % 2 == 0)
      continue;
    if (i + 5 > len || !hex4(text + i + 1)) {
      *why = "\\u must be followed by 4 hex digits";
      return i - 1;
    }
    if (memcmp(text + i + 1, "0000", 4) == 0) {
      *why = "\\u0000 is not allowed";
      return i - 1;
    }
  }
  return len;
}

cJSON *json_parse_strict(const char *text, size_t len, char *err,
                         size_t errlen) {
  const char *end = text, *why = "";
  size_t off;
  cJSON *root;

  if (text == NULL || len == 0) {
    json_fail(err, errlen, NULL, JSON_SYNTAX_ERROR " 0");
    return NULL;
  }
  root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
  if (root == NULL) {
    json_fail(err, errlen, NULL, JSON_SYNTAX_ERROR " %zu",
              (size_t)(end - text));
    return NULL;
  }
  off = (size_t)(end - text);
  while (off < len && json_space(text[off]))
    off++;
  if (off < len) {
    cJSON_Delete(root);
    json_fail(err, errlen, NULL,
              JSON_SYNTAX_ERROR " %zu: data after the document", off);
    return NULL;
  }
  off = find_nul_escape(text, len, &why);
  if (off < len) {
    cJSON_Delete(root);
    json_fail(err, errlen, NULL, JSON_SYNTAX_ERROR " %zu: %s", off, why);
    return NULL;
  }
  if (json_check_utf8(root, "", err, errlen) != 0) {
    cJSON_Delete(root);
    return NULL;
  }
  return root;
}

/* Depth-first over v, whose path is path[0..at) in a buffer of n bytes
 * shared by every level (cJSON bounds the depth at CJSON_NESTING_LIMIT).
 * Keys go into paths cleaned (text_clean): a message must not carry a
 * hostile key's control bytes. */
static int utf8_walk(const cJSON *v, char *path, size_t at, size_t n, char *err,
                     size_t errlen) {
  size_t i = 0;

  if (cJSON_IsString(v) && v->valuestring != NULL &&
      !text_utf8_valid(v->valuestring, strlen(v->valuestring)))
    return json_fail(err, errlen, path, "invalid UTF-8");
  for (const cJSON *m = v->child; m != NULL; m = m->next, i++) {
    if (cJSON_IsObject(v) && !text_utf8_valid(m->string, strlen(m->string)))
      return json_fail(err, errlen, path, "invalid UTF-8 in a key");
    if (cJSON_IsObject(v)) {
      char key[TEXT_QUOTE_SIZE];
      text_clean(key, sizeof key, m->string, TEXT_QUOTE_MAX);
      snprintf(path + at, n - at, "%s%s", at > 0 ? "." : "", key);
    } else {
      snprintf(path + at, n - at, "[%zu]", i);
    }
    if (utf8_walk(m, path, at + strlen(path + at), n, err, errlen) != 0)
      return -1;
    path[at] = '\0';
  }
  return 0;
}

int json_check_utf8(const cJSON *v, const char *path, char *err,
                    size_t errlen) {
  char buf[JSON_PATH_MAX];

  snprintf(buf, sizeof buf, "%s", path != NULL ? path : "");
  return utf8_walk(v, buf, strlen(buf), sizeof buf, err, errlen);
}

/* An unknown key is nearly always a typo that would otherwise be silently
 * ignored (or fall back to a default); a repeated key is ambiguous (cJSON
 * keeps the first). */
int json_check_object(const cJSON *obj, const char *path,
                      const char *const *allowed, const char *what, char *err,
                      size_t errlen) {
  uint32_t seen = 0;
  char q[TEXT_QUOTE_SIZE];

  if (!cJSON_IsObject(obj))
    return json_fail_got(err, errlen, path, "an object", obj);
  for (const cJSON *m = obj->child; m != NULL; m = m->next) {
    size_t i = 0;
    while (allowed[i] != NULL && strcmp(allowed[i], m->string) != 0)
      i++;
    text_quote(q, sizeof q, m->string);
    if (allowed[i] == NULL)
      return json_fail(err, errlen, path, "unknown %s %s", what, q);
    if (i < 32 && (seen & (1u << i)))
      return json_fail(err, errlen, path, "duplicate %s %s", what, q);
    if (i < 32)
      seen |= 1u << i;
  }
  return 0;
}

/* ---- building ---------------------------------------------------------- */

cJSON *json_strings(char *const *v, size_t n) {
  cJSON *arr = cJSON_CreateArray();

  for (size_t i = 0; arr != NULL && i < n; i++) {
    cJSON *s = cJSON_CreateString(v[i]);
    if (s == NULL || !cJSON_AddItemToArray(arr, s)) {
      cJSON_Delete(s);
      cJSON_Delete(arr);
      return NULL;
    }
  }
  return arr;
}

int json_add(cJSON *obj, const char *key, cJSON *item) {
  if (item != NULL && cJSON_AddItemToObject(obj, key, item))
    return 0;
  cJSON_Delete(item);
  return -1;
}
