/*
 * stats.c — counters and per-member statistics, from any thread: the
 * node's counters (bn_counters_t) and a member's send side, receive side,
 * migration figures and health (all classes, or one), read inside an
 * epoch section.
 */
#include "node_internal.h"

void node__stats_fill(bftnet_t *b, mbr_t *m, bftnet_peer_stats_t *out) {
  *out = (bftnet_peer_stats_t){
      .migrations = ck_pr_load_64(&m->pub.migrations),
      .detached = ck_pr_load_64(&m->pub.detached),
      .resumed = ck_pr_load_64(&m->pub.resumed),
      .retransmitted = ck_pr_load_64(&m->pub.retransmitted),
      .detach_ns_last = ck_pr_load_64(&m->pub.detach_ns_last),
      .detach_ns_max = ck_pr_load_64(&m->pub.detach_ns_max),
      .peer_restarts = ck_pr_load_64(&m->pub.restarts),
  };
  disp_stats(&m->d, out);
  rx_stats(&m->r, out);
  node__health_fill(b, m, out);
}

BFTNET_API int bftnet_peer_stats(bftnet_t *b, const char *node_id, bftnet_peer_stats_t *out) {
  if (!b || !node_id || !out) return BFTNET_EINVAL;
  ck_epoch_section_t sec;
  ck_epoch_record_t *r = node__snapshot_enter(b, &sec);
  if (!r) return BFTNET_ENOMEM;
  mbr_t *m = node__snapshot_find(node__snapshot_load(b), node_id);
  if (m) node__stats_fill(b, m, out);
  node__snapshot_exit(b, r, &sec);
  return m ? 0 : BFTNET_ENOTFOUND;
}

BFTNET_API uint64_t bftnet_counter(const bftnet_t *b, bftnet_counter_id_t id) {
  if (!b || (unsigned)id >= BFTNET_COUNTER_COUNT) return 0;
  return bn_counter_get(&b->counters, id);
}

BFTNET_API int bftnet_class_stats(bftnet_t *b, const char *node_id, uint8_t cls,
                                  bftnet_class_stats_t *out) {
  if (!b || !node_id || !out) return BFTNET_EINVAL;
  if (cls >= b->ncls) return BFTNET_ENOCLASS;
  ck_epoch_section_t sec;
  ck_epoch_record_t *r = node__snapshot_enter(b, &sec);
  if (!r) return BFTNET_ENOMEM;
  mbr_t *m = node__snapshot_find(node__snapshot_load(b), node_id);
  if (m) {
    memset(out, 0, sizeof *out);
    disp_class_stats(&m->d, cls, out);
    rx_class_stats(&m->r, cls, out);
  }
  node__snapshot_exit(b, r, &sec);
  return m ? 0 : BFTNET_ENOTFOUND;
}

BFTNET_API int bftnet_class_totals(bftnet_t *b, uint8_t cls, bftnet_class_totals_t *out) {
  if (!b || !out) return BFTNET_EINVAL;
  if (cls >= b->ncls) return BFTNET_ENOCLASS;
  rx_class_totals(&b->rctx, cls, out);
  return 0;
}
