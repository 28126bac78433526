/*
 * harness.h — bftnet's one test harness: cmocka plus typed assertions that
 * print the error's name, and helpers for loop-driven tests.
 */
#ifndef BFTNET_TEST_HARNESS_H
#define BFTNET_TEST_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bftnet.h"

/* Asserts rc == 0, printing the error's name and text otherwise. */
#define assert_ok(expr)                                                                            \
  do {                                                                                             \
    int rc_ = (int)(expr);                                                                         \
    if (rc_ != 0)                                                                                  \
      fail_msg("%s returned %d %s (%s)", #expr, rc_, bftnet_err_name(rc_), bftnet_strerror(rc_));  \
  } while (0)

/* Asserts rc == want (both error codes), printing both names otherwise. */
#define assert_err(expr, want)                                                                     \
  do {                                                                                             \
    int rc_ = (int)(expr), want_ = (int)(want);                                                    \
    if (rc_ != want_)                                                                              \
      fail_msg("%s returned %d %s, want %d %s", #expr, rc_, bftnet_err_name(rc_), want_,           \
               bftnet_err_name(want_));                                                            \
  } while (0)

/* Decodes hex into a fresh buffer; *len receives its length. Caller frees. */
uint8_t *th_hex(const char *hex, size_t *len);

/* Runs only the cases whose name matches $BFTNET_TEST_FILTER (a cmocka
 * pattern, e.g. "test_peer_*"), to repeat one case of a long test; call it
 * before cmocka_run_group_tests. */
void th_test_filter(void);

/* The seed for randomized tests: $BFTNET_SEED or the time; printed once. */
uint64_t th_seed(void);

/* xorshift64*: the tests' reproducible generator. *s must not be 0
 * (th_rng_init gives a good start from a seed). */
static inline uint64_t th_rnd(uint64_t *s) {
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 0x2545F4914F6CDD1Dull;
}
static inline uint64_t th_rng_init(uint64_t seed) {
  return seed * 0x9E3779B97F4A7C15ull | 1;
}

#endif
