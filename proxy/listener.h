/*
 * The proxy's local TCP listener on a loopback endpoint. Binding is
 * separate from listening so a bad address fails before the WebSocket is
 * dialled, while connections are only accepted once it is up.
 *
 * Ownership: the listener owns its handle; listener_close() frees it
 * asynchronously (keep the loop running).
 */
#ifndef WSMUX_LISTENER_H
#define WSMUX_LISTENER_H

#include <stddef.h>
#include <uv.h>

typedef struct listener listener_t;

/* A connection is waiting: accept it from server (uv_accept) or close. */
typedef void (*listener_accept_cb)(void *ctx, uv_stream_t *server);

/*
 * Bind addr:port. When the port is taken, try the next `tries - 1` ports,
 * then let the kernel pick one. Port 0 asks the kernel at once. Returns 0,
 * or a libuv error with a message in err.
 */
int listener_bind(uv_loop_t *loop, const char *addr, int port, int tries,
                  listener_t **out, char *err, size_t errlen);
/* Start accepting; cb is called per connection. */
int listener_start(listener_t *l, listener_accept_cb cb, void *ctx);
/* The bound address and port. */
const char *listener_addr(const listener_t *l);
int listener_port(const listener_t *l);
void listener_close(listener_t *l);

#endif
