/*
 * pool.c — the message buffer pool (core.h, section "pool", says why it exists).
 *
 * Each size class has two free lists. Frees (any thread) push onto `freed`
 * with one CAS (ck_stack_push_upmc: a push never reads another entry, so
 * it is safe against concurrent pops). Allocations take from `local` under
 * the consumer lock and, when it is empty, take the whole of `freed` at once
 * with an atomic exchange (ck_stack_batch_pop_upmc). No thread ever reads
 * the `next` of an entry another thread may pop and free meanwhile — the
 * use-after-free a plain lock-free pop has.
 */
#include <stdint.h>
#include <stdlib.h>

#include <ck_pr.h>
#include <ck_spinlock.h>
#include <ck_stack.h>

#include "core.h"

#define POOL_STEPS     8  /* classes per doubling above 1 KiB: at most 12.5 % wasted */
#define POOL_SMALL     16 /* 64 B steps up to 1 KiB */
#define POOL_CLASSES   (POOL_SMALL + 6 * POOL_STEPS) /* 64 B .. 1 KiB, then up to 64 KiB */
#define POOL_DEFER_MAX 64 /* buffers a thread holds back before it gives them back */

/* ck_pr is inline assembly on x86-64: TSan sees neither the spinlock nor
 * the CAS that publishes a pushed entry. The lock is annotated as one, and
 * the push's own accesses (it writes e->next after the free's release) are
 * hidden; the buffer's hand-off is the release/acquire on e. */
#ifdef BN_TSAN
void __tsan_ignore_thread_begin(void);
void __tsan_ignore_thread_end(void);
#define POOL_TSAN_IGNORE_BEGIN() __tsan_ignore_thread_begin()
#define POOL_TSAN_IGNORE_END()   __tsan_ignore_thread_end()
#else
#define POOL_TSAN_IGNORE_BEGIN() ((void)0)
#define POOL_TSAN_IGNORE_END()   ((void)0)
#endif

/* In front of every buffer: 16 bytes, so the buffer stays 16-aligned. */
typedef struct pool_hdr {
  bn_pool_t *pool; /* NULL: a plain malloc */
  uint32_t cls;
  uint32_t pad;
} pool_hdr_t;
_Static_assert(sizeof(pool_hdr_t) == BN_POOL_HDR, "header keeps malloc's alignment");

struct pool_class {
  ck_stack_t freed;        /* pushed by any thread */
  ck_stack_entry_t *local; /* under the pool's lock */
} CK_CC_CACHELINE;

struct bn_pool {
  struct pool_class cls[POOL_CLASSES];
  ck_spinlock_fas_t lock; /* allocations */
  size_t cache_max;
  uint64_t cached; /* bytes on the free lists */
  uint32_t refs;   /* the owner's + one per buffer out */
  int closed;
};

/* The class of a buffer of total size s (header included), or -1 beyond
 * BN_POOL_MAX; *size is the class's size. */
static int pool_class(size_t s, size_t *size) {
  if (s > BN_POOL_MAX) return -1;
  if (s <= BN_POOL_MIN) {
    size_t k = (s + 63) / 64; /* 1..16: s includes the 16-byte header */
    *size = k * 64;
    return (int)k - 1;
  }
  unsigned e =
      63u - (unsigned)__builtin_clzll((unsigned long long)(s - 1)); /* 2^e < s <= 2^(e+1) */
  size_t base = (size_t)1 << e, step = base / POOL_STEPS;
  size_t k = (s - base + step - 1) / step; /* 1..POOL_STEPS */
  *size = base + k * step;
  return (int)(POOL_SMALL - 1 + (e - 10) * POOL_STEPS + k);
}

static size_t class_size(uint32_t c) {
  if (c < POOL_SMALL) return (size_t)(c + 1) * 64;
  size_t q = c - POOL_SMALL, e = 10 + q / POOL_STEPS, k = q % POOL_STEPS + 1;
  size_t b = (size_t)1 << e;
  return b + k * (b / POOL_STEPS);
}

/* A thread's held-back frees (bn_pool_defer_begin): per class a chain,
 * given back with one CAS per class and one update of each counter. */
typedef struct pool_defer {
  bn_pool_t *pool;
  ck_stack_entry_t *head[POOL_CLASSES], *tail[POOL_CLASSES];
  uint64_t bytes;
  uint32_t count;
} pool_defer_t;
static _Thread_local pool_defer_t *tl_defer;

bn_pool_t *bn_pool_new(size_t cache_max) {
  bn_pool_t *p = aligned_alloc(CK_MD_CACHELINE, (sizeof *p + CK_MD_CACHELINE - 1) /
                                                    CK_MD_CACHELINE * CK_MD_CACHELINE);
  if (!p) return NULL;
  memset(p, 0, sizeof *p);
  for (int i = 0; i < POOL_CLASSES; i++)
    ck_stack_init(&p->cls[i].freed);
  ck_spinlock_fas_init(&p->lock);
  p->cache_max = cache_max;
  p->refs = 1;
  return p;
}

static void free_chain(ck_stack_entry_t *e) {
  while (e) {
    BN_TSAN_ACQUIRE(e);
    ck_stack_entry_t *next = e->next;
    free((pool_hdr_t *)(void *)e - 1);
    e = next;
  }
}

/* Drops n references. */
static void pool_put_n(bn_pool_t *p, uint32_t n) {
  /* acq_rel: every buffer's last use happens before the pool is freed */
  ck_pr_fence_release();
  BN_TSAN_RELEASE(p);
  if (ck_pr_faa_32(&p->refs, (uint32_t)0 - n) != n) return;
  ck_pr_fence_acquire();
  BN_TSAN_ACQUIRE(p);
  for (int i = 0; i < POOL_CLASSES; i++) {
    free_chain(p->cls[i].local);
    free_chain(ck_stack_batch_pop_upmc(&p->cls[i].freed));
  }
  free(p);
}

static void pool_put(bn_pool_t *p) {
  pool_put_n(p, 1);
}

void bn_pool_close(bn_pool_t *p) {
  if (!p) return;
  ck_pr_store_int(&p->closed, 1);
  pool_put(p);
}

void *bn_pool_alloc(bn_pool_t *p, size_t n) {
  if (n > SIZE_MAX - sizeof(pool_hdr_t) - BN_POOL_MAX) return NULL;
  size_t size = 0;
  int c = p ? pool_class(sizeof(pool_hdr_t) + n, &size) : -1;
  pool_hdr_t *h;
  if (c < 0) {
    h = malloc(sizeof *h + n);
    if (!h) return NULL;
    h->pool = NULL;
    h->cls = 0;
    return h + 1;
  }
  struct pool_class *pc = &p->cls[c];
  ck_spinlock_fas_lock(&p->lock);
  BN_TSAN_ACQUIRE(&p->lock);
  ck_stack_entry_t *e = pc->local;
  if (!e && ck_pr_load_ptr(&pc->freed.head) != NULL) e = ck_stack_batch_pop_upmc(&pc->freed);
  if (e) {
    BN_TSAN_ACQUIRE(e); /* its free's release (the push's write of e->next is hidden) */
    pc->local = e->next;
  }
  BN_TSAN_RELEASE(&p->lock);
  ck_spinlock_fas_unlock(&p->lock);
  if (e) {
    ck_pr_sub_64(&p->cached, size);
    h = (pool_hdr_t *)(void *)e - 1;
    BN_ASSERT(h->pool == p && h->cls == (uint32_t)c);
  } else {
    h = malloc(size);
    if (!h) return NULL;
    h->pool = p;
    h->cls = (uint32_t)c;
  }
  ck_pr_inc_32(&p->refs);
  return h + 1;
}

/* Counts `bytes` more as cached if the cap allows (false: free them
 * instead). A closed pool caches nothing. */
static bool pool_cache_take(bn_pool_t *p, uint64_t bytes) {
  if (ck_pr_load_int(&p->closed)) return false;
  uint64_t old = ck_pr_faa_64(&p->cached, bytes);
  if (old + bytes <= p->cache_max) return true;
  ck_pr_sub_64(&p->cached, bytes);
  return false;
}

/* ck_stack_push_upmc for a chain first..last (same protocol: the chain's
 * links are written before the CAS publishes it). */
static void stack_push_chain(ck_stack_t *s, ck_stack_entry_t *first, ck_stack_entry_t *last) {
  ck_stack_entry_t *head = ck_pr_load_ptr(&s->head);
  last->next = head;
  ck_pr_fence_store();
  while (!ck_pr_cas_ptr_value(&s->head, head, first, &head)) {
    last->next = head;
    ck_pr_fence_store();
  }
}

static void defer_flush(pool_defer_t *d) {
  bn_pool_t *p = d->pool;
  if (!d->count) return;
  bool keep = pool_cache_take(p, d->bytes);
  for (int c = 0; c < POOL_CLASSES; c++) {
    if (!d->head[c]) continue;
    if (keep) {
      POOL_TSAN_IGNORE_BEGIN();
      stack_push_chain(&p->cls[c].freed, d->head[c], d->tail[c]);
      POOL_TSAN_IGNORE_END();
    } else {
      free_chain(d->head[c]);
    }
    d->head[c] = d->tail[c] = NULL;
  }
  uint32_t n = d->count;
  d->count = 0;
  d->bytes = 0;
  pool_put_n(p, n);
}

int bn_pool_defer_begin(bn_pool_t *p) {
  if (!p || tl_defer) return BFTNET_EINVAL;
  pool_defer_t *d = calloc(1, sizeof *d);
  if (!d) return BFTNET_ENOMEM;
  ck_pr_inc_32(&p->refs); /* the pool outlives d->pool */
  d->pool = p;
  tl_defer = d;
  return 0;
}

void bn_pool_defer_flush(void) {
  if (tl_defer) defer_flush(tl_defer);
}

void bn_pool_defer_end(void) {
  pool_defer_t *d = tl_defer;
  if (!d) return;
  tl_defer = NULL;
  defer_flush(d);
  pool_put(d->pool);
  free(d);
}

void bn_pool_free(void *mem) {
  if (!mem) return;
  pool_hdr_t *h = (pool_hdr_t *)mem - 1;
  bn_pool_t *p = h->pool;
  if (!p) {
    free(h);
    return;
  }
  size_t size = class_size(h->cls);
  pool_defer_t *d = tl_defer;
  if (d && d->pool == p) {
    ck_stack_entry_t *e = mem, *next = d->head[h->cls];
    e->next = next;
    if (!next) d->tail[h->cls] = e;
    d->head[h->cls] = e;
    BN_TSAN_RELEASE(e); /* after this thread's last touch of e (its link) */
    d->bytes += size;
    if (++d->count >= POOL_DEFER_MAX) defer_flush(d);
    return;
  }
  bool keep = pool_cache_take(p, size);
  if (keep) {
    ck_stack_entry_t *e = mem;
    BN_TSAN_RELEASE(e);
    POOL_TSAN_IGNORE_BEGIN();
    ck_stack_push_upmc(&p->cls[h->cls].freed, e);
    POOL_TSAN_IGNORE_END();
  } else {
    free(h);
  }
  pool_put(p);
}

size_t bn_pool_cached(const bn_pool_t *p) {
  return p ? (size_t)ck_pr_load_64((uint64_t *)(uintptr_t)&p->cached) : 0;
}
