/*
 * identity.h — the node's Ed25519 identity key (public type bftnet_key_t).
 * The secret (seed || public key, 64 bytes, libsodium's layout) lives in
 * sodium_malloc memory: guarded pages, wiped and freed by bftnet_key_free.
 */
#ifndef BFTNET_IDENTITY_H
#define BFTNET_IDENTITY_H

#include "core.h"
#include "proto.h"

struct bftnet_key {
  uint8_t *sk;    /* sodium_malloc(64): Ed25519 secret key (seed || pk) */
  uint8_t pk[32]; /* Ed25519 public key */
  peerid_t id;    /* libp2p peer ID of pk */
};

/* Signs msg with the key: sig is 64 bytes. */
void identity_sign(const struct bftnet_key *key, const uint8_t *msg, size_t n, uint8_t sig[64]);

/* The bftnet_key_* public functions (bftnet.h) are implemented in identity.c:
 * generate (libsodium's RNG: key generation is not part of the replayable
 * seam), load / from_protobuf (strict: type Ed25519, Data = 64 bytes whose
 * second half equals the public key derived from the seed), save (O_EXCL,
 * mode 0600, written in full then fsync'd), peer_id, free. */

#endif
