/* cluster_stats.c — see cluster_stats.h. */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cluster_stats.h"
#include "text.h"

/* ------------------------------------------------ aggregate percentiles */

void cluster_qpart_point(cluster_qpart_t *p, double level, double value) {
  if (p->n >= CLUSTER_QPOINTS_MAX || isnan(value) || value < 0 || !(level > 0 && level <= 1))
    return;
  if (p->n > 0 && (level <= p->level[p->n - 1] || value < p->value[p->n - 1])) return;
  p->level[p->n] = level;
  p->value[p->n] = value;
  p->n++;
}

/* The part's approximated CDF at x. */
static double qpart_cdf(const cluster_qpart_t *p, double x) {
  if (x < 0) return 0;
  double lo_v = 0, lo_q = 0;
  for (size_t k = 0; k < p->n; k++) {
    double v = p->value[k], q = p->level[k];
    if (x < v) return lo_q + (q - lo_q) * (x - lo_v) / (v - lo_v); /* v > lo_v here */
    lo_v = v;
    lo_q = q;
  }
  /* Past the last point: the last segment's slope, up to 1. */
  size_t last = p->n - 1;
  double pv = last ? p->value[last - 1] : 0, pq = last ? p->level[last - 1] : 0;
  if (lo_q >= 1 || lo_v <= pv) return 1;
  double f = lo_q + (lo_q - pq) * (x - lo_v) / (lo_v - pv);
  return f > 1 ? 1 : f;
}

/* Where the part's CDF reaches 1 (or its last value when it does at once). */
static double qpart_top(const cluster_qpart_t *p) {
  size_t last = p->n - 1;
  double v = p->value[last], q = p->level[last];
  double pv = last ? p->value[last - 1] : 0, pq = last ? p->level[last - 1] : 0;
  if (q >= 1 || v <= pv || q <= pq) return v;
  return v + (1 - q) * (v - pv) / (q - pq);
}

static bool qpart_used(const cluster_qpart_t *p) {
  return p->weight > 0 && p->n > 0;
}

static double mix_cdf(const cluster_qpart_t *parts, size_t n, double wsum, double x) {
  double f = 0;
  for (size_t i = 0; i < n; i++)
    if (qpart_used(&parts[i])) f += parts[i].weight * qpart_cdf(&parts[i], x);
  return f / wsum;
}

double cluster_quantile_mix(const cluster_qpart_t *parts, size_t n, double q) {
  double wsum = 0, hi = 0;
  for (size_t i = 0; i < n; i++) {
    if (!qpart_used(&parts[i])) continue;
    wsum += parts[i].weight;
    double top = qpart_top(&parts[i]);
    if (top > hi) hi = top;
  }
  if (wsum <= 0) return NAN;
  if (q > 1) q = 1;
  if (q <= 0) return 0;
  /* Every part's CDF is 1 at hi, so the mixture reaches q in [0, hi]. The
   * tolerance is relative: a small absolute slack on a knot value would
   * otherwise land just below it. */
  double lo = 0;
  for (int it = 0; it < 200 && hi - lo > 1e-9 * (hi > 1 ? hi : 1); it++) {
    double mid = lo + (hi - lo) / 2;
    if (mix_cdf(parts, n, wsum, mid) >= q - 1e-12)
      hi = mid;
    else
      lo = mid;
  }
  return hi;
}

/* ---------------------------------------------------- pair cross-check */

const char *cluster_pair_verdict_name(cluster_pair_verdict_t v) {
  switch (v) {
  case CLUSTER_PAIR_OK:
    return "ok";
  case CLUSTER_PAIR_LOST:
    return "lost";
  case CLUSTER_PAIR_UNVERIFIABLE:
    return "unverifiable";
  case CLUSTER_PAIR_VIOLATED:
    return "violated";
  }
  return "violated";
}

static uint64_t sub0(uint64_t a, uint64_t b) {
  return a > b ? a - b : 0;
}

static uint64_t min64(uint64_t a, uint64_t b) {
  return a < b ? a : b;
}

static cluster_pair_verdict_t worst(cluster_pair_verdict_t a, cluster_pair_verdict_t b) {
  return a > b ? a : b;
}

/* R's counts for S's current incarnation; duplicates/reorders explained
 * by S's sequence restart become artifacts. */
static void pair_current(const cluster_pair_in_t *in, cluster_pair_out_t *o) {
  o->delivered = in->delivered;
  o->duplicates = in->duplicates;
  o->reorders = in->reorders;
  if (in->rx_split && in->rx_switches > in->sender_restarts)
    o->false_restarts = in->rx_switches - in->sender_restarts;
  if (in->rx_split && in->rx_switches == in->sender_restarts) {
    if (in->sender_restarts) o->delivered = in->delivered_current;
    o->split_used = 1;
    return;
  }
  if (!in->sender_restarted) return;
  o->delivered = sub0(in->delivered, in->base_delivered);
  o->duplicates = sub0(in->duplicates, in->base_duplicates);
  o->reorders = sub0(in->reorders, in->base_reorders);
  if (o->duplicates + o->reorders <= o->delivered) {
    o->restart_artifacts = o->duplicates + o->reorders;
    o->duplicates = o->reorders = 0;
  }
}

/* Splits o->lost into queued / unwritten / in flight. */
static void pair_split_loss(const cluster_pair_in_t *in, cluster_pair_out_t *o) {
  o->queued = min64(in->ring_depth, o->lost);
  o->unwritten = min64(sub0(in->unconfirmed, in->ring_depth), o->lost - o->queued);
  o->in_flight = o->lost - o->queued - o->unwritten;
}

void cluster_pair_check(const cluster_pair_in_t *in, cluster_pair_out_t *o) {
  memset(o, 0, sizeof *o);
  if (!in->have_sender || !in->have_receiver) {
    o->verdict = CLUSTER_PAIR_UNVERIFIABLE;
    return;
  }
  if (in->dropped > in->sent || in->aborted > in->sent - in->dropped) {
    o->verdict = CLUSTER_PAIR_VIOLATED; /* the sender's counts contradict themselves */
    return;
  }
  o->expected = in->sent - in->dropped - in->aborted;
  pair_current(in, o);
  o->got = o->delivered + in->rx_evicted;
  cluster_pair_verdict_t v = CLUSTER_PAIR_OK;
  if (o->duplicates || o->reorders || o->false_restarts) v = CLUSTER_PAIR_VIOLATED;
  if (o->got > o->expected && o->got - o->expected <= in->aborted) {
    o->aborted_arrived = o->got - o->expected;
  } else if (o->got > o->expected) {
    o->extra = o->got - o->expected - in->aborted;
    bool approx = in->sender_restarted && !in->base_exact && !o->split_used;
    v = worst(v, approx ? CLUSTER_PAIR_UNVERIFIABLE : CLUSTER_PAIR_VIOLATED);
  } else if (o->got < o->expected) {
    uint64_t missing = o->expected - o->got;
    o->died = in->receiver_killed ? min64(in->died_min, missing) : 0;
    if (in->receiver_killed && in->rx_first_seq) {
      /* Missing from rx_first_seq on: lost, at most (some may be S's
       * drops/aborts after it); the rest went to the dead processes. */
      uint64_t range = in->sent >= in->rx_first_seq ? in->sent - in->rx_first_seq + 1 : 0;
      uint64_t lost_max = sub0(range, o->got);
      uint64_t died = missing - min64(missing, lost_max);
      if (died > o->died) o->died = died;
    }
    /* What R counted lost on receipt after removing S (per class, naming
     * no sender): at most what R counted and nobody claimed before. */
    o->rx_discarded = min64(missing - o->died, in->rx_discarded_pool);
    o->lost = missing - o->died - o->rx_discarded;
    pair_split_loss(in, o);
    if (o->lost) v = worst(v, CLUSTER_PAIR_LOST);
  }
  o->verdict = v;
}

/* -------------------------------------------------------- the verdict */

void cluster_summary_add(cluster_summary_t *s, const cluster_pair_out_t *o, int link_broken) {
  s->pairs++;
  switch (o->verdict) {
  case CLUSTER_PAIR_OK:
    s->ok++;
    break;
  case CLUSTER_PAIR_LOST:
    s->lost_pairs++;
    break;
  case CLUSTER_PAIR_UNVERIFIABLE:
    s->unverifiable++;
    break;
  case CLUSTER_PAIR_VIOLATED:
    s->violated++;
    break;
  }
  if (o->verdict == CLUSTER_PAIR_VIOLATED) {
    s->duplicates += o->duplicates;
    s->reorders += o->reorders;
    s->extra += o->extra;
    s->false_restarts += o->false_restarts;
  }
  if (link_broken)
    s->lost_expected += o->lost;
  else
    s->lost_unexpected += o->lost;
}

static const char *plural(uint64_t n, const char *one, const char *many) {
  return n == 1 ? one : many;
}

static void add_violations(text_buf_t *b, const cluster_summary_t *s) {
  if (!s->violated) return;
  text_sep(b, "; ");
  int k = 0;
  if (s->duplicates)
    text_addf(b, "%" PRIu64 " %s", s->duplicates, plural(s->duplicates, "duplicate", "duplicates")),
        k++;
  if (s->reorders)
    text_addf(b, "%s%" PRIu64 " %s", k++ ? ", " : "", s->reorders,
              plural(s->reorders, "reorder", "reorders"));
  if (s->extra)
    text_addf(b, "%s%" PRIu64 " %s than sent", k++ ? ", " : "", s->extra,
              plural(s->extra, "message delivered more", "messages delivered more"));
  if (s->false_restarts)
    text_addf(b, "%s%" PRIu64 " %s", k++ ? ", " : "", s->false_restarts,
              plural(s->false_restarts, "sender restart that did not happen",
                     "sender restarts that did not happen"));
  if (!k) text_addf(b, "inconsistent counts");
  text_addf(b, " in %" PRIu64 " %s", s->violated, plural(s->violated, "pair", "pairs"));
}

int cluster_verdict_format(const cluster_summary_t *s, char *buf, size_t len) {
  text_buf_t b;
  text_buf_init(&b, buf, len);
  bool ok = s->pairs > 0 && s->ok == s->pairs;
  if (ok) {
    text_addf(&b, "integrity: ok");
    return 1;
  }
  text_addf(&b, "integrity: FAILED (");
  if (s->pairs == 0) text_sep(&b, "; "), text_addf(&b, "no pair to check");
  add_violations(&b, s);
  if (s->lost_unexpected) {
    text_sep(&b, "; ");
    text_addf(&b, "%" PRIu64 " %s without being counted on links no fault broke",
              s->lost_unexpected, plural(s->lost_unexpected, "message lost", "messages lost"));
  }
  if (s->lost_expected) {
    text_sep(&b, "; ");
    text_addf(&b, "%" PRIu64 " %s in flight on links a fault broke, not counted", s->lost_expected,
              plural(s->lost_expected, "message lost", "messages lost"));
  }
  if (s->unverifiable) {
    text_sep(&b, "; ");
    text_addf(&b, "%" PRIu64 " %s unverifiable", s->unverifiable,
              plural(s->unverifiable, "pair", "pairs"));
  }
  text_addf(&b, ")");
  return 0;
}

/* ------------------------------------------------------------- formats */

static int csv_num(char *buf, size_t len, double v) {
  if (isnan(v) || v < 0) return snprintf(buf, len, "%s", "");
  return snprintf(buf, len, "%.1f", v);
}

static void csv_name(char *buf, size_t len, const char *name) {
  if (!strpbrk(name, ",\"\r\n")) {
    snprintf(buf, len, "%s", name);
    return;
  }
  size_t o = 0;
  if (len < 3) {
    if (len) buf[0] = '\0';
    return;
  }
  buf[o++] = '"';
  for (const char *p = name; *p && o + 3 < len; p++) {
    if (*p == '"') buf[o++] = '"';
    buf[o++] = *p;
  }
  buf[o++] = '"';
  buf[o] = '\0';
}

int cluster_csv_row(char *buf, size_t len, int64_t t_ms, const char *replica, double msgs_per_s,
                    double p50_us, double p99_us, uint64_t drops, uint64_t reconnects,
                    int64_t migrations) {
  char name[160], rate[32], p50[32], p99[32], migr[32] = "";
  csv_name(name, sizeof name, replica);
  csv_num(rate, sizeof rate, msgs_per_s);
  csv_num(p50, sizeof p50, p50_us);
  csv_num(p99, sizeof p99, p99_us);
  if (migrations >= 0) snprintf(migr, sizeof migr, "%" PRId64, migrations);
  const char *sign = t_ms < 0 ? "-" : "";
  uint64_t at = t_ms < 0 ? (uint64_t)(-(t_ms + 1)) + 1 : (uint64_t)t_ms;
  return snprintf(buf, len, "%s%" PRIu64 ".%03u,%s,%s,%s,%s,%" PRIu64 ",%" PRIu64 ",%s", sign,
                  at / 1000, (unsigned)(at % 1000), name, rate, p50, p99, drops, reconnects, migr);
}

void cluster_fmt_us(double us, char *buf, size_t len) {
  if (isnan(us) || us < 0)
    snprintf(buf, len, "-");
  else if (us < 999.95)
    snprintf(buf, len, "%.1fus", us);
  else if (us < 999995.0)
    snprintf(buf, len, "%.2fms", us / 1e3);
  else
    snprintf(buf, len, "%.2fs", us / 1e6);
}
