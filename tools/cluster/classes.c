/* classes.c — --classes: every pair is cross-checked per class (a class
 * has its own sequence numbers, drops and aborts: bftnet-replica reports
 * each class of a peer as it reports a peer, under "classes"); here the
 * rows per class, the per-class summary, and each class's cluster-wide
 * throughput and latency per progress tick (live line and plot). */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

const json_t *classes_row(const json_t *row, int cls) {
  if (!row || cls < 0) return row;
  return json_object_get(json_object_get(row, "classes"), cl.o.mix.c[cls].name);
}

void classes_on_stats(cl_replica_t *r, const json_t *total, double interval_ms) {
  const json_t *cs = json_object_get(total, "classes");
  if (isnan(interval_ms) || interval_ms <= 0) return;
  for (size_t k = 0; k < cl.o.mix.n; k++) {
    const json_t *c = json_object_get(cs, cl.o.mix.c[k].name);
    double rate = cl_jd(c, "delivered_per_s"), n = isnan(rate) ? 0 : rate * interval_ms / 1e3;
    r->cwin_msgs[k] += n;
    r->cwin_ms[k] += interval_ms;
    if (r->cwin_n[k] == CL_WIN_PARTS || n <= 0) continue;
    cluster_qpart_t *q = &r->cwin[k][r->cwin_n[k]++];
    memset(q, 0, sizeof *q);
    q->weight = n;
    cluster_qpart_point(q, 0.5, cl_jd(c, "p50_us"));
    cluster_qpart_point(q, 0.99, cl_jd(c, "p99_us"));
  }
}

/* Room for one more point in every class's series. */
static bool cseries_room(void) {
  if (cl.ncseries < cl.cap_cseries) return true;
  if (cl.cap_cseries >= CL_SERIES_MAX) return false;
  size_t cap = cl.cap_cseries ? cl.cap_cseries * 2 : 256;
  for (size_t j = 0; j < cl.o.mix.n; j++) {
    cl_cpoint_t *p = realloc(cl.cseries[j], cap * sizeof *p);
    if (!p) return false; /* the ones grown already stay larger: harmless */
    cl.cseries[j] = p;
  }
  cl.cap_cseries = cap;
  return true;
}

void classes_tick(double now_ms, text_buf_t *line) {
  if (!cl.o.mix.n) return;
  static cluster_qpart_t parts[CL_MAX_SLOTS * CL_WIN_PARTS];
  bool room = cseries_room();
  for (size_t k = 0; k < cl.o.mix.n; k++) {
    size_t np = 0;
    double rate = 0;
    for (unsigned i = 0; i < cl.nslots; i++) {
      cl_replica_t *r = &cl.rep[i];
      for (size_t j = 0; j < r->cwin_n[k]; j++)
        parts[np++] = r->cwin[k][j];
      if (r->cwin_ms[k] > 0) rate += r->cwin_msgs[k] * 1000.0 / r->cwin_ms[k];
      r->cwin_n[k] = 0;
      r->cwin_msgs[k] = r->cwin_ms[k] = 0;
    }
    double p50 = cluster_quantile_mix(parts, np, 0.5), p99 = cluster_quantile_mix(parts, np, 0.99);
    char s50[24], s99[24];
    cluster_fmt_us(p50, s50, sizeof s50);
    cluster_fmt_us(p99, s99, sizeof s99);
    text_addf(line, "\n           %-8s %9.0f msgs/s  p50 %9s  p99 %9s", cl.o.mix.c[k].name, rate,
              s50, s99);
    if (room) cl.cseries[k][cl.ncseries] = (cl_cpoint_t){now_ms / 1e3, rate, p50, p99};
  }
  cl.ncseries += room;
}

/* ------------------------------------------------------------- summary */

typedef struct csum {
  uint64_t pairs, ok, sent, delivered, dropped, aborted, lost, dups, reorders;
  cluster_qpart_t *parts;
  size_t np;
} csum_t;

static void csum_add(csum_t *c, const cl_pair_t *pr) {
  c->pairs++;
  c->ok += pr->out.verdict == CLUSTER_PAIR_OK;
  c->sent += pr->in.sent;
  c->delivered += pr->in.delivered;
  c->dropped += pr->in.dropped;
  c->aborted += pr->in.aborted;
  c->lost += pr->out.lost;
  c->dups += pr->out.duplicates;
  c->reorders += pr->out.reorders;
  cluster_qpart_t *q = &c->parts[c->np++];
  q->weight = (double)pr->lat_n;
  cluster_qpart_point(q, 0.5, pr->p50);
  cluster_qpart_point(q, 0.9, pr->p90);
  cluster_qpart_point(q, 0.99, pr->p99);
  cluster_qpart_point(q, 1.0, pr->max);
}

/* One class's line of the summary, and its JSON. */
static json_t *csum_report(size_t k, const csum_t *c) {
  double p50 = cluster_quantile_mix(c->parts, c->np, 0.5);
  double p99 = cluster_quantile_mix(c->parts, c->np, 0.99);
  char s50[24], s99[24];
  cluster_fmt_us(p50, s50, sizeof s50);
  cluster_fmt_us(p99, s99, sizeof s99);
  const char *integ = c->pairs && c->ok == c->pairs ? "ok" : "FAILED";
  text_say("%-10s %9s %9s %10" PRIu64 " %10" PRIu64 " %9" PRIu64 " %8" PRIu64 " %7" PRIu64
           " %5" PRIu64 "/%-5" PRIu64 " %s",
           cl.o.mix.c[k].name, s50, s99, c->sent, c->delivered, c->dropped, c->aborted, c->lost,
           c->ok, c->pairs, integ);
  json_t *o = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:s}", "pairs",
                        jsonx_u64(c->pairs), "ok", jsonx_u64(c->ok), "sent", jsonx_u64(c->sent),
                        "delivered", jsonx_u64(c->delivered), "dropped", jsonx_u64(c->dropped),
                        "aborted", jsonx_u64(c->aborted), "lost", jsonx_u64(c->lost), "duplicates",
                        jsonx_u64(c->dups), "reorders", jsonx_u64(c->reorders), "p50_us",
                        cl_jnum(p50), "p99_us", cl_jnum(p99), "integrity", integ);
  return o;
}

json_t *classes_summary(const cl_pair_t *pairs, size_t n) {
  if (!cl.o.mix.n) return NULL;
  json_t *o = json_object();
  text_say("\nper class (every pair cross-checked per class; latency estimated over the pairs):");
  text_say("%-10s %9s %9s %10s %10s %9s %8s %7s %11s %s", "class", "p50", "p99", "sent",
           "delivered", "dropped", "aborted", "lost", "pairs ok", "integrity");
  for (size_t k = 0; k < cl.o.mix.n; k++) {
    csum_t c = {.parts = calloc(n ? n : 1, sizeof *c.parts)};
    if (!c.parts) break;
    for (size_t i = 0; i < n; i++)
      if (pairs[i].cls == (int)k) csum_add(&c, &pairs[i]);
    json_object_set_new(o, cl.o.mix.c[k].name, csum_report(k, &c));
    free(c.parts);
  }
  return o;
}

int classes_plot_data(const char *path) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  for (size_t k = 0; k < cl.o.mix.n; k++) {
    fprintf(f, "# %s\n", cl.o.mix.c[k].name);
    for (size_t i = 0; i < cl.ncseries && cl.cseries[k]; i++) {
      const cl_cpoint_t *p = &cl.cseries[k][i];
      if (isnan(p->p99))
        fprintf(f, "%.3f %.1f NaN NaN\n", p->t, p->rate);
      else
        fprintf(f, "%.3f %.1f %.1f %.1f\n", p->t, p->rate, isnan(p->p50) ? 0 : p->p50, p->p99);
    }
    fputs("\n\n", f);
  }
  fclose(f);
  return 0;
}
