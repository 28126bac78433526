/*
 * framer.c — queued messages to a /bftnet/msg/1.0.0 byte stream:
 * uvarint(len) || bytes per message, resumable at any byte across partial
 * writes.
 *
 * The writer's cost is per call, so small messages are coalesced: the next
 * bytes of the stream (the rest of the current message, then whole
 * messages) are copied into a 64 KiB scratch buffer and written at once.
 * A large message is written straight from its buffer once its header is
 * out (no copy).
 *
 * What the framer holds (the choice the header documents): a coalesced
 * write covers several messages, and a writer may take only part of it.
 * ck_ring has no way to put a message back at the head, so the whole
 * messages behind the cut must stay here: `held`, at most DISP_FRAMER_HELD
 * of them, FIFO behind `cur`. Only `cur` is ever partly written. Messages
 * are popped only while the write being built has room for them (the pop
 * batch is sized from the last message's size), so held stays near empty
 * unless the writer pushes back; disp_framer_abort releases cur and held
 * and returns how many, for the caller's count.
 *
 * Broadcasts (the node's broadcast log, when attached) are merged with the
 * ring in queueing order: a ring message u carries u.bseq, the log's head
 * when u was queued, and the log entries below u.bseq are written before u.
 * For one application thread that queues u and then broadcasts B, B's
 * sequence number is at least u.bseq, so B comes after u; if it broadcasts
 * B and then queues u, u.bseq > B's, so B comes first. The cursor only
 * passes an entry B on the way to a ring message queued after B was
 * published (and the ring is FIFO), or when the ring was empty after the
 * log's head was read (so every message queued before B was already
 * popped). Between threads any interleaving is a valid order.
 *
 * The scratch buffer is per thread (only the loop thread drains), not per
 * framer: nothing in it survives a drain call, since the framer's state
 * (cur, off, held) says where the stream stands. A drain re-entered from
 * inside a writer on the same thread finds it busy and writes without it.
 */
#include <limits.h>
#include <stdlib.h>

#include <ck_pr.h>

#include "disp_internal.h"
#include "dispatcher.h"

#define DISP_SCRATCH_SIZE (64u * 1024u)
#define DISP_DIRECT_MIN   (16u * 1024u) /* write a body this large in place */
#define DISP_POP_MAX      64u           /* messages per pop from the ring */
#define DISP_WRITE_MAX    (1u << 30)    /* bytes per write call (the writer returns int) */
/* A call completes at most DISP_FRAMER_HELD + 1 messages per write. */
#define DISP_DRAIN_MAX (INT_MAX - (int)DISP_FRAMER_HELD - 1)

_Static_assert(DISP_DIRECT_MIN <= DISP_SCRATCH_SIZE,
               "direct writes are for bodies a scratch could not hold");
_Static_assert(DISP_POP_MAX <= DISP_FRAMER_HELD, "a pop fits the held queue");
_Static_assert(DISP_FRAMER_HELD < (1u << 16), "held indices");

static _Thread_local uint8_t g_scratch[DISP_SCRATCH_SIZE];
static _Thread_local bool g_scratch_busy;

static size_t framer_cur_total(const disp_framer_t *f) {
  return (size_t)f->hdr_len + f->cur->len;
}

/* Makes the oldest held message current, at offset 0. */
static void framer_next(disp_framer_t *f) {
  BN_ASSERT(f->cur == NULL);
  if (f->held_len == 0) return;
  disp_msg_t *m = f->held[f->held_head];
  f->held[f->held_head] = NULL;
  f->held_head++;
  f->held_len--;
  if (f->held_len == 0) f->held_head = 0;
  f->cur = m;
  f->off = 0;
  f->hdr_len = (uint8_t)uvarint_encode(f->hdr, m->len);
}

/* Up to n next messages of the stream into out: ring messages, and the
 * log entries due before each (see the top of the file). */
static unsigned framer_merge(disp_framer_t *f, disp_ring_t *r, disp_msg_t **out, unsigned n) {
  const disp_blog_t *l = f->blog;
  uint64_t h = disp_blog_head(l); /* before any pop: see the top */
  unsigned got = 0;
  while (got < n) {
    if (f->uni_len == 0) { /* after h was read: see the top */
      f->uni_head = 0;
      /* no more than this call can place: the rest stays in the ring,
       * where drop-oldest applies */
      ck_pr_store_32(&f->uni_len,
                     disp_ring_pop_batch_mpmc(r, f->uniq, BN_MIN(DISP_FRAMER_UNIQ, n - got)));
    }
    disp_msg_t *u = f->uni_len ? f->uniq[f->uni_head] : NULL;
    uint64_t limit = u ? u->bseq : h;
    uint64_t c = f->bcur; /* (a trimmed cursor may be past a ring message's bseq) */
    if (c < limit) {
      BN_ASSERT(limit - c <= l->cap); /* the log's tail never passes a cursor */
      const disp_blog_slot_t *s = disp_blog_slot(l, c);
      BN_TSAN_ACQUIRE(s->msg);
      ck_pr_store_64(&f->bcur, c + 1);
      f->bbytes += s->msg->len;
      if (s->ver < f->bver) continue; /* addressed before this member joined */
      disp_msg_ref(s->msg);
      out[got++] = s->msg;
      ck_pr_store_64(&f->btaken, f->btaken + 1);
      continue;
    }
    if (!u) break;
    out[got++] = u;
    f->uniq[f->uni_head++] = NULL;
    ck_pr_store_32(&f->uni_len, f->uni_len - 1);
  }
  return got;
}

/* Messages the member cannot take (above the max_message_size it said)
 * never reach the stream: released and counted as they are pulled, so the
 * member's deframer never has to skip them. Keeps the others of out[0, n)
 * in order; returns how many. */
static unsigned framer_filter(disp_framer_t *f, disp_msg_t **out, unsigned n) {
  if (f->peer_max == 0) return n;
  unsigned k = 0;
  for (unsigned i = 0; i < n; i++) {
    if (out[i]->len > f->peer_max) {
      ck_pr_store_64(&f->too_big, f->too_big + 1);
      if (!f->write_too_big) {
        disp_msg_release(out[i]);
        continue;
      }
    }
    out[k++] = out[i];
  }
  return k;
}

/* Pops up to n messages from the ring (and the log) behind the held ones;
 * returns how many it kept (0: nothing is left to pull, or a long run of
 * messages the member cannot take: the next drain goes on). */
static unsigned framer_pull(disp_framer_t *f, disp_ring_t *r, unsigned n) {
  if (f->held_head + f->held_len + n > DISP_FRAMER_HELD && f->held_head > 0) {
    memmove(f->held, f->held + f->held_head, f->held_len * sizeof(f->held[0]));
    f->held_head = 0;
  }
  unsigned room = DISP_FRAMER_HELD - f->held_head - f->held_len;
  n = BN_MIN(n, room);
  if (n == 0) return 0;
  disp_msg_t **out = &f->held[f->held_head + f->held_len];
  unsigned got = 0;
  for (unsigned round = 0; got == 0 && round < 16; round++) {
    got = f->blog ? framer_merge(f, r, out, n) : disp_ring_pop_batch_mpmc(r, out, n);
    if (got == 0) break;
    got = framer_filter(f, out, got);
  }
  f->held_len += got;
  return got;
}

void disp_framer_attach_blog(disp_framer_t *f, const disp_blog_t *l, uint64_t start, uint64_t ver) {
  f->blog = l;
  ck_pr_store_64(&f->bcur, start);
  f->bver = ver;
}

uint64_t disp_framer_blog_pending(const disp_framer_t *f) {
  if (!f->blog) return 0;
  uint64_t c = ck_pr_load_64((uint64_t *)(uintptr_t)&f->bcur);
  uint64_t h = ck_pr_load_64((uint64_t *)(uintptr_t)&f->blog->head);
  return h > c ? h - c : 0;
}

uint64_t disp_framer_backlog(const disp_framer_t *f) {
  return disp_framer_blog_pending(f) + ck_pr_load_32((uint32_t *)(uintptr_t)&f->uni_len);
}

void disp_framer_blog_skip_foreign(disp_framer_t *f) {
  if (!f->blog) return;
  uint64_t h = disp_blog_head(f->blog), c = f->bcur;
  for (; c < h && disp_blog_slot(f->blog, c)->ver < f->bver; c++)
    f->bbytes += disp_blog_slot(f->blog, c)->msg->len;
  if (c != f->bcur) ck_pr_store_64(&f->bcur, c);
}

/* Moves the cursor to `to`, counting the skipped entries addressed to us
 * as dropped. */
static uint64_t blog_skip_to(disp_framer_t *f, uint64_t to) {
  uint64_t skipped = 0;
  for (uint64_t s = f->bcur; s < to; s++) { /* only entries addressed to us count */
    const disp_blog_slot_t *e = disp_blog_slot(f->blog, s);
    f->bbytes += e->msg->len;
    if (e->ver >= f->bver) skipped++;
  }
  ck_pr_store_64(&f->bcur, to);
  ck_pr_store_64(&f->bdropped, f->bdropped + skipped);
  return skipped;
}

uint64_t disp_framer_blog_trim(disp_framer_t *f, uint64_t keep) {
  if (!f->blog) return 0;
  uint64_t h = disp_blog_head(f->blog), c = f->bcur;
  if (h - c <= keep) return 0;
  return blog_skip_to(f, h - keep);
}

uint64_t disp_framer_blog_trim_bytes(disp_framer_t *f, uint64_t keep_bytes) {
  if (!f->blog) return 0;
  const disp_blog_t *l = f->blog;
  uint64_t h = disp_blog_head(l), c = f->bcur;
  uint64_t bytes = ck_pr_load_64((uint64_t *)(uintptr_t)&l->bytes_head) - f->bbytes;
  for (; c < h && bytes > keep_bytes; c++)
    bytes -= disp_blog_slot(l, c)->msg->len;
  return c == f->bcur ? 0 : blog_skip_to(f, c);
}

/* Copies the next stream bytes into s[0, cap): the rest of cur (a prefix
 * of it if it is larger), then whole held messages, popping more while
 * they fit. Returns the byte count. Changes no stream position. */
static size_t framer_build(disp_framer_t *f, disp_ring_t *r, uint8_t *s, size_t cap) {
  size_t n = 0, off = f->off;
  if (off < f->hdr_len) {
    n = BN_MIN((size_t)(f->hdr_len - off), cap);
    memcpy(s, f->hdr + off, n);
    off += n;
    if (off < f->hdr_len) return n; /* a limit shorter than the header */
  }
  size_t doff = off - f->hdr_len, d = BN_MIN((size_t)f->cur->len - doff, cap - n);
  memcpy(s + n, f->cur->data + doff, d);
  n += d;
  if (doff + d < f->cur->len) return n; /* the scratch is full */

  size_t last = framer_cur_total(f); /* size estimate for the next pop */
  for (unsigned j = 0; n < cap; j++) {
    if (j == f->held_len) {
      size_t want = BN_MAX((cap - n) / BN_MAX(last, 1), 1);
      if (framer_pull(f, r, (unsigned)BN_MIN(want, DISP_POP_MAX)) == 0) break;
    }
    const disp_msg_t *m = f->held[f->held_head + j];
    uint8_t hdr[BN_UVARINT_MAX_BYTES];
    size_t h = uvarint_encode(hdr, m->len);
    last = h + m->len;
    if (last > cap - n) break;
    memcpy(s + n, hdr, h);
    memcpy(s + n + h, m->data, m->len);
    n += last;
  }
  return n;
}

/* ------------------------------------------------------------- ends */

static void ends_push(disp_ends_t *e, uint64_t end) {
  if (e->len == e->cap) {
    size_t ncap = e->cap ? e->cap * 2 : 64;
    uint64_t *nv = malloc(ncap * sizeof *nv);
    if (!nv) {
      e->oom = true;
      return;
    }
    for (size_t i = 0; i < e->len; i++)
      nv[i] = e->v[(e->head + i) % e->cap];
    free(e->v);
    e->v = nv;
    e->cap = ncap;
    e->head = 0;
  }
  e->v[(e->head + e->len) % e->cap] = end;
  e->len++;
}

void disp_ends_free(disp_ends_t *e) {
  free(e->v);
  memset(e, 0, sizeof *e);
}

size_t disp_ends_trim(disp_ends_t *e, uint64_t confirmed) {
  size_t k = 0;
  while (e->len && e->v[e->head] <= confirmed) {
    e->head = (e->head + 1) % e->cap;
    e->len--;
    k++;
  }
  if (e->len == 0) e->head = 0;
  return k;
}

/* Moves the stream k bytes forward; returns the messages completed. */
static int framer_advance(disp_framer_t *f, size_t k) {
  int done = 0;
  uint64_t pos = f->bytes_written;
  f->bytes_written += k;
  while (k > 0) {
    BN_ASSERT(f->cur != NULL);
    size_t rem = framer_cur_total(f) - f->off;
    if (k < rem) {
      f->off += k;
      break;
    }
    k -= rem;
    pos += rem;
    if (f->ends) ends_push(f->ends, pos);
    if (f->delay && f->cur->t_ns) {
      if (!f->now) f->now = bn_now_ns(f->seam);
      disp_hist_add(f->delay, f->now > f->cur->t_ns ? f->now - f->cur->t_ns : 0, f->cur->w);
      uint64_t a0 = f->cur->ahead0;
      if (a0 != UINT64_MAX && f->other_now > a0 && f->other_now - a0 > f->ahead_max)
        ck_pr_store_64(&f->ahead_max, f->other_now - a0);
    }
    disp_msg_release(f->cur);
    f->cur = NULL;
    f->off = 0;
    f->msgs_written++;
    done++;
    framer_next(f);
  }
  return done;
}

void disp_framer_init(disp_framer_t *f) {
  memset(f, 0, sizeof(*f));
}

/* A span this small is not worth a write of its own: the scratch instead. */
#define DISP_SPAN_MIN 256u

/* The drain loop: one write per round, of the body in place (large
 * messages), a header alone (no scratch), or a coalesced batch built in the
 * writer's span (span, when it gives one) or in the scratch buffer; at most
 * `limit` bytes in all. */
static int framer_drain(disp_framer_t *f, disp_ring_t *r, disp_write_fn write, disp_span_fn span,
                        void *ctx, size_t limit) {
  bool scratch = !g_scratch_busy;
  uint8_t *buf = g_scratch;    /* where the batch was built: the scratch or the span */
  size_t s_off = 0, s_len = 0; /* batch bytes built and not yet taken */
  size_t written = 0;
  int done = 0, err = 0;
  if (scratch) g_scratch_busy = true;
  f->now = 0;
  while (done < DISP_DRAIN_MAX && written < limit) {
    const uint8_t *p = NULL;
    size_t n = 0, left = limit - written;
    bool built = s_off < s_len;
    if (!built) {
      if (f->cur == NULL) framer_next(f);
      if (f->cur == NULL && framer_pull(f, r, 1) == 1) framer_next(f);
      if (f->cur == NULL) break; /* all written */
      bool hdr_done = f->off >= f->hdr_len;
      size_t doff = hdr_done ? f->off - f->hdr_len : 0;
      if (hdr_done && (!scratch || f->cur->len - doff >= DISP_DIRECT_MIN)) {
        p = f->cur->data + doff; /* the body, in place */
        n = BN_MIN(BN_MIN((size_t)f->cur->len - doff, (size_t)DISP_WRITE_MAX), left);
      } else if (!scratch) {
        p = f->hdr + f->off;
        n = BN_MIN((size_t)(f->hdr_len - f->off), left);
      } else {
        size_t want = BN_MIN(sizeof(g_scratch), left);
        uint8_t *at = NULL;
        size_t got = span ? span(ctx, want, &at) : 0;
        buf = got >= BN_MIN(want, (size_t)DISP_SPAN_MIN) ? at : g_scratch;
        s_off = 0;
        s_len = framer_build(f, r, buf, buf == g_scratch ? want : got);
        built = true;
      }
    }
    if (built) {
      p = buf + s_off;
      n = s_len - s_off;
    }
    BN_ASSERT(n > 0);
    int k = write(ctx, p, n);
    if (k < 0) {
      err = k;
      break;
    }
    BN_ASSERT((size_t)k <= n);
    if (k == 0) break; /* blocked */
    if (built) s_off += (size_t)k;
    written += (size_t)k;
    done += framer_advance(f, (size_t)k);
  }
  if (scratch) g_scratch_busy = false;
  return err < 0 ? err : done;
}

int disp_framer_drain(disp_framer_t *f, disp_ring_t *r, disp_write_fn write, void *ctx) {
  return framer_drain(f, r, write, NULL, ctx, SIZE_MAX);
}

int disp_framer_drain_limit(disp_framer_t *f, disp_ring_t *r, disp_write_fn write, void *ctx,
                            size_t limit) {
  return framer_drain(f, r, write, NULL, ctx, limit);
}

int disp_framer_drain_span(disp_framer_t *f, disp_ring_t *r, disp_write_fn write, disp_span_fn span,
                           void *ctx, size_t limit) {
  return framer_drain(f, r, write, span, ctx, limit);
}

bool disp_framer_pending(const disp_framer_t *f, disp_ring_t *r) {
  return f->cur || f->held_len || disp_framer_backlog(f) || disp_ring_depth(r);
}

int disp_framer_abort(disp_framer_t *f) {
  int n = 0;
  if (f->cur != NULL) {
    disp_msg_release(f->cur);
    n++;
  }
  for (uint32_t i = 0; i < f->uni_len; i++) { /* popped, not yet ordered: lost with the rest */
    disp_msg_release(f->uniq[f->uni_head + i]);
    f->uniq[f->uni_head + i] = NULL;
    n++;
  }
  f->uni_head = 0;
  ck_pr_store_32(&f->uni_len, 0);
  for (uint32_t i = 0; i < f->held_len; i++) {
    disp_msg_release(f->held[f->held_head + i]);
    f->held[f->held_head + i] = NULL;
    n++;
  }
  f->cur = NULL;
  f->off = 0;
  f->hdr_len = 0;
  f->held_head = 0;
  f->held_len = 0;
  return n;
}
