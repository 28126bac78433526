/*
 * tentative.c — a TentativeReceiver's buffer (seed 003): the newest
 * messages of a peer that is not (yet) a member, bounded by count and
 * bytes; older ones are evicted, and counted, as new ones arrive.
 *
 * A message larger than max_bytes on its own is evicted at once, alone: it
 * could never be kept, and evicting the older messages to make room for it
 * would only lose them too. Either way what is kept is delivered in order.
 */
#include <stdlib.h>

#include "receiver.h"

void rx_tentative_init(rx_tentative_buf_t *t, uint32_t max_msgs, uint64_t max_bytes) {
  memset(t, 0, sizeof(*t));
  t->max_msgs = max_msgs;
  t->max_bytes = max_bytes;
}

static void rx_tentative_evict_head(rx_tentative_buf_t *t) {
  rx_msg_t *m = t->head;
  BN_ASSERT(m != NULL && t->count > 0 && t->bytes >= m->len);
  t->head = m->next;
  if (t->head == NULL) t->tail = NULL;
  t->count--;
  t->bytes -= m->len;
  t->evicted++;
  rx_msg_free(m);
}

void rx_tentative_push(rx_tentative_buf_t *t, rx_msg_t *m) {
  BN_ASSERT(m != NULL);
  if (m->len > t->max_bytes || t->max_msgs == 0) {
    t->evicted++;
    rx_msg_free(m);
    return;
  }
  /* Make room first, oldest first. */
  while (t->count >= t->max_msgs || t->bytes + m->len > t->max_bytes)
    rx_tentative_evict_head(t);
  m->next = NULL;
  if (t->tail != NULL)
    t->tail->next = m;
  else
    t->head = m;
  t->tail = m;
  t->count++;
  t->bytes += m->len;
}

rx_msg_t *rx_tentative_take(rx_tentative_buf_t *t) {
  rx_msg_t *list = t->head;
  t->head = t->tail = NULL;
  t->count = 0;
  t->bytes = 0;
  return list;
}

void rx_tentative_free(rx_tentative_buf_t *t) {
  while (t->head != NULL) {
    rx_msg_t *m = t->head;
    t->head = m->next;
    rx_msg_free(m);
  }
  t->tail = NULL;
  t->count = 0;
  t->bytes = 0;
}
