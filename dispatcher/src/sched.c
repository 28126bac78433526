/*
 * sched.c — which traffic class of a member writes the next piece on its
 * connection (dispatcher.h, "scheduler"): strict priority, a minimum share
 * for the less urgent levels while they wait, and start-time fair queueing
 * by weight within a level. Pure: no clock, no I/O, no allocation.
 *
 * Why credit in whole pieces: a level waiting behind a busy more urgent
 * one is owed share/(100 - share) bytes per byte written above it, and it
 * writes when it holds one piece's worth. An urgent class that only sends
 * now and then (votes behind blocks) earns the blocks nothing worth a
 * piece, so they never cut in front of it; only a flood of urgent traffic
 * (at least (100 - share)/share pieces of it) lets one piece of a lower
 * level through, which is the point of the minimum share. A level with
 * nothing waiting keeps no credit: an idle class cannot save up a burst.
 */
#include "dispatcher.h"

#define VT_SHIFT 16u /* virtual time in bytes << 16 / weight */

void disp_sched_init(disp_sched_t *s, unsigned n, const uint8_t *prio, const uint32_t *weight,
                     uint32_t share) {
  BN_ASSERT(n >= 1 && n <= BFTNET_MAX_CLASSES && share <= 50);
  memset(s, 0, sizeof *s);
  s->n = n;
  s->share = share;
  s->via_owed = -1;
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

/* The ready classes of level l. */
static uint32_t level_mask(const disp_sched_t *s, unsigned l, uint32_t ready) {
  uint32_t m = 0;
  for (unsigned i = 0; i < s->n; i++)
    if ((ready & (1u << i)) && s->lev[i] == l) m |= 1u << i;
  return m;
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
  s->via_owed = -1;
  if (!ready) return -1;
  unsigned top = s->nlev;
  for (unsigned i = 0; i < s->n; i++)
    if ((ready & (1u << i)) && s->lev[i] < top) top = s->lev[i];
  unsigned l = top;
  for (unsigned x = top + 1; x < s->nlev; x++)
    if (s->owed[x] >= DISP_PIECE && level_mask(s, x, ready)) {
      l = x; /* the minimum share is due */
      s->via_owed = (int)x;
      break;
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
  if (s->via_owed == (int)l) {
    s->owed[l] -= BN_MIN((uint64_t)bytes, s->owed[l]);
  } else if (s->share) {
    uint64_t earn = (uint64_t)bytes * s->share / (100u - s->share);
    for (unsigned x = l + 1; x < s->nlev; x++)
      if (level_mask(s, x, waiting)) s->owed[x] += earn;
  }
  for (unsigned x = 0; x < s->nlev; x++)
    if (!level_mask(s, x, waiting)) s->owed[x] = 0; /* nothing waiting: no credit */
  s->via_owed = -1;
}
