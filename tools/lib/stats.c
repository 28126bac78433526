/*
 * stats.c — latency recorder, sequence tracker, load payload codec and
 * integrity verdicts for bftnet-replica. Pure: no I/O, no clock.
 */
#include "stats.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "bftnet.h"

_Static_assert((STATS_SEQ_WINDOW & (STATS_SEQ_WINDOW - 1)) == 0, "window is a power of two");
_Static_assert(STATS_SEQ_WINDOW % 64 == 0, "window is whole words");
_Static_assert(STATS_LAT_MAX_MSB<63 && STATS_LAT_MAX_MSB> STATS_LAT_SUB_BITS, "bucket range");

/* ------------------------------------------------------ latency recorder */

uint32_t stats_lat_bucket(uint64_t v) {
  if (v >= STATS_LAT_CLAMP) v = STATS_LAT_CLAMP - 1;
  if (v < STATS_LAT_SUB) return (uint32_t)v;
  unsigned msb = 63u - (unsigned)__builtin_clzll(v);
  unsigned shift = msb - STATS_LAT_SUB_BITS;
  /* (v >> shift) is in [SUB, 2*SUB): its low bits pick the sub-bucket. */
  return (shift + 1u) * STATS_LAT_SUB + (uint32_t)((v >> shift) - STATS_LAT_SUB);
}

uint64_t stats_lat_bucket_low(uint32_t idx) {
  if (idx < STATS_LAT_SUB) return idx;
  unsigned shift = idx / STATS_LAT_SUB - 1u;
  return (uint64_t)(STATS_LAT_SUB + idx % STATS_LAT_SUB) << shift;
}

uint64_t stats_lat_bucket_width(uint32_t idx) {
  if (idx < STATS_LAT_SUB) return 1;
  return UINT64_C(1) << (idx / STATS_LAT_SUB - 1u);
}

void stats_lat_reset(stats_lat_t *lat) {
  memset(lat, 0, sizeof *lat);
  lat->min = UINT64_MAX;
}

static uint64_t add_sat(uint64_t a, uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

void stats_lat_record(stats_lat_t *lat, uint64_t v) {
  lat->count++;
  lat->sum = add_sat(lat->sum, v);
  if (v < lat->min) lat->min = v;
  if (v > lat->max) lat->max = v;
  if (v >= STATS_LAT_CLAMP) lat->clamped++;
  lat->buckets[stats_lat_bucket(v)]++;
}

void stats_lat_merge(stats_lat_t *dst, const stats_lat_t *src) {
  if (src->count == 0) return;
  dst->count += src->count;
  dst->sum = add_sat(dst->sum, src->sum);
  if (src->min < dst->min) dst->min = src->min;
  if (src->max > dst->max) dst->max = src->max;
  dst->clamped += src->clamped;
  for (uint32_t i = 0; i < STATS_LAT_BUCKETS; i++)
    dst->buckets[i] += src->buckets[i];
}

uint64_t stats_lat_count(const stats_lat_t *lat) {
  return lat->count;
}
uint64_t stats_lat_max(const stats_lat_t *lat) {
  return lat->count ? lat->max : 0;
}
uint64_t stats_lat_min(const stats_lat_t *lat) {
  return lat->count ? lat->min : 0;
}

double stats_lat_mean(const stats_lat_t *lat) {
  return lat->count ? (double)lat->sum / (double)lat->count : 0.0;
}

uint64_t stats_lat_percentile(const stats_lat_t *lat, double p) {
  if (lat->count == 0) return 0;
  if (!(p > 0.0)) p = 0.0; /* NaN too */
  if (p > 100.0) p = 100.0;
  /* Nearest rank; the tiny bias keeps exact products (99% of 1000 = 990)
   * from rounding up to the next rank. */
  double x = p * (double)lat->count / 100.0;
  uint64_t rank = (uint64_t)ceil(x - x * 1e-12);
  if (rank <= 1) return lat->min;
  if (rank >= lat->count) return lat->max;
  uint64_t cum = 0;
  for (uint32_t i = 0; i < STATS_LAT_BUCKETS; i++) {
    cum += lat->buckets[i];
    if (cum < rank) continue;
    uint64_t v = stats_lat_bucket_low(i) + (stats_lat_bucket_width(i) - 1) / 2;
    if (v < lat->min) v = lat->min;
    if (v > lat->max) v = lat->max;
    return v;
  }
  return lat->max; /* unreachable while count matches the buckets */
}

/* ------------------------------------------------------ sequence tracker */

static void seq_bit_set(stats_seq_t *t, uint64_t s) {
  uint64_t i = s & (STATS_SEQ_WINDOW - 1);
  t->window[i / 64] |= UINT64_C(1) << (i % 64);
}

static void seq_bit_clear(stats_seq_t *t, uint64_t s) {
  uint64_t i = s & (STATS_SEQ_WINDOW - 1);
  t->window[i / 64] &= ~(UINT64_C(1) << (i % 64));
}

static int seq_bit_get(const stats_seq_t *t, uint64_t s) {
  uint64_t i = s & (STATS_SEQ_WINDOW - 1);
  return (int)((t->window[i / 64] >> (i % 64)) & 1u);
}

void stats_seq_init(stats_seq_t *t) {
  memset(t, 0, sizeof *t);
}

stats_seq_result_t stats_seq_observe(stats_seq_t *t, uint64_t seq) {
  if (seq == 0) {
    t->invalid++;
    return STATS_SEQ_INVALID;
  }
  t->received++;
  if (seq > t->max_seq) {
    uint64_t d = seq - t->max_seq;
    /* The positions of max+1..seq held numbers that left the window. */
    if (d >= STATS_SEQ_WINDOW)
      memset(t->window, 0, sizeof t->window);
    else
      for (uint64_t s = t->max_seq + 1; s < seq; s++)
        seq_bit_clear(t, s);
    seq_bit_set(t, seq);
    t->max_seq = seq;
    t->unique++;
    return d == 1 ? STATS_SEQ_NEXT : STATS_SEQ_AHEAD;
  }
  if (t->max_seq - seq >= STATS_SEQ_WINDOW) {
    t->stale++;
    t->reorders++;
    return STATS_SEQ_REORDER;
  }
  if (seq_bit_get(t, seq)) {
    t->duplicates++;
    return STATS_SEQ_DUPLICATE;
  }
  seq_bit_set(t, seq);
  t->unique++;
  t->reorders++;
  return STATS_SEQ_REORDER;
}

uint64_t stats_seq_gaps(const stats_seq_t *t) {
  return t->max_seq - t->unique;
}

/* ------------------------------------------------------- load payloads */

static void put_be64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--) {
    p[i] = (uint8_t)v;
    v >>= 8;
  }
}

static uint64_t get_be64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = (v << 8) | p[i];
  return v;
}

int stats_payload_encode(uint8_t *buf, size_t len, uint64_t seq, uint64_t send_ns) {
  if (!buf || len < STATS_PAYLOAD_HDR) return BFTNET_EINVAL;
  put_be64(buf, seq);
  put_be64(buf + 8, send_ns);
  for (size_t i = STATS_PAYLOAD_HDR; i < len; i++)
    buf[i] = (uint8_t)i;
  return 0;
}

int stats_payload_decode(const uint8_t *buf, size_t len, uint64_t *seq, uint64_t *send_ns) {
  if (!buf || len < STATS_PAYLOAD_HDR) return BFTNET_EINVAL;
  *seq = get_be64(buf);
  *send_ns = get_be64(buf + 8);
  return 0;
}

/* ---------------------------------------------------- integrity verdicts */

const char *stats_verdict_name(stats_verdict_t v) {
  switch (v) {
  case STATS_OK:
    return "ok";
  case STATS_UNVERIFIED:
    return "unverified";
  case STATS_VIOLATED:
    return "violated";
  }
  return "violated";
}

stats_verdict_t stats_verdict_local(const stats_seq_t *t, uint64_t explained) {
  if (t->duplicates || t->reorders) return STATS_VIOLATED;
  return stats_seq_gaps(t) <= explained ? STATS_OK : STATS_UNVERIFIED;
}

stats_verdict_t stats_verdict_pair(uint64_t sent, uint64_t dropped, uint64_t aborted,
                                   uint64_t delivered, uint64_t duplicates, uint64_t reorders,
                                   uint64_t rx_explained) {
  if (duplicates || reorders) return STATS_VIOLATED;
  if (dropped > sent || aborted > sent - dropped) return STATS_VIOLATED;
  uint64_t expect = sent - dropped - aborted;
  if (delivered > UINT64_MAX - rx_explained) return STATS_VIOLATED;
  uint64_t got = delivered + rx_explained;
  return got >= expect && got <= sent - dropped ? STATS_OK : STATS_VIOLATED;
}

stats_verdict_t stats_verdict_worst(stats_verdict_t a, stats_verdict_t b) {
  return a > b ? a : b;
}

/* --------------------------------------- per-sender incarnations (restarts) */

const char *stats_inc_start_name(stats_inc_start_t s) {
  switch (s) {
  case STATS_INC_FIRST:
    return "first";
  case STATS_INC_EVENT:
    return "event";
  case STATS_INC_SEQ:
    return "seq";
  }
  return "first";
}

void stats_rx_init(stats_rx_t *rx) {
  memset(rx, 0, sizeof *rx);
  stats_seq_init(&rx->cur);
}

void stats_rx_current(const stats_rx_t *rx, stats_inc_t *out) {
  const stats_seq_t *t = &rx->cur;
  *out = (stats_inc_t){.start = rx->cur_start,
                       .first_seq = rx->cur_first_seq,
                       .max_seq = t->max_seq,
                       .received = t->received,
                       .unique = t->unique,
                       .gaps = stats_seq_gaps(t),
                       .duplicates = t->duplicates,
                       .reorders = t->reorders,
                       .stale = t->stale,
                       .invalid = t->invalid};
}

static void inc_add(stats_inc_t *sum, const stats_inc_t *x) {
  sum->start = x->start;
  sum->first_seq = x->first_seq;
  sum->max_seq = x->max_seq;
  sum->received += x->received;
  sum->unique += x->unique;
  sum->gaps += x->gaps;
  sum->duplicates += x->duplicates;
  sum->reorders += x->reorders;
  sum->stale += x->stale;
  sum->invalid += x->invalid;
}

void stats_rx_total(const stats_rx_t *rx, stats_inc_t *out) {
  stats_inc_t cur;
  stats_rx_current(rx, &cur);
  *out = rx->done;
  inc_add(out, &cur);
}

/* The current incarnation ends; a new one, started by `how`, begins. */
static void rx_switch(stats_rx_t *rx, stats_inc_start_t how) {
  stats_inc_t cur;
  stats_rx_current(rx, &cur);
  inc_add(&rx->done, &cur);
  if (rx->nhist == STATS_RX_HISTORY) {
    memmove(rx->hist, rx->hist + 1, (STATS_RX_HISTORY - 1) * sizeof *rx->hist);
    rx->nhist--;
  }
  rx->hist[rx->nhist++] = cur;
  stats_seq_init(&rx->cur);
  rx->cur_start = how;
  rx->cur_first_seq = 0;
  if (how == STATS_INC_EVENT)
    rx->by_event++;
  else
    rx->by_seq++;
}

stats_seq_result_t stats_rx_observe(stats_rx_t *rx, uint64_t seq, uint64_t restart_events) {
  if (seq == 0) return stats_seq_observe(&rx->cur, seq);
  /* An event that came after the seq switch it explains. */
  while (rx->seq_unexplained && restart_events > rx->events_used) {
    rx->seq_unexplained--;
    rx->events_used++;
  }
  bool armed = restart_events > rx->events_used;
  if (rx->cur.received == 0) {
    if (armed && seq == 1) rx->events_used++; /* restarted before we heard from it */
  } else if (armed && seq <= rx->cur.max_seq) {
    rx->events_used++;
    rx_switch(rx, STATS_INC_EVENT);
  } else if (!armed && seq == 1) {
    rx->seq_unexplained++;
    rx_switch(rx, STATS_INC_SEQ);
  }
  if (rx->cur.received == 0) {
    rx->cur_first_seq = seq;
    rx->incarnations++;
  }
  return stats_seq_observe(&rx->cur, seq);
}

stats_verdict_t stats_rx_verdict(const stats_rx_t *rx, uint64_t explained) {
  stats_inc_t t;
  stats_rx_total(rx, &t);
  if (t.duplicates || t.reorders) return STATS_VIOLATED;
  return t.gaps <= explained ? STATS_OK : STATS_UNVERIFIED;
}
