/*
 * migration_test.c — migratable streams end to end: real bftnet nodes (each
 * on its own loop thread) exchanging sequence-numbered messages all-to-all,
 * every link through the fault-injecting proxy (tools/lib/fault_proxy, on a
 * loop thread of the test's own), while the proxies cut, blackhole and
 * refuse connections. The load mixes two traffic classes (small "votes",
 * the urgent class 0, and "blocks" of 20 KB, class 1), each its own
 * migratable stream per member. With rings sized so that nothing
 * overflows, every run must show invariants 1 and 2 (docs/ARCHITECTURE.md)
 * exactly, per sender and class: messages arrive in order, none twice, and
 * none is missing (nothing was counted dropped or aborted either).
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "fault_proxy.h"
#include "harness.h"
#include "th_msg.h"
#include "th_uvthread.h"

#define MAXN       4
#define MSG_SIZE   64
#define NCLS       2     /* class 0: votes of MSG_SIZE; class 1: blocks of BLOCK_SIZE */
#define BLOCK_SIZE 20000 /* more than one 16 KiB piece: interleaved on the wire */
/* The block size of the running test (at most BLOCK_SIZE): small where
 * the test counts the bytes of a connection's exchanges. */
static size_t g_block_size = BLOCK_SIZE;
#define BLOCK_EVERY 4 /* a block every 4th round */

/* The proxies live on a loop thread of the test's own (th_uvthread). */
static th_uvthread_t px;
static bool px_running;

static void px_start(void) {
  assert_int_equal(th_uvthread_start(&px), 0);
  px_running = true;
}

static void px_stop(void) {
  px_running = false;
  assert_int_equal(th_uvthread_stop(&px), 0);
}

/* ------------------------------------------------------------- nodes */

typedef struct node {
  bftnet_key_t *key;
  bftnet_t *net;
  char id[8];
  char peer_id[BFTNET_PEER_ID_MAX];
  int naddr;
  char real[2][BFTNET_ADDR_MAX]; /* where it listens */
  char via[2][BFTNET_ADDR_MAX];  /* its proxies, with /p2p/ID: what others dial */
  fault_proxy_t *px[2];
  /* Events (loop thread writes, test reads). */
  atomic_int conns, migrated[8], resumed, detached, aborted, denied, restarted;
  /* Load. */
  pthread_t sender, receiver;
  atomic_bool stop_send, stop_recv;
  uint64_t sent[MAXN][NCLS]; /* by destination and class */
  uint64_t last[MAXN][NCLS]; /* last sequence number received, by source and class */
  uint64_t got[MAXN][NCLS], gaps, dups, foreign;
  uint32_t rate; /* messages/s per destination */
} node_t;

static node_t nodes[MAXN];
static int nn;

/* BFTNET_TEST_QUICK=1 (test.sh under TSan): fewer rounds of each fault. */
static bool quick(void) {
  const char *e = getenv("BFTNET_TEST_QUICK");
  return e && *e == '1';
}

static void on_event(const bftnet_event_t *ev, void *user) {
  node_t *n = user;
  switch (ev->type) {
  case BFTNET_EV_CONNECTED:
    atomic_fetch_add(&n->conns, 1);
    break;
  case BFTNET_EV_DISCONNECTED:
    atomic_fetch_sub(&n->conns, 1);
    break;
  case BFTNET_EV_MIGRATED:
    if ((unsigned)ev->mig_reason < 8) atomic_fetch_add(&n->migrated[ev->mig_reason], 1);
    break;
  case BFTNET_EV_RESUMED:
    atomic_fetch_add(&n->resumed, 1);
    break;
  case BFTNET_EV_DETACHED:
    atomic_fetch_add(&n->detached, 1);
    break;
  case BFTNET_EV_ABORTED:
    atomic_fetch_add(&n->aborted, 1);
    print_message("%s: stream to/from %s aborted: %s (lost %llu)\n", n->id, ev->node_id,
                  ev->mig_abort, (unsigned long long)ev->lost);
    break;
  case BFTNET_EV_DENIED:
    atomic_fetch_add(&n->denied, 1);
    break;
  case BFTNET_EV_PEER_RESTARTED:
    atomic_fetch_add(&n->restarted, 1);
    break;
  default:
    break;
  }
}

/* The two classes every node of these tests runs. */
static bftnet_class_t g_classes[NCLS];

static void classes_init(void) {
  bftnet_class_init(&g_classes[0], "votes");
  g_classes[0].ring_capacity = 1u << 17; /* nothing overflows in these tests */
  bftnet_class_init(&g_classes[1], "blocks");
  g_classes[1].priority = 1;
  g_classes[1].ring_capacity = 1u << 12;
  g_classes[1].ring_max_bytes = 1ull << 30;
}

static void cfg_fast(bftnet_config_t *cfg) {
  bftnet_config_init(cfg);
  classes_init();
  cfg->classes = g_classes;
  cfg->nclasses = NCLS;
  cfg->ping_interval_ms = 200;
  cfg->ping_timeout_ms = 600;
  cfg->dial_backoff_min_ms = 20;
  cfg->dial_backoff_max_ms = 300;
  cfg->failback_ms = 300;
  cfg->detach_timeout_ms = 30000;
  cfg->ring_capacity = 1u << 17; /* nothing overflows in these tests */
  cfg->handshake_timeout_ms = 2000;
  cfg->log_level = 1;
}

typedef struct px_new_arg {
  node_t *n;
  int k;
} px_new_arg_t;

static void px_new(void *arg) {
  px_new_arg_t *a = arg;
  node_t *n = a->n;
  struct sockaddr_storage lis, tgt, bound;
  assert_int_equal(fault_proxy_addr_parse("127.0.0.1:0", &lis), 0);
  assert_int_equal(fault_proxy_addr_parse(n->real[a->k], &tgt), 0);
  fault_proxy_opts_t o = {.seed = th_seed(), .queue_max = 4u << 20};
  assert_int_equal(fault_proxy_create(&px.loop, (struct sockaddr *)&lis, (struct sockaddr *)&tgt,
                                      &o, &n->px[a->k]),
                   0);
  assert_int_equal(fault_proxy_bound_addr(n->px[a->k], &bound), 0);
  char hp[FAULT_PROXY_ADDRSTRLEN];
  fault_proxy_addr_format((struct sockaddr *)&bound, hp, sizeof hp);
  char *colon = strrchr(hp, ':');
  *colon = '\0';
  snprintf(n->via[a->k], sizeof n->via[a->k], "/ip4/%s/tcp/%s/p2p/%s", hp, colon + 1, n->peer_id);
}

static void node_start(int i, int naddr, const bftnet_config_t *over, bool keep_key) {
  node_t *n = &nodes[i];
  if (!keep_key) {
    memset(n, 0, sizeof *n);
    assert_ok(bftnet_key_generate(&n->key));
  }
  bftnet_config_t cfg;
  if (over)
    cfg = *over;
  else
    cfg_fast(&cfg);
  cfg.key = n->key;
  cfg.on_event = on_event;
  cfg.user = n;
  assert_ok(bftnet_new(&n->net, &cfg));
  snprintf(n->id, sizeof n->id, "r%d", i & 7);
  assert_ok(bftnet_peer_id(n->net, n->peer_id, sizeof n->peer_id));
  n->naddr = naddr;
  for (int k = 0; k < naddr; k++) {
    char want[BFTNET_ADDR_MAX] = "/ip4/127.0.0.1/tcp/0";
    if (keep_key) { /* the same port again: strip /p2p/... */
      snprintf(want, sizeof want, "%s", n->real[k]);
      char *p2p = strstr(want, "/p2p/");
      if (p2p) *p2p = '\0';
    }
    char bound[BFTNET_ADDR_MAX];
    assert_ok(bftnet_listen(n->net, want, bound, sizeof bound));
    /* real[k] as "127.0.0.1:port" for the proxy */
    unsigned port = 0;
    const char *tcp = strstr(bound, "/tcp/");
    assert_non_null(tcp);
    port = (unsigned)strtoul(tcp + 5, NULL, 10);
    if (!keep_key) snprintf(n->real[k], sizeof n->real[k], "/ip4/127.0.0.1/tcp/%u", port);
    if (!keep_key) {
      px_new_arg_t a = {n, k};
      th_uvthread_call(&px, px_new, &a);
    }
  }
}

/* Membership: everyone, each by its proxies (order = preference). */
static void connect_all_addrs(int i, int first_addr, int naddrs) {
  bftnet_member_t mem[MAXN];
  const char *addrs[MAXN][2];
  for (int j = 0; j < nn; j++) {
    for (int k = 0; k < naddrs; k++)
      addrs[j][k] = nodes[j].via[first_addr + k];
    mem[j] = (bftnet_member_t){.node_id = nodes[j].id, .addrs = addrs[j], .naddrs = (size_t)naddrs};
  }
  char err[256] = "";
  int rc = bftnet_connect(nodes[i].net, mem, (size_t)nn, err, sizeof err);
  if (rc < 0) fail_msg("connect: %s: %s", bftnet_strerror(rc), err);
}

/* ------------------------------------------------------------- load */

static uint64_t get_be64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = (v << 8) | p[i];
  return v;
}

static void put_be64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8)
    p[i] = (uint8_t)v;
}

static void *sender_main(void *arg) {
  node_t *n = arg;
  int me = (int)(n - nodes);
  static _Thread_local uint8_t buf[BLOCK_SIZE];
  memset(buf, 0xab, sizeof buf);
  const long period_ns = 1000000000L / (long)n->rate;
  struct timespec next;
  clock_gettime(CLOCK_MONOTONIC, &next);
  for (uint64_t round = 0; !atomic_load(&n->stop_send) && round < 10000000; round++) {
    for (int j = 0; j < nn; j++) {
      if (j == me) continue;
      for (uint8_t c = 0; c < NCLS; c++) {
        if (c == 1 && round % BLOCK_EVERY) continue;
        put_be64(buf, n->sent[j][c] + 1);
        bftnet_send_opts_t o = {.cls = c};
        int rc = bftnet_send_ex(n->net, nodes[j].id, &o, buf, c ? g_block_size : MSG_SIZE);
        if (rc == 0) n->sent[j][c]++;
      }
    }
    next.tv_nsec += period_ns;
    while (next.tv_nsec >= 1000000000L)
      next.tv_nsec -= 1000000000L, next.tv_sec++;
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
  }
  return NULL;
}

static int node_index(const char *id) {
  for (int j = 0; j < nn; j++)
    if (strcmp(nodes[j].id, id) == 0) return j;
  return -1;
}

static void *receiver_main(void *arg) {
  node_t *n = arg;
  bftnet_msg_t msgs[64];
  while (!atomic_load(&n->stop_recv)) {
    int k = bftnet_recv_batch(n->net, msgs, 64, 50);
    if (k <= 0) continue;
    for (int i = 0; i < k; i++) {
      int j = node_index(msgs[i].from);
      unsigned c = msgs[i].cls;
      if (j < 0 || c >= NCLS || msgs[i].len != (c ? g_block_size : MSG_SIZE)) {
        n->foreign++;
      } else {
        uint64_t seq = get_be64(msgs[i].data);
        if (seq <= n->last[j][c])
          n->dups++;
        else {
          if (seq != n->last[j][c] + 1) n->gaps += seq - n->last[j][c] - 1;
          __atomic_store_n(&n->last[j][c], seq, __ATOMIC_RELEASE); /* the main thread polls it */
          n->got[j][c]++;
        }
      }
      bftnet_msg_release(&msgs[i]);
    }
  }
  return NULL;
}

/* Which load threads run (the teardown stops them after a failed check). */
static bool senders_live, receivers_live;

static void load_start(uint32_t rate) {
  senders_live = receivers_live = true;
  for (int i = 0; i < nn; i++) {
    nodes[i].rate = rate;
    atomic_store(&nodes[i].stop_send, false);
    atomic_store(&nodes[i].stop_recv, false);
    pthread_create(&nodes[i].receiver, NULL, receiver_main, &nodes[i]);
  }
  for (int i = 0; i < nn; i++)
    pthread_create(&nodes[i].sender, NULL, sender_main, &nodes[i]);
}

/* Stops the senders, flushes, waits for every message, then checks the
 * invariants per sender and class: nothing lost, duplicated or reordered;
 * nothing dropped or aborted either. */
static void load_stop_and_check(const char *what) {
  for (int i = 0; i < nn; i++)
    atomic_store(&nodes[i].stop_send, true);
  for (int i = 0; i < nn; i++)
    pthread_join(nodes[i].sender, NULL);
  senders_live = false;
  for (int i = 0; i < nn; i++) {
    int rc = bftnet_flush(nodes[i].net, 20000);
    if (rc < 0) print_message("%s: flush of %s: %s\n", what, nodes[i].id, bftnet_strerror(rc));
    assert_int_equal(rc, 0); /* every ring empty, every byte confirmed read */
  }
  uint64_t deadline = th_now_ms() + 20000;
  for (bool all = false; !all && th_now_ms() < deadline;) {
    all = true;
    for (int i = 0; i < nn; i++)
      for (int j = 0; j < nn; j++)
        for (int c = 0; c < NCLS; c++)
          if (i != j &&
              __atomic_load_n(&nodes[j].last[i][c], __ATOMIC_ACQUIRE) < nodes[i].sent[j][c])
            all = false;
    if (!all) usleep(20000);
  }
  for (int i = 0; i < nn; i++)
    atomic_store(&nodes[i].stop_recv, true);
  for (int i = 0; i < nn; i++)
    pthread_join(nodes[i].receiver, NULL);
  receivers_live = false;
  uint64_t total[NCLS] = {0};
  for (int i = 0; i < nn; i++) {
    for (int j = 0; j < nn; j++) {
      if (i == j) continue;
      for (uint8_t c = 0; c < NCLS; c++) {
        bftnet_class_stats_t st;
        assert_ok(bftnet_class_stats(nodes[i].net, nodes[j].id, c, &st));
        if (nodes[j].last[i][c] != nodes[i].sent[j][c] || st.dropped || st.aborted)
          print_message(
              "%s: %s->%s class %u: sent %llu, received up to %llu (%llu msgs), dropped %llu, "
              "aborted %llu\n",
              what, nodes[i].id, nodes[j].id, c, (unsigned long long)nodes[i].sent[j][c],
              (unsigned long long)nodes[j].last[i][c], (unsigned long long)nodes[j].got[i][c],
              (unsigned long long)st.dropped, (unsigned long long)st.aborted);
        assert_int_equal(st.dropped, 0);
        assert_int_equal(st.aborted, 0);
        assert_int_equal(st.superseded, 0);
        assert_int_equal(st.sent, nodes[i].sent[j][c]);
        assert_int_equal(nodes[j].last[i][c], nodes[i].sent[j][c]); /* none missing (invariant 2) */
        assert_int_equal(nodes[j].got[i][c], nodes[i].sent[j][c]);  /* each exactly once */
        total[c] += nodes[i].sent[j][c];
      }
      bftnet_peer_stats_t ps;
      assert_ok(bftnet_peer_stats(nodes[i].net, nodes[j].id, &ps));
      assert_int_equal(ps.dropped_overflow, 0);
      assert_int_equal(ps.aborted, 0);
    }
    assert_int_equal(nodes[i].gaps, 0);
    assert_int_equal(nodes[i].dups, 0); /* no duplicate, no reorder (invariant 1) */
    assert_int_equal(nodes[i].foreign, 0);
  }
  assert_true(total[0] > 0 && total[1] > 0);
  int mig = 0, res = 0, det = 0;
  for (int i = 0; i < nn; i++) {
    for (int r = 0; r < 8; r++)
      mig += atomic_load(&nodes[i].migrated[r]);
    res += atomic_load(&nodes[i].resumed);
    det += atomic_load(&nodes[i].detached);
  }
  print_message("%s: %llu votes and %llu blocks, 0 lost, 0 duplicated, 0 reordered; %d migrations, "
                "%d detached, "
                "%d resumed\n",
                what, (unsigned long long)total[0], (unsigned long long)total[1], mig, det, res);
}

static void do_close(void *arg) {
  fault_proxy_close(arg, NULL, NULL);
}

static void all_stop(void) {
  for (int i = 0; i < nn; i++) {
    bftnet_free(nodes[i].net);
    nodes[i].net = NULL;
  }
  for (int i = 0; i < nn; i++)
    for (int k = 0; k < nodes[i].naddr; k++)
      if (nodes[i].px[k]) {
        fault_proxy_t *p = nodes[i].px[k];
        nodes[i].px[k] = NULL;
        th_uvthread_call(&px, do_close, p);
      }
  for (int i = 0; i < nn; i++)
    bftnet_key_free(nodes[i].key);
  px_stop();
}

static void wait_all_up(int timeout_ms) {
  uint64_t deadline = th_now_ms() + (uint64_t)timeout_ms;
  for (;;) {
    bool all = true;
    for (int i = 0; i < nn && all; i++)
      for (int j = 0; j < nn && all; j++) {
        if (i == j) continue;
        bftnet_peer_stats_t st;
        if (bftnet_peer_stats(nodes[i].net, nodes[j].id, &st) < 0 || !st.connected) all = false;
      }
    if (all) return;
    if (th_now_ms() > deadline) fail_msg("the cluster did not connect");
    usleep(10000);
  }
}

static void setup(int n, int naddr, const bftnet_config_t *cfg) {
  g_block_size = BLOCK_SIZE;
  px_start();
  nn = n;
  for (int i = 0; i < n; i++)
    node_start(i, naddr, cfg, false);
  for (int i = 0; i < n; i++)
    connect_all_addrs(i, 0, naddr);
  wait_all_up(10000);
}

/* ---------------------------------------------------------- faults */

typedef struct fault_arg {
  fault_proxy_t *p;
  int on;
  uint64_t v;
  int rc;
  fault_proxy_stats_t st;
} fault_arg_t;

static void do_cut(void *arg) {
  fault_arg_t *a = arg;
  a->rc = fault_proxy_cut(a->p);
}
static void do_blackhole(void *arg) {
  fault_arg_t *a = arg;
  a->rc = fault_proxy_blackhole(a->p, a->on);
}
static void do_refuse(void *arg) {
  fault_arg_t *a = arg;
  a->rc = fault_proxy_refuse(a->p, a->on);
}
static void do_cut_at(void *arg) {
  fault_arg_t *a = arg;
  a->rc = fault_proxy_cut_at(a->p, a->v);
}
static void do_stats(void *arg) {
  fault_arg_t *a = arg;
  fault_proxy_stats(a->p, &a->st);
}

static int px_cut(fault_proxy_t *p) {
  fault_arg_t a = {.p = p};
  th_uvthread_call(&px, do_cut, &a);
  return a.rc;
}
static void px_blackhole(fault_proxy_t *p, int on) {
  fault_arg_t a = {.p = p, .on = on};
  th_uvthread_call(&px, do_blackhole, &a);
  assert_int_equal(a.rc, 0);
}
static void px_refuse(fault_proxy_t *p, int on) {
  fault_arg_t a = {.p = p, .on = on};
  th_uvthread_call(&px, do_refuse, &a);
  assert_int_equal(a.rc, 0);
}
static void px_cut_at(fault_proxy_t *p, uint64_t v) {
  fault_arg_t a = {.p = p, .v = v};
  th_uvthread_call(&px, do_cut_at, &a);
  assert_int_equal(a.rc, 0);
}
static fault_proxy_stats_t px_stats(fault_proxy_t *p) {
  fault_arg_t a = {.p = p};
  th_uvthread_call(&px, do_stats, &a);
  return a.st;
}

/* ------------------------------------------------------------- tests */

/* >= 100 abrupt cuts at random moments, four nodes all-to-all. */
static void test_random_cuts(void **state) {
  (void)state;
  setup(4, 1, NULL);
  load_start(500);
  srand((unsigned)th_seed());
  int cuts = 0, want = quick() ? 20 : 100;
  /* A cut can find the proxy between connections (it cuts nothing): go on
   * until `want` cuts hit one, bounded in count. */
  for (int k = 0; k < 4 * want && cuts < want; k++) {
    usleep(20000 + (useconds_t)(rand() % 40000));
    if (px_cut(nodes[rand() % nn].px[0]) > 0) cuts++;
  }
  usleep(500000);
  print_message("random cuts: %d cuts that hit a connection\n", cuts);
  assert_true(cuts >= want);
  load_stop_and_check("random cuts");
  int res = 0;
  for (int i = 0; i < nn; i++)
    res += atomic_load(&nodes[i].resumed);
  assert_true(res > 0);
  all_stop();
}

/* A blackholed path: no error, no FIN; the keepalive notices (ping
 * timeout), the streams detach and resume once the path is back. */
static void test_blackhole(void **state) {
  (void)state;
  setup(4, 1, NULL);
  load_start(500);
  for (int round = 0; round < 2; round++) {
    usleep(300000);
    px_blackhole(nodes[round].px[0], 1);
    usleep(1500000); /* > ping_timeout: the connections through it die */
    px_blackhole(nodes[round].px[0], 0);
  }
  usleep(1000000);
  load_stop_and_check("blackholes");
  int det = 0, res = 0;
  for (int i = 0; i < nn; i++)
    det += atomic_load(&nodes[i].detached), res += atomic_load(&nodes[i].resumed);
  assert_true(det > 0);
  assert_true(res > 0);
  all_stop();
}

/* Storms of simultaneous dials: every connection cut at once, everyone
 * redials everyone; the pairs converge on one connection each. */
static void test_dial_storm(void **state) {
  (void)state;
  setup(4, 1, NULL);
  load_start(300);
  for (int round = 0; round < (quick() ? 5 : 15); round++) {
    for (int i = 0; i < nn; i++)
      px_cut(nodes[i].px[0]);
    usleep(120000);
  }
  usleep(1500000);
  load_stop_and_check("dial storms");
  /* One connection per pair: each node keeps exactly nn - 1. */
  uint64_t deadline = th_now_ms() + 5000;
  bool ok = false;
  while (!ok && th_now_ms() < deadline) {
    ok = true;
    for (int i = 0; i < nn; i++)
      ok = ok && atomic_load(&nodes[i].conns) == nn - 1;
    if (!ok) usleep(50000);
  }
  for (int i = 0; i < nn; i++)
    print_message("%s: %d connections\n", nodes[i].id, atomic_load(&nodes[i].conns));
  assert_true(ok);
  uint64_t closed = 0;
  for (int i = 0; i < nn; i++)
    closed += bftnet_counter(nodes[i].net, BFTNET_COUNTER_MIG_CONN_CLOSED_EMPTY);
  print_message("duplicate connections retired: %llu\n", (unsigned long long)closed);
  all_stop();
}

/* Two addresses per node: the preferred path fails (refused, cut), the
 * streams resume on the second; when it answers again the leader fails
 * back gracefully. */
static void test_failover_failback(void **state) {
  (void)state;
  setup(4, 2, NULL);
  load_start(500);
  for (int round = 0; round < 3; round++) {
    usleep(300000);
    for (int i = 0; i < nn; i++)
      px_refuse(nodes[i].px[0], 1);
    for (int i = 0; i < nn; i++)
      px_cut(nodes[i].px[0]);
    usleep(800000); /* on the second address now */
    for (int i = 0; i < nn; i++)
      px_refuse(nodes[i].px[0], 0);
    usleep(1200000); /* failback_ms = 300: back on the first */
  }
  load_stop_and_check("failover/failback");
  int fb = 0;
  for (int i = 0; i < nn; i++)
    fb += atomic_load(&nodes[i].migrated[BFTNET_MIG_FAILBACK]);
  print_message("failbacks: %d\n", fb);
  assert_true(fb >= 3);
  /* Everything moved back: the second path carries no connection. */
  /* Usually within milliseconds; a failback probe that met the refusing
   * proxy waits out its handshake timeout (2 s here) first, and ASan on a
   * loaded machine slows every step. */
  uint64_t t0 = th_now_ms(), deadline = t0 + 10000;
  uint64_t active = 1;
  while (active && th_now_ms() < deadline) {
    active = 0;
    for (int i = 0; i < nn; i++)
      active += px_stats(nodes[i].px[1]).active;
    if (active) usleep(50000);
  }
  print_message("second path empty after %llu ms (%llu connections left)\n",
                (unsigned long long)(th_now_ms() - t0), (unsigned long long)active);
  assert_int_equal(active, 0);
  all_stop();
}

/* A membership update that changes a member's addresses moves its
 * streams; the old path then dies without loss. */
static void test_address_change(void **state) {
  (void)state;
  g_block_size = BLOCK_SIZE;
  px_start();
  nn = 4;
  for (int i = 0; i < nn; i++)
    node_start(i, 2, NULL, false);
  for (int i = 0; i < nn; i++)
    connect_all_addrs(i, 0, 1); /* first addresses only */
  wait_all_up(10000);
  load_start(1000);
  usleep(500000);
  for (int i = 0; i < nn; i++)
    connect_all_addrs(i, 1, 1); /* now the second only */
  usleep(1500000);
  for (int i = 0; i < nn; i++)
    px_refuse(nodes[i].px[0], 1); /* the old path dies */
  for (int i = 0; i < nn; i++)
    px_cut(nodes[i].px[0]);
  usleep(1000000);
  load_stop_and_check("address change");
  uint64_t active = 0;
  for (int i = 0; i < nn; i++)
    active += px_stats(nodes[i].px[0]).active;
  assert_int_equal(active, 0);
  int moved = 0;
  for (int i = 0; i < nn; i++)
    moved +=
        atomic_load(&nodes[i].migrated[BFTNET_MIG_ADDR_CHANGE]) + atomic_load(&nodes[i].resumed);
  assert_true(moved > 0);
  all_stop();
}

/* The preferred path comes back and the leader migrates onto a fresh
 * connection: that connection is cut after exactly k bytes, for every k
 * from its first byte through the Migrate/AckMigrate exchange and beyond.
 * Whatever state the exchange was in, nothing may be lost. */
static void test_cut_every_exchange_offset(void **state) {
  (void)state;
  bftnet_config_t cfg;
  cfg_fast(&cfg);
  cfg.failback_ms = 20; /* a probe in every round below */
  setup(4, 2, &cfg);
  g_block_size = 200; /* blocks too, but not enough to drown the exchanges' bytes */
  load_start(200);
  /* Calibrate: bytes one fresh failback connection forwards until its
   * exchanges (one per stream of the pair) complete: all first paths down,
   * then up again; every pair's leader fails back on a new connection. */
  for (int i = 0; i < nn; i++)
    px_refuse(nodes[i].px[0], 1), px_cut(nodes[i].px[0]);
  usleep(600000);
  uint64_t b0 = 0, a0 = 0;
  int fb0 = 0;
  for (int i = 0; i < nn; i++) {
    fault_proxy_stats_t st = px_stats(nodes[i].px[0]);
    b0 += st.bytes_to_target + st.bytes_to_client;
    a0 += st.accepted - st.refused;
    fb0 += atomic_load(&nodes[i].migrated[BFTNET_MIG_FAILBACK]);
  }
  for (int i = 0; i < nn; i++)
    px_refuse(nodes[i].px[0], 0);
  const int pairs = nn * (nn - 1) / 2;
  uint64_t deadline = th_now_ms() + 5000, used = 0;
  while (th_now_ms() < deadline) {
    int fb = 0;
    for (int i = 0; i < nn; i++)
      fb += atomic_load(&nodes[i].migrated[BFTNET_MIG_FAILBACK]);
    if (fb >= fb0 + 2 * NCLS * pairs) { /* every stream of every pair */
      uint64_t b = 0, a = 0;
      for (int i = 0; i < nn; i++) {
        fault_proxy_stats_t st = px_stats(nodes[i].px[0]);
        b += st.bytes_to_target + st.bytes_to_client;
        a += st.accepted - st.refused;
      }
      if (a > a0) used = (b - b0) / (a - a0); /* per connection */
      break;
    }
    usleep(1000);
  }
  assert_true(used > 0);
  /* The handshake comes first (its cuts are plain dial failures); the
   * Migrate/AckMigrate exchanges (one per stream: two per class) take the
   * last ~225 bytes each of `used`. Every offset from a little before them
   * to a little after. */
  const uint64_t span = 300u * 2 * NCLS;
  uint64_t k0 = used > span ? used - span : 1, k1 = used + 64;
  print_message(
      "exchange calibration: a failback connection forwards ~%llu bytes through its exchanges; "
      "cutting at every offset %llu..%llu\n",
      (unsigned long long)used, (unsigned long long)k0, (unsigned long long)k1);
  uint64_t step = quick() ? 23 : 1;
  for (uint64_t k = k0; k <= k1; k += step) {
    for (int i = 0; i < nn; i++)
      px_refuse(nodes[i].px[0], 1), px_cut(nodes[i].px[0]);
    for (int i = 0; i < nn; i++)
      px_cut_at(nodes[i].px[0], k);
    usleep(k % 20 ? 25000 : 250000); /* streams back on the second path */
    for (int i = 0; i < nn; i++)
      px_refuse(nodes[i].px[0], 0);
    /* the leader probes within failback_ms, the fresh connection dies at k */
    usleep(k % 20 ? 25000 : 350000);
  }
  for (int i = 0; i < nn; i++)
    px_cut_at(nodes[i].px[0], 0);
  usleep(1500000);
  load_stop_and_check("cut at every exchange offset");
  all_stop();
}

/* The peer restarts (a new process on the same address): the old streams
 * are aborted at once and counted, a "peer restarted" event tells the
 * application, and new streams flow. */
static void test_peer_restart(void **state) {
  (void)state;
  setup(2, 1, NULL);
  uint8_t buf[MSG_SIZE] = {0};
  for (uint64_t s = 1; s <= 50; s++) {
    put_be64(buf, s);
    assert_ok(bftnet_send(nodes[0].net, "r1", buf, sizeof buf));
  }
  bftnet_msg_t m;
  for (int got = 0; got < 50;) {
    assert_ok(bftnet_recv(nodes[1].net, &m, 5000));
    bftnet_msg_release(&m);
    got++;
  }
  bftnet_free(nodes[1].net); /* r1 goes away abruptly */
  nodes[1].net = NULL;
  node_start(1, 1, NULL, true); /* and comes back: same key, same address */
  connect_all_addrs(1, 0, 1);
  uint64_t deadline = th_now_ms() + 10000;
  while (atomic_load(&nodes[0].restarted) == 0 && th_now_ms() < deadline)
    usleep(10000);
  assert_int_equal(atomic_load(&nodes[0].restarted), 1);
  assert_true(bftnet_counter(nodes[0].net, BFTNET_COUNTER_MIG_ABORT_PEER_RESTARTED) >= 1);
  /* New streams flow both ways. */
  for (int dir = 0; dir < 2; dir++) {
    put_be64(buf, 1000 + (uint64_t)dir);
    assert_ok(bftnet_send(nodes[dir].net, nodes[1 - dir].id, buf, sizeof buf));
    assert_ok(bftnet_recv(nodes[1 - dir].net, &m, 10000));
    assert_int_equal(get_be64(m.data), 1000 + (uint64_t)dir);
    bftnet_msg_release(&m);
  }
  all_stop();
}

/* Detached and never resumed: after detach_timeout the stream is aborted
 * and its unconfirmed messages are counted, exactly. */
static void test_detach_timeout(void **state) {
  (void)state;
  bftnet_config_t cfg;
  cfg_fast(&cfg);
  cfg.detach_timeout_ms = 500;
  setup(2, 1, &cfg);
  for (int i = 0; i < nn; i++)
    px_blackhole(nodes[i].px[0], 1);
  uint8_t buf[MSG_SIZE] = {0};
  for (uint64_t s = 1; s <= 100; s++) {
    put_be64(buf, s);
    assert_ok(bftnet_send(nodes[0].net, "r1", buf, sizeof buf));
  }
  usleep(200000);
  /* Nothing can be confirmed through a blackhole: flush says so. */
  assert_err(bftnet_flush(nodes[0].net, 100), BFTNET_ETIMEDOUT);
  bftnet_peer_stats_t st0;
  assert_ok(bftnet_peer_stats(nodes[0].net, "r1", &st0));
  assert_true(st0.unconfirmed > 0);
  for (int i = 0; i < nn; i++)
    px_refuse(nodes[i].px[0], 1);
  uint64_t deadline = th_now_ms() + 8000;
  bftnet_peer_stats_t st = {0};
  while (th_now_ms() < deadline) {
    assert_ok(bftnet_peer_stats(nodes[0].net, "r1", &st));
    if (st.aborted) break;
    usleep(20000);
  }
  /* The counter is exported at the end of the loop's step that aborted the
   * stream, after the stats moved: wait for it too (bounded). */
  while (bftnet_counter(nodes[0].net, BFTNET_COUNTER_MIG_ABORT_DETACH_TIMEOUT) < 1 &&
         th_now_ms() < deadline)
    usleep(5000);
  assert_true(bftnet_counter(nodes[0].net, BFTNET_COUNTER_MIG_ABORT_DETACH_TIMEOUT) >= 1);
  /* Not one of the 100 reached r1 (blackholed from the start): all counted. */
  assert_int_equal(st.aborted, 100);
  assert_int_equal(st.dropped_overflow, 0);
  all_stop();
}

/* A member whose application never calls bftnet_recv costs at most its
 * inbound queue plus one yamux window of overshoot (the Receiver stops
 * granting credit once the queue is over its limit) — across migrations
 * too. Each resume carries the reader's read offset in Migrate/AckMigrate;
 * the writer takes it as confirmation, so an offset that counted the bytes
 * sitting over the limit let one more window in on every migration, and
 * the queue of a never-reading member grew without bound with repeated
 * cuts. Then the member reads: in order, no duplicate, and every message
 * sent is either received or counted dropped (invariants 1 and 2). */
#define NR_MSG_SIZE    1024
#define NR_INBOUND_MAX 64u
#define NR_WINDOW      (256u * 1024) /* the smallest yamux window (its initial one) */

typedef struct nr_sender {
  bftnet_t *net;
  atomic_bool stop;
  uint64_t sent; /* accepted by bftnet_send; read after the join */
} nr_sender_t;

/* Keeps r1's ring full: bursts of 32 messages a millisecond (~32 MB/s,
 * far more than a never-reading r1 takes), bounded by count and time. */
static void *nr_sender_main(void *arg) {
  nr_sender_t *s = arg;
  uint8_t buf[NR_MSG_SIZE];
  memset(buf, 0xcd, sizeof buf);
  uint64_t deadline = th_now_ms() + 120000;
  while (!atomic_load(&s->stop) && s->sent < 20000000 && th_now_ms() < deadline) {
    for (int k = 0; k < 32; k++) {
      put_be64(buf, s->sent + 1);
      if (bftnet_send(s->net, "r1", buf, sizeof buf) == 0) s->sent++;
    }
    usleep(1000);
  }
  return NULL;
}

static bftnet_peer_stats_t nr_stats(int i, const char *peer) {
  bftnet_peer_stats_t st;
  assert_ok(bftnet_peer_stats(nodes[i].net, peer, &st));
  return st;
}

/* Polls r1's inbound depth from r0 until it has not changed for 300 ms
 * (the writer has pushed all it may), at most 3 s; returns the largest
 * depth seen. */
static uint32_t nr_settle_depth(void) {
  uint32_t max = 0, last = UINT32_MAX;
  uint64_t deadline = th_now_ms() + 3000, stable_since = th_now_ms();
  while (th_now_ms() < deadline) {
    uint32_t d = nr_stats(1, "r0").inbound_depth;
    if (d > max) max = d;
    if (d != last)
      last = d, stable_since = th_now_ms();
    else if (th_now_ms() - stable_since >= 300)
      break;
    usleep(10000);
  }
  return max;
}

/* Cuts every r0<->r1 connection (both proxies), then waits until r0's
 * outbound stream (the one under test) resumed on a new connection: its
 * RESUMED event bumps `reconnects` and sets `connected` again. Returns
 * whether the cut hit a connection. */
static bool nr_cut_and_wait_resumed(int round) {
  bftnet_peer_stats_t a0 = nr_stats(0, "r1"), a;
  int hit = 0;
  for (int i = 0; i < nn; i++)
    hit += px_cut(nodes[i].px[0]) > 0;
  uint64_t deadline = th_now_ms() + 10000;
  for (;;) {
    a = nr_stats(0, "r1");
    if (a.reconnects > a0.reconnects && a.connected) return hit > 0;
    if (th_now_ms() > deadline) {
      bftnet_peer_stats_t b = nr_stats(1, "r0");
      fail_msg("round %d: r0's stream to r1 did not resume (r0: reconnects %llu -> %llu, detached "
               "%llu -> %llu, "
               "resumed %llu -> %llu, connected %d; r1: detached %llu, resumed %llu)",
               round, (unsigned long long)a0.reconnects, (unsigned long long)a.reconnects,
               (unsigned long long)a0.detached, (unsigned long long)a.detached,
               (unsigned long long)a0.resumed, (unsigned long long)a.resumed, a.connected,
               (unsigned long long)b.detached, (unsigned long long)b.resumed);
    }
    usleep(5000);
  }
}

/* r1 reads until every message r0 sent is received or counted dropped (at
 * most 30 s), then r0's flush must complete; checks invariants 1 and 2. */
static void nr_read_all_and_check(uint64_t sent) {
  uint64_t got = 0, last = 0, dups = 0, foreign = 0;
  bftnet_msg_t msgs[64];
  uint64_t deadline = th_now_ms() + 30000;
  for (bool done = false; !done && th_now_ms() < deadline;) {
    int k = bftnet_recv_batch(nodes[1].net, msgs, 64, 50);
    for (int i = 0; i < k; i++) {
      if (strcmp(msgs[i].from, "r0") != 0 || msgs[i].len != NR_MSG_SIZE) {
        foreign++;
      } else {
        uint64_t seq = get_be64(msgs[i].data);
        if (seq <= last)
          dups++; /* a duplicate or a reorder */
        else
          last = seq, got++;
      }
      bftnet_msg_release(&msgs[i]);
    }
    done = got + nr_stats(0, "r1").dropped_overflow >= sent;
  }
  int rc = bftnet_flush(nodes[0].net, 20000);
  if (rc < 0) print_message("never-reading member: flush of r0: %s\n", bftnet_strerror(rc));
  assert_int_equal(rc, 0); /* r0's ring empty, every byte confirmed read */
  int k = bftnet_recv_batch(nodes[1].net, msgs, 64, 200); /* nothing more may come */
  for (int i = 0; i < k; i++) {
    foreign++;
    bftnet_msg_release(&msgs[i]);
  }
  bftnet_peer_stats_t a = nr_stats(0, "r1");
  print_message(
      "never-reading member: sent %llu, received %llu, dropped (ring overflow) %llu, aborted %llu, "
      "duplicates %llu, last %llu\n",
      (unsigned long long)sent, (unsigned long long)got, (unsigned long long)a.dropped_overflow,
      (unsigned long long)a.aborted, (unsigned long long)dups, (unsigned long long)last);
  assert_int_equal(dups, 0); /* invariant 1 */
  assert_int_equal(foreign, 0);
  assert_int_equal(a.aborted, 0);
  assert_int_equal(got + a.dropped_overflow, sent); /* invariant 2 */
  assert_int_equal(last, sent);                     /* drop-oldest: the newest always arrives */
  assert_int_equal(nr_stats(1, "r0").inbound_depth, 0);
}

static nr_sender_t *nr_live; /* its sender thread, while it runs */
static pthread_t nr_live_th;

static void test_never_reading_member_bounded_across_cuts(void **state) {
  (void)state;
  bftnet_config_t cfg;
  cfg_fast(&cfg);
  cfg.classes = NULL; /* one class, bounded by the settings below */
  cfg.nclasses = 0;
  cfg.inbound_max_msgs = NR_INBOUND_MAX;
  cfg.yamux_window = NR_WINDOW;
  cfg.ring_capacity = 4096; /* r0's writer always has more to push */
  setup(2, 1, &cfg);
  /* One window of overshoot, in messages: each message on the wire is a
   * 2-byte uvarint header (1024 < 2^14) plus its 1024 bytes, so a window
   * holds NR_WINDOW / 1026 = 255 of them; +2 for the partial messages at
   * either end of a window. */
  const uint32_t bound = NR_INBOUND_MAX + NR_WINDOW / (NR_MSG_SIZE + 2) + 2;

  /* Static: a failed assertion leaves this frame with the thread running
   * (the teardown stops it). */
  static nr_sender_t snd;
  snd.net = nodes[0].net;
  snd.sent = 0;
  atomic_store(&snd.stop, false);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, nr_sender_main, &snd), 0);
  nr_live = &snd;
  nr_live_th = th;

  /* Phase 1: r1 never reads. First its queue goes over the limit. */
  uint64_t deadline = th_now_ms() + 10000;
  while (nr_stats(1, "r0").inbound_depth < NR_INBOUND_MAX - 1 && th_now_ms() < deadline)
    usleep(10000);
  uint32_t depth = nr_settle_depth(), max_depth = depth;
  print_message("never-reading member: over its limit, inbound_depth %u (bound %u)\n", depth,
                bound);
  assert_true(depth >= NR_INBOUND_MAX - 1);
  assert_true(depth <= bound);
  /* Then 20 cuts, each resumed (and, the leader converging, duplicate
   * connections retired) while r1 is over its limit. */
  const int rounds = 20;
  int cuts = 0;
  for (int round = 0; round < rounds; round++) {
    cuts += nr_cut_and_wait_resumed(round);
    depth = nr_settle_depth();
    if (depth > max_depth) max_depth = depth;
    if (depth > bound)
      fail_msg("round %d: r1's inbound queue from r0 holds %u messages after the resume, more than "
               "its limit "
               "plus one window (%u): each migration let one more window in",
               round, depth, bound);
  }
  bftnet_peer_stats_t a = nr_stats(0, "r1"), b = nr_stats(1, "r0");
  print_message("never-reading member: %d cuts, r0 reconnects %llu, detached %llu, resumed %llu, "
                "migrations %llu; "
                "r1 resumed %llu; max inbound_depth %u (bound %u = %u + %u / %u + 2)\n",
                cuts, (unsigned long long)a.reconnects, (unsigned long long)a.detached,
                (unsigned long long)a.resumed, (unsigned long long)a.migrations,
                (unsigned long long)b.resumed, max_depth, bound, NR_INBOUND_MAX, NR_WINDOW,
                NR_MSG_SIZE + 2);
  assert_int_equal(cuts, rounds);

  /* Phase 2: the sender stops, r1 reads everything. */
  atomic_store(&snd.stop, true);
  pthread_join(th, NULL);
  nr_live = NULL;
  nr_read_all_and_check(snd.sent);
  all_stop();
}

/* After a failed check cmocka leaves the test at the assertion, with its
 * threads, nodes and proxies running: stop them here, so that the failure
 * is reported as itself and the next test starts from nothing (instead of
 * crashing on the loop the failed test left behind). */
static int teardown(void **state) {
  (void)state;
  if (nr_live) {
    atomic_store(&nr_live->stop, true);
    pthread_join(nr_live_th, NULL);
    nr_live = NULL;
  }
  for (int i = 0; i < nn && senders_live; i++)
    atomic_store(&nodes[i].stop_send, true);
  for (int i = 0; i < nn && senders_live; i++)
    pthread_join(nodes[i].sender, NULL);
  for (int i = 0; i < nn && receivers_live; i++)
    atomic_store(&nodes[i].stop_recv, true);
  for (int i = 0; i < nn && receivers_live; i++)
    pthread_join(nodes[i].receiver, NULL);
  senders_live = receivers_live = false;
  if (px_running) all_stop();
  return 0;
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_random_cuts, teardown),
      cmocka_unit_test_teardown(test_blackhole, teardown),
      cmocka_unit_test_teardown(test_dial_storm, teardown),
      cmocka_unit_test_teardown(test_failover_failback, teardown),
      cmocka_unit_test_teardown(test_address_change, teardown),
      cmocka_unit_test_teardown(test_cut_every_exchange_offset, teardown),
      cmocka_unit_test_teardown(test_peer_restart, teardown),
      cmocka_unit_test_teardown(test_detach_timeout, teardown),
      cmocka_unit_test_teardown(test_never_reading_member_bounded_across_cuts, teardown),
  };
  th_test_filter();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
