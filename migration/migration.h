/*
 * migration.h — logical streams on real connections, the only header
 * migration/ exposes: the wiring of the pure core (src/mig_core.h, private)
 * onto net/ yamux streams, and the connection policy of a pair (PROTOCOL.md
 * §11.4, §11.6). The layer above sees a logical stream as an ordered byte
 * pipe that survives connection loss, duplicate connections and path changes.
 *
 * What this layer adds to the core:
 * - carriers: each yamux stream under a logical stream L, with the outer
 *   multistream `/libp2p/stream-migration`, the one StreamMigration message
 *   (Label, Migrate or AckMigrate) and then L's bytes;
 * - the inner negotiation of L's application protocol (one of the node's
 *   list, mig_config_t.apps: `/bftnet/msg/1.0.0` and one per traffic
 *   class), which is part of L's bytes (§11.2), so it migrates with L and
 *   the layer above sees application bytes only; a proposal not in the
 *   list is answered `na` and counted (class_unknown);
 * - confirmation: Confirm messages on the per-connection confirmation
 *   stream `/libp2p/stream-migration/confirm` (src/confirm.c), one read
 *   offset per logical stream, sent once the layer above consumed what it
 *   was given (mig_stream_consume), at most MIG_CREDIT_FLUSH_MS later; yamux
 *   credit is flow control only (an older peer confirms with yamux window
 *   updates: the credit minus the bytes written on the carrier before L's
 *   first byte);
 * - the fallback: a peer that answers `na` to the Label gets a plain
 *   `/bftnet/msg/1.0.0` stream carrying the same bytes (not migratable);
 * - the leader's policy (only the leader of a pair migrates): keep one
 *   connection, the outbound one to the member's most preferred address
 *   that is up, else an inbound one (oldest first among equals); move every
 *   logical stream there (resume when detached, graceful otherwise), close
 *   the other connections once they carried nothing for MIG_IDLE_TICKS ticks,
 *   and re-try more preferred addresses every failback_ns.
 * - a tick (MIG_TICK_MS) fires detach timeouts and retries.
 *
 * Threads: the loop thread only. Callbacks may call any mig_* function;
 * frees are deferred to the end of the outermost migration entry point.
 */
#ifndef BFTNET_MIGRATION_H
#define BFTNET_MIGRATION_H

#include "core.h"
#include "net.h"

#define MIG_TICK_MS         100u /* the tick: detach timeouts, retries, the leader's policy */
#define MIG_CREDIT_FLUSH_MS 2u   /* owed credit (confirmation) waits at most this long */
#define MIG_IDLE_TICKS      3u   /* an unused duplicate connection lives this many ticks */
#define MIG_RETRY_NS        (200u * 1000000ull) /* between two attempts to move one stream */
#define MIG_APP_PROTO       "/bftnet/msg/1.0.0" /* the default application protocol inside L */
#define MIG_MAX_APPS        8u                  /* application protocols a node serves inside L */

typedef struct mig_node mig_node_t;
typedef struct mig_peer mig_peer_t;
typedef struct mig_stream mig_stream_t;

typedef enum mig_ev_type {
  MIG_EV_MIGRATED = 1, /* from -> to, why */
  MIG_EV_DETACHED,
  MIG_EV_RESUMED, /* detached_ns, retransmitted */
  MIG_EV_DENIED,
  MIG_EV_ABORTED, /* reason (what was confirmed: mig_stream_app_confirmed) */
  MIG_EV_CLOSED,
  MIG_EV_READ_EOF
} mig_ev_type_t;

typedef struct mig_event {
  mig_ev_type_t type;
  uint64_t stream_id;
  const char *from_addr;   /* MIGRATED: the connection it left ("" if detached) */
  net_conn_t *to;          /* MIGRATED, RESUMED: the connection it rides now */
  bftnet_mig_reason_t why; /* MIGRATED */
  /* ABORTED, CLOSED: why, as text ("reset", "going_away", "detach_timeout",
   * "migration_na"... or "closed") */
  const char *reason;
  bool refused; /* ABORTED: the peer answered na to L's application protocol */
  uint64_t detached_ns, retransmitted; /* RESUMED */
  /* DETACHED: why its connection ended (net_conn_end_reason); ABORTED:
   * BFTNET_REASON_GOING_AWAY for a reset from a peer that said GO_AWAY first
   * (it stops in order), BFTNET_REASON_RESET for another reset; else NONE. */
  bftnet_reason_t cause;
} mig_event_t;

typedef struct mig_stream_cbs {
  /* Application bytes of the peer's direction, in order, exactly once. The
   * caller calls mig_stream_consume for them when it can take more. */
  void (*on_data)(void *ud, mig_stream_t *ls, const uint8_t *p, size_t n);
  /* mig_stream_write returned less than asked and room came back. */
  void (*on_writable)(void *ud, mig_stream_t *ls);
  /* ABORTED and CLOSED are final: the caller then calls mig_stream_release. */
  void (*on_event)(void *ud, mig_stream_t *ls, const mig_event_t *ev);
  /* Optional: a Confirm from the peer moved mig_stream_app_confirmed
   * forward (the retransmit window shrank) while nothing else may have
   * happened on the stream: no write, no writable, no event. */
  void (*on_confirmed)(void *ud, mig_stream_t *ls);
} mig_stream_cbs_t;

typedef struct mig_node_cbs {
  /* The peer opened a logical (or plain) stream of one of our application
   * protocols to us (mig_stream_app says which), once its inner
   * negotiation is done: the caller sets its callbacks
   * (mig_stream_set_cbs) and the peer's owner, and returns 0, or < 0 to
   * refuse (the stream is reset). */
  int (*on_stream)(void *ud, mig_peer_t *p, mig_stream_t *ls);
  /* A new incarnation of the peer: its old streams were aborted (their
   * ABORTED events came first). */
  void (*on_peer_restarted)(void *ud, mig_peer_t *p, uint64_t incarnation);
  /* Optional: after each tick (every MIG_TICK_MS, until mig_node_stop), for
   * the layer above's periodic work: it then needs no timer (no wakeup) of
   * its own. */
  void (*on_tick)(void *ud);
} mig_node_cbs_t;

typedef struct mig_config {
  uint64_t detach_timeout_ns;
  uint64_t failback_ns;
  uint32_t window_max; /* retransmit window per logical stream (bytes) */
  bool plain;          /* open plain streams only (no migration) */
  /* Ours (bftnet_config_t.max_message_size): sent in every StreamMigration
   * message we write (PROTOCOL.md 8.1); 0: not sent. */
  uint32_t max_message_size;
  const bn_logger_t *log; /* the node's (NULL: the process default) */
  /* The application protocols served inside L (and as plain streams),
   * index = mig_stream_app; NULL: MIG_APP_PROTO alone. The strings must
   * outlive the node. */
  const char *const *apps;
  unsigned napps; /* 1..MIG_MAX_APPS when apps is set */
} mig_config_t;

/* A node on net: draws its incarnation from the seam's RNG, handles the
 * inbound /libp2p/stream-migration streams and the plain streams of each
 * application protocol, starts the tick. cbs and ud for the streams peers open; migration counters
 * go to ctr. */
int mig_node_new(mig_node_t **out, net_t *net, const mig_config_t *cfg, const mig_node_cbs_t *cbs,
                 void *ud, bn_counters_t *ctr) BFTNET_WUR;
/* Releases every peer (their streams are reset, no events) and stops the
 * timer. Before net_close. */
void mig_node_stop(mig_node_t *n);
/* After the loop drained (every carrier was freed by net). */
void mig_node_free(mig_node_t *n);
uint64_t mig_node_incarnation(const mig_node_t *n);
/* The caller forwards net's connection events (any peer). */
void mig_node_conn_up(mig_node_t *n, net_conn_t *c);
void mig_node_conn_down(mig_node_t *n, net_conn_t *c);

/* The peer's state, created on first use. */
mig_peer_t *mig_peer_get(mig_node_t *n, const peerid_t *peer);
mig_peer_t *mig_peer_find(mig_node_t *n, const peerid_t *peer);
void mig_peer_set_owner(mig_peer_t *p, void *owner);
void *mig_peer_owner(const mig_peer_t *p);
const peerid_t *mig_peer_id(const mig_peer_t *p);
bool mig_peer_is_leader(const mig_peer_t *p);
/* A member's addresses, most preferred first (the leader's path policy).
 * changed: the membership changed them (the moves that follow report
 * BFTNET_MIG_ADDR_CHANGE). */
void mig_peer_set_addrs(mig_peer_t *p, const maddr_t *addrs, size_t n, bool changed);
/* The connection to open a new stream on: the leader's kept one; for the
 * follower, one already carrying the pair's streams, else the oldest. Never
 * one whose peer sent GO_AWAY. */
net_conn_t *mig_peer_conn(mig_peer_t *p);
/* Resets every stream (no events) and forgets the peer once its carriers
 * are gone. The owner must not use p afterwards. */
void mig_peer_release(mig_peer_t *p);

/* The largest message the peer said it accepts (its latest StreamMigration
 * message's max_message_size), or 0 if it never said (a plain stream, a
 * peer that does not send it). */
uint32_t mig_peer_max_message_size(const mig_peer_t *p);

typedef struct mig_peer_stats {
  uint64_t migrations, detached, resumed, retransmitted;
  uint64_t detach_ns_last, detach_ns_max, restarts;
} mig_peer_stats_t;
const mig_peer_stats_t *mig_peer_stats(const mig_peer_t *p);

/* Opens our logical stream to the peer on c (Label, pipelined with the inner
 * negotiation of application protocol `app`, an index into the node's
 * list), or a plain stream if the peer spoke no migration before or the
 * node is configured plain. A peer that answers na to the protocol ends
 * the stream: ABORTED with `refused` set. */
int mig_stream_open(mig_peer_t *p, net_conn_t *c, unsigned app, const mig_stream_cbs_t *cbs,
                    void *ud, mig_stream_t **out) BFTNET_WUR;
/* L's application protocol (index into the node's list); -1 while an
 * inbound stream's negotiation is not done. */
int mig_stream_app(const mig_stream_t *ls);
/* The priority of L's writes when its connection is paced (net.h). */
void mig_stream_set_prio(mig_stream_t *ls, uint8_t prio);
/* Bytes mig_stream_write would take now that also go to the connection at
 * once (none left waiting in the retransmit window): the room in the
 * window, capped by the carrier's room (yamux credit, a paced connection's
 * piece) less what the window holds unsent. A detached stream: the window's
 * room (its bytes go on when it resumes). */
size_t mig_stream_send_room(const mig_stream_t *ls);
/* on_writable once mig_stream_send_room may have grown (a write that took
 * less than asked does this by itself). */
void mig_stream_want_writable(mig_stream_t *ls);
void mig_stream_set_cbs(mig_stream_t *ls, const mig_stream_cbs_t *cbs, void *ud);
/* Takes up to n application bytes (bounded by the retransmit window);
 * 0 = full, on_writable follows. < 0 once the stream ended. */
int mig_stream_write(mig_stream_t *ls, const uint8_t *p, size_t n);
/* For a writer that builds its bytes in place: the contiguous free span of
 * L's retransmit window where its next bytes go, up to `want` (0 and *out
 * NULL: none now, or a plain stream, which has no window: write as usual).
 * Bytes built there are sent by mig_stream_write(ls, *out, n), which then
 * copies nothing; valid until that call. */
size_t mig_stream_write_span(mig_stream_t *ls, size_t want, uint8_t **out);
/* The caller took n more of the bytes on_data gave it (credit may flow). */
void mig_stream_consume(mig_stream_t *ls, size_t n);
/* Lets go of ls: a live stream is aborted (reset, counted as a local abort). */
void mig_stream_release(mig_stream_t *ls);
bool mig_stream_migratable(const mig_stream_t *ls);
bool mig_stream_attached(const mig_stream_t *ls);
uint64_t mig_stream_id(const mig_stream_t *ls);
/* The ID the stream was opened with (its Label's: it stays when migration
 * changes the current ID) and its opener's incarnation. Within one opener
 * incarnation the higher opening ID is the newer stream (PROTOCOL.md
 * §11.3). False, leaving both unset, for a plain stream or a Label
 * without incarnation (nothing tells its age). */
bool mig_stream_opened_as(const mig_stream_t *ls, uint64_t *open_id, uint64_t *inc);
/* Application bytes we wrote, and of those the ones the peer confirmed. */
uint64_t mig_stream_app_written(const mig_stream_t *ls);
uint64_t mig_stream_app_confirmed(const mig_stream_t *ls);
/* The connection the stream rides now (NULL when detached). */
net_conn_t *mig_stream_conn(const mig_stream_t *ls);
/* The number (net_conn_seq) of the connection the stream rode last, even
 * once it left it (0: none yet). */
uint64_t mig_stream_last_conn(const mig_stream_t *ls);

#endif /* BFTNET_MIGRATION_H */
