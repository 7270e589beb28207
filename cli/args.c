#include "cli/args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const args_opt_t *find_opt(const args_opt_t *opts, const char *name,
                                  size_t len) {
  for (; opts->name != NULL; opts++)
    if (strlen(opts->name) == len && strncmp(opts->name, name, len) == 0)
      return opts;
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

/* One "--name[=value]" at argv[*i]; may consume the next word. */
static int parse_long(int argc, char **argv, int *i, const args_opt_t *opts,
                      char *err, size_t errlen) {
  const char *name = argv[*i] + 2;
  const char *eq = strchr(name, '=');
  size_t len = eq ? (size_t)(eq - name) : strlen(name);
  const args_opt_t *o = find_opt(opts, name, len);
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
  if (eq != NULL) {
    *o->value = eq + 1;
  } else if (*i + 1 < argc) {
    *o->value = argv[++*i];
  } else {
    snprintf(err, errlen, "option '--%s' needs a value", o->name);
    return -1;
  }
  return 0;
}

int args_parse(int argc, char **argv, const args_opt_t *opts, char **rest,
               int maxrest, int *nrest, int *dashdash, char *err,
               size_t errlen) {
  *nrest = 0;
  *dashdash = -1;
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
                 ? parse_long(argc, argv, &i, opts, err, errlen)
                 : add_rest(a, rest, maxrest, nrest, err, errlen);
    if (rc != 0)
      return -1;
  }
  return 0;
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
