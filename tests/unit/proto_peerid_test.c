/* proto_peerid_test.c — libp2p peer IDs: the Ed25519 vector both ways, the
 * identity/sha2-256 rule, and strings that must not parse. */
#include "harness.h"
#include "proto.h"

/* An Ed25519 public key as a libp2p PublicKey protobuf, and its peer ID. */
static const char ed_pubpb_hex[] =
    "080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e";
static const char ed_peerid[] = "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq";
/* A 68-byte PublicKey (type RSA, data 00..3f): too big to inline, so sha2-256. */
static const char rsa_pubpb_hex[] =
    "08001240000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f";
static const char rsa_peerid[] = "QmdmfsahhEXCPvnTXWZEpyBjVqtohTJ1rb9MX91b2AS6ni";
/* A 37-byte Secp256k1 PublicKey: inlined. */
static const char secp_pubpb_hex[] =
    "08021221020102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20";
static const char secp_peerid[] = "16Uiu2HAkuVcAdoCkdw9kxjn3NCjmrTUufY81iXV6hLwfzupWD7ju";

static void check_pubpb_gives(const char *pb_hex, const char *want, uint8_t code) {
  size_t n;
  uint8_t *pb = th_hex(pb_hex, &n);
  peerid_t id;
  assert_ok(peerid_from_pubkey_pb(pb, n, &id));
  assert_int_equal(id.bytes[0], code);
  char text[BFTNET_PEER_ID_MAX];
  assert_ok(peerid_to_string(&id, text, sizeof(text)));
  assert_string_equal(text, want);
  /* string -> bytes -> string */
  peerid_t parsed;
  assert_ok(peerid_from_string(want, strlen(want), &parsed));
  assert_true(peerid_equal(&parsed, &id));
  assert_int_equal(peerid_cmp(&parsed, &id), 0);
  char again[BFTNET_PEER_ID_MAX];
  assert_ok(peerid_to_string(&parsed, again, sizeof(again)));
  assert_string_equal(again, want);
  free(pb);
}

static void test_peerid_vectors(void **state) {
  (void)state;
  check_pubpb_gives(ed_pubpb_hex, ed_peerid, 0x00);
  check_pubpb_gives(rsa_pubpb_hex, rsa_peerid, 0x12);
  check_pubpb_gives(secp_pubpb_hex, secp_peerid, 0x00);
}

static void test_peerid_ed25519(void **state) {
  (void)state;
  size_t n;
  uint8_t *pb = th_hex(ed_pubpb_hex, &n);
  assert_int_equal(n, PEERID_ED25519_PUBPB_LEN);
  uint8_t pk[32];
  assert_ok(peerid_ed25519_pubkey_parse(pb, n, pk));
  assert_memory_equal(pk, pb + 4, 32);
  uint8_t again[PEERID_ED25519_PUBPB_LEN];
  peerid_ed25519_pubkey_pb(pk, again);
  assert_memory_equal(again, pb, n);
  peerid_t id;
  peerid_from_ed25519(pk, &id);
  assert_int_equal(id.len, 38);
  char text[BFTNET_PEER_ID_MAX];
  assert_ok(peerid_to_string(&id, text, sizeof(text)));
  assert_string_equal(text, ed_peerid);
  assert_err(peerid_to_string(&id, text, strlen(ed_peerid)), BFTNET_EBUFSIZE);

  /* Not the canonical Ed25519 encoding: wrong type, length, size, trailer. */
  uint8_t bad[PEERID_ED25519_PUBPB_LEN + 1];
  memcpy(bad, pb, n);
  bad[1] = 0x02;
  assert_err(peerid_ed25519_pubkey_parse(bad, n, pk), BFTNET_EBADKEY);
  memcpy(bad, pb, n);
  bad[3] = 0x21;
  assert_err(peerid_ed25519_pubkey_parse(bad, n, pk), BFTNET_EBADKEY);
  memcpy(bad, pb, n);
  bad[n] = 0;
  assert_err(peerid_ed25519_pubkey_parse(bad, n + 1, pk), BFTNET_EBADKEY);
  for (size_t k = 0; k < n; k++)
    assert_err(peerid_ed25519_pubkey_parse(pb, k, pk), BFTNET_EBADKEY);
  free(pb);
}

static void test_peerid_pubpb_hostile(void **state) {
  (void)state;
  size_t n;
  uint8_t *pb = th_hex(ed_pubpb_hex, &n);
  peerid_t id;
  /* Every truncation of a valid key is rejected. */
  for (size_t k = 0; k < n; k++)
    assert_err(peerid_from_pubkey_pb(pb, k, &id), BFTNET_EBADKEY);
  static const char *const bad[] = {
      "ff",       /* not a protobuf */
      "0801",     /* Data missing (required) */
      "08011200", /* empty Data */
      "1220aabb", /* Data longer than the input */
      "0801120f", /* truncated */
  };
  for (size_t i = 0; i < BN_ARRAY_LEN(bad); i++) {
    size_t m;
    uint8_t *p = th_hex(bad[i], &m);
    assert_err(peerid_from_pubkey_pb(p, m, &id), BFTNET_EBADKEY);
    free(p);
  }
  free(pb);
}

/* base58 of a hand-made binary multihash, then parse it. */
static int parse_binary(const uint8_t *b, size_t n) {
  char text[200];
  BN_ASSERT(base58_encode(b, n, text, sizeof(text)) == 0);
  peerid_t id;
  return peerid_from_string(text, strlen(text), &id);
}

static void test_peerid_string_hostile(void **state) {
  (void)state;
  peerid_t id;
  assert_err(peerid_from_string("", 0, &id), BFTNET_EBADPEERID);
  static const char *const bad[] = {
      "0", "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pO",
      "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq1",
      "bafzaajaiaejcaxykhmgsz2mhscluhm6bkliibattya2l2lld7drtwhq2l3tx3l",
      "/p2p/12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq"};
  for (size_t i = 0; i < BN_ARRAY_LEN(bad); i++)
    assert_err(peerid_from_string(bad[i], strlen(bad[i]), &id), BFTNET_EBADPEERID);
  /* Every truncation of a valid ID. */
  for (size_t k = 0; k < strlen(ed_peerid); k++)
    assert_err(peerid_from_string(ed_peerid, k, &id), BFTNET_EBADPEERID);
  /* Far too long: rejected without decoding. */
  char longs[300];
  memset(longs, 'z', sizeof(longs));
  assert_err(peerid_from_string(longs, sizeof(longs), &id), BFTNET_EBADPEERID);

  uint8_t mh[80];
  memset(mh, 0x5a, sizeof(mh));
  mh[0] = 0x12, mh[1] = 0x20;
  assert_ok(parse_binary(mh, 34));
  assert_err(parse_binary(mh, 33), BFTNET_EBADPEERID); /* digest short */
  assert_err(parse_binary(mh, 35), BFTNET_EBADPEERID); /* trailing byte */
  mh[1] = 0x1f;
  assert_err(parse_binary(mh, 33), BFTNET_EBADPEERID); /* sha2-256 must be 32 */
  mh[0] = 0x13, mh[1] = 0x20;                          /* sha2-512 code */
  assert_err(parse_binary(mh, 34), BFTNET_EBADPEERID);
  mh[0] = 0x01;
  assert_err(parse_binary(mh, 34), BFTNET_EBADPEERID);
  assert_err(parse_binary(mh, 1), BFTNET_EBADPEERID);

  /* Identity: length must match, digest must be a small PublicKey. */
  size_t n;
  uint8_t *pb = th_hex(ed_pubpb_hex, &n);
  mh[0] = 0x00, mh[1] = (uint8_t)n;
  memcpy(mh + 2, pb, n);
  assert_ok(parse_binary(mh, n + 2));
  assert_err(parse_binary(mh, n + 1), BFTNET_EBADPEERID);
  mh[n + 2] = 0;
  assert_err(parse_binary(mh, n + 3), BFTNET_EBADPEERID);
  mh[1] = (uint8_t)(n + 1);
  assert_err(parse_binary(mh, n + 3), BFTNET_EBADPEERID);
  static const uint8_t not_key[] = {0x00, 0x04, 0xde, 0xad, 0xbe, 0xef};
  assert_err(parse_binary(not_key, sizeof(not_key)), BFTNET_EBADPEERID);
  static const uint8_t empty_id[] = {0x00, 0x00};
  assert_err(parse_binary(empty_id, sizeof(empty_id)), BFTNET_EBADPEERID);
  /* A 43-byte key would have been hashed: an identity ID of it is not canonical. */
  uint8_t big[2 + 43] = {0x00, 43, 0x08, 0x00, 0x12, 39};
  assert_err(parse_binary(big, sizeof(big)), BFTNET_EBADPEERID);
  free(pb);
}

static void test_peerid_order(void **state) {
  (void)state;
  peerid_t a = {.len = 3, .bytes = {1, 2, 3}};
  peerid_t b = {.len = 3, .bytes = {1, 2, 4}};
  peerid_t c = {.len = 2, .bytes = {1, 2}};
  assert_true(peerid_cmp(&a, &b) < 0);
  assert_true(peerid_cmp(&b, &a) > 0);
  assert_true(peerid_cmp(&c, &a) < 0);
  assert_true(peerid_cmp(&a, &c) > 0);
  assert_int_equal(peerid_cmp(&a, &a), 0);
  assert_false(peerid_equal(&a, &b));
  assert_false(peerid_equal(&a, &c));
  assert_true(peerid_equal(&a, &a));
  peerid_t empty = {0};
  char text[8];
  assert_err(peerid_to_string(&empty, text, sizeof(text)), BFTNET_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_peerid_vectors),       cmocka_unit_test(test_peerid_ed25519),
      cmocka_unit_test(test_peerid_pubpb_hostile), cmocka_unit_test(test_peerid_string_hostile),
      cmocka_unit_test(test_peerid_order),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
