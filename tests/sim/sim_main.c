/*
 * sim_main.c — bftnet-sim, the driver of the deterministic simulation.
 *
 *   bftnet-sim --seed S [-v]       one seed, in this process: its
 *                                  parameters, faults, trace hash
 *   bftnet-sim --seeds N [--from S] [-j J] [--batch B] [--minutes M]
 *                                  seeds S..S+N-1 (BFTNET_SIM_SEEDS=N
 *                                  overrides N) in J child processes at a
 *                                  time, B seeds each; stops at the first
 *                                  failing seed (--keep-going: runs on and
 *                                  lists the failing seeds), or starts no
 *                                  more after M minutes
 *   bftnet-sim --replay-check N    runs each of N seeds twice: the same
 *                                  trace hash, or it fails
 *   bftnet-sim --no-classes ...    no seed configures traffic classes:
 *                                  each runs as before classes existed
 *                                  (seeds found then keep their meaning)
 *   bftnet-sim --defect D --expect-fail --seeds N
 *                                  (the defect build) succeeds when some
 *                                  seed fails, and says how many it took
 *
 * A failing seed prints itself, its parameters and fault schedule, the
 * first violated invariant and the command that replays it.
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sim.h"
#include "sim_alloc.h"

#ifdef BFTNET_SIM_DEFECTS
int bn_sim_defect; /* which defect the library build injects (core.h) */
#endif

static int g_pipe = -1; /* a child's result goes here; -1: in-process */
static sim_result_t g_fail;

static double wall_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void finish(const sim_result_t *r, int code) {
  if (g_pipe >= 0) {
    (void)!write(g_pipe, r, sizeof *r);
    _exit(code);
  }
  if (code) exit(code);
}

void sim_check_fail(sim_run_t *run, const char *fmt, ...) {
  sim_result_t *r = &g_fail;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->what, sizeof r->what, fmt, ap);
  va_end(ap);
  r->failed = 1;
  r->seed = run->seed;
  r->hash = run->w ? sim_trace_hash(run->w) : 0;
  r->sim_ns = run->w ? sim_now(run->w) - run->t0 : 0;
  fprintf(stderr, "\n=== FAIL seed %llu at %.3f s of simulated time (phase: %s)\n",
          (unsigned long long)run->seed, (double)r->sim_ns / SIM_S, run->phase);
  fprintf(stderr, "first violated: %s\n", r->what);
  sim_params_print(run, stderr);
  sim_faults_print(run, stderr);
  if (run->books && run->w) sim_books_dump(run, stderr);
  fprintf(stderr, "trace hash so far %016llx\n", (unsigned long long)r->hash);
#ifdef BFTNET_SIM_DEFECTS
  fprintf(stderr, "replay: bftnet-sim-defects --defect %d --seed %llu -v\n", bn_sim_defect,
          (unsigned long long)run->seed);
#else
  fprintf(stderr, "replay: bftnet-sim --seed %llu -v\n", (unsigned long long)run->seed);
#endif
  finish(r, 1);
  exit(1);
}

/* A crash (an assertion in the library, a signal) still names its seed. */
static uint64_t g_seed;
static void on_signal(int sig) {
  char msg[160];
  int n = snprintf(msg, sizeof msg,
                   "\n=== FAIL seed %llu: signal %d (replay: bftnet-sim --seed %llu -v)\n",
                   (unsigned long long)g_seed, sig, (unsigned long long)g_seed);
  (void)!write(2, msg, (size_t)n);
  signal(sig, SIG_DFL);
  raise(sig);
}

static void run_one(uint64_t seed, int defect, bool verbose, sim_result_t *r) {
  g_seed = seed;
#ifdef BFTNET_SIM_DEFECTS
  bn_sim_defect = defect;
#endif
  sim_run_seed(seed, defect, verbose, r);
}

/* A child runs seeds [seed, seed + count) one after the other (a batch
 * reuses the heap the first one faulted in) and writes each seed's result
 * into a pipe; a failing seed's result is its last. */
typedef struct child {
  pid_t pid;
  int fd;
  uint64_t seed, count;
} child_t;

static int child_start(child_t *c, uint64_t seed, uint64_t count, int defect) {
  int p[2];
  if (pipe(p) != 0) return -1;
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    close(p[0]);
    g_pipe = p[1];
    for (uint64_t i = 0; i < count; i++) {
      sim_result_t r;
      run_one(seed + i, defect, false, &r);
      (void)!write(g_pipe, &r, sizeof r);
    }
    _exit(0);
  }
  close(p[1]);
  *c = (child_t){.pid = pid, .fd = p[0], .seed = seed, .count = count};
  return 0;
}

/* Reads the child's results into r (count of them at most); returns how
 * many, the last one failed if the batch did not pass. */
static uint64_t child_end(child_t *c, sim_result_t *r) {
  uint64_t n = 0;
  while (n < c->count && read(c->fd, &r[n], sizeof *r) == (ssize_t)sizeof *r) {
    n++;
    if (r[n - 1].failed) break;
  }
  close(c->fd);
  int st;
  while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR) {
  }
  bool bad = WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) != 0);
  if (bad && (n == 0 || !r[n - 1].failed)) {
    sim_result_t *x = &r[n++];
    memset(x, 0, sizeof *x);
    x->seed = c->seed + n - 1;
    x->failed = 1;
    snprintf(x->what, sizeof x->what, "the run ended without a result (%s %d)",
             WIFSIGNALED(st) ? "signal" : "exit status",
             WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
  }
  return n;
}

typedef struct opts {
  uint64_t from, count;
  uint64_t batch;
  double minutes; /* stop starting seeds after this long (0: never) */
  int jobs, defect;
  bool expect_fail, verbose, single, replay_check, keep_going;
} opts_t;

static uint64_t mix(uint64_t h, uint64_t v) {
  return (h ^ v) * 0x100000001b3ull + (h >> 29);
}

/* What the passing seeds of a run add up to. */
typedef struct totals {
  uint64_t done, sim_ns, events, sent, delivered, hash;
  uint64_t cov[SIM_COV_COUNT], dropped, aborted, crashes, superseded, multi, holds, leaves;
  int64_t peak;
} totals_t;

static void totals_add(totals_t *t, const sim_result_t *r) {
  t->done++;
  t->sim_ns += r->sim_ns;
  t->events += r->events;
  t->sent += r->msgs_sent;
  t->delivered += r->msgs_delivered;
  if (r->lib_peak > t->peak) t->peak = r->lib_peak;
  t->hash = mix(t->hash, r->hash);
  for (int k = 0; k < SIM_COV_COUNT; k++)
    t->cov[k] += r->cov[k];
  t->dropped += r->dropped;
  t->aborted += r->aborted;
  t->crashes += r->crashes;
  t->holds += r->holds;
  t->leaves += r->leaves;
  t->superseded += r->superseded;
  t->multi += r->nclasses > 0;
}

static void totals_print(const totals_t *t, const opts_t *o, double wall) {
  static const char *const cov_names[] = {
#define SIM_XX_(name, text) text,
      SIM_COVERAGE(SIM_XX_)
#undef SIM_XX_
  };
  printf("bftnet-sim: %llu seeds passed (from %llu) in %.1f s: %.0f seeds/min, %.0f simulated "
         "s per wall s (%d jobs); %llu events, %llu messages sent, %llu delivered; library heap "
         "peak %.1f MiB; combined hash %016llx\n",
         (unsigned long long)t->done, (unsigned long long)o->from, wall, t->done / wall * 60,
         (double)t->sim_ns / SIM_S / wall, o->jobs, (unsigned long long)t->events,
         (unsigned long long)t->sent, (unsigned long long)t->delivered, (double)t->peak / (1 << 20),
         (unsigned long long)t->hash);
  printf("exercised: %llu seeds with classes configured, %llu crashes, %llu orderly stops, "
         "%llu connections held, %llu messages dropped from full rings, %llu superseded "
         "(keep-latest), %llu lost with aborted streams",
         (unsigned long long)t->multi, (unsigned long long)t->crashes,
         (unsigned long long)t->leaves, (unsigned long long)t->holds,
         (unsigned long long)t->dropped, (unsigned long long)t->superseded,
         (unsigned long long)t->aborted);
  for (int k = 0; k < SIM_COV_COUNT; k++)
    printf(", %llu %s", (unsigned long long)t->cov[k], cov_names[k]);
  printf("\n");
}

/* The verdict: a failing seed fails the run, unless a failure is what the
 * run expects (a defect build hunting its defect). */
static int verdict(const opts_t *o, const sim_result_t *fail) {
  if (o->expect_fail) {
    if (!fail) {
      printf("defect %d was NOT found in %llu seeds\n", o->defect, (unsigned long long)o->count);
      return 1;
    }
    printf("defect %d found by seed %llu (%llu seeds): %s\n", o->defect,
           (unsigned long long)fail->seed, (unsigned long long)(fail->seed - o->from + 1),
           fail->what);
    return 0;
  }
  if (fail) {
    printf("seed %llu FAILED: %s\nreplay: bftnet-sim --seed %llu -v\n",
           (unsigned long long)fail->seed, fail->what, (unsigned long long)fail->seed);
    return 1;
  }
  return 0;
}

/* Seeds from..from+count-1, `jobs` children at a time, `batch` seeds each. */
static int run_many(const opts_t *o) {
  double t0 = wall_s(), stop_at = o->minutes > 0 ? t0 + o->minutes * 60 : 0;
  totals_t t = {0};
  child_t kids[64];
  int nk = 0;
  uint64_t next = o->from, end = o->from + o->count;
  sim_result_t fail = {0}, *rs = sim_calloc(o->batch + 1, sizeof *rs);
  bool failed = false;
  uint64_t nfails = 0;
  while ((next < end && !failed) || nk > 0) {
    if (stop_at && wall_s() > stop_at) end = next; /* out of time: finish what runs */
    while (nk < o->jobs && next < end && !failed) {
      uint64_t k = end - next < o->batch ? end - next : o->batch;
      if (child_start(&kids[nk], next, k, o->defect) != 0) {
        perror("fork");
        return 2;
      }
      nk++;
      next += k;
    }
    /* Results in seed order: wait for the oldest child. */
    child_t c = kids[0];
    memmove(&kids[0], &kids[1], (size_t)(nk - 1) * sizeof *kids);
    nk--;
    uint64_t n = child_end(&c, rs);
    for (uint64_t i = 0; i < n; i++) {
      if (!rs[i].failed) {
        totals_add(&t, &rs[i]);
        continue;
      }
      if (!failed || rs[i].seed < fail.seed) fail = rs[i];
      failed = !o->keep_going;
      if (o->keep_going) { /* note it, run the rest of the batch's seeds */
        if (nfails++ < 20)
          printf("seed %llu FAILED: %s\n", (unsigned long long)rs[i].seed, rs[i].what);
        if (c.seed + c.count > rs[i].seed + 1 && nk < 64 &&
            child_start(&kids[nk], rs[i].seed + 1, c.seed + c.count - rs[i].seed - 1, o->defect) ==
                0)
          nk++;
      }
      break;
    }
  }
  sim_free(rs);
  totals_print(&t, o, wall_s() - t0);
  if (o->keep_going && nfails) {
    printf("%llu seeds failed (the first is %llu)\n", (unsigned long long)nfails,
           (unsigned long long)fail.seed);
    return o->expect_fail ? 0 : 1;
  }
  return verdict(o, failed ? &fail : NULL);
}

/* Each seed twice, in two children: the trace hashes must match. */
static int replay_check(const opts_t *o) {
  for (uint64_t s = o->from; s < o->from + o->count; s++) {
    sim_result_t a, b;
    child_t c;
    if (child_start(&c, s, 1, o->defect) != 0) return 2;
    child_end(&c, &a);
    if (child_start(&c, s, 1, o->defect) != 0) return 2;
    child_end(&c, &b);
    if (a.failed || b.failed) {
      printf("seed %llu failed: %s\n", (unsigned long long)s, a.failed ? a.what : b.what);
      return 1;
    }
    if (a.hash != b.hash || a.events != b.events || a.sim_ns != b.sim_ns) {
      printf("seed %llu does not replay: trace %016llx vs %016llx, %llu vs %llu events\n",
             (unsigned long long)s, (unsigned long long)a.hash, (unsigned long long)b.hash,
             (unsigned long long)a.events, (unsigned long long)b.events);
      return 1;
    }
  }
  printf("bftnet-sim: %llu seeds replayed with identical traces\n", (unsigned long long)o->count);
  return 0;
}

static void usage(void) {
  fprintf(stderr, "usage: bftnet-sim [--seed S [-v]] [--seeds N [--from S] [-j J] [--batch B] "
                  "[--minutes M] [--keep-going]] [--replay-check N] [--defect D --expect-fail] "
                  "[--no-classes]\n");
  exit(2);
}

int main(int argc, char **argv) {
  opts_t o = {.from = 1, .count = 100, .jobs = 1, .batch = 10};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--seed") && v)
      o.single = true, o.from = strtoull(v, NULL, 0), i++;
    else if (!strcmp(a, "--seeds") && v)
      o.count = strtoull(v, NULL, 0), i++;
    else if (!strcmp(a, "--from") && v)
      o.from = strtoull(v, NULL, 0), i++;
    else if (!strcmp(a, "-j") && v)
      o.jobs = atoi(v), i++;
    else if (!strcmp(a, "--batch") && v)
      o.batch = strtoull(v, NULL, 0), i++;
    else if (!strcmp(a, "--minutes") && v)
      o.minutes = atof(v), i++;
    else if (!strcmp(a, "--defect") && v)
      o.defect = atoi(v), i++;
    else if (!strcmp(a, "--replay-check") && v)
      o.replay_check = true, o.count = strtoull(v, NULL, 0), i++;
    else if (!strcmp(a, "--expect-fail"))
      o.expect_fail = true;
    else if (!strcmp(a, "--no-classes"))
      sim_classes_off = true;
    else if (!strcmp(a, "--keep-going"))
      o.keep_going = true;
    else if (!strcmp(a, "-v"))
      o.verbose = true;
    else
      usage();
  }
  const char *env = getenv("BFTNET_SIM_SEEDS");
  if (env && *env && !o.single && !o.replay_check) o.count = strtoull(env, NULL, 0);
  if (o.jobs < 1) o.jobs = 1;
  if (o.jobs > 64) o.jobs = 64;
  if (o.batch < 1) o.batch = 1;
#ifndef BFTNET_SIM_DEFECTS
  if (o.defect) {
    fprintf(stderr, "bftnet-sim: --defect needs the defect build (bftnet-sim-defects)\n");
    return 2;
  }
#endif
  /* A seed allocates and frees many large buffers (payloads, windows):
   * from the heap, not a fresh mmap each (the system time halves). */
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  mallopt(M_TOP_PAD, 16 << 20);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGABRT, on_signal);
  signal(SIGSEGV, on_signal);
  sim_warmup();
  if (o.single) {
    sim_result_t r;
    double t0 = wall_s();
    run_one(o.from, o.defect, o.verbose, &r);
    double wall = wall_s() - t0;
    printf("seed %llu passed: %d nodes, %d classes configured, %d fault actions, %.1f s simulated "
           "in %.3f s wall, %llu "
           "events, %llu messages sent, %llu delivered, library heap peak %.1f MiB\n"
           "trace hash %016llx\n",
           (unsigned long long)r.seed, r.nnodes, r.nclasses, r.nfaults, (double)r.sim_ns / SIM_S,
           wall, (unsigned long long)r.events, (unsigned long long)r.msgs_sent,
           (unsigned long long)r.msgs_delivered, (double)r.lib_peak / (1 << 20),
           (unsigned long long)r.hash);
    return 0;
  }
  if (o.replay_check) return replay_check(&o);
  return run_many(&o);
}
