/* HTTP/1.x for the client, without I/O. See http1.h. */
#include "ws/http1.h"

#include <assert.h>
#include <string.h>
#include <strings.h>

#include "base/text.h"

/* A chunk larger than this is not something any server here sends. */
#define CHUNK_MAX ((uint64_t)1 << 40)

size_t http1_head_len(const char *buf, size_t len) {
  for (size_t i = 3; i < len; i++)
    if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' &&
        buf[i - 3] == '\r')
      return i + 1;
  return 0;
}

int http1_head_feed(http1_head_t *h, const uint8_t *in, size_t n,
                    size_t *used) {
  *used = 0;
  if (h->state != HTTP1_HEAD_MORE)
    return h->state;
  assert(h->len < HTTP1_HEAD_MAX);
  size_t old = h->len, room = HTTP1_HEAD_MAX - old;
  size_t take = n < room ? n : room;
  if (take > 0)
    memcpy(h->buf + old, in, take);
  h->len += take;
  /* The old bytes hold no end, so the end's CRLF CRLF starts at old - 3
   * at the earliest: a head that trickles in is not scanned again. */
  size_t from = old > 3 ? old - 3 : 0;
  size_t hl = http1_head_len(h->buf + from, h->len - from);
  if (hl == 0) {
    *used = take;
    if (h->len == HTTP1_HEAD_MAX)
      h->state = HTTP1_HEAD_TOO_LONG;
    return h->state;
  }
  h->len = from + hl;
  h->buf[h->len] = '\0';
  *used = h->len - old;
  h->state = HTTP1_HEAD_DONE;
  return h->state;
}

static int is_digit(char c) {
  return c >= '0' && c <= '9';
}

int http1_status(const char *head, int *status, char *reason,
                 size_t reasonlen) {
  if (strncmp(head, "HTTP/1.", 7) != 0 || !is_digit(head[7]) ||
      head[8] != ' ' || !is_digit(head[9]) || !is_digit(head[10]) ||
      !is_digit(head[11]) || head[9] == '0')
    return -1;
  const char *p = head + 12;
  if (*p != ' ' && *p != '\r' && *p != '\n')
    return -1;
  *status = (head[9] - '0') * 100 + (head[10] - '0') * 10 + (head[11] - '0');
  while (*p == ' ')
    p++;
  size_t n = 0;
  for (; *p != '\0' && *p != '\r' && *p != '\n' && n + 1 < reasonlen; p++)
    reason[n++] = *p >= ' ' && *p <= '~' ? *p : '?';
  while (n > 0 && reason[n - 1] == ' ')
    n--;
  if (reasonlen > 0)
    reason[n] = '\0';
  return 0;
}

const char *http1_header(const char *head, const char *name, char *out,
                         size_t outlen) {
  size_t nl = strlen(name);
  const char *line = strchr(head, '\n'); /* skip the status line */
  while (line != NULL) {
    line++;
    const char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    if (len > 0 && line[len - 1] == '\r')
      len--;
    if (len > nl && line[nl] == ':' && strncasecmp(line, name, nl) == 0) {
      const char *v = line + nl + 1, *ve = line + len;
      while (v < ve && (*v == ' ' || *v == '\t'))
        v++;
      while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
      size_t vl = (size_t)(ve - v);
      if (outlen > 0) {
        if (vl >= outlen)
          vl = outlen - 1;
        memcpy(out, v, vl);
        out[vl] = '\0';
      }
      return out;
    }
    line = end;
  }
  return NULL;
}

int http1_has_token(const char *value, const char *token) {
  size_t tl = strlen(token);
  for (const char *p = value; *p != '\0';) {
    while (*p == ' ' || *p == '\t' || *p == ',')
      p++;
    size_t n = strcspn(p, ",");
    size_t t = n;
    while (t > 0 && (p[t - 1] == ' ' || p[t - 1] == '\t'))
      t--;
    if (t == tl && strncasecmp(p, token, tl) == 0)
      return 1;
    p += n;
  }
  return 0;
}

const char *http1_reason_phrase(int status) {
  switch (status) {
  case 200:
    return "OK";
  case 201:
    return "Created";
  case 204:
    return "No Content";
  case 301:
    return "Moved Permanently";
  case 304:
    return "Not Modified";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 408:
    return "Request Timeout";
  case 409:
    return "Conflict";
  case 411:
    return "Length Required";
  case 413:
    return "Content Too Large";
  case 414:
    return "URI Too Long";
  case 426:
    return "Upgrade Required";
  case 429:
    return "Too Many Requests";
  case 431:
    return "Request Header Fields Too Large";
  case 500:
    return "Internal Server Error";
  case 501:
    return "Not Implemented";
  case 503:
    return "Service Unavailable";
  case 505:
    return "HTTP Version Not Supported";
  default:
    return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
  }
}

/* --- chunked ----------------------------------------------------------- */

enum {
  CH_SIZE = 0, /* hex digits of a chunk size */
  CH_EXT,      /* ";extension" up to the end of the size line */
  CH_SIZE_LF,  /* the '\n' of the size line */
  CH_DATA,
  CH_DATA_CR, /* the CRLF after a chunk's data */
  CH_DATA_LF,
  CH_TRAILER, /* trailer lines, up to an empty one */
  CH_TRAILER_LF,
  CH_DONE,
};

/* The size line is over: the data follows, or the trailers. */
static void size_line_done(http1_chunked_t *d) {
  d->state = d->left == 0 ? CH_TRAILER : CH_DATA;
  d->line_empty = 1;
}

int http1_chunked(http1_chunked_t *d, const uint8_t *in, size_t len,
                  size_t *used, http1_sink_t sink, void *ctx) {
  size_t i = 0;
  *used = len;
  while (i < len && d->state != CH_DONE) {
    uint8_t c = in[i];
    switch (d->state) {
    case CH_SIZE: {
      int v = text_hex_digit(c);
      if (v >= 0) {
        if (d->left > CHUNK_MAX)
          return HTTP1_CHUNKED_ERROR;
        d->left = d->left * 16 + (uint64_t)v;
        d->digits++;
      } else if (d->digits == 0) {
        return HTTP1_CHUNKED_ERROR;
      } else if (c == ';' || c == ' ' || c == '\t') {
        d->state = CH_EXT;
      } else if (c == '\r') {
        d->state = CH_SIZE_LF;
      } else if (c == '\n') {
        size_line_done(d);
      } else {
        return HTTP1_CHUNKED_ERROR;
      }
      i++;
      break;
    }
    case CH_EXT:
      if (c == '\n')
        size_line_done(d);
      i++;
      break;
    case CH_SIZE_LF:
      if (c != '\n')
        return HTTP1_CHUNKED_ERROR;
      size_line_done(d);
      i++;
      break;
    case CH_DATA: {
      size_t n = len - i;
      if ((uint64_t)n > d->left)
        n = (size_t)d->left;
      if (sink(ctx, in + i, n) != 0)
        return HTTP1_CHUNKED_ERROR;
      d->left -= n;
      i += n;
      if (d->left == 0)
        d->state = CH_DATA_CR;
      break;
    }
    case CH_DATA_CR:
      if (c == '\r') {
        d->state = CH_DATA_LF;
      } else if (c == '\n') {
        d->state = CH_SIZE;
        d->digits = 0;
      } else {
        return HTTP1_CHUNKED_ERROR;
      }
      i++;
      break;
    case CH_DATA_LF:
      if (c != '\n')
        return HTTP1_CHUNKED_ERROR;
      d->state = CH_SIZE;
      d->digits = 0;
      i++;
      break;
    case CH_TRAILER:
      if (c == '\r') {
        d->state = CH_TRAILER_LF;
      } else if (c == '\n') {
        if (d->line_empty)
          d->state = CH_DONE;
        d->line_empty = 1;
      } else {
        d->line_empty = 0;
      }
      i++;
      break;
    case CH_TRAILER_LF:
      if (c != '\n')
        return HTTP1_CHUNKED_ERROR;
      d->state = d->line_empty ? CH_DONE : CH_TRAILER;
      d->line_empty = 1;
      i++;
      break;
    default:
      return HTTP1_CHUNKED_ERROR;
    }
  }
  if (d->state != CH_DONE)
    return HTTP1_CHUNKED_MORE;
  *used = i;
  return HTTP1_CHUNKED_DONE;
}
