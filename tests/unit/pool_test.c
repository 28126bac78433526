/* pool_test.c — core/src/pool.c, the cache of message buffers.
 *
 * Single-threaded (test "pool_test"): the size classes, observed through the
 * public API only (a class's size is what bn_pool_cached() grows by when a
 * buffer of it is freed, and what malloc is asked for when the class is
 * empty); LIFO reuse and exact class boundaries; the cache cap; the lifetime
 * rule (buffers outliving bn_pool_close); a NULL pool; allocation failure.
 *
 * Threaded (test "pool_mt_test", the same program run with the argument
 * "mt", label "threads", run under ThreadSanitizer by scripts/test.sh): two
 * threads each allocate buffers of random sizes, fill them with a pattern
 * and pass them through a ck_ring (SPSC) to the other, which checks and
 * frees them (the real usage: the application allocates and the loop frees,
 * and the other way round). Some received buffers are kept and freed only
 * after the owner closed the pool, concurrently with the last frees.
 *
 * Linked with the counting allocator (tests/lib/count_alloc.h): live
 * blocks and malloc calls, the size last asked for, injected failures. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#include <ck_ring.h>

#include "core.h"
#include "count_alloc.h"
#include "harness.h"

/* ------------------------------------------------- counting allocator */

/* -------------------------------------------------------------- helpers */

/* The class a buffer of n bytes should get, from core.h's description of the pool
 * alone: header included, sizes up to 64 KiB come in 64 classes: 64 B steps
 * up to 1 KiB, then eight per doubling; 0 for plain malloc. */
static size_t want_class(size_t n) {
  size_t total = n + BN_POOL_HDR;
  if (total > BN_POOL_MAX) return 0;
  if (total <= 1024) return (total + 63) / 64 * 64;
  for (size_t b = 1024; b < BN_POOL_MAX; b *= 2)
    for (size_t k = 1; k <= 8; k++)
      if (b + k * (b / 8) >= total) return b + k * (b / 8);
  fail_msg("no class for %zu", n);
  return 0;
}

static void fill(uint8_t *p, size_t n, uint8_t tag) {
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)(tag + i * 7u + (i >> 8));
}

static void check_fill(const uint8_t *p, size_t n, uint8_t tag) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != (uint8_t)(tag + i * 7u + (i >> 8)))
      fail_msg("byte %zu of %zu: %u, want %u", i, n, p[i], (uint8_t)(tag + i * 7u + (i >> 8)));
}

static void assert_aligned(const void *p) {
  if ((uintptr_t)p % 16 != 0) fail_msg("%p is not 16-byte aligned", p);
}

/* ------------------------------------------------------- size classes */

#define SWEEP_MAX (BN_POOL_MAX + 100u)

/* The n swept: every n up to 2 KiB, every n within 40 of each class
 * boundary (64 B steps up to 1 KiB, and BN_POOL_MAX, header included), every 37th
 * elsewhere. */
static bool *sweep_set(void) {
  bool *on = calloc(SWEEP_MAX + 1, 1);
  assert_non_null(on);
  for (size_t n = 0; n <= SWEEP_MAX; n++)
    on[n] = n <= 2048 || n % 37 == 0;
  size_t edges[80], ne = 0;
  for (size_t k = 1; k <= 16; k++)
    edges[ne++] = 64 * k;
  for (size_t b = 1024; b < BN_POOL_MAX; b *= 2)
    for (size_t k = 1; k <= 8; k++)
      edges[ne++] = b + k * (b / 8);
  for (size_t i = 0; i < ne; i++)
    for (size_t d = 0; d <= 80; d++) {
      size_t total = edges[i] + d - 40;
      if (total >= BN_POOL_HDR && total - BN_POOL_HDR <= SWEEP_MAX) on[total - BN_POOL_HDR] = true;
    }
  return on;
}

static void test_size_classes(void **state) {
  (void)state;
  long live0 = th_live_blocks();
  bn_pool_t *p = bn_pool_new(64u << 20); /* caches everything */
  assert_non_null(p);
  bool *on = sweep_set();
  size_t classes_seen[64] = {0}, n_classes = 0, prev_class = 0, swept = 0;
  for (size_t n = 0; n <= SWEEP_MAX; n++) {
    if (!on[n]) continue;
    swept++;
    size_t want = want_class(n);
    long m0 = th_mallocs(), l0 = th_live_blocks();
    uint8_t *a = bn_pool_alloc(p, n);
    assert_non_null(a);
    assert_aligned(a);
    fill(a, n, (uint8_t)n); /* ASan: all n bytes are the caller's */
    check_fill(a, n, (uint8_t)n);
    bool fresh = th_mallocs() != m0;
    size_t c_held = bn_pool_cached(p);
    bn_pool_free(a);
    size_t c_freed = bn_pool_cached(p);
    if (want == 0) {
      /* Plain malloc: one block for exactly this buffer, freed by free. */
      assert_true(fresh);
      assert_int_equal(th_last_malloc_size(), n + BN_POOL_HDR);
      assert_int_equal(c_freed, c_held);
      assert_int_equal(th_live_blocks(), l0);
      continue;
    }
    /* Pooled: the free cached it; its class is what the cache grew by. */
    size_t cls = c_freed - c_held;
    if (fresh) assert_int_equal(th_last_malloc_size(), cls);
    if (cls != want)
      fail_msg("n=%zu (total %zu): class %zu, want %zu", n, n + BN_POOL_HDR, cls, want);
    assert_true(cls >= n + BN_POOL_HDR);
    if (n + BN_POOL_HDR > 1024 && cls * 8 > (n + BN_POOL_HDR) * 9)
      fail_msg("n=%zu: class %zu wastes over 12.5 %%", n, cls);
    assert_true(cls >= prev_class); /* classes grow with n */
    if (cls != prev_class) {
      assert_true(n_classes < BN_ARRAY_LEN(classes_seen));
      classes_seen[n_classes++] = cls;
    }
    prev_class = cls;
    assert_int_equal(th_live_blocks(), l0 + (fresh ? 1 : 0)); /* cached, not freed */
    /* LIFO reuse: the same n gets the same buffer back, without malloc. */
    m0 = th_mallocs();
    uint8_t *b = bn_pool_alloc(p, n);
    assert_ptr_equal(b, a);
    assert_int_equal(th_mallocs(), m0);
    assert_int_equal(bn_pool_cached(p), c_held);
    fill(b, n, (uint8_t)~n);
    bn_pool_free(b);
    /* The class's edges: the largest n of the class gets it too; one byte
     * more is another class (b stays cached, a new block comes). */
    uint8_t *c = bn_pool_alloc(p, cls - BN_POOL_HDR);
    assert_ptr_equal(c, b);
    fill(c, cls - BN_POOL_HDR, 1);
    bn_pool_free(c);
    if (cls < BN_POOL_MAX) {
      uint8_t *d = bn_pool_alloc(p, cls - BN_POOL_HDR + 1);
      assert_non_null(d);
      assert_ptr_not_equal(d, c);
      fill(d, cls - BN_POOL_HDR + 1, 2);
      bn_pool_free(d);
      assert_ptr_equal(bn_pool_alloc(p, n), c); /* c is still on its stack */
      bn_pool_free(c);
    }
  }
  /* 64 B steps up to 1 KiB plus eight per doubling up to 64 KiB, each seen. */
  assert_int_equal(n_classes, 64);
  assert_int_equal(classes_seen[0], 64);
  assert_int_equal(classes_seen[15], 1024);
  assert_int_equal(classes_seen[63], BN_POOL_MAX);
  for (size_t i = 0; i < n_classes; i++)
    assert_int_equal(classes_seen[i], want_class(classes_seen[i] - BN_POOL_HDR));
  fprintf(stderr, "size classes: %zu sizes swept, 64 classes\n", swept);
  free(on);
  bn_pool_close(p); /* frees what is cached, and the pool */
  assert_int_equal(th_live_blocks(), live0);
}

/* The cache is LIFO per class, and classes do not mix. */
static void test_reuse_lifo(void **state) {
  (void)state;
  long live0 = th_live_blocks();
  bn_pool_t *p = bn_pool_new(1u << 20);
  assert_non_null(p);
  void *a = bn_pool_alloc(p, 3000), *b = bn_pool_alloc(p, 3000), *c = bn_pool_alloc(p, 5000);
  assert_true(a && b && c);
  bn_pool_free(a);
  bn_pool_free(b);
  bn_pool_free(c);
  assert_int_equal(bn_pool_cached(p), 2 * want_class(3000) + want_class(5000));
  long m0 = th_mallocs();
  assert_ptr_equal(bn_pool_alloc(p, 2900), b); /* the same class (3072), newest first */
  assert_ptr_equal(bn_pool_alloc(p, 3056), a);
  assert_ptr_equal(bn_pool_alloc(p, 5000), c);
  assert_int_equal(th_mallocs(), m0);
  assert_int_equal(bn_pool_cached(p), 0);
  void *d = bn_pool_alloc(p, 3000); /* the class is empty: a new block */
  assert_int_equal(th_mallocs(), m0 + 1);
  bn_pool_free(a);
  bn_pool_free(b);
  bn_pool_free(c);
  bn_pool_free(d);
  bn_pool_close(p);
  assert_int_equal(th_live_blocks(), live0);
}

/* ---------------------------------------------------------- cache cap */

static uint64_t g_rng;

static uint64_t rnd(void) {
  return th_rnd(&g_rng);
}

static int setup_rng(void **state) {
  (void)state;
  g_rng = th_rng_init(th_seed());
  return 0;
}

static void test_cache_cap(void **state) {
  (void)state;
  long live0 = th_live_blocks();
  /* 50 buffers of one class (2048) under a cap of 10000: 4 stay cached. */
  bn_pool_t *p = bn_pool_new(10000);
  assert_non_null(p);
  assert_int_equal(th_live_blocks(), live0 + 1);
  void *b[50];
  for (int i = 0; i < 50; i++)
    assert_non_null(b[i] = bn_pool_alloc(p, 2000));
  assert_int_equal(th_live_blocks(), live0 + 1 + 50);
  for (int i = 0; i < 50; i++) {
    bn_pool_free(b[i]);
    assert_true(bn_pool_cached(p) <= 10000);
  }
  assert_int_equal(bn_pool_cached(p), 4 * 2048);
  assert_int_equal(th_live_blocks(), live0 + 1 + 4); /* the other 46 were really freed */
  long m0 = th_mallocs();
  for (int i = 0; i < 5; i++)
    assert_non_null(b[i] = bn_pool_alloc(p, 2000));
  assert_int_equal(th_mallocs(), m0 + 1); /* four from the cache, then malloc */
  assert_int_equal(bn_pool_cached(p), 0);
  for (int i = 0; i < 5; i++)
    bn_pool_free(b[i]);
  bn_pool_close(p);
  assert_int_equal(th_live_blocks(), live0);

  /* A cap of exactly one class: kept (the cap is inclusive), the next freed. */
  p = bn_pool_new(2048);
  assert_non_null(p);
  b[0] = bn_pool_alloc(p, 2000);
  b[1] = bn_pool_alloc(p, 2000);
  b[2] = bn_pool_alloc(p, BN_POOL_MAX); /* plain (over the largest class): never counts */
  bn_pool_free(b[2]);
  bn_pool_free(b[0]);
  assert_int_equal(bn_pool_cached(p), 2048);
  bn_pool_free(b[1]);
  assert_int_equal(bn_pool_cached(p), 2048);
  assert_int_equal(th_live_blocks(), live0 + 2);
  bn_pool_close(p);
  assert_int_equal(th_live_blocks(), live0);

  /* cache_max 0: nothing is ever cached. */
  p = bn_pool_new(0);
  assert_non_null(p);
  for (int i = 0; i < 10; i++)
    assert_non_null(b[i] = bn_pool_alloc(p, 1000 + 3000u * (unsigned)i));
  for (int i = 0; i < 10; i++)
    bn_pool_free(b[i]);
  assert_int_equal(bn_pool_cached(p), 0);
  assert_int_equal(th_live_blocks(), live0 + 1);
  bn_pool_close(p);
  assert_int_equal(th_live_blocks(), live0);

  /* Random sizes and orders under a cap: after every free the cache is
   * within the cap, a free keeps the buffer exactly when it fits, and the
   * live blocks are the pool + the buffers out + the buffers cached. */
  for (int round = 0; round < 20; round++) {
    size_t cap = (size_t)(rnd() % (256u * 1024u));
    p = bn_pool_new(cap);
    assert_non_null(p);
    enum { OUT = 64 };
    void *out[OUT] = {0};
    size_t cls[OUT] = {0};
    long n_out = 0, n_cached = 0;
    for (int step = 0; step < 2000; step++) {
      int i = (int)(rnd() % OUT);
      if (out[i] == NULL) {
        size_t n = (size_t)(rnd() % (BN_POOL_MAX + 1000u));
        size_t c_before = bn_pool_cached(p);
        out[i] = bn_pool_alloc(p, n);
        assert_non_null(out[i]);
        fill(out[i], n, 3);
        cls[i] = want_class(n);
        if (cls[i] && bn_pool_cached(p) != c_before) n_cached--; /* came from the cache */
        n_out++;
      } else {
        size_t before = bn_pool_cached(p);
        bn_pool_free(out[i]);
        out[i] = NULL;
        n_out--;
        size_t after = bn_pool_cached(p);
        assert_true(after <= cap);
        bool keep = cls[i] && before + cls[i] <= cap;
        assert_int_equal(after, before + (keep ? cls[i] : 0));
        if (keep) n_cached++;
      }
      assert_int_equal(th_live_blocks(), live0 + 1 + n_out + n_cached);
    }
    for (int i = 0; i < OUT; i++)
      bn_pool_free(out[i]);
    bn_pool_close(p);
    assert_int_equal(th_live_blocks(), live0);
  }
}

/* ------------------------------------------------------------ lifetime */

static void test_lifetime(void **state) {
  (void)state;
  long live0 = th_live_blocks();
  bn_pool_close(NULL);

  /* Closed with nothing out: the pool and its cache go at once. */
  bn_pool_t *p = bn_pool_new(1u << 20);
  assert_non_null(p);
  void *x = bn_pool_alloc(p, 4000), *y = bn_pool_alloc(p, 9000);
  bn_pool_free(x);
  bn_pool_free(y);
  assert_int_equal(th_live_blocks(), live0 + 3);
  bn_pool_close(p);
  assert_int_equal(th_live_blocks(), live0);

  /* Closed with buffers out: they stay usable, each later free is a plain
   * free, and the last one frees the cache and the pool. */
  static const size_t sizes[] = {600, 1500, 4000, 4000, 30000, BN_POOL_MAX - BN_POOL_HDR,
                                 100, 70000};
  enum { NB = BN_ARRAY_LEN(sizes) };
  p = bn_pool_new(1u << 20);
  assert_non_null(p);
  uint8_t *b[NB];
  for (size_t i = 0; i < NB; i++) {
    assert_non_null(b[i] = bn_pool_alloc(p, sizes[i]));
    fill(b[i], sizes[i], (uint8_t)i);
  }
  bn_pool_free(b[3]); /* cached: 4096 */
  bn_pool_free(b[1]); /* cached: 1536 */
  assert_int_equal(bn_pool_cached(p), 4096 + 1536);
  assert_int_equal(th_live_blocks(), live0 + 1 + NB);
  bn_pool_close(p);
  assert_int_equal(th_live_blocks(), live0 + 1 + NB); /* the buffers out hold the pool */
  static const size_t order[] = {7, 0, 5, 6, 2, 4};
  for (size_t k = 0; k < BN_ARRAY_LEN(order); k++) {
    size_t i = order[k];
    check_fill(b[i], sizes[i], (uint8_t)i); /* ASan: still ours */
    fill(b[i], sizes[i], 0xee);
    long l = th_live_blocks();
    bn_pool_free(b[i]);
    if (k + 1 < BN_ARRAY_LEN(order))
      assert_int_equal(th_live_blocks(), l - 1); /* straight to free() */
  }
  assert_int_equal(th_live_blocks(), live0); /* the last free took the cache and the pool */

  /* A buffer of one pool freed after another pool was made and closed. */
  bn_pool_t *p1 = bn_pool_new(1u << 20), *p2 = bn_pool_new(1u << 20);
  assert_true(p1 && p2);
  x = bn_pool_alloc(p1, 5000);
  y = bn_pool_alloc(p2, 5000);
  bn_pool_close(p2);
  bn_pool_free(x); /* cached in p1 */
  assert_int_equal(bn_pool_cached(p1), want_class(5000));
  bn_pool_close(p1);
  bn_pool_free(y);
  assert_int_equal(th_live_blocks(), live0);
}

/* A thread that defers its frees: they reach the cache only in batches of
 * 64 or on a flush, other pools' buffers are not held back, the cap still
 * holds, and the pool outlives its close while a thread holds its buffers. */
static void test_defer(void **state) {
  (void)state;
  long live0 = th_live_blocks();
  enum { N = 64 }; /* POOL_DEFER_MAX */
  bn_pool_t *p = bn_pool_new(1u << 20), *q = bn_pool_new(1u << 20);
  assert_non_null(p);
  assert_non_null(q);
  assert_err(bn_pool_defer_begin(NULL), BFTNET_EINVAL);
  bn_pool_defer_flush(); /* not deferring: nothing happens */
  bn_pool_defer_end();
  assert_ok(bn_pool_defer_begin(p));
  assert_err(bn_pool_defer_begin(q), BFTNET_EINVAL); /* one pool per thread */

  void *b[N + 1];
  for (int i = 0; i <= N; i++)
    b[i] = bn_pool_alloc(p, i % 2 ? 100 : 3000); /* two classes: 128 and 3072 */
  for (int i = 0; i < N - 1; i++)
    bn_pool_free(b[i]);
  assert_int_equal(bn_pool_cached(p), 0); /* held back */
  void *other = bn_pool_alloc(q, 100);
  bn_pool_free(other); /* another pool: at once */
  assert_int_equal(bn_pool_cached(q), want_class(100));
  bn_pool_free(b[N - 1]); /* the 64th: the batch goes back */
  size_t all = (size_t)(N / 2) * (want_class(100) + want_class(3000));
  assert_int_equal(bn_pool_cached(p), all);
  /* They are reused, newest first within a class, without malloc. */
  long m0 = th_mallocs();
  void *r = bn_pool_alloc(p, 100);
  assert_true(r == b[N - 1] || r == b[N - 3]);
  assert_int_equal(th_mallocs(), m0);
  bn_pool_free(r);
  bn_pool_defer_flush();
  assert_int_equal(bn_pool_cached(p), all);
  bn_pool_free(b[N]);
  bn_pool_defer_flush();
  assert_int_equal(bn_pool_cached(p), all + want_class(3000));

  /* Closed while this thread holds buffers: it lives until they are given
   * back, and then everything is freed. */
  void *x = bn_pool_alloc(p, 5000), *y = bn_pool_alloc(p, 5000);
  bn_pool_free(x);
  bn_pool_close(p);
  assert_true(th_live_blocks() > live0);
  bn_pool_free(y);
  bn_pool_defer_end();
  bn_pool_defer_end(); /* again: a no-op */
  bn_pool_close(q);
  assert_int_equal(th_live_blocks(), live0);

  /* Over the cap: the flush frees the batch instead of caching it. */
  p = bn_pool_new(4096);
  assert_non_null(p);
  assert_ok(bn_pool_defer_begin(p));
  void *c[3];
  for (int i = 0; i < 3; i++)
    c[i] = bn_pool_alloc(p, 2000);
  for (int i = 0; i < 3; i++)
    bn_pool_free(c[i]);
  bn_pool_defer_flush();
  assert_int_equal(bn_pool_cached(p), 0);        /* 3 x 2048 > 4096 */
  assert_int_equal(th_live_blocks(), live0 + 2); /* just the pool and this thread's defer record */
  bn_pool_defer_end();
  bn_pool_close(p);
  assert_int_equal(th_live_blocks(), live0);
}

static void test_null_pool(void **state) {
  (void)state;
  long live0 = th_live_blocks();
  bn_pool_free(NULL);
  assert_int_equal(bn_pool_cached(NULL), 0);
  static const size_t sizes[] = {0, 1, 496, 497, 1008, 5000, BN_POOL_MAX, BN_POOL_MAX + 100};
  for (size_t i = 0; i < BN_ARRAY_LEN(sizes); i++) {
    uint8_t *a = bn_pool_alloc(NULL, sizes[i]);
    assert_non_null(a);
    assert_aligned(a);
    assert_int_equal(th_last_malloc_size(), sizes[i] + BN_POOL_HDR); /* plain malloc */
    fill(a, sizes[i], 9);
    assert_int_equal(th_live_blocks(), live0 + 1);
    bn_pool_free(a);
    assert_int_equal(th_live_blocks(), live0);
  }
}

/* ------------------------------------------------- allocation failure */

static void test_alloc_failure(void **state) {
  (void)state;
  long live0 = th_live_blocks();
  th_fail_alloc_in(0);
  assert_null(bn_pool_new(1000));
  assert_int_equal(th_live_blocks(), live0);

  bn_pool_t *p = bn_pool_new(1u << 20);
  assert_non_null(p);
  static const size_t sizes[] = {
      0, 100, 496, 497, 3000, 40000, BN_POOL_MAX - BN_POOL_HDR, BN_POOL_MAX, 100000};
  for (size_t i = 0; i < BN_ARRAY_LEN(sizes); i++) {
    th_fail_alloc_in(0);
    assert_null(bn_pool_alloc(p, sizes[i]));
    assert_int_equal(th_fail_alloc_pending(), -1); /* malloc was asked */
    assert_int_equal(th_live_blocks(), live0 + 1);
    th_fail_alloc_in(0);
    assert_null(bn_pool_alloc(NULL, sizes[i]));
    assert_int_equal(th_live_blocks(), live0 + 1);
  }
  assert_int_equal(bn_pool_cached(p), 0);

  /* A cached buffer needs no malloc. */
  void *a = bn_pool_alloc(p, 3000);
  bn_pool_free(a);
  th_fail_alloc_in(0);
  assert_ptr_equal(bn_pool_alloc(p, 3000), a);
  assert_int_equal(th_fail_alloc_pending(), 0);
  th_fail_alloc_in(-1);
  bn_pool_free(a);

  /* Sizes whose total would overflow: refused before malloc. */
  long m0 = th_mallocs();
  assert_null(bn_pool_alloc(p, SIZE_MAX));
  assert_null(bn_pool_alloc(p, SIZE_MAX - BN_POOL_HDR - BN_POOL_MAX + 1));
  assert_null(bn_pool_alloc(NULL, SIZE_MAX - BN_POOL_HDR + 1));
  assert_int_equal(th_mallocs(), m0);
  assert_int_equal(th_live_blocks(), live0 + 2); /* the pool and the cached buffer */

  /* No reference was taken by a failed allocation: close frees it all. */
  bn_pool_close(p);
  assert_int_equal(th_live_blocks(), live0);
}

/* ---------------------------------------------------------- threaded */

/* ck_ring orders its slots with ck_pr (inline assembly on x86-64), which
 * TSan does not see: the ring's own accesses are hidden, and each buffer is
 * released before it is enqueued and acquired after it is dequeued. */
#ifdef BN_TSAN
void __tsan_ignore_thread_begin(void);
void __tsan_ignore_thread_end(void);
#define MT_IGNORE_BEGIN() __tsan_ignore_thread_begin()
#define MT_IGNORE_END()   __tsan_ignore_thread_end()
#else
#define MT_IGNORE_BEGIN() ((void)0)
#define MT_IGNORE_END()   ((void)0)
#endif

enum { MT_RING = 256, MT_KEEP = 32 };
#define MT_MSGS_PER_THREAD 1000000u /* 2 million in all, or MT_SECONDS */

typedef struct mt_link {
  ck_ring_t ring;
  ck_ring_buffer_t slots[MT_RING];
} mt_link_t;

typedef struct mt_thread {
  struct mt_shared *sh;
  int id;
  uint64_t rng;
  mt_link_t *out, *in;
  atomic_bool done_producing;
  uint64_t produced, consumed, bytes, bad, kept_after_close;
  char why[160];
} mt_thread_t;

typedef struct mt_shared {
  bn_pool_t *pool;
  uint64_t deadline_ns;
  atomic_bool closed;
  mt_link_t link[2];
  mt_thread_t th[2];
} mt_shared_t;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t mt_rnd(mt_thread_t *t) {
  return th_rnd(&t->rng);
}

/* Sizes: mostly pooled (half of them up to 4 KiB, the rest log-uniform
 * over the classes), some small and a few over BN_POOL_MAX (plain malloc).
 * At least 16: the message's header. */
static size_t mt_size(mt_thread_t *t) {
  uint64_t r = mt_rnd(t), u = r >> 8;
  unsigned pick = (unsigned)(r % 100);
  if (pick < 12) return 16 + (size_t)(u % 480);
  if (pick < 15) return BN_POOL_MAX - BN_POOL_HDR + 1 + (size_t)(u % 8000);
  if (pick < 60) return 497 + (size_t)(u % (4096 - 497));
  unsigned bits = 9 + (unsigned)(u % 7); /* 512 B .. 64 KiB */
  size_t n = ((size_t)1 << bits) + (size_t)(u >> 8) % ((size_t)1 << bits);
  return BN_MIN(n, (size_t)(BN_POOL_MAX - BN_POOL_HDR));
}

/* Message layout: n (8 bytes), tag (8 bytes), then up to MT_EDGE bytes of
 * a per-message pattern, a middle of one byte value (memset and checked
 * with an overlapping memcmp: range accesses, cheap under TSan), and the
 * last MT_EDGE bytes patterned again. Every byte is written and checked. */
#define MT_EDGE 256u

static uint8_t mt_byte(uint64_t tag, size_t i) {
  return (uint8_t)((tag >> (8 * (i & 7))) ^ i);
}

static void mt_span(size_t n, size_t *mid0, size_t *mid1) {
  *mid0 = BN_MIN(n, (size_t)MT_EDGE);
  *mid1 = n > *mid0 + MT_EDGE ? n - MT_EDGE : *mid0;
}

static void mt_fill(uint8_t *p, size_t n, uint64_t tag) {
  size_t mid0, mid1;
  mt_span(n, &mid0, &mid1);
  memcpy(p, &n, 8);
  memcpy(p + 8, &tag, 8);
  for (size_t i = 16; i < mid0; i++)
    p[i] = mt_byte(tag, i);
  memset(p + mid0, (uint8_t)(tag >> 13), mid1 - mid0);
  for (size_t i = mid1; i < n; i++)
    p[i] = mt_byte(tag, i);
}

static bool mt_bad(mt_thread_t *t, const char *what, size_t i, size_t n) {
  snprintf(t->why, sizeof(t->why), "thread %d: %s at %zu of %zu", t->id, what, i, n);
  return false;
}

static bool mt_check(mt_thread_t *t, const uint8_t *p) {
  size_t n, mid0, mid1;
  uint64_t tag;
  memcpy(&n, p, 8);
  memcpy(&tag, p + 8, 8);
  if (n < 16 || n > BN_POOL_MAX + 8000) return mt_bad(t, "bad length", 0, n);
  mt_span(n, &mid0, &mid1);
  for (size_t i = 16; i < mid0; i++)
    if (p[i] != mt_byte(tag, i)) return mt_bad(t, "byte", i, n);
  if (mid1 > mid0 &&
      (p[mid0] != (uint8_t)(tag >> 13) || memcmp(p + mid0, p + mid0 + 1, mid1 - mid0 - 1) != 0))
    return mt_bad(t, "middle", mid0, n);
  for (size_t i = mid1; i < n; i++)
    if (p[i] != mt_byte(tag, i)) return mt_bad(t, "byte", i, n);
  t->bytes += n;
  return true;
}

static void mt_consume(mt_thread_t *t, uint8_t **keep, uint8_t *m) {
  if (!mt_check(t, m)) t->bad++;
  t->consumed++;
  /* One in 8 is kept for a while (an application holding a message); the
   * one it displaces is freed. */
  if (mt_rnd(t) % 8 == 0) {
    size_t k = (size_t)(mt_rnd(t) % MT_KEEP);
    uint8_t *old = keep[k];
    keep[k] = m;
    m = old;
  }
  bn_pool_free(m);
}

static bool mt_dequeue(mt_link_t *l, uint8_t **m) {
  MT_IGNORE_BEGIN();
  bool ok = ck_ring_dequeue_spsc(&l->ring, l->slots, m);
  MT_IGNORE_END();
  if (ok) BN_TSAN_ACQUIRE(*m);
  return ok;
}

static void *mt_main(void *arg) {
  mt_thread_t *t = arg;
  mt_shared_t *sh = t->sh;
  mt_thread_t *peer = &sh->th[1 - t->id];
  uint8_t *keep[MT_KEEP] = {0};
  uint8_t *pending = NULL;
  bool producing = true;
  /* Thread 0 holds back its frees, as the loop thread does. */
  if (t->id == 0 && bn_pool_defer_begin(sh->pool) != 0) {
    snprintf(t->why, sizeof(t->why), "thread 0: bn_pool_defer_begin failed");
    t->bad++;
  }
  for (uint64_t iter = 0;; iter++) {
    if (producing && pending == NULL) {
      if (t->produced >= MT_MSGS_PER_THREAD || ((iter & 63) == 0 && now_ns() >= sh->deadline_ns)) {
        producing = false;
        atomic_store_explicit(&t->done_producing, true, memory_order_release);
      } else {
        size_t n = mt_size(t);
        pending = bn_pool_alloc(sh->pool, n);
        if (pending == NULL || (uintptr_t)pending % 16 != 0) {
          snprintf(t->why, sizeof(t->why), "thread %d: alloc(%zu) gave %p", t->id, n,
                   (void *)pending);
          t->bad++;
          producing = false;
          atomic_store_explicit(&t->done_producing, true, memory_order_release);
        } else {
          mt_fill(pending, n, mt_rnd(t) | 1);
        }
      }
    }
    if (pending) {
      BN_TSAN_RELEASE(pending);
      MT_IGNORE_BEGIN();
      bool ok = ck_ring_enqueue_spsc(&t->out->ring, t->out->slots, pending);
      MT_IGNORE_END();
      if (ok) {
        pending = NULL;
        t->produced++;
      }
    }
    /* Drain a batch; once the peer stopped producing and the ring is empty,
     * this thread's receiving is over. */
    bool peer_done = atomic_load_explicit(&peer->done_producing, memory_order_acquire);
    uint8_t *m;
    int got = 0;
    while (got < 64 && mt_dequeue(t->in, &m)) {
      mt_consume(t, keep, m);
      got++;
    }
    if (!producing && peer_done && got == 0) break;
    if (got == 0 && pending) sched_yield();
  }
  /* The owner closes the pool once both threads stopped producing; the
   * kept buffers are freed after that (some while the other thread still
   * frees its own): the last free releases the pool. */
  while (!atomic_load_explicit(&sh->closed, memory_order_acquire))
    sched_yield();
  for (size_t k = 0; k < MT_KEEP; k++) {
    if (!keep[k]) continue;
    if (!mt_check(t, keep[k])) t->bad++;
    bn_pool_free(keep[k]);
    t->kept_after_close++;
  }
  bn_pool_defer_end(); /* thread 0: gives back (frees: closed) what it held */
  return NULL;
}

static void test_pool_mt(void **state) {
  (void)state;
  double seconds = getenv("BFTNET_TEST_QUICK") ? 3.0 : 5.0;
  const char *e = getenv("BFTNET_POOL_MT_SECONDS");
  if (e) seconds = strtod(e, NULL);
  long live0 = th_live_blocks();
  mt_shared_t *sh = calloc(1, sizeof(*sh));
  assert_non_null(sh);
  sh->pool = bn_pool_new(512u * 1024u); /* below the working set: some frees really free */
  assert_non_null(sh->pool);
  sh->deadline_ns = now_ns() + (uint64_t)(seconds * 1e9);
  atomic_init(&sh->closed, false);
  uint64_t seed = th_seed();
  pthread_t tid[2];
  for (int i = 0; i < 2; i++) {
    ck_ring_init(&sh->link[i].ring, MT_RING);
    mt_thread_t *t = &sh->th[i];
    t->sh = sh;
    t->id = i;
    t->rng = th_rng_init(seed + (uint64_t)i + 1);
    t->out = &sh->link[i];
    t->in = &sh->link[1 - i];
    atomic_init(&t->done_producing, false);
  }
  for (int i = 0; i < 2; i++)
    assert_int_equal(pthread_create(&tid[i], NULL, mt_main, &sh->th[i]), 0);
  while (!atomic_load_explicit(&sh->th[0].done_producing, memory_order_acquire) ||
         !atomic_load_explicit(&sh->th[1].done_producing, memory_order_acquire))
    nanosleep(&(struct timespec){.tv_nsec = 1000000},
              NULL); /* 2 cores: leave them to the workers */
  size_t cached = bn_pool_cached(sh->pool);
  bn_pool_close(sh->pool); /* while the threads still drain and free */
  atomic_store_explicit(&sh->closed, true, memory_order_release);
  for (int i = 0; i < 2; i++)
    assert_int_equal(pthread_join(tid[i], NULL), 0);

  for (int i = 0; i < 2; i++) {
    mt_thread_t *t = &sh->th[i];
    if (t->bad) fail_msg("%llu bad messages; first: %s", (unsigned long long)t->bad, t->why);
    assert_int_equal(t->consumed, sh->th[1 - i].produced);
  }
  fprintf(stderr,
          "pool mt: %llu + %llu messages (%.1f + %.1f MB), %llu + %llu freed after close, %zu B "
          "cached at close\n",
          (unsigned long long)sh->th[0].produced, (unsigned long long)sh->th[1].produced,
          (double)sh->th[1].bytes / 1e6, (double)sh->th[0].bytes / 1e6,
          (unsigned long long)sh->th[0].kept_after_close,
          (unsigned long long)sh->th[1].kept_after_close, cached);
  assert_true(sh->th[0].produced > 1000 && sh->th[1].produced > 1000);
  free(sh);
  assert_int_equal(th_live_blocks(), live0); /* every buffer, the cache and the pool freed */
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_size_classes),  cmocka_unit_test(test_reuse_lifo),
      cmocka_unit_test(test_cache_cap),     cmocka_unit_test(test_lifetime),
      cmocka_unit_test(test_defer),         cmocka_unit_test(test_null_pool),
      cmocka_unit_test(test_alloc_failure),
  };
  const struct CMUnitTest mt_tests[] = {
      cmocka_unit_test(test_pool_mt),
  };
  if (argc > 1 && strcmp(argv[1], "mt") == 0) return cmocka_run_group_tests(mt_tests, NULL, NULL);
  return cmocka_run_group_tests(tests, setup_rng, NULL);
}
