/*
 * receiver.c — a member's Receiver: its stream to us, deframed into the
 * member's bounded inbound queue (or handed to the application's
 * on_message on the loop thread), each message tagged with the member's
 * node ID, in stream order. When the queue is over its limit the stream's
 * credit waits for the application (yamux credit stops), so the pressure
 * lands in the sender's ring, where drop-oldest applies. Credit is also
 * the confirmation the sender's retransmit window waits for.
 *
 * Also here: the receive side's context, the application's wake-up, and
 * the promotion of a TentativeReceiver (tentative.c) into a Receiver.
 */
#include <stdlib.h>

#include <ck_pr.h>

#include "rx_internal.h"

/* ------------------------------------------------ delivery to the app */

static void notify_run(void *ud) {
  rx_ctx_t *ctx = ud;
  ctx->notify_queued = false;
  uint32_t classes = ctx->ready_classes;
  ctx->ready_classes = 0;
  ctx->cbs->on_ready(ctx->ud, classes);
}

/* Messages were queued: the application hears of it once, at the end of
 * this loop turn. */
static void notify_later(rx_ctx_t *ctx) {
  if (ctx->notify_queued) return;
  ctx->notify_queued = true;
  ctx->t->ops->defer(ctx->t, notify_run, ctx);
}

int rx_ctx_init(rx_ctx_t *ctx, const rx_config_t *cfg, bn_transport_t *t, bn_counters_t *counters,
                bn_pool_t *pool, const rx_cbs_t *cbs, void *ud) {
  memset(ctx, 0, sizeof *ctx);
  ctx->cfg = *cfg;
  ctx->t = t;
  ctx->counters = counters;
  ctx->pool = pool;
  ctx->cbs = cbs;
  ctx->ud = ud;
  /* With several priorities, the classes of the most urgent one. */
  uint8_t top = UINT8_MAX;
  bool several = false;
  for (unsigned i = 0; i < cfg->ncls; i++)
    top = BN_MIN(top, cfg->classes[i].priority);
  for (unsigned i = 0; i < cfg->ncls; i++)
    several |= cfg->classes[i].priority != top;
  for (unsigned i = 0; several && i < cfg->ncls; i++)
    if (cfg->classes[i].priority == top) ctx->urgent |= 1u << i;
  return t->ops->timer_new(t, rx__tentative_tick, ctx, &ctx->tent_timer);
}

void rx_ctx_stop(rx_ctx_t *ctx) {
  while (ctx->tent_head)
    rx__tentative_free(ctx, ctx->tent_head, false);
  if (ctx->tent_timer) {
    ctx->t->ops->timer_free(ctx->tent_timer);
    ctx->tent_timer = NULL;
  }
}

/* ------------------------------------------------------------ Receiver */

/* A message for the application: its callback on the loop thread (the
 * on_message_ex form, with the class, wins), or the class's queue. */
static void deliver(rx_cls_t *k, rx_msg_t *msg, const uint8_t *p, size_t n) {
  rx_t *r = k->r;
  rx_ctx_t *ctx = r->ctx;
  if (ctx->cfg.on_message_ex) {
    bftnet_msg_t m = {.from = r->from, .data = p, .len = n, .cls = (uint8_t)k->idx};
    ctx->cfg.on_message_ex(&m, ctx->cfg.user);
  } else if (ctx->cfg.on_message) {
    ctx->cfg.on_message(r->from, p, n, ctx->cfg.user);
  } else {
    msg->cls = (uint8_t)k->idx;
    /* The most urgent class's first message wakes the application now,
     * not at the end of a loop turn busy with less urgent bytes. */
    bool now = (ctx->urgent & (1u << k->idx)) && rx_inq_depth(&k->inq) == 0;
    rx_inq_push_spmc(&k->inq, msg);
    if (now) ctx->cbs->on_ready(ctx->ud, 1u << k->idx);
    ctx->ready_classes |= 1u << k->idx;
    notify_later(ctx);
    return;
  }
  ck_pr_inc_64(&k->inq.delivered);
  if (msg) rx_msg_free(msg);
}

static bool callback_mode(const rx_ctx_t *ctx) {
  return ctx->cfg.on_message || ctx->cfg.on_message_ex;
}

static void in_emit(void *ud, const uint8_t *p, size_t n) {
  rx_cls_t *k = ud;
  rx_ctx_t *ctx = k->r->ctx;
  if (callback_mode(ctx)) return deliver(k, NULL, p, n);
  rx_msg_t *msg = rx_msg_carve(&k->r->carver, p, n, k->r->from);
  if (!msg) { /* the message is lost: say so, loudly and counted */
    bn_counter_add(ctx->counters, BFTNET_COUNTER_IO_ERRORS, 1);
    bn_log(ctx->cfg.log, BN_LOG_ERROR, "out of memory: a message from %s was lost", k->r->from);
    return;
  }
  deliver(k, msg, msg->data, msg->len);
}

/* Credits what the member sent on this class's stream unless the class's
 * inbound queue is over its limit: then the credit waits for the
 * application (other classes go on). */
static void credit(rx_cls_t *k) {
  if (!k->in || k->uncredited == 0) return;
  if (!callback_mode(k->r->ctx) && rx_inq_over(&k->inq) && !BN_SIM_DEFECT(4)) {
    ck_pr_store_int(&k->throttled, 1);
    return;
  }
  ck_pr_store_int(&k->throttled, 0);
  size_t n = k->uncredited;
  k->uncredited = 0;
  mig_stream_consume(k->in, n);
}

/* A class's deframer (rx__deframer_setup). */
static void rxd_init(rx_cls_t *k) {
  rx__deframer_setup(&k->rxd, k->r->ctx);
}

/* Oversized messages the deframer skipped: counted on our side (the
 * sender counts its own when it knew our limit), logged rate-limited. */
static void count_too_big(rx_t *r, uint64_t k) {
  rx_ctx_t *ctx = r->ctx;
  ck_pr_add_64(&r->too_big, k);
  bn_counter_add(ctx->counters, BFTNET_COUNTER_INBOUND_TOO_BIG, k);
  bn_log_rl(ctx->cfg.log, &r->rl, bn_now_ns(ctx->t->seam), BN_LOG_WARN,
            "member %s sent a message above max_message_size=%u: discarded, the stream goes on",
            r->from, ctx->cfg.max_message_size);
}

static void in_gone(rx_cls_t *k, mig_stream_t *ls) {
  if (k->in != ls) return;
  k->in = NULL;
  k->uncredited = 0;
  rx_deframer_free(&k->rxd);
  rxd_init(k);
  mig_stream_release(ls);
}

static void in_data(void *ud, mig_stream_t *ls, const uint8_t *p, size_t n) {
  rx_cls_t *k = ud;
  rx_ctx_t *ctx = k->r->ctx;
  ctx->activity++;
  if (ls != k->in) return mig_stream_consume(ls, n);
  ck_pr_add_64(&k->bytes_in, n);
  uint64_t skipped0 = k->rxd.skipped;
  int rc = rx_deframer_feed(&k->rxd, p, n, in_emit, k);
  if (k->rxd.skipped != skipped0) count_too_big(k->r, k->rxd.skipped - skipped0);
  if (rc < 0) {
    /* A malformed or oversized frame closes that connection, never more. */
    bn_counter_add(ctx->counters, BFTNET_COUNTER_BAD_MESSAGE, 1);
    bn_log(ctx->cfg.log, BN_LOG_WARN, "member %s sent a bad message frame: %s; connection closed",
           k->r->from, bftnet_strerror(rc));
    net_conn_t *c = mig_stream_conn(ls);
    in_gone(k, ls);
    if (c) net_conn_close(c, BFTNET_REASON_PROTOCOL_ERROR, rc);
    return;
  }
  k->uncredited += n;
  credit(k);
}

static void in_event(void *ud, mig_stream_t *ls, const mig_event_t *e) {
  rx_cls_t *k = ud;
  if (ls != k->in) return;
  switch (e->type) {
  case MIG_EV_ABORTED:
  case MIG_EV_CLOSED:
    k->r->ctx->cbs->on_stream_event(k->r->ud, ls, e);
    in_gone(k, ls);
    break;
  case MIG_EV_READ_EOF:
    break;
  default:
    k->r->ctx->cbs->on_stream_event(k->r->ud, ls, e);
    break;
  }
}

static const mig_stream_cbs_t in_cbs = {.on_data = in_data, .on_event = in_event};

/* A class's newest stream is the Receiver's; an older one is reset. */
static void set_in(rx_cls_t *k, mig_stream_t *ls, rx_deframer_t *carry) {
  if (k->in && k->in != ls) in_gone(k, k->in);
  k->in = ls;
  k->uncredited = 0;
  if (carry) {
    rx_deframer_free(&k->rxd);
    k->rxd = *carry; /* a partly received message carries over on promotion */
  }
  mig_stream_set_cbs(ls, &in_cbs, k);
}

int rx_set_in(rx_t *r, unsigned cls, mig_stream_t *ls) {
  BN_ASSERT(cls < r->ncls);
  int rc = rx__order_admit(r->ctx, &r->order[cls], ls, r->from, &r->rl);
  if (rc < 0) return rc; /* an older stream than one we took: never delivered */
  set_in(&r->cls[cls], ls, NULL);
  return 0;
}

int rx_init(rx_t *r, rx_ctx_t *ctx, void *ud, const char *from) {
  memset(r, 0, sizeof *r);
  r->ctx = ctx;
  r->ud = ud;
  r->from = from;
  unsigned n = ctx->cfg.ncls;
  if (n == 0 || n > BFTNET_MAX_CLASSES) return BFTNET_EINVAL;
  size_t bytes = (n * sizeof(rx_cls_t) + 63) / 64 * 64;
  r->cls = aligned_alloc(64, bytes);
  if (!r->cls) return BFTNET_ENOMEM;
  memset(r->cls, 0, bytes);
  for (unsigned i = 0; i < n; i++) {
    const bftnet_class_t *c = &ctx->cfg.classes[i];
    rx_cls_t *k = &r->cls[i];
    int rc = rx_inq_init(&k->inq, c->inbound_max_msgs, c->inbound_max_bytes);
    if (rc) {
      while (i--)
        rx_inq_destroy(&r->cls[i].inq);
      free(r->cls);
      r->cls = NULL;
      return rc;
    }
    k->r = r;
    k->idx = i;
    rxd_init(k);
  }
  r->ncls = n;
  r->carver.pool = ctx->pool;
  return 0;
}

void rx_wake(rx_t *r) {
  for (unsigned i = 0; i < r->ncls; i++) {
    rx_cls_t *k = &r->cls[i];
    if (BN_SIM_DEFECT(12)) { /* the old rule: refilled when throttled, and told to no one */
      if (ck_pr_load_int(&k->throttled)) {
        rx_inq_refill_spmc(&k->inq);
        credit(k);
      }
      continue;
    }
    /* Moved into the ring: the application may be asleep beside an empty
     * one, so it hears of them as of any delivery. (Every wake visits
     * every member's classes; the list is nearly always empty.) */
    if (k->inq.ovf_head && rx_inq_refill_spmc(&k->inq)) {
      r->ctx->ready_classes |= 1u << k->idx;
      notify_later(r->ctx);
    }
    if (ck_pr_load_int(&k->throttled)) credit(k);
  }
}

void rx_stop(rx_t *r) {
  for (unsigned i = 0; i < r->ncls; i++)
    r->cls[i].in = NULL;
}

void rx_destroy(rx_t *r) {
  uint32_t unread = 0;
  for (unsigned i = 0; i < r->ncls; i++) {
    uint32_t k = rx_inq_depth(&r->cls[i].inq); /* exact: no other thread left */
    if (k) ck_pr_add_64(&r->ctx->cls_discarded_removed[i], k);
    unread += k;
  }
  if (unread) {
    bn_counter_add(r->ctx->counters, BFTNET_COUNTER_INBOUND_DISCARDED_REMOVED, unread);
    bn_log(r->ctx->cfg.log, BN_LOG_INFO, "member %s removed: %u received messages discarded unread",
           r->from, unread);
  }
  for (unsigned i = 0; i < r->ncls; i++) {
    rx_inq_destroy(&r->cls[i].inq);
    rx_deframer_free(&r->cls[i].rxd);
  }
  rx_carver_release(&r->carver);
  free(r->cls);
  r->cls = NULL;
}

void rx_stats(rx_t *r, bftnet_peer_stats_t *out) {
  out->delivered = 0;
  out->bytes_in = 0;
  out->inbound_depth = 0;
  for (unsigned i = 0; i < r->ncls; i++) {
    rx_cls_t *k = &r->cls[i];
    out->delivered += ck_pr_load_64(&k->inq.delivered);
    out->bytes_in += ck_pr_load_64(&k->bytes_in);
    out->inbound_depth += rx_inq_depth(&k->inq);
  }
  out->tentative_evicted = ck_pr_load_64(&r->tentative_evicted);
  out->discarded_too_big = ck_pr_load_64(&r->too_big);
}

void rx_class_stats(rx_t *r, unsigned cls, bftnet_class_stats_t *out) {
  BN_ASSERT(cls < r->ncls);
  rx_cls_t *k = &r->cls[cls];
  out->delivered = ck_pr_load_64(&k->inq.delivered);
  out->bytes_in = ck_pr_load_64(&k->bytes_in);
  out->inbound_depth = rx_inq_depth(&k->inq);
  out->tentative_evicted = ck_pr_load_64(&k->tentative_evicted);
}

void rx_class_totals(rx_ctx_t *ctx, unsigned cls, bftnet_class_totals_t *out) {
  BN_ASSERT(cls < BFTNET_MAX_CLASSES);
  out->discarded_removed = ck_pr_load_64(&ctx->cls_discarded_removed[cls]);
  out->tentative_evicted = ck_pr_load_64(&ctx->cls_tentative_evicted[cls]);
}

/* ----------------------------------------------------------- promotion */

void rx_tent_promote(rx_ctx_t *ctx, const peerid_t *peer, rx_t *r) {
  rx_tent_t *t = BN_SIM_DEFECT(5) ? ctx->tent_head : rx__tentative_find(ctx, peer);
  if (!t) return;
  bn_counter_add(ctx->counters, BFTNET_COUNTER_TENTATIVE_PROMOTED, 1);
  bn_counter_add(ctx->counters, BFTNET_COUNTER_TENTATIVE_BYTES, 0 - t->buf.bytes);
  t->buf.bytes = 0; /* handed over below; rx__tentative_free must not subtract it again */
  for (rx_msg_t *msg = rx_tentative_take(&t->buf), *next; msg; msg = next) {
    next = msg->next;
    msg->next = NULL;
    rx_msg_t *relabeled = rx_msg_set_from(msg, r->from);
    if (!relabeled) {
      rx_msg_free(msg);
      continue;
    }
    BN_ASSERT(relabeled->cls < r->ncls);
    deliver(&r->cls[relabeled->cls], relabeled, relabeled->data, relabeled->len);
  }
  /* What it evicted: the member's, in all and per class (the node-wide
   * counters took it when it was evicted, tentative.c). */
  ck_pr_add_64(&r->tentative_evicted, t->buf.evicted);
  for (unsigned i = 0; i < BFTNET_MAX_CLASSES; i++) {
    BN_ASSERT(i < r->ncls || t->buf.evicted_cls[i] == 0); /* its streams were of our classes */
    if (i < r->ncls) ck_pr_add_64(&r->cls[i].tentative_evicted, t->buf.evicted_cls[i]);
  }
  /* No notification of its own: deliver() gave one for what it queued, and
   * one for nothing made bftnet_recv_fd readable with no message waiting. */
  t->lp = NULL; /* the member's dispatcher took the peer's state */
  /* r is new: the newest stream the TentativeReceiver took of each class is
   * its newest. */
  for (unsigned i = 0; i < r->ncls; i++)
    r->order[i] = t->order[i];
  for (unsigned i = 0; i < r->ncls; i++) {
    rx_tent_in_t *in = &t->in[i];
    if (!in->s) continue;
    mig_stream_t *s = in->s;
    size_t held = in->uncredited; /* credit the member's Receiver now owes */
    in->s = NULL;
    rx_deframer_t carry = in->rxd;
    rx__deframer_setup(&in->rxd, ctx);
    rx_cls_t *k = &r->cls[i];
    set_in(k, s, &carry);
    k->uncredited = held;
    credit(k);
  }
  rx__tentative_free(ctx, t, false);
}
