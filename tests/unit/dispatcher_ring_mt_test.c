/* dispatcher_ring_mt_test.c — the drop-oldest ring under real threads
 * (run under ThreadSanitizer by scripts/test.sh, label "threads").
 *
 * 4 producers push into a small ring in bursts, faster than the consumer
 * drains it, so pushes drop all the time while the consumer also pops.
 * Each message carries (producer, sequence). Checked: every message was
 * consumed or counted dropped (enqueued == consumed + dropped + still
 * queued), none was seen twice, each producer's messages arrive in
 * increasing order, the drop counts agree, every allocation is freed
 * (malloc/free counted through --wrap), and one message in 16 starts with
 * refs = 2 so the producer can check that the ring side released it exactly
 * once. A broadcast phase shares each message across 3 rings drained by 3
 * threads; half the messages are freed by whichever consumer lets go last
 * (TSan checks that free against the other consumers' reads). Bounded:
 * about 2.5 s of work, and per-producer message caps. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#include "count_alloc.h"
#include "dispatcher.h"
#include "harness.h"

enum { PRODUCERS = 4, RING_CAP = 64, POP_BATCH = 32, BURST = 48, SAMPLE = 16 };
#define PER_PRODUCER_MAX (1u << 22)
#define RUN_NS           (2000000000ull)

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint32_t refs_of(disp_msg_t *m) {
  return ck_pr_load_32(&m->refs);
}

static disp_msg_t *msg_seq(uint32_t producer, uint32_t seq, uint32_t refs) {
  uint8_t b[16];
  bn_store_be32(b, producer);
  bn_store_be32(b + 4, seq);
  bn_store_be32(b + 8, producer ^ seq ^ 0xA5A5A5A5u); /* a check word */
  bn_store_be32(b + 12, ~seq);
  disp_msg_t *m = disp_msg_new(NULL, b, sizeof(b), refs);
  if (m == NULL) abort();
  return m;
}

/* ------------------------------------------------------ one ring, 4:1 */

typedef struct producer {
  pthread_t tid;
  disp_ring_t *ring;
  uint32_t id;
  uint64_t deadline;
  disp_msg_t **kept; /* the producer's own reference to every SAMPLE-th */
  uint32_t pushed;
  uint64_t drops_seen; /* pushes that reported a drop */
} producer_t;

typedef struct consumer {
  disp_ring_t *ring;
  atomic_int *producers_done;
  int producers;
  uint64_t consumed;
  uint64_t last[PRODUCERS]; /* last sequence + 1 seen per producer (0: none) */
  uint8_t *seen[PRODUCERS]; /* bitmaps */
  const char *error;        /* first violation, reported by the main thread */
} consumer_t;

static void *producer_thread(void *arg) {
  producer_t *p = arg;
  for (uint32_t seq = 0; seq < PER_PRODUCER_MAX; seq++) {
    if (seq % BURST == 0) {
      if (now_ns() >= p->deadline) break;
      sched_yield(); /* bursts: the consumer gets some turns */
    }
    bool keep = seq % SAMPLE == 0;
    disp_msg_t *m = msg_seq(p->id, seq, keep ? 2 : 1);
    if (keep) p->kept[seq / SAMPLE] = m;
    p->pushed = seq + 1;
    if (disp_ring_push_mpmc(p->ring, m)) p->drops_seen++;
  }
  return NULL;
}

static void consumer_check(consumer_t *c, disp_msg_t *m) {
  if (c->error != NULL) return;
  if (m->len != 16) {
    c->error = "message length";
    return;
  }
  uint32_t pid = bn_load_be32(m->data), seq = bn_load_be32(m->data + 4);
  if (pid >= PRODUCERS || bn_load_be32(m->data + 8) != (pid ^ seq ^ 0xA5A5A5A5u) ||
      bn_load_be32(m->data + 12) != ~seq) {
    c->error = "message bytes";
    return;
  }
  if (seq >= PER_PRODUCER_MAX || (c->seen[pid][seq / 8] >> (seq % 8) & 1)) {
    c->error = "a message seen twice";
    return;
  }
  c->seen[pid][seq / 8] |= (uint8_t)(1u << (seq % 8));
  if (c->last[pid] > seq) { /* strictly increasing per producer */
    c->error = "a producer's messages out of order";
    return;
  }
  c->last[pid] = (uint64_t)seq + 1;
}

/* The loop thread's part: drain in batches until the producers are done
 * and the ring is empty. */
static void consumer_run(consumer_t *c) {
  disp_msg_t *batch[POP_BATCH];
  for (;;) {
    bool done = atomic_load(c->producers_done) == c->producers;
    unsigned n = disp_ring_pop_batch_mpmc(c->ring, batch, POP_BATCH);
    for (unsigned i = 0; i < n; i++) {
      consumer_check(c, batch[i]);
      disp_msg_release(batch[i]);
    }
    c->consumed += n;
    /* A push is counted before its message is visible: whatever was
     * consumed or dropped so far was enqueued. */
    uint64_t dropped = ck_pr_load_64(&c->ring->dropped);
    if (c->consumed + dropped > ck_pr_load_64(&c->ring->enqueued) && c->error == NULL)
      c->error = "consumed + dropped > enqueued";
    if (n == 0) {
      if (done) break;
      sched_yield(); /* the loop thread would sleep in epoll here */
    }
  }
}

typedef struct joiner {
  producer_t *p;
  int n;
  atomic_int *done;
} joiner_t;

static void *joiner_thread(void *arg) {
  joiner_t *j = arg;
  for (int i = 0; i < j->n; i++) {
    if (pthread_join(j->p[i].tid, NULL) != 0) abort(); /* no cmocka off the main thread */
    atomic_fetch_add(j->done, 1);
  }
  return NULL;
}

static void test_ring_mt_producers_overflow(void **state) {
  (void)state;
  long live = th_live_blocks();
  disp_ring_t ring;
  assert_ok(disp_ring_init(&ring, RING_CAP));
  atomic_int done = 0;
  producer_t p[PRODUCERS];
  consumer_t c;
  memset(&c, 0, sizeof(c));
  c.ring = &ring;
  c.producers_done = &done;
  c.producers = PRODUCERS;
  uint64_t deadline = now_ns() + RUN_NS;
  for (uint32_t i = 0; i < PRODUCERS; i++) {
    memset(&p[i], 0, sizeof(p[i]));
    p[i].ring = &ring;
    p[i].id = i;
    p[i].deadline = deadline;
    p[i].kept = calloc(PER_PRODUCER_MAX / SAMPLE, sizeof(disp_msg_t *));
    c.seen[i] = calloc(PER_PRODUCER_MAX / 8, 1);
    assert_non_null(p[i].kept);
    assert_non_null(c.seen[i]);
  }
  for (uint32_t i = 0; i < PRODUCERS; i++)
    assert_int_equal(pthread_create(&p[i].tid, NULL, producer_thread, &p[i]), 0);
  /* Producers are joined (and counted done) off the consumer's thread. */
  joiner_t j = {p, PRODUCERS, &done};
  pthread_t jt;
  assert_int_equal(pthread_create(&jt, NULL, joiner_thread, &j), 0);
  consumer_run(&c);
  assert_int_equal(pthread_join(jt, NULL), 0);
  if (c.error != NULL) fail_msg("consumer: %s", c.error);

  uint64_t pushed = 0, drops_seen = 0;
  for (int i = 0; i < PRODUCERS; i++) {
    pushed += p[i].pushed;
    drops_seen += p[i].drops_seen;
  }
  uint64_t enq = ck_pr_load_64(&ring.enqueued), dropped = ck_pr_load_64(&ring.dropped);
  print_message("ring mt: %llu pushed, %llu consumed, %llu dropped\n", (unsigned long long)pushed,
                (unsigned long long)c.consumed, (unsigned long long)dropped);
  assert_int_equal(disp_ring_depth(&ring), 0);
  assert_int_equal(enq, pushed);
  assert_int_equal(enq, c.consumed + dropped + disp_ring_depth(&ring));
  assert_int_equal(drops_seen, dropped);
  assert_true(pushed >= PRODUCERS); /* something happened */

  /* Refcounts: the ring side released each sampled message exactly once
   * (consumed or dropped); the consumer saw exactly c.consumed. */
  uint64_t seen = 0;
  for (int i = 0; i < PRODUCERS; i++) {
    for (uint32_t s = 0; s < p[i].pushed; s++) {
      seen += c.seen[i][s / 8] >> (s % 8) & 1;
      if (s % SAMPLE != 0) continue;
      assert_int_equal(refs_of(p[i].kept[s / SAMPLE]), 1);
      disp_msg_release(p[i].kept[s / SAMPLE]);
    }
    free(p[i].kept);
    free(c.seen[i]);
  }
  assert_int_equal(seen, c.consumed);
  assert_int_equal(disp_ring_destroy(&ring), 0);
  assert_int_equal(th_live_blocks(), live); /* every message freed */
}

/* ------------------------------------------- broadcast: 1 into 3 rings */

enum { BC_RINGS = 3, BC_MAX = 50000 };

typedef struct bc_consumer {
  pthread_t tid;
  disp_ring_t *ring;
  atomic_bool *producer_done;
  uint64_t consumed;
  uint32_t next; /* sequences must increase */
  const char *error;
} bc_consumer_t;

static void *bc_consumer_thread(void *arg) {
  bc_consumer_t *c = arg;
  disp_msg_t *batch[POP_BATCH];
  for (;;) {
    bool done = atomic_load(c->producer_done);
    unsigned n = disp_ring_pop_batch_mpmc(c->ring, batch, POP_BATCH);
    for (unsigned i = 0; i < n; i++) {
      uint32_t seq = bn_load_be32(batch[i]->data + 4);
      if (seq < c->next || bn_load_be32(batch[i]->data + 12) != ~seq) c->error = "order or bytes";
      c->next = seq + 1;
      disp_msg_release(batch[i]);
    }
    c->consumed += n;
    if (n == 0) {
      if (done) break;
      sched_yield();
    }
  }
  return NULL;
}

static void test_broadcast_mt(void **state) {
  (void)state;
  long live = th_live_blocks();
  disp_ring_t rings[BC_RINGS];
  bc_consumer_t c[BC_RINGS];
  atomic_bool producer_done = false;
  disp_msg_t **msgs = calloc(BC_MAX, sizeof(*msgs));
  assert_non_null(msgs);
  for (int i = 0; i < BC_RINGS; i++) {
    assert_ok(disp_ring_init(&rings[i], 16));
    memset(&c[i], 0, sizeof(c[i]));
    c[i].ring = &rings[i];
    c[i].producer_done = &producer_done;
    assert_int_equal(pthread_create(&c[i].tid, NULL, bc_consumer_thread, &c[i]), 0);
  }
  uint64_t deadline = now_ns() + RUN_NS / 4;
  uint32_t n = 0;
  while (n < BC_MAX && ((n & 15) != 0 || now_ns() < deadline)) {
    if ((n & 15) == 0) sched_yield();
    /* Even ones carry the test's reference too (checked at the end); odd
     * ones are freed by whichever ring side lets go last. */
    bool keep = n % 2 == 0;
    disp_msg_t *m = msg_seq(0, n, BC_RINGS + keep);
    msgs[n++] = keep ? m : NULL;
    for (int i = 0; i < BC_RINGS; i++)
      disp_ring_push_mpmc(&rings[i], m);
  }
  atomic_store(&producer_done, true);
  uint64_t total = 0;
  for (int i = 0; i < BC_RINGS; i++) {
    assert_int_equal(pthread_join(c[i].tid, NULL), 0);
    if (c[i].error != NULL) fail_msg("broadcast consumer %d: %s", i, c[i].error);
    assert_int_equal(c[i].consumed + ck_pr_load_64(&rings[i].dropped), n);
    total += c[i].consumed;
    assert_int_equal(disp_ring_destroy(&rings[i]), 0);
  }
  print_message("broadcast mt: %u messages x %d rings, %llu consumed\n", n, BC_RINGS,
                (unsigned long long)total);
  for (uint32_t i = 0; i < n; i += 2) {
    assert_int_equal(refs_of(msgs[i]), 1);
    disp_msg_release(msgs[i]);
  }
  free(msgs);
  assert_int_equal(th_live_blocks(), live);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ring_mt_producers_overflow),
      cmocka_unit_test(test_broadcast_mt),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
