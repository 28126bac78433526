/* sm.c — the per-stream state machine (mig_sm_t) and the per-peer registry
 * (mig_reg_t), PROTOCOL.md §11.5–§11.10. Pure state machines: every event
 * checks the state, validates into locals, then commits and appends actions. */
#include <stdlib.h>

#include "mig_core.h"

/* ---------------------------------------------------------- strings */

const char *mig_reason_str(mig_reason_t r) {
  static const char *const names[] = {
#define MIG_XX_(name, str) str,
      MIG_REASON_MAP(MIG_XX_)
#undef MIG_XX_
  };
  return (unsigned)r < MIG_R_COUNT ? names[r] : "unknown";
}

const char *mig_state_str(mig_state_t s) {
  static const char *const names[] = {"LABELING", "OPEN",   "MIGRATING",
                                      "DETACHED", "CLOSED", "ABORTED"};
  return (unsigned)s < MIG_S_COUNT ? names[s] : "?";
}

const char *mig_xstate_str(mig_xstate_t x) {
  static const char *const names[] = {"IDLE", "I_WAIT_ACK", "I_DRAIN", "R_DRAIN"};
  return (unsigned)x < MIG_X_COUNT ? names[x] : "?";
}

mig_xstate_t mig_sm_xstate(const mig_sm_t *s) {
  if (s->pend.h) return MIG_X_I_WAIT_ACK;
  if (s->old.h) return s->old.fin_out && !s->old.fin_in ? MIG_X_I_DRAIN : MIG_X_R_DRAIN;
  return MIG_X_IDLE;
}

/* ---------------------------------------------------------- helpers */

static bool mig_final(const mig_sm_t *s) {
  return s->state == MIG_S_CLOSED || s->state == MIG_S_ABORTED;
}

static mig_action_t *mig_act(mig_actions_t *acts, mig_act_type_t t, const mig_sm_t *s, uint64_t h) {
  BN_ASSERT(acts->n < MIG_MAX_ACTIONS);
  mig_action_t *a = &acts->a[acts->n++];
  memset(a, 0, sizeof(*a));
  a->type = t;
  a->stream = s ? s->id : 0;
  a->carrier = h;
  return a;
}

/* The read offset reported to the writer (see r_held). */
static uint64_t mig_read_offset(const mig_sm_t *s) {
  return s->r_delivered - BN_MIN(s->r_held, s->r_delivered);
}

static void mig_send_ack(const mig_reg_t *p, const mig_sm_t *s, uint64_t h, bool deny,
                         mig_actions_t *acts) {
  mig_action_t *a = mig_act(acts, MIG_ACT_SEND_MSG, s, h);
  a->msg.type = MIG_MSG_ACK;
  a->msg.deny = deny;
  a->msg.has_incarnation = true;
  a->msg.incarnation = p->cfg.incarnation;
  if (!deny && s) {
    a->msg.has_read_offset = true;
    a->msg.read_offset = mig_read_offset(s);
  }
}

static mig_slot_t *mig_slot_of(mig_sm_t *s, uint64_t h) {
  if (s->cur.h == h) return &s->cur;
  if (s->pend.h == h) return &s->pend;
  if (s->old.h == h) return &s->old;
  return NULL;
}

static bool mig_has_id(const mig_sm_t *s, uint64_t id) {
  if (s->id == id || (s->pend.h && s->pend_id == id)) return true;
  if (s->has_pinned && s->pinned == id) return true;
  size_t n = BN_MIN(s->n_alias, (size_t)MIG_MAX_ALIASES);
  for (size_t i = 0; i < n; i++)
    if (s->aliases[i] == id) return true;
  return false;
}

static void mig_alias_add(mig_sm_t *s, uint64_t id) {
  s->aliases[s->n_alias % MIG_MAX_ALIASES] = id;
  s->n_alias++;
}

/* Releases retransmit bytes that are confirmed and no longer needed to keep
 * the current carrier's byte sequence contiguous. */
static void mig_release(mig_sm_t *s) {
  uint64_t target = s->w_confirmed;
  if (s->cur.h) target = BN_MIN(target, s->cur.out_start + s->cur.out_sent);
  if (target <= s->w_base) return;
  s->w_base = target;
}

/* ------------------------------------------------- the retransmit ring */
/* Hand-written: ck_ring holds pointers, and no packaged library has a
 * growable byte ring addressed by absolute stream offsets. */

#define MIG_RING_MIN (16u * 1024u)

static void ring_free(mig_sm_t *s) {
  free(s->ring);
  s->ring = NULL;
  s->ring_cap = 0;
}

static void ring_put(uint8_t *ring, size_t cap, uint64_t off, const uint8_t *src, size_t n) {
  size_t at = (size_t)(off & (cap - 1));
  size_t first = BN_MIN(n, cap - at);
  memcpy(ring + at, src, first);
  if (n > first) memcpy(ring, src + first, n - first);
}

size_t mig_sm_span(const mig_sm_t *s, uint64_t from, const uint8_t **out) {
  BN_ASSERT(from >= s->w_base && from <= s->w_written);
  *out = NULL;
  if (from == s->w_written) return 0;
  size_t at = (size_t)(from & (s->ring_cap - 1));
  *out = s->ring + at;
  return (size_t)BN_MIN(s->w_written - from, (uint64_t)(s->ring_cap - at));
}

/* Room for n more bytes: grows (doubling, moving what is held once). */
static int ring_reserve(mig_sm_t *s, size_t n) {
  uint64_t need = s->w_written - s->w_base + n;
  if (need <= s->ring_cap) return 0;
  if (need > SIZE_MAX / 4) return BFTNET_ENOMEM;
  size_t ncap = s->ring_cap ? s->ring_cap : MIG_RING_MIN;
  while (ncap < need)
    ncap *= 2;
  uint8_t *r = malloc(ncap);
  if (!r) return BFTNET_ENOMEM;
  for (uint64_t x = s->w_base; x < s->w_written;) {
    const uint8_t *p;
    size_t k = mig_sm_span(s, x, &p);
    ring_put(r, ncap, x, p, k);
    x += k;
  }
  free(s->ring);
  s->ring = r;
  s->ring_cap = ncap;
  return 0;
}

static void mig_unfreeze(mig_sm_t *s, mig_slot_t *c, mig_actions_t *acts) {
  if (!c->h || !c->frozen) return;
  c->frozen = false;
  if (c->owed) mig_act(acts, MIG_ACT_CREDIT, s, c->h)->n = (size_t)c->owed;
  c->owed = 0;
}

static void mig_abort(mig_reg_t *p, mig_sm_t *s, mig_reason_t why, uint64_t cause,
                      mig_actions_t *acts) {
  mig_slot_t *slots[] = {&s->cur, &s->pend, &s->old};
  for (size_t i = 0; i < BN_ARRAY_LEN(slots); i++)
    if (slots[i]->h && slots[i]->h != cause) mig_act(acts, MIG_ACT_RST, s, slots[i]->h);
  mig_action_t *a = mig_act(acts, MIG_ACT_ABORTED, s, cause);
  a->reason = why;
  a->lost = s->w_written - s->w_confirmed;
  p->counts[why]++;
  memset(&s->cur, 0, sizeof(s->cur));
  memset(&s->pend, 0, sizeof(s->pend));
  memset(&s->old, 0, sizeof(s->old));
  ring_free(s);
  s->w_base = s->w_written;
  s->reason = why;
  s->state = MIG_S_ABORTED;
}

static void mig_maybe_closed(const mig_reg_t *p, mig_sm_t *s, mig_actions_t *acts) {
  if (mig_final(s) || !s->cur.h || s->pend.h || s->old.h || s->uncertain) return;
  if (!(s->w_closed && s->cur.fin_out && s->cur.fin_in && s->r_eof)) return;
  if (s->w_confirmed != s->w_written) return;
  /* Unless the peer is an older one (it confirms from yamux credit), it
   * learns that we read everything only from a Confirm: L ends once its
   * whole incoming direction was reported. */
  if (p->mode != MIG_MODE_LEGACY && s->r_reported != s->r_delivered) return;
  mig_act(acts, MIG_ACT_CLOSED, s, s->cur.h);
  memset(&s->cur, 0, sizeof(s->cur));
  ring_free(s);
  s->state = MIG_S_CLOSED;
}

/* Recomputes the state from the carrier slots after a commit. */
static void mig_settle(mig_reg_t *p, mig_sm_t *s, uint64_t now, mig_actions_t *acts) {
  if (mig_final(s)) return;
  mig_state_t ns;
  if (!s->cur.h && !s->pend.h)
    ns = MIG_S_DETACHED;
  else if (s->pend.h || s->old.h)
    ns = MIG_S_MIGRATING;
  else
    ns = s->state == MIG_S_LABELING ? MIG_S_LABELING : MIG_S_OPEN;
  (void)now; /* deadlines are set where the carrier is lost (mig_reg_on_lost) */
  if (ns == MIG_S_DETACHED && s->state != MIG_S_DETACHED) mig_act(acts, MIG_ACT_DETACHED, s, 0);
  s->state = ns;
  mig_release(s);
  mig_maybe_closed(p, s, acts);
}

/* L's incoming direction ends at `end` (FIN on the current carrier). */
static int mig_apply_eof(mig_reg_t *p, mig_sm_t *s, uint64_t h, uint64_t end, mig_actions_t *acts) {
  if ((s->r_eof && end != s->r_final) || end != s->r_delivered) {
    mig_act(acts, MIG_ACT_CLOSE_CONN, s, h);
    mig_abort(p, s, MIG_R_DATA_AFTER_CLOSE, h, acts);
    return BFTNET_EPROTO;
  }
  if (!s->r_eof) mig_act(acts, MIG_ACT_READ_EOF, s, h);
  s->r_eof = true;
  s->r_final = end;
  return 0;
}

/* After an exchange ended without acceptance: a FIN read on cur meanwhile
 * was the peer's close of L (§11.5, "FIN while unsettled"). */
static int mig_resolve_fin(mig_reg_t *p, mig_sm_t *s, mig_actions_t *acts) {
  if (s->uncertain || s->pend.h || !s->cur.h || !s->cur.fin_in) return 0;
  return mig_apply_eof(p, s, s->cur.h, s->cur.in_start + s->cur.in_recv, acts);
}

/* ---------------------------------------------------------- registry */

int mig_reg_init(mig_reg_t *p, const mig_reg_config_t *cfg) {
  if (!cfg || peerid_equal(&cfg->self, &cfg->peer) || !cfg->window_max) return BFTNET_EINVAL;
  memset(p, 0, sizeof(*p));
  p->cfg = *cfg;
  p->lower = mig_self_is_lower(&cfg->self, &cfg->peer);
  p->leader = mig_self_is_leader(&cfg->self, &cfg->peer);
  return 0;
}

void mig_reg_free(mig_reg_t *p) {
  for (size_t i = 0; i < MIG_MAX_STREAMS; i++) {
    if (!p->streams[i]) continue;
    ring_free(p->streams[i]);
    free(p->streams[i]);
    p->streams[i] = NULL;
  }
}

uint64_t mig_reg_next_id(mig_reg_t *p) {
  uint64_t k = p->ids ? (*p->ids)++ : p->next_k++;
  BN_ASSERT(k < (UINT64_C(1) << 62));
  return 2 * k + (p->lower ? 0 : 1);
}

mig_sm_t *mig_reg_find(const mig_reg_t *p, uint64_t id) {
  for (size_t i = 0; i < MIG_MAX_STREAMS; i++) {
    mig_sm_t *s = p->streams[i];
    if (s && !mig_final(s) && mig_has_id(s, id)) return s;
  }
  return NULL;
}

mig_sm_t *mig_reg_find_carrier(const mig_reg_t *p, uint64_t h) {
  if (!h) return NULL;
  for (size_t i = 0; i < MIG_MAX_STREAMS; i++) {
    mig_sm_t *s = p->streams[i];
    if (s && mig_slot_of(s, h)) return s;
  }
  return NULL;
}

int mig_reg_sm_free(mig_reg_t *p, mig_sm_t *s) {
  if (!mig_final(s)) return BFTNET_ESTATE;
  for (size_t i = 0; i < MIG_MAX_STREAMS; i++) {
    if (p->streams[i] != s) continue;
    p->streams[i] = NULL;
    ring_free(s);
    free(s);
    return 0;
  }
  return BFTNET_ENOTFOUND;
}

static int mig_new_stream(mig_reg_t *p, uint64_t id, uint64_t h, mig_sm_t **out) {
  for (size_t i = 0; i < MIG_MAX_STREAMS; i++) {
    if (p->streams[i]) continue;
    mig_sm_t *s = calloc(1, sizeof(*s));
    if (!s) return BFTNET_ENOMEM;
    s->id = id;
    s->cur.h = h;
    p->streams[i] = s;
    *out = s;
    return 0;
  }
  return BFTNET_ELIMIT;
}

int mig_reg_open(mig_reg_t *p, uint64_t h, mig_actions_t *acts, mig_sm_t **out) {
  if (!h || mig_reg_find_carrier(p, h)) return BFTNET_EINVAL;
  mig_sm_t *s;
  int rc = mig_new_stream(p, 0, h, &s);
  if (rc < 0) return rc;
  s->id = mig_reg_next_id(p);
  s->state = MIG_S_LABELING;
  s->we_opened = true;
  s->open_id = s->id;
  s->open_inc = p->cfg.incarnation;
  s->open_inc_known = true;
  mig_action_t *a = mig_act(acts, MIG_ACT_SEND_MSG, s, h);
  a->msg.type = MIG_MSG_LABEL;
  a->msg.id = s->id;
  a->msg.has_incarnation = true;
  a->msg.incarnation = p->cfg.incarnation;
  *out = s;
  return 0;
}

int mig_sm_on_echo(mig_reg_t *p, mig_sm_t *s, mig_actions_t *acts) {
  if (s->state != MIG_S_LABELING) return BFTNET_ESTATE;
  s->state = MIG_S_OPEN;
  mig_settle(p, s, 0, acts);
  return 0;
}

int mig_sm_on_na(mig_reg_t *p, mig_sm_t *s, mig_actions_t *acts) {
  if (s->state != MIG_S_LABELING) return BFTNET_ESTATE;
  mig_abort(p, s, MIG_R_NA, 0, acts);
  return 0;
}

/* --------------------------------------------------- peer incarnation */

/* Whether inc is one the peer had before its current one, replaced less
 * than MIG_STALE_INC_NS ago: a message of it is late. Later, that process
 * is alive after all (we took a late message of an older one for current):
 * a restart back to it. */
static bool mig_inc_replaced(const mig_reg_t *p, uint64_t inc, uint64_t now) {
  if (BN_SIM_DEFECT(11)) return false;
  for (unsigned i = 0; i < p->peer_inc_nold; i++)
    if (p->peer_inc_old[i].inc == inc) return now - p->peer_inc_old[i].at < MIG_STALE_INC_NS;
  return false;
}

static void mig_restart(mig_reg_t *p, uint64_t inc, uint64_t now, mig_actions_t *acts) {
  unsigned keep = BN_MIN(p->peer_inc_nold, MIG_OLD_INCARNATIONS - 1);
  memmove(&p->peer_inc_old[1], &p->peer_inc_old[0], keep * sizeof p->peer_inc_old[0]);
  p->peer_inc_old[0].inc = p->peer_inc;
  p->peer_inc_old[0].at = now;
  p->peer_inc_nold = keep + 1;
  for (size_t i = 0; i < MIG_MAX_STREAMS; i++) {
    mig_sm_t *s = p->streams[i];
    if (s && !mig_final(s)) mig_abort(p, s, MIG_R_PEER_RESTARTED, 0, acts);
  }
  mig_act(acts, MIG_ACT_PEER_RESTARTED, NULL, 0)->id = inc;
  p->peer_inc = inc;
  p->mode = MIG_MODE_UNKNOWN; /* the new process may be another version */
  p->epoch++;
}

/* The peer's incarnation in one of its messages (§11.7), whatever carried
 * it: 1 a restart (its streams aborted), 0 the one we knew (or the first),
 * BFTNET_EPROTO (counted) a late message of a process the peer has since
 * replaced: refused, and not another restart, which would abort the live
 * incarnation's streams. */
static int mig_incarnation(mig_reg_t *p, uint64_t inc, uint64_t now, mig_actions_t *acts) {
  bool changed = p->peer_inc_known && p->peer_inc != inc;
  if (changed && mig_inc_replaced(p, inc, now)) {
    p->counts[MIG_R_STALE_INCARNATION]++;
    return BFTNET_EPROTO;
  }
  if (changed) mig_restart(p, inc, now, acts);
  p->peer_inc_known = true;
  p->peer_inc = inc;
  return changed;
}

int mig_reg_on_incarnation(mig_reg_t *p, uint64_t inc, uint64_t now, mig_actions_t *acts) {
  int rc = mig_incarnation(p, inc, now, acts);
  return rc < 0 ? rc : 0;
}

/* ----------------------------------------------------- inbound messages */

static int mig_violation(mig_reg_t *p, mig_reason_t why, uint64_t rst, mig_actions_t *acts) {
  p->counts[why]++;
  if (rst) mig_act(acts, MIG_ACT_RST, NULL, rst);
  return BFTNET_EPROTO;
}

static int mig_on_label(mig_reg_t *p, uint64_t h, const mig_msg_t *m, mig_actions_t *acts,
                        mig_sm_t **out) {
  if (!mig_id_parity_ok(m->id, !p->lower)) return mig_violation(p, MIG_R_BAD_PARITY, h, acts);
  if (mig_reg_find(p, m->id)) return mig_violation(p, MIG_R_ID_IN_USE, h, acts);
  mig_sm_t *s;
  int rc = mig_new_stream(p, m->id, h, &s);
  if (rc == BFTNET_ELIMIT) return mig_violation(p, MIG_R_LIMIT, h, acts);
  if (rc < 0) return rc;
  s->state = MIG_S_OPEN;
  s->open_id = m->id;
  s->open_inc = m->incarnation;
  s->open_inc_known = m->has_incarnation;
  if (out) *out = s;
  return 0;
}

/* Responder side of an exchange (§11.9 "— (responder)" rows). */
static int mig_on_migrate(mig_reg_t *p, uint64_t h, const mig_msg_t *m, uint64_t now,
                          mig_actions_t *acts, mig_sm_t **out) {
  if (p->leader) {
    mig_send_ack(p, NULL, h, true, acts);
    return mig_violation(p, MIG_R_NOT_LEADER, 0, acts);
  }
  if (!mig_id_parity_ok(m->id, !p->lower)) return mig_violation(p, MIG_R_BAD_PARITY, h, acts);
  if (mig_reg_find(p, m->id)) return mig_violation(p, MIG_R_REPLAY, h, acts);
  mig_sm_t *s = mig_reg_find(p, m->from);
  if (!s) {
    mig_send_ack(p, NULL, h, true, acts);
    return mig_violation(p, MIG_R_UNKNOWN_FROM, 0, acts);
  }
  if (out) *out = s;
  if (!m->has_read_offset) {
    mig_send_ack(p, NULL, h, true, acts);
    return mig_violation(p, MIG_R_NO_OFFSET, 0, acts);
  }
  uint64_t r = m->read_offset;
  if (r < s->w_confirmed || r > s->w_sent_max) {
    mig_act(acts, MIG_ACT_RST, s, h);
    mig_abort(p, s, MIG_R_BAD_OFFSET, 0, acts);
    return BFTNET_EPROTO;
  }
  /* Commit: the old current carrier drains, h carries L from now on. Our
   * Ack reports our read offset: no Confirm above it until the initiator
   * shows it read the Ack (its FIN on this S_old, or a byte or FIN on h). */
  s->r_hold = true;
  s->r_hold_old = s->cur.h;
  mig_alias_add(s, s->id);
  s->pinned = m->from;
  s->has_pinned = true;
  s->id = m->id;
  s->w_confirmed = r;
  if (s->cur.h) {
    if (s->old.h) mig_act(acts, MIG_ACT_RELEASE, s, s->old.h);
    s->old = s->cur;
    s->old.frozen = true;
    if (s->old.fin_in && !s->old.fin_out) {
      mig_act(acts, MIG_ACT_FIN, s, s->old.h); /* EOF already read: step 4 at once */
      s->old.fin_out = true;
    }
    if (s->old.fin_in && s->old.fin_out) {
      mig_act(acts, MIG_ACT_RELEASE, s, s->old.h);
      memset(&s->old, 0, sizeof(s->old));
    }
  }
  memset(&s->cur, 0, sizeof(s->cur));
  s->cur.h = h;
  s->cur.in_start = mig_read_offset(s); /* what the Ack reports */
  s->cur.out_start = r + (BN_SIM_DEFECT(1) && r < s->w_written);
  s->r_reported = BN_MAX(s->r_reported, s->cur.in_start);
  mig_send_ack(p, s, h, false, acts);
  mig_act(acts, MIG_ACT_MIGRATED, s, h)->id = s->id;
  if (s->state == MIG_S_LABELING) s->state = MIG_S_OPEN; /* the echo is implied */
  mig_settle(p, s, now, acts);
  return 0;
}

/* Initiator: the AckMigrate on the pending carrier. */
static int mig_on_ack(mig_reg_t *p, mig_sm_t *s, const mig_msg_t *m, uint64_t now,
                      mig_actions_t *acts) {
  if (m->deny) {
    if (s->uncertain || !s->cur.h) {
      mig_abort(p, s, MIG_R_DENIED, 0, acts);
      return 0;
    }
    mig_act(acts, MIG_ACT_FIN, s, s->pend.h);
    mig_act(acts, MIG_ACT_RELEASE, s, s->pend.h);
    memset(&s->pend, 0, sizeof(s->pend));
    s->no_migrate = true;
    mig_unfreeze(s, &s->cur, acts);
    int rc = mig_resolve_fin(p, s, acts);
    mig_settle(p, s, now, acts);
    return rc;
  }
  if (!m->has_read_offset) {
    mig_abort(p, s, MIG_R_NO_OFFSET, 0, acts);
    return BFTNET_EPROTO;
  }
  uint64_t r = m->read_offset;
  if (r < s->w_confirmed || r > s->w_sent_max) {
    mig_abort(p, s, MIG_R_BAD_OFFSET, 0, acts);
    return BFTNET_EPROTO;
  }
  /* Commit (§11.9 I_WAIT_ACK, accepted): FIN the old carrier, continue on pend. */
  s->w_confirmed = r;
  if (s->old.h) mig_act(acts, MIG_ACT_RELEASE, s, s->old.h);
  memset(&s->old, 0, sizeof(s->old));
  if (s->cur.h) {
    s->old = s->cur;
    if (!s->old.fin_out) mig_act(acts, MIG_ACT_FIN, s, s->old.h);
    s->old.fin_out = true;
    if (s->old.fin_in) {
      mig_act(acts, MIG_ACT_RELEASE, s, s->old.h);
      memset(&s->old, 0, sizeof(s->old));
    }
  }
  s->cur = s->pend;
  s->cur.out_start = r + (BN_SIM_DEFECT(1) && r < s->w_written);
  s->cur.out_sent = 0;
  memset(&s->pend, 0, sizeof(s->pend));
  mig_alias_add(s, s->id);
  s->id = s->pend_id;
  s->uncertain = false;
  mig_act(acts, MIG_ACT_MIGRATED, s, s->cur.h)->id = s->id;
  mig_settle(p, s, now, acts);
  return 0;
}

int mig_reg_on_msg(mig_reg_t *p, uint64_t h, const mig_msg_t *m, uint64_t now, mig_actions_t *acts,
                   mig_sm_t **out) {
  if (out) *out = NULL;
  if (!h) return BFTNET_EINVAL;
  mig_sm_t *s = mig_reg_find_carrier(p, h);
  if (s && (s->pend.h != h || m->type != MIG_MSG_ACK))
    return mig_violation(p, MIG_R_BAD_MSG, 0, acts); /* a second message on a carrier */
  if (!s && m->type == MIG_MSG_ACK) return mig_violation(p, MIG_R_UNEXPECTED_ACK, h, acts);
  if (m->type != MIG_MSG_LABEL && m->type != MIG_MSG_MIGRATE && m->type != MIG_MSG_ACK)
    return mig_violation(p, MIG_R_BAD_MSG, h, acts); /* a confirmation stream's message */
  if (m->has_incarnation) {
    int rc = mig_incarnation(p, m->incarnation, now, acts);
    if (rc < 0) { /* stale: counted; the carrier is reset, as for a violation */
      if (h) mig_act(acts, MIG_ACT_RST, NULL, h);
      return rc;
    }
    if (rc == 1 && s) { /* the exchange was aborted with the old incarnation */
      if (out) *out = s;
      return 0;
    }
  }
  switch (m->type) {
  case MIG_MSG_LABEL:
    return mig_on_label(p, h, m, acts, out);
  case MIG_MSG_MIGRATE:
    return mig_on_migrate(p, h, m, now, acts, out);
  case MIG_MSG_ACK:
    if (out) *out = s;
    return mig_on_ack(p, s, m, now, acts);
  default:
    break;
  }
  return mig_violation(p, MIG_R_BAD_MSG, h, acts);
}

/* ------------------------------------------------------ carrier events */

int mig_reg_on_data(mig_reg_t *p, uint64_t h, size_t n, mig_actions_t *acts) {
  mig_sm_t *s = mig_reg_find_carrier(p, h);
  if (!s) return BFTNET_ENOTFOUND;
  mig_slot_t *c = mig_slot_of(s, h);
  if (s->state == MIG_S_LABELING) return BFTNET_ESTATE; /* the echo comes first */
  if (c == &s->pend) {
    mig_abort(p, s, MIG_R_DATA_BEFORE_ACK, 0, acts);
    return BFTNET_EPROTO;
  }
  uint64_t start = c->in_start + c->in_recv;
  if (c->fin_in || (s->r_eof && start + n > s->r_final)) {
    mig_act(acts, MIG_ACT_CLOSE_CONN, s, h);
    mig_abort(p, s, MIG_R_DATA_AFTER_CLOSE, h, acts);
    return BFTNET_EPROTO;
  }
  if (start > s->r_delivered) {
    mig_abort(p, s, MIG_R_GAP, 0, acts);
    return BFTNET_EPROTO;
  }
  uint64_t dup = s->r_delivered - start;
  size_t skip = BN_SIM_DEFECT(2) ? 0 : dup < n ? (size_t)dup : n;
  /* Commit. */
  c->in_recv += n;
  s->r_delivered += n - skip;
  if (c == &s->cur && n) s->r_hold = false; /* written after the initiator read our Ack */
  mig_action_t *a = mig_act(acts, MIG_ACT_DELIVER, s, h);
  a->n = n;
  a->skip = skip;
  a->len = n - skip;
  if (n) {
    if (c->frozen)
      c->owed += n;
    else
      mig_act(acts, MIG_ACT_CREDIT, s, h)->n = n;
  }
  return 0;
}

int mig_reg_on_fin(mig_reg_t *p, uint64_t h, mig_actions_t *acts) {
  mig_sm_t *s = mig_reg_find_carrier(p, h);
  if (!s) return BFTNET_ENOTFOUND;
  mig_slot_t *c = mig_slot_of(s, h);
  if (c->fin_in || s->state == MIG_S_LABELING) return BFTNET_ESTATE;
  if (c == &s->pend) {
    mig_abort(p, s, MIG_R_DATA_BEFORE_ACK, 0, acts);
    return BFTNET_EPROTO;
  }
  if (c == &s->old) {                          /* the handover (§11.5 steps 3–4) */
    if (h == s->r_hold_old) s->r_hold = false; /* the initiator read our Ack */
    c->fin_in = true;
    if (!c->fin_out) mig_act(acts, MIG_ACT_FIN, s, h);
    c->fin_out = true;
    mig_act(acts, MIG_ACT_RELEASE, s, h);
    memset(&s->old, 0, sizeof(s->old));
    mig_settle(p, s, 0, acts);
    return 0;
  }
  /* On the initiator a FIN on cur is L's EOF only once settled. */
  c->fin_in = true;
  s->r_hold = false;
  int rc = 0;
  if (!(p->leader && (s->pend.h || s->uncertain)))
    rc = mig_apply_eof(p, s, h, c->in_start + c->in_recv, acts);
  if (rc == 0) mig_settle(p, s, 0, acts);
  return rc;
}

int mig_reg_on_rst(mig_reg_t *p, uint64_t h, mig_actions_t *acts) {
  mig_sm_t *s = mig_reg_find_carrier(p, h);
  if (!s) return BFTNET_ENOTFOUND;
  if (s->pend.h == h) { /* before AckMigrate: "try again later" (§11.5) */
    memset(&s->pend, 0, sizeof(s->pend));
    mig_unfreeze(s, &s->cur, acts);
    int rc = mig_resolve_fin(p, s, acts);
    mig_settle(p, s, 0, acts);
    return rc;
  }
  mig_abort(p, s, MIG_R_RESET, h, acts);
  return 0;
}

int mig_reg_on_lost(mig_reg_t *p, uint64_t h, uint64_t now, mig_actions_t *acts) {
  mig_sm_t *s = mig_reg_find_carrier(p, h);
  if (!s) return BFTNET_ENOTFOUND;
  mig_slot_t *c = mig_slot_of(s, h);
  if (c == &s->pend) {
    /* The Migrate may have been accepted: unsettled until an Ack. */
    s->uncertain = true;
    memset(&s->pend, 0, sizeof(s->pend));
    mig_unfreeze(s, &s->cur, acts);
  } else if (c == &s->old) {
    memset(&s->old, 0, sizeof(s->old));
  } else {
    memset(&s->cur, 0, sizeof(s->cur));
    s->deadline = now + p->cfg.detach_timeout;
  }
  mig_settle(p, s, now, acts);
  return 0;
}

/* Credit recorded on slot c becomes a confirmation (older peer, §11.11). */
static int mig_apply_credit(mig_reg_t *p, mig_sm_t *s, mig_slot_t *c, mig_actions_t *acts) {
  if (c->credited > c->out_sent || (c == &s->pend && c->credited)) {
    mig_abort(p, s, MIG_R_BAD_CREDIT, 0, acts);
    return BFTNET_EPROTO;
  }
  uint64_t conf = c->out_start + c->credited;
  if (conf > s->w_confirmed) s->w_confirmed = conf;
  mig_release(s);
  mig_maybe_closed(p, s, acts);
  return 0;
}

int mig_reg_on_credit(mig_reg_t *p, uint64_t h, uint64_t n, mig_actions_t *acts) {
  mig_sm_t *s = mig_reg_find_carrier(p, h);
  if (!s) return BFTNET_ENOTFOUND;
  if (p->mode == MIG_MODE_ON) return 0; /* flow control only (§11.12) */
  mig_slot_t *c = mig_slot_of(s, h);
  uint64_t credited = c->credited + n;
  if (credited < c->credited) credited = UINT64_MAX; /* beyond anything sent */
  if (p->mode == MIG_MODE_UNKNOWN) {                 /* kept until the mode is known */
    c->credited = credited;
    return 0;
  }
  c->credited = credited;
  return mig_apply_credit(p, s, c, acts);
}

int mig_reg_set_mode(mig_reg_t *p, mig_mode_t mode, mig_actions_t *acts) {
  if (mode != MIG_MODE_ON && mode != MIG_MODE_LEGACY) return BFTNET_EINVAL;
  if (p->mode == mode) return 0;
  if (p->mode != MIG_MODE_UNKNOWN) return BFTNET_ESTATE;
  p->mode = mode;
  int rc = 0;
  for (size_t i = 0; i < MIG_MAX_STREAMS; i++) {
    mig_sm_t *s = p->streams[i];
    if (!s || mig_final(s)) continue;
    mig_slot_t *slots[] = {&s->cur, &s->pend, &s->old};
    for (size_t k = 0; mode == MIG_MODE_LEGACY && k < BN_ARRAY_LEN(slots) && !mig_final(s); k++)
      if (slots[k]->h && mig_apply_credit(p, s, slots[k], acts) < 0) rc = BFTNET_EPROTO;
    mig_maybe_closed(p, s, acts); /* no longer waits for a report (LEGACY) */
  }
  return rc;
}

int mig_reg_on_confirm(mig_reg_t *p, uint64_t id, uint64_t off, mig_actions_t *acts) {
  if (p->mode != MIG_MODE_ON) return BFTNET_ESTATE;
  mig_sm_t *s = mig_reg_find(p, id);
  if (!s) return BFTNET_ENOTFOUND; /* ended, or never known: nothing to free */
  if (off > s->w_sent_max) {
    mig_abort(p, s, MIG_R_BAD_CONFIRM, 0, acts);
    return BFTNET_EPROTO;
  }
  if (off <= s->w_confirmed) return 0; /* stale: a later one came first */
  s->w_confirmed = off;
  mig_release(s);
  mig_maybe_closed(p, s, acts);
  return 0;
}

bool mig_sm_confirm_due(const mig_sm_t *s, uint64_t min_delta, uint64_t *off) {
  if (mig_final(s) || s->r_hold || s->pend.h || s->uncertain) return false;
  uint64_t r = mig_read_offset(s);
  if (r <= s->r_reported) return false;
  if (r - s->r_reported < min_delta && !s->r_eof) return false;
  *off = r;
  return true;
}

int mig_sm_confirm_sent(mig_reg_t *p, mig_sm_t *s, uint64_t off, mig_actions_t *acts) {
  if (mig_final(s)) return BFTNET_ESTATE;
  if (off > s->r_delivered) return BFTNET_EINVAL;
  if (off > s->r_reported) s->r_reported = off;
  mig_maybe_closed(p, s, acts);
  return 0;
}

int mig_reg_tick(mig_reg_t *p, uint64_t now, mig_actions_t *acts) {
  for (size_t i = 0; i < MIG_MAX_STREAMS; i++) {
    mig_sm_t *s = p->streams[i];
    if (!s || mig_final(s) || s->cur.h || now < s->deadline) continue;
    mig_abort(p, s, MIG_R_DETACH_TIMEOUT, 0, acts);
  }
  return 0;
}

/* -------------------------------------------------------- local events */

int mig_sm_migrate(mig_reg_t *p, mig_sm_t *s, uint64_t h, mig_actions_t *acts) {
  if (!p->leader) return BFTNET_ESTATE;
  if (s->state != MIG_S_OPEN && s->state != MIG_S_MIGRATING && s->state != MIG_S_DETACHED)
    return BFTNET_ESTATE;
  if (s->pend.h || (s->no_migrate && s->cur.h)) return BFTNET_ESTATE;
  if (!h || mig_reg_find_carrier(p, h)) return BFTNET_EINVAL;
  uint64_t id = mig_reg_next_id(p);
  memset(&s->pend, 0, sizeof(s->pend));
  s->pend.h = h;
  s->pend.in_start = mig_read_offset(s); /* what the Migrate reports */
  s->pend_id = id;
  if (s->cur.h) s->cur.frozen = true; /* §11.5: no credit after reporting our offset */
  mig_action_t *a = mig_act(acts, MIG_ACT_SEND_MSG, s, h);
  a->msg.type = MIG_MSG_MIGRATE;
  a->msg.id = id;
  a->msg.from = s->id;
  a->msg.has_incarnation = true;
  a->msg.incarnation = p->cfg.incarnation;
  a->msg.has_read_offset = true;
  a->msg.read_offset = mig_read_offset(s);
  s->r_reported = BN_MAX(s->r_reported, a->msg.read_offset);
  mig_settle(p, s, 0, acts);
  return 0;
}

uint64_t mig_sm_room(const mig_reg_t *p, const mig_sm_t *s) {
  uint64_t held = s->w_written - s->w_base;
  return held >= p->cfg.window_max ? 0 : p->cfg.window_max - held;
}

int mig_sm_write(mig_reg_t *p, mig_sm_t *s, const void *data, size_t n) {
  if (mig_final(s) || s->w_closed) return BFTNET_ESTATE;
  if (n > mig_sm_room(p, s)) return BFTNET_EAGAIN;
  int rc = ring_reserve(s, n);
  if (rc < 0) return rc;
  if (n) {
    size_t at = (size_t)(s->w_written & (s->ring_cap - 1));
    /* Built in place (mig_sm_write_span): nothing to copy. */
    if (data != s->ring + at || n > s->ring_cap - at)
      ring_put(s->ring, s->ring_cap, s->w_written, data, n);
  }
  s->w_written += n;
  return 0;
}

size_t mig_sm_write_span(mig_reg_t *p, mig_sm_t *s, size_t want, uint8_t **out) {
  *out = NULL;
  if (mig_final(s) || s->w_closed) return 0;
  size_t n = (size_t)BN_MIN((uint64_t)want, mig_sm_room(p, s));
  if (n == 0 || ring_reserve(s, n) < 0) return 0;
  size_t at = (size_t)(s->w_written & (s->ring_cap - 1));
  *out = s->ring + at;
  return BN_MIN(n, s->ring_cap - at);
}

int mig_sm_close(mig_reg_t *p, mig_sm_t *s, mig_actions_t *acts) {
  if (mig_final(s)) return BFTNET_ESTATE;
  s->w_closed = true;
  mig_maybe_closed(p, s, acts);
  return 0;
}

int mig_sm_abort(mig_reg_t *p, mig_sm_t *s, mig_actions_t *acts) {
  if (mig_final(s)) return BFTNET_ESTATE;
  mig_abort(p, s, MIG_R_LOCAL, 0, acts);
  return 0;
}

int mig_sm_pull(mig_reg_t *p, mig_sm_t *s, size_t max, mig_chunk_t *c, mig_actions_t *acts) {
  if (mig_final(s) || !s->cur.h || s->cur.fin_out) return 0;
  mig_slot_t *cur = &s->cur;
  uint64_t pos = cur->out_start + cur->out_sent;
  BN_ASSERT(pos >= s->w_base && pos <= s->w_written);
  uint64_t avail = s->w_written - pos;
  const uint8_t *at;
  size_t n = BN_MIN(mig_sm_span(s, pos, &at), max);
  bool fin = n == avail && s->w_closed && !s->pend.h && !s->uncertain;
  if (n == 0 && !fin) return 0;
  c->carrier = cur->h;
  c->p = at;
  c->n = n;
  c->fin = fin;
  cur->out_sent += n;
  if (pos + n > s->w_sent_max) s->w_sent_max = pos + n;
  cur->fin_out = fin;
  /* Bytes confirmed before they went out again on this carrier (a resume
   * retransmits from the peer's read offset, which may be older than its
   * last Confirm) are released once sent: no later Confirm will name them,
   * and the window's room would stay short of them for good. */
  if (!BN_SIM_DEFECT(13)) mig_release(s);
  mig_maybe_closed(p, s, acts);
  return 1;
}
