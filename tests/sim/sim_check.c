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
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "dispatcher.h"
#include "sim.h"
#include "sim_alloc.h"

#define MAGIC 0x4d495342u /* "BSIM" */
#define HDR   24

/* What one receiver got of one class from a sender's incarnation. */
typedef struct pcls {
  uint64_t addressed, delivered, last;
  uint64_t allow; /* losses allowed: the receiver died holding them */
} pcls_t;

typedef struct pair {
  pcls_t c[SIM_MAX_CLS];
  uint64_t allow_any; /* evicted before promotion at a receiver that died: any class */
  bool relaxed;       /* a membership removal touched the pair: no exact count */
} pair_t;

typedef struct sent { /* one message, by sequence number */
  uint8_t mask;       /* the receivers */
  uint8_t got;        /* the receivers that got it */
  uint8_t cls, key;   /* its class and key (0: none) */
} sent_t;

typedef struct sinc { /* a sender's incarnation */
  sent_t *m;          /* per sequence number (seq - 1) */
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
      sim_free(run->books->inc[s][i].m);
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

void sim_payload_fill(uint8_t *p, size_t len, int slot, int inc, int cls, uint64_t seq) {
  BN_ASSERT(len >= HDR);
  uint64_t x = msg_key(slot, inc, seq);
  put32(p, MAGIC);
  p[4] = (uint8_t)slot;
  p[5] = (uint8_t)inc;
  p[6] = (uint8_t)cls;
  p[7] = 0;
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
      p[5] >= SIM_MAX_INC || p[6] >= SIM_MAX_CLS)
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

void sim_books_sent(sim_run_t *run, sim_node_t *n, uint64_t seq, uint32_t mask, int cls,
                    unsigned key) {
  sinc_t *si = &run->books->inc[n->slot][n->inc];
  BN_ASSERT(seq == si->n + 1);
  if (si->n == si->cap) {
    si->cap = si->cap ? 2 * si->cap : 1024;
    si->m = sim_realloc(si->m, si->cap * sizeof *si->m);
  }
  si->m[si->n++] = (sent_t){.mask = (uint8_t)mask, .cls = (uint8_t)cls, .key = (uint8_t)key};
  for (int j = 0; j < SIM_MAX_NODES; j++)
    if (mask & (1u << j)) si->pair[j].c[cls].addressed++;
  if (mask) run->msgs_sent++;
}

/* ------------------------------------------------------------- receive */

/* Invariants 1 and 4 per class: within its class, a sender's messages
 * arrive in the order sent, each once (keep-latest replaces a queued
 * message by a newer one at the tail: still a subsequence). */
void sim_books_received(sim_run_t *run, sim_node_t *n, const bftnet_msg_t *m) {
  const uint8_t *p = m->data;
  if (!payload_ok(p, m->len, run->p.nnodes))
    sim_check_fail(run,
                   "%s received a corrupt message (%zu bytes, labelled from %s): payload "
                   "integrity",
                   n->name, m->len, m->from);
  int s = p[4], i = p[5], c = p[6];
  uint64_t seq = get64(p + 8);
  const sim_node_t *sn = &run->nodes[s];
  if (strcmp(m->from, sn->name) != 0)
    sim_check_fail(run, "%s received %s#%d's message %llu labelled from \"%s\" (invariant 4)",
                   n->name, sn->name, i, (unsigned long long)seq, m->from);
  if (!(n->applied_view & (1u << s)))
    sim_check_fail(run, "%s received message %llu from %s, which is not its member (invariant 4)",
                   n->name, (unsigned long long)seq, sn->name);
  sinc_t *si = &run->books->inc[s][i];
  if (seq == 0 || seq > si->n || !(si->m[seq - 1].mask & (1u << n->slot)))
    sim_check_fail(run, "%s received %s#%d's message %llu, never sent to it (invariant 1)", n->name,
                   sn->name, i, (unsigned long long)seq);
  if (m->cls != c || si->m[seq - 1].cls != c)
    sim_check_fail(run, "%s received %s#%d's message %llu of class %d labelled class %u", n->name,
                   sn->name, i, (unsigned long long)seq, si->m[seq - 1].cls, m->cls);
  pcls_t *pc = &si->pair[n->slot].c[c];
  if (seq <= pc->last)
    sim_check_fail(run, "%s received %s#%d's message %llu after %llu in class %d: %s (invariant 1)",
                   n->name, sn->name, i, (unsigned long long)seq, (unsigned long long)pc->last, c,
                   seq == pc->last || (si->m[seq - 1].got & (1u << n->slot)) ? "a duplicate"
                                                                             : "reordered");
  si->m[seq - 1].got |= (uint8_t)(1u << n->slot);
  pc->last = seq;
  pc->delivered++;
  run->msgs_delivered++;
  run->bytes_delivered += m->len;
  sim_trace(run->w, ((uint64_t)n->slot << 56) ^ ((uint64_t)s << 48) ^ ((uint64_t)i << 40) ^
                        ((uint64_t)c << 37) ^ seq);
}

/* -------------------------------------------------------------- bounds */

/* A configured class's bounds, or the node's (one implicit class). */
static void cls_bounds(const sim_params_t *p, int c, uint32_t *ring, uint32_t *in, uint32_t *win) {
  *ring = p->nclasses ? p->cls[c].c.ring_capacity : p->ring_capacity;
  *in = p->nclasses ? p->cls[c].c.inbound_max_msgs : p->inbound_max_msgs;
  *win = p->nclasses > 1 && p->class_window ? p->class_window : p->yamux_window;
}

void sim_books_check_bounds(sim_run_t *run, sim_node_t *n) {
  const sim_params_t *p = &run->p;
  uint64_t waiting = 0;
  for (int j = 0; j < p->nnodes; j++) {
    if (j == n->slot || !(n->applied_view & (1u << j))) continue;
    for (int c = 0; c < sim_ncls(p); c++) {
      bftnet_class_stats_t st;
      if (bftnet_class_stats(n->b, run->nodes[j].name, (uint8_t)c, &st) != 0)
        sim_check_fail(run, "%s: no stats for its member %s", n->name, run->nodes[j].name);
      waiting += st.inbound_depth;
      uint32_t ring, in, win;
      cls_bounds(p, c, &ring, &in, &win);
      /* A message is at least HDR + 1 bytes on the wire: a window holds few. */
      uint64_t in_max = in + win / (HDR + 1) + 2;
      /* ring_capacity - 1 in the ring, up to the broadcast log (2 x
       * ring_capacity) not taken yet between two of the loop's advances, and
       * the ring messages the framer popped ahead to order them. */
      uint64_t ring_max = 3ull * ring + DISP_FRAMER_UNIQ;
      if (st.ring_depth > ring_max || st.inbound_depth > in_max || st.unconfirmed > win)
        sim_check_fail(run,
                       "%s holds too much for %s in class %d: ring %u (bound %llu), inbound %u "
                       "(bound %llu), unconfirmed %llu (window %u) (invariant 3)",
                       n->name, run->nodes[j].name, c, st.ring_depth, (unsigned long long)ring_max,
                       st.inbound_depth, (unsigned long long)in_max,
                       (unsigned long long)st.unconfirmed, win);
    }
  }
  /* With nothing queued for its loop (it tells the application at the end
   * of a turn; a wakeup from the application may move messages waiting in
   * the overflow), a waiting message means a readable fd: the application
   * clears it only when it found nothing. */
  struct pollfd pfd = {.fd = n->rfd, .events = POLLIN};
  if (waiting && !sim_tr_busy(n->tr) && poll(&pfd, 1, 0) != 1)
    sim_check_fail(run,
                   "%s holds %llu messages for its application, but bftnet_recv_fd is not "
                   "readable: a thread blocked in bftnet_recv would sleep beside them",
                   n->name, (unsigned long long)waiting);
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
    /* Evicted before promotion (any class); per class, what was queued
     * and one partly received message. */
    pr->allow_any += st.tentative_evicted;
    for (int c = 0; c < sim_ncls(&run->p); c++) {
      bftnet_class_stats_t cs;
      if (bftnet_class_stats(n->b, sn->name, (uint8_t)c, &cs) != 0) BN_ASSERT(0);
      pr->c[c].allow += cs.inbound_depth + 1;
    }
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

/* A pair's missing messages of each class, from the books: those that a
 * later message with the same key to the same receiver may have
 * superseded (keep-latest), and the others. */
static void missing_tally(const sinc_t *si, int r, uint64_t sup[SIM_MAX_CLS],
                          uint64_t other[SIM_MAX_CLS]) {
  uint32_t later[SIM_MAX_CLS] = {0}; /* keys seen after this message */
  for (size_t q = si->n; q-- > 0;) {
    const sent_t *m = &si->m[q];
    if (!(m->mask & (1u << r))) continue;
    bool keyed = m->key && m->key < 32, seen = keyed && (later[m->cls] & (1u << m->key));
    if (!(m->got & (1u << r))) {
      if (seen)
        sup[m->cls]++;
      else
        other[m->cls]++;
    }
    if (keyed) later[m->cls] |= 1u << m->key;
  }
}

/* Invariant 2 for one class of a pair; returns what only the member-wide
 * allowance (tentative evictions) can explain. */
static uint64_t final_cls(sim_run_t *run, sim_node_t *s, sim_node_t *r, int c,
                          const bftnet_class_stats_t *ss, uint64_t sup, uint64_t other) {
  const pcls_t *pc = &run->books->inc[s->slot][s->inc].pair[r->slot].c[c];
  unsigned long long addr = pc->addressed, got = pc->delivered;
  unsigned long long drop = ss->dropped, supd = ss->superseded, ab = ss->aborted;
  if (ss->enqueued != addr)
    sim_check_fail(run,
                   "%s counts %llu messages of class %d enqueued for %s; its application queued "
                   "%llu",
                   s->name, (unsigned long long)ss->enqueued, c, r->name, addr);
  if (got + drop + supd > addr)
    sim_check_fail(run,
                   "%s->%s class %d: %llu of %llu delivered, yet %llu counted dropped and %llu "
                   "superseded (invariant 2)",
                   s->name, r->name, c, got, addr, drop, supd);
  if (supd > sup)
    sim_check_fail(run,
                   "%s->%s class %d: %llu counted superseded; only %llu missing messages had a "
                   "newer one with their key (invariant 2)",
                   s->name, r->name, c, supd, (unsigned long long)sup);
  /* After the flush nothing is queued: each message was written, dropped,
   * superseded, or lost in hand with an aborted stream. */
  unsigned long long sent = ss->sent;
  if (sent + drop + supd > addr || sent + drop + supd + ab < addr)
    sim_check_fail(run,
                   "%s->%s class %d: %llu enqueued, yet %llu sent + %llu dropped + %llu "
                   "superseded (+ %llu aborted) (invariant 2)",
                   s->name, r->name, c, addr, sent, drop, supd, ab);
  if (ab != s->ev_aborted_lost[r->slot][c])
    sim_check_fail(run, "%s->%s class %d: stats count %llu aborted, the ABORTED events %llu",
                   s->name, r->name, c, ab, (unsigned long long)s->ev_aborted_lost[r->slot][c]);
  uint64_t missing = addr - got, all = drop + supd + ab + pc->allow, plain = drop + ab + pc->allow;
  uint64_t x = missing > all ? missing - all : 0;
  if (other > plain && other - plain > x) x = other - plain;
  return x;
}

static void final_pair(sim_run_t *run, sim_node_t *s, sim_node_t *r) {
  sinc_t *si = &run->books->inc[s->slot][s->inc];
  pair_t *pr = &si->pair[r->slot];
  int ncls = sim_ncls(&run->p);
  if (!(s->applied_view & (1u << r->slot)) || !(r->applied_view & (1u << s->slot)))
    sim_check_fail(run, "%s and %s are not each other's members at the end", s->name, r->name);
  bftnet_peer_stats_t rs;
  bftnet_class_stats_t ss[SIM_MAX_CLS];
  if (bftnet_peer_stats(r->b, s->name, &rs) != 0)
    sim_check_fail(run, "%s/%s: no stats", s->name, r->name);
  for (int c = 0; c < ncls; c++) {
    if (bftnet_class_stats(s->b, r->name, (uint8_t)c, &ss[c]) != 0)
      sim_check_fail(run, "%s/%s: no stats", s->name, r->name);
    if (ss[c].ring_depth || ss[c].unconfirmed)
      sim_check_fail(run,
                     "%s still holds %u queued and %llu unconfirmed bytes of class %d for %s "
                     "after its flush (liveness)",
                     s->name, ss[c].ring_depth, (unsigned long long)ss[c].unconfirmed, c, r->name);
  }
  if (pr->relaxed) return;
  uint64_t sup[SIM_MAX_CLS] = {0}, other[SIM_MAX_CLS] = {0}, excess = 0;
  missing_tally(si, r->slot, sup, other);
  for (int c = 0; c < ncls; c++)
    excess += final_cls(run, s, r, c, &ss[c], sup[c], other[c]);
  uint64_t slack = rs.tentative_evicted + pr->allow_any;
  if (excess > slack) {
    char why[160] = "";
    size_t o = 0;
    for (int c = 0; c < ncls && o < sizeof why; c++) {
      const pcls_t *pc = &pr->c[c];
      o += (size_t)snprintf(why + o, sizeof why - o,
                            "%sc%d: %llu of %llu missing (%llu not superseded), dropped %llu, "
                            "superseded %llu, aborted %llu, died with the receiver %llu",
                            c ? "; " : "", c, (unsigned long long)(pc->addressed - pc->delivered),
                            (unsigned long long)pc->addressed, (unsigned long long)other[c],
                            (unsigned long long)ss[c].dropped, (unsigned long long)ss[c].superseded,
                            (unsigned long long)ss[c].aborted, (unsigned long long)pc->allow);
    }
    sim_check_fail(run,
                   "%s->%s: %llu messages missing beyond what is counted (evicted before "
                   "promotion %llu): %s (invariant 2)",
                   s->name, r->name, (unsigned long long)excess, (unsigned long long)slack, why);
  }
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
  for (int j = 0; j < run->p.nnodes; j++)
    for (int c = 0; c < sim_ncls(&run->p); c++) {
      bftnet_class_stats_t st;
      if (j == n->slot || bftnet_class_stats(n->b, run->nodes[j].name, (uint8_t)c, &st) != 0)
        continue;
      run->dropped += st.dropped;
      run->aborted += st.aborted;
      run->superseded += st.superseded;
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
      uint64_t addressed = 0, delivered = 0;
      for (int c = 0; c < SIM_MAX_CLS; c++)
        addressed += pr->c[c].addressed, delivered += pr->c[c].delivered;
      fprintf(f,
              "  %s#%d->%s: queued %llu got %llu%s | enq %llu sent %llu drop %llu abort %llu ring "
              "%u unconf %llu conn %d recon %llu migr %llu det %llu res %llu restarts %llu | in "
              "%u deliv %llu\n",
              n->name, n->inc, run->nodes[r].name, (unsigned long long)addressed,
              (unsigned long long)delivered, pr->relaxed ? " (relaxed)" : "",
              (unsigned long long)st.enqueued, (unsigned long long)st.sent,
              (unsigned long long)st.dropped_overflow, (unsigned long long)st.aborted,
              st.ring_depth, (unsigned long long)st.unconfirmed, st.connected,
              (unsigned long long)st.reconnects, (unsigned long long)st.migrations,
              (unsigned long long)st.detached, (unsigned long long)st.resumed,
              (unsigned long long)st.peer_restarts, st.inbound_depth,
              (unsigned long long)st.delivered);
      for (int c = 0; run->p.nclasses && c < run->p.nclasses; c++) {
        bftnet_class_stats_t cs;
        if (bftnet_class_stats(n->b, run->nodes[r].name, (uint8_t)c, &cs) != 0) continue;
        const pcls_t *pc = &pr->c[c];
        fprintf(f,
                "    class %d: queued %llu got %llu | enq %llu sent %llu drop %llu superseded "
                "%llu abort %llu ring %u unconf %llu conn %d | in %u deliv %llu\n",
                c, (unsigned long long)pc->addressed, (unsigned long long)pc->delivered,
                (unsigned long long)cs.enqueued, (unsigned long long)cs.sent,
                (unsigned long long)cs.dropped, (unsigned long long)cs.superseded,
                (unsigned long long)cs.aborted, cs.ring_depth, (unsigned long long)cs.unconfirmed,
                cs.connected, cs.inbound_depth, (unsigned long long)cs.delivered);
      }
    }
  }
}
