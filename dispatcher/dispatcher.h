/*
 * dispatcher.h — the send side's building blocks (seed 003's Dispatcher):
 * reference-counted message buffers, the per-member drop-oldest ring, the
 * framer that turns queued messages into a /bftnet/msg/1.0.0 byte stream
 * across partial writes, and the redial backoff. The only header
 * dispatcher/ exposes. Thread contracts are in the names (ck style).
 */
#ifndef BFTNET_DISPATCHER_H
#define BFTNET_DISPATCHER_H

#include <pthread.h>

#include <ck_ring.h>
#include <ck_spinlock.h>

#include "net.h"
#include "core.h"

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
   * lock's line bounced between the cores (5 % of a 128 B stream's CPU). */
  char pad0[64];
  ck_spinlock_fas_t push_lock; /* spin briefly, then yield (ring.c) */
  uint64_t enqueued;           /* atomic counters (ck_pr) */
  uint64_t dropped;
  char pad1[64]; /* nor shares it with whatever follows the ring */
} disp_ring_t;

int disp_ring_init(disp_ring_t *r, uint32_t cap) BFTNET_WUR; /* BFTNET_EINVAL unless 4 <= cap <= 2^24, power of 2 */
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

int disp_blog_init(disp_blog_t *l, uint32_t cap) BFTNET_WUR; /* BFTNET_EINVAL unless 4 <= cap <= 2^24, power of 2 */
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
typedef int (*disp_write_fn)(void *ctx, const uint8_t *p, size_t n); /* bytes taken, 0 = blocked, < 0 error */

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
static inline size_t disp_ends_count(const disp_ends_t *e) { return e->len; }

typedef struct disp_framer {
  disp_msg_t *cur;  /* message being written (off may be 0), or NULL */
  uint8_t hdr[BN_UVARINT_MAX_BYTES];
  uint8_t hdr_len;
  size_t off;       /* bytes of hdr+data of cur already written */
  uint64_t msgs_written, bytes_written;
  uint32_t held_head, held_len; /* held[held_head, +held_len): popped, FIFO, after cur */
  disp_msg_t *held[DISP_FRAMER_HELD];
  disp_ends_t *ends; /* optional: completed messages' end offsets are pushed here */
  /* The broadcast log, when attached: */
  const disp_blog_t *blog;
  uint64_t bcur;       /* atomic (loop writes): the next log entry to look at */
  uint64_t bver;       /* entries addressed to an older membership are not ours */
  /* popped from the ring (in batches), waiting for the log entries before
   * them: uniq[uni_head, +uni_len), FIFO; uni_len is read by stats */
  disp_msg_t *uniq[DISP_FRAMER_UNIQ];
  uint32_t uni_head, uni_len;
  uint64_t bdropped;   /* atomic (loop writes): log entries skipped by disp_framer_blog_trim */
  uint64_t btaken;     /* atomic (loop writes): log entries taken for this stream */
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

#endif
