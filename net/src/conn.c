/*
 * conn.c — one connection's upgrade state machine and its framing:
 *
 *   DIALING -> MS_SEC (/noise) -> NOISE (XX) -> MS_MUX (/yamux/1.0.0) -> READY
 *   any state -> CLOSING (conn_fail), once.
 *
 * Reads: bytes are framed where they land (the transport's scratch buffer),
 * decrypted in place, and handed to multistream or yamux; only a frame that
 * straddles two reads is copied, and only up to its end.
 * Writes: everything produced during one loop iteration is appended into
 * one open Noise frame (sealed at 65519 bytes or at flush) in c->out, and
 * the whole batch goes out in one transport write when the loop is about to
 * block (net_flush_all, via the transport's defer).
 */
#include <errno.h>
#include <stdlib.h>

#include "net_internal.h"

#define NOISE_FRAME_HDR 2u
#define MAX_UNFRAMED (NOISE_FRAME_HDR + BN_NOISE_MAX_MSG)
/* Bytes encrypted and waiting while the socket's previous write is in
 * flight (the kernel's buffer is full then: more here would only add
 * latency and memory). */
#define CONN_OUT_HIGH_MARK (1u * 1024u * 1024u)
/* A Noise frame is sealed at 16 KiB of plaintext, not at the 65519 bytes
 * the format allows: ChaCha20-Poly1305 runs about a quarter faster over a
 * record that stays in the L1 cache (4.3 against 3.4 GB/s here), which
 * gave 16 KiB messages 8-25 % more throughput (TLS records are 16 KiB for
 * the same reason); the 18 bytes per frame are 0.1 %. */
#ifndef CONN_FRAME_PLAINTEXT
#define CONN_FRAME_PLAINTEXT (16u * 1024u)
#endif
_Static_assert(CONN_FRAME_PLAINTEXT <= BN_NOISE_MAX_PLAINTEXT, "a Noise frame's plaintext");
/* Data stops at the high marks; only control frames (yamux window updates,
 * ping answers, resets) and our own pings pass them. A peer that makes us
 * queue past this hard cap (say, flooding yamux pings while never reading)
 * loses the connection. */
#define CONN_QUEUE_HARD_CAP (4u * NET_WRITE_HIGH_MARK)

static void conn_on_connect(void *ud, int status);
static void conn_on_read(void *ud, uint8_t *p, size_t n);
static void conn_on_eof(void *ud, int err);
static void conn_on_drain(void *ud);
static void conn_on_close(void *ud);
static void conn_teardown(net_conn_t *c);
static void conn_hs_timeout(void *ud);
static void conn_want_flush(net_conn_t *c);

static const bn_tsock_cbs_t conn_sock_cbs = {
    .on_connect = conn_on_connect,
    .on_read = conn_on_read,
    .on_eof = conn_on_eof,
    .on_drain = conn_on_drain,
    .on_close = conn_on_close,
};

/* ------------------------------------------------------------ lifecycle */

net_conn_t *conn_new(net_t *n, bn_tsock_t *sock, bool outbound) {
  net_conn_t *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  if (n->t->ops->timer_new(n->t, conn_hs_timeout, c, &c->hs_timer) != 0) {
    free(c);
    return NULL;
  }
  c->net = n;
  c->sock = sock;
  c->outbound = outbound;
  c->seq = ++n->conn_seq;
  c->state = outbound ? CONN_DIALING : CONN_MS_SEC;
  bn_buf_init(&c->in);
  bn_buf_init(&c->ms_in);
  bn_buf_init(&c->out);
  n->t->ops->sock_set_cbs(sock, &conn_sock_cbs, c);
  n->t->ops->timer_start(c->hs_timer, n->cfg.handshake_timeout_ms, 0);
  c->next = n->conns;
  if (n->conns) n->conns->prev = c;
  n->conns = c;
  n->nconns++;
  n->live_socks++;
  return c;
}

static void conn_free_mem(net_conn_t *c) {
  bn_buf_free(&c->in);
  bn_buf_free(&c->ms_in);
  bn_buf_free(&c->out);
  free(c);
}

static void conn_on_close(void *ud) {
  net_conn_t *c = ud;
  net_t *n = c->net;
  conn_free_mem(c);
  net_sock_closed(n);
}

static int reason_to_dial_err(bftnet_reason_t reason, int err) {
  switch (reason) {
  case BFTNET_REASON_PEER_ID_MISMATCH: return BFTNET_EPEERMISMATCH;
  case BFTNET_REASON_AUTH_FAILURE: return BFTNET_EAUTH;
  case BFTNET_REASON_HANDSHAKE_TIMEOUT: return BFTNET_ETIMEDOUT;
  default: return err ? err : BFTNET_ECLOSED;
  }
}

void conn_fail(net_conn_t *c, bftnet_reason_t reason, int err, bftnet_counter_id_t counter) {
  if (c->state == CONN_CLOSING) return;
  net_t *n = c->net;
  if ((unsigned)counter < BFTNET_COUNTER_COUNT) bn_counter_add(n->ctr, counter, 1);
  /* A peer that is down is routine (dials retry): info. Bad input: warn. */
  /* A failed dial and a duplicate the pair's leader retired are routine. */
  int lvl = (reason == BFTNET_REASON_IO_ERROR && c->state == CONN_DIALING) || reason == BFTNET_REASON_DUPLICATE
                ? BN_LOG_INFO
                : BN_LOG_WARN;
  if (reason != BFTNET_REASON_LOCAL_CLOSE && reason != BFTNET_REASON_CLOSED_BY_PEER)
    bn_log_rl(&n->rl, bn_now_ns(n->t->seam), lvl, "connection %s%s: %s (%s)",
              c->peer_str[0] ? "to " : "", c->peer_str, bftnet_reason_str(reason),
              bftnet_strerror(err));
  c->down_reason = reason;
  c->down_err = err;
  c->teardown_pending = true;
  c->was_ready = c->state == CONN_READY;
  c->state = CONN_CLOSING;
  if (c->in_feed == 0)
    conn_teardown(c);
  else
    conn_want_flush(c); /* a yamux call is on the stack: tear down from the flush pass */
}

static void flush_list_remove(net_conn_t *c) {
  net_t *n = c->net;
  for (net_conn_t **pp = &n->flush_list; *pp; pp = &(*pp)->flush_next) {
    if (*pp == c) {
      *pp = c->flush_next;
      break;
    }
  }
  c->flush_queued = false;
}

static void conn_flush(net_conn_t *c, bool all);

static void conn_teardown(net_conn_t *c) {
  net_t *n = c->net;
  bool was_ready = c->was_ready;
  c->teardown_pending = false;
  n->t->ops->timer_free(c->hs_timer);
  c->hs_timer = NULL;
  ping_conn_down(c, BFTNET_ECLOSED);
  bool graceful = c->down_reason == BFTNET_REASON_LOCAL_CLOSE;
  if (graceful && c->ymx) {
    yamux_session_goaway(c->ymx, YAMUX_GOAWAY_NORMAL);
    conn_flush(c, true);
  }
  if (c->ymx) {
    yamux_session_free(c->ymx); /* streams get on_error(ECLOSED) + on_free */
    c->ymx = NULL;
  }
  if (c->hs) {
    noise_hs_wipe(c->hs);
    free(c->hs);
    c->hs = NULL;
  }
  noise_cipher_wipe(&c->tx);
  noise_cipher_wipe(&c->rx);
  if (c->flush_queued) flush_list_remove(c);
  net_conn_unlink(c);
  n->t->ops->close(c->sock, graceful);
  bn_counter_add(n->ctr, BFTNET_COUNTER_CONN_CLOSED, 1);
  if (was_ready && n->cbs.on_conn_down) n->cbs.on_conn_down(n->ud, c, c->down_reason, c->down_err);
  if (c->dial_cb) {
    net_dial_cb cb = c->dial_cb;
    c->dial_cb = NULL;
    cb(c->dial_ud, NULL, reason_to_dial_err(c->down_reason, c->down_err));
  }
}

void net_conn_close(net_conn_t *c, bftnet_reason_t reason, int err) {
  conn_fail(c, reason ? reason : BFTNET_REASON_LOCAL_CLOSE, err, BFTNET_COUNTER_COUNT);
}

static void conn_hs_timeout(void *ud) {
  net_conn_t *c = ud;
  if (c->state == CONN_READY || c->state == CONN_CLOSING) return;
  conn_fail(c, BFTNET_REASON_HANDSHAKE_TIMEOUT, BFTNET_ETIMEDOUT, BFTNET_COUNTER_HANDSHAKE_TIMEOUT);
}

/* -------------------------------------------------------------- output */

static void conn_want_flush(net_conn_t *c) {
  if (c->flush_queued) return;
  net_t *n = c->net;
  c->flush_queued = true;
  c->flush_next = n->flush_list;
  n->flush_list = c;
  n->t->ops->defer(n->t, net_flush_all, n);
}

static void conn_oom(net_conn_t *c) {
  conn_fail(c, BFTNET_REASON_IO_ERROR, BFTNET_ENOMEM, BFTNET_COUNTER_IO_ERRORS);
}

/* Cleartext bytes (before Noise is established). */
static void conn_out_raw(net_conn_t *c, const void *p, size_t n) {
  BN_ASSERT(!c->tx.has_k);
  if (bn_buf_append(&c->out, p, n) != 0) return conn_oom(c);
  conn_want_flush(c);
}

static void frame_seal(net_conn_t *c) {
  if (!c->frame_open) return;
  c->frame_open = false;
  size_t plen = c->out.len - c->frame_start - NOISE_FRAME_HDR;
  if (plen == 0) {
    c->out.len = c->frame_start;
    return;
  }
  uint8_t *f = c->out.data + c->frame_start;
  int rc = noise_encrypt(&c->tx, f + NOISE_FRAME_HDR, plen); /* tag room reserved */
  if (rc < 0) return conn_fail(c, BFTNET_REASON_IO_ERROR, rc, BFTNET_COUNTER_IO_ERRORS);
  bn_store_be16(f, (uint16_t)rc);
  c->out.len += BN_NOISE_TAG;
}

static int out_secure_append(net_conn_t *c, const uint8_t *p, size_t n) {
  BN_ASSERT(c->out.off == 0); /* a flush takes all of it or nothing */
  while (n > 0) {
    if (!c->frame_open) {
      if (bn_buf_reserve(&c->out, NOISE_FRAME_HDR + BN_NOISE_TAG + n) != 0) return BFTNET_ENOMEM;
      c->frame_start = c->out.len;
      c->out.len += NOISE_FRAME_HDR;
      c->frame_open = true;
    }
    size_t used = c->out.len - c->frame_start - NOISE_FRAME_HDR;
    size_t take = BN_MIN(CONN_FRAME_PLAINTEXT - used, n);
    /* Keep room for the tag after the plaintext at all times. */
    if (bn_buf_reserve(&c->out, take + BN_NOISE_TAG) != 0) return BFTNET_ENOMEM;
    memcpy(c->out.data + c->out.len, p, take);
    c->out.len += take;
    p += take;
    n -= take;
    if (used + take == CONN_FRAME_PLAINTEXT) frame_seal(c);
  }
  return 0;
}

void conn_out_secure(net_conn_t *c, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen) {
  if (c->state == CONN_CLOSING) return;
  BN_ASSERT(c->tx.has_k);
  if (out_secure_append(c, a, alen) != 0 || (blen && out_secure_append(c, b, blen) != 0))
    return conn_oom(c);
  conn_want_flush(c);
}

/* Hands c->out to the socket (see the transport's write: no copy). While
 * the socket's previous write is in flight the bytes stay in c->out and
 * more are appended; its completion (conn_on_drain) flushes again. */
static void conn_write_out(net_conn_t *c, bool all) {
  net_t *n = c->net;
  size_t queued = n->t->ops->write_queued(c->sock);
  if (bn_buf_unread(&c->out) + queued > CONN_QUEUE_HARD_CAP) {
    bn_buf_reset(&c->out);
    return conn_fail(c, BFTNET_REASON_LIMIT, BFTNET_ELIMIT, BFTNET_COUNTER_CONN_LIMIT);
  }
  /* In flight: the open Noise frame keeps filling (fewer, fuller frames). */
  if (queued > 0 && !all) return;
  if (c->tx.has_k) frame_seal(c);
  size_t len = bn_buf_unread(&c->out);
  if (len == 0) return;
  int rc = n->t->ops->write(c->sock, &c->out, all);
  bn_counter_add(n->ctr, BFTNET_COUNTER_BYTES_OUT, len - bn_buf_unread(&c->out));
  if (rc < 0) {
    bn_buf_reset(&c->out);
    return conn_fail(c, BFTNET_REASON_IO_ERROR, rc, BFTNET_COUNTER_IO_ERRORS);
  }
}

static void conn_flush(net_conn_t *c, bool all) {
  conn_write_out(c, all);
  /* Streams that stopped on our own buffer's high mark go on now, unless
   * the socket itself is backed up (then its drain event wakes them). */
  if (c->state != CONN_CLOSING && c->congested_head && !conn_congested(c)) conn_writable_all(c);
}

void net_flush_all(void *ud) {
  net_t *n = ud;
  while (n->flush_list) {
    net_conn_t *c = n->flush_list;
    n->flush_list = c->flush_next;
    c->flush_queued = false;
    if (c->state != CONN_CLOSING)
      conn_flush(c, false);
    else if (c->teardown_pending && c->in_feed == 0)
      conn_teardown(c);
  }
}

bool conn_congested(const net_conn_t *c) {
  const net_t *n = c->net;
  return c->out.len > CONN_OUT_HIGH_MARK || n->t->ops->write_queued(c->sock) > NET_WRITE_HIGH_MARK;
}

/* A write completed: what accumulated meanwhile goes out, parked streams
 * go on if they can. */
static void conn_on_drain(void *ud) {
  net_conn_t *c = ud;
  if (c->state != CONN_CLOSING) conn_flush(c, false);
}

/* One multistream message, in the clear or encrypted per the state. */
static void conn_send_ms(net_conn_t *c, const char *text) {
  bn_buf_t b;
  bn_buf_init(&b);
  if (ms_append(&b, text) != 0) {
    bn_buf_free(&b);
    return conn_oom(c);
  }
  if (c->tx.has_k)
    conn_out_secure(c, b.data, b.len, NULL, 0);
  else
    conn_out_raw(c, b.data, b.len);
  bn_buf_free(&b);
}

/* --------------------------------------------------------------- reads */

static void conn_on_connect(void *ud, int status) {
  net_conn_t *c = ud;
  net_t *n = c->net;
  if (c->state != CONN_DIALING) return;
  if (status < 0)
    return conn_fail(c, BFTNET_REASON_IO_ERROR, status, BFTNET_COUNTER_DIAL_FAILED);
  n->t->ops->peer_addr(c->sock, &c->remote_sa);
  int rc = n->t->ops->read_start(c->sock);
  if (rc < 0) return conn_fail(c, BFTNET_REASON_IO_ERROR, rc, BFTNET_COUNTER_IO_ERRORS);
  c->state = CONN_MS_SEC;
  conn_send_ms(c, MS_PROTO_ID); /* pipelined: header and proposal together */
  conn_send_ms(c, NET_PROTO_NOISE);
  c->ms_header_sent = true;
}

void conn_start_inbound(net_conn_t *c) {
  net_t *n = c->net;
  n->t->ops->peer_addr(c->sock, &c->remote_sa);
  int rc = n->t->ops->read_start(c->sock);
  if (rc < 0) conn_fail(c, BFTNET_REASON_IO_ERROR, rc, BFTNET_COUNTER_IO_ERRORS);
}

static void conn_on_eof(void *ud, int err) {
  net_conn_t *c = ud;
  if (c->state == CONN_CLOSING) return;
  if (err == 0)
    conn_fail(c, BFTNET_REASON_CLOSED_BY_PEER, BFTNET_EEOF, BFTNET_COUNTER_COUNT);
  else if (err == -ECONNRESET)
    conn_fail(c, BFTNET_REASON_RESET, err, BFTNET_COUNTER_IO_ERRORS);
  else
    conn_fail(c, BFTNET_REASON_IO_ERROR, err, BFTNET_COUNTER_IO_ERRORS);
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
  uint8_t msg[NOISE_FRAME_HDR + 64];
  int len = noise_hs_write(c->hs, NULL, 0, msg + NOISE_FRAME_HDR, sizeof msg - NOISE_FRAME_HDR);
  if (len < 0) return len;
  bn_store_be16(msg, (uint16_t)len);
  conn_out_raw(c, msg, NOISE_FRAME_HDR + (size_t)len);
  return 0;
}

/* Verifies the peer's payload; the initiator also checks the dialed ID. */
static int conn_noise_peer(net_conn_t *c, const uint8_t *payload, size_t plen) {
  int rc = noise_libp2p_payload_verify(payload, plen, c->hs->rs, &c->peer);
  if (rc == BFTNET_EAUTH || rc == BFTNET_EBADKEY) {
    conn_fail(c, BFTNET_REASON_AUTH_FAILURE, rc,
              rc == BFTNET_EAUTH ? BFTNET_COUNTER_BAD_SIGNATURE : BFTNET_COUNTER_BAD_PAYLOAD);
    return rc;
  }
  if (rc < 0) {
    conn_fail(c, BFTNET_REASON_AUTH_FAILURE, rc, BFTNET_COUNTER_BAD_PAYLOAD);
    return rc;
  }
  peerid_to_string(&c->peer, c->peer_str, sizeof c->peer_str);
  if (c->expect_peer && !peerid_equal(&c->peer, &c->expected)) {
    conn_fail(c, BFTNET_REASON_PEER_ID_MISMATCH, BFTNET_EPEERMISMATCH,
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

/* One Noise handshake message (msg is writable, len <= 65535). */
static void conn_noise_msg(net_conn_t *c, uint8_t *msg, size_t len) {
  net_t *n = c->net;
  uint8_t payload[BN_NOISE_MAX_PAYLOAD];
  int plen = noise_hs_read(c->hs, msg, len, payload, sizeof payload);
  if (plen < 0) {
    bftnet_counter_id_t ctr = plen == BFTNET_EDECRYPT ? BFTNET_COUNTER_BAD_NOISE_DECRYPT
                                                      : BFTNET_COUNTER_BAD_NOISE_HANDSHAKE;
    return conn_fail(c, BFTNET_REASON_PROTOCOL_ERROR, plen, ctr);
  }
  noise_hs_state_t st = c->hs->state;
  if (st == NOISE_HS_I_WRITE_3 || st == NOISE_HS_DONE) {
    /* The peer's identity arrived: message 2 (we initiate) or 3 (we respond). */
    if (conn_noise_peer(c, payload, (size_t)plen) < 0) return;
  }
  if (st == NOISE_HS_R_WRITE_2 || st == NOISE_HS_I_WRITE_3) {
    uint8_t out[NOISE_FRAME_HDR + 256 + sizeof n->payload];
    int mlen = noise_hs_write(c->hs, n->payload, n->payload_len, out + NOISE_FRAME_HDR,
                              sizeof out - NOISE_FRAME_HDR);
    if (mlen < 0) return conn_fail(c, BFTNET_REASON_IO_ERROR, mlen, BFTNET_COUNTER_IO_ERRORS);
    bn_store_be16(out, (uint16_t)mlen);
    conn_out_raw(c, out, NOISE_FRAME_HDR + (size_t)mlen);
  }
  if (c->hs->state == NOISE_HS_DONE) {
    int rc = conn_noise_split(c);
    if (rc < 0) conn_fail(c, BFTNET_REASON_PROTOCOL_ERROR, rc, BFTNET_COUNTER_BAD_NOISE_HANDSHAKE);
  }
}

static void ymx_output(void *ud, const uint8_t hdr[BN_YAMUX_HEADER], const uint8_t *body,
                       size_t blen) {
  net_conn_t *c = ud;
  c->in_feed++; /* inside a yamux call: a failure must not free the session */
  conn_out_secure(c, hdr, BN_YAMUX_HEADER, body, blen);
  /* Credit goes back at once: libuv reads up to 32 times per turn, and a
   * window update held until the turn ends came back only after the whole
   * socket buffer was read — the sender stalled on every window (-30 %). */
  if (hdr[1] == YAMUX_TYPE_WINDOW || hdr[1] == YAMUX_TYPE_PING) c->urgent = true;
  c->in_feed--;
}

static void ymx_goaway(void *ud, uint32_t code) {
  (void)ud;
  (void)code; /* existing streams go on; yamux refuses new opens for us */
}

static const yamux_cbs_t conn_ymx_cbs = {
    .output = ymx_output,
    .on_accept = stream_on_accept,
    .on_data = stream_on_data,
    .on_fin = stream_on_fin,
    .on_reset = stream_on_reset,
    .on_writable = stream_on_writable,
    .on_free = stream_on_free,
    .on_goaway = ymx_goaway,
    .on_credit = stream_on_credit,
};

static void conn_ready(net_conn_t *c) {
  net_t *n = c->net;
  yamux_config_t ycfg = {.window = n->cfg.yamux_window,
                         .max_streams = n->cfg.yamux_max_streams,
                         .max_frame = 0};
  int rc = yamux_session_new(&c->ymx, c->outbound, &ycfg, &conn_ymx_cbs, c);
  if (rc < 0) return conn_fail(c, BFTNET_REASON_IO_ERROR, rc, BFTNET_COUNTER_IO_ERRORS);
  c->state = CONN_READY;
  n->t->ops->timer_stop(c->hs_timer);
  if (c->counted_pending) {
    c->counted_pending = false;
    n->npending--;
  }
  bn_counter_add(n->ctr, BFTNET_COUNTER_CONN_ESTABLISHED, 1);
  ping_conn_ready(c);
  if (n->cbs.on_conn_up) n->cbs.on_conn_up(n->ud, c);
  if (c->state == CONN_READY && c->dial_cb) {
    net_dial_cb cb = c->dial_cb;
    c->dial_cb = NULL;
    cb(c->dial_ud, c, 0);
  }
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
    bn_log_rl(&c->rl, bn_now_ns(c->net->t->seam), BN_LOG_INFO, "yamux from %s: %s", c->peer_str,
              yamux_violation_str(v));
    conn_fail(c, v == YAMUX_INTERNAL ? BFTNET_REASON_IO_ERROR : BFTNET_REASON_PROTOCOL_ERROR, rc,
              ctr);
    return;
  }
}

/* Plaintext during CONN_MS_MUX: multistream messages, then yamux. */
static void conn_mux_plain(net_conn_t *c, const uint8_t *p, size_t n) {
  if (bn_buf_append(&c->ms_in, p, n) != 0) return conn_oom(c);
  while (c->state == CONN_MS_MUX) {
    const char *text;
    size_t tlen;
    int rc = ms_next(bn_buf_head(&c->ms_in), bn_buf_unread(&c->ms_in), &text, &tlen);
    if (rc == 0) {
      if (bn_buf_unread(&c->ms_in) > BN_MS_MAX_MSG + BN_UVARINT_MAX_BYTES + 1)
        conn_fail(c, BFTNET_REASON_PROTOCOL_ERROR, BFTNET_ETOOBIG, BFTNET_COUNTER_BAD_MULTISTREAM);
      return;
    }
    if (rc < 0) return conn_fail(c, BFTNET_REASON_PROTOCOL_ERROR, rc, BFTNET_COUNTER_BAD_MULTISTREAM);
    int sel = conn_ms_msg(c, text, tlen, NET_PROTO_YAMUX);
    bn_buf_consume(&c->ms_in, (size_t)rc);
    if (sel < 0) return conn_fail(c, BFTNET_REASON_PROTOCOL_ERROR, sel, BFTNET_COUNTER_BAD_MULTISTREAM);
    if (sel == 1) {
      conn_ready(c);
      /* Bytes pipelined after the selection are yamux frames already. */
      size_t rest = bn_buf_unread(&c->ms_in);
      if (rest && c->state == CONN_READY) {
        bn_buf_t tmp = c->ms_in;
        bn_buf_init(&c->ms_in);
        conn_yamux_feed(c, bn_buf_head(&tmp), rest);
        bn_buf_free(&tmp);
      } else {
        bn_buf_free(&c->ms_in);
      }
    }
  }
}

/* One complete Noise frame in READY / MS_MUX: decrypt in place, dispatch. */
static void conn_secure_frame(net_conn_t *c, uint8_t *f, size_t len) {
  int plen = noise_decrypt(&c->rx, f, len);
  if (plen < 0) return conn_fail(c, BFTNET_REASON_PROTOCOL_ERROR, plen, BFTNET_COUNTER_BAD_NOISE_DECRYPT);
  if (c->state == CONN_MS_MUX)
    conn_mux_plain(c, f, (size_t)plen);
  else
    conn_yamux_feed(c, f, (size_t)plen);
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
        conn_fail(c, BFTNET_REASON_PROTOCOL_ERROR, rc, BFTNET_COUNTER_BAD_MULTISTREAM);
        break;
      }
      pos += (size_t)rc;
      int sel = conn_ms_msg(c, text, tlen, NET_PROTO_NOISE);
      if (sel < 0) {
        conn_fail(c, BFTNET_REASON_PROTOCOL_ERROR, sel, BFTNET_COUNTER_BAD_MULTISTREAM);
        break;
      }
      if (sel == 1 && (sel = conn_noise_begin(c)) < 0) {
        conn_fail(c, BFTNET_REASON_IO_ERROR, sel, BFTNET_COUNTER_IO_ERRORS);
        break;
      }
      continue;
    }
    if (c->state != CONN_NOISE && c->state != CONN_MS_MUX && c->state != CONN_READY) break;
    if (len - pos < NOISE_FRAME_HDR) break;
    size_t flen = bn_load_be16(buf + pos);
    if (len - pos < NOISE_FRAME_HDR + flen) break;
    uint8_t *f = buf + pos + NOISE_FRAME_HDR;
    pos += NOISE_FRAME_HDR + flen;
    if (c->state == CONN_NOISE)
      conn_noise_msg(c, f, flen);
    else
      conn_secure_frame(c, f, flen);
  }
  return pos;
}

/* Bytes that complete the unit at the head of c->in (0: unknown, take all). */
static size_t conn_in_need(const net_conn_t *c) {
  size_t have = bn_buf_unread(&c->in);
  if (c->state == CONN_MS_SEC) return 0;
  if (have < NOISE_FRAME_HDR) return NOISE_FRAME_HDR - have;
  return NOISE_FRAME_HDR + bn_load_be16(bn_buf_head(&c->in)) - have;
}

static void conn_on_read(void *ud, uint8_t *p, size_t n) {
  net_conn_t *c = ud;
  if (c->state == CONN_CLOSING) return;
  bn_counter_add(c->net->ctr, BFTNET_COUNTER_BYTES_IN, n);
  c->in_feed++;
  /* Finish a unit that straddles reads, copying only what it still needs. */
  while (n > 0 && bn_buf_unread(&c->in) > 0 && c->state != CONN_CLOSING) {
    size_t need = conn_in_need(c);
    size_t take = need ? BN_MIN(need, n) : n;
    if (bn_buf_append(&c->in, p, take) != 0) {
      conn_oom(c);
      break;
    }
    p += take;
    n -= take;
    size_t used = conn_process(c, bn_buf_head(&c->in), bn_buf_unread(&c->in));
    if (c->state != CONN_CLOSING) bn_buf_consume(&c->in, used);
    if (bn_buf_unread(&c->in) > MAX_UNFRAMED) {
      conn_fail(c, BFTNET_REASON_PROTOCOL_ERROR, BFTNET_ETOOBIG, BFTNET_COUNTER_BAD_NOISE_FRAME);
      break;
    }
    if (used == 0 && need == 0) n = 0; /* all taken, still incomplete */
  }
  if (n > 0 && c->state != CONN_CLOSING) {
    size_t used = conn_process(c, p, n);
    if (c->state != CONN_CLOSING && used < n && bn_buf_append(&c->in, p + used, n - used) != 0)
      conn_oom(c);
  }
  if (c->urgent && c->state != CONN_CLOSING) {
    c->urgent = false;
    conn_flush(c, false);
  }
  c->in_feed--;
  if (c->in_feed == 0 && c->teardown_pending) conn_teardown(c);
}
