/*
 * noise_libp2p_test.c — the libp2p Noise handshake payload: a full XX
 * handshake between two identities in memory, and hostile payloads (bad
 * signatures, wrong key types, malformed protobufs, NoiseExtensions).
 */
#include <sodium.h>

#include "harness.h"
#include "identity.h"
#include "noise.h"

typedef struct side {
  bftnet_key_t *key;
  uint8_t s_priv[32], s_pub[32];
  noise_hs_t hs;
  noise_cipher_t send, recv;
} side_t;

static void side_init(side_t *s, bool initiator) {
  uint8_t e[32];
  assert_ok(bftnet_key_generate(&s->key));
  randombytes_buf(s->s_priv, 32);
  randombytes_buf(e, 32);
  noise_dh_pub(s->s_priv, s->s_pub);
  assert_ok(noise_hs_init(&s->hs, initiator, NULL, 0, s->s_priv, e));
}

static int side_payload(const side_t *s, uint8_t *out, size_t cap) {
  return noise_libp2p_payload_build(s->key->sk, s->key->pk, s->s_pub, out, cap);
}

/* The libp2p flow: empty prologue, payloads in messages 2 and 3, each side
 * verifies the other's payload against the static key the handshake gave. */
static void test_handshake_two_identities(void **state) {
  (void)state;
  side_t a, b; /* a dials b */
  uint8_t msg[1024], pl[512], got[512];
  peerid_t a_sees, b_sees;
  int n, m;

  side_init(&a, true);
  side_init(&b, false);

  n = noise_hs_write(&a.hs, NULL, 0, msg, sizeof msg);
  assert_int_equal(n, 32);
  assert_int_equal(noise_hs_read(&b.hs, msg, (size_t)n, got, sizeof got), 0);

  m = side_payload(&b, pl, sizeof pl);
  assert_true(m > 0);
  n = noise_hs_write(&b.hs, pl, (size_t)m, msg, sizeof msg);
  assert_int_equal(n, 96 + m);
  m = noise_hs_read(&a.hs, msg, (size_t)n, got, sizeof got);
  assert_true(m > 0);
  assert_memory_equal(a.hs.rs, b.s_pub, 32);
  assert_ok(noise_libp2p_payload_verify(got, (size_t)m, a.hs.rs, &a_sees));
  assert_true(peerid_equal(&a_sees, &b.key->id));

  m = side_payload(&a, pl, sizeof pl);
  n = noise_hs_write(&a.hs, pl, (size_t)m, msg, sizeof msg);
  assert_int_equal(n, 64 + m);
  m = noise_hs_read(&b.hs, msg, (size_t)n, got, sizeof got);
  assert_true(m > 0);
  assert_ok(noise_libp2p_payload_verify(got, (size_t)m, b.hs.rs, &b_sees));
  assert_true(peerid_equal(&b_sees, &a.key->id));

  /* The peer IDs as text, and a transport message each way. */
  char sa[BFTNET_PEER_ID_MAX], sb[BFTNET_PEER_ID_MAX];
  assert_ok(peerid_to_string(&b_sees, sa, sizeof sa));
  assert_ok(bftnet_key_peer_id(a.key, sb, sizeof sb));
  assert_string_equal(sa, sb);
  assert_ok(peerid_to_string(&a_sees, sa, sizeof sa));
  assert_ok(bftnet_key_peer_id(b.key, sb, sizeof sb));
  assert_string_equal(sa, sb);
  assert_memory_equal(sa, "12D3KooW", 8);
  assert_ok(noise_hs_split(&a.hs, &a.send, &a.recv, NULL, NULL));
  assert_ok(noise_hs_split(&b.hs, &b.send, &b.recv, NULL, NULL));
  memcpy(msg, "ping", 4);
  assert_int_equal(noise_encrypt(&a.send, msg, 4), 20);
  assert_int_equal(noise_decrypt(&b.recv, msg, 20), 4);
  assert_memory_equal(msg, "ping", 4);
  memcpy(msg, "pong", 4);
  assert_int_equal(noise_encrypt(&b.send, msg, 4), 20);
  assert_int_equal(noise_decrypt(&a.recv, msg, 20), 4);
  assert_memory_equal(msg, "pong", 4);

  bftnet_key_free(a.key);
  bftnet_key_free(b.key);
}

/* ------------------------------------------------------ hostile payloads */

typedef struct fixture {
  bftnet_key_t *key, *other;
  uint8_t s_pub[32];
  uint8_t pl[512];
  size_t len;
} fixture_t;

static int fx_setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  uint8_t s[32];
  assert_ok(bftnet_key_generate(&f->key));
  assert_ok(bftnet_key_generate(&f->other));
  randombytes_buf(s, 32);
  noise_dh_pub(s, f->s_pub);
  int n = noise_libp2p_payload_build(f->key->sk, f->key->pk, f->s_pub, f->pl, sizeof f->pl);
  assert_true(n > 0);
  f->len = (size_t)n;
  *state = f;
  return 0;
}

static int fx_teardown(void **state) {
  fixture_t *f = *state;
  bftnet_key_free(f->key);
  bftnet_key_free(f->other);
  free(f);
  return 0;
}

/* Packs a payload with the given raw fields (NULL = absent). */
static size_t pack_payload(const uint8_t *key_pb, size_t key_len, const uint8_t *sig,
                           size_t sig_len, Bftnet__Noise__NoiseExtensions *ext, uint8_t *out) {
  Bftnet__Noise__NoiseHandshakePayload p = BFTNET__NOISE__NOISE_HANDSHAKE_PAYLOAD__INIT;
  if (key_pb) {
    p.has_identity_key = 1;
    p.identity_key.data = (uint8_t *)key_pb;
    p.identity_key.len = key_len;
  }
  if (sig) {
    p.has_identity_sig = 1;
    p.identity_sig.data = (uint8_t *)sig;
    p.identity_sig.len = sig_len;
  }
  p.extensions = ext;
  return bftnet__noise__noise_handshake_payload__pack(&p, out);
}

static void sign_static(const bftnet_key_t *k, const uint8_t s_pub[32], uint8_t sig[64]) {
  uint8_t msg[24 + 32];
  memcpy(msg, NOISE_LIBP2P_SIG_PREFIX, 24);
  memcpy(msg + 24, s_pub, 32);
  identity_sign(k, msg, sizeof msg, sig);
}

static void test_payload_valid(void **state) {
  fixture_t *f = *state;
  peerid_t id;
  assert_int_equal(f->len, 2 + 36 + 2 + 64);
  assert_ok(noise_libp2p_payload_verify(f->pl, f->len, f->s_pub, &id));
  assert_true(peerid_equal(&id, &f->key->id));
  /* Our own packing matches the hand-built one. */
  uint8_t key_pb[36], sig[64], out[512];
  peerid_ed25519_pubkey_pb(f->key->pk, key_pb);
  sign_static(f->key, f->s_pub, sig);
  assert_int_equal(pack_payload(key_pb, 36, sig, 64, NULL, out), f->len);
  assert_memory_equal(out, f->pl, f->len);
  uint8_t small[103];
  assert_err(noise_libp2p_payload_build(f->key->sk, f->key->pk, f->s_pub, small, sizeof small),
             BFTNET_EBUFSIZE);
}

static void test_payload_bad_signature(void **state) {
  fixture_t *f = *state;
  uint8_t pl[512], other_static[32], s[32];
  peerid_t id;

  /* Every bit of the signature. */
  for (size_t bit = 0; bit < 64 * 8; bit++) {
    memcpy(pl, f->pl, f->len);
    pl[f->len - 64 + bit / 8] ^= (uint8_t)(1u << (bit % 8));
    assert_err(noise_libp2p_payload_verify(pl, f->len, f->s_pub, &id), BFTNET_EAUTH);
  }
  /* A valid signature, for another static key. */
  randombytes_buf(s, 32);
  noise_dh_pub(s, other_static);
  assert_err(noise_libp2p_payload_verify(f->pl, f->len, other_static, &id), BFTNET_EAUTH);
  /* Signed by a different identity than the one it names. */
  uint8_t key_pb[36], sig[64];
  peerid_ed25519_pubkey_pb(f->key->pk, key_pb);
  sign_static(f->other, f->s_pub, sig);
  size_t n = pack_payload(key_pb, 36, sig, 64, NULL, pl);
  assert_err(noise_libp2p_payload_verify(pl, n, f->s_pub, &id), BFTNET_EAUTH);
  /* Signature of the wrong length, or all zeros. */
  sign_static(f->key, f->s_pub, sig);
  n = pack_payload(key_pb, 36, sig, 63, NULL, pl);
  assert_err(noise_libp2p_payload_verify(pl, n, f->s_pub, &id), BFTNET_EAUTH);
  uint8_t zeros[65] = {0};
  n = pack_payload(key_pb, 36, zeros, 65, NULL, pl);
  assert_err(noise_libp2p_payload_verify(pl, n, f->s_pub, &id), BFTNET_EAUTH);
  n = pack_payload(key_pb, 36, zeros, 64, NULL, pl);
  assert_err(noise_libp2p_payload_verify(pl, n, f->s_pub, &id), BFTNET_EAUTH);
}

static size_t pack_pubkey(Bftnet__Keys__KeyType type, const uint8_t *data, size_t len,
                          uint8_t *out) {
  Bftnet__Keys__PublicKey k = BFTNET__KEYS__PUBLIC_KEY__INIT;
  k.type = type;
  k.data.data = (uint8_t *)data;
  k.data.len = len;
  return bftnet__keys__public_key__pack(&k, out);
}

static void test_payload_bad_key(void **state) {
  fixture_t *f = *state;
  uint8_t key_pb[128], sig[64], pl[512], data[33];
  peerid_t id;
  size_t kn, n;

  sign_static(f->key, f->s_pub, sig);
  memset(data, 0x02, sizeof data);
  /* Not Ed25519: Secp256k1 (33 bytes), RSA, ECDSA. */
  const Bftnet__Keys__KeyType types[] = {BFTNET__KEYS__KEY_TYPE__Secp256k1,
                                         BFTNET__KEYS__KEY_TYPE__RSA,
                                         BFTNET__KEYS__KEY_TYPE__ECDSA};
  for (size_t i = 0; i < BN_ARRAY_LEN(types); i++) {
    kn = pack_pubkey(types[i], data, sizeof data, key_pb);
    n = pack_payload(key_pb, kn, sig, 64, NULL, pl);
    assert_err(noise_libp2p_payload_verify(pl, n, f->s_pub, &id), BFTNET_EBADKEY);
  }
  /* Ed25519 with 31 or 33 bytes of key. */
  kn = pack_pubkey(BFTNET__KEYS__KEY_TYPE__Ed25519, f->key->pk, 31, key_pb);
  n = pack_payload(key_pb, kn, sig, 64, NULL, pl);
  assert_err(noise_libp2p_payload_verify(pl, n, f->s_pub, &id), BFTNET_EBADKEY);
  uint8_t pk33[33] = {0};
  memcpy(pk33, f->key->pk, 32);
  kn = pack_pubkey(BFTNET__KEYS__KEY_TYPE__Ed25519, pk33, 33, key_pb);
  n = pack_payload(key_pb, kn, sig, 64, NULL, pl);
  assert_err(noise_libp2p_payload_verify(pl, n, f->s_pub, &id), BFTNET_EBADKEY);
  /* A non-canonical encoding of the right key: Data before Type. */
  key_pb[0] = 0x12;
  key_pb[1] = 0x20;
  memcpy(key_pb + 2, f->key->pk, 32);
  key_pb[34] = 0x08;
  key_pb[35] = 0x01;
  n = pack_payload(key_pb, 36, sig, 64, NULL, pl);
  assert_err(noise_libp2p_payload_verify(pl, n, f->s_pub, &id), BFTNET_EBADKEY);
  /* Garbage key bytes. */
  memset(key_pb, 0xff, 36);
  n = pack_payload(key_pb, 36, sig, 64, NULL, pl);
  assert_err(noise_libp2p_payload_verify(pl, n, f->s_pub, &id), BFTNET_EBADKEY);
}

static void test_payload_malformed(void **state) {
  fixture_t *f = *state;
  uint8_t pl[8192], key_pb[36], sig[64];
  peerid_t id;
  size_t n;

  /* Every truncation of a valid payload. */
  for (size_t len = 0; len < f->len; len++)
    assert_err(noise_libp2p_payload_verify(f->pl, len, f->s_pub, &id), BFTNET_EPROTO);
  assert_err(noise_libp2p_payload_verify(NULL, 0, f->s_pub, &id), BFTNET_EPROTO);
  /* Garbage. */
  const char *const garbage[] = {
      "ff", "ffffffffffffffffffffff", "0a", "0a80", "0aff01", "0b0c0d", "12ff7f", "08"};
  for (size_t i = 0; i < BN_ARRAY_LEN(garbage); i++) {
    size_t gl;
    uint8_t *g = th_hex(garbage[i], &gl);
    assert_err(noise_libp2p_payload_verify(g, gl, f->s_pub, &id), BFTNET_EPROTO);
    free(g);
  }
  /* A field missing. */
  peerid_ed25519_pubkey_pb(f->key->pk, key_pb);
  sign_static(f->key, f->s_pub, sig);
  n = pack_payload(key_pb, 36, NULL, 0, NULL, pl);
  assert_err(noise_libp2p_payload_verify(pl, n, f->s_pub, &id), BFTNET_EPROTO);
  n = pack_payload(NULL, 0, sig, 64, NULL, pl);
  assert_err(noise_libp2p_payload_verify(pl, n, f->s_pub, &id), BFTNET_EPROTO);
  /* Longer than BN_NOISE_MAX_PAYLOAD: trailing unknown field padding. */
  memcpy(pl, f->pl, f->len);
  n = f->len;
  pl[n++] = 0x2a; /* field 5, length-delimited */
  pl[n++] = 0xa0;
  pl[n++] = 0x20; /* 4128 bytes */
  memset(pl + n, 0, 4128);
  n += 4128;
  assert_err(noise_libp2p_payload_verify(pl, n, f->s_pub, &id), BFTNET_EPROTO);
}

/* js-libp2p's early muxer negotiation: the extensions are ignored. */
static void test_payload_extensions(void **state) {
  fixture_t *f = *state;
  Bftnet__Noise__NoiseExtensions ext = BFTNET__NOISE__NOISE_EXTENSIONS__INIT;
  char *muxers[] = {"/yamux/1.0.0", "/mplex/6.7.0"};
  uint8_t certhash[34] = {0x12, 0x20};
  ProtobufCBinaryData hashes[1] = {{sizeof certhash, certhash}};
  uint8_t key_pb[36], sig[64], pl[512];
  peerid_t id;
  size_t n;

  peerid_ed25519_pubkey_pb(f->key->pk, key_pb);
  sign_static(f->key, f->s_pub, sig);
  ext.n_stream_muxers = 1;
  ext.stream_muxers = muxers;
  n = pack_payload(key_pb, 36, sig, 64, &ext, pl);
  assert_true(n > f->len);
  assert_ok(noise_libp2p_payload_verify(pl, n, f->s_pub, &id));
  assert_true(peerid_equal(&id, &f->key->id));
  ext.n_stream_muxers = 2;
  ext.n_webtransport_certhashes = 1;
  ext.webtransport_certhashes = hashes;
  n = pack_payload(key_pb, 36, sig, 64, &ext, pl);
  assert_ok(noise_libp2p_payload_verify(pl, n, f->s_pub, &id));
  /* An unknown field (a future extension) is ignored too. */
  pl[n++] = 0x18; /* field 3, varint */
  pl[n++] = 0x01;
  assert_ok(noise_libp2p_payload_verify(pl, n, f->s_pub, &id));
  /* ...but a bad signature with extensions still fails. */
  n = pack_payload(key_pb, 36, sig, 64, &ext, pl);
  assert_err(noise_libp2p_payload_verify(pl, n, key_pb, &id), BFTNET_EAUTH);
}

int main(void) {
  if (sodium_init() < 0) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_handshake_two_identities),
      cmocka_unit_test_setup_teardown(test_payload_valid, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_payload_bad_signature, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_payload_bad_key, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_payload_malformed, fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_payload_extensions, fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
