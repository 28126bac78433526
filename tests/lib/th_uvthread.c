#include <string.h>

#include "th_uvthread.h"

struct th_uvcall {
  void (*fn)(void *arg);
  void *arg;
  bool done;
};

/* The call that ends the thread: its loop then has nothing left to run. */
static void uvthread_quit(void *arg) {
  (void)arg;
}

static void uvthread_on_async(uv_async_t *h) {
  th_uvthread_t *th = h->data;
  pthread_mutex_lock(&th->mu);
  th_uvcall_t *c = th->pending;
  th->pending = NULL;
  pthread_mutex_unlock(&th->mu);
  if (!c) return;
  c->fn(c->arg);
  bool quit = c->fn == uvthread_quit; /* read before done: c's frame may go away */
  pthread_mutex_lock(&th->mu);
  c->done = true;
  pthread_cond_broadcast(&th->cv);
  pthread_mutex_unlock(&th->mu);
  if (quit) uv_close((uv_handle_t *)&th->async, NULL);
}

static void uvthread_main(void *arg) {
  th_uvthread_t *th = arg;
  uv_run(&th->loop, UV_RUN_DEFAULT);
}

int th_uvthread_start(th_uvthread_t *th) {
  memset(th, 0, sizeof *th);
  int rc = uv_loop_init(&th->loop);
  if (rc) return rc;
  rc = uv_async_init(&th->loop, &th->async, uvthread_on_async);
  if (rc) return rc;
  th->async.data = th;
  pthread_mutex_init(&th->mu, NULL);
  pthread_cond_init(&th->cv, NULL);
  return uv_thread_create(&th->thread, uvthread_main, th);
}

void th_uvthread_call(th_uvthread_t *th, void (*fn)(void *arg), void *arg) {
  th_uvcall_t c = {.fn = fn, .arg = arg, .done = false};
  pthread_mutex_lock(&th->mu);
  while (th->pending)
    pthread_cond_wait(&th->cv, &th->mu);
  th->pending = &c;
  uv_async_send(&th->async);
  while (!c.done)
    pthread_cond_wait(&th->cv, &th->mu);
  pthread_mutex_unlock(&th->mu);
}

int th_uvthread_stop(th_uvthread_t *th) {
  th_uvthread_call(th, uvthread_quit, NULL);
  uv_thread_join(&th->thread);
  uv_run(&th->loop, UV_RUN_DEFAULT); /* closes what the calls left */
  int rc = uv_loop_close(&th->loop);
  pthread_mutex_destroy(&th->mu);
  pthread_cond_destroy(&th->cv);
  return rc;
}
