/*
 * bench_report.c — bftnet-bench's report: the tables on stdout, the same
 * figures in the JSON document, the ratios and the targets.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "aead.h"
#include "bftnet_bench.h"

#define POOL_CACHE (4.0 * 1024 * 1024) /* BFTNET_POOL_CACHE: freed buffers a node keeps */
#define MSG_OVERHEAD                                                                               \
  64 /* per queued message over 64 KiB: 16 B header, the pool's 16 B                               \
        header, malloc's chunk and rounding, the ring slot */

/* What one queued message of `size` bytes costs at most: its 16 B header and
 * the buffer pool's 16 B one, rounded up to the pool's size class (64 B
 * steps up to 1 KiB, then eight per doubling up to 64 KiB) or,
 * beyond that, malloc's chunk and rounding; plus the ring slot. */
static double msg_footprint(size_t size) {
  size_t total = size + 16 + 16;
  if (total > 64 * 1024) return (double)(size + MSG_OVERHEAD);
  size_t cls = (total + 63) / 64 * 64;
  if (total > 1024) {
    size_t b = 1024;
    while (2 * b < total)
      b *= 2;
    size_t step = b / 8;
    cls = b + (total - b + step - 1) / step * step;
  }
  return (double)(cls + 8);
}
const char *const bb_sys_name[BB_NSYS] = {"bftnet",   "bftnet-plain", "zmq-curve",    "zmq",
                                          "tcp-aead", "tcp",          "tcp-aead-sod", "bftnet-cb"};
const char *const bb_sys_desc[BB_NSYS] = {"bftnet, migratable streams (default)",
                                          "bftnet, plain streams (disable_migration=1)",
                                          "ZeroMQ PUSH/PULL, CURVE",
                                          "ZeroMQ PUSH/PULL, no security",
                                          "raw TCP + ChaChaPoly per 16 KiB record "
                                          "(the cipher code bftnet uses)",
                                          "raw TCP, batched, no crypto",
                                          "raw TCP + ChaChaPoly per 16 KiB record "
                                          "(libsodium's cipher code)",
                                          "bftnet, the receiver takes messages in "
                                          "cfg.on_message (event-driven)"};

const char *const bb_rtt_name[BB_RTT_NSYS] = {"bftnet",    "bftnet-plain", "bftnet-busy", "tcp",
                                              "zmq-curve", "zmq",          "bftnet-cb"};
const char *const bb_rtt_desc[BB_RTT_NSYS] = {
    "bftnet send + recv, echoed by the peer",
    "the same, plain streams",
    "the same, busy_poll_us = " BB_BUSY_POLL_STR " (both nodes)",
    "raw TCP blocking ping-pong",
    "ZeroMQ REQ/REP, CURVE",
    "ZeroMQ REQ/REP, no security",
    "event-driven: on_message replies (echo) and sends the next ping (pinger), on the loop thread"};

const int bb_rtt_sys[BB_RTT_NSYS] = {BB_BFTNET,    BB_BFTNET_PLAIN, BB_BFTNET, BB_TCP,
                                     BB_ZMQ_CURVE, BB_ZMQ,          BB_BFTNET};

/* ---------------------------------------------------------- helpers */

/* Median of the double at `off` in the n records of `stride` bytes at
 * base whose leading int `ok` is set; NaN if none. */
static double med(const void *base, size_t stride, int n, size_t off) {
  double v[BB_MAX_ROUNDS];
  int k = 0;
  for (int i = 0; i < n; i++) {
    const char *rec = (const char *)base + (size_t)i * stride;
    int ok;
    memcpy(&ok, rec, sizeof ok);
    double x;
    memcpy(&x, rec + off, sizeof x);
    if (ok && !isnan(x)) v[k++] = x;
  }
  return k ? bb_median(v, k) : NAN;
}
#define MED(arr, n, field) med((arr), sizeof *(arr), (n), offsetof(__typeof__(*(arr)), field))

static json_t *jnum(double x) {
  return isnan(x) || isinf(x) ? json_null() : json_real(x);
}

const char *bb_human(double v, char *buf, size_t cap) {
  if (isnan(v))
    snprintf(buf, cap, "-");
  else if (v >= 1e6)
    snprintf(buf, cap, "%.3f M", v / 1e6);
  else if (v >= 1e3)
    snprintf(buf, cap, "%.1f k", v / 1e3);
  else
    snprintf(buf, cap, "%.0f", v);
  return buf;
}

/* v with prec decimals, "-" when it is not a number. */
static const char *num(double v, int prec, char *buf, size_t cap) {
  if (isnan(v) || isinf(v))
    snprintf(buf, cap, "-");
  else
    snprintf(buf, cap, "%.*f", prec, v);
  return buf;
}

/* -------------------------------------------------------------- report */

typedef struct verdict {
  char name[64];
  double value, target;
  int le; /* 1: value <= target passes */
} verdict_t;

static verdict_t VERD[32];
static int NVERD;

static void add_verdict(const char *name, double value, double target, int le) {
  if (NVERD >= 32) return;
  verdict_t *v = &VERD[NVERD++];
  snprintf(v->name, sizeof v->name, "%s", name);
  v->value = value;
  v->target = target;
  v->le = le;
}

static const char *verdict_str(const verdict_t *v) {
  if (isnan(v->value)) return "n/a";
  return (v->le ? v->value <= v->target : v->value >= v->target) ? "PASS" : "MISS";
}

/* Headroom in percent: positive passes, negative is the shortfall. */
static double margin(const verdict_t *v) {
  if (isnan(v->value) || v->value <= 0) return NAN;
  return v->le ? (v->target / v->value - 1) * 100 : (v->value / v->target - 1) * 100;
}

static int size_index(const bb_opts_t *o, size_t size) {
  for (int i = 0; i < o->nsizes; i++)
    if (o->sizes[i] == size) return i;
  return -1;
}

static double tmed(const bb_opts_t *o, int s, int sys) {
  return MED(bb_res.tput[s][sys], o->rounds, mps);
}

static void report_tput(const bb_opts_t *o, json_t *root) {
  json_t *arr = json_array();
  printf(
      "\nThroughput: two processes on loopback, messages delivered per second over a %.1f s window "
      "after %.2f s "
      "warm-up,\nmedian of %d round(s). CPU: user+sys of both processes per million messages.\n\n",
      o->seconds, o->warm, o->rounds);
  printf("%7s  %-13s %13s %9s %12s %12s %9s\n", "size", "system", "msgs/s", "MB/s", "CPU s/M msg",
         "drops", "drop %");
  for (int s = 0; s < o->nsizes; s++) {
    for (int y = 0; y < BB_NSYS; y++) {
      if (!(o->sys_mask & (1u << y))) continue;
      double mps = tmed(o, s, y), mbps = MED(bb_res.tput[s][y], o->rounds, mbps),
             cpu = MED(bb_res.tput[s][y], o->rounds, cpu_m);
      double drops = MED(bb_res.tput[s][y], o->rounds, drops),
             frac = MED(bb_res.tput[s][y], o->rounds, drop_frac);
      double bad = 0;
      for (int r = 0; r < o->rounds; r++)
        bad += bb_res.tput[s][y][r].bad;
      char h[32];
      printf("%7zu  %-13s %13s %9.1f %12.3f %12.0f %8.2f%%%s\n", o->sizes[s], bb_sys_name[y],
             bb_human(mps, h, sizeof h), mbps, cpu, drops, frac * 100,
             bad ? "  ORDER VIOLATIONS" : "");
      json_t *rounds = json_array();
      for (int r = 0; r < o->rounds; r++)
        json_array_append_new(rounds, bb_res.tput[s][y][r].ok ? jnum(bb_res.tput[s][y][r].mps)
                                                              : json_null());
      json_array_append_new(
          arr, json_pack("{s:I, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:I}", "size",
                         (json_int_t)o->sizes[s], "system", bb_sys_name[y], "description",
                         bb_sys_desc[y], "msgs_per_s", jnum(mps), "mb_per_s", jnum(mbps),
                         "cpu_s_per_million", jnum(cpu), "drops", jnum(drops), "drop_fraction",
                         jnum(frac), "enqueued_msgs_per_s",
                         jnum(MED(bb_res.tput[s][y], o->rounds, enq_mps)), "rounds_msgs_per_s",
                         rounds, "order_violations", (json_int_t)bad));
    }
  }
  json_object_set_new(root, "throughput", arr);
}

static void report_ratios(const bb_opts_t *o, json_t *root) {
  static const struct {
    size_t size;
    int base;
    double target;
  } targets[] = {{128, BB_ZMQ_CURVE, 3.0},  {128, BB_ZMQ, 1.0},       {128, BB_TCP_AEAD, 0.5},
                 {1024, BB_ZMQ_CURVE, 2.0}, {1024, BB_TCP_AEAD, 0.8}, {16384, BB_ZMQ_CURVE, 1.5}};
  json_t *arr = json_array(), *mig = json_array();
  printf("\nRatios: bftnet msgs/s over each baseline's (same run, medians).\n\n");
  printf("bftnet and the crypto limit use %s's ChaCha20-Poly1305; /sodium-limit is the limit with\n"
         "libsodium's (how the original targets were measured).\n\n",
         bn_aead_best.name);
  printf("%7s %14s %14s %14s %13s %10s   %s\n", "size", "/ZeroMQ-CURVE", "/ZeroMQ-plain",
         "/crypto-limit", "/sodium-limit", "/raw-TCP", "migratable/plain (migration cost)");
  for (int s = 0; s < o->nsizes; s++) {
    double b = tmed(o, s, BB_BFTNET), plain = tmed(o, s, BB_BFTNET_PLAIN);
    double r[5] = {b / tmed(o, s, BB_ZMQ_CURVE), b / tmed(o, s, BB_ZMQ),
                   b / tmed(o, s, BB_TCP_AEAD), b / tmed(o, s, BB_TCP),
                   b / tmed(o, s, BB_TCP_AEAD_SODIUM)};
    double cost = (1 - b / plain) * 100;
    char b0[24], b1[24], b2[24], b3[24], b4[24], b5[24], b6[24];
    printf("%7zu %14s %14s %14s %13s %10s   %s (%s%%)\n", o->sizes[s], num(r[0], 3, b0, sizeof b0),
           num(r[1], 3, b1, sizeof b1), num(r[2], 3, b2, sizeof b2), num(r[4], 3, b6, sizeof b6),
           num(r[3], 4, b3, sizeof b3), num(b / plain, 3, b5, sizeof b5),
           num(cost, 1, b4, sizeof b4));
    json_array_append_new(
        arr, json_pack("{s:I, s:o, s:o, s:o, s:o, s:o}", "size", (json_int_t)o->sizes[s],
                       "zmq_curve", jnum(r[0]), "zmq_plain", jnum(r[1]), "crypto_limit", jnum(r[2]),
                       "crypto_limit_libsodium", jnum(r[4]), "raw_tcp", jnum(r[3])));
    json_array_append_new(mig, json_pack("{s:I, s:o, s:o, s:o, s:o}", "size",
                                         (json_int_t)o->sizes[s], "migratable_msgs_per_s", jnum(b),
                                         "plain_msgs_per_s", jnum(plain), "migratable_over_plain",
                                         jnum(b / plain), "overhead_percent", jnum(cost)));
    char name[64];
    snprintf(name, sizeof name, "%zu B migratable streams cost (%%)", o->sizes[s]);
    add_verdict(name, cost < 0 ? 0 : cost, 5.0, 1);
  }
  for (size_t i = 0; i < sizeof targets / sizeof *targets; i++) {
    int s = size_index(o, targets[i].size);
    if (s < 0) continue;
    char name[64];
    snprintf(name, sizeof name, "%zu B bftnet / %s", targets[i].size,
             targets[i].base == BB_ZMQ_CURVE ? "ZeroMQ CURVE"
             : targets[i].base == BB_ZMQ     ? "ZeroMQ plain"
                                             : "crypto limit");
    add_verdict(name, tmed(o, s, BB_BFTNET) / tmed(o, s, targets[i].base), targets[i].target, 0);
    if (targets[i].base == BB_TCP_AEAD && (o->sys_mask & (1u << BB_BFTNET_CB))) {
      snprintf(name, sizeof name, "%zu B bftnet-cb / crypto limit", targets[i].size);
      add_verdict(name, tmed(o, s, BB_BFTNET_CB) / tmed(o, s, BB_TCP_AEAD), targets[i].target, 0);
    }
  }
  json_object_set_new(root, "ratios", arr);
  json_object_set_new(root, "migration", mig);
}

static void report_rtt(const bb_opts_t *o, json_t *root) {
  json_t *arr = json_array();
  printf(
      "\nRound trips, 64 B, one at a time (median over rounds of each round's percentiles):\n\n");
  printf("%-13s %10s %10s %9s  %s\n", "system", "p50 us", "p99 us", "samples", "what");
  double p50[BB_RTT_NSYS], p99[BB_RTT_NSYS];
  for (int k = 0; k < BB_RTT_NSYS; k++) {
    p50[k] = MED(bb_res.rtt[k], o->rounds, p50);
    p99[k] = MED(bb_res.rtt[k], o->rounds, p99);
    if (!(o->sys_mask & (1u << bb_rtt_sys[k]))) continue;
    double bad = 0;
    for (int r = 0; r < o->rounds; r++)
      bad += bb_res.rtt[k][r].bad;
    printf("%-13s %10.1f %10.1f %9.0f  %s%s\n", bb_rtt_name[k], p50[k], p99[k],
           MED(bb_res.rtt[k], o->rounds, n), bb_rtt_desc[k], bad ? "  (MISMATCHED REPLIES)" : "");
    json_array_append_new(arr, json_pack("{s:s, s:s, s:I, s:o, s:o, s:o}", "system", bb_rtt_name[k],
                                         "description", bb_rtt_desc[k], "size", (json_int_t)64,
                                         "p50_us", jnum(p50[k]), "p99_us", jnum(p99[k]), "samples",
                                         jnum(MED(bb_res.rtt[k], o->rounds, n))));
  }
  add_verdict("64 B RTT p50 bftnet / raw TCP", p50[BB_RTT_BFTNET] / p50[BB_RTT_TCP], 1.2, 1);
  add_verdict("64 B RTT p99 bftnet / ZeroMQ CURVE", p99[BB_RTT_BFTNET] / p99[BB_RTT_ZMQ_CURVE], 1.0,
              1);
  add_verdict("64 B RTT p50 bftnet-busy / raw TCP", p50[BB_RTT_BFTNET_BUSY] / p50[BB_RTT_TCP], 1.2,
              1);
  add_verdict("64 B RTT p50 bftnet-cb / raw TCP", p50[BB_RTT_BFTNET_CB] / p50[BB_RTT_TCP], 1.2, 1);
  add_verdict("64 B RTT p99 bftnet-cb / ZeroMQ CURVE",
              p99[BB_RTT_BFTNET_CB] / p99[BB_RTT_ZMQ_CURVE], 1.0, 1);
  add_verdict("64 B RTT p99 bftnet-busy / ZeroMQ CURVE",
              p99[BB_RTT_BFTNET_BUSY] / p99[BB_RTT_ZMQ_CURVE], 1.0, 1);
  json_object_set_new(root, "rtt", arr);
}

static void report_bcast(const bb_opts_t *o, json_t *root) {
  double s = MED(bb_res.bcast, o->rounds, send_ns), b = MED(bb_res.bcast, o->rounds, bcast_ns),
         ratio = MED(bb_res.bcast, o->rounds, ratio);
  double sp = MED(bb_res.bcast, o->rounds, send_proc),
         bp = MED(bb_res.bcast, o->rounds, bcast_proc),
         pr = MED(bb_res.bcast, o->rounds, proc_ratio);
  printf("\nBroadcast, 128 B, one node and 6 peers (default ring 4096), CPU per call:\n\n");
  printf("  calling thread:  bftnet_send %.0f ns   bftnet_broadcast (6 peers) %.0f ns   ratio %.2f "
         "(the median of\n"
         "                   each round's ratio)\n",
         s, b, ratio);
  printf("  sender process, until flushed (framing, Noise, writes for every copy):\n"
         "                   bftnet_send %.0f ns   bftnet_broadcast (6 peers) %.0f ns   ratio %.2f "
         "(%.2f per copy)\n",
         sp, bp, pr, pr / 6);
  add_verdict("broadcast(6) / send, caller CPU", ratio, 1.3, 1);
  json_object_set_new(root, "broadcast",
                      json_pack("{s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "size",
                                (json_int_t)128, "peers", (json_int_t)(BB_BCAST_NODES - 1),
                                "send_caller_ns", jnum(s), "broadcast_caller_ns", jnum(b),
                                "caller_ratio", jnum(ratio), "send_process_ns", jnum(sp),
                                "broadcast_process_ns", jnum(bp), "process_ratio", jnum(pr),
                                "drops", jnum(MED(bb_res.bcast, o->rounds, drops))));
}

static void report_a2a(const bb_opts_t *o, json_t *root) {
  json_t *arr = json_array();
  if (o->na2a) {
    printf("\nAll-to-all, %d B, every node bftnet_broadcasts to all others (one process per "
           "node):\n\n",
           BB_A2A_SIZE);
    printf("%4s %14s %10s %10s %10s | %12s %14s %9s %9s %9s %8s\n", "N", "max msgs/s", "CPU s/M",
           "p50 us", "p99 us", "50% offered", "delivered/s", "p50 us", "p99 us", "max us", "drops");
  }
  for (int ai = 0; ai < o->na2a; ai++) {
    bb_a2a_t *a = bb_res.a2a[ai];
    int n = o->rounds;
    double mx = MED(a, n, max_mps), off = MED(a, n, offered), got = MED(a, n, achieved);
    char x[32], y[32], z[32];
    printf("%4d %14s %10.3f %10.0f %10.0f | %12s %14s %9.0f %9.0f %9.0f %8.0f\n", o->a2a[ai],
           bb_human(mx, x, sizeof x), MED(a, n, max_cpu_m), MED(a, n, max_p50), MED(a, n, max_p99),
           bb_human(off, y, sizeof y), bb_human(got, z, sizeof z), MED(a, n, p50), MED(a, n, p99),
           MED(a, n, pmax), MED(a, n, drops1));
    json_array_append_new(
        arr,
        json_pack("{s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "nodes",
                  (json_int_t)o->a2a[ai], "size", (json_int_t)BB_A2A_SIZE, "max_msgs_per_s",
                  jnum(mx), "max_cpu_s_per_million", jnum(MED(a, n, max_cpu_m)), "max_p50_us",
                  jnum(MED(a, n, max_p50)), "max_p99_us", jnum(MED(a, n, max_p99)),
                  "rate_per_node_bcasts_per_s", jnum(MED(a, n, rate)), "offered_msgs_per_s",
                  jnum(off), "delivered_msgs_per_s", jnum(got), "p50_us", jnum(MED(a, n, p50)),
                  "p99_us", jnum(MED(a, n, p99)), "max_us", jnum(MED(a, n, pmax)), "drops_at_50",
                  jnum(MED(a, n, drops1)), "order_violations", jnum(MED(a, n, bad))));
  }
  json_object_set_new(root, "all_to_all", arr);
}

static void report_memory(const bb_opts_t *o, json_t *root) {
  bftnet_config_t cfg;
  bftnet_config_init(&cfg);
  double fixed = bb_res.soak.ok ? bb_res.soak.rss_setup - bb_res.soak.rss_start : NAN;
  json_t *bounds = json_array();
  printf("\nMemory for a dead peer: ring_capacity x message footprint (up to 64 KiB: the buffer\n"
         "pool's size class, 64 B steps to 1 KiB then <= 12.5 %% over, + the 8 B ring slot; size + "
         "%d B\n"
         "above) + retransmit window (yamux_window) + fixed + the node's buffer cache (4 MiB, once "
         "per\n"
         "node).\n",
         MSG_OVERHEAD);
  printf("Defaults: ring_capacity %u, yamux_window %.1f MiB; fixed (one node, measured: RSS after "
         "bftnet_new,\n"
         "listen and connect minus before) %.1f MiB.\n\n",
         cfg.ring_capacity, cfg.yamux_window / BB_MIB, fixed / BB_MIB);
  printf("%7s %12s %12s %12s\n", "size", "ring MiB", "window MiB", "bound MiB");
  size_t sizes[BB_MAX_SIZES + 1];
  int n = 0;
  for (int i = 0; i < o->nsizes; i++)
    sizes[n++] = o->sizes[i];
  if (size_index(o, BB_SOAK_SIZE) < 0) sizes[n++] = BB_SOAK_SIZE;
  for (int i = 0; i < n; i++) {
    double ring = (double)cfg.ring_capacity * msg_footprint(sizes[i]);
    double bound = ring + cfg.yamux_window + (isnan(fixed) ? 0 : fixed) + POOL_CACHE;
    printf("%7zu %12.2f %12.2f %12.2f\n", sizes[i], ring / BB_MIB, cfg.yamux_window / BB_MIB,
           bound / BB_MIB);
    json_array_append_new(bounds, json_pack("{s:I, s:o, s:o, s:o}", "size", (json_int_t)sizes[i],
                                            "ring_bytes", jnum(ring), "window_bytes",
                                            jnum(cfg.yamux_window), "bound_bytes", jnum(bound)));
  }
  json_t *mem =
      json_pack("{s:I, s:I, s:I, s:o, s:o}", "ring_capacity", (json_int_t)cfg.ring_capacity,
                "yamux_window", (json_int_t)cfg.yamux_window, "per_message_overhead",
                (json_int_t)MSG_OVERHEAD, "fixed_bytes", jnum(fixed), "bounds", bounds);
  if (o->soak > 0 && bb_res.soak.ok) {
    double bound = bb_res.soak.rss_setup + bb_res.soak.ring * msg_footprint(BB_SOAK_SIZE) +
                   cfg.yamux_window + POOL_CACHE;
    double slack = fmax(BB_MIB, 0.02 * bb_res.soak.first);
    int flat = bb_res.soak.last - bb_res.soak.first <= slack;
    int within = bb_res.soak.max <= bound;
    printf("\nMemory soak: %.0f s flat out (%zu B, %.0f msgs, %.0f dropped) to a member that never "
           "started:\n"
           "  RSS first %.2f MiB, last %.2f MiB, max %.2f MiB over %.0f samples (1/s); before "
           "sending %.2f MiB.\n"
           "  flat (last - first <= %.2f MiB): %s;  max within the bound (%.2f MiB): %s\n",
           o->soak, (size_t)BB_SOAK_SIZE, bb_res.soak.sent, bb_res.soak.drops,
           bb_res.soak.first / BB_MIB, bb_res.soak.last / BB_MIB, bb_res.soak.max / BB_MIB,
           bb_res.soak.samples, bb_res.soak.rss_setup / BB_MIB, slack / BB_MIB, flat ? "yes" : "NO",
           bound / BB_MIB, within ? "yes" : "NO");
    json_t *series = json_array();
    uint32_t k = atomic_load(&bb_shm->nsamples);
    for (uint32_t i = 0; i < k; i++)
      json_array_append_new(series, json_integer((json_int_t)bb_shm->samples[i]));
    json_object_set_new(mem, "soak",
                        json_pack("{s:f, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:b, s:b, s:o}",
                                  "seconds", o->soak, "size", (json_int_t)BB_SOAK_SIZE, "sent",
                                  jnum(bb_res.soak.sent), "dropped", jnum(bb_res.soak.drops),
                                  "rss_before_sending", jnum(bb_res.soak.rss_setup), "rss_first",
                                  jnum(bb_res.soak.first), "rss_last", jnum(bb_res.soak.last),
                                  "rss_max", jnum(bb_res.soak.max), "bound_bytes", jnum(bound),
                                  "flat", flat, "within_bound", within, "rss_series", series));
  } else {
    printf("\n(memory soak off: --memory-soak SECONDS runs it)\n");
  }
  json_object_set_new(root, "memory", mem);
}

static void report_verdicts(json_t *root) {
  json_t *arr = json_array();
  printf("\nTargets (printed, not asserted). Margin: headroom (+) or shortfall (-) "
         "against the target.\n\n");
  printf("%-40s %10s %10s %8s %9s\n", "figure", "value", "target", "verdict", "margin");
  for (int i = 0; i < NVERD; i++) {
    const verdict_t *v = &VERD[i];
    char tgt[24];
    snprintf(tgt, sizeof tgt, "%s %.2f", v->le ? "<=" : ">=", v->target);
    char val[24], mg[24];
    double m = margin(v);
    if (isnan(m))
      snprintf(mg, sizeof mg, "-");
    else
      snprintf(mg, sizeof mg, "%+.0f%%", m);
    printf("%-40s %10s %10s %8s %9s\n", v->name, num(v->value, 3, val, sizeof val), tgt,
           verdict_str(v), mg);
    json_array_append_new(arr,
                          json_pack("{s:s, s:o, s:s, s:f, s:s, s:o}", "name", v->name, "value",
                                    jnum(v->value), "op", v->le ? "<=" : ">=", "target", v->target,
                                    "verdict", verdict_str(v), "margin_percent", jnum(margin(v))));
  }
  json_object_set_new(root, "targets", arr);
}

/* The tables on stdout, the same into root. */
void bb_report_all(const bb_opts_t *o, json_t *root) {
  if (o->sections & BB_SEC_TPUT) {
    report_tput(o, root);
    report_ratios(o, root);
  } else {
    json_object_set_new(root, "throughput", json_array());
    json_object_set_new(root, "ratios", json_array());
    json_object_set_new(root, "migration", json_array());
  }
  if (o->sections & BB_SEC_RTT)
    report_rtt(o, root);
  else
    json_object_set_new(root, "rtt", json_array());
  if (o->sections & BB_SEC_BCAST)
    report_bcast(o, root);
  else
    json_object_set_new(root, "broadcast", json_null());
  report_a2a(o, root);
  if (o->sections & BB_SEC_MEM)
    report_memory(o, root);
  else
    json_object_set_new(root, "memory", json_null());
  report_verdicts(root);
}
