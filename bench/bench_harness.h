/*
 * bench_harness.h — the clocks and statistics every benchmark here uses
 * (bench_harness.c, library bftnet_bench_harness): monotonic time, CPU
 * time, medians and percentiles, a log-linear latency histogram, uvarints.
 * bftnet-bench's process harness is declared in bftnet_bench.h.
 */
#ifndef BFTNET_BENCH_HARNESS_H
#define BFTNET_BENCH_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#define BB_HIST_SUBBITS 5 /* latency histogram: 32 buckets per octave (<= 3.1 %) */
#define BB_HIST_SUB     (1u << BB_HIST_SUBBITS)
#define BB_HIST_BUCKETS (2 * BB_HIST_SUB + (64 - BB_HIST_SUBBITS - 1) * BB_HIST_SUB)

double bb_now(void);        /* CLOCK_MONOTONIC, seconds */
uint64_t bb_now_ns(void);   /* CLOCK_MONOTONIC, ns */
double bb_cpu_self(void);   /* getrusage(RUSAGE_SELF): user + sys seconds */
double bb_cpu_thread(void); /* CLOCK_THREAD_CPUTIME_ID, seconds */
void bb_sleep(double s);
long bb_rss_bytes(void); /* /proc/self/statm resident pages * page size, -1 if unknown */
int bb_cmp_double(const void *a, const void *b);
double bb_median(const double *v, int n); /* NaN-free values; n >= 1; does not reorder v */
double bb_pct_sorted(const double *v, size_t n, double p); /* nearest rank on sorted v */
void bb_hist_add(uint64_t *h, uint64_t v);
uint64_t bb_hist_count(const uint64_t *h);
double bb_hist_pct(const uint64_t *h, double p); /* bucket middle, ns; NaN if empty */
size_t bb_put_uvarint(uint8_t *p, uint64_t v);
/* Decodes one uvarint from p[0, n): bytes used, 0 if incomplete, -1 if too long. */
int bb_get_uvarint(const uint8_t *p, size_t n, uint64_t *v);

#endif
