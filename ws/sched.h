/*
 * Round-robin run queue of the streams that have something to send (DATA
 * with credit, or a pending FIN). Intrusive: the node lives inside the
 * stream, so queueing never allocates and removal is O(1).
 */
#ifndef WSMUX_SCHED_H
#define WSMUX_SCHED_H

#include <stddef.h>

typedef struct sched_node {
  struct sched_node *prev;
  struct sched_node *next;
  int queued;
} sched_node_t;

typedef struct {
  sched_node_t head; /* sentinel */
} sched_t;

void sched_init(sched_t *s);
/* Append n at the tail unless it is already queued. */
void sched_push(sched_t *s, sched_node_t *n);
/* Remove and return the head, or NULL when empty. */
sched_node_t *sched_pop(sched_t *s);
/* Remove n if queued. */
void sched_remove(sched_node_t *n);
int sched_empty(const sched_t *s);

#endif
