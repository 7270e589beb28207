/*
 * The client side of wsmux as a running program: one WebSocket to the edge
 * and, depending on the mode, a loopback listener (--proxyOnly), a single
 * stream over stdin/stdout (--stdio, for ssh's ProxyCommand), or a listener
 * plus a child `ssh` that uses it (a direct session).
 *
 * proxy_app_run() runs one proxy on a loop of its own until done (SIGINT /
 * SIGTERM stop it) and returns the process exit code (cli/exitcode.h).
 * proxy_new() runs one on the caller's loop, next to others (`wsmux proxy
 * up`, cli/proxy_up.h): each has its own WebSocket, listener and control
 * socket; the caller handles the signals and frees each proxy once it
 * reports done.
 */
#ifndef WSMUX_PROXY_APP_H
#define WSMUX_PROXY_APP_H

#include <stdint.h>
#include <uv.h>

#include "cli/detach.h"
#include "base/log.h"
#include "cli/rundir.h"
#include "ws/transport_client.h"

typedef enum {
  PROXY_MODE_LISTEN = 0, /* print the ready-made commands, serve until ^C */
  PROXY_MODE_STDIO,      /* one stream on fds 0/1; exit when it ends */
  PROXY_MODE_SSH,        /* run ssh through a private listener */
} proxy_mode_t;

typedef struct {
  proxy_mode_t mode;
  transport_client_opts_t edge; /* URL, request path, token, TLS */
  const char *addr;             /* listen address (LISTEN, SSH) */
  int port;                     /* 0: any */
  int port_tries;               /* ports after `port` to try when taken */
  const char *user;             /* shown in commands / passed to ssh */
  const char *host_key_alias;   /* SSH: ssh's HostKeyAlias */
  char **ssh_args;              /* SSH: extra arguments for ssh */
  int nssh_args;
  uint32_t window;
  uint32_t ping_ms; /* liveness: PING after this much silence */
  uint32_t dead_ms; /* and the link is dead after this much */
  log_level_t level;
  /* LISTEN only, all optional (README: "Background proxies"). */
  const char *project; /* for the status of the control socket */
  const char *service;
  const char *name;       /* "P/S" of one of several proxies: in the banner,
                             and before log lines */
  const char *up_file;    /* the file of `wsmux proxy up`, in the status */
  rundir_lock_t *pidfile; /* held by the caller: the endpoint is written
                             into it once bound, and the control socket
                             (pidfile->sock_path) is served once up */
  int64_t started_at;     /* unix seconds, as in the pidfile */
  detach_t *detach;       /* in the background: report to the parent */
  const char *log_path;   /* in the background: the log, for the parent */
  int status_line;        /* draw the live status line on stderr */
} proxy_opts_t;

/* The ready-made commands for an endpoint: "SSH proxy started on endpoint:
 * ADDR:PORT<tail>" ("SSH proxy for NAME started..." with a name) and the
 * ssh/sftp/rsync/scp lines, into out. */
void proxy_app_banner(const char *name, const char *addr, int port,
                      const char *user, const char *tail, char *out,
                      size_t len);

int proxy_app_run(const proxy_opts_t *o);

/* One proxy on a caller's loop. */
typedef struct proxy proxy_t;

typedef struct {
  /* LISTEN: the endpoint accepts connections and the WebSocket is up;
   * banner holds the ready-made commands (proxy_app_banner with o->name).
   * Optional: without it they are printed on stdout. */
  void (*up)(void *ctx, proxy_t *p, const char *banner);
  /* Stopped for good (by proxy_shutdown, or by an answer of the edge that
   * another attempt cannot change: exit_code says which), every handle
   * closed. Free p with proxy_free() later, not from this callback. */
  void (*done)(void *ctx, proxy_t *p, int exit_code);
} proxy_events_t;

/* Start a proxy of o (borrowed until proxy_free) on loop. A failure to
 * start is reported through ev->done, from the loop. NULL only when out of
 * memory. */
proxy_t *proxy_new(uv_loop_t *loop, const proxy_opts_t *o,
                   const proxy_events_t *ev, void *ctx);
/* Stop as SIGTERM stops a single proxy: the listener closes, the edge
 * gets a GOAWAY and a clean WebSocket close, open connections are closed
 * (at most SHUTDOWN_GRACE_MS later). done follows. */
void proxy_shutdown(proxy_t *p);
/* After done: free p (it holds no handle any more). */
void proxy_free(proxy_t *p);

#endif
