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

stats_verdict_t rp_recv_fill(const stats_rx_t *rx, uint64_t rx_evicted, rp_recv_t *out) {
  stats_inc_t tot, cur;
  stats_rx_total(rx, &tot);
  stats_rx_current(rx, &cur);
  *out = (rp_recv_t){
      .delivered_current = cur.received,
      .max_seq = cur.max_seq,
      .first_seq = cur.first_seq,
      .gaps = tot.gaps,
      .duplicates = tot.duplicates,
      .reorders = tot.reorders,
      .stale = tot.stale,
      .rx_evicted = rx_evicted,
      .incarnations = rx->incarnations,
      .inc_by_event = rx->by_event,
      .inc_by_seq = rx->by_seq,
      .inc_seq_unexplained = rx->seq_unexplained,
  };
  return stats_rx_verdict(rx, rx_evicted);
}

void rp_recv_add(rp_recv_t *t, const rp_recv_t *r) {
#define RP_X_(f) t->f += r->f;
  RP_RECV_FIELDS(RP_X_)
#undef RP_X_
}
