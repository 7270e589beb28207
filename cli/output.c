/* Tables and JSON on stdout (cli/output.h). */
#include "cli/output.h"

#include <stdlib.h>
#include <string.h>

#include "base/color.h"
#include "base/text.h"

#define COLUMN_GAP 3
#define LABEL_WIDTH 16
#define MAX_COLS 16

int output_format_parse(const char *s, output_format_t *out) {
  if (s == NULL || strcmp(s, "table") == 0)
    *out = OUTPUT_TABLE;
  else if (strcmp(s, "json") == 0)
    *out = OUTPUT_JSON;
  else
    return -1;
  return 0;
}

void output_printable(char *buf, size_t len, const char *s) {
  size_t j = 0, n = strlen(s);
  for (size_t i = 0; i < n && j + 1 < len;) {
    const unsigned char *c = (const unsigned char *)s + i;
    size_t k = text_utf8_char(s + i, n - i);
    /* A byte that is not UTF-8 would reach the terminal as it is (a lone
     * 0x9b is CSI on an 8-bit terminal); a character cut by buf stays
     * out. */
    int bad =
        k == 0 || c[0] < 0x20 || c[0] == 0x7f || (c[0] == 0xc2 && c[1] <= 0x9f);
    if (bad) {
      buf[j++] = '?';
      i += k ? k : 1;
      continue;
    }
    if (j + k >= len)
      break;
    memcpy(buf + j, s + i, k);
    j += k;
    i += k;
  }
  buf[j] = '\0';
}

static char *printable_dup(const char *s) {
  size_t len = strlen(s) + 1;
  char *d = malloc(len);
  if (d != NULL)
    output_printable(d, len, s);
  return d;
}

/* Characters shown for a UTF-8 string: its bytes that start a code point. */
static size_t text_width(const char *s) {
  size_t w = 0;
  for (; *s; s++)
    w += ((unsigned char)*s & 0xc0) != 0x80;
  return w;
}

/* ---- tables --------------------------------------------------------- */

struct output_table {
  int ncols;
  size_t nrows; /* the header included */
  size_t cap;   /* rows allocated */
  char **cells; /* nrows * ncols, each owned */
};

output_table_t *output_table_new(int ncols, const char *const *headers) {
  if (ncols < 1 || ncols > MAX_COLS)
    return NULL;
  output_table_t *t = calloc(1, sizeof(*t));
  if (t == NULL)
    return NULL;
  t->ncols = ncols;
  if (output_table_add(t, headers) != 0) {
    output_table_free(t);
    return NULL;
  }
  return t;
}

static int table_grow(output_table_t *t) {
  size_t cap = t->cap ? t->cap * 2 : 8;
  char **cells = realloc(t->cells, cap * (size_t)t->ncols * sizeof(*cells));
  if (cells == NULL)
    return -1;
  t->cells = cells;
  t->cap = cap;
  return 0;
}

int output_table_add(output_table_t *t, const char *const *cells) {
  if (t->nrows == t->cap && table_grow(t) != 0)
    return -1;
  char **row = t->cells + t->nrows * (size_t)t->ncols;
  for (int i = 0; i < t->ncols; i++) {
    row[i] = printable_dup(cells[i] && *cells[i] ? cells[i] : "-");
    if (row[i] == NULL) {
      while (i-- > 0)
        free(row[i]);
      return -1;
    }
  }
  t->nrows++;
  return 0;
}

void output_table_print(const output_table_t *t, FILE *f) {
  size_t width[MAX_COLS] = {0};
  int ncols = t->ncols;
  for (size_t r = 0; r < t->nrows; r++)
    for (int c = 0; c < ncols; c++) {
      size_t w = text_width(t->cells[r * (size_t)t->ncols + (size_t)c]);
      width[c] = w > width[c] ? w : width[c];
    }
  /* The header row is bold on a colour terminal (base/color.h). */
  int bold = color_enabled(f);
  for (size_t r = 0; r < t->nrows; r++) {
    char *const *row = t->cells + r * (size_t)t->ncols;
    const char *on = color_code(bold && r == 0, COLOR_BOLD);
    const char *off = color_code(bold && r == 0, COLOR_RESET);
    for (int c = 0; c < ncols - 1; c++)
      fprintf(f, "%s%s%s%*s", on, row[c], off,
              (int)(width[c] - text_width(row[c]) + COLUMN_GAP), "");
    fprintf(f, "%s%s%s\n", on, row[ncols - 1], off);
  }
}

void output_table_free(output_table_t *t) {
  if (t == NULL)
    return;
  for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++)
    free(t->cells[i]);
  free(t->cells);
  free(t);
}

/* ---- JSON ----------------------------------------------------------- */

/* A JSON string that cannot drive a terminal and is the same value:
 * control characters (cJSON escapes only C0; here also DEL and the C1
 * controls) as \u00XX. A byte that is not UTF-8 (the edge never sends
 * one; a foreign server might) cannot be written in valid JSON: it
 * becomes U+FFFD. */
static void json_string(const char *s, FILE *f) {
  size_t n = strlen(s);
  fputc('"', f);
  for (size_t i = 0; i < n;) {
    const unsigned char *c = (const unsigned char *)s + i;
    size_t k = text_utf8_char(s + i, n - i);
    if (k == 0) {
      fputs("\\ufffd", f);
      i++;
    } else if (c[0] == '"' || c[0] == '\\') {
      fprintf(f, "\\%c", c[0]);
      i++;
    } else if (c[0] < 0x20 || c[0] == 0x7f) {
      fprintf(f, "\\u%04x", c[0]);
      i++;
    } else if (k == 2 && c[0] == 0xc2 && c[1] <= 0x9f) {
      fprintf(f, "\\u%04x", c[1]);
      i += 2;
    } else {
      fwrite(c, 1, k, f);
      i += k;
    }
  }
  fputc('"', f);
}

static void json_leaf(const cJSON *j, FILE *f) {
  if (cJSON_IsString(j) && j->valuestring != NULL) {
    json_string(j->valuestring, f);
    return;
  }
  char *s = cJSON_PrintUnformatted(j);
  fputs(s ? s : "null", f);
  free(s);
}

static void json_key(const char *key, FILE *f) {
  json_string(key ? key : "", f);
  fputs(": ", f);
}

static void json_write(const cJSON *j, int depth, FILE *f) {
  int obj = cJSON_IsObject(j);
  if (!obj && !cJSON_IsArray(j)) {
    json_leaf(j, f);
    return;
  }
  if (j->child == NULL) {
    fputs(obj ? "{}" : "[]", f);
    return;
  }
  fputc(obj ? '{' : '[', f);
  for (const cJSON *c = j->child; c != NULL; c = c->next) {
    fprintf(f, "\n%*s", (depth + 1) * 2, "");
    if (obj)
      json_key(c->string, f);
    json_write(c, depth + 1, f);
    if (c->next != NULL)
      fputc(',', f);
  }
  fprintf(f, "\n%*s%c", depth * 2, "", obj ? '}' : ']');
}

void output_json_print(const cJSON *j, FILE *f) {
  json_write(j, 0, f);
  fputc('\n', f);
}

/* ---- answers of the admin API --------------------------------------- */

static const char *field_string(const cJSON *o, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int field_true(const cJSON *o, const char *name) {
  return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, name));
}

/* The strings of array o.name joined by sep, or none when there are none;
 * malloc'd (NULL when out of memory). */
static char *field_join(const cJSON *o, const char *name, const char *sep,
                        const char *none) {
  const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, name), *s;
  size_t len = strlen(none) + 1, seplen = strlen(sep);
  cJSON_ArrayForEach(s, a) {
    if (cJSON_IsString(s))
      len += strlen(s->valuestring) + seplen;
  }
  char *out = malloc(len);
  if (out == NULL)
    return NULL;
  out[0] = '\0';
  size_t n = 0;
  cJSON_ArrayForEach(s, a) {
    if (!cJSON_IsString(s))
      continue;
    size_t l = strlen(s->valuestring);
    if (n > 0) {
      memcpy(out + n, sep, seplen);
      n += seplen;
    }
    memcpy(out + n, s->valuestring, l + 1);
    n += l;
  }
  if (n == 0)
    memcpy(out, none, strlen(none) + 1);
  return out;
}

/* The array answer.name, or NULL when it is not there. */
static const cJSON *answer_list(const cJSON *answer, const char *name) {
  const cJSON *a = cJSON_GetObjectItemCaseSensitive(answer, name);
  return cJSON_IsArray(a) ? a : NULL;
}

/* Print a table of list's items, one row each from row(); -1 when out of
 * memory or when row() fails. */
typedef int (*row_fn)(output_table_t *t, const cJSON *item);

static int print_list(const cJSON *list, int ncols, const char *const *heads,
                      row_fn row, FILE *f) {
  output_table_t *t = output_table_new(ncols, heads);
  const cJSON *item;
  int rc = t ? 0 : -1;
  cJSON_ArrayForEach(item, list) {
    if (rc == 0)
      rc = row(t, item);
  }
  if (rc == 0)
    output_table_print(t, f);
  output_table_free(t);
  return rc;
}

static int project_row(output_table_t *t, const cJSON *p) {
  const char *cells[] = {field_string(p, "id"), field_string(p, "name")};
  return output_table_add(t, cells);
}

int output_projects_print(const cJSON *answer, output_format_t fmt, FILE *f) {
  static const char *const heads[] = {"ID", "NAME"};
  const cJSON *list = answer_list(answer, "projects");
  if (fmt == OUTPUT_JSON)
    output_json_print(answer, f);
  else if (list == NULL || print_list(list, 2, heads, project_row, f) != 0)
    return -1;
  return 0;
}

static int service_row(output_table_t *t, const cJSON *s) {
  char *tags = field_join(s, "tags", ",", "-");
  const char *cells[] = {field_string(s, "id"), field_string(s, "name"),
                         field_string(s, "kind"), tags,
                         field_true(s, "sshEnabled") ? "enabled" : "disabled"};
  int rc = tags ? output_table_add(t, cells) : -1;
  free(tags);
  return rc;
}

int output_services_print(const cJSON *answer, output_format_t fmt, FILE *f) {
  static const char *const heads[] = {"ID", "NAME", "KIND", "TAGS", "SSH"};
  const cJSON *list = answer_list(answer, "services");
  if (fmt == OUTPUT_JSON)
    output_json_print(answer, f);
  else if (list == NULL || print_list(list, 5, heads, service_row, f) != 0)
    return -1;
  return 0;
}

static int identity_row(output_table_t *t, const cJSON *i) {
  char keys[16];
  const cJSON *k = cJSON_GetObjectItemCaseSensitive(i, "keys");
  snprintf(keys, sizeof(keys), "%d",
           cJSON_IsArray(k) ? cJSON_GetArraySize(k) : 0);
  char *projects = field_join(i, "projects", ",", "(all)");
  char *tags = field_join(i, "tags", ",", "(any)");
  const char *cells[] = {field_string(i, "id"),
                         field_string(i, "name"),
                         keys,
                         projects,
                         tags,
                         field_true(i, "matchAllTags") ? "all" : "any",
                         field_string(i, "description")};
  int rc = projects && tags ? output_table_add(t, cells) : -1;
  free(projects);
  free(tags);
  return rc;
}

int output_identities_print(const cJSON *answer, output_format_t fmt, FILE *f) {
  static const char *const heads[] = {"ID",   "NAME",  "KEYS",       "PROJECTS",
                                      "TAGS", "MATCH", "DESCRIPTION"};
  const cJSON *list = answer_list(answer, "identities");
  if (fmt == OUTPUT_JSON)
    output_json_print(answer, f);
  else if (list == NULL || print_list(list, 7, heads, identity_row, f) != 0)
    return -1;
  return 0;
}

/* "Label:" padded to LABEL_WIDTH, then value made printable. */
static void print_field(FILE *f, const char *label, const char *value) {
  char buf[4096];
  output_printable(buf, sizeof(buf), value && *value ? value : "-");
  fprintf(f, "%-*s%s\n", LABEL_WIDTH, label, buf);
}

static void print_keys(FILE *f, const cJSON *identity) {
  const cJSON *keys = cJSON_GetObjectItemCaseSensitive(identity, "keys"), *k;
  const char *label = "Keys:";
  cJSON_ArrayForEach(k, keys) {
    if (cJSON_IsString(k)) {
      print_field(f, label, k->valuestring);
      label = "";
    }
  }
  if (*label != '\0')
    print_field(f, label, NULL);
}

int output_identity_print(const cJSON *identity, output_format_t fmt, FILE *f) {
  if (fmt == OUTPUT_JSON) {
    output_json_print(identity, f);
    return 0;
  }
  if (!cJSON_IsObject(identity) || field_string(identity, "id") == NULL)
    return -1;
  char *projects = field_join(identity, "projects", ", ", "(all)");
  char *tags = field_join(identity, "tags", ", ", "(any)");
  if (projects == NULL || tags == NULL) {
    free(projects);
    free(tags);
    return -1;
  }
  print_field(f, "ID:", field_string(identity, "id"));
  print_field(f, "Name:", field_string(identity, "name"));
  print_field(f, "Description:", field_string(identity, "description"));
  print_keys(f, identity);
  print_field(f, "Projects:", projects);
  print_field(f, "Tags:", tags);
  print_field(
      f, "Match tags:", field_true(identity, "matchAllTags") ? "all" : "any");
  print_field(f, "Created:", field_string(identity, "createdAt"));
  print_field(f, "Updated:", field_string(identity, "updatedAt"));
  free(projects);
  free(tags);
  return 0;
}
