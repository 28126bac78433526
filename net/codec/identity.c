/*
 * identity.c — the node's Ed25519 identity key: generate, load and save as a
 * libp2p protobuf PrivateKey (libp2p/specs peer-ids/peer-ids.md), sign.
 *
 * The secret (seed || public key, 64 bytes) lives only in sodium_malloc
 * memory; every other copy (file buffers, the protobuf arena) is wiped at
 * the one exit label of the function that made it. Nothing here logs.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "identity.h"

#define IDENTITY_SK_LEN   crypto_sign_SECRETKEYBYTES /* 64: seed || pk */
#define IDENTITY_SEED_LEN crypto_sign_SEEDBYTES      /* 32 */
/* The canonical PrivateKey encoding: 08 01 12 40 || 64 bytes. */
#define IDENTITY_PB_LEN (4u + IDENTITY_SK_LEN)
/* Files longer than this are not keys (checked before reading them in full). */
#define IDENTITY_FILE_MAX 1024u

_Static_assert(IDENTITY_SK_LEN == 64 && IDENTITY_SEED_LEN == 32, "libsodium Ed25519 layout");
_Static_assert(crypto_sign_PUBLICKEYBYTES == 32, "Ed25519 public key");

static int identity_sodium_init(void) {
  return sodium_init() < 0 ? BFTNET_EIO : 0;
}

/* A key with its secret in guarded memory; pk and id still unset. */
static int identity_alloc(bftnet_key_t **out) {
  bftnet_key_t *key = calloc(1, sizeof *key);
  if (!key) return BFTNET_ENOMEM;
  key->sk = sodium_malloc(IDENTITY_SK_LEN);
  if (!key->sk) {
    free(key);
    return BFTNET_ENOMEM;
  }
  *out = key;
  return 0;
}

BFTNET_API void bftnet_key_free(bftnet_key_t *key) {
  if (!key) return;
  sodium_free(key->sk); /* wipes before unmapping */
  sodium_memzero(key, sizeof *key);
  free(key);
}

/* Derives the key pair from a 32-byte seed into a fresh key. */
static int identity_from_seed(const uint8_t seed[IDENTITY_SEED_LEN], bftnet_key_t **out) {
  bftnet_key_t *key;
  int rc = identity_alloc(&key);
  if (rc < 0) return rc;
  crypto_sign_seed_keypair(key->pk, key->sk, seed);
  peerid_from_ed25519(key->pk, &key->id);
  *out = key;
  return 0;
}

BFTNET_API int bftnet_key_generate(bftnet_key_t **out) {
  uint8_t seed[IDENTITY_SEED_LEN];
  int rc;

  if (!out) return BFTNET_EINVAL;
  rc = identity_sodium_init();
  if (rc < 0) return rc;
  /* libsodium's RNG, not the seam: key generation is not replayed. */
  randombytes_buf(seed, sizeof seed);
  rc = identity_from_seed(seed, out);
  sodium_memzero(seed, sizeof seed);
  return rc;
}

static const uint8_t identity_pb_prefix[4] = {0x08, 0x01, 0x12, 0x40};

/* Strict: a PrivateKey of type Ed25519 whose Data is exactly seed || pk with
 * pk the public key of seed, in the canonical encoding every libp2p
 * implementation writes (Type then Data, no other field). Any other input is
 * BFTNET_EBADKEY. */
BFTNET_API int bftnet_key_from_protobuf(const uint8_t *buf, size_t len, bftnet_key_t **out) {
  pb_arena_t arena; /* holds a copy of the secret: wiped at out */
  Bftnet__Keys__PrivateKey *pb = NULL;
  bftnet_key_t *key = NULL;
  int rc;

  if (!out || (!buf && len)) return BFTNET_EINVAL;
  rc = identity_sodium_init();
  if (rc < 0) return rc;
  /* The canonical form has one length: check it before decoding anything. */
  if (len != IDENTITY_PB_LEN || memcmp(buf, identity_pb_prefix, sizeof identity_pb_prefix) != 0)
    return BFTNET_EBADKEY;
  pb_arena_init(&arena);
  pb = bftnet__keys__private_key__unpack(&arena.alloc, len, buf);
  if (!pb || pb->type != BFTNET__KEYS__KEY_TYPE__Ed25519 || pb->data.len != IDENTITY_SK_LEN) {
    rc = BFTNET_EBADKEY;
    goto out;
  }
  rc = identity_from_seed(pb->data.data, &key);
  if (rc < 0) goto out;
  /* The stored public half must be the one the seed derives. */
  if (sodium_memcmp(pb->data.data + IDENTITY_SEED_LEN, key->pk, 32) != 0) {
    rc = BFTNET_EBADKEY;
    goto out;
  }
  *out = key;
  key = NULL;
  rc = 0;
out:
  bftnet_key_free(key);
  sodium_memzero(&arena, sizeof arena);
  return rc;
}

/* Reads a whole small file; -errno or BFTNET_EBADKEY if it is too long. */
static int identity_read_file(const char *path, uint8_t *buf, size_t cap, size_t *len) {
  size_t off = 0;
  int rc = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return -errno;
  for (;;) {
    if (off == cap) { /* one byte more than any key: not a key */
      rc = BFTNET_EBADKEY;
      break;
    }
    ssize_t n = read(fd, buf + off, cap - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      rc = -errno;
      break;
    }
    if (n == 0) break;
    off += (size_t)n;
  }
  close(fd);
  *len = off;
  return rc;
}

BFTNET_API int bftnet_key_load(const char *path, bftnet_key_t **out) {
  uint8_t buf[IDENTITY_FILE_MAX + 1];
  size_t len = 0;
  int rc;

  if (!path || !out) return BFTNET_EINVAL;
  rc = identity_read_file(path, buf, sizeof buf, &len);
  if (rc < 0) goto out;
  rc = bftnet_key_from_protobuf(buf, len, out);
out:
  sodium_memzero(buf, sizeof buf);
  return rc;
}

static int identity_write_all(int fd, const uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return -errno;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Best effort: makes the new directory entry durable. */
static void identity_sync_dir(const char *path) {
  char copy[PATH_MAX];
  size_t n = strlen(path);
  if (n >= sizeof copy) return;
  memcpy(copy, path, n + 1);
  int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return;
  (void)fsync(dfd);
  close(dfd);
}

BFTNET_API int bftnet_key_save(const bftnet_key_t *key, const char *path) {
  Bftnet__Keys__PrivateKey pb = BFTNET__KEYS__PRIVATE_KEY__INIT;
  uint8_t buf[IDENTITY_PB_LEN];
  int rc, fd;

  if (!key || !key->sk || !path) return BFTNET_EINVAL;
  pb.type = BFTNET__KEYS__KEY_TYPE__Ed25519;
  pb.data.data = key->sk;
  pb.data.len = IDENTITY_SK_LEN;
  BN_ASSERT(bftnet__keys__private_key__get_packed_size(&pb) == sizeof buf);
  BN_ASSERT(bftnet__keys__private_key__pack(&pb, buf) == sizeof buf);
  BN_ASSERT(memcmp(buf, identity_pb_prefix, sizeof identity_pb_prefix) == 0);

  /* O_EXCL: never overwrite a key; O_NOFOLLOW: nor write through a link. */
  fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    rc = -errno;
    goto out;
  }
  /* The umask can only clear bits; make the mode exactly 0600 anyway. */
  if (fchmod(fd, 0600) < 0) {
    rc = -errno;
    goto err_unlink;
  }
  rc = identity_write_all(fd, buf, sizeof buf);
  if (rc < 0) goto err_unlink;
  if (fsync(fd) < 0) {
    rc = -errno;
    goto err_unlink;
  }
  if (close(fd) < 0) {
    fd = -1;
    rc = -errno;
    goto err_unlink;
  }
  identity_sync_dir(path);
  rc = 0;
  goto out;

err_unlink: /* a partial key file must not be mistaken for a key */
  if (fd >= 0) close(fd);
  unlink(path);
out:
  sodium_memzero(buf, sizeof buf);
  return rc;
}

BFTNET_API int bftnet_key_peer_id(const bftnet_key_t *key, char *buf, size_t cap) {
  if (!key || !buf) return BFTNET_EINVAL;
  int rc = peerid_to_string(&key->id, buf, cap);
  if (rc < 0 && cap) buf[0] = '\0'; /* never a partial ID */
  return rc < 0 ? rc : 0;
}

void identity_sign(const struct bftnet_key *key, const uint8_t *msg, size_t n, uint8_t sig[64]) {
  BN_ASSERT(key && key->sk && (msg || n == 0));
  crypto_sign_detached(sig, NULL, msg ? msg : (const uint8_t *)"", n, key->sk);
}
