/*
 * outbound.c — a member's Dispatcher on the loop thread: the connection it
 * keeps to the member (dials over its addresses, redials with backoff), our
 * logical stream of each traffic class to it, and the drain that fills
 * those streams from the classes' rings.
 *
 * Both sides of a pair dial while they have no connection to each other;
 * the leader of the pair then keeps one (migration.h). A stream that ends
 * (aborted, closed) is replaced by a new one: the ring kept what was not
 * yet written, and what the old stream lost is counted. A class the member
 * refuses (it answered na: it has no class of that name) is opened again
 * after a backoff; its messages meanwhile wait in its ring (drop-oldest).
 *
 * The drain. Without pacing (one class) the class's framer writes as much
 * as its stream's retransmit window takes, as bftnet always did. With two
 * or more classes the connection is paced (net.h) and the drain is the
 * scheduler's loop: the scheduler (sched.c) names the class, whose framer
 * writes one piece of at most DISP_PIECE bytes, no more than its stream can
 * hand to the connection at once (mig_stream_send_room: nothing is left
 * waiting in a retransmit window, where the order between classes would no
 * longer be ours); the loop goes on until no class can write. A class that
 * cannot write asks for a writable callback, and any class's callback runs
 * the whole loop again, so the choice is always made across all classes.
 */
#include <ck_pr.h>

#include "disp_internal.h"
#include "dispatcher.h"

#define DISP_SCHED_ROUNDS 4096u /* pieces per drain call, at most */

static void dial(disp_t *d);
static void open_out(disp_t *d);
static void open_cls(disp_cls_t *k);

void disp__outbound_redial_tick(void *ud) {
  disp_t *d = ud;
  d->redial_pending = false;
  dial(d);
}

void disp__outbound_retry_tick(void *ud) {
  disp_t *d = ud;
  for (unsigned i = 0; i < d->ncls; i++)
    d->cls[i].refused_wait = false;
  open_out(d);
}

static void schedule_redial(disp_t *d) {
  disp_ctx_t *ctx = d->ctx;
  if (d->stopped || !d->redial || d->redial_pending) return;
  uint64_t ms = disp_backoff_next_ms(&d->backoff, ctx->t->seam);
  d->redial_pending = true;
  ctx->t->ops->timer_start(d->redial, ms, 0);
}

static void ensure_conn(disp_t *d) {
  if (d->stopped || d->dialing || d->redial_pending) return;
  if (net_count_conns(d->ctx->net, &d->peer) > 0) return;
  /* The first redial after a working connection broke goes at once (the
   * streams wait detached); failures after that back off. */
  uint64_t now = bn_now_ns(d->ctx->t->seam);
  bool lasted = d->up_since && now - d->up_since > 1000000000ull; /* not a flapping peer */
  if (d->ever_conn && !(d->backoff.attempt == 0 && lasted))
    schedule_redial(d);
  else
    dial(d);
}

/* Counts what a class's stream lost: the messages written but not
 * confirmed read, plus those the framer had in hand. */
uint64_t disp__outbound_lost(disp_cls_t *k) {
  uint64_t confirmed =
      k->out ? k->out_base + mig_stream_app_confirmed(k->out) : k->framer.bytes_written;
  disp_ends_trim(&k->ends, confirmed);
  uint64_t lost = disp_ends_count(&k->ends);
  disp_ends_free(&k->ends);
  return lost + (uint64_t)disp_framer_abort(&k->framer);
}

static void out_writable(void *ud, mig_stream_t *ls) {
  (void)ls;
  disp_cls_t *k = ud;
  disp__outbound_drain(k->d);
}

/* The member answered na to the class: it is opened again after a backoff
 * (the member may be reconfigured), its messages wait in its ring. */
static void cls_refused(disp_cls_t *k) {
  disp_t *d = k->d;
  ck_pr_inc_64(&k->refused);
  k->refused_wait = true;
  uint64_t ms = disp_backoff_next_ms(&k->nab, d->ctx->t->seam);
  bn_log(d->ctx->cfg.log, BN_LOG_WARN, "member %s refused class %u (%s): again in %llu ms", d->name,
         k->idx, d->ctx->cfg.classes[k->idx].name, (unsigned long long)ms);
  if (d->retry) d->ctx->t->ops->timer_start(d->retry, ms, 0);
}

/* The stream ended (ABORTED or CLOSED) for why (out_event's reason): count
 * what it lost, let it go, and open the next one (unless the member refused
 * the class). */
static void out_ended(disp_cls_t *k, mig_stream_t *ls, const mig_event_t *e, bftnet_reason_t why) {
  disp_t *d = k->d;
  const disp_cbs_t *cbs = d->ctx->cbs;
  uint64_t lost = disp__outbound_lost(k);
  if (!BN_SIM_DEFECT(3)) ck_pr_add_64(&k->aborted, lost);
  bn_counter_add(d->ctx->counters, BFTNET_COUNTER_MIG_ABORTED_MSGS, lost);
  k->out = NULL;
  ck_pr_store_int(&k->connected, 0);
  ck_pr_store_64(&k->unconfirmed, 0);
  cbs->on_stream_event(d->ud, k->idx, ls, e, lost);
  mig_stream_release(ls);
  cbs->on_member(d->ud, k->idx, BFTNET_EV_MEMBER_DOWN, why, BFTNET_ERESET);
  if (e->type == MIG_EV_ABORTED && e->refused) cls_refused(k);
  if (d->stopped) return;
  /* A peer that stops in order says GO_AWAY on each of its connections, and
   * they arrive one by one: a stream opened at once on another of them
   * would be up only until its GO_AWAY (a MEMBER_UP for a peer that is
   * leaving). The next one waits out the redial backoff. */
  if (why == BFTNET_REASON_GOING_AWAY) return schedule_redial(d);
  open_cls(k); /* a new stream (the ring kept the rest) */
}

static void out_event(void *ud, mig_stream_t *ls, const mig_event_t *e) {
  disp_cls_t *k = ud;
  disp_t *d = k->d;
  const disp_cbs_t *cbs = d->ctx->cbs;
  if (ls != k->out) return;
  /* MEMBER_DOWN says why: the connection's end (a detach), a reset, or
   * the peer going away in order (GO_AWAY first). */
  bftnet_reason_t why = e->cause != BFTNET_REASON_NONE ? e->cause : BFTNET_REASON_RESET;
  switch (e->type) {
  case MIG_EV_DETACHED:
    ck_pr_store_int(&k->connected, 0);
    cbs->on_stream_event(d->ud, k->idx, ls, e, 0);
    cbs->on_member(d->ud, k->idx, BFTNET_EV_MEMBER_DOWN, why, BFTNET_ECLOSED);
    ensure_conn(d);
    break;
  case MIG_EV_RESUMED:
    ck_pr_store_int(&k->connected, 1);
    if (k->idx == 0) ck_pr_inc_64(&d->reconnects);
    cbs->on_stream_event(d->ud, k->idx, ls, e, 0);
    cbs->on_member(d->ud, k->idx, BFTNET_EV_MEMBER_UP, BFTNET_REASON_NONE, 0);
    disp__outbound_drain(d);
    break;
  case MIG_EV_MIGRATED:
  case MIG_EV_DENIED:
    cbs->on_stream_event(d->ud, k->idx, ls, e, 0);
    disp__outbound_drain(d);
    break;
  case MIG_EV_ABORTED:
  case MIG_EV_CLOSED:
    out_ended(k, ls, e, why);
    break;
  case MIG_EV_READ_EOF:
    break;
  }
}

/* What bftnet_flush and the stats read of the class (unconfirmed bytes)
 * follows the peer's Confirms even on an idle stream. */
static void out_confirmed(void *ud, mig_stream_t *ls) {
  disp_cls_t *k = ud;
  if (ls == k->out) disp__outbound_account(k);
}

static const mig_stream_cbs_t out_cbs = {
    .on_writable = out_writable, .on_event = out_event, .on_confirmed = out_confirmed};

/* Opens our stream of class k to the member on the pair's connection, if
 * one is up. */
static void open_cls(disp_cls_t *k) {
  disp_t *d = k->d;
  if (d->stopped || k->out || !d->lp || k->refused_wait) return;
  net_conn_t *c = mig_peer_conn(d->lp);
  if (!c) return ensure_conn(d);
  int rc = mig_stream_open(d->lp, c, k->idx, &out_cbs, k, &k->out);
  if (rc < 0) {
    k->out = NULL;
    bn_log(d->ctx->cfg.log, BN_LOG_INFO, "member %s: cannot open its stream of class %u: %s",
           d->name, k->idx, bftnet_strerror(rc));
    return schedule_redial(d);
  }
  mig_stream_set_prio(k->out, d->ctx->cfg.classes[k->idx].priority);
  k->out_base = k->framer.bytes_written;
  k->framer.ends = &k->ends;
  ck_pr_store_int(&k->connected, 1);
  if (k->idx == 0) {
    if (d->ever_up) ck_pr_inc_64(&d->reconnects);
    d->ever_up = true;
  }
  d->ctx->cbs->on_member(d->ud, k->idx, BFTNET_EV_MEMBER_UP, BFTNET_REASON_NONE, 0);
  disp__outbound_drain(d);
}

static void open_out(disp_t *d) {
  for (unsigned i = 0; i < d->ncls && !d->stopped; i++)
    open_cls(&d->cls[i]);
}

static bool all_open(const disp_t *d) {
  for (unsigned i = 0; i < d->ncls; i++)
    if (!d->cls[i].out && !d->cls[i].refused_wait) return false;
  return true;
}

/* The member was reached: the next failure is news again. */
static void reached(disp_t *d) {
  d->dial_failures = 0;
  d->fail_reported = false;
}

/* Failed dials in a row after which an unreachable member is a warning
 * (before, it may just be starting: info). */
#define DISP_DIAL_WARN_AFTER 5u

/* A failed dial to addr: logged (with the member's node ID) and reported
 * up when it differs from the last failure reported in this outage; an
 * outage that lasts DISP_DIAL_WARN_AFTER dials is logged once more, as a
 * warning. */
static void dial_failed(disp_t *d, int err, const maddr_t *addr) {
  d->dial_failures++;
  if (net_count_conns(d->ctx->net, &d->peer) > 0) return; /* it reached us meanwhile */
  const peerid_t *actual = err == BFTNET_EPEERMISMATCH ? net_dial_actual_peer(d->ctx->net) : NULL;
  bool news =
      !d->fail_reported || d->fail_err != err || (actual && !peerid_equal(actual, &d->fail_peer));
  if (!news && d->dial_failures != DISP_DIAL_WARN_AFTER) return;
  char a[BFTNET_ADDR_MAX] = "", want[BFTNET_PEER_ID_MAX] = "", got[BFTNET_PEER_ID_MAX] = "";
  maddr_format(addr, a, sizeof a);
  peerid_to_string(&d->peer, want, sizeof want);
  if (actual) {
    peerid_to_string(actual, got, sizeof got);
    bn_log(d->ctx->cfg.log, BN_LOG_WARN, "member %s: %s answered as peer %s, not as its peer %s",
           d->name, a, got, want);
  } else {
    bn_log(d->ctx->cfg.log, d->dial_failures >= DISP_DIAL_WARN_AFTER ? BN_LOG_WARN : BN_LOG_INFO,
           "member %s (%s) cannot be reached at %s: %s (%u failed dial%s in a row)", d->name, want,
           a, bftnet_strerror(err), d->dial_failures, d->dial_failures == 1 ? "" : "s");
  }
  if (!news) return;
  d->fail_reported = true;
  d->fail_err = err;
  d->fail_peer = actual ? *actual : (peerid_t){0};
  if (d->ctx->cbs->on_dial_failed)
    d->ctx->cbs->on_dial_failed(d->ud, err, addr, actual, d->dial_failures);
}

static void dial_done(void *ud, net_conn_t *c, int err) {
  disp_t *d = ud;
  d->dialing = false;
  if (d->stopped) {
    if (d->reclaimable) d->ctx->cbs->on_reclaimable(d->ud); /* its grace period already passed */
    return;
  }
  if (err) {
    dial_failed(d, err, &d->addrs[d->addr_idx % d->naddrs]);
    d->addr_idx = (d->addr_idx + 1) % d->naddrs; /* fail over to the next address */
    return schedule_redial(d);
  }
  (void)c;
  reached(d);
  d->ever_conn = true;
  d->up_since = bn_now_ns(d->ctx->t->seam);
  disp_backoff_reset(&d->backoff);
  open_out(d);
}

static void dial(disp_t *d) {
  if (d->stopped || d->dialing) return;
  if (net_count_conns(d->ctx->net, &d->peer) > 0) {
    open_out(d);
    return;
  }
  d->dialing = true;
  int rc = net_dial(d->ctx->net, &d->addrs[d->addr_idx % d->naddrs], dial_done, d);
  if (rc < 0) {
    d->dialing = false;
    schedule_redial(d);
  }
}

void disp_connect(disp_t *d) {
  if (!d->stopped && !all_open(d)) dial(d);
}

void disp_conn_up(disp_t *d) {
  if (d->stopped) return;
  reached(d);
  /* A member that reached us while we wait out the backoff: our streams
   * can start now. */
  open_out(d);
}

net_conn_t *disp_conn(disp_t *d) {
  net_conn_t *c = d->cls[0].out ? mig_stream_conn(d->cls[0].out) : NULL;
  if (!c && d->lp) c = mig_peer_conn(d->lp);
  return c;
}

net_conn_t *disp_cls_conn(const disp_t *d, unsigned cls) {
  return cls < d->ncls && d->cls[cls].out ? mig_stream_conn(d->cls[cls].out) : NULL;
}

void disp_conn_down(disp_t *d) {
  if (!d->stopped) ensure_conn(d);
}

static int out_write(void *ctx, const uint8_t *p, size_t n) {
  disp_cls_t *k = ctx;
  return mig_stream_write(k->out, p, n);
}

/* A migratable stream keeps what it sends in its retransmit window: the
 * framer builds its batches there, so the bytes are copied once on their
 * way to the window instead of twice (the A/B is in docs/BENCHMARKS.md). */
static size_t out_span(void *ctx, size_t want, uint8_t **out) {
  disp_cls_t *k = ctx;
  return mig_stream_write_span(k->out, want, out);
}

void disp__outbound_account(disp_cls_t *k) {
  if (!k->out) return;
  uint64_t w = mig_stream_app_written(k->out), c = mig_stream_app_confirmed(k->out);
  disp_ends_trim(&k->ends, k->out_base + c);
  ck_pr_store_64(&k->unconfirmed, mig_stream_migratable(k->out) ? w - c : 0);
  ck_pr_store_int(&k->framer_busy, k->framer.cur || k->framer.held_len);
}

void disp__outbound_limit(disp_t *d) {
  uint32_t lim = d->lp ? mig_peer_max_message_size(d->lp) : 0;
  if (lim == ck_pr_load_32(&d->peer_max)) return;
  for (unsigned i = 0; i < d->ncls; i++)
    d->cls[i].framer.peer_max = lim;
  ck_pr_store_32(&d->peer_max, lim);
}

/* Writes up to limit bytes of class k's stream; returns how many. */
static size_t drain_cls(disp_cls_t *k, size_t limit) {
  if (!k->out) return 0;
  disp_t *d = k->d;
  uint64_t bytes0 = k->framer.bytes_written, big0 = k->framer.too_big;
  k->framer.other_now = d->written - k->bytes_out;
  int done = disp_framer_drain_span(&k->framer, &k->ring, out_write, out_span, k, limit);
  if (done > 0) ck_pr_add_64(&k->sent, (uint64_t)done);
  if (k->framer.too_big != big0)
    bn_counter_add(d->ctx->counters, BFTNET_COUNTER_DROPPED_TOO_BIG, k->framer.too_big - big0);
  size_t wrote = (size_t)(k->framer.bytes_written - bytes0);
  ck_pr_add_64(&k->bytes_out, wrote);
  ck_pr_add_64(&d->written, wrote);
  disp__outbound_account(k);
  if (done < 0) /* the stream ended under us: its ABORTED event follows or came */
    bn_log(d->ctx->cfg.log, BN_LOG_INFO, "member %s: write failed: %s", k->d->name,
           bftnet_strerror(done));
  return wrote;
}

/* The classes that have something to write on an open stream. */
static uint32_t waiting_mask(const disp_t *d) {
  uint32_t waiting = 0;
  for (unsigned i = 0; i < d->ncls; i++) {
    disp_cls_t *k = &d->cls[i];
    if (k->out && disp_framer_pending(&k->framer, &k->ring)) waiting |= 1u << i;
  }
  return waiting;
}

/* The scheduler's loop (paced connections): one piece at a time, by the
 * scheduler's choice, while some class can write. */
static void drain_scheduled(disp_t *d) {
  uint32_t blocked = 0; /* found unable to write during this drain */
  for (unsigned round = 0; round < DISP_SCHED_ROUNDS; round++) {
    uint32_t waiting = waiting_mask(d);
    int c = disp_sched_pick(&d->sched, waiting & ~blocked, waiting);
    if (c < 0) break;
    disp_cls_t *k = &d->cls[c];
    size_t room = BN_MIN(mig_stream_send_room(k->out), (size_t)DISP_PIECE);
    size_t wrote = room ? drain_cls(k, room) : 0;
    if (wrote == 0) {
      blocked |= 1u << c; /* its writable callback runs this loop again */
      if (k->out) mig_stream_want_writable(k->out);
      continue;
    }
    disp_sched_served(&d->sched, (unsigned)c, wrote, waiting);
  }
}

void disp__outbound_drain(disp_t *d) {
  /* The framers must not be re-entered from inside their writer (a
   * stream's writable callback can fire while mig_stream_write pumps). */
  if (d->stopped || d->draining) return;
  d->draining = true;
  disp__outbound_limit(d);
  if (d->ctx->cfg.paced) {
    drain_scheduled(d);
    for (unsigned i = 0; i < d->ncls; i++) /* the classes it did not pick too */
      disp__outbound_account(&d->cls[i]);
  } else {
    for (unsigned i = 0; i < d->ncls; i++)
      drain_cls(&d->cls[i], SIZE_MAX);
  }
  d->draining = false;
}
