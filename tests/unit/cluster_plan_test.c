/* cluster_plan: the fault timeline bftnet-cluster executes — instants per
 * kind, the end cut-off, ordering and ties, limits, and which links a SPEC
 * can break (for the in-flight loss part of the verdict). */
#include <errno.h>

#include "cluster_plan.h"
#include "harness.h"

static size_t parse(const char *spec, fault_t *f) {
  size_t n = 0;
  char err[256];
  if (fault_spec_parse(spec, f, FAULT_SPEC_FAULTS_MAX, &n, err, sizeof err) != 0)
    fail_msg("parse \"%s\": %s", spec, err);
  return n;
}

/* Builds the plan of spec up to end_ms into out (at most 64 actions). */
static size_t plan(const char *spec, uint64_t end_ms, cluster_act_t *out) {
  fault_t f[FAULT_SPEC_FAULTS_MAX];
  size_t n = parse(spec, f), count = 99, counted = 0;
  char err[256];
  assert_int_equal(cluster_plan_build(f, n, end_ms, NULL, 0, &counted, err, sizeof err), 0);
  int rc = cluster_plan_build(f, n, end_ms, out, 64, &count, err, sizeof err);
  if (rc) fail_msg("plan \"%s\": %s", spec, err);
  assert_int_equal(count, counted); /* counting mode agrees */
  return count;
}

static void expect(const cluster_act_t *a, uint64_t t, cluster_act_kind_t kind, uint32_t fault) {
  assert_int_equal(a->t_ms, t);
  assert_string_equal(cluster_act_name(a->kind), cluster_act_name(kind));
  assert_int_equal(a->fault, fault);
}

static void test_cuts(void **state) {
  cluster_act_t a[64];
  assert_int_equal(plan("cut:every=2s", 7000, a), 3);
  expect(&a[0], 2000, CLUSTER_ACT_CUT, 0);
  expect(&a[1], 4000, CLUSTER_ACT_CUT, 0);
  expect(&a[2], 6000, CLUSTER_ACT_CUT, 0);
  /* The end is exclusive: a cut at the end instant is not made. */
  assert_int_equal(plan("cut:every=2s", 6000, a), 2);
  assert_int_equal(plan("cut:at=5s;every=500ms;for=3s", 60000, a), 6);
  expect(&a[0], 5000, CLUSTER_ACT_CUT, 0);
  expect(&a[5], 7500, CLUSTER_ACT_CUT, 0);
  assert_int_equal(plan("cut:at=5s", 60000, a), 1);
  expect(&a[0], 5000, CLUSTER_ACT_CUT, 0);
  assert_int_equal(plan("cut:at=0s;every=1s", 3000, a), 3);
  expect(&a[0], 0, CLUSTER_ACT_CUT, 0);
  assert_int_equal(plan("cut:at=5s", 5000, a), 0);
  assert_int_equal(plan("", 5000, a), 0);
}

static void test_intervals(void **state) {
  cluster_act_t a[64];
  assert_int_equal(plan("blackhole:at=10s;for=3s;link=r1-r2", 60000, a), 2);
  expect(&a[0], 10000, CLUSTER_ACT_BLACKHOLE_ON, 0);
  expect(&a[1], 13000, CLUSTER_ACT_BLACKHOLE_OFF, 0);
  /* Ends after the run: only the start (the cluster lifts it at the end). */
  assert_int_equal(plan("blackhole:at=10s;for=3s;link=r1-r2", 12000, a), 1);
  assert_int_equal(plan("partition:at=1s;for=2s;replica=r0", 60000, a), 2);
  expect(&a[0], 1000, CLUSTER_ACT_PARTITION_ON, 0);
  expect(&a[1], 3000, CLUSTER_ACT_PARTITION_OFF, 0);
  /* Latency without `for` never ends; without `at` starts at time zero. */
  assert_int_equal(plan("latency:ms=20;jitter=5", 60000, a), 1);
  expect(&a[0], 0, CLUSTER_ACT_LATENCY_ON, 0);
  assert_int_equal(plan("latency:ms=20;at=2s;for=1s;replica=r1", 60000, a), 2);
  expect(&a[1], 3000, CLUSTER_ACT_LATENCY_OFF, 0);
}

static void test_kill_members_failover(void **state) {
  cluster_act_t a[64];
  assert_int_equal(plan("kill:at=12s;replica=r3;restart=2s", 60000, a), 2);
  expect(&a[0], 12000, CLUSTER_ACT_KILL, 0);
  expect(&a[1], 14000, CLUSTER_ACT_RESTART, 0);
  assert_int_equal(plan("kill:at=12s;replica=r3", 60000, a), 1);
  assert_int_equal(plan("members:at=20s;add=r4;remove=r1", 60000, a), 1);
  expect(&a[0], 20000, CLUSTER_ACT_MEMBERS, 0);
  assert_int_equal(plan("failover:at=8s;replica=r1;back=16s", 60000, a), 2);
  expect(&a[0], 8000, CLUSTER_ACT_FAILOVER_DOWN, 0);
  expect(&a[1], 16000, CLUSTER_ACT_FAILOVER_UP, 0);
  assert_int_equal(plan("failover:at=8s;replica=r1", 60000, a), 1);
}

static void test_order(void **state) {
  cluster_act_t a[64];
  /* Sorted by time; at one instant, SPEC order. */
  size_t n = plan("kill:at=4s;replica=r2;restart=2s,blackhole:at=1s;for=5s;link=r0-r1,"
                  "cut:every=2s,members:at=6s;remove=r0",
                  7000, a);
  assert_int_equal(n, 8);
  expect(&a[0], 1000, CLUSTER_ACT_BLACKHOLE_ON, 1);
  expect(&a[1], 2000, CLUSTER_ACT_CUT, 2);
  expect(&a[2], 4000, CLUSTER_ACT_KILL, 0);
  expect(&a[3], 4000, CLUSTER_ACT_CUT, 2);
  expect(&a[4], 6000, CLUSTER_ACT_RESTART, 0);
  expect(&a[5], 6000, CLUSTER_ACT_BLACKHOLE_OFF, 1);
  expect(&a[6], 6000, CLUSTER_ACT_CUT, 2);
  expect(&a[7], 6000, CLUSTER_ACT_MEMBERS, 3);
}

static void test_limits(void **state) {
  fault_t f[4];
  size_t n = parse("cut:every=1ms", f), count = 7;
  char err[256] = "";
  assert_int_equal(cluster_plan_build(f, n, 1000000, NULL, 0, &count, err, sizeof err), -EINVAL);
  assert_int_equal(count, 0);
  assert_non_null(strstr(err, "more than"));
  /* A caller buffer that is too small is an error too, not a silent cut. */
  cluster_act_t a[2];
  n = parse("cut:every=1s", f);
  assert_int_equal(cluster_plan_build(f, n, 5000, a, 2, &count, err, sizeof err), -EINVAL);
  assert_int_equal(cluster_plan_build(f, n, 3000, a, 2, &count, err, sizeof err), 0);
  assert_int_equal(count, 2);
}

static void test_breaks(void **state) {
  fault_t f[FAULT_SPEC_FAULTS_MAX];
  size_t n = parse("cut:every=2s;link=r0-r1", f);
  assert_true(cluster_plan_breaks_link(f, n, 10000, 0, 1, 10000));
  assert_true(cluster_plan_breaks_link(f, n, 10000, 1, 0, 10000));
  assert_false(cluster_plan_breaks_link(f, n, 10000, 1, 2, 10000));
  assert_false(cluster_plan_breaks_link(f, n, 10000, 1, 1, 10000));
  assert_false(cluster_plan_breaks_link(f, n, 1000, 0, 1, 10000)); /* starts after the end */

  n = parse("blackhole:at=1s;for=3s;link=r0-r1", f); /* a stall, not a death */
  assert_false(cluster_plan_breaks_link(f, n, 10000, 0, 1, 10000));
  n = parse("blackhole:at=1s;for=12s;link=r0-r1", f); /* the keepalive kills it */
  assert_true(cluster_plan_breaks_link(f, n, 60000, 0, 1, 10000));

  n = parse("latency:ms=20,members:at=1s;add=r3", f);
  assert_false(cluster_plan_breaks_any(f, n, 10000, 4, 10000));
  n = parse("members:at=1s;add=r3;remove=r1", f);
  assert_true(cluster_plan_breaks_link(f, n, 10000, 1, 2, 10000));
  assert_false(cluster_plan_breaks_link(f, n, 10000, 0, 2, 10000));
  n = parse("kill:at=1s;replica=r2", f);
  assert_true(cluster_plan_breaks_link(f, n, 10000, 0, 2, 10000));
  assert_false(cluster_plan_breaks_link(f, n, 10000, 0, 1, 10000));
  n = parse("partition:at=1s;for=1s;replica=r2,failover:at=1s;replica=r0", f);
  assert_true(cluster_plan_breaks_link(f, n, 10000, 2, 1, 10000));
  assert_true(cluster_plan_breaks_link(f, n, 10000, 1, 0, 10000));
  assert_false(cluster_plan_breaks_link(f, n, 10000, 1, 3, 10000));
  assert_true(cluster_plan_breaks_any(f, n, 10000, 4, 10000));
}

static void test_names(void **state) {
  assert_string_equal(cluster_act_name(CLUSTER_ACT_CUT), "cut");
  assert_string_equal(cluster_act_name(CLUSTER_ACT_FAILOVER_UP), "failover up");
  assert_string_equal(cluster_act_name((cluster_act_kind_t)99), "?");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cuts),
      cmocka_unit_test(test_intervals),
      cmocka_unit_test(test_kill_members_failover),
      cmocka_unit_test(test_order),
      cmocka_unit_test(test_limits),
      cmocka_unit_test(test_breaks),
      cmocka_unit_test(test_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
