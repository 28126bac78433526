/*
 * sim_app.c — the simulated applications and the phases of one seed.
 *
 * Each node's application has two tasks on the world's clock: a sender
 * (a send to one member or a broadcast, at a seeded pace, sizes drawn from
 * the seed) and a receiver (non-blocking bftnet_recv_batch, or with
 * classes on odd seeds bftnet_recv_classes for class 0 and for the rest;
 * normal, slow or stopped). A run: the nodes start and connect; the fault schedule plays
 * until every fault has healed; traffic goes on a while; the applications
 * stop sending; every node's bftnet_flush must complete within a bound of
 * simulated time (liveness); the receivers drain; the books are checked;
 * the nodes stop gracefully and the library's heap must be back where it
 * was (no leak).
 */
#include <stdlib.h>
#include <string.h>

#include "node_internal.h"
#include "sim.h"
#include "sim_alloc.h"

#define PAYLOAD_MAX (200u * 1024u)

static sim_run_t *g_run;
static uint8_t *g_payload;

/* -------------------------------------------------------------- sending */

static size_t draw_size(sim_run_t *run) {
  unsigned r = (unsigned)sim_rng_below(&run->rng_app, 100);
  if (r < run->p.huge_pct) return sim_rng_range(&run->rng_app, 64 * 1024, PAYLOAD_MAX);
  if (r < run->p.huge_pct + run->p.big_pct) return sim_rng_range(&run->rng_app, 1024, 16 * 1024);
  return sim_rng_range(&run->rng_app, 24, 256);
}

static uint32_t others(const sim_run_t *run, const sim_node_t *n) {
  uint32_t all = (1u << run->p.nnodes) - 1;
  return n->applied_view & all & ~(1u << n->slot);
}

/* One message: to member j, or to every member (j < 0), in class cls
 * (with a key for keep-latest classes, 0: none). Without configured
 * classes, class 0 through bftnet_send and bftnet_broadcast. */
static void send_one(sim_run_t *run, sim_node_t *n, int j, size_t len, int cls, unsigned key) {
  uint32_t to = others(run, n);
  if (!to) return;
  uint64_t seq = sim_books_next_seq(run, n);
  sim_payload_fill(g_payload, len, n->slot, n->inc, cls, seq);
  bftnet_send_opts_t o = {.cls = (uint8_t)cls, .key = key};
  const bftnet_send_opts_t *opts = run->p.nclasses ? &o : NULL;
  uint32_t mask = 0;
  if (j < 0) {
    int rc = opts ? bftnet_send_ex(n->b, NULL, opts, g_payload, len)
                  : bftnet_broadcast(n->b, g_payload, len);
    if (rc < 0) sim_check_fail(run, "%s: bftnet_broadcast: %s", n->name, bftnet_err_name(rc));
    if (rc != sim_popcount(to))
      sim_check_fail(run, "%s: a broadcast queued for %d members; it has %d", n->name, rc,
                     sim_popcount(to));
    mask = to;
  } else {
    const char *id = run->nodes[j].name;
    int rc = opts ? bftnet_send_ex(n->b, id, opts, g_payload, len)
                  : bftnet_send(n->b, id, g_payload, len);
    if (rc < 0) sim_check_fail(run, "%s: bftnet_send(%s): %s", n->name, id, bftnet_err_name(rc));
    mask = 1u << j;
  }
  sim_books_sent(run, n, seq, mask, cls, key);
}

static int pick_member(sim_run_t *run, uint32_t to) {
  int k = (int)sim_rng_below(&run->rng_app, (uint64_t)sim_popcount(to));
  for (int j = 0; j < SIM_MAX_NODES; j++)
    if ((to & (1u << j)) && k-- == 0) return j;
  return -1;
}

static void send_tick(sim_world_t *w, void *a, uint64_t x) {
  (void)x;
  sim_node_t *n = a;
  sim_run_t *run = g_run;
  n->ev_send = NULL;
  if (!n->alive || run->quiesced) return;
  uint32_t to = others(run, n);
  if (to) {
    bool bcast = sim_rng_pct(&run->rng_app, run->p.bcast_pct);
    int j = bcast ? -1 : pick_member(run, to);
    size_t len = draw_size(run); /* not in send_one's arguments: see sim_faults.c, "stranger" */
    send_one(run, n, j, len, 0, 0);
  }
  uint64_t gap = sim_rng_range(&run->rng_app, 1, 2 * run->p.send_gap_ns);
  n->ev_send = sim_at(w, sim_now(w) + gap, send_tick, n, 0);
}

/* A key for a message of class c: keep-latest classes key some of their
 * messages with one of a few keys (a replica's latest status per topic). */
static unsigned draw_key(sim_run_t *run, int c) {
  const sim_cls_t *k = &run->p.cls[c];
  if (!k->nkeys || !sim_rng_pct(&run->rng_app, k->keyed_pct)) return 0;
  return (unsigned)sim_rng_range(&run->rng_app, 1, k->nkeys);
}

/* The sender of configured class x: its own pace, broadcasts and sizes. */
static void cls_tick(sim_world_t *w, void *a, uint64_t x) {
  sim_node_t *n = a;
  sim_run_t *run = g_run;
  int c = (int)x;
  const sim_cls_t *k = &run->p.cls[c];
  n->ev_cls[c] = NULL;
  if (!n->alive || run->quiesced) return;
  uint32_t to = others(run, n);
  if (to) {
    bool bcast = sim_rng_pct(&run->rng_app, k->bcast_pct);
    int j = bcast ? -1 : pick_member(run, to);
    size_t len = sim_classes_size(run, c);
    send_one(run, n, j, len, c, draw_key(run, c));
  }
  uint64_t gap = sim_rng_range(&run->rng_app, 1, 2 * k->send_gap_ns);
  n->ev_cls[c] = sim_at(w, sim_now(w) + gap, cls_tick, n, (uint64_t)c);
}

void sim_app_burst(sim_run_t *run, sim_node_t *n, int count) {
  if (!n->alive || run->quiesced) return;
  for (int i = 0; i < count; i++) {
    uint32_t to = others(run, n);
    if (!to) return;
    bool bcast = sim_rng_pct(&run->rng_app, run->p.bcast_pct);
    int j = bcast ? -1 : pick_member(run, to);
    size_t len = sim_rng_range(&run->rng_app, 24, 512);
    if (!run->p.nclasses) {
      send_one(run, n, j, len, 0, 0);
      continue;
    }
    int c = (int)sim_rng_below(&run->rng_app, (uint64_t)run->p.nclasses);
    send_one(run, n, j, len, c, draw_key(run, c));
  }
}

/* ------------------------------------------------------------ receiving */

/* Takes up to budget messages of the classes in mask (0: all, with
 * bftnet_recv_batch; else bftnet_recv_classes). */
static int recv_mask(sim_run_t *run, sim_node_t *n, uint32_t mask, int budget) {
  bftnet_msg_t msgs[64];
  int got = 0;
  while (budget > 0) {
    int max = budget < 64 ? budget : 64;
    int k = mask ? bftnet_recv_classes(n->b, mask, msgs, max, 0)
                 : bftnet_recv_batch(n->b, msgs, max, 0);
    if (k == BFTNET_EAGAIN) break;
    if (k < 0) sim_check_fail(run, "%s: bftnet_recv: %s", n->name, bftnet_err_name(k));
    for (int i = 0; i < k; i++) {
      sim_books_received(run, n, &msgs[i]);
      bftnet_msg_release(&msgs[i]);
    }
    got += k;
    budget -= k;
  }
  return got;
}

/* With two or more classes, odd seeds read as a replica with a thread for
 * its votes would: class 0 first (bftnet_recv_classes), then the others;
 * each such reader clears the node's fd when it finds nothing and must set
 * it again for the other's messages (the fd check in sim_check.c). */
static int recv_some(sim_run_t *run, sim_node_t *n, int budget) {
  if (sim_ncls(&run->p) < 2 || !(run->seed & 1)) return recv_mask(run, n, 0, budget);
  uint32_t all = (1u << sim_ncls(&run->p)) - 1;
  int got = recv_mask(run, n, 1u, budget);
  return got + recv_mask(run, n, all & ~1u, budget - got);
}

int sim_app_drain(sim_run_t *run, sim_node_t *n) {
  return n->alive ? recv_some(run, n, 1 << 30) : 0;
}

static void recv_tick(sim_world_t *w, void *a, uint64_t x) {
  (void)x;
  sim_node_t *n = a;
  sim_run_t *run = g_run;
  n->ev_recv = NULL;
  if (!n->alive) return;
  uint64_t gap;
  if (run->quiesced) { /* the drain: read everything, often */
    recv_some(run, n, 1 << 30);
    gap = SIM_MS;
  } else if (n->reader == READ_STOPPED) {
    gap = 100 * SIM_MS;
  } else if (n->reader == READ_SLOW) {
    recv_some(run, n, (int)sim_rng_range(&run->rng_app, 1, 4));
    gap = sim_rng_range(&run->rng_app, 100, 500) * SIM_MS;
  } else {
    recv_some(run, n, (int)run->p.recv_batch);
    gap = sim_rng_range(&run->rng_app, 1, 2 * run->p.recv_gap_ns);
  }
  sim_books_check_bounds(run, n);
  n->ev_recv = sim_at(w, sim_now(w) + gap, recv_tick, n, 0);
}

/* One sender (class 0 as bftnet without classes), or one per configured
 * class; and the reader. */
void sim_app_start(sim_run_t *run, sim_node_t *n) {
  sim_world_t *w = run->w;
  n->reader = READ_NORMAL;
  if (!run->p.nclasses)
    n->ev_send = sim_at(w, sim_now(w) + sim_rng_range(&run->rng_app, 0, run->p.send_gap_ns),
                        send_tick, n, 0);
  for (int c = 0; c < run->p.nclasses; c++)
    n->ev_cls[c] =
        sim_at(w, sim_now(w) + sim_rng_range(&run->rng_app, 0, run->p.cls[c].send_gap_ns), cls_tick,
               n, (uint64_t)c);
  n->ev_recv =
      sim_at(w, sim_now(w) + sim_rng_range(&run->rng_app, 0, run->p.recv_gap_ns), recv_tick, n, 0);
}

void sim_app_stop(sim_run_t *run, sim_node_t *n) {
  sim_cancel(run->w, n->ev_send);
  sim_cancel(run->w, n->ev_recv);
  n->ev_send = n->ev_recv = NULL;
  for (int c = 0; c < SIM_MAX_CLS; c++) {
    sim_cancel(run->w, n->ev_cls[c]);
    n->ev_cls[c] = NULL;
  }
}

/* -------------------------------------------------------------- a seed */

static void world_failed(void *ud, const char *what) {
  sim_check_fail(ud, "%s", what);
}

/* The heap the library may use with this configuration, all nodes
 * together: per member a full ring of the largest payloads, the
 * retransmit ring, the inbound queue and one window more, a tentative
 * buffer and a partial message, and a connection's buffers; per node a
 * fixed part (the buffer pool's cache, tables). With classes, the rings,
 * inbound queues and windows of each class (byte caps bound the rings and
 * queues of large messages). Loose, but a leak or an unbounded queue
 * passes it within a run. */
static int64_t heap_bound(const sim_params_t *p) {
  int64_t msg = PAYLOAD_MAX + 1024, win = 2 * (int64_t)p->yamux_window;
  int64_t per_peer = (int64_t)p->ring_capacity * 2 * 600 + 16 * msg + 2 * win +
                     (int64_t)p->inbound_max_msgs * 1024 + win + 1024 * 1024 + 2 * msg +
                     24 * 1024 * 1024;
  if (p->nclasses) {
    int64_t cwin = 2 * (int64_t)(p->class_window ? p->class_window : p->yamux_window);
    per_peer = 16 * msg + 1024 * 1024 + 2 * msg + 24 * 1024 * 1024;
    for (int c = 0; c < p->nclasses; c++) {
      const bftnet_class_t *k = &p->cls[c].c;
      int64_t big = p->cls[c].size_kind == SIM_SIZE_BLOCK ? 64 * 1024 : 16 * 1024;
      int64_t ring = (int64_t)k->ring_capacity * 2 * (big + 600);
      int64_t ring_cap = 3 * ((int64_t)k->ring_max_bytes + big) + (int64_t)k->ring_capacity * 1200;
      int64_t in = (int64_t)k->inbound_max_msgs * (big + 1024);
      int64_t in_cap =
          (int64_t)k->inbound_max_bytes + big + cwin + (int64_t)k->inbound_max_msgs * 1024;
      per_peer += (ring < ring_cap ? ring : ring_cap) + (in < in_cap ? in : in_cap) + 3 * cwin;
    }
  }
  int64_t per_node = 8 * 1024 * 1024 + (p->nnodes - 1) * per_peer;
  return p->nnodes * per_node;
}

static void start_world(sim_run_t *run) {
  const sim_params_t *p = &run->p;
  sim_world_cfg_t wc = {.seed = run->seed,
                        .nhosts = p->nnodes,
                        .time_limit = SIM_S + p->t_faults + p->t_post + 600 * SIM_S,
                        .kernel_buf = p->kernel_buf,
                        .defer_batch = p->defer_batch,
                        .coalesce_pct = p->coalesce_pct,
                        .on_fail = world_failed,
                        .fail_ud = run};
  run->w = sim_world_new(&wc);
  run->t0 = sim_now(run->w);
}

static void phase(sim_run_t *run, const char *name) {
  snprintf(run->phase, sizeof run->phase, "%s", name);
  if (run->verbose)
    fprintf(stderr, "[%9.3f s] %s\n", (double)(sim_now(run->w) - run->t0) / SIM_S, name);
}

/* After every fault healed: everything queued is delivered, and every
 * node's flush completes, within a bound of simulated time. */
static void drain(sim_run_t *run) {
  const sim_params_t *p = &run->p;
  uint32_t bound_ms = p->detach_timeout_ms + 3 * p->ping_timeout_ms + 2 * p->backoff_max_ms +
                      p->handshake_timeout_ms + 15000;
  run->quiesced = true;
  for (int i = 0; i < p->nnodes; i++) {
    sim_node_t *n = &run->nodes[i];
    if (!n->alive) continue;
    uint64_t t = sim_now(run->w);
    int rc = bftnet_flush(n->b, (int)bound_ms);
    if (rc != 0)
      sim_check_fail(run,
                     "%s: bftnet_flush after the last fault healed: %s after %.1f s of "
                     "simulated time (liveness)",
                     n->name, bftnet_err_name(rc), (double)(sim_now(run->w) - t) / SIM_S);
  }
  sim_run_until(run->w, sim_now(run->w) + 200 * SIM_MS);
  for (int i = 0; i < p->nnodes; i++)
    sim_app_drain(run, &run->nodes[i]);
}

void sim_run_seed(uint64_t seed, int defect, bool verbose, sim_result_t *r) {
  sim_run_t *run = sim_calloc(1, sizeof *run);
  run->seed = seed;
  run->defect = defect;
  run->verbose = verbose;
  run->verbose_events = verbose && getenv("BFTNET_SIM_EVENTS");
  g_run = run;
  if (!g_payload) g_payload = sim_malloc(PAYLOAD_MAX);
  sim_rng_seed(&run->rng_cfg, seed, 10);
  sim_rng_seed(&run->rng_app, seed, 11);
  sim_rng_seed(&run->rng_fault, seed, 12);
  sim_rng_seed(&run->rng_cls, seed, 13);
  sim_faults_draw(run); /* the parameters and the schedule */
  sim_classes_draw(run);
  start_world(run);
  sim_faults_setup_links(run);
  sim_books_new(run);
  sim_nodes_init(run);
  if (verbose) {
    sim_params_print(run, stderr);
    sim_faults_print(run, stderr);
  }
  run->lib_base = sim_lib_live_bytes();
  run->lib_peak_bound = heap_bound(&run->p);
  sim_lib_peak_reset();

  phase(run, "start");
  for (int i = 0; i < run->p.nnodes; i++)
    if (i != run->p.joiner) sim_node_start(run, &run->nodes[i]);
  phase(run, "faults");
  for (uint64_t t; (t = sim_faults_next_at(run)) != UINT64_MAX;) {
    sim_run_until(run->w, t);
    sim_faults_apply_next(run);
  }
  phase(run, "healed");
  sim_run_until(run->w, run->t0 + run->p.t_faults + run->p.t_post);
  phase(run, "drain");
  drain(run);
  phase(run, "check");
  sim_books_final(run);
  phase(run, "stop");
  for (int i = 0; i < run->p.nnodes; i++)
    sim_node_stop(run, &run->nodes[i]);
  if (sim_lib_live_bytes() != run->lib_base)
    sim_check_fail(run,
                   "the library's heap holds %lld bytes more after every node was freed (a "
                   "leak)",
                   (long long)(sim_lib_live_bytes() - run->lib_base));

  *r = (sim_result_t){.seed = seed,
                      .hash = sim_trace_hash(run->w),
                      .sim_ns = sim_now(run->w) - run->t0,
                      .events = sim_events_run(run->w),
                      .msgs_sent = run->msgs_sent,
                      .msgs_delivered = run->msgs_delivered,
                      .lib_peak = sim_lib_peak_bytes() - run->lib_base,
                      .nfaults = run->nfaults,
                      .nnodes = run->p.nnodes,
                      .dropped = run->dropped,
                      .aborted = run->aborted,
                      .crashes = run->crashes,
                      .holds = run->holds,
                      .leaves = run->leaves,
                      .superseded = run->superseded,
                      .nclasses = run->p.nclasses};
  memcpy(r->cov, run->cov, sizeof r->cov);
  sim_world_free(run->w);
  sim_faults_free(run);
  sim_books_free(run);
  sim_nodes_free(run);
  g_run = NULL;
  sim_free(run);
}

/* What the library allocates once per process or thread and keeps (its
 * table of live nodes, a thread's cache of epoch records): allocated here,
 * before any seed, so that a seed's heap ends where it began. */
void sim_warmup(void) {
  sim_world_cfg_t wc = {.seed = 0, .nhosts = 2, .time_limit = UINT64_MAX};
  sim_world_t *w = sim_world_new(&wc);
  sim_tr_t *t[2];
  bftnet_key_t *key[2];
  bftnet_t *b[2];
  for (int i = 0; i < 2; i++) {
    bftnet_config_t cfg;
    bftnet_config_init(&cfg);
    t[i] = sim_tr_new(w, i);
    if (bftnet_key_generate(&key[i]) != 0) abort();
    cfg.key = key[i];
    cfg.log_level = 0;
    if (node__new_with_transport(&b[i], &cfg, sim_tr_base(t[i])) != 0) abort();
  }
  char addr[BFTNET_ADDR_MAX];
  sim_addr_str(0, 0, SIM_PORT, addr, sizeof addr);
  uint8_t one = 1;
  /* A handshake (the cipher's per-thread state), a send (the epoch cache). */
  if (bftnet_listen(b[0], addr, NULL, 0) != 0 || bftnet_dial(b[1], addr, 5000, NULL, 0) != 0 ||
      bftnet_send(b[1], "nobody", &one, 1) != BFTNET_ENOTFOUND)
    abort();
  for (int i = 0; i < 2; i++) {
    bftnet_free(b[i]);
    sim_tr_free(t[i]);
    bftnet_key_free(key[i]);
  }
  sim_world_free(w);
}

/* For the failure report (sim_main.c). */
sim_run_t *sim_current_run(void) {
  return g_run;
}
