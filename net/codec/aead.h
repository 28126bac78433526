/*
 * aead.h — ChaCha20-Poly1305 (RFC 8439, the IETF variant with a 96-bit
 * nonce), the AEAD of Noise's ChaChaPoly cipher (§4.2 of the Noise spec).
 *
 * Two implementations of the same function, chosen at build time:
 *   - OpenSSL's libcrypto (BFTNET_HAVE_OPENSSL), whose AVX2/AVX-512 code is
 *     several times faster than libsodium 1.0.18's on large records (the
 *     figures are in docs/BENCHMARKS.md): the cipher is most of the CPU a
 *     node spends on large messages;
 *   - libsodium, always built (the fallback, and the reference the tests
 *     compare the other against byte for byte).
 * Both are the same algorithm: the bytes on the wire do not depend on the
 * choice.
 *
 * Standalone on purpose (no bftnet headers): bftnet-bench compiles it into
 * its crypto-limit baseline so that the limit uses the same cipher code.
 */
#ifndef BFTNET_NET_AEAD_H
#define BFTNET_NET_AEAD_H

#include <stddef.h>
#include <stdint.h>

#define BN_AEAD_KEYBYTES 32u
#define BN_AEAD_TAGBYTES 16u

/* A sealing function: out = ChaCha20(key, nonce(n)) xor in, tag = Poly1305
 * over ad and out. nonce(n) is Noise's: 32 zero bits || little-endian 64-bit
 * n. out may equal in (not any other overlap). ad may be NULL when adlen is 0. */
typedef void (*bn_aead_seal_fn)(const uint8_t key[BN_AEAD_KEYBYTES], uint64_t n, const uint8_t *ad,
                                size_t adlen, const uint8_t *in, size_t len, uint8_t *out,
                                uint8_t tag[BN_AEAD_TAGBYTES]);
/* The inverse: 0, or -1 when the tag does not authenticate (out is then
 * zeroed, since an implementation may decrypt before it checks). */
typedef int (*bn_aead_open_fn)(const uint8_t key[BN_AEAD_KEYBYTES], uint64_t n, const uint8_t *ad,
                               size_t adlen, const uint8_t *in, size_t len,
                               const uint8_t tag[BN_AEAD_TAGBYTES], uint8_t *out);

typedef struct bn_aead {
  const char *name; /* "openssl" or "libsodium" */
  bn_aead_seal_fn seal;
  bn_aead_open_fn open;
} bn_aead_t;

/* The implementation bftnet uses (the fastest one built in). */
extern const bn_aead_t bn_aead_best;
/* libsodium's, always present. */
extern const bn_aead_t bn_aead_sodium;

/* Shorthands for the one in use. */
void bn_aead_seal(const uint8_t key[BN_AEAD_KEYBYTES], uint64_t n, const uint8_t *ad, size_t adlen,
                  const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[BN_AEAD_TAGBYTES]);
int bn_aead_open(const uint8_t key[BN_AEAD_KEYBYTES], uint64_t n, const uint8_t *ad, size_t adlen,
                 const uint8_t *in, size_t len, const uint8_t tag[BN_AEAD_TAGBYTES], uint8_t *out);

#endif
