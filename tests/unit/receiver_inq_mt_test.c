/* receiver_inq_mt_test.c — the inbound queue across threads: one loop-side
 * producer pushes N sequence-numbered messages (stopping at rx_inq_over
 * after one more "window", then refilling, as the Receiver does), three
 * application threads pop, one at a time or in batches of 1..8. Every
 * message is seen exactly once, each consumer sees strictly increasing
 * sequence numbers, the depth a consumer reads never underflows (it is
 * pushed - taken, each side counting on its own), and the accounting
 * returns to zero. Runs under ThreadSanitizer (label "threads"). */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "harness.h"
#include "receiver.h"

#define N_CONSUMERS 3
#define WINDOW      37 /* messages that may arrive after crediting stops */

typedef struct shared {
  rx_inq_t q;
  uint32_t n;
  atomic_bool done;
  atomic_uchar *seen; /* [1..n] */
} shared_t;

typedef struct consumer {
  shared_t *sh;
  uint64_t popped;
  uint64_t bytes;
  int bad_order;
  uint32_t first_bad, prev_bad;
  uint32_t max_depth; /* the largest depth this consumer read */
  uint64_t batches;
} consumer_t;

static void *consumer_main(void *arg) {
  consumer_t *c = arg;
  shared_t *sh = c->sh;
  uint32_t prev = 0;
  uint64_t rng = th_rng_init((uint64_t)(uintptr_t)c);
  rx_msg_t *batch[8];
  unsigned k = 0, at = 0;
  for (;;) {
    if (at == k) {
      bool done = atomic_load_explicit(&sh->done, memory_order_acquire);
      unsigned want = (unsigned)(th_rnd(&rng) % 9); /* 0: the single pop */
      if (want == 0) {
        batch[0] = rx_inq_pop_spmc(&sh->q);
        k = batch[0] != NULL;
      } else {
        k = rx_inq_pop_batch_spmc(&sh->q, batch, want);
        if (k > want) c->bad_order = 3;
      }
      at = 0;
      uint32_t d = rx_inq_depth(&sh->q);
      if (d > c->max_depth) c->max_depth = d;
      if (k == 0) {
        if (done) break; /* done was set after the last push: the ring is empty for good */
        sched_yield();
        continue;
      }
      c->batches++;
    }
    rx_msg_t *m = batch[at++];
    uint32_t seq = bn_load_be32(m->data);
    if (seq <= prev && !c->bad_order) {
      c->bad_order = 1;
      c->first_bad = seq;
      c->prev_bad = prev;
    }
    prev = seq;
    if (seq >= 1 && seq <= sh->n)
      atomic_fetch_add_explicit(&sh->seen[seq], 1, memory_order_relaxed);
    c->popped++;
    c->bytes += m->len;
    if (strcmp(m->from, "member-1") != 0) c->bad_order = 2;
    rx_msg_free(m);
  }
  return NULL;
}

static rx_msg_t *make_msg(uint32_t seq) {
  uint8_t buf[16];
  size_t len = 4 + seq % 13;
  memset(buf, (int)(seq & 0xff), sizeof(buf));
  bn_store_be32(buf, seq);
  rx_msg_t *m = rx_msg_new(buf, len, "member-1");
  if (m == NULL) abort();
  return m;
}

static void run(uint32_t n, uint32_t cap, uint64_t max_bytes, bool expect_overflow) {
  shared_t sh;
  memset(&sh, 0, sizeof(sh));
  assert_ok(rx_inq_init(&sh.q, cap, max_bytes));
  sh.n = n;
  atomic_init(&sh.done, false);
  sh.seen = calloc((size_t)n + 1, sizeof(*sh.seen));
  assert_non_null(sh.seen);

  consumer_t cons[N_CONSUMERS];
  pthread_t th[N_CONSUMERS];
  for (int i = 0; i < N_CONSUMERS; i++) {
    memset(&cons[i], 0, sizeof(cons[i]));
    cons[i].sh = &sh;
    assert_int_equal(pthread_create(&th[i], NULL, consumer_main, &cons[i]), 0);
  }

  /* The loop thread: push; once over a limit, WINDOW more arrive (the
   * yamux window in flight), then wait for the consumers, refilling. */
  uint64_t pushed_bytes = 0, overflowed = 0;
  uint32_t in_window = 0;
  for (uint32_t seq = 1; seq <= n; seq++) {
    rx_msg_t *m = make_msg(seq);
    pushed_bytes += m->len;
    rx_inq_push_spmc(&sh.q, m);
    if (sh.q.ovf_head != NULL) overflowed++;
    if (rx_inq_over(&sh.q) && ++in_window >= WINDOW) {
      while (rx_inq_over(&sh.q)) {
        rx_inq_refill_spmc(&sh.q);
        sched_yield();
      }
      in_window = 0;
    }
    if (seq % 64 == 0) rx_inq_refill_spmc(&sh.q);
  }
  while (sh.q.ovf_head != NULL) {
    rx_inq_refill_spmc(&sh.q);
    sched_yield();
  }
  atomic_store_explicit(&sh.done, true, memory_order_release);
  for (int i = 0; i < N_CONSUMERS; i++)
    assert_int_equal(pthread_join(th[i], NULL), 0);

  uint64_t popped = 0, bytes = 0;
  for (int i = 0; i < N_CONSUMERS; i++) {
    if (cons[i].bad_order == 2) fail_msg("consumer %d: wrong sender ID", i);
    if (cons[i].bad_order == 3) fail_msg("consumer %d: a batch larger than asked", i);
    /* A consumer's read may overestimate (the loop pushes, others take,
     * between its two loads) but never underflow, which would read as
     * about 4e9: at most everything pushed. */
    if (cons[i].max_depth > n)
      fail_msg("consumer %d read a depth of %u (n %u)", i, cons[i].max_depth, n);
    if (cons[i].bad_order)
      fail_msg("consumer %d: seq %u after %u", i, cons[i].first_bad, cons[i].prev_bad);
    popped += cons[i].popped;
    bytes += cons[i].bytes;
  }
  for (uint32_t s = 1; s <= n; s++)
    if (atomic_load(&sh.seen[s]) != 1)
      fail_msg("seq %u seen %u times", s, atomic_load(&sh.seen[s]));
  assert_int_equal(popped, n);
  assert_int_equal(bytes, pushed_bytes);
  assert_int_equal(rx_inq_depth(&sh.q), 0);
  assert_int_equal(rx_inq_bytes(&sh.q), 0);
  assert_int_equal(sh.q.out_msgs, n);
  assert_int_equal(sh.q.out_bytes, pushed_bytes);
  assert_int_equal(sh.q.delivered, n);
  assert_null(sh.q.ovf_head);
  if (expect_overflow) assert_true(overflowed > 0); /* the overflow path was exercised */
  fprintf(stderr, "n=%u cap=%u: %llu pushes went to the overflow; per consumer:", n, cap,
          (unsigned long long)overflowed);
  for (int i = 0; i < N_CONSUMERS; i++)
    fprintf(stderr, " %llu in %llu takes", (unsigned long long)cons[i].popped,
            (unsigned long long)cons[i].batches);
  fprintf(stderr, "\n");
  assert_int_equal(rx_inq_destroy(&sh.q), 0);
  free(sh.seen);
}

static uint32_t n_messages(void) {
  const char *e = getenv("BFTNET_INQ_MT_N");
  return e ? (uint32_t)strtoul(e, NULL, 0) : 1000000u;
}

static void test_inq_mt_count_limit(void **state) {
  (void)state;
  run(n_messages(), 256, UINT64_MAX, true);
}

static void test_inq_mt_byte_limit(void **state) {
  (void)state;
  run(n_messages() / 4, 1024, 512, false); /* bytes bind first: the ring never fills */
}

static void test_inq_mt_tiny_ring(void **state) {
  (void)state;
  run(n_messages() / 10, 2, UINT64_MAX, true); /* one slot: maximal contention */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_inq_mt_count_limit),
      cmocka_unit_test(test_inq_mt_byte_limit),
      cmocka_unit_test(test_inq_mt_tiny_ring),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
