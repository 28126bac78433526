/* The one place that reads the clock and draws randomness. */
#include <time.h>

#include <ck_pr.h>
#include <sodium.h>

#include "core.h"

static uint64_t sys_now_ns(void *ctx) {
  (void)ctx;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sys_random(void *ctx, void *buf, size_t n) {
  (void)ctx;
  randombytes_buf(buf, n);
}

static const bn_seam_t g_system = {sys_now_ns, sys_random, NULL};

const bn_seam_t *bn_seam_system(void) {
  return &g_system;
}

static uint64_t sim_now_ns(void *ctx) {
  return ((bn_seam_sim_t *)ctx)->now_ns;
}

static void sim_random(void *ctx, void *buf, size_t n) {
  bn_seam_sim_t *s = ctx;
  /* seed (8 bytes) || call counter (8 bytes) || zeros: one ChaCha20 stream per call */
  uint8_t seed[randombytes_SEEDBYTES] = {0};
  bn_store_be64(seed, s->seed);
  bn_store_be64(seed + 8, s->counter++);
  randombytes_buf_deterministic(buf, n, seed);
}

void bn_seam_sim_init(bn_seam_sim_t *s, uint64_t seed) {
  s->seam.now_ns = sim_now_ns;
  s->seam.random = sim_random;
  s->seam.ctx = s;
  s->now_ns = 1000000000ull;
  s->seed = seed;
  s->counter = 0;
}

uint64_t bn_random_uniform(const bn_seam_t *s, uint64_t bound) {
  BN_ASSERT(bound > 0);
  uint64_t limit = UINT64_MAX - (UINT64_MAX % bound);
  for (;;) {
    uint64_t r;
    bn_random(s, &r, sizeof r);
    if (r < limit) return r % bound;
  }
}

void bn_counter_add(bn_counters_t *c, bftnet_counter_id_t id, uint64_t n) {
  BN_ASSERT((unsigned)id < BFTNET_COUNTER_COUNT);
  ck_pr_add_64(&c->v[id], n);
}

uint64_t bn_counter_get(const bn_counters_t *c, bftnet_counter_id_t id) {
  BN_ASSERT((unsigned)id < BFTNET_COUNTER_COUNT);
  return ck_pr_load_64((uint64_t *)&c->v[id]);
}

void bn_wipe(void *p, size_t n) {
  sodium_memzero(p, n);
}
