/*
 * inq.c — a member's bounded inbound queue: a ck_ring (single producer, the
 * loop thread; many consumers, the application threads) plus a loop-side
 * overflow list for the at most one yamux window that arrives after the loop
 * stopped crediting the stream.
 *
 * Order: a message enters the ring only when the overflow list is empty, so
 * the ring always holds older messages than the list; the list moves into
 * the ring from its head.
 *
 * Accounting: the loop counts messages and data bytes pushed (in_*) before
 * it publishes them, consumers count what they took (out_*) after taking
 * it; a reader loads out_* before in_*, so the depth in - out never
 * underflows, and it returns to zero once the queue is drained. Each side
 * writes only its own line (no shared read-modify-write per message).
 *
 * ThreadSanitizer: ck_pr is inline assembly, which TSan cannot see, so the
 * ring's release (producer's p_tail store) / acquire (consumer's p_tail
 * load) pair is invisible to it. We state it with annotations: a release on
 * the ring before each enqueue, an acquire after each successful dequeue.
 * The consumer's slot read inside ck_ring_dequeue_spmc happens before that
 * acquire (and mc consumers may read a slot speculatively, retrying when
 * their CAS loses), so reads inside the dequeue are not tracked.
 */
#include <stdlib.h>

#include <ck_pr.h>

#include "receiver.h"

int rx_inq_init(rx_inq_t *q, uint32_t cap, uint64_t max_bytes) {
  memset(q, 0, sizeof(*q));
  /* ck_ring: a power of two, one slot always free. */
  if (cap < 2 || (cap & (cap - 1)) != 0) return BFTNET_EINVAL;
  q->buf = calloc(cap, sizeof(*q->buf));
  if (q->buf == NULL) return BFTNET_ENOMEM;
  ck_ring_init(&q->ring, cap);
  q->cap = cap;
  q->max_bytes = max_bytes;
  return 0;
}

/* Loop thread: publishes m to the consumers; false when the ring is full. */
static bool rx_inq_ring_put(rx_inq_t *q, rx_msg_t *m) {
  m->next = NULL;
  BN_TSAN_RELEASE(&q->ring);
  return ck_ring_enqueue_spmc(&q->ring, q->buf, m);
}

static void rx_inq_ovf_append(rx_inq_t *q, rx_msg_t *m) {
  m->next = NULL;
  if (q->ovf_tail != NULL)
    q->ovf_tail->next = m;
  else
    q->ovf_head = m;
  q->ovf_tail = m;
}

void rx_inq_push_spmc(rx_inq_t *q, rx_msg_t *m) {
  BN_ASSERT(m != NULL);
  ck_pr_store_64(&q->in_msgs, q->in_msgs + 1); /* only the loop writes them */
  ck_pr_store_64(&q->in_bytes, q->in_bytes + m->len);
  /* Behind the overflow, never ahead of it. */
  if (q->ovf_head == NULL && rx_inq_ring_put(q, m)) return;
  rx_inq_ovf_append(q, m);
  if (!ck_pr_load_int(&q->ovf_waiting)) {
    /* Flag, then look for room once more: a consumer pops, then reads
     * the flag (rx_pop_batch), so either it sees the flag and wakes the
     * loop, or this sees the room it made. Otherwise the list could wait
     * beside an empty ring with no one to move it. */
    ck_pr_store_int(&q->ovf_waiting, 1);
    ck_pr_fence_memory();
  }
  rx_inq_refill_spmc(q);
}

unsigned rx_inq_refill_spmc(rx_inq_t *q) {
  unsigned moved = 0;
  while (q->ovf_head != NULL) {
    rx_msg_t *m = q->ovf_head;
    rx_msg_t *next = m->next; /* read before publishing: a consumer may free m */
    if (!rx_inq_ring_put(q, m)) {
      m->next = next; /* still ours: the ring was full */
      return moved;
    }
    moved++;
    q->ovf_head = next;
    if (next == NULL) q->ovf_tail = NULL;
  }
  if (moved) ck_pr_store_int(&q->ovf_waiting, 0);
  return moved;
}

unsigned rx_inq_pop_batch_spmc(rx_inq_t *q, rx_msg_t **out, unsigned max) {
  unsigned n = 0;
  uint64_t bytes = 0;
  while (n < max) {
    rx_msg_t *m = NULL;
    BN_TSAN_IGNORE_READS_BEGIN();
    bool ok = ck_ring_dequeue_spmc(&q->ring, q->buf, &m);
    BN_TSAN_IGNORE_READS_END();
    if (!ok) break;
    BN_TSAN_ACQUIRE(&q->ring);
    bytes += m->len;
    out[n++] = m;
  }
  if (n) {
    ck_pr_add_64(&q->out_bytes, bytes);
    ck_pr_add_64(&q->out_msgs, n);
    ck_pr_add_64(&q->delivered, n);
  }
  return n;
}

rx_msg_t *rx_inq_pop_spmc(rx_inq_t *q) {
  rx_msg_t *m = NULL;
  return rx_inq_pop_batch_spmc(q, &m, 1) ? m : NULL;
}

uint32_t rx_inq_depth(rx_inq_t *q) {
  uint64_t out_m = ck_pr_load_64(&q->out_msgs);
  ck_pr_fence_load();
  return (uint32_t)(ck_pr_load_64(&q->in_msgs) - out_m);
}

uint64_t rx_inq_bytes(rx_inq_t *q) {
  uint64_t out_b = ck_pr_load_64(&q->out_bytes);
  ck_pr_fence_load();
  return ck_pr_load_64(&q->in_bytes) - out_b;
}

bool rx_inq_over(rx_inq_t *q) {
  return rx_inq_depth(q) >= q->cap - 1 || rx_inq_bytes(q) >= q->max_bytes;
}

size_t rx_inq_destroy(rx_inq_t *q) {
  size_t n = 0;
  if (q->buf != NULL) {
    rx_msg_t *m;
    while (ck_ring_dequeue_spmc(&q->ring, q->buf, &m)) {
      rx_msg_free(m);
      n++;
    }
  }
  while (q->ovf_head != NULL) {
    rx_msg_t *m = q->ovf_head;
    q->ovf_head = m->next;
    rx_msg_free(m);
    n++;
  }
  free(q->buf);
  memset(q, 0, sizeof(*q));
  return n;
}
