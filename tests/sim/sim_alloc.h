/*
 * sim_alloc.h — the simulator's view of the heap. The simulator binary is
 * linked with -Wl,--wrap=malloc,calloc,realloc,free,aligned_alloc,
 * posix_memalign: every allocation of the library's code is counted (live
 * bytes, the peak), while the simulator's own bookkeeping goes through
 * sim_malloc & co., which are not. So "memory bounded" is measured through
 * the allocator, for the library only.
 */
#ifndef BFTNET_SIM_ALLOC_H
#define BFTNET_SIM_ALLOC_H

#include <stddef.h>
#include <stdint.h>

void *sim_malloc(size_t n);
void *sim_calloc(size_t k, size_t n);
void *sim_realloc(void *p, size_t n);
void sim_free(void *p);

/* The library's heap: bytes live now (usable sizes), their peak since the
 * last reset, blocks live now. */
int64_t sim_lib_live_bytes(void);
int64_t sim_lib_peak_bytes(void);
void sim_lib_peak_reset(void);
int64_t sim_lib_live_blocks(void);

#endif
