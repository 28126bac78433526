/*
 * The libuv implementation of the world seam: wakeups sent from other
 * threads reach the loop thread (coalesced, never lost), the run modes
 * turn the loop as they say, deferral runs before the loop blocks, and a
 * transport that owns its loop closes every handle it made before it frees.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "harness.h"
#include "net.h"

typedef struct wctx {
  bn_transport_t *t;
  bn_twake_t *w;
  atomic_ulong sent; /* wake_send calls made by the producer threads */
  atomic_ulong seen; /* the producers' count when the callback last ran */
  unsigned long calls;
} wctx_t;

static void on_wake(void *ud) {
  wctx_t *c = ud;
  c->calls++;
  atomic_store(&c->seen, atomic_load(&c->sent));
}

static void *producer(void *arg) {
  wctx_t *c = arg;
  for (int i = 0; i < 20000; i++) {
    atomic_fetch_add(&c->sent, 1);
    c->t->ops->wake_send(c->w);
  }
  return NULL;
}

/* Every send is followed by a callback that saw it: after the producers
 * stop, one more turn observes the final count. */
static void test_wake_from_threads(void **state) {
  (void)state;
  wctx_t c = {0};
  assert_ok(net_transport_uv_new(NULL, bn_seam_system(), &c.t));
  assert_ok(c.t->ops->wake_new(c.t, on_wake, &c, &c.w));
  pthread_t th[2];
  for (int i = 0; i < 2; i++)
    assert_int_equal(pthread_create(&th[i], NULL, producer, &c), 0);
  /* Bounded: at most 10 s of one-turn runs while the producers work. */
  for (int i = 0; i < 200000 && atomic_load(&c.seen) < 40000; i++)
    (void)c.t->ops->run(c.t, BN_RUN_NOWAIT);
  for (int i = 0; i < 2; i++)
    pthread_join(th[i], NULL);
  for (int i = 0; i < 1000 && atomic_load(&c.seen) < 40000; i++)
    (void)c.t->ops->run(c.t, BN_RUN_ONCE);
  assert_int_equal(atomic_load(&c.seen), 40000);
  assert_true(c.calls >= 1 && c.calls <= 40000); /* sends coalesce */
  c.t->ops->wake_free(c.w);
  c.t->ops->shutdown(c.t);
  net_transport_uv_free(c.t); /* owned loop: runs the close callbacks, closes the loop */
}

typedef struct tctx {
  bn_transport_t *t;
  int fired, deferred;
} tctx_t;

static void on_timer(void *ud) {
  ((tctx_t *)ud)->fired++;
}
static void on_defer(void *ud) {
  ((tctx_t *)ud)->deferred++;
}

/* NOWAIT never blocks on a pending timer, ONCE does, DEFAULT returns when
 * nothing is left; a deferred callback runs once, in the next turn. */
static void test_run_modes(void **state) {
  (void)state;
  tctx_t c = {0};
  assert_ok(net_transport_uv_new(NULL, bn_seam_system(), &c.t));
  bn_ttimer_t *tm;
  assert_ok(c.t->ops->timer_new(c.t, on_timer, &c, &tm));
  c.t->ops->timer_start(tm, 30, 0);
  c.t->ops->defer(c.t, on_defer, &c);
  c.t->ops->defer(c.t, on_defer, &c);                         /* the same (cb, ud) twice: once */
  assert_int_not_equal(c.t->ops->run(c.t, BN_RUN_NOWAIT), 0); /* the timer is still pending */
  assert_int_equal(c.deferred, 1);
  assert_int_equal(c.fired, 0);
  (void)c.t->ops->run(c.t, BN_RUN_ONCE); /* blocks until the timer */
  assert_int_equal(c.fired, 1);
  c.t->ops->timer_free(tm);
  assert_int_equal(c.t->ops->run(c.t, BN_RUN_DEFAULT), 0); /* nothing left */
  c.t->ops->shutdown(c.t);
  net_transport_uv_free(c.t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_wake_from_threads),
      cmocka_unit_test(test_run_modes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
