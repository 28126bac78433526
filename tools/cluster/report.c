/* report.c — the end of a run: the pair table, DIR/report.json and the
 * verdict line. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

static void table_print(const cl_pair_t *pairs, size_t n) {
  /* A large cluster's table is in report.json; here, the pairs not ok. */
  bool all = n <= CL_PAIR_TABLE_MAX;
  size_t shown = 0;
  for (size_t k = 0; k < n; k++)
    shown += all || pairs[k].out.verdict != CLUSTER_PAIR_OK;
  if (!all)
    text_say("\n%zu pairs: their table is in report.json; %s", n,
             shown ? "the pairs not ok:" : "every pair is ok");
  if (!shown) return;
  int w = cl.o.mix.n ? 18 : 9; /* with --classes: "r0->r1/vote" */
  text_say("\n%-*s %9s %7s %7s %9s %7s %6s %6s %6s %9s %9s %9s %6s %6s %s", w, "pair", "sent",
           "dropped", "aborted", "delivered", "lost", "gaps", "dups", "reord", "p50", "p99", "max",
           "recon", "migr", "verdict");
  for (size_t k = 0; k < n; k++) {
    const cl_pair_t *pr = &pairs[k];
    if (!all && pr->out.verdict == CLUSTER_PAIR_OK) continue;
    char name[2 * sizeof cl.rep[0].name + BFTNET_CLASS_NAME_MAX + 4], s50[24], s99[24], smax[24],
        migr[24] = "-";
    if (pr->have_migr) snprintf(migr, sizeof migr, "%" PRIu64, pr->migrations);
    snprintf(name, sizeof name, "%s->%s%s%s%s", cl.rep[pr->s].name, cl.rep[pr->r].name,
             pr->cls >= 0 ? "/" : "", pr->cls >= 0 ? cl.o.mix.c[pr->cls].name : "",
             pr->in.sender_restarted ? "*" : "");
    cluster_fmt_us(pr->p50, s50, sizeof s50);
    cluster_fmt_us(pr->p99, s99, sizeof s99);
    cluster_fmt_us(pr->max, smax, sizeof smax);
    text_say("%-*s %9" PRIu64 " %7" PRIu64 " %7" PRIu64 " %9" PRIu64 " %7" PRIu64 " %6" PRIu64
             " %6" PRIu64 " %6" PRIu64 " %9s %9s %9s %6" PRIu64 " %6s %s",
             w, name, pr->in.sent, pr->in.dropped, pr->in.aborted,
             pr->in.sender_restarted ? pr->out.delivered : pr->in.delivered, pr->out.lost, pr->gaps,
             pr->in.duplicates, pr->in.reorders, s50, s99, smax, pr->reconnects, migr,
             cluster_pair_verdict_name(pr->out.verdict));
  }
  bool any = false, star = false;
  for (size_t k = 0; k < n; k++)
    star |= pairs[k].in.sender_restarted != 0;
  if (star)
    text_say("* the sender was restarted: \"delivered\" counts what the receiver got from its last "
             "incarnation (dups/reord: every incarnation, as the receiver counted them)");
  for (size_t k = 0; k < n; k++)
    if (pairs[k].note[0]) {
      if (!any) text_say("notes:");
      any = true;
      text_say("  %s->%s%s%s: %s", cl.rep[pairs[k].s].name, cl.rep[pairs[k].r].name,
               pairs[k].cls >= 0 ? "/" : "", pairs[k].cls >= 0 ? cl.o.mix.c[pairs[k].cls].name : "",
               pairs[k].note);
    }
}

static json_t *pairs_json(const cl_pair_t *pairs, size_t n) {
  json_t *arr = json_array();
  for (size_t k = 0; k < n; k++) {
    const cl_pair_t *pr = &pairs[k];
    const cluster_pair_out_t *o = &pr->out;
    json_t *lat =
        json_pack("{s:o, s:o, s:o, s:o, s:o}", "n", jsonx_u64(pr->lat_n), "p50", cl_jnum(pr->p50),
                  "p90", cl_jnum(pr->p90), "p99", cl_jnum(pr->p99), "max", cl_jnum(pr->max));
    json_t *e = json_pack(
        "{s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
        "sender", cl.rep[pr->s].name, "receiver", cl.rep[pr->r].name, "sent",
        jsonx_u64(pr->in.sent), "dropped", jsonx_u64(pr->in.dropped), "aborted",
        jsonx_u64(pr->in.aborted), "delivered", jsonx_u64(pr->in.delivered), "rx_evicted",
        jsonx_u64(pr->in.rx_evicted), "expected", jsonx_u64(o->expected), "lost",
        jsonx_u64(o->lost), "gaps", jsonx_u64(pr->gaps), "duplicates", jsonx_u64(pr->in.duplicates),
        "reorders", jsonx_u64(pr->in.reorders), "latency_us", lat, "reconnects",
        jsonx_u64(pr->reconnects), "lost_breakdown",
        json_pack("{s:o, s:o, s:o, s:o, s:o}", "in_flight", jsonx_u64(o->in_flight), "unwritten",
                  jsonx_u64(o->unwritten), "queued", jsonx_u64(o->queued), "died_with_receiver",
                  jsonx_u64(o->died), "discarded_by_receiver", jsonx_u64(o->rx_discarded)),
        "restart_artifacts", jsonx_u64(o->restart_artifacts), "extra", jsonx_u64(o->extra));
    if (pr->cls >= 0) json_object_set_new(e, "class", json_string(cl.o.mix.c[pr->cls].name));
    json_object_set_new(e, "delivered_current", jsonx_u64(o->delivered));
    json_object_set_new(e, "aborted_arrived", jsonx_u64(o->aborted_arrived));
    json_object_set_new(e, "max_seq", jsonx_u64(pr->max_seq));
    json_object_set_new(e, "sender_restarted", json_boolean(pr->in.sender_restarted));
    json_object_set_new(e, "receiver_killed", json_boolean(pr->in.receiver_killed));
    json_object_set_new(e, "violations",
                        json_pack("{s:o, s:o, s:o}", "duplicates", jsonx_u64(o->duplicates),
                                  "reorders", jsonx_u64(o->reorders), "extra",
                                  jsonx_u64(o->extra)));
    json_object_set_new(e, "link_broken_by_faults", json_boolean(pr->broken));
    json_object_set_new(e, "migration",
                        json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "migrations",
                                  jsonx_u64(pr->migrations), "detached", jsonx_u64(pr->detached),
                                  "resumed", jsonx_u64(pr->resumed), "retransmitted_bytes",
                                  jsonx_u64(pr->retransmitted), "detach_ms_max",
                                  cl_jnum((double)pr->detach_ns_max / 1e6), "aborted_events",
                                  jsonx_u64(pr->ev_aborted)));
    json_object_set_new(
        e, "incarnations",
        json_pack("{s:o, s:o, s:o, s:b, s:o}", "seen_by_receiver", jsonx_u64(pr->rx_incarnations),
                  "switches", jsonx_u64(pr->in.rx_switches), "sender_restarts",
                  jsonx_u64(pr->in.sender_restarts), "split_used", o->split_used != 0,
                  "false_restarts", jsonx_u64(o->false_restarts)));
    json_object_set_new(e, "verdict", json_string(cluster_pair_verdict_name(o->verdict)));
    json_object_set_new(e, "note", json_string(pr->note));
    json_array_append_new(arr, e);
  }
  return arr;
}

typedef struct cl_totals {
  uint64_t delivered, sent, dropped, reconnects;
  double msgs_per_s, p50, p90, p99, max;
} cl_totals_t;

/* Delivered/s over the run and latency over every pair (estimated with
 * cluster_quantile_mix from the pairs' p50/p90/p99/max). */
static void totals_compute(const cl_pair_t *pairs, size_t n, cl_totals_t *t) {
  cluster_qpart_t *parts = calloc(n ? n : 1, sizeof *parts);
  memset(t, 0, sizeof *t);
  t->max = NAN;
  for (size_t k = 0; parts && k < n; k++) {
    const cl_pair_t *pr = &pairs[k];
    t->delivered += pr->in.delivered;
    t->sent += pr->in.sent;
    t->dropped += pr->in.dropped;
    t->reconnects += pr->reconnects;
    parts[k].weight = (double)pr->lat_n;
    cluster_qpart_point(&parts[k], 0.5, pr->p50);
    cluster_qpart_point(&parts[k], 0.9, pr->p90);
    cluster_qpart_point(&parts[k], 0.99, pr->p99);
    cluster_qpart_point(&parts[k], 1.0, pr->max);
    if (!isnan(pr->max) && (isnan(t->max) || pr->max > t->max)) t->max = pr->max;
  }
  double secs = cl.stop_ms > 0 ? cl.stop_ms / 1e3 : cl.o.duration_s;
  t->msgs_per_s = secs > 0 ? (double)t->delivered / secs : 0;
  t->p50 = parts ? cluster_quantile_mix(parts, n, 0.5) : NAN;
  t->p90 = parts ? cluster_quantile_mix(parts, n, 0.9) : NAN;
  t->p99 = parts ? cluster_quantile_mix(parts, n, 0.99) : NAN;
  free(parts);
}

static json_t *config_json(void) {
  json_t *faults = json_array();
  for (size_t i = 0; i < cl.nfaults; i++) {
    char buf[FAULT_FORMAT_MAX];
    cl_fault_text(i, buf, sizeof buf);
    json_array_append_new(faults, json_string(buf));
  }
  json_t *c = json_pack("{s:i, s:i, s:f, s:f, s:i, s:s, s:o, s:I, s:i, s:i, s:i, s:s, s:s}",
                        "replicas", (int)cl.ninit, "slots", (int)cl.nslots, "duration_s",
                        cl.o.duration_s, "rate", cl.o.rate, "size", (int)cl.o.size, "faults",
                        cl.o.faults, "faults_parsed", faults, "seed", (json_int_t)cl.o.seed,
                        "paths", (int)cl.npaths, "stats_ms", (int)cl.o.stats_ms, "drain_ms",
                        (int)cl.o.drain_ms, "replica_bin", cl.replica_bin, "out", cl.out);
  json_object_set_new(c, "netns", json_boolean(cl.o.netns));
  json_object_set_new(c, "direct", json_boolean(cl.o.direct));
  if (cl.o.classes) json_object_set_new(c, "classes", json_string(cl.o.classes));
  json_object_set_new(c, "proxies", json_integer((json_int_t)cl.npx_made));
  if (cl.o.netns) json_object_set_new(c, "netns_prefix", json_string(cl.ns.prefix));
  return c;
}

/* ---------------------------------------------------- resources used */

/* r's CPU from time zero to the stop (every incarnation), in seconds. */
static double usage_cpu(const cl_replica_t *r) {
  const cl_usage_t *u = &r->use;
  if (u->cpu_run_s > 0 || !u->sampled) return u->cpu_run_s;
  return u->cpu_done_s + u->cpu_s - u->cpu_base_s; /* gone before the stop */
}

static double run_secs(void) {
  return cl.stop_ms > 0 ? cl.stop_ms / 1e3 : cl.o.duration_s;
}

static json_t *usage_json(const cl_replica_t *r) {
  const cl_usage_t *u = &r->use;
  if (!u->sampled) return json_null();
  double cpu = usage_cpu(r), secs = run_secs();
  json_t *o = json_pack("{s:o, s:o, s:o, s:o, s:i, s:i, s:i}", "cpu_s", cl_jnum(cpu), "cpu_pct",
                        cl_jnum(secs > 0 ? 100 * cpu / secs : NAN), "rss_kib",
                        jsonx_u64(u->rss_kib), "rss_max_kib", jsonx_u64(u->rss_max_kib), "fds",
                        (int)u->fds, "fds_max", (int)u->fds_max, "threads", (int)u->threads);
  json_object_set_new(o, "rss_anon_kib", jsonx_u64(u->rss_anon_kib));
  return o;
}

typedef struct usage_sum {
  unsigned n;
  double cpu_pct_sum, cpu_pct_max, rss_sum, rss_max, anon_sum, fds_sum, fds_max;
} usage_sum_t;

/* Over the replicas sampled: CPU % of one core from time zero to the stop,
 * RSS and descriptors at the stop (the last sample). */
static void usage_sum(usage_sum_t *s) {
  memset(s, 0, sizeof *s);
  double secs = run_secs();
  for (unsigned i = 0; i < cl.nslots; i++) {
    const cl_replica_t *r = &cl.rep[i];
    if (!r->use.sampled || secs <= 0) continue;
    double pct = 100 * usage_cpu(r) / secs, rss = (double)r->use.rss_kib, fds = r->use.fds;
    s->n++;
    s->cpu_pct_sum += pct;
    s->rss_sum += rss;
    s->anon_sum += (double)r->use.rss_anon_kib;
    s->fds_sum += fds;
    if (pct > s->cpu_pct_max) s->cpu_pct_max = pct;
    if (rss > s->rss_max) s->rss_max = rss;
    if (fds > s->fds_max) s->fds_max = fds;
  }
}

static json_t *usage_summary_json(const usage_sum_t *s) {
  if (!s->n) return json_null();
  json_t *o = json_pack("{s:i, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:i}", "replicas", (int)s->n,
                        "cpu_pct_mean", cl_jnum(s->cpu_pct_sum / s->n), "cpu_pct_max",
                        cl_jnum(s->cpu_pct_max), "cpu_pct_total", cl_jnum(s->cpu_pct_sum),
                        "rss_kib_mean", cl_jnum(s->rss_sum / s->n), "rss_kib_max",
                        cl_jnum(s->rss_max), "fds_mean", cl_jnum(s->fds_sum / s->n), "fds_max",
                        cl_jnum(s->fds_max), "proxies", (int)cl.npx_made);
  json_object_set_new(o, "rss_anon_kib_mean", cl_jnum(s->anon_sum / s->n));
  return o;
}

/* Per replica (16 at most, else the summary only): CPU, RSS, fds. */
static void usage_print(const usage_sum_t *s) {
  if (!s->n) return;
  double secs = run_secs();
  if (cl.nslots <= 16) {
    text_say("\n%-7s %8s %8s %10s %10s %6s %8s", "replica", "cpu s", "cpu %", "rss KiB", "rss max",
             "fds", "threads");
    for (unsigned i = 0; i < cl.nslots; i++) {
      const cl_replica_t *r = &cl.rep[i];
      if (!r->use.sampled) continue;
      text_say("%-7s %8.2f %8.1f %10" PRIu64 " %10" PRIu64 " %6u %8u", r->name, usage_cpu(r),
               100 * usage_cpu(r) / secs, r->use.rss_kib, r->use.rss_max_kib, r->use.fds,
               r->use.threads);
    }
  }
  text_say("\nper replica (%u, from time zero to the stop): CPU mean %.2f%% of a core (max %.2f%%, "
           "all %.0f%%), RSS mean %.1f MiB (max %.1f MiB; anonymous %.1f MiB), descriptors mean "
           "%.0f (max %.0f)",
           s->n, s->cpu_pct_sum / s->n, s->cpu_pct_max, s->cpu_pct_sum, s->rss_sum / s->n / 1024,
           s->rss_max / 1024, s->anon_sum / s->n / 1024, s->fds_sum / s->n, s->fds_max);
}

static json_t *replicas_json(void) {
  json_t *o = json_object();
  for (unsigned i = 0; i < cl.nslots; i++) {
    cl_replica_t *r = &cl.rep[i];
    json_t *ports = json_array();
    for (unsigned p = 0; p < cl.npaths; p++)
      json_array_append_new(ports, json_integer(r->port[p]));
    json_t *e =
        json_pack("{s:s, s:o, s:b, s:b, s:i, s:i, s:i, s:O, s:s, s:s}", "peer_id", r->peer_id,
                  "ports", ports, "started", r->ever_started, "member_at_end", cl.member[i],
                  "incarnations", r->incarnations, "kills", r->kills, "restarts", r->restarts,
                  "exits", r->exits, "log", r->log_path, "report_file", r->report_path);
    json_t *pb = json_array();
    for (unsigned p = 0; p < cl.npaths; p++)
      json_array_append_new(pb, jsonx_u64(r->path_bytes[p]));
    json_object_set_new(e, "path_bytes", pb);
    json_object_set_new(e, "process", usage_json(r));
    json_object_set(e, "report", r->report ? r->report : json_null());
    json_object_set_new(o, r->name, e);
  }
  return o;
}

/* --------------------------------------------------------------- final */

static void totals_print(size_t np, const cluster_summary_t *sum, const cl_totals_t *tot) {
  char s50[24], s90[24], s99[24], smax[24];
  cluster_fmt_us(tot->p50, s50, sizeof s50);
  cluster_fmt_us(tot->p90, s90, sizeof s90);
  cluster_fmt_us(tot->p99, s99, sizeof s99);
  cluster_fmt_us(tot->max, smax, sizeof smax);
  text_say("\n%zu pairs: %" PRIu64 " ok, %" PRIu64 " lost, %" PRIu64 " violated, %" PRIu64
           " unverifiable",
           np, sum->ok, sum->lost_pairs, sum->violated, sum->unverifiable);
  text_say("delivered %" PRIu64 " messages in %.1f s: %.0f msgs/s across the cluster; latency "
           "p50 %s, p90 %s, p99 %s (estimated over all pairs), max %s",
           tot->delivered, (cl.stop_ms > 0 ? cl.stop_ms : cl.o.duration_s * 1e3) / 1e3,
           tot->msgs_per_s, s50, s90, s99, smax);
}

static json_t *summary_json(const cl_pair_t *pairs, size_t np, const cluster_summary_t *sum,
                            const cl_totals_t *tot) {
  json_t *summary = json_pack(
      "{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "pairs",
      jsonx_u64(np), "ok", jsonx_u64(sum->ok), "lost_pairs", jsonx_u64(sum->lost_pairs), "violated",
      jsonx_u64(sum->violated), "unverifiable", jsonx_u64(sum->unverifiable), "lost_in_flight",
      jsonx_u64(sum->lost_expected), "lost_unexplained", jsonx_u64(sum->lost_unexpected),
      "duplicates", jsonx_u64(sum->duplicates), "reorders", jsonx_u64(sum->reorders), "delivered",
      jsonx_u64(tot->delivered), "msgs_per_s", cl_jnum(tot->msgs_per_s), "p50_us",
      cl_jnum(tot->p50), "p90_us", cl_jnum(tot->p90), "p99_us", cl_jnum(tot->p99), "max_us",
      cl_jnum(tot->max));
  uint64_t migr = 0, detached = 0, resumed = 0, aborted = 0;
  for (size_t k = 0; k < np; k++) {
    migr += pairs[k].migrations;
    detached += pairs[k].detached;
    resumed += pairs[k].resumed;
    aborted += pairs[k].in.aborted;
  }
  json_object_set_new(summary, "false_restarts", jsonx_u64(sum->false_restarts));
  json_object_set_new(summary, "aborted", jsonx_u64(aborted));
  json_object_set_new(summary, "migrations", jsonx_u64(migr));
  json_object_set_new(summary, "detached", jsonx_u64(detached));
  json_object_set_new(summary, "resumed", jsonx_u64(resumed));
  return summary;
}

int report_finish(void) {
  cluster_summary_t sum = {0};
  size_t np = 0;
  cl_pair_t *pairs = pairs_build(&np, &sum);
  if (!pairs) return cl_warn("out of memory"), 3;
  table_print(pairs, np);
  cl_totals_t tot;
  totals_compute(pairs, np, &tot);
  char verdict[512];
  int ok = cluster_verdict_format(&sum, verdict, sizeof verdict);
  totals_print(np, &sum, &tot);
  json_t *csum = classes_summary(pairs, np); /* --classes; else NULL */
  usage_sum_t use;
  usage_sum(&use);
  usage_print(&use);

  char png[CL_PATH], csv[CL_PATH], rep[CL_PATH];
  const char *plot = cl.o.no_plot ? NULL : plot_make(png, sizeof png);
  cl_path_fmt(csv, sizeof csv, "%s/timeseries.csv", cl.out);
  cl_path_fmt(rep, sizeof rep, "%s/report.json", cl.out);
  json_t *files = json_pack("{s:s, s:s, s:o}", "report", rep, "timeseries", csv, "plot",
                            plot ? json_string(plot) : json_null());
  json_t *summary = summary_json(pairs, np, &sum, &tot);
  json_object_set_new(summary, "process", usage_summary_json(&use));
  if (csum) json_object_set_new(summary, "classes", csum);
  json_t *doc =
      json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:s, s:s}", "schema",
                "bftnet-cluster-report/1", "config", config_json(), "replicas", replicas_json(),
                "pairs", pairs_json(pairs, np), "events", json_incref(cl.events), "summary",
                summary, "files", files, "integrity", ok ? "ok" : "FAILED", "verdict", verdict);
  int rc = jsonx_write_atomic(doc, rep, JSON_INDENT(2) | JSON_REAL_PRECISION(12));
  json_decref(doc);
  free(pairs);
  if (rc) cl_warn("%s: %s", rep, strerror(-rc));
  text_say("\nreport:      %s", rep);
  text_say("time series: %s", csv);
  if (plot) text_say("plot:        %s", plot);
  text_say("replica logs and reports: %s/replicas/", cl.out);
  text_say("%s", verdict);
  if (rc) return 3;
  return ok ? 0 : 1;
}
