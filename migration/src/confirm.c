/*
 * confirm.c — the confirmation streams (PROTOCOL.md §11.12). Per
 * connection each side opens one stream `/libp2p/stream-migration/confirm`
 * and writes on it ConfirmStart{incarnation}, then Confirm{id, read_offset}
 * for the logical streams it reads. The answer to that proposal decides how
 * the peer confirms (the core's mode): the echo, or the peer's own
 * confirmation stream, means Confirms (yamux credit is flow control only);
 * `na` means an older peer that confirms with yamux window updates.
 *
 * Sending: a read on L that puts it confirm_bytes (a quarter of the window)
 * past its last report sends at once; anything less goes with the flush
 * timer (MIG_CREDIT_FLUSH_MS); every Confirm due to one stream goes in one
 * write. Receiving: each Confirm frees L's retransmit window up to its
 * offset (the core checks it), and L's writer may go on.
 * Memory: one partial message per inbound stream, one per connection and
 * direction; what yamux did not take of ours is bounded (CTL_OUT_MAX).
 */
#include <stdlib.h>

#include "mig_internal.h"

/* Confirms not yet taken by yamux (the peer withholds credit on our
 * confirmation stream): no new one is queued beyond this. */
#define CTL_OUT_MAX 1024u

static mig_ctl_t *ctl_find(const mig_peer_t *p, const net_conn_t *c, bool outbound) {
  for (mig_ctl_t *k = p->ctls; k; k = k->next)
    if (k->conn == c && k->outbound == outbound && !k->dead) return k;
  return NULL;
}

static mig_ctl_t *ctl_new(mig_peer_t *p, net_conn_t *c, bool outbound) {
  mig_ctl_t *k = calloc(1, sizeof *k);
  if (!k) return NULL;
  if (!outbound && !(k->rd = malloc(sizeof *k->rd))) {
    free(k);
    return NULL;
  }
  if (k->rd) mig_seq_init(k->rd);
  bn_buf_init(&k->out);
  k->p = p;
  k->conn = c;
  k->outbound = outbound;
  k->epoch = p->mig.epoch;
  k->next = p->ctls;
  p->ctls = k;
  return k;
}

/* Net is done with k: it leaves the list at the next reap (defer.c). */
static void ctl_unlink(mig_ctl_t *k) {
  k->gone = true;
  k->dead = true;
  k->ns = NULL;
  k->p->n->reap_needed = true;
}

static void ctl_reset(mig_ctl_t *k) {
  if (k->dead || !k->ns) return;
  k->dead = true;
  net_stream_reset(k->ns); /* net's on_free follows */
}

/* Every live stream of p writes what its window now allows. */
static void pump_all(mig_peer_t *p) {
  for (mig_stream_t *ls = p->streams; ls; ls = ls->next)
    if (ls->m && !ls->final) mig__stream_pump(ls);
}

/* The peer's way of confirming is known: recorded credit may free windows
 * (an older peer), streams may close, writers may go on. */
static void ctl_set_mode(mig_peer_t *p, mig_mode_t mode) {
  if (p->mig.mode == mode) return;
  mig_actions_t acts;
  mig_actions_clear(&acts);
  int rc = mig_reg_set_mode(&p->mig, mode, &acts);
  mig__stream_apply(p, &acts, NULL);
  if (rc == BFTNET_ESTATE) {
    bn_log(p->n->cfg.log, BN_LOG_INFO, "stream migration: %s confirms both with and without %s",
           p->id_str, MIG_CONFIRM_PROTO_ID);
    return;
  }
  if (mode == MIG_MODE_LEGACY) {
    mig__count(p->n, BFTNET_COUNTER_MIG_LEGACY_PEERS, 1);
    bn_log(p->n->cfg.log, BN_LOG_INFO,
           "peer %s does not speak %s: it confirms with yamux window updates", p->id_str,
           MIG_CONFIRM_PROTO_ID);
  }
  pump_all(p);
}

/* ---------------------------------------------------------- ours */

/* Writes what yamux takes of k->out; the rest waits for on_writable. */
static void ctl_write_out(mig_ctl_t *k) {
  while (!k->dead && k->ns && bn_buf_unread(&k->out)) {
    int w = net_stream_write_ctl(k->ns, bn_buf_head(&k->out), bn_buf_unread(&k->out));
    if (w < 0) {
      ctl_reset(k);
      return;
    }
    if (w == 0) return;
    bn_buf_consume(&k->out, (size_t)w);
  }
  if (!bn_buf_unread(&k->out)) bn_buf_reset(&k->out);
}

static void out_ready(void *ud, net_stream_t *s) {
  (void)s;
  mig_ctl_t *k = ud;
  mig_peer_t *p = k->p;
  if (k->dead) return;
  mig__defer_enter(p->n);
  if (k->epoch != p->mig.epoch || p->released) { /* the peer restarted meanwhile */
    ctl_reset(k);
    goto out;
  }
  mig_msg_t m = {
      .type = MIG_MSG_CONFIRM_START, .has_incarnation = true, .incarnation = p->n->incarnation};
  if (mig_msg_encode(&m, &k->out) < 0) {
    ctl_reset(k);
    goto out;
  }
  ctl_write_out(k);
  k->ready = !k->dead;
  if (k->ready) {
    ctl_set_mode(p, MIG_MODE_ON);
    mig__confirm_flush(p);
  }
out:
  mig__defer_leave(p->n);
}

static void out_data(void *ud, net_stream_t *s, const uint8_t *d, size_t n) {
  (void)ud;
  (void)d;
  net_stream_consume(s, n); /* the acceptor writes nothing: discarded */
}

static void out_error(void *ud, net_stream_t *s, int err) {
  (void)s;
  mig_ctl_t *k = ud;
  mig_peer_t *p = k->p;
  bool was_dead = k->dead;
  k->dead = true;
  if (was_dead || k->epoch != p->mig.epoch || p->released) return;
  mig__defer_enter(p->n);
  if (err == BFTNET_ENA)
    ctl_set_mode(p, MIG_MODE_LEGACY);
  else if (err == BFTNET_ERESET) /* not reopened on every carrier event */
    p->ctl_retry_at = mig__now(p->n) + MIG_RETRY_NS;
  mig__defer_leave(p->n);
}

static void out_writable(void *ud, net_stream_t *s) {
  (void)s;
  mig_ctl_t *k = ud;
  if (k->dead) return;
  mig__defer_enter(k->p->n);
  ctl_write_out(k);
  if (!bn_buf_unread(&k->out)) mig__confirm_flush(k->p);
  mig__defer_leave(k->p->n);
}

static void ctl_free_cb(void *ud, net_stream_t *s) {
  (void)s;
  mig_ctl_t *k = ud;
  ctl_unlink(k);
}

static const net_stream_cbs_t out_cbs = {.on_ready = out_ready,
                                         .on_data = out_data,
                                         .on_error = out_error,
                                         .on_writable = out_writable,
                                         .on_free = ctl_free_cb};

void mig__confirm_ensure(mig_peer_t *p, net_conn_t *c) {
  mig_node_t *n = p->n;
  if (!c || p->released || p->plain_only || n->stopping || n->cfg.plain) return;
  if (p->mig.mode == MIG_MODE_LEGACY || !net_conn_ready(c) || ctl_find(p, c, true)) return;
  if (mig__now(n) < p->ctl_retry_at) return;
  mig_ctl_t *k = ctl_new(p, c, true);
  if (!k) return;
  if (net_stream_open(c, MIG_CONFIRM_PROTO_ID, &out_cbs, k, &k->ns) < 0) ctl_unlink(k);
}

/* ---------------------------------------------------------- theirs */

static void ctl_violation(mig_ctl_t *k, const char *what) {
  mig__count(k->p->n, BFTNET_COUNTER_MIG_BAD_MESSAGE, 1);
  bn_log(k->p->n->cfg.log, BN_LOG_INFO, "stream migration: %s: bad confirmation stream (%s)",
         k->p->id_str, what);
  ctl_reset(k);
}

/* One Confirm: L's window frees up to its offset, L's writer goes on. */
static void ctl_on_confirm(mig_peer_t *p, const mig_msg_t *m) {
  mig_actions_t acts;
  mig_actions_clear(&acts);
  mig_stream_t *ls = mig__stream_of(p, mig_reg_find(&p->mig, m->id));
  uint64_t before = ls ? mig_stream_app_confirmed(ls) : 0;
  (void)mig_reg_on_confirm(&p->mig, m->id, m->read_offset, &acts); /* stale or unknown: nothing */
  mig__stream_apply(p, &acts, NULL);
  if (!ls || ls->final) return;
  mig__stream_pump(ls);
  if (!ls->final && !ls->released && ls->cbs.on_confirmed && mig_stream_app_confirmed(ls) != before)
    ls->cbs.on_confirmed(ls->ud, ls);
}

/* A message from the peer's confirmation stream; false: k was reset. */
static bool ctl_in_msg(mig_ctl_t *k, const mig_msg_t *m) {
  mig_peer_t *p = k->p;
  if (!k->started) {
    if (m->type != MIG_MSG_CONFIRM_START) {
      ctl_violation(k, "no ConfirmStart first");
      return false;
    }
    k->started = true;
    k->inc = m->incarnation;
    mig_actions_t acts;
    mig_actions_clear(&acts);
    /* a restart is seen here too; a process the peer has since replaced is refused */
    int rc = mig_reg_on_incarnation(&p->mig, m->incarnation, mig__now(p->n), &acts);
    mig__stream_apply(p, &acts, NULL);
    if (rc < 0) {
      ctl_reset(k);
      return false;
    }
    k->epoch = p->mig.epoch;
    ctl_set_mode(p, MIG_MODE_ON);
    return true;
  }
  switch (m->type) {
  case MIG_MSG_CONFIRM:
    /* From an older incarnation of the peer: its IDs name other streams. */
    if (k->epoch == p->mig.epoch && k->inc == p->mig.peer_inc) ctl_on_confirm(p, m);
    return true;
  case MIG_MSG_RESERVED: /* a later message of this stream: ignored */
    return true;
  default:
    ctl_violation(k, "a message that belongs on a carrier, or a second ConfirmStart");
    return false;
  }
}

static void in_data(void *ud, net_stream_t *s, const uint8_t *d, size_t n) {
  mig_ctl_t *k = ud;
  net_stream_consume(s, n); /* taken at once: at most one partial message is kept */
  if (k->dead) return;
  mig_node_t *node = k->p->n;
  mig__defer_enter(node);
  mig_msg_t m;
  int r;
  while ((r = mig_seq_next(k->rd, &d, &n, &m)) == 1)
    if (!ctl_in_msg(k, &m)) break;
  if (r < 0 && !k->dead) ctl_violation(k, bftnet_strerror(r));
  mig__defer_leave(node);
}

static void in_fin(void *ud, net_stream_t *s) {
  mig_ctl_t *k = ud;
  if (!k->dead) (void)net_stream_close(s); /* the peer is done confirming here */
}

static void in_error(void *ud, net_stream_t *s, int err) {
  (void)s;
  (void)err;
  ((mig_ctl_t *)ud)->dead = true;
}

static const net_stream_cbs_t in_cbs = {
    .on_data = in_data, .on_fin = in_fin, .on_error = in_error, .on_free = ctl_free_cb};

int mig__confirm_accept(mig_peer_t *p, net_conn_t *c, net_stream_t *s) {
  if (ctl_find(p, c, false)) { /* one per connection and direction */
    mig__count(p->n, BFTNET_COUNTER_MIG_STREAM_LIMIT, 1);
    bn_log(p->n->cfg.log, BN_LOG_INFO, "stream migration: %s opened a second confirmation stream",
           p->id_str);
    return BFTNET_ELIMIT;
  }
  mig_ctl_t *k = ctl_new(p, c, false);
  if (!k) return BFTNET_ENOMEM;
  k->ns = s;
  net_stream_set_cbs(s, &in_cbs, k);
  return 0;
}

/* ---------------------------------------------------------- sending */

void mig__confirm_note(mig_peer_t *p, const mig_sm_t *m) {
  uint64_t off;
  if (!m || p->mig.mode != MIG_MODE_ON) return;
  if (mig_sm_confirm_due(m, p->n->confirm_bytes, &off))
    mig__confirm_flush(p);
  else if (mig_sm_confirm_due(m, 1, &off))
    mig__carrier_kick(p);
}

/* Our ready confirmation stream on the connection L rides, or NULL (then
 * one is opened; L is confirmed once it is ready, or by a later Migrate /
 * AckMigrate when L is detached). */
static mig_ctl_t *ctl_for(mig_peer_t *p, const mig_sm_t *m) {
  mig_carrier_t *car = mig__carrier_find(p, m->cur.h);
  if (!car || car->dead || !car->conn) return NULL;
  mig_ctl_t *k = ctl_find(p, car->conn, true);
  if (!k) mig__confirm_ensure(p, car->conn);
  return k && k->ready && bn_buf_unread(&k->out) < CTL_OUT_MAX ? k : NULL;
}

typedef struct due {
  mig_sm_t *m;
  uint64_t off;
  mig_ctl_t *k;
} due_t;

/* Queues the Confirms of due[] that go on k and records them sent. */
static void ctl_send_batch(mig_peer_t *p, due_t *due, size_t nd, mig_ctl_t *k) {
  mig_actions_t acts;
  mig_actions_clear(&acts);
  for (size_t j = 0; j < nd; j++) {
    if (due[j].k != k) continue;
    due[j].k = NULL;
    mig_msg_t c = {.type = MIG_MSG_CONFIRM,
                   .id = due[j].m->id,
                   .has_read_offset = true,
                   .read_offset = due[j].off};
    if (mig_msg_encode(&c, &k->out) < 0) continue;
    (void)mig_sm_confirm_sent(&p->mig, due[j].m, due[j].off, &acts);
  }
  ctl_write_out(k);
  mig__stream_apply(p, &acts, NULL);
}

void mig__confirm_flush(mig_peer_t *p) {
  p->conf_due = false;
  if (p->mig.mode != MIG_MODE_ON || p->released) return;
  due_t due[MIG_MAX_STREAMS];
  size_t nd = 0;
  for (mig_stream_t *ls = p->streams; ls && nd < MIG_MAX_STREAMS; ls = ls->next) {
    uint64_t off;
    if (!ls->m || ls->final || !mig_sm_confirm_due(ls->m, 1, &off)) continue;
    mig_ctl_t *k = ctl_for(p, ls->m);
    if (k) due[nd++] = (due_t){ls->m, off, k};
  }
  for (size_t i = 0; i < nd; i++)
    if (due[i].k) ctl_send_batch(p, due, nd, due[i].k);
}

void mig__confirm_timer(void *ud) {
  mig_node_t *n = ud;
  mig__defer_enter(n);
  mig__carrier_flush(n);
  for (mig_peer_t *p = n->peers; p; p = p->next)
    if (p->conf_due && !p->released) mig__confirm_flush(p);
  mig__defer_leave(n);
}

void mig__confirm_reset_all(mig_peer_t *p) {
  for (mig_ctl_t *k = p->ctls; k; k = k->next)
    ctl_reset(k);
}
