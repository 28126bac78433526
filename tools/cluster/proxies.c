/* proxies.c — the fault proxy of every ordered pair and path: ports,
 * addresses, fault switches, bytes per path. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cluster.h"

/* ---------------------------------------------------------------- ports */

/* Reserves a free loopback port: a bound (not listening) socket holds it
 * until every proxy is bound, so no proxy can take it; it is closed just
 * before the replicas start. */
static int port_reserve(int *fd, uint16_t *port) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -errno;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  if (bind(s, (struct sockaddr *)&a, sizeof a) != 0 ||
      getsockname(s, (struct sockaddr *)&a, &len) != 0) {
    int e = -errno;
    close(s);
    return e;
  }
  *fd = s;
  *port = ntohs(a.sin_port);
  return 0;
}

/* -------------------------------------------------------------- proxies */

cl_proxy_t *proxies_at(int i, int j, int p) {
  return &cl.px[((size_t)i * cl.nslots + (size_t)j) * cl.npaths + (size_t)p];
}

static void on_proxy_closed(fault_proxy_t *px, void *arg) {
  (void)px;
  (void)arg;
  cl.px_open--;
}

void proxies_replica_ip(unsigned j, unsigned p, char *buf, size_t len) {
  if (cl.o.netns)
    cluster_netns_replica_ip(j, p, buf, len);
  else
    snprintf(buf, len, "127.0.0.1");
}

void proxies_listen_ip(unsigned p, char *buf, size_t len) {
  if (cl.o.netns)
    cluster_netns_hub_ip(p, buf, len);
  else
    snprintf(buf, len, "127.0.0.1");
}

/* A fault that acts on links (not on processes or the membership) is
 * scheduled on the link between replicas i and j. */
static bool link_faulted(unsigned i, unsigned j) {
  for (size_t k = 0; k < cl.nfaults; k++) {
    const fault_t *f = &cl.faults[k];
    if (f->kind == FAULT_KILL || f->kind == FAULT_MEMBERS) continue;
    if (fault_scope_has_link(&f->scope, (int)i, (int)j)) return true;
  }
  return false;
}

/* One proxy per ordered pair and path, to the target's port; with
 * --direct, only on the links a fault acts on (the others connect
 * replica to replica). */
static int proxies_create(void) {
  cl.npx = (size_t)cl.nslots * cl.nslots * cl.npaths;
  cl.px = calloc(cl.npx, sizeof *cl.px);
  if (!cl.px) return -ENOMEM;
  for (unsigned i = 0; i < cl.nslots; i++)
    for (unsigned j = 0; j < cl.nslots; j++)
      for (unsigned p = 0; i != j && p < cl.npaths; p++) {
        if (cl.o.direct && !link_faulted(i, j)) continue;
        char lip[CLUSTER_NETNS_ADDR_MAX], tip[CLUSTER_NETNS_ADDR_MAX];
        proxies_listen_ip(p, lip, sizeof lip);
        proxies_replica_ip(j, p, tip, sizeof tip);
        struct sockaddr_in lis, tgt;
        uv_ip4_addr(lip, 0, &lis);
        uv_ip4_addr(tip, cl.rep[j].port[p], &tgt);
        cl_proxy_t *x = proxies_at((int)i, (int)j, (int)p);
        fault_proxy_opts_t po = {.seed = cl.o.seed * 1000003u + (uint64_t)(x - cl.px) + 1,
                                 .private_ok = cl.o.netns};
        x->lat_owner = -1;
        int rc = fault_proxy_create(&cl.loop, (struct sockaddr *)&lis, (struct sockaddr *)&tgt, &po,
                                    &x->px);
        if (rc) return cl_warn("proxy r%u->r%u: %s", i, j, uv_strerror(rc)), rc;
        cl.px_open++;
        cl.npx_made++;
      }
  return 0;
}

/* Bytes through one proxy, both directions, since the start. */
static uint64_t proxy_bytes(const cl_proxy_t *x) {
  if (!x->px) return 0;
  fault_proxy_stats_t st;
  fault_proxy_stats(x->px, &st);
  return st.bytes_to_target + st.bytes_to_client;
}

/* Bytes that crossed the proxies to replica a's address number p. */
static uint64_t proxies_path_bytes(int a, int p) {
  uint64_t n = 0;
  for (unsigned j = 0; j < cl.nslots; j++)
    if ((int)j != a) n += proxy_bytes(proxies_at((int)j, a, p));
  return n;
}

/* Bytes through every second-path proxy touching replica a, both ways. */
uint64_t proxies_path2_bytes(int a) {
  uint64_t n = proxies_path_bytes(a, 1);
  for (unsigned j = 0; j < cl.nslots; j++)
    if ((int)j != a) n += proxy_bytes(proxies_at(a, (int)j, 1));
  return n;
}

int proxies_setup(void) {
  int fds[CL_MAX_SLOTS * CL_PATHS_MAX], nfd = 0, rc = 0;
  for (unsigned i = 0; i < cl.nslots && rc == 0; i++)
    for (unsigned p = 0; p < cl.npaths && rc == 0; p++)
      if (cl.o.netns) /* an address of its own: any fixed port */
        cl.rep[i].port[p] = (uint16_t)(CL_NETNS_PORT + p);
      else if ((rc = port_reserve(&fds[nfd], &cl.rep[i].port[p])) == 0)
        nfd++;
  if (rc == 0) rc = proxies_create();
  while (nfd > 0)
    close(fds[--nfd]);
  if (rc) return cl_warn("cannot set up the proxies: %s", strerror(-rc)), rc;
  return 0;
}

void proxies_close(void) {
  for (unsigned i = 0; i < cl.nslots; i++)
    for (unsigned p = 0; p < cl.npaths; p++)
      cl.rep[i].path_bytes[p] = proxies_path_bytes((int)i, (int)p);
  for (size_t k = 0; k < cl.npx; k++)
    if (cl.px[k].px) {
      fault_proxy_close(cl.px[k].px, on_proxy_closed, NULL);
      cl.px[k].px = NULL;
    }
}

void proxies_blackhole(cl_proxy_t *x, int delta) {
  bool was = x->bh > 0;
  x->bh += delta;
  if (x->bh < 0) x->bh = 0;
  if (was != (x->bh > 0)) fault_proxy_blackhole(x->px, x->bh > 0);
}

void proxies_refuse(cl_proxy_t *x, int delta) {
  bool was = x->refuse > 0;
  x->refuse += delta;
  if (x->refuse < 0) x->refuse = 0;
  if (was != (x->refuse > 0)) fault_proxy_refuse(x->px, x->refuse > 0);
}

int proxies_lift_all(void) {
  int lifted = 0;
  for (size_t k = 0; k < cl.npx; k++) {
    cl_proxy_t *x = &cl.px[k];
    if (!x->px) continue;
    if (x->bh) lifted++, x->bh = 0, fault_proxy_blackhole(x->px, 0);
    if (x->refuse) lifted++, x->refuse = 0, fault_proxy_refuse(x->px, 0);
  }
  return lifted;
}
