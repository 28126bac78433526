/*
 * dispatcher.h — the per-member send side (the Dispatcher): for each member
 * and traffic class a ring that any thread pushes into (drop-oldest, or
 * keep-latest by key), a framer that turns the queued messages (and the
 * class's broadcast log) into a /bftnet/msg byte stream across partial
 * writes, our outbound logical stream of that class to the member, the
 * scheduler that shares the member's connection between the classes
 * (priority, minimum share, weights, in pieces of one Noise frame), and a
 * dialer with backoff that keeps a connection to the member.
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
  uint64_t key;  /* keep-latest rings: replaces a queued message with this key (0: none) */
  uint64_t t_ns; /* when it was queued, for the queueing delay (0: not sampled) */
  /* A sampled unicast: the bytes of the member's other classes written to
   * its streams when it was queued (UINT64_MAX: not known, a broadcast). */
  uint64_t ahead0;
  uint32_t w; /* a sample stands for this many messages */
  uint32_t pad;
  uint8_t data[];
} disp_msg_t;

/* NULL on ENOMEM. refs >= 1. pool may be NULL (malloc). */
disp_msg_t *disp_msg_new(bn_pool_t *pool, const void *data, size_t len, uint32_t refs);
/* Adds one reference (any thread holding one). */
void disp_msg_ref(disp_msg_t *m);
/* Drops one reference (any thread); frees at zero. */
void disp_msg_release(disp_msg_t *m);

/* ---------------------------------------------------------------- ring */
/* A member's queue of one class. Drop-oldest: a ck_ring of disp_msg_t
 * pointers, multi-producer (any thread) and consumed by the loop thread.
 * Never waits for the consumer: a push into a full ring dequeues the
 * oldest message, releases it and counts it as dropped, then retries.
 * Capacity is a power of two (ck_ring keeps one slot free, so cap - 1
 * messages fit). With a byte cap, a push also drops the oldest messages
 * while the queued payload would pass it.
 * Keep-latest (klq.c): a FIFO of the same capacity with an index by key,
 * under push_lock for producers and the consumer alike: a message with a
 * nonzero key removes the queued message with that key (superseded) and
 * joins the tail, so the rest keep their order and what is delivered is
 * still an ordered subsequence of what was sent.
 * Producers take push_lock around their enqueue (at most two enqueue
 * attempts and one dequeue): ck's MP enqueue commits in ticket order, so a
 * producer preempted between reserve and commit makes every other producer
 * spin, which convoys as soon as producers outnumber cores (ring.c). The
 * consumer never takes the lock. */
struct disp_klq;
typedef struct disp_ring {
  ck_ring_t ring;
  ck_ring_buffer_t *buf; /* read by both sides, written once */
  uint32_t cap;
  uint64_t max_bytes;   /* UINT64_MAX: no byte cap (and no byte count) */
  struct disp_klq *klq; /* keep-latest: the queue (ck_ring unused); NULL: drop-oldest */
  /* What producers write on every push lives on its own cache line: beside
   * ck_ring's size and mask, which the consumer reads on every dequeue, the
   * lock's line bounced between the cores. */
  char pad0[64];
  ck_spinlock_fas_t push_lock; /* spin briefly, then yield (ring.c) */
  uint64_t enqueued;           /* atomic counters (ck_pr) */
  uint64_t dropped;
  uint64_t superseded; /* keep-latest: replaced by a newer message with their key */
  uint64_t bytes;      /* queued payload (atomic adds), when byte-capped */
  char pad1[64];       /* nor shares it with whatever follows the ring */
} disp_ring_t;

int disp_ring_init(disp_ring_t *r,
                   uint32_t cap) BFTNET_WUR; /* BFTNET_EINVAL unless 4 <= cap <= 2^24, power of 2 */
/* The same with a byte cap (UINT64_MAX: none) and the keep-latest policy.
 * 0, BFTNET_EINVAL, BFTNET_ENOMEM. */
int disp_ring_init_ex(disp_ring_t *r, uint32_t cap, uint64_t max_bytes,
                      bool keep_latest) BFTNET_WUR;
/* Releases every message still queued; returns how many. No concurrent use. */
size_t disp_ring_destroy(disp_ring_t *r);
/* Any thread. Takes the caller's reference to m. Returns true if an older
 * message was dropped to make room (a keep-latest ring replaces the queued
 * message with m->key first, counted in superseded, not a drop). */
bool disp_ring_push_mpmc(disp_ring_t *r, disp_msg_t *m);
/* Any thread: the weight of a queueing-delay sample for the next push (0:
 * no sample). Every message pushed into an empty ring is sampled (weight 1:
 * an urgent class's rare messages all count), and one in
 * DISP_SAMPLE_EVERY of the others (weight DISP_SAMPLE_EVERY), so that the
 * clock is read rarely under a flood. Approximate under concurrency. */
#define DISP_SAMPLE_EVERY 16u
uint32_t disp_ring_sample_weight(disp_ring_t *r);
/* Loop thread (concurrent with pushes): up to max oldest messages into out;
 * the caller owns their references. Returns the count. */
unsigned disp_ring_pop_batch_mpmc(disp_ring_t *r, disp_msg_t **out, unsigned max);
uint32_t disp_ring_depth(disp_ring_t *r); /* approximate under concurrency */

/* ---------------------------------------------------- queueing delays */
/* A histogram of delays in ns, log-linear (eight buckets per doubling, so
 * a percentile is within 12.5 %), weighted samples. One writer (the loop
 * thread, atomic stores), any reader. */
#define DISP_HIST_BUCKETS 320u
typedef struct disp_hist {
  uint64_t n[DISP_HIST_BUCKETS];
  uint64_t total, samples, max;
} disp_hist_t;
void disp_hist_add(disp_hist_t *h, uint64_t ns, uint32_t w);
/* The q-quantile (0 < q <= 1) in ns, 0 without samples. */
uint64_t disp_hist_quantile(const disp_hist_t *h, double q);

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
  uint64_t cap;       /* power of 2 */
  uint64_t max_bytes; /* payload the log holds at most (UINT64_MAX: no cap) */
  char pad0[64];
  ck_spinlock_fas_t lock;
  uint64_t head;       /* atomic: next sequence number; stored after its slot */
  uint64_t bytes_head; /* atomic: payload bytes of every entry ever pushed */
  char pad1[64];
  uint64_t tail;       /* atomic, loop thread writes: entries below it are released */
  uint64_t bytes_tail; /* atomic, loop thread writes: payload of the released entries */
  char pad2[64];
} disp_blog_t;

int disp_blog_init(disp_blog_t *l,
                   uint32_t cap) BFTNET_WUR; /* BFTNET_EINVAL unless 4 <= cap <= 2^24, power of 2 */
/* The same with a cap on the payload it holds (a push beyond it finds the
 * log full). */
int disp_blog_init_ex(disp_blog_t *l, uint32_t cap, uint64_t max_bytes) BFTNET_WUR;
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

/* Optional: where the writer's next bytes go, for a batch built in place
 * (the framer then builds there instead of in its scratch buffer, and the
 * writer copies nothing): a contiguous span of up to `want` bytes, its
 * length returned, 0 for none (the framer uses its scratch). The framer
 * calls the writer with p pointing into it. */
typedef size_t (*disp_span_fn)(void *ctx, size_t want, uint8_t **out);

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
  /* Optional: the queueing delay of each sampled message (disp_msg_t.t_ns)
   * goes into `delay` when its last byte is written, timed by `seam`. */
  disp_hist_t *delay;
  const bn_seam_t *seam;
  uint64_t now; /* the drain call's clock reading, 0 until needed */
  /* And how many bytes of other streams were written while it waited:
   * the writer's count (set before each drain) less the message's ahead0;
   * the largest so far (atomic store). */
  uint64_t other_now, ahead_max;
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
  uint64_t bbytes;    /* payload of the log entries the cursor passed (any member's) */
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
/* Loop thread: the same for payload: moves the cursor on while the entries
 * from it to the head hold more than keep_bytes. */
uint64_t disp_framer_blog_trim_bytes(disp_framer_t *f, uint64_t keep_bytes);
/* Writes as much as the writer takes, pulling from the ring in batches.
 * Returns the number of messages completed (>= 0) or the writer's error
 * (messages completed before the error still count in msgs_written).
 * A completed message's reference is released. */
int disp_framer_drain(disp_framer_t *f, disp_ring_t *r, disp_write_fn write, void *ctx);
/* The same, writing at most `limit` bytes of the stream (a scheduler's
 * piece): messages are popped only while the write being built has room,
 * so the rest stay in the ring. */
int disp_framer_drain_limit(disp_framer_t *f, disp_ring_t *r, disp_write_fn write, void *ctx,
                            size_t limit);
/* The same, building coalesced batches where span says (disp_span_fn). */
int disp_framer_drain_span(disp_framer_t *f, disp_ring_t *r, disp_write_fn write, disp_span_fn span,
                           void *ctx, size_t limit);
/* Anything to write: a message in hand, or queued in the ring or the log. */
bool disp_framer_pending(const disp_framer_t *f, disp_ring_t *r);
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

/* ----------------------------------------------------------- scheduler */
/* Which class of a member writes the next piece (at most DISP_PIECE bytes)
 * on its connection. Pure: the dispatcher tells it which classes are ready
 * (data queued and room to write) and what each piece cost.
 * - Priority: the ready class of the most urgent priority goes first.
 * - Minimum share, kept at each boundary between two levels: a byte
 *   written by a level while less urgent ones wait earns the boundary
 *   below it share/(100-share) bytes of credit; once that holds a piece's
 *   worth, the next ready level down writes one piece instead (sched.c).
 *   So whatever is below a level keeps at least `share` percent of what is
 *   written while it waits, and a boundary with nothing waiting below it
 *   banks nothing.
 * - Weights: within a level, start-time fair queueing on bytes: the ready
 *   class whose bytes/weight is least goes next; a class that was idle
 *   starts from the level's current virtual time (no banking either). */
#define DISP_PIECE NET_PACE_PIECE
typedef struct disp_sched {
  unsigned n;                      /* classes */
  unsigned nlev;                   /* distinct priorities */
  uint8_t lev[BFTNET_MAX_CLASSES]; /* class -> level (0 most urgent) */
  uint32_t weight[BFTNET_MAX_CLASSES];
  uint32_t share;                    /* percent, 0..50 */
  uint64_t vt[BFTNET_MAX_CLASSES];   /* virtual time: bytes << 16 / weight */
  uint64_t vlev[BFTNET_MAX_CLASSES]; /* per level: the start of the last piece */
  uint64_t owed[BFTNET_MAX_CLASSES]; /* [b]: credit of the boundary above level b, bytes */
  uint32_t ready_prev;               /* `waiting` at the last pick */
} disp_sched_t;

/* prio and weight of n (1..BFTNET_MAX_CLASSES) classes; share in percent. */
void disp_sched_init(disp_sched_t *s, unsigned n, const uint8_t *prio, const uint32_t *weight,
                     uint32_t share);
/* The class to write next among `ready` (bit i: class i can write now), or
 * -1. `waiting` (a superset): the classes with data queued, writable now or
 * not (a class that stops waiting loses its place and its credit). */
int disp_sched_pick(disp_sched_t *s, uint32_t ready, uint32_t waiting);
/* Class c (the last pick) wrote `bytes`; `waiting` as given to that pick. */
void disp_sched_served(disp_sched_t *s, unsigned c, size_t bytes, uint32_t waiting);

/* ---------------------------------------------------------- Dispatcher */

/* What a dispatcher tells its owner, on the loop thread; ud is the one the
 * owner gave disp_init for that member, cls the traffic class concerned.
 * on_member and on_stream_event must not stop or destroy their own
 * dispatcher; on_reclaimable is its last call and the owner destroys it
 * there. */
typedef struct disp_cbs {
  /* Our stream of class cls to the member opened or resumed
   * (BFTNET_EV_MEMBER_UP), or it detached or ended (BFTNET_EV_MEMBER_DOWN,
   * with reason and error). */
  void (*on_member)(void *ud, unsigned cls, bftnet_event_type_t type, bftnet_reason_t reason,
                    int err);
  /* A migration event of our stream of class cls (every type but
   * MIG_EV_READ_EOF). lost: the messages the stream lost (ABORTED, CLOSED). */
  void (*on_stream_event)(void *ud, unsigned cls, mig_stream_t *ls, const mig_event_t *e,
                          uint64_t lost);
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
  /* The traffic classes (the owner's memory, outliving the context): each
   * class is a ring per member, a broadcast log, and application protocol
   * `i` of the migration layer (mig_stream_open). */
  const bftnet_class_t *classes;
  unsigned ncls;           /* 1..BFTNET_MAX_CLASSES */
  uint32_t min_share;      /* percent (disp_sched_t) */
  bool paced;              /* the connection is paced (net.h): schedule pieces */
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
  disp_blog_t blog[BFTNET_MAX_CLASSES]; /* broadcasts per class, once for every member */
} disp_ctx_t;

struct disp;

/* One traffic class of one member. Application threads use only the ring
 * and the atomic counters; the rest belongs to the loop thread. */
typedef struct disp_cls {
  disp_ring_t ring; /* first: its padding keeps producers off the rest */
  /* Atomic counters (written by the loop, read by disp_stats). */
  uint64_t sent, bytes_out, aborted, refused;
  int connected;
  uint64_t unconfirmed; /* bytes of the class's stream not yet confirmed read */
  int framer_busy;      /* the framer holds messages not yet written */
  disp_hist_t delay;    /* queueing delay, send -> written */

  /* Loop thread only. */
  struct disp *d;
  unsigned idx;
  disp_framer_t framer;
  disp_ends_t ends;   /* end offsets of messages written, not yet confirmed */
  mig_stream_t *out;  /* our logical stream of this class to the member */
  uint64_t out_base;  /* framer.bytes_written when `out` was opened */
  bool refused_wait;  /* the member refused the class (na): reopened later */
  disp_backoff_t nab; /* the delay before that */
} disp_cls_t;

/* One member's Dispatcher. Application threads use only the classes'
 * rings (through disp_send, disp_broadcast) and the atomic counters
 * (disp_stats, disp_idle); everything else belongs to the loop thread. */
typedef struct disp {
  disp_cls_t *cls; /* ncls of them, cache-line aligned; never moves */
  unsigned ncls;
  /* Atomic counters (written by the loop, read by disp_stats). */
  uint64_t reconnects, dropped_removed;
  uint64_t written;         /* bytes written to the member's streams, every class */
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
  mig_peer_t *lp;     /* the pair's migration state; NULL once stopped */
  disp_sched_t sched; /* which class writes next (paced connections) */
  disp_backoff_t backoff;
  bn_ttimer_t *redial;
  bn_ttimer_t *retry; /* reopens classes the member refused */
  bool dialing, redial_pending, stopped, ever_up, ever_conn, draining, reclaimable;
  uint64_t up_since; /* when our last dial succeeded (loop clock) */
  /* Dial failures since the member was last reached, and the last one
   * reported (on_dial_failed). */
  uint32_t dial_failures;
  bool fail_reported;
  int fail_err;
  peerid_t fail_peer;
} disp_t;

/* Loop thread. Each class's broadcast log holds twice its ring (at most
 * 2^24 messages, and twice its byte cap). 0, BFTNET_EINVAL, BFTNET_ENOMEM. */
int disp_ctx_init(disp_ctx_t *ctx, const disp_config_t *cfg, bn_transport_t *t, net_t *net,
                  mig_node_t *ml, bn_counters_t *counters, bn_pool_t *pool,
                  const disp_cbs_t *cbs) BFTNET_WUR;
/* After every dispatcher was destroyed (the logs' entries are released). */
void disp_ctx_destroy(disp_ctx_t *ctx);

/* Loop thread. A member's dispatcher; it reads the broadcasts of the logs
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
/* Loop thread: dials the member unless our streams to it are open. */
void disp_connect(disp_t *d);
/* Loop thread: a connection to the member came up (our streams can open
 * now if they waited for one), or one went down (redial if none is left). */
void disp_conn_up(disp_t *d);
void disp_conn_down(disp_t *d);
/* Loop thread, after a wake: writes what is queued, else refreshes the
 * counters disp_idle reads. */
void disp_wake(disp_t *d);
/* Loop thread: the member may have said its max_message_size (a
 * StreamMigration message of its arrived): disp_send and the framers use
 * it from now on. Drains and wakes look too; this makes it prompt. */
void disp_limit_refresh(disp_t *d);
/* Loop thread: frees the broadcast logs' entries every member has passed;
 * when a log is seven-eighths full (or holds its byte cap), moves on the
 * members more than a ring behind (their skipped broadcasts count as
 * dropped). ds: the n live members' dispatchers. */
void disp_blog_advance(disp_ctx_t *ctx, disp_t *const *ds, size_t n);
/* Loop thread: stops everything the dispatcher does (no more dials, no
 * more events); what its streams had not delivered is counted aborted, and
 * the pair's migration state is released (every stream of the pair is
 * reset, without events: the owner forgets its inbound ones first). */
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
 * of data for the member in class cls (< ncls), dropping its oldest message
 * if the ring is full, or, keep-latest, replacing the queued one with the
 * same nonzero key. 0, BFTNET_ENOMEM, or BFTNET_EPEERTOOBIG (counted) when
 * len is above the member's max_message_size. The caller then wakes the
 * loop. */
int disp_send(disp_ctx_t *ctx, disp_t *d, unsigned cls, uint64_t key, const void *data,
              size_t len) BFTNET_WUR;
/* Any thread: one copy of data for the n members ds of membership version
 * ver, through class cls's broadcast log (or every ring when the log is
 * full). Returns how many members can take it (the others' framers skip it
 * and count it), BFTNET_EPEERTOOBIG (counted for each) if none of n > 0
 * can, or BFTNET_ENOMEM. The caller then wakes the loop. */
int disp_broadcast(disp_ctx_t *ctx, disp_t *const *ds, size_t n, uint64_t ver, unsigned cls,
                   uint64_t key, const void *data, size_t len) BFTNET_WUR;
/* Any thread: fills the send side's fields of out (enqueued, sent,
 * dropped_*, bytes_out, reconnects, aborted, ring_depth, connected,
 * unconfirmed, max_message_size), summed over the classes (connected:
 * class 0's stream); leaves the others. */
void disp_stats(disp_t *d, bftnet_peer_stats_t *out);
/* Any thread: the send side's fields of one class's stats (enqueued,
 * sent, dropped, superseded, aborted, bytes_out, ring_depth, delays,
 * connected, refused). */
void disp_class_stats(disp_t *d, unsigned cls, bftnet_class_stats_t *out);
/* Any thread: nothing queued, nothing held by a framer, and every byte
 * written confirmed read (as of the loop's last look). */
bool disp_idle(disp_t *d);
/* Loop thread: the connection our stream to the member rides, else the one
 * the pair would use (mig_peer_conn), else NULL. */
net_conn_t *disp_conn(disp_t *d);
/* The connection our stream of class cls is on (NULL: none open). */
net_conn_t *disp_cls_conn(const disp_t *d, unsigned cls);

#endif
