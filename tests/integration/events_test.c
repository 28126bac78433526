/*
 * Events, health and metrics through the public API: real nodes on
 * 127.0.0.1, each on its own loop thread.
 *
 * Events say what happened:
 *  - a peer's orderly stop (bftnet_stop: GO_AWAY first) reaches the other
 *    side as BFTNET_REASON_GOING_AWAY in DISCONNECTED, MEMBER_DOWN and
 *    ABORTED ("going_away"), never as a reset, and no MEMBER_UP follows
 *    while the peer shuts down;
 *  - CONNECTED comes before the MEMBER_UP it leads to;
 *  - a member that cannot be reached gets MEMBER_UNREACHABLE (the dial
 *    error, the address, its node and peer IDs), once per outage;
 *  - a member whose address answers with another key gets
 *    MEMBER_WRONG_PEER (node ID, expected and actual peer IDs);
 *  - bftnet_event_name names every type.
 * Health: round trips from the keepalive pings, time since last heard (it
 * grows while the member is away), the current connection's address and
 * age. Metrics: bftnet_metrics_text's contract (the size it asks for, the
 * families, labels only from the membership: ARCHITECTURE.md's invariant
 * that nothing from a non-member reaches the application extends to the
 * label set, which a non-member must not be able to grow).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define MAXN  4
#define MAXEV 512

typedef struct rec {
  bftnet_event_type_t type;
  char node_id[BFTNET_NODE_ID_MAX];
  char peer_id[BFTNET_PEER_ID_MAX];
  char expected[BFTNET_PEER_ID_MAX];
  char addr[BFTNET_ADDR_MAX];
  char abort_why[32];
  bftnet_reason_t reason;
  int error;
  uint32_t dial_failures;
  uint64_t conn_id;
  int seq; /* its place among the node's events */
} rec_t;

typedef struct node {
  bftnet_key_t *key;
  bftnet_t *net;
  char id[8];
  char peer[BFTNET_PEER_ID_MAX];
  char addr[BFTNET_ADDR_MAX];
  const char *addrs[1];
  pthread_mutex_t mu;
  rec_t ev[MAXEV];
  int nev;
  int null_strings; /* events with a NULL string (must stay 0) */
} node_t;

static node_t nodes[MAXN];

static void on_event(const bftnet_event_t *ev, void *user) {
  node_t *n = user;
  pthread_mutex_lock(&n->mu);
  /* Every string of every event is set (never NULL); checked by the test
   * thread (node_free), not here on the loop thread. */
  if (!ev->node_id || !ev->peer_id || !ev->remote_addr || !ev->prev_addr || !ev->mig_abort ||
      !ev->expected_peer_id) {
    n->null_strings++;
  } else if (n->nev < MAXEV) {
    rec_t *r = &n->ev[n->nev++];
    memset(r, 0, sizeof *r);
    r->type = ev->type;
    snprintf(r->node_id, sizeof r->node_id, "%s", ev->node_id);
    snprintf(r->peer_id, sizeof r->peer_id, "%s", ev->peer_id);
    snprintf(r->expected, sizeof r->expected, "%s", ev->expected_peer_id);
    snprintf(r->addr, sizeof r->addr, "%s", ev->remote_addr);
    snprintf(r->abort_why, sizeof r->abort_why, "%s", ev->mig_abort);
    r->reason = ev->reason;
    r->error = ev->error;
    r->dial_failures = ev->dial_failures;
    r->conn_id = ev->conn_id;
    r->seq = n->nev - 1;
  }
  pthread_mutex_unlock(&n->mu);
}

static void cfg_for(bftnet_config_t *cfg, node_t *n) {
  bftnet_config_init(cfg);
  cfg->key = n->key;
  cfg->on_event = on_event;
  cfg->user = n;
  cfg->ping_interval_ms = 100;
  cfg->ping_timeout_ms = 2000;
  cfg->dial_backoff_min_ms = 20;
  cfg->dial_backoff_max_ms = 100;
  cfg->log_level = 1;
}

/* Starts node i; keep: the same key and address again (a restart). */
static void node_start_as(int i, bool keep) {
  node_t *n = &nodes[i];
  if (!keep) {
    pthread_mutex_destroy(&n->mu);
    memset(n, 0, sizeof *n);
    assert_ok(bftnet_key_generate(&n->key));
    assert_ok(bftnet_key_peer_id(n->key, n->peer, sizeof n->peer));
  }
  pthread_mutex_init(&n->mu, NULL);
  n->nev = 0;
  bftnet_config_t cfg;
  cfg_for(&cfg, n);
  assert_ok(bftnet_new(&n->net, &cfg));
  snprintf(n->id, sizeof n->id, "r%d", i);
  char listen[BFTNET_ADDR_MAX] = "/ip4/127.0.0.1/tcp/0";
  if (keep)
    snprintf(listen, sizeof listen, "%.*s", (int)(strstr(n->addr, "/p2p/") - n->addr), n->addr);
  assert_ok(bftnet_listen(n->net, listen, n->addr, sizeof n->addr));
  n->addrs[0] = n->addr;
}

static void node_start(int i) {
  node_start_as(i, false);
}

/* The process goes away (its key and address are kept for a restart). */
static void node_down(int i) {
  bftnet_free(nodes[i].net);
  nodes[i].net = NULL;
}

static void node_free(int i) {
  if (nodes[i].net) node_down(i);
  assert_int_equal(nodes[i].null_strings, 0);
  bftnet_key_free(nodes[i].key);
  nodes[i].key = NULL;
}

/* Node i's membership: nodes idx[0..k), member j at addrs[j] if given. */
static void connect_to(int i, const int *idx, int k, const char *const *addrs) {
  bftnet_member_t m[MAXN];
  const char *one[MAXN][1];
  for (int j = 0; j < k; j++) {
    one[j][0] = addrs && addrs[j] ? addrs[j] : nodes[idx[j]].addr;
    m[j] = (bftnet_member_t){.node_id = nodes[idx[j]].id, .addrs = one[j], .naddrs = 1};
  }
  char err[256] = "";
  int rc = bftnet_connect(nodes[i].net, m, (size_t)k, err, sizeof err);
  if (rc) fail_msg("connect: %s: %s", bftnet_err_name(rc), err);
}

static void connect_pair(void) {
  int idx[2] = {0, 1};
  connect_to(0, idx, 2, NULL);
  connect_to(1, idx, 2, NULL);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The number of node i's events of this type about node_id (NULL: any). */
static int count(int i, bftnet_event_type_t type, const char *node_id) {
  node_t *n = &nodes[i];
  int k = 0;
  pthread_mutex_lock(&n->mu);
  for (int e = 0; e < n->nev; e++)
    if (n->ev[e].type == type && (!node_id || strcmp(n->ev[e].node_id, node_id) == 0)) k++;
  pthread_mutex_unlock(&n->mu);
  return k;
}

/* Waits up to ms for node i to have at least want such events. */
static bool wait_count(int i, bftnet_event_type_t type, const char *node_id, int want, int ms) {
  for (double end = now_s() + ms / 1e3; now_s() < end; usleep(5000))
    if (count(i, type, node_id) >= want) return true;
  return count(i, type, node_id) >= want;
}

/* A copy of node i's k-th event of this type about node_id. */
static rec_t nth(int i, bftnet_event_type_t type, const char *node_id, int k) {
  node_t *n = &nodes[i];
  rec_t r = {0};
  pthread_mutex_lock(&n->mu);
  for (int e = 0; e < n->nev; e++)
    if (n->ev[e].type == type && strcmp(n->ev[e].node_id, node_id) == 0 && k-- == 0) {
      r = n->ev[e];
      break;
    }
  pthread_mutex_unlock(&n->mu);
  if (!r.type) fail_msg("no %s event about %s", bftnet_event_name(type), node_id);
  return r;
}

static void dump(int i) {
  node_t *n = &nodes[i];
  pthread_mutex_lock(&n->mu);
  for (int e = 0; e < n->nev; e++)
    print_message("  %s: %-18s %-3s conn=%llu reason=%s error=%s abort=%s\n", n->id,
                  bftnet_event_name(n->ev[e].type), n->ev[e].node_id,
                  (unsigned long long)n->ev[e].conn_id, bftnet_reason_str(n->ev[e].reason),
                  bftnet_err_name(n->ev[e].error), n->ev[e].abort_why);
  pthread_mutex_unlock(&n->mu);
}

/* Takes n messages at node i (fails after 5 s without one). */
static void recv_n(int i, int n) {
  for (int got = 0; got < n; got++) {
    bftnet_msg_t m;
    assert_ok(bftnet_recv(nodes[i].net, &m, 5000));
    bftnet_msg_release(&m);
  }
}

static void wait_connected(int at, const char *to) {
  for (int i = 0; i < 500; i++) {
    bftnet_peer_stats_t st;
    if (bftnet_peer_stats(nodes[at].net, to, &st) == 0 && st.connected) return;
    usleep(10000);
  }
  fail_msg("%s never connected to %s", nodes[at].id, to);
}

/* ----------------------------------------------------------------- tests */

/* r1 stops in order: r0 hears "going away", not a reset, and no MEMBER_UP
 * while r1 shuts down. Then r1 cannot be reached: MEMBER_UNREACHABLE. */
static void test_orderly_stop_is_going_away(void **state) {
  (void)state;
  node_start(0);
  node_start(1);
  connect_pair();
  wait_connected(0, "r1");
  wait_connected(1, "r0");
  uint8_t msg[64] = {1};
  for (int k = 0; k < 100; k++)
    assert_ok(bftnet_send(nodes[1].net, "r0", msg, sizeof msg));
  recv_n(0, 100);
  assert_ok(bftnet_flush(nodes[1].net, 5000));
  int ups = count(0, BFTNET_EV_MEMBER_UP, "r1");
  assert_ok(bftnet_stop(nodes[1].net));
  /* Both streams of the pair end, the member is down, the connection is gone. */
  assert_true(wait_count(0, BFTNET_EV_DISCONNECTED, "r1", 1, 5000));
  assert_true(wait_count(0, BFTNET_EV_MEMBER_DOWN, "r1", 1, 5000));
  assert_true(wait_count(0, BFTNET_EV_ABORTED, "r1", 2, 5000));
  /* The redial after it finds r1 gone. */
  if (!wait_count(0, BFTNET_EV_MEMBER_UNREACHABLE, "r1", 1, 5000)) dump(0);
  assert_int_equal(count(0, BFTNET_EV_MEMBER_UNREACHABLE, "r1"), 1);
  dump(0);
  /* The connection that carried the streams ended in order. Once r0 heard
   * r1 go away (the first ABORTED), so did every other connection to r1;
   * before that, one that got its own GO_AWAY ends in order too, and one
   * r1 had not finished setting up (it gets none) as closed by the peer. */
  rec_t first_abort = nth(0, BFTNET_EV_ABORTED, "r1", 0);
  assert_true(first_abort.conn_id > 0);
  bool carrier_seen = false;
  for (int k = 0; k < count(0, BFTNET_EV_DISCONNECTED, "r1"); k++) {
    rec_t d = nth(0, BFTNET_EV_DISCONNECTED, "r1", k);
    if (d.conn_id == first_abort.conn_id || d.seq > first_abort.seq) {
      assert_int_equal(d.reason, BFTNET_REASON_GOING_AWAY);
    } else if (d.reason != BFTNET_REASON_GOING_AWAY) {
      assert_int_equal(d.reason, BFTNET_REASON_CLOSED_BY_PEER);
    }
    carrier_seen |= d.conn_id == first_abort.conn_id;
    /* conn_id pairs it with its CONNECTED, and no two CONNECTED share one. */
    int same = 0;
    for (int j = 0; j < count(0, BFTNET_EV_CONNECTED, "r1"); j++)
      same += nth(0, BFTNET_EV_CONNECTED, "r1", j).conn_id == d.conn_id;
    assert_int_equal(same, 1);
  }
  assert_true(carrier_seen);
  for (int k = 0; k < count(0, BFTNET_EV_MEMBER_DOWN, "r1"); k++)
    assert_int_equal(nth(0, BFTNET_EV_MEMBER_DOWN, "r1", k).reason, BFTNET_REASON_GOING_AWAY);
  for (int k = 0; k < 2; k++) {
    rec_t a = nth(0, BFTNET_EV_ABORTED, "r1", k);
    assert_string_equal(a.abort_why, "going_away");
    assert_int_equal(a.reason, BFTNET_REASON_GOING_AWAY);
  }
  /* No MEMBER_UP while r1 went away: r0 did not open a new stream on the
   * connection r1 was closing. */
  assert_int_equal(count(0, BFTNET_EV_MEMBER_UP, "r1"), ups);
  rec_t u = nth(0, BFTNET_EV_MEMBER_UNREACHABLE, "r1", 0);
  assert_int_equal(u.error, -ECONNREFUSED);
  assert_string_equal(u.expected, nodes[1].peer);
  assert_string_equal(u.peer_id, nodes[1].peer);
  assert_string_equal(u.addr, nodes[1].addr);
  assert_true(u.dial_failures >= 1);
  /* Nothing lost: everything was flushed before the stop. */
  bftnet_peer_stats_t st;
  assert_ok(bftnet_peer_stats(nodes[0].net, "r1", &st));
  assert_int_equal(st.delivered, 100);
  assert_int_equal(bftnet_counter(nodes[0].net, BFTNET_COUNTER_IO_ERRORS), 0);
  /* r1 comes back (its key and address): a connection begun after it went
   * away brings the member back, none of the old ones, and both ways
   * deliver again. */
  uint64_t old_conn = 0;
  pthread_mutex_lock(&nodes[0].mu);
  for (int e = 0; e < nodes[0].nev; e++)
    if (nodes[0].ev[e].conn_id > old_conn) old_conn = nodes[0].ev[e].conn_id;
  pthread_mutex_unlock(&nodes[0].mu);
  int ups_before = count(0, BFTNET_EV_MEMBER_UP, "r1");
  node_down(1);
  node_start_as(1, true);
  int idx[2] = {0, 1};
  connect_to(1, idx, 2, NULL);
  if (!wait_count(0, BFTNET_EV_MEMBER_UP, "r1", ups_before + 1, 5000)) dump(0);
  assert_true(count(0, BFTNET_EV_MEMBER_UP, "r1") > ups_before);
  assert_true(nth(0, BFTNET_EV_MEMBER_UP, "r1", ups_before).conn_id > old_conn);
  for (int k = 0; k < 50; k++) {
    assert_ok(bftnet_send(nodes[0].net, "r1", msg, sizeof msg));
    assert_ok(bftnet_send(nodes[1].net, "r0", msg, sizeof msg));
  }
  recv_n(1, 50);
  recv_n(0, 50);
  node_free(0);
  node_free(1);
}

/* For every member: its first MEMBER_UP comes after a CONNECTED to its
 * peer ID (which names it by node ID if it was a member by then). */
static void check_connected_first(int i, int j) {
  node_t *n = &nodes[i];
  const char *member = nodes[j].id;
  pthread_mutex_lock(&n->mu);
  bool connected = false, up = false;
  for (int e = 0; e < n->nev && !up; e++) {
    if (n->ev[e].type == BFTNET_EV_CONNECTED && strcmp(n->ev[e].peer_id, nodes[j].peer) == 0)
      connected = true;
    if (n->ev[e].type == BFTNET_EV_MEMBER_UP && strcmp(n->ev[e].node_id, member) == 0) up = true;
    if (up && !connected) {
      pthread_mutex_unlock(&n->mu);
      dump(i);
      fail_msg("%s: MEMBER_UP %s before any CONNECTED of it", n->id, member);
    }
  }
  pthread_mutex_unlock(&n->mu);
  assert_true(up);
}

static void test_connected_before_member_up(void **state) {
  (void)state;
  for (int i = 0; i < 3; i++)
    node_start(i);
  int idx[3] = {0, 1, 2};
  for (int i = 0; i < 3; i++)
    connect_to(i, idx, 3, NULL);
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++)
      if (i != j) assert_true(wait_count(i, BFTNET_EV_MEMBER_UP, nodes[j].id, 1, 5000));
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++)
      if (i != j) check_connected_first(i, j);
  /* And again after a restart of r2 (a resumed or new stream). */
  node_down(2);
  assert_true(wait_count(0, BFTNET_EV_MEMBER_DOWN, "r2", 1, 5000));
  pthread_mutex_lock(&nodes[0].mu);
  nodes[0].nev = 0; /* from here on */
  pthread_mutex_unlock(&nodes[0].mu);
  node_start_as(2, true);
  connect_to(2, idx, 3, NULL);
  assert_true(wait_count(0, BFTNET_EV_MEMBER_UP, "r2", 1, 5000));
  check_connected_first(0, 2);
  for (int i = 0; i < 3; i++)
    node_free(i);
}

/* A member that is down: one MEMBER_UNREACHABLE per outage (however many
 * dials fail), with what failed; a new outage after it came back is news
 * again. */
static void test_unreachable_member(void **state) {
  (void)state;
  node_start(0);
  node_start(1);
  node_down(1); /* r1's address now refuses */
  int idx[2] = {0, 1};
  connect_to(0, idx, 2, NULL);
  assert_true(wait_count(0, BFTNET_EV_MEMBER_UNREACHABLE, "r1", 1, 3000));
  usleep(1000 * 1000); /* ~10 more dials (backoff 20..100 ms) */
  assert_int_equal(count(0, BFTNET_EV_MEMBER_UNREACHABLE, "r1"), 1);
  assert_int_equal(count(0, BFTNET_EV_MEMBER_WRONG_PEER, NULL), 0);
  rec_t u = nth(0, BFTNET_EV_MEMBER_UNREACHABLE, "r1", 0);
  assert_int_equal(u.error, -ECONNREFUSED);
  assert_string_equal(u.node_id, "r1");
  assert_string_equal(u.expected, nodes[1].peer);
  assert_string_equal(u.addr, nodes[1].addr);
  assert_int_equal(u.dial_failures, 1);
  bftnet_peer_stats_t st;
  assert_ok(bftnet_peer_stats(nodes[0].net, "r1", &st));
  assert_int_equal(st.connected, 0);
  assert_int_equal(st.since_heard_ns, UINT64_MAX); /* never heard */
  assert_int_equal(st.conn_outbound, -1);
  /* r1 comes back: reached; then it goes away again: a new outage. */
  node_start_as(1, true);
  connect_to(1, idx, 2, NULL);
  wait_connected(0, "r1");
  node_down(1);
  assert_true(wait_count(0, BFTNET_EV_MEMBER_UNREACHABLE, "r1", 2, 5000));
  node_free(0);
  node_free(1);
}

/* r0's membership puts r1 at r2's address: r2 answers with its own key. */
static void test_wrong_peer(void **state) {
  (void)state;
  for (int i = 0; i < 3; i++)
    node_start(i);
  int idx[2] = {0, 1};
  char wrong[2 * BFTNET_ADDR_MAX];
  snprintf(wrong, sizeof wrong, "%.*s/p2p/%s",
           (int)(strstr(nodes[2].addr, "/p2p/") - nodes[2].addr), nodes[2].addr, nodes[1].peer);
  const char *addrs[2] = {NULL, wrong};
  connect_to(0, idx, 2, addrs);
  assert_true(wait_count(0, BFTNET_EV_MEMBER_WRONG_PEER, "r1", 1, 3000));
  usleep(500 * 1000);
  assert_int_equal(count(0, BFTNET_EV_MEMBER_WRONG_PEER, "r1"), 1); /* once per outage */
  assert_int_equal(count(0, BFTNET_EV_MEMBER_UNREACHABLE, "r1"), 0);
  rec_t w = nth(0, BFTNET_EV_MEMBER_WRONG_PEER, "r1", 0);
  assert_string_equal(w.node_id, "r1");
  assert_string_equal(w.expected, nodes[1].peer);
  assert_string_equal(w.peer_id, nodes[2].peer);
  assert_string_equal(w.addr, wrong);
  assert_int_equal(w.error, BFTNET_EPEERMISMATCH);
  assert_true(bftnet_counter(nodes[0].net, BFTNET_COUNTER_PEER_ID_MISMATCH) >= 2);
  for (int i = 0; i < 3; i++)
    node_free(i);
}

static void test_event_names(void **state) {
  (void)state;
  const char *seen[32] = {0};
  int n = 0;
  for (int t = BFTNET_EV_CONNECTED; t <= BFTNET_EV_MEMBER_WRONG_PEER; t++) {
    const char *name = bftnet_event_name((bftnet_event_type_t)t);
    assert_non_null(name);
    assert_string_not_equal(name, "unknown");
    for (int k = 0; k < n; k++)
      assert_string_not_equal(seen[k], name);
    seen[n++] = name;
  }
  assert_string_equal(bftnet_event_name(BFTNET_EV_MEMBER_UP), "member_up");
  assert_string_equal(bftnet_event_name(BFTNET_EV_MEMBER_UNREACHABLE), "member_unreachable");
  assert_string_equal(bftnet_event_name((bftnet_event_type_t)0), "unknown");
  assert_string_equal(bftnet_event_name((bftnet_event_type_t)999), "unknown");
  assert_string_not_equal(bftnet_reason_str(BFTNET_REASON_GOING_AWAY), "unknown reason");
}

/* Round trips, last heard, the connection: what a consensus layer reads. */
static void test_health(void **state) {
  (void)state;
  node_start(0);
  node_start(1);
  connect_pair();
  wait_connected(0, "r1");
  usleep(1200 * 1000); /* ~10 keepalive pings at 100 ms */
  bftnet_peer_stats_t st;
  assert_ok(bftnet_peer_stats(nodes[0].net, "r1", &st));
  print_message(
      "rtt last %llu us, smoothed %llu us, max %llu us; heard %llu ms ago; "
      "connection %s (%s), %llu ms old\n",
      (unsigned long long)st.rtt_last_ns / 1000, (unsigned long long)st.rtt_smoothed_ns / 1000,
      (unsigned long long)st.rtt_max_ns / 1000, (unsigned long long)st.since_heard_ns / 1000000,
      st.conn_addr, st.conn_outbound ? "outbound" : "inbound",
      (unsigned long long)st.conn_age_ns / 1000000);
  assert_true(st.rtt_last_ns > 0 && st.rtt_last_ns < 1000000000ull);
  /* (The smoothed value may exceed the window's maximum: an older spike
   * still weighs in it.) */
  assert_true(st.rtt_smoothed_ns > 0 && st.rtt_smoothed_ns < 1000000000ull);
  assert_true(st.rtt_last_ns <= st.rtt_max_ns);
  assert_true(st.since_heard_ns < 1500000000ull); /* a pong every 100 ms; a loaded host */
  assert_true(st.conn_age_ns >= 1000000000ull && st.conn_age_ns < 10000000000ull);
  assert_true(st.conn_outbound == 0 || st.conn_outbound == 1);
  assert_non_null(strstr(st.conn_addr, "/ip4/127.0.0.1/tcp/"));
  assert_non_null(strstr(st.conn_addr, nodes[1].peer));
  /* r1's process goes away: nothing is heard any more, no connection. */
  node_down(1);
  usleep(800 * 1000);
  assert_ok(bftnet_peer_stats(nodes[0].net, "r1", &st));
  assert_true(st.since_heard_ns >= 600000000ull && st.since_heard_ns < 5000000000ull);
  assert_int_equal(st.conn_age_ns, 0);
  assert_int_equal(st.conn_outbound, -1);
  assert_string_equal(st.conn_addr, "");
  assert_true(st.rtt_smoothed_ns > 0); /* the last known round trips stay */
  node_free(0);
  node_free(1);
}

/* Does text hold a sample line of `name` whose labels are `labels`? */
static bool has_sample(const char *text, const char *name, const char *labels) {
  char want[256];
  snprintf(want, sizeof want, "\n%s%s ", name, labels);
  return strstr(text, want) != NULL;
}

static void test_metrics_text(void **state) {
  (void)state;
  for (int i = 0; i < 3; i++)
    node_start(i);
  connect_pair();
  /* r2 is no member of anyone: it dials r0 and sends (a TentativeReceiver). */
  int idx2[2] = {2, 0};
  connect_to(2, idx2, 2, NULL);
  wait_connected(0, "r1");
  uint8_t msg[32] = {0};
  for (int k = 0; k < 50; k++) {
    assert_ok(bftnet_send(nodes[1].net, "r0", msg, sizeof msg));
    assert_ok(bftnet_send(nodes[2].net, "r0", msg, sizeof msg));
  }
  recv_n(0, 50); /* r1's only: r2 is no member */
  assert_ok(bftnet_flush(nodes[1].net, 5000));
  for (int k = 0; k < 200 && bftnet_counter(nodes[0].net, BFTNET_COUNTER_TENTATIVE_CREATED) == 0;
       k++)
    usleep(10000);
  assert_true(bftnet_counter(nodes[0].net, BFTNET_COUNTER_TENTATIVE_CREATED) >= 1);
  /* Too small: the size needed, nothing else. */
  char small[64];
  size_t need = 0;
  assert_err(bftnet_metrics_text(nodes[0].net, small, sizeof small, &need), BFTNET_EBUFSIZE);
  assert_true(need > sizeof small);
  assert_string_equal(small, ""); /* nothing half-written */
  assert_err(bftnet_metrics_text(nodes[0].net, NULL, 0, &need), BFTNET_EBUFSIZE);
  assert_err(bftnet_metrics_text(NULL, small, sizeof small, &need), BFTNET_EINVAL);
  size_t cap = need + 4096, len = 0;
  char *text = malloc(cap);
  assert_non_null(text);
  assert_ok(bftnet_metrics_text(nodes[0].net, text, cap, &len));
  assert_int_equal(strlen(text), len);
  /* Every node counter, with a HELP and a TYPE line. */
  for (int id = 0; id < BFTNET_COUNTER_COUNT; id++) {
    const char *c = bftnet_counter_name((bftnet_counter_id_t)id);
    char name[96];
    snprintf(name, sizeof name, "bftnet_%s",
             strcmp(c, "bytes_in") == 0    ? "in_bytes"
             : strcmp(c, "bytes_out") == 0 ? "out_bytes"
                                           : c);
    if (!strstr(text, name)) fail_msg("counter %s is not in the metrics", c);
  }
  assert_non_null(strstr(text, "# HELP bftnet_conn_established_total "));
  assert_non_null(strstr(text, "# TYPE bftnet_conn_established_total counter\n"));
  assert_non_null(strstr(text, "# TYPE bftnet_tentative_bytes gauge\n"));
  assert_non_null(strstr(text, "# TYPE bftnet_peer_delivered_messages_total counter\n"));
  assert_non_null(strstr(text, "# TYPE bftnet_peer_rtt_smoothed_seconds gauge\n"));
  assert_true(has_sample(text, "bftnet_peer_delivered_messages_total", "{peer=\"r1\"}"));
  assert_true(has_sample(text, "bftnet_peer_connected", "{peer=\"r1\"}"));
  assert_true(has_sample(text, "bftnet_members", ""));
  /* Labels only from the membership: r2 sent, but neither its node ID nor
   * its peer ID appears. */
  for (const char *p = text; (p = strstr(p, "peer=\"")); p += 6)
    if (strncmp(p, "peer=\"r1\"", 9) != 0) fail_msg("a label that is not a member: %.40s", p);
  assert_null(strstr(text, nodes[2].peer));
  assert_null(strstr(text, "\"r2\""));
  /* The delivered count is r0's: 50 from r1. */
  char want[96];
  snprintf(want, sizeof want, "\nbftnet_peer_delivered_messages_total{peer=\"r1\"} 50\n");
  assert_non_null(strstr(text, want));
  free(text);
  for (int i = 0; i < 3; i++)
    node_free(i);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_event_names),
      cmocka_unit_test(test_orderly_stop_is_going_away),
      cmocka_unit_test(test_connected_before_member_up),
      cmocka_unit_test(test_unreachable_member),
      cmocka_unit_test(test_wrong_peer),
      cmocka_unit_test(test_health),
      cmocka_unit_test(test_metrics_text),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
