/*
 * stream.c — yamux streams with multistream-select on top.
 *
 * Outbound: header + proposal go out at once and the opener may write data
 * right behind them (pipelined); the peer's echo makes the stream READY, its
 * `na` fails it with BFTNET_ENA (and resets it).
 * Inbound: we answer the header with ours, `na` to every proposal we have no
 * handler for (at most BN_MS_MAX_PROPOSALS, then reset), and the echo to the
 * first we have; the handler then takes over, starting with any bytes that
 * were pipelined behind the proposal.
 *
 * The yamux session's stream events arrive here through n->hooks.ymx
 * (net__stream_register). A stream that finds the connection congested
 * parks on it (conn.c) and is woken when it drains.
 */
#include <stdio.h>
#include <stdlib.h>

#include "net_internal.h"

static net_stream_t *stream_alloc(net_conn_t *c, yamux_stream_t *ys, ns_state_t st) {
  net_stream_t *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->conn = c;
  s->ys = ys;
  s->state = st;
  s->prio = 128;
  bn_buf_init(&s->pre);
  yamux_stream_set_user(ys, s);
  return s;
}

static int stream_send_ms(net_stream_t *s, const char *text) {
  bn_buf_t b;
  bn_buf_init(&b);
  int rc = ms_append(&b, text);
  if (rc == 0) {
    s->pre_out += b.len;
    rc = yamux_stream_write(s->ys, b.data, b.len);
    /* A fresh stream has at least 256 KiB of credit; multistream messages
     * are tiny, so a short write here means the peer is misbehaving. */
    rc = rc == (int)b.len ? 0 : (rc < 0 ? rc : BFTNET_EPROTO);
  }
  bn_buf_free(&b);
  return rc;
}

static void stream_die(net_stream_t *s, int err) {
  if (s->state == NS_DEAD) return;
  s->state = NS_DEAD;
  if (s->cbs.on_error) s->cbs.on_error(s->ud, s, err);
}

int net_stream_open(net_conn_t *c, const char *proto, const net_stream_cbs_t *cbs, void *ud,
                    net_stream_t **out) {
  if (!c || !proto || !cbs || !out) return BFTNET_EINVAL;
  if (strlen(proto) == 0 || strlen(proto) >= BN_MS_MAX_MSG) return BFTNET_EINVAL;
  if (c->state != CONN_READY) return BFTNET_ECLOSED;
  yamux_stream_t *ys;
  int rc = yamux_stream_open(c->ymx, &ys);
  if (rc < 0) return rc;
  net_stream_t *s = stream_alloc(c, ys, NS_PROPOSING);
  if (!s) {
    yamux_stream_reset(ys);
    return BFTNET_ENOMEM;
  }
  snprintf(s->proto, sizeof s->proto, "%s", proto);
  s->cbs = *cbs;
  s->ud = ud;
  s->header_sent = true;
  if ((rc = stream_send_ms(s, MS_PROTO_ID)) < 0 || (rc = stream_send_ms(s, proto)) < 0) {
    s->cbs = (net_stream_cbs_t){0};
    yamux_stream_reset(ys); /* on_free releases s */
    return rc;
  }
  bn_counter_add(c->net->ctr, BFTNET_COUNTER_STREAMS_OPENED, 1);
  *out = s;
  return 0;
}

void net_stream_set_cbs(net_stream_t *s, const net_stream_cbs_t *cbs, void *ud) {
  s->cbs = *cbs;
  s->ud = ud;
}

int net_handle(net_t *n, const char *proto, net_proto_open_cb cb, void *ud) {
  if (!n || !proto || !cb) return BFTNET_EINVAL;
  size_t len = strlen(proto);
  if (len == 0 || len >= BN_MS_MAX_MSG) return BFTNET_EINVAL;
  for (unsigned i = 0; i < n->nhandlers; i++)
    if (strcmp(n->handlers[i].proto, proto) == 0) return BFTNET_EEXIST;
  if (n->nhandlers == NET_MAX_HANDLERS) return BFTNET_ELIMIT;
  net_handler_t *h = &n->handlers[n->nhandlers++];
  memcpy(h->proto, proto, len + 1);
  h->cb = cb;
  h->ud = ud;
  return 0;
}

/* ------------------------------------------------ yamux stream events */

static int stream_on_accept(void *ud, yamux_stream_t *ys) {
  net_conn_t *c = ud;
  if (c->state != CONN_READY) return BFTNET_ECLOSED;
  net_stream_t *s = stream_alloc(c, ys, NS_LISTENING);
  if (!s) return BFTNET_ENOMEM;
  bn_counter_add(c->net->ctr, BFTNET_COUNTER_STREAMS_ACCEPTED, 1);
  return 0;
}

static const net_handler_t *find_handler(const net_t *n, const char *text, size_t len) {
  for (unsigned i = 0; i < n->nhandlers; i++)
    if (ms_eq(text, len, n->handlers[i].proto)) return &n->handlers[i];
  return NULL;
}

/* Hands bytes received during negotiation to the handler, once. */
static void stream_deliver_pre(net_stream_t *s) {
  size_t n = bn_buf_unread(&s->pre);
  if (n == 0) return;
  bn_buf_t tmp = s->pre;
  bn_buf_init(&s->pre);
  if (s->state == NS_READY && s->cbs.on_data) s->cbs.on_data(s->ud, s, bn_buf_head(&tmp), n);
  bn_buf_free(&tmp);
}

/* One multistream message on a stream. Returns < 0 on a violation. */
static int stream_ms_msg(net_stream_t *s, const char *text, size_t len) {
  net_t *n = s->conn->net;
  if (!s->header_seen) {
    if (!ms_eq(text, len, MS_PROTO_ID)) return BFTNET_EPROTO;
    s->header_seen = true;
    if (!s->header_sent) {
      s->header_sent = true;
      return stream_send_ms(s, MS_PROTO_ID);
    }
    return 0;
  }
  if (s->state == NS_PROPOSING) {
    if (ms_eq(text, len, s->proto)) {
      s->state = NS_READY;
      if (s->cbs.on_ready) s->cbs.on_ready(s->ud, s);
      return 0;
    }
    if (ms_eq(text, len, MS_NA)) return BFTNET_ENA;
    return BFTNET_EPROTO;
  }
  const net_handler_t *h = find_handler(n, text, len);
  if (!h) {
    if (++s->proposals > BN_MS_MAX_PROPOSALS) return BFTNET_EPROTO;
    bn_counter_add(n->ctr, BFTNET_COUNTER_PROTO_NA, 1);
    return stream_send_ms(s, MS_NA);
  }
  int rc = stream_send_ms(s, h->proto);
  if (rc < 0) return rc;
  snprintf(s->proto, sizeof s->proto, "%s", h->proto);
  s->state = NS_READY;
  rc = h->cb(h->ud, s->conn, s);
  return rc < 0 ? BFTNET_ECANCELED : 0;
}

static void stream_on_data(void *ud, yamux_stream_t *ys, const uint8_t *p, size_t n) {
  (void)ud;
  net_stream_t *s = yamux_stream_get_user(ys);
  if (!s || s->state == NS_DEAD) {
    yamux_stream_consume(ys, n, false);
    return;
  }
  if (s->state == NS_READY && bn_buf_unread(&s->pre) == 0) {
    if (s->cbs.on_data)
      s->cbs.on_data(s->ud, s, p, n);
    else
      yamux_stream_consume(ys, n, false);
    return;
  }
  /* Negotiating: bounded by the yamux window we granted (nothing is consumed
   * until parsed), so this buffer cannot outgrow it. */
  if (bn_buf_append(&s->pre, p, n) != 0) {
    stream_die(s, BFTNET_ENOMEM);
    yamux_stream_reset(ys);
    return;
  }
  while (s->state == NS_PROPOSING || s->state == NS_LISTENING) {
    const char *text;
    size_t tlen;
    int rc = ms_next(bn_buf_head(&s->pre), bn_buf_unread(&s->pre), &text, &tlen);
    if (rc == 0) return;
    if (rc > 0) {
      /* The text points into s->pre: handle it before consuming. */
      int r2 = stream_ms_msg(s, text, tlen);
      if (s->state == NS_DEAD) return;
      bn_buf_consume(&s->pre, (size_t)rc);
      yamux_stream_consume(ys, (size_t)rc, false);
      rc = r2;
    }
    if (rc < 0) {
      if (rc != BFTNET_ENA && rc != BFTNET_ECANCELED)
        bn_counter_add(s->conn->net->ctr, BFTNET_COUNTER_BAD_MULTISTREAM, 1);
      if (rc == BFTNET_ECANCELED)
        bn_counter_add(s->conn->net->ctr, BFTNET_COUNTER_STREAMS_REFUSED, 1);
      stream_die(s, rc == BFTNET_ECANCELED ? BFTNET_ERESET : rc);
      yamux_stream_reset(ys);
      return;
    }
  }
  if (s->state == NS_READY) stream_deliver_pre(s);
}

static void stream_on_fin(void *ud, yamux_stream_t *ys) {
  (void)ud;
  net_stream_t *s = yamux_stream_get_user(ys);
  if (!s || s->state == NS_DEAD) return;
  if (s->state != NS_READY) {
    /* Closed before agreeing on a protocol. */
    bn_counter_add(s->conn->net->ctr, BFTNET_COUNTER_STREAMS_REFUSED, 1);
    stream_die(s, s->state == NS_PROPOSING ? BFTNET_ENA : BFTNET_EEOF);
    yamux_stream_reset(ys);
    return;
  }
  if (s->cbs.on_fin) s->cbs.on_fin(s->ud, s);
}

static void stream_on_reset(void *ud, yamux_stream_t *ys) {
  (void)ud;
  net_stream_t *s = yamux_stream_get_user(ys);
  if (s) stream_die(s, BFTNET_ERESET);
}

static void stream_on_credit(void *ud, yamux_stream_t *ys, uint32_t delta) {
  (void)ud;
  net_stream_t *s = yamux_stream_get_user(ys);
  if (s && s->state != NS_DEAD && s->cbs.on_credit) s->cbs.on_credit(s->ud, s, delta);
}

static void stream_on_writable(void *ud, yamux_stream_t *ys) {
  (void)ud;
  net_stream_t *s = yamux_stream_get_user(ys);
  if (s && s->state != NS_DEAD && s->cbs.on_writable) s->cbs.on_writable(s->ud, s);
}

static void stream_on_free(void *ud, yamux_stream_t *ys) {
  net_conn_t *c = ud;
  net_stream_t *s = yamux_stream_get_user(ys);
  if (!s) return;
  yamux_stream_set_user(ys, NULL);
  if (s->congested) net__conn_unpark(c, s);
  if (s->state != NS_DEAD) {
    /* Closed cleanly both ways, or the session is going away. */
    bool clean =
        yamux_stream_local_closed(ys) && yamux_stream_remote_closed(ys) && c->state == CONN_READY;
    if (!clean) stream_die(s, BFTNET_ECLOSED);
  }
  if (s->cbs.on_free) s->cbs.on_free(s->ud, s);
  bn_buf_free(&s->pre);
  free(s);
}

void net__stream_register(net_t *n) {
  n->hooks.ymx.on_accept = stream_on_accept;
  n->hooks.ymx.on_data = stream_on_data;
  n->hooks.ymx.on_fin = stream_on_fin;
  n->hooks.ymx.on_reset = stream_on_reset;
  n->hooks.ymx.on_writable = stream_on_writable;
  n->hooks.ymx.on_free = stream_on_free;
  n->hooks.ymx.on_credit = stream_on_credit;
}

/* ------------------------------------------------------------- writing */

/* What s may write now: 0 if the connection's output is backed up, or if s
 * is less urgent (priority > 0) and the kernel holds the in-flight cap (or
 * all but a sliver of it); at most one piece on a paced connection, and for
 * a less urgent stream at most the room left under the cap. */
static size_t stream_may_write(const net_stream_t *s) {
  if (net__conn_congested(s->conn)) return 0;
  size_t n = s->conn->net->cfg.paced ? NET_PACE_PIECE : SIZE_MAX;
  return s->prio > 0 ? BN_MIN(n, net__conn_cap_room(s->conn)) : n;
}

int net_stream_write(net_stream_t *s, const uint8_t *p, size_t n) {
  if (!s || (!p && n)) return BFTNET_EINVAL;
  if (s->state == NS_DEAD) return BFTNET_ECLOSED;
  if (s->conn->state != CONN_READY) return BFTNET_ECLOSED;
  size_t may = stream_may_write(s);
  if (may == 0) {
    net__conn_park(s->conn, s);
    return 0;
  }
  return yamux_stream_write(s->ys, p, BN_MIN(n, may));
}

int net__stream_write_uncongested(net_stream_t *s, const uint8_t *p, size_t n) {
  if (s->state == NS_DEAD || s->conn->state != CONN_READY) return BFTNET_ECLOSED;
  return yamux_stream_write(s->ys, p, n);
}

int net_stream_close(net_stream_t *s) {
  if (!s) return BFTNET_EINVAL;
  if (s->state == NS_DEAD) return BFTNET_ECLOSED;
  return yamux_stream_close(s->ys);
}

void net_stream_reset(net_stream_t *s) {
  if (!s || s->state == NS_DEAD) return;
  s->state = NS_DEAD; /* a local reset reports nothing back */
  yamux_stream_reset(s->ys);
}

void net_stream_consume(net_stream_t *s, size_t n) {
  if (s && s->ys && n) yamux_stream_consume(s->ys, n, false);
}

void net_stream_credit(net_stream_t *s, size_t n, bool flush) {
  if (s && s->ys && (n || flush)) yamux_stream_consume(s->ys, n, flush);
}

int net_stream_write_ctl(net_stream_t *s, const uint8_t *p, size_t n) {
  if (!s || (!p && n)) return BFTNET_EINVAL;
  return net__stream_write_uncongested(s, p, n);
}

size_t net_stream_send_room(const net_stream_t *s) {
  if (!s || s->state == NS_DEAD || s->conn->state != CONN_READY) return 0;
  return BN_MIN(yamux_stream_send_window(s->ys), stream_may_write(s));
}

void net_stream_want_writable(net_stream_t *s) {
  if (!s || s->state == NS_DEAD || s->congested) return;
  if (stream_may_write(s) == 0) {
    net__conn_park(s->conn, s);
    return;
  }
  /* No yamux credit: a window update must wake us. A write that took the
   * window exactly was not short, so yamux would not know to. */
  if (s->ys) yamux_stream_want_writable(s->ys);
}

void net_stream_set_prio(net_stream_t *s, uint8_t prio) {
  if (s) s->prio = prio;
}

net_conn_t *net_stream_conn(const net_stream_t *s) {
  return s->conn;
}
size_t net_stream_pre_bytes(const net_stream_t *s) {
  return s->pre_out;
}
const char *net_stream_protocol(const net_stream_t *s) {
  return s->proto;
}
