/* cluster_netns.c — see cluster_netns.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* setns */
#endif
#include "cluster_netns.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Names and addresses: the same on every platform. */

void cluster_netns_name(const cluster_netns_t *ns, unsigned slot, char *buf, size_t len) {
  snprintf(buf, len, "%s-r%hhu", ns->prefix, (unsigned char)slot);
}

void cluster_netns_replica_ip(unsigned slot, unsigned path, char *buf, size_t len) {
  snprintf(buf, len, "10.77.%hhu.%hhu", (unsigned char)path, (unsigned char)(slot + 2));
}

void cluster_netns_hub_ip(unsigned path, char *buf, size_t len) {
  snprintf(buf, len, "10.77.%hhu.1", (unsigned char)path);
}

#ifdef __linux__
#include <sched.h>
#include <spawn.h>

extern char **environ;

#define NETNS_DIR      "/var/run/netns"
#define NETNS_CMD_MS   10000 /* longest an `ip` command may take */
#define NETNS_ARGS_MAX 24
#define NETNS_POLL_NS  2000000L

static void sleep_ns(long ns) {
  struct timespec ts = {0, ns};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* Runs argv (argv[0] looked up in PATH), output appended to log. Returns
 * the exit status, 128+signal, or -errno when it cannot be started. */
static int run_argv(char *const argv[], const char *log) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log && log[0] ? log : "/dev/null",
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return -rc;
  int st = 0;
  for (long waited = 0;; waited += NETNS_POLL_NS / 1000000L) {
    pid_t w = waitpid(pid, &st, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) return -errno;
    if (waited >= NETNS_CMD_MS) {
      kill(pid, SIGKILL);
      while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
      }
      return -ETIMEDOUT;
    }
    sleep_ns(NETNS_POLL_NS);
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* Runs a command given as one string of blank-separated words (no
 * quoting: every word here is a name, a number or an address). The
 * command line goes to the log first. Returns as run_argv. */
__attribute__((format(printf, 2, 3))) static int run(const char *log, const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof line) return -E2BIG;
  if (log && log[0]) {
    FILE *f = fopen(log, "a");
    if (f) fprintf(f, "+ %s\n", line), fclose(f);
  }
  char *argv[NETNS_ARGS_MAX + 1];
  int argc = 0;
  for (char *save = NULL, *w = strtok_r(line, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
    if (argc == NETNS_ARGS_MAX) return -E2BIG;
    argv[argc++] = w;
  }
  argv[argc] = NULL;
  return argc ? run_argv(argv, log) : -EINVAL;
}

int cluster_netns_usable(char *why, size_t len) {
  if (geteuid() != 0) {
    snprintf(why, len, "not root (network namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN)");
    return -1;
  }
  int rc = run(NULL, "ip -V");
  if (rc == -ENOENT) {
    snprintf(why, len, "iproute2's ip is not installed (Debian: iproute2)");
    return -1;
  }
  char probe[64];
  snprintf(probe, sizeof probe, "bftc%ld-probe", (long)getpid());
  rc = run(NULL, "ip netns add %s", probe);
  if (rc != 0) {
    snprintf(why, len, "`ip netns add` failed (status %d): no network namespaces here", rc);
    return -1;
  }
  rc = run(NULL, "ip -n %s link add bftcprobe0 type bridge", probe);
  run(NULL, "ip netns del %s", probe);
  if (rc != 0) {
    snprintf(why, len, "cannot create a bridge in a namespace (status %d)", rc);
    return -1;
  }
  return 0;
}

int cluster_netns_sweep(const char *log) {
  DIR *d = opendir(NETNS_DIR);
  if (!d) return 0;
  int n = 0;
  char names[64][CLUSTER_NETNS_NAME_MAX + 16];
  size_t k = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL && k < 64;) {
    long pid;
    int used = 0;
    if (sscanf(e->d_name, "bftc%ld-%n", &pid, &used) != 1 || used == 0 || pid <= 0) continue;
    if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* its cluster still runs */
    size_t len = strlen(e->d_name);
    if (len < sizeof names[0]) memcpy(names[k++], e->d_name, len + 1);
  }
  closedir(d);
  for (size_t i = 0; i < k; i++)
    if (run(log, "ip netns del %s", names[i]) == 0) n++;
  return n;
}

static int setup_hub(cluster_netns_t *ns, char *err, size_t len) {
  const char *log = ns->log;
  int rc = run(log, "ip netns add %s-hub", ns->prefix);
  if (rc) return snprintf(err, len, "ip netns add %s-hub: status %d", ns->prefix, rc), -1;
  ns->hub = true;
  rc = run(log, "ip -n %s-hub link set lo up", ns->prefix);
  for (unsigned p = 0; rc == 0 && p < ns->npaths; p++) {
    char ip[CLUSTER_NETNS_ADDR_MAX];
    cluster_netns_hub_ip(p, ip, sizeof ip);
    rc = run(log, "ip -n %s-hub link add br%u type bridge", ns->prefix, p);
    if (rc == 0) rc = run(log, "ip -n %s-hub addr add %s/24 dev br%u", ns->prefix, ip, p);
    if (rc == 0) rc = run(log, "ip -n %s-hub link set br%u up", ns->prefix, p);
  }
  if (rc)
    return snprintf(err, len, "setting up %s-hub: status %d (see %s)", ns->prefix, rc, log), -1;
  /* Informational: could the kernel add latency itself? (We use the proxies.) */
  ns->netem =
      run(log, "ip netns exec %s-hub tc qdisc add dev lo root netem delay 1ms", ns->prefix) == 0;
  if (ns->netem) run(log, "ip netns exec %s-hub tc qdisc del dev lo root", ns->prefix);
  return 0;
}

static int setup_replica(cluster_netns_t *ns, unsigned i, char *err, size_t len) {
  const char *log = ns->log;
  char name[CLUSTER_NETNS_NAME_MAX + 8];
  cluster_netns_name(ns, i, name, sizeof name);
  int rc = run(log, "ip netns add %s", name);
  if (rc) return snprintf(err, len, "ip netns add %s: status %d", name, rc), -1;
  ns->made = i + 1;
  rc = run(log, "ip -n %s link set lo up", name);
  for (unsigned p = 0; rc == 0 && p < ns->npaths; p++) {
    char ip[CLUSTER_NETNS_ADDR_MAX];
    cluster_netns_replica_ip(i, p, ip, sizeof ip);
    rc = run(log, "ip -n %s-hub link add v%up%u type veth peer name eth%u netns %s", ns->prefix, i,
             p, p, name);
    if (rc == 0) rc = run(log, "ip -n %s-hub link set v%up%u master br%u up", ns->prefix, i, p, p);
    if (rc == 0) rc = run(log, "ip -n %s addr add %s/24 dev eth%u", name, ip, p);
    if (rc == 0) rc = run(log, "ip -n %s link set eth%u up", name, p);
  }
  if (rc) return snprintf(err, len, "setting up %s: status %d (see %s)", name, rc, log), -1;
  return 0;
}

int cluster_netns_setup(cluster_netns_t *ns, unsigned nslots, unsigned npaths, const char *log,
                        char *err, size_t len) {
  memset(ns, 0, sizeof *ns);
  ns->orig_fd = -1;
  if (nslots > CLUSTER_NETNS_SLOTS_MAX || npaths == 0 || npaths > CLUSTER_NETNS_PATHS_MAX)
    return snprintf(err, len, "too many replicas or paths for --netns"), -1;
  snprintf(ns->prefix, sizeof ns->prefix, "bftc%ld", (long)getpid());
  snprintf(ns->log, sizeof ns->log, "%s", log ? log : "");
  ns->nslots = nslots;
  ns->npaths = npaths;
  if (setup_hub(ns, err, len) != 0) return -1;
  for (unsigned i = 0; i < nslots; i++)
    if (setup_replica(ns, i, err, len) != 0) return -1;
  return 0;
}

int cluster_netns_enter(cluster_netns_t *ns, char *err, size_t len) {
  char path[256];
  snprintf(path, sizeof path, NETNS_DIR "/%s-hub", ns->prefix);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return snprintf(err, len, "%s: %s", path, strerror(errno)), -1;
  if (ns->orig_fd < 0) ns->orig_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  int rc = setns(fd, CLONE_NEWNET);
  int e = errno;
  close(fd);
  if (rc != 0) return snprintf(err, len, "setns %s: %s", path, strerror(e)), -1;
  return 0;
}

void cluster_netns_leave(cluster_netns_t *ns) {
  if (ns->orig_fd < 0) return;
  (void)setns(ns->orig_fd, CLONE_NEWNET);
  close(ns->orig_fd);
  ns->orig_fd = -1;
}

void cluster_netns_teardown(cluster_netns_t *ns) {
  for (unsigned i = ns->made; i-- > 0;) {
    char name[CLUSTER_NETNS_NAME_MAX + 8];
    cluster_netns_name(ns, i, name, sizeof name);
    run(ns->log, "ip netns del %s", name);
  }
  ns->made = 0;
  if (ns->hub) run(ns->log, "ip netns del %s-hub", ns->prefix);
  ns->hub = false;
}

int cluster_netns_link(cluster_netns_t *ns, unsigned slot, unsigned path, int delta) {
  if (slot >= ns->made || path >= ns->npaths) return -1;
  int *d = &ns->down[slot][path];
  bool was = *d > 0;
  *d += delta;
  if (*d < 0) *d = 0;
  bool now = *d > 0;
  if (was == now) return 0;
  int rc =
      run(ns->log, "ip -n %s-hub link set v%up%u %s", ns->prefix, slot, path, now ? "down" : "up");
  return rc == 0 ? 1 : -1;
}

void cluster_netns_all_up(cluster_netns_t *ns) {
  for (unsigned i = 0; i < ns->made; i++)
    for (unsigned p = 0; p < ns->npaths; p++)
      if (ns->down[i][p] > 0) cluster_netns_link(ns, i, p, -ns->down[i][p]);
}

#else /* !__linux__ */

int cluster_netns_usable(char *why, size_t len) {
  snprintf(why, len, "network namespaces are Linux only");
  return -1;
}
int cluster_netns_sweep(const char *log) {
  (void)log;
  return 0;
}
int cluster_netns_setup(cluster_netns_t *ns, unsigned nslots, unsigned npaths, const char *log,
                        char *err, size_t len) {
  (void)nslots, (void)npaths, (void)log;
  memset(ns, 0, sizeof *ns);
  ns->orig_fd = -1;
  snprintf(err, len, "network namespaces are Linux only");
  return -1;
}
int cluster_netns_enter(cluster_netns_t *ns, char *err, size_t len) {
  (void)ns;
  snprintf(err, len, "network namespaces are Linux only");
  return -1;
}
void cluster_netns_leave(cluster_netns_t *ns) {
  (void)ns;
}
void cluster_netns_teardown(cluster_netns_t *ns) {
  (void)ns;
}
int cluster_netns_link(cluster_netns_t *ns, unsigned slot, unsigned path, int delta) {
  (void)ns, (void)slot, (void)path, (void)delta;
  return -1;
}
void cluster_netns_all_up(cluster_netns_t *ns) {
  (void)ns;
}

#endif
