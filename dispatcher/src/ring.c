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
 * A byte cap (ring_max_bytes) drops the oldest too, before the enqueue,
 * while the queued payload plus the new message would pass it; `bytes` is
 * added by the producer before the message is visible and subtracted by
 * whoever dequeues it, so it never undercounts. A keep-latest ring is
 * klq.c's queue under the same lock (the consumer takes it too).
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
  BN_TSAN_IGNORE_BEGIN();
  bool ok = ck_ring_enqueue_spmc(&r->ring, r->buf, m);
  BN_TSAN_IGNORE_END();
  return ok;
}

static disp_msg_t *ring_dequeue(disp_ring_t *r) {
  disp_msg_t *m = NULL;
  BN_TSAN_IGNORE_BEGIN();
  bool ok = ck_ring_dequeue_mpmc(&r->ring, r->buf, &m);
  BN_TSAN_IGNORE_END();
  if (!ok) return NULL;
  BN_TSAN_ACQUIRE(m);
  return m;
}

int disp_ring_init(disp_ring_t *r, uint32_t cap) {
  return disp_ring_init_ex(r, cap, UINT64_MAX, false);
}

int disp_ring_init_ex(disp_ring_t *r, uint32_t cap, uint64_t max_bytes, bool keep_latest) {
  if (cap < DISP_RING_CAP_MIN || cap > DISP_RING_CAP_MAX || (cap & (cap - 1)) != 0 ||
      max_bytes == 0)
    return BFTNET_EINVAL;
  ck_ring_buffer_t *buf = calloc(cap, sizeof(*buf));
  if (buf == NULL) return BFTNET_ENOMEM;
  r->klq = NULL;
  if (keep_latest && (r->klq = disp__klq_new(cap)) == NULL) {
    free(buf);
    return BFTNET_ENOMEM;
  }
  ck_spinlock_fas_init(&r->push_lock);
  ck_ring_init(&r->ring, cap);
  r->buf = buf;
  r->cap = cap;
  r->max_bytes = max_bytes;
  r->enqueued = 0;
  r->dropped = 0;
  r->superseded = 0;
  r->bytes = 0;
  return 0;
}

size_t disp_ring_destroy(disp_ring_t *r) {
  size_t n = 0;
  disp_msg_t *m;
  if (r->klq) {
    n = disp__klq_free(r->klq);
    r->klq = NULL;
  }
  while ((m = ring_dequeue(r)) != NULL) {
    disp_msg_release(m);
    n++;
  }
  free(r->buf);
  r->buf = NULL;
  return n;
}

/* Messages a push lets go of, released after the lock (releasing may free). */
typedef struct ring_rel {
  disp_msg_t *m[8];
  unsigned n;
} ring_rel_t;

static void rel_add(ring_rel_t *rel, disp_msg_t *m) {
  if (rel->n < BN_ARRAY_LEN(rel->m))
    rel->m[rel->n++] = m;
  else
    disp_msg_release(m); /* a burst of drops (a byte cap): release in place */
}

static bool ring_capped(const disp_ring_t *r) {
  return r->max_bytes != UINT64_MAX;
}

/* Keep-latest (klq.c), under push_lock: the queued message with m's key
 * goes (superseded), then the oldest while there is no room. */
static bool klq_push(disp_ring_t *r, disp_msg_t *m, ring_rel_t *rel) {
  bool dropped = false;
  disp_msg_t *old = disp__klq_take_key(r->klq, m->key);
  if (old) {
    if (!BN_SIM_DEFECT(10)) ck_pr_store_64(&r->superseded, r->superseded + 1);
    ck_pr_store_64(&r->bytes, r->bytes - old->len);
    rel_add(rel, old);
  }
  while (disp__klq_count(r->klq) >= r->cap - 1 ||
         (ring_capped(r) && r->bytes + m->len > r->max_bytes)) {
    old = disp__klq_pop(r->klq);
    if (!old) break; /* m alone is larger than the cap: it goes alone */
    ck_pr_store_64(&r->dropped, r->dropped + 1);
    ck_pr_store_64(&r->bytes, r->bytes - old->len);
    rel_add(rel, old);
    dropped = true;
  }
  ck_pr_store_64(&r->bytes, r->bytes + m->len);
  BN_TSAN_RELEASE(m); /* its bytes, to whoever pops it (TSan only); not read after */
  disp__klq_append(r->klq, m);
  return dropped;
}

/* Drop-oldest with a byte cap, under push_lock: the oldest go while m
 * would pass the cap (the consumer may take some meanwhile: then fewer). */
static bool ring_make_byte_room(disp_ring_t *r, const disp_msg_t *m, ring_rel_t *rel) {
  bool dropped = false;
  while (ck_pr_load_64(&r->bytes) + m->len > r->max_bytes) {
    disp_msg_t *old = ring_dequeue(r);
    if (!old) break; /* empty (m alone is larger than the cap: it goes alone) */
    ck_pr_store_64(&r->dropped, r->dropped + 1);
    ck_pr_sub_64(&r->bytes, old->len);
    rel_add(rel, old);
    dropped = true;
  }
  ck_pr_add_64(&r->bytes, m->len); /* before m is visible: the consumer subtracts it */
  return dropped;
}

bool disp_ring_push_mpmc(disp_ring_t *r, disp_msg_t *m) {
  BN_ASSERT(m != NULL);
  ring_rel_t rel = {.n = 0};
  bool dropped = false;
  disp_spin_lock(&r->push_lock);
  /* Counted before m is visible: enqueued >= consumed + dropped + depth
   * holds for any reader at any time. */
  ck_pr_store_64(&r->enqueued, r->enqueued + 1); /* only lock holders write it */
  if (r->klq) {
    dropped = klq_push(r, m, &rel);
  } else {
    if (ring_capped(r)) dropped = ring_make_byte_room(r, m, &rel);
    /* Publishes the message's bytes to whoever dequeues it (TSan only);
     * nothing here reads m after this. */
    BN_TSAN_RELEASE(m);
    for (unsigned tries = 1;; tries++) {
      BN_ASSERT(tries <= DISP_RING_PUSH_TRIES);
      if (ring_enqueue(r, m)) break;
      disp_msg_t *old = ring_dequeue(r); /* NULL: the loop thread emptied it meanwhile */
      if (old == NULL) continue;
      if (!BN_SIM_DEFECT(6)) ck_pr_store_64(&r->dropped, r->dropped + 1);
      if (ring_capped(r)) ck_pr_sub_64(&r->bytes, old->len);
      rel_add(&rel, old);
      dropped = true;
    }
  }
  disp_spin_unlock(&r->push_lock);
  for (unsigned i = 0; i < rel.n; i++)
    disp_msg_release(rel.m[i]); /* outside the lock: may free */
  return dropped;
}

uint32_t disp_ring_sample_weight(disp_ring_t *r) {
  if (disp_ring_depth(r) == 0) return 1;
  return (ck_pr_load_64(&r->enqueued) + 1) % DISP_SAMPLE_EVERY == 0 ? DISP_SAMPLE_EVERY : 0;
}

/* Keep-latest: the oldest under the lock (the consumer's only lock). */
static unsigned klq_pop_batch(disp_ring_t *r, disp_msg_t **out, unsigned max) {
  unsigned n = 0;
  disp_spin_lock(&r->push_lock);
  uint64_t bytes = 0;
  while (n < max && (out[n] = disp__klq_pop(r->klq)) != NULL)
    bytes += out[n++]->len;
  ck_pr_store_64(&r->bytes, r->bytes - bytes);
  disp_spin_unlock(&r->push_lock);
  return n;
}

unsigned disp_ring_pop_batch_mpmc(disp_ring_t *r, disp_msg_t **out, unsigned max) {
  if (r->klq) return max ? klq_pop_batch(r, out, max) : 0;
  /* ck 0.7.1 has no batch dequeue (its _size forms are enqueue-only), and a
   * loop of its MPMC dequeues costs one CAS per message. This is ck's multi-consumer dequeue
   * (_ck_ring_dequeue_mc) for up to max slots at once: read the slots between c_head and p_tail,
   * then claim them all with one CAS on c_head; if a dropping producer
   * moved c_head meanwhile, what was read is discarded and read again. */
  ck_ring_t *ring = &r->ring;
  const unsigned mask = ring->mask;
  unsigned consumer, n;
  if (max == 0) return 0;
  BN_TSAN_IGNORE_BEGIN();
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
  BN_TSAN_IGNORE_END();
  uint64_t bytes = 0;
  for (unsigned i = 0; i < n; i++) {
    BN_TSAN_ACQUIRE(out[i]);
    bytes += out[i]->len;
  }
  if (n && ring_capped(r)) ck_pr_sub_64(&r->bytes, bytes);
  return n;
}

uint32_t disp_ring_depth(disp_ring_t *r) {
  return r->klq ? disp__klq_count(r->klq) : ck_ring_size(&r->ring);
}
