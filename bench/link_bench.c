/*
 * link_bench — secure-link figures, each against a baseline in the same run
 * (these machines are noisy; only ratios mean something):
 *   - bulk throughput of one yamux stream over Noise vs raw TCP, loopback,
 *     two processes, median of R rounds;
 *   - handshake time (TCP connect -> muxer ready), median and p99;
 *   - /ipfs/ping round trip on one connection vs a raw TCP ping-pong.
 * Usage: link_bench [--mib N] [--rounds R] [--json FILE]
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_harness.h"
#include "th_net.h"

/* ------------------------------------------------------------ raw TCP */

static int raw_listen(uint16_t *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) || listen(fd, 4)) exit(1);
  socklen_t len = sizeof sa;
  getsockname(fd, (struct sockaddr *)&sa, &len);
  *port = ntohs(sa.sin_port);
  return fd;
}

static int raw_connect(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {
      .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa)) exit(1);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

/* Raw TCP bulk: child sinks until EOF then answers one byte. */
static double raw_bulk(size_t total) {
  uint16_t port;
  int lfd = raw_listen(&port);
  pid_t pid = fork();
  if (pid == 0) {
    int fd = accept(lfd, NULL, NULL);
    static char buf[256 * 1024];
    while (read(fd, buf, sizeof buf) > 0) {
    }
    (void)!write(fd, "k", 1);
    _exit(0);
  }
  close(lfd);
  int fd = raw_connect(port);
  static char buf[256 * 1024];
  memset(buf, 0xab, sizeof buf);
  double t0 = bb_now();
  for (size_t sent = 0; sent < total;) {
    ssize_t n = write(fd, buf, BN_MIN(sizeof buf, total - sent));
    if (n <= 0) exit(1);
    sent += (size_t)n;
  }
  shutdown(fd, SHUT_WR);
  char k;
  (void)!read(fd, &k, 1);
  double dt = bb_now() - t0;
  close(fd);
  waitpid(pid, NULL, 0);
  return (double)total / dt / 1e6;
}

/* Raw TCP ping-pong, 32 bytes, blocking. */
static void raw_pingpong(int n, double *rtts_us) {
  uint16_t port;
  int lfd = raw_listen(&port);
  pid_t pid = fork();
  if (pid == 0) {
    int fd = accept(lfd, NULL, NULL);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char b[32];
    while (read(fd, b, 32) == 32)
      (void)!write(fd, b, 32);
    _exit(0);
  }
  close(lfd);
  int fd = raw_connect(port);
  char b[32] = {0};
  for (int i = 0; i < n; i++) {
    double t0 = bb_now();
    (void)!write(fd, b, 32);
    if (read(fd, b, 32) != 32) exit(1);
    rtts_us[i] = (bb_now() - t0) * 1e6;
  }
  close(fd);
  waitpid(pid, NULL, 0);
}

/* ------------------------------------------------------------ bftnet */

typedef struct sink {
  bool fin;
} sink_t;
static void sink_data(void *ud, net_stream_t *s, const uint8_t *p, size_t n) {
  (void)ud;
  (void)p;
  net_stream_consume(s, n);
}
static void sink_fin(void *ud, net_stream_t *s) {
  (void)ud;
  net_stream_close(s); /* our FIN tells the sender everything arrived */
}
static const net_stream_cbs_t sink_cbs = {.on_data = sink_data, .on_fin = sink_fin};
static int sink_open(void *ud, net_conn_t *c, net_stream_t *s) {
  (void)c;
  net_stream_set_cbs(s, &sink_cbs, ud);
  return 0;
}

/* A node on its own loop, with the window bulk transfer wants; listening
 * (the server, which takes many dials) or not. */
static int node_up(uv_loop_t *loop, th_node_t *node, bool listen) {
  uv_loop_init(loop);
  bn_transport_t *t;
  net_transport_uv_new(loop, bn_seam_system(), &t);
  net_config_t cfg;
  th_net_config(&cfg);
  cfg.yamux_window = 16u * 1024 * 1024;
  if (listen) cfg.max_pending_handshakes = 256;
  return th_node_init(node, t, &cfg, listen);
}

/* The server process: a node with the sink protocol; prints its address
 * into the pipe and runs until killed. */
static pid_t spawn_server(char *addr, size_t cap) {
  int p[2];
  if (pipe(p)) exit(1);
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    uv_loop_t loop;
    th_node_t node;
    if (node_up(&loop, &node, true) || net_handle(node.net, "/bench/sink", sink_open, NULL))
      _exit(1);
    (void)!write(p[1], node.addr, strlen(node.addr) + 1);
    close(p[1]);
    uv_run(&loop, UV_RUN_DEFAULT);
    _exit(0);
  }
  close(p[1]);
  ssize_t n = read(p[0], addr, cap);
  close(p[0]);
  if (n <= 0) exit(1);
  return pid;
}

typedef struct sender {
  net_stream_t *s;
  size_t total, sent;
  bool done, closed;
} sender_t;
static void snd_pump(sender_t *x) {
  static uint8_t chunk[256 * 1024];
  while (x->sent < x->total) {
    int n = net_stream_write(x->s, chunk, BN_MIN(sizeof chunk, x->total - x->sent));
    if (n <= 0) return;
    x->sent += (size_t)n;
  }
  if (!x->closed) {
    x->closed = true;
    net_stream_close(x->s);
  }
}
static void snd_writable(void *ud, net_stream_t *s) {
  (void)s;
  snd_pump(ud);
}
static void snd_fin(void *ud, net_stream_t *s) {
  (void)s;
  ((sender_t *)ud)->done = true;
}
static void snd_error(void *ud, net_stream_t *s, int err) {
  (void)s;
  fprintf(stderr, "stream error: %s\n", bftnet_strerror(err));
  exit(1);
}
static const net_stream_cbs_t snd_cbs = {
    .on_fin = snd_fin, .on_error = snd_error, .on_writable = snd_writable};

/* One run: its settings and its samples. */
typedef struct run {
  long mib, rounds, dials, pings;
  const char *json;
  double *raw_mb, *bft_mb;     /* bulk MB/s, per round */
  double *hs_ms;               /* handshake, per dial */
  double *rtt_us, *raw_rtt_us; /* round trip, per ping */
} run_t;

/* Prints the figures (and writes them to --json). Sorts the samples. */
static void report(const run_t *x) {
  long mib = x->mib, rounds = x->rounds, dials = x->dials;
  const char *json = x->json;
  double raw_med = bb_median(x->raw_mb, (int)rounds), bft_med = bb_median(x->bft_mb, (int)rounds);
  qsort(x->hs_ms, (size_t)dials, sizeof *x->hs_ms, bb_cmp_double);
  qsort(x->rtt_us, (size_t)x->pings, sizeof *x->rtt_us, bb_cmp_double);
  qsort(x->raw_rtt_us, (size_t)x->pings, sizeof *x->raw_rtt_us, bb_cmp_double);
  double hs50 = bb_pct_sorted(x->hs_ms, (size_t)dials, 0.5);
  double hs99 = bb_pct_sorted(x->hs_ms, (size_t)dials, 0.99);
  double p50 = bb_pct_sorted(x->rtt_us, (size_t)x->pings, 0.5);
  double p99 = bb_pct_sorted(x->rtt_us, (size_t)x->pings, 0.99);
  double r50 = bb_pct_sorted(x->raw_rtt_us, (size_t)x->pings, 0.5);
  double r99 = bb_pct_sorted(x->raw_rtt_us, (size_t)x->pings, 0.99);
  printf("link_bench: %ld MiB x %ld rounds, medians, loopback, 2 processes\n", mib, rounds);
  printf("  bulk   raw TCP          %9.1f MB/s\n", raw_med);
  printf("  bulk   yamux over Noise %9.1f MB/s   ratio %.3f of raw TCP\n", bft_med,
         bft_med / raw_med);
  printf("  handshake (TCP+ms+Noise XX+ms)  p50 %.3f ms  p99 %.3f ms  (%ld dials)\n", hs50, hs99,
         dials);
  printf(
      "  ping rtt  bftnet  p50 %.1f us  p99 %.1f us   raw TCP ping-pong p50 %.1f us  p99 %.1f us\n",
      p50, p99, r50, r99);
  if (json) {
    FILE *f = fopen(json, "w");
    if (f) {
      fprintf(f,
              "{\"mib\":%ld,\"rounds\":%ld,\"raw_tcp_mbps\":%.1f,\"noise_yamux_mbps\":%.1f,"
              "\"ratio\":%.4f,\"handshake_ms_p50\":%.3f,\"handshake_ms_p99\":%.3f,"
              "\"ping_us_p50\":%.1f,\"ping_us_p99\":%.1f,\"raw_ping_us_p50\":%.1f,"
              "\"raw_ping_us_p99\":%.1f}\n",
              mib, rounds, raw_med, bft_med, bft_med / raw_med, hs50, hs99, p50, p99, r50, r99);
      fclose(f);
    }
  }
}

int main(int argc, char **argv) {
  long mib = 512, rounds = 3, dials = 50, pings = 1000;
  const char *json = NULL;
  static const struct option opts[] = {
      {"mib", 1, 0, 'm'}, {"rounds", 1, 0, 'r'}, {"json", 1, 0, 'j'}, {0, 0, 0, 0}};
  int o;
  while ((o = getopt_long(argc, argv, "m:r:j:", opts, NULL)) != -1) {
    if (o == 'm')
      mib = atol(optarg);
    else if (o == 'r')
      rounds = atol(optarg);
    else if (o == 'j')
      json = optarg;
    else
      return 2;
  }
  if (mib < 1 || rounds < 1 || rounds > 50) return 2;
  signal(SIGPIPE, SIG_IGN);
  size_t total = (size_t)mib << 20;

  char addr[BFTNET_ADDR_MAX];
  pid_t srv = spawn_server(addr, sizeof addr);
  char bare[BFTNET_ADDR_MAX]; /* without /p2p: every dial is a new connection */
  snprintf(bare, sizeof bare, "%.*s", (int)(strstr(addr, "/p2p/") - addr), addr);

  uv_loop_t loop;
  th_node_t node;
  if (node_up(&loop, &node, false)) return 1;

  double *raw_mb = calloc((size_t)rounds, sizeof(double));
  double *bft_mb = calloc((size_t)rounds, sizeof(double));
  int err;
  net_conn_t *c = th_dial(&loop, node.net, addr, &err, 10000);
  if (!c) {
    fprintf(stderr, "dial: %s\n", bftnet_strerror(err));
    return 1;
  }
  for (long r = 0; r < rounds; r++) {
    raw_mb[r] = raw_bulk(total);
    sender_t x = {.total = total};
    if (net_stream_open(c, "/bench/sink", &snd_cbs, &x, &x.s)) return 1;
    double t0 = bb_now();
    snd_pump(&x);
    if (!th_run_until(&loop, &x.done, 120000)) return 1;
    bft_mb[r] = (double)total / (bb_now() - t0) / 1e6;
  }

  double *hs_ms = calloc((size_t)dials, sizeof(double));
  for (long i = 0; i < dials; i++) {
    double t0 = bb_now();
    net_conn_t *d = th_dial(&loop, node.net, bare, &err, 10000);
    if (!d) return 1;
    hs_ms[i] = (bb_now() - t0) * 1e3;
    net_conn_close(d, BFTNET_REASON_LOCAL_CLOSE, 0);
  }
  double *rtt_us = calloc((size_t)pings, sizeof(double));
  double *raw_rtt_us = calloc((size_t)pings, sizeof(double));
  for (long i = 0; i < pings; i++) {
    uint64_t rtt;
    if (th_ping(&loop, c, &rtt, 5000) != 0) return 1;
    rtt_us[i] = (double)rtt / 1e3;
  }
  raw_pingpong((int)pings, raw_rtt_us);
  kill(srv, SIGKILL);
  waitpid(srv, NULL, 0);

  report(&(run_t){mib, rounds, dials, pings, json, raw_mb, bft_mb, hs_ms, rtt_us, raw_rtt_us});
  return 0;
}
