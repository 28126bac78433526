/* peers.c — the peer table (every node ID ever seen, found lock-free by
 * any thread) and each peer's counters: bftnet's, summed over the
 * member's incarnations, and the rows of the stats lines and the report. */
#include <stdlib.h>
#include <string.h>

#include "replica.h"

/* ---------------------------------------------------------- peer table */

static uint32_t id_hash(const char *s) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (uint8_t)*s) * 16777619u;
  return h;
}

/* Any thread. */
rp_peer_t *peers_find(const char *id) {
  for (uint32_t i = id_hash(id), n = 0; n < RP_SLOTS; i++, n++) {
    rp_peer_t *p = atomic_load_explicit(&rp.slots[i & (RP_SLOTS - 1)], memory_order_acquire);
    if (!p) return NULL;
    if (strcmp(p->id, id) == 0) return p;
  }
  return NULL;
}

/* Main thread only (the single writer). NULL when the table is full. */
rp_peer_t *peers_get(const char *id) {
  rp_peer_t *p = peers_find(id);
  if (p) return p;
  size_t n = atomic_load(&rp.npeers);
  if (n == RP_MAX_PEERS) return NULL;
  p = calloc(1, sizeof *p);
  if (!p) return NULL;
  snprintf(p->id, sizeof p->id, "%s", id);
  stats_rx_init(&p->rx);
  stats_lat_reset(&p->lat_run);
  stats_lat_reset(&p->lat_tick);
  if (classes_peer_init(p) != 0) {
    free(p);
    return NULL;
  }
  uint32_t i = id_hash(id);
  while (atomic_load_explicit(&rp.slots[i & (RP_SLOTS - 1)], memory_order_relaxed))
    i++;
  rp.peers[n] = p;
  atomic_store_explicit(&rp.npeers, n + 1, memory_order_release);
  atomic_store_explicit(&rp.slots[i & (RP_SLOTS - 1)], p, memory_order_release);
  return p;
}

/* --------------------------------------------------- library counters */

/* Main thread: refreshes the current incarnation's snapshot of a member. */
void peers_refresh(rp_peer_t *p) {
  if (!p->member) return;
  bftnet_peer_stats_t ps;
  if (bftnet_peer_stats(rp.net, p->id, &ps) != 0) return;
  p->lib_cur = ps;
  p->lib_live = true;
  if (p->cls) classes_refresh(p);
}

void peers_refresh_all(void) {
  size_t n = atomic_load(&rp.npeers);
  for (size_t i = 0; i < n; i++)
    peers_refresh(rp.peers[i]);
}

/* The member left bftnet (removed, or its peer ID changed): its counters go
 * into the base. bftnet forgets a removed member's counters, so the ones it
 * releases on removal are taken from the last snapshot (see REPORT.md). */
void peers_retire(rp_peer_t *p) {
  if (!p->lib_live) return;
  if (p->cls) classes_retire(p);
  const bftnet_peer_stats_t *c = &p->lib_cur;
  rp_lib_t *b = &p->lib_base;
  b->enqueued += c->enqueued;
  b->sent += c->sent;
  b->delivered += c->delivered;
  b->dropped_overflow += c->dropped_overflow;
  b->dropped_removed += c->dropped_removed + c->ring_depth;
  b->aborted += c->aborted;
  b->migrations += c->migrations;
  b->detached += c->detached;
  b->resumed += c->resumed;
  b->retransmitted += c->retransmitted;
  b->peer_restarts += c->peer_restarts;
  if (c->detached) b->detach_ns_last = c->detach_ns_last;
  if (c->detach_ns_max > b->detach_ns_max) b->detach_ns_max = c->detach_ns_max;
  b->bytes_out += c->bytes_out;
  b->bytes_in += c->bytes_in;
  b->reconnects += c->reconnects;
  b->tentative_evicted += c->tentative_evicted;
  memset(&p->lib_cur, 0, sizeof p->lib_cur);
  p->lib_live = false;
}

/* Main thread; rx fields under rx_mu. */
void peers_row(rp_peer_t *p, rp_row_t *r) {
  const rp_lib_t *b = &p->lib_base;
  const bftnet_peer_stats_t *c = &p->lib_cur; /* zero when not live */
  *r = (rp_row_t){
      .sent = atomic_load(&p->sent),
      .enqueued = b->enqueued + c->enqueued,
      .written = b->sent + c->sent,
      .dropped_overflow = b->dropped_overflow + c->dropped_overflow,
      .dropped_removed = b->dropped_removed + c->dropped_removed,
      .aborted = b->aborted + c->aborted,
      .unconfirmed_bytes = p->lib_live ? c->unconfirmed : 0,
      .send_errors = atomic_load(&p->send_errors),
      .lagged = atomic_load(&p->lagged),
      .delivered = p->delivered,
      .foreign = p->foreign,
      .reconnects = b->reconnects + c->reconnects,
      .migrations = b->migrations + c->migrations,
      .detached = b->detached + c->detached,
      .resumed = b->resumed + c->resumed,
      .retransmitted = b->retransmitted + c->retransmitted,
      .peer_restarts = b->peer_restarts + c->peer_restarts,
      .bytes_out = b->bytes_out + c->bytes_out,
      .bytes_in = b->bytes_in + c->bytes_in,
      .ring_depth = p->lib_live ? c->ring_depth : 0,
      .connected = p->lib_live ? (uint64_t)(c->connected != 0) : 0,
      .detach_ns_last = c->detached ? c->detach_ns_last : b->detach_ns_last,
      .detach_ns_max = c->detach_ns_max > b->detach_ns_max ? c->detach_ns_max : b->detach_ns_max,
      .ev_aborted_lost = atomic_load(&p->ev_aborted_lost),
      .removals = p->removals,
  };
  for (int k = 0; k < RP_EV_N; k++)
    r->ev[k] = atomic_load(&p->ev[k]);
  uint64_t gone = r->written + r->dropped_overflow + r->dropped_removed + r->aborted;
  r->verdict = rp_recv_fill(&p->rx, b->tentative_evicted + c->tentative_evicted, &r->recv);
  if (p->cls) classes_row_sum(p, r);
  r->unconfirmed = r->sent > gone ? r->sent - gone : 0;
}

void peers_row_add(rp_row_t *t, const rp_row_t *r) {
#define RP_X_(f) t->f += r->f;
  RP_ROW_FIELDS(RP_X_)
#undef RP_X_
  rp_recv_add(&t->recv, &r->recv);
  if (r->detach_ns_last > t->detach_ns_last) t->detach_ns_last = r->detach_ns_last;
  if (r->detach_ns_max > t->detach_ns_max) t->detach_ns_max = r->detach_ns_max;
  for (int k = 0; k < RP_EV_N; k++)
    t->ev[k] += r->ev[k];
  t->ev_aborted_lost += r->ev_aborted_lost;
  t->verdict = stats_verdict_worst(t->verdict, r->verdict);
}

void peers_rows(peers_row_fn fn, void *ud, rp_row_t *tot) {
  *tot = (rp_row_t){0};
  size_t n = atomic_load(&rp.npeers);
  pthread_mutex_lock(&rp.rx_mu);
  for (size_t i = 0; i < n; i++) {
    rp_peer_t *p = rp.peers[i];
    rp_row_t r;
    peers_row(p, &r);
    fn(p, &r, ud);
    peers_row_add(tot, &r);
  }
  pthread_mutex_unlock(&rp.rx_mu);
}
