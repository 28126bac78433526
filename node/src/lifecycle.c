/*
 * lifecycle.c — a node's life: a node = a loop thread (or the application's
 * loop) + the transport + net + the members. bftnet_new builds it,
 * bftnet_stop closes it gracefully on the loop thread, bftnet_free frees
 * it. Application threads never touch loop-owned state: each public call
 * becomes a command (cmd.c) that runs on the loop thread.
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "node_internal.h"

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
  cfg->class_min_share = 10;
  cfg->class_window = 256 * 1024;
}

static bool pow2_in(uint32_t v, uint32_t lo, uint32_t hi) {
  return v && !(v & (v - 1)) && v >= lo && v <= hi;
}

/* Checks every field a node depends on; the first bad one is named in
 * errbuf with its value and the rule it breaks. Long: one line per rule. */
static int config_check(const bftnet_config_t *c, char *eb, size_t ec) {
#define BAD(...) return node_errf(eb, ec, __VA_ARGS__), BFTNET_EINVAL
#define AT_LEAST_1(f)                                                                              \
  if (c->f == 0) BAD(#f "=0: must be at least 1")
  if (!c->key) BAD("key: required (bftnet_key_generate or bftnet_key_load)");
  if (!pow2_in(c->ring_capacity, 4, 1u << 24))
    BAD("ring_capacity=%u: not a power of 2 in [4, 2^24]", c->ring_capacity);
  if (!pow2_in(c->inbound_max_msgs, 4, 1u << 24))
    BAD("inbound_max_msgs=%u: not a power of 2 in [4, 2^24]", c->inbound_max_msgs);
  if (c->max_message_size == 0 || c->max_message_size > BN_MSG_MAX_CAP)
    BAD("max_message_size=%u: not in [1, %u] (64 MiB)", c->max_message_size, BN_MSG_MAX_CAP);
  if (c->yamux_window < BN_YAMUX_INITIAL_WINDOW || c->yamux_window > BN_YAMUX_MAX_WINDOW)
    BAD("yamux_window=%u: not in [%u, %u] (256 KiB to 16 MiB)", c->yamux_window,
        BN_YAMUX_INITIAL_WINDOW, BN_YAMUX_MAX_WINDOW);
  if (c->yamux_max_streams == 0 || c->yamux_max_streams > BN_YAMUX_MAX_STREAMS_CAP)
    BAD("yamux_max_streams=%u: not in [1, %u]", c->yamux_max_streams, BN_YAMUX_MAX_STREAMS_CAP);
  AT_LEAST_1(ping_interval_ms);
  AT_LEAST_1(ping_timeout_ms);
  AT_LEAST_1(handshake_timeout_ms);
  AT_LEAST_1(max_connections);
  AT_LEAST_1(max_pending_handshakes);
  AT_LEAST_1(dial_backoff_min_ms);
  if (c->dial_backoff_max_ms < c->dial_backoff_min_ms)
    BAD("dial_backoff_max_ms=%u: below dial_backoff_min_ms=%u", c->dial_backoff_max_ms,
        c->dial_backoff_min_ms);
  if (c->tentative_max > 4096) BAD("tentative_max=%u: above 4096", c->tentative_max);
  AT_LEAST_1(inbound_max_bytes);
  if (c->tentative_max && c->tentative_rate == 0)
    BAD("tentative_rate=0: must be at least 1 while tentative_max=%u (0 refuses non-members)",
        c->tentative_max);
  AT_LEAST_1(detach_timeout_ms);
  AT_LEAST_1(failback_ms);
  if (c->busy_poll_us > 1000000) BAD("busy_poll_us=%u: above 1000000 (1 s)", c->busy_poll_us);
  return 0;
#undef AT_LEAST_1
#undef BAD
}

BFTNET_API int bftnet_config_check(const bftnet_config_t *cfg, char *err, size_t cap) {
  if (err && cap) err[0] = '\0';
  if (!cfg) return BFTNET_EINVAL;
  int rc = config_check(cfg, err, cap);
  if (rc < 0) return rc;
  return node__classes_check(cfg, err, cap);
}

/* ---------------------------------------------------------- from net/ */

static void on_conn_up(void *ud, net_conn_t *c) {
  node__members_conn_event(ud, c, BFTNET_EV_CONNECTED, BFTNET_REASON_NONE, 0);
}

static void on_conn_down(void *ud, net_conn_t *c, bftnet_reason_t reason, int err) {
  node__members_conn_event(ud, c, BFTNET_EV_DISCONNECTED, reason, err);
}

static const char *on_peer_name(void *ud, const peerid_t *peer) {
  return node__members_peer_name(ud, peer);
}

/* ----------------------------------------------------------- lifecycle */

/* Busy polling: after a turn that had work, poll without sleeping
 * (yielding to any runnable thread) until busy_poll_us pass idle. */
static void loop_busy_poll(bftnet_t *b) {
  const bn_seam_t *seam = b->t->seam;
  uint64_t spin_ns = (uint64_t)b->cfg.busy_poll_us * 1000u;
  for (int alive = 1; alive;) {
    alive = b->t->ops->run(b->t, BN_RUN_ONCE);
    uint64_t last = bn_now_ns(seam), seen = b->activity + b->rctx.activity;
    while (alive) {
      alive = b->t->ops->run(b->t, BN_RUN_NOWAIT);
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

static void *loop_thread(void *arg) {
  bftnet_t *b = arg;
  /* A write to a socket the peer reset raises SIGPIPE in the writing
   * thread; blocked here, write() returns EPIPE instead and the process's
   * own disposition stays the application's business. (With the
   * application's loop, cfg.loop, the application must ignore SIGPIPE.) */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
#ifdef __linux__
  /* Named for top -H, perf and ps: an operator can see (and renice) it. */
  (void)prctl(PR_SET_NAME, "bftnet-loop", 0, 0, 0);
#endif
  node__cmd_loop_node = b;
  /* This thread frees every sent message: batch those frees (core.h,
   * "pool"). If that fails, frees are simply not batched. */
  (void)bn_pool_defer_begin(b->pool);
  if (b->cfg.busy_poll_us == 0)
    b->t->ops->run(b->t, BN_RUN_DEFAULT);
  else
    loop_busy_poll(b);
  bn_pool_defer_end();
  return NULL;
}

/* The handles a node made through the transport, then the transport's
 * own: the loop has nothing left after this (loop thread). */
static void close_wakes(bftnet_t *b) {
  b->t->ops->wake_free(b->wake);
  b->wake = NULL;
  b->t->ops->wake_free(b->async);
  b->async = NULL;
  b->t->ops->shutdown(b->t);
}

/* bftnet_new_ex, or node__new_with_transport when ext is set (the
 * simulator's transport: no loop thread, not freed here).
 * Long: the unwinding labels undo each step of the construction. */
static int node_new(bftnet_t **out, const bftnet_config_t *cfg, bn_transport_t *ext, char *errbuf,
                    size_t errcap) {
  const char *step = "";
  if (errbuf && errcap) errbuf[0] = '\0';
  if (!out || !cfg) {
    node_errf(errbuf, errcap, "%s: NULL", !out ? "out" : "cfg");
    return BFTNET_EINVAL;
  }
  *out = NULL;
  int rc = bftnet_config_check(cfg, errbuf, errcap);
  if (rc < 0) return rc;
  bftnet_t *b = calloc(1, sizeof *b);
  if (!b) {
    node_errf(errbuf, errcap, "out of memory");
    return BFTNET_ENOMEM;
  }
  b->cfg = *cfg;
  b->log = (bn_logger_t){.level = cfg->log_level, .cb = cfg->on_log, .user = cfg->user};
  node__classes_resolve(b);
  /* Without cfg.loop (and without a caller's transport) the transport owns its loop too. */
  b->own_thread = cfg->loop == NULL && ext == NULL;
  b->ext_transport = ext != NULL;
  pthread_mutex_init(&b->mu, NULL);
  pthread_cond_init(&b->cv, NULL);
  step = "the loop transport";
  if (ext)
    b->t = ext;
  else if ((rc = net_transport_uv_new(cfg->loop, bn_seam_system(), &b->t)) != 0)
    goto err_free;
  bn_transport_t *t = b->t;
  step = "the loop's wakeups";
  if ((rc = t->ops->wake_new(t, node__cmd_on_wake, b, &b->async)) != 0) goto err_transport;
  if ((rc = t->ops->wake_new(t, node__members_kick, b, &b->wake)) != 0) goto err_transport;
  net_config_t ncfg = {
      .ping_interval_ms = cfg->ping_interval_ms,
      .ping_timeout_ms = cfg->ping_timeout_ms,
      .handshake_timeout_ms = cfg->handshake_timeout_ms,
      .yamux_window = node__classes_window(b),
      .yamux_max_streams = cfg->yamux_max_streams,
      .max_connections = cfg->max_connections,
      .max_pending_handshakes = cfg->max_pending_handshakes,
      .log = &b->log,
      .paced = b->ncls > 1,
      .notsent_lowat = node__classes_lowat(b),
      .inflight_min = node__classes_inflight_min(b),
  };
  net_cbs_t cbs = {
      .on_conn_up = on_conn_up, .on_conn_down = on_conn_down, .peer_name = on_peer_name};
  step = "the network layer";
  if ((rc = net_new(&b->net, t, cfg->key, &ncfg, &cbs, b, &b->counters)) != 0) goto err_transport;
  step = "the members' state";
  if ((rc = node__members_init(b)) != 0) goto err_members;
  step = "the loop thread";
  if (b->own_thread && (rc = -pthread_create(&b->thread, NULL, loop_thread, b)) != 0)
    goto err_members;
  *out = b;
  return 0;

err_members:
  node__members_stop(b);
  t->ops->run(t, BN_RUN_NOWAIT);
  node__members_destroy(b);
  net_free(b->net);
err_transport:
  if (b->wake) t->ops->wake_free(b->wake);
  if (b->async) t->ops->wake_free(b->async);
  t->ops->shutdown(t);
  if (!b->ext_transport)
    net_transport_uv_free(t); /* runs the close callbacks (its own loop), or leaves them to it */
err_free:
  pthread_cond_destroy(&b->cv);
  pthread_mutex_destroy(&b->mu);
  free(b);
  node_errf(errbuf, errcap, "cannot create %s: %s", step, bftnet_strerror(rc));
  return rc;
}

BFTNET_API int bftnet_new(bftnet_t **out, const bftnet_config_t *cfg) {
  return node_new(out, cfg, NULL, NULL, 0);
}

BFTNET_API int bftnet_new_ex(bftnet_t **out, const bftnet_config_t *cfg, char *errbuf,
                             size_t errcap) {
  return node_new(out, cfg, NULL, errbuf, errcap);
}

int node__new_with_transport(bftnet_t **out, const bftnet_config_t *cfg, bn_transport_t *t) {
  if (!t || cfg->loop) return BFTNET_EINVAL;
  return node_new(out, cfg, t, NULL, 0);
}

static void stop_closed(void *ud) {
  bftnet_t *b = ud;
  close_wakes(b);
  node__cmd_complete(b, b->stop_cmd, 0);
}

static void run_stop(bftnet_t *b, cmd_t *c) {
  b->stop_cmd = c;
  /* GO_AWAY first: the peers take the resets and closes that follow for
   * an orderly stop (BFTNET_REASON_GOING_AWAY), not a failure. */
  net_goaway(b->net);
  node__members_stop(b); /* Dispatchers and Receivers first, then the connections */
  net_close(b->net, stop_closed, b);
}

BFTNET_API int bftnet_stop(bftnet_t *b) {
  if (!b) return BFTNET_EINVAL;
  if (ck_pr_load_int(&b->stopped)) return 0;
  if (node__cmd_in_callback(b)) return BFTNET_EINCALLBACK; /* it would wait for its own loop */
  cmd_t c = {.run = run_stop};
  ck_pr_store_int(&b->stopped, 1);
  int rc = node__cmd_call(b, &c);
  uint64_t one = 1;
  (void)!write(b->efd, &one, sizeof one);           /* wake threads blocked in bftnet_recv */
  for (unsigned k = 0; k < BFTNET_MAX_CLASSES; k++) /* and bftnet_recv_classes */
    if (b->cls_efd[k] >= 0) (void)!write(b->cls_efd[k], &one, sizeof one);
  if (b->own_thread) {
    pthread_join(b->thread, NULL); /* the loop returns once every handle closed */
    pthread_mutex_lock(&b->mu);
    b->loop_done = true;
    pthread_mutex_unlock(&b->mu);
  } else {
    /* Give the application's loop a turn to run our close callbacks. */
    b->t->ops->run(b->t, BN_RUN_NOWAIT);
  }
  return rc;
}

BFTNET_API void bftnet_free(bftnet_t *b) {
  if (!b) return;
  /* Misuse aborts: the node would be freed under its own running callback. */
  if (node__cmd_in_callback(b)) {
    fprintf(stderr, "bftnet: bftnet_free called inside a loop callback of the same node\n");
    abort();
  }
  bftnet_stop(b);
  net_free(b->net);
  /* Its own loop: runs what is left and closes it. The application's:
   * frees now, or at the last close callback. A caller's transport is the
   * caller's to free. */
  if (!b->ext_transport) net_transport_uv_free(b->t);
  b->t = NULL;
  node__members_destroy(b);
  pthread_cond_destroy(&b->cv);
  pthread_mutex_destroy(&b->mu);
  free(b);
}

BFTNET_API int bftnet_peer_id(const bftnet_t *b, char *buf, size_t cap) {
  if (!b || !buf) return BFTNET_EINVAL;
  int rc = peerid_to_string(net_local_id(b->net), buf, cap);
  if (rc < 0 && cap) buf[0] = '\0'; /* never a partial ID */
  return rc;
}
