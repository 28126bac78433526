/*
 * bftnet-bench — bftnet against its baselines, in one command and the same
 * run. Every figure is measured on loopback between processes
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

bb_results_t bb_res;
static int failures;
static json_t *FAIL_LIST;
static bb_job_t BASE; /* keys */

#ifndef BFTNET_TOOLS_VERSION /* the project's version, from CMake */
#define BFTNET_TOOLS_VERSION "unknown"
#endif

/* ---------------------------------------------------------- helpers */

static void fail_note(const char *what, const char *err) {
  failures++;
  fprintf(stderr, "bftnet-bench: FAILED %s: %s\n", what, err);
  json_array_append_new(FAIL_LIST, json_pack("{s:s, s:s}", "what", what, "error", err));
}

static uint32_t ring_for(size_t size) {
  uint32_t cap = 1u << 16;
  while (cap > 1024 && (double)cap * (double)size > 64 * BB_MIB)
    cap >>= 1;
  return cap;
}

static bb_job_t job_for(const bb_opts_t *o, int sys, size_t size, int round) {
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

static void run_tput(const bb_opts_t *o, int s, int sys, int round) {
  static const bb_role_fn roles[BB_NSYS][2] = {
      {bb_bftnet_sender, bb_bftnet_receiver}, {bb_bftnet_sender, bb_bftnet_receiver},
      {bb_zmq_sender, bb_zmq_receiver},       {bb_zmq_sender, bb_zmq_receiver},
      {bb_tcp_sender, bb_tcp_receiver},       {bb_tcp_sender, bb_tcp_receiver},
      {bb_tcp_sender, bb_tcp_receiver},       {bb_bftnet_sender, bb_bftnet_cb_receiver}};
  bb_job_t job = job_for(o, sys, o->sizes[s], round);
  char err[300] = "";
  bb_tput_t *t = &bb_res.tput[s][sys][round];
  memset(t, 0, sizeof *t);
  if (bb_run(roles[sys], 2, &job, BB_PLAN_WINDOW, NULL, err, sizeof err)) {
    char what[96];
    snprintf(what, sizeof what, "throughput %s %zu B round %d", bb_sys_name[sys], o->sizes[s],
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
    snprintf(what, sizeof what, "throughput %s %zu B round %d", bb_sys_name[sys], o->sizes[s],
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
          o->sizes[s], bb_sys_name[sys], bb_human(t->mps, h, sizeof h), t->cpu_m, t->drops,
          t->bad ? "  ORDER VIOLATIONS" : "");
}

/* -------------------------------------------------------------- rtt */

static void run_rtt(const bb_opts_t *o, int k, int round) {
  static const bb_role_fn roles[BB_RTT_NSYS][2] = {{bb_bftnet_pinger, bb_bftnet_echo},
                                                   {bb_bftnet_pinger, bb_bftnet_echo},
                                                   {bb_bftnet_pinger, bb_bftnet_echo},
                                                   {bb_tcp_pinger, bb_tcp_echo},
                                                   {bb_zmq_req, bb_zmq_rep},
                                                   {bb_zmq_req, bb_zmq_rep},
                                                   {bb_bftnet_cb_pinger, bb_bftnet_cb_echo}};
  bb_job_t job = job_for(o, bb_rtt_sys[k], 64, round);
  if (k == BB_RTT_BFTNET_BUSY) job.busy_poll_us = BB_BUSY_POLL_US;
  char err[300] = "";
  bb_rtt_t *r = &bb_res.rtt[k][round];
  memset(r, 0, sizeof *r);
  if (bb_run(roles[k], 2, &job, BB_PLAN_UNTIL_DONE, NULL, err, sizeof err)) {
    char what[64];
    snprintf(what, sizeof what, "round trip %s round %d", bb_rtt_name[k], round + 1);
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
          round + 1, bb_rtt_name[k], r->p50, r->p99, n);
}

/* --------------------------------------------------------- broadcast */

static void run_bcast(const bb_opts_t *o, int round) {
  const bb_role_fn roles[2] = {bb_bcast_sender, bb_bcast_sinks};
  bb_job_t job = job_for(o, BB_BFTNET, 128, round);
  job.nnodes = BB_BCAST_NODES;
  job.ring_capacity = 4096;
  char err[300] = "";
  bb_bcast_t *b = &bb_res.bcast[round];
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

static void run_a2a(const bb_opts_t *o, int ai, int round) {
  bb_role_fn roles[BB_MAX_NODES];
  int n = o->a2a[ai];
  for (int i = 0; i < n; i++)
    roles[i] = bb_a2a_node;
  bb_job_t job = job_for(o, BB_BFTNET, BB_A2A_SIZE, round);
  job.nnodes = n;
  job.ring_capacity = 4096;
  job.deadline = 2 * (o->warm + o->seconds) + 40;
  A2A_N = n;
  char err[300] = "";
  bb_a2a_t *a = &bb_res.a2a[ai][round];
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
      round + 1, n, bb_human(a->max_mps, x, sizeof x), bb_human(a->achieved, y, sizeof y), a->p50,
      a->p99);
}

/* ------------------------------------------------------------ memory */

static void run_soak(const bb_opts_t *o) {
  const bb_role_fn roles[1] = {bb_soak_node};
  bb_job_t job = job_for(o, BB_BFTNET, BB_SOAK_SIZE, 0);
  job.ring_capacity = 4096; /* the default configuration */
  job.soak_seconds = o->soak;
  job.deadline = o->soak + 30;
  char err[300] = "";
  memset(&bb_res.soak, 0, sizeof bb_res.soak);
  if (bb_run(roles, 1, &job, BB_PLAN_UNTIL_DONE, NULL, err, sizeof err)) {
    fail_note("memory", err);
    return;
  }
  const double *res = bb_shm->side[0].res;
  bb_res.soak.rss_start = res[BB_RES_SOAK_RSS_START];
  bb_res.soak.rss_setup = res[BB_RES_SOAK_RSS_SETUP];
  bb_res.soak.first = res[BB_RES_SOAK_FIRST];
  bb_res.soak.last = res[BB_RES_SOAK_LAST];
  bb_res.soak.max = res[BB_RES_SOAK_MAX];
  bb_res.soak.samples = res[BB_RES_SOAK_SAMPLES];
  bb_res.soak.sent = res[BB_RES_SOAK_SENT];
  bb_res.soak.drops = res[BB_RES_SOAK_DROPS];
  bb_res.soak.ring = res[BB_RES_SOAK_RING];
  bb_res.soak.ok = 1;
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
          "  --systems LIST     "
          "bftnet,bftnet-plain,zmq-curve,zmq,tcp-aead,tcp,tcp-aead-sod,bftnet-cb (default all)\n"
          "  --sections LIST    throughput,rtt,broadcast,all-to-all,memory (default all)\n"
          "  -h, --help         print this help and exit\n"
          "  --version          print the version and exit\n"
          "Exit status: 0 done, 1 a measurement failed (the report says which), 2 bad usage.\n",
          BB_MAX_ROUNDS);
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

static int finish_opts(bb_opts_t *o, const char *sizes, const char *a2a, double seconds);

static int parse_opts(int argc, char **argv, bb_opts_t *o) {
  static const struct option lo[] = {
      {"quick", 0, 0, 'q'},       {"sizes", 1, 0, 's'}, {"seconds", 1, 0, 'S'},
      {"rounds", 1, 0, 'r'},      {"json", 1, 0, 'j'},  {"all-to-all", 1, 0, 'a'},
      {"memory-soak", 1, 0, 'm'}, {"flood", 0, 0, 'f'}, {"systems", 1, 0, 'y'},
      {"sections", 1, 0, 'x'},    {"help", 0, 0, 'h'},  {"version", 0, 0, 'V'},
      {0, 0, 0, 0}};
  static const char *const sec_names[] = {"throughput", "rtt", "broadcast", "all-to-all", "memory"};
  const char *sizes = NULL, *a2a = NULL;
  double seconds = NAN;
  memset(o, 0, sizeof *o);
  o->rounds = 3;
  o->sys_mask = (1u << BB_NSYS) - 1;
  o->sections = BB_SEC_ALL;
  int c;
  opterr = 0; /* said below, by name */
  while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
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
      if (*end || o->rounds < 1 || o->rounds > BB_MAX_ROUNDS) return -1;
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
      if (parse_names(optarg, bb_sys_name, BB_NSYS, &o->sys_mask)) return -1;
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
    case 'V':
      printf("bftnet-bench %s\n", BFTNET_TOOLS_VERSION);
      exit(0);
    case ':':
      fprintf(stderr, "bftnet-bench: option '%s' needs a value\n", argv[optind - 1]);
      return -1;
    default:
      fprintf(stderr, "bftnet-bench: unknown option '%s'\n", argv[optind - 1]);
      return -1;
    }
  }
  if (optind != argc) {
    fprintf(stderr, "bftnet-bench: unexpected argument '%s'\n", argv[optind]);
    return -1;
  }
  return finish_opts(o, sizes, a2a, seconds);
}

/* The options' values that depend on each other, and the lists. */
static int finish_opts(bb_opts_t *o, const char *sizes, const char *a2a, double seconds) {
  long v[BB_MAX_SIZES];
  int n = parse_list(sizes ? sizes : "64,128,1024,16384", v, BB_MAX_SIZES);
  if (n < 1) return -1;
  for (int i = 0; i < n; i++) {
    if (v[i] < 16 || v[i] > (1 << 20))
      return -1; /* 16: room for the sequence number and a timestamp */
    o->sizes[i] = (size_t)v[i];
  }
  o->nsizes = n;
  if (a2a && strcmp(a2a, "none") == 0) a2a = "";
  if (!a2a) a2a = o->quick ? "" : "4,7";
  long an[BB_MAX_A2A];
  int na = *a2a ? parse_list(a2a, an, BB_MAX_A2A) : 0;
  if (na < 0) return -1;
  for (int i = 0; i < na; i++) {
    if (an[i] < 2 || an[i] > BB_MAX_NODES) return -1;
    o->a2a[i] = (int)an[i];
  }
  o->na2a = (o->sections & BB_SEC_A2A) ? na : 0;
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

static json_t *json_header(const bb_opts_t *o, const char *date) {
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
static void measure_all(const bb_opts_t *o) {
  for (int r = 0; r < o->rounds; r++) {
    if (o->sections & BB_SEC_TPUT) {
      fprintf(stderr, "throughput, round %d/%d\n", r + 1, o->rounds);
      /* Each round starts one system further on, so no system always runs
       * first (right after the previous size) or right after the same one. */
      for (int s = 0; s < o->nsizes; s++)
        for (int i = 0; i < BB_NSYS; i++) {
          int y = (i + r) % BB_NSYS;
          if (o->sys_mask & (1u << y)) run_tput(o, s, y, r);
        }
    }
    if (o->sections & BB_SEC_RTT) {
      fprintf(stderr, "round trips, round %d/%d\n", r + 1, o->rounds);
      for (int i = 0; i < BB_RTT_NSYS; i++) {
        int k = (i + r) % BB_RTT_NSYS;
        if (o->sys_mask & (1u << bb_rtt_sys[k])) run_rtt(o, k, r);
      }
    }
    if ((o->sections & BB_SEC_BCAST) && (o->sys_mask & (1u << BB_BFTNET))) {
      fprintf(stderr, "broadcast, round %d/%d\n", r + 1, o->rounds);
      run_bcast(o, r);
    }
    for (int ai = 0; ai < o->na2a; ai++) {
      fprintf(stderr, "all-to-all %d, round %d/%d\n", o->a2a[ai], r + 1, o->rounds);
      run_a2a(o, ai, r);
    }
  }
  if (o->sections & BB_SEC_MEM) {
    fprintf(stderr, "memory%s\n", o->soak > 0 ? " soak" : " (fixed overhead)");
    run_soak(o);
  }
}

int main(int argc, char **argv) {
  bb_opts_t o;
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
  bb_report_all(&o, root);
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
