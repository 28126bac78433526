/*
 * klq.c — the keep-latest queue behind a keep-latest ring (dispatcher.h,
 * "ring"): a FIFO of message slots with an index from key to slot, so that
 * a message with a nonzero key removes the queued one with the same key in
 * O(1) before it joins the tail.
 *
 * Why the tail and not the old message's place: a message sent after
 * others must not be delivered before them (per member and class, what is
 * delivered is an ordered subsequence of what was sent). A key updated
 * faster than the queue drains still goes out: the consumer takes the head
 * whatever happens at the tail, so it waits behind at most the other keys'
 * messages queued before it.
 *
 * Everything here runs under the ring's push_lock (producers and the loop
 * thread's pops alike); `count` is also read without it (depth). The slots
 * are allocated once (capacity messages), the index is open addressing
 * with linear probing over twice as many entries, deleted by backward
 * shift (no tombstones), so no operation allocates.
 */
#include <stdlib.h>

#include <ck_pr.h>

#include "disp_internal.h"

#define KLQ_NIL UINT32_MAX

struct disp_klq {
  uint32_t cap;        /* slots */
  uint32_t count;      /* queued (atomic stores: depth reads it unlocked) */
  uint32_t head, tail; /* oldest, newest; KLQ_NIL when empty */
  uint32_t free_head;  /* unused slots, linked through next */
  uint32_t hmask;      /* index entries - 1 */
  uint32_t *next, *prev;
  disp_msg_t **msg;
  uint32_t *index; /* slot + 1 of a keyed message; 0 = empty */
};

static uint32_t key_hash(uint64_t k) { /* splitmix64's finalizer */
  k ^= k >> 30;
  k *= 0xbf58476d1ce4e5b9ull;
  k ^= k >> 27;
  k *= 0x94d049bb133111ebull;
  k ^= k >> 31;
  return (uint32_t)k;
}

disp_klq_t *disp__klq_new(uint32_t cap) {
  disp_klq_t *q = calloc(1, sizeof *q);
  if (!q) return NULL;
  uint32_t hcap = 2 * cap; /* cap <= 2^24: no overflow */
  q->cap = cap;
  q->hmask = hcap - 1;
  q->next = malloc(cap * sizeof *q->next);
  q->prev = malloc(cap * sizeof *q->prev);
  q->msg = calloc(cap, sizeof *q->msg);
  q->index = calloc(hcap, sizeof *q->index);
  if (!q->next || !q->prev || !q->msg || !q->index) {
    disp__klq_free(q);
    return NULL;
  }
  for (uint32_t i = 0; i < cap; i++)
    q->next[i] = i + 1 < cap ? i + 1 : KLQ_NIL;
  q->free_head = 0;
  q->head = q->tail = KLQ_NIL;
  return q;
}

size_t disp__klq_free(disp_klq_t *q) {
  if (!q) return 0;
  size_t n = 0;
  for (disp_msg_t *m; q->msg && (m = disp__klq_pop(q)) != NULL; n++)
    disp_msg_release(m);
  free(q->next);
  free(q->prev);
  free(q->msg);
  free(q->index);
  free(q);
  return n;
}

uint32_t disp__klq_count(const disp_klq_t *q) {
  return ck_pr_load_32((uint32_t *)(uintptr_t)&q->count);
}

/* The index entry that holds slot i's key, or of key k when absent: the
 * empty entry where it would go. */
static uint32_t index_find(const disp_klq_t *q, uint64_t k) {
  for (uint32_t e = key_hash(k) & q->hmask;; e = (e + 1) & q->hmask) {
    uint32_t v = q->index[e];
    if (v == 0 || q->msg[v - 1]->key == k) return e;
  }
}

/* Backward-shift deletion: the entries after e that probed past it move
 * back, so lookups never meet a hole before their key. */
static void index_delete(disp_klq_t *q, uint32_t e) {
  for (uint32_t j = (e + 1) & q->hmask; q->index[j]; j = (j + 1) & q->hmask) {
    uint32_t home = key_hash(q->msg[q->index[j] - 1]->key) & q->hmask;
    /* j's entry may fill e if its home is not in (e, j] (cyclically) */
    bool in_between = e <= j ? (home > e && home <= j) : (home > e || home <= j);
    if (in_between) continue;
    q->index[e] = q->index[j];
    e = j;
  }
  q->index[e] = 0;
}

static void unlink_slot(disp_klq_t *q, uint32_t i) {
  uint32_t p = q->prev[i], n = q->next[i];
  if (p != KLQ_NIL)
    q->next[p] = n;
  else
    q->head = n;
  if (n != KLQ_NIL)
    q->prev[n] = p;
  else
    q->tail = p;
  q->msg[i] = NULL;
  q->next[i] = q->free_head;
  q->free_head = i;
  ck_pr_store_32(&q->count, q->count - 1);
}

disp_msg_t *disp__klq_take_key(disp_klq_t *q, uint64_t key) {
  if (key == 0 || q->count == 0) return NULL;
  uint32_t e = index_find(q, key);
  if (!q->index[e]) return NULL;
  uint32_t i = q->index[e] - 1;
  disp_msg_t *m = q->msg[i];
  index_delete(q, e);
  unlink_slot(q, i);
  return m;
}

disp_msg_t *disp__klq_pop(disp_klq_t *q) {
  uint32_t i = q->head;
  if (i == KLQ_NIL) return NULL;
  disp_msg_t *m = q->msg[i];
  if (m->key) index_delete(q, index_find(q, m->key));
  unlink_slot(q, i);
  return m;
}

void disp__klq_append(disp_klq_t *q, disp_msg_t *m) {
  uint32_t i = q->free_head;
  BN_ASSERT(i != KLQ_NIL); /* the caller made room */
  q->free_head = q->next[i];
  q->msg[i] = m;
  q->next[i] = KLQ_NIL;
  q->prev[i] = q->tail;
  if (q->tail != KLQ_NIL)
    q->next[q->tail] = i;
  else
    q->head = i;
  q->tail = i;
  if (m->key) {
    uint32_t e = index_find(q, m->key);
    BN_ASSERT(q->index[e] == 0); /* the caller took the old one out */
    q->index[e] = i + 1;
  }
  ck_pr_store_32(&q->count, q->count + 1);
}
