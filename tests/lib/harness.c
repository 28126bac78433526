#include <time.h>

#include "harness.h"

uint8_t *th_hex(const char *hex, size_t *len) {
  size_t n = strlen(hex) / 2;
  uint8_t *out = malloc(n ? n : 1);
  if (!out) abort();
  for (size_t i = 0; i < n; i++) {
    unsigned v;
    if (sscanf(hex + 2 * i, "%2x", &v) != 1) abort();
    out[i] = (uint8_t)v;
  }
  *len = n;
  return out;
}

void th_test_filter(void) {
  const char *f = getenv("BFTNET_TEST_FILTER");
  if (f && *f) cmocka_set_test_filter(f);
}

uint64_t th_seed(void) {
  static uint64_t seed;
  static int done;
  if (!done) {
    const char *e = getenv("BFTNET_SEED");
    seed = e ? strtoull(e, NULL, 0) : (uint64_t)time(NULL);
    fprintf(stderr, "test seed: BFTNET_SEED=%llu\n", (unsigned long long)seed);
    done = 1;
  }
  return seed;
}
