/*
 * bftnet_internal.h — the facade's structures, shared by core/bftnet.c
 * (lifecycle, commands, dial/ping) and core/members.c (membership,
 * Dispatchers, Receivers, TentativeReceivers, send/recv).
 *
 * Threads: application threads touch only the member snapshot (read under
 * an epoch section), the members' send rings and inbound queues, and the
 * uv_async handles. Everything else belongs to the loop thread.
 */
#ifndef BFTNET_INTERNAL_H
#define BFTNET_INTERNAL_H

#include <ck_epoch.h>
#include <uv.h>

#include "dispatcher.h"
#include "membership.h"
#include "mig_net.h"
#include "net.h"
#include "receiver.h"

typedef struct cmd cmd_t;
typedef void (*cmd_fn)(bftnet_t *b, cmd_t *c);

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

/* An epoch record for application threads; all are kept on a list so
 * bftnet_free can release them (ck_epoch recycles them between calls). */
typedef struct epoch_rec {
  ck_epoch_record_t rec; /* first: ck hands back the ck_epoch_record_t */
  struct epoch_rec *next;
} epoch_rec_t;

/* One member (not ourselves): its Dispatcher and its Receiver. */
typedef struct mbr {
  /* Written at creation, then read-only: application threads read them. */
  char node_id[BFTNET_NODE_ID_MAX];
  peerid_t peer;
  disp_t d;         /* the send side: bftnet_send pushes into its ring (any thread) */
  rx_t r;           /* the receive side: bftnet_recv pops its queue (any thread) */
  ml_peer_stats_t pub; /* atomic copies of the pair's migration stats */
  bftnet_t *b;
} mbr_t;

/* An immutable view of the membership, published atomically. */
typedef struct msnap {
  size_t n;
  mbr_t **m; /* sorted by node_id */
  disp_t **d; /* d[i] is m[i]'s dispatcher */
  uint64_t ver; /* 1, 2, ...: broadcasts carry it (the log skips them for later members) */
  char self_id[BFTNET_NODE_ID_MAX];
} msnap_t;

struct bftnet {
  bftnet_config_t cfg;
  uv_loop_t own_loop;
  uv_loop_t *loop;
  bool own_thread;
  uv_thread_t thread;
  uv_async_t async; /* commands */
  uv_async_t wake;  /* sends and pops */
  uv_mutex_t mu;
  uv_cond_t cv;
  cmd_t *queue_head, *queue_tail;
  cmd_t *stop_cmd;  /* completed once every handle has closed */
  bn_transport_t *t;
  net_t *net;
  ml_node_t *ml;    /* logical streams (migration) */
  bn_counters_t counters;
  bn_pool_t *pool;  /* message buffers up to 64 KiB, both directions */
  disp_ctx_t dctx;  /* the send side's node-wide state (the broadcast log) */
  uint64_t snap_ver; /* loop: the last snapshot's version */
  uint64_t serial;  /* this node's unique number (epoch record caches) */
  uint64_t activity; /* loop thread only: counts wakes (busy polling; reads: rctx.activity) */
  int stopped;      /* atomic */
  bool loop_done;

  /* Members. */
  ck_epoch_t epoch;
  ck_epoch_record_t loop_rec;
  epoch_rec_t *recs; /* atomic push-only list of every record allocated */
  msnap_t *snap;    /* atomic pointer */
  mb_table_t table; /* loop: the membership last applied */
  rx_ctx_t rctx;     /* the receive side's node-wide state (TentativeReceivers) */
  int efd;          /* eventfd: readable when messages may be waiting */
  uint32_t rr;      /* atomic: round-robin cursor for bftnet_recv */
};

/* Bytes of freed message buffers a node keeps for reuse (pool.h): part of
 * its fixed memory, not of any member's. */
#define BFTNET_POOL_CACHE (4u * 1024u * 1024u)

/* members.c */
int members_init(bftnet_t *b);
void members_stop(bftnet_t *b);      /* loop thread: before net_close */
void members_destroy(bftnet_t *b);   /* after the loop ended */
void members_on_wake(uv_async_t *h);
void members_conn_event(bftnet_t *b, net_conn_t *c, bftnet_event_type_t type,
                        bftnet_reason_t reason, int err);
void run_connect(bftnet_t *b, cmd_t *c);
int call(bftnet_t *b, cmd_t *c);
/* Completes a command: sets its result and wakes the caller (once). */
void cmd_complete(bftnet_t *b, cmd_t *c, int rc);

/* The node whose own loop thread this is (core/members.c). */
extern _Thread_local bftnet_t *bn_tl_loop_node;

#endif
