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
#include "pool.h"

/* ------------------------------------------------------------ messages */
/* One allocation per bftnet_send (the only copy of the payload). A
 * broadcast creates it with refs = number of rings it goes into. */
typedef struct disp_msg {
  uint32_t refs; /* atomic */
  uint32_t len;
  uint8_t data[];
} disp_msg_t;

/* NULL on ENOMEM. refs >= 1. pool may be NULL (malloc). */
disp_msg_t *disp_msg_new(bn_pool_t *pool, const void *data, size_t len, uint32_t refs);
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
  ck_ring_buffer_t *buf;
  uint32_t cap;
  uint64_t enqueued; /* atomic counters (ck_pr) */
  uint64_t dropped;
  ck_spinlock_fas_t push_lock; /* spin briefly, then yield (ring.c) */
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
} disp_framer_t;

void disp_framer_init(disp_framer_t *f);
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
