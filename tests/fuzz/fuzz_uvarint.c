/* fuzz_uvarint.c — uvarint_decode on arbitrary bytes: what it accepts is the
 * unique minimal encoding of the value; what it defers is a legal prefix. */
#include <stdlib.h>

#include "proto.h"

#define FZ_CHECK(c) ((c) ? (void)0 : abort()) /* a violated property */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint64_t v = 0;
  int rc = uvarint_decode(data, size, &v);
  if (rc > 0) {
    FZ_CHECK((size_t)rc <= size && rc <= (int)BN_UVARINT_MAX_BYTES);
    FZ_CHECK(v <= (UINT64_MAX >> 1));
    uint8_t out[BN_UVARINT_MAX_BYTES];
    FZ_CHECK(uvarint_encode(out, v) == (size_t)rc);
    FZ_CHECK(memcmp(out, data, (size_t)rc) == 0);
    FZ_CHECK(uvarint_size(v) == (size_t)rc);
  } else if (rc == 0) {
    FZ_CHECK(size < BN_UVARINT_MAX_BYTES);
    for (size_t i = 0; i < size; i++)
      FZ_CHECK(data[i] & 0x80);
  } else {
    FZ_CHECK(rc == BFTNET_EPROTO);
  }
  /* encode -> decode for a value taken from the input. */
  if (size >= 8) {
    uint64_t x = bn_load_be64(data) >> (1 + (size % 63));
    uint8_t out[BN_UVARINT_MAX_BYTES];
    size_t n = uvarint_encode(out, x);
    uint64_t back;
    FZ_CHECK(uvarint_decode(out, n, &back) == (int)n && back == x);
    for (size_t k = 0; k < n; k++)
      FZ_CHECK(uvarint_decode(out, k, &back) == 0);
  }
  return 0;
}
