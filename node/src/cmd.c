/*
 * cmd.c — the command queue. Application threads never touch loop-owned
 * state: a blocking public call fills a cmd_t, queues it, wakes the loop
 * thread (a wakeup of the seam) and waits on the node's condition variable until the
 * loop thread completes it. On an application's loop (cfg.loop) the caller
 * runs the command itself and turns the loop until it completes.
 */
#include <pthread.h>

#include "node_internal.h"

_Thread_local bftnet_t *node__cmd_loop_node;
_Thread_local unsigned node__cmd_cb_depth;

bool node__cmd_in_callback(const bftnet_t *b) {
  return node__cmd_loop_node == b || (!b->own_thread && node__cmd_cb_depth > 0);
}

void node__cmd_complete(bftnet_t *b, cmd_t *c, int rc) {
  pthread_mutex_lock(&b->mu);
  c->rc = rc;
  c->done = true;
  pthread_cond_broadcast(&b->cv);
  pthread_mutex_unlock(&b->mu);
}

void node__cmd_on_wake(void *ud) {
  bftnet_t *b = ud;
  for (;;) {
    pthread_mutex_lock(&b->mu);
    cmd_t *c = b->queue_head;
    if (c) {
      b->queue_head = c->next;
      if (!b->queue_head) b->queue_tail = NULL;
    }
    pthread_mutex_unlock(&b->mu);
    if (!c) break;
    c->run(b, c);
  }
}

int node__cmd_call(bftnet_t *b, cmd_t *c) {
  c->done = false;
  c->next = NULL;
  /* It would wait for the loop it is called from (callers check first and
   * say so; this is the backstop). */
  if (node__cmd_in_callback(b)) return BFTNET_EINCALLBACK;
  if (!b->own_thread) {
    /* The application's loop, called from its thread: run, then turn the
     * loop until the command completes (not from inside a loop callback). */
    c->run(b, c);
    while (!c->done)
      b->t->ops->run(b->t, BN_RUN_ONCE);
    return c->rc;
  }
  pthread_mutex_lock(&b->mu);
  if (b->loop_done) {
    pthread_mutex_unlock(&b->mu);
    return BFTNET_ECLOSED;
  }
  if (b->queue_tail)
    b->queue_tail->next = c;
  else
    b->queue_head = c;
  b->queue_tail = c;
  pthread_mutex_unlock(&b->mu);
  b->t->ops->wake_send(b->async);
  pthread_mutex_lock(&b->mu);
  while (!c->done)
    pthread_cond_wait(&b->cv, &b->mu);
  pthread_mutex_unlock(&b->mu);
  return c->rc;
}
