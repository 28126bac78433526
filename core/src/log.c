#include <stdarg.h>
#include <stdio.h>

#include <ck_pr.h>

#include "core.h"

static int g_level = BN_LOG_WARN;

void bn_log_set_level(int level) { ck_pr_store_int(&g_level, level); }
int bn_log_get_level(void) { return ck_pr_load_int(&g_level); }

__attribute__((format(printf, 3, 0))) static void vlog(int level, uint32_t suppressed,
                                                       const char *fmt, va_list ap) {
  static const char *names[] = {"", "error", "warn", "info", "debug"};
  char line[512];
  vsnprintf(line, sizeof line, fmt, ap);
  if (suppressed)
    fprintf(stderr, "bftnet %s: %s (%u similar suppressed)\n", names[level], line, suppressed);
  else
    fprintf(stderr, "bftnet %s: %s\n", names[level], line);
}

void bn_log(int level, const char *fmt, ...) {
  if (level > bn_log_get_level() || level < BN_LOG_ERROR) return;
  va_list ap;
  va_start(ap, fmt);
  vlog(level, 0, fmt, ap);
  va_end(ap);
}

void bn_log_rl(bn_ratelimit_t *rl, uint64_t now_ns, int level, const char *fmt, ...) {
  enum { BURST = 5 };
  if (now_ns - rl->window_start_ns >= 1000000000ull) {
    rl->window_start_ns = now_ns;
    rl->count = 0;
  }
  if (rl->count >= BURST) {
    rl->suppressed++;
    return;
  }
  rl->count++;
  if (level > bn_log_get_level() || level < BN_LOG_ERROR) return;
  uint32_t sup = rl->suppressed;
  rl->suppressed = 0;
  va_list ap;
  va_start(ap, fmt);
  vlog(level, sup, fmt, ap);
  va_end(ap);
}
