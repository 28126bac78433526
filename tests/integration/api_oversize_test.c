/*
 * Messages above a member's max_message_size, through the public API
 * (include/bftnet.h "oversized messages", docs/PROTOCOL.md 8.1):
 *  - members learn each other's limit from their streams' StreamMigration
 *    messages; bftnet_send refuses what the member cannot take
 *    (BFTNET_EPEERTOOBIG), bftnet_broadcast skips it for that member, both
 *    counted on the sender;
 *  - a message that arrives oversized anyway (a sender forced past the
 *    limit by a test hook; a peer that never said its limit) is skipped by
 *    the receiver without allocation and counted, and the stream goes on:
 *    later messages arrive in order, at once, with no reconnect and no
 *    detach timeout.
 * Invariants: per sender, delivered messages are an ordered subsequence of
 * those sent, without duplicates (1); a message is missing only if a side
 * counted it (2): the sender when it knew the limit, else the receiver.
 */
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "th_net.h"

/* The test hook of node/src/send.c (not in the public header): messages
 * above a member's limit are written anyway, and still counted. */
void node__send_test_write_too_big(bftnet_t *b);

#define MAXN      3
#define SMALL_MAX 1024u

typedef struct node {
  bftnet_key_t *key;
  bftnet_t *net;
  char id[4];
  char addr[BFTNET_ADDR_MAX];
  const char *addrs[1];
} node_t;

static node_t nodes[MAXN];

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* max: the node's max_message_size; plain: it opens plain streams (it
 * never says its limit, like a peer without the extension). */
static void start(int i, uint32_t max, bool plain, bool hook) {
  node_t *n = &nodes[i];
  memset(n, 0, sizeof *n);
  assert_ok(bftnet_key_generate(&n->key));
  bftnet_config_t c;
  bftnet_config_init(&c);
  c.key = n->key;
  c.max_message_size = max;
  c.disable_migration = plain;
  c.dial_backoff_min_ms = 20;
  c.dial_backoff_max_ms = 200;
  c.detach_timeout_ms = 30000; /* a stall would show as a 30 s wait */
  assert_ok(bftnet_new(&n->net, &c));
  if (hook) node__send_test_write_too_big(n->net);
  snprintf(n->id, sizeof n->id, "r%d", i);
  assert_ok(bftnet_listen(n->net, "/ip4/127.0.0.1/tcp/0", n->addr, sizeof n->addr));
  n->addrs[0] = n->addr;
}

static void stop(int i) {
  bftnet_free(nodes[i].net);
  bftnet_key_free(nodes[i].key);
  nodes[i].net = NULL;
}

static void connect_all(int k) {
  bftnet_member_t m[MAXN];
  for (int j = 0; j < k; j++)
    m[j] = (bftnet_member_t){nodes[j].id, nodes[j].addrs, 1};
  for (int i = 0; i < k; i++) {
    char err[256] = "";
    int rc = bftnet_connect(nodes[i].net, m, (size_t)k, err, sizeof err);
    if (rc) fail_msg("connect: %s: %s", bftnet_err_name(rc), err);
  }
}

static bftnet_peer_stats_t stats(int at, int of) {
  bftnet_peer_stats_t st;
  assert_ok(bftnet_peer_stats(nodes[at].net, nodes[of].id, &st));
  return st;
}

/* Waits until `at` knows the limit `of` said. */
static void wait_limit(int at, int of, uint32_t want) {
  for (int i = 0; i < 1000; i++) {
    if (stats(at, of).max_message_size == want) return;
    usleep(10000);
  }
  fail_msg("%s never learned %s's max_message_size %u (has %u)", nodes[at].id, nodes[of].id, want,
           stats(at, of).max_message_size);
}

static void wait_connected(int at, int to) {
  for (int i = 0; i < 1000 && !stats(at, to).connected; i++)
    usleep(10000);
  assert_true(stats(at, to).connected);
}

static void put_seq(uint8_t *buf, uint64_t seq, size_t len) {
  memset(buf, (int)(seq & 0xff), len);
  for (int k = 0; k < 8; k++)
    buf[k] = (uint8_t)(seq >> (56 - 8 * k));
}
static uint64_t get_seq(const uint8_t *buf) {
  uint64_t v = 0;
  for (int k = 0; k < 8; k++)
    v = v << 8 | buf[k];
  return v;
}

/* Receives at `at` from `from` until `want` messages came or 5 s of
 * silence; checks order and contents (invariant 1) and that nothing above
 * `max` is ever delivered. Returns how many came; *last the last seq. */
static uint64_t recv_from(int at, const char *from, uint64_t want, uint32_t max, uint64_t *last) {
  uint64_t got = 0;
  *last = 0;
  bftnet_msg_t m;
  while (got < want && bftnet_recv(nodes[at].net, &m, 5000) == 0) {
    if (strcmp(m.from, from) == 0) {
      assert_true(m.len >= 8 && m.len <= max);
      uint64_t seq = get_seq(m.data);
      if (seq <= *last)
        fail_msg("seq %llu after %llu", (unsigned long long)seq, (unsigned long long)*last);
      for (size_t b = 8; b < m.len; b++)
        assert_int_equal(m.data[b], seq & 0xff);
      *last = seq;
      got++;
    }
    bftnet_msg_release(&m);
  }
  return got;
}

static uint8_t big[64 * 1024];

/* r1 takes at most 1 KiB: r0 learns it and refuses; broadcasts skip r1 and
 * still reach r2; a broadcast nobody can take is refused. */
static void test_send_refuses_what_member_cannot_take(void **state) {
  (void)state;
  start(0, 4u * 1024 * 1024, false, false);
  start(1, SMALL_MAX, false, false);
  start(2, 4u * 1024 * 1024, false, false);
  connect_all(3);
  wait_limit(0, 1, SMALL_MAX); /* r1's Label on its stream to r0 said it */
  wait_limit(0, 2, 4u * 1024 * 1024);
  wait_limit(1, 0, 4u * 1024 * 1024);
  wait_connected(0, 1);
  wait_connected(0, 2);
  put_seq(big, 1, SMALL_MAX);
  assert_ok(bftnet_send(nodes[0].net, "r1", big, SMALL_MAX)); /* exactly the limit */
  put_seq(big, 2, SMALL_MAX + 1);
  assert_err(bftnet_send(nodes[0].net, "r1", big, SMALL_MAX + 1), BFTNET_EPEERTOOBIG);
  assert_ok(bftnet_send(nodes[0].net, "r2", big, SMALL_MAX + 1)); /* r2 takes it */
  put_seq(big, 3, 4000);
  assert_int_equal(bftnet_broadcast(nodes[0].net, big, 4000), 1); /* r2 only */
  put_seq(big, 4, 100);
  assert_int_equal(bftnet_broadcast(nodes[0].net, big, 100), 2);
  assert_err(bftnet_send(nodes[0].net, "r1", big, 4u * 1024 * 1024 + 1), BFTNET_ETOOBIG); /* ours */
  assert_ok(bftnet_flush(nodes[0].net, 10000));
  uint64_t last;
  assert_int_equal(recv_from(1, "r0", 2, SMALL_MAX, &last), 2); /* seq 1 and 4 */
  assert_int_equal(last, 4);
  assert_int_equal(recv_from(2, "r0", 3, 1u << 30, &last), 3); /* seq 2, 3, 4 */
  assert_int_equal(last, 4);
  bftnet_peer_stats_t s01 = stats(0, 1), s02 = stats(0, 2), s10 = stats(1, 0);
  assert_int_equal(s01.dropped_too_big, 2); /* the refused send, the skipped broadcast */
  assert_int_equal(s02.dropped_too_big, 0);
  assert_int_equal(s10.discarded_too_big, 0); /* nothing oversized reached r1 */
  assert_int_equal(bftnet_counter(nodes[0].net, BFTNET_COUNTER_DROPPED_TOO_BIG), 2);
  assert_int_equal(s01.sent, 2);
  assert_int_equal(s01.enqueued, s01.sent + s01.dropped_too_big - 1); /* the send refused at once */
  /* No member takes it: the broadcast is refused, counted for each. */
  stop(2);
  int one[2] = {0, 1};
  bftnet_member_t m[2];
  for (int j = 0; j < 2; j++)
    m[j] = (bftnet_member_t){nodes[one[j]].id, nodes[one[j]].addrs, 1};
  char err[128];
  assert_ok(bftnet_connect(nodes[0].net, m, 2, err, sizeof err));
  assert_err(bftnet_broadcast(nodes[0].net, big, 4000), BFTNET_EPEERTOOBIG);
  assert_int_equal(stats(0, 1).dropped_too_big, 3);
  stop(0);
  stop(1);
}

/* r0 is forced past r1's limit (the test hook): every 7th message is 2 KiB.
 * r1 skips them without allocation, counts them, and every other message
 * arrives in order at once: no reconnect, nothing aborted, no 30 s stall. */
static void test_forced_oversized_is_skipped_and_counted(void **state) {
  (void)state;
  start(0, 4u * 1024 * 1024, false, true);
  start(1, SMALL_MAX, false, false);
  connect_all(2);
  wait_limit(0, 1, SMALL_MAX);
  wait_connected(0, 1);
  enum { N = 3000 };
  uint64_t nbig = 0;
  double t0 = now_s();
  for (uint64_t s = 1; s <= N; s++) {
    size_t len = s % 7 == 0 ? 2048 : 8 + s % 300;
    if (s == N) len = 16; /* the last one is small: it must arrive */
    nbig += len > SMALL_MAX;
    put_seq(big, s, len);
    assert_ok(bftnet_send(nodes[0].net, "r1", big, len)); /* the hook lets it through */
    if (s % 500 == 0) usleep(5000);
  }
  uint64_t last;
  uint64_t got = recv_from(1, "r0", N - nbig, SMALL_MAX, &last);
  double dt = now_s() - t0;
  assert_ok(bftnet_flush(nodes[0].net, 10000));
  bftnet_peer_stats_t s01 = stats(0, 1), s10 = stats(1, 0);
  print_message("forced oversized: %llu of %d skipped, %llu delivered in %.3f s\n",
                (unsigned long long)nbig, N, (unsigned long long)got, dt);
  assert_int_equal(last, N); /* the stream went on to the end */
  assert_true(dt < 10.0);    /* no detach timeout on the way */
  assert_int_equal(s01.dropped_overflow, 0);
  assert_int_equal(got, N - nbig);               /* invariant 2: the missing ones ... */
  assert_int_equal(s01.dropped_too_big, nbig);   /* ... counted by the sender */
  assert_int_equal(s10.discarded_too_big, nbig); /* ... and by the receiver */
  assert_int_equal(bftnet_counter(nodes[1].net, BFTNET_COUNTER_INBOUND_TOO_BIG), nbig);
  assert_int_equal(s01.reconnects, 0); /* the connection never broke */
  assert_int_equal(s01.aborted, 0);
  assert_int_equal(bftnet_counter(nodes[1].net, BFTNET_COUNTER_BAD_MESSAGE), 0);
  assert_int_equal(bftnet_counter(nodes[0].net, BFTNET_COUNTER_MIG_ABORTED), 0);
  assert_int_equal(s10.delivered, got);
  stop(0);
  stop(1);
}

/* ------------------------------------------- a peer that never says */

/* A peer without the extension (as js-libp2p): built on net/ directly, it
 * answers na to /libp2p/stream-migration and opens a plain
 * /bftnet/msg/1.0.0 stream to r0, which takes at most 1 KiB. */
static struct {
  uv_loop_t loop;
  bn_transport_t *t;
  th_node_t node;
  net_stream_t *out;
  bn_buf_t pending; /* frames not yet taken by the stream */
} P;

static void p_sink(void *ud, net_stream_t *s, const uint8_t *d, size_t n) {
  (void)ud, (void)d;
  net_stream_consume(s, n); /* r0's messages to it: not looked at */
}
static const net_stream_cbs_t p_sink_cbs = {.on_data = p_sink};
static int p_open(void *ud, net_conn_t *c, net_stream_t *s) {
  (void)ud, (void)c;
  net_stream_set_cbs(s, &p_sink_cbs, NULL);
  return 0;
}

/* Writes what is pending as far as flow control allows. */
static void p_flush(void) {
  while (bn_buf_unread(&P.pending)) {
    int k = net_stream_write(P.out, bn_buf_head(&P.pending), bn_buf_unread(&P.pending));
    assert_true(k >= 0);
    if (k == 0) break;
    bn_buf_consume(&P.pending, (size_t)k);
  }
}
static void p_writable(void *ud, net_stream_t *s) {
  (void)ud, (void)s;
  p_flush();
}
static const net_stream_cbs_t p_out_cbs = {.on_data = p_sink, .on_writable = p_writable};

static bool p_sent(void *arg) {
  (void)arg;
  p_flush();
  return bn_buf_unread(&P.pending) == 0;
}

static void p_frame(uint64_t len_field, const uint8_t *body, size_t n) {
  uint8_t hdr[BN_UVARINT_MAX_BYTES];
  assert_ok(bn_buf_append(&P.pending, hdr, uvarint_encode(hdr, len_field)));
  if (n) assert_ok(bn_buf_append(&P.pending, body, n));
}

/* r0 takes at most 1 KiB from a peer that never said its own limit nor
 * learned r0's: r0 skips the oversized ones without allocation, counts
 * them, and the stream goes on. Only the receiver can count them here
 * (invariant 2's exception: a peer that does not say its limit). A length
 * beyond what any bftnet node may send (64 MiB) is still a lie that closes
 * the connection. */
static void test_peer_that_never_says_its_limit(void **state) {
  (void)state;
  memset(&P, 0, sizeof P);
  bn_buf_init(&P.pending);
  assert_int_equal(uv_loop_init(&P.loop), 0);
  assert_ok(net_transport_uv_new(&P.loop, bn_seam_system(), &P.t));
  net_config_t nc;
  th_net_config(&nc);
  assert_ok(th_node_init(&P.node, P.t, &nc, true));
  assert_ok(net_handle(P.node.net, "/bftnet/msg/1.0.0", p_open, NULL));
  start(0, SMALL_MAX, false, false);
  const char *pa[] = {P.node.addr};
  bftnet_member_t m[2] = {{"r0", nodes[0].addrs, 1}, {"p", pa, 1}};
  char err[256] = "";
  assert_ok(bftnet_connect(nodes[0].net, m, 2, err, sizeof err));
  int derr = 0;
  net_conn_t *c = th_dial(&P.loop, P.node.net, nodes[0].addr, &derr, 5000);
  assert_non_null(c);
  assert_ok(net_stream_open(c, "/bftnet/msg/1.0.0", &p_out_cbs, NULL, &P.out));
  enum { N = 300 };
  uint64_t nbig = 0;
  for (uint64_t s = 1; s <= N; s++) {
    size_t len = s % 10 == 5 ? 5000 : 8 + s % 200;
    if (s == 150) len = 1u << 20; /* 1 MiB: many yamux frames to skip */
    nbig += len > SMALL_MAX;
    put_seq(big, s, BN_MIN(len, sizeof big));
    p_frame(len, NULL, 0);
    for (size_t off = 0; off < len; off += sizeof big) {
      size_t k = BN_MIN(sizeof big, len - off);
      assert_ok(bn_buf_append(&P.pending, big, k));
      if (off == 0) put_seq(big, s, sizeof big); /* later chunks: same filler */
    }
  }
  double t0 = now_s();
  uint64_t got = 0, last = 0;
  bftnet_msg_t msg;
  while (got < N - nbig && now_s() - t0 < 20) {
    uv_run(&P.loop, UV_RUN_NOWAIT);
    p_flush();
    while (bftnet_recv(nodes[0].net, &msg, 0) == 0) {
      assert_string_equal(msg.from, "p");
      assert_true(msg.len <= SMALL_MAX);
      uint64_t seq = get_seq(msg.data);
      assert_true(seq > last); /* invariant 1 */
      last = seq;
      got++;
      bftnet_msg_release(&msg);
    }
    usleep(500);
  }
  double dt = now_s() - t0;
  print_message("peer without the limit: %llu oversized skipped, %llu delivered in %.3f s\n",
                (unsigned long long)nbig, (unsigned long long)got, dt);
  assert_int_equal(last, N); /* the stream went on to the end */
  assert_int_equal(got, N - nbig);
  assert_true(dt < 10.0);
  bftnet_peer_stats_t st;
  assert_ok(bftnet_peer_stats(nodes[0].net, "p", &st));
  assert_int_equal(st.discarded_too_big, nbig); /* invariant 2: counted where it was seen */
  assert_int_equal(st.max_message_size, 0);     /* it never said */
  assert_int_equal(bftnet_counter(nodes[0].net, BFTNET_COUNTER_INBOUND_TOO_BIG), nbig);
  assert_int_equal(bftnet_counter(nodes[0].net, BFTNET_COUNTER_BAD_MESSAGE), 0);
  assert_true(net_count_conns(P.node.net, &nodes[0].key->id) >= 1); /* nothing closed */
  assert_int_equal(bftnet_counter(nodes[0].net, BFTNET_COUNTER_CONN_CLOSED), 0);
  /* A length no bftnet node may send: the connection closes, counted. */
  p_frame(64u * 1024 * 1024 + 1, NULL, 0);
  assert_true(th_run_until_fn(&P.loop, p_sent, NULL, 5000));
  for (int i = 0; i < 500 && !bftnet_counter(nodes[0].net, BFTNET_COUNTER_BAD_MESSAGE); i++) {
    uv_run(&P.loop, UV_RUN_NOWAIT);
    usleep(2000);
  }
  assert_int_equal(bftnet_counter(nodes[0].net, BFTNET_COUNTER_BAD_MESSAGE), 1);
  stop(0);
  th_node_close(&P.node);
  for (int i = 0; i < 50; i++)
    uv_run(&P.loop, UV_RUN_NOWAIT);
  net_transport_uv_free(P.t);
  assert_int_equal(th_loop_finish(&P.loop), 0);
  th_node_free(&P.node);
  bn_buf_free(&P.pending);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_send_refuses_what_member_cannot_take),
      cmocka_unit_test(test_forced_oversized_is_skipped_and_counted),
      cmocka_unit_test(test_peer_that_never_says_its_limit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
