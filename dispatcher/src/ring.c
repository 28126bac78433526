/*
 * ring.c — the per-member drop-oldest ring: a ck_ring (MPMC functions) of
 * disp_msg_t pointers.
 *
 * Who dequeues: the loop thread (pop_batch), and a producer that finds the
 * ring full (it drops the oldest). Both use ck_ring_dequeue_mpmc, which is
 * lock-free among consumers.
 *
 * Why producers are serialized (push_lock). ck_ring's MP enqueue reserves a
 * ticket with a CAS on p_head, writes its slot, then spins until p_tail
 * reaches its ticket: commits happen in ticket order, so a producer that is
 * preempted between reserve and commit stalls every later producer, which
 * spins (ck_pr_stall) instead of sleeping. Once producers outnumber the
 * cores the spinners eat the time slices the stalled one needs and the
 * ring convoys: with more producers than cores a lock-free run may never
 * finish where a locked one takes a fraction of a second (the figures are
 * in docs/BENCHMARKS.md). The MP enqueue was never lock-free (a stalled
 * producer already blocks the others), so the lock costs no progress
 * guarantee; what matters is that waiters give their time slice away: push_lock
 * (disp_spin_lock, disp_internal.h, which the broadcast log shares) spins 64
 * times, then yields (sched_yield) until it gets the lock. Against the
 * mutex it replaced it saves an atomic per push and is faster contended
 * too (ring_bench). The consumer never takes it, so the loop thread is
 * never blocked by a producer.
 *
 * The retry bound, by reasoning: under push_lock we are the only producer,
 * so p_head moves only by our enqueue. (1) The enqueue fails only if the
 * ring is full (p_head - c_head == mask). (2) We then dequeue: either we
 * remove the oldest, or the loop thread emptied the ring first; either way
 * c_head has advanced and no other producer can refill it. (3) So the
 * second enqueue succeeds. At most two attempts and one drop, asserted.
 */
#include <stdlib.h>

#include <ck_pr.h>
#include <ck_spinlock.h>

#include "disp_internal.h"
#include "dispatcher.h"

#define DISP_RING_CAP_MIN    4u
#define DISP_RING_CAP_MAX    (1u << 24)
#define DISP_RING_PUSH_TRIES 2u

_Static_assert((DISP_RING_CAP_MAX & (DISP_RING_CAP_MAX - 1)) == 0, "ring cap max is a power of 2");
_Static_assert(sizeof(ck_ring_buffer_t) == sizeof(disp_msg_t *), "one pointer per ck_ring slot");

/* ck_ring's own slot accesses are ordered by ck_pr, which TSan cannot see;
 * the edges that matter are stated on the message (disp_internal.h). */
/* Producers hold push_lock, so at most one enqueues at a time: ck's
 * single-producer enqueue (no CAS on p_head) is enough; the consumer and a
 * dropping producer dequeue with the multi-consumer form (c_head CAS). */
static bool ring_enqueue(disp_ring_t *r, disp_msg_t *m) {
  DISP_TSAN_IGNORE_BEGIN();
  bool ok = ck_ring_enqueue_spmc(&r->ring, r->buf, m);
  DISP_TSAN_IGNORE_END();
  return ok;
}

static disp_msg_t *ring_dequeue(disp_ring_t *r) {
  disp_msg_t *m = NULL;
  DISP_TSAN_IGNORE_BEGIN();
  bool ok = ck_ring_dequeue_mpmc(&r->ring, r->buf, &m);
  DISP_TSAN_IGNORE_END();
  if (!ok) return NULL;
  DISP_TSAN_ACQUIRE(m);
  return m;
}

int disp_ring_init(disp_ring_t *r, uint32_t cap) {
  if (cap < DISP_RING_CAP_MIN || cap > DISP_RING_CAP_MAX || (cap & (cap - 1)) != 0)
    return BFTNET_EINVAL;
  ck_ring_buffer_t *buf = calloc(cap, sizeof(*buf));
  if (buf == NULL) return BFTNET_ENOMEM;
  ck_spinlock_fas_init(&r->push_lock);
  ck_ring_init(&r->ring, cap);
  r->buf = buf;
  r->cap = cap;
  r->enqueued = 0;
  r->dropped = 0;
  return 0;
}

size_t disp_ring_destroy(disp_ring_t *r) {
  size_t n = 0;
  disp_msg_t *m;
  while ((m = ring_dequeue(r)) != NULL) {
    disp_msg_release(m);
    n++;
  }
  free(r->buf);
  r->buf = NULL;
  return n;
}

bool disp_ring_push_mpmc(disp_ring_t *r, disp_msg_t *m) {
  BN_ASSERT(m != NULL);
  disp_msg_t *old = NULL;
  /* Publishes the message's bytes to whoever dequeues it (TSan only). */
  DISP_TSAN_RELEASE(m);
  disp_spin_lock(&r->push_lock);
  /* Counted before m is visible: enqueued >= consumed + dropped + depth
   * holds for any reader at any time. */
  ck_pr_store_64(&r->enqueued, r->enqueued + 1); /* only lock holders write it */
  for (unsigned tries = 1;; tries++) {
    BN_ASSERT(tries <= DISP_RING_PUSH_TRIES);
    if (ring_enqueue(r, m)) break;
    BN_ASSERT(old == NULL);
    old = ring_dequeue(r); /* NULL: the loop thread emptied it meanwhile */
    if (old != NULL && !BN_SIM_DEFECT(6)) ck_pr_store_64(&r->dropped, r->dropped + 1);
  }
  disp_spin_unlock(&r->push_lock);
  if (old == NULL) return false;
  disp_msg_release(old); /* outside the lock: it may free */
  return true;
}

unsigned disp_ring_pop_batch_mpmc(disp_ring_t *r, disp_msg_t **out, unsigned max) {
  /* ck 0.7.1 has no batch dequeue (its _size forms are enqueue-only), and a
   * loop of its MPMC dequeues costs one CAS per message. This is ck's multi-consumer dequeue
   * (_ck_ring_dequeue_mc) for up to max slots at once: read the slots between c_head and p_tail,
   * then claim them all with one CAS on c_head; if a dropping producer
   * moved c_head meanwhile, what was read is discarded and read again. */
  ck_ring_t *ring = &r->ring;
  const unsigned mask = ring->mask;
  unsigned consumer, n;
  if (max == 0) return 0;
  DISP_TSAN_IGNORE_BEGIN();
  consumer = ck_pr_load_uint(&ring->c_head);
  do {
    ck_pr_fence_load();
    unsigned producer = ck_pr_load_uint(&ring->p_tail);
    n = producer - consumer;
    if (n == 0) break;
    if (n > max) n = max;
    ck_pr_fence_load();
    for (unsigned i = 0; i < n; i++)
      out[i] = r->buf[(consumer + i) & mask].value;
    ck_pr_fence_store_atomic();
  } while (!ck_pr_cas_uint_value(&ring->c_head, consumer, consumer + n, &consumer));
  DISP_TSAN_IGNORE_END();
  for (unsigned i = 0; i < n; i++)
    DISP_TSAN_ACQUIRE(out[i]);
  return n;
}

uint32_t disp_ring_depth(disp_ring_t *r) {
  return ck_ring_size(&r->ring);
}
