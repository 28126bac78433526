/*
 * yamux_test.c — yamux sessions end to end and against hostile input.
 *   - two sessions back to back through in-memory queues fed in random
 *     splits (seeded: th_seed), 128 streams from each side, payloads up to
 *     1 MiB, half-close and reset semantics;
 *   - backpressure: a receiver that never consumes holds the writer to
 *     exactly the window it granted;
 *   - hostile frames as a table: each names the violation and must stick;
 *   - limits, refusal, ping, GoAway, reentrancy, session_free.
 */
#include "harness.h"
#include "yamux.h"

#define KiB 1024u
#define MiB (1024u * 1024u)

/* ------------------------------------------------------------ randomness */

static uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint64_t g_rng;
static uint64_t rnd(void) {
  return mix64(g_rng++);
}
static uint64_t rnd_below(uint64_t n) {
  return rnd() % n;
}

/* ---------------------------------------------------- a back-to-back pair */

typedef struct side {
  yamux_session_t *s;
  bool is_client;
  bn_buf_t out; /* frames this side sent, not yet fed to the other */
  uint32_t max_frame;
  void *t; /* the test's own state */
  int accepts, fins, resets, frees, writables, pongs, goaways;
  uint32_t last_pong, goaway_code;
} side_t;

typedef struct pair {
  side_t a, b; /* a is the client */
} pair_t;

static void side_output(void *ud, const uint8_t hdr[BN_YAMUX_HEADER], const uint8_t *body,
                        size_t blen) {
  side_t *sd = ud;
  if (hdr[1] == YAMUX_TYPE_DATA) {
    assert_int_equal(bn_load_be32(hdr + 8), blen);
    assert_true(blen <= sd->max_frame);
  } else {
    assert_int_equal(blen, 0);
  }
  assert_ok(bn_buf_append(&sd->out, hdr, BN_YAMUX_HEADER));
  if (blen) assert_ok(bn_buf_append(&sd->out, body, blen));
}

static void pair_init(pair_t *p, const yamux_cbs_t *cbs, yamux_config_t ca, yamux_config_t cb,
                      void *t) {
  memset(p, 0, sizeof(*p));
  yamux_cbs_t c = *cbs;
  c.output = side_output;
  p->a.is_client = true;
  p->a.max_frame = ca.max_frame ? ca.max_frame : 64 * KiB;
  p->b.max_frame = cb.max_frame ? cb.max_frame : 64 * KiB;
  p->a.t = p->b.t = t;
  bn_buf_init(&p->a.out);
  bn_buf_init(&p->b.out);
  assert_ok(yamux_session_new(&p->a.s, true, &ca, &c, &p->a));
  assert_ok(yamux_session_new(&p->b.s, false, &cb, &c, &p->b));
}

static void pair_free(pair_t *p) {
  yamux_session_free(p->a.s);
  yamux_session_free(p->b.s);
  bn_buf_free(&p->a.out);
  bn_buf_free(&p->b.out);
}

/* Feeds n bytes in random pieces: often 1 byte, often under a header. */
static void feed_split(side_t *to, const uint8_t *d, size_t n) {
  while (n) {
    uint64_t r = rnd();
    size_t k = (r & 7) == 0 ? 1 : (r & 7) == 1 ? 1 + (r >> 8) % 13 : 1 + (r >> 8) % 65536;
    k = BN_MIN(k, n);
    assert_ok(yamux_session_feed(to->s, d, k));
    d += k;
    n -= k;
  }
}

/* Moves queued bytes both ways until both queues stay empty. */
static void pump(pair_t *p) {
  for (int guard = 0; guard < 1000000; guard++) {
    bool moved = false;
    for (int d = 0; d < 2; d++) {
      side_t *from = d ? &p->b : &p->a, *to = d ? &p->a : &p->b;
      if (bn_buf_unread(&from->out) == 0) continue;
      bn_buf_t q = from->out; /* take it: the feed may queue more */
      bn_buf_init(&from->out);
      feed_split(to, bn_buf_head(&q), bn_buf_unread(&q));
      bn_buf_free(&q);
      moved = true;
    }
    if (!moved) return;
  }
  fail_msg("pump did not settle");
}

static const yamux_config_t cfg_default = {.window = 256 * KiB, .max_streams = 256, .max_frame = 0};

/* ------------------------------------------------ bulk: 128 + 128 streams */

#define NSTREAMS  128
#define CHUNK_MAX (1536 * KiB)

typedef struct tstream {
  side_t *side;
  yamux_stream_t *st;
  uint32_t id;
  bool outbound;
  uint64_t tx_key, tx_len, tx_off;
  bool tx_started, tx_blocked, tx_fin;
  uint64_t rx_key, rx_len, rx_off;
  bool rx_fin, freed;
  uint32_t held; /* delivered, consumption deferred to the driver */
} tstream_t;

typedef struct bulk {
  uint64_t seed;
  tstream_t *ts[2 * 2 * NSTREAMS];
  size_t nts;
  uint64_t bytes;
} bulk_t;

/* The payload of one direction: the writer's role and the stream id pick it. */
static uint64_t dir_key(bool writer_is_client, uint32_t id) {
  return ((uint64_t)writer_is_client << 32) | id;
}

static uint64_t dir_len(const bulk_t *b, uint64_t key, bool writer_opened) {
  uint64_t cap = writer_opened ? MiB : 256 * KiB;
  return mix64(b->seed ^ (key * 0x100000001b3ull)) % (cap + 1);
}

static uint8_t payload_byte(const bulk_t *b, uint64_t key, uint64_t off) {
  return (uint8_t)(mix64(b->seed + key * 0x9e3779b97f4a7c15ull + (off >> 3)) >> ((off & 7) * 8));
}

static tstream_t *bulk_track(bulk_t *b, side_t *sd, yamux_stream_t *st, bool outbound) {
  tstream_t *ts = calloc(1, sizeof(*ts));
  assert_non_null(ts);
  assert_true(b->nts < BN_ARRAY_LEN(b->ts));
  b->ts[b->nts++] = ts;
  ts->side = sd;
  ts->st = st;
  ts->id = yamux_stream_id(st);
  ts->outbound = outbound;
  ts->tx_key = dir_key(sd->is_client, ts->id);
  ts->tx_len = dir_len(b, ts->tx_key, outbound);
  ts->rx_key = dir_key(!sd->is_client, ts->id);
  ts->rx_len = dir_len(b, ts->rx_key, !outbound);
  /* Half the responders answer only after the opener's FIN (half-close). */
  ts->tx_started = outbound || ((ts->id >> 1) & 1);
  yamux_stream_set_user(st, ts);
  return ts;
}

static int bulk_accept(void *ud, yamux_stream_t *st) {
  side_t *sd = ud;
  sd->accepts++;
  assert_int_equal(yamux_stream_state(st), YAMUX_SYN_RECEIVED);
  bulk_track(sd->t, sd, st, false);
  return 0;
}

static void bulk_data(void *ud, yamux_stream_t *st, const uint8_t *p, size_t n) {
  side_t *sd = ud;
  bulk_t *b = sd->t;
  tstream_t *ts = yamux_stream_get_user(st);
  assert_false(ts->rx_fin);
  if (ts->rx_off + n > ts->rx_len) {
    for (size_t i = 0; i < b->nts; i++)
      if (b->ts[i]->id == ts->id)
        fprintf(stderr, "ts client=%d out=%d txlen %llu txoff %llu rxlen %llu rxoff %llu\n",
                b->ts[i]->side->is_client, b->ts[i]->outbound, (unsigned long long)b->ts[i]->tx_len,
                (unsigned long long)b->ts[i]->tx_off, (unsigned long long)b->ts[i]->rx_len,
                (unsigned long long)b->ts[i]->rx_off);
    fail_msg("side %d stream %u out %d: off %llu + %zu > %llu", sd->is_client, ts->id, ts->outbound,
             (unsigned long long)ts->rx_off, n, (unsigned long long)ts->rx_len);
  }
  for (size_t i = 0; i < n; i++)
    if (p[i] != payload_byte(b, ts->rx_key, ts->rx_off + i))
      fail_msg("stream %u: byte %llu differs", ts->id, (unsigned long long)(ts->rx_off + i));
  ts->rx_off += n;
  b->bytes += n;
  uint64_t r = rnd();
  if (r & 1)
    yamux_stream_consume(st, n, (r & 2) != 0);
  else
    ts->held += (uint32_t)n;
}

static void bulk_fin(void *ud, yamux_stream_t *st) {
  side_t *sd = ud;
  tstream_t *ts = yamux_stream_get_user(st);
  sd->fins++;
  assert_int_equal(ts->rx_off, ts->rx_len);
  ts->rx_fin = true;
  ts->tx_started = true;
  assert_true(yamux_stream_remote_closed(st));
}

static void bulk_writable(void *ud, yamux_stream_t *st) {
  side_t *sd = ud;
  tstream_t *ts = yamux_stream_get_user(st);
  sd->writables++;
  assert_true(ts->tx_blocked);
  assert_true(yamux_stream_send_window(st) > 0);
  ts->tx_blocked = false;
}

static void bulk_free(void *ud, yamux_stream_t *st) {
  side_t *sd = ud;
  tstream_t *ts = yamux_stream_get_user(st);
  sd->frees++;
  assert_true(ts->rx_fin && ts->tx_fin);
  ts->freed = true;
  ts->st = NULL;
  ts->held = 0;
}

static void bulk_reset(void *ud, yamux_stream_t *st) {
  fail_msg("unexpected reset");
}

static void bulk_drive_one(tstream_t *ts, bulk_t *b, uint8_t *buf) {
  if (ts->held) {
    yamux_stream_consume(ts->st, ts->held, rnd() & 1);
    ts->held = 0;
  }
  if (!ts->tx_started || ts->tx_fin || ts->tx_blocked) return;
  /* mostly small writes, sometimes more than any window: short writes */
  uint64_t want = 1 + rnd_below(rnd_below(4) ? 64 * KiB : CHUNK_MAX); /* BN_MIN: twice */
  size_t chunk = (size_t)BN_MIN(ts->tx_len - ts->tx_off, want);
  for (size_t i = 0; i < chunk; i++)
    buf[i] = payload_byte(b, ts->tx_key, ts->tx_off + i);
  int rc = yamux_stream_write(ts->st, buf, chunk);
  assert_true(rc >= 0);
  ts->tx_off += (size_t)rc;
  if ((size_t)rc < chunk) {
    assert_int_equal(yamux_stream_send_window(ts->st), 0);
    ts->tx_blocked = true;
  }
  if (ts->tx_off == ts->tx_len) {
    ts->tx_fin = true;
    assert_ok(yamux_stream_close(ts->st)); /* after the peer's FIN, this frees */
    if (ts->freed) return;
    assert_true(yamux_stream_local_closed(ts->st));
    assert_err(yamux_stream_write(ts->st, buf, 1), BFTNET_ESTATE);
  }
}

static void test_bulk_back_to_back(void **state) {
  (void)state;
  bulk_t b = {.seed = th_seed()};
  g_rng = b.seed;
  yamux_cbs_t cbs = {.on_accept = bulk_accept,
                     .on_data = bulk_data,
                     .on_fin = bulk_fin,
                     .on_reset = bulk_reset,
                     .on_writable = bulk_writable,
                     .on_free = bulk_free};
  yamux_config_t ca = {.window = 256 * KiB, .max_streams = 256, .max_frame = 16 * KiB};
  yamux_config_t cb = {.window = 1 * MiB, .max_streams = 256, .max_frame = 0};
  pair_t p;
  pair_init(&p, &cbs, ca, cb, &b);
  for (int i = 0; i < NSTREAMS; i++) {
    for (int d = 0; d < 2; d++) {
      side_t *sd = d ? &p.b : &p.a;
      yamux_stream_t *st;
      assert_ok(yamux_stream_open(sd->s, &st));
      assert_int_equal(yamux_stream_id(st) & 1, sd->is_client ? 1 : 0);
      bulk_track(&b, sd, st, true);
    }
  }
  uint8_t *buf = malloc(CHUNK_MAX);
  assert_non_null(buf);
  int round = 0;
  for (;; round++) {
    assert_true(round < 100000);
    bool live = false;
    for (size_t i = 0; i < b.nts; i++) {
      if (b.ts[i]->freed) continue;
      live = true;
      bulk_drive_one(b.ts[i], &b, buf);
    }
    if (!live) break;
    pump(&p);
  }
  /* every direction of every stream arrived whole, then both sides let go */
  assert_int_equal(b.nts, 4 * NSTREAMS);
  uint64_t want = 0;
  for (size_t i = 0; i < b.nts; i++)
    want += b.ts[i]->tx_len;
  assert_int_equal(b.bytes, want);
  for (size_t i = 0; i < b.nts; i++)
    assert_int_equal(b.ts[i]->rx_off, b.ts[i]->rx_len);
  assert_int_equal(p.a.frees, 2 * NSTREAMS);
  assert_int_equal(p.b.frees, 2 * NSTREAMS);
  assert_int_equal(yamux_session_stream_count(p.a.s), 0);
  assert_int_equal(yamux_session_stream_count(p.b.s), 0);
  assert_int_equal(yamux_session_stats(p.a.s)->streams_opened, NSTREAMS);
  assert_int_equal(yamux_session_stats(p.b.s)->streams_accepted, NSTREAMS);
  assert_int_equal(yamux_session_error(p.a.s), YAMUX_OK);
  assert_true(p.a.writables + p.b.writables > 0);
  print_message("bulk: %llu bytes in %zu directions, %d rounds, %d+%d on_writable\n",
                (unsigned long long)b.bytes, b.nts, round, p.a.writables, p.b.writables);
  pair_free(&p);
  for (size_t i = 0; i < b.nts; i++)
    free(b.ts[i]);
  free(buf);
}

/* ------------------------------------------------------------ half-close */

typedef struct hc {
  char got[2][64];
  size_t n[2];
  yamux_stream_t *acc;
} hc_t;

static int hc_accept(void *ud, yamux_stream_t *st) {
  side_t *sd = ud;
  ((hc_t *)sd->t)->acc = st;
  return 0;
}

static void hc_data(void *ud, yamux_stream_t *st, const uint8_t *p, size_t n) {
  side_t *sd = ud;
  hc_t *h = sd->t;
  int i = sd->is_client ? 0 : 1;
  assert_true(h->n[i] + n < sizeof(h->got[i]));
  memcpy(h->got[i] + h->n[i], p, n);
  h->n[i] += n;
  yamux_stream_consume(st, n, true);
}

static void hc_fin(void *ud, yamux_stream_t *st) {
  ((side_t *)ud)->fins++;
}
static void hc_free(void *ud, yamux_stream_t *st) {
  ((side_t *)ud)->frees++;
}

static void test_half_close(void **state) {
  (void)state;
  g_rng = th_seed();
  hc_t h = {0};
  yamux_cbs_t cbs = {
      .on_accept = hc_accept, .on_data = hc_data, .on_fin = hc_fin, .on_free = hc_free};
  pair_t p;
  pair_init(&p, &cbs, cfg_default, cfg_default, &h);
  yamux_stream_t *st;
  assert_ok(yamux_stream_open(p.a.s, &st));
  assert_int_equal(yamux_stream_write(st, (const uint8_t *)"request", 7), 7);
  assert_ok(yamux_stream_close(st));
  assert_ok(yamux_stream_close(st)); /* idempotent */
  assert_int_equal(yamux_stream_state(st), YAMUX_LOCAL_CLOSED);
  assert_err(yamux_stream_write(st, (const uint8_t *)"x", 1), BFTNET_ESTATE);
  pump(&p);
  assert_non_null(h.acc);
  assert_int_equal(h.n[1], 7);
  assert_int_equal(p.b.fins, 1);
  assert_int_equal(yamux_stream_state(h.acc), YAMUX_REMOTE_CLOSED);
  /* the other direction keeps working after the FIN */
  assert_int_equal(yamux_stream_write(h.acc, (const uint8_t *)"resp", 4), 4);
  assert_int_equal(yamux_stream_write(h.acc, (const uint8_t *)"onse", 4), 4);
  pump(&p);
  assert_int_equal(h.n[0], 8);
  assert_memory_equal(h.got[0], "response", 8);
  assert_int_equal(p.a.frees + p.b.frees, 0);
  assert_ok(yamux_stream_close(h.acc)); /* both FINs: freed */
  assert_int_equal(p.b.frees, 1);
  pump(&p);
  assert_int_equal(p.a.fins, 1);
  assert_int_equal(p.a.frees, 1);
  assert_int_equal(yamux_session_stream_count(p.a.s) + yamux_session_stream_count(p.b.s), 0);
  pair_free(&p);
}

/* ------------------------------------------------------------------ reset */

typedef struct rs {
  yamux_stream_t *opened;
  bool reset_seen, freed_after_reset, state_ok_in_cb;
  int order; /* 1 on_reset, 2 on_free */
} rs_t;

static void rs_data(void *ud, yamux_stream_t *st, const uint8_t *p, size_t n) {
  side_t *sd = ud;
  if (sd->is_client) return;
  /* the server resets the stream from inside on_data: st stays valid */
  assert_ok(yamux_stream_reset(st));
  assert_int_equal(yamux_stream_state(st), YAMUX_RESET);
  assert_int_equal(sd->frees, 0); /* deferred */
  assert_err(yamux_stream_write(st, p, n), BFTNET_ESTATE);
  assert_ok(yamux_stream_reset(st));
  yamux_stream_consume(st, n, true); /* allowed; sends nothing */
}

static void rs_reset(void *ud, yamux_stream_t *st) {
  side_t *sd = ud;
  rs_t *r = sd->t;
  sd->resets++;
  if (!sd->is_client) return; /* the SYN+RST of the second stream */
  assert_ptr_equal(st, r->opened);
  assert_int_equal(r->order, 0);
  r->order = 1;
  assert_int_equal(yamux_stream_state(st), YAMUX_RESET);
  assert_err(yamux_stream_write(st, (const uint8_t *)"x", 1), BFTNET_ESTATE);
  assert_err(yamux_stream_close(st), BFTNET_ESTATE);
  assert_int_equal(yamux_stream_send_window(st), 0);
  assert_true(yamux_stream_remote_closed(st) && yamux_stream_local_closed(st));
}

static void rs_free(void *ud, yamux_stream_t *st) {
  side_t *sd = ud;
  rs_t *r = sd->t;
  sd->frees++;
  if (st == r->opened) {
    assert_int_equal(r->order, 1);
    r->order = 2;
  }
}

static void test_reset(void **state) {
  (void)state;
  g_rng = th_seed();
  rs_t r = {0};
  yamux_cbs_t cbs = {.on_data = rs_data, .on_reset = rs_reset, .on_free = rs_free};
  pair_t p;
  pair_init(&p, &cbs, cfg_default, cfg_default, &r);
  assert_ok(yamux_stream_open(p.a.s, &r.opened));
  assert_int_equal(yamux_stream_write(r.opened, (const uint8_t *)"hello", 5), 5);
  pump(&p);
  assert_int_equal(p.b.frees, 1);
  assert_int_equal(p.a.resets, 1);
  assert_int_equal(r.order, 2);
  r.opened = NULL; /* its memory may come back for the next stream */
  assert_int_equal(yamux_session_stream_count(p.a.s), 0);
  /* a local reset outside any callback frees at once */
  yamux_stream_t *st;
  assert_ok(yamux_stream_open(p.a.s, &st));
  assert_ok(yamux_stream_reset(st));
  assert_int_equal(p.a.frees, 2);
  pump(&p); /* the server sees SYN then RST: nothing left anywhere */
  assert_int_equal(yamux_session_stream_count(p.b.s), 0);
  assert_int_equal(p.a.resets, 1);
  assert_int_equal(p.b.resets, 1);
  assert_int_equal(p.b.frees, 2);
  pair_free(&p);
}

/* ----------------------------------------------------------- backpressure */

typedef struct bp {
  uint8_t *src;
  size_t len, sent, delivered, unconsumed;
  yamux_stream_t *w, *r;
  int writables;
} bp_t;

static void bp_push(bp_t *b) {
  int rc = yamux_stream_write(b->w, b->src + b->sent, b->len - b->sent);
  assert_true(rc >= 0);
  b->sent += (size_t)rc;
}

static int bp_accept(void *ud, yamux_stream_t *st) {
  ((bp_t *)((side_t *)ud)->t)->r = st;
  return 0;
}

static void bp_data(void *ud, yamux_stream_t *st, const uint8_t *p, size_t n) {
  bp_t *b = ((side_t *)ud)->t;
  assert_memory_equal(p, b->src + b->delivered, n);
  b->delivered += n;
  b->unconsumed += n; /* this application never consumes on its own */
}

static void bp_writable(void *ud, yamux_stream_t *st) {
  bp_t *b = ((side_t *)ud)->t;
  b->writables++;
  bp_push(b);
}

static void test_backpressure(void **state) {
  (void)state;
  g_rng = th_seed();
  bp_t b = {.len = 3 * MiB};
  b.src = malloc(b.len);
  assert_non_null(b.src);
  for (size_t i = 0; i < b.len; i++)
    b.src[i] = (uint8_t)rnd();
  yamux_cbs_t cbs = {.on_accept = bp_accept, .on_data = bp_data, .on_writable = bp_writable};
  yamux_config_t cr = {.window = 512 * KiB, .max_streams = 8, .max_frame = 0};
  pair_t p;
  pair_init(&p, &cbs, cfg_default, cr, &b);
  assert_ok(yamux_stream_open(p.a.s, &b.w));
  /* before the ACK: the spec's initial 256 KiB */
  bp_push(&b);
  assert_int_equal(b.sent, 256 * KiB);
  assert_int_equal(yamux_stream_send_window(b.w), 0);
  assert_int_equal(yamux_stream_write(b.w, b.src, 1), 0);
  pump(&p);
  /* the ACK granted 512 KiB in all: on_writable took the other 256 KiB */
  assert_int_equal(b.writables, 1);
  assert_int_equal(b.sent, 512 * KiB);
  assert_int_equal(b.delivered, 512 * KiB);
  assert_int_equal(yamux_stream_send_window(b.w), 0);
  assert_int_equal(yamux_stream_write(b.w, b.src, 1), 0);
  /* nothing is buffered anywhere: both queues are empty */
  assert_int_equal(bn_buf_unread(&p.a.out) + bn_buf_unread(&p.b.out), 0);
  pump(&p);
  assert_int_equal(b.writables, 1);
  /* consuming less than half the window sends nothing yet */
  yamux_stream_consume(b.r, 100 * KiB, false);
  b.unconsumed -= 100 * KiB;
  assert_int_equal(bn_buf_unread(&p.b.out), 0);
  /* the rest flows as the reader consumes */
  for (int guard = 0; b.delivered < b.len; guard++) {
    assert_true(guard < 1000);
    size_t n = b.unconsumed;
    b.unconsumed = 0;
    yamux_stream_consume(b.r, n, guard & 1);
    pump(&p);
    assert_true(b.sent - b.delivered == 0);
    assert_true(b.unconsumed <= 512 * KiB);
  }
  assert_int_equal(b.sent, b.len);
  assert_true(b.writables > 1);
  pair_free(&p);
  free(b.src);
}

/* A write that takes exactly the whole window is not short, so yamux owes
 * no on_writable by itself; a writer that then finds no room asks for one
 * (yamux_stream_want_writable), and the next window update must call it.
 * Without that, a sender that filled the window exactly waited forever. */
static void test_exact_fill_then_want_writable(void **state) {
  (void)state;
  bp_t b = {.len = 1 * MiB};
  b.src = calloc(1, b.len);
  assert_non_null(b.src);
  yamux_cbs_t cbs = {.on_accept = bp_accept, .on_data = bp_data, .on_writable = bp_writable};
  yamux_config_t cr = {.window = 512 * KiB, .max_streams = 8, .max_frame = 0};
  pair_t p;
  pair_init(&p, &cbs, cfg_default, cr, &b);
  assert_ok(yamux_stream_open(p.a.s, &b.w));
  /* exactly the initial 256 KiB: a full write, not a short one */
  assert_int_equal(yamux_stream_write(b.w, b.src, 256 * KiB), 256 * KiB);
  b.sent = 256 * KiB;
  assert_int_equal(yamux_stream_send_window(b.w), 0);
  yamux_stream_want_writable(b.w);
  pump(&p); /* the ACK brings the other 256 KiB of the 512 KiB window */
  assert_int_equal(b.writables, 1);
  assert_int_equal(b.sent, 512 * KiB);
  /* the same once more, through a window update of consumed bytes */
  yamux_stream_want_writable(b.w);
  size_t n = b.unconsumed;
  b.unconsumed = 0;
  yamux_stream_consume(b.r, n, true);
  pump(&p);
  assert_int_equal(b.writables, 2);
  pair_free(&p);
  free(b.src);
}

/* ------------------------------------------------- a single session, raw */

typedef struct cap_frame {
  uint8_t type;
  uint16_t flags;
  uint32_t id, len;
} cap_frame_t;

typedef struct raw {
  yamux_session_t *s;
  cap_frame_t out[64];
  size_t nout;
  int accept_rc, accepts, datas, fins, resets, frees, pongs, goaways;
  uint32_t pong, goaway_code;
  size_t data_bytes;
  bool reset_in_accept;
} raw_t;

static void raw_output(void *ud, const uint8_t hdr[BN_YAMUX_HEADER], const uint8_t *body,
                       size_t blen) {
  raw_t *r = ud;
  if (r->nout == BN_ARRAY_LEN(r->out)) return;
  cap_frame_t *f = &r->out[r->nout++];
  f->type = hdr[1];
  f->flags = bn_load_be16(hdr + 2);
  f->id = bn_load_be32(hdr + 4);
  f->len = bn_load_be32(hdr + 8);
}

static int raw_accept(void *ud, yamux_stream_t *st) {
  raw_t *r = ud;
  r->accepts++;
  if (r->reset_in_accept) assert_ok(yamux_stream_reset(st));
  return r->accept_rc;
}
static void raw_data(void *ud, yamux_stream_t *st, const uint8_t *p, size_t n) {
  raw_t *r = ud;
  r->datas++;
  r->data_bytes += n;
}
static void raw_fin(void *ud, yamux_stream_t *st) {
  ((raw_t *)ud)->fins++;
}
static void raw_reset(void *ud, yamux_stream_t *st) {
  ((raw_t *)ud)->resets++;
}
static void raw_free(void *ud, yamux_stream_t *st) {
  ((raw_t *)ud)->frees++;
}
static void raw_pong(void *ud, uint32_t v) {
  ((raw_t *)ud)->pongs++;
  ((raw_t *)ud)->pong = v;
}
static void raw_goaway(void *ud, uint32_t code) {
  ((raw_t *)ud)->goaways++;
  ((raw_t *)ud)->goaway_code = code;
}

static void raw_init(raw_t *r, bool client, uint32_t max_streams) {
  memset(r, 0, sizeof(*r));
  yamux_config_t cfg = {.window = 256 * KiB, .max_streams = max_streams, .max_frame = 0};
  yamux_cbs_t cbs = {.output = raw_output,
                     .on_accept = raw_accept,
                     .on_data = raw_data,
                     .on_fin = raw_fin,
                     .on_reset = raw_reset,
                     .on_free = raw_free,
                     .on_pong = raw_pong,
                     .on_goaway = raw_goaway};
  assert_ok(yamux_session_new(&r->s, client, &cfg, &cbs, r));
}

/* A frame to inject; DATA frames carry `len` zero bytes unless nobody. */
typedef struct fr {
  uint8_t ver, type;
  uint16_t flags;
  uint32_t id, len;
  bool nobody;
} fr_t;

#define F(type, flags, id, len)                                                                    \
  { 0, (type), (flags), (id), (len), false }
#define FH(type, flags, id, len)                                                                   \
  { 0, (type), (flags), (id), (len), true } /* header only */
#define DATA   YAMUX_TYPE_DATA
#define WIN    YAMUX_TYPE_WINDOW
#define PING   YAMUX_TYPE_PING
#define GOAWAY YAMUX_TYPE_GOAWAY
#define SYN    YAMUX_FLAG_SYN
#define ACK    YAMUX_FLAG_ACK
#define FIN    YAMUX_FLAG_FIN
#define RST    YAMUX_FLAG_RST

static uint8_t *frames_bytes(const fr_t *f, size_t nf, size_t *len) {
  size_t total = 0;
  for (size_t i = 0; i < nf; i++)
    total += BN_YAMUX_HEADER + (f[i].type == DATA && !f[i].nobody ? f[i].len : 0);
  uint8_t *buf = calloc(1, total ? total : 1), *p = buf;
  assert_non_null(buf);
  for (size_t i = 0; i < nf; i++) {
    p[0] = f[i].ver;
    p[1] = f[i].type;
    bn_store_be16(p + 2, f[i].flags);
    bn_store_be32(p + 4, f[i].id);
    bn_store_be32(p + 8, f[i].len);
    p += BN_YAMUX_HEADER + (f[i].type == DATA && !f[i].nobody ? f[i].len : 0);
  }
  *len = total;
  return buf;
}

/* Feeds frames whole (mode 0), byte by byte (1) or in random pieces (2). */
static int raw_feed(raw_t *r, const fr_t *f, size_t nf, int mode) {
  size_t len;
  uint8_t *buf = frames_bytes(f, nf, &len);
  int rc = 0;
  for (size_t off = 0; off < len && rc == 0;) {
    size_t k = mode == 0 ? len : mode == 1 ? 1 : 1 + rnd_below(20);
    k = BN_MIN(k, len - off);
    rc = yamux_session_feed(r->s, buf + off, k);
    off += k;
  }
  free(buf);
  return rc;
}

/* ------------------------------------------------------- hostile table */

typedef struct hostile {
  const char *name;
  bool client; /* the session under test; the peer has the other role */
  fr_t f[4];
  size_t nf;
  yamux_violation_t want;
} hostile_t;

#define W0 (256u * 1024u)
static const hostile_t hostile[] = {
    {"version 1", false, {{1, DATA, 0, 1, 0, false}}, 1, YAMUX_BAD_VERSION},
    {"version 255", false, {{255, PING, SYN, 0, 0, false}}, 1, YAMUX_BAD_VERSION},
    {"type 4", false, {{0, 4, 0, 1, 0, false}}, 1, YAMUX_BAD_TYPE},
    {"type 255", false, {{0, 255, SYN, 1, 0, false}}, 1, YAMUX_BAD_TYPE},
    {"data SYN|ACK", false, {F(DATA, SYN | ACK, 1, 0)}, 1, YAMUX_BAD_FLAGS},
    {"window SYN|ACK|FIN", false, {F(WIN, SYN | ACK | FIN, 1, 0)}, 1, YAMUX_BAD_FLAGS},
    {"unknown flag 0x10", false, {F(WIN, 0x10, 1, 0)}, 1, YAMUX_BAD_FLAGS},
    {"unknown flag 0x8000", false, {F(DATA, SYN | 0x8000, 1, 0)}, 1, YAMUX_BAD_FLAGS},
    {"ping FIN", false, {F(PING, FIN, 0, 1)}, 1, YAMUX_BAD_FLAGS},
    {"ping SYN|RST", false, {F(PING, SYN | RST, 0, 1)}, 1, YAMUX_BAD_FLAGS},
    {"ping no flag", false, {F(PING, 0, 0, 1)}, 1, YAMUX_BAD_FLAGS},
    {"ping SYN|ACK", false, {F(PING, SYN | ACK, 0, 1)}, 1, YAMUX_BAD_FLAGS},
    {"goaway SYN", false, {F(GOAWAY, SYN, 0, 0)}, 1, YAMUX_BAD_FLAGS},
    {"goaway ACK", false, {F(GOAWAY, ACK, 0, 0)}, 1, YAMUX_BAD_FLAGS},
    {"ACK of the peer's own stream",
     false,
     {F(WIN, SYN, 1, 0), F(WIN, ACK, 1, 0)},
     2,
     YAMUX_BAD_FLAGS},
    {"SYN with even id to a server", false, {F(WIN, SYN, 2, 0)}, 1, YAMUX_BAD_STREAM_ID},
    {"SYN with odd id to a client", true, {F(DATA, SYN, 1, 0)}, 1, YAMUX_BAD_STREAM_ID},
    {"SYN with id 0", false, {F(WIN, SYN, 0, 0)}, 1, YAMUX_BAD_STREAM_ID},
    {"data on stream 0", false, {F(DATA, 0, 0, 0)}, 1, YAMUX_BAD_STREAM_ID},
    {"window on stream 0", true, {F(WIN, 0, 0, 5)}, 1, YAMUX_BAD_STREAM_ID},
    {"ping on stream 1", false, {F(PING, SYN, 1, 7)}, 1, YAMUX_BAD_STREAM_ID},
    {"goaway on stream 3", false, {F(GOAWAY, 0, 3, 0)}, 1, YAMUX_BAD_STREAM_ID},
    {"duplicate SYN", false, {F(WIN, SYN, 1, 0), F(DATA, SYN, 1, 0)}, 2, YAMUX_DUPLICATE_SYN},
    {"duplicate SYN|RST",
     false,
     {F(WIN, SYN, 1, 0), F(WIN, SYN | RST, 1, 0)},
     2,
     YAMUX_DUPLICATE_SYN},
    {"data beyond the window",
     false,
     {F(WIN, SYN, 1, 0), FH(DATA, 0, 1, W0 + 1)},
     2,
     YAMUX_WINDOW_EXCEEDED},
    {"SYN data beyond the window", false, {FH(DATA, SYN, 1, W0 + 1)}, 1, YAMUX_WINDOW_EXCEEDED},
    {"window used up, then 1 byte",
     false,
     {F(DATA, SYN, 1, W0 - 10), F(DATA, 0, 1, 10), F(DATA, 0, 1, 1)},
     3,
     YAMUX_WINDOW_EXCEEDED},
    {"SYN window overflow", false, {F(WIN, SYN, 1, UINT32_MAX - W0 + 1)}, 1, YAMUX_WINDOW_OVERFLOW},
    {"window overflow",
     false,
     {F(WIN, SYN, 1, UINT32_MAX - W0), F(WIN, 0, 1, 0), F(WIN, 0, 1, 1)},
     3,
     YAMUX_WINDOW_OVERFLOW},
    {"data after FIN", false, {F(WIN, SYN | FIN, 1, 0), F(DATA, 0, 1, 1)}, 2, YAMUX_DATA_AFTER_FIN},
    {"FIN after FIN",
     false,
     {F(WIN, SYN, 1, 0), F(DATA, FIN, 1, 3), F(WIN, FIN, 1, 0)},
     3,
     YAMUX_DATA_AFTER_FIN},
    {"data frame > max window",
     false,
     {FH(DATA, 0, 1, BN_YAMUX_MAX_WINDOW + 1)},
     1,
     YAMUX_FRAME_TOO_LARGE},
    {"data frame length 2^32-1", true, {FH(DATA, SYN, 2, UINT32_MAX)}, 1, YAMUX_FRAME_TOO_LARGE},
};

static void test_hostile_table(void **state) {
  (void)state;
  g_rng = th_seed();
  for (size_t i = 0; i < BN_ARRAY_LEN(hostile); i++) {
    const hostile_t *h = &hostile[i];
    for (int mode = 0; mode < 3; mode++) {
      raw_t r;
      raw_init(&r, h->client, 16);
      int rc = raw_feed(&r, h->f, h->nf, mode);
      if (rc != BFTNET_EPROTO || yamux_session_error(r.s) != h->want)
        fail_msg("%s (mode %d): rc %s, violation %s, want %s", h->name, mode, bftnet_err_name(rc),
                 yamux_violation_str(yamux_session_error(r.s)), yamux_violation_str(h->want));
      /* sticky: a valid ping is not answered, the error stays */
      size_t nout = r.nout;
      fr_t ping = F(PING, SYN, 0, 1);
      assert_err(raw_feed(&r, &ping, 1, 0), BFTNET_EPROTO);
      assert_int_equal(r.nout, nout);
      assert_int_equal(yamux_session_error(r.s), h->want);
      yamux_stream_t *st;
      assert_err(yamux_stream_open(r.s, &st), BFTNET_EPROTO);
      assert_err(yamux_session_ping(r.s, 1), BFTNET_EPROTO);
      assert_ok(yamux_session_goaway(r.s, YAMUX_GOAWAY_PROTOCOL)); /* may still tell why */
      yamux_session_free(r.s);
      assert_int_equal(r.frees, r.accepts);
    }
  }
}

/* Legal but odd input that must not be an error. */
static void test_tolerated_input(void **state) {
  (void)state;
  raw_t r;
  raw_init(&r, false, 16);
  /* frames for streams that do not exist are dropped, bodies skipped */
  const fr_t unknown[] = {F(DATA, 0, 7, 1000), F(WIN, 0, 9, 5), F(DATA, FIN, 11, 3),
                          F(DATA, RST, 13, 0), F(WIN, ACK, 15, 0)};
  for (int mode = 0; mode < 3; mode++)
    assert_ok(raw_feed(&r, unknown, BN_ARRAY_LEN(unknown), mode));
  assert_int_equal(r.datas + r.accepts + r.nout, 0);
  /* SYN|RST opens nothing; a reused id after RST is a new stream */
  const fr_t synrst[] = {F(DATA, SYN | RST, 1, 4), F(WIN, SYN, 3, 0), F(WIN, RST, 3, 0),
                         F(DATA, SYN | FIN, 3, 2)};
  assert_ok(raw_feed(&r, synrst, BN_ARRAY_LEN(synrst), 1));
  assert_int_equal(r.accepts, 2);
  assert_int_equal(r.resets, 1);
  assert_int_equal(r.fins, 1);
  assert_int_equal(r.data_bytes, 2);
  assert_int_equal(yamux_session_stream_count(r.s), 1);
  /* WINDOW|RST carries an error code in its length, not a delta */
  const fr_t rstcode[] = {F(WIN, SYN, 5, 0), F(WIN, RST, 5, UINT32_MAX)};
  assert_ok(raw_feed(&r, rstcode, 2, 2));
  assert_int_equal(r.resets, 2);
  /* a flood of open+reset pairs leaves nothing behind */
  for (uint32_t id = 101; id < 20101; id += 2) {
    const fr_t pair[] = {F(DATA, SYN, id, 1), F(DATA, RST, id, 1)};
    assert_ok(raw_feed(&r, pair, 2, 0));
  }
  assert_int_equal(yamux_session_stream_count(r.s), 1);
  assert_int_equal(r.frees, r.accepts - 1);
  yamux_session_free(r.s);
  assert_int_equal(r.frees, r.accepts);
}

/* ----------------------------------------------------- limits, refusals */

static void test_stream_limit(void **state) {
  (void)state;
  raw_t r;
  raw_init(&r, false, 2);
  const fr_t three[] = {F(WIN, SYN, 1, 0), F(WIN, SYN, 3, 0), F(DATA, SYN, 5, 4)};
  assert_ok(raw_feed(&r, three, 3, 1));
  assert_int_equal(r.accepts, 2);
  assert_int_equal(yamux_session_stream_count(r.s), 2);
  assert_int_equal(yamux_session_stats(r.s)->streams_refused, 1);
  assert_int_equal(yamux_session_error(r.s), YAMUX_OK);
  assert_int_equal(r.data_bytes, 0);
  /* out: ACK 1, ACK 3, RST 5 */
  assert_int_equal(r.nout, 3);
  assert_int_equal(r.out[2].flags, RST);
  assert_int_equal(r.out[2].id, 5);
  /* data for the refused stream is ignored; once one closes, a new one fits */
  const fr_t more[] = {F(DATA, 0, 5, 8), F(WIN, RST, 1, 0), F(WIN, SYN, 7, 0)};
  assert_ok(raw_feed(&r, more, 3, 2));
  assert_int_equal(r.accepts, 3);
  assert_int_equal(yamux_session_stream_count(r.s), 2);
  yamux_session_free(r.s);
  assert_int_equal(r.frees, 3);
}

static void test_accept_refused(void **state) {
  (void)state;
  raw_t r;
  raw_init(&r, false, 16);
  r.accept_rc = -1;
  const fr_t syn[] = {F(DATA, SYN | FIN, 1, 5), F(DATA, 0, 1, 5)};
  assert_ok(raw_feed(&r, syn, 2, 2));
  assert_int_equal(r.accepts, 1);
  assert_int_equal(r.frees, 1); /* the stream was seen, so on_free closes it */
  assert_int_equal(r.datas + r.fins, 0);
  assert_int_equal(r.nout, 1);
  assert_int_equal(r.out[0].flags, RST);
  assert_int_equal(yamux_session_stats(r.s)->streams_refused, 1);
  /* reset inside on_accept, then refuse: a single RST */
  r.reset_in_accept = true;
  const fr_t syn3 = F(WIN, SYN, 3, 0);
  assert_ok(raw_feed(&r, &syn3, 1, 0));
  assert_int_equal(r.nout, 2);
  assert_int_equal(r.frees, 2);
  assert_int_equal(yamux_session_stream_count(r.s), 0);
  yamux_session_free(r.s);
}

/* ------------------------------------------------------- ping and goaway */

static void test_ping(void **state) {
  (void)state;
  raw_t r;
  raw_init(&r, true, 16);
  const fr_t ping = F(PING, SYN, 0, 0x12345678);
  assert_ok(raw_feed(&r, &ping, 1, 1));
  assert_int_equal(r.nout, 1);
  assert_int_equal(r.out[0].type, PING);
  assert_int_equal(r.out[0].flags, ACK);
  assert_int_equal(r.out[0].id, 0);
  assert_int_equal(r.out[0].len, 0x12345678);
  assert_int_equal(yamux_session_stats(r.s)->pings_answered, 1);
  assert_ok(yamux_session_ping(r.s, 0xfeedface));
  assert_int_equal(r.out[1].flags, SYN);
  assert_int_equal(r.out[1].len, 0xfeedface);
  const fr_t pong = F(PING, ACK, 0, 0xfeedface);
  assert_ok(raw_feed(&r, &pong, 1, 2));
  assert_int_equal(r.pongs, 1);
  assert_int_equal(r.pong, 0xfeedface);
  yamux_session_free(r.s);

  /* and end to end */
  g_rng = th_seed();
  yamux_cbs_t cbs = {.on_pong = NULL};
  pair_t p;
  pair_init(&p, &cbs, cfg_default, cfg_default, NULL);
  assert_ok(yamux_session_ping(p.a.s, 42));
  pump(&p);
  assert_int_equal(yamux_session_stats(p.b.s)->pings_answered, 1);
  pair_free(&p);
}

static void test_goaway(void **state) {
  (void)state;
  raw_t r;
  raw_init(&r, true, 16);
  yamux_stream_t *st, *st2;
  assert_ok(yamux_stream_open(r.s, &st));
  const fr_t ga = F(GOAWAY, 0, 0, YAMUX_GOAWAY_NORMAL);
  assert_ok(raw_feed(&r, &ga, 1, 1));
  assert_true(yamux_session_remote_goaway(r.s));
  assert_int_equal(r.goaways, 1);
  assert_int_equal(r.goaway_code, YAMUX_GOAWAY_NORMAL);
  assert_err(yamux_stream_open(r.s, &st2), BFTNET_ECLOSED);
  assert_null(st2);
  /* existing streams go on */
  assert_int_equal(yamux_stream_write(st, (const uint8_t *)"ok", 2), 2);
  const fr_t ga2 = F(GOAWAY, 0, 0, 77); /* unknown codes are passed on */
  assert_ok(raw_feed(&r, &ga2, 1, 0));
  assert_int_equal(r.goaway_code, 77);
  yamux_session_free(r.s);
  assert_int_equal(r.frees, 1);

  /* after sending GoAway, inbound SYNs are refused */
  raw_init(&r, false, 16);
  assert_ok(yamux_session_goaway(r.s, YAMUX_GOAWAY_NORMAL));
  assert_ok(yamux_session_goaway(r.s, YAMUX_GOAWAY_NORMAL)); /* sent once */
  assert_int_equal(r.nout, 1);
  assert_int_equal(r.out[0].type, GOAWAY);
  const fr_t syn = F(DATA, SYN, 1, 3);
  assert_ok(raw_feed(&r, &syn, 1, 2));
  assert_int_equal(r.accepts, 0);
  assert_int_equal(r.nout, 2);
  assert_int_equal(r.out[1].flags, RST);
  assert_int_equal(yamux_session_stats(r.s)->streams_refused, 1);
  assert_false(yamux_session_remote_goaway(r.s));
  yamux_session_free(r.s);
}

/* ------------------------------------------------------------ reentrancy */

typedef struct re {
  int opened_in_cb, feeds_refused;
} re_t;

static int re_accept(void *ud, yamux_stream_t *st) {
  side_t *sd = ud;
  re_t *r = sd->t;
  /* the server opens a stream back and writes on both, from on_accept */
  if (!sd->is_client) {
    yamux_stream_t *back;
    assert_ok(yamux_stream_open(sd->s, &back));
    r->opened_in_cb++;
    assert_int_equal(yamux_stream_write(back, (const uint8_t *)"back", 4), 4);
  }
  assert_int_equal(yamux_stream_write(st, (const uint8_t *)"hi", 2), 2);
  uint8_t b = 0;
  assert_err(yamux_session_feed(sd->s, &b, 1), BFTNET_ESTATE);
  r->feeds_refused++;
  return 0;
}

static void re_data(void *ud, yamux_stream_t *st, const uint8_t *p, size_t n) {
  side_t *sd = ud;
  yamux_stream_consume(st, n, true);
  if (!sd->is_client) return;
  /* the client resets every stream it gets data on, twice over */
  assert_ok(yamux_stream_reset(st));
  assert_ok(yamux_stream_reset(st));
  assert_int_equal(yamux_stream_state(st), YAMUX_RESET);
  yamux_stream_consume(st, 0, true);
}

static void re_free(void *ud, yamux_stream_t *st) {
  side_t *sd = ud;
  sd->frees++;
  assert_true(yamux_stream_state(st) == YAMUX_RESET || yamux_stream_state(st) == YAMUX_CLOSED);
  /* calls from on_free must not free anything twice */
  assert_ok(yamux_stream_reset(st));
  assert_err(yamux_stream_write(st, (const uint8_t *)"x", 1), BFTNET_ESTATE);
}

static void re_reset(void *ud, yamux_stream_t *st) {
  side_t *sd = ud;
  sd->resets++;
  if (sd->is_client) return;
  /* the server answers a reset by opening a fresh stream */
  yamux_stream_t *fresh;
  if (sd->resets < 3) assert_ok(yamux_stream_open(sd->s, &fresh));
}

static void test_reentrancy(void **state) {
  (void)state;
  g_rng = th_seed();
  re_t r = {0};
  yamux_cbs_t cbs = {
      .on_accept = re_accept, .on_data = re_data, .on_reset = re_reset, .on_free = re_free};
  pair_t p;
  pair_init(&p, &cbs, cfg_default, cfg_default, &r);
  yamux_stream_t *st;
  assert_ok(yamux_stream_open(p.a.s, &st));
  assert_int_equal(yamux_stream_write(st, (const uint8_t *)"go", 2), 2);
  pump(&p);
  assert_true(r.opened_in_cb >= 1);
  assert_true(r.feeds_refused >= 1);
  assert_int_equal(yamux_session_error(p.a.s), YAMUX_OK);
  assert_int_equal(yamux_session_error(p.b.s), YAMUX_OK);
  assert_int_equal(p.a.frees, p.b.frees);
  size_t live = yamux_session_stream_count(p.a.s);
  assert_int_equal(live, yamux_session_stream_count(p.b.s));
  /* session_free calls on_free for every live stream */
  int fa = p.a.frees;
  pair_free(&p);
  assert_int_equal(p.a.frees - fa, (int)live);
}

/* A stream freed in the middle of its data frame's body: the rest is skipped. */
static void mid_data(void *ud, yamux_stream_t *st, const uint8_t *p, size_t n) {
  raw_t *r = ud;
  r->datas++;
  assert_ok(yamux_stream_reset(st));
}

static void test_reset_mid_body(void **state) {
  (void)state;
  raw_t r;
  memset(&r, 0, sizeof(r));
  yamux_config_t cfg = {.window = 256 * KiB, .max_streams = 4};
  yamux_cbs_t cbs = {
      .output = raw_output, .on_data = mid_data, .on_fin = raw_fin, .on_free = raw_free};
  assert_ok(yamux_session_new(&r.s, false, &cfg, &cbs, &r));
  const fr_t f[] = {F(DATA, SYN | FIN, 1, 100), F(PING, SYN, 0, 9)};
  assert_ok(raw_feed(&r, f, 2, 1)); /* byte by byte: 100 chances */
  assert_int_equal(r.datas, 1);
  assert_int_equal(r.fins, 0);
  assert_int_equal(r.frees, 1);
  assert_int_equal(r.out[r.nout - 1].type, PING); /* framing kept in step */
  yamux_session_free(r.s);
}

static void test_config(void **state) {
  (void)state;
  yamux_session_t *s;
  yamux_cbs_t cbs = {.output = raw_output};
  yamux_config_t bad[] = {{.window = 256 * KiB - 1, .max_streams = 1},
                          {.window = BN_YAMUX_MAX_WINDOW + 1, .max_streams = 1},
                          {.window = 256 * KiB, .max_streams = BN_YAMUX_MAX_STREAMS_CAP + 1},
                          {.window = 256 * KiB, .max_frame = BN_YAMUX_MAX_WINDOW + 1}};
  for (size_t i = 0; i < BN_ARRAY_LEN(bad); i++)
    assert_err(yamux_session_new(&s, true, &bad[i], &cbs, NULL), BFTNET_EINVAL);
  yamux_cbs_t none = {0};
  assert_err(yamux_session_new(&s, true, &cfg_default, &none, NULL), BFTNET_EINVAL);
  for (int v = 0; v <= YAMUX_INTERNAL; v++)
    assert_non_null(yamux_violation_str((yamux_violation_t)v));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bulk_back_to_back),
      cmocka_unit_test(test_half_close),
      cmocka_unit_test(test_reset),
      cmocka_unit_test(test_backpressure),
      cmocka_unit_test(test_hostile_table),
      cmocka_unit_test(test_tolerated_input),
      cmocka_unit_test(test_stream_limit),
      cmocka_unit_test(test_accept_refused),
      cmocka_unit_test(test_ping),
      cmocka_unit_test(test_goaway),
      cmocka_unit_test(test_reentrancy),
      cmocka_unit_test(test_reset_mid_body),
      cmocka_unit_test(test_config),
      cmocka_unit_test(test_exact_fill_then_want_writable),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
