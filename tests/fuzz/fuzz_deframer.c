/* fuzz_deframer.c — rx_deframer_feed on arbitrary bytes, fed whole and split
 * at input-chosen points: both yield the same messages and the same error;
 * every message respects max; what is emitted re-encodes to a prefix of the
 * stream, and what is left is exactly what lp_next calls incomplete (or the
 * same error). Leaks and overflows are ASan's to find.
 *
 * Input: max (2 bytes, big-endian, masked to 12 bits: a small limit),
 * k (1 byte), k chunk lengths (1 byte each; 0 is an empty feed; after the
 * last, the rest goes whole), then the stream. */
#include <stdlib.h>

#include "proto.h"
#include "receiver.h"

#define FZ_CHECK(c) ((c) ? (void)0 : abort()) /* a violated property */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fz_sink {
  bn_buf_t out; /* uvarint(len) || bytes per message */
  size_t max;
  const uint8_t *lo, *hi; /* the whole-feed input: everything is zero-copy */
} fz_sink_t;

static void fz_emit(void *ud, const uint8_t *msg, size_t len) {
  fz_sink_t *s = ud;
  FZ_CHECK(len <= s->max);
  FZ_CHECK(len == 0 || msg != NULL);
  if (s->lo != NULL) FZ_CHECK(msg >= s->lo && msg + len <= s->hi);
  FZ_CHECK(lp_append(&s->out, msg, len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3) return 0;
  size_t max = bn_load_be16(data) & 0x0fffu;
  size_t k = data[2];
  if (size < 3 + k) return 0;
  const uint8_t *cuts = data + 3;
  const uint8_t *p = data + 3 + k;
  size_t n = size - 3 - k;

  /* Whole. */
  fz_sink_t whole = {.max = max, .lo = p, .hi = p + n};
  bn_buf_init(&whole.out);
  rx_deframer_t d1;
  rx_deframer_init(&d1, max);
  int rc1 = rx_deframer_feed(&d1, p, n, fz_emit, &whole);
  FZ_CHECK(rc1 == 0 || rc1 == BFTNET_EPROTO || rc1 == BFTNET_ETOOBIG);

  /* Split. */
  fz_sink_t split = {.max = max};
  bn_buf_init(&split.out);
  rx_deframer_t d2;
  rx_deframer_init(&d2, max);
  int rc2 = 0;
  size_t off = 0;
  for (size_t i = 0; i <= k && rc2 == 0; i++) {
    size_t len = i < k ? BN_MIN((size_t)cuts[i], n - off) : n - off;
    rc2 = rx_deframer_feed(&d2, p + off, len, fz_emit, &split);
    off += len;
  }
  FZ_CHECK(rc2 == rc1);
  FZ_CHECK(bn_buf_unread(&split.out) == bn_buf_unread(&whole.out));
  size_t used = bn_buf_unread(&whole.out);
  /* (bn_buf_head of an empty, never-grown buffer is NULL + 0: not computed.) */
  FZ_CHECK(used == 0 || memcmp(bn_buf_head(&split.out), bn_buf_head(&whole.out), used) == 0);
  if (rc2 != 0) {
    /* Sticky. */
    size_t before = bn_buf_unread(&split.out);
    FZ_CHECK(rx_deframer_feed(&d2, (const uint8_t *)"\x00", 1, fz_emit, &split) == rc2);
    FZ_CHECK(bn_buf_unread(&split.out) == before);
  }

  /* The messages re-encode to a prefix of the stream; the rest is an
   * incomplete frame, or the frame that failed, by lp_next's judgement. */
  FZ_CHECK(used <= n && (used == 0 || memcmp(bn_buf_head(&whole.out), p, used) == 0));
  const uint8_t *msg;
  size_t mlen;
  int lrc = lp_next(p + used, n - used, max, &msg, &mlen);
  FZ_CHECK(rc1 == 0 ? lrc == 0 : lrc == rc1);
  if (rc1 == 0) {
    /* A partial body is held at exactly its announced length. */
    FZ_CHECK(d1.in_body == (d1.body != NULL));
    if (d1.in_body) FZ_CHECK(d1.have < d1.need && d1.need <= max);
    FZ_CHECK(d2.in_body == d1.in_body && d2.have == d1.have && d2.need == d1.need);
    FZ_CHECK(d2.hdr_len == d1.hdr_len && memcmp(d2.hdr, d1.hdr, d1.hdr_len) == 0);
  }

  rx_deframer_free(&d1);
  rx_deframer_free(&d2);
  bn_buf_free(&whole.out);
  bn_buf_free(&split.out);
  return 0;
}
