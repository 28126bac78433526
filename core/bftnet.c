/*
 * bftnet.c — the public facade: a node = a loop thread (or the
 * application's loop) + the transport + net. Application threads never
 * touch loop-owned state: each public call becomes a command that runs on
 * the loop thread (uv_async), and the caller waits for its completion.
 */
#include <stdio.h>
#include <stdlib.h>

#include <uv.h>

#include "net.h"

typedef struct cmd cmd_t;
typedef void (*cmd_fn)(bftnet_t *b, cmd_t *c);

struct cmd {
  cmd_fn run;
  cmd_t *next;
  bool done;
  int rc;
  /* arguments and results */
  maddr_t addr;
  char *out;
  size_t cap;
  uint32_t timeout_ms;
  uint64_t rtt_ns;
  char peer[BFTNET_PEER_ID_MAX];
};

struct bftnet {
  bftnet_config_t cfg;
  uv_loop_t own_loop;
  uv_loop_t *loop;
  bool own_thread;
  uv_thread_t thread;
  uv_async_t async;
  uv_mutex_t mu;
  uv_cond_t cv;
  cmd_t *queue_head, *queue_tail;
  bn_transport_t *t;
  net_t *net;
  bn_counters_t counters;
  bool stopped;
  bool loop_done;
};

/* A dial or ping in flight, owned by the loop: it outlives a caller that
 * gave up (timeout) and is freed when the operation completes. */
typedef struct op {
  bftnet_t *b;
  cmd_t *cmd;            /* NULL once the caller was answered */
  bn_ttimer_t *timer;
  bool ping;             /* after the dial, ping */
} op_t;

BFTNET_API void bftnet_config_init(bftnet_config_t *cfg) {
  if (!cfg) return;
  memset(cfg, 0, sizeof *cfg);
  cfg->ping_interval_ms = 5000;
  cfg->ping_timeout_ms = 10000;
  cfg->handshake_timeout_ms = 10000;
  cfg->yamux_window = 1024 * 1024;
  cfg->yamux_max_streams = 256;
  cfg->max_connections = 1024;
  cfg->max_pending_handshakes = 64;
  cfg->log_level = BN_LOG_WARN;
}

/* ------------------------------------------------------------ commands */

static void cmd_complete(bftnet_t *b, cmd_t *c, int rc) {
  uv_mutex_lock(&b->mu);
  c->rc = rc;
  c->done = true;
  uv_cond_broadcast(&b->cv);
  uv_mutex_unlock(&b->mu);
}

static void on_async(uv_async_t *h) {
  bftnet_t *b = h->data;
  for (;;) {
    uv_mutex_lock(&b->mu);
    cmd_t *c = b->queue_head;
    if (c) {
      b->queue_head = c->next;
      if (!b->queue_head) b->queue_tail = NULL;
    }
    uv_mutex_unlock(&b->mu);
    if (!c) break;
    c->run(b, c);
  }
}

/* Runs c on the loop thread and waits for it to complete. */
static int call(bftnet_t *b, cmd_t *c) {
  c->done = false;
  c->next = NULL;
  if (!b->own_thread) {
    /* The application's loop, called from its thread: run, then turn the
     * loop until the command completes (not from inside a loop callback). */
    c->run(b, c);
    while (!c->done) uv_run(b->loop, UV_RUN_ONCE);
    return c->rc;
  }
  uv_mutex_lock(&b->mu);
  if (b->stopped && c->run != NULL && b->loop_done) {
    uv_mutex_unlock(&b->mu);
    return BFTNET_ECLOSED;
  }
  if (b->queue_tail) b->queue_tail->next = c;
  else b->queue_head = c;
  b->queue_tail = c;
  uv_mutex_unlock(&b->mu);
  uv_async_send(&b->async);
  uv_mutex_lock(&b->mu);
  while (!c->done) uv_cond_wait(&b->cv, &b->mu);
  uv_mutex_unlock(&b->mu);
  return c->rc;
}

/* -------------------------------------------------------------- events */

static void emit(bftnet_t *b, net_conn_t *c, bftnet_event_type_t type, bftnet_reason_t reason,
                 int err) {
  if (!b->cfg.on_event) return;
  char peer[BFTNET_PEER_ID_MAX] = "", addr[BFTNET_ADDR_MAX] = "";
  if (net_conn_peer(c)->len) peerid_to_string(net_conn_peer(c), peer, sizeof peer);
  net_conn_remote_addr(c, addr, sizeof addr);
  bftnet_event_t ev = {.type = type,
                       .peer_id = peer,
                       .remote_addr = addr,
                       .outbound = net_conn_outbound(c),
                       .reason = reason,
                       .error = err};
  b->cfg.on_event(&ev, b->cfg.user);
}

static void on_conn_up(void *ud, net_conn_t *c) {
  emit(ud, c, BFTNET_EV_CONNECTED, BFTNET_REASON_NONE, 0);
}

static void on_conn_down(void *ud, net_conn_t *c, bftnet_reason_t reason, int err) {
  emit(ud, c, BFTNET_EV_DISCONNECTED, reason, err);
}

/* ----------------------------------------------------------- lifecycle */

static void loop_thread(void *arg) {
  bftnet_t *b = arg;
  uv_run(b->loop, UV_RUN_DEFAULT);
}

BFTNET_API int bftnet_new(bftnet_t **out, const bftnet_config_t *cfg) {
  if (!out || !cfg || !cfg->key) return BFTNET_EINVAL;
  *out = NULL;
  bftnet_t *b = calloc(1, sizeof *b);
  if (!b) return BFTNET_ENOMEM;
  b->cfg = *cfg;
  if (cfg->log_level > bn_log_get_level()) bn_log_set_level(cfg->log_level);
  int rc = 0;
  if (cfg->loop) {
    b->loop = cfg->loop;
  } else {
    if ((rc = uv_loop_init(&b->own_loop)) != 0) goto err_free;
    b->loop = &b->own_loop;
    b->own_thread = true;
  }
  uv_mutex_init(&b->mu);
  uv_cond_init(&b->cv);
  if ((rc = uv_async_init(b->loop, &b->async, on_async)) != 0) goto err_loop;
  b->async.data = b;
  if ((rc = net_transport_uv_new(b->loop, bn_seam_system(), &b->t)) != 0) goto err_async;
  net_config_t ncfg = {
      .ping_interval_ms = cfg->ping_interval_ms,
      .ping_timeout_ms = cfg->ping_timeout_ms,
      .handshake_timeout_ms = cfg->handshake_timeout_ms,
      .yamux_window = cfg->yamux_window,
      .yamux_max_streams = cfg->yamux_max_streams,
      .max_connections = cfg->max_connections,
      .max_pending_handshakes = cfg->max_pending_handshakes,
  };
  net_cbs_t cbs = {.on_conn_up = on_conn_up, .on_conn_down = on_conn_down};
  if ((rc = net_new(&b->net, b->t, cfg->key, &ncfg, &cbs, b, &b->counters)) != 0) goto err_transport;
  if (b->own_thread && (rc = uv_thread_create(&b->thread, loop_thread, b)) != 0) goto err_net;
  *out = b;
  return 0;

err_net:
  net_free(b->net);
err_transport:
  net_transport_uv_free(b->t);
err_async:
  uv_close((uv_handle_t *)&b->async, NULL);
  uv_run(b->loop, UV_RUN_NOWAIT);
err_loop:
  uv_cond_destroy(&b->cv);
  uv_mutex_destroy(&b->mu);
  if (b->own_thread) uv_loop_close(&b->own_loop);
err_free:
  free(b);
  return rc;
}

static void stop_closed(void *ud) {
  cmd_t *c = ud;
  bftnet_t *b = (bftnet_t *)(void *)c->out;
  net_transport_uv_free(b->t);
  uv_close((uv_handle_t *)&b->async, NULL);
  cmd_complete(b, c, 0);
}

static void run_stop(bftnet_t *b, cmd_t *c) {
  c->out = (char *)(void *)b;
  net_close(b->net, stop_closed, c);
}

BFTNET_API int bftnet_stop(bftnet_t *b) {
  if (!b) return BFTNET_EINVAL;
  if (b->stopped) return 0;
  cmd_t c = {.run = run_stop};
  int rc = call(b, &c);
  b->stopped = true;
  if (b->own_thread) {
    uv_thread_join(&b->thread); /* the loop returns once every handle closed */
    b->loop_done = true;
  } else {
    /* Give the application's loop a turn to run our close callbacks. */
    uv_run(b->loop, UV_RUN_NOWAIT);
  }
  return rc;
}

BFTNET_API void bftnet_free(bftnet_t *b) {
  if (!b) return;
  bftnet_stop(b);
  net_free(b->net);
  if (b->own_thread) {
    uv_run(&b->own_loop, UV_RUN_DEFAULT);
    uv_loop_close(&b->own_loop);
  }
  uv_cond_destroy(&b->cv);
  uv_mutex_destroy(&b->mu);
  free(b);
}

/* ------------------------------------------------------------ listening */

static void run_listen(bftnet_t *b, cmd_t *c) {
  cmd_complete(b, c, net_listen(b->net, &c->addr, c->out, c->cap));
}

static int parse_addr(const char *s, maddr_t *m) {
  char err[128];
  int rc = maddr_parse(s, m, err, sizeof err);
  if (rc < 0) bn_log(BN_LOG_INFO, "multiaddr '%s': %s", s, err);
  return rc;
}

BFTNET_API int bftnet_listen(bftnet_t *b, const char *maddr, char *bound, size_t cap) {
  if (!b || !maddr || (bound && cap == 0)) return BFTNET_EINVAL;
  if (b->stopped) return BFTNET_ECLOSED;
  cmd_t c = {.run = run_listen, .out = bound, .cap = bound ? cap : 0};
  int rc = parse_addr(maddr, &c.addr);
  if (rc < 0) return rc;
  if (c.addr.has_peer && !peerid_equal(&c.addr.peer, net_local_id(b->net))) return BFTNET_EPEERMISMATCH;
  return call(b, &c);
}

BFTNET_API int bftnet_peer_id(const bftnet_t *b, char *buf, size_t cap) {
  if (!b || !buf) return BFTNET_EINVAL;
  return peerid_to_string(net_local_id(b->net), buf, cap);
}

BFTNET_API uint64_t bftnet_counter(const bftnet_t *b, bftnet_counter_id_t id) {
  if (!b || (unsigned)id >= BFTNET_COUNTER_COUNT) return 0;
  return bn_counter_get(&b->counters, id);
}

/* --------------------------------------------------------- dial / ping */

static void op_finish(op_t *op, int rc) {
  if (op->cmd) {
    cmd_t *c = op->cmd;
    op->cmd = NULL;
    cmd_complete(op->b, c, rc);
  }
}

static void op_free(op_t *op) {
  bftnet_t *b = op->b;
  if (op->timer) b->t->ops->timer_free(op->timer);
  free(op);
}

static void op_timeout(void *ud) {
  op_t *op = ud;
  op_finish(op, BFTNET_ETIMEDOUT); /* the operation itself ends later; op lives till then */
}

static void op_ping_done(void *ud, uint64_t rtt_ns, int err) {
  op_t *op = ud;
  if (op->cmd && err == 0) op->cmd->rtt_ns = rtt_ns;
  op_finish(op, err);
  op_free(op);
}

static void op_dial_done(void *ud, net_conn_t *conn, int err) {
  op_t *op = ud;
  if (err == 0 && op->cmd) {
    peerid_to_string(net_conn_peer(conn), op->cmd->peer, sizeof op->cmd->peer);
    if (op->ping) {
      err = net_conn_ping(conn, op_ping_done, op);
      if (err == 0) return;
    }
  }
  op_finish(op, err);
  op_free(op);
}

static void run_dial(bftnet_t *b, cmd_t *c, bool ping) {
  op_t *op = calloc(1, sizeof *op);
  if (!op) return cmd_complete(b, c, BFTNET_ENOMEM);
  op->b = b;
  op->cmd = c;
  op->ping = ping;
  if (c->timeout_ms && b->t->ops->timer_new(b->t, op_timeout, op, &op->timer) == 0)
    b->t->ops->timer_start(op->timer, c->timeout_ms, 0);
  int rc = net_dial(b->net, &c->addr, op_dial_done, op);
  if (rc < 0) {
    op_finish(op, rc);
    op_free(op);
  }
}

static void run_dial_only(bftnet_t *b, cmd_t *c) { run_dial(b, c, false); }
static void run_dial_ping(bftnet_t *b, cmd_t *c) { run_dial(b, c, true); }

static int dial_common(bftnet_t *b, const char *maddr, uint32_t timeout_ms, char *peer_out,
                       size_t cap, cmd_fn fn, uint64_t *rtt) {
  if (!b || !maddr || (peer_out && cap == 0)) return BFTNET_EINVAL;
  if (b->stopped) return BFTNET_ECLOSED;
  cmd_t c = {.run = fn, .timeout_ms = timeout_ms};
  int rc = parse_addr(maddr, &c.addr);
  if (rc < 0) return rc;
  rc = call(b, &c);
  if (rc == 0 && peer_out) snprintf(peer_out, cap, "%s", c.peer);
  if (rc == 0 && rtt) *rtt = c.rtt_ns;
  return rc;
}

BFTNET_API int bftnet_dial(bftnet_t *b, const char *maddr, uint32_t timeout_ms, char *peer_out,
                           size_t cap) {
  return dial_common(b, maddr, timeout_ms, peer_out, cap, run_dial_only, NULL);
}

BFTNET_API int bftnet_ping(bftnet_t *b, const char *maddr, uint32_t timeout_ms, uint64_t *rtt_ns,
                           char *peer_out, size_t cap) {
  if (!rtt_ns) return BFTNET_EINVAL;
  return dial_common(b, maddr, timeout_ms, peer_out, cap, run_dial_ping, rtt_ns);
}
