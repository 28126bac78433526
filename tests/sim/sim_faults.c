/*
 * sim_faults.c — what a seed draws: the parameters of its nodes, world and
 * applications, and its fault schedule (a swarm: each seed enables its own
 * subset of fault kinds, each with its own count and rates), and how each
 * fault is applied. Every fault heals by t_faults; a last action then
 * restores anything left (every node up, every link open, the full
 * membership), so the liveness check has a healed world to work in.
 */
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "sim_alloc.h"

enum {
  F_RESET,    /* RST every connection in scope now: a=host, b=host (-1: any) */
  F_CUT,      /* RST (y=0) or FIN (y=1) in one direction after x more bytes */
  F_BLOCK,    /* x: bitmask of directed links (a*8+b); y: 1 block, 0 open */
  F_REFUSE,   /* x: bitmask of links; y: percentage of SYNs refused */
  F_ADDR,     /* address b of host a down (y=1) or up (y=0) */
  F_LATENCY,  /* link a->b: latency x ns */
  F_READER,   /* node a's reader: x = READ_* */
  F_CRASH,    /* node a's process dies; y=1: its machine too; y=2: it stops in order */
  F_RESTART,  /* node a starts again (a new incarnation) */
  F_JOIN,     /* node a starts for the first time */
  F_VIEW,     /* node a's membership: x=0 remove b, 1 add b, 2 b's addresses -> variant y */
  F_LISTEN,   /* node a listens on its address b too */
  F_BURST,    /* node a's application queues x messages at once */
  F_STRANGER, /* a stranger connects to node a and sends garbage of kind x (y: its seed) */
  F_HOLD,     /* what a sends b (y & 256: and b sends a) on y & 255 % of their connections
                 held for x ns */
  F_HEAL,     /* everything back to normal */
};

static const char *const kind_names[] = {
    "reset",   "cut",  "block", "refuse", "address", "latency",  "reader", "crash",
    "restart", "join", "view",  "listen", "burst",   "stranger", "hold",   "heal"};

struct sim_fault {
  uint64_t at;
  int kind, a, b;
  uint64_t x, y;
  int order;
  char what[120];
};

/* ---------------------------------------------------------- parameters */

static uint32_t pick32(sim_rng_t *r, const uint32_t *v, size_t n) {
  return v[sim_rng_below(r, n)];
}
#define PICK(r, ...)                                                                               \
  pick32((r), (const uint32_t[]){__VA_ARGS__},                                                     \
         sizeof((const uint32_t[]){__VA_ARGS__}) / sizeof(uint32_t))

static void draw_params(sim_run_t *run) {
  sim_rng_t *r = &run->rng_cfg;
  sim_params_t *p = &run->p;
  p->nnodes = sim_rng_pct(r, 10) ? 7 : (int)sim_rng_range(r, 3, 5);
  p->joiner =
      p->nnodes >= 4 && sim_rng_pct(r, 30) ? (int)sim_rng_below(r, (uint64_t)p->nnodes) : -1;
  p->two_addrs = sim_rng_pct(r, 30);
  p->t_faults = sim_rng_range(r, 3, 12) * SIM_S;
  p->t_post = sim_rng_range(r, 1, 3) * SIM_S;
  p->ring_capacity = PICK(r, 16, 64, 256, 1024, 4096);
  p->inbound_max_msgs = PICK(r, 8, 32, 128, 1024, 4096);
  p->inbound_max_bytes = PICK(r, 256 * 1024, 4 * 1024 * 1024, 64 * 1024 * 1024);
  p->yamux_window = PICK(r, 256 * 1024, 512 * 1024, 1024 * 1024);
  p->ping_interval_ms = (uint32_t)sim_rng_range(r, 300, 2000);
  p->ping_timeout_ms = p->ping_interval_ms * (uint32_t)sim_rng_range(r, 2, 4);
  p->handshake_timeout_ms = (uint32_t)sim_rng_range(r, 1000, 5000);
  p->detach_timeout_ms = (uint32_t)sim_rng_range(r, 1000, 20000);
  p->failback_ms = (uint32_t)sim_rng_range(r, 300, 3000);
  p->backoff_min_ms = (uint32_t)sim_rng_range(r, 20, 300);
  p->backoff_max_ms = (uint32_t)sim_rng_range(r, 2 * p->backoff_min_ms, 3000);
  p->tentative_max_msgs = PICK(r, 16, 256, 1024);
  p->send_gap_ns = sim_rng_range(r, 4, 50) * SIM_MS;
  p->bcast_pct = (unsigned)sim_rng_range(r, 0, 60);
  p->big_pct = (unsigned)sim_rng_range(r, 0, 10);
  p->huge_pct = sim_rng_pct(r, 20) ? 1 : 0;
  p->recv_gap_ns = sim_rng_range(r, 1, 20) * SIM_MS;
  p->recv_batch = PICK(r, 1, 4, 64, 256);
  p->kernel_buf = PICK(r, 16 * 1024, 64 * 1024, 256 * 1024, 1024 * 1024);
  p->defer_batch = PICK(r, 1, 4, 16);
  p->coalesce_pct = PICK(r, 0, 50, 100);
}

void sim_params_print(const sim_run_t *run, FILE *f) {
  const sim_params_t *p = &run->p;
  fprintf(f,
          "seed %llu: %d nodes%s%s; faults for %.1f s, traffic %.1f s more\n"
          "  ring %u, inbound %u msgs / %u B, window %u, ping %u/%u ms, handshake %u ms, "
          "detach %u ms, failback %u ms, backoff %u..%u ms, tentative %u msgs\n"
          "  send every ~%llu ms (%u%% broadcast, %u%% 1-16 KiB, %u%% 64-200 KiB), read every "
          "~%llu ms x%u\n"
          "  kernel buffer %zu B, deferred work after %u events, coalesced reads %u%%\n",
          (unsigned long long)run->seed, p->nnodes, p->joiner >= 0 ? ", one joins later" : "",
          p->two_addrs ? ", two addresses each" : "", (double)p->t_faults / SIM_S,
          (double)p->t_post / SIM_S, p->ring_capacity, p->inbound_max_msgs, p->inbound_max_bytes,
          p->yamux_window, p->ping_interval_ms, p->ping_timeout_ms, p->handshake_timeout_ms,
          p->detach_timeout_ms, p->failback_ms, p->backoff_min_ms, p->backoff_max_ms,
          p->tentative_max_msgs, (unsigned long long)(p->send_gap_ns / SIM_MS), p->bcast_pct,
          p->big_pct, p->huge_pct, (unsigned long long)(p->recv_gap_ns / SIM_MS), p->recv_batch,
          p->kernel_buf, p->defer_batch, p->coalesce_pct);
  sim_classes_print(run, f);
}

/* --------------------------------------------------------------- links */

/* Latency, jitter, bandwidth and segmentation per direction; kept in the
 * run so that a latency fault can restore them. */
static sim_link_t g_links[SIM_MAX_HOSTS][SIM_MAX_HOSTS];

static void draw_links(sim_run_t *run, bool odd_segments) {
  sim_rng_t *r = &run->rng_fault;
  uint64_t base = PICK(r, 50, 500, 5000, 20000) * 1000ull;
  for (int a = 0; a < run->p.nnodes; a++)
    for (int b = 0; b < run->p.nnodes; b++) {
      sim_link_t *l = &g_links[a][b];
      l->lat_ns = sim_rng_range(r, base / 2, base * 2);
      l->jitter_ns = sim_rng_pct(r, 50) ? sim_rng_range(r, 0, l->lat_ns) : 0;
      l->ns_per_kib = PICK(r, 100, 1000, 10000, 100000);
      l->seg =
          !odd_segments ? SIM_SEG_NORMAL : (int)PICK(r, SIM_SEG_NORMAL, SIM_SEG_TINY, SIM_SEG_HUGE);
      l->refuse_pct = 0;
      l->blocked = false;
    }
}

void sim_faults_setup_links(sim_run_t *run) {
  for (int a = 0; a < run->p.nnodes; a++)
    for (int b = 0; b < run->p.nnodes; b++)
      *sim_link(run->w, a, b) = g_links[a][b];
}

/* ------------------------------------------------------------ schedule */

static sim_fault_t *add(sim_run_t *run, uint64_t at, int kind, int a, int b, uint64_t x, uint64_t y,
                        const char *what) {
  if (run->nfaults == run->cap_faults) {
    run->cap_faults = run->cap_faults ? 2 * run->cap_faults : 64;
    run->faults = sim_realloc(run->faults, (size_t)run->cap_faults * sizeof *run->faults);
  }
  sim_fault_t *f = &run->faults[run->nfaults];
  *f = (sim_fault_t){.at = at, .kind = kind, .a = a, .b = b, .x = x, .y = y, .order = run->nfaults};
  snprintf(f->what, sizeof f->what, "%s", what ? what : "");
  run->nfaults++;
  return f;
}

static int fault_cmp(const void *pa, const void *pb) {
  const sim_fault_t *a = pa, *b = pb;
  if (a->at != b->at) return a->at < b->at ? -1 : 1;
  return a->order - b->order;
}

/* A time in the fault window with room for a duration d after it. */
static uint64_t when(sim_run_t *run, uint64_t d) {
  uint64_t lo = 300 * SIM_MS, hi = run->p.t_faults > d + lo ? run->p.t_faults - d : lo;
  return sim_rng_range(&run->rng_fault, lo, hi);
}

static uint64_t dur(sim_run_t *run, uint64_t lo, uint64_t hi) {
  uint64_t cap = run->p.t_faults / 2;
  if (hi > cap) hi = cap;
  if (lo > hi) lo = hi;
  return sim_rng_range(&run->rng_fault, lo, hi);
}

static int other_node(sim_run_t *run, int a) {
  int b = (int)sim_rng_below(&run->rng_fault, (uint64_t)run->p.nnodes - 1);
  return b >= a ? b + 1 : b;
}

static uint64_t bit(int a, int b) {
  return 1ull << (a * 8 + b);
}

/* A partition's directed links: a pair (one way or both), one node, or halves. */
static uint64_t draw_cut_set(sim_run_t *run, char *what, size_t cap) {
  sim_rng_t *r = &run->rng_fault;
  int n = run->p.nnodes, a = (int)sim_rng_below(r, (uint64_t)n), b = other_node(run, a);
  uint64_t m = 0;
  switch (sim_rng_below(r, 4)) {
  case 0:
    snprintf(what, cap, "n%d<->n%d", a, b);
    return bit(a, b) | bit(b, a);
  case 1:
    snprintf(what, cap, "n%d->n%d only", a, b);
    return bit(a, b);
  case 2:
    for (int j = 0; j < n; j++)
      if (j != a) m |= bit(a, j) | bit(j, a);
    snprintf(what, cap, "n%d from everyone", a);
    return m;
  default: {
    uint32_t side = (uint32_t)sim_rng_range(r, 1, (1u << n) - 2);
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++)
        if (((side >> i) & 1) != ((side >> j) & 1)) m |= bit(i, j);
    snprintf(what, cap, "halves %#x | %#x", side, ~side & ((1u << n) - 1));
    return m;
  }
  }
}

static void draw_partitions(sim_run_t *run, uint64_t long_ns) {
  char set[64], what[120];
  for (int k = (int)sim_rng_range(&run->rng_fault, 1, 3); k > 0; k--) {
    uint64_t d = dur(run, 200 * SIM_MS, long_ns), at = when(run, d);
    uint64_t m = draw_cut_set(run, set, sizeof set);
    if (sim_rng_pct(&run->rng_fault, 50)) { /* silent: found by the ping timeout, or not */
      snprintf(what, sizeof what, "blackhole %s for %.2f s", set, (double)d / SIM_S);
      add(run, at, F_BLOCK, -1, -1, m, 1, what);
      add(run, at + d, F_BLOCK, -1, -1, m, 0, "  blackhole ends");
    } else { /* loud: connections reset, new ones refused */
      snprintf(what, sizeof what, "partition %s for %.2f s (reset, refused)", set,
               (double)d / SIM_S);
      add(run, at, F_REFUSE, -1, -1, m, 100, what);
      for (int i = 0; i < run->p.nnodes; i++)
        for (int j = i + 1; j < run->p.nnodes; j++)
          if (m & (bit(i, j) | bit(j, i))) add(run, at, F_RESET, i, j, 100, 0, NULL);
      add(run, at + d, F_REFUSE, -1, -1, m, 0, "  partition ends");
    }
  }
}

static void draw_cuts(sim_run_t *run) {
  sim_rng_t *r = &run->rng_fault;
  char what[120];
  for (int k = (int)sim_rng_range(r, 1, 6); k > 0; k--) {
    uint64_t at = when(run, 0);
    int a = sim_rng_pct(r, 30) ? -1 : (int)sim_rng_below(r, (uint64_t)run->p.nnodes);
    int b = a < 0 || sim_rng_pct(r, 40) ? -1 : other_node(run, a);
    char scope[32];
    if (a < 0)
      snprintf(scope, sizeof scope, "every link");
    else if (b < 0)
      snprintf(scope, sizeof scope, "n%d's links", a);
    else
      snprintf(scope, sizeof scope, "n%d<->n%d", a, b);
    if (sim_rng_pct(r, 30)) {
      snprintf(what, sizeof what, "reset %s now", scope);
      add(run, at, F_RESET, a, b, 100, 0, what);
    } else {
      bool fin = sim_rng_pct(r, 30);
      uint64_t after = sim_rng_pct(r, 30) ? sim_rng_range(r, 0, 200) : sim_rng_range(r, 0, 300000);
      snprintf(what, sizeof what, "%s %s after %llu more bytes one way", fin ? "FIN" : "RST", scope,
               (unsigned long long)after);
      add(run, at, F_CUT, a, b, after, fin, what);
    }
  }
}

static void draw_crashes(sim_run_t *run) {
  sim_rng_t *r = &run->rng_fault;
  char what[120];
  for (int k = (int)sim_rng_range(r, 1, 2); k > 0; k--) {
    int a = (int)sim_rng_below(r, (uint64_t)run->p.nnodes);
    if (a == run->p.joiner) continue;
    uint64_t d = dur(run, 100 * SIM_MS, 5 * SIM_S), at = when(run, d);
    bool machine = sim_rng_pct(r, 40);
    snprintf(what, sizeof what, "crash n%d (%s), restart after %.2f s", a,
             machine ? "machine: silent" : "process", (double)d / SIM_S);
    add(run, at, F_CRASH, a, -1, 0, machine, what);
    add(run, at + d, F_RESTART, a, -1, 0, machine, "  restart");
  }
}

/* One or two changes: a node removed by every other one (one after the
 * other) and added back later, or a node that moves to a new preferred
 * address. Two removals at once leave two TentativeReceivers side by side. */
static void draw_membership(sim_run_t *run) {
  sim_rng_t *r = &run->rng_fault;
  const sim_params_t *p = &run->p;
  char what[120];
  uint32_t used = 0;
  for (int k = (int)sim_rng_range(r, 1, 2); k > 0; k--) {
    int x = (int)sim_rng_below(r, (uint64_t)p->nnodes);
    if (x == p->joiner || (used & (1u << x))) continue;
    used |= 1u << x;
    if (sim_rng_pct(r, 65)) {
      uint64_t d = dur(run, 500 * SIM_MS, 4 * SIM_S), at = when(run, d + 2 * SIM_S);
      snprintf(what, sizeof what, "remove n%d from every membership, add it back after %.2f s", x,
               (double)d / SIM_S);
      add(run, at, F_VIEW, -1, x, 0, 0, what);
      for (int n = 0; n < p->nnodes; n++) {
        if (n == x) continue;
        add(run, at + sim_rng_range(r, 0, SIM_S), F_VIEW, n, x, 0, 0, NULL);
        add(run, at + d + sim_rng_range(r, 0, SIM_S), F_VIEW, n, x, 1, 0, NULL);
      }
    } else {
      uint64_t at = when(run, SIM_S);
      snprintf(what, sizeof what, "n%d moves: listens on 10.0.1.%d too, preferred from now", x,
               x + 1);
      add(run, at, F_LISTEN, x, 1, 0, 0, what);
      for (int n = 0; n < p->nnodes; n++)
        if (n != x) add(run, at + sim_rng_range(r, 0, SIM_S), F_VIEW, n, x, 2, 2, NULL);
    }
  }
}

static void draw_join(sim_run_t *run) {
  const sim_params_t *p = &run->p;
  int x = p->joiner;
  uint64_t at = when(run, 2 * SIM_S);
  char what[120];
  snprintf(what, sizeof what, "n%d joins: starts with everyone, the others add it", x);
  add(run, at, F_JOIN, x, -1, 0, 0, what);
  for (int n = 0; n < p->nnodes; n++)
    if (n != x)
      add(run, at + sim_rng_range(&run->rng_fault, 0, 2 * SIM_S), F_VIEW, n, x, 1, 0, NULL);
}

static void draw_misc(sim_run_t *run, unsigned mask) {
  sim_rng_t *r = &run->rng_fault;
  const sim_params_t *p = &run->p;
  char what[120];
  if (mask & 1) { /* a reader stops or slows down */
    int a = (int)sim_rng_below(r, (uint64_t)p->nnodes);
    uint64_t d = dur(run, 500 * SIM_MS, 6 * SIM_S), at = when(run, d);
    bool stop = sim_rng_pct(r, 60);
    snprintf(what, sizeof what, "n%d's reader %s for %.2f s", a, stop ? "stops" : "slows down",
             (double)d / SIM_S);
    add(run, at, F_READER, a, -1, stop ? READ_STOPPED : READ_SLOW, 0, what);
    add(run, at + d, F_READER, a, -1, READ_NORMAL, 0, "  reader back");
  }
  if (mask & 2) { /* a burst overflows rings */
    int a = (int)sim_rng_below(r, (uint64_t)p->nnodes);
    uint64_t count = sim_rng_range(r, 50, 3000);
    snprintf(what, sizeof what, "n%d queues %llu messages at once", a, (unsigned long long)count);
    add(run, when(run, 0), F_BURST, a, -1, count, 0, what);
  }
  if (mask & 4) { /* one link slows down */
    int a = (int)sim_rng_below(r, (uint64_t)p->nnodes), b = other_node(run, a);
    uint64_t d = dur(run, 500 * SIM_MS, 5 * SIM_S), at = when(run, d);
    uint64_t lat = sim_rng_range(r, 100, 1500) * SIM_MS;
    snprintf(what, sizeof what, "n%d->n%d latency %llu ms for %.2f s", a, b,
             (unsigned long long)(lat / SIM_MS), (double)d / SIM_S);
    add(run, at, F_LATENCY, a, b, lat, 0, what);
    add(run, at + d, F_LATENCY, a, b, g_links[a][b].lat_ns, 0, "  latency back");
  }
  if (mask & 8) { /* dials fail */
    int a = (int)sim_rng_below(r, (uint64_t)p->nnodes);
    uint64_t m = 0, d = dur(run, 500 * SIM_MS, 5 * SIM_S), at = when(run, d);
    for (int j = 0; j < p->nnodes; j++)
      if (j != a) m |= bit(a, j) | bit(j, a);
    unsigned pct = (unsigned)sim_rng_range(r, 30, 100);
    snprintf(what, sizeof what, "%u%% of n%d's connection attempts refused for %.2f s", pct, a,
             (double)d / SIM_S);
    add(run, at, F_REFUSE, -1, -1, m, pct, what);
    add(run, at + d, F_REFUSE, -1, -1, m, 0, "  dials work again");
  }
  if (mask & 32) { /* strangers' garbage: closed with a counted reason, nothing else hurt */
    static const char *const kinds[] = {"random bytes", "a Noise handshake of garbage",
                                        "a lying multistream length"};
    for (int k = (int)sim_rng_range(r, 1, 3); k > 0; k--) {
      int a = (int)sim_rng_below(r, (uint64_t)p->nnodes);
      uint64_t kind = sim_rng_below(r, 3);
      snprintf(what, sizeof what, "a stranger sends n%d %s", a, kinds[kind]);
      /* Drawn one statement at a time: the order in which a call's
       * arguments are evaluated is the compiler's choice, and gcc and clang
       * differ (the same seed would draw another schedule). */
      uint64_t at = when(run, 0), garbage_seed = sim_rng_next(r);
      add(run, at, F_STRANGER, a, -1, kind, garbage_seed, what);
    }
  }
  if (mask & 64) { /* one connection stalls (retransmission backoff) while others flow */
    int a = (int)sim_rng_below(r, (uint64_t)p->nnodes), b = other_node(run, a);
    uint64_t hold = sim_rng_range(r, 50, 3000) * SIM_MS, at = when(run, hold);
    unsigned pct = sim_rng_pct(r, 50) ? 100 : 50;
    bool both = sim_rng_pct(r, 50);
    if (at + hold > p->t_faults) hold = p->t_faults - at; /* healed by then */
    snprintf(what, sizeof what, "n%d%sn%d held for %.2f s on %s connections", a,
             both ? "<->" : "->", b, (double)hold / SIM_S, pct == 100 ? "all their" : "half their");
    add(run, at, F_HOLD, a, b, hold, (both ? 256u : 0u) | pct, what);
  }
  if (mask & 128) { /* an orderly stop and a start again (an upgrade) */
    int a = (int)sim_rng_below(r, (uint64_t)p->nnodes);
    uint64_t d = dur(run, 50 * SIM_MS, 3 * SIM_S), at = when(run, d);
    if (a != p->joiner) {
      snprintf(what, sizeof what, "n%d stops in order (GO_AWAY first), starts again after %.2f s",
               a, (double)d / SIM_S);
      add(run, at, F_CRASH, a, -1, 0, 2, what);
      add(run, at + d, F_RESTART, a, -1, 0, 0, "  restart");
    }
  }
  if ((mask & 16) && p->two_addrs) { /* the preferred address goes down: failover, failback */
    int a = (int)sim_rng_below(r, (uint64_t)p->nnodes);
    uint64_t d = dur(run, 500 * SIM_MS, 6 * SIM_S), at = when(run, d);
    snprintf(what, sizeof what, "n%d's address 10.0.0.%d down for %.2f s (failover)", a, a + 1,
             (double)d / SIM_S);
    add(run, at, F_ADDR, a, 0, 0, 1, what);
    add(run, at + d, F_ADDR, a, 0, 0, 0, "  address back (failback)");
  }
}

void sim_faults_draw(sim_run_t *run) {
  draw_params(run);
  sim_rng_t *r = &run->rng_fault;
  /* The swarm: each kind is in this seed's mix or not. */
  unsigned mix = (unsigned)sim_rng_next(r);
  draw_links(run, mix & 1);
  uint64_t long_ns = 3ull * run->p.ping_timeout_ms * SIM_MS;
  if (long_ns < 3ull * run->p.detach_timeout_ms * SIM_MS / 2)
    long_ns = 3ull * run->p.detach_timeout_ms * SIM_MS / 2;
  if (mix & 2) draw_cuts(run);
  if (mix & 4) draw_partitions(run, long_ns);
  if (mix & 8) draw_crashes(run);
  if (mix & 16) draw_membership(run);
  if (run->p.joiner >= 0) draw_join(run);
  draw_misc(run, (mix >> 5) & 255);
  add(run, run->p.t_faults, F_HEAL, -1, -1, 0, 0, "every fault healed");
  qsort(run->faults, (size_t)run->nfaults, sizeof *run->faults, fault_cmp);
}

void sim_faults_free(sim_run_t *run) {
  sim_free(run->faults);
  run->faults = NULL;
  run->nfaults = run->cap_faults = run->next_fault = 0;
}

void sim_faults_print(const sim_run_t *run, FILE *f) {
  fprintf(f, "fault schedule (%d actions):\n", run->nfaults);
  for (int i = 0; i < run->nfaults; i++) {
    const sim_fault_t *x = &run->faults[i];
    if (!x->what[0]) continue;
    fprintf(f, "  %8.3f s  %s%s\n", (double)x->at / SIM_S, x->what,
            i < run->next_fault ? "" : "   (not reached)");
  }
}

/* ---------------------------------------------------------------- apply */

uint64_t sim_faults_next_at(const sim_run_t *run) {
  return run->next_fault < run->nfaults ? run->t0 + run->faults[run->next_fault].at : UINT64_MAX;
}

static void each_link(sim_run_t *run, uint64_t m, void (*fn)(sim_link_t *, uint64_t), uint64_t v) {
  for (int a = 0; a < run->p.nnodes; a++)
    for (int b = 0; b < run->p.nnodes; b++)
      if (m & bit(a, b)) fn(sim_link(run->w, a, b), v);
}

static void set_blocked(sim_link_t *l, uint64_t v) {
  l->blocked = v != 0;
}
static void set_refuse(sim_link_t *l, uint64_t v) {
  l->refuse_pct = (unsigned)v;
}

static void apply_view(sim_run_t *run, const sim_fault_t *f) {
  if (f->a < 0) return; /* the headline of a membership change */
  sim_node_t *n = &run->nodes[f->a];
  if (f->x == 0)
    n->view &= ~(1u << f->b);
  else if (f->x == 1)
    n->view |= 1u << f->b;
  else
    n->addrv[f->b] = (int)f->y;
  sim_node_apply_view(run, n);
}

static size_t put_lp(uint8_t *p, const char *s) {
  size_t n = strlen(s);
  p[0] = (uint8_t)n; /* < 128: one uvarint byte */
  memcpy(p + 1, s, n);
  return n + 1;
}

/* Garbage from nowhere: random bytes; a multistream negotiation of Noise
 * followed by garbage handshake messages; a length that lies. */
static void stranger(sim_run_t *run, sim_node_t *n, uint64_t kind, uint64_t seed) {
  if (!n->alive) return;
  sim_rng_t r;
  sim_rng_seed(&r, seed, 3);
  uint8_t buf[4096];
  size_t len = 0;
  if (kind >= 1) {
    len += put_lp(buf, "/multistream/1.0.0\n");
    if (kind == 1) len += put_lp(buf + len, "/noise\n");
  }
  if (kind == 2) {
    static const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    memcpy(buf + len, huge, sizeof huge);
    len += sizeof huge;
  }
  size_t more = sim_rng_range(&r, 1, sizeof buf - len);
  for (size_t i = 0; i < more; i++)
    buf[len + i] = (uint8_t)sim_rng_next(&r);
  len += more;
  if (sim_net_stranger(run->w, n->slot, 0, SIM_PORT, buf, len) == 0) n->strangers++;
}

/* The end of the fault window: every node up with the full membership
 * (addresses as last announced), every link open. */
static void heal(sim_run_t *run) {
  int n = run->p.nnodes;
  uint32_t all = (1u << n) - 1;
  for (int a = 0; a < n; a++)
    for (int b = 0; b < n; b++) {
      sim_link_t *l = sim_link(run->w, a, b);
      l->blocked = false;
      l->refuse_pct = 0;
      l->lat_ns = g_links[a][b].lat_ns;
    }
  for (int a = 0; a < n; a++)
    for (int i = 0; i < SIM_ADDRS; i++)
      sim_addr_set_down(run->w, a, i, false);
  for (int a = 0; a < n; a++)
    sim_host_up(run->w, a);
  int addrv[SIM_MAX_NODES] = {0};
  for (int a = 0; a < n; a++)
    for (int x = 0; x < n; x++)
      if (run->nodes[a].addrv[x] > addrv[x]) addrv[x] = run->nodes[a].addrv[x];
  for (int a = 0; a < n; a++) {
    sim_node_t *nd = &run->nodes[a];
    nd->reader = READ_NORMAL;
    bool changed = nd->view != all || memcmp(nd->addrv, addrv, sizeof addrv) != 0;
    nd->view = all;
    memcpy(nd->addrv, addrv, sizeof addrv);
    if (!nd->alive)
      sim_node_start(run, nd);
    else if (changed)
      sim_node_apply_view(run, nd);
  }
  sim_net_changed(run->w);
}

/* One action of the schedule (the world stands still meanwhile, except
 * where a node's blocking call turns it). */
void sim_faults_apply_next(sim_run_t *run) {
  const sim_fault_t *f = &run->faults[run->next_fault++];
  sim_world_t *w = run->w;
  sim_trace(w, ((uint64_t)f->kind << 32) ^ (uint64_t)f->order);
  if (run->verbose && f->what[0])
    fprintf(stderr, "[%9.3f s] %s: %s\n", (double)(sim_now(w) - run->t0) / SIM_S,
            kind_names[f->kind], f->what);
  sim_node_t *n = f->a >= 0 ? &run->nodes[f->a] : NULL;
  switch (f->kind) {
  case F_RESET:
    run->resets += (uint64_t)sim_net_reset(w, f->a, f->b, (unsigned)f->x);
    break;
  case F_CUT:
    run->resets += (uint64_t)sim_net_cut_at(w, f->a, f->b, f->x, f->y != 0, 100);
    break;
  case F_BLOCK:
    each_link(run, f->x, set_blocked, f->y);
    sim_net_changed(w);
    break;
  case F_REFUSE:
    each_link(run, f->x, set_refuse, f->y);
    break;
  case F_ADDR:
    sim_addr_set_down(w, f->a, f->b, f->y != 0);
    sim_net_changed(w);
    break;
  case F_LATENCY:
    sim_link(w, f->a, f->b)->lat_ns = f->x;
    break;
  case F_HOLD:
    run->holds += (uint64_t)sim_net_hold(w, f->a, f->b, (f->y & 256) != 0, sim_now(w) + f->x,
                                         (unsigned)(f->y & 255));
    break;
  case F_READER:
    n->reader = (int)f->x;
    break;
  case F_CRASH:
    if (f->y == 2)
      sim_node_leave(run, n);
    else
      sim_node_crash(run, n, f->y != 0);
    break;
  case F_RESTART:
    sim_host_up(w, f->a);
    sim_node_start(run, n);
    break;
  case F_JOIN:
    sim_node_start(run, n);
    break;
  case F_VIEW:
    apply_view(run, f);
    break;
  case F_LISTEN:
    if (!n->listen_addr[f->b]) {
      n->listen_addr[f->b] = true;
      if (n->alive) sim_node_listen(run, n, f->b);
    }
    break;
  case F_BURST:
    sim_app_burst(run, n, (int)f->x);
    break;
  case F_STRANGER:
    stranger(run, n, f->x, f->y);
    break;
  case F_HEAL:
    heal(run);
    break;
  }
}
