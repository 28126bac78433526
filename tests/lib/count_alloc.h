/*
 * count_alloc.h — the tests' counting allocator: live heap blocks, malloc
 * calls and the size last asked of malloc, injected allocation failures,
 * and the frees of one watched pointer. Thread-safe. Link the test with
 * count_alloc.c and
 *   -Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc
 *   -Wl,--wrap=aligned_alloc -Wl,--wrap=free
 * (tests/unit/dispatcher.cmake, pool.cmake). Every allocation of the
 * process is counted, so compare counts taken around the code under test.
 */
#ifndef BFTNET_TEST_COUNT_ALLOC_H
#define BFTNET_TEST_COUNT_ALLOC_H

#include <stddef.h>

/* Blocks allocated and not yet freed, process-wide. */
long th_live_blocks(void);
/* malloc calls that returned a block. */
long th_mallocs(void);
/* The size of the last malloc call (failed or not). */
size_t th_last_malloc_size(void);
/* Fails the allocation (malloc, calloc, aligned_alloc; never realloc) n
 * from now: 0 = the next one; -1 = none. */
void th_fail_alloc_in(int n);
/* What is left of that countdown: -1 once the failure happened (or none
 * was asked for). */
int th_fail_alloc_pending(void);
/* Counts the frees of p from now on (NULL: of nothing). */
void th_watch_free(const void *p);
int th_watched_frees(void);

#endif
