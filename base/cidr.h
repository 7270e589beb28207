/*
 * IP address ranges: "10.0.0.0/8", "fd00::/8", or one address ("127.0.0.1",
 * "::1"), and whether a numeric address is in one. Pure, no I/O. An
 * IPv4-mapped IPv6 address ("::ffff:10.1.2.3", what a dual-stack socket
 * reports) is matched as the IPv4 address it carries.
 */
#ifndef WSMUX_CIDR_H
#define WSMUX_CIDR_H

#include <stdint.h>

typedef struct {
  int v6;           /* 0: IPv4, 1: IPv6 */
  uint8_t addr[16]; /* network order; 4 bytes used for IPv4 */
  unsigned bits;    /* prefix length: 0..32 or 0..128 */
} cidr_t;

/* 0 with *out, or -1 when s is not an address or range (host bits set in a
 * range are refused too: "10.0.0.1/8" is a typo more often than not). */
int cidr_parse(const char *s, cidr_t *out);
/* 1 when the numeric address ip is in c, else 0 (also for garbage). */
int cidr_match(const cidr_t *c, const char *ip);

#endif
