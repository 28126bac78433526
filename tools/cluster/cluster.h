/*
 * cluster.h — bftnet-cluster's own header: its limits, its types, the one
 * state every file of the tool works on (`cl`: everything runs on one libuv
 * loop in one thread) and the functions its files share.
 *
 * Files, bottom to top (a file calls only those below it by name; the
 * process layer reports up through cl.hooks, which run.c sets):
 *   cluster.c  the state, the clock, events, small JSON and path helpers
 *   classes.c  --classes: the rows per class, the per-class summary, live
 *              figures and plot data
 *   proxies.c  ports, the fault proxies, addresses, bytes per path
 *   lines.c    the replicas' stdout lines, the progress line, the CSV
 *   procs.c    spawning, restarting and reaping replica processes
 *   members.c  membership files and the members fault
 *   faults.c   the fault plan: every action on its timer
 *   run.c      start, time zero, stop, abort, signals, the end of the loop
 *   pairs.c    the cross-check of every ordered pair of replicas
 *   plot.c     the gnuplot PNG
 *   report.c   the table, report.json and the verdict
 *   main.c     options, files, keys, --netns, main()
 */
#ifndef BFTNET_TOOLS_CLUSTER_H
#define BFTNET_TOOLS_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <uv.h>

#include "bftnet.h"
#include "classmix.h"
#include "cluster_netns.h"
#include "cluster_plan.h"
#include "cluster_stats.h"
#include "fault_proxy.h"
#include "fault_spec.h"
#include "jsonx.h"
#include "text.h"

#define CL_MAX_REPLICAS         128 /* --replicas */
#define CL_MAX_SLOTS            136 /* initial replicas + those a members fault adds */
#define CL_PAIR_TABLE_MAX       256 /* pairs printed one per row; beyond, only those not ok */
#define CL_NICE_ABOVE           16  /* more replicas than this run at nice +CL_REPLICA_NICE */
#define CL_REPLICA_NICE         5
#define CL_PATHS_MAX            2    /* addresses per replica (failover) */
#define CL_PATH                 1024 /* longest path we build */
#define CL_PING_TIMEOUT_MS      10000u /* bftnet's default ping_timeout_ms (bftnet-replica keeps it) */
#define CL_START_TIMEOUT_MS     15000u /* initial replicas: spawn to membership line, */
#define CL_START_PER_REPLICA_MS 250u   /* plus this per replica (they start at once) */
#define CL_MEMBERS_WAIT_MS      5000u  /* members fault: wait for the added replica */
#define CL_EXIT_GRACE_MS        5000u  /* after SIGTERM: drain_ms + this, then SIGKILL, */
#define CL_EXIT_PER_REPLICA_MS  300u   /* plus this per replica (they all stop at once) */
#define CL_SAFETY_S             60     /* replicas' own --duration: run end + this */
#define CL_LINE_MAX             (1u << 20)
#define CL_WIN_PARTS            16     /* stats lines per replica per progress tick */
#define CL_SERIES_MAX           100000 /* plot points per replica */
#define CL_RETRY_MAX            5      /* restart attempts when the port is taken */
#define CL_RETRY_MS             200
#define CL_MAX_INCS             64   /* incarnations per replica whose start time is kept */
#define CL_NETNS_PORT           9000 /* --netns: replicas listen on 10.77.p.x:9000+p */
#define CL_LINE_CLASSES         1024 /* --classes: the progress line's class lines */

/* ---------------------------------------------------------------- types */

typedef struct cl_opts {
  unsigned replicas;
  double duration_s, rate;
  unsigned size, stats_ms, drain_ms;
  const char *faults, *out, *bin_dir;
  uint64_t seed;
  bool seed_set, two_paths, no_plot, netns;
  bool direct;         /* no proxy on links where no fault is scheduled */
  const char *classes; /* --classes, or NULL */
  classmix_t mix;      /* mix.n == 0 without --classes */
} cl_opts_t;

/* A replica process's resources, sampled from /proc (procs_sample). */
typedef struct cl_usage {
  int pid;                       /* the incarnation sampled last */
  double cpu_s;                  /* its user + system CPU at the last sample */
  double cpu_done_s;             /* CPU of earlier incarnations since time zero */
  double cpu_base_s;             /* the current incarnation's CPU at time zero (0: started later) */
  double cpu_run_s;              /* since time zero, at the stop (every incarnation) */
  uint64_t rss_kib, rss_max_kib; /* at the last sample; the largest */
  uint64_t rss_anon_kib;         /* at the last sample: RSS minus file pages (libraries) */
  unsigned fds, fds_max, threads;
  bool sampled; /* at least once */
} cl_usage_t;

typedef struct cl_replica cl_replica_t;

/* One process: a replica's incarnation. Freed once both handles closed. */
typedef struct cl_inc {
  uv_process_t proc;
  uv_pipe_t out;
  cl_replica_t *r;
  int id, handles;
  bool exited, listening, loaded, stop_sent, killed;
  int64_t exit_status;
  int term_signal;
  char *buf; /* the stdout line being assembled */
  size_t len, cap;
  bool overflow;
} cl_inc_t;

/* R's counts for a restarted sender at its last restart (cluster_pair_in_t). */
typedef struct cl_base {
  bool valid, exact;
  uint64_t delivered, duplicates, reorders;
} cl_base_t;

typedef struct cl_point {
  double t, rate, p50, p99;
  int inc;
} cl_point_t;

/* --classes: one class's cluster-wide figures of a progress tick. */
typedef struct cl_cpoint {
  double t, rate, p50, p99;
} cl_cpoint_t;

struct cl_replica {
  int idx;
  char name[16];
  char peer_id[BFTNET_PEER_ID_MAX];
  char key_path[CL_PATH], members_path[CL_PATH], report_path[CL_PATH], log_path[CL_PATH],
      lines_path[CL_PATH];
  uint16_t port[CL_PATHS_MAX];
  cl_inc_t *inc; /* current incarnation, until its handles closed */
  int incarnations, kills, restarts, retries;
  bool ever_started;
  /* When each incarnation that loaded its membership (and so sent) did,
   * ms since time zero (negative: before it); n_loaded of them. */
  double loaded_ms[CL_MAX_INCS];
  int n_loaded;
  uint64_t path_bytes_mark;          /* failover: bytes through path 1 when it began */
  uint64_t path_bytes[CL_PATHS_MAX]; /* through the proxies to each address, at the end */
  uv_timer_t retry;
  FILE *lines; /* raw stdout lines */
  json_t *last_stats;
  double last_stats_ms;
  int last_stats_inc;
  double kill_ms;
  uint64_t died_min[CL_MAX_SLOTS]; /* from sender j, received by killed incarnations */
  cl_base_t base[CL_MAX_SLOTS];    /* receiver j's counts for us at our last restart */
  /* --classes: the same per class */
  uint64_t cdied_min[CL_MAX_SLOTS][BFTNET_MAX_CLASSES];
  cl_base_t cbase[CL_MAX_SLOTS][BFTNET_MAX_CLASSES];
  /* since the last progress tick, per class: the stats lines' latency
   * parts, and their delivered messages and time */
  cluster_qpart_t cwin[BFTNET_MAX_CLASSES][CL_WIN_PARTS];
  size_t cwin_n[BFTNET_MAX_CLASSES];
  double cwin_msgs[BFTNET_MAX_CLASSES], cwin_ms[BFTNET_MAX_CLASSES];
  /* progress window (since the last tick) */
  double win_delivered, win_ms;
  cluster_qpart_t win_parts[CL_WIN_PARTS];
  size_t win_n;
  /* cumulative counters: the current incarnation's last line + finished ones */
  uint64_t cur_drops, cur_reconnects, old_drops, old_reconnects;
  int64_t cur_migrations, old_migrations; /* < 0: not in the stats lines */
  cl_usage_t use;                         /* CPU, memory, descriptors */
  cl_point_t *series;
  size_t nseries, cap_series;
  json_t *exits;
  json_t *report; /* the final report, once read */
};

typedef enum cl_phase { PH_STARTING, PH_RUNNING, PH_STOPPING, PH_DONE } cl_phase_t;

typedef struct cl_proxy {
  fault_proxy_t *px;
  int bh, refuse; /* active blackholes / refusals covering it */
  int lat_owner;  /* the latency fault it follows, or -1 */
} cl_proxy_t;

/* A fault's active interval, for the plot. */
typedef struct cl_span {
  double on, off; /* ms; off < 0: until the end */
  int fault;
} cl_span_t;

/* What the process layer (procs.c, lines.c) tells the run above it. */
typedef struct cl_hooks {
  /* inc loaded its first membership file (it listens and sends). */
  void (*loaded)(cl_inc_t *inc, uint64_t members);
  /* inc exited on its own: neither killed by a fault nor stopped. */
  void (*exited)(cl_inc_t *inc);
  /* An incarnation's handles are closed and it is freed. */
  void (*gone)(void);
} cl_hooks_t;

/* The whole cluster: one instance, `cl`, defined in cluster.c. */
struct cl {
  cl_opts_t o;
  uv_loop_t loop;
  fault_t faults[FAULT_SPEC_FAULTS_MAX];
  size_t nfaults;
  cluster_act_t *plan;
  size_t nplan, next_act;
  unsigned ninit, nslots, npaths;
  cl_replica_t rep[CL_MAX_SLOTS];
  cl_proxy_t *px;
  size_t npx, px_open, npx_made; /* slots; open now; created (--direct: fewer) */
  bool lat_active[FAULT_SPEC_FAULTS_MAX];
  bool member[CL_MAX_SLOTS], member_next[CL_MAX_SLOTS];
  size_t mq[FAULT_SPEC_FAULTS_MAX], mq_n;
  bool m_busy;
  int m_wait; /* the added replica the members fault waits for, or -1 */
  cl_phase_t phase;
  bool failed;
  uint64_t t0_ns;
  bool t0_set;
  double stop_ms;
  uv_timer_t start_timer, tick_timer, plan_timer, end_timer, stop_timer, members_timer;
  uv_signal_t sigint, sigterm;
  int signals;
  json_t *events;
  cl_span_t spans[FAULT_SPEC_FAULTS_MAX * 2];
  size_t nspans;
  FILE *csv;
  cluster_netns_t ns; /* --netns */
  bool quiet;         /* cl_event(): record only, do not print */
  int stop_aborts;    /* stream aborts without loss reported while stopping */
  char replica_bin[CL_PATH];
  char out[CL_PATH];
  cl_hooks_t hooks;
  cl_cpoint_t *cseries[BFTNET_MAX_CLASSES]; /* --classes: per tick, for the plot */
  size_t ncseries, cap_cseries;
};

extern struct cl cl;

/* One ordered pair (sender s, receiver r) of the final cross-check. */
typedef struct cl_pair {
  int s, r;
  int cls; /* --classes: the class; -1 without */
  int broken;
  cluster_pair_in_t in;
  cluster_pair_out_t out;
  uint64_t gaps, max_seq, reconnects, lat_n;
  /* the sender's migration counts toward the receiver */
  uint64_t migrations, detached, resumed, retransmitted, detach_ns_max, ev_aborted;
  bool have_migr;
  uint64_t rx_incarnations; /* the receiver's, of the sender */
  double p50, p90, p99, max;
  char note[512];
} cl_pair_t;

/* ------------------------------------------------------------ cluster.c */

void cl_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* ms since time zero (since the start of the program before it). */
double cl_now_ms(void);
/* Records an event: printed as a live line and kept for report.json (and,
 * for faults, the plot). fault < 0: not a fault action. */
void cl_event(const char *kind, int fault, const char *action, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* snprintf that returns -ENAMETOOLONG when the text does not fit, else 0. */
int cl_path_fmt(char *dst, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A number rounded to one decimal, or null for NaN. */
json_t *cl_jnum(double v);
/* o[k] as a count (0 when missing, negative or not a number), or as a
 * double (NaN when missing). */
uint64_t cl_ju(const json_t *o, const char *k);
double cl_jd(const json_t *o, const char *k);
/* Fault fi as its SPEC text, and what it acts on ("all links", "r1-r2",
 * "r3", "+r4 -r1"). */
void cl_fault_text(size_t fi, char *buf, size_t len);
void cl_fault_target(const fault_t *f, char *buf, size_t len);

/* ------------------------------------------------------------ proxies.c */

/* Reserves a port per replica and path, creates every proxy, then frees
 * the ports for the replicas. 0 or a negative errno. */
int proxies_setup(void);
/* The proxy from replica i to j on path p; its px is NULL on a direct
 * link (--direct: no fault scheduled on it). */
cl_proxy_t *proxies_at(int i, int j, int p);
/* Where replica j listens on path p, and where the proxies listen on path
 * p: 127.0.0.1, or with --netns the replica's address in its namespace and
 * the bridge's address in the cluster's (cluster_netns.h). */
void proxies_replica_ip(unsigned j, unsigned p, char *buf, size_t len);
void proxies_listen_ip(unsigned p, char *buf, size_t len);
/* Blackholes and refusals are counted per proxy: delta +1 or -1. */
void proxies_blackhole(cl_proxy_t *x, int delta);
void proxies_refuse(cl_proxy_t *x, int delta);
/* Lifts every blackhole and refusal; returns how many were on. */
int proxies_lift_all(void);
uint64_t proxies_path2_bytes(int a);
/* Records the bytes per path, then closes every proxy. */
void proxies_close(void);

/* -------------------------------------------------------------- lines.c */

/* Bytes from an incarnation's stdout: whole lines are handled as they
 * complete; lines_flush handles a last line without its newline. */
void lines_feed(cl_inc_t *inc, const char *p, size_t n);
void lines_flush(cl_inc_t *inc);
/* The progress line and its CSV row (a uv_timer_cb; also called once at
 * the end). */
void lines_tick(uv_timer_t *t);

/* -------------------------------------------------------------- procs.c */

bool procs_alive(const cl_inc_t *inc);
/* Starts a new incarnation of r. 0, or an error (said). */
int procs_spawn(cl_replica_t *r);
/* Samples r's live incarnation from /proc: CPU, RSS, descriptors,
 * threads (into r->use): at time zero (CPU counts from there), on each
 * progress tick, and at the stop (CPU since time zero is fixed there).
 * Nothing for a replica that is not running. */
typedef enum cl_sample { CL_SAMPLE_ZERO, CL_SAMPLE_TICK, CL_SAMPLE_STOP } cl_sample_t;
void procs_sample(cl_replica_t *r, cl_sample_t when);
/* Starts r again (RUNNING only) after a snapshot of what the others got
 * from it; waits for the old incarnation to be reaped first. */
void procs_restart(cl_replica_t *r);
/* procs_restart after delay_ms. */
void procs_restart_later(cl_replica_t *r, uint64_t delay_ms);

/* ------------------------------------------------------------ members.c */

/* Writes r's membership file for the member set `set`. 0 or -errno. */
int members_write(const cl_replica_t *r, const bool *set);
/* Queues members fault fi; faults run one at a time, in order. */
void members_enqueue(size_t fi);
/* Replica idx loaded its membership or exited: a members fault waiting for
 * it goes on. */
void members_settled(int idx);

/* ------------------------------------------------------------- faults.c */

/* Arms the timer for the next action of the plan (RUNNING only). */
void faults_plan_arm(void);

/* ---------------------------------------------------------------- run.c */

/* The loop's timers and signal handlers, and cl.hooks. */
void run_init(void);
/* Ports, proxies, membership files, then the initial replicas. */
int run_start(void);
/* The end: lifts blackholes and refusals for the drain, SIGTERM to all. */
void run_stop(const char *why);
/* A failed start: says why, SIGKILL to all, exit status 3. */
void run_abort(const char *why);

/* -------------------------------------------------------------- pairs.c */

/* Reads the replicas' reports and cross-checks every pair; sum adds them
 * up. Returns the pairs (*np of them; free them), NULL when out of memory. */
cl_pair_t *pairs_build(size_t *np, cluster_summary_t *sum);

/* ------------------------------------------------------------ classes.c */

/* A report or stats-line row of a peer: the row itself, or with --classes
 * (cls >= 0) its class's row. */
const json_t *classes_row(const json_t *row, int cls);
/* A stats line's per-class totals into r's window. */
void classes_on_stats(cl_replica_t *r, const json_t *total, double interval_ms);
/* The progress tick: each class's cluster-wide figures, appended to line
 * (the progress line) and kept for the plot. */
void classes_tick(double now_ms, text_buf_t *line);
/* The per-class summary after the pair table (printed), and its JSON. */
json_t *classes_summary(const cl_pair_t *pairs, size_t n);
/* plotc.dat for the plot's per-class panel: 0, or -1. */
int classes_plot_data(const char *path);

/* --------------------------------------------------------------- plot.c */

/* Writes DIR/plot.png into png; returns it, or NULL (and says why). */
const char *plot_make(char *png, size_t len);

/* ------------------------------------------------------------- report.c */

/* The table, report.json and the verdict. Returns the exit status. */
int report_finish(void);

#endif
