/*
 * fuzz_noise_payload.c — noise_libp2p_payload_verify on arbitrary bytes.
 * The remote static key is fixed, so a seed carrying a valid signature over
 * it (tests/fuzz/corpus/fuzz_noise_payload/) reaches the success path and
 * the fuzzer can mutate the unsigned parts (extensions, unknown fields).
 */
#include <stdlib.h>

#include "noise.h"

/* The fixed static key the seeds are signed for: the cacophony vector's
 * responder static (its public half is computed once). */
static const uint8_t k_static_priv[NOISE_DHLEN] = {
    0x4a, 0x3a, 0xcb, 0xfd, 0xb1, 0x63, 0xde, 0xc6, 0x51, 0xdf, 0xa3, 0x19, 0x4d, 0xec, 0xe6, 0x76,
    0xd4, 0x37, 0x02, 0x9c, 0x62, 0xa4, 0x08, 0xb4, 0xc5, 0xea, 0x91, 0x14, 0x24, 0x6e, 0x48, 0x93};
static uint8_t k_static[NOISE_DHLEN];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static bool ready;
  peerid_t id;
  if (!ready) {
    noise_dh_pub(k_static_priv, k_static);
    ready = true;
  }
  int rc = noise_libp2p_payload_verify(data, size, k_static, &id);
  switch (rc) {
  case 0: {
    /* Success means an identity multihash of a canonical Ed25519 key. */
    char text[BFTNET_PEER_ID_MAX];
    if (id.len != 2 + PEERID_ED25519_PUBPB_LEN || id.bytes[0] != 0x00) abort();
    if (peerid_to_string(&id, text, sizeof text) != 0) abort();
    break;
  }
  case BFTNET_EPROTO:
  case BFTNET_EBADKEY:
  case BFTNET_EAUTH:
    break;
  default:
    abort(); /* an undocumented result */
  }
  return 0;
}
