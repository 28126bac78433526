/* peerid.c — libp2p peer IDs (libp2p/specs peer-ids/peer-ids.md): the
 * multihash of a protobuf PublicKey, shown in base58btc. */
#include <sodium.h>

#include "proto.h"

#define PEERID_MH_IDENTITY  0x00u
#define PEERID_MH_SHA256    0x12u
#define PEERID_SHA256_LEN   32u
#define PEERID_IDENTITY_MAX 42u /* keys up to this size are inlined */
/* Longest base58 text we look at: a 64-byte multihash needs at most 88. */
#define PEERID_TEXT_MAX 128u

static const uint8_t peerid_ed25519_prefix[4] = {0x08, 0x01, 0x12, 0x20};

_Static_assert(2 + PEERID_IDENTITY_MAX <= BN_MADDR_MAX_PEERID, "identity multihash fits");
_Static_assert(2 + PEERID_SHA256_LEN <= BN_MADDR_MAX_PEERID, "sha256 multihash fits");

void peerid_ed25519_pubkey_pb(const uint8_t pk[32], uint8_t out[PEERID_ED25519_PUBPB_LEN]) {
  memcpy(out, peerid_ed25519_prefix, sizeof(peerid_ed25519_prefix));
  memcpy(out + sizeof(peerid_ed25519_prefix), pk, 32);
}

/* The multihash rule, for bytes already known to be a PublicKey. */
static void peerid_from_key_bytes(const uint8_t *pb, size_t n, peerid_t *out) {
  BN_ASSERT(n > 0);
  if (n <= PEERID_IDENTITY_MAX) {
    out->bytes[0] = PEERID_MH_IDENTITY;
    out->bytes[1] = (uint8_t)n;
    memcpy(out->bytes + 2, pb, n);
    out->len = (uint8_t)(2 + n);
  } else {
    out->bytes[0] = PEERID_MH_SHA256;
    out->bytes[1] = PEERID_SHA256_LEN;
    crypto_hash_sha256(out->bytes + 2, pb, n);
    out->len = 2 + PEERID_SHA256_LEN;
  }
}

void peerid_from_ed25519(const uint8_t pk[32], peerid_t *out) {
  uint8_t pb[PEERID_ED25519_PUBPB_LEN];
  peerid_ed25519_pubkey_pb(pk, pb);
  peerid_from_key_bytes(pb, sizeof(pb), out);
}

/* True if pb decodes as a PublicKey with some key data (any key type). */
static bool peerid_is_pubkey_pb(const uint8_t *pb, size_t n) {
  if (n == 0 || n > BN_PB_ARENA_MAX) return false;
  pb_arena_t arena;
  pb_arena_init(&arena);
  Bftnet__Keys__PublicKey *k = bftnet__keys__public_key__unpack(&arena.alloc, n, pb);
  return k != NULL && k->data.len > 0;
}

int peerid_from_pubkey_pb(const uint8_t *pb, size_t n, peerid_t *out) {
  if (!peerid_is_pubkey_pb(pb, n)) return BFTNET_EBADKEY;
  peerid_from_key_bytes(pb, n, out);
  return 0;
}

int peerid_ed25519_pubkey_parse(const uint8_t *pb, size_t n, uint8_t pk[32]) {
  if (n != PEERID_ED25519_PUBPB_LEN) return BFTNET_EBADKEY;
  if (memcmp(pb, peerid_ed25519_prefix, sizeof(peerid_ed25519_prefix)) != 0) return BFTNET_EBADKEY;
  memcpy(pk, pb + sizeof(peerid_ed25519_prefix), 32);
  return 0;
}

/* A peer ID is a sha2-256 multihash, or an identity multihash whose digest
 * is a PublicKey small enough to be inlined (larger keys are never inlined). */
static bool peerid_valid(const uint8_t *b, size_t len) {
  if (len < 2) return false;
  if (b[0] == PEERID_MH_SHA256) return b[1] == PEERID_SHA256_LEN && len == 2 + PEERID_SHA256_LEN;
  if (b[0] != PEERID_MH_IDENTITY) return false;
  size_t dlen = b[1];
  return dlen + 2 == len && dlen <= PEERID_IDENTITY_MAX && peerid_is_pubkey_pb(b + 2, dlen);
}

int peerid_to_string(const peerid_t *id, char *out, size_t cap) {
  if (id->len == 0 || id->len > BN_MADDR_MAX_PEERID) return BFTNET_EINVAL;
  return base58_encode(id->bytes, id->len, out, cap);
}

int peerid_from_string(const char *s, size_t len, peerid_t *out) {
  if (len == 0 || len > PEERID_TEXT_MAX) return BFTNET_EBADPEERID;
  uint8_t b[BN_MADDR_MAX_PEERID];
  int n = base58_decode(s, len, b, sizeof(b));
  if (n < 0 || !peerid_valid(b, (size_t)n)) return BFTNET_EBADPEERID;
  memcpy(out->bytes, b, (size_t)n);
  out->len = (uint8_t)n;
  return 0;
}

bool peerid_equal(const peerid_t *a, const peerid_t *b) {
  return a->len == b->len && memcmp(a->bytes, b->bytes, a->len) == 0;
}

int peerid_cmp(const peerid_t *a, const peerid_t *b) {
  size_t n = BN_MIN(a->len, b->len);
  int c = memcmp(a->bytes, b->bytes, n);
  if (c != 0) return c < 0 ? -1 : 1;
  return (a->len > b->len) - (a->len < b->len);
}
