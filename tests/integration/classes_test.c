/*
 * classes_test.c — traffic classes through the public API, real nodes on
 * 127.0.0.1. Each test asserts the invariants of docs/ARCHITECTURE.md that
 * apply, per sending member and class (1: an ordered subsequence, no
 * duplicate; 2: a message is missing only if counted dropped, superseded
 * or aborted), and the property of classes it is about:
 *  - validation: bad class lists are refused with BFTNET_EBADCLASS and a
 *    reason, sends to an unknown class with BFTNET_ENOCLASS;
 *  - every class delivers in order, tagged with its class, with exact
 *    per-class counts (unicast and broadcast);
 *  - keep-latest: only queued messages are replaced, the rest keep their
 *    order, counts are exact;
 *  - the scheduling bound: a message of the most urgent class waits behind
 *    at most one piece (16 KiB) of the lower classes written after it was
 *    queued, however much they have queued (measured in bytes);
 *  - the minimum share: a flood of urgent messages does not starve a lower
 *    class;
 *  - a class whose inbound queue is full (a slow consumer) stops only its
 *    own credit: votes keep flowing, blocks drop and count only their own;
 *  - a class the peer does not have is refused with na, counted on both
 *    sides, and the other classes go on.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "harness.h"
#include "th_app.h"
#include "th_msg.h"

#define MAXN 3

typedef th_app_t node_t;

static node_t nodes[MAXN];

#define BN_MIN_T(a, b) ((a) < (b) ? (a) : (b))

static void cfg_base(bftnet_config_t *cfg) {
  bftnet_config_init(cfg);
  cfg->ping_interval_ms = 1000;
  cfg->ping_timeout_ms = 5000;
  cfg->dial_backoff_min_ms = 20;
  cfg->dial_backoff_max_ms = 200;
  cfg->log_level = 1;
}

static void node_start(int i, const bftnet_config_t *over) {
  bftnet_config_t cfg;
  if (over)
    cfg = *over;
  else
    cfg_base(&cfg);
  th_app_start(&nodes[i], i, &cfg, false);
}

static void node_stop(int i) {
  th_app_stop(&nodes[i]);
}

/* Node i's membership: nodes[0..n), node j at addr (NULL: its own). */
static void connect_n(int i, int n, int j, const char *addr) {
  bftnet_member_t m[MAXN];
  const char *alt[1] = {addr};
  for (int k = 0; k < n; k++)
    m[k] = (bftnet_member_t){
        .node_id = nodes[k].id, .addrs = k == j && addr ? alt : nodes[k].addrs, .naddrs = 1};
  char err[256] = "";
  int rc = bftnet_connect(nodes[i].net, m, (size_t)n, err, sizeof err);
  if (rc) fail_msg("connect: %s: %s", bftnet_err_name(rc), err);
}

static void connect_all(int n) {
  for (int i = 0; i < n; i++)
    connect_n(i, n, -1, NULL);
}

static bftnet_class_stats_t cstats(int at, const char *to, uint8_t cls) {
  bftnet_class_stats_t st;
  assert_ok(bftnet_class_stats(nodes[at].net, to, cls, &st));
  return st;
}

static void wait_class_connected(int at, const char *to, uint8_t cls) {
  for (int i = 0; i < 1000; i++) {
    bftnet_class_stats_t st;
    if (bftnet_class_stats(nodes[at].net, to, cls, &st) == 0 && st.connected) return;
    usleep(5000);
  }
  fail_msg("%s: class %u to %s never connected", nodes[at].id, cls, to);
}

/* --------------------------------------------------------- validation */

static void test_validation(void **state) {
  (void)state;
  bftnet_key_t *key;
  assert_ok(bftnet_key_generate(&key));
  bftnet_config_t cfg;
  cfg_base(&cfg);
  cfg.key = key;
  bftnet_class_t c[BFTNET_MAX_CLASSES + 1];
  for (int i = 0; i <= BFTNET_MAX_CLASSES; i++)
    bftnet_class_init(&c[i], "x");
  static const char *names[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i"};
  for (int i = 0; i <= BFTNET_MAX_CLASSES; i++)
    c[i].name = names[i];
  cfg.classes = c;
  char err[160];
  /* too many */
  cfg.nclasses = BFTNET_MAX_CLASSES + 1;
  assert_err(bftnet_config_check(&cfg, err, sizeof err), BFTNET_EBADCLASS);
  assert_non_null(strstr(err, "at most"));
  bftnet_t *net = NULL;
  assert_err(bftnet_new(&net, &cfg), BFTNET_EBADCLASS);
  assert_null(net);
  cfg.nclasses = 3;
  assert_ok(bftnet_config_check(&cfg, err, sizeof err));
  /* duplicate names */
  c[2].name = "a";
  assert_err(bftnet_config_check(&cfg, err, sizeof err), BFTNET_EBADCLASS);
  assert_non_null(strstr(err, "both named a"));
  assert_err(bftnet_new(&net, &cfg), BFTNET_EBADCLASS);
  c[2].name = "c";
  /* a malformed or missing name */
  c[1].name = "no/slash";
  assert_err(bftnet_config_check(&cfg, err, sizeof err), BFTNET_EBADCLASS);
  c[1].name = NULL;
  assert_err(bftnet_config_check(&cfg, err, sizeof err), BFTNET_EBADCLASS);
  c[1].name = "b";
  /* capacities not powers of 2 */
  c[1].ring_capacity = 1000;
  assert_err(bftnet_config_check(&cfg, err, sizeof err), BFTNET_EBADCLASS);
  assert_non_null(strstr(err, "ring_capacity 1000"));
  c[1].ring_capacity = 1024;
  c[2].inbound_max_msgs = 3;
  assert_err(bftnet_config_check(&cfg, err, sizeof err), BFTNET_EBADCLASS);
  c[2].inbound_max_msgs = 64;
  /* zero bounds */
  uint64_t *zero[] = {&c[0].ring_max_bytes, &c[0].inbound_max_bytes};
  for (size_t z = 0; z < 2; z++) {
    uint64_t keep = *zero[z];
    *zero[z] = 0;
    assert_err(bftnet_config_check(&cfg, err, sizeof err), BFTNET_EBADCLASS);
    assert_err(bftnet_new(&net, &cfg), BFTNET_EBADCLASS);
    *zero[z] = keep;
  }
  c[0].weight = 0;
  assert_err(bftnet_config_check(&cfg, err, sizeof err), BFTNET_EBADCLASS);
  c[0].weight = 1;
  c[0].policy = (bftnet_policy_t)7;
  assert_err(bftnet_config_check(&cfg, err, sizeof err), BFTNET_EBADCLASS);
  c[0].policy = BFTNET_KEEP_LATEST;
  cfg.class_min_share = 60;
  assert_err(bftnet_config_check(&cfg, err, sizeof err), BFTNET_EINVAL);
  cfg.class_min_share = 10;
  cfg.classes = NULL; /* nclasses without a list */
  assert_err(bftnet_config_check(&cfg, err, sizeof err), BFTNET_EBADCLASS);
  cfg.classes = c;
  /* A good list: the node runs it; unknown classes are refused. */
  assert_ok(bftnet_new(&net, &cfg));
  assert_int_equal(bftnet_class_count(net), 3);
  assert_string_equal(bftnet_class_name(net, 1), "b");
  assert_null(bftnet_class_name(net, 3));
  uint8_t msg[8] = {0};
  bftnet_send_opts_t o = {.cls = 3};
  assert_err(bftnet_send_ex(net, "nobody", &o, msg, sizeof msg), BFTNET_ENOCLASS);
  assert_err(bftnet_send_ex(net, NULL, &o, msg, sizeof msg), BFTNET_ENOCLASS);
  o.cls = 1;
  assert_err(bftnet_send_ex(net, "nobody", &o, msg, sizeof msg), BFTNET_ENOTFOUND);
  assert_int_equal(bftnet_send_ex(net, NULL, &o, msg, sizeof msg), 0); /* no members yet */
  bftnet_class_stats_t st;
  assert_err(bftnet_class_stats(net, "nobody", 3, &st), BFTNET_ENOCLASS);
  assert_err(bftnet_class_stats(net, "nobody", 0, &st), BFTNET_ENOTFOUND);
  assert_string_equal(bftnet_err_name(BFTNET_EBADCLASS), "BFTNET_EBADCLASS");
  bftnet_free(net);
  /* Without classes: one, the implicit one. */
  cfg.classes = NULL;
  cfg.nclasses = 0;
  assert_ok(bftnet_new(&net, &cfg));
  assert_int_equal(bftnet_class_count(net), 1);
  bftnet_free(net);
  bftnet_key_free(key);
}

/* ------------------------------------------- order and counts per class */

#define OC_N    3
#define OC_MSGS 3000

/* The value of the sample fam{peer="peer",class="cls"} in the node's
 * metrics text, or -1 if it is missing. */
static long long metric(int i, const char *fam, const char *peer, const char *cls) {
  static char text[1 << 18];
  size_t len;
  assert_ok(bftnet_metrics_text(nodes[i].net, text, sizeof text, &len));
  char key[160];
  snprintf(key, sizeof key, "\nbftnet_%s{peer=\"%s\",class=\"%s\"} ", fam, peer, cls);
  const char *p = strstr(text, key);
  return p ? strtoll(p + strlen(key), NULL, 10) : -1;
}

static void test_each_class_in_order(void **state) {
  (void)state;
  bftnet_class_t c[OC_N];
  bftnet_class_init(&c[0], "votes");
  bftnet_class_init(&c[1], "blocks");
  c[1].priority = 1;
  bftnet_class_init(&c[2], "sync");
  c[2].priority = 2;
  bftnet_config_t cfg;
  cfg_base(&cfg);
  cfg.classes = c;
  cfg.nclasses = OC_N;
  for (int i = 0; i < 3; i++)
    node_start(i, &cfg);
  connect_all(3);
  for (uint8_t k = 0; k < OC_N; k++)
    wait_class_connected(0, "r1", k), wait_class_connected(0, "r2", k);
  /* r0 interleaves unicasts to r1 and broadcasts across the classes; each
   * message carries its class's sequence number (r2, which gets only the
   * broadcasts, sees an ordered subsequence). */
  static uint8_t buf[40000];
  uint64_t seq[OC_N] = {0}, to_r2[OC_N] = {0};
  uint64_t seed = th_rng_init(th_seed());
  for (int s = 0; s < OC_MSGS; s++) {
    uint8_t k = (uint8_t)(th_rnd(&seed) % OC_N);
    size_t len = k == 1 ? 20000 + th_rnd(&seed) % 20000 : 16 + th_rnd(&seed) % 200;
    bftnet_send_opts_t o = {.cls = k};
    th_put_be64(buf, ++seq[k]);
    if (th_rnd(&seed) % 4 == 0) { /* a broadcast: r1 and r2 */
      assert_int_equal(bftnet_send_ex(nodes[0].net, NULL, &o, buf, len), 2);
      to_r2[k]++;
    } else {
      assert_ok(bftnet_send_ex(nodes[0].net, "r1", &o, buf, len));
    }
  }
  assert_ok(bftnet_flush(nodes[0].net, 20000));
  for (int at = 1; at <= 2; at++) {
    uint64_t last[OC_N] = {0}, got[OC_N] = {0};
    bftnet_msg_t m;
    while (bftnet_recv(nodes[at].net, &m, 500) == 0) {
      assert_string_equal(m.from, "r0");
      assert_true(m.cls < OC_N);
      uint64_t q = th_get_be64(m.data);
      if (q <= last[m.cls])
        fail_msg("r%d class %u: %llu after %llu", at, m.cls, (unsigned long long)q,
                 (unsigned long long)last[m.cls]);
      last[m.cls] = q;
      got[m.cls]++;
      bftnet_msg_release(&m);
    }
    for (uint8_t k = 0; k < OC_N; k++) {
      bftnet_class_stats_t s0 = cstats(0, nodes[at].id, k), s1 = cstats(at, "r0", k);
      assert_int_equal(s0.sent, s0.enqueued); /* invariant 2: nothing dropped, all written */
      assert_int_equal(s0.dropped + s0.superseded + s0.aborted, 0);
      assert_int_equal(s1.delivered, s0.sent);
      assert_int_equal(got[k], s0.sent);
      assert_int_equal(got[k], at == 1 ? seq[k] : to_r2[k]); /* none missing */
      assert_true(s0.delay_samples > 0);
      assert_true(s0.delay_p50_ns <= s0.delay_p99_ns && s0.delay_p99_ns <= s0.delay_max_ns);
      /* The metrics text carries the same figures per class. */
      const char *name = bftnet_class_name(nodes[0].net, k);
      assert_int_equal(metric(0, "class_sent_messages_total", nodes[at].id, name),
                       (long long)s0.sent);
      assert_int_equal(metric(0, "class_enqueued_messages_total", nodes[at].id, name),
                       (long long)s0.enqueued);
      assert_int_equal(metric(at, "class_delivered_messages_total", "r0", name),
                       (long long)s1.delivered);
    }
  }
  for (int i = 0; i < 3; i++)
    node_stop(i);
}

/* ------------------------------------------------------- keep-latest */

/* r1 is first known to r0 at an address where nothing listens: r0 queues.
 * Keys replace queued messages (moving to the tail: the rest keep their
 * order); then r1's real address arrives and the queue drains. Messages
 * already written are never replaced. */
static void test_keep_latest(void **state) {
  (void)state;
  bftnet_class_t c[2];
  bftnet_class_init(&c[0], "votes");
  bftnet_class_init(&c[1], "status");
  c[1].policy = BFTNET_KEEP_LATEST;
  c[1].ring_capacity = 8; /* 7 messages fit */
  bftnet_config_t cfg;
  cfg_base(&cfg);
  cfg.classes = c;
  cfg.nclasses = 2;
  node_start(0, &cfg);
  node_start(1, &cfg);
  char dead[BFTNET_ADDR_MAX]; /* r1's identity at a port nobody listens on */
  snprintf(dead, sizeof dead, "/ip4/127.0.0.1/tcp/1%s", strstr(nodes[1].addr, "/p2p/"));
  connect_n(0, 2, 1, dead);
  connect_n(1, 2, -1, NULL);
  /* (key, payload): a1 b2 c1 d3 e2 f0 g0 h1 -> queued: d3 e2 f g h1 */
  const struct {
    uint64_t key;
    char v;
  } seq[] = {{1, 'a'}, {2, 'b'}, {1, 'c'}, {3, 'd'}, {2, 'e'}, {0, 'f'}, {0, 'g'}, {1, 'h'}};
  for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) {
    bftnet_send_opts_t o = {.cls = 1, .key = seq[i].key};
    assert_ok(bftnet_send_ex(nodes[0].net, "r1", &o, &seq[i].v, 1));
  }
  bftnet_class_stats_t s = cstats(0, "r1", 1);
  assert_int_equal(s.enqueued, 8);
  assert_int_equal(s.superseded, 3); /* a by c, b by e, c by h */
  assert_int_equal(s.dropped, 0);
  assert_int_equal(s.ring_depth, 5);
  assert_int_equal(bftnet_counter(nodes[0].net, BFTNET_COUNTER_SUPERSEDED), 0); /* per class only */
  /* A full keep-latest ring still drops its oldest (counted): 7 fit. */
  for (char v = 'i'; v <= 'k'; v++) {
    bftnet_send_opts_t o = {.cls = 1, .key = (uint64_t)(10 + v)};
    assert_ok(bftnet_send_ex(nodes[0].net, "r1", &o, &v, 1));
  }
  s = cstats(0, "r1", 1);
  assert_int_equal(s.dropped, 1); /* d went: queued e f g h i j k */
  assert_int_equal(s.ring_depth, 7);
  /* The other class is untouched by either. */
  bftnet_class_stats_t v = cstats(0, "r1", 0);
  assert_int_equal(v.dropped + v.superseded, 0);
  connect_n(0, 2, -1, NULL); /* r1's real address: the queue drains */
  const char want[] = "efghijk";
  char got[16] = "";
  size_t n = 0;
  bftnet_msg_t m;
  while (n < strlen(want) && bftnet_recv(nodes[1].net, &m, 5000) == 0) {
    assert_int_equal(m.cls, 1);
    got[n++] = (char)m.data[0];
    bftnet_msg_release(&m);
  }
  assert_string_equal(got, want); /* invariant 1: an ordered subsequence */
  /* Written messages are not replaced: x, then (once x is out) y, same key. */
  for (char x = 'x'; x <= 'y'; x++) {
    bftnet_send_opts_t o = {.cls = 1, .key = 1};
    assert_ok(bftnet_send_ex(nodes[0].net, "r1", &o, &x, 1));
    assert_ok(bftnet_recv(nodes[1].net, &m, 5000));
    assert_int_equal(m.data[0], x);
    bftnet_msg_release(&m);
  }
  s = cstats(0, "r1", 1);
  /* Invariant 2, exactly: everything enqueued is delivered, superseded or dropped. */
  assert_int_equal(s.enqueued, 13);
  assert_int_equal(s.superseded, 3);
  assert_int_equal(s.dropped, 1);
  assert_int_equal(s.sent, 9);
  assert_int_equal(cstats(1, "r0", 1).delivered, 9);
  assert_int_equal(s.enqueued, s.sent + s.superseded + s.dropped);
  node_stop(0);
  node_stop(1);
}

/* ------------------------------------------------- the scheduling bound */

/* Two nodes on the test's own loop (one thread: nothing runs between the
 * test's steps). r0 keeps several MiB queued in each of two lower classes;
 * then, fifty times, it queues one vote and turns the loop until r1 has
 * it. For each vote r0 measures the bytes of the other classes written to
 * the connection while the vote waited (ahead_max_bytes): at most one
 * piece, whatever the backlog behind which it was queued. */
#define SB_PIECE  (16u * 1024u)
#define SB_BLOCK  (256u * 1024u)
#define SB_QUEUED (8u << 20)

typedef struct sb_state {
  uint64_t votes, lower_bytes;
} sb_state_t;

static void sb_on_msg(const bftnet_msg_t *m, void *user) {
  sb_state_t *s = user;
  if (m->cls == 0)
    s->votes++;
  else
    s->lower_bytes += m->len;
}

/* Keeps SB_QUEUED bytes queued in each lower class. */
static void sb_top_up(void) {
  static uint8_t block[SB_BLOCK];
  for (uint8_t k = 1; k <= 2; k++) {
    bftnet_class_stats_t st = cstats(0, "r1", k);
    for (unsigned i = st.ring_depth; i < SB_QUEUED / SB_BLOCK; i++) {
      bftnet_send_opts_t o = {.cls = k};
      assert_ok(bftnet_send_ex(nodes[0].net, "r1", &o, block, sizeof block));
    }
  }
}

static void sb_run_until(uv_loop_t *loop, const uint64_t *v, uint64_t want) {
  uint64_t deadline = th_mono_ns() + 20000000000ull;
  while (*v < want && th_mono_ns() < deadline)
    uv_run(loop, UV_RUN_ONCE);
  assert_true(*v >= want);
}

static void test_scheduling_bound(void **state) {
  (void)state;
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  bftnet_class_t c[3];
  bftnet_class_init(&c[0], "votes");
  bftnet_class_init(&c[1], "blocks");
  c[1].priority = 1;
  bftnet_class_init(&c[2], "bulk");
  c[2].priority = 2;
  static sb_state_t st;
  memset(&st, 0, sizeof st);
  bftnet_config_t cfg;
  cfg_base(&cfg);
  cfg.loop = &loop;
  cfg.classes = c;
  cfg.nclasses = 3;
  cfg.on_message_ex = sb_on_msg;
  cfg.user = &st;
  node_start(0, &cfg);
  node_start(1, &cfg);
  connect_all(2);
  /* The lower classes flow for a while (the pair converges on one
   * connection meanwhile: ahead_max_bytes counts the member's other
   * classes, and they compete with the vote only on the same one). */
  for (uint64_t t0 = th_mono_ns(); th_mono_ns() - t0 < 800000000ull;) {
    sb_top_up();
    uv_run(&loop, UV_RUN_NOWAIT);
  }
  assert_true(st.lower_bytes > (2u << 20));
  uint8_t vote[64] = {0};
  bftnet_send_opts_t o = {.cls = 0};
  uint64_t min_queued = UINT64_MAX;
  for (uint64_t i = 1; i <= 50; i++) {
    sb_top_up();
    uv_run(&loop, UV_RUN_NOWAIT); /* lower-class pieces in flight, as in any moment */
    bftnet_class_stats_t b1 = cstats(0, "r1", 1), b2 = cstats(0, "r1", 2);
    min_queued = BN_MIN_T(min_queued, (uint64_t)(b1.ring_depth + b2.ring_depth) * SB_BLOCK);
    assert_ok(bftnet_send_ex(nodes[0].net, "r1", &o, vote, sizeof vote));
    sb_run_until(&loop, &st.votes, i);
  }
  bftnet_class_stats_t v = cstats(0, "r1", 0), b1 = cstats(0, "r1", 1), b2 = cstats(0, "r1", 2);
  print_message(
      "scheduling bound: 50 votes, each queued behind >= %llu bytes of two lower classes; "
      "their bytes written ahead of a vote after it was queued: at most %llu (one piece: "
      "%u); vote queueing delay p50 %llu us, p99 %llu us; lower classes wrote %llu + %llu "
      "bytes meanwhile\n",
      (unsigned long long)min_queued, (unsigned long long)v.ahead_max_bytes, SB_PIECE,
      (unsigned long long)v.delay_p50_ns / 1000, (unsigned long long)v.delay_p99_ns / 1000,
      (unsigned long long)b1.bytes_out, (unsigned long long)b2.bytes_out);
  assert_int_equal(v.sent, 50);
  assert_int_equal(v.delay_samples, 50); /* every vote found its ring empty: all sampled */
  assert_true(min_queued >= SB_QUEUED);  /* a backlog far larger than a piece */
  assert_true(v.ahead_max_bytes <= SB_PIECE);
  assert_int_equal(v.dropped + b1.dropped + b2.dropped, 0);
  node_stop(1);
  node_stop(0);
  for (int i = 0; i < 20; i++)
    uv_run(&loop, UV_RUN_NOWAIT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* ------------------------------------------------ the minimum share */

/* r0 floods class 0 with 16 KiB messages (more than the connection takes)
 * while a lower class has a backlog: with the default 10 % minimum share
 * the lower class keeps getting bytes through. */
typedef struct ms_state {
  _Atomic uint64_t bytes[2];
} ms_state_t;

static void ms_on_msg(const bftnet_msg_t *m, void *user) {
  ms_state_t *s = user;
  atomic_fetch_add(&s->bytes[m->cls & 1], m->len);
}

typedef struct ms_flood {
  bftnet_t *net;
  uint8_t cls;
  size_t len;
  bool nap; /* sleep while the ring is half full (not to take the CPU away) */
  atomic_bool stop;
  uint64_t send_errors; /* checked by the joiner: 0 */
} ms_flood_t;

/* Keeps r1's ring of the class full (drop-oldest takes the overflow):
 * bursts while it has room, a short nap when it is full. */
static void *ms_flood_main(void *arg) {
  ms_flood_t *f = arg;
  static _Thread_local uint8_t buf[16384];
  bftnet_send_opts_t o = {.cls = f->cls};
  uint64_t deadline = th_mono_ns() + 60000000000ull;
  while (!atomic_load(&f->stop) && th_mono_ns() < deadline) {
    for (int i = 0; i < 64; i++) /* a full ring drops the oldest: sends succeed */
      if (bftnet_send_ex(f->net, "r1", &o, buf, f->len) != 0) f->send_errors++;
    bftnet_class_stats_t st;
    if (f->nap && bftnet_class_stats(f->net, "r1", f->cls, &st) == 0 && st.ring_depth >= 32)
      usleep(1000);
    else
      sched_yield();
  }
  return NULL;
}

static void test_min_share_no_starvation(void **state) {
  (void)state;
  bftnet_class_t c[2];
  bftnet_class_init(&c[0], "votes");
  c[0].ring_capacity = 256;
  bftnet_class_init(&c[1], "blocks");
  c[1].priority = 1;
  c[1].ring_capacity = 256;
  static ms_state_t st;
  memset(&st, 0, sizeof st);
  bftnet_config_t cfg;
  cfg_base(&cfg);
  cfg.classes = c;
  cfg.nclasses = 2;
  cfg.yamux_window = 16u << 20; /* the connection is the limit, not a stream's window */
  node_start(0, &cfg);
  cfg.on_message_ex = ms_on_msg;
  cfg.user = &st;
  node_start(1, &cfg);
  connect_all(2);
  wait_class_connected(0, "r1", 0);
  wait_class_connected(0, "r1", 1);
  static ms_flood_t f[2];
  pthread_t th[2];
  for (int k = 0; k < 2; k++) {
    f[k] = (ms_flood_t){.net = nodes[0].net, .cls = (uint8_t)k, .len = 16384};
    atomic_store(&f[k].stop, false);
    assert_int_equal(pthread_create(&th[k], NULL, ms_flood_main, &f[k]), 0);
  }
  usleep(300000);
  uint64_t b0[2] = {atomic_load(&st.bytes[0]), atomic_load(&st.bytes[1])};
  usleep(1500000);
  uint64_t b1[2] = {atomic_load(&st.bytes[0]), atomic_load(&st.bytes[1])};
  for (int k = 0; k < 2; k++)
    atomic_store(&f[k].stop, true);
  for (int k = 0; k < 2; k++) {
    pthread_join(th[k], NULL);
    assert_int_equal(f[k].send_errors, 0);
  }
  double votes = (double)(b1[0] - b0[0]), blocks = (double)(b1[1] - b0[1]);
  double share = blocks / (votes + blocks);
  bftnet_class_stats_t v = cstats(0, "r1", 0), b = cstats(0, "r1", 1);
  print_message(
      "minimum share: votes %.1f MB, blocks %.1f MB in 1.5 s: blocks got %.1f %% (minimum 10 %%); "
      "dropped from the full rings: votes %llu, blocks %llu\n",
      votes / 1e6, blocks / 1e6, 100 * share, (unsigned long long)v.dropped,
      (unsigned long long)b.dropped);
  assert_true(votes > 0);
  assert_true(share >= 0.05); /* not starved */
  node_stop(0);
  node_stop(1);
}

/* ---------------------------------------- one full inbound queue alone */

/* r1's application takes blocks slowly (a thread of their own, 100 ms per
 * block: their queue stays full, their credit stopped) and votes at once
 * (another thread, bftnet_recv_classes). r0 floods blocks and sends a vote
 * every 10 ms: every vote's bytes are credited (confirmed to r0) while the
 * blocks' are not; the blocks drop from r0's full ring and count only their
 * own. Whether a vote waited for the blocks is read from what happened
 * meanwhile, not from a clock: each vote carries how many blocks r1 had
 * taken when it was sent, and a vote that had to wait for room in the
 * blocks' queue arrives only after r1 took another block. */
#define IQ_VOTES 150

typedef struct iq_state {
  atomic_bool stop;
  uint64_t votes, late, worst_ns, blocks;
  uint64_t after_block; /* votes that arrived after r1 took a block sent after them */
  uint32_t max_blocks_depth;
} iq_state_t;

static void *iq_vote_reader(void *arg) {
  iq_state_t *s = arg;
  bftnet_msg_t m;
  while (!atomic_load(&s->stop)) {
    if (bftnet_recv_classes(nodes[1].net, 1u << 0, &m, 1, 50) != 1) continue;
    assert_int_equal(m.cls, 0);
    uint64_t lat = th_mono_ns() - th_get_be64(m.data);
    if (lat > s->worst_ns) s->worst_ns = lat;
    if (lat > 100000000ull) s->late++;
    if (__atomic_load_n(&s->blocks, __ATOMIC_ACQUIRE) > th_get_be64(m.data + 8)) s->after_block++;
    __atomic_add_fetch(&s->votes, 1, __ATOMIC_RELAXED);
    bftnet_msg_release(&m);
  }
  return NULL;
}

static void *iq_block_reader(void *arg) {
  iq_state_t *s = arg;
  bftnet_msg_t m;
  while (!atomic_load(&s->stop)) {
    bftnet_class_stats_t st;
    if (bftnet_class_stats(nodes[1].net, "r0", 1, &st) == 0 &&
        st.inbound_depth > s->max_blocks_depth)
      s->max_blocks_depth = st.inbound_depth;
    if (bftnet_recv_classes(nodes[1].net, 1u << 1, &m, 1, 50) != 1) continue;
    assert_int_equal(m.cls, 1);
    bftnet_msg_release(&m);
    __atomic_add_fetch(&s->blocks, 1, __ATOMIC_RELEASE);
    usleep(100000); /* the slow block validation */
  }
  return NULL;
}

/* r0 and r1 with classes c[0..2) (votes, blocks), connected, both classes'
 * streams from r0 to r1 up. */
static void start_pair_two_classes(bftnet_class_t *c) {
  bftnet_config_t cfg;
  cfg_base(&cfg);
  cfg.classes = c;
  cfg.nclasses = 2;
  node_start(0, &cfg);
  node_start(1, &cfg);
  connect_all(2);
  wait_class_connected(0, "r1", 0);
  wait_class_connected(0, "r1", 1);
}

static void test_full_inbound_queue_stops_only_its_class(void **state) {
  (void)state;
  bftnet_class_t c[2];
  bftnet_class_init(&c[0], "votes");
  bftnet_class_init(&c[1], "blocks");
  c[1].priority = 1;
  c[1].ring_capacity = 64;
  c[1].inbound_max_msgs = 16;
  c[1].inbound_max_bytes = 1u << 20;
  start_pair_two_classes(c);
  static iq_state_t s;
  memset(&s, 0, sizeof s);
  static ms_flood_t f;
  f = (ms_flood_t){.net = nodes[0].net, .cls = 1, .len = 16384, .nap = true};
  atomic_store(&f.stop, false);
  pthread_t rd, rb, fl;
  assert_int_equal(pthread_create(&rd, NULL, iq_vote_reader, &s), 0);
  assert_int_equal(pthread_create(&rb, NULL, iq_block_reader, &s), 0);
  assert_int_equal(pthread_create(&fl, NULL, ms_flood_main, &f), 0);
  usleep(300000); /* the blocks' queue is full by now */
  uint8_t vote[64] = {0};
  bftnet_send_opts_t o = {.cls = 0};
  for (int i = 0; i < IQ_VOTES; i++) {
    th_put_be64(vote, th_mono_ns());
    th_put_be64(vote + 8, __atomic_load_n(&s.blocks, __ATOMIC_ACQUIRE));
    assert_ok(bftnet_send_ex(nodes[0].net, "r1", &o, vote, sizeof vote));
    usleep(10000);
  }
  uint64_t deadline = th_mono_ns() + 5000000000ull;
  while (__atomic_load_n(&s.votes, __ATOMIC_RELAXED) < IQ_VOTES && th_mono_ns() < deadline)
    usleep(10000);
  /* While the blocks' queue stays full (their flood goes on), every byte of
   * the votes is credited, which is what confirms it to r0: the votes'
   * flow control is theirs alone. */
  uint64_t unconfirmed = UINT64_MAX;
  for (deadline = th_mono_ns() + 2000000000ull; unconfirmed && th_mono_ns() < deadline;
       usleep(10000))
    unconfirmed = cstats(0, "r1", 0).unconfirmed;
  uint64_t blocks_unconfirmed = cstats(0, "r1", 1).unconfirmed;
  atomic_store(&f.stop, true);
  pthread_join(fl, NULL);
  assert_int_equal(f.send_errors, 0);
  atomic_store(&s.stop, true);
  pthread_join(rd, NULL);
  pthread_join(rb, NULL);
  bftnet_class_stats_t v = cstats(0, "r1", 0), b = cstats(0, "r1", 1);
  print_message(
      "full inbound queue: %llu of %d votes, %llu of them after r1 took another block, worst "
      "%.1f ms, %llu over 100 ms; blocks taken %llu, their queue up to %u (bound 16 + one "
      "window), dropped from r0's ring %llu; votes dropped %llu\n",
      (unsigned long long)s.votes, IQ_VOTES, (unsigned long long)s.after_block,
      (double)s.worst_ns / 1e6, (unsigned long long)s.late, (unsigned long long)s.blocks,
      s.max_blocks_depth, (unsigned long long)b.dropped, (unsigned long long)v.dropped);
  assert_int_equal(s.votes, IQ_VOTES); /* every vote */
  assert_int_equal(v.dropped + v.aborted, 0);
  assert_true(b.dropped > 0);            /* the blocks overflowed, and counted it */
  assert_true(s.max_blocks_depth >= 15); /* their queue was full (credit stopped) */
  /* Votes did not wait for room in the blocks' queue: r1 takes a block
   * every 100 ms and a vote is sent every 10 ms, so a vote that waits for
   * the blocks arrives after the next block taken; one that does not
   * arrives before it unless its threads were kept from a core for up to
   * 100 ms. Half is far from both (the timing itself is bench/'s). */
  assert_true(s.after_block < IQ_VOTES / 2);
  bftnet_msg_t m;
  assert_err(bftnet_recv_classes(nodes[1].net, 1u << 2, &m, 1, 0), BFTNET_ENOCLASS);
  assert_err(bftnet_recv_classes(nodes[1].net, 0, &m, 1, 0), BFTNET_ENOCLASS);
  print_message("full inbound queue: unconfirmed bytes at r0: votes %llu, blocks %llu\n",
                (unsigned long long)unconfirmed, (unsigned long long)blocks_unconfirmed);
  assert_int_equal(unconfirmed, 0);    /* the votes' credit never stopped */
  assert_true(blocks_unconfirmed > 0); /* the blocks' did */
  node_stop(0);
  node_stop(1);
}

/* ------------------------------ one receiving thread per class */

/* Two threads take disjoint classes and wait long (10 s) each time: every
 * message must wake its own thread, not wait for a timeout, and bftnet_stop
 * must wake both. One message at a time, so that no later message's
 * wakeup can hide a lost one. */
typedef struct ct_reader {
  uint32_t mask;
  _Atomic uint64_t got, worst_ns;
  _Atomic int closed;
} ct_reader_t;

static void *ct_reader_main(void *arg) {
  ct_reader_t *r = arg;
  for (;;) {
    bftnet_msg_t m;
    int rc = bftnet_recv_classes(nodes[1].net, r->mask, &m, 1, 10000);
    if (rc == BFTNET_ECLOSED) {
      atomic_store(&r->closed, 1);
      return NULL;
    }
    if (rc != 1) continue; /* a timeout: the check below sees the message late */
    assert_true(r->mask & (1u << m.cls));
    uint64_t lat = th_mono_ns() - th_get_be64(m.data);
    if (lat > atomic_load(&r->worst_ns)) atomic_store(&r->worst_ns, lat);
    atomic_fetch_add(&r->got, 1);
    bftnet_msg_release(&m);
  }
}

static void test_thread_per_class_wakes(void **state) {
  (void)state;
  bftnet_class_t c[2];
  bftnet_class_init(&c[0], "votes");
  bftnet_class_init(&c[1], "blocks");
  c[1].priority = 1;
  start_pair_two_classes(c);
  static ct_reader_t rv, rb;
  memset(&rv, 0, sizeof rv);
  memset(&rb, 0, sizeof rb);
  rv.mask = 1u << 0;
  rb.mask = 1u << 1;
  pthread_t tv, tb;
  assert_int_equal(pthread_create(&tv, NULL, ct_reader_main, &rv), 0);
  assert_int_equal(pthread_create(&tb, NULL, ct_reader_main, &rb), 0);
  enum { N = 40 };
  uint8_t msg[64] = {0};
  for (int i = 0; i < N; i++) {
    ct_reader_t *r = i % 3 == 2 ? &rb : &rv; /* votes and, one in three, a block */
    uint64_t want = atomic_load(&r->got) + 1;
    bftnet_send_opts_t o = {.cls = r == &rb ? 1 : 0};
    th_put_be64(msg, th_mono_ns());
    assert_ok(bftnet_send_ex(nodes[0].net, "r1", &o, msg, sizeof msg));
    uint64_t deadline = th_mono_ns() + 5000000000ull; /* half the readers' wait */
    while (atomic_load(&r->got) < want && th_mono_ns() < deadline)
      usleep(1000);
    assert_int_equal(atomic_load(&r->got), want);
    usleep((unsigned)(i % 7) * 3000); /* readers asleep again, or not yet */
  }
  print_message("a thread per class: votes %llu (worst %.2f ms), blocks %llu (worst %.2f ms)\n",
                (unsigned long long)atomic_load(&rv.got), (double)atomic_load(&rv.worst_ns) / 1e6,
                (unsigned long long)atomic_load(&rb.got), (double)atomic_load(&rb.worst_ns) / 1e6);
  /* bftnet_stop wakes both (long before their 10 s). */
  uint64_t t0 = th_mono_ns();
  assert_ok(bftnet_stop(nodes[1].net));
  pthread_join(tv, NULL);
  pthread_join(tb, NULL);
  assert_true(atomic_load(&rv.closed) && atomic_load(&rb.closed));
  assert_true(th_mono_ns() - t0 < 5000000000ull);
  node_stop(0);
  node_stop(1);
}

/* -------------------------------------------- a class the peer lacks */

static void test_unknown_class_refused(void **state) {
  (void)state;
  bftnet_class_t c[3];
  bftnet_class_init(&c[0], "votes");
  bftnet_class_init(&c[1], "blocks");
  c[1].priority = 1;
  bftnet_class_init(&c[2], "gossip");
  c[2].priority = 2;
  bftnet_config_t cfg;
  cfg_base(&cfg);
  cfg.classes = c;
  cfg.nclasses = 3;
  node_start(0, &cfg); /* votes, blocks, gossip */
  cfg.nclasses = 2;
  node_start(1, &cfg); /* votes, blocks */
  node_start(2, NULL); /* no classes: /bftnet/msg/1.0.0 alone */
  connect_all(3);
  wait_class_connected(0, "r1", 1);
  uint64_t deadline = th_mono_ns() + 10000000000ull;
  while (th_mono_ns() < deadline &&
         (cstats(0, "r1", 2).refused == 0 || cstats(0, "r2", 1).refused == 0 ||
          cstats(0, "r2", 2).refused == 0))
    usleep(10000);
  assert_true(cstats(0, "r1", 2).refused >= 1);
  assert_true(cstats(0, "r2", 1).refused >= 1);
  assert_true(bftnet_counter(nodes[0].net, BFTNET_COUNTER_CLASS_REFUSED) >= 3);
  assert_true(bftnet_counter(nodes[1].net, BFTNET_COUNTER_CLASS_UNKNOWN) >= 1); /* counted reason */
  /* Class 0 works with both; blocks with r1; gossip queues for r1 (its
   * ring, drop-oldest) while r1 refuses it. */
  uint8_t buf[32] = {0};
  for (uint8_t k = 0; k < 3; k++) {
    bftnet_send_opts_t o = {.cls = k};
    th_put_be64(buf, 100 + k);
    assert_ok(bftnet_send_ex(nodes[0].net, "r1", &o, buf, sizeof buf));
    assert_ok(bftnet_send_ex(nodes[0].net, "r2", &o, buf, sizeof buf));
  }
  bftnet_msg_t m;
  assert_ok(bftnet_recv(nodes[1].net, &m, 5000));
  int seen1 = 1 << (th_get_be64(m.data) - 100);
  bftnet_msg_release(&m);
  assert_ok(bftnet_recv(nodes[1].net, &m, 5000));
  seen1 |= 1 << (th_get_be64(m.data) - 100);
  bftnet_msg_release(&m);
  assert_int_equal(seen1, 3); /* votes and blocks */
  assert_ok(bftnet_recv(nodes[2].net, &m, 5000));
  assert_int_equal(th_get_be64(m.data), 100); /* the class-less node: class 0 */
  assert_int_equal(m.cls, 0);
  bftnet_msg_release(&m);
  assert_err(bftnet_recv(nodes[1].net, &m, 300), BFTNET_ETIMEDOUT);
  assert_err(bftnet_recv(nodes[2].net, &m, 300), BFTNET_ETIMEDOUT);
  assert_int_equal(cstats(0, "r1", 2).ring_depth, 1);
  for (int i = 0; i < 3; i++)
    node_stop(i);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN); /* test_scheduling_bound runs bftnet on the test's own loop */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_validation),
      cmocka_unit_test(test_each_class_in_order),
      cmocka_unit_test(test_keep_latest),
      cmocka_unit_test(test_scheduling_bound),
      cmocka_unit_test(test_min_share_no_starvation),
      cmocka_unit_test(test_full_inbound_queue_stops_only_its_class),
      cmocka_unit_test(test_thread_per_class_wakes),
      cmocka_unit_test(test_unknown_class_refused),
  };
  th_test_filter();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
