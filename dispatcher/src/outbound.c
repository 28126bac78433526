/*
 * outbound.c — a member's Dispatcher on the loop thread: the connection it
 * keeps to the member (dials over its addresses, redials with backoff) and
 * our one logical /bftnet/msg/1.0.0 stream to it, which the framer fills
 * from the ring while the stream's retransmit window has room.
 *
 * Both sides of a pair dial while they have no connection to each other;
 * the leader of the pair then keeps one (migration.h). A stream that ends
 * (aborted, closed) is replaced by a new one: the ring kept what was not
 * yet written, and what the old stream lost is counted.
 */
#include <ck_pr.h>

#include "disp_internal.h"
#include "dispatcher.h"

static void dial(disp_t *d);

void disp__outbound_redial_tick(void *ud) {
  disp_t *d = ud;
  d->redial_pending = false;
  dial(d);
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

/* Counts what the member's stream lost: the messages written but not
 * confirmed read, plus those the framer had in hand. */
uint64_t disp__outbound_lost(disp_t *d) {
  uint64_t confirmed =
      d->out ? d->out_base + mig_stream_app_confirmed(d->out) : d->framer.bytes_written;
  disp_ends_trim(&d->ends, confirmed);
  uint64_t lost = disp_ends_count(&d->ends);
  disp_ends_free(&d->ends);
  return lost + (uint64_t)disp_framer_abort(&d->framer);
}

static void open_out(disp_t *d);

static void out_writable(void *ud, mig_stream_t *ls) {
  (void)ls;
  disp__outbound_drain(ud);
}

static void out_event(void *ud, mig_stream_t *ls, const mig_event_t *e) {
  disp_t *d = ud;
  const disp_cbs_t *cbs = d->ctx->cbs;
  if (ls != d->out) return;
  /* MEMBER_DOWN says why: the connection's end (a detach), a reset, or
   * the peer going away in order (GO_AWAY first). */
  bftnet_reason_t why = e->cause != BFTNET_REASON_NONE ? e->cause : BFTNET_REASON_RESET;
  switch (e->type) {
  case MIG_EV_DETACHED:
    ck_pr_store_int(&d->connected, 0);
    cbs->on_stream_event(d->ud, ls, e, 0);
    cbs->on_member(d->ud, BFTNET_EV_MEMBER_DOWN, why, BFTNET_ECLOSED);
    ensure_conn(d);
    break;
  case MIG_EV_RESUMED:
    ck_pr_store_int(&d->connected, 1);
    ck_pr_inc_64(&d->reconnects);
    cbs->on_stream_event(d->ud, ls, e, 0);
    cbs->on_member(d->ud, BFTNET_EV_MEMBER_UP, BFTNET_REASON_NONE, 0);
    disp__outbound_drain(d);
    break;
  case MIG_EV_MIGRATED:
  case MIG_EV_DENIED:
    cbs->on_stream_event(d->ud, ls, e, 0);
    disp__outbound_drain(d);
    break;
  case MIG_EV_ABORTED:
  case MIG_EV_CLOSED: {
    uint64_t lost = disp__outbound_lost(d);
    if (!BN_SIM_DEFECT(3)) ck_pr_add_64(&d->aborted, lost);
    bn_counter_add(d->ctx->counters, BFTNET_COUNTER_MIG_ABORTED_MSGS, lost);
    d->out = NULL;
    ck_pr_store_int(&d->connected, 0);
    ck_pr_store_64(&d->unconfirmed, 0);
    cbs->on_stream_event(d->ud, ls, e, lost);
    mig_stream_release(ls);
    cbs->on_member(d->ud, BFTNET_EV_MEMBER_DOWN, why, BFTNET_ERESET);
    if (!d->stopped) open_out(d); /* a new stream (the ring kept the rest) */
    break;
  }
  case MIG_EV_READ_EOF:
    break;
  }
}

static const mig_stream_cbs_t out_cbs = {.on_writable = out_writable, .on_event = out_event};

/* Opens our stream to the member on the pair's connection, if one is up. */
static void open_out(disp_t *d) {
  if (d->stopped || d->out || !d->lp) return;
  net_conn_t *c = mig_peer_conn(d->lp);
  if (!c) return ensure_conn(d);
  int rc = mig_stream_open(d->lp, c, &out_cbs, d, &d->out);
  if (rc < 0) {
    d->out = NULL;
    bn_log(d->ctx->cfg.log, BN_LOG_INFO, "member %s: cannot open its stream: %s", d->name,
           bftnet_strerror(rc));
    return schedule_redial(d);
  }
  d->out_base = d->framer.bytes_written;
  d->framer.ends = &d->ends;
  ck_pr_store_int(&d->connected, 1);
  if (d->ever_up) ck_pr_inc_64(&d->reconnects);
  d->ever_up = true;
  d->ctx->cbs->on_member(d->ud, BFTNET_EV_MEMBER_UP, BFTNET_REASON_NONE, 0);
  disp__outbound_drain(d);
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
  if (!d->out) open_out(d);
}

static void dial(disp_t *d) {
  if (d->stopped || d->dialing) return;
  if (net_count_conns(d->ctx->net, &d->peer) > 0) {
    if (!d->out) open_out(d);
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
  if (!d->stopped && !d->out) dial(d);
}

void disp_conn_up(disp_t *d) {
  if (d->stopped) return;
  reached(d);
  /* A member that reached us while we wait out the backoff: our stream
   * can start now. */
  if (!d->out) open_out(d);
}

net_conn_t *disp_conn(disp_t *d) {
  net_conn_t *c = d->out ? mig_stream_conn(d->out) : NULL;
  if (!c && d->lp) c = mig_peer_conn(d->lp);
  return c;
}

void disp_conn_down(disp_t *d) {
  if (!d->stopped) ensure_conn(d);
}

static int out_write(void *ctx, const uint8_t *p, size_t n) {
  disp_t *d = ctx;
  return mig_stream_write(d->out, p, n);
}

void disp__outbound_limit(disp_t *d) {
  uint32_t lim = d->lp ? mig_peer_max_message_size(d->lp) : 0;
  if (lim == d->framer.peer_max) return;
  d->framer.peer_max = lim;
  ck_pr_store_32(&d->peer_max, lim);
}

void disp__outbound_account(disp_t *d) {
  disp__outbound_limit(d);
  if (!d->out) return;
  uint64_t w = mig_stream_app_written(d->out), c = mig_stream_app_confirmed(d->out);
  disp_ends_trim(&d->ends, d->out_base + c);
  ck_pr_store_64(&d->unconfirmed, mig_stream_migratable(d->out) ? w - c : 0);
  ck_pr_store_int(&d->framer_busy, d->framer.cur || d->framer.held_len);
}

void disp__outbound_drain(disp_t *d) {
  /* The framer must not be re-entered from inside its writer (a stream's
   * writable callback can fire while mig_stream_write pumps). */
  if (!d->out || d->stopped || d->draining) return;
  d->draining = true;
  disp__outbound_limit(d);
  uint64_t bytes0 = d->framer.bytes_written, big0 = d->framer.too_big;
  int done = disp_framer_drain(&d->framer, &d->ring, out_write, d);
  if (done > 0) ck_pr_add_64(&d->sent, (uint64_t)done);
  if (d->framer.too_big != big0)
    bn_counter_add(d->ctx->counters, BFTNET_COUNTER_DROPPED_TOO_BIG, d->framer.too_big - big0);
  ck_pr_add_64(&d->bytes_out, d->framer.bytes_written - bytes0);
  disp__outbound_account(d);
  d->draining = false;
  if (done < 0) { /* the stream ended under us: its ABORTED event follows or came */
    bn_log(d->ctx->cfg.log, BN_LOG_INFO, "member %s: write failed: %s", d->name,
           bftnet_strerror(done));
  }
}
