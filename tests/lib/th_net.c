#include <signal.h>
#include <stdlib.h>

#include "harness.h"
#include "th_net.h"

void th_net_config(net_config_t *cfg) {
  *cfg = (net_config_t){.ping_interval_ms = 1000,
                        .ping_timeout_ms = 3000,
                        .handshake_timeout_ms = 3000,
                        .yamux_window = 256 * 1024,
                        .yamux_max_streams = 512,
                        .max_connections = 256,
                        .max_pending_handshakes = 32};
}

/* ----------------------------------------------------------- echo server */

typedef struct echo_srv {
  bn_buf_t pending;
  bool fin;
} echo_srv_t;

static void srv_pump(echo_srv_t *e, net_stream_t *s) {
  while (bn_buf_unread(&e->pending)) {
    int n = net_stream_write(s, bn_buf_head(&e->pending), bn_buf_unread(&e->pending));
    if (n <= 0) return;
    bn_buf_consume(&e->pending, (size_t)n);
    net_stream_consume(s, (size_t)n); /* credit only what we echoed: bounded memory */
  }
  if (e->fin) {
    e->fin = false;
    net_stream_close(s);
  }
}

static void srv_data(void *ud, net_stream_t *s, const uint8_t *p, size_t n) {
  echo_srv_t *e = ud;
  if (bn_buf_append(&e->pending, p, n) != 0) abort();
  srv_pump(e, s);
}
static void srv_fin(void *ud, net_stream_t *s) {
  echo_srv_t *e = ud;
  e->fin = true;
  srv_pump(e, s);
}
static void srv_writable(void *ud, net_stream_t *s) {
  srv_pump(ud, s);
}
static void srv_free(void *ud, net_stream_t *s) {
  (void)s;
  echo_srv_t *e = ud;
  bn_buf_free(&e->pending);
  free(e);
}

static const net_stream_cbs_t srv_cbs = {
    .on_data = srv_data, .on_fin = srv_fin, .on_writable = srv_writable, .on_free = srv_free};

static int echo_open(void *ud, net_conn_t *c, net_stream_t *s) {
  (void)ud;
  (void)c;
  echo_srv_t *e = calloc(1, sizeof *e);
  if (!e) return BFTNET_ENOMEM;
  net_stream_set_cbs(s, &srv_cbs, e);
  return 0;
}

/* ----------------------------------------------------------- echo client */

static void cli_pump(th_echo_client_t *ec) {
  while (ec->sent < ec->len) {
    size_t chunk = BN_MIN(ec->len - ec->sent, 64 * 1024);
    int n = net_stream_write(ec->s, ec->data + ec->sent, chunk);
    if (n < 0) {
      ec->err = n;
      ec->done = true;
      return;
    }
    if (n == 0) return;
    ec->sent += (size_t)n;
  }
  if (!ec->fin_sent) {
    ec->fin_sent = true;
    net_stream_close(ec->s);
  }
}

static void cli_ready(void *ud, net_stream_t *s) {
  (void)s;
  ((th_echo_client_t *)ud)->ready = true;
}
static void cli_data(void *ud, net_stream_t *s, const uint8_t *p, size_t n) {
  th_echo_client_t *ec = ud;
  if (ec->recvd + n > ec->len) {
    ec->mismatch = true;
    n = ec->len - ec->recvd;
  }
  memcpy(ec->got + ec->recvd, p, n);
  ec->recvd += n;
  net_stream_consume(s, n);
}
static void cli_fin(void *ud, net_stream_t *s) {
  (void)s;
  th_echo_client_t *ec = ud;
  if (ec->recvd != ec->len || memcmp(ec->got, ec->data, ec->len) != 0) ec->mismatch = true;
  ec->done = true;
}
static void cli_error(void *ud, net_stream_t *s, int err) {
  (void)s;
  th_echo_client_t *ec = ud;
  ec->err = err;
  ec->done = true;
}
static void cli_writable(void *ud, net_stream_t *s) {
  (void)s;
  cli_pump(ud);
}
static void cli_free(void *ud, net_stream_t *s) {
  (void)s;
  th_echo_client_t *ec = ud;
  ec->s = NULL;
  free(ec->got);
  ec->got = NULL;
}

static const net_stream_cbs_t cli_cbs = {.on_ready = cli_ready,
                                         .on_data = cli_data,
                                         .on_fin = cli_fin,
                                         .on_error = cli_error,
                                         .on_writable = cli_writable,
                                         .on_free = cli_free};

int th_echo_start(net_conn_t *c, th_echo_client_t *ec, const uint8_t *data, size_t len) {
  memset(ec, 0, sizeof *ec);
  ec->data = data;
  ec->len = len;
  ec->got = malloc(len ? len : 1);
  if (!ec->got) return BFTNET_ENOMEM;
  int rc = net_stream_open(c, TH_ECHO_PROTO, &cli_cbs, ec, &ec->s);
  if (rc < 0) {
    free(ec->got);
    ec->got = NULL;
    return rc;
  }
  cli_pump(ec);
  return 0;
}

/* ----------------------------------------------------------------- nodes */

static void node_up(void *ud, net_conn_t *c) {
  (void)c;
  ((th_node_t *)ud)->ups++;
}
static void node_down(void *ud, net_conn_t *c, bftnet_reason_t reason, int err) {
  (void)c;
  (void)err;
  th_node_t *n = ud;
  n->downs++;
  n->last_reason = reason;
}

int th_node_init(th_node_t *node, bn_transport_t *t, const net_config_t *cfg, bool listen) {
  /* net on the test's own loop: a write to a socket the peer closed (a
   * GO_AWAY on a normal close, say) must not kill the test (bftnet's own
   * loop thread blocks SIGPIPE; an application's loop ignores it). */
  signal(SIGPIPE, SIG_IGN);
  memset(node, 0, sizeof *node);
  int rc = bftnet_key_generate(&node->key);
  if (rc) return rc;
  bftnet_key_peer_id(node->key, node->id, sizeof node->id);
  net_cbs_t cbs = {.on_conn_up = node_up, .on_conn_down = node_down};
  rc = net_new(&node->net, t, node->key, cfg, &cbs, node, &node->ctr);
  if (rc) return rc;
  rc = net_handle(node->net, TH_ECHO_PROTO, echo_open, NULL);
  if (rc) return rc;
  if (listen) {
    maddr_t m;
    char err[64];
    rc = maddr_parse("/ip4/127.0.0.1/tcp/0", &m, err, sizeof err);
    if (rc == 0) rc = net_listen(node->net, &m, node->addr, sizeof node->addr);
  }
  return rc;
}

static void node_closed(void *ud) {
  (void)ud;
}

void th_node_close(th_node_t *node) {
  /* The caller's loop runs the close callbacks (th_loop_finish). */
  net_close(node->net, node_closed, NULL);
}

void th_node_free(th_node_t *node) {
  net_free(node->net);
  bftnet_key_free(node->key);
  node->net = NULL;
  node->key = NULL;
}

/* ----------------------------------------------------------------- pairs */

int th_pair_init(th_pair_t *p, const net_config_t *cfg_a, const net_config_t *cfg_b) {
  memset(p, 0, sizeof *p);
  net_config_t def;
  th_net_config(&def);
  int rc = uv_loop_init(&p->loop);
  if (rc == 0) rc = net_transport_uv_new(&p->loop, bn_seam_system(), &p->t);
  if (rc == 0) rc = th_node_init(&p->a, p->t, cfg_a ? cfg_a : &def, true);
  if (rc == 0) rc = th_node_init(&p->b, p->t, cfg_b ? cfg_b : &def, true);
  return rc;
}

int th_pair_finish(th_pair_t *p) {
  th_node_close(&p->a);
  th_node_close(&p->b);
  for (int i = 0; i < 50; i++)
    uv_run(&p->loop, UV_RUN_NOWAIT);
  net_transport_uv_free(p->t);
  int rc = th_loop_finish(&p->loop);
  th_node_free(&p->a);
  th_node_free(&p->b);
  return rc;
}

int th_pair_setup(void **state) {
  th_pair_t *p = calloc(1, sizeof *p);
  assert_non_null(p);
  assert_ok(th_pair_init(p, NULL, NULL));
  *state = p;
  return 0;
}

int th_pair_teardown(void **state) {
  th_pair_t *p = *state;
  assert_int_equal(th_pair_finish(p), 0); /* every handle closed cleanly */
  free(p);
  return 0;
}

/* ------------------------------------------------------------------ loop */

static void until_timeout(uv_timer_t *t) {
  *(bool *)t->data = true;
}

bool th_run_until_fn(uv_loop_t *loop, bool (*pred)(void *), void *arg, uint64_t timeout_ms) {
  bool timed_out = false;
  uv_timer_t timer; /* bounds the wait, and wakes the loop to re-check */
  uv_timer_init(loop, &timer);
  timer.data = &timed_out;
  uv_timer_start(&timer, until_timeout, timeout_ms, 0);
  while (!pred(arg) && !timed_out)
    uv_run(loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&timer, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  return pred(arg);
}

static bool flag_pred(void *arg) {
  return *(volatile bool *)arg;
}

bool th_run_until(uv_loop_t *loop, volatile bool *flag, uint64_t timeout_ms) {
  return th_run_until_fn(loop, flag_pred, (void *)flag, timeout_ms);
}

static void close_any(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

int th_loop_finish(uv_loop_t *loop) {
  /* Let pending close callbacks run first (they free their memory). */
  for (int i = 0; i < 100; i++)
    uv_run(loop, UV_RUN_NOWAIT);
  int rc = uv_loop_close(loop);
  if (rc == UV_EBUSY) {
    uv_walk(loop, close_any, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(loop) == 0 ? UV_EBUSY : -1; /* leftover handles = not clean */
  }
  return rc;
}

/* ------------------------------------------------------------------ dial */

typedef struct dial_wait {
  bool done;
  int err;
  net_conn_t *c;
} dial_wait_t;

static void dial_cb(void *ud, net_conn_t *c, int err) {
  dial_wait_t *w = ud;
  w->c = c;
  w->err = err;
  w->done = true;
}

net_conn_t *th_dial(uv_loop_t *loop, net_t *n, const char *addr, int *err, uint64_t timeout_ms) {
  maddr_t m;
  char e[128];
  int rc = maddr_parse(addr, &m, e, sizeof e);
  if (rc < 0) {
    *err = rc;
    return NULL;
  }
  dial_wait_t w = {0};
  rc = net_dial(n, &m, dial_cb, &w);
  if (rc < 0) {
    *err = rc;
    return NULL;
  }
  if (!th_run_until(loop, &w.done, timeout_ms)) {
    *err = BFTNET_ETIMEDOUT;
    return NULL;
  }
  *err = w.err;
  return w.c;
}

/* ------------------------------------------------------------------ ping */

typedef struct ping_wait {
  bool done;
  int err;
  uint64_t rtt;
} ping_wait_t;

static void ping_cb(void *ud, uint64_t rtt, int err) {
  ping_wait_t *w = ud;
  w->rtt = rtt;
  w->err = err;
  w->done = true;
}

int th_ping(uv_loop_t *loop, net_conn_t *c, uint64_t *rtt_ns, uint64_t timeout_ms) {
  ping_wait_t w = {0};
  int rc = net_conn_ping(c, ping_cb, &w);
  if (rc < 0) return rc;
  /* The wait lives on this stack: a ping outliving it would write into
   * freed memory, so the connection's ping timeout must be shorter. */
  if (!th_run_until(loop, &w.done, timeout_ms)) return BFTNET_ETIMEDOUT;
  if (rtt_ns) *rtt_ns = w.rtt;
  return w.err;
}
