/* sim_alloc.c — see sim_alloc.h. One thread: plain counters. */
#include <execinfo.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_alloc.h"

/* The reserved __wrap_/__real_ names are the linker's --wrap contract. */
void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);
int __real_posix_memalign(void **out, size_t a, size_t n);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t k, size_t n);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_aligned_alloc(size_t a, size_t n);
int __wrap_posix_memalign(void **out, size_t a, size_t n);
void __wrap_free(void *p);

static int64_t g_live, g_peak, g_blocks;
static FILE *g_trace; /* SIM_ALLOC_TRACE=file: every allocation, to find a leak */

static void trace_open(void) {
  static int once;
  if (once++) return;
  const char *f = getenv("SIM_ALLOC_TRACE");
  if (f) g_trace = fopen(f, "w");
  if (g_trace) fprintf(g_trace, "base %p\n", (void *)sim_malloc);
}

static void *count_in(void *p) {
  trace_open();
  if (g_trace && p) {
    void *bt[6];
    int n = backtrace(bt, 6);
    fprintf(g_trace, "+ %p %zu", p, malloc_usable_size(p));
    for (int i = 2; i < n; i++)
      fprintf(g_trace, " %p", bt[i]);
    fprintf(g_trace, "\n");
  }
  if (p) {
    g_live += (int64_t)malloc_usable_size(p);
    g_blocks++;
    if (g_live > g_peak) g_peak = g_live;
  }
  return p;
}

static void count_out(void *p) {
  if (g_trace && p) fprintf(g_trace, "- %p\n", p);
  if (p) {
    g_live -= (int64_t)malloc_usable_size(p);
    g_blocks--;
  }
}

void *__wrap_malloc(size_t n) {
  return count_in(__real_malloc(n));
}
void *__wrap_calloc(size_t k, size_t n) {
  return count_in(__real_calloc(k, n));
}
void *__wrap_aligned_alloc(size_t a, size_t n) {
  return count_in(__real_aligned_alloc(a, n));
}

int __wrap_posix_memalign(void **out, size_t a, size_t n) {
  int rc = __real_posix_memalign(out, a, n);
  if (rc == 0) count_in(*out);
  return rc;
}

void *__wrap_realloc(void *p, size_t n) {
  size_t old = p ? malloc_usable_size(p) : 0;
  void *q = __real_realloc(p, n);
  if (!q) return NULL;
  g_live += (int64_t)malloc_usable_size(q) - (int64_t)old;
  if (!p) g_blocks++;
  if (g_live > g_peak) g_peak = g_live;
  return q;
}

void __wrap_free(void *p) {
  count_out(p);
  __real_free(p);
}

void *sim_malloc(size_t n) {
  void *p = __real_malloc(n ? n : 1);
  if (!p) abort();
  return p;
}

void *sim_calloc(size_t k, size_t n) {
  void *p = __real_calloc(k ? k : 1, n ? n : 1);
  if (!p) abort();
  return p;
}

void *sim_realloc(void *p, size_t n) {
  void *q = __real_realloc(p, n ? n : 1);
  if (!q) abort();
  return q;
}

void sim_free(void *p) {
  __real_free(p);
}

int64_t sim_lib_live_bytes(void) {
  return g_live;
}
int64_t sim_lib_peak_bytes(void) {
  return g_peak;
}
void sim_lib_peak_reset(void) {
  g_peak = g_live;
}
int64_t sim_lib_live_blocks(void) {
  return g_blocks;
}
