/* The id rule. See id.h. */
#include "base/id.h"

#include <string.h>

int id_valid(const char *s) {
  size_t n = s != NULL ? strlen(s) : 0;

  if (n == 0 || n > ID_MAX)
    return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
          (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
      return 0;
  }
  return 1;
}
