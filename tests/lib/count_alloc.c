/* count_alloc.c — see count_alloc.h. */
#include <stdatomic.h>
#include <stddef.h>

#include "count_alloc.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t k, size_t n);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);

static atomic_long g_live;

void *__wrap_malloc(size_t n) {
  void *p = __real_malloc(n);
  if (p) atomic_fetch_add(&g_live, 1);
  return p;
}

void *__wrap_calloc(size_t k, size_t n) {
  void *p = __real_calloc(k, n);
  if (p) atomic_fetch_add(&g_live, 1);
  return p;
}

void *__wrap_realloc(void *p, size_t n) {
  void *q = __real_realloc(p, n);
  if (p == NULL && q != NULL) atomic_fetch_add(&g_live, 1);
  return q;
}

void __wrap_free(void *p) {
  if (p == NULL) return;
  atomic_fetch_sub(&g_live, 1);
  __real_free(p);
}

long th_live_blocks(void) { return atomic_load(&g_live); }
