/*
 * yamux_oom_test.c — allocation failure in every yamux path that allocates
 * (session, stream on open, stream on an inbound SYN), injected by wrapping
 * calloc at link time (-Wl,--wrap=calloc, see yamux.cmake).
 */
#include "harness.h"
#include "yamux.h"

/* The linker's names for the wrapped and the real calloc. */
void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);

static int fail_next; /* 1: the next calloc fails */

void *__wrap_calloc(size_t n, size_t size) {
  if (fail_next) {
    fail_next = 0;
    return NULL;
  }
  return __real_calloc(n, size);
}

static int nout, nfree;
static void out_cb(void *ud, const uint8_t hdr[BN_YAMUX_HEADER], const uint8_t *b, size_t n) {
  nout++;
}
static void free_cb(void *ud, yamux_stream_t *st) {
  nfree++;
}

static const yamux_config_t cfg = {.window = 256 * 1024, .max_streams = 8};
static const yamux_cbs_t cbs = {.output = out_cb, .on_free = free_cb};

static void test_session_oom(void **state) {
  (void)state;
  yamux_session_t *s = (yamux_session_t *)&s;
  fail_next = 1;
  assert_err(yamux_session_new(&s, true, &cfg, &cbs, NULL), BFTNET_ENOMEM);
  assert_null(s);
}

static void test_open_oom(void **state) {
  (void)state;
  yamux_session_t *s;
  yamux_stream_t *st;
  assert_ok(yamux_session_new(&s, true, &cfg, &cbs, NULL));
  nout = 0;
  fail_next = 1;
  assert_err(yamux_stream_open(s, &st), BFTNET_ENOMEM);
  assert_null(st);
  assert_int_equal(nout, 0);
  assert_int_equal(yamux_session_stats(s)->streams_opened, 0);
  /* not sticky: the next open works and gets the first id */
  assert_ok(yamux_stream_open(s, &st));
  assert_int_equal(yamux_stream_id(st), 1);
  assert_int_equal(yamux_session_error(s), YAMUX_OK);
  nfree = 0;
  yamux_session_free(s);
  assert_int_equal(nfree, 1);
}

static void test_inbound_syn_oom(void **state) {
  (void)state;
  yamux_session_t *s;
  assert_ok(yamux_session_new(&s, false, &cfg, &cbs, NULL));
  uint8_t syn[BN_YAMUX_HEADER] = {0, YAMUX_TYPE_WINDOW, 0, YAMUX_FLAG_SYN, 0, 0, 0, 1, 0, 0, 0, 0};
  nout = 0;
  fail_next = 1;
  assert_err(yamux_session_feed(s, syn, sizeof(syn)), BFTNET_ENOMEM);
  assert_int_equal(yamux_session_error(s), YAMUX_INTERNAL);
  assert_err(yamux_session_feed(s, syn, sizeof(syn)), BFTNET_ENOMEM); /* sticky */
  assert_int_equal(yamux_session_stream_count(s), 0);
  assert_int_equal(nout, 0);
  yamux_session_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_session_oom),
      cmocka_unit_test(test_open_oom),
      cmocka_unit_test(test_inbound_syn_oom),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
