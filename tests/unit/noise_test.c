/*
 * noise_test.c — Noise_XX_25519_ChaChaPoly_SHA256: the cacophony vector,
 * the (state, event) table, and hostile inputs (truncation, bit flips,
 * low-order keys, nonce exhaustion).
 */
#include <sodium.h>

#include "harness.h"
#include "noise.h"

/* ------------------------------------------------------------ the vector */
/* cacophony, Noise_XX_25519_ChaChaPoly_SHA256 (see
 * shared/vectors_noise_xx_25519_chachapoly_sha256.json). */
static const char *const V_PROLOGUE = "4a6f686e2047616c74";
static const char *const V_INIT_STATIC =
    "e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1";
static const char *const V_INIT_EPHEMERAL =
    "893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a";
static const char *const V_RESP_STATIC =
    "4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893";
static const char *const V_RESP_EPHEMERAL =
    "bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b";
static const char *const V_HANDSHAKE_HASH =
    "c8e5f64e846193be2a834104c2a009868d6c9f3bd3c186299888b488b2f1f58e";

static const struct {
  const char *payload, *ciphertext;
} V_MSGS[6] = {
    {"4c756477696720766f6e204d69736573",
     "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c79444c756477696720766f6e204d6973"
     "6573"},
    {"4d757272617920526f746862617264",
     "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f14480884381cbad1f276e038c48378ffce2b6"
     "5285e08d6b68aaa3629a5a8639392490e5b9bd5269c2f1e4f488ed8831161f19b7815528f8982ffe09be9b5c412f"
     "8a0db50f8814c7194e83f23dbd8d162c9326ad"},
    {"462e20412e20486179656b",
     "c7195ffacac1307ff99046f219750fc47693e23c3cb08b89c2af808b444850a80ae475b9df0f169ae80a89be0865"
     "b57f58c9fea0d4ec82a286427402f113e4b6ae769a1d95941d49b25030"},
    {"4361726c204d656e676572", "96763ed773f8e47bb3712f0e29b3060ffc956ffc146cee53d5e1df"},
    {"4a65616e2d426170746973746520536179",
     "3e40f15f6f3a46ae446b253bf8b1d9ffb6ed9b174d272328ff91a7e2e5c79c07f5"},
    {"457567656e2042f6686d20766f6e2042617765726b",
     "eb3f3515110702e047a6c9da4478b6ead94873c11c0f2d710ddb3f09fce024b3a58502ae3f"},
};

/* Curve25519 points of small order (and non-canonical encodings of them):
 * X25519 with any of them gives the all-zero secret. */
static const char *const LOW_ORDER[] = {
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
};

/* Decodes hex of a known length into out. */
static void hex_to(const char *hex, uint8_t *out, size_t want) {
  size_t n;
  uint8_t *b = th_hex(hex, &n);
  assert_int_equal(n, want);
  memcpy(out, b, n);
  free(b);
}

/* An initiator and a responder with the vector's keys, and the messages
 * of a run (msg[i], len[i]) as they are produced. */
typedef struct pair {
  noise_hs_t i, r;
  uint8_t msg[3][256];
  size_t len[3];
} pair_t;

static void pair_init(pair_t *p) {
  uint8_t is[32], ie[32], rs[32], re[32], prologue[9];
  memset(p, 0, sizeof *p);
  hex_to(V_INIT_STATIC, is, 32);
  hex_to(V_INIT_EPHEMERAL, ie, 32);
  hex_to(V_RESP_STATIC, rs, 32);
  hex_to(V_RESP_EPHEMERAL, re, 32);
  hex_to(V_PROLOGUE, prologue, sizeof prologue);
  assert_ok(noise_hs_init(&p->i, true, prologue, sizeof prologue, is, ie));
  assert_ok(noise_hs_init(&p->r, false, prologue, sizeof prologue, rs, re));
}

/* Runs handshake message k (0..2) with the vector payload: the writer
 * writes it, and if deliver, the reader reads it. */
static void pair_step(pair_t *p, int k, bool deliver) {
  noise_hs_t *wr = (k == 1) ? &p->r : &p->i;
  noise_hs_t *rd = (k == 1) ? &p->i : &p->r;
  uint8_t pl[64], got[64];
  size_t plen;
  uint8_t *b = th_hex(V_MSGS[k].payload, &plen);
  memcpy(pl, b, plen);
  free(b);
  int n = noise_hs_write(wr, pl, plen, p->msg[k], sizeof p->msg[k]);
  assert_true(n > 0);
  p->len[k] = (size_t)n;
  if (!deliver) return;
  int m = noise_hs_read(rd, p->msg[k], p->len[k], got, sizeof got);
  assert_int_equal(m, (int)plen);
  assert_memory_equal(got, pl, plen);
}

/* Both sides after `messages` handshake messages (the last one written but
 * not read if !deliver_last). */
static void pair_advance(pair_t *p, int messages, bool deliver_last) {
  pair_init(p);
  for (int k = 0; k < messages; k++)
    pair_step(p, k, k + 1 < messages || deliver_last);
}

static void test_cacophony_vector(void **state) {
  (void)state;
  pair_t p;
  noise_cipher_t i_send, i_recv, r_send, r_recv;
  uint8_t i_hash[32], r_hash[32], want_hash[32], i_rs[32], r_rs[32];
  uint8_t is[32], rs[32], is_pub[32], rs_pub[32];

  pair_init(&p);
  for (int k = 0; k < 3; k++) {
    size_t clen;
    uint8_t *ct = th_hex(V_MSGS[k].ciphertext, &clen);
    pair_step(&p, k, true);
    assert_int_equal(p.len[k], clen);
    assert_memory_equal(p.msg[k], ct, clen);
    free(ct);
  }
  assert_int_equal(p.i.state, NOISE_HS_DONE);
  assert_int_equal(p.r.state, NOISE_HS_DONE);
  assert_ok(noise_hs_split(&p.i, &i_send, &i_recv, i_hash, i_rs));
  assert_ok(noise_hs_split(&p.r, &r_send, &r_recv, r_hash, r_rs));
  hex_to(V_HANDSHAKE_HASH, want_hash, 32);
  assert_memory_equal(i_hash, want_hash, 32);
  assert_memory_equal(r_hash, want_hash, 32);
  hex_to(V_INIT_STATIC, is, 32);
  hex_to(V_RESP_STATIC, rs, 32);
  noise_dh_pub(is, is_pub);
  noise_dh_pub(rs, rs_pub);
  assert_memory_equal(i_rs, rs_pub, 32);
  assert_memory_equal(r_rs, is_pub, 32);
  /* Split wiped the handshakes. */
  assert_int_equal(p.i.state, NOISE_HS_FAILED);
  assert_int_equal(p.r.state, NOISE_HS_FAILED);

  /* Transport messages 4..6 alternate: 4 is responder -> initiator. Check
   * the direction by trying both senders: exactly one matches. */
  for (int k = 3; k < 6; k++) {
    bool from_resp = (k % 2) == 1;
    noise_cipher_t *snd = from_resp ? &r_send : &i_send;
    noise_cipher_t *rcv = from_resp ? &i_recv : &r_recv;
    noise_cipher_t other = from_resp ? i_send : r_send; /* a copy: not advanced */
    uint8_t buf[128], alt[128];
    size_t plen, clen;
    uint8_t *pl = th_hex(V_MSGS[k].payload, &plen);
    uint8_t *ct = th_hex(V_MSGS[k].ciphertext, &clen);
    assert_int_equal(clen, plen + 16);
    memcpy(alt, pl, plen);
    assert_int_equal(noise_encrypt(&other, alt, plen), (int)clen);
    assert_memory_not_equal(alt, ct, clen);
    memcpy(buf, pl, plen);
    assert_int_equal(noise_encrypt(snd, buf, plen), (int)clen);
    assert_memory_equal(buf, ct, clen);
    assert_int_equal(noise_decrypt(rcv, buf, clen), (int)plen);
    assert_memory_equal(buf, pl, plen);
    free(pl);
    free(ct);
  }
  assert_int_equal(i_send.n, 1);
  assert_int_equal(i_recv.n, 2);
  noise_cipher_wipe(&i_send);
  assert_false(i_send.has_k);
}

/* ------------------------------------------------ (state, event) table */

enum { EV_WRITE, EV_READ, EV_SPLIT, EV_COUNT };

/* Puts hs (one side of a fresh pair) in state st. */
static noise_hs_t *pair_in_state(pair_t *p, noise_hs_state_t st) {
  switch (st) {
  case NOISE_HS_I_WRITE_1:
    pair_advance(p, 0, true);
    return &p->i;
  case NOISE_HS_I_READ_2:
    pair_advance(p, 1, true);
    return &p->i;
  case NOISE_HS_I_WRITE_3:
    pair_advance(p, 2, true);
    return &p->i;
  case NOISE_HS_R_READ_1:
    pair_advance(p, 0, true);
    return &p->r;
  case NOISE_HS_R_WRITE_2:
    pair_advance(p, 1, true);
    return &p->r;
  case NOISE_HS_R_READ_3:
    pair_advance(p, 2, true);
    return &p->r;
  case NOISE_HS_DONE:
    pair_advance(p, 3, true);
    return &p->r;
  case NOISE_HS_FAILED:
    pair_advance(p, 0, true);
    noise_hs_wipe(&p->i);
    return &p->i;
  }
  fail_msg("bad state %d", (int)st);
  return NULL;
}

static bool legal(noise_hs_state_t st, int ev) {
  switch (ev) {
  case EV_WRITE:
    return st == NOISE_HS_I_WRITE_1 || st == NOISE_HS_R_WRITE_2 || st == NOISE_HS_I_WRITE_3;
  case EV_READ:
    return st == NOISE_HS_R_READ_1 || st == NOISE_HS_I_READ_2 || st == NOISE_HS_R_READ_3;
  default:
    return st == NOISE_HS_DONE;
  }
}

static void test_state_event_table(void **state) {
  (void)state;
  for (int st = NOISE_HS_I_WRITE_1; st <= NOISE_HS_FAILED; st++) {
    for (int ev = 0; ev < EV_COUNT; ev++) {
      pair_t p;
      noise_hs_t *hs = pair_in_state(&p, (noise_hs_state_t)st);
      noise_hs_t before = *hs;
      noise_cipher_t s, r;
      uint8_t out[256], msg[128] = {0};
      int rc;
      assert_int_equal(hs->state, st);
      if (ev == EV_WRITE)
        rc = noise_hs_write(hs, NULL, 0, out, sizeof out);
      else if (ev == EV_READ)
        rc = noise_hs_read(hs, msg, sizeof msg, out, sizeof out);
      else
        rc = noise_hs_split(hs, &s, &r, NULL, NULL);
      if (legal((noise_hs_state_t)st, ev)) {
        /* A legal event proceeds (a read of zeros fails authentication,
         * or for message 1 is accepted; either way not ESTATE). */
        assert_int_not_equal(rc, BFTNET_ESTATE);
      } else {
        assert_err(rc, BFTNET_ESTATE);
        assert_memory_equal(&before, hs, sizeof before); /* untouched */
      }
    }
  }
}

/* ----------------------------------------------------- hostile inputs */

/* Message k (1..2) truncated at every length: shorter than its fixed part
 * is EPROTO, otherwise the tag fails (EDECRYPT); the reader is FAILED,
 * its output zeroed, and every later call is ESTATE. */
static void test_truncated(void **state) {
  (void)state;
  for (int k = 0; k < 3; k++) {
    pair_t ref;
    pair_advance(&ref, k + 1, false);
    size_t full = ref.len[k];
    size_t fixed = (k == 0) ? 32 : (k == 1) ? 96 : 64;
    for (size_t len = 0; len < full; len++) {
      pair_t p;
      pair_advance(&p, k + 1, false);
      noise_hs_t *rd = (k == 1) ? &p.i : &p.r;
      uint8_t out[256];
      memset(out, 0xaa, sizeof out);
      int rc = noise_hs_read(rd, p.msg[k], len, out, sizeof out);
      if (len < fixed) {
        assert_err(rc, BFTNET_EPROTO);
      } else if (k == 0) {
        /* Message 1 carries no tag: a shorter payload is all one can see. */
        assert_int_equal(rc, (int)(len - fixed));
        continue;
      } else {
        assert_err(rc, BFTNET_EDECRYPT);
        for (size_t j = 0; j < len - fixed; j++)
          assert_int_equal(out[j], 0);
      }
      assert_int_equal(rd->state, NOISE_HS_FAILED);
      assert_err(noise_hs_read(rd, p.msg[k], full, out, sizeof out), BFTNET_ESTATE);
      assert_err(noise_hs_write(rd, NULL, 0, out, sizeof out), BFTNET_ESTATE);
    }
  }
}

/* Every single-bit flip of messages 2 and 3 fails authentication. A flip in
 * message 1 is caught by the initiator when it reads message 2. */
static void test_bit_flips(void **state) {
  (void)state;
  for (int k = 1; k < 3; k++) {
    pair_t ref;
    pair_advance(&ref, k + 1, false);
    for (size_t bit = 0; bit < ref.len[k] * 8; bit++) {
      pair_t p;
      uint8_t out[256];
      pair_advance(&p, k + 1, false);
      noise_hs_t *rd = (k == 1) ? &p.i : &p.r;
      p.msg[k][bit / 8] ^= (uint8_t)(1u << (bit % 8));
      assert_err(noise_hs_read(rd, p.msg[k], p.len[k], out, sizeof out), BFTNET_EDECRYPT);
      assert_int_equal(rd->state, NOISE_HS_FAILED);
    }
  }
  for (size_t bit = 0; bit < 32 * 8; bit += 7) {
    pair_t p;
    uint8_t out[256];
    pair_init(&p);
    pair_step(&p, 0, false);
    p.msg[0][bit / 8] ^= (uint8_t)(1u << (bit % 8));
    assert_true(noise_hs_read(&p.r, p.msg[0], p.len[0], out, sizeof out) >= 0);
    pair_step(&p, 1, false);
    assert_err(noise_hs_read(&p.i, p.msg[1], p.len[1], out, sizeof out), BFTNET_EDECRYPT);
  }
}

/* A low-order or zero ephemeral or static key is refused (EAUTH): as the
 * responder's ee (message 1's e), as the initiator's ee (message 2's e),
 * and as the initiator's es (the responder's static in message 2). */
static void test_low_order_keys(void **state) {
  (void)state;
  for (size_t j = 0; j < BN_ARRAY_LEN(LOW_ORDER); j++) {
    uint8_t bad[32], out[256];
    pair_t p;
    hex_to(LOW_ORDER[j], bad, 32);

    pair_init(&p);
    pair_step(&p, 0, false);
    memcpy(p.msg[0], bad, 32);
    assert_int_equal(noise_hs_read(&p.r, p.msg[0], p.len[0], out, sizeof out),
                     (int)(p.len[0] - 32));
    memset(out, 0xaa, sizeof out);
    assert_err(noise_hs_write(&p.r, NULL, 0, out, sizeof out), BFTNET_EAUTH);
    assert_int_equal(p.r.state, NOISE_HS_FAILED);
    for (size_t b = 0; b < 96; b++)
      assert_int_equal(out[b], 0);

    pair_advance(&p, 2, false);
    memcpy(p.msg[1], bad, 32);
    assert_err(noise_hs_read(&p.i, p.msg[1], p.len[1], out, sizeof out), BFTNET_EAUTH);
    assert_int_equal(p.i.state, NOISE_HS_FAILED);

    /* A responder whose static public key is low order (a forged one). */
    pair_advance(&p, 1, true);
    memcpy(p.r.s_pub, bad, 32);
    pair_step(&p, 1, false);
    assert_err(noise_hs_read(&p.i, p.msg[1], p.len[1], out, sizeof out), BFTNET_EAUTH);
  }
}

/* Buffers and limits: cap too small, message over 65535 bytes. */
static void test_sizes(void **state) {
  (void)state;
  pair_t p;
  static uint8_t big[70000], out[70000];

  pair_init(&p);
  assert_err(noise_hs_write(&p.i, NULL, 0, out, 31), BFTNET_EBUFSIZE);
  assert_int_equal(p.i.state, NOISE_HS_FAILED);
  pair_init(&p);
  assert_err(noise_hs_write(&p.i, big, BN_NOISE_MAX_MSG - 32 + 1, out, sizeof out), BFTNET_ETOOBIG);
  pair_init(&p);
  assert_int_equal(noise_hs_write(&p.i, big, BN_NOISE_MAX_MSG - 32, out, sizeof out),
                   (int)BN_NOISE_MAX_MSG);
  assert_int_equal(noise_hs_read(&p.r, out, BN_NOISE_MAX_MSG, big, sizeof big),
                   (int)(BN_NOISE_MAX_MSG - 32));
  /* Reader's cap too small for the payload. */
  pair_advance(&p, 2, false);
  assert_err(noise_hs_read(&p.i, p.msg[1], p.len[1], out, p.len[1] - 96 - 1), BFTNET_ETOOBIG);
  assert_int_equal(p.i.state, NOISE_HS_FAILED);
  pair_init(&p);
  assert_err(noise_hs_read(&p.r, big, BN_NOISE_MAX_MSG + 1, out, sizeof out), BFTNET_ETOOBIG);
}

/* A transport pair from a completed vector handshake. */
static void transport_pair(noise_cipher_t *i_send, noise_cipher_t *r_recv) {
  pair_t p;
  noise_cipher_t a, b;
  pair_advance(&p, 3, true);
  assert_ok(noise_hs_split(&p.i, i_send, &a, NULL, NULL));
  assert_ok(noise_hs_split(&p.r, &b, r_recv, NULL, NULL));
}

static void test_transport_hostile(void **state) {
  (void)state;
  noise_cipher_t s, r;
  uint8_t buf[64 + 16], frame[64 + 16];
  static uint8_t big[BN_NOISE_MAX_MSG + 1];

  transport_pair(&s, &r);
  memset(buf, 0x5a, 64);
  assert_int_equal(noise_encrypt(&s, buf, 64), 80);
  memcpy(frame, buf, 80);

  /* A failed decrypt (any flipped bit) leaves the nonce unchanged. */
  for (size_t bit = 0; bit < 80 * 8; bit += 13) {
    memcpy(buf, frame, 80);
    buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    assert_err(noise_decrypt(&r, buf, 80), BFTNET_EDECRYPT);
    assert_int_equal(r.n, 0);
  }
  assert_err(noise_decrypt(&r, buf, 15), BFTNET_EPROTO);
  assert_err(noise_decrypt(&r, big, sizeof big), BFTNET_ETOOBIG);
  assert_int_equal(r.n, 0);
  memcpy(buf, frame, 80);
  assert_int_equal(noise_decrypt(&r, buf, 80), 64);
  assert_int_equal(r.n, 1);
  /* A replay fails: the nonce moved on. */
  memcpy(buf, frame, 80);
  assert_err(noise_decrypt(&r, buf, 80), BFTNET_EDECRYPT);

  /* Empty messages and the maximum size. */
  assert_int_equal(noise_encrypt(&s, buf, 0), 16);
  assert_int_equal(noise_decrypt(&r, buf, 16), 0);
  assert_int_equal(noise_encrypt(&s, big, BN_NOISE_MAX_PLAINTEXT), (int)BN_NOISE_MAX_MSG);
  assert_int_equal(noise_decrypt(&r, big, BN_NOISE_MAX_MSG), (int)BN_NOISE_MAX_PLAINTEXT);
  assert_err(noise_encrypt(&s, big, BN_NOISE_MAX_PLAINTEXT + 1), BFTNET_ETOOBIG);

  /* No key: not a transport cipher. */
  noise_cipher_t none;
  memset(&none, 0, sizeof none);
  assert_err(noise_encrypt(&none, buf, 4), BFTNET_ESTATE);
  assert_err(noise_decrypt(&none, buf, 20), BFTNET_ESTATE);
}

/* 2^64-1 is never used as a nonce: the one before it still works. */
static void test_nonce_exhaustion(void **state) {
  (void)state;
  noise_cipher_t s, r;
  uint8_t buf[32];

  transport_pair(&s, &r);
  s.n = r.n = UINT64_MAX - 1;
  memset(buf, 1, 16);
  assert_int_equal(noise_encrypt(&s, buf, 16), 32);
  assert_int_equal(noise_decrypt(&r, buf, 32), 16);
  assert_true(s.n == UINT64_MAX && r.n == UINT64_MAX);
  assert_err(noise_encrypt(&s, buf, 16), BFTNET_ELIMIT);
  assert_err(noise_decrypt(&r, buf, 32), BFTNET_ELIMIT);
  assert_true(s.n == UINT64_MAX && r.n == UINT64_MAX);
}

/* Split wipes the handshake: nothing secret is left and it is not reusable. */
static void test_split_wipes(void **state) {
  (void)state;
  pair_t p;
  noise_cipher_t s, r;
  uint8_t zero[32] = {0};
  pair_advance(&p, 3, true);
  assert_ok(noise_hs_split(&p.i, &s, &r, NULL, NULL));
  assert_memory_equal(p.i.s_priv, zero, 32);
  assert_memory_equal(p.i.e_priv, zero, 32);
  assert_memory_equal(p.i.ck, zero, 32);
  assert_false(p.i.cs.has_k);
  assert_err(noise_hs_split(&p.i, &s, &r, NULL, NULL), BFTNET_ESTATE);
  assert_err(noise_hs_write(&p.i, NULL, 0, zero, sizeof zero), BFTNET_ESTATE);
}

int main(void) {
  if (sodium_init() < 0) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cacophony_vector),  cmocka_unit_test(test_state_event_table),
      cmocka_unit_test(test_truncated),         cmocka_unit_test(test_bit_flips),
      cmocka_unit_test(test_low_order_keys),    cmocka_unit_test(test_sizes),
      cmocka_unit_test(test_transport_hostile), cmocka_unit_test(test_nonce_exhaustion),
      cmocka_unit_test(test_split_wipes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
