/* procs.c — replica processes: spawning an incarnation, reading its
 * stdout, restarting it, reaping it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cluster.h"

bool procs_alive(const cl_inc_t *inc) {
  return inc && !inc->exited;
}

/* ------------------------------------------------------------ resources */

/* /proc/PID/stat: user + system CPU (s), RSS (KiB), threads. */
static bool read_stat(int pid, double *cpu_s, uint64_t *rss_kib, unsigned *threads) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  const char *p = strrchr(buf, ')'); /* after the command name */
  unsigned long long ut, st;
  long nthreads, rss;
  /* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
   * utime stime cutime cstime priority nice num_threads itrealvalue
   * starttime vsize rss */
  if (!p || sscanf(p + 2,
                   "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d "
                   "%ld %*d %*u %*u %ld",
                   &ut, &st, &nthreads, &rss) != 4)
    return false;
  long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
  *cpu_s = (double)(ut + st) / (double)(tck > 0 ? tck : 100);
  *rss_kib = (uint64_t)(rss > 0 ? rss : 0) * (uint64_t)(page > 0 ? page : 4096) / 1024;
  *threads = nthreads > 0 ? (unsigned)nthreads : 0;
  return true;
}

/* /proc/PID/status: RssAnon (KiB), the process's own memory (heap,
 * stacks), without the shared libraries' pages RSS counts in every process. */
static uint64_t read_rss_anon(int pid) {
  char path[64], line[128];
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  FILE *f = fopen(path, "re");
  if (!f) return 0;
  unsigned long long kib = 0;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "RssAnon: %llu kB", &kib) == 1) break;
  fclose(f);
  return kib;
}

static unsigned count_fds(int pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/fd", pid);
  DIR *d = opendir(path);
  if (!d) return 0;
  unsigned n = 0;
  for (struct dirent *e; (e = readdir(d));)
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

void procs_sample(cl_replica_t *r, cl_sample_t when) {
  cl_usage_t *u = &r->use;
  if (!procs_alive(r->inc)) return;
  int pid = r->inc->proc.pid;
  double cpu;
  uint64_t rss;
  unsigned threads;
  if (!read_stat(pid, &cpu, &rss, &threads)) return;
  if (u->pid != pid) {
    /* Another incarnation: the last one's CPU since time zero is done; the
     * new one counts from time zero, or all of it if it started later. */
    if (u->sampled) u->cpu_done_s += u->cpu_s - u->cpu_base_s;
    u->pid = pid;
    u->cpu_base_s = when == CL_SAMPLE_ZERO ? cpu : 0;
  }
  u->sampled = true;
  u->cpu_s = cpu;
  u->rss_kib = rss;
  u->rss_anon_kib = read_rss_anon(pid);
  u->fds = count_fds(pid);
  u->threads = threads;
  if (rss > u->rss_max_kib) u->rss_max_kib = rss;
  if (u->fds > u->fds_max) u->fds_max = u->fds;
  if (when == CL_SAMPLE_STOP) u->cpu_run_s = u->cpu_done_s + u->cpu_s - u->cpu_base_s;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  static char slab[64 * 1024];
  (void)h;
  (void)suggested;
  buf->base = slab;
  buf->len = sizeof slab;
}

/* The incarnation's counters join the finished ones; a killed one's last
 * stats line says what it had received (died_min). */
static void inc_retire(cl_inc_t *inc) {
  cl_replica_t *r = inc->r;
  if (r->last_stats && r->last_stats_inc == inc->id) {
    if (inc->killed) {
      json_t *peers = json_object_get(r->last_stats, "peers");
      for (unsigned j = 0; j < cl.nslots; j++) {
        json_t *row = json_object_get(peers, cl.rep[j].name);
        if (row) r->died_min[j] += cl_ju(row, "delivered");
        for (size_t k = 0; row && k < cl.o.mix.n; k++)
          r->cdied_min[j][k] += cl_ju(classes_row(row, (int)k), "delivered");
      }
    }
    r->old_drops += r->cur_drops;
    r->old_reconnects += r->cur_reconnects;
    if (r->cur_migrations >= 0)
      r->old_migrations = (r->old_migrations < 0 ? 0 : r->old_migrations) + r->cur_migrations;
  }
  r->cur_drops = r->cur_reconnects = 0;
  r->cur_migrations = -1;
}

static void on_inc_closed(uv_handle_t *h) {
  cl_inc_t *inc = h->data;
  if (--inc->handles > 0) return;
  cl_replica_t *r = inc->r;
  inc_retire(inc);
  if (r->inc == inc) r->inc = NULL;
  free(inc->buf);
  free(inc);
  cl.hooks.gone();
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  cl_inc_t *inc = s->data;
  if (nread > 0) {
    lines_feed(inc, buf->base, (size_t)nread);
    return;
  }
  if (nread == 0) return;
  lines_flush(inc);
  uv_close((uv_handle_t *)s, on_inc_closed);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig) {
  cl_inc_t *inc = p->data;
  cl_replica_t *r = inc->r;
  inc->exited = true;
  inc->exit_status = status;
  inc->term_signal = sig;
  json_array_append_new(r->exits,
                        json_pack("{s:i, s:I, s:i, s:b, s:b}", "incarnation", inc->id, "status",
                                  (json_int_t)status, "signal", sig, "killed_by_fault", inc->killed,
                                  "stopped", inc->stop_sent));
  uv_close((uv_handle_t *)p, on_inc_closed);
  if (inc->killed || inc->stop_sent) {
    if (inc->stop_sent && (status != 0 || sig))
      cl_event("replica", -1, "exit", "%s exited with status %" PRId64 "%s%s after SIGTERM",
               r->name, status, sig ? ", signal " : "", sig ? strsignal(sig) : "");
    return;
  }
  cl.hooks.exited(inc);
}

/* The command line of one incarnation, and the strings it points to. */
typedef struct spawn_args {
  char *argv[44];
  char lis[CL_PATHS_MAX][64], rate[32], size[16], stats[16], drain[16], dur[32];
  char nsname[CLUSTER_NETNS_NAME_MAX + 8];
} spawn_args_t;

/* r's command line. Its --duration is a safety net only (the run's end
 * plus CL_SAFETY_S): the cluster stops it with SIGTERM. */
static void spawn_args(cl_replica_t *r, spawn_args_t *s) {
  double left = cl.o.duration_s - (cl.t0_set ? cl_now_ms() / 1e3 : 0);
  snprintf(s->rate, sizeof s->rate, "%.15g", cl.o.rate);
  snprintf(s->size, sizeof s->size, "%u", cl.o.size);
  snprintf(s->stats, sizeof s->stats, "%u", cl.o.stats_ms);
  snprintf(s->drain, sizeof s->drain, "%u", cl.o.drain_ms);
  snprintf(s->dur, sizeof s->dur, "%.3f", (left > 0 ? left : 0) + CL_SAFETY_S);
  char **argv = s->argv;
  int a = 0;
  if (cl.o.netns) { /* ip execs the replica in its namespace: same PID */
    cluster_netns_name(&cl.ns, (unsigned)r->idx, s->nsname, sizeof s->nsname);
    argv[a++] = "ip", argv[a++] = "netns", argv[a++] = "exec", argv[a++] = s->nsname;
  }
  argv[a++] = cl.replica_bin;
  argv[a++] = "--id", argv[a++] = r->name;
  argv[a++] = "--key", argv[a++] = r->key_path;
  for (unsigned p = 0; p < cl.npaths; p++) {
    char ip[CLUSTER_NETNS_ADDR_MAX];
    proxies_replica_ip((unsigned)r->idx, p, ip, sizeof ip);
    snprintf(s->lis[p], sizeof s->lis[p], "/ip4/%s/tcp/%u", ip, r->port[p]);
    argv[a++] = "--listen", argv[a++] = s->lis[p];
  }
  argv[a++] = "--members", argv[a++] = r->members_path;
  argv[a++] = "--rate", argv[a++] = s->rate;
  argv[a++] = "--size", argv[a++] = s->size;
  argv[a++] = "--stats-ms", argv[a++] = s->stats;
  argv[a++] = "--drain-ms", argv[a++] = s->drain;
  argv[a++] = "--duration", argv[a++] = s->dur;
  argv[a++] = "--report", argv[a++] = r->report_path;
  if (cl.o.classes) argv[a++] = "--classes", argv[a++] = (char *)cl.o.classes;
  argv[a] = NULL;
}

int procs_spawn(cl_replica_t *r) {
  spawn_args_t args;
  spawn_args(r, &args);
  char **argv = args.argv;
  cl_inc_t *inc = calloc(1, sizeof *inc);
  if (!inc) return -ENOMEM;
  inc->r = r;
  inc->id = r->incarnations + 1;
  int logfd = open(r->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (logfd < 0) {
    int e = -errno;
    free(inc);
    return cl_warn("%s: %s", r->log_path, strerror(-e)), e;
  }
  dprintf(logfd, "---- bftnet-cluster: %s incarnation %d\n", r->name, inc->id);
  uv_pipe_init(&cl.loop, &inc->out, 0);
  inc->out.data = inc;
  inc->proc.data = inc;
  uv_stdio_container_t stdio[3] = {
      {.flags = UV_IGNORE},
      {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&inc->out},
      {.flags = UV_INHERIT_FD, .data.fd = logfd}};
  /* Detached: its own process group, so a Ctrl-C reaches only the cluster,
   * which then stops the replicas in order. */
  uv_process_options_t po = {.exit_cb = on_exit_cb,
                             .file = argv[0],
                             .args = argv,
                             .stdio_count = 3,
                             .stdio = stdio,
                             .flags = UV_PROCESS_DETACHED};
  int rc = uv_spawn(&cl.loop, &inc->proc, &po);
  close(logfd);
  inc->handles = 2;
  if (rc != 0) {
    inc->exited = true;
    uv_close((uv_handle_t *)&inc->proc, on_inc_closed);
    uv_close((uv_handle_t *)&inc->out, on_inc_closed);
    return cl_warn("%s: spawn %s: %s", r->name, cl.replica_bin, uv_strerror(rc)), rc;
  }
  /* A large cluster can take every core: its replicas run a little nicer
   * than the cluster, whose one thread keeps the fault timeline, the
   * progress lines and the stop on time. */
  if (cl.nslots > CL_NICE_ABOVE)
    (void)setpriority(PRIO_PROCESS, (id_t)inc->proc.pid, CL_REPLICA_NICE);
  uv_read_start((uv_stream_t *)&inc->out, on_alloc, on_read);
  r->inc = inc;
  r->incarnations = inc->id;
  r->ever_started = true;
  if (!r->lines) r->lines = fopen(r->lines_path, "a");
  return 0;
}

/* Snapshot of every other replica's counts for r as a sender, taken when r
 * restarts (see cluster_pair_in_t.base_*). */
static void restart_snapshot(cl_replica_t *r) {
  for (unsigned j = 0; j < cl.nslots; j++) {
    cl_replica_t *x = &cl.rep[j];
    cl_base_t *b = &r->base[j];
    *b = (cl_base_t){.valid = true};
    for (size_t k = 0; k < cl.o.mix.n; k++)
      r->cbase[j][k] = *b;
    json_t *row =
        x->last_stats ? json_object_get(json_object_get(x->last_stats, "peers"), r->name) : NULL;
    if (!row) continue;
    b->delivered = cl_ju(row, "delivered");
    b->duplicates = cl_ju(row, "duplicates");
    b->reorders = cl_ju(row, "reorders");
    b->exact = r->kills > 0 && x->last_stats_ms > r->kill_ms;
    for (size_t k = 0; k < cl.o.mix.n; k++) {
      const json_t *c = classes_row(row, (int)k);
      r->cbase[j][k] = (cl_base_t){.valid = true,
                                   .exact = b->exact,
                                   .delivered = cl_ju(c, "delivered"),
                                   .duplicates = cl_ju(c, "duplicates"),
                                   .reorders = cl_ju(c, "reorders")};
    }
  }
}

/* uv_timer_cb for the retry timer: its data is the replica. */
static void on_retry(uv_timer_t *t) {
  procs_restart(t->data);
}

void procs_restart(cl_replica_t *r) {
  if (cl.phase != PH_RUNNING) return;
  if (r->inc) { /* the old incarnation is still being reaped */
    uv_timer_start(&r->retry, on_retry, 10, 0);
    return;
  }
  restart_snapshot(r);
  int rc = procs_spawn(r);
  if (rc == 0) {
    r->restarts++;
    cl_event("replica", -1, "restart", "%s started again: incarnation %d, same key and addresses",
             r->name, r->incarnations);
  } else {
    cl_event("replica", -1, "restart", "%s could not be started again: %s", r->name,
             uv_strerror(rc));
  }
}

void procs_restart_later(cl_replica_t *r, uint64_t delay_ms) {
  uv_timer_start(&r->retry, on_retry, delay_ms, 0);
}
