/*
 * Open-files limit. Every stream costs a socket on each side (the proxy's
 * accepted connection, the edge's upstream connection), and the usual soft
 * limit of 1024 would cap a proxy or an edge near a thousand streams, so
 * both programs raise the soft limit to the hard one at startup, as far as
 * the system lets an unprivileged process.
 */
#ifndef WSMUX_RLIMIT_H
#define WSMUX_RLIMIT_H

/* Raise RLIMIT_NOFILE's soft limit to its hard limit (at most 1,048,576).
 * Returns the soft limit now in force, or -1 when it cannot be read. */
long rlimit_raise_nofile(void);
/* RLIMIT_NOFILE's soft limit now (RLIM_INFINITY as LONG_MAX), or -1. */
long rlimit_nofile(void);
/* Descriptors this process has open now (the entries of /proc/self/fd),
 * or -1 where that cannot be read. A directory walk: not for hot paths. */
long rlimit_fds_open(void);

#endif
