/*
 * aead_test.c — ChaCha20-Poly1305 as Noise uses it (net/codec/aead.c).
 *
 * The implementation bftnet uses (OpenSSL's when built with it) must compute
 * exactly libsodium's bytes — the wire format may not depend on the build —
 * for every length class the vector code paths split on (0, under a block,
 * block edges, 16 KiB records, the largest Noise message), in place and not,
 * with and without associated data. A changed bit anywhere (ciphertext,
 * tag, AD, key, nonce) must fail to open and leave no plaintext behind.
 * Threads seal and open at once, each with its own per-thread context.
 * Known-answer coverage of the same code comes from noise_test's vectors.
 */
#include <pthread.h>

#include <sodium.h>

#include "aead.h"
#include "harness.h"

#define MAXLEN 65535u

static const size_t LENS[] = {0,    1,    15,    16,    17,    63,    64,    65,   127,
                              128,  129,  255,   256,   511,   512,   1000,  1024, 4095,
                              4096, 8191, 16384, 16400, 32768, 65519, MAXLEN};
#define NLENS (sizeof LENS / sizeof *LENS)

static int all_zero(const uint8_t *p, size_t n) {
  uint8_t acc = 0;
  for (size_t i = 0; i < n; i++)
    acc |= p[i];
  return acc == 0;
}

/* One length and AD length: best and libsodium agree, both directions,
 * in place and out of place. */
static void check_agree(uint64_t *rng, size_t len, size_t adlen) {
  static uint8_t pt[MAXLEN], a[MAXLEN], b[MAXLEN], inpl[MAXLEN], back[MAXLEN];
  uint8_t key[BN_AEAD_KEYBYTES], ad[64], tag_a[BN_AEAD_TAGBYTES], tag_b[BN_AEAD_TAGBYTES],
      tag_i[BN_AEAD_TAGBYTES];
  uint64_t n = th_rnd(rng);
  if (n == UINT64_MAX) n--; /* Noise never uses 2^64-1 */
  randombytes_buf(key, sizeof key);
  randombytes_buf(ad, sizeof ad);
  randombytes_buf(pt, len ? len : 1);

  bn_aead_best.seal(key, n, adlen ? ad : NULL, adlen, pt, len, a, tag_a);
  bn_aead_sodium.seal(key, n, adlen ? ad : NULL, adlen, pt, len, b, tag_b);
  if (memcmp(a, b, len) != 0 || memcmp(tag_a, tag_b, sizeof tag_a) != 0)
    fail_msg("%s and libsodium differ at %zu B, AD %zu B", bn_aead_best.name, len, adlen);
  /* It did encrypt: 8 bytes or more (a shorter ciphertext equals its
   * plaintext by chance, 1 byte once in 256). */
  if (len >= 8) assert_memory_not_equal(a, pt, len);

  memcpy(inpl, pt, len);
  bn_aead_best.seal(key, n, adlen ? ad : NULL, adlen, inpl, len, inpl, tag_i);
  assert_memory_equal(inpl, a, len);
  assert_memory_equal(tag_i, tag_a, sizeof tag_a);

  /* Each opens the other's output, out of place and in place. */
  assert_int_equal(bn_aead_sodium.open(key, n, ad, adlen, a, len, tag_a, back), 0);
  assert_memory_equal(back, pt, len);
  assert_int_equal(bn_aead_best.open(key, n, ad, adlen, b, len, tag_b, back), 0);
  assert_memory_equal(back, pt, len);
  assert_int_equal(bn_aead_best.open(key, n, ad, adlen, inpl, len, tag_i, inpl), 0);
  assert_memory_equal(inpl, pt, len);
  /* The shorthand is the best implementation. */
  assert_int_equal(bn_aead_open(key, n, ad, adlen, a, len, tag_a, back), 0);
  assert_memory_equal(back, pt, len);
}

static void test_agrees_with_libsodium(void **state) {
  (void)state;
  uint64_t rng = th_rng_init(th_seed());
  for (size_t i = 0; i < NLENS; i++) {
    check_agree(&rng, LENS[i], 0);
    check_agree(&rng, LENS[i], 1 + th_rnd(&rng) % 64);
  }
  for (int i = 0; i < 200; i++) /* random lengths in between */
    check_agree(&rng, th_rnd(&rng) % (MAXLEN + 1), th_rnd(&rng) % 3 ? 0 : th_rnd(&rng) % 65);
}

/* Noise's nonce (§4.2): 32 zero bits, then n little-endian. */
static void test_nonce_layout(void **state) {
  (void)state;
  uint8_t key[32], pt[100], a[100], b[100], tag_a[16], tag_b[16];
  const uint8_t npub[12] = {0, 0, 0, 0, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01};
  randombytes_buf(key, sizeof key);
  randombytes_buf(pt, sizeof pt);
  bn_aead_seal(key, 0x0102030405060708ull, NULL, 0, pt, sizeof pt, a, tag_a);
  crypto_aead_chacha20poly1305_ietf_encrypt_detached(b, tag_b, NULL, pt, sizeof pt, NULL, 0, NULL,
                                                     npub, key);
  assert_memory_equal(a, b, sizeof a);
  assert_memory_equal(tag_a, tag_b, sizeof tag_a);
}

/* A flipped bit anywhere fails, and the output holds no plaintext. */
static void test_tamper(void **state) {
  (void)state;
  static uint8_t pt[16400], ct[16400], out[16400];
  uint64_t rng = th_rng_init(th_seed() + 1);
  const size_t lens[] = {0, 1, 64, 1024, 16400};
  for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
    size_t len = lens[li];
    uint8_t key[32], ad[13], tag[16];
    uint64_t n = th_rnd(&rng) >> 1;
    randombytes_buf(key, sizeof key);
    randombytes_buf(ad, sizeof ad);
    randombytes_buf(pt, len ? len : 1);
    bn_aead_seal(key, n, ad, sizeof ad, pt, len, ct, tag);
    for (int what = 0; what < 5; what++) {
      if (what == 0 && len == 0) continue;
      uint8_t k2[32], ad2[13], tag2[16];
      uint64_t n2 = n;
      memcpy(k2, key, 32), memcpy(ad2, ad, 13), memcpy(tag2, tag, 16);
      size_t at = 0;
      switch (what) {
      case 0:
        at = th_rnd(&rng) % len, ct[at] ^= 1;
        break;
      case 1:
        tag2[th_rnd(&rng) % 16] ^= 0x80;
        break;
      case 2:
        ad2[th_rnd(&rng) % 13] ^= 0x10;
        break;
      case 3:
        k2[th_rnd(&rng) % 32] ^= 0x01;
        break;
      case 4:
        n2 ^= 1ull << (th_rnd(&rng) % 64);
        break;
      }
      memset(out, 0xAA, len);
      assert_int_equal(bn_aead_open(k2, n2, ad2, sizeof ad2, ct, len, tag2, out), -1);
      assert_true(all_zero(out, len));
      assert_int_equal(bn_aead_sodium.open(k2, n2, ad2, sizeof ad2, ct, len, tag2, out), -1);
      if (what == 0) ct[at] ^= 1;
    }
    assert_int_equal(bn_aead_open(key, n, ad, sizeof ad, ct, len, tag, out), 0);
    assert_memory_equal(out, pt, len);
  }
}

/* Threads that seal and open at once (per-thread contexts), then exit
 * (their contexts are freed: LeakSanitizer checks). */
enum { THREADS = 4, ROUNDS = 300 };

static void *worker(void *arg) {
  uint64_t rng = th_rng_init((uint64_t)(uintptr_t)arg);
  static _Thread_local uint8_t pt[20000], a[20000], b[20000];
  for (int i = 0; i < ROUNDS; i++) {
    size_t len = th_rnd(&rng) % sizeof pt;
    uint8_t key[32], ta[16], tb[16];
    uint64_t n = th_rnd(&rng) >> 1;
    for (size_t j = 0; j < 32; j++)
      key[j] = (uint8_t)th_rnd(&rng);
    for (size_t j = 0; j < len; j++)
      pt[j] = (uint8_t)j;
    bn_aead_seal(key, n, NULL, 0, pt, len, a, ta);
    bn_aead_sodium.seal(key, n, NULL, 0, pt, len, b, tb);
    if (memcmp(a, b, len) || memcmp(ta, tb, 16)) return (void *)1;
    if (bn_aead_open(key, n, NULL, 0, a, len, ta, a) || memcmp(a, pt, len)) return (void *)2;
  }
  return NULL;
}

static void test_threads(void **state) {
  (void)state;
  pthread_t t[THREADS];
  for (uintptr_t i = 0; i < THREADS; i++)
    assert_int_equal(pthread_create(&t[i], NULL, worker, (void *)(i + 1)), 0);
  for (int i = 0; i < THREADS; i++) {
    void *r;
    assert_int_equal(pthread_join(t[i], &r), 0);
    assert_null(r);
  }
}

static void test_name(void **state) {
  (void)state;
#ifdef BFTNET_HAVE_OPENSSL
  assert_string_equal(bn_aead_best.name, "openssl");
#else
  assert_string_equal(bn_aead_best.name, "libsodium");
#endif
  assert_string_equal(bn_aead_sodium.name, "libsodium");
  printf("ChaCha20-Poly1305 in use: %s\n", bn_aead_best.name);
}

int main(void) {
  if (sodium_init() < 0) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_name),
      cmocka_unit_test(test_nonce_layout),
      cmocka_unit_test(test_agrees_with_libsodium),
      cmocka_unit_test(test_tamper),
      cmocka_unit_test(test_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
