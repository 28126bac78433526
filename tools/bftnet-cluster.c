/*
 * bftnet-cluster — N bftnet-replica processes on loopback, a fault-injecting
 * proxy on every link, faults on a schedule, live progress, and a report
 * that cross-checks every ordered pair of replicas.
 *
 *   bftnet-cluster --replicas N [--duration S] [--rate R] [--size B]
 *                  [--faults SPEC] [--out DIR] [--seed N] [--bin-dir DIR]
 *                  [--stats-ms MS] [--drain-ms MS] [--two-paths] [--no-plot]
 *
 * Layout. Replica i ("ri") listens on 127.0.0.1:Li (and Li' with two
 * paths). For every ordered pair (i, j) and path p an in-process
 * fault_proxy P(i->j, p) listens on its own port and forwards to Lj (Lj').
 * Replica i's membership file lists j at P(i->j, 0) [, P(i->j, 1)], so
 * every byte between two replicas crosses a proxy the cluster controls.
 * Everything — proxies, child processes, their stdout pipes, the fault
 * timeline, the progress tick — runs on one libuv loop in one thread.
 *
 * Time zero is the moment every initial replica has printed its
 * `membership` line (listening, membership loaded, sending). Faults count
 * from it (docs/FAULTS.md); --duration ends the run there + S. Then every
 * replica gets SIGTERM at once, drains and writes its report
 * (docs/REPORT.md); the cluster reads them, cross-checks every pair and
 * writes DIR/report.json, DIR/timeseries.csv and DIR/plot.png.
 *
 * --netns (Linux, root): each replica runs in a network namespace of its
 * own, on a bridge in the cluster's namespace where the proxies listen
 * (tools/lib/cluster_netns.h); partitions and failovers take the
 * replica's links down instead of making proxies refuse.
 *
 * Exit status: 0 integrity ok, 1 integrity FAILED, 2 usage or SPEC error,
 * 3 runtime error (replicas did not start, files could not be written),
 * 4 --netns cannot run here (not root, no `ip`, no namespaces).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "bftnet.h"
#include "cluster_netns.h"
#include "cluster_plan.h"
#include "cluster_stats.h"
#include "fault_proxy.h"
#include "fault_spec.h"

extern char **environ;

#define CL_MAX_REPLICAS     16     /* --replicas */
#define CL_MAX_SLOTS        24     /* initial replicas + those a members fault adds */
#define CL_PATHS_MAX        2      /* addresses per replica (failover) */
#define CL_PATH             1024   /* longest path we build */
#define CL_PING_TIMEOUT_MS  10000u /* bftnet's default ping_timeout_ms (bftnet-replica keeps it) */
#define CL_START_TIMEOUT_MS 15000u /* initial replicas: spawn to membership line */
#define CL_MEMBERS_WAIT_MS  5000u  /* members fault: wait for the added replica */
#define CL_EXIT_GRACE_MS    5000u  /* after SIGTERM: drain_ms + this, then SIGKILL */
#define CL_SAFETY_S         60     /* replicas' own --duration: run end + this */
#define CL_LINE_MAX         (1u << 20)
#define CL_WIN_PARTS        16     /* stats lines per replica per progress tick */
#define CL_SERIES_MAX       100000 /* plot points per replica */
#define CL_RETRY_MAX        5      /* restart attempts when the port is taken */
#define CL_RETRY_MS         200
#define CL_MAX_INCS         64   /* incarnations per replica whose start time is kept */
#define CL_NETNS_PORT       9000 /* --netns: replicas listen on 10.77.p.x:9000+p */

/* ---------------------------------------------------------------- types */

typedef struct cl_opts {
  unsigned replicas;
  double duration_s, rate;
  unsigned size, stats_ms, drain_ms;
  const char *faults, *out, *bin_dir;
  uint64_t seed;
  bool seed_set, two_paths, no_plot, netns;
} cl_opts_t;

typedef struct cl_replica cl_replica_t;

/* One process: a replica's incarnation. Freed once both handles closed. */
typedef struct cl_inc {
  uv_process_t proc;
  uv_pipe_t out;
  cl_replica_t *r;
  int id, handles;
  bool exited, listening, loaded, stop_sent, killed;
  int64_t exit_status;
  int term_signal;
  char *buf; /* the stdout line being assembled */
  size_t len, cap;
  bool overflow;
} cl_inc_t;

/* R's counts for a restarted sender at its last restart (cluster_pair_in_t). */
typedef struct cl_base {
  bool valid, exact;
  uint64_t delivered, duplicates, reorders;
} cl_base_t;

typedef struct cl_point {
  double t, rate, p50, p99;
  int inc;
} cl_point_t;

struct cl_replica {
  int idx;
  char name[16];
  char peer_id[BFTNET_PEER_ID_MAX];
  char key_path[CL_PATH], members_path[CL_PATH], report_path[CL_PATH], log_path[CL_PATH],
      lines_path[CL_PATH];
  uint16_t port[CL_PATHS_MAX];
  cl_inc_t *inc; /* current incarnation, until its handles closed */
  int incarnations, kills, restarts, retries;
  bool ever_started;
  /* When each incarnation that loaded its membership (and so sent) did,
   * ms since time zero (negative: before it); n_loaded of them. */
  double loaded_ms[CL_MAX_INCS];
  int n_loaded;
  uint64_t path_bytes_mark;          /* failover: bytes through path 1 when it began */
  uint64_t path_bytes[CL_PATHS_MAX]; /* through the proxies to each address, at the end */
  uv_timer_t retry;
  FILE *lines; /* raw stdout lines */
  json_t *last_stats;
  double last_stats_ms;
  int last_stats_inc;
  double kill_ms;
  uint64_t died_min[CL_MAX_SLOTS]; /* from sender j, received by killed incarnations */
  cl_base_t base[CL_MAX_SLOTS];    /* receiver j's counts for us at our last restart */
  /* progress window (since the last tick) */
  double win_delivered, win_ms;
  cluster_qpart_t win_parts[CL_WIN_PARTS];
  size_t win_n;
  /* cumulative counters: the current incarnation's last line + finished ones */
  uint64_t cur_drops, cur_reconnects, old_drops, old_reconnects;
  int64_t cur_migrations, old_migrations; /* < 0: not in the stats lines */
  cl_point_t *series;
  size_t nseries, cap_series;
  json_t *exits;
  json_t *report; /* the final report, once read */
};

typedef enum cl_phase { PH_STARTING, PH_RUNNING, PH_STOPPING, PH_DONE } cl_phase_t;

typedef struct cl_proxy {
  fault_proxy_t *px;
  int bh, refuse; /* active blackholes / refusals covering it */
  int lat_owner;  /* the latency fault it follows, or -1 */
} cl_proxy_t;

/* A fault's active interval, for the plot. */
typedef struct cl_span {
  double on, off; /* ms; off < 0: until the end */
  int fault;
} cl_span_t;

static struct cl {
  cl_opts_t o;
  uv_loop_t loop;
  fault_t faults[FAULT_SPEC_FAULTS_MAX];
  size_t nfaults;
  cluster_act_t *plan;
  size_t nplan, next_act;
  unsigned ninit, nslots, npaths;
  cl_replica_t rep[CL_MAX_SLOTS];
  cl_proxy_t *px;
  size_t npx, px_open;
  bool lat_active[FAULT_SPEC_FAULTS_MAX];
  bool member[CL_MAX_SLOTS], member_next[CL_MAX_SLOTS];
  size_t mq[FAULT_SPEC_FAULTS_MAX], mq_n;
  bool m_busy;
  int m_wait; /* the added replica the members fault waits for, or -1 */
  cl_phase_t phase;
  bool failed;
  uint64_t t0_ns;
  bool t0_set;
  double stop_ms;
  bool timers_closed;
  uv_timer_t start_timer, tick_timer, plan_timer, end_timer, stop_timer, members_timer;
  uv_signal_t sigint, sigterm;
  int signals;
  json_t *events;
  cl_span_t spans[FAULT_SPEC_FAULTS_MAX * 2];
  size_t nspans;
  FILE *csv;
  cluster_netns_t ns; /* --netns */
  bool quiet;         /* event(): record only, do not print */
  int stop_aborts;    /* stream aborts without loss reported while stopping */
  char replica_bin[CL_PATH];
  char out[CL_PATH];
} cl = {.m_wait = -1};

/* ------------------------------------------------------------- helpers */

__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
}

__attribute__((format(printf, 1, 2))) static void warn_(const char *fmt, ...) {
  va_list ap;
  fflush(stdout);
  fputs("bftnet-cluster: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

/* ms since time zero (since the start of the program before it). */
static double now_ms(void) {
  return (double)(int64_t)(uv_hrtime() - cl.t0_ns) / 1e6;
}

static json_t *j_u64(uint64_t v) {
  return json_integer((json_int_t)(v > INT64_MAX ? INT64_MAX : v));
}

static json_t *j_num(double v) {
  return isnan(v) ? json_null() : json_real(round(v * 10.0) / 10.0);
}

static uint64_t ju(const json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  if (json_is_integer(v)) return json_integer_value(v) < 0 ? 0 : (uint64_t)json_integer_value(v);
  if (json_is_real(v)) return json_real_value(v) < 0 ? 0 : (uint64_t)json_real_value(v);
  return 0;
}

static double jd(const json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  return json_is_number(v) ? json_number_value(v) : NAN;
}

__attribute__((format(printf, 3, 4))) static int path_fmt(char *dst, size_t cap, const char *fmt,
                                                          ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(dst, cap, fmt, ap);
  va_end(ap);
  return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

static int mkdir_p(const char *path) {
  char tmp[CL_PATH];
  if (path_fmt(tmp, sizeof tmp, "%s", path)) return -ENAMETOOLONG;
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -errno;
    *p = '/';
  }
  if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -errno;
  return 0;
}

/* Writes a JSON document atomically: PATH.tmp, then rename. */
static int json_write_atomic(json_t *doc, const char *path, size_t flags) {
  char tmp[CL_PATH + 8];
  if (path_fmt(tmp, sizeof tmp, "%s.tmp", path)) return -ENAMETOOLONG;
  if (json_dump_file(doc, tmp, flags) != 0) {
    int e = errno ? -errno : -EIO;
    unlink(tmp);
    return e;
  }
  if (rename(tmp, path) != 0) {
    int e = -errno;
    unlink(tmp);
    return e;
  }
  return 0;
}

static void fault_text(size_t fi, char *buf, size_t len) {
  fault_format(&cl.faults[fi], buf, len);
}

/* What a fault acts on, for humans: "all links", "r1-r2", "r3", "+r4 -r1". */
static void fault_target(const fault_t *f, char *buf, size_t len) {
  if (f->kind == FAULT_MEMBERS) {
    char a[16] = "", r[16] = "";
    if (f->add != FAULT_NONE) snprintf(a, sizeof a, "+r%d", f->add);
    if (f->remove != FAULT_NONE) snprintf(r, sizeof r, "-r%d", f->remove);
    snprintf(buf, len, "%s%s%s", a, a[0] && r[0] ? " " : "", r);
    return;
  }
  switch (f->scope.kind) {
  case FAULT_SCOPE_ALL:
    snprintf(buf, len, "all links");
    break;
  case FAULT_SCOPE_LINK:
    snprintf(buf, len, "r%d-r%d", f->scope.a, f->scope.b);
    break;
  case FAULT_SCOPE_REPLICA:
    snprintf(buf, len, "r%d", f->scope.a);
    break;
  }
}

/*
 * Records an event: printed as a live line and kept for report.json (and,
 * for faults, the plot). fault < 0: not a fault action.
 */
__attribute__((format(printf, 4, 5))) static void event(const char *kind, int fault,
                                                        const char *action, const char *fmt, ...) {
  char detail[512], target[64] = "", spec[FAULT_FORMAT_MAX] = "";
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  double t = cl.t0_set ? now_ms() : 0;
  if (fault >= 0) {
    fault_target(&cl.faults[fault], target, sizeof target);
    fault_text((size_t)fault, spec, sizeof spec);
    say("[%7.2fs] fault %u %s %s: %s   (%s)", t / 1e3, cl.faults[fault].item, action, target,
        detail, spec);
  } else if (!cl.quiet) {
    say("[%7.2fs] %s", t / 1e3, detail);
  }
  json_t *e = json_pack("{s:s, s:o, s:s, s:s}", "kind", kind, "t_ms", json_real(round(t)), "action",
                        action, "detail", detail);
  if (fault >= 0) {
    json_object_set_new(e, "fault", json_string(spec));
    json_object_set_new(e, "item", json_integer(cl.faults[fault].item));
    json_object_set_new(e, "target", json_string(target));
  }
  json_array_append_new(cl.events, e);
}

/* ------------------------------------------------------------- options */

static void usage(void) {
  fprintf(stderr,
          "usage: bftnet-cluster --replicas N [--duration S] [--rate R] [--size B]\n"
          "                      [--faults SPEC] [--out DIR] [--seed N] [--bin-dir DIR]\n"
          "                      [--stats-ms MS] [--drain-ms MS] [--two-paths] [--no-plot]\n"
          "                      [--netns]\n"
          "  --replicas  replicas started at time zero, 1..%d (named r0, r1, ...)\n"
          "  --duration  seconds from time zero to the stop (default 10)\n"
          "  --rate      messages/s each replica sends to each other member (default 1000;\n"
          "              0 = as fast as the send rings take them)\n"
          "  --size      bytes per message, 16..4194304 (default 64)\n"
          "  --faults    what to inject and when (docs/FAULTS.md), e.g.\n"
          "              'latency:ms=20;jitter=5,blackhole:at=5s;for=3s;link=r0-r1'\n"
          "  --out       output directory (default ./cluster-out)\n"
          "  --seed      seed of the proxies' jitter/slicing RNG (default: from the clock)\n"
          "  --bin-dir   where bftnet-replica is (default: this program's directory)\n"
          "  --stats-ms  the replicas' stats interval (default 1000)\n"
          "  --drain-ms  the replicas' longest drain after SIGTERM (default 3000)\n"
          "  --two-paths every replica listens on two addresses (implied by a failover fault)\n"
          "  --no-plot   skip the gnuplot PNG\n"
          "  --netns     Linux, as root: every replica in its own network namespace on a\n"
          "              bridge; partitions and failovers take links down (ip link)\n"
          "Exit status: 0 integrity ok, 1 integrity FAILED, 2 usage, 3 runtime error,\n"
          "4 --netns cannot run here (not root, no ip, no namespaces).\n"
          "See README.md (Running a cluster), docs/REPORT.md and docs/FAULTS.md.\n",
          CL_MAX_REPLICAS);
  exit(2);
}

static double parse_num(const char *flag, const char *s, double lo, double hi) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !(v >= lo && v <= hi)) {
    fprintf(stderr, "bftnet-cluster: %s: bad number '%s' (want %.15g..%.15g)\n", flag, s, lo, hi);
    usage();
  }
  return v;
}

static void parse_opts(int argc, char **argv, cl_opts_t *o) {
  static const struct option lo[] = {{"replicas", required_argument, 0, 'n'},
                                     {"duration", required_argument, 0, 'd'},
                                     {"rate", required_argument, 0, 'r'},
                                     {"size", required_argument, 0, 's'},
                                     {"faults", required_argument, 0, 'f'},
                                     {"out", required_argument, 0, 'o'},
                                     {"seed", required_argument, 0, 'S'},
                                     {"bin-dir", required_argument, 0, 'b'},
                                     {"stats-ms", required_argument, 0, 'i'},
                                     {"drain-ms", required_argument, 0, 'D'},
                                     {"two-paths", no_argument, 0, 'T'},
                                     {"no-plot", no_argument, 0, 'P'},
                                     {"netns", no_argument, 0, 'N'},
                                     {"help", no_argument, 0, 'h'},
                                     {0, 0, 0, 0}};
  *o = (cl_opts_t){.duration_s = 10,
                   .rate = 1000,
                   .size = 64,
                   .stats_ms = 1000,
                   .drain_ms = 3000,
                   .faults = "",
                   .out = "cluster-out"};
  int c;
  while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    switch (c) {
    case 'n':
      o->replicas = (unsigned)parse_num("--replicas", optarg, 1, CL_MAX_REPLICAS);
      break;
    case 'd':
      o->duration_s = parse_num("--duration", optarg, 0.1, 86400);
      break;
    case 'r':
      o->rate = parse_num("--rate", optarg, 0, 1e7);
      break;
    case 's':
      o->size = (unsigned)parse_num("--size", optarg, 16, 4194304);
      break;
    case 'f':
      o->faults = optarg;
      break;
    case 'o':
      o->out = optarg;
      break;
    case 'S':
      o->seed = (uint64_t)parse_num("--seed", optarg, 0, 9007199254740992.0);
      o->seed_set = true;
      break;
    case 'b':
      o->bin_dir = optarg;
      break;
    case 'i':
      o->stats_ms = (unsigned)parse_num("--stats-ms", optarg, 50, 60000);
      break;
    case 'D':
      o->drain_ms = (unsigned)parse_num("--drain-ms", optarg, 100, 600000);
      break;
    case 'T':
      o->two_paths = true;
      break;
    case 'N':
      o->netns = true;
      break;
    case 'P':
      o->no_plot = true;
      break;
    default:
      usage();
    }
  }
  if (optind != argc || o->replicas == 0) usage();
  if (o->replicas == 1) warn_("one replica has no peer: nothing to send or check");
}

/* Parses the SPEC, sizes the cluster (initial replicas + added ones),
 * checks every replica named and builds the plan. Exits 2 on error. */
static void faults_setup(void) {
  char err[512];
  if (fault_spec_parse(cl.o.faults, cl.faults, FAULT_SPEC_FAULTS_MAX, &cl.nfaults, err,
                       sizeof err) != 0) {
    fprintf(stderr, "bftnet-cluster: --faults: %s\n", err);
    exit(2);
  }
  bool added[FAULT_REPLICA_MAX] = {false};
  unsigned extra = 0;
  cl.npaths = cl.o.two_paths ? 2 : 1;
  for (size_t i = 0; i < cl.nfaults; i++) {
    const fault_t *f = &cl.faults[i];
    if (f->kind == FAULT_MEMBERS && f->add != FAULT_NONE && (unsigned)f->add >= cl.ninit &&
        !added[f->add]) {
      added[f->add] = true;
      extra++;
    }
    if (f->kind == FAULT_FAILOVER) cl.npaths = 2;
  }
  cl.nslots = cl.ninit + extra;
  if (cl.nslots > CL_MAX_SLOTS) {
    fprintf(stderr, "bftnet-cluster: --faults: %u replicas in all (at most %d)\n", cl.nslots,
            CL_MAX_SLOTS);
    exit(2);
  }
  if (fault_spec_check(cl.faults, cl.nfaults, cl.nslots, err, sizeof err) != 0) {
    fprintf(stderr,
            "bftnet-cluster: --faults: %s (a members fault that adds a replica "
            "gives the cluster one more slot: r%u, r%u, ...)\n",
            err, cl.ninit, cl.ninit + 1);
    exit(2);
  }
  uint64_t end = (uint64_t)llround(cl.o.duration_s * 1000);
  size_t n = 0;
  if (cluster_plan_build(cl.faults, cl.nfaults, end, NULL, 0, &n, err, sizeof err) != 0) {
    fprintf(stderr, "bftnet-cluster: --faults: %s\n", err);
    exit(2);
  }
  cl.plan = calloc(n ? n : 1, sizeof *cl.plan);
  if (!cl.plan ||
      cluster_plan_build(cl.faults, cl.nfaults, end, cl.plan, n, &cl.nplan, err, sizeof err)) {
    fprintf(stderr, "bftnet-cluster: --faults: %s\n", cl.plan ? err : "out of memory");
    exit(2);
  }
}

/* --------------------------------------------------------- files, keys */

static int setup_paths(void) {
  if (strlen(cl.o.out) > CL_PATH - 64) return warn_("--out: path too long"), -ENAMETOOLONG;
  snprintf(cl.out, sizeof cl.out, "%s", cl.o.out);
  const char *sub[] = {"", "/keys", "/members", "/replicas"};
  for (size_t i = 0; i < sizeof sub / sizeof *sub; i++) {
    char d[CL_PATH];
    path_fmt(d, sizeof d, "%s%s", cl.out, sub[i]);
    int rc = mkdir_p(d);
    if (rc) return warn_("%s: %s", d, strerror(-rc)), rc;
  }
  const char *mine[] = {"report.json", "timeseries.csv", "plot.png",
                        "plot.gp",     "plot.dat",       "plot.log"};
  for (size_t i = 0; i < sizeof mine / sizeof *mine; i++) {
    char p[CL_PATH];
    path_fmt(p, sizeof p, "%s/%s", cl.out, mine[i]);
    unlink(p);
  }
  for (unsigned i = 0; i < cl.nslots; i++) {
    cl_replica_t *r = &cl.rep[i];
    r->idx = (int)i;
    snprintf(r->name, sizeof r->name, "r%u", i);
    path_fmt(r->key_path, CL_PATH, "%s/keys/%s.key", cl.out, r->name);
    path_fmt(r->members_path, CL_PATH, "%s/members/%s.json", cl.out, r->name);
    path_fmt(r->report_path, CL_PATH, "%s/replicas/%s.report.json", cl.out, r->name);
    path_fmt(r->log_path, CL_PATH, "%s/replicas/%s.log", cl.out, r->name);
    path_fmt(r->lines_path, CL_PATH, "%s/replicas/%s.stdout.jsonl", cl.out, r->name);
    unlink(r->key_path);
    unlink(r->report_path);
    unlink(r->log_path);
    unlink(r->lines_path);
    r->cur_migrations = r->old_migrations = -1;
    r->exits = json_array();
  }
  return 0;
}

/* A fresh identity per replica, through the public API (= bftnet-keygen). */
static int keys_generate(void) {
  for (unsigned i = 0; i < cl.nslots; i++) {
    cl_replica_t *r = &cl.rep[i];
    bftnet_key_t *key = NULL;
    int rc = bftnet_key_generate(&key);
    if (rc == 0) rc = bftnet_key_save(key, r->key_path);
    if (rc == 0) rc = bftnet_key_peer_id(key, r->peer_id, sizeof r->peer_id);
    if (key) bftnet_key_free(key);
    if (rc != 0) return warn_("key %s: %s", r->key_path, bftnet_strerror(rc)), rc;
  }
  return 0;
}

static int find_replica_bin(const char *argv0) {
  char dir[CL_PATH];
  if (cl.o.bin_dir) {
    snprintf(dir, sizeof dir, "%s", cl.o.bin_dir);
  } else {
    size_t len = sizeof dir;
    if (uv_exepath(dir, &len) != 0) snprintf(dir, sizeof dir, "%s", argv0);
    char *slash = strrchr(dir, '/');
    if (slash)
      *slash = '\0';
    else
      snprintf(dir, sizeof dir, ".");
  }
  if (path_fmt(cl.replica_bin, sizeof cl.replica_bin, "%s/bftnet-replica", dir))
    return -ENAMETOOLONG;
  if (access(cl.replica_bin, X_OK) != 0) {
    warn_("%s: %s (use --bin-dir DIR)", cl.replica_bin, strerror(errno));
    return -ENOENT;
  }
  return 0;
}

/* ---------------------------------------------------------------- ports */

/* Reserves a free loopback port: a bound (not listening) socket holds it
 * until every proxy is bound, so no proxy can take it; it is closed just
 * before the replicas start. */
static int port_reserve(int *fd, uint16_t *port) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -errno;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  if (bind(s, (struct sockaddr *)&a, sizeof a) != 0 ||
      getsockname(s, (struct sockaddr *)&a, &len) != 0) {
    int e = -errno;
    close(s);
    return e;
  }
  *fd = s;
  *port = ntohs(a.sin_port);
  return 0;
}

/* -------------------------------------------------------------- proxies */

static cl_proxy_t *proxy_at(int i, int j, int p) {
  return &cl.px[((size_t)i * cl.nslots + (size_t)j) * cl.npaths + (size_t)p];
}

static void on_proxy_closed(fault_proxy_t *px, void *arg) {
  (void)px;
  (void)arg;
  cl.px_open--;
}

/* Where replica j listens on path p, and where the proxies listen: 127.0.0.1,
 * or with --netns the replica's address in its namespace and the bridge's
 * address in the cluster's (cluster_netns.h). */
static void replica_ip(unsigned j, unsigned p, char *buf, size_t len) {
  if (cl.o.netns)
    cluster_netns_replica_ip(j, p, buf, len);
  else
    snprintf(buf, len, "127.0.0.1");
}

static void proxy_ip(unsigned p, char *buf, size_t len) {
  if (cl.o.netns)
    cluster_netns_hub_ip(p, buf, len);
  else
    snprintf(buf, len, "127.0.0.1");
}

/* One proxy per ordered pair and path, to the target's reserved port. */
static int proxies_create(void) {
  cl.npx = (size_t)cl.nslots * cl.nslots * cl.npaths;
  cl.px = calloc(cl.npx, sizeof *cl.px);
  if (!cl.px) return -ENOMEM;
  for (unsigned i = 0; i < cl.nslots; i++)
    for (unsigned j = 0; j < cl.nslots; j++)
      for (unsigned p = 0; i != j && p < cl.npaths; p++) {
        char lip[CLUSTER_NETNS_ADDR_MAX], tip[CLUSTER_NETNS_ADDR_MAX];
        proxy_ip(p, lip, sizeof lip);
        replica_ip(j, p, tip, sizeof tip);
        struct sockaddr_in lis, tgt;
        uv_ip4_addr(lip, 0, &lis);
        uv_ip4_addr(tip, cl.rep[j].port[p], &tgt);
        cl_proxy_t *x = proxy_at((int)i, (int)j, (int)p);
        fault_proxy_opts_t po = {.seed = cl.o.seed * 1000003u + (uint64_t)(x - cl.px) + 1,
                                 .private_ok = cl.o.netns};
        x->lat_owner = -1;
        int rc = fault_proxy_create(&cl.loop, (struct sockaddr *)&lis, (struct sockaddr *)&tgt, &po,
                                    &x->px);
        if (rc) return warn_("proxy r%u->r%u: %s", i, j, uv_strerror(rc)), rc;
        cl.px_open++;
      }
  return 0;
}

/* Bytes (both directions) that crossed the proxies to replica a's address
 * number p, since the start. */
static uint64_t path_bytes(int a, int p) {
  uint64_t n = 0;
  for (unsigned j = 0; j < cl.nslots; j++) {
    if ((int)j == a || !proxy_at((int)j, a, p)->px) continue;
    fault_proxy_stats_t st;
    fault_proxy_stats(proxy_at((int)j, a, p)->px, &st);
    n += st.bytes_to_target + st.bytes_to_client;
  }
  return n;
}

/* Bytes through every second-path proxy touching replica a, both ways. */
static uint64_t path2_bytes(int a) {
  uint64_t n = path_bytes(a, 1);
  for (unsigned j = 0; j < cl.nslots; j++) {
    if ((int)j == a || !proxy_at(a, (int)j, 1)->px) continue;
    fault_proxy_stats_t st;
    fault_proxy_stats(proxy_at(a, (int)j, 1)->px, &st);
    n += st.bytes_to_target + st.bytes_to_client;
  }
  return n;
}

static void proxies_close(void) {
  for (unsigned i = 0; i < cl.nslots; i++)
    for (unsigned p = 0; p < cl.npaths; p++)
      cl.rep[i].path_bytes[p] = path_bytes((int)i, (int)p);
  for (size_t k = 0; k < cl.npx; k++)
    if (cl.px[k].px) {
      fault_proxy_close(cl.px[k].px, on_proxy_closed, NULL);
      cl.px[k].px = NULL;
    }
}

static void px_blackhole(cl_proxy_t *x, int delta) {
  bool was = x->bh > 0;
  x->bh += delta;
  if (x->bh < 0) x->bh = 0;
  if (was != (x->bh > 0)) fault_proxy_blackhole(x->px, x->bh > 0);
}

static void px_refuse(cl_proxy_t *x, int delta) {
  bool was = x->refuse > 0;
  x->refuse += delta;
  if (x->refuse < 0) x->refuse = 0;
  if (was != (x->refuse > 0)) fault_proxy_refuse(x->px, x->refuse > 0);
}

/* ------------------------------------------------------- membership files */

static json_t *member_entry(const cl_replica_t *self, const cl_replica_t *m) {
  json_t *addrs = json_array();
  for (unsigned p = 0; p < cl.npaths; p++) {
    int port = self == m ? m->port[p] : fault_proxy_port(proxy_at(self->idx, m->idx, (int)p)->px);
    char a[BFTNET_ADDR_MAX], ip[CLUSTER_NETNS_ADDR_MAX];
    if (self == m)
      replica_ip((unsigned)m->idx, p, ip, sizeof ip);
    else
      proxy_ip(p, ip, sizeof ip);
    snprintf(a, sizeof a, "/ip4/%s/tcp/%d/p2p/%s", ip, port, m->peer_id);
    json_array_append_new(addrs, json_string(a));
  }
  return json_pack("{s:s, s:o}", "id", m->name, "addrs", addrs);
}

/*
 * Replica r's view of membership `set`: every member, r itself at its real
 * addresses and every other at the proxies r -> it (most preferred path
 * first). A replica outside the set has left the cluster: its file lists
 * only itself, so it stops sending and closes its links (docs/FAULTS.md).
 */
static int members_write(const cl_replica_t *r, const bool *set) {
  json_t *arr = json_array();
  if (!set[r->idx]) json_array_append_new(arr, member_entry(r, r));
  for (unsigned j = 0; set[r->idx] && j < cl.nslots; j++)
    if (set[j]) json_array_append_new(arr, member_entry(r, &cl.rep[j]));
  json_t *doc = json_pack("{s:o}", "members", arr);
  int rc = json_write_atomic(doc, r->members_path, JSON_INDENT(2));
  json_decref(doc);
  if (rc) warn_("%s: %s", r->members_path, strerror(-rc));
  return rc;
}

/* ---------------------------------------------------- replica processes */

static void maybe_time_zero(void);
static void maybe_finish(void);
static void members_apply(void);
static void on_retry(uv_timer_t *t);
static void run_abort(const char *why);

static bool inc_alive(const cl_inc_t *inc) {
  return inc && !inc->exited;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  static char slab[64 * 1024];
  (void)h;
  (void)suggested;
  buf->base = slab;
  buf->len = sizeof slab;
}

/* The incarnation's counters join the finished ones; a killed one's last
 * stats line says what it had received (died_min). */
static void inc_retire(cl_inc_t *inc) {
  cl_replica_t *r = inc->r;
  if (r->last_stats && r->last_stats_inc == inc->id) {
    if (inc->killed) {
      json_t *peers = json_object_get(r->last_stats, "peers");
      for (unsigned j = 0; j < cl.nslots; j++) {
        json_t *row = json_object_get(peers, cl.rep[j].name);
        if (row) r->died_min[j] += ju(row, "delivered");
      }
    }
    r->old_drops += r->cur_drops;
    r->old_reconnects += r->cur_reconnects;
    if (r->cur_migrations >= 0)
      r->old_migrations = (r->old_migrations < 0 ? 0 : r->old_migrations) + r->cur_migrations;
  }
  r->cur_drops = r->cur_reconnects = 0;
  r->cur_migrations = -1;
}

static void on_inc_closed(uv_handle_t *h) {
  cl_inc_t *inc = h->data;
  if (--inc->handles > 0) return;
  cl_replica_t *r = inc->r;
  inc_retire(inc);
  if (r->inc == inc) r->inc = NULL;
  free(inc->buf);
  free(inc);
  maybe_finish();
}

static void series_add(cl_replica_t *r, double t, double rate, double p50, double p99, int inc) {
  if (r->nseries == r->cap_series) {
    if (r->cap_series >= CL_SERIES_MAX) return;
    size_t cap = r->cap_series ? r->cap_series * 2 : 256;
    cl_point_t *p = realloc(r->series, cap * sizeof *p);
    if (!p) return;
    r->series = p;
    r->cap_series = cap;
  }
  r->series[r->nseries++] = (cl_point_t){t, rate, p50, p99, inc};
}

static void csv_write(double t_ms, const char *name, double rate, double p50, double p99,
                      uint64_t drops, uint64_t rec, int64_t migr) {
  if (!cl.csv) return;
  char row[512];
  cluster_csv_row(row, sizeof row, (int64_t)llround(t_ms), name, rate, p50, p99, drops, rec, migr);
  fprintf(cl.csv, "%s\n", row);
}

static void on_stats_line(cl_inc_t *inc, json_t *j) {
  cl_replica_t *r = inc->r;
  json_t *tot = json_object_get(j, "total");
  if (!json_is_object(tot)) return;
  double t = now_ms();
  json_decref(r->last_stats);
  r->last_stats = json_incref(j);
  r->last_stats_ms = t;
  r->last_stats_inc = inc->id;
  r->cur_drops = ju(tot, "dropped");
  r->cur_reconnects = ju(tot, "reconnects");
  r->cur_migrations = json_object_get(tot, "migrations") ? (int64_t)ju(tot, "migrations") : -1;
  if (!cl.t0_set) return;
  double rate = jd(tot, "delivered_per_s"), ims = jd(j, "interval_ms");
  double p50 = jd(tot, "p50_us"), p99 = jd(tot, "p99_us");
  if (isnan(rate)) rate = 0;
  if (!isnan(ims) && ims > 0) {
    double n = rate * ims / 1000.0;
    r->win_delivered += n;
    r->win_ms += ims;
    if (r->win_n < CL_WIN_PARTS && n > 0) {
      cluster_qpart_t *q = &r->win_parts[r->win_n++];
      memset(q, 0, sizeof *q);
      q->weight = n;
      cluster_qpart_point(q, 0.5, p50);
      cluster_qpart_point(q, 0.99, p99);
    }
  }
  int64_t migr = r->cur_migrations < 0 ? -1 : r->cur_migrations;
  csv_write(t, r->name, rate, p50, p99, r->cur_drops, r->cur_reconnects, migr);
  /* Plotted at the middle of the interval the line covers. */
  series_add(r, (t - (isnan(ims) ? 0 : ims / 2)) / 1e3, rate, p50, p99, inc->id);
}

static void json_list(const json_t *arr, char *buf, size_t len) {
  size_t i, used = 0;
  json_t *v;
  buf[0] = '\0';
  json_array_foreach(arr, i, v) {
    int k = snprintf(buf + used, len - used, "%s%s", i ? " " : "", json_string_value(v));
    if (k < 0 || (size_t)k >= len - used) break;
    used += (size_t)k;
  }
}

static void on_membership_line(cl_inc_t *inc, json_t *j) {
  cl_replica_t *r = inc->r;
  bool ok = json_is_true(json_object_get(j, "ok"));
  if (!ok) {
    const char *err = json_string_value(json_object_get(j, "error"));
    event("replica", -1, "membership", "%s: membership NOT applied: %s", r->name, err ? err : "?");
    return;
  }
  if (!inc->loaded) {
    inc->loaded = true;
    if (r->n_loaded < CL_MAX_INCS) r->loaded_ms[r->n_loaded] = cl.t0_set ? now_ms() : -1;
    r->n_loaded++;
    if (cl.phase == PH_STARTING) {
      maybe_time_zero();
      return;
    }
    event("replica", -1, "up", "%s is up (incarnation %d, %" PRIu64 " members)", r->name, inc->id,
          ju(j, "members"));
    if (cl.m_busy && cl.m_wait == r->idx) {
      uv_timer_stop(&cl.members_timer);
      members_apply();
    }
    return;
  }
  char add[256], rm[256];
  json_list(json_object_get(j, "added"), add, sizeof add);
  json_list(json_object_get(j, "removed"), rm, sizeof rm);
  event("replica", -1, "membership",
        "%s reloaded its membership: %" PRIu64 " members, added [%s], removed [%s]", r->name,
        ju(j, "members"), add, rm);
}

static void on_listen_line(cl_inc_t *inc, json_t *j) {
  cl_replica_t *r = inc->r;
  inc->listening = true;
  const char *peer = json_string_value(json_object_get(j, "peer_id"));
  if (!peer || strcmp(peer, r->peer_id) != 0)
    warn_("%s: listens as peer %s, its key says %s", r->name, peer ? peer : "?", r->peer_id);
  if (json_array_size(json_object_get(j, "addrs")) != cl.npaths)
    warn_("%s: listens on %zu addresses, want %u", r->name,
          json_array_size(json_object_get(j, "addrs")), cl.npaths);
}

/* A replica's "event" line (bftnet-replica prints the rare migration
 * events: a peer restarted, a stream aborted, a migration denied). */
static void on_event_line(cl_inc_t *inc, json_t *j) {
  cl_replica_t *r = inc->r;
  const char *ev = json_string_value(json_object_get(j, "event"));
  const char *peer = json_string_value(json_object_get(j, "peer"));
  if (!ev) return;
  if (!peer || !peer[0]) peer = "an unknown peer";
  if (strcmp(ev, "peer_restarted") == 0) {
    event("replica", -1, ev, "%s: %s runs a new process (bftnet: peer restarted)", r->name, peer);
  } else if (strcmp(ev, "aborted") == 0) {
    const char *why = json_string_value(json_object_get(j, "why"));
    if (!why || !why[0]) why = "?";
    /* The replicas stopping close their streams: recorded, summed up once. */
    cl.quiet = cl.phase >= PH_STOPPING && ju(j, "lost") == 0;
    cl.stop_aborts += cl.quiet;
    if (json_is_true(json_object_get(j, "outbound")))
      event("replica", -1, ev, "%s: its stream to %s aborted (%s): %" PRIu64 " messages lost",
            r->name, peer, why, ju(j, "lost"));
    else
      event("replica", -1, ev, "%s: the stream from %s aborted (%s)", r->name, peer, why);
    cl.quiet = false;
  } else if (strcmp(ev, "denied") == 0) {
    event("replica", -1, ev, "%s: %s denied its Migrate", r->name, peer);
  } else {
    event("replica", -1, ev, "%s: %s: %s", r->name, peer, ev);
  }
}

static void inc_line(cl_inc_t *inc, const char *line, size_t len) {
  cl_replica_t *r = inc->r;
  if (r->lines) {
    fwrite(line, 1, len, r->lines);
    fputc('\n', r->lines);
  }
  json_error_t je;
  json_t *j = json_loadb(line, len, 0, &je);
  const char *type = json_string_value(json_object_get(j, "type"));
  if (!type) {
    if (len) warn_("%s: stdout: not a JSON line: %.80s", r->name, line);
  } else if (strcmp(type, "stats") == 0) {
    on_stats_line(inc, j);
  } else if (strcmp(type, "membership") == 0) {
    on_membership_line(inc, j);
  } else if (strcmp(type, "listen") == 0) {
    on_listen_line(inc, j);
  } else if (strcmp(type, "event") == 0) {
    on_event_line(inc, j);
  } /* other types: skipped, as docs/REPORT.md asks */
  json_decref(j);
}

static void inc_feed(cl_inc_t *inc, const char *p, size_t n) {
  while (n) {
    const char *nl = memchr(p, '\n', n);
    size_t take = nl ? (size_t)(nl - p) : n;
    if (!inc->overflow && inc->len + take + 1 > CL_LINE_MAX) inc->overflow = true;
    if (!inc->overflow && inc->len + take + 1 > inc->cap) {
      size_t cap = (inc->len + take + 1) * 2;
      if (cap > CL_LINE_MAX) cap = CL_LINE_MAX;
      char *b = realloc(inc->buf, cap);
      if (!b)
        inc->overflow = true;
      else
        inc->buf = b, inc->cap = cap;
    }
    if (!inc->overflow) {
      memcpy(inc->buf + inc->len, p, take);
      inc->len += take;
    }
    if (nl) {
      if (inc->overflow)
        warn_("%s: stdout line over %u bytes skipped", inc->r->name, CL_LINE_MAX);
      else if (inc->len)
        inc->buf[inc->len] = '\0', inc_line(inc, inc->buf, inc->len);
      inc->len = 0;
      inc->overflow = false;
      take++;
    }
    p += take;
    n -= take;
  }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  cl_inc_t *inc = s->data;
  if (nread > 0) {
    inc_feed(inc, buf->base, (size_t)nread);
    return;
  }
  if (nread == 0) return;
  if (inc->len && !inc->overflow) {
    inc->buf[inc->len] = '\0';
    inc_line(inc, inc->buf, inc->len);
    inc->len = 0;
  }
  uv_close((uv_handle_t *)s, on_inc_closed);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig) {
  cl_inc_t *inc = p->data;
  cl_replica_t *r = inc->r;
  inc->exited = true;
  inc->exit_status = status;
  inc->term_signal = sig;
  json_array_append_new(r->exits,
                        json_pack("{s:i, s:I, s:i, s:b, s:b}", "incarnation", inc->id, "status",
                                  (json_int_t)status, "signal", sig, "killed_by_fault", inc->killed,
                                  "stopped", inc->stop_sent));
  uv_close((uv_handle_t *)p, on_inc_closed);
  if (inc->killed || inc->stop_sent) {
    if (inc->stop_sent && (status != 0 || sig))
      event("replica", -1, "exit", "%s exited with status %" PRId64 "%s%s after SIGTERM", r->name,
            status, sig ? ", signal " : "", sig ? strsignal(sig) : "");
    return;
  }
  if (cl.phase == PH_STARTING) {
    char why[CL_PATH + 128];
    snprintf(why, sizeof why, "%s exited during startup (status %" PRId64 ", signal %d); see %s",
             r->name, status, sig, r->log_path);
    run_abort(why);
    return;
  }
  event("replica", -1, "exit", "%s exited unexpectedly (status %" PRId64 ", signal %d); see %s",
        r->name, status, sig, r->log_path);
  if (!inc->listening && inc->id > 1 && r->retries < CL_RETRY_MAX && cl.phase == PH_RUNNING) {
    r->retries++; /* most likely its port was taken while it was down */
    uv_timer_start(&r->retry, on_retry, CL_RETRY_MS, 0);
  }
  if (cl.m_busy && cl.m_wait == r->idx) {
    uv_timer_stop(&cl.members_timer);
    members_apply();
  }
}

/* Starts a new incarnation of r. Its --duration is a safety net only (the
 * run's end plus CL_SAFETY_S): the cluster stops it with SIGTERM. */
static int replica_spawn(cl_replica_t *r) {
  char lis[CL_PATHS_MAX][64], rate[32], size[16], stats[16], drain[16], dur[32];
  double left = cl.o.duration_s - (cl.t0_set ? now_ms() / 1e3 : 0);
  snprintf(rate, sizeof rate, "%.15g", cl.o.rate);
  snprintf(size, sizeof size, "%u", cl.o.size);
  snprintf(stats, sizeof stats, "%u", cl.o.stats_ms);
  snprintf(drain, sizeof drain, "%u", cl.o.drain_ms);
  snprintf(dur, sizeof dur, "%.3f", (left > 0 ? left : 0) + CL_SAFETY_S);
  char *argv[44], nsname[CLUSTER_NETNS_NAME_MAX + 8];
  int a = 0;
  if (cl.o.netns) { /* ip execs the replica in its namespace: same PID */
    cluster_netns_name(&cl.ns, (unsigned)r->idx, nsname, sizeof nsname);
    argv[a++] = "ip", argv[a++] = "netns", argv[a++] = "exec", argv[a++] = nsname;
  }
  argv[a++] = cl.replica_bin;
  argv[a++] = "--id", argv[a++] = r->name;
  argv[a++] = "--key", argv[a++] = r->key_path;
  for (unsigned p = 0; p < cl.npaths; p++) {
    char ip[CLUSTER_NETNS_ADDR_MAX];
    replica_ip((unsigned)r->idx, p, ip, sizeof ip);
    snprintf(lis[p], sizeof lis[p], "/ip4/%s/tcp/%u", ip, r->port[p]);
    argv[a++] = "--listen", argv[a++] = lis[p];
  }
  argv[a++] = "--members", argv[a++] = r->members_path;
  argv[a++] = "--rate", argv[a++] = rate;
  argv[a++] = "--size", argv[a++] = size;
  argv[a++] = "--stats-ms", argv[a++] = stats;
  argv[a++] = "--drain-ms", argv[a++] = drain;
  argv[a++] = "--duration", argv[a++] = dur;
  argv[a++] = "--report", argv[a++] = r->report_path;
  argv[a] = NULL;

  cl_inc_t *inc = calloc(1, sizeof *inc);
  if (!inc) return -ENOMEM;
  inc->r = r;
  inc->id = r->incarnations + 1;
  int logfd = open(r->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (logfd < 0) {
    int e = -errno;
    free(inc);
    return warn_("%s: %s", r->log_path, strerror(-e)), e;
  }
  dprintf(logfd, "---- bftnet-cluster: %s incarnation %d\n", r->name, inc->id);
  uv_pipe_init(&cl.loop, &inc->out, 0);
  inc->out.data = inc;
  inc->proc.data = inc;
  uv_stdio_container_t stdio[3] = {
      {.flags = UV_IGNORE},
      {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&inc->out},
      {.flags = UV_INHERIT_FD, .data.fd = logfd}};
  /* Detached: its own process group, so a Ctrl-C reaches only the cluster,
   * which then stops the replicas in order. */
  uv_process_options_t po = {.exit_cb = on_exit_cb,
                             .file = argv[0],
                             .args = argv,
                             .stdio_count = 3,
                             .stdio = stdio,
                             .flags = UV_PROCESS_DETACHED};
  int rc = uv_spawn(&cl.loop, &inc->proc, &po);
  close(logfd);
  inc->handles = 2;
  if (rc != 0) {
    inc->exited = true;
    uv_close((uv_handle_t *)&inc->proc, on_inc_closed);
    uv_close((uv_handle_t *)&inc->out, on_inc_closed);
    return warn_("%s: spawn %s: %s", r->name, cl.replica_bin, uv_strerror(rc)), rc;
  }
  uv_read_start((uv_stream_t *)&inc->out, on_alloc, on_read);
  r->inc = inc;
  r->incarnations = inc->id;
  r->ever_started = true;
  if (!r->lines) r->lines = fopen(r->lines_path, "a");
  return 0;
}

/* ------------------------------------------------------------ progress */

static void on_tick(uv_timer_t *t) {
  (void)t;
  double now = now_ms(), rate = 0;
  cluster_qpart_t parts[CL_MAX_SLOTS * CL_WIN_PARTS];
  size_t np = 0;
  uint64_t drops = 0, rec = 0;
  int64_t migr = -1;
  int up = 0, started = 0;
  for (unsigned i = 0; i < cl.nslots; i++) {
    cl_replica_t *r = &cl.rep[i];
    if (r->win_ms > 0) rate += r->win_delivered * 1000.0 / r->win_ms;
    for (size_t k = 0; k < r->win_n; k++)
      parts[np++] = r->win_parts[k];
    r->win_delivered = r->win_ms = 0;
    r->win_n = 0;
    drops += r->old_drops + r->cur_drops;
    rec += r->old_reconnects + r->cur_reconnects;
    int64_t m = (r->old_migrations < 0 ? 0 : r->old_migrations) +
                (r->cur_migrations < 0 ? 0 : r->cur_migrations);
    if (r->old_migrations >= 0 || r->cur_migrations >= 0) migr = (migr < 0 ? 0 : migr) + m;
    if (r->ever_started) started++;
    if (r->inc && r->inc->listening && !r->inc->exited) up++;
  }
  double p50 = cluster_quantile_mix(parts, np, 0.5), p99 = cluster_quantile_mix(parts, np, 0.99);
  char s50[32], s99[32], sm[32] = "-";
  cluster_fmt_us(p50, s50, sizeof s50);
  cluster_fmt_us(p99, s99, sizeof s99);
  if (migr >= 0) snprintf(sm, sizeof sm, "%" PRId64, migr);
  say("[%7.2fs] %9.0f msgs/s  p50 %9s  p99 %9s  drops %" PRIu64 "  reconnects %" PRIu64
      "  migrations %s  up %d/%d%s",
      now / 1e3, rate, s50, s99, drops, rec, sm, up, started,
      cl.phase == PH_STOPPING ? "  (draining)" : "");
  csv_write(now, "all", rate, p50, p99, drops, rec, migr);
}

/* --------------------------------------------------------- fault actions */

/* Applies fn to every proxy on a link in the scope; returns how many. */
static int scope_each(const fault_scope_t *sc, void (*fn)(cl_proxy_t *, void *), void *arg) {
  int n = 0;
  for (unsigned i = 0; i < cl.nslots; i++)
    for (unsigned j = 0; j < cl.nslots; j++)
      if (fault_scope_has_link(sc, (int)i, (int)j))
        for (unsigned p = 0; p < cl.npaths; p++, n++)
          fn(proxy_at((int)i, (int)j, (int)p), arg);
  return n;
}

static void do_cut(cl_proxy_t *x, void *arg) {
  int k = fault_proxy_cut(x->px);
  if (k > 0) *(int *)arg += k;
}

static void do_bh_on(cl_proxy_t *x, void *arg) {
  (void)arg;
  px_blackhole(x, +1);
}

static void do_bh_off(cl_proxy_t *x, void *arg) {
  (void)arg;
  px_blackhole(x, -1);
}

static void do_refuse_on_cut(cl_proxy_t *x, void *arg) {
  px_refuse(x, +1);
  do_cut(x, arg);
}

static void do_refuse_off(cl_proxy_t *x, void *arg) {
  (void)arg;
  px_refuse(x, -1);
}

/* Latency: the proxy follows the last-listed active latency fault that
 * covers its link; with none it is back to 0 ms. */
static void latency_set(cl_proxy_t *x, int i, int j) {
  int owner = -1;
  for (size_t k = 0; k < cl.nfaults; k++)
    if (cl.lat_active[k] && fault_scope_has_link(&cl.faults[k].scope, i, j)) owner = (int)k;
  x->lat_owner = owner;
  if (owner < 0)
    fault_proxy_latency(x->px, 0, 0);
  else
    fault_proxy_latency(x->px, cl.faults[owner].latency_ms, cl.faults[owner].jitter_ms);
}

static int latency_apply(size_t fi) {
  int n = 0;
  for (unsigned i = 0; i < cl.nslots; i++)
    for (unsigned j = 0; j < cl.nslots; j++)
      if (fault_scope_has_link(&cl.faults[fi].scope, (int)i, (int)j))
        for (unsigned p = 0; p < cl.npaths; p++, n++)
          latency_set(proxy_at((int)i, (int)j, (int)p), (int)i, (int)j);
  return n;
}

static void span_open(size_t fi) {
  if (cl.nspans < sizeof cl.spans / sizeof *cl.spans)
    cl.spans[cl.nspans++] = (cl_span_t){.on = now_ms(), .off = -1, .fault = (int)fi};
}

static void span_close(size_t fi) {
  for (size_t k = cl.nspans; k-- > 0;)
    if (cl.spans[k].fault == (int)fi && cl.spans[k].off < 0) {
      cl.spans[k].off = now_ms();
      return;
    }
}

/* Failover: replica a's preferred path (path 0) goes down, as if the
 * network behind its first address failed: the proxies to its preferred
 * address (P(j->a, 0)) and those it reaches the others' preferred
 * addresses by (P(a->j, 0)). Otherwise a pair would just keep the
 * connection `a` dialed and never try a second address. */
static int failover_each(int a, void (*fn)(cl_proxy_t *, void *), void *arg) {
  int n = 0;
  for (unsigned j = 0; j < cl.nslots; j++)
    if ((int)j != a) {
      fn(proxy_at((int)j, a, 0), arg);
      fn(proxy_at(a, (int)j, 0), arg);
      n += 2;
    }
  return n;
}

/* --netns: replica a's links (path p, or every path with p < 0) down
 * (delta +1) or up (-1), counted per link (cluster_netns_link). Returns
 * how many links were asked. */
static int netns_links(int a, int p, int delta) {
  int n = 0;
  for (unsigned q = 0; q < cl.npaths; q++) {
    if (p >= 0 && (unsigned)p != q) continue;
    if (cluster_netns_link(&cl.ns, (unsigned)a, q, delta) < 0)
      warn_("ip link set v%dp%u %s failed (see %s/netns.log)", a, q, delta > 0 ? "down" : "up",
            cl.out);
    n++;
  }
  return n;
}

static void act_kill(size_t fi) {
  cl_replica_t *r = &cl.rep[cl.faults[fi].scope.a];
  if (!inc_alive(r->inc)) {
    event("fault", (int)fi, "kill", "%s is not running: nothing to kill", r->name);
    return;
  }
  r->inc->killed = true;
  r->kills++;
  r->kill_ms = now_ms();
  int pid = r->inc->proc.pid;
  uv_process_kill(&r->inc->proc, SIGKILL);
  event("fault", (int)fi, "kill", "SIGKILL %s (pid %d, incarnation %d)", r->name, pid, r->inc->id);
}

/* Snapshot of every other replica's counts for r as a sender, taken when r
 * restarts (see cluster_pair_in_t.base_*). */
static void restart_snapshot(cl_replica_t *r) {
  for (unsigned j = 0; j < cl.nslots; j++) {
    cl_replica_t *x = &cl.rep[j];
    cl_base_t *b = &r->base[j];
    *b = (cl_base_t){.valid = true};
    json_t *row =
        x->last_stats ? json_object_get(json_object_get(x->last_stats, "peers"), r->name) : NULL;
    if (!row) continue;
    b->delivered = ju(row, "delivered");
    b->duplicates = ju(row, "duplicates");
    b->reorders = ju(row, "reorders");
    b->exact = r->kills > 0 && x->last_stats_ms > r->kill_ms;
  }
}

static void replica_restart(cl_replica_t *r) {
  if (cl.phase != PH_RUNNING) return;
  if (r->inc) { /* the old incarnation is still being reaped */
    uv_timer_start(&r->retry, on_retry, 10, 0);
    return;
  }
  restart_snapshot(r);
  int rc = replica_spawn(r);
  if (rc == 0) {
    r->restarts++;
    event("replica", -1, "restart", "%s started again: incarnation %d, same key and addresses",
          r->name, r->incarnations);
  } else {
    event("replica", -1, "restart", "%s could not be started again: %s", r->name, uv_strerror(rc));
  }
}

/* uv_timer_cb for the retry timer: its data is the replica. */
static void on_retry(uv_timer_t *t) {
  replica_restart(t->data);
}

static void act_restart(size_t fi) {
  cl_replica_t *r = &cl.rep[cl.faults[fi].scope.a];
  if (inc_alive(r->inc)) {
    event("fault", (int)fi, "restart", "%s is running: not restarted", r->name);
    return;
  }
  event("fault", (int)fi, "restart", "starting %s again", r->name);
  r->retries = 0;
  replica_restart(r);
}

/* ------------------------------------------------------------ membership */

static void members_next(void);

static void on_members_timeout(uv_timer_t *t) {
  (void)t;
  event("cluster", -1, "members", "r%d did not load its membership within %u ms: going on",
        cl.m_wait, CL_MEMBERS_WAIT_MS);
  members_apply();
}

/* Step 2 of a members fault: every file rewritten (temp + rename), then
 * SIGHUP to every running replica, at once. */
static void members_apply(void) {
  int sent = 0;
  cl.m_wait = -1;
  if (cl.phase != PH_RUNNING) {
    cl.m_busy = false;
    return;
  }
  memcpy(cl.member, cl.member_next, sizeof cl.member);
  for (unsigned i = 0; i < cl.nslots; i++)
    if (cl.rep[i].ever_started || cl.member[i]) members_write(&cl.rep[i], cl.member);
  for (unsigned i = 0; i < cl.nslots; i++) {
    cl_inc_t *inc = cl.rep[i].inc;
    if (inc_alive(inc) && inc->listening && uv_process_kill(&inc->proc, SIGHUP) == 0) sent++;
  }
  char set[256] = "";
  size_t used = 0;
  for (unsigned i = 0; i < cl.nslots; i++)
    if (cl.member[i] && used < sizeof set)
      used += (size_t)snprintf(set + used, sizeof set - used, "%sr%u", used ? " " : "", i);
  event("cluster", -1, "members", "membership files rewritten (members: %s); SIGHUP to %d replicas",
        set, sent);
  cl.m_busy = false;
  members_next();
}

/* Step 1: the added replica is started first (with the new membership);
 * step 2 runs when it has loaded it. */
static void members_start(size_t fi) {
  const fault_t *f = &cl.faults[fi];
  cl.m_busy = true;
  memcpy(cl.member_next, cl.member, sizeof cl.member);
  if (f->add != FAULT_NONE) cl.member_next[f->add] = true;
  if (f->remove != FAULT_NONE) cl.member_next[f->remove] = false;
  char tgt[64];
  fault_target(f, tgt, sizeof tgt);
  if (f->add != FAULT_NONE && !inc_alive(cl.rep[f->add].inc)) {
    cl_replica_t *r = &cl.rep[f->add];
    if (members_write(r, cl.member_next) == 0 && !r->inc && replica_spawn(r) == 0) {
      cl.m_wait = f->add;
      event("fault", (int)fi, "members", "starting %s first (incarnation %d)", r->name,
            r->incarnations);
      uv_timer_start(&cl.members_timer, on_members_timeout, CL_MEMBERS_WAIT_MS, 0);
      return;
    }
    event("fault", (int)fi, "members", "could not start %s; changing the membership anyway",
          r->name);
  } else {
    event("fault", (int)fi, "members", "changing the membership");
  }
  members_apply();
}

static void members_next(void) {
  if (cl.m_busy || cl.mq_n == 0 || cl.phase != PH_RUNNING) return;
  size_t fi = cl.mq[0];
  memmove(cl.mq, cl.mq + 1, --cl.mq_n * sizeof *cl.mq);
  members_start(fi);
}

/* --------------------------------------------------------------- the plan */

static void act_run(const cluster_act_t *a) {
  size_t fi = a->fault;
  const fault_t *f = &cl.faults[fi];
  const char *name = cluster_act_name(a->kind);
  int n = 0, cut = 0;
  switch (a->kind) {
  case CLUSTER_ACT_CUT:
    n = scope_each(&f->scope, do_cut, &cut);
    event("fault", (int)fi, name, "reset %d connections on %d proxies", cut, n);
    break;
  case CLUSTER_ACT_BLACKHOLE_ON:
    n = scope_each(&f->scope, do_bh_on, NULL);
    span_open(fi);
    event("fault", (int)fi, name, "%d proxies stall", n);
    break;
  case CLUSTER_ACT_BLACKHOLE_OFF:
    n = scope_each(&f->scope, do_bh_off, NULL);
    span_close(fi);
    event("fault", (int)fi, name, "%d proxies forward again", n);
    break;
  case CLUSTER_ACT_PARTITION_ON:
    if (cl.o.netns) {
      n = netns_links(f->scope.a, -1, +1);
      span_open(fi);
      event("fault", (int)fi, name, "r%d's %d link(s) to the bridge down (ip link set down)",
            f->scope.a, n);
      break;
    }
    n = scope_each(&f->scope, do_refuse_on_cut, &cut);
    span_open(fi);
    event("fault", (int)fi, name, "%d proxies refuse; reset %d connections", n, cut);
    break;
  case CLUSTER_ACT_PARTITION_OFF:
    if (cl.o.netns) {
      n = netns_links(f->scope.a, -1, -1);
      span_close(fi);
      event("fault", (int)fi, name, "r%d's %d link(s) up again", f->scope.a, n);
      break;
    }
    n = scope_each(&f->scope, do_refuse_off, NULL);
    span_close(fi);
    event("fault", (int)fi, name, "%d proxies accept again", n);
    break;
  case CLUSTER_ACT_LATENCY_ON:
    cl.lat_active[fi] = true;
    n = latency_apply(fi);
    span_open(fi);
    event("fault", (int)fi, name, "%u ms +/- %u ms on %d proxies", f->latency_ms, f->jitter_ms, n);
    break;
  case CLUSTER_ACT_LATENCY_OFF:
    cl.lat_active[fi] = false;
    n = latency_apply(fi);
    span_close(fi);
    event("fault", (int)fi, name, "%d proxies back to their other latency or 0 ms", n);
    break;
  case CLUSTER_ACT_KILL:
    act_kill(fi);
    span_open(fi);
    break;
  case CLUSTER_ACT_RESTART:
    span_close(fi);
    act_restart(fi);
    break;
  case CLUSTER_ACT_MEMBERS:
    if (cl.mq_n < FAULT_SPEC_FAULTS_MAX) cl.mq[cl.mq_n++] = fi;
    members_next();
    break;
  case CLUSTER_ACT_FAILOVER_DOWN:
    cl.rep[f->scope.a].path_bytes_mark = path2_bytes(f->scope.a);
    if (cl.o.netns) {
      netns_links(f->scope.a, 0, +1);
      span_open(fi);
      event("fault", (int)fi, name,
            "r%d's preferred path is down: its link eth0 to the bridge "
            "(ip link set down)",
            f->scope.a);
      break;
    }
    n = failover_each(f->scope.a, do_refuse_on_cut, &cut);
    span_open(fi);
    event("fault", (int)fi, name,
          "r%d's preferred path is down: %d proxies (to its preferred address and from it to "
          "the others') refuse; reset %d connections",
          f->scope.a, n, cut);
    break;
  case CLUSTER_ACT_FAILOVER_UP:
    if (cl.o.netns)
      n = netns_links(f->scope.a, 0, -1);
    else
      n = failover_each(f->scope.a, do_refuse_off, NULL);
    span_close(fi);
    event("fault", (int)fi, name,
          "r%d's preferred path is up again (%d %s); %" PRIu64
          " bytes crossed its second path while it was down",
          f->scope.a, n, cl.o.netns ? "link" : "proxies",
          path2_bytes(f->scope.a) - cl.rep[f->scope.a].path_bytes_mark);
    break;
  }
}

static void on_plan(uv_timer_t *t);

static void plan_arm(void) {
  if (cl.next_act >= cl.nplan || cl.phase != PH_RUNNING) return;
  double d = (double)cl.plan[cl.next_act].t_ms - now_ms();
  uv_timer_start(&cl.plan_timer, on_plan, d > 0 ? (uint64_t)ceil(d) : 0, 0);
}

static void on_plan(uv_timer_t *t) {
  (void)t;
  double now = now_ms();
  while (cl.next_act < cl.nplan && cl.phase == PH_RUNNING &&
         (double)cl.plan[cl.next_act].t_ms <= now + 0.5)
    act_run(&cl.plan[cl.next_act++]);
  plan_arm();
}

/* -------------------------------------------------- start, stop, finish */

static void on_start_timeout(uv_timer_t *t) {
  (void)t;
  for (unsigned i = 0; i < cl.ninit; i++)
    if (!cl.rep[i].inc || !cl.rep[i].inc->loaded) {
      char why[CL_PATH + 128];
      snprintf(why, sizeof why, "%s did not start within %u ms; see %s", cl.rep[i].name,
               CL_START_TIMEOUT_MS, cl.rep[i].log_path);
      run_abort(why);
      return;
    }
}

static void run_stop(const char *why);

static void on_end(uv_timer_t *t) {
  (void)t;
  run_stop("duration reached");
}

static void maybe_time_zero(void) {
  if (cl.phase != PH_STARTING) return;
  for (unsigned i = 0; i < cl.ninit; i++)
    if (!cl.rep[i].inc || !cl.rep[i].inc->loaded) return;
  cl.t0_ns = uv_hrtime();
  cl.t0_set = true;
  cl.phase = PH_RUNNING;
  uv_timer_stop(&cl.start_timer);
  event("cluster", -1, "start",
        "time zero: %u replicas listening with their membership loaded; "
        "running %.1f s",
        cl.ninit, cl.o.duration_s);
  uv_timer_start(&cl.tick_timer, on_tick, 1000, 1000);
  uv_timer_start(&cl.end_timer, on_end, (uint64_t)llround(cl.o.duration_s * 1000), 0);
  plan_arm();
}

static void on_stop_timeout(uv_timer_t *t) {
  (void)t;
  for (unsigned i = 0; i < cl.nslots; i++) {
    cl_inc_t *inc = cl.rep[i].inc;
    if (!inc_alive(inc)) continue;
    event("replica", -1, "exit", "%s did not exit within %u ms of SIGTERM: SIGKILL", cl.rep[i].name,
          cl.o.drain_ms + CL_EXIT_GRACE_MS);
    uv_process_kill(&inc->proc, SIGKILL);
  }
}

static void stop_timers(void) {
  uv_timer_stop(&cl.plan_timer);
  uv_timer_stop(&cl.end_timer);
  uv_timer_stop(&cl.start_timer);
  uv_timer_stop(&cl.members_timer);
  for (unsigned i = 0; i < cl.nslots; i++)
    uv_timer_stop(&cl.rep[i].retry);
}

/* The end: lift blackholes and refusals so the drain can complete (latency
 * stays), then SIGTERM every replica at once. */
static void run_stop(const char *why) {
  if (cl.phase >= PH_STOPPING) return;
  bool started = cl.phase == PH_RUNNING;
  cl.phase = PH_STOPPING;
  cl.stop_ms = now_ms();
  stop_timers();
  int lifted = 0;
  for (size_t k = 0; k < cl.npx; k++) {
    cl_proxy_t *x = &cl.px[k];
    if (!x->px) continue;
    if (x->bh) lifted++, x->bh = 0, fault_proxy_blackhole(x->px, 0);
    if (x->refuse) lifted++, x->refuse = 0, fault_proxy_refuse(x->px, 0);
  }
  if (cl.o.netns) {
    for (unsigned i = 0; i < cl.nslots; i++)
      for (unsigned p = 0; p < cl.npaths; p++)
        lifted += cl.ns.down[i][p] > 0;
    cluster_netns_all_up(&cl.ns);
  }
  int n = 0;
  for (unsigned i = 0; i < cl.nslots; i++) {
    cl_inc_t *inc = cl.rep[i].inc;
    if (inc_alive(inc) && !inc->stop_sent) {
      inc->stop_sent = true;
      uv_process_kill(&inc->proc, SIGTERM);
      n++;
    }
  }
  if (started)
    event("cluster", -1, "stop", "%s: SIGTERM to %d replicas%s", why, n,
          lifted ? "; blackholes/refusals/link-downs lifted for the drain" : "");
  uv_timer_start(&cl.stop_timer, on_stop_timeout, cl.o.drain_ms + CL_EXIT_GRACE_MS, 0);
  maybe_finish();
}

static void run_abort(const char *why) {
  warn_("%s", why);
  cl.failed = true;
  for (unsigned i = 0; i < cl.nslots; i++)
    if (inc_alive(cl.rep[i].inc)) {
      cl.rep[i].inc->stop_sent = true;
      uv_process_kill(&cl.rep[i].inc->proc, SIGKILL);
    }
  if (cl.phase < PH_STOPPING) {
    cl.phase = PH_STOPPING;
    stop_timers();
    uv_timer_start(&cl.stop_timer, on_stop_timeout, CL_EXIT_GRACE_MS, 0);
  }
  maybe_finish();
}

static void on_signal(uv_signal_t *h, int sig) {
  (void)h;
  if (++cl.signals == 1 && cl.phase < PH_STOPPING) {
    char why[64];
    snprintf(why, sizeof why, "interrupted (%s)", strsignal(sig));
    if (cl.phase == PH_STARTING)
      run_abort(why);
    else
      run_stop(why);
    return;
  }
  warn_("second signal: SIGKILL to every replica");
  for (unsigned i = 0; i < cl.nslots; i++)
    if (inc_alive(cl.rep[i].inc)) uv_process_kill(&cl.rep[i].inc->proc, SIGKILL);
}

/* When every incarnation is gone: close proxies, timers and signals, so
 * that uv_run returns. */
static void maybe_finish(void) {
  if (cl.phase != PH_STOPPING) return;
  for (unsigned i = 0; i < cl.nslots; i++)
    if (cl.rep[i].inc) return;
  cl.phase = PH_DONE;
  if (cl.stop_aborts)
    say("[%7.2fs] %d stream aborts without loss reported while the replicas stopped "
        "(report.json: events)",
        now_ms() / 1e3, cl.stop_aborts);
  if (cl.t0_set) on_tick(&cl.tick_timer); /* the last stats lines */
  proxies_close();
  uv_close((uv_handle_t *)&cl.start_timer, NULL);
  uv_close((uv_handle_t *)&cl.tick_timer, NULL);
  uv_close((uv_handle_t *)&cl.plan_timer, NULL);
  uv_close((uv_handle_t *)&cl.end_timer, NULL);
  uv_close((uv_handle_t *)&cl.stop_timer, NULL);
  uv_close((uv_handle_t *)&cl.members_timer, NULL);
  uv_close((uv_handle_t *)&cl.sigint, NULL);
  uv_close((uv_handle_t *)&cl.sigterm, NULL);
  for (unsigned i = 0; i < cl.nslots; i++)
    uv_close((uv_handle_t *)&cl.rep[i].retry, NULL);
  cl.timers_closed = true;
}

static void loop_handles_init(void) {
  uv_timer_init(&cl.loop, &cl.start_timer);
  uv_timer_init(&cl.loop, &cl.tick_timer);
  uv_timer_init(&cl.loop, &cl.plan_timer);
  uv_timer_init(&cl.loop, &cl.end_timer);
  uv_timer_init(&cl.loop, &cl.stop_timer);
  uv_timer_init(&cl.loop, &cl.members_timer);
  for (unsigned i = 0; i < cl.nslots; i++) {
    uv_timer_init(&cl.loop, &cl.rep[i].retry);
    cl.rep[i].retry.data = &cl.rep[i];
  }
  uv_signal_init(&cl.loop, &cl.sigint);
  uv_signal_init(&cl.loop, &cl.sigterm);
  uv_signal_start(&cl.sigint, on_signal, SIGINT);
  uv_signal_start(&cl.sigterm, on_signal, SIGTERM);
}

/* Ports, proxies, membership files, then the initial replicas. */
static int cluster_start(void) {
  int fds[CL_MAX_SLOTS * CL_PATHS_MAX], nfd = 0, rc = 0;
  for (unsigned i = 0; i < cl.nslots && rc == 0; i++)
    for (unsigned p = 0; p < cl.npaths && rc == 0; p++)
      if (cl.o.netns) /* an address of its own: any fixed port */
        cl.rep[i].port[p] = (uint16_t)(CL_NETNS_PORT + p);
      else if ((rc = port_reserve(&fds[nfd], &cl.rep[i].port[p])) == 0)
        nfd++;
  if (rc == 0) rc = proxies_create();
  while (nfd > 0)
    close(fds[--nfd]);
  if (rc) return warn_("cannot set up the proxies: %s", strerror(-rc)), rc;
  for (unsigned i = 0; i < cl.ninit; i++)
    cl.member[i] = true;
  for (unsigned i = 0; i < cl.ninit && rc == 0; i++)
    rc = members_write(&cl.rep[i], cl.member);
  for (unsigned i = 0; i < cl.ninit && rc == 0; i++)
    rc = replica_spawn(&cl.rep[i]);
  if (rc) return rc;
  uv_timer_start(&cl.start_timer, on_start_timeout, CL_START_TIMEOUT_MS, 0);
  return 0;
}

/* ========================================================== the report */

typedef struct cl_pair {
  int s, r;
  int broken;
  cluster_pair_in_t in;
  cluster_pair_out_t out;
  uint64_t gaps, max_seq, reconnects, lat_n;
  /* the sender's migration counts toward the receiver */
  uint64_t migrations, detached, resumed, retransmitted, detach_ns_max, ev_aborted;
  bool have_migr;
  uint64_t rx_incarnations; /* the receiver's, of the sender */
  double p50, p90, p99, max;
  char note[512];
} cl_pair_t;

static json_t *peer_row(const cl_replica_t *r, const cl_replica_t *peer) {
  return r->report ? json_object_get(json_object_get(r->report, "peers"), peer->name) : NULL;
}

static void reports_load(void) {
  for (unsigned i = 0; i < cl.nslots; i++) {
    cl_replica_t *r = &cl.rep[i];
    if (!r->ever_started) continue;
    json_error_t je;
    r->report = json_load_file(r->report_path, 0, &je);
    const char *schema = json_string_value(json_object_get(r->report, "schema"));
    if (r->report && (!schema || strcmp(schema, "bftnet-replica-report/1") != 0)) {
      warn_("%s: unknown schema %s: ignored", r->report_path, schema ? schema : "(none)");
      json_decref(r->report);
      r->report = NULL;
    } else if (!r->report) {
      warn_("%s: no report (%s)", r->name, je.text);
    }
  }
}

/* How many times S started again (and sent) after R's last incarnation had
 * loaded its membership: the new incarnations of S that R's report can
 * have seen. -1 when the cluster lost count (too many incarnations). */
static int restarts_seen_by(const cl_replica_t *s, const cl_replica_t *r) {
  if (s->n_loaded > CL_MAX_INCS || r->n_loaded > CL_MAX_INCS) return -1;
  if (r->n_loaded == 0) return 0;
  double since = r->loaded_ms[r->n_loaded - 1];
  int n = 0;
  for (int k = 1; k < s->n_loaded; k++)
    if (s->loaded_ms[k] > since) n++;
  return n;
}

static void pair_fill(cl_pair_t *pr, const json_t *srow, const json_t *rrow) {
  cl_replica_t *s = &cl.rep[pr->s], *r = &cl.rep[pr->r];
  cluster_pair_in_t *in = &pr->in;
  in->have_sender = srow != NULL;
  in->have_receiver = rrow != NULL;
  if (srow) {
    in->sent = ju(srow, "sent");
    in->dropped = ju(srow, "dropped_by_us");
    in->aborted = ju(srow, "aborted");
    in->unconfirmed = ju(srow, "unconfirmed");
    in->ring_depth = ju(srow, "ring_depth");
    pr->reconnects = ju(srow, "reconnects");
    pr->have_migr = json_object_get(srow, "migrations") != NULL;
    pr->migrations = ju(srow, "migrations");
    pr->detached = ju(srow, "detached");
    pr->resumed = ju(srow, "resumed");
    pr->retransmitted = ju(srow, "retransmitted");
    pr->detach_ns_max = ju(srow, "detach_ns_max");
    pr->ev_aborted = ju(json_object_get(srow, "events"), "aborted");
  }
  if (rrow) {
    in->delivered = ju(rrow, "delivered");
    in->rx_evicted = ju(rrow, "rx_evicted");
    in->duplicates = ju(rrow, "duplicates");
    in->reorders = ju(rrow, "reorders");
    pr->gaps = ju(rrow, "gaps");
    pr->max_seq = ju(rrow, "max_seq");
    json_t *lat = json_object_get(rrow, "latency_us");
    pr->lat_n = ju(lat, "n");
    pr->p50 = jd(lat, "p50");
    pr->p90 = jd(lat, "p90");
    pr->p99 = jd(lat, "p99");
    pr->max = jd(lat, "max");
    json_t *sw = json_object_get(rrow, "incarnation_switches");
    int seen = restarts_seen_by(s, r);
    pr->rx_incarnations = ju(rrow, "incarnations");
    if (json_is_object(sw) && seen >= 0) {
      in->rx_split = 1;
      in->rx_switches = ju(sw, "by_event") + ju(sw, "by_seq");
      in->sender_restarts = (uint64_t)seen;
      in->delivered_current = ju(rrow, "delivered_current");
    }
  } else {
    pr->p50 = pr->p90 = pr->p99 = pr->max = NAN;
  }
  if (s->restarts > 0 && s->base[pr->r].valid) {
    in->sender_restarted = 1;
    in->base_exact = s->base[pr->r].exact;
    in->base_delivered = s->base[pr->r].delivered;
    in->base_duplicates = s->base[pr->r].duplicates;
    in->base_reorders = s->base[pr->r].reorders;
  }
  if (r->kills > 0) {
    in->receiver_killed = 1;
    in->died_min = r->died_min[pr->s];
    in->rx_first_seq = rrow ? ju(rrow, "first_seq") : 0;
  }
}

__attribute__((format(printf, 2, 3))) static void note_add(cl_pair_t *pr, const char *fmt, ...) {
  size_t used = strlen(pr->note);
  if (used >= sizeof pr->note - 3) return;
  if (used) used += (size_t)snprintf(pr->note + used, sizeof pr->note - used, "; ");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(pr->note + used, sizeof pr->note - used, fmt, ap);
  va_end(ap);
}

static void pair_note(cl_pair_t *pr) {
  const cluster_pair_out_t *o = &pr->out;
  const cl_replica_t *s = &cl.rep[pr->s], *r = &cl.rep[pr->r];
  if (!pr->in.have_sender)
    note_add(pr, "no report from %s%s", s->name, s->kills ? " (killed)" : "");
  if (!pr->in.have_receiver)
    note_add(pr, "no report from %s%s", r->name, r->kills ? " (killed)" : "");
  if (!pr->in.have_sender || !pr->in.have_receiver) return;
  if (o->duplicates || o->reorders)
    note_add(pr, "VIOLATED: %" PRIu64 " duplicates, %" PRIu64 " reorders", o->duplicates,
             o->reorders);
  if (o->extra)
    note_add(pr, "%s: %" PRIu64 " more delivered than sent%s",
             o->verdict == CLUSTER_PAIR_UNVERIFIABLE ? "unverifiable" : "VIOLATED", o->extra,
             o->verdict == CLUSTER_PAIR_UNVERIFIABLE
                 ? " (the incarnations could not be split: no stats line of the receiver "
                   "between the kill and the restart)"
                 : "");
  if (o->aborted_arrived)
    note_add(pr,
             "%" PRIu64 " of the %" PRIu64 " messages %s counted as aborted (not confirmed read "
             "when a stream broke) arrived anyway",
             o->aborted_arrived, pr->in.aborted, s->name);
  if (o->false_restarts)
    note_add(pr,
             "VIOLATED: %s saw %" PRIu64 " new incarnation(s) of %s that never started "
             "(message 1 delivered again?)",
             r->name, o->false_restarts, s->name);
  if (o->split_used && pr->in.sender_restarts)
    note_add(pr, "%s restarted %" PRIu64 " time(s); %s told its incarnations apart itself (exact)",
             s->name, pr->in.sender_restarts, r->name);
  if (o->restart_artifacts)
    note_add(pr,
             "%s restarted (sequence numbers from 1 again): %" PRIu64
             " duplicates/reorders at %s are that restart, not bftnet",
             s->name, o->restart_artifacts, r->name);
  if (o->died)
    note_add(pr,
             "%s was killed: %" PRIu64 " of the missing went to its killed process (numbered "
             "below the first its last process got, %" PRIu64 "; its last stats line had %" PRIu64
             ")",
             r->name, o->died, pr->in.rx_first_seq, pr->in.died_min);
  if (o->lost)
    note_add(pr,
             "lost in flight: %" PRIu64 "%s (written to a connection %" PRIu64
             ", lost in the sender's framer %" PRIu64 ", still queued %" PRIu64 ")%s",
             o->lost, pr->in.receiver_killed ? " at most" : "", o->in_flight, o->unwritten,
             o->queued, pr->broken ? "" : " ON A LINK NO FAULT BROKE");
}

static cl_pair_t *pairs_build(size_t *np, cluster_summary_t *sum) {
  cl_pair_t *pairs = calloc((size_t)cl.nslots * cl.nslots, sizeof *pairs);
  size_t n = 0;
  uint64_t end = (uint64_t)llround(cl.o.duration_s * 1000);
  for (unsigned s = 0; pairs && s < cl.nslots; s++)
    for (unsigned r = 0; r < cl.nslots; r++) {
      if (s == r || !cl.rep[s].ever_started || !cl.rep[r].ever_started) continue;
      const json_t *srow = peer_row(&cl.rep[s], &cl.rep[r]);
      const json_t *rrow = peer_row(&cl.rep[r], &cl.rep[s]);
      /* Never members of each other (both reports exist, neither lists the
       * other): no pair. A missing report makes every pair unverifiable. */
      if (!srow && !rrow && cl.rep[s].report && cl.rep[r].report) continue;
      cl_pair_t *pr = &pairs[n++];
      pr->s = (int)s;
      pr->r = (int)r;
      pr->broken =
          cluster_plan_breaks_link(cl.faults, cl.nfaults, end, (int)s, (int)r, CL_PING_TIMEOUT_MS);
      pair_fill(pr, srow, rrow);
      cluster_pair_check(&pr->in, &pr->out);
      pair_note(pr);
      cluster_summary_add(sum, &pr->out, pr->broken);
    }
  *np = n;
  return pairs;
}

static void table_print(const cl_pair_t *pairs, size_t n) {
  say("\n%-9s %9s %7s %7s %9s %7s %6s %6s %6s %9s %9s %9s %6s %6s %s", "pair", "sent", "dropped",
      "aborted", "delivered", "lost", "gaps", "dups", "reord", "p50", "p99", "max", "recon", "migr",
      "verdict");
  for (size_t k = 0; k < n; k++) {
    const cl_pair_t *pr = &pairs[k];
    char name[2 * sizeof cl.rep[0].name + 4], s50[24], s99[24], smax[24], migr[24] = "-";
    if (pr->have_migr) snprintf(migr, sizeof migr, "%" PRIu64, pr->migrations);
    snprintf(name, sizeof name, "%s->%s%s", cl.rep[pr->s].name, cl.rep[pr->r].name,
             pr->in.sender_restarted ? "*" : "");
    cluster_fmt_us(pr->p50, s50, sizeof s50);
    cluster_fmt_us(pr->p99, s99, sizeof s99);
    cluster_fmt_us(pr->max, smax, sizeof smax);
    say("%-9s %9" PRIu64 " %7" PRIu64 " %7" PRIu64 " %9" PRIu64 " %7" PRIu64 " %6" PRIu64
        " %6" PRIu64 " %6" PRIu64 " %9s %9s %9s %6" PRIu64 " %6s %s",
        name, pr->in.sent, pr->in.dropped, pr->in.aborted,
        pr->in.sender_restarted ? pr->out.delivered : pr->in.delivered, pr->out.lost, pr->gaps,
        pr->in.duplicates, pr->in.reorders, s50, s99, smax, pr->reconnects, migr,
        cluster_pair_verdict_name(pr->out.verdict));
  }
  bool any = false, star = false;
  for (size_t k = 0; k < n; k++)
    star |= pairs[k].in.sender_restarted != 0;
  if (star)
    say("* the sender was restarted: \"delivered\" counts what the receiver got from its last "
        "incarnation (dups/reord: every incarnation, as the receiver counted them)");
  for (size_t k = 0; k < n; k++)
    if (pairs[k].note[0]) {
      if (!any) say("notes:");
      any = true;
      say("  %s->%s: %s", cl.rep[pairs[k].s].name, cl.rep[pairs[k].r].name, pairs[k].note);
    }
}

static json_t *pairs_json(const cl_pair_t *pairs, size_t n) {
  json_t *arr = json_array();
  for (size_t k = 0; k < n; k++) {
    const cl_pair_t *pr = &pairs[k];
    const cluster_pair_out_t *o = &pr->out;
    json_t *lat =
        json_pack("{s:o, s:o, s:o, s:o, s:o}", "n", j_u64(pr->lat_n), "p50", j_num(pr->p50), "p90",
                  j_num(pr->p90), "p99", j_num(pr->p99), "max", j_num(pr->max));
    json_t *e = json_pack(
        "{s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
        "sender", cl.rep[pr->s].name, "receiver", cl.rep[pr->r].name, "sent", j_u64(pr->in.sent),
        "dropped", j_u64(pr->in.dropped), "aborted", j_u64(pr->in.aborted), "delivered",
        j_u64(pr->in.delivered), "rx_evicted", j_u64(pr->in.rx_evicted), "expected",
        j_u64(o->expected), "lost", j_u64(o->lost), "gaps", j_u64(pr->gaps), "duplicates",
        j_u64(pr->in.duplicates), "reorders", j_u64(pr->in.reorders), "latency_us", lat,
        "reconnects", j_u64(pr->reconnects), "lost_breakdown",
        json_pack("{s:o, s:o, s:o, s:o}", "in_flight", j_u64(o->in_flight), "unwritten",
                  j_u64(o->unwritten), "queued", j_u64(o->queued), "died_with_receiver",
                  j_u64(o->died)),
        "restart_artifacts", j_u64(o->restart_artifacts), "extra", j_u64(o->extra));
    json_object_set_new(e, "delivered_current", j_u64(o->delivered));
    json_object_set_new(e, "aborted_arrived", j_u64(o->aborted_arrived));
    json_object_set_new(e, "max_seq", j_u64(pr->max_seq));
    json_object_set_new(e, "sender_restarted", json_boolean(pr->in.sender_restarted));
    json_object_set_new(e, "receiver_killed", json_boolean(pr->in.receiver_killed));
    json_object_set_new(e, "violations",
                        json_pack("{s:o, s:o, s:o}", "duplicates", j_u64(o->duplicates), "reorders",
                                  j_u64(o->reorders), "extra", j_u64(o->extra)));
    json_object_set_new(e, "link_broken_by_faults", json_boolean(pr->broken));
    json_object_set_new(
        e, "migration",
        json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "migrations", j_u64(pr->migrations), "detached",
                  j_u64(pr->detached), "resumed", j_u64(pr->resumed), "retransmitted_bytes",
                  j_u64(pr->retransmitted), "detach_ms_max", j_num((double)pr->detach_ns_max / 1e6),
                  "aborted_events", j_u64(pr->ev_aborted)));
    json_object_set_new(e, "incarnations",
                        json_pack("{s:o, s:o, s:o, s:b, s:o}", "seen_by_receiver",
                                  j_u64(pr->rx_incarnations), "switches", j_u64(pr->in.rx_switches),
                                  "sender_restarts", j_u64(pr->in.sender_restarts), "split_used",
                                  o->split_used != 0, "false_restarts", j_u64(o->false_restarts)));
    json_object_set_new(e, "verdict", json_string(cluster_pair_verdict_name(o->verdict)));
    json_object_set_new(e, "note", json_string(pr->note));
    json_array_append_new(arr, e);
  }
  return arr;
}

typedef struct cl_totals {
  uint64_t delivered, sent, dropped, reconnects;
  double msgs_per_s, p50, p90, p99, max;
} cl_totals_t;

/* Delivered/s over the run and latency over every pair (estimated with
 * cluster_quantile_mix from the pairs' p50/p90/p99/max). */
static void totals_compute(const cl_pair_t *pairs, size_t n, cl_totals_t *t) {
  cluster_qpart_t *parts = calloc(n ? n : 1, sizeof *parts);
  memset(t, 0, sizeof *t);
  t->max = NAN;
  for (size_t k = 0; parts && k < n; k++) {
    const cl_pair_t *pr = &pairs[k];
    t->delivered += pr->in.delivered;
    t->sent += pr->in.sent;
    t->dropped += pr->in.dropped;
    t->reconnects += pr->reconnects;
    parts[k].weight = (double)pr->lat_n;
    cluster_qpart_point(&parts[k], 0.5, pr->p50);
    cluster_qpart_point(&parts[k], 0.9, pr->p90);
    cluster_qpart_point(&parts[k], 0.99, pr->p99);
    cluster_qpart_point(&parts[k], 1.0, pr->max);
    if (!isnan(pr->max) && (isnan(t->max) || pr->max > t->max)) t->max = pr->max;
  }
  double secs = cl.stop_ms > 0 ? cl.stop_ms / 1e3 : cl.o.duration_s;
  t->msgs_per_s = secs > 0 ? (double)t->delivered / secs : 0;
  t->p50 = parts ? cluster_quantile_mix(parts, n, 0.5) : NAN;
  t->p90 = parts ? cluster_quantile_mix(parts, n, 0.9) : NAN;
  t->p99 = parts ? cluster_quantile_mix(parts, n, 0.99) : NAN;
  free(parts);
}

static json_t *config_json(void) {
  json_t *faults = json_array();
  for (size_t i = 0; i < cl.nfaults; i++) {
    char buf[FAULT_FORMAT_MAX];
    fault_text(i, buf, sizeof buf);
    json_array_append_new(faults, json_string(buf));
  }
  json_t *c = json_pack("{s:i, s:i, s:f, s:f, s:i, s:s, s:o, s:I, s:i, s:i, s:i, s:s, s:s}",
                        "replicas", (int)cl.ninit, "slots", (int)cl.nslots, "duration_s",
                        cl.o.duration_s, "rate", cl.o.rate, "size", (int)cl.o.size, "faults",
                        cl.o.faults, "faults_parsed", faults, "seed", (json_int_t)cl.o.seed,
                        "paths", (int)cl.npaths, "stats_ms", (int)cl.o.stats_ms, "drain_ms",
                        (int)cl.o.drain_ms, "replica_bin", cl.replica_bin, "out", cl.out);
  json_object_set_new(c, "netns", json_boolean(cl.o.netns));
  if (cl.o.netns) json_object_set_new(c, "netns_prefix", json_string(cl.ns.prefix));
  return c;
}

static json_t *replicas_json(void) {
  json_t *o = json_object();
  for (unsigned i = 0; i < cl.nslots; i++) {
    cl_replica_t *r = &cl.rep[i];
    json_t *ports = json_array();
    for (unsigned p = 0; p < cl.npaths; p++)
      json_array_append_new(ports, json_integer(r->port[p]));
    json_t *e =
        json_pack("{s:s, s:o, s:b, s:b, s:i, s:i, s:i, s:O, s:s, s:s}", "peer_id", r->peer_id,
                  "ports", ports, "started", r->ever_started, "member_at_end", cl.member[i],
                  "incarnations", r->incarnations, "kills", r->kills, "restarts", r->restarts,
                  "exits", r->exits, "log", r->log_path, "report_file", r->report_path);
    json_t *pb = json_array();
    for (unsigned p = 0; p < cl.npaths; p++)
      json_array_append_new(pb, j_u64(r->path_bytes[p]));
    json_object_set_new(e, "path_bytes", pb);
    json_object_set(e, "report", r->report ? r->report : json_null());
    json_object_set_new(o, r->name, e);
  }
  return o;
}

/* ------------------------------------------------------------------ plot */

static void plot_label(FILE *f, double t, const char *text, bool arrow) {
  if (arrow)
    fprintf(f, "set arrow from %.3f, graph 0 to %.3f, graph 1 nohead lc rgb '#c0392b' lw 1\n", t,
            t);
  fprintf(f,
          "set label \"%s\" at %.3f, graph 0.98 rotate by 90 right front tc rgb '#c0392b' "
          "font ',8'\n",
          text, t);
}

/* Vertical lines (and labels, thinned) at fault events; shaded spans for
 * blackholes, partitions, latency, kills (until restart) and failovers. */
static void plot_markers(FILE *f, double xmax) {
  double last_label = -1e9, gap = xmax / 50.0;
  size_t i;
  json_t *e;
  for (size_t k = 0; k < cl.nspans; k++) {
    double off = cl.spans[k].off < 0 ? (cl.stop_ms > 0 ? cl.stop_ms : xmax * 1e3) : cl.spans[k].off;
    bool lat = cl.faults[cl.spans[k].fault].kind == FAULT_LATENCY;
    fprintf(f,
            "set object rect from %.3f, graph 0 to %.3f, graph %s fc rgb '%s' "
            "fs solid 0.25 noborder behind\n",
            cl.spans[k].on / 1e3, off / 1e3, lat ? "0.03" : "1", lat ? "#2e86c1" : "#f5b7b1");
  }
  json_array_foreach(cl.events, i, e) {
    const char *kind = json_string_value(json_object_get(e, "kind"));
    const char *action = json_string_value(json_object_get(e, "action"));
    double t = jd(e, "t_ms") / 1e3;
    bool fault = strcmp(kind, "fault") == 0, stop = strcmp(action, "stop") == 0;
    if (!fault && !stop) continue;
    char text[96];
    if (fault)
      snprintf(text, sizeof text, "%s %s", action, json_string_value(json_object_get(e, "target")));
    else
      snprintf(text, sizeof text, "stop");
    bool label = t - last_label >= gap;
    if (label) last_label = t;
    fprintf(f, "set arrow from %.3f, graph 0 to %.3f, graph 1 nohead lc rgb '#c0392b' lw 1\n", t,
            t);
    if (label) plot_label(f, t, text, false);
  }
}

/* plot.dat: one gnuplot data block per replica (t, msgs/s, p50, p99; a
 * blank line between incarnations). Returns the replicas plotted. */
static int plot_data(const char *path, char *names, size_t nlen, double *xmax) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  int k = 0;
  size_t used = 0;
  names[0] = '\0';
  for (unsigned i = 0; i < cl.nslots; i++) {
    cl_replica_t *r = &cl.rep[i];
    if (r->nseries == 0) continue;
    fprintf(f, "# %s\n", r->name);
    for (size_t p = 0; p < r->nseries; p++) {
      const cl_point_t *pt = &r->series[p];
      if (p && pt->inc != r->series[p - 1].inc) fputc('\n', f);
      char a50[32] = "NaN", a99[32] = "NaN"; /* NaN: no sample, the line breaks */
      if (!isnan(pt->p50)) snprintf(a50, sizeof a50, "%.1f", pt->p50);
      if (!isnan(pt->p99)) snprintf(a99, sizeof a99, "%.1f", pt->p99);
      fprintf(f, "%.3f %.1f %s %s\n", pt->t, pt->rate, a50, a99);
      if (pt->t > *xmax) *xmax = pt->t;
    }
    fputs("\n\n", f);
    used += (size_t)snprintf(names + used, used < nlen ? nlen - used : 0, "%s%s", k ? " " : "",
                             r->name);
    k++;
  }
  fclose(f);
  return k;
}

static int plot_script(const char *gp, const char *dat, const char *png, const char *names, int k,
                       double xmax, bool cairo) {
  FILE *f = fopen(gp, "w");
  if (!f) return -1;
  if (cairo)
    fprintf(f, "set terminal pngcairo size 1280,860 noenhanced font 'sans,10'\n");
  else
    fprintf(f, "set terminal png size 1280,860 noenhanced\n");
  fprintf(f, "set output '%s'\n", png);
  char spec[FAULT_SPEC_LEN_MAX + 1];
  size_t o = 0;
  for (const char *c = cl.o.faults; *c && o + 1 < sizeof spec; c++)
    spec[o++] = (*c == '"' || *c == '\\' || *c == '\n') ? ' ' : *c;
  spec[o] = '\0';
  fprintf(f,
          "set multiplot layout 2,1 title \"bftnet-cluster: %u replicas, %.15g msgs/s per "
          "peer, %u B\\nfaults: %s\"\n",
          cl.ninit, cl.o.rate, cl.o.size, o ? spec : "none");
  /* Fixed margins: both panels share the x axis, so fault lines line up. */
  fprintf(f, "set grid\nset key outside right top\nset xrange [0:%.3f]\n", xmax);
  fprintf(f, "set lmargin 10\nset rmargin 12\nset format y '%%g'\n");
  fprintf(f, "names = \"%s\"\n", names);
  plot_markers(f, xmax);
  fprintf(f, "set ylabel 'delivered msgs/s'\nset yrange [0:*]\n");
  fprintf(f, "plot for [i=0:%d] '%s' index i using 1:2 with lines lw 1.5 title word(names, i+1)\n",
          k - 1, dat);
  fprintf(f, "unset label\nset ylabel 'p99 latency (ms, log)'\nset logscale y\nset yrange [*:*]\n");
  fprintf(f, "set xlabel 'seconds since time zero (red lines: fault events; red shading: "
             "blackhole, partition, kill to restart, failover; blue strip: added latency)'\n");
  fprintf(f,
          "plot for [i=0:%d] '%s' index i using 1:($4/1000.0) with lines lw 1.5 "
          "title word(names, i+1)\n",
          k - 1, dat);
  fprintf(f, "unset multiplot\n");
  fclose(f);
  return 0;
}

/* Runs gnuplot SCRIPT with stdout/stderr into LOG. Returns its exit status,
 * or -errno when it cannot be started (-ENOENT: not installed). */
static int gnuplot_run(const char *script, const char *logp) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, logp, O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  char *argv[] = {"gnuplot", (char *)script, NULL};
  pid_t pid;
  int rc = posix_spawnp(&pid, "gnuplot", &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return -rc;
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) return -errno;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* Returns the PNG path on success, else NULL (and says why). */
static const char *plot_make(char *png, size_t len) {
  char gp[CL_PATH], dat[CL_PATH], logp[CL_PATH], names[512];
  double xmax = cl.stop_ms > 0 ? cl.stop_ms / 1e3 : cl.o.duration_s;
  path_fmt(gp, sizeof gp, "%s/plot.gp", cl.out);
  path_fmt(dat, sizeof dat, "%s/plot.dat", cl.out);
  path_fmt(logp, sizeof logp, "%s/plot.log", cl.out);
  path_fmt(png, len, "%s/plot.png", cl.out);
  int k = plot_data(dat, names, sizeof names, &xmax);
  if (k <= 0) return say("plot: no stats lines to plot"), NULL;
  int rc = -1;
  for (int cairo = 1; cairo >= 0 && rc != 0; cairo--) {
    if (plot_script(gp, dat, png, names, k, xmax, cairo) != 0) break;
    rc = gnuplot_run(gp, logp);
    if (rc == -ENOENT) {
      say("plot: gnuplot is not installed (Debian: gnuplot-nox): no PNG; the data is in %s", dat);
      return NULL;
    }
  }
  if (rc != 0) return say("plot: gnuplot failed (see %s): no PNG", logp), NULL;
  return png;
}

/* --------------------------------------------------------------- final */

static int report_finish(void) {
  reports_load();
  cluster_summary_t sum = {0};
  size_t np = 0;
  cl_pair_t *pairs = pairs_build(&np, &sum);
  if (!pairs) return warn_("out of memory"), 3;
  table_print(pairs, np);
  cl_totals_t tot;
  totals_compute(pairs, np, &tot);
  char verdict[512], s50[24], s90[24], s99[24], smax[24];
  int ok = cluster_verdict_format(&sum, verdict, sizeof verdict);
  cluster_fmt_us(tot.p50, s50, sizeof s50);
  cluster_fmt_us(tot.p90, s90, sizeof s90);
  cluster_fmt_us(tot.p99, s99, sizeof s99);
  cluster_fmt_us(tot.max, smax, sizeof smax);
  say("\n%zu pairs: %" PRIu64 " ok, %" PRIu64 " lost, %" PRIu64 " violated, %" PRIu64
      " unverifiable",
      np, sum.ok, sum.lost_pairs, sum.violated, sum.unverifiable);
  say("delivered %" PRIu64 " messages in %.1f s: %.0f msgs/s across the cluster; latency p50 %s, "
      "p90 %s, p99 %s (estimated over all pairs), max %s",
      tot.delivered, (cl.stop_ms > 0 ? cl.stop_ms : cl.o.duration_s * 1e3) / 1e3, tot.msgs_per_s,
      s50, s90, s99, smax);

  char png[CL_PATH], csv[CL_PATH], rep[CL_PATH];
  const char *plot = cl.o.no_plot ? NULL : plot_make(png, sizeof png);
  path_fmt(csv, sizeof csv, "%s/timeseries.csv", cl.out);
  path_fmt(rep, sizeof rep, "%s/report.json", cl.out);
  json_t *summary = json_pack(
      "{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "pairs",
      j_u64(np), "ok", j_u64(sum.ok), "lost_pairs", j_u64(sum.lost_pairs), "violated",
      j_u64(sum.violated), "unverifiable", j_u64(sum.unverifiable), "lost_in_flight",
      j_u64(sum.lost_expected), "lost_unexplained", j_u64(sum.lost_unexpected), "duplicates",
      j_u64(sum.duplicates), "reorders", j_u64(sum.reorders), "delivered", j_u64(tot.delivered),
      "msgs_per_s", j_num(tot.msgs_per_s), "p50_us", j_num(tot.p50), "p90_us", j_num(tot.p90),
      "p99_us", j_num(tot.p99), "max_us", j_num(tot.max));
  uint64_t migr = 0, detached = 0, resumed = 0, aborted = 0;
  for (size_t k = 0; k < np; k++) {
    migr += pairs[k].migrations;
    detached += pairs[k].detached;
    resumed += pairs[k].resumed;
    aborted += pairs[k].in.aborted;
  }
  json_object_set_new(summary, "false_restarts", j_u64(sum.false_restarts));
  json_object_set_new(summary, "aborted", j_u64(aborted));
  json_object_set_new(summary, "migrations", j_u64(migr));
  json_object_set_new(summary, "detached", j_u64(detached));
  json_object_set_new(summary, "resumed", j_u64(resumed));
  json_t *files = json_pack("{s:s, s:s, s:o}", "report", rep, "timeseries", csv, "plot",
                            plot ? json_string(plot) : json_null());
  json_t *doc =
      json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:s, s:s}", "schema",
                "bftnet-cluster-report/1", "config", config_json(), "replicas", replicas_json(),
                "pairs", pairs_json(pairs, np), "events", json_incref(cl.events), "summary",
                summary, "files", files, "integrity", ok ? "ok" : "FAILED", "verdict", verdict);
  int rc = json_write_atomic(doc, rep, JSON_INDENT(2) | JSON_REAL_PRECISION(12));
  json_decref(doc);
  free(pairs);
  if (rc) warn_("%s: %s", rep, strerror(-rc));
  say("\nreport:      %s", rep);
  say("time series: %s", csv);
  if (plot) say("plot:        %s", plot);
  say("replica logs and reports: %s/replicas/", cl.out);
  say("%s", verdict);
  if (rc) return 3;
  return ok ? 0 : 1;
}

static void raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

static void print_header(void) {
  say("bftnet-cluster: %u replicas (r0..r%u), %.1f s, %.15g msgs/s to each peer, %u B, %u "
      "address%s each, seed %" PRIu64,
      cl.ninit, cl.ninit - 1, cl.o.duration_s, cl.o.rate, cl.o.size, cl.npaths,
      cl.npaths > 1 ? "es" : "", cl.o.seed);
  if (cl.nfaults == 0) say("faults: none");
  for (size_t i = 0; i < cl.nfaults; i++) {
    char buf[FAULT_FORMAT_MAX];
    fault_text(i, buf, sizeof buf);
    say("fault %u: %s", cl.faults[i].item, buf);
  }
  if (cl.nfaults) say("%zu fault actions before the end of the run", cl.nplan);
  say("output: %s", cl.out);
}

/* ------------------------------------------------------------ --netns */

static void netns_stop(void) {
  cluster_netns_leave(&cl.ns);
  if (cl.ns.hub || cl.ns.made) {
    cluster_netns_teardown(&cl.ns);
    say("netns: namespaces %s-* deleted", cl.ns.prefix);
  }
}

/* Whatever way the process ends (an exit on an error path too), no
 * namespace is left behind; a cluster killed with SIGKILL leaves its
 * namespaces to the next --netns run's sweep. */
static void netns_atexit(void) {
  if (cl.ns.hub || cl.ns.made) cluster_netns_teardown(&cl.ns);
}

/* Checks, sweeps stale namespaces, builds ours and enters the hub. Before
 * any socket and any thread. Returns 0, 4 (cannot run here) or 3. */
static int netns_start(void) {
  char why[256], log[CL_PATH];
  if (cluster_netns_usable(why, sizeof why) != 0) {
    say("bftnet-cluster --netns: %s: not run (exit 4; without --netns everything runs on "
        "loopback)",
        why);
    return 4;
  }
  path_fmt(log, sizeof log, "%s/netns.log", cl.out);
  unlink(log);
  int swept = cluster_netns_sweep(log);
  if (swept) say("netns: deleted %d namespaces left by clusters that are gone", swept);
  atexit(netns_atexit);
  if (cluster_netns_setup(&cl.ns, cl.nslots, cl.npaths, log, why, sizeof why) != 0 ||
      cluster_netns_enter(&cl.ns, why, sizeof why) != 0) {
    warn_("--netns: %s", why);
    netns_stop();
    return 3;
  }
  say("netns: %u namespaces %s-r0.. on bridge%s 10.77.0.0/24%s in %s-hub; partitions and "
      "failovers take links down; latency from the proxies (kernel netem: %s)",
      cl.nslots, cl.ns.prefix, cl.npaths > 1 ? "s" : "", cl.npaths > 1 ? ", 10.77.1.0/24" : "",
      cl.ns.prefix, cl.ns.netem ? "available" : "not available");
  return 0;
}

int main(int argc, char **argv) {
  parse_opts(argc, argv, &cl.o);
  cl.ninit = cl.o.replicas;
  if (!cl.o.seed_set) cl.o.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16);
  faults_setup();
  signal(SIGPIPE, SIG_IGN);
  raise_nofile();
  cl.t0_ns = uv_hrtime();
  cl.events = json_array();
  if (find_replica_bin(argv[0]) || setup_paths() || keys_generate()) return 3;
  if (cl.o.netns) {
    int rc = netns_start();
    if (rc) return rc;
  }
  char csv[CL_PATH];
  path_fmt(csv, sizeof csv, "%s/timeseries.csv", cl.out);
  cl.csv = fopen(csv, "w");
  if (!cl.csv) return warn_("%s: %s", csv, strerror(errno)), 3;
  fprintf(cl.csv, "%s\n", CLUSTER_CSV_HEADER);
  print_header();
  if (uv_loop_init(&cl.loop) != 0) return warn_("uv_loop_init failed"), 3;
  loop_handles_init();
  if (cluster_start() != 0) run_abort("could not start the cluster");
  uv_run(&cl.loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&cl.loop) != 0) warn_("the event loop still had handles at the end");
  if (cl.o.netns) netns_stop();
  fclose(cl.csv);
  cl.csv = NULL;
  for (unsigned i = 0; i < cl.nslots; i++)
    if (cl.rep[i].lines) fclose(cl.rep[i].lines);
  int code = cl.failed ? 3 : report_finish();
  for (unsigned i = 0; i < cl.nslots; i++) {
    json_decref(cl.rep[i].last_stats);
    json_decref(cl.rep[i].report);
    json_decref(cl.rep[i].exits);
    free(cl.rep[i].series);
  }
  json_decref(cl.events);
  free(cl.px);
  free(cl.plan);
  return code;
}
