/*
 * cmd.c — the command queue. Application threads never touch loop-owned
 * state: a blocking public call fills a cmd_t, queues it, wakes the loop
 * thread (uv_async) and waits on the node's condition variable until the
 * loop thread completes it. On an application's loop (cfg.loop) the caller
 * runs the command itself and turns the loop until it completes.
 */
#include "node_internal.h"

_Thread_local bftnet_t *node__cmd_loop_node;

void node__cmd_complete(bftnet_t *b, cmd_t *c, int rc) {
  uv_mutex_lock(&b->mu);
  c->rc = rc;
  c->done = true;
  uv_cond_broadcast(&b->cv);
  uv_mutex_unlock(&b->mu);
}

void node__cmd_on_async(uv_async_t *h) {
  bftnet_t *b = h->data;
  for (;;) {
    uv_mutex_lock(&b->mu);
    cmd_t *c = b->queue_head;
    if (c) {
      b->queue_head = c->next;
      if (!b->queue_head) b->queue_tail = NULL;
    }
    uv_mutex_unlock(&b->mu);
    if (!c) break;
    c->run(b, c);
  }
}

int node__cmd_call(bftnet_t *b, cmd_t *c) {
  c->done = false;
  c->next = NULL;
  if (!b->own_thread) {
    /* The application's loop, called from its thread: run, then turn the
     * loop until the command completes (not from inside a loop callback). */
    c->run(b, c);
    while (!c->done) uv_run(b->loop, UV_RUN_ONCE);
    return c->rc;
  }
  uv_mutex_lock(&b->mu);
  if (b->loop_done) {
    uv_mutex_unlock(&b->mu);
    return BFTNET_ECLOSED;
  }
  if (b->queue_tail) b->queue_tail->next = c;
  else b->queue_head = c;
  b->queue_tail = c;
  uv_mutex_unlock(&b->mu);
  uv_async_send(&b->async);
  uv_mutex_lock(&b->mu);
  while (!c->done) uv_cond_wait(&b->cv, &b->mu);
  uv_mutex_unlock(&b->mu);
  return c->rc;
}
