/*
 * mig_core.h — the pure core of /libp2p/stream-migration (PROTOCOL.md §11):
 * stream IDs and roles, the StreamMigration codec, the per-stream state
 * machine (mig_sm_t: byte offsets, retransmit window, half-close) and the
 * per-peer registry (mig_reg_t). codec.c and sm.c implement it.
 *
 * No sockets, no timers, no clock: every function is an event. It checks the
 * state first, computes into locals, commits at the end, and reports what the
 * caller must do as a list of actions (mig_actions_t). Deadlines are absolute
 * times passed in (`now`, nanoseconds from the clock seam); mig_reg_tick()
 * is the only event that fires them. The caller (the wiring onto net/, in
 * the other files of migration/src) maps carriers — the yamux streams under
 * a logical stream — to opaque non-zero 64-bit handles of its choosing.
 *
 * Threads: a registry belongs to the loop thread; nothing here locks.
 * Errors: 0 or a negative BFTNET_E*. An event that returns an error has
 * changed nothing and emitted no action, except where "violation" is said:
 * then the violation is counted, the actions say what to reset, and the
 * function returns BFTNET_EPROTO.
 * Private to migration/ (its tests reach it through a test-only include
 * directory); the other folders see migration.h.
 */
#ifndef BFTNET_MIG_CORE_H
#define BFTNET_MIG_CORE_H

#include "core.h"
#include "proto.h"

/* -------------------------------------------------------------- limits */
#define MIG_MSG_MAX     1024u /* one StreamMigration message, checked before decoding */
#define MIG_MAX_STREAMS 64u   /* logical streams per peer (live + not yet freed) */
#define MIG_MAX_ALIASES 16u   /* old IDs remembered per logical stream */
#define MIG_MAX_ACTIONS 512u  /* actions one event may emit */
#define MIG_PROTO_ID    "/libp2p/stream-migration"
/* The confirmation stream (§11.12): one per connection and direction, it
 * carries the Confirms of its opener. A peer that answers `na` to it is an
 * older one that confirms with yamux window updates (§11.11). */
#define MIG_CONFIRM_PROTO_ID "/libp2p/stream-migration/confirm"

_Static_assert(MIG_MSG_MAX <= BN_PB_ARENA_MAX / 4, "a message decodes within the arena");
_Static_assert(MIG_MAX_ACTIONS >= 6u * MIG_MAX_STREAMS + 8u,
               "a restart or tick fits one action list");

/* ------------------------------------------------------- IDs and roles */

/* True if self's binary peer ID is lower (peerid_cmp < 0): self uses even IDs. */
bool mig_self_is_lower(const peerid_t *self, const peerid_t *peer);
/* The leader rule (§11.4): SHA256(lower || higher) even -> lower leads, else
 * higher. True if self leads for this pair. Symmetric: exactly one side leads. */
bool mig_self_is_leader(const peerid_t *self, const peerid_t *peer);
/* True if id has the parity of a sender that is the lower peer (even) or not. */
static inline bool mig_id_parity_ok(uint64_t id, bool sender_is_lower) {
  return (id & 1u) == (sender_is_lower ? 0u : 1u);
}

/* -------------------------------------------------------------- codec */

typedef enum mig_msg_type {
  MIG_MSG_LABEL = 1,
  MIG_MSG_MIGRATE = 2,
  MIG_MSG_ACK = 3,
  MIG_MSG_CONFIRM_START = 4, /* first message of a confirmation stream */
  MIG_MSG_CONFIRM = 5,       /* id, read_offset */
  MIG_MSG_RESERVED = 6       /* oneof member 6 or 7: ignored on a confirmation stream */
} mig_msg_type_t;

typedef struct mig_msg {
  mig_msg_type_t type;
  uint64_t id;          /* Label, Migrate, Confirm */
  uint64_t from;        /* Migrate */
  bool deny;            /* AckMigrate */
  bool has_incarnation; /* always set in ConfirmStart */
  uint64_t incarnation;
  bool has_read_offset; /* Migrate, AckMigrate; always set in Confirm */
  uint64_t read_offset;
  uint64_t max_message_size; /* the sender's (PROTOCOL.md 8.1); 0: absent */
} mig_msg_t;

/* Appends uvarint(len) || StreamMigration to out. BFTNET_EINVAL for a bad
 * type (MIG_MSG_RESERVED is never sent). */
int mig_msg_encode(const mig_msg_t *m, bn_buf_t *out) BFTNET_WUR;
/* Decodes one length-prefixed message from p[0, n): > 0 bytes used, 0 need
 * more, BFTNET_ETOOBIG for a length above MIG_MSG_MAX (checked before the
 * body), BFTNET_EPROTO for a bad varint, a protobuf that does not decode, or
 * not exactly one oneof member (fields 1..7; 6 and 7 decode as
 * MIG_MSG_RESERVED). */
int mig_msg_decode(const uint8_t *p, size_t n, mig_msg_t *out) BFTNET_WUR;

/* A feed/next reader for the one message at the start of a carrier. Errors
 * are sticky. After next() returned 1, mig_reader_rest() gives the bytes fed
 * beyond the message (the first bytes of L). */
typedef struct mig_reader {
  int err;
  bool done;
  size_t used; /* bytes of buf the message took */
  size_t len;
  uint8_t buf[BN_UVARINT_MAX_BYTES + MIG_MSG_MAX];
} mig_reader_t;

void mig_reader_init(mig_reader_t *r);
/* Takes up to n bytes; returns how many it took (0 once done or failed). */
size_t mig_reader_feed(mig_reader_t *r, const uint8_t *p, size_t n);
/* 1: *out holds the message; 0: need more; < 0: the sticky error. */
int mig_reader_next(mig_reader_t *r, mig_msg_t *out);
void mig_reader_rest(const mig_reader_t *r, const uint8_t **p, size_t *n);

/* A reader for a sequence of messages (a confirmation stream). It keeps
 * only an incomplete message (at most one, bounded), decoding the rest in
 * place. Errors are sticky. */
typedef struct mig_seq {
  int err;
  size_t len; /* bytes of an incomplete message held in buf */
  uint8_t buf[BN_UVARINT_MAX_BYTES + MIG_MSG_MAX];
} mig_seq_t;

void mig_seq_init(mig_seq_t *r);
/* Takes bytes from *p, *n (advancing both) until one message is complete:
 * 1 with *out, 0 when every byte was taken and more are needed, < 0 the
 * sticky error. */
int mig_seq_next(mig_seq_t *r, const uint8_t **p, size_t *n, mig_msg_t *out);

/* ----------------------------------------------------- reasons, counts */
/* Violations (V) are rejected inputs; aborts (A) end a logical stream. */
#define MIG_REASON_MAP(XX)                                                                         \
  XX(NONE, "none")                                                                                 \
  XX(BAD_MSG, "bad_message")              /* V: undecodable, wrong message type on a carrier */    \
  XX(UNEXPECTED_ACK, "unexpected_ack")    /* V: AckMigrate on a carrier with no pending Migrate */ \
  XX(BAD_PARITY, "bad_parity")            /* V: id of the sender's wrong parity */                 \
  XX(ID_IN_USE, "id_in_use")              /* V: Label reusing a live ID (or alias) */              \
  XX(REPLAY, "replayed_migrate")          /* V: Migrate whose id was already used */               \
  XX(NOT_LEADER, "migrate_from_follower") /* V: Migrate from the non-leader (denied) */            \
  XX(UNKNOWN_FROM, "unknown_from")        /* V: Migrate naming no live stream (denied) */          \
  XX(NO_OFFSET, "no_read_offset")         /* V: Migrate/Ack without read_offset */                 \
  XX(BAD_OFFSET, "bad_read_offset")       /* V+A: offset outside [confirmed, sent] */              \
  XX(BAD_CREDIT, "bad_credit")            /* V+A: credit beyond the bytes sent (older peer) */     \
  XX(GAP, "offset_gap")                   /* V+A: carrier bytes beyond the read offset */          \
  XX(DATA_AFTER_CLOSE,                                                                             \
     "data_after_close") /* V+A: data past the writer's FIN: close the connection */               \
  XX(DATA_BEFORE_ACK, "data_before_ack")     /* V+A: L bytes on a carrier before its AckMigrate */ \
  XX(LIMIT, "stream_limit")                  /* V: more than MIG_MAX_STREAMS */                    \
  XX(RESET, "reset")                         /* A: RST on a carrier of L */                        \
  XX(DENIED, "denied")                       /* A: resume denied */                                \
  XX(DETACH_TIMEOUT, "detach_timeout")       /* A: not resumed within detach_timeout */            \
  XX(PEER_RESTARTED, "peer_restarted")       /* A: new incarnation */                              \
  XX(NA, "migration_na")                     /* A: peer answered na to the Label */                \
  XX(LOCAL, "local_abort")                   /* A: mig_sm_abort */                                 \
  XX(BAD_CONFIRM, "bad_confirm")             /* V+A: a Confirm beyond the bytes sent */            \
  XX(STALE_INCARNATION, "stale_incarnation") /* V: from an incarnation since replaced */

typedef enum mig_reason {
#define MIG_XX_(name, str) MIG_R_##name,
  MIG_REASON_MAP(MIG_XX_)
#undef MIG_XX_
      MIG_R_COUNT
} mig_reason_t;

const char *mig_reason_str(mig_reason_t r);

/* ------------------------------------------------------------ actions */
typedef enum mig_act_type {
  MIG_ACT_SEND_MSG =
      1,           /* write StreamMigration `msg` on `carrier` (after its multistream prefix) */
  MIG_ACT_DELIVER, /* of the `n` bytes just fed: drop the first `skip`, give `len` to L's reader */
  MIG_ACT_CREDIT,  /* grant the peer `n` bytes of yamux credit on `carrier` */
  MIG_ACT_FIN,     /* half-close `carrier` */
  MIG_ACT_RST,     /* reset `carrier` */
  MIG_ACT_RELEASE, /* the core forgets `carrier`: FIN it if open, discard (and never credit) its
                      bytes */
  MIG_ACT_CLOSE_CONN, /* close the connection of `carrier` (PROTOCOL_ERROR) */
  MIG_ACT_READ_EOF,   /* L's incoming direction ended (once) */
  MIG_ACT_MIGRATED,   /* L now rides `carrier` under `id` */
  MIG_ACT_DETACHED,   /* L lost its carrier; a deadline runs */
  MIG_ACT_ABORTED,    /* L aborted: `reason`, `lost` unconfirmed bytes */
  MIG_ACT_CLOSED,     /* L closed both ways, every byte confirmed */
  MIG_ACT_PEER_RESTARTED
} mig_act_type_t;

typedef struct mig_action {
  mig_act_type_t type;
  uint64_t stream; /* L's current ID (0 where not about a stream) */
  uint64_t carrier;
  uint64_t id;
  size_t skip, len, n;
  uint64_t lost;
  mig_reason_t reason;
  mig_msg_t msg;
} mig_action_t;

typedef struct mig_actions {
  size_t n;
  mig_action_t a[MIG_MAX_ACTIONS];
} mig_actions_t;

static inline void mig_actions_clear(mig_actions_t *acts) {
  acts->n = 0;
}

/* ------------------------------------------------------ logical stream */
typedef enum mig_state {
  MIG_S_LABELING,  /* we sent Label; the echo of MIG_PROTO_ID not yet read */
  MIG_S_OPEN,      /* on one carrier, no exchange in progress */
  MIG_S_MIGRATING, /* an exchange in progress: a Migrate awaits its Ack (initiator),
                      or the old carrier still drains (either side) */
  MIG_S_DETACHED,  /* no carrier; resumable until `deadline` */
  MIG_S_CLOSED,    /* final: FIN both ways, every byte confirmed */
  MIG_S_ABORTED,   /* final */
  MIG_S_COUNT
} mig_state_t;

/* The exchange sub-machine (§11.9), derived from the carrier slots. */
typedef enum mig_xstate {
  MIG_X_IDLE,
  MIG_X_I_WAIT_ACK, /* initiator: Migrate sent on `pend`, no Ack yet */
  MIG_X_I_DRAIN,    /* initiator: acked; FIN sent on `old`, awaiting its FIN */
  MIG_X_R_DRAIN,    /* responder: acked; reading `old` to EOF, then FIN */
  MIG_X_COUNT
} mig_xstate_t;

const char *mig_state_str(mig_state_t s);
const char *mig_xstate_str(mig_xstate_t x);

/* One carrier as L sees it. Offsets are L's byte offsets. */
typedef struct mig_slot {
  uint64_t h;         /* caller's handle; 0 = empty slot */
  uint64_t in_start;  /* offset of the first L byte read on it */
  uint64_t in_recv;   /* L bytes read on it */
  uint64_t out_start; /* offset of the first L byte written on it */
  uint64_t out_sent;  /* L bytes written on it */
  uint64_t credited;  /* L bytes the peer credited on it */
  uint64_t owed;      /* credit withheld while frozen */
  bool frozen;        /* our read offset was reported: grant no credit */
  bool fin_in, fin_out;
} mig_slot_t;

typedef struct mig_sm {
  mig_state_t state;
  uint64_t id;                       /* current ID */
  uint64_t pend_id;                  /* ID named by the pending Migrate (initiator) */
  uint64_t aliases[MIG_MAX_ALIASES]; /* older IDs, ring; 0-filled slots unused */
  size_t n_alias;
  uint64_t pinned; /* responder: the last `from` named (always findable) */
  bool has_pinned; /* pinned is set (0 is a real ID: the lower peer's first) */
  bool we_opened;
  /* The ID L was opened with (its Label's) and the opener's incarnation:
   * they stay when L migrates and its ID changes. The opener's IDs rise
   * across all its streams to us within one incarnation (§11.3), so of two
   * streams of one opener incarnation the higher open_id is the newer. */
  uint64_t open_id;
  uint64_t open_inc;
  bool open_inc_known; /* false: a Label without incarnation */
  mig_slot_t cur, old, pend;
  /* writer */
  uint64_t w_base;      /* offset of the first byte the ring holds */
  uint64_t w_written;   /* bytes the application wrote */
  uint64_t w_confirmed; /* bytes the peer confirmed read */
  uint64_t w_sent_max;  /* highest offset ever put on a carrier */
  bool w_closed;        /* application closed its direction */
  /* [w_base, w_written): byte x at ring[x & (ring_cap - 1)]. A ring, not a
   * buffer compacted on the fly: compaction moved the unconfirmed bytes (up
   * to a window) every time the tail reached the end, several bytes moved
   * per byte written (docs/BENCHMARKS.md). */
  uint8_t *ring;
  size_t ring_cap; /* 0 or a power of two; grows, never shrinks */
  /* reader */
  uint64_t r_delivered; /* read offset: bytes taken into L's reader state */
  /* Of those, the last r_held the embedder has not released yet (its
   * reader is over its limit and withholds their credit). The offset a
   * Migrate or AckMigrate reports is r_delivered - r_held: the writer takes
   * it as confirmation, and reporting held bytes let one more window in on
   * every migration (a never-reading member grew without bound). They come
   * again on the new carrier and are skipped as duplicates. */
  uint64_t r_held;
  bool r_eof; /* L's incoming direction ended at r_final */
  uint64_t r_final;
  /* The highest read offset reported to the peer (Confirm, Migrate or
   * AckMigrate). Confirms report only more, and none while an exchange that
   * reported an offset is unsettled (mig_sm_confirm_due). */
  uint64_t r_reported;
  bool r_hold;         /* responder: our AckMigrate reported r_reported and
                          the initiator may not have read it yet ... */
  uint64_t r_hold_old; /* ... until its FIN on this carrier (that exchange's
                          S_old; 0 for a resume) or its first byte or FIN on
                          the current one */
  /* exchange */
  bool uncertain;      /* initiator: a Migrate may have been accepted unacked */
  bool no_migrate;     /* initiator: denied once, never retry gracefully */
  uint64_t deadline;   /* DETACHED (or resuming): abort at this time */
  mig_reason_t reason; /* ABORTED: why */
} mig_sm_t;

mig_xstate_t mig_sm_xstate(const mig_sm_t *s);
/* Bytes L holds for retransmission (written, not released). */
static inline uint64_t mig_sm_window(const mig_sm_t *s) {
  return s->w_written - s->w_base;
}

/* ------------------------------------------------------------ registry */
typedef struct mig_reg_config {
  peerid_t self, peer;
  uint64_t incarnation;    /* ours, drawn from the RNG seam */
  uint64_t detach_timeout; /* ns */
  uint64_t window_max;     /* retransmit window bound, bytes (<= yamux window) */
} mig_reg_config_t;

/* How the peer confirms what it read (§11.12): with Confirm messages on a
 * confirmation stream (ON), or, an older peer that answered `na` to it,
 * with yamux window updates (LEGACY). Until one of them is known, credit is
 * recorded per carrier but frees nothing. */
typedef enum mig_mode { MIG_MODE_UNKNOWN, MIG_MODE_ON, MIG_MODE_LEGACY } mig_mode_t;

#define MIG_OLD_INCARNATIONS 4u
/* How long after it was replaced a message of an old incarnation is taken
 * for a late one (refused) rather than a sign that process lives on (a
 * restart back to it): a dead process's bytes still in flight or unread
 * arrive within seconds; one that is alive keeps talking. */
#define MIG_STALE_INC_NS (10ull * 1000000000ull)

typedef struct mig_reg {
  mig_reg_config_t cfg;
  bool lower, leader;
  mig_mode_t mode;
  uint64_t epoch;  /* counts the peer's restarts (a mode is per incarnation) */
  uint64_t next_k; /* IDs: 2k (lower) or 2k + 1 ... */
  /* ... with k drawn from *ids instead when set: one counter the node's
   * registries share, so that our IDs rise across every registry of this
   * incarnation, also one made again for a peer removed and added back
   * (§11.3). The caller owns it; NULL: next_k. */
  uint64_t *ids;
  bool peer_inc_known;
  uint64_t peer_inc;
  /* The incarnations the peer had before peer_inc, newest first: a message
   * from one of them (late, on a connection of the old process) is stale,
   * not another restart (§11.7). */
  struct {
    uint64_t inc, at; /* the incarnation, when it was replaced (ns) */
  } peer_inc_old[MIG_OLD_INCARNATIONS];
  unsigned peer_inc_nold;
  mig_sm_t *streams[MIG_MAX_STREAMS];
  uint64_t counts[MIG_R_COUNT]; /* violations and aborts per reason */
} mig_reg_t;

int mig_reg_init(mig_reg_t *p, const mig_reg_config_t *cfg) BFTNET_WUR;
/* Frees every stream. Emits nothing (the caller resets what it still holds). */
void mig_reg_free(mig_reg_t *p);
/* Allocates the next ID of our parity (from *ids when set, else next_k). */
uint64_t mig_reg_next_id(mig_reg_t *p);
/* The live stream known by id or by one of its aliases, or NULL. */
mig_sm_t *mig_reg_find(const mig_reg_t *p, uint64_t id);
/* The stream that tracks carrier h (in any slot), or NULL. */
mig_sm_t *mig_reg_find_carrier(const mig_reg_t *p, uint64_t h);
/* Frees a final (CLOSED/ABORTED) stream; BFTNET_ESTATE otherwise. */
int mig_reg_sm_free(mig_reg_t *p, mig_sm_t *s);

/* --- events. acts is appended to (never cleared); `now` in ns. --- */

/* We open L on carrier h: allocates an ID, emits SEND_MSG(Label). */
int mig_reg_open(mig_reg_t *p, uint64_t h, mig_actions_t *acts, mig_sm_t **out) BFTNET_WUR;
/* The peer echoed MIG_PROTO_ID (LABELING -> OPEN), or answered na (-> ABORTED). */
int mig_sm_on_echo(mig_reg_t *p, mig_sm_t *s, mig_actions_t *acts);
int mig_sm_on_na(mig_reg_t *p, mig_sm_t *s, mig_actions_t *acts);
/* The first StreamMigration message of carrier h (Label or Migrate, the peer
 * opened h), or the AckMigrate on a carrier we sent Migrate on. *out (may be
 * NULL) receives the stream concerned. Violations: EPROTO (see reasons). */
int mig_reg_on_msg(mig_reg_t *p, uint64_t h, const mig_msg_t *m, uint64_t now, mig_actions_t *acts,
                   mig_sm_t **out);
/* n bytes of L read on carrier h: emits DELIVER (and CREDIT unless frozen). */
int mig_reg_on_data(mig_reg_t *p, uint64_t h, size_t n, mig_actions_t *acts);
int mig_reg_on_fin(mig_reg_t *p, uint64_t h, mig_actions_t *acts);
/* Explicit RST of carrier h: aborts L, except for a pending Migrate's carrier
 * (then the attempt failed: "try again later"). */
int mig_reg_on_rst(mig_reg_t *p, uint64_t h, mig_actions_t *acts);
/* h's connection died (not an RST): L detaches, never aborts here. */
int mig_reg_on_lost(mig_reg_t *p, uint64_t h, uint64_t now, mig_actions_t *acts);
/* The peer credited n more L bytes on h (the caller has subtracted the
 * bytes it wrote on h before L's first byte). A confirmation only with an
 * older peer (LEGACY); recorded, not applied, while the mode is UNKNOWN;
 * ignored (0) when the peer confirms with Confirms (ON). */
int mig_reg_on_credit(mig_reg_t *p, uint64_t h, uint64_t n, mig_actions_t *acts);
/* The peer's way of confirming is known (§11.12): ON or LEGACY, once per
 * incarnation (BFTNET_ESTATE for a change, BFTNET_EINVAL for UNKNOWN).
 * LEGACY applies the credit recorded meanwhile (a credit beyond what was
 * sent is a violation then). Either may close streams (CLOSED). */
int mig_reg_set_mode(mig_reg_t *p, mig_mode_t mode, mig_actions_t *acts);
/* A Confirm{id, read_offset = off} from the peer: L (any of its IDs) is
 * confirmed up to off. BFTNET_ENOTFOUND for no live L (a Confirm for a
 * stream that ended: ignored); 0 and nothing for a stale one (off at or
 * below what is confirmed: Confirms travel on several connections);
 * violation (BAD_CONFIRM, L aborted) for off beyond the bytes sent on L;
 * BFTNET_ESTATE unless the mode is ON. */
int mig_reg_on_confirm(mig_reg_t *p, uint64_t id, uint64_t off, mig_actions_t *acts);
/* A new incarnation of the peer seen by the caller (e.g. out of band). */
int mig_reg_on_incarnation(mig_reg_t *p, uint64_t inc, uint64_t now, mig_actions_t *acts);
/* Fires deadlines: aborts every stream detached at or before now. */
int mig_reg_tick(mig_reg_t *p, uint64_t now, mig_actions_t *acts);

/* Leader only: start an exchange moving L onto the new carrier h (graceful
 * when L is attached, resume when detached). Emits SEND_MSG(Migrate). */
int mig_sm_migrate(mig_reg_t *p, mig_sm_t *s, uint64_t h, mig_actions_t *acts) BFTNET_WUR;
/* Reader side of §11.12: true with *off = the read offset to send in a
 * Confirm for L now, when it exceeds the last one reported by at least
 * min_delta bytes (by any amount once L's incoming direction ended). False
 * while an exchange that reported our offset is unsettled: a Migrate of
 * ours awaits its AckMigrate or was lost unanswered, or our AckMigrate may
 * not have been read yet (until the initiator's FIN on the old carrier, or
 * its first byte or FIN on the new one). */
bool mig_sm_confirm_due(const mig_sm_t *s, uint64_t min_delta, uint64_t *off);
/* A Confirm reporting off for L was written. May emit CLOSED (in mode ON a
 * stream closes only once its whole incoming direction was reported). */
int mig_sm_confirm_sent(mig_reg_t *p, mig_sm_t *s, uint64_t off, mig_actions_t *acts);
/* Room left in the retransmit window. */
uint64_t mig_sm_room(const mig_reg_t *p, const mig_sm_t *s);
/* Appends n bytes to L: all or nothing, BFTNET_EAGAIN beyond the room.
 * data may be the span mig_sm_write_span gave (the bytes are then in place
 * already and not copied). */
int mig_sm_write(mig_reg_t *p, mig_sm_t *s, const void *data, size_t n) BFTNET_WUR;
/* Where L's next bytes go in its window, for a writer that builds them in
 * place (no copy): *out gets the contiguous free span at the write offset,
 * up to `want` and the room; its length is returned (0: no room, or no
 * memory). The ring grows here, so the span stays valid until the next
 * write or window change; mig_sm_write with data == *out commits. */
size_t mig_sm_write_span(mig_reg_t *p, mig_sm_t *s, size_t want, uint8_t **out);
/* The application closes its direction of L (FIN once everything is out). */
int mig_sm_close(mig_reg_t *p, mig_sm_t *s, mig_actions_t *acts);
/* Local abort: RST every carrier, ABORTED. */
int mig_sm_abort(mig_reg_t *p, mig_sm_t *s, mig_actions_t *acts);

/* What to write next: up to max bytes of L on `carrier`, then `fin`. The
 * bytes are taken as written (p stays valid until the next event on L). */
typedef struct mig_chunk {
  uint64_t carrier;
  const uint8_t *p;
  size_t n;
  bool fin;
} mig_chunk_t;
/* 1 with *c filled, 0 nothing to write now. FIN is deferred while an
 * exchange is unsettled (§11.5). May emit CLOSED. A chunk stops at the end
 * of the ring: call again for the rest. */
int mig_sm_pull(mig_reg_t *p, mig_sm_t *s, size_t max, mig_chunk_t *c, mig_actions_t *acts);
/* The retransmit window's bytes from offset `from` (w_base <= from <=
 * w_written) on: *out points at the first, the return value is how many are
 * contiguous there (0 at w_written). */
size_t mig_sm_span(const mig_sm_t *s, uint64_t from, const uint8_t **out);

#endif /* BFTNET_MIG_CORE_H */
