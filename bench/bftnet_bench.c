/*
 * bftnet-bench — bftnet against its baselines, in one command and the same
 * run (issue 6). Every figure is measured on loopback between processes
 * forked by this one, interleaved with its baselines round by round, and
 * reported as the median over the rounds; ratios are of medians. These VMs
 * are noisy: only the ratios mean something.
 *
 *   bftnet-bench [--quick] [--sizes 64,128,1024,16384] [--seconds S] [--rounds K]
 *                [--json FILE] [--all-to-all 4,7|none] [--memory-soak SECONDS]
 *                [--flood] [--systems LIST] [--sections LIST]
 *
 * Sections (docs/BENCHMARKS.md says exactly what each baseline is):
 *   throughput  bftnet (migratable and plain streams), ZeroMQ PUSH/PULL with
 *               and without CURVE, raw TCP + one ChaCha20-Poly1305 per ~16 KiB
 *               record ("the crypto limit"), raw TCP: msgs/s, MB/s, CPU s per
 *               million messages (both processes), drops;
 *   rtt         64 B round trips: bftnet, raw TCP ping-pong, ZeroMQ REQ/REP;
 *   broadcast   caller CPU of bftnet_broadcast to 6 peers vs one bftnet_send;
 *   all-to-all  N nodes broadcasting: max aggregate msgs/s, then latency at
 *               50 % of it;
 *   memory      the dead-peer memory bound, and with --memory-soak the RSS of
 *               a node sending flat out to a member that never started.
 * Exit status: 0, 1 if a measurement failed (the report says which), 2 usage.
 */
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>
#include <zmq.h>

#include "aead.h"
#include "bftnet_bench.h"

#define MAX_SIZES    8
#define MAX_ROUNDS   15
#define MAX_A2A      4
#define BCAST_NODES  7 /* the sender and 6 peers */
#define A2A_SIZE     128
#define SOAK_SIZE    1024
#define POOL_CACHE   (4.0 * 1024 * 1024) /* BFTNET_POOL_CACHE: freed buffers a node keeps */
#define MSG_OVERHEAD 64 /* per queued message over 64 KiB: 16 B header, the pool's 16 B
                           header, malloc's chunk and rounding, the ring slot */

/* What one queued message of `size` bytes costs at most: its 16 B header and
 * the buffer pool's 16 B one, rounded up to the pool's size class (core/
 * core.h, "pool": 64 B steps up to 1 KiB, then eight per doubling up to 64 KiB) or,
 * beyond that, malloc's chunk and rounding; plus the ring slot. */
static double msg_footprint(size_t size) {
  size_t total = size + 16 + 16;
  if (total > 64 * 1024) return (double)(size + MSG_OVERHEAD);
  size_t cls = (total + 63) / 64 * 64;
  if (total > 1024) {
    size_t b = 1024;
    while (2 * b < total) b *= 2;
    size_t step = b / 8;
    cls = b + (total - b + step - 1) / step * step;
  }
  return (double)(cls + 8);
}
#define MIB          (1024.0 * 1024.0)

static const char *const SYS_NAME[BB_NSYS] = {"bftnet",   "bftnet-plain", "zmq-curve",
                                              "zmq",      "tcp-aead",     "tcp",
                                              "tcp-aead-sod", "bftnet-cb"};
static const char *const SYS_DESC[BB_NSYS] = {"bftnet, migratable streams (default)",
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

enum {
  RTT_BFTNET,
  RTT_BFTNET_PLAIN,
  RTT_BFTNET_BUSY,
  RTT_TCP,
  RTT_ZMQ_CURVE,
  RTT_ZMQ,
  RTT_BFTNET_CB,
  RTT_NSYS
};
static const char *const RTT_NAME[RTT_NSYS] = {"bftnet",    "bftnet-plain", "bftnet-busy", "tcp",
                                               "zmq-curve", "zmq",          "bftnet-cb"};
static const char *const RTT_DESC[RTT_NSYS] = {
    "bftnet send + recv, echoed by the peer", "the same, plain streams",
    "the same, busy_poll_us = " BB_BUSY_POLL_STR " (both nodes)", "raw TCP blocking ping-pong",
    "ZeroMQ REQ/REP, CURVE", "ZeroMQ REQ/REP, no security",
    "event-driven: on_message replies (echo) and sends the next ping (pinger), on the loop thread"};
static const int RTT_SYS[RTT_NSYS] = {BB_BFTNET,    BB_BFTNET_PLAIN, BB_BFTNET, BB_TCP,
                                      BB_ZMQ_CURVE, BB_ZMQ,          BB_BFTNET};

enum { SEC_TPUT = 1, SEC_RTT = 2, SEC_BCAST = 4, SEC_A2A = 8, SEC_MEM = 16, SEC_ALL = 31 };

typedef struct opts {
  int quick, rounds, nsizes, flood, na2a, sections, json_only;
  size_t sizes[MAX_SIZES];
  int a2a[MAX_A2A];
  double seconds, warm, soak;
  const char *json;
  unsigned sys_mask;
} opts_t;

typedef struct tput {
  int ok;
  double mps, mbps, cpu_m, drops, drop_frac, enq_mps, bad;
} tput_t;

typedef struct rtt {
  int ok;
  double p50, p99, n, bad;
} rtt_t;

typedef struct bcast {
  int ok;
  double send_ns, bcast_ns, ratio, send_proc, bcast_proc, proc_ratio, drops;
} bcast_t;

typedef struct a2a_res {
  int ok;
  double max_mps, max_cpu_m, max_p50, max_p99, rate, offered, achieved, p50, p99, pmax, drops0,
      drops1, bad, missed;
} a2a_res_t;

typedef struct soak {
  int ok;
  double rss_start, rss_setup, first, last, max, samples, sent, drops, ring;
} soak_t;

static tput_t T[MAX_SIZES][BB_NSYS][MAX_ROUNDS];
static rtt_t R[RTT_NSYS][MAX_ROUNDS];
static bcast_t BC[MAX_ROUNDS];
static a2a_res_t A[MAX_A2A][MAX_ROUNDS];
static soak_t SOAK;
static int failures;
static json_t *FAIL_LIST;
static bb_job_t BASE; /* keys */

/* ---------------------------------------------------------- helpers */

/* Median of the double at `off` in the n records of `stride` bytes at
 * base whose leading int `ok` is set; NaN if none. */
static double med(const void *base, size_t stride, int n, size_t off) {
  double v[MAX_ROUNDS];
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

static void fail_note(const char *what, const char *err) {
  failures++;
  fprintf(stderr, "bftnet-bench: FAILED %s: %s\n", what, err);
  json_array_append_new(FAIL_LIST, json_pack("{s:s, s:s}", "what", what, "error", err));
}

static json_t *jnum(double x) {
  return isnan(x) || isinf(x) ? json_null() : json_real(x);
}

static const char *human(double v, char *buf, size_t cap) {
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

static uint32_t ring_for(size_t size) {
  uint32_t cap = 1u << 16;
  while (cap > 1024 && (double)cap * (double)size > 64 * MIB)
    cap >>= 1;
  return cap;
}

static bb_job_t job_for(const opts_t *o, int sys, size_t size, int round) {
  bb_job_t j = BASE;
  j.sys = sys;
  j.round = round;
  j.size = size;
  j.warm = o->warm;
  j.window = o->seconds;
  j.deadline = 2 * (o->warm + o->seconds) + 30;
  j.flood = o->flood;
  j.disable_migration = sys == BB_BFTNET_PLAIN;
  j.ring_capacity = ring_for(size);
  j.rtt_samples = o->quick ? 5000 : 20000;
  j.rtt_warm = o->quick ? 200 : 1000;
  return j;
}

/* ------------------------------------------------------- throughput */

static void run_tput(const opts_t *o, int s, int sys, int round) {
  static const bb_role_fn roles[BB_NSYS][2] = {
      {bb_bftnet_sender, bb_bftnet_receiver}, {bb_bftnet_sender, bb_bftnet_receiver},
      {bb_zmq_sender, bb_zmq_receiver},       {bb_zmq_sender, bb_zmq_receiver},
      {bb_tcp_sender, bb_tcp_receiver},       {bb_tcp_sender, bb_tcp_receiver},
      {bb_tcp_sender, bb_tcp_receiver},       {bb_bftnet_sender, bb_bftnet_cb_receiver}};
  bb_job_t job = job_for(o, sys, o->sizes[s], round);
  char err[300] = "";
  tput_t *t = &T[s][sys][round];
  memset(t, 0, sizeof *t);
  if (bb_run(roles[sys], 2, &job, BB_PLAN_WINDOW, NULL, err, sizeof err)) {
    char what[96];
    snprintf(what, sizeof what, "throughput %s %zu B round %d", SYS_NAME[sys], o->sizes[s],
             round + 1);
    fail_note(what, err);
    return;
  }
  const bb_snap_t *sa = bb_shm->side[0].snap[0], *ra = bb_shm->side[1].snap[0];
  t->mps = bb_win_rate(1, 0, BB_FIELD(msgs));
  t->mbps = t->mps * (double)o->sizes[s] / 1e6;
  t->cpu_m = (bb_win_cpu_rate(0, 0) + bb_win_cpu_rate(1, 0)) / t->mps * 1e6;
  t->enq_mps = bb_win_rate(0, 0, BB_FIELD(enq));
  t->drops = (double)(sa[1].c.drops - sa[0].c.drops);
  double enq = (double)(sa[1].c.enq - sa[0].c.enq);
  t->drop_frac = enq > 0 ? t->drops / enq : 0;
  t->bad = (double)ra[1].c.bad;
  t->ok = !isnan(t->mps) && t->mps > 0;
  if (!t->ok) {
    char what[96], why[200];
    snprintf(what, sizeof what, "throughput %s %zu B round %d", SYS_NAME[sys], o->sizes[s],
             round + 1);
    snprintf(why, sizeof why,
             "nothing delivered in the window (receiver snapshots %d/%d, %llu..%llu msgs; "
             "sender %d/%d, %llu..%llu msgs)",
             ra[0].valid, ra[1].valid, (unsigned long long)ra[0].c.msgs,
             (unsigned long long)ra[1].c.msgs, sa[0].valid, sa[1].valid,
             (unsigned long long)sa[0].c.msgs, (unsigned long long)sa[1].c.msgs);
    fail_note(what, why);
  }
  char h[32];
  fprintf(stderr, "  round %d  %6zu B  %-13s %12s msgs/s  %7.3f CPU s/M  drops %.0f%s\n", round + 1,
          o->sizes[s], SYS_NAME[sys], human(t->mps, h, sizeof h), t->cpu_m, t->drops,
          t->bad ? "  ORDER VIOLATIONS" : "");
}

/* -------------------------------------------------------------- rtt */

static void run_rtt(const opts_t *o, int k, int round) {
  static const bb_role_fn roles[RTT_NSYS][2] = {{bb_bftnet_pinger, bb_bftnet_echo},
                                                {bb_bftnet_pinger, bb_bftnet_echo},
                                                {bb_bftnet_pinger, bb_bftnet_echo},
                                                {bb_tcp_pinger, bb_tcp_echo},
                                                {bb_zmq_req, bb_zmq_rep},
                                                {bb_zmq_req, bb_zmq_rep},
                                                {bb_bftnet_cb_pinger, bb_bftnet_cb_echo}};
  bb_job_t job = job_for(o, RTT_SYS[k], 64, round);
  if (k == RTT_BFTNET_BUSY) job.busy_poll_us = BB_BUSY_POLL_US;
  char err[300] = "";
  rtt_t *r = &R[k][round];
  memset(r, 0, sizeof *r);
  if (bb_run(roles[k], 2, &job, BB_PLAN_UNTIL_DONE, NULL, err, sizeof err)) {
    char what[64];
    snprintf(what, sizeof what, "round trip %s round %d", RTT_NAME[k], round + 1);
    fail_note(what, err);
    return;
  }
  uint32_t n = atomic_load(&bb_shm->nsamples);
  double *v = malloc(n * sizeof *v + 1);
  for (uint32_t i = 0; i < n; i++)
    v[i] = (double)bb_shm->samples[i] / 1e3;
  qsort(v, n, sizeof *v, bb_cmp_double);
  r->p50 = bb_pct_sorted(v, n, 0.50);
  r->p99 = bb_pct_sorted(v, n, 0.99);
  r->n = n;
  r->bad = bb_shm->side[0].res[BB_RES_RTT_BAD];
  r->ok = n > 0;
  free(v);
  fprintf(stderr, "  round %d  rtt 64 B  %-13s p50 %8.1f us  p99 %8.1f us  (%u samples)\n",
          round + 1, RTT_NAME[k], r->p50, r->p99, n);
}

/* --------------------------------------------------------- broadcast */

static void run_bcast(const opts_t *o, int round) {
  const bb_role_fn roles[2] = {bb_bcast_sender, bb_bcast_sinks};
  bb_job_t job = job_for(o, BB_BFTNET, 128, round);
  job.nnodes = BCAST_NODES;
  job.ring_capacity = 4096;
  char err[300] = "";
  bcast_t *b = &BC[round];
  memset(b, 0, sizeof *b);
  if (bb_run(roles, 2, &job, BB_PLAN_UNTIL_DONE, NULL, err, sizeof err)) {
    char what[64];
    snprintf(what, sizeof what, "broadcast round %d", round + 1);
    fail_note(what, err);
    return;
  }
  const double *res = bb_shm->side[0].res;
  b->send_ns = res[BB_RES_BC_SEND_THREAD_NS];
  b->bcast_ns = res[BB_RES_BC_BCAST_THREAD_NS];
  b->ratio = b->bcast_ns / b->send_ns;
  b->send_proc = res[BB_RES_BC_SEND_PROC_NS];
  b->bcast_proc = res[BB_RES_BC_BCAST_PROC_NS];
  b->proc_ratio = b->bcast_proc / b->send_proc;
  b->drops = res[BB_RES_BC_DROPS];
  b->ok = b->send_ns > 0 && b->bcast_ns > 0;
  fprintf(stderr,
          "  round %d  broadcast: caller %.0f ns/call vs send %.0f ns (%.2fx); process %.0f vs "
          "%.0f ns (%.2fx)\n",
          round + 1, b->bcast_ns, b->send_ns, b->ratio, b->bcast_proc, b->send_proc, b->proc_ratio);
}

/* -------------------------------------------------------- all-to-all */

static int A2A_N;

static double a2a_max(void) {
  double agg = 0;
  for (int i = 0; i < A2A_N; i++)
    agg += bb_win_rate(i, 0, BB_FIELD(msgs));
  return agg;
}

static double a2a_rate(const bb_job_t *job) {
  double agg = a2a_max();
  return isnan(agg) ? 0 : 0.5 * agg / ((double)job->nnodes * (double)(job->nnodes - 1));
}

static void run_a2a(const opts_t *o, int ai, int round) {
  bb_role_fn roles[BB_MAX_NODES];
  int n = o->a2a[ai];
  for (int i = 0; i < n; i++)
    roles[i] = bb_a2a_node;
  bb_job_t job = job_for(o, BB_BFTNET, A2A_SIZE, round);
  job.nnodes = n;
  job.ring_capacity = 4096;
  job.deadline = 2 * (o->warm + o->seconds) + 40;
  A2A_N = n;
  char err[300] = "";
  a2a_res_t *a = &A[ai][round];
  memset(a, 0, sizeof *a);
  if (bb_run(roles, n, &job, BB_PLAN_TWO_WINDOWS, a2a_rate, err, sizeof err)) {
    char what[64];
    snprintf(what, sizeof what, "all-to-all %d round %d", n, round + 1);
    fail_note(what, err);
    return;
  }
  static uint64_t h0[BB_HIST_BUCKETS], h1[BB_HIST_BUCKETS];
  memset(h0, 0, sizeof h0);
  memset(h1, 0, sizeof h1);
  double cpu = 0;
  a->max_mps = a2a_max();
  a->rate = bb_shm->rate;
  for (int i = 0; i < n; i++) {
    const bb_snap_t *w0 = bb_shm->side[i].snap[0], *w1 = bb_shm->side[i].snap[1];
    a->offered += bb_win_rate(i, 1, BB_FIELD(enq));
    a->achieved += bb_win_rate(i, 1, BB_FIELD(msgs));
    a->drops0 += (double)(w0[1].c.drops - w0[0].c.drops);
    a->drops1 += (double)(w1[1].c.drops - w1[0].c.drops);
    a->bad += (double)w1[1].c.bad;
    a->missed += bb_shm->side[i].res[BB_RES_A2A_MISSED];
    cpu += bb_win_cpu_rate(i, 0);
    for (size_t k = 0; k < BB_HIST_BUCKETS; k++) {
      h0[k] += bb_shm->hist[i][0][k];
      h1[k] += bb_shm->hist[i][1][k];
    }
  }
  a->max_cpu_m = cpu / a->max_mps * 1e6;
  a->max_p50 = bb_hist_pct(h0, 0.50) / 1e3;
  a->max_p99 = bb_hist_pct(h0, 0.99) / 1e3;
  a->p50 = bb_hist_pct(h1, 0.50) / 1e3;
  a->p99 = bb_hist_pct(h1, 0.99) / 1e3;
  a->pmax = bb_hist_pct(h1, 1.0) / 1e3;
  a->ok = a->max_mps > 0 && a->achieved > 0;
  char x[32], y[32];
  fprintf(
      stderr,
      "  round %d  all-to-all %d: max %s msgs/s; at 50%%: %s msgs/s, p50 %.0f us, p99 %.0f us\n",
      round + 1, n, human(a->max_mps, x, sizeof x), human(a->achieved, y, sizeof y), a->p50,
      a->p99);
}

/* ------------------------------------------------------------ memory */

static void run_soak(const opts_t *o) {
  const bb_role_fn roles[1] = {bb_soak_node};
  bb_job_t job = job_for(o, BB_BFTNET, SOAK_SIZE, 0);
  job.ring_capacity = 4096; /* the default configuration */
  job.soak_seconds = o->soak;
  job.deadline = o->soak + 30;
  char err[300] = "";
  memset(&SOAK, 0, sizeof SOAK);
  if (bb_run(roles, 1, &job, BB_PLAN_UNTIL_DONE, NULL, err, sizeof err)) {
    fail_note("memory", err);
    return;
  }
  const double *res = bb_shm->side[0].res;
  SOAK.rss_start = res[BB_RES_SOAK_RSS_START];
  SOAK.rss_setup = res[BB_RES_SOAK_RSS_SETUP];
  SOAK.first = res[BB_RES_SOAK_FIRST];
  SOAK.last = res[BB_RES_SOAK_LAST];
  SOAK.max = res[BB_RES_SOAK_MAX];
  SOAK.samples = res[BB_RES_SOAK_SAMPLES];
  SOAK.sent = res[BB_RES_SOAK_SENT];
  SOAK.drops = res[BB_RES_SOAK_DROPS];
  SOAK.ring = res[BB_RES_SOAK_RING];
  SOAK.ok = 1;
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

static int size_index(const opts_t *o, size_t size) {
  for (int i = 0; i < o->nsizes; i++)
    if (o->sizes[i] == size) return i;
  return -1;
}

static double tmed(const opts_t *o, int s, int sys) {
  return MED(T[s][sys], o->rounds, mps);
}

static void report_tput(const opts_t *o, json_t *root) {
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
      double mps = tmed(o, s, y), mbps = MED(T[s][y], o->rounds, mbps),
             cpu = MED(T[s][y], o->rounds, cpu_m);
      double drops = MED(T[s][y], o->rounds, drops), frac = MED(T[s][y], o->rounds, drop_frac);
      double bad = 0;
      for (int r = 0; r < o->rounds; r++)
        bad += T[s][y][r].bad;
      char h[32];
      printf("%7zu  %-13s %13s %9.1f %12.3f %12.0f %8.2f%%%s\n", o->sizes[s], SYS_NAME[y],
             human(mps, h, sizeof h), mbps, cpu, drops, frac * 100,
             bad ? "  ORDER VIOLATIONS" : "");
      json_t *rounds = json_array();
      for (int r = 0; r < o->rounds; r++)
        json_array_append_new(rounds, T[s][y][r].ok ? jnum(T[s][y][r].mps) : json_null());
      json_array_append_new(
          arr, json_pack("{s:I, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:I}", "size",
                         (json_int_t)o->sizes[s], "system", SYS_NAME[y], "description", SYS_DESC[y],
                         "msgs_per_s", jnum(mps), "mb_per_s", jnum(mbps), "cpu_s_per_million",
                         jnum(cpu), "drops", jnum(drops), "drop_fraction", jnum(frac),
                         "enqueued_msgs_per_s", jnum(MED(T[s][y], o->rounds, enq_mps)),
                         "rounds_msgs_per_s", rounds, "order_violations", (json_int_t)bad));
    }
  }
  json_object_set_new(root, "throughput", arr);
}

static void report_ratios(const opts_t *o, json_t *root) {
  static const struct {
    size_t size;
    int base;
    double target;
  } targets[] = {{128, BB_ZMQ_CURVE, 3.0},  {128, BB_ZMQ, 1.0},       {128, BB_TCP_AEAD, 0.5},
                 {1024, BB_ZMQ_CURVE, 2.0}, {1024, BB_TCP_AEAD, 0.8}, {16384, BB_ZMQ_CURVE, 1.5}};
  json_t *arr = json_array(), *mig = json_array();
  printf("\nRatios: bftnet msgs/s over each baseline's (same run, medians).\n\n");
  printf("bftnet and the crypto limit use %s's ChaCha20-Poly1305; /sodium-limit is the limit with\n"
         "libsodium's (the issue's reference figures).\n\n",
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
                       "zmq_curve", jnum(r[0]), "zmq_plain", jnum(r[1]), "crypto_limit",
                       jnum(r[2]), "crypto_limit_libsodium", jnum(r[4]), "raw_tcp", jnum(r[3])));
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

static void report_rtt(const opts_t *o, json_t *root) {
  json_t *arr = json_array();
  printf(
      "\nRound trips, 64 B, one at a time (median over rounds of each round's percentiles):\n\n");
  printf("%-13s %10s %10s %9s  %s\n", "system", "p50 us", "p99 us", "samples", "what");
  double p50[RTT_NSYS], p99[RTT_NSYS];
  for (int k = 0; k < RTT_NSYS; k++) {
    p50[k] = MED(R[k], o->rounds, p50);
    p99[k] = MED(R[k], o->rounds, p99);
    if (!(o->sys_mask & (1u << RTT_SYS[k]))) continue;
    double bad = 0;
    for (int r = 0; r < o->rounds; r++)
      bad += R[k][r].bad;
    printf("%-13s %10.1f %10.1f %9.0f  %s%s\n", RTT_NAME[k], p50[k], p99[k],
           MED(R[k], o->rounds, n), RTT_DESC[k], bad ? "  (MISMATCHED REPLIES)" : "");
    json_array_append_new(arr, json_pack("{s:s, s:s, s:I, s:o, s:o, s:o}", "system", RTT_NAME[k],
                                         "description", RTT_DESC[k], "size", (json_int_t)64,
                                         "p50_us", jnum(p50[k]), "p99_us", jnum(p99[k]), "samples",
                                         jnum(MED(R[k], o->rounds, n))));
  }
  add_verdict("64 B RTT p50 bftnet / raw TCP", p50[RTT_BFTNET] / p50[RTT_TCP], 1.2, 1);
  add_verdict("64 B RTT p99 bftnet / ZeroMQ CURVE", p99[RTT_BFTNET] / p99[RTT_ZMQ_CURVE], 1.0, 1);
  add_verdict("64 B RTT p50 bftnet-busy / raw TCP", p50[RTT_BFTNET_BUSY] / p50[RTT_TCP], 1.2, 1);
  add_verdict("64 B RTT p50 bftnet-cb / raw TCP", p50[RTT_BFTNET_CB] / p50[RTT_TCP], 1.2, 1);
  add_verdict("64 B RTT p99 bftnet-cb / ZeroMQ CURVE", p99[RTT_BFTNET_CB] / p99[RTT_ZMQ_CURVE], 1.0, 1);
  add_verdict("64 B RTT p99 bftnet-busy / ZeroMQ CURVE", p99[RTT_BFTNET_BUSY] / p99[RTT_ZMQ_CURVE], 1.0, 1);
  json_object_set_new(root, "rtt", arr);
}

static void report_bcast(const opts_t *o, json_t *root) {
  double s = MED(BC, o->rounds, send_ns), b = MED(BC, o->rounds, bcast_ns),
         ratio = MED(BC, o->rounds, ratio);
  double sp = MED(BC, o->rounds, send_proc), bp = MED(BC, o->rounds, bcast_proc),
         pr = MED(BC, o->rounds, proc_ratio);
  printf("\nBroadcast, 128 B, one node and 6 peers (default ring 4096), CPU per call:\n\n");
  printf(
      "  calling thread:  bftnet_send %.0f ns   bftnet_broadcast (6 peers) %.0f ns   ratio %.2f (the median of\n"
      "                   each round's ratio)\n",
      s, b, ratio);
  printf("  sender process, until flushed (framing, Noise, writes for every copy):\n"
         "                   bftnet_send %.0f ns   bftnet_broadcast (6 peers) %.0f ns   ratio %.2f "
         "(%.2f per copy)\n",
         sp, bp, pr, pr / 6);
  add_verdict("broadcast(6) / send, caller CPU", ratio, 1.3, 1);
  json_object_set_new(root, "broadcast",
                      json_pack("{s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "size",
                                (json_int_t)128, "peers", (json_int_t)(BCAST_NODES - 1),
                                "send_caller_ns", jnum(s), "broadcast_caller_ns", jnum(b),
                                "caller_ratio", jnum(ratio), "send_process_ns", jnum(sp),
                                "broadcast_process_ns", jnum(bp), "process_ratio", jnum(pr),
                                "drops", jnum(MED(BC, o->rounds, drops))));
}

static void report_a2a(const opts_t *o, json_t *root) {
  json_t *arr = json_array();
  if (o->na2a) {
    printf("\nAll-to-all, %d B, every node bftnet_broadcasts to all others (one process per "
           "node):\n\n",
           A2A_SIZE);
    printf("%4s %14s %10s %10s %10s | %12s %14s %9s %9s %9s %8s\n", "N", "max msgs/s", "CPU s/M",
           "p50 us", "p99 us", "50% offered", "delivered/s", "p50 us", "p99 us", "max us", "drops");
  }
  for (int ai = 0; ai < o->na2a; ai++) {
    a2a_res_t *a = A[ai];
    int n = o->rounds;
    double mx = MED(a, n, max_mps), off = MED(a, n, offered), got = MED(a, n, achieved);
    char x[32], y[32], z[32];
    printf("%4d %14s %10.3f %10.0f %10.0f | %12s %14s %9.0f %9.0f %9.0f %8.0f\n", o->a2a[ai],
           human(mx, x, sizeof x), MED(a, n, max_cpu_m), MED(a, n, max_p50), MED(a, n, max_p99),
           human(off, y, sizeof y), human(got, z, sizeof z), MED(a, n, p50), MED(a, n, p99),
           MED(a, n, pmax), MED(a, n, drops1));
    json_array_append_new(
        arr,
        json_pack("{s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "nodes",
                  (json_int_t)o->a2a[ai], "size", (json_int_t)A2A_SIZE, "max_msgs_per_s", jnum(mx),
                  "max_cpu_s_per_million", jnum(MED(a, n, max_cpu_m)), "max_p50_us",
                  jnum(MED(a, n, max_p50)), "max_p99_us", jnum(MED(a, n, max_p99)),
                  "rate_per_node_bcasts_per_s", jnum(MED(a, n, rate)), "offered_msgs_per_s",
                  jnum(off), "delivered_msgs_per_s", jnum(got), "p50_us", jnum(MED(a, n, p50)),
                  "p99_us", jnum(MED(a, n, p99)), "max_us", jnum(MED(a, n, pmax)), "drops_at_50",
                  jnum(MED(a, n, drops1)), "order_violations", jnum(MED(a, n, bad))));
  }
  json_object_set_new(root, "all_to_all", arr);
}

static void report_memory(const opts_t *o, json_t *root) {
  bftnet_config_t cfg;
  bftnet_config_init(&cfg);
  double fixed = SOAK.ok ? SOAK.rss_setup - SOAK.rss_start : NAN;
  json_t *bounds = json_array();
  printf("\nMemory for a dead peer: ring_capacity x message footprint (up to 64 KiB: the buffer\n"
         "pool's size class, 64 B steps to 1 KiB then <= 12.5 %% over, + the 8 B ring slot; size + %d B\n"
         "above) + retransmit window (yamux_window) + fixed + the node's buffer cache (4 MiB, once per\n"
         "node).\n",
         MSG_OVERHEAD);
  printf("Defaults: ring_capacity %u, yamux_window %.1f MiB; fixed (one node, measured: RSS after "
         "bftnet_new,\n"
         "listen and connect minus before) %.1f MiB.\n\n",
         cfg.ring_capacity, cfg.yamux_window / MIB, fixed / MIB);
  printf("%7s %12s %12s %12s\n", "size", "ring MiB", "window MiB", "bound MiB");
  size_t sizes[MAX_SIZES + 1];
  int n = 0;
  for (int i = 0; i < o->nsizes; i++)
    sizes[n++] = o->sizes[i];
  if (size_index(o, SOAK_SIZE) < 0) sizes[n++] = SOAK_SIZE;
  for (int i = 0; i < n; i++) {
    double ring = (double)cfg.ring_capacity * msg_footprint(sizes[i]);
    double bound = ring + cfg.yamux_window + (isnan(fixed) ? 0 : fixed) + POOL_CACHE;
    printf("%7zu %12.2f %12.2f %12.2f\n", sizes[i], ring / MIB, cfg.yamux_window / MIB,
           bound / MIB);
    json_array_append_new(bounds, json_pack("{s:I, s:o, s:o, s:o}", "size", (json_int_t)sizes[i],
                                            "ring_bytes", jnum(ring), "window_bytes",
                                            jnum(cfg.yamux_window), "bound_bytes", jnum(bound)));
  }
  json_t *mem =
      json_pack("{s:I, s:I, s:I, s:o, s:o}", "ring_capacity", (json_int_t)cfg.ring_capacity,
                "yamux_window", (json_int_t)cfg.yamux_window, "per_message_overhead",
                (json_int_t)MSG_OVERHEAD, "fixed_bytes", jnum(fixed), "bounds", bounds);
  if (o->soak > 0 && SOAK.ok) {
    double bound = SOAK.rss_setup + SOAK.ring * msg_footprint(SOAK_SIZE) + cfg.yamux_window + POOL_CACHE;
    double slack = fmax(MIB, 0.02 * SOAK.first);
    int flat = SOAK.last - SOAK.first <= slack;
    int within = SOAK.max <= bound;
    printf("\nMemory soak: %.0f s flat out (%zu B, %.0f msgs, %.0f dropped) to a member that never "
           "started:\n"
           "  RSS first %.2f MiB, last %.2f MiB, max %.2f MiB over %.0f samples (1/s); before "
           "sending %.2f MiB.\n"
           "  flat (last - first <= %.2f MiB): %s;  max within the bound (%.2f MiB): %s\n",
           o->soak, (size_t)SOAK_SIZE, SOAK.sent, SOAK.drops, SOAK.first / MIB, SOAK.last / MIB,
           SOAK.max / MIB, SOAK.samples, SOAK.rss_setup / MIB, slack / MIB, flat ? "yes" : "NO",
           bound / MIB, within ? "yes" : "NO");
    json_t *series = json_array();
    uint32_t k = atomic_load(&bb_shm->nsamples);
    for (uint32_t i = 0; i < k; i++)
      json_array_append_new(series, json_integer((json_int_t)bb_shm->samples[i]));
    json_object_set_new(mem, "soak",
                        json_pack("{s:f, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:b, s:b, s:o}",
                                  "seconds", o->soak, "size", (json_int_t)SOAK_SIZE, "sent",
                                  jnum(SOAK.sent), "dropped", jnum(SOAK.drops),
                                  "rss_before_sending", jnum(SOAK.rss_setup), "rss_first",
                                  jnum(SOAK.first), "rss_last", jnum(SOAK.last), "rss_max",
                                  jnum(SOAK.max), "bound_bytes", jnum(bound), "flat", flat,
                                  "within_bound", within, "rss_series", series));
  } else {
    printf("\n(memory soak off: --memory-soak SECONDS runs it)\n");
  }
  json_object_set_new(root, "memory", mem);
}

static void report_verdicts(json_t *root) {
  json_t *arr = json_array();
  printf("\nTargets (issue 6; printed, not asserted). Margin: headroom (+) or shortfall (-) "
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

/* ------------------------------------------------------------ options */

static void usage(FILE *f) {
  fprintf(f,
          "usage: bftnet-bench [--quick] [--sizes LIST] [--seconds S] [--rounds K] [--json FILE]\n"
          "                    [--all-to-all LIST|none] [--memory-soak SECONDS] [--flood]\n"
          "                    [--systems LIST] [--sections LIST]\n"
          "  --quick            short windows (0.5 s + 0.25 s warm-up per cell), no all-to-all "
          "unless asked\n"
          "  --sizes LIST       message sizes in bytes (default 64,128,1024,16384)\n"
          "  --seconds S        measurement window per cell (default 1.0)\n"
          "  --rounds K         rounds, medians reported (default 3, at most %d)\n"
          "  --json FILE        also write the results as JSON\n"
          "  --all-to-all LIST  node counts for the all-to-all run (default 4,7; 'none' skips it)\n"
          "  --memory-soak S    send flat out to a dead member for S seconds, sampling RSS "
          "(default off)\n"
          "  --flood            bftnet senders do not nap on a half-full ring (drops instead)\n"
          "  --systems LIST     bftnet,bftnet-plain,zmq-curve,zmq,tcp-aead,tcp,tcp-aead-sod,bftnet-cb (default all)\n"
          "  --sections LIST    throughput,rtt,broadcast,all-to-all,memory (default all)\n",
          MAX_ROUNDS);
}

static int parse_list(const char *s, long *out, int max) {
  int n = 0;
  char *dup = strdup(s), *save = NULL;
  for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    char *end;
    long v = strtol(t, &end, 10);
    if (*end || n >= max) {
      free(dup);
      return -1;
    }
    out[n++] = v;
  }
  free(dup);
  return n;
}

static int parse_names(const char *s, const char *const *names, int count, unsigned *mask) {
  char *dup = strdup(s), *save = NULL;
  *mask = 0;
  for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    int k = 0;
    while (k < count && strcmp(t, names[k]))
      k++;
    if (k == count) {
      fprintf(stderr, "bftnet-bench: unknown name '%s'\n", t);
      free(dup);
      return -1;
    }
    *mask |= 1u << k;
  }
  free(dup);
  return 0;
}

static int finish_opts(opts_t *o, const char *sizes, const char *a2a, double seconds);

static int parse_opts(int argc, char **argv, opts_t *o) {
  static const struct option lo[] = {
      {"quick", 0, 0, 'q'},       {"sizes", 1, 0, 's'}, {"seconds", 1, 0, 'S'},
      {"rounds", 1, 0, 'r'},      {"json", 1, 0, 'j'},  {"all-to-all", 1, 0, 'a'},
      {"memory-soak", 1, 0, 'm'}, {"flood", 0, 0, 'f'}, {"systems", 1, 0, 'y'},
      {"sections", 1, 0, 'x'},    {"help", 0, 0, 'h'},  {0, 0, 0, 0}};
  static const char *const sec_names[] = {"throughput", "rtt", "broadcast", "all-to-all", "memory"};
  const char *sizes = NULL, *a2a = NULL;
  double seconds = NAN;
  memset(o, 0, sizeof *o);
  o->rounds = 3;
  o->sys_mask = (1u << BB_NSYS) - 1;
  o->sections = SEC_ALL;
  int c;
  while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    char *end = NULL;
    switch (c) {
    case 'q':
      o->quick = 1;
      break;
    case 's':
      sizes = optarg;
      break;
    case 'S':
      seconds = strtod(optarg, &end);
      if (*end || !(seconds >= 0.1 && seconds <= 60)) return -1;
      break;
    case 'r':
      o->rounds = (int)strtol(optarg, &end, 10);
      if (*end || o->rounds < 1 || o->rounds > MAX_ROUNDS) return -1;
      break;
    case 'j':
      o->json = optarg;
      break;
    case 'a':
      a2a = optarg;
      break;
    case 'm':
      o->soak = strtod(optarg, &end);
      if (*end || !(o->soak >= 0 && o->soak <= 3600)) return -1;
      break;
    case 'f':
      o->flood = 1;
      break;
    case 'y':
      if (parse_names(optarg, SYS_NAME, BB_NSYS, &o->sys_mask)) return -1;
      break;
    case 'x': {
      unsigned m;
      if (parse_names(optarg, sec_names, 5, &m)) return -1;
      o->sections = (int)m;
      break;
    }
    case 'h':
      usage(stdout);
      exit(0);
    default:
      return -1;
    }
  }
  if (optind != argc) return -1;
  return finish_opts(o, sizes, a2a, seconds);
}

/* The options' values that depend on each other, and the lists. */
static int finish_opts(opts_t *o, const char *sizes, const char *a2a, double seconds) {
  long v[MAX_SIZES];
  int n = parse_list(sizes ? sizes : "64,128,1024,16384", v, MAX_SIZES);
  if (n < 1) return -1;
  for (int i = 0; i < n; i++) {
    if (v[i] < 16 || v[i] > (1 << 20))
      return -1; /* 16: room for the sequence number and a timestamp */
    o->sizes[i] = (size_t)v[i];
  }
  o->nsizes = n;
  if (a2a && strcmp(a2a, "none") == 0) a2a = "";
  if (!a2a) a2a = o->quick ? "" : "4,7";
  long an[MAX_A2A];
  int na = *a2a ? parse_list(a2a, an, MAX_A2A) : 0;
  if (na < 0) return -1;
  for (int i = 0; i < na; i++) {
    if (an[i] < 2 || an[i] > BB_MAX_NODES) return -1;
    o->a2a[i] = (int)an[i];
  }
  o->na2a = (o->sections & SEC_A2A) ? na : 0;
  o->seconds = isnan(seconds) ? (o->quick ? 0.5 : 1.0) : seconds;
  o->warm = o->quick ? 0.25 : 0.5;
  return 0;
}

/* ---------------------------------------------------------------- main */

static void setup_keys(void) {
  randombytes_buf(BASE.aead_key, sizeof BASE.aead_key);
  if (zmq_curve_keypair(BASE.zsrv_pub, BASE.zsrv_sec) ||
      zmq_curve_keypair(BASE.zcli_pub, BASE.zcli_sec)) {
    fprintf(stderr, "bftnet-bench: zmq_curve_keypair failed (libzmq without CURVE?)\n");
    exit(1);
  }
}

static json_t *json_header(const opts_t *o, const char *date) {
  struct utsname u;
  uname(&u);
  int zmaj, zmin, zpat;
  zmq_version(&zmaj, &zmin, &zpat);
  char zv[32];
  snprintf(zv, sizeof zv, "%d.%d.%d", zmaj, zmin, zpat);
  json_t *sizes = json_array(), *a2a = json_array();
  for (int i = 0; i < o->nsizes; i++)
    json_array_append_new(sizes, json_integer((json_int_t)o->sizes[i]));
  for (int i = 0; i < o->na2a; i++)
    json_array_append_new(a2a, json_integer(o->a2a[i]));
  return json_pack(
      "{s:s, s:s, s:{s:s, s:s, s:I, s:s, s:s, s:s}, s:{s:b, s:o, s:f, s:f, s:i, s:b, s:o, s:f}}",
      "schema", "bftnet-bench/1", "date", date, "host", "kernel", u.release, "machine", u.machine,
      "cpus", (json_int_t)sysconf(_SC_NPROCESSORS_ONLN), "libzmq", zv, "libsodium",
      sodium_version_string(), "aead", bn_aead_best.name, "config", "quick", o->quick, "sizes", sizes, "seconds", o->seconds,
      "warmup_seconds", o->warm, "rounds", o->rounds, "flood", o->flood, "all_to_all", a2a,
      "memory_soak_seconds", o->soak);
}

/* Every section, round by round (interleaved, so that slow minutes of the
 * VM hit every system alike). */
static void measure_all(const opts_t *o) {
  for (int r = 0; r < o->rounds; r++) {
    if (o->sections & SEC_TPUT) {
      fprintf(stderr, "throughput, round %d/%d\n", r + 1, o->rounds);
      /* Each round starts one system further on, so no system always runs
       * first (right after the previous size) or right after the same one. */
      for (int s = 0; s < o->nsizes; s++)
        for (int i = 0; i < BB_NSYS; i++) {
          int y = (i + r) % BB_NSYS;
          if (o->sys_mask & (1u << y)) run_tput(o, s, y, r);
        }
    }
    if (o->sections & SEC_RTT) {
      fprintf(stderr, "round trips, round %d/%d\n", r + 1, o->rounds);
      for (int i = 0; i < RTT_NSYS; i++) {
        int k = (i + r) % RTT_NSYS;
        if (o->sys_mask & (1u << RTT_SYS[k])) run_rtt(o, k, r);
      }
    }
    if ((o->sections & SEC_BCAST) && (o->sys_mask & (1u << BB_BFTNET))) {
      fprintf(stderr, "broadcast, round %d/%d\n", r + 1, o->rounds);
      run_bcast(o, r);
    }
    for (int ai = 0; ai < o->na2a; ai++) {
      fprintf(stderr, "all-to-all %d, round %d/%d\n", o->a2a[ai], r + 1, o->rounds);
      run_a2a(o, ai, r);
    }
  }
  if (o->sections & SEC_MEM) {
    fprintf(stderr, "memory%s\n", o->soak > 0 ? " soak" : " (fixed overhead)");
    run_soak(o);
  }
}

/* The tables on stdout, the same into root. */
static void report_all(const opts_t *o, json_t *root) {
  if (o->sections & SEC_TPUT) {
    report_tput(o, root);
    report_ratios(o, root);
  } else {
    json_object_set_new(root, "throughput", json_array());
    json_object_set_new(root, "ratios", json_array());
    json_object_set_new(root, "migration", json_array());
  }
  if (o->sections & SEC_RTT)
    report_rtt(o, root);
  else
    json_object_set_new(root, "rtt", json_array());
  if (o->sections & SEC_BCAST)
    report_bcast(o, root);
  else
    json_object_set_new(root, "broadcast", json_null());
  report_a2a(o, root);
  if (o->sections & SEC_MEM)
    report_memory(o, root);
  else
    json_object_set_new(root, "memory", json_null());
  report_verdicts(root);
}

int main(int argc, char **argv) {
  opts_t o;
  if (parse_opts(argc, argv, &o)) {
    usage(stderr);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (sodium_init() < 0) return 1;
  bb_shm = mmap(NULL, sizeof *bb_shm, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (bb_shm == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  setup_keys();
  FAIL_LIST = json_array();
  double t_start = bb_now();
  char date[64];
  time_t now = time(NULL);
  strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S %Z", localtime(&now));
  printf("bftnet-bench  %s  %ld CPUs  rounds %d  window %.2f s  sizes", date,
         sysconf(_SC_NPROCESSORS_ONLN), o.rounds, o.seconds);
  for (int i = 0; i < o.nsizes; i++)
    printf(" %zu", o.sizes[i]);
  printf("%s\n", o.flood ? "  (--flood)" : "");

  measure_all(&o);
  json_t *root = json_header(&o, date);
  report_all(&o, root);
  double elapsed = bb_now() - t_start;
  printf("\n%d measurement(s) failed; %.0f s in all.\n", failures, elapsed);
  json_object_set_new(root, "failures", FAIL_LIST);
  json_object_set_new(root, "elapsed_seconds", json_real(elapsed));
  int rc = failures ? 1 : 0;
  if (o.json && json_dump_file(root, o.json, JSON_INDENT(2) | JSON_REAL_PRECISION(10))) {
    fprintf(stderr, "bftnet-bench: cannot write %s\n", o.json);
    rc = 1;
  }
  json_decref(root);
  munmap(bb_shm, sizeof *bb_shm);
  return rc;
}
