/* log.c — a node's log lines: its level, its callback or stderr, and the
 * per-site rate limiter. */
#include <stdarg.h>
#include <stdio.h>

#include "core.h"

__attribute__((format(printf, 4, 0))) static void
vlog(const bn_logger_t *lg, int level, uint32_t suppressed, const char *fmt, va_list ap) {
  static const char *names[] = {"", "error", "warn", "info", "debug"};
  char line[512];
  int n = vsnprintf(line, sizeof line, fmt, ap);
  if (n >= 0 && suppressed && (size_t)n < sizeof line)
    snprintf(line + n, sizeof line - (size_t)n, " (%u similar suppressed)", suppressed);
  if (lg && lg->cb)
    lg->cb(level, line, lg->user);
  else
    fprintf(stderr, "bftnet %s: %s\n", names[level], line);
}

void bn_log(const bn_logger_t *lg, int level, const char *fmt, ...) {
  if (!bn_log_enabled(lg, level)) return;
  va_list ap;
  va_start(ap, fmt);
  vlog(lg, level, 0, fmt, ap);
  va_end(ap);
}

void bn_log_rl(const bn_logger_t *lg, bn_ratelimit_t *rl, uint64_t now_ns, int level,
               const char *fmt, ...) {
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
  if (!bn_log_enabled(lg, level)) return;
  uint32_t sup = rl->suppressed;
  rl->suppressed = 0;
  va_list ap;
  va_start(ap, fmt);
  vlog(lg, level, sup, fmt, ap);
  va_end(ap);
}
