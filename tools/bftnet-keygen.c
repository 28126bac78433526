/* bftnet-keygen — makes an Ed25519 identity or shows the peer ID of one.
 *
 *   bftnet-keygen FILE         writes a new key (libp2p protobuf PrivateKey,
 *                              mode 0600; never over an existing file) and
 *                              prints its peer ID
 *   bftnet-keygen --show FILE  prints the peer ID of the key in FILE
 *
 * Exit status: 0 done, 1 the key could not be written or read, 2 bad usage. */
#include <stdio.h>
#include <string.h>

#include "bftnet.h"

#ifndef BFTNET_TOOLS_VERSION
#define BFTNET_TOOLS_VERSION "unknown"
#endif

static const char synopsis[] = "usage: bftnet-keygen FILE\n"
                               "       bftnet-keygen --show FILE\n";

static void help(void) {
  printf("%s"
         "\n"
         "Writes a new Ed25519 identity key to FILE (libp2p protobuf PrivateKey, mode\n"
         "0600; an existing FILE is never overwritten) and prints its peer ID, the\n"
         "12D3KooW... that other replicas put after /p2p/ in this node's addresses.\n"
         "\n"
         "  --show FILE    print the peer ID of the key already in FILE\n"
         "  -h, --help     print this help and exit\n"
         "  --version      print the version and exit\n"
         "  -- FILE        a FILE whose name starts with '-'\n"
         "\n"
         "Exit status: 0 done, 1 the key could not be written or read, 2 bad usage.\n",
         synopsis);
}

static int print_peer_id(const bftnet_key_t *key, const char *file) {
  char id[BFTNET_PEER_ID_MAX];
  int rc = bftnet_key_peer_id(key, id, sizeof id);
  if (rc != 0) {
    fprintf(stderr, "bftnet-keygen: %s: %s\n", file, bftnet_strerror(rc));
    return 1;
  }
  printf("%s\n", id);
  return 0;
}

static int show(const char *file) {
  bftnet_key_t *key = NULL;
  int rc = bftnet_key_load(file, &key);
  if (rc != 0) {
    fprintf(stderr, "bftnet-keygen: %s: %s\n", file, bftnet_strerror(rc));
    return 1;
  }
  int st = print_peer_id(key, file);
  bftnet_key_free(key);
  return st;
}

static int generate(const char *file) {
  bftnet_key_t *key = NULL;
  int rc = bftnet_key_generate(&key);
  if (rc == 0) rc = bftnet_key_save(key, file);
  if (rc != 0) {
    fprintf(stderr, "bftnet-keygen: %s: %s\n", file, bftnet_strerror(rc));
    bftnet_key_free(key); /* NULL if generating failed */
    return 1;
  }
  int st = print_peer_id(key, file);
  bftnet_key_free(key);
  return st;
}

int main(int argc, char **argv) {
  if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
    help();
    return 0;
  }
  if (argc == 2 && strcmp(argv[1], "--version") == 0) {
    printf("bftnet-keygen %s\n", BFTNET_TOOLS_VERSION);
    return 0;
  }
  if (argc == 3 && strcmp(argv[1], "--show") == 0) return show(argv[2]);
  if (argc == 3 && strcmp(argv[1], "--") == 0) return generate(argv[2]);
  if (argc == 2 && argv[1][0] != '-') return generate(argv[1]);
  if (argc >= 2 && argv[1][0] == '-' && strcmp(argv[1], "--show") != 0 &&
      strcmp(argv[1], "--") != 0)
    fprintf(stderr, "bftnet-keygen: unknown option '%s'\n", argv[1]);
  fprintf(stderr, "%s(bftnet-keygen --help for more)\n", synopsis);
  return 2;
}
