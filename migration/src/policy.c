/*
 * policy.c — the leader's connection policy for a pair (PROTOCOL.md 11.4):
 * which connection to keep (the outbound one to the most preferred address
 * that is up, else an inbound one, oldest first among equals), moving every
 * logical stream onto it, closing duplicates once idle, and probing more
 * preferred addresses again (failback); the follower does none of it. And
 * the connection either side opens a new stream on (mig_peer_conn).
 */
#include <string.h>

#include "mig_internal.h"

static bool sa_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b) {
  if (a->ss_family != b->ss_family) return false;
  if (a->ss_family == AF_INET) {
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  if (a->ss_family == AF_INET6) {
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
  }
  return false;
}

/* Lower is better: the index of the member address an outbound connection
 * dialed; inbound (or an address no longer listed) ranks last. */
static size_t conn_rank(const mig_peer_t *p, net_conn_t *c) {
  if (net_conn_outbound(c))
    for (size_t i = 0; i < p->naddrs; i++)
      if (sa_equal(net_conn_sa(c), &p->addrs[i].sa)) return i;
  return BFTNET_MAX_ADDRS;
}

/* The connection to keep: the outbound one to the most preferred address
 * that is up, else an inbound one (oldest first among equals). */
static net_conn_t *best_conn(const mig_peer_t *p) {
  net_conn_t *best = NULL;
  size_t br = 0;
  for (net_conn_t *c = net_conn_iter(p->n->net, &p->id, NULL); c;
       c = net_conn_iter(p->n->net, &p->id, c)) {
    size_t r = conn_rank(p, c);
    if (!best || r < br || (r == br && net_conn_seq(c) < net_conn_seq(best))) {
      best = c;
      br = r;
    }
  }
  return best;
}

static bool conn_has_carriers(const mig_peer_t *p, const net_conn_t *c) {
  for (mig_carrier_t *car = p->carriers; car; car = car->next)
    if (car->conn == c && !car->dead) return true;
  return false;
}

static void probe_done(void *ud, net_conn_t *c, int err) {
  mig_peer_t *p = ud;
  mig_node_t *n = p->n;
  mig__defer_enter(n);
  p->probing = false;
  n->reap_needed = true;
  if (!err && c && !p->released && !n->stopping) mig__policy_run(p, mig__now(n), false);
  mig__defer_leave(n);
}

/* Starts moving every logical stream that is not on best yet onto it
 * (resume when detached, graceful otherwise), each at most once per
 * MIG_RETRY_NS. */
static void move_streams(mig_peer_t *p, net_conn_t *best, size_t best_rank, uint64_t now) {
  for (mig_stream_t *ls = p->streams; ls; ls = ls->next) {
    mig_sm_t *m = ls->m;
    if (!m || ls->final || ls->released || m->state == MIG_S_LABELING || m->state == MIG_S_CLOSED ||
        m->state == MIG_S_ABORTED || m->pend.h)
      continue;
    mig_carrier_t *cur = mig__carrier_find(p, m->cur.h);
    if (cur && cur->conn == best && !m->uncertain) continue;
    if (cur && m->no_migrate && !m->uncertain) continue;
    if (now < ls->next_try) continue;
    ls->next_try = now + MIG_RETRY_NS;
    mig_carrier_t *car;
    if (mig__carrier_open(p, best, MIG_PROTO_ID, p->n->carrier_cbs, true, &car) < 0) return;
    mig__confirm_ensure(p, best);
    if (!cur)
      ls->why = BFTNET_MIG_RESUME;
    else if (p->addr_changed && conn_rank(p, cur->conn) == BFTNET_MAX_ADDRS &&
             net_conn_outbound(cur->conn))
      ls->why = BFTNET_MIG_ADDR_CHANGE;
    else if (conn_rank(p, cur->conn) > best_rank)
      ls->why = BFTNET_MIG_FAILBACK;
    else
      ls->why = BFTNET_MIG_DUPLICATE;
    mig_actions_t acts;
    mig_actions_clear(&acts);
    int rc = mig_sm_migrate(&p->mig, m, car->h, &acts);
    mig__stream_apply(p, &acts, NULL);
    if (rc < 0) {
      car->released = true;
      net_stream_close(car->ns);
    }
  }
}

/* Closes the duplicates of best that carried nothing for MIG_IDLE_TICKS
 * ticks (the grace lets a stream the follower just opened arrive). */
static void close_idle(mig_peer_t *p, net_conn_t *best) {
  mig_node_t *n = p->n;
  for (net_conn_t *c = net_conn_iter(n->net, &p->id, NULL), *next; c; c = next) {
    next = net_conn_iter(n->net, &p->id, c);
    if (c == best) continue;
    size_t slot = net_conn_seq(c) % BN_ARRAY_LEN(p->idle);
    if (p->idle[slot].seq != net_conn_seq(c))
      p->idle[slot].seq = net_conn_seq(c), p->idle[slot].idle = 0;
    if (conn_has_carriers(p, c)) {
      p->idle[slot].idle = 0;
      continue;
    }
    if (++p->idle[slot].idle < MIG_IDLE_TICKS) continue;
    mig__count(n, BFTNET_COUNTER_MIG_CONN_CLOSED_EMPTY, 1);
    net_conn_close(c, BFTNET_REASON_DUPLICATE, 0);
  }
}

/* Dials one address more preferred than best's (failback), in turn. */
static void probe_preferred(mig_peer_t *p, size_t best_rank, uint64_t now) {
  size_t lim = BN_MIN(best_rank, p->naddrs);
  const maddr_t *a = &p->addrs[p->probe_idx++ % lim];
  p->next_probe = now + p->n->cfg.failback_ns;
  if (net_dial_fresh(p->n->net, a, probe_done, p) == 0) p->probing = true;
}

/* The leader's work for one pair (PROTOCOL.md 11.4): move every logical
 * stream onto the kept connection, close idle duplicates (members only, on
 * the tick), probe more preferred addresses one dial at a time. */
void mig__policy_run(mig_peer_t *p, uint64_t now, bool tick) {
  mig_node_t *n = p->n;
  if (!p->mig.leader || p->released || n->stopping || n->cfg.plain) return;
  net_conn_t *best = best_conn(p);
  if (!best) return; /* no connection yet: the tick or the next one up runs this again */
  size_t best_rank = conn_rank(p, best);
  move_streams(p, best, best_rank, now);
  if (p->naddrs && tick) close_idle(p, best);
  if (best_rank == 0) p->addr_changed = false;
  if (p->naddrs && best_rank > 0 && !p->probing && now >= p->next_probe)
    probe_preferred(p, best_rank, now);
}

net_conn_t *mig_peer_conn(mig_peer_t *p) {
  if (p->mig.leader) return best_conn(p);
  /* The follower opens where the pair's streams already are, so the leader
   * has nothing to move; else on the oldest connection. */
  for (mig_carrier_t *car = p->carriers; car; car = car->next)
    if (!car->dead && !car->released && car->conn && net_conn_ready(car->conn) &&
        !net_conn_going_away(car->conn))
      return car->conn;
  net_conn_t *oldest = NULL;
  for (net_conn_t *c = net_conn_iter(p->n->net, &p->id, NULL); c;
       c = net_conn_iter(p->n->net, &p->id, c))
    if (!oldest || net_conn_seq(c) < net_conn_seq(oldest)) oldest = c;
  return oldest;
}
