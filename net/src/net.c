/*
 * net.c — the net_t object: listeners, accepting under limits, dialing,
 * finding connections, and closing everything. net_new wires the files
 * below together: each fills its part of n->hooks (net_internal.h).
 */
#include <stdio.h>
#include <stdlib.h>

#include "net_internal.h"

int net_new(net_t **out, bn_transport_t *t, const struct bftnet_key *key, const net_config_t *cfg,
            const net_cbs_t *cbs, void *ud, bn_counters_t *counters) {
  if (!out || !t || !key || !cfg || !counters) return BFTNET_EINVAL;
  if (cfg->yamux_window < BN_YAMUX_INITIAL_WINDOW || cfg->yamux_window > BN_YAMUX_MAX_WINDOW ||
      cfg->yamux_max_streams == 0 || cfg->yamux_max_streams > BN_YAMUX_MAX_STREAMS_CAP ||
      cfg->ping_interval_ms == 0 || cfg->ping_timeout_ms == 0 || cfg->handshake_timeout_ms == 0 ||
      cfg->max_connections == 0 || cfg->max_pending_handshakes == 0)
    return BFTNET_EINVAL;
  net_t *n = calloc(1, sizeof *n);
  if (!n) return BFTNET_ENOMEM;
  n->t = t;
  n->key = key;
  n->cfg = *cfg;
  if (cbs) n->cbs = *cbs;
  n->ud = ud;
  n->ctr = counters;
  /* One static Noise key per node: the signature over it is made once. */
  bn_random(t->seam, n->static_priv, sizeof n->static_priv);
  noise_dh_pub(n->static_priv, n->static_pub);
  int rc =
      noise_libp2p_payload_build(key->sk, key->pk, n->static_pub, n->payload, sizeof n->payload);
  if (rc >= 0) {
    n->payload_len = (size_t)rc;
    net__conn_register(n);
    net__stream_register(n);
    rc = net__ping_register(n);
  }
  if (rc < 0) {
    net_free(n);
    return rc;
  }
  *out = n;
  return 0;
}

void net_free(net_t *n) {
  if (!n) return;
  bn_wipe(n->static_priv, sizeof n->static_priv);
  free(n);
}

const peerid_t *net_local_id(const net_t *n) {
  return &n->key->id;
}
bn_transport_t *net_transport(net_t *n) {
  return n->t;
}

/* ----------------------------------------------------------- listening */

static void on_accept(void *ud, bn_tsock_t *sock) {
  net_t *n = ud;
  if (n->closing || n->nconns >= n->cfg.max_connections ||
      n->npending >= n->cfg.max_pending_handshakes) {
    bn_counter_add(n->ctr, BFTNET_COUNTER_CONN_LIMIT, 1);
    n->t->ops->close(sock, false);
    return;
  }
  net_conn_t *c = net__conn_new(n, sock, false);
  if (!c) {
    n->t->ops->close(sock, false);
    return;
  }
  c->counted_pending = true;
  n->npending++;
  bn_counter_add(n->ctr, BFTNET_COUNTER_CONN_INBOUND, 1);
  net__conn_in_start(c);
}

int net_listen(net_t *n, const maddr_t *addr, char *bound, size_t cap) {
  if (!n || !addr) return BFTNET_EINVAL;
  if (n->closing) return BFTNET_ECLOSED;
  if (n->nlisteners == NET_MAX_LISTENERS) return BFTNET_ELIMIT;
  bn_tlistener_t *l;
  int rc = n->t->ops->listen(n->t, (const struct sockaddr *)&addr->sa, on_accept, n, &l);
  if (rc < 0) return rc;
  if (bound) {
    /* Formatted aside first: a bound too small fails the call, and then
     * nothing stays bound (the socket closes at once; a retry can bind). */
    char text[BFTNET_ADDR_MAX];
    struct sockaddr_storage ss;
    rc = n->t->ops->listener_addr(l, &ss);
    if (rc == 0) rc = maddr_format_sa((struct sockaddr *)&ss, &n->key->id, text, sizeof text);
    if (rc == 0 && strlen(text) >= cap) rc = BFTNET_EBUFSIZE;
    if (rc < 0) {
      n->t->ops->listener_close(l);
      return rc;
    }
    memcpy(bound, text, strlen(text) + 1);
  }
  n->listeners[n->nlisteners++] = l;
  return 0;
}

/* ------------------------------------------------------------- dialing */

static bool conn_is_live(const net_t *n, const net_conn_t *c) {
  for (const net_conn_t *x = n->conns; x; x = x->next)
    if (x == c) return x->state == CONN_READY;
  return false;
}

static void net_run_done(void *ud) {
  net_t *n = ud;
  while (n->ndone > 0) {
    pending_done_t d = n->done[0];
    memmove(&n->done[0], &n->done[1], (n->ndone - 1) * sizeof d);
    n->ndone--;
    if (d.conn && !conn_is_live(n, d.conn)) {
      d.conn = NULL;
      d.err = BFTNET_ECLOSED;
    }
    d.cb(d.ud, d.conn, d.err);
  }
}

static void complete_later(net_t *n, net_dial_cb cb, void *ud, net_conn_t *c, int err) {
  BN_ASSERT(n->ndone < NET_MAX_PENDING_DIALS);
  n->done[n->ndone++] = (pending_done_t){cb, ud, c, err};
  n->t->ops->defer(n->t, net_run_done, n);
}

/* Up, and not told by its peer that it is going away. */
static bool conn_usable(const net_conn_t *c, const peerid_t *peer) {
  return c->state == CONN_READY && !c->goaway_rcvd && !yamux_session_remote_goaway(c->ymx) &&
         peerid_equal(&c->peer, peer);
}

static bool conn_of(const net_conn_t *c, const peerid_t *peer) {
  return (c->peer.len && peerid_equal(&c->peer, peer)) ||
         (c->expect_peer && peerid_equal(&c->expected, peer));
}

net_conn_t *net_find_conn(net_t *n, const peerid_t *peer) {
  for (net_conn_t *c = n->conns; c; c = c->next)
    if (conn_usable(c, peer)) return c;
  return NULL;
}

const peerid_t *net_dial_actual_peer(const net_t *n) {
  return n->dial_actual;
}

void net_goaway(net_t *n) {
  for (net_conn_t *c = n->conns; c; c = c->next) {
    if (c->state != CONN_READY || !c->ymx) continue;
    yamux_session_goaway(c->ymx, YAMUX_GOAWAY_NORMAL);
    net__conn_flush(c, true);
  }
}

void net_close_peer(net_t *n, const peerid_t *peer, bftnet_reason_t reason) {
  for (net_conn_t *c = n->conns, *next; c; c = next) {
    next = c->next;
    if (conn_of(c, peer)) net__conn_fail(c, reason, BFTNET_ECLOSED, BFTNET_COUNTER_COUNT);
  }
}

void net_conn_mark_going_away(net_conn_t *c) {
  if (c->state != CONN_CLOSING) c->goaway_rcvd = true;
}

void net_peer_going_away(net_t *n, const peerid_t *peer) {
  for (net_conn_t *c = n->conns; c; c = c->next)
    if (conn_of(c, peer)) net_conn_mark_going_away(c);
}

uint64_t net_last_conn_seq(const net_t *n) {
  return n->conn_seq;
}

net_conn_t *net_conn_iter(net_t *n, const peerid_t *peer, net_conn_t *prev) {
  for (net_conn_t *c = prev ? prev->next : n->conns; c; c = c->next)
    if (conn_usable(c, peer)) return c;
  return NULL;
}

unsigned net_count_conns(net_t *n, const peerid_t *peer) {
  unsigned k = 0;
  for (net_conn_t *c = n->conns; c; c = c->next)
    if (conn_usable(c, peer)) k++;
  return k;
}

static int net_dial_ex(net_t *n, const maddr_t *addr, bool fresh, net_dial_cb cb, void *ud) {
  if (!n || !addr || !cb) return BFTNET_EINVAL;
  if (n->closing) return BFTNET_ECLOSED;
  if (addr->has_peer && peerid_equal(&addr->peer, &n->key->id)) return BFTNET_EINVAL;
  if (addr->has_peer && !fresh) {
    net_conn_t *c = net_find_conn(n, &addr->peer);
    if (c) {
      if (n->ndone == NET_MAX_PENDING_DIALS) return BFTNET_EAGAIN;
      complete_later(n, cb, ud, c, 0);
      return 0;
    }
  }
  if (n->nconns >= n->cfg.max_connections) {
    bn_counter_add(n->ctr, BFTNET_COUNTER_CONN_LIMIT, 1);
    return BFTNET_ELIMIT;
  }
  bn_tsock_t *sock;
  int rc = n->t->ops->dial(n->t, (const struct sockaddr *)&addr->sa, &sock);
  if (rc < 0) return rc;
  net_conn_t *c = net__conn_new(n, sock, true);
  if (!c) {
    n->t->ops->close(sock, false);
    return BFTNET_ENOMEM;
  }
  c->remote_sa = addr->sa;
  c->expect_peer = addr->has_peer;
  if (addr->has_peer) c->expected = addr->peer;
  c->dial_cb = cb;
  c->dial_ud = ud;
  bn_counter_add(n->ctr, BFTNET_COUNTER_CONN_OUTBOUND, 1);
  net__conn_in_start(c);
  return 0;
}

int net_dial(net_t *n, const maddr_t *addr, net_dial_cb cb, void *ud) {
  return net_dial_ex(n, addr, false, cb, ud);
}

int net_dial_fresh(net_t *n, const maddr_t *addr, net_dial_cb cb, void *ud) {
  return net_dial_ex(n, addr, true, cb, ud);
}

/* --------------------------------------------------------- connections */

void net_close(net_t *n, void (*done)(void *ud), void *ud) {
  n->closing = true;
  n->close_done = done;
  n->close_ud = ud;
  for (unsigned i = 0; i < n->nlisteners; i++)
    n->t->ops->listener_close(n->listeners[i]);
  n->nlisteners = 0;
  for (net_conn_t *c = n->conns, *next; c; c = next) {
    next = c->next;
    BN_ASSERT(c->in_feed == 0); /* net_close is never called from a net callback */
    net__conn_fail(c, BFTNET_REASON_LOCAL_CLOSE, 0, BFTNET_COUNTER_COUNT);
  }
  net_run_done(n);
  if (n->live_socks == 0 && n->close_done) {
    n->close_done = NULL;
    done(ud);
  }
}

const peerid_t *net_conn_peer(const net_conn_t *c) {
  return &c->peer;
}
bool net_conn_outbound(const net_conn_t *c) {
  return c->outbound;
}
const struct sockaddr_storage *net_conn_sa(const net_conn_t *c) {
  return &c->remote_sa;
}
uint64_t net_conn_seq(const net_conn_t *c) {
  return c->seq;
}
bool net_conn_ready(const net_conn_t *c) {
  return c->state == CONN_READY;
}
bool net_conn_going_away(const net_conn_t *c) {
  return c->goaway_rcvd;
}
bool net_conn_said_goaway(const net_conn_t *c) {
  return c->goaway_frame;
}
bftnet_reason_t net_conn_end_reason(const net_conn_t *c) {
  return c->state == CONN_CLOSING ? c->down_reason : BFTNET_REASON_NONE;
}
void net_conn_set_user(net_conn_t *c, void *user) {
  c->user = user;
}
void *net_conn_get_user(const net_conn_t *c) {
  return c->user;
}

void net_conn_remote_addr(const net_conn_t *c, char *out, size_t cap) {
  if (maddr_format_sa((const struct sockaddr *)&c->remote_sa, c->peer.len ? &c->peer : NULL, out,
                      cap) < 0 &&
      cap)
    out[0] = '\0';
}
