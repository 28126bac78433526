/*
 * tentative.c — TentativeReceivers: the authenticated peers that are not
 * (yet) members. At most tentative_max exist; one more evicts the least
 * recently created (and closes its connection). Each keeps only its peer's
 * newest messages, bounded by count and bytes; older ones are evicted, and
 * counted, as new ones arrive. A message larger than max_bytes on its own
 * is evicted at once, alone: it could never be kept, and evicting the older
 * messages to make room for it would only lose them too. Either way what is
 * kept is delivered in order, on promotion (receiver.c).
 */
#include <stdlib.h>

#include "rx_internal.h"

void rx_tentative_init(rx_tentative_buf_t *t, uint32_t max_msgs, uint64_t max_bytes) {
  memset(t, 0, sizeof(*t));
  t->max_msgs = max_msgs;
  t->max_bytes = max_bytes;
}

/* One message gone unread: counted in all and in its class. */
static void rx_tentative_count_evicted(rx_tentative_buf_t *t, rx_msg_t *m) {
  BN_ASSERT(m->cls < BFTNET_MAX_CLASSES);
  t->evicted++;
  t->evicted_cls[m->cls]++;
  rx_msg_free(m);
}

static void rx_tentative_evict_head(rx_tentative_buf_t *t) {
  rx_msg_t *m = t->head;
  BN_ASSERT(m != NULL && t->count > 0 && t->bytes >= m->len);
  t->head = m->next;
  if (t->head == NULL) t->tail = NULL;
  t->count--;
  t->bytes -= m->len;
  rx_tentative_count_evicted(t, m);
}

void rx_tentative_evict_all(rx_tentative_buf_t *t) {
  while (t->head != NULL)
    rx_tentative_evict_head(t);
}

void rx_tentative_push(rx_tentative_buf_t *t, rx_msg_t *m) {
  BN_ASSERT(m != NULL);
  if (m->len > t->max_bytes || t->max_msgs == 0) {
    rx_tentative_count_evicted(t, m);
    return;
  }
  /* Make room first, oldest first. */
  while (t->count >= t->max_msgs || t->bytes + m->len > t->max_bytes)
    rx_tentative_evict_head(t);
  m->next = NULL;
  if (t->tail != NULL)
    t->tail->next = m;
  else
    t->head = m;
  t->tail = m;
  t->count++;
  t->bytes += m->len;
}

rx_msg_t *rx_tentative_take(rx_tentative_buf_t *t) {
  rx_msg_t *list = t->head;
  t->head = t->tail = NULL;
  t->count = 0;
  t->bytes = 0;
  return list;
}

void rx_tentative_free(rx_tentative_buf_t *t) {
  while (t->head != NULL) {
    rx_msg_t *m = t->head;
    t->head = m->next;
    rx_msg_free(m);
  }
  t->tail = NULL;
  t->count = 0;
  t->bytes = 0;
}

/* ------------------------------------------------- TentativeReceivers */

/* Keeps the node's tentative gauges in step with one buffer's change: the
 * bytes, and the evictions since the last call, in all and per class (the
 * only place either is counted, so the classes always sum to the node
 * counter). */
static void tent_account(rx_tent_t *t, uint64_t bytes0) {
  rx_ctx_t *ctx = t->ctx;
  bn_counter_add(ctx->counters, BFTNET_COUNTER_TENTATIVE_BYTES, t->buf.bytes - bytes0);
  if (t->buf.evicted == t->evicted_told) return;
  for (unsigned i = 0; i < BFTNET_MAX_CLASSES; i++) {
    uint64_t d = t->buf.evicted_cls[i] - t->evicted_cls_told[i];
    if (d) ck_pr_add_64(&ctx->cls_tentative_evicted[i], d);
    t->evicted_cls_told[i] = t->buf.evicted_cls[i];
  }
  /* Last, as in rx_destroy: who sees the node counter sees the classes. */
  bn_counter_add(ctx->counters, BFTNET_COUNTER_TENTATIVE_EVICTED, t->buf.evicted - t->evicted_told);
  t->evicted_told = t->buf.evicted;
}

static void tent_unlink(rx_ctx_t *ctx, rx_tent_t *t) {
  if (t->prev)
    t->prev->next = t->next;
  else
    ctx->tent_head = t->next;
  if (t->next)
    t->next->prev = t->prev;
  else
    ctx->tent_tail = t->prev;
  ctx->ntent--;
}

/* Lets one class's stream go (it ended, or a newer one replaces it). */
static void tent_in_release(rx_tent_in_t *in) {
  mig_stream_t *s = in->s;
  in->s = NULL;
  in->uncredited = 0;
  if (s) mig_stream_release(s);
}

void rx__tentative_free(rx_ctx_t *ctx, rx_tent_t *t, bool close_conn) {
  tent_unlink(ctx, t);
  bn_counter_add(ctx->counters, BFTNET_COUNTER_TENTATIVE_BYTES, 0 - t->buf.bytes);
  bn_counter_add(ctx->counters, BFTNET_COUNTER_TENTATIVE_DESTROYED, 1);
  net_conn_t *c = NULL;
  for (unsigned i = 0; i < BFTNET_MAX_CLASSES; i++) {
    if (t->in[i].s && !c) c = mig_stream_conn(t->in[i].s);
    tent_in_release(&t->in[i]);
    rx_deframer_free(&t->in[i].rxd);
  }
  if (t->lp) {
    mig_peer_release(t->lp);
    t->lp = NULL;
  }
  if (close_conn && c) net_conn_close(c, BFTNET_REASON_LIMIT, BFTNET_ELIMIT);
  rx_tentative_free(&t->buf);
  free(t);
}

static void tent_emit(void *ud, const uint8_t *p, size_t n) {
  rx_tent_in_t *in = ud;
  rx_msg_t *m = rx_msg_new(p, n, "");
  if (!m) return;
  m->cls = (uint8_t)in->cls;
  rx_tentative_push(&in->t->buf, m);
}

/* A non-member gets credit at cfg.tentative_rate bytes/s (a bucket of
 * tentative_max_bytes), shared by its classes' streams: its buffer keeps
 * only the newest messages anyway, and the limit keeps a flood from outside
 * the membership from taking the loop away from members. */
static void tent_credit(rx_ctx_t *ctx, rx_tent_t *t) {
  uint64_t now = bn_now_ns(ctx->t->seam);
  uint64_t add = (now - t->refill_ns) * ctx->cfg.tentative_rate / 1000000000ull;
  if (add) {
    t->tokens = BN_MIN(t->tokens + add, (uint64_t)ctx->cfg.tentative_max_bytes);
    t->refill_ns = now;
  }
  bool owed = false;
  for (unsigned i = 0; i < BFTNET_MAX_CLASSES; i++) {
    rx_tent_in_t *in = &t->in[i];
    if (!in->s || in->uncredited == 0) continue;
    size_t grant = (size_t)BN_MIN((uint64_t)in->uncredited, t->tokens);
    if (grant) {
      in->uncredited -= grant;
      t->tokens -= grant;
      mig_stream_consume(in->s, grant);
    }
    if (in->uncredited) owed = true;
  }
  if (owed) ctx->t->ops->timer_start(ctx->tent_timer, 50, 0);
}

void rx__tentative_tick(void *ud) {
  rx_ctx_t *ctx = ud;
  for (rx_tent_t *t = ctx->tent_head; t; t = t->next)
    tent_credit(ctx, t);
}

static void tent_data(void *ud, mig_stream_t *s, const uint8_t *p, size_t n) {
  rx_tent_in_t *in = ud;
  rx_tent_t *t = in->t;
  if (s != in->s) return mig_stream_consume(s, n);
  uint64_t bytes0 = t->buf.bytes, skipped0 = in->rxd.skipped;
  int rc = rx_deframer_feed(&in->rxd, p, n, tent_emit, in);
  tent_account(t, bytes0);
  bn_counter_add(t->ctx->counters, BFTNET_COUNTER_INBOUND_TOO_BIG, in->rxd.skipped - skipped0);
  if (rc == 0) {
    in->uncredited += n;
    tent_credit(t->ctx, t);
  }
  if (rc < 0) {
    bn_counter_add(t->ctx->counters, BFTNET_COUNTER_BAD_MESSAGE, 1);
    net_conn_t *c = mig_stream_conn(s);
    tent_in_release(in);
    if (c) net_conn_close(c, BFTNET_REASON_PROTOCOL_ERROR, rc);
  }
}

static void tent_event(void *ud, mig_stream_t *s, const mig_event_t *e) {
  rx_tent_in_t *in = ud;
  if (in->s != s || (e->type != MIG_EV_ABORTED && e->type != MIG_EV_CLOSED)) return;
  tent_in_release(in); /* the buffer stays until promotion or eviction */
}

static const mig_stream_cbs_t tent_cbs = {.on_data = tent_data, .on_event = tent_event};

rx_tent_t *rx__tentative_find(rx_ctx_t *ctx, const peerid_t *peer) {
  for (rx_tent_t *t = ctx->tent_head; t; t = t->next)
    if (peerid_equal(&t->peer, peer)) return t;
  return NULL;
}

/* A new TentativeReceiver, the newest; the oldest goes if there are too
 * many. NULL on ENOMEM. */
static rx_tent_t *tent_new(rx_ctx_t *ctx, mig_peer_t *lp) {
  if (ctx->ntent >= ctx->cfg.tentative_max) {
    /* The least recently created goes, with what it buffered: messages
     * its credit already confirmed to their sender, so they are counted
     * (evicted, in their classes), never lost silently. */
    rx_tent_t *old = ctx->tent_head;
    uint64_t bytes0 = old->buf.bytes;
    rx_tentative_evict_all(&old->buf);
    tent_account(old, bytes0);
    rx__tentative_free(ctx, old, true);
  }
  rx_tent_t *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->peer = *mig_peer_id(lp);
  t->ctx = ctx;
  t->tokens = ctx->cfg.tentative_max_bytes;
  t->refill_ns = bn_now_ns(ctx->t->seam);
  bn_counter_add(ctx->counters, BFTNET_COUNTER_TENTATIVE_CREATED, 1);
  for (unsigned i = 0; i < BFTNET_MAX_CLASSES; i++) {
    t->in[i].t = t;
    t->in[i].cls = i;
    rx__deframer_setup(&t->in[i].rxd, ctx);
  }
  rx_tentative_init(&t->buf, ctx->cfg.tentative_max_msgs, ctx->cfg.tentative_max_bytes);
  t->prev = ctx->tent_tail;
  if (ctx->tent_tail)
    ctx->tent_tail->next = t;
  else
    ctx->tent_head = t;
  ctx->tent_tail = t;
  ctx->ntent++;
  return t;
}

int rx_tent_open(rx_ctx_t *ctx, mig_peer_t *lp, unsigned cls, mig_stream_t *s) {
  if (ctx->cfg.tentative_max == 0) return BFTNET_ENOTMEMBER;
  BN_ASSERT(cls < BFTNET_MAX_CLASSES);
  rx_tent_t *t = rx__tentative_find(ctx, mig_peer_id(lp));
  if (t) {
    char who[BFTNET_PEER_ID_MAX] = "";
    peerid_to_string(&t->peer, who, sizeof who);
    int rc = rx__order_admit(ctx, &t->order[cls], s, who, &t->rl);
    if (rc < 0) return rc; /* an older stream of the class than one it took */
    rx_tent_in_t *in = &t->in[cls];
    tent_in_release(in); /* a newer stream of the class replaces the old */
    rx_deframer_free(&in->rxd);
    rx__deframer_setup(&in->rxd, ctx);
  } else {
    if ((t = tent_new(ctx, lp)) == NULL) return BFTNET_ENOMEM;
    (void)rx__order_admit(ctx, &t->order[cls], s, "", &t->rl); /* its first: recorded */
  }
  t->lp = lp;
  mig_peer_set_owner(lp, t);
  t->in[cls].s = s;
  mig_stream_set_cbs(s, &tent_cbs, &t->in[cls]);
  return 0;
}
