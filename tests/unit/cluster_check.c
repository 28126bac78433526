/*
 * cluster_check MODE REPORT [ARGS] — checks a bftnet-cluster report.json
 * (tests/unit/cluster_run.sh runs the cluster, then this). jq may be
 * missing on a fresh machine; jansson is a build dependency anyway.
 *
 *   shape    the documented shape (README.md, "Running a cluster"; the
 *            replicas' reports: docs/REPORT.md), and in every mode: no
 *            duplicate, no reorder anywhere (the receivers' raw counts:
 *            they tell a restarted sender's incarnations apart), no
 *            restart that did not happen
 *   clean    + integrity ok, every pair exact, no fault events
 *   faults   + every fault event reported (cuts, a kill and its restart),
 *            every pair consistent (delivered <= expected), the restarted
 *            sender's pairs split exactly by the receivers; FAILED only for
 *            in-flight loss
 *   members ADDED REMOVED
 *            + the added replica ran and is a member, the removed one is
 *            not; pairs without the removed replica are ok; loss only on
 *            the removed replica's pairs and only at the tail of their
 *            streams (no gap: what was in flight when the connections
 *            closed at the removal)
 *   failover REPLICA
 *            + REPLICA's preferred address went down and came back, and
 *            its second address carried traffic meanwhile; every pair
 *            consistent; FAILED only for in-flight loss
 *   netns REPLICA
 *            + a --netns run: REPLICA partitioned by taking its link down
 *            and up again; every pair consistent; FAILED only for
 *            in-flight loss
 *   classes VOTE BLOCK
 *            + a --classes run without faults, VOTE paced and BLOCK flat
 *            out: integrity ok, every pair cross-checked once per class and
 *            consistent; VOTE lost nothing (no drop, no abort, delivered ==
 *            sent, no gap at any receiver) while BLOCK dropped, and each
 *            sender's drops toward a peer are its classes' drops (bftnet's
 *            per-member count == the sum of bftnet_class_stats): one
 *            class's drops never touch another
 *   direct PROXIES
 *            + a --direct run: config.direct, exactly PROXIES proxies (the
 *            faulted links'), every pair consistent; and in every mode the
 *            replicas' resources (process: cpu_s, cpu_pct, rss_kib, fds)
 *            and their summary
 * BFTNET_CLUSTER_STRICT=1: every fault mode demands "integrity: ok" too
 * (for when migratable streams are wired in).
 *
 * Prints "FAIL: ..." lines and exits 1 on the first broken rule per check.
 */
#include <regex.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

static int failures;

__attribute__((format(printf, 1, 2))) static void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("FAIL: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  failures++;
}

static json_t *need(json_t *o, const char *key, json_type type, const char *where) {
  json_t *v = json_object_get(o, key);
  if (!v) {
    fail("%s: no \"%s\"", where, key);
    return NULL;
  }
  if (json_typeof(v) != type && !(type == JSON_REAL && json_is_integer(v)) &&
      !(type == JSON_TRUE && json_is_boolean(v))) {
    fail("%s: \"%s\" has the wrong type", where, key);
    return NULL;
  }
  return v;
}

#define NKEYS(a) (sizeof(a) / sizeof *(a))

/* need(o, keys[k], type, where) for every key; nothing when o is NULL (its
 * own need() has reported it). */
static void need_each(json_t *o, const char *const *keys, size_t n, json_type type,
                      const char *where) {
  for (size_t k = 0; o && k < n; k++)
    need(o, keys[k], type, where);
}

/* A latency_us object (where.latency_us) has every key, of any type. */
static void latency_keys(json_t *lat, const char *const *keys, size_t n, const char *where) {
  for (size_t k = 0; lat && k < n; k++)
    if (!json_object_get(lat, keys[k])) fail("%s.latency_us: no \"%s\"", where, keys[k]);
}

static long long num(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  return json_is_integer(v) ? json_integer_value(v) : (long long)json_number_value(v);
}

static const char *str(json_t *o, const char *key) {
  const char *s = json_string_value(json_object_get(o, key));
  return s ? s : "";
}

static bool matches(const char *s, const char *re) {
  regex_t r;
  if (regcomp(&r, re, REG_EXTENDED | REG_NOSUB) != 0) return false;
  bool m = regexec(&r, s, 0, NULL, 0) == 0;
  regfree(&r);
  return m;
}

#define INFLIGHT_RE                                                                                \
  "^integrity: FAILED \\([0-9]+ messages? lost in flight on links a fault broke, not counted\\)$"

/* ---------------------------------------------------------------- shape */

static const char *const pair_ints[] = {"sent",
                                        "dropped",
                                        "aborted",
                                        "delivered",
                                        "delivered_current",
                                        "rx_evicted",
                                        "expected",
                                        "lost",
                                        "gaps",
                                        "duplicates",
                                        "reorders",
                                        "reconnects",
                                        "extra",
                                        "aborted_arrived",
                                        "restart_artifacts",
                                        "max_seq"};

static void shape_pair(json_t *p, size_t i) {
  char where[64];
  snprintf(where, sizeof where, "pairs[%zu]", i);
  need(p, "sender", JSON_STRING, where);
  need(p, "receiver", JSON_STRING, where);
  need_each(p, pair_ints, NKEYS(pair_ints), JSON_INTEGER, where);
  json_t *lat = need(p, "latency_us", JSON_OBJECT, where);
  const char *lk[] = {"n", "p50", "p90", "p99", "max"};
  latency_keys(lat, lk, NKEYS(lk), where);
  json_t *lb = need(p, "lost_breakdown", JSON_OBJECT, where);
  const char *bk[] = {"in_flight", "unwritten", "queued", "died_with_receiver",
                      "discarded_by_receiver"};
  need_each(lb, bk, NKEYS(bk), JSON_INTEGER, where);
  json_t *v = need(p, "violations", JSON_OBJECT, where);
  const char *vk[] = {"duplicates", "reorders", "extra"};
  need_each(v, vk, NKEYS(vk), JSON_INTEGER, where);
  need(p, "link_broken_by_faults", JSON_TRUE, where);
  json_t *m = need(p, "migration", JSON_OBJECT, where);
  const char *mk[] = {"migrations", "detached", "resumed", "retransmitted_bytes", "aborted_events"};
  need_each(m, mk, NKEYS(mk), JSON_INTEGER, where);
  json_t *inc = need(p, "incarnations", JSON_OBJECT, where);
  if (inc) {
    need(inc, "switches", JSON_INTEGER, where);
    need(inc, "sender_restarts", JSON_INTEGER, where);
    need(inc, "split_used", JSON_TRUE, where);
    if (num(inc, "false_restarts"))
      fail("%s: %lld restarts of the sender that did not happen", where,
           num(inc, "false_restarts"));
  }
  if (num(p, "duplicates") || num(p, "reorders"))
    fail("%s: %lld duplicates, %lld reorders at the receiver", where, num(p, "duplicates"),
         num(p, "reorders"));
  need(p, "sender_restarted", JSON_TRUE, where);
  need(p, "receiver_killed", JSON_TRUE, where);
  need(p, "note", JSON_STRING, where);
  const char *verdict = str(p, "verdict");
  if (!matches(verdict, "^(ok|lost|unverifiable|violated)$"))
    fail("%s: verdict \"%s\"", where, verdict);
  if (num(p, "expected") != num(p, "sent") - num(p, "dropped") - num(p, "aborted") &&
      strcmp(verdict, "unverifiable") != 0)
    fail("%s: expected != sent - dropped - aborted", where);
}

/* A replica report's peer row: the fields docs/REPORT.md promises,
 * bftnet's migration counters and the per-incarnation accounting. */
static const char *const rep_ints[] = {
    "sent",          "dropped",           "aborted", "unconfirmed",   "unconfirmed_bytes",
    "delivered",     "delivered_current", "max_seq", "first_seq",     "gaps",
    "duplicates",    "reorders",          "foreign", "incarnations",  "reconnects",
    "migrations",    "detached",          "resumed", "retransmitted", "detach_ns_last",
    "detach_ns_max", "peer_restarts"};
static const char *const rep_events[] = {"migrated", "detached",       "resumed",     "aborted",
                                         "denied",   "peer_restarted", "aborted_lost"};

static void shape_replica_report(json_t *rep, const char *name) {
  json_t *peers = need(rep, "peers", JSON_OBJECT, name);
  need(rep, "drain", JSON_OBJECT, name);
  need(rep, "events_unattributed", JSON_OBJECT, name);
  const char *pn;
  json_t *row;
  json_object_foreach(peers, pn, row) {
    char where[96];
    snprintf(where, sizeof where, "%s.peers.%s", name, pn);
    need_each(row, rep_ints, NKEYS(rep_ints), JSON_INTEGER, where);
    json_t *lat = need(row, "latency_us", JSON_OBJECT, where);
    const char *lk[] = {"p50", "p90", "p99", "max"};
    latency_keys(lat, lk, NKEYS(lk), where);
    json_t *ev = need(row, "events", JSON_OBJECT, where);
    need_each(ev, rep_events, NKEYS(rep_events), JSON_INTEGER, where);
    json_t *sw = need(row, "incarnation_switches", JSON_OBJECT, where);
    if (sw) {
      need(sw, "by_event", JSON_INTEGER, where);
      need(sw, "by_seq", JSON_INTEGER, where);
    }
    json_t *incs = need(row, "rx_incarnations", JSON_OBJECT, where);
    if (incs && (long long)json_object_size(incs) > num(row, "incarnations"))
      fail("%s: more rx_incarnations than incarnations", where);
    /* No duplicate, no reorder: the receiver's raw counts. */
    if (num(row, "duplicates") || num(row, "reorders"))
      fail("%s: %lld duplicates, %lld reorders", where, num(row, "duplicates"),
           num(row, "reorders"));
  }
}

static void shape(json_t *doc) {
  if (strcmp(str(doc, "schema"), "bftnet-cluster-report/1") != 0) fail("schema");
  json_t *cfg = need(doc, "config", JSON_OBJECT, "top");
  const char *ck[] = {"replicas", "slots", "size", "seed", "paths", "stats_ms", "drain_ms"};
  need_each(cfg, ck, NKEYS(ck), JSON_INTEGER, "config");
  if (cfg) {
    need(cfg, "duration_s", JSON_REAL, "config");
    need(cfg, "rate", JSON_REAL, "config");
    need(cfg, "faults", JSON_STRING, "config");
    need(cfg, "faults_parsed", JSON_ARRAY, "config");
  }
  json_t *reps = need(doc, "replicas", JSON_OBJECT, "top");
  const char *name;
  json_t *r;
  json_object_foreach(reps, name, r) {
    need(r, "peer_id", JSON_STRING, name);
    need(r, "ports", JSON_ARRAY, name);
    need(r, "incarnations", JSON_INTEGER, name);
    need(r, "kills", JSON_INTEGER, name);
    need(r, "restarts", JSON_INTEGER, name);
    need(r, "exits", JSON_ARRAY, name);
    need(r, "started", JSON_TRUE, name);
    need(r, "member_at_end", JSON_TRUE, name);
    need(r, "path_bytes", JSON_ARRAY, name);
    json_t *rep = json_object_get(r, "report");
    if (!rep) fail("%s: no \"report\"", name);
    if (json_is_true(json_object_get(r, "started")) &&
        strcmp(str(rep, "schema"), "bftnet-replica-report/1") != 0)
      fail("%s: no replica report (schema bftnet-replica-report/1)", name);
    else if (json_is_true(json_object_get(r, "started")))
      shape_replica_report(rep, name);
  }
  json_t *pairs = need(doc, "pairs", JSON_ARRAY, "top");
  size_t i;
  json_t *p;
  json_array_foreach(pairs, i, p) shape_pair(p, i);
  json_t *events = need(doc, "events", JSON_ARRAY, "top");
  json_array_foreach(events, i, p) {
    need(p, "kind", JSON_STRING, "event");
    need(p, "t_ms", JSON_REAL, "event");
    need(p, "action", JSON_STRING, "event");
    need(p, "detail", JSON_STRING, "event");
    if (strcmp(str(p, "kind"), "fault") == 0) {
      need(p, "fault", JSON_STRING, "fault event");
      need(p, "item", JSON_INTEGER, "fault event");
      need(p, "target", JSON_STRING, "fault event");
    }
  }
  json_t *sum = need(doc, "summary", JSON_OBJECT, "top");
  const char *sk[] = {"pairs",
                      "ok",
                      "lost_pairs",
                      "violated",
                      "unverifiable",
                      "lost_in_flight",
                      "lost_unexplained",
                      "duplicates",
                      "reorders",
                      "delivered",
                      "aborted",
                      "migrations",
                      "false_restarts"};
  need_each(sum, sk, NKEYS(sk), JSON_INTEGER, "summary");
  const char *sl[] = {"msgs_per_s", "p50_us", "p90_us", "p99_us", "max_us"};
  for (size_t k = 0; sum && k < NKEYS(sl); k++)
    if (!json_object_get(sum, sl[k])) fail("summary: no \"%s\"", sl[k]);
  json_t *files = need(doc, "files", JSON_OBJECT, "top");
  if (files) {
    need(files, "report", JSON_STRING, "files");
    need(files, "timeseries", JSON_STRING, "files");
    if (!json_object_get(files, "plot")) fail("files: no \"plot\"");
  }
  const char *integ = str(doc, "integrity"), *verdict = str(doc, "verdict");
  if (!matches(integ, "^(ok|FAILED)$")) fail("integrity \"%s\"", integ);
  if ((strcmp(integ, "ok") == 0) != (strcmp(verdict, "integrity: ok") == 0))
    fail("integrity \"%s\" vs verdict \"%s\"", integ, verdict);
  if (!matches(verdict, "^integrity: (ok|FAILED \\(.*\\))$")) fail("verdict \"%s\"", verdict);
  if (json_array_size(pairs) != (size_t)num(sum, "pairs")) fail("summary.pairs");
}

/* ------------------------------------------------------------- scenarios */

static size_t count_events(json_t *doc, const char *kind, const char *action) {
  size_t i, n = 0;
  json_t *e;
  json_array_foreach(json_object_get(doc, "events"), i, e) {
    if (strcmp(str(e, "kind"), kind) == 0 && (!action || strcmp(str(e, "action"), action) == 0))
      n++;
  }
  return n;
}

/* Consistent pair: nothing held against bftnet, nothing more than sent. */
static void consistent(json_t *p, const char *where) {
  json_t *v = json_object_get(p, "violations");
  if (num(v, "duplicates") || num(v, "reorders") || num(v, "extra"))
    fail("%s: violations (dups %lld, reorders %lld, extra %lld): %s", where, num(v, "duplicates"),
         num(v, "reorders"), num(v, "extra"), str(p, "note"));
  long long got = num(p, "delivered_current") + num(p, "rx_evicted");
  if (got > num(p, "expected") + num(p, "aborted"))
    fail("%s: delivered %lld > sent - dropped %lld", where, got,
         num(p, "expected") + num(p, "aborted"));
  if (got > num(p, "expected") && num(p, "aborted_arrived") != got - num(p, "expected"))
    fail("%s: aborted_arrived %lld != delivered - expected", where, num(p, "aborted_arrived"));
  json_t *lb = json_object_get(p, "lost_breakdown");
  long long died = num(lb, "died_with_receiver"), discarded = num(lb, "discarded_by_receiver");
  long long want = num(p, "expected") - got - died - discarded;
  if (num(p, "lost") != (want > 0 ? want : 0))
    fail("%s: lost %lld != expected - delivered - died - discarded", where, num(p, "lost"));
  if (discarded && got + died + discarded > num(p, "expected"))
    fail("%s: %lld discarded by the receiver, more than was missing", where, discarded);
  if (!matches(str(p, "verdict"), "^(ok|lost)$"))
    fail("%s: verdict %s (%s)", where, str(p, "verdict"), str(p, "note"));
}

static void pair_name(json_t *p, char *buf, size_t len) {
  snprintf(buf, len, "%s->%s", str(p, "sender"), str(p, "receiver"));
}

static void clean(json_t *doc) {
  if (strcmp(str(doc, "verdict"), "integrity: ok") != 0) fail("verdict: %s", str(doc, "verdict"));
  long long n = num(json_object_get(doc, "config"), "replicas");
  json_t *pairs = json_object_get(doc, "pairs");
  if ((long long)json_array_size(pairs) != n * (n - 1))
    fail("%zu pairs for %lld replicas", json_array_size(pairs), n);
  size_t i;
  json_t *p;
  json_array_foreach(pairs, i, p) {
    char w[32];
    pair_name(p, w, sizeof w);
    if (strcmp(str(p, "verdict"), "ok") != 0)
      fail("%s: %s (%s)", w, str(p, "verdict"), str(p, "note"));
    if (num(p, "sent") <= 0) fail("%s: nothing sent", w);
    if (num(p, "delivered") != num(p, "sent") - num(p, "dropped")) fail("%s: not exact", w);
  }
  if (count_events(doc, "fault", NULL)) fail("fault events in a clean run");
  if (json_number_value(json_object_get(json_object_get(doc, "summary"), "msgs_per_s")) <= 0)
    fail("summary.msgs_per_s");
  const char *name;
  json_t *r;
  json_object_foreach(json_object_get(doc, "replicas"), name, r) {
    json_t *rep = json_object_get(r, "report");
    if (strcmp(str(rep, "integrity"), "ok") != 0) fail("%s: report integrity", name);
    if (!json_is_true(json_object_get(json_object_get(rep, "drain"), "complete")))
      fail("%s: drain incomplete", name);
  }
}

static bool strict_mode(void) {
  const char *e = getenv("BFTNET_CLUSTER_STRICT");
  return !e || strcmp(e, "0") != 0; /* strict unless BFTNET_CLUSTER_STRICT=0 */
}

static void verdict_inflight_only(json_t *doc) {
  if (strict_mode() && strcmp(str(doc, "verdict"), "integrity: ok") != 0)
    fail("BFTNET_CLUSTER_STRICT=1 and: %s", str(doc, "verdict"));
  const char *v = str(doc, "verdict");
  if (strcmp(v, "integrity: ok") != 0 && !matches(v, INFLIGHT_RE))
    fail("the verdict may fail only for in-flight loss: %s", v);
  json_t *sum = json_object_get(doc, "summary");
  if (num(sum, "lost_unexplained")) fail("loss on links no fault broke");
  long long lost = 0;
  size_t i;
  json_t *p;
  json_array_foreach(json_object_get(doc, "pairs"), i, p) lost += num(p, "lost");
  if (lost != num(sum, "lost_in_flight"))
    fail("summary.lost_in_flight %lld != %lld", num(sum, "lost_in_flight"), lost);
}

/* Every pair consistent, each followed by also(p, its name, arg) when
 * given; then the verdict FAILED only for in-flight loss. */
typedef void (*pair_check_fn)(json_t *p, const char *w, const char *arg);
static void all_consistent(json_t *doc, pair_check_fn also, const char *arg) {
  size_t i;
  json_t *p;
  json_array_foreach(json_object_get(doc, "pairs"), i, p) {
    char w[32];
    pair_name(p, w, sizeof w);
    consistent(p, w);
    if (also) also(p, w, arg);
  }
  verdict_inflight_only(doc);
}

/* faults: the restarted sender's pairs split by the receivers. */
static void split_used(json_t *p, const char *w, const char *arg) {
  (void)arg;
  if (json_is_true(json_object_get(p, "sender_restarted")) &&
      !json_is_true(json_object_get(json_object_get(p, "incarnations"), "split_used")))
    fail("%s: the receiver did not tell the sender's incarnations apart (%s)", w, str(p, "note"));
}

/* members: pairs without the removed replica ok; its own lost only at the tail. */
static void removed_tail(json_t *p, const char *w, const char *removed) {
  bool touches = strcmp(str(p, "sender"), removed) == 0 || strcmp(str(p, "receiver"), removed) == 0;
  if (!touches && strcmp(str(p, "verdict"), "ok") != 0)
    fail("%s: %s (%s)", w, str(p, "verdict"), str(p, "note"));
  /* Lost at the removal = the stream's tail: nothing missing below the
   * last message delivered, everything missing above it. */
  if (touches && num(p, "lost") &&
      (num(p, "gaps") || num(p, "max_seq") + num(p, "lost") > num(p, "sent")))
    fail("%s: %lld lost, not only at the tail (gaps %lld, max_seq %lld, sent %lld)", w,
         num(p, "lost"), num(p, "gaps"), num(p, "max_seq"), num(p, "sent"));
}

static void faults(json_t *doc) {
  if (count_events(doc, "fault", "cut") < 1) fail("no cut event");
  if (count_events(doc, "fault", "kill") != 1) fail("want one kill event");
  if (count_events(doc, "fault", "restart") != 1) fail("want one restart event");
  if (count_events(doc, "replica", "restart") != 1) fail("the killed replica did not restart");
  all_consistent(doc, split_used, NULL);
  const char *name;
  json_t *r;
  int killed = 0;
  json_object_foreach(json_object_get(doc, "replicas"), name, r) {
    if (num(r, "kills") == 1 && num(r, "restarts") == 1 && num(r, "incarnations") == 2) killed++;
  }
  if (killed != 1) fail("want one replica killed once and restarted (incarnation 2)");
}

static void members(json_t *doc, const char *added, const char *removed) {
  if (count_events(doc, "fault", "members") < 1) fail("no members event");
  json_t *reps = json_object_get(doc, "replicas");
  json_t *a = json_object_get(reps, added), *rm = json_object_get(reps, removed);
  if (!json_is_true(json_object_get(a, "started")) ||
      !json_is_true(json_object_get(a, "member_at_end")))
    fail("%s was not added", added);
  if (!rm || json_is_true(json_object_get(rm, "member_at_end")))
    fail("%s was not removed", removed);
  /* The removed replica's report: every peer a non-member now. */
  const char *name;
  json_t *row;
  json_object_foreach(json_object_get(json_object_get(rm, "report"), "peers"), name, row) {
    if (json_is_true(json_object_get(row, "member")))
      fail("%s still has %s as member", removed, name);
  }
  all_consistent(doc, removed_tail, removed);
}

static void failover(json_t *doc, const char *who) {
  size_t downs = 0, ups = 0, i;
  json_t *e;
  long long second = -1;
  json_array_foreach(json_object_get(doc, "events"), i, e) {
    if (strcmp(str(e, "kind"), "fault") != 0 || strcmp(str(e, "target"), who) != 0) continue;
    if (strcmp(str(e, "action"), "failover down") == 0) downs++;
    if (strcmp(str(e, "action"), "failover up") == 0) {
      ups++;
      const char *d = strstr(str(e, "detail"), "); ");
      if (d) second = atoll(d + 3);
    }
  }
  if (downs != 1 || ups != 1) fail("want one failover down and one up of %s", who);
  if (second <= 0) fail("%s's second address carried nothing while the first was down", who);
  json_t *r = json_object_get(json_object_get(doc, "replicas"), who);
  json_t *pb = json_object_get(r, "path_bytes");
  if (json_array_size(pb) != 2)
    fail("%s: want 2 paths, path_bytes has %zu", who, json_array_size(pb));
  all_consistent(doc, NULL, NULL);
}

static void netns(json_t *doc, const char *who) {
  if (!json_is_true(json_object_get(json_object_get(doc, "config"), "netns")))
    fail("config.netns is not true");
  size_t on = 0, off = 0, i;
  json_t *e;
  json_array_foreach(json_object_get(doc, "events"), i, e) {
    if (strcmp(str(e, "kind"), "fault") != 0 || strcmp(str(e, "target"), who) != 0) continue;
    if (strcmp(str(e, "action"), "partition on") == 0 && strstr(str(e, "detail"), "link(s)")) on++;
    if (strcmp(str(e, "action"), "partition off") == 0 && strstr(str(e, "detail"), "link(s)"))
      off++;
  }
  if (on != 1 || off != 1) fail("want %s's links down once and up once", who);
  all_consistent(doc, NULL, NULL);
}

/* Every replica that ran has its resources, and the summary sums them. */
static void resources(json_t *doc) {
  const char *name;
  json_t *r;
  long long n = 0;
  json_object_foreach(json_object_get(doc, "replicas"), name, r) {
    json_t *pr = json_object_get(r, "process");
    if (!json_is_true(json_object_get(r, "started"))) continue;
    if (!json_is_object(pr)) {
      fail("%s: no process resources", name);
      continue;
    }
    n++;
    if (num(pr, "rss_kib") <= 0 || num(pr, "rss_max_kib") < num(pr, "rss_kib"))
      fail("%s: process.rss_kib %lld, max %lld", name, num(pr, "rss_kib"), num(pr, "rss_max_kib"));
    if (num(pr, "fds") <= 2 || num(pr, "threads") < 3)
      fail("%s: process.fds %lld, threads %lld", name, num(pr, "fds"), num(pr, "threads"));
    double cpu = json_number_value(json_object_get(pr, "cpu_s"));
    if (!json_is_number(json_object_get(pr, "cpu_s")) || cpu < 0 || cpu > 1000)
      fail("%s: process.cpu_s %g", name, cpu);
  }
  json_t *sum = json_object_get(json_object_get(doc, "summary"), "process");
  if (num(sum, "replicas") != n)
    fail("summary.process.replicas %lld, want %lld", num(sum, "replicas"), n);
  if (json_number_value(json_object_get(sum, "rss_kib_mean")) <= 0)
    fail("summary.process.rss_kib_mean");
}

static void direct(json_t *doc, const char *proxies) {
  json_t *c = json_object_get(doc, "config");
  if (!json_is_true(json_object_get(c, "direct"))) fail("config.direct is not true");
  if (num(c, "proxies") != atoll(proxies))
    fail("config.proxies %lld, want %s (the faulted links')", num(c, "proxies"), proxies);
  all_consistent(doc, NULL, NULL);
}

/* A --classes pair of class cls: verdict ok, consistent; the paced
 * class exact and without loss. */
static void class_pair(json_t *p, const char *vote, const char *block, long long *block_drops) {
  char w[96];
  snprintf(w, sizeof w, "%s->%s/%s", str(p, "sender"), str(p, "receiver"), str(p, "class"));
  consistent(p, w);
  if (strcmp(str(p, "verdict"), "ok") != 0)
    fail("%s: %s (%s)", w, str(p, "verdict"), str(p, "note"));
  if (num(p, "sent") <= 0) fail("%s: nothing sent", w);
  if (strcmp(str(p, "class"), vote) == 0) {
    if (num(p, "dropped") || num(p, "aborted") || num(p, "lost") ||
        num(p, "delivered") != num(p, "sent"))
      fail("%s: sent %lld, dropped %lld, aborted %lld, lost %lld, delivered %lld: want no loss", w,
           num(p, "sent"), num(p, "dropped"), num(p, "aborted"), num(p, "lost"),
           num(p, "delivered"));
  } else if (strcmp(str(p, "class"), block) == 0) {
    *block_drops += num(p, "dropped");
  } else {
    fail("%s: class \"%s\" is neither %s nor %s", w, str(p, "class"), vote, block);
  }
}

/* Every replica's report: per peer, the drops are the classes' drops, and
 * VOTE's receive side has no gap, duplicate or reorder. */
static void class_reports(json_t *doc, const char *vote) {
  const char *name, *peer;
  json_t *r, *row;
  json_object_foreach(json_object_get(doc, "replicas"), name, r) {
    json_object_foreach(json_object_get(json_object_get(r, "report"), "peers"), peer, row) {
      json_t *cs = json_object_get(row, "classes");
      if (json_object_size(cs) != 2) {
        fail("%s: peers.%s.classes: %zu classes, want 2", name, peer, json_object_size(cs));
        continue;
      }
      long long sum = 0;
      const char *cname;
      json_t *c;
      json_object_foreach(cs, cname, c) sum += num(c, "dropped");
      if (sum != num(row, "dropped"))
        fail("%s: peers.%s: dropped %lld, its classes' drops sum to %lld", name, peer,
             num(row, "dropped"), sum);
      json_t *v = json_object_get(cs, vote);
      if (num(v, "dropped") || num(v, "gaps") || num(v, "duplicates") || num(v, "reorders") ||
          strcmp(str(v, "integrity"), "ok") != 0)
        fail("%s: peers.%s.classes.%s: dropped %lld, gaps %lld, dups %lld, reorders %lld, %s", name,
             peer, vote, num(v, "dropped"), num(v, "gaps"), num(v, "duplicates"),
             num(v, "reorders"), str(v, "integrity"));
    }
  }
}

static void classes(json_t *doc, const char *vote, const char *block) {
  if (strcmp(str(doc, "verdict"), "integrity: ok") != 0) fail("verdict: %s", str(doc, "verdict"));
  long long n = num(json_object_get(doc, "config"), "replicas");
  json_t *pairs = json_object_get(doc, "pairs");
  if ((long long)json_array_size(pairs) != 2 * n * (n - 1))
    fail("%zu pairs for %lld replicas and 2 classes", json_array_size(pairs), n);
  long long block_drops = 0;
  size_t i;
  json_t *p;
  json_array_foreach(pairs, i, p) class_pair(p, vote, block, &block_drops);
  if (block_drops <= 0) fail("%s (flat out) dropped nothing", block);
  json_t *cs = json_object_get(json_object_get(doc, "summary"), "classes");
  json_t *v = json_object_get(cs, vote), *b = json_object_get(cs, block);
  if (strcmp(str(v, "integrity"), "ok") != 0 || strcmp(str(b, "integrity"), "ok") != 0)
    fail("summary.classes: integrity %s %s, %s %s", vote, str(v, "integrity"), block,
         str(b, "integrity"));
  if (num(v, "dropped") || num(v, "lost") || num(v, "delivered") != num(v, "sent"))
    fail("summary.classes.%s: dropped %lld, lost %lld, delivered %lld of %lld", vote,
         num(v, "dropped"), num(v, "lost"), num(v, "delivered"), num(v, "sent"));
  if (num(b, "dropped") != block_drops)
    fail("summary.classes.%s.dropped %lld != the pairs' %lld", block, num(b, "dropped"),
         block_drops);
  class_reports(doc, vote);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: cluster_check shape|clean|faults|members|failover|netns|direct|classes "
                    "REPORT [ADDED REMOVED | REPLICA | PROXIES | VOTE BLOCK]\n");
    return 2;
  }
  json_error_t je;
  json_t *doc = json_load_file(argv[2], JSON_REJECT_DUPLICATES, &je);
  if (!doc) {
    fprintf(stderr, "FAIL: %s: line %d: %s\n", argv[2], je.line, je.text);
    return 1;
  }
  shape(doc);
  resources(doc);
  if (strcmp(argv[1], "clean") == 0)
    clean(doc);
  else if (strcmp(argv[1], "faults") == 0)
    faults(doc);
  else if (strcmp(argv[1], "members") == 0 && argc == 5)
    members(doc, argv[3], argv[4]);
  else if (strcmp(argv[1], "failover") == 0 && argc == 4)
    failover(doc, argv[3]);
  else if (strcmp(argv[1], "netns") == 0 && argc == 4)
    netns(doc, argv[3]);
  else if (strcmp(argv[1], "classes") == 0 && argc == 5)
    classes(doc, argv[3], argv[4]);
  else if (strcmp(argv[1], "direct") == 0 && argc == 4)
    direct(doc, argv[3]);
  else if (strcmp(argv[1], "shape") != 0) {
    fprintf(stderr, "cluster_check: unknown mode %s\n", argv[1]);
    return 2;
  }
  json_decref(doc);
  if (failures) return 1;
  printf("cluster_check %s: ok\n", argv[1]);
  return 0;
}
