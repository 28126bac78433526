/*
 * conn_in.c — what a connection's socket reports, and its input.
 *
 * The socket's events: connected (the upgrade begins), bytes read, EOF;
 * drained and closed go to conn.c. Bytes are framed where they land (the
 * transport's scratch buffer): multistream messages in MS_SEC, Noise frames
 * after. A frame is decrypted in place and handed to the upgrade
 * (conn_upgrade.c) or, once READY, to the yamux session; only a unit that
 * straddles two reads is copied, and only up to its end.
 */
#include <errno.h>

#include "net_internal.h"

#define MAX_UNFRAMED (NET_NOISE_FRAME_HDR + BN_NOISE_MAX_MSG)

static void conn_on_connect(void *ud, int status) {
  net_conn_t *c = ud;
  net_t *n = c->net;
  if (c->state != CONN_DIALING) return;
  if (status < 0)
    return net__conn_fail(c, BFTNET_REASON_IO_ERROR, status, BFTNET_COUNTER_DIAL_FAILED);
  n->t->ops->peer_addr(c->sock, &c->remote_sa);
  int rc = n->t->ops->read_start(c->sock);
  if (rc < 0) return net__conn_fail(c, BFTNET_REASON_IO_ERROR, rc, BFTNET_COUNTER_IO_ERRORS);
  net__conn_upgrade_begin(c);
}

static void conn_on_eof(void *ud, int err) {
  net_conn_t *c = ud;
  if (c->state == CONN_CLOSING) return;
  if (err == 0)
    net__conn_fail(c, BFTNET_REASON_CLOSED_BY_PEER, BFTNET_EEOF, BFTNET_COUNTER_COUNT);
  else if (err == -ECONNRESET)
    net__conn_fail(c, BFTNET_REASON_RESET, err, BFTNET_COUNTER_IO_ERRORS);
  else
    net__conn_fail(c, BFTNET_REASON_IO_ERROR, err, BFTNET_COUNTER_IO_ERRORS);
}

static void conn_yamux_feed(net_conn_t *c, const uint8_t *p, size_t n) {
  if (n == 0 || c->state != CONN_READY) return;
  int rc = yamux_session_feed(c->ymx, p, n);
  /* Streams yamux refused at the stream-count limit are counted per node. */
  uint64_t refused = yamux_session_stats(c->ymx)->streams_refused;
  if (refused != c->ymx_refused) {
    bn_counter_add(c->net->ctr, BFTNET_COUNTER_STREAMS_REFUSED, refused - c->ymx_refused);
    c->ymx_refused = refused;
  }
  if (rc < 0) {
    yamux_violation_t v = yamux_session_error(c->ymx);
    bftnet_counter_id_t ctr = v == YAMUX_WINDOW_EXCEEDED ? BFTNET_COUNTER_YAMUX_WINDOW_VIOLATION
                              : v == YAMUX_INTERNAL      ? BFTNET_COUNTER_IO_ERRORS
                                                         : BFTNET_COUNTER_BAD_YAMUX;
    bn_log_rl(c->net->cfg.log, &c->rl, bn_now_ns(c->net->t->seam), BN_LOG_INFO, "yamux from %s: %s",
              c->peer_str, yamux_violation_str(v));
    net__conn_fail(c, v == YAMUX_INTERNAL ? BFTNET_REASON_IO_ERROR : BFTNET_REASON_PROTOCOL_ERROR,
                   rc, ctr);
    return;
  }
}

/* The muxer was just agreed: bytes the peer pipelined behind the selection
 * (left in c->ms_in) are yamux frames. */
static void conn_feed_pipelined(net_conn_t *c) {
  bn_buf_t tmp = c->ms_in;
  bn_buf_init(&c->ms_in);
  size_t rest = bn_buf_unread(&tmp);
  if (rest) conn_yamux_feed(c, bn_buf_head(&tmp), rest);
  bn_buf_free(&tmp);
}

/* One complete Noise frame in READY / MS_MUX: decrypt in place, dispatch. */
static void conn_secure_frame(net_conn_t *c, uint8_t *f, size_t len) {
  int plen = noise_decrypt(&c->rx, f, len);
  if (plen < 0)
    return net__conn_fail(c, BFTNET_REASON_PROTOCOL_ERROR, plen, BFTNET_COUNTER_BAD_NOISE_DECRYPT);
  if (c->state != CONN_MS_MUX) return conn_yamux_feed(c, f, (size_t)plen);
  net__conn_upgrade_mux_plain(c, f, (size_t)plen);
  if (c->state == CONN_READY) conn_feed_pipelined(c);
}

/* Handles as many complete units (multistream messages in MS_SEC, Noise
 * frames after) as buf holds; returns the bytes used. */
static size_t conn_process(net_conn_t *c, uint8_t *buf, size_t len) {
  size_t pos = 0;
  while (pos < len) {
    if (c->state == CONN_MS_SEC) {
      const char *text;
      size_t tlen;
      int rc = ms_next(buf + pos, len - pos, &text, &tlen);
      if (rc == 0) break;
      if (rc < 0) {
        net__conn_fail(c, BFTNET_REASON_PROTOCOL_ERROR, rc, BFTNET_COUNTER_BAD_MULTISTREAM);
        break;
      }
      pos += (size_t)rc;
      if (net__conn_upgrade_sec_msg(c, text, tlen) < 0) break;
      continue;
    }
    if (c->state != CONN_NOISE && c->state != CONN_MS_MUX && c->state != CONN_READY) break;
    if (len - pos < NET_NOISE_FRAME_HDR) break;
    size_t flen = bn_load_be16(buf + pos);
    if (len - pos < NET_NOISE_FRAME_HDR + flen) break;
    uint8_t *f = buf + pos + NET_NOISE_FRAME_HDR;
    pos += NET_NOISE_FRAME_HDR + flen;
    if (c->state == CONN_NOISE)
      net__conn_upgrade_noise_msg(c, f, flen);
    else
      conn_secure_frame(c, f, flen);
  }
  return pos;
}

/* Bytes that complete the unit at the head of c->in (0: unknown, take all). */
static size_t conn_in_need(const net_conn_t *c) {
  size_t have = bn_buf_unread(&c->in);
  if (c->state == CONN_MS_SEC) return 0;
  if (have < NET_NOISE_FRAME_HDR) return NET_NOISE_FRAME_HDR - have;
  return NET_NOISE_FRAME_HDR + bn_load_be16(bn_buf_head(&c->in)) - have;
}

static void conn_on_read(void *ud, uint8_t *p, size_t n) {
  net_conn_t *c = ud;
  if (c->state == CONN_CLOSING) return;
  bn_counter_add(c->net->ctr, BFTNET_COUNTER_BYTES_IN, n);
  c->last_rx_ns = bn_now_ns(c->net->t->seam); /* health: the peer was heard */
  c->in_feed++;
  /* Finish a unit that straddles reads, copying only what it still needs. */
  while (n > 0 && bn_buf_unread(&c->in) > 0 && c->state != CONN_CLOSING) {
    size_t need = conn_in_need(c);
    size_t take = need ? BN_MIN(need, n) : n;
    if (bn_buf_append(&c->in, p, take) != 0) {
      net__conn_oom(c);
      break;
    }
    p += take;
    n -= take;
    size_t used = conn_process(c, bn_buf_head(&c->in), bn_buf_unread(&c->in));
    if (c->state != CONN_CLOSING) bn_buf_consume(&c->in, used);
    if (bn_buf_unread(&c->in) > MAX_UNFRAMED) {
      net__conn_fail(c, BFTNET_REASON_PROTOCOL_ERROR, BFTNET_ETOOBIG,
                     BFTNET_COUNTER_BAD_NOISE_FRAME);
      break;
    }
    if (used == 0 && need == 0) n = 0; /* all taken, still incomplete */
  }
  if (n > 0 && c->state != CONN_CLOSING) {
    size_t used = conn_process(c, p, n);
    if (c->state != CONN_CLOSING && used < n && bn_buf_append(&c->in, p + used, n - used) != 0)
      net__conn_oom(c);
  }
  /* A window update or ping answer this read produced goes out now, not
   * after the loop's whole turn (see conn.c's yamux output). */
  if (c->urgent && c->state != CONN_CLOSING) {
    c->urgent = false;
    net__conn_flush(c, false);
  }
  c->in_feed--;
  if (c->in_feed == 0 && c->teardown_pending) net__conn_teardown(c);
}

static const bn_tsock_cbs_t conn_sock_cbs = {
    .on_connect = conn_on_connect,
    .on_read = conn_on_read,
    .on_eof = conn_on_eof,
    .on_drain = net__conn_on_drain,
    .on_close = net__conn_on_close,
};

void net__conn_in_start(net_conn_t *c) {
  net_t *n = c->net;
  n->t->ops->sock_set_cbs(c->sock, &conn_sock_cbs, c);
  if (c->outbound) return; /* conn_on_connect starts reading */
  n->t->ops->peer_addr(c->sock, &c->remote_sa);
  int rc = n->t->ops->read_start(c->sock);
  if (rc < 0) net__conn_fail(c, BFTNET_REASON_IO_ERROR, rc, BFTNET_COUNTER_IO_ERRORS);
}
