/*
 * bench_harness.c — bftnet-bench's process harness: clocks, statistics,
 * the shared control block, the children's phase tracking and the parent's
 * fork / walk-the-phases / reap loop. See bftnet_bench.h.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bftnet_bench.h"

bb_shm_t *bb_shm;

/* ------------------------------------------------------------ clocks */

double bb_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

uint64_t bb_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double bb_cpu_self(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru)) return 0;
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

double bb_cpu_thread(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void bb_sleep(double s) {
  if (s <= 0) return;
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  while (nanosleep(&ts, &ts) && errno == EINTR) {
  }
}

long bb_rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return -1;
  long size = 0, res = -1;
  if (fscanf(f, "%ld %ld", &size, &res) != 2) res = -1;
  fclose(f);
  return res < 0 ? -1 : res * sysconf(_SC_PAGESIZE);
}

/* -------------------------------------------------------------- stats */

int bb_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double bb_median(const double *v, int n) {
  double tmp[64];
  if (n <= 0) return NAN;
  if (n > 64) n = 64;
  memcpy(tmp, v, (size_t)n * sizeof *v);
  qsort(tmp, (size_t)n, sizeof *tmp, bb_cmp_double);
  return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

double bb_pct_sorted(const double *v, size_t n, double p) {
  if (n == 0) return NAN;
  size_t i = (size_t)ceil(p * (double)n);
  if (i > 0) i--;
  if (i >= n) i = n - 1;
  return v[i];
}

static unsigned msb64(uint64_t v) {
  return 63u - (unsigned)__builtin_clzll(v);
}

void bb_hist_add(uint64_t *h, uint64_t v) {
  size_t idx;
  if (v < 2 * BB_HIST_SUB) {
    idx = (size_t)v;
  } else {
    unsigned m = msb64(v);
    idx = 2 * BB_HIST_SUB + (size_t)(m - BB_HIST_SUBBITS - 1) * BB_HIST_SUB +
          (size_t)((v >> (m - BB_HIST_SUBBITS)) - BB_HIST_SUB);
  }
  h[idx]++;
}

uint64_t bb_hist_count(const uint64_t *h) {
  uint64_t n = 0;
  for (size_t i = 0; i < BB_HIST_BUCKETS; i++)
    n += h[i];
  return n;
}

static double hist_mid(size_t idx) {
  if (idx < 2 * BB_HIST_SUB) return (double)idx;
  size_t k = idx - 2 * BB_HIST_SUB;
  unsigned m = (unsigned)(k / BB_HIST_SUB) + BB_HIST_SUBBITS + 1;
  uint64_t top = (uint64_t)(k % BB_HIST_SUB) + BB_HIST_SUB;
  uint64_t width = 1ull << (m - BB_HIST_SUBBITS);
  return (double)(top * width) + (double)width / 2;
}

double bb_hist_pct(const uint64_t *h, double p) {
  uint64_t n = bb_hist_count(h);
  if (n == 0) return NAN;
  uint64_t rank = (uint64_t)ceil(p * (double)n);
  if (rank < 1) rank = 1;
  uint64_t seen = 0;
  for (size_t i = 0; i < BB_HIST_BUCKETS; i++) {
    seen += h[i];
    if (seen >= rank) return hist_mid(i);
  }
  return hist_mid(BB_HIST_BUCKETS - 1);
}

size_t bb_put_uvarint(uint8_t *p, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  p[n++] = (uint8_t)v;
  return n;
}

int bb_get_uvarint(const uint8_t *p, size_t n, uint64_t *v) {
  uint64_t x = 0;
  for (size_t i = 0; i < n && i < 10; i++) {
    x |= (uint64_t)(p[i] & 0x7f) << (7 * i);
    if (!(p[i] & 0x80)) {
      *v = x;
      return (int)i + 1;
    }
  }
  return n >= 10 ? -1 : 0;
}

/* ------------------------------------------------------ child side */

void bb_child_init(bb_child_t *ch, int idx, const bb_job_t *job) {
  memset(ch, 0, sizeof *ch);
  ch->idx = idx;
  ch->last_phase = BB_PH_INIT;
  ch->t_start = bb_now();
  ch->deadline = ch->t_start + job->deadline;
}

bool bb_past_deadline(const bb_child_t *ch) {
  return bb_now() > ch->deadline;
}

static void snapshot(bb_child_t *ch, int w, int edge) {
  bb_snap_t *s = &bb_shm->side[ch->idx].snap[w][edge];
  bb_counts_t c = ch->c;
  if (ch->refresh) ch->refresh(ch, &c);
  s->t = bb_now();
  s->cpu = bb_cpu_self();
  s->c = c;
  atomic_store_explicit(&s->valid, 1, memory_order_release);
}

int bb_tick(bb_child_t *ch) {
  int p = atomic_load_explicit(&bb_shm->phase, memory_order_acquire);
  if (p != ch->last_phase) {
    for (int q = ch->last_phase + 1; q <= p; q++) {
      if (q == BB_PH_M0) snapshot(ch, 0, 0);
      if (q == BB_PH_E0) snapshot(ch, 0, 1);
      if (q == BB_PH_M1) snapshot(ch, 1, 0);
      if (q == BB_PH_E1) snapshot(ch, 1, 1);
    }
    ch->last_phase = p;
  }
  if (p < BB_PH_STOP && bb_past_deadline(ch)) return BB_PH_STOP;
  return p;
}

int bb_wait_phase(bb_child_t *ch, int target) {
  for (;;) {
    int p = bb_tick(ch);
    if (p >= target) return p;
    bb_sleep(0.001);
  }
}

void bb_ready(int idx) {
  atomic_store(&bb_shm->side[idx].state, BB_ST_READY);
}
void bb_done(int idx) {
  atomic_store(&bb_shm->side[idx].state, BB_ST_DONE);
}

_Noreturn void bb_fail(int idx, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(bb_shm->side[idx].err, sizeof bb_shm->side[idx].err, fmt, ap);
  va_end(ap);
  atomic_store(&bb_shm->side[idx].state, BB_ST_FAILED);
  _exit(1);
}

int bb_ready_go(bb_child_t *ch) {
  bb_ready(ch->idx);
  return bb_wait_phase(ch, BB_PH_GO);
}

uint8_t *bb_msg_alloc(int idx, const bb_job_t *job) {
  uint8_t *m = calloc(1, job->size + 8);
  if (!m) bb_fail(idx, "out of memory");
  return m;
}

void bb_publish_addr(int node, const char *addr) {
  snprintf(bb_shm->addr[node], BB_ADDR_MAX, "%s", addr);
  atomic_store_explicit(&bb_shm->addr_set[node], 1, memory_order_release);
}

const char *bb_wait_addr(bb_child_t *ch, int node) {
  while (!atomic_load_explicit(&bb_shm->addr_set[node], memory_order_acquire)) {
    if (bb_past_deadline(ch)) bb_fail(ch->idx, "no address from node %d", node);
    bb_sleep(0.0005);
  }
  return bb_shm->addr[node];
}

/* ------------------------------------------- payloads and round trips */

void bb_put_seq(uint8_t *msg, size_t size, uint64_t seq) {
  if (size >= 8) memcpy(msg, &seq, 8);
}

void bb_count_msg(bb_counts_t *c, const uint8_t *data, size_t len, uint64_t *last) {
  c->msgs++;
  c->bytes += len;
  if (len >= 8) {
    uint64_t s;
    memcpy(&s, data, 8);
    if (s <= *last) c->bad++;
    *last = s;
  }
}

void bb_rtt_record(const bb_job_t *job, uint32_t i, uint64_t ns) {
  uint32_t k = atomic_load(&bb_shm->nsamples);
  if (i >= job->rtt_warm && k < BB_MAX_SAMPLES) {
    bb_shm->samples[k] = ns;
    atomic_store(&bb_shm->nsamples, k + 1);
  }
}

void bb_rtt_pinger(bb_child_t *ch, const bb_job_t *job, bb_rtt_fn rtt, void *ud,
                   bool check_deadline) {
  const int idx = ch->idx;
  uint8_t *out = bb_msg_alloc(idx, job);
  bb_ready_go(ch);
  uint32_t total = job->rtt_warm + job->rtt_samples;
  double t_end = bb_now() + job->window;
  for (uint32_t i = 0; i < total; i++) {
    if (i >= job->rtt_warm && bb_now() > t_end) break;
    bb_put_seq(out, job->size, i + 1);
    uint64_t ns;
    if (!rtt(ch, ud, i, out, job->size, &ns)) bb_shm->side[idx].res[BB_RES_RTT_BAD]++;
    bb_rtt_record(job, i, ns);
    if (check_deadline && bb_past_deadline(ch)) bb_fail(idx, "deadline");
  }
  bb_done(idx);
  bb_wait_phase(ch, BB_PH_STOP);
  free(out);
}

/* ------------------------------------------------------ parent side */

static int check_failed(int n, char *errbuf, size_t errcap) {
  for (int i = 0; i < n; i++) {
    if (atomic_load(&bb_shm->side[i].state) == BB_ST_FAILED) {
      snprintf(errbuf, errcap, "side %d: %s", i, bb_shm->side[i].err);
      return -1;
    }
  }
  return 0;
}

/* Sleeps s seconds in small steps, returning early (-1) if a child failed. */
static int watch(double s, int n, char *errbuf, size_t errcap) {
  double end = bb_now() + s;
  for (;;) {
    if (check_failed(n, errbuf, errcap)) return -1;
    double left = end - bb_now();
    if (left <= 0) return 0;
    bb_sleep(left < 0.01 ? left : 0.01);
  }
}

static void set_phase(int p) {
  atomic_store_explicit(&bb_shm->phase, p, memory_order_release);
}

/* Waits until sides [0, nwait) reach state; any of [0, n) failing ends it. */
static int wait_states(int n, int nwait, int state, double timeout, char *errbuf, size_t errcap) {
  double end = bb_now() + timeout;
  for (;;) {
    if (check_failed(n, errbuf, errcap)) return -1;
    int ok = 1;
    for (int i = 0; i < nwait; i++)
      ok &= atomic_load(&bb_shm->side[i].state) >= state;
    if (ok) return 0;
    if (bb_now() > end) {
      snprintf(errbuf, errcap, "timed out after %.0f s waiting for %s", timeout,
               state == BB_ST_READY ? "the children to be ready" : "the children to finish");
      return -1;
    }
    bb_sleep(0.001);
  }
}

/* Waits for every child; SIGKILLs what is left at the deadline. Returns -1
 * if one exited badly (and no earlier error was recorded). */
static int reap(pid_t *pids, int n, double timeout, char *errbuf, size_t errcap, int had_err) {
  double end = bb_now() + timeout;
  int left = n, bad = 0;
  while (left > 0) {
    for (int i = 0; i < n; i++) {
      if (pids[i] <= 0) continue;
      int st;
      pid_t r = waitpid(pids[i], &st, WNOHANG);
      if (r == pids[i] || (r < 0 && errno == ECHILD)) {
        if (r == pids[i] && !(WIFEXITED(st) && WEXITSTATUS(st) == 0) && !bad && !had_err) {
          bad = 1;
          if (check_failed(n, errbuf, errcap) == 0 && WIFSIGNALED(st))
            snprintf(errbuf, errcap, "side %d killed by signal %d (%s)", i, WTERMSIG(st),
                     strsignal(WTERMSIG(st)));
          else if (check_failed(n, errbuf, errcap) == 0)
            snprintf(errbuf, errcap, "side %d exited with status %d", i, WEXITSTATUS(st));
        }
        pids[i] = 0;
        left--;
      }
    }
    if (left == 0) break;
    if (bb_now() > end) {
      for (int i = 0; i < n; i++)
        if (pids[i] > 0) kill(pids[i], SIGKILL);
      if (!bad && !had_err)
        snprintf(errbuf, errcap, "children did not exit in %.0f s (killed)", timeout);
      bad = 1;
      end = bb_now() + 5; /* SIGKILL cannot be ignored: bounded */
    }
    bb_sleep(0.002);
  }
  return bad ? -1 : 0;
}

static void shm_reset(void) {
  atomic_store(&bb_shm->phase, BB_PH_INIT);
  bb_shm->rate = 0;
  for (int i = 0; i < BB_MAX_NODES; i++) {
    atomic_store(&bb_shm->addr_set[i], 0);
    bb_shm->addr[i][0] = 0;
    atomic_store(&bb_shm->side[i].state, BB_ST_STARTING);
    bb_shm->side[i].err[0] = 0;
    memset(bb_shm->side[i].snap, 0, sizeof bb_shm->side[i].snap);
    memset(bb_shm->side[i].res, 0, sizeof bb_shm->side[i].res);
  }
  memset(bb_shm->hist, 0, sizeof bb_shm->hist);
  atomic_store(&bb_shm->nsamples, 0);
}

/* Waits (up to 2 s) until every side has snapshotted the end of window w:
 * a child blocked in a read must see the end before STOP makes its peer
 * hang up, or its window would have no end. */
static int wait_snap(int n, int w, char *errbuf, size_t errcap) {
  double end = bb_now() + 2;
  for (;;) {
    if (check_failed(n, errbuf, errcap)) return -1;
    int ok = 1;
    for (int i = 0; i < n; i++)
      ok &= bb_shm->side[i].snap[w][1].valid;
    if (ok || bb_now() > end) return 0;
    bb_sleep(0.0005);
  }
}

static int walk(int n, const bb_job_t *job, bb_plan_t plan, bb_rate_fn rate, char *errbuf,
                size_t errcap) {
  if (wait_states(n, n, BB_ST_READY, 20, errbuf, errcap)) return -1;
  set_phase(BB_PH_GO);
  if (plan == BB_PLAN_UNTIL_DONE)
    return wait_states(n, 1, BB_ST_DONE, job->deadline, errbuf, errcap);
  if (watch(job->warm, n, errbuf, errcap)) return -1;
  set_phase(BB_PH_M0);
  if (watch(job->window, n, errbuf, errcap)) return -1;
  set_phase(BB_PH_E0);
  if (wait_snap(n, 0, errbuf, errcap)) return -1;
  if (plan == BB_PLAN_WINDOW) return 0;
  set_phase(BB_PH_PAUSE);
  if (watch(0.3, n, errbuf, errcap)) return -1; /* backlogs drain */
  bb_shm->rate = rate ? rate(job) : 0;
  set_phase(BB_PH_GO1);
  if (watch(job->warm, n, errbuf, errcap)) return -1;
  set_phase(BB_PH_M1);
  if (watch(job->window, n, errbuf, errcap)) return -1;
  set_phase(BB_PH_E1);
  return wait_snap(n, 1, errbuf, errcap);
}

int bb_run(const bb_role_fn *roles, int n, const bb_job_t *job, bb_plan_t plan, bb_rate_fn rate,
           char *errbuf, size_t errcap) {
  pid_t pids[BB_MAX_NODES] = {0};
  if (n < 1 || n > BB_MAX_NODES) return -1;
  shm_reset();
  fflush(NULL);
  int rc = 0;
  for (int i = 0; i < n; i++) {
    pids[i] = fork();
    if (pids[i] < 0) {
      snprintf(errbuf, errcap, "fork: %s", strerror(errno));
      rc = -1;
      break;
    }
    if (pids[i] == 0) {
      roles[i](i, job);
      _exit(0);
    }
  }
  if (rc == 0) rc = walk(n, job, plan, rate, errbuf, errcap);
  set_phase(BB_PH_STOP);
  if (reap(pids, n, 15, errbuf, errcap, rc != 0)) rc = -1;
  return rc;
}

double bb_win_dt(int side, int w) {
  const bb_snap_t *a = &bb_shm->side[side].snap[w][0], *b = &bb_shm->side[side].snap[w][1];
  if (!a->valid || !b->valid || b->t <= a->t) return NAN;
  return b->t - a->t;
}

double bb_win_rate(int side, int w, size_t off) {
  const bb_snap_t *a = &bb_shm->side[side].snap[w][0], *b = &bb_shm->side[side].snap[w][1];
  double dt = bb_win_dt(side, w);
  if (isnan(dt)) return NAN;
  uint64_t x0, x1;
  memcpy(&x0, (const char *)&a->c + off, sizeof x0);
  memcpy(&x1, (const char *)&b->c + off, sizeof x1);
  return (double)(x1 - x0) / dt;
}

double bb_win_cpu_rate(int side, int w) {
  const bb_snap_t *a = &bb_shm->side[side].snap[w][0], *b = &bb_shm->side[side].snap[w][1];
  double dt = bb_win_dt(side, w);
  return isnan(dt) ? NAN : (b->cpu - a->cpu) / dt;
}
