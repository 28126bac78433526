/* mig_ring_test.c — the retransmit ring of a logical stream
 * (migration/src/sm.c: ring_reserve, ring_put, mig_sm_span,
 * mig_sm_write, mig_sm_pull, mig_release).
 *
 * The leader's side of one stream writes a known byte sequence (byte x of
 * the stream is seq(x)) in random pieces up to the room, pulls it in random
 * pieces, and the peer confirms random amounts (credit), so the window
 * moves through the ring many times over. Checked against a model of the
 * offsets kept by the test: every pulled byte is seq() of its offset, a
 * chunk is as long as asked unless it stops at the end of the ring (the
 * contract), every held byte is readable through mig_sm_span (in one
 * piece or two across the wrap point), w_base/w_confirmed/w_written follow
 * the model. Also: growth (16 KiB doubling up to the window) while the held
 * bytes straddle the end of the ring, several doublings in one write,
 * all-or-nothing writes beyond the room, and resends from an older offset
 * after a resume (detach, Migrate, AckMigrate with a read offset below what
 * was sent) and after a graceful migration. Seeded (th_seed). */
#include "harness.h"
#include "mig_core.h"

#define RING_MIN (16u * 1024u)
#define WIN_MAX  (256u * 1024u)

static uint8_t seq(uint64_t x) {
  return (uint8_t)((x * 0x9E3779B97F4A7C15ull) >> 56);
}

typedef struct rt {
  mig_reg_t lead;
  mig_actions_t acts;
  mig_sm_t *s;
  uint64_t rng;
  uint64_t next_h;
  /* the model */
  uint64_t h;         /* current carrier (0: detached) */
  uint64_t written;   /* bytes written */
  uint64_t pos;       /* next offset to be pulled on h */
  uint64_t out_start; /* offset of h's first byte */
  uint64_t credited;  /* bytes the peer credited on h */
  uint64_t confirmed; /* bytes the peer confirmed */
  uint64_t sent_max;  /* highest offset ever pulled */
  /* what was exercised */
  uint64_t pulls, chunks_at_end, spans_wrapped, grew_wrapped, resumes, graceful, resent;
  uint8_t buf[WIN_MAX + 1];
} rt_t;

static rt_t *R;

static uint64_t rnd(void) { return th_rnd(&R->rng); }
static uint64_t below(uint64_t n) {
  return n ? rnd() % n : 0;
}
/* Uniform in [0, n], often small. */
static uint64_t upto(uint64_t n) {
  if (rnd() % 4 == 0) return below(BN_MIN(n, (uint64_t)64) + 1);
  return below(n + 1);
}

static void rt_open(uint64_t window_max, uint64_t salt) {
  peerid_t a = {.len = 4, .bytes = {1, 2, 3, 4}}, b = {.len = 4, .bytes = {1, 2, 3, 5}};
  bool a_leads = mig_self_is_leader(&a, &b);
  mig_reg_config_t cfg = {.self = a_leads ? a : b,
                      .peer = a_leads ? b : a,
                      .incarnation = 11,
                      .detach_timeout = 1000,
                      .window_max = window_max};
  uint64_t seed = th_seed();
  R = calloc(1, sizeof(*R));
  assert_non_null(R);
  R->rng = th_rng_init(seed + salt);
  assert_ok(mig_reg_init(&R->lead, &cfg));
  /* The peer confirms with yamux credit (an older peer, PROTOCOL.md §11.11). */
  assert_ok(mig_reg_set_mode(&R->lead, MIG_MODE_LEGACY, &R->acts));
  assert_true(R->lead.leader);
  R->h = 1;
  R->next_h = 2;
  assert_ok(mig_reg_open(&R->lead, R->h, &R->acts, &R->s));
  assert_ok(mig_sm_on_echo(&R->lead, R->s, &R->acts));
  assert_int_equal(R->s->state, MIG_S_OPEN);
  assert_null(R->s->ring); /* allocated on the first write */
  mig_actions_clear(&R->acts);
}

static void rt_close(void) {
  mig_reg_free(&R->lead);
  free(R);
  R = NULL;
}

/* The stream agrees with the model. */
static void rt_check_state(void) {
  mig_sm_t *s = R->s;
  assert_int_equal(s->w_written, R->written);
  assert_int_equal(s->w_confirmed, R->confirmed);
  assert_int_equal(s->w_base, R->confirmed); /* credits never pass what was sent on h */
  assert_int_equal(mig_sm_window(s), R->written - R->confirmed);
  assert_int_equal(s->w_sent_max, R->sent_max);
  if (R->h) {
    assert_int_equal(s->cur.h, R->h);
    assert_int_equal(s->cur.out_start + s->cur.out_sent, R->pos);
  }
  size_t cap = s->ring_cap;
  if (cap) {
    assert_true((cap & (cap - 1)) == 0);
    assert_true(cap >= RING_MIN && cap >= mig_sm_window(s));
    assert_true(cap <= R->lead.cfg.window_max * 2); /* doubling past the window at most once */
  }
}

/* Every held byte through mig_sm_span, from w_base and from a random
 * offset: pieces end only at the end of the ring. */
static void rt_check_window(void) {
  mig_sm_t *s = R->s;
  const uint8_t *p;
  assert_int_equal(mig_sm_span(s, R->written, &p), 0);
  assert_null(p);
  if (R->written == R->confirmed) return;
  size_t cap = s->ring_cap, pieces = 0;
  for (uint64_t x = R->confirmed; x < R->written; pieces++) {
    size_t n = mig_sm_span(s, x, &p);
    size_t at = (size_t)(x & (cap - 1));
    assert_int_equal(n, BN_MIN(R->written - x, (uint64_t)(cap - at)));
    for (size_t i = 0; i < n; i++)
      if (p[i] != seq(x + i))
        fail_msg("span from %llu: byte %llu is %u, want %u", (unsigned long long)x,
                 (unsigned long long)(x + i), p[i], seq(x + i));
    x += n;
  }
  assert_true(pieces == 1 || pieces == 2);
  if (pieces == 2) R->spans_wrapped++;
  uint64_t from = R->confirmed + below(R->written - R->confirmed + 1);
  size_t n = mig_sm_span(s, from, &p);
  assert_int_equal(n, BN_MIN(R->written - from, (uint64_t)(cap - (size_t)(from & (cap - 1)))));
  for (size_t i = 0; i < n; i++)
    assert_int_equal(p[i], seq(from + i));
}

/* Writes k bytes of the sequence (k <= room). */
static void rt_write_n(uint64_t k) {
  mig_sm_t *s = R->s;
  assert_true(k <= mig_sm_room(&R->lead, s));
  for (uint64_t i = 0; i < k; i++)
    R->buf[i] = seq(R->written + i);
  size_t cap0 = s->ring_cap;
  uint64_t held0 = R->written - R->confirmed;
  bool wrapped0 = cap0 && held0 && (R->confirmed & (cap0 - 1)) + held0 > cap0;
  assert_ok(mig_sm_write(&R->lead, s, R->buf, (size_t)k));
  R->written += k;
  if (s->ring_cap != cap0) {
    if (cap0) assert_true(s->ring_cap > cap0);
    if (wrapped0) R->grew_wrapped++;
    rt_check_window(); /* what was held moved intact */
  }
  rt_check_state();
}

/* A random write up to the room (bounded by hold_max bytes held); now and
 * then one byte over the room, refused without a trace. */
static void rt_write(uint64_t hold_max) {
  uint64_t room = mig_sm_room(&R->lead, R->s);
  uint64_t held = R->written - R->confirmed;
  if (rnd() % 16 == 0 && room < sizeof(R->buf)) {
    size_t cap0 = R->s->ring_cap;
    assert_err(mig_sm_write(&R->lead, R->s, R->buf, (size_t)room + 1), BFTNET_EAGAIN);
    assert_int_equal(R->s->ring_cap, cap0);
    rt_check_state();
    return;
  }
  uint64_t lim = held >= hold_max ? 0 : BN_MIN(room, hold_max - held);
  rt_write_n(upto(lim));
}

/* A pull with a random max: the chunk starts at the model's position,
 * holds seq() of its offsets, and stops early only at the end of the ring. */
static void rt_pull(void) {
  mig_sm_t *s = R->s;
  size_t cap = s->ring_cap;
  size_t max =
      rnd() % 3 == 0 ? (size_t)below(100) : (size_t)below(2 * (uint64_t)(cap ? cap : RING_MIN));
  mig_chunk_t c;
  memset(&c, 0, sizeof(c));
  int rc = mig_sm_pull(&R->lead, s, max, &c, &R->acts);
  uint64_t avail = R->written - R->pos;
  if (!R->h || avail == 0 || max == 0) {
    assert_int_equal(rc, 0);
    rt_check_state();
    return;
  }
  assert_int_equal(rc, 1);
  size_t at = (size_t)(R->pos & (cap - 1));
  size_t want = (size_t)BN_MIN(BN_MIN((uint64_t)max, avail), (uint64_t)(cap - at));
  assert_int_equal(c.carrier, R->h);
  assert_false(c.fin);
  assert_int_equal(c.n, want);
  for (size_t i = 0; i < c.n; i++)
    if (c.p[i] != seq(R->pos + i))
      fail_msg("pull at %llu: byte %llu is %u, want %u (ring %zu)", (unsigned long long)R->pos,
               (unsigned long long)(R->pos + i), c.p[i], seq(R->pos + i), cap);
  if (at + c.n == cap && c.n < BN_MIN((uint64_t)max, avail)) R->chunks_at_end++;
  if (R->pos < R->sent_max) R->resent += BN_MIN((uint64_t)c.n, R->sent_max - R->pos);
  R->pos += c.n;
  if (R->pos > R->sent_max) R->sent_max = R->pos;
  R->pulls++;
  rt_check_state();
}

/* The peer confirms a random part of what it received on h. */
static void rt_confirm(void) {
  if (!R->h) return;
  uint64_t k = upto(R->pos - R->out_start - R->credited);
  assert_ok(mig_reg_on_credit(&R->lead, R->h, k, &R->acts));
  R->credited += k;
  if (R->out_start + R->credited > R->confirmed) R->confirmed = R->out_start + R->credited;
  rt_check_state();
}

/* The Ack of the pending Migrate on h2, with read offset r. */
static void rt_ack(uint64_t h2, uint64_t r) {
  mig_msg_t m = {.type = MIG_MSG_ACK,
                 .has_incarnation = true,
                 .incarnation = 22,
                 .has_read_offset = true,
                 .read_offset = r};
  assert_ok(mig_reg_on_msg(&R->lead, h2, &m, 0, &R->acts, NULL));
  assert_int_equal(R->s->cur.h, h2);
  R->h = h2;
  R->pos = R->out_start = r;
  R->credited = 0;
  R->confirmed = r;
}

/* The carrier dies; writes and pulls while detached; resume on a new
 * carrier from a read offset between what was confirmed and what was sent. */
static void rt_resume(uint64_t hold_max) {
  assert_ok(mig_reg_on_lost(&R->lead, R->h, 0, &R->acts));
  assert_int_equal(R->s->state, MIG_S_DETACHED);
  R->h = 0;
  rt_check_window();
  for (int i = 0; i < 3; i++) {
    rt_write(hold_max);
    rt_pull(); /* nothing to pull while detached */
  }
  uint64_t h2 = R->next_h++;
  assert_ok(mig_sm_migrate(&R->lead, R->s, h2, &R->acts));
  rt_pull(); /* nor while the Migrate awaits its Ack */
  rt_ack(h2, R->confirmed + below(R->sent_max - R->confirmed + 1));
  assert_int_equal(R->s->state, MIG_S_OPEN);
  R->resumes++;
  rt_check_state();
  rt_check_window();
}

/* A graceful migration: pulls and credits go on on the old carrier until
 * the Ack; the new carrier starts at the Ack's read offset. */
static void rt_migrate(uint64_t hold_max) {
  uint64_t h1 = R->h, h2 = R->next_h++;
  assert_ok(mig_sm_migrate(&R->lead, R->s, h2, &R->acts));
  assert_int_equal(R->s->state, MIG_S_MIGRATING);
  for (int i = 0; i < 4; i++) {
    rt_write(hold_max);
    rt_pull();
    rt_confirm();
  }
  rt_ack(h2, R->confirmed + below(R->sent_max - R->confirmed + 1));
  assert_ok(mig_reg_on_fin(&R->lead, h1, &R->acts)); /* the old carrier drained */
  assert_int_equal(R->s->state, MIG_S_OPEN);
  R->graceful++;
  rt_check_state();
  rt_check_window();
}

/* One random step; hold_max bounds the bytes held (to keep the ring size). */
static void rt_step(uint64_t hold_max, bool migrations) {
  unsigned r = (unsigned)(rnd() % 100);
  if (r < 35)
    rt_write(hold_max);
  else if (r < 70)
    rt_pull();
  else if (r < 92)
    rt_confirm();
  else if (r < 97 || !migrations)
    rt_check_window();
  else if (r < 99)
    rt_resume(hold_max);
  else
    rt_migrate(hold_max);
  mig_actions_clear(&R->acts);
}

/* Everything out and confirmed, both directions closed: CLOSED, ring freed. */
static void rt_finish(void) {
  mig_sm_t *s = R->s;
  assert_ok(mig_sm_close(&R->lead, s, &R->acts));
  mig_chunk_t c;
  for (;;) {
    assert_int_equal(mig_sm_pull(&R->lead, s, SIZE_MAX, &c, &R->acts), 1);
    for (size_t i = 0; i < c.n; i++)
      assert_int_equal(c.p[i], seq(R->pos + i));
    R->pos += c.n;
    if (c.fin) break;
  }
  assert_int_equal(R->pos, R->written);
  assert_ok(mig_reg_on_fin(&R->lead, R->h, &R->acts));
  assert_ok(mig_reg_on_credit(&R->lead, R->h, R->pos - R->out_start - R->credited, &R->acts));
  assert_int_equal(s->state, MIG_S_CLOSED);
  assert_null(s->ring);
  assert_ok(mig_reg_sm_free(&R->lead, s));
}

/* ------------------------------------------------------------------ */

static void test_ring_wrap_and_growth(void **state) {
  (void)state;
  rt_open(WIN_MAX, 0);
  /* 1. At most 12 KiB held: the ring stays 16 KiB while the window goes
   * round it at least 64 times. */
  for (uint64_t i = 0; R->written < 64u * RING_MIN || R->chunks_at_end < 20; i++) {
    assert_true(i < 10000000);
    rt_step(12u * 1024u, false);
    assert_true(R->s->ring_cap == 0 || R->s->ring_cap == RING_MIN); /* 0 until the first write */
  }
  assert_int_equal(R->s->ring_cap, RING_MIN);
  assert_true(R->spans_wrapped > 0);

  /* 2. Growth while the held bytes straddle the end of the ring: bring the
   * window to a wrapped state holding over a quarter of the ring, then
   * write past the capacity. 16 -> 32 -> 64 -> 128 -> 256 KiB. */
  for (size_t cap = RING_MIN; cap < WIN_MAX; cap *= 2) {
    assert_int_equal(R->s->ring_cap, cap);
    for (uint64_t i = 0;; i++) {
      assert_true(i < 10000000);
      uint64_t held = R->written - R->confirmed;
      if (held > cap / 4 && (R->confirmed & (cap - 1)) + held > cap) break;
      rt_step(cap - 1024, false);
      assert_int_equal(R->s->ring_cap, cap);
    }
    uint64_t held = R->written - R->confirmed, g0 = R->grew_wrapped;
    rt_write_n(cap - held + 1 + below(cap - 1)); /* one doubling */
    assert_int_equal(R->s->ring_cap, 2 * cap);
    assert_int_equal(R->grew_wrapped, g0 + 1);
    for (int i = 0; i < 2000; i++)
      rt_step(2 * cap, false); /* go on in the larger ring */
  }
  assert_int_equal(R->s->ring_cap, WIN_MAX);

  /* 3. The full window, with resumes and graceful migrations resending
   * from older offsets, for 16 times the ring. */
  uint64_t start = R->written;
  for (uint64_t i = 0; R->written - start < 16u * WIN_MAX || R->resumes < 20 || R->graceful < 10;
       i++) {
    assert_true(i < 20000000);
    rt_step(WIN_MAX, true);
  }
  assert_int_equal(R->s->ring_cap, WIN_MAX); /* never beyond the window */
  assert_true(R->resent > 0);
  fprintf(stderr,
          "ring: %llu bytes written, %llu pulls (%llu stopped at the ring's end), %llu wrapped "
          "windows read, %llu growths while wrapped, %llu resumes + %llu migrations resent %llu "
          "bytes\n",
          (unsigned long long)R->written, (unsigned long long)R->pulls,
          (unsigned long long)R->chunks_at_end, (unsigned long long)R->spans_wrapped,
          (unsigned long long)R->grew_wrapped, (unsigned long long)R->resumes,
          (unsigned long long)R->graceful, (unsigned long long)R->resent);
  rt_finish();
  rt_close();
}

/* Several doublings in one write, from a wrapped 16 KiB ring; and a resume
 * whose resend starts before the wrap point of the grown ring. */
static void test_ring_multi_doubling(void **state) {
  (void)state;
  for (int round = 0; round < 50; round++) {
    rt_open(WIN_MAX, 1000 + (uint64_t)round);
    rt_write_n(10000);
    rt_pull();
    while (R->pos < R->written)
      rt_pull();
    rt_confirm();
    /* wrapped: offsets (10000 .. 10000 + 12000] straddle 16384 */
    uint64_t skip = 10000 - R->confirmed;
    assert_ok(mig_reg_on_credit(&R->lead, R->h, skip, &R->acts));
    R->credited += skip;
    R->confirmed = 10000;
    rt_write_n(12000);
    while (R->pos < R->written)
      rt_pull();
    assert_int_equal(R->s->ring_cap, RING_MIN);
    rt_check_window();
    uint64_t big = 60000 + below(WIN_MAX - 12000 - 60000 + 1);
    rt_write_n(big); /* 16 KiB -> 128 or 256 KiB at once */
    uint64_t need = 12000 + big, want = RING_MIN;
    while (want < need)
      want *= 2;
    assert_int_equal(R->s->ring_cap, want);
    assert_int_equal(R->grew_wrapped, 1);
    /* The peer read only part of what was sent before the growth. */
    assert_ok(mig_reg_on_lost(&R->lead, R->h, 0, &R->acts));
    R->h = 0;
    uint64_t h2 = R->next_h++;
    assert_ok(mig_sm_migrate(&R->lead, R->s, h2, &R->acts));
    rt_ack(h2, 10000 + below(12000 + 1));
    uint64_t resend_from = R->pos;
    while (R->pos < R->written)
      rt_pull();
    assert_true(R->pos - resend_from >= big);
    rt_finish();
    rt_close();
  }
}

/* After migrations the stream answers to its current ID and its aliases,
 * and to nothing else: the initiator side once also matched ID 0 (the
 * responder-only `pinned` field, unset, compared equal to it), and 0 is a
 * real ID (the lower peer's first), so another stream's events landed on
 * this one. */
static void test_find_after_migration(void **state) {
  (void)state;
  rt_open(64 * 1024, 3);
  /* The stream under test must not own the leader's first ID: that one goes
   * to a stream opened first and gone since, so that no stream has it. */
  mig_sm_t *first = R->s;
  uint64_t first_id = first->id;
  R->h = R->next_h++;
  assert_ok(mig_reg_open(&R->lead, R->h, &R->acts, &R->s));
  assert_ok(mig_sm_on_echo(&R->lead, R->s, &R->acts));
  assert_ok(mig_sm_abort(&R->lead, first, &R->acts));
  assert_ok(mig_reg_sm_free(&R->lead, first));
  mig_actions_clear(&R->acts);
  assert_null(mig_reg_find(&R->lead, first_id));
  for (int k = 0; k < 3; k++) {
    rt_migrate(8 * 1024);
    for (uint64_t id = 0; id < 64; id++) {
      bool mine = id == R->s->id;
      for (size_t i = 0; i < BN_MIN(R->s->n_alias, (size_t)MIG_MAX_ALIASES); i++)
        if (R->s->aliases[i] == id) mine = true;
      if (mine) assert_ptr_equal(mig_reg_find(&R->lead, id), R->s);
      else if (mig_reg_find(&R->lead, id) == R->s)
        fail_msg("after %d migration(s), ID %llu (not the stream's) finds it", k + 1, (unsigned long long)id);
    }
  }
  rt_finish();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ring_wrap_and_growth),
      cmocka_unit_test(test_ring_multi_doubling),
      cmocka_unit_test(test_find_after_migration),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
