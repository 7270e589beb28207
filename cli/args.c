#include "cli/args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The tables of one parse. */
typedef struct {
  const args_opt_t *opts;
  const args_list_t *lists; /* or NULL */
} args_tables_t;

static int name_is(const char *opt, const char *name, size_t len) {
  return strlen(opt) == len && strncmp(opt, name, len) == 0;
}

static const args_opt_t *find_opt(const args_opt_t *opts, const char *name,
                                  size_t len) {
  for (; opts->name != NULL; opts++)
    if (name_is(opts->name, name, len))
      return opts;
  return NULL;
}

static const args_list_t *find_list(const args_list_t *lists, const char *name,
                                    size_t len) {
  for (; lists != NULL && lists->name != NULL; lists++)
    if (name_is(lists->name, name, len))
      return lists;
  return NULL;
}

static int add_rest(char *word, char **rest, int maxrest, int *nrest, char *err,
                    size_t errlen) {
  if (*nrest >= maxrest) {
    snprintf(err, errlen, "too many arguments at '%s'", word);
    return -1;
  }
  rest[(*nrest)++] = word;
  return 0;
}

/* The value of "--name[=value]" at argv[*i]: after '=' or the next word. */
static const char *take_value(int argc, char **argv, int *i, const char *eq,
                              const char *name, char *err, size_t errlen) {
  if (eq != NULL)
    return eq + 1;
  if (*i + 1 < argc)
    return argv[++*i];
  snprintf(err, errlen, "option '--%s' needs a value", name);
  return NULL;
}

static int append_list(const args_list_t *l, const char *v, char *err,
                       size_t errlen) {
  if (*l->n >= l->max) {
    snprintf(err, errlen, "option '--%s' given more than %d times", l->name,
             l->max);
    return -1;
  }
  l->items[(*l->n)++] = v;
  return 0;
}

/* One "--name[=value]" at argv[*i]; may consume the next word. */
static int parse_long(int argc, char **argv, int *i, const args_tables_t *t,
                      char *err, size_t errlen) {
  const char *name = argv[*i] + 2;
  const char *eq = strchr(name, '=');
  size_t len = eq ? (size_t)(eq - name) : strlen(name);
  const args_list_t *l = find_list(t->lists, name, len);
  if (l != NULL) {
    const char *v = take_value(argc, argv, i, eq, l->name, err, errlen);
    return v == NULL ? -1 : append_list(l, v, err, errlen);
  }
  const args_opt_t *o = find_opt(t->opts, name, len);
  if (o == NULL) {
    snprintf(err, errlen, "unknown option '--%.*s'", (int)len, name);
    return -1;
  }
  if (o->flag != NULL) {
    if (eq != NULL) {
      snprintf(err, errlen, "option '--%s' takes no value", o->name);
      return -1;
    }
    *o->flag = 1;
    return 0;
  }
  const char *v = take_value(argc, argv, i, eq, o->name, err, errlen);
  if (v == NULL)
    return -1;
  *o->value = v;
  return 0;
}

int args_parse_lists(int argc, char **argv, const args_opt_t *opts,
                     const args_list_t *lists, char **rest, int maxrest,
                     int *nrest, int *dashdash, char *err, size_t errlen) {
  const args_tables_t t = {.opts = opts, .lists = lists};
  *nrest = 0;
  *dashdash = -1;
  for (const args_list_t *l = lists; l != NULL && l->name != NULL; l++)
    *l->n = 0;
  for (int i = 0; i < argc; i++) {
    char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      *dashdash = *nrest;
      for (i++; i < argc; i++)
        if (add_rest(argv[i], rest, maxrest, nrest, err, errlen) != 0)
          return -1;
      break;
    }
    int rc = strncmp(a, "--", 2) == 0
                 ? parse_long(argc, argv, &i, &t, err, errlen)
                 : add_rest(a, rest, maxrest, nrest, err, errlen);
    if (rc != 0)
      return -1;
  }
  return 0;
}

int args_parse(int argc, char **argv, const args_opt_t *opts, char **rest,
               int maxrest, int *nrest, int *dashdash, char *err,
               size_t errlen) {
  return args_parse_lists(argc, argv, opts, NULL, rest, maxrest, nrest,
                          dashdash, err, errlen);
}

int args_parse_long(const char *s, long min, long max, long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
    return -1;
  *out = v;
  return 0;
}
