/*
 * member.c — a member's Dispatcher: its life (init, stop, reclaim,
 * destroy), what application threads call (send, broadcast, stats), the
 * loop thread's answer to a wake, and the broadcast logs' advance. A
 * Dispatcher has one ring, framer and stream per traffic class; the
 * streams, the scheduler's use and the dialer are in outbound.c.
 */
#include <stdlib.h>

#include <ck_pr.h>

#include "disp_internal.h"
#include "dispatcher.h"

int disp_ctx_init(disp_ctx_t *ctx, const disp_config_t *cfg, bn_transport_t *t, net_t *net,
                  mig_node_t *ml, bn_counters_t *counters, bn_pool_t *pool, const disp_cbs_t *cbs) {
  memset(ctx, 0, sizeof *ctx);
  if (!cfg->classes || cfg->ncls == 0 || cfg->ncls > BFTNET_MAX_CLASSES) return BFTNET_EINVAL;
  ctx->cfg = *cfg;
  ctx->t = t;
  ctx->net = net;
  ctx->ml = ml;
  ctx->counters = counters;
  ctx->pool = pool;
  ctx->cbs = cbs;
  for (unsigned i = 0; i < cfg->ncls; i++) {
    const bftnet_class_t *c = &cfg->classes[i];
    /* Twice a member's ring: a member that falls behind keeps the newest
     * ring_capacity broadcasts (and ring_max_bytes), as its ring keeps the
     * newest sends. */
    uint32_t bcap = c->ring_capacity <= (1u << 23) ? 2 * c->ring_capacity : (1u << 24);
    uint64_t bbytes = c->ring_max_bytes <= UINT64_MAX / 2 ? 2 * c->ring_max_bytes : UINT64_MAX;
    int rc = disp_blog_init_ex(&ctx->blog[i], bcap, bbytes);
    if (rc) {
      disp_ctx_destroy(ctx);
      return rc;
    }
  }
  return 0;
}

void disp_ctx_destroy(disp_ctx_t *ctx) {
  for (unsigned i = 0; i < BFTNET_MAX_CLASSES; i++)
    if (ctx->blog[i].slots) disp_blog_destroy(&ctx->blog[i]);
}

static void set_addrs(disp_t *d, const maddr_t *addrs, size_t naddrs) {
  BN_ASSERT(naddrs >= 1 && naddrs <= BFTNET_MAX_ADDRS);
  memcpy(d->addrs, addrs, naddrs * sizeof *addrs);
  d->naddrs = (unsigned)naddrs;
  d->addr_idx = 0;
}

/* The class array: its rings (what application threads push into) and
 * framers. On error nothing is left. */
static int classes_init(disp_t *d, uint64_t ver) {
  disp_ctx_t *ctx = d->ctx;
  unsigned n = ctx->cfg.ncls;
  size_t bytes = (n * sizeof(disp_cls_t) + 63) / 64 * 64;
  d->cls = aligned_alloc(64, bytes);
  if (!d->cls) return BFTNET_ENOMEM;
  memset(d->cls, 0, bytes);
  uint8_t prio[BFTNET_MAX_CLASSES];
  uint32_t weight[BFTNET_MAX_CLASSES];
  for (unsigned i = 0; i < n; i++) {
    const bftnet_class_t *c = &ctx->cfg.classes[i];
    disp_cls_t *k = &d->cls[i];
    int rc = disp_ring_init_ex(&k->ring, c->ring_capacity, c->ring_max_bytes,
                               c->policy == BFTNET_KEEP_LATEST);
    if (rc) {
      while (i--)
        disp_ring_destroy(&d->cls[i].ring);
      free(d->cls);
      d->cls = NULL;
      return rc;
    }
    k->d = d;
    k->idx = i;
    disp_framer_init(&k->framer);
    k->framer.delay = &k->delay;
    k->framer.write_too_big = ctx->cfg.write_too_big;
    k->framer.seam = ctx->t->seam;
    disp_framer_attach_blog(&k->framer, &ctx->blog[i], disp_blog_head(&ctx->blog[i]), ver);
    disp_backoff_init(&k->nab, DISP_REFUSED_RETRY_MIN_MS, DISP_REFUSED_RETRY_MAX_MS);
    prio[i] = c->priority;
    weight[i] = c->weight;
  }
  d->ncls = n;
  disp_sched_init(&d->sched, n, prio, weight, ctx->cfg.min_share);
  return 0;
}

static void classes_destroy(disp_t *d) {
  for (unsigned i = 0; d->cls && i < d->ncls; i++)
    disp_ring_destroy(&d->cls[i].ring);
  free(d->cls);
  d->cls = NULL;
}

int disp_init(disp_t *d, disp_ctx_t *ctx, void *ud, const char *name, const peerid_t *peer,
              const maddr_t *addrs, size_t naddrs, uint64_t ver) {
  memset(d, 0, sizeof *d);
  d->ctx = ctx;
  d->ud = ud;
  d->name = name;
  d->peer = *peer;
  set_addrs(d, addrs, naddrs);
  int rc = classes_init(d, ver);
  if (rc) return rc;
  rc = ctx->t->ops->timer_new(ctx->t, disp__outbound_redial_tick, d, &d->redial);
  if (rc) goto err_classes;
  rc = ctx->t->ops->timer_new(ctx->t, disp__outbound_retry_tick, d, &d->retry);
  if (rc) goto err_timer;
  /* Last: a TentativeReceiver may share the peer's state, so nothing may
   * fail (and release it) after this. */
  d->lp = mig_peer_get(ctx->ml, peer);
  if (!d->lp) {
    rc = BFTNET_ENOMEM;
    goto err_retry;
  }
  mig_peer_set_owner(d->lp, ud);
  mig_peer_set_addrs(d->lp, addrs, naddrs, false);
  disp__outbound_limit(d); /* a peer that was tentative may have said it already */
  disp_backoff_init(&d->backoff, ctx->cfg.backoff_min_ms, ctx->cfg.backoff_max_ms);
  return 0;
err_retry:
  ctx->t->ops->timer_free(d->retry);
err_timer:
  ctx->t->ops->timer_free(d->redial);
err_classes:
  classes_destroy(d);
  return rc;
}

void disp_set_addrs(disp_t *d, const maddr_t *addrs, size_t naddrs) {
  set_addrs(d, addrs, naddrs); /* the next dial uses the new preference order */
  if (d->lp) mig_peer_set_addrs(d->lp, addrs, naddrs, true);
}

void disp_stop(disp_t *d) {
  d->stopped = true;
  bn_ttimer_t **timers[] = {&d->redial, &d->retry};
  for (size_t i = 0; i < BN_ARRAY_LEN(timers); i++)
    if (*timers[i]) {
      d->ctx->t->ops->timer_free(*timers[i]);
      *timers[i] = NULL;
    }
  for (unsigned i = 0; i < d->ncls; i++) {
    disp_cls_t *k = &d->cls[i];
    ck_pr_add_64(&k->aborted, disp__outbound_lost(k)); /* without a stream: the framer's only */
    k->out = NULL;
  }
  if (d->lp) {
    mig_peer_release(d->lp); /* resets every stream of the pair, no events */
    d->lp = NULL;
  }
}

void disp_account_removed(disp_t *d) {
  /* Its stats die with it: the node keeps the count of what it released. */
  uint64_t queued = 0, aborted = 0;
  for (unsigned i = 0; i < d->ncls; i++) {
    disp_cls_t *k = &d->cls[i];
    queued += disp_ring_depth(&k->ring) + disp_framer_backlog(&k->framer);
    aborted += ck_pr_load_64(&k->aborted);
  }
  bn_counter_add(d->ctx->counters, BFTNET_COUNTER_DROPPED_REMOVED, queued);
  bn_counter_add(d->ctx->counters, BFTNET_COUNTER_ABORTED_REMOVED, aborted);
}

bool disp_reclaim(disp_t *d) {
  BN_ASSERT(d->stopped);
  if (d->dialing) { /* dial_done tells the owner */
    d->reclaimable = true;
    return false;
  }
  return true;
}

void disp_destroy(disp_t *d) {
  size_t dropped = 0;
  for (unsigned i = 0; d->cls && i < d->ncls; i++) {
    disp_cls_t *k = &d->cls[i];
    dropped += disp_ring_destroy(&k->ring);
    disp_framer_abort(&k->framer);
    disp_ends_free(&k->ends);
  }
  if (dropped)
    bn_log(d->ctx->cfg.log, BN_LOG_INFO, "member %s removed: %zu queued messages released", d->name,
           dropped);
  free(d->cls);
  d->cls = NULL;
}

void disp_limit_refresh(disp_t *d) {
  disp__outbound_limit(d);
}

void disp_wake(disp_t *d) {
  disp__outbound_limit(d);
  for (unsigned i = 0; i < d->ncls; i++)
    if (disp_framer_pending(&d->cls[i].framer, &d->cls[i].ring)) return disp__outbound_drain(d);
  for (unsigned i = 0; i < d->ncls; i++)
    disp__outbound_account(&d->cls[i]);
}

/* When a class's log is seven-eighths full (or holds its byte cap),
 * members more than a ring behind (never connected, never reading) are
 * moved on: they lose their oldest broadcasts, counted as dropped, as a
 * full ring drops its oldest. Until then a full log makes a broadcast fall
 * back to the rings. */
static void blog_advance_one(disp_ctx_t *ctx, unsigned c, disp_t *const *ds, size_t n) {
  disp_blog_t *l = &ctx->blog[c];
  const bftnet_class_t *k = &ctx->cfg.classes[c];
  uint64_t h = disp_blog_head(l), lo = h;
  if (h == l->tail) return; /* empty: every cursor is at the head */
  for (size_t i = 0; i < n; i++) {
    disp_framer_blog_skip_foreign(&ds[i]->cls[c].framer);
    lo = BN_MIN(lo, ds[i]->cls[c].framer.bcur);
  }
  uint64_t held = ck_pr_load_64(&l->bytes_head) - l->bytes_tail;
  bool bytes_full = l->max_bytes != UINT64_MAX && held > l->max_bytes / 2;
  if (h - lo > l->cap - l->cap / 8 || bytes_full) {
    lo = h;
    for (size_t i = 0; i < n; i++) {
      disp_framer_t *f = &ds[i]->cls[c].framer;
      /* (half the log when ring_capacity is at its 2^24 cap and so is the log) */
      disp_framer_blog_trim(f, BN_MIN((uint64_t)k->ring_capacity, l->cap / 2));
      if (k->ring_max_bytes != UINT64_MAX) disp_framer_blog_trim_bytes(f, k->ring_max_bytes);
      lo = BN_MIN(lo, f->bcur);
    }
  }
  disp_blog_release_to(l, lo);
}

void disp_blog_advance(disp_ctx_t *ctx, disp_t *const *ds, size_t n) {
  for (unsigned c = 0; c < ctx->cfg.ncls; c++)
    blog_advance_one(ctx, c, ds, n);
}

/* Samples the queueing delay of some messages (disp_ring_sample_weight):
 * the clock is read for those only. */
static void msg_stamp(disp_ctx_t *ctx, disp_msg_t *m, uint32_t w) {
  if (!w) return;
  m->w = w;
  m->t_ns = bn_now_ns(ctx->t->seam);
}

/* Any thread: true if the member said it takes no message of len bytes. */
static bool too_big_for(const disp_ctx_t *ctx, disp_t *d, size_t len) {
  uint32_t lim = ck_pr_load_32(&d->peer_max);
  return lim && len > lim && !ctx->cfg.write_too_big;
}

static void refuse_too_big(disp_ctx_t *ctx, disp_t *d) {
  ck_pr_inc_64(&d->refused_too_big);
  bn_counter_add(ctx->counters, BFTNET_COUNTER_DROPPED_TOO_BIG, 1);
}

int disp_send(disp_ctx_t *ctx, disp_t *d, unsigned cls, uint64_t key, const void *data,
              size_t len) {
  BN_ASSERT(cls < d->ncls);
  if (too_big_for(ctx, d, len)) {
    refuse_too_big(ctx, d);
    return BFTNET_EPEERTOOBIG;
  }
  disp_cls_t *k = &d->cls[cls];
  disp_msg_t *msg = disp_msg_new(ctx->pool, data, len, 1);
  if (!msg) return BFTNET_ENOMEM;
  msg->key = key;
  uint32_t w = disp_ring_sample_weight(&k->ring);
  if (w) { /* what the other classes wrote so far (disp_msg_t.ahead0) */
    msg_stamp(ctx, msg, w);
    msg->ahead0 = ck_pr_load_64(&d->written) - ck_pr_load_64(&k->bytes_out);
  }
  msg->bseq = disp_blog_head(&ctx->blog[cls]); /* broadcasts before this one go first */
  disp_ring_push_mpmc(&k->ring, msg);
  return 0;
}

/* Into every member's ring, one reference each, in order behind the log's
 * entries (the log is full, or a keep-latest key must find its peers). */
static void broadcast_rings(disp_ctx_t *ctx, disp_t *const *ds, size_t n, unsigned cls,
                            disp_msg_t *msg) {
  msg->refs = (uint32_t)n; /* nobody else holds msg yet */
  msg->bseq = disp_blog_head(&ctx->blog[cls]);
  for (size_t i = 0; i < n; i++)
    disp_ring_push_mpmc(&ds[i]->cls[cls].ring, msg);
}

int disp_broadcast(disp_ctx_t *ctx, disp_t *const *ds, size_t n, uint64_t ver, unsigned cls,
                   uint64_t key, const void *data, size_t len) {
  if (n == 0) return 0;
  BN_ASSERT(cls < ctx->cfg.ncls);
  size_t can = 0; /* the members that take it; the others' framers skip and count it */
  for (size_t i = 0; i < n; i++)
    can += !too_big_for(ctx, ds[i], len);
  if (can == 0) {
    for (size_t i = 0; i < n; i++)
      refuse_too_big(ctx, ds[i]);
    return BFTNET_EPEERTOOBIG;
  }
  disp_msg_t *msg = disp_msg_new(ctx->pool, data, len, 1); /* one buffer, shared */
  if (!msg) return BFTNET_ENOMEM;
  msg_stamp(ctx, msg, 1);
  bool keyed = key && ctx->cfg.classes[cls].policy == BFTNET_KEEP_LATEST;
  msg->key = keyed ? key : 0;
  if (keyed || !disp_blog_push(&ctx->blog[cls], msg, ver)) broadcast_rings(ctx, ds, n, cls, msg);
  return (int)can;
}

/* The send side of one class: queued in its ring and its log. */
static void cls_counts(disp_cls_t *k, uint64_t *enq, uint64_t *drop, uint32_t *depth) {
  disp_framer_t *f = &k->framer;
  *enq = ck_pr_load_64(&k->ring.enqueued) + ck_pr_load_64(&f->btaken) +
         ck_pr_load_64(&f->bdropped) + disp_framer_blog_pending(f);
  *drop = ck_pr_load_64(&k->ring.dropped) + ck_pr_load_64(&f->bdropped);
  *depth = disp_ring_depth(&k->ring) + (uint32_t)disp_framer_backlog(f);
}

void disp_stats(disp_t *d, bftnet_peer_stats_t *out) {
  uint64_t enq_all = 0, drop_all = 0, sent = 0, bytes = 0, aborted = 0, unconf = 0, big = 0;
  uint32_t depth_all = 0;
  for (unsigned i = 0; i < d->ncls; i++) {
    disp_cls_t *k = &d->cls[i];
    uint64_t enq, drop;
    uint32_t depth;
    cls_counts(k, &enq, &drop, &depth);
    enq_all += enq;
    drop_all += drop;
    depth_all += depth;
    sent += ck_pr_load_64(&k->sent);
    bytes += ck_pr_load_64(&k->bytes_out);
    aborted += ck_pr_load_64(&k->aborted);
    unconf += ck_pr_load_64(&k->unconfirmed);
    big += ck_pr_load_64(&k->framer.too_big);
  }
  out->enqueued = enq_all;
  out->sent = sent;
  out->dropped_overflow = drop_all;
  out->dropped_removed = ck_pr_load_64(&d->dropped_removed);
  out->bytes_out = bytes;
  out->reconnects = ck_pr_load_64(&d->reconnects);
  out->aborted = aborted;
  out->ring_depth = depth_all;
  out->connected = ck_pr_load_int(&d->cls[0].connected);
  out->unconfirmed = unconf;
  out->dropped_too_big = ck_pr_load_64(&d->refused_too_big) + big;
  out->max_message_size = ck_pr_load_32(&d->peer_max);
}

void disp_class_stats(disp_t *d, unsigned cls, bftnet_class_stats_t *out) {
  BN_ASSERT(cls < d->ncls);
  disp_cls_t *k = &d->cls[cls];
  cls_counts(k, &out->enqueued, &out->dropped, &out->ring_depth);
  out->sent = ck_pr_load_64(&k->sent);
  out->superseded = ck_pr_load_64(&k->ring.superseded);
  out->aborted = ck_pr_load_64(&k->aborted);
  out->bytes_out = ck_pr_load_64(&k->bytes_out);
  out->delay_p50_ns = disp_hist_quantile(&k->delay, 0.50);
  out->delay_p99_ns = disp_hist_quantile(&k->delay, 0.99);
  out->delay_max_ns = ck_pr_load_64(&k->delay.max);
  out->delay_samples = ck_pr_load_64(&k->delay.samples);
  out->connected = ck_pr_load_int(&k->connected);
  out->refused = ck_pr_load_64(&k->refused);
  out->ahead_max_bytes = ck_pr_load_64(&k->framer.ahead_max);
  out->unconfirmed = ck_pr_load_64(&k->unconfirmed);
}

bool disp_idle(disp_t *d) {
  for (unsigned i = 0; i < d->ncls; i++) {
    disp_cls_t *k = &d->cls[i];
    if (disp_ring_depth(&k->ring) || disp_framer_backlog(&k->framer) ||
        ck_pr_load_64(&k->unconfirmed) || ck_pr_load_int(&k->framer_busy))
      return false;
  }
  return true;
}
