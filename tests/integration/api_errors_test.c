/*
 * Errors that say what to fix, through the public API only:
 *  - bftnet_new_ex names the config field, its value and the rule;
 *  - bftnet_listen_ex / bftnet_dial_ex name the multiaddr component and why,
 *    the caller's buffer, or what the network said;
 *  - a caller's output buffer that is too small is BFTNET_EBUFSIZE (not
 *    ETOOBIG), and a listen that fails on it leaves nothing bound;
 *  - log_level is per node, and on_log receives the node's lines.
 */
#include <fcntl.h>
#include <unistd.h>

#include "harness.h"

static bftnet_key_t *g_key;

static int setup(void **state) {
  (void)state;
  return bftnet_key_generate(&g_key);
}

static int teardown(void **state) {
  (void)state;
  bftnet_key_free(g_key);
  return 0;
}

static void cfg_base(bftnet_config_t *c) {
  bftnet_config_init(c);
  c->key = g_key;
}

/* Asserts that `got` contains `want`, printing both otherwise. */
#define assert_has(got, want)                                                                      \
  do {                                                                                             \
    if (!strstr((got), (want))) fail_msg("error text '%s' lacks '%s'", (got), (want));             \
  } while (0)

/* ------------------------------------------------------------ bftnet_new */

static void no_key(bftnet_config_t *c) {
  c->key = NULL;
}
static void ring_1000(bftnet_config_t *c) {
  c->ring_capacity = 1000;
}
static void ring_2(bftnet_config_t *c) {
  c->ring_capacity = 2;
}
static void inbound_3(bftnet_config_t *c) {
  c->inbound_max_msgs = 3;
}
static void msg_0(bftnet_config_t *c) {
  c->max_message_size = 0;
}
static void msg_huge(bftnet_config_t *c) {
  c->max_message_size = 64u * 1024 * 1024 + 1;
}
static void window_small(bftnet_config_t *c) {
  c->yamux_window = 1000;
}
static void streams_0(bftnet_config_t *c) {
  c->yamux_max_streams = 0;
}
static void ping_0(bftnet_config_t *c) {
  c->ping_interval_ms = 0;
}
static void pong_0(bftnet_config_t *c) {
  c->ping_timeout_ms = 0;
}
static void hs_0(bftnet_config_t *c) {
  c->handshake_timeout_ms = 0;
}
static void conns_0(bftnet_config_t *c) {
  c->max_connections = 0;
}
static void pending_0(bftnet_config_t *c) {
  c->max_pending_handshakes = 0;
}
static void backoff_min_0(bftnet_config_t *c) {
  c->dial_backoff_min_ms = 0;
}
static void backoff_inverted(bftnet_config_t *c) {
  c->dial_backoff_min_ms = 500;
  c->dial_backoff_max_ms = 100;
}
static void tent_many(bftnet_config_t *c) {
  c->tentative_max = 5000;
}
static void inbytes_0(bftnet_config_t *c) {
  c->inbound_max_bytes = 0;
}
static void rate_0(bftnet_config_t *c) {
  c->tentative_rate = 0;
}
static void detach_0(bftnet_config_t *c) {
  c->detach_timeout_ms = 0;
}
static void failback_0(bftnet_config_t *c) {
  c->failback_ms = 0;
}
static void busy_big(bftnet_config_t *c) {
  c->busy_poll_us = 2000000;
}

static const struct {
  void (*apply)(bftnet_config_t *c);
  const char *text;
} bad_cfgs[] = {
    {no_key, "key: required"},
    {ring_1000, "ring_capacity=1000: not a power of 2 in [4, 2^24]"},
    {ring_2, "ring_capacity=2: not a power of 2 in [4, 2^24]"},
    {inbound_3, "inbound_max_msgs=3: not a power of 2 in [4, 2^24]"},
    {msg_0, "max_message_size=0: not in [1, 67108864]"},
    {msg_huge, "max_message_size=67108865: not in [1, 67108864]"},
    {window_small, "yamux_window=1000: not in [262144, 16777216]"},
    {streams_0, "yamux_max_streams=0: not in [1, 65536]"},
    {ping_0, "ping_interval_ms=0: must be at least 1"},
    {pong_0, "ping_timeout_ms=0: must be at least 1"},
    {hs_0, "handshake_timeout_ms=0: must be at least 1"},
    {conns_0, "max_connections=0: must be at least 1"},
    {pending_0, "max_pending_handshakes=0: must be at least 1"},
    {backoff_min_0, "dial_backoff_min_ms=0: must be at least 1"},
    {backoff_inverted, "dial_backoff_max_ms=100: below dial_backoff_min_ms=500"},
    {tent_many, "tentative_max=5000: above 4096"},
    {inbytes_0, "inbound_max_bytes=0: must be at least 1"},
    {rate_0, "tentative_rate=0: must be at least 1 while tentative_max=16"},
    {detach_0, "detach_timeout_ms=0: must be at least 1"},
    {failback_0, "failback_ms=0: must be at least 1"},
    {busy_big, "busy_poll_us=2000000: above 1000000 (1 s)"},
};

static void test_new_ex_names_the_field(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof bad_cfgs / sizeof bad_cfgs[0]; i++) {
    bftnet_config_t c;
    cfg_base(&c);
    bad_cfgs[i].apply(&c);
    char err[256] = "untouched";
    bftnet_t *n = (bftnet_t *)&c; /* must come back NULL */
    assert_err(bftnet_new_ex(&n, &c, err, sizeof err), BFTNET_EINVAL);
    assert_null(n);
    assert_has(err, bad_cfgs[i].text);
    /* The plain form: the same code, and no text anywhere. */
    assert_err(bftnet_new(&n, &c), BFTNET_EINVAL);
    assert_null(n);
  }
  /* A text longer than errcap is cut, NUL-terminated. */
  bftnet_config_t c;
  cfg_base(&c);
  c.ring_capacity = 1000;
  char small[8];
  bftnet_t *n = NULL;
  assert_err(bftnet_new_ex(&n, &c, small, sizeof small), BFTNET_EINVAL);
  assert_string_equal(small, "ring_ca");
  assert_err(bftnet_new_ex(&n, &c, NULL, 0), BFTNET_EINVAL);
  assert_err(bftnet_new_ex(NULL, &c, small, sizeof small), BFTNET_EINVAL);
  /* Success clears it. */
  cfg_base(&c);
  char err[64] = "stale";
  assert_ok(bftnet_new_ex(&n, &c, err, sizeof err));
  assert_string_equal(err, "");
  bftnet_free(n);
}

/* ------------------------------------------------- listen, dial, buffers */

static const struct {
  const char *maddr;
  const char *text;
} bad_addrs[] = {
    {"/ip4/127.0.0.1/tcp/99999", "bad port '99999'"},
    {"/ip4/127.0.0.1/tcp/-1", "bad port '-1'"},
    {"/ip4//tcp/1", "empty component"},
    {"ip4/127.0.0.1/tcp/1", "multiaddr must start with '/'"},
    {"", "empty multiaddr"},
    {"/dns4/example.com/tcp/1", "unsupported protocol 'dns4'"},
    {"/ip4/300.1.1.1/tcp/1", "bad ip4 address '300.1.1.1'"},
    {"/ip4/127.0.0.1", "missing '/tcp'"},
    {"/ip4/127.0.0.1/tcp", "missing value after '/tcp'"},
    {"/ip4/127.0.0.1/udp/1", "unsupported protocol 'udp'"},
    {"/ip4/127.0.0.1/tcp/1/ip4/1.2.3.4", "unexpected '/ip4' (expected /p2p or the end)"},
    {"/ip4/127.0.0.1/tcp/1/p2p/notapeer", "bad peer ID 'notapeer'"},
};

static void test_listen_and_dial_name_the_component(void **state) {
  (void)state;
  bftnet_config_t c;
  cfg_base(&c);
  bftnet_t *n;
  assert_ok(bftnet_new(&n, &c));
  for (size_t i = 0; i < sizeof bad_addrs / sizeof bad_addrs[0]; i++) {
    char err[256] = "untouched", bound[BFTNET_ADDR_MAX], peer[BFTNET_PEER_ID_MAX];
    assert_err(bftnet_listen_ex(n, bad_addrs[i].maddr, bound, sizeof bound, err, sizeof err),
               BFTNET_EBADADDR);
    assert_has(err, bad_addrs[i].text);
    assert_has(err, "multiaddr '");
    snprintf(err, sizeof err, "untouched");
    assert_err(bftnet_dial_ex(n, bad_addrs[i].maddr, 100, peer, sizeof peer, err, sizeof err),
               BFTNET_EBADADDR);
    assert_has(err, bad_addrs[i].text);
    /* The plain forms: the same codes. */
    assert_err(bftnet_listen(n, bad_addrs[i].maddr, bound, sizeof bound), BFTNET_EBADADDR);
    assert_err(bftnet_dial(n, bad_addrs[i].maddr, 100, peer, sizeof peer), BFTNET_EBADADDR);
  }
  /* Listening on another node's peer ID. */
  bftnet_key_t *other;
  assert_ok(bftnet_key_generate(&other));
  char oid[BFTNET_PEER_ID_MAX], maddr[256], err[256];
  assert_ok(bftnet_key_peer_id(other, oid, sizeof oid));
  snprintf(maddr, sizeof maddr, "/ip4/127.0.0.1/tcp/0/p2p/%s", oid);
  assert_err(bftnet_listen_ex(n, maddr, NULL, 0, err, sizeof err), BFTNET_EPEERMISMATCH);
  assert_has(err, "its /p2p is not this node's peer ID");
  /* A dial that reaches the network: refused, and the wrong peer. */
  bftnet_t *m;
  assert_ok(bftnet_new(&m, &c));
  char mb[BFTNET_ADDR_MAX];
  assert_ok(bftnet_listen(m, "/ip4/127.0.0.1/tcp/0", mb, sizeof mb));
  char *p2p = strstr(mb, "/p2p/");
  assert_non_null(p2p);
  snprintf(maddr, sizeof maddr, "%.*s/p2p/%s", (int)(p2p - mb), mb, oid);
  char peer[BFTNET_PEER_ID_MAX];
  assert_err(bftnet_dial_ex(n, maddr, 5000, peer, sizeof peer, err, sizeof err),
             BFTNET_EPEERMISMATCH);
  assert_has(err, "the peer there has another peer ID");
  bftnet_free(m); /* its port is closed now */
  assert_true(bftnet_dial_ex(n, mb, 5000, peer, sizeof peer, err, sizeof err) < 0);
  assert_has(err, "dial '/ip4/127.0.0.1/tcp/");
  bftnet_key_free(other);
  bftnet_free(n);
}

static void test_small_buffers(void **state) {
  (void)state;
  assert_true(BFTNET_EBUFSIZE != BFTNET_ETOOBIG);
  assert_string_equal(bftnet_err_name(BFTNET_EBUFSIZE), "BFTNET_EBUFSIZE");
  assert_string_equal(bftnet_strerror(BFTNET_EBUFSIZE), "output buffer too small");
  bftnet_config_t c;
  cfg_base(&c);
  bftnet_t *n, *m;
  assert_ok(bftnet_new(&n, &c));
  bftnet_key_t *k2;
  assert_ok(bftnet_key_generate(&k2));
  c.key = k2;
  assert_ok(bftnet_new(&m, &c));
  char id[BFTNET_PEER_ID_MAX], tiny[10] = "x", err[256];
  assert_err(bftnet_peer_id(n, tiny, sizeof tiny), BFTNET_EBUFSIZE);
  assert_string_equal(tiny, ""); /* never a partial ID */
  assert_err(bftnet_key_peer_id(g_key, tiny, sizeof tiny), BFTNET_EBUFSIZE);
  assert_ok(bftnet_peer_id(n, id, sizeof id));
  assert_int_equal(strlen(id) + 1, 53); /* an Ed25519 ID: exactly this many bytes fit */
  assert_ok(bftnet_key_peer_id(g_key, id, strlen(id) + 1));
  assert_err(bftnet_key_peer_id(g_key, id, strlen(id)), BFTNET_EBUFSIZE);
  /* bftnet_listen: a bound too small, and cap 0 with a buffer. */
  assert_err(bftnet_listen_ex(n, "/ip4/127.0.0.1/tcp/0", tiny, sizeof tiny, err, sizeof err),
             BFTNET_EBUFSIZE);
  assert_has(err, "bound: cap=10 too small");
  assert_err(bftnet_listen(n, "/ip4/127.0.0.1/tcp/0", tiny, 0), BFTNET_EBUFSIZE);
  /* bftnet_dial: peer_out is checked before anything is dialed. */
  char mb[BFTNET_ADDR_MAX];
  assert_ok(bftnet_listen(m, "/ip4/127.0.0.1/tcp/0", mb, sizeof mb));
  assert_err(bftnet_dial_ex(n, mb, 5000, tiny, sizeof tiny, err, sizeof err), BFTNET_EBUFSIZE);
  assert_has(err, "peer_out: cap=10, needs BFTNET_PEER_ID_MAX (64) bytes");
  assert_int_equal(bftnet_counter(n, BFTNET_COUNTER_CONN_OUTBOUND), 0); /* nothing was dialed */
  uint64_t rtt;
  assert_err(bftnet_ping(n, mb, 5000, &rtt, tiny, sizeof tiny), BFTNET_EBUFSIZE);
  assert_ok(bftnet_dial(n, mb, 5000, id, sizeof id));
  bftnet_free(m);
  bftnet_free(n);
  bftnet_key_free(k2);
}

/* The port of a bound multiaddr /ip4/A/tcp/PORT/p2p/ID. */
static unsigned port_of(const char *maddr) {
  const char *t = strstr(maddr, "/tcp/");
  return t ? (unsigned)strtoul(t + 5, NULL, 10) : 0;
}

static void test_failed_listen_leaves_nothing_bound(void **state) {
  (void)state;
  bftnet_config_t c;
  cfg_base(&c);
  bftnet_t *n;
  /* A port that was free a moment ago. */
  assert_ok(bftnet_new(&n, &c));
  char bound[BFTNET_ADDR_MAX];
  assert_ok(bftnet_listen(n, "/ip4/127.0.0.1/tcp/0", bound, sizeof bound));
  unsigned port = port_of(bound);
  assert_true(port > 0);
  bftnet_free(n);
  assert_ok(bftnet_new(&n, &c));
  char want[64], small[20], err[256];
  snprintf(want, sizeof want, "/ip4/127.0.0.1/tcp/%u", port);
  for (int i = 0; i < 3; i++) { /* every failure leaves the port free */
    assert_err(bftnet_listen_ex(n, want, small, sizeof small, err, sizeof err), BFTNET_EBUFSIZE);
    assert_has(err, "bound: cap=20 too small");
  }
  /* The retry binds the same port: no EADDRINUSE. */
  assert_ok(bftnet_listen_ex(n, want, bound, sizeof bound, err, sizeof err));
  assert_int_equal(port_of(bound), port);
  assert_string_equal(err, "");
  /* And a second listen there is refused by the OS, with its reason. */
  assert_err(bftnet_listen_ex(n, want, bound, sizeof bound, err, sizeof err), -98 /* EADDRINUSE */);
  assert_has(err, "listen on '/ip4/127.0.0.1/tcp/");
  bftnet_free(n);
}

/* ------------------------------------------------------------------ logs */

typedef struct logs {
  int n;
  int level;
  char last[512];
} logs_t;

static void on_log(int level, const char *msg, void *user) {
  logs_t *l = user;
  l->n++;
  l->level = level;
  snprintf(l->last, sizeof l->last, "%s", msg);
}

static void test_log_level_per_node_and_callback(void **state) {
  (void)state;
  static logs_t la, lb;
  memset(&la, 0, sizeof la);
  memset(&lb, 0, sizeof lb);
  bftnet_config_t ca, cb;
  cfg_base(&ca);
  ca.log_level = 3; /* info: multiaddr errors are logged there */
  ca.on_log = on_log;
  ca.user = &la;
  cfg_base(&cb);
  cb.log_level = 0; /* a second node, quiet, created after the first */
  cb.on_log = on_log;
  cb.user = &lb;
  bftnet_t *a, *b;
  assert_ok(bftnet_new(&a, &ca));
  assert_ok(bftnet_new(&b, &cb));
  char bound[BFTNET_ADDR_MAX];
  assert_err(bftnet_listen(a, "/ip4/127.0.0.1/tcp/99999", bound, sizeof bound), BFTNET_EBADADDR);
  assert_err(bftnet_listen(b, "/ip4/127.0.0.1/tcp/99999", bound, sizeof bound), BFTNET_EBADADDR);
  assert_int_equal(la.n, 1); /* the quiet node did not silence the first */
  assert_int_equal(la.level, 3);
  assert_string_equal(la.last, "multiaddr '/ip4/127.0.0.1/tcp/99999': bad port '99999'");
  assert_int_equal(lb.n, 0);
  bftnet_free(b);
  /* Without on_log: stderr, as "bftnet info: ...". */
  fflush(stderr);
  char path[] = "/tmp/bftnet-log-XXXXXX";
  int fd = mkstemp(path), saved = dup(2);
  assert_true(fd >= 0 && saved >= 0);
  ca.on_log = NULL;
  bftnet_t *s;
  assert_ok(bftnet_new(&s, &ca));
  dup2(fd, 2);
  assert_err(bftnet_listen(s, "/ip4//tcp/1", bound, sizeof bound), BFTNET_EBADADDR);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  char text[512] = "";
  ssize_t k = pread(fd, text, sizeof text - 1, 0);
  close(fd);
  unlink(path);
  assert_true(k > 0);
  assert_has(text, "bftnet info: multiaddr '/ip4//tcp/1': empty component\n");
  assert_int_equal(la.n, 1); /* not the callback of the node that shares `user` */
  bftnet_free(s);
  bftnet_free(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_new_ex_names_the_field),
      cmocka_unit_test(test_listen_and_dial_name_the_component),
      cmocka_unit_test(test_small_buffers),
      cmocka_unit_test(test_failed_listen_leaves_nothing_bound),
      cmocka_unit_test(test_log_level_per_node_and_callback),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
