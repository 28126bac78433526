/*
 * sim_internal.h — what sim_world.c (events, time, transports, timers,
 * wakeups, deferral, run) and sim_sock.c (connections, listeners) share.
 */
#ifndef BFTNET_SIM_INTERNAL_H
#define BFTNET_SIM_INTERNAL_H

#include <netinet/in.h>
#include <sys/socket.h>

#include "sim_world.h"

/* ---------------------------------------------------------------- heap */
typedef struct sim_heap {
  sim_ev_t **a;
  size_t n, cap;
} sim_heap_t;

struct sim_ev {
  uint64_t at, seq;
  sim_ev_fn fn;
  void *a;
  uint64_t x;
  sim_tr_t *owner;  /* NULL: the world's; else moves with a crashed transport */
  sim_heap_t *heap; /* where it waits */
  size_t idx;
  sim_ev_t *next_free;
};

/* An event for transport t (its private queue once t crashed). */
sim_ev_t *sim__at_tr(sim_world_t *w, sim_tr_t *t, uint64_t at, sim_ev_fn fn, void *a, uint64_t x);

/* -------------------------------------------------------------- sockets */
typedef struct sim_conn sim_conn_t;

/* The kernel's side of an endpoint. */
enum { K_OPEN, K_CLOSED /* bytes arriving get a RST */, K_RESET, K_GONE /* host down */ };

struct bn_tsock {
  sim_conn_t *conn;
  int side; /* 0 dialer, 1 acceptor */
  sim_tr_t *tr;
  bn_tsock_cbs_t cbs;
  void *ud;
  bool open;    /* the handle exists (on_close not yet run) */
  bool closing; /* close() was called */
  bool reading;
  bool eof;    /* on_eof ran, or will: reads ended */
  bool zombie; /* its transport crashed: the handle no longer touches the network */
  bool linger; /* a graceful close waits for its queued writes */
  int kstate;
  sim_ev_t *ev_conn, *ev_drain, *ev_eof, *ev_close, *ev_linger;
  struct sockaddr_in local, peer;
  bn_tsock_t *tr_next, *tr_prev; /* the transport's open handles */
};

typedef struct sim_seg {
  uint32_t len;
  uint64_t sent_at;
} sim_seg_t;

/* Bytes from ep[side] to ep[1 - side]. */
typedef struct sim_dir {
  sim_conn_t *conn;
  int side;
  uint8_t *buf; /* FIFO [off, off + len) */
  size_t off, len, cap;
  size_t kbytes;   /* the first kbytes are in the kernel (cut into segments) */
  sim_seg_t *segs; /* ring of segments covering the kernel bytes */
  size_t seg_head, nsegs, seg_cap;
  int nwrites; /* user writes waiting for kernel room (0, 1, 2) */
  bool fin;    /* a FIN follows the last byte */
  bool fin_done;
  bool dead; /* reset or cut: nothing more flows */
  bool stalled, wait_read;
  uint64_t delivered;
  uint64_t cut_at; /* armed: deliver up to this offset, then cut */
  bool cut_armed, cut_fin;
  uint64_t last_arrival, not_before;
  uint64_t hold_until; /* held (sim_net_hold): nothing arrives before */
  sim_ev_t *ev;
  struct sim_dir *stall_next;
} sim_dir_t;

struct sim_conn {
  sim_world_t *w;
  bn_tsock_t ep[2];
  sim_dir_t dir[2];
  int hd, hl, addr; /* dialer's host; listener's host and address */
  unsigned port;
  int syn_tries;
  bool stranger; /* ep[0] is no node's: a stranger's bytes (sim_net_stranger) */
  sim_ev_t *ev_syn, *ev_rst[2];
  sim_conn_t *next, *prev;
};

struct bn_tlistener {
  sim_tr_t *tr;
  int addr;
  unsigned port;
  bn_accept_cb cb;
  void *ud;
  bool registered;
  bn_tlistener_t *next;
};

struct bn_ttimer {
  sim_tr_t *tr;
  bn_timer_cb cb;
  void *ud;
  uint64_t repeat_ns;
  sim_ev_t *ev;
};

struct bn_twake {
  sim_tr_t *tr;
  bn_wake_cb cb;
  void *ud;
  sim_ev_t *ev;
};

#define SIM_MAX_DEFER 16

struct sim_tr {
  bn_transport_t base;
  bn_seam_t seam;
  sim_world_t *w;
  int host;
  bool dead, machine;
  sim_heap_t heap; /* private queue once dead */
  bn_defer_cb defer_cb[SIM_MAX_DEFER];
  void *defer_ud[SIM_MAX_DEFER];
  int ndefer;
  int nsocks, nlisteners, ntimers, nwakes;
  int wakes_pending; /* wakeups sent whose callback has not run yet */
  bn_tsock_t *socks;
  sim_tr_t *next;
  uint64_t dead_steps;
};

struct sim_world {
  sim_world_cfg_t cfg;
  uint64_t now, seq, events, trace;
  sim_heap_t heap;
  sim_ev_t *free_evs;
  sim_rng_t net_rng, seam_rng;
  sim_link_t link[SIM_MAX_HOSTS][SIM_MAX_HOSTS];
  bool addr_down[SIM_MAX_HOSTS][SIM_ADDRS];
  bool host_down[SIM_MAX_HOSTS];
  sim_tr_t *trs;
  sim_conn_t *conns;
  bn_tlistener_t *listeners;
  sim_dir_t *stalled;
  unsigned next_port;
  unsigned batch;
  int idle_runs;
  bool in_defers;
  uint8_t rbuf[256 * 1024]; /* the one read buffer (the transports' scratch) */
};

/* sim_world.c */
void sim__defers_run(sim_world_t *w, sim_tr_t *only);

/* sim_sock.c: the socket half of the transport table, crash and restart. */
void sim__sock_fill_ops(bn_transport_ops_t *ops);
void sim__sock_world_free(sim_world_t *w);
void sim__sock_crash(sim_tr_t *t, bool machine);
void sim__sock_host_up(sim_world_t *w, int host);
bool sim__path_blocked(sim_world_t *w, const sim_conn_t *c, int from_side);

#endif
