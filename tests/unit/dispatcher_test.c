/* dispatcher_test.c — the send side's building blocks, single-threaded:
 * message refcounts, the drop-oldest ring (FIFO, capacity, drops, destroy),
 * a broadcast freed exactly once, the framer against writers that take
 * a few bytes at a time, abort, coalescing, and the redial backoff.
 *
 * Linked with the counting allocator (tests/lib/count_alloc.h): live
 * blocks, frees of one watched pointer, injected allocation failures. */
#include "count_alloc.h"
#include "dispatcher.h"
#include "harness.h"

/* -------------------------------------------------------------- helpers */

static uint64_t g_rng;

static uint64_t rnd(void) {
  return th_rnd(&g_rng);
}

static int setup_rng(void **state) {
  (void)state;
  g_rng = th_rng_init(th_seed());
  return 0;
}

static uint32_t refs_of(disp_msg_t *m) {
  return ck_pr_load_32(&m->refs);
}

/* A message whose bytes are a function of (tag, i). */
static disp_msg_t *msg_make(uint32_t tag, size_t len, uint32_t refs) {
  uint8_t *tmp = malloc(len ? len : 1);
  assert_non_null(tmp);
  for (size_t i = 0; i < len; i++)
    tmp[i] = (uint8_t)(tag * 131 + i * 7 + (i >> 8));
  disp_msg_t *m = disp_msg_new(NULL, tmp, len, refs);
  free(tmp);
  assert_non_null(m);
  return m;
}

static disp_msg_t *msg_u32(uint32_t v, uint32_t refs) {
  uint8_t b[4];
  bn_store_be32(b, v);
  disp_msg_t *m = disp_msg_new(NULL, b, sizeof(b), refs);
  assert_non_null(m);
  return m;
}

static uint32_t msg_u32_value(const disp_msg_t *m) {
  assert_int_equal(m->len, 4);
  return bn_load_be32(m->data);
}

/* ------------------------------------------------------------- messages */

static void test_msg_new_release(void **state) {
  (void)state;
  long live = th_live_blocks();
  disp_msg_t *m = disp_msg_new(NULL, "hello", 5, 3);
  assert_non_null(m);
  assert_int_equal(m->len, 5);
  assert_memory_equal(m->data, "hello", 5);
  assert_int_equal(refs_of(m), 3);
  assert_int_equal(th_live_blocks(), live + 1);
  th_watch_free((uint8_t *)m - BN_POOL_HDR); /* the allocation starts at the pool header */
  disp_msg_release(m);
  disp_msg_release(m);
  assert_int_equal(refs_of(m), 1);
  assert_int_equal(th_watched_frees(), 0);
  disp_msg_release(m);
  assert_int_equal(th_watched_frees(), 1);
  assert_int_equal(th_live_blocks(), live);
  th_watch_free(NULL);

  disp_msg_t *empty = disp_msg_new(NULL, NULL, 0, 1);
  assert_non_null(empty);
  assert_int_equal(empty->len, 0);
  disp_msg_release(empty);

  th_fail_alloc_in(0);
  assert_null(disp_msg_new(NULL, "x", 1, 1));
  assert_int_equal(th_live_blocks(), live);
}

/* ----------------------------------------------------------------- ring */

static void test_ring_init_args(void **state) {
  (void)state;
  disp_ring_t r;
  const uint32_t bad[] = {0, 1, 2, 3, 5, 6, 12, 100, (1u << 24) + 1, 1u << 25, UINT32_MAX};
  for (size_t i = 0; i < BN_ARRAY_LEN(bad); i++)
    assert_err(disp_ring_init(&r, bad[i]), BFTNET_EINVAL);
  long live = th_live_blocks();
  th_fail_alloc_in(0);
  assert_err(disp_ring_init(&r, 8), BFTNET_ENOMEM);
  assert_int_equal(th_live_blocks(), live);
  assert_ok(disp_ring_init(&r, 4));
  assert_int_equal(r.cap, 4);
  assert_int_equal(disp_ring_depth(&r), 0);
  assert_int_equal(disp_ring_destroy(&r), 0);
  assert_int_equal(th_live_blocks(), live);
}

static void test_ring_fifo_capacity(void **state) {
  (void)state;
  disp_ring_t r;
  assert_ok(disp_ring_init(&r, 8));
  for (uint32_t i = 0; i < 7; i++) {
    assert_false(disp_ring_push_mpmc(&r, msg_u32(i, 1)));
    assert_int_equal(disp_ring_depth(&r), i + 1);
  }
  assert_int_equal(ck_pr_load_64(&r.dropped), 0);
  /* cap - 1 fit: the 8th drops the oldest. */
  assert_true(disp_ring_push_mpmc(&r, msg_u32(7, 1)));
  assert_int_equal(disp_ring_depth(&r), 7);
  assert_int_equal(ck_pr_load_64(&r.dropped), 1);
  assert_int_equal(ck_pr_load_64(&r.enqueued), 8);

  disp_msg_t *out[16];
  assert_int_equal(disp_ring_pop_batch_mpmc(&r, out, 3), 3);
  assert_int_equal(disp_ring_pop_batch_mpmc(&r, out + 3, 16), 4);
  assert_int_equal(disp_ring_pop_batch_mpmc(&r, out, 16), 0);
  for (uint32_t i = 0; i < 7; i++) {
    assert_int_equal(msg_u32_value(out[i]), i + 1);
    disp_msg_release(out[i]);
  }
  assert_int_equal(disp_ring_depth(&r), 0);
  assert_int_equal(disp_ring_destroy(&r), 0);
}

static void test_ring_drop_oldest(void **state) {
  (void)state;
  enum { N = 100, CAP = 4 };
  disp_ring_t r;
  disp_msg_t *m[N];
  long live = th_live_blocks();
  assert_ok(disp_ring_init(&r, CAP));
  for (uint32_t i = 0; i < N; i++) {
    m[i] = msg_u32(i, 2); /* the test keeps one reference */
    bool dropped = disp_ring_push_mpmc(&r, m[i]);
    assert_int_equal(dropped, i >= CAP - 1);
    /* exactly the oldest went: everything older than the last cap-1 */
    for (uint32_t j = 0; j <= i; j++)
      assert_int_equal(refs_of(m[j]), j + (CAP - 1) <= i ? 1 : 2);
  }
  assert_int_equal(ck_pr_load_64(&r.dropped), N - (CAP - 1));
  assert_int_equal(ck_pr_load_64(&r.enqueued), N);
  disp_msg_t *out[CAP];
  assert_int_equal(disp_ring_pop_batch_mpmc(&r, out, CAP), CAP - 1);
  for (uint32_t i = 0; i < CAP - 1; i++) {
    assert_ptr_equal(out[i], m[N - (CAP - 1) + i]);
    disp_msg_release(out[i]);
  }
  for (uint32_t i = 0; i < N; i++) {
    assert_int_equal(refs_of(m[i]), 1);
    disp_msg_release(m[i]);
  }
  assert_int_equal(disp_ring_destroy(&r), 0);
  assert_int_equal(th_live_blocks(), live);
}

static void test_ring_destroy_releases(void **state) {
  (void)state;
  enum { N = 20 };
  disp_ring_t r;
  disp_msg_t *m[N];
  long live = th_live_blocks();
  assert_ok(disp_ring_init(&r, 32));
  for (uint32_t i = 0; i < N; i++) {
    m[i] = msg_u32(i, 2);
    assert_false(disp_ring_push_mpmc(&r, m[i]));
  }
  disp_msg_t *one;
  assert_int_equal(disp_ring_pop_batch_mpmc(&r, &one, 1), 1);
  assert_ptr_equal(one, m[0]);
  disp_msg_release(one);
  assert_int_equal(disp_ring_destroy(&r), N - 1);
  for (uint32_t i = 0; i < N; i++) {
    assert_int_equal(refs_of(m[i]), 1);
    disp_msg_release(m[i]);
  }
  assert_int_equal(th_live_blocks(), live);
}

/* One buffer, refs = 6, in 6 rings: consumed from two, dropped by overflow
 * from two, released by destroy from two; freed exactly once, at the end. */
static void test_broadcast_freed_once(void **state) {
  (void)state;
  enum { RINGS = 6, CAP = 4 };
  disp_ring_t r[RINGS];
  long live = th_live_blocks();
  for (int i = 0; i < RINGS; i++)
    assert_ok(disp_ring_init(&r[i], CAP));
  disp_msg_t *m = msg_make(42, 1000, RINGS);
  th_watch_free((uint8_t *)m - BN_POOL_HDR);
  for (int i = 0; i < RINGS; i++)
    assert_false(disp_ring_push_mpmc(&r[i], m));
  assert_int_equal(refs_of(m), RINGS);

  disp_msg_t *out[CAP];
  for (int i = 0; i < 2; i++) { /* consumed */
    assert_int_equal(disp_ring_pop_batch_mpmc(&r[i], out, CAP), 1);
    assert_ptr_equal(out[0], m);
    disp_msg_release(out[0]);
  }
  assert_int_equal(refs_of(m), RINGS - 2);
  for (int i = 2; i < 4; i++) { /* pushed out by newer messages */
    for (uint32_t k = 0; k < CAP - 1; k++)
      disp_ring_push_mpmc(&r[i], msg_u32(k, 1));
    assert_int_equal(ck_pr_load_64(&r[i].dropped), 1);
  }
  assert_int_equal(refs_of(m), RINGS - 4);
  assert_int_equal(th_watched_frees(), 0);
  assert_int_equal(disp_ring_destroy(&r[4]), 1);
  assert_int_equal(th_watched_frees(), 0);
  assert_int_equal(disp_ring_destroy(&r[5]), 1); /* the last reference */
  assert_int_equal(th_watched_frees(), 1);
  for (int i = 0; i < 4; i++)
    disp_ring_destroy(&r[i]);
  assert_int_equal(th_watched_frees(), 1);
  assert_int_equal(th_live_blocks(), live);
  th_watch_free(NULL);
}

/* --------------------------------------------------------------- framer */

enum sink_mode { SINK_ALL, SINK_RANDOM, SINK_BUDGET, SINK_CHUNK };

typedef struct sink {
  bn_buf_t out;
  enum sink_mode mode;
  size_t budget; /* SINK_BUDGET: bytes left before blocking; SINK_CHUNK: per call */
  int fail;      /* < 0: returned by the next call, then cleared */
  unsigned calls;
  /* nested: the first call drains this framer first (re-entrance) */
  disp_framer_t *nest_f;
  disp_ring_t *nest_r;
  struct sink *nest_s;
} sink_t;

static void sink_init(sink_t *s, enum sink_mode mode) {
  memset(s, 0, sizeof(*s));
  bn_buf_init(&s->out);
  s->mode = mode;
}

static int sink_write(void *ctx, const uint8_t *p, size_t n) {
  sink_t *s = ctx;
  s->calls++;
  assert_true(n > 0);
  if (s->fail < 0) {
    int e = s->fail;
    s->fail = 0;
    return e;
  }
  if (s->nest_f != NULL) {
    disp_framer_t *f = s->nest_f;
    s->nest_f = NULL;
    assert_true(disp_framer_drain(f, s->nest_r, sink_write, s->nest_s) >= 0);
  }
  size_t k = n;
  switch (s->mode) {
  case SINK_ALL:
    break;
  case SINK_RANDOM: { /* 0 one time in 8, else 1..7 bytes */
    uint64_t x = rnd();
    k = (x & 7) == 0 ? 0 : BN_MIN(n, 1 + (x >> 3) % 7);
    break;
  }
  case SINK_BUDGET:
    k = BN_MIN(n, s->budget);
    s->budget -= k;
    break;
  case SINK_CHUNK:
    k = BN_MIN(n, s->budget);
    break;
  }
  if (k > 0) assert_ok(bn_buf_append(&s->out, p, k));
  return (int)k;
}

static bool framer_idle(const disp_framer_t *f, disp_ring_t *r) {
  return f->cur == NULL && f->held_len == 0 && disp_ring_depth(r) == 0;
}

/* Drains until everything queued is written; returns the messages completed. */
static uint64_t drain_all(disp_framer_t *f, disp_ring_t *r, sink_t *s) {
  uint64_t done = 0;
  for (uint64_t guard = 0; !framer_idle(f, r); guard++) {
    int rc = disp_framer_drain(f, r, sink_write, s);
    assert_true(rc >= 0);
    done += (uint64_t)rc;
    assert_true(guard < 10000000);
  }
  return done;
}

static void expect_frame(bn_buf_t *want, const disp_msg_t *m) {
  assert_ok(lp_append(want, m->data, m->len));
}

static void assert_stream(const sink_t *s, const bn_buf_t *want) {
  assert_int_equal(bn_buf_unread(&s->out), bn_buf_unread(want));
  assert_memory_equal(bn_buf_head(&s->out), bn_buf_head(want), bn_buf_unread(want));
}

/* A writer that gives spans to build in (a migratable stream's retransmit
 * window): spans of random size, some below the framer's minimum (it
 * builds in its scratch then), random partial takes. The stream is the
 * same byte for byte, batches were built in the span, and only there when
 * one was given. */
typedef struct span_sink {
  sink_t s;
  uint8_t buf[80 * 1024];
  size_t given; /* the last span's length */
  unsigned spans, in_place, scratch;
} span_sink_t;

static size_t span_give(void *ctx, size_t want, uint8_t **out) {
  span_sink_t *ss = ctx;
  uint64_t x = rnd();
  size_t n = x % 4 == 0 ? (size_t)(x >> 2) % 300 : (size_t)(x >> 2) % sizeof ss->buf;
  n = BN_MIN(n, want);
  *out = n ? ss->buf : NULL;
  ss->given = n;
  ss->spans++;
  return n;
}

static int span_write(void *ctx, const uint8_t *p, size_t n) {
  span_sink_t *ss = ctx;
  if (p >= ss->buf && p < ss->buf + sizeof ss->buf) {
    assert_true(p + n <= ss->buf + ss->given); /* built inside the span given */
    ss->in_place++;
  } else {
    ss->scratch++;
  }
  uint64_t x = rnd(); /* blocked one time in 16, else all or a random part */
  size_t k = x % 16 == 0 ? 0 : x % 2 ? n : 1 + (size_t)(x >> 8) % n;
  if (k > 0) assert_ok(bn_buf_append(&ss->s.out, p, k));
  return (int)k;
}

static void test_framer_span_writer(void **state) {
  (void)state;
  enum { N = 3000 };
  disp_msg_t *m[N];
  for (size_t i = 0; i < N; i++)
    m[i] = msg_make((uint32_t)i, i % 97 == 0 ? 20000 + rnd() % 50000 : rnd() % 1200, 2);
  disp_ring_t r;
  disp_framer_t f;
  static span_sink_t ss;
  memset(&ss, 0, sizeof ss);
  sink_init(&ss.s, SINK_ALL);
  bn_buf_t want;
  assert_ok(disp_ring_init(&r, 1024));
  disp_framer_init(&f);
  bn_buf_init(&want);
  uint64_t done = 0;
  for (size_t i = 0; i < N;) {
    size_t burst = (size_t)(1 + rnd() % 60);
    burst = BN_MIN(burst, N - i);
    for (size_t k = 0; k < burst; k++, i++) {
      assert_false(disp_ring_push_mpmc(&r, m[i]));
      expect_frame(&want, m[i]);
    }
    for (int k = 0; k < 4; k++) {
      size_t limit = rnd() % 2 ? SIZE_MAX : 1 + rnd() % 20000; /* a scheduler's piece */
      int rc = disp_framer_drain_span(&f, &r, span_write, span_give, &ss, limit);
      assert_true(rc >= 0);
      done += (uint64_t)rc;
    }
  }
  for (uint64_t guard = 0; !framer_idle(&f, &r); guard++) {
    int rc = disp_framer_drain_span(&f, &r, span_write, span_give, &ss, SIZE_MAX);
    assert_true(rc >= 0);
    done += (uint64_t)rc;
    assert_true(guard < 10000000);
  }
  print_message("span writer: %u spans asked, %u writes built in place, %u not\n", ss.spans,
                ss.in_place, ss.scratch);
  assert_int_equal(done, N);
  assert_stream(&ss.s, &want);
  assert_true(ss.in_place > 0); /* the span path ran */
  assert_true(ss.scratch > 0);  /* and so did the fallbacks (small spans, large bodies) */
  for (size_t i = 0; i < N; i++) {
    assert_int_equal(refs_of(m[i]), 1);
    disp_msg_release(m[i]);
  }
  assert_int_equal(disp_ring_destroy(&r), 0);
  bn_buf_free(&want);
  bn_buf_free(&ss.s.out);
}

/* Random small writes (0 sometimes), messages pushed in bursts between
 * drains, sizes across the varint boundaries and a 1 MiB one. */
static void test_framer_random_writer(void **state) {
  (void)state;
  static const size_t fixed[] = {0,     1,     127,   128,   129,   300,     16383,
                                 16384, 20000, 65535, 65536, 70000, 1u << 20};
  enum { NRAND = 400, N = NRAND + BN_ARRAY_LEN(fixed) };
  disp_msg_t *m[N];
  size_t nf = 0;
  for (size_t i = 0; i < N; i++) {
    size_t len;
    if (i % 31 == 5 && nf < BN_ARRAY_LEN(fixed))
      len = fixed[nf++];
    else
      len = rnd() % 4 == 0 ? 0 : rnd() % 300;
    m[i] = msg_make((uint32_t)i, len, 2);
  }
  assert_int_equal(nf, BN_ARRAY_LEN(fixed)); /* all used before the end */

  disp_ring_t r;
  disp_framer_t f;
  sink_t s;
  bn_buf_t want;
  assert_ok(disp_ring_init(&r, 1024));
  disp_framer_init(&f);
  sink_init(&s, SINK_RANDOM);
  bn_buf_init(&want);
  uint64_t done = 0;
  for (size_t i = 0; i < N;) {
    size_t burst = (size_t)(1 + rnd() % 40); /* not inside BN_MIN: it evaluates twice */
    burst = BN_MIN(burst, N - i);
    for (size_t k = 0; k < burst; k++, i++) {
      assert_false(disp_ring_push_mpmc(&r, m[i]));
      expect_frame(&want, m[i]);
    }
    for (int k = 0; k < 3; k++) {
      int rc = disp_framer_drain(&f, &r, sink_write, &s);
      assert_true(rc >= 0);
      done += (uint64_t)rc;
      assert_true(f.held_len <= DISP_FRAMER_HELD);
    }
  }
  done += drain_all(&f, &r, &s);
  assert_int_equal(done, N);
  assert_int_equal(f.msgs_written, N);
  assert_int_equal(f.bytes_written, bn_buf_unread(&want));
  assert_stream(&s, &want);
  for (size_t i = 0; i < N; i++) {
    assert_int_equal(refs_of(m[i]), 1);
    disp_msg_release(m[i]);
  }
  assert_int_equal(disp_framer_abort(&f), 0);
  assert_int_equal(disp_ring_destroy(&r), 0);
  bn_buf_free(&want);
  bn_buf_free(&s.out);
}

/* Whole-message writers see the varint boundaries, and the 1 MiB body goes
 * out in place after one scratch-sized write. */
static void test_framer_boundaries(void **state) {
  (void)state;
  static const size_t lens[] = {0, 127, 128, 0, 16383, 16384, 1u << 20, 5};
  disp_ring_t r;
  disp_framer_t f;
  sink_t s;
  bn_buf_t want;
  assert_ok(disp_ring_init(&r, 16));
  disp_framer_init(&f);
  sink_init(&s, SINK_ALL);
  bn_buf_init(&want);
  for (size_t i = 0; i < BN_ARRAY_LEN(lens); i++) {
    disp_msg_t *m = msg_make((uint32_t)i, lens[i], 1);
    expect_frame(&want, m);
    disp_ring_push_mpmc(&r, m);
  }
  assert_int_equal(disp_framer_drain(&f, &r, sink_write, &s), BN_ARRAY_LEN(lens));
  assert_true(framer_idle(&f, &r));
  assert_stream(&s, &want);
  assert_int_equal(f.bytes_written, bn_buf_unread(&want));
  /* 0,127,128,0,16383,16384 in one write; 1 MiB: header + 64 KiB, then in
   * place; the 5-byte one. */
  assert_true(s.calls <= 4);
  /* Header bytes: 1 for < 128, 2 from 128, 3 from 16384. */
  const uint8_t *o = bn_buf_head(&s.out);
  assert_int_equal(o[0], 0x00);
  assert_int_equal(o[1], 0x7f);
  assert_int_equal(o[2 + 127], 0x80);
  assert_int_equal(o[2 + 127 + 1], 0x01);
  assert_int_equal(disp_ring_destroy(&r), 0);
  bn_buf_free(&want);
  bn_buf_free(&s.out);
}

/* A member that said its max_message_size: larger messages (from the ring
 * and from the broadcast log) are released as they are pulled, counted,
 * and never written; the others go out in order, across partial writes.
 * With the test hook they are written and still counted. */
static void test_framer_skips_too_big_for_member(void **state) {
  (void)state;
  for (int hook = 0; hook < 2; hook++) {
    disp_ring_t r;
    disp_blog_t l;
    disp_framer_t f;
    sink_t s;
    bn_buf_t want;
    long live = th_live_blocks();
    assert_ok(disp_ring_init(&r, 1024));
    assert_ok(disp_blog_init(&l, 64));
    disp_framer_init(&f);
    disp_framer_attach_blog(&f, &l, 0, 1);
    f.peer_max = 100;
    f.write_too_big = hook;
    sink_init(&s, SINK_RANDOM);
    bn_buf_init(&want);
    uint64_t big = 0, n = 0;
    for (uint32_t i = 0; i < 600; i++) {
      size_t len = i % 7 == 3 ? 101 + i : i % 100; /* runs of oversized ones too */
      if (i >= 200 && i < 260) len = 500;
      disp_msg_t *m = msg_make(i, len, 1);
      if (len > 100) big++;
      if (len <= 100 || hook) expect_frame(&want, m);
      if (i % 5 == 0) { /* a broadcast: the log, in queueing order */
        assert_true(disp_blog_push(&l, m, 1));
      } else {
        m->bseq = disp_blog_head(&l);
        disp_ring_push_mpmc(&r, m);
      }
      n++;
      if (i % 50 == 49) {
        drain_all(&f, &r, &s);
        disp_blog_release_to(&l, f.bcur);
      }
    }
    drain_all(&f, &r, &s);
    disp_blog_release_to(&l, f.bcur);
    assert_int_equal(f.too_big, big);
    assert_int_equal(f.msgs_written, hook ? n : n - big);
    assert_stream(&s, &want);
    assert_int_equal(disp_framer_abort(&f), 0);
    assert_int_equal(disp_ring_destroy(&r), 0);
    disp_blog_destroy(&l);
    bn_buf_free(&want);
    bn_buf_free(&s.out);
    assert_int_equal(th_live_blocks(), live); /* every message, skipped or not, freed */
  }
}

/* The stream breaks mid-message: abort releases the partly written one and
 * those held behind it, leaves the ring alone, and the next stream starts
 * at a message boundary. */
static void test_framer_abort(void **state) {
  (void)state;
  enum { N = 300 };
  disp_ring_t r;
  disp_framer_t f;
  sink_t s;
  disp_msg_t *m[N];
  assert_ok(disp_ring_init(&r, 512));
  disp_framer_init(&f);
  assert_int_equal(disp_framer_abort(&f), 0);
  sink_init(&s, SINK_BUDGET);
  s.budget = 5;
  for (int i = 0; i < N; i++) {
    m[i] = msg_make((uint32_t)i, 100, 2);
    disp_ring_push_mpmc(&r, m[i]);
  }
  assert_int_equal(disp_framer_drain(&f, &r, sink_write, &s), 0);
  assert_ptr_equal(f.cur, m[0]);
  assert_int_equal(f.off, 5);
  assert_int_equal(f.bytes_written, 5);
  assert_true(f.held_len <= DISP_FRAMER_HELD);
  uint32_t held = f.held_len, depth = disp_ring_depth(&r);
  assert_int_equal(held + depth, N - 1); /* nothing lost, nothing extra */
  assert_int_equal(disp_framer_abort(&f), 1 + held);
  assert_null(f.cur);
  assert_int_equal(f.held_len, 0);
  assert_int_equal(disp_ring_depth(&r), depth);
  for (uint32_t i = 0; i <= held; i++)
    assert_int_equal(refs_of(m[i]), 1);
  for (uint32_t i = held + 1; i < N; i++)
    assert_int_equal(refs_of(m[i]), 2);
  assert_int_equal(f.msgs_written, 0);

  /* A fresh stream: what is left in the ring, whole, in order. */
  sink_t s2;
  bn_buf_t want;
  sink_init(&s2, SINK_ALL);
  bn_buf_init(&want);
  for (uint32_t i = held + 1; i < N; i++)
    expect_frame(&want, m[i]);
  assert_int_equal(drain_all(&f, &r, &s2), depth);
  assert_stream(&s2, &want);
  for (int i = 0; i < N; i++) {
    assert_int_equal(refs_of(m[i]), 1);
    disp_msg_release(m[i]);
  }
  assert_int_equal(disp_ring_destroy(&r), 0);
  bn_buf_free(&want);
  bn_buf_free(&s.out);
  bn_buf_free(&s2.out);
}

/* Coalescing: 1000 messages of 64 B into a writer that takes everything
 * cost a handful of calls, not one or two per message; and the same
 * through a writer taking 1000 bytes a call (cuts land mid-message). */
static void test_framer_coalesce(void **state) {
  (void)state;
  enum { N = 1000 };
  for (int pass = 0; pass < 2; pass++) {
    disp_ring_t r;
    disp_framer_t f;
    sink_t s;
    bn_buf_t want;
    assert_ok(disp_ring_init(&r, 1024));
    disp_framer_init(&f);
    sink_init(&s, pass == 0 ? SINK_ALL : SINK_CHUNK);
    s.budget = 1000;
    bn_buf_init(&want);
    for (int i = 0; i < N; i++) {
      disp_msg_t *m = msg_make((uint32_t)i, 64, 1);
      expect_frame(&want, m);
      assert_false(disp_ring_push_mpmc(&r, m));
    }
    assert_int_equal(disp_framer_drain(&f, &r, sink_write, &s), N);
    assert_true(framer_idle(&f, &r));
    assert_stream(&s, &want);
    assert_int_equal(f.msgs_written, N);
    assert_int_equal(f.bytes_written, N * 65);
    if (pass == 0) {
      print_message("coalesce: %d messages of 64 B in %u write calls\n", N, s.calls);
      assert_true(s.calls <= 10);
    } else {
      /* one call per 1000 bytes, plus a short one at the end of each build */
      assert_true(s.calls <= (N * 65 + 999) / 1000 + 10);
    }
    assert_int_equal(disp_ring_destroy(&r), 0);
    bn_buf_free(&want);
    bn_buf_free(&s.out);
  }
}

/* A writer error is returned, moves nothing, and the stream resumes. */
static void test_framer_writer_error(void **state) {
  (void)state;
  disp_ring_t r;
  disp_framer_t f;
  sink_t s;
  bn_buf_t want;
  assert_ok(disp_ring_init(&r, 8));
  disp_framer_init(&f);
  sink_init(&s, SINK_ALL);
  bn_buf_init(&want);
  for (int i = 0; i < 3; i++) {
    disp_msg_t *m = msg_make((uint32_t)i, 10, 1);
    expect_frame(&want, m);
    disp_ring_push_mpmc(&r, m);
  }
  s.fail = BFTNET_EIO;
  assert_err(disp_framer_drain(&f, &r, sink_write, &s), BFTNET_EIO);
  assert_int_equal(f.bytes_written, 0);
  assert_int_equal(f.msgs_written, 0);
  assert_int_equal(disp_framer_drain(&f, &r, sink_write, &s), 3);
  assert_stream(&s, &want);
  /* an empty ring: nothing to write, no call */
  unsigned calls = s.calls;
  assert_int_equal(disp_framer_drain(&f, &r, sink_write, &s), 0);
  assert_int_equal(s.calls, calls);
  assert_int_equal(disp_ring_destroy(&r), 0);
  bn_buf_free(&want);
  bn_buf_free(&s.out);
}

/* A writer that drains another framer on the same thread (re-entrance):
 * the inner drain cannot use the scratch buffer and writes in place. */
static void test_framer_nested(void **state) {
  (void)state;
  disp_ring_t ra, rb;
  disp_framer_t fa, fb;
  sink_t sa, sb;
  bn_buf_t wa, wb;
  assert_ok(disp_ring_init(&ra, 64));
  assert_ok(disp_ring_init(&rb, 64));
  disp_framer_init(&fa);
  disp_framer_init(&fb);
  sink_init(&sa, SINK_ALL);
  sink_init(&sb, SINK_RANDOM);
  bn_buf_init(&wa);
  bn_buf_init(&wb);
  for (int i = 0; i < 40; i++) {
    disp_msg_t *a = msg_make((uint32_t)i, (size_t)(rnd() % 200), 1);
    disp_msg_t *b = msg_make((uint32_t)i + 1000, (size_t)(rnd() % 200), 1);
    expect_frame(&wa, a);
    expect_frame(&wb, b);
    disp_ring_push_mpmc(&ra, a);
    disp_ring_push_mpmc(&rb, b);
  }
  sa.nest_f = &fb;
  sa.nest_r = &rb;
  sa.nest_s = &sb;
  assert_int_equal(disp_framer_drain(&fa, &ra, sink_write, &sa), 40);
  assert_stream(&sa, &wa);
  drain_all(&fb, &rb, &sb);
  assert_stream(&sb, &wb);
  assert_int_equal(fb.msgs_written, 40);
  assert_int_equal(disp_ring_destroy(&ra), 0);
  assert_int_equal(disp_ring_destroy(&rb), 0);
  bn_buf_free(&wa);
  bn_buf_free(&wb);
  bn_buf_free(&sa.out);
  bn_buf_free(&sb.out);
}

/* -------------------------------------------------------- broadcast log */

/* Parses a member's stream of 4-byte messages into values. */
static size_t stream_values(const sink_t *s, uint32_t *out, size_t cap) {
  const uint8_t *p = bn_buf_head(&s->out);
  size_t n = bn_buf_unread(&s->out), k = 0, off = 0;
  while (off < n) {
    assert_true(k < cap);
    assert_int_equal(p[off], 4); /* uvarint(4) */
    assert_true(off + 5 <= n);
    out[k++] = bn_load_be32(p + off + 1);
    off += 5;
  }
  return k;
}

static bool blog_idle(const disp_framer_t *f, disp_ring_t *r) {
  return framer_idle(f, r) && disp_framer_backlog(f) == 0;
}

/* The loop's part after draining (dispatcher/src/member.c's disp_blog_advance, without
 * the trim): entries every framer passed are freed. */
static void blog_advance2(disp_blog_t *l, disp_framer_t *f) {
  disp_framer_blog_skip_foreign(&f[0]);
  disp_framer_blog_skip_foreign(&f[1]);
  disp_blog_release_to(l, BN_MIN(f[0].bcur, f[1].bcur));
}

/* Sends to either member and broadcasts, interleaved at random, with
 * drains (partial writes) between them: each member's stream is exactly
 * its sends and every broadcast, in the order they were queued. A small
 * log makes broadcasts fall back to the rings (and back) many times. */
static void test_blog_merge_order(void **state) {
  (void)state;
  enum { OPS = 3000, LOGCAP = 8 };
  long live = th_live_blocks();
  disp_blog_t l;
  disp_ring_t r[2];
  disp_framer_t f[2];
  sink_t s[2];
  assert_ok(disp_blog_init(&l, LOGCAP));
  static uint32_t want[2][OPS], got[2][OPS];
  size_t nwant[2] = {0, 0};
  unsigned fallbacks = 0, logged = 0;
  for (int i = 0; i < 2; i++) {
    assert_ok(disp_ring_init(&r[i], 4096));
    disp_framer_init(&f[i]);
    disp_framer_attach_blog(&f[i], &l, disp_blog_head(&l), 1);
    sink_init(&s[i], SINK_RANDOM);
  }
  for (uint32_t op = 0; op < OPS; op++) {
    unsigned kind = (unsigned)(rnd() % 3); /* 0, 1: send to that member; 2: broadcast */
    if (kind < 2) {
      disp_msg_t *m = msg_u32(op, 1);
      m->bseq = disp_blog_head(&l);
      assert_false(disp_ring_push_mpmc(&r[kind], m));
      want[kind][nwant[kind]++] = op;
    } else {
      disp_msg_t *m = msg_u32(op, 1);
      if (disp_blog_push(&l, m, 1)) {
        logged++;
      } else { /* full: into both rings, as bftnet_broadcast does */
        fallbacks++;
        m->refs = 2;
        m->bseq = disp_blog_head(&l);
        assert_false(disp_ring_push_mpmc(&r[0], m));
        assert_false(disp_ring_push_mpmc(&r[1], m));
      }
      want[0][nwant[0]++] = op;
      want[1][nwant[1]++] = op;
    }
    if (rnd() % 4 == 0) {
      int k = (int)(rnd() % 2);
      assert_true(disp_framer_drain(&f[k], &r[k], sink_write, &s[k]) >= 0);
      blog_advance2(&l, f);
    }
  }
  for (int i = 0; i < 2; i++) {
    for (int guard = 0; !blog_idle(&f[i], &r[i]); guard++) {
      assert_true(guard < 1000000);
      assert_true(disp_framer_drain(&f[i], &r[i], sink_write, &s[i]) >= 0);
    }
  }
  blog_advance2(&l, f);
  for (int i = 0; i < 2; i++) {
    size_t n = stream_values(&s[i], got[i], OPS);
    assert_int_equal(n, nwant[i]);
    for (size_t k = 0; k < n; k++)
      if (got[i][k] != want[i][k])
        fail_msg("member %d, message %zu: %u, want %u", i, k, got[i][k], want[i][k]);
    assert_int_equal(f[i].bdropped, 0);
    assert_int_equal(ck_pr_load_64(&r[i].dropped), 0);
  }
  assert_true(fallbacks > 0 && logged > 0); /* both paths ran */
  assert_int_equal(f[0].btaken, logged);
  assert_int_equal(disp_blog_destroy(&l), 0); /* everything was released */
  for (int i = 0; i < 2; i++) {
    assert_int_equal(disp_ring_destroy(&r[i]), 0);
    bn_buf_free(&s[i].out);
  }
  assert_int_equal(th_live_blocks(), live);
  fprintf(stderr, "blog merge: %u broadcasts through the log, %u through the rings\n", logged,
          fallbacks);
}

/* Entries addressed to an older membership are skipped (not delivered,
 * not counted); the log refuses a push when full; a lagging cursor is
 * trimmed, counting only its own entries as dropped; abort releases the
 * ring message waiting behind log entries; destroy releases the rest. */
static void test_blog_versions_full_trim_abort(void **state) {
  (void)state;
  long live = th_live_blocks();
  disp_blog_t l;
  disp_ring_t r;
  disp_framer_t f;
  sink_t s;
  assert_err(disp_blog_init(&l, 3), BFTNET_EINVAL);
  assert_err(disp_blog_init(&l, 2), BFTNET_EINVAL);
  assert_ok(disp_blog_init(&l, 8));
  assert_ok(disp_ring_init(&r, 16));
  disp_framer_init(&f);
  disp_framer_attach_blog(&f, &l, 0, 2); /* joined at version 2 */
  sink_init(&s, SINK_ALL);
  /* 0 (v1), 1 (v2), 2 (v1), 3 (v2): this member gets 1 and 3. */
  for (uint32_t i = 0; i < 4; i++)
    assert_true(disp_blog_push(&l, msg_u32(i, 1), i % 2 ? 2 : 1));
  assert_int_equal(disp_blog_head(&l), 4);
  assert_int_equal(disp_framer_backlog(&f), 4);
  disp_framer_blog_skip_foreign(&f); /* past entry 0 only */
  assert_int_equal(f.bcur, 1);
  for (int guard = 0; !blog_idle(&f, &r); guard++) {
    assert_true(guard < 100);
    assert_true(disp_framer_drain(&f, &r, sink_write, &s) >= 0);
  }
  uint32_t v[8];
  assert_int_equal(stream_values(&s, v, 8), 2);
  assert_int_equal(v[0], 1);
  assert_int_equal(v[1], 3);
  assert_int_equal(f.btaken, 2);
  disp_blog_release_to(&l, 4);

  /* Full at 8 entries past the tail. */
  for (uint32_t i = 0; i < 8; i++)
    assert_true(disp_blog_push(&l, msg_u32(100 + i, 1), i < 2 ? 1 : 2));
  disp_msg_t *extra = msg_u32(999, 1);
  assert_false(disp_blog_push(&l, extra, 2));
  /* Trim to the newest 3: entries 4..8 skipped, of which 6, 7, 8 are ours. */
  assert_int_equal(disp_framer_blog_trim(&f, 20), 0); /* within keep: nothing */
  assert_int_equal(disp_framer_blog_trim(&f, 3), 3);
  assert_int_equal(f.bcur, 9);
  assert_int_equal(f.bdropped, 3);
  disp_blog_release_to(&l, 9);
  assert_true(disp_blog_push(&l, extra, 2)); /* room again */

  /* A ring message queued after entry 12 waits behind the log entries
   * 9..12; the writer is blocked, so abort finds one current and it. */
  disp_msg_t *u = msg_u32(7777, 1);
  u->bseq = disp_blog_head(&l);
  assert_false(disp_ring_push_mpmc(&r, u));
  sink_t blocked;
  sink_init(&blocked, SINK_BUDGET); /* budget 0: takes nothing */
  assert_int_equal(disp_framer_drain(&f, &r, sink_write, &blocked), 0);
  assert_non_null(f.cur);
  int held = (int)f.held_len + 1 + (int)f.uni_len;
  assert_int_equal(disp_framer_abort(&f), held);
  assert_int_equal(f.uni_len, 0);
  assert_true(held >= 2);
  /* Destroy releases what the log still holds (9..12: 4 entries). */
  assert_int_equal(disp_blog_destroy(&l), 4);
  assert_int_equal(disp_ring_destroy(&r), 0);
  bn_buf_free(&s.out);
  bn_buf_free(&blocked.out);
  assert_int_equal(th_live_blocks(), live);
}

/* -------------------------------------------------------------- backoff */

static void test_backoff_bounds(void **state) {
  (void)state;
  bn_seam_sim_t sim;
  bn_seam_sim_init(&sim, th_seed());
  disp_backoff_t b;
  disp_backoff_init(&b, 100, 10000);
  for (int round = 0; round < 2; round++) {
    for (unsigned k = 0; k < 40; k++) { /* attempt k: [min/2, min(max, min * 2^k)] */
      uint64_t hi = BN_MIN(100ull << k, 10000ull);
      assert_in_range(disp_backoff_next_ms(&b, &sim.seam), 50, hi);
    }
    disp_backoff_reset(&b);
    assert_int_equal(b.attempt, 0);
  }
  /* At the cap, the draws spread over [min/2, max]. */
  uint64_t lo = UINT64_MAX, hi = 0, sum = 0;
  for (int i = 0; i < 2000; i++) {
    uint64_t d = disp_backoff_next_ms(&b, &sim.seam);
    lo = BN_MIN(lo, d);
    hi = BN_MAX(hi, d);
    sum += d;
  }
  assert_in_range(lo, 50, 500);
  assert_in_range(hi, 9500, 10000);
  assert_in_range(sum / 2000, 4500, 5550);
  /* min == max, and a 32-bit range that must not overflow */
  disp_backoff_init(&b, 1000, 1000);
  for (int i = 0; i < 50; i++)
    assert_in_range(disp_backoff_next_ms(&b, &sim.seam), 500, 1000);
  disp_backoff_init(&b, 1, UINT32_MAX);
  for (int i = 0; i < 64; i++)
    assert_in_range(disp_backoff_next_ms(&b, &sim.seam), 0, UINT32_MAX);
  assert_true(b.attempt <= 32);
}

static void test_backoff_deterministic(void **state) {
  (void)state;
  uint64_t seed = th_seed();
  bn_seam_sim_t s1, s2, s3;
  bn_seam_sim_init(&s1, seed);
  bn_seam_sim_init(&s2, seed);
  bn_seam_sim_init(&s3, seed + 1);
  disp_backoff_t b1, b2, b3;
  disp_backoff_init(&b1, 50, 60000);
  disp_backoff_init(&b2, 50, 60000);
  disp_backoff_init(&b3, 50, 60000);
  int differ = 0;
  for (int i = 0; i < 30; i++) {
    uint64_t d1 = disp_backoff_next_ms(&b1, &s1.seam);
    assert_int_equal(d1, disp_backoff_next_ms(&b2, &s2.seam));
    differ += d1 != disp_backoff_next_ms(&b3, &s3.seam);
  }
  assert_true(differ > 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_msg_new_release),
      cmocka_unit_test(test_ring_init_args),
      cmocka_unit_test(test_ring_fifo_capacity),
      cmocka_unit_test(test_ring_drop_oldest),
      cmocka_unit_test(test_ring_destroy_releases),
      cmocka_unit_test(test_broadcast_freed_once),
      cmocka_unit_test(test_framer_random_writer),
      cmocka_unit_test(test_framer_span_writer),
      cmocka_unit_test(test_framer_boundaries),
      cmocka_unit_test(test_framer_abort),
      cmocka_unit_test(test_framer_skips_too_big_for_member),
      cmocka_unit_test(test_framer_coalesce),
      cmocka_unit_test(test_framer_writer_error),
      cmocka_unit_test(test_framer_nested),
      cmocka_unit_test(test_blog_merge_order),
      cmocka_unit_test(test_blog_versions_full_trim_abort),
      cmocka_unit_test(test_backoff_bounds),
      cmocka_unit_test(test_backoff_deterministic),
  };
  return cmocka_run_group_tests(tests, setup_rng, NULL);
}
