/*
 * RFC 6455 WebSocket framing for the client side, without I/O: frame
 * headers, masking, an incremental parser of the server's frames, and the
 * handshake's key/accept pair. ws/wsclient.c drives it over TLS; it is kept
 * separate so it can be unit-tested and fuzzed.
 *
 * Why our own: lws 4.1.6 parses client-side input one byte per function
 * call and masks output one byte at a time; at bulk rates that was 75% of
 * the proxy's CPU (docs/PERFORMANCE.md). Here payload is handed on in
 * place and masked a word at a time.
 */
#ifndef WSMUX_RFC6455_H
#define WSMUX_RFC6455_H

#include <stddef.h>
#include <stdint.h>

enum {
  RFC6455_OP_CONT = 0x0,
  RFC6455_OP_TEXT = 0x1,
  RFC6455_OP_BINARY = 0x2,
  RFC6455_OP_CLOSE = 0x8,
  RFC6455_OP_PING = 0x9,
  RFC6455_OP_PONG = 0xA,
};

#define RFC6455_HEADER_MAX 14 /* 2 + 8 (length) + 4 (mask) */
#define RFC6455_CONTROL_MAX 125
#define RFC6455_KEY_LEN 24    /* base64 of 16 bytes */
#define RFC6455_ACCEPT_LEN 28 /* base64 of a SHA-1 */

/* Writes a final, masked frame header for len payload bytes into out
 * (RFC6455_HEADER_MAX bytes of room); returns its size. */
size_t rfc6455_header_put(uint8_t *out, int opcode, uint64_t len,
                          const uint8_t mask[4]);
/* XOR p with mask; p[0] is payload byte number `offset` of the frame. */
void rfc6455_mask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t offset);

/* The parser's callbacks. Data chunks point into the caller's input;
 * control payloads (whole, at most 125 bytes) into the parser. Return 0,
 * or -1 to stop parsing (rfc6455_parse then returns -1 with the error the
 * callback wrote, or an empty one). */
typedef struct {
  int (*on_data)(void *ctx, const uint8_t *p, size_t n, int end_of_message);
  int (*on_control)(void *ctx, int opcode, const uint8_t *p, size_t n);
} rfc6455_handlers_t;

/* Why parsing failed, with the close code to send (1002 or 1009). */
typedef struct {
  int close_code;
  char message[96];
} rfc6455_error_t;

typedef struct {
  uint64_t max_message; /* bigger messages fail with 1009; 0: no limit */
  /* Internal state. */
  uint8_t hdr[RFC6455_HEADER_MAX];
  size_t hdr_len;
  int opcode; /* of the frame being read */
  int fin;
  uint64_t left;  /* payload bytes of the frame still to come */
  int in_message; /* a data message is open (continuations allowed) */
  int msg_opcode; /* RFC6455_OP_TEXT or _BINARY of that message */
  uint64_t message_len;
  uint8_t ctrl[RFC6455_CONTROL_MAX];
  size_t ctrl_len;
} rfc6455_parser_t;

void rfc6455_parser_init(rfc6455_parser_t *p, uint64_t max_message);
/* Feeds len bytes of the server's stream. 0 when all were consumed, -1 on
 * a protocol violation (err filled) or when a callback stopped it. */
int rfc6455_parse(rfc6455_parser_t *p, const uint8_t *in, size_t len,
                  const rfc6455_handlers_t *h, void *ctx, rfc6455_error_t *err);

/* A fresh Sec-WebSocket-Key (NUL-terminated) from 16 random bytes. */
int rfc6455_key_new(char key[RFC6455_KEY_LEN + 1]);
/* The Sec-WebSocket-Accept the server must answer for key. */
void rfc6455_accept_for(const char *key, char out[RFC6455_ACCEPT_LEN + 1]);

#endif
