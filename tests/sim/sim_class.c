/*
 * sim_class.c — the traffic classes a seed draws. In 3 seeds of 10 none
 * is configured (one implicit class: bftnet without classes, and the run
 * is exactly what it was before classes existed: nothing here draws from
 * the other streams). Otherwise 1 to 4 classes, the same list on every
 * node, each with a drawn priority, weight, ring (capacity and byte cap),
 * inbound bounds and policy (keep-latest in about a third), and what the
 * application sends in it: its own pace, broadcast share and sizes (votes,
 * small, mixed, blocks), and for keep-latest classes a few keys.
 * Everything comes from the seed's class stream (rng_cls).
 */
#include <stdio.h>

#include "sim.h"

static uint32_t pick(sim_rng_t *r, const uint32_t *v, size_t n) {
  return v[sim_rng_below(r, n)];
}
#define PICK(r, ...)                                                                               \
  pick((r), (const uint32_t[]){__VA_ARGS__},                                                       \
       sizeof((const uint32_t[]){__VA_ARGS__}) / sizeof(uint32_t))

static const char *const size_names[] = {"votes 24-128 B", "24-512 B", "24-256 B, 5% 1-16 KiB",
                                         "blocks 1-64 KiB"};

bool sim_classes_off;

int sim_ncls(const sim_params_t *p) {
  return p->nclasses ? p->nclasses : 1;
}

static void draw_one(sim_rng_t *r, sim_cls_t *k, int i) {
  snprintf(k->name, sizeof k->name, "c%d", i);
  bftnet_class_init(&k->c, k->name);
  k->c.priority = (uint8_t)sim_rng_below(r, 4);
  k->c.weight = (uint32_t)sim_rng_range(r, 1, 8);
  k->c.ring_capacity = PICK(r, 4, 16, 64, 256, 1024, 4096);
  k->c.ring_max_bytes = PICK(r, 16 * 1024, 256 * 1024, 4 * 1024 * 1024, 64 * 1024 * 1024);
  k->c.policy = sim_rng_pct(r, 35) ? BFTNET_KEEP_LATEST : BFTNET_DROP_OLDEST;
  k->c.inbound_max_msgs = PICK(r, 4, 32, 256, 4096);
  k->c.inbound_max_bytes = PICK(r, 64 * 1024, 1024 * 1024, 64 * 1024 * 1024);
  k->size_kind = (unsigned)sim_rng_below(r, 4);
  uint64_t lo = k->size_kind == SIM_SIZE_BLOCK ? 20 : 4,
           hi = k->size_kind == SIM_SIZE_BLOCK ? 200 : 60;
  k->send_gap_ns = sim_rng_range(r, lo, hi) * SIM_MS;
  k->bcast_pct = (unsigned)sim_rng_range(r, 0, 60);
  if (k->c.policy == BFTNET_KEEP_LATEST) {
    k->keyed_pct = (unsigned)PICK(r, 50, 90, 100);
    k->nkeys = (unsigned)sim_rng_range(r, 1, 8);
  }
}

void sim_classes_draw(sim_run_t *run) {
  sim_rng_t *r = &run->rng_cls;
  sim_params_t *p = &run->p;
  if (sim_rng_pct(r, 30) || sim_classes_off) {
    p->nclasses = 0;
    return;
  }
  p->nclasses = (int)sim_rng_range(r, 1, SIM_MAX_CLS);
  for (int i = 0; i < p->nclasses; i++)
    draw_one(r, &p->cls[i], i);
  p->class_min_share = PICK(r, 0, 10, 25, 50);
  p->class_window = PICK(r, 0, 256 * 1024, 1024 * 1024);
}

void sim_classes_config(const sim_run_t *run, bftnet_config_t *cfg) {
  const sim_params_t *p = &run->p;
  if (!p->nclasses) return;
  static bftnet_class_t list[SIM_MAX_CLS]; /* copied by bftnet_new */
  for (int i = 0; i < p->nclasses; i++)
    list[i] = p->cls[i].c;
  cfg->classes = list;
  cfg->nclasses = (size_t)p->nclasses;
  cfg->class_min_share = p->class_min_share;
  cfg->class_window = p->class_window;
}

size_t sim_classes_size(sim_run_t *run, int cls) {
  sim_rng_t *r = &run->rng_app;
  switch (run->p.cls[cls].size_kind) {
  case SIM_SIZE_VOTE:
    return sim_rng_range(r, 24, 128);
  case SIM_SIZE_SMALL:
    return sim_rng_range(r, 24, 512);
  case SIM_SIZE_MIXED:
    return sim_rng_pct(r, 5) ? sim_rng_range(r, 1024, 16 * 1024) : sim_rng_range(r, 24, 256);
  default:
    return sim_rng_range(r, 1024, 64 * 1024);
  }
}

void sim_classes_print(const sim_run_t *run, FILE *f) {
  const sim_params_t *p = &run->p;
  if (!p->nclasses) {
    fprintf(f, "  no classes configured (one implicit class)\n");
    return;
  }
  fprintf(f, "  %d classes, min share %u%%, class window %u:\n", p->nclasses, p->class_min_share,
          p->class_window);
  for (int i = 0; i < p->nclasses; i++) {
    const sim_cls_t *k = &p->cls[i];
    fprintf(f,
            "    %s: priority %u weight %u, ring %u / %llu B, %s, inbound %u / %llu B; sends "
            "every ~%llu ms, %u%% broadcast, %s",
            k->name, k->c.priority, k->c.weight, k->c.ring_capacity,
            (unsigned long long)k->c.ring_max_bytes,
            k->c.policy == BFTNET_KEEP_LATEST ? "keep-latest" : "drop-oldest",
            k->c.inbound_max_msgs, (unsigned long long)k->c.inbound_max_bytes,
            (unsigned long long)(k->send_gap_ns / SIM_MS), k->bcast_pct, size_names[k->size_kind]);
    if (k->nkeys) fprintf(f, ", %u%% keyed over %u keys", k->keyed_pct, k->nkeys);
    fprintf(f, "\n");
  }
}
