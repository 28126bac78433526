/* cluster_stats: aggregate percentiles (exact on identical parts, bounded
 * by the parts on any input), the per-pair cross-check and its loss
 * classification, the verdict line, CSV rows and latency formatting. */
#include <math.h>

#include "cluster_stats.h"
#include "harness.h"

/* ------------------------------------------------ aggregate percentiles */

static cluster_qpart_t part2(double w, double p50, double p99) {
  cluster_qpart_t p;
  memset(&p, 0, sizeof p);
  p.weight = w;
  cluster_qpart_point(&p, 0.5, p50);
  cluster_qpart_point(&p, 0.99, p99);
  return p;
}

static void assert_close(double got, double want) {
  if (!(fabs(got - want) <= 1e-6 * (fabs(want) > 1 ? fabs(want) : 1)))
    fail_msg("got %.9g, want %.9g", got, want);
}

static void test_mix_identical(void **state) {
  cluster_qpart_t p[3] = {part2(100, 80, 400), part2(5000, 80, 400), part2(1, 80, 400)};
  assert_close(cluster_quantile_mix(p, 3, 0.5), 80);
  assert_close(cluster_quantile_mix(p, 3, 0.99), 400);
  /* One part: its own points, and linear in between. */
  assert_close(cluster_quantile_mix(p, 1, 0.5), 80);
  assert_close(cluster_quantile_mix(p, 1, 0.25), 40);
  assert_close(cluster_quantile_mix(p, 1, 0.745), 240);
  /* Four points, the last one the max at level 1. */
  cluster_qpart_t q;
  memset(&q, 0, sizeof q);
  q.weight = 10;
  cluster_qpart_point(&q, 0.5, 60);
  cluster_qpart_point(&q, 0.9, 90);
  cluster_qpart_point(&q, 0.99, 120);
  cluster_qpart_point(&q, 1.0, 2000);
  assert_close(cluster_quantile_mix(&q, 1, 0.9), 90);
  assert_close(cluster_quantile_mix(&q, 1, 1.0), 2000);
}

static void test_mix_weights(void **state) {
  /* A weight-0 or point-less part changes nothing. */
  cluster_qpart_t p[3] = {part2(100, 80, 400), part2(0, 1e6, 1e7), part2(50, 0, 0)};
  p[2].n = 0;
  assert_close(cluster_quantile_mix(p, 3, 0.5), 80);
  /* Nothing at all: NaN. */
  assert_true(isnan(cluster_quantile_mix(p + 1, 2, 0.5)));
  assert_true(isnan(cluster_quantile_mix(NULL, 0, 0.5)));
  /* The heavier part pulls the median toward its own. */
  cluster_qpart_t h[2] = {part2(900, 100, 200), part2(100, 1000, 2000)};
  double m = cluster_quantile_mix(h, 2, 0.5);
  assert_true(m >= 100 && m < 200);
  /* Points out of order, NaN or negative are refused. */
  cluster_qpart_t bad;
  memset(&bad, 0, sizeof bad);
  cluster_qpart_point(&bad, 0.5, NAN);
  cluster_qpart_point(&bad, 0.5, -1);
  cluster_qpart_point(&bad, 0.99, 10);
  cluster_qpart_point(&bad, 0.5, 20);  /* level goes back */
  cluster_qpart_point(&bad, 0.999, 5); /* value goes back */
  assert_int_equal(bad.n, 1);
}

/* Whatever the parts, the mixture's p50 and p99 lie between the smallest
 * and the largest of the parts' p50 and p99 (randomized, seeded). */
static void test_mix_bounds(void **state) {
  uint64_t seed = th_seed(), x = seed | 1;
  for (int round = 0; round < 2000; round++) {
    cluster_qpart_t p[8];
    size_t n = 1 + round % 8;
    double lo50 = INFINITY, hi50 = 0, lo99 = INFINITY, hi99 = 0;
    for (size_t i = 0; i < n; i++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      double p50 = (double)(x % 100000) / 10.0;
      double p99 = p50 + (double)((x >> 20) % 1000000) / 10.0;
      p[i] = part2((double)(1 + (x >> 40) % 10000), p50, p99);
      lo50 = fmin(lo50, p50), hi50 = fmax(hi50, p50);
      lo99 = fmin(lo99, p99), hi99 = fmax(hi99, p99);
    }
    double m50 = cluster_quantile_mix(p, n, 0.5), m99 = cluster_quantile_mix(p, n, 0.99);
    if (!(m50 >= lo50 * (1 - 1e-9) && m50 <= hi50 * (1 + 1e-9) + 1e-9))
      fail_msg("seed %llu round %d: p50 %g outside [%g, %g]", (unsigned long long)seed, round, m50,
               lo50, hi50);
    if (!(m99 >= lo99 * (1 - 1e-9) && m99 <= hi99 * (1 + 1e-9) + 1e-9))
      fail_msg("seed %llu round %d: p99 %g outside [%g, %g]", (unsigned long long)seed, round, m99,
               lo99, hi99);
    assert_true(cluster_quantile_mix(p, n, 0.3) <= m50 + 1e-9);
  }
}

/* ---------------------------------------------------- pair cross-check */

static cluster_pair_in_t clean(uint64_t sent) {
  return (cluster_pair_in_t){.have_sender = 1, .have_receiver = 1, .sent = sent, .delivered = sent};
}

static void test_pair_ok_and_counted(void **state) {
  cluster_pair_out_t o;
  cluster_pair_in_t in = clean(5000);
  cluster_pair_check(&in, &o);
  assert_int_equal(o.verdict, CLUSTER_PAIR_OK);
  assert_int_equal(o.expected, 5000);
  assert_int_equal(o.lost, 0);
  /* Counted loss on both sides balances. */
  in = clean(5000);
  in.dropped = 30;
  in.aborted = 5;
  in.delivered = 4950;
  in.rx_evicted = 15;
  cluster_pair_check(&in, &o);
  assert_int_equal(o.verdict, CLUSTER_PAIR_OK);
  assert_string_equal(cluster_pair_verdict_name(o.verdict), "ok");
}

static void test_pair_lost(void **state) {
  cluster_pair_out_t o;
  cluster_pair_in_t in = clean(5000);
  in.delivered = 4990;
  in.unconfirmed = 4;
  in.ring_depth = 1;
  cluster_pair_check(&in, &o);
  assert_int_equal(o.verdict, CLUSTER_PAIR_LOST);
  assert_int_equal(o.lost, 10);
  assert_int_equal(o.queued, 1);
  assert_int_equal(o.unwritten, 3);
  assert_int_equal(o.in_flight, 6);
  assert_string_equal(cluster_pair_verdict_name(o.verdict), "lost");
  /* The split never exceeds the loss. */
  in.delivered = 4999;
  cluster_pair_check(&in, &o);
  assert_int_equal(o.lost, 1);
  assert_int_equal(o.queued + o.unwritten + o.in_flight, 1);
}

static void test_pair_violated(void **state) {
  cluster_pair_out_t o;
  cluster_pair_in_t in = clean(5000);
  in.duplicates = 1;
  cluster_pair_check(&in, &o);
  assert_int_equal(o.verdict, CLUSTER_PAIR_VIOLATED);
  assert_int_equal(o.duplicates, 1);
  in = clean(5000);
  in.reorders = 2;
  in.delivered = 4000; /* a violation outranks a loss */
  cluster_pair_check(&in, &o);
  assert_int_equal(o.verdict, CLUSTER_PAIR_VIOLATED);
  assert_int_equal(o.lost, 1000);
  in = clean(5000);
  in.delivered = 5001;
  cluster_pair_check(&in, &o);
  assert_int_equal(o.verdict, CLUSTER_PAIR_VIOLATED);
  assert_int_equal(o.extra, 1);
  in = clean(5);
  in.dropped = 4;
  in.aborted = 2; /* more dropped + aborted than sent */
  cluster_pair_check(&in, &o);
  assert_int_equal(o.verdict, CLUSTER_PAIR_VIOLATED);
}

static void test_pair_unverifiable(void **state) {
  cluster_pair_out_t o;
  cluster_pair_in_t in = clean(5000);
  in.have_receiver = 0;
  cluster_pair_check(&in, &o);
  assert_int_equal(o.verdict, CLUSTER_PAIR_UNVERIFIABLE);
  assert_string_equal(cluster_pair_verdict_name(o.verdict), "unverifiable");
  in = clean(5000);
  in.have_sender = 0;
  cluster_pair_check(&in, &o);
  assert_int_equal(o.verdict, CLUSTER_PAIR_UNVERIFIABLE);
}

static void test_pair_restarts(void **state) {
  cluster_pair_out_t o;
  /* S restarted: its report counts 2994 sent (incarnation 2); R got 3000
   * from incarnation 1 (base) and 2993 since, all numbered 1.. again, so
   * 2993 duplicates at R: the restart, not bftnet; 1 lost. */
  cluster_pair_in_t in = clean(2994);
  in.delivered = 5993;
  in.duplicates = 2993;
  in.sender_restarted = 1;
  in.base_exact = 1;
  in.base_delivered = 3000;
  cluster_pair_check(&in, &o);
  assert_int_equal(o.verdict, CLUSTER_PAIR_LOST);
  assert_int_equal(o.delivered, 2993);
  assert_int_equal(o.restart_artifacts, 2993);
  assert_int_equal(o.duplicates, 0);
  assert_int_equal(o.lost, 1);
  /* More duplicates since the restart than messages: a real violation. */
  in.duplicates = 3000 + 2994;
  in.delivered = 5994;
  cluster_pair_check(&in, &o);
  assert_int_equal(o.verdict, CLUSTER_PAIR_VIOLATED);
  /* An inexact base (no stats line between kill and restart) can make R
   * look like it got more: unverifiable, not violated. */
  in = clean(2994);
  in.delivered = 6100;
  in.sender_restarted = 1;
  in.base_delivered = 3000;
  cluster_pair_check(&in, &o);
  assert_int_equal(o.verdict, CLUSTER_PAIR_UNVERIFIABLE);
  assert_int_equal(o.extra, 106);
  in.base_exact = 1;
  cluster_pair_check(&in, &o);
  assert_int_equal(o.verdict, CLUSTER_PAIR_VIOLATED);
  /* R killed: what its dead incarnation had received is not loss. */
  in = clean(7000);
  in.delivered = 3990;
  in.receiver_killed = 1;
  in.died_min = 3000;
  cluster_pair_check(&in, &o);
  assert_int_equal(o.verdict, CLUSTER_PAIR_LOST);
  assert_int_equal(o.died, 3000);
  assert_int_equal(o.lost, 10);
  in.died_min = 3010;
  cluster_pair_check(&in, &o);
  assert_int_equal(o.verdict, CLUSTER_PAIR_OK);
  assert_int_equal(o.died, 3010);
  in.died_min = 9999; /* never more than what is missing */
  cluster_pair_check(&in, &o);
  assert_int_equal(o.died, 3010);
  /* R's last process got S's messages from 4016 on, all 2995 of them; S
   * aborted 1005 (unconfirmed when R restarted): 4015 - 1005 = 3010 went
   * to the dead process although its last stats line said only 3000. */
  in = clean(7010);
  in.aborted = 1005;
  in.delivered = 2995;
  in.receiver_killed = 1;
  in.died_min = 3000;
  in.rx_first_seq = 4016;
  cluster_pair_check(&in, &o);
  assert_int_equal(o.verdict, CLUSTER_PAIR_OK);
  assert_int_equal(o.died, 3010);
  assert_int_equal(o.lost, 0);
  /* A hole in the last process's range is loss whatever went before. */
  in.delivered = 2990;
  cluster_pair_check(&in, &o);
  assert_int_equal(o.verdict, CLUSTER_PAIR_LOST);
  assert_int_equal(o.lost, 5);
  assert_int_equal(o.died, 3010);
  /* The stats line's lower bound still counts when it is larger. */
  in.delivered = 2995;
  in.rx_first_seq = 3500;
  cluster_pair_check(&in, &o);
  assert_int_equal(o.died, 3000);
  assert_int_equal(o.lost, 10);
}

/* R removed S: what R counted discarded or evicted in the class (naming
 * no sender) accounts for S's missing messages, never more than R counted;
 * beyond it they are still lost. */
static void test_pair_rx_discarded(void **state) {
  (void)state;
  cluster_pair_out_t o;
  cluster_pair_in_t in = clean(1000);
  in.delivered = 900;
  cluster_pair_check(&in, &o); /* R never removed S: lost */
  assert_int_equal(o.verdict, CLUSTER_PAIR_LOST);
  assert_int_equal(o.lost, 100);
  assert_int_equal(o.rx_discarded, 0);
  in.rx_discarded_pool = 100;
  cluster_pair_check(&in, &o);
  assert_int_equal(o.verdict, CLUSTER_PAIR_OK);
  assert_int_equal(o.rx_discarded, 100);
  assert_int_equal(o.lost, 0);
  in.rx_discarded_pool = 70; /* R counted fewer than are missing */
  cluster_pair_check(&in, &o);
  assert_int_equal(o.verdict, CLUSTER_PAIR_LOST);
  assert_int_equal(o.rx_discarded, 70);
  assert_int_equal(o.lost, 30);
  in.rx_discarded_pool = 5000; /* claims only what is missing */
  cluster_pair_check(&in, &o);
  assert_int_equal(o.verdict, CLUSTER_PAIR_OK);
  assert_int_equal(o.rx_discarded, 100);
  /* Nothing missing: nothing claimed, and more than sent is still more. */
  in.delivered = 1000;
  cluster_pair_check(&in, &o);
  assert_int_equal(o.rx_discarded, 0);
  in.delivered = 1001;
  cluster_pair_check(&in, &o);
  assert_int_equal(o.verdict, CLUSTER_PAIR_VIOLATED);
  /* After what went to R's killed process. */
  in = clean(1000);
  in.delivered = 600;
  in.receiver_killed = 1;
  in.died_min = 300;
  in.rx_discarded_pool = 60;
  cluster_pair_check(&in, &o);
  assert_int_equal(o.died, 300);
  assert_int_equal(o.rx_discarded, 60);
  assert_int_equal(o.lost, 40);
  assert_int_equal(o.verdict, CLUSTER_PAIR_LOST);
}

/* R split S's incarnations itself (bftnet-replica >= per-incarnation
 * accounting): exact when it saw as many restarts as S had. */
static void test_pair_rx_split(void **state) {
  cluster_pair_out_t o;
  cluster_pair_in_t in = clean(2994);
  in.delivered = 5993; /* 3000 from incarnation 1, 2993 from incarnation 2 */
  in.sender_restarted = 1;
  in.rx_split = 1;
  in.rx_switches = 1;
  in.sender_restarts = 1;
  in.delivered_current = 2993;
  in.base_delivered = 2000; /* a stale estimate: not used */
  cluster_pair_check(&in, &o);
  assert_int_equal(o.split_used, 1);
  assert_int_equal(o.verdict, CLUSTER_PAIR_LOST);
  assert_int_equal(o.delivered, 2993);
  assert_int_equal(o.lost, 1);
  assert_int_equal(o.restart_artifacts, 0);
  in.delivered_current = 2994;
  cluster_pair_check(&in, &o);
  assert_int_equal(o.verdict, CLUSTER_PAIR_OK);
  /* With the split, a duplicate is a duplicate, restart or not. */
  in.duplicates = 1;
  cluster_pair_check(&in, &o);
  assert_int_equal(o.verdict, CLUSTER_PAIR_VIOLATED);
  assert_int_equal(o.duplicates, 1);
  assert_int_equal(o.restart_artifacts, 0);
  /* More than sent, with an exact split: violated, not unverifiable. */
  in.duplicates = 0;
  in.delivered_current = 2995;
  cluster_pair_check(&in, &o);
  assert_int_equal(o.verdict, CLUSTER_PAIR_VIOLATED);
  assert_int_equal(o.extra, 1);
  /* R missed the restart: back to the base estimate. */
  in.rx_switches = 0;
  in.delivered_current = 5993;
  in.duplicates = 2993;
  in.base_exact = 1;
  in.base_delivered = 3000;
  cluster_pair_check(&in, &o);
  assert_int_equal(o.split_used, 0);
  assert_int_equal(o.delivered, 2993);
  assert_int_equal(o.restart_artifacts, 2993);
  /* A restart R saw that S never had (message 1 twice): violated. */
  in = clean(5000);
  in.rx_split = 1;
  in.rx_switches = 1;
  in.delivered_current = 4000;
  cluster_pair_check(&in, &o);
  assert_int_equal(o.verdict, CLUSTER_PAIR_VIOLATED);
  assert_int_equal(o.false_restarts, 1);
  cluster_summary_t s = {0};
  cluster_summary_add(&s, &o, 0);
  char buf[256];
  assert_int_equal(cluster_verdict_format(&s, buf, sizeof buf), 0);
  assert_string_equal(buf, "integrity: FAILED (1 sender restart that did not happen in 1 pair)");
  /* Counted aborted (not confirmed read), delivered anyway: fine, up to
   * the aborted count; beyond it, more than sent. */
  in = clean(2000);
  in.aborted = 2;
  cluster_pair_check(&in, &o);
  assert_int_equal(o.verdict, CLUSTER_PAIR_OK);
  assert_int_equal(o.aborted_arrived, 2);
  assert_int_equal(o.extra, 0);
  in.delivered = 2001;
  cluster_pair_check(&in, &o);
  assert_int_equal(o.verdict, CLUSTER_PAIR_VIOLATED);
  assert_int_equal(o.extra, 1);
  in.delivered = 1999;
  cluster_pair_check(&in, &o);
  assert_int_equal(o.verdict, CLUSTER_PAIR_OK);
  assert_int_equal(o.aborted_arrived, 1);
  /* No restart anywhere, split present: exact as before. */
  in = clean(5000);
  in.rx_split = 1;
  in.delivered_current = 5000;
  cluster_pair_check(&in, &o);
  assert_int_equal(o.verdict, CLUSTER_PAIR_OK);
  assert_int_equal(o.split_used, 1);
}

/* -------------------------------------------------------- the verdict */

static const char *verdict(const cluster_summary_t *s, int want_ok) {
  static char buf[512];
  assert_int_equal(cluster_verdict_format(s, buf, sizeof buf), want_ok);
  return buf;
}

static void test_verdict(void **state) {
  cluster_summary_t s = {0};
  cluster_pair_out_t ok = {.verdict = CLUSTER_PAIR_OK};
  cluster_summary_add(&s, &ok, 0);
  cluster_summary_add(&s, &ok, 1);
  assert_string_equal(verdict(&s, 1), "integrity: ok");

  cluster_pair_out_t lost = {.verdict = CLUSTER_PAIR_LOST, .lost = 3};
  cluster_summary_add(&s, &lost, 1);
  cluster_summary_add(&s, &lost, 1);
  assert_string_equal(
      verdict(&s, 0),
      "integrity: FAILED (6 messages lost in flight on links a fault broke, not counted)");
  cluster_summary_t one = {0};
  lost.lost = 1;
  cluster_summary_add(&one, &lost, 1);
  assert_string_equal(
      verdict(&one, 0),
      "integrity: FAILED (1 message lost in flight on links a fault broke, not counted)");

  cluster_summary_add(&s, &lost, 0);
  cluster_pair_out_t bad = {.verdict = CLUSTER_PAIR_VIOLATED, .duplicates = 2, .reorders = 1};
  cluster_summary_add(&s, &bad, 1);
  cluster_pair_out_t unv = {.verdict = CLUSTER_PAIR_UNVERIFIABLE};
  cluster_summary_add(&s, &unv, 0);
  assert_string_equal(verdict(&s, 0),
                      "integrity: FAILED (2 duplicates, 1 reorder in 1 pair; 1 message lost "
                      "without being counted on links no fault broke; 6 messages lost in flight "
                      "on links a fault broke, not counted; 1 pair unverifiable)");
  assert_int_equal(s.pairs, 7);
  assert_int_equal(s.ok, 2);
  assert_int_equal(s.lost_pairs, 3);

  cluster_summary_t empty = {0};
  assert_string_equal(verdict(&empty, 0), "integrity: FAILED (no pair to check)");
  cluster_summary_t extra = {0};
  cluster_pair_out_t ex = {.verdict = CLUSTER_PAIR_VIOLATED, .extra = 4};
  cluster_summary_add(&extra, &ex, 0);
  assert_string_equal(verdict(&extra, 0),
                      "integrity: FAILED (4 messages delivered more than sent in 1 pair)");
  /* A short buffer is truncated, never overrun. */
  char small[12];
  assert_int_equal(cluster_verdict_format(&s, small, sizeof small), 0);
  assert_string_equal(small, "integrity: ");
}

/* ------------------------------------------------------------- formats */

static void test_csv(void **state) {
  char row[256];
  assert_string_equal(CLUSTER_CSV_HEADER,
                      "t_s,replica,msgs_per_s,p50_us,p99_us,drops,reconnects,migrations");
  cluster_csv_row(row, sizeof row, 12345, "r1", 1997.84, 60.81, 108.349, 3, 1, 0);
  assert_string_equal(row, "12.345,r1,1997.8,60.8,108.3,3,1,0");
  cluster_csv_row(row, sizeof row, 7, "all", 0, NAN, NAN, 0, 0, -1);
  assert_string_equal(row, "0.007,all,0.0,,,0,0,");
  cluster_csv_row(row, sizeof row, -1500, "r0", 1, 2, 3, 4, 5, 6);
  assert_string_equal(row, "-1.500,r0,1.0,2.0,3.0,4,5,6");
  cluster_csv_row(row, sizeof row, 0, "a,\"b\"", 1, 2, 3, 4, 5, 6);
  assert_string_equal(row, "0.000,\"a,\"\"b\"\"\",1.0,2.0,3.0,4,5,6");
  /* Truncation reports the full length, like snprintf. */
  int n = cluster_csv_row(row, 8, 12345, "r1", 1, 2, 3, 4, 5, 6);
  assert_int_equal(n, (int)strlen("12.345,r1,1.0,2.0,3.0,4,5,6"));
  assert_int_equal(strlen(row), 7);
}

static void test_fmt_us(void **state) {
  char b[32];
  cluster_fmt_us(142.34, b, sizeof b);
  assert_string_equal(b, "142.3us");
  cluster_fmt_us(999.96, b, sizeof b);
  assert_string_equal(b, "1.00ms");
  cluster_fmt_us(1520, b, sizeof b);
  assert_string_equal(b, "1.52ms");
  cluster_fmt_us(3.1e6, b, sizeof b);
  assert_string_equal(b, "3.10s");
  cluster_fmt_us(NAN, b, sizeof b);
  assert_string_equal(b, "-");
  cluster_fmt_us(-1, b, sizeof b);
  assert_string_equal(b, "-");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_mix_identical),
      cmocka_unit_test(test_mix_weights),
      cmocka_unit_test(test_mix_bounds),
      cmocka_unit_test(test_pair_ok_and_counted),
      cmocka_unit_test(test_pair_lost),
      cmocka_unit_test(test_pair_violated),
      cmocka_unit_test(test_pair_unverifiable),
      cmocka_unit_test(test_pair_restarts),
      cmocka_unit_test(test_pair_rx_split),
      cmocka_unit_test(test_pair_rx_discarded),
      cmocka_unit_test(test_verdict),
      cmocka_unit_test(test_csv),
      cmocka_unit_test(test_fmt_us),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
