/*
 * noise.c — Noise_XX_25519_ChaChaPoly_SHA256 (The Noise Protocol Framework,
 * revision 34) on libsodium (ChaChaPoly in aead.c: OpenSSL when built with
 * it), and the libp2p handshake payload
 * (libp2p/specs noise/README.md).
 *
 * Section numbers in comments refer to the Noise spec:
 *   §4   crypto functions: DH = X25519, AEAD = ChaChaPoly (IETF, 96-bit
 *        nonce = 32 zero bits || little-endian 64-bit n), HASH = SHA-256,
 *        HKDF (§4.3) built on HMAC-SHA256;
 *   §5.1 CipherState, §5.2 SymmetricState, §5.3 HandshakeState;
 *   §7.5 the XX pattern (-> e / <- e, ee, s, es / -> s, se).
 *
 * A handshake step works on a local copy of the whole handshake state and
 * commits it at the end; every secret it touched is wiped at the one `out:`
 * label. A failed step leaves hs NOISE_HS_FAILED with its secrets wiped and
 * its output zeroed.
 */
#include <sodium.h>

#include "aead.h"
#include "noise.h"

_Static_assert(sizeof(NOISE_PROTOCOL_NAME) - 1 == NOISE_HASHLEN,
               "the protocol name is exactly HASHLEN bytes, so h = name (§5.2)");
_Static_assert(NOISE_DHLEN == crypto_scalarmult_BYTES, "X25519 sizes");
_Static_assert(NOISE_KEYLEN == BN_AEAD_KEYBYTES, "AEAD key");
_Static_assert(BN_NOISE_TAG == BN_AEAD_TAGBYTES, "AEAD tag");
_Static_assert(NOISE_HASHLEN == crypto_auth_hmacsha256_KEYBYTES,
               "HMAC keys are chaining keys (HASHLEN bytes)");
_Static_assert(NOISE_HASHLEN == crypto_hash_sha256_BYTES, "HASH = SHA-256");

/* A non-NULL address for empty inputs (libsodium and memcpy want one). */
static const uint8_t noise_empty[1];

/* ------------------------------------------------------------- §4 HASH */

/* out = SHA256(a || b). out may alias a or b. */
static void noise_hash2(uint8_t out[NOISE_HASHLEN], const uint8_t *a, size_t alen, const uint8_t *b,
                        size_t blen) {
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  crypto_hash_sha256_update(&st, a, alen);
  crypto_hash_sha256_update(&st, b ? b : noise_empty, blen);
  crypto_hash_sha256_final(&st, out);
  sodium_memzero(&st, sizeof st);
}

/* §4.3 HKDF(chaining_key, input_key_material, 2).
 * libsodium 1.0.18 has no HKDF (crypto_kdf_hkdf_sha256 appeared in 1.0.19),
 * so it is built here on HMAC-SHA256 (crypto_auth_hmacsha256, whose 32-byte
 * key is exactly a chaining key):
 *   temp_key = HMAC(ck, ikm); out1 = HMAC(temp_key, 0x01);
 *   out2 = HMAC(temp_key, out1 || 0x02).
 * out1 may alias ck. */
static void noise_hkdf2(const uint8_t ck[NOISE_HASHLEN], const uint8_t *ikm, size_t ikm_len,
                        uint8_t out1[NOISE_HASHLEN], uint8_t out2[NOISE_HASHLEN]) {
  uint8_t temp_key[NOISE_HASHLEN];
  uint8_t buf[NOISE_HASHLEN + 1];

  crypto_auth_hmacsha256(temp_key, ikm ? ikm : noise_empty, ikm_len, ck);
  buf[0] = 0x01;
  crypto_auth_hmacsha256(out1, buf, 1, temp_key);
  memcpy(buf, out1, NOISE_HASHLEN);
  buf[NOISE_HASHLEN] = 0x02;
  crypto_auth_hmacsha256(out2, buf, sizeof buf, temp_key);

  sodium_memzero(temp_key, sizeof temp_key);
  sodium_memzero(buf, sizeof buf);
}

/* --------------------------------------------------- §5.1 CipherState */

static void noise_cipher_init_key(noise_cipher_t *c, const uint8_t k[NOISE_KEYLEN]) {
  memcpy(c->k, k, NOISE_KEYLEN);
  c->n = 0;
  c->has_k = true;
}

/* EncryptWithAd(ad, plaintext): out receives len (+16 with a key) bytes.
 * Without a key the plaintext is returned unchanged (§5.1). out may alias in
 * exactly. Returns the output length or BFTNET_ELIMIT (nonce 2^64-1).
 * ENCRYPT(k, n, ad, plaintext) is ChaChaPoly with Noise's nonce (§4.2),
 * computed by aead.c. */
static int noise_cipher_encrypt_ad(noise_cipher_t *c, const uint8_t *ad, size_t adlen,
                                   const uint8_t *in, size_t len, uint8_t *out) {
  if (!in) in = noise_empty;
  if (!c->has_k) {
    if (len) memmove(out, in, len);
    return (int)len;
  }
  /* 2^64-1 is reserved for rekey (§5.1): refuse instead of wrapping. */
  if (c->n == UINT64_MAX) return BFTNET_ELIMIT;
  bn_aead_seal(c->k, c->n, ad, adlen, in, len, out, out + len);
  c->n++;
  return (int)(len + BN_NOISE_TAG);
}

/* DecryptWithAd(ad, ciphertext): len includes the tag when keyed. out may
 * alias in exactly. On BFTNET_EDECRYPT the nonce is unchanged and out is
 * zeroed. Returns the plaintext length, BFTNET_EPROTO (shorter than a tag)
 * or BFTNET_ELIMIT. */
static int noise_cipher_decrypt_ad(noise_cipher_t *c, const uint8_t *ad, size_t adlen,
                                   const uint8_t *in, size_t len, uint8_t *out) {
  size_t mlen;

  if (!c->has_k) {
    if (len) memmove(out, in, len);
    return (int)len;
  }
  if (len < BN_NOISE_TAG) return BFTNET_EPROTO;
  if (c->n == UINT64_MAX) return BFTNET_ELIMIT;
  mlen = len - BN_NOISE_TAG;
  if (bn_aead_open(c->k, c->n, ad, adlen, in, mlen, in + mlen, out) != 0)
    return BFTNET_EDECRYPT;
  c->n++;
  return (int)mlen;
}

void noise_cipher_wipe(noise_cipher_t *c) {
  sodium_memzero(c, sizeof *c);
}

/* Transport: AD is empty (the handshake hash is not used after Split). */
int noise_encrypt(noise_cipher_t *c, uint8_t *buf, size_t len) {
  if (!c->has_k) return BFTNET_ESTATE;
  if (len > BN_NOISE_MAX_PLAINTEXT) return BFTNET_ETOOBIG;
  return noise_cipher_encrypt_ad(c, NULL, 0, buf, len, buf);
}

int noise_decrypt(noise_cipher_t *c, uint8_t *buf, size_t len) {
  if (!c->has_k) return BFTNET_ESTATE;
  if (len < BN_NOISE_TAG) return BFTNET_EPROTO;
  if (len > BN_NOISE_MAX_MSG) return BFTNET_ETOOBIG;
  return noise_cipher_decrypt_ad(c, NULL, 0, buf, len, buf);
}

/* ------------------------------------------------ §5.2 SymmetricState */
/* The SymmetricState is hs->ck, hs->h and hs->cs. */

static void noise_mix_hash(noise_hs_t *w, const uint8_t *data, size_t n) {
  noise_hash2(w->h, w->h, NOISE_HASHLEN, data, n);
}

/* MixKey(ikm): ck, temp_k = HKDF(ck, ikm, 2); InitializeKey(temp_k). */
static void noise_mix_key(noise_hs_t *w, const uint8_t ikm[NOISE_DHLEN]) {
  uint8_t temp_k[NOISE_HASHLEN];
  noise_hkdf2(w->ck, ikm, NOISE_DHLEN, w->ck, temp_k);
  noise_cipher_init_key(&w->cs, temp_k);
  sodium_memzero(temp_k, sizeof temp_k);
}

/* EncryptAndHash: out = EncryptWithAd(h, in); MixHash(out). */
static int noise_encrypt_and_hash(noise_hs_t *w, const uint8_t *in, size_t len, uint8_t *out) {
  int rc = noise_cipher_encrypt_ad(&w->cs, w->h, NOISE_HASHLEN, in, len, out);
  if (rc >= 0) noise_mix_hash(w, out, (size_t)rc);
  return rc;
}

/* DecryptAndHash: out = DecryptWithAd(h, in); MixHash(in). The new h is
 * computed before decrypting so that out may alias in. */
static int noise_decrypt_and_hash(noise_hs_t *w, const uint8_t *in, size_t len, uint8_t *out) {
  uint8_t ad[NOISE_HASHLEN];
  int rc;

  memcpy(ad, w->h, NOISE_HASHLEN);
  noise_mix_hash(w, in, len);
  rc = noise_cipher_decrypt_ad(&w->cs, ad, NOISE_HASHLEN, in, len, out);
  sodium_memzero(ad, sizeof ad);
  return rc;
}

/* §4.1 DH(priv, pub) then MixKey. X25519 of a low-order (or zero) public
 * key gives the all-zero secret; libsodium's crypto_scalarmult reports it
 * and we reject it: a peer must not be able to force a known key. */
static int noise_mix_dh(noise_hs_t *w, const uint8_t priv[NOISE_DHLEN],
                        const uint8_t pub[NOISE_DHLEN]) {
  uint8_t shared[NOISE_DHLEN];
  int rc = 0;

  if (crypto_scalarmult(shared, priv, pub) != 0 || sodium_is_zero(shared, sizeof shared)) {
    rc = BFTNET_EAUTH;
    goto out;
  }
  noise_mix_key(w, shared);
out:
  sodium_memzero(shared, sizeof shared);
  return rc;
}

/* ------------------------------------------------ §5.3 HandshakeState */

void noise_dh_pub(const uint8_t priv[NOISE_DHLEN], uint8_t pub[NOISE_DHLEN]) {
  /* A clamped scalar times the base point is never the identity. */
  BN_ASSERT(crypto_scalarmult_base(pub, priv) == 0);
}

void noise_hs_wipe(noise_hs_t *hs) {
  sodium_memzero(hs, sizeof *hs);
  /* The zero state is NOISE_HS_I_WRITE_1: a wiped handshake must not be
   * usable as a fresh initiator with all-zero keys. */
  hs->state = NOISE_HS_FAILED;
}

int noise_hs_init(noise_hs_t *hs, bool initiator, const uint8_t *prologue, size_t plen,
                  const uint8_t s_priv[NOISE_DHLEN], const uint8_t e_priv[NOISE_DHLEN]) {
  BN_ASSERT(hs && s_priv && e_priv && (prologue || plen == 0));
  sodium_memzero(hs, sizeof *hs);
  hs->initiator = initiator;
  hs->state = initiator ? NOISE_HS_I_WRITE_1 : NOISE_HS_R_READ_1;
  /* InitializeSymmetric: the name is exactly HASHLEN bytes, so h = name,
   * ck = h; the CipherState starts without a key. */
  memcpy(hs->h, NOISE_PROTOCOL_NAME, NOISE_HASHLEN);
  memcpy(hs->ck, hs->h, NOISE_HASHLEN);
  noise_mix_hash(hs, prologue, plen);
  memcpy(hs->s_priv, s_priv, NOISE_DHLEN);
  noise_dh_pub(hs->s_priv, hs->s_pub);
  memcpy(hs->e_priv, e_priv, NOISE_DHLEN);
  noise_dh_pub(hs->e_priv, hs->e_pub);
  return 0;
}

/* §7.5 XX, message by message. */
typedef enum noise_token { TOK_END = 0, TOK_E, TOK_S, TOK_EE, TOK_ES, TOK_SE } noise_token_t;

typedef struct noise_step {
  bool write;              /* our message (true) or the peer's */
  noise_hs_state_t next;   /* state after this message */
  size_t overhead;         /* bytes besides the payload: keys and tags */
  noise_token_t tokens[5]; /* TOK_END-terminated */
} noise_step_t;

/* Bytes besides the payload: e = 32, s = 32 (+ 16 once keyed), payload tag 16. */
#define NOISE_MSG1_OVERHEAD NOISE_DHLEN                                    /* e */
#define NOISE_MSG2_OVERHEAD (NOISE_DHLEN + NOISE_DHLEN + 2 * BN_NOISE_TAG) /* e, s, tag */
#define NOISE_MSG3_OVERHEAD (NOISE_DHLEN + 2 * BN_NOISE_TAG)               /* s, tag */

/* Indexed by state; NULL for DONE and FAILED. */
static const noise_step_t *noise_step_for(noise_hs_state_t st) {
  /* -> e / <- e, ee, s, es / -> s, se; TOK_END (0) fills each list. */
  static const noise_step_t steps[] = {
      [NOISE_HS_I_WRITE_1] = {true, NOISE_HS_I_READ_2, NOISE_MSG1_OVERHEAD, {TOK_E}},
      [NOISE_HS_I_READ_2] = {false,
                             NOISE_HS_I_WRITE_3,
                             NOISE_MSG2_OVERHEAD,
                             {TOK_E, TOK_EE, TOK_S, TOK_ES}},
      [NOISE_HS_I_WRITE_3] = {true, NOISE_HS_DONE, NOISE_MSG3_OVERHEAD, {TOK_S, TOK_SE}},
      [NOISE_HS_R_READ_1] = {false, NOISE_HS_R_WRITE_2, NOISE_MSG1_OVERHEAD, {TOK_E}},
      [NOISE_HS_R_WRITE_2] = {true,
                              NOISE_HS_R_READ_3,
                              NOISE_MSG2_OVERHEAD,
                              {TOK_E, TOK_EE, TOK_S, TOK_ES}},
      [NOISE_HS_R_READ_3] = {false, NOISE_HS_DONE, NOISE_MSG3_OVERHEAD, {TOK_S, TOK_SE}},
  };
  if ((unsigned)st >= BN_ARRAY_LEN(steps) || steps[st].overhead == 0) return NULL;
  return &steps[st];
}

/* ee, es, se (§7.5): the first letter is the initiator's key, the second
 * the responder's; each side uses its private half and the peer's public. */
static int noise_token_dh(noise_hs_t *w, noise_token_t tok) {
  switch (tok) {
  case TOK_EE:
    return noise_mix_dh(w, w->e_priv, w->re);
  case TOK_ES:
    return w->initiator ? noise_mix_dh(w, w->e_priv, w->rs) : noise_mix_dh(w, w->s_priv, w->re);
  case TOK_SE:
    return w->initiator ? noise_mix_dh(w, w->s_priv, w->re) : noise_mix_dh(w, w->e_priv, w->rs);
  default:
    break;
  }
  BN_ASSERT(!"not a DH token");
  return BFTNET_EINVAL;
}

/* A failed step: sticky NOISE_HS_FAILED, every secret gone. */
static void noise_hs_fail(noise_hs_t *hs) {
  noise_hs_wipe(hs);
}

/* WriteMessage(payload, message_buffer) (§5.3). */
int noise_hs_write(noise_hs_t *hs, const uint8_t *payload, size_t plen, uint8_t *out, size_t cap) {
  const noise_step_t *step = noise_step_for(hs->state);
  noise_hs_t w;
  size_t off = 0, total;
  int rc = 0;

  if (!step || !step->write) return BFTNET_ESTATE;
  if (plen > BN_NOISE_MAX_MSG - step->overhead || step->overhead + plen > cap) {
    noise_hs_fail(hs);
    return plen > BN_NOISE_MAX_MSG - step->overhead ? BFTNET_ETOOBIG : BFTNET_EBUFSIZE;
  }
  total = step->overhead + plen;
  w = *hs;
  for (const noise_token_t *t = step->tokens; *t != TOK_END; t++) {
    switch (*t) {
    case TOK_E: /* e: append e.pub, MixHash(e.pub) (the ephemeral is given) */
      memcpy(out + off, w.e_pub, NOISE_DHLEN);
      noise_mix_hash(&w, w.e_pub, NOISE_DHLEN);
      off += NOISE_DHLEN;
      break;
    case TOK_S: /* s: append EncryptAndHash(s.pub) */
      rc = noise_encrypt_and_hash(&w, w.s_pub, NOISE_DHLEN, out + off);
      if (rc < 0) goto out;
      off += (size_t)rc;
      break;
    default:
      rc = noise_token_dh(&w, *t);
      if (rc < 0) goto out;
      break;
    }
  }
  rc = noise_encrypt_and_hash(&w, payload, plen, out + off);
  if (rc < 0) goto out;
  off += (size_t)rc;
  BN_ASSERT(off == total);

  w.state = step->next;
  *hs = w;
  rc = (int)off;
out:
  sodium_memzero(&w, sizeof w);
  if (rc < 0) {
    noise_hs_fail(hs);
    sodium_memzero(out, total);
  }
  return rc;
}

/* ReadMessage(message, payload_buffer) (§5.3). */
int noise_hs_read(noise_hs_t *hs, const uint8_t *msg, size_t len, uint8_t *out, size_t cap) {
  const noise_step_t *step = noise_step_for(hs->state);
  uint8_t dummy[1]; /* where an empty payload goes when out is NULL */
  noise_hs_t w;
  size_t off = 0, plen = 0;
  int rc = 0;

  if (!step || step->write) return BFTNET_ESTATE;
  if (len < step->overhead) {
    noise_hs_fail(hs);
    return BFTNET_EPROTO;
  }
  plen = len - step->overhead;
  if (len > BN_NOISE_MAX_MSG || plen > cap) {
    noise_hs_fail(hs);
    return BFTNET_ETOOBIG;
  }
  w = *hs;
  for (const noise_token_t *t = step->tokens; *t != TOK_END; t++) {
    switch (*t) {
    case TOK_E: /* e: re = next DHLEN bytes; MixHash(re) */
      memcpy(w.re, msg + off, NOISE_DHLEN);
      noise_mix_hash(&w, w.re, NOISE_DHLEN);
      off += NOISE_DHLEN;
      break;
    case TOK_S: { /* s: rs = DecryptAndHash(next DHLEN + 16 bytes, or DHLEN) */
      size_t n = NOISE_DHLEN + (w.cs.has_k ? BN_NOISE_TAG : 0);
      rc = noise_decrypt_and_hash(&w, msg + off, n, w.rs);
      if (rc < 0) goto out;
      off += n;
      break;
    }
    default:
      rc = noise_token_dh(&w, *t);
      if (rc < 0) goto out;
      break;
    }
  }
  /* XX keys every message after the first, so overhead counted the tag. */
  BN_ASSERT(len - off == plen + (w.cs.has_k ? BN_NOISE_TAG : 0));
  rc = noise_decrypt_and_hash(&w, msg + off, len - off, out ? out : dummy);
  if (rc < 0) goto out;
  BN_ASSERT((size_t)rc == plen);

  w.state = step->next;
  *hs = w;
out:
  sodium_memzero(&w, sizeof w);
  if (rc < 0) {
    noise_hs_fail(hs);
    if (plen) sodium_memzero(out, plen);
  }
  return rc;
}

/* Split() (§5.2): k1 encrypts initiator -> responder, k2 the other way. */
int noise_hs_split(noise_hs_t *hs, noise_cipher_t *send, noise_cipher_t *recv,
                   uint8_t hash_out[NOISE_HASHLEN], uint8_t remote_static[NOISE_DHLEN]) {
  uint8_t k1[NOISE_HASHLEN], k2[NOISE_HASHLEN];

  if (hs->state != NOISE_HS_DONE) return BFTNET_ESTATE;
  noise_hkdf2(hs->ck, NULL, 0, k1, k2);
  noise_cipher_init_key(send, hs->initiator ? k1 : k2);
  noise_cipher_init_key(recv, hs->initiator ? k2 : k1);
  if (hash_out) memcpy(hash_out, hs->h, NOISE_HASHLEN);
  if (remote_static) memcpy(remote_static, hs->rs, NOISE_DHLEN);
  sodium_memzero(k1, sizeof k1);
  sodium_memzero(k2, sizeof k2);
  noise_hs_wipe(hs);
  return 0;
}

/* ------------------------------------------------------ libp2p payload */

/* The signed message: "noise-libp2p-static-key:" || static public key. */
#define NOISE_SIG_PREFIX_LEN (sizeof(NOISE_LIBP2P_SIG_PREFIX) - 1)
#define NOISE_SIG_MSG_LEN    (NOISE_SIG_PREFIX_LEN + NOISE_DHLEN)

static void noise_sig_msg(const uint8_t static_pub[NOISE_DHLEN], uint8_t msg[NOISE_SIG_MSG_LEN]) {
  memcpy(msg, NOISE_LIBP2P_SIG_PREFIX, NOISE_SIG_PREFIX_LEN);
  memcpy(msg + NOISE_SIG_PREFIX_LEN, static_pub, NOISE_DHLEN);
}

int noise_libp2p_payload_build(const uint8_t ed_sk[64], const uint8_t ed_pk[32],
                               const uint8_t static_pub[NOISE_DHLEN], uint8_t *out, size_t cap) {
  Bftnet__Noise__NoiseHandshakePayload p = BFTNET__NOISE__NOISE_HANDSHAKE_PAYLOAD__INIT;
  uint8_t key_pb[PEERID_ED25519_PUBPB_LEN];
  uint8_t sig[crypto_sign_BYTES];
  uint8_t msg[NOISE_SIG_MSG_LEN];
  size_t n;

  peerid_ed25519_pubkey_pb(ed_pk, key_pb);
  noise_sig_msg(static_pub, msg);
  crypto_sign_detached(sig, NULL, msg, sizeof msg, ed_sk);
  p.has_identity_key = 1;
  p.identity_key.data = key_pb;
  p.identity_key.len = sizeof key_pb;
  p.has_identity_sig = 1;
  p.identity_sig.data = sig;
  p.identity_sig.len = sizeof sig;
  n = bftnet__noise__noise_handshake_payload__get_packed_size(&p);
  if (n > BN_NOISE_MAX_PAYLOAD) return BFTNET_ETOOBIG;
  if (n > cap) return BFTNET_EBUFSIZE;
  BN_ASSERT(bftnet__noise__noise_handshake_payload__pack(&p, out) == n);
  return (int)n;
}

int noise_libp2p_payload_verify(const uint8_t *payload, size_t n,
                                const uint8_t remote_static[NOISE_DHLEN], peerid_t *out) {
  pb_arena_t arena; /* protobuf-c allocates only from here (BN_PB_ARENA_MAX) */
  Bftnet__Noise__NoiseHandshakePayload *p;
  uint8_t pk[crypto_sign_PUBLICKEYBYTES];
  uint8_t msg[NOISE_SIG_MSG_LEN];
  int rc;

  if (n > BN_NOISE_MAX_PAYLOAD) return BFTNET_EPROTO;
  pb_arena_init(&arena);
  /* Unknown fields and extensions (e.g. js-libp2p's early muxer list) are
   * decoded into the arena and ignored. */
  p = bftnet__noise__noise_handshake_payload__unpack(&arena.alloc, n,
                                                     payload ? payload : noise_empty);
  if (!p) return BFTNET_EPROTO;
  if (!p->has_identity_key || !p->has_identity_sig) {
    rc = BFTNET_EPROTO;
    goto out;
  }
  rc = peerid_ed25519_pubkey_parse(p->identity_key.data, p->identity_key.len, pk);
  if (rc < 0) {
    rc = BFTNET_EBADKEY;
    goto out;
  }
  noise_sig_msg(remote_static, msg);
  if (p->identity_sig.len != crypto_sign_BYTES ||
      crypto_sign_verify_detached(p->identity_sig.data, msg, sizeof msg, pk) != 0) {
    rc = BFTNET_EAUTH;
    goto out;
  }
  peerid_from_ed25519(pk, out);
  rc = 0;
out:
  bftnet__noise__noise_handshake_payload__free_unpacked(p, &arena.alloc);
  return rc;
}
