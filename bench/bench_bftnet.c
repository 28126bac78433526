/*
 * bench_bftnet.c — bftnet's side of bftnet-bench, through the public API
 * only. Every process runs its own bftnet_t (its own loop thread), listens
 * on /ip4/127.0.0.1/tcp/0 and joins a membership of node IDs "r1".."rN"
 * (node i is "r<i+1>"); cfg.log_level = 1.
 *
 * Senders are not blocked by bftnet (bftnet_send never blocks): unless
 * --flood, a sender polls the ring depth (bftnet_peer_stats) every 256
 * sends and naps 20 us while the ring is more than half full — the
 * non-blocking API's counterpart of ZeroMQ blocking at its high-water mark
 * and of a blocking write(2). Drops (ring overflow) are counted either way,
 * and the figures are messages delivered to bftnet_recv_batch.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bftnet_bench.h"

#define RECV_BATCH 256
#define SEND_BURST 256

typedef struct bnode {
  bftnet_t *net;
  bftnet_key_t *key;
  char addr[BFTNET_ADDR_MAX];
  uint32_t ring_capacity;
} bnode_t;

static void node_id(int i, char *buf, size_t cap) {
  snprintf(buf, cap, "r%d", (i + 1) & 0xffff);
}

typedef void (*on_message_fn)(const char *from, const uint8_t *data, size_t len, void *user);

static void node_start_cb(bb_child_t *ch, bnode_t *n, int node, const bb_job_t *job,
                          uint32_t ring_capacity, on_message_fn on_message, void *user) {
  bftnet_config_t cfg;
  bftnet_config_init(&cfg);
  cfg.on_message = on_message;
  cfg.user = user;
  int rc = bftnet_key_generate(&n->key);
  if (rc) bb_fail(ch->idx, "bftnet_key_generate: %s", bftnet_strerror(rc));
  cfg.key = n->key;
  cfg.log_level = 1;
  cfg.ring_capacity = ring_capacity;
  cfg.inbound_max_msgs = 1u << 16;
  cfg.disable_migration = job->disable_migration;
  cfg.busy_poll_us = job->busy_poll_us;
  n->ring_capacity = ring_capacity;
  if ((rc = bftnet_new(&n->net, &cfg)) != 0)
    bb_fail(ch->idx, "bftnet_new: %s", bftnet_strerror(rc));
  if ((rc = bftnet_listen(n->net, "/ip4/127.0.0.1/tcp/0", n->addr, sizeof n->addr)) != 0)
    bb_fail(ch->idx, "bftnet_listen: %s", bftnet_strerror(rc));
  if (node >= 0) bb_publish_addr(node, n->addr);
}

static void node_start(bb_child_t *ch, bnode_t *n, int node, const bb_job_t *job,
                       uint32_t ring_capacity) {
  node_start_cb(ch, n, node, job, ring_capacity, NULL, NULL);
}

/* bftnet_connect with nodes 0..nnodes-1 at their published addresses. */
static void node_join(bb_child_t *ch, bnode_t *n, int nnodes) {
  const char *addrs[BB_MAX_NODES];
  char ids[BB_MAX_NODES][16];
  bftnet_member_t m[BB_MAX_NODES];
  for (int i = 0; i < nnodes; i++) {
    addrs[i] = bb_wait_addr(ch, i);
    node_id(i, ids[i], sizeof ids[i]);
    m[i] = (bftnet_member_t){ids[i], &addrs[i], 1};
  }
  char err[256] = "";
  int rc = bftnet_connect(n->net, m, (size_t)nnodes, err, sizeof err);
  if (rc) bb_fail(ch->idx, "bftnet_connect: %s (%s)", bftnet_strerror(rc), err);
}

/* Waits until the outbound stream to every other node is up. */
static void node_wait_up(bb_child_t *ch, bnode_t *n, int self, int nnodes) {
  for (int i = 0; i < nnodes; i++) {
    if (i == self) continue;
    char id[16];
    node_id(i, id, sizeof id);
    for (;;) {
      bftnet_peer_stats_t st;
      if (bftnet_peer_stats(n->net, id, &st) == 0 && st.connected) break;
      if (bb_past_deadline(ch)) bb_fail(ch->idx, "the stream to %s never came up", id);
      bb_sleep(0.001);
    }
  }
}

/* node_start, node_join and node_wait_up: node `node` of nodes 0..nnodes-1,
 * its streams to all the others up. */
static void node_up(bb_child_t *ch, bnode_t *n, int node, const bb_job_t *job,
                    uint32_t ring_capacity, int nnodes) {
  node_start(ch, n, node, job, ring_capacity);
  node_join(ch, n, nnodes);
  node_wait_up(ch, n, node, nnodes);
}

static void node_free(bnode_t *n) {
  bftnet_free(n->net);
  bftnet_key_free(n->key);
  n->net = NULL;
  n->key = NULL;
}

static uint32_t ring_depth(bnode_t *n, const char *id) {
  bftnet_peer_stats_t st;
  return bftnet_peer_stats(n->net, id, &st) == 0 ? st.ring_depth : 0;
}

/* Deepest ring among nodes [0, nnodes) but self. */
static uint32_t max_depth(bnode_t *n, int self, int nnodes) {
  uint32_t d = 0;
  for (int i = 0; i < nnodes; i++) {
    if (i == self) continue;
    char id[16];
    node_id(i, id, sizeof id);
    uint32_t x = ring_depth(n, id);
    if (x > d) d = x;
  }
  return d;
}

static uint64_t total_drops(bnode_t *n, int self, int nnodes) {
  uint64_t d = 0;
  for (int i = 0; i < nnodes; i++) {
    if (i == self) continue;
    char id[16];
    bftnet_peer_stats_t st;
    node_id(i, id, sizeof id);
    if (bftnet_peer_stats(n->net, id, &st) == 0) d += st.dropped_overflow;
  }
  return d;
}

/* ---------------------------------------------------- pair throughput */

static void sender_refresh(bb_child_t *ch, bb_counts_t *c) {
  bftnet_peer_stats_t st;
  if (bftnet_peer_stats(((bnode_t *)ch->ud)->net, "r2", &st) == 0) c->drops = st.dropped_overflow;
}

void bb_bftnet_sender(int idx, const bb_job_t *job) {
  bb_child_t ch;
  bnode_t n;
  bb_child_init(&ch, idx, job);
  node_up(&ch, &n, 0, job, job->ring_capacity, 2);
  ch.ud = &n;
  ch.refresh = sender_refresh;
  uint8_t *msg = bb_msg_alloc(idx, job);
  int ph = bb_ready_go(&ch);
  uint64_t seq = 0;
  while (ph < BB_PH_STOP) {
    if (!job->flood && ring_depth(&n, "r2") > n.ring_capacity / 2) {
      bb_sleep(20e-6);
      ph = bb_tick(&ch);
      continue;
    }
    for (int k = 0; k < SEND_BURST; k++) {
      bb_put_seq(msg, job->size, ++seq);
      int rc = bftnet_send(n.net, "r2", msg, job->size);
      if (rc) bb_fail(idx, "bftnet_send: %s", bftnet_strerror(rc));
    }
    ch.c.enq = ch.c.msgs = seq;
    ch.c.bytes = seq * job->size;
    ph = bb_tick(&ch);
  }
  free(msg);
  node_free(&n);
}

void bb_bftnet_receiver(int idx, const bb_job_t *job) {
  bb_child_t ch;
  bnode_t n;
  bb_child_init(&ch, idx, job);
  node_start(&ch, &n, 1, job, job->ring_capacity);
  node_join(&ch, &n, 2);
  bb_ready(idx);
  bftnet_msg_t msgs[RECV_BATCH];
  uint64_t last = 0;
  while (bb_tick(&ch) < BB_PH_STOP) {
    int r = bftnet_recv_batch(n.net, msgs, RECV_BATCH, 5);
    if (r == BFTNET_ETIMEDOUT || r == BFTNET_EAGAIN) continue;
    if (r < 0) bb_fail(idx, "bftnet_recv_batch: %s", bftnet_strerror(r));
    for (int i = 0; i < r; i++) {
      bb_count_msg(&ch.c, msgs[i].data, msgs[i].len, &last);
      bftnet_msg_release(&msgs[i]);
    }
  }
  node_free(&n);
}

static void cb_count(const char *from, const uint8_t *data, size_t len, void *user) {
  (void)from;
  bb_child_t *ch = user;
  static uint64_t last; /* the loop thread's only */
  bb_count_msg(&ch->c, data, len, &last);
}

void bb_bftnet_cb_receiver(int idx, const bb_job_t *job) {
  bb_child_t ch;
  bnode_t n;
  bb_child_init(&ch, idx, job);
  /* The counts are the loop thread's; this thread snapshots them at phase
   * changes (within a millisecond: 0.1 % of a window). */
  node_start_cb(&ch, &n, 1, job, job->ring_capacity, cb_count, &ch);
  node_join(&ch, &n, 2);
  bb_ready(idx);
  while (bb_tick(&ch) < BB_PH_STOP)
    bb_sleep(0.001);
  node_free(&n);
}

/* ---------------------------------------------------------- round trip */

/* bb_rtt_fn: one round trip to r2 (ud: the bnode_t). */
static bool ping_once(bb_child_t *ch, void *ud, uint32_t i, const uint8_t *out, size_t size,
                      uint64_t *ns) {
  bnode_t *n = ud;
  uint64_t t0 = bb_now_ns();
  int rc = bftnet_send(n->net, "r2", out, size);
  if (rc) bb_fail(ch->idx, "bftnet_send: %s", bftnet_strerror(rc));
  bftnet_msg_t m;
  rc = bftnet_recv(n->net, &m, 2000);
  if (rc) bb_fail(ch->idx, "bftnet_recv after %u round trips: %s", i, bftnet_strerror(rc));
  *ns = bb_now_ns() - t0;
  bool same = m.len == size && memcmp(m.data, out, size) == 0;
  bftnet_msg_release(&m);
  return same;
}

void bb_bftnet_pinger(int idx, const bb_job_t *job) {
  bb_child_t ch;
  bnode_t n;
  bb_child_init(&ch, idx, job);
  node_up(&ch, &n, 0, job, 4096, 2);
  bb_rtt_pinger(&ch, job, ping_once, &n, true);
  node_free(&n);
}

void bb_bftnet_echo(int idx, const bb_job_t *job) {
  bb_child_t ch;
  bnode_t n;
  bb_child_init(&ch, idx, job);
  node_up(&ch, &n, 1, job, 4096, 2);
  bb_ready(idx);
  bftnet_msg_t msgs[RECV_BATCH];
  while (bb_tick(&ch) < BB_PH_STOP) {
    int r = bftnet_recv_batch(n.net, msgs, RECV_BATCH, 5);
    if (r == BFTNET_ETIMEDOUT || r == BFTNET_EAGAIN) continue;
    if (r < 0) bb_fail(idx, "bftnet_recv_batch: %s", bftnet_strerror(r));
    for (int i = 0; i < r; i++) {
      int rc = bftnet_send(n.net, msgs[i].from, msgs[i].data, msgs[i].len);
      if (rc) bb_fail(idx, "bftnet_send (echo): %s", bftnet_strerror(rc));
      bftnet_msg_release(&msgs[i]);
    }
  }
  node_free(&n);
}

/* Event-driven round trips: the protocol runs on bftnet's loop thread, as
 * a consensus engine driven by on_message does; no application thread is
 * woken on the way. The pinger's callback records the round trip and sends
 * the next ping; the main thread only starts the first and waits. */
typedef struct cbping {
  bnode_t n;
  const bb_job_t *job;
  uint8_t *out;
  uint32_t i, total;
  uint64_t t0;
  double t_end;
  _Atomic int done;
  _Atomic uint64_t bad;
  char err[120];
} cbping_t;

static void cb_ping_send(cbping_t *p) {
  bb_put_seq(p->out, p->job->size, p->i + 1);
  p->t0 = bb_now_ns();
  int rc = bftnet_send(p->n.net, "r2", p->out, p->job->size);
  if (rc) {
    snprintf(p->err, sizeof p->err, "bftnet_send: %s", bftnet_strerror(rc));
    atomic_store(&p->done, -1);
  }
}

static void cb_pong(const char *from, const uint8_t *data, size_t len, void *user) {
  (void)from;
  cbping_t *p = user;
  uint64_t ns = bb_now_ns() - p->t0;
  if (atomic_load(&p->done)) return;
  if (len != p->job->size || memcmp(data, p->out, len) != 0) atomic_fetch_add(&p->bad, 1);
  bb_rtt_record(p->job, p->i, ns);
  p->i++;
  if (p->i >= p->total || (p->i >= p->job->rtt_warm && bb_now() > p->t_end)) {
    atomic_store(&p->done, 1);
    return;
  }
  cb_ping_send(p);
}

void bb_bftnet_cb_pinger(int idx, const bb_job_t *job) {
  bb_child_t ch;
  cbping_t *p = calloc(1, sizeof *p);
  if (!p) bb_fail(idx, "out of memory");
  bb_child_init(&ch, idx, job);
  p->job = job;
  p->out = bb_msg_alloc(idx, job);
  p->total = job->rtt_warm + job->rtt_samples;
  node_start_cb(&ch, &p->n, 0, job, 4096, cb_pong, p);
  node_join(&ch, &p->n, 2);
  node_wait_up(&ch, &p->n, 0, 2);
  bb_ready_go(&ch);
  p->t_end = bb_now() + job->window;
  cb_ping_send(p); /* from here on the loop thread drives it */
  while (!atomic_load(&p->done)) {
    if (bb_past_deadline(&ch)) bb_fail(idx, "deadline after %u round trips", p->i);
    bb_sleep(0.001);
  }
  if (atomic_load(&p->done) < 0) bb_fail(idx, "%s", p->err);
  bb_shm->side[idx].res[BB_RES_RTT_BAD] = (double)atomic_load(&p->bad);
  bb_done(idx);
  bb_wait_phase(&ch, BB_PH_STOP);
  node_free(&p->n);
  free(p->out);
  free(p);
}

static void cb_echo(const char *from, const uint8_t *data, size_t len, void *user) {
  bnode_t *n = user;
  (void)!bftnet_send(n->net, from, data, len); /* a failure shows as the pinger's deadline */
}

void bb_bftnet_cb_echo(int idx, const bb_job_t *job) {
  bb_child_t ch;
  bnode_t n;
  bb_child_init(&ch, idx, job);
  node_start_cb(&ch, &n, 1, job, 4096, cb_echo, &n);
  node_join(&ch, &n, 2);
  node_wait_up(&ch, &n, 1, 2);
  bb_ready(idx);
  while (bb_tick(&ch) < BB_PH_STOP)
    bb_sleep(0.005);
  node_free(&n);
}

/* ----------------------------------------------------------- broadcast */

/* One measured run of `calls` (bounded by job->window) bftnet_send to r2
 * (bcast = 0) or bftnet_broadcast (bcast = 1): caller-thread CPU and
 * sender-process CPU until bftnet_flush says everything went out. */
static void bcast_measure(bb_child_t *ch, bnode_t *n, const bb_job_t *job, int bcast,
                          uint8_t *msg) {
  const int nn = job->nnodes;
  const uint32_t high = n->ring_capacity / 2;
  double thr = 0, cpu0 = bb_cpu_self(), t_end = bb_now() + job->window;
  uint64_t calls = 0, drops0 = total_drops(n, 0, nn);
  static uint64_t seq;
  while (calls < 4000000 && bb_now() < t_end) {
    while ((bcast ? max_depth(n, 0, nn) : ring_depth(n, "r2")) > high) {
      if (bb_past_deadline(ch)) bb_fail(ch->idx, "deadline while pacing");
      bb_sleep(20e-6);
    }
    double t0 = bb_cpu_thread();
    for (int k = 0; k < SEND_BURST; k++) {
      seq++;
      memcpy(msg, &seq, job->size >= 8 ? 8 : job->size);
      int rc = bcast ? bftnet_broadcast(n->net, msg, job->size)
                     : bftnet_send(n->net, "r2", msg, job->size);
      if (rc < 0)
        bb_fail(ch->idx, "%s: %s", bcast ? "bftnet_broadcast" : "bftnet_send", bftnet_strerror(rc));
      if (bcast && rc != nn - 1)
        bb_fail(ch->idx, "bftnet_broadcast queued for %d members, not %d", rc, nn - 1);
    }
    thr += bb_cpu_thread() - t0;
    calls += SEND_BURST;
  }
  int rc = bftnet_flush(n->net, 10000);
  if (rc) bb_fail(ch->idx, "bftnet_flush: %s", bftnet_strerror(rc));
  double proc = bb_cpu_self() - cpu0;
  double *res = bb_shm->side[ch->idx].res;
  res[bcast ? BB_RES_BC_BCAST_THREAD_NS : BB_RES_BC_SEND_THREAD_NS] = thr / (double)calls * 1e9;
  res[bcast ? BB_RES_BC_BCAST_PROC_NS : BB_RES_BC_SEND_PROC_NS] = proc / (double)calls * 1e9;
  res[bcast ? BB_RES_BC_BCAST_CALLS : BB_RES_BC_SEND_CALLS] = (double)calls;
  res[BB_RES_BC_DROPS] += (double)(total_drops(n, 0, nn) - drops0);
}

void bb_bcast_sender(int idx, const bb_job_t *job) {
  bb_child_t ch;
  bnode_t n;
  bb_child_init(&ch, idx, job);
  node_up(&ch, &n, 0, job, job->ring_capacity, job->nnodes);
  uint8_t *msg = bb_msg_alloc(idx, job);
  bb_ready_go(&ch);
  int first = job->round & 1; /* alternate the order between rounds */
  bcast_measure(&ch, &n, job, first, msg);
  bb_sleep(0.05);
  bcast_measure(&ch, &n, job, !first, msg);
  bb_shm->side[idx].res[BB_RES_BC_FANOUT] = job->nnodes - 1;
  bb_done(idx);
  bb_wait_phase(&ch, BB_PH_STOP);
  free(msg);
  node_free(&n);
}

/* Nodes 1..nnodes-1 in one process, drained round-robin by one thread. */
void bb_bcast_sinks(int idx, const bb_job_t *job) {
  bb_child_t ch;
  bnode_t n[BB_MAX_NODES];
  bb_child_init(&ch, idx, job);
  for (int i = 1; i < job->nnodes; i++)
    node_start(&ch, &n[i], i, job, job->ring_capacity);
  for (int i = 1; i < job->nnodes; i++)
    node_join(&ch, &n[i], job->nnodes);
  bb_ready(idx);
  bftnet_msg_t msgs[RECV_BATCH];
  uint64_t last[BB_MAX_NODES] = {0};
  while (bb_tick(&ch) < BB_PH_STOP) {
    int any = 0;
    for (int i = 1; i < job->nnodes; i++) {
      int r = bftnet_recv_batch(n[i].net, msgs, RECV_BATCH, 0);
      if (r == BFTNET_EAGAIN) continue;
      if (r < 0) bb_fail(idx, "bftnet_recv_batch: %s", bftnet_strerror(r));
      any = 1;
      for (int k = 0; k < r; k++) {
        bb_count_msg(&ch.c, msgs[k].data, msgs[k].len, &last[i]);
        bftnet_msg_release(&msgs[k]);
      }
    }
    if (!any) bb_sleep(50e-6);
  }
  for (int i = 1; i < job->nnodes; i++)
    node_free(&n[i]);
}

/* ---------------------------------------------------------- all-to-all */

/* Payload: [u64 CLOCK_MONOTONIC ns at send][u64 sequence][zeros]. */
typedef struct a2a {
  bb_child_t ch; /* owned by the receiving thread */
  bnode_t n;
  const bb_job_t *job;
  int self;
  _Atomic uint64_t enq, missed;
} a2a_t;

static void a2a_refresh(bb_child_t *ch, bb_counts_t *c) {
  a2a_t *a = ch->ud;
  c->drops = total_drops(&a->n, a->self, a->job->nnodes);
  c->enq = atomic_load(&a->enq) * (uint64_t)(a->job->nnodes - 1);
}

static void *a2a_recv_thread(void *arg) {
  a2a_t *a = arg;
  bftnet_msg_t msgs[RECV_BATCH];
  uint64_t last[BB_MAX_NODES] = {0};
  int ph;
  while ((ph = bb_tick(&a->ch)) < BB_PH_STOP) {
    int r = bftnet_recv_batch(a->n.net, msgs, RECV_BATCH, 5);
    if (r == BFTNET_ETIMEDOUT || r == BFTNET_EAGAIN) continue;
    if (r < 0) bb_fail(a->self, "bftnet_recv_batch: %s", bftnet_strerror(r));
    uint64_t now = bb_now_ns();
    int w = ph == BB_PH_M0 ? 0 : ph == BB_PH_M1 ? 1 : -1;
    for (int i = 0; i < r; i++) {
      const bftnet_msg_t *m = &msgs[i];
      int from = atoi(m->from + 1) - 1;
      a->ch.c.msgs++;
      a->ch.c.bytes += m->len;
      if (m->len >= 16 && from >= 0 && from < BB_MAX_NODES) {
        uint64_t ts, sq;
        memcpy(&ts, m->data, 8);
        memcpy(&sq, m->data + 8, 8);
        if (sq <= last[from]) a->ch.c.bad++;
        last[from] = sq;
        if (w >= 0 && now >= ts) bb_hist_add(bb_shm->hist[a->self][w], now - ts);
      }
      bftnet_msg_release(&msgs[i]);
    }
  }
  return NULL;
}

static int a2a_phase(const a2a_t *a) {
  if (bb_past_deadline(&a->ch)) return BB_PH_STOP;
  return atomic_load_explicit(&bb_shm->phase, memory_order_acquire);
}

static void a2a_bcast(a2a_t *a, uint8_t *msg, uint64_t *seq) {
  uint64_t ts = bb_now_ns();
  ++*seq;
  memcpy(msg, &ts, 8);
  memcpy(msg + 8, seq, 8);
  int rc = bftnet_broadcast(a->n.net, msg, a->job->size);
  if (rc < 0) bb_fail(a->self, "bftnet_broadcast: %s", bftnet_strerror(rc));
  atomic_fetch_add(&a->enq, 1);
}

/* As fast as the rings take it (nap while a ring is over a quarter full). */
static void a2a_flat_out(a2a_t *a, uint8_t *msg, uint64_t *seq) {
  const uint32_t high = a->n.ring_capacity / 4;
  while (a2a_phase(a) < BB_PH_PAUSE) {
    if (max_depth(&a->n, a->self, a->job->nnodes) > high) {
      bb_sleep(20e-6);
      continue;
    }
    for (int k = 0; k < 64; k++)
      a2a_bcast(a, msg, seq);
  }
}

/* At bb_shm->rate broadcasts/s, on an absolute schedule; more than 50 ms
 * behind, the schedule skips ahead and counts the skipped as missed. */
static void a2a_paced(a2a_t *a, uint8_t *msg, uint64_t *seq) {
  const double rate = bb_shm->rate;
  if (!(rate > 0)) return;
  const double t0 = bb_now();
  uint64_t sent = 0;
  while (a2a_phase(a) < BB_PH_STOP) {
    double now = bb_now();
    uint64_t due = (uint64_t)((now - t0) * rate);
    uint64_t lag_max = (uint64_t)(rate * 0.05) + 1;
    if (due > sent + lag_max) {
      atomic_fetch_add(&a->missed, due - sent - lag_max);
      sent = due - lag_max;
    }
    if (due > sent) {
      uint64_t k = due - sent < 32 ? due - sent : 32;
      for (uint64_t i = 0; i < k; i++)
        a2a_bcast(a, msg, seq);
      sent += k;
    } else {
      double next = t0 + (double)(sent + 1) / rate - now;
      bb_sleep(next < 200e-6 ? next : 200e-6);
    }
  }
}

void bb_a2a_node(int idx, const bb_job_t *job) {
  a2a_t *a = calloc(1, sizeof *a);
  uint8_t *msg = calloc(1, job->size + 16);
  if (!a || !msg) _exit(1);
  a->job = job;
  a->self = idx;
  bb_child_init(&a->ch, idx, job);
  node_up(&a->ch, &a->n, idx, job, job->ring_capacity, job->nnodes);
  a->ch.ud = a;
  a->ch.refresh = a2a_refresh;
  pthread_t th;
  if (pthread_create(&th, NULL, a2a_recv_thread, a)) bb_fail(idx, "pthread_create");
  bb_ready(idx);
  uint64_t seq = 0;
  while (a2a_phase(a) < BB_PH_GO)
    bb_sleep(0.001);
  a2a_flat_out(a, msg, &seq);
  while (a2a_phase(a) < BB_PH_GO1)
    bb_sleep(0.001);
  a2a_paced(a, msg, &seq);
  pthread_join(th, NULL);
  bb_shm->side[idx].res[BB_RES_A2A_MISSED] = (double)atomic_load(&a->missed);
  node_free(&a->n);
  free(msg);
  free(a);
}

/* --------------------------------------------------------- memory soak */

/* A port nobody listens on (bound, then closed): dials are refused. */
static unsigned dead_port(int idx) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sa;
  if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) ||
      getsockname(fd, (struct sockaddr *)&sa, &len))
    bb_fail(idx, "dead port: %s", strerror(errno));
  close(fd);
  return ntohs(sa.sin_port);
}

static void soak_sample(double *res, uint32_t *k) {
  long rss = bb_rss_bytes();
  if (rss < 0) return;
  if (*k == 0) res[BB_RES_SOAK_FIRST] = (double)rss;
  res[BB_RES_SOAK_LAST] = (double)rss;
  if ((double)rss > res[BB_RES_SOAK_MAX]) res[BB_RES_SOAK_MAX] = (double)rss;
  if (*k < BB_MAX_SAMPLES) bb_shm->samples[*k] = (uint64_t)rss;
  ++*k;
  atomic_store(&bb_shm->nsamples, *k < BB_MAX_SAMPLES ? *k : BB_MAX_SAMPLES);
}

void bb_soak_node(int idx, const bb_job_t *job) {
  bb_child_t ch;
  bnode_t n;
  double *res = bb_shm->side[idx].res;
  bb_child_init(&ch, idx, job);
  res[BB_RES_SOAK_RSS_START] = (double)bb_rss_bytes();
  node_start(&ch, &n, -1, job, job->ring_capacity);
  bftnet_key_t *dk;
  char dead_id[BFTNET_PEER_ID_MAX], dead_addr[BFTNET_ADDR_MAX];
  if (bftnet_key_generate(&dk) || bftnet_key_peer_id(dk, dead_id, sizeof dead_id))
    bb_fail(idx, "dead peer's key");
  bftnet_key_free(dk);
  snprintf(dead_addr, sizeof dead_addr, "/ip4/127.0.0.1/tcp/%u/p2p/%s", dead_port(idx), dead_id);
  const char *a1[] = {n.addr}, *a2[] = {dead_addr};
  bftnet_member_t m[] = {{"r1", a1, 1}, {"r2", a2, 1}};
  char err[256] = "";
  int rc = bftnet_connect(n.net, m, 2, err, sizeof err);
  if (rc) bb_fail(idx, "bftnet_connect: %s (%s)", bftnet_strerror(rc), err);
  uint8_t *msg = bb_msg_alloc(idx, job);
  res[BB_RES_SOAK_RSS_SETUP] = (double)bb_rss_bytes();
  res[BB_RES_SOAK_RING] = n.ring_capacity;
  bb_ready_go(&ch);
  double t0 = bb_now(), next = t0 + 1;
  uint32_t k = 0;
  uint64_t seq = 0;
  while (bb_now() - t0 < job->soak_seconds && bb_tick(&ch) < BB_PH_STOP) {
    for (int i = 0; i < 1024; i++) {
      seq++;
      memcpy(msg, &seq, job->size >= 8 ? 8 : job->size);
      if ((rc = bftnet_send(n.net, "r2", msg, job->size)) != 0)
        bb_fail(idx, "bftnet_send: %s", bftnet_strerror(rc));
    }
    if (bb_now() >= next) {
      soak_sample(res, &k);
      next += 1;
    }
  }
  soak_sample(res, &k);
  bftnet_peer_stats_t st;
  if (bftnet_peer_stats(n.net, "r2", &st) == 0)
    res[BB_RES_SOAK_DROPS] = (double)st.dropped_overflow;
  res[BB_RES_SOAK_SENT] = (double)seq;
  res[BB_RES_SOAK_SAMPLES] = k;
  bb_done(idx);
  bb_wait_phase(&ch, BB_PH_STOP);
  free(msg);
  node_free(&n);
}
