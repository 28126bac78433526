/* classes.c — --classes: the load of each traffic class (its own sequence
 * numbers per peer, its own pacing or flat out), its integrity and latency
 * per sender and class, bftnet's counters per class (bftnet_class_stats)
 * and the per-class parts of the stats lines and the report. Unused
 * without --classes (rp.o.mix.n == 0). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "replica.h"

#define CLS_OVER_NS (10 * NS_PER_MS) /* flat out, ring full: one more message this often */

int classes_config(bftnet_config_t *cfg, bftnet_class_t *out) {
  const classmix_t *m = &rp.o.mix;
  for (size_t k = 0; k < m->n; k++) {
    const classmix_class_t *c = &m->c[k];
    if (c->size > cfg->max_message_size)
      return rp_log("class %s: size %zu above the message limit %u", c->name, c->size,
                    cfg->max_message_size),
             -1;
    bftnet_class_init(&out[k], c->name);
    out[k].priority = c->prio;
    out[k].policy = c->policy;
    out[k].ring_capacity = c->ring;
    out[k].ring_max_bytes = 2 * (uint64_t)c->ring * c->size; /* the count bounds it */
  }
  cfg->classes = out;
  cfg->nclasses = m->n;
  return 0;
}

int classes_peer_init(rp_peer_t *p) {
  if (rp.o.mix.n == 0) return 0;
  p->cls = calloc(rp.o.mix.n, sizeof *p->cls);
  if (!p->cls) return -1;
  for (size_t k = 0; k < rp.o.mix.n; k++) {
    stats_rx_init(&p->cls[k].rx);
    stats_lat_reset(&p->cls[k].lat_run);
    stats_lat_reset(&p->cls[k].lat_tick);
  }
  return 0;
}

/* ------------------------------------------------------------ sender */

/* One message of class k to p. Returns bftnet_send_ex's code. */
static int send_one(rp_peer_t *p, size_t k, uint8_t *buf) {
  rp_cls_t *c = &p->cls[k];
  const classmix_class_t *mc = &rp.o.mix.c[k];
  uint64_t seq = atomic_load(&c->sent) + 1;
  bftnet_send_opts_t so = {.cls = (uint8_t)k};
  if (mc->keys) so.key = 1 + c->key_next++ % mc->keys;
  stats_payload_encode(buf, mc->size, seq, rp_now_ns());
  int rc = bftnet_send_ex(rp.net, p->id, &so, buf, mc->size);
  if (rc >= 0)
    atomic_store(&c->sent, seq);
  else if (rc != BFTNET_ENOTFOUND && rc != BFTNET_ECLOSED)
    atomic_fetch_add(&c->send_errors, 1);
  return rc;
}

static bool gone(int rc) {
  return rc == BFTNET_ENOTFOUND || rc == BFTNET_ECLOSED;
}

/* rate=R: as load.c's --rate (the same grid of rounds), per class. */
static uint64_t send_paced(rp_peer_t *p, size_t k, uint8_t *buf, uint64_t now) {
  rp_cls_t *c = &p->cls[k];
  double r = rp.o.mix.c[k].rate;
  uint64_t slot = (uint64_t)((double)now * r / 1e9);
  if (c->pace_base_ns == 0) {
    c->pace_base_ns = now;
    c->pace_issued = slot > 0 ? slot - 1 : 0;
  }
  uint64_t burst = (uint64_t)(r / 10.0);
  if (burst < 1) burst = 1;
  if (burst > rp.o.mix.c[k].ring) burst = rp.o.mix.c[k].ring;
  if (slot > c->pace_issued + burst) {
    atomic_fetch_add(&c->lagged, slot - c->pace_issued - burst);
    c->pace_issued = slot - burst;
  }
  while (c->pace_issued < slot) {
    if (gone(send_one(p, k, buf))) break;
    c->pace_issued++;
  }
  return (uint64_t)ceil((double)(c->pace_issued + 1) * 1e9 / r);
}

/* rate=max: tops the ring up to full; when it was full already (the link
 * is the bottleneck), one more message every CLS_OVER_NS, so the ring's
 * policy drops. */
static void send_max(rp_peer_t *p, size_t k, uint8_t *buf, uint64_t now) {
  rp_cls_t *c = &p->cls[k];
  bftnet_class_stats_t cs;
  if (bftnet_class_stats(rp.net, p->id, (uint8_t)k, &cs) != 0) return;
  uint32_t ring = rp.o.mix.c[k].ring, want = cs.ring_depth < ring ? ring - cs.ring_depth : 0;
  if (want == 0 && now >= c->over_ns) {
    want = 1;
    c->over_ns = now + CLS_OVER_NS;
  }
  for (uint32_t i = 0; i < want; i++)
    if (gone(send_one(p, k, buf))) break;
}

uint64_t classes_send(rp_peer_t *p, uint8_t *buf, uint64_t now, bool active) {
  uint64_t next = now + RP_MAX_SLEEP_NS;
  for (size_t k = 0; k < rp.o.mix.n; k++) {
    if (!active) {
      p->cls[k].pace_base_ns = 0;
    } else if (rp.o.mix.c[k].rate > 0) {
      uint64_t due = send_paced(p, k, buf, now);
      if (due < next) next = due;
    } else {
      send_max(p, k, buf, now);
      if (now + NS_PER_MS < next) next = now + NS_PER_MS;
    }
  }
  return next;
}

size_t classes_max_size(void) {
  size_t s = 0;
  for (size_t k = 0; k < rp.o.mix.n; k++)
    if (rp.o.mix.c[k].size > s) s = rp.o.mix.c[k].size;
  return s;
}

/* ----------------------------------------------------------- receiver */

void classes_rx(rp_peer_t *p, const bftnet_msg_t *m, uint64_t now) {
  uint8_t k = m->cls;
  if (k >= rp.o.mix.n) {
    p->foreign++;
    return;
  }
  rp_cls_t *c = &p->cls[k];
  uint64_t seq, sent_ns;
  uint64_t restarts = atomic_load(&p->ev[BFTNET_EV_PEER_RESTARTED - RP_EV_FIRST]);
  if (stats_payload_decode(m->data, m->len, &seq, &sent_ns) != 0 ||
      stats_rx_observe(&c->rx, seq, restarts) == STATS_SEQ_INVALID) {
    c->foreign++;
    return;
  }
  c->delivered++;
  uint64_t lat = now > sent_ns ? now - sent_ns : 0;
  stats_lat_record(&c->lat_run, lat);
  stats_lat_record(&c->lat_tick, lat);
  stats_lat_record(&p->lat_run, lat); /* the peer's latency: every class */
  stats_lat_record(&p->lat_tick, lat);
}

/* ------------------------------------------------- bftnet's counters */

void classes_refresh(rp_peer_t *p) {
  for (size_t k = 0; k < rp.o.mix.n; k++) {
    bftnet_class_stats_t cs;
    if (bftnet_class_stats(rp.net, p->id, (uint8_t)k, &cs) == 0) p->cls[k].lib_cur = cs;
  }
}

/* The member left bftnet: its class counters go into the base. What was
 * still queued counts as dropped on removal (as peers_retire does); what
 * was written and not confirmed read (bftnet_class_stats.unconfirmed, in
 * messages rounded up), and what was handed to bftnet and is in no counter
 * of the last snapshot (a large message taken from the ring, still being
 * written when the member went), count as aborted: lost with the member's
 * stream, or read just before, as bftnet counts an aborted stream. */
void classes_retire(rp_peer_t *p) {
  for (size_t k = 0; k < rp.o.mix.n; k++) {
    rp_cls_t *c = &p->cls[k];
    const bftnet_class_stats_t *s = &c->lib_cur;
    c->base.enqueued += s->enqueued;
    c->base.written += s->sent;
    c->base.dropped += s->dropped + s->superseded + s->ring_depth;
    c->base.superseded += s->superseded;
    c->base.aborted += s->aborted;
    c->base.tentative_evicted += s->tentative_evicted;
    /* written, not yet confirmed read: lost with the connection, or read */
    size_t size = rp.o.mix.c[k].size;
    uint64_t unconf = (s->unconfirmed + size - 1) / size;
    c->base.aborted += unconf < s->sent ? unconf : s->sent;
    uint64_t sent = atomic_load(&c->sent),
             done = c->base.written + c->base.dropped + c->base.aborted;
    if (sent > done) c->base.aborted += sent - done;
    memset(&c->lib_cur, 0, sizeof c->lib_cur);
  }
}

/* Class k of p's row. Main thread, under rx_mu. */
void classes_row(rp_peer_t *p, size_t k, rp_crow_t *r) {
  const rp_cls_t *c = &p->cls[k];
  const bftnet_class_stats_t *s = &c->lib_cur; /* zero when not a member */
  *r = (rp_crow_t){
      .sent = atomic_load(&c->sent),
      .enqueued = c->base.enqueued + s->enqueued,
      .written = c->base.written + s->sent,
      .dropped = c->base.dropped + s->dropped + s->superseded,
      .superseded = c->base.superseded + s->superseded,
      .aborted = c->base.aborted + s->aborted,
      .ring_depth = s->ring_depth,
      .send_errors = atomic_load(&c->send_errors),
      .lagged = atomic_load(&c->lagged),
      .delivered = c->delivered,
      .foreign = c->foreign,
  };
  /* bftnet counts the evictions per class: each class's gaps are
   * explained by its own. */
  r->verdict = rp_recv_fill(&c->rx, c->base.tentative_evicted + s->tentative_evicted, &r->recv);
  uint64_t done = r->written + r->dropped + r->aborted;
  r->unconfirmed = r->sent > done ? r->sent - done : 0;
}

/* The classes' sums into p's row: the peer's integrity is its classes'.
 * Its sequence numbers (max_seq, first_seq, delivered_current, the
 * incarnations) are class 0's: a sum of numbers means nothing. */
void classes_row_sum(rp_peer_t *p, rp_row_t *r) {
  r->sent = r->delivered = r->send_errors = r->lagged = 0;
  r->foreign = p->foreign;
  r->recv = (rp_recv_t){0};
  r->verdict = STATS_OK;
  for (size_t k = 0; k < rp.o.mix.n; k++) {
    rp_crow_t c;
    classes_row(p, k, &c);
    r->sent += c.sent;
    r->delivered += c.delivered;
    r->foreign += c.foreign;
    r->send_errors += c.send_errors;
    r->lagged += c.lagged;
    if (k == 0) {
      r->recv = c.recv;
    } else {
      r->recv.gaps += c.recv.gaps;
      r->recv.duplicates += c.recv.duplicates;
      r->recv.reorders += c.recv.reorders;
      r->recv.stale += c.recv.stale;
      r->recv.rx_evicted += c.recv.rx_evicted;
    }
    r->verdict = stats_verdict_worst(r->verdict, c.verdict);
  }
}

void classes_crow_add(rp_crow_t *t, const rp_crow_t *r) {
#define RP_X_(f) t->f += r->f;
  RP_CROW_FIELDS(RP_X_)
#undef RP_X_
  rp_recv_add(&t->recv, &r->recv);
  t->verdict = stats_verdict_worst(t->verdict, r->verdict);
}
