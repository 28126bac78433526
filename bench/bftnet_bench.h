/*
 * bftnet_bench.h — the parts of bftnet-bench shared by its files:
 * the process harness (fork, a shared-memory control block, phases), the
 * clocks and statistics, and the per-system entry points.
 *
 * Shape of every experiment: the parent (single-threaded, owns nothing
 * networked) forks one child per role, every child publishes its address in
 * the shared block and says "ready"; the parent then walks the phases on its
 * own clock (GO = start sending, M0/E0 = start/end of the measurement
 * window, ...) and every child, when it next looks, records a snapshot of
 * its own counters, clock and getrusage(RUSAGE_SELF). Rates and CPU come
 * from each child's own snapshots; nothing is timed across processes except
 * the all-to-all latencies (CLOCK_MONOTONIC is machine-wide).
 */
#ifndef BFTNET_BENCH_H
#define BFTNET_BENCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bench_harness.h"
#include "bftnet.h"

#define BB_MAX_NODES   8          /* processes / bftnet nodes in one experiment */
#define BB_MAX_SAMPLES (1u << 17) /* round-trip samples kept per experiment */
#define BB_ADDR_MAX    BFTNET_ADDR_MAX
#define BB_RESULTS     16

/* Phases, set by the parent, observed by the children. */
enum bb_phase {
  BB_PH_INIT = 0, /* setting up */
  BB_PH_GO,       /* start the load (warm-up) */
  BB_PH_M0,       /* window 0 starts: snapshot */
  BB_PH_E0,       /* window 0 ends: snapshot */
  BB_PH_PAUSE,    /* senders idle (between the two all-to-all runs) */
  BB_PH_GO1,      /* start the second load (bb_shm->rate) */
  BB_PH_M1,       /* window 1 starts */
  BB_PH_E1,       /* window 1 ends */
  BB_PH_STOP      /* everyone winds down and exits */
};

enum bb_state { BB_ST_STARTING = 0, BB_ST_READY = 2, BB_ST_DONE = 3, BB_ST_FAILED = -1 };

typedef struct bb_counts {
  uint64_t msgs, bytes, drops, enq, bad;
} bb_counts_t;

typedef struct bb_snap {
  double t, cpu; /* CLOCK_MONOTONIC seconds; user+sys seconds of the whole process */
  bb_counts_t c;
  _Atomic int valid; /* set last (release): the parent reads the rest after it */
} bb_snap_t;

typedef struct bb_side {
  _Atomic int state;
  char err[200];
  bb_snap_t snap[2][2]; /* [window][start, end] */
  double res[BB_RESULTS];
} bb_side_t;

typedef struct bb_shm {
  _Atomic int phase;
  double rate; /* all-to-all: broadcasts/s per node in the paced run */
  _Atomic int addr_set[BB_MAX_NODES];
  char addr[BB_MAX_NODES][BB_ADDR_MAX];
  bb_side_t side[BB_MAX_NODES];
  uint64_t hist[BB_MAX_NODES][2][BB_HIST_BUCKETS]; /* one-way latency, ns */
  _Atomic uint32_t nsamples;
  uint64_t samples[BB_MAX_SAMPLES]; /* round trips, ns */
} bb_shm_t;

extern bb_shm_t *bb_shm;

/* What a child needs to know; copied into it by fork. */
typedef struct bb_job {
  int sys;
  int round; /* 0-based; lets an experiment alternate its order */
  size_t size;
  double warm, window;
  double deadline;        /* seconds after the child starts: it gives up */
  int flood;              /* bftnet senders: no pacing on ring depth */
  int disable_migration;  /* bftnet: cfg.disable_migration */
  uint32_t busy_poll_us;  /* bftnet: cfg.busy_poll_us */
  int nnodes;             /* all-to-all / broadcast: bftnet nodes in all */
  uint32_t ring_capacity; /* bftnet: send ring per member */
  uint32_t rtt_samples, rtt_warm;
  double soak_seconds;
  unsigned char aead_key[32];
  char zsrv_pub[41], zsrv_sec[41], zcli_pub[41], zcli_sec[41];
} bb_job_t;

/* Systems measured for throughput (and round trips where they have one). */
/* BB_TCP_AEAD is the crypto limit with the cipher code bftnet uses (aead.h's
 * bn_aead_best); BB_TCP_AEAD_SODIUM the same with libsodium's (the limit on
 * a build without OpenSSL). */
enum bb_sys {
  BB_BFTNET,
  BB_BFTNET_PLAIN,
  BB_ZMQ_CURVE,
  BB_ZMQ,
  BB_TCP_AEAD,
  BB_TCP,
  BB_TCP_AEAD_SODIUM,
  BB_BFTNET_CB, /* bftnet, the receiver takes messages in cfg.on_message */
  BB_NSYS
};

/* --------------------------------------------------- child-side harness */
typedef struct bb_child bb_child_t;
typedef void (*bb_refresh_fn)(bb_child_t *ch, bb_counts_t *c);
struct bb_child {
  int idx; /* side index */
  int last_phase;
  double t_start, deadline; /* absolute, bb_now() */
  bb_counts_t c;            /* the child's live counters */
  bb_refresh_fn refresh;    /* optional: completes c before a snapshot */
  void *ud;
};

void bb_child_init(bb_child_t *ch, int idx, const bb_job_t *job);
/* Looks at the phase; on a change, snapshots every window edge passed
 * since the last look. Returns the phase (BB_PH_STOP also once the
 * child's deadline has passed). Cheap: one atomic load without a change. */
int bb_tick(bb_child_t *ch);
/* Waits (1 ms polls) until the phase is >= target or the deadline; returns it. */
int bb_wait_phase(bb_child_t *ch, int target);
bool bb_past_deadline(const bb_child_t *ch);
void bb_ready(int idx);
/* bb_ready, then waits for GO (bb_wait_phase): returns the phase. */
int bb_ready_go(bb_child_t *ch);
/* A zeroed buffer for one message: job->size bytes and 8 more (a short
 * message still has room for its sequence number). Fails the child (exits)
 * when out of memory. */
uint8_t *bb_msg_alloc(int idx, const bb_job_t *job);
void bb_done(int idx);
/* Records the error on side idx and exits the child (status 1). */
_Noreturn void bb_fail(int idx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void bb_publish_addr(int node, const char *addr);
/* The address node published, waiting up to the child's deadline. */
const char *bb_wait_addr(bb_child_t *ch, int node);

/* ------------------------------------------- payloads and round trips */
/* Sequence-numbered payloads: bytes 0..7 of a message of size >= 8 are the
 * sender's sequence number (smaller messages carry none). */
void bb_put_seq(uint8_t *msg, size_t size, uint64_t seq);
/* Counts one received message into c (msgs, bytes); a sequence number not
 * above *last (a reorder or a duplicate) counts as bad. */
void bb_count_msg(bb_counts_t *c, const uint8_t *data, size_t len, uint64_t *last);

/* One round trip of a pinger: sends out[0, size) to the echo side and waits
 * for it to come back (i round trips done before this one). Sets *ns to the
 * bb_now_ns() time from just before the send to just after the echo was in
 * and returns whether the echo equals out; fails the child when the round
 * trip breaks. */
typedef bool (*bb_rtt_fn)(bb_child_t *ch, void *ud, uint32_t i, const uint8_t *out, size_t size,
                          uint64_t *ns);
/* The pinger's side of a round-trip experiment, around rtt: says ready,
 * waits for GO, runs job->rtt_warm unmeasured round trips and then up to
 * job->rtt_samples measured ones (into bb_shm->samples; echoes that differ
 * count in res[BB_RES_RTT_BAD]) until job->window has passed since GO, says
 * done and waits for STOP. With check_deadline, fails the child once its
 * deadline has passed after a round trip. */
/* Round trip i took ns: kept as a sample once past the warm-up. */
void bb_rtt_record(const bb_job_t *job, uint32_t i, uint64_t ns);
void bb_rtt_pinger(bb_child_t *ch, const bb_job_t *job, bb_rtt_fn rtt, void *ud,
                   bool check_deadline);

/* --------------------------------------------------- parent-side harness */
typedef void (*bb_role_fn)(int idx, const bb_job_t *job);
typedef double (*bb_rate_fn)(const bb_job_t *job);
typedef enum bb_plan { BB_PLAN_WINDOW, BB_PLAN_TWO_WINDOWS, BB_PLAN_UNTIL_DONE } bb_plan_t;

/* Forks roles[i] as side i (i < n), waits for them to be ready, walks the
 * plan, stops them and reaps them (SIGKILL past the deadline). For
 * BB_PLAN_TWO_WINDOWS, rate() sets bb_shm->rate between the windows.
 * Returns 0, or -1 with the reason in errbuf. */
int bb_run(const bb_role_fn *roles, int n, const bb_job_t *job, bb_plan_t plan, bb_rate_fn rate,
           char *errbuf, size_t errcap);

/* Rates over window w of side i (from its own snapshots). */
double bb_win_dt(int side, int w);
double bb_win_rate(int side, int w, size_t field_off);
double bb_win_cpu_rate(int side, int w); /* CPU seconds per second */
#define BB_FIELD(f) offsetof(bb_counts_t, f)

/* ------------------------------------------------------- the systems */
/* Two-process throughput, side 0 sends, side 1 receives. */
void bb_bftnet_sender(int idx, const bb_job_t *job);
void bb_bftnet_receiver(int idx, const bb_job_t *job);
void bb_zmq_sender(int idx, const bb_job_t *job);
void bb_zmq_receiver(int idx, const bb_job_t *job);
void bb_tcp_sender(int idx, const bb_job_t *job); /* job->sys: BB_TCP or BB_TCP_AEAD(_SODIUM) */
void bb_tcp_receiver(int idx, const bb_job_t *job);
/* Round trips, side 0 pings (samples into bb_shm), side 1 echoes. */
void bb_bftnet_pinger(int idx, const bb_job_t *job);
void bb_bftnet_echo(int idx, const bb_job_t *job);
/* The same, event-driven: cfg.on_message echoes (echo) or records the
 * round trip and sends the next ping (pinger), on the loop thread. */
/* A throughput receiver that takes messages in cfg.on_message, on the loop
 * thread (the event-driven deployment). */
void bb_bftnet_cb_receiver(int idx, const bb_job_t *job);
void bb_bftnet_cb_pinger(int idx, const bb_job_t *job);
void bb_bftnet_cb_echo(int idx, const bb_job_t *job);
void bb_zmq_req(int idx, const bb_job_t *job);
void bb_zmq_rep(int idx, const bb_job_t *job);
void bb_tcp_pinger(int idx, const bb_job_t *job);
void bb_tcp_echo(int idx, const bb_job_t *job);
/* Broadcast: side 0 is node 0 (sender), side 1 hosts nodes 1..nnodes-1. */
void bb_bcast_sender(int idx, const bb_job_t *job);
void bb_bcast_sinks(int idx, const bb_job_t *job);
/* All-to-all: side i is node i. */
void bb_a2a_node(int idx, const bb_job_t *job);
/* Memory soak: one node sending to a member that never started. */
void bb_soak_node(int idx, const bb_job_t *job);

/* Result slots (bb_side_t.res) of the experiments that report more than
 * snapshots. */
enum {
  BB_RES_BC_SEND_THREAD_NS = 0, /* caller CPU per bftnet_send, ns */
  BB_RES_BC_BCAST_THREAD_NS,    /* caller CPU per bftnet_broadcast, ns */
  BB_RES_BC_SEND_PROC_NS,       /* sender process CPU per call, until flushed */
  BB_RES_BC_BCAST_PROC_NS,
  BB_RES_BC_SEND_CALLS,
  BB_RES_BC_BCAST_CALLS,
  BB_RES_BC_DROPS,
  BB_RES_BC_FANOUT
};
enum {
  BB_RES_SOAK_RSS_START = 0, /* before bftnet_new */
  BB_RES_SOAK_RSS_SETUP,     /* node up, membership set, nothing sent */
  BB_RES_SOAK_FIRST,
  BB_RES_SOAK_LAST,
  BB_RES_SOAK_MAX,
  BB_RES_SOAK_SAMPLES,
  BB_RES_SOAK_SENT,
  BB_RES_SOAK_DROPS,
  BB_RES_SOAK_RING
};
enum { BB_RES_A2A_MISSED = 0, BB_RES_A2A_OFFERED };
enum { BB_RES_RTT_BAD = 0 };

/* The round-trip section's bftnet-busy system: cfg.busy_poll_us. */
#define BB_BUSY_POLL_US  100
#define BB_BUSY_POLL_STR "100"

/* ------------------------------------------- bftnet-bench's experiments */
/* What bftnet_bench.c measures and bench_report.c reports. */
#define BB_MAX_SIZES   8
#define BB_MAX_ROUNDS  15
#define BB_MAX_A2A     4
#define BB_BCAST_NODES 7 /* the sender and 6 peers */
#define BB_A2A_SIZE    128
#define BB_SOAK_SIZE   1024
#define BB_MIB         (1024.0 * 1024.0)

/* The round-trip experiments (each runs one of enum bb_sys). */
enum bb_rtt_sys {
  BB_RTT_BFTNET,
  BB_RTT_BFTNET_PLAIN,
  BB_RTT_BFTNET_BUSY,
  BB_RTT_TCP,
  BB_RTT_ZMQ_CURVE,
  BB_RTT_ZMQ,
  BB_RTT_BFTNET_CB,
  BB_RTT_NSYS
};
/* --sections */
enum {
  BB_SEC_TPUT = 1,
  BB_SEC_RTT = 2,
  BB_SEC_BCAST = 4,
  BB_SEC_A2A = 8,
  BB_SEC_MEM = 16,
  BB_SEC_ALL = 31
};

typedef struct bb_opts {
  int quick, rounds, nsizes, flood, na2a, sections, json_only;
  size_t sizes[BB_MAX_SIZES];
  int a2a[BB_MAX_A2A];
  double seconds, warm, soak;
  const char *json;
  unsigned sys_mask;
} bb_opts_t;

typedef struct bb_tput {
  int ok;
  double mps, mbps, cpu_m, drops, drop_frac, enq_mps, bad;
} bb_tput_t;

typedef struct bb_rtt {
  int ok;
  double p50, p99, n, bad;
} bb_rtt_t;

typedef struct bb_bcast {
  int ok;
  double send_ns, bcast_ns, ratio, send_proc, bcast_proc, proc_ratio, drops;
} bb_bcast_t;

typedef struct bb_a2a {
  int ok;
  double max_mps, max_cpu_m, max_p50, max_p99, rate, offered, achieved, p50, p99, pmax, drops0,
      drops1, bad, missed;
} bb_a2a_t;

typedef struct bb_soak {
  int ok;
  double rss_start, rss_setup, first, last, max, samples, sent, drops, ring;
} bb_soak_t;

/* Every round's figures, and the memory run's. */
typedef struct bb_results {
  bb_tput_t tput[BB_MAX_SIZES][BB_NSYS][BB_MAX_ROUNDS];
  bb_rtt_t rtt[BB_RTT_NSYS][BB_MAX_ROUNDS];
  bb_bcast_t bcast[BB_MAX_ROUNDS];
  bb_a2a_t a2a[BB_MAX_A2A][BB_MAX_ROUNDS];
  bb_soak_t soak;
} bb_results_t;

extern bb_results_t bb_res; /* bftnet_bench.c */

/* The systems' names and descriptions in the report (bench_report.c). */
extern const char *const bb_sys_name[BB_NSYS];
extern const char *const bb_sys_desc[BB_NSYS];
extern const char *const bb_rtt_name[BB_RTT_NSYS];
extern const char *const bb_rtt_desc[BB_RTT_NSYS];
extern const int bb_rtt_sys[BB_RTT_NSYS]; /* the enum bb_sys each one runs */

/* A rate for humans: "1.234 M", "56.7 k", "890", "-" for NaN. */
const char *bb_human(double v, char *buf, size_t cap);

/* The tables on stdout, the same figures into root (a JSON object). */
struct json_t;
void bb_report_all(const bb_opts_t *o, struct json_t *root);

#endif
