/*
 * node_internal.h — the facade's structures and what its files share.
 *
 * Files, each calling only the ones below it:
 *   lifecycle.c lifecycle (bftnet_new/stop/free), the loop thread, config
 *   ops.c       bftnet_listen, bftnet_dial, bftnet_ping
 *   send.c      bftnet_send, bftnet_broadcast, bftnet_flush
 *   recv.c      bftnet_recv*, bftnet_msg_release, bftnet_recv_fd
 *   metrics.c   bftnet_metrics_text: the Prometheus text exposition
 *   stats.c     bftnet_peer_stats, bftnet_counter, bftnet_class_stats,
 *               bftnet_class_totals
 *   members.c   bftnet_connect: members (a Dispatcher + a Receiver each),
 *               the callbacks dispatcher/ and receiver/ registered, wakes
 *   health.c    each member's health (round trips, last heard, its
 *               connection), published for any thread on each tick
 *   snapshot.c  the member snapshot: epoch records, publication
 *   events.c    events for the application, bftnet_event_name
 *   cmd.c       the command queue; which thread is the loop's
 *   classes.c   the traffic classes: defaults, the check, the node's list
 *
 * Threads: application threads touch only the member snapshot (read under
 * an epoch section), the members' send rings and inbound queues, and the
 * seam's wakeups (wake_send). Everything else belongs to the loop thread.
 * The loop is reached only through the seam (core.h): the node includes no
 * libuv; its own thread, mutex and condition variable are pthreads.
 */
#ifndef BFTNET_NODE_INTERNAL_H
#define BFTNET_NODE_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ck_epoch.h>
#include <ck_pr.h>
#include <ck_spinlock.h>

#include "dispatcher.h"
#include "membership.h"
#include "migration.h"
#include "net.h"
#include "receiver.h"

/* Bytes of freed message buffers a node keeps for reuse (core.h, "pool"):
 * part of its fixed memory, not of any member's. */
#define NODE_POOL_CACHE (4u * 1024u * 1024u)
/* TCP_NOTSENT_LOWAT with two or more traffic classes unless configured:
 * the kernel holds at most this much (plus one segment) not yet sent, so
 * an urgent message is not queued behind a deep socket buffer; two Noise
 * frames keep the socket fed between two turns of the loop. */
#define NODE_NOTSENT_LOWAT_DEFAULT (32u * 1024u)
/* The in-flight cap's floor with classes (bftnet_config_t.class_inflight_min):
 * a quarter of a piece per quarter millisecond, the pace the cap started
 * from when it was re-checked every millisecond with a floor of one piece
 * (NET_PACE_PIECE); from there it grows with the measured rate. */
#define NODE_INFLIGHT_MIN_DEFAULT (4u * 1024u)

typedef struct cmd cmd_t;
typedef void (*cmd_fn)(bftnet_t *b, cmd_t *c);

/* A public call's work, run on the loop thread (cmd.c). */
struct cmd {
  cmd_fn run;
  cmd_t *next;
  bool done;
  int rc;
  maddr_t addr;
  char *out;
  size_t cap;
  uint32_t timeout_ms;
  uint64_t rtt_ns;
  char peer[BFTNET_PEER_ID_MAX];
  mb_table_t table; /* bftnet_connect: the new membership, validated */
};

/* A traffic class as this node runs it (classes.c). */
typedef struct node_class {
  bftnet_class_t c; /* c.name points at name */
  char name[BFTNET_CLASS_NAME_MAX];
  char proto[BN_MS_MAX_MSG / 8]; /* its protocol ID inside the logical stream */
} node_class_t;

/* An epoch record for application threads; all are kept on a list so
 * bftnet_free can release them (ck_epoch recycles them between calls). */
typedef struct epoch_rec {
  ck_epoch_record_t rec; /* first: ck hands back the ck_epoch_record_t */
  struct epoch_rec *next;
} epoch_rec_t;

/* How often a member's health is published (health.c): on each of
 * migration's ticks. */
#define NODE_HEALTH_MS MIG_TICK_MS

/* A member's health as the loop last published it (health.c): atomic
 * fields (ck_pr) that any thread reads, the address under its lock. */
typedef struct mbr_health {
  uint64_t rtt_last, rtt_srtt, rtt_max;          /* ns; 0: no round trip yet */
  uint64_t heard_ns;                             /* the seam's clock; 0: never */
  uint64_t conn_up_ns;                           /* its current connection's; 0: none */
  int conn_outbound;                             /* 1, 0, or -1 with no connection */
  int conn_path;                                 /* the membership address it dialed (0 most
                                                    preferred); -1 inbound, unlisted or none */
  uint64_t inflight, inflight_max, inflight_cap; /* bytes; its current connection's */
  uint64_t conn_seq;                             /* loop only: whose address is below */
  ck_spinlock_fas_t addr_lock;
  char addr[BFTNET_ADDR_MAX];
} mbr_health_t;

/* One member (not ourselves): its Dispatcher and its Receiver. */
typedef struct mbr {
  /* Written at creation, then read-only: application threads read them. */
  char node_id[BFTNET_NODE_ID_MAX];
  peerid_t peer;
  disp_t d;             /* the send side: bftnet_send pushes into its ring (any thread) */
  rx_t r;               /* the receive side: bftnet_recv pops its queue (any thread) */
  mig_peer_stats_t pub; /* atomic copies of the pair's migration stats */
  mbr_health_t health;  /* published by health.c */
  bftnet_t *b;
} mbr_t;

/* An immutable view of the membership, published atomically. */
typedef struct msnap {
  size_t n;
  mbr_t **m;    /* sorted by node_id */
  disp_t **d;   /* d[i] is m[i]'s dispatcher */
  uint64_t ver; /* 1, 2, ...: broadcasts carry it (the log skips them for later members) */
  char self_id[BFTNET_NODE_ID_MAX];
} msnap_t;

struct bftnet {
  bftnet_config_t cfg;
  bn_logger_t log; /* this node's level and callback; every layer logs through it */
  node_class_t cls[BFTNET_MAX_CLASSES]; /* written by bftnet_new, then read-only */
  unsigned ncls;
  uint32_t all_classes;                       /* bit i for each class i */
  const char *protos[BFTNET_MAX_CLASSES];     /* cls[i].proto */
  bftnet_class_t classes[BFTNET_MAX_CLASSES]; /* cls[i].c, as one array for the layers below */
  bool own_thread;    /* no cfg.loop: the transport owns the loop, this thread runs it */
  bool ext_transport; /* the caller's transport (node__new_with_transport): not freed here */
  pthread_t thread;
  bn_twake_t *async; /* commands */
  bn_twake_t *wake;  /* sends and pops */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  cmd_t *queue_head, *queue_tail;
  cmd_t *stop_cmd; /* completed once every handle has closed */
  bn_transport_t *t;
  net_t *net;
  mig_node_t *ml; /* logical streams (migration) */
  bn_counters_t counters;
  bn_pool_t *pool;   /* message buffers up to 64 KiB, both directions */
  disp_ctx_t dctx;   /* the send side's node-wide state (the broadcast log) */
  rx_ctx_t rctx;     /* the receive side's node-wide state (TentativeReceivers) */
  uint64_t snap_ver; /* loop: the last snapshot's version */
  uint64_t serial;   /* this node's unique number (epoch record caches) */
  uint64_t activity; /* loop thread only: counts wakes (busy polling; reads: rctx.activity) */
  int stopped;       /* atomic */
  bool loop_done;

  /* Members. */
  ck_epoch_t epoch;
  ck_epoch_record_t loop_rec;
  epoch_rec_t *recs; /* atomic push-only list of every record allocated */
  msnap_t *snap;     /* atomic pointer */
  mb_table_t table;  /* loop: the membership last applied */
  /* eventfd: readable when messages may be waiting. Written (one syscall
   * per loop turn that delivers) only while it is needed: a thread sleeps
   * in bftnet_recv (efd_waiters, atomic), or the application polls it
   * (efd_exported, atomic: it asked for it with bftnet_recv_fd). */
  int efd;
  int efd_waiters;
  int efd_exported;
  /* A thread that takes some classes only (bftnet_recv_classes) sleeps on
   * theirs, one eventfd per class (with two or more classes, else -1):
   * written only while such a thread waits (cls_waiters, atomic), so that a
   * thread of the votes is not woken by, nor spins behind, the blocks. */
  int cls_efd[BFTNET_MAX_CLASSES];
  int cls_waiters;
  uint32_t rr;      /* atomic: round-robin cursor for bftnet_recv */
  uint32_t rx_turn; /* atomic: bftnet_recv calls, for the classes' minimum share */
  /* bftnet_recv's order of the classes: grp[0..ngrp) are groups of equal
   * priority, most urgent first, each order[grp_start[g], grp_start[g+1]). */
  uint8_t order[BFTNET_MAX_CLASSES];
  uint8_t grp_start[BFTNET_MAX_CLASSES + 1];
  unsigned ngrp;
};

/* ---------------------------------------------------------------- lifecycle.c */

/* bftnet_new over a transport the caller made and drives (a simulated
 * world): no loop thread, like cfg.loop: every call comes from the thread
 * that runs t, and blocking calls turn t's loop (run) until they complete.
 * t is borrowed until bftnet_free, which does not free it. For tests. */
int node__new_with_transport(bftnet_t **out, const bftnet_config_t *cfg, bn_transport_t *t);

/* ------------------------------------------------------------- classes.c */

/* The class list of cfg: 0, or BFTNET_EBADCLASS / BFTNET_EINVAL with the
 * reason in err. */
int node__classes_check(const bftnet_config_t *cfg, char *err, size_t cap);
/* After the check: b->cls, b->ncls and b->protos from b->cfg (one implicit
 * class without configuration). */
void node__classes_resolve(bftnet_t *b);
/* The per-stream receive window (and retransmit window) the node runs. */
uint32_t node__classes_window(const bftnet_t *b);
/* TCP_NOTSENT_LOWAT for the node's sockets (0: leave the kernel's). */
uint32_t node__classes_lowat(const bftnet_t *b);
uint32_t node__classes_inflight_min(const bftnet_t *b);

/* ----------------------------------------------------------------- cmd.c */

/* Any thread but the loop's: runs c on the loop thread and waits for it to
 * complete; its result, or BFTNET_ECLOSED once the loop has ended. */
int node__cmd_call(bftnet_t *b, cmd_t *c);
/* Loop thread: completes a command: sets its result and wakes the caller
 * (once). */
void node__cmd_complete(bftnet_t *b, cmd_t *c, int rc);
/* The command queue's wakeup callback (ud: the node). */
void node__cmd_on_wake(void *ud);
/* The node whose own loop thread this is (set by lifecycle.c's loop thread;
 * NULL elsewhere, and on an application's loop, cfg.loop). */
extern _Thread_local bftnet_t *node__cmd_loop_node;
/* How many application callbacks (on_event, on_message) the calling thread
 * is inside of: bumped around each call (events.c, members.c). */
extern _Thread_local unsigned node__cmd_cb_depth;
/* True where a blocking call would block b's loop from inside: on b's own
 * loop thread (everything there is a callback), or, on the application's
 * loop (cfg.loop), inside on_event or on_message. Blocking calls then fail
 * with BFTNET_EINCALLBACK. (The application's own uv callbacks cannot be
 * told apart from its thread's other code: the header forbids them.) */
bool node__cmd_in_callback(const bftnet_t *b);

/* Writes a one-line error text into errbuf (NULL or errcap 0: nothing). */
__attribute__((format(printf, 3, 4))) static inline void node_errf(char *errbuf, size_t errcap,
                                                                   const char *fmt, ...) {
  if (!errbuf || errcap == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, errcap, fmt, ap);
  va_end(ap);
}

/* -------------------------------------------------------------- events.c */
/* Loop thread. Events for the application (cfg.on_event), if it wants them. */

/* MEMBER_UNREACHABLE or, with actual set, MEMBER_WRONG_PEER: a dial to m
 * at addr failed with err (the dispatcher's on_dial_failed). */
void node__events_dial(bftnet_t *b, const mbr_t *m, int err, const maddr_t *addr,
                       const peerid_t *actual, uint32_t failures);

void node__events_member(bftnet_t *b, bftnet_event_type_t type, const mbr_t *m, unsigned cls,
                         bftnet_reason_t reason, int err);
/* CONNECTED or DISCONNECTED of any connection; node_id "" if no member's. */
void node__events_conn(bftnet_t *b, net_conn_t *c, bftnet_event_type_t type, const char *node_id,
                       bftnet_reason_t reason, int err);
/* A migration event of one of the member's streams (its class: the
 * stream's application protocol); also refreshes the member's migration
 * stats (node__events_publish_stats). */
void node__events_stream(mbr_t *m, mig_stream_t *ls, const mig_event_t *e, bool outbound,
                         uint64_t lost);
/* Copies the pair's migration statistics where bftnet_peer_stats reads them. */
void node__events_publish_stats(mbr_t *m);

/* ------------------------------------------------------------ snapshot.c */

/* Loop thread: the epoch, this node's serial, an empty snapshot. 0 or
 * BFTNET_ENOMEM (node__snapshot_destroy undoes what was done). */
int node__snapshot_init(bftnet_t *b);
/* After the loop ended and the snapshot's members were freed: frees the
 * snapshot and every epoch record. */
void node__snapshot_destroy(bftnet_t *b);
/* Loop thread: publishes a snapshot of `live` (n members, sorted here) as
 * version b->snap_ver + 1, and waits out the readers of the previous one.
 * 0 or BFTNET_ENOMEM (the previous one stays). */
int node__snapshot_publish(bftnet_t *b, mbr_t **live, size_t n, const char *self_id);
/* Any thread: enters an epoch section (the thread's cached record, or a
 * new one). NULL on ENOMEM. */
ck_epoch_record_t *node__snapshot_enter(bftnet_t *b, ck_epoch_section_t *sec);
/* Leaves it; a record that could not be cached goes back to the pool. */
void node__snapshot_exit(bftnet_t *b, ck_epoch_record_t *r, ck_epoch_section_t *sec);

/* Inside a section: the current snapshot. */
static inline msnap_t *node__snapshot_load(bftnet_t *b) {
  msnap_t *s = ck_pr_load_ptr(&b->snap);
  BN_TSAN_ACQUIRE(s);
  return s;
}

static inline int node__snapshot_cmp_key(const void *key, const void *elem) {
  return strcmp(key, (*(mbr_t *const *)elem)->node_id);
}

/* The member with this node ID, or NULL. */
static inline mbr_t *node__snapshot_find(const msnap_t *s, const char *node_id) {
  if (s->n == 0) return NULL;
  mbr_t **p = bsearch(node_id, s->m, s->n, sizeof *s->m, node__snapshot_cmp_key);
  return p ? *p : NULL;
}

/* ---------------------------------------------------------------- send.c */

/* Test hook: see send.c. */
void node__send_test_write_too_big(bftnet_t *b);

/* -------------------------------------------------------------- health.c */

/* A new member's health: nothing heard, no connection. */
void node__health_init(mbr_health_t *h);
/* Loop thread (migration's tick, every NODE_HEALTH_MS): publishes every
 * member's health. */
void node__health_publish(bftnet_t *b);
/* Any thread, m found in a snapshot it may read: the health fields of out
 * (rtt_*, since_heard_ns, conn_*). */
void node__health_fill(bftnet_t *b, mbr_t *m, bftnet_peer_stats_t *out);

/* ------------------------------------------------------------- members.c */

/* Loop thread (or before the loop thread starts): pool, snapshot, eventfd,
 * migration, the send and receive sides. */
int node__members_init(bftnet_t *b);
/* Loop thread: before net_close. Members and TentativeReceivers stop. */
void node__members_stop(bftnet_t *b);
/* After the loop ended: frees what node__members_init made. */
void node__members_destroy(bftnet_t *b);
/* Loop thread: net's connection events (any peer). */
void node__members_conn_event(bftnet_t *b, net_conn_t *c, bftnet_event_type_t type,
                              bftnet_reason_t reason, int err);
/* Loop thread: the node ID of the member with this peer ID, or NULL (net's
 * peer_name, for logs). */
const char *node__members_peer_name(bftnet_t *b, const peerid_t *peer);

/* --------------------------------------------------------------- stats.c */

/* Any thread, inside an epoch section, m from the snapshot: every field of
 * bftnet_peer_stats_t. */
void node__stats_fill(bftnet_t *b, mbr_t *m, bftnet_peer_stats_t *out);
/* Loop thread (the wake's callback, or deferred; ud: the node): sends
 * queued messages, credits streams whose queues have room again. */
void node__members_kick(void *ud);

#endif
