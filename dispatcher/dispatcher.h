/*
 * dispatcher.h — the per-member send side (the Dispatcher): for each member
 * a drop-oldest ring that any thread pushes into, a framer that turns the
 * queued messages (and the node's broadcast log) into a /bftnet/msg/1.0.0
 * byte stream across partial writes, a dialer with backoff that keeps a
 * connection to the member, and our one outbound logical stream to it.
 * The only header dispatcher/ exposes. Thread contracts are in the names
 * (ck style) and at each declaration.
 *
 * The dispatcher knows no node: its owner gives it a context (disp_ctx_t:
 * configuration, transport, net, counters, buffer pool) and a callback
 * table (disp_cbs_t) for what goes up (member up/down, stream events).
 */
#ifndef BFTNET_DISPATCHER_H
#define BFTNET_DISPATCHER_H

#include <pthread.h>

#include <ck_ring.h>
#include <ck_spinlock.h>

#include "core.h"
#include "migration.h"

/* ------------------------------------------------------------ messages */
/* One allocation per bftnet_send or bftnet_broadcast (the only copy of the
 * payload). A broadcast's is held by the broadcast log and by each framer
 * that took it (or, when the log is full, by every ring it went into). */
typedef struct disp_msg {
  uint32_t refs; /* atomic */
  uint32_t len;
  uint64_t bseq; /* a ring message: the broadcast log's head when it was queued */
  uint8_t data[];
} disp_msg_t;

/* NULL on ENOMEM. refs >= 1. pool may be NULL (malloc). */
disp_msg_t *disp_msg_new(bn_pool_t *pool, const void *data, size_t len, uint32_t refs);
/* Adds one reference (any thread holding one). */
void disp_msg_ref(disp_msg_t *m);
/* Drops one reference (any thread); frees at zero. */
void disp_msg_release(disp_msg_t *m);

/* ---------------------------------------------------------------- ring */
/* A ck_ring of disp_msg_t pointers, multi-producer (any thread) and
 * consumed by the loop thread. Never waits for the consumer: a push into a
 * full ring dequeues the oldest message, releases it and counts it as
 * dropped, then retries. Capacity is a power of two (ck_ring keeps one slot
 * free, so cap - 1 messages fit).
 * Producers take push_lock around their enqueue (at most two enqueue
 * attempts and one dequeue): ck's MP enqueue commits in ticket order, so a
 * producer preempted between reserve and commit makes every other producer
 * spin, which convoys as soon as producers outnumber cores (ring.c). The
 * consumer never takes the lock. */
typedef struct disp_ring {
  ck_ring_t ring;
  ck_ring_buffer_t *buf; /* read by both sides, written once */
  uint32_t cap;
  /* What producers write on every push lives on its own cache line: beside
   * ck_ring's size and mask, which the consumer reads on every dequeue, the
   * lock's line bounced between the cores. */
  char pad0[64];
  ck_spinlock_fas_t push_lock; /* spin briefly, then yield (ring.c) */
  uint64_t enqueued;           /* atomic counters (ck_pr) */
  uint64_t dropped;
  char pad1[64]; /* nor shares it with whatever follows the ring */
} disp_ring_t;

int disp_ring_init(disp_ring_t *r,
                   uint32_t cap) BFTNET_WUR; /* BFTNET_EINVAL unless 4 <= cap <= 2^24, power of 2 */
/* Releases every message still queued; returns how many. No concurrent use. */
size_t disp_ring_destroy(disp_ring_t *r);
/* Any thread. Takes the caller's reference to m. Returns true if an older
 * message was dropped to make room. */
bool disp_ring_push_mpmc(disp_ring_t *r, disp_msg_t *m);
/* Loop thread (concurrent with pushes): up to max oldest messages into out;
 * the caller owns their references. Returns the count. */
unsigned disp_ring_pop_batch_mpmc(disp_ring_t *r, disp_msg_t **out, unsigned max);
uint32_t disp_ring_depth(disp_ring_t *r); /* approximate under concurrency */

/* ------------------------------------------------------- broadcast log */
/* The node's broadcasts, each once, read by every member's framer with its
 * own cursor: a broadcast costs its caller one push whatever the number of
 * members (one shared buffer, one queue operation). Producers: any thread,
 * under `lock`. The loop thread reads entries [tail, head) and releases
 * them once every member's cursor has passed (disp_blog_release_to); a
 * member that falls too far behind is moved on, its skipped entries
 * counted as dropped (disp_framer_blog_trim) — the log's drop-oldest.
 * Order with unicast messages: a ring message carries `bseq`, the log's
 * head when it was queued, and a framer writes the log entries below it
 * before it (framer.c has the argument). */
typedef struct disp_blog_slot {
  disp_msg_t *msg;
  uint64_t ver; /* the membership version the broadcast was addressed to */
} disp_blog_slot_t;

typedef struct disp_blog {
  disp_blog_slot_t *slots;
  uint64_t cap; /* power of 2 */
  char pad0[64];
  ck_spinlock_fas_t lock;
  uint64_t head; /* atomic: next sequence number; stored after its slot */
  char pad1[64];
  uint64_t tail; /* atomic, loop thread writes: entries below it are released */
  char pad2[64];
} disp_blog_t;

int disp_blog_init(disp_blog_t *l,
                   uint32_t cap) BFTNET_WUR; /* BFTNET_EINVAL unless 4 <= cap <= 2^24, power of 2 */
/* Releases every entry still held; returns how many. No concurrent use. */
size_t disp_blog_destroy(disp_blog_t *l);
/* Any thread. Takes the caller's reference to m on success; false when the
 * log is full (the caller still owns m). */
bool disp_blog_push(disp_blog_t *l, disp_msg_t *m, uint64_t ver);
/* Any thread: the next sequence number. Entries below it are readable. */
uint64_t disp_blog_head(const disp_blog_t *l);
/* Loop thread: releases the entries below `to` (every cursor is at or past it). */
void disp_blog_release_to(disp_blog_t *l, uint64_t to);
/* The slot of entry `seq`. */
static inline disp_blog_slot_t *disp_blog_slot(const disp_blog_t *l, uint64_t seq) {
  return &l->slots[seq & (l->cap - 1)];
}

/* -------------------------------------------------------------- framer */
/* Loop thread. Turns messages into uvarint(len) || bytes on a stream
 * whose writes may be partial. It holds at most one partly written
 * message, plus at most DISP_FRAMER_HELD popped ones not yet started:
 * small messages are coalesced into one write, and when the writer takes
 * only part of it the whole messages behind the cut stay here (there is no
 * way back into the ring). Everything else stays in the ring, so overload
 * lands in the ring's drop-oldest. The writer copies what it takes (p is
 * valid during the call only) and must not re-enter this framer. */
typedef int (*disp_write_fn)(void *ctx, const uint8_t *p,
                             size_t n); /* bytes taken, 0 = blocked, < 0 error */

#define DISP_FRAMER_HELD 256u /* messages per coalesced write, at most */
#define DISP_FRAMER_UNIQ 64u  /* ring messages popped ahead while merging broadcasts */

/* The stream offsets (bytes_written) at which completed messages end, for a
 * stream whose bytes are confirmed later (a migratable stream): when it is
 * aborted, the ends above the confirmed offset are the messages it lost.
 * A FIFO that grows as needed; bounded by the stream's retransmit window
 * (each message is at least one byte). */
typedef struct disp_ends {
  uint64_t *v;
  size_t head, len, cap; /* v[(head + i) % cap], i < len */
  bool oom;              /* a push failed: counts from here are a lower bound */
} disp_ends_t;
void disp_ends_free(disp_ends_t *e);
/* Drops the ends at or below confirmed; returns how many. */
size_t disp_ends_trim(disp_ends_t *e, uint64_t confirmed);
static inline size_t disp_ends_count(const disp_ends_t *e) {
  return e->len;
}

typedef struct disp_framer {
  disp_msg_t *cur; /* message being written (off may be 0), or NULL */
  uint8_t hdr[BN_UVARINT_MAX_BYTES];
  uint8_t hdr_len;
  size_t off; /* bytes of hdr+data of cur already written */
  uint64_t msgs_written, bytes_written;
  uint32_t held_head, held_len; /* held[held_head, +held_len): popped, FIFO, after cur */
  disp_msg_t *held[DISP_FRAMER_HELD];
  disp_ends_t *ends; /* optional: completed messages' end offsets are pushed here */
  /* The broadcast log, when attached: */
  const disp_blog_t *blog;
  uint64_t bcur; /* atomic (loop writes): the next log entry to look at */
  uint64_t bver; /* entries addressed to an older membership are not ours */
  /* popped from the ring (in batches), waiting for the log entries before
   * them: uniq[uni_head, +uni_len), FIFO; uni_len is read by stats */
  disp_msg_t *uniq[DISP_FRAMER_UNIQ];
  uint32_t uni_head, uni_len;
  uint64_t bdropped; /* atomic (loop writes): log entries skipped by disp_framer_blog_trim */
  uint64_t btaken;   /* atomic (loop writes): log entries taken for this stream */
  /* The member's max_message_size (0: unknown): a larger message is
   * released as it is pulled, never written, and counted in too_big. */
  uint32_t peer_max;
  bool write_too_big; /* test hook: write it anyway (still counted) */
  uint64_t too_big;   /* atomic (loop writes) */
} disp_framer_t;

void disp_framer_init(disp_framer_t *f);
/* Reads broadcasts from l from entry `start` on, skipping entries whose
 * version is below `ver` (queued before this member joined). */
void disp_framer_attach_blog(disp_framer_t *f, const disp_blog_t *l, uint64_t start, uint64_t ver);
/* Log entries from the cursor on, not yet looked at (some may turn out
 * not ours). Any thread (approximate). */
uint64_t disp_framer_blog_pending(const disp_framer_t *f);
/* Messages queued for this stream outside the ring and not yet pulled:
 * the pending log entries and the ring messages waiting for them. Any
 * thread (approximate). */
uint64_t disp_framer_backlog(const disp_framer_t *f);
/* Loop thread: moves the cursor past entries at its head that are not ours
 * (addressed to an older membership), so they never count as backlog. */
void disp_framer_blog_skip_foreign(disp_framer_t *f);
/* Loop thread: if the cursor is more than `keep` entries behind the log's
 * head, moves it to head - keep and counts the skipped entries as dropped.
 * Returns how many were skipped. */
uint64_t disp_framer_blog_trim(disp_framer_t *f, uint64_t keep);
/* Writes as much as the writer takes, pulling from the ring in batches.
 * Returns the number of messages completed (>= 0) or the writer's error
 * (messages completed before the error still count in msgs_written).
 * A completed message's reference is released. */
int disp_framer_drain(disp_framer_t *f, disp_ring_t *r, disp_write_fn write, void *ctx);
/* The stream broke: releases the partly written message and the held
 * ones, and returns how many it released, so the caller can count them.
 * The next drain starts at a message boundary. */
int disp_framer_abort(disp_framer_t *f);

/* ------------------------------------------------------------- backoff */
/* Exponential backoff with full jitter (AWS architecture blog's "full
 * jitter"): attempt k waits uniform[0, min(max, min * 2^k)], never below
 * min/2 so a flapping peer is not hammered. Randomness from the seam. */
typedef struct disp_backoff {
  uint32_t min_ms, max_ms;
  uint32_t attempt;
} disp_backoff_t;

void disp_backoff_init(disp_backoff_t *b, uint32_t min_ms, uint32_t max_ms);
uint64_t disp_backoff_next_ms(disp_backoff_t *b, const bn_seam_t *seam);
void disp_backoff_reset(disp_backoff_t *b);

/* ---------------------------------------------------------- Dispatcher */

/* What a dispatcher tells its owner, on the loop thread; ud is the one the
 * owner gave disp_init for that member. on_member and on_stream_event must
 * not stop or destroy their own dispatcher; on_reclaimable is its last call
 * and the owner destroys it there. */
typedef struct disp_cbs {
  /* Our stream to the member opened or resumed (BFTNET_EV_MEMBER_UP), or
   * it detached or ended (BFTNET_EV_MEMBER_DOWN, with reason and error). */
  void (*on_member)(void *ud, bftnet_event_type_t type, bftnet_reason_t reason, int err);
  /* A migration event of our stream to the member (every type but
   * MIG_EV_READ_EOF). lost: the messages the stream lost (ABORTED, CLOSED). */
  void (*on_stream_event)(void *ud, mig_stream_t *ls, const mig_event_t *e, uint64_t lost);
  /* A stopped dispatcher that disp_reclaim kept (a dial was in flight):
   * the dial ended, the owner may destroy it now. */
  void (*on_reclaimable)(void *ud);
  /* A dial to the member failed while no connection to it is up, and
   * differently from the last failure reported since the member was last
   * reached (another error, or another peer ID answering): err, the address
   * dialed, actual the peer ID that answered for BFTNET_EPEERMISMATCH (else
   * NULL), failures the failed dials in a row. Optional. */
  void (*on_dial_failed)(void *ud, int err, const maddr_t *addr, const peerid_t *actual,
                         uint32_t failures);
} disp_cbs_t;

typedef struct disp_config {
  uint32_t ring_capacity;  /* per member, power of 2 (bftnet_config_t) */
  uint32_t backoff_min_ms; /* first redial delay */
  uint32_t backoff_max_ms; /* cap */
  const bn_logger_t *log;  /* the node's (NULL: the process default) */
  /* Test hook: messages larger than a member's max_message_size are
   * accepted and written anyway (and still counted in dropped_too_big), so
   * a test can watch the member discard them. Never set otherwise. */
  bool write_too_big;
} disp_config_t;

/* The send side's node-wide state, shared by every member's dispatcher.
 * Filled by disp_ctx_init; the owner's objects must outlive it. */
typedef struct disp_ctx {
  disp_config_t cfg;
  bn_transport_t *t;       /* timers, the clock */
  net_t *net;              /* dials, connection counts */
  mig_node_t *ml;          /* the pairs' migration state */
  bn_counters_t *counters; /* the node's */
  bn_pool_t *pool;         /* message buffers (may be NULL: malloc) */
  const disp_cbs_t *cbs;
  disp_blog_t blog; /* bftnet_broadcast's messages, once for every member */
} disp_ctx_t;

/* One member's Dispatcher. Application threads use only the ring (through
 * disp_send, disp_broadcast) and the atomic counters (disp_stats,
 * disp_idle); everything else belongs to the loop thread. */
typedef struct disp {
  disp_ring_t ring; /* first: its padding keeps producers off the rest */
  /* Atomic counters (written by the loop, read by disp_stats). */
  uint64_t sent, bytes_out, reconnects, dropped_removed, aborted;
  int connected;
  uint64_t unconfirmed;     /* bytes of our stream not yet confirmed read */
  int framer_busy;          /* the framer holds messages not yet written */
  uint32_t peer_max;        /* the member's max_message_size, 0 until it says
                               (published by the loop from its migration state) */
  uint64_t refused_too_big; /* disp_send / disp_broadcast refused for it */

  /* Loop thread only. */
  disp_ctx_t *ctx;
  void *ud;         /* the owner's, for the callbacks */
  const char *name; /* the member's node ID, for logs (the owner's memory) */
  peerid_t peer;
  maddr_t addrs[BFTNET_MAX_ADDRS]; /* most preferred first */
  unsigned naddrs, addr_idx;
  mig_peer_t *lp; /* the pair's migration state; NULL once stopped */
  disp_framer_t framer;
  disp_ends_t ends; /* end offsets of messages written, not yet confirmed */
  disp_backoff_t backoff;
  bn_ttimer_t *redial;
  bool dialing, redial_pending, stopped, ever_up, ever_conn, draining, reclaimable;
  uint64_t up_since; /* when our last dial succeeded (loop clock) */
  /* Dial failures since the member was last reached, and the last one
   * reported (on_dial_failed). */
  uint32_t dial_failures;
  bool fail_reported;
  int fail_err;
  peerid_t fail_peer;
  mig_stream_t *out; /* our logical /bftnet/msg stream to the member */
  uint64_t out_base; /* framer.bytes_written when `out` was opened */
} disp_t;

/* Loop thread. The broadcast log holds twice ring_capacity (at most 2^24).
 * 0, BFTNET_EINVAL, BFTNET_ENOMEM. */
int disp_ctx_init(disp_ctx_t *ctx, const disp_config_t *cfg, bn_transport_t *t, net_t *net,
                  mig_node_t *ml, bn_counters_t *counters, bn_pool_t *pool,
                  const disp_cbs_t *cbs) BFTNET_WUR;
/* After every dispatcher was destroyed (the log's entries are released). */
void disp_ctx_destroy(disp_ctx_t *ctx);

/* Loop thread. A member's dispatcher; it reads the broadcasts of the log
 * from now on that were addressed to membership version `ver` or later.
 * It takes the pair's migration state (d->lp, from mig_peer_get, with ud as
 * its owner: mig_peer_owner) and releases it in disp_stop. name is the
 * owner's and must outlive it; peer and addrs are copied. 0, BFTNET_EINVAL,
 * BFTNET_ENOMEM or a transport error; on error nothing is left to free. */
int disp_init(disp_t *d, disp_ctx_t *ctx, void *ud, const char *name, const peerid_t *peer,
              const maddr_t *addrs, size_t naddrs, uint64_t ver) BFTNET_WUR;
/* Loop thread: the member's addresses changed (preference order included):
 * the next dial starts at the first, and the leader's path policy is told. */
void disp_set_addrs(disp_t *d, const maddr_t *addrs, size_t naddrs);
/* Loop thread: dials the member unless our stream to it is open. */
void disp_connect(disp_t *d);
/* Loop thread: a connection to the member came up (our stream can open
 * now if it waited for one), or one went down (redial if none is left). */
void disp_conn_up(disp_t *d);
void disp_conn_down(disp_t *d);
/* Loop thread, after a wake: writes what is queued, else refreshes the
 * counters disp_idle reads. */
void disp_wake(disp_t *d);
/* Loop thread: the member may have said its max_message_size (a
 * StreamMigration message of its arrived): disp_send and the framer use it
 * from now on. Drains and wakes look too; this makes it prompt. */
void disp_limit_refresh(disp_t *d);
/* Loop thread: frees the broadcast log's entries every member has passed;
 * when the log is seven-eighths full, moves on the members more than
 * ring_capacity behind (their skipped broadcasts count as dropped). ds: the
 * n live members' dispatchers. */
void disp_blog_advance(disp_ctx_t *ctx, disp_t *const *ds, size_t n);
/* Loop thread: stops everything the dispatcher does (no more dials, no
 * more events); what its stream had not delivered is counted aborted, and
 * the pair's migration state is released (both of the pair's streams are
 * reset, without events: the owner forgets its inbound one first). */
void disp_stop(disp_t *d);
/* Loop thread, a stopped dispatcher: adds what it still holds (queued
 * messages, aborted ones) to the node's "removed" counters. */
void disp_account_removed(disp_t *d);
/* Loop thread, a stopped dispatcher no other thread can see any more:
 * true if it may be destroyed now; false while a dial is in flight, and
 * then on_reclaimable fires once that dial ends. */
bool disp_reclaim(disp_t *d);
/* Releases what the dispatcher holds (queued and held messages). After
 * disp_reclaim said true, or once the loop has ended. */
void disp_destroy(disp_t *d);

/* Any thread (d found in a membership snapshot it may read): queues a copy
 * of data for the member, dropping its oldest message if the ring is full.
 * 0, BFTNET_ENOMEM, or BFTNET_EPEERTOOBIG (counted) when len is above the
 * member's max_message_size. The caller then wakes the loop thread. */
int disp_send(disp_ctx_t *ctx, disp_t *d, const void *data, size_t len) BFTNET_WUR;
/* Any thread: one copy of data for the n members ds of membership version
 * ver, through the broadcast log (or every ring when the log is full).
 * Returns how many members can take it (the others' framers skip it and
 * count it), BFTNET_EPEERTOOBIG (counted for each) if none of n > 0 can,
 * or BFTNET_ENOMEM. The caller then wakes the loop thread. */
int disp_broadcast(disp_ctx_t *ctx, disp_t *const *ds, size_t n, uint64_t ver, const void *data,
                   size_t len) BFTNET_WUR;
/* Any thread: fills the send side's fields of out (enqueued, sent,
 * dropped_*, bytes_out, reconnects, aborted, ring_depth, connected,
 * unconfirmed, max_message_size); leaves the others. */
void disp_stats(disp_t *d, bftnet_peer_stats_t *out);
/* Any thread: nothing queued, nothing held by the framer, and every byte
 * written confirmed read (as of the loop's last look). */
bool disp_idle(disp_t *d);
/* Loop thread: the connection our stream to the member rides, else the one
 * the pair would use (mig_peer_conn), else NULL. */
net_conn_t *disp_conn(disp_t *d);

#endif
