/*
 * msg_bench — two-node messaging throughput through the public API against
 * a raw-TCP baseline in the same run (loopback, two processes each).
 *   msg_bench [--size B] [--count N] [--rounds R]
 * The raw baseline frames messages the same way (uvarint length + bytes)
 * and writes them in 64 KiB batches: no crypto, no muxer, no queues.
 * Prints a table and one summary line per size:
 *   msg_bench size=128 bftnet_mps=... raw_mps=... ratio=...
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_harness.h"
#include "bftnet.h"

/* ------------------------------------------------------------ raw TCP */

static double raw_round(size_t size, long count) {
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sa;
  if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) || listen(lfd, 1)) exit(1);
  getsockname(lfd, (struct sockaddr *)&sa, &len);
  int p[2];
  if (pipe(p)) exit(1);
  pid_t pid = fork();
  if (pid == 0) { /* receiver: parse every message, report elapsed time */
    int fd = accept(lfd, NULL, NULL);
    static uint8_t buf[256 * 1024];
    size_t have = 0;
    long got = 0;
    double t0 = 0;
    while (got < count) {
      ssize_t n = read(fd, buf + have, sizeof buf - have);
      if (n <= 0) _exit(1);
      if (t0 == 0) t0 = bb_now();
      have += (size_t)n;
      size_t off = 0;
      for (;;) {
        uint64_t v = 0;
        size_t k = 0;
        int shift = 0;
        while (off + k < have && (buf[off + k] & 0x80))
          v |= (uint64_t)(buf[off + k] & 0x7f) << shift, shift += 7, k++;
        if (off + k >= have) break;
        v |= (uint64_t)buf[off + k] << shift;
        k++;
        if (off + k + v > have) break;
        off += k + v;
        got++;
      }
      memmove(buf, buf + off, have - off);
      have -= off;
    }
    double dt = bb_now() - t0;
    (void)!write(p[1], &dt, sizeof dt);
    _exit(0);
  }
  close(lfd);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa)) exit(1);
  static uint8_t batch[64 * 1024 + 16 * 1024 + 16];
  uint8_t *msg = calloc(1, size);
  size_t bl = 0;
  for (long i = 0; i < count; i++) {
    bl += bb_put_uvarint(batch + bl, size);
    memcpy(batch + bl, msg, size);
    bl += size;
    if (bl >= 64 * 1024 || i == count - 1) {
      for (size_t off = 0; off < bl;) {
        ssize_t n = write(fd, batch + off, bl - off);
        if (n <= 0) exit(1);
        off += (size_t)n;
      }
      bl = 0;
    }
  }
  double dt;
  if (read(p[0], &dt, sizeof dt) != sizeof dt) exit(1);
  close(fd);
  waitpid(pid, NULL, 0);
  free(msg);
  close(p[0]);
  close(p[1]);
  return (double)count / dt;
}

/* ------------------------------------------------------------- bftnet */

static bftnet_t *node_new(bftnet_key_t **key, char *addr) {
  bftnet_config_t cfg;
  bftnet_config_init(&cfg);
  if (bftnet_key_generate(key)) exit(1);
  cfg.key = *key;
  cfg.ring_capacity = 1 << 16;
  cfg.inbound_max_msgs = 1 << 16;
  cfg.yamux_window = 16u << 20;
  bftnet_t *n;
  if (bftnet_new(&n, &cfg) || bftnet_listen(n, "/ip4/127.0.0.1/tcp/0", addr, BFTNET_ADDR_MAX))
    exit(1);
  return n;
}

static void members(bftnet_t *n, const char *a0, const char *a1) {
  const char *x0[] = {a0}, *x1[] = {a1};
  bftnet_member_t m[] = {{"r0", x0, 1}, {"r1", x1, 1}};
  char err[256];
  if (bftnet_connect(n, m, 2, err, sizeof err)) {
    fprintf(stderr, "connect: %s\n", err);
    exit(1);
  }
}

static double bftnet_round(size_t size, long count) {
  int to_child[2], to_parent[2];
  if (pipe(to_child) || pipe(to_parent)) exit(1);
  pid_t pid = fork();
  if (pid == 0) { /* r1: receives count messages */
    bftnet_key_t *k;
    char mine[BFTNET_ADDR_MAX], peer[BFTNET_ADDR_MAX];
    bftnet_t *n = node_new(&k, mine);
    (void)!write(to_parent[1], mine, sizeof mine);
    if (read(to_child[0], peer, sizeof peer) != sizeof peer) _exit(1);
    members(n, peer, mine);
    bftnet_msg_t msgs[256];
    long got = 0;
    double t0 = 0;
    while (got < count) {
      int r = bftnet_recv_batch(n, msgs, 256, 10000);
      if (r < 0) {
        fprintf(stderr, "msg_bench: receiver: %s after %ld of %ld messages\n", bftnet_strerror(r),
                got, count);
        _exit(1);
      }
      if (t0 == 0) t0 = bb_now();
      for (int i = 0; i < r; i++)
        bftnet_msg_release(&msgs[i]);
      got += r;
    }
    double dt = bb_now() - t0;
    (void)!write(to_parent[1], &dt, sizeof dt);
    bftnet_free(n);
    bftnet_key_free(k);
    _exit(0);
  }
  bftnet_key_t *k;
  char mine[BFTNET_ADDR_MAX], peer[BFTNET_ADDR_MAX];
  bftnet_t *n = node_new(&k, mine);
  if (read(to_parent[0], peer, sizeof peer) != sizeof peer) exit(1);
  (void)!write(to_child[1], mine, sizeof mine);
  members(n, mine, peer);
  for (int i = 0; i < 500; i++) { /* wait for the stream */
    bftnet_peer_stats_t st;
    if (bftnet_peer_stats(n, "r1", &st) == 0 && st.connected) break;
    usleep(10000);
  }
  uint8_t *msg = calloc(1, size);
  for (long i = 0; i < count; i++) {
    /* Stay below the ring capacity: this measures throughput, not drops.
     * A ring that does not drain for 30 s means the receiver is gone. */
    if ((i & 1023) == 0) {
      bftnet_peer_stats_t st;
      double since = bb_now();
      while (bftnet_peer_stats(n, "r1", &st) == 0 && st.ring_depth > (1 << 15)) {
        if (bb_now() - since > 30) {
          fprintf(stderr, "msg_bench: the ring did not drain for 30 s after %ld sends\n", i);
          exit(1);
        }
        usleep(50);
      }
    }
    if (bftnet_send(n, "r1", msg, size)) exit(1);
  }
  double dt;
  if (read(to_parent[0], &dt, sizeof dt) != sizeof dt) exit(1);
  bftnet_peer_stats_t st;
  bftnet_peer_stats(n, "r1", &st);
  if (st.dropped_overflow)
    fprintf(stderr, "note: %llu dropped\n", (unsigned long long)st.dropped_overflow);
  waitpid(pid, NULL, 0);
  bftnet_free(n);
  bftnet_key_free(k);
  free(msg);
  return (double)(count - (long)st.dropped_overflow) / dt;
}

int main(int argc, char **argv) {
  long count = 1000000, rounds = 3;
  size_t sizes[8] = {128, 1024};
  int nsizes = 2;
  static const struct option opts[] = {
      {"size", 1, 0, 's'}, {"count", 1, 0, 'c'}, {"rounds", 1, 0, 'r'}, {0, 0, 0, 0}};
  int o;
  int sized = 0;

  while ((o = getopt_long(argc, argv, "s:c:r:", opts, NULL)) != -1) {
    if (o == 's') {
      if (!sized) nsizes = 0;
      sized = 1;
      if (nsizes < 8) sizes[nsizes++] = (size_t)atol(optarg);
    } else if (o == 'c')
      count = atol(optarg);
    else if (o == 'r')
      rounds = atol(optarg);
    else
      return 2;
  }
  if (count < 1 || rounds < 1 || rounds > 20) return 2;
  signal(SIGPIPE, SIG_IGN);
  printf("%-8s %14s %14s %8s\n", "size", "bftnet msg/s", "raw TCP msg/s", "ratio");
  for (int s = 0; s < nsizes; s++) {
    double b[20], r[20];
    for (long i = 0; i < rounds; i++) {
      r[i] = raw_round(sizes[s], count);
      b[i] = bftnet_round(sizes[s], count);
    }
    double bm = bb_median(b, (int)rounds), rm = bb_median(r, (int)rounds);
    printf("%-8zu %14.0f %14.0f %8.3f\n", sizes[s], bm, rm, bm / rm);
    printf("msg_bench size=%zu bftnet_mps=%.0f raw_mps=%.0f ratio=%.4f rounds=%ld count=%ld\n",
           sizes[s], bm, rm, bm / rm, rounds, count);
  }
  return 0;
}
