/* receiver_test.c — receiver/ building blocks: message buffers, the
 * deframer (any split decodes like the whole; lying lengths rejected before
 * allocation; bad varints; sticky errors), the inbound queue on one thread
 * (FIFO across ring and overflow, limits, destroy), and the tentative
 * buffer (newest kept by count and bytes, evictions counted). */
#include "harness.h"
#include "receiver.h"

/* ------------------------------------------------------------ helpers */

static uint64_t rng_state;
static uint64_t rng_next(void) { /* splitmix64, seeded by th_seed() */
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Collected messages: each as uvarint(len) || bytes, in emission order. */
typedef struct sink {
  bn_buf_t out;
  size_t count;
  const uint8_t *in_lo, *in_hi; /* the buffer being fed, for zero-copy checks */
  size_t zero_copy;
} sink_t;

static void sink_emit(void *ud, const uint8_t *msg, size_t len) {
  sink_t *s = ud;
  if (len > 0) assert_non_null(msg);
  assert_ok(lp_append(&s->out, msg, len));
  s->count++;
  if (s->in_lo != NULL && msg >= s->in_lo && msg + len <= s->in_hi) s->zero_copy++;
}

static void sink_init(sink_t *s) {
  memset(s, 0, sizeof(*s));
  bn_buf_init(&s->out);
}

static const size_t stream_sizes[] = {0, 1, 127, 128, 16383, 16384, 1u << 20, 5, 0};

/* uvarint(len) || bytes for every size above, with distinct contents. */
static void build_stream(bn_buf_t *b) {
  bn_buf_init(b);
  for (size_t i = 0; i < BN_ARRAY_LEN(stream_sizes); i++) {
    size_t len = stream_sizes[i];
    uint8_t *body = malloc(len ? len : 1);
    assert_non_null(body);
    for (size_t j = 0; j < len; j++)
      body[j] = (uint8_t)(j * 31 + i * 7 + (j >> 8));
    assert_ok(lp_append(b, body, len));
    free(body);
  }
}

/* ----------------------------------------------------------- messages */

static void test_msg_inline_from(void **state) {
  (void)state;
  rx_msg_t *m = rx_msg_new((const uint8_t *)"hello", 5, "12D3KooWAlice");
  assert_non_null(m);
  assert_int_equal(m->len, 5);
  assert_null(m->next);
  assert_memory_equal(m->data, "hello", 5);
  assert_string_equal(m->from, "12D3KooWAlice");
  assert_ptr_equal(m->from, (const char *)m->data + 5);

  /* Shorter: in place. */
  m = rx_msg_set_from(m, "bob");
  assert_non_null(m);
  assert_string_equal(m->from, "bob");
  assert_ptr_equal(m->from, (const char *)m->data + 5);
  /* Longer: reallocated, data intact, from recomputed. */
  m = rx_msg_set_from(m, "a-much-longer-node-identifier-than-before-0123456789");
  assert_non_null(m);
  assert_memory_equal(m->data, "hello", 5);
  assert_string_equal(m->from, "a-much-longer-node-identifier-than-before-0123456789");
  assert_ptr_equal(m->from, (const char *)m->data + 5);
  rx_msg_free(m);

  /* Tentative (no ID) and empty data. */
  m = rx_msg_new(NULL, 0, NULL);
  assert_non_null(m);
  assert_int_equal(m->len, 0);
  assert_string_equal(m->from, "");
  m = rx_msg_set_from(m, "node-7");
  assert_non_null(m);
  assert_string_equal(m->from, "node-7");
  rx_msg_free(m);
  rx_msg_free(NULL);
}

/* ----------------------------------------------------------- deframer */

static void test_deframer_whole_is_zero_copy(void **state) {
  (void)state;
  bn_buf_t stream;
  build_stream(&stream);
  sink_t s;
  sink_init(&s);
  s.in_lo = bn_buf_head(&stream);
  s.in_hi = s.in_lo + bn_buf_unread(&stream);
  rx_deframer_t d;
  rx_deframer_init(&d, 1u << 20);
  assert_ok(rx_deframer_feed(&d, bn_buf_head(&stream), bn_buf_unread(&stream), sink_emit, &s));
  assert_int_equal(s.count, BN_ARRAY_LEN(stream_sizes));
  assert_int_equal(s.zero_copy, BN_ARRAY_LEN(stream_sizes)); /* every one points into the input */
  assert_null(d.body);
  assert_false(d.in_body);
  assert_int_equal(bn_buf_unread(&s.out), bn_buf_unread(&stream));
  assert_memory_equal(bn_buf_head(&s.out), bn_buf_head(&stream), bn_buf_unread(&stream));
  rx_deframer_free(&d);
  bn_buf_free(&s.out);
  bn_buf_free(&stream);
}

/* Feeds the stream in chunks of 1..maxchunk bytes and compares. */
static void split_round(const bn_buf_t *stream, size_t maxchunk) {
  const uint8_t *p = bn_buf_head(stream);
  size_t n = bn_buf_unread(stream);
  sink_t s;
  sink_init(&s);
  rx_deframer_t d;
  rx_deframer_init(&d, 1u << 20);
  while (n > 0) {
    size_t k = 1 + (size_t)(rng_next() % maxchunk);
    if (k > n) k = n;
    if (rng_next() % 16 == 0) assert_ok(rx_deframer_feed(&d, p, 0, sink_emit, &s));
    assert_ok(rx_deframer_feed(&d, p, k, sink_emit, &s));
    p += k;
    n -= k;
  }
  assert_int_equal(s.count, BN_ARRAY_LEN(stream_sizes));
  assert_null(d.body);
  assert_int_equal(bn_buf_unread(&s.out), bn_buf_unread(stream));
  assert_memory_equal(bn_buf_head(&s.out), bn_buf_head(stream), bn_buf_unread(stream));
  rx_deframer_free(&d);
  bn_buf_free(&s.out);
}

static void test_deframer_random_splits(void **state) {
  (void)state;
  rng_state = th_seed();
  bn_buf_t stream;
  build_stream(&stream);
  static const size_t chunks[] = {1, 2, 3, 9, 10, 130, 16390, 70000, 1u << 21};
  for (size_t c = 0; c < BN_ARRAY_LEN(chunks); c++) {
    int rounds = chunks[c] < 16 ? 1 : 8;
    for (int r = 0; r < rounds; r++)
      split_round(&stream, chunks[c]);
  }
  bn_buf_free(&stream);
}

/* The header split at every byte boundary, for every header length. */
static void test_deframer_header_splits(void **state) {
  (void)state;
  static const uint64_t lens[] = {0, 1, 127, 128, 300, 16383, 16384, 2097151, 2097152};
  for (size_t i = 0; i < BN_ARRAY_LEN(lens); i++) {
    bn_buf_t b;
    bn_buf_init(&b);
    uint8_t *body = calloc(1, lens[i] + 1);
    assert_non_null(body);
    body[0] = 0x5a;
    assert_ok(lp_append(&b, body, lens[i]));
    size_t total = bn_buf_unread(&b);
    size_t hdr = uvarint_size(lens[i]);
    for (size_t cut = 0; cut <= hdr + 1 && cut <= total; cut++) {
      sink_t s;
      sink_init(&s);
      rx_deframer_t d;
      rx_deframer_init(&d, 4u << 20);
      assert_ok(rx_deframer_feed(&d, bn_buf_head(&b), cut, sink_emit, &s));
      assert_ok(rx_deframer_feed(&d, bn_buf_head(&b) + cut, total - cut, sink_emit, &s));
      assert_int_equal(s.count, 1);
      assert_memory_equal(bn_buf_head(&s.out), bn_buf_head(&b), total);
      rx_deframer_free(&d);
      bn_buf_free(&s.out);
    }
    free(body);
    bn_buf_free(&b);
  }
}

static void test_deframer_too_big_before_alloc(void **state) {
  (void)state;
  uint8_t hdr[BN_UVARINT_MAX_BYTES];
  size_t h = uvarint_encode(hdr, (uint64_t)1 << 62);
  /* max = 2^62 - 1: had the deframer allocated 2^62 bytes first it would
   * fail with ENOMEM, not TOOBIG. */
  for (int split = 0; split < 2; split++) {
    sink_t s;
    sink_init(&s);
    rx_deframer_t d;
    rx_deframer_init(&d, (size_t)(((uint64_t)1 << 62) - 1));
    if (split) {
      for (size_t i = 0; i + 1 < h; i++) {
        assert_ok(rx_deframer_feed(&d, hdr + i, 1, sink_emit, &s));
        assert_null(d.body);
      }
      assert_err(rx_deframer_feed(&d, hdr + h - 1, 1, sink_emit, &s), BFTNET_ETOOBIG);
    } else {
      assert_err(rx_deframer_feed(&d, hdr, h, sink_emit, &s), BFTNET_ETOOBIG);
    }
    assert_null(d.body);
    assert_false(d.in_body);
    assert_int_equal(s.count, 0);
    /* Sticky. */
    assert_err(rx_deframer_feed(&d, (const uint8_t *)"\x01x", 2, sink_emit, &s), BFTNET_ETOOBIG);
    assert_err(rx_deframer_feed(&d, NULL, 0, sink_emit, &s), BFTNET_ETOOBIG);
    assert_int_equal(s.count, 0);
    rx_deframer_free(&d);
    bn_buf_free(&s.out);
  }
}

static void test_deframer_max_exact(void **state) {
  (void)state;
  uint8_t body[129];
  memset(body, 7, sizeof(body));
  for (size_t len = 127; len <= 129; len++) {
    bn_buf_t b;
    bn_buf_init(&b);
    assert_ok(lp_append(&b, body, len));
    for (int split = 0; split < 2; split++) {
      sink_t s;
      sink_init(&s);
      rx_deframer_t d;
      rx_deframer_init(&d, 128);
      size_t total = bn_buf_unread(&b);
      size_t first = split ? 3 : total; /* body straddles the feeds */
      int rc = rx_deframer_feed(&d, bn_buf_head(&b), first, sink_emit, &s);
      if (rc == 0 && first < total)
        rc = rx_deframer_feed(&d, bn_buf_head(&b) + first, total - first, sink_emit, &s);
      if (len <= 128) {
        assert_ok(rc);
        assert_int_equal(s.count, 1);
      } else {
        assert_err(rc, BFTNET_ETOOBIG);
        assert_int_equal(s.count, 0);
        assert_null(d.body);
      }
      rx_deframer_free(&d);
      bn_buf_free(&s.out);
    }
    bn_buf_free(&b);
  }
}

/* A length in (max, skip_max] is skipped, unbuffered and counted, in any
 * split, and the messages around it are emitted in order; a length above
 * skip_max is still the sticky error. Without skip_max (0) nothing is
 * skipped. */
static void test_deframer_skips_oversized(void **state) {
  (void)state;
  enum { MAX = 100, SKIP_MAX = 5000 };
  static const size_t lens[] = {3, 101, 50, 4999, 5000, 0, 100, 2000, 7};
  bn_buf_t in, want;
  bn_buf_init(&in);
  bn_buf_init(&want);
  size_t nbig = 0;
  static uint8_t body[5000];
  for (size_t i = 0; i < BN_ARRAY_LEN(lens); i++) {
    memset(body, (int)i + 1, lens[i]);
    assert_ok(lp_append(&in, body, lens[i]));
    if (lens[i] <= MAX)
      assert_ok(lp_append(&want, body, lens[i]));
    else
      nbig++;
  }
  size_t total = bn_buf_unread(&in);
  for (size_t step = 1; step <= total; step = step < 8 ? step + 1 : step * 3) {
    sink_t s;
    sink_init(&s);
    rx_deframer_t d;
    rx_deframer_init(&d, MAX);
    d.skip_max = SKIP_MAX;
    for (size_t off = 0; off < total; off += step) {
      size_t k = BN_MIN(step, total - off);
      assert_ok(rx_deframer_feed(&d, bn_buf_head(&in) + off, k, sink_emit, &s));
      assert_true(!d.body || d.need <= MAX); /* nothing oversized is ever buffered */
    }
    assert_int_equal(d.skipped, nbig);
    assert_int_equal(d.skip, 0);
    assert_int_equal(s.count, BN_ARRAY_LEN(lens) - nbig);
    assert_int_equal(bn_buf_unread(&s.out), bn_buf_unread(&want));
    assert_memory_equal(bn_buf_head(&s.out), bn_buf_head(&want), bn_buf_unread(&want));
    /* Above skip_max: a lie, the sticky error. */
    uint8_t hdr[BN_UVARINT_MAX_BYTES];
    size_t h = uvarint_encode(hdr, SKIP_MAX + 1);
    assert_err(rx_deframer_feed(&d, hdr, h, sink_emit, &s), BFTNET_ETOOBIG);
    assert_err(rx_deframer_feed(&d, (const uint8_t *)"\x01x", 2, sink_emit, &s), BFTNET_ETOOBIG);
    rx_deframer_free(&d);
    bn_buf_free(&s.out);
  }
  /* Reset mid-skip: the next stream starts clean. */
  rx_deframer_t d;
  sink_t s;
  sink_init(&s);
  rx_deframer_init(&d, MAX);
  d.skip_max = SKIP_MAX;
  assert_ok(rx_deframer_feed(&d, bn_buf_head(&in), 10, sink_emit, &s)); /* into the 101 */
  assert_true(d.skip > 0);
  rx_deframer_free(&d);
  assert_int_equal(d.skip, 0);
  /* skip_max 0: the old rule, oversized is an error. */
  rx_deframer_init(&d, MAX);
  assert_err(rx_deframer_feed(&d, bn_buf_head(&in), total, sink_emit, &s), BFTNET_ETOOBIG);
  assert_int_equal(d.skipped, 0);
  rx_deframer_free(&d);
  bn_buf_free(&s.out);
  bn_buf_free(&in);
  bn_buf_free(&want);
}

static void test_deframer_bad_varints(void **state) {
  (void)state;
  static const struct {
    const char *hex;
    const char *why;
  } bad[] = {
      {"8000", "non-minimal zero"},
      {"8100", "non-minimal one"},
      {"ff8000", "non-minimal, 3 bytes"},
      {"ffffffffffffffffff", "9 bytes, continuation still set"},
      {"ffffffffffffffffff01", "10 bytes"},
      {"808080808080808080", "9 continuation bytes"},
  };
  for (size_t i = 0; i < BN_ARRAY_LEN(bad); i++) {
    size_t n;
    uint8_t *in = th_hex(bad[i].hex, &n);
    for (int split = 0; split < 2; split++) {
      sink_t s;
      sink_init(&s);
      rx_deframer_t d;
      rx_deframer_init(&d, 1024);
      /* A good message first: emitted before the error. */
      assert_ok(rx_deframer_feed(&d, (const uint8_t *)"\x02hi", 3, sink_emit, &s));
      int rc = 0;
      if (split) {
        for (size_t j = 0; j < n && rc == 0; j++)
          rc = rx_deframer_feed(&d, in + j, 1, sink_emit, &s);
      } else {
        rc = rx_deframer_feed(&d, in, n, sink_emit, &s);
      }
      if (rc != BFTNET_EPROTO) fail_msg("%s (split %d): %d", bad[i].why, split, rc);
      assert_int_equal(s.count, 1);
      assert_err(rx_deframer_feed(&d, (const uint8_t *)"\x02hi", 3, sink_emit, &s), BFTNET_EPROTO);
      assert_int_equal(s.count, 1);
      rx_deframer_free(&d);
      bn_buf_free(&s.out);
    }
    free(in);
  }
  /* The largest legal 9-byte varint is a length, not a protocol error. */
  size_t n;
  uint8_t *in = th_hex("ffffffffffffffff7f", &n);
  rx_deframer_t d;
  sink_t s;
  sink_init(&s);
  rx_deframer_init(&d, 1024);
  assert_err(rx_deframer_feed(&d, in, n, sink_emit, &s), BFTNET_ETOOBIG);
  rx_deframer_free(&d);
  bn_buf_free(&s.out);
  free(in);
}

static void test_deframer_free_partial(void **state) {
  (void)state;
  sink_t s;
  sink_init(&s);
  rx_deframer_t d;
  rx_deframer_init(&d, 1024);
  assert_ok(rx_deframer_feed(&d, (const uint8_t *)"\x05hel", 4, sink_emit, &s));
  assert_non_null(d.body);
  assert_true(d.in_body);
  assert_int_equal(d.need, 5);
  assert_int_equal(d.have, 3);
  assert_int_equal(s.count, 0);
  rx_deframer_free(&d); /* the partial body is freed (ASan checks) */
  assert_null(d.body);
  bn_buf_free(&s.out);
}

/* -------------------------------------------------------- inbound queue */

static rx_msg_t *seq_msg(uint32_t seq, size_t len) {
  uint8_t buf[64] = {0};
  assert_true(len >= 4 && len <= sizeof(buf));
  bn_store_be32(buf, seq);
  rx_msg_t *m = rx_msg_new(buf, len, "peer");
  assert_non_null(m);
  return m;
}

static uint32_t pop_seq(rx_inq_t *q) {
  rx_msg_t *m = rx_inq_pop_spmc(q);
  assert_non_null(m);
  uint32_t seq = bn_load_be32(m->data);
  assert_string_equal(m->from, "peer");
  rx_msg_free(m);
  return seq;
}

static void test_inq_init_args(void **state) {
  (void)state;
  rx_inq_t q;
  assert_err(rx_inq_init(&q, 0, 100), BFTNET_EINVAL);
  assert_err(rx_inq_init(&q, 1, 100), BFTNET_EINVAL);
  assert_err(rx_inq_init(&q, 6, 100), BFTNET_EINVAL);
  assert_ok(rx_inq_init(&q, 2, 100));
  assert_null(rx_inq_pop_spmc(&q));
  assert_int_equal(rx_inq_destroy(&q), 0);
}

/* Batch takes: oldest first, never more than asked or than the ring holds
 * (the overflow waits for a refill), and the counters move by the batch. */
static void test_inq_batch_pop(void **state) {
  (void)state;
  rx_inq_t q;
  rx_msg_t *out[16];
  assert_ok(rx_inq_init(&q, 8, 1u << 20)); /* 7 ring slots */
  assert_int_equal(rx_inq_pop_batch_spmc(&q, out, 16), 0);
  for (uint32_t i = 1; i <= 10; i++)
    rx_inq_push_spmc(&q, seq_msg(i, 4 + i));
  assert_int_equal(rx_inq_depth(&q), 10);
  assert_int_equal(rx_inq_bytes(&q), 10 * 4 + 55);
  assert_int_equal(rx_inq_pop_batch_spmc(&q, out, 3), 3);
  for (uint32_t i = 0; i < 3; i++) {
    assert_int_equal(bn_load_be32(out[i]->data), i + 1);
    rx_msg_free(out[i]);
  }
  assert_int_equal(rx_inq_depth(&q), 7);
  assert_int_equal(rx_inq_bytes(&q), 10 * 4 + 55 - (5 + 6 + 7));
  assert_int_equal(q.delivered, 3);
  /* 4..7 in the ring, 8..10 in the overflow until a refill. */
  assert_int_equal(rx_inq_pop_batch_spmc(&q, out, 16), 4);
  for (uint32_t i = 0; i < 4; i++) {
    assert_int_equal(bn_load_be32(out[i]->data), i + 4);
    rx_msg_free(out[i]);
  }
  assert_int_equal(rx_inq_pop_batch_spmc(&q, out, 16), 0);
  rx_inq_refill_spmc(&q);
  assert_int_equal(rx_inq_pop_batch_spmc(&q, out, 16), 3);
  for (uint32_t i = 0; i < 3; i++) {
    assert_int_equal(bn_load_be32(out[i]->data), i + 8);
    rx_msg_free(out[i]);
  }
  assert_int_equal(rx_inq_depth(&q), 0);
  assert_int_equal(rx_inq_bytes(&q), 0);
  assert_int_equal(q.delivered, 10);
  assert_int_equal(rx_inq_destroy(&q), 0);
}

static void test_inq_fifo_across_overflow(void **state) {
  (void)state;
  rx_inq_t q;
  assert_ok(rx_inq_init(&q, 4, 1u << 20)); /* 3 ring slots */
  for (uint32_t i = 1; i <= 5; i++)
    rx_inq_push_spmc(&q, seq_msg(i, 8));
  assert_int_equal(rx_inq_depth(&q), 5);
  assert_non_null(q.ovf_head); /* 4 and 5 wait in the overflow */
  assert_int_equal(pop_seq(&q), 1);
  /* A slot is free, but 6 must not overtake 4 and 5. */
  rx_inq_push_spmc(&q, seq_msg(6, 8));
  assert_int_equal(pop_seq(&q), 2);
  assert_int_equal(pop_seq(&q), 3);
  assert_int_equal(pop_seq(&q), 4);
  assert_null(rx_inq_pop_spmc(&q)); /* 5 and 6 still in the overflow */
  assert_int_equal(rx_inq_depth(&q), 2);
  rx_inq_refill_spmc(&q);
  assert_null(q.ovf_head);
  assert_null(q.ovf_tail);
  rx_inq_push_spmc(&q, seq_msg(7, 8)); /* overflow empty: straight to the ring */
  assert_null(q.ovf_head);
  for (uint32_t i = 5; i <= 7; i++)
    assert_int_equal(pop_seq(&q), i);
  assert_null(rx_inq_pop_spmc(&q));
  assert_int_equal(rx_inq_depth(&q), 0);
  assert_int_equal(rx_inq_bytes(&q), 0);
  assert_int_equal(q.delivered, 7);

  /* A long interleaving against a model: pushes, pops and refills at random. */
  rng_state = th_seed() ^ 0x1234;
  uint32_t next_push = 100, next_pop = 100;
  for (int step = 0; step < 20000; step++) {
    uint64_t r = rng_next() % 8;
    if (r < 3) {
      rx_inq_push_spmc(&q, seq_msg(next_push++, 4 + (size_t)(rng_next() % 60)));
    } else if (r < 6) {
      rx_msg_t *m = rx_inq_pop_spmc(&q);
      if (m != NULL) {
        assert_int_equal(bn_load_be32(m->data), next_pop++);
        rx_msg_free(m);
      }
    } else {
      rx_inq_refill_spmc(&q);
    }
    assert_int_equal(rx_inq_depth(&q), next_push - next_pop);
  }
  rx_inq_refill_spmc(&q);
  rx_msg_t *m;
  while ((m = rx_inq_pop_spmc(&q)) != NULL || q.ovf_head != NULL) {
    if (m == NULL) {
      rx_inq_refill_spmc(&q);
      continue;
    }
    assert_int_equal(bn_load_be32(m->data), next_pop++);
    rx_msg_free(m);
  }
  assert_int_equal(next_pop, next_push);
  assert_int_equal(rx_inq_depth(&q), 0);
  assert_int_equal(rx_inq_bytes(&q), 0);
  assert_int_equal(rx_inq_destroy(&q), 0);
}

static void test_inq_over_by_count(void **state) {
  (void)state;
  rx_inq_t q;
  assert_ok(rx_inq_init(&q, 8, 1u << 20));
  for (uint32_t i = 0; i < 6; i++) {
    assert_false(rx_inq_over(&q));
    rx_inq_push_spmc(&q, seq_msg(i, 4));
  }
  assert_false(rx_inq_over(&q)); /* 6 < cap - 1 */
  rx_inq_push_spmc(&q, seq_msg(6, 4));
  assert_true(rx_inq_over(&q)); /* 7 == cap - 1: the ring is full */
  assert_null(q.ovf_head);
  rx_inq_push_spmc(&q, seq_msg(7, 4)); /* one window more: the overflow */
  assert_non_null(q.ovf_head);
  assert_true(rx_inq_over(&q));
  assert_int_equal(rx_inq_depth(&q), 8);
  assert_int_equal(pop_seq(&q), 0);
  assert_true(rx_inq_over(&q)); /* still 7 counted (6 in the ring + 1 overflow) */
  assert_int_equal(pop_seq(&q), 1);
  assert_false(rx_inq_over(&q));
  rx_inq_refill_spmc(&q);
  assert_null(q.ovf_head);
  assert_int_equal(rx_inq_destroy(&q), 6);
}

static void test_inq_over_by_bytes(void **state) {
  (void)state;
  rx_inq_t q;
  assert_ok(rx_inq_init(&q, 64, 100));
  rx_inq_push_spmc(&q, seq_msg(1, 60));
  assert_false(rx_inq_over(&q));
  rx_inq_push_spmc(&q, seq_msg(2, 39));
  assert_int_equal(rx_inq_bytes(&q), 99);
  assert_false(rx_inq_over(&q));
  rx_inq_push_spmc(&q, seq_msg(3, 4));
  assert_int_equal(rx_inq_bytes(&q), 103);
  assert_true(rx_inq_over(&q));
  assert_int_equal(pop_seq(&q), 1);
  assert_int_equal(rx_inq_bytes(&q), 43);
  assert_false(rx_inq_over(&q));
  rx_inq_push_spmc(&q, seq_msg(4, 57));
  assert_int_equal(rx_inq_bytes(&q), 100);
  assert_true(rx_inq_over(&q)); /* bytes >= max_bytes */
  assert_int_equal(rx_inq_destroy(&q), 3);
}

static void test_inq_destroy_frees_all(void **state) {
  (void)state;
  rx_inq_t q;
  assert_ok(rx_inq_init(&q, 16, 1u << 20));
  for (uint32_t i = 0; i < 100; i++)
    rx_inq_push_spmc(&q, seq_msg(i, 32));
  assert_int_equal(pop_seq(&q), 0);
  assert_int_equal(rx_inq_destroy(&q), 99); /* ring and overflow; ASan checks leaks */
  assert_null(q.buf);
}

/* ---------------------------------------------------- tentative buffer */

static rx_msg_t *tent_msg(uint32_t seq, size_t len) {
  uint8_t buf[256] = {0};
  assert_true(len >= 4 && len <= sizeof(buf));
  bn_store_be32(buf, seq);
  rx_msg_t *m = rx_msg_new(buf, len, NULL);
  assert_non_null(m);
  return m;
}

/* Takes the list, checks it holds exactly seqs[0..n), frees it. */
static void take_expect(rx_tentative_buf_t *t, const uint32_t *seqs, size_t n) {
  rx_msg_t *m = rx_tentative_take(t);
  assert_null(t->head);
  assert_null(t->tail);
  assert_int_equal(t->count, 0);
  assert_int_equal(t->bytes, 0);
  assert_null(rx_tentative_take(t));
  size_t i = 0;
  while (m != NULL) {
    rx_msg_t *next = m->next;
    assert_true(i < n);
    assert_int_equal(bn_load_be32(m->data), seqs[i]);
    assert_string_equal(m->from, "");
    i++;
    rx_msg_free(m);
    m = next;
  }
  assert_int_equal(i, n);
}

static void test_tentative_by_count(void **state) {
  (void)state;
  rx_tentative_buf_t t;
  rx_tentative_init(&t, 3, 1u << 20);
  for (uint32_t i = 1; i <= 10; i++)
    rx_tentative_push(&t, tent_msg(i, 10));
  assert_int_equal(t.count, 3);
  assert_int_equal(t.bytes, 30);
  assert_int_equal(t.evicted, 7);
  static const uint32_t want[] = {8, 9, 10};
  take_expect(&t, want, 3);
  assert_int_equal(t.evicted, 7); /* take is not eviction */
  /* Usable again after take. */
  rx_tentative_push(&t, tent_msg(11, 10));
  static const uint32_t want2[] = {11};
  take_expect(&t, want2, 1);
  rx_tentative_free(&t);
}

static void test_tentative_by_bytes(void **state) {
  (void)state;
  rx_tentative_buf_t t;
  rx_tentative_init(&t, 100, 100);
  rx_tentative_push(&t, tent_msg(1, 40));
  rx_tentative_push(&t, tent_msg(2, 40));
  rx_tentative_push(&t, tent_msg(3, 20)); /* exactly 100: kept */
  assert_int_equal(t.bytes, 100);
  assert_int_equal(t.evicted, 0);
  rx_tentative_push(&t, tent_msg(4, 50)); /* evicts 1 and 2 */
  assert_int_equal(t.bytes, 70);
  assert_int_equal(t.count, 2);
  assert_int_equal(t.evicted, 2);
  rx_tentative_push(&t, tent_msg(5, 4));
  static const uint32_t want[] = {3, 4, 5};
  take_expect(&t, want, 3);
  rx_tentative_free(&t);
}

static void test_tentative_single_too_big(void **state) {
  (void)state;
  rx_tentative_buf_t t;
  rx_tentative_init(&t, 10, 100);
  rx_tentative_push(&t, tent_msg(1, 30));
  rx_tentative_push(&t, tent_msg(2, 101)); /* can never fit: evicted alone, at once */
  assert_int_equal(t.evicted, 1);
  assert_int_equal(t.count, 1);
  assert_int_equal(t.bytes, 30);
  rx_tentative_push(&t, tent_msg(3, 100)); /* fits alone: evicts 1 */
  assert_int_equal(t.evicted, 2);
  static const uint32_t want[] = {3};
  take_expect(&t, want, 1);

  /* No room at all. */
  rx_tentative_buf_t z;
  rx_tentative_init(&z, 0, 100);
  rx_tentative_push(&z, tent_msg(1, 4));
  assert_int_equal(z.evicted, 1);
  take_expect(&z, NULL, 0);
  rx_tentative_free(&z);
  rx_tentative_free(&t);
}

/* The classes share one buffer: an eviction is counted in the class of
 * the message it drops, whichever class pushed; evicting everything (the
 * TentativeReceiver goes) counts the rest in theirs. */
static void test_tentative_evicted_per_class(void **state) {
  (void)state;
  rx_tentative_buf_t t;
  rx_tentative_init(&t, 4, 100);
  static const uint8_t cls[] = {0, 1, 1, 2, 0, 0, 1};
  for (uint32_t i = 0; i < sizeof cls; i++) {
    rx_msg_t *m = tent_msg(i + 1, 10);
    m->cls = cls[i];
    rx_tentative_push(&t, m);
  }
  /* 1 (class 0), 2 and 3 (class 1) are gone; 4..7 kept. */
  assert_int_equal(t.evicted, 3);
  assert_int_equal(t.evicted_cls[0], 1);
  assert_int_equal(t.evicted_cls[1], 2);
  assert_int_equal(t.evicted_cls[2], 0);
  rx_msg_t *big = tent_msg(8, 101); /* never fits: evicted alone, in its class */
  big->cls = 7;
  rx_tentative_push(&t, big);
  assert_int_equal(t.evicted_cls[7], 1);
  rx_tentative_evict_all(&t);
  assert_int_equal(t.count, 0);
  assert_int_equal(t.bytes, 0);
  assert_null(t.head);
  assert_int_equal(t.evicted, 8);
  assert_int_equal(t.evicted_cls[0], 3);
  assert_int_equal(t.evicted_cls[1], 3);
  assert_int_equal(t.evicted_cls[2], 1);
  uint64_t sum = 0;
  for (unsigned k = 0; k < BFTNET_MAX_CLASSES; k++)
    sum += t.evicted_cls[k];
  assert_int_equal(sum, t.evicted);
  take_expect(&t, NULL, 0);
  rx_tentative_free(&t);
}

static void test_tentative_free_frees_all(void **state) {
  (void)state;
  rx_tentative_buf_t t;
  rx_tentative_init(&t, 50, 1000);
  for (uint32_t i = 0; i < 200; i++)
    rx_tentative_push(&t, tent_msg(i, 4 + i % 30));
  assert_true(t.count <= 50 && t.bytes <= 1000);
  rx_tentative_free(&t); /* ASan checks leaks */
  assert_null(t.head);
  assert_int_equal(t.count, 0);
  take_expect(&t, NULL, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_msg_inline_from),
      cmocka_unit_test(test_deframer_whole_is_zero_copy),
      cmocka_unit_test(test_deframer_random_splits),
      cmocka_unit_test(test_deframer_header_splits),
      cmocka_unit_test(test_deframer_too_big_before_alloc),
      cmocka_unit_test(test_deframer_max_exact),
      cmocka_unit_test(test_deframer_bad_varints),
      cmocka_unit_test(test_deframer_skips_oversized),
      cmocka_unit_test(test_deframer_free_partial),
      cmocka_unit_test(test_inq_init_args),
      cmocka_unit_test(test_inq_fifo_across_overflow),
      cmocka_unit_test(test_inq_batch_pop),
      cmocka_unit_test(test_inq_over_by_count),
      cmocka_unit_test(test_inq_over_by_bytes),
      cmocka_unit_test(test_inq_destroy_frees_all),
      cmocka_unit_test(test_tentative_by_count),
      cmocka_unit_test(test_tentative_by_bytes),
      cmocka_unit_test(test_tentative_single_too_big),
      cmocka_unit_test(test_tentative_evicted_per_class),
      cmocka_unit_test(test_tentative_free_frees_all),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
