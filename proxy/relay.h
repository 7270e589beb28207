/*
 * The relay: one multiplexed WebSocket seen from the application. It binds
 * a session (ws/session.h) to a transport connection and pumps each
 * stream's bytes to and from its TCP socket, with the flow control the
 * protocol asks for: a stream's TCP socket is read only while its send
 * queue has room, and credit is granted only for bytes written to TCP.
 *
 * Both ends use it. The proxy accepts a TCP connection and calls
 * relay_stream_open(); the edge gets hooks.incoming, connects upstream and
 * calls relay_stream_accept() or relay_stream_refuse().
 *
 * Ownership: the relay owns its session and relay streams. A relay stream
 * owns its TCP handle and frees itself once that handle is closed. Once
 * the transport connection is gone, relay_close() starts the teardown: the
 * relay's memory is released when the last of its handles (stream sockets,
 * the liveness timer) has closed, so keep the loop running.
 */
#ifndef WSMUX_RELAY_H
#define WSMUX_RELAY_H

#include <stdint.h>
#include <uv.h>

#include "base/log.h"
#include "ws/session.h"
#include "ws/transport.h"

typedef struct relay relay_t;
typedef struct relay_stream relay_stream_t;

typedef struct {
  uint64_t bytes_read;    /* read from the TCP socket, sent on the WebSocket */
  uint64_t bytes_written; /* received on the WebSocket, written to TCP */
} relay_stats_t;

/* A peer's reason (RST, OPEN_FAIL, GOAWAY) reaches the hooks escaped for a
 * log line (text_escape(), base/text.h) and cut to fit this many bytes. */
#define RELAY_REASON_SIZE 512

typedef struct {
  /* Server: a new stream; connect rs's TCP handle (relay_stream_tcp) and
   * answer with relay_stream_accept / relay_stream_refuse. */
  void (*incoming)(void *ctx, relay_stream_t *rs);
  /* Client: the edge refused to open rs (OPEN_FAIL). */
  void (*open_failed)(void *ctx, relay_stream_t *rs, uint16_t code,
                      const char *reason, size_t reason_len);
  /* A stream is finished: code NO_ERROR for an orderly close. Optional. */
  void (*finished)(
      void *ctx, relay_stream_t *rs, uint16_t code, const char *reason,
      const relay_stats_t *stats); /* GOAWAY from the peer. Optional. */
  void (*goaway)(void *ctx, uint16_t code, const char *reason, size_t len);
  /* Client, optional: the edge's HELLO. After a reconnect, resumed == 0
   * means the edge no longer had the session: every old stream was reset
   * and the relay carries on with a fresh session. */
  void (*hello)(void *ctx, const uint8_t *session_id, int resumed,
                uint32_t grace_ms);
  /* Nothing was received for the dead timeout (relay_set_liveness): the
   * link is dead; the application drops the connection. Optional. */
  void (*dead)(void *ctx);
  /* Server, optional: a peer's OPEN was answered: FRAME_CODE_NO_ERROR for
   * OPEN_OK (relay_stream_accept), else the OPEN_FAIL code, from
   * relay_stream_refuse or from the session itself (stream limit, GOAWAY
   * sent; rs is then NULL). A stream ended before it was answered (its
   * session closed meanwhile) gets no call. */
  void (*answered)(void *ctx, relay_stream_t *rs, uint16_t code);
} relay_hooks_t;

relay_t *relay_new(uv_loop_t *loop, transport_conn_t *conn,
                   const session_config_t *cfg, const relay_hooks_t *hooks,
                   void *ctx, const log_t *log);
/* The WebSocket is gone: close every stream's TCP socket and free the
 * session now; the relay itself follows once the last handle has closed.
 * r is invalid on return. */
void relay_close(relay_t *r, const char *reason);

/* The WebSocket under the relay dropped; streams stay, waiting for
 * relay_attach() (docs/PROTOCOL.md section 8). */
void relay_detach(relay_t *r);
/* A new WebSocket carries the relay. A client then waits for the edge's
 * HELLO; a server calls relay_link_up(). */
void relay_attach(relay_t *r, transport_conn_t *conn);
/* Server: send HELLO (resumed or not) and, when resuming, the RESUME. */
void relay_link_up(relay_t *r, int resume, const session_hello_t *hello);
int relay_attached(const relay_t *r);
/* Client: the reason a lost session's streams get when the edge's HELLO
 * says it is gone (set from the hello hook; default "session expired
 * while disconnected"). */
void relay_set_restart_reason(relay_t *r, const char *reason);
/* Client: the session is lost: reset the streams the edge had opened, keep
 * the ones waiting for OPEN_OK for the next session. */
void relay_restart(relay_t *r, const char *reason);
/* PING when nothing was received for ping_ms; hooks.dead after dead_ms. */
void relay_set_liveness(relay_t *r, uint32_t ping_ms, uint32_t dead_ms);

/* Transport glue: call from the transport handlers of the connection. */
int relay_on_rx(relay_t *r, const uint8_t *data, size_t len, int eom, char *msg,
                size_t msglen);
size_t relay_on_writable(relay_t *r, uint8_t *buf, size_t cap);

session_t *relay_session(relay_t *r);
size_t relay_stream_count(const relay_t *r);

/* Running totals over the relay's life, across reconnects and restarts. */
typedef struct {
  uint64_t bytes_up;      /* read from local sockets, sent to the peer */
  uint64_t bytes_down;    /* received from the peer, written to sockets */
  uint64_t streams_open;  /* streams of the session now */
  uint64_t streams_total; /* streams ever opened or accepted */
} relay_totals_t;
void relay_totals(const relay_t *r, relay_totals_t *out);

/* Client: a new stream for an accepted TCP connection. On success the
 * relay stream owns the accepted socket. Returns NULL (and closes nothing)
 * when the session cannot open a stream. */
relay_stream_t *relay_stream_open(relay_t *r, uv_stream_t *server, void *user);
/* Client: a stream whose bytes come from in_fd and go to out_fd (the
 * process's stdin/stdout for an ssh ProxyCommand). NULL with a message in
 * err when the fds cannot be polled or no stream can be opened. */
relay_stream_t *relay_stream_open_stdio(relay_t *r, int in_fd, int out_fd,
                                        void *user, char *err, size_t errlen);
/* Server: the upstream TCP connection on relay_stream_tcp(rs) is up. */
void relay_stream_accept(relay_stream_t *rs);
/* Server: the upstream connect failed; answer OPEN_FAIL and free rs. */
void relay_stream_refuse(relay_stream_t *rs, uint16_t code, const char *reason);

uv_tcp_t *relay_stream_tcp(relay_stream_t *rs);
uint32_t relay_stream_id(const relay_stream_t *rs);
void *relay_stream_user(const relay_stream_t *rs);
void relay_stream_set_user(relay_stream_t *rs, void *user);

#endif
