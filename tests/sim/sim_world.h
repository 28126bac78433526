/*
 * sim_world.h — a simulated world behind the seam (core.h): several nodes'
 * transports in one process on one thread, simulated time, byte pipes for
 * connections, a seeded RNG. Everything that happens is an event ordered by
 * (time, sequence number); every run is a function of its seed.
 *
 * The network: hosts 0..SIM_MAX_HOSTS-1, each with addresses 10.0.a.(h+1)
 * (a = 0, 1). A connection is two endpoints (bn_tsock_t) and two
 * directions; each direction is a FIFO of bytes: the first ones are in the
 * "kernel" (cut into segments that arrive after the link's latency, jitter
 * and bandwidth), the rest are user writes waiting for kernel room. Faults
 * act on links (directed host pairs), addresses and hosts, or on one
 * connection's direction at a byte offset.
 */
#ifndef BFTNET_SIM_WORLD_H
#define BFTNET_SIM_WORLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core.h"

#define SIM_MAX_HOSTS 8
#define SIM_ADDRS     2
#define SIM_MS        1000000ull
#define SIM_S         1000000000ull

/* ------------------------------------------------------------------ RNG */
/* xoshiro256**: fast, and every stream is a function of (seed, stream). */
typedef struct sim_rng {
  uint64_t s[4];
} sim_rng_t;

void sim_rng_seed(sim_rng_t *r, uint64_t seed, uint64_t stream);
uint64_t sim_rng_next(sim_rng_t *r);
uint64_t sim_rng_below(sim_rng_t *r, uint64_t n);               /* [0, n), n > 0 */
uint64_t sim_rng_range(sim_rng_t *r, uint64_t lo, uint64_t hi); /* [lo, hi] */
bool sim_rng_pct(sim_rng_t *r, unsigned pct);                   /* true pct % of the time */

/* --------------------------------------------------------------- events */
typedef struct sim_world sim_world_t;
typedef struct sim_tr sim_tr_t;
typedef struct sim_ev sim_ev_t;
typedef void (*sim_ev_fn)(sim_world_t *w, void *a, uint64_t x);

/* A world event (the application's tasks, faults) at absolute time at. */
sim_ev_t *sim_at(sim_world_t *w, uint64_t at, sim_ev_fn fn, void *a, uint64_t x);
void sim_cancel(sim_world_t *w, sim_ev_t *e); /* e may be NULL */
uint64_t sim_now(const sim_world_t *w);

/* Runs one event (and the deferred work due before time moves on): 0 when
 * nothing is left. */
int sim_step(sim_world_t *w);
/* Runs every event up to time t, then sets the clock to t. */
void sim_run_until(sim_world_t *w, uint64_t t);

/* Folds a value into the trace hash (the world folds every event it runs). */
void sim_trace(sim_world_t *w, uint64_t v);
uint64_t sim_trace_hash(const sim_world_t *w);
uint64_t sim_events_run(const sim_world_t *w);

/* A failure found inside the world (a deadlock, a time limit): the owner's
 * handler reports it and does not return. */
typedef void (*sim_fail_fn)(void *ud, const char *what);
_Noreturn void sim_fail(sim_world_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------- the world */
typedef struct sim_link {
  uint64_t lat_ns, jitter_ns; /* one way */
  uint64_t ns_per_kib;        /* bandwidth */
  int seg;                    /* SIM_SEG_* */
  unsigned refuse_pct;        /* connection attempts refused */
  bool blocked;               /* bytes and SYNs do not pass (silently) */
} sim_link_t;

enum { SIM_SEG_NORMAL, SIM_SEG_TINY, SIM_SEG_HUGE };

typedef struct sim_world_cfg {
  uint64_t seed;
  int nhosts;
  uint64_t time_limit;   /* sim_fail beyond this simulated time */
  size_t kernel_buf;     /* bytes a direction holds in the kernel */
  unsigned defer_batch;  /* events run before deferred work (1: after each) */
  unsigned coalesce_pct; /* a read takes the segments that arrived with it */
  sim_fail_fn on_fail;
  void *fail_ud;
} sim_world_cfg_t;

sim_world_t *sim_world_new(const sim_world_cfg_t *cfg);
/* After every transport was freed. */
void sim_world_free(sim_world_t *w);
sim_rng_t *sim_world_rng(sim_world_t *w); /* the network's stream (faults draw their own) */

/* The directed link from host a to host b: change it, then sim_net_changed. */
sim_link_t *sim_link(sim_world_t *w, int a, int b);
void sim_addr_set_down(sim_world_t *w, int host, int addr, bool down);
/* Something that blocked paths was lifted: stalled bytes move again. */
void sim_net_changed(sim_world_t *w);

/* Connections between two hosts (any direction): reset both ends
 * (RST), or cut one direction after `after` more bytes with a RST or a FIN.
 * Which ones: each with probability pct. Returns how many were hit. */
int sim_net_reset(sim_world_t *w, int a, int b, unsigned pct);
int sim_net_cut_at(sim_world_t *w, int a, int b, uint64_t after, bool fin, unsigned pct);
/* Holds the bytes host a sends to host b (both: and b's to a) on each live
 * connection between them (each with probability pct) until the time
 * given: nothing of them, FIN included, arrives before, while the other
 * connections flow. A TCP connection in retransmission backoff looks like
 * this to its peer; a flow whose path broke (one ECMP path down), like
 * this both ways. Returns how many were hit. */
int sim_net_hold(sim_world_t *w, int a, int b, bool both, uint64_t until, unsigned pct);
int sim_net_conns(sim_world_t *w); /* connections alive */
/* A stranger (no node, no key) connects to host's listener on address
 * addr and sends p, then a FIN. 0, or -1 if nothing listens there. */
int sim_net_stranger(sim_world_t *w, int host, int addr, unsigned port, const uint8_t *p, size_t n);
/* Strangers' connections the node has not closed yet. */
int sim_net_strangers_open(sim_world_t *w);
/* Every connection's state, for a failure report. */
void sim_net_dump(sim_world_t *w, FILE *f);

/* --------------------------------------------------------- transports */
/* A node's transport on host h (its seam's clock is the world's, its RNG
 * the world's seam stream). */
sim_tr_t *sim_tr_new(sim_world_t *w, int host);
bn_transport_t *sim_tr_base(sim_tr_t *t);
/* Work queued for its loop and not run yet: deferred callbacks (the node
 * is inside a loop turn) or a wakeup sent to it. */
bool sim_tr_busy(const sim_tr_t *t);
/* The process dies: its sockets leave the network (the kernel closes
 * them: FIN, then RST to later bytes) and its listeners go; with
 * `machine`, the host goes down too (its links drop everything until
 * sim_host_up). Its handles stay for the dead node's own teardown, which
 * runs on its private queue (run() on this transport runs nothing else). */
void sim_tr_crash(sim_tr_t *t, bool machine);
void sim_host_up(sim_world_t *w, int host);
/* Frees it: every handle made through it must be closed or freed. */
void sim_tr_free(sim_tr_t *t);
/* Open handles (sockets, listeners, timers, wakeups), for leak checks. */
int sim_tr_handles(const sim_tr_t *t);

/* The address 10.0.a.(host+1), as a multiaddr prefix "/ip4/…/tcp/port". */
void sim_addr_str(int host, int addr, unsigned port, char *out, size_t cap);

#endif
