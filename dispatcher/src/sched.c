/*
 * sched.c — which traffic class of a member writes the next piece on its
 * connection (dispatcher.h, "scheduler"): strict priority, a minimum share
 * for the less urgent levels while they wait, and start-time fair queueing
 * by weight within a level. Pure: no clock, no I/O, no allocation.
 *
 * The minimum share is kept at each boundary between two priority levels:
 * every byte a level writes while something below it waits earns the
 * boundary just below it share/(100 - share) bytes of credit; when the
 * boundary below the most urgent ready level holds a piece's worth, the
 * next ready level down writes instead (and, if the boundary below that
 * one is owed too, the next, and so on). Every byte written below a
 * boundary, however it got its turn, pays its credit back: an urgent class
 * that is mostly idle leaves nothing owed behind it. So everything below a
 * level gets at least `share`
 * of what is written while it waits, recursively (with 10 %: 90 / 9 /
 * 0.9 ... for three saturated levels), and credit is only ever earned from
 * the level directly above: bulk owed by busy blocks never cuts in front
 * of a vote.
 *
 * Why credit in whole pieces: an urgent class that only sends now and then
 * (votes behind blocks) earns the level below nothing worth a piece, so it
 * never waits behind one; only a flood of urgent traffic (at least
 * (100 - share)/share pieces of it) lets one piece of a lower level
 * through, which is the point of the minimum share. A boundary with
 * nothing waiting below keeps no credit: an idle class cannot save up a
 * burst.
 */
#include "dispatcher.h"

#define VT_SHIFT 16u /* virtual time in bytes << 16 / weight */

void disp_sched_init(disp_sched_t *s, unsigned n, const uint8_t *prio, const uint32_t *weight,
                     uint32_t share) {
  BN_ASSERT(n >= 1 && n <= BFTNET_MAX_CLASSES && share <= 50);
  memset(s, 0, sizeof *s);
  s->n = n;
  s->share = share;
  /* Levels: the distinct priorities, most urgent first. */
  for (unsigned i = 0; i < n; i++) {
    unsigned lev = 0;
    bool seen[256] = {false};
    for (unsigned j = 0; j < n; j++)
      if (prio[j] < prio[i] && !seen[prio[j]]) {
        seen[prio[j]] = true;
        lev++;
      }
    s->lev[i] = (uint8_t)lev;
    s->nlev = BN_MAX(s->nlev, lev + 1);
    s->weight[i] = weight[i] ? weight[i] : 1;
  }
}

/* The classes of level l in mask. */
static uint32_t level_mask(const disp_sched_t *s, unsigned l, uint32_t mask) {
  uint32_t m = 0;
  for (unsigned i = 0; i < s->n; i++)
    if ((mask & (1u << i)) && s->lev[i] == l) m |= 1u << i;
  return m;
}

/* The most urgent level of mask at or below level l, or nlev. */
static unsigned level_next(const disp_sched_t *s, unsigned l, uint32_t mask) {
  unsigned best = s->nlev;
  for (unsigned i = 0; i < s->n; i++)
    if ((mask & (1u << i)) && s->lev[i] >= l && s->lev[i] < best) best = s->lev[i];
  return best;
}

int disp_sched_pick(disp_sched_t *s, uint32_t ready, uint32_t waiting) {
  uint32_t all = (1u << s->n) - 1;
  waiting &= all;
  ready &= waiting;
  /* A class that had nothing to send starts at its level's virtual time. */
  for (unsigned i = 0; i < s->n; i++)
    if ((waiting & ~s->ready_prev & (1u << i)) && s->vt[i] < s->vlev[s->lev[i]])
      s->vt[i] = s->vlev[s->lev[i]];
  s->ready_prev = waiting;
  if (!ready) return -1;
  /* The most urgent ready level, unless the boundary below it is owed a
   * piece: then the next ready level down, and so on. */
  unsigned l = level_next(s, 0, ready);
  for (;;) {
    unsigned nx = level_next(s, l + 1, ready);
    if (nx >= s->nlev || s->owed[l + 1] < DISP_PIECE) break;
    l = nx;
  }
  uint32_t m = level_mask(s, l, ready);
  int best = -1;
  for (unsigned i = 0; i < s->n; i++)
    if ((m & (1u << i)) && (best < 0 || s->vt[i] < s->vt[best])) best = (int)i;
  s->vlev[l] = s->vt[best];
  return best;
}

void disp_sched_served(disp_sched_t *s, unsigned c, size_t bytes, uint32_t waiting) {
  BN_ASSERT(c < s->n);
  unsigned l = s->lev[c];
  s->vt[c] += ((uint64_t)bytes << VT_SHIFT) / s->weight[c];
  /* A byte written at level l repays every boundary at or above it (the
   * boundaries it crossed among them): what was owed to the levels below
   * them got through, by credit or because the levels above were idle. */
  for (unsigned b = 1; b <= l; b++)
    s->owed[b] -= BN_MIN((uint64_t)bytes, s->owed[b]);
  if (s->share && l + 1 < s->nlev && level_next(s, l + 1, waiting) < s->nlev)
    s->owed[l + 1] += (uint64_t)bytes * s->share / (100u - s->share);
  for (unsigned b = 1; b < s->nlev; b++) /* nothing waiting below: no credit */
    if (level_next(s, b, waiting) >= s->nlev) s->owed[b] = 0;
}
