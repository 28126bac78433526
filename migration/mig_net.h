/*
 * mig_net.h — logical streams on real connections: the wiring of the pure
 * core (src/mig_core.h) onto net/ yamux streams, and the connection policy of a
 * pair (PROTOCOL.md §11.4, §11.6). The facade (core/members.c) sees a
 * logical stream as an ordered byte pipe that survives connection loss,
 * duplicate connections and path changes.
 *
 * What this layer adds to the core:
 * - carriers: each yamux stream under a logical stream L, with the outer
 *   multistream `/libp2p/stream-migration`, the one StreamMigration message
 *   (Label, Migrate or AckMigrate) and then L's bytes;
 * - the inner negotiation of `/bftnet/msg/1.0.0`, which is part of L's bytes
 *   (§11.2), so it migrates with L and the facade sees application bytes only;
 * - confirmation: yamux window updates received (not the SYN/ACK grant),
 *   minus the bytes written on the carrier before L's first byte; and a
 *   Receiver's credit, granted only after the facade consumed what it was
 *   given (ml_stream_consume), flushed once per loop iteration;
 * - the fallback: a peer that answers `na` to the Label gets a plain
 *   `/bftnet/msg/1.0.0` stream carrying the same bytes (not migratable);
 * - the leader's policy (only the leader of a pair migrates): keep one
 *   connection, the outbound one to the member's most preferred address
 *   that is up, else an inbound one (oldest first among equals); move every
 *   logical stream there (resume when detached, graceful otherwise), close
 *   the other connections once they carried nothing for ML_IDLE_TICKS ticks,
 *   and re-try more preferred addresses every failback_ms.
 * - a tick (ML_TICK_MS) fires detach timeouts and retries.
 *
 * Threads: the loop thread only. Callbacks may call any ml_* function;
 * frees are deferred to the end of the outermost ml entry point.
 */
#ifndef BFTNET_MIG_NET_H
#define BFTNET_MIG_NET_H

#include "core.h"
#include "net.h"

#define ML_TICK_MS 100u
#define ML_CREDIT_FLUSH_MS 2u  /* owed credit (confirmation) waits at most this long */
#define ML_IDLE_TICKS 3u       /* an unused duplicate connection lives this many ticks */
#define ML_RETRY_NS (200u * 1000000ull) /* between two attempts to move one stream */
#define ML_MSG_PROTO "/bftnet/msg/1.0.0"

typedef struct ml_node ml_node_t;
typedef struct ml_peer ml_peer_t;
typedef struct ml_stream ml_stream_t;

typedef enum ml_ev_type {
  ML_EV_MIGRATED = 1, /* from -> to, why */
  ML_EV_DETACHED,
  ML_EV_RESUMED,      /* detached_ns, retransmitted */
  ML_EV_DENIED,
  ML_EV_ABORTED,      /* reason; app_confirmed */
  ML_EV_CLOSED,
  ML_EV_READ_EOF
} ml_ev_type_t;

typedef struct ml_event {
  ml_ev_type_t type;
  uint64_t stream_id;
  const char *from_addr;   /* MIGRATED: the connection it left ("" if detached) */
  net_conn_t *to;          /* MIGRATED, RESUMED: the connection it rides now */
  bftnet_mig_reason_t why; /* MIGRATED */
  const char *reason;      /* ABORTED: mig_reason_str() or "closed" */
  uint64_t detached_ns, retransmitted; /* RESUMED */
} ml_event_t;

typedef struct ml_stream_cbs {
  /* Application bytes of the peer's direction, in order, exactly once. The
   * facade calls ml_stream_consume for them when it can take more. */
  void (*on_data)(void *ud, ml_stream_t *ls, const uint8_t *p, size_t n);
  /* ml_stream_write returned less than asked and room came back. */
  void (*on_writable)(void *ud, ml_stream_t *ls);
  /* ABORTED and CLOSED are final: the facade then calls ml_stream_release. */
  void (*on_event)(void *ud, ml_stream_t *ls, const ml_event_t *ev);
} ml_stream_cbs_t;

typedef struct ml_node_cbs {
  /* The peer opened a logical (or plain) /bftnet/msg/1.0.0 stream to us:
   * the facade sets its callbacks (ml_stream_set_cbs) and the peer's owner,
   * and returns 0, or < 0 to refuse (the stream is reset). */
  int (*on_stream)(void *ud, ml_peer_t *p, ml_stream_t *ls);
  /* A new incarnation of the peer: its old streams were aborted (their
   * ABORTED events came first). */
  void (*on_peer_restarted)(void *ud, ml_peer_t *p, uint64_t incarnation);
} ml_node_cbs_t;

typedef struct ml_config {
  uint64_t detach_timeout_ns;
  uint64_t failback_ns;
  uint32_t window_max;    /* retransmit window per logical stream (bytes) */
  bool plain;             /* open plain streams only (no migration) */
} ml_config_t;

int ml_node_new(ml_node_t **out, net_t *net, const ml_config_t *cfg, const ml_node_cbs_t *cbs,
                void *ud, bn_counters_t *ctr) BFTNET_WUR;
/* Releases every peer (their streams are reset, no events) and stops the
 * timer. Before net_close. */
void ml_node_stop(ml_node_t *n);
/* After the loop drained (every carrier was freed by net). */
void ml_node_free(ml_node_t *n);
uint64_t ml_node_incarnation(const ml_node_t *n);
/* The facade forwards connection events (any peer). */
void ml_node_conn_up(ml_node_t *n, net_conn_t *c);
void ml_node_conn_down(ml_node_t *n, net_conn_t *c);

/* The peer's state, created on first use. */
ml_peer_t *ml_peer_get(ml_node_t *n, const peerid_t *peer);
ml_peer_t *ml_peer_find(ml_node_t *n, const peerid_t *peer);
void ml_peer_set_owner(ml_peer_t *p, void *owner);
void *ml_peer_owner(const ml_peer_t *p);
const peerid_t *ml_peer_id(const ml_peer_t *p);
bool ml_peer_is_leader(const ml_peer_t *p);
/* A member's addresses, most preferred first (the leader's path policy).
 * why = BFTNET_MIG_ADDR_CHANGE when bftnet_connect changed them. */
void ml_peer_set_addrs(ml_peer_t *p, const maddr_t *addrs, size_t n, bool changed);
/* The connection to open a new stream on: the leader's kept one; for the
 * follower, one already carrying the pair's streams, else the oldest. */
net_conn_t *ml_peer_conn(ml_peer_t *p);
/* Resets every stream (no events) and forgets the peer once its carriers
 * are gone. The owner must not use p afterwards. */
void ml_peer_release(ml_peer_t *p);

typedef struct ml_peer_stats {
  uint64_t migrations, detached, resumed, retransmitted;
  uint64_t detach_ns_last, detach_ns_max, restarts;
} ml_peer_stats_t;
const ml_peer_stats_t *ml_peer_stats(const ml_peer_t *p);

/* Opens our logical stream to the peer on c (Label, pipelined with the inner
 * negotiation), or a plain stream if the peer spoke no migration before or
 * the node is configured plain. */
int ml_stream_open(ml_peer_t *p, net_conn_t *c, const ml_stream_cbs_t *cbs, void *ud,
                   ml_stream_t **out) BFTNET_WUR;
void ml_stream_set_cbs(ml_stream_t *ls, const ml_stream_cbs_t *cbs, void *ud);
/* Takes up to n application bytes (bounded by the retransmit window);
 * 0 = full, on_writable follows. < 0 once the stream ended. */
int ml_stream_write(ml_stream_t *ls, const uint8_t *p, size_t n);
/* The facade took n more of the bytes on_data gave it (credit may flow). */
void ml_stream_consume(ml_stream_t *ls, size_t n);
/* Lets go of ls: a live stream is aborted (reset, counted as a local abort). */
void ml_stream_release(ml_stream_t *ls);
bool ml_stream_migratable(const ml_stream_t *ls);
bool ml_stream_attached(const ml_stream_t *ls);
uint64_t ml_stream_id(const ml_stream_t *ls);
/* Application bytes we wrote, and of those the ones the peer confirmed. */
uint64_t ml_stream_app_written(const ml_stream_t *ls);
uint64_t ml_stream_app_confirmed(const ml_stream_t *ls);
/* The connection the stream rides now (NULL when detached). */
net_conn_t *ml_stream_conn(const ml_stream_t *ls);

#endif /* BFTNET_MIG_NET_H */
