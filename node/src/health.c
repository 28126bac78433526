/*
 * health.c — each member's health for the consensus layer above: the
 * keepalive round trips of its current connection (last, smoothed, the
 * largest of the last few), when anything last arrived from it, and that
 * connection's address, direction and age.
 *
 * net keeps these per connection, on the loop thread (net_conn_health).
 * On each of migration's ticks (MIG_TICK_MS: no timer, so no wakeup of its
 * own) the loop copies them, for the connection our stream to the member
 * rides (disp_conn), into the member's atomic fields, which
 * bftnet_peer_stats and bftnet_metrics_text read from any thread. The
 * round trips of a new connection replace the old one's only once it has
 * its own; "last heard" is the latest over every connection the member
 * had, so it keeps growing while the member is away.
 */
#include <netinet/in.h>
#include <stdio.h>

#include "node_internal.h"

void node__health_init(mbr_health_t *h) {
  h->conn_outbound = -1;
  h->conn_path = -1;
  ck_spinlock_fas_init(&h->addr_lock);
}

/* The address lock (the loop writes the address, any thread reads it).
 * ck's lock is inline assembly that TSan cannot see: the pair tells it. */
static void lock_addr(mbr_health_t *h) {
  ck_spinlock_fas_lock(&h->addr_lock);
  BN_TSAN_ACQUIRE(&h->addr_lock);
}

static void unlock_addr(mbr_health_t *h) {
  BN_TSAN_RELEASE(&h->addr_lock);
  ck_spinlock_fas_unlock(&h->addr_lock);
}

static void publish_addr(mbr_health_t *h, net_conn_t *c) {
  char addr[BFTNET_ADDR_MAX] = "";
  if (c) net_conn_remote_addr(c, addr, sizeof addr);
  lock_addr(h);
  memcpy(h->addr, addr, sizeof addr);
  unlock_addr(h);
  h->conn_seq = c ? net_conn_seq(c) : 0;
}

static bool sa_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b) {
  if (a->ss_family != b->ss_family) return false;
  if (a->ss_family == AF_INET) {
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
  return a->ss_family == AF_INET6 && x->sin6_port == y->sin6_port &&
         memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
}

/* Which of the member's addresses (the membership's) an outbound
 * connection dialed; -1 for an inbound one or an address not listed. */
static int conn_path(const mbr_t *m, net_conn_t *c) {
  if (!net_conn_outbound(c)) return -1;
  for (unsigned i = 0; i < m->d.naddrs; i++)
    if (sa_equal(net_conn_sa(c), &m->d.addrs[i].sa)) return (int)i;
  return -1;
}

/* Loop thread: one member's figures, from its current connection. */
static void publish(mbr_t *m) {
  mbr_health_t *h = &m->health;
  net_conn_t *c = m->d.stopped ? NULL : disp_conn(&m->d);
  if (!c) {
    ck_pr_store_64(&h->conn_up_ns, 0);
    ck_pr_store_64(&h->inflight, 0); /* the connection's figures: none without one */
    ck_pr_store_64(&h->inflight_max, 0);
    ck_pr_store_64(&h->inflight_cap, 0);
    ck_pr_store_int(&h->conn_outbound, -1);
    ck_pr_store_int(&h->conn_path, -1);
    if (h->conn_seq) publish_addr(h, NULL);
    return;
  }
  net_conn_health_t nh;
  net_conn_health(c, &nh);
  if (nh.rtt_samples) {
    ck_pr_store_64(&h->rtt_last, nh.rtt_last_ns);
    ck_pr_store_64(&h->rtt_srtt, nh.rtt_srtt_ns);
    ck_pr_store_64(&h->rtt_max, nh.rtt_max_ns);
  }
  if (nh.last_rx_ns > ck_pr_load_64(&h->heard_ns)) ck_pr_store_64(&h->heard_ns, nh.last_rx_ns);
  ck_pr_store_64(&h->conn_up_ns, nh.up_ns);
  ck_pr_store_64(&h->inflight, nh.inflight);
  ck_pr_store_64(&h->inflight_max, nh.inflight_max);
  ck_pr_store_64(&h->inflight_cap, nh.inflight_cap);
  ck_pr_store_int(&h->conn_outbound, net_conn_outbound(c) ? 1 : 0);
  ck_pr_store_int(&h->conn_path, conn_path(m, c));
  if (h->conn_seq != net_conn_seq(c)) publish_addr(h, c);
}

void node__health_publish(bftnet_t *b) {
  msnap_t *s = b->snap; /* the loop is the writer: no section needed */
  for (size_t i = 0; s && i < s->n; i++)
    publish(s->m[i]);
}

void node__health_fill(bftnet_t *b, mbr_t *m, bftnet_peer_stats_t *out) {
  mbr_health_t *h = &m->health;
  uint64_t now = bn_now_ns(b->t->seam);
  uint64_t heard = ck_pr_load_64(&h->heard_ns), up = ck_pr_load_64(&h->conn_up_ns);
  out->rtt_last_ns = ck_pr_load_64(&h->rtt_last);
  out->rtt_smoothed_ns = ck_pr_load_64(&h->rtt_srtt);
  out->rtt_max_ns = ck_pr_load_64(&h->rtt_max);
  out->since_heard_ns = heard ? (now > heard ? now - heard : 0) : UINT64_MAX;
  out->conn_age_ns = up ? (now > up ? now - up : 1) : 0;
  out->conn_outbound = ck_pr_load_int(&h->conn_outbound);
  out->inflight_bytes = ck_pr_load_64(&h->inflight);
  out->inflight_max_bytes = ck_pr_load_64(&h->inflight_max);
  out->inflight_cap_bytes = ck_pr_load_64(&h->inflight_cap);
  lock_addr(h);
  memcpy(out->conn_addr, h->addr, sizeof out->conn_addr);
  unlock_addr(h);
}
