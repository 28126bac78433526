/* dispatcher_classes_test.c — the send side's traffic-class building
 * blocks, single-threaded:
 *  - the scheduler (sched.c): strict priority, the minimum share at every
 *    boundary (exact shares over many pieces, recursively for three
 *    levels), a sparse urgent class never waiting behind credit owed by
 *    busier levels, weights within a level, no banking for idle classes,
 *    blocked classes skipped;
 *  - keep-latest rings (klq.c): supersede only what is queued, the rest
 *    in order, exact counts; a randomized run against a reference model
 *    (the key index under backward-shift deletion); drop-oldest when full;
 *  - byte caps on drop-oldest and keep-latest rings;
 *  - the delay histogram's quantiles and the sampling rule.
 * Invariants (docs/ARCHITECTURE.md): 1 (what leaves a ring is an ordered
 * subsequence of what entered) and 2 (every message out of a ring is
 * popped, dropped or superseded, counted exactly), per ring (member and
 * class). Linked with the counting allocator: nothing leaks. */
#include "count_alloc.h"
#include "dispatcher.h"
#include "harness.h"

static uint64_t g_rng;

static int setup_rng(void **state) {
  (void)state;
  g_rng = th_rng_init(th_seed());
  return 0;
}

/* ------------------------------------------------------------ scheduler */

/* Serves `picks` pieces of `piece` bytes from always-ready classes `ready`
 * (bit i); bytes[i] gets what class i wrote. */
static void sched_run(disp_sched_t *s, uint32_t ready, unsigned picks, size_t piece,
                      uint64_t *bytes) {
  for (unsigned k = 0; k < picks; k++) {
    int c = disp_sched_pick(s, ready, ready);
    assert_true(c >= 0 && (ready & (1u << c)));
    bytes[c] += piece;
    disp_sched_served(s, (unsigned)c, piece, ready);
  }
}

static void test_sched_strict_priority(void **state) {
  (void)state;
  disp_sched_t s;
  const uint8_t prio[3] = {2, 0, 1};
  const uint32_t w[3] = {1, 1, 1};
  disp_sched_init(&s, 3, prio, w, 0); /* no minimum share */
  uint64_t bytes[3] = {0};
  sched_run(&s, 7, 1000, DISP_PIECE, bytes);
  assert_int_equal(bytes[1], 1000ull * DISP_PIECE); /* priority 0 takes everything */
  assert_int_equal(bytes[0] + bytes[2], 0);
  memset(bytes, 0, sizeof bytes);
  sched_run(&s, 5, 1000, DISP_PIECE, bytes); /* class 1 idle: priority 1 next */
  assert_int_equal(bytes[2], 1000ull * DISP_PIECE);
  assert_int_equal(disp_sched_pick(&s, 0, 0), -1);
}

static void test_sched_min_share(void **state) {
  (void)state;
  const uint32_t shares[] = {10, 20, 50};
  for (size_t t = 0; t < BN_ARRAY_LEN(shares); t++) {
    disp_sched_t s;
    const uint8_t prio[2] = {0, 5};
    const uint32_t w[2] = {1, 1};
    disp_sched_init(&s, 2, prio, w, shares[t]);
    uint64_t bytes[2] = {0};
    sched_run(&s, 3, 20000, DISP_PIECE, bytes);
    double low = (double)bytes[1] / (double)(bytes[0] + bytes[1]);
    print_message("min share %u %%: the lower level got %.2f %%\n", shares[t], 100 * low);
    assert_true(low >= shares[t] / 100.0 - 0.005 && low <= shares[t] / 100.0 + 0.01);
  }
  /* Small urgent pieces (64 B) still give the lower level its share, in
   * whole pieces once a piece's worth is owed. */
  disp_sched_t s;
  const uint8_t prio[2] = {0, 1};
  const uint32_t w[2] = {1, 1};
  disp_sched_init(&s, 2, prio, w, 10);
  uint64_t bytes[2] = {0};
  for (unsigned k = 0; k < 200000; k++) {
    int c = disp_sched_pick(&s, 3, 3);
    size_t n = c == 0 ? 64 : DISP_PIECE;
    bytes[c] += n;
    disp_sched_served(&s, (unsigned)c, n, 3);
  }
  double low = (double)bytes[1] / (double)(bytes[0] + bytes[1]);
  assert_true(low >= 0.095 && low <= 0.11);
}

/* Three saturated levels: each boundary keeps its share of what is written
 * above it: 90 %, 9 %, 1 % with 10 %. */
static void test_sched_min_share_three_levels(void **state) {
  (void)state;
  disp_sched_t s;
  const uint8_t prio[3] = {0, 1, 2};
  const uint32_t w[3] = {1, 1, 1};
  disp_sched_init(&s, 3, prio, w, 10);
  uint64_t bytes[3] = {0};
  sched_run(&s, 7, 100000, DISP_PIECE, bytes);
  double tot = (double)(bytes[0] + bytes[1] + bytes[2]);
  print_message("three levels: %.2f / %.2f / %.2f %%\n", 100 * bytes[0] / tot, 100 * bytes[1] / tot,
                100 * bytes[2] / tot);
  assert_true(bytes[0] / tot >= 0.885 && bytes[0] / tot <= 0.905);
  assert_true(bytes[1] / tot >= 0.08 && bytes[1] / tot <= 0.10);
  assert_true(bytes[2] / tot >= 0.008 && bytes[2] / tot <= 0.012);
}

/* Votes (level 0) come one now and then; blocks (1) and bulk (2) always
 * have data. Whenever a vote is ready it goes first: the credit the bulk
 * earned from the blocks never lets it cut in front of a vote. */
static void test_sched_sparse_urgent_first(void **state) {
  (void)state;
  disp_sched_t s;
  const uint8_t prio[3] = {0, 1, 2};
  const uint32_t w[3] = {1, 1, 1};
  disp_sched_init(&s, 3, prio, w, 10);
  uint64_t bytes[3] = {0};
  unsigned votes = 0;
  for (unsigned k = 0; k < 100000; k++) {
    uint32_t ready = 6 | (k % 7 == 0 ? 1u : 0u);
    int c = disp_sched_pick(&s, ready, ready);
    if (ready & 1) {
      assert_int_equal(c, 0);
      votes++;
    }
    size_t n = c == 0 ? 64 : DISP_PIECE;
    bytes[c] += n;
    disp_sched_served(&s, (unsigned)c, n, ready);
  }
  assert_int_equal(votes, (100000 + 6) / 7);
  assert_true(bytes[2] > 0); /* bulk still gets its share of the blocks' bytes */
}

static void test_sched_weights_and_banking(void **state) {
  (void)state;
  disp_sched_t s;
  const uint8_t prio[3] = {3, 3, 3};
  const uint32_t w[3] = {1, 3, 4};
  disp_sched_init(&s, 3, prio, w, 10);
  uint64_t bytes[3] = {0};
  sched_run(&s, 3, 40000, DISP_PIECE, bytes); /* classes 0 and 1: 1:3 */
  double r = (double)bytes[1] / (double)bytes[0];
  assert_true(r > 2.95 && r < 3.05);
  /* Class 2 was idle all along: it banked nothing, and shares 4:3:1 from
   * now on instead of running alone for a long while. */
  memset(bytes, 0, sizeof bytes);
  unsigned first = 0;
  for (unsigned k = 0; k < 8000; k++) {
    int c = disp_sched_pick(&s, 7, 7);
    bytes[c] += DISP_PIECE;
    if (c == 2 && k < 16) first++;
    disp_sched_served(&s, (unsigned)c, DISP_PIECE, 7);
  }
  assert_true(first <= 10); /* no exclusive run on arrival */
  assert_true(bytes[2] > bytes[1] && bytes[1] > bytes[0]);
  r = (double)bytes[2] / (double)bytes[0];
  assert_true(r > 3.8 && r < 4.2);
  /* A class that waits but cannot write now is skipped. */
  assert_int_equal(disp_sched_pick(&s, 2, 7), 1);
}

/* -------------------------------------------------------- keep-latest */

static disp_msg_t *kmsg(uint64_t key, uint32_t v, size_t len) {
  uint8_t b[256] = {0};
  assert_true(len >= 4 && len <= sizeof b);
  bn_store_be32(b, v);
  disp_msg_t *m = disp_msg_new(NULL, b, len, 1);
  assert_non_null(m);
  m->key = key;
  return m;
}

static uint32_t kval(const disp_msg_t *m) {
  return bn_load_be32(m->data);
}

static void test_keep_latest_supersede_in_order(void **state) {
  (void)state;
  long live = th_live_blocks();
  disp_ring_t r;
  assert_ok(disp_ring_init_ex(&r, 16, UINT64_MAX, true));
  /* (key, value): 1a 2b 1c 3d 2e 0f 0g 1h -> d e f g h */
  const uint64_t keys[] = {1, 2, 1, 3, 2, 0, 0, 1};
  for (uint32_t i = 0; i < 8; i++)
    assert_false(disp_ring_push_mpmc(&r, kmsg(keys[i], i, 4)));
  assert_int_equal(ck_pr_load_64(&r.superseded), 3);
  assert_int_equal(ck_pr_load_64(&r.enqueued), 8);
  assert_int_equal(disp_ring_depth(&r), 5);
  disp_msg_t *out[16];
  assert_int_equal(disp_ring_pop_batch_mpmc(&r, out, 2), 2);
  /* Popped (being written): a new key-3 message does not replace it. */
  assert_false(disp_ring_push_mpmc(&r, kmsg(3, 100, 4)));
  assert_int_equal(ck_pr_load_64(&r.superseded), 3);
  assert_int_equal(disp_ring_pop_batch_mpmc(&r, out + 2, 16), 4);
  const uint32_t want[] = {3, 4, 5, 6, 7, 100};
  for (int i = 0; i < 6; i++) {
    assert_int_equal(kval(out[i]), want[i]);
    disp_msg_release(out[i]);
  }
  /* Full (cap - 1 = 15 fit): the oldest goes, counted as dropped. */
  for (uint32_t i = 0; i < 16; i++)
    disp_ring_push_mpmc(&r, kmsg(1000 + i, i, 4));
  assert_int_equal(ck_pr_load_64(&r.dropped), 1);
  assert_int_equal(disp_ring_depth(&r), 15);
  assert_int_equal(disp_ring_destroy(&r), 15);
  assert_int_equal(th_live_blocks(), live);
}

/* Random pushes (a few keys, some 0) and pops against a model: a plain
 * array FIFO where a keyed push removes the same key's entry. */
static void test_keep_latest_model(void **state) {
  (void)state;
  enum { CAP = 64, OPS = 200000 };
  long live = th_live_blocks();
  disp_ring_t r;
  assert_ok(disp_ring_init_ex(&r, CAP, UINT64_MAX, true));
  uint32_t model_v[CAP];
  uint64_t model_k[CAP];
  unsigned n = 0;
  uint64_t pushed = 0, popped = 0, superseded = 0, dropped = 0;
  for (uint32_t op = 0; op < OPS; op++) {
    if (th_rnd(&g_rng) % 4) { /* push */
      uint64_t key = th_rnd(&g_rng) % 5 == 0 ? 0 : 1 + th_rnd(&g_rng) % 100;
      for (unsigned i = 0; key && i < n; i++)
        if (model_k[i] == key) {
          memmove(&model_v[i], &model_v[i + 1], (n - i - 1) * sizeof *model_v);
          memmove(&model_k[i], &model_k[i + 1], (n - i - 1) * sizeof *model_k);
          n--;
          superseded++;
          break;
        }
      if (n == CAP - 1) {
        memmove(&model_v[0], &model_v[1], (n - 1) * sizeof *model_v);
        memmove(&model_k[0], &model_k[1], (n - 1) * sizeof *model_k);
        n--;
        dropped++;
      }
      model_v[n] = op;
      model_k[n++] = key;
      disp_ring_push_mpmc(&r, kmsg(key, op, 4));
      pushed++;
    } else { /* pop a few */
      disp_msg_t *out[8];
      unsigned want = 1 + (unsigned)(th_rnd(&g_rng) % 4);
      unsigned got = disp_ring_pop_batch_mpmc(&r, out, want);
      assert_int_equal(got, BN_MIN(want, n));
      for (unsigned i = 0; i < got; i++) {
        assert_int_equal(kval(out[i]), model_v[i]);
        disp_msg_release(out[i]);
      }
      memmove(&model_v[0], &model_v[got], (n - got) * sizeof *model_v);
      memmove(&model_k[0], &model_k[got], (n - got) * sizeof *model_k);
      n -= got;
      popped += got;
    }
    assert_int_equal(disp_ring_depth(&r), n);
  }
  assert_int_equal(ck_pr_load_64(&r.superseded), superseded);
  assert_int_equal(ck_pr_load_64(&r.dropped), dropped);
  assert_int_equal(pushed, popped + superseded + dropped + n); /* invariant 2, exact */
  print_message("keep-latest model: %llu pushed, %llu popped, %llu superseded, %llu dropped\n",
                (unsigned long long)pushed, (unsigned long long)popped,
                (unsigned long long)superseded, (unsigned long long)dropped);
  assert_true(superseded > 1000 && dropped > 0);
  assert_int_equal(disp_ring_destroy(&r), n);
  assert_int_equal(th_live_blocks(), live);
}

/* ------------------------------------------------------------ byte caps */

static void test_ring_byte_cap(void **state) {
  (void)state;
  long live = th_live_blocks();
  for (int keep_latest = 0; keep_latest <= 1; keep_latest++) {
    disp_ring_t r;
    assert_ok(disp_ring_init_ex(&r, 64, 1000, keep_latest));
    for (uint32_t i = 0; i < 10; i++) {
      bool dropped = disp_ring_push_mpmc(&r, kmsg(0, i, 200));
      assert_int_equal(dropped, i >= 5); /* 5 x 200 fit in 1000 */
      assert_true(ck_pr_load_64(&r.bytes) <= 1000);
    }
    assert_int_equal(ck_pr_load_64(&r.dropped), 5);
    /* A message larger than the cap goes alone. */
    assert_true(disp_ring_push_mpmc(&r, kmsg(0, 99, 256)));
    disp_msg_t *out[16];
    unsigned got = disp_ring_pop_batch_mpmc(&r, out, 16);
    assert_int_equal(got, 4); /* 3 x 200 + 256 <= 1000: two more went */
    const uint32_t want[] = {7, 8, 9, 99};
    for (unsigned i = 0; i < got; i++) {
      assert_int_equal(kval(out[i]), want[i]);
      disp_msg_release(out[i]);
    }
    assert_int_equal(ck_pr_load_64(&r.dropped), 7);
    assert_int_equal(ck_pr_load_64(&r.bytes), 0);
    uint8_t big[2000] = {0};
    disp_msg_t *m = disp_msg_new(NULL, big, sizeof big, 1);
    assert_false(disp_ring_push_mpmc(&r, m)); /* larger than the cap, the ring empty: kept */
    assert_int_equal(disp_ring_destroy(&r), 1);
  }
  disp_ring_t r;
  assert_err(disp_ring_init_ex(&r, 64, 0, false), BFTNET_EINVAL);
  assert_int_equal(th_live_blocks(), live);
}

/* ----------------------------------------------------- delay histogram */

static void test_hist_quantiles(void **state) {
  (void)state;
  static disp_hist_t h;
  memset(&h, 0, sizeof h);
  assert_int_equal(disp_hist_quantile(&h, 0.5), 0);
  /* 1000 samples: 1..1000 us; p50 ~ 500 us, p99 ~ 990 us, within 12.5 %. */
  for (uint64_t i = 1; i <= 1000; i++)
    disp_hist_add(&h, i * 1000, 1);
  uint64_t p50 = disp_hist_quantile(&h, 0.5), p99 = disp_hist_quantile(&h, 0.99);
  assert_true(p50 >= 437500 && p50 <= 562500);
  assert_true(p99 >= 866000 && p99 <= 1000000);
  assert_int_equal(h.max, 1000000);
  /* A weighted sample counts as many. */
  disp_hist_add(&h, 5000000000ull, 4000);
  assert_true(disp_hist_quantile(&h, 0.5) > 4000000000ull);
  assert_int_equal(h.samples, 1001);
  disp_hist_add(&h, UINT64_MAX / 2, 1); /* beyond the last bucket: clamped */
  assert_true(disp_hist_quantile(&h, 1.0) > 0);
}

static void test_sample_weight(void **state) {
  (void)state;
  disp_ring_t r;
  assert_ok(disp_ring_init(&r, 1024));
  assert_int_equal(disp_ring_sample_weight(&r), 1); /* empty: always */
  unsigned sampled = 0;
  for (uint32_t i = 0; i < 160; i++) {
    uint32_t w = disp_ring_sample_weight(&r);
    if (i > 0) assert_true(w == 0 || w == DISP_SAMPLE_EVERY);
    sampled += w != 0;
    disp_ring_push_mpmc(&r, kmsg(0, i, 4));
  }
  assert_int_equal(sampled, 1 + 160 / DISP_SAMPLE_EVERY - 0); /* the first, then 1 in 16 */
  disp_ring_destroy(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sched_strict_priority),
      cmocka_unit_test(test_sched_min_share),
      cmocka_unit_test(test_sched_min_share_three_levels),
      cmocka_unit_test(test_sched_sparse_urgent_first),
      cmocka_unit_test(test_sched_weights_and_banking),
      cmocka_unit_test(test_keep_latest_supersede_in_order),
      cmocka_unit_test(test_keep_latest_model),
      cmocka_unit_test(test_ring_byte_cap),
      cmocka_unit_test(test_hist_quantiles),
      cmocka_unit_test(test_sample_weight),
  };
  return cmocka_run_group_tests(tests, setup_rng, NULL);
}
