/*
 * count_alloc.h — a thread-safe count of live heap blocks, for tests that
 * must show every block they cause is freed (leaked message references).
 * Link the test with count_alloc.c and
 *   -Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc -Wl,--wrap=free
 * (tests/unit/dispatcher.cmake); every allocation of the process is
 * counted, so compare counts taken around the code under test.
 */
#ifndef BFTNET_TEST_COUNT_ALLOC_H
#define BFTNET_TEST_COUNT_ALLOC_H

/* Blocks allocated and not yet freed, process-wide. */
long th_live_blocks(void);

#endif
