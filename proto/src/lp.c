/* lp.c — libp2p length-prefixed messages: uvarint(len) || bytes. */
#include <limits.h>

#include "proto.h"

int lp_next(const uint8_t *p, size_t n, size_t max, const uint8_t **msg, size_t *len) {
  uint64_t l;
  int hdr = uvarint_decode(p, n, &l);
  if (hdr <= 0) return hdr;
  /* Checked before waiting for the body: a lying length never buffers. */
  if (l > max || l > (uint64_t)INT_MAX - (uint64_t)hdr) return BFTNET_ETOOBIG;
  if (n - (size_t)hdr < l) return 0;
  *msg = p + hdr;
  *len = (size_t)l;
  return hdr + (int)l;
}

int lp_append(bn_buf_t *out, const void *data, size_t len) {
  if ((uint64_t)len > (UINT64_MAX >> 1)) return BFTNET_ETOOBIG;
  uint8_t hdr[BN_UVARINT_MAX_BYTES];
  size_t h = uvarint_encode(hdr, len);
  int rc = bn_buf_reserve(out, h + len);
  if (rc) return rc;
  rc = bn_buf_append(out, hdr, h);
  if (rc) return rc;
  return bn_buf_append(out, data, len);
}
