/* ring_bench.c — dispatcher/ micro-benchmarks (an executable, not a test):
 *
 *   ring, 1 thread       push + pop, one at a time and in batches of 64
 *   ring, P producers    P threads push, 1 thread pops (P = 2 and 4)
 *   ck_ring raw, P prod. the same on a bare ck_ring with
 *                        ck_ring_enqueue_mpmc and no producer lock, for
 *                        comparison (see dispatcher/src/ring.c)
 *   framer               push + drain into a writer that takes everything,
 *                        64 B and 1 KiB messages: msgs/s, MB/s, writes
 *
 * The messages are preallocated with a huge refcount, so malloc and free
 * stay out of the figures. Usage: ring_bench [seconds per threaded run]. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_harness.h"
#include "dispatcher.h"

#define REFS_FOREVER (UINT32_MAX / 2)

static disp_msg_t *msg_forever(size_t len) {
  uint8_t *tmp = calloc(1, len ? len : 1);
  disp_msg_t *m = tmp ? disp_msg_new(NULL, tmp, len, REFS_FOREVER) : NULL;
  free(tmp);
  if (m == NULL) {
    fprintf(stderr, "ring_bench: out of memory\n");
    exit(1);
  }
  return m;
}

static void ring_init_or_die(disp_ring_t *r, uint32_t cap) {
  if (disp_ring_init(r, cap) != 0) {
    fprintf(stderr, "ring_bench: disp_ring_init failed\n");
    exit(1);
  }
}

/* ------------------------------------------------------- single thread */

static void bench_ring_single(void) {
  enum { N = 10000000, BATCH = 64 };
  disp_ring_t r;
  ring_init_or_die(&r, 1024);
  disp_msg_t *m = msg_forever(64), *out[BATCH];
  uint64_t t0 = bb_now_ns();
  for (int i = 0; i < N; i++) {
    disp_ring_push_mpmc(&r, m);
    if (disp_ring_pop_batch_mpmc(&r, out, 1) != 1) abort();
  }
  uint64_t t1 = bb_now_ns();
  for (int i = 0; i < N; i += BATCH) {
    for (int k = 0; k < BATCH; k++)
      disp_ring_push_mpmc(&r, m);
    if (disp_ring_pop_batch_mpmc(&r, out, BATCH) != BATCH) abort();
  }
  uint64_t t2 = bb_now_ns();
  printf("ring, 1 thread:        push+pop %6.1f ns/op   (batches of %d: %6.1f ns/op)\n",
         (double)(t1 - t0) / N, BATCH, (double)(t2 - t1) / N);
  disp_ring_destroy(&r);
}

/* ---------------------------------------------- producers and consumer */

enum { KIND_RING = 0, KIND_CK = 1, KIND_MUTEX = 2 };
enum { MUTEX_CAP = 4096 };

/* The simplest baseline: a plain circular buffer behind one
 * pthread mutex for producers and consumer alike, same drop-oldest rule. */
typedef struct mutex_ring {
  pthread_mutex_t mu;
  void *slot[MUTEX_CAP];
  unsigned head, count;
} mutex_ring_t;

static void mutex_push(mutex_ring_t *r, void *p) {
  pthread_mutex_lock(&r->mu);
  if (r->count == MUTEX_CAP) { /* full: drop the oldest */
    r->head = (r->head + 1) % MUTEX_CAP;
    r->count--;
  }
  r->slot[(r->head + r->count) % MUTEX_CAP] = p;
  r->count++;
  pthread_mutex_unlock(&r->mu);
}

static unsigned mutex_pop_batch(mutex_ring_t *r, unsigned max) {
  pthread_mutex_lock(&r->mu);
  unsigned n = r->count < max ? r->count : max;
  r->head = (r->head + n) % MUTEX_CAP;
  r->count -= n;
  pthread_mutex_unlock(&r->mu);
  return n;
}

typedef struct mt {
  disp_ring_t ring; /* KIND_RING: the Dispatcher's ring */
  ck_ring_t ck;     /* KIND_CK: bare ck_ring */
  ck_ring_buffer_t *ck_buf;
  mutex_ring_t mx; /* KIND_MUTEX: the baseline */
  int raw;
  disp_msg_t *m;
  atomic_bool stop;
  atomic_uint_fast64_t pushed;
} mt_t;

static void *producer(void *arg) {
  mt_t *b = arg;
  uint64_t n = 0;
  while (!atomic_load_explicit(&b->stop, memory_order_relaxed)) {
    for (int k = 0; k < 16; k++) {
      if (b->raw == KIND_RING) {
        disp_ring_push_mpmc(&b->ring, b->m);
      } else if (b->raw == KIND_MUTEX) {
        mutex_push(&b->mx, b->m);
      } else {
        while (!ck_ring_enqueue_mpmc(&b->ck, b->ck_buf, b->m)) { /* full: drop the oldest */
          void *old;
          ck_ring_dequeue_mpmc(&b->ck, b->ck_buf, &old);
        }
      }
    }
    n += 16;
  }
  atomic_fetch_add(&b->pushed, n);
  return NULL;
}

/* Returns ns per push. */
static double bench_ring_mt(int producers, int raw, double seconds) {
  enum { CAP = 4096, BATCH = 64 };
  static mt_t b;
  memset(&b, 0, sizeof(b));
  atomic_init(&b.stop, false);
  atomic_init(&b.pushed, 0);
  b.raw = raw;
  pthread_mutex_init(&b.mx.mu, NULL);
  b.m = msg_forever(64);
  ring_init_or_die(&b.ring, CAP);
  ck_ring_init(&b.ck, CAP);
  b.ck_buf = calloc(CAP, sizeof(*b.ck_buf));
  if (b.ck_buf == NULL) abort();
  pthread_t t[8];
  uint64_t t0 = bb_now_ns(), end = t0 + (uint64_t)(seconds * 1e9), popped = 0;
  for (int i = 0; i < producers; i++)
    if (pthread_create(&t[i], NULL, producer, &b) != 0) abort();
  disp_msg_t *out[BATCH];
  while (bb_now_ns() < end) {
    for (int k = 0; k < 64; k++) {
      if (raw == KIND_RING) {
        popped += disp_ring_pop_batch_mpmc(&b.ring, out, BATCH);
      } else if (raw == KIND_MUTEX) {
        popped += mutex_pop_batch(&b.mx, BATCH);
      } else {
        void *p;
        for (int j = 0; j < BATCH && ck_ring_dequeue_mpmc(&b.ck, b.ck_buf, &p); j++)
          popped++;
      }
    }
  }
  atomic_store(&b.stop, true);
  for (int i = 0; i < producers; i++)
    pthread_join(t[i], NULL);
  uint64_t el = bb_now_ns() - t0, pushed = atomic_load(&b.pushed);
  printf("%s, %d producers + 1 consumer: %6.1f ns/push (%5.1f Mpush/s), %5.1f%% consumed, rest "
         "dropped\n",
         raw == KIND_CK      ? "ck_ring raw (no lock)"
         : raw == KIND_MUTEX ? "mutex ring (baseline)"
                             : "ring",
         producers, (double)el / (double)pushed, (double)pushed / ((double)el / 1e9) / 1e6,
         100.0 * (double)popped / (double)pushed);
  disp_ring_destroy(&b.ring);
  free(b.ck_buf);
  pthread_mutex_destroy(&b.mx.mu);
  return (double)el / (double)pushed;
}

/* --------------------------------------------------------------- framer */

typedef struct sink {
  uint64_t calls, bytes;
} sink_t;

static int sink_write(void *ctx, const uint8_t *p, size_t n) {
  sink_t *s = ctx;
  s->calls++;
  s->bytes += n + (p[0] & 0); /* touch the buffer */
  return (int)n;
}

static void bench_framer(size_t len) {
  enum { BURST = 1000 };
  const uint64_t total = len <= 64 ? 5000000 : 1000000;
  disp_ring_t r;
  ring_init_or_die(&r, 1024);
  disp_framer_t f;
  disp_framer_init(&f);
  disp_msg_t *m = msg_forever(len);
  sink_t s = {0};
  uint64_t drain_ns = 0, t0 = bb_now_ns();
  for (uint64_t done = 0; done < total; done += BURST) {
    for (int k = 0; k < BURST; k++)
      disp_ring_push_mpmc(&r, m);
    uint64_t d0 = bb_now_ns();
    if (disp_framer_drain(&f, &r, sink_write, &s) != BURST) abort();
    drain_ns += bb_now_ns() - d0;
  }
  uint64_t el = bb_now_ns() - t0;
  printf(
      "framer, %4zu B messages: %6.2f M msgs/s push+drain, %6.2f M msgs/s drain only (%7.1f MB/s), "
      "%.1f msgs per write\n",
      len, (double)total / ((double)el / 1e9) / 1e6, (double)total / ((double)drain_ns / 1e9) / 1e6,
      (double)s.bytes / ((double)drain_ns / 1e9) / 1e6, (double)total / (double)s.calls);
  disp_ring_destroy(&r);
}

int main(int argc, char **argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 1.0;
  if (seconds <= 0) seconds = 1.0;
  bench_ring_single();
  double r2 = bench_ring_mt(2, KIND_RING, seconds), m2 = bench_ring_mt(2, KIND_MUTEX, seconds);
  double r4 = bench_ring_mt(4, KIND_RING, seconds), m4 = bench_ring_mt(4, KIND_MUTEX, seconds);
  bench_ring_mt(2, KIND_CK, seconds);
  bench_ring_mt(4, KIND_CK, seconds);
  bench_framer(64);
  bench_framer(1024);
  /* One line for scripts: ns per push, ours against the mutex ring, same run. */
  printf(
      "ring_bench p2_ring_ns=%.1f p2_mutex_ns=%.1f p2_ratio=%.3f p4_ring_ns=%.1f p4_mutex_ns=%.1f "
      "p4_ratio=%.3f\n",
      r2, m2, m2 / r2, r4, m4, m4 / r4);
  return 0;
}
