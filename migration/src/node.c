/*
 * node.c — the node and its peers: mig_node_* (lifecycle, connection events,
 * the tick that fires detach timeouts and runs the policy), the registry of
 * peers (mig_peer_*), and the streams a peer opens to us (net's protocol
 * handlers: /libp2p/stream-migration, and the plain streams of each
 * application protocol).
 */
#include <stdlib.h>

#include "mig_internal.h"

static void tick(void *ud) {
  mig_node_t *n = ud;
  mig__defer_enter(n);
  uint64_t now = mig__now(n);
  for (mig_peer_t *p = n->peers; p; p = p->next) {
    if (p->released) continue;
    mig_actions_t acts;
    mig_actions_clear(&acts);
    (void)mig_reg_tick(&p->mig, now, &acts);
    mig__stream_apply(p, &acts, NULL);
    mig__policy_run(p, now, true);
  }
  mig__defer_leave(n);
  if (n->cbs.on_tick && !n->stopping) n->cbs.on_tick(n->ud);
}

static int on_inbound_mig(void *ud, net_conn_t *c, net_stream_t *s) {
  mig_node_t *n = ud;
  if (n->stopping) return BFTNET_ECLOSED;
  mig_peer_t *p = mig_peer_get(n, net_conn_peer(c));
  if (!p) return BFTNET_ENOMEM;
  mig_carrier_t *car;
  int rc = mig__carrier_open(p, c, NULL, NULL, true, &car);
  if (rc < 0) return rc;
  car->ns = s;
  car->pre_left = net_stream_pre_bytes(s); /* net's header, any na, the echo */
  net_stream_set_cbs(s, &mig__io_carrier_cbs, car);
  return 0;
}

static int on_inbound_ctl(void *ud, net_conn_t *c, net_stream_t *s) {
  mig_node_t *n = ud;
  if (n->stopping) return BFTNET_ECLOSED;
  mig_peer_t *p = mig_peer_get(n, net_conn_peer(c));
  if (!p) return BFTNET_ENOMEM;
  return mig__confirm_accept(p, c, s);
}

static int on_inbound_plain(void *ud, net_conn_t *c, net_stream_t *s) {
  mig_node_t *n = ud;
  if (n->stopping) return BFTNET_ECLOSED;
  mig_peer_t *p = mig_peer_get(n, net_conn_peer(c));
  if (!p) return BFTNET_ENOMEM;
  mig__defer_enter(n);
  int rc = BFTNET_ENOMEM;
  mig_carrier_t *car = mig__carrier_new(p, c);
  mig_stream_t *ls = car ? mig__stream_new(p, false) : NULL;
  if (ls) {
    car->ns = s;
    car->plain_ls = ls;
    ls->plain = true;
    ls->pc = car;
    ls->neg_done = true;
    ls->handed_up = true;
    const char *proto = net_stream_protocol(s);
    ls->app = mig__stream_app_index(n, proto, strlen(proto));
    mig__stream_set_conn(ls, c);
    net_stream_set_cbs(s, &mig__io_plain_cbs, car);
    rc = n->cbs.on_stream ? n->cbs.on_stream(n->ud, p, ls) : BFTNET_ENOTMEMBER;
    if (rc < 0) {
      ls->released = true;
      car->plain_ls = NULL;
      net_stream_set_cbs(s, &mig__io_plain_cbs, car);
      n->reap_needed = true;
      /* net resets the stream; its on_free unlinks the carrier */
    }
  } else if (car) {
    mig__carrier_unlink(car);
  }
  mig__defer_leave(n);
  return rc;
}

int mig_node_new(mig_node_t **out, net_t *net, const mig_config_t *cfg, const mig_node_cbs_t *cbs,
                 void *ud, bn_counters_t *ctr) {
  if (!out || !net || !cfg || !cbs || !cfg->window_max) return BFTNET_EINVAL;
  if (cfg->apps && (cfg->napps == 0 || cfg->napps > MIG_MAX_APPS)) return BFTNET_EINVAL;
  mig_node_t *n = calloc(1, sizeof *n);
  if (!n) return BFTNET_ENOMEM;
  n->napps = cfg->apps ? cfg->napps : 1;
  for (unsigned i = 0; i < n->napps; i++)
    n->apps[i] = cfg->apps ? cfg->apps[i] : MIG_APP_PROTO;
  n->net = net;
  n->t = net_transport(net);
  n->cfg = *cfg;
  n->cbs = *cbs;
  n->ud = ud;
  n->ctr = ctr;
  bn_random(n->t->seam, &n->incarnation, sizeof n->incarnation);
  n->carrier_cbs = &mig__io_carrier_cbs;
  int pre = mig__carrier_prefix_len();
  if (pre < 0) {
    free(n);
    return BFTNET_EINVAL;
  }
  n->pre_label = (size_t)pre;
  n->confirm_bytes = BN_MAX(cfg->window_max / 4u, 1u);
  int rc = n->t->ops->timer_new(n->t, tick, n, &n->timer);
  if (rc == 0) rc = n->t->ops->timer_new(n->t, mig__confirm_timer, n, &n->flush_timer);
  if (rc == 0) rc = net_handle(net, MIG_PROTO_ID, on_inbound_mig, n);
  if (rc == 0 && !cfg->plain) rc = net_handle(net, MIG_CONFIRM_PROTO_ID, on_inbound_ctl, n);
  for (unsigned i = 0; rc == 0 && i < n->napps; i++)
    rc = net_handle(net, n->apps[i], on_inbound_plain, n); /* a peer without migration */
  if (rc < 0) {
    if (n->timer) n->t->ops->timer_free(n->timer);
    if (n->flush_timer) n->t->ops->timer_free(n->flush_timer);
    free(n);
    return rc;
  }
  n->t->ops->timer_start(n->timer, MIG_TICK_MS, MIG_TICK_MS);
  *out = n;
  return 0;
}

uint64_t mig_node_incarnation(const mig_node_t *n) {
  return n->incarnation;
}

void mig_node_stop(mig_node_t *n) {
  if (!n || n->stopping) return;
  mig__defer_enter(n);
  n->stopping = true;
  for (mig_peer_t *p = n->peers; p; p = p->next)
    mig_peer_release(p);
  if (n->timer) {
    n->t->ops->timer_free(n->timer);
    n->timer = NULL;
  }
  if (n->flush_timer) {
    n->t->ops->timer_free(n->flush_timer);
    n->flush_timer = NULL;
  }
  mig__defer_leave(n);
}

void mig_node_free(mig_node_t *n) {
  if (!n) return;
  for (mig_peer_t *p = n->peers, *next; p; p = next) {
    next = p->next;
    while (p->carriers) {
      mig_carrier_t *car = p->carriers;
      p->carriers = car->next;
      free(car->rd);
      free(car);
    }
    while (p->ctls) {
      mig_ctl_t *k = p->ctls;
      p->ctls = k->next;
      mig__defer_free_ctl(k);
    }
    for (mig_stream_t *ls = p->streams, *ln; ls; ls = ln) {
      ln = ls->next;
      mig__defer_free_stream(ls);
    }
    mig_reg_free(&p->mig);
    free(p);
  }
  free(n);
}

void mig_node_conn_up(mig_node_t *n, net_conn_t *c) {
  mig_peer_t *p = mig_peer_find(n, net_conn_peer(c));
  if (!p) return;
  /* An inbound connection authenticates only as it comes up: one begun
   * before the peer went away is one of its old ones. */
  if (net_conn_seq(c) <= p->away_seq) net_conn_mark_going_away(c);
  mig__defer_enter(n);
  mig__policy_run(p, mig__now(n), false);
  mig__defer_leave(n);
}

void mig_node_conn_down(mig_node_t *n, net_conn_t *c) {
  (void)n;
  (void)c; /* its carriers report the loss themselves (net on_error) */
}

mig_peer_t *mig_peer_find(mig_node_t *n, const peerid_t *peer) {
  for (mig_peer_t *p = n->peers; p; p = p->next)
    if (!p->released && peerid_equal(&p->id, peer)) return p;
  return NULL;
}

mig_peer_t *mig_peer_get(mig_node_t *n, const peerid_t *peer) {
  mig_peer_t *p = mig_peer_find(n, peer);
  if (p) return p;
  if (n->stopping) return NULL;
  p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->n = n;
  p->id = *peer;
  peerid_to_string(peer, p->id_str, sizeof p->id_str);
  mig_reg_config_t mc = {.self = *net_local_id(n->net),
                         .peer = *peer,
                         .incarnation = n->incarnation,
                         .detach_timeout = n->cfg.detach_timeout_ns,
                         .window_max = n->cfg.window_max};
  if (mig_reg_init(&p->mig, &mc) != 0) {
    free(p);
    return NULL;
  }
  /* Our stream IDs start at a random point, not at 0: the peer may still
   * know the streams of our last incarnation by their IDs (detached,
   * waiting to resume), and would take a Migrate or AckMigrate naming one
   * of them for one of ours, with its read offset (what it confirmed of
   * the old stream). A collision then takes 2^-40 luck. Each registry
   * draws its own point, but never below an ID this incarnation already
   * used: all registries draw from the node's counter, so our IDs rise
   * across all our streams to a peer, also after it was removed and added
   * back, and it can tell which of two streams we opened later
   * (PROTOCOL.md §11.3). */
  uint64_t k;
  bn_random(n->t->seam, &k, sizeof k);
  k &= (UINT64_C(1) << 40) - 1;
  if (k > n->next_k && !BN_SIM_DEFECT(7)) n->next_k = k;
  p->mig.ids = &n->next_k;
  p->next = n->peers;
  n->peers = p;
  return p;
}

void mig_peer_set_owner(mig_peer_t *p, void *owner) {
  p->owner = owner;
}

void *mig_peer_owner(const mig_peer_t *p) {
  return p->owner;
}

const peerid_t *mig_peer_id(const mig_peer_t *p) {
  return &p->id;
}

bool mig_peer_is_leader(const mig_peer_t *p) {
  return p->mig.leader;
}

uint32_t mig_peer_max_message_size(const mig_peer_t *p) {
  return p->peer_max_msg;
}

const mig_peer_stats_t *mig_peer_stats(const mig_peer_t *p) {
  return &p->st;
}

void mig_peer_set_addrs(mig_peer_t *p, const maddr_t *addrs, size_t n, bool changed) {
  n = BN_MIN(n, (size_t)BFTNET_MAX_ADDRS);
  if (n) memcpy(p->addrs, addrs, n * sizeof *addrs);
  p->naddrs = n;
  if (changed) {
    p->addr_changed = true;
    p->next_probe = 0; /* look for the new preferred path at once */
  }
  mig__defer_enter(p->n);
  mig__policy_run(p, mig__now(p->n), false);
  mig__defer_leave(p->n);
}

void mig_peer_release(mig_peer_t *p) {
  if (!p || p->released) return;
  mig_node_t *n = p->n;
  mig__defer_enter(n);
  for (mig_stream_t *ls = p->streams; ls; ls = ls->next)
    mig_stream_release(ls);
  for (mig_carrier_t *car = p->carriers; car; car = car->next)
    mig__carrier_reset(car);
  mig__confirm_reset_all(p);
  p->released = true;
  p->owner = NULL;
  n->reap_needed = true;
  mig__defer_leave(n);
}
