/* lines.c — what the replicas print on stdout, one JSON object per line
 * (docs/REPORT.md), and the progress line and CSV rows made from it. */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

static void series_add(cl_replica_t *r, double t, double rate, double p50, double p99, int inc) {
  if (r->nseries == r->cap_series) {
    if (r->cap_series >= CL_SERIES_MAX) return;
    size_t cap = r->cap_series ? r->cap_series * 2 : 256;
    cl_point_t *p = realloc(r->series, cap * sizeof *p);
    if (!p) return;
    r->series = p;
    r->cap_series = cap;
  }
  r->series[r->nseries++] = (cl_point_t){t, rate, p50, p99, inc};
}

static void csv_write(double t_ms, const char *name, double rate, double p50, double p99,
                      uint64_t drops, uint64_t rec, int64_t migr) {
  if (!cl.csv) return;
  char row[512];
  cluster_csv_row(row, sizeof row, (int64_t)llround(t_ms), name, rate, p50, p99, drops, rec, migr);
  fprintf(cl.csv, "%s\n", row);
}

static void on_stats_line(cl_inc_t *inc, json_t *j) {
  cl_replica_t *r = inc->r;
  json_t *tot = json_object_get(j, "total");
  if (!json_is_object(tot)) return;
  double t = cl_now_ms();
  json_decref(r->last_stats);
  r->last_stats = json_incref(j);
  r->last_stats_ms = t;
  r->last_stats_inc = inc->id;
  r->cur_drops = cl_ju(tot, "dropped");
  r->cur_reconnects = cl_ju(tot, "reconnects");
  r->cur_migrations = json_object_get(tot, "migrations") ? (int64_t)cl_ju(tot, "migrations") : -1;
  if (!cl.t0_set) return;
  double rate = cl_jd(tot, "delivered_per_s"), ims = cl_jd(j, "interval_ms");
  if (cl.o.mix.n) classes_on_stats(r, tot, ims);
  double p50 = cl_jd(tot, "p50_us"), p99 = cl_jd(tot, "p99_us");
  if (isnan(rate)) rate = 0;
  if (!isnan(ims) && ims > 0) {
    double n = rate * ims / 1000.0;
    r->win_delivered += n;
    r->win_ms += ims;
    if (r->win_n < CL_WIN_PARTS && n > 0) {
      cluster_qpart_t *q = &r->win_parts[r->win_n++];
      memset(q, 0, sizeof *q);
      q->weight = n;
      cluster_qpart_point(q, 0.5, p50);
      cluster_qpart_point(q, 0.99, p99);
    }
  }
  int64_t migr = r->cur_migrations < 0 ? -1 : r->cur_migrations;
  csv_write(t, r->name, rate, p50, p99, r->cur_drops, r->cur_reconnects, migr);
  /* Plotted at the middle of the interval the line covers. */
  series_add(r, (t - (isnan(ims) ? 0 : ims / 2)) / 1e3, rate, p50, p99, inc->id);
}

/* The strings of a JSON array, space-separated, cut at len. */
static void json_list(const json_t *arr, char *buf, size_t len) {
  text_buf_t b;
  text_buf_init(&b, buf, len);
  size_t i;
  json_t *v;
  json_array_foreach(arr, i, v) {
    text_sep(&b, " ");
    text_addf(&b, "%s", json_string_value(v));
  }
}

static void on_membership_line(cl_inc_t *inc, json_t *j) {
  cl_replica_t *r = inc->r;
  bool ok = json_is_true(json_object_get(j, "ok"));
  if (!ok) {
    const char *err = json_string_value(json_object_get(j, "error"));
    cl_event("replica", -1, "membership", "%s: membership NOT applied: %s", r->name,
             err ? err : "?");
    return;
  }
  if (!inc->loaded) {
    inc->loaded = true;
    if (r->n_loaded < CL_MAX_INCS) r->loaded_ms[r->n_loaded] = cl.t0_set ? cl_now_ms() : -1;
    r->n_loaded++;
    cl.hooks.loaded(inc, cl_ju(j, "members"));
    return;
  }
  char add[256], rm[256];
  json_list(json_object_get(j, "added"), add, sizeof add);
  json_list(json_object_get(j, "removed"), rm, sizeof rm);
  cl_event("replica", -1, "membership",
           "%s reloaded its membership: %" PRIu64 " members, added [%s], removed [%s]", r->name,
           cl_ju(j, "members"), add, rm);
}

static void on_listen_line(cl_inc_t *inc, json_t *j) {
  cl_replica_t *r = inc->r;
  inc->listening = true;
  const char *peer = json_string_value(json_object_get(j, "peer_id"));
  if (!peer || strcmp(peer, r->peer_id) != 0)
    cl_warn("%s: listens as peer %s, its key says %s", r->name, peer ? peer : "?", r->peer_id);
  if (json_array_size(json_object_get(j, "addrs")) != cl.npaths)
    cl_warn("%s: listens on %zu addresses, want %u", r->name,
            json_array_size(json_object_get(j, "addrs")), cl.npaths);
}

/* A replica's "event" line (bftnet-replica prints the rare migration
 * events: a peer restarted, a stream aborted, a migration denied). */
static void on_event_line(cl_inc_t *inc, json_t *j) {
  cl_replica_t *r = inc->r;
  const char *ev = json_string_value(json_object_get(j, "event"));
  const char *peer = json_string_value(json_object_get(j, "peer"));
  if (!ev) return;
  if (!peer || !peer[0]) peer = "an unknown peer";
  if (strcmp(ev, "peer_restarted") == 0) {
    cl_event("replica", -1, ev, "%s: %s runs a new process (bftnet: peer restarted)", r->name,
             peer);
  } else if (strcmp(ev, "aborted") == 0) {
    const char *why = json_string_value(json_object_get(j, "why"));
    if (!why || !why[0]) why = "?";
    /* The replicas stopping close their streams: recorded, summed up once. */
    cl.quiet = cl.phase >= PH_STOPPING && cl_ju(j, "lost") == 0;
    cl.stop_aborts += cl.quiet;
    if (json_is_true(json_object_get(j, "outbound")))
      cl_event("replica", -1, ev, "%s: its stream to %s aborted (%s): %" PRIu64 " messages lost",
               r->name, peer, why, cl_ju(j, "lost"));
    else
      cl_event("replica", -1, ev, "%s: the stream from %s aborted (%s)", r->name, peer, why);
    cl.quiet = false;
  } else if (strcmp(ev, "denied") == 0) {
    cl_event("replica", -1, ev, "%s: %s denied its Migrate", r->name, peer);
  } else if (strcmp(ev, "member_unreachable") == 0 || strcmp(ev, "member_wrong_peer") == 0) {
    /* Replicas starting or stopping race each other's listeners: recorded,
     * printed only while the cluster runs. */
    const char *err = json_string_value(json_object_get(j, "error"));
    cl.quiet = cl.phase != PH_RUNNING;
    cl_event("replica", -1, ev, "%s: cannot reach %s at %s (%s)", r->name, peer,
             json_string_value(json_object_get(j, "addr"))
                 ? json_string_value(json_object_get(j, "addr"))
                 : "?",
             err ? err : "?");
    cl.quiet = false;
  } else {
    cl_event("replica", -1, ev, "%s: %s: %s", r->name, peer, ev);
  }
}

static void inc_line(cl_inc_t *inc, const char *line, size_t len) {
  cl_replica_t *r = inc->r;
  if (r->lines) {
    fwrite(line, 1, len, r->lines);
    fputc('\n', r->lines);
  }
  json_error_t je;
  json_t *j = json_loadb(line, len, 0, &je);
  const char *type = json_string_value(json_object_get(j, "type"));
  if (!type) {
    if (len) cl_warn("%s: stdout: not a JSON line: %.80s", r->name, line);
  } else if (strcmp(type, "stats") == 0) {
    on_stats_line(inc, j);
  } else if (strcmp(type, "membership") == 0) {
    on_membership_line(inc, j);
  } else if (strcmp(type, "listen") == 0) {
    on_listen_line(inc, j);
  } else if (strcmp(type, "event") == 0) {
    on_event_line(inc, j);
  } /* other types: skipped, as docs/REPORT.md asks */
  json_decref(j);
}

void lines_feed(cl_inc_t *inc, const char *p, size_t n) {
  while (n) {
    const char *nl = memchr(p, '\n', n);
    size_t take = nl ? (size_t)(nl - p) : n;
    if (!inc->overflow && inc->len + take + 1 > CL_LINE_MAX) inc->overflow = true;
    if (!inc->overflow && inc->len + take + 1 > inc->cap) {
      size_t cap = (inc->len + take + 1) * 2;
      if (cap > CL_LINE_MAX) cap = CL_LINE_MAX;
      char *b = realloc(inc->buf, cap);
      if (!b)
        inc->overflow = true;
      else
        inc->buf = b, inc->cap = cap;
    }
    if (!inc->overflow) {
      memcpy(inc->buf + inc->len, p, take);
      inc->len += take;
    }
    if (nl) {
      if (inc->overflow)
        cl_warn("%s: stdout line over %u bytes skipped", inc->r->name, CL_LINE_MAX);
      else if (inc->len)
        inc->buf[inc->len] = '\0', inc_line(inc, inc->buf, inc->len);
      inc->len = 0;
      inc->overflow = false;
      take++;
    }
    p += take;
    n -= take;
  }
}

void lines_flush(cl_inc_t *inc) {
  if (inc->len && !inc->overflow) {
    inc->buf[inc->len] = '\0';
    inc_line(inc, inc->buf, inc->len);
    inc->len = 0;
  }
}

/* ------------------------------------------------------------ progress */

void lines_tick(uv_timer_t *t) {
  (void)t;
  double now = cl_now_ms(), rate = 0;
  cluster_qpart_t parts[CL_MAX_SLOTS * CL_WIN_PARTS];
  size_t np = 0;
  uint64_t drops = 0, rec = 0;
  int64_t migr = -1;
  int up = 0, started = 0;
  for (unsigned i = 0; i < cl.nslots; i++) {
    cl_replica_t *r = &cl.rep[i];
    if (r->win_ms > 0) rate += r->win_delivered * 1000.0 / r->win_ms;
    for (size_t k = 0; k < r->win_n; k++)
      parts[np++] = r->win_parts[k];
    r->win_delivered = r->win_ms = 0;
    r->win_n = 0;
    drops += r->old_drops + r->cur_drops;
    rec += r->old_reconnects + r->cur_reconnects;
    int64_t m = (r->old_migrations < 0 ? 0 : r->old_migrations) +
                (r->cur_migrations < 0 ? 0 : r->cur_migrations);
    if (r->old_migrations >= 0 || r->cur_migrations >= 0) migr = (migr < 0 ? 0 : migr) + m;
    if (r->ever_started) started++;
    if (r->inc && r->inc->listening && !r->inc->exited) up++;
  }
  double p50 = cluster_quantile_mix(parts, np, 0.5), p99 = cluster_quantile_mix(parts, np, 0.99);
  char s50[32], s99[32], sm[32] = "-";
  cluster_fmt_us(p50, s50, sizeof s50);
  cluster_fmt_us(p99, s99, sizeof s99);
  if (migr >= 0) snprintf(sm, sizeof sm, "%" PRId64, migr);
  char cls[CL_LINE_CLASSES] = "";
  text_buf_t cb;
  text_buf_init(&cb, cls, sizeof cls);
  classes_tick(now, &cb); /* --classes: a line per class */
  text_say("[%7.2fs] %9.0f msgs/s  p50 %9s  p99 %9s  drops %" PRIu64 "  reconnects %" PRIu64
           "  migrations %s  up %d/%d%s%s",
           now / 1e3, rate, s50, s99, drops, rec, sm, up, started,
           cl.phase == PH_STOPPING ? "  (draining)" : "", cls);
  csv_write(now, "all", rate, p50, p99, drops, rec, migr);
}
