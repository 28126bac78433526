/*
 * io.c — what net reports on the streams under logical streams, turned into
 * core events: the first StreamMigration message of a carrier, its data,
 * FIN, errors, credit and free; plain `/bftnet/msg/1.0.0` streams and the
 * fallback to one when the peer answers `na` to the Label; and
 * mig_stream_open, which opens our carrier (or plain stream) with these
 * callbacks.
 */
#include <stdlib.h>

#include "mig_internal.h"

/* ------------------------------------------------------- plain streams */

static void plain_data(void *ud, net_stream_t *s, const uint8_t *d, size_t n) {
  mig_carrier_t *car = ud;
  mig_stream_t *ls = car->plain_ls;
  if (!ls || ls->released || ls->final || ls->we_opened || !ls->cbs.on_data) {
    net_stream_consume(s, n);
    return;
  }
  mig__defer_enter(car->p->n);
  ls->cbs.on_data(ls->ud, ls, d, n);
  mig__defer_leave(car->p->n);
}

static void plain_end(mig_carrier_t *car, const char *why) {
  mig_stream_t *ls = car->plain_ls;
  if (!ls || ls->final) return;
  mig__defer_enter(car->p->n);
  mig__stream_final(ls, MIG_EV_ABORTED, why);
  mig__defer_leave(car->p->n);
}

static void plain_fin(void *ud, net_stream_t *s) {
  mig_carrier_t *car = ud;
  if (!car->dead) net_stream_close(s);
  plain_end(car, "closed");
}

/* A peer stops in order with GO_AWAY on each connection it has up, then
 * resets its streams and closes. Those frames travel on separate TCP
 * connections, so a stream the pair opens on another of its connections
 * before that one's GO_AWAY arrives would live only until it does; and a
 * connection the peer had not finished setting up gets no GO_AWAY at all
 * (to us it may come up just before it closes). A GO_AWAY alone does not
 * say the peer stops: the pair's leader also retires an emptied duplicate
 * with one. But a stream of the pair ending on such a connection does (a
 * leader retires only connections that carried no stream for three ticks).
 * From then on every connection to the peer made before is treated as going
 * away; one made after (a dial that reaches the peer again, or the peer's
 * new process dialing us) is not. Only a GO_AWAY the connection itself
 * carried counts: a connection this rule marked says nothing new. */
static void peer_going_away(mig_peer_t *p) {
  if (p->released || p->n->stopping) return;
  p->away_seq = net_last_conn_seq(p->n->net);
  net_peer_going_away(p->n->net, &p->id);
}

/* Why a carrier (or plain stream) ended with err: the connection's reason
 * when it is gone, GOING_AWAY for a reset from a peer that said GO_AWAY. */
static bftnet_reason_t carrier_cause(const mig_carrier_t *car, int err) {
  if (!car->conn) return BFTNET_REASON_NONE;
  if (net_conn_going_away(car->conn)) return BFTNET_REASON_GOING_AWAY;
  if (err == BFTNET_ERESET) return BFTNET_REASON_RESET;
  return net_conn_end_reason(car->conn);
}

static void plain_error(void *ud, net_stream_t *s, int err) {
  (void)s;
  mig_carrier_t *car = ud;
  car->dead = true;
  mig_stream_t *ls = car->plain_ls;
  if (err == BFTNET_ENA && ls && ls->we_opened && !ls->final) {
    ls->refused = true; /* the peer does not serve this protocol */
    bn_counter_add(car->p->n->ctr, BFTNET_COUNTER_CLASS_REFUSED, 1);
  }
  bftnet_reason_t cause = carrier_cause(car, err);
  if (ls) ls->cause = cause;
  if (ls && car->conn && net_conn_said_goaway(car->conn)) peer_going_away(car->p);
  plain_end(car, cause == BFTNET_REASON_GOING_AWAY ? "going_away"
                 : err == BFTNET_ERESET            ? "reset"
                                                   : "closed");
  if (car->plain_ls) car->plain_ls->cause = BFTNET_REASON_NONE;
}

/* The peer echoed our plain stream's protocol: data may flow. */
static void plain_ready(void *ud, net_stream_t *s) {
  (void)s;
  mig_carrier_t *car = ud;
  mig_stream_t *ls = car->plain_ls;
  if (!ls || car->dead || ls->neg_done) return;
  mig__defer_enter(car->p->n);
  ls->neg_done = true;
  mig__stream_pump(ls);
  mig__defer_leave(car->p->n);
}

static void plain_writable(void *ud, net_stream_t *s) {
  (void)s;
  mig_carrier_t *car = ud;
  mig_stream_t *ls = car->plain_ls;
  if (!ls || car->dead) return;
  mig__defer_enter(car->p->n);
  ls->want_writable = true;
  mig__stream_pump(ls); /* a plain stream: its plain pump */
  mig__defer_leave(car->p->n);
}

static void plain_free(void *ud, net_stream_t *s) {
  (void)s;
  mig_carrier_t *car = ud;
  mig_peer_t *p = car->p;
  mig__defer_enter(p->n);
  car->ns = NULL;
  car->dead = true;
  plain_end(car, "closed");
  if (car->plain_ls) car->plain_ls->pc = NULL;
  mig__carrier_unlink(car);
  mig__defer_leave(p->n);
}

const net_stream_cbs_t mig__io_plain_cbs = {.on_ready = plain_ready,
                                            .on_data = plain_data,
                                            .on_fin = plain_fin,
                                            .on_error = plain_error,
                                            .on_writable = plain_writable,
                                            .on_free = plain_free};

static int plain_open(mig_stream_t *ls, net_conn_t *conn) {
  mig_carrier_t *car;
  const char *proto = ls->p->n->apps[ls->app];
  int rc = mig__carrier_open(ls->p, conn, proto, &mig__io_plain_cbs, false, &car);
  if (rc < 0) return rc;
  car->plain_ls = ls;
  ls->plain = true;
  ls->pc = car;
  mig__stream_set_conn(ls, conn);
  return 0;
}

/* `na` to the Label: the peer speaks no migration. L's bytes go again on a
 * plain stream of L's protocol (the peer discarded them unread). */
static void ls_fallback_plain(mig_stream_t *ls, net_conn_t *conn) {
  mig_peer_t *p = ls->p;
  mig_sm_t *m = ls->m;
  p->plain_only = true;
  mig__count(p->n, BFTNET_COUNTER_MIG_PLAIN, 1);
  bn_log(p->n->cfg.log, BN_LOG_INFO, "peer %s does not speak %s: plain stream", MIG_WHO(p),
         MIG_PROTO_ID);
  /* Nothing was read by the peer: every application byte goes again. */
  for (uint64_t from = BN_MAX(ls->app_base, m->w_base); from < m->w_written;) {
    const uint8_t *at;
    size_t k = mig_sm_span(m, from, &at);
    if (bn_buf_append(&ls->carry, at, k) != 0) {
      bn_log(p->n->cfg.log, BN_LOG_ERROR, "out of memory: bytes for %s lost in the plain fallback",
             MIG_WHO(p));
      break;
    }
    from += k;
  }
  ls->na_fallback = true;
  mig_actions_t acts;
  mig_actions_clear(&acts);
  (void)mig_sm_on_na(&p->mig, m, &acts);
  mig__stream_apply(p, &acts, NULL);
  (void)mig_reg_sm_free(&p->mig, m);
  ls->m = NULL;
  ls->plain_sent = 0;
  int rc = conn && net_conn_ready(conn) ? plain_open(ls, conn) : BFTNET_ECLOSED;
  if (rc < 0) {
    ls->plain = true;
    mig__stream_final(ls, MIG_EV_ABORTED, "migration_na");
  }
}

/* --------------------------------------------- migratable carriers */

/* The first message of a carrier: a Label or Migrate the peer sent, or the
 * AckMigrate answering ours. */
static void car_on_msg(mig_carrier_t *car, const mig_msg_t *msg) {
  mig_peer_t *p = car->p;
  mig_node_t *n = p->n;
  mig__confirm_ensure(p, car->conn); /* we may read a logical stream on this connection */
  mig_actions_t acts;
  mig_actions_clear(&acts);
  mig_sm_t *m = NULL;
  int rc = mig_reg_on_msg(&p->mig, car->h, msg, mig__now(n), &acts, &m);
  if (msg->type == MIG_MSG_ACK && msg->deny && m && rc == 0) {
    mig__count(n, BFTNET_COUNTER_MIG_DENIED, 1);
    mig_stream_t *ls = mig__stream_of(p, m);
    if (ls) mig__stream_emit(ls, &(mig_event_t){.type = MIG_EV_DENIED, .stream_id = m->id});
  }
  /* A Label: a logical stream the peer opened. The node hears of it once
   * its inner negotiation names one of our protocols (stream.c). */
  if (msg->type == MIG_MSG_LABEL && rc == 0 && m) {
    mig_stream_t *fresh = mig__stream_new(p, false);
    if (!fresh) {
      (void)mig_sm_abort(&p->mig, m, &acts);
    } else {
      fresh->m = m;
      mig__stream_set_conn(fresh, car->conn);
    }
  }
  mig__stream_apply(p, &acts, NULL);
  /* A carrier the core did not take (a denied or rejected Migrate): close
   * our side too; its bytes are discarded. */
  if (!mig_reg_find_carrier(&p->mig, car->h) && !car->dead) {
    car->released = true;
    if (car->ns) net_stream_close(car->ns);
  }
  if (m) {
    mig_stream_t *ls = mig__stream_of(p, m);
    if (ls) mig__stream_pump(ls);
  }
}

static void car_data(void *ud, net_stream_t *s, const uint8_t *d, size_t n) {
  mig_carrier_t *car = ud;
  mig_peer_t *p = car->p;
  mig_node_t *node = p->n;
  mig__defer_enter(node);
  if (car->released || car->dead) goto out; /* discarded, never credited */
  if (car->rd) {
    mig_msg_t msg;
    size_t used = 0;
    if (mig__carrier_read_msg(car, s, d, n, &msg, &used) != 1) goto out;
    car_on_msg(car, &msg);
    if (car->released || car->dead) goto out;
    d += used; /* the rest is L's */
    n -= used;
    if (!n) goto out;
  }
  mig_actions_t acts;
  mig_actions_clear(&acts);
  int rc = mig_reg_on_data(&p->mig, car->h, n, &acts);
  mig__stream_apply(p, &acts, d);
  if (rc == BFTNET_ENOTFOUND || rc == BFTNET_ESTATE)
    mig__carrier_credit(car, n); /* not L's bytes */
  mig_stream_t *ls = mig__stream_of_carrier(p, car);
  if (ls) {
    mig__confirm_note(p, ls->m);
    mig__stream_pump(ls);
  }
out:
  mig__defer_leave(node);
}

static void car_ready(void *ud, net_stream_t *s) {
  (void)s;
  mig_carrier_t *car = ud;
  mig_peer_t *p = car->p;
  if (!car->label || car->dead) return;
  mig__defer_enter(p->n);
  mig_sm_t *m = mig_reg_find_carrier(&p->mig, car->h);
  if (m && m->state == MIG_S_LABELING) {
    mig_actions_t acts;
    mig_actions_clear(&acts);
    (void)mig_sm_on_echo(&p->mig, m, &acts);
    mig__stream_apply(p, &acts, NULL);
  }
  mig__defer_leave(p->n);
}

static void car_fin(void *ud, net_stream_t *s) {
  (void)s;
  mig_carrier_t *car = ud;
  mig_peer_t *p = car->p;
  if (car->dead || car->released) return;
  mig__defer_enter(p->n);
  mig_actions_t acts;
  mig_actions_clear(&acts);
  (void)mig_reg_on_fin(&p->mig, car->h, &acts);
  mig__stream_apply(p, &acts, NULL);
  mig_stream_t *ls = mig__stream_of_carrier(p, car);
  if (ls) {
    mig__confirm_note(p, ls->m); /* the end of L's direction is confirmed too */
    mig__stream_pump(ls);
  }
  mig__defer_leave(p->n);
}

static void car_error(void *ud, net_stream_t *s, int err) {
  (void)s;
  mig_carrier_t *car = ud;
  mig_peer_t *p = car->p;
  if (car->dead) return;
  car->dead = true;
  if (car->released) return;
  mig__defer_enter(p->n);
  mig_actions_t acts;
  mig_actions_clear(&acts);
  mig_sm_t *m = mig_reg_find_carrier(&p->mig, car->h);
  mig_stream_t *ls = mig__stream_of(p, m);
  if (ls) ls->cause = carrier_cause(car, err); /* for the events this end causes */
  /* The stream's own carrier (not one left behind by a move). */
  if (ls && m->cur.h == car->h && car->conn && net_conn_said_goaway(car->conn)) peer_going_away(p);
  if (err == BFTNET_ENA && car->label && m && m->state == MIG_S_LABELING && ls) {
    ls_fallback_plain(ls, car->conn);
  } else if (err == BFTNET_ERESET || err == BFTNET_ENA) {
    (void)mig_reg_on_rst(&p->mig, car->h, &acts);
  } else {
    (void)mig_reg_on_lost(&p->mig, car->h, mig__now(p->n), &acts);
  }
  mig__stream_apply(p, &acts, NULL);
  if (ls) ls->cause = BFTNET_REASON_NONE;
  if (ls) mig__stream_pump(ls);
  mig__policy_run(p, mig__now(p->n), false);
  mig__defer_leave(p->n);
}

static void car_writable(void *ud, net_stream_t *s) {
  (void)s;
  mig_carrier_t *car = ud;
  if (car->dead) return;
  mig__defer_enter(car->p->n);
  mig_stream_t *ls = mig__stream_of_carrier(car->p, car);
  if (ls) mig__stream_pump(ls);
  mig__defer_leave(car->p->n);
}

static void car_credit_in(void *ud, net_stream_t *s, uint32_t k) {
  (void)s;
  mig_carrier_t *car = ud;
  mig_peer_t *p = car->p;
  /* Flow control only when the peer confirms with Confirms (§11.12). */
  if (car->dead || car->released || car->plain_ls || p->mig.mode == MIG_MODE_ON) return;
  uint64_t v = mig__carrier_absorb(car, k);
  if (!v) return;
  mig__defer_enter(p->n);
  mig_actions_t acts;
  mig_actions_clear(&acts);
  (void)mig_reg_on_credit(&p->mig, car->h, v, &acts);
  mig__stream_apply(p, &acts, NULL);
  mig_stream_t *ls = mig__stream_of_carrier(p, car);
  if (ls) mig__stream_pump(ls);
  mig__defer_leave(p->n);
}

static void car_free(void *ud, net_stream_t *s) {
  (void)s;
  mig_carrier_t *car = ud;
  mig_peer_t *p = car->p;
  mig__defer_enter(p->n);
  car->ns = NULL;
  if (!car->released && !car->plain_ls && mig_reg_find_carrier(&p->mig, car->h)) {
    /* Freed without an error report (both FINs): the core still had it. */
    mig_actions_t acts;
    mig_actions_clear(&acts);
    (void)mig_reg_on_lost(&p->mig, car->h, mig__now(p->n), &acts);
    mig__stream_apply(p, &acts, NULL);
  }
  mig__carrier_unlink(car);
  mig__defer_leave(p->n);
}

const net_stream_cbs_t mig__io_carrier_cbs = {.on_ready = car_ready,
                                              .on_data = car_data,
                                              .on_fin = car_fin,
                                              .on_error = car_error,
                                              .on_writable = car_writable,
                                              .on_free = car_free,
                                              .on_credit = car_credit_in};

/* ------------------------------------------------------ opening ours */

int mig_stream_open(mig_peer_t *p, net_conn_t *c, unsigned app, const mig_stream_cbs_t *cbs,
                    void *ud, mig_stream_t **out) {
  if (!p || !c || !cbs || !out || p->released || app >= p->n->napps) return BFTNET_EINVAL;
  mig_node_t *n = p->n;
  mig__defer_enter(n);
  int rc = BFTNET_ENOMEM;
  mig_stream_t *ls = mig__stream_new(p, true);
  if (!ls) goto out;
  ls->app = (int)app;
  ls->cbs = *cbs;
  ls->ud = ud;
  mig__stream_set_conn(ls, c);
  if (n->cfg.plain || p->plain_only) {
    ls->neg_done = app == 0; /* a class's data waits for the echo (stream.c) */
    rc = plain_open(ls, c);
  } else {
    mig_carrier_t *car;
    rc = mig__carrier_open(p, c, MIG_PROTO_ID, &mig__io_carrier_cbs, false, &car);
    if (rc < 0) goto fail;
    car->label = true;
    mig__confirm_ensure(p, c); /* learns how the peer confirms (§11.12) */
    mig_actions_t acts;
    mig_actions_clear(&acts);
    rc = mig_reg_open(&p->mig, car->h, &acts, &ls->m);
    if (rc < 0) {
      mig__carrier_reset(car);
      goto fail;
    }
    mig__stream_apply(p, &acts, NULL);
    rc = mig__stream_write_neg(ls);
    if (rc < 0) {
      mig__stream_abort_local(ls, "out of memory");
      goto fail;
    }
    mig__stream_pump(ls);
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
  mig__defer_leave(n);
  return rc;
}
