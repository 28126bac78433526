/*
 * sim_node.c — the nodes of a run: each slot's identity (an Ed25519 key
 * drawn from the seed, loaded through bftnet_key_from_protobuf), its
 * incarnations (a node object on its own simulated transport, made with
 * node__new_with_transport: no loop thread, its calls turn the world),
 * crash and restart, and the membership its application sets.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "node_internal.h"
#include "sim.h"
#include "sim_alloc.h"

int sim_popcount(uint32_t v) {
  return __builtin_popcount(v);
}

/* One key per slot and seed: libp2p's PrivateKey protobuf (Ed25519). */
static bftnet_key_t *key_from_seed(sim_rng_t *r) {
  uint8_t seed[32], pk[32], sk[64], pb[4 + 64] = {0x08, 0x01, 0x12, 0x40};
  for (int i = 0; i < 32; i += 8) {
    uint64_t v = sim_rng_next(r);
    memcpy(seed + i, &v, 8);
  }
  crypto_sign_seed_keypair(pk, sk, seed);
  memcpy(pb + 4, seed, 32);
  memcpy(pb + 36, pk, 32);
  bftnet_key_t *key = NULL;
  if (bftnet_key_from_protobuf(pb, sizeof pb, &key) != 0) abort();
  sodium_memzero(sk, sizeof sk);
  return key;
}

void sim_nodes_init(sim_run_t *run) {
  uint32_t all = 0;
  for (int i = 0; i < run->p.nnodes; i++)
    if (i != run->p.joiner) all |= 1u << i;
  for (int i = 0; i < run->p.nnodes; i++) {
    sim_node_t *n = &run->nodes[i];
    memset(n, 0, sizeof *n);
    n->slot = i;
    snprintf(n->name, sizeof n->name, "n%d", i);
    n->key = key_from_seed(&run->rng_cfg);
    if (bftnet_key_peer_id(n->key, n->peer_id, sizeof n->peer_id) < 0) abort();
    n->listen_addr[0] = true;
    n->listen_addr[1] = run->p.two_addrs;
    n->view = i == run->p.joiner ? all | (1u << i) : all;
    for (int j = 0; j < SIM_MAX_NODES; j++)
      n->addrv[j] = run->p.two_addrs ? 1 : 0;
  }
}

void sim_nodes_free(sim_run_t *run) {
  for (int i = 0; i < run->p.nnodes; i++) {
    bftnet_key_free(run->nodes[i].key);
    run->nodes[i].key = NULL;
  }
}

/* ------------------------------------------------------------- events */

static const char *const ev_names[] = {
    "?",         "CONNECTED",   "DISCONNECTED",  "MEMBER_ADDED", "MEMBER_REMOVED",
    "MEMBER_UP", "MEMBER_DOWN", "MIGRATED",      "DETACHED",     "RESUMED",
    "ABORTED",   "DENIED",      "PEER_RESTARTED"};

static void on_event(const bftnet_event_t *ev, void *user) {
  sim_node_t *n = user;
  sim_run_t *run = sim_current_run();
  if (run && run->verbose_events)
    fprintf(stderr,
            "[%9.3f s] %s#%d event %s %s class %u out=%d remote=%s prev=%s reason=%s abort=%s "
            "lost=%llu id=%llu\n",
            (double)(sim_now(run->w) - run->t0) / SIM_S, n->name, n->inc,
            (unsigned)ev->type < 13 ? ev_names[ev->type] : "?", ev->node_id, ev->cls, ev->outbound,
            ev->remote_addr, ev->prev_addr ? ev->prev_addr : "", bftnet_reason_str(ev->reason),
            ev->mig_abort ? ev->mig_abort : "", (unsigned long long)ev->lost,
            (unsigned long long)ev->stream_id);
  if (ev->type == BFTNET_EV_ABORTED && ev->outbound && ev->node_id[0] == 'n') {
    int j = atoi(ev->node_id + 1);
    if (j >= 0 && j < SIM_MAX_NODES && ev->cls < SIM_MAX_CLS)
      n->ev_aborted_lost[j][ev->cls] += ev->lost;
  }
}

/* ------------------------------------------------------------ lifetime */

void sim_node_listen(sim_run_t *run, sim_node_t *n, int addr) {
  char a[BFTNET_ADDR_MAX];
  sim_addr_str(n->slot, addr, SIM_PORT, a, sizeof a);
  int rc = bftnet_listen(n->b, a, NULL, 0);
  if (rc < 0) sim_check_fail(run, "%s: bftnet_listen(%s): %s", n->name, a, bftnet_err_name(rc));
}

static void node_config(const sim_run_t *run, sim_node_t *n, bftnet_config_t *cfg) {
  const sim_params_t *p = &run->p;
  bftnet_config_init(cfg);
  cfg->key = n->key;
  const char *lv = getenv("BFTNET_SIM_LOG"); /* the library's own log, for a replay */
  cfg->log_level = lv ? atoi(lv) : 0;
  cfg->ping_interval_ms = p->ping_interval_ms;
  cfg->ping_timeout_ms = p->ping_timeout_ms;
  cfg->handshake_timeout_ms = p->handshake_timeout_ms;
  cfg->yamux_window = p->yamux_window;
  cfg->ring_capacity = p->ring_capacity;
  cfg->max_message_size = 1024 * 1024;
  cfg->inbound_max_msgs = p->inbound_max_msgs;
  cfg->inbound_max_bytes = p->inbound_max_bytes;
  cfg->tentative_max_msgs = p->tentative_max_msgs;
  cfg->dial_backoff_min_ms = p->backoff_min_ms;
  cfg->dial_backoff_max_ms = p->backoff_max_ms;
  cfg->detach_timeout_ms = p->detach_timeout_ms;
  cfg->failback_ms = p->failback_ms;
  cfg->on_event = on_event;
  cfg->user = n;
  sim_classes_config(run, cfg);
}

void sim_node_start(sim_run_t *run, sim_node_t *n) {
  if (n->alive) return;
  if (++n->inc >= SIM_MAX_INC) sim_check_fail(run, "%s: too many incarnations", n->name);
  n->tr = sim_tr_new(run->w, n->slot);
  bftnet_config_t cfg;
  node_config(run, n, &cfg);
  int rc = node__new_with_transport(&n->b, &cfg, sim_tr_base(n->tr));
  if (rc < 0) sim_check_fail(run, "%s: node__new_with_transport: %s", n->name, bftnet_err_name(rc));
  n->alive = true;
  /* Exported, so that the fd must be readable whenever a message waits: a
   * message queued without it would leave an application blocked in
   * bftnet_recv asleep beside it (sim_books_check_bounds checks it). */
  n->rfd = bftnet_recv_fd(n->b);
  if (n->rfd < 0) sim_check_fail(run, "%s: bftnet_recv_fd: %s", n->name, bftnet_err_name(n->rfd));
  n->seq = 0;
  n->applied_view = 0;
  memset(n->ev_aborted_lost, 0, sizeof n->ev_aborted_lost);
  n->strangers = 0;
  for (int a = 0; a < SIM_ADDRS; a++)
    if (n->listen_addr[a]) sim_node_listen(run, n, a);
  sim_node_apply_view(run, n);
  sim_app_start(run, n);
}

void sim_node_crash(sim_run_t *run, sim_node_t *n, bool machine) {
  if (!n->alive) return;
  sim_books_check_violations(run, n);
  sim_books_crash(run, n);
  sim_app_stop(run, n);
  n->alive = false;
  sim_tr_crash(n->tr, machine);
  bftnet_free(n->b); /* its teardown reaches nobody: its transport is dead */
  sim_tr_free(n->tr);
  n->b = NULL;
  n->tr = NULL;
  run->crashes++;
}

void sim_node_leave(sim_run_t *run, sim_node_t *n) {
  if (!n->alive) return;
  sim_books_check_violations(run, n);
  sim_books_crash(run, n);
  sim_node_stop(run, n);
  run->leaves++;
}

void sim_node_stop(sim_run_t *run, sim_node_t *n) {
  if (!n->alive) return;
  sim_app_stop(run, n);
  n->alive = false;
  int rc = bftnet_stop(n->b); /* what bftnet_free does first, with its error seen */
  if (rc < 0) sim_check_fail(run, "%s: bftnet_stop: %s", n->name, bftnet_err_name(rc));
  bftnet_free(n->b); /* graceful: the world turns, the others see it go */
  sim_tr_free(n->tr);
  n->b = NULL;
  n->tr = NULL;
}

/* ---------------------------------------------------------- membership */

void sim_node_apply_view(sim_run_t *run, sim_node_t *n) {
  if (!n->alive) return;
  char addrs[SIM_MAX_NODES][2][BFTNET_ADDR_MAX + BFTNET_PEER_ID_MAX];
  const char *ptrs[SIM_MAX_NODES][2];
  bftnet_member_t ms[SIM_MAX_NODES];
  size_t k = 0;
  for (int j = 0; j < run->p.nnodes; j++) {
    if (!(n->view & (1u << j))) continue;
    const sim_node_t *m = &run->nodes[j];
    static const int order[3][2] = {{0, -1}, {0, 1}, {1, 0}};
    int v = n->addrv[j], na = 0;
    for (int i = 0; i < 2; i++) {
      int a = order[v][i];
      if (a < 0) continue;
      char base[BFTNET_ADDR_MAX];
      sim_addr_str(j, a, SIM_PORT, base, sizeof base);
      snprintf(addrs[j][na], sizeof addrs[j][na], "%s/p2p/%s", base, m->peer_id);
      ptrs[j][na] = addrs[j][na];
      na++;
    }
    ms[k++] = (bftnet_member_t){.node_id = m->name, .addrs = ptrs[j], .naddrs = (size_t)na};
  }
  uint32_t removed = n->applied_view & ~n->view & ~(1u << n->slot);
  if (removed) sim_books_removal(run, n, removed);
  char err[256] = "";
  int rc = bftnet_connect(n->b, ms, k, err, sizeof err);
  if (rc < 0) sim_check_fail(run, "%s: bftnet_connect: %s (%s)", n->name, bftnet_err_name(rc), err);
  n->applied_view = n->view;
}
