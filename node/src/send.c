/*
 * send.c — bftnet_send, bftnet_broadcast, bftnet_send_ex and bftnet_flush,
 * on application threads: find the member in the snapshot (inside an epoch
 * section), hand the message to its Dispatcher's ring of the class
 * (dispatcher/), and wake the loop thread, which writes it.
 */
#include <time.h>

#include "node_internal.h"

/* After queueing: wakes the loop thread. Called on the loop thread itself
 * (an on_message callback that replies), it defers the drain to the end of
 * this loop turn instead: no eventfd write and read, no extra wake-up. */
static void kick_loop(bftnet_t *b) {
  if (node__cmd_loop_node == b)
    b->t->ops->defer(b->t, node__members_kick, b);
  else
    b->t->ops->wake_send(b->wake);
}

/* One message for one member, in class cls. */
static int send_one(bftnet_t *b, const char *node_id, unsigned cls, uint64_t key, const void *data,
                    size_t len) {
  if (len > b->cfg.max_message_size) return BFTNET_ETOOBIG;
  if (ck_pr_load_int(&b->stopped)) return BFTNET_ECLOSED;
  ck_epoch_section_t sec;
  ck_epoch_record_t *r = node__snapshot_enter(b, &sec);
  if (!r) return BFTNET_ENOMEM;
  int rc = 0;
  msnap_t *s = node__snapshot_load(b);
  mbr_t *m = node__snapshot_find(s, node_id);
  if (!m) {
    rc = strcmp(node_id, s->self_id) == 0 ? BFTNET_EINVAL : BFTNET_ENOTFOUND;
  } else {
    rc = disp_send(&b->dctx, &m->d, cls, key, data, len);
  }
  node__snapshot_exit(b, r, &sec);
  if (rc == 0) kick_loop(b);
  return rc;
}

/* One message for every member but ourselves, in class cls. */
static int send_all(bftnet_t *b, unsigned cls, uint64_t key, const void *data, size_t len) {
  if (len > b->cfg.max_message_size) return BFTNET_ETOOBIG;
  if (ck_pr_load_int(&b->stopped)) return BFTNET_ECLOSED;
  ck_epoch_section_t sec;
  ck_epoch_record_t *r = node__snapshot_enter(b, &sec);
  if (!r) return BFTNET_ENOMEM;
  msnap_t *s = node__snapshot_load(b);
  int rc = disp_broadcast(&b->dctx, s->d, s->n, s->ver, cls, key, data, len);
  node__snapshot_exit(b, r, &sec);
  if (rc > 0) kick_loop(b);
  return rc;
}

BFTNET_API int bftnet_send(bftnet_t *b, const char *node_id, const void *data, size_t len) {
  if (!b || !node_id || (!data && len)) return BFTNET_EINVAL;
  return send_one(b, node_id, 0, 0, data, len);
}

BFTNET_API int bftnet_broadcast(bftnet_t *b, const void *data, size_t len) {
  if (!b || (!data && len)) return BFTNET_EINVAL;
  return send_all(b, 0, 0, data, len);
}

BFTNET_API int bftnet_send_ex(bftnet_t *b, const char *node_id, const bftnet_send_opts_t *opts,
                              const void *data, size_t len) {
  if (!b || (!data && len)) return BFTNET_EINVAL;
  unsigned cls = opts ? opts->cls : 0;
  uint64_t key = opts ? opts->key : 0;
  if (cls >= b->ncls) return BFTNET_ENOCLASS;
  return node_id ? send_one(b, node_id, cls, key, data, len) : send_all(b, cls, key, data, len);
}

/* Test hook (not in the public header): messages above a member's
 * max_message_size are written anyway and still counted, so a test sees
 * the member discard them. Before bftnet_connect. */
void node__send_test_write_too_big(bftnet_t *b) {
  b->dctx.cfg.write_too_big = true;
}

/* ------------------------------------------------------------- flush */

/* Loop-free check from the caller's thread: every ring empty, nothing held
 * by a framer and every byte written confirmed read (unconfirmed == 0). */
static bool flush_done(bftnet_t *b) {
  ck_epoch_section_t sec;
  ck_epoch_record_t *r = node__snapshot_enter(b, &sec);
  if (!r) return false;
  msnap_t *s = node__snapshot_load(b);
  bool done = true;
  for (size_t i = 0; i < s->n && done; i++)
    done = disp_idle(s->d[i]);
  node__snapshot_exit(b, r, &sec);
  return done;
}

static void flush_expired(void *ud) {
  *(bool *)ud = true;
}

/* On the application's loop, from its thread outside a callback: turns the
 * loop (through the seam) until everything is confirmed or timeout_ms, a
 * timer of the loop, passes. */
static int flush_on_app_loop(bftnet_t *b, int timeout_ms) {
  bn_transport_t *t = b->t;
  bn_ttimer_t *tm;
  bool expired = timeout_ms == 0;
  int rc = t->ops->timer_new(t, flush_expired, &expired, &tm);
  if (rc < 0) return rc;
  if (timeout_ms > 0) t->ops->timer_start(tm, (uint64_t)timeout_ms, 0);
  for (;;) {
    node__members_kick(b); /* writes what is queued, refreshes what flush_done reads */
    if (flush_done(b)) break;
    if (expired) {
      rc = BFTNET_ETIMEDOUT;
      break;
    }
    t->ops->run(t, BN_RUN_ONCE);
  }
  t->ops->timer_free(tm);
  return rc;
}

BFTNET_API int bftnet_flush(bftnet_t *b, int timeout_ms) {
  if (!b || timeout_ms < 0) return BFTNET_EINVAL;
  if (ck_pr_load_int(&b->stopped)) return BFTNET_ECLOSED;
  /* Waiting inside a callback would hold up the very loop that confirms:
   * only a look (timeout 0) is allowed there. */
  if (timeout_ms > 0 && node__cmd_in_callback(b)) return BFTNET_EINCALLBACK;
  if (!b->own_thread && !node__cmd_in_callback(b)) return flush_on_app_loop(b, timeout_ms);
  const bn_seam_t *seam = b->t->seam;
  uint64_t deadline = bn_now_ns(seam) + (uint64_t)timeout_ms * 1000000ull;
  for (unsigned i = 0;; i++) {
    if (flush_done(b)) return 0;
    if (bn_now_ns(seam) >= deadline) return BFTNET_ETIMEDOUT;
    b->t->ops->wake_send(b->wake);
    struct timespec ts = {0, (i < 20 ? 1 : 10) * 1000000L};
    nanosleep(&ts, NULL);
  }
}
