/*
 * confirm_cost — what confirming costs on the reverse path of one stream:
 * two bftnet nodes in one process (each on its own loop thread), A sends
 * N messages of SIZE bytes to B as fast as B takes them, B receives them;
 * then A flushes (everything confirmed). Prints, per delivered message: the
 * bytes B wrote (window updates, Confirms, pings: the reverse traffic that
 * confirmations ride on), the bytes A wrote, and the process CPU (user+sys,
 * both nodes). Build it against two builds and compare (docs/BENCHMARKS.md,
 * "Confirmations").
 *
 *   confirm_cost [SIZE [N [plain]]]     defaults 128 2000000
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bftnet.h"

static bftnet_t *A, *B;
static atomic_ullong got;
static atomic_bool done;
static unsigned long long sent_ok;

static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *receiver(void *arg) {
  (void)arg;
  bftnet_msg_t m[64];
  while (!atomic_load(&done)) {
    int k = bftnet_recv_batch(B, m, 64, 20);
    for (int i = 0; i < k; i++)
      bftnet_msg_release(&m[i]);
    if (k > 0) atomic_fetch_add(&got, (unsigned long long)k);
  }
  return NULL;
}

static bftnet_t *node(bftnet_key_t **key, bool plain, char *addr, size_t cap) {
  bftnet_config_t cfg;
  bftnet_config_init(&cfg);
  if (bftnet_key_generate(key) != 0) exit(1);
  cfg.key = *key;
  cfg.ring_capacity = 1u << 16;
  cfg.disable_migration = plain;
  cfg.log_level = 1;
  bftnet_t *n;
  if (bftnet_new(&n, &cfg) != 0 || bftnet_listen(n, "/ip4/127.0.0.1/tcp/0", addr, cap) != 0)
    exit(1);
  return n;
}

int main(int argc, char **argv) {
  size_t size = argc > 1 ? (size_t)atol(argv[1]) : 128;
  unsigned long long n = argc > 2 ? strtoull(argv[2], NULL, 10) : 2000000;
  bool plain = argc > 3 && strcmp(argv[3], "plain") == 0;
  signal(SIGPIPE, SIG_IGN);
  bftnet_key_t *ka, *kb;
  char aa[BFTNET_ADDR_MAX], ab[BFTNET_ADDR_MAX];
  A = node(&ka, plain, aa, sizeof aa);
  B = node(&kb, plain, ab, sizeof ab);
  const char *x[] = {aa}, *y[] = {ab};
  bftnet_member_t mem[] = {{"a", x, 1}, {"b", y, 1}};
  char err[200];
  if (bftnet_connect(A, mem, 2, err, sizeof err) || bftnet_connect(B, mem, 2, err, sizeof err))
    return 1;
  pthread_t rt;
  pthread_create(&rt, NULL, receiver, NULL);
  uint8_t *msg = calloc(1, size);
  /* Warm up: the connection and both streams. */
  for (int i = 0; i < 1000; i++)
    sent_ok += bftnet_send(A, "b", msg, size) == 0;
  while (atomic_load(&got) < 1000)
    usleep(1000);
  uint64_t b0 = bftnet_counter(B, BFTNET_COUNTER_BYTES_OUT),
           a0 = bftnet_counter(A, BFTNET_COUNTER_BYTES_OUT);
  unsigned long long g0 = atomic_load(&got);
  double c0 = cpu_s(), t0 = now_s();
  bftnet_peer_stats_t st;
  for (unsigned long long i = 0; i < n;) {
    /* Keep the ring under half full: nothing dropped. */
    if (bftnet_peer_stats(A, "b", &st) == 0 &&
        st.enqueued - st.sent - st.dropped_overflow > (1u << 15)) {
      usleep(100);
      continue;
    }
    for (int k = 0; k < 256 && i < n; k++, i++)
      sent_ok += bftnet_send(A, "b", msg, size) == 0;
  }
  while (atomic_load(&got) < g0 + n)
    usleep(500);
  double t1 = now_s();
  int frc = bftnet_flush(A, 10000);
  double c1 = cpu_s();
  uint64_t b1 = bftnet_counter(B, BFTNET_COUNTER_BYTES_OUT),
           a1 = bftnet_counter(A, BFTNET_COUNTER_BYTES_OUT);
  bftnet_peer_stats(A, "b", &st);
  printf("%s size %zu: %llu msgs in %.2f s (%.3f M/s); reverse bytes/msg %.4f; forward bytes/msg "
         "%.2f; "
         "CPU us/msg %.3f; flush %s; dropped %llu\n",
         plain ? "plain" : "migratable", size, n, t1 - t0, n / (t1 - t0) / 1e6,
         (double)(b1 - b0) / n, (double)(a1 - a0) / n, (c1 - c0) * 1e6 / n,
         frc == 0 ? "ok" : bftnet_strerror(frc), (unsigned long long)st.dropped_overflow);
  atomic_store(&done, true);
  pthread_join(rt, NULL);
  bftnet_free(A);
  bftnet_free(B);
  bftnet_key_free(ka);
  bftnet_key_free(kb);
  free(msg);
  return frc == 0 ? 0 : 1;
}
