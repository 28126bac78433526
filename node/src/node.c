/*
 * bftnet.c — the public facade: a node = a loop thread (or the
 * application's loop) + the transport + net. Application threads never
 * touch loop-owned state: each public call becomes a command that runs on
 * the loop thread (uv_async), and the caller waits for its completion.
 */
#include <stdio.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>

#include <unistd.h>

#include <ck_pr.h>
#include <uv.h>

#include "node_internal.h"

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
  cfg->ring_capacity = 4096;
  cfg->max_message_size = BN_MSG_MAX_DEFAULT;
  cfg->inbound_max_msgs = 4096;
  cfg->inbound_max_bytes = 64u * 1024 * 1024;
  cfg->tentative_max = 16;
  cfg->tentative_max_msgs = 1024;
  cfg->tentative_max_bytes = 1024 * 1024;
  cfg->tentative_rate = 256 * 1024;
  cfg->dial_backoff_min_ms = 100;
  cfg->dial_backoff_max_ms = 5000;
  cfg->detach_timeout_ms = 30000;
  cfg->failback_ms = 2000;
}

static bool is_pow2(uint32_t v) { return v && !(v & (v - 1)); }

static int config_check(const bftnet_config_t *c) {
  if (!c->key) return BFTNET_EINVAL;
  if (!is_pow2(c->ring_capacity) || c->ring_capacity < 4 || c->ring_capacity > (1u << 24))
    return BFTNET_EINVAL;
  if (!is_pow2(c->inbound_max_msgs) || c->inbound_max_msgs < 4 || c->inbound_max_msgs > (1u << 24))
    return BFTNET_EINVAL;
  if (c->max_message_size == 0 || c->max_message_size > BN_MSG_MAX_CAP) return BFTNET_EINVAL;
  if (c->dial_backoff_min_ms == 0 || c->dial_backoff_max_ms < c->dial_backoff_min_ms)
    return BFTNET_EINVAL;
  if (c->tentative_max > 4096 || c->inbound_max_bytes == 0) return BFTNET_EINVAL;
  if (c->tentative_max && c->tentative_rate == 0) return BFTNET_EINVAL;
  if (c->detach_timeout_ms == 0 || c->failback_ms == 0) return BFTNET_EINVAL;
  if (c->busy_poll_us > 1000000) return BFTNET_EINVAL;
  return 0;
}

/* ------------------------------------------------------------ commands */

void cmd_complete(bftnet_t *b, cmd_t *c, int rc) {
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
int call(bftnet_t *b, cmd_t *c) {
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
  if (b->loop_done) {
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

static void on_conn_up(void *ud, net_conn_t *c) {
  members_conn_event(ud, c, BFTNET_EV_CONNECTED, BFTNET_REASON_NONE, 0);
}

static void on_conn_down(void *ud, net_conn_t *c, bftnet_reason_t reason, int err) {
  members_conn_event(ud, c, BFTNET_EV_DISCONNECTED, reason, err);
}

/* ----------------------------------------------------------- lifecycle */

/* Busy polling: after a turn that had work, poll without sleeping
 * (yielding to any runnable thread) until busy_poll_us pass idle. */
static void loop_busy_poll(bftnet_t *b) {
  const bn_seam_t *seam = bn_seam_system();
  uint64_t spin_ns = (uint64_t)b->cfg.busy_poll_us * 1000u;
  for (int alive = 1; alive;) {
    alive = uv_run(b->loop, UV_RUN_ONCE);
    uint64_t last = bn_now_ns(seam), seen = b->activity + b->rctx.activity;
    while (alive) {
      alive = uv_run(b->loop, UV_RUN_NOWAIT);
      uint64_t now = bn_now_ns(seam), a = b->activity + b->rctx.activity;
      if (a != seen) {
        seen = a;
        last = now;
      } else if (now - last >= spin_ns) {
        break;
      }
      sched_yield();
    }
  }
}

static void loop_thread(void *arg) {
  bftnet_t *b = arg;
  /* A write to a socket the peer reset raises SIGPIPE in the writing
   * thread; blocked here, write() returns EPIPE instead and the process's
   * own disposition stays the application's business. (With the
   * application's loop, cfg.loop, the application must ignore SIGPIPE.) */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  bn_tl_loop_node = b;
  /* This thread frees every sent message: batch those frees (pool.h). If
   * that fails, frees are simply not batched. */
  (void)bn_pool_defer_begin(b->pool);
  if (b->cfg.busy_poll_us == 0)
    uv_run(b->loop, UV_RUN_DEFAULT);
  else
    loop_busy_poll(b);
  bn_pool_defer_end();
}

BFTNET_API int bftnet_new(bftnet_t **out, const bftnet_config_t *cfg) {
  if (!out || !cfg) return BFTNET_EINVAL;
  *out = NULL;
  int rc = config_check(cfg);
  if (rc < 0) return rc;
  bftnet_t *b = calloc(1, sizeof *b);
  if (!b) return BFTNET_ENOMEM;
  b->cfg = *cfg;
  bn_log_set_level(cfg->log_level); /* process-wide: the last node created sets it */
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
  if ((rc = members_init(b)) != 0) goto err_net;
  if (b->own_thread && (rc = uv_thread_create(&b->thread, loop_thread, b)) != 0) goto err_members;
  *out = b;
  return 0;

err_members:
  members_stop(b);
  uv_run(b->loop, UV_RUN_NOWAIT);
  members_destroy(b);
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
  bftnet_t *b = ud;
  net_transport_uv_free(b->t);
  uv_close((uv_handle_t *)&b->async, NULL);
  uv_close((uv_handle_t *)&b->wake, NULL);
  cmd_complete(b, b->stop_cmd, 0);
}

static void run_stop(bftnet_t *b, cmd_t *c) {
  b->stop_cmd = c;
  members_stop(b); /* Dispatchers and Receivers first, then the connections */
  net_close(b->net, stop_closed, b);
}

BFTNET_API int bftnet_stop(bftnet_t *b) {
  if (!b) return BFTNET_EINVAL;
  if (ck_pr_load_int(&b->stopped)) return 0;
  cmd_t c = {.run = run_stop};
  ck_pr_store_int(&b->stopped, 1);
  int rc = call(b, &c);
  uint64_t one = 1;
  (void)!write(b->efd, &one, sizeof one); /* wake threads blocked in bftnet_recv */
  if (b->own_thread) {
    uv_thread_join(&b->thread); /* the loop returns once every handle closed */
    uv_mutex_lock(&b->mu);
    b->loop_done = true;
    uv_mutex_unlock(&b->mu);
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
  members_destroy(b);
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
  if (ck_pr_load_int(&b->stopped)) return BFTNET_ECLOSED;
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
  if (ck_pr_load_int(&b->stopped)) return BFTNET_ECLOSED;
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
