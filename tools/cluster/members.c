/* members.c — the replicas' membership files and the members fault. */
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

/* ------------------------------------------------------- membership files */

static json_t *member_entry(const cl_replica_t *self, const cl_replica_t *m) {
  json_t *addrs = json_array();
  for (unsigned p = 0; p < cl.npaths; p++) {
    /* Through the proxy self -> m, or straight to m (itself, or a direct link). */
    fault_proxy_t *px = self == m ? NULL : proxies_at(self->idx, m->idx, (int)p)->px;
    int port = px ? fault_proxy_port(px) : m->port[p];
    char a[BFTNET_ADDR_MAX], ip[CLUSTER_NETNS_ADDR_MAX];
    if (px)
      proxies_listen_ip(p, ip, sizeof ip);
    else
      proxies_replica_ip((unsigned)m->idx, p, ip, sizeof ip);
    snprintf(a, sizeof a, "/ip4/%s/tcp/%d/p2p/%s", ip, port, m->peer_id);
    json_array_append_new(addrs, json_string(a));
  }
  return json_pack("{s:s, s:o}", "id", m->name, "addrs", addrs);
}

/*
 * Replica r's view of membership `set`: every member, r itself at its real
 * addresses and every other at the proxies r -> it (most preferred path
 * first), or at its real addresses too on a direct link (--direct). A replica outside the set has
 * left the cluster: its file lists only itself, so it stops sending and closes its links
 * (docs/FAULTS.md).
 */
int members_write(const cl_replica_t *r, const bool *set) {
  json_t *arr = json_array();
  if (!set[r->idx]) json_array_append_new(arr, member_entry(r, r));
  for (unsigned j = 0; set[r->idx] && j < cl.nslots; j++)
    if (set[j]) json_array_append_new(arr, member_entry(r, &cl.rep[j]));
  json_t *doc = json_pack("{s:o}", "members", arr);
  int rc = jsonx_write_atomic(doc, r->members_path, JSON_INDENT(2));
  json_decref(doc);
  if (rc) cl_warn("%s: %s", r->members_path, strerror(-rc));
  return rc;
}

/* ------------------------------------------------------- the members fault */

static void members_apply(void);

static void on_members_timeout(uv_timer_t *t) {
  (void)t;
  cl_event("cluster", -1, "members", "r%d did not load its membership within %u ms: going on",
           cl.m_wait, CL_MEMBERS_WAIT_MS);
  members_apply();
}

static void members_next(void);

/* Step 2 of a members fault: every file rewritten (temp + rename), then
 * SIGHUP to every running replica, at once. */
static void members_apply(void) {
  int sent = 0;
  cl.m_wait = -1;
  if (cl.phase != PH_RUNNING) {
    cl.m_busy = false;
    return;
  }
  memcpy(cl.member, cl.member_next, sizeof cl.member);
  for (unsigned i = 0; i < cl.nslots; i++)
    if (cl.rep[i].ever_started || cl.member[i]) members_write(&cl.rep[i], cl.member);
  for (unsigned i = 0; i < cl.nslots; i++) {
    cl_inc_t *inc = cl.rep[i].inc;
    if (procs_alive(inc) && inc->listening && uv_process_kill(&inc->proc, SIGHUP) == 0) sent++;
  }
  char set[256];
  text_buf_t b;
  text_buf_init(&b, set, sizeof set);
  for (unsigned i = 0; i < cl.nslots; i++)
    if (cl.member[i]) text_sep(&b, " "), text_addf(&b, "r%u", i);
  cl_event("cluster", -1, "members",
           "membership files rewritten (members: %s); SIGHUP to %d replicas", set, sent);
  cl.m_busy = false;
  members_next();
}

/* Step 1: the added replica is started first (with the new membership);
 * step 2 runs when it has loaded it. */
static void members_start(size_t fi) {
  const fault_t *f = &cl.faults[fi];
  cl.m_busy = true;
  memcpy(cl.member_next, cl.member, sizeof cl.member);
  if (f->add != FAULT_NONE) cl.member_next[f->add] = true;
  if (f->remove != FAULT_NONE) cl.member_next[f->remove] = false;
  if (f->add != FAULT_NONE && !procs_alive(cl.rep[f->add].inc)) {
    cl_replica_t *r = &cl.rep[f->add];
    if (members_write(r, cl.member_next) == 0 && !r->inc && procs_spawn(r) == 0) {
      cl.m_wait = f->add;
      cl_event("fault", (int)fi, "members", "starting %s first (incarnation %d)", r->name,
               r->incarnations);
      uv_timer_start(&cl.members_timer, on_members_timeout, CL_MEMBERS_WAIT_MS, 0);
      return;
    }
    cl_event("fault", (int)fi, "members", "could not start %s; changing the membership anyway",
             r->name);
  } else {
    cl_event("fault", (int)fi, "members", "changing the membership");
  }
  members_apply();
}

static void members_next(void) {
  if (cl.m_busy || cl.mq_n == 0 || cl.phase != PH_RUNNING) return;
  size_t fi = cl.mq[0];
  memmove(cl.mq, cl.mq + 1, --cl.mq_n * sizeof *cl.mq);
  members_start(fi);
}

void members_enqueue(size_t fi) {
  if (cl.mq_n < FAULT_SPEC_FAULTS_MAX) cl.mq[cl.mq_n++] = fi;
  members_next();
}

void members_settled(int idx) {
  if (cl.m_busy && cl.m_wait == idx) {
    uv_timer_stop(&cl.members_timer);
    members_apply();
  }
}
