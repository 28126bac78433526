/*
 * aead.c — ChaCha20-Poly1305 for Noise transport and handshake messages, on
 * OpenSSL's libcrypto when the build has it, else on libsodium (aead.h).
 */
#include "aead.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

_Static_assert(BN_AEAD_KEYBYTES == crypto_aead_chacha20poly1305_ietf_KEYBYTES, "key size");
_Static_assert(BN_AEAD_TAGBYTES == crypto_aead_chacha20poly1305_ietf_ABYTES, "tag size");
_Static_assert(crypto_aead_chacha20poly1305_ietf_NPUBBYTES == 12, "96-bit nonce");

/* Noise §4.2: 32 bits of zeros || little-endian 64-bit n. */
static void aead_nonce(uint8_t npub[12], uint64_t n) {
  memset(npub, 0, 4);
  for (unsigned i = 0; i < 8; i++)
    npub[4 + i] = (uint8_t)(n >> (8 * i));
}

/* ----------------------------------------------------------- libsodium */

static void sodium_seal(const uint8_t key[BN_AEAD_KEYBYTES], uint64_t n, const uint8_t *ad,
                        size_t adlen, const uint8_t *in, size_t len, uint8_t *out,
                        uint8_t tag[BN_AEAD_TAGBYTES]) {
  static const uint8_t empty[1];
  uint8_t npub[12];
  aead_nonce(npub, n);
  crypto_aead_chacha20poly1305_ietf_encrypt_detached(out, tag, NULL, in ? in : empty, len,
                                                     ad ? ad : empty, adlen, NULL, npub, key);
}

static int sodium_open(const uint8_t key[BN_AEAD_KEYBYTES], uint64_t n, const uint8_t *ad,
                       size_t adlen, const uint8_t *in, size_t len,
                       const uint8_t tag[BN_AEAD_TAGBYTES], uint8_t *out) {
  static const uint8_t empty[1];
  uint8_t npub[12];
  aead_nonce(npub, n);
  if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(out, NULL, in ? in : empty, len, tag,
                                                         ad ? ad : empty, adlen, npub, key) != 0) {
    if (len) sodium_memzero(out, len);
    return -1;
  }
  return 0;
}

const bn_aead_t bn_aead_sodium = {"libsodium", sodium_seal, sodium_open};

#ifdef BFTNET_HAVE_OPENSSL
/* ------------------------------------------------------------- OpenSSL */
#include <openssl/evp.h>
#include <pthread.h>

/* One sealing and one opening context per thread, keyed afresh for every
 * record (for ChaCha20 that is a 32-byte copy): no lock, no per-connection
 * state to copy or free. The thread's contexts are freed when it exits. */
typedef struct ossl_ctx {
  EVP_CIPHER_CTX *seal, *open;
} ossl_ctx_t;

static pthread_key_t ossl_key;
static pthread_once_t ossl_once = PTHREAD_ONCE_INIT;
static int ossl_key_ok;
static _Thread_local ossl_ctx_t *ossl_tls;

static void ossl_ctx_free(void *p) {
  ossl_ctx_t *c = p;
  if (!c) return;
  EVP_CIPHER_CTX_free(c->seal);
  EVP_CIPHER_CTX_free(c->open);
  free(c);
  ossl_tls = NULL;
}

static void ossl_key_init(void) {
  ossl_key_ok = pthread_key_create(&ossl_key, ossl_ctx_free) == 0;
}

/* The thread's contexts, or NULL (out of memory, or OpenSSL refuses the
 * cipher, e.g. under a provider configuration without it): the caller then
 * uses libsodium, which computes the same bytes. */
static ossl_ctx_t *ossl_ctx(void) {
  if (ossl_tls) return ossl_tls;
  pthread_once(&ossl_once, ossl_key_init);
  if (!ossl_key_ok) return NULL;
  ossl_ctx_t *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->seal = EVP_CIPHER_CTX_new();
  c->open = EVP_CIPHER_CTX_new();
  if (!c->seal || !c->open ||
      EVP_EncryptInit_ex(c->seal, EVP_chacha20_poly1305(), NULL, NULL, NULL) != 1 ||
      EVP_DecryptInit_ex(c->open, EVP_chacha20_poly1305(), NULL, NULL, NULL) != 1 ||
      pthread_setspecific(ossl_key, c) != 0) {
    ossl_ctx_free(c);
    return NULL;
  }
  ossl_tls = c;
  return c;
}

/* Past a successful Init, OpenSSL's ChaCha20-Poly1305 fails only on
 * arguments this file never passes; a failure there would leave out half
 * written (in place, the plaintext gone), so it is not papered over. */
static void ossl_fatal(const char *what) {
  fprintf(stderr, "bftnet: OpenSSL ChaCha20-Poly1305 %s failed\n", what);
  abort();
}

static void ossl_seal(const uint8_t key[BN_AEAD_KEYBYTES], uint64_t n, const uint8_t *ad,
                      size_t adlen, const uint8_t *in, size_t len, uint8_t *out,
                      uint8_t tag[BN_AEAD_TAGBYTES]) {
  uint8_t npub[12];
  ossl_ctx_t *c = len <= INT_MAX && adlen <= INT_MAX ? ossl_ctx() : NULL;
  int l;

  aead_nonce(npub, n);
  if (!c || EVP_EncryptInit_ex(c->seal, NULL, NULL, key, npub) != 1) {
    sodium_seal(key, n, ad, adlen, in, len, out, tag);
    return;
  }
  if (adlen && EVP_EncryptUpdate(c->seal, NULL, &l, ad, (int)adlen) != 1) ossl_fatal("AD");
  if (len && EVP_EncryptUpdate(c->seal, out, &l, in, (int)len) != 1) ossl_fatal("encrypt");
  if (EVP_EncryptFinal_ex(c->seal, out + len, &l) != 1 ||
      EVP_CIPHER_CTX_ctrl(c->seal, EVP_CTRL_AEAD_GET_TAG, BN_AEAD_TAGBYTES, tag) != 1)
    ossl_fatal("tag");
}

static int ossl_open(const uint8_t key[BN_AEAD_KEYBYTES], uint64_t n, const uint8_t *ad,
                     size_t adlen, const uint8_t *in, size_t len,
                     const uint8_t tag[BN_AEAD_TAGBYTES], uint8_t *out) {
  uint8_t npub[12], t[BN_AEAD_TAGBYTES];
  ossl_ctx_t *c = len <= INT_MAX && adlen <= INT_MAX ? ossl_ctx() : NULL;
  int l, ok;

  aead_nonce(npub, n);
  if (!c || EVP_DecryptInit_ex(c->open, NULL, NULL, key, npub) != 1)
    return sodium_open(key, n, ad, adlen, in, len, tag, out);
  memcpy(t, tag, sizeof t); /* SET_TAG takes a non-const pointer */
  if (adlen && EVP_DecryptUpdate(c->open, NULL, &l, ad, (int)adlen) != 1) ossl_fatal("AD");
  if (len && EVP_DecryptUpdate(c->open, out, &l, in, (int)len) != 1) ossl_fatal("decrypt");
  if (EVP_CIPHER_CTX_ctrl(c->open, EVP_CTRL_AEAD_SET_TAG, BN_AEAD_TAGBYTES, t) != 1)
    ossl_fatal("tag");
  ok = EVP_DecryptFinal_ex(c->open, out + len, &l) == 1;
  if (!ok && len) sodium_memzero(out, len);
  return ok ? 0 : -1;
}

const bn_aead_t bn_aead_best = {"openssl", ossl_seal, ossl_open};
#define AEAD_SEAL ossl_seal
#define AEAD_OPEN ossl_open
#else
const bn_aead_t bn_aead_best = {"libsodium", sodium_seal, sodium_open};
#define AEAD_SEAL sodium_seal
#define AEAD_OPEN sodium_open
#endif

void bn_aead_seal(const uint8_t key[BN_AEAD_KEYBYTES], uint64_t n, const uint8_t *ad, size_t adlen,
                  const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[BN_AEAD_TAGBYTES]) {
  AEAD_SEAL(key, n, ad, adlen, in, len, out, tag);
}

int bn_aead_open(const uint8_t key[BN_AEAD_KEYBYTES], uint64_t n, const uint8_t *ad, size_t adlen,
                 const uint8_t *in, size_t len, const uint8_t tag[BN_AEAD_TAGBYTES], uint8_t *out) {
  return AEAD_OPEN(key, n, ad, adlen, in, len, tag, out);
}
