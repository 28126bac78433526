/* backoff.c — redial delays: exponential with full jitter (AWS
 * architecture blog, "Exponential Backoff And Jitter"), floored at min/2.
 * Attempt k (from 0) waits uniform[min/2, min(max, min * 2^k)] ms. */
#include "dispatcher.h"

void disp_backoff_init(disp_backoff_t *b, uint32_t min_ms, uint32_t max_ms) {
  BN_ASSERT(min_ms <= max_ms);
  b->min_ms = min_ms;
  b->max_ms = max_ms;
  b->attempt = 0;
}

uint64_t disp_backoff_next_ms(disp_backoff_t *b, const bn_seam_t *seam) {
  /* min * 2^k, saturated at max; attempt stops growing once it reaches
   * max (at most 32: a 32-bit min shifted by 32 still fits 64 bits). */
  uint64_t hi = BN_MIN((uint64_t)b->min_ms << b->attempt, (uint64_t)b->max_ms);
  if (hi < b->max_ms && b->attempt < 32) b->attempt++;
  uint64_t lo = b->min_ms / 2;
  return lo + bn_random_uniform(seam, hi - lo + 1);
}

void disp_backoff_reset(disp_backoff_t *b) {
  b->attempt = 0;
}
