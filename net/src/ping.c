/*
 * ping.c — /ipfs/ping/1.0.0 (libp2p/specs ping/ping.md): 32 random bytes,
 * echoed back. We serve it, and use it as the keepalive: every
 * ping_interval a connection with no ping in flight sends one; a ping
 * unanswered after ping_timeout marks the connection dead (this catches
 * half-open TCP and blackholed paths, which TCP alone reports very late).
 * Each answered ping is a round-trip sample for the connection's health
 * (net_conn_health: last, smoothed, the window's maximum).
 * A connection's keepalive starts when its upgrade completes and stops at
 * its teardown: conn*.c calls n->hooks.conn_ready / conn_down, which
 * net__ping_register fills.
 */
#include <stdlib.h>

#include "net_internal.h"

#define PING_RESP_MAX (BN_PING_SIZE * 64u) /* unechoed bytes a responder holds */

/* ----------------------------------------------------------- responder */

typedef struct ping_resp {
  bn_buf_t pending; /* received, not yet echoed (and not yet consumed) */
} ping_resp_t;

static void resp_pump(ping_resp_t *r, net_stream_t *s) {
  while (bn_buf_unread(&r->pending) > 0) {
    int n = net_stream_write(s, bn_buf_head(&r->pending), bn_buf_unread(&r->pending));
    if (n <= 0) return; /* on_writable resumes; an error ends the stream */
    bn_buf_consume(&r->pending, (size_t)n);
    net_stream_consume(s, (size_t)n);
  }
}

static void resp_on_data(void *ud, net_stream_t *s, const uint8_t *p, size_t n) {
  ping_resp_t *r = ud;
  if (bn_buf_unread(&r->pending) + n > PING_RESP_MAX || bn_buf_append(&r->pending, p, n) != 0) {
    bn_counter_add(s->conn->net->ctr, BFTNET_COUNTER_BAD_PING, 1);
    net_stream_reset(s);
    return;
  }
  resp_pump(r, s);
}

static void resp_on_writable(void *ud, net_stream_t *s) {
  resp_pump(ud, s);
}
static void resp_on_fin(void *ud, net_stream_t *s) {
  (void)ud;
  net_stream_close(s);
}

static void resp_on_free(void *ud, net_stream_t *s) {
  (void)s;
  ping_resp_t *r = ud;
  bn_buf_free(&r->pending);
  free(r);
}

static const net_stream_cbs_t resp_cbs = {
    .on_data = resp_on_data,
    .on_fin = resp_on_fin,
    .on_writable = resp_on_writable,
    .on_free = resp_on_free,
};

static int ping_on_open(void *ud, net_conn_t *c, net_stream_t *s) {
  (void)ud;
  (void)c;
  ping_resp_t *r = calloc(1, sizeof *r);
  if (!r) return BFTNET_ENOMEM;
  bn_buf_init(&r->pending);
  net_stream_set_cbs(s, &resp_cbs, r);
  return 0;
}

/* ----------------------------------------------------------- initiator */

static void ping_pop(net_conn_t *c, uint64_t rtt, int err) {
  ping_slot_t slot = c->pings[c->ping_head];
  c->ping_head = (c->ping_head + 1) % NET_MAX_PINGS;
  c->ping_count--;
  if (slot.cb) slot.cb(slot.ud, rtt, err);
}

static void fail_all(net_conn_t *c, int err) {
  while (c->ping_count > 0)
    ping_pop(c, 0, err);
  c->pong_len = 0;
}

/* One round trip: the last, the smoothed (RFC 6298's SRTT, gain 1/8) and
 * the window of the last NET_RTT_WINDOW for their maximum. */
static void rtt_sample(net_conn_t *c, uint64_t rtt) {
  if (rtt == 0) rtt = 1; /* 0 means "none yet" */
  c->rtt_last_ns = rtt;
  if (c->rtt_n == 0)
    c->rtt_srtt_ns = rtt;
  else if (rtt >= c->rtt_srtt_ns)
    c->rtt_srtt_ns += (rtt - c->rtt_srtt_ns) / 8;
  else
    c->rtt_srtt_ns -= (c->rtt_srtt_ns - rtt) / 8;
  c->rtt_win[c->rtt_n % NET_RTT_WINDOW] = rtt;
  c->rtt_n++;
}

void net_conn_health(const net_conn_t *c, net_conn_health_t *out) {
  uint64_t max = 0;
  for (uint32_t i = 0; i < NET_RTT_WINDOW && i < c->rtt_n; i++)
    max = BN_MAX(max, c->rtt_win[i]);
  *out = (net_conn_health_t){.up_ns = c->up_ns,
                             .last_rx_ns = c->last_rx_ns,
                             .rtt_last_ns = c->rtt_last_ns,
                             .rtt_srtt_ns = c->rtt_srtt_ns,
                             .rtt_max_ns = max,
                             .rtt_samples = c->rtt_n,
                             .inflight = c->inflight,
                             .inflight_max = c->inflight_max,
                             .inflight_cap = c->inflight_cap};
}

static void pinger_on_data(void *ud, net_stream_t *s, const uint8_t *p, size_t n) {
  net_conn_t *c = ud;
  net_t *net = c->net;
  net_stream_consume(s, n);
  while (n > 0) {
    size_t take = BN_MIN(BN_PING_SIZE - c->pong_len, n);
    memcpy(c->pong_buf + c->pong_len, p, take);
    c->pong_len += take;
    p += take;
    n -= take;
    if (c->pong_len < BN_PING_SIZE) break;
    c->pong_len = 0;
    if (c->ping_count == 0 || memcmp(c->pong_buf, c->pings[c->ping_head].payload, BN_PING_SIZE)) {
      net__conn_fail(c, BFTNET_REASON_PROTOCOL_ERROR, BFTNET_EPROTO, BFTNET_COUNTER_BAD_PING);
      return;
    }
    bn_counter_add(net->ctr, BFTNET_COUNTER_PINGS_ANSWERED, 1);
    uint64_t rtt = bn_now_ns(net->t->seam) - c->pings[c->ping_head].sent_ns;
    rtt_sample(c, rtt);
    ping_pop(c, rtt, 0);
    if (c->state != CONN_READY) return;
  }
}

static void pinger_on_error(void *ud, net_stream_t *s, int err) {
  net_conn_t *c = ud;
  (void)s;
  /* The peer may reset an idle ping stream (js-libp2p does): that is not a
   * dead connection. Pings in flight fail; the next one opens a new stream. */
  if (c->ping_stream == s) c->ping_stream = NULL;
  fail_all(c, err);
}

static void pinger_on_free(void *ud, net_stream_t *s) {
  net_conn_t *c = ud;
  if (c->ping_stream == s) c->ping_stream = NULL;
}

static void pinger_on_fin(void *ud, net_stream_t *s) {
  net_conn_t *c = ud;
  if (c->ping_stream == s) c->ping_stream = NULL;
  fail_all(c, BFTNET_EEOF);
  net_stream_close(s);
}

static const net_stream_cbs_t pinger_cbs = {
    .on_data = pinger_on_data,
    .on_fin = pinger_on_fin,
    .on_error = pinger_on_error,
    .on_free = pinger_on_free,
};

static int ping_send(net_conn_t *c, net_ping_cb cb, void *ud) {
  net_t *n = c->net;
  if (c->state != CONN_READY) return BFTNET_ECLOSED;
  if (c->ping_count == NET_MAX_PINGS) return BFTNET_EAGAIN;
  if (!c->ping_stream) {
    int rc = net_stream_open(c, NET_PROTO_PING, &pinger_cbs, c, &c->ping_stream);
    if (rc < 0) return rc;
  }
  ping_slot_t *slot = &c->pings[(c->ping_head + c->ping_count) % NET_MAX_PINGS];
  bn_random(n->t->seam, slot->payload, BN_PING_SIZE);
  /* Pings skip the connection's congestion check (32 bytes, at most
   * NET_MAX_PINGS in flight): a busy path that goes dark must still time
   * out, and a queue that never drains is exactly what a ping detects. */
  int w = net__stream_write_uncongested(c->ping_stream, slot->payload, BN_PING_SIZE);
  if (w < 0) return w;
  if (w != (int)BN_PING_SIZE) {
    /* Partial write on a congested connection: the stream is now out of
     * step, so start over on a fresh one. */
    net_stream_reset(c->ping_stream);
    c->ping_stream = NULL;
    return BFTNET_EAGAIN;
  }
  slot->sent_ns = bn_now_ns(n->t->seam);
  slot->cb = cb;
  slot->ud = ud;
  c->ping_count++;
  bn_counter_add(n->ctr, BFTNET_COUNTER_PINGS_SENT, 1);
  return 0;
}

int net_conn_ping(net_conn_t *c, net_ping_cb cb, void *ud) {
  if (!c || !cb) return BFTNET_EINVAL;
  return ping_send(c, cb, ud);
}

static void ping_tick(void *ud) {
  net_conn_t *c = ud;
  net_t *n = c->net;
  if (c->state != CONN_READY) return;
  uint64_t now = bn_now_ns(n->t->seam);
  if (c->ping_count > 0) {
    uint64_t age = now - c->pings[c->ping_head].sent_ns;
    if (age >= (uint64_t)n->cfg.ping_timeout_ms * 1000000ull)
      net__conn_fail(c, BFTNET_REASON_PING_TIMEOUT, BFTNET_ETIMEDOUT, BFTNET_COUNTER_PING_TIMEOUT);
    return;
  }
  if (now - c->last_ping_ns < (uint64_t)n->cfg.ping_interval_ms * 1000000ull) return;
  c->last_ping_ns = now;
  (void)ping_send(c, NULL, NULL); /* a failure here shows up as a timeout later */
}

static void ping_conn_ready(net_conn_t *c) {
  net_t *n = c->net;
  if (n->t->ops->timer_new(n->t, ping_tick, c, &c->ping_timer) != 0) return;
  /* Tick at half the smaller period so a timeout is seen within 1.5x. */
  uint64_t tick = BN_MIN(n->cfg.ping_interval_ms, n->cfg.ping_timeout_ms) / 2;
  if (tick == 0) tick = 1;
  c->last_ping_ns = bn_now_ns(n->t->seam);
  n->t->ops->timer_start(c->ping_timer, tick, tick);
}

static void ping_conn_down(net_conn_t *c, int err) {
  net_t *n = c->net;
  if (c->ping_timer) {
    n->t->ops->timer_free(c->ping_timer);
    c->ping_timer = NULL;
  }
  c->ping_stream = NULL;
  fail_all(c, err);
}

int net__ping_register(net_t *n) {
  n->hooks.conn_ready = ping_conn_ready;
  n->hooks.conn_down = ping_conn_down;
  return net_handle(n, NET_PROTO_PING, ping_on_open, NULL);
}
