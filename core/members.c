/*
 * members.c — the membership-driven part of the facade (seed 003):
 * bftnet_connect diffs the membership; each member gets a Dispatcher (its
 * send ring, a dialer with backoff, one outbound /bftnet/msg/1.0.0 stream)
 * and a Receiver (deframer -> bounded inbound queue that application
 * threads drain round-robin). Authenticated non-members get a bounded
 * TentativeReceiver that a later bftnet_connect promotes.
 *
 * Application threads find members through an immutable snapshot read
 * inside an epoch section (Concurrency Kit ck_epoch); the loop thread
 * publishes a new snapshot on every membership change and frees the old
 * one, and removed members, only after ck_epoch_synchronize.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <ck_pr.h>

#include "bftnet_internal.h"

/* -------------------------------------------------------------- epochs */

/* Application threads take a record from ck_epoch's pool for each call. */
static ck_epoch_record_t *epoch_enter(bftnet_t *b, ck_epoch_section_t *sec) {
  ck_epoch_record_t *r = ck_epoch_recycle(&b->epoch, NULL);
  if (r) {
    BN_TSAN_ACQUIRE(r); /* handed over by ck's CAS from the last user */
  } else {
    epoch_rec_t *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    do {
      e->next = ck_pr_load_ptr(&b->recs);
    } while (!ck_pr_cas_ptr(&b->recs, e->next, e));
    r = &e->rec;
    ck_epoch_register(&b->epoch, r, NULL);
  }
  ck_epoch_begin(r, sec);
  return r;
}

static void epoch_exit(bftnet_t *b, ck_epoch_record_t *r, ck_epoch_section_t *sec) {
  BN_TSAN_RELEASE(&b->epoch); /* our reads happen before the grace period ends */
  ck_epoch_end(r, sec);
  BN_TSAN_RELEASE(r);
  ck_epoch_unregister(r);
}

static msnap_t *snap_load(bftnet_t *b) {
  msnap_t *s = ck_pr_load_ptr(&b->snap);
  BN_TSAN_ACQUIRE(s);
  return s;
}

static int mbr_cmp_key(const void *key, const void *elem) {
  return strcmp(key, (*(mbr_t *const *)elem)->node_id);
}

static mbr_t *snap_find(const msnap_t *s, const char *node_id) {
  if (s->n == 0) return NULL;
  mbr_t **p = bsearch(node_id, s->m, s->n, sizeof *s->m, mbr_cmp_key);
  return p ? *p : NULL;
}

/* Loop thread only (it is the writer, so it reads without a section). */
static mbr_t *find_by_peer(bftnet_t *b, const peerid_t *peer) {
  msnap_t *s = b->snap;
  for (size_t i = 0; i < s->n; i++)
    if (peerid_equal(&s->m[i]->peer, peer)) return s->m[i];
  return NULL;
}

static void mbr_dial(mbr_t *m);

/* -------------------------------------------------------------- events */

static void emit_member(bftnet_t *b, bftnet_event_type_t type, const mbr_t *m,
                        bftnet_reason_t reason, int err) {
  if (!b->cfg.on_event) return;
  char peer[BFTNET_PEER_ID_MAX] = "";
  peerid_to_string(&m->peer, peer, sizeof peer);
  bftnet_event_t ev = {.type = type, .node_id = m->node_id, .peer_id = peer,
                       .remote_addr = "", .reason = reason, .error = err};
  b->cfg.on_event(&ev, b->cfg.user);
}

void members_conn_event(bftnet_t *b, net_conn_t *c, bftnet_event_type_t type,
                        bftnet_reason_t reason, int err) {
  /* A member that reached us while our Dispatcher waits out its backoff:
   * use that connection now rather than at the next redial. */
  if (type == BFTNET_EV_CONNECTED && net_conn_peer(c)->len) {
    mbr_t *m = find_by_peer(b, net_conn_peer(c));
    if (m && !m->out && !m->dialing && !m->removed) {
      b->t->ops->timer_stop(m->redial);
      mbr_dial(m); /* net_dial reuses the connection that is up */
    }
  }
  if (!b->cfg.on_event) return;
  char peer[BFTNET_PEER_ID_MAX] = "", addr[BFTNET_ADDR_MAX] = "";
  if (net_conn_peer(c)->len) peerid_to_string(net_conn_peer(c), peer, sizeof peer);
  net_conn_remote_addr(c, addr, sizeof addr);
  const mbr_t *m = net_conn_peer(c)->len ? find_by_peer(b, net_conn_peer(c)) : NULL;
  bftnet_event_t ev = {.type = type, .node_id = m ? m->node_id : "", .peer_id = peer,
                       .remote_addr = addr, .outbound = net_conn_outbound(c),
                       .reason = reason, .error = err};
  b->cfg.on_event(&ev, b->cfg.user);
}

/* ------------------------------------------------ delivery to the app */

static void notify_app(void *ud) {
  bftnet_t *b = ud;
  b->notify_queued = false;
  uint64_t one = 1;
  (void)!write(b->efd, &one, sizeof one);
}

static void notify_later(bftnet_t *b) {
  if (b->notify_queued) return;
  b->notify_queued = true;
  b->t->ops->defer(b->t, notify_app, b);
}

/* ---------------------------------------------------------- Dispatcher */

static void mbr_drain(mbr_t *m);

static void mbr_redial_tick(void *ud) { mbr_dial(ud); }

static void mbr_schedule_redial(mbr_t *m) {
  bftnet_t *b = m->b;
  if (m->removed || !m->redial) return;
  uint64_t ms = disp_backoff_next_ms(&m->backoff, b->t->seam);
  b->t->ops->timer_start(m->redial, ms, 0);
}

static void mbr_out_lost(mbr_t *m, int err) {
  bftnet_t *b = m->b;
  bool was_ready = m->out_ready;
  m->out = NULL;
  m->out_ready = false;
  ck_pr_store_int(&m->connected, 0);
  ck_pr_add_64(&m->aborted, (uint64_t)disp_framer_abort(&m->framer));
  if (was_ready) emit_member(b, BFTNET_EV_MEMBER_DOWN, m, BFTNET_REASON_RESET, err);
  mbr_schedule_redial(m);
}

static void out_ready(void *ud, net_stream_t *s) {
  (void)s;
  mbr_t *m = ud;
  m->out_ready = true;
  ck_pr_store_int(&m->connected, 1);
  if (m->ever_up) ck_pr_inc_64(&m->reconnects);
  m->ever_up = true;
  disp_backoff_reset(&m->backoff);
  emit_member(m->b, BFTNET_EV_MEMBER_UP, m, BFTNET_REASON_NONE, 0);
  mbr_drain(m);
}

static void out_writable(void *ud, net_stream_t *s) {
  (void)s;
  mbr_drain(ud);
}

static void out_data(void *ud, net_stream_t *s, const uint8_t *p, size_t n) {
  (void)ud;
  (void)p;
  /* The opener controls the stream (seed 002): the peer writes nothing here. */
  net_stream_consume(s, n);
}

static void out_error(void *ud, net_stream_t *s, int err) {
  mbr_t *m = ud;
  if (m->out == s) mbr_out_lost(m, err);
}

static void out_free(void *ud, net_stream_t *s) {
  mbr_t *m = ud;
  if (m->out == s) mbr_out_lost(m, BFTNET_ECLOSED);
}

static const net_stream_cbs_t out_cbs = {.on_ready = out_ready,
                                         .on_data = out_data,
                                         .on_error = out_error,
                                         .on_writable = out_writable,
                                         .on_free = out_free};

static void mbr_free(mbr_t *m);

static void mbr_dial_done(void *ud, net_conn_t *c, int err) {
  mbr_t *m = ud;
  m->dialing = false;
  if (m->removed) {
    if (m->reclaimable) mbr_free(m); /* its grace period already passed */
    return;
  }
  if (err) {
    m->addr_idx = (m->addr_idx + 1) % m->info.naddrs; /* fail over to the next address */
    return mbr_schedule_redial(m);
  }
  int rc = net_stream_open(c, BN_MSG_PROTO, &out_cbs, m, &m->out);
  if (rc < 0) {
    m->out = NULL;
    mbr_schedule_redial(m);
  }
}

static void mbr_dial(mbr_t *m) {
  if (m->removed || m->dialing || m->out) return;
  m->dialing = true;
  int rc = net_dial(m->b->net, &m->info.addrs[m->addr_idx % m->info.naddrs], mbr_dial_done, m);
  if (rc < 0) {
    m->dialing = false;
    mbr_schedule_redial(m);
  }
}

static int out_write(void *ctx, const uint8_t *p, size_t n) {
  mbr_t *m = ctx;
  return net_stream_write(m->out, p, n);
}

static void mbr_drain(mbr_t *m) {
  if (!m->out || !m->out_ready || m->removed) return;
  uint64_t bytes0 = m->framer.bytes_written;
  int done = disp_framer_drain(&m->framer, &m->ring, out_write, m);
  if (done > 0) ck_pr_add_64(&m->sent, (uint64_t)done);
  ck_pr_add_64(&m->bytes_out, m->framer.bytes_written - bytes0);
  ck_pr_store_int(&m->framer_busy, m->framer.cur || m->framer.held_len);
  if (done < 0) {
    net_stream_t *s = m->out;
    mbr_out_lost(m, done);
    net_stream_reset(s);
  }
}

/* ------------------------------------------------------------ Receiver */

static void in_emit(void *ud, const uint8_t *p, size_t n) {
  mbr_t *m = ud;
  bftnet_t *b = m->b;
  if (b->cfg.on_message) {
    b->cfg.on_message(m->node_id, p, n, b->cfg.user);
    ck_pr_inc_64(&m->inq.delivered);
    return;
  }
  rx_msg_t *msg = rx_msg_new(p, n, m->node_id);
  if (!msg) { /* the message is lost: say so, loudly and counted */
    bn_counter_add(&b->counters, BFTNET_COUNTER_IO_ERRORS, 1);
    bn_log(BN_LOG_ERROR, "out of memory: a message from %s was lost", m->node_id);
    return;
  }
  rx_inq_push_spmc(&m->inq, msg);
  notify_later(b);
}

static void in_gone(mbr_t *m, net_stream_t *s);

/* Credits what the member sent unless its inbound queue is over its limit:
 * then the credit waits for the application (yamux credit stops, so the
 * pressure lands in the sender's ring, where drop-oldest applies). */
static void mbr_credit(mbr_t *m) {
  if (!m->in || m->uncredited == 0) return;
  if (!m->b->cfg.on_message && rx_inq_over(&m->inq)) {
    ck_pr_store_int(&m->throttled, 1);
    return;
  }
  ck_pr_store_int(&m->throttled, 0);
  net_stream_consume(m->in, m->uncredited);
  m->uncredited = 0;
}

static void in_data(void *ud, net_stream_t *s, const uint8_t *p, size_t n) {
  mbr_t *m = ud;
  bftnet_t *b = m->b;
  ck_pr_add_64(&m->bytes_in, n);
  int rc = rx_deframer_feed(&m->rxd, p, n, in_emit, m);
  if (rc < 0) {
    /* A malformed or oversized frame closes that connection (invariant 5). */
    bn_counter_add(&b->counters, BFTNET_COUNTER_BAD_MESSAGE, 1);
    bn_log(BN_LOG_WARN, "member %s sent a bad message frame: %s; connection closed", m->node_id,
           bftnet_strerror(rc));
    in_gone(m, s);
    net_conn_close(net_stream_conn(s), BFTNET_REASON_PROTOCOL_ERROR, rc);
    return;
  }
  m->uncredited += n;
  mbr_credit(m);
}

static void in_gone(mbr_t *m, net_stream_t *s) {
  if (m->in != s) return;
  m->in = NULL;
  m->uncredited = 0;
  rx_deframer_free(&m->rxd);
  rx_deframer_init(&m->rxd, m->b->cfg.max_message_size);
}

static void in_fin(void *ud, net_stream_t *s) {
  in_gone(ud, s);
  net_stream_close(s);
}
static void in_error(void *ud, net_stream_t *s, int err) {
  (void)err;
  in_gone(ud, s);
}
static void in_free(void *ud, net_stream_t *s) { in_gone(ud, s); }

static const net_stream_cbs_t in_cbs = {
    .on_data = in_data, .on_fin = in_fin, .on_error = in_error, .on_free = in_free};

/* The member's newest stream is its Receiver's; an older one is reset. */
static void mbr_set_in(mbr_t *m, net_stream_t *s, rx_deframer_t *carry) {
  if (m->in && m->in != s) {
    net_stream_t *old = m->in;
    in_gone(m, old);
    net_stream_reset(old);
  }
  m->in = s;
  m->uncredited = 0;
  if (carry) {
    rx_deframer_free(&m->rxd);
    m->rxd = *carry; /* a partly received message carries over on promotion */
  }
  net_stream_set_cbs(s, &in_cbs, m);
}

/* --------------------------------------------------- TentativeReceiver */

/* Keeps the node's tentative gauges in step with one buffer's change. */
static void tent_account(bftnet_t *b, tent_t *t, uint64_t bytes0, uint64_t evicted0) {
  bn_counter_add(&b->counters, BFTNET_COUNTER_TENTATIVE_BYTES, t->buf.bytes - bytes0);
  bn_counter_add(&b->counters, BFTNET_COUNTER_TENTATIVE_EVICTED, t->buf.evicted - evicted0);
}

static void tent_unlink(bftnet_t *b, tent_t *t) {
  if (t->prev) t->prev->next = t->next;
  else b->tent_head = t->next;
  if (t->next) t->next->prev = t->prev;
  else b->tent_tail = t->prev;
  b->ntent--;
}

static const net_stream_cbs_t tent_cbs;

static void tent_free(bftnet_t *b, tent_t *t, bool close_conn) {
  tent_unlink(b, t);
  bn_counter_add(&b->counters, BFTNET_COUNTER_TENTATIVE_BYTES, 0 - t->buf.bytes);
  bn_counter_add(&b->counters, BFTNET_COUNTER_TENTATIVE_DESTROYED, 1);
  if (t->s) {
    net_stream_t *s = t->s;
    t->s = NULL;
    net_stream_set_cbs(s, &(net_stream_cbs_t){0}, NULL);
    if (close_conn) net_conn_close(net_stream_conn(s), BFTNET_REASON_LIMIT, BFTNET_ELIMIT);
    else net_stream_reset(s);
  }
  rx_deframer_free(&t->rxd);
  rx_tentative_free(&t->buf);
  free(t);
}

static void tent_emit(void *ud, const uint8_t *p, size_t n) {
  tent_t *t = ud;
  rx_msg_t *m = rx_msg_new(p, n, "");
  if (m) rx_tentative_push(&t->buf, m);
}

/* A non-member gets credit at cfg.tentative_rate bytes/s (a bucket of
 * tentative_max_bytes): its buffer keeps only the newest messages anyway,
 * and the limit keeps a flood from outside the membership from taking the
 * loop away from members. */
static void tent_credit(bftnet_t *b, tent_t *t) {
  if (!t->s || t->uncredited == 0) return;
  uint64_t now = bn_now_ns(b->t->seam);
  uint64_t add = (now - t->refill_ns) * b->cfg.tentative_rate / 1000000000ull;
  if (add) {
    t->tokens = BN_MIN(t->tokens + add, (uint64_t)b->cfg.tentative_max_bytes);
    t->refill_ns = now;
  }
  size_t grant = (size_t)BN_MIN((uint64_t)t->uncredited, t->tokens);
  if (grant) {
    net_stream_consume(t->s, grant);
    t->uncredited -= grant;
    t->tokens -= grant;
  }
  if (t->uncredited) b->t->ops->timer_start(b->tent_timer, 50, 0);
}

static void tent_tick(void *ud) {
  bftnet_t *b = ud;
  for (tent_t *t = b->tent_head; t; t = t->next) tent_credit(b, t);
}

static void tent_data(void *ud, net_stream_t *s, const uint8_t *p, size_t n) {
  tent_t *t = ud;
  uint64_t bytes0 = t->buf.bytes, evicted0 = t->buf.evicted;
  int rc = rx_deframer_feed(&t->rxd, p, n, tent_emit, t);
  tent_account(t->b, t, bytes0, evicted0);
  if (rc == 0) {
    t->uncredited += n;
    tent_credit(t->b, t);
  }
  if (rc < 0) {
    bn_counter_add(&t->b->counters, BFTNET_COUNTER_BAD_MESSAGE, 1);
    t->s = NULL;
    net_stream_set_cbs(s, &(net_stream_cbs_t){0}, NULL);
    net_conn_close(net_stream_conn(s), BFTNET_REASON_PROTOCOL_ERROR, rc);
  }
}

static void tent_end(void *ud, net_stream_t *s) {
  tent_t *t = ud;
  if (t->s == s) {
    t->s = NULL; /* its buffer stays until promotion or eviction */
    t->uncredited = 0;
  }
}
static void tent_fin(void *ud, net_stream_t *s) {
  tent_end(ud, s);
  net_stream_close(s); /* close our side too, so the stream is released */
}
static void tent_error(void *ud, net_stream_t *s, int err) {
  (void)err;
  tent_end(ud, s);
}

static const net_stream_cbs_t tent_cbs = {
    .on_data = tent_data, .on_fin = tent_fin, .on_error = tent_error, .on_free = tent_end};

static tent_t *tent_find(bftnet_t *b, const peerid_t *peer) {
  for (tent_t *t = b->tent_head; t; t = t->next)
    if (peerid_equal(&t->peer, peer)) return t;
  return NULL;
}

static int tent_open(bftnet_t *b, net_conn_t *c, net_stream_t *s) {
  if (b->cfg.tentative_max == 0) return BFTNET_ENOTMEMBER;
  tent_t *t = tent_find(b, net_conn_peer(c));
  if (t) {
    if (t->s) { /* a newer stream from the same peer replaces the old */
      net_stream_t *old = t->s;
      t->s = NULL;
      net_stream_set_cbs(old, &(net_stream_cbs_t){0}, NULL);
      net_stream_reset(old);
    }
    rx_deframer_free(&t->rxd);
    rx_deframer_init(&t->rxd, b->cfg.max_message_size);
    t->uncredited = 0;
  } else {
    if (b->ntent >= b->cfg.tentative_max) tent_free(b, b->tent_head, true); /* least recently created */
    t = calloc(1, sizeof *t);
    if (!t) return BFTNET_ENOMEM;
    t->peer = *net_conn_peer(c);
    t->b = b;
    t->tokens = b->cfg.tentative_max_bytes;
    t->refill_ns = bn_now_ns(b->t->seam);
    bn_counter_add(&b->counters, BFTNET_COUNTER_TENTATIVE_CREATED, 1);
    rx_deframer_init(&t->rxd, b->cfg.max_message_size);
    rx_tentative_init(&t->buf, b->cfg.tentative_max_msgs, b->cfg.tentative_max_bytes);
    t->prev = b->tent_tail;
    if (b->tent_tail) b->tent_tail->next = t;
    else b->tent_head = t;
    b->tent_tail = t;
    b->ntent++;
  }
  t->s = s;
  net_stream_set_cbs(s, &tent_cbs, t);
  return 0;
}

/* Buffered messages first, in order, then the stream goes on as a Receiver. */
static void tent_promote(bftnet_t *b, tent_t *t, mbr_t *m) {
  bn_counter_add(&b->counters, BFTNET_COUNTER_TENTATIVE_PROMOTED, 1);
  bn_counter_add(&b->counters, BFTNET_COUNTER_TENTATIVE_BYTES, 0 - t->buf.bytes);
  t->buf.bytes = 0; /* handed over below; tent_free must not subtract it again */
  for (rx_msg_t *msg = rx_tentative_take(&t->buf), *next; msg; msg = next) {
    next = msg->next;
    msg->next = NULL;
    rx_msg_t *relabeled = rx_msg_set_from(msg, m->node_id);
    if (!relabeled) {
      rx_msg_free(msg);
      continue;
    }
    if (b->cfg.on_message) {
      b->cfg.on_message(m->node_id, relabeled->data, relabeled->len, b->cfg.user);
      ck_pr_inc_64(&m->inq.delivered);
      rx_msg_free(relabeled);
    } else {
      rx_inq_push_spmc(&m->inq, relabeled);
    }
  }
  ck_pr_add_64(&m->tentative_evicted, t->buf.evicted);
  notify_later(b);
  if (t->s) {
    net_stream_t *s = t->s;
    size_t held = t->uncredited; /* credit the member's Receiver now owes */
    t->s = NULL;
    rx_deframer_t carry = t->rxd;
    rx_deframer_init(&t->rxd, b->cfg.max_message_size);
    mbr_set_in(m, s, &carry);
    m->uncredited = held;
    mbr_credit(m);
  }
  tent_free(b, t, false);
}

/* Inbound /bftnet/msg/1.0.0: a member's Receiver or a TentativeReceiver. */
static int msg_open(void *ud, net_conn_t *c, net_stream_t *s) {
  bftnet_t *b = ud;
  mbr_t *m = find_by_peer(b, net_conn_peer(c));
  if (!m) return tent_open(b, c, s);
  mbr_set_in(m, s, NULL);
  return 0;
}

/* ------------------------------------------------------------- members */

static mbr_t *mbr_new(bftnet_t *b, const mb_member_t *info) {
  mbr_t *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  m->b = b;
  m->info = *info;
  snprintf(m->node_id, sizeof m->node_id, "%s", info->node_id);
  m->peer = info->peer;
  if (disp_ring_init(&m->ring, b->cfg.ring_capacity) != 0) goto err_free;
  if (rx_inq_init(&m->inq, b->cfg.inbound_max_msgs, b->cfg.inbound_max_bytes) != 0) goto err_ring;
  if (b->t->ops->timer_new(b->t, mbr_redial_tick, m, &m->redial) != 0) goto err_inq;
  disp_framer_init(&m->framer);
  disp_backoff_init(&m->backoff, b->cfg.dial_backoff_min_ms, b->cfg.dial_backoff_max_ms);
  rx_deframer_init(&m->rxd, b->cfg.max_message_size);
  return m;
err_inq:
  rx_inq_destroy(&m->inq);
err_ring:
  disp_ring_destroy(&m->ring);
err_free:
  free(m);
  return NULL;
}

/* Loop thread: stop everything the member does (Mir's CloseOldConnections). */
static void mbr_remove(mbr_t *m) {
  bftnet_t *b = m->b;
  m->removed = true;
  if (m->redial) {
    b->t->ops->timer_free(m->redial);
    m->redial = NULL;
  }
  if (m->out) {
    net_stream_t *s = m->out;
    m->out = NULL;
    ck_pr_add_64(&m->aborted, (uint64_t)disp_framer_abort(&m->framer));
    net_stream_set_cbs(s, &(net_stream_cbs_t){0}, NULL);
    net_stream_reset(s);
  }
  if (m->in) {
    net_stream_t *s = m->in;
    m->in = NULL;
    net_stream_set_cbs(s, &(net_stream_cbs_t){0}, NULL);
    net_stream_reset(s);
  }
  /* A copy: closing may complete m's dial, and callbacks must not see m
   * half torn down through this pointer. */
  peerid_t peer = m->peer;
  net_close_peer(b->net, &peer, BFTNET_REASON_LOCAL_CLOSE);
}

/* After the epoch grace period: no application thread can see m. */
static void mbr_free(mbr_t *m) {
  if (m->dialing) { /* the dial callback frees it */
    m->reclaimable = true;
    return;
  }
  size_t dropped = disp_ring_destroy(&m->ring);
  if (dropped) bn_log(BN_LOG_INFO, "member %s removed: %zu queued messages released", m->node_id, dropped);
  disp_framer_abort(&m->framer);
  rx_inq_destroy(&m->inq);
  rx_deframer_free(&m->rxd);
  free(m);
}

static int mbr_ptr_cmp(const void *a, const void *b) {
  return strcmp((*(mbr_t *const *)a)->node_id, (*(mbr_t *const *)b)->node_id);
}

/* Publishes a snapshot of `live` (n members) and waits out the readers of
 * the previous one. */
static int snap_publish(bftnet_t *b, mbr_t **live, size_t n, const char *self_id) {
  msnap_t *s = calloc(1, sizeof *s);
  if (!s) return BFTNET_ENOMEM;
  s->m = n ? malloc(n * sizeof *s->m) : NULL;
  if (n && !s->m) {
    free(s);
    return BFTNET_ENOMEM;
  }
  if (n) memcpy(s->m, live, n * sizeof *live);
  s->n = n;
  if (n) qsort(s->m, n, sizeof *s->m, mbr_ptr_cmp);
  snprintf(s->self_id, sizeof s->self_id, "%s", self_id);
  msnap_t *old = b->snap;
  BN_TSAN_RELEASE(s);
  ck_pr_fence_store();
  ck_pr_store_ptr(&b->snap, s);
  ck_epoch_synchronize(&b->loop_rec);
  BN_TSAN_ACQUIRE(&b->epoch); /* every reader of old has left its section */
  if (old) {
    free(old->m);
    free(old);
  }
  return 0;
}

void run_connect(bftnet_t *b, cmd_t *c) {
  mb_change_t *ch;
  size_t nch;
  int rc = mb_diff(&b->table, &c->table, &ch, &nch);
  if (rc < 0) {
    mb_table_free(&c->table);
    return cmd_complete(b, c, rc);
  }
  const peerid_t *me = net_local_id(b->net);
  msnap_t *cur = b->snap;
  size_t cap = cur->n + c->table.n;
  mbr_t **live = malloc((cap ? cap : 1) * sizeof *live);
  mbr_t **gone = malloc((cap ? cap : 1) * sizeof *gone);
  if (!live || !gone) {
    free(live);
    free(gone);
    free(ch);
    mb_table_free(&c->table);
    return cmd_complete(b, c, BFTNET_ENOMEM);
  }
  size_t nlive = 0, ngone = 0;
  for (size_t i = 0; i < cur->n; i++) live[nlive++] = cur->m[i];
  const char *self_id = "";
  for (size_t i = 0; i < nch; i++) {
    const mb_change_t *x = &ch[i];
    const mb_member_t *info = x->new_m ? x->new_m : x->old_m;
    if (peerid_equal(&info->peer, me)) {
      if (x->kind != MB_REMOVED) self_id = x->new_m->node_id;
      continue; /* ourselves: no Dispatcher, no Receiver */
    }
    mbr_t *m = NULL;
    for (size_t k = 0; k < nlive; k++)
      if (strcmp(live[k]->node_id, info->node_id) == 0) m = live[k];
    if (x->kind == MB_REMOVED && m) {
      mbr_remove(m);
      emit_member(b, BFTNET_EV_MEMBER_REMOVED, m, BFTNET_REASON_NONE, 0);
      for (size_t k = 0; k < nlive; k++)
        if (live[k] == m) live[k] = live[--nlive];
      gone[ngone++] = m;
    } else if (x->kind == MB_ADDED) {
      m = mbr_new(b, x->new_m);
      if (!m) {
        rc = BFTNET_ENOMEM;
        continue;
      }
      live[nlive++] = m;
      emit_member(b, BFTNET_EV_MEMBER_ADDED, m, BFTNET_REASON_NONE, 0);
      tent_t *t = tent_find(b, &m->peer);
      if (t) tent_promote(b, t, m);
    } else if (x->kind == MB_ADDRS_CHANGED && m) {
      m->info = *x->new_m; /* the next dial uses the new preference order */
      m->addr_idx = 0;
    }
  }
  int prc = snap_publish(b, live, nlive, self_id);
  if (prc < 0) rc = prc;
  for (size_t i = 0; i < ngone; i++) {
    /* Its stats die with it: the node keeps the count of what it released. */
    bn_counter_add(&b->counters, BFTNET_COUNTER_DROPPED_REMOVED, disp_ring_depth(&gone[i]->ring));
    bn_counter_add(&b->counters, BFTNET_COUNTER_ABORTED_REMOVED, ck_pr_load_64(&gone[i]->aborted));
    mbr_free(gone[i]);
  }
  /* Dial the new members (after publishing, so sends are already queued). */
  for (size_t i = 0; i < nlive; i++)
    if (!live[i]->dialing && !live[i]->out && !live[i]->removed) mbr_dial(live[i]);
  mb_table_free(&b->table);
  b->table = c->table;
  c->table = (mb_table_t){0};
  free(live);
  free(gone);
  free(ch);
  cmd_complete(b, c, rc);
}

/* uv_async: sends queued messages, pops freed queue room. */
void members_on_wake(uv_async_t *h) {
  bftnet_t *b = h->data;
  msnap_t *s = b->snap;
  for (size_t i = 0; i < s->n; i++) {
    mbr_t *m = s->m[i];
    if (disp_ring_depth(&m->ring)) mbr_drain(m);
    if (ck_pr_load_int(&m->throttled)) {
      rx_inq_refill_spmc(&m->inq);
      mbr_credit(m);
    }
  }
}

int members_init(bftnet_t *b) {
  ck_epoch_init(&b->epoch);
  ck_epoch_register(&b->epoch, &b->loop_rec, NULL);
  b->snap = calloc(1, sizeof *b->snap);
  if (!b->snap) return BFTNET_ENOMEM;
  b->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (b->efd < 0) return -errno;
  int rc = uv_async_init(b->loop, &b->wake, members_on_wake);
  if (rc) return rc;
  b->wake.data = b;
  rc = b->t->ops->timer_new(b->t, tent_tick, b, &b->tent_timer);
  if (rc) return rc;
  return net_handle(b->net, BN_MSG_PROTO, msg_open, b);
}

void members_stop(bftnet_t *b) {
  msnap_t *s = b->snap;
  for (size_t i = 0; i < s->n; i++) mbr_remove(s->m[i]);
  while (b->tent_head) tent_free(b, b->tent_head, false);
  if (b->tent_timer) {
    b->t->ops->timer_free(b->tent_timer);
    b->tent_timer = NULL;
  }
}

void members_destroy(bftnet_t *b) {
  msnap_t *s = b->snap;
  if (s) {
    for (size_t i = 0; i < s->n; i++) {
      s->m[i]->dialing = false;
      mbr_free(s->m[i]);
    }
    free(s->m);
    free(s);
    b->snap = NULL;
  }
  mb_table_free(&b->table);
  /* No application thread may be inside a bftnet call now (bftnet_free). */
  for (epoch_rec_t *e = b->recs, *next; e; e = next) {
    next = e->next;
    free(e);
  }
  b->recs = NULL;
  if (b->efd >= 0) close(b->efd);
  b->efd = -1;
}

/* ------------------------------------------------------- public: connect */

BFTNET_API int bftnet_connect(bftnet_t *b, const bftnet_member_t *members, size_t n, char *errbuf,
                              size_t errcap) {
  if (!b || (!members && n)) return BFTNET_EINVAL;
  if (ck_pr_load_int(&b->stopped)) return BFTNET_ECLOSED;
  cmd_t c = {.run = run_connect};
  int rc = mb_table_build(&c.table, members, n, errbuf, errcap); /* validate off the loop */
  if (rc < 0) return rc;
  return call(b, &c);
}

BFTNET_API int bftnet_connect_file(bftnet_t *b, const char *path, char *errbuf, size_t errcap) {
  if (!b || !path) return BFTNET_EINVAL;
  if (ck_pr_load_int(&b->stopped)) return BFTNET_ECLOSED;
  cmd_t c = {.run = run_connect};
  int rc = mb_table_load_file(&c.table, path, errbuf, errcap);
  if (rc < 0) return rc;
  return call(b, &c);
}

/* --------------------------------------------------- public: messaging */

BFTNET_API int bftnet_send(bftnet_t *b, const char *node_id, const void *data, size_t len) {
  if (!b || !node_id || (!data && len)) return BFTNET_EINVAL;
  if (len > b->cfg.max_message_size) return BFTNET_ETOOBIG;
  if (ck_pr_load_int(&b->stopped)) return BFTNET_ECLOSED;
  ck_epoch_section_t sec;
  ck_epoch_record_t *r = epoch_enter(b, &sec);
  if (!r) return BFTNET_ENOMEM;
  int rc = 0;
  msnap_t *s = snap_load(b);
  mbr_t *m = snap_find(s, node_id);
  if (!m) {
    rc = strcmp(node_id, s->self_id) == 0 ? BFTNET_EINVAL : BFTNET_ENOTFOUND;
  } else {
    disp_msg_t *msg = disp_msg_new(data, len, 1);
    if (!msg) rc = BFTNET_ENOMEM;
    else disp_ring_push_mpmc(&m->ring, msg);
  }
  epoch_exit(b, r, &sec);
  if (rc == 0) uv_async_send(&b->wake);
  return rc;
}

BFTNET_API int bftnet_broadcast(bftnet_t *b, const void *data, size_t len) {
  if (!b || (!data && len)) return BFTNET_EINVAL;
  if (len > b->cfg.max_message_size) return BFTNET_ETOOBIG;
  if (ck_pr_load_int(&b->stopped)) return BFTNET_ECLOSED;
  ck_epoch_section_t sec;
  ck_epoch_record_t *r = epoch_enter(b, &sec);
  if (!r) return BFTNET_ENOMEM;
  msnap_t *s = snap_load(b);
  int rc = (int)s->n;
  if (s->n) {
    disp_msg_t *msg = disp_msg_new(data, len, (uint32_t)s->n); /* one buffer, shared */
    if (!msg) rc = BFTNET_ENOMEM;
    else
      for (size_t i = 0; i < s->n; i++) disp_ring_push_mpmc(&s->m[i]->ring, msg);
  }
  epoch_exit(b, r, &sec);
  if (rc > 0) uv_async_send(&b->wake);
  return rc;
}

/* One round-robin pass: at most one message per member per round, so a
 * chatty member cannot starve the others. */
static int recv_scan(bftnet_t *b, bftnet_msg_t *out, int max, bool *wake_loop) {
  ck_epoch_section_t sec;
  ck_epoch_record_t *r = epoch_enter(b, &sec);
  if (!r) return BFTNET_ENOMEM;
  msnap_t *s = snap_load(b);
  int got = 0;
  if (s->n) {
    uint32_t start = ck_pr_faa_32(&b->rr, 1);
    bool progress = true;
    while (got < max && progress) {
      progress = false;
      for (size_t i = 0; i < s->n && got < max; i++) {
        mbr_t *m = s->m[(start + i) % s->n];
        rx_msg_t *msg = rx_inq_pop_spmc(&m->inq);
        if (!msg) continue;
        progress = true;
        if (ck_pr_load_int(&m->throttled)) *wake_loop = true;
        out[got++] = (bftnet_msg_t){.from = msg->from, .data = msg->data, .len = msg->len, .priv = msg};
      }
    }
  }
  epoch_exit(b, r, &sec);
  return got;
}

BFTNET_API int bftnet_recv_batch(bftnet_t *b, bftnet_msg_t *msgs, int max, int timeout_ms) {
  if (!b || !msgs || max <= 0) return BFTNET_EINVAL;
  uint64_t deadline = timeout_ms > 0 ? bn_now_ns(bn_seam_system()) + (uint64_t)timeout_ms * 1000000ull : 0;
  for (;;) {
    bool wake = false;
    int got = recv_scan(b, msgs, max, &wake);
    if (got == 0) {
      /* Empty: clear the fd, then look once more, so that the fd is
       * readable exactly when a message may be waiting (a push after this
       * scan sets it again). */
      uint64_t v;
      (void)!read(b->efd, &v, sizeof v);
      got = recv_scan(b, msgs, max, &wake);
    }
    if (wake) uv_async_send(&b->wake); /* room freed: the loop credits the stream again */
    if (got != 0) return got;
    if (ck_pr_load_int(&b->stopped)) return BFTNET_ECLOSED;
    if (timeout_ms == 0) return BFTNET_EAGAIN;
    int wait_ms = -1;
    if (timeout_ms > 0) {
      uint64_t now = bn_now_ns(bn_seam_system());
      if (now >= deadline) return BFTNET_ETIMEDOUT;
      wait_ms = (int)((deadline - now + 999999) / 1000000);
    }
    struct pollfd p = {.fd = b->efd, .events = POLLIN};
    int pr = poll(&p, 1, wait_ms);
    if (pr < 0 && errno != EINTR) return -errno;
  }
}

BFTNET_API int bftnet_recv(bftnet_t *b, bftnet_msg_t *msg, int timeout_ms) {
  int rc = bftnet_recv_batch(b, msg, 1, timeout_ms);
  return rc == 1 ? 0 : rc;
}

BFTNET_API void bftnet_msg_release(bftnet_msg_t *msg) {
  if (!msg || !msg->priv) return;
  rx_msg_free(msg->priv);
  msg->priv = NULL;
  msg->data = NULL;
}

BFTNET_API int bftnet_recv_fd(bftnet_t *b) { return b ? b->efd : BFTNET_EINVAL; }

BFTNET_API int bftnet_peer_stats(bftnet_t *b, const char *node_id, bftnet_peer_stats_t *out) {
  if (!b || !node_id || !out) return BFTNET_EINVAL;
  ck_epoch_section_t sec;
  ck_epoch_record_t *r = epoch_enter(b, &sec);
  if (!r) return BFTNET_ENOMEM;
  mbr_t *m = snap_find(snap_load(b), node_id);
  if (m) {
    *out = (bftnet_peer_stats_t){
        .enqueued = ck_pr_load_64(&m->ring.enqueued),
        .sent = ck_pr_load_64(&m->sent),
        .delivered = ck_pr_load_64(&m->inq.delivered),
        .dropped_overflow = ck_pr_load_64(&m->ring.dropped),
        .dropped_removed = ck_pr_load_64(&m->dropped_removed),
        .bytes_out = ck_pr_load_64(&m->bytes_out),
        .bytes_in = ck_pr_load_64(&m->bytes_in),
        .reconnects = ck_pr_load_64(&m->reconnects),
        .tentative_evicted = ck_pr_load_64(&m->tentative_evicted),
        .aborted = ck_pr_load_64(&m->aborted),
        .ring_depth = disp_ring_depth(&m->ring),
        .inbound_depth = rx_inq_depth(&m->inq),
        .connected = ck_pr_load_int(&m->connected),
    };
  }
  epoch_exit(b, r, &sec);
  return m ? 0 : BFTNET_ENOTFOUND;
}

/* ------------------------------------------------------- public: flush */

/* Loop-free check from the caller's thread: every ring empty, nothing held
 * by a framer and every byte written confirmed read (unconfirmed == 0). */
static bool flush_done(bftnet_t *b) {
  ck_epoch_section_t sec;
  ck_epoch_record_t *r = epoch_enter(b, &sec);
  if (!r) return false;
  msnap_t *s = snap_load(b);
  bool done = true;
  for (size_t i = 0; i < s->n && done; i++) {
    mbr_t *m = s->m[i];
    if (disp_ring_depth(&m->ring) || ck_pr_load_64(&m->unconfirmed) || ck_pr_load_int(&m->framer_busy))
      done = false;
  }
  epoch_exit(b, r, &sec);
  return done;
}

BFTNET_API int bftnet_flush(bftnet_t *b, int timeout_ms) {
  if (!b || timeout_ms < 0) return BFTNET_EINVAL;
  if (ck_pr_load_int(&b->stopped)) return BFTNET_ECLOSED;
  uint64_t deadline = bn_now_ns(bn_seam_system()) + (uint64_t)timeout_ms * 1000000ull;
  for (unsigned i = 0;; i++) {
    if (flush_done(b)) return 0;
    if (bn_now_ns(bn_seam_system()) >= deadline) return BFTNET_ETIMEDOUT;
    uv_async_send(&b->wake);
    struct timespec ts = {0, (i < 20 ? 1 : 10) * 1000000L};
    nanosleep(&ts, NULL);
  }
}
