/*
 * recv.c — bftnet_recv and friends, on application threads: every
 * member's Receiver (receiver/) fills a bounded inbound queue per traffic
 * class; these take from the queues by class priority and round-robin
 * across members, block on the node's
 * eventfd while all are empty, and wake the loop thread when a queue that
 * was full has room again (it then credits that member's stream).
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <unistd.h>

#include "node_internal.h"

/* Round-robin passes over the members (and the classes of one priority),
 * starting one further each call: in a pass each member gives at most an
 * equal share of what is still wanted (at least one), so a chatty member
 * cannot starve the others, and a share is taken as one batch (the queue's
 * counters move once). */
#define RECV_SCAN_CHUNK 64
static int scan_group(bftnet_t *b, const msnap_t *s, unsigned g, uint32_t mask, uint32_t start,
                      bftnet_msg_t *out, int got, int max, bool *wake_loop) {
  unsigned c0 = b->grp_start[g], nc = b->grp_start[g + 1] - c0;
  size_t slots = s->n * nc;
  bool progress = true;
  rx_msg_t *batch[RECV_SCAN_CHUNK];
  while (got < max && progress) {
    progress = false;
    size_t share = (size_t)(max - got) / slots;
    if (share < 1) share = 1;
    if (share > RECV_SCAN_CHUNK) share = RECV_SCAN_CHUNK;
    for (size_t i = 0; i < slots && got < max; i++) {
      size_t x = (start + i) % slots;
      mbr_t *m = s->m[x % s->n];
      unsigned cls = b->order[c0 + x / s->n];
      if (!(mask & (1u << cls))) continue;
      size_t want = (size_t)(max - got) < share ? (size_t)(max - got) : share;
      unsigned k = rx_pop_batch(&m->r, cls, batch, (unsigned)want, wake_loop);
      if (!k) continue;
      progress = true;
      for (unsigned j = 0; j < k; j++)
        out[got++] = (bftnet_msg_t){.from = batch[j]->from,
                                    .data = batch[j]->data,
                                    .len = batch[j]->len,
                                    .priv = batch[j],
                                    .cls = (uint8_t)cls};
    }
  }
  return got;
}

/* Classes by priority, most urgent first; one call in 100/class_min_share
 * starts with the least urgent, so a flood of urgent messages cannot keep
 * the others from the application either. */
static int recv_scan(bftnet_t *b, uint32_t mask, bftnet_msg_t *out, int max, bool *wake_loop) {
  ck_epoch_section_t sec;
  ck_epoch_record_t *r = node__snapshot_enter(b, &sec);
  if (!r) return BFTNET_ENOMEM;
  msnap_t *s = node__snapshot_load(b);
  int got = 0;
  if (s->n) {
    uint32_t start = ck_pr_faa_32(&b->rr, 1);
    bool low_first = false;
    if (b->ngrp > 1 && b->cfg.class_min_share) {
      uint32_t period = 100u / b->cfg.class_min_share;
      low_first = ck_pr_faa_32(&b->rx_turn, 1) % period == period - 1;
    }
    for (unsigned i = 0; i < b->ngrp && got < max; i++) {
      unsigned g = low_first ? b->ngrp - 1 - i : i;
      got = scan_group(b, s, g, mask, start, out, got, max, wake_loop);
    }
  }
  node__snapshot_exit(b, r, &sec);
  return got;
}

/* Whether a class outside mask holds messages (a receiver of some classes
 * only, which just cleared the eventfd, sets it again for the others). */
static bool others_waiting(bftnet_t *b, uint32_t mask) {
  ck_epoch_section_t sec;
  ck_epoch_record_t *r = node__snapshot_enter(b, &sec);
  if (!r) return true;
  msnap_t *s = node__snapshot_load(b);
  bool any = false;
  for (size_t i = 0; i < s->n && !any; i++)
    for (unsigned c = 0; c < b->ncls && !any; c++)
      any = !(mask & (1u << c)) && rx_inq_depth(&s->m[i]->r.cls[c].inq) > 0;
  node__snapshot_exit(b, r, &sec);
  return any;
}

/* A thread that takes some classes only sleeps on their fds, not on the
 * node's: the node's fd is readable while any class holds messages, and a
 * thread of the votes sleeping there would be woken by every block (and
 * one of the blocks could not sleep while a vote waited for the other
 * thread). It counts itself a waiter, looks once more, sleeps, clears what
 * woke it. Returns what it took (> 0), 0 to look again, or an error. */
static int wait_classes(bftnet_t *b, uint32_t mask, bftnet_msg_t *msgs, int max, int wait_ms) {
  ck_pr_inc_int(&b->cls_waiters);
  ck_pr_fence_memory(); /* pairs with on_rx_ready's: see its comment */
  bool wake = false;
  int got = recv_scan(b, mask, msgs, max, &wake);
  if (got == 0 && !ck_pr_load_int(&b->stopped)) {
    struct pollfd p[BFTNET_MAX_CLASSES];
    nfds_t n = 0;
    for (unsigned c = 0; c < b->ncls; c++)
      if (mask & (1u << c)) p[n++] = (struct pollfd){.fd = b->cls_efd[c], .events = POLLIN};
    int pr = poll(p, n, wait_ms);
    if (pr < 0 && errno != EINTR) got = -errno;
    uint64_t v;
    for (nfds_t i = 0; pr > 0 && i < n; i++)
      if (p[i].revents) (void)!read(p[i].fd, &v, sizeof v);
  }
  ck_pr_dec_int(&b->cls_waiters);
  if (wake) b->t->ops->wake_send(b->wake);
  return got;
}

static int recv_mask(bftnet_t *b, uint32_t mask, bftnet_msg_t *msgs, int max, int timeout_ms) {
  if (b->cfg.on_message || b->cfg.on_message_ex)
    return BFTNET_EONMESSAGE; /* nothing is ever queued for it */
  /* A wait inside a callback would hold up the loop that fills the queues. */
  if (timeout_ms != 0 && node__cmd_in_callback(b)) return BFTNET_EINCALLBACK;
  uint64_t deadline =
      timeout_ms > 0 ? bn_now_ns(b->t->seam) + (uint64_t)timeout_ms * 1000000ull : 0;
  for (;;) {
    bool wake = false;
    int got = recv_scan(b, mask, msgs, max, &wake);
    if (got == 0 && ck_pr_load_int(&b->efd_exported)) {
      /* Empty: clear the fd the application polls, then look once more,
       * so that the fd is readable exactly when a message may be waiting
       * (a push after this scan sets it again; so does a receiver of other
       * classes). Unexported, only sleepers below use the fd and clear it. */
      uint64_t v;
      if (read(b->efd, &v, sizeof v) == (ssize_t)sizeof v && mask != b->all_classes &&
          others_waiting(b, mask)) {
        uint64_t one = 1;
        (void)!write(b->efd, &one, sizeof one);
      }
      got = recv_scan(b, mask, msgs, max, &wake);
    }
    if (wake) b->t->ops->wake_send(b->wake); /* room freed: the loop credits the stream again */
    if (got != 0) return got;
    if (ck_pr_load_int(&b->stopped)) return BFTNET_ECLOSED;
    if (timeout_ms == 0) return BFTNET_EAGAIN;
    if (b->cfg.busy_poll_us) { /* poll the queues before sleeping */
      const bn_seam_t *seam = b->t->seam;
      uint64_t until = bn_now_ns(seam) + (uint64_t)b->cfg.busy_poll_us * 1000u;
      if (timeout_ms > 0 && deadline < until) until = deadline;
      while (got == 0 && bn_now_ns(seam) < until && !ck_pr_load_int(&b->stopped)) {
        sched_yield();
        got = recv_scan(b, mask, msgs, max, &wake);
      }
      if (wake) b->t->ops->wake_send(b->wake);
      if (got != 0) return got;
    }
    int wait_ms = -1;
    if (timeout_ms > 0) {
      uint64_t now = bn_now_ns(b->t->seam);
      if (now >= deadline) return BFTNET_ETIMEDOUT;
      wait_ms = (int)((deadline - now + 999999) / 1000000);
    }
    if (!b->own_thread) { /* this thread runs the loop: turn it instead of sleeping */
      b->t->ops->run(b->t, BN_RUN_ONCE);
      continue;
    }
    if (mask != b->all_classes && b->ncls > 1) {
      int rc = wait_classes(b, mask, msgs, max, wait_ms);
      if (rc != 0) return rc;
      continue;
    }
    /* Counted as a waiter, look once more, then sleep: on_rx_ready writes
     * the fd only for waiters (see its comment for the fences' pairing). */
    ck_pr_inc_int(&b->efd_waiters);
    ck_pr_fence_memory();
    wake = false;
    got = recv_scan(b, mask, msgs, max, &wake);
    int perr = 0;
    if (got == 0 && !ck_pr_load_int(&b->stopped)) {
      struct pollfd p = {.fd = b->efd, .events = POLLIN};
      int pr = poll(&p, 1, wait_ms);
      if (pr < 0) perr = errno;
      uint64_t v;
      if (pr > 0 && !ck_pr_load_int(&b->efd_exported)) (void)!read(b->efd, &v, sizeof v);
    }
    ck_pr_dec_int(&b->efd_waiters);
    if (wake) b->t->ops->wake_send(b->wake);
    if (got != 0) return got;
    if (perr && perr != EINTR) return -perr;
  }
}

BFTNET_API int bftnet_recv_batch(bftnet_t *b, bftnet_msg_t *msgs, int max, int timeout_ms) {
  if (!b || !msgs || max <= 0) return BFTNET_EINVAL;
  return recv_mask(b, b->all_classes, msgs, max, timeout_ms);
}

BFTNET_API int bftnet_recv_classes(bftnet_t *b, uint32_t classes, bftnet_msg_t *msgs, int max,
                                   int timeout_ms) {
  if (!b || !msgs || max <= 0) return BFTNET_EINVAL;
  if (classes == 0 || (classes & ~b->all_classes)) return BFTNET_ENOCLASS;
  return recv_mask(b, classes, msgs, max, timeout_ms);
}

BFTNET_API int bftnet_recv(bftnet_t *b, bftnet_msg_t *msg, int timeout_ms) {
  int rc = bftnet_recv_batch(b, msg, 1, timeout_ms);
  return rc == 1 ? 0 : rc;
}

BFTNET_API void bftnet_msg_release(bftnet_msg_t *msg) {
  if (!msg || !msg->priv) return;
  rx_msg_free(msg->priv);
  msg->priv = NULL;
  msg->data = NULL;
}

BFTNET_API int bftnet_recv_fd(bftnet_t *b) {
  if (!b) return BFTNET_EINVAL;
  /* From now on the loop writes the fd on every delivery; now, if it
   * queued messages before it knew (the fences pair with on_rx_ready's:
   * either it sees the flag or this sees its messages). */
  if (!ck_pr_load_int(&b->efd_exported)) {
    ck_pr_store_int(&b->efd_exported, 1);
    ck_pr_fence_memory();
    uint64_t one = 1;
    if (others_waiting(b, 0)) (void)!write(b->efd, &one, sizeof one);
  }
  return b->efd;
}
