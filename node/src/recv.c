/*
 * recv.c — bftnet_recv and friends, on application threads: every
 * member's Receiver (receiver/) fills its own bounded inbound queue; these
 * take from the queues round-robin across members, block on the node's
 * eventfd while all are empty, and wake the loop thread when a queue that
 * was full has room again (it then credits that member's stream).
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <unistd.h>

#include "node_internal.h"

/* Round-robin passes over the members, starting one further each call:
 * in a pass each member gives at most an equal share of what is still
 * wanted (at least one), so a chatty member cannot starve the others, and a
 * share is taken as one batch (the queue's counters move once). */
#define RECV_SCAN_CHUNK 64
static int recv_scan(bftnet_t *b, bftnet_msg_t *out, int max, bool *wake_loop) {
  ck_epoch_section_t sec;
  ck_epoch_record_t *r = node__snapshot_enter(b, &sec);
  if (!r) return BFTNET_ENOMEM;
  msnap_t *s = node__snapshot_load(b);
  int got = 0;
  if (s->n) {
    uint32_t start = ck_pr_faa_32(&b->rr, 1);
    bool progress = true;
    rx_msg_t *batch[RECV_SCAN_CHUNK];
    while (got < max && progress) {
      progress = false;
      size_t share = (size_t)(max - got) / s->n;
      if (share < 1) share = 1;
      if (share > RECV_SCAN_CHUNK) share = RECV_SCAN_CHUNK;
      for (size_t i = 0; i < s->n && got < max; i++) {
        mbr_t *m = s->m[(start + i) % s->n];
        size_t want = (size_t)(max - got) < share ? (size_t)(max - got) : share;
        unsigned k = rx_pop_batch(&m->r, batch, (unsigned)want, wake_loop);
        if (!k) continue;
        progress = true;
        for (unsigned j = 0; j < k; j++)
          out[got++] = (bftnet_msg_t){.from = batch[j]->from,
                                      .data = batch[j]->data,
                                      .len = batch[j]->len,
                                      .priv = batch[j]};
      }
    }
  }
  node__snapshot_exit(b, r, &sec);
  return got;
}

BFTNET_API int bftnet_recv_batch(bftnet_t *b, bftnet_msg_t *msgs, int max, int timeout_ms) {
  if (!b || !msgs || max <= 0) return BFTNET_EINVAL;
  if (b->cfg.on_message) return BFTNET_EONMESSAGE; /* nothing is ever queued for it */
  /* A wait inside a callback would hold up the loop that fills the queues. */
  if (timeout_ms != 0 && node__cmd_in_callback(b)) return BFTNET_EINCALLBACK;
  uint64_t deadline =
      timeout_ms > 0 ? bn_now_ns(b->t->seam) + (uint64_t)timeout_ms * 1000000ull : 0;
  for (;;) {
    bool wake = false;
    int got = recv_scan(b, msgs, max, &wake);
    if (got == 0) {
      /* Empty: clear the fd, then look once more, so that the fd is
       * readable exactly when a message may be waiting (a push after this
       * scan sets it again). */
      uint64_t v;
      (void)!read(b->efd, &v, sizeof v);
      got = recv_scan(b, msgs, max, &wake);
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
        got = recv_scan(b, msgs, max, &wake);
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
    struct pollfd p = {.fd = b->efd, .events = POLLIN};
    int pr = poll(&p, 1, wait_ms);
    if (pr < 0 && errno != EINTR) return -errno;
  }
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
  return b ? b->efd : BFTNET_EINVAL;
}
