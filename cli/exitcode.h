/* Exit codes of wsmux, documented in the README. */
#ifndef WSMUX_EXITCODE_H
#define WSMUX_EXITCODE_H

enum {
  EXIT_OK = 0,
  EXIT_USAGE = 1,     /* bad arguments, or another local failure */
  EXIT_AUTH = 2,      /* no token, or the edge rejected it (401) */
  EXIT_NOT_FOUND = 3, /* unknown project or service (404) */
  EXIT_NETWORK = 4,   /* edge unreachable, TLS failure, connection lost */
  EXIT_REFUSED = 5,   /* the edge refused by policy (409: job, SSH off) */
};

#endif
