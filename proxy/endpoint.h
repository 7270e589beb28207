/*
 * The local endpoint of a proxy: a loopback address and port derived from
 * project and service, so the same service gets the same endpoint on every
 * run and ssh's known_hosts entry ([addr]:port) stays valid.
 */
#ifndef WSMUX_ENDPOINT_H
#define WSMUX_ENDPOINT_H

#include <stdint.h>

/* Ports are drawn from [ENDPOINT_PORT_MIN, ENDPOINT_PORT_MAX), away from
 * Linux's default ephemeral range (32768-60999) as far as possible. */
#define ENDPOINT_PORT_MIN 20000
#define ENDPOINT_PORT_MAX 32000
/* How many consecutive ports to try when the derived one is taken. */
#define ENDPOINT_PORT_TRIES 16

typedef struct {
  char addr[16]; /* dotted quad in 127.0.0.0/8, never 127.0.0.1 */
  uint16_t port;
} endpoint_t;

/* Derive the endpoint of (project_id, service_id): 127.A.B.C with A in
 * 1..254 and B, C in 1..254, port in the range above. */
void endpoint_derive(const char *project_id, const char *service_id,
                     endpoint_t *out);

#endif
