/* replica.c — the replica's state and the helpers every file uses. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "replica.h"

struct rp rp = {
    .send_mu = PTHREAD_MUTEX_INITIALIZER, .rx_mu = PTHREAD_MUTEX_INITIALIZER, .phase = "sending"};

const char *const rp_ev_names[RP_EV_N] = {"migrated", "detached", "resumed",
                                          "aborted",  "denied",   "peer_restarted"};

uint64_t rp_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

void rp_sleep_until(uint64_t t) {
  struct timespec ts = {.tv_sec = (time_t)(t / NS_PER_S), .tv_nsec = (long)(t % NS_PER_S)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
  }
}

void rp_log(const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  fprintf(stderr, "bftnet-replica %s: %s\n", rp.o.id ? rp.o.id : "?", line);
}

uint64_t rp_ms_since_start(void) {
  uint64_t now = rp_now_ns();
  uint64_t t0 = atomic_load(&rp.t0_pub); /* the loop thread calls this too */
  return t0 && now > t0 ? (now - t0) / NS_PER_MS : 0;
}
