/*
 * th_uvthread.h — a libuv loop on a thread of its own that runs the test's
 * calls one at a time: what lives on that loop (fault proxies, say) is only
 * ever touched from its thread, while the test's thread waits. No cmocka:
 * the interop drivers use it too.
 */
#ifndef BFTNET_TH_UVTHREAD_H
#define BFTNET_TH_UVTHREAD_H

#include <pthread.h>
#include <stdbool.h>

#include <uv.h>

typedef struct th_uvcall th_uvcall_t;

typedef struct th_uvthread {
  uv_loop_t loop; /* create what the thread runs on this loop */
  uv_async_t async;
  uv_thread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  th_uvcall_t *pending;
} th_uvthread_t;

/* Starts the loop and its thread. Returns 0 or a libuv error. */
int th_uvthread_start(th_uvthread_t *th);
/* Runs fn(arg) on the thread's loop and returns once fn returned. */
void th_uvthread_call(th_uvthread_t *th, void (*fn)(void *arg), void *arg);
/* Ends the thread, then runs the loop until what fn's calls closed is
 * gone and closes it: returns uv_loop_close's result (0 = clean). */
int th_uvthread_stop(th_uvthread_t *th);

#endif
