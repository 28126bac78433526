/* proto_uvarint_test.c — multiformats unsigned-varint: vectors, truncation,
 * non-minimal and overlong encodings, randomized round trips. */
#include "harness.h"
#include "proto.h"

typedef struct uv_vec {
  uint64_t v;
  const char *hex;
} uv_vec_t;

/* From the multiformats/unsigned-varint README, plus the 9-byte edges. */
static const uv_vec_t uv_vecs[] = {
    {0, "00"},
    {1, "01"},
    {127, "7f"},
    {128, "8001"},
    {255, "ff01"},
    {300, "ac02"},
    {16384, "808001"},
    {(1ull << 56) - 1, "ffffffffffffff7f"},
    {1ull << 56, "8080808080808080"
                 "01"},
    {(1ull << 63) - 1, "ffffffffffffffff7f"},
};

static void test_uvarint_vectors(void **state) {
  (void)state;
  for (size_t i = 0; i < BN_ARRAY_LEN(uv_vecs); i++) {
    size_t n;
    uint8_t *want = th_hex(uv_vecs[i].hex, &n);
    uint8_t out[BN_UVARINT_MAX_BYTES];
    assert_int_equal(uvarint_encode(out, uv_vecs[i].v), n);
    assert_int_equal(uvarint_size(uv_vecs[i].v), n);
    assert_memory_equal(out, want, n);
    uint64_t v = 42;
    assert_int_equal(uvarint_decode(want, n, &v), (int)n);
    assert_true(v == uv_vecs[i].v);
    /* Every strict prefix needs more bytes; trailing bytes are not consumed. */
    for (size_t k = 0; k < n; k++)
      assert_int_equal(uvarint_decode(want, k, &v), 0);
    uint8_t longer[BN_UVARINT_MAX_BYTES + 3] = {0};
    memcpy(longer, want, n);
    assert_int_equal(uvarint_decode(longer, sizeof(longer), &v), (int)n);
    free(want);
  }
}

static void test_uvarint_hostile(void **state) {
  (void)state;
  static const char *const bad[] = {
      "8000",                 /* 0 in two bytes */
      "ff00",                 /* 127 with a zero tail */
      "808000",               /* non-minimal zero */
      "8180808000",           /* 1 padded out */
      "ffffffffffffffff80",   /* 9th byte continues */
      "ffffffffffffffffff01", /* 10 bytes (64-bit value) */
      "80808080808080808001", /* 10 bytes, 2^63 */
      "ffffffffffffffffffffff",
  };
  for (size_t i = 0; i < BN_ARRAY_LEN(bad); i++) {
    size_t n;
    uint8_t *p = th_hex(bad[i], &n);
    uint64_t v = 7;
    assert_err(uvarint_decode(p, n, &v), BFTNET_EPROTO);
    assert_true(v == 7); /* untouched on error */
    free(p);
  }
  uint64_t v;
  assert_int_equal(uvarint_decode(NULL, 0, &v), 0);
  /* Eight continuation bytes are still a legal prefix: need more. */
  const uint8_t cont[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  assert_int_equal(uvarint_decode(cont, sizeof(cont), &v), 0);
}

static uint64_t uv_rand(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static void test_uvarint_random_roundtrip(void **state) {
  (void)state;
  uint64_t s = th_seed();
  for (int i = 0; i < 100000; i++) {
    uint64_t v = uv_rand(&s) >> (1 + uv_rand(&s) % 63);
    uint8_t out[BN_UVARINT_MAX_BYTES];
    size_t n = uvarint_encode(out, v);
    uint64_t back;
    assert_int_equal(uvarint_decode(out, n, &back), (int)n);
    assert_true(back == v);
    assert_int_equal(uvarint_size(v), n);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_uvarint_vectors),
      cmocka_unit_test(test_uvarint_hostile),
      cmocka_unit_test(test_uvarint_random_roundtrip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
