/*
 * sim_sock.c — connections and listeners of the simulated world: the
 * socket half of the seam's transport table (core.h), with the semantics
 * net/src/tcp_uv.c gives over libuv:
 *   - dial: a SYN crosses the link; no listener (or a refusal drawn from
 *     the link) answers ECONNREFUSED, a blocked path retries (1, 2, 4 s)
 *     then ETIMEDOUT; on_connect never runs synchronously;
 *   - write takes everything unless a write is in flight (then nothing,
 *     except the last write of a graceful close): what the kernel buffer
 *     has no room for waits as the write in flight; on_drain follows when
 *     it entered the kernel;
 *   - bytes arrive in order, cut into segments of the link's kind, after
 *     latency + jitter + size / bandwidth; a blocked path stalls them;
 *   - sock_tx_info: the kernel holds what it has not delivered (a byte is
 *     acknowledged when it arrives), the round trip is both latencies;
 *   - close: later callbacks never run except on_close; the kernel sends
 *     what it holds, then a FIN; bytes arriving at a closed socket are
 *     answered with a RST (on_eof -ECONNRESET at the other end); a
 *     graceful close waits up to 2 s for the write in flight.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sim_alloc.h"
#include "sim_internal.h"

#define READ_MAX  (256u * 1024u)
#define LINGER_NS (2 * SIM_S)

static void dir_schedule(sim_dir_t *d);
static void conn_maybe_free(sim_conn_t *c);

/* ------------------------------------------------------------ addresses */

static void sa_make(struct sockaddr_in *out, int host, int addr, unsigned port) {
  memset(out, 0, sizeof *out);
  out->sin_family = AF_INET;
  out->sin_port = htons((uint16_t)port);
  out->sin_addr.s_addr = htonl((10u << 24) | ((unsigned)addr << 8) | (unsigned)(host + 1));
}

static bool sa_parse(sim_world_t *w, const struct sockaddr *sa, int *host, int *addr,
                     unsigned *port) {
  if (sa->sa_family != AF_INET) return false;
  const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
  uint32_t ip = ntohl(in->sin_addr.s_addr);
  int h = (int)(ip & 255) - 1, a = (int)((ip >> 8) & 255);
  if ((ip >> 16) != (10u << 8) || h < 0 || h >= w->cfg.nhosts || a >= SIM_ADDRS) return false;
  *host = h;
  *addr = a;
  *port = ntohs(in->sin_port);
  return true;
}

static int host_of(const sim_conn_t *c, int side) {
  return side == 0 ? c->hd : c->hl;
}

static sim_link_t *link_of(sim_world_t *w, const sim_conn_t *c, int from_side) {
  return &w->link[host_of(c, from_side)][host_of(c, 1 - from_side)];
}

bool sim__path_blocked(sim_world_t *w, const sim_conn_t *c, int from_side) {
  int a = host_of(c, from_side), b = host_of(c, 1 - from_side);
  return w->link[a][b].blocked || w->host_down[a] || w->host_down[b] ||
         w->addr_down[c->hl][c->addr];
}

static uint64_t one_way(sim_world_t *w, const sim_conn_t *c, int from_side) {
  const sim_link_t *l = link_of(w, c, from_side);
  return l->lat_ns + (l->jitter_ns ? sim_rng_below(&w->net_rng, l->jitter_ns + 1) : 0);
}

/* --------------------------------------------------------- directions */

static void stall_remove(sim_world_t *w, sim_dir_t *d) {
  if (!d->stalled) return;
  d->stalled = false;
  for (sim_dir_t **pp = &w->stalled; *pp; pp = &(*pp)->stall_next)
    if (*pp == d) {
      *pp = d->stall_next;
      break;
    }
}

static void dir_kill(sim_dir_t *d) {
  sim_world_t *w = d->conn->w;
  d->dead = true;
  sim_cancel(w, d->ev);
  d->ev = NULL;
  stall_remove(w, d);
  d->off = d->len = d->kbytes = 0;
  d->nsegs = d->seg_head = 0;
  d->nwrites = 0;
  d->wait_read = false;
}

static void dir_push(sim_dir_t *d, const uint8_t *p, size_t n) {
  if (d->off + d->len + n > d->cap) {
    /* Room for twice what is held: each byte moves O(1) times. */
    if (2 * (d->len + n) > d->cap) {
      while (d->cap < 2 * (d->len + n))
        d->cap = d->cap ? 2 * d->cap : 64 * 1024;
      d->buf = sim_realloc(d->buf, d->cap);
    }
    memmove(d->buf, d->buf + d->off, d->len);
    d->off = 0;
  }
  memcpy(d->buf + d->off + d->len, p, n);
  d->len += n;
}

static void seg_push(sim_dir_t *d, uint32_t len, uint64_t now) {
  if (d->nsegs == d->seg_cap) {
    size_t ncap = d->seg_cap ? 2 * d->seg_cap : 64;
    sim_seg_t *s = sim_malloc(ncap * sizeof *s);
    for (size_t i = 0; i < d->nsegs; i++)
      s[i] = d->segs[(d->seg_head + i) % d->seg_cap];
    sim_free(d->segs);
    d->segs = s;
    d->seg_head = 0;
    d->seg_cap = ncap;
  }
  d->segs[(d->seg_head + d->nsegs++) % d->seg_cap] = (sim_seg_t){len, now};
}

static sim_seg_t *seg_head(sim_dir_t *d) {
  return &d->segs[d->seg_head];
}

static void seg_pop(sim_dir_t *d) {
  d->seg_head = (d->seg_head + 1) % d->seg_cap;
  d->nsegs--;
}

/* How the link cuts the next n bytes into segments. */
static uint32_t seg_size(sim_world_t *w, const sim_link_t *l, size_t n) {
  size_t k;
  switch (l->seg) {
  case SIM_SEG_TINY:
    k = sim_rng_range(&w->net_rng, 1, 600);
    break;
  case SIM_SEG_HUGE:
    k = READ_MAX;
    break;
  default:
    k = sim_rng_pct(&w->net_rng, 70) ? 1448 * sim_rng_range(&w->net_rng, 1, 45)
                                     : sim_rng_range(&w->net_rng, 1, 65536);
  }
  return (uint32_t)(k < n ? k : n);
}

static void drain_fire(sim_world_t *w, void *a, uint64_t x);
static void close_fire(sim_world_t *w, void *a, uint64_t x);

static void close_now(bn_tsock_t *s) {
  if (!s->ev_close) s->ev_close = sim__at_tr(s->conn->w, s->tr, s->conn->w->now, close_fire, s, 0);
}

/* A graceful close's writes have entered the kernel (or waited long enough). */
static void linger_end(bn_tsock_t *s) {
  sim_dir_t *out = &s->conn->dir[s->side];
  sim_cancel(s->conn->w, s->ev_linger);
  s->ev_linger = NULL;
  s->linger = false;
  out->len = out->kbytes; /* what did not make it is dropped */
  out->nwrites = 0;
  out->fin = true;
  dir_schedule(out);
  close_now(s);
}

/* Moves waiting user bytes into the kernel while it has room. */
static void dir_fill(sim_dir_t *d) {
  sim_world_t *w = d->conn->w;
  if (d->dead) return;
  size_t room = w->cfg.kernel_buf > d->kbytes ? w->cfg.kernel_buf - d->kbytes : 0;
  size_t move = d->len - d->kbytes < room ? d->len - d->kbytes : room;
  const sim_link_t *l = link_of(w, d->conn, d->side);
  while (move) {
    uint32_t k = seg_size(w, l, move);
    seg_push(d, k, w->now);
    d->kbytes += k;
    move -= k;
  }
  bn_tsock_t *s = &d->conn->ep[d->side];
  if (d->len == d->kbytes && d->nwrites) {
    d->nwrites = 0;
    if (s->linger)
      linger_end(s);
    else if (!s->closing && !s->zombie && !s->ev_drain)
      s->ev_drain = sim__at_tr(w, s->tr, w->now, drain_fire, s, 0);
  }
  dir_schedule(d);
}

static void dir_deliver(sim_world_t *w, void *a, uint64_t x);

/* Schedules the arrival of the head segment (or the FIN). */
static void dir_schedule(sim_dir_t *d) {
  sim_world_t *w = d->conn->w;
  if (d->ev || d->dead || d->stalled || d->wait_read) return;
  if (d->nsegs == 0 && !(d->fin && !d->fin_done && d->len == 0)) return;
  const sim_link_t *l = link_of(w, d->conn, d->side);
  uint64_t sent = d->nsegs ? seg_head(d)->sent_at : w->now;
  uint64_t at = sent + one_way(w, d->conn, d->side);
  if (at < d->last_arrival) at = d->last_arrival;
  if (at < d->not_before) at = d->not_before;
  if (d->nsegs) at += (uint64_t)seg_head(d)->len * l->ns_per_kib / 1024;
  if (at < d->hold_until) at = d->hold_until;
  d->ev = sim_at(w, at, dir_deliver, d, 0);
}

static void stall(sim_world_t *w, sim_dir_t *d) {
  if (d->stalled) return;
  d->stalled = true;
  d->stall_next = w->stalled;
  w->stalled = d;
}

static void eof_fire(sim_world_t *w, void *a, uint64_t x) {
  (void)w;
  bn_tsock_t *s = a;
  s->ev_eof = NULL;
  if (s->closing || s->zombie || !s->open) return;
  s->cbs.on_eof(s->ud, (int)(int64_t)x);
}

/* The reads of s end with err (0: FIN, else a reset). */
static void sock_eof(bn_tsock_t *s, int err) {
  if (!s->open || s->closing || s->zombie || s->eof) return;
  s->eof = true;
  s->reading = false;
  sim_world_t *w = s->conn->w;
  s->ev_eof = sim__at_tr(w, s->tr, w->now, eof_fire, s, (uint64_t)(int64_t)err);
}

/* A RST reaches ep[side]: both directions die. */
static void rst_fire(sim_world_t *w, void *a, uint64_t side) {
  (void)w;
  sim_conn_t *c = a;
  c->ev_rst[side] = NULL;
  bn_tsock_t *s = &c->ep[side];
  if (s->kstate == K_OPEN) s->kstate = K_RESET;
  dir_kill(&c->dir[0]);
  dir_kill(&c->dir[1]);
  sock_eof(s, -ECONNRESET);
}

static void send_rst(sim_conn_t *c, int to_side) {
  sim_world_t *w = c->w;
  if (c->ev_rst[to_side]) return;
  dir_kill(&c->dir[1 - to_side]);
  c->ev_rst[to_side] =
      sim_at(w, w->now + one_way(w, c, 1 - to_side), rst_fire, c, (uint64_t)to_side);
}

/* A middlebox's cut: a RST to both ends, or a FIN to the receiver. */
static void dir_cut(sim_dir_t *d) {
  sim_conn_t *c = d->conn;
  d->cut_armed = false;
  if (d->cut_fin) {
    bn_tsock_t *dst = &c->ep[1 - d->side];
    dir_kill(d);
    sock_eof(dst, 0);
    return;
  }
  for (int i = 0; i < 2; i++)
    if (c->ep[i].kstate == K_OPEN) c->ep[i].kstate = K_RESET;
  dir_kill(&c->dir[0]);
  dir_kill(&c->dir[1]);
  sock_eof(&c->ep[0], -ECONNRESET);
  sock_eof(&c->ep[1], -ECONNRESET);
}

/* The head segment arrives (with those that arrived with it), or the FIN. */
static void dir_deliver(sim_world_t *w, void *a, uint64_t x) {
  (void)x;
  sim_dir_t *d = a;
  sim_conn_t *c = d->conn;
  bn_tsock_t *dst = &c->ep[1 - d->side];
  d->ev = NULL;
  if (d->dead) return;
  if (sim__path_blocked(w, c, d->side) || dst->kstate == K_GONE) return stall(w, d);
  if (dst->kstate != K_OPEN) {
    if (d->nsegs) send_rst(c, d->side);
    d->fin_done = true;
    return;
  }
  if (!dst->reading) {
    d->wait_read = true;
    return;
  }
  if (d->nsegs == 0) { /* the FIN */
    d->fin_done = true;
    return sock_eof(dst, 0);
  }
  size_t n = seg_head(d)->len;
  seg_pop(d);
  while (d->nsegs && n + seg_head(d)->len <= READ_MAX &&
         seg_head(d)->sent_at + link_of(w, c, d->side)->lat_ns <= w->now &&
         sim_rng_pct(&w->net_rng, w->cfg.coalesce_pct)) {
    n += seg_head(d)->len;
    seg_pop(d);
  }
  bool cut = false;
  if (d->cut_armed && d->delivered + n >= d->cut_at) {
    size_t keep = (size_t)(d->cut_at - d->delivered);
    cut = true;
    n = keep; /* the rest is lost with the cut */
  }
  memcpy(w->rbuf, d->buf + d->off, n);
  d->off += n;
  d->len -= n;
  d->kbytes -= n;
  d->delivered += n;
  d->last_arrival = w->now;
  if (!cut) {
    dir_fill(d);
    dir_schedule(d);
  }
  sim_trace(w, n);
  if (n) dst->cbs.on_read(dst->ud, w->rbuf, n);
  if (cut && !d->dead) dir_cut(d);
}

/* ------------------------------------------------------------- sockets */

static void sock_link(sim_tr_t *t, bn_tsock_t *s) {
  s->tr = t;
  s->open = true;
  s->kstate = K_OPEN;
  s->tr_next = t->socks;
  if (t->socks) t->socks->tr_prev = s;
  t->socks = s;
  t->nsocks++;
}

static void sock_unlink(bn_tsock_t *s) {
  sim_tr_t *t = s->tr;
  if (s->tr_prev)
    s->tr_prev->tr_next = s->tr_next;
  else
    t->socks = s->tr_next;
  if (s->tr_next) s->tr_next->tr_prev = s->tr_prev;
  t->nsocks--;
}

static void drain_fire(sim_world_t *w, void *a, uint64_t x) {
  (void)w;
  (void)x;
  bn_tsock_t *s = a;
  s->ev_drain = NULL;
  if (!s->closing && !s->zombie && s->cbs.on_drain) s->cbs.on_drain(s->ud);
}

static void close_fire(sim_world_t *w, void *a, uint64_t x) {
  (void)w;
  (void)x;
  bn_tsock_t *s = a;
  s->ev_close = NULL;
  s->open = false;
  sock_unlink(s);
  if (s->cbs.on_close) s->cbs.on_close(s->ud);
  conn_maybe_free(s->conn);
}

static void linger_fire(sim_world_t *w, void *a, uint64_t x) {
  (void)w;
  (void)x;
  bn_tsock_t *s = a;
  s->ev_linger = NULL;
  linger_end(s);
}

static void sock_set_cbs(bn_tsock_t *s, const bn_tsock_cbs_t *cbs, void *ud) {
  s->cbs = *cbs;
  s->ud = ud;
}

static int sock_read_start(bn_tsock_t *s) {
  if (s->closing) return BFTNET_ECLOSED;
  if (s->eof) return 0;
  s->reading = true;
  sim_dir_t *in = &s->conn->dir[1 - s->side];
  if (in->wait_read) {
    in->wait_read = false;
    dir_schedule(in);
  }
  return 0;
}

static int sock_write(bn_tsock_t *s, bn_buf_t *b, bool all) {
  if (s->closing) return BFTNET_ECLOSED;
  size_t n = bn_buf_unread(b);
  if (n == 0) return 0;
  sim_dir_t *d = &s->conn->dir[s->side];
  if (s->kstate == K_RESET) return -EPIPE;
  if (s->zombie || d->dead || d->fin) { /* nobody will see these bytes */
    bn_buf_reset(b);
    return 0;
  }
  if (d->nwrites && (!all || d->nwrites == 2)) return 0;
  /* What the kernel has no room for becomes the write in flight (no copy
   * in tcp_uv.c: a buffer swap; here a copy, which nobody can observe). */
  size_t room = s->conn->w->cfg.kernel_buf > d->kbytes ? s->conn->w->cfg.kernel_buf - d->kbytes : 0;
  bool fits = d->len - d->kbytes + n <= room;
  dir_push(d, bn_buf_head(b), n);
  bn_buf_reset(b);
  if (!fits) d->nwrites++;
  dir_fill(d);
  return 0;
}

static size_t sock_write_queued(const bn_tsock_t *s) {
  const sim_dir_t *d = &s->conn->dir[s->side];
  return d->len - d->kbytes;
}

/* What a Linux kernel tells of the sending side (SIOCOUTQ, TCP_INFO), for
 * the in-flight cap: here a byte is acknowledged when it is delivered, so
 * the kernel holds what it has not delivered yet; the smallest round trip
 * is the two directions' latencies without jitter. */
static int sock_tx_info(const bn_tsock_t *s, bool rates, bn_tx_info_t *out) {
  if (s->closing || s->zombie) return BFTNET_ECLOSED;
  const sim_dir_t *d = &s->conn->dir[s->side];
  out->queued = d->kbytes;
  if (!rates) return 0;
  sim_world_t *w = s->conn->w;
  out->acked = d->delivered;
  uint64_t rtt = link_of(w, s->conn, s->side)->lat_ns + link_of(w, s->conn, 1 - s->side)->lat_ns;
  out->min_rtt_us = (uint32_t)(rtt / 1000 ? rtt / 1000 : 1);
  return 0;
}

static int sock_peer_addr(const bn_tsock_t *s, struct sockaddr_storage *out) {
  memset(out, 0, sizeof *out);
  memcpy(out, &s->peer, sizeof s->peer);
  return 0;
}

static void sock_close(bn_tsock_t *s, bool graceful) {
  if (s->closing) return;
  sim_world_t *w = s->conn->w;
  s->closing = true;
  s->reading = false;
  sim_cancel(w, s->ev_conn);
  sim_cancel(w, s->ev_drain);
  sim_cancel(w, s->ev_eof);
  s->ev_conn = s->ev_drain = s->ev_eof = NULL;
  if (s->zombie) return close_now(s);
  if (s->kstate == K_OPEN) s->kstate = K_CLOSED;
  sim_dir_t *out = &s->conn->dir[s->side];
  if (graceful && out->len > out->kbytes && !out->dead) {
    s->linger = true;
    s->ev_linger = sim__at_tr(w, s->tr, w->now + LINGER_NS, linger_fire, s, 0);
    return;
  }
  out->len = out->kbytes;
  out->nwrites = 0;
  out->fin = true;
  dir_schedule(out);
  close_now(s);
}

/* -------------------------------------------------------------- dialing */

static void conn_fire(sim_world_t *w, void *a, uint64_t status) {
  (void)w;
  bn_tsock_t *s = a;
  s->ev_conn = NULL;
  if (s->closing || s->zombie) return;
  s->cbs.on_connect(s->ud, (int)(int64_t)status);
}

static void conn_result(bn_tsock_t *s, uint64_t delay, int status) {
  sim_world_t *w = s->conn->w;
  s->ev_conn = sim__at_tr(w, s->tr, w->now + delay, conn_fire, s, (uint64_t)(int64_t)status);
}

static bn_tlistener_t *listener_find(sim_world_t *w, int host, int addr, unsigned port) {
  for (bn_tlistener_t *l = w->listeners; l; l = l->next)
    if (l->tr->host == host && l->addr == addr && l->port == port) return l;
  return NULL;
}

/* The SYN reaches the listener's host (or is lost on a blocked path). */
static void syn_fire(sim_world_t *w, void *a, uint64_t x) {
  (void)x;
  sim_conn_t *c = a;
  bn_tsock_t *d = &c->ep[0];
  c->ev_syn = NULL;
  if (d->closing || d->zombie) return;
  if (sim__path_blocked(w, c, 0) || sim__path_blocked(w, c, 1)) {
    if (++c->syn_tries <= 3) {
      c->ev_syn = sim_at(w, w->now + (SIM_S << (c->syn_tries - 1)), syn_fire, c, 0);
      return;
    }
    return conn_result(d, 0, -ETIMEDOUT);
  }
  bn_tlistener_t *l = listener_find(w, c->hl, c->addr, c->port);
  if (!l || sim_rng_pct(&w->net_rng, w->link[c->hd][c->hl].refuse_pct))
    return conn_result(d, one_way(w, c, 1), -ECONNREFUSED);
  bn_tsock_t *s = &c->ep[1];
  sock_link(l->tr, s);
  sa_make(&s->local, c->hl, c->addr, c->port);
  s->peer = d->local;
  conn_result(d, one_way(w, c, 1), 0);
  l->cb(l->ud, s);
}

static void dir_init(sim_conn_t *c, int side) {
  c->dir[side].conn = c;
  c->dir[side].side = side;
}

static int sock_dial(bn_transport_t *bt, const struct sockaddr *sa, bn_tsock_t **out) {
  sim_tr_t *t = (sim_tr_t *)bt;
  sim_world_t *w = t->w;
  int host, addr;
  unsigned port;
  if (t->dead) return -ENETDOWN;
  if (!sa_parse(w, sa, &host, &addr, &port)) return -EHOSTUNREACH;
  sim_conn_t *c = sim_calloc(1, sizeof *c);
  c->w = w;
  c->hd = t->host;
  c->hl = host;
  c->addr = addr;
  c->port = port;
  for (int i = 0; i < 2; i++) {
    c->ep[i].conn = c;
    c->ep[i].side = i;
    dir_init(c, i);
  }
  bn_tsock_t *d = &c->ep[0];
  sock_link(t, d);
  sa_make(&d->local, t->host, addr, w->next_port++);
  memcpy(&d->peer, sa, sizeof d->peer);
  c->next = w->conns;
  if (w->conns) w->conns->prev = c;
  w->conns = c;
  c->ev_syn = sim_at(w, w->now + one_way(w, c, 0), syn_fire, c, 0);
  *out = d;
  return 0;
}

/* Once both handles are closed nothing observable is left. */
static void conn_maybe_free(sim_conn_t *c) {
  if (c->ep[0].open || c->ep[1].open) return;
  sim_world_t *w = c->w;
  sim_cancel(w, c->ev_syn);
  for (int i = 0; i < 2; i++) {
    sim_cancel(w, c->ev_rst[i]);
    dir_kill(&c->dir[i]);
    sim_free(c->dir[i].buf);
    sim_free(c->dir[i].segs);
  }
  if (c->prev)
    c->prev->next = c->next;
  else
    w->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  sim_free(c);
}

/* ------------------------------------------------------------ listeners */

static int l_listen(bn_transport_t *bt, const struct sockaddr *sa, bn_accept_cb cb, void *ud,
                    bn_tlistener_t **out) {
  sim_tr_t *t = (sim_tr_t *)bt;
  sim_world_t *w = t->w;
  int host, addr;
  unsigned port;
  if (t->dead) return -ENETDOWN;
  if (!sa_parse(w, sa, &host, &addr, &port) || host != t->host) return -EADDRNOTAVAIL;
  if (port == 0) port = w->next_port++;
  if (listener_find(w, host, addr, port)) return -EADDRINUSE;
  bn_tlistener_t *l = sim_calloc(1, sizeof *l);
  *l =
      (bn_tlistener_t){.tr = t, .addr = addr, .port = port, .cb = cb, .ud = ud, .registered = true};
  l->next = w->listeners;
  w->listeners = l;
  t->nlisteners++;
  *out = l;
  return 0;
}

static int l_addr(bn_tlistener_t *l, struct sockaddr_storage *out) {
  memset(out, 0, sizeof *out);
  sa_make((struct sockaddr_in *)out, l->tr->host, l->addr, l->port);
  return 0;
}

static void l_unregister(sim_world_t *w, bn_tlistener_t *l) {
  if (!l->registered) return;
  l->registered = false;
  for (bn_tlistener_t **pp = &w->listeners; *pp; pp = &(*pp)->next)
    if (*pp == l) {
      *pp = l->next;
      break;
    }
}

static void l_close(bn_tlistener_t *l) {
  l_unregister(l->tr->w, l);
  l->tr->nlisteners--;
  sim_free(l);
}

void sim__sock_fill_ops(bn_transport_ops_t *ops) {
  ops->listen = l_listen;
  ops->listener_addr = l_addr;
  ops->listener_close = l_close;
  ops->dial = sock_dial;
  ops->sock_set_cbs = sock_set_cbs;
  ops->read_start = sock_read_start;
  ops->write = sock_write;
  ops->write_queued = sock_write_queued;
  ops->sock_tx_info = sock_tx_info;
  ops->peer_addr = sock_peer_addr;
  ops->close = sock_close;
}

/* --------------------------------------------------------- crash, heal */

void sim__sock_crash(sim_tr_t *t, bool machine) {
  sim_world_t *w = t->w;
  for (bn_tsock_t *s = t->socks; s; s = s->tr_next) {
    sim_dir_t *out = &s->conn->dir[s->side];
    s->zombie = true;
    sim_cancel(w, s->ev_conn);
    sim_cancel(w, s->ev_drain);
    sim_cancel(w, s->ev_eof);
    s->ev_conn = s->ev_drain = s->ev_eof = NULL;
    if (s->linger) { /* the kernel takes over; the handle closes at once */
      sim_cancel(w, s->ev_linger);
      s->ev_linger = NULL;
      s->linger = false;
      close_now(s);
    }
    if (machine) { /* nothing more leaves; what arrives waits for the host */
      if (s->kstate == K_OPEN || s->kstate == K_CLOSED) s->kstate = K_GONE;
      dir_kill(out);
    } else if (!out->dead) { /* the kernel closes it: what it holds, then a FIN */
      if (s->kstate == K_OPEN) s->kstate = K_CLOSED;
      out->len = out->kbytes;
      out->nwrites = 0;
      out->fin = true;
      dir_schedule(out);
    }
  }
  for (bn_tlistener_t *l = w->listeners, *next; l; l = next) {
    next = l->next;
    if (l->tr == t) l_unregister(w, l);
  }
}

void sim__sock_host_up(sim_world_t *w, int host) {
  for (sim_conn_t *c = w->conns; c; c = c->next)
    for (int i = 0; i < 2; i++)
      if (c->ep[i].kstate == K_GONE && host_of(c, i) == host) c->ep[i].kstate = K_CLOSED;
}

void sim_net_changed(sim_world_t *w) {
  sim_dir_t *list = w->stalled;
  w->stalled = NULL;
  while (list) {
    sim_dir_t *d = list;
    list = d->stall_next;
    d->stalled = false;
    if (sim__path_blocked(w, d->conn, d->side) || d->conn->ep[1 - d->side].kstate == K_GONE) {
      stall(w, d);
      continue;
    }
    d->not_before = w->now + link_of(w, d->conn, d->side)->lat_ns;
    dir_schedule(d);
  }
}

static bool conn_between(const sim_conn_t *c, int a, int b) {
  if (a < 0) return true;
  if (b < 0) return c->hd == a || c->hl == a;
  return (c->hd == a && c->hl == b) || (c->hd == b && c->hl == a);
}

static bool conn_live(const sim_conn_t *c) {
  return c->ep[0].kstate == K_OPEN && c->ep[1].open && c->ep[1].kstate == K_OPEN;
}

int sim_net_reset(sim_world_t *w, int a, int b, unsigned pct) {
  int hit = 0;
  for (sim_conn_t *c = w->conns; c; c = c->next) {
    if (!conn_between(c, a, b) || !conn_live(c) || !sim_rng_pct(&w->net_rng, pct)) continue;
    c->dir[0].cut_fin = false;
    dir_cut(&c->dir[0]);
    hit++;
  }
  return hit;
}

int sim_net_cut_at(sim_world_t *w, int a, int b, uint64_t after, bool fin, unsigned pct) {
  int hit = 0;
  for (sim_conn_t *c = w->conns; c; c = c->next) {
    if (!conn_between(c, a, b) || !conn_live(c) || !sim_rng_pct(&w->net_rng, pct)) continue;
    sim_dir_t *d = &c->dir[sim_rng_below(&w->net_rng, 2)];
    if (d->dead) continue;
    d->cut_armed = true;
    d->cut_fin = fin;
    d->cut_at = d->delivered + after;
    hit++;
  }
  return hit;
}

static void dir_hold(sim_dir_t *d, uint64_t until) {
  if (d->dead) return;
  if (d->hold_until < until) d->hold_until = until;
  if (d->ev) { /* its head segment was due earlier: due at the end of the hold now */
    sim_cancel(d->conn->w, d->ev);
    d->ev = NULL;
    dir_schedule(d);
  }
}

int sim_net_hold(sim_world_t *w, int a, int b, bool both, uint64_t until, unsigned pct) {
  int hit = 0;
  for (sim_conn_t *c = w->conns; c; c = c->next) {
    if (!conn_between(c, a, b) || !conn_live(c) || !sim_rng_pct(&w->net_rng, pct)) continue;
    int side = c->hd == a ? 0 : 1;
    dir_hold(&c->dir[side], until);
    if (both) dir_hold(&c->dir[1 - side], until);
    hit++;
  }
  return hit;
}

int sim_net_conns(sim_world_t *w) {
  int n = 0;
  for (sim_conn_t *c = w->conns; c; c = c->next)
    n += conn_live(c);
  return n;
}

int sim_net_stranger(sim_world_t *w, int host, int addr, unsigned port, const uint8_t *p,
                     size_t n) {
  bn_tlistener_t *l = listener_find(w, host, addr, port);
  if (!l || l->tr->dead) return -1;
  sim_conn_t *c = sim_calloc(1, sizeof *c);
  *c = (sim_conn_t){.w = w, .hd = host, .hl = host, .addr = addr, .port = port, .stranger = true};
  for (int i = 0; i < 2; i++) {
    c->ep[i].conn = c;
    c->ep[i].side = i;
    dir_init(c, i);
  }
  c->next = w->conns;
  if (w->conns) w->conns->prev = c;
  w->conns = c;
  bn_tsock_t *s = &c->ep[1]; /* ep[0] has no handle: it never reads, never closes */
  sock_link(l->tr, s);
  sa_make(&s->local, host, addr, port);
  s->peer.sin_family = AF_INET;
  s->peer.sin_port = htons(4444);
  s->peer.sin_addr.s_addr = htonl(0xc0000207); /* 192.0.2.7 */
  l->cb(l->ud, s);
  dir_push(&c->dir[0], p, n);
  c->dir[0].fin = true;
  dir_fill(&c->dir[0]);
  return 0;
}

int sim_net_strangers_open(sim_world_t *w) {
  int n = 0;
  for (sim_conn_t *c = w->conns; c; c = c->next)
    n += c->stranger && c->ep[1].open;
  return n;
}

void sim__sock_world_free(sim_world_t *w) {
  BN_ASSERT(w->listeners == NULL);
  /* Connections whose both handles closed are gone already; none may remain. */
  BN_ASSERT(w->conns == NULL);
}

void sim_net_dump(sim_world_t *w, FILE *f) {
  for (sim_conn_t *c = w->conns; c; c = c->next) {
    fprintf(f, "  conn n%d:%u -> n%d/a%d:%u syn %d\n", c->hd, ntohs(c->ep[0].local.sin_port), c->hl,
            c->addr, c->port, c->ev_syn != NULL);
    for (int i = 0; i < 2; i++) {
      const bn_tsock_t *s = &c->ep[i];
      const sim_dir_t *d = &c->dir[i];
      fprintf(
          f,
          "    ep%d open %d closing %d reading %d eof %d zombie %d linger %d k %d | out: len %zu "
          "kernel %zu segs %zu writes %d fin %d/%d dead %d stalled %d wait_read %d delivered "
          "%llu cut %d@%llu ev %d\n",
          i, s->open, s->closing, s->reading, s->eof, s->zombie, s->linger, s->kstate, d->len,
          d->kbytes, d->nsegs, d->nwrites, d->fin, d->fin_done, d->dead, d->stalled, d->wait_read,
          (unsigned long long)d->delivered, d->cut_armed, (unsigned long long)d->cut_at,
          d->ev != NULL);
    }
  }
}
