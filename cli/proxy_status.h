/*
 * A running proxy's status: the JSON object its control socket answers
 * with and `wsmux proxy list` prints, the smaller object kept in its
 * pidfile (cli/rundir.h), the control socket server (on the proxy's libuv
 * loop) and a client for it.
 *
 * Status JSON (README: "Background proxies"): pid, projectId, serviceId,
 * endpoint ("ADDR:PORT"), startedAt (unix seconds), uptimeSeconds, link
 * ("connected" | "reconnecting"), reconnectInSeconds, streams (open),
 * streamsTotal, bytesUp (proxy -> edge), bytesDown (edge -> proxy), and
 * upFile (the absolute path of the file of `wsmux proxy up` that runs it;
 * absent for a --proxyOnly proxy). The pidfile holds pid, projectId,
 * serviceId, endpoint (once bound), startedAt and upFile; built from it
 * alone, the live fields are null.
 *
 * A connection to the control socket gets one status object and is
 * closed; nothing is read from it.
 */
#ifndef WSMUX_PROXY_STATUS_H
#define WSMUX_PROXY_STATUS_H

#include <stdint.h>
#include <uv.h>

#include <cjson/cJSON.h>

#define PROXY_STATUS_ID_MAX 128
#define PROXY_STATUS_PATH_MAX 1024

typedef struct {
  long pid;
  char project[PROXY_STATUS_ID_MAX + 1];
  char service[PROXY_STATUS_ID_MAX + 1];
  char endpoint[80]; /* "" until the listener is bound */
  int64_t started_at;
  char up_file[PROXY_STATUS_PATH_MAX]; /* "" unless run by `proxy up` */
  int live; /* the fields below are known (from the proxy itself) */
  int connected;
  int reconnect_in_s; /* reconnecting: to the next attempt; 0 if now */
  uint64_t streams;
  uint64_t streams_total;
  uint64_t bytes_up;
  uint64_t bytes_down;
} proxy_status_t;

/* The status object; uptimeSeconds is now - startedAt. NULL when out of
 * memory. The caller owns it. */
cJSON *proxy_status_json(const proxy_status_t *s, int64_t now);
/* The pidfile's text (compact JSON). NULL when out of memory; free(). */
char *proxy_status_pidfile_text(const proxy_status_t *s);
/* Parse a status object or a pidfile's text. 0, or -1 when it is not one
 * (pid, projectId and serviceId are required). */
int proxy_status_parse(const char *text, proxy_status_t *s);

/* The control socket, served on a proxy's loop. */
typedef struct proxy_status_server proxy_status_server_t;
/* Called for each connection: fill in the current status. */
typedef void (*proxy_status_get_t)(void *ctx, proxy_status_t *out);

/* Listen on the unix socket path (which must not exist). NULL with a
 * message in err when it cannot. */
proxy_status_server_t *proxy_status_serve(uv_loop_t *loop, const char *path,
                                          proxy_status_get_t get, void *ctx,
                                          char *err, size_t errlen);
/* Stop listening; memory is freed once the handle is closed. The socket
 * file is left to its owner (cli/rundir.h removes it). NULL is allowed. */
void proxy_status_server_close(proxy_status_server_t *s);

/* Connect to the control socket at path and read its answer, within
 * timeout_ms in all. 0 with *s filled, or -1. */
int proxy_status_query(const char *path, int timeout_ms, proxy_status_t *s);

#endif
