/*
 * resume_bench.c — time from an abrupt cut to resumed delivery.
 *
 * Two bftnet nodes on loopback, each reached through a fault proxy
 * (tools/lib/fault_proxy) on a thread of its own. r0 sends r1 a
 * time-stamped, sequence-numbered message every 500 us. Every --every-ms the
 * proxies reset every connection (both sides, SO_LINGER 0). For each cut the
 * resume time is from the cut to the first delivery of a message sent after
 * it; the sequence numbers prove nothing was lost or reordered meanwhile.
 * Prints p50/p90/p99/max over --cuts cuts, and the same run's baseline: the
 * delivery latency of messages when nothing is cut.
 *
 * Usage: resume_bench [--cuts N (50)] [--every-ms MS (300)] [--json FILE]
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "bench_harness.h"
#include "bftnet.h"
#include "fault_proxy.h"

static void die(const char *what, int rc) {
  fprintf(stderr, "resume_bench: %s: %s\n", what,
          rc < 0 && rc > -4096 ? uv_strerror(rc) : bftnet_strerror(rc));
  exit(1);
}

/* ------------------------------------------------- proxies on a thread */

static uv_loop_t px_loop;
static uv_async_t px_async;
static fault_proxy_t *px[2];
static atomic_int px_cmd; /* 1 = cut, 2 = quit */
static atomic_int px_done;

static void px_on_async(uv_async_t *h) {
  (void)h;
  int c = atomic_exchange(&px_cmd, 0);
  if (c == 1)
    for (int i = 0; i < 2; i++)
      fault_proxy_cut(px[i]);
  if (c == 2) {
    for (int i = 0; i < 2; i++)
      fault_proxy_close(px[i], NULL, NULL);
    uv_close((uv_handle_t *)&px_async, NULL);
  }
  atomic_store(&px_done, 1);
}

static void px_main(void *arg) {
  (void)arg;
  uv_run(&px_loop, UV_RUN_DEFAULT);
}

static void px_send(int cmd) {
  atomic_store(&px_done, 0);
  atomic_store(&px_cmd, cmd);
  uv_async_send(&px_async);
  for (int i = 0; i < 10000 && !atomic_load(&px_done); i++)
    usleep(100);
}

/* ---------------------------------------------------------- the load */

typedef struct {
  bftnet_t *net;
  atomic_bool stop;
  uint64_t sent;
} sender_t;

static void put64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8)
    p[i] = (uint8_t)v;
}
static uint64_t get64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = (v << 8) | p[i];
  return v;
}

static void *sender_main(void *arg) {
  sender_t *s = arg;
  uint8_t buf[64] = {0};
  for (uint64_t i = 0; !atomic_load(&s->stop) && i < 100000000; i++) {
    put64(buf, s->sent + 1);
    put64(buf + 8, bb_now_ns());
    if (bftnet_send(s->net, "r1", buf, sizeof buf) == 0) s->sent++;
    usleep(500);
  }
  return NULL;
}

#define MAXCUTS 1000
static _Atomic uint64_t cut_at[MAXCUTS];
static atomic_int ncuts;
static uint64_t resume_ns[MAXCUTS];
static double lat_ns[200000];
static size_t nlat;

typedef struct {
  bftnet_t *net;
  atomic_bool stop;
  uint64_t last, gaps, dups, got;
} receiver_t;

static void *receiver_main(void *arg) {
  receiver_t *r = arg;
  int seen = 0; /* cuts whose resume was measured */
  bftnet_msg_t m[64];
  while (!atomic_load(&r->stop)) {
    int k = bftnet_recv_batch(r->net, m, 64, 20);
    uint64_t t = bb_now_ns();
    for (int i = 0; i < k; i++) {
      uint64_t seq = get64(m[i].data), sent = get64(m[i].data + 8);
      if (seq <= r->last)
        r->dups++;
      else {
        r->gaps += seq - r->last - 1;
        r->last = seq;
        r->got++;
      }
      int n = atomic_load(&ncuts);
      if (seen < n && sent > atomic_load(&cut_at[seen])) {
        resume_ns[seen] = t - atomic_load(&cut_at[seen]);
        seen++;
      } else if (seen == n && nlat < sizeof lat_ns / sizeof lat_ns[0] && n > 0 &&
                 sent > atomic_load(&cut_at[n - 1]) + 100000000ull) {
        lat_ns[nlat++] = (double)(t - sent); /* steady state: 100 ms after the last cut */
      }
      bftnet_msg_release(&m[i]);
    }
  }
  return NULL;
}

/* Percentile p of n sorted samples (ns) in ms; 0 when there is none. */
static double ms_at(const double *v, size_t n, double p) {
  return n ? bb_pct_sorted(v, n, p) / 1e6 : 0;
}

/* Two nodes, r0 and r1, each reached through its own fault proxy: every
 * byte between them crosses a proxy this process can cut. */
static void nodes_up(bftnet_t *n[2], bftnet_key_t *k[2]) {
  char bound[2][BFTNET_ADDR_MAX], pid[2][BFTNET_PEER_ID_MAX], via[2][BFTNET_ADDR_MAX];
  for (int i = 0; i < 2; i++) {
    bftnet_config_t cfg;
    bftnet_config_init(&cfg);
    int rc = bftnet_key_generate(&k[i]);
    if (rc) die("keygen", rc);
    cfg.key = k[i];
    cfg.log_level = 1;
    cfg.dial_backoff_min_ms = 20;
    cfg.dial_backoff_max_ms = 200;
    if ((rc = bftnet_new(&n[i], &cfg))) die("bftnet_new", rc);
    if ((rc = bftnet_listen(n[i], "/ip4/127.0.0.1/tcp/0", bound[i], sizeof bound[i])))
      die("listen", rc);
    bftnet_peer_id(n[i], pid[i], sizeof pid[i]);
    struct sockaddr_storage lis, tgt, b;
    fault_proxy_addr_parse("127.0.0.1:0", &lis);
    fault_proxy_addr_parse(bound[i], &tgt);
    if ((rc = fault_proxy_create(&px_loop, (struct sockaddr *)&lis, (struct sockaddr *)&tgt, NULL,
                                 &px[i])))
      die("proxy", rc);
    fault_proxy_bound_addr(px[i], &b);
    snprintf(via[i], sizeof via[i], "/ip4/127.0.0.1/tcp/%d/p2p/%s", fault_proxy_port(px[i]),
             pid[i]);
  }
  const char *a0[] = {via[0]}, *a1[] = {via[1]};
  bftnet_member_t mem[] = {{"r0", a0, 1}, {"r1", a1, 1}};
  char err[256];
  for (int i = 0; i < 2; i++) {
    int rc = bftnet_connect(n[i], mem, 2, err, sizeof err);
    if (rc) die(err, rc);
  }
}

/* Prints the figures (and writes them to json). */
static void report(int cuts, int every_ms, const char *json, const sender_t *s, const receiver_t *r,
                   const bftnet_peer_stats_t *ps, int frc) {
  int measured = 0;
  double v[MAXCUTS];
  for (int c = 0; c < cuts; c++)
    if (resume_ns[c]) v[measured++] = (double)resume_ns[c];
  qsort(v, (size_t)measured, sizeof v[0], bb_cmp_double);
  qsort(lat_ns, nlat, sizeof lat_ns[0], bb_cmp_double);
  double p50 = ms_at(v, (size_t)measured, 0.5), p90 = ms_at(v, (size_t)measured, 0.9);
  double p99 = ms_at(v, (size_t)measured, 0.99), max = ms_at(v, (size_t)measured, 1.0);
  double b50 = ms_at(lat_ns, nlat, 0.5), b99 = ms_at(lat_ns, nlat, 0.99);
  printf("resume_bench: %d cuts every %d ms, r0 -> r1 at 2000 msgs/s, 64 B\n", cuts, every_ms);
  printf("  cut -> resumed delivery: p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms  (%d "
         "measured)\n",
         p50, p90, p99, max, measured);
  printf("  baseline delivery latency (no cuts): p50 %.3f ms  p99 %.3f ms\n", b50, b99);
  printf("  sent %" PRIu64 ", delivered %" PRIu64 ", gaps %" PRIu64 ", duplicates/reorders %" PRIu64
         ", dropped %" PRIu64 ", aborted %" PRIu64 ", resumed %" PRIu64 ", retransmitted %" PRIu64
         " B, flush %s\n",
         s->sent, r->got, r->gaps, r->dups, ps->dropped_overflow, ps->aborted, ps->resumed,
         ps->retransmitted, frc == 0 ? "ok" : bftnet_strerror(frc));
  FILE *f = json ? fopen(json, "w") : NULL;
  if (f) {
    fprintf(f,
            "{\"cuts\":%d,\"measured\":%d,\"resume_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,"
            "\"max\":%.3f},"
            "\"baseline_ms\":{\"p50\":%.4f,\"p99\":%.4f},\"sent\":%" PRIu64
            ",\"delivered\":%" PRIu64 ",\"gaps\":%" PRIu64 ",\"duplicates\":%" PRIu64 "}\n",
            cuts, measured, p50, p90, p99, max, b50, b99, s->sent, r->got, r->gaps, r->dups);
    fclose(f);
  }
}

int main(int argc, char **argv) {
  int cuts = 50, every_ms = 300;
  const char *json = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--cuts") && i + 1 < argc)
      cuts = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--every-ms") && i + 1 < argc)
      every_ms = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--json") && i + 1 < argc)
      json = argv[++i];
    else {
      fprintf(stderr, "usage: %s [--cuts N] [--every-ms MS] [--json FILE]\n", argv[0]);
      return 2;
    }
  }
  if (cuts < 1 || cuts > MAXCUTS || every_ms < 20) die("bad arguments", BFTNET_EINVAL);

  bftnet_t *n[2];
  bftnet_key_t *k[2];
  uv_loop_init(&px_loop);
  uv_async_init(&px_loop, &px_async, px_on_async);
  nodes_up(n, k);
  uv_thread_t pth;
  uv_thread_create(&pth, px_main, NULL);
  sender_t s = {.net = n[0]};
  receiver_t r = {.net = n[1]};
  pthread_t st, rt;
  pthread_create(&rt, NULL, receiver_main, &r);
  pthread_create(&st, NULL, sender_main, &s);
  usleep(500000);
  for (int c = 0; c < cuts; c++) {
    uint64_t t = bb_now_ns();
    atomic_store(&cut_at[c], t);
    atomic_store(&ncuts, c + 1);
    px_send(1);
    usleep((useconds_t)every_ms * 1000);
  }
  usleep(1000000); /* steady state for the baseline */
  atomic_store(&s.stop, true);
  pthread_join(st, NULL);
  int frc = bftnet_flush(n[0], 10000);
  for (int i = 0; i < 200 && r.last < s.sent; i++)
    usleep(10000);
  atomic_store(&r.stop, true);
  pthread_join(rt, NULL);
  bftnet_peer_stats_t ps;
  bftnet_peer_stats(n[0], "r1", &ps);
  report(cuts, every_ms, json, &s, &r, &ps, frc);
  for (int i = 0; i < 2; i++)
    bftnet_free(n[i]), bftnet_key_free(k[i]);
  px_send(2);
  uv_thread_join(&pth);
  uv_run(&px_loop, UV_RUN_DEFAULT);
  uv_loop_close(&px_loop);
  return (r.gaps || r.dups || r.got != s.sent) ? 1 : 0;
}
