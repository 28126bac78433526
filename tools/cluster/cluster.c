/* cluster.c — the cluster's state and the helpers every file uses. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cluster.h"

struct cl cl = {.m_wait = -1};

void cl_warn(const char *fmt, ...) {
  va_list ap;
  fflush(stdout);
  fputs("bftnet-cluster: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

/* ms since time zero (since the start of the program before it). */
double cl_now_ms(void) {
  return (double)(int64_t)(uv_hrtime() - cl.t0_ns) / 1e6;
}

json_t *cl_jnum(double v) {
  return isnan(v) ? json_null() : json_real(round(v * 10.0) / 10.0);
}

uint64_t cl_ju(const json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  if (json_is_integer(v)) return json_integer_value(v) < 0 ? 0 : (uint64_t)json_integer_value(v);
  if (json_is_real(v)) return json_real_value(v) < 0 ? 0 : (uint64_t)json_real_value(v);
  return 0;
}

double cl_jd(const json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  return json_is_number(v) ? json_number_value(v) : NAN;
}

int cl_path_fmt(char *dst, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(dst, cap, fmt, ap);
  va_end(ap);
  return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

void cl_fault_text(size_t fi, char *buf, size_t len) {
  fault_format(&cl.faults[fi], buf, len);
}

/* What a fault acts on, for humans: "all links", "r1-r2", "r3", "+r4 -r1". */
void cl_fault_target(const fault_t *f, char *buf, size_t len) {
  if (f->kind == FAULT_MEMBERS) {
    char a[16] = "", r[16] = "";
    if (f->add != FAULT_NONE) snprintf(a, sizeof a, "+r%d", f->add);
    if (f->remove != FAULT_NONE) snprintf(r, sizeof r, "-r%d", f->remove);
    snprintf(buf, len, "%s%s%s", a, a[0] && r[0] ? " " : "", r);
    return;
  }
  switch (f->scope.kind) {
  case FAULT_SCOPE_ALL:
    snprintf(buf, len, "all links");
    break;
  case FAULT_SCOPE_LINK:
    snprintf(buf, len, "r%d-r%d", f->scope.a, f->scope.b);
    break;
  case FAULT_SCOPE_REPLICA:
    snprintf(buf, len, "r%d", f->scope.a);
    break;
  }
}

/*
 * Records an event: printed as a live line and kept for report.json (and,
 * for faults, the plot). fault < 0: not a fault action.
 */
void cl_event(const char *kind, int fault, const char *action, const char *fmt, ...) {
  char detail[512], target[64] = "", spec[FAULT_FORMAT_MAX] = "";
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  double t = cl.t0_set ? cl_now_ms() : 0;
  if (fault >= 0) {
    cl_fault_target(&cl.faults[fault], target, sizeof target);
    cl_fault_text((size_t)fault, spec, sizeof spec);
    text_say("[%7.2fs] fault %u %s %s: %s   (%s)", t / 1e3, cl.faults[fault].item, action, target,
             detail, spec);
  } else if (!cl.quiet) {
    text_say("[%7.2fs] %s", t / 1e3, detail);
  }
  json_t *e = json_pack("{s:s, s:o, s:s, s:s}", "kind", kind, "t_ms", json_real(round(t)), "action",
                        action, "detail", detail);
  if (fault >= 0) {
    json_object_set_new(e, "fault", json_string(spec));
    json_object_set_new(e, "item", json_integer(cl.faults[fault].item));
    json_object_set_new(e, "target", json_string(target));
  }
  json_array_append_new(cl.events, e);
}
