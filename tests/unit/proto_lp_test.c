/* proto_lp_test.c — length-prefixed messages: framing, truncation at every
 * length, lying lengths rejected before the body arrives. */
#include "harness.h"
#include "proto.h"

static void test_lp_roundtrip(void **state) {
  (void)state;
  bn_buf_t b;
  bn_buf_init(&b);
  uint8_t big[300];
  for (size_t i = 0; i < sizeof(big); i++)
    big[i] = (uint8_t)i;
  assert_ok(lp_append(&b, "hello", 5));
  assert_ok(lp_append(&b, NULL, 0));
  assert_ok(lp_append(&b, big, sizeof(big)));
  assert_int_equal(bn_buf_unread(&b), 1 + 5 + 1 + 2 + 300);

  const uint8_t *msg;
  size_t len;
  const uint8_t *p = bn_buf_head(&b);
  size_t n = bn_buf_unread(&b);
  int used = lp_next(p, n, 1024, &msg, &len);
  assert_int_equal(used, 6);
  assert_int_equal(len, 5);
  assert_memory_equal(msg, "hello", 5);
  p += used, n -= (size_t)used;
  used = lp_next(p, n, 1024, &msg, &len);
  assert_int_equal(used, 1);
  assert_int_equal(len, 0);
  p += used, n -= (size_t)used;
  used = lp_next(p, n, 1024, &msg, &len);
  assert_int_equal(used, 302);
  assert_int_equal(len, 300);
  assert_memory_equal(msg, big, 300);
  assert_int_equal(n, (size_t)used);
  bn_buf_free(&b);
}

static void test_lp_truncated_every_length(void **state) {
  (void)state;
  bn_buf_t b;
  bn_buf_init(&b);
  uint8_t body[200];
  memset(body, 0xab, sizeof(body));
  assert_ok(lp_append(&b, body, sizeof(body)));
  size_t total = bn_buf_unread(&b);
  for (size_t k = 0; k < total; k++) {
    const uint8_t *msg = NULL;
    size_t len = 99;
    assert_int_equal(lp_next(bn_buf_head(&b), k, 1024, &msg, &len), 0);
    assert_null(msg);
    assert_int_equal(len, 99);
  }
  bn_buf_free(&b);
}

static void test_lp_too_big_before_body(void **state) {
  (void)state;
  const uint8_t *msg;
  size_t len;
  /* 2^62 announced with nothing after it: refused at once, not awaited. */
  const uint8_t huge[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40};
  assert_err(lp_next(huge, sizeof(huge), BN_MSG_MAX_CAP, &msg, &len), BFTNET_ETOOBIG);
  /* max itself is allowed, max + 1 is not. */
  const uint8_t at_max[] = {0x10};
  assert_int_equal(lp_next(at_max, 1, 16, &msg, &len), 0);
  const uint8_t over[] = {0x11};
  assert_err(lp_next(over, 1, 16, &msg, &len), BFTNET_ETOOBIG);
  /* Even an unbounded max cannot overflow the int return value. */
  assert_err(lp_next(huge, sizeof(huge), SIZE_MAX, &msg, &len), BFTNET_ETOOBIG);
}

static void test_lp_bad_varint(void **state) {
  (void)state;
  const uint8_t *msg;
  size_t len;
  const uint8_t nonmin[] = {0x85, 0x00, 'a', 'b', 'c', 'd', 'e'};
  assert_err(lp_next(nonmin, sizeof(nonmin), 1024, &msg, &len), BFTNET_EPROTO);
  uint8_t ten[10];
  memset(ten, 0xff, sizeof(ten));
  assert_err(lp_next(ten, sizeof(ten), SIZE_MAX, &msg, &len), BFTNET_EPROTO);
  assert_int_equal(lp_next(NULL, 0, 1024, &msg, &len), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lp_roundtrip),
      cmocka_unit_test(test_lp_truncated_every_length),
      cmocka_unit_test(test_lp_too_big_before_body),
      cmocka_unit_test(test_lp_bad_varint),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
