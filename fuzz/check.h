/*
 * The fuzz targets' oracle check: print the failed condition with its place
 * and abort, so libFuzzer saves the input as a crash artifact.
 */
#ifndef WSMUX_FUZZ_CHECK_H
#define WSMUX_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                 \
    }                                                                          \
  } while (0)

#endif
