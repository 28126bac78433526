/*
 * mig_net.c — the migration core on net/ streams (migration.h). Hand-written:
 * no library implements libp2p stream migration.
 *
 * Every entry point (net callback, mig_* call, tick) runs the core, applies
 * the actions it returned (ml_apply) and pumps the streams concerned. Frees
 * of streams, carriers and peers are deferred to the end of the outermost
 * entry point (enter/leave), so a pointer passed into a callback stays valid
 * for that whole callback.
 */
#include <stdio.h>
#include <stdlib.h>

#include "mig_core.h"
#include "migration.h"

/* ------------------------------------------------------------ structs */

typedef struct ml_carrier {
  struct ml_carrier *next;
  struct ml_carrier *flush_next;
  mig_peer_t *p;
  uint64_t h;
  net_stream_t *ns;
  net_conn_t *conn;
  mig_stream_t *plain_ls; /* plain stream: its logical stream */
  mig_reader_t *rd;      /* while the first StreamMigration message is expected */
  uint64_t pre_left;     /* credit to absorb: our bytes before L's first byte */
  uint64_t held;         /* credit held while the consumer owes */
  bool dead;             /* reset or gone: net's on_free still to come */
  bool released;         /* the core forgot it: discard its bytes, never credit */
  bool label;            /* we opened it with a Label */
  bool flush_queued;
  bool gone;             /* net freed it: unlinked and freed by reap() */
} ml_carrier_t;

struct mig_stream {
  mig_stream_t *next;
  mig_peer_t *p;
  mig_sm_t *m;       /* labelled; NULL when plain */
  ml_carrier_t *pc;      /* plain: its carrier */
  bool plain;
  mig_stream_cbs_t cbs;
  void *ud;
  bool we_opened;
  bool released, final, na_fallback;
  /* The inner negotiation read from the peer's direction. */
  bool neg_done;
  unsigned neg_step;
  bn_buf_t neg;
  uint64_t app_base;     /* L offset of our first application byte */
  uint64_t app_written;
  uint64_t plain_sent;   /* plain: application bytes handed to net */
  bn_buf_t carry;        /* plain fallback: bytes to write before new ones */
  uint64_t debt;         /* bytes given to on_data, not yet consumed */
  bool want_writable;
  bool in_write;         /* inside mig_stream_write: no writable callback */
  uint64_t detached_at;  /* 0 while attached */
  char cur_addr[BFTNET_ADDR_MAX]; /* the connection it rides (for events): a copy,
                                   the connection may be gone by then */
  bftnet_mig_reason_t why; /* the reason of the exchange we started */
  uint64_t next_try;
};

struct mig_peer {
  mig_peer_t *next;
  mig_node_t *n;
  peerid_t id;
  char id_str[BFTNET_PEER_ID_MAX];
  mig_reg_t mig;
  uint64_t counts_seen[MIG_R_COUNT];
  void *owner;
  bool released;
  bool plain_only;
  mig_stream_t *streams;
  ml_carrier_t *carriers;
  maddr_t addrs[BFTNET_MAX_ADDRS];
  size_t naddrs;
  bool addr_changed;
  uint64_t next_probe;
  unsigned probe_idx;
  bool probing;
  struct {
    uint64_t seq;
    unsigned idle;
  } idle[8];
  mig_peer_stats_t st;
};

struct mig_node {
  net_t *net;
  bn_transport_t *t;
  mig_config_t cfg;
  mig_node_cbs_t cbs;
  void *ud;
  bn_counters_t *ctr;
  uint64_t incarnation;
  uint64_t next_h;
  mig_peer_t *peers;
  bn_ttimer_t *timer;
  bn_ttimer_t *flush_timer;
  int nest;
  bool reap_needed;
  bool stopping;
  ml_carrier_t *flush_head;
  bool flush_scheduled;
  size_t pre_label; /* outer multistream bytes on a carrier: header + protocol */
};

static const net_stream_cbs_t car_cbs;
static const net_stream_cbs_t plain_cbs;
static void ml_apply(mig_peer_t *p, mig_actions_t *acts, const uint8_t *data);
static void ls_pump(mig_stream_t *ls);
static void peer_policy(mig_peer_t *p, uint64_t now, bool tick);

static uint64_t now_ns(const mig_node_t *n) { return bn_now_ns(n->t->seam); }

/* ------------------------------------------------- enter / leave, reap */

static void enter(mig_node_t *n) { n->nest++; }

static void ls_free(mig_stream_t *ls) {
  bn_buf_free(&ls->neg);
  bn_buf_free(&ls->carry);
  free(ls);
}

static bool peer_reapable(const mig_peer_t *p) {
  return (p->released || !p->owner) && !p->streams && !p->carriers && !p->probing;
}

static void car_destroy(ml_carrier_t *car);

static void reap(mig_node_t *n) {
  n->reap_needed = false;
  for (mig_peer_t **pp = &n->peers; *pp;) {
    mig_peer_t *p = *pp;
    for (ml_carrier_t **cp = &p->carriers; *cp;) {
      ml_carrier_t *car = *cp;
      if (!car->gone) {
        cp = &car->next;
        continue;
      }
      *cp = car->next;
      car_destroy(car);
    }
    for (mig_stream_t **sp = &p->streams; *sp;) {
      mig_stream_t *ls = *sp;
      if (!ls->released) {
        sp = &ls->next;
        continue;
      }
      *sp = ls->next;
      if (ls->m) (void)mig_reg_sm_free(&p->mig, ls->m);
      ls_free(ls);
    }
    if (peer_reapable(p)) {
      *pp = p->next;
      mig_reg_free(&p->mig);
      free(p);
      continue;
    }
    pp = &p->next;
  }
}

static void leave(mig_node_t *n) {
  if (--n->nest == 0 && n->reap_needed) reap(n);
}

/* ---------------------------------------------------------- counters */

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
};

static void count(mig_node_t *n, bftnet_counter_id_t id, uint64_t v) {
  if (id < BFTNET_COUNTER_COUNT && v) bn_counter_add(n->ctr, id, v);
}

/* The core counts violations and aborts per reason: export the deltas. */
static void peer_sync_counts(mig_peer_t *p) {
  for (int r = 0; r < MIG_R_COUNT; r++) {
    uint64_t d = p->mig.counts[r] - p->counts_seen[r];
    if (!d) continue;
    p->counts_seen[r] = p->mig.counts[r];
    count(p->n, reason_counter[r], d);
    /* Every reason but the pure aborts (A in MIG_REASON_MAP) is a rejected input. */
    bool abort_only = r == MIG_R_RESET || r == MIG_R_DENIED || r == MIG_R_DETACH_TIMEOUT ||
                      r == MIG_R_PEER_RESTARTED || r == MIG_R_NA || r == MIG_R_LOCAL;
    if (!abort_only)
      bn_log(BN_LOG_INFO, "stream migration: peer %s: rejected input (%s)", p->id_str,
             mig_reason_str((mig_reason_t)r));
  }
}

/* ------------------------------------------------------------ lookups */

static ml_carrier_t *car_find(const mig_peer_t *p, uint64_t h) {
  if (!h) return NULL;
  for (ml_carrier_t *c = p->carriers; c; c = c->next)
    if (c->h == h && !c->gone) return c;
  return NULL;
}

static mig_stream_t *ls_of(const mig_peer_t *p, const mig_sm_t *m) {
  if (!m) return NULL;
  for (mig_stream_t *ls = p->streams; ls; ls = ls->next)
    if (ls->m == m) return ls;
  return NULL;
}

/* A final stream (aborted or closed) by its last ID: the core no longer
 * finds it by ID. */
static mig_stream_t *ls_by_id_any(const mig_peer_t *p, uint64_t id) {
  mig_sm_t *m = mig_reg_find(&p->mig, id);
  if (m) return ls_of(p, m);
  for (mig_stream_t *ls = p->streams; ls; ls = ls->next)
    if (ls->m && ls->m->id == id && !ls->final) return ls;
  return NULL;
}

static mig_stream_t *ls_of_carrier(const mig_peer_t *p, const ml_carrier_t *car) {
  if (car->plain_ls) return car->plain_ls;
  return ls_of(p, mig_reg_find_carrier(&p->mig, car->h));
}

/* ----------------------------------------------------------- carriers */

static ml_carrier_t *car_new(mig_peer_t *p, net_conn_t *conn) {
  ml_carrier_t *car = calloc(1, sizeof *car);
  if (!car) return NULL;
  car->p = p;
  car->h = ++p->n->next_h;
  car->conn = conn;
  car->next = p->carriers;
  p->carriers = car;
  return car;
}

/* Net is done with car: it leaves the lists at the next reap, so a loop
 * over p->carriers never sees one vanish under it. */
static void car_unlink(ml_carrier_t *car) {
  car->gone = true;
  car->dead = true;
  car->ns = NULL;
  car->p->n->reap_needed = true;
}

static void car_destroy(ml_carrier_t *car) {
  mig_node_t *n = car->p->n;
  if (car->flush_queued)
    for (ml_carrier_t **pp = &n->flush_head; *pp; pp = &(*pp)->flush_next)
      if (*pp == car) {
        *pp = car->flush_next;
        break;
      }
  free(car->rd);
  free(car);
}

/* A carrier on conn for p: with a reader for the first StreamMigration
 * message if `reader`, and, when proto is set, an outbound stream proposing
 * it (net writes the multistream header and proposal: pre_left). On
 * failure nothing is left behind. */
static int car_open(mig_peer_t *p, net_conn_t *conn, const char *proto, const net_stream_cbs_t *cbs,
                    bool reader, ml_carrier_t **out) {
  ml_carrier_t *car = car_new(p, conn);
  if (!car) return BFTNET_ENOMEM;
  int rc = 0;
  if (reader) {
    car->rd = malloc(sizeof *car->rd);
    if (car->rd) mig_reader_init(car->rd);
    else rc = BFTNET_ENOMEM;
  }
  if (rc == 0 && proto) rc = net_stream_open(conn, proto, cbs, car, &car->ns);
  if (rc < 0) {
    car_unlink(car); /* marks it dead; the next reap frees it */
    return rc;
  }
  car->pre_left = p->n->pre_label;
  *out = car;
  return 0;
}

static void car_reset(ml_carrier_t *car) {
  if (car->dead || !car->ns) return;
  car->dead = true;
  net_stream_reset(car->ns); /* net's on_free follows */
}

static void flush_run(void *ud) {
  mig_node_t *n = ud;
  n->flush_scheduled = false;
  while (n->flush_head) {
    ml_carrier_t *car = n->flush_head;
    n->flush_head = car->flush_next;
    car->flush_next = NULL;
    car->flush_queued = false;
    if (!car->dead && car->ns) net_stream_credit(car->ns, 0, true);
  }
}

/* Credit for bytes L took. yamux sends the window update by itself once
 * half the window is owed (the steady state under load); what is left is
 * flushed MIG_CREDIT_FLUSH_MS later, so an idle stream's writer still learns
 * promptly that its bytes were read. A flush per loop iteration instead
 * cost a write, a Noise frame and a wakeup of the writer per read: -20%
 * throughput at small messages. */
static void car_credit(ml_carrier_t *car, uint64_t k) {
  if (car->dead || car->released || !car->ns || !k) return;
  net_stream_credit(car->ns, (size_t)k, false);
  mig_node_t *n = car->p->n;
  if (!car->flush_queued) {
    car->flush_queued = true;
    car->flush_next = n->flush_head;
    n->flush_head = car;
  }
  if (!n->flush_scheduled && !n->stopping && n->flush_timer) {
    n->flush_scheduled = true;
    n->t->ops->timer_start(n->flush_timer, MIG_CREDIT_FLUSH_MS, 0);
  }
}

static void ls_release_held(mig_stream_t *ls) {
  if (ls->debt || !ls->m) return;
  for (ml_carrier_t *car = ls->p->carriers; car; car = car->next) {
    if (!car->held || mig_reg_find_carrier(&ls->p->mig, car->h) != ls->m) continue;
    uint64_t k = car->held;
    car->held = 0;
    car_credit(car, k);
  }
}

/* ------------------------------------------------------------ events */

static void ls_set_conn(mig_stream_t *ls, net_conn_t *c) {
  ls->cur_addr[0] = '\0';
  if (c) net_conn_remote_addr(c, ls->cur_addr, sizeof ls->cur_addr);
}

static void ls_emit(mig_stream_t *ls, const mig_event_t *ev) {
  if (!ls->released && ls->cbs.on_event) ls->cbs.on_event(ls->ud, ls, ev);
}

static void ls_final(mig_stream_t *ls, mig_ev_type_t type, const char *reason) {
  if (ls->final) return;
  ls->final = true;
  mig_event_t ev = {.type = type, .stream_id = ls->m ? ls->m->id : 0, .reason = reason};
  if (type == MIG_EV_ABORTED) {
    count(ls->p->n, BFTNET_COUNTER_MIG_ABORTED, 1);
    bn_log(BN_LOG_INFO, "stream %llu with %s aborted: %s", (unsigned long long)ev.stream_id,
           ls->p->id_str, reason);
  }
  ls_emit(ls, &ev);
}

/* -------------------------------------------- the inner negotiation */

static int ms_len(const char *text) {
  bn_buf_t b;
  bn_buf_init(&b);
  int rc = ms_append(&b, text);
  int len = rc < 0 ? rc : (int)b.len;
  bn_buf_free(&b);
  return len;
}

/* Writes header + protocol into L (the opener's proposal or the
 * acceptor's echo): part of L's bytes (PROTOCOL.md 11.2). */
static int ls_write_neg(mig_stream_t *ls) {
  bn_buf_t b;
  bn_buf_init(&b);
  int rc = ms_append(&b, MS_PROTO_ID);
  if (rc == 0) rc = ms_append(&b, MIG_APP_PROTO);
  if (rc == 0) rc = mig_sm_write(&ls->p->mig, ls->m, b.data, b.len);
  if (rc == 0) ls->app_base = ls->m->w_written;
  bn_buf_free(&b);
  return rc;
}

static void ls_abort_local(mig_stream_t *ls, const char *why) {
  if (!ls->m || ls->final) return;
  bn_log(BN_LOG_INFO, "stream with %s: %s", ls->p->id_str, why);
  mig_actions_t acts;
  mig_actions_clear(&acts);
  if (mig_sm_abort(&ls->p->mig, ls->m, &acts) == 0) ml_apply(ls->p, &acts, NULL);
}

static void ls_app_data(mig_stream_t *ls, const uint8_t *p, size_t n) {
  if (!n || ls->final) return;
  if (ls->we_opened || ls->released || !ls->cbs.on_data) return; /* nothing flows back to the opener */
  ls->debt += n;
  if (ls->m) ls->m->r_held = ls->debt; /* not reported read until released */
  ls->cbs.on_data(ls->ud, ls, p, n);
}

/* L's incoming bytes: the inner multistream messages first, then the
 * application's. */
static void ls_deliver(mig_stream_t *ls, const uint8_t *p, size_t n) {
  if (ls->neg_done) return ls_app_data(ls, p, n);
  if (bn_buf_append(&ls->neg, p, n) != 0) return ls_abort_local(ls, "out of memory");
  while (!ls->neg_done) {
    const char *text;
    size_t tlen;
    int rc = ms_next(bn_buf_head(&ls->neg), bn_buf_unread(&ls->neg), &text, &tlen);
    if (rc == 0) {
      if (bn_buf_unread(&ls->neg) > 2 * BN_MS_MAX_MSG) break;
      return;
    }
    if (rc < 0) break;
    bool ok = ls->neg_step == 0 ? ms_eq(text, tlen, MS_PROTO_ID) : ms_eq(text, tlen, MIG_APP_PROTO);
    if (!ok) break;
    bn_buf_consume(&ls->neg, (size_t)rc);
    if (++ls->neg_step == 2) {
      ls->neg_done = true;
      if (!ls->we_opened && ls_write_neg(ls) < 0) return ls_abort_local(ls, "out of memory");
      size_t rest = bn_buf_unread(&ls->neg);
      bn_buf_t tmp = ls->neg;
      bn_buf_init(&ls->neg);
      ls_app_data(ls, bn_buf_head(&tmp), rest);
      bn_buf_free(&tmp);
      if (!ls->we_opened) ls_pump(ls);
      return;
    }
  }
  bn_counter_add(ls->p->n->ctr, BFTNET_COUNTER_BAD_MULTISTREAM, 1);
  ls_abort_local(ls, "bad inner multistream negotiation");
}

/* -------------------------------------------------------- apply actions */

static void send_msg(mig_peer_t *p, ml_carrier_t *car, const mig_msg_t *m) {
  if (!car || car->dead || !car->ns) return;
  bn_buf_t b;
  bn_buf_init(&b);
  int rc = mig_msg_encode(m, &b);
  if (rc == 0) rc = net_stream_write_ctl(car->ns, b.data, b.len);
  if (rc == 0) car->pre_left += b.len;
  else bn_log(BN_LOG_INFO, "stream migration: %s: cannot send a message: %s", p->id_str, bftnet_strerror(rc));
  bn_buf_free(&b);
}

static void on_migrated(mig_peer_t *p, const mig_action_t *a) {
  ml_carrier_t *car = car_find(p, a->carrier);
  mig_stream_t *ls = ls_by_id_any(p, a->stream);
  p->st.migrations++;
  count(p->n, BFTNET_COUNTER_MIG_MIGRATED, 1);
  if (!ls) return;
  mig_sm_t *m = ls->m;
  uint64_t retrans = m->w_sent_max > m->cur.out_start ? m->w_sent_max - m->cur.out_start : 0;
  char from[BFTNET_ADDR_MAX];
  snprintf(from, sizeof from, "%s", ls->cur_addr);
  mig_event_t ev = {.type = MIG_EV_MIGRATED, .stream_id = m->id, .from_addr = from,
                   .to = car ? car->conn : NULL,
                   .why = ls->detached_at ? BFTNET_MIG_RESUME : (p->mig.leader ? ls->why : BFTNET_MIG_PEER)};
  ls_set_conn(ls, ev.to);
  ls->why = 0;
  ls->next_try = 0;
  ls_emit(ls, &ev);
  if (ls->detached_at) {
    uint64_t d = now_ns(p->n) - ls->detached_at;
    ls->detached_at = 0;
    p->st.resumed++;
    p->st.retransmitted += retrans;
    p->st.detach_ns_last = d;
    if (d > p->st.detach_ns_max) p->st.detach_ns_max = d;
    count(p->n, BFTNET_COUNTER_MIG_RESUMED, 1);
    count(p->n, BFTNET_COUNTER_MIG_RETRANSMITTED, retrans);
    mig_event_t rev = {.type = MIG_EV_RESUMED, .stream_id = m->id, .to = ev.to, .detached_ns = d,
                      .retransmitted = retrans};
    ls_emit(ls, &rev);
  }
}

static void ml_apply(mig_peer_t *p, mig_actions_t *acts, const uint8_t *data) {
  for (size_t i = 0; i < acts->n; i++) {
    const mig_action_t *a = &acts->a[i];
    ml_carrier_t *car = car_find(p, a->carrier);
    switch (a->type) {
    case MIG_ACT_SEND_MSG:
      send_msg(p, car, &a->msg);
      break;
    case MIG_ACT_DELIVER: {
      mig_stream_t *ls = car ? ls_of_carrier(p, car) : NULL;
      if (ls && data && a->len) ls_deliver(ls, data + a->skip, a->len);
      break;
    }
    case MIG_ACT_CREDIT: {
      if (!car || car->released) break;
      mig_stream_t *ls = ls_of_carrier(p, car);
      if (ls && ls->debt) car->held += a->n;
      else car_credit(car, a->n);
      break;
    }
    case MIG_ACT_FIN:
      if (car && !car->dead && car->ns) net_stream_close(car->ns);
      break;
    case MIG_ACT_RST:
      if (car) car_reset(car);
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
    case MIG_ACT_READ_EOF: {
      mig_stream_t *ls = ls_by_id_any(p, a->stream);
      if (ls) ls_emit(ls, &(mig_event_t){.type = MIG_EV_READ_EOF, .stream_id = a->stream});
      break;
    }
    case MIG_ACT_MIGRATED:
      on_migrated(p, a);
      break;
    case MIG_ACT_DETACHED: {
      mig_stream_t *ls = ls_by_id_any(p, a->stream);
      p->st.detached++;
      count(p->n, BFTNET_COUNTER_MIG_DETACHED, 1);
      if (!ls) break;
      if (!ls->detached_at) ls->detached_at = now_ns(p->n);
      ls_set_conn(ls, NULL);
      ls_emit(ls, &(mig_event_t){.type = MIG_EV_DETACHED, .stream_id = a->stream});
      break;
    }
    case MIG_ACT_ABORTED: {
      mig_stream_t *ls = NULL;
      for (mig_stream_t *x = p->streams; x; x = x->next)
        if (x->m && x->m->state == MIG_S_ABORTED && !x->final && (!ls || x->m->id == a->stream)) ls = x;
      if (!ls || ls->na_fallback) break;
      ls_final(ls, MIG_EV_ABORTED, mig_reason_str(a->reason));
      break;
    }
    case MIG_ACT_CLOSED: {
      for (mig_stream_t *x = p->streams; x; x = x->next)
        if (x->m && x->m->state == MIG_S_CLOSED && !x->final) ls_final(x, MIG_EV_CLOSED, "closed");
      break;
    }
    case MIG_ACT_PEER_RESTARTED:
      p->st.restarts++;
      count(p->n, BFTNET_COUNTER_MIG_PEER_RESTARTED, 1);
      if (p->n->cbs.on_peer_restarted && !p->released)
        p->n->cbs.on_peer_restarted(p->n->ud, p, a->id);
      break;
    }
  }
  peer_sync_counts(p);
}

/* ------------------------------------------------------------ pumping */

static void ls_notify_writable(mig_stream_t *ls) {
  if (!ls->want_writable || ls->final || ls->released || ls->in_write) return;
  if (ls->m && mig_sm_room(&ls->p->mig, ls->m) == 0) return;
  if (ls->plain && bn_buf_unread(&ls->carry)) return;
  ls->want_writable = false;
  if (ls->cbs.on_writable) ls->cbs.on_writable(ls->ud, ls);
}

static void plain_pump(mig_stream_t *ls) {
  ml_carrier_t *car = ls->pc;
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
static void ls_pump(mig_stream_t *ls) {
  if (ls->plain) return plain_pump(ls);
  mig_peer_t *p = ls->p;
  for (unsigned rounds = 0; rounds < 1024 && ls->m && !ls->final; rounds++) {
    mig_sm_t *m = ls->m;
    ml_carrier_t *car = car_find(p, m->cur.h);
    if (!car || car->dead || !car->ns) break;
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
          bn_log(BN_LOG_WARN, "stream migration: %s: short carrier write (%d of %zu)", p->id_str, k, ch.n);
      }
      if (ch.fin) net_stream_close(car->ns);
    }
    ml_apply(p, &acts, NULL);
    if (r != 1) break;
  }
  ls_notify_writable(ls);
}

/* ----------------------------------------------- StreamMigration message */

static mig_stream_t *ls_new(mig_peer_t *p, bool we_opened) {
  mig_stream_t *ls = calloc(1, sizeof *ls);
  if (!ls) return NULL;
  ls->p = p;
  ls->we_opened = we_opened;
  bn_buf_init(&ls->neg);
  bn_buf_init(&ls->carry);
  ls->next = p->streams;
  p->streams = ls;
  return ls;
}

/* The first message of a carrier: a Label or Migrate the peer sent, or the
 * AckMigrate answering ours. */
static void car_on_msg(ml_carrier_t *car, const mig_msg_t *msg) {
  mig_peer_t *p = car->p;
  mig_node_t *n = p->n;
  mig_actions_t acts;
  mig_actions_clear(&acts);
  mig_sm_t *m = NULL;
  int rc = mig_reg_on_msg(&p->mig, car->h, msg, now_ns(n), &acts, &m);
  if (msg->type == MIG_MSG_ACK && msg->deny && m && rc == 0) {
    count(n, BFTNET_COUNTER_MIG_DENIED, 1);
    mig_stream_t *ls = ls_of(p, m);
    if (ls) ls_emit(ls, &(mig_event_t){.type = MIG_EV_DENIED, .stream_id = m->id});
  }
  mig_stream_t *fresh = NULL;
  if (msg->type == MIG_MSG_LABEL && rc == 0 && m) {
    fresh = ls_new(p, false);
    if (!fresh) {
      (void)mig_sm_abort(&p->mig, m, &acts);
    } else {
      fresh->m = m;
      ls_set_conn(fresh, car->conn);
    }
  }
  ml_apply(p, &acts, NULL);
  /* A carrier the core did not take (a denied or rejected Migrate): close
   * our side too; its bytes are discarded. */
  if (!mig_reg_find_carrier(&p->mig, car->h) && !car->dead) {
    car->released = true;
    if (car->ns) net_stream_close(car->ns);
  }
  if (fresh && !fresh->final) {
    int orc = n->cbs.on_stream && !p->released ? n->cbs.on_stream(n->ud, p, fresh) : BFTNET_ENOTMEMBER;
    if (orc < 0) {
      fresh->released = true; /* no events */
      ls_abort_local(fresh, "refused by the application layer");
      n->reap_needed = true;
    }
  }
  if (m) {
    mig_stream_t *ls = ls_of(p, m);
    if (ls) ls_pump(ls);
  }
}

/* ------------------------------------------------ carrier net callbacks */

static void car_data(void *ud, net_stream_t *s, const uint8_t *d, size_t n) {
  ml_carrier_t *car = ud;
  mig_peer_t *p = car->p;
  mig_node_t *node = p->n;
  enter(node);
  if (car->released || car->dead) goto out; /* discarded, never credited */
  if (car->rd) {
    size_t took = mig_reader_feed(car->rd, d, n);
    mig_msg_t msg;
    int r = mig_reader_next(car->rd, &msg);
    if (r < 0) {
      count(node, BFTNET_COUNTER_MIG_BAD_MESSAGE, 1);
      bn_log(BN_LOG_INFO, "stream migration: %s sent a bad message: %s", p->id_str, bftnet_strerror(r));
      car_reset(car);
      goto out;
    }
    if (r == 0) {
      net_stream_credit(s, took, false);
      goto out;
    }
    const uint8_t *rest;
    size_t nrest;
    mig_reader_rest(car->rd, &rest, &nrest);
    /* The message's bytes are credited now (they are not L's); the bytes
     * behind it in this chunk are L's and go through the core below. */
    size_t used_here = took - nrest;
    net_stream_credit(s, used_here, false);
    free(car->rd);
    car->rd = NULL;
    car_on_msg(car, &msg);
    if (car->released || car->dead) goto out;
    d += used_here;
    n -= used_here;
    if (!n) goto out;
  }
  mig_actions_t acts;
  mig_actions_clear(&acts);
  int rc = mig_reg_on_data(&p->mig, car->h, n, &acts);
  ml_apply(p, &acts, d);
  if (rc == BFTNET_ENOTFOUND || rc == BFTNET_ESTATE) car_credit(car, n); /* not L's bytes */
  mig_stream_t *ls = ls_of_carrier(p, car);
  if (ls) ls_pump(ls);
out:
  leave(node);
}

static void car_ready(void *ud, net_stream_t *s) {
  (void)s;
  ml_carrier_t *car = ud;
  mig_peer_t *p = car->p;
  if (!car->label || car->dead) return;
  enter(p->n);
  mig_sm_t *m = mig_reg_find_carrier(&p->mig, car->h);
  if (m && m->state == MIG_S_LABELING) {
    mig_actions_t acts;
    mig_actions_clear(&acts);
    (void)mig_sm_on_echo(&p->mig, m, &acts);
    ml_apply(p, &acts, NULL);
  }
  leave(p->n);
}

static void car_fin(void *ud, net_stream_t *s) {
  (void)s;
  ml_carrier_t *car = ud;
  mig_peer_t *p = car->p;
  if (car->dead || car->released) return;
  enter(p->n);
  mig_actions_t acts;
  mig_actions_clear(&acts);
  (void)mig_reg_on_fin(&p->mig, car->h, &acts);
  ml_apply(p, &acts, NULL);
  mig_stream_t *ls = ls_of_carrier(p, car);
  if (ls) ls_pump(ls);
  leave(p->n);
}

/* `na` to the Label: the peer speaks no migration. L's bytes go again on a
 * plain /bftnet/msg/1.0.0 stream (the peer discarded them unread). */
static void ls_fallback_plain(mig_stream_t *ls, net_conn_t *conn);

static void car_error(void *ud, net_stream_t *s, int err) {
  (void)s;
  ml_carrier_t *car = ud;
  mig_peer_t *p = car->p;
  if (car->dead) return;
  car->dead = true;
  if (car->released) return;
  enter(p->n);
  mig_actions_t acts;
  mig_actions_clear(&acts);
  mig_sm_t *m = mig_reg_find_carrier(&p->mig, car->h);
  mig_stream_t *ls = ls_of(p, m);
  if (err == BFTNET_ENA && car->label && m && m->state == MIG_S_LABELING && ls) {
    ls_fallback_plain(ls, car->conn);
  } else if (err == BFTNET_ERESET || err == BFTNET_ENA) {
    (void)mig_reg_on_rst(&p->mig, car->h, &acts);
  } else {
    (void)mig_reg_on_lost(&p->mig, car->h, now_ns(p->n), &acts);
  }
  ml_apply(p, &acts, NULL);
  if (ls) ls_pump(ls);
  peer_policy(p, now_ns(p->n), false);
  leave(p->n);
}

static void car_writable(void *ud, net_stream_t *s) {
  (void)s;
  ml_carrier_t *car = ud;
  if (car->dead) return;
  enter(car->p->n);
  mig_stream_t *ls = ls_of_carrier(car->p, car);
  if (ls) ls_pump(ls);
  leave(car->p->n);
}

static void car_credit_in(void *ud, net_stream_t *s, uint32_t k) {
  (void)s;
  ml_carrier_t *car = ud;
  mig_peer_t *p = car->p;
  if (car->dead || car->released || car->plain_ls) return;
  uint64_t v = k;
  uint64_t absorb = BN_MIN(v, car->pre_left);
  car->pre_left -= absorb;
  v -= absorb;
  if (!v) return;
  enter(p->n);
  mig_actions_t acts;
  mig_actions_clear(&acts);
  (void)mig_reg_on_credit(&p->mig, car->h, v, &acts);
  ml_apply(p, &acts, NULL);
  mig_stream_t *ls = ls_of_carrier(p, car);
  if (ls) ls_pump(ls);
  leave(p->n);
}

static void car_free(void *ud, net_stream_t *s) {
  (void)s;
  ml_carrier_t *car = ud;
  mig_peer_t *p = car->p;
  enter(p->n);
  car->ns = NULL;
  if (!car->released && !car->plain_ls && mig_reg_find_carrier(&p->mig, car->h)) {
    /* Freed without an error report (both FINs): the core still had it. */
    mig_actions_t acts;
    mig_actions_clear(&acts);
    (void)mig_reg_on_lost(&p->mig, car->h, now_ns(p->n), &acts);
    ml_apply(p, &acts, NULL);
  }
  car_unlink(car);
  leave(p->n);
}

static const net_stream_cbs_t car_cbs = {.on_ready = car_ready,
                                         .on_data = car_data,
                                         .on_fin = car_fin,
                                         .on_error = car_error,
                                         .on_writable = car_writable,
                                         .on_free = car_free,
                                         .on_credit = car_credit_in};

/* --------------------------------------------------------- plain streams */

static void plain_data(void *ud, net_stream_t *s, const uint8_t *d, size_t n) {
  ml_carrier_t *car = ud;
  mig_stream_t *ls = car->plain_ls;
  if (!ls || ls->released || ls->final || ls->we_opened || !ls->cbs.on_data) {
    net_stream_consume(s, n);
    return;
  }
  enter(car->p->n);
  ls->cbs.on_data(ls->ud, ls, d, n);
  leave(car->p->n);
}

static void plain_end(ml_carrier_t *car, const char *why) {
  mig_stream_t *ls = car->plain_ls;
  if (!ls || ls->final) return;
  enter(car->p->n);
  ls_final(ls, MIG_EV_ABORTED, why);
  leave(car->p->n);
}

static void plain_fin(void *ud, net_stream_t *s) {
  ml_carrier_t *car = ud;
  if (!car->dead) net_stream_close(s);
  plain_end(car, "closed");
}

static void plain_error(void *ud, net_stream_t *s, int err) {
  (void)s;
  ml_carrier_t *car = ud;
  car->dead = true;
  plain_end(car, err == BFTNET_ERESET ? "reset" : "closed");
}

static void plain_writable(void *ud, net_stream_t *s) {
  (void)s;
  ml_carrier_t *car = ud;
  mig_stream_t *ls = car->plain_ls;
  if (!ls || car->dead) return;
  enter(car->p->n);
  ls->want_writable = true;
  plain_pump(ls);
  leave(car->p->n);
}

static void plain_free(void *ud, net_stream_t *s) {
  (void)s;
  ml_carrier_t *car = ud;
  mig_peer_t *p = car->p;
  enter(p->n);
  car->ns = NULL;
  car->dead = true;
  plain_end(car, "closed");
  if (car->plain_ls) car->plain_ls->pc = NULL;
  car_unlink(car);
  leave(p->n);
}

static const net_stream_cbs_t plain_cbs = {.on_data = plain_data,
                                           .on_fin = plain_fin,
                                           .on_error = plain_error,
                                           .on_writable = plain_writable,
                                           .on_free = plain_free};

static int plain_open(mig_stream_t *ls, net_conn_t *conn) {
  ml_carrier_t *car;
  int rc = car_open(ls->p, conn, MIG_APP_PROTO, &plain_cbs, false, &car);
  if (rc < 0) return rc;
  car->plain_ls = ls;
  ls->plain = true;
  ls->pc = car;
  ls_set_conn(ls, conn);
  return 0;
}

static void ls_fallback_plain(mig_stream_t *ls, net_conn_t *conn) {
  mig_peer_t *p = ls->p;
  mig_sm_t *m = ls->m;
  p->plain_only = true;
  count(p->n, BFTNET_COUNTER_MIG_PLAIN, 1);
  bn_log(BN_LOG_INFO, "peer %s does not speak %s: plain stream", p->id_str, MIG_PROTO_ID);
  /* Nothing was read by the peer: every application byte goes again. */
  for (uint64_t from = BN_MAX(ls->app_base, m->w_base); from < m->w_written;) {
    const uint8_t *at;
    size_t k = mig_sm_span(m, from, &at);
    if (bn_buf_append(&ls->carry, at, k) != 0) {
      bn_log(BN_LOG_ERROR, "out of memory: bytes for %s lost in the plain fallback", p->id_str);
      break;
    }
    from += k;
  }
  ls->na_fallback = true;
  mig_actions_t acts;
  mig_actions_clear(&acts);
  (void)mig_sm_on_na(&p->mig, m, &acts);
  ml_apply(p, &acts, NULL);
  (void)mig_reg_sm_free(&p->mig, m);
  ls->m = NULL;
  ls->plain_sent = 0;
  int rc = conn && net_conn_ready(conn) ? plain_open(ls, conn) : BFTNET_ECLOSED;
  if (rc < 0) {
    ls->plain = true;
    ls_final(ls, MIG_EV_ABORTED, "migration_na");
  }
}

/* -------------------------------------------------- inbound streams */

static int on_inbound_mig(void *ud, net_conn_t *c, net_stream_t *s) {
  mig_node_t *n = ud;
  if (n->stopping) return BFTNET_ECLOSED;
  mig_peer_t *p = mig_peer_get(n, net_conn_peer(c));
  if (!p) return BFTNET_ENOMEM;
  ml_carrier_t *car;
  int rc = car_open(p, c, NULL, NULL, true, &car); /* pre_left: net answered header + echo */
  if (rc < 0) return rc;
  car->ns = s;
  net_stream_set_cbs(s, &car_cbs, car);
  return 0;
}

static int on_inbound_plain(void *ud, net_conn_t *c, net_stream_t *s) {
  mig_node_t *n = ud;
  if (n->stopping) return BFTNET_ECLOSED;
  mig_peer_t *p = mig_peer_get(n, net_conn_peer(c));
  if (!p) return BFTNET_ENOMEM;
  enter(n);
  int rc = BFTNET_ENOMEM;
  ml_carrier_t *car = car_new(p, c);
  mig_stream_t *ls = car ? ls_new(p, false) : NULL;
  if (ls) {
    car->ns = s;
    car->plain_ls = ls;
    ls->plain = true;
    ls->pc = car;
    ls->neg_done = true;
    ls_set_conn(ls, c);
    net_stream_set_cbs(s, &plain_cbs, car);
    rc = n->cbs.on_stream ? n->cbs.on_stream(n->ud, p, ls) : BFTNET_ENOTMEMBER;
    if (rc < 0) {
      ls->released = true;
      car->plain_ls = NULL;
      net_stream_set_cbs(s, &plain_cbs, car);
      n->reap_needed = true;
      /* net resets the stream; its on_free unlinks the carrier */
    }
  } else if (car) {
    car_unlink(car);
  }
  leave(n);
  return rc;
}

/* ------------------------------------------------------ path policy */

static bool sa_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b) {
  if (a->ss_family != b->ss_family) return false;
  if (a->ss_family == AF_INET) {
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  if (a->ss_family == AF_INET6) {
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
  }
  return false;
}

/* Lower is better: the index of the member address an outbound connection
 * dialed; inbound (or an address no longer listed) ranks last. */
static size_t conn_rank(const mig_peer_t *p, net_conn_t *c) {
  if (net_conn_outbound(c))
    for (size_t i = 0; i < p->naddrs; i++)
      if (sa_equal(net_conn_sa(c), &p->addrs[i].sa)) return i;
  return BFTNET_MAX_ADDRS;
}

static net_conn_t *best_conn(const mig_peer_t *p) {
  net_conn_t *best = NULL;
  size_t br = 0;
  for (net_conn_t *c = net_conn_iter(p->n->net, &p->id, NULL); c; c = net_conn_iter(p->n->net, &p->id, c)) {
    size_t r = conn_rank(p, c);
    if (!best || r < br || (r == br && net_conn_seq(c) < net_conn_seq(best))) {
      best = c;
      br = r;
    }
  }
  return best;
}

static bool conn_has_carriers(const mig_peer_t *p, const net_conn_t *c) {
  for (ml_carrier_t *car = p->carriers; car; car = car->next)
    if (car->conn == c && !car->dead) return true;
  return false;
}

static void probe_done(void *ud, net_conn_t *c, int err) {
  mig_peer_t *p = ud;
  mig_node_t *n = p->n;
  enter(n);
  p->probing = false;
  n->reap_needed = true;
  if (!err && c && !p->released && !n->stopping) peer_policy(p, now_ns(n), false);
  leave(n);
}

/* The leader's work for one pair (PROTOCOL.md 11.4): move every logical
 * stream onto the kept connection, close idle duplicates, probe more
 * preferred addresses. The follower does none of it. */
static void peer_policy(mig_peer_t *p, uint64_t now, bool tick) {
  mig_node_t *n = p->n;
  if (!p->mig.leader || p->released || n->stopping || n->cfg.plain) return;
  net_conn_t *best = best_conn(p);
  size_t best_rank = best ? conn_rank(p, best) : BFTNET_MAX_ADDRS;
  if (best) {
    for (mig_stream_t *ls = p->streams; ls; ls = ls->next) {
      mig_sm_t *m = ls->m;
      if (!m || ls->final || ls->released || m->state == MIG_S_LABELING || m->state == MIG_S_CLOSED ||
          m->state == MIG_S_ABORTED || m->pend.h)
        continue;
      ml_carrier_t *cur = car_find(p, m->cur.h);
      if (cur && cur->conn == best && !m->uncertain) continue;
      if (cur && m->no_migrate && !m->uncertain) continue;
      if (now < ls->next_try) continue;
      ls->next_try = now + MIG_RETRY_NS;
      ml_carrier_t *car;
      if (car_open(p, best, MIG_PROTO_ID, &car_cbs, true, &car) < 0) break;
      if (!cur) ls->why = BFTNET_MIG_RESUME;
      else if (p->addr_changed && conn_rank(p, cur->conn) == BFTNET_MAX_ADDRS && net_conn_outbound(cur->conn))
        ls->why = BFTNET_MIG_ADDR_CHANGE;
      else if (conn_rank(p, cur->conn) > best_rank) ls->why = BFTNET_MIG_FAILBACK;
      else ls->why = BFTNET_MIG_DUPLICATE;
      mig_actions_t acts;
      mig_actions_clear(&acts);
      int rc = mig_sm_migrate(&p->mig, m, car->h, &acts);
      ml_apply(p, &acts, NULL);
      if (rc < 0) {
        car->released = true;
        net_stream_close(car->ns);
      }
    }
  }
  /* Close duplicates that carried nothing for MIG_IDLE_TICKS ticks (members
   * only; the grace lets a stream the follower just opened arrive). */
  if (p->naddrs && best && tick) {
    for (net_conn_t *c = net_conn_iter(n->net, &p->id, NULL), *next; c; c = next) {
      next = net_conn_iter(n->net, &p->id, c);
      if (c == best) continue;
      size_t slot = net_conn_seq(c) % BN_ARRAY_LEN(p->idle);
      if (p->idle[slot].seq != net_conn_seq(c)) p->idle[slot].seq = net_conn_seq(c), p->idle[slot].idle = 0;
      if (conn_has_carriers(p, c)) {
        p->idle[slot].idle = 0;
        continue;
      }
      if (++p->idle[slot].idle < MIG_IDLE_TICKS) continue;
      count(n, BFTNET_COUNTER_MIG_CONN_CLOSED_EMPTY, 1);
      net_conn_close(c, BFTNET_REASON_DUPLICATE, 0);
    }
  }
  if (best && best_rank == 0) p->addr_changed = false;
  /* Probe a more preferred address (failback), one dial at a time. */
  if (p->naddrs && best && best_rank > 0 && !p->probing && now >= p->next_probe) {
    size_t lim = BN_MIN(best_rank, p->naddrs);
    const maddr_t *a = &p->addrs[p->probe_idx++ % lim];
    p->next_probe = now + n->cfg.failback_ns;
    if (net_dial_fresh(n->net, a, probe_done, p) == 0) p->probing = true;
  }
}

static void tick(void *ud) {
  mig_node_t *n = ud;
  enter(n);
  uint64_t now = now_ns(n);
  for (mig_peer_t *p = n->peers; p; p = p->next) {
    if (p->released) continue;
    mig_actions_t acts;
    mig_actions_clear(&acts);
    (void)mig_reg_tick(&p->mig, now, &acts);
    ml_apply(p, &acts, NULL);
    peer_policy(p, now, true);
  }
  leave(n);
}

/* ---------------------------------------------------------------- API */

int mig_node_new(mig_node_t **out, net_t *net, const mig_config_t *cfg, const mig_node_cbs_t *cbs,
                void *ud, bn_counters_t *ctr) {
  if (!out || !net || !cfg || !cbs || !cfg->window_max) return BFTNET_EINVAL;
  mig_node_t *n = calloc(1, sizeof *n);
  if (!n) return BFTNET_ENOMEM;
  n->net = net;
  n->t = net_transport(net);
  n->cfg = *cfg;
  n->cbs = *cbs;
  n->ud = ud;
  n->ctr = ctr;
  bn_random(n->t->seam, &n->incarnation, sizeof n->incarnation);
  int a = ms_len(MS_PROTO_ID), b = ms_len(MIG_PROTO_ID);
  if (a < 0 || b < 0) {
    free(n);
    return BFTNET_EINVAL;
  }
  n->pre_label = (size_t)(a + b);
  int rc = n->t->ops->timer_new(n->t, tick, n, &n->timer);
  if (rc == 0) rc = n->t->ops->timer_new(n->t, flush_run, n, &n->flush_timer);
  if (rc == 0) rc = net_handle(net, MIG_PROTO_ID, on_inbound_mig, n);
  if (rc == 0) rc = net_handle(net, MIG_APP_PROTO, on_inbound_plain, n);
  if (rc < 0) {
    if (n->timer) n->t->ops->timer_free(n->timer);
    if (n->flush_timer) n->t->ops->timer_free(n->flush_timer);
    free(n);
    return rc;
  }
  n->t->ops->timer_start(n->timer, MIG_TICK_MS, MIG_TICK_MS);
  *out = n;
  return 0;
}

uint64_t mig_node_incarnation(const mig_node_t *n) { return n->incarnation; }

void mig_node_stop(mig_node_t *n) {
  if (!n || n->stopping) return;
  enter(n);
  n->stopping = true;
  for (mig_peer_t *p = n->peers; p; p = p->next) mig_peer_release(p);
  if (n->timer) {
    n->t->ops->timer_free(n->timer);
    n->timer = NULL;
  }
  if (n->flush_timer) {
    n->t->ops->timer_free(n->flush_timer);
    n->flush_timer = NULL;
  }
  leave(n);
}

void mig_node_free(mig_node_t *n) {
  if (!n) return;
  for (mig_peer_t *p = n->peers, *next; p; p = next) {
    next = p->next;
    while (p->carriers) {
      ml_carrier_t *car = p->carriers;
      p->carriers = car->next;
      free(car->rd);
      free(car);
    }
    for (mig_stream_t *ls = p->streams, *ln; ls; ls = ln) {
      ln = ls->next;
      ls_free(ls);
    }
    mig_reg_free(&p->mig);
    free(p);
  }
  free(n);
}

void mig_node_conn_up(mig_node_t *n, net_conn_t *c) {
  mig_peer_t *p = mig_peer_find(n, net_conn_peer(c));
  if (!p) return;
  enter(n);
  peer_policy(p, now_ns(n), false);
  leave(n);
}

void mig_node_conn_down(mig_node_t *n, net_conn_t *c) {
  (void)n;
  (void)c; /* its carriers report the loss themselves (net on_error) */
}

mig_peer_t *mig_peer_find(mig_node_t *n, const peerid_t *peer) {
  for (mig_peer_t *p = n->peers; p; p = p->next)
    if (!p->released && peerid_equal(&p->id, peer)) return p;
  return NULL;
}

mig_peer_t *mig_peer_get(mig_node_t *n, const peerid_t *peer) {
  mig_peer_t *p = mig_peer_find(n, peer);
  if (p) return p;
  if (n->stopping) return NULL;
  p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->n = n;
  p->id = *peer;
  peerid_to_string(peer, p->id_str, sizeof p->id_str);
  mig_reg_config_t mc = {.self = *net_local_id(n->net),
                     .peer = *peer,
                     .incarnation = n->incarnation,
                     .detach_timeout = n->cfg.detach_timeout_ns,
                     .window_max = n->cfg.window_max};
  if (mig_reg_init(&p->mig, &mc) != 0) {
    free(p);
    return NULL;
  }
  p->next = n->peers;
  n->peers = p;
  return p;
}

void mig_peer_set_owner(mig_peer_t *p, void *owner) { p->owner = owner; }
void *mig_peer_owner(const mig_peer_t *p) { return p->owner; }
const peerid_t *mig_peer_id(const mig_peer_t *p) { return &p->id; }
bool mig_peer_is_leader(const mig_peer_t *p) { return p->mig.leader; }
const mig_peer_stats_t *mig_peer_stats(const mig_peer_t *p) { return &p->st; }

void mig_peer_set_addrs(mig_peer_t *p, const maddr_t *addrs, size_t n, bool changed) {
  n = BN_MIN(n, (size_t)BFTNET_MAX_ADDRS);
  if (n) memcpy(p->addrs, addrs, n * sizeof *addrs);
  p->naddrs = n;
  if (changed) {
    p->addr_changed = true;
    p->next_probe = 0; /* look for the new preferred path at once */
  }
  enter(p->n);
  peer_policy(p, now_ns(p->n), false);
  leave(p->n);
}

net_conn_t *mig_peer_conn(mig_peer_t *p) {
  if (p->mig.leader) return best_conn(p);
  /* The follower opens where the pair's streams already are, so the leader
   * has nothing to move; else on the oldest connection. */
  for (ml_carrier_t *car = p->carriers; car; car = car->next)
    if (!car->dead && !car->released && car->conn && net_conn_ready(car->conn)) return car->conn;
  net_conn_t *oldest = NULL;
  for (net_conn_t *c = net_conn_iter(p->n->net, &p->id, NULL); c; c = net_conn_iter(p->n->net, &p->id, c))
    if (!oldest || net_conn_seq(c) < net_conn_seq(oldest)) oldest = c;
  return oldest;
}

void mig_peer_release(mig_peer_t *p) {
  if (!p || p->released) return;
  mig_node_t *n = p->n;
  enter(n);
  for (mig_stream_t *ls = p->streams; ls; ls = ls->next) mig_stream_release(ls);
  for (ml_carrier_t *car = p->carriers; car; car = car->next) car_reset(car);
  p->released = true;
  p->owner = NULL;
  n->reap_needed = true;
  leave(n);
}

int mig_stream_open(mig_peer_t *p, net_conn_t *c, const mig_stream_cbs_t *cbs, void *ud, mig_stream_t **out) {
  if (!p || !c || !cbs || !out || p->released) return BFTNET_EINVAL;
  mig_node_t *n = p->n;
  enter(n);
  int rc = BFTNET_ENOMEM;
  mig_stream_t *ls = ls_new(p, true);
  if (!ls) goto out;
  ls->cbs = *cbs;
  ls->ud = ud;
  ls_set_conn(ls, c);
  if (n->cfg.plain || p->plain_only) {
    ls->neg_done = true;
    rc = plain_open(ls, c);
  } else {
    ml_carrier_t *car;
    rc = car_open(p, c, MIG_PROTO_ID, &car_cbs, false, &car);
    if (rc < 0) goto fail;
    car->label = true;
    mig_actions_t acts;
    mig_actions_clear(&acts);
    rc = mig_reg_open(&p->mig, car->h, &acts, &ls->m);
    if (rc < 0) {
      car_reset(car);
      goto fail;
    }
    ml_apply(p, &acts, NULL);
    rc = ls_write_neg(ls);
    if (rc < 0) {
      ls_abort_local(ls, "out of memory");
      goto fail;
    }
    ls_pump(ls);
  }
fail:
  if (rc < 0) {
    ls->released = true;
    ls->final = true;
    n->reap_needed = true;
  } else {
    *out = ls;
  }
out:
  leave(n);
  return rc;
}

void mig_stream_set_cbs(mig_stream_t *ls, const mig_stream_cbs_t *cbs, void *ud) {
  ls->cbs = *cbs;
  ls->ud = ud;
}

int mig_stream_write(mig_stream_t *ls, const uint8_t *d, size_t n) {
  if (!ls || ls->released) return BFTNET_EINVAL;
  if (ls->final) return BFTNET_ECLOSED;
  if (n == 0) return 0;
  mig_node_t *node = ls->p->n;
  enter(node);
  int took = 0;
  if (ls->plain) {
    if (bn_buf_unread(&ls->carry) == 0 && ls->pc && !ls->pc->dead) {
      int k = net_stream_write(ls->pc->ns, d, n);
      if (k < 0) took = k;
      else took = k, ls->plain_sent += (uint64_t)k;
    }
  } else {
    uint64_t room = mig_sm_room(&ls->p->mig, ls->m);
    size_t k = (size_t)BN_MIN((uint64_t)n, BN_MIN(room, (uint64_t)INT32_MAX));
    if (k) {
      int rc = mig_sm_write(&ls->p->mig, ls->m, d, k);
      took = rc < 0 ? rc : (int)k;
    }
    ls->in_write = true;
    if (took > 0) ls_pump(ls);
    ls->in_write = false;
  }
  if (took > 0) ls->app_written += (uint64_t)took;
  if (took >= 0 && (size_t)took < n) ls->want_writable = true;
  leave(node);
  return took;
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
    enter(ls->p->n);
    ls_release_held(ls);
    leave(ls->p->n);
  }
}

void mig_stream_release(mig_stream_t *ls) {
  if (!ls || ls->released) return;
  mig_node_t *n = ls->p->n;
  enter(n);
  ls->released = true;
  if (ls->m && !ls->final) {
    mig_actions_t acts;
    mig_actions_clear(&acts);
    if (mig_sm_abort(&ls->p->mig, ls->m, &acts) == 0) ml_apply(ls->p, &acts, NULL);
  }
  if (ls->pc) {
    ls->pc->plain_ls = NULL;
    car_reset(ls->pc);
    ls->pc = NULL;
  }
  ls->final = true;
  n->reap_needed = true;
  leave(n);
}

bool mig_stream_migratable(const mig_stream_t *ls) { return ls && !ls->plain; }

bool mig_stream_attached(const mig_stream_t *ls) {
  if (!ls || ls->final) return false;
  if (ls->plain) return ls->pc && !ls->pc->dead;
  return ls->m->cur.h != 0;
}

uint64_t mig_stream_id(const mig_stream_t *ls) { return ls && ls->m ? ls->m->id : 0; }
uint64_t mig_stream_app_written(const mig_stream_t *ls) { return ls->app_written; }

uint64_t mig_stream_app_confirmed(const mig_stream_t *ls) {
  if (ls->plain) return ls->plain_sent;
  if (!ls->m) return 0;
  uint64_t c = ls->m->w_confirmed;
  return c > ls->app_base ? BN_MIN(c - ls->app_base, ls->app_written) : 0;
}

net_conn_t *mig_stream_conn(const mig_stream_t *ls) {
  if (ls->final) return NULL;
  if (ls->plain) return ls->pc && !ls->pc->dead ? ls->pc->conn : NULL;
  ml_carrier_t *car = ls->m ? car_find(ls->p, ls->m->cur.h) : NULL;
  return car && !car->dead ? car->conn : NULL;
}
