#include "base/buf.h"

#include <stdlib.h>
#include <string.h>

buf_chunk_t *buf_chunk_new(size_t cap) {
  buf_chunk_t *c = malloc(sizeof(*c) + cap);
  if (c == NULL)
    return NULL;
  c->next = NULL;
  c->off = 0;
  c->len = 0;
  c->cap = cap;
  return c;
}

buf_chunk_t *buf_chunk_copy(const uint8_t *data, size_t len) {
  buf_chunk_t *c = buf_chunk_new(len);
  if (c == NULL)
    return NULL;
  memcpy(c->data, data, len);
  c->len = len;
  return c;
}

void buf_queue_init(buf_queue_t *q) {
  q->head = q->tail = NULL;
  q->bytes = 0;
}

void buf_queue_push(buf_queue_t *q, buf_chunk_t *c) {
  c->next = NULL;
  if (q->tail != NULL)
    q->tail->next = c;
  else
    q->head = c;
  q->tail = c;
  q->bytes += c->len - c->off;
}

size_t buf_queue_take(buf_queue_t *q, uint8_t *out, size_t n) {
  size_t done = 0;
  for (buf_chunk_t *c = q->head; c != NULL && done < n; c = c->next) {
    size_t k = c->len - c->off;
    if (k > n - done)
      k = n - done;
    memcpy(out + done, c->data + c->off, k);
    done += k;
  }
  return buf_queue_drop(q, done);
}

size_t buf_queue_drop(buf_queue_t *q, size_t n) {
  size_t done = 0;
  while (done < n && q->head != NULL) {
    buf_chunk_t *c = q->head;
    size_t k = c->len - c->off;
    if (k > n - done)
      k = n - done;
    c->off += k;
    done += k;
    if (c->off == c->len) {
      q->head = c->next;
      if (q->head == NULL)
        q->tail = NULL;
      free(c);
    }
  }
  q->bytes -= done;
  return done;
}

void buf_queue_free(buf_queue_t *q) {
  while (q->head != NULL) {
    buf_chunk_t *c = q->head;
    q->head = c->next;
    free(c);
  }
  buf_queue_init(q);
}
