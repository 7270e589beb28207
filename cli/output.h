/*
 * What the admin commands print on stdout: aligned tables (the default) or
 * the server's JSON, pretty-printed (--output json). Text that comes from
 * the server is printed with its control characters and invalid UTF-8
 * replaced by '?', so an answer cannot drive the terminal.
 */
#ifndef WSMUX_OUTPUT_H
#define WSMUX_OUTPUT_H

#include <stddef.h>
#include <stdio.h>

#include <cjson/cJSON.h>

typedef enum {
  OUTPUT_TABLE = 0,
  OUTPUT_JSON,
} output_format_t;

/* "table" or "json" (NULL: table) into *out; -1 when unknown. */
int output_format_parse(const char *s, output_format_t *out);

/* Copy s into buf (len > 0), truncated (never inside a character), with
 * control characters (C0, DEL, and C1 encoded in UTF-8) and each byte that
 * is not valid UTF-8 replaced by '?'. */
void output_printable(char *buf, size_t len, const char *s);

/* Columns of text, printed aligned: a header row (bold on a colour
 * terminal, base/color.h), then the rows, the columns separated by three
 * spaces, no trailing blanks. Owns copies of its cells. */
typedef struct output_table output_table_t;

/* A table of ncols (1-16) columns with these headers; NULL when out of
 * memory or ncols is out of range. */
output_table_t *output_table_new(int ncols, const char *const *headers);
/* Append a row of ncols cells (NULL or "" print as "-"). -1 when out of
 * memory. */
int output_table_add(output_table_t *t, const char *const *cells);
void output_table_print(const output_table_t *t, FILE *f);
void output_table_free(output_table_t *t);

/* Print j as JSON indented by two spaces, and a newline. */
void output_json_print(const cJSON *j, FILE *f);

/*
 * Print an answer of the admin API (docs/ADMIN_API.md): the JSON as is
 * with OUTPUT_JSON, else a table. -1 (nothing printed) when a table is
 * asked for and the answer does not have the documented shape.
 */
int output_projects_print(const cJSON *answer, output_format_t fmt, FILE *f);
int output_services_print(const cJSON *answer, output_format_t fmt, FILE *f);
int output_identities_print(const cJSON *answer, output_format_t fmt, FILE *f);
/* One Identity, as "Label: value" lines. */
int output_identity_print(const cJSON *identity, output_format_t fmt, FILE *f);

#endif
