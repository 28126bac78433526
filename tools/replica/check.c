/* check.c — the receiver thread: every message received is checked for
 * gaps, duplicates and reorders per incarnation of its sender, and its
 * latency recorded. */
#include <stdlib.h>

#include "replica.h"

/* Under rx_mu. */
static void rx_account(const bftnet_msg_t *m, uint64_t now) {
  rp_peer_t *p = peers_find(m->from);
  if (!p) {
    atomic_fetch_add(&rp.rx_unknown, 1);
    return;
  }
  if (p->cls) {
    classes_rx(p, m, now);
    return;
  }
  uint64_t seq, sent_ns;
  uint64_t restarts = atomic_load(&p->ev[BFTNET_EV_PEER_RESTARTED - RP_EV_FIRST]);
  if (stats_payload_decode(m->data, m->len, &seq, &sent_ns) != 0 ||
      stats_rx_observe(&p->rx, seq, restarts) == STATS_SEQ_INVALID) {
    p->foreign++;
    return;
  }
  p->delivered++;
  uint64_t lat = now > sent_ns ? now - sent_ns : 0;
  stats_lat_record(&p->lat_run, lat);
  stats_lat_record(&p->lat_tick, lat);
}

void *check_main(void *arg) {
  (void)arg;
  bftnet_msg_t msgs[RP_RECV_BATCH];
  while (!atomic_load(&rp.stop_recv)) {
    int n = bftnet_recv_batch(rp.net, msgs, RP_RECV_BATCH, 100);
    if (n == BFTNET_ETIMEDOUT || n == BFTNET_EAGAIN) continue;
    if (n == BFTNET_ECLOSED) break;
    if (n < 0) {
      rp_log("receive: %s", bftnet_strerror(n));
      rp_sleep_until(rp_now_ns() + 10 * NS_PER_MS);
      continue;
    }
    uint64_t now = rp_now_ns();
    pthread_mutex_lock(&rp.rx_mu);
    for (int i = 0; i < n; i++)
      rx_account(&msgs[i], now);
    pthread_mutex_unlock(&rp.rx_mu);
    for (int i = 0; i < n; i++)
      bftnet_msg_release(&msgs[i]);
    atomic_store(&rp.last_rx_ns, now);
  }
  return NULL;
}
