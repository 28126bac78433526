/*
 * Membership-driven messaging through the public API: real nodes on
 * 127.0.0.1, each on its own loop thread. Asserts the invariants of docs/ARCHITECTURE.md:
 *  1. per sender, delivered messages are an ordered subsequence of those
 *     sent (no duplicate, no reorder);
 *  2. a message is missing only if the sender counted it dropped;
 *  3. memory stays bounded when a member does not read;
 *  4. nothing from a non-member reaches the application before it is one.
 */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "harness.h"
#include "th_app.h"

#define MAXN 5

#if defined(__SANITIZE_ADDRESS__)
#define TH_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TH_ASAN 1
#endif
#endif

typedef th_app_t node_t;

static node_t nodes[MAXN];

static void cfg_defaults(bftnet_config_t *cfg, bftnet_key_t *key) {
  bftnet_config_init(cfg);
  cfg->key = key;
  cfg->ping_interval_ms = 1000;
  cfg->ping_timeout_ms = 5000;
  cfg->dial_backoff_min_ms = 20;
  cfg->dial_backoff_max_ms = 200;
}

/* Starts node i; with keep it comes back as the same identity on the same
 * address (a restarted replica, after node_crash). */
static void node_start_as(int i, const bftnet_config_t *over, bool keep) {
  bftnet_config_t cfg;
  if (over)
    cfg = *over;
  else
    cfg_defaults(&cfg, NULL);
  th_app_start(&nodes[i], i, &cfg, keep);
}

static void node_start(int i, const bftnet_config_t *over) {
  node_start_as(i, over, false);
}

static void node_stop(int i) {
  th_app_stop(&nodes[i]);
}

/* Stops the process's node but keeps its identity and address. */
static void node_crash(int i) {
  th_app_crash(&nodes[i]);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kib(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, res = 0;
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &res) != 2) res = 0;
    fclose(f);
  }
  return res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Members = nodes[idx[0..k)] (the node itself may be among them). */
static void connect_to(int i, const int *idx, int k) {
  th_app_connect(&nodes[i], nodes, idx, k);
}

static void connect_all(int n) {
  th_app_connect_all(nodes, n);
}

static void put_seq(uint8_t *buf, uint64_t seq, size_t len) {
  memset(buf, (int)(seq & 0xff), len);
  for (int k = 0; k < 8 && (size_t)k < len; k++)
    buf[k] = (uint8_t)(seq >> (56 - 8 * k));
}
static uint64_t get_seq(const uint8_t *buf) {
  uint64_t v = 0;
  for (int k = 0; k < 8; k++)
    v = (v << 8) | buf[k];
  return v;
}

/* Sends messages numbered from..to (seq, then the filler put_seq writes) of
 * len bytes from node `from` to member `to`; each must be accepted. */
static void send_numbered(int from, const char *to, uint64_t first, uint64_t last, size_t len) {
  uint8_t buf[1024];
  assert_true(len >= 8 && len <= sizeof buf);
  for (uint64_t s = first; s <= last; s++) {
    put_seq(buf, s, len);
    assert_ok(bftnet_send(nodes[from].net, to, buf, len));
  }
}

/* Receives until `want` messages arrived or time runs out; checks order per
 * sender. last[] holds the last sequence seen per sender index. */
static int sender_index(const char *from) {
  for (int i = 0; i < MAXN; i++)
    if (strcmp(nodes[i].id, from) == 0) return i;
  fail_msg("message from unknown sender '%s'", from);
  return -1;
}

static uint64_t recv_ordered(int at, uint64_t want, uint64_t last[MAXN], int timeout_ms) {
  uint64_t got = 0;
  bftnet_msg_t msgs[64];
  while (got < want) {
    int n = bftnet_recv_batch(nodes[at].net, msgs, 64, timeout_ms);
    if (n == BFTNET_ETIMEDOUT) break;
    assert_true(n > 0);
    for (int k = 0; k < n; k++) {
      int s = sender_index(msgs[k].from);
      assert_true(msgs[k].len >= 8);
      uint64_t seq = get_seq(msgs[k].data);
      if (seq <= last[s])
        fail_msg("from %s: seq %llu after %llu (duplicate or reorder)", msgs[k].from,
                 (unsigned long long)seq, (unsigned long long)last[s]);
      last[s] = seq;
      /* The filler must be intact too. */
      for (size_t b = 8; b < msgs[k].len; b++)
        assert_int_equal(msgs[k].data[b], seq & 0xff);
      bftnet_msg_release(&msgs[k]);
      got++;
    }
  }
  return got;
}

static void wait_connected(int at, const char *to) {
  for (int i = 0; i < 500; i++) {
    bftnet_peer_stats_t st;
    if (bftnet_peer_stats(nodes[at].net, to, &st) == 0 && st.connected) return;
    usleep(10000);
  }
  fail_msg("%s never connected to %s", nodes[at].id, to);
}

/* Starts nodes 0..n-1 as one membership and waits for r0's streams to the others. */
static void start_connected(int n) {
  for (int i = 0; i < n; i++)
    node_start(i, NULL);
  connect_all(n);
  for (int i = 1; i < n; i++)
    wait_connected(0, nodes[i].id);
}

/* ----------------------------------------------------------------- tests */

static void test_pair_exchange_in_order(void **state) {
  (void)state;
  node_start(0, NULL);
  node_start(1, NULL);
  connect_all(2);
  enum { N = 20000 };
  uint8_t buf[200];
  for (uint64_t s = 1; s <= N; s++) {
    size_t len = 8 + (size_t)(s % 192);
    put_seq(buf, s, len);
    assert_ok(bftnet_send(nodes[0].net, "r1", buf, len));
    assert_ok(bftnet_send(nodes[1].net, "r0", buf, len));
  }
  uint64_t last0[MAXN] = {0}, last1[MAXN] = {0};
  /* Rings of 4096 may overflow while the dial is in progress: count. */
  uint64_t got1 = recv_ordered(1, N, last0, 2000);
  uint64_t got0 = recv_ordered(0, N, last1, 2000);
  bftnet_peer_stats_t a, b;
  assert_ok(bftnet_peer_stats(nodes[0].net, "r1", &a));
  assert_ok(bftnet_peer_stats(nodes[1].net, "r0", &b));
  /* Invariant 2: what is missing was counted dropped, nothing else. */
  assert_int_equal(got1 + a.dropped_overflow, N);
  assert_int_equal(got0 + b.dropped_overflow, N);
  assert_int_equal(a.enqueued, N);
  assert_int_equal(b.delivered, got1);
  assert_int_equal(last0[0], N); /* the newest always survive drop-oldest */
  print_message("pair: r1 got %llu (dropped %llu), r0 got %llu (dropped %llu)\n",
                (unsigned long long)got1, (unsigned long long)a.dropped_overflow,
                (unsigned long long)got0, (unsigned long long)b.dropped_overflow);
  /* Once connected, a paced exchange loses nothing at all. */
  wait_connected(0, "r1");
  for (uint64_t s = N + 1; s <= N + 2000; s++) {
    put_seq(buf, s, 64);
    assert_ok(bftnet_send(nodes[0].net, "r1", buf, 64));
    if (s % 500 == 0) usleep(20000);
  }
  assert_int_equal(recv_ordered(1, 2000, last0, 5000), 2000);
  node_stop(0);
  node_stop(1);
}

/* bftnet_flush(net, 0) only looks: once the member has read and confirmed
 * everything, a look says 0 even though the sender's loop has nothing else
 * to do (no write, no writable, no event follows the last Confirm). */
static void test_flush_look_sees_confirms(void **state) {
  (void)state;
  node_start(0, NULL);
  node_start(1, NULL);
  connect_all(2);
  wait_connected(0, "r1");
  uint8_t buf[64];
  uint64_t last0[MAXN] = {0};
  for (uint64_t s = 1; s <= 100; s++) {
    put_seq(buf, s, sizeof buf);
    assert_ok(bftnet_send(nodes[0].net, "r1", buf, sizeof buf));
  }
  assert_int_equal(recv_ordered(1, 100, last0, 5000), 100);
  int rc = BFTNET_ETIMEDOUT;
  for (int i = 0; i < 500 && rc != 0; i++) { /* bounded: 5 s */
    rc = bftnet_flush(nodes[0].net, 0);
    if (rc != 0) usleep(10000);
  }
  assert_int_equal(rc, 0);
  bftnet_peer_stats_t a;
  assert_ok(bftnet_peer_stats(nodes[0].net, "r1", &a));
  assert_int_equal(a.unconfirmed, 0);
  node_stop(0);
  node_stop(1);
}

static void test_broadcast_all_to_all(void **state) {
  (void)state;
  for (int i = 0; i < 4; i++)
    node_start(i, NULL);
  connect_all(4);
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++)
      if (i != j) wait_connected(i, nodes[j].id);
  /* 4 x 10000 broadcasts = 120000 deliveries; paced so that no ring
   * overflows, so every single one must arrive. */
  enum { N = 10000 };
  uint8_t buf[64];
  for (uint64_t s = 1; s <= N; s++) {
    for (int i = 0; i < 4; i++) {
      put_seq(buf, s, sizeof buf);
      assert_int_equal(bftnet_broadcast(nodes[i].net, buf, sizeof buf), 3); /* not to itself */
    }
    if (s % 1000 == 0) usleep(20000);
  }
  for (int i = 0; i < 4; i++) {
    uint64_t last[MAXN] = {0};
    uint64_t got = recv_ordered(i, 3 * N, last, 5000);
    uint64_t dropped = 0;
    for (int j = 0; j < 4; j++) {
      bftnet_peer_stats_t st;
      if (j != i && bftnet_peer_stats(nodes[j].net, nodes[i].id, &st) == 0)
        dropped += st.dropped_overflow;
    }
    assert_int_equal(got + dropped, 3 * N); /* invariant 2 */
    assert_int_equal(dropped, 0);
    for (int j = 0; j < 4; j++)
      assert_int_equal(last[j], i == j ? 0 : N);
  }
  for (int i = 0; i < 4; i++)
    node_stop(i);
}

/* One thread interleaves sends to either peer with broadcasts, numbered in
 * the order it queued them: each peer gets its sends and every broadcast
 * in that order (broadcasts go through the node's shared log, sends through
 * the member's ring; the framer merges them), and, paced, all of them. */
static void test_send_broadcast_interleaved(void **state) {
  (void)state;
  /* Rings that hold the whole run: what is checked is the order of sends
   * and broadcasts merged, and a loop thread starved for a while on a
   * loaded machine (ASan) must not turn that into drops. */
  bftnet_config_t cfg;
  cfg_defaults(&cfg, NULL);
  cfg.ring_capacity = 1u << 15;
  for (int i = 0; i < 3; i++)
    node_start(i, &cfg);
  connect_all(3);
  for (int i = 1; i < 3; i++)
    wait_connected(0, nodes[i].id);
  enum { N = 30000 };
  uint8_t buf[100];
  uint64_t want[3] = {0, 0, 0}, rng = th_rng_init(th_seed());
  for (uint64_t s = 1; s <= N; s++) {
    size_t len = 8 + (size_t)(s % 90);
    put_seq(buf, s, len);
    unsigned kind = (unsigned)(th_rnd(&rng) % 3);
    if (kind == 2) {
      assert_int_equal(bftnet_broadcast(nodes[0].net, buf, len), 2);
      want[1]++, want[2]++;
    } else {
      assert_ok(bftnet_send(nodes[0].net, kind == 0 ? "r1" : "r2", buf, len));
      want[kind + 1]++;
    }
    if (s % 1000 == 0) usleep(10000);
  }
  for (int i = 1; i < 3; i++) {
    uint64_t last[MAXN] = {0};
    uint64_t got = recv_ordered(i, want[i], last, 5000); /* fails on any reorder */
    bftnet_peer_stats_t st;
    assert_ok(bftnet_peer_stats(nodes[0].net, nodes[i].id, &st));
    assert_int_equal(st.dropped_overflow, 0);
    assert_int_equal(got, want[i]);
    assert_int_equal(st.enqueued, want[i]);
  }
  assert_ok(bftnet_flush(nodes[0].net, 5000));
  for (int i = 0; i < 3; i++)
    node_stop(i);
}

static void test_bad_arguments_and_membership(void **state) {
  (void)state;
  node_start(0, NULL);
  node_start(1, NULL);
  connect_all(2);
  uint8_t x[8] = {0};
  assert_err(bftnet_send(nodes[0].net, "nobody", x, 8), BFTNET_ENOTFOUND);
  assert_err(bftnet_send(nodes[0].net, "r0", x, 8), BFTNET_EINVAL); /* ourselves */
  assert_err(bftnet_send(nodes[0].net, NULL, x, 8), BFTNET_EINVAL);
  static uint8_t big[4 * 1024 * 1024 + 1];
  assert_err(bftnet_send(nodes[0].net, "r1", big, sizeof big), BFTNET_ETOOBIG);
  /* A rejected membership changes nothing, and names the culprit. */
  const char *a0[] = {nodes[0].addr}, *a1[] = {nodes[1].addr};
  bftnet_member_t dup_id[] = {{"r0", a0, 1}, {"r0", a1, 1}};
  bftnet_member_t dup_peer[] = {{"r0", a0, 1}, {"r1", a1, 1}, {"r9", a1, 1}};
  const char *bad[] = {"/dns4/example.com/tcp/1"};
  bftnet_member_t bad_addr[] = {{"r0", a0, 1}, {"r1", bad, 1}};
  char err[256];
  assert_err(bftnet_connect(nodes[0].net, dup_id, 2, err, sizeof err), BFTNET_EDUPLICATE);
  assert_non_null(strstr(err, "r0"));
  assert_err(bftnet_connect(nodes[0].net, dup_peer, 3, err, sizeof err), BFTNET_EDUPLICATE);
  assert_non_null(strstr(err, "r9"));
  assert_err(bftnet_connect(nodes[0].net, bad_addr, 2, err, sizeof err), BFTNET_EBADADDR);
  assert_non_null(strstr(err, "dns4"));
  bftnet_peer_stats_t st;
  assert_ok(bftnet_peer_stats(nodes[0].net, "r1", &st)); /* still a member */
  bftnet_msg_t m;
  assert_err(bftnet_recv(nodes[0].net, &m, 0), BFTNET_EAGAIN);
  assert_err(bftnet_recv(nodes[0].net, &m, 30), BFTNET_ETIMEDOUT);
  node_stop(0);
  node_stop(1);
}

static void test_member_that_never_reads_costs_bounded_memory(void **state) {
  (void)state;
  bftnet_config_t cfg;
  cfg_defaults(&cfg, NULL);
  cfg.ring_capacity = 64;
  cfg.inbound_max_msgs = 64;
  cfg.yamux_window = 256 * 1024;
  node_start(0, &cfg);
  node_start(1, &cfg);
  connect_all(2);
  wait_connected(0, "r1");
  enum { N = 50000 };
  send_numbered(0, "r1", 1, N, 1024);
  usleep(300000); /* r1 reads nothing meanwhile */
  bftnet_peer_stats_t a, b;
  assert_ok(bftnet_peer_stats(nodes[0].net, "r1", &a));
  assert_ok(bftnet_peer_stats(nodes[1].net, "r0", &b));
  /* The sender's ring is full and dropping; the receiver holds at most its
   * queue plus one window of overshoot; nothing else grows. */
  print_message("never reads: sender ring %llu, dropped %llu; receiver queue %llu (bound %d), "
                "migrations %llu\n",
                (unsigned long long)a.ring_depth, (unsigned long long)a.dropped_overflow,
                (unsigned long long)b.inbound_depth, 64 + (256 * 1024) / 1024 + 1,
                (unsigned long long)a.migrations);
  assert_true(a.ring_depth <= 63);
  assert_true(a.dropped_overflow > 0);
  /* The queue plus one window of overshoot, even across migrations (a
   * duplicate connection retired meanwhile must not let another in). */
  assert_true(b.inbound_depth <= 64 + (256 * 1024) / 1024 + 1);
  /* Sending is over: the drops are final, and everything else must arrive
   * (a generous wait: a loaded machine may pause the loop for a second). */
  uint64_t last[MAXN] = {0};
  uint64_t got = recv_ordered(1, N - a.dropped_overflow, last, 10000);
  assert_ok(bftnet_peer_stats(nodes[0].net, "r1", &a));
  assert_int_equal(got + a.dropped_overflow, N); /* invariant 2 */
  assert_int_equal(last[0], N);
  node_stop(0);
  node_stop(1);
}

/* A receiver that takes one message at a time from a tiny inbound queue:
 * the window brings many more than fit, and they wait in the queue's
 * overflow until the application makes room. Each time it does, the loop
 * moves them into the queue and must tell the application, which is
 * asleep in bftnet_recv beside the emptied queue by then: a receive that
 * sleeps its whole timeout while messages wait is a lost wakeup. */
static void test_overflow_reaches_a_blocked_receiver(void **state) {
  (void)state;
  bftnet_config_t cfg;
  cfg_defaults(&cfg, NULL);
  cfg.ring_capacity = 4096; /* the sender keeps every message: none dropped */
  cfg.inbound_max_msgs = 4; /* three in the queue, the rest of a window over it */
  node_start(0, &cfg);
  node_start(1, &cfg);
  connect_all(2);
  wait_connected(0, "r1");
  enum { N = 2000 };
  send_numbered(0, "r1", 1, N, 64);
  bftnet_peer_stats_t st = {0};
  for (int i = 0; i < 500 && st.inbound_depth <= 3; i++) { /* the overflow fills */
    usleep(10000);
    assert_ok(bftnet_peer_stats(nodes[1].net, "r0", &st));
  }
  assert_true(st.inbound_depth > 3);
  /* Every message is at r1 by now: no receive may sleep its whole
   * timeout (one that does and then finds a message was never woken). */
  uint64_t seq = 0;
  while (seq < N) {
    bftnet_msg_t m;
    double t0 = now_s();
    int rc = bftnet_recv(nodes[1].net, &m, 3000);
    if (now_s() - t0 >= 3.0) {
      assert_ok(bftnet_peer_stats(nodes[1].net, "r0", &st));
      fail_msg("bftnet_recv slept its whole 3 s timeout after message %llu of %d (%s) with %u "
               "waiting in r1's queue: a lost wakeup",
               (unsigned long long)seq, N, bftnet_err_name(rc), st.inbound_depth);
    }
    assert_ok(rc);
    uint64_t s = get_seq(m.data);
    if (s != seq + 1)
      fail_msg("message %llu after %llu (lost, duplicated or reordered)", (unsigned long long)s,
               (unsigned long long)seq);
    seq = s;
    bftnet_msg_release(&m);
  }
  assert_ok(bftnet_peer_stats(nodes[0].net, "r1", &st));
  assert_int_equal(st.dropped_overflow, 0);
  assert_ok(bftnet_peer_stats(nodes[1].net, "r0", &st));
  assert_int_equal(st.delivered, N);
  assert_int_equal(st.inbound_depth, 0);
  node_stop(0);
  node_stop(1);
}

static void test_tentative_then_promoted(void **state) {
  (void)state;
  node_start(0, NULL);
  node_start(1, NULL);
  int both[] = {0, 1}, only1[] = {1};
  connect_to(0, both, 2);  /* r0 knows r1 */
  connect_to(1, only1, 1); /* r1 does not know r0 yet */
  uint8_t buf[32];
  for (uint64_t s = 1; s <= 100; s++) {
    put_seq(buf, s, sizeof buf);
    assert_ok(bftnet_send(nodes[0].net, "r1", buf, sizeof buf));
  }
  usleep(300000);
  bftnet_msg_t m;
  assert_err(bftnet_recv(nodes[1].net, &m, 100), BFTNET_ETIMEDOUT); /* invariant 4 */
  connect_to(1, both, 2);                                           /* promotion */
  uint64_t last[MAXN] = {0};
  assert_int_equal(recv_ordered(1, 100, last, 3000), 100);
  assert_int_equal(last[0], 100);
  /* It goes on as a Receiver. */
  for (uint64_t s = 101; s <= 200; s++) {
    put_seq(buf, s, sizeof buf);
    assert_ok(bftnet_send(nodes[0].net, "r1", buf, sizeof buf));
  }
  assert_int_equal(recv_ordered(1, 100, last, 3000), 100);
  node_stop(0);
  node_stop(1);
}

static void test_tentative_limit_evicts_oldest(void **state) {
  (void)state;
  bftnet_config_t cfg;
  cfg_defaults(&cfg, NULL);
  cfg.tentative_max = 2;
  node_start(0, &cfg); /* knows nobody */
  /* An evicted non-member redials; slow backoff keeps this test about the
   * eviction itself rather than the (specified) churn that follows. */
  bftnet_config_t slow;
  cfg_defaults(&slow, NULL);
  slow.dial_backoff_min_ms = 10000;
  slow.dial_backoff_max_ms = 20000;
  for (int i = 1; i <= 3; i++)
    node_start(i, &slow);
  int only0[] = {0};
  connect_to(0, only0, 1);
  uint8_t buf[16];
  for (int i = 1; i <= 3; i++) {
    int pair[] = {0, i};
    connect_to(i, pair, 2);
    put_seq(buf, 1, sizeof buf);
    assert_ok(bftnet_send(nodes[i].net, "r0", buf, sizeof buf));
    for (int k = 0;
         k < 200 && bftnet_counter(nodes[0].net, BFTNET_COUNTER_TENTATIVE_CREATED) < (uint64_t)i;
         k++)
      usleep(5000); /* creation order r1, r2, r3 */
    usleep(50000);
  }
  bftnet_t *r0 = nodes[0].net;
  assert_int_equal(bftnet_counter(r0, BFTNET_COUNTER_TENTATIVE_CREATED), 3);
  assert_int_equal(bftnet_counter(r0, BFTNET_COUNTER_TENTATIVE_DESTROYED), 1); /* at most 2 live */
  /* r1's message went with it: counted, not lost silently (invariant 2). */
  assert_int_equal(bftnet_counter(r0, BFTNET_COUNTER_TENTATIVE_EVICTED), 1);
  assert_true(bftnet_counter(r0, BFTNET_COUNTER_TENTATIVE_BYTES) <= 2 * cfg.tentative_max_bytes);
  bftnet_msg_t m;
  assert_err(bftnet_recv(r0, &m, 0), BFTNET_EAGAIN); /* invariant 4 */
  /* r1's TentativeReceiver was the least recently created: destroyed with
   * its buffer; r2 and r3 promote with their data. */
  int all[] = {0, 1, 2, 3};
  connect_to(0, all, 4);
  uint64_t last[MAXN] = {0};
  assert_int_equal(recv_ordered(0, 2, last, 2000), 2);
  assert_int_equal(last[1], 0);
  assert_int_equal(last[2], 1);
  assert_int_equal(last[3], 1);
  assert_int_equal(bftnet_counter(r0, BFTNET_COUNTER_TENTATIVE_PROMOTED), 2);
  for (int i = 0; i <= 3; i++)
    node_stop(i);
}

static void test_removed_member(void **state) {
  (void)state;
  node_start(0, NULL);
  node_start(1, NULL);
  connect_all(2);
  wait_connected(0, "r1");
  node_crash(1); /* r1 goes away: what r0 queues for it now stays in its ring */
  bftnet_peer_stats_t st;
  for (int i = 0; i < 500; i++) {
    assert_ok(bftnet_peer_stats(nodes[0].net, "r1", &st));
    if (!st.connected) break;
    usleep(10000);
  }
  assert_int_equal(st.connected, 0);
  uint8_t x[8] = {0};
  for (int k = 0; k < 100; k++)
    assert_ok(bftnet_send(nodes[0].net, "r1", x, 8));
  int only0[] = {0};
  connect_to(0, only0, 1); /* removal releases them, and counts them */
  /* Still in the ring, or already in the detached stream's retransmit
   * window: either way released and counted, each exactly once. */
  assert_int_equal(bftnet_counter(nodes[0].net, BFTNET_COUNTER_DROPPED_REMOVED) +
                       bftnet_counter(nodes[0].net, BFTNET_COUNTER_ABORTED_REMOVED),
                   100);
  assert_err(bftnet_send(nodes[0].net, "r1", x, 8), BFTNET_ENOTFOUND);
  assert_err(bftnet_peer_stats(nodes[0].net, "r1", &st), BFTNET_ENOTFOUND);
  node_stop(0);
  node_stop(1);
}

static void test_recv_fd_polls_readable(void **state) {
  (void)state;
  node_start(0, NULL);
  node_start(1, NULL);
  connect_all(2);
  int fd = bftnet_recv_fd(nodes[1].net);
  assert_true(fd >= 0);
  uint8_t buf[8];
  put_seq(buf, 1, 8);
  assert_ok(bftnet_send(nodes[0].net, "r1", buf, 8));
  struct pollfd p = {.fd = fd, .events = POLLIN};
  assert_int_equal(poll(&p, 1, 5000), 1);
  bftnet_msg_t m;
  assert_ok(bftnet_recv(nodes[1].net, &m, 0));
  assert_string_equal(m.from, "r0");
  bftnet_msg_release(&m);
  node_stop(0);
  node_stop(1);
}

/* The fd asked for after the message was already queued: readable at
 * once (the loop writes the fd only once an application polls it, or a
 * thread sleeps in bftnet_recv; what it queued before it knew must not go
 * unsignalled). */
static void test_recv_fd_after_messages_queued(void **state) {
  (void)state;
  node_start(0, NULL);
  node_start(1, NULL);
  connect_all(2);
  uint8_t buf[8];
  put_seq(buf, 1, 8);
  assert_ok(bftnet_send(nodes[0].net, "r1", buf, 8));
  bftnet_class_stats_t st = {0};
  for (int i = 0; i < 500 && st.inbound_depth == 0; i++) {
    assert_ok(bftnet_class_stats(nodes[1].net, "r0", 0, &st));
    if (st.inbound_depth == 0) usleep(10 * 1000);
  }
  assert_int_equal(st.inbound_depth, 1);
  int fd = bftnet_recv_fd(nodes[1].net);
  assert_true(fd >= 0);
  struct pollfd p = {.fd = fd, .events = POLLIN};
  assert_int_equal(poll(&p, 1, 2000), 1);
  bftnet_msg_t m;
  assert_ok(bftnet_recv(nodes[1].net, &m, 0));
  bftnet_msg_release(&m);
  assert_err(bftnet_recv(nodes[1].net, &m, 0), BFTNET_EAGAIN); /* and cleared it */
  assert_int_equal(poll(&p, 1, 0), 0);
  node_stop(0);
  node_stop(1);
}

/* ------------------------------------------------ concurrency and faults */

typedef struct sender_arg {
  int from, thread;
  const char *to;
  uint64_t n, sent;
  int pace_every;
  int last_err;
  atomic_bool done;
} sender_arg_t;

/* Payload: seq (8 bytes, big endian) then the thread index. */
static void *sender_thread(void *p) {
  sender_arg_t *a = p;
  uint8_t buf[64];
  for (uint64_t s = 1; s <= a->n; s++) {
    put_seq(buf, s, sizeof buf);
    if (a->thread >= 0) buf[8] = (uint8_t)a->thread; /* tagged: checked per thread */
    int rc = bftnet_send(nodes[a->from].net, a->to, buf, sizeof buf);
    if (rc) {
      a->last_err = rc;
      break;
    }
    a->sent = s;
    if (a->pace_every && s % (uint64_t)a->pace_every == 0) usleep(2000);
  }
  atomic_store(&a->done, true);
  return NULL;
}

static void test_four_sender_threads(void **state) {
  (void)state;
  node_start(0, NULL);
  node_start(1, NULL);
  connect_all(2);
  wait_connected(0, "r1");
  enum { T = 4, N = 25000 };
  pthread_t th[T];
  sender_arg_t args[T];
  for (int t = 0; t < T; t++) {
    args[t] = (sender_arg_t){.from = 0, .thread = t, .to = "r1", .n = N, .pace_every = 500};
    pthread_create(&th[t], NULL, sender_thread, &args[t]);
  }
  uint64_t last[T] = {0}, got = 0;
  bftnet_msg_t msgs[64];
  bftnet_peer_stats_t st = {0};
  for (;;) {
    /* Once every thread is done, the drops are final and everything else
     * must arrive; a receive that sleeps its whole (generous: TSan is slow)
     * timeout meanwhile is a stall, not the end. */
    int done = 0;
    for (int t = 0; t < T; t++)
      done += atomic_load(&args[t].done);
    if (done == T) {
      assert_ok(bftnet_peer_stats(nodes[0].net, "r1", &st));
      if (got + st.dropped_overflow == (uint64_t)T * N) break;
    }
    int n = bftnet_recv_batch(nodes[1].net, msgs, 64, done == T ? 20000 : 100);
    if (n == BFTNET_ETIMEDOUT && done < T) continue; /* the threads finish without blocking */
    if (n == BFTNET_ETIMEDOUT) {
      bftnet_peer_stats_t rs;
      assert_ok(bftnet_peer_stats(nodes[0].net, "r1", &st));
      assert_ok(bftnet_peer_stats(nodes[1].net, "r0", &rs));
      fail_msg("stalled: %llu received, %llu dropped of %d sent (%d threads done); sender: "
               "ring %u, sent %llu; receiver: queue %u, delivered %llu",
               (unsigned long long)got, (unsigned long long)st.dropped_overflow, T * N, done,
               st.ring_depth, (unsigned long long)st.sent, rs.inbound_depth,
               (unsigned long long)rs.delivered);
    }
    assert_true(n > 0);
    for (int k = 0; k < n; k++) {
      int t = msgs[k].data[8];
      uint64_t seq = get_seq(msgs[k].data);
      assert_true(t >= 0 && t < T);
      if (seq <= last[t])
        fail_msg("thread %d: seq %llu after %llu", t, (unsigned long long)seq,
                 (unsigned long long)last[t]);
      last[t] = seq;
      bftnet_msg_release(&msgs[k]);
      got++;
    }
  }
  for (int t = 0; t < T; t++)
    pthread_join(th[t], NULL);
  assert_ok(bftnet_peer_stats(nodes[0].net, "r1", &st));
  assert_int_equal(st.enqueued, (uint64_t)T * N);
  assert_int_equal(got + st.dropped_overflow, (uint64_t)T * N);
  /* Drop-oldest on a ring shared by the threads may take an early
   * finisher's tail; only without drops must every thread's last arrive. */
  for (int t = 0; t < T; t++)
    if (st.dropped_overflow == 0)
      assert_int_equal(last[t], N);
    else
      assert_true(last[t] <= N);
  print_message("4 threads: %llu delivered, %llu dropped\n", (unsigned long long)got,
                (unsigned long long)st.dropped_overflow);
  node_stop(0);
  node_stop(1);
}

static void test_remove_member_mid_stream(void **state) {
  (void)state;
  node_start(0, NULL);
  node_start(1, NULL);
  connect_all(2);
  wait_connected(0, "r1");
  pthread_t th;
  sender_arg_t a = {.from = 0, .thread = -1, .to = "r1", .n = 10000000, .pace_every = 200};
  pthread_create(&th, NULL, sender_thread, &a);
  uint64_t last[MAXN] = {0};
  recv_ordered(1, 2000, last, 3000);
  int only0[] = {0};
  connect_to(0, only0, 1); /* r1 is removed while r0 is sending to it */
  pthread_join(th, NULL);
  assert_int_equal(a.last_err, BFTNET_ENOTFOUND);
  uint64_t before = last[0];
  recv_ordered(1, UINT64_MAX, last, 300); /* whatever was in flight: still in order */
  assert_true(last[0] >= before && last[0] <= a.sent);
  print_message("removed mid-stream after %llu sends; r1 saw up to %llu\n",
                (unsigned long long)a.sent, (unsigned long long)last[0]);
  node_stop(0);
  node_stop(1);
}

/* Sends n paced 1 KiB messages from `from` to `to` and measures how long
 * `to` takes to receive them. */
static double timed_delivery(int from, int to, uint64_t base, uint64_t n, uint64_t last[MAXN]) {
  uint8_t buf[1024];
  double t0 = now_s();
  uint64_t got = 0;
  for (uint64_t s = base + 1; s <= base + n; s++) {
    put_seq(buf, s, sizeof buf);
    assert_ok(bftnet_send(nodes[from].net, nodes[to].id, buf, sizeof buf));
    if (s % 256 == 0) got += recv_ordered(to, s - base - got, last, 2000); /* paced: no overflow */
  }
  got += recv_ordered(to, n - got, last, 3000);
  assert_int_equal(got, n);
  return now_s() - t0;
}

static void test_member_that_never_reads_slows_no_one(void **state) {
  (void)state;
  start_connected(3);
  uint64_t last[MAXN] = {0};
  double base = timed_delivery(0, 1, 0, 20000, last);
  /* r2 never reads: flood it while measuring r0 -> r1 again. */
  uint8_t buf[1024];
  for (uint64_t s = 1; s <= 50000; s++) {
    put_seq(buf, s, sizeof buf);
    assert_ok(bftnet_send(nodes[0].net, "r2", buf, sizeof buf));
  }
  double clogged = timed_delivery(0, 1, 20000, 20000, last);
  usleep(200000);
  long rss0 = rss_kib(); /* r2's ring and queue are full by now */
  for (uint64_t s = 1; s <= 50000; s++) {
    put_seq(buf, s, sizeof buf);
    assert_ok(bftnet_send(nodes[0].net, "r2", buf, sizeof buf));
  }
  usleep(200000);
  long rss1 = rss_kib();
  bftnet_peer_stats_t to2, in2;
  assert_ok(bftnet_peer_stats(nodes[0].net, "r2", &to2));
  assert_ok(bftnet_peer_stats(nodes[2].net, "r0", &in2));
  print_message("r0->r1 20000 x 1 KiB: %.3f s alone, %.3f s while r2 never reads (ratio %.2f); "
                "RSS %ld -> %ld KiB; r2 queue %u, r0 ring to r2 %u, dropped %llu\n",
                base, clogged, clogged / base, rss0, rss1, in2.inbound_depth, to2.ring_depth,
                (unsigned long long)to2.dropped_overflow);
  assert_true(to2.ring_depth <= 4095);
  assert_true(in2.inbound_depth <= 4096 + 1024 + 1); /* queue + one window of 1 KiB messages */
  assert_true(to2.dropped_overflow > 0);
  /* Flat: once r2's ring and queue are full, another 50 MiB sent to it
   * adds nothing but allocator noise. (Not under ASan, whose quarantine
   * keeps freed memory resident on purpose.) */
#ifndef TH_ASAN
  assert_true(rss1 - rss0 < 4 * 1024);
#endif
  for (int i = 0; i < 3; i++)
    node_stop(i);
}

/* Broadcasts flat out while one member is dead (its node stopped): the
 * live member gets every broadcast in order; the dead one's share is either
 * still queued (its ring and its place in the broadcast log) or counted
 * dropped, exactly; the log does not grow past its bound (the dead member
 * is moved on), so memory stays flat. */
static void test_broadcast_with_a_dead_member(void **state) {
  (void)state;
  for (int i = 0; i < 3; i++)
    node_start(i, NULL);
  node_stop(2); /* r2 keeps its address in the membership, nobody answers */
  const int all[] = {0, 1, 2};
  connect_to(0, all, 3);
  connect_to(1, all, 3);
  wait_connected(0, "r1");
  enum { N = 60000 };
  uint8_t buf[256];
  uint64_t last[MAXN] = {0}, got = 0;
  long rss_half = 0;
  for (uint64_t s = 1; s <= N; s++) {
    put_seq(buf, s, sizeof buf);
    assert_int_equal(bftnet_broadcast(nodes[0].net, buf, sizeof buf), 2);
    if (s % 512 == 0) got += recv_ordered(1, s - got, last, 2000); /* paced for r1 */
    if (s == N / 2) rss_half = rss_kib();
  }
  got += recv_ordered(1, N - got, last, 3000);
  long rss_end = rss_kib();
  bftnet_peer_stats_t live, dead;
  assert_ok(bftnet_peer_stats(nodes[0].net, "r1", &live));
  assert_ok(bftnet_peer_stats(nodes[0].net, "r2", &dead));
  print_message("broadcast with a dead member: r1 got %llu; r2 dropped %llu, queued %u; "
                "RSS %ld -> %ld KiB\n",
                (unsigned long long)got, (unsigned long long)dead.dropped_overflow, dead.ring_depth,
                rss_half, rss_end);
  assert_int_equal(got, N); /* in order: recv_ordered checks */
  assert_int_equal(live.dropped_overflow, 0);
  assert_int_equal(dead.sent, 0);
  assert_int_equal(dead.enqueued, N);
  assert_int_equal(dead.dropped_overflow + dead.ring_depth, N); /* all accounted for */
  assert_true(dead.dropped_overflow > 0);
  assert_true(dead.ring_depth <= 4095 + 2 * 4096); /* its ring + the log */
#ifndef TH_ASAN
  assert_true(rss_end - rss_half < 4 * 1024); /* the second half added nothing */
#endif
  node_stop(0);
  node_stop(1);
}

typedef struct flood_arg {
  int from;
  int stop; /* atomic */
  uint64_t sent;
} flood_arg_t;

static void *flood_thread(void *p) {
  flood_arg_t *f = p;
  uint8_t buf[4096] = {0};
  while (!__atomic_load_n(&f->stop, __ATOMIC_ACQUIRE)) {
    if (bftnet_send(nodes[f->from].net, "r1", buf, sizeof buf) == 0) f->sent++;
    if (f->sent % 64 == 0) usleep(100);
  }
  return NULL;
}

static void test_nonmember_flood(void **state) {
  (void)state;
  bftnet_config_t cfg;
  cfg_defaults(&cfg, NULL);
  cfg.tentative_max = 4;
  cfg.tentative_max_bytes = 256 * 1024;
  for (int i = 0; i < 3; i++)
    node_start(i, i == 1 ? &cfg : NULL);
  int r01[] = {0, 1};
  connect_to(0, r01, 2);
  connect_to(1, r01, 2); /* r2 is not a member of r1's view */
  int r21[] = {1, 2};
  connect_to(2, r21, 2); /* ...but r2 thinks r1 is its peer and floods it */
  wait_connected(0, "r1");
  uint64_t last[MAXN] = {0};
  double base = timed_delivery(0, 1, 0, 20000, last);
  flood_arg_t f = {.from = 2};
  pthread_t th;
  pthread_create(&th, NULL, flood_thread, &f);
  usleep(200000);
  uint64_t peak = 0;
  double flooded = timed_delivery(0, 1, 20000, 20000, last);
  for (int i = 0; i < 20; i++) {
    uint64_t b = bftnet_counter(nodes[1].net, BFTNET_COUNTER_TENTATIVE_BYTES);
    if (b > peak) peak = b;
    usleep(10000);
  }
  __atomic_store_n(&f.stop, 1, __ATOMIC_RELEASE);
  pthread_join(th, NULL);
  uint64_t evicted = bftnet_counter(nodes[1].net, BFTNET_COUNTER_TENTATIVE_EVICTED);
  print_message("r0->r1 20000 x 1 KiB: %.3f s alone, %.3f s under a non-member flood "
                "(ratio %.2f); flood sent %llu x 4 KiB, tentative peak %llu bytes, evicted %llu\n",
                base, flooded, flooded / base, (unsigned long long)f.sent, (unsigned long long)peak,
                (unsigned long long)evicted);
  assert_true(peak <= 4 * 256 * 1024); /* tentative_max x tentative_max_bytes */
  assert_true(evicted > 0);
  bftnet_msg_t m;
  assert_err(bftnet_recv(nodes[1].net, &m, 0), BFTNET_EAGAIN); /* invariant 4 */
  for (int i = 0; i < 3; i++)
    node_stop(i);
}

static void test_peer_restart_reconnects(void **state) {
  (void)state;
  node_start(0, NULL);
  node_start(1, NULL);
  connect_all(2);
  wait_connected(0, "r1");
  pthread_t th;
  sender_arg_t a = {.from = 0, .thread = -1, .to = "r1", .n = 30000, .pace_every = 50};
  pthread_create(&th, NULL, sender_thread, &a);
  uint64_t last[MAXN] = {0};
  uint64_t got = recv_ordered(1, 3000, last, 3000);
  node_crash(1); /* r1's process goes away... */
  usleep(300000);
  node_start_as(1, NULL, true); /* ...and comes back on the same address */
  connect_all(2);
  uint64_t last2[MAXN] = {0};
  pthread_join(th, NULL);
  got += recv_ordered(1, UINT64_MAX, last2, 2000);
  bftnet_peer_stats_t st;
  assert_ok(bftnet_peer_stats(nodes[0].net, "r1", &st));
  assert_true(st.reconnects >= 1);
  assert_int_equal(last2[0], a.n); /* the dispatcher reconnected and goes on */
  /* The new process is a new incarnation: the old stream was aborted at
   * once and its unconfirmed messages counted; what the old process had
   * taken but the application never read died with it. */
  assert_true(st.peer_restarts >= 1);
  uint64_t lost = a.n - got - st.dropped_overflow;
  /* Not comparable exactly: `aborted` also counts messages the old process
   * took whose confirmation was still on its way (an upper bound), and
   * `lost` includes what the old process took but never handed over. */
  print_message("restart: sent %llu, delivered %llu, dropped %llu, missing %llu of which aborted "
                "(counted) %llu, the rest died with the old process; reconnects %llu\n",
                (unsigned long long)a.n, (unsigned long long)got,
                (unsigned long long)st.dropped_overflow, (unsigned long long)lost,
                (unsigned long long)st.aborted, (unsigned long long)st.reconnects);
  node_stop(0);
  node_stop(1);
}

/* ------------------------------------------ callback mode, app's own loop */

typedef struct cb_state {
  uint64_t got, last;
  int order_errors;
  int added, up;
} cb_state_t;

static void on_msg(const char *from, const uint8_t *data, size_t len, void *user) {
  cb_state_t *c = user;
  if (strcmp(from, "r0") != 0 || len < 8) return;
  uint64_t seq = get_seq(data);
  if (seq <= c->last) c->order_errors++;
  c->last = seq;
  __atomic_add_fetch(&c->got, 1, __ATOMIC_RELEASE);
}

static void on_ev(const bftnet_event_t *ev, void *user) {
  cb_state_t *c = user;
  if (ev->type == BFTNET_EV_MEMBER_ADDED) __atomic_add_fetch(&c->added, 1, __ATOMIC_RELEASE);
  if (ev->type == BFTNET_EV_MEMBER_UP) __atomic_add_fetch(&c->up, 1, __ATOMIC_RELEASE);
}

static void test_callback_mode_and_events(void **state) {
  (void)state;
  static cb_state_t cs;
  memset(&cs, 0, sizeof cs);
  bftnet_config_t cfg;
  cfg_defaults(&cfg, NULL);
  cfg.on_message = on_msg; /* delivered on r1's loop thread */
  cfg.on_event = on_ev;
  cfg.user = &cs;
  node_start(0, NULL);
  node_start(1, &cfg);
  connect_all(2);
  wait_connected(0, "r1");
  uint8_t buf[32];
  for (uint64_t s = 1; s <= 5000; s++) {
    put_seq(buf, s, sizeof buf);
    assert_ok(bftnet_send(nodes[0].net, "r1", buf, sizeof buf));
    if (s % 1000 == 0) usleep(10000);
  }
  for (int i = 0; i < 500 && __atomic_load_n(&cs.got, __ATOMIC_ACQUIRE) < 5000; i++)
    usleep(10000);
  assert_int_equal(__atomic_load_n(&cs.got, __ATOMIC_ACQUIRE), 5000);
  assert_int_equal(cs.order_errors, 0);
  assert_int_equal(__atomic_load_n(&cs.added, __ATOMIC_ACQUIRE), 1); /* r0 (not itself) */
  for (int i = 0; i < 200 && __atomic_load_n(&cs.up, __ATOMIC_ACQUIRE) < 1; i++)
    usleep(10000);
  assert_int_equal(__atomic_load_n(&cs.up, __ATOMIC_ACQUIRE), 1);
  bftnet_msg_t m; /* nothing is queued for bftnet_recv in callback mode: it says so */
  assert_err(bftnet_recv(nodes[1].net, &m, 0), BFTNET_EONMESSAGE);
  assert_err(bftnet_recv(nodes[1].net, &m, 100), BFTNET_EONMESSAGE);
  bftnet_peer_stats_t st;
  assert_ok(bftnet_peer_stats(nodes[1].net, "r0", &st));
  assert_int_equal(st.delivered, 5000);
  node_stop(0);
  node_stop(1);
}

/* A ping-pong run entirely on the two loop threads: r0's on_message sends
 * the next ping, r1's replies (bftnet_send for even numbers,
 * bftnet_broadcast for odd ones) from inside the callback. Sends from the
 * loop thread are drained at the end of the turn (no wake of its own): if
 * that drain were lost, the exchange would stall. */
typedef struct pp_state {
  bftnet_t **net;
  uint64_t next, got, bad;
  uint64_t n;
} pp_state_t;

static void pp_ping(const char *from, const uint8_t *data, size_t len, void *user) {
  pp_state_t *p = user;
  if (strcmp(from, "r1") != 0 || len != 16 || get_seq(data) != p->next) {
    __atomic_add_fetch(&p->bad, 1, __ATOMIC_RELAXED);
    return;
  }
  __atomic_add_fetch(&p->got, 1, __ATOMIC_RELEASE);
  if (p->next == p->n) return;
  uint8_t buf[16];
  put_seq(buf, ++p->next, sizeof buf);
  if (bftnet_send(*p->net, "r1", buf, sizeof buf) != 0)
    __atomic_add_fetch(&p->bad, 1, __ATOMIC_RELAXED);
}

static void pp_pong(const char *from, const uint8_t *data, size_t len, void *user) {
  pp_state_t *p = user;
  if (strcmp(from, "r0") != 0 || len != 16) {
    __atomic_add_fetch(&p->bad, 1, __ATOMIC_RELAXED);
    return;
  }
  int rc = get_seq(data) % 2 ? bftnet_broadcast(*p->net, data, len) - 1 /* 1 member */
                             : bftnet_send(*p->net, from, data, len);
  if (rc != 0) __atomic_add_fetch(&p->bad, 1, __ATOMIC_RELAXED);
}

static void test_callback_replies_on_loop_thread(void **state) {
  (void)state;
  static pp_state_t ping, pong;
  memset(&ping, 0, sizeof ping);
  memset(&pong, 0, sizeof pong);
  ping.net = &nodes[0].net, ping.n = 3000, ping.next = 1;
  pong.net = &nodes[1].net;
  bftnet_config_t c0, c1;
  cfg_defaults(&c0, NULL);
  cfg_defaults(&c1, NULL);
  c0.on_message = pp_ping, c0.user = &ping;
  c1.on_message = pp_pong, c1.user = &pong;
  node_start(0, &c0);
  node_start(1, &c1);
  connect_all(2);
  wait_connected(0, "r1");
  wait_connected(1, "r0");
  uint8_t buf[16];
  put_seq(buf, 1, sizeof buf);
  double t0 = now_s();
  assert_ok(bftnet_send(nodes[0].net, "r1", buf, sizeof buf)); /* the first, from this thread */
  for (int i = 0; i < 1000 && __atomic_load_n(&ping.got, __ATOMIC_ACQUIRE) < ping.n; i++)
    usleep(10000);
  double dt = now_s() - t0;
  assert_int_equal(__atomic_load_n(&ping.got, __ATOMIC_ACQUIRE), ping.n);
  assert_int_equal(ping.bad, 0);
  assert_int_equal(pong.bad, 0);
  print_message("loop-thread ping-pong: %llu round trips in %.3f s (%.1f us each)\n",
                (unsigned long long)ping.n, dt, dt / (double)ping.n * 1e6);
  node_stop(0);
  node_stop(1);
}

/* The application runs bftnet on its own uv_loop_t, from its own thread:
 * bftnet starts no thread; blocking calls turn the loop themselves. */
/* busy_poll_us: validated; a ping-pong with busy polling on both nodes
 * delivers every message in order; timeouts and stop still hold. */
static void test_busy_poll(void **state) {
  (void)state;
  bftnet_config_t bad;
  bftnet_config_init(&bad);
  bad.busy_poll_us = 1000001;
  bftnet_t *nb = NULL;
  assert_err(bftnet_new(&nb, &bad), BFTNET_EINVAL);
  assert_null(nb);
  bftnet_config_t over;
  bftnet_config_init(&over);
  over.busy_poll_us = 200;
  node_start(0, &over);
  node_start(1, &over);
  connect_all(2);
  wait_connected(0, "r1");
  uint8_t buf[64];
  double t0 = now_s();
  for (uint64_t s = 1; s <= 2000; s++) {
    put_seq(buf, s, sizeof buf);
    assert_ok(bftnet_send(nodes[0].net, "r1", buf, sizeof buf));
    bftnet_msg_t m;
    assert_ok(bftnet_recv(nodes[1].net, &m, 2000));
    assert_int_equal(get_seq(m.data), s);
    assert_ok(bftnet_send(nodes[1].net, "r0", m.data, m.len));
    bftnet_msg_release(&m);
    assert_ok(bftnet_recv(nodes[0].net, &m, 2000));
    assert_int_equal(get_seq(m.data), s);
    assert_string_equal(m.from, "r1");
    bftnet_msg_release(&m);
  }
  double rt = (now_s() - t0) / 2000 * 1e6;
  print_message("busy poll: 2000 round trips, %.1f us each (one thread drives both nodes)\n", rt);
  /* Spinning never outlasts a timeout. */
  bftnet_msg_t m;
  t0 = now_s();
  assert_err(bftnet_recv(nodes[0].net, &m, 30), BFTNET_ETIMEDOUT);
  assert_true(now_s() - t0 < 1.0);
  assert_err(bftnet_recv(nodes[0].net, &m, 0), BFTNET_EAGAIN);
  t0 = now_s();
  node_stop(0);
  node_stop(1);
  assert_true(now_s() - t0 < 5.0); /* a polling loop still stops */
}

static void test_on_application_loop(void **state) {
  (void)state;
  uv_loop_t app;
  uv_loop_init(&app);
  bftnet_config_t cfg;
  cfg_defaults(&cfg, NULL);
  cfg.loop = &app;
  node_start(0, NULL);
  node_start(1, &cfg); /* r1 lives on `app` */
  connect_all(2);
  uint8_t buf[16];
  for (uint64_t s = 1; s <= 1000; s++) {
    put_seq(buf, s, sizeof buf);
    assert_ok(bftnet_send(nodes[0].net, "r1", buf, sizeof buf));
  }
  uint64_t got = 0, last = 0;
  for (int i = 0; i < 5000 && got < 1000; i++) {
    uv_run(&app, UV_RUN_NOWAIT); /* the application's loop iteration */
    bftnet_msg_t msgs[64];
    int n = bftnet_recv_batch(nodes[1].net, msgs, 64, 0);
    for (int k = 0; k < n; k++) {
      uint64_t seq = get_seq(msgs[k].data);
      assert_true(seq > last);
      last = seq;
      bftnet_msg_release(&msgs[k]);
      got++;
    }
    if (n <= 0) usleep(1000);
  }
  bftnet_peer_stats_t st;
  assert_ok(bftnet_peer_stats(nodes[0].net, "r1", &st));
  assert_int_equal(got + st.dropped_overflow, 1000);
  assert_true(got > 0);
  node_stop(1); /* closes its handles on `app` */
  node_stop(0);
  for (int i = 0; i < 20; i++)
    uv_run(&app, UV_RUN_NOWAIT);
  assert_int_equal(uv_loop_close(&app), 0); /* bftnet left nothing on the app's loop */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pair_exchange_in_order),
      cmocka_unit_test(test_flush_look_sees_confirms),
      cmocka_unit_test(test_broadcast_all_to_all),
      cmocka_unit_test(test_send_broadcast_interleaved),
      cmocka_unit_test(test_broadcast_with_a_dead_member),
      cmocka_unit_test(test_callback_replies_on_loop_thread),
      cmocka_unit_test(test_bad_arguments_and_membership),
      cmocka_unit_test(test_member_that_never_reads_costs_bounded_memory),
      cmocka_unit_test(test_overflow_reaches_a_blocked_receiver),
      cmocka_unit_test(test_tentative_then_promoted),
      cmocka_unit_test(test_tentative_limit_evicts_oldest),
      cmocka_unit_test(test_removed_member),
      cmocka_unit_test(test_recv_fd_polls_readable),
      cmocka_unit_test(test_recv_fd_after_messages_queued),
      cmocka_unit_test(test_four_sender_threads),
      cmocka_unit_test(test_remove_member_mid_stream),
      cmocka_unit_test(test_member_that_never_reads_slows_no_one),
      cmocka_unit_test(test_nonmember_flood),
      cmocka_unit_test(test_peer_restart_reconnects),
      cmocka_unit_test(test_callback_mode_and_events),
      cmocka_unit_test(test_on_application_loop),
      cmocka_unit_test(test_busy_poll),
  };
  th_test_filter();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
