/* report.c — the final report (docs/REPORT.md): every peer's row, the
 * totals, the drain, bftnet's counters. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "replica.h"

static json_t *report_row(const rp_row_t *r, const stats_lat_t *lat, uint64_t unexplained,
                          bool per_peer) {
  uint64_t dropped = r->dropped_overflow + r->dropped_removed;
  json_t *o = json_object();
  lines_put_u64s(o, "sent", r->sent, "enqueued", r->enqueued, "written", r->written, "dropped",
                 dropped, "dropped_by_us", dropped, "dropped_overflow", r->dropped_overflow,
                 "dropped_removed", r->dropped_removed, "aborted", r->aborted, "unconfirmed",
                 r->unconfirmed, "unconfirmed_bytes", r->unconfirmed_bytes, "send_errors",
                 r->send_errors, "lagged", r->lagged, "delivered", r->delivered,
                 (const char *)NULL);
  const rp_recv_t *x = &r->recv;
  if (per_peer)
    lines_put_u64s(o, "delivered_current", x->delivered_current, "max_seq", x->max_seq, "first_seq",
                   x->first_seq, (const char *)NULL);
  lines_put_u64s(o, "gaps", x->gaps, "duplicates", x->duplicates, "reorders", x->reorders, "stale",
                 x->stale, "foreign", r->foreign, "rx_evicted", x->rx_evicted, "unexplained_gaps",
                 unexplained, "incarnations", x->incarnations, (const char *)NULL);
  json_object_set_new(o, "incarnation_switches",
                      json_pack("{s:o, s:o, s:o}", "by_event", jsonx_u64(x->inc_by_event), "by_seq",
                                jsonx_u64(x->inc_by_seq), "seq_unexplained",
                                jsonx_u64(x->inc_seq_unexplained)));
  if (per_peer) lines_put_u64s(o, "removals", r->removals, (const char *)NULL);
  /* The node's totals: what it lost on receipt outside any member's counts
   * (without --classes; with, per class in "classes"). */
  if (!per_peer && !rp.o.mix.n) lines_class_totals(o, 0);
  json_object_set_new(o, "latency_us", lines_latency(lat));
  lines_put_u64s(o, "reconnects", r->reconnects, "migrations", r->migrations, "detached",
                 r->detached, "resumed", r->resumed, "retransmitted", r->retransmitted,
                 "detach_ns_last", r->detach_ns_last, "detach_ns_max", r->detach_ns_max,
                 "peer_restarts", r->peer_restarts, "bytes_out", r->bytes_out, "bytes_in",
                 r->bytes_in, "ring_depth", r->ring_depth, (const char *)NULL);
  json_object_set_new(o, "events", lines_events(r->ev, r->ev_aborted_lost));
  json_object_set_new(o, "integrity", json_string(stats_verdict_name(r->verdict)));
  return o;
}

/* One class of a peer (per_peer) or the classes' total, keyed as the
 * peer rows are (the cluster cross-checks each class as it does a peer). */
static json_t *class_json(const rp_crow_t *c, const stats_lat_t *lat, bool per_peer) {
  json_t *o = json_object();
  lines_put_u64s(o, "sent", c->sent, "enqueued", c->enqueued, "written", c->written, "dropped",
                 c->dropped, "dropped_by_us", c->dropped, "superseded", c->superseded, "aborted",
                 c->aborted, "unconfirmed", c->unconfirmed, "ring_depth", c->ring_depth,
                 "send_errors", c->send_errors, "lagged", c->lagged, "delivered", c->delivered,
                 (const char *)NULL);
  const rp_recv_t *x = &c->recv;
  if (per_peer)
    lines_put_u64s(o, "delivered_current", x->delivered_current, "max_seq", x->max_seq, "first_seq",
                   x->first_seq, (const char *)NULL);
  lines_put_u64s(o, "gaps", x->gaps, "duplicates", x->duplicates, "reorders", x->reorders, "stale",
                 x->stale, "foreign", c->foreign, "rx_evicted", x->rx_evicted, "incarnations",
                 x->incarnations, (const char *)NULL);
  if (per_peer)
    json_object_set_new(o, "incarnation_switches",
                        json_pack("{s:o, s:o, s:o}", "by_event", jsonx_u64(x->inc_by_event),
                                  "by_seq", jsonx_u64(x->inc_by_seq), "seq_unexplained",
                                  jsonx_u64(x->inc_seq_unexplained)));
  json_object_set_new(o, "latency_us", lines_latency(lat));
  json_object_set_new(o, "integrity", json_string(stats_verdict_name(c->verdict)));
  return o;
}

/* --classes: p's classes, by name; each added to the classes' totals. */
static json_t *report_classes(rp_peer_t *p) {
  json_t *o = json_object();
  for (size_t k = 0; k < rp.o.mix.n; k++) {
    rp_crow_t c;
    classes_row(p, k, &c);
    json_object_set_new(o, rp.o.mix.c[k].name, class_json(&c, &p->cls[k].lat_run, true));
    classes_crow_add(&rp.cls_tot[k], &c);
    stats_lat_merge(&rp.cls_lat[k], &p->cls[k].lat_run);
  }
  return o;
}

/* The classes' totals, each with the node's totals of the class. */
static json_t *report_class_totals(void) {
  json_t *o = json_object();
  for (size_t k = 0; k < rp.o.mix.n; k++) {
    json_t *c = class_json(&rp.cls_tot[k], &rp.cls_lat[k], false);
    lines_class_totals(c, k);
    json_object_set_new(o, rp.o.mix.c[k].name, c);
  }
  return o;
}

/* The peer's incarnations as this replica saw them, keyed by their ordinal
 * ("1" the first seen): the finished ones it still remembers
 * (STATS_RX_HISTORY), then the current one. An object, not an array, so
 * that every report value has a path of keys. Under rx_mu. */
static json_t *j_incarnations(const stats_rx_t *rx) {
  json_t *o = json_object();
  stats_inc_t cur;
  stats_rx_current(rx, &cur);
  uint64_t first = rx->incarnations > rx->nhist ? rx->incarnations - rx->nhist : 1;
  for (size_t i = 0; i <= rx->nhist && rx->incarnations; i++) {
    const stats_inc_t *x = i < rx->nhist ? &rx->hist[i] : &cur;
    char key[24];
    snprintf(key, sizeof key, "%" PRIu64, first + i);
    json_object_set_new(
        o, key,
        json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o}", "start", stats_inc_start_name(x->start),
                  "first_seq", jsonx_u64(x->first_seq), "max_seq", jsonx_u64(x->max_seq),
                  "delivered", jsonx_u64(x->received), "gaps", jsonx_u64(x->gaps), "duplicates",
                  jsonx_u64(x->duplicates), "reorders", jsonx_u64(x->reorders)));
  }
  return o;
}

/* What the report gathers from the peers' rows. */
typedef struct gather {
  uint64_t unexplained; /* gaps that no eviction explains */
  json_t *peers;
} gather_t;

static void report_peer(rp_peer_t *p, const rp_row_t *r, void *ud) {
  gather_t *g = ud;
  uint64_t unexplained = r->recv.gaps > r->recv.rx_evicted ? r->recv.gaps - r->recv.rx_evicted : 0;
  json_t *o = report_row(r, &p->lat_run, unexplained, true);
  json_object_set_new(o, "rx_incarnations", j_incarnations(&p->rx));
  json_object_set_new(o, "member", json_boolean(p->member));
  json_object_set_new(o, "peer_id", json_string(p->peer_id));
  if (p->cls) json_object_set_new(o, "classes", report_classes(p));
  json_object_set_new(g->peers, p->id, o);
  g->unexplained += unexplained;
  stats_lat_merge(&rp.totals_lat, &p->lat_run);
}

/* --classes as configured: [{name, prio, size, rate (0: max), policy, keys, ring}]. */
static json_t *config_classes(void) {
  json_t *a = json_array();
  for (size_t k = 0; k < rp.o.mix.n; k++) {
    const classmix_class_t *c = &rp.o.mix.c[k];
    json_array_append_new(a,
                          json_pack("{s:s, s:i, s:o, s:f, s:s, s:o, s:o}", "name", c->name, "prio",
                                    c->prio, "size", jsonx_u64(c->size), "rate", c->rate, "policy",
                                    c->policy == BFTNET_KEEP_LATEST ? "keep-latest" : "drop-oldest",
                                    "keys", jsonx_u64(c->keys), "ring", jsonx_u64(c->ring)));
  }
  return a;
}

json_t *report_build(const rp_drain_t *d) {
  gather_t g = {.peers = json_object()};
  rp_row_t tot;
  stats_lat_reset(&rp.totals_lat);
  for (size_t k = 0; k < rp.o.mix.n; k++) {
    stats_lat_reset(&rp.cls_lat[k]);
    rp.cls_tot[k] = (rp_crow_t){0};
  }
  peers_rows(report_peer, &g, &tot);
  json_t *total = report_row(&tot, &rp.totals_lat, g.unexplained, false);
  if (rp.o.mix.n) json_object_set_new(total, "classes", report_class_totals());
  json_t *listen = json_array();
  for (int i = 0; i < rp.o.nlisten; i++)
    json_array_append_new(listen, json_string(rp.bound[i]));
  json_t *cfg =
      json_pack("{s:f, s:o, s:f, s:o, s:o, s:o}", "rate", rp.o.rate, "size", jsonx_u64(rp.o.size),
                "duration_s", rp.o.duration_s, "stats_ms", jsonx_u64(rp.o.stats_ms), "drain_ms",
                jsonx_u64(rp.o.drain_ms), "ring_capacity", jsonx_u64(rp.ring_cap));
  if (rp.o.mix.n) json_object_set_new(cfg, "classes", config_classes());
  json_t *drain = json_pack("{s:o, s:b, s:s, s:b, s:s}", "ms", jsonx_u64(d->ns / NS_PER_MS),
                            "complete", d->complete, "reason", d->reason, "flushed", d->flushed,
                            "flush", d->flush_rc == 0 ? "ok" : bftnet_err_name(d->flush_rc));
  uint64_t unattributed[RP_EV_N];
  for (int k = 0; k < RP_EV_N; k++)
    unattributed[k] = atomic_load(&rp.ev_unattributed[k]);
  json_t *rep = json_pack(
      "{s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:s, s:o, s:o, s:o, s:o, s:o}", "schema",
      "bftnet-replica-report/1", "id", rp.o.id, "peer_id", rp.self_peer, "listen", listen, "config",
      cfg, "elapsed_ms", jsonx_u64(rp_ms_since_start()), "send_ms",
      jsonx_u64((rp.send_end_ns - rp.t0) / NS_PER_MS), "drain", drain, "integrity",
      stats_verdict_name(tot.verdict), "unknown_sender", jsonx_u64(atomic_load(&rp.rx_unknown)),
      "events_unattributed", lines_events(unattributed, 0), "peers", g.peers, "total", total,
      "counters", lines_counters(true));
  json_object_set_new(rep, "event_lines_suppressed",
                      jsonx_u64(atomic_load(&rp.ev_lines_suppressed)));
  return rep;
}

int report_write(json_t *rep) {
  if (!rp.o.report) {
    json_t *line = json_pack("{s:s, s:s, s:o}", "type", "report", "id", rp.o.id, "report", rep);
    lines_emit(line);
    return 0;
  }
  int rc = jsonx_write_atomic(rep, rp.o.report, JSON_INDENT(2) | JSON_REAL_PRECISION(12));
  json_decref(rep);
  if (rc) rp_log("report %s: cannot write: %s", rp.o.report, strerror(-rc));
  return rc ? -1 : 0;
}
