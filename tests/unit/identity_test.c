/*
 * identity_test.c — the Ed25519 identity key: the libp2p peer ID vector,
 * save/load round trip (mode 0600, O_EXCL), strict loading.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "harness.h"
#include "identity.h"

/* libp2p peer-ids vector (shared/vectors_peer_id.txt). */
static const char *const V_PRIV_PB =
    "080112407e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d1ed1e8fae2c4a144b8be"
    "8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e";
static const char *const V_PUB_PB =
    "080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e";
static const char *const V_PEER_ID = "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq";

static char g_dir[64];

static int dir_setup(void **state) {
  (void)state;
  strcpy(g_dir, "/tmp/bftnet-identity-XXXXXX");
  return mkdtemp(g_dir) ? 0 : -1;
}

static int dir_teardown(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  return system(cmd) == 0 ? 0 : -1;
}

static void path_in_dir(char *out, size_t cap, const char *name) {
  snprintf(out, cap, "%s/%s", g_dir, name);
}

static void write_file(const char *path, const uint8_t *b, size_t n) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, b, n), (ssize_t)n);
  close(fd);
}

static void test_vector(void **state) {
  (void)state;
  bftnet_key_t *k = NULL;
  size_t n, pn;
  uint8_t *pb = th_hex(V_PRIV_PB, &n);
  uint8_t *pub = th_hex(V_PUB_PB, &pn);
  uint8_t mine[36];
  char id[BFTNET_PEER_ID_MAX];

  assert_ok(bftnet_key_from_protobuf(pb, n, &k));
  assert_ok(bftnet_key_peer_id(k, id, sizeof id));
  assert_string_equal(id, V_PEER_ID);
  peerid_ed25519_pubkey_pb(k->pk, mine);
  assert_int_equal(pn, 36);
  assert_memory_equal(mine, pub, 36);
  assert_memory_equal(k->sk, pb + 4, 64);
  /* A too-small buffer is an error, not a truncated ID. */
  assert_err(bftnet_key_peer_id(k, id, 10), BFTNET_EBUFSIZE); /* a caller's buffer: its own code */
  assert_string_equal(id, "");                                /* never a partial ID */
  bftnet_key_free(k);
  bftnet_key_free(NULL);
  free(pb);
  free(pub);
}

static void test_generate_sign(void **state) {
  (void)state;
  bftnet_key_t *a, *b;
  uint8_t sig[64];
  char ida[BFTNET_PEER_ID_MAX], idb[BFTNET_PEER_ID_MAX];

  assert_ok(bftnet_key_generate(&a));
  assert_ok(bftnet_key_generate(&b));
  assert_ok(bftnet_key_peer_id(a, ida, sizeof ida));
  assert_ok(bftnet_key_peer_id(b, idb, sizeof idb));
  assert_string_not_equal(ida, idb);
  assert_memory_equal(ida, "12D3KooW", 8);
  identity_sign(a, (const uint8_t *)"hello", 5, sig);
  assert_int_equal(crypto_sign_verify_detached(sig, (const uint8_t *)"hello", 5, a->pk), 0);
  assert_int_not_equal(crypto_sign_verify_detached(sig, (const uint8_t *)"hello", 5, b->pk), 0);
  bftnet_key_free(a);
  bftnet_key_free(b);
}

static void test_save_load(void **state) {
  (void)state;
  bftnet_key_t *k, *l;
  char path[128], ida[BFTNET_PEER_ID_MAX], idb[BFTNET_PEER_ID_MAX];
  struct stat st;
  uint8_t sa[64], sb[64], file[128];

  path_in_dir(path, sizeof path, "node.key");
  assert_ok(bftnet_key_generate(&k));
  mode_t old = umask(0); /* the mode is 0600 whatever the umask */
  assert_ok(bftnet_key_save(k, path));
  umask(old);
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0600);
  assert_int_equal(st.st_size, 68);
  /* The file is the protobuf PrivateKey: Type Ed25519, Data seed || pk. */
  int fd = open(path, O_RDONLY);
  assert_int_equal(read(fd, file, sizeof file), 68);
  close(fd);
  assert_memory_equal(file, "\x08\x01\x12\x40", 4);
  assert_memory_equal(file + 4, k->sk, 64);

  assert_ok(bftnet_key_load(path, &l));
  assert_ok(bftnet_key_peer_id(k, ida, sizeof ida));
  assert_ok(bftnet_key_peer_id(l, idb, sizeof idb));
  assert_string_equal(ida, idb);
  identity_sign(k, (const uint8_t *)"m", 1, sa);
  identity_sign(l, (const uint8_t *)"m", 1, sb);
  assert_memory_equal(sa, sb, 64);

  /* Never overwrite a key. */
  assert_err(bftnet_key_save(l, path), -EEXIST);
  assert_int_equal(stat(path, &st), 0); /* and the failed save left it alone */
  assert_int_equal(st.st_size, 68);
  /* Nor write through a symlink. */
  char link[128];
  path_in_dir(link, sizeof link, "link.key");
  assert_int_equal(symlink("/nonexistent-target-bftnet", link), 0);
  assert_true(bftnet_key_save(k, link) < 0);
  /* Nor into a missing directory. */
  path_in_dir(link, sizeof link, "missing/dir.key");
  assert_err(bftnet_key_save(k, link), -ENOENT);

  bftnet_key_free(k);
  bftnet_key_free(l);
}

/* A PrivateKey built by hand: Type, and Data of dlen bytes from data. */
static size_t pack_priv(Bftnet__Keys__KeyType type, const uint8_t *data, size_t dlen,
                        uint8_t *out) {
  Bftnet__Keys__PrivateKey pb = BFTNET__KEYS__PRIVATE_KEY__INIT;
  pb.type = type;
  pb.data.data = (uint8_t *)data;
  pb.data.len = dlen;
  return bftnet__keys__private_key__pack(&pb, out);
}

static void expect_load(const char *name, const uint8_t *b, size_t n, int want) {
  char path[128];
  bftnet_key_t *k = NULL;
  path_in_dir(path, sizeof path, name);
  write_file(path, b, n);
  assert_err(bftnet_key_load(path, &k), want);
  assert_null(k);
  assert_err(bftnet_key_from_protobuf(b, n, &k), want);
  assert_null(k);
}

static void test_load_rejects(void **state) {
  (void)state;
  size_t n;
  uint8_t *pb = th_hex(V_PRIV_PB, &n);
  uint8_t data[65], buf[256];
  static uint8_t big[2000];
  bftnet_key_t *k = NULL;
  char path[128];

  memcpy(data, pb + 4, 64);
  data[64] = 0;
  /* Wrong type: same bytes, labelled Secp256k1, RSA, ECDSA. */
  expect_load("t2.key", buf, pack_priv(BFTNET__KEYS__KEY_TYPE__Secp256k1, data, 64, buf),
              BFTNET_EBADKEY);
  expect_load("t0.key", buf, pack_priv(BFTNET__KEYS__KEY_TYPE__RSA, data, 64, buf), BFTNET_EBADKEY);
  expect_load("t3.key", buf, pack_priv(BFTNET__KEYS__KEY_TYPE__ECDSA, data, 64, buf),
              BFTNET_EBADKEY);
  /* Wrong length: the seed alone (the old 32-byte form), 63, 65 bytes. */
  expect_load("l32.key", buf, pack_priv(BFTNET__KEYS__KEY_TYPE__Ed25519, data, 32, buf),
              BFTNET_EBADKEY);
  expect_load("l63.key", buf, pack_priv(BFTNET__KEYS__KEY_TYPE__Ed25519, data, 63, buf),
              BFTNET_EBADKEY);
  expect_load("l65.key", buf, pack_priv(BFTNET__KEYS__KEY_TYPE__Ed25519, data, 65, buf),
              BFTNET_EBADKEY);
  /* Public half that the seed does not derive (every byte checked). */
  for (size_t i = 32; i < 64; i += 5) {
    memcpy(data, pb + 4, 64);
    data[i] ^= 0x01;
    expect_load("pk.key", buf, pack_priv(BFTNET__KEYS__KEY_TYPE__Ed25519, data, 64, buf),
                BFTNET_EBADKEY);
  }
  /* Valid fields, non-canonical encoding: Data before Type; a trailing
   * unknown field; a duplicated Type (protobuf's last-one-wins). */
  buf[0] = 0x12;
  buf[1] = 0x40;
  memcpy(buf + 2, pb + 4, 64);
  buf[66] = 0x08;
  buf[67] = 0x01;
  expect_load("order.key", buf, 68, BFTNET_EBADKEY);
  memcpy(buf, pb, n);
  buf[n] = 0x18;
  buf[n + 1] = 0x00;
  expect_load("extra.key", buf, n + 2, BFTNET_EBADKEY);
  buf[0] = 0x08;
  buf[1] = 0x03;
  memcpy(buf + 2, pb, n);
  expect_load("dup.key", buf, n + 2, BFTNET_EBADKEY);
  /* Empty, truncated, garbage, too long. */
  expect_load("empty.key", buf, 0, BFTNET_EBADKEY);
  for (size_t len = 1; len < n; len += 3)
    expect_load("trunc.key", pb, len, BFTNET_EBADKEY);
  memset(buf, 0xff, 68);
  expect_load("garbage.key", buf, 68, BFTNET_EBADKEY);
  memset(big, 0, sizeof big);
  expect_load("big.key", big, sizeof big, BFTNET_EBADKEY);
  /* Missing file, a directory. */
  path_in_dir(path, sizeof path, "missing.key");
  assert_err(bftnet_key_load(path, &k), -ENOENT);
  assert_true(bftnet_key_load(g_dir, &k) < 0);
  assert_null(k);
  /* The valid one, from a file, for contrast. */
  path_in_dir(path, sizeof path, "ok.key");
  write_file(path, pb, n);
  assert_ok(bftnet_key_load(path, &k));
  bftnet_key_free(k);
  free(pb);
}

static void test_bad_args(void **state) {
  (void)state;
  bftnet_key_t *k = NULL;
  char id[BFTNET_PEER_ID_MAX];
  assert_err(bftnet_key_generate(NULL), BFTNET_EINVAL);
  assert_err(bftnet_key_load(NULL, &k), BFTNET_EINVAL);
  assert_err(bftnet_key_from_protobuf(NULL, 4, &k), BFTNET_EINVAL);
  assert_err(bftnet_key_save(NULL, "/tmp/x"), BFTNET_EINVAL);
  assert_err(bftnet_key_peer_id(NULL, id, sizeof id), BFTNET_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_vector),    cmocka_unit_test(test_generate_sign),
      cmocka_unit_test(test_save_load), cmocka_unit_test(test_load_rejects),
      cmocka_unit_test(test_bad_args),
  };
  return cmocka_run_group_tests(tests, dir_setup, dir_teardown);
}
