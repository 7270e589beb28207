/* Exit codes of wsmux, documented in the README. */
#ifndef WSMUX_EXITCODE_H
#define WSMUX_EXITCODE_H

enum {
  EXIT_OK = 0,
  EXIT_USAGE = 1,     /* bad arguments, or another local failure */
  EXIT_AUTH = 2,      /* no token, or the edge rejected it (401) */
  EXIT_NOT_FOUND = 3, /* unknown project, service or identity (404) */
  EXIT_NETWORK = 4,   /* edge unreachable, TLS failure, connection lost,
                         or a server failure (5xx) */
  EXIT_REFUSED = 5,   /* refused by policy or conflict (403: the token's
                         role does not allow it; 409: job, SSH off, name
                         already used) */
  EXIT_INVALID = 6,   /* the edge rejected the request as invalid (400) */
  EXIT_KEY = 7,       /* ssh doctor: the key is in no matching identity */
  EXIT_PROXY = 8,     /* the HTTP proxy refused the tunnel to the edge (a
                         4xx to CONNECT: 407/401 credentials, 403...) */
};

#endif
