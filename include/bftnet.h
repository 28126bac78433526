/*
 * bftnet — the networking module of a BFT consensus replica.
 *
 * This header is the whole public API. Every int-returning function returns
 * 0 (or a non-negative count where documented) or a negative error code:
 * BFTNET_E* below, or -errno for OS errors. bftnet_strerror() and
 * bftnet_err_name() describe any of them. A function that returns an error
 * never also invokes its callback.
 *
 * Threads: unless a function says "loop thread only", it may be called from
 * any thread. bftnet owns one event-loop thread per node (or runs on the
 * application's uv_loop_t); application callbacks run there only where the
 * contract says so, and must then be fast and must not call blocking bftnet
 * functions ("inside loop callbacks", near the end, lists what they may).
 */
#ifndef BFTNET_H
#define BFTNET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define BFTNET_API __attribute__((visibility("default")))
#define BFTNET_WUR __attribute__((warn_unused_result))
#else
#define BFTNET_API
#define BFTNET_WUR
#endif

/* ---------------------------------------------------------------- errors */

/* One list generates the codes, bftnet_strerror() and bftnet_err_name(). */
#define BFTNET_ERRNO_MAP(XX)                                                                       \
  XX(INVAL, "invalid argument")                                                                    \
  XX(NOMEM, "out of memory")                                                                       \
  XX(TOOBIG, "size exceeds a configured limit")                                                    \
  XX(PROTO, "protocol violation by the peer")                                                      \
  XX(BADADDR, "invalid or unsupported multiaddr")                                                  \
  XX(BADKEY, "invalid key")                                                                        \
  XX(BADPEERID, "invalid peer ID")                                                                 \
  XX(AUTH, "peer authentication failed")                                                           \
  XX(PEERMISMATCH, "authenticated peer ID differs from the one dialed")                            \
  XX(DECRYPT, "message failed authentication (decryption)")                                        \
  XX(NA, "protocol not available at the peer")                                                     \
  XX(TIMEDOUT, "operation timed out")                                                              \
  XX(CLOSED, "closed")                                                                             \
  XX(RESET, "stream or connection reset")                                                          \
  XX(EOF, "end of stream")                                                                         \
  XX(NOTFOUND, "not found")                                                                        \
  XX(EXIST, "already exists")                                                                      \
  XX(STATE, "operation not valid in the current state")                                            \
  XX(LIMIT, "resource limit reached")                                                              \
  XX(AGAIN, "try again")                                                                           \
  XX(CANCELED, "operation canceled")                                                               \
  XX(UNREACHABLE, "peer unreachable")                                                              \
  XX(NOTMEMBER, "not a member")                                                                    \
  XX(DUPLICATE, "duplicate entry")                                                                 \
  XX(IO, "input/output error")                                                                     \
  /* New codes go at the end: a code's value is its place in this list. */                         \
  XX(BUFSIZE, "output buffer too small")                                                           \
  XX(INCALLBACK, "not allowed inside a loop callback (it would block the loop)")                   \
  XX(ONMESSAGE, "messages go to on_message; bftnet_recv is not used")                              \
  XX(PEERTOOBIG, "message larger than the member's max_message_size")                              \
  XX(BADCLASS, "invalid traffic class configuration")                                              \
  XX(NOCLASS, "no such traffic class")

enum bftnet_errno_index {
#define BFTNET_XX_(name, msg) BFTNET_ERRIDX_##name,
  BFTNET_ERRNO_MAP(BFTNET_XX_)
#undef BFTNET_XX_
      BFTNET_ERRIDX_COUNT
};

/* Codes sit below -30000 so they never collide with -errno values. */
enum bftnet_errno {
#define BFTNET_XX_(name, msg) BFTNET_E##name = -(30001 + BFTNET_ERRIDX_##name),
  BFTNET_ERRNO_MAP(BFTNET_XX_)
#undef BFTNET_XX_
};

/* Static strings; never NULL. Unknown codes get a generic text. */
BFTNET_API const char *bftnet_strerror(int err);
BFTNET_API const char *bftnet_err_name(int err);

/* ------------------------------------------------- reasons and counters */

/* Why a connection ended; also counted per node (see bftnet_counter). */
#define BFTNET_REASON_MAP(XX)                                                                      \
  XX(NONE, "none")                                                                                 \
  XX(LOCAL_CLOSE, "closed locally")                                                                \
  XX(CLOSED_BY_PEER, "closed by peer")                                                             \
  XX(RESET, "reset")                                                                               \
  XX(PING_TIMEOUT, "ping timeout")                                                                 \
  XX(PROTOCOL_ERROR, "protocol error")                                                             \
  XX(AUTH_FAILURE, "authentication failure")                                                       \
  XX(PEER_ID_MISMATCH, "peer ID mismatch")                                                         \
  XX(HANDSHAKE_TIMEOUT, "handshake timeout")                                                       \
  XX(IO_ERROR, "I/O error")                                                                        \
  XX(LIMIT, "resource limit")                                                                      \
  XX(DUPLICATE, "duplicate connection")                                                            \
  XX(GOING_AWAY, "peer going away (GO_AWAY: an orderly stop)")

typedef enum bftnet_reason {
#define BFTNET_XX_(name, msg) BFTNET_REASON_##name,
  BFTNET_REASON_MAP(BFTNET_XX_)
#undef BFTNET_XX_
      BFTNET_REASON_COUNT
} bftnet_reason_t;

BFTNET_API const char *bftnet_reason_str(bftnet_reason_t reason);

/*
 * Named counters. Every rejection of bad input bumps exactly one of the
 * "bad_*" counters (the precise reason) besides closing the connection.
 */
#define BFTNET_COUNTER_MAP(XX)                                                                     \
  XX(CONN_INBOUND, "conn_inbound")                                                                 \
  XX(CONN_OUTBOUND, "conn_outbound")                                                               \
  XX(CONN_ESTABLISHED, "conn_established")                                                         \
  XX(CONN_CLOSED, "conn_closed")                                                                   \
  XX(DIAL_FAILED, "dial_failed")                                                                   \
  XX(HANDSHAKE_TIMEOUT, "handshake_timeout")                                                       \
  XX(PING_TIMEOUT, "ping_timeout")                                                                 \
  XX(PINGS_SENT, "pings_sent")                                                                     \
  XX(PINGS_ANSWERED, "pings_answered")                                                             \
  XX(STREAMS_OPENED, "streams_opened")                                                             \
  XX(STREAMS_ACCEPTED, "streams_accepted")                                                         \
  XX(STREAMS_REFUSED, "streams_refused")                                                           \
  XX(PROTO_NA, "protocol_na_sent")                                                                 \
  XX(BYTES_IN, "bytes_in")                                                                         \
  XX(BYTES_OUT, "bytes_out")                                                                       \
  XX(BAD_MULTISTREAM, "bad_multistream")                                                           \
  XX(BAD_NOISE_FRAME, "bad_noise_frame")                                                           \
  XX(BAD_NOISE_HANDSHAKE, "bad_noise_handshake")                                                   \
  XX(BAD_NOISE_DECRYPT, "bad_noise_decrypt")                                                       \
  XX(BAD_PAYLOAD, "bad_handshake_payload")                                                         \
  XX(BAD_SIGNATURE, "bad_signature")                                                               \
  XX(PEER_ID_MISMATCH, "peer_id_mismatch")                                                         \
  XX(BAD_YAMUX, "bad_yamux")                                                                       \
  XX(YAMUX_WINDOW_VIOLATION, "yamux_window_violation")                                             \
  XX(BAD_PING, "bad_ping")                                                                         \
  XX(BAD_MESSAGE, "bad_message")                                                                   \
  XX(IO_ERRORS, "io_errors")                                                                       \
  XX(CONN_LIMIT, "conn_limit")                                                                     \
  XX(TENTATIVE_CREATED, "tentative_created")                                                       \
  XX(TENTATIVE_DESTROYED, "tentative_destroyed")                                                   \
  XX(TENTATIVE_PROMOTED, "tentative_promoted")                                                     \
  XX(TENTATIVE_BYTES, "tentative_bytes")                     /* gauge: bytes buffered now */       \
  XX(TENTATIVE_EVICTED, "tentative_evicted")                 /* per class: bftnet_class_totals */  \
  XX(DROPPED_REMOVED, "dropped_removed")                     /* queued for members removed */      \
  XX(ABORTED_REMOVED, "aborted_removed")                     /* mid-write when members removed */  \
  XX(INBOUND_DISCARDED_REMOVED, "inbound_discarded_removed") /* received from                      \
     members removed, never taken by bftnet_recv (per class: bftnet_class_totals) */               \
  /* Stream migration (docs/PROTOCOL.md section 11): events ...           */                       \
  XX(MIG_MIGRATED, "mig_migrated")             /* exchanges completed (incl. resumes) */           \
  XX(MIG_DETACHED, "mig_detached")             /* logical streams that lost their carrier */       \
  XX(MIG_RESUMED, "mig_resumed")               /* detached streams resumed */                      \
  XX(MIG_ABORTED, "mig_aborted")               /* logical streams aborted (any reason) */          \
  XX(MIG_ABORTED_MSGS, "mig_aborted_msgs")     /* messages lost with them */                       \
  XX(MIG_DENIED, "mig_denied")                 /* our Migrate was denied */                        \
  XX(MIG_PEER_RESTARTED, "mig_peer_restarted") /* new incarnations seen */                         \
  XX(MIG_RETRANSMITTED, "mig_retransmitted_bytes")                                                 \
  XX(MIG_PLAIN, "mig_plain_streams")                 /* peer answered na: plain stream */          \
  XX(MIG_CONN_CLOSED_EMPTY, "mig_conn_closed_empty") /* duplicates converged */                    \
  /* ... and the rejected inputs, one counter per reason */                                        \
  XX(MIG_BAD_MESSAGE, "mig_bad_message")                                                           \
  XX(MIG_UNEXPECTED_ACK, "mig_unexpected_ack")                                                     \
  XX(MIG_BAD_PARITY, "mig_bad_parity")                                                             \
  XX(MIG_ID_IN_USE, "mig_id_in_use")                                                               \
  XX(MIG_REPLAY, "mig_replayed_migrate")                                                           \
  XX(MIG_NOT_LEADER, "mig_migrate_from_follower")                                                  \
  XX(MIG_UNKNOWN_FROM, "mig_unknown_from")                                                         \
  XX(MIG_NO_OFFSET, "mig_no_read_offset")                                                          \
  XX(MIG_BAD_OFFSET, "mig_bad_read_offset")                                                        \
  XX(MIG_BAD_CREDIT, "mig_bad_credit")                                                             \
  XX(MIG_GAP, "mig_offset_gap")                                                                    \
  XX(MIG_DATA_AFTER_CLOSE, "mig_data_after_close")                                                 \
  XX(MIG_DATA_BEFORE_ACK, "mig_data_before_ack")                                                   \
  XX(MIG_STREAM_LIMIT, "mig_stream_limit")                                                         \
  XX(MIG_ABORT_RESET, "mig_abort_reset")                                                           \
  XX(MIG_ABORT_DENIED, "mig_abort_denied")                                                         \
  XX(MIG_ABORT_DETACH_TIMEOUT, "mig_abort_detach_timeout")                                         \
  XX(MIG_ABORT_PEER_RESTARTED, "mig_abort_peer_restarted")                                         \
  XX(MIG_ABORT_LOCAL, "mig_abort_local")                                                           \
  /* Messages above a size limit ("oversized messages" below) */                                   \
  XX(DROPPED_TOO_BIG, "dropped_too_big")   /* ours, above the member's limit */                    \
  XX(INBOUND_TOO_BIG, "inbound_too_big")   /* theirs, above ours: skipped */                       \
  XX(MIG_BAD_CONFIRM, "mig_bad_confirm")   /* a Confirm beyond the bytes sent */                   \
  XX(MIG_LEGACY_PEERS, "mig_legacy_peers") /* peers (incarnations) that confirm                    \
     with yamux window updates: an older bftnet, PROTOCOL.md section 11.12 */                      \
  /* Traffic classes (see bftnet_class_t) */                                                       \
  XX(CLASS_UNKNOWN, "class_unknown") /* a peer opened a class we do not have: na */                \
  XX(CLASS_REFUSED, "class_refused") /* a peer answered na to one of our classes */                \
  XX(SUPERSEDED, "superseded")       /* queued keep-latest messages replaced by newer */           \
  /* Streams refused: older than one the member (same incarnation) opened                          \
     later and we took in that class, PROTOCOL.md section 11.3 */                                  \
  XX(MIG_STALE_STREAMS, "mig_stale_streams")                                                       \
  /* Streams refused: from an incarnation of the peer it has since replaced                        \
     (a message of the old process heard of late), PROTOCOL.md section 11.7 */                     \
  XX(MIG_STALE_INCARNATION, "mig_stale_incarnation")                                               \
  /* With classes: times a less urgent class found its connection's kernel                         \
     holding the in-flight cap and waited (class_inflight_min) */                                  \
  XX(INFLIGHT_WAITS, "inflight_waits")

typedef enum bftnet_counter_id {
#define BFTNET_XX_(name, str) BFTNET_COUNTER_##name,
  BFTNET_COUNTER_MAP(BFTNET_XX_)
#undef BFTNET_XX_
      BFTNET_COUNTER_COUNT
} bftnet_counter_id_t;

/* ------------------------------------------------------------ keys, IDs */

/* A libp2p peer ID in base58btc is at most this long, NUL included. */
#define BFTNET_PEER_ID_MAX 64
/* A textual multiaddr we produce is at most this long, NUL included. */
#define BFTNET_ADDR_MAX 160

/* An Ed25519 identity key. The secret lives in guarded (sodium_malloc) memory. */
typedef struct bftnet_key bftnet_key_t;

/* Generates a fresh key. *out is owned by the caller (bftnet_key_free). */
BFTNET_API int bftnet_key_generate(bftnet_key_t **out) BFTNET_WUR;
/* Loads a key from a file holding a libp2p protobuf PrivateKey (Ed25519). */
BFTNET_API int bftnet_key_load(const char *path, bftnet_key_t **out) BFTNET_WUR;
/* Parses a libp2p protobuf PrivateKey from memory. */
BFTNET_API int bftnet_key_from_protobuf(const uint8_t *buf, size_t len,
                                        bftnet_key_t **out) BFTNET_WUR;
/* Writes the key to a new file, mode 0600 (fails with -EEXIST if present). */
BFTNET_API int bftnet_key_save(const bftnet_key_t *key, const char *path) BFTNET_WUR;
/* Writes the base58btc peer ID (NUL-terminated) into buf; BFTNET_EBUFSIZE
 * (and "" if cap > 0) if it does not fit: BFTNET_PEER_ID_MAX always does. */
BFTNET_API int bftnet_key_peer_id(const bftnet_key_t *key, char *buf, size_t cap);
BFTNET_API void bftnet_key_free(bftnet_key_t *key);

/* ---------------------------------------------------------------- events */

typedef enum bftnet_event_type {
  BFTNET_EV_CONNECTED = 1,      /* a secure, multiplexed connection is up */
  BFTNET_EV_DISCONNECTED = 2,   /* it ended; reason says why */
  BFTNET_EV_MEMBER_ADDED = 3,   /* bftnet_connect added node_id */
  BFTNET_EV_MEMBER_REMOVED = 4, /* bftnet_connect removed node_id */
  BFTNET_EV_MEMBER_UP = 5,      /* node_id's outbound stream is open */
  BFTNET_EV_MEMBER_DOWN = 6,    /* node_id's outbound stream broke; reason says why */
  /* Migratable streams (docs/PROTOCOL.md section 11). `stream_id` is the
   * logical stream's current ID, `outbound` 1 for the stream we send on. */
  BFTNET_EV_MIGRATED = 7,        /* moved from prev_addr's to remote_addr's connection;
                                    mig_reason says why */
  BFTNET_EV_DETACHED = 8,        /* lost its connection; resumable until detach_timeout */
  BFTNET_EV_RESUMED = 9,         /* detached stream resumed: detached_ns, retransmitted */
  BFTNET_EV_ABORTED = 10,        /* ended abnormally: mig_abort says why, lost = messages
                                    (outbound) that were never confirmed read */
  BFTNET_EV_DENIED = 11,         /* the peer denied our Migrate */
  BFTNET_EV_PEER_RESTARTED = 12, /* the member runs a new process (new incarnation):
                                   reset per-peer protocol state; old streams aborted */
  /* Dials to a member (docs/OPERATING.md). Each is emitted when a dial fails
   * differently from the last failure reported since the member was last
   * reached: once per outage unless the error (or who answers) changes. */
  BFTNET_EV_MEMBER_UNREACHABLE = 13, /* a dial failed: error, remote_addr dialed,
                                        dial_failures in a row */
  BFTNET_EV_MEMBER_WRONG_PEER = 14   /* remote_addr answered as peer_id, not as
                                        expected_peer_id (the membership's) */
} bftnet_event_type_t;

/* Why a stream migrated (BFTNET_EV_MIGRATED). */
typedef enum bftnet_mig_reason {
  BFTNET_MIG_RESUME = 1,      /* a detached stream found a connection again */
  BFTNET_MIG_DUPLICATE = 2,   /* duplicate connections converge to one */
  BFTNET_MIG_FAILBACK = 3,    /* a more preferred address answers again */
  BFTNET_MIG_ADDR_CHANGE = 4, /* bftnet_connect changed the member's addresses */
  BFTNET_MIG_PEER = 5         /* the peer (the leader of the pair) moved it */
} bftnet_mig_reason_t;

typedef struct bftnet_event {
  bftnet_event_type_t type;
  const char *node_id;     /* MEMBER_* events (and connections of members), else "" */
  const char *peer_id;     /* authenticated remote peer ID ("" if none yet) */
  const char *remote_addr; /* remote multiaddr */
  int outbound;            /* 1 if we dialed, 0 if accepted */
  bftnet_reason_t reason;  /* DISCONNECTED, MEMBER_DOWN, ABORTED: why
                              (BFTNET_REASON_GOING_AWAY: the peer stopped in order) */
  int error;               /* DISCONNECTED, MEMBER_DOWN, MEMBER_UNREACHABLE,
                              MEMBER_WRONG_PEER: the underlying error code */
  /* Migration events only. */
  uint64_t stream_id;
  const char *prev_addr;          /* MIGRATED: the connection it left ("" if detached) */
  bftnet_mig_reason_t mig_reason; /* MIGRATED */
  const char *mig_abort;  /* ABORTED: "reset", "denied", "detach_timeout", "peer_restarted", ... */
  uint64_t lost;          /* ABORTED: messages (our stream) lost unconfirmed */
  uint64_t detached_ns;   /* RESUMED: time from detach to resume */
  uint64_t retransmitted; /* RESUMED: bytes sent again */
  /* Dial events (MEMBER_UNREACHABLE, MEMBER_WRONG_PEER). */
  const char *expected_peer_id; /* the member's peer ID in the membership ("" otherwise) */
  uint32_t dial_failures;       /* failed dials in a row */
  /* MEMBER_UP, MEMBER_DOWN and the migration events: the traffic class of
   * the stream (0 without classes). */
  uint8_t cls;
  /* The connection, by its number in this node (1, 2, ... in the order they
   * were begun; never reused): CONNECTED and DISCONNECTED name theirs;
   * MEMBER_UP and the migration events the one the stream is on (MIGRATED,
   * RESUMED: moved to; DETACHED, ABORTED: the one it was on last); 0: none.
   * Tells apart connections to one peer. */
  uint64_t conn_id;
} bftnet_event_t;

/* Runs on the loop thread: must be fast, must not block or call
 * blocking bftnet functions. Strings are valid during the call only. */
typedef void (*bftnet_event_cb)(const bftnet_event_t *ev, void *user);

/* ---------------------------------------------------------------- config */

struct uv_loop_s;

struct bftnet_class;
struct bftnet_msg;

typedef struct bftnet_config {
  const bftnet_key_t *key;         /* identity; required; borrowed until free */
  struct uv_loop_s *loop;          /* NULL: bftnet runs its own loop thread (which blocks
                                      SIGPIPE); set: the application must ignore SIGPIPE */
  uint32_t ping_interval_ms;       /* keepalive period (default 5000) */
  uint32_t ping_timeout_ms;        /* missed pong => connection dead (default 10000) */
  uint32_t handshake_timeout_ms;   /* TCP connect to muxer ready (default 10000) */
  uint32_t yamux_window;           /* per-stream receive window (default 1 MiB) */
  uint32_t yamux_max_streams;      /* inbound streams per connection (default 256) */
  uint32_t max_connections;        /* all connections, any state (default 1024) */
  uint32_t max_pending_handshakes; /* unauthenticated at once (default 64) */
  bftnet_event_cb on_event;        /* optional */
  void *user;
  int log_level; /* 0 quiet, 1 errors, 2 warnings (default), 3 info, 4 debug;
                    this node's own (see on_log) */

  /* Messaging (see bftnet_connect / bftnet_send / bftnet_recv). */
  uint32_t ring_capacity;       /* per-member send ring, power of 2 (default 4096) */
  uint32_t max_message_size;    /* checked on send and receive (default 4 MiB) */
  uint32_t inbound_max_msgs;    /* per-member inbound queue, power of 2 (default 4096) */
  uint32_t inbound_max_bytes;   /* per-member inbound queue bytes (default 64 MiB) */
  uint32_t tentative_max;       /* TentativeReceivers at once (default 16) */
  uint32_t tentative_max_msgs;  /* kept per TentativeReceiver, newest (default 1024) */
  uint32_t tentative_max_bytes; /* kept per TentativeReceiver (default 1 MiB) */
  uint32_t tentative_rate;      /* bytes/s a non-member may send us (default 256 KiB/s):
                                   beyond it, its stream's credit waits, so a flood
                                   from outside the membership cannot starve members */
  uint32_t dial_backoff_min_ms; /* first redial delay (default 100) */
  uint32_t dial_backoff_max_ms; /* cap (default 5000); full jitter in between */
  /* Migratable streams. A stream whose connection dies is detached and
   * resumed on the next connection; one not resumed within detach_timeout_ms
   * is aborted and its unconfirmed messages counted lost (default 30000). */
  uint32_t detach_timeout_ms;
  uint32_t failback_ms;  /* the leader of a pair re-tries a more preferred
                            address this often (default 2000) */
  int disable_migration; /* 1: open plain /bftnet/msg streams (benchmarks) */
  /* Busy polling, for latency (default 0: off). The loop thread keeps
   * polling its sockets without sleeping for this long after it last had
   * work, and bftnet_recv polls the inbound queues this long before it
   * sleeps: a message then costs no thread wakeup (~10-30 us each, three
   * per message) but each polling thread stays busy (yielding the CPU to
   * any other runnable thread) while traffic is closer than this. At most
   * 1000000 (1 s). */
  uint32_t busy_poll_us;
  /* Opt-in: deliver messages on the loop thread instead of bftnet_recv
   * (which then fails with BFTNET_EONMESSAGE). Must be fast; data is valid
   * during the call only. What it may call: "Inside loop callbacks" below. */
  void (*on_message)(const char *from, const uint8_t *data, size_t len, void *user);
  /* Optional: this node's log lines (those at or below log_level) go here
   * instead of stderr, with `user`. msg is one line without a newline,
   * valid during the call only; level as log_level (1 error .. 4 debug).
   * Called on the loop thread, or on the thread of a bftnet call that
   * logs, possibly from several threads at once: it must be thread-safe,
   * fast, and must not call bftnet functions. Repeated lines from one
   * cause are rate limited (at most 5 a second, then a count of those
   * suppressed). */
  void (*on_log)(int level, const char *msg, void *user);

  /* Traffic classes (bftnet_class_t, "traffic classes" below). NULL: one
   * class, built from ring_capacity, inbound_max_msgs and inbound_max_bytes
   * above, behaving and speaking on the wire exactly as bftnet without
   * classes. Borrowed during bftnet_new only (copied). */
  const struct bftnet_class *classes;
  size_t nclasses; /* 0 (one implicit class) .. BFTNET_MAX_CLASSES */
  /* Percent of the connection that lower priorities keep while they have
   * data waiting behind a busy higher priority (default 10; 0: strict
   * priority; at most 50). */
  uint32_t class_min_share;
  /* TCP_NOTSENT_LOWAT for every connection, bytes: how much the kernel may
   * hold not yet sent. 0: the default, 32 KiB with two or more classes (a
   * vote must not wait behind megabytes the kernel holds), the kernel's own
   * with one. UINT32_MAX: never set. */
  uint32_t notsent_lowat;
  /* Opt-in, instead of on_message (and taking precedence): the message with
   * its class. Loop thread; msg and its data are valid during the call only
   * (msg->priv is NULL: do not release it). */
  void (*on_message_ex)(const struct bftnet_msg *msg, void *user);
  /* With two or more classes, the per-stream receive window instead of
   * yamux_window (default 256 KiB, the yamux minimum; 0: yamux_window).
   * A receiver reads its connection in order, so what the less urgent
   * classes may have in flight, unread, is what an urgent message can wait
   * behind at a busy receiver: at most one such window per class. */
  uint32_t class_window;
  /* With two or more classes, the less urgent ones (priority > 0) never
   * write past a member's connection's in-flight cap: bytes written and
   * not yet acknowledged by the member, sent or not, which is what can sit
   * in the network's queues ahead of an urgent message. The cap is about
   * twice the path's bandwidth-delay product as the kernel measures it
   * (its delivery rate and smallest round trip), or what the path drains
   * between two re-checks (250 us; docs/ARCHITECTURE.md §6), and at least
   * this many bytes. 0: the default, 4 KiB. UINT32_MAX: no cap (what TCP's
   * congestion window lets out). Linux only; elsewhere no cap. */
  uint32_t class_inflight_min;
} bftnet_config_t;

/* Fills in every default. Call before setting fields. */
BFTNET_API void bftnet_config_init(bftnet_config_t *cfg);

/* --------------------------------------------------------------- lifecycle */

typedef struct bftnet bftnet_t;

/* Creates a node; starts its loop thread unless cfg->loop is set (then all
 * calls must come from that loop's thread; see "The application's loop"
 * below). bftnet_new_ex (below) also says which field is wrong. */
BFTNET_API int bftnet_new(bftnet_t **out, const bftnet_config_t *cfg) BFTNET_WUR;
/* Closes every connection and listener, joins the loop thread. Idempotent. */
BFTNET_API int bftnet_stop(bftnet_t *net);
/* Stops if needed and frees. net may be NULL. */
BFTNET_API void bftnet_free(bftnet_t *net);

/* Listens on a multiaddr (/ip4|ip6/ADDR/tcp/PORT, port 0 = any). Writes the
 * bound address, ending in /p2p/<own peer ID>, into bound (may be NULL;
 * BFTNET_ADDR_MAX bytes always fit; if cap is too small the call fails with
 * BFTNET_EBUFSIZE and nothing stays bound). BFTNET_EBADADDR for a bad
 * multiaddr: bftnet_listen_ex (below) says which component and why. */
BFTNET_API int bftnet_listen(bftnet_t *net, const char *maddr, char *bound, size_t cap) BFTNET_WUR;
/* The node's own peer ID, as bftnet_key_peer_id (BFTNET_EBUFSIZE). */
BFTNET_API int bftnet_peer_id(const bftnet_t *net, char *buf, size_t cap);

/* Dials maddr and waits until the connection is authenticated and
 * multiplexed, or fails. If maddr ends in /p2p/<id>, a different
 * authenticated ID fails with BFTNET_EPEERMISMATCH. The remote peer ID is
 * written to peer_out (may be NULL; else cap must be at least
 * BFTNET_PEER_ID_MAX, checked before dialing: BFTNET_EBUFSIZE). Reuses an
 * existing connection to the same peer ID. Blocking: not inside a loop
 * callback (BFTNET_EINCALLBACK). bftnet_dial_ex (below) says what failed. */
BFTNET_API int bftnet_dial(bftnet_t *net, const char *maddr, uint32_t timeout_ms, char *peer_out,
                           size_t cap) BFTNET_WUR;

/* One /ipfs/ping/1.0.0 round trip to the peer dialed at maddr (dialing it
 * first if needed). Writes the round-trip time in ns. Blocking, as
 * bftnet_dial (peer_out alike). */
BFTNET_API int bftnet_ping(bftnet_t *net, const char *maddr, uint32_t timeout_ms, uint64_t *rtt_ns,
                           char *peer_out, size_t cap) BFTNET_WUR;

/* ------------------------------------------------------------ membership */

#define BFTNET_NODE_ID_MAX 64 /* node IDs are 1..63 bytes, NUL included here */
#define BFTNET_MAX_ADDRS   8

typedef struct bftnet_member {
  const char *node_id;      /* the application's name for it, e.g. "r3" */
  const char *const *addrs; /* multiaddrs ending in /p2p/<peer ID>, most preferred first */
  size_t naddrs;            /* 1..BFTNET_MAX_ADDRS, all with the same peer ID */
} bftnet_member_t;

/* Replaces the membership (Mir's Connect). Everything is validated first: a
 * bad address, a duplicate node ID, or two node IDs with one peer ID reject
 * the whole call, nothing changes, and errbuf (may be NULL) names the
 * offending entry. The entry whose peer ID is ours is this node itself: it
 * gets no Dispatcher. Added members get a Dispatcher (dialing starts) and
 * their TentativeReceiver, if any, is promoted; removed members lose theirs,
 * queued messages are released and counted, connections are closed. */
BFTNET_API int bftnet_connect(bftnet_t *net, const bftnet_member_t *members, size_t n, char *errbuf,
                              size_t errcap) BFTNET_WUR;
/* The same from a membership file: {"members":[{"id":"r1","addrs":["/ip4/…/p2p/…"]},…]}. */
BFTNET_API int bftnet_connect_file(bftnet_t *net, const char *path, char *errbuf,
                                   size_t errcap) BFTNET_WUR;

/* ------------------------------------------------------------- messaging */

/* Queues one message for node_id. Never blocks; copies the payload once.
 * When the member's ring is full the oldest queued message is dropped and
 * counted. BFTNET_ENOTFOUND for an unknown node ID, BFTNET_EINVAL for
 * ourselves, BFTNET_ETOOBIG above our max_message_size, BFTNET_EPEERTOOBIG
 * above the member's ("oversized messages", near the end). Any thread. */
BFTNET_API int bftnet_send(bftnet_t *net, const char *node_id, const void *data,
                           size_t len) BFTNET_WUR;
/* Queues one message for every member but ourselves, sharing one buffer
 * (one queue operation whatever their number). A member receives a thread's
 * sends and broadcasts in the order that thread queued them. Returns the
 * number of members it was queued for: those whose max_message_size is
 * known to be smaller skip it, counted in their dropped_too_big
 * (BFTNET_EPEERTOOBIG if that is every member). Any thread. */
BFTNET_API int bftnet_broadcast(bftnet_t *net, const void *data, size_t len) BFTNET_WUR;

typedef struct bftnet_msg {
  const char *from; /* sender's node ID */
  const uint8_t *data;
  size_t len;
  void *priv;  /* bftnet's: pass the message to bftnet_msg_release */
  uint8_t cls; /* its traffic class (this node's index; 0 without classes) */
} bftnet_msg_t;

/* Takes the next message: classes by priority (the most urgent first,
 * with the minimum share of class_min_share for the others), round-robin
 * across members within a class. timeout_ms: 0 = do
 * not wait (BFTNET_EAGAIN if none), < 0 = wait forever, else wait up to it
 * (BFTNET_ETIMEDOUT). After bftnet_stop, messages already received are
 * still returned, then BFTNET_ECLOSED. BFTNET_EONMESSAGE when the node
 * delivers to cfg.on_message instead. Any thread; inside a loop callback
 * only with timeout_ms 0 (else BFTNET_EINCALLBACK). */
BFTNET_API int bftnet_recv(bftnet_t *net, bftnet_msg_t *msg, int timeout_ms) BFTNET_WUR;
/* Up to max messages at once; returns how many (>= 1) or an error as above. */
BFTNET_API int bftnet_recv_batch(bftnet_t *net, bftnet_msg_t *msgs, int max,
                                 int timeout_ms) BFTNET_WUR;
BFTNET_API void bftnet_msg_release(bftnet_msg_t *msg);
/* A file descriptor that polls readable when messages may be waiting.
 * It is cleared only by a bftnet_recv call that finds nothing: drain with
 * bftnet_recv until BFTNET_EAGAIN before polling again. */
BFTNET_API int bftnet_recv_fd(bftnet_t *net);

typedef struct bftnet_peer_stats {
  uint64_t enqueued;         /* accepted by bftnet_send/broadcast */
  uint64_t sent;             /* written to the member's stream */
  uint64_t delivered;        /* received from the member and handed to the app */
  uint64_t dropped_overflow; /* dropped from a full ring, or broadcasts skipped
                                by a member ring_capacity behind (oldest first) */
  uint64_t dropped_removed;  /* released when the member was removed */
  uint64_t aborted;          /* lost with a stream that was aborted (reset,
                                detach timeout, peer restart, removal): the
                                messages written but not confirmed read. An
                                upper bound: a message the peer took just
                                before the abort, whose confirmation was
                                still on its way, is counted too. */
  uint64_t bytes_out, bytes_in;
  uint64_t reconnects;        /* outbound stream re-established */
  uint64_t tentative_evicted; /* messages a TentativeReceiver dropped before promotion */
  uint32_t ring_depth;        /* queued, not yet written: its ring and the
                                 broadcasts it has still to take */
  uint32_t inbound_depth;
  int connected; /* 1 if the outbound stream is up */
  /* Migratable streams (both of the member's streams unless said). */
  uint64_t migrations;                    /* exchanges completed, resumes included */
  uint64_t detached;                      /* times a stream lost its connection */
  uint64_t resumed;                       /* times a detached stream resumed */
  uint64_t retransmitted;                 /* bytes of our stream sent again after a resume */
  uint64_t detach_ns_last, detach_ns_max; /* detach -> resume, last and worst */
  uint64_t peer_restarts;                 /* new incarnations of the member seen */
  uint64_t unconfirmed;                   /* bytes of our stream written, not yet confirmed read */
  /* Messages above a size limit ("oversized messages", near the end). */
  uint64_t dropped_too_big;   /* ours for the member, above the max_message_size
                                 it said: refused by bftnet_send (it returned
                                 BFTNET_EPEERTOOBIG) or by bftnet_broadcast, or
                                 skipped for it (queued before it said) */
  uint64_t discarded_too_big; /* the member's to us, above our max_message_size:
                                 discarded unread, its stream goes on */
  uint32_t max_message_size;  /* the largest message the member said it takes
                                 (0: not said yet, or a peer that never says) */
  /* Health, for the consensus layer's timeouts (docs/OPERATING.md). From the
   * keepalive pings (ping_interval_ms) of the member's current connection
   * (kept from the previous one until the new one has its own); refreshed
   * every 100 ms. */
  uint64_t rtt_last_ns;            /* the last round trip (0: none yet) */
  uint64_t rtt_smoothed_ns;        /* smoothed: srtt += (rtt - srtt) / 8 (RFC 6298) */
  uint64_t rtt_max_ns;             /* the largest of the last 8 round trips */
  uint64_t since_heard_ns;         /* since anything last arrived from the member
                                      (UINT64_MAX: never) */
  uint64_t conn_age_ns;            /* since its current connection came up (0: none) */
  int conn_outbound;               /* that connection: 1 we dialed it, 0 it dialed us,
                                      -1 none */
  char conn_addr[BFTNET_ADDR_MAX]; /* its remote multiaddr ("" if none) */
  /* With two or more classes (class_inflight_min), that connection's
   * in-flight cap, refreshed like the health fields above: bytes its kernel
   * held, written and not yet acknowledged, when a less urgent class last
   * asked to write; the most it held at any such time; and the cap then.
   * 0 without classes, without a connection, or where the kernel does not
   * say. */
  uint64_t inflight_bytes, inflight_max_bytes, inflight_cap_bytes;
} bftnet_peer_stats_t;

/* Waits until every member's ring is empty and every byte written to it is
 * confirmed read by the member (its Receiver took it), or timeout_ms passes:
 * 0 or BFTNET_ETIMEDOUT. A replica that must not lose its last messages calls
 * it before bftnet_stop. timeout_ms 0 only looks, anywhere. Inside a loop
 * callback a wait fails at once with BFTNET_EINCALLBACK. On the
 * application's loop (cfg.loop), called from its thread outside uv_run, it
 * turns that loop itself while it waits. */
BFTNET_API int bftnet_flush(bftnet_t *net, int timeout_ms) BFTNET_WUR;

BFTNET_API int bftnet_peer_stats(bftnet_t *net, const char *node_id, bftnet_peer_stats_t *out);

/* Counter values (atomic snapshot of one counter). */
BFTNET_API uint64_t bftnet_counter(const bftnet_t *net, bftnet_counter_id_t id);
BFTNET_API const char *bftnet_counter_name(bftnet_counter_id_t id);

/* ------------------------------------- errors that say what to fix */

/* The same as bftnet_new, bftnet_listen and bftnet_dial, and on failure they
 * also write into errbuf (may be NULL; at most errcap bytes, NUL-terminated,
 * cut if longer; "" on success) one line that names what to fix:
 *   the config field, its value and the rule:
 *     "ring_capacity=1000: not a power of 2 in [4, 2^24]"
 *     "max_message_size=0: not in [1, 67108864] (64 MiB)"
 *     "busy_poll_us=2000000: above 1000000 (1 s)"
 *   the multiaddr and the component:
 *     "multiaddr '/ip4/127.0.0.1/tcp/99999': bad port '99999'"
 *     "multiaddr '/ip4//tcp/1': empty component"
 *   the caller's buffer: "bound: cap=8 too small for the bound address ..."
 *   or what the network said: "dial '/ip4/...': not up within timeout_ms=100".
 * The return codes are those of the plain forms, which are these with errbuf
 * NULL (the text also goes to the node's log at level 3). New functions
 * rather than new parameters: the plain forms keep their ABI. */
BFTNET_API int bftnet_new_ex(bftnet_t **out, const bftnet_config_t *cfg, char *errbuf,
                             size_t errcap) BFTNET_WUR;
BFTNET_API int bftnet_listen_ex(bftnet_t *net, const char *maddr, char *bound, size_t cap,
                                char *errbuf, size_t errcap) BFTNET_WUR;
BFTNET_API int bftnet_dial_ex(bftnet_t *net, const char *maddr, uint32_t timeout_ms, char *peer_out,
                              size_t cap, char *errbuf, size_t errcap) BFTNET_WUR;

/* Output buffers. Every function that writes into a caller's buffer
 * (buf/cap, bound/cap, peer_out/cap) fails with BFTNET_EBUFSIZE when it is
 * too small, never truncates a result silently, and leaves nothing behind:
 * BFTNET_PEER_ID_MAX and BFTNET_ADDR_MAX are sizes that always fit. Error
 * texts (errbuf/errcap) are the exception: they are cut to fit. */

/* ------------------------------------------------- oversized messages */
/*
 * Members may run with different max_message_size. Each node says its own
 * in the StreamMigration messages of the streams it opens and answers
 * (docs/PROTOCOL.md 8.1), so a member learns the others' limits as their
 * streams come up (bftnet_peer_stats: max_message_size, 0 until said).
 * Then, on the sender:
 *   - bftnet_send of more than the member takes fails with
 *     BFTNET_EPEERTOOBIG; bftnet_broadcast skips that member;
 *   - a message queued before the member said its limit and larger than it
 *     is dropped when its turn comes, never written;
 * all counted in the member's dropped_too_big (and the node's counter
 * dropped_too_big). On the receiver, a message that arrives larger than
 * our max_message_size anyway (a peer that never says its limit, such as
 * js-libp2p or an older bftnet; or one that lied) is skipped as its bytes
 * arrive, never buffered, and counted in the member's discarded_too_big
 * (counter inbound_too_big, a rate-limited warning); the stream goes on
 * with the next message. Only a length above 64 MiB, which no bftnet node
 * may send, is taken as a protocol violation (the connection closes,
 * bad_message). So a message is missing only where a side counted it: the
 * sender when it knew the limit, the receiver otherwise.
 */

/* ------------------------------------------------ inside loop callbacks */
/*
 * Loop callbacks are on_event and on_message (and, with cfg.loop, the
 * application's own libuv callbacks on that loop). They run on the node's
 * loop thread, which does all of the node's network work: while one runs,
 * nothing else of that node moves. So inside them:
 *   allowed (never block): bftnet_send, bftnet_broadcast, bftnet_recv and
 *     bftnet_recv_batch with timeout_ms 0, bftnet_msg_release,
 *     bftnet_recv_fd, bftnet_flush with timeout_ms 0 (a look),
 *     bftnet_peer_stats, bftnet_counter, bftnet_peer_id, the key and
 *     error-text functions, and any call on another node that has its own
 *     loop thread;
 *   refused with BFTNET_EINCALLBACK, at once (they wait for the loop that
 *     is running the callback): bftnet_listen, bftnet_dial, bftnet_ping,
 *     bftnet_connect, bftnet_connect_file, bftnet_stop, bftnet_flush and
 *     bftnet_recv with a timeout, and their _ex forms;
 *   a misuse that aborts the process: bftnet_free of the same node.
 * on_log must call no bftnet function at all.
 *
 * The application's loop (cfg.loop set): bftnet starts no thread; every
 * call comes from the thread that runs that loop (bftnet_send and
 * bftnet_broadcast may also come from other threads). The blocking calls
 * above turn the loop themselves (uv_run through bftnet's transport) until
 * they complete, so they must be called outside uv_run: inside on_event and
 * on_message they fail with BFTNET_EINCALLBACK, and inside the
 * application's own uv callbacks they are not allowed either (libuv's
 * uv_run is not reentrant; bftnet cannot tell those callbacks from the
 * thread's other code, so this one is the caller's duty). From there, use
 * the non-blocking forms: bftnet_flush(net, 0) until it returns 0,
 * bftnet_recv(net, &m, 0). The application runs the loop often enough for
 * bftnet's timers (pings, detach timeouts) and ignores SIGPIPE.
 */
/* ------------------------------------------------------------- operating */

/* "connected", "member_up", ...: the event type's name; "unknown" for a
 * value this version does not know. Static strings. */
BFTNET_API const char *bftnet_event_name(bftnet_event_type_t type);

/* Renders every node counter and every member's statistics in the
 * Prometheus text exposition format (version 0.0.4): names prefixed
 * bftnet_, counters ending in _total, base units (_seconds, _bytes), a HELP
 * and a TYPE line per family, labels only from the membership (peer="r1",
 * the member's node ID; never an unauthenticated peer's ID).
 * docs/OPERATING.md lists every metric. Writes a NUL-terminated text into
 * buf and its length (without the NUL) into *len. When cap is too small:
 * BFTNET_EBUFSIZE, buf holds "" (cap > 0), and *len the capacity needed now
 * (counters grow: allow some slack). Any thread, loop callbacks included. */
BFTNET_API int bftnet_metrics_text(bftnet_t *net, char *buf, size_t cap, size_t *len) BFTNET_WUR;
/* ------------------------------------------------------- traffic classes */
/*
 * A replica sends votes (tiny, urgent), blocks (large) and bulk (sync,
 * gossip) to the same member. Each class is its own migratable stream per
 * member with its own send ring, drop policy and inbound queue, all riding
 * the member's one connection. The loop thread fills the connection by
 * priority in pieces of at most one Noise frame (16 KiB), so a message of
 * the most urgent class waits behind at most about one frame of the others
 * in bftnet's buffers (docs/ARCHITECTURE.md, "Traffic classes"). One
 * class's drops, backlog or full inbound queue never touch another class.
 * Wire: class 0 is /bftnet/msg/1.0.0 whatever its name (so peers without
 * classes, js-libp2p included, talk to class 0); class k > 0 is
 * /bftnet/msg/<name>/1.0.0. Both sides match classes by name; a class the
 * peer does not have is refused with `na` (docs/PROTOCOL.md section 8.2).
 */
#define BFTNET_MAX_CLASSES    8
#define BFTNET_CLASS_NAME_MAX 32 /* a name is 1..31 of [A-Za-z0-9._-] */

typedef enum bftnet_policy {
  BFTNET_DROP_OLDEST = 0, /* a full ring drops its oldest message (wait-free send) */
  BFTNET_KEEP_LATEST = 1  /* a message with a nonzero key replaces the queued one
                             (not yet written) with the same key; a full ring
                             drops its oldest. Sends take a short spin lock. */
} bftnet_policy_t;

typedef struct bftnet_class {
  const char *name;        /* unique; on the wire for classes > 0 */
  uint8_t priority;        /* 0 is the most urgent */
  uint32_t weight;         /* share among classes of equal priority, >= 1 */
  uint32_t ring_capacity;  /* per member, messages, power of 2 (4..2^24) */
  uint64_t ring_max_bytes; /* per member, queued payload bytes, > 0 */
  bftnet_policy_t policy;
  uint32_t inbound_max_msgs;  /* per member, power of 2 (4..2^24) */
  uint64_t inbound_max_bytes; /* per member, > 0 */
} bftnet_class_t;

/* Fills a class with the defaults: priority 0, weight 1, ring 4096
 * messages and 64 MiB, drop-oldest, inbound 4096 messages and 64 MiB. */
BFTNET_API void bftnet_class_init(bftnet_class_t *cls, const char *name);

/* What bftnet_new checks, with the reason in errbuf (may be NULL): 0,
 * BFTNET_EINVAL, or BFTNET_EBADCLASS for a bad class list (more than
 * BFTNET_MAX_CLASSES, a missing, malformed or duplicate name, a capacity
 * that is not a power of 2, a zero bound or weight). */
BFTNET_API int bftnet_config_check(const bftnet_config_t *cfg, char *errbuf, size_t cap) BFTNET_WUR;

typedef struct bftnet_send_opts {
  uint8_t cls;  /* the class's index in cfg.classes */
  uint64_t key; /* keep-latest classes: 0 = no key; ignored by drop-oldest */
} bftnet_send_opts_t;

/* Queues one message in a class: for node_id, or for every member but
 * ourselves when node_id is NULL (a broadcast: one buffer, one queue
 * operation; returns the number of members). opts NULL = class 0, no key:
 * bftnet_send and bftnet_broadcast. BFTNET_ENOCLASS for a class that was
 * not configured, else as bftnet_send / bftnet_broadcast. Never blocks;
 * wait-free for drop-oldest classes. Any thread. */
BFTNET_API int bftnet_send_ex(bftnet_t *net, const char *node_id, const bftnet_send_opts_t *opts,
                              const void *data, size_t len) BFTNET_WUR;

typedef struct bftnet_class_stats {
  uint64_t enqueued;   /* accepted by sends and broadcasts */
  uint64_t sent;       /* written to the class's stream */
  uint64_t delivered;  /* received from the member in this class and handed over */
  uint64_t dropped;    /* dropped from the full ring (or broadcasts skipped) */
  uint64_t superseded; /* replaced by a newer message with its key (keep-latest) */
  uint64_t aborted;    /* lost with an aborted stream (bftnet_peer_stats_t) */
  uint64_t bytes_out, bytes_in;
  uint32_t ring_depth;    /* queued, not yet written */
  uint32_t inbound_depth; /* received, not yet taken */
  /* Queueing delay, send -> written to the stream (which, with two or more
   * classes, is handed to the connection), since the member was added:
   * percentiles over a sample (every message queued into an empty ring,
   * one in 16 of the others, weighted back), 0 without samples. */
  uint64_t delay_p50_ns, delay_p99_ns, delay_max_ns;
  uint64_t delay_samples;
  int connected;    /* the class's stream to the member is up */
  uint64_t refused; /* times the member answered na to this class */
  /* Head-of-line blocking on this node: the most bytes of the member's
   * other classes written to its connection while one sampled message of
   * this class waited (queued -> written). For the most urgent class this
   * stays within one piece (16 KiB) whatever the others queue; what was
   * already in the connection's output when it was queued is bounded by
   * the pacing (docs/ARCHITECTURE.md, "Traffic classes"). */
  uint64_t ahead_max_bytes;
  uint64_t unconfirmed; /* bytes of the class's stream written, not yet confirmed read */
  /* The member's messages of this class its TentativeReceiver dropped
   * before it was promoted (bftnet_peer_stats_t.tentative_evicted is the
   * sum over the classes): the newest are kept, so these are older ones. */
  uint64_t tentative_evicted;
} bftnet_class_stats_t;

/* bftnet_recv_batch restricted to some classes (bit i: class i; others
 * stay queued for other calls): a thread of its own for the votes while
 * another validates blocks at its pace. A thread waiting here is woken only
 * by messages of its classes (each class has a wakeup of its own), never by
 * another class's traffic. BFTNET_ENOCLASS for a bit beyond the classes or
 * an empty set. Any thread. */
BFTNET_API int bftnet_recv_classes(bftnet_t *net, uint32_t classes, bftnet_msg_t *msgs, int max,
                                   int timeout_ms) BFTNET_WUR;

/* One class of one member: BFTNET_ENOTFOUND, BFTNET_ENOCLASS. Any thread. */
BFTNET_API int bftnet_class_stats(bftnet_t *net, const char *node_id, uint8_t cls,
                                  bftnet_class_stats_t *out) BFTNET_WUR;
/* Node-wide, per traffic class: the received messages that disappeared
 * before the application took them and that no member's statistics keep
 * (a removed member's go with it). Counted since bftnet_new, never reset.
 * Per counter, the sum over the classes is the node counter of the same
 * name, so a check per sender and class can account for every message. */
typedef struct bftnet_class_totals {
  uint64_t discarded_removed; /* received in the class from members that were then
                                 removed, never taken (INBOUND_DISCARDED_REMOVED) */
  uint64_t tentative_evicted; /* of non-members in the class, dropped by their
                                 TentativeReceivers: promoted later or never, and
                                 those destroyed to make room (TENTATIVE_EVICTED) */
} bftnet_class_totals_t;

/* One class's totals (class 0 without configuration: the node counters):
 * 0, BFTNET_EINVAL (NULL), BFTNET_ENOCLASS (beyond the configured classes).
 * Any thread; each value an atomic load, like the other statistics. */
BFTNET_API int bftnet_class_totals(bftnet_t *net, uint8_t cls,
                                   bftnet_class_totals_t *out) BFTNET_WUR;

/* The number of classes (1 without configuration), and one's name. */
BFTNET_API int bftnet_class_count(const bftnet_t *net);
BFTNET_API const char *bftnet_class_name(const bftnet_t *net, uint8_t cls);

#ifdef __cplusplus
}
#endif
#endif /* BFTNET_H */
