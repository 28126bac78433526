/*
 * class_bench.c — votes behind blocks, with and without traffic classes.
 *
 * For each cell (topology: a pair, or four nodes all-to-all; bulk message:
 * 1 MiB or 64 KiB; mode: "fifo", bftnet without classes, where votes and
 * blocks share each member's one ring and stream as before classes, or
 * "classes", votes in class 0 and blocks in class 1 of lower priority),
 * one process per node on loopback (fork), all on one machine clock:
 *   idle   every node sends a 64 B vote to every other every 10 ms;
 *   bulk   the same, while a thread per node sends blocks to every other
 *          flat out (its ring full: drop-oldest does the rest);
 *   alone  blocks only;
 * in the order idle, warm-up (blocks only, measured by no phase: the rings
 * fill and the windows open), (bulk, alone) three times, drain, idle: the
 * figures compared are taken in turns, minutes apart at most. In the drain
 * nothing is sent until every ring is empty and every byte confirmed read,
 * so the last idle phase measures votes on quiet links, not votes queued
 * behind the blocks still in the rings.
 * A vote carries its send time; its receiver (one thread, bftnet_recv_batch)
 * records the latency. Reported per cell: vote latency p50/p99/max idle and
 * under bulk, the ratio of the p99s, the machine's own floor (how late a
 * thread of each node, sleeping to 10 ms ticks like the vote sender, wakes:
 * p99 idle and under bulk; a vote crosses four such wakeups), votes lost
 * (sent, never received: in fifo mode they drop from the ring with the
 * blocks), blocks received per second with the votes and alone, and the
 * blocks the senders dropped. The targets (vote p99 under bulk <= 3x idle,
 * 0 votes lost, blocks with votes >= 0.9x alone) are printed, not asserted:
 * every figure is from the same run, cells alternating.
 *
 * Usage: class_bench [--seconds S] [--cells LIST] [--modes LIST] [--cdf DIR] [--link RATE]
 *                    [--quick]
 *   --cells: any of pair-1m,pair-64k,all4-1m,all4-64k (default all);
 *   --modes: any of fifo,classes,nocap (default fifo,classes; nocap: the
 *   classes without the in-flight cap, class_inflight_min = UINT32_MAX);
 *   --cdf DIR writes each cell's sorted vote latencies, for gnuplot
 *   (bench/class_bench.gp draws them).
 * Environment, for diagnosis: CB_DIAG=1 prints the vote class's own stats
 * per member; CB_WINDOW, CB_LOWAT, CB_INFLIGHT set yamux_window,
 * notsent_lowat, class_inflight_min;
 * CB_VOTE_RX=1 gives the votes a receiving thread of their own
 * (bftnet_recv_classes); CB_LOOP_NICE=N runs the library's loop thread
 * (bftnet-loop) at nice N (negative: root or CAP_SYS_NICE), CB_VOTE_NICE=N
 * the votes' sending and receiving threads; CB_SLICE_US=U asks the kernel
 * (Linux 6.12+) for time slices of U us for those threads, CB_SLICE_BULK_US
 * for the blocks' threads.
 * --link RATE: each node in a network namespace of its own behind a link of
 * RATE (tc tbf, e.g. 1gbit), so that the link and not the CPU is what the
 * blocks saturate (root; see link_up).
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_harness.h"
#include "bftnet.h"

#define MAXN           4
#define MAX_LAT        16384
#define VOTE_SIZE      64
#define VOTE_PERIOD_NS 10000000ull
#define BULK_RING      64 /* messages a member's ring (fifo) or bulk class holds */

enum { PH_SETUP, PH_CONNECT, PH_IDLE, PH_BULK, PH_ALONE, PH_WARM, PH_DRAIN, PH_STOP, PH_N };
/* fifo: one class; classes: votes and blocks, as configured by default;
 * nocap: the same without the in-flight cap (class_inflight_min =
 * UINT32_MAX), what the classes did before it. */
enum { M_FIFO, M_CLASSES, M_NOCAP, M_N };
static const char *const mode_name[M_N] = {"fifo", "classes", "nocap"};

typedef struct node_res {
  _Atomic int ready;   /* the last phase this node is ready for */
  _Atomic int drained; /* in the drain: all written and confirmed read */
  char addr[BFTNET_ADDR_MAX];
  uint32_t nlat[2];          /* vote latencies (as receiver) by send phase: idle, bulk */
  uint32_t lat[2][MAX_LAT];  /* us */
  uint32_t nwake[2];         /* the probe's wakeup lateness by phase: idle, bulk */
  uint32_t wake[2][MAX_LAT]; /* us */
  uint64_t votes_sent[2], votes_recv[2];
  uint64_t bulk_bytes[PH_N]; /* received while in phase p (receiver's view) */
  double bulk_secs[PH_N];    /* how long it was in phase p */
  uint64_t bulk_sent, bulk_dropped, vote_dropped;
} node_res_t;

typedef struct shm {
  _Atomic int phase;
  int n, mode;
  size_t bulk;
  node_res_t node[MAXN];
} shm_t;

static shm_t *g;

/* ------------------------------------------------------------- a node */

typedef struct node {
  int me;
  bftnet_t *net;
  char id[MAXN][8];
  atomic_bool stop;
} node_t;

static int phase(void) {
  return atomic_load(&g->phase);
}

static void *vote_main(void *arg) {
  node_t *n = arg;
  node_res_t *r = &g->node[n->me];
  uint8_t v[VOTE_SIZE] = {0};
  uint64_t next = bb_now_ns();
  while (!atomic_load(&n->stop)) {
    int ph = phase();
    if (ph == PH_IDLE || ph == PH_BULK) {
      int k = ph == PH_IDLE ? 0 : 1;
      for (int j = 0; j < g->n; j++) {
        if (j == n->me) continue;
        v[0] = 'V';
        v[1] = (uint8_t)k;
        uint64_t t = bb_now_ns();
        memcpy(v + 8, &t, sizeof t);
        bftnet_send_opts_t o = {.cls = 0};
        if (bftnet_send_ex(n->net, n->id[j], &o, v, sizeof v) == 0) r->votes_sent[k]++;
      }
    }
    next += VOTE_PERIOD_NS;
    uint64_t now = bb_now_ns();
    if (next > now)
      bb_sleep((double)(next - now) / 1e9);
    else
      next = now;
  }
  return NULL;
}

/* The machine's own floor, in the same run: a thread of each node that
 * sleeps to the next 10 ms tick, like the vote sender, and records how late
 * it woke. A vote crosses four threads (its sender, two loop threads, its
 * receiver), each woken the same way; when the cores are busy, each of
 * those wakeups can be this late before bftnet runs any code for it. */
static void *probe_main(void *arg) {
  node_t *n = arg;
  node_res_t *r = &g->node[n->me];
  struct timespec next;
  clock_gettime(CLOCK_MONOTONIC, &next);
  while (!atomic_load(&n->stop)) {
    next.tv_nsec += (long)VOTE_PERIOD_NS;
    if (next.tv_nsec >= 1000000000L) {
      next.tv_nsec -= 1000000000L;
      next.tv_sec++;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR) {
    }
    uint64_t due = (uint64_t)next.tv_sec * 1000000000ull + (uint64_t)next.tv_nsec;
    uint64_t now = bb_now_ns();
    int ph = phase();
    if (ph != PH_IDLE && ph != PH_BULK) continue;
    int k = ph == PH_IDLE ? 0 : 1;
    if (r->nwake[k] < MAX_LAT) r->wake[k][r->nwake[k]++] = (uint32_t)((now - due) / 1000);
  }
  return NULL;
}

/* Nothing queued to any member, in any class, and every byte written
 * confirmed read (without classes a stream's retransmit window can hold
 * megabytes the ring no longer counts). */
static bool drained(node_t *n) {
  return bftnet_flush(n->net, 50) == 0;
}

/* Blocks flat out: each member's ring is topped up to full and one or two
 * past it (drop-oldest takes the excess) whenever it falls below half, and
 * the thread naps while every ring is at least half full. The link stays
 * saturated (the ring never runs dry) without the sender copying, and the
 * ring dropping, blocks by the thousand a second: on a two-core machine
 * that churn would take the cores from the loop threads, and the votes
 * would measure it instead of the scheduling. */
static void *bulk_main(void *arg) {
  node_t *n = arg;
  node_res_t *r = &g->node[n->me];
  uint8_t *b = calloc(1, g->bulk);
  if (!b) return NULL;
  b[0] = 'B';
  uint8_t cls = g->mode != M_FIFO ? 1 : 0;
  bftnet_send_opts_t o = {.cls = cls};
  while (!atomic_load(&n->stop)) {
    int ph = phase();
    if (ph != PH_BULK && ph != PH_ALONE && ph != PH_WARM) {
      if (ph == PH_DRAIN) atomic_store(&r->drained, drained(n));
      bb_sleep(0.001);
      continue;
    }
    bool full = true;
    for (int j = 0; j < g->n; j++) {
      if (j == n->me) continue;
      bftnet_class_stats_t st;
      if (bftnet_class_stats(n->net, n->id[j], cls, &st) < 0 || st.ring_depth >= BULK_RING / 2)
        continue;
      full = false;
      for (uint32_t k = st.ring_depth; k < BULK_RING + 2; k++)
        if (bftnet_send_ex(n->net, n->id[j], &o, b, g->bulk) == 0) r->bulk_sent++;
    }
    if (full) bb_sleep(0.0005);
  }
  free(b);
  return NULL;
}

typedef struct rx_arg {
  node_t *n;
  uint32_t mask; /* classes taken (0: all) */
} rx_arg_t;

static void *recv_main(void *arg) {
  rx_arg_t *a = arg;
  node_t *n = a->n;
  node_res_t *r = &g->node[n->me];
  bftnet_msg_t m[64];
  int ph = phase();
  double since = bb_now();
  uint64_t bytes = 0;
  while (!atomic_load(&n->stop)) {
    int k = a->mask ? bftnet_recv_classes(n->net, a->mask, m, 64, 5)
                    : bftnet_recv_batch(n->net, m, 64, 5);
    uint64_t now = bb_now_ns();
    for (int i = 0; i < k; i++) {
      if (m[i].len == VOTE_SIZE && m[i].data[0] == 'V') {
        int s = m[i].data[1] & 1;
        uint64_t t;
        memcpy(&t, m[i].data + 8, sizeof t);
        if (r->nlat[s] < MAX_LAT) r->lat[s][r->nlat[s]++] = (uint32_t)((now - t) / 1000);
        r->votes_recv[s]++;
      } else {
        bytes += m[i].len;
      }
      bftnet_msg_release(&m[i]);
    }
    int p = phase();
    if (p != ph && a->mask == 1u) { /* the votes' own thread: no blocks, no phase time */
      ph = p;
    } else if (p != ph) { /* the bytes received while in phase ph */
      double t = bb_now();
      r->bulk_bytes[ph] += bytes;
      r->bulk_secs[ph] += t - since;
      bytes = 0;
      since = t;
      ph = p;
    }
  }
  return NULL;
}

static void wait_phase(int p) {
  while (phase() < p && phase() != PH_STOP)
    bb_sleep(0.001);
}

static void configure(bftnet_config_t *cfg, bftnet_class_t *c) {
  bftnet_config_init(cfg);
  cfg->log_level = 1;
  cfg->max_message_size = 2u << 20;
  if (getenv("CB_WINDOW")) cfg->yamux_window = (uint32_t)atoi(getenv("CB_WINDOW"));
  if (getenv("CB_LOWAT")) cfg->notsent_lowat = (uint32_t)atoi(getenv("CB_LOWAT"));
  if (getenv("CB_INFLIGHT")) cfg->class_inflight_min = (uint32_t)atoi(getenv("CB_INFLIGHT"));
  if (g->mode == M_NOCAP) cfg->class_inflight_min = UINT32_MAX;
  if (g->mode == M_FIFO) {
    cfg->ring_capacity = BULK_RING; /* votes share it with the blocks */
    return;
  }
  bftnet_class_init(&c[0], "votes");
  bftnet_class_init(&c[1], "blocks");
  c[1].priority = 1;
  c[1].ring_capacity = BULK_RING;
  c[1].ring_max_bytes = (uint64_t)BULK_RING * g->bulk;
  cfg->classes = c;
  cfg->nclasses = 2;
}

/* Every stream of every class to every other node is up. */
static bool all_up(node_t *n) {
  int ncls = bftnet_class_count(n->net);
  for (int j = 0; j < g->n; j++)
    for (int k = 0; k < ncls && j != n->me; k++) {
      bftnet_class_stats_t st;
      if (bftnet_class_stats(n->net, n->id[j], (uint8_t)k, &st) < 0 || !st.connected) return false;
    }
  return true;
}

/* The kernel's per-thread request for a short time slice (Linux 6.12+,
 * EEVDF): sched_setattr's sched_runtime for a SCHED_OTHER thread. A thread
 * with a shorter slice gets an earlier deadline, so when it wakes it
 * preempts a thread running a long slice instead of waiting out its turn. */
struct cb_sched_attr {
  uint32_t size, policy;
  uint64_t flags;
  int32_t nice;
  uint32_t priority;
  uint64_t runtime, deadline, period;
};

static void set_slice(int tid, uint64_t ns) {
  struct cb_sched_attr a = {.size = sizeof a, .policy = SCHED_OTHER, .runtime = ns};
  errno = 0;
  a.nice = getpriority(PRIO_PROCESS, (id_t)tid);
  if (syscall(SYS_sched_setattr, tid, &a, 0) != 0)
    fprintf(stderr, "sched_setattr(slice %llu ns): %s\n", (unsigned long long)ns, strerror(errno));
}

/* Threads of this process named prefix*: CB_LOOP_NICE=N / CB_SLICE_US=U
 * for the library's loop thread (bftnet-loop), CB_VOTE_NICE / CB_SLICE_US
 * for the votes' own threads (cb-vote, cb-vrecv), CB_SLICE_BULK_US for the
 * blocks' (cb-bulk, cb-recv). */
static void tune_threads(const char *prefix, const char *nice_env, const char *slice_env) {
  DIR *d = opendir("/proc/self/task");
  if (!d) return;
  for (struct dirent *e; (e = readdir(d));) {
    char path[300], comm[32] = "";
    snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    if (fgets(comm, sizeof comm, f) && !strncmp(comm, prefix, strlen(prefix))) {
      int tid = atoi(e->d_name);
      if (nice_env && getenv(nice_env))
        (void)setpriority(PRIO_PROCESS, (id_t)tid, atoi(getenv(nice_env)));
      if (slice_env && getenv(slice_env)) set_slice(tid, (uint64_t)atoi(getenv(slice_env)) * 1000u);
    }
    fclose(f);
  }
  closedir(d);
}

/* ------------------------------------------- --link: a shaped network */

/* --link RATE puts each node in a network namespace of its own, wired to
 * one bridge (in a namespace of its own too) by a veth pair, with a token
 * bucket (tc tbf) of RATE on both ends of each pair: every node's uplink
 * and downlink is a RATE link, and the link, not the CPU, is what the
 * blocks saturate. On loopback, flat-out blocks keep both cores of a small
 * machine busy with encryption, and a vote then measures how soon the
 * kernel runs each of the four threads on its path; behind a shaped link
 * the cores have room, and the vote measures the scheduling of the
 * connection: what it waits behind in the sender's queues and the link's.
 * Needs root (ip netns, tc); the namespaces are removed at exit. */
static const char *g_link; /* RATE, or NULL on loopback (set before the fork) */
static char g_ns_prefix[32];

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...) {
  char cmd[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  int rc = system(cmd);
  if (rc != 0) fprintf(stderr, "class_bench: failed (%d): %s\n", rc, cmd);
  return rc;
}

static void link_down(void) {
  if (!g_ns_prefix[0]) return;
  char cmd[256];
  snprintf(cmd, sizeof cmd,
           "for n in $(ip netns list | awk '{print $1}' | grep '^%s'); do ip netns del $n; done",
           g_ns_prefix);
  (void)!system(cmd);
  g_ns_prefix[0] = 0;
}

/* tbf's queue: 2 ms at the rate (a switch port's buffer; TCP's own pacing
 * keeps it mostly empty) and one burst of 64 KiB. */
static int link_up(int n, const char *rate) {
  snprintf(g_ns_prefix, sizeof g_ns_prefix, "cb%d-", (int)getpid());
  const char *p = g_ns_prefix;
  if (sh("ip netns add %shub && ip -n %shub link add br0 type bridge && "
         "ip -n %shub link set br0 up",
         p, p, p))
    return -1;
  for (int i = 0; i < n; i++) {
    if (sh("ip netns add %s%d && ip -n %s%d link set lo up && "
           "ip link add v%d netns %s%d type veth peer name p%d netns %shub && "
           "ip -n %s%d addr add 10.213.0.%d/24 dev v%d && ip -n %s%d link set v%d up && "
           "ip -n %shub link set p%d master br0 up",
           p, i, p, i, i, p, i, i, p, p, i, i + 1, i, p, i, i, p, i) ||
        sh("ip netns exec %s%d tc qdisc add dev v%d root tbf rate %s burst 64kb latency 2ms && "
           "ip netns exec %shub tc qdisc add dev p%d root tbf rate %s burst 64kb latency 2ms",
           p, i, i, rate, p, i, rate))
      return -1;
  }
  return 0;
}

static int enter_netns(int me) {
  char path[128];
  snprintf(path, sizeof path, "/var/run/netns/%s%d", g_ns_prefix, me);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
    fprintf(stderr, "node %d: enter %s: %s\n", me, path, strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
  }
  close(fd);
  return 0;
}

static int child(int me) {
  node_res_t *r = &g->node[me];
  static node_t n;
  n.me = me;
  if (g_link && enter_netns(me) != 0) return 1;
  bftnet_key_t *key;
  if (bftnet_key_generate(&key)) return 1;
  bftnet_config_t cfg;
  bftnet_class_t c[2];
  configure(&cfg, c);
  cfg.key = key;
  if (bftnet_new(&n.net, &cfg)) return 1;
  char listen[64] = "/ip4/127.0.0.1/tcp/0";
  if (g_link) snprintf(listen, sizeof listen, "/ip4/10.213.0.%d/tcp/0", me + 1);
  if (bftnet_listen(n.net, listen, r->addr, sizeof r->addr)) return 1;
  atomic_store(&r->ready, PH_CONNECT);
  wait_phase(PH_CONNECT);
  bftnet_member_t mem[MAXN];
  const char *addrs[MAXN][1];
  for (int j = 0; j < g->n; j++) {
    snprintf(n.id[j], sizeof n.id[j], "n%d", j);
    addrs[j][0] = g->node[j].addr;
    mem[j] = (bftnet_member_t){.node_id = n.id[j], .addrs = addrs[j], .naddrs = 1};
  }
  char err[200];
  if (bftnet_connect(n.net, mem, (size_t)g->n, err, sizeof err)) {
    fprintf(stderr, "node %d: connect: %s\n", me, err);
    return 1;
  }
  for (double t0 = bb_now(); !all_up(&n) && bb_now() - t0 < 20;)
    bb_sleep(0.01);
  bb_sleep(0.5); /* the pairs converge on one connection each */
  pthread_t th[5];
  int nth = 3;
  /* CB_VOTE_RX=1 (classes): the votes get a receiving thread of their own
   * (bftnet_recv_classes), as a replica would give its consensus messages. */
  bool vote_rx = g->mode != M_FIFO && getenv("CB_VOTE_RX");
  static rx_arg_t ra[2];
  ra[0] = (rx_arg_t){&n, vote_rx ? 2u : 0u};
  ra[1] = (rx_arg_t){&n, 1u};
  pthread_create(&th[0], NULL, recv_main, &ra[0]);
  pthread_create(&th[1], NULL, vote_main, &n);
  pthread_create(&th[2], NULL, bulk_main, &n);
  if (vote_rx) pthread_create(&th[nth++], NULL, recv_main, &ra[1]);
  pthread_create(&th[nth++], NULL, probe_main, &n);
  /* Named for perf sched and top -H (the library's is bftnet-loop). */
  pthread_setname_np(th[0], "cb-recv");
  pthread_setname_np(th[1], "cb-vote");
  pthread_setname_np(th[2], "cb-bulk");
  if (vote_rx) pthread_setname_np(th[3], "cb-vrecv");
  pthread_setname_np(th[nth - 1], "cb-probe");
  tune_threads("bftnet-loop", "CB_LOOP_NICE", "CB_SLICE_US");
  tune_threads("cb-vote", "CB_VOTE_NICE", "CB_SLICE_US");
  tune_threads("cb-vrecv", "CB_VOTE_NICE", "CB_SLICE_US");
  tune_threads("cb-bulk", NULL, "CB_SLICE_BULK_US");
  tune_threads("cb-recv", NULL, "CB_SLICE_BULK_US");
  atomic_store(&r->ready, PH_IDLE);
  wait_phase(PH_STOP);
  bb_sleep(0.3); /* the last votes arrive */
  atomic_store(&n.stop, true);
  for (int i = 0; i < nth; i++)
    pthread_join(th[i], NULL);
  for (int j = 0; j < g->n; j++) {
    if (j == me) continue;
    bftnet_class_stats_t st;
    if (g->mode != M_FIFO) {
      if (bftnet_class_stats(n.net, n.id[j], 0, &st) == 0) r->vote_dropped += st.dropped;
      bftnet_peer_stats_t ps;
      if (getenv("CB_DIAG") && bftnet_peer_stats(n.net, n.id[j], &ps) == 0)
        /* the sender's side of a vote's wait: queueing, bytes ahead, the kernel's */
        fprintf(stderr,
                "n%d->n%d votes: delay p50 %.3f p99 %.3f max %.3f ms, ahead max %llu B; kernel "
                "in flight max %llu B, cap %llu B\n",
                me, j, st.delay_p50_ns / 1e6, st.delay_p99_ns / 1e6, st.delay_max_ns / 1e6,
                (unsigned long long)st.ahead_max_bytes, (unsigned long long)ps.inflight_max_bytes,
                (unsigned long long)ps.inflight_cap_bytes);
      if (bftnet_class_stats(n.net, n.id[j], 1, &st) == 0) r->bulk_dropped += st.dropped;
    } else if (bftnet_class_stats(n.net, n.id[j], 0, &st) == 0) {
      r->bulk_dropped += st.dropped; /* votes and blocks alike */
    }
  }
  atomic_store(&r->ready, PH_STOP);
  bftnet_free(n.net);
  bftnet_key_free(key);
  return 0;
}

/* ------------------------------------------------------------ the run */

typedef struct cell_res {
  double p50[2], p99[2], max[2];
  double wake99[2]; /* the probe's wakeup lateness p99, ms: idle, bulk */
  uint64_t sent[2], recv[2];
  double bulk_with, bulk_alone; /* MB/s received, all nodes */
  uint64_t bulk_dropped, vote_dropped;
} cell_res_t;

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static void write_cdf(const char *dir, const char *name, uint32_t *v, size_t n) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s.dat", dir, name);
  FILE *f = fopen(path, "w");
  if (!f) return;
  for (size_t i = 0; i < n; i++)
    fprintf(f, "%.3f %.5f\n", v[i] / 1000.0, (double)(i + 1) / (double)n);
  fclose(f);
}

static bool all_drained(void) {
  for (int i = 0; i < g->n; i++)
    if (!atomic_load(&g->node[i].drained)) return false;
  return true;
}

static bool all_ready(int p) {
  for (int i = 0; i < g->n; i++)
    if (atomic_load(&g->node[i].ready) < p) return false;
  return true;
}

static bool wait_ready(int p, double timeout) {
  for (double t0 = bb_now(); !all_ready(p);) {
    if (bb_now() - t0 > timeout) return false;
    bb_sleep(0.005);
  }
  return true;
}

/* Every node's samples (us) of phase kind s, the votes' latencies or (wake)
 * the probe's lateness, into all, sorted; returns how many. */
static size_t gather_sorted(uint32_t *all, int n, bool wake, int s) {
  size_t k = 0;
  for (int i = 0; i < n; i++) {
    const node_res_t *r = &g->node[i];
    uint32_t c = wake ? r->nwake[s] : r->nlat[s];
    memcpy(all + k, wake ? r->wake[s] : r->lat[s], c * sizeof *all);
    k += c;
  }
  qsort(all, k, sizeof *all, cmp_u32);
  return k;
}

/* The q-quantile of k sorted samples (k >= 1), us to ms. */
static double pct_ms(const uint32_t *sorted, size_t k, double q) {
  return sorted[(size_t)(q * (double)(k - 1))] / 1000.0;
}

static int run_cell(int n, size_t bulk, int mode, double secs, const char *cdf, const char *tag,
                    cell_res_t *out) {
  memset(g, 0, sizeof *g);
  g->n = n;
  g->bulk = bulk;
  g->mode = mode;
  pid_t pid[MAXN];
  for (int i = 0; i < n; i++) {
    pid[i] = fork();
    if (pid[i] == 0) _exit(child(i));
  }
  int rc = 0;
  if (!wait_ready(PH_CONNECT, 10)) rc = -1;
  atomic_store(&g->phase, PH_CONNECT);
  if (rc == 0 && !wait_ready(PH_IDLE, 30)) rc = -1;
  if (rc == 0) { /* idle, then blocks with and without votes in turn, drain, idle again */
    atomic_store(&g->phase, PH_IDLE);
    bb_sleep(secs / 2);
    if (!getenv("CB_NO_WARM")) { /* blocks start flowing: the ramp-up is measured by no phase */
      atomic_store(&g->phase, PH_WARM);
      bb_sleep(secs / 6);
    }
    for (int k = 0; k < 3; k++) {
      atomic_store(&g->phase, PH_BULK);
      bb_sleep(secs / 3);
      atomic_store(&g->phase, PH_ALONE);
      bb_sleep(secs / 6);
    }
    atomic_store(&g->phase, PH_DRAIN);
    double t0 = bb_now();
    while (!all_drained() && bb_now() - t0 < 60)
      bb_sleep(0.01);
    if (getenv("CB_DIAG")) fprintf(stderr, "drain: %.2f s\n", bb_now() - t0);
    bb_sleep(0.2); /* what the last pieces left in flight */
    atomic_store(&g->phase, PH_IDLE);
    bb_sleep(secs / 2);
  }
  atomic_store(&g->phase, PH_STOP);
  if (rc == 0 && !wait_ready(PH_STOP, 30)) rc = -1;
  for (int i = 0; i < n; i++) {
    if (rc) kill(pid[i], SIGKILL);
    int st;
    waitpid(pid[i], &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st)) rc = -1;
  }
  if (rc) return rc;
  memset(out, 0, sizeof *out);
  static uint32_t all[MAXN * MAX_LAT];
  for (int s = 0; s < 2; s++) {
    for (int i = 0; i < n; i++) {
      out->sent[s] += g->node[i].votes_sent[s];
      out->recv[s] += g->node[i].votes_recv[s];
    }
    size_t k = gather_sorted(all, n, false, s);
    if (k) {
      out->p50[s] = pct_ms(all, k, 0.50);
      out->p99[s] = pct_ms(all, k, 0.99);
      out->max[s] = all[k - 1] / 1000.0;
    }
    if (cdf) {
      char name[128];
      snprintf(name, sizeof name, "%s-%s", tag, s ? "bulk" : "idle");
      write_cdf(cdf, name, all, k);
    }
    k = gather_sorted(all, n, true, s);
    if (k) out->wake99[s] = pct_ms(all, k, 0.99);
  }
  double with = 0, alone = 0;
  for (int i = 0; i < n; i++) {
    node_res_t *r = &g->node[i];
    if (r->bulk_secs[PH_BULK] > 0) with += r->bulk_bytes[PH_BULK] / r->bulk_secs[PH_BULK];
    if (r->bulk_secs[PH_ALONE] > 0) alone += r->bulk_bytes[PH_ALONE] / r->bulk_secs[PH_ALONE];
    out->bulk_dropped += r->bulk_dropped;
    out->vote_dropped += r->vote_dropped;
  }
  out->bulk_with = with / 1e6;
  out->bulk_alone = alone / 1e6;
  return 0;
}

int main(int argc, char **argv) {
  double secs = 4;
  const char *cells = "pair-1m,pair-64k,all4-1m,all4-64k", *cdf = NULL, *link = NULL;
  const char *modes = "fifo,classes";
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
      secs = atof(argv[++i]);
    else if (!strcmp(argv[i], "--cells") && i + 1 < argc)
      cells = argv[++i];
    else if (!strcmp(argv[i], "--cdf") && i + 1 < argc)
      cdf = argv[++i];
    else if (!strcmp(argv[i], "--link") && i + 1 < argc)
      link = argv[++i];
    else if (!strcmp(argv[i], "--modes") && i + 1 < argc)
      modes = argv[++i];
    else if (!strcmp(argv[i], "--quick"))
      secs = 1.5;
    else {
      fprintf(stderr,
              "usage: %s [--seconds S] [--cells LIST] [--modes LIST] [--cdf DIR] [--link RATE] "
              "[--quick]\n",
              argv[0]);
      return 2;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  g = mmap(NULL, sizeof *g, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (g == MAP_FAILED) return 1;
  if (cdf) mkdir(cdf, 0755);
  if (link) {
    if (geteuid() != 0) {
      fprintf(stderr, "class_bench: --link needs root (ip netns, tc)\n");
      return 2;
    }
    g_link = link;
    atexit(link_down);
    if (link_up(MAXN, link) != 0) {
      fprintf(stderr, "class_bench: could not set up the shaped network (ip netns, tc tbf)\n");
      return 2;
    }
  }
  printf("vote: 64 B every 10 ms to each member; blocks flat out; %.1f s per phase%s%s\n\n", secs,
         link ? "; every node behind a link of " : " (loopback)", link ? link : "");
  printf("%-9s %-6s %-8s | %-21s | %-21s | %6s | %-15s | %-13s | %-17s %5s | %s\n", "topology",
         "bulk", "mode", "vote idle p50/p99 ms", "vote bulk p50/p99 ms", "p99 x", "wake p99 ms i/b",
         "votes lost", "blocks MB/s w/alone", "x", "blocks dropped");
  int fails = 0;
  static const struct {
    const char *name;
    int n;
    size_t bulk;
  } all[] = {{"pair-1m", 2, 1u << 20},
             {"pair-64k", 2, 64u << 10},
             {"all4-1m", 4, 1u << 20},
             {"all4-64k", 4, 64u << 10}};
  for (size_t c = 0; c < sizeof all / sizeof all[0]; c++) {
    if (!strstr(cells, all[c].name)) continue;
    for (int mode = 0; mode < M_N; mode++) {
      if (!strstr(modes, mode_name[mode])) continue;
      char tag[64];
      snprintf(tag, sizeof tag, "%s-%s", all[c].name, mode_name[mode]);
      cell_res_t r;
      if (run_cell(all[c].n, all[c].bulk, mode, secs, cdf, tag, &r)) {
        printf("%s: FAILED\n", tag);
        fails++;
        continue;
      }
      uint64_t lost = r.sent[0] + r.sent[1] - r.recv[0] - r.recv[1];
      printf("%-9s %-6s %-8s | %8.2f / %-10.2f | %8.2f / %-10.2f | %6.1f | %5.2f / %-7.2f | %5llu "
             "of %-5llu | %7.0f / %-7.0f %5.2f | %llu%s\n",
             all[c].n == 2 ? "pair" : "all-to-all", all[c].bulk == (1u << 20) ? "1 MiB" : "64 KiB",
             mode_name[mode], r.p50[0], r.p99[0], r.p50[1], r.p99[1],
             r.p99[0] > 0 ? r.p99[1] / r.p99[0] : 0, r.wake99[0], r.wake99[1],
             (unsigned long long)lost, (unsigned long long)(r.sent[0] + r.sent[1]), r.bulk_with,
             r.bulk_alone, r.bulk_alone > 0 ? r.bulk_with / r.bulk_alone : 0,
             (unsigned long long)r.bulk_dropped,
             mode != M_FIFO && r.vote_dropped ? " (votes dropped too!)" : "");
      fflush(stdout);
    }
  }
  printf("\ntargets (classes rows): vote p99 under bulk <= 3x idle; 0 votes lost; blocks with "
         "votes >= 0.9x alone\n");
  return fails ? 1 : 0;
}
