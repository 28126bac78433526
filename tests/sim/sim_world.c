/*
 * sim_world.c — the simulated world's time and events, the seeded RNG,
 * and the non-socket half of the seam (core.h) for each node's transport:
 * timers, wakeups, deferral, run, the clock and the RNG. The sockets are
 * in sim_sock.c.
 *
 * One queue orders every event by (time, sequence number). Deferred work
 * runs before time moves on (or after defer_batch events at one time), as
 * libuv's check handles run before the loop blocks. A crashed transport's
 * events move to its own queue: its node's teardown (bftnet_free) runs
 * there, outside simulated time, and reaches no one.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_alloc.h"
#include "sim_internal.h"

/* ------------------------------------------------------------------ RNG */

static uint64_t splitmix(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void sim_rng_seed(sim_rng_t *r, uint64_t seed, uint64_t stream) {
  uint64_t x = seed ^ (stream * 0xd1b54a32d192ed03ull);
  for (int i = 0; i < 4; i++)
    r->s[i] = splitmix(&x);
}

static uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

uint64_t sim_rng_next(sim_rng_t *r) {
  uint64_t *s = r->s;
  uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return out;
}

uint64_t sim_rng_below(sim_rng_t *r, uint64_t n) {
  BN_ASSERT(n > 0);
  /* Lemire's multiply-shift; the bias is far below anything that matters here. */
  return (uint64_t)(((unsigned __int128)sim_rng_next(r) * n) >> 64);
}

uint64_t sim_rng_range(sim_rng_t *r, uint64_t lo, uint64_t hi) {
  return hi <= lo ? lo : lo + sim_rng_below(r, hi - lo + 1);
}

bool sim_rng_pct(sim_rng_t *r, unsigned pct) {
  return sim_rng_below(r, 100) < pct;
}

/* ----------------------------------------------------------------- heap */

static bool ev_less(const sim_ev_t *a, const sim_ev_t *b) {
  return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void heap_set(sim_heap_t *h, size_t i, sim_ev_t *e) {
  h->a[i] = e;
  e->idx = i;
}

static void heap_up(sim_heap_t *h, size_t i) {
  sim_ev_t *e = h->a[i];
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!ev_less(e, h->a[p])) break;
    heap_set(h, i, h->a[p]);
    i = p;
  }
  heap_set(h, i, e);
}

static void heap_down(sim_heap_t *h, size_t i) {
  sim_ev_t *e = h->a[i];
  for (;;) {
    size_t l = 2 * i + 1, m = i;
    const sim_ev_t *best = e;
    if (l < h->n && ev_less(h->a[l], best)) m = l, best = h->a[l];
    if (l + 1 < h->n && ev_less(h->a[l + 1], best)) m = l + 1;
    if (m == i) break;
    heap_set(h, i, h->a[m]);
    i = m;
  }
  heap_set(h, i, e);
}

static void heap_push(sim_heap_t *h, sim_ev_t *e) {
  if (h->n == h->cap) {
    h->cap = h->cap ? 2 * h->cap : 256;
    h->a = sim_realloc(h->a, h->cap * sizeof *h->a);
  }
  e->heap = h;
  heap_set(h, h->n++, e);
  heap_up(h, h->n - 1);
}

static void heap_remove(sim_heap_t *h, sim_ev_t *e) {
  size_t i = e->idx;
  BN_ASSERT(e->heap == h && i < h->n && h->a[i] == e);
  e->heap = NULL;
  if (--h->n == i) return;
  heap_set(h, i, h->a[h->n]);
  heap_down(h, i);
  heap_up(h, h->a[i]->idx);
}

static sim_ev_t *heap_pop(sim_heap_t *h) {
  sim_ev_t *e = h->a[0];
  heap_remove(h, e);
  return e;
}

/* --------------------------------------------------------------- events */

static sim_ev_t *ev_new(sim_world_t *w, uint64_t at, sim_ev_fn fn, void *a, uint64_t x) {
  sim_ev_t *e = w->free_evs;
  if (e)
    w->free_evs = e->next_free;
  else
    e = sim_malloc(sizeof *e);
  memset(e, 0, sizeof *e);
  e->at = at < w->now ? w->now : at;
  e->seq = ++w->seq;
  e->fn = fn;
  e->a = a;
  e->x = x;
  return e;
}

static void ev_release(sim_world_t *w, sim_ev_t *e) {
  e->next_free = w->free_evs;
  w->free_evs = e;
}

sim_ev_t *sim_at(sim_world_t *w, uint64_t at, sim_ev_fn fn, void *a, uint64_t x) {
  sim_ev_t *e = ev_new(w, at, fn, a, x);
  heap_push(&w->heap, e);
  return e;
}

sim_ev_t *sim__at_tr(sim_world_t *w, sim_tr_t *t, uint64_t at, sim_ev_fn fn, void *a, uint64_t x) {
  sim_ev_t *e = ev_new(w, at, fn, a, x);
  e->owner = t;
  heap_push(t && t->dead ? &t->heap : &w->heap, e);
  return e;
}

void sim_cancel(sim_world_t *w, sim_ev_t *e) {
  if (!e) return;
  heap_remove(e->heap, e);
  ev_release(w, e);
}

uint64_t sim_now(const sim_world_t *w) {
  return w->now;
}

void sim_trace(sim_world_t *w, uint64_t v) {
  uint64_t x = w->trace ^ v;
  w->trace = splitmix(&x);
}

uint64_t sim_trace_hash(const sim_world_t *w) {
  return w->trace;
}
uint64_t sim_events_run(const sim_world_t *w) {
  return w->events;
}

void sim_fail(sim_world_t *w, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (w->cfg.on_fail) w->cfg.on_fail(w->cfg.fail_ud, msg);
  fprintf(stderr, "sim: %s\n", msg);
  abort();
}

/* Runs e (taken off its queue): the handler may schedule and cancel. */
static void ev_run(sim_world_t *w, sim_ev_t *e) {
  sim_ev_fn fn = e->fn;
  void *a = e->a;
  uint64_t x = e->x;
  sim_trace(w, e->at);
  sim_trace(w, e->seq);
  w->events++;
  ev_release(w, e);
  fn(w, a, x);
}

/* Each transport's deferred callbacks (only's, if set), until none is
 * left: callbacks may defer again. */
void sim__defers_run(sim_world_t *w, sim_tr_t *only) {
  if (w->in_defers) return;
  w->in_defers = true;
  for (int round = 0;; round++) {
    bool ran = false;
    for (sim_tr_t *t = only ? only : w->trs; t; t = only ? NULL : t->next) {
      if (t->ndefer == 0 || (!only && t->dead)) continue;
      int n = t->ndefer;
      bn_defer_cb cbs[SIM_MAX_DEFER];
      void *uds[SIM_MAX_DEFER];
      memcpy(cbs, t->defer_cb, sizeof cbs);
      memcpy(uds, t->defer_ud, sizeof uds);
      t->ndefer = 0;
      for (int i = 0; i < n; i++)
        cbs[i](uds[i]);
      ran = true;
    }
    if (!ran) break;
    if (round > 100000) sim_fail(w, "deferred work defers itself forever");
  }
  w->in_defers = false;
}

int sim_step(sim_world_t *w) {
  if (w->heap.n == 0) {
    sim__defers_run(w, NULL);
    return w->heap.n > 0;
  }
  sim_ev_t *e = heap_pop(&w->heap);
  if (e->at > w->now) w->now = e->at;
  if (w->now > w->cfg.time_limit)
    sim_fail(w, "simulated time passed its limit (%.1f s): something never ends",
             (double)w->cfg.time_limit / SIM_S);
  ev_run(w, e);
  if (++w->batch >= w->cfg.defer_batch || w->heap.n == 0 || w->heap.a[0]->at > w->now) {
    w->batch = 0;
    sim__defers_run(w, NULL);
  }
  return 1;
}

void sim_run_until(sim_world_t *w, uint64_t t) {
  while (w->heap.n && w->heap.a[0]->at <= t)
    sim_step(w);
  sim__defers_run(w, NULL);
  if (t > w->now) w->now = t;
}

/* ------------------------------------------------------------ the world */

sim_world_t *sim_world_new(const sim_world_cfg_t *cfg) {
  sim_world_t *w = sim_calloc(1, sizeof *w);
  w->cfg = *cfg;
  if (!w->cfg.defer_batch) w->cfg.defer_batch = 1;
  if (!w->cfg.kernel_buf) w->cfg.kernel_buf = 256 * 1024;
  w->now = SIM_S; /* a clock that does not start at zero */
  w->next_port = 40000;
  sim_rng_seed(&w->net_rng, cfg->seed, 1);
  sim_rng_seed(&w->seam_rng, cfg->seed, 2);
  for (int a = 0; a < SIM_MAX_HOSTS; a++)
    for (int b = 0; b < SIM_MAX_HOSTS; b++)
      w->link[a][b] = (sim_link_t){.lat_ns = 200 * 1000, .ns_per_kib = 1000};
  return w;
}

void sim_world_free(sim_world_t *w) {
  if (!w) return;
  BN_ASSERT(w->trs == NULL);
  sim__sock_world_free(w);
  while (w->heap.n)
    sim_cancel(w, w->heap.a[w->heap.n - 1]);
  sim_free(w->heap.a);
  while (w->free_evs) {
    sim_ev_t *e = w->free_evs;
    w->free_evs = e->next_free;
    sim_free(e);
  }
  sim_free(w);
}

sim_rng_t *sim_world_rng(sim_world_t *w) {
  return &w->net_rng;
}
sim_link_t *sim_link(sim_world_t *w, int a, int b) {
  return &w->link[a][b];
}

void sim_addr_set_down(sim_world_t *w, int host, int addr, bool down) {
  w->addr_down[host][addr] = down;
}

void sim_addr_str(int host, int addr, unsigned port, char *out, size_t cap) {
  snprintf(out, cap, "/ip4/10.0.%d.%d/tcp/%u", addr, host + 1, port);
}

/* ------------------------------------------------------ seam: clock, RNG */

static uint64_t seam_now(void *ctx) {
  return ((sim_world_t *)ctx)->now;
}

static void seam_random(void *ctx, void *buf, size_t n) {
  sim_world_t *w = ctx;
  uint8_t *p = buf;
  while (n) {
    uint64_t v = sim_rng_next(&w->seam_rng);
    size_t k = n < 8 ? n : 8;
    memcpy(p, &v, k);
    p += k;
    n -= k;
  }
}

/* --------------------------------------------------------------- timers */

static void timer_fire(sim_world_t *w, void *a, uint64_t x) {
  (void)x;
  bn_ttimer_t *tm = a;
  tm->ev = NULL;
  if (tm->repeat_ns) tm->ev = sim__at_tr(w, tm->tr, w->now + tm->repeat_ns, timer_fire, tm, 0);
  tm->cb(tm->ud);
}

static int tr_timer_new(bn_transport_t *bt, bn_timer_cb cb, void *ud, bn_ttimer_t **out) {
  sim_tr_t *t = (sim_tr_t *)bt;
  bn_ttimer_t *tm = sim_calloc(1, sizeof *tm);
  tm->tr = t;
  tm->cb = cb;
  tm->ud = ud;
  t->ntimers++;
  *out = tm;
  return 0;
}

static void timer_start_ns(bn_ttimer_t *tm, uint64_t timeout_ns, uint64_t repeat_ns) {
  sim_world_t *w = tm->tr->w;
  sim_cancel(w, tm->ev);
  tm->repeat_ns = repeat_ns;
  tm->ev = sim__at_tr(w, tm->tr, w->now + timeout_ns, timer_fire, tm, 0);
}

static void tr_timer_start(bn_ttimer_t *tm, uint64_t timeout_ms, uint64_t repeat_ms) {
  timer_start_ns(tm, timeout_ms * SIM_MS, repeat_ms * SIM_MS);
}

static void tr_timer_start_us(bn_ttimer_t *tm, uint64_t timeout_us) {
  timer_start_ns(tm, timeout_us * 1000u, 0);
}

static void tr_timer_stop(bn_ttimer_t *tm) {
  sim_cancel(tm->tr->w, tm->ev);
  tm->ev = NULL;
}

static void tr_timer_free(bn_ttimer_t *tm) {
  if (!tm) return;
  tr_timer_stop(tm);
  tm->tr->ntimers--;
  sim_free(tm);
}

/* -------------------------------------------------------------- wakeups */

static void wake_fire(sim_world_t *w, void *a, uint64_t x) {
  (void)w;
  (void)x;
  bn_twake_t *k = a;
  k->ev = NULL;
  k->tr->wakes_pending--;
  k->cb(k->ud);
}

static int tr_wake_new(bn_transport_t *bt, bn_wake_cb cb, void *ud, bn_twake_t **out) {
  sim_tr_t *t = (sim_tr_t *)bt;
  bn_twake_t *k = sim_calloc(1, sizeof *k);
  k->tr = t;
  k->cb = cb;
  k->ud = ud;
  t->nwakes++;
  *out = k;
  return 0;
}

/* The simulation has one thread: a wake is an event "now", coalesced. */
static void tr_wake_send(bn_twake_t *k) {
  if (k->ev) return;
  k->ev = sim__at_tr(k->tr->w, k->tr, k->tr->w->now, wake_fire, k, 0);
  k->tr->wakes_pending++;
}

static void tr_wake_free(bn_twake_t *k) {
  if (!k) return;
  if (k->ev) k->tr->wakes_pending--;
  sim_cancel(k->tr->w, k->ev);
  k->tr->nwakes--;
  sim_free(k);
}

/* ------------------------------------------------------- deferral, run */

static void tr_defer(bn_transport_t *bt, bn_defer_cb cb, void *ud) {
  sim_tr_t *t = (sim_tr_t *)bt;
  for (int i = 0; i < t->ndefer; i++)
    if (t->defer_cb[i] == cb && t->defer_ud[i] == ud) return;
  BN_ASSERT(t->ndefer < SIM_MAX_DEFER);
  t->defer_cb[t->ndefer] = cb;
  t->defer_ud[t->ndefer] = ud;
  t->ndefer++;
}

/* A crashed node's own queue: its teardown, outside simulated time. */
static int dead_run(sim_tr_t *t, bn_run_mode_t mode) {
  sim_world_t *w = t->w;
  for (;;) {
    sim__defers_run(w, t);
    if (t->heap.n == 0) return 0;
    ev_run(w, heap_pop(&t->heap));
    if (++t->dead_steps > 10000000) sim_fail(w, "a crashed node's teardown never ends");
    if (mode != BN_RUN_DEFAULT) {
      sim__defers_run(w, t);
      return t->heap.n > 0 || t->ndefer > 0;
    }
  }
}

/* Turned by a node's blocking call (bftnet_connect, _stop, _flush): the
 * whole world moves, the other nodes too. */
static int tr_run(bn_transport_t *bt, bn_run_mode_t mode) {
  sim_tr_t *t = (sim_tr_t *)bt;
  sim_world_t *w = t->w;
  if (t->dead) return dead_run(t, mode);
  switch (mode) {
  case BN_RUN_ONCE:
    if (sim_step(w)) {
      w->idle_runs = 0;
      return 1;
    }
    if (++w->idle_runs > 1000)
      sim_fail(w, "deadlock: a blocking call turns a world with nothing left to run");
    return 0;
  case BN_RUN_NOWAIT:
    while (w->heap.n && w->heap.a[0]->at <= w->now)
      sim_step(w);
    sim__defers_run(w, NULL);
    return w->heap.n > 0;
  case BN_RUN_DEFAULT:
    while (sim_step(w)) {
    }
    return 0;
  }
  return 0;
}

static void tr_shutdown(bn_transport_t *bt) {
  (void)bt;
}

/* ----------------------------------------------------------- transports */

static bn_transport_ops_t g_ops;

sim_tr_t *sim_tr_new(sim_world_t *w, int host) {
  if (!g_ops.run) {
    sim__sock_fill_ops(&g_ops);
    g_ops.timer_new = tr_timer_new;
    g_ops.timer_start = tr_timer_start;
    g_ops.timer_start_us = tr_timer_start_us;
    g_ops.timer_stop = tr_timer_stop;
    g_ops.timer_free = tr_timer_free;
    g_ops.defer = tr_defer;
    g_ops.wake_new = tr_wake_new;
    g_ops.wake_send = tr_wake_send;
    g_ops.wake_free = tr_wake_free;
    g_ops.run = tr_run;
    g_ops.shutdown = tr_shutdown;
  }
  sim_tr_t *t = sim_calloc(1, sizeof *t);
  t->w = w;
  t->host = host;
  t->seam = (bn_seam_t){.now_ns = seam_now, .random = seam_random, .ctx = w};
  t->base.ops = &g_ops;
  t->base.seam = &t->seam;
  sim_tr_t **pp = &w->trs; /* creation order: deferred work runs in it */
  while (*pp)
    pp = &(*pp)->next;
  *pp = t;
  return t;
}

bn_transport_t *sim_tr_base(sim_tr_t *t) {
  return &t->base;
}

bool sim_tr_busy(const sim_tr_t *t) {
  return t->ndefer > 0 || t->wakes_pending > 0;
}

int sim_tr_handles(const sim_tr_t *t) {
  return t->nsocks + t->nlisteners + t->ntimers + t->nwakes;
}

void sim_tr_crash(sim_tr_t *t, bool machine) {
  sim_world_t *w = t->w;
  BN_ASSERT(!t->dead);
  t->dead = true;
  t->machine = machine;
  /* Its timers, wakeups and handle callbacks move to its own queue. */
  size_t n = 0;
  sim_ev_t **mine = sim_malloc((w->heap.n + 1) * sizeof *mine);
  for (size_t i = 0; i < w->heap.n; i++)
    if (w->heap.a[i]->owner == t) mine[n++] = w->heap.a[i];
  for (size_t i = 0; i < n; i++) {
    heap_remove(&w->heap, mine[i]);
    heap_push(&t->heap, mine[i]);
  }
  sim_free(mine);
  if (machine) w->host_down[t->host] = true;
  sim__sock_crash(t, machine);
}

void sim_tr_free(sim_tr_t *t) {
  if (!t) return;
  sim_world_t *w = t->w;
  if (sim_tr_handles(t))
    sim_fail(w,
             "a node left handles open on its transport: %d sockets, %d listeners, %d timers, "
             "%d wakeups",
             t->nsocks, t->nlisteners, t->ntimers, t->nwakes);
  while (t->heap.n)
    sim_cancel(w, t->heap.a[t->heap.n - 1]);
  sim_free(t->heap.a);
  for (sim_tr_t **pp = &w->trs; *pp; pp = &(*pp)->next)
    if (*pp == t) {
      *pp = t->next;
      break;
    }
  /* Events it still owns go (none should: every handle is gone). */
  size_t n = 0;
  sim_ev_t **mine = sim_malloc((w->heap.n + 1) * sizeof *mine);
  for (size_t i = 0; i < w->heap.n; i++)
    if (w->heap.a[i]->owner == t) mine[n++] = w->heap.a[i];
  for (size_t i = 0; i < n; i++)
    sim_cancel(w, mine[i]);
  sim_free(mine);
  sim_free(t);
}

void sim_host_up(sim_world_t *w, int host) {
  w->host_down[host] = false;
  sim__sock_host_up(w, host);
  sim_net_changed(w);
}
