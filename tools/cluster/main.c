/*
 * bftnet-cluster — N bftnet-replica processes on loopback, a fault-injecting
 * proxy on every link, faults on a schedule, live progress, and a report
 * that cross-checks every ordered pair of replicas.
 *
 *   bftnet-cluster --replicas N [--duration S] [--rate R] [--size B]
 *                  [--faults SPEC] [--out DIR] [--seed N] [--bin-dir DIR]
 *                  [--stats-ms MS] [--drain-ms MS] [--two-paths] [--no-plot]
 *                  [--direct] [--netns]
 *
 * Layout. Replica i ("ri") listens on 127.0.0.1:Li (and Li' with two
 * paths). For every ordered pair (i, j) and path p an in-process
 * fault_proxy P(i->j, p) listens on its own port and forwards to Lj (Lj').
 * Replica i's membership file lists j at P(i->j, 0) [, P(i->j, 1)], so
 * every byte between two replicas crosses a proxy the cluster controls.
 * With --direct, only the links a fault acts on have proxies; the others
 * connect replica to replica (the cluster's one thread no longer carries
 * every byte: what lets 64 replicas and more run on a small machine).
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
 * -h/--help and --version print on stdout and exit 0.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"

/* ------------------------------------------------------------- options */

static const char synopsis[] =
    "usage: bftnet-cluster --replicas N [--duration S] [--rate R] [--size B]\n"
    "                      [--faults SPEC] [--out DIR] [--seed N] [--bin-dir DIR]\n"
    "                      [--stats-ms MS] [--drain-ms MS] [--two-paths] [--no-plot]\n"
    "                      [--direct] [--netns] [--classes MIX]\n";

static void usage(void) {
  fprintf(stderr, "%s(bftnet-cluster --help for more)\n", synopsis);
  exit(2);
}

static void help(void) {
  printf("%s"
         "\n"
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
         "  --drain-ms  the replicas' longest drain after SIGTERM (default 3000, plus 200\n"
         "              per replica above 16: they all drain at once)\n"
         "  --two-paths every replica listens on two addresses (implied by a failover fault)\n"
         "  --no-plot   skip the gnuplot PNG\n"
         "  --direct    proxies only on links a fault acts on; the other replicas connect\n"
         "              directly (large clusters: the proxies run in this one thread)\n"
         "  --netns     Linux, as root: every replica in its own network namespace on a\n"
         "              bridge; partitions and failovers take links down (ip link)\n"
         "  --classes   traffic classes and the load of each, passed to every replica\n"
         "              (instead of --rate and --size): NAME[:KEY=VALUE[;...]][,...],\n"
         "              keys prio=P size=BYTES rate=R|max policy=drop-oldest|keep-latest\n"
         "              keys=N ring=N (bftnet-replica --help), e.g.\n"
         "              'vote:prio=0;size=64;rate=100,block:prio=1;size=1048576;rate=max';\n"
         "              every pair is then cross-checked per class, and the live line,\n"
         "              the table and the plot show each class's latency\n"
         "  -h, --help  print this help and exit\n"
         "  --version   print the version and exit\n"
         "Exit status: 0 integrity ok, 1 integrity FAILED, 2 bad usage or SPEC,\n"
         "3 runtime error (replicas did not start, files could not be written),\n"
         "4 --netns cannot run here (not root, no ip, no namespaces).\n"
         "See README.md (Running a cluster), docs/REPORT.md and docs/FAULTS.md.\n",
         synopsis, CL_MAX_REPLICAS);
}

static double parse_num(const char *flag, const char *s, double lo, double hi) {
  double v;
  if (!text_parse_num(s, lo, hi, &v)) {
    fprintf(stderr, "bftnet-cluster: %s: bad number '%s' (want %.15g..%.15g)\n", flag, s, lo, hi);
    usage();
  }
  return v;
}

static const struct option long_opts[] = {
    {"replicas", required_argument, 0, 'n'}, {"duration", required_argument, 0, 'd'},
    {"rate", required_argument, 0, 'r'},     {"size", required_argument, 0, 's'},
    {"faults", required_argument, 0, 'f'},   {"out", required_argument, 0, 'o'},
    {"seed", required_argument, 0, 'S'},     {"bin-dir", required_argument, 0, 'b'},
    {"stats-ms", required_argument, 0, 'i'}, {"drain-ms", required_argument, 0, 'D'},
    {"two-paths", no_argument, 0, 'T'},      {"no-plot", no_argument, 0, 'P'},
    {"netns", no_argument, 0, 'N'},          {"direct", no_argument, 0, 'X'},
    {"classes", required_argument, 0, 'C'},  {"help", no_argument, 0, 'h'},
    {"version", no_argument, 0, 'V'},        {0, 0, 0, 0}};

static void parse_opts(int argc, char **argv, cl_opts_t *o) {
  *o = (cl_opts_t){.duration_s = 10,
                   .rate = 1000,
                   .size = 64,
                   .stats_ms = 1000,
                   .drain_ms = 3000,
                   .faults = "",
                   .out = "cluster-out"};
  int c;
  bool drain_set = false;
  opterr = 0; /* text_bad_option says it */
  while ((c = getopt_long(argc, argv, ":h", long_opts, NULL)) != -1) {
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
      drain_set = true;
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
    case 'X':
      o->direct = true;
      break;
    case 'C': {
      char err[160];
      if (classmix_parse(optarg, &o->mix, err, sizeof err) != 0) {
        fprintf(stderr, "bftnet-cluster: --classes: %s\n", err);
        usage();
      }
      o->classes = optarg;
      break;
    }
    case 'h':
      help();
      exit(0);
    case 'V':
      printf("bftnet-cluster %s\n", BFTNET_TOOLS_VERSION);
      exit(0);
    default:
      text_bad_option("bftnet-cluster", argv, c);
      usage();
    }
  }
  if (optind != argc) {
    fprintf(stderr, "bftnet-cluster: unexpected argument '%s'\n", argv[optind]);
    usage();
  }
  if (o->replicas == 0) {
    fprintf(stderr, "bftnet-cluster: --replicas is required\n");
    usage();
  }
  if (!drain_set && o->replicas > 16) o->drain_ms += 200 * (o->replicas - 16);
  if (o->direct && o->netns) {
    fprintf(stderr, "bftnet-cluster: --direct and --netns do not go together (in namespaces "
                    "every link crosses the hub's proxies)\n");
    exit(2);
  }
  if (o->replicas == 1) cl_warn("one replica has no peer: nothing to send or check");
}

/* Parses the SPEC, sizes the cluster (initial replicas + added ones),
 * checks every replica named and builds the plan. Exits 2 on error. */
static void plan_setup(void) {
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

static int mkdir_p(const char *path) {
  char tmp[CL_PATH];
  if (cl_path_fmt(tmp, sizeof tmp, "%s", path)) return -ENAMETOOLONG;
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -errno;
    *p = '/';
  }
  if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -errno;
  return 0;
}

/* --------------------------------------------------------- files, keys */

/* A file a run writes per replica: r<digits>.<anything> (r3.key,
 * r3.json, r12.report.json, r12.stdout.jsonl, r5.log). */
static bool replica_file(const char *name) {
  if (name[0] != 'r' || !isdigit((unsigned char)name[1])) return false;
  const char *p = name + 1;
  while (isdigit((unsigned char)*p))
    p++;
  return *p == '.';
}

/* Removes what an earlier run left in dir for its replicas, however many
 * it had: a report must not mix in replicas this run does not have. */
static void clear_replica_files(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  for (struct dirent *e; (e = readdir(d));) {
    char p[CL_PATH];
    if (replica_file(e->d_name) && cl_path_fmt(p, sizeof p, "%s/%s", dir, e->d_name) == 0)
      unlink(p);
  }
  closedir(d);
}

static int setup_paths(void) {
  if (strlen(cl.o.out) > CL_PATH - 64) return cl_warn("--out: path too long"), -ENAMETOOLONG;
  snprintf(cl.out, sizeof cl.out, "%s", cl.o.out);
  const char *sub[] = {"", "/keys", "/members", "/replicas"};
  for (size_t i = 0; i < sizeof sub / sizeof *sub; i++) {
    char d[CL_PATH];
    cl_path_fmt(d, sizeof d, "%s%s", cl.out, sub[i]);
    int rc = mkdir_p(d);
    if (rc) return cl_warn("%s: %s", d, strerror(-rc)), rc;
    if (i > 0) clear_replica_files(d);
  }
  const char *mine[] = {"report.json", "timeseries.csv", "plot.png",
                        "plot.gp",     "plot.dat",       "plot.log"};
  for (size_t i = 0; i < sizeof mine / sizeof *mine; i++) {
    char p[CL_PATH];
    cl_path_fmt(p, sizeof p, "%s/%s", cl.out, mine[i]);
    unlink(p);
  }
  for (unsigned i = 0; i < cl.nslots; i++) {
    cl_replica_t *r = &cl.rep[i];
    r->idx = (int)i;
    snprintf(r->name, sizeof r->name, "r%u", i);
    cl_path_fmt(r->key_path, CL_PATH, "%s/keys/%s.key", cl.out, r->name);
    cl_path_fmt(r->members_path, CL_PATH, "%s/members/%s.json", cl.out, r->name);
    cl_path_fmt(r->report_path, CL_PATH, "%s/replicas/%s.report.json", cl.out, r->name);
    cl_path_fmt(r->log_path, CL_PATH, "%s/replicas/%s.log", cl.out, r->name);
    cl_path_fmt(r->lines_path, CL_PATH, "%s/replicas/%s.stdout.jsonl", cl.out, r->name);
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
    if (rc != 0) return cl_warn("key %s: %s", r->key_path, bftnet_strerror(rc)), rc;
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
  if (cl_path_fmt(cl.replica_bin, sizeof cl.replica_bin, "%s/bftnet-replica", dir))
    return -ENAMETOOLONG;
  if (access(cl.replica_bin, X_OK) != 0) {
    cl_warn("%s: %s (use --bin-dir DIR)", cl.replica_bin, strerror(errno));
    return -ENOENT;
  }
  return 0;
}

static void raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

static void print_header(void) {
  text_say("bftnet-cluster: %u replicas (r0..r%u), %.1f s, %.15g msgs/s to each peer, %u B, %u "
           "address%s each, seed %" PRIu64,
           cl.ninit, cl.ninit - 1, cl.o.duration_s, cl.o.rate, cl.o.size, cl.npaths,
           cl.npaths > 1 ? "es" : "", cl.o.seed);
  if (cl.nfaults == 0) text_say("faults: none");
  for (size_t i = 0; i < cl.nfaults; i++) {
    char buf[FAULT_FORMAT_MAX];
    cl_fault_text(i, buf, sizeof buf);
    text_say("fault %u: %s", cl.faults[i].item, buf);
  }
  if (cl.nfaults) text_say("%zu fault actions before the end of the run", cl.nplan);
  text_say("output: %s", cl.out);
}

/* ------------------------------------------------------------ --netns */

static void netns_stop(void) {
  cluster_netns_leave(&cl.ns);
  if (cl.ns.hub || cl.ns.made) {
    cluster_netns_teardown(&cl.ns);
    text_say("netns: namespaces %s-* deleted", cl.ns.prefix);
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
    text_say("bftnet-cluster --netns: %s: not run (exit 4; without --netns everything runs on "
             "loopback)",
             why);
    return 4;
  }
  cl_path_fmt(log, sizeof log, "%s/netns.log", cl.out);
  unlink(log);
  int swept = cluster_netns_sweep(log);
  if (swept) text_say("netns: deleted %d namespaces left by clusters that are gone", swept);
  atexit(netns_atexit);
  if (cluster_netns_setup(&cl.ns, cl.nslots, cl.npaths, log, why, sizeof why) != 0 ||
      cluster_netns_enter(&cl.ns, why, sizeof why) != 0) {
    cl_warn("--netns: %s", why);
    netns_stop();
    return 3;
  }
  text_say("netns: %u namespaces %s-r0.. on bridge%s 10.77.0.0/24%s in %s-hub; partitions and "
           "failovers take links down; latency from the proxies (kernel netem: %s)",
           cl.nslots, cl.ns.prefix, cl.npaths > 1 ? "s" : "", cl.npaths > 1 ? ", 10.77.1.0/24" : "",
           cl.ns.prefix, cl.ns.netem ? "available" : "not available");
  return 0;
}

int main(int argc, char **argv) {
  parse_opts(argc, argv, &cl.o);
  cl.ninit = cl.o.replicas;
  if (!cl.o.seed_set) cl.o.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16);
  plan_setup();
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
  cl_path_fmt(csv, sizeof csv, "%s/timeseries.csv", cl.out);
  cl.csv = fopen(csv, "w");
  if (!cl.csv) return cl_warn("%s: %s", csv, strerror(errno)), 3;
  fprintf(cl.csv, "%s\n", CLUSTER_CSV_HEADER);
  print_header();
  if (uv_loop_init(&cl.loop) != 0) return cl_warn("uv_loop_init failed"), 3;
  run_init();
  if (run_start() != 0) run_abort("could not start the cluster");
  uv_run(&cl.loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&cl.loop) != 0) cl_warn("the event loop still had handles at the end");
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
