/*
 * order.c — which of a peer's streams is the newest. A peer opens one
 * stream to us at a time, but an older one, aborted and replaced by the
 * opener, can reach us after the newer one: its Label and bytes took a
 * slower connection. Taking it would deliver its messages after newer ones.
 * Within one incarnation the opener's stream IDs rise across all its
 * streams to us (PROTOCOL.md §11.3), and the ID a stream was opened with
 * survives its migrations: of two streams of one opener incarnation, the
 * one with the higher opening ID is the newer. A Receiver (and a
 * TentativeReceiver) remembers the newest it took, and refuses an older one.
 */
#include <inttypes.h>

#include "rx_internal.h"

int rx__order_admit(rx_ctx_t *ctx, rx_order_t *o, mig_stream_t *ls, const char *who,
                    bn_ratelimit_t *rl) {
  uint64_t id, inc;
  if (!mig_stream_opened_as(ls, &id, &inc)) return 0; /* nothing tells its age */
  if (o->known && o->inc == inc && id <= o->open_id && !BN_SIM_DEFECT(9)) {
    bn_counter_add(ctx->counters, BFTNET_COUNTER_MIG_STALE_STREAMS, 1);
    bn_log_rl(ctx->cfg.log, rl, bn_now_ns(ctx->t->seam), BN_LOG_INFO,
              "%s opened stream %" PRIu64 " before stream %" PRIu64
              ", which we already took: an older stream heard of late, refused",
              who, id, o->open_id);
    return BFTNET_ESTATE;
  }
  o->inc = inc;
  o->open_id = id;
  o->known = true;
  return 0;
}
