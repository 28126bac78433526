/*
 * bftnet-replica — a load-test replica driven by a membership file.
 *
 *   bftnet-replica --id NODE_ID --key FILE --listen MULTIADDR [--listen ...]
 *                  --members FILE [--rate MSGS_PER_S_PER_PEER] [--size BYTES]
 *                  [--duration SECONDS] [--stats-ms MS] [--report FILE]
 *                  [--drain-ms MS]
 *
 * It sends every other member --rate messages/s (0: as fast as the rings
 * take them) of --size bytes, each carrying a per-destination sequence
 * number and its CLOCK_MONOTONIC send time; it checks what it receives for
 * gaps, duplicates and reorders — per incarnation of the sender, so that a
 * restarted peer numbering from 1 again is a new incarnation, not a fault —
 * and measures latency. It counts bftnet's migration events per peer.
 * stdout carries one JSON object per line ("type": "listen", "membership",
 * "stats", "event"); logs go to stderr. When --duration ends or on
 * SIGTERM/SIGINT it stops sending, drains (bftnet_flush: until the peers
 * confirmed everything, or --drain-ms; see docs/REPORT.md), and writes the
 * report (--report FILE, else a "report" line on stdout). SIGHUP reloads
 * the membership file (bftnet_connect_file).
 *
 * Threads: main (signals via sigtimedwait, stats lines, membership, drain,
 * report), one sender, one receiver, and bftnet's loop thread (the event
 * callback: atomic counters and rare "event" lines). Every signal
 * is blocked in all of them; only main takes them, synchronously.
 *
 * Exit codes: 0 done (whatever the integrity verdict: read the report),
 * 1 runtime error, 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "bftnet.h"
#include "stats.h"

#define RP_MAX_PEERS      4096               /* node IDs ever seen (members are at most 1024) */
#define RP_SLOTS          (2 * RP_MAX_PEERS) /* open-addressing table, power of two */
#define RP_MAX_LISTEN     16
#define RP_RECV_BATCH     256
#define RP_QUIET_NS       (500 * NS_PER_MS) /* drain: no delivery for this long */
#define RP_REMOVE_WAIT_NS (500 * NS_PER_MS) /* SIGHUP: let a removed peer's ring drain */
#define RP_MIN_SLEEP_NS   (250 * NS_PER_US) /* sender: never wakes more often */
#define RP_MAX_SLEEP_NS   (10 * NS_PER_MS)
#define NS_PER_US         UINT64_C(1000)
#define NS_PER_MS         UINT64_C(1000000)
#define NS_PER_S          UINT64_C(1000000000)

_Static_assert((RP_SLOTS & (RP_SLOTS - 1)) == 0, "slot table is a power of two");

typedef struct rp_opts {
  const char *id, *key, *members, *report;
  const char *listen[RP_MAX_LISTEN];
  int nlisten;
  double rate;       /* messages/s per peer; 0 = keep the rings near full */
  size_t size;       /* bytes per message, >= STATS_PAYLOAD_HDR */
  double duration_s; /* 0 = until signalled */
  uint32_t stats_ms; /* 0 = no stats lines */
  uint32_t drain_ms;
} rp_opts_t;

/* bftnet's per-member counters, summed over the member's incarnations (a
 * member removed and added again starts from zero inside bftnet). */
typedef struct rp_lib {
  uint64_t enqueued, sent, delivered, dropped_overflow, dropped_removed, aborted;
  uint64_t bytes_out, bytes_in, reconnects, tentative_evicted;
  uint64_t migrations, detached, resumed, retransmitted, peer_restarts;
  uint64_t detach_ns_last, detach_ns_max;
} rp_lib_t;

/* The migration events we count (BFTNET_EV_MIGRATED .. PEER_RESTARTED),
 * per peer, by the loop thread's event callback. */
#define RP_EV_FIRST       BFTNET_EV_MIGRATED
#define RP_EV_LAST        BFTNET_EV_PEER_RESTARTED
#define RP_EV_N           (RP_EV_LAST - RP_EV_FIRST + 1)
#define RP_EV_LINES_PER_S 20 /* "event" lines on stdout, at most */
static const char *const ev_names[RP_EV_N] = {"migrated", "detached", "resumed",
                                              "aborted",  "denied",   "peer_restarted"};
_Static_assert(BFTNET_EV_PEER_RESTARTED - BFTNET_EV_MIGRATED == 5, "event numbering");

typedef struct rp_peer {
  char id[BFTNET_NODE_ID_MAX];
  char peer_id[BFTNET_PEER_ID_MAX]; /* main thread */
  atomic_int active;                /* the sender sends to it */
  /* sender thread only */
  uint64_t pace_base_ns, pace_issued;
  /* written by the sender, read by anyone */
  atomic_uint_fast64_t sent; /* = the last sequence number handed to bftnet_send */
  atomic_uint_fast64_t send_errors, lagged;
  /* written by the loop thread's event callback, read by anyone */
  atomic_uint_fast64_t ev[RP_EV_N];
  atomic_uint_fast64_t ev_aborted_lost; /* sum of BFTNET_EV_ABORTED's lost */
  /* main thread only */
  bool member;                 /* in the current membership */
  bool lib_live;               /* lib_cur is the current incarnation's snapshot */
  rp_lib_t lib_base;           /* finished incarnations */
  bftnet_peer_stats_t lib_cur; /* current incarnation, last snapshot */
  uint64_t tick_sent, tick_delivered;
  /* receiver thread, under rp.rx_mu */
  stats_rx_t rx; /* sequence numbers, per incarnation of the peer */
  uint64_t delivered, foreign;
  stats_lat_t lat_run, lat_tick;
} rp_peer_t;

/* One report/stats row: everything known about a peer, or a total (the
 * sum of the peers' rows). The X-macro lists the summed counters. */
// clang-format off
#define RP_ROW_FIELDS(X)                                                                          \
  X(sent) X(enqueued) X(written) X(dropped_overflow) X(dropped_removed) X(aborted)               \
  X(unconfirmed) X(unconfirmed_bytes) X(send_errors) X(lagged) X(delivered) X(delivered_current) \
  X(max_seq) X(first_seq) X(gaps) X(duplicates) X(reorders) X(stale) X(foreign) X(rx_evicted)    \
  X(incarnations) X(inc_by_event) X(inc_by_seq) X(inc_seq_unexplained) X(reconnects)            \
  X(migrations) X(detached) X(resumed) X(retransmitted) X(peer_restarts) X(bytes_out)           \
  X(bytes_in) X(ring_depth) X(connected)
// clang-format on

typedef struct rp_row {
#define RP_X_(f) uint64_t f;
  RP_ROW_FIELDS(RP_X_)
#undef RP_X_
  uint64_t detach_ns_last, detach_ns_max; /* not summed: the total has the largest */
  uint64_t ev[RP_EV_N], ev_aborted_lost;
  stats_verdict_t verdict;
} rp_row_t;

/* How the drain after sending ended. */
typedef struct rp_drain {
  bool complete;
  const char *reason; /* "confirmed", "timeout", "signal" */
  uint64_t ns;
  bool flushed; /* the last bftnet_flush returned 0 */
  int flush_rc; /* ... what it returned */
} rp_drain_t;

static struct rp {
  rp_opts_t o;
  bftnet_t *net;
  char self_peer[BFTNET_PEER_ID_MAX];
  char bound[RP_MAX_LISTEN][BFTNET_ADDR_MAX];
  uint32_t ring_cap;
  uint64_t t0; /* main thread; t0_pub: the same for any thread */
  atomic_uint_fast64_t t0_pub;

  rp_peer_t *peers[RP_MAX_PEERS]; /* append-only; slots[] indexes them */
  atomic_size_t npeers;
  _Atomic(rp_peer_t *) slots[RP_SLOTS];

  pthread_mutex_t send_mu; /* held by the sender for each round */
  pthread_mutex_t rx_mu;   /* receive-side stats */
  atomic_bool stop_sending, stop_recv;
  atomic_uint_fast64_t last_rx_ns;
  atomic_uint_fast64_t rx_unknown;               /* from node IDs we never knew (should stay 0) */
  atomic_uint_fast64_t ev_unattributed[RP_EV_N]; /* events naming no known node ID */
  atomic_uint_fast64_t ev_lines_suppressed;      /* over RP_EV_LINES_PER_S */
  bool loaded;                                   /* a membership was applied */
  const char *phase;
  uint64_t send_end_ns, last_tick_ns;
} rp = {
    .send_mu = PTHREAD_MUTEX_INITIALIZER, .rx_mu = PTHREAD_MUTEX_INITIALIZER, .phase = "sending"};

static stats_lat_t tmp_lat; /* main thread: totals */

/* ------------------------------------------------------------ helpers */

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t t) {
  struct timespec ts = {.tv_sec = (time_t)(t / NS_PER_S), .tv_nsec = (long)(t % NS_PER_S)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
  }
}

__attribute__((format(printf, 1, 2))) static void logf_(const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  fprintf(stderr, "bftnet-replica %s: %s\n", rp.o.id ? rp.o.id : "?", line);
}

static uint64_t ms_since_start(void) {
  uint64_t now = now_ns();
  uint64_t t0 = atomic_load(&rp.t0_pub); /* the loop thread calls this too */
  return t0 && now > t0 ? (now - t0) / NS_PER_MS : 0;
}

/* One JSON object per stdout line, flushed: the cluster reads a pipe. The
 * main thread and the loop thread (event lines) both print: the lock keeps
 * lines whole. */
static void emit_line(json_t *obj) {
  char *s = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(12));
  json_decref(obj);
  if (!s) return;
  flockfile(stdout);
  fputs(s, stdout);
  fputc('\n', stdout);
  fflush(stdout);
  funlockfile(stdout);
  free(s);
}

/* ---------------------------------------------------------- peer table */

static uint32_t id_hash(const char *s) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (uint8_t)*s) * 16777619u;
  return h;
}

/* Any thread. */
static rp_peer_t *peer_find(const char *id) {
  for (uint32_t i = id_hash(id), n = 0; n < RP_SLOTS; i++, n++) {
    rp_peer_t *p = atomic_load_explicit(&rp.slots[i & (RP_SLOTS - 1)], memory_order_acquire);
    if (!p) return NULL;
    if (strcmp(p->id, id) == 0) return p;
  }
  return NULL;
}

/* Main thread only (the single writer). NULL when the table is full. */
static rp_peer_t *peer_get(const char *id) {
  rp_peer_t *p = peer_find(id);
  if (p) return p;
  size_t n = atomic_load(&rp.npeers);
  if (n == RP_MAX_PEERS) return NULL;
  p = calloc(1, sizeof *p);
  if (!p) return NULL;
  snprintf(p->id, sizeof p->id, "%s", id);
  stats_rx_init(&p->rx);
  stats_lat_reset(&p->lat_run);
  stats_lat_reset(&p->lat_tick);
  uint32_t i = id_hash(id);
  while (atomic_load_explicit(&rp.slots[i & (RP_SLOTS - 1)], memory_order_relaxed))
    i++;
  rp.peers[n] = p;
  atomic_store_explicit(&rp.npeers, n + 1, memory_order_release);
  atomic_store_explicit(&rp.slots[i & (RP_SLOTS - 1)], p, memory_order_release);
  return p;
}

/* ------------------------------------------------------------- sender */

/* Hands one load message to bftnet. Returns bftnet_send's code. */
static int send_one(rp_peer_t *p, uint8_t *buf) {
  uint64_t seq = atomic_load(&p->sent) + 1;
  stats_payload_encode(buf, rp.o.size, seq, now_ns());
  int rc = bftnet_send(rp.net, p->id, buf, rp.o.size);
  if (rc == 0)
    atomic_store(&p->sent, seq);
  else if (rc != BFTNET_ENOTFOUND && rc != BFTNET_ECLOSED)
    atomic_fetch_add(&p->send_errors, 1);
  return rc;
}

/* --rate R: sends what is due since the peer became active, at most 100 ms
 * (and one ring) worth at once; a larger backlog is skipped and counted as
 * lagged. Returns when the next message to this peer is due. */
static uint64_t send_paced(rp_peer_t *p, uint8_t *buf, uint64_t now) {
  if (p->pace_base_ns == 0) {
    p->pace_base_ns = now;
    p->pace_issued = 0;
  }
  double r = rp.o.rate;
  uint64_t due = (uint64_t)((double)(now - p->pace_base_ns) * r / 1e9);
  uint64_t burst = (uint64_t)(r / 10.0);
  if (burst < 1) burst = 1;
  if (burst > rp.ring_cap) burst = rp.ring_cap;
  if (due > p->pace_issued + burst) {
    atomic_fetch_add(&p->lagged, due - p->pace_issued - burst);
    p->pace_issued = due - burst;
  }
  while (p->pace_issued < due) {
    int rc = send_one(p, buf);
    if (rc == BFTNET_ENOTFOUND || rc == BFTNET_ECLOSED) break;
    p->pace_issued++; /* other errors: counted, the slot is spent */
  }
  return p->pace_base_ns + (uint64_t)((double)(p->pace_issued + 1) * 1e9 / r);
}

/* --rate 0: below half a ring, tops the ring up to 7/8 (never full, so
 * nothing is dropped by our own eagerness). Returns true if it sent. */
static bool send_fill(rp_peer_t *p, uint8_t *buf) {
  bftnet_peer_stats_t ps;
  if (bftnet_peer_stats(rp.net, p->id, &ps) != 0) return false;
  if (ps.ring_depth >= rp.ring_cap / 2) return false;
  uint32_t want = rp.ring_cap - rp.ring_cap / 8 - ps.ring_depth;
  for (uint32_t i = 0; i < want; i++) {
    int rc = send_one(p, buf);
    if (rc == BFTNET_ENOTFOUND || rc == BFTNET_ECLOSED) break;
  }
  return true;
}

static void *sender_main(void *arg) {
  (void)arg;
  uint8_t *buf = malloc(rp.o.size);
  if (!buf) {
    logf_("sender: out of memory");
    return NULL;
  }
  while (!atomic_load(&rp.stop_sending)) {
    uint64_t now = now_ns(), next = now + RP_MAX_SLEEP_NS;
    bool busy = false;
    pthread_mutex_lock(&rp.send_mu);
    size_t n = atomic_load_explicit(&rp.npeers, memory_order_acquire);
    for (size_t i = 0; i < n; i++) {
      rp_peer_t *p = rp.peers[i];
      if (!atomic_load(&p->active)) {
        p->pace_base_ns = 0; /* pacing restarts when it comes back */
        continue;
      }
      if (rp.o.rate > 0) {
        uint64_t due = send_paced(p, buf, now);
        if (due < next) next = due;
      } else {
        busy |= send_fill(p, buf);
      }
    }
    pthread_mutex_unlock(&rp.send_mu);
    if (rp.o.rate == 0) next = now + (busy ? RP_MIN_SLEEP_NS : 4 * RP_MIN_SLEEP_NS);
    uint64_t earliest = now_ns() + RP_MIN_SLEEP_NS;
    sleep_until(next > earliest ? next : earliest);
  }
  free(buf);
  return NULL;
}

/* ------------------------------------------------------------- events */

static json_t *j_u64(uint64_t v);

/* Loop thread. An "event" line for the rare events (aborted, denied, peer
 * restarted), at most RP_EV_LINES_PER_S per second (the rest counted). */
static void event_line(const bftnet_event_t *ev, const char *name) {
  static uint64_t window_ns, in_window; /* loop thread only */
  uint64_t now = now_ns();
  if (now - window_ns >= NS_PER_S) window_ns = now, in_window = 0;
  if (++in_window > RP_EV_LINES_PER_S) {
    atomic_fetch_add(&rp.ev_lines_suppressed, 1);
    return;
  }
  const char *peer = ev->node_id ? ev->node_id : "";
  json_t *o = json_pack("{s:s, s:s, s:o, s:s, s:s, s:s, s:o, s:b}", "type", "event", "id", rp.o.id,
                        "t_ms", j_u64(ms_since_start()), "event", name, "peer", peer, "peer_id",
                        ev->peer_id ? ev->peer_id : "", "stream_id", j_u64(ev->stream_id),
                        "outbound", ev->outbound != 0);
  if (ev->type == BFTNET_EV_ABORTED) {
    json_object_set_new(o, "why", json_string(ev->mig_abort ? ev->mig_abort : ""));
    json_object_set_new(o, "lost", j_u64(ev->lost));
  }
  if (ev->type == BFTNET_EV_ABORTED)
    logf_("event: %s %s stream %s (%s), %" PRIu64 " messages unconfirmed", name,
          ev->outbound ? "our" : "the", peer[0] ? peer : "(unknown node ID)",
          ev->mig_abort ? ev->mig_abort : "?", ev->lost);
  else
    logf_("event: %s, %s", name, peer[0] ? peer : "(unknown node ID)");
  emit_line(o);
}

/* bftnet's event callback (loop thread): counts the migration events per
 * peer, lock-free. A PEER_RESTARTED count is what arms the receiver's switch
 * to the peer's new incarnation (stats_rx_observe). Fast: no lock, one line
 * for the rare kinds. */
static void on_event(const bftnet_event_t *ev, void *user) {
  (void)user;
  if (ev->type < RP_EV_FIRST || ev->type > RP_EV_LAST) return;
  int k = (int)ev->type - RP_EV_FIRST;
  rp_peer_t *p = ev->node_id && ev->node_id[0] ? peer_find(ev->node_id) : NULL;
  if (p) {
    if (ev->type == BFTNET_EV_ABORTED) atomic_fetch_add(&p->ev_aborted_lost, ev->lost);
    atomic_fetch_add(&p->ev[k], 1);
  } else {
    atomic_fetch_add(&rp.ev_unattributed[k], 1);
  }
  if (ev->type == BFTNET_EV_ABORTED || ev->type == BFTNET_EV_DENIED ||
      ev->type == BFTNET_EV_PEER_RESTARTED)
    event_line(ev, ev_names[k]);
}

/* ----------------------------------------------------------- receiver */

/* Under rx_mu. */
static void rx_account(const bftnet_msg_t *m, uint64_t now) {
  rp_peer_t *p = peer_find(m->from);
  if (!p) {
    atomic_fetch_add(&rp.rx_unknown, 1);
    return;
  }
  uint64_t seq, sent_ns;
  uint64_t restarts = atomic_load(&p->ev[BFTNET_EV_PEER_RESTARTED - RP_EV_FIRST]);
  if (stats_payload_decode(m->data, m->len, &seq, &sent_ns) != 0 ||
      stats_rx_observe(&p->rx, seq, restarts) == STATS_SEQ_INVALID) {
    p->foreign++;
    return;
  }
  p->delivered++;
  uint64_t lat = now > sent_ns ? now - sent_ns : 0;
  stats_lat_record(&p->lat_run, lat);
  stats_lat_record(&p->lat_tick, lat);
}

static void *receiver_main(void *arg) {
  (void)arg;
  bftnet_msg_t msgs[RP_RECV_BATCH];
  while (!atomic_load(&rp.stop_recv)) {
    int n = bftnet_recv_batch(rp.net, msgs, RP_RECV_BATCH, 100);
    if (n == BFTNET_ETIMEDOUT || n == BFTNET_EAGAIN) continue;
    if (n == BFTNET_ECLOSED) break;
    if (n < 0) {
      logf_("receive: %s", bftnet_strerror(n));
      sleep_until(now_ns() + 10 * NS_PER_MS);
      continue;
    }
    uint64_t now = now_ns();
    pthread_mutex_lock(&rp.rx_mu);
    for (int i = 0; i < n; i++)
      rx_account(&msgs[i], now);
    pthread_mutex_unlock(&rp.rx_mu);
    for (int i = 0; i < n; i++)
      bftnet_msg_release(&msgs[i]);
    atomic_store(&rp.last_rx_ns, now);
  }
  return NULL;
}

/* --------------------------------------------------- library counters */

/* Main thread: refreshes the current incarnation's snapshot of a member. */
static void lib_refresh(rp_peer_t *p) {
  if (!p->member) return;
  bftnet_peer_stats_t ps;
  if (bftnet_peer_stats(rp.net, p->id, &ps) != 0) return;
  p->lib_cur = ps;
  p->lib_live = true;
}

static void lib_refresh_all(void) {
  size_t n = atomic_load(&rp.npeers);
  for (size_t i = 0; i < n; i++)
    lib_refresh(rp.peers[i]);
}

/* The member left bftnet (removed, or its peer ID changed): its counters go
 * into the base. bftnet forgets a removed member's counters, so the ones it
 * releases on removal are taken from the last snapshot (see REPORT.md). */
static void lib_retire(rp_peer_t *p) {
  if (!p->lib_live) return;
  const bftnet_peer_stats_t *c = &p->lib_cur;
  rp_lib_t *b = &p->lib_base;
  b->enqueued += c->enqueued;
  b->sent += c->sent;
  b->delivered += c->delivered;
  b->dropped_overflow += c->dropped_overflow;
  b->dropped_removed += c->dropped_removed + c->ring_depth;
  b->aborted += c->aborted;
  b->migrations += c->migrations;
  b->detached += c->detached;
  b->resumed += c->resumed;
  b->retransmitted += c->retransmitted;
  b->peer_restarts += c->peer_restarts;
  if (c->detached) b->detach_ns_last = c->detach_ns_last;
  if (c->detach_ns_max > b->detach_ns_max) b->detach_ns_max = c->detach_ns_max;
  b->bytes_out += c->bytes_out;
  b->bytes_in += c->bytes_in;
  b->reconnects += c->reconnects;
  b->tentative_evicted += c->tentative_evicted;
  memset(&p->lib_cur, 0, sizeof p->lib_cur);
  p->lib_live = false;
}

/* Main thread; rx fields under rx_mu. */
static void peer_row(rp_peer_t *p, rp_row_t *r) {
  const rp_lib_t *b = &p->lib_base;
  const bftnet_peer_stats_t *c = &p->lib_cur; /* zero when not live */
  stats_inc_t tot, cur;
  stats_rx_total(&p->rx, &tot);
  stats_rx_current(&p->rx, &cur);
  *r = (rp_row_t){
      .sent = atomic_load(&p->sent),
      .enqueued = b->enqueued + c->enqueued,
      .written = b->sent + c->sent,
      .dropped_overflow = b->dropped_overflow + c->dropped_overflow,
      .dropped_removed = b->dropped_removed + c->dropped_removed,
      .aborted = b->aborted + c->aborted,
      .unconfirmed_bytes = p->lib_live ? c->unconfirmed : 0,
      .send_errors = atomic_load(&p->send_errors),
      .lagged = atomic_load(&p->lagged),
      .delivered = p->delivered,
      .delivered_current = cur.received,
      .max_seq = cur.max_seq,
      .first_seq = cur.first_seq,
      .gaps = tot.gaps,
      .duplicates = tot.duplicates,
      .reorders = tot.reorders,
      .stale = tot.stale,
      .foreign = p->foreign,
      .rx_evicted = b->tentative_evicted + c->tentative_evicted,
      .incarnations = p->rx.incarnations,
      .inc_by_event = p->rx.by_event,
      .inc_by_seq = p->rx.by_seq,
      .inc_seq_unexplained = p->rx.seq_unexplained,
      .reconnects = b->reconnects + c->reconnects,
      .migrations = b->migrations + c->migrations,
      .detached = b->detached + c->detached,
      .resumed = b->resumed + c->resumed,
      .retransmitted = b->retransmitted + c->retransmitted,
      .peer_restarts = b->peer_restarts + c->peer_restarts,
      .bytes_out = b->bytes_out + c->bytes_out,
      .bytes_in = b->bytes_in + c->bytes_in,
      .ring_depth = p->lib_live ? c->ring_depth : 0,
      .connected = p->lib_live ? (uint64_t)(c->connected != 0) : 0,
      .detach_ns_last = c->detached ? c->detach_ns_last : b->detach_ns_last,
      .detach_ns_max = c->detach_ns_max > b->detach_ns_max ? c->detach_ns_max : b->detach_ns_max,
      .ev_aborted_lost = atomic_load(&p->ev_aborted_lost),
  };
  for (int k = 0; k < RP_EV_N; k++)
    r->ev[k] = atomic_load(&p->ev[k]);
  uint64_t gone = r->written + r->dropped_overflow + r->dropped_removed + r->aborted;
  r->unconfirmed = r->sent > gone ? r->sent - gone : 0;
  r->verdict = stats_rx_verdict(&p->rx, r->rx_evicted);
}

static void row_add(rp_row_t *t, const rp_row_t *r) {
#define RP_X_(f) t->f += r->f;
  RP_ROW_FIELDS(RP_X_)
#undef RP_X_
  if (r->detach_ns_last > t->detach_ns_last) t->detach_ns_last = r->detach_ns_last;
  if (r->detach_ns_max > t->detach_ns_max) t->detach_ns_max = r->detach_ns_max;
  for (int k = 0; k < RP_EV_N; k++)
    t->ev[k] += r->ev[k];
  t->ev_aborted_lost += r->ev_aborted_lost;
  t->verdict = stats_verdict_worst(t->verdict, r->verdict);
}

/* ------------------------------------------------------ JSON snippets */

static json_t *j_u64(uint64_t v) {
  return json_integer((json_int_t)(v > INT64_MAX ? INT64_MAX : v));
}

/* ns -> µs with one decimal. */
static json_t *j_us(uint64_t ns) {
  return json_real(round((double)ns / 100.0) / 10.0);
}

static json_t *j_rate(uint64_t n, uint64_t interval_ns) {
  double r = interval_ns ? (double)n * 1e9 / (double)interval_ns : 0.0;
  return json_real(round(r * 10.0) / 10.0);
}

static json_t *j_pct(const stats_lat_t *l, double p) {
  return stats_lat_count(l) ? j_us(stats_lat_percentile(l, p)) : json_null();
}

static json_t *j_latency(const stats_lat_t *l) {
  bool any = stats_lat_count(l) != 0;
  return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "n", j_u64(stats_lat_count(l)), "p50",
                   j_pct(l, 50), "p90", j_pct(l, 90), "p99", j_pct(l, 99), "max",
                   any ? j_us(stats_lat_max(l)) : json_null(), "mean",
                   any ? json_real(round(stats_lat_mean(l) / 100.0) / 10.0) : json_null());
}

/* The node counters a stats line carries (the report carries all). */
static const bftnet_counter_id_t line_counters[] = {
    BFTNET_COUNTER_CONN_ESTABLISHED, BFTNET_COUNTER_CONN_CLOSED, BFTNET_COUNTER_DIAL_FAILED,
    BFTNET_COUNTER_PING_TIMEOUT,     BFTNET_COUNTER_IO_ERRORS,   BFTNET_COUNTER_BAD_MESSAGE,
    BFTNET_COUNTER_BYTES_IN,         BFTNET_COUNTER_BYTES_OUT,   BFTNET_COUNTER_TENTATIVE_EVICTED,
    BFTNET_COUNTER_TENTATIVE_BYTES,
};

static json_t *j_counters(bool all) {
  json_t *o = json_object();
  size_t n = all ? BFTNET_COUNTER_COUNT : sizeof line_counters / sizeof *line_counters;
  for (size_t i = 0; i < n; i++) {
    bftnet_counter_id_t id = all ? (bftnet_counter_id_t)i : line_counters[i];
    json_object_set_new(o, bftnet_counter_name(id), j_u64(bftnet_counter(rp.net, id)));
  }
  return o;
}

/* The event counters of a row: {"migrated": n, ..., "aborted_lost": n}. */
static json_t *j_events(const uint64_t ev[RP_EV_N], uint64_t aborted_lost) {
  json_t *o = json_object();
  for (int k = 0; k < RP_EV_N; k++)
    json_object_set_new(o, ev_names[k], j_u64(ev[k]));
  json_object_set_new(o, "aborted_lost", j_u64(aborted_lost));
  return o;
}

/* ---------------------------------------------------------- stats line */

/* Adds named fields in order: put_u64s(o, "a", x, "b", y, (const char *)NULL);
 * every value must be a uint64_t (varargs: nothing converts it). */
static void put_u64s(json_t *o, ...) {
  va_list ap;
  va_start(ap, o);
  for (const char *k; (k = va_arg(ap, const char *)) != NULL;)
    json_object_set_new(o, k, j_u64(va_arg(ap, uint64_t)));
  va_end(ap);
}

static json_t *line_row(const rp_row_t *r, uint64_t d_sent, uint64_t d_deliv, uint64_t dt,
                        const stats_lat_t *tick) {
  json_t *o = json_object();
  put_u64s(o, "sent", r->sent, "delivered", r->delivered, "dropped",
           r->dropped_overflow + r->dropped_removed, (const char *)NULL);
  json_object_set_new(o, "sent_per_s", j_rate(d_sent, dt));
  json_object_set_new(o, "delivered_per_s", j_rate(d_deliv, dt));
  json_object_set_new(o, "p50_us", j_pct(tick, 50));
  json_object_set_new(o, "p99_us", j_pct(tick, 99));
  put_u64s(o, "reconnects", r->reconnects, "ring_depth", r->ring_depth, "connected", r->connected,
           "gaps", r->gaps, "duplicates", r->duplicates, "reorders", r->reorders, "foreign",
           r->foreign, "aborted", r->aborted, "migrations", r->migrations, "detached", r->detached,
           "resumed", r->resumed, "peer_restarts", r->peer_restarts, "incarnations",
           r->incarnations, "unconfirmed_bytes", r->unconfirmed_bytes, (const char *)NULL);
  return o;
}

static void stats_line(void) {
  uint64_t now = now_ns(), dt = now - rp.last_tick_ns;
  rp.last_tick_ns = now;
  lib_refresh_all();
  json_t *peers = json_object();
  rp_row_t tot = {0};
  uint64_t tot_ds = 0, tot_dd = 0;
  stats_lat_reset(&tmp_lat);
  size_t n = atomic_load(&rp.npeers);
  pthread_mutex_lock(&rp.rx_mu);
  for (size_t i = 0; i < n; i++) {
    rp_peer_t *p = rp.peers[i];
    rp_row_t r;
    peer_row(p, &r);
    uint64_t ds = r.sent - p->tick_sent, dd = r.delivered - p->tick_delivered;
    p->tick_sent = r.sent;
    p->tick_delivered = r.delivered;
    json_t *o = line_row(&r, ds, dd, dt, &p->lat_tick);
    json_object_set_new(o, "member", json_boolean(p->member));
    json_object_set_new(peers, p->id, o);
    row_add(&tot, &r);
    tot_ds += ds;
    tot_dd += dd;
    stats_lat_merge(&tmp_lat, &p->lat_tick);
    stats_lat_reset(&p->lat_tick);
  }
  pthread_mutex_unlock(&rp.rx_mu);
  json_t *line =
      json_pack("{s:s, s:s, s:o, s:s, s:o}", "type", "stats", "id", rp.o.id, "t_ms",
                j_u64(ms_since_start()), "phase", rp.phase, "interval_ms", j_u64(dt / NS_PER_MS));
  json_object_set_new(line, "total", line_row(&tot, tot_ds, tot_dd, dt, &tmp_lat));
  json_object_set_new(line, "peers", peers);
  json_object_set_new(line, "counters", j_counters(false));
  emit_line(line);
}

/* ---------------------------------------------------------- membership */

typedef struct rp_member {
  char id[BFTNET_NODE_ID_MAX];
  char peer[BFTNET_PEER_ID_MAX];
  bool self;
} rp_member_t;

/* Reads node IDs and peer IDs from the membership file (docs/MEMBERSHIP.md).
 * bftnet validates the file in full; this only needs the names. The file is
 * read twice per load (here, then by bftnet_connect_file): whoever rewrites
 * it should do so atomically (write a temporary file, rename it). */
static int members_read(const char *path, rp_member_t **out, size_t *nout, char *err, size_t cap) {
  json_error_t je;
  json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
  if (!root && je.line > 0)
    return snprintf(err, cap, "%s: line %d: %s", path, je.line, je.text), BFTNET_EINVAL;
  if (!root) return snprintf(err, cap, "%s", je.text), BFTNET_EINVAL;
  json_t *arr = json_object_get(root, "members");
  size_t n = json_array_size(arr);
  rp_member_t *m = calloc(n ? n : 1, sizeof *m);
  int rc = 0;
  if (!json_is_array(arr) || n > RP_MAX_PEERS || !m) {
    snprintf(err, cap, "%s: no \"members\" array (or too large)", path);
    rc = BFTNET_EINVAL;
  }
  for (size_t i = 0; rc == 0 && i < n; i++) {
    json_t *e = json_array_get(arr, i);
    const char *id = json_string_value(json_object_get(e, "id"));
    const char *a0 = json_string_value(json_array_get(json_object_get(e, "addrs"), 0));
    const char *p2p = a0 ? strstr(a0, "/p2p/") : NULL;
    while (p2p && strstr(p2p + 1, "/p2p/"))
      p2p = strstr(p2p + 1, "/p2p/");
    if (!id || !p2p || strlen(id) >= sizeof m[i].id || strlen(p2p + 5) >= sizeof m[i].peer) {
      snprintf(err, cap, "%s: member %zu: needs \"id\" and \"addrs\" ending in /p2p/<peer ID>",
               path, i + 1);
      rc = BFTNET_EINVAL;
      break;
    }
    snprintf(m[i].id, sizeof m[i].id, "%s", id);
    snprintf(m[i].peer, sizeof m[i].peer, "%s", p2p + 5);
  }
  json_decref(root);
  if (rc) return free(m), rc;
  *out = m;
  *nout = n;
  return 0;
}

/* Ourselves: our peer ID, or our node ID (warned about if they disagree). */
static bool member_is_self(const rp_member_t *m) {
  bool by_peer = strcmp(m->peer, rp.self_peer) == 0, by_id = strcmp(m->id, rp.o.id) == 0;
  if (by_peer != by_id)
    logf_("membership: entry \"%s\" (%s) has our %s; treated as ourselves (no load sent)", m->id,
          m->peer, by_peer ? "peer ID under another node ID" : "node ID, another peer ID");
  return by_peer || by_id;
}

static const rp_member_t *member_lookup(const rp_member_t *m, size_t n, const char *id) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(m[i].id, id) == 0) return &m[i];
  return NULL;
}

/* Stops sending to the peers in `going` and gives them up to
 * RP_REMOVE_WAIT_NS to settle — our ring to them empty, every byte we wrote
 * confirmed read (bftnet's `unconfirmed`), what they sent us taken from the
 * inbound queue — so that removal releases (and loses) as little as
 * possible; then snapshots their counters. */
static void members_quiesce(rp_peer_t **going, size_t n) {
  if (n == 0) return;
  for (size_t i = 0; i < n; i++)
    atomic_store(&going[i]->active, 0);
  pthread_mutex_lock(&rp.send_mu); /* the sender is now past any send to them */
  pthread_mutex_unlock(&rp.send_mu);
  uint64_t until = now_ns() + RP_REMOVE_WAIT_NS;
  for (;;) {
    bool drained = true;
    for (size_t i = 0; i < n; i++) {
      lib_refresh(going[i]);
      const bftnet_peer_stats_t *c = &going[i]->lib_cur;
      if (going[i]->lib_live && (c->ring_depth || c->unconfirmed || c->inbound_depth))
        drained = false;
    }
    if (drained || now_ns() >= until) return;
    sleep_until(now_ns() + 5 * NS_PER_MS);
  }
}

static void json_list_add(json_t *arr, char *txt, size_t cap, const char *id) {
  json_array_append_new(arr, json_string(id));
  size_t len = strlen(txt);
  snprintf(txt + len, cap - len, "%s%s", len ? ", " : "", id);
}

/* Applies the new member set to the peer table once bftnet accepted it. */
static void members_commit(const rp_member_t *m, size_t n, json_t *added, json_t *removed) {
  char add_txt[512] = "", rm_txt[512] = "";
  size_t np = atomic_load(&rp.npeers);
  for (size_t i = 0; i < np; i++) {
    rp_peer_t *p = rp.peers[i];
    const rp_member_t *e = member_lookup(m, n, p->id);
    bool stays = e && !e->self && strcmp(e->peer, p->peer_id) == 0;
    if (p->member && !stays) {
      lib_retire(p);
      atomic_store(&p->active, 0);
      p->member = false;
      json_list_add(removed, rm_txt, sizeof rm_txt, p->id);
    }
  }
  for (size_t i = 0; i < n; i++) {
    if (m[i].self) continue;
    rp_peer_t *p = peer_get(m[i].id); /* exists: members_apply made it */
    if (!p || p->member) continue;
    snprintf(p->peer_id, sizeof p->peer_id, "%s", m[i].peer);
    p->member = true;
    lib_refresh(p);
    atomic_store(&p->active, 1);
    json_list_add(added, add_txt, sizeof add_txt, p->id);
  }
  logf_("membership %s: %zu members; added: %s; removed: %s", rp.o.members, n,
        add_txt[0] ? add_txt : "-", rm_txt[0] ? rm_txt : "-");
}

/* Loads the membership file into bftnet and the peer table. On error,
 * nothing changes (and the error is logged). */
static int members_apply(void) {
  char err[512] = "";
  rp_member_t *m = NULL;
  size_t n = 0;
  json_t *line = json_pack("{s:s, s:s, s:o, s:s}", "type", "membership", "id", rp.o.id, "t_ms",
                           j_u64(ms_since_start()), "file", rp.o.members);
  int rc = members_read(rp.o.members, &m, &n, err, sizeof err);
  rp_peer_t *going[RP_MAX_PEERS];
  size_t ngoing = 0, np = atomic_load(&rp.npeers);
  for (size_t i = 0; rc == 0 && i < n; i++)
    if (!(m[i].self = member_is_self(&m[i])) && !peer_get(m[i].id)) {
      snprintf(err, sizeof err, "peer table full (%d node IDs)", RP_MAX_PEERS);
      rc = BFTNET_ELIMIT;
    }
  for (size_t i = 0; rc == 0 && i < np; i++) {
    rp_peer_t *p = rp.peers[i];
    const rp_member_t *e = member_lookup(m, n, p->id);
    if (p->member && (!e || e->self || strcmp(e->peer, p->peer_id) != 0)) going[ngoing++] = p;
  }
  if (rc == 0) {
    members_quiesce(going, ngoing);
    rc = bftnet_connect_file(rp.net, rp.o.members, err, sizeof err);
    if (rc != 0) {
      size_t len = strlen(err);
      snprintf(err + len, sizeof err - len, "%s%s", len ? ": " : "", bftnet_strerror(rc));
      for (size_t i = 0; i < ngoing; i++)
        atomic_store(&going[i]->active, 1);
    }
  }
  if (rc == 0) {
    json_t *added = json_array(), *removed = json_array();
    members_commit(m, n, added, removed);
    rp.loaded = true;
    json_object_set_new(line, "ok", json_true());
    json_object_set_new(line, "members", j_u64(n));
    json_object_set_new(line, "added", added);
    json_object_set_new(line, "removed", removed);
  } else {
    logf_("membership %s not applied: %s%s", rp.o.members, err,
          rp.loaded ? "; keeping the current membership" : "");
    json_object_set_new(line, "ok", json_false());
    json_object_set_new(line, "error", json_string(err));
  }
  emit_line(line);
  free(m);
  return rc;
}

/* --------------------------------------------------------------- drain */

/* Everything we handed bftnet is confirmed: bftnet_flush (every member's
 * ring empty, every byte written confirmed read by the member), waiting up
 * to wait_ms. Returns bftnet_flush's code. */
static int sends_flushed(int wait_ms) {
  int rc = bftnet_flush(rp.net, wait_ms);
  return rc == BFTNET_ECLOSED ? 0 : rc;
}

/* ---------------------------------------------------------------- report */

static json_t *report_row(const rp_row_t *r, const stats_lat_t *lat, uint64_t unexplained,
                          bool per_peer) {
  uint64_t dropped = r->dropped_overflow + r->dropped_removed;
  json_t *o = json_object();
  put_u64s(o, "sent", r->sent, "enqueued", r->enqueued, "written", r->written, "dropped", dropped,
           "dropped_by_us", dropped, "dropped_overflow", r->dropped_overflow, "dropped_removed",
           r->dropped_removed, "aborted", r->aborted, "unconfirmed", r->unconfirmed,
           "unconfirmed_bytes", r->unconfirmed_bytes, "send_errors", r->send_errors, "lagged",
           r->lagged, "delivered", r->delivered, (const char *)NULL);
  if (per_peer)
    put_u64s(o, "delivered_current", r->delivered_current, "max_seq", r->max_seq, "first_seq",
             r->first_seq, (const char *)NULL);
  put_u64s(o, "gaps", r->gaps, "duplicates", r->duplicates, "reorders", r->reorders, "stale",
           r->stale, "foreign", r->foreign, "rx_evicted", r->rx_evicted, "unexplained_gaps",
           unexplained, "incarnations", r->incarnations, (const char *)NULL);
  json_object_set_new(o, "incarnation_switches",
                      json_pack("{s:o, s:o, s:o}", "by_event", j_u64(r->inc_by_event), "by_seq",
                                j_u64(r->inc_by_seq), "seq_unexplained",
                                j_u64(r->inc_seq_unexplained)));
  json_object_set_new(o, "latency_us", j_latency(lat));
  put_u64s(o, "reconnects", r->reconnects, "migrations", r->migrations, "detached", r->detached,
           "resumed", r->resumed, "retransmitted", r->retransmitted, "detach_ns_last",
           r->detach_ns_last, "detach_ns_max", r->detach_ns_max, "peer_restarts", r->peer_restarts,
           "bytes_out", r->bytes_out, "bytes_in", r->bytes_in, "ring_depth", r->ring_depth,
           (const char *)NULL);
  json_object_set_new(o, "events", j_events(r->ev, r->ev_aborted_lost));
  json_object_set_new(o, "integrity", json_string(stats_verdict_name(r->verdict)));
  return o;
}

/* The peer's incarnations as this replica saw them, keyed by their ordinal
 * ("1" the first seen): the finished ones it still remembers
 * (STATS_RX_HISTORY), then the current one. An object, not an array, so
 * that every report value has a path of keys. Under rx_mu. */
static json_t *j_incarnations(const stats_rx_t *rx) {
  json_t *o = json_object();
  stats_inc_t cur;
  stats_rx_current(rx, &cur);
  uint64_t first = rx->incarnations > rx->nhist ? rx->incarnations - rx->nhist : 1;
  for (size_t i = 0; i <= rx->nhist && rx->incarnations; i++) {
    const stats_inc_t *x = i < rx->nhist ? &rx->hist[i] : &cur;
    char key[24];
    snprintf(key, sizeof key, "%" PRIu64, first + i);
    json_object_set_new(o, key,
                        json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o}", "start",
                                  stats_inc_start_name(x->start), "first_seq", j_u64(x->first_seq),
                                  "max_seq", j_u64(x->max_seq), "delivered", j_u64(x->received),
                                  "gaps", j_u64(x->gaps), "duplicates", j_u64(x->duplicates),
                                  "reorders", j_u64(x->reorders)));
  }
  return o;
}

static json_t *report_build(const rp_drain_t *d) {
  json_t *peers = json_object();
  rp_row_t tot = {0};
  uint64_t tot_unexplained = 0;
  stats_lat_reset(&tmp_lat);
  size_t n = atomic_load(&rp.npeers);
  pthread_mutex_lock(&rp.rx_mu);
  for (size_t i = 0; i < n; i++) {
    rp_peer_t *p = rp.peers[i];
    rp_row_t r;
    peer_row(p, &r);
    uint64_t unexplained = r.gaps > r.rx_evicted ? r.gaps - r.rx_evicted : 0;
    json_t *o = report_row(&r, &p->lat_run, unexplained, true);
    json_object_set_new(o, "rx_incarnations", j_incarnations(&p->rx));
    json_object_set_new(o, "member", json_boolean(p->member));
    json_object_set_new(o, "peer_id", json_string(p->peer_id));
    json_object_set_new(peers, p->id, o);
    row_add(&tot, &r);
    tot_unexplained += unexplained;
    stats_lat_merge(&tmp_lat, &p->lat_run);
  }
  pthread_mutex_unlock(&rp.rx_mu);
  json_t *total = report_row(&tot, &tmp_lat, tot_unexplained, false);
  json_t *listen = json_array();
  for (int i = 0; i < rp.o.nlisten; i++)
    json_array_append_new(listen, json_string(rp.bound[i]));
  json_t *cfg =
      json_pack("{s:f, s:o, s:f, s:o, s:o, s:o}", "rate", rp.o.rate, "size", j_u64(rp.o.size),
                "duration_s", rp.o.duration_s, "stats_ms", j_u64(rp.o.stats_ms), "drain_ms",
                j_u64(rp.o.drain_ms), "ring_capacity", j_u64(rp.ring_cap));
  json_t *drain = json_pack("{s:o, s:b, s:s, s:b, s:s}", "ms", j_u64(d->ns / NS_PER_MS), "complete",
                            d->complete, "reason", d->reason, "flushed", d->flushed, "flush",
                            d->flush_rc == 0 ? "ok" : bftnet_err_name(d->flush_rc));
  uint64_t unattributed[RP_EV_N];
  for (int k = 0; k < RP_EV_N; k++)
    unattributed[k] = atomic_load(&rp.ev_unattributed[k]);
  json_t *rep = json_pack(
      "{s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:s, s:o, s:o, s:o, s:o, s:o}", "schema",
      "bftnet-replica-report/1", "id", rp.o.id, "peer_id", rp.self_peer, "listen", listen, "config",
      cfg, "elapsed_ms", j_u64(ms_since_start()), "send_ms",
      j_u64((rp.send_end_ns - rp.t0) / NS_PER_MS), "drain", drain, "integrity",
      stats_verdict_name(tot.verdict), "unknown_sender", j_u64(atomic_load(&rp.rx_unknown)),
      "events_unattributed", j_events(unattributed, 0), "peers", peers, "total", total, "counters",
      j_counters(true));
  json_object_set_new(rep, "event_lines_suppressed", j_u64(atomic_load(&rp.ev_lines_suppressed)));
  return rep;
}

static int report_write(json_t *rep) {
  if (!rp.o.report) {
    json_t *line = json_pack("{s:s, s:s, s:o}", "type", "report", "id", rp.o.id, "report", rep);
    emit_line(line);
    return 0;
  }
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", rp.o.report);
  int rc = json_dump_file(rep, tmp, JSON_INDENT(2) | JSON_REAL_PRECISION(12));
  json_decref(rep);
  if (rc != 0 || rename(tmp, rp.o.report) != 0) {
    logf_("report %s: cannot write: %s", rp.o.report, strerror(errno));
    unlink(tmp);
    return -1;
  }
  return 0;
}

/* ------------------------------------------------------------- control */

typedef enum rp_ev { RP_EV_TIMEOUT, RP_EV_HUP, RP_EV_STOP } rp_ev_t;

/* Main thread: waits for a signal until `until` (CLOCK_MONOTONIC ns). */
static rp_ev_t wait_signal(const sigset_t *set, uint64_t until) {
  uint64_t now = now_ns(), d = until > now ? until - now : 0;
  struct timespec ts = {.tv_sec = (time_t)(d / NS_PER_S), .tv_nsec = (long)(d % NS_PER_S)};
  int sig = sigtimedwait(set, NULL, &ts);
  if (sig == SIGHUP) return RP_EV_HUP;
  if (sig == SIGINT || sig == SIGTERM) return RP_EV_STOP;
  return RP_EV_TIMEOUT; /* EAGAIN or EINTR */
}

static uint64_t tick_after(uint64_t t) {
  if (rp.o.stats_ms == 0) return UINT64_MAX;
  uint64_t next = t + rp.o.stats_ms * NS_PER_MS, now = now_ns();
  return next > now ? next : now + rp.o.stats_ms * NS_PER_MS; /* fell behind: skip */
}

/* Waits until `until` for a signal and handles it, prints a stats line
 * when one is due. Returns true on SIGTERM/SIGINT. */
static bool control_step(const sigset_t *set, uint64_t until, uint64_t *tick) {
  rp_ev_t ev = wait_signal(set, until);
  if (ev == RP_EV_STOP) {
    logf_("signal: %s", rp.send_end_ns ? "draining cut short" : "stopping");
    return true;
  }
  if (ev == RP_EV_HUP) {
    logf_("SIGHUP: reloading %s", rp.o.members);
    members_apply();
  }
  if (now_ns() >= *tick) {
    stats_line();
    *tick = tick_after(*tick);
  }
  return false;
}

static void run_sending(const sigset_t *set, uint64_t *tick) {
  uint64_t end = rp.o.duration_s > 0 ? rp.t0 + (uint64_t)(rp.o.duration_s * 1e9) : UINT64_MAX;
  while (now_ns() < end)
    if (control_step(set, *tick < end ? *tick : end, tick)) return;
}

/* After sending stopped: until bftnet_flush says our peers confirmed
 * everything we sent and nothing arrived for RP_QUIET_NS (our peers have
 * stopped too), or --drain-ms, or another SIGTERM/SIGINT. */
static const char *run_drain(const sigset_t *set, uint64_t *tick, rp_drain_t *d) {
  uint64_t start = now_ns(), deadline = start + rp.o.drain_ms * NS_PER_MS;
  d->complete = d->flushed = false;
  d->flush_rc = BFTNET_ETIMEDOUT;
  for (;;) {
    uint64_t now = now_ns();
    uint64_t left_ms = deadline > now ? (deadline - now) / NS_PER_MS : 0;
    d->flush_rc = sends_flushed(left_ms < 5 ? (int)left_ms : 5);
    d->flushed = d->flush_rc == 0;
    uint64_t last = atomic_load(&rp.last_rx_ns);
    if (last < start) last = start;
    if (d->flushed && now_ns() - last >= RP_QUIET_NS) {
      d->complete = true;
      return "confirmed";
    }
    now = now_ns();
    if (now >= deadline) return "timeout";
    uint64_t until = now + 5 * NS_PER_MS;
    if (until > deadline) until = deadline;
    if (until > *tick) until = *tick;
    if (control_step(set, until, tick)) return "signal";
  }
}

/* --------------------------------------------------------------- options */

static void usage(void) {
  fprintf(stderr,
          "usage: bftnet-replica --id NODE_ID --key FILE --listen MULTIADDR [--listen ...]\n"
          "                      --members FILE [--rate MSGS_PER_S_PER_PEER] [--size BYTES]\n"
          "                      [--duration SECONDS] [--stats-ms MS] [--report FILE]\n"
          "                      [--drain-ms MS]\n"
          "  --rate      messages/s to each other member (default 1000; 0 = as fast as\n"
          "              the send rings take them)\n"
          "  --size      bytes per message, >= 16 (default 64)\n"
          "  --duration  seconds of sending (default: until SIGTERM/SIGINT)\n"
          "  --stats-ms  a JSON stats line on stdout this often (default 1000; 0 = none)\n"
          "  --report    the final report (JSON; default: a \"report\" line on stdout)\n"
          "  --drain-ms  after sending, longest wait for the peers to confirm everything\n"
          "              we sent (bftnet_flush) and to stop sending (default 5000)\n"
          "SIGHUP reloads --members. See docs/REPORT.md.\n");
  exit(2);
}

static double parse_num(const char *s, double lo, double hi) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !(v >= lo && v <= hi)) {
    fprintf(stderr, "bftnet-replica: bad number '%s' (want %.15g..%.15g)\n", s, lo, hi);
    usage();
  }
  return v;
}

static void parse_opts(int argc, char **argv, rp_opts_t *o) {
  static const struct option lo[] = {
      {"id", required_argument, 0, 'i'},       {"key", required_argument, 0, 'k'},
      {"listen", required_argument, 0, 'l'},   {"members", required_argument, 0, 'm'},
      {"rate", required_argument, 0, 'r'},     {"size", required_argument, 0, 's'},
      {"duration", required_argument, 0, 'd'}, {"stats-ms", required_argument, 0, 'S'},
      {"report", required_argument, 0, 'R'},   {"drain-ms", required_argument, 0, 'D'},
      {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
  *o = (rp_opts_t){.rate = 1000, .size = 64, .stats_ms = 1000, .drain_ms = 5000};
  int c;
  while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    switch (c) {
    case 'i':
      o->id = optarg;
      break;
    case 'k':
      o->key = optarg;
      break;
    case 'm':
      o->members = optarg;
      break;
    case 'R':
      o->report = optarg;
      break;
    case 'l':
      if (o->nlisten == RP_MAX_LISTEN) usage();
      o->listen[o->nlisten++] = optarg;
      break;
    case 'r':
      o->rate = parse_num(optarg, 0, 1e9);
      break;
    case 's':
      o->size = (size_t)parse_num(optarg, STATS_PAYLOAD_HDR, 1u << 30);
      break;
    case 'd':
      o->duration_s = parse_num(optarg, 0.001, 1e9);
      break;
    case 'S':
      o->stats_ms = (uint32_t)parse_num(optarg, 0, 86400000);
      break;
    case 'D':
      o->drain_ms = (uint32_t)parse_num(optarg, 0, 86400000);
      break;
    default:
      usage();
    }
  }
  if (optind != argc || !o->id || !o->key || !o->members || o->nlisten == 0) usage();
  if (strlen(o->id) >= BFTNET_NODE_ID_MAX) usage();
}

/* ------------------------------------------------------------------ main */

/* Key, node, listeners. Returns 0 or logs and returns an error. */
static int node_start(bftnet_key_t **key) {
  int rc = bftnet_key_load(rp.o.key, key);
  if (rc != 0) return logf_("key %s: %s", rp.o.key, bftnet_strerror(rc)), rc;
  bftnet_config_t cfg;
  bftnet_config_init(&cfg);
  cfg.key = *key;
  cfg.on_event = on_event;
  if (rp.o.size > cfg.max_message_size)
    return logf_("--size %zu above the message limit %u", rp.o.size, cfg.max_message_size), -1;
  rp.ring_cap = cfg.ring_capacity;
  rc = bftnet_new(&rp.net, &cfg);
  if (rc != 0) return logf_("start: %s", bftnet_strerror(rc)), rc;
  bftnet_peer_id(rp.net, rp.self_peer, sizeof rp.self_peer);
  json_t *addrs = json_array();
  for (int i = 0; i < rp.o.nlisten; i++) {
    rc = bftnet_listen(rp.net, rp.o.listen[i], rp.bound[i], sizeof rp.bound[i]);
    if (rc != 0) {
      json_decref(addrs);
      return logf_("listen %s: %s", rp.o.listen[i], bftnet_strerror(rc)), rc;
    }
    json_array_append_new(addrs, json_string(rp.bound[i]));
  }
  logf_("peer ID %s, listening on %s%s", rp.self_peer, rp.bound[0],
        rp.o.nlisten > 1 ? ", ..." : "");
  emit_line(json_pack("{s:s, s:s, s:s, s:o}", "type", "listen", "id", rp.o.id, "peer_id",
                      rp.self_peer, "addrs", addrs));
  return 0;
}

/* Stops sending (joins the sender), drains, tells the receiver to stop. */
static rp_drain_t finish(const sigset_t *set, uint64_t *tick, pthread_t tx) {
  rp.send_end_ns = now_ns();
  atomic_store(&rp.stop_sending, true);
  pthread_join(tx, NULL);
  rp.phase = "draining";
  rp_drain_t d;
  d.reason = run_drain(set, tick, &d);
  d.ns = now_ns() - rp.send_end_ns;
  logf_("drain: %s after %" PRIu64 " ms (bftnet_flush: %s)", d.reason, d.ns / NS_PER_MS,
        d.flush_rc == 0 ? "everything confirmed" : bftnet_err_name(d.flush_rc));
  rp.phase = "done";
  atomic_store(&rp.stop_recv, true);
  return d;
}

int main(int argc, char **argv) {
  parse_opts(argc, argv, &rp.o);
  /* Before any thread exists: every thread inherits the mask, and only the
   * main thread takes these signals, with sigtimedwait. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);

  bftnet_key_t *key = NULL;
  int code = 1;
  pthread_t tx, rx;
  bool rx_started = false, tx_started = false;
  if (node_start(&key) != 0) goto out;
  rp.t0 = rp.last_tick_ns = now_ns();
  atomic_store(&rp.t0_pub, rp.t0);
  if (pthread_create(&rx, NULL, receiver_main, NULL) != 0) goto out;
  rx_started = true;
  if (members_apply() != 0) goto out_threads;
  if (pthread_create(&tx, NULL, sender_main, NULL) != 0) goto out_threads;
  tx_started = true;
  uint64_t tick = tick_after(rp.t0);
  run_sending(&set, &tick);
  tx_started = false;
  rp_drain_t d = finish(&set, &tick, tx);
  pthread_join(rx, NULL);
  rx_started = false;
  lib_refresh_all();
  if (rp.o.stats_ms) stats_line();
  code = report_write(report_build(&d)) == 0 ? 0 : 1;
out_threads:
  atomic_store(&rp.stop_sending, true);
  atomic_store(&rp.stop_recv, true);
  if (tx_started) pthread_join(tx, NULL);
  if (rx_started) pthread_join(rx, NULL);
out:
  bftnet_free(rp.net);
  if (key) bftnet_key_free(key);
  for (size_t i = 0; i < atomic_load(&rp.npeers); i++)
    free(rp.peers[i]);
  return code;
}
