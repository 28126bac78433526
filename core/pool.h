/*
 * pool.h — a cache of message-sized buffers that one thread allocates and
 * another frees (send messages: the application allocates, the loop thread
 * frees; received messages: the other way round).
 *
 * Written by hand because no packaged allocator does this for a library:
 * glibc's malloc returns the memory of buffers freed on another thread to
 * the kernel (arena trimming) and faults it in again on the next
 * allocation, which cost 10-13 % of a 16 KiB stream's CPU in page faults and
 * zeroing; tuning it (mallopt) is the application's call, not a library's.
 *
 * Buffers up to 64 KiB (BN_POOL_MAX), header included, come in 64 size
 * classes: 64 B steps up to 1 KiB, then eight per doubling (so at most
 * 12.5 % is wasted above 1 KiB: a 16 KiB message takes 18 KiB); larger ones
 * are plain malloc. Small buffers are pooled too: freed on the loop thread
 * and malloc'd on the application's, they kept glibc's arena lock contended
 * (futex waits were 7 % of a 128 B stream's CPU).
 * A freed buffer goes back on its class's lock-free stack (ck_stack, the
 * ABA-safe MPMC form) while the pool caches at most cache_max bytes; beyond
 * that it is freed. Any thread may allocate and free.
 *
 * Lifetime: a buffer may outlive its owner's handle (a received message the
 * application keeps after bftnet_free). The pool is reference-counted by its
 * owner and by every buffer out; after bn_pool_close new frees go straight
 * to free(), and the last reference frees what is cached and the pool.
 */
#ifndef BFTNET_POOL_H
#define BFTNET_POOL_H

#include <stddef.h>

#define BN_POOL_MIN 1024u
#define BN_POOL_MAX (64u * 1024u)
#define BN_POOL_HDR 16u /* bytes in front of every buffer (tests)*/

typedef struct bn_pool bn_pool_t;

/* NULL on ENOMEM. cache_max: bytes cached at most (0: cache nothing). */
bn_pool_t *bn_pool_new(size_t cache_max);
/* Drops the owner's reference. p may be NULL. */
void bn_pool_close(bn_pool_t *p);
/* At least n usable bytes, 16-byte aligned, or NULL on ENOMEM. p may be
 * NULL (plain malloc, still freed with bn_pool_free). */
void *bn_pool_alloc(bn_pool_t *p, size_t n);
/* mem from bn_pool_alloc (any pool, any thread), or NULL. */
void bn_pool_free(void *mem);
/* The calling thread holds back its frees of p's buffers and gives them
 * back POOL_DEFER_MAX (64) at a time: one CAS per size class and one update
 * of each counter instead of three atomic operations per buffer. For the
 * thread that frees most of a pool's buffers (the loop thread frees every
 * sent message). At most one pool per thread; BFTNET_EINVAL if the thread
 * already defers, BFTNET_ENOMEM. */
int bn_pool_defer_begin(bn_pool_t *p);
/* Gives back what the calling thread holds (nothing if it does not defer). */
void bn_pool_defer_flush(void);
/* Gives back what it holds and stops deferring; call before the thread
 * exits. A no-op if the thread does not defer. */
void bn_pool_defer_end(void);
/* Bytes cached now (approximate while other threads use the pool). */
size_t bn_pool_cached(const bn_pool_t *p);

#endif
