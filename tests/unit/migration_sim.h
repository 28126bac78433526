/* migration_sim.h — two peers' migration registries joined by in-memory
 * carriers (byte pipes with yamux-like credit) and, in the Confirm mode, a
 * channel of Confirms that arrive in any order and are lost with the
 * carrier they were sent beside, for migration_sim_test.c. */
#ifndef MIGRATION_SIM_H
#define MIGRATION_SIM_H

#include <stdio.h>
#include <stdlib.h>

#include "mig_core.h"

#define SIM_MAX_CARRIERS 4096
#define SIM_YAMUX_WINDOW 700u /* per carrier direction */

enum { SIM_R_MSG, SIM_R_ECHO, SIM_R_DATA };

typedef struct sim_dir {
  uint8_t *q;
  size_t len, off, cap;
  bool fin, fin_done;
  uint64_t credit; /* credit granted by the sender of this direction's reverse */
} sim_dir_t;

typedef struct sim_carrier {
  bool used, dead;
  int opener;
  sim_dir_t d[2];          /* d[i]: bytes from endpoint i */
  int mode[2];             /* how endpoint i reads d[1-i] */
  mig_reader_t rd[2];
  bool released[2], lost_seen[2];
  uint64_t sent_l[2], cred_l[2]; /* L bytes endpoint i wrote / got credit for */
  uint64_t pre_seen;       /* exchange bytes delivered (both directions) */
  uint64_t cut_at;         /* cut once pre_seen reaches this (0 = never) */
  bool byte_mode;          /* deliver preamble one byte at a time */
  int also_cut;            /* a carrier cut together with this one (0 = none) */
} sim_carrier_t;

typedef struct sim_ep {
  mig_reg_t reg;
  mig_sm_t *s;
  uint64_t written, received, max_window;
  uint64_t aborts, violations, closed, read_eof;
} sim_ep_t;

#define SIM_MAX_CONFIRMS 64

typedef struct sim_confirm {
  int to;      /* the endpoint it goes to */
  uint64_t h;  /* the carrier it travels beside (lost when it is cut) */
  uint64_t id, off;
} sim_confirm_t;

typedef struct sim {
  sim_ep_t ep[2]; /* ep[0] leads */
  bool confirms;  /* the readers confirm with Confirms (else yamux credit) */
  sim_confirm_t cq[SIM_MAX_CONFIRMS];
  int ncq;
  uint64_t confirms_sent, confirms_lost;
  sim_carrier_t c[SIM_MAX_CARRIERS];
  int nc;
  uint64_t now, rng;
  uint64_t total; /* bytes the writer sends */
  int writer;
  mig_actions_t acts;
} sim_t;

#endif
