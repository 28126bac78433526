/*
 * class_inflight_test.c — the in-flight cap of a paced connection (two or
 * more traffic classes) behind a link slower than the machine: both nodes
 * run in a network namespace of the test's own, whose loopback (MTU 1500, as an Ethernet link) is a
 * tc tbf link of LINK_RATE, so that what a connection's kernel holds unacknowledged is what waits
 * in the link's queue.
 *
 * Checked (docs/ARCHITECTURE.md §6; invariants 1 and 2 per class):
 *  - while blocks (class 1, priority 1) flood r0 -> r1, the bytes r0's
 *    kernel holds for the connection, written and not yet acknowledged,
 *    never exceed the cap by more than bftnet's pacing slack and framing,
 *    a vote and control frames: a block's write is cut to the room left
 *    under the cap (a whole 16 KiB piece past it fails); the cap was
 *    reached (the link, not the machine, was the limit), and without the
 *    cap the kernel holds what TCP's window lets out, several times more;
 *  - the cap follows the path: with a floor below what the link drains
 *    between two re-checks, the cap rises above the floor;
 *  - every vote (class 0) arrives, in order, and the blocks keep flowing at
 *    a good share of the link (a cap that stopped them for good would
 *    fail here); no vote is dropped or aborted.
 * Vote latencies are printed, not asserted (bench/class_bench measures them).
 * Skips (77) without root, network namespaces or tc's tbf.
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "th_app.h"
#include "th_msg.h"

#define LINK_RATE_BPS 5000000ull /* 40 Mbit/s */
#define VOTES         200        /* one every 10 ms: 2 s */
#define BLOCK         (16u * 1024u)

static th_app_t nodes[2];

static void start_pair(uint32_t inflight_min) {
  static bftnet_class_t c[2];
  bftnet_config_t cfg;
  bftnet_config_init(&cfg);
  cfg.log_level = 1;
  bftnet_class_init(&c[0], "votes");
  bftnet_class_init(&c[1], "blocks");
  c[1].priority = 1;
  c[1].ring_capacity = 64;
  cfg.classes = c;
  cfg.nclasses = 2;
  cfg.class_inflight_min = inflight_min;
  for (int i = 0; i < 2; i++)
    th_app_start(&nodes[i], i, &cfg, false);
  th_app_connect_all(nodes, 2);
  for (uint64_t end = th_mono_ns() + 10000000000ull; th_mono_ns() < end; usleep(5000)) {
    bftnet_class_stats_t a, b;
    if (bftnet_class_stats(nodes[0].net, "r1", 0, &a) == 0 && a.connected &&
        bftnet_class_stats(nodes[0].net, "r1", 1, &b) == 0 && b.connected)
      return;
  }
  fail_msg("r0's streams to r1 did not come up");
}

typedef struct run {
  atomic_bool stop;
  uint64_t send_errors;
  uint64_t votes, blocks, block_bytes, last_vote;
  uint64_t lat_us[VOTES];
} run_t;

/* r0 keeps r1's block ring full (drop-oldest takes the rest). */
static void *flood_main(void *arg) {
  run_t *r = arg;
  static uint8_t buf[BLOCK];
  bftnet_send_opts_t o = {.cls = 1};
  while (!atomic_load(&r->stop)) {
    bftnet_class_stats_t st;
    if (bftnet_class_stats(nodes[0].net, "r1", 1, &st) == 0 && st.ring_depth >= 32) {
      usleep(1000);
      continue;
    }
    for (int i = 0; i < 32; i++)
      if (bftnet_send_ex(nodes[0].net, "r1", &o, buf, sizeof buf) != 0) r->send_errors++;
  }
  return NULL;
}

/* r1 takes everything: votes in order, blocks counted. */
static void *recv_main(void *arg) {
  run_t *r = arg;
  bftnet_msg_t m[32];
  while (!atomic_load(&r->stop)) {
    int n = bftnet_recv_batch(nodes[1].net, m, 32, 50);
    for (int i = 0; i < n; i++) {
      if (m[i].cls == 0) {
        uint64_t seq = th_get_be64(m[i].data), sent = th_get_be64(m[i].data + 8);
        if (seq != r->last_vote + 1) /* invariants 1-2: every vote, in order */
          fail_msg("vote %llu after %llu", (unsigned long long)seq,
                   (unsigned long long)r->last_vote);
        r->last_vote = seq;
        if (r->votes < VOTES) r->lat_us[r->votes] = (th_mono_ns() - sent) / 1000;
        __atomic_add_fetch(&r->votes, 1, __ATOMIC_RELAXED);
      } else {
        r->blocks++;
        __atomic_add_fetch(&r->block_bytes, m[i].len, __ATOMIC_RELAXED);
      }
      bftnet_msg_release(&m[i]);
    }
  }
  return NULL;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Blocks flood for 0.5 s, then VOTES votes go out, one every 10 ms; then
 * the flood stops and the votes are waited for. Fills r and r0's stats of
 * r1 at the end of the votes. */
static void run_votes(run_t *r, bftnet_peer_stats_t *ps, double *block_share) {
  memset(r, 0, sizeof *r);
  pthread_t fl, rx;
  assert_int_equal(pthread_create(&rx, NULL, recv_main, r), 0);
  assert_int_equal(pthread_create(&fl, NULL, flood_main, r), 0);
  usleep(500000);
  uint64_t b0 = __atomic_load_n(&r->block_bytes, __ATOMIC_RELAXED), t0 = th_mono_ns();
  uint8_t vote[64] = {0};
  bftnet_send_opts_t o = {.cls = 0};
  for (uint64_t i = 1; i <= VOTES; i++) {
    th_put_be64(vote, i);
    th_put_be64(vote + 8, th_mono_ns());
    assert_ok(bftnet_send_ex(nodes[0].net, "r1", &o, vote, sizeof vote));
    usleep(10000);
  }
  uint64_t b1 = __atomic_load_n(&r->block_bytes, __ATOMIC_RELAXED), t1 = th_mono_ns();
  usleep(200000); /* the health figures are refreshed every 100 ms */
  assert_ok(bftnet_peer_stats(nodes[0].net, "r1", ps));
  atomic_store(&r->stop, true); /* the flood first: the votes have the link */
  pthread_join(fl, NULL);
  atomic_store(&r->stop, false);
  for (uint64_t end = th_mono_ns() + 10000000000ull;
       __atomic_load_n(&r->votes, __ATOMIC_RELAXED) < VOTES && th_mono_ns() < end;)
    usleep(10000);
  atomic_store(&r->stop, true);
  pthread_join(rx, NULL);
  assert_int_equal(r->send_errors, 0);
  *block_share = (double)(b1 - b0) / ((double)(t1 - t0) / 1e9) / (double)LINK_RATE_BPS;
  qsort(r->lat_us, VOTES, sizeof r->lat_us[0], cmp_u64);
  bftnet_class_stats_t v, b;
  assert_ok(bftnet_class_stats(nodes[0].net, "r1", 0, &v));
  assert_ok(bftnet_class_stats(nodes[0].net, "r1", 1, &b));
  print_message("in flight at r0: max %llu B, cap %llu B ; blocks %.0f %% of the link, "
                "%llu dropped from the ring; votes %llu of %d, latency p50 %.2f ms p99 %.2f ms\n",
                (unsigned long long)ps->inflight_max_bytes,
                (unsigned long long)ps->inflight_cap_bytes, 100 * *block_share,
                (unsigned long long)b.dropped, (unsigned long long)r->votes, VOTES,
                r->lat_us[VOTES / 2] / 1e3, r->lat_us[VOTES * 99 / 100] / 1e3);
  assert_int_equal(r->votes, VOTES);
  assert_int_equal(v.dropped + v.aborted, 0); /* votes are never dropped for blocks */
}

/* What can sit above the cap: the pacing slack (NET_PACE_SLACK: control
 * frames and what a stream wrote in the same turn), the framing of a few
 * writes (yamux header, Noise length and tag), a vote and control frames
 * (window updates, confirmations, pings) in the same flush. Not a piece
 * (16 KiB): a write is cut to the room under the cap. */
#define OVER_CAP (1024u + 2048u)

static void test_kernel_bytes_stay_under_the_cap(void **state) {
  (void)state;
  /* 64 KiB: far above what the link drains between two re-checks
   * (LINK_RATE_BPS * 250 us * 1.25, or the re-checks' real period) and
   * twice its bandwidth-delay product, so the cap is the floor. */
  start_pair(64u * 1024u);
  static run_t r;
  bftnet_peer_stats_t ps;
  double share;
  run_votes(&r, &ps, &share);
  assert_int_equal(ps.inflight_cap_bytes, 64u * 1024u);
  assert_true(bftnet_counter(nodes[0].net, BFTNET_COUNTER_INFLIGHT_WAITS) > 0); /* it bound */
  assert_true(ps.inflight_max_bytes >= ps.inflight_cap_bytes / 2); /* the link was the limit */
  assert_true(ps.inflight_max_bytes <= ps.inflight_cap_bytes + OVER_CAP);
  assert_true(share >= 0.25); /* the blocks kept flowing (liveness; bench/ has the rate) */
  th_app_stop(&nodes[0]);
  th_app_stop(&nodes[1]);
}

static void test_cap_follows_the_rate(void **state) {
  (void)state;
  /* A floor of 256 B: a cap left there would let out 256 B a re-check of
   * 250 us (1 MB/s), a fifth of the link. */
  start_pair(256);
  static run_t r;
  bftnet_peer_stats_t ps;
  double share;
  run_votes(&r, &ps, &share);
  /* LINK_RATE_BPS * 250 us * 1.25 = 1.5 KiB, more if re-checks come late */
  assert_true(ps.inflight_cap_bytes >= 1024u);
  assert_true(ps.inflight_cap_bytes <= 256u * 1024u);
  /* The cap moved with the rate, so the most the kernel held is compared
   * with no single cap here (the test above bounds it exactly); without a
   * cap it held 237-247 KB. */
  assert_true(ps.inflight_max_bytes <= 32u * 1024u);
  assert_true(share >= 0.25);
  /* Without a connection the figures are 0 (they are the connection's). */
  th_app_stop(&nodes[1]);
  for (uint64_t end = th_mono_ns() + 10000000000ull; th_mono_ns() < end; usleep(10000)) {
    assert_ok(bftnet_peer_stats(nodes[0].net, "r1", &ps));
    if (ps.conn_age_ns == 0 && ps.inflight_cap_bytes == 0) break;
  }
  assert_int_equal(ps.conn_age_ns, 0);
  assert_int_equal(ps.inflight_bytes + ps.inflight_max_bytes + ps.inflight_cap_bytes, 0);
  th_app_stop(&nodes[0]);
}

/* The namespace and the link; 77 (skip) where they cannot be made. */
static int make_link(void) {
  const char *why = NULL;
  if (geteuid() != 0)
    why = "needs root (a network namespace and tc)";
  else if (unshare(CLONE_NEWNET) != 0)
    why = "unshare(CLONE_NEWNET) failed";
  else if (system("ip link set lo mtu 1500 up") != 0)
    why = "ip link set lo mtu 1500 up failed (iproute2)";
  else if (system("tc qdisc add dev lo root tbf rate 40mbit burst 32kb latency 100ms") != 0)
    why = "tc qdisc tbf failed (iproute2, sch_tbf)";
  if (!why) return 0;
  fprintf(stderr, "class_inflight_test: skipped: %s\n", why);
  return 77;
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  int rc = make_link();
  if (rc) return rc;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_kernel_bytes_stay_under_the_cap),
      cmocka_unit_test(test_cap_follows_the_rate),
  };
  th_test_filter();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
