/*
 * Secure links through the fault-injecting proxy: the failure detection
 * docs/ARCHITECTURE.md promises. A blackholed path is caught by the ping keepalive
 * (TCP alone would wait minutes); an abrupt cut closes only that
 * connection; 1..3-byte segments exercise every parser's partial input;
 * and stopping a node whose peer went dark is bounded.
 */
#include <stdlib.h>

#include "fault_proxy.h"
#include "harness.h"
#include "net_internal.h"
#include "th_net.h"

typedef struct fx {
  th_pair_t p; /* nodes a and b on one loop */
  fault_proxy_t *px;
  char via[BFTNET_ADDR_MAX]; /* B's address through the proxy, with B's ID */
} fx_t;

static fx_t *fx_new(const fault_proxy_opts_t *opts, uint32_t ping_ms) {
  fx_t *f = calloc(1, sizeof *f);
  assert_non_null(f);
  net_config_t cfg;
  th_net_config(&cfg);
  cfg.ping_interval_ms = ping_ms;
  cfg.ping_timeout_ms = 2 * ping_ms;
  assert_ok(th_pair_init(&f->p, &cfg, &cfg));
  maddr_t mb;
  char e[128];
  assert_ok(maddr_parse(f->p.b.addr, &mb, e, sizeof e));
  struct sockaddr_storage lis;
  assert_ok(fault_proxy_addr_parse("127.0.0.1:0", &lis));
  assert_int_equal(fault_proxy_create(&f->p.loop, (struct sockaddr *)&lis,
                                      (struct sockaddr *)&mb.sa, opts, &f->px),
                   0);
  struct sockaddr_storage bound;
  assert_int_equal(fault_proxy_bound_addr(f->px, &bound), 0);
  assert_ok(maddr_format_sa((struct sockaddr *)&bound, &mb.peer, f->via, sizeof f->via));
  return f;
}

static void fx_free(fx_t *f) {
  if (f->px) fault_proxy_close(f->px, NULL, NULL);
  assert_int_equal(th_pair_finish(&f->p), 0);
  free(f);
}

static net_conn_t *dial_via(fx_t *f) {
  int err;
  net_conn_t *c = th_dial(&f->p.loop, f->p.a.net, f->via, &err, 10000);
  if (!c) fail_msg("dial via proxy: %s", bftnet_strerror(err));
  return c;
}

static bool a_down(void *arg) {
  return ((fx_t *)arg)->p.a.downs > 0;
}

static void test_blackhole_detected_by_ping(void **state) {
  (void)state;
  fx_t *f = fx_new(NULL, 200);
  dial_via(f);
  assert_int_equal(fault_proxy_blackhole(f->px, 1), 0);
  uint64_t t0 = uv_hrtime();
  assert_true(th_run_until_fn(&f->p.loop, a_down, f, 5000));
  double s = (double)(uv_hrtime() - t0) / 1e9;
  print_message("blackhole detected after %.2f s (ping timeout 0.4 s)\n", s);
  assert_int_equal(f->p.a.last_reason, BFTNET_REASON_PING_TIMEOUT);
  assert_int_equal(bn_counter_get(&f->p.a.ctr, BFTNET_COUNTER_PING_TIMEOUT), 1);
  fx_free(f);
}

static void test_cut_closes_only_that_connection(void **state) {
  (void)state;
  fx_t *f = fx_new(NULL, 1000);
  dial_via(f);
  int err;
  char bare[BFTNET_ADDR_MAX]; /* without /p2p: a second, direct connection B -> A */
  snprintf(bare, sizeof bare, "%.*s", (int)(strstr(f->p.a.addr, "/p2p/") - f->p.a.addr),
           f->p.a.addr);
  net_conn_t *direct = th_dial(&f->p.loop, f->p.b.net, bare, &err, 5000);
  assert_non_null(direct);
  assert_true(fault_proxy_cut(f->px) >= 1);
  assert_true(th_run_until_fn(&f->p.loop, a_down, f, 5000));
  assert_true(f->p.a.last_reason == BFTNET_REASON_RESET ||
              f->p.a.last_reason == BFTNET_REASON_CLOSED_BY_PEER);
  /* The other connection of the pair is untouched. */
  assert_ptr_equal(net_find_conn(f->p.b.net, net_local_id(f->p.a.net)), direct);
  fx_free(f);
}

static void test_tiny_segments(void **state) {
  (void)state;
  fault_proxy_opts_t o = {.slice_max = 3, .seed = th_seed()};
  /* What is tested is the bytes through 1-3 byte segments, not the
   * keepalive: a ping queued behind that many bytes sliced this fine can
   * take seconds on a loaded machine under ASan, so its timeout is
   * generous. 96 KiB each way is some 65,000 segments, every Noise frame
   * and yamux header cut at every offset many times over; the bound is for
   * a loaded machine under ASan (one proxy write a syscall). */
  fx_t *f = fx_new(&o, 10000);
  net_conn_t *c = dial_via(f); /* multistream, Noise and yamux, 1..3 bytes at a time */
  static uint8_t data[96 * 1024];
  bn_random(bn_seam_system(), data, sizeof data);
  th_echo_client_t ec;
  assert_ok(th_echo_start(c, &ec, data, sizeof data));
  bool done = th_run_until(&f->p.loop, &ec.done, 90000);
  if (!done) fail_msg("echo incomplete: %zu of %zu bytes back", ec.recvd, sizeof data);
  assert_int_equal(ec.err, 0);
  assert_false(ec.mismatch);
  fault_proxy_stats_t st;
  fault_proxy_stats(f->px, &st);
  print_message("echoed %zu bytes in %llu proxy writes\n", ec.recvd, (unsigned long long)st.writes);
  assert_true(st.writes > 2 * sizeof data / 3);
  fx_free(f);
}

static void closed_cb(void *ud) {
  *(bool *)ud = true;
}

/* Writes junk whenever the connection takes more (each stream: at most its
 * 256 KiB window, which it never gets back from a dark peer). */
static uint8_t g_junk[256 * 1024];
static void junk_writable(void *ud, net_stream_t *s) {
  (void)ud;
  (void)net_stream_write(s, g_junk, BN_MIN(net_stream_send_room(s), sizeof g_junk));
}

static void test_stop_is_bounded_when_peer_is_dark(void **state) {
  (void)state;
  fx_t *f = fx_new(NULL, 60000); /* no keepalive verdict during the test */
  net_conn_t *c = dial_via(f);
  assert_int_equal(fault_proxy_blackhole(f->px, 1), 0);
  /* Queue far more than the dark path and the kernel buffers can hold
   * (64 streams x one 256 KiB window), then close gracefully. */
  net_stream_cbs_t more = {.on_writable = junk_writable};
  for (int k = 0; k < 64; k++) {
    net_stream_t *s;
    assert_ok(net_stream_open(c, TH_ECHO_PROTO, &more, NULL, &s));
    (void)net_stream_write(s, g_junk, sizeof g_junk);
  }
  /* Bounded: every turn moves at most one high mark into the kernel. */
  for (int i = 0; i < 2000 && f->p.t->ops->write_queued(c->sock) == 0; i++)
    uv_run(&f->p.loop, UV_RUN_NOWAIT);
  assert_true(f->p.t->ops->write_queued(c->sock) > 0); /* really stuck */
  bool done = false;
  uint64_t t0 = uv_hrtime();
  net_close(f->p.a.net, closed_cb, &done);
  assert_true(th_run_until(&f->p.loop, &done, 10000));
  double s_el = (double)(uv_hrtime() - t0) / 1e9;
  print_message("graceful close against a dark peer took %.2f s\n", s_el);
  assert_true(s_el >= 1.5); /* it did try to deliver what was queued... */
  assert_true(s_el < 5.0);  /* ...for a bounded time */
  fault_proxy_blackhole(f->px, 0);
  fx_free(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_blackhole_detected_by_ping),
      cmocka_unit_test(test_cut_closes_only_that_connection),
      cmocka_unit_test(test_tiny_segments),
      cmocka_unit_test(test_stop_is_bounded_when_peer_is_dark),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
