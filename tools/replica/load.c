/* load.c — the sender thread: numbered, time-stamped load messages to
 * every active peer, paced (--rate) or keeping the rings full (--rate 0). */
#include <math.h>
#include <stdlib.h>

#include "replica.h"

/* Hands one load message to bftnet. Returns bftnet_send's code. */
static int send_one(rp_peer_t *p, uint8_t *buf) {
  uint64_t seq = atomic_load(&p->sent) + 1;
  stats_payload_encode(buf, rp.o.size, seq, rp_now_ns());
  int rc = bftnet_send(rp.net, p->id, buf, rp.o.size);
  if (rc == 0)
    atomic_store(&p->sent, seq);
  else if (rc != BFTNET_ENOTFOUND && rc != BFTNET_ECLOSED)
    atomic_fetch_add(&p->send_errors, 1);
  return rc;
}

/* --rate R: sends what is due since the peer became active, at most 100 ms
 * (and one ring) worth at once; a larger backlog is skipped and counted as
 * lagged. Returns when the next message to this peer is due.
 *
 * Message k is due at k/R on CLOCK_MONOTONIC's own grid, the same for
 * every peer and for every replica of the host: a replica sends to all its
 * peers in one round, and the replicas' rounds coincide, as in a consensus
 * round. Each message then costs no wakeup of its own anywhere (sender,
 * loop threads, receivers): what lets a 2-core host carry 64 replicas. */
static uint64_t send_paced(rp_peer_t *p, uint8_t *buf, uint64_t now) {
  double r = rp.o.rate;
  uint64_t slot = (uint64_t)((double)now * r / 1e9); /* rounds since the clock's origin */
  if (p->pace_base_ns == 0) { /* (re)activated: its rounds start with the current one */
    p->pace_base_ns = now;
    p->pace_issued = slot > 0 ? slot - 1 : 0;
  }
  uint64_t due = slot;
  uint64_t burst = (uint64_t)(r / 10.0);
  if (burst < 1) burst = 1;
  if (burst > rp.ring_cap) burst = rp.ring_cap;
  if (due > p->pace_issued + burst) {
    atomic_fetch_add(&p->lagged, due - p->pace_issued - burst);
    p->pace_issued = due - burst;
  }
  while (p->pace_issued < due) {
    int rc = send_one(p, buf);
    if (rc == BFTNET_ENOTFOUND || rc == BFTNET_ECLOSED) break;
    p->pace_issued++; /* other errors: counted, the slot is spent */
  }
  /* The next round's start, rounded up to the nanosecond. */
  return (uint64_t)ceil((double)(p->pace_issued + 1) * 1e9 / r);
}

/* --rate 0: below half a ring, tops the ring up to 7/8 (never full, so
 * nothing is dropped by our own eagerness). Returns true if it sent. */
static bool send_fill(rp_peer_t *p, uint8_t *buf) {
  bftnet_peer_stats_t ps;
  if (bftnet_peer_stats(rp.net, p->id, &ps) != 0) return false;
  if (ps.ring_depth >= rp.ring_cap / 2) return false;
  uint32_t want = rp.ring_cap - rp.ring_cap / 8 - ps.ring_depth;
  for (uint32_t i = 0; i < want; i++) {
    int rc = send_one(p, buf);
    if (rc == BFTNET_ENOTFOUND || rc == BFTNET_ECLOSED) break;
  }
  return true;
}

void *load_main(void *arg) {
  (void)arg;
  uint8_t *buf = malloc(rp.o.mix.n ? classes_max_size() : rp.o.size);
  if (!buf) {
    rp_log("sender: out of memory");
    return NULL;
  }
  while (!atomic_load(&rp.stop_sending)) {
    uint64_t now = rp_now_ns(), next = now + RP_MAX_SLEEP_NS;
    bool busy = false;
    pthread_mutex_lock(&rp.send_mu);
    size_t n = atomic_load_explicit(&rp.npeers, memory_order_acquire);
    for (size_t i = 0; i < n; i++) {
      rp_peer_t *p = rp.peers[i];
      if (p->cls) {
        uint64_t due = classes_send(p, buf, now, atomic_load(&p->active));
        if (due < next) next = due;
        continue;
      }
      if (!atomic_load(&p->active)) {
        p->pace_base_ns = 0; /* pacing restarts when it comes back */
        continue;
      }
      if (rp.o.rate > 0) {
        uint64_t due = send_paced(p, buf, now);
        if (due < next) next = due;
      } else {
        busy |= send_fill(p, buf);
      }
    }
    pthread_mutex_unlock(&rp.send_mu);
    if (rp.o.rate == 0 && !rp.o.mix.n) next = now + (busy ? RP_MIN_SLEEP_NS : 4 * RP_MIN_SLEEP_NS);
    uint64_t earliest = rp_now_ns() + RP_MIN_SLEEP_NS;
    rp_sleep_until(next > earliest ? next : earliest);
  }
  free(buf);
  return NULL;
}
