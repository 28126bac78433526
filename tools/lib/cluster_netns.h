/*
 * cluster_netns.h — bftnet-cluster --netns: every replica in a network
 * namespace of its own, linked to a bridge, so that a partition is a real
 * link going down.
 *
 * Layout, for a cluster with process ID P, S replica slots and 1 or 2
 * paths:
 *
 *   bftcP-hub   the cluster's own namespace: bridge br<p> per path with
 *               10.77.<p>.1/24, and the hub end v<i>p<p> of every veth.
 *               bftnet-cluster enters it (setns) before it opens any
 *               socket, so its fault proxies listen on 10.77.<p>.1.
 *   bftcP-r<i>  replica i: eth<p> = 10.77.<p>.<i+2>/24 on path p (the
 *               other end of v<i>p<p>), and lo. The replica runs there
 *               (`ip netns exec`) and listens on 10.77.<p>.<i+2>.
 *
 * Every address lives inside these namespaces: nothing is added to the
 * namespace bftnet-cluster was started in, so the subnet cannot collide
 * with the host's and two clusters can run at once. Links go down and up
 * with `ip -n bftcP-hub link set v<i>p<p> down|up` (the replica's side
 * loses its carrier: packets are dropped, nothing is reset).
 *
 * Everything is done by running iproute2's `ip` (posix_spawnp, stdout and
 * stderr appended to a log file, each command killed after 10 s). Linux
 * only; needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN). Not thread-safe: call
 * from one thread, and enter the hub while the process has only that one
 * thread (setns changes the calling thread only).
 */
#ifndef BFTNET_TOOLS_CLUSTER_NETNS_H
#define BFTNET_TOOLS_CLUSTER_NETNS_H

#include <stdbool.h>
#include <stddef.h>

#define CLUSTER_NETNS_SLOTS_MAX 200 /* replica i has 10.77.p.(i+2) */
#define CLUSTER_NETNS_PATHS_MAX 2
#define CLUSTER_NETNS_NAME_MAX  32
#define CLUSTER_NETNS_ADDR_MAX  16 /* "10.77.1.201" + NUL */

typedef struct cluster_netns {
  char prefix[CLUSTER_NETNS_NAME_MAX]; /* "bftc<pid>" */
  char log[1024];                      /* ip's output goes here ("" = /dev/null) */
  unsigned nslots, npaths;
  bool hub;      /* bftcP-hub exists */
  unsigned made; /* replica namespaces created: r0 .. r(made-1) */
  int orig_fd;   /* our namespace before cluster_netns_enter, or -1 */
  bool netem;    /* `tc ... netem` worked in the hub (informational) */
  int down[CLUSTER_NETNS_SLOTS_MAX][CLUSTER_NETNS_PATHS_MAX]; /* faults holding a link down */
} cluster_netns_t;

/* 0 if namespaces can be used here: root, `ip` runs, and a namespace can
 * be created and deleted. Else -1 with the reason in why. */
int cluster_netns_usable(char *why, size_t len);

/* Deletes namespaces bftc<pid>-* left by clusters whose process is gone
 * (killed with SIGKILL, say). Returns how many it deleted. */
int cluster_netns_sweep(const char *log);

/* Creates the hub, the bridges and every replica namespace with its
 * veths, addresses and routes up. On error returns -1 with a message in
 * err; what was made is still recorded: call cluster_netns_teardown. */
int cluster_netns_setup(cluster_netns_t *ns, unsigned nslots, unsigned npaths, const char *log,
                        char *err, size_t len);

/* Enters the hub namespace (this thread) / returns to the original one. */
int cluster_netns_enter(cluster_netns_t *ns, char *err, size_t len);
void cluster_netns_leave(cluster_netns_t *ns);

/* Deletes every namespace setup made (idempotent). */
void cluster_netns_teardown(cluster_netns_t *ns);

/* Names and addresses. */
void cluster_netns_name(const cluster_netns_t *ns, unsigned slot, char *buf, size_t len);
void cluster_netns_replica_ip(unsigned slot, unsigned path, char *buf, size_t len);
void cluster_netns_hub_ip(unsigned path, char *buf, size_t len);

/* Replica slot's link on path goes down (delta +1) or, once no fault holds
 * it down any more, up (delta -1). Returns 1 if the link changed state,
 * 0 if not, -1 if `ip` failed. */
int cluster_netns_link(cluster_netns_t *ns, unsigned slot, unsigned path, int delta);

/* Brings every link up (the end of a run). */
void cluster_netns_all_up(cluster_netns_t *ns);

#endif
