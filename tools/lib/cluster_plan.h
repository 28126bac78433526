/*
 * cluster_plan.h — bftnet-cluster's fault timeline: what to do when.
 *
 * Pure: no I/O, no clock. cluster_plan_build() turns the faults parsed from
 * `--faults SPEC` (fault_spec.h) into a list of timed actions — "cut the
 * links of fault 3 at 4000 ms", "blackhole off at 13000 ms", "restart r3
 * at 14000 ms" — sorted by time, that the cluster executes with one libuv
 * timer. The semantics of every kind are in docs/FAULTS.md; this file only
 * decides the instants:
 *
 *   cut        at, at+every, at+2*every, ... while < at+for (every = 0: once)
 *   blackhole  ON at `at`, OFF at at+for
 *   partition  ON at `at`, OFF at at+for
 *   latency    ON at `at`, OFF at at+for (never, if for is open-ended)
 *   kill       KILL at `at`, RESTART at at+restart (if restart is set)
 *   members    MEMBERS at `at`
 *   failover   DOWN at `at`, UP at `back` (if back is set)
 *
 * Only actions strictly before end_ms are kept: the run ends at end_ms and
 * the cluster lifts every remaining link fault itself for the final drain.
 * Ties are broken by SPEC order, then by time order within one fault, so a
 * plan is deterministic.
 */
#ifndef BFTNET_TOOLS_CLUSTER_PLAN_H
#define BFTNET_TOOLS_CLUSTER_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "fault_spec.h"

/* Most actions one plan may hold (a cut every 1 ms for 100 s is 100000). */
#define CLUSTER_PLAN_MAX 100000u

typedef enum cluster_act_kind {
  CLUSTER_ACT_CUT,           /* fault_proxy_cut() on the scope's links */
  CLUSTER_ACT_BLACKHOLE_ON,  /* blackhole the scope's links */
  CLUSTER_ACT_BLACKHOLE_OFF, /* ... and lift it */
  CLUSTER_ACT_PARTITION_ON,  /* refuse + cut every link of the replica */
  CLUSTER_ACT_PARTITION_OFF, /* accept again */
  CLUSTER_ACT_LATENCY_ON,    /* set ms/jitter on the scope's links */
  CLUSTER_ACT_LATENCY_OFF,   /* back to 0 (or to another active latency fault) */
  CLUSTER_ACT_KILL,          /* SIGKILL the replica */
  CLUSTER_ACT_RESTART,       /* start it again: a new incarnation */
  CLUSTER_ACT_MEMBERS,       /* add/remove, files rewritten, SIGHUP */
  CLUSTER_ACT_FAILOVER_DOWN, /* the replica's preferred path, both ways: refuse + cut (or link down)
                              */
  CLUSTER_ACT_FAILOVER_UP    /* ... accepts again */
} cluster_act_kind_t;

typedef struct cluster_act {
  uint64_t t_ms; /* from time zero */
  cluster_act_kind_t kind;
  uint32_t fault; /* index into the faults array given to the build */
  uint32_t seq;   /* generation order (tie-break) */
} cluster_act_t;

/* Expands f[0..n) into actions before end_ms, sorted as described above.
 * out may be NULL to count only (then max is ignored). Returns 0 and sets
 * *count, or -EINVAL with a message in err (more than CLUSTER_PLAN_MAX
 * actions, or more than max when out is given). */
int cluster_plan_build(const fault_t *f, size_t n, uint64_t end_ms, cluster_act_t *out, size_t max,
                       size_t *count, char *err, size_t errlen);

/* The action's name for logs and reports: "cut", "blackhole on", ... */
const char *cluster_act_name(cluster_act_kind_t kind);

/*
 * 1 if some fault of f[0..n) starting before end_ms can break the
 * connections between replicas i and j (either direction), so that
 * messages in flight on them may be lost until migratable streams land:
 * a cut whose scope has the link, a partition, kill or failover of i or j,
 * a membership change removing i or j, or a blackhole of the link lasting
 * at least ping_timeout_ms (the keepalive then declares it dead). Else 0.
 */
int cluster_plan_breaks_link(const fault_t *f, size_t n, uint64_t end_ms, int i, int j,
                             uint32_t ping_timeout_ms);

/* 1 if any fault of f[0..n) starting before end_ms can break some link. */
int cluster_plan_breaks_any(const fault_t *f, size_t n, uint64_t end_ms, unsigned nslots,
                            uint32_t ping_timeout_ms);

#endif
