/*
 * carrier.c — the yamux carriers under logical streams: their records, the
 * outer multistream `/libp2p/stream-migration` in front of them, the one
 * StreamMigration message each carries before L's bytes (written, or read
 * and credited), the credit for the bytes we wrote before L's first byte
 * (absorbed), and the window updates owed to the peer (flushed by a timer).
 * Calls only the core (mig_core.h) and net.
 */
#include <stdlib.h>

#include "mig_internal.h"

mig_carrier_t *mig__carrier_new(mig_peer_t *p, net_conn_t *conn) {
  mig_carrier_t *car = calloc(1, sizeof *car);
  if (!car) return NULL;
  car->p = p;
  car->h = ++p->n->next_h;
  car->conn = conn;
  car->next = p->carriers;
  p->carriers = car;
  return car;
}

/* Net is done with car: it leaves the lists at the next reap, so a loop
 * over p->carriers never sees one vanish under it. */
void mig__carrier_unlink(mig_carrier_t *car) {
  car->gone = true;
  car->dead = true;
  car->ns = NULL;
  car->p->n->reap_needed = true;
}

void mig__carrier_destroy(mig_carrier_t *car) {
  mig_node_t *n = car->p->n;
  if (car->flush_queued)
    for (mig_carrier_t **pp = &n->flush_head; *pp; pp = &(*pp)->flush_next)
      if (*pp == car) {
        *pp = car->flush_next;
        break;
      }
  free(car->rd);
  free(car);
}

/* A carrier on conn for p: with a reader for the first StreamMigration
 * message if `reader`, and, when proto is set, an outbound stream proposing
 * it (net writes the multistream header and proposal: pre_left). On
 * failure nothing is left behind. */
int mig__carrier_open(mig_peer_t *p, net_conn_t *conn, const char *proto,
                      const net_stream_cbs_t *cbs, bool reader, mig_carrier_t **out) {
  mig_carrier_t *car = mig__carrier_new(p, conn);
  if (!car) return BFTNET_ENOMEM;
  int rc = 0;
  if (reader) {
    car->rd = malloc(sizeof *car->rd);
    if (car->rd)
      mig_reader_init(car->rd);
    else
      rc = BFTNET_ENOMEM;
  }
  if (rc == 0 && proto) rc = net_stream_open(conn, proto, cbs, car, &car->ns);
  if (rc < 0) {
    mig__carrier_unlink(car); /* marks it dead; the next reap frees it */
    return rc;
  }
  car->pre_left = p->n->pre_label;
  *out = car;
  return 0;
}

void mig__carrier_reset(mig_carrier_t *car) {
  if (car->dead || !car->ns) return;
  car->dead = true;
  net_stream_reset(car->ns); /* net's on_free follows */
}

void mig__carrier_flush(void *ud) {
  mig_node_t *n = ud;
  n->flush_scheduled = false;
  while (n->flush_head) {
    mig_carrier_t *car = n->flush_head;
    n->flush_head = car->flush_next;
    car->flush_next = NULL;
    car->flush_queued = false;
    if (!car->dead && car->ns) net_stream_credit(car->ns, 0, true);
  }
}

static void flush_arm(mig_node_t *n) {
  if (!n->flush_scheduled && !n->stopping && n->flush_timer) {
    n->flush_scheduled = true;
    n->t->ops->timer_start(n->flush_timer, MIG_CREDIT_FLUSH_MS, 0);
  }
}

void mig__carrier_kick(mig_peer_t *p) {
  p->conf_due = true;
  flush_arm(p->n);
}

/* Credit for bytes L took. yamux sends the window update by itself once
 * half the window is owed (the steady state under load). For an older peer
 * (it takes credit as confirmation, PROTOCOL.md §11.11) what is left is
 * flushed MIG_CREDIT_FLUSH_MS later, so an idle stream's writer still learns
 * promptly that its bytes were read. Not a flush per loop iteration: that
 * cost a write, a Noise frame and a wakeup of the writer per read
 * (docs/BENCHMARKS.md). A peer that confirms with Confirms needs credit for
 * flow control only: yamux's own rule is enough. */
void mig__carrier_credit(mig_carrier_t *car, uint64_t k) {
  if (car->dead || car->released || !car->ns || !k) return;
  net_stream_credit(car->ns, (size_t)k, false);
  if (car->p->mig.mode == MIG_MODE_ON) return;
  mig_node_t *n = car->p->n;
  if (!car->flush_queued) {
    car->flush_queued = true;
    car->flush_next = n->flush_head;
    n->flush_head = car;
  }
  flush_arm(n);
}

static int ms_len(const char *text) {
  bn_buf_t b;
  bn_buf_init(&b);
  int rc = ms_append(&b, text);
  int len = rc < 0 ? rc : (int)b.len;
  bn_buf_free(&b);
  return len;
}

int mig__carrier_prefix_len(void) {
  int a = ms_len(MS_PROTO_ID), b = ms_len(MIG_PROTO_ID);
  return a < 0 || b < 0 ? BFTNET_EINVAL : a + b;
}

uint64_t mig__carrier_absorb(mig_carrier_t *car, uint64_t k) {
  uint64_t absorb = BN_MIN(k, car->pre_left);
  car->pre_left -= absorb;
  return k - absorb;
}

void mig__carrier_send_msg(mig_peer_t *p, mig_carrier_t *car, const mig_msg_t *m) {
  if (!car || car->dead || !car->ns) return;
  mig_msg_t mine = *m; /* every message says how large a message we take */
  mine.max_message_size = p->n->cfg.max_message_size;
  bn_buf_t b;
  bn_buf_init(&b);
  int rc = mig_msg_encode(&mine, &b);
  if (rc == 0) {
    /* A fresh stream has 256 KiB of credit: short only for a lying peer. */
    rc = net_stream_write_ctl(car->ns, b.data, b.len);
    rc = rc == (int)b.len ? 0 : rc < 0 ? rc : BFTNET_EAGAIN;
  }
  if (rc == 0)
    car->pre_left += b.len;
  else
    bn_log(p->n->cfg.log, BN_LOG_INFO, "stream migration: %s: cannot send a message: %s",
           MIG_WHO(p), bftnet_strerror(rc));
  bn_buf_free(&b);
}

int mig__carrier_read_msg(mig_carrier_t *car, net_stream_t *s, const uint8_t *d, size_t n,
                          mig_msg_t *msg, size_t *used) {
  size_t took = mig_reader_feed(car->rd, d, n);
  int r = mig_reader_next(car->rd, msg);
  if (r < 0) {
    mig__count(car->p->n, BFTNET_COUNTER_MIG_BAD_MESSAGE, 1);
    bn_log(car->p->n->cfg.log, BN_LOG_INFO, "stream migration: %s sent a bad message: %s",
           MIG_WHO(car->p), bftnet_strerror(r));
    mig__carrier_reset(car);
    return r;
  }
  if (r == 0) {
    net_stream_credit(s, took, false);
    return 0;
  }
  const uint8_t *rest;
  size_t nrest;
  mig_reader_rest(car->rd, &rest, &nrest);
  /* The message's bytes are credited now (they are not L's); the bytes
   * behind it in this chunk are L's and go through the core. */
  *used = took - nrest;
  net_stream_credit(s, *used, false);
  free(car->rd);
  car->rd = NULL;
  /* The peer's limit, from any message it sends (the latest wins; larger
   * than a uint32: no limit we could reach). */
  if (msg->max_message_size)
    car->p->peer_max_msg = (uint32_t)BN_MIN(msg->max_message_size, (uint64_t)UINT32_MAX);
  return 1;
}
