/*
 * hist.c — the queueing-delay histogram (dispatcher.h): log-linear buckets,
 * eight per doubling of the delay, so any quantile is known within 12.5 %
 * from 320 counters (delays up to 2^41 ns, about 36 minutes, the last
 * bucket holding the rest). One writer (the loop thread) stores with
 * atomics; readers on any thread may see a sample in `total` before its
 * bucket, which moves a quantile by at most that sample.
 */
#include <ck_pr.h>

#include "dispatcher.h"

#define SUB_BITS 3u
#define SUB      (1u << SUB_BITS)

static unsigned bucket_of(uint64_t v) {
  if (v < SUB) return (unsigned)v;
  unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= SUB_BITS */
  unsigned b = (e - SUB_BITS + 1) * SUB + (unsigned)((v >> (e - SUB_BITS)) & (SUB - 1));
  return BN_MIN(b, DISP_HIST_BUCKETS - 1);
}

/* The middle of bucket b's range. */
static uint64_t bucket_mid(unsigned b) {
  if (b < SUB) return b;
  unsigned e = b / SUB + SUB_BITS - 1, sub = b % SUB;
  uint64_t lo = (uint64_t)(SUB + sub) << (e - SUB_BITS);
  return lo + ((uint64_t)1 << (e - SUB_BITS)) / 2;
}

void disp_hist_add(disp_hist_t *h, uint64_t ns, uint32_t w) {
  unsigned b = bucket_of(ns);
  ck_pr_store_64(&h->n[b], h->n[b] + w);
  ck_pr_store_64(&h->total, h->total + w);
  ck_pr_store_64(&h->samples, h->samples + 1);
  if (ns > h->max) ck_pr_store_64(&h->max, ns);
}

uint64_t disp_hist_quantile(const disp_hist_t *h, double q) {
  uint64_t total = ck_pr_load_64((uint64_t *)(uintptr_t)&h->total);
  if (total == 0) return 0;
  uint64_t want = (uint64_t)(q * (double)total + 0.5), seen = 0;
  if (want == 0) want = 1;
  for (unsigned b = 0; b < DISP_HIST_BUCKETS; b++) {
    seen += ck_pr_load_64((uint64_t *)(uintptr_t)&h->n[b]);
    if (seen >= want) return BN_MIN(bucket_mid(b), ck_pr_load_64((uint64_t *)(uintptr_t)&h->max));
  }
  return ck_pr_load_64((uint64_t *)(uintptr_t)&h->max);
}
