/*
 * core/src/log.c: each logger has its own level and destination (two
 * loggers never change each other's level), a callback gets the bare line,
 * and the per-site rate limiter lets 5 lines a second through, then
 * reports how many it suppressed with the next line that passes.
 */
#include "harness.h"

#include "core.h"

typedef struct sink {
  int n, level;
  char last[600];
} sink_t;

static void to_sink(int level, const char *msg, void *user) {
  sink_t *s = user;
  s->n++;
  s->level = level;
  snprintf(s->last, sizeof s->last, "%s", msg);
}

static void test_levels_are_per_logger(void **state) {
  (void)state;
  sink_t a = {0}, b = {0};
  bn_logger_t la = {.level = BN_LOG_INFO, .cb = to_sink, .user = &a};
  bn_logger_t lb = {.level = 0, .cb = to_sink, .user = &b}; /* quiet, made after la */
  bn_log(&la, BN_LOG_INFO, "a says %d", 1);
  bn_log(&lb, BN_LOG_ERROR, "b says %d", 2);
  bn_log(&la, BN_LOG_DEBUG, "too detailed for a");
  assert_int_equal(a.n, 1);
  assert_int_equal(a.level, BN_LOG_INFO);
  assert_string_equal(a.last, "a says 1"); /* no prefix, no newline */
  assert_int_equal(b.n, 0);
  lb.level = BN_LOG_ERROR;
  bn_log(&lb, BN_LOG_ERROR, "b says %d", 3);
  assert_int_equal(b.n, 1);
  assert_string_equal(b.last, "b says 3");
  assert_int_equal(a.n, 1);
  assert_true(bn_log_enabled(NULL, BN_LOG_WARN)); /* the process default */
  assert_false(bn_log_enabled(NULL, BN_LOG_INFO));
  assert_false(bn_log_enabled(&la, 0)); /* level 0 is no line */
}

static void test_long_lines_are_cut(void **state) {
  (void)state;
  sink_t a = {0};
  bn_logger_t la = {.level = BN_LOG_DEBUG, .cb = to_sink, .user = &a};
  char big[2000];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  bn_log(&la, BN_LOG_WARN, "%s", big);
  assert_int_equal(strlen(a.last), 511);
}

static void test_rate_limit(void **state) {
  (void)state;
  sink_t a = {0};
  bn_logger_t la = {.level = BN_LOG_INFO, .cb = to_sink, .user = &a};
  bn_ratelimit_t rl = {0};
  uint64_t t = 5000000000ull;
  for (int i = 0; i < 12; i++)
    bn_log_rl(&la, &rl, t, BN_LOG_WARN, "line %d", i);
  assert_int_equal(a.n, 5); /* 5 pass in one second */
  assert_string_equal(a.last, "line 4");
  bn_log_rl(&la, &rl, t + 1000000000ull, BN_LOG_WARN, "later");
  assert_int_equal(a.n, 6);
  assert_string_equal(a.last, "later (7 similar suppressed)");
  bn_log_rl(&la, &rl, t + 1000000001ull, BN_LOG_WARN, "again");
  assert_string_equal(a.last, "again"); /* the count was reported once */
  /* Below the level nothing is formatted, but the budget is still spent. */
  sink_t q = {0};
  bn_logger_t lq = {.level = BN_LOG_ERROR, .cb = to_sink, .user = &q};
  bn_ratelimit_t rq = {0};
  for (int i = 0; i < 8; i++)
    bn_log_rl(&lq, &rq, t, BN_LOG_INFO, "quiet %d", i);
  assert_int_equal(q.n, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_levels_are_per_logger),
      cmocka_unit_test(test_long_lines_are_cut),
      cmocka_unit_test(test_rate_limit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
