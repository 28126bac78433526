/* faults.c — the fault plan: every action on its timer, applied to the
 * proxies, the replicas or (with --netns) the links. */
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

/* --------------------------------------------------------- fault actions */

/* What a fault does to one proxy, on the link from replica i to j. */
typedef void (*proxy_fn)(cl_proxy_t *x, int i, int j, void *arg);

/* Applies fn to every proxy on a link in the scope; returns how many. */
static int scope_each(const fault_scope_t *sc, proxy_fn fn, void *arg) {
  int n = 0;
  for (unsigned i = 0; i < cl.nslots; i++)
    for (unsigned j = 0; j < cl.nslots; j++)
      if (fault_scope_has_link(sc, (int)i, (int)j))
        for (unsigned p = 0; p < cl.npaths; p++) {
          cl_proxy_t *x = proxies_at((int)i, (int)j, (int)p);
          if (!x->px) continue; /* cannot happen: a faulted link has its proxies */
          fn(x, (int)i, (int)j, arg);
          n++;
        }
  return n;
}

static void do_cut(cl_proxy_t *x, int i, int j, void *arg) {
  int k = fault_proxy_cut(x->px);
  if (k > 0) *(int *)arg += k;
}

static void do_bh_on(cl_proxy_t *x, int i, int j, void *arg) {
  proxies_blackhole(x, +1);
}

static void do_bh_off(cl_proxy_t *x, int i, int j, void *arg) {
  proxies_blackhole(x, -1);
}

static void do_refuse_on_cut(cl_proxy_t *x, int i, int j, void *arg) {
  proxies_refuse(x, +1);
  do_cut(x, i, j, arg);
}

static void do_refuse_off(cl_proxy_t *x, int i, int j, void *arg) {
  proxies_refuse(x, -1);
}

/* Latency: the proxy follows the last-listed active latency fault that
 * covers its link; with none it is back to 0 ms. */
static void do_latency(cl_proxy_t *x, int i, int j, void *arg) {
  int owner = -1;
  for (size_t k = 0; k < cl.nfaults; k++)
    if (cl.lat_active[k] && fault_scope_has_link(&cl.faults[k].scope, i, j)) owner = (int)k;
  x->lat_owner = owner;
  if (owner < 0)
    fault_proxy_latency(x->px, 0, 0);
  else
    fault_proxy_latency(x->px, cl.faults[owner].latency_ms, cl.faults[owner].jitter_ms);
}

static void span_open(size_t fi) {
  if (cl.nspans < sizeof cl.spans / sizeof *cl.spans)
    cl.spans[cl.nspans++] = (cl_span_t){.on = cl_now_ms(), .off = -1, .fault = (int)fi};
}

static void span_close(size_t fi) {
  for (size_t k = cl.nspans; k-- > 0;)
    if (cl.spans[k].fault == (int)fi && cl.spans[k].off < 0) {
      cl.spans[k].off = cl_now_ms();
      return;
    }
}

/* Failover: replica a's preferred path (path 0) goes down, as if the
 * network behind its first address failed: the proxies to its preferred
 * address (P(j->a, 0)) and those it reaches the others' preferred
 * addresses by (P(a->j, 0)). Otherwise a pair would just keep the
 * connection `a` dialed and never try a second address. */
static int failover_each(int a, proxy_fn fn, void *arg) {
  int n = 0;
  for (unsigned j = 0; j < cl.nslots; j++)
    if ((int)j != a) {
      fn(proxies_at((int)j, a, 0), (int)j, a, arg);
      fn(proxies_at(a, (int)j, 0), a, (int)j, arg);
      n += 2;
    }
  return n;
}

/* --netns: replica a's links (path p, or every path with p < 0) down
 * (delta +1) or up (-1), counted per link (cluster_netns_link). Returns
 * how many links were asked. */
static int netns_links(int a, int p, int delta) {
  int n = 0;
  for (unsigned q = 0; q < cl.npaths; q++) {
    if (p >= 0 && (unsigned)p != q) continue;
    if (cluster_netns_link(&cl.ns, (unsigned)a, q, delta) < 0)
      cl_warn("ip link set v%dp%u %s failed (see %s/netns.log)", a, q, delta > 0 ? "down" : "up",
              cl.out);
    n++;
  }
  return n;
}

static void act_kill(size_t fi) {
  cl_replica_t *r = &cl.rep[cl.faults[fi].scope.a];
  if (!procs_alive(r->inc)) {
    cl_event("fault", (int)fi, "kill", "%s is not running: nothing to kill", r->name);
    return;
  }
  r->inc->killed = true;
  r->kills++;
  r->kill_ms = cl_now_ms();
  int pid = r->inc->proc.pid;
  uv_process_kill(&r->inc->proc, SIGKILL);
  cl_event("fault", (int)fi, "kill", "SIGKILL %s (pid %d, incarnation %d)", r->name, pid,
           r->inc->id);
}

static void act_restart(size_t fi) {
  cl_replica_t *r = &cl.rep[cl.faults[fi].scope.a];
  if (procs_alive(r->inc)) {
    cl_event("fault", (int)fi, "restart", "%s is running: not restarted", r->name);
    return;
  }
  cl_event("fault", (int)fi, "restart", "starting %s again", r->name);
  r->retries = 0;
  procs_restart(r);
}

/* A shaded span on the plot while the fault is on. */
static void span_mark(size_t fi, bool on) {
  if (on)
    span_open(fi);
  else
    span_close(fi);
}

/* Partition: with --netns the replica's links go down (up); else the
 * proxies in the scope refuse and reset their connections (accept again). */
static void act_partition(size_t fi, const char *name, bool on) {
  const fault_t *f = &cl.faults[fi];
  int n, cut = 0;
  if (cl.o.netns) {
    n = netns_links(f->scope.a, -1, on ? +1 : -1);
    span_mark(fi, on);
    if (on)
      cl_event("fault", (int)fi, name, "r%d's %d link(s) to the bridge down (ip link set down)",
               f->scope.a, n);
    else
      cl_event("fault", (int)fi, name, "r%d's %d link(s) up again", f->scope.a, n);
    return;
  }
  n = scope_each(&f->scope, on ? do_refuse_on_cut : do_refuse_off, &cut);
  span_mark(fi, on);
  if (on)
    cl_event("fault", (int)fi, name, "%d proxies refuse; reset %d connections", n, cut);
  else
    cl_event("fault", (int)fi, name, "%d proxies accept again", n);
}

static void act_failover_down(size_t fi, const char *name) {
  int a = cl.faults[fi].scope.a, n, cut = 0;
  cl.rep[a].path_bytes_mark = proxies_path2_bytes(a);
  if (cl.o.netns) {
    netns_links(a, 0, +1);
    span_open(fi);
    cl_event("fault", (int)fi, name,
             "r%d's preferred path is down: its link eth0 to the bridge (ip link set down)", a);
    return;
  }
  n = failover_each(a, do_refuse_on_cut, &cut);
  span_open(fi);
  cl_event("fault", (int)fi, name,
           "r%d's preferred path is down: %d proxies (to its preferred address and from it to "
           "the others') refuse; reset %d connections",
           a, n, cut);
}

static void act_failover_up(size_t fi, const char *name) {
  int a = cl.faults[fi].scope.a, n;
  if (cl.o.netns)
    n = netns_links(a, 0, -1);
  else
    n = failover_each(a, do_refuse_off, NULL);
  span_close(fi);
  cl_event("fault", (int)fi, name,
           "r%d's preferred path is up again (%d %s); %" PRIu64
           " bytes crossed its second path while it was down",
           a, n, cl.o.netns ? "link" : "proxies",
           proxies_path2_bytes(a) - cl.rep[a].path_bytes_mark);
}

/* Latency on (off): the proxies in the scope follow their latency faults. */
static void act_latency(size_t fi, const char *name, bool on) {
  const fault_t *f = &cl.faults[fi];
  cl.lat_active[fi] = on;
  int n = scope_each(&f->scope, do_latency, NULL);
  span_mark(fi, on);
  if (on)
    cl_event("fault", (int)fi, name, "%u ms +/- %u ms on %d proxies", f->latency_ms, f->jitter_ms,
             n);
  else
    cl_event("fault", (int)fi, name, "%d proxies back to their other latency or 0 ms", n);
}

/* Blackhole on (off): the proxies in the scope stall (forward again). */
static void act_blackhole(size_t fi, const char *name, bool on) {
  int n = scope_each(&cl.faults[fi].scope, on ? do_bh_on : do_bh_off, NULL);
  span_mark(fi, on);
  if (on)
    cl_event("fault", (int)fi, name, "%d proxies stall", n);
  else
    cl_event("fault", (int)fi, name, "%d proxies forward again", n);
}

/* --------------------------------------------------------------- the plan */

static void act_run(const cluster_act_t *a) {
  size_t fi = a->fault;
  const char *name = cluster_act_name(a->kind);
  int n, cut = 0;
  switch (a->kind) {
  case CLUSTER_ACT_CUT:
    n = scope_each(&cl.faults[fi].scope, do_cut, &cut);
    cl_event("fault", (int)fi, name, "reset %d connections on %d proxies", cut, n);
    break;
  case CLUSTER_ACT_BLACKHOLE_ON:
  case CLUSTER_ACT_BLACKHOLE_OFF:
    act_blackhole(fi, name, a->kind == CLUSTER_ACT_BLACKHOLE_ON);
    break;
  case CLUSTER_ACT_PARTITION_ON:
  case CLUSTER_ACT_PARTITION_OFF:
    act_partition(fi, name, a->kind == CLUSTER_ACT_PARTITION_ON);
    break;
  case CLUSTER_ACT_LATENCY_ON:
  case CLUSTER_ACT_LATENCY_OFF:
    act_latency(fi, name, a->kind == CLUSTER_ACT_LATENCY_ON);
    break;
  case CLUSTER_ACT_KILL:
    act_kill(fi);
    span_open(fi);
    break;
  case CLUSTER_ACT_RESTART:
    span_close(fi);
    act_restart(fi);
    break;
  case CLUSTER_ACT_MEMBERS:
    members_enqueue(fi);
    break;
  case CLUSTER_ACT_FAILOVER_DOWN:
    act_failover_down(fi, name);
    break;
  case CLUSTER_ACT_FAILOVER_UP:
    act_failover_up(fi, name);
    break;
  }
}

static void on_plan(uv_timer_t *t);

void faults_plan_arm(void) {
  if (cl.next_act >= cl.nplan || cl.phase != PH_RUNNING) return;
  double d = (double)cl.plan[cl.next_act].t_ms - cl_now_ms();
  uv_update_time(&cl.loop); /* timers count from the loop's time: make it now */
  uv_timer_start(&cl.plan_timer, on_plan, d > 0 ? (uint64_t)ceil(d) : 0, 0);
}

static void on_plan(uv_timer_t *t) {
  (void)t;
  double now = cl_now_ms();
  while (cl.next_act < cl.nplan && cl.phase == PH_RUNNING &&
         (double)cl.plan[cl.next_act].t_ms <= now + 0.5)
    act_run(&cl.plan[cl.next_act++]);
  faults_plan_arm();
}
