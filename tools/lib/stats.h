/*
 * stats.h — the pure statistics behind bftnet-replica (and the cluster that
 * reads its reports): a latency recorder, a per-sender sequence tracker, the
 * load payload codec and the integrity verdicts. No I/O, no clocks, no
 * threads: every function works on caller-owned memory and is safe to call
 * from any thread on distinct objects (none locks; share an object between
 * threads only under the caller's lock).
 */
#ifndef BFTNET_TOOLS_STATS_H
#define BFTNET_TOOLS_STATS_H

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------ latency recorder */

/*
 * A log-linear histogram (HDR-histogram-like) of uint64 values, in whatever
 * unit the caller records (bftnet-replica records nanoseconds).
 *
 * Values below 2^STATS_LAT_SUB_BITS are counted exactly. Above, every power
 * of two [2^k, 2^(k+1)) is split into 2^STATS_LAT_SUB_BITS equal buckets, so
 * a bucket is at most 1/128 of its values wide; a percentile reports its
 * bucket's midpoint, within 1/256 (0.4 %) of the true sample value. count,
 * min, max and sum are exact. Values at or above STATS_LAT_CLAMP land in the
 * last bucket (counted in `clamped`); max stays exact.
 *
 * Memory is fixed: sizeof(stats_lat_t) is about 36 KiB whatever is recorded.
 * Percentiles use the nearest-rank definition: the smallest recorded value v
 * such that at least ceil(p/100 * count) samples are <= v. The rank-1 and
 * rank-count percentiles (p 0 and p 100) return the exact min and max.
 */
#define STATS_LAT_SUB_BITS 7
#define STATS_LAT_SUB      (1u << STATS_LAT_SUB_BITS)
#define STATS_LAT_MAX_MSB  41 /* largest bucketed value: 2^42 - 1 (73 min in ns) */
#define STATS_LAT_CLAMP    (UINT64_C(1) << (STATS_LAT_MAX_MSB + 1))
#define STATS_LAT_BUCKETS  ((STATS_LAT_MAX_MSB - STATS_LAT_SUB_BITS + 2) * STATS_LAT_SUB)

typedef struct stats_lat {
  uint64_t count;
  uint64_t sum; /* saturates at UINT64_MAX */
  uint64_t min; /* UINT64_MAX while empty */
  uint64_t max;
  uint64_t clamped; /* samples >= STATS_LAT_CLAMP */
  uint64_t buckets[STATS_LAT_BUCKETS];
} stats_lat_t;

/* Empties the recorder. It is also the initializer: call it before first use
 * (a zeroed struct would report min 0). */
void stats_lat_reset(stats_lat_t *lat);
void stats_lat_record(stats_lat_t *lat, uint64_t value);
/* Adds every sample of src to dst (dst may not be src). */
void stats_lat_merge(stats_lat_t *dst, const stats_lat_t *src);
/* The p-th percentile (0 <= p <= 100, clamped), as described above; 0 for an
 * empty recorder (check stats_lat_count first when 0 is a valid value). */
uint64_t stats_lat_percentile(const stats_lat_t *lat, double p);
uint64_t stats_lat_count(const stats_lat_t *lat);
uint64_t stats_lat_max(const stats_lat_t *lat); /* 0 when empty */
uint64_t stats_lat_min(const stats_lat_t *lat); /* 0 when empty */
double stats_lat_mean(const stats_lat_t *lat);  /* 0 when empty */

/* Bucket geometry, exposed for tests: the bucket a value falls in, and the
 * lowest value and width of a bucket. */
uint32_t stats_lat_bucket(uint64_t value);
uint64_t stats_lat_bucket_low(uint32_t idx);
uint64_t stats_lat_bucket_width(uint32_t idx);

/* ------------------------------------------------------ sequence tracker */

/*
 * One sender's sequence numbers as one receiver sees them. The sender numbers
 * its messages 1, 2, 3, ... (per destination); bftnet promises an ordered
 * subsequence, so a number at or below the highest seen is a fault:
 *   - duplicate: the exact number was seen before;
 *   - reorder:   it was not (a late arrival; it fills a gap, so gaps shrink).
 * gaps = numbers below the highest seen that never arrived.
 *
 * Memory is bounded: which numbers arrived is remembered for the last
 * STATS_SEQ_WINDOW numbers below the highest. A number older than that is
 * counted as a reorder and as `stale` (whether it is also a duplicate cannot
 * be told); gaps are left unchanged then. Sequence number 0 is not a valid
 * load sequence number: it is `invalid` and changes nothing else.
 */
#define STATS_SEQ_WINDOW 4096u /* bits; a power of two */

typedef enum stats_seq_result {
  STATS_SEQ_NEXT = 0, /* the highest + 1 */
  STATS_SEQ_AHEAD,    /* above the highest + 1: numbers were skipped */
  STATS_SEQ_DUPLICATE,
  STATS_SEQ_REORDER,
  STATS_SEQ_INVALID /* 0 */
} stats_seq_result_t;

typedef struct stats_seq {
  uint64_t max_seq;  /* highest seen, 0 before the first */
  uint64_t received; /* every observed valid number, duplicates included */
  uint64_t unique;   /* distinct numbers known to have arrived */
  uint64_t duplicates;
  uint64_t reorders;                      /* stale ones included */
  uint64_t stale;                         /* older than the window (also counted in reorders) */
  uint64_t invalid;                       /* sequence number 0 */
  uint64_t window[STATS_SEQ_WINDOW / 64]; /* bit s % WINDOW: s arrived */
} stats_seq_t;

void stats_seq_init(stats_seq_t *t);
stats_seq_result_t stats_seq_observe(stats_seq_t *t, uint64_t seq);
/* Numbers below max_seq that have not arrived (max_seq - unique). */
uint64_t stats_seq_gaps(const stats_seq_t *t);

/* ------------------------------------------------------- load payloads */

/*
 * bytes 0..7   sequence number per destination, big-endian, from 1
 * bytes 8..15  send time, ns of CLOCK_MONOTONIC, big-endian
 * bytes 16..   filler up to the message size
 */
#define STATS_PAYLOAD_HDR 16

/* Writes the header into buf[0..15] and the filler into buf[16..len).
 * Returns 0, or BFTNET_EINVAL when len < STATS_PAYLOAD_HDR. */
int stats_payload_encode(uint8_t *buf, size_t len, uint64_t seq, uint64_t send_ns);
/* Reads the header. Returns 0, or BFTNET_EINVAL when len < STATS_PAYLOAD_HDR
 * (not a load message: "foreign"); outputs are untouched then. */
int stats_payload_decode(const uint8_t *buf, size_t len, uint64_t *seq, uint64_t *send_ns);

/* ---------------------------------------------------- integrity verdicts */

typedef enum stats_verdict {
  STATS_OK = 0,     /* no duplicate, no reorder, every gap explained */
  STATS_UNVERIFIED, /* no duplicate or reorder, but gaps this side cannot
                       explain: the sender's report must (cross-check) */
  STATS_VIOLATED    /* a duplicate or a reorder, or loss nobody counted */
} stats_verdict_t;

/* "ok", "unverified", "violated". */
const char *stats_verdict_name(stats_verdict_t v);

/* The receiver's own verdict on one sender: `explained` is the loss the
 * receiver itself counted for that sender (bftnet's tentative_evicted). */
stats_verdict_t stats_verdict_local(const stats_seq_t *t, uint64_t explained);

/*
 * The cross-check across two reports, for one (sender, receiver) pair:
 * sender side: sent, dropped (dropped_by_us), aborted toward the receiver;
 * receiver side: delivered, duplicates, reorders from the sender, and
 * rx_explained (its tentative_evicted for the sender). With got =
 * delivered + rx_explained: OK iff there is no duplicate or reorder and
 *   sent - dropped - aborted <= got <= sent - dropped
 * (bftnet counts as aborted the messages of a broken stream that were not
 * *confirmed* read: some of them may have arrived). Anything else is
 * VIOLATED (never UNVERIFIED).
 */
stats_verdict_t stats_verdict_pair(uint64_t sent, uint64_t dropped, uint64_t aborted,
                                   uint64_t delivered, uint64_t duplicates, uint64_t reorders,
                                   uint64_t rx_explained);

/* Combines verdicts: the worst wins (VIOLATED > UNVERIFIED > OK). */
stats_verdict_t stats_verdict_worst(stats_verdict_t a, stats_verdict_t b);

/* --------------------------------------- per-sender incarnations (restarts) */

/*
 * A sender that is killed and started again (a new process: a new
 * incarnation) numbers its messages from 1 again. stats_rx_t wraps one
 * stats_seq_t per incarnation so that the restart is not counted as
 * duplicates and reorders, and keeps every count per incarnation.
 *
 * When does a new incarnation start? bftnet tells the receiver with a
 * BFTNET_EV_PEER_RESTARTED event (on its loop thread) when the member's new
 * process opens its stream; messages of the old process may still be queued
 * for bftnet_recv then, so the event only *arms* the switch: the first
 * number at or below the current incarnation's highest (or 1) after it
 * starts the new incarnation. Without an event, a drop back to exactly 1
 * does (a "seq" switch). Events and switches are paired whatever their
 * order: an event that arrives after a seq switch explains it
 * (seq_unexplained counts the switches no event explained: a duplicate of
 * message 1 would be one, so a cross-check should compare the switches with
 * the sender's real restarts). The caller passes the number of restart
 * events seen so far for this sender (a monotonic counter another thread
 * may bump); the tracker remembers how many it has used.
 */
#define STATS_RX_HISTORY 8 /* finished incarnations kept one by one */

typedef enum stats_inc_start {
  STATS_INC_FIRST = 0, /* the first one seen */
  STATS_INC_EVENT,     /* armed by a peer-restarted event */
  STATS_INC_SEQ        /* a drop back to 1, no event (yet) */
} stats_inc_start_t;

/* One incarnation's counts (or a sum of several: then first_seq and
 * max_seq are those of the last one, start that of the last one). */
typedef struct stats_inc {
  stats_inc_start_t start;
  uint64_t first_seq; /* first valid number seen (0: none yet) */
  uint64_t max_seq, received, unique, gaps, duplicates, reorders, stale, invalid;
} stats_inc_t;

typedef struct stats_rx {
  stats_seq_t cur; /* the current incarnation */
  stats_inc_start_t cur_start;
  uint64_t cur_first_seq;
  uint64_t incarnations;              /* seen so far: 0 before the first valid number */
  uint64_t by_event, by_seq;          /* switches, by what started them */
  uint64_t seq_unexplained;           /* seq switches no event has explained (yet) */
  uint64_t events_used;               /* restart events paired with a switch or consumed */
  stats_inc_t done;                   /* every finished incarnation, summed */
  stats_inc_t hist[STATS_RX_HISTORY]; /* the most recent finished, oldest first */
  size_t nhist;
} stats_rx_t;

void stats_rx_init(stats_rx_t *rx);
/* Observes one sequence number; restart_events: restart events seen for
 * this sender so far (monotonic). Returns the result in the incarnation the
 * number was counted in (after a switch: the new one). */
stats_seq_result_t stats_rx_observe(stats_rx_t *rx, uint64_t seq, uint64_t restart_events);
/* The current incarnation's counts. */
void stats_rx_current(const stats_rx_t *rx, stats_inc_t *out);
/* Every incarnation's counts summed (first_seq/max_seq/start: the current). */
void stats_rx_total(const stats_rx_t *rx, stats_inc_t *out);
/* The local verdict over every incarnation (as stats_verdict_local). */
stats_verdict_t stats_rx_verdict(const stats_rx_t *rx, uint64_t explained);
/* "first", "event", "seq". */
const char *stats_inc_start_name(stats_inc_start_t s);

#endif
