/* dispatcher_blog_mt_test.c — the broadcast log (disp_blog_t) merged with
 * the per-member rings by the framer, under real threads (run under
 * ThreadSanitizer by scripts/test.sh, label "threads").
 *
 * The library's usage (dispatcher/src/member.c: disp_send,
 * disp_broadcast, disp_blog_advance), reproduced: 3 producer threads call
 * "send" (msg->bseq = the log's head, then push into one member's
 * ring) and "broadcast" (push into the log; when it is full, one message
 * with refs = members and bseq = head goes into every ring); one consumer
 * thread (the loop) drains both members' framers into writers that parse
 * the framed stream (uvarint(len) || bytes), taking all, part or none of
 * what they are offered, and then advances the log as blog_advance does
 * (release up to the slowest cursor; trim cursors more than ring_capacity
 * behind once the log is seven-eighths full).
 *
 * Every message carries (producer, the producer's operation counter, kind).
 * Checked for each member that is read: per producer the counters arrive
 * strictly increasing (a producer's sends and broadcasts in the order it
 * made them), every message addressed to the member arrives exactly once
 * (a bitmap compared with each producer's record of its operations), none
 * addressed to the other member arrives, payload bytes intact, the
 * framers' and rings' counters agree. Refcounts: one message in 32 carries
 * an extra reference held by its producer, which must be the only one left
 * at the end; malloc/free are counted through --wrap and every message
 * must be freed once the consumer is done (before anything is destroyed).
 *
 * Cases: a large log (the normal path, no drops); a log of 4 entries
 * (broadcasts fall back to the rings often, both paths asserted taken); a
 * member whose writer never takes a byte, with a log of 128 (its cursor is
 * trimmed) and of 64 (its cursor pins the log: every broadcast falls back
 * to the rings) — member 0 still gets everything in order, member 1's
 * messages are accounted for exactly (dropped by its ring or by trim, or
 * still queued at the end), nothing leaks.
 *
 * Bounded: OPS operations per producer and a wall-clock budget per case
 * (BFTNET_TEST_QUICK: shorter); producers waiting for room give up at the
 * deadline; the consumer gives up (and fails) DRAIN_NS after it. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "count_alloc.h"
#include "dispatcher.h"
#include "harness.h"

enum {
  PRODUCERS = 3,
  MEMBERS = 2,
  OPS = 200000,       /* per producer, at most */
  KEEP_EVERY = 32,    /* the producer keeps a reference to one message in 32 */
  HDR = 16,           /* pid, counter, kind, pad, check word */
  MSG_MAX = 24 * 1024 /* larger than the framer's direct-write threshold */
};
enum { K_SEND0 = 0, K_SEND1 = 1, K_BCAST = 2 };

#define RUN_NS       (4000000000ull)
#define RUN_NS_QUICK (2000000000ull)
#define DRAIN_NS     (30000000000ull)

/* -------------------------------------------------------------- helpers */

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t run_budget_ns(void) {
  return getenv("BFTNET_TEST_QUICK") ? RUN_NS_QUICK : RUN_NS;
}

static uint32_t refs_of(disp_msg_t *m) {
  return ck_pr_load_32(&m->refs);
}

static bool addressed(int member, uint8_t kind) {
  return kind == K_BCAST || kind == (uint8_t)member;
}

static uint32_t check_word(uint32_t pid, uint32_t ctr, uint32_t kind, uint32_t len) {
  return (pid * 0x9E3779B1u) ^ (ctr * 0x85EBCA77u) ^ (kind << 24) ^ len ^ 0x5A5A0000u;
}

static uint8_t filler(uint32_t pid, uint32_t ctr, size_t i) {
  return (uint8_t)(ctr * 31u + (uint32_t)i * 7u + pid * 101u + (uint32_t)(i >> 8));
}

static size_t payload_fill(uint8_t *b, uint32_t pid, uint32_t ctr, uint8_t kind, uint64_t *rng) {
  uint64_t x = th_rnd(rng);
  size_t len;
  if (x % 4096 == 0)
    len = 16384 + (x >> 16) % 4000; /* the framer's direct path */
  else if (x % 64 == 1)
    len = 100 + (x >> 16) % 1900;
  else
    len = HDR + (x >> 16) % 48;
  bn_store_be32(b, pid);
  bn_store_be32(b + 4, ctr);
  b[8] = kind;
  b[9] = b[10] = b[11] = 0;
  bn_store_be32(b + 12, check_word(pid, ctr, kind, (uint32_t)len));
  for (size_t i = HDR; i < len; i++)
    b[i] = filler(pid, ctr, i);
  return len;
}

/* ------------------------------------------------------------ the setup */

typedef struct blog_case {
  const char *name;
  uint32_t ring_cap, log_cap;
  uint32_t depth_hi;   /* producers wait while a read member's ring is this deep */
  uint32_t backlog_hi; /* ... or its framer's backlog this high (0: never) */
  bool dead1;          /* member 1's writer never takes a byte */
} blog_case_t;

struct run;

typedef struct producer {
  pthread_t tid;
  struct run *run;
  uint32_t id;
  uint64_t rng;
  uint8_t *kinds;    /* kinds[ctr]: what operation ctr was */
  disp_msg_t **kept; /* the producer's own reference to every KEEP_EVERY-th */
  uint32_t ops;
  uint64_t sends[MEMBERS], bcasts, log_pushes, fallbacks, waits;
  bool deadline_hit;
} producer_t;

/* One member's receiving side: a parser of the framed stream that keeps
 * its state across write calls (writes split messages anywhere). */
typedef struct member_rx {
  struct run *run;
  int id;
  bool dead;
  uint64_t hdr_val;
  unsigned hdr_shift;
  bool in_body, broken;
  uint32_t body_len, body_got;
  uint64_t last[PRODUCERS]; /* last counter + 1 seen (0: none) */
  uint8_t *seen[PRODUCERS]; /* bitmaps over counters */
  uint64_t received, bytes, writes, partial, blocked;
  uint8_t body[MSG_MAX];
} member_rx_t;

typedef struct run {
  const blog_case_t *cfg;
  disp_ring_t rings[MEMBERS];
  disp_framer_t framers[MEMBERS];
  disp_blog_t blog;
  member_rx_t rx[MEMBERS];
  uint64_t deadline;
  atomic_int producers_done;
  uint64_t rng; /* the consumer's (writers' choices) */
  uint64_t iters, trims, trimmed;
  char error[256]; /* the consumer's first violation, reported by the main thread */
} run_t;

static void run_fail(run_t *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void run_fail(run_t *run, const char *fmt, ...) {
  if (run->error[0]) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(run->error, sizeof(run->error), fmt, ap);
  va_end(ap);
  if (!run->error[0]) run->error[0] = '?';
}

/* ------------------------------------------------------------ producers */

/* Backpressure, as an application would: wait while a member that is read
 * has a deep ring or a long log backlog. Each producer checks right before
 * each operation, so a ring or backlog exceeds the mark by at most one
 * operation per producer: the sizes below make drops impossible for read
 * members. False at the deadline. */
static bool producer_wait_room(producer_t *p) {
  run_t *run = p->run;
  const blog_case_t *cfg = run->cfg;
  for (unsigned spins = 0;; spins++) {
    bool room = true;
    for (int m = 0; m < MEMBERS && room; m++) {
      if (m == 1 && cfg->dead1) continue;
      if (disp_ring_depth(&run->rings[m]) >= cfg->depth_hi) room = false;
      if (cfg->backlog_hi && disp_framer_backlog(&run->framers[m]) >= cfg->backlog_hi) room = false;
    }
    if (room) return true;
    if (spins == 0) p->waits++;
    if (now_ns() >= run->deadline) return false;
    sched_yield();
  }
}

static void *producer_thread(void *arg) {
  producer_t *p = arg;
  run_t *run = p->run;
  static _Thread_local uint8_t buf[MSG_MAX];
  for (uint32_t ctr = 0; ctr < OPS; ctr++) {
    if (ctr % 64 == 0 && now_ns() >= run->deadline) {
      p->deadline_hit = true;
      break;
    }
    uint64_t x = th_rnd(&p->rng);
    if (x % 128 == 0) sched_yield(); /* interleave the producers more finely */
    uint8_t kind = (uint8_t)((x >> 8) % 3);
    if (!producer_wait_room(p)) {
      p->deadline_hit = true;
      break;
    }
    size_t len = payload_fill(buf, p->id, ctr, kind, &p->rng);
    bool keep = ctr % KEEP_EVERY == 0;
    p->kinds[ctr] = kind;
    disp_msg_t *m = disp_msg_new(NULL, buf, len, 1 + keep);
    if (m == NULL) abort(); /* no cmocka off the main thread */
    if (keep) p->kept[ctr / KEEP_EVERY] = m;
    if (kind != K_BCAST) { /* bftnet_send */
      m->bseq = disp_blog_head(&run->blog);
      disp_ring_push_mpmc(&run->rings[kind], m);
      p->sends[kind]++;
    } else if (disp_blog_push(&run->blog, m, 0)) { /* bftnet_broadcast */
      p->bcasts++;
      p->log_pushes++;
    } else { /* the log is full: into every ring, behind the log's entries */
      m->refs = MEMBERS + keep;
      m->bseq = disp_blog_head(&run->blog);
      for (int i = 0; i < MEMBERS; i++)
        disp_ring_push_mpmc(&run->rings[i], m);
      p->bcasts++;
      p->fallbacks++;
    }
    p->ops = ctr + 1;
  }
  return NULL;
}

/* ------------------------------------------------------- the loop thread */

static void rx_message(member_rx_t *r, const uint8_t *b, uint32_t len) {
  run_t *run = r->run;
  if (len < HDR) {
    run_fail(run, "member %d: a message of %u bytes", r->id, len);
    return;
  }
  uint32_t pid = bn_load_be32(b), ctr = bn_load_be32(b + 4);
  uint8_t kind = b[8];
  if (pid >= PRODUCERS || ctr >= OPS || kind > K_BCAST ||
      bn_load_be32(b + 12) != check_word(pid, ctr, kind, len)) {
    run_fail(run, "member %d: bad message header (pid %u ctr %u kind %u len %u)", r->id, pid, ctr,
             kind, len);
    return;
  }
  for (uint32_t i = HDR; i < len; i++) {
    if (b[i] != filler(pid, ctr, i)) {
      run_fail(run, "member %d: payload byte %u of (pid %u ctr %u)", r->id, i, pid, ctr);
      return;
    }
  }
  if (!addressed(r->id, kind)) {
    run_fail(run, "member %d: got (pid %u ctr %u) sent to member %u", r->id, pid, ctr, kind);
    return;
  }
  if (r->seen[pid][ctr / 8] >> (ctr % 8) & 1) {
    run_fail(run, "member %d: (pid %u ctr %u kind %u) received twice", r->id, pid, ctr, kind);
    return;
  }
  r->seen[pid][ctr / 8] |= (uint8_t)(1u << (ctr % 8));
  if (r->last[pid] > ctr) {
    run_fail(run, "member %d: producer %u out of order: ctr %u (kind %u) after %llu", r->id, pid,
             ctr, kind, (unsigned long long)(r->last[pid] - 1));
    return;
  }
  r->last[pid] = (uint64_t)ctr + 1;
  r->received++;
}

static void rx_parse(member_rx_t *r, const uint8_t *p, size_t n) {
  r->bytes += n;
  size_t i = 0;
  while (i < n && !r->broken) {
    if (!r->in_body) {
      uint8_t c = p[i++];
      r->hdr_val |= (uint64_t)(c & 0x7f) << r->hdr_shift;
      r->hdr_shift += 7;
      if (c & 0x80) {
        if (r->hdr_shift >= 35) {
          run_fail(r->run, "member %d: length varint too long", r->id);
          r->broken = true;
        }
        continue;
      }
      if (r->hdr_val > MSG_MAX) {
        run_fail(r->run, "member %d: length %llu", r->id, (unsigned long long)r->hdr_val);
        r->broken = true;
        continue;
      }
      r->body_len = (uint32_t)r->hdr_val;
      r->body_got = 0;
      r->hdr_val = 0;
      r->hdr_shift = 0;
      r->in_body = true;
    }
    size_t k = BN_MIN(n - i, (size_t)(r->body_len - r->body_got));
    memcpy(r->body + r->body_got, p + i, k);
    r->body_got += (uint32_t)k;
    i += k;
    if (r->body_got == r->body_len) {
      rx_message(r, r->body, r->body_len);
      r->in_body = false;
    }
  }
}

/* The writer: takes everything, a random prefix, or nothing (blocked). */
static int rx_write(void *ctx, const uint8_t *p, size_t n) {
  member_rx_t *r = ctx;
  r->writes++;
  if (n == 0) run_fail(r->run, "member %d: a write of 0 bytes", r->id);
  if (r->dead) {
    r->blocked++;
    return 0;
  }
  uint64_t x = th_rnd(&r->run->rng);
  size_t k = n;
  switch (x % 16) {
  case 0:
    r->blocked++;
    return 0;
  case 1:
  case 2:
  case 3:
    k = 1 + (size_t)((x >> 8) % n);
    if (k < n) r->partial++;
    break;
  default:
    break;
  }
  rx_parse(r, p, k);
  return (int)k;
}

/* dispatcher/src/member.c's disp_blog_advance, for two members. */
static void blog_advance(run_t *run) {
  disp_blog_t *l = &run->blog;
  uint64_t h = disp_blog_head(l), lo = h;
  for (int i = 0; i < MEMBERS; i++) {
    disp_framer_blog_skip_foreign(&run->framers[i]);
    lo = BN_MIN(lo, run->framers[i].bcur);
  }
  if (h - lo > l->cap - l->cap / 8) {
    lo = h;
    run->trims++;
    for (int i = 0; i < MEMBERS; i++) {
      run->trimmed += disp_framer_blog_trim(&run->framers[i], run->cfg->ring_cap);
      lo = BN_MIN(lo, run->framers[i].bcur);
    }
  }
  disp_blog_release_to(l, lo);
}

static bool member_idle(run_t *run, int m) {
  disp_framer_t *f = &run->framers[m];
  return disp_ring_depth(&run->rings[m]) == 0 && f->cur == NULL && f->held_len == 0 &&
         f->uni_len == 0 && disp_framer_backlog(f) == 0;
}

static void *consumer_thread(void *arg) {
  run_t *run = arg;
  uint64_t give_up = run->deadline + DRAIN_NS;
  for (;;) {
    bool done = atomic_load(&run->producers_done) == PRODUCERS;
    int progress = 0;
    for (int m = 0; m < MEMBERS; m++) {
      /* A dead member's framer is offered its stream now and then (it
       * fills cur and held, and pulls log entries, then blocks). */
      if (run->rx[m].dead && run->iters % 16 != 0) continue;
      int k = disp_framer_drain(&run->framers[m], &run->rings[m], rx_write, &run->rx[m]);
      if (k < 0)
        run_fail(run, "member %d: drain returned %d", m, k);
      else
        progress += k;
    }
    blog_advance(run);
    run->iters++;
    if (done && member_idle(run, 0) && (run->cfg->dead1 || member_idle(run, 1))) break;
    if (now_ns() >= give_up) {
      run_fail(run, "the consumer did not finish draining in time");
      break;
    }
    if (progress == 0) sched_yield(); /* the loop thread would wait in epoll */
  }
  return NULL;
}

/* ----------------------------------------------------------- the checks */

typedef struct blog_result {
  uint64_t log_pushes, fallbacks;
} blog_result_t;

static blog_result_t run_case(const blog_case_t *cfg) {
  long live0 = th_live_blocks();
  uint64_t seed = th_seed();
  run_t *run = calloc(1, sizeof(*run));
  assert_non_null(run);
  run->cfg = cfg;
  run->rng = th_rng_init(seed ^ 0xC0FFEEull);
  assert_ok(disp_blog_init(&run->blog, cfg->log_cap));
  for (int m = 0; m < MEMBERS; m++) {
    assert_ok(disp_ring_init(&run->rings[m], cfg->ring_cap));
    disp_framer_init(&run->framers[m]);
    disp_framer_attach_blog(&run->framers[m], &run->blog, disp_blog_head(&run->blog), 0);
    member_rx_t *r = &run->rx[m];
    r->run = run;
    r->id = m;
    r->dead = m == 1 && cfg->dead1;
    for (int p = 0; p < PRODUCERS; p++) {
      r->seen[p] = calloc(OPS / 8 + 1, 1);
      assert_non_null(r->seen[p]);
    }
  }
  producer_t p[PRODUCERS];
  memset(p, 0, sizeof(p));
  for (uint32_t i = 0; i < PRODUCERS; i++) {
    p[i].run = run;
    p[i].id = i;
    p[i].rng = th_rng_init(seed + 1 + i);
    p[i].kinds = calloc(OPS, 1);
    p[i].kept = calloc(OPS / KEEP_EVERY + 1, sizeof(disp_msg_t *));
    assert_non_null(p[i].kinds);
    assert_non_null(p[i].kept);
  }
  long live_base = th_live_blocks(); /* everything but messages is allocated */

  uint64_t t0 = now_ns();
  run->deadline = t0 + run_budget_ns();
  pthread_t ct;
  assert_int_equal(pthread_create(&ct, NULL, consumer_thread, run), 0);
  for (int i = 0; i < PRODUCERS; i++)
    assert_int_equal(pthread_create(&p[i].tid, NULL, producer_thread, &p[i]), 0);
  for (int i = 0; i < PRODUCERS; i++) {
    assert_int_equal(pthread_join(p[i].tid, NULL), 0);
    atomic_fetch_add(&run->producers_done, 1);
  }
  assert_int_equal(pthread_join(ct, NULL), 0);
  uint64_t t1 = now_ns();
  if (run->error[0])
    fail_msg("%s (seed %llu): %s", cfg->name, (unsigned long long)seed, run->error);

  /* What was done. */
  uint64_t ops = 0, sends[MEMBERS] = {0, 0}, bcasts = 0, log_pushes = 0, fallbacks = 0, waits = 0,
           kept = 0;
  bool deadline_hit = false;
  for (int i = 0; i < PRODUCERS; i++) {
    ops += p[i].ops;
    for (int m = 0; m < MEMBERS; m++)
      sends[m] += p[i].sends[m];
    bcasts += p[i].bcasts;
    log_pushes += p[i].log_pushes;
    fallbacks += p[i].fallbacks;
    waits += p[i].waits;
    kept += (p[i].ops + KEEP_EVERY - 1) / KEEP_EVERY;
    deadline_hit |= p[i].deadline_hit;
  }
  disp_blog_t *l = &run->blog;
  uint64_t head = disp_blog_head(l);
  print_message(
      "blog mt %-14s %5.2f s: %llu ops (%llu+%llu sends, %llu broadcasts: %llu log, "
      "%llu fallback), received %llu/%llu, drops m0 %llu+%llu m1 %llu+%llu, "
      "%llu trims, %llu waits%s\n",
      cfg->name, (double)(t1 - t0) / 1e9, (unsigned long long)ops, (unsigned long long)sends[0],
      (unsigned long long)sends[1], (unsigned long long)bcasts, (unsigned long long)log_pushes,
      (unsigned long long)fallbacks, (unsigned long long)run->rx[0].received,
      (unsigned long long)run->rx[1].received,
      (unsigned long long)ck_pr_load_64(&run->rings[0].dropped),
      (unsigned long long)ck_pr_load_64(&run->framers[0].bdropped),
      (unsigned long long)ck_pr_load_64(&run->rings[1].dropped),
      (unsigned long long)ck_pr_load_64(&run->framers[1].bdropped), (unsigned long long)run->trims,
      (unsigned long long)waits, deadline_hit ? ", deadline" : "");
  assert_true(ops >= PRODUCERS); /* something happened */
  assert_int_equal(bcasts, log_pushes + fallbacks);
  assert_int_equal(head, log_pushes); /* the log started at 0 */

  for (int m = 0; m < MEMBERS; m++) {
    member_rx_t *r = &run->rx[m];
    disp_framer_t *f = &run->framers[m];
    disp_ring_t *ring = &run->rings[m];
    assert_int_equal(ck_pr_load_64(&ring->enqueued), sends[m] + fallbacks);
    if (r->dead) continue;
    /* A read member: no drops (the backpressure above makes them
     * impossible), so exactly what was addressed to it, each once. */
    assert_int_equal(ck_pr_load_64(&ring->dropped), 0);
    assert_int_equal(ck_pr_load_64(&f->bdropped), 0);
    assert_false(r->in_body || r->hdr_shift != 0 || r->broken); /* at a message boundary */
    assert_int_equal(r->received, sends[m] + bcasts);
    assert_int_equal(f->msgs_written, r->received);
    assert_int_equal(ck_pr_load_64(&f->btaken), log_pushes);
    assert_int_equal(ck_pr_load_64(&f->bcur), head);
    assert_int_equal(disp_ring_depth(ring), 0);
    assert_null(f->cur);
    assert_int_equal(f->uni_len, 0);
    assert_int_equal(f->held_len, 0);
    for (int i = 0; i < PRODUCERS; i++) {
      for (uint32_t c = 0; c < p[i].ops; c++) {
        bool got = r->seen[i][c / 8] >> (c % 8) & 1;
        if (got != addressed(m, p[i].kinds[c]))
          fail_msg("%s: member %d %s (producer %d ctr %u kind %u)", cfg->name, m,
                   got ? "got a message not addressed to it" : "lost a message", i, c,
                   p[i].kinds[c]);
      }
    }
  }

  if (!cfg->dead1) {
    /* The consumer is done: every reference but the producers' kept ones
     * was dropped, before any destroy. */
    assert_int_equal(ck_pr_load_64(&l->tail), head);
    assert_int_equal(th_live_blocks(), live_base + (long)kept);
    for (int m = 0; m < MEMBERS; m++) {
      assert_int_equal(disp_framer_abort(&run->framers[m]), 0);
      assert_int_equal(disp_ring_destroy(&run->rings[m]), 0);
    }
    assert_int_equal(disp_blog_destroy(l), 0);
  } else {
    /* Member 1 got nothing; each message addressed to it was dropped by
     * its ring, skipped by a trim, or is still queued: in its ring, in its
     * framer (cur, held, uni) or in the log from its cursor on. */
    member_rx_t *r = &run->rx[1];
    disp_framer_t *f = &run->framers[1];
    assert_int_equal(r->received, 0);
    assert_int_equal(r->bytes, 0);
    assert_int_equal(f->msgs_written, 0);
    uint64_t rdropped = ck_pr_load_64(&run->rings[1].dropped);
    uint64_t bdropped = ck_pr_load_64(&f->bdropped), bcur = ck_pr_load_64(&f->bcur);
    assert_int_equal(bcur, ck_pr_load_64(&f->btaken) + bdropped); /* started at 0 */
    /* It can hold ring_cap - 1 in its ring, DISP_FRAMER_HELD + 2 in its
     * framer and log_cap in the log: past that, drops are certain. */
    if (sends[1] + bcasts > cfg->ring_cap + DISP_FRAMER_HELD + 2 + cfg->log_cap)
      assert_true(rdropped + bdropped > 0);
    assert_int_equal(ck_pr_load_64(&l->tail), bcur); /* the slowest cursor */
    uint64_t in_framer = (uint64_t)disp_framer_abort(f);
    uint64_t in_ring = disp_ring_destroy(&run->rings[1]);
    print_message("blog mt %-14s member 1: %llu ring drops, %llu trimmed, %llu in ring, %llu in "
                  "framer, %llu in log\n",
                  cfg->name, (unsigned long long)rdropped, (unsigned long long)bdropped,
                  (unsigned long long)in_ring, (unsigned long long)in_framer,
                  (unsigned long long)(head - bcur));
    assert_int_equal(sends[1] + bcasts, rdropped + bdropped + in_ring + in_framer + (head - bcur));
    assert_int_equal(disp_framer_abort(&run->framers[0]), 0);
    assert_int_equal(disp_ring_destroy(&run->rings[0]), 0);
    assert_int_equal(disp_blog_destroy(l), head - bcur);
    if (cfg->log_cap > cfg->ring_cap) {
      /* The framer holds at most DISP_FRAMER_HELD + 1 entries, the log
       * cap: past that many broadcasts the cursor must have been trimmed. */
      if (log_pushes > DISP_FRAMER_HELD + 1 + cfg->log_cap) assert_true(bdropped > 0);
    } else {
      /* keep (ring_cap) >= the log's capacity: a trim never moves the
       * cursor, so the dead member pins the log and broadcasts fall back. */
      assert_int_equal(bdropped, 0);
      if (bcasts > DISP_FRAMER_HELD + 1 + cfg->log_cap) assert_true(fallbacks > 0);
    }
  }

  /* Refcounts: the library let go of every kept message exactly once per
   * holder, leaving the producer's reference alone. */
  for (int i = 0; i < PRODUCERS; i++) {
    for (uint32_t c = 0; c < p[i].ops; c += KEEP_EVERY) {
      disp_msg_t *m = p[i].kept[c / KEEP_EVERY];
      assert_non_null(m);
      if (refs_of(m) != 1)
        fail_msg("%s: producer %d ctr %u (kind %u) has %u references left", cfg->name, i, c,
                 p[i].kinds[c], refs_of(m));
      disp_msg_release(m);
    }
    free(p[i].kinds);
    free(p[i].kept);
  }
  for (int m = 0; m < MEMBERS; m++)
    for (int i = 0; i < PRODUCERS; i++)
      free(run->rx[m].seen[i]);
  free(run);
  assert_int_equal(th_live_blocks(), live0); /* every message freed */
  return (blog_result_t){log_pushes, fallbacks};
}

/* ---------------------------------------------------------------- cases */

/* The normal path: a log twice a ring (as members_init sizes it), rings
 * large enough that nothing is dropped. */
static void test_blog_mt_large(void **state) {
  (void)state;
  static const blog_case_t c = {"large-log", 1u << 16, 1u << 17, 1u << 14, 1u << 14, false};
  blog_result_t res = run_case(&c);
  assert_true(res.log_pushes > 0);
}

/* A log of 4: broadcasts often find it full and fall back to the rings
 * (refs = 2, bseq = head); order and exactly-once must hold across both. */
static void test_blog_mt_tiny_log(void **state) {
  (void)state;
  static const blog_case_t c = {"tiny-log", 1u << 16, 4, 1u << 14, 0, false};
  blog_result_t res = run_case(&c);
  assert_true(res.fallbacks > 0); /* both paths were taken */
  assert_true(res.log_pushes > 0);
}

/* Member 1 never takes a byte. Log 128, ring 64 (trim keeps 64 entries):
 * its cursor is trimmed and the log keeps flowing; member 0 (backpressure
 * keeps its ring and backlog under 32) loses nothing. */
static void test_blog_mt_dead_member_trim(void **state) {
  (void)state;
  static const blog_case_t c = {"dead-trim", 64, 128, 32, 32, true};
  (void)run_case(&c);
}

/* The same with log 64 = ring 64: a trim to ring_capacity never moves a
 * cursor, so the dead member pins the log and broadcasts go through the
 * rings (member 1's ring drops them). */
static void test_blog_mt_dead_member_pinned(void **state) {
  (void)state;
  static const blog_case_t c = {"dead-pinned", 64, 64, 32, 32, true};
  (void)run_case(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_blog_mt_large),
      cmocka_unit_test(test_blog_mt_tiny_log),
      cmocka_unit_test(test_blog_mt_dead_member_trim),
      cmocka_unit_test(test_blog_mt_dead_member_pinned),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
