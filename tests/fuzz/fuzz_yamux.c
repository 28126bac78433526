/*
 * fuzz_yamux.c — a client and a server yamux session driven by a script
 * read from the input: raw bytes fed to either session as if from a hostile
 * peer, queued output delivered between them in arbitrary pieces, and local
 * operations (open, write, close, reset, consume, ping, goaway). Every
 * callback also acts (writes, consumes, resets, closes, opens, even tries a
 * reentrant feed), steered by the next input byte. Must never crash, trip
 * an invariant, or leak (ASan/LSan).
 *
 * Script: 3 config bytes, then ops: one byte op, then its arguments.
 */
#include <stdlib.h>

#include "yamux.h"

#define NSLOT     16
#define QUEUE_CAP (8u * 1024u * 1024u)
#define JUNK      (256u * 1024u)

typedef struct fstream {
  int side;
  int slot; /* index in side->st, or -1 when all slots are taken */
  uint32_t unconsumed;
} fstream_t;

typedef struct fside {
  yamux_session_t *s;
  bn_buf_t out;
  yamux_stream_t *st[NSLOT];
  bool failed;
} fside_t;

static struct {
  const uint8_t *p;
  size_t n;
  fside_t side[2];
  bool freeing;
} F;

static uint8_t junk[JUNK];

static uint8_t next(void) {
  if (!F.n) return 0;
  F.n--;
  return *F.p++;
}

static uint32_t next32(void) {
  uint32_t v = next();
  v = (v << 8) | next();
  v = (v << 8) | next();
  return (v << 8) | next();
}

static void check(bool ok) {
  if (!ok) abort();
}

/* ----------------------------------------------------- stream tracking */

static void track(int side, yamux_stream_t *st) {
  fstream_t *fs = calloc(1, sizeof(*fs));
  check(fs != NULL);
  fs->side = side;
  fs->slot = -1;
  for (int i = 0; i < NSLOT; i++) {
    if (!F.side[side].st[i]) {
      F.side[side].st[i] = st;
      fs->slot = i;
      break;
    }
  }
  yamux_stream_set_user(st, fs);
}

static void do_write(yamux_stream_t *st, size_t len) {
  size_t before = yamux_stream_send_window(st);
  int rc = yamux_stream_write(st, junk, BN_MIN(len, (size_t)JUNK));
  if (rc >= 0)
    check((size_t)rc <= len && (size_t)rc <= before);
  else
    check(rc == BFTNET_ESTATE || rc == BFTNET_EPROTO || rc == BFTNET_ENOMEM);
}

static void do_consume(yamux_stream_t *st, uint32_t n, bool flush) {
  fstream_t *fs = yamux_stream_get_user(st);
  n = BN_MIN(n, fs->unconsumed);
  fs->unconsumed -= n;
  yamux_stream_consume(st, n, flush);
}

static void do_open(int side) {
  yamux_stream_t *st;
  int rc = yamux_stream_open(F.side[side].s, &st);
  if (rc == 0)
    track(side, st);
  else
    check(st == NULL);
}

/* ------------------------------------------------------------ callbacks */

static int side_of(void *ud) {
  return (int)((fside_t *)ud - F.side);
}

static void cb_output(void *ud, const uint8_t hdr[BN_YAMUX_HEADER], const uint8_t *body,
                      size_t blen) {
  fside_t *sd = ud;
  check(!F.freeing);
  if (bn_buf_unread(&sd->out) > QUEUE_CAP) bn_buf_reset(&sd->out);
  check(bn_buf_append(&sd->out, hdr, BN_YAMUX_HEADER) == 0);
  if (blen) check(bn_buf_append(&sd->out, body, blen) == 0);
}

static int cb_accept(void *ud, yamux_stream_t *st) {
  int side = side_of(ud);
  track(side, st);
  uint8_t d = next(); /* 0 (input used up) is always the quiet choice */
  switch (d % 8) {
  case 1:
    return -1;
  case 2:
    check(yamux_stream_reset(st) == 0);
    return d & 8 ? -1 : 0;
  case 3:
    do_write(st, (size_t)next() << 8);
    return 0;
  case 4:
    check(yamux_stream_close(st) == 0);
    return 0;
  case 5: {
    uint8_t b = 0;
    check(yamux_session_feed(F.side[side].s, &b, 1) == BFTNET_ESTATE);
    return 0;
  }
  default:
    return 0;
  }
}

static void cb_data(void *ud, yamux_stream_t *st, const uint8_t *p, size_t n) {
  fstream_t *fs = yamux_stream_get_user(st);
  (void)p;
  fs->unconsumed += (uint32_t)n;
  uint8_t d = next();
  switch (d % 8) {
  case 0:
    do_consume(st, fs->unconsumed, d & 8);
    break;
  case 1:
    do_consume(st, (uint32_t)n / 2, false);
    break;
  case 2:
    do_write(st, n);
    break;
  case 3:
    check(yamux_stream_reset(st) == 0);
    break;
  case 4:
    (void)yamux_stream_close(st);
    break;
  case 5:
    do_open(side_of(ud));
    break;
  default:
    do_consume(st, (uint32_t)n, false);
    break;
  }
}

static void cb_fin(void *ud, yamux_stream_t *st) {
  check(yamux_stream_remote_closed(st));
  switch (next() % 4) {
  case 1:
    (void)yamux_stream_close(st);
    break;
  case 2:
    check(yamux_stream_reset(st) == 0);
    break;
  case 3:
    do_write(st, 100);
    break;
  default:
    break;
  }
}

static void cb_reset(void *ud, yamux_stream_t *st) {
  check(yamux_stream_state(st) == YAMUX_RESET);
  check(yamux_stream_write(st, junk, 1) < 0);
  if (next() % 4 == 1) do_open(side_of(ud));
}

static void cb_writable(void *ud, yamux_stream_t *st) {
  check(yamux_stream_send_window(st) > 0);
  if (next() % 2 == 1) do_write(st, (size_t)next() << 10);
}

static void cb_free(void *ud, yamux_stream_t *st) {
  int side = side_of(ud);
  fstream_t *fs = yamux_stream_get_user(st);
  yamux_stream_state_t state = yamux_stream_state(st);
  check(state == YAMUX_CLOSED || state == YAMUX_RESET);
  check(fs->side == side);
  if (fs->slot >= 0) {
    check(F.side[side].st[fs->slot] == st);
    F.side[side].st[fs->slot] = NULL;
  }
  check(yamux_stream_write(st, junk, 1) < 0);
  check(yamux_stream_reset(st) == 0);
  if (fs->unconsumed) do_consume(st, fs->unconsumed, true);
  free(fs);
  if (!F.freeing && next() % 8 == 1) do_open(side);
}

static void cb_goaway(void *ud, uint32_t code) {
  (void)code;
}
static void cb_pong(void *ud, uint32_t opaque) {
  (void)opaque;
}

/* -------------------------------------------------------------- driving */

static void feed(int to, const uint8_t *p, size_t n) {
  fside_t *sd = &F.side[to];
  if (sd->failed) return;
  int rc = yamux_session_feed(sd->s, p, n);
  if (rc == 0) return;
  check(rc == BFTNET_EPROTO || rc == BFTNET_ENOMEM);
  check(yamux_session_error(sd->s) != YAMUX_OK);
  check(yamux_session_feed(sd->s, p, n) == rc); /* sticky */
  sd->failed = true;
}

/* Delivers up to max queued bytes from one side to the other, in pieces. */
static void deliver(int from, size_t max, size_t piece) {
  static uint8_t tmp[64 * 1024];
  fside_t *src = &F.side[from];
  piece = BN_MAX(piece, (size_t)1);
  while (max && bn_buf_unread(&src->out)) {
    size_t k = BN_MIN(BN_MIN(max, piece), BN_MIN(bn_buf_unread(&src->out), sizeof(tmp)));
    memcpy(tmp, bn_buf_head(&src->out), k);
    bn_buf_consume(&src->out, k);
    feed(!from, tmp, k);
    max -= k;
  }
}

static yamux_stream_t *pick(int side, uint8_t b) {
  return F.side[side].st[b % NSLOT];
}

static void step(uint8_t op) {
  int side = (op >> 4) & 1;
  yamux_stream_t *st;
  switch (op % 13) {
  case 0: {            /* raw hostile bytes */
    size_t n = next(); /* not inside BN_MIN: it evaluates twice */
    n = BN_MIN(n, F.n);
    const uint8_t *p = F.p;
    F.p += n;
    F.n -= n;
    feed(side, p, n);
    break;
  }
  case 1:
    deliver(side, (size_t)next() * 97 + 1, next() + 1);
    break;
  case 2:
    deliver(side, SIZE_MAX, 4096 * (1 + (size_t)(next() % 16)));
    break;
  case 3:
    do_open(side);
    break;
  case 4:
    if ((st = pick(side, next()))) do_write(st, (size_t)next() * 256 + next());
    break;
  case 5:
    if ((st = pick(side, next()))) (void)yamux_stream_close(st);
    break;
  case 6:
    if ((st = pick(side, next()))) check(yamux_stream_reset(st) == 0);
    break;
  case 7:
    if ((st = pick(side, next()))) {
      fstream_t *fs = yamux_stream_get_user(st);
      do_consume(st, fs->unconsumed, next() & 1);
    }
    break;
  case 8:
    (void)yamux_session_ping(F.side[side].s, next32());
    break;
  case 9:
    check(yamux_session_goaway(F.side[side].s, next() % 4) == 0);
    break;
  case 10: /* a well-formed header with the peer's framing, then maybe a body */
  {
    uint8_t h[BN_YAMUX_HEADER + 8] = {0};
    h[1] = next() % 4;
    bn_store_be16(h + 2, next() % 16);
    bn_store_be32(h + 4, next() % 16);
    uint32_t len = h[1] == YAMUX_TYPE_DATA ? next() % 9 : next32();
    bn_store_be32(h + 8, len);
    feed(side, h, BN_YAMUX_HEADER + (h[1] == YAMUX_TYPE_DATA ? len : 0));
    break;
  }
  default:
    for (int i = 0; i < 8; i++) {
      deliver(0, SIZE_MAX, 4096);
      deliver(1, SIZE_MAX, 4096);
    }
    break;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  memset(&F, 0, sizeof(F));
  F.p = data;
  F.n = size;
  uint8_t c0 = next(), c1 = next(), c2 = next();
  yamux_config_t cfg = {
      .window = BN_YAMUX_INITIAL_WINDOW + (c0 % 4) * 64 * 1024,
      .max_streams = 1 + c1 % 16,
      .max_frame = c2 % 4 == 0 ? 0 : (1 + (uint32_t)c2) * 64,
  };
  yamux_cbs_t cbs = {.output = cb_output,
                     .on_accept = cb_accept,
                     .on_data = cb_data,
                     .on_fin = cb_fin,
                     .on_reset = cb_reset,
                     .on_writable = cb_writable,
                     .on_free = cb_free,
                     .on_goaway = cb_goaway,
                     .on_pong = cb_pong};
  for (int i = 0; i < 2; i++) {
    bn_buf_init(&F.side[i].out);
    check(yamux_session_new(&F.side[i].s, i == 0, &cfg, &cbs, &F.side[i]) == 0);
  }
  for (int steps = 0; F.n > 0 && steps < 4096; steps++)
    step(next());
  F.freeing = true;
  for (int i = 0; i < 2; i++) {
    yamux_session_free(F.side[i].s);
    for (int k = 0; k < NSLOT; k++)
      check(F.side[i].st[k] == NULL);
    bn_buf_free(&F.side[i].out);
  }
  return 0;
}
