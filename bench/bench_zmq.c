/*
 * bench_zmq.c — the ZeroMQ baselines of bftnet-bench (libzmq, loopback,
 * two processes, one context with its default single I/O thread each):
 *   PUSH/PULL throughput, with CURVE (BB_ZMQ_CURVE) or without (BB_ZMQ):
 *     PULL binds tcp://127.0.0.1:* (the CURVE server), PUSH connects;
 *     zmq_send in a loop (it blocks at the high-water mark: that is
 *     ZeroMQ's backpressure), zmq_msg_recv on the other side.
 *   REQ/REP round trips, with or without CURVE.
 * CURVE keys come from zmq_curve_keypair in the parent (bb_job_t).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "bftnet_bench.h"

/* ZeroMQ's default high-water marks (1000 messages), set explicitly. Tried
 * 100000 too: no faster up to 1 KiB, and 16 KiB got 40 % slower (queues of
 * 1.6 GB), so the baseline runs as shipped. */
#define HWM 1000

static void setopt_int(int idx, void *s, int opt, int v) {
  if (zmq_setsockopt(s, opt, &v, sizeof v))
    bb_fail(idx, "zmq_setsockopt %d: %s", opt, zmq_strerror(zmq_errno()));
}

static void setopt_str(int idx, void *s, int opt, const char *v) {
  if (zmq_setsockopt(s, opt, v, strlen(v)))
    bb_fail(idx, "zmq_setsockopt %d: %s", opt, zmq_strerror(zmq_errno()));
}

static int curve_of(const bb_job_t *job) {
  return job->sys == BB_ZMQ_CURVE;
}

/* A socket with the options both sides share: no linger, HWM, 100 ms
 * send and receive timeouts. */
static void *zsock_new(int idx, void *ctx, int type) {
  void *s = zmq_socket(ctx, type);
  if (!s) bb_fail(idx, "zmq_socket: %s", zmq_strerror(zmq_errno()));
  setopt_int(idx, s, ZMQ_LINGER, 0);
  setopt_int(idx, s, ZMQ_RCVHWM, HWM);
  setopt_int(idx, s, ZMQ_SNDHWM, HWM);
  setopt_int(idx, s, ZMQ_RCVTIMEO, 100);
  setopt_int(idx, s, ZMQ_SNDTIMEO, 100);
  return s;
}

/* A bound socket (server side); publishes its endpoint as node 1's address. */
static void *zsock_bind(int idx, void *ctx, int type, const bb_job_t *job) {
  void *s = zsock_new(idx, ctx, type);
  if (curve_of(job)) {
    setopt_int(idx, s, ZMQ_CURVE_SERVER, 1);
    setopt_str(idx, s, ZMQ_CURVE_SECRETKEY, job->zsrv_sec);
  }
  if (zmq_bind(s, "tcp://127.0.0.1:*")) bb_fail(idx, "zmq_bind: %s", zmq_strerror(zmq_errno()));
  char ep[BB_ADDR_MAX];
  size_t len = sizeof ep;
  if (zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, ep, &len)) bb_fail(idx, "ZMQ_LAST_ENDPOINT");
  bb_publish_addr(1, ep);
  return s;
}

static void *zsock_connect(bb_child_t *ch, void *ctx, int type, const bb_job_t *job) {
  void *s = zsock_new(ch->idx, ctx, type);
  if (curve_of(job)) {
    setopt_str(ch->idx, s, ZMQ_CURVE_SERVERKEY, job->zsrv_pub);
    setopt_str(ch->idx, s, ZMQ_CURVE_PUBLICKEY, job->zcli_pub);
    setopt_str(ch->idx, s, ZMQ_CURVE_SECRETKEY, job->zcli_sec);
  }
  const char *ep = bb_wait_addr(ch, 1);
  if (zmq_connect(s, ep)) bb_fail(ch->idx, "zmq_connect %s: %s", ep, zmq_strerror(zmq_errno()));
  return s;
}

static void *ctx_new(int idx) {
  void *ctx = zmq_ctx_new();
  if (!ctx) bb_fail(idx, "zmq_ctx_new: %s", zmq_strerror(zmq_errno()));
  return ctx;
}

static void finish(void *s, void *ctx) {
  zmq_close(s);
  zmq_ctx_term(ctx);
}

/* zmq_msg_recv into m: true with a message, false when it timed out or was
 * interrupted; fails the child on other errors. */
static bool msg_recv(int idx, zmq_msg_t *m, void *s) {
  if (zmq_msg_recv(m, s, 0) >= 0) return true;
  if (zmq_errno() == EAGAIN || zmq_errno() == EINTR) return false;
  bb_fail(idx, "zmq_msg_recv: %s", zmq_strerror(zmq_errno()));
}

/* ------------------------------------------------------- PUSH / PULL */

void bb_zmq_sender(int idx, const bb_job_t *job) {
  bb_child_t ch;
  bb_child_init(&ch, idx, job);
  void *ctx = ctx_new(idx);
  void *s = zsock_connect(&ch, ctx, ZMQ_PUSH, job);
  uint8_t *msg = bb_msg_alloc(idx, job);
  int ph = bb_ready_go(&ch);
  uint64_t seq = 0;
  while (ph < BB_PH_STOP) {
    for (int k = 0; k < 256; k++) {
      bb_put_seq(msg, job->size, seq + 1);
      if (zmq_send(s, msg, job->size, 0) < 0) {
        if (zmq_errno() == EAGAIN || zmq_errno() == EINTR) break; /* at the HWM for 100 ms */
        bb_fail(idx, "zmq_send: %s", zmq_strerror(zmq_errno()));
      }
      seq++;
    }
    ch.c.enq = ch.c.msgs = seq;
    ch.c.bytes = seq * job->size;
    ph = bb_tick(&ch);
  }
  free(msg);
  finish(s, ctx);
}

void bb_zmq_receiver(int idx, const bb_job_t *job) {
  bb_child_t ch;
  bb_child_init(&ch, idx, job);
  void *ctx = ctx_new(idx);
  void *s = zsock_bind(idx, ctx, ZMQ_PULL, job);
  bb_ready(idx);
  uint64_t last = 0;
  zmq_msg_t m;
  zmq_msg_init(&m);
  while (bb_tick(&ch) < BB_PH_STOP) {
    if (msg_recv(idx, &m, s)) bb_count_msg(&ch.c, zmq_msg_data(&m), zmq_msg_size(&m), &last);
  }
  zmq_msg_close(&m);
  finish(s, ctx);
}

/* ---------------------------------------------------------- REQ / REP */

typedef struct zping {
  void *s;
  uint8_t *in;
} zping_t;

/* bb_rtt_fn: one REQ/REP round trip (ud: a zping_t). */
static bool req_once(bb_child_t *ch, void *ud, uint32_t i, const uint8_t *out, size_t size,
                     uint64_t *ns) {
  zping_t *z = ud;
  uint64_t t0 = bb_now_ns();
  if (zmq_send(z->s, out, size, 0) < 0) bb_fail(ch->idx, "zmq_send: %s", zmq_strerror(zmq_errno()));
  int r = zmq_recv(z->s, z->in, size, 0);
  if (r < 0) bb_fail(ch->idx, "zmq_recv after %u round trips: %s", i, zmq_strerror(zmq_errno()));
  *ns = bb_now_ns() - t0;
  return (size_t)r == size && memcmp(z->in, out, size) == 0;
}

void bb_zmq_req(int idx, const bb_job_t *job) {
  bb_child_t ch;
  bb_child_init(&ch, idx, job);
  void *ctx = ctx_new(idx);
  zping_t z = {.s = zsock_connect(&ch, ctx, ZMQ_REQ, job)};
  setopt_int(idx, z.s, ZMQ_RCVTIMEO, 2000);
  setopt_int(idx, z.s, ZMQ_SNDTIMEO, 2000);
  z.in = bb_msg_alloc(idx, job);
  bb_rtt_pinger(&ch, job, req_once, &z, true);
  free(z.in);
  finish(z.s, ctx);
}

void bb_zmq_rep(int idx, const bb_job_t *job) {
  bb_child_t ch;
  bb_child_init(&ch, idx, job);
  void *ctx = ctx_new(idx);
  void *s = zsock_bind(idx, ctx, ZMQ_REP, job);
  bb_ready(idx);
  zmq_msg_t m;
  zmq_msg_init(&m);
  while (bb_tick(&ch) < BB_PH_STOP) {
    if (!msg_recv(idx, &m, s)) continue;
    if (zmq_msg_send(&m, s, 0) < 0) bb_fail(idx, "zmq_msg_send: %s", zmq_strerror(zmq_errno()));
    /* zmq_msg_send took the content; m is empty again */
  }
  zmq_msg_close(&m);
  finish(s, ctx);
}
