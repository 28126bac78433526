/* migration_sim_test.c — two peers' registries over simulated carriers.
 * A stream of bytes (byte i = sim_byte(i)) flows one way while carriers are
 * cut — at every byte offset of the Migrate/AckMigrate exchange, and at
 * random — and the leader resumes on new carriers. Asserts: every byte
 * delivered exactly once, in order; the retransmit window stays bounded; no
 * abort, no violation. Seeded (th_seed). */
#include "harness.h"
#include "migration_sim.h"

#define SIM_WINDOW_MAX 2000u

static uint8_t sim_byte(uint64_t i) { return (uint8_t)((i * 131u + (i >> 8) * 7u + 3u) & 0xffu); }

static uint64_t sim_rand(sim_t *m) {
  m->rng ^= m->rng << 13;
  m->rng ^= m->rng >> 7;
  m->rng ^= m->rng << 17;
  return m->rng;
}
static uint64_t sim_below(sim_t *m, uint64_t n) { return n ? sim_rand(m) % n : 0; }

static void sim_dir_put(sim_dir_t *d, const uint8_t *p, size_t n) {
  if (!n) return;
  if (d->len + n > d->cap) {
    d->cap = (d->len + n) * 2;
    d->q = realloc(d->q, d->cap);
    assert_non_null(d->q);
  }
  memcpy(d->q + d->len, p, n);
  d->len += n;
}

static void sim_peerids(peerid_t *leader, peerid_t *follower) {
  peerid_t a = {.len = 4, .bytes = {1, 2, 3, 4}}, b = {.len = 4, .bytes = {1, 2, 3, 5}};
  bool a_leads = mig_self_is_leader(&a, &b);
  assert_true(a_leads != mig_self_is_leader(&b, &a));
  *leader = a_leads ? a : b;
  *follower = a_leads ? b : a;
}

static void sim_cut(sim_t *m, int h) {
  sim_carrier_t *c = &m->c[h];
  if (c->dead) return;
  c->dead = true;
  for (int k = 0; k < m->ncq;) { /* its connection's Confirms in flight are lost */
    if (m->cq[k].h != (uint64_t)h) {
      k++;
      continue;
    }
    m->cq[k] = m->cq[--m->ncq];
    m->confirms_lost++;
  }
  if (c->also_cut) sim_cut(m, c->also_cut);
}

static int sim_new_carrier(sim_t *m, int opener) {
  assert_true(m->nc + 1 < SIM_MAX_CARRIERS);
  int h = ++m->nc;
  sim_carrier_t *c = &m->c[h];
  memset(c, 0, sizeof(*c));
  c->used = true;
  c->opener = opener;
  c->mode[opener] = SIM_R_MSG;     /* the Ack (or, for a Label, the echo) */
  c->mode[1 - opener] = SIM_R_MSG; /* the Label / Migrate */
  mig_reader_init(&c->rd[0]);
  mig_reader_init(&c->rd[1]);
  return h;
}

/* Applies the actions endpoint i's registry emitted. */
static void sim_apply(sim_t *m, int i) {
  sim_ep_t *e = &m->ep[i];
  for (size_t k = 0; k < m->acts.n; k++) {
    const mig_action_t *a = &m->acts.a[k];
    sim_carrier_t *c = a->carrier ? &m->c[a->carrier] : NULL;
    switch (a->type) {
    case MIG_ACT_SEND_MSG: {
      bn_buf_t b;
      bn_buf_init(&b);
      assert_ok(mig_msg_encode(&a->msg, &b));
      if (!c->dead) sim_dir_put(&c->d[i], bn_buf_head(&b), bn_buf_unread(&b));
      bn_buf_free(&b);
      if (a->msg.type == MIG_MSG_LABEL) c->mode[i] = SIM_R_ECHO;
      break;
    }
    case MIG_ACT_CREDIT:
      if (!c->dead) c->d[1 - i].credit += a->n;
      break;
    case MIG_ACT_FIN:
      c->d[i].fin = true;
      break;
    case MIG_ACT_RELEASE:
      c->released[i] = true;
      c->d[i].fin = true;
      break;
    case MIG_ACT_RST:
      sim_cut(m, (int)a->carrier);
      e->violations++;
      break;
    case MIG_ACT_CLOSE_CONN:
      e->violations++;
      break;
    case MIG_ACT_ABORTED:
      fprintf(stderr, "ep%d aborted: %s lost %llu\n", i, mig_reason_str(a->reason),
              (unsigned long long)a->lost);
      e->aborts++;
      for (int r = 0; r < MIG_R_COUNT; r++)
        if (m->ep[1 - i].reg.counts[r])
          fprintf(stderr, "  peer count %s=%llu\n", mig_reason_str((mig_reason_t)r),
                  (unsigned long long)m->ep[1 - i].reg.counts[r]);
      if (m->ep[1 - i].s)
        fprintf(stderr, "  peer stream %s id %llu aliases %zu\n", mig_state_str(m->ep[1 - i].s->state),
                (unsigned long long)m->ep[1 - i].s->id, m->ep[1 - i].s->n_alias);
      fprintf(stderr, "  my id %llu uncertain %d\n", (unsigned long long)m->ep[i].s->id, m->ep[i].s->uncertain);
      break;
    case MIG_ACT_CLOSED:
      e->closed++;
      break;
    case MIG_ACT_READ_EOF:
      e->read_eof++;
      break;
    default:
      break;
    }
  }
  mig_actions_clear(&m->acts);
}

/* Endpoint i takes up to max bytes from d[1-i] of carrier h. */
static void sim_deliver(sim_t *m, int i, int h, size_t max) {
  sim_carrier_t *c = &m->c[h];
  sim_dir_t *d = &c->d[1 - i];
  sim_ep_t *e = &m->ep[i];
  if (c->dead) return;
  while (max && d->off < d->len && !c->dead) {
    size_t avail = d->len - d->off;
    if (c->mode[i] == SIM_R_ECHO) {
      assert_int_equal(d->q[d->off], 'E');
      d->off++;
      max--;
      c->mode[i] = SIM_R_DATA;
      if (!c->released[i] && e->s) { /* ESTATE: a Migrate overtook the echo (implied) */
        int rc = mig_sm_on_echo(&e->reg, e->s, &m->acts);
        assert_true(rc == 0 || rc == BFTNET_ESTATE);
      }
      sim_apply(m, i);
      continue;
    }
    if (c->mode[i] == SIM_R_MSG) {
      size_t n = c->byte_mode ? 1 : BN_MIN(avail, max);
      size_t took = mig_reader_feed(&c->rd[i], d->q + d->off, n);
      mig_msg_t msg;
      int rc = mig_reader_next(&c->rd[i], &msg);
      assert_true(rc >= 0);
      const uint8_t *rest;
      size_t rlen;
      mig_reader_rest(&c->rd[i], &rest, &rlen);
      size_t msg_bytes = rc == 1 ? took - rlen : took;
      d->off += msg_bytes;
      max = max > msg_bytes ? max - msg_bytes : 0;
      c->pre_seen += msg_bytes;
      if (c->cut_at && c->pre_seen >= c->cut_at) {
        sim_cut(m, h);
        return;
      }
      if (rc != 1) continue;
      c->mode[i] = SIM_R_DATA;
      mig_sm_t *s = NULL;
      rc = mig_reg_on_msg(&e->reg, (uint64_t)h, &msg, m->now, &m->acts, &s);
      if (rc < 0) e->violations++;
      if (msg.type == MIG_MSG_LABEL && rc == 0) {
        e->s = s;
        sim_dir_put(&c->d[i], (const uint8_t *)"E", 1);
        assert_ok(mig_sm_close(&e->reg, s, &m->acts)); /* the reader closes at once */
      }
      if (c->cut_at && c->pre_seen >= c->cut_at) sim_cut(m, h);
      sim_apply(m, i);
      continue;
    }
    size_t n = BN_MIN(avail, max);
    if (c->released[i]) { /* forgotten by the core: discard, no credit */
      d->off += n;
      max -= n;
      continue;
    }
    int rc = mig_reg_on_data(&e->reg, (uint64_t)h, n, &m->acts);
    assert_int_equal(rc, 0);
    const mig_action_t *a = &m->acts.a[0];
    assert_int_equal(a->type, MIG_ACT_DELIVER);
    for (size_t k = 0; k < a->len; k++)
      if (d->q[d->off + a->skip + k] != sim_byte(e->received + k))
        fail_msg("ep%d: byte %llu wrong", i, (unsigned long long)(e->received + k));
    e->received += a->len;
    d->off += n;
    max -= n;
    sim_apply(m, i);
  }
  if (!c->dead && d->off == d->len && d->fin && !d->fin_done && c->mode[i] == SIM_R_DATA) {
    d->fin_done = true;
    if (!c->released[i]) {
      int rc = mig_reg_on_fin(&e->reg, (uint64_t)h, &m->acts);
      if (rc != 0 && rc != BFTNET_ENOTFOUND) e->violations++;
      sim_apply(m, i);
    }
  }
}

static void sim_credits(sim_t *m, int i, int h) {
  sim_carrier_t *c = &m->c[h];
  sim_dir_t *d = &c->d[i]; /* credit for what i wrote */
  if (c->dead || !d->credit) return;
  uint64_t n = d->credit;
  d->credit = 0;
  c->cred_l[i] += n;
  if (c->released[i]) return;
  int rc = mig_reg_on_credit(&m->ep[i].reg, (uint64_t)h, n, &m->acts);
  if (rc != 0 && rc != BFTNET_ENOTFOUND) m->ep[i].violations++;
  sim_apply(m, i);
}

/* Confirm mode: endpoint i sends a Confirm for its stream if one is due
 * (random thresholds), beside its current carrier. */
static void sim_confirm_send(sim_t *m, int i) {
  sim_ep_t *e = &m->ep[i];
  uint64_t off;
  if (!e->s || m->ncq == SIM_MAX_CONFIRMS || !e->s->cur.h) return;
  if (!mig_sm_confirm_due(e->s, sim_below(m, 300), &off)) return;
  m->cq[m->ncq++] = (sim_confirm_t){.to = 1 - i, .h = e->s->cur.h, .id = e->s->id, .off = off};
  m->confirms_sent++;
  assert_ok(mig_sm_confirm_sent(&e->reg, e->s, off, &m->acts));
  sim_apply(m, i);
}

/* A Confirm in flight arrives: any of them (they travel on several
 * connections, so any order). A stale one is ignored, one for a stream
 * that ended too; one beyond what was sent would be a violation. */
static void sim_confirm_deliver(sim_t *m) {
  if (!m->ncq) return;
  int k = (int)sim_below(m, (uint64_t)m->ncq);
  sim_confirm_t c = m->cq[k];
  m->cq[k] = m->cq[--m->ncq];
  int rc = mig_reg_on_confirm(&m->ep[c.to].reg, c.id, c.off, &m->acts);
  if (rc != 0 && rc != BFTNET_ENOTFOUND) m->ep[c.to].violations++;
  sim_apply(m, c.to);
}

static void sim_pull(sim_t *m, int i) {
  sim_ep_t *e = &m->ep[i];
  if (!e->s) return;
  for (int guard = 0; guard < 8; guard++) {
    uint64_t h = e->s->cur.h;
    if (!h) return;
    sim_carrier_t *c = &m->c[h];
    uint64_t inflight = c->sent_l[i] - c->cred_l[i];
    size_t room = inflight >= SIM_YAMUX_WINDOW ? 0 : (size_t)(SIM_YAMUX_WINDOW - inflight);
    mig_chunk_t ch;
    size_t want = 1 + (size_t)sim_below(m, 400);
    if (mig_sm_pull(&e->reg, e->s, BN_MIN(room, want), &ch, &m->acts) != 1) break;
    assert_int_equal(ch.carrier, h);
    if (!c->dead) sim_dir_put(&c->d[i], ch.p, ch.n);
    c->sent_l[i] += ch.n;
    if (ch.fin) c->d[i].fin = true;
    sim_apply(m, i);
  }
}

static void sim_write(sim_t *m) {
  sim_ep_t *e = &m->ep[m->writer];
  if (!e->s || e->s->w_closed || e->s->state >= MIG_S_CLOSED) return;
  uint64_t room = mig_sm_room(&e->reg, e->s);
  uint64_t want = 1 + sim_below(m, 300);
  uint64_t n = BN_MIN(BN_MIN(room, want), m->total - e->written);
  uint8_t buf[300];
  for (uint64_t k = 0; k < n; k++) buf[k] = sim_byte(e->written + k);
  if (n) assert_ok(mig_sm_write(&e->reg, e->s, buf, (size_t)n));
  e->written += n;
  if (e->written == m->total) assert_ok(mig_sm_close(&e->reg, e->s, &m->acts));
  uint64_t w = mig_sm_window(e->s);
  if (w > e->max_window) e->max_window = w;
  assert_true(w <= SIM_WINDOW_MAX);
  sim_apply(m, m->writer);
}

/* Each side learns of dead carriers on its own (at random steps). */
static void sim_notice_lost(sim_t *m, int i, bool all) {
  for (int h = 1; h <= m->nc; h++) {
    sim_carrier_t *c = &m->c[h];
    if (!c->dead || c->lost_seen[i]) continue;
    if (!all && sim_below(m, 3)) continue;
    c->lost_seen[i] = true;
    int rc = mig_reg_on_lost(&m->ep[i].reg, (uint64_t)h, m->now, &m->acts);
    assert_true(rc == 0 || rc == BFTNET_ENOTFOUND);
    sim_apply(m, i);
  }
}

/* The leader's policy: resume a detached L, retry an unsettled one. */
static int sim_leader(sim_t *m, bool graceful) {
  sim_ep_t *e = &m->ep[0];
  mig_sm_t *s = e->s;
  if (!s || s->state >= MIG_S_CLOSED || s->state == MIG_S_LABELING || s->pend.h) return 0;
  bool need = !s->cur.h || s->uncertain || graceful;
  if (!need || (s->no_migrate && s->cur.h)) return 0;
  int h = sim_new_carrier(m, 0);
  assert_ok(mig_sm_migrate(&e->reg, s, (uint64_t)h, &m->acts));
  sim_apply(m, 0);
  return h;
}

static void sim_init(sim_t *m, int writer, uint64_t total, uint64_t seed, bool confirms) {
  memset(m, 0, sizeof(*m));
  m->rng = seed * 2654435761u + 1;
  m->writer = writer;
  m->total = total;
  peerid_t lead, follow;
  sim_peerids(&lead, &follow);
  mig_reg_config_t cfg = {.self = lead, .peer = follow, .incarnation = 11,
                      .detach_timeout = UINT64_C(1) << 60, .window_max = SIM_WINDOW_MAX};
  assert_ok(mig_reg_init(&m->ep[0].reg, &cfg));
  cfg.self = follow;
  cfg.peer = lead;
  cfg.incarnation = 22;
  assert_ok(mig_reg_init(&m->ep[1].reg, &cfg));
  assert_true(m->ep[0].reg.leader && !m->ep[1].reg.leader);
  /* How the reader confirms: yamux credit (an older peer, PROTOCOL.md
   * §11.11), or Confirm messages on their own channel (§11.12). */
  mig_mode_t mode = confirms ? MIG_MODE_ON : MIG_MODE_LEGACY;
  m->confirms = confirms;
  assert_ok(mig_reg_set_mode(&m->ep[0].reg, mode, &m->acts));
  assert_ok(mig_reg_set_mode(&m->ep[1].reg, mode, &m->acts));
  int h = sim_new_carrier(m, writer);
  assert_ok(mig_reg_open(&m->ep[writer].reg, (uint64_t)h, &m->acts, &m->ep[writer].s));
  sim_apply(m, writer);
}

static void sim_free(sim_t *m) {
  for (int h = 1; h <= m->nc; h++) {
    free(m->c[h].d[0].q);
    free(m->c[h].d[1].q);
  }
  mig_reg_free(&m->ep[0].reg);
  mig_reg_free(&m->ep[1].reg);
}

/* One random step. chaos: cuts and graceful migrations happen. */
static void sim_step(sim_t *m, bool chaos) {
  m->now++;
  switch (sim_below(m, 8)) {
  case 0:
    sim_write(m);
    break;
  case 1:
  case 2:
    sim_pull(m, (int)sim_below(m, 2));
    break;
  case 3:
  case 4:
    if (m->nc) {
      int h = 1 + (int)sim_below(m, (uint64_t)m->nc);
      if (sim_below(m, 2)) {
        uint64_t span = (uint64_t)BN_MIN(m->nc, 3);
        h = m->nc - (int)sim_below(m, span);
      }
      int who = (int)sim_below(m, 2);
      size_t max = 1 + (size_t)sim_below(m, 500);
      sim_deliver(m, who, h, max);
    }
    break;
  case 5:
    for (int h = BN_MAX(1, m->nc - 4); h <= m->nc; h++) sim_credits(m, (int)sim_below(m, 2), h);
    if (m->confirms) { /* credit is flow control only then: the Confirms free windows */
      sim_confirm_send(m, (int)sim_below(m, 2));
      if (sim_below(m, 2)) sim_confirm_deliver(m); /* some stay in flight across cuts */
    }
    break;
  case 6:
    sim_notice_lost(m, (int)sim_below(m, 2), false);
    break;
  default:
    /* Known limit (see report): a Label lost in a cut loses L, so cuts start
     * once both sides know L. */
    if (chaos && !sim_below(m, 40) && m->nc && m->ep[0].s && m->ep[1].s) {
      uint64_t span = (uint64_t)BN_MIN(m->nc, 2);
      sim_cut(m, m->nc - (int)sim_below(m, span));
    }
    if (m->ep[0].s) sim_leader(m, chaos && !sim_below(m, 30));
    break;
  }
}

/* Runs without cuts until both sides are CLOSED; asserts the invariants. */
static void sim_finish(sim_t *m) {
  for (int step = 0; step < 400000; step++) {
    sim_ep_t *w = &m->ep[m->writer], *r = &m->ep[1 - m->writer];
    if (w->s && r->s && w->s->state == MIG_S_CLOSED && r->s->state == MIG_S_CLOSED) break;
    if (step % 64 == 0) {
      sim_notice_lost(m, 0, true);
      sim_notice_lost(m, 1, true);
    }
    sim_step(m, false);
  }
  sim_ep_t *w = &m->ep[m->writer], *r = &m->ep[1 - m->writer];
  assert_int_equal(w->aborts + r->aborts, 0);
  assert_int_equal(w->violations + r->violations, 0);
  assert_int_equal(w->written, m->total);
  assert_int_equal(r->received, m->total); /* every byte once, in order (checked per byte) */
  assert_non_null(w->s);
  assert_non_null(r->s);
  if (w->s->state != MIG_S_CLOSED || r->s->state != MIG_S_CLOSED)
    fail_msg("not closed: writer %s/%s reader %s/%s", mig_state_str(w->s->state),
             mig_xstate_str(mig_sm_xstate(w->s)), mig_state_str(r->s->state),
             mig_xstate_str(mig_sm_xstate(r->s)));
  assert_int_equal(r->read_eof, 1);
  assert_int_equal(w->read_eof, 1);
  assert_true(w->max_window <= SIM_WINDOW_MAX);
}

/* Bring L up and some bytes across on carrier 1. */
static void sim_warmup(sim_t *m) {
  for (int step = 0; step < 3000; step++) sim_step(m, false);
  assert_non_null(m->ep[0].s);
  assert_non_null(m->ep[1].s);
}

/* variant 0: cut the new carrier only (graceful attempt);
 * 1: the old and new carriers die together (one connection);
 * 2: resume: the old carrier is already dead on both sides. */
static void sim_exchange_cut(int writer, int variant, uint64_t off, uint64_t seed, bool confirms) {
  sim_t *m = calloc(1, sizeof(*m));
  assert_non_null(m);
  sim_init(m, writer, 60000, seed, confirms);
  sim_warmup(m);
  int old = (int)m->ep[0].s->cur.h;
  assert_true(old > 0);
  if (variant == 2) {
    sim_cut(m, old);
    sim_notice_lost(m, 0, true);
    sim_notice_lost(m, 1, true);
    assert_int_equal(m->ep[0].s->state, MIG_S_DETACHED);
  }
  int h = sim_leader(m, true);
  assert_true(h > 0);
  m->c[h].byte_mode = true;
  m->c[h].cut_at = off;
  if (variant == 1) m->c[h].also_cut = old;
  if (off == 0) sim_cut(m, h); /* before the first byte of the Migrate */
  /* Drive the exchange: Migrate to the follower, Ack back, byte by byte. */
  for (int k = 0; k < 400 && !m->c[h].dead; k++) {
    sim_deliver(m, 1, h, 1);
    sim_deliver(m, 0, h, 1);
    if (m->c[h].mode[0] == SIM_R_DATA && m->c[h].mode[1] == SIM_R_DATA) break;
  }
  if (off) assert_true(m->c[h].dead || m->c[h].pre_seen < off);
  if (getenv("MIG_SIM_VERBOSE"))
    fprintf(stderr, "writer %d variant %d off %llu: cut %d after %llu exchange bytes\n", writer, variant,
            (unsigned long long)off, m->c[h].dead, (unsigned long long)m->c[h].pre_seen);
  sim_finish(m);
  if (getenv("MIG_SIM_VERBOSE"))
    fprintf(stderr, "  -> %d carriers, leader aliases %zu, bytes %llu\n", m->nc, m->ep[0].s->n_alias,
            (unsigned long long)m->ep[1 - writer].received);
  sim_free(m);
  free(m);
}

static void cut_every_exchange_offset(bool confirms) {
  uint64_t seed = th_seed();
  mig_msg_t mg = {.type = MIG_MSG_MIGRATE, .id = 1001, .from = 1, .has_incarnation = true,
                  .incarnation = 11, .has_read_offset = true, .read_offset = 5000};
  mig_msg_t ak = {.type = MIG_MSG_ACK, .has_incarnation = true, .incarnation = 22,
                  .has_read_offset = true, .read_offset = 5000};
  bn_buf_t b;
  bn_buf_init(&b);
  assert_ok(mig_msg_encode(&mg, &b));
  assert_ok(mig_msg_encode(&ak, &b));
  uint64_t total = bn_buf_unread(&b) + 4; /* offsets vary a little with the values */
  bn_buf_free(&b);
  for (int writer = 0; writer < 2; writer++)
    for (int variant = 0; variant < 3; variant++)
      for (uint64_t off = 0; off <= total; off++)
        sim_exchange_cut(writer, variant, off, seed + off, confirms);
}

static void test_cut_every_exchange_offset(void **state) {
  (void)state;
  cut_every_exchange_offset(false);
}

static void test_confirm_cut_every_exchange_offset(void **state) {
  (void)state;
  cut_every_exchange_offset(true);
}

static void random_cuts(bool confirms) {
  uint64_t seed = th_seed();
  uint64_t sent = 0, lost = 0;
  for (int run = 0; run < 40; run++) {
    sim_t *m = calloc(1, sizeof(*m));
    assert_non_null(m);
    sim_init(m, run & 1, 200000, seed + 1000u + (uint64_t)run, confirms);
    for (int step = 0; step < 30000; step++) sim_step(m, true);
    uint64_t migrated = m->ep[0].s ? m->ep[0].s->n_alias : 0;
    sim_finish(m);
    if (run < 3) fprintf(stderr, "run %d: %d carriers, %llu migrations done\n", run, m->nc, (unsigned long long)migrated);
    sent += m->confirms_sent;
    lost += m->confirms_lost;
    sim_free(m);
    free(m);
  }
  if (confirms) { /* the Confirm channel was exercised, losses included */
    fprintf(stderr, "%llu Confirms sent, %llu lost in cuts\n", (unsigned long long)sent,
            (unsigned long long)lost);
    assert_true(sent > 1000 && lost > 0);
  }
}

static void test_random_cuts(void **state) {
  (void)state;
  random_cuts(false);
}

static void test_confirm_random_cuts(void **state) {
  (void)state;
  random_cuts(true);
}

static void graceful(bool confirms) {
  sim_t *m = calloc(1, sizeof(*m));
  assert_non_null(m);
  sim_init(m, 1, 2000000, th_seed(), confirms);
  sim_warmup(m);
  for (int k = 0; k < 5; k++) {
    int h = sim_leader(m, true);
    if (h <= 0)
      fail_msg("k=%d state %s x %s", k, mig_state_str(m->ep[0].s->state),
               mig_xstate_str(mig_sm_xstate(m->ep[0].s)));
    for (int step = 0; step < 2000; step++) sim_step(m, false);
  }
  assert_true(m->ep[0].s->n_alias >= 5);
  sim_finish(m);
  sim_free(m);
  free(m);
}

static void test_graceful(void **state) {
  (void)state;
  graceful(false);
}

static void test_confirm_graceful(void **state) {
  (void)state;
  graceful(true);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_graceful),
      cmocka_unit_test(test_cut_every_exchange_offset),
      cmocka_unit_test(test_random_cuts),
      cmocka_unit_test(test_confirm_graceful),
      cmocka_unit_test(test_confirm_cut_every_exchange_offset),
      cmocka_unit_test(test_confirm_random_cuts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
