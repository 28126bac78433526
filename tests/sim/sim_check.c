/*
 * sim_check.c — the books of a run, kept from the applications' point of
 * view, and the checks of docs/ARCHITECTURE.md §0 on them:
 *   1. per sender incarnation and receiver, the sequence numbers received
 *      rise strictly (no duplicate, no reorder), and each was addressed to
 *      that receiver;
 *   2. after the drain, every message missing is counted: dropped (ring
 *      overflow), aborted, evicted before promotion, or held by a receiver
 *      whose process died; and what bftnet counts matches the
 *      applications' own counts (enqueued, the event stream's losses);
 *   3. what a node holds per member stays under its bounds, and the
 *      library's heap under the bound of its configuration;
 *   4. a message is received only from a member, labelled with its name;
 *   5. every payload arrives intact.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "dispatcher.h"
#include "sim.h"
#include "sim_alloc.h"

#define MAGIC 0x4d495342u /* "BSIM" */
#define HDR   24

typedef struct pair {
  uint64_t addressed, delivered, last;
  uint64_t allow; /* losses allowed: the receiver died holding them */
  bool relaxed;   /* a membership removal touched the pair: no exact count */
} pair_t;

typedef struct sinc { /* a sender's incarnation */
  uint8_t *mask;      /* per sequence number (seq - 1): the receivers */
  size_t n, cap;
  pair_t pair[SIM_MAX_NODES];
  bool crashed;
} sinc_t;

struct sim_books {
  sinc_t inc[SIM_MAX_NODES][SIM_MAX_INC];
};

void sim_books_new(sim_run_t *run) {
  run->books = sim_calloc(1, sizeof *run->books);
}

void sim_books_free(sim_run_t *run) {
  if (!run->books) return;
  for (int s = 0; s < SIM_MAX_NODES; s++)
    for (int i = 0; i < SIM_MAX_INC; i++)
      sim_free(run->books->inc[s][i].mask);
  sim_free(run->books);
  run->books = NULL;
}

/* ------------------------------------------------------------- payload */

static void put32(uint8_t *p, uint32_t v) {
  memcpy(p, &v, 4);
}
static void put64(uint8_t *p, uint64_t v) {
  memcpy(p, &v, 8);
}
static uint32_t get32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
static uint64_t get64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

static uint64_t msg_key(int slot, int inc, uint64_t seq) {
  uint64_t x = seq * 0x9e3779b97f4a7c15ull ^ ((uint64_t)slot << 56) ^ ((uint64_t)inc << 48);
  x ^= x >> 31;
  x *= 0xbf58476d1ce4e5b9ull;
  return x ^ (x >> 29);
}

static uint64_t lcg(uint64_t x) {
  return x * 6364136223846793005ull + 1442695040888963407ull;
}

void sim_payload_fill(uint8_t *p, size_t len, int slot, int inc, uint64_t seq) {
  BN_ASSERT(len >= HDR);
  uint64_t x = msg_key(slot, inc, seq);
  put32(p, MAGIC);
  p[4] = (uint8_t)slot;
  p[5] = (uint8_t)inc;
  p[6] = p[7] = 0;
  put64(p + 8, seq);
  put32(p + 16, (uint32_t)len);
  put32(p + 20, (uint32_t)(x >> 32) ^ (uint32_t)len);
  for (size_t i = HDR; i < len; i += 8) {
    x = lcg(x);
    memcpy(p + i, &x, len - i < 8 ? len - i : 8);
  }
}

static bool payload_ok(const uint8_t *p, size_t len, int nnodes) {
  if (len < HDR || get32(p) != MAGIC || get32(p + 16) != len || p[4] >= nnodes || p[5] == 0 ||
      p[5] >= SIM_MAX_INC)
    return false;
  uint64_t x = msg_key(p[4], p[5], get64(p + 8));
  if (get32(p + 20) != ((uint32_t)(x >> 32) ^ (uint32_t)len)) return false;
  size_t i = HDR;
  for (; i + 8 <= len; i += 8) {
    x = lcg(x);
    if (get64(p + i) != x) return false;
  }
  if (i < len) {
    x = lcg(x);
    if (memcmp(p + i, &x, len - i) != 0) return false;
  }
  return true;
}

/* ---------------------------------------------------------------- send */

uint64_t sim_books_next_seq(sim_run_t *run, sim_node_t *n) {
  (void)run;
  return ++n->seq;
}

void sim_books_sent(sim_run_t *run, sim_node_t *n, uint64_t seq, uint32_t mask) {
  sinc_t *si = &run->books->inc[n->slot][n->inc];
  BN_ASSERT(seq == si->n + 1);
  if (si->n == si->cap) {
    si->cap = si->cap ? 2 * si->cap : 1024;
    si->mask = sim_realloc(si->mask, si->cap);
  }
  si->mask[si->n++] = (uint8_t)mask;
  for (int j = 0; j < SIM_MAX_NODES; j++)
    if (mask & (1u << j)) si->pair[j].addressed++;
  if (mask) run->msgs_sent++;
}

/* ------------------------------------------------------------- receive */

void sim_books_received(sim_run_t *run, sim_node_t *n, const bftnet_msg_t *m) {
  const uint8_t *p = m->data;
  if (!payload_ok(p, m->len, run->p.nnodes))
    sim_check_fail(run,
                   "%s received a corrupt message (%zu bytes, labelled from %s): payload "
                   "integrity",
                   n->name, m->len, m->from);
  int s = p[4], i = p[5];
  uint64_t seq = get64(p + 8);
  const sim_node_t *sn = &run->nodes[s];
  if (strcmp(m->from, sn->name) != 0)
    sim_check_fail(run, "%s received %s#%d's message %llu labelled from \"%s\" (invariant 4)",
                   n->name, sn->name, i, (unsigned long long)seq, m->from);
  if (!(n->applied_view & (1u << s)))
    sim_check_fail(run, "%s received message %llu from %s, which is not its member (invariant 4)",
                   n->name, (unsigned long long)seq, sn->name);
  sinc_t *si = &run->books->inc[s][i];
  if (seq == 0 || seq > si->n || !(si->mask[seq - 1] & (1u << n->slot)))
    sim_check_fail(run, "%s received %s#%d's message %llu, never sent to it (invariant 1)", n->name,
                   sn->name, i, (unsigned long long)seq);
  pair_t *pr = &si->pair[n->slot];
  if (seq <= pr->last)
    sim_check_fail(run, "%s received %s#%d's message %llu after %llu: %s (invariant 1)", n->name,
                   sn->name, i, (unsigned long long)seq, (unsigned long long)pr->last,
                   seq == pr->last ? "a duplicate" : "reordered");
  pr->last = seq;
  pr->delivered++;
  run->msgs_delivered++;
  run->bytes_delivered += m->len;
  sim_trace(run->w, ((uint64_t)n->slot << 56) ^ ((uint64_t)s << 48) ^ ((uint64_t)i << 40) ^ seq);
}

/* -------------------------------------------------------------- bounds */

void sim_books_check_bounds(sim_run_t *run, sim_node_t *n) {
  const sim_params_t *p = &run->p;
  for (int j = 0; j < p->nnodes; j++) {
    if (j == n->slot || !(n->applied_view & (1u << j))) continue;
    bftnet_peer_stats_t st;
    if (bftnet_peer_stats(n->b, run->nodes[j].name, &st) != 0)
      sim_check_fail(run, "%s: no stats for its member %s", n->name, run->nodes[j].name);
    /* A message is at least HDR + 1 bytes on the wire: a window holds few. */
    uint64_t in_max = p->inbound_max_msgs + p->yamux_window / (HDR + 1) + 2;
    /* ring_capacity - 1 in the ring, up to the broadcast log (2 x
     * ring_capacity) not taken yet between two of the loop's advances, and
     * the ring messages the framer popped ahead to order them. */
    uint64_t ring_max = 3ull * p->ring_capacity + DISP_FRAMER_UNIQ;
    if (st.ring_depth > ring_max || st.inbound_depth > in_max || st.unconfirmed > p->yamux_window)
      sim_check_fail(run,
                     "%s holds too much for %s: ring %u (bound %llu), inbound %u (bound %llu), "
                     "unconfirmed %llu (window %u) (invariant 3)",
                     n->name, run->nodes[j].name, st.ring_depth, (unsigned long long)ring_max,
                     st.inbound_depth, (unsigned long long)in_max,
                     (unsigned long long)st.unconfirmed, p->yamux_window);
  }
  int64_t used = sim_lib_live_bytes() - run->lib_base;
  if (used > run->lib_peak_bound)
    sim_check_fail(run,
                   "the library's heap holds %lld bytes, over the bound %lld of this "
                   "configuration (invariant 3)",
                   (long long)used, (long long)run->lib_peak_bound);
}

/* ------------------------------------------------- crash and membership */

void sim_books_crash(sim_run_t *run, sim_node_t *n) {
  run->books->inc[n->slot][n->inc].crashed = true;
  for (int s = 0; s < run->p.nnodes; s++) {
    const sim_node_t *sn = &run->nodes[s];
    if (s == n->slot || sn->inc == 0) continue;
    pair_t *pr = &run->books->inc[s][sn->inc].pair[n->slot];
    bftnet_peer_stats_t st;
    if (!(n->applied_view & (1u << s)) || bftnet_peer_stats(n->b, sn->name, &st) != 0) {
      pr->relaxed = true; /* its messages may wait in a TentativeReceiver that dies */
      continue;
    }
    /* Queued, evicted before promotion, and one partly received message. */
    pr->allow += st.inbound_depth + st.tentative_evicted + 1;
  }
}

void sim_books_removal(sim_run_t *run, sim_node_t *n, uint32_t removed) {
  for (int x = 0; x < run->p.nnodes; x++) {
    if (!(removed & (1u << x))) continue;
    run->books->inc[n->slot][n->inc].pair[x].relaxed = true;
    const sim_node_t *xn = &run->nodes[x];
    if (xn->inc) run->books->inc[x][xn->inc].pair[n->slot].relaxed = true;
  }
}

/* ------------------------------------------------------------ the end */

static void final_pair(sim_run_t *run, sim_node_t *s, sim_node_t *r) {
  pair_t *pr = &run->books->inc[s->slot][s->inc].pair[r->slot];
  if (!(s->applied_view & (1u << r->slot)) || !(r->applied_view & (1u << s->slot)))
    sim_check_fail(run, "%s and %s are not each other's members at the end", s->name, r->name);
  bftnet_peer_stats_t ss, rs;
  if (bftnet_peer_stats(s->b, r->name, &ss) != 0 || bftnet_peer_stats(r->b, s->name, &rs) != 0)
    sim_check_fail(run, "%s/%s: no stats", s->name, r->name);
  if (ss.ring_depth || ss.unconfirmed)
    sim_check_fail(run,
                   "%s still holds %u queued and %llu unconfirmed bytes for %s after its "
                   "flush (liveness)",
                   s->name, ss.ring_depth, (unsigned long long)ss.unconfirmed, r->name);
  if (pr->relaxed) return;
  unsigned long long addr = pr->addressed, got = pr->delivered;
  if (ss.enqueued != addr)
    sim_check_fail(run, "%s counts %llu messages enqueued for %s; its application queued %llu",
                   s->name, (unsigned long long)ss.enqueued, r->name, addr);
  if (got + ss.dropped_overflow > addr)
    sim_check_fail(run, "%s->%s: %llu of %llu delivered, yet %llu counted dropped (invariant 2)",
                   s->name, r->name, got, addr, (unsigned long long)ss.dropped_overflow);
  uint64_t counted = ss.dropped_overflow + ss.aborted + rs.tentative_evicted + pr->allow;
  if (addr - got > counted)
    sim_check_fail(run,
                   "%s->%s: %llu of %llu messages missing, only %llu counted (dropped %llu, "
                   "aborted %llu, evicted %llu, lost with a crashed receiver %llu) "
                   "(invariant 2)",
                   s->name, r->name, addr - got, addr, (unsigned long long)counted,
                   (unsigned long long)ss.dropped_overflow, (unsigned long long)ss.aborted,
                   (unsigned long long)rs.tentative_evicted, (unsigned long long)pr->allow);
  if (ss.aborted != s->ev_aborted_lost[r->slot])
    sim_check_fail(run, "%s->%s: stats count %llu aborted, the ABORTED events %llu", s->name,
                   r->name, (unsigned long long)ss.aborted,
                   (unsigned long long)s->ev_aborted_lost[r->slot]);
}

/* Honest nodes over a network that loses, delays, cuts and truncates but
 * never alters bytes: no peer may see a protocol violation. (Not counted
 * here: a Migrate naming a stream the peer no longer has, unknown_from,
 * which a restart or a detach timeout on the other side makes routine.)
 * Strangers, who never authenticate, may cost a node one counted
 * handshake-level rejection each, nothing deeper. */
static const bftnet_counter_id_t violations[] = {BFTNET_COUNTER_BAD_YAMUX,
                                                 BFTNET_COUNTER_YAMUX_WINDOW_VIOLATION,
                                                 BFTNET_COUNTER_BAD_PING,
                                                 BFTNET_COUNTER_BAD_MESSAGE,
                                                 BFTNET_COUNTER_PEER_ID_MISMATCH,
                                                 BFTNET_COUNTER_MIG_BAD_MESSAGE,
                                                 BFTNET_COUNTER_MIG_UNEXPECTED_ACK,
                                                 BFTNET_COUNTER_MIG_BAD_PARITY,
                                                 BFTNET_COUNTER_MIG_ID_IN_USE,
                                                 BFTNET_COUNTER_MIG_REPLAY,
                                                 BFTNET_COUNTER_MIG_NOT_LEADER,
                                                 BFTNET_COUNTER_MIG_NO_OFFSET,
                                                 BFTNET_COUNTER_MIG_BAD_OFFSET,
                                                 BFTNET_COUNTER_MIG_BAD_CREDIT,
                                                 BFTNET_COUNTER_MIG_GAP,
                                                 BFTNET_COUNTER_MIG_DATA_AFTER_CLOSE,
                                                 BFTNET_COUNTER_MIG_DATA_BEFORE_ACK};
static const bftnet_counter_id_t stranger_rejects[] = {
    BFTNET_COUNTER_BAD_MULTISTREAM,     BFTNET_COUNTER_BAD_NOISE_FRAME,
    BFTNET_COUNTER_BAD_NOISE_HANDSHAKE, BFTNET_COUNTER_BAD_NOISE_DECRYPT,
    BFTNET_COUNTER_BAD_PAYLOAD,         BFTNET_COUNTER_BAD_SIGNATURE};

void sim_books_check_violations(sim_run_t *run, sim_node_t *n) {
  for (size_t i = 0; i < BN_ARRAY_LEN(violations); i++) {
    uint64_t v = bftnet_counter(n->b, violations[i]);
    if (v)
      sim_check_fail(run, "%s counted %llu %s between honest nodes (invariant 5)", n->name,
                     (unsigned long long)v, bftnet_counter_name(violations[i]));
  }
  uint64_t rejects = 0;
  for (size_t i = 0; i < BN_ARRAY_LEN(stranger_rejects); i++)
    rejects += bftnet_counter(n->b, stranger_rejects[i]);
  if (rejects > (uint64_t)n->strangers)
    sim_check_fail(run, "%s counted %llu rejected handshakes; only %d strangers came (invariant 5)",
                   n->name, (unsigned long long)rejects, n->strangers);
}

static void coverage(sim_run_t *run, sim_node_t *n) {
  static const bftnet_counter_id_t ids[] = {
#define SIM_XX_(name, text) BFTNET_COUNTER_##name,
      SIM_COVERAGE(SIM_XX_)
#undef SIM_XX_
  };
  for (size_t i = 0; i < SIM_COV_COUNT; i++)
    run->cov[i] += bftnet_counter(n->b, ids[i]);
  for (int j = 0; j < run->p.nnodes; j++) {
    bftnet_peer_stats_t st;
    if (j == n->slot || bftnet_peer_stats(n->b, run->nodes[j].name, &st) != 0) continue;
    run->dropped += st.dropped_overflow;
    run->aborted += st.aborted;
  }
}

void sim_books_final(sim_run_t *run) {
  for (int s = 0; s < run->p.nnodes; s++)
    if (run->nodes[s].alive) {
      sim_books_check_violations(run, &run->nodes[s]);
      coverage(run, &run->nodes[s]);
    }
  if (sim_net_strangers_open(run->w))
    sim_check_fail(run, "%d strangers' connections still open after the drain (invariant 5)",
                   sim_net_strangers_open(run->w));
  for (int s = 0; s < run->p.nnodes; s++)
    for (int r = 0; r < run->p.nnodes; r++) {
      sim_node_t *sn = &run->nodes[s], *rn = &run->nodes[r];
      if (s != r && sn->alive && rn->alive) final_pair(run, sn, rn);
    }
}

/* What every node holds for every member: for a failure report. */
void sim_books_dump(sim_run_t *run, FILE *f) {
  fprintf(f, "state (%d live connections in the world):\n", sim_net_conns(run->w));
  if (run->verbose) sim_net_dump(run->w, f);
  if (run->verbose) sim_debug_dump(run, f);
  for (int s = 0; s < run->p.nnodes; s++) {
    sim_node_t *n = &run->nodes[s];
    if (!n->alive) {
      fprintf(f, "  %s#%d down\n", n->name, n->inc);
      continue;
    }
    for (int r = 0; r < run->p.nnodes; r++) {
      bftnet_peer_stats_t st;
      if (r == s || bftnet_peer_stats(n->b, run->nodes[r].name, &st) != 0) continue;
      const pair_t *pr = &run->books->inc[s][n->inc].pair[r];
      fprintf(f,
              "  %s#%d->%s: queued %llu got %llu%s | enq %llu sent %llu drop %llu abort %llu ring "
              "%u unconf %llu conn %d recon %llu migr %llu det %llu res %llu restarts %llu | in "
              "%u deliv %llu\n",
              n->name, n->inc, run->nodes[r].name, (unsigned long long)pr->addressed,
              (unsigned long long)pr->delivered, pr->relaxed ? " (relaxed)" : "",
              (unsigned long long)st.enqueued, (unsigned long long)st.sent,
              (unsigned long long)st.dropped_overflow, (unsigned long long)st.aborted,
              st.ring_depth, (unsigned long long)st.unconfirmed, st.connected,
              (unsigned long long)st.reconnects, (unsigned long long)st.migrations,
              (unsigned long long)st.detached, (unsigned long long)st.resumed,
              (unsigned long long)st.peer_restarts, st.inbound_depth,
              (unsigned long long)st.delivered);
    }
  }
}
