/*
 * fuzz_noise_handshake.c — the XX handshake fed hostile messages.
 * The first input byte picks the victim, the rest is its message:
 *   0: a responder reads an arbitrary message 1, then writes message 2;
 *   1: an initiator that wrote a valid message 1 reads an arbitrary
 *      message 2, verifies its libp2p payload, then writes message 3;
 *   2: a responder that read a valid message 1 and wrote message 2 reads
 *      an arbitrary message 3 and verifies its payload.
 * Keys are fixed (the cacophony vector's), so seeds with valid messages
 * (tests/fuzz/corpus/fuzz_noise_handshake/) reach the later steps.
 * Checked: only documented results; a failed step is sticky (FAILED) and
 * zeroes its output; a successful one advances the state.
 */
#include <stdlib.h>

#include "noise.h"

static const uint8_t k_init_static[32] = {
    0xe6, 0x1e, 0xf9, 0x91, 0x9c, 0xde, 0x45, 0xdd, 0x5f, 0x82, 0x16, 0x64, 0x04, 0xbd, 0x08, 0xe3,
    0x8b, 0xce, 0xb5, 0xdf, 0xdf, 0xde, 0xd0, 0xa3, 0x4c, 0x8d, 0xf7, 0xed, 0x54, 0x22, 0x14, 0xd1};
static const uint8_t k_init_ephemeral[32] = {
    0x89, 0x3e, 0x28, 0xb9, 0xdc, 0x6c, 0xa8, 0xd6, 0x11, 0xab, 0x66, 0x47, 0x54, 0xb8, 0xce, 0xb7,
    0xba, 0xc5, 0x11, 0x73, 0x49, 0xa4, 0x43, 0x9a, 0x6b, 0x05, 0x69, 0xda, 0x97, 0x7c, 0x46, 0x4a};
static const uint8_t k_resp_static[32] = {
    0x4a, 0x3a, 0xcb, 0xfd, 0xb1, 0x63, 0xde, 0xc6, 0x51, 0xdf, 0xa3, 0x19, 0x4d, 0xec, 0xe6, 0x76,
    0xd4, 0x37, 0x02, 0x9c, 0x62, 0xa4, 0x08, 0xb4, 0xc5, 0xea, 0x91, 0x14, 0x24, 0x6e, 0x48, 0x93};
static const uint8_t k_resp_ephemeral[32] = {
    0xbb, 0xdb, 0x4c, 0xdb, 0xd3, 0x09, 0xf1, 0xa1, 0xf2, 0xe1, 0x45, 0x69, 0x67, 0xfe, 0x28, 0x8c,
    0xad, 0xd6, 0xf7, 0x12, 0xd6, 0x5d, 0xc7, 0xb7, 0x79, 0x3d, 0x5e, 0x63, 0xda, 0x6b, 0x37, 0x5b};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t g_out[BN_NOISE_MAX_MSG];
static uint8_t g_msg[BN_NOISE_MAX_MSG];

static void check(bool ok) {
  if (!ok) abort();
}

static bool all_zero(const uint8_t *p, size_t n) {
  uint8_t acc = 0;
  for (size_t i = 0; i < n; i++)
    acc |= p[i];
  return acc == 0;
}

/* Reads msg (a message with `overhead` fixed bytes) into hs and checks the
 * step's contract. */
static int read_checked(noise_hs_t *hs, const uint8_t *msg, size_t len, size_t overhead,
                        noise_hs_state_t next) {
  memset(g_out, 0xa5, sizeof g_out);
  int rc = noise_hs_read(hs, msg, len, g_out, sizeof g_out);
  if (rc >= 0) {
    check(hs->state == next && (size_t)rc + overhead == len);
    return rc;
  }
  check(rc == BFTNET_EPROTO || rc == BFTNET_EDECRYPT || rc == BFTNET_EAUTH || rc == BFTNET_ETOOBIG);
  check(hs->state == NOISE_HS_FAILED);
  if (rc == BFTNET_EDECRYPT || rc == BFTNET_EAUTH) check(all_zero(g_out, len - overhead));
  check(noise_hs_read(hs, msg, len, g_out, sizeof g_out) == BFTNET_ESTATE);
  return rc;
}

static void verify_payload(const noise_hs_t *hs, size_t plen) {
  peerid_t id;
  int rc = noise_libp2p_payload_verify(g_out, plen, hs->rs, &id);
  check(rc == 0 || rc == BFTNET_EPROTO || rc == BFTNET_EBADKEY || rc == BFTNET_EAUTH);
}

static void write_checked(noise_hs_t *hs, noise_hs_state_t next) {
  int rc = noise_hs_write(hs, NULL, 0, g_msg, sizeof g_msg);
  if (rc >= 0) {
    check(hs->state == next);
  } else {
    check(rc == BFTNET_EAUTH && hs->state == NOISE_HS_FAILED);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  noise_hs_t i, r;
  int n;

  if (size < 1) return 0;
  uint8_t mode = data[0] % 3;
  data++;
  size--;
  noise_hs_init(&i, true, NULL, 0, k_init_static, k_init_ephemeral);
  noise_hs_init(&r, false, NULL, 0, k_resp_static, k_resp_ephemeral);

  switch (mode) {
  case 0:
    if (read_checked(&r, data, size, 32, NOISE_HS_R_WRITE_2) >= 0)
      write_checked(&r, NOISE_HS_R_READ_3);
    break;
  case 1:
    n = noise_hs_write(&i, NULL, 0, g_msg, sizeof g_msg);
    check(n == 32);
    n = read_checked(&i, data, size, 96, NOISE_HS_I_WRITE_3);
    if (n >= 0) {
      verify_payload(&i, (size_t)n);
      write_checked(&i, NOISE_HS_DONE);
    }
    break;
  default:
    n = noise_hs_write(&i, NULL, 0, g_msg, sizeof g_msg);
    check(n == 32);
    check(noise_hs_read(&r, g_msg, (size_t)n, g_out, sizeof g_out) == 0);
    check(noise_hs_write(&r, NULL, 0, g_msg, sizeof g_msg) == 96);
    n = read_checked(&r, data, size, 64, NOISE_HS_DONE);
    if (n >= 0) {
      noise_cipher_t s, rc;
      verify_payload(&r, (size_t)n);
      check(noise_hs_split(&r, &s, &rc, NULL, NULL) == 0);
    }
    break;
  }
  noise_hs_wipe(&i);
  noise_hs_wipe(&r);
  return 0;
}
