/* fault_spec: every kind parses to the right struct; every error names the
 * item and key; fault_format round-trips; scope matching; range checks. */
#include <errno.h>

#include "fault_spec.h"
#include "harness.h"

#define NONE FAULT_NONE

static fault_t parse_one(const char *spec) {
  fault_t f[2];
  size_t n = 99;
  char err[256];
  int rc = fault_spec_parse(spec, f, 2, &n, err, sizeof err);
  if (rc != 0) fail_msg("parse \"%s\": %s", spec, err);
  assert_int_equal(n, 1);
  assert_int_equal(f[0].item, 1);
  return f[0];
}

static void assert_scope(const fault_t *f, fault_scope_kind_t k, int a, int b) {
  assert_int_equal(f->scope.kind, k);
  assert_int_equal(f->scope.a, a);
  assert_int_equal(f->scope.b, b);
}

static void test_cut(void **state) {
  fault_t f = parse_one("cut:every=2s");
  assert_int_equal(f.kind, FAULT_CUT);
  assert_int_equal(f.every_ms, 2000);
  assert_int_equal(f.at_ms, 2000); /* the first cut is one period in */
  assert_true(f.for_ms == FAULT_FOREVER);
  assert_scope(&f, FAULT_SCOPE_ALL, NONE, NONE);

  f = parse_one("cut:every=500ms;link=r1-r0");
  assert_int_equal(f.every_ms, 500);
  assert_scope(&f, FAULT_SCOPE_LINK, 0, 1); /* normalised a < b */

  f = parse_one("cut:at=5s");
  assert_int_equal(f.at_ms, 5000);
  assert_int_equal(f.every_ms, 0);

  f = parse_one("cut:at=1.5s;every=250ms;for=10s;replica=r12");
  assert_int_equal(f.at_ms, 1500);
  assert_int_equal(f.every_ms, 250);
  assert_int_equal(f.for_ms, 10000);
  assert_scope(&f, FAULT_SCOPE_REPLICA, 12, NONE);
}

static void test_blackhole_partition(void **state) {
  fault_t f = parse_one("blackhole:at=10s;for=3s;link=r1-r2");
  assert_int_equal(f.kind, FAULT_BLACKHOLE);
  assert_int_equal(f.at_ms, 10000);
  assert_int_equal(f.for_ms, 3000);
  assert_scope(&f, FAULT_SCOPE_LINK, 1, 2);

  f = parse_one("blackhole:at=0s;for=2m;replica=r3");
  assert_int_equal(f.at_ms, 0);
  assert_int_equal(f.for_ms, 120000);
  assert_scope(&f, FAULT_SCOPE_REPLICA, 3, NONE);

  f = parse_one("partition:at=15s;for=5s;replica=r2");
  assert_int_equal(f.kind, FAULT_PARTITION);
  assert_int_equal(f.at_ms, 15000);
  assert_int_equal(f.for_ms, 5000);
  assert_scope(&f, FAULT_SCOPE_REPLICA, 2, NONE);
}

static void test_latency(void **state) {
  fault_t f = parse_one("latency:ms=20;jitter=5");
  assert_int_equal(f.kind, FAULT_LATENCY);
  assert_int_equal(f.latency_ms, 20);
  assert_int_equal(f.jitter_ms, 5);
  assert_int_equal(f.at_ms, 0);
  assert_true(f.for_ms == FAULT_FOREVER);
  assert_scope(&f, FAULT_SCOPE_ALL, NONE, NONE);

  f = parse_one("latency:ms=100ms;link=r0-r3;at=2s;for=1s");
  assert_int_equal(f.latency_ms, 100);
  assert_int_equal(f.jitter_ms, 0);
  assert_int_equal(f.at_ms, 2000);
  assert_int_equal(f.for_ms, 1000);
  assert_scope(&f, FAULT_SCOPE_LINK, 0, 3);
}

static void test_kill_members_failover(void **state) {
  fault_t f = parse_one("kill:at=12s;replica=r3;restart=2s");
  assert_int_equal(f.kind, FAULT_KILL);
  assert_int_equal(f.at_ms, 12000);
  assert_int_equal(f.restart_ms, 2000);
  assert_scope(&f, FAULT_SCOPE_REPLICA, 3, NONE);
  f = parse_one("kill:at=1s;replica=r0");
  assert_true(f.restart_ms == FAULT_NEVER);

  f = parse_one("members:at=20s;add=r4;remove=r1");
  assert_int_equal(f.kind, FAULT_MEMBERS);
  assert_int_equal(f.at_ms, 20000);
  assert_int_equal(f.add, 4);
  assert_int_equal(f.remove, 1);
  f = parse_one("members:at=20s;remove=r1");
  assert_int_equal(f.add, NONE);
  assert_int_equal(f.remove, 1);

  f = parse_one("failover:at=8s;replica=r1;back=16s");
  assert_int_equal(f.kind, FAULT_FAILOVER);
  assert_int_equal(f.at_ms, 8000);
  assert_int_equal(f.back_ms, 16000);
  assert_scope(&f, FAULT_SCOPE_REPLICA, 1, NONE);
  f = parse_one("failover:at=8s;replica=r1");
  assert_true(f.back_ms == FAULT_NEVER);
}

static void test_list(void **state) {
  fault_t f[FAULT_SPEC_FAULTS_MAX];
  size_t n;
  char err[256];
  assert_ok(fault_spec_parse(" cut:every=2s , latency: ms = 20 ; jitter=5 ,"
                             "kill:at=12s;replica=r3;restart=2s",
                             f, FAULT_SPEC_FAULTS_MAX, &n, err, sizeof err));
  assert_int_equal(n, 3);
  assert_int_equal(f[0].kind, FAULT_CUT);
  assert_int_equal(f[1].kind, FAULT_LATENCY);
  assert_int_equal(f[1].latency_ms, 20);
  assert_int_equal(f[2].kind, FAULT_KILL);
  assert_int_equal(f[2].item, 3);
  /* Empty and blank specs are no faults. */
  assert_ok(fault_spec_parse("", f, FAULT_SPEC_FAULTS_MAX, &n, err, sizeof err));
  assert_int_equal(n, 0);
  assert_ok(fault_spec_parse("  ", f, FAULT_SPEC_FAULTS_MAX, &n, err, sizeof err));
  assert_int_equal(n, 0);
}

/* Durations and replica names, accepted and not. */
static void test_values(void **state) {
  static const struct {
    const char *v;
    uint64_t ms;
  } durs[] = {
      {"0s", 0},
      {"0ms", 0},
      {"1ms", 1},
      {"999ms", 999},
      {"1s", 1000},
      {"1.5s", 1500},
      {"0.001s", 1},
      {"2m", 120000},
      {"0.5m", 30000},
      {"7.25s", 7250},
      {"604800s", 604800000},
  };
  char spec[64];
  for (size_t i = 0; i < sizeof durs / sizeof durs[0]; i++) {
    snprintf(spec, sizeof spec, "kill:at=%s;replica=r0", durs[i].v);
    fault_t f = parse_one(spec);
    assert_int_equal(f.at_ms, durs[i].ms);
  }
  fault_t f = parse_one("kill:at=1s;replica=r999");
  assert_int_equal(f.scope.a, 999);
}

typedef struct bad_case {
  const char *spec;
  const char *err;
} bad_case_t;

static const bad_case_t bad[] = {
    /* unknown kind */
    {"blakhole:at=1s", "fault 1: unknown kind \"blakhole\" (want cut, blackhole, partition, "
                       "latency, kill, members or failover)"},
    {"cut:every=1s,nope", "fault 2: unknown kind \"nope\" (want cut, blackhole, partition, "
                          "latency, kill, members or failover)"},
    /* unknown key, and a known key on the wrong kind */
    {"cut:every=1s,latency:ms=1,blackhole:at=1s;fro=3s;link=r1-r2",
     "fault 3 \"blackhole\": unknown key \"fro\" (blackhole takes at, for, link, replica)"},
    {"kill:at=1s;replica=r1;link=r0-r1",
     "fault 1 \"kill\": unknown key \"link\" (kill takes at, replica, restart)"},
    {"partition:at=1s;for=1s;replica=r1;every=1s",
     "fault 1 \"partition\": unknown key \"every\" (partition takes at, for, replica)"},
    /* bad durations */
    {"cut:every=2x", "fault 1 \"cut\": bad duration \"2x\" for key \"every\" (want e.g. 500ms, "
                     "2s, 1.5s, 2m)"},
    {"cut:every=2", "fault 1 \"cut\": bad duration \"2\" for key \"every\" (want e.g. 500ms, 2s, "
                    "1.5s, 2m)"},
    {"cut:every=1.5ms", "fault 1 \"cut\": bad duration \"1.5ms\" for key \"every\" (want e.g. "
                        "500ms, 2s, 1.5s, 2m)"},
    {"cut:every=.5s", "fault 1 \"cut\": bad duration \".5s\" for key \"every\" (want e.g. 500ms, "
                      "2s, 1.5s, 2m)"},
    {"cut:every=-1s", "fault 1 \"cut\": bad duration \"-1s\" for key \"every\" (want e.g. 500ms, "
                      "2s, 1.5s, 2m)"},
    {"kill:at=1 s;replica=r0", "fault 1 \"kill\": bad duration \"1 s\" for key \"at\" (want "
                               "e.g. 500ms, 2s, 1.5s, 2m)"},
    {"kill:at=604801s;replica=r0",
     "fault 1 \"kill\": duration \"604801s\" for key \"at\" is over the limit (7 days)"},
    {"cut:every=0s", "fault 1 \"cut\": \"every\" must be more than 0"},
    {"blackhole:at=1s;for=0ms;replica=r0", "fault 1 \"blackhole\": \"for\" must be more than 0"},
    {"latency:ms=fast", "fault 1 \"latency\": bad milliseconds \"fast\" for key \"ms\" (want "
                        "e.g. 20 or 20ms)"},
    {"latency:ms=20;jitter=700000",
     "fault 1 \"latency\": \"jitter\" is 700000 ms, over the limit (600000 ms)"},
    /* missing keys */
    {"cut", "fault 1 \"cut\": missing key \"every\" or \"at\""},
    {"cut:for=2s;link=r0-r1", "fault 1 \"cut\": missing key \"every\" or \"at\""},
    {"cut:at=2s;for=2s", "fault 1 \"cut\": \"for\" needs \"every\""},
    {"blackhole:for=3s;link=r1-r2", "fault 1 \"blackhole\": missing key \"at\""},
    {"blackhole:at=3s;link=r1-r2", "fault 1 \"blackhole\": missing key \"for\""},
    {"blackhole:at=3s;for=1s", "fault 1 \"blackhole\": missing key \"link\" or \"replica\""},
    {"partition:at=1s;for=1s", "fault 1 \"partition\": missing key \"replica\""},
    {"latency:jitter=5", "fault 1 \"latency\": missing key \"ms\""},
    {"kill:replica=r1", "fault 1 \"kill\": missing key \"at\""},
    {"kill:at=1s", "fault 1 \"kill\": missing key \"replica\""},
    {"members:at=1s", "fault 1 \"members\": missing key \"add\" or \"remove\""},
    {"members:add=r4", "fault 1 \"members\": missing key \"at\""},
    {"failover:at=1s", "fault 1 \"failover\": missing key \"replica\""},
    /* bad replica and link names */
    {"kill:at=1s;replica=3", "fault 1 \"kill\": bad replica \"3\" for key \"replica\" (want r0, "
                             "r1, ... up to r999)"},
    {"kill:at=1s;replica=r01", "fault 1 \"kill\": bad replica \"r01\" for key \"replica\" (want "
                               "r0, r1, ... up to r999)"},
    {"kill:at=1s;replica=r1000", "fault 1 \"kill\": bad replica \"r1000\" for key \"replica\" "
                                 "(want r0, r1, ... up to r999)"},
    {"kill:at=1s;replica=r", "fault 1 \"kill\": bad replica \"r\" for key \"replica\" (want r0, "
                             "r1, ... up to r999)"},
    {"members:at=1s;add=x4", "fault 1 \"members\": bad replica \"x4\" for key \"add\" (want r0, "
                             "r1, ... up to r999)"},
    {"cut:every=1s;link=r0_r1", "fault 1 \"cut\": bad link \"r0_r1\" for key \"link\" (want "
                                "rA-rB, e.g. r0-r1)"},
    {"cut:every=1s;link=r0-r1-r2", "fault 1 \"cut\": bad link \"r0-r1-r2\" for key \"link\" "
                                   "(want rA-rB, e.g. r0-r1)"},
    {"cut:every=1s;link=r2-r2", "fault 1 \"cut\": bad link \"r2-r2\" for key \"link\" (both "
                                "ends are r2)"},
    {"cut:every=1s;link=r0-r1;replica=r2",
     "fault 1 \"cut\": keys \"link\" and \"replica\" are exclusive"},
    {"members:at=1s;add=r2;remove=r2",
     "fault 1 \"members\": \"add\" and \"remove\" name the same replica r2"},
    {"failover:at=8s;replica=r1;back=8s",
     "fault 1 \"failover\": \"back\" (8000 ms) must be later than \"at\" (8000 ms)"},
    /* empty items, trailing commas, malformed parameters */
    {",", "fault 1: empty item"},
    {"cut:every=1s,,kill:at=1s;replica=r0", "fault 2: empty item"},
    {"cut:every=1s,", "fault 2: empty item (trailing comma)"},
    {"cut:every=1s, ", "fault 2: empty item (trailing comma)"},
    {"cut:", "fault 1 \"cut\": empty parameter (want key=value)"},
    {"cut:every=1s;", "fault 1 \"cut\": empty parameter (want key=value)"},
    {"cut:every=1s;;at=2s", "fault 1 \"cut\": empty parameter (want key=value)"},
    {"cut:every", "fault 1 \"cut\": expected key=value, got \"every\""},
    {"cut:=1s", "fault 1 \"cut\": expected key=value, got \"=1s\""},
    {"cut:every=", "fault 1 \"cut\": empty value for key \"every\""},
    {"cut:every=1s;every=2s", "fault 1 \"cut\": duplicate key \"every\""},
};

static void test_errors(void **state) {
  fault_t f[FAULT_SPEC_FAULTS_MAX];
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char err[256] = "untouched";
    size_t n = 99;
    int rc = fault_spec_parse(bad[i].spec, f, FAULT_SPEC_FAULTS_MAX, &n, err, sizeof err);
    if (rc != -EINVAL) fail_msg("\"%s\": rc %d, want -EINVAL", bad[i].spec, rc);
    assert_int_equal(n, 0);
    if (strcmp(err, bad[i].err) != 0)
      fail_msg("\"%s\":\n got  %s\n want %s", bad[i].spec, err, bad[i].err);
  }
}

static void test_limits(void **state) {
  fault_t f[4];
  size_t n;
  char err[256];
  assert_err(fault_spec_parse("cut:at=1s,cut:at=2s,cut:at=3s", f, 2, &n, err, sizeof err), -EINVAL);
  assert_string_equal(err, "fault 3: too many faults (max 2)");
  /* A long spec is refused before any parsing. */
  size_t len = FAULT_SPEC_LEN_MAX + 10;
  char *big = malloc(len + 1);
  assert_non_null(big);
  memset(big, 'x', len);
  big[len] = '\0';
  assert_err(fault_spec_parse(big, f, 4, &n, err, sizeof err), -EINVAL);
  assert_string_equal(err, "faults: spec is longer than 4096 bytes");
  free(big);
  /* A tiny errbuf is truncated, NUL-terminated; none at all is fine too. */
  char tiny[8];
  assert_err(fault_spec_parse("nope", f, 4, &n, tiny, sizeof tiny), -EINVAL);
  assert_string_equal(tiny, "fault 1");
  assert_err(fault_spec_parse("nope", f, 4, &n, NULL, 0), -EINVAL);
}

/* fault_format writes an item that parses back to the same fault. */
static void test_format_roundtrip(void **state) {
  static const char *const specs[] = {
      "cut:every=2s",
      "cut:every=500ms;link=r0-r1",
      "cut:at=5s",
      "cut:every=250ms;at=1500ms;for=10s;replica=r12",
      "blackhole:at=10s;for=3s;link=r1-r2",
      "blackhole:at=0s;for=3s;replica=r4",
      "partition:at=15s;for=5s;replica=r2",
      "latency:ms=20;jitter=5",
      "latency:ms=7;link=r0-r3;at=2s;for=1s",
      "kill:at=12s;replica=r3;restart=2s",
      "kill:at=12s;replica=r3",
      "members:at=20s;add=r4;remove=r1",
      "members:at=20s;add=r4",
      "failover:at=8s;replica=r1;back=16s",
      "failover:at=8s;replica=r1",
  };
  for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
    fault_t a = parse_one(specs[i]);
    char text[FAULT_FORMAT_MAX];
    int k = fault_format(&a, text, sizeof text);
    assert_int_equal((size_t)k, strlen(text));
    assert_string_equal(text, specs[i]); /* these are written canonically */
    fault_t b = parse_one(text);
    assert_memory_equal(&a, &b, sizeof a);
  }
  /* Truncation: NUL-terminated, returns the full length. */
  fault_t a = parse_one("kill:at=12s;replica=r3;restart=2s");
  char small[10];
  int k = fault_format(&a, small, sizeof small);
  assert_int_equal(k, (int)strlen("kill:at=12s;replica=r3;restart=2s"));
  assert_string_equal(small, "kill:at=1");
}

static void test_scope_and_check(void **state) {
  fault_t f[8];
  size_t n;
  char err[256];
  assert_ok(fault_spec_parse("cut:every=1s,cut:every=1s;link=r2-r0,cut:every=1s;replica=r1", f, 8,
                             &n, err, sizeof err));
  assert_true(fault_scope_has_link(&f[0].scope, 3, 1));
  assert_false(fault_scope_has_link(&f[0].scope, 1, 1));
  assert_true(fault_scope_has_link(&f[1].scope, 0, 2));
  assert_true(fault_scope_has_link(&f[1].scope, 2, 0));
  assert_false(fault_scope_has_link(&f[1].scope, 0, 1));
  assert_true(fault_scope_has_link(&f[2].scope, 1, 3));
  assert_true(fault_scope_has_link(&f[2].scope, 0, 1));
  assert_false(fault_scope_has_link(&f[2].scope, 0, 2));

  assert_ok(fault_spec_check(f, n, 3, err, sizeof err));
  assert_err(fault_spec_check(f, n, 2, err, sizeof err), -EINVAL);
  assert_string_equal(err, "fault 2 \"cut\": replica r2 in \"link\" is out of range (the "
                           "cluster has r0..r1)");
  assert_ok(fault_spec_parse("kill:at=1s;replica=r0,members:at=2s;add=r4;remove=r1", f, 8, &n, err,
                             sizeof err));
  assert_err(fault_spec_check(f, n, 4, err, sizeof err), -EINVAL);
  assert_string_equal(err, "fault 2 \"members\": replica r4 in \"add\" is out of range (the "
                           "cluster has r0..r3)");
  assert_ok(fault_spec_check(f, n, 5, err, sizeof err));
  assert_string_equal(fault_kind_name(FAULT_FAILOVER), "failover");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cut),
      cmocka_unit_test(test_blackhole_partition),
      cmocka_unit_test(test_latency),
      cmocka_unit_test(test_kill_members_failover),
      cmocka_unit_test(test_list),
      cmocka_unit_test(test_values),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_limits),
      cmocka_unit_test(test_format_roundtrip),
      cmocka_unit_test(test_scope_and_check),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
