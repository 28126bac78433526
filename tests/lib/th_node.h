/*
 * th_node.h — for the tests that put a REAL bftnet node (the public API, on
 * its own loop thread) beside a hand-made peer on net_t that runs on the
 * test's own loop and holds the other member's key: the node's config,
 * start on loopback and two-member membership, the messages it sends and
 * its stats; the peer's net_t (its key drawn for the pair's leader rule,
 * its listener, its dial, its first failure); a loop runner that keeps
 * looking at what the node's thread changes; a recorder of the node's
 * events. The node is member "r0", the peer "r1".
 */
#ifndef BFTNET_TH_NODE_H
#define BFTNET_TH_NODE_H

#include <pthread.h>

#include "th_msg.h"
#include "th_net.h"

/* ------------------------------------------------------ the node's events */

typedef struct th_ev {
  bftnet_event_type_t type;
  uint64_t stream_id, lost;
  uint64_t t_ns; /* when it was recorded (th_mono_ns) */
  int outbound;
  bftnet_mig_reason_t why;
  char abort[32];
} th_ev_t;

#define TH_EVREC_MAX 512

typedef struct th_evrec {
  pthread_mutex_t mu;
  th_ev_t ev[TH_EVREC_MAX];
  int n;
} th_evrec_t;

#define TH_EVREC_INIT                                                                              \
  { .mu = PTHREAD_MUTEX_INITIALIZER }

/* Forgets every event recorded. */
void th_evrec_clear(th_evrec_t *r);
/* A bftnet on_event callback (user: the th_evrec_t) that records every
 * event, the first TH_EVREC_MAX of them. Any thread. */
void th_evrec_on_event(const bftnet_event_t *ev, void *user);
/* How many events are recorded: a mark for the calls below. */
int th_evrec_mark(th_evrec_t *r);
/* How many events of type were recorded at index >= from, in the direction
 * outbound (1 or 0; -1: either). */
int th_evrec_count(th_evrec_t *r, int from, bftnet_event_type_t type, int outbound);
/* Copies the first (last false) or the last of those events into *out;
 * false if there is none. */
bool th_evrec_find(th_evrec_t *r, int from, bftnet_event_type_t type, int outbound, bool last,
                   th_ev_t *out);

/* --------------------------------------------------------------- the loop */

/* Runs loop until pred(arg) holds or timeout_ms passes. A 1 ms timer wakes
 * it to look again: what pred reads may change on another thread (the
 * node's). pred NULL: runs for timeout_ms. Returns pred's last answer. */
bool th_run_ticking(uv_loop_t *loop, bool (*pred)(void *), void *arg, uint64_t timeout_ms);
/* Runs loop for ms (th_run_ticking without a predicate). */
void th_pump(uv_loop_t *loop, uint64_t ms);

/* --------------------------------------------------------------- the node */

/* The node's config: key, every event recorded in rec, quick redials
 * (20..200 ms); the test changes what its scenario needs. */
void th_bnode_config(bftnet_config_t *cfg, bftnet_key_t *key, th_evrec_t *rec);
/* Starts a node with cfg listening on 127.0.0.1:0; writes the address it
 * listens on into addr. Returns 0 or an error (*out NULL). */
int th_bnode_start(bftnet_t **out, const bftnet_config_t *cfg, char *addr, size_t cap);
/* Gives node the membership {r0: self_addr, r1: peer_addr}; fails the
 * test (with bftnet_connect's reason) if it is refused. */
void th_bnode_connect_pair(bftnet_t *node, const char *self_addr, const char *peer_addr);
/* Sends n messages (th_msg_fill), from sequence number *next_seq on, to
 * member `to`; asserts each send and advances *next_seq. */
void th_bnode_send(bftnet_t *node, const char *to, uint64_t *next_seq, int n);
/* The node's stats of member `to` (asserted to exist). */
bftnet_peer_stats_t th_bnode_stats(bftnet_t *node, const char *to);

/* --------------------------------------------------------------- the peer */

typedef enum th_lead { TH_LEAD_ANY, TH_LEAD_PEER, TH_LEAD_NODE } th_lead_t;

typedef struct th_peer {
  bool started;
  bool closed; /* the test closed net itself (th_peer_finish does not) */
  uv_loop_t loop;
  bn_transport_t *t;
  bftnet_key_t *key;
  bn_counters_t ctr;
  net_t *net;
  char addr[BFTNET_ADDR_MAX]; /* where it listens, with /p2p/ */
  char id[BFTNET_PEER_ID_MAX];
  uint64_t inc;      /* its incarnation (random) */
  bool lower, leads; /* its peer ID is the pair's lower one; it leads the pair */
  uint64_t next_k;   /* its next stream ID: 2 * next_k + (lower ? 0 : 1) */
  bool failed;       /* the first failure its callbacks saw... */
  char err[256];     /* ...and what it was */
} th_peer_t;

/* Starts p on a loop of its own (the caller's thread runs it): a key drawn
 * until the pair with node_key is led as lead says, net_new with cbs (ud),
 * a listener on 127.0.0.1:0. Its stream IDs start far from the node's
 * (which count from 0). Returns 0 or an error. */
int th_peer_start(th_peer_t *p, const bftnet_key_t *node_key, th_lead_t lead, const net_cbs_t *cbs,
                  void *ud);
/* Dials addr from p and runs p's loop until the dial completes or
 * timeout_ms passes; returns 0 or the error (BFTNET_ETIMEDOUT). */
int th_peer_dial(th_peer_t *p, const char *addr, uint64_t timeout_ms);
/* The next stream ID of p's parity. */
uint64_t th_peer_next_id(th_peer_t *p);
/* Records p's first failure (callbacks cannot fail the test)... */
__attribute__((format(printf, 2, 3))) void th_peer_fail(th_peer_t *p, const char *fmt, ...);
/* ...which this fails the test with, at the test's checkpoints. */
void th_peer_assert_ok(const th_peer_t *p);
/* Closes p's net (unless p->closed), runs the loop until it is closed and
 * frees it all; returns th_loop_finish's result (0 = every handle closed
 * cleanly). Nothing if p was not started. */
int th_peer_finish(th_peer_t *p);

/* ------------------------------------------------------------ both ends */

/* The end of a test: frees the node first (it stops; what it sends as it
 * goes, GO_AWAY say, reaches the peer's loop), then finishes the peer, then
 * frees the node's key; *node and *node_key become NULL. Returns
 * th_peer_finish's result (0 = the peer's loop closed cleanly). */
int th_node_peer_finish(bftnet_t **node, bftnet_key_t **node_key, th_peer_t *p);

#endif
