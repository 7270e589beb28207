#include "ws/rfc6455.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

size_t rfc6455_header_put(uint8_t *out, int opcode, uint64_t len,
                          const uint8_t mask[4]) {
  size_t n = 2;
  out[0] = (uint8_t)(0x80 | (opcode & 0x0f));
  if (len < 126) {
    out[1] = (uint8_t)(0x80 | len);
  } else if (len <= 0xffff) {
    out[1] = 0x80 | 126;
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
    n = 4;
  } else {
    out[1] = 0x80 | 127;
    for (int i = 0; i < 8; i++)
      out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    n = 10;
  }
  memcpy(out + n, mask, 4);
  return n + 4;
}

void rfc6455_mask(uint8_t *p, size_t n, const uint8_t mask[4],
                  uint64_t offset) {
  /* Rotate the mask so that rot[0] applies to p[0]; then whole words. */
  uint8_t rot[8];
  for (int i = 0; i < 8; i++)
    rot[i] = mask[(offset + (uint64_t)i) & 3];
  uint64_t m;
  memcpy(&m, rot, 8);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    w ^= m;
    memcpy(p + i, &w, 8);
  }
  for (; i < n; i++)
    p[i] ^= rot[i & 7];
}

void rfc6455_parser_init(rfc6455_parser_t *p, uint64_t max_message) {
  memset(p, 0, sizeof(*p));
  p->max_message = max_message;
}

static int fail(rfc6455_error_t *err, int code, const char *msg) {
  err->close_code = code;
  snprintf(err->message, sizeof(err->message), "%s", msg);
  return -1;
}

/* Bytes of header needed given what has arrived (at least 2 are there). */
static size_t header_need(const uint8_t *h) {
  size_t n = 2;
  uint8_t l = h[1] & 0x7f;
  if (l == 126)
    n += 2;
  else if (l == 127)
    n += 8;
  if (h[1] & 0x80)
    n += 4;
  return n;
}

/* A complete header: check it and set up the frame. */
static int header_done(rfc6455_parser_t *p, rfc6455_error_t *err) {
  const uint8_t *h = p->hdr;
  if (h[0] & 0x70)
    return fail(err, 1002, "reserved bits set in a frame");
  if (h[1] & 0x80)
    return fail(err, 1002, "masked frame from the server");
  p->fin = (h[0] & 0x80) != 0;
  p->opcode = h[0] & 0x0f;
  uint64_t len = h[1] & 0x7f;
  if (len == 126) {
    len = ((uint64_t)h[2] << 8) | h[3];
  } else if (len == 127) {
    len = 0;
    for (int i = 0; i < 8; i++)
      len = (len << 8) | h[2 + i];
    if (len >> 63)
      return fail(err, 1002, "frame length out of range");
  }
  p->left = len;
  p->ctrl_len = 0;
  switch (p->opcode) {
  case RFC6455_OP_CLOSE:
  case RFC6455_OP_PING:
  case RFC6455_OP_PONG:
    if (!p->fin || len > RFC6455_CONTROL_MAX)
      return fail(err, 1002, "fragmented or oversize control frame");
    return 0;
  case RFC6455_OP_CONT:
    if (!p->in_message)
      return fail(err, 1002, "continuation frame without a message");
    break;
  case RFC6455_OP_TEXT:
  case RFC6455_OP_BINARY:
    if (p->in_message)
      return fail(err, 1002, "new message inside a fragmented one");
    p->in_message = 1;
    p->msg_opcode = p->opcode;
    p->message_len = 0;
    break;
  default:
    return fail(err, 1002, "unknown frame opcode");
  }
  if (p->max_message && len > p->max_message - p->message_len)
    return fail(err, 1009, "message too big");
  p->message_len += len;
  return 0;
}

static int is_control(int opcode) {
  return opcode & 0x08;
}

/* The frame's payload is complete (or empty). */
static int frame_done(rfc6455_parser_t *p, const rfc6455_handlers_t *h,
                      void *ctx) {
  p->hdr_len = 0;
  if (is_control(p->opcode))
    return h->on_control(ctx, p->opcode, p->ctrl, p->ctrl_len);
  return 0;
}

static int payload(rfc6455_parser_t *p, const uint8_t *in, size_t n,
                   const rfc6455_handlers_t *h, void *ctx) {
  p->left -= n;
  if (is_control(p->opcode)) {
    memcpy(p->ctrl + p->ctrl_len, in, n);
    p->ctrl_len += n;
    return 0;
  }
  int eom = p->left == 0 && p->fin;
  if (eom)
    p->in_message = 0;
  if (n == 0 && !eom)
    return 0;
  return h->on_data(ctx, in, n, eom);
}

int rfc6455_parse(rfc6455_parser_t *p, const uint8_t *in, size_t len,
                  const rfc6455_handlers_t *h, void *ctx,
                  rfc6455_error_t *err) {
  err->close_code = 0;
  err->message[0] = '\0';
  while (len > 0) {
    size_t need = p->hdr_len < 2 ? 2 : header_need(p->hdr);
    if (p->hdr_len < need) {
      size_t take = need - p->hdr_len < len ? need - p->hdr_len : len;
      memcpy(p->hdr + p->hdr_len, in, take);
      p->hdr_len += take;
      in += take;
      len -= take;
      if (p->hdr_len < 2 || p->hdr_len < header_need(p->hdr))
        continue;
      if (header_done(p, err) != 0)
        return -1;
      if (p->left == 0) {
        if ((!is_control(p->opcode) && payload(p, in, 0, h, ctx) != 0) ||
            frame_done(p, h, ctx) != 0)
          return -1;
      }
      continue;
    }
    size_t n = p->left < len ? (size_t)p->left : len;
    if (payload(p, in, n, h, ctx) != 0)
      return -1;
    in += n;
    len -= n;
    if (p->left == 0 && frame_done(p, h, ctx) != 0)
      return -1;
  }
  return 0;
}

static void base64(const uint8_t *in, int n, char *out) {
  EVP_EncodeBlock((unsigned char *)out, in, n);
}

int rfc6455_key_new(char key[RFC6455_KEY_LEN + 1]) {
  uint8_t raw[16];
  if (RAND_bytes(raw, sizeof(raw)) != 1)
    return -1;
  base64(raw, sizeof(raw), key);
  return 0;
}

void rfc6455_accept_for(const char *key, char out[RFC6455_ACCEPT_LEN + 1]) {
  static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  char buf[128];
  int n = snprintf(buf, sizeof(buf), "%.64s%s", key, guid);
  uint8_t sha[EVP_MAX_MD_SIZE];
  unsigned shalen = 0;
  EVP_Digest(buf, (size_t)n, sha, &shalen, EVP_sha1(), NULL);
  base64(sha, (int)shalen, out);
}
