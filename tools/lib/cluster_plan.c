/* cluster_plan.c — see cluster_plan.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "cluster_plan.h"

typedef struct plan_buf {
  cluster_act_t *out; /* NULL: count only */
  size_t max, n;
  uint64_t end_ms;
  bool full;
} plan_buf_t;

static void plan_add(plan_buf_t *b, uint64_t t, cluster_act_kind_t kind, size_t fault) {
  if (t >= b->end_ms) return;
  if (b->n >= CLUSTER_PLAN_MAX || (b->out && b->n >= b->max)) {
    b->full = true;
    return;
  }
  if (b->out)
    b->out[b->n] =
        (cluster_act_t){.t_ms = t, .kind = kind, .fault = (uint32_t)fault, .seq = (uint32_t)b->n};
  b->n++;
}

/* start + len, or "never" when len is open-ended. */
static uint64_t plan_end(uint64_t start, uint64_t len) {
  return len == FAULT_FOREVER ? FAULT_NEVER : start + len;
}

static void plan_cuts(plan_buf_t *b, const fault_t *f, size_t idx) {
  if (f->every_ms == 0) {
    plan_add(b, f->at_ms, CLUSTER_ACT_CUT, idx);
    return;
  }
  uint64_t stop = plan_end(f->at_ms, f->for_ms);
  if (stop > b->end_ms) stop = b->end_ms;
  for (uint64_t t = f->at_ms; t < stop && !b->full; t += f->every_ms)
    plan_add(b, t, CLUSTER_ACT_CUT, idx);
}

static void plan_interval(plan_buf_t *b, const fault_t *f, size_t idx, cluster_act_kind_t on,
                          cluster_act_kind_t off) {
  plan_add(b, f->at_ms, on, idx);
  uint64_t stop = plan_end(f->at_ms, f->for_ms);
  if (stop != FAULT_NEVER) plan_add(b, stop, off, idx);
}

static void plan_one(plan_buf_t *b, const fault_t *f, size_t idx) {
  switch (f->kind) {
  case FAULT_CUT:
    plan_cuts(b, f, idx);
    break;
  case FAULT_BLACKHOLE:
    plan_interval(b, f, idx, CLUSTER_ACT_BLACKHOLE_ON, CLUSTER_ACT_BLACKHOLE_OFF);
    break;
  case FAULT_PARTITION:
    plan_interval(b, f, idx, CLUSTER_ACT_PARTITION_ON, CLUSTER_ACT_PARTITION_OFF);
    break;
  case FAULT_LATENCY:
    plan_interval(b, f, idx, CLUSTER_ACT_LATENCY_ON, CLUSTER_ACT_LATENCY_OFF);
    break;
  case FAULT_KILL:
    plan_add(b, f->at_ms, CLUSTER_ACT_KILL, idx);
    if (f->restart_ms != FAULT_NEVER)
      plan_add(b, f->at_ms + f->restart_ms, CLUSTER_ACT_RESTART, idx);
    break;
  case FAULT_MEMBERS:
    plan_add(b, f->at_ms, CLUSTER_ACT_MEMBERS, idx);
    break;
  case FAULT_FAILOVER:
    plan_add(b, f->at_ms, CLUSTER_ACT_FAILOVER_DOWN, idx);
    if (f->back_ms != FAULT_NEVER) plan_add(b, f->back_ms, CLUSTER_ACT_FAILOVER_UP, idx);
    break;
  }
}

/* Time, then SPEC order, then generation order (chronological per fault):
 * a total order, so qsort's instability does not matter. */
static int act_cmp(const void *pa, const void *pb) {
  const cluster_act_t *a = pa, *b = pb;
  if (a->t_ms != b->t_ms) return a->t_ms < b->t_ms ? -1 : 1;
  if (a->fault != b->fault) return a->fault < b->fault ? -1 : 1;
  return (a->seq > b->seq) - (a->seq < b->seq);
}

int cluster_plan_build(const fault_t *f, size_t n, uint64_t end_ms, cluster_act_t *out, size_t max,
                       size_t *count, char *err, size_t errlen) {
  plan_buf_t b = {.out = out, .max = max, .end_ms = end_ms};
  if (err && errlen) err[0] = '\0';
  for (size_t i = 0; i < n && !b.full; i++)
    plan_one(&b, &f[i], i);
  if (b.full) {
    if (err && errlen)
      snprintf(err, errlen,
               "faults: more than %zu actions before the end of the run (a cut "
               "`every` too small for the duration?)",
               out && max < CLUSTER_PLAN_MAX ? max : (size_t)CLUSTER_PLAN_MAX);
    *count = 0;
    return -EINVAL;
  }
  if (out && b.n > 1) qsort(out, b.n, sizeof *out, act_cmp);
  *count = b.n;
  return 0;
}

const char *cluster_act_name(cluster_act_kind_t kind) {
  switch (kind) {
  case CLUSTER_ACT_CUT:
    return "cut";
  case CLUSTER_ACT_BLACKHOLE_ON:
    return "blackhole on";
  case CLUSTER_ACT_BLACKHOLE_OFF:
    return "blackhole off";
  case CLUSTER_ACT_PARTITION_ON:
    return "partition on";
  case CLUSTER_ACT_PARTITION_OFF:
    return "partition off";
  case CLUSTER_ACT_LATENCY_ON:
    return "latency on";
  case CLUSTER_ACT_LATENCY_OFF:
    return "latency off";
  case CLUSTER_ACT_KILL:
    return "kill";
  case CLUSTER_ACT_RESTART:
    return "restart";
  case CLUSTER_ACT_MEMBERS:
    return "members";
  case CLUSTER_ACT_FAILOVER_DOWN:
    return "failover down";
  case CLUSTER_ACT_FAILOVER_UP:
    return "failover up";
  }
  return "?";
}

static int touches(int r, int i, int j) {
  return r != FAULT_NONE && (r == i || r == j);
}

int cluster_plan_breaks_link(const fault_t *f, size_t n, uint64_t end_ms, int i, int j,
                             uint32_t ping_timeout_ms) {
  if (i == j) return 0;
  for (size_t k = 0; k < n; k++) {
    const fault_t *x = &f[k];
    if (x->at_ms >= end_ms) continue;
    switch (x->kind) {
    case FAULT_CUT:
      if (fault_scope_has_link(&x->scope, i, j)) return 1;
      break;
    case FAULT_BLACKHOLE:
      if (x->for_ms >= ping_timeout_ms && fault_scope_has_link(&x->scope, i, j)) return 1;
      break;
    case FAULT_PARTITION:
    case FAULT_KILL:
    case FAULT_FAILOVER:
      if (touches(x->scope.a, i, j)) return 1;
      break;
    case FAULT_MEMBERS:
      if (touches(x->remove, i, j)) return 1;
      break;
    case FAULT_LATENCY:
      break;
    }
  }
  return 0;
}

int cluster_plan_breaks_any(const fault_t *f, size_t n, uint64_t end_ms, unsigned nslots,
                            uint32_t ping_timeout_ms) {
  for (unsigned i = 0; i < nslots; i++)
    for (unsigned j = i + 1; j < nslots; j++)
      if (cluster_plan_breaks_link(f, n, end_ms, (int)i, (int)j, ping_timeout_ms)) return 1;
  return 0;
}
