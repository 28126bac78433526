#include <string.h>
#include <time.h>

#include "th_msg.h"

uint64_t th_mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t th_now_ms(void) {
  return th_mono_ns() / 1000000ull;
}

size_t th_msg_len(uint64_t seq) {
  return 16 + (size_t)(seq % 41);
}

void th_msg_fill(uint8_t *b, uint64_t seq) {
  size_t len = th_msg_len(seq);
  for (int k = 0; k < 8; k++)
    b[k] = (uint8_t)(seq >> (56 - 8 * k));
  for (size_t i = 8; i < len; i++)
    b[i] = (uint8_t)(seq * 7 + i);
}

bool th_msg_check(const uint8_t *p, size_t len, uint64_t seq) {
  uint8_t want[TH_MSG_MAX];
  if (len != th_msg_len(seq)) return false;
  th_msg_fill(want, seq);
  return memcmp(p, want, len) == 0;
}

uint64_t th_msg_seq(const uint8_t *p, size_t len) {
  uint64_t v = 0;
  for (size_t k = 0; k < 8 && k < len; k++)
    v = (v << 8) | p[k];
  return v;
}
