/*
 * cluster_stats.h — the pure arithmetic of bftnet-cluster: aggregate
 * percentiles from per-replica percentiles, the per-pair cross-check of two
 * replica reports (docs/REPORT.md) with its loss classification, the
 * overall verdict line, and the CSV/number formatting of its outputs.
 *
 * No I/O, no clock, no allocation; every function works on caller memory.
 */
#ifndef BFTNET_TOOLS_CLUSTER_STATS_H
#define BFTNET_TOOLS_CLUSTER_STATS_H

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------ aggregate percentiles */

/*
 * A replica's stats line (or a pair's report row) gives percentiles of its
 * own latency samples, not the samples: the cluster-wide percentile cannot
 * be computed exactly, so it is estimated. Each part's distribution is
 * approximated by the piecewise-linear CDF through (0 µs, 0) and its known
 * (value, level) points — e.g. (p50, 0.5), (p99, 0.99), (max, 1) — extended
 * past the last point with the last segment's slope; the parts are mixed
 * weighted by their sample counts; the mixture's q-quantile is the
 * smallest value where the mixed CDF reaches q (found by bisection).
 *
 * Properties the tests check: identical parts give back their own
 * percentiles; a weight-0 part changes nothing; and for a level that every
 * part has as a point, the result lies between the smallest and the
 * largest of the parts' values there (a sound bound whatever the true
 * distributions).
 */
#define CLUSTER_QPOINTS_MAX 6

typedef struct cluster_qpart {
  double weight;                     /* samples (messages) in the part; <= 0: ignored */
  size_t n;                          /* points, 0 .. CLUSTER_QPOINTS_MAX */
  double level[CLUSTER_QPOINTS_MAX]; /* increasing, in (0, 1] */
  double value[CLUSTER_QPOINTS_MAX]; /* non-decreasing, >= 0 */
} cluster_qpart_t;

/* Adds one (level, value) point; ignored when full, when value is NaN or
 * negative, or when it would break the ordering. */
void cluster_qpart_point(cluster_qpart_t *p, double level, double value);

/* The estimated q-quantile (0 < q <= 1) of the mixture of parts[0..n);
 * NaN when no part has a weight and a point. */
double cluster_quantile_mix(const cluster_qpart_t *parts, size_t n, double q);

/* ---------------------------------------------------- pair cross-check */

typedef enum cluster_pair_verdict {
  CLUSTER_PAIR_OK = 0,       /* delivered + rx_evicted == sent - dropped - aborted, in order */
  CLUSTER_PAIR_LOST,         /* fewer delivered, nobody counted the rest: lost in flight */
  CLUSTER_PAIR_UNVERIFIABLE, /* a report is missing, or incarnations cannot be told apart */
  CLUSTER_PAIR_VIOLATED      /* a duplicate, a reorder, or more delivered than sent */
} cluster_pair_verdict_t;

/* "ok", "lost", "unverifiable", "violated". */
const char *cluster_pair_verdict_name(cluster_pair_verdict_t v);

/* One ordered pair (sender S, receiver R), from the two final reports. */
typedef struct cluster_pair_in {
  int have_sender;   /* S's report exists and lists R */
  int have_receiver; /* R's report exists and lists S */
  /* S's report, peers[R] */
  uint64_t sent, dropped, aborted, unconfirmed, ring_depth;
  /* R's report, peers[S] */
  uint64_t delivered, rx_evicted, duplicates, reorders;
  /* S was killed and restarted: its final report counts its last
   * incarnation only (sequence numbers restart at 1), while R's counts
   * span every incarnation. base_* are R's counts for S at S's last
   * restart (R's last stats line before it); base_exact says that line
   * came after the kill, so nothing of the old incarnation arrived later. */
  int sender_restarted, base_exact;
  uint64_t base_delivered, base_duplicates, base_reorders;
  /* R's own split of S's incarnations (bftnet-replica's per-incarnation
   * accounting, docs/REPORT.md): rx_split says R's report has it;
   * rx_switches is how many new incarnations of S R saw (by_event +
   * by_seq), delivered_current what R got from the last one, and
   * sender_restarts how many times S really started again (and sent).
   * When rx_split and rx_switches == sender_restarts, R's split is used
   * (exact: no restart artifacts, every duplicate/reorder held against
   * bftnet) instead of the base_* estimate. rx_switches > sender_restarts
   * is a violation (R saw a restart that did not happen: e.g. message 1
   * delivered twice). */
  int rx_split;
  uint64_t rx_switches, sender_restarts, delivered_current;
  /* R was killed (and restarted): its final report counts its last
   * incarnation only. died_min is what its killed incarnations had
   * received from S by their last stats lines (a lower bound).
   * rx_first_seq (0: unknown) is the first number R's last process got
   * from S: what S numbered below it and did not count (dropped,
   * aborted) went to R's dead processes — read by them, or on their
   * connections when they died (with migratable streams S counts the
   * latter as aborted) — so only what is missing from rx_first_seq on is
   * held as lost. */
  int receiver_killed;
  uint64_t died_min, rx_first_seq;
  /* R removed S from its membership (it may have added it back since):
   * what R still held of S then was discarded unread, and what S sent
   * while R did not know it went to a TentativeReceiver, maybe evicted.
   * bftnet counts both on R per class only, naming no sender
   * (bftnet_class_totals: discarded_removed, and tentative_evicted beyond
   * the members' own rx_evicted). rx_discarded_pool is what of R's count
   * in the class the pairs checked before this one did not claim; 0 when R
   * never removed S. */
  uint64_t rx_discarded_pool;
} cluster_pair_in_t;

typedef struct cluster_pair_out {
  cluster_pair_verdict_t verdict;
  uint64_t expected;             /* sent - dropped - aborted */
  uint64_t aborted_arrived;      /* got - expected, when positive and <= aborted: counted
                                    aborted (not confirmed read) yet delivered: fine */
  uint64_t delivered;            /* R's, from S's current incarnation */
  uint64_t got;                  /* delivered + rx_evicted */
  uint64_t lost;                 /* expected - got - died, when positive: never delivered,
                                    never counted (an upper bound when receiver_killed) */
  uint64_t extra;                /* got - (sent - dropped), when positive */
  uint64_t died;                 /* went to a killed incarnation of R: numbered below
                                    rx_first_seq and not counted by S (at least died_min) */
  uint64_t rx_discarded;         /* of the missing but died: claimed from
                                    rx_discarded_pool, never more than it */
  uint64_t duplicates, reorders; /* held against bftnet */
  uint64_t restart_artifacts;    /* duplicates + reorders explained by S's restart */
  uint64_t false_restarts;       /* new incarnations R saw that S never had (violation) */
  int split_used;                /* R's own incarnation split was used (exact) */
  uint64_t queued;               /* of lost: still in S's send ring at the end */
  uint64_t unwritten;            /* of lost: never written, not queued (lost in S's framer) */
  uint64_t in_flight;            /* of lost: written to a connection, never delivered */
} cluster_pair_out_t;

/*
 * The cross-check of docs/REPORT.md (stats_verdict_pair), extended to say
 * *why* a pair fails:
 * - no report on either side: UNVERIFIABLE;
 * - duplicates or reorders: VIOLATED. After a restart of S, when R split
 *   S's incarnations itself and saw as many restarts as S had, R's counts
 *   are exact (delivered_current; every duplicate/reorder is a real one).
 *   Otherwise R's duplicates/reorders since the restart are taken as
 *   sequence-restart artifacts (S numbers from 1 again) as long as they do
 *   not exceed what R received since; beyond that they are violations;
 * - R saw more restarts of S than S had: VIOLATED (false_restarts);
 * - more received than sent - dropped: VIOLATED (UNVERIFIABLE when S
 *   restarted and the incarnations could not be split exactly); between
 *   expected and that: fine, some of what S counted as aborted (not
 *   confirmed read when its stream broke) arrived anyway (aborted_arrived);
 * - fewer: what went to R's killed processes is not loss (died), nor
 *   what R counted discarded or evicted after it removed S, up to its
 *   count (rx_discarded); the rest is LOST, split into queued / unwritten
 *   / in flight.
 */
void cluster_pair_check(const cluster_pair_in_t *in, cluster_pair_out_t *out);

/* -------------------------------------------------------- the verdict */

typedef struct cluster_summary {
  uint64_t pairs, ok, lost_pairs, violated, unverifiable;
  uint64_t lost_expected;   /* lost uncounted on links a fault broke */
  uint64_t lost_unexpected; /* lost on links no fault broke */
  uint64_t duplicates, reorders, extra, false_restarts;
} cluster_summary_t;

/* Adds one pair's outcome; link_broken: cluster_plan_breaks_link() for it. */
void cluster_summary_add(cluster_summary_t *s, const cluster_pair_out_t *o, int link_broken);

/*
 * Writes the verdict line:
 *   integrity: ok
 *   integrity: FAILED (N messages lost in flight, expected until migration lands)
 *   integrity: FAILED (2 duplicates, 1 reorder in 1 pair; 5 messages lost without
 *                      being counted on links no fault broke; ...)
 * Parts, in this order and joined by "; ": violations, unexpected loss,
 * expected loss, unverifiable pairs; "integrity: ok" only when every pair
 * is ok (and there is at least one). Returns 1 for ok, 0 for FAILED.
 */
int cluster_verdict_format(const cluster_summary_t *s, char *buf, size_t len);

/* ------------------------------------------------------------- formats */

/* The time series CSV (one row per replica stats line, plus "all" rows). */
#define CLUSTER_CSV_HEADER "t_s,replica,msgs_per_s,p50_us,p99_us,drops,reconnects,migrations"

/* One CSV row (no newline): t in seconds with 3 decimals, rates and
 * latencies with 1 decimal, an empty field for NaN latencies and for
 * migrations < 0 (unknown); the replica name is quoted (RFC 4180) if it
 * holds a comma, quote or line break. Returns snprintf's full length. */
int cluster_csv_row(char *buf, size_t len, int64_t t_ms, const char *replica, double msgs_per_s,
                    double p50_us, double p99_us, uint64_t drops, uint64_t reconnects,
                    int64_t migrations);

/* A latency for humans: "142.3us" below 1 ms, "1.52ms" below 1 s, "3.10s",
 * "-" for NaN or negative. */
void cluster_fmt_us(double us, char *buf, size_t len);

#endif
