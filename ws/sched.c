#include "ws/sched.h"

void sched_init(sched_t *s) {
  s->head.prev = s->head.next = &s->head;
  s->head.queued = 0;
}

void sched_push(sched_t *s, sched_node_t *n) {
  if (n->queued)
    return;
  n->prev = s->head.prev;
  n->next = &s->head;
  s->head.prev->next = n;
  s->head.prev = n;
  n->queued = 1;
}

void sched_remove(sched_node_t *n) {
  if (!n->queued)
    return;
  n->prev->next = n->next;
  n->next->prev = n->prev;
  n->prev = n->next = NULL;
  n->queued = 0;
}

sched_node_t *sched_pop(sched_t *s) {
  if (sched_empty(s))
    return NULL;
  sched_node_t *n = s->head.next;
  sched_remove(n);
  return n;
}

int sched_empty(const sched_t *s) {
  return s->head.next == &s->head;
}
