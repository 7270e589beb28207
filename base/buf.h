/*
 * Byte queues made of heap chunks. A chunk is filled once (by a socket read
 * or a copy) and then consumed from the front; no chunk is ever copied to
 * grow a queue.
 *
 * Ownership: a buf_queue_t owns the chunks linked into it; buf_queue_free()
 * releases them. A chunk handed to buf_queue_push() belongs to the queue.
 */
#ifndef WSMUX_BUF_H
#define WSMUX_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct buf_chunk {
  struct buf_chunk *next;
  size_t off; /* first unconsumed byte */
  size_t len; /* end of valid bytes */
  size_t cap;
  uint8_t data[];
} buf_chunk_t;

typedef struct {
  buf_chunk_t *head;
  buf_chunk_t *tail;
  size_t bytes; /* unconsumed bytes in all chunks */
} buf_queue_t;

/* A chunk with room for cap bytes, or NULL when out of memory. */
buf_chunk_t *buf_chunk_new(size_t cap);
/* A chunk holding a copy of data[0..len). */
buf_chunk_t *buf_chunk_copy(const uint8_t *data, size_t len);

void buf_queue_init(buf_queue_t *q);
void buf_queue_push(buf_queue_t *q, buf_chunk_t *c);
/* Copy up to n bytes from the front into out and consume them; returns the
 * number copied. */
size_t buf_queue_take(buf_queue_t *q, uint8_t *out, size_t n);
/* Drop up to n bytes from the front; returns the number dropped. */
size_t buf_queue_drop(buf_queue_t *q, size_t n);
void buf_queue_free(buf_queue_t *q);

#endif
