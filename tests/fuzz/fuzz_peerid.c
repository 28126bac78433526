/* fuzz_peerid.c — peer IDs from text and from PublicKey protobufs, and
 * base58 underneath: accepted input round-trips, and both entry points
 * agree on what a valid peer ID is. The first byte picks the mode. */
#include <stdlib.h>

#include "proto.h"

#define FZ_CHECK(c) ((c) ? (void)0 : abort()) /* a violated property */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fz_check_id_text(const peerid_t *id) {
  char text[BFTNET_PEER_ID_MAX];
  FZ_CHECK(peerid_to_string(id, text, sizeof(text)) == 0);
  peerid_t back;
  FZ_CHECK(peerid_from_string(text, strlen(text), &back) == 0);
  FZ_CHECK(peerid_equal(&back, id) && peerid_cmp(&back, id) == 0);
}

static void fz_string(const char *s, size_t n) {
  peerid_t id;
  int rc = peerid_from_string(s, n, &id);
  if (rc != 0) {
    FZ_CHECK(rc == BFTNET_EBADPEERID);
    return;
  }
  FZ_CHECK(id.len >= 2 && id.len <= BN_MADDR_MAX_PEERID);
  char text[BFTNET_PEER_ID_MAX];
  FZ_CHECK(peerid_to_string(&id, text, sizeof(text)) == 0);
  FZ_CHECK(strlen(text) == n && memcmp(text, s, n) == 0); /* base58 is canonical */
}

static void fz_pubkey(const uint8_t *pb, size_t n) {
  peerid_t id;
  int rc = peerid_from_pubkey_pb(pb, n, &id);
  if (rc == 0)
    fz_check_id_text(&id);
  else
    FZ_CHECK(rc == BFTNET_EBADKEY);
  uint8_t pk[32];
  if (peerid_ed25519_pubkey_parse(pb, n, pk) == 0) {
    FZ_CHECK(n == PEERID_ED25519_PUBPB_LEN && rc == 0);
    peerid_t ed;
    peerid_from_ed25519(pk, &ed);
    FZ_CHECK(peerid_equal(&ed, &id));
  }
}

static void fz_base58(const uint8_t *d, size_t n) {
  uint8_t bin[256];
  int rc = base58_decode((const char *)d, n, bin, sizeof(bin));
  if (rc >= 0) {
    char text[512];
    FZ_CHECK(base58_encode(bin, (size_t)rc, text, sizeof(text)) == 0);
    FZ_CHECK(strlen(text) == n && memcmp(text, d, n) == 0);
  } else {
    FZ_CHECK(rc == BFTNET_EINVAL || rc == BFTNET_ETOOBIG);
  }
  char text[512];
  if (n <= 256 && base58_encode(d, n, text, sizeof(text)) == 0) {
    FZ_CHECK(base58_decode(text, strlen(text), bin, sizeof(bin)) == (int)n);
    FZ_CHECK(n == 0 || memcmp(bin, d, n) == 0);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > 1024) return 0;
  const uint8_t *d = data + 1;
  size_t n = size - 1;
  switch (data[0] % 3) {
  case 0:
    fz_string((const char *)d, n);
    break;
  case 1:
    fz_pubkey(d, n);
    break;
  default:
    fz_base58(d, n);
    break;
  }
  return 0;
}
