/*
 * conn_upgrade.c — a connection's upgrade, one event per function:
 *
 *   DIALING -> MS_SEC (/noise) -> NOISE (XX) -> MS_MUX (/yamux/1.0.0) -> READY
 *
 * MS_SEC: multistream-select of the security protocol, in the clear; the
 * dialer pipelines the header and its proposal. NOISE: the XX handshake,
 * each message a length-prefixed frame; the libp2p payload proves the
 * peer's identity key and the initiator checks the ID it dialed. MS_MUX:
 * multistream-select of the muxer inside Noise frames. READY: a yamux
 * session runs on the connection and ping.c's keepalive starts. conn_in.c
 * frames the bytes and calls the step for the current state; a violation
 * fails the connection (conn.c).
 */
#include <stdlib.h>

#include "net_internal.h"

/* One multistream message, in the clear or encrypted per the state. */
static void conn_send_ms(net_conn_t *c, const char *text) {
  bn_buf_t b;
  bn_buf_init(&b);
  if (ms_append(&b, text) != 0) {
    bn_buf_free(&b);
    return net__conn_oom(c);
  }
  if (c->tx.has_k)
    net__conn_out_secure(c, b.data, b.len, NULL, 0);
  else
    net__conn_out_raw(c, b.data, b.len);
  bn_buf_free(&b);
}

void net__conn_upgrade_begin(net_conn_t *c) {
  c->state = CONN_MS_SEC;
  conn_send_ms(c, MS_PROTO_ID); /* pipelined: header and proposal together */
  conn_send_ms(c, NET_PROTO_NOISE);
  c->ms_header_sent = true;
}

/* A connection-level multistream message (security or muxer selection).
 * Returns 1 when `want` is agreed, 0 to go on, < 0 on a violation. */
static int conn_ms_msg(net_conn_t *c, const char *text, size_t len, const char *want) {
  if (!c->ms_header_seen) {
    if (!ms_eq(text, len, MS_PROTO_ID)) return BFTNET_EPROTO;
    c->ms_header_seen = true;
    if (!c->outbound && !c->ms_header_sent) {
      conn_send_ms(c, MS_PROTO_ID);
      c->ms_header_sent = true;
    }
    return 0;
  }
  if (c->outbound) {
    if (ms_eq(text, len, want)) return 1;
    if (ms_eq(text, len, MS_NA)) return BFTNET_ENA;
    return BFTNET_EPROTO;
  }
  if (ms_eq(text, len, want)) {
    conn_send_ms(c, want);
    return 1;
  }
  if (++c->ms_proposals > BN_MS_MAX_PROPOSALS) return BFTNET_EPROTO;
  bn_counter_add(c->net->ctr, BFTNET_COUNTER_PROTO_NA, 1);
  conn_send_ms(c, MS_NA);
  return 0;
}

static void conn_ms_reset(net_conn_t *c) {
  c->ms_header_seen = false;
  c->ms_header_sent = false;
  c->ms_proposals = 0;
}

/* ---------------------------------------------------------------- Noise */

static int conn_noise_begin(net_conn_t *c) {
  net_t *n = c->net;
  uint8_t e[NOISE_DHLEN];
  c->hs = malloc(sizeof *c->hs);
  if (!c->hs) return BFTNET_ENOMEM;
  bn_random(n->t->seam, e, sizeof e);
  noise_hs_init(c->hs, c->outbound, NULL, 0, n->static_priv, e);
  bn_wipe(e, sizeof e);
  c->state = CONN_NOISE;
  if (!c->outbound) return 0;
  uint8_t msg[NET_NOISE_FRAME_HDR + 64];
  int len =
      noise_hs_write(c->hs, NULL, 0, msg + NET_NOISE_FRAME_HDR, sizeof msg - NET_NOISE_FRAME_HDR);
  if (len < 0) return len;
  bn_store_be16(msg, (uint16_t)len);
  net__conn_out_raw(c, msg, NET_NOISE_FRAME_HDR + (size_t)len);
  return 0;
}

int net__conn_upgrade_sec_msg(net_conn_t *c, const char *text, size_t len) {
  int sel = conn_ms_msg(c, text, len, NET_PROTO_NOISE);
  if (sel < 0) {
    net__conn_fail(c, BFTNET_REASON_PROTOCOL_ERROR, sel, BFTNET_COUNTER_BAD_MULTISTREAM);
    return sel;
  }
  if (sel == 1 && (sel = conn_noise_begin(c)) < 0) {
    net__conn_fail(c, BFTNET_REASON_IO_ERROR, sel, BFTNET_COUNTER_IO_ERRORS);
    return sel;
  }
  return 0;
}

/* Verifies the peer's payload; the initiator also checks the dialed ID. */
static int conn_noise_peer(net_conn_t *c, const uint8_t *payload, size_t plen) {
  int rc = noise_libp2p_payload_verify(payload, plen, c->hs->rs, &c->peer);
  if (rc == BFTNET_EAUTH || rc == BFTNET_EBADKEY) {
    net__conn_fail(c, BFTNET_REASON_AUTH_FAILURE, rc,
                   rc == BFTNET_EAUTH ? BFTNET_COUNTER_BAD_SIGNATURE : BFTNET_COUNTER_BAD_PAYLOAD);
    return rc;
  }
  if (rc < 0) {
    net__conn_fail(c, BFTNET_REASON_AUTH_FAILURE, rc, BFTNET_COUNTER_BAD_PAYLOAD);
    return rc;
  }
  peerid_to_string(&c->peer, c->peer_str, sizeof c->peer_str);
  if (c->expect_peer && !peerid_equal(&c->peer, &c->expected)) {
    net__conn_fail(c, BFTNET_REASON_PEER_ID_MISMATCH, BFTNET_EPEERMISMATCH,
                   BFTNET_COUNTER_PEER_ID_MISMATCH);
    return BFTNET_EPEERMISMATCH;
  }
  return 0;
}

static int conn_noise_split(net_conn_t *c) {
  uint8_t hash[NOISE_HASHLEN], rs[NOISE_DHLEN];
  int rc = noise_hs_split(c->hs, &c->tx, &c->rx, hash, rs);
  free(c->hs);
  c->hs = NULL;
  if (rc < 0) return rc;
  c->state = CONN_MS_MUX;
  conn_ms_reset(c);
  if (c->outbound) {
    conn_send_ms(c, MS_PROTO_ID);
    conn_send_ms(c, NET_PROTO_YAMUX);
    c->ms_header_sent = true;
  }
  return 0;
}

void net__conn_upgrade_noise_msg(net_conn_t *c, uint8_t *msg, size_t len) {
  net_t *n = c->net;
  uint8_t payload[BN_NOISE_MAX_PAYLOAD];
  int plen = noise_hs_read(c->hs, msg, len, payload, sizeof payload);
  if (plen < 0) {
    bftnet_counter_id_t ctr = plen == BFTNET_EDECRYPT ? BFTNET_COUNTER_BAD_NOISE_DECRYPT
                                                      : BFTNET_COUNTER_BAD_NOISE_HANDSHAKE;
    return net__conn_fail(c, BFTNET_REASON_PROTOCOL_ERROR, plen, ctr);
  }
  noise_hs_state_t st = c->hs->state;
  if (st == NOISE_HS_I_WRITE_3 || st == NOISE_HS_DONE) {
    /* The peer's identity arrived: message 2 (we initiate) or 3 (we respond). */
    if (conn_noise_peer(c, payload, (size_t)plen) < 0) return;
  }
  if (st == NOISE_HS_R_WRITE_2 || st == NOISE_HS_I_WRITE_3) {
    uint8_t out[NET_NOISE_FRAME_HDR + 256 + sizeof n->payload];
    int mlen = noise_hs_write(c->hs, n->payload, n->payload_len, out + NET_NOISE_FRAME_HDR,
                              sizeof out - NET_NOISE_FRAME_HDR);
    if (mlen < 0) return net__conn_fail(c, BFTNET_REASON_IO_ERROR, mlen, BFTNET_COUNTER_IO_ERRORS);
    bn_store_be16(out, (uint16_t)mlen);
    net__conn_out_raw(c, out, NET_NOISE_FRAME_HDR + (size_t)mlen);
  }
  if (c->hs->state == NOISE_HS_DONE) {
    int rc = conn_noise_split(c);
    if (rc < 0)
      net__conn_fail(c, BFTNET_REASON_PROTOCOL_ERROR, rc, BFTNET_COUNTER_BAD_NOISE_HANDSHAKE);
  }
}

/* ---------------------------------------------------------------- muxer */

/* /yamux/1.0.0 agreed: the session starts (its callbacks are n->hooks.ymx),
 * the keepalive starts, and the events go up. */
static void conn_ready(net_conn_t *c) {
  net_t *n = c->net;
  yamux_config_t ycfg = {
      .window = n->cfg.yamux_window, .max_streams = n->cfg.yamux_max_streams, .max_frame = 0};
  int rc = yamux_session_new(&c->ymx, c->outbound, &ycfg, &n->hooks.ymx, c);
  if (rc < 0) return net__conn_fail(c, BFTNET_REASON_IO_ERROR, rc, BFTNET_COUNTER_IO_ERRORS);
  c->state = CONN_READY;
  c->up_ns = c->last_rx_ns = bn_now_ns(n->t->seam);
  n->t->ops->timer_stop(c->hs_timer);
  if (c->counted_pending) {
    c->counted_pending = false;
    n->npending--;
  }
  bn_counter_add(n->ctr, BFTNET_COUNTER_CONN_ESTABLISHED, 1);
  n->hooks.conn_ready(c);
  if (n->cbs.on_conn_up) n->cbs.on_conn_up(n->ud, c);
  if (c->state == CONN_READY && c->dial_cb) {
    net_dial_cb cb = c->dial_cb;
    c->dial_cb = NULL;
    cb(c->dial_ud, c, 0);
  }
}

void net__conn_upgrade_mux_plain(net_conn_t *c, const uint8_t *p, size_t n) {
  if (bn_buf_append(&c->ms_in, p, n) != 0) return net__conn_oom(c);
  while (c->state == CONN_MS_MUX) {
    const char *text;
    size_t tlen;
    int rc = ms_next(bn_buf_head(&c->ms_in), bn_buf_unread(&c->ms_in), &text, &tlen);
    if (rc == 0) {
      if (bn_buf_unread(&c->ms_in) > BN_MS_MAX_MSG + BN_UVARINT_MAX_BYTES + 1)
        net__conn_fail(c, BFTNET_REASON_PROTOCOL_ERROR, BFTNET_ETOOBIG,
                       BFTNET_COUNTER_BAD_MULTISTREAM);
      return;
    }
    if (rc < 0)
      return net__conn_fail(c, BFTNET_REASON_PROTOCOL_ERROR, rc, BFTNET_COUNTER_BAD_MULTISTREAM);
    int sel = conn_ms_msg(c, text, tlen, NET_PROTO_YAMUX);
    bn_buf_consume(&c->ms_in, (size_t)rc);
    if (sel < 0)
      return net__conn_fail(c, BFTNET_REASON_PROTOCOL_ERROR, sel, BFTNET_COUNTER_BAD_MULTISTREAM);
    if (sel == 1) {
      conn_ready(c);
      /* Bytes pipelined after the selection are yamux frames already:
       * they stay in c->ms_in for the caller to feed (READY), or go. */
      if (c->state != CONN_READY) bn_buf_free(&c->ms_in);
    }
  }
}
