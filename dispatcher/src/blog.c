/*
 * blog.c — the broadcast log (dispatcher.h): a bounded array of broadcast
 * messages indexed by a 64-bit sequence number, written by any thread under
 * a lock, read in place by the loop thread's framers.
 *
 * Hand-written: ck_ring removes what it hands out, and here every member's
 * framer reads the same entry with its own cursor; only the slowest cursor
 * frees it. The protocol is the usual single-writer-at-a-time array:
 *   producer (lock held): h = head; full if h - tail >= cap; slot[h % cap]
 *     = entry; head = h + 1 (a release: the slot is written before).
 *   loop thread: reads slots in [tail, head) after an acquiring load of
 *     head; releases [tail, to) and then stores tail = to (a release: a
 *     producer that sees the new tail may reuse those slots).
 * ThreadSanitizer cannot see ck_pr's ordering; the two edges are stated on
 * head and tail (disp_internal.h).
 */
#include <stdlib.h>

#include <ck_pr.h>
#include <ck_spinlock.h>

#include "disp_internal.h"
#include "dispatcher.h"

#define DISP_BLOG_CAP_MIN 4u
#define DISP_BLOG_CAP_MAX (1u << 24)

int disp_blog_init(disp_blog_t *l, uint32_t cap) {
  return disp_blog_init_ex(l, cap, UINT64_MAX);
}

int disp_blog_init_ex(disp_blog_t *l, uint32_t cap, uint64_t max_bytes) {
  memset(l, 0, sizeof *l);
  if (cap < DISP_BLOG_CAP_MIN || cap > DISP_BLOG_CAP_MAX || (cap & (cap - 1)) != 0 ||
      max_bytes == 0)
    return BFTNET_EINVAL;
  l->slots = calloc(cap, sizeof *l->slots);
  if (!l->slots) return BFTNET_ENOMEM;
  l->cap = cap;
  l->max_bytes = max_bytes;
  ck_spinlock_fas_init(&l->lock);
  return 0;
}

size_t disp_blog_destroy(disp_blog_t *l) {
  size_t n = 0;
  if (l->slots) {
    for (uint64_t s = l->tail; s != l->head; s++) {
      disp_msg_release(disp_blog_slot(l, s)->msg);
      n++;
    }
  }
  free(l->slots);
  memset(l, 0, sizeof *l);
  return n;
}

bool disp_blog_push(disp_blog_t *l, disp_msg_t *m, uint64_t ver) {
  BN_ASSERT(m != NULL);
  /* Read before it is published: once head moves the loop may free it. */
  uint64_t len = m->len;
  disp_spin_lock(&l->lock);
  uint64_t h = l->head, t = ck_pr_load_64(&l->tail);
  BN_TSAN_ACQUIRE(&l->tail); /* the loop released the slots below t */
  uint64_t held = l->bytes_head - ck_pr_load_64(&l->bytes_tail);
  if (h - t >= l->cap || (l->max_bytes != UINT64_MAX && held + len > l->max_bytes)) {
    disp_spin_unlock(&l->lock);
    return false;
  }
  disp_blog_slot_t *s = disp_blog_slot(l, h);
  s->msg = m;
  s->ver = ver;
  BN_TSAN_RELEASE(m);        /* the message's bytes, to whoever takes it */
  BN_TSAN_RELEASE(&l->head); /* the slot, to whoever reads head */
  ck_pr_store_64(&l->bytes_head, l->bytes_head + len); /* only lock holders write it */
  ck_pr_fence_store();
  ck_pr_store_64(&l->head, h + 1);
  disp_spin_unlock(&l->lock);
  return true;
}

uint64_t disp_blog_head(const disp_blog_t *l) {
  uint64_t h = ck_pr_load_64((uint64_t *)(uintptr_t)&l->head);
  ck_pr_fence_load();
  BN_TSAN_ACQUIRE(&l->head);
  return h;
}

void disp_blog_release_to(disp_blog_t *l, uint64_t to) {
  uint64_t t = l->tail;
  BN_ASSERT(to - t <= l->cap);
  if (to == t) return;
  uint64_t bytes = 0;
  for (; t != to; t++) {
    disp_blog_slot_t *s = disp_blog_slot(l, t);
    bytes += s->msg->len;
    disp_msg_release(s->msg);
    s->msg = NULL;
  }
  BN_TSAN_RELEASE(&l->tail);
  ck_pr_fence_store();
  ck_pr_store_64(&l->bytes_tail, l->bytes_tail + bytes);
  ck_pr_store_64(&l->tail, to);
}
