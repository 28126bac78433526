/* count_alloc.c — see count_alloc.h. */
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "count_alloc.h"

/* The reserved __wrap_/__real_ names are the linker's --wrap contract. */
void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t k, size_t n);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_aligned_alloc(size_t a, size_t n);
void __wrap_free(void *p);

static atomic_long g_live;
static atomic_long g_mallocs;
static atomic_size_t g_last_n;
static atomic_int g_fail_in = -1;
static _Atomic(const void *) g_watch;
static atomic_int g_watch_frees;

static bool alloc_should_fail(void) {
  if (atomic_load(&g_fail_in) < 0) return false;
  return atomic_fetch_sub(&g_fail_in, 1) == 0;
}

void *__wrap_malloc(size_t n) {
  atomic_store(&g_last_n, n);
  if (alloc_should_fail()) return NULL;
  void *p = __real_malloc(n);
  if (p) {
    atomic_fetch_add(&g_live, 1);
    atomic_fetch_add(&g_mallocs, 1);
  }
  return p;
}

void *__wrap_calloc(size_t k, size_t n) {
  if (alloc_should_fail()) return NULL;
  void *p = __real_calloc(k, n);
  if (p) atomic_fetch_add(&g_live, 1);
  return p;
}

void *__wrap_realloc(void *p, size_t n) {
  void *q = __real_realloc(p, n);
  if (p == NULL && q != NULL) atomic_fetch_add(&g_live, 1);
  return q;
}

void *__wrap_aligned_alloc(size_t a, size_t n) {
  if (alloc_should_fail()) return NULL;
  void *p = __real_aligned_alloc(a, n);
  if (p) atomic_fetch_add(&g_live, 1);
  return p;
}

void __wrap_free(void *p) {
  if (p == NULL) return;
  if (p == atomic_load(&g_watch)) atomic_fetch_add(&g_watch_frees, 1);
  atomic_fetch_sub(&g_live, 1);
  __real_free(p);
}

long th_live_blocks(void) {
  return atomic_load(&g_live);
}
long th_mallocs(void) {
  return atomic_load(&g_mallocs);
}
size_t th_last_malloc_size(void) {
  return atomic_load(&g_last_n);
}
void th_fail_alloc_in(int n) {
  atomic_store(&g_fail_in, n);
}
int th_fail_alloc_pending(void) {
  return atomic_load(&g_fail_in);
}

void th_watch_free(const void *p) {
  atomic_store(&g_watch_frees, 0);
  atomic_store(&g_watch, p);
}

int th_watched_frees(void) {
  return atomic_load(&g_watch_frees);
}
