/* Address ranges. See cidr.h. */
#include "base/cidr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ip into 4 (v4) or 16 (v6) bytes; a v4-mapped v6 address becomes v4. */
static int addr_parse(const char *ip, int *v6, uint8_t out[16]) {
  static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (inet_pton(AF_INET, ip, out) == 1) {
    *v6 = 0;
    return 0;
  }
  if (inet_pton(AF_INET6, ip, out) != 1)
    return -1;
  if (memcmp(out, mapped, sizeof(mapped)) == 0) {
    memmove(out, out + 12, 4);
    *v6 = 0;
    return 0;
  }
  *v6 = 1;
  return 0;
}

/* Whether the first bits of a and b are equal. */
static int prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits) {
  unsigned whole = bits / 8, rest = bits % 8;
  if (memcmp(a, b, whole) != 0)
    return 0;
  if (rest == 0)
    return 1;
  uint8_t mask = (uint8_t)(0xff << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

int cidr_parse(const char *s, cidr_t *out) {
  char ip[64];
  const char *slash = strchr(s, '/');
  size_t n = slash != NULL ? (size_t)(slash - s) : strlen(s);
  memset(out, 0, sizeof(*out));
  if (n == 0 || n >= sizeof(ip))
    return -1;
  memcpy(ip, s, n);
  ip[n] = '\0';
  if (addr_parse(ip, &out->v6, out->addr) != 0)
    return -1;
  unsigned max = out->v6 ? 128 : 32;
  out->bits = max;
  if (slash != NULL) {
    char *end;
    long b = strtol(slash + 1, &end, 10);
    if (end == slash + 1 || *end != '\0' || b < 0 || (unsigned long)b > max)
      return -1;
    out->bits = (unsigned)b;
    /* No host bits: the address must equal itself masked. */
    uint8_t masked[16];
    memcpy(masked, out->addr, sizeof(masked));
    for (unsigned i = out->bits; i < max; i++)
      masked[i / 8] &= (uint8_t) ~(0x80 >> (i % 8));
    if (memcmp(masked, out->addr, max / 8) != 0)
      return -1;
  }
  return 0;
}

int cidr_match(const cidr_t *c, const char *ip) {
  uint8_t a[16];
  int v6;
  if (ip == NULL || addr_parse(ip, &v6, a) != 0 || v6 != c->v6)
    return 0;
  return prefix_equal(a, c->addr, c->bits);
}
