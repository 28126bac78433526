/*
 * fuzz_noise_transport.c — transport decryption of arbitrary frames.
 * The input is a stream of libp2p Noise frames (2-byte big-endian length,
 * then the message), decrypted in order with the responder's receive
 * cipher of a fixed handshake (the cacophony vector's keys, empty
 * prologue). Seeds hold valid frames from the initiator
 * (tests/fuzz/corpus/fuzz_noise_transport/), so the fuzzer also walks the
 * nonce sequence. Checked: only documented results, a failed decrypt keeps
 * the nonce, and a round trip of each frame's bytes as plaintext.
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

static void check(bool ok) {
  if (!ok) abort();
}

/* The transport ciphers of the fixed handshake, computed once. */
static noise_cipher_t g_i_send, g_i_recv, g_r_send, g_r_recv;
static uint8_t g_buf[BN_NOISE_MAX_MSG], g_rt[BN_NOISE_MAX_MSG];

static void setup_once(void) {
  static bool ready;
  noise_hs_t i, r;
  uint8_t m[128], p[128];
  if (ready) return;
  noise_hs_init(&i, true, NULL, 0, k_init_static, k_init_ephemeral);
  noise_hs_init(&r, false, NULL, 0, k_resp_static, k_resp_ephemeral);
  check(noise_hs_write(&i, NULL, 0, m, sizeof m) == 32);
  check(noise_hs_read(&r, m, 32, p, sizeof p) == 0);
  check(noise_hs_write(&r, NULL, 0, m, sizeof m) == 96);
  check(noise_hs_read(&i, m, 96, p, sizeof p) == 0);
  check(noise_hs_write(&i, NULL, 0, m, sizeof m) == 64);
  check(noise_hs_read(&r, m, 64, p, sizeof p) == 0);
  check(noise_hs_split(&i, &g_i_send, &g_i_recv, NULL, NULL) == 0);
  check(noise_hs_split(&r, &g_r_send, &g_r_recv, NULL, NULL) == 0);
  ready = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  setup_once();
  noise_cipher_t recv = g_r_recv, send = g_r_send, peer_recv = g_i_recv;

  while (size >= 2) {
    size_t len = bn_load_be16(data);
    data += 2;
    size -= 2;
    len = BN_MIN(len, size);
    memcpy(g_buf, data, len);
    uint64_t n = recv.n;
    int rc = noise_decrypt(&recv, g_buf, len);
    if (rc >= 0) {
      check((size_t)rc + BN_NOISE_TAG == len && recv.n == n + 1);
    } else {
      check(rc == BFTNET_EDECRYPT || rc == BFTNET_EPROTO);
      check(recv.n == n);
    }
    /* Round trip: the frame's bytes as a plaintext, the other way. */
    if (len <= BN_NOISE_MAX_PLAINTEXT) {
      memcpy(g_rt, data, len);
      check(noise_encrypt(&send, g_rt, len) == (int)(len + BN_NOISE_TAG));
      check(noise_decrypt(&peer_recv, g_rt, len + BN_NOISE_TAG) == (int)len);
      check(memcmp(g_rt, data, len) == 0);
    }
    data += len;
    size -= len;
  }
  return 0;
}
