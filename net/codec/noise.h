/*
 * noise.h — Noise_XX_25519_ChaChaPoly_SHA256 (Noise rev. 34) on libsodium,
 * plus the libp2p handshake payload (libp2p/specs noise/README.md).
 * Pure: no I/O, no clock; randomness comes in as arguments (the ephemeral).
 *
 *   XX:  -> e
 *        <- e, ee, s, es
 *        -> s, se
 *
 * Each step checks the state, computes into locals and commits at the end;
 * secrets are wiped at one exit label. A failed step leaves the state
 * NOISE_HS_FAILED (sticky, every secret wiped) and the output zeroed. A call
 * out of turn returns BFTNET_ESTATE and changes nothing.
 */
#ifndef BFTNET_NOISE_H
#define BFTNET_NOISE_H

#include "core.h"
#include "proto.h"

#define NOISE_DHLEN 32u
#define NOISE_HASHLEN 32u
#define NOISE_KEYLEN 32u
#define NOISE_PROTOCOL_NAME "Noise_XX_25519_ChaChaPoly_SHA256"
/* libp2p signs this prefix || the Noise static public key with the identity key. */
#define NOISE_LIBP2P_SIG_PREFIX "noise-libp2p-static-key:"

typedef struct noise_cipher {
  uint8_t k[NOISE_KEYLEN];
  uint64_t n;       /* next nonce; 2^64-1 is reserved (rekey) and refused */
  bool has_k;
} noise_cipher_t;

typedef enum noise_hs_state {
  NOISE_HS_I_WRITE_1 = 0, /* initiator: -> e */
  NOISE_HS_I_READ_2,      /* initiator: <- e, ee, s, es */
  NOISE_HS_I_WRITE_3,     /* initiator: -> s, se */
  NOISE_HS_R_READ_1,      /* responder: <- e */
  NOISE_HS_R_WRITE_2,     /* responder: -> e, ee, s, es */
  NOISE_HS_R_READ_3,      /* responder: <- s, se */
  NOISE_HS_DONE,
  NOISE_HS_FAILED
} noise_hs_state_t;

typedef struct noise_hs {
  noise_hs_state_t state;
  bool initiator;
  uint8_t ck[NOISE_HASHLEN];
  uint8_t h[NOISE_HASHLEN];
  noise_cipher_t cs;
  uint8_t s_priv[NOISE_DHLEN], s_pub[NOISE_DHLEN];
  uint8_t e_priv[NOISE_DHLEN], e_pub[NOISE_DHLEN];
  uint8_t rs[NOISE_DHLEN], re[NOISE_DHLEN];
} noise_hs_t;

/* Initializes a handshake. s_priv is our static X25519 key; e_priv the
 * ephemeral (the caller draws it from the seam, or a test vector gives it).
 * Returns 0. */
int noise_hs_init(noise_hs_t *hs, bool initiator, const uint8_t *prologue, size_t plen,
                  const uint8_t s_priv[NOISE_DHLEN], const uint8_t e_priv[NOISE_DHLEN]);

/* Writes our next handshake message carrying payload into out (payload
 * must not overlap out). Returns the message length (> 0), BFTNET_ESTATE if
 * it is not our turn, BFTNET_EBUFSIZE if cap is too small, BFTNET_ETOOBIG if
 * the message would exceed 65535, BFTNET_EAUTH if a DH gives the all-zero
 * secret (the responder's message 2 after a low-order ephemeral in
 * message 1). */
int noise_hs_write(noise_hs_t *hs, const uint8_t *payload, size_t plen, uint8_t *out, size_t cap);

/* Reads the peer's next handshake message; decrypts its payload into out.
 * Returns the payload length (>= 0), BFTNET_ESTATE if not our turn,
 * BFTNET_EPROTO if too short, BFTNET_EDECRYPT if authentication fails,
 * BFTNET_EAUTH if a DH gives the all-zero secret (low-order key),
 * BFTNET_ETOOBIG if cap is too small or len > 65535.
 * Once the message carrying the peer's s is read (message 2 for the
 * initiator, 3 for the responder), hs->rs is the authenticated remote static
 * key to pass to noise_libp2p_payload_verify. */
int noise_hs_read(noise_hs_t *hs, const uint8_t *msg, size_t len, uint8_t *out, size_t cap);

/* After NOISE_HS_DONE: the transport ciphers for our role (send, recv), the
 * handshake hash, and the remote static key; then wipes hs. Returns
 * BFTNET_ESTATE if the handshake is not done. */
int noise_hs_split(noise_hs_t *hs, noise_cipher_t *send, noise_cipher_t *recv,
                   uint8_t hash_out[NOISE_HASHLEN], uint8_t remote_static[NOISE_DHLEN]);

/* Zeroes every secret in hs and leaves it NOISE_HS_FAILED (the all-zero
 * state would otherwise be a fresh initiator). */
void noise_hs_wipe(noise_hs_t *hs);

/* X25519 public key of a private key. */
void noise_dh_pub(const uint8_t priv[NOISE_DHLEN], uint8_t pub[NOISE_DHLEN]);

/* Transport messages, in place: encrypt len bytes at buf and append the
 * 16-byte tag at buf+len (the caller reserves it). Empty associated data.
 * Returns len + 16, BFTNET_ELIMIT when the nonce is exhausted,
 * BFTNET_ETOOBIG if len > BN_NOISE_MAX_PLAINTEXT, BFTNET_ESTATE if c has
 * no key. */
int noise_encrypt(noise_cipher_t *c, uint8_t *buf, size_t len);
/* Decrypts len bytes (ciphertext || tag) at buf in place. Returns the
 * plaintext length, or BFTNET_EDECRYPT (buf contents then unspecified and
 * the nonce unchanged), BFTNET_EPROTO if len < 16, BFTNET_ETOOBIG if
 * len > BN_NOISE_MAX_MSG, BFTNET_ELIMIT when the nonce is exhausted,
 * BFTNET_ESTATE if c has no key. */
int noise_decrypt(noise_cipher_t *c, uint8_t *buf, size_t len);

void noise_cipher_wipe(noise_cipher_t *c);

/* ------------------------------------------------------ libp2p payload */

/* Builds the NoiseHandshakePayload: identity_key = protobuf PublicKey of
 * ed_pk, identity_sig = Ed25519(ed_sk, prefix || static_pub). No extensions.
 * Returns its length, BFTNET_EBUFSIZE if cap is too small, or BFTNET_ETOOBIG
 * above BN_NOISE_MAX_PAYLOAD. */
int noise_libp2p_payload_build(const uint8_t ed_sk[64], const uint8_t ed_pk[32],
                               const uint8_t static_pub[NOISE_DHLEN], uint8_t *out,
                               size_t cap);

/* Verifies a peer's payload against its Noise static key (which the
 * handshake has authenticated). Extensions are parsed and ignored.
 * Returns 0 and the peer ID; BFTNET_EPROTO if the protobuf is malformed, a
 * field is missing or n > BN_NOISE_MAX_PAYLOAD, BFTNET_EBADKEY if the key is
 * not a canonical Ed25519 PublicKey, BFTNET_EAUTH if the signature does not
 * verify. */
int noise_libp2p_payload_verify(const uint8_t *payload, size_t n,
                                const uint8_t remote_static[NOISE_DHLEN], peerid_t *out);

#endif /* BFTNET_NOISE_H */
