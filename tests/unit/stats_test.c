/* stats_test — tools/lib/stats: latency percentiles on known data, the
 * sequence tracker as tables, payload round trips, integrity verdicts. */
#include <math.h>

#include "harness.h"
#include "stats.h"

/* Relative closeness: |got - want| <= want * tol. */
static void assert_near(uint64_t got, double want, double tol, const char *what) {
  double d = fabs((double)got - want);
  if (d > want * tol)
    fail_msg("%s: got %llu, want %.1f +- %.2f%%", what, (unsigned long long)got, want, tol * 100);
}

/* ------------------------------------------------------ latency recorder */

static stats_lat_t lat_a, lat_b, lat_c; /* ~36 KiB each: not on the stack */

static void test_lat_1_to_1000(void **st) {
  (void)st;
  stats_lat_reset(&lat_a);
  for (uint64_t v = 1; v <= 1000; v++)
    stats_lat_record(&lat_a, v);
  assert_int_equal(stats_lat_count(&lat_a), 1000);
  assert_int_equal(stats_lat_min(&lat_a), 1);
  assert_int_equal(stats_lat_max(&lat_a), 1000);
  assert_true(fabs(stats_lat_mean(&lat_a) - 500.5) < 1e-9);
  assert_near(stats_lat_percentile(&lat_a, 50), 500, 0.01, "p50");
  assert_near(stats_lat_percentile(&lat_a, 90), 900, 0.01, "p90");
  assert_near(stats_lat_percentile(&lat_a, 99), 990, 0.01, "p99");
  assert_near(stats_lat_percentile(&lat_a, 99.9), 999, 0.01, "p99.9");
  assert_int_equal(stats_lat_percentile(&lat_a, 100), 1000);
  assert_int_equal(stats_lat_percentile(&lat_a, 0), 1);
  assert_int_equal(stats_lat_percentile(&lat_a, 0.1), 1);    /* rank 1 */
  assert_int_equal(stats_lat_percentile(&lat_a, 12.7), 127); /* exact below 256 */
  assert_int_equal(stats_lat_percentile(&lat_a, -5), 1);     /* clamped */
  assert_int_equal(stats_lat_percentile(&lat_a, 500), 1000);
}

static void test_lat_constant(void **st) {
  (void)st;
  stats_lat_reset(&lat_a);
  for (int i = 0; i < 5000; i++)
    stats_lat_record(&lat_a, 123456789);
  const double ps[] = {0, 1, 50, 90, 99, 99.99, 100};
  for (size_t i = 0; i < sizeof ps / sizeof *ps; i++)
    assert_int_equal(stats_lat_percentile(&lat_a, ps[i]), 123456789); /* clamped to min..max */
  assert_int_equal(stats_lat_max(&lat_a), 123456789);
  assert_true(stats_lat_mean(&lat_a) == 123456789.0);
}

static void test_lat_empty(void **st) {
  (void)st;
  stats_lat_reset(&lat_a);
  assert_int_equal(stats_lat_count(&lat_a), 0);
  assert_int_equal(stats_lat_percentile(&lat_a, 50), 0);
  assert_int_equal(stats_lat_percentile(&lat_a, 100), 0);
  assert_int_equal(stats_lat_max(&lat_a), 0);
  assert_int_equal(stats_lat_min(&lat_a), 0);
  assert_true(stats_lat_mean(&lat_a) == 0.0);
  stats_lat_reset(&lat_b);
  stats_lat_merge(&lat_a, &lat_b);
  assert_int_equal(stats_lat_count(&lat_a), 0);
  assert_int_equal(stats_lat_min(&lat_a), 0);
  stats_lat_record(&lat_a, 0); /* zero is a value, not "empty" */
  assert_int_equal(stats_lat_count(&lat_a), 1);
  assert_int_equal(stats_lat_percentile(&lat_a, 50), 0);
}

/* Every value lies in its bucket; buckets are contiguous and at most 1/128
 * of their values wide. */
static void test_lat_buckets(void **st) {
  (void)st;
  for (uint64_t v = 0; v < 70000; v++) {
    uint32_t i = stats_lat_bucket(v);
    uint64_t lo = stats_lat_bucket_low(i), w = stats_lat_bucket_width(i);
    if (!(lo <= v && v < lo + w))
      fail_msg("value %llu outside bucket %u", (unsigned long long)v, i);
    if (v < 256) assert_int_equal(w, 1);
  }
  for (uint32_t i = 0; i + 1 < STATS_LAT_BUCKETS; i++) {
    uint64_t lo = stats_lat_bucket_low(i), w = stats_lat_bucket_width(i);
    assert_int_equal(lo + w, stats_lat_bucket_low(i + 1));
    assert_int_equal(stats_lat_bucket(lo), i);
    assert_int_equal(stats_lat_bucket(lo + w - 1), i);
    if (lo >= 256) assert_true(w * 128 <= lo);
  }
  assert_int_equal(stats_lat_bucket(STATS_LAT_CLAMP - 1), STATS_LAT_BUCKETS - 1);
  assert_int_equal(stats_lat_bucket(UINT64_MAX), STATS_LAT_BUCKETS - 1);
}

static void test_lat_clamp(void **st) {
  (void)st;
  stats_lat_reset(&lat_a);
  stats_lat_record(&lat_a, 1000);
  stats_lat_record(&lat_a, UINT64_C(1) << 50);
  stats_lat_record(&lat_a, UINT64_MAX);
  assert_int_equal(lat_a.clamped, 2);
  assert_int_equal(stats_lat_max(&lat_a), UINT64_MAX);
  assert_int_equal(lat_a.sum, UINT64_MAX); /* saturated */
  assert_int_equal(stats_lat_percentile(&lat_a, 100), UINT64_MAX);
  assert_int_equal(stats_lat_percentile(&lat_a, 1), 1000);
}

static uint64_t xorshift(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Random latencies (log-uniform, 1 µs .. 1 s in ns) against exact sorted
 * percentiles; merging two halves equals recording everything. */
static void test_lat_random_vs_exact(void **st) {
  (void)st;
  enum { N = 20000 };
  static uint64_t vals[N];
  uint64_t s = th_seed() | 1;
  stats_lat_reset(&lat_a);
  stats_lat_reset(&lat_b);
  stats_lat_reset(&lat_c);
  for (int i = 0; i < N; i++) {
    double e = 3.0 + 6.0 * (double)(xorshift(&s) % 1000000) / 1e6;
    vals[i] = (uint64_t)pow(10.0, e);
    stats_lat_record(&lat_a, vals[i]);
    stats_lat_record(i % 2 ? &lat_b : &lat_c, vals[i]);
  }
  stats_lat_merge(&lat_b, &lat_c);
  assert_memory_equal(&lat_a, &lat_b, sizeof lat_a);
  qsort(vals, N, sizeof *vals, cmp_u64);
  const double ps[] = {1, 10, 50, 90, 99, 99.9};
  for (size_t i = 0; i < sizeof ps / sizeof *ps; i++) {
    size_t rank = (size_t)ceil(ps[i] * N / 100.0 - 1e-9);
    assert_near(stats_lat_percentile(&lat_a, ps[i]), (double)vals[rank - 1], 0.005, "random p");
  }
  assert_int_equal(stats_lat_max(&lat_a), vals[N - 1]);
  assert_int_equal(stats_lat_min(&lat_a), vals[0]);
}

/* ------------------------------------------------------ sequence tracker */

typedef struct seq_row {
  const char *name;
  uint64_t in[12];
  size_t n;
  stats_seq_result_t want[12];
  uint64_t max_seq, received, gaps, duplicates, reorders, stale, invalid;
} seq_row_t;

#define NX STATS_SEQ_NEXT
#define AH STATS_SEQ_AHEAD
#define DU STATS_SEQ_DUPLICATE
#define RE STATS_SEQ_REORDER
#define IV STATS_SEQ_INVALID

/* name, input, n, results | max_seq, received, gaps, duplicates, reorders, stale, invalid */
// clang-format off
static const seq_row_t seq_rows[] = {
    {"in order", {1, 2, 3, 4, 5}, 5, {NX, NX, NX, NX, NX}, 5, 5, 0, 0, 0, 0, 0},
    {"empty", {0}, 0, {NX}, 0, 0, 0, 0, 0, 0, 0},
    {"gaps", {1, 2, 5, 6, 9}, 5, {NX, NX, AH, NX, AH}, 9, 5, 4, 0, 0, 0, 0},
    {"late start (oldest dropped)", {4, 5, 6}, 3, {AH, NX, NX}, 6, 3, 3, 0, 0, 0, 0},
    {"duplicate", {1, 2, 2, 3}, 4, {NX, NX, DU, NX}, 3, 4, 0, 1, 0, 0, 0},
    {"duplicate of the first", {1, 2, 3, 1}, 4, {NX, NX, NX, DU}, 3, 4, 0, 1, 0, 0, 0},
    {"reorder fills a gap", {1, 3, 2, 4}, 4, {NX, AH, RE, NX}, 4, 4, 0, 0, 1, 0, 0},
    {"both", {1, 2, 4, 4, 3, 3, 6}, 7, {NX, NX, AH, DU, RE, DU, AH}, 6, 7, 1, 2, 1, 0, 0},
    {"zero is invalid", {0, 1, 0, 2}, 4, {IV, NX, IV, NX}, 2, 2, 0, 0, 0, 0, 2},
    /* 2 is 4998 below 5000: outside the window, counted stale + reorder;
     * 4999 is inside, unseen: a reorder that fills a gap; then a duplicate. */
    {"window", {1, 5000, 2, 4999, 4999}, 5, {NX, AH, RE, RE, DU}, 5000, 5, 4997, 1, 2, 1, 0},
    /* 4100 clears the positions of 6..4099; 4097 shares 1's position but
     * was never seen (reorder); 5 is still inside the window: duplicate. */
    {"window wraps", {1, 2, 3, 4, 5, 4100, 4097, 5}, 8, {NX, NX, NX, NX, NX, AH, RE, DU},
     4100, 8, 4093, 1, 1, 0, 0},
    {"jump beyond the window", {1, 4097, 1, 4096}, 4, {NX, AH, RE, RE}, 4097, 4, 4094, 0, 2, 1, 0},
};
// clang-format on

static void test_seq_table(void **st) {
  (void)st;
  for (size_t r = 0; r < sizeof seq_rows / sizeof *seq_rows; r++) {
    const seq_row_t *row = &seq_rows[r];
    stats_seq_t t;
    stats_seq_init(&t);
    for (size_t i = 0; i < row->n; i++) {
      stats_seq_result_t got = stats_seq_observe(&t, row->in[i]);
      if (got != row->want[i])
        fail_msg("%s: input %zu (seq %llu): got %d want %d", row->name, i,
                 (unsigned long long)row->in[i], got, row->want[i]);
    }
    if (t.max_seq != row->max_seq || t.received != row->received ||
        stats_seq_gaps(&t) != row->gaps || t.duplicates != row->duplicates ||
        t.reorders != row->reorders || t.stale != row->stale || t.invalid != row->invalid)
      fail_msg("%s: max %llu recv %llu gaps %llu dup %llu reo %llu stale %llu inv %llu", row->name,
               (unsigned long long)t.max_seq, (unsigned long long)t.received,
               (unsigned long long)stats_seq_gaps(&t), (unsigned long long)t.duplicates,
               (unsigned long long)t.reorders, (unsigned long long)t.stale,
               (unsigned long long)t.invalid);
  }
}

/* A long in-order run with periodic drops: gaps equal the drops exactly. */
static void test_seq_long_run(void **st) {
  (void)st;
  stats_seq_t t;
  stats_seq_init(&t);
  uint64_t dropped = 0;
  for (uint64_t s = 1; s <= 1000000; s++) {
    if (s % 97 == 0 || (s > 5000 && s < 9000)) {
      dropped++;
      continue;
    }
    stats_seq_observe(&t, s);
  }
  assert_int_equal(stats_seq_gaps(&t), dropped);
  assert_int_equal(t.duplicates + t.reorders, 0);
  assert_int_equal(t.received + dropped, 1000000);
}

/* ------------------------------------------------------- load payloads */

static void test_payload_round_trip(void **st) {
  (void)st;
  uint8_t buf[64];
  memset(buf, 0xee, sizeof buf);
  assert_int_equal(stats_payload_encode(buf, 40, 0x0102030405060708ull, 0x1112131415161718ull), 0);
  const uint8_t want_hdr[16] = {1,    2,    3,    4,    5,    6,    7,    8,
                                0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18};
  assert_memory_equal(buf, want_hdr, 16);
  for (size_t i = 16; i < 40; i++)
    assert_int_equal(buf[i], (uint8_t)i);
  assert_int_equal(buf[40], 0xee); /* nothing past len */
  uint64_t seq = 0, t = 0;
  assert_int_equal(stats_payload_decode(buf, 40, &seq, &t), 0);
  assert_int_equal(seq, 0x0102030405060708ull);
  assert_int_equal(t, 0x1112131415161718ull);

  const uint64_t seqs[] = {1, 255, 256, UINT32_MAX, UINT64_MAX};
  for (size_t i = 0; i < sizeof seqs / sizeof *seqs; i++) {
    assert_int_equal(stats_payload_encode(buf, 16, seqs[i], ~seqs[i]), 0); /* minimum size */
    assert_int_equal(stats_payload_decode(buf, 16, &seq, &t), 0);
    assert_int_equal(seq, seqs[i]);
    assert_int_equal(t, ~seqs[i]);
  }
}

static void test_payload_foreign(void **st) {
  (void)st;
  uint8_t buf[16] = {0};
  uint64_t seq = 7, t = 9;
  for (size_t len = 0; len < 16; len++) {
    assert_int_equal(stats_payload_decode(buf, len, &seq, &t), BFTNET_EINVAL);
    assert_int_equal(stats_payload_encode(buf, len, 1, 1), BFTNET_EINVAL);
  }
  assert_int_equal(seq, 7); /* untouched */
  assert_int_equal(t, 9);
  assert_int_equal(stats_payload_decode(NULL, 16, &seq, &t), BFTNET_EINVAL);
}

/* ---------------------------------------------------- integrity verdicts */

static void test_verdicts(void **st) {
  (void)st;
  stats_seq_t t;
  stats_seq_init(&t);
  assert_int_equal(stats_verdict_local(&t, 0), STATS_OK); /* nothing received */
  for (uint64_t s = 1; s <= 10; s++)
    stats_seq_observe(&t, s);
  assert_int_equal(stats_verdict_local(&t, 0), STATS_OK);
  stats_seq_observe(&t, 13); /* 11, 12 missing */
  assert_int_equal(stats_verdict_local(&t, 0), STATS_UNVERIFIED);
  assert_int_equal(stats_verdict_local(&t, 1), STATS_UNVERIFIED);
  assert_int_equal(stats_verdict_local(&t, 2), STATS_OK); /* e.g. tentative_evicted */
  stats_seq_observe(&t, 12);
  assert_int_equal(stats_verdict_local(&t, 5), STATS_VIOLATED);
  stats_seq_init(&t);
  stats_seq_observe(&t, 1);
  stats_seq_observe(&t, 1);
  assert_int_equal(stats_verdict_local(&t, 0), STATS_VIOLATED);

  /* sent, dropped, aborted | delivered, dups, reorders, rx_explained */
  assert_int_equal(stats_verdict_pair(100, 0, 0, 100, 0, 0, 0), STATS_OK);
  assert_int_equal(stats_verdict_pair(100, 7, 3, 90, 0, 0, 0), STATS_OK);
  assert_int_equal(stats_verdict_pair(100, 7, 0, 90, 0, 0, 3), STATS_OK);
  assert_int_equal(stats_verdict_pair(100, 7, 0, 90, 0, 0, 0),
                   STATS_VIOLATED); /* 3 lost, uncounted */
  assert_int_equal(stats_verdict_pair(100, 0, 0, 101, 0, 0, 0),
                   STATS_VIOLATED); /* more than sent */
  assert_int_equal(stats_verdict_pair(100, 0, 0, 100, 1, 0, 0), STATS_VIOLATED);
  assert_int_equal(stats_verdict_pair(100, 0, 0, 100, 0, 1, 0), STATS_VIOLATED);
  assert_int_equal(stats_verdict_pair(5, 6, 0, 0, 0, 0, 0), STATS_VIOLATED);
  assert_int_equal(stats_verdict_pair(5, 3, 3, 0, 0, 0, 0), STATS_VIOLATED);
  assert_int_equal(stats_verdict_pair(0, 0, 0, 0, 0, 0, 0), STATS_OK);
  /* Aborted = not confirmed read: some may have arrived, never more. */
  assert_int_equal(stats_verdict_pair(100, 7, 3, 92, 0, 0, 0), STATS_OK);
  assert_int_equal(stats_verdict_pair(100, 7, 3, 93, 0, 0, 0), STATS_OK);
  assert_int_equal(stats_verdict_pair(100, 7, 3, 94, 0, 0, 0), STATS_VIOLATED);

  assert_int_equal(stats_verdict_worst(STATS_OK, STATS_UNVERIFIED), STATS_UNVERIFIED);
  assert_int_equal(stats_verdict_worst(STATS_VIOLATED, STATS_UNVERIFIED), STATS_VIOLATED);
  assert_int_equal(stats_verdict_worst(STATS_OK, STATS_OK), STATS_OK);
  assert_string_equal(stats_verdict_name(STATS_OK), "ok");
  assert_string_equal(stats_verdict_name(STATS_UNVERIFIED), "unverified");
  assert_string_equal(stats_verdict_name(STATS_VIOLATED), "violated");
}

/* ------------------------------------------- per-sender incarnations */

/* Feeds seqs [a, b] with the given restart-event count. */
static void rx_feed(stats_rx_t *rx, uint64_t a, uint64_t b, uint64_t events) {
  for (uint64_t s = a; s <= b; s++)
    stats_rx_observe(rx, s, events);
}

/* A restart announced by the event while old messages are still queued:
 * the old ones after the event stay with the old incarnation, the drop
 * back starts the new one; nothing is a duplicate or a reorder. */
static void test_rx_restart_event(void **st) {
  (void)st;
  stats_rx_t rx;
  stats_rx_init(&rx);
  rx_feed(&rx, 1, 100, 0);
  rx_feed(&rx, 101, 120, 1); /* event seen; old incarnation's tail still arrives */
  assert_int_equal(rx.incarnations, 1);
  assert_int_equal(stats_rx_observe(&rx, 3, 1), STATS_SEQ_AHEAD); /* 1, 2 lost */
  rx_feed(&rx, 4, 50, 1);
  assert_int_equal(rx.incarnations, 2);
  assert_int_equal(rx.by_event, 1);
  assert_int_equal(rx.by_seq, 0);
  stats_inc_t cur, tot;
  stats_rx_current(&rx, &cur);
  stats_rx_total(&rx, &tot);
  assert_int_equal(cur.start, STATS_INC_EVENT);
  assert_int_equal(cur.first_seq, 3);
  assert_int_equal(cur.max_seq, 50);
  assert_int_equal(cur.received, 48);
  assert_int_equal(cur.gaps, 2);
  assert_int_equal(tot.received, 168);
  assert_int_equal(tot.gaps, 2);
  assert_int_equal(tot.duplicates + tot.reorders, 0);
  assert_int_equal(rx.nhist, 1);
  assert_int_equal(rx.hist[0].max_seq, 120);
  assert_int_equal(rx.hist[0].first_seq, 1);
  assert_int_equal(stats_rx_verdict(&rx, 0), STATS_UNVERIFIED); /* the sender explains 2 */
  assert_int_equal(stats_rx_verdict(&rx, 2), STATS_OK);
  /* A real reorder inside the new incarnation is still one (the event is used). */
  rx_feed(&rx, 52, 52, 1);
  assert_int_equal(stats_rx_observe(&rx, 51, 1), STATS_SEQ_REORDER);
  assert_int_equal(rx.incarnations, 2);
  assert_int_equal(stats_rx_verdict(&rx, 10), STATS_VIOLATED);
}

/* No event: only a drop to exactly 1 is a new incarnation; an event that
 * arrives afterwards explains it (and does not arm a later switch). */
static void test_rx_restart_seq(void **st) {
  (void)st;
  stats_rx_t rx;
  stats_rx_init(&rx);
  rx_feed(&rx, 1, 10, 0);
  assert_int_equal(stats_rx_observe(&rx, 5, 0), STATS_SEQ_DUPLICATE); /* not 1: a duplicate */
  assert_int_equal(stats_rx_observe(&rx, 1, 0), STATS_SEQ_NEXT);      /* 1: new incarnation */
  assert_int_equal(rx.incarnations, 2);
  assert_int_equal(rx.by_seq, 1);
  assert_int_equal(rx.seq_unexplained, 1);
  rx_feed(&rx, 2, 5, 1); /* the event, late */
  assert_int_equal(rx.seq_unexplained, 0);
  assert_int_equal(rx.events_used, 1);
  assert_int_equal(stats_rx_observe(&rx, 3, 1), STATS_SEQ_DUPLICATE); /* not armed any more */
  assert_int_equal(rx.incarnations, 2);
  stats_inc_t tot;
  stats_rx_total(&rx, &tot);
  assert_int_equal(tot.duplicates, 2);
  assert_int_equal(stats_rx_verdict(&rx, 0), STATS_VIOLATED);
}

/* An event for a sender we never heard from is consumed by its first 1;
 * many restarts keep the last STATS_RX_HISTORY incarnations one by one. */
static void test_rx_many(void **st) {
  (void)st;
  stats_rx_t rx;
  stats_rx_init(&rx);
  rx_feed(&rx, 1, 5, 1);
  assert_int_equal(rx.events_used, 1);
  assert_int_equal(rx.incarnations, 1);
  assert_int_equal(rx.by_event + rx.by_seq, 0);
  for (uint64_t k = 2; k <= 20; k++) {
    rx_feed(&rx, 1, 5 + k, k); /* each restart announced */
    assert_int_equal(rx.incarnations, k);
  }
  assert_int_equal(rx.by_event, 19);
  assert_int_equal(rx.nhist, STATS_RX_HISTORY);
  assert_int_equal(rx.hist[STATS_RX_HISTORY - 1].max_seq, 5 + 19);
  stats_inc_t tot;
  stats_rx_total(&rx, &tot);
  uint64_t want = 0;
  for (uint64_t k = 1; k <= 20; k++)
    want += 5 + (k == 1 ? 0 : k);
  assert_int_equal(tot.received, want);
  assert_int_equal(tot.gaps + tot.duplicates + tot.reorders, 0);
  assert_int_equal(stats_rx_observe(&rx, 0, 20), STATS_SEQ_INVALID);
  stats_rx_total(&rx, &tot);
  assert_int_equal(tot.invalid, 1);
  assert_string_equal(stats_inc_start_name(STATS_INC_SEQ), "seq");
  assert_string_equal(stats_inc_start_name(STATS_INC_EVENT), "event");
  assert_string_equal(stats_inc_start_name(STATS_INC_FIRST), "first");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lat_1_to_1000),      cmocka_unit_test(test_lat_constant),
      cmocka_unit_test(test_lat_empty),          cmocka_unit_test(test_lat_buckets),
      cmocka_unit_test(test_lat_clamp),          cmocka_unit_test(test_lat_random_vs_exact),
      cmocka_unit_test(test_seq_table),          cmocka_unit_test(test_seq_long_run),
      cmocka_unit_test(test_payload_round_trip), cmocka_unit_test(test_payload_foreign),
      cmocka_unit_test(test_verdicts),           cmocka_unit_test(test_rx_restart_event),
      cmocka_unit_test(test_rx_restart_seq),     cmocka_unit_test(test_rx_many),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
