/* text.c — see text.h. */
#include "text.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void text_say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
}

void text_buf_init(text_buf_t *b, char *buf, size_t cap) {
  *b = (text_buf_t){.p = buf, .cap = cap};
  if (cap) buf[0] = '\0';
}

void text_vaddf(text_buf_t *b, const char *fmt, va_list ap) {
  char *dst = b->used < b->cap ? b->p + b->used : NULL;
  size_t room = b->used < b->cap ? b->cap - b->used : 0;
  int k = vsnprintf(dst, room, fmt, ap);
  if (k > 0) b->used += (size_t)k;
}

void text_addf(text_buf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  text_vaddf(b, fmt, ap);
  va_end(ap);
}

void text_sep(text_buf_t *b, const char *sep) {
  if (b->parts++) text_addf(b, "%s", sep);
}

void text_bad_option(const char *prog, char *const *argv, int c) {
  const char *arg = optind > 0 ? argv[optind - 1] : "?";
  if (c == ':')
    fprintf(stderr, "%s: option '%s' needs a value\n", prog, arg);
  else if (optopt && strncmp(arg, "--", 2) != 0)
    fprintf(stderr, "%s: unknown option '-%c'\n", prog, optopt);
  else
    fprintf(stderr, "%s: unknown option '%s'\n", prog, arg);
}

bool text_parse_num(const char *s, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !(v >= lo && v <= hi)) return false;
  *out = v;
  return true;
}
