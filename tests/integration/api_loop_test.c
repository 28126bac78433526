/*
 * What loop callbacks and the application's loop may call, through the
 * public API (include/bftnet.h, "inside loop callbacks"):
 *  - inside on_event and on_message, on a node's own loop thread and on the
 *    application's loop, blocking calls fail at once with
 *    BFTNET_EINCALLBACK (no deadlock, no timeout); the non-blocking ones
 *    work;
 *  - bftnet_recv on a node with on_message says BFTNET_EONMESSAGE;
 *  - bftnet_flush on the application's loop, from its thread, turns the
 *    loop itself and returns 0 once every message is confirmed;
 *  - bftnet_free inside its own node's callback aborts (misuse);
 *  - nothing stays on the application's loop afterwards.
 * Invariants checked where messages flow: per sender, delivered messages
 * are an ordered subsequence of those sent (1), and a message is missing
 * only if the sender counted it dropped (2).
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "harness.h"

typedef struct node {
  bftnet_key_t *key;
  bftnet_t *net;
  char addr[BFTNET_ADDR_MAX];
  const char *addrs[1];
} node_t;

static node_t nodes[2];
static const char *const ids[2] = {"r0", "r1"};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void start(int i, bftnet_config_t *cfg) {
  assert_ok(bftnet_key_generate(&nodes[i].key));
  cfg->key = nodes[i].key;
  cfg->dial_backoff_min_ms = 20;
  cfg->dial_backoff_max_ms = 200;
  assert_ok(bftnet_new(&nodes[i].net, cfg));
  assert_ok(
      bftnet_listen(nodes[i].net, "/ip4/127.0.0.1/tcp/0", nodes[i].addr, sizeof nodes[i].addr));
  nodes[i].addrs[0] = nodes[i].addr;
}

static void stop(int i) {
  bftnet_free(nodes[i].net);
  bftnet_key_free(nodes[i].key);
  nodes[i].net = NULL;
}

static int connect_both(int i) {
  bftnet_member_t m[2] = {{ids[0], nodes[0].addrs, 1}, {ids[1], nodes[1].addrs, 1}};
  char err[256] = "";
  return bftnet_connect(nodes[i].net, m, 2, err, sizeof err);
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

/* ------------------------------------------------ what a callback may do */

/* Every call the header lists, from inside a callback of node b. */
typedef struct battery {
  int ran; /* atomic: 1 once done */
  int flush, flush0, dial, ping, listen, connect, stop, recv, recv0, send, stats;
  double seconds; /* the whole battery: nothing may wait */
} battery_t;

static void run_battery(battery_t *t, bftnet_t *b, const char *peer_addr, const char *to) {
  if (__atomic_load_n(&t->ran, __ATOMIC_ACQUIRE)) return;
  double t0 = now_s();
  uint64_t rtt;
  char bound[BFTNET_ADDR_MAX], err[128];
  bftnet_msg_t m;
  bftnet_member_t none[1];
  t->flush = bftnet_flush(b, 2000);
  t->flush0 = bftnet_flush(b, 0);
  t->dial = bftnet_dial(b, peer_addr, 2000, NULL, 0);
  t->ping = bftnet_ping(b, peer_addr, 2000, &rtt, NULL, 0);
  t->listen = bftnet_listen_ex(b, "/ip4/127.0.0.1/tcp/0", bound, sizeof bound, err, sizeof err);
  t->connect = bftnet_connect(b, none, 0, err, sizeof err);
  t->stop = bftnet_stop(b);
  t->recv = bftnet_recv(b, &m, 2000);
  t->recv0 = bftnet_recv(b, &m, 0);
  if (t->recv0 == 0) bftnet_msg_release(&m);
  uint8_t x[16];
  put_seq(x, 1, sizeof x);
  t->send = bftnet_send(b, to, x, sizeof x);
  bftnet_peer_stats_t st;
  t->stats = bftnet_peer_stats(b, to, &st);
  t->seconds = now_s() - t0;
  __atomic_store_n(&t->ran, 1, __ATOMIC_RELEASE);
}

static void wait_ran(battery_t *t) {
  for (int i = 0; i < 1000 && !__atomic_load_n(&t->ran, __ATOMIC_ACQUIRE); i++)
    usleep(10000);
  assert_int_equal(__atomic_load_n(&t->ran, __ATOMIC_ACQUIRE), 1);
}

static void assert_battery(const battery_t *t, int want_recv) {
  assert_err(t->flush, BFTNET_EINCALLBACK);
  assert_true(t->flush0 == 0 || t->flush0 == BFTNET_ETIMEDOUT); /* a look is allowed */
  assert_err(t->dial, BFTNET_EINCALLBACK);
  assert_err(t->ping, BFTNET_EINCALLBACK);
  assert_err(t->listen, BFTNET_EINCALLBACK);
  assert_err(t->connect, BFTNET_EINCALLBACK);
  assert_err(t->stop, BFTNET_EINCALLBACK);
  assert_err(t->recv, want_recv);
  assert_ok(t->send);
  assert_ok(t->stats);
  assert_true(t->seconds < 0.5); /* failed fast: no deadlock, no timeout */
}

static battery_t ev_bat, msg_bat;

static void ev_battery(const bftnet_event_t *ev, void *user) {
  (void)user;
  if (ev->type == BFTNET_EV_MEMBER_UP) run_battery(&ev_bat, nodes[0].net, nodes[1].addr, "r1");
}

static void msg_battery(const char *from, const uint8_t *data, size_t len, void *user) {
  (void)data, (void)len, (void)user;
  if (strcmp(from, "r0") == 0) run_battery(&msg_bat, nodes[1].net, nodes[0].addr, "r0");
}

static void test_callbacks_on_own_loop_thread(void **state) {
  (void)state;
  memset(&ev_bat, 0, sizeof ev_bat);
  memset(&msg_bat, 0, sizeof msg_bat);
  bftnet_config_t c0, c1;
  bftnet_config_init(&c0);
  c0.on_event = ev_battery;
  bftnet_config_init(&c1);
  c1.on_message = msg_battery;
  start(0, &c0);
  start(1, &c1);
  assert_ok(connect_both(0));
  assert_ok(connect_both(1));
  wait_ran(&ev_bat);
  assert_battery(&ev_bat, BFTNET_EINCALLBACK);
  assert_err(ev_bat.recv0, BFTNET_EAGAIN);
  uint8_t x[16];
  put_seq(x, 2, sizeof x);
  assert_ok(bftnet_send(nodes[0].net, "r1", x, sizeof x));
  wait_ran(&msg_bat);
  assert_battery(&msg_bat, BFTNET_EONMESSAGE); /* on_message mode says so before anything */
  assert_err(msg_bat.recv0, BFTNET_EONMESSAGE);
  bftnet_msg_t m;
  assert_err(bftnet_recv(nodes[1].net, &m, 0), BFTNET_EONMESSAGE);
  assert_err(bftnet_recv_batch(nodes[1].net, &m, 1, -1), BFTNET_EONMESSAGE);
  /* The refused bftnet_stop stopped nothing: both nodes still flush. */
  assert_ok(bftnet_flush(nodes[0].net, 5000));
  assert_ok(bftnet_flush(nodes[1].net, 5000));
  bftnet_peer_stats_t st;
  assert_ok(bftnet_peer_stats(nodes[1].net, "r0", &st));
  assert_true(st.delivered >= 2); /* the battery's send and ours */
  stop(0);
  stop(1);
}

/* --------------------------------------------- the application's loop */

static battery_t app_bat;

static void app_ev(const bftnet_event_t *ev, void *user) {
  (void)user;
  if (ev->type == BFTNET_EV_MEMBER_UP) run_battery(&app_bat, nodes[1].net, nodes[0].addr, "r0");
}

static void test_flush_on_application_loop(void **state) {
  (void)state;
  memset(&app_bat, 0, sizeof app_bat);
  uv_loop_t app;
  assert_int_equal(uv_loop_init(&app), 0);
  bftnet_config_t c0, c1;
  bftnet_config_init(&c0);
  bftnet_config_init(&c1);
  c1.loop = &app; /* r1 lives on this thread's loop */
  c1.on_event = app_ev;
  start(0, &c0);
  start(1, &c1);
  assert_ok(connect_both(0));
  assert_ok(connect_both(1)); /* turns `app` until applied */
  enum { N = 2000 };
  uint8_t buf[64];
  for (uint64_t s = 1; s <= N; s++) {
    put_seq(buf, s, sizeof buf);
    assert_ok(bftnet_send(nodes[1].net, "r0", buf, sizeof buf));
  }
  /* Nobody runs `app` but bftnet_flush itself. */
  double t0 = now_s();
  assert_ok(bftnet_flush(nodes[1].net, 20000));
  print_message("flush on the application's loop: %.3f s\n", now_s() - t0);
  bftnet_peer_stats_t st;
  assert_ok(bftnet_peer_stats(nodes[1].net, "r0", &st));
  assert_int_equal(st.unconfirmed, 0);
  assert_int_equal(st.ring_depth, 0);
  assert_ok(bftnet_flush(nodes[1].net, 0)); /* idle: a look says so */
  /* Every message arrived, in order (invariants 1 and 2). */
  uint64_t last = 0, got = 0;
  bftnet_msg_t m;
  while (got < N && bftnet_recv(nodes[0].net, &m, 5000) == 0) {
    if (strcmp(m.from, "r1") == 0) {
      uint64_t seq = get_seq(m.data);
      assert_true(seq > last);
      last = seq;
      got++;
    }
    bftnet_msg_release(&m);
  }
  assert_int_equal(got + st.dropped_overflow, N);
  assert_int_equal(st.dropped_overflow, 0);
  assert_int_equal(last, N);
  /* The callbacks on the application's loop refused the blocking calls. */
  wait_ran(&app_bat);
  assert_battery(&app_bat, BFTNET_EINCALLBACK);
  assert_ok(bftnet_stop(nodes[1].net)); /* outside a callback: allowed */
  assert_err(bftnet_flush(nodes[1].net, 100), BFTNET_ECLOSED);
  stop(1);
  stop(0);
  for (int i = 0; i < 20; i++)
    uv_run(&app, UV_RUN_NOWAIT);
  assert_int_equal(uv_loop_close(&app), 0); /* nothing left on the application's loop */
}

/* A failed bftnet_new leaves nothing on the application's loop. */
static void test_failed_new_leaves_app_loop_clean(void **state) {
  (void)state;
  uv_loop_t app;
  assert_int_equal(uv_loop_init(&app), 0);
  bftnet_key_t *k;
  assert_ok(bftnet_key_generate(&k));
  bftnet_config_t c;
  bftnet_config_init(&c);
  c.key = k;
  c.loop = &app;
  c.max_message_size = 0;
  bftnet_t *n = NULL;
  char err[128];
  assert_err(bftnet_new_ex(&n, &c, err, sizeof err), BFTNET_EINVAL);
  assert_null(n);
  assert_int_equal(uv_loop_close(&app), 0);
  bftnet_key_free(k);
}

/* ------------------------------------------------------------ misuse */

static void free_inside(const bftnet_event_t *ev, void *user) {
  (void)user;
  if (ev->type == BFTNET_EV_MEMBER_ADDED) bftnet_free(nodes[0].net);
}

static void test_free_inside_callback_aborts(void **state) {
  (void)state;
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) dup2(devnull, 2);
    bftnet_config_t c0, c1;
    bftnet_config_init(&c0);
    c0.on_event = free_inside;
    bftnet_config_init(&c1);
    start(0, &c0);
    start(1, &c1);
    connect_both(0);
    sleep(5);
    _exit(0); /* not reached: the callback aborted */
  }
  int st = 0;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFSIGNALED(st));
  assert_int_equal(WTERMSIG(st), SIGABRT);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN); /* the application's loop: its owner ignores SIGPIPE */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_callbacks_on_own_loop_thread),
      cmocka_unit_test(test_flush_on_application_loop),
      cmocka_unit_test(test_failed_new_leaves_app_loop_clean),
      cmocka_unit_test(test_free_inside_callback_aborts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
