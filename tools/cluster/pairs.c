/* pairs.c — the cross-check of every ordered pair of replicas from their
 * reports (cluster_pair_check) and what the cluster saw of them. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

static json_t *peer_row(const cl_replica_t *r, const cl_replica_t *peer) {
  return r->report ? json_object_get(json_object_get(r->report, "peers"), peer->name) : NULL;
}

static void reports_load(void) {
  for (unsigned i = 0; i < cl.nslots; i++) {
    cl_replica_t *r = &cl.rep[i];
    if (!r->ever_started) continue;
    json_error_t je;
    r->report = json_load_file(r->report_path, 0, &je);
    const char *schema = json_string_value(json_object_get(r->report, "schema"));
    if (r->report && (!schema || strcmp(schema, "bftnet-replica-report/1") != 0)) {
      cl_warn("%s: unknown schema %s: ignored", r->report_path, schema ? schema : "(none)");
      json_decref(r->report);
      r->report = NULL;
    } else if (!r->report) {
      cl_warn("%s: no report (%s)", r->name, je.text);
    }
  }
}

/* How many times S started again (and sent) after R's last incarnation had
 * loaded its membership: the new incarnations of S that R's report can
 * have seen. -1 when the cluster lost count (too many incarnations). */
static int restarts_seen_by(const cl_replica_t *s, const cl_replica_t *r) {
  if (s->n_loaded > CL_MAX_INCS || r->n_loaded > CL_MAX_INCS) return -1;
  if (r->n_loaded == 0) return 0;
  double since = r->loaded_ms[r->n_loaded - 1];
  int n = 0;
  for (int k = 1; k < s->n_loaded; k++)
    if (s->loaded_ms[k] > since) n++;
  return n;
}

static void pair_fill(cl_pair_t *pr, const json_t *speer, const json_t *rpeer) {
  cl_replica_t *s = &cl.rep[pr->s], *r = &cl.rep[pr->r];
  const json_t *srow = classes_row(speer, pr->cls), *rrow = classes_row(rpeer, pr->cls);
  cluster_pair_in_t *in = &pr->in;
  in->have_sender = srow != NULL;
  in->have_receiver = rrow != NULL;
  if (srow) {
    in->sent = cl_ju(srow, "sent");
    in->dropped = cl_ju(srow, "dropped_by_us");
    in->aborted = cl_ju(srow, "aborted");
    in->unconfirmed = cl_ju(srow, "unconfirmed");
    in->ring_depth = cl_ju(srow, "ring_depth");
    pr->reconnects = cl_ju(speer, "reconnects"); /* per peer, whatever the class */
    pr->have_migr = json_object_get(speer, "migrations") != NULL;
    pr->migrations = cl_ju(speer, "migrations");
    pr->detached = cl_ju(speer, "detached");
    pr->resumed = cl_ju(speer, "resumed");
    pr->retransmitted = cl_ju(speer, "retransmitted");
    pr->detach_ns_max = cl_ju(speer, "detach_ns_max");
    pr->ev_aborted = cl_ju(json_object_get(speer, "events"), "aborted");
  }
  if (rrow) {
    in->delivered = cl_ju(rrow, "delivered");
    in->rx_evicted = cl_ju(rrow, "rx_evicted");
    in->duplicates = cl_ju(rrow, "duplicates");
    in->reorders = cl_ju(rrow, "reorders");
    pr->gaps = cl_ju(rrow, "gaps");
    pr->max_seq = cl_ju(rrow, "max_seq");
    json_t *lat = json_object_get(rrow, "latency_us");
    pr->lat_n = cl_ju(lat, "n");
    pr->p50 = cl_jd(lat, "p50");
    pr->p90 = cl_jd(lat, "p90");
    pr->p99 = cl_jd(lat, "p99");
    pr->max = cl_jd(lat, "max");
    json_t *sw = json_object_get(rrow, "incarnation_switches");
    int seen = restarts_seen_by(s, r);
    pr->rx_incarnations = cl_ju(rrow, "incarnations");
    if (json_is_object(sw) && seen >= 0) {
      in->rx_split = 1;
      in->rx_switches = cl_ju(sw, "by_event") + cl_ju(sw, "by_seq");
      in->sender_restarts = (uint64_t)seen;
      in->delivered_current = cl_ju(rrow, "delivered_current");
    }
  } else {
    pr->p50 = pr->p90 = pr->p99 = pr->max = NAN;
  }
  const cl_base_t *base = pr->cls < 0 ? &s->base[pr->r] : &s->cbase[pr->r][pr->cls];
  if (s->restarts > 0 && base->valid) {
    in->sender_restarted = 1;
    in->base_exact = base->exact;
    in->base_delivered = base->delivered;
    in->base_duplicates = base->duplicates;
    in->base_reorders = base->reorders;
  }
  if (r->kills > 0) {
    in->receiver_killed = 1;
    in->died_min = pr->cls < 0 ? r->died_min[pr->s] : r->cdied_min[pr->s][pr->cls];
    in->rx_first_seq = rrow ? cl_ju(rrow, "first_seq") : 0;
  }
}

/* R's loss on receipt in class cls (-1: no --classes, class 0) that no
 * peer row of its report names: its bftnet_class_totals less the
 * evictions its members' rows claim (rx_evicted). A removed sender's pair
 * may account its missing messages with it. 0 without a report, or from a
 * replica too old to report the totals. */
static uint64_t rx_discarded_pool(const cl_replica_t *r, int cls) {
  if (!r->report) return 0;
  const json_t *tot = classes_row(json_object_get(r->report, "total"), cls);
  uint64_t pool = cl_ju(tot, "discarded_removed") + cl_ju(tot, "tentative_evicted"), named = 0;
  const char *name;
  json_t *row;
  json_object_foreach(json_object_get(r->report, "peers"), name, row) {
    named += cl_ju(classes_row(row, cls), "rx_evicted");
  }
  return pool > named ? pool - named : 0;
}

/* Adds a part to a pair's note ("; " between parts) while there is room. */
__attribute__((format(printf, 2, 3))) static void note_add(text_buf_t *b, const char *fmt, ...) {
  if (b->used >= b->cap - 3) return;
  text_sep(b, "; ");
  va_list ap;
  va_start(ap, fmt);
  text_vaddf(b, fmt, ap);
  va_end(ap);
}

static void pair_note(cl_pair_t *pr) {
  text_buf_t note;
  text_buf_init(&note, pr->note, sizeof pr->note);
  const cluster_pair_out_t *o = &pr->out;
  const cl_replica_t *s = &cl.rep[pr->s], *r = &cl.rep[pr->r];
  if (!pr->in.have_sender)
    note_add(&note, "no report from %s%s", s->name, s->kills ? " (killed)" : "");
  if (!pr->in.have_receiver)
    note_add(&note, "no report from %s%s", r->name, r->kills ? " (killed)" : "");
  if (!pr->in.have_sender || !pr->in.have_receiver) return;
  if (o->duplicates || o->reorders)
    note_add(&note, "VIOLATED: %" PRIu64 " duplicates, %" PRIu64 " reorders", o->duplicates,
             o->reorders);
  if (o->extra)
    note_add(&note, "%s: %" PRIu64 " more delivered than sent%s",
             o->verdict == CLUSTER_PAIR_UNVERIFIABLE ? "unverifiable" : "VIOLATED", o->extra,
             o->verdict == CLUSTER_PAIR_UNVERIFIABLE
                 ? " (the incarnations could not be split: no stats line of the receiver "
                   "between the kill and the restart)"
                 : "");
  if (o->aborted_arrived)
    note_add(&note,
             "%" PRIu64 " of the %" PRIu64 " messages %s counted as aborted (not confirmed read "
             "when a stream broke) arrived anyway",
             o->aborted_arrived, pr->in.aborted, s->name);
  if (o->false_restarts)
    note_add(&note,
             "VIOLATED: %s saw %" PRIu64 " new incarnation(s) of %s that never started "
             "(message 1 delivered again?)",
             r->name, o->false_restarts, s->name);
  if (o->split_used && pr->in.sender_restarts)
    note_add(&note,
             "%s restarted %" PRIu64 " time(s); %s told its incarnations apart itself (exact)",
             s->name, pr->in.sender_restarts, r->name);
  if (o->restart_artifacts)
    note_add(&note,
             "%s restarted (sequence numbers from 1 again): %" PRIu64
             " duplicates/reorders at %s are that restart, not bftnet",
             s->name, o->restart_artifacts, r->name);
  if (o->rx_discarded)
    note_add(&note,
             "%s removed %s: %" PRIu64 " of the missing were discarded unread or evicted there "
             "(%s's count in the class, naming no sender)",
             r->name, s->name, o->rx_discarded, r->name);
  if (o->died)
    note_add(&note,
             "%s was killed: %" PRIu64 " of the missing went to its killed process (numbered "
             "below the first its last process got, %" PRIu64 "; its last stats line had %" PRIu64
             ")",
             r->name, o->died, pr->in.rx_first_seq, pr->in.died_min);
  if (o->lost)
    note_add(&note,
             "lost in flight: %" PRIu64 "%s (written to a connection %" PRIu64
             ", lost in the sender's framer %" PRIu64 ", still queued %" PRIu64 ")%s",
             o->lost, pr->in.receiver_killed ? " at most" : "", o->in_flight, o->unwritten,
             o->queued, pr->broken ? "" : " ON A LINK NO FAULT BROKE");
}

cl_pair_t *pairs_build(size_t *np, cluster_summary_t *sum) {
  reports_load();
  size_t per = cl.o.mix.n ? cl.o.mix.n : 1;
  cl_pair_t *pairs = calloc((size_t)cl.nslots * cl.nslots * per, sizeof *pairs);
  /* Per receiver and class: its unnamed loss on receipt, shared in turn
   * by the pairs of the senders it removed, each claiming at most what it
   * misses, together never more than the receiver counted. */
  uint64_t *pool = calloc((size_t)cl.nslots * per, sizeof *pool);
  if (!pool) {
    free(pairs);
    pairs = NULL;
  }
  for (unsigned r = 0; pairs && r < cl.nslots; r++)
    for (size_t k = 0; k < per; k++)
      pool[r * per + k] = rx_discarded_pool(&cl.rep[r], cl.o.mix.n ? (int)k : -1);
  size_t n = 0;
  uint64_t end = (uint64_t)llround(cl.o.duration_s * 1000);
  for (unsigned s = 0; pairs && s < cl.nslots; s++)
    for (unsigned r = 0; r < cl.nslots; r++) {
      if (s == r || !cl.rep[s].ever_started || !cl.rep[r].ever_started) continue;
      const json_t *srow = peer_row(&cl.rep[s], &cl.rep[r]);
      const json_t *rrow = peer_row(&cl.rep[r], &cl.rep[s]);
      /* Never members of each other (both reports exist, neither lists the
       * other): no pair. A missing report makes every pair unverifiable. */
      if (!srow && !rrow && cl.rep[s].report && cl.rep[r].report) continue;
      int broken =
          cluster_plan_breaks_link(cl.faults, cl.nfaults, end, (int)s, (int)r, CL_PING_TIMEOUT_MS);
      /* Without --classes one check per pair; with, one per class. */
      for (int k = cl.o.mix.n ? 0 : -1; k < (int)cl.o.mix.n; k++) {
        cl_pair_t *pr = &pairs[n++];
        pr->s = (int)s;
        pr->r = (int)r;
        pr->cls = k;
        pr->broken = broken;
        pair_fill(pr, srow, rrow);
        uint64_t *left = &pool[r * per + (k < 0 ? 0 : (size_t)k)];
        if (cl_ju(rrow, "removals") > 0) pr->in.rx_discarded_pool = *left;
        cluster_pair_check(&pr->in, &pr->out);
        *left -= pr->out.rx_discarded;
        pair_note(pr);
        cluster_summary_add(sum, &pr->out, pr->broken);
      }
    }
  free(pool);
  *np = n;
  return pairs;
}
