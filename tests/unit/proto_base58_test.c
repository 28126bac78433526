/* proto_base58_test.c — base58btc: vectors, leading zeros, invalid
 * characters, exact capacity edges, randomized round trips. */
#include "harness.h"
#include "proto.h"

typedef struct b58_vec {
  const char *hex;
  const char *text;
} b58_vec_t;

static const b58_vec_t b58_vecs[] = {
    {"", ""},
    {"00", "1"},
    {"0000", "11"},
    {"0000ff", "115Q"},
    {"ffffffff", "7YXq9G"},
    {"0000287fb4cd", "11233QC4"},
    {"48656c6c6f20576f726c6421", "2NEpo7TZRRrLZSi2U"}, /* "Hello World!" */
    {"54686520717569636b2062726f776e20666f78206a756d7073206f76657220746865206c617a7920646f672e",
     "USm3fpXnKG5EUBx2ndxBDMPVciP5hGey2Jh4NDv6gmeo1LkMeiKrLJUUBk6Z"},
};

static void test_base58_vectors(void **state) {
  (void)state;
  for (size_t i = 0; i < BN_ARRAY_LEN(b58_vecs); i++) {
    size_t n;
    uint8_t *bin = th_hex(b58_vecs[i].hex, &n);
    const char *text = b58_vecs[i].text;
    size_t tlen = strlen(text);
    char out[128];
    assert_ok(base58_encode(bin, n, out, sizeof(out)));
    assert_string_equal(out, text);
    /* Exactly enough room works; one byte less does not. */
    assert_ok(base58_encode(bin, n, out, tlen + 1));
    assert_err(base58_encode(bin, n, out, tlen), BFTNET_EBUFSIZE);
    uint8_t back[128];
    assert_int_equal(base58_decode(text, tlen, back, sizeof(back)), (int)n);
    assert_memory_equal(back, bin, n);
    assert_int_equal(base58_decode(text, tlen, back, n), (int)n);
    if (n > 0) assert_err(base58_decode(text, tlen, back, n - 1), BFTNET_ETOOBIG);
    free(bin);
  }
}

static void test_base58_invalid_chars(void **state) {
  (void)state;
  static const char *const bad[] = {
      "0",    "O",        "I", "l", "+", "/", " ", "2NEpo7TZ0RrLZSi2U", "2NEpo7TZRRrLZSi2U ",
      "\xff", "1\xc3\xa9"};
  uint8_t out[64];
  for (size_t i = 0; i < BN_ARRAY_LEN(bad); i++)
    assert_err(base58_decode(bad[i], strlen(bad[i]), out, sizeof(out)), BFTNET_EINVAL);
  /* A NUL inside the given length is a character like any other. */
  assert_err(base58_decode("12\0"
                           "3",
                           4, out, sizeof(out)),
             BFTNET_EINVAL);
  /* Leading '1's alone need that many bytes. */
  assert_err(base58_decode("1111", 4, out, 3), BFTNET_ETOOBIG);
  assert_err(base58_encode(out, 0, NULL, 0), BFTNET_EBUFSIZE);
}

static uint64_t b58_rand(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static void test_base58_random_roundtrip(void **state) {
  (void)state;
  uint64_t s = th_seed() ^ 0x58;
  for (int iter = 0; iter < 2000; iter++) {
    uint8_t in[80];
    size_t n = b58_rand(&s) % sizeof(in);
    size_t zeros = n ? b58_rand(&s) % (n + 1) : 0;
    for (size_t i = 0; i < n; i++)
      in[i] = i < zeros ? 0 : (uint8_t)b58_rand(&s);
    char text[128];
    assert_ok(base58_encode(in, n, text, sizeof(text)));
    size_t z = 0;
    while (z < n && in[z] == 0)
      z++;
    for (size_t i = 0; i < z; i++)
      assert_int_equal(text[i], '1');
    uint8_t back[80];
    assert_int_equal(base58_decode(text, strlen(text), back, sizeof(back)), (int)n);
    if (n) assert_memory_equal(back, in, n);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_base58_vectors),
      cmocka_unit_test(test_base58_invalid_chars),
      cmocka_unit_test(test_base58_random_roundtrip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
