/* lines.c — the JSON lines on stdout (listen, membership, stats, event,
 * report): printing them whole, the pieces they share, the stats line. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "replica.h"

/* One JSON object per stdout line, flushed: the cluster reads a pipe. The
 * main thread and the loop thread (event lines) both print: the lock keeps
 * lines whole. */
void lines_emit(json_t *obj) {
  char *s = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(12));
  json_decref(obj);
  if (!s) return;
  flockfile(stdout);
  fputs(s, stdout);
  fputc('\n', stdout);
  fflush(stdout);
  funlockfile(stdout);
  free(s);
}

/* ns -> µs with one decimal. */
static json_t *j_us(uint64_t ns) {
  return json_real(round((double)ns / 100.0) / 10.0);
}

static json_t *j_rate(uint64_t n, uint64_t interval_ns) {
  double r = interval_ns ? (double)n * 1e9 / (double)interval_ns : 0.0;
  return json_real(round(r * 10.0) / 10.0);
}

static json_t *j_pct(const stats_lat_t *l, double p) {
  return stats_lat_count(l) ? j_us(stats_lat_percentile(l, p)) : json_null();
}

json_t *lines_latency(const stats_lat_t *l) {
  bool any = stats_lat_count(l) != 0;
  return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "n", jsonx_u64(stats_lat_count(l)), "p50",
                   j_pct(l, 50), "p90", j_pct(l, 90), "p99", j_pct(l, 99), "max",
                   any ? j_us(stats_lat_max(l)) : json_null(), "mean",
                   any ? json_real(round(stats_lat_mean(l) / 100.0) / 10.0) : json_null());
}

/* The node counters a stats line carries (the report carries all). */
static const bftnet_counter_id_t line_counters[] = {
    BFTNET_COUNTER_CONN_ESTABLISHED, BFTNET_COUNTER_CONN_CLOSED, BFTNET_COUNTER_DIAL_FAILED,
    BFTNET_COUNTER_PING_TIMEOUT,     BFTNET_COUNTER_IO_ERRORS,   BFTNET_COUNTER_BAD_MESSAGE,
    BFTNET_COUNTER_BYTES_IN,         BFTNET_COUNTER_BYTES_OUT,   BFTNET_COUNTER_TENTATIVE_EVICTED,
    BFTNET_COUNTER_TENTATIVE_BYTES,
};

json_t *lines_counters(bool all) {
  json_t *o = json_object();
  size_t n = all ? BFTNET_COUNTER_COUNT : sizeof line_counters / sizeof *line_counters;
  for (size_t i = 0; i < n; i++) {
    bftnet_counter_id_t id = all ? (bftnet_counter_id_t)i : line_counters[i];
    json_object_set_new(o, bftnet_counter_name(id), jsonx_u64(bftnet_counter(rp.net, id)));
  }
  return o;
}

/* The event counters of a row: {"migrated": n, ..., "aborted_lost": n}. */
json_t *lines_events(const uint64_t ev[RP_EV_N], uint64_t aborted_lost) {
  json_t *o = json_object();
  for (int k = 0; k < RP_EV_N; k++)
    json_object_set_new(o, rp_ev_names[k], jsonx_u64(ev[k]));
  json_object_set_new(o, "aborted_lost", jsonx_u64(aborted_lost));
  return o;
}

/* ---------------------------------------------------------- stats line */

/* Adds named fields in order: lines_put_u64s(o, "a", x, "b", y, (const char *)NULL);
 * every value must be a uint64_t (varargs: nothing converts it). */
void lines_put_u64s(json_t *o, ...) {
  va_list ap;
  va_start(ap, o);
  for (const char *k; (k = va_arg(ap, const char *)) != NULL;)
    json_object_set_new(o, k, jsonx_u64(va_arg(ap, uint64_t)));
  va_end(ap);
}

static json_t *line_row(const rp_row_t *r, uint64_t d_sent, uint64_t d_deliv, uint64_t dt,
                        const stats_lat_t *tick) {
  json_t *o = json_object();
  lines_put_u64s(o, "sent", r->sent, "delivered", r->delivered, "dropped",
                 r->dropped_overflow + r->dropped_removed, (const char *)NULL);
  json_object_set_new(o, "sent_per_s", j_rate(d_sent, dt));
  json_object_set_new(o, "delivered_per_s", j_rate(d_deliv, dt));
  json_object_set_new(o, "p50_us", j_pct(tick, 50));
  json_object_set_new(o, "p99_us", j_pct(tick, 99));
  lines_put_u64s(o, "reconnects", r->reconnects, "ring_depth", r->ring_depth, "connected",
                 r->connected, "gaps", r->recv.gaps, "duplicates", r->recv.duplicates, "reorders",
                 r->recv.reorders, "foreign", r->foreign, "aborted", r->aborted, "migrations",
                 r->migrations, "detached", r->detached, "resumed", r->resumed, "peer_restarts",
                 r->peer_restarts, "incarnations", r->recv.incarnations, "unconfirmed_bytes",
                 r->unconfirmed_bytes, (const char *)NULL);
  return o;
}

/* --classes: a stats line's classes of p (by name), each tick's latency
 * merged into the classes' totals. */
static json_t *line_classes(rp_peer_t *p) {
  json_t *o = json_object();
  for (size_t k = 0; k < rp.o.mix.n; k++) {
    rp_crow_t c;
    classes_row(p, k, &c);
    rp_cls_t *x = &p->cls[k];
    json_t *j = json_object();
    lines_put_u64s(j, "sent", c.sent, "delivered", c.delivered, "dropped", c.dropped, "aborted",
                   c.aborted, "ring_depth", c.ring_depth, "gaps", c.recv.gaps, "duplicates",
                   c.recv.duplicates, "reorders", c.recv.reorders, "max_seq", c.recv.max_seq,
                   "rx_evicted", c.recv.rx_evicted, (const char *)NULL);
    json_object_set_new(j, "p50_us", j_pct(&x->lat_tick, 50));
    json_object_set_new(j, "p99_us", j_pct(&x->lat_tick, 99));
    json_object_set_new(o, rp.o.mix.c[k].name, j);
    rp.cls_tot[k].delivered += c.delivered - x->tick_delivered;
    rp.cls_tot[k].dropped += c.dropped;
    x->tick_delivered = c.delivered;
    stats_lat_merge(&rp.cls_lat[k], &x->lat_tick);
    stats_lat_reset(&x->lat_tick);
  }
  return o;
}

void lines_class_totals(json_t *o, size_t k) {
  bftnet_class_totals_t t;
  if (bftnet_class_totals(rp.net, (uint8_t)k, &t) != 0) return;
  lines_put_u64s(o, "discarded_removed", t.discarded_removed, "tentative_evicted",
                 t.tentative_evicted, (const char *)NULL);
}

/* The classes' totals of a stats line: delivered in the interval, drops
 * so far, the interval's latency; what bftnet lost on receipt so far. */
static json_t *line_class_totals(uint64_t dt) {
  json_t *o = json_object();
  for (size_t k = 0; k < rp.o.mix.n; k++) {
    json_t *j = json_object();
    json_object_set_new(j, "delivered_per_s", j_rate(rp.cls_tot[k].delivered, dt));
    lines_put_u64s(j, "dropped", rp.cls_tot[k].dropped, (const char *)NULL);
    json_object_set_new(j, "p50_us", j_pct(&rp.cls_lat[k], 50));
    json_object_set_new(j, "p99_us", j_pct(&rp.cls_lat[k], 99));
    lines_class_totals(j, k);
    json_object_set_new(o, rp.o.mix.c[k].name, j);
  }
  return o;
}

/* What a stats line gathers from the peers' rows. */
typedef struct tick {
  uint64_t dt, sent, delivered; /* the interval; what it sent and delivered */
  json_t *peers;
} tick_t;

static void tick_peer(rp_peer_t *p, const rp_row_t *r, void *ud) {
  tick_t *t = ud;
  uint64_t ds = r->sent - p->tick_sent, dd = r->delivered - p->tick_delivered;
  p->tick_sent = r->sent;
  p->tick_delivered = r->delivered;
  json_t *o = line_row(r, ds, dd, t->dt, &p->lat_tick);
  json_object_set_new(o, "member", json_boolean(p->member));
  if (p->cls) json_object_set_new(o, "classes", line_classes(p));
  json_object_set_new(t->peers, p->id, o);
  t->sent += ds;
  t->delivered += dd;
  stats_lat_merge(&rp.totals_lat, &p->lat_tick);
  stats_lat_reset(&p->lat_tick);
}

void lines_stats(void) {
  uint64_t now = rp_now_ns();
  tick_t t = {.dt = now - rp.last_tick_ns, .peers = json_object()};
  rp.last_tick_ns = now;
  peers_refresh_all();
  rp_row_t tot;
  stats_lat_reset(&rp.totals_lat);
  for (size_t k = 0; k < rp.o.mix.n; k++) {
    stats_lat_reset(&rp.cls_lat[k]);
    rp.cls_tot[k] = (rp_crow_t){0};
  }
  peers_rows(tick_peer, &t, &tot);
  json_t *line = json_pack("{s:s, s:s, s:o, s:s, s:o}", "type", "stats", "id", rp.o.id, "t_ms",
                           jsonx_u64(rp_ms_since_start()), "phase", rp.phase, "interval_ms",
                           jsonx_u64(t.dt / NS_PER_MS));
  json_object_set_new(line, "total", line_row(&tot, t.sent, t.delivered, t.dt, &rp.totals_lat));
  if (rp.o.mix.n)
    json_object_set_new(json_object_get(line, "total"), "classes", line_class_totals(t.dt));
  json_object_set_new(line, "peers", t.peers);
  json_object_set_new(line, "counters", lines_counters(false));
  lines_emit(line);
}
