/*
 * text.h — small text helpers shared by the tools: a line on stdout for a
 * reader at the other end of a pipe, a bounded appender that builds one
 * string from parts, and a strict number parser for command-line values.
 * No allocation; the appender works on caller-owned memory.
 */
#ifndef BFTNET_TOOLS_TEXT_H
#define BFTNET_TOOLS_TEXT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/* Prints fmt and a newline on stdout and flushes it: the live lines of
 * bftnet-cluster and the answers of bftnet-proxy, which a script or a
 * terminal reads as they come. */
void text_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * A string built from parts into buf[0, cap). The text stays NUL-terminated
 * and is cut at the capacity: a part that does not fit is cut, and every part
 * after it is dropped. `used` counts what snprintf would have written, so it
 * may pass `cap` (used >= cap: something was cut).
 */
typedef struct text_buf {
  char *p;
  size_t cap, used;
  unsigned parts; /* text_sep calls so far */
} text_buf_t;

/* Starts an empty string in buf (buf[0] = '\0' when cap > 0). */
void text_buf_init(text_buf_t *b, char *buf, size_t cap);
void text_addf(text_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void text_vaddf(text_buf_t *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Starts the next part of a list: adds sep before every part but the first. */
void text_sep(text_buf_t *b, const char *sep);

/* Parses the whole of s as a number in [lo, hi] (strtod: decimal, hex,
 * exponents). Returns false, leaving *out alone, on anything else. */
bool text_parse_num(const char *s, double lo, double hi, double *out);

/* Every tool's command line: -h/--help prints the usage on stdout and exits
 * 0, --version prints "PROG VERSION" (the project's version from CMake)
 * and exits 0, bad usage says what is wrong and prints the synopsis on
 * stderr and exits 2. The version: */
#ifndef BFTNET_TOOLS_VERSION
#define BFTNET_TOOLS_VERSION "unknown"
#endif
/* After getopt_long (with opterr = 0 and an optstring that starts with ':')
 * returned '?' (an unknown option) or ':' (a value missing): names the
 * option on stderr as "PROG: unknown option '--x'" or "PROG: option '--x'
 * needs a value". */
void text_bad_option(const char *prog, char *const *argv, int c);

#endif
