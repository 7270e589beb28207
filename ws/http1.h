/*
 * HTTP/1.x as the client reads it, without I/O: a response head gathered
 * as it arrives, where it ends, its status line, a header's value, and the
 * chunked transfer coding of a body. An HTTP proxy's answer to CONNECT
 * (ws/netconn), the WebSocket upgrade (ws/wsclient) and the admin calls
 * (ws/http_client) share it; it is unit-tested and fuzzed (fuzz_http1)
 * because every byte of it comes from the network. And the reason phrase
 * of the status lines both servers write (ws/transport_http,
 * edge/metrics_server).
 *
 * Ownership: the caller owns every buffer; nothing is allocated.
 */
#ifndef WSMUX_HTTP1_H
#define WSMUX_HTTP1_H

#include <stddef.h>
#include <stdint.h>

/* The longest response head any client here accepts. */
#define HTTP1_HEAD_MAX 8192
/* Room for a reason phrase as http1_status() returns it. */
#define HTTP1_REASON_MAX 64

/* Length of the head at the start of buf[0..len), through the empty line
 * that ends it ("\r\n\r\n"); 0 while it is incomplete. */
size_t http1_head_len(const char *buf, size_t len);

/* A response head gathered from the reads it comes in, kept up to the
 * empty line that ends it and never past HTTP1_HEAD_MAX bytes.
 * Zero-initialise it before the first byte. */
typedef struct {
  char buf[HTTP1_HEAD_MAX + 1]; /* the head, NUL-terminated once complete */
  size_t len;                   /* bytes kept; the head's length once DONE */
  int state;                    /* HTTP1_HEAD_* */
} http1_head_t;

enum {
  HTTP1_HEAD_MORE = 0,     /* all of the input taken; the head goes on */
  HTTP1_HEAD_DONE = 1,     /* buf holds the whole head */
  HTTP1_HEAD_TOO_LONG = -1 /* HTTP1_HEAD_MAX bytes and no end among them */
};

/* Add in[0..n) to the head. *used says how many bytes of in it took: n
 * for MORE; for DONE, those up to the end of the head (in[*used..n) comes
 * after it: a body, frames, a tunnel's bytes); for TOO_LONG, those that
 * filled the buffer. Once DONE or TOO_LONG, it takes nothing more and
 * returns the same. */
int http1_head_feed(http1_head_t *h, const uint8_t *in, size_t n, size_t *used);

/* The status line of a NUL-terminated head: 0 with *status (100-999) and
 * its reason phrase in reason (printable ASCII only, cut to fit), or -1
 * when it does not start with "HTTP/1.x NNN". */
int http1_status(const char *head, int *status, char *reason, size_t reasonlen);

/* The value of the first header called name (case-insensitive) in a
 * NUL-terminated head, without surrounding blanks, copied into out (cut to
 * outlen); NULL when there is none. The status line is never taken for a
 * header. */
const char *http1_header(const char *head, const char *name, char *out,
                         size_t outlen);

/* Whether a comma-separated header value holds token (case-insensitive),
 * e.g. "chunked" in Transfer-Encoding. */
int http1_has_token(const char *value, const char *token);

/* The reason phrase of RFC 9110 for status, e.g. "Not Found"; for a code
 * not listed, one for its class ("OK", "Client Error", "Server Error").
 * A static string. */
const char *http1_reason_phrase(int status);

/* An incremental decoder of the chunked transfer coding (RFC 9112 7.1):
 * chunk sizes, extensions and trailers are consumed, the data is handed
 * to the sink. Zero-initialise it before the first byte of the body. */
typedef struct {
  int state;
  int digits;     /* hex digits of the current size */
  uint64_t left;  /* bytes of the current chunk still to come */
  int line_empty; /* trailer: nothing yet on this line */
} http1_chunked_t;

typedef int (*http1_sink_t)(void *ctx, const uint8_t *data, size_t len);

enum {
  HTTP1_CHUNKED_MORE = 0,  /* all of the input taken; more to come */
  HTTP1_CHUNKED_DONE = 1,  /* the last chunk and trailers are complete */
  HTTP1_CHUNKED_ERROR = -1 /* malformed, or the sink returned non-zero */
};

/* Decode in[0..len). After DONE, *used says how many bytes belonged to the
 * body (the rest is not part of it); otherwise it is len. */
int http1_chunked(http1_chunked_t *d, const uint8_t *in, size_t len,
                  size_t *used, http1_sink_t sink, void *ctx);

#endif
