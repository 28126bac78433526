/*
 * disp_internal.h — dispatcher/ private helpers: ThreadSanitizer
 * annotations for ck, the producers' spin lock, and what member.c
 * uses of outbound.c.
 *
 * ck_pr is inline assembly on x86-64, so TSan sees neither ck_ring's index
 * updates nor the refcount decrements, and reports every handoff through a
 * ring as a race. Under TSan we therefore (1) hide the accesses ck_ring
 * makes to its own slots (they are ordered by ck, which TSan cannot see) and
 * (2) state the happens-before edges ck provides, keyed by the message:
 * a producer releases m before publishing it, whoever dequeues it acquires
 * m; every reference drop releases m and the last one acquires it before
 * free (what libstdc++ does for shared_ptr). Everything else — the
 * messages' bytes, the framer, the tests' own data — stays checked.
 * Outside TSan these are no-ops.
 */
#ifndef BFTNET_DISP_INTERNAL_H
#define BFTNET_DISP_INTERNAL_H

#include <sched.h>

#include <ck_pr.h>
#include <ck_spinlock.h>

#include "dispatcher.h"

/* The producers' lock of a ring and of the broadcast log. The critical
 * section is a few stores. Spinning briefly is cheaper than a
 * mutex (whose unlock is another atomic); a waiter that spins long (the
 * holder was preempted) yields its time slice instead, so producers
 * outnumbering cores do not convoy. */
static inline void disp_spin_lock(ck_spinlock_fas_t *l) {
  for (unsigned spins = 0; !ck_spinlock_fas_trylock(l); spins++) {
    if (spins < 64)
      ck_pr_stall();
    else
      sched_yield();
  }
  BN_TSAN_ACQUIRE(l);
}

static inline void disp_spin_unlock(ck_spinlock_fas_t *l) {
  BN_TSAN_RELEASE(l);
  ck_spinlock_fas_unlock(l);
}

/* A class the member refused (na) is opened again after this backoff. */
#define DISP_REFUSED_RETRY_MIN_MS 1000u
#define DISP_REFUSED_RETRY_MAX_MS 30000u

/* klq.c: the keep-latest queue of a ring, under the ring's push_lock. */
typedef struct disp_klq disp_klq_t;
disp_klq_t *disp__klq_new(uint32_t cap);
/* Releases what it holds and frees it; returns how many messages. */
size_t disp__klq_free(disp_klq_t *q);
/* Queued messages (any thread, unlocked: approximate). */
uint32_t disp__klq_count(const disp_klq_t *q);
/* Removes the queued message with this nonzero key, or returns NULL. */
disp_msg_t *disp__klq_take_key(disp_klq_t *q, uint64_t key);
/* Removes the oldest, or returns NULL. */
disp_msg_t *disp__klq_pop(disp_klq_t *q);
/* Appends m (the caller made room and took m's key out). */
void disp__klq_append(disp_klq_t *q, disp_msg_t *m);

/* outbound.c: a member's streams and dialer (loop thread). */
/* The redial timer's callback (ud: the disp_t). */
void disp__outbound_redial_tick(void *ud);
/* The refused classes' timer (ud: the disp_t): opens them again. */
void disp__outbound_retry_tick(void *ud);
/* Writes what the rings and the logs hold while the streams take it. */
void disp__outbound_drain(disp_t *d);
/* Refreshes the counters other threads read (unconfirmed, framer_busy). */
void disp__outbound_account(disp_cls_t *k);
/* Counts and releases what a class's stream lost (written, not confirmed,
 * and what the framer held). */
uint64_t disp__outbound_lost(disp_cls_t *k);
/* Takes the member's max_message_size from its migration state: for the
 * framers, and published for disp_send. */
void disp__outbound_limit(disp_t *d);

#endif
