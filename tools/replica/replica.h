/*
 * replica.h — bftnet-replica's own header: its limits, its types, the one
 * state its threads share (`rp`) and the functions its files share.
 *
 * Files, bottom to top (a file calls only those below it by name):
 *   replica.c  the state, the clock, the log, a row's receive side
 *   classes.c  --classes: each class's load, integrity, latency, counters
 *   peers.c    the peer table, bftnet's counters per peer, the report rows
 *   lines.c    the JSON lines on stdout and the stats line
 *   metrics_http.c  --metrics-listen: /metrics over HTTP (libmicrohttpd)
 *   events.c   bftnet's event callback (loop thread)
 *   load.c     the sender thread
 *   check.c    the receiver thread: integrity and latency
 *   members.c  the membership file (start, SIGHUP)
 *   report.c   the final report
 *   main.c     options, the node, the main thread's control loop, main()
 */
#ifndef BFTNET_TOOLS_REPLICA_H
#define BFTNET_TOOLS_REPLICA_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "bftnet.h"
#include "classmix.h"
#include "jsonx.h"
#include "stats.h"
#include "text.h"

#define RP_MAX_PEERS      4096               /* node IDs ever seen (members are at most 1024) */
#define RP_SLOTS          (2 * RP_MAX_PEERS) /* open-addressing table, power of two */
#define RP_MAX_LISTEN     16
#define RP_RECV_BATCH     256
#define RP_QUIET_NS       (500 * NS_PER_MS) /* drain: no delivery for this long */
#define RP_REMOVE_WAIT_NS (500 * NS_PER_MS) /* SIGHUP: let a removed peer's ring drain */
#define RP_MIN_SLEEP_NS   (250 * NS_PER_US) /* sender: never wakes more often */
#define RP_MAX_SLEEP_NS   (100 * NS_PER_MS) /* ... nor less often (stop, new members) */
#define NS_PER_US         UINT64_C(1000)
#define NS_PER_MS         UINT64_C(1000000)
#define NS_PER_S          UINT64_C(1000000000)

_Static_assert((RP_SLOTS & (RP_SLOTS - 1)) == 0, "slot table is a power of two");

typedef struct rp_opts {
  const char *id, *key, *members, *report;
  const char *metrics_listen; /* HOST:PORT, or NULL */
  const char *listen[RP_MAX_LISTEN];
  int nlisten;
  double rate;       /* messages/s per peer; 0 = keep the rings near full */
  size_t size;       /* bytes per message, >= STATS_PAYLOAD_HDR */
  double duration_s; /* 0 = until signalled */
  uint32_t stats_ms; /* 0 = no stats lines */
  uint32_t drain_ms;
  classmix_t mix; /* --classes; mix.n == 0 without it */
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
#define RP_EV_LINES_PER_S 20                   /* "event" lines on stdout, at most */
extern const char *const rp_ev_names[RP_EV_N]; /* "migrated", ..., "peer_restarted" */
_Static_assert(BFTNET_EV_PEER_RESTARTED - BFTNET_EV_MIGRATED == 5, "event numbering");

/* The receive side of a row, the same for a peer and for one class of a
 * peer (or a sum of either): what the sequence tracker saw of the sender,
 * and what bftnet counted lost on receipt from it (rx_evicted: its
 * TentativeReceiver's evictions before it was a member). */
// clang-format off
#define RP_RECV_FIELDS(X)                                                                         \
  X(delivered_current) X(max_seq) X(first_seq) X(gaps) X(duplicates) X(reorders) X(stale)        \
  X(rx_evicted) X(incarnations) X(inc_by_event) X(inc_by_seq) X(inc_seq_unexplained)
// clang-format on

typedef struct rp_recv {
#define RP_X_(f) uint64_t f;
  RP_RECV_FIELDS(RP_X_)
#undef RP_X_
} rp_recv_t;

/* One class's row of a peer (--classes), or a sum of them. */
// clang-format off
#define RP_CROW_FIELDS(X)                                                                         \
  X(sent) X(enqueued) X(written) X(dropped) X(superseded) X(aborted) X(unconfirmed)              \
  X(ring_depth) X(send_errors) X(lagged) X(delivered) X(foreign)
// clang-format on

typedef struct rp_crow {
#define RP_X_(f) uint64_t f;
  RP_CROW_FIELDS(RP_X_)
#undef RP_X_
  rp_recv_t recv;
  stats_verdict_t verdict;
} rp_crow_t;

/* One traffic class of a peer (--classes): its own sequence numbers. */
typedef struct rp_cls {
  /* sender thread only */
  uint64_t pace_base_ns, pace_issued, over_ns, key_next;
  /* written by the sender, read by anyone */
  atomic_uint_fast64_t sent, send_errors, lagged;
  /* main thread only: bftnet_class_stats of the current incarnation of
   * the member, and the finished ones summed (dropped includes superseded
   * and what a removal left queued) */
  bftnet_class_stats_t lib_cur;
  struct {
    uint64_t enqueued, written, dropped, superseded, aborted, tentative_evicted;
  } base;
  uint64_t tick_delivered;
  /* receiver thread, under rp.rx_mu */
  stats_rx_t rx;
  uint64_t delivered, foreign;
  stats_lat_t lat_run, lat_tick;
} rp_cls_t;

typedef struct rp_peer {
  char id[BFTNET_NODE_ID_MAX];
  char peer_id[BFTNET_PEER_ID_MAX]; /* main thread */
  atomic_int active;                /* the sender sends to it */
  /* sender thread only */
  uint64_t pace_base_ns, pace_issued; /* pace_base_ns: 0 = not pacing */
  /* written by the sender, read by anyone */
  atomic_uint_fast64_t sent; /* = the last sequence number handed to bftnet_send */
  atomic_uint_fast64_t send_errors, lagged;
  /* written by the loop thread's event callback, read by anyone */
  atomic_uint_fast64_t ev[RP_EV_N];
  atomic_uint_fast64_t ev_aborted_lost; /* sum of BFTNET_EV_ABORTED's lost */
  /* main thread only */
  bool member;                 /* in the current membership */
  uint64_t removals;           /* times it was removed from our membership */
  bool lib_live;               /* lib_cur is the current incarnation's snapshot */
  rp_lib_t lib_base;           /* finished incarnations */
  bftnet_peer_stats_t lib_cur; /* current incarnation, last snapshot */
  uint64_t tick_sent, tick_delivered;
  /* receiver thread, under rp.rx_mu */
  stats_rx_t rx; /* sequence numbers, per incarnation of the peer */
  uint64_t delivered, foreign;
  stats_lat_t lat_run, lat_tick;
  rp_cls_t *cls; /* --classes: rp.o.mix.n of them; NULL without */
} rp_peer_t;

/* One report/stats row: everything known about a peer, or a total (the
 * sum of the peers' rows). The X-macro lists the summed counters. */
// clang-format off
#define RP_ROW_FIELDS(X)                                                                          \
  X(sent) X(enqueued) X(written) X(dropped_overflow) X(dropped_removed) X(aborted)               \
  X(unconfirmed) X(unconfirmed_bytes) X(send_errors) X(lagged) X(delivered) X(foreign)           \
  X(reconnects) X(migrations) X(detached) X(resumed) X(retransmitted) X(peer_restarts)          \
  X(bytes_out) X(bytes_in) X(ring_depth) X(connected) X(removals)
// clang-format on

typedef struct rp_row {
#define RP_X_(f) uint64_t f;
  RP_ROW_FIELDS(RP_X_)
#undef RP_X_
  rp_recv_t recv;
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

/* The whole replica: one instance, `rp`, defined in replica.c. */
struct rp {
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
  stats_lat_t totals_lat; /* main thread: the totals' latency, per line or report */
  stats_lat_t cls_lat[BFTNET_MAX_CLASSES]; /* main thread: the same per class */
  rp_crow_t cls_tot[BFTNET_MAX_CLASSES];   /* main thread: the classes' totals */
};

extern struct rp rp;

/* ------------------------------------------------------------ replica.c */

uint64_t rp_now_ns(void); /* CLOCK_MONOTONIC */
void rp_sleep_until(uint64_t t);
/* A line on stderr: "bftnet-replica ID: ..." */
void rp_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* ms since the node started (any thread). */
uint64_t rp_ms_since_start(void);
/* The receive side of a peer's or a class's row from its sequence tracker
 * and bftnet's evictions; returns the tracker's verdict. Under rx_mu. */
stats_verdict_t rp_recv_fill(const stats_rx_t *rx, uint64_t rx_evicted, rp_recv_t *out);
void rp_recv_add(rp_recv_t *t, const rp_recv_t *r);

/* ------------------------------------------------------------ classes.c */

/* Fills out[0..mix.n) and points cfg at it. 0, or -1 (said). */
int classes_config(bftnet_config_t *cfg, bftnet_class_t *out);
/* Main thread, for a new peer. 0 or -1 (out of memory). */
int classes_peer_init(rp_peer_t *p);
/* Sender thread: one round of every class to p (active: p is a member).
 * Returns when the next message is due. */
uint64_t classes_send(rp_peer_t *p, uint8_t *buf, uint64_t now, bool active);
size_t classes_max_size(void);
/* Receiver thread, under rx_mu: one message from p. */
void classes_rx(rp_peer_t *p, const bftnet_msg_t *m, uint64_t now);
/* Main thread: bftnet_class_stats of a member; the member left bftnet. */
void classes_refresh(rp_peer_t *p);
void classes_retire(rp_peer_t *p);
/* Main thread, under rx_mu: class k of p; the classes' sums into p's row. */
void classes_row(rp_peer_t *p, size_t k, rp_crow_t *r);
void classes_row_sum(rp_peer_t *p, rp_row_t *r);
void classes_crow_add(rp_crow_t *t, const rp_crow_t *r);

/* -------------------------------------------------------------- peers.c */

/* Any thread. NULL when the node ID was never seen. */
rp_peer_t *peers_find(const char *id);
/* Main thread only (the single writer): finds or adds. NULL when the
 * table is full. */
rp_peer_t *peers_get(const char *id);
/* Main thread: bftnet's counters of a member (of every member). */
void peers_refresh(rp_peer_t *p);
void peers_refresh_all(void);
/* The member left bftnet: its counters go into the finished ones. */
void peers_retire(rp_peer_t *p);
/* Main thread, under rx_mu: everything known about p; and a total. */
void peers_row(rp_peer_t *p, rp_row_t *r);
void peers_row_add(rp_row_t *t, const rp_row_t *r);
/* Main thread: under rx_mu, fn(p, p's row, ud) for every peer, and *tot
 * the sum of the rows. */
typedef void (*peers_row_fn)(rp_peer_t *p, const rp_row_t *r, void *ud);
void peers_rows(peers_row_fn fn, void *ud, rp_row_t *tot);

/* -------------------------------------------------------------- lines.c */

/* Prints obj as one line on stdout, whole, and takes its reference. Any
 * thread. */
void lines_emit(json_t *obj);
/* Adds named counters in order: lines_put_u64s(o, "a", x, "b", y,
 * (const char *)NULL); every value must be a uint64_t. */
void lines_put_u64s(json_t *o, ...);
json_t *lines_latency(const stats_lat_t *l);
/* bftnet's node counters: all of them, or those a stats line carries. */
json_t *lines_counters(bool all);
json_t *lines_events(const uint64_t ev[RP_EV_N], uint64_t aborted_lost);
/* Adds bftnet's node-wide totals of class k (bftnet_class_totals: what was
 * lost on receipt outside any member's counters; class 0 without
 * --classes) to o: discarded_removed, tentative_evicted. */
void lines_class_totals(json_t *o, size_t k);
/* The stats line (main thread). */
void lines_stats(void);

/* ------------------------------------------------------- metrics_http.c */

/* Serves GET /metrics on hostport (HOST:PORT, [V6]:PORT; port 0: any) on a
 * thread of its own, and prints a "metrics" line with the bound port.
 * 0 or -1 (said). After the node started; stop before it is freed. */
int metrics_http_start(const char *hostport);
void metrics_http_stop(void);

/* ------------------------------------------------------------- events.c */

/* bftnet's event callback (bftnet_config_t.on_event). */
void events_on_event(const bftnet_event_t *ev, void *user);

/* --------------------------------------------------------------- load.c */

void *load_main(void *arg);

/* -------------------------------------------------------------- check.c */

void *check_main(void *arg);

/* ------------------------------------------------------------ members.c */

/* Loads the membership file into bftnet and the peer table, and prints a
 * "membership" line. On error nothing changes. Main thread. */
int members_apply(void);

/* ------------------------------------------------------------- report.c */

/* The report; writes --report (or prints a "report" line) and takes rep's
 * reference. 0 or -1 (said). */
json_t *report_build(const rp_drain_t *d);
int report_write(json_t *rep);

#endif
