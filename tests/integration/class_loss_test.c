/*
 * class_loss_test.c — the received messages that disappear before the
 * application takes them, accounted per traffic class, through the public
 * API with real nodes on 127.0.0.1. Invariant 2 of docs/ARCHITECTURE.md per
 * sending member and class: every message sent is delivered (in order,
 * invariant 1) or counted, and here the count is the receiver's:
 *  - a non-member's messages its TentativeReceiver evicted before promotion
 *    (bftnet_class_stats.tentative_evicted of the member it became, and
 *    bftnet_class_totals.tentative_evicted, which also counts non-members
 *    never promoted and TentativeReceivers destroyed to make room);
 *  - a member's messages still queued unread when it was removed
 *    (bftnet_class_totals.discarded_removed).
 * Per class each count is exactly sent minus delivered; over the classes
 * the totals sum to the node counters (TENTATIVE_EVICTED,
 * INBOUND_DISCARDED_REMOVED), and the metrics text says the same.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "th_app.h"
#include "th_msg.h"

#define MAXN 4
#define NCLS 2

typedef th_app_t node_t;

static node_t nodes[MAXN];
static bftnet_class_t classes[NCLS];

/* Two classes, votes (0) and blocks (1); redials slow when slow (an
 * evicted non-member that redials at once would start the churn that
 * messaging_test's tentative tests leave aside too). */
static void cfg_base(bftnet_config_t *cfg, bool slow) {
  bftnet_config_init(cfg);
  cfg->ping_interval_ms = 1000;
  cfg->ping_timeout_ms = 5000;
  cfg->dial_backoff_min_ms = slow ? 10000 : 20;
  cfg->dial_backoff_max_ms = slow ? 20000 : 200;
  cfg->log_level = 1;
  bftnet_class_init(&classes[0], "votes");
  bftnet_class_init(&classes[1], "blocks");
  classes[1].priority = 1;
  cfg->classes = classes;
  cfg->nclasses = NCLS;
}

static void node_start(int i, const bftnet_config_t *cfg) {
  th_app_start(&nodes[i], i, cfg, false);
}

static void node_stop(int i) {
  th_app_stop(&nodes[i]);
}

/* Node i's membership: the nodes idx[0..k). */
static void connect_to(int i, const int *idx, int k) {
  th_app_connect(&nodes[i], nodes, idx, k);
}

static bftnet_class_stats_t cstats(int at, const char *to, uint8_t cls) {
  bftnet_class_stats_t st;
  assert_ok(bftnet_class_stats(nodes[at].net, to, cls, &st));
  return st;
}

static bftnet_class_totals_t ctotals(int at, uint8_t cls) {
  bftnet_class_totals_t t;
  assert_ok(bftnet_class_totals(nodes[at].net, cls, &t));
  return t;
}

static void wait_counter(int at, bftnet_counter_id_t id, uint64_t want) {
  for (uint64_t end = th_mono_ns() + 10000000000ull; th_mono_ns() < end; usleep(5000))
    if (bftnet_counter(nodes[at].net, id) >= want) break;
  assert_int_equal(bftnet_counter(nodes[at].net, id), want);
}

/* The value of bftnet_<fam>{labels} in node i's metrics text (-1: absent). */
static long long metric(int i, const char *fam, const char *labels) {
  static char text[1 << 18];
  size_t len;
  assert_ok(bftnet_metrics_text(nodes[i].net, text, sizeof text, &len));
  char key[200];
  snprintf(key, sizeof key, "\nbftnet_%s{%s} ", fam, labels);
  const char *p = strstr(text, key);
  return p ? strtoll(p + strlen(key), NULL, 10) : -1;
}

static long long class_metric(int i, const char *fam, const char *peer, uint8_t k) {
  char labels[96];
  if (peer)
    snprintf(labels, sizeof labels, "peer=\"%s\",class=\"%s\"", peer, classes[k].name);
  else
    snprintf(labels, sizeof labels, "class=\"%s\"", classes[k].name);
  return metric(i, fam, labels);
}

/* from sends messages first..last of class k to node `to` (the numbers
 * are per class), then waits until all are confirmed read. */
static void send_range(int from, const char *to, uint8_t k, uint64_t first, uint64_t last) {
  uint8_t buf[32] = {0};
  bftnet_send_opts_t o = {.cls = k};
  for (uint64_t s = first; s <= last; s++) {
    th_put_be64(buf, s);
    assert_ok(bftnet_send_ex(nodes[from].net, to, &o, buf, sizeof buf));
  }
  assert_ok(bftnet_flush(nodes[from].net, 10000));
}

/* The same for every class k: n[k] messages, numbered 1..n[k]. */
static void send_all(int from, const char *to, const uint64_t n[NCLS]) {
  for (uint8_t k = 0; k < NCLS; k++)
    if (n[k]) send_range(from, to, k, 1, n[k]);
}

/* Takes what node `at` has from `from` (in every class, or in classes up
 * to max per class), checking the order per class: got[k] counts it. */
static void take(int at, const char *from, uint64_t got[NCLS], uint64_t last[NCLS], uint64_t max,
                 int timeout_ms) {
  for (uint8_t k = 0; k < NCLS; k++) {
    bftnet_msg_t m;
    while (got[k] < max && bftnet_recv_classes(nodes[at].net, 1u << k, &m, 1, timeout_ms) == 1) {
      assert_string_equal(m.from, from);
      assert_int_equal(m.cls, k);
      uint64_t q = th_get_be64(m.data);
      if (q <= last[k]) /* invariant 1 */
        fail_msg("class %u from %s: %llu after %llu", k, from, (unsigned long long)q,
                 (unsigned long long)last[k]);
      last[k] = q;
      got[k]++;
      bftnet_msg_release(&m);
    }
  }
}

/* --------------------------------------------- evicted before promotion */

#define T_KEEP 16 /* tentative_max_msgs: each TentativeReceiver keeps the newest 16 */
#define T_N2   40 /* r2 (never a member) sends this many blocks */

/* r0 knows nobody and keeps at most two TentativeReceivers. r2, never a
 * member, sends blocks beyond the limit; r1 sends 40 blocks, then 60
 * votes, then 8 more blocks, each batch confirmed before the next: its
 * buffer (one for both classes) keeps the newest 16 as they arrived, the
 * last 8 votes and the last 8 blocks, so both classes lose their oldest;
 * r3 arrives third and destroys r2's TentativeReceiver (the oldest) with
 * what it kept. Then r1 is promoted: per class, what it delivers plus what
 * its TentativeReceiver evicted is what it sent, and the node's totals are
 * that plus all of r2's. */
static void test_tentative_evicted_per_class(void **state) {
  (void)state;
  bftnet_config_t cfg, slow;
  cfg_base(&cfg, false);
  cfg.tentative_max = 2;
  cfg.tentative_max_msgs = T_KEEP;
  cfg_base(&slow, true);
  node_start(0, &cfg);
  for (int i = 1; i <= 3; i++)
    node_start(i, &slow);
  int only0[] = {0};
  connect_to(0, only0, 1);
  /* Creation order r2, r1, r3: each arrives once the previous one has. */
  const int order[] = {2, 1, 3};
  const uint64_t n1[NCLS] = {60, 48}, n2[NCLS] = {0, T_N2}, n3[NCLS] = {1, 0};
  for (int j = 0; j < 3; j++) {
    int i = order[j], pair[] = {0, i};
    connect_to(i, pair, 2);
    if (i == 1) {
      send_range(1, "r0", 1, 1, 40);
      send_range(1, "r0", 0, 1, 60);
      send_range(1, "r0", 1, 41, 48);
    } else {
      send_all(i, "r0", i == 2 ? n2 : n3);
    }
    wait_counter(0, BFTNET_COUNTER_TENTATIVE_CREATED, (uint64_t)j + 1);
  }
  /* r2's buffer went with its TentativeReceiver: all it sent is evicted. */
  assert_int_equal(bftnet_counter(nodes[0].net, BFTNET_COUNTER_TENTATIVE_DESTROYED), 1);
  bftnet_msg_t m;
  assert_err(bftnet_recv(nodes[0].net, &m, 0), BFTNET_EAGAIN); /* invariant 4 */
  int r0r1[] = {0, 1};
  connect_to(0, r0r1, 2); /* promotion */
  uint64_t got[NCLS] = {0}, last[NCLS] = {0};
  take(0, "r1", got, last, UINT64_MAX, 1000);
  bftnet_peer_stats_t ps;
  assert_ok(bftnet_peer_stats(nodes[0].net, "r1", &ps));
  uint64_t sum_member = 0, sum_totals = 0;
  for (uint8_t k = 0; k < NCLS; k++) {
    bftnet_class_stats_t cs = cstats(0, "r1", k);
    bftnet_class_totals_t t = ctotals(0, k);
    print_message("class %s: r1 sent %llu, delivered %llu, evicted %llu; node total evicted %llu\n",
                  classes[k].name, (unsigned long long)n1[k], (unsigned long long)got[k],
                  (unsigned long long)cs.tentative_evicted,
                  (unsigned long long)t.tentative_evicted);
    assert_int_equal(got[k], T_KEEP / 2); /* the last 8 of each */
    assert_int_equal(cs.tentative_evicted, n1[k] - got[k]);
    assert_int_equal(cs.delivered, got[k]);
    assert_int_equal(last[k], n1[k]); /* the newest are the ones kept */
    assert_int_equal(t.tentative_evicted, n1[k] - got[k] + n2[k]);
    assert_int_equal(t.discarded_removed, 0);
    assert_int_equal(class_metric(0, "class_peer_tentative_evicted_messages_total", "r1", k),
                     (long long)cs.tentative_evicted);
    assert_int_equal(class_metric(0, "class_tentative_evicted_messages_total", NULL, k),
                     (long long)t.tentative_evicted);
    sum_member += cs.tentative_evicted;
    sum_totals += t.tentative_evicted;
  }
  assert_int_equal(got[0] + got[1], T_KEEP); /* what the buffer kept, the rest counted */
  assert_int_equal(sum_member, ps.tentative_evicted);
  assert_int_equal(sum_totals, bftnet_counter(nodes[0].net, BFTNET_COUNTER_TENTATIVE_EVICTED));
  /* The arguments. */
  bftnet_class_totals_t t;
  assert_err(bftnet_class_totals(nodes[0].net, NCLS, &t), BFTNET_ENOCLASS);
  assert_err(bftnet_class_totals(nodes[0].net, 0, NULL), BFTNET_EINVAL);
  assert_err(bftnet_class_totals(NULL, 0, &t), BFTNET_EINVAL);
  for (int i = 0; i <= 3; i++)
    node_stop(i);
}

/* ------------------------------------------- discarded with a removal */

/* r1 sends votes and blocks to r0, which takes only a few of each and
 * then removes r1: the rest, received and confirmed, is discarded unread
 * and counted in its class. The removed member's statistics are gone; the
 * totals stay. */
static void test_discarded_removed_per_class(void **state) {
  (void)state;
  bftnet_config_t cfg;
  cfg_base(&cfg, false);
  node_start(0, &cfg);
  node_start(1, &cfg);
  int both[] = {0, 1}, only0[] = {0};
  connect_to(0, both, 2);
  connect_to(1, both, 2);
  const uint64_t n[NCLS] = {70, 30};
  send_all(1, "r0", n); /* all of it in r0's inbound queues */
  uint64_t got[NCLS] = {0}, last[NCLS] = {0};
  take(0, "r1", got, last, 12, 1000);
  for (uint8_t k = 0; k < NCLS; k++)
    assert_int_equal(cstats(0, "r1", k).inbound_depth, n[k] - got[k]);
  connect_to(0, only0, 1); /* removal */
  wait_counter(0, BFTNET_COUNTER_INBOUND_DISCARDED_REMOVED, n[0] + n[1] - got[0] - got[1]);
  bftnet_class_stats_t cs;
  assert_err(bftnet_class_stats(nodes[0].net, "r1", 0, &cs), BFTNET_ENOTFOUND);
  uint64_t sum = 0;
  for (uint8_t k = 0; k < NCLS; k++) {
    bftnet_class_totals_t t = ctotals(0, k);
    print_message("class %s: r1 sent %llu, r0 took %llu, discarded on removal %llu\n",
                  classes[k].name, (unsigned long long)n[k], (unsigned long long)got[k],
                  (unsigned long long)t.discarded_removed);
    assert_int_equal(got[k], 12);
    assert_int_equal(t.discarded_removed, n[k] - got[k]);
    assert_int_equal(t.tentative_evicted, 0);
    assert_int_equal(class_metric(0, "class_inbound_discarded_removed_messages_total", NULL, k),
                     (long long)t.discarded_removed);
    sum += t.discarded_removed;
  }
  assert_int_equal(sum, bftnet_counter(nodes[0].net, BFTNET_COUNTER_INBOUND_DISCARDED_REMOVED));
  bftnet_msg_t m;
  assert_err(bftnet_recv(nodes[0].net, &m, 0), BFTNET_EAGAIN); /* gone, not delivered */
  node_stop(0);
  node_stop(1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tentative_evicted_per_class),
      cmocka_unit_test(test_discarded_removed_per_class),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
