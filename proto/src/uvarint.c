/* uvarint.c — multiformats unsigned-varint: 7 bits per byte, least
 * significant group first, minimal, at most 9 bytes (63 bits). */
#include "proto.h"

#define UVARINT_MAX_VALUE (UINT64_MAX >> 1)

size_t uvarint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

size_t uvarint_encode(uint8_t out[BN_UVARINT_MAX_BYTES], uint64_t v) {
  BN_ASSERT(v <= UVARINT_MAX_VALUE);
  size_t n = 0;
  while (v >= 0x80) {
    out[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  out[n++] = (uint8_t)v;
  return n;
}

int uvarint_decode(const uint8_t *p, size_t n, uint64_t *v) {
  uint64_t x = 0;
  for (size_t i = 0; i < BN_UVARINT_MAX_BYTES; i++) {
    if (i == n) return 0;
    uint8_t b = p[i];
    x |= (uint64_t)(b & 0x7f) << (7 * i);
    if (b & 0x80) continue;
    /* A zero last byte (other than the value 0 itself) is non-minimal. */
    if (b == 0 && i > 0) return BFTNET_EPROTO;
    *v = x;
    return (int)(i + 1);
  }
  return BFTNET_EPROTO; /* the 9th byte still has the continuation bit */
}
