/* fuzz_lp.c — lp_next over a stream of arbitrary bytes: every frame it
 * returns lies inside the input, respects max, and re-encodes to itself. */
#include <stdlib.h>

#include "proto.h"

#define FZ_CHECK(c) ((c) ? (void)0 : abort()) /* a violated property */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  size_t max = bn_load_be16(data); /* the limit comes from the input too */
  const uint8_t *p = data + 2;
  size_t n = size - 2;
  bn_buf_t b;
  bn_buf_init(&b);
  for (;;) {
    const uint8_t *msg = NULL;
    size_t len = 0;
    int rc = lp_next(p, n, max, &msg, &len);
    if (rc < 0) {
      FZ_CHECK(rc == BFTNET_EPROTO || rc == BFTNET_ETOOBIG);
      break;
    }
    if (rc == 0) break;
    FZ_CHECK((size_t)rc <= n && len <= max);
    FZ_CHECK(msg >= p && msg + len == p + rc);
    bn_buf_reset(&b);
    FZ_CHECK(lp_append(&b, msg, len) == 0);
    FZ_CHECK(bn_buf_unread(&b) == (size_t)rc);
    FZ_CHECK(memcmp(bn_buf_head(&b), p, (size_t)rc) == 0);
    /* Every strict prefix of a complete frame is "need more". */
    const uint8_t *m2;
    size_t l2;
    FZ_CHECK(lp_next(p, (size_t)rc - 1, max, &m2, &l2) == 0);
    p += rc;
    n -= (size_t)rc;
  }
  bn_buf_free(&b);
  return 0;
}
