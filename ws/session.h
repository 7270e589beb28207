/*
 * One WebSocket's streams: the state machine and flow control of
 * docs/PROTOCOL.md sections 3-6, with no I/O. The transport feeds received
 * message bytes in (session_feed) and pulls messages out when the socket is
 * writable (session_build_message); the application moves stream bytes
 * between the session and its TCP sockets through the callbacks and the
 * session_stream_* calls.
 *
 * Ownership: the session owns its streams. A stream ends either by the
 * application (session_stream_reset/refuse: the pointer is invalid on
 * return, no callback) or by the protocol (peer RST/OPEN_FAIL, both FINs
 * done, session_abort): then stream_closed is called exactly once and the
 * pointer is invalid after it returns. Callbacks may call back into the
 * session, but must not use a stream after ending it. A stream that ended
 * in order may live on inside the session, out of the application's sight,
 * until the peer confirms it has everything (SESSION_KEPT_MAX).
 */
#ifndef WSMUX_SESSION_H
#define WSMUX_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define SESSION_WINDOW_DEFAULT (128u * 1024u)
#define SESSION_WINDOW_MIN (16u * 1024u)
#define SESSION_WINDOW_MAX (16u * 1024u * 1024u)
/* Receive-window auto-tuning (docs/PROTOCOL.md section 4): a stream whose
 * sender waits for credit while nothing waits here to be written gets its
 * window doubled, up to SESSION_WINDOW_GROW_MAX, while the session's
 * growth stays within SESSION_GROW_BUDGET. */
#define SESSION_WINDOW_GROW_MAX (8u * 1024u * 1024u)
#define SESSION_GROW_BUDGET (64u * 1024u * 1024u)
/* A receiver whose input backlog (bytes waiting in its socket, see
 * input_backlog) is this big is behind: its windows do not grow, as
 * more credit would only lengthen the queue ahead of a keystroke. */
#define SESSION_BACKLOG_MAX (256u * 1024u)
/* Largest credit a WINDOW may raise a sender to (HTTP/2's limit). */
#define SESSION_CREDIT_MAX 0x7fffffffu
/* Queued-but-unsent bytes per stream above which the application should
 * stop reading its TCP socket (stream_drained tells it to resume). */
#define SESSION_SENDQ_MAX (128u * 1024u)
/* ... and resume once it is below this: the gap saves a read stop/start
 * pair (two epoll_ctl calls) per message in bulk transfers. */
#define SESSION_SENDQ_RESUME (SESSION_SENDQ_MAX / 2)
/* Most DATA bytes one stream puts in a message before others get a turn. */
#define SESSION_QUANTUM (32u * 1024u)
/* Size of a built message (frames included). */
#define SESSION_MSG_MAX (64u * 1024u)
/* Control frames queued for a peer that does not read; beyond this the
 * session fails rather than grow without bound. */
#define SESSION_CTRLQ_MAX (1024u * 1024u)
/* A stream that ended in order here (stream_closed NO_ERROR) is kept,
 * without the application, while the peer may still lack its last bytes or
 * FIN: until the peer acknowledges the end or the next resume settles it
 * (docs/PROTOCOL.md section 8). At most SESSION_KEPT_MAX of them per
 * session, holding at most SESSION_KEPT_BYTES of sent bytes not yet
 * acknowledged; the oldest give way to the newest. */
#define SESSION_KEPT_MAX 64u
#define SESSION_KEPT_BYTES (4u * 1024u * 1024u)

typedef enum {
  SESSION_ROLE_CLIENT = 0, /* opens streams (the local proxy) */
  SESSION_ROLE_SERVER = 1, /* accepts streams (the edge) */
} session_role_t;

typedef struct session session_t;
typedef struct session_stream session_stream_t;

typedef struct {
  /* Something became sendable: the transport should ask for a writable
   * callback and then call session_build_message. */
  void (*want_write)(void *ctx);
  /* Server: the peer opened st. Answer later with session_stream_accept
   * or session_stream_refuse. */
  void (*stream_incoming)(void *ctx, session_stream_t *st);
  /* Client: OPEN_OK arrived; the application may start sending. */
  void (*stream_open_ok)(void *ctx, session_stream_t *st);
  /* Stream bytes for the TCP side. The application copies them and calls
   * session_stream_consumed once they are written. */
  void (*stream_data)(void *ctx, session_stream_t *st, const uint8_t *data,
                      size_t len);
  /* The peer will send no more on st (FIN), and we have not finished. */
  void (*stream_fin)(void *ctx, session_stream_t *st);
  /* The send queue of st went back under SESSION_SENDQ_RESUME. */
  void (*stream_drained)(void *ctx, session_stream_t *st);
  /* st ended by the protocol. code FRAME_CODE_NO_ERROR: both directions
   * finished in order (the peer's FIN included); anything else aborts. */
  void (*stream_closed)(void *ctx, session_stream_t *st, uint16_t code,
                        const char *reason, size_t reason_len);
  /* Optional: GOAWAY / PONG received. GOAWAY is reported once per session
   * (the peer sends it again after each resume, in case it was lost). */
  void (*goaway)(void *ctx, uint32_t last_stream_id, uint16_t code,
                 const char *reason, size_t reason_len);
  void (*pong)(void *ctx, const uint8_t *payload);
  /* Client, optional: the edge's HELLO (the first frame on every
   * WebSocket): the session id to quote on a reconnect, whether this
   * WebSocket resumed the session, how long the edge keeps it. */
  void (*hello)(void *ctx, const uint8_t *session_id, int resumed,
                uint32_t grace_ms);
  /* Server, optional: the session answered an OPEN with OPEN_FAIL by
   * itself (GOAWAY sent: SHUTDOWN; max_streams reached: LIMIT; a bad
   * window; out of memory), without a stream or stream_incoming. */
  void (*stream_refused)(void *ctx, uint32_t stream_id, uint16_t code);
  /* Optional: bytes received by the kernel and not yet fed (e.g. FIONREAD
   * on the socket). Asked only when a window would grow; none grows while
   * it is at least SESSION_BACKLOG_MAX. */
  size_t (*input_backlog)(void *ctx);
} session_callbacks_t;

typedef struct {
  session_role_t role;
  uint32_t window;      /* our receive window per stream */
  uint32_t max_streams; /* server: streams open at once */
} session_config_t;

/* NULL when out of memory. cb and ctx must outlive the session. */
session_t *session_new(const session_config_t *cfg,
                       const session_callbacks_t *cb, void *ctx);
/* End every stream with stream_closed(code, reason) and send nothing;
 * used when the WebSocket is gone. */
void session_abort(session_t *s, uint16_t code, const char *reason);
/* Frees the session; streams still open are dropped without callbacks. */
void session_free(session_t *s);

/*
 * Feed received bytes of a binary message (end_of_message: this chunk ends
 * it). Returns 0, or -1 on a protocol error: the session is then unusable,
 * session_error() says why and the WebSocket must be closed with 1002.
 */
int session_feed(session_t *s, const uint8_t *data, size_t len,
                 int end_of_message);
const char *session_error(const session_t *s);

/* Whether session_build_message would produce bytes. */
int session_want_write(const session_t *s);
/*
 * Write the next message (control frames first, then DATA round-robin,
 * at most SESSION_QUANTUM per stream per turn) into out, which has room for
 * cap bytes (at least FRAME_CONTROL_MAX). Returns its size, 0 when there is
 * nothing to send.
 */
size_t session_build_message(session_t *s, uint8_t *out, size_t cap);

size_t session_stream_count(const session_t *s);
/* Streams that ended here and are kept until the peer confirms their end
 * (SESSION_KEPT_MAX): a session whose link dropped is worth keeping for a
 * resume while it has any of them, as while it has open streams. */
size_t session_kept_count(const session_t *s);
/* The session failed (session_feed returned -1): it can carry no link any
 * more, so it is not worth keeping for a resume. */
int session_failed(const session_t *s);

/* What the server says first on a WebSocket (docs/PROTOCOL.md 8). */
typedef struct {
  uint8_t id[16];
  uint32_t grace_ms;
} session_hello_t;

/*
 * The WebSocket under the session is gone: nothing is built until
 * session_link_up(). Streams stay; their unacknowledged bytes are kept.
 * Queued control frames are dropped (a RESUME replaces them).
 */
void session_link_down(session_t *s);
/*
 * A WebSocket carries the session again. resume: both sides had it before;
 * our RESUME is sent and everything else waits for the peer's, which says
 * what to send again. Server: hello is sent first (with the resumed flag);
 * client: NULL. A session is created with its link up.
 */
void session_link_up(session_t *s, int resume, const session_hello_t *hello);
int session_link_is_up(const session_t *s);
/* Client: the edge no longer has this session. Streams it had opened end
 * with stream_closed(code, reason); streams still waiting for OPEN_OK stay,
 * and are OPENed on the next session_link_up(s, 0, NULL). */
void session_restart(session_t *s, uint16_t code, const char *reason);
/* Ask the peer to start no new streams; see docs/PROTOCOL.md section 6.
 * The GOAWAY is sent again on every later link (it may have been lost in a
 * drop); a receiver reports only the first one of a session (goaway). */
void session_goaway(session_t *s, uint16_t code, const char *reason);
void session_ping(session_t *s, const uint8_t payload[8]);

/* Client: start a stream (queues OPEN). NULL after GOAWAY, during or after
 * session_abort, or when out of memory or ids. */
session_stream_t *session_stream_open(session_t *s, void *user);
/* Server: answer an incoming stream. */
void session_stream_accept(session_stream_t *st);
void session_stream_refuse(session_stream_t *st, uint16_t code,
                           const char *reason);

/* Queue bytes to send; takes ownership of chunk (its unconsumed bytes).
 * Returns 1 when the application should stop reading (queue full). */
int session_stream_write(session_stream_t *st, buf_chunk_t *chunk);
/* No more bytes from us (FIN after the queued ones). */
void session_stream_fin(session_stream_t *st);
/* Abort with RST; st is invalid on return. */
void session_stream_reset(session_stream_t *st, uint16_t code,
                          const char *reason);
/* n received bytes were written to the TCP side: grant credit. */
void session_stream_consumed(session_stream_t *st, size_t n);

uint32_t session_stream_id(const session_stream_t *st);
void *session_stream_user(const session_stream_t *st);
void session_stream_set_user(session_stream_t *st, void *user);
/* Bytes queued and not yet sent. */
size_t session_stream_queued(const session_stream_t *st);

#endif
