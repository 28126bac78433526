/*
 * net_goaway_test.c — every normal close of a connection sends yamux
 * GO_AWAY with code 0 (normal termination) before the TCP connection goes,
 * and no other close does (PROTOCOL.md §5.4). Two real nodes on 127.0.0.1,
 * one libuv loop; node B reads the frames A sends: its yamux sessions report
 * every GO_AWAY (the test's hook on B's session callbacks), and the test
 * checks that it came, with which code, and that it came before B saw the
 * connection end.
 */
#include <stdlib.h>

#include "harness.h"
#include "net_internal.h"
#include "th_net.h"

typedef th_pair_t fx_t;

/* What B's sessions read (one connection at a time in these tests). */
static struct {
  int goaways;
  uint32_t code;
  bool goaway_before_down; /* the GO_AWAY was read while the connection was up */
  int downs;
  bftnet_reason_t down_reason;
} B;

static void b_goaway(void *ud, uint32_t code) {
  (void)ud;
  B.goaways++;
  B.code = code;
  if (B.downs == 0) B.goaway_before_down = true;
}

static void b_down(void *ud, net_conn_t *c, bftnet_reason_t reason, int err) {
  (void)ud;
  (void)c;
  (void)err;
  B.downs++;
  B.down_reason = reason;
}

static int setup(void **state) {
  memset(&B, 0, sizeof B);
  th_pair_setup(state);
  fx_t *f = *state;
  /* B's sessions report GO_AWAY to the test (copied into each session at
   * its start), and B's connection events too. */
  f->b.net->hooks.ymx.on_goaway = b_goaway;
  f->b.net->cbs.on_conn_down = b_down;
  return 0;
}

static net_conn_t *connect_ab(fx_t *f) {
  int err;
  net_conn_t *c = th_dial(&f->loop, f->a.net, f->b.addr, &err, 10000);
  if (!c) fail_msg("dial: %s", bftnet_strerror(err));
  /* B sees it up too (its on_conn_up ran) before anything is closed. */
  for (int i = 0; i < 200 && !net_find_conn(f->b.net, net_local_id(f->a.net)); i++)
    uv_run(&f->loop, UV_RUN_ONCE);
  assert_non_null(net_find_conn(f->b.net, net_local_id(f->a.net)));
  return c;
}

static bool b_down_seen(void *arg) {
  (void)arg;
  return B.downs > 0;
}

/* A closes its connection to B for `reason`: B must see the end, and a
 * GO_AWAY (code 0) first exactly when the close is a normal one. */
static void close_and_check(fx_t *f, bftnet_reason_t reason, bool want_goaway) {
  net_conn_t *c = connect_ab(f);
  net_conn_close(c, reason, reason == BFTNET_REASON_PROTOCOL_ERROR ? BFTNET_EPROTO : 0);
  assert_true(th_run_until_fn(&f->loop, b_down_seen, NULL, 5000));
  if (want_goaway) {
    assert_int_equal(B.goaways, 1);
    assert_int_equal(B.code, YAMUX_GOAWAY_NORMAL);
    assert_true(B.goaway_before_down);
    assert_int_equal(B.down_reason, BFTNET_REASON_CLOSED_BY_PEER); /* then a clean EOF */
  } else {
    assert_int_equal(B.goaways, 0);
  }
}

static void test_local_close_sends_goaway(void **state) {
  close_and_check(*state, BFTNET_REASON_LOCAL_CLOSE, true);
}

static void test_duplicate_close_sends_goaway(void **state) {
  close_and_check(*state, BFTNET_REASON_DUPLICATE, true);
}

static void test_violation_close_sends_no_goaway(void **state) {
  close_and_check(*state, BFTNET_REASON_PROTOCOL_ERROR, false);
}

static void test_limit_close_sends_no_goaway(void **state) {
  close_and_check(*state, BFTNET_REASON_LIMIT, false);
}

static void closed_cb(void *ud) {
  *(bool *)ud = true;
}

/* net_close (what bftnet_stop and bftnet_free run): every connection gets
 * its GO_AWAY. */
static void test_net_close_sends_goaway(void **state) {
  fx_t *f = *state;
  (void)connect_ab(f);
  bool closed = false;
  net_close(f->a.net, closed_cb, &closed);
  assert_true(th_run_until_fn(&f->loop, b_down_seen, NULL, 5000));
  assert_true(th_run_until(&f->loop, &closed, 5000));
  assert_int_equal(B.goaways, 1);
  assert_int_equal(B.code, YAMUX_GOAWAY_NORMAL);
  assert_true(B.goaway_before_down);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_local_close_sends_goaway, setup, th_pair_teardown),
      cmocka_unit_test_setup_teardown(test_duplicate_close_sends_goaway, setup, th_pair_teardown),
      cmocka_unit_test_setup_teardown(test_violation_close_sends_no_goaway, setup,
                                      th_pair_teardown),
      cmocka_unit_test_setup_teardown(test_limit_close_sends_no_goaway, setup, th_pair_teardown),
      cmocka_unit_test_setup_teardown(test_net_close_sends_goaway, setup, th_pair_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
