/*
 * rx_internal.h — receiver/ private: the TentativeReceiver and what
 * receiver.c uses of tentative.c.
 */
#ifndef BFTNET_RX_INTERNAL_H
#define BFTNET_RX_INTERNAL_H

#include "receiver.h"

/* One class's stream of a TentativeReceiver. */
typedef struct rx_tent_in {
  struct rx_tent *t;
  unsigned cls;
  mig_stream_t *s; /* NULL once it ended (the buffer stays) */
  rx_deframer_t rxd;
  size_t uncredited; /* received, credit held back by the rate limit */
} rx_tent_in_t;

/* A TentativeReceiver: an authenticated peer that is not (yet) a member.
 * Its classes' streams share one buffer (each message keeps its class) and
 * one rate limit. */
struct rx_tent {
  struct rx_tent *prev, *next; /* creation order, oldest first */
  peerid_t peer;
  rx_ctx_t *ctx;
  mig_peer_t *lp; /* the peer's migration state (owned) */
  rx_tent_in_t in[BFTNET_MAX_CLASSES];
  rx_tentative_buf_t buf;
  /* buf's evictions already added to the node's counters (tentative.c) */
  uint64_t evicted_told, evicted_cls_told[BFTNET_MAX_CLASSES];
  uint64_t tokens;                      /* token bucket: bytes it may still be credited */
  uint64_t refill_ns;                   /* when tokens were last refilled */
  rx_order_t order[BFTNET_MAX_CLASSES]; /* per class: its newest stream; handed over on promotion */
  bn_ratelimit_t rl;                    /* its log lines */
};

/* A stream's deframer: messages above max_message_size but within what
 * any bftnet node may send (BN_MSG_MAX_CAP) are skipped and counted, not
 * taken as a protocol error (PROTOCOL.md 8.1). Partial bodies from the
 * node's pool. */
static inline void rx__deframer_setup(rx_deframer_t *d, const rx_ctx_t *ctx) {
  rx_deframer_init(d, ctx->cfg.max_message_size);
  d->skip_max = BN_MSG_MAX_CAP;
  d->pool = ctx->pool;
}

/* order.c (loop thread): 0 and ls recorded in o as the newest stream, or
 * BFTNET_ESTATE (counted, logged naming who, rate-limited by rl)
 * for a stream older than o's of the same opener incarnation. A stream that
 * does not tell its age (plain, no incarnation) is taken and not recorded. */
int rx__order_admit(rx_ctx_t *ctx, rx_order_t *o, mig_stream_t *ls, const char *who,
                    bn_ratelimit_t *rl);

/* tentative.c (loop thread). */
rx_tent_t *rx__tentative_find(rx_ctx_t *ctx, const peerid_t *peer);
/* Unlinks and frees t; close_conn: also closes its connection (evicted). */
void rx__tentative_free(rx_ctx_t *ctx, rx_tent_t *t, bool close_conn);
/* The rate limiter's timer (ud: the context): credits what it may. */
void rx__tentative_tick(void *ud);

#endif
