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
#include <ck_pr.h>

#include "rx_internal.h"

/* ------------------------------------------------ delivery to the app */

static void notify_run(void *ud) {
  rx_ctx_t *ctx = ud;
  ctx->notify_queued = false;
  ctx->cbs->on_ready(ctx->ud);
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

static void in_emit(void *ud, const uint8_t *p, size_t n) {
  rx_t *r = ud;
  rx_ctx_t *ctx = r->ctx;
  if (ctx->cfg.on_message) {
    ctx->cfg.on_message(r->from, p, n, ctx->cfg.user);
    ck_pr_inc_64(&r->inq.delivered);
    return;
  }
  rx_msg_t *msg = rx_msg_carve(&r->carver, p, n, r->from);
  if (!msg) { /* the message is lost: say so, loudly and counted */
    bn_counter_add(ctx->counters, BFTNET_COUNTER_IO_ERRORS, 1);
    bn_log(ctx->cfg.log, BN_LOG_ERROR, "out of memory: a message from %s was lost", r->from);
    return;
  }
  rx_inq_push_spmc(&r->inq, msg);
  notify_later(ctx);
}

/* Credits what the member sent unless its inbound queue is over its limit:
 * then the credit waits for the application. */
static void credit(rx_t *r) {
  if (!r->in || r->uncredited == 0) return;
  if (!r->ctx->cfg.on_message && rx_inq_over(&r->inq) && !BN_SIM_DEFECT(4)) {
    ck_pr_store_int(&r->throttled, 1);
    return;
  }
  ck_pr_store_int(&r->throttled, 0);
  size_t k = r->uncredited;
  r->uncredited = 0;
  mig_stream_consume(r->in, k);
}

static void rxd_init(rx_t *r) {
  rx__deframer_setup(&r->rxd, r->ctx);
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

static void in_gone(rx_t *r, mig_stream_t *ls) {
  if (r->in != ls) return;
  r->in = NULL;
  r->uncredited = 0;
  rx_deframer_free(&r->rxd);
  rxd_init(r);
  mig_stream_release(ls);
}

static void in_data(void *ud, mig_stream_t *ls, const uint8_t *p, size_t n) {
  rx_t *r = ud;
  rx_ctx_t *ctx = r->ctx;
  ctx->activity++;
  if (ls != r->in) return mig_stream_consume(ls, n);
  ck_pr_add_64(&r->bytes_in, n);
  uint64_t skipped0 = r->rxd.skipped;
  int rc = rx_deframer_feed(&r->rxd, p, n, in_emit, r);
  if (r->rxd.skipped != skipped0) count_too_big(r, r->rxd.skipped - skipped0);
  if (rc < 0) {
    /* A malformed or oversized frame closes that connection, never more. */
    bn_counter_add(ctx->counters, BFTNET_COUNTER_BAD_MESSAGE, 1);
    bn_log(ctx->cfg.log, BN_LOG_WARN, "member %s sent a bad message frame: %s; connection closed",
           r->from, bftnet_strerror(rc));
    net_conn_t *c = mig_stream_conn(ls);
    in_gone(r, ls);
    if (c) net_conn_close(c, BFTNET_REASON_PROTOCOL_ERROR, rc);
    return;
  }
  r->uncredited += n;
  credit(r);
}

static void in_event(void *ud, mig_stream_t *ls, const mig_event_t *e) {
  rx_t *r = ud;
  if (ls != r->in) return;
  switch (e->type) {
  case MIG_EV_ABORTED:
  case MIG_EV_CLOSED:
    r->ctx->cbs->on_stream_event(r->ud, ls, e);
    in_gone(r, ls);
    break;
  case MIG_EV_READ_EOF:
    break;
  default:
    r->ctx->cbs->on_stream_event(r->ud, ls, e);
    break;
  }
}

static const mig_stream_cbs_t in_cbs = {.on_data = in_data, .on_event = in_event};

/* The member's newest stream is its Receiver's; an older one is reset. */
static void set_in(rx_t *r, mig_stream_t *ls, rx_deframer_t *carry) {
  if (r->in && r->in != ls) in_gone(r, r->in);
  r->in = ls;
  r->uncredited = 0;
  if (carry) {
    rx_deframer_free(&r->rxd);
    r->rxd = *carry; /* a partly received message carries over on promotion */
  }
  mig_stream_set_cbs(ls, &in_cbs, r);
}

void rx_set_in(rx_t *r, mig_stream_t *ls) {
  set_in(r, ls, NULL);
}

int rx_init(rx_t *r, rx_ctx_t *ctx, void *ud, const char *from) {
  memset(r, 0, sizeof *r);
  r->ctx = ctx;
  r->ud = ud;
  r->from = from;
  int rc = rx_inq_init(&r->inq, ctx->cfg.inbound_max_msgs, ctx->cfg.inbound_max_bytes);
  if (rc) return rc;
  rxd_init(r);
  r->carver.pool = ctx->pool;
  return 0;
}

void rx_wake(rx_t *r) {
  if (ck_pr_load_int(&r->throttled)) {
    rx_inq_refill_spmc(&r->inq);
    credit(r);
  }
}

void rx_stop(rx_t *r) {
  r->in = NULL;
}

void rx_destroy(rx_t *r) {
  uint32_t unread = rx_inq_depth(&r->inq);
  if (unread) {
    bn_counter_add(r->ctx->counters, BFTNET_COUNTER_INBOUND_DISCARDED_REMOVED, unread);
    bn_log(r->ctx->cfg.log, BN_LOG_INFO, "member %s removed: %u received messages discarded unread",
           r->from, unread);
  }
  rx_inq_destroy(&r->inq);
  rx_carver_release(&r->carver);
  rx_deframer_free(&r->rxd);
}

void rx_stats(rx_t *r, bftnet_peer_stats_t *out) {
  out->delivered = ck_pr_load_64(&r->inq.delivered);
  out->bytes_in = ck_pr_load_64(&r->bytes_in);
  out->tentative_evicted = ck_pr_load_64(&r->tentative_evicted);
  out->inbound_depth = rx_inq_depth(&r->inq);
  out->discarded_too_big = ck_pr_load_64(&r->too_big);
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
    if (ctx->cfg.on_message) {
      ctx->cfg.on_message(r->from, relabeled->data, relabeled->len, ctx->cfg.user);
      ck_pr_inc_64(&r->inq.delivered);
      rx_msg_free(relabeled);
    } else {
      rx_inq_push_spmc(&r->inq, relabeled);
    }
  }
  ck_pr_add_64(&r->tentative_evicted, t->buf.evicted);
  notify_later(ctx);
  t->lp = NULL; /* the member's dispatcher took the peer's state */
  if (t->s) {
    mig_stream_t *s = t->s;
    size_t held = t->uncredited; /* credit the member's Receiver now owes */
    t->s = NULL;
    rx_deframer_t carry = t->rxd;
    rx__deframer_setup(&t->rxd, ctx);
    set_in(r, s, &carry);
    r->uncredited = held;
    credit(r);
  }
  rx__tentative_free(ctx, t, false);
}
