/*
 * conn.c — a connection's lifecycle and its output.
 *
 * Lifecycle: net__conn_new links a connection into the net's list; any
 * state ends in CLOSING through net__conn_fail, once. The teardown (yamux
 * session freed, unlinked, socket closed, events) runs at once, or, while a
 * yamux call is on the stack (c->in_feed > 0), from the flush pass. Memory
 * goes in the socket's close callback.
 *
 * Output: everything produced during one loop iteration is appended into
 * one open Noise frame (sealed at CONN_FRAME_PLAINTEXT = 16 KiB of
 * plaintext, or at flush) in c->out, and the whole batch goes out in one
 * transport write when the loop is about to block (conn_flush_all, via the
 * transport's defer). Streams that stop on congestion park here and are
 * woken when the output drains, most urgent first (net_stream_set_prio).
 *
 * A paced connection (net_config_t.paced, with traffic classes) keeps its
 * unsent output below NET_PACE_SLACK before a data stream may write, and a
 * write is at most NET_PACE_PIECE: the next write, whoever makes it, waits
 * behind at most one piece. The flush pass writes and wakes the parked
 * streams again as long as the socket takes everything at once, so the
 * kernel (its unsent bytes capped by TCP_NOTSENT_LOWAT) stays fed.
 *
 * What the kernel has sent is out of reach too: a byte on the wire cannot
 * be overtaken, and a bottleneck's queue (a switch port, a slower link)
 * fills with whatever TCP's window lets out. So on a paced connection the
 * less urgent streams (priority > 0) never write past the in-flight cap
 * (net__conn_cap_room): about twice the path's bandwidth-delay product, as
 * the kernel measures it, or what the path drains between two re-checks.
 * A vote then waits behind at most that in the network's queues instead of
 * everything the congestion window allows.
 */
#include <stdio.h>
#include <stdlib.h>

#include "net_internal.h"

/* Bytes encrypted and waiting while the socket's previous write is in
 * flight (the kernel's buffer is full then: more here would only add
 * latency and memory). */
#define CONN_OUT_HIGH_MARK (1u * 1024u * 1024u)
/* A Noise frame is sealed at 16 KiB of plaintext, not at the 65519 bytes
 * the format allows: the cipher runs faster over a record that stays in the
 * L1 cache (TLS records are 16 KiB for the same reason), and the 18 bytes
 * of header and tag per frame are negligible. The A/B is in
 * docs/BENCHMARKS.md. */
#ifndef CONN_FRAME_PLAINTEXT
#define CONN_FRAME_PLAINTEXT (16u * 1024u)
#endif
_Static_assert(CONN_FRAME_PLAINTEXT <= BN_NOISE_MAX_PLAINTEXT, "a Noise frame's plaintext");
/* Data stops at the high marks; only control frames (yamux window updates,
 * ping answers, resets) and our own pings pass them. A peer that makes us
 * queue past this hard cap (say, flooding yamux pings while never reading)
 * loses the connection. */
#define CONN_QUEUE_HARD_CAP (4u * NET_WRITE_HIGH_MARK)

static void conn_hs_timeout(void *ud);
static void conn_want_flush(net_conn_t *c);
static void conn_wake_parked(net_conn_t *c);

/* ------------------------------------------------------------ lifecycle */

net_conn_t *net__conn_new(net_t *n, bn_tsock_t *sock, bool outbound) {
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
  n->t->ops->timer_start(c->hs_timer, n->cfg.handshake_timeout_ms, 0);
  if (n->cfg.notsent_lowat && n->t->ops->sock_set_notsent_lowat) {
    int rc = n->t->ops->sock_set_notsent_lowat(sock, n->cfg.notsent_lowat);
    if (rc < 0) bn_log(n->cfg.log, BN_LOG_INFO, "TCP_NOTSENT_LOWAT: %s", bftnet_strerror(rc));
  }
  c->next = n->conns;
  if (n->conns) n->conns->prev = c;
  n->conns = c;
  n->nconns++;
  n->live_socks++;
  return c;
}

static void conn_unlink(net_conn_t *c) {
  net_t *n = c->net;
  if (c->prev)
    c->prev->next = c->next;
  else if (n->conns == c)
    n->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = c->next = NULL;
  n->nconns--;
  if (c->counted_pending) {
    c->counted_pending = false;
    n->npending--;
  }
}

/* The socket's last callback: the memory goes, and net_close's done runs
 * once the last socket of a closing net is gone. */
void net__conn_on_close(void *ud) {
  net_conn_t *c = ud;
  net_t *n = c->net;
  bn_buf_free(&c->in);
  bn_buf_free(&c->ms_in);
  bn_buf_free(&c->out);
  free(c);
  BN_ASSERT(n->live_socks > 0);
  n->live_socks--;
  if (n->closing && n->live_socks == 0 && n->close_done) {
    void (*done)(void *) = n->close_done;
    n->close_done = NULL;
    done(n->close_ud);
  }
}

static int reason_to_dial_err(bftnet_reason_t reason, int err) {
  switch (reason) {
  case BFTNET_REASON_PEER_ID_MISMATCH:
    return BFTNET_EPEERMISMATCH;
  case BFTNET_REASON_AUTH_FAILURE:
    return BFTNET_EAUTH;
  case BFTNET_REASON_HANDSHAKE_TIMEOUT:
    return BFTNET_ETIMEDOUT;
  default:
    return err ? err : BFTNET_ECLOSED;
  }
}

/* The end of a connection whose peer said GO_AWAY (normal termination)
 * first is an orderly one: its EOF, reset or broken pipe is the peer
 * going away, not a failure. */
static bftnet_reason_t conn_end_reason(const net_conn_t *c, bftnet_reason_t reason) {
  /* Only a connection that was up: a dial the peer cut off says why it failed. */
  if (c->goaway_rcvd && c->state == CONN_READY &&
      (reason == BFTNET_REASON_CLOSED_BY_PEER || reason == BFTNET_REASON_RESET ||
       reason == BFTNET_REASON_IO_ERROR))
    return BFTNET_REASON_GOING_AWAY;
  return reason;
}

/* A normal termination: bftnet_stop / bftnet_free and member removal
 * (LOCAL_CLOSE), or an emptied duplicate the pair's leader retires. */
static bool conn_close_is_normal(bftnet_reason_t reason) {
  return reason == BFTNET_REASON_LOCAL_CLOSE || reason == BFTNET_REASON_DUPLICATE;
}

void net__conn_fail(net_conn_t *c, bftnet_reason_t reason, int err, bftnet_counter_id_t counter) {
  if (c->state == CONN_CLOSING) return;
  net_t *n = c->net;
  reason = conn_end_reason(c, reason);
  if ((unsigned)counter < BFTNET_COUNTER_COUNT && reason != BFTNET_REASON_GOING_AWAY)
    bn_counter_add(n->ctr, counter, 1);
  /* A peer that is down is routine (dials retry): info. Bad input: warn. */
  /* A failed dial and a duplicate the pair's leader retired are routine. */
  int lvl = (reason == BFTNET_REASON_IO_ERROR && c->state == CONN_DIALING) ||
                    reason == BFTNET_REASON_DUPLICATE
                ? BN_LOG_INFO
                : BN_LOG_WARN;
  if (reason != BFTNET_REASON_LOCAL_CLOSE && reason != BFTNET_REASON_CLOSED_BY_PEER &&
      reason != BFTNET_REASON_GOING_AWAY) {
    char who[NET_PEER_LABEL_MAX] = "";
    const peerid_t *id = c->expect_peer ? &c->expected : c->peer.len ? &c->peer : NULL;
    if (id) net_peer_label(n, id, who, sizeof who);
    if (reason == BFTNET_REASON_PEER_ID_MISMATCH)
      bn_log_rl(n->cfg.log, &n->rl, bn_now_ns(n->t->seam), lvl,
                "connection to %s: %s: answered as %s", who, bftnet_reason_str(reason),
                c->peer_str);
    else
      bn_log_rl(n->cfg.log, &n->rl, bn_now_ns(n->t->seam), lvl, "connection %s%s: %s (%s)",
                who[0] ? "to " : "", who, bftnet_reason_str(reason), bftnet_strerror(err));
  }
  /* A normal close tells the peer first (yamux GO_AWAY, code 0: normal
   * termination, PROTOCOL.md §5.4); the frame is queued while the
   * connection is still up (a CLOSING one writes nothing new) and the
   * teardown flushes it before it shuts the socket down. */
  if (conn_close_is_normal(reason) && c->state == CONN_READY && c->ymx)
    (void)yamux_session_goaway(c->ymx, YAMUX_GOAWAY_NORMAL);
  if (c->state == CONN_CLOSING) return; /* queueing it failed (out of memory): closed already */
  c->down_reason = reason;
  c->down_err = err;
  c->teardown_pending = true;
  c->was_ready = c->state == CONN_READY;
  c->state = CONN_CLOSING;
  if (c->in_feed == 0)
    net__conn_teardown(c);
  else
    conn_want_flush(c); /* a yamux call is on the stack: tear down from the flush pass */
}

void net_peer_label(net_t *n, const peerid_t *peer, char *out, size_t cap) {
  char id[BFTNET_PEER_ID_MAX] = "";
  peerid_to_string(peer, id, sizeof id);
  const char *name = n->cbs.peer_name ? n->cbs.peer_name(n->ud, peer) : NULL;
  if (name && name[0])
    snprintf(out, cap, "%s (%s)", name, id);
  else
    snprintf(out, cap, "%s", id);
}

void net__conn_oom(net_conn_t *c) {
  net__conn_fail(c, BFTNET_REASON_IO_ERROR, BFTNET_ENOMEM, BFTNET_COUNTER_IO_ERRORS);
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

void net__conn_teardown(net_conn_t *c) {
  net_t *n = c->net;
  bool was_ready = c->was_ready;
  c->teardown_pending = false;
  n->t->ops->timer_free(c->hs_timer);
  c->hs_timer = NULL;
  if (c->cap_timer) n->t->ops->timer_free(c->cap_timer);
  c->cap_timer = NULL;
  n->hooks.conn_down(c, BFTNET_ECLOSED);
  bool graceful = conn_close_is_normal(c->down_reason);
  if (graceful && c->ymx) net__conn_flush(c, true); /* the GO_AWAY net__conn_fail queued */
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
  conn_unlink(c);
  n->t->ops->close(c->sock, graceful);
  bn_counter_add(n->ctr, BFTNET_COUNTER_CONN_CLOSED, 1);
  if (was_ready && n->cbs.on_conn_down) n->cbs.on_conn_down(n->ud, c, c->down_reason, c->down_err);
  if (c->dial_cb) {
    net_dial_cb cb = c->dial_cb;
    c->dial_cb = NULL;
    int derr = reason_to_dial_err(c->down_reason, c->down_err);
    /* A mismatch: the dialer may ask who answered (net_dial_actual_peer). */
    if (derr == BFTNET_EPEERMISMATCH && c->peer.len) n->dial_actual = &c->peer;
    cb(c->dial_ud, NULL, derr);
    n->dial_actual = NULL;
  }
}

void net_conn_close(net_conn_t *c, bftnet_reason_t reason, int err) {
  net__conn_fail(c, reason ? reason : BFTNET_REASON_LOCAL_CLOSE, err, BFTNET_COUNTER_COUNT);
}

static void conn_hs_timeout(void *ud) {
  net_conn_t *c = ud;
  if (c->state == CONN_READY || c->state == CONN_CLOSING) return;
  net__conn_fail(c, BFTNET_REASON_HANDSHAKE_TIMEOUT, BFTNET_ETIMEDOUT,
                 BFTNET_COUNTER_HANDSHAKE_TIMEOUT);
}

/* -------------------------------------------------------------- output */

static void conn_flush_all(void *ud);

static void conn_want_flush(net_conn_t *c) {
  if (c->flush_queued) return;
  net_t *n = c->net;
  c->flush_queued = true;
  c->flush_next = n->flush_list;
  n->flush_list = c;
  n->t->ops->defer(n->t, conn_flush_all, n);
}

void net__conn_out_raw(net_conn_t *c, const void *p, size_t n) {
  BN_ASSERT(!c->tx.has_k);
  if (bn_buf_append(&c->out, p, n) != 0) return net__conn_oom(c);
  conn_want_flush(c);
}

static void frame_seal(net_conn_t *c) {
  if (!c->frame_open) return;
  c->frame_open = false;
  size_t plen = c->out.len - c->frame_start - NET_NOISE_FRAME_HDR;
  if (plen == 0) {
    c->out.len = c->frame_start;
    return;
  }
  uint8_t *f = c->out.data + c->frame_start;
  int rc = noise_encrypt(&c->tx, f + NET_NOISE_FRAME_HDR, plen); /* tag room reserved */
  if (rc < 0) return net__conn_fail(c, BFTNET_REASON_IO_ERROR, rc, BFTNET_COUNTER_IO_ERRORS);
  bn_store_be16(f, (uint16_t)rc);
  c->out.len += BN_NOISE_TAG;
}

static int out_secure_append(net_conn_t *c, const uint8_t *p, size_t n) {
  BN_ASSERT(c->out.off == 0); /* a flush takes all of it or nothing */
  while (n > 0) {
    if (!c->frame_open) {
      if (bn_buf_reserve(&c->out, NET_NOISE_FRAME_HDR + BN_NOISE_TAG + n) != 0)
        return BFTNET_ENOMEM;
      c->frame_start = c->out.len;
      c->out.len += NET_NOISE_FRAME_HDR;
      c->frame_open = true;
    }
    size_t used = c->out.len - c->frame_start - NET_NOISE_FRAME_HDR;
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

void net__conn_out_secure(net_conn_t *c, const uint8_t *a, size_t alen, const uint8_t *b,
                          size_t blen) {
  if (c->state == CONN_CLOSING) return;
  BN_ASSERT(c->tx.has_k);
  if (out_secure_append(c, a, alen) != 0 || (blen && out_secure_append(c, b, blen) != 0))
    return net__conn_oom(c);
  conn_want_flush(c);
}

/* Every frame a yamux session sends (the session's output callback). */
static void conn_yamux_output(void *ud, const uint8_t hdr[BN_YAMUX_HEADER], const uint8_t *body,
                              size_t blen) {
  net_conn_t *c = ud;
  c->in_feed++; /* inside a yamux call: a failure must not free the session */
  net__conn_out_secure(c, hdr, BN_YAMUX_HEADER, body, blen);
  /* Credit goes back at once: libuv reads up to 32 times per turn, and a
   * window update held until the turn ends came back only after the whole
   * socket buffer was read, so the sender stalled on every window. */
  if (hdr[1] == YAMUX_TYPE_WINDOW || hdr[1] == YAMUX_TYPE_PING) c->urgent = true;
  c->in_feed--;
}

static void conn_yamux_goaway(void *ud, uint32_t code) {
  net_conn_t *c = ud;
  /* Existing streams go on; yamux refuses new opens for us, and the
   * connection no longer counts as up for new work (net_conn_iter). A
   * normal termination makes its end an orderly one (conn_end_reason). */
  if (code == YAMUX_GOAWAY_NORMAL) c->goaway_rcvd = c->goaway_frame = true;
}

void net__conn_register(net_t *n) {
  n->hooks.ymx.output = conn_yamux_output;
  n->hooks.ymx.on_goaway = conn_yamux_goaway;
}

/* Hands c->out to the socket (see the transport's write: no copy). While
 * the socket's previous write is in flight the bytes stay in c->out and
 * more are appended; its completion (net__conn_on_drain) flushes again. */
static void conn_write_out(net_conn_t *c, bool all) {
  net_t *n = c->net;
  size_t queued = n->t->ops->write_queued(c->sock);
  if (bn_buf_unread(&c->out) + queued > CONN_QUEUE_HARD_CAP) {
    bn_buf_reset(&c->out);
    return net__conn_fail(c, BFTNET_REASON_LIMIT, BFTNET_ELIMIT, BFTNET_COUNTER_CONN_LIMIT);
  }
  /* In flight: the open Noise frame keeps filling (fewer, fuller frames). */
  if (queued > 0 && !all) return;
  if (c->tx.has_k) frame_seal(c);
  size_t len = bn_buf_unread(&c->out);
  if (len == 0) return;
  int rc = n->t->ops->write(c->sock, &c->out, all);
  c->tx_handed += len - bn_buf_unread(&c->out);
  bn_counter_add(n->ctr, BFTNET_COUNTER_BYTES_OUT, len - bn_buf_unread(&c->out));
  if (rc < 0) {
    bn_buf_reset(&c->out);
    return net__conn_fail(c, BFTNET_REASON_IO_ERROR, rc, BFTNET_COUNTER_IO_ERRORS);
  }
}

static void conn_wake_parked(net_conn_t *c);

void net__conn_flush(net_conn_t *c, bool all) {
  conn_write_out(c, all);
  /* Streams that stopped on our own buffer's high mark go on now, unless
   * the socket itself is backed up (then its drain event wakes them). */
  if (c->state != CONN_CLOSING && c->congested_head && !net__conn_congested(c)) conn_wake_parked(c);
}

/* The flush pass, deferred to the end of the loop's turn: every connection
 * that produced output writes it; teardowns deferred by net__conn_fail run. */
static void conn_flush_all(void *ud) {
  net_t *n = ud;
  while (n->flush_list) {
    net_conn_t *c = n->flush_list;
    n->flush_list = c->flush_next;
    c->flush_queued = false;
    if (c->state != CONN_CLOSING)
      net__conn_flush(c, false);
    else if (c->teardown_pending && c->in_feed == 0)
      net__conn_teardown(c);
  }
}

/* The in-flight cap's re-check: nothing else tells that the kernel's
 * bytes were acknowledged (an ACK wakes no one), so the streams waiting
 * at the cap try again every re-check period (conn_recheck_us). */
static void conn_cap_recheck(void *ud) {
  net_conn_t *c = ud;
  c->cap_armed = false;
  /* How late re-checks come (a busy loop, the timer's slack), averaged:
   * what the link drains meanwhile must fit under the cap, or the less
   * urgent classes leave it idle (conn_cap_update). */
  uint64_t took = bn_now_ns(c->net->t->seam) - c->cap_armed_ns;
  c->recheck_ns = c->recheck_ns ? (7 * c->recheck_ns + took) / 8 : took;
  if (c->state == CONN_READY && c->congested_head && !net__conn_congested(c)) conn_wake_parked(c);
}

/* The re-check period (conn_cap_update): libuv's millisecond where the
 * transport has no microsecond timers. */
static uint32_t conn_recheck_us(const net_conn_t *c) {
  if (!c->net->t->ops->timer_start_us) return 1000u;
  return c->recheck_us ? c->recheck_us : NET_INFLIGHT_RECHECK_US;
}

/* The path's rate (acknowledged bytes over a span, the larger of the last
 * two spans) and round trip, and the cap they make (NET_INFLIGHT_BDP_GAIN's
 * comment). A span the sender left idle measures less than the path can
 * do; the cap then starts from the larger of its floor and the rate seen,
 * and grows by the tick gain each span while the path keeps up. */
static void conn_cap_update(net_conn_t *c, const bn_tx_info_t *ti, uint64_t now) {
  if (ti->min_rtt_us) c->min_rtt_us = ti->min_rtt_us;
  if (ti->mss) c->mss = ti->mss;
  if (c->span_ns == 0 || ti->acked < c->span_acked) { /* the first reading */
    c->span_ns = now;
    c->span_acked = ti->acked;
  } else if (now - c->span_ns >= NET_INFLIGHT_SPAN_NS) {
    c->rate[1] = c->rate[0];
    c->rate[0] = (uint64_t)((double)(ti->acked - c->span_acked) * 1e9 / (double)(now - c->span_ns));
    c->span_ns = now;
    c->span_acked = ti->acked;
  }
  double rate = (double)BN_MAX(c->rate[0], c->rate[1]);
  double bdp = rate * c->min_rtt_us / 1e6 * NET_INFLIGHT_BDP_GAIN;
  /* Two segments at least: a receiver acknowledges at once only when it
   * holds more than a segment unacknowledged, else on its delayed-ACK
   * timer (40 ms on Linux), and the cap would wait for it. On Ethernet two
   * segments are 3 KB, below the floor; on loopback 128 KiB. */
  double segs = 2.0 * c->mss;
  double base = BN_MAX(BN_MAX((double)c->net->cfg.inflight_min, segs), bdp);
  /* Re-checks no more often than the cap needs: as long as the other terms
   * already cover what the path drains meanwhile, within
   * NET_INFLIGHT_RECHECK_US .. 1 ms. Each costs the loop a wakeup and a
   * system call: at 250 us on loopback, where two segments set the cap,
   * four nodes' blocks lost a tenth of their throughput for nothing. */
  double us = rate > 0 ? base / (rate * NET_INFLIGHT_TICK_GAIN) * 1e6 : 0;
  c->recheck_us = (uint32_t)BN_MIN(BN_MAX(us, (double)NET_INFLIGHT_RECHECK_US), 1000.0);
  double period = BN_MAX(conn_recheck_us(c) * 1e3, (double)c->recheck_ns);
  double tick = rate * period / 1e9 * NET_INFLIGHT_TICK_GAIN;
  double cap = BN_MAX(base, tick);
  c->inflight_cap = (uint64_t)BN_MIN(cap, (double)NET_INFLIGHT_MAX);
}

/* What a less urgent stream may write under the cap: the room left, if it
 * is worth a write (at least a NET_INFLIGHT_PIECE_DIV-th of the cap: a
 * cap's worth goes out in a few writes, not in slivers), and at most half
 * the cap. Two writes, two segments, then fit under any cap, and a
 * receiver holding more than a segment unacknowledged acknowledges at
 * once; one segment alone it acknowledges only on its delayed-ACK timer
 * (40 ms on Linux), which starved a cap of one segment on loopback. */
static size_t conn_cap_room(const net_conn_t *c, uint64_t held) {
  uint64_t piece = BN_MAX(c->inflight_cap / NET_INFLIGHT_PIECE_DIV, 1u);
  if (held + piece > c->inflight_cap) return 0;
  return (size_t)BN_MIN(c->inflight_cap - held, (c->inflight_cap + 1) / 2);
}

size_t net__conn_cap_room(net_conn_t *c) {
  net_t *n = c->net;
  if (!n->cfg.paced || !n->cfg.inflight_min || !n->t->ops->sock_tx_info) return SIZE_MAX;
  /* A closing connection writes no data, and its re-check timer is gone
   * (net__conn_teardown): one made now would outlive the connection. */
  if (c->state != CONN_READY) return SIZE_MAX;
  uint64_t now = bn_now_ns(n->t->seam);
  bool rates = c->inflight_cap == 0 || now - c->info_ns >= NET_INFLIGHT_INFO_NS;
  /* The kernel holds at most what it held at the last reading plus what
   * was handed to it since: while that leaves room, no need to ask (this
   * is called for every piece a less urgent class writes, several times a
   * piece on a fast path; a system call each time would be most of its
   * cost). */
  uint64_t mine = bn_buf_unread(&c->out); /* written, not yet handed to the transport */
  if (!rates) {
    size_t room = conn_cap_room(c, c->inflight + (c->tx_handed - c->inflight_handed) + mine);
    if (room) return room;
  }
  bn_tx_info_t ti = {0};
  if (n->t->ops->sock_tx_info(c->sock, rates, &ti) != 0) return SIZE_MAX; /* not known: no cap */
  if (rates) {
    c->info_ns = now;
    conn_cap_update(c, &ti, now);
  }
  /* Handed, but still in the transport's write queue: not the kernel's yet. */
  uint64_t pending = n->t->ops->write_queued(c->sock);
  c->inflight_handed = c->tx_handed - BN_MIN(pending, c->tx_handed);
  c->inflight = ti.queued;
  c->inflight_max = BN_MAX(c->inflight_max, ti.queued);
  size_t room = conn_cap_room(c, ti.queued + pending + mine);
  if (room) return room;
  if (!c->cap_timer && n->t->ops->timer_new(n->t, conn_cap_recheck, c, &c->cap_timer) != 0)
    return SIZE_MAX;   /* no timer to wake the waiting streams: better no cap */
  if (!c->cap_armed) { /* a wait begins: counted once, however many re-checks it takes */
    c->cap_armed = true;
    c->cap_armed_ns = now;
    if (n->t->ops->timer_start_us)
      n->t->ops->timer_start_us(c->cap_timer, conn_recheck_us(c));
    else
      n->t->ops->timer_start(c->cap_timer, conn_recheck_us(c) / 1000u, 0);
    bn_counter_add(n->ctr, BFTNET_COUNTER_INFLIGHT_WAITS, 1);
  }
  return 0;
}

bool net__conn_congested(const net_conn_t *c) {
  const net_t *n = c->net;
  size_t queued = n->t->ops->write_queued(c->sock);
  if (n->cfg.paced) return c->out.len + queued >= NET_PACE_SLACK;
  return c->out.len > CONN_OUT_HIGH_MARK || queued > NET_WRITE_HIGH_MARK;
}

/* A write completed: what accumulated meanwhile goes out, parked streams
 * go on if they can. */
void net__conn_on_drain(void *ud) {
  net_conn_t *c = ud;
  if (c->state != CONN_CLOSING) net__conn_flush(c, false);
}

/* ------------------------------------------------------ parked streams */

/* Parked streams are kept by priority (lower first), first parked first
 * among equals: the order in which they go on. */
void net__conn_park(net_conn_t *c, net_stream_t *s) {
  if (s->congested) return;
  s->congested = true;
  net_stream_t **pp = &c->congested_head;
  while (*pp && (*pp)->prio <= s->prio)
    pp = &(*pp)->congested_next;
  s->congested_next = *pp;
  *pp = s;
}

void net__conn_unpark(net_conn_t *c, net_stream_t *s) {
  /* Parked, or on the list being woken right now. */
  net_stream_t **lists[2] = {&c->congested_head, &c->waking_head};
  for (int i = 0; i < 2; i++)
    for (net_stream_t **pp = lists[i]; *pp; pp = &(*pp)->congested_next)
      if (*pp == s) {
        *pp = s->congested_next;
        i = 2;
        break;
      }
}

/* The connection drained: every live parked stream may write again. */
static bool notify_writable(net_stream_t *s) {
  return s && s->state != NS_DEAD && s->cbs.on_writable;
}

static void conn_wake_parked(net_conn_t *c) {
  /* Only connection congestion parks streams here (yamux's own credit wakes
   * them through on_writable). Detach the list first: a woken stream that
   * congests the connection again parks itself on a fresh list, to be woken
   * by the next flush or drain rather than spinning here. */
  c->waking_head = c->congested_head;
  c->congested_head = NULL;
  while (c->waking_head) {
    net_stream_t *s = c->waking_head;
    c->waking_head = s->congested_next;
    s->congested = false;
    s->congested_next = NULL;
    if (notify_writable(s)) s->cbs.on_writable(s->ud, s);
  }
}
