/*
 * dispatcher.c — a member's Dispatcher: its life (init, stop, reclaim,
 * destroy), what application threads call (send, broadcast, stats), the
 * loop thread's answer to a wake, and the broadcast log's advance. The
 * stream and the dialer are in outbound.c.
 */
#include <stdlib.h>

#include <ck_pr.h>

#include "disp_internal.h"
#include "dispatcher.h"

int disp_ctx_init(disp_ctx_t *ctx, const disp_config_t *cfg, bn_transport_t *t, net_t *net,
                  mig_node_t *ml, bn_counters_t *counters, bn_pool_t *pool, const disp_cbs_t *cbs) {
  ctx->cfg = *cfg;
  ctx->t = t;
  ctx->net = net;
  ctx->ml = ml;
  ctx->counters = counters;
  ctx->pool = pool;
  ctx->cbs = cbs;
  /* Twice a member's ring: a member that falls behind keeps the newest
   * ring_capacity broadcasts, as its ring keeps the newest sends. */
  uint32_t bcap = cfg->ring_capacity <= (1u << 23) ? 2 * cfg->ring_capacity : (1u << 24);
  return disp_blog_init(&ctx->blog, bcap);
}

void disp_ctx_destroy(disp_ctx_t *ctx) {
  disp_blog_destroy(&ctx->blog);
}

static void set_addrs(disp_t *d, const maddr_t *addrs, size_t naddrs) {
  BN_ASSERT(naddrs >= 1 && naddrs <= BFTNET_MAX_ADDRS);
  memcpy(d->addrs, addrs, naddrs * sizeof *addrs);
  d->naddrs = (unsigned)naddrs;
  d->addr_idx = 0;
}

int disp_init(disp_t *d, disp_ctx_t *ctx, void *ud, const char *name, const peerid_t *peer,
              const maddr_t *addrs, size_t naddrs, uint64_t ver) {
  memset(d, 0, sizeof *d);
  d->ctx = ctx;
  d->ud = ud;
  d->name = name;
  d->peer = *peer;
  set_addrs(d, addrs, naddrs);
  int rc = disp_ring_init(&d->ring, ctx->cfg.ring_capacity);
  if (rc) return rc;
  rc = ctx->t->ops->timer_new(ctx->t, disp__outbound_redial_tick, d, &d->redial);
  if (rc) goto err_ring;
  /* Last: a TentativeReceiver may share the peer's state, so nothing may
   * fail (and release it) after this. */
  d->lp = mig_peer_get(ctx->ml, peer);
  if (!d->lp) {
    rc = BFTNET_ENOMEM;
    goto err_timer;
  }
  mig_peer_set_owner(d->lp, ud);
  mig_peer_set_addrs(d->lp, addrs, naddrs, false);
  disp_framer_init(&d->framer);
  d->framer.write_too_big = ctx->cfg.write_too_big;
  disp__outbound_limit(d); /* a peer that was tentative may have said it already */
  disp_backoff_init(&d->backoff, ctx->cfg.backoff_min_ms, ctx->cfg.backoff_max_ms);
  disp_framer_attach_blog(&d->framer, &ctx->blog, disp_blog_head(&ctx->blog), ver);
  return 0;
err_timer:
  ctx->t->ops->timer_free(d->redial);
err_ring:
  disp_ring_destroy(&d->ring);
  return rc;
}

void disp_set_addrs(disp_t *d, const maddr_t *addrs, size_t naddrs) {
  set_addrs(d, addrs, naddrs); /* the next dial uses the new preference order */
  if (d->lp) mig_peer_set_addrs(d->lp, addrs, naddrs, true);
}

void disp_stop(disp_t *d) {
  d->stopped = true;
  if (d->redial) {
    d->ctx->t->ops->timer_free(d->redial);
    d->redial = NULL;
  }
  ck_pr_add_64(&d->aborted, disp__outbound_lost(d)); /* without a stream: the framer's only */
  d->out = NULL;
  if (d->lp) {
    mig_peer_release(d->lp); /* resets both of the pair's streams, no events */
    d->lp = NULL;
  }
}

void disp_account_removed(disp_t *d) {
  /* Its stats die with it: the node keeps the count of what it released. */
  bn_counter_add(d->ctx->counters, BFTNET_COUNTER_DROPPED_REMOVED,
                 disp_ring_depth(&d->ring) + disp_framer_backlog(&d->framer));
  bn_counter_add(d->ctx->counters, BFTNET_COUNTER_ABORTED_REMOVED, ck_pr_load_64(&d->aborted));
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
  size_t dropped = disp_ring_destroy(&d->ring);
  if (dropped)
    bn_log(d->ctx->cfg.log, BN_LOG_INFO, "member %s removed: %zu queued messages released",
           d->name, dropped);
  disp_framer_abort(&d->framer);
  disp_ends_free(&d->ends);
}

void disp_limit_refresh(disp_t *d) {
  disp__outbound_limit(d);
}

void disp_wake(disp_t *d) {
  if (disp_ring_depth(&d->ring) || d->framer.cur || d->framer.held_len ||
      disp_framer_backlog(&d->framer))
    disp__outbound_drain(d);
  else
    disp__outbound_account(d);
}

/* When the log is seven-eighths full, members more than ring_capacity
 * behind (never connected, never reading) are moved on: they lose their
 * oldest broadcasts, counted as dropped, as a full ring drops its oldest.
 * Until then a full log makes bftnet_broadcast fall back to the rings. */
void disp_blog_advance(disp_ctx_t *ctx, disp_t *const *ds, size_t n) {
  disp_blog_t *l = &ctx->blog;
  uint64_t h = disp_blog_head(l), lo = h;
  if (h == l->tail) return; /* empty: every cursor is at the head */
  for (size_t i = 0; i < n; i++) {
    disp_framer_blog_skip_foreign(&ds[i]->framer);
    lo = BN_MIN(lo, ds[i]->framer.bcur);
  }
  if (h - lo > l->cap - l->cap / 8) {
    lo = h;
    for (size_t i = 0; i < n; i++) {
      /* (half the log when ring_capacity is at its 2^24 cap and so is the log) */
      disp_framer_blog_trim(&ds[i]->framer, BN_MIN((uint64_t)ctx->cfg.ring_capacity, l->cap / 2));
      lo = BN_MIN(lo, ds[i]->framer.bcur);
    }
  }
  disp_blog_release_to(l, lo);
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

int disp_send(disp_ctx_t *ctx, disp_t *d, const void *data, size_t len) {
  if (too_big_for(ctx, d, len)) {
    refuse_too_big(ctx, d);
    return BFTNET_EPEERTOOBIG;
  }
  disp_msg_t *msg = disp_msg_new(ctx->pool, data, len, 1);
  if (!msg) return BFTNET_ENOMEM;
  msg->bseq = disp_blog_head(&ctx->blog); /* broadcasts before this one go first */
  disp_ring_push_mpmc(&d->ring, msg);
  return 0;
}

int disp_broadcast(disp_ctx_t *ctx, disp_t *const *ds, size_t n, uint64_t ver, const void *data,
                   size_t len) {
  if (n == 0) return 0;
  size_t can = 0; /* the members that take it; the others' framers skip and count it */
  for (size_t i = 0; i < n; i++) can += !too_big_for(ctx, ds[i], len);
  if (can == 0) {
    for (size_t i = 0; i < n; i++) refuse_too_big(ctx, ds[i]);
    return BFTNET_EPEERTOOBIG;
  }
  disp_msg_t *msg = disp_msg_new(ctx->pool, data, len, 1); /* one buffer, shared */
  if (!msg) return BFTNET_ENOMEM;
  if (!disp_blog_push(&ctx->blog, msg, ver)) {
    /* The log is full (the loop has not caught up): into every ring, in
     * order behind the log's entries. Nobody else holds msg yet. */
    msg->refs = (uint32_t)n;
    msg->bseq = disp_blog_head(&ctx->blog);
    for (size_t i = 0; i < n; i++)
      disp_ring_push_mpmc(&ds[i]->ring, msg);
  }
  return (int)can;
}

void disp_stats(disp_t *d, bftnet_peer_stats_t *out) {
  out->enqueued = ck_pr_load_64(&d->ring.enqueued) + ck_pr_load_64(&d->framer.btaken) +
                  ck_pr_load_64(&d->framer.bdropped) + disp_framer_blog_pending(&d->framer);
  out->sent = ck_pr_load_64(&d->sent);
  out->dropped_overflow = ck_pr_load_64(&d->ring.dropped) + ck_pr_load_64(&d->framer.bdropped);
  out->dropped_removed = ck_pr_load_64(&d->dropped_removed);
  out->bytes_out = ck_pr_load_64(&d->bytes_out);
  out->reconnects = ck_pr_load_64(&d->reconnects);
  out->aborted = ck_pr_load_64(&d->aborted);
  out->ring_depth = disp_ring_depth(&d->ring) + (uint32_t)disp_framer_backlog(&d->framer);
  out->connected = ck_pr_load_int(&d->connected);
  out->unconfirmed = ck_pr_load_64(&d->unconfirmed);
  out->dropped_too_big = ck_pr_load_64(&d->refused_too_big) + ck_pr_load_64(&d->framer.too_big);
  out->max_message_size = ck_pr_load_32(&d->peer_max);
}

bool disp_idle(disp_t *d) {
  return !(disp_ring_depth(&d->ring) || disp_framer_backlog(&d->framer) ||
           ck_pr_load_64(&d->unconfirmed) || ck_pr_load_int(&d->framer_busy));
}
