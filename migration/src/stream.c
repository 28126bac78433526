/*
 * stream.c — the logical stream as the layer above sees it: the inner
 * negotiation of L's application protocol (`/bftnet/msg/1.0.0` or a
 * traffic class's) at the start of L's bytes, the core's
 * actions carried out (mig__stream_apply), the bytes pumped onto the
 * current carrier, the events (MIGRATED, DETACHED, RESUMED, ...), the
 * consumer's credit, and the mig_stream_* API but mig_stream_open (io.c).
 */
#include <stdio.h>
#include <stdlib.h>

#include "mig_internal.h"

/* ---------------------------------------------------------- lookups */

mig_stream_t *mig__stream_of(const mig_peer_t *p, const mig_sm_t *m) {
  if (!m) return NULL;
  for (mig_stream_t *ls = p->streams; ls; ls = ls->next)
    if (ls->m == m) return ls;
  return NULL;
}

/* A final stream (aborted or closed) by its last ID: the core no longer
 * finds it by ID. */
mig_stream_t *mig__stream_by_id(const mig_peer_t *p, uint64_t id) {
  mig_sm_t *m = mig_reg_find(&p->mig, id);
  if (m) return mig__stream_of(p, m);
  for (mig_stream_t *ls = p->streams; ls; ls = ls->next)
    if (ls->m && ls->m->id == id && !ls->final) return ls;
  return NULL;
}

mig_stream_t *mig__stream_of_carrier(const mig_peer_t *p, const mig_carrier_t *car) {
  if (car->plain_ls) return car->plain_ls;
  return mig__stream_of(p, mig_reg_find_carrier(&p->mig, car->h));
}

mig_stream_t *mig__stream_new(mig_peer_t *p, bool we_opened) {
  mig_stream_t *ls = calloc(1, sizeof *ls);
  if (!ls) return NULL;
  ls->p = p;
  ls->we_opened = we_opened;
  ls->app = -1;
  ls->prio = 128;
  bn_buf_init(&ls->neg);
  bn_buf_init(&ls->carry);
  ls->next = p->streams;
  p->streams = ls;
  return ls;
}

/* ----------------------------------------------------------- events */

void mig__stream_set_conn(mig_stream_t *ls, net_conn_t *c) {
  ls->cur_addr[0] = '\0';
  if (c) net_conn_remote_addr(c, ls->cur_addr, sizeof ls->cur_addr);
  if (c) ls->last_conn = net_conn_seq(c);
}

uint64_t mig_stream_last_conn(const mig_stream_t *ls) {
  return ls->last_conn;
}

void mig__stream_emit(mig_stream_t *ls, const mig_event_t *ev) {
  if (!ls->released && ls->cbs.on_event) ls->cbs.on_event(ls->ud, ls, ev);
}

void mig__stream_final(mig_stream_t *ls, mig_ev_type_t type, const char *reason) {
  if (ls->final) return;
  ls->final = true;
  if (ls->refused) reason = "protocol_na";
  mig_event_t ev = {.type = type,
                    .stream_id = ls->m ? ls->m->id : 0,
                    .reason = reason,
                    .cause = ls->cause,
                    .refused = ls->refused};
  if (type == MIG_EV_ABORTED) {
    mig__count(ls->p->n, BFTNET_COUNTER_MIG_ABORTED, 1);
    bn_log(ls->p->n->cfg.log, BN_LOG_INFO, "stream %llu with %s aborted: %s",
           (unsigned long long)ev.stream_id, MIG_WHO(ls->p), reason);
  }
  mig__stream_emit(ls, &ev);
  /* A stream the peer opened that no one above took (its negotiation did
   * not finish, or named a protocol we do not serve) lets itself go. */
  if (!ls->we_opened && !ls->handed_up && !ls->released) {
    ls->released = true;
    ls->p->n->reap_needed = true;
  }
}

/* -------------------------------------------- the inner negotiation */

int mig__stream_app_index(const mig_node_t *n, const char *text, size_t len) {
  for (unsigned i = 0; i < n->napps; i++)
    if (ms_eq(text, len, n->apps[i])) return (int)i;
  return -1;
}

/* Writes our multistream header (once) and `proto` into L: part of L's
 * bytes (PROTOCOL.md 11.2). */
static int write_ms(mig_stream_t *ls, const char *proto) {
  bn_buf_t b;
  bn_buf_init(&b);
  int rc = ls->neg_hdr_sent ? 0 : ms_append(&b, MS_PROTO_ID);
  if (rc == 0) rc = ms_append(&b, proto);
  if (rc == 0) rc = mig_sm_write(&ls->p->mig, ls->m, b.data, b.len);
  if (rc == 0) ls->neg_hdr_sent = true;
  bn_buf_free(&b);
  return rc;
}

/* Header + protocol (the opener's proposal or the acceptor's echo). */
int mig__stream_write_neg(mig_stream_t *ls) {
  BN_ASSERT(ls->app >= 0 && (unsigned)ls->app < ls->p->n->napps);
  int rc = write_ms(ls, ls->p->n->apps[ls->app]);
  if (rc == 0) ls->app_base = ls->m->w_written;
  return rc;
}

void mig__stream_abort_local(mig_stream_t *ls, const char *why) {
  if (!ls->m || ls->final) return;
  bn_log(ls->p->n->cfg.log, BN_LOG_INFO, "stream with %s: %s", MIG_WHO(ls->p), why);
  mig_actions_t acts;
  mig_actions_clear(&acts);
  if (mig_sm_abort(&ls->p->mig, ls->m, &acts) == 0) mig__stream_apply(ls->p, &acts, NULL);
}

static void ls_app_data(mig_stream_t *ls, const uint8_t *p, size_t n) {
  if (!n || ls->final) return;
  if (ls->we_opened || ls->released || !ls->cbs.on_data)
    return; /* nothing flows back to the opener */
  ls->debt += n;
  if (ls->m) ls->m->r_held = ls->debt; /* not reported read until released */
  ls->cbs.on_data(ls->ud, ls, p, n);
}

static void ls_notify_writable(mig_stream_t *ls);

/* Our stream of a traffic class (any protocol but the first) carries no
 * application bytes before the peer echoed its protocol: a peer without
 * the class answers na, and what was written would be lost with the
 * stream; the messages wait in their ring instead. The first protocol is
 * pipelined as it always was (every bftnet and libp2p peer serves it). */
static bool ls_takes_data(const mig_stream_t *ls) {
  return ls->neg_done || ls->app <= 0 || !ls->we_opened;
}

/* The acceptor agreed on L's protocol: the node takes L (or refuses it). */
static bool ls_hand_up(mig_stream_t *ls) {
  mig_peer_t *p = ls->p;
  mig_node_t *n = p->n;
  int rc = n->cbs.on_stream && !p->released ? n->cbs.on_stream(n->ud, p, ls) : BFTNET_ENOTMEMBER;
  if (rc < 0) {
    ls->released = true; /* no events */
    mig__stream_abort_local(ls, "refused by the application layer");
    n->reap_needed = true;
    return false;
  }
  ls->handed_up = true;
  return true;
}

/* One message of the inner negotiation after the header: 1 agreed, 0 go
 * on, < 0 a violation. The opener expects its protocol's echo or `na`
 * (refused); the acceptor answers each proposal, `na` to one it does not
 * serve (as many as multistream allows), the echo to one it does. */
static int ls_neg_proto(mig_stream_t *ls, const char *text, size_t tlen) {
  mig_node_t *n = ls->p->n;
  if (ls->we_opened) {
    if (ms_eq(text, tlen, n->apps[ls->app])) return 1;
    if (!ms_eq(text, tlen, MS_NA)) return BFTNET_EPROTO;
    ls->refused = true;
    bn_counter_add(n->ctr, BFTNET_COUNTER_CLASS_REFUSED, 1);
    bn_log(n->cfg.log, BN_LOG_INFO, "peer %s does not serve %s", ls->p->id_str, n->apps[ls->app]);
    return BFTNET_ENA;
  }
  int idx = mig__stream_app_index(n, text, tlen);
  if (idx >= 0) {
    ls->app = idx;
    return mig__stream_write_neg(ls) < 0 ? BFTNET_ENOMEM : 1;
  }
  bn_counter_add(n->ctr, BFTNET_COUNTER_CLASS_UNKNOWN, 1);
  if (++ls->neg_na > BN_MS_MAX_PROPOSALS) return BFTNET_EPROTO;
  if (write_ms(ls, MS_NA) < 0) return BFTNET_ENOMEM;
  mig__stream_pump(ls);
  return 0;
}

/* L's incoming bytes: the inner multistream messages first, then the
 * application's. */
static void ls_deliver(mig_stream_t *ls, const uint8_t *p, size_t n) {
  if (ls->neg_done) return ls_app_data(ls, p, n);
  if (bn_buf_append(&ls->neg, p, n) != 0) return mig__stream_abort_local(ls, "out of memory");
  int rc = 0;
  while (!ls->neg_done && !ls->final) {
    const char *text;
    size_t tlen;
    rc = ms_next(bn_buf_head(&ls->neg), bn_buf_unread(&ls->neg), &text, &tlen);
    if (rc == 0) {
      if (bn_buf_unread(&ls->neg) > 2 * BN_MS_MAX_MSG) break;
      return;
    }
    if (rc < 0) break;
    size_t used = (size_t)rc;
    if (ls->neg_step == 0) {
      rc = ms_eq(text, tlen, MS_PROTO_ID) ? 0 : BFTNET_EPROTO;
      if (rc == 0) ls->neg_step = 1;
    } else {
      rc = ls_neg_proto(ls, text, tlen); /* reads text before it is consumed */
    }
    bn_buf_consume(&ls->neg, used);
    if (rc < 0) break;
    if (rc == 1) ls->neg_done = true;
  }
  if (ls->final) return;
  if (!ls->neg_done) {
    if (rc == BFTNET_ENA) return mig__stream_abort_local(ls, "protocol refused");
    if (rc == BFTNET_ENOMEM) return mig__stream_abort_local(ls, "out of memory");
    bn_counter_add(ls->p->n->ctr, BFTNET_COUNTER_BAD_MULTISTREAM, 1);
    return mig__stream_abort_local(ls, "bad inner multistream negotiation");
  }
  if (!ls->we_opened && !ls_hand_up(ls)) return;
  if (ls->we_opened) ls_notify_writable(ls); /* data may flow now (ls_takes_data) */
  size_t rest = bn_buf_unread(&ls->neg);
  bn_buf_t tmp = ls->neg;
  bn_buf_init(&ls->neg);
  ls_app_data(ls, bn_buf_head(&tmp), rest);
  bn_buf_free(&tmp);
  if (!ls->we_opened) mig__stream_pump(ls);
}

/* ----------------------------------------------- the core's actions */

static const bftnet_counter_id_t reason_counter[MIG_R_COUNT] = {
    [MIG_R_NONE] = BFTNET_COUNTER_COUNT,
    [MIG_R_BAD_MSG] = BFTNET_COUNTER_MIG_BAD_MESSAGE,
    [MIG_R_UNEXPECTED_ACK] = BFTNET_COUNTER_MIG_UNEXPECTED_ACK,
    [MIG_R_BAD_PARITY] = BFTNET_COUNTER_MIG_BAD_PARITY,
    [MIG_R_ID_IN_USE] = BFTNET_COUNTER_MIG_ID_IN_USE,
    [MIG_R_REPLAY] = BFTNET_COUNTER_MIG_REPLAY,
    [MIG_R_NOT_LEADER] = BFTNET_COUNTER_MIG_NOT_LEADER,
    [MIG_R_UNKNOWN_FROM] = BFTNET_COUNTER_MIG_UNKNOWN_FROM,
    [MIG_R_NO_OFFSET] = BFTNET_COUNTER_MIG_NO_OFFSET,
    [MIG_R_BAD_OFFSET] = BFTNET_COUNTER_MIG_BAD_OFFSET,
    [MIG_R_BAD_CREDIT] = BFTNET_COUNTER_MIG_BAD_CREDIT,
    [MIG_R_GAP] = BFTNET_COUNTER_MIG_GAP,
    [MIG_R_DATA_AFTER_CLOSE] = BFTNET_COUNTER_MIG_DATA_AFTER_CLOSE,
    [MIG_R_DATA_BEFORE_ACK] = BFTNET_COUNTER_MIG_DATA_BEFORE_ACK,
    [MIG_R_LIMIT] = BFTNET_COUNTER_MIG_STREAM_LIMIT,
    [MIG_R_RESET] = BFTNET_COUNTER_MIG_ABORT_RESET,
    [MIG_R_DENIED] = BFTNET_COUNTER_MIG_ABORT_DENIED,
    [MIG_R_DETACH_TIMEOUT] = BFTNET_COUNTER_MIG_ABORT_DETACH_TIMEOUT,
    [MIG_R_PEER_RESTARTED] = BFTNET_COUNTER_MIG_ABORT_PEER_RESTARTED,
    [MIG_R_NA] = BFTNET_COUNTER_COUNT, /* counted as mig_plain_streams */
    [MIG_R_LOCAL] = BFTNET_COUNTER_MIG_ABORT_LOCAL,
    [MIG_R_BAD_CONFIRM] = BFTNET_COUNTER_MIG_BAD_CONFIRM,
    [MIG_R_STALE_INCARNATION] = BFTNET_COUNTER_MIG_STALE_INCARNATION,
};

/* The core counts violations and aborts per reason: export the deltas. */
static void peer_sync_counts(mig_peer_t *p) {
  for (int r = 0; r < MIG_R_COUNT; r++) {
    uint64_t d = p->mig.counts[r] - p->counts_seen[r];
    if (!d) continue;
    p->counts_seen[r] = p->mig.counts[r];
    mig__count(p->n, reason_counter[r], d);
    /* Every reason but the pure aborts (A in MIG_REASON_MAP) is a rejected input. */
    bool abort_only = r == MIG_R_RESET || r == MIG_R_DENIED || r == MIG_R_DETACH_TIMEOUT ||
                      r == MIG_R_PEER_RESTARTED || r == MIG_R_NA || r == MIG_R_LOCAL;
    if (!abort_only)
      bn_log(p->n->cfg.log, BN_LOG_INFO, "stream migration: peer %s: rejected input (%s)",
             MIG_WHO(p), mig_reason_str((mig_reason_t)r));
  }
}

static void on_migrated(mig_peer_t *p, const mig_action_t *a) {
  mig_carrier_t *car = mig__carrier_find(p, a->carrier);
  mig_stream_t *ls = mig__stream_by_id(p, a->stream);
  p->st.migrations++;
  mig__count(p->n, BFTNET_COUNTER_MIG_MIGRATED, 1);
  if (!ls) return;
  mig_sm_t *m = ls->m;
  uint64_t retrans = m->w_sent_max > m->cur.out_start ? m->w_sent_max - m->cur.out_start : 0;
  char from[BFTNET_ADDR_MAX];
  snprintf(from, sizeof from, "%s", ls->cur_addr);
  mig_event_t ev = {.type = MIG_EV_MIGRATED,
                    .stream_id = m->id,
                    .from_addr = from,
                    .to = car ? car->conn : NULL,
                    .why = ls->detached_at ? BFTNET_MIG_RESUME
                                           : (p->mig.leader ? ls->why : BFTNET_MIG_PEER)};
  mig__stream_set_conn(ls, ev.to);
  ls->why = 0;
  ls->next_try = 0;
  mig__stream_emit(ls, &ev);
  if (ls->detached_at) {
    uint64_t d = mig__now(p->n) - ls->detached_at;
    ls->detached_at = 0;
    p->st.resumed++;
    p->st.retransmitted += retrans;
    p->st.detach_ns_last = d;
    if (d > p->st.detach_ns_max) p->st.detach_ns_max = d;
    mig__count(p->n, BFTNET_COUNTER_MIG_RESUMED, 1);
    mig__count(p->n, BFTNET_COUNTER_MIG_RETRANSMITTED, retrans);
    mig_event_t rev = {.type = MIG_EV_RESUMED,
                       .stream_id = m->id,
                       .to = ev.to,
                       .detached_ns = d,
                       .retransmitted = retrans};
    mig__stream_emit(ls, &rev);
  }
}

/* An action on a carrier: what to write, deliver, credit or close. */
static void apply_carrier(mig_peer_t *p, const mig_action_t *a, const uint8_t *data) {
  mig_carrier_t *car = mig__carrier_find(p, a->carrier);
  switch (a->type) {
  case MIG_ACT_SEND_MSG:
    mig__carrier_send_msg(p, car, &a->msg);
    break;
  case MIG_ACT_DELIVER: {
    mig_stream_t *ls = car ? mig__stream_of_carrier(p, car) : NULL;
    if (ls && data && a->len) ls_deliver(ls, data + a->skip, a->len);
    break;
  }
  case MIG_ACT_CREDIT: {
    if (!car || car->released) break;
    mig_stream_t *ls = mig__stream_of_carrier(p, car);
    if (ls && ls->debt)
      car->held += a->n;
    else
      mig__carrier_credit(car, a->n);
    break;
  }
  case MIG_ACT_FIN:
    if (car && !car->dead && car->ns) net_stream_close(car->ns);
    break;
  case MIG_ACT_RST:
    if (car) mig__carrier_reset(car);
    break;
  case MIG_ACT_RELEASE:
    if (car) {
      car->released = true;
      car->held = 0;
      if (!car->dead && car->ns) net_stream_close(car->ns);
    }
    break;
  case MIG_ACT_CLOSE_CONN:
    if (car && car->conn && net_conn_ready(car->conn))
      net_conn_close(car->conn, BFTNET_REASON_PROTOCOL_ERROR, BFTNET_EPROTO);
    break;
  default: /* not a carrier action: mig__stream_apply does not pass one */
    break;
  }
}

/* An action on a logical stream or the peer: an event for the layer above. */
static void apply_stream(mig_peer_t *p, const mig_action_t *a) {
  switch (a->type) {
  case MIG_ACT_READ_EOF: {
    mig_stream_t *ls = mig__stream_by_id(p, a->stream);
    mig__carrier_kick(p); /* the end of L's direction is confirmed too */
    if (ls) mig__stream_emit(ls, &(mig_event_t){.type = MIG_EV_READ_EOF, .stream_id = a->stream});
    break;
  }
  case MIG_ACT_MIGRATED:
    on_migrated(p, a);
    break;
  case MIG_ACT_DETACHED: {
    mig_stream_t *ls = mig__stream_by_id(p, a->stream);
    p->st.detached++;
    mig__count(p->n, BFTNET_COUNTER_MIG_DETACHED, 1);
    if (!ls) break;
    if (!ls->detached_at) ls->detached_at = mig__now(p->n);
    mig__stream_set_conn(ls, NULL);
    mig__stream_emit(
        ls, &(mig_event_t){.type = MIG_EV_DETACHED, .stream_id = a->stream, .cause = ls->cause});
    break;
  }
  case MIG_ACT_ABORTED: {
    mig_stream_t *ls = NULL;
    for (mig_stream_t *x = p->streams; x; x = x->next)
      if (x->m && x->m->state == MIG_S_ABORTED && !x->final && (!ls || x->m->id == a->stream))
        ls = x;
    if (!ls || ls->na_fallback) break;
    /* A reset from a peer that said GO_AWAY first: it stops in order. */
    bool away = a->reason == MIG_R_RESET && ls->cause == BFTNET_REASON_GOING_AWAY;
    mig__stream_final(ls, MIG_EV_ABORTED, away ? "going_away" : mig_reason_str(a->reason));
    break;
  }
  case MIG_ACT_CLOSED: {
    for (mig_stream_t *x = p->streams; x; x = x->next)
      if (x->m && x->m->state == MIG_S_CLOSED && !x->final)
        mig__stream_final(x, MIG_EV_CLOSED, "closed");
    break;
  }
  case MIG_ACT_PEER_RESTARTED:
    p->st.restarts++;
    mig__count(p->n, BFTNET_COUNTER_MIG_PEER_RESTARTED, 1);
    if (p->n->cbs.on_peer_restarted && !p->released)
      p->n->cbs.on_peer_restarted(p->n->ud, p, a->id);
    break;
  default: /* carrier actions: apply_carrier */
    break;
  }
}

void mig__stream_apply(mig_peer_t *p, mig_actions_t *acts, const uint8_t *data) {
  for (size_t i = 0; i < acts->n; i++) {
    const mig_action_t *a = &acts->a[i];
    switch (a->type) {
    case MIG_ACT_SEND_MSG:
    case MIG_ACT_DELIVER:
    case MIG_ACT_CREDIT:
    case MIG_ACT_FIN:
    case MIG_ACT_RST:
    case MIG_ACT_RELEASE:
    case MIG_ACT_CLOSE_CONN:
      apply_carrier(p, a, data);
      break;
    default:
      apply_stream(p, a);
    }
  }
  peer_sync_counts(p);
}

/* ---------------------------------------------------------- pumping */

static void ls_notify_writable(mig_stream_t *ls) {
  if (!ls->want_writable || ls->final || ls->released || ls->in_write || !ls_takes_data(ls)) return;
  if (ls->m && mig_sm_room(&ls->p->mig, ls->m) == 0) return;
  if (ls->plain && bn_buf_unread(&ls->carry)) return;
  ls->want_writable = false;
  if (ls->cbs.on_writable) ls->cbs.on_writable(ls->ud, ls);
}

static void plain_pump(mig_stream_t *ls) {
  mig_carrier_t *car = ls->pc;
  if (car && car->ns) net_stream_set_prio(car->ns, ls->prio);
  while (car && !car->dead && bn_buf_unread(&ls->carry)) {
    int k = net_stream_write(car->ns, bn_buf_head(&ls->carry), bn_buf_unread(&ls->carry));
    if (k <= 0) return;
    bn_buf_consume(&ls->carry, (size_t)k);
    ls->plain_sent += (uint64_t)k;
  }
  ls_notify_writable(ls);
}

/* Moves L's bytes onto its current carrier as far as credit and the
 * connection allow. */
void mig__stream_pump(mig_stream_t *ls) {
  if (ls->plain) return plain_pump(ls);
  mig_peer_t *p = ls->p;
  for (unsigned rounds = 0; rounds < 1024 && ls->m && !ls->final; rounds++) {
    mig_sm_t *m = ls->m;
    mig_carrier_t *car = mig__carrier_find(p, m->cur.h);
    if (!car || car->dead || !car->ns) break;
    net_stream_set_prio(car->ns, ls->prio); /* the carrier may be new (a migration) */
    size_t room = net_stream_send_room(car->ns);
    if (room == 0) {
      net_stream_want_writable(car->ns);
      break;
    }
    mig_actions_t acts;
    mig_actions_clear(&acts);
    mig_chunk_t ch;
    int r = mig_sm_pull(&p->mig, m, room, &ch, &acts);
    if (r == 1) {
      if (ch.n) {
        int k = net_stream_write(car->ns, ch.p, ch.n);
        if (k >= 0 && (size_t)k < ch.n)
          bn_log(p->n->cfg.log, BN_LOG_WARN,
                 "stream migration: %s: short carrier write (%d of %zu)", MIG_WHO(p), k, ch.n);
      }
      if (ch.fin) net_stream_close(car->ns);
    }
    mig__stream_apply(p, &acts, NULL);
    if (r != 1) break;
  }
  ls_notify_writable(ls);
}

/* -------------------------------------------------------------- API */

static void ls_release_held(mig_stream_t *ls) {
  if (ls->debt || !ls->m) return;
  mig__carrier_kick(ls->p); /* the read offset moved: a Confirm may be due */
  mig_sm_t *m = ls->m;
  for (mig_carrier_t *car = ls->p->carriers; car; car = car->next) {
    if (!car->held || mig_reg_find_carrier(&ls->p->mig, car->h) != m) continue;
    uint64_t k = car->held;
    car->held = 0;
    /* A carrier frozen by an exchange gets no credit after our read
     * offset was reported (§11.5): the writer took that offset as all we
     * confirmed, and credit beyond it would contradict it. It is owed
     * (given if the exchange fails) or, on a carrier left behind, dropped:
     * the bytes come again on the new one. */
    mig_slot_t *slot = car->h == m->cur.h ? &m->cur : car->h == m->old.h ? &m->old : NULL;
    if (slot && slot->frozen && !BN_SIM_DEFECT(8)) {
      slot->owed += k;
      continue;
    }
    mig__carrier_credit(car, k);
  }
}

void mig_stream_set_cbs(mig_stream_t *ls, const mig_stream_cbs_t *cbs, void *ud) {
  ls->cbs = *cbs;
  ls->ud = ud;
}

int mig_stream_write(mig_stream_t *ls, const uint8_t *d, size_t n) {
  if (!ls || ls->released) return BFTNET_EINVAL;
  if (ls->final) return BFTNET_ECLOSED;
  if (n == 0) return 0;
  if (!ls_takes_data(ls)) {
    ls->want_writable = true;
    return 0;
  }
  mig_node_t *node = ls->p->n;
  mig__defer_enter(node);
  int took = 0;
  if (ls->plain) {
    if (bn_buf_unread(&ls->carry) == 0 && ls->pc && !ls->pc->dead) {
      int k = net_stream_write(ls->pc->ns, d, n);
      if (k < 0)
        took = k;
      else
        took = k, ls->plain_sent += (uint64_t)k;
    }
  } else {
    uint64_t room = mig_sm_room(&ls->p->mig, ls->m);
    size_t k = (size_t)BN_MIN((uint64_t)n, BN_MIN(room, (uint64_t)INT32_MAX));
    if (k) {
      int rc = mig_sm_write(&ls->p->mig, ls->m, d, k);
      took = rc < 0 ? rc : (int)k;
    }
    ls->in_write = true;
    if (took > 0) mig__stream_pump(ls);
    ls->in_write = false;
  }
  if (took > 0) ls->app_written += (uint64_t)took;
  if (took >= 0 && (size_t)took < n) ls->want_writable = true;
  mig__defer_leave(node);
  return took;
}

size_t mig_stream_write_span(mig_stream_t *ls, size_t want, uint8_t **out) {
  *out = NULL;
  if (!ls || ls->released || ls->final || ls->plain || !ls->m || !ls_takes_data(ls)) return 0;
  return mig_sm_write_span(&ls->p->mig, ls->m, want, out);
}

void mig_stream_consume(mig_stream_t *ls, size_t n) {
  if (!ls || ls->released || !n) return;
  if (ls->plain) {
    if (ls->pc && !ls->pc->dead) net_stream_consume(ls->pc->ns, n);
    return;
  }
  ls->debt -= BN_MIN((uint64_t)n, ls->debt);
  if (ls->m) ls->m->r_held = ls->debt;
  if (ls->debt == 0) {
    mig__defer_enter(ls->p->n);
    ls_release_held(ls);
    mig__defer_leave(ls->p->n);
  }
}

void mig_stream_release(mig_stream_t *ls) {
  if (!ls || ls->released) return;
  mig_node_t *n = ls->p->n;
  mig__defer_enter(n);
  ls->released = true;
  if (ls->m && !ls->final) {
    mig_actions_t acts;
    mig_actions_clear(&acts);
    if (mig_sm_abort(&ls->p->mig, ls->m, &acts) == 0) mig__stream_apply(ls->p, &acts, NULL);
  }
  if (ls->pc) {
    ls->pc->plain_ls = NULL;
    mig__carrier_reset(ls->pc);
    ls->pc = NULL;
  }
  ls->final = true;
  n->reap_needed = true;
  mig__defer_leave(n);
}

bool mig_stream_migratable(const mig_stream_t *ls) {
  return ls && !ls->plain;
}

bool mig_stream_attached(const mig_stream_t *ls) {
  if (!ls || ls->final) return false;
  if (ls->plain) return ls->pc && !ls->pc->dead;
  return ls->m->cur.h != 0;
}

int mig_stream_app(const mig_stream_t *ls) {
  return ls ? ls->app : -1;
}

void mig_stream_set_prio(mig_stream_t *ls, uint8_t prio) {
  if (ls) ls->prio = prio;
}

size_t mig_stream_send_room(const mig_stream_t *ls) {
  if (!ls || ls->released || ls->final || !ls_takes_data(ls)) return 0;
  if (ls->plain) {
    const mig_carrier_t *car = ls->pc;
    if (!car || car->dead || !car->ns) return 0;
    size_t r = net_stream_send_room(car->ns), q = bn_buf_unread(&ls->carry);
    return r > q ? r - q : 0;
  }
  const mig_sm_t *m = ls->m;
  uint64_t room = BN_MIN(mig_sm_room(&ls->p->mig, m), (uint64_t)INT32_MAX);
  const mig_carrier_t *car = mig__carrier_find(ls->p, m->cur.h);
  if (!car || car->dead || !car->ns) return (size_t)room; /* detached: goes on when resumed */
  uint64_t next = m->cur.out_start + m->cur.out_sent;
  uint64_t unsent = m->w_written > next ? m->w_written - next : 0;
  uint64_t cr = net_stream_send_room(car->ns);
  return (size_t)BN_MIN(room, cr > unsent ? cr - unsent : 0);
}

void mig_stream_want_writable(mig_stream_t *ls) {
  if (!ls || ls->released || ls->final) return;
  ls->want_writable = true;
  mig_carrier_t *car = ls->plain ? ls->pc : (ls->m ? mig__carrier_find(ls->p, ls->m->cur.h) : NULL);
  if (car && !car->dead && car->ns) {
    net_stream_set_prio(car->ns, ls->prio);
    net_stream_want_writable(car->ns); /* parks it if the connection is the limit */
  }
}

uint64_t mig_stream_id(const mig_stream_t *ls) {
  return ls && ls->m ? ls->m->id : 0;
}

bool mig_stream_opened_as(const mig_stream_t *ls, uint64_t *open_id, uint64_t *inc) {
  if (!ls || !ls->m || !ls->m->open_inc_known) return false;
  *open_id = ls->m->open_id;
  *inc = ls->m->open_inc;
  return true;
}

uint64_t mig_stream_app_written(const mig_stream_t *ls) {
  return ls->app_written;
}

uint64_t mig_stream_app_confirmed(const mig_stream_t *ls) {
  if (ls->plain) return ls->plain_sent;
  if (!ls->m) return 0;
  uint64_t c = ls->m->w_confirmed;
  return c > ls->app_base ? BN_MIN(c - ls->app_base, ls->app_written) : 0;
}

net_conn_t *mig_stream_conn(const mig_stream_t *ls) {
  if (ls->final) return NULL;
  if (ls->plain) return ls->pc && !ls->pc->dead ? ls->pc->conn : NULL;
  mig_carrier_t *car = ls->m ? mig__carrier_find(ls->p, ls->m->cur.h) : NULL;
  return car && !car->dead ? car->conn : NULL;
}
