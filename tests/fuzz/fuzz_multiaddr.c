/* fuzz_multiaddr.c — maddr_parse on arbitrary text: rejections say why,
 * accepted addresses format and re-parse to the same value. */
#include <stdlib.h>

#include "proto.h"

#define FZ_CHECK(c) ((c) ? (void)0 : abort()) /* a violated property */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool fz_maddr_equal(const maddr_t *a, const maddr_t *b) {
  if (a->sa.ss_family != b->sa.ss_family || a->has_peer != b->has_peer) return false;
  if (a->has_peer && !peerid_equal(&a->peer, &b->peer)) return false;
  size_t n = a->sa.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
  return memcmp(&a->sa, &b->sa, n) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 4096) return 0;
  char *s = malloc(size + 1);
  FZ_CHECK(s);
  memcpy(s, data, size);
  s[size] = '\0';
  maddr_t m;
  char err[128];
  memset(err, 0x55, sizeof(err));
  int rc = maddr_parse(s, &m, err, sizeof(err));
  if (rc != 0) {
    FZ_CHECK(rc == BFTNET_EBADADDR);
    FZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
    free(s);
    return 0;
  }
  FZ_CHECK(m.sa.ss_family == AF_INET || m.sa.ss_family == AF_INET6);
  char out[BFTNET_ADDR_MAX];
  FZ_CHECK(maddr_format(&m, out, sizeof(out)) == 0);
  /* IPv4 text, ports and base58 have one spelling: the text comes back. */
  if (m.sa.ss_family == AF_INET) FZ_CHECK(strcmp(out, s) == 0);
  maddr_t again;
  FZ_CHECK(maddr_parse(out, &again, err, sizeof(err)) == 0);
  FZ_CHECK(fz_maddr_equal(&m, &again));
  char out2[BFTNET_ADDR_MAX];
  FZ_CHECK(maddr_format(&again, out2, sizeof(out2)) == 0);
  FZ_CHECK(strcmp(out, out2) == 0);
  free(s);
  return 0;
}
