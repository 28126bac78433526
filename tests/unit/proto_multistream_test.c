/* proto_multistream_test.c — multistream-select 1.0 messages: the wire bytes
 * of the spec's handshake, truncation, and every malformed shape. */
#include "harness.h"
#include "proto.h"

/* uvarint(len) || raw, for hand-made hostile messages. */
static size_t ms_frame(uint8_t *out, const void *raw, size_t n) {
  size_t h = uvarint_encode(out, n);
  memcpy(out + h, raw, n);
  return h + n;
}

static void test_ms_wire_bytes(void **state) {
  (void)state;
  bn_buf_t b;
  bn_buf_init(&b);
  assert_ok(ms_append(&b, MS_PROTO_ID));
  assert_ok(ms_append(&b, "/noise"));
  assert_ok(ms_append(&b, MS_NA));
  static const char want[] = "\x13/multistream/1.0.0\n\x07/noise\n\x03na\n";
  assert_int_equal(bn_buf_unread(&b), sizeof(want) - 1);
  assert_memory_equal(bn_buf_head(&b), want, sizeof(want) - 1);

  const char *text;
  size_t len;
  const uint8_t *p = bn_buf_head(&b);
  size_t n = bn_buf_unread(&b);
  const char *expect[] = {MS_PROTO_ID, "/noise", MS_NA};
  for (size_t i = 0; i < BN_ARRAY_LEN(expect); i++) {
    int used = ms_next(p, n, &text, &len);
    assert_true(used > 0);
    assert_true(ms_eq(text, len, expect[i]));
    assert_false(ms_eq(text, len, "/yamux/1.0.0"));
    p += used, n -= (size_t)used;
  }
  assert_int_equal(n, 0);
  assert_int_equal(ms_next(p, n, &text, &len), 0);
  bn_buf_free(&b);
}

static void test_ms_truncated_every_length(void **state) {
  (void)state;
  bn_buf_t b;
  bn_buf_init(&b);
  assert_ok(ms_append(&b, "/libp2p/stream-migration"));
  const char *text;
  size_t len;
  for (size_t k = 0; k < bn_buf_unread(&b); k++)
    assert_int_equal(ms_next(bn_buf_head(&b), k, &text, &len), 0);
  assert_int_equal(ms_next(bn_buf_head(&b), bn_buf_unread(&b), &text, &len),
                   (int)bn_buf_unread(&b));
  bn_buf_free(&b);
}

static void test_ms_hostile(void **state) {
  (void)state;
  static const struct {
    const char *raw;
    size_t n;
    int want;
  } cases[] = {
      {"", 0, BFTNET_EPROTO},       /* zero length */
      {"\n", 1, BFTNET_EPROTO},     /* just the newline */
      {"/noise", 6, BFTNET_EPROTO}, /* no newline */
      {"/noise\r", 7, BFTNET_EPROTO},
      {"/no\nise\n", 8, BFTNET_EPROTO}, /* newline inside */
      {"/no\0ise\n", 8, BFTNET_EPROTO}, /* NUL inside */
      {"/no\tise\n", 8, BFTNET_EPROTO},
      {"/no\x7fise\n", 8, BFTNET_EPROTO},
      {"/no\xc3\xa9ise\n", 9, BFTNET_EPROTO}, /* non-ASCII */
  };
  for (size_t i = 0; i < BN_ARRAY_LEN(cases); i++) {
    uint8_t buf[32];
    size_t n = ms_frame(buf, cases[i].raw, cases[i].n);
    const char *text;
    size_t len;
    assert_err(ms_next(buf, n, &text, &len), cases[i].want);
  }
}

static void test_ms_limits(void **state) {
  (void)state;
  const char *text;
  size_t len;
  /* Announcing more than BN_MS_MAX_MSG fails before the body arrives. */
  uint8_t hdr[BN_UVARINT_MAX_BYTES];
  size_t h = uvarint_encode(hdr, BN_MS_MAX_MSG + 1);
  assert_err(ms_next(hdr, h, &text, &len), BFTNET_ETOOBIG);
  h = uvarint_encode(hdr, 1ull << 40);
  assert_err(ms_next(hdr, h, &text, &len), BFTNET_ETOOBIG);
  const uint8_t nonmin[] = {0x82, 0x00, 'a', '\n'};
  assert_err(ms_next(nonmin, sizeof(nonmin), &text, &len), BFTNET_EPROTO);

  /* The largest message fits exactly; one more byte does not. */
  char big[BN_MS_MAX_MSG + 1];
  memset(big, 'x', sizeof(big));
  big[BN_MS_MAX_MSG - 1] = '\0';
  bn_buf_t b;
  bn_buf_init(&b);
  assert_ok(ms_append(&b, big));
  assert_int_equal(ms_next(bn_buf_head(&b), bn_buf_unread(&b), &text, &len),
                   (int)bn_buf_unread(&b));
  assert_int_equal(len, BN_MS_MAX_MSG - 1);
  big[BN_MS_MAX_MSG - 1] = 'x';
  big[BN_MS_MAX_MSG] = '\0';
  assert_err(ms_append(&b, big), BFTNET_ETOOBIG);
  assert_err(ms_append(&b, ""), BFTNET_EINVAL);
  assert_err(ms_append(&b, "/a\nb"), BFTNET_EINVAL);
  assert_err(ms_append(&b, "/a\x01"), BFTNET_EINVAL);
  bn_buf_free(&b);
}

static void test_ms_eq(void **state) {
  (void)state;
  assert_true(ms_eq("na", 2, "na"));
  assert_false(ms_eq("na", 2, "n"));
  assert_false(ms_eq("n", 1, "na"));
  assert_false(ms_eq("nax", 2, "nax"));
  assert_true(ms_eq("", 0, ""));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ms_wire_bytes), cmocka_unit_test(test_ms_truncated_every_length),
      cmocka_unit_test(test_ms_hostile),    cmocka_unit_test(test_ms_limits),
      cmocka_unit_test(test_ms_eq),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
