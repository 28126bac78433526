/* bftnet-keygen FILE — writes a new Ed25519 identity (libp2p protobuf
 * PrivateKey, mode 0600) and prints its peer ID. */
#include <stdio.h>

#include "bftnet.h"

int main(int argc, char **argv) {
  if (argc != 2 || argv[1][0] == '-') {
    fprintf(stderr, "usage: bftnet-keygen FILE\n"
                    "Writes a new Ed25519 key (libp2p protobuf, mode 0600) and prints its peer ID.\n");
    return 2;
  }
  bftnet_key_t *key;
  int rc = bftnet_key_generate(&key);
  if (rc == 0) rc = bftnet_key_save(key, argv[1]);
  if (rc != 0) {
    fprintf(stderr, "bftnet-keygen: %s: %s\n", argv[1], bftnet_strerror(rc));
    if (rc != BFTNET_ENOMEM && key) bftnet_key_free(key);
    return 1;
  }
  char id[BFTNET_PEER_ID_MAX];
  bftnet_key_peer_id(key, id, sizeof id);
  printf("%s\n", id);
  bftnet_key_free(key);
  return 0;
}
