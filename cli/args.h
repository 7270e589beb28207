/*
 * Long-option parsing for the CLI commands: `--name value`, `--name=value`
 * and boolean `--flag`. Positional words and everything after `--` are
 * collected in order. No globals; argv is not modified.
 *
 * An option of args_opt_t keeps the last value given. A repeatable option
 * (args_list_t, with args_parse_lists) keeps every value, in order:
 * `--tag a --tag b`.
 */
#ifndef WSMUX_ARGS_H
#define WSMUX_ARGS_H

#include <stddef.h>

typedef struct {
  const char *name;   /* without the leading "--" */
  const char **value; /* set for options taking a value, else NULL */
  int *flag;          /* set to 1 for boolean options, else NULL */
} args_opt_t;

/*
 * Parse argv[0..argc) against opts (terminated by a zero entry). Positional
 * words are stored in rest (room for maxrest), their count in *nrest; words
 * after "--" too, and *dashdash is set to the index in rest where they start
 * (or -1). Returns 0, or -1 with a message in err.
 */
int args_parse(int argc, char **argv, const args_opt_t *opts, char **rest,
               int maxrest, int *nrest, int *dashdash, char *err,
               size_t errlen);

/* A repeatable option taking a value. The caller owns items (room for
 * max); the values are borrowed from argv; *n counts them. */
typedef struct {
  const char *name; /* without the leading "--" */
  const char **items;
  int max;
  int *n;
} args_list_t;

/* args_parse() that also knows the repeatable options in lists
 * (terminated by a zero entry; NULL for none). Every *n is set to the
 * number of values given (0 when the option is absent). A name must not be
 * in both opts and lists. */
int args_parse_lists(int argc, char **argv, const args_opt_t *opts,
                     const args_list_t *lists, char **rest, int maxrest,
                     int *nrest, int *dashdash, char *err, size_t errlen);

/* Parse a decimal in [min, max] into *out; -1 when not one. */
int args_parse_long(const char *s, long min, long max, long *out);

#endif
