/*
 * migration_na_test.c — a member that does not speak stream migration (it
 * answers `na` to /libp2p/stream-migration, as js-libp2p does) still gets
 * every message: bftnet falls back to a plain /bftnet/msg/1.0.0 stream and
 * sends again, from the first application byte, what it had pipelined
 * behind the Label (PROTOCOL.md 11.2, "na"). Its own plain stream to us is
 * delivered too. The peer is built on net/ directly (it holds r1's key).
 */
#include <pthread.h>
#include <unistd.h>

#include <uv.h>

#include "harness.h"
#include "th_net.h"

#define NMSG 2000

static struct {
  uv_loop_t loop;
  th_node_t node;
  uint64_t next; /* next sequence number expected from r0 */
  uint64_t got, bad;
  uint8_t pend[64];
  size_t npend;
  int streams;
  net_stream_t *out;
} P;

static uint64_t be64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = (v << 8) | p[i];
  return v;
}

/* r0's frames: uvarint(8) || seq (big-endian); one byte of length suffices. */
static void p_data(void *ud, net_stream_t *s, const uint8_t *d, size_t n) {
  (void)ud;
  for (size_t i = 0; i < n; i++) {
    P.pend[P.npend++] = d[i];
    if (P.npend == 9) {
      if (P.pend[0] != 8 || be64(P.pend + 1) != P.next)
        P.bad++;
      else
        P.next++, P.got++;
      P.npend = 0;
    }
  }
  net_stream_consume(s, n);
}

static const net_stream_cbs_t p_cbs = {.on_data = p_data};

static int p_open(void *ud, net_conn_t *c, net_stream_t *s) {
  (void)ud;
  (void)c;
  P.streams++;
  net_stream_set_cbs(s, &p_cbs, NULL);
  return 0;
}

static bool p_done(void *arg) {
  (void)arg;
  return P.got >= NMSG || P.bad;
}

static void test_plain_fallback(void **state) {
  (void)state;
  memset(&P, 0, sizeof P);
  P.next = 1;
  assert_int_equal(uv_loop_init(&P.loop), 0);
  bn_transport_t *t;
  assert_ok(net_transport_uv_new(&P.loop, bn_seam_system(), &t));
  net_config_t nc;
  th_net_config(&nc);
  assert_ok(th_node_init(&P.node, t, &nc, true));
  /* The peer serves /bftnet/msg/1.0.0 only: /libp2p/stream-migration gets na. */
  assert_ok(net_handle(P.node.net, "/bftnet/msg/1.0.0", p_open, NULL));

  bftnet_key_t *k0;
  assert_ok(bftnet_key_generate(&k0));
  bftnet_config_t cfg;
  bftnet_config_init(&cfg);
  cfg.key = k0;
  cfg.dial_backoff_min_ms = 20;
  cfg.dial_backoff_max_ms = 200;
  bftnet_t *r0;
  assert_ok(bftnet_new(&r0, &cfg));
  char a0[BFTNET_ADDR_MAX];
  assert_ok(bftnet_listen(r0, "/ip4/127.0.0.1/tcp/0", a0, sizeof a0));
  const char *aa0[] = {a0}, *aa1[] = {P.node.addr};
  bftnet_member_t mem[] = {{"r0", aa0, 1}, {"r1", aa1, 1}};
  char err[256] = "";
  /* Queued before any connection: they go out pipelined behind the Label. */
  assert_ok(bftnet_connect(r0, mem, 2, err, sizeof err));
  uint8_t m[8];
  for (uint64_t s = 1; s <= NMSG; s++) {
    for (int i = 7; i >= 0; i--)
      m[7 - i] = (uint8_t)(s >> (8 * i));
    assert_ok(bftnet_send(r0, "r1", m, sizeof m));
    if (s == NMSG / 2) usleep(50000);
  }
  assert_true(th_run_until_fn(&P.loop, p_done, NULL, 10000));
  assert_int_equal(P.bad, 0);
  assert_int_equal(P.got, NMSG); /* every message once, in order */
  assert_int_equal(bftnet_counter(r0, BFTNET_COUNTER_MIG_PLAIN), 1);
  assert_true(bn_counter_get(&P.node.ctr, BFTNET_COUNTER_PROTO_NA) >= 1);

  /* The peer's own plain stream to r0 is r1's Receiver. */
  net_conn_t *c = net_find_conn(P.node.net, &k0->id);
  assert_non_null(c);
  net_stream_t *s;
  assert_ok(net_stream_open(c, "/bftnet/msg/1.0.0", &p_cbs, NULL, &s));
  const uint8_t frame[] = {5, 'h', 'e', 'l', 'l', 'o'};
  assert_int_equal(net_stream_write(s, frame, sizeof frame), (int)sizeof frame);
  bftnet_msg_t msg;
  int rc = BFTNET_EAGAIN;
  for (int i = 0; i < 400 && rc == BFTNET_EAGAIN; i++) {
    uv_run(&P.loop, UV_RUN_NOWAIT);
    rc = bftnet_recv(r0, &msg, 0);
    if (rc == BFTNET_EAGAIN) usleep(5000);
  }
  assert_ok(rc);
  assert_string_equal(msg.from, "r1");
  assert_int_equal(msg.len, 5);
  assert_memory_equal(msg.data, "hello", 5);
  bftnet_msg_release(&msg);
  assert_int_equal(bftnet_counter(r0, BFTNET_COUNTER_MIG_ABORTED), 0);

  bftnet_free(r0);
  bftnet_key_free(k0);
  th_node_close(&P.node);
  for (int i = 0; i < 50; i++)
    uv_run(&P.loop, UV_RUN_NOWAIT);
  net_transport_uv_free(t);
  assert_int_equal(th_loop_finish(&P.loop), 0);
  th_node_free(&P.node);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_plain_fallback)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
