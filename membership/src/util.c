/* util.c — error text helpers shared by the membership files. */
#include <stdarg.h>
#include <stdio.h>

#include "mb_internal.h"

void mb_errf(char *errbuf, size_t errcap, const char *fmt, ...) {
  if (!errbuf || errcap == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, errcap, fmt, ap);
  va_end(ap);
}

const char *mb_show(const char *s, size_t len, char buf[MB_SHOW_BUF]) {
  size_t n = BN_MIN(len, MB_SHOW_MAX);
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    buf[i] = (ch >= 0x20 && ch <= 0x7e) ? (char)ch : '?';
  }
  if (len > n) {
    memcpy(buf + n, "...", 3);
    n += 3;
  }
  buf[n] = '\0';
  return buf;
}
