/*
 * sim.h — whole bftnet nodes in the simulated world (sim_world.h): what
 * one seed runs. The real node, membership, dispatcher, receiver,
 * migration and net code runs above the simulated seam; the applications
 * are simulated too (tasks that send, broadcast and receive on a seeded
 * schedule, every payload numbered per sender), and the checks follow
 * docs/ARCHITECTURE.md §0 from the applications' point of view.
 *
 *   sim_node.c    nodes: keys, start, crash, restart, membership views
 *   sim_app.c     the applications' tasks and the phases of a run
 *   sim_check.c   the books: what was sent to whom, what arrived; checks
 *   sim_faults.c  the fault schedule a seed draws, and applying it
 *   sim_main.c    bftnet-sim: seeds, replay, defect hunting, figures
 */
#ifndef BFTNET_SIM_H
#define BFTNET_SIM_H

#include <stdio.h>

#include "bftnet.h"
#include "sim_world.h"

#define SIM_MAX_NODES 7
#define SIM_MAX_INC   16 /* incarnations of one node in a run */
#define SIM_PORT      4000
#define SIM_MAX_CLS   4 /* traffic classes a seed configures, at most */

/* What the library did in a seed, summed over the nodes alive at its end
 * (what the faults made it exercise). */
#define SIM_COVERAGE(XX)                                                                           \
  XX(PING_TIMEOUT, "ping timeouts")                                                                \
  XX(HANDSHAKE_TIMEOUT, "handshake timeouts")                                                      \
  XX(DIAL_FAILED, "failed dials")                                                                  \
  XX(MIG_MIGRATED, "migrations")                                                                   \
  XX(MIG_RESUMED, "resumes")                                                                       \
  XX(MIG_ABORT_DETACH_TIMEOUT, "detach timeouts")                                                  \
  XX(MIG_PEER_RESTARTED, "peer restarts seen")                                                     \
  XX(MIG_RETRANSMITTED, "bytes retransmitted")                                                     \
  XX(TENTATIVE_PROMOTED, "promotions")                                                             \
  XX(TENTATIVE_EVICTED, "tentative evictions")                                                     \
  XX(BAD_MULTISTREAM, "strangers rejected (multistream)")                                          \
  XX(BAD_NOISE_HANDSHAKE, "strangers rejected (Noise)")                                            \
  XX(MIG_STALE_STREAMS, "older streams heard of late refused")                                     \
  XX(MIG_STALE_INCARNATION, "streams of replaced incarnations refused")                            \
  XX(INFLIGHT_WAITS, "in-flight cap waits")
enum {
#define SIM_XX_(name, text) SIM_COV_##name,
  SIM_COVERAGE(SIM_XX_)
#undef SIM_XX_
      SIM_COV_COUNT
};

/* One traffic class a seed configures (sim_class.c), and what its
 * application sends in it. */
typedef struct sim_cls {
  bftnet_class_t c; /* c.name points to name */
  char name[12];
  uint64_t send_gap_ns; /* mean time between sends of this class, per node */
  unsigned bcast_pct;
  unsigned size_kind; /* SIM_SIZE_* */
  unsigned keyed_pct; /* keep-latest: sends with a key (1..nkeys) */
  unsigned nkeys;
} sim_cls_t;

enum { SIM_SIZE_VOTE, SIM_SIZE_SMALL, SIM_SIZE_MIXED, SIM_SIZE_BLOCK };

/* What a seed draws besides its faults. */
typedef struct sim_params {
  int nnodes;        /* the universe: n0 .. n(nnodes-1) */
  int joiner;        /* a node that joins later (-1: all start as members) */
  bool two_addrs;    /* every node listens on both of its addresses */
  uint64_t t_faults; /* faults happen in [0, t_faults), all healed after */
  uint64_t t_post;   /* traffic goes on this long after the heal */
  /* Node configuration. */
  uint32_t ring_capacity, inbound_max_msgs, inbound_max_bytes, yamux_window;
  uint32_t ping_interval_ms, ping_timeout_ms, handshake_timeout_ms;
  uint32_t detach_timeout_ms, failback_ms, backoff_min_ms, backoff_max_ms;
  uint32_t tentative_max_msgs;
  /* The applications. */
  uint64_t send_gap_ns; /* mean time between sends, per node */
  unsigned bcast_pct;   /* broadcasts among the sends */
  unsigned big_pct;     /* payloads of 1-16 KiB */
  unsigned huge_pct;    /* payloads of 64-200 KiB */
  uint64_t recv_gap_ns; /* a normal reader's period */
  unsigned recv_batch;
  /* Traffic classes: 0 = none configured (one implicit class, bftnet
   * without classes: the run is what it was before classes existed), else
   * that many, the same list on every node, each with its own sender. */
  int nclasses;
  sim_cls_t cls[SIM_MAX_CLS];
  uint32_t class_min_share, class_window;
  /* The world. */
  size_t kernel_buf;
  unsigned defer_batch, coalesce_pct;
} sim_params_t;

enum { READ_NORMAL, READ_SLOW, READ_STOPPED };

/* One node of the universe, over its incarnations. */
typedef struct sim_node {
  int slot;
  char name[8];
  bftnet_key_t *key;
  char peer_id[BFTNET_PEER_ID_MAX];
  bool listen_addr[SIM_ADDRS]; /* addresses it listens on (when alive) */
  /* Its membership as its application last set it (it keeps it across
   * restarts): the members, and for each the order of its addresses
   * (0: a0 only, 1: a0 then a1, 2: a1 then a0). */
  uint32_t view;
  int addrv[SIM_MAX_NODES];
  uint32_t applied_view; /* what its current incarnation last applied */
  /* The current incarnation (inc = 0: never started). */
  int inc;
  bool alive;
  sim_tr_t *tr;
  bftnet_t *b;
  int rfd; /* bftnet_recv_fd: readable whenever a message waits (checked) */
  /* Its application. */
  int reader;
  bool sending;
  sim_ev_t *ev_send, *ev_recv;
  sim_ev_t *ev_cls[SIM_MAX_CLS]; /* each configured class's sender */
  uint64_t seq;                  /* the last sequence number it sent (this incarnation) */
  /* ABORTED/CLOSED events' `lost`, our stream of each class */
  uint64_t ev_aborted_lost[SIM_MAX_NODES][SIM_MAX_CLS];
  int strangers; /* strangers' connections it accepted (this incarnation) */
} sim_node_t;

typedef struct sim_fault sim_fault_t;
typedef struct sim_books sim_books_t;

typedef struct sim_run {
  uint64_t seed;
  int defect;
  bool verbose, verbose_events;
  sim_world_t *w;
  sim_rng_t rng_app, rng_cfg, rng_fault, rng_cls;
  sim_params_t p;
  sim_node_t nodes[SIM_MAX_NODES];
  sim_fault_t *faults; /* sorted by time */
  int nfaults, cap_faults, next_fault;
  sim_books_t *books;
  bool quiesced; /* the applications stopped sending */
  uint64_t t0;   /* simulated time at the start */
  int64_t lib_base, lib_peak_bound;
  /* Figures. */
  uint64_t msgs_sent, msgs_delivered, bytes_delivered, crashes, resets, holds, leaves;
  uint64_t cov[SIM_COV_COUNT], dropped, aborted, superseded; /* summed before the nodes stop */
  char phase[32];
} sim_run_t;

/* What a seed's run reports (through a pipe from the child that ran it). */
typedef struct sim_result {
  uint64_t seed, hash, sim_ns, events, msgs_sent, msgs_delivered;
  uint64_t cov[SIM_COV_COUNT], dropped, aborted, crashes, superseded, holds, leaves;
  int64_t lib_peak;
  int nfaults, nnodes, nclasses;
  int failed;
  char what[240];
} sim_result_t;

/* sim_app.c: runs one seed start to end; fills r. A violated invariant
 * reports and exits (sim_check_fail). */
void sim_run_seed(uint64_t seed, int defect, bool verbose, sim_result_t *r);

/* Once per process, before any seed: what the library keeps for the
 * process or the thread is allocated then, not inside a seed. */
void sim_warmup(void);
/* The run in progress (for a failure report), or NULL. */
sim_run_t *sim_current_run(void);

/* sim_node.c */
void sim_nodes_init(sim_run_t *run);
void sim_nodes_free(sim_run_t *run);
void sim_node_start(sim_run_t *run, sim_node_t *n);
/* The process dies (machine: the host too); its application's state goes. */
void sim_node_crash(sim_run_t *run, sim_node_t *n, bool machine);
/* Applies n's view (bftnet_connect) if it is alive. */
void sim_node_apply_view(sim_run_t *run, sim_node_t *n);
void sim_node_listen(sim_run_t *run, sim_node_t *n, int addr);
/* Graceful end of every node (bftnet_stop, bftnet_free). */
void sim_node_stop(sim_run_t *run, sim_node_t *n);
/* Mid-run: the node stops in order (bftnet_stop: GO_AWAY on every
 * connection first, then its streams reset and its connections close); its
 * books close as a crash's do (what it had not sent or delivered is gone). */
void sim_node_leave(sim_run_t *run, sim_node_t *n);
int sim_popcount(uint32_t v);

/* sim_app.c */
void sim_app_start(sim_run_t *run, sim_node_t *n);
void sim_app_stop(sim_run_t *run, sim_node_t *n);
void sim_app_burst(sim_run_t *run, sim_node_t *n, int count);
/* Receives everything n has now; returns how many. */
int sim_app_drain(sim_run_t *run, sim_node_t *n);

/* sim_class.c: the classes a seed draws (after its other parameters,
 * from a stream of their own), their configuration, their printout. */
/* --no-classes: no seed configures classes (every run as before classes
 * existed: for seeds found then). */
extern bool sim_classes_off;
void sim_classes_draw(sim_run_t *run);
/* Classes in effect on every node: 1 without configuration. */
int sim_ncls(const sim_params_t *p);
/* Sets cfg's classes from the seed's (cfg must outlive bftnet_new). */
void sim_classes_config(const sim_run_t *run, bftnet_config_t *cfg);
void sim_classes_print(const sim_run_t *run, FILE *f);
/* A payload size for class cls (a configured one). */
size_t sim_classes_size(sim_run_t *run, int cls);

/* sim_check.c: the books. */
void sim_books_new(sim_run_t *run);
void sim_books_free(sim_run_t *run);
/* A message n queued for every member in mask (before the call that
 * queues it: the payload carries its number). Writes the payload. */
uint64_t sim_books_next_seq(sim_run_t *run, sim_node_t *n);
/* ... in class cls, with key (0: none; 1..255). */
void sim_books_sent(sim_run_t *run, sim_node_t *n, uint64_t seq, uint32_t mask, int cls,
                    unsigned key);
void sim_payload_fill(uint8_t *p, size_t len, int slot, int inc, int cls, uint64_t seq);
/* Checks one message received by n (invariants 1 and 4 and the payload). */
void sim_books_received(sim_run_t *run, sim_node_t *n, const bftnet_msg_t *m);
/* Bounds on what a node holds per member (invariant 3), now. */
void sim_books_check_bounds(sim_run_t *run, sim_node_t *n);
/* Before n dies: what it held and will lose with its process. */
void sim_books_crash(sim_run_t *run, sim_node_t *n);
/* A membership change of n about to remove some members. */
void sim_books_removal(sim_run_t *run, sim_node_t *n, uint32_t removed);
/* After the drain: every message accounted for (invariant 2). */
void sim_books_final(sim_run_t *run);
/* No protocol violation counted by n (honest peers, bytes never altered). */
void sim_books_check_violations(sim_run_t *run, sim_node_t *n);
/* Every node's figures per member, for a failure report. */
void sim_books_dump(sim_run_t *run, FILE *f);
_Noreturn void sim_check_fail(sim_run_t *run, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* sim_debug.c: the library's inner state, for a failure report. */
void sim_debug_dump(sim_run_t *run, FILE *f);

/* sim_faults.c */
/* Draws the seed's parameters and its fault schedule. */
void sim_faults_draw(sim_run_t *run);
/* The links' latency, jitter, bandwidth and segments, in the new world. */
void sim_faults_setup_links(sim_run_t *run);
void sim_faults_free(sim_run_t *run);
/* Time of the next fault action (UINT64_MAX: none left). */
uint64_t sim_faults_next_at(const sim_run_t *run);
void sim_faults_apply_next(sim_run_t *run);
void sim_faults_print(const sim_run_t *run, FILE *f);
void sim_params_print(const sim_run_t *run, FILE *f);

#endif
