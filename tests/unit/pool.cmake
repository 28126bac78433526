# core/src/pool.c: the cache of message buffers. One program, two tests: the
# single-threaded checks (allocations counted through --wrap) and, with the
# argument "mt", two threads trading buffers through ck rings, run under
# ThreadSanitizer in scripts/test.sh (label "threads").
bftnet_test(pool_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/pool_test.c ${CMAKE_CURRENT_SOURCE_DIR}/lib/count_alloc.c LIBS bftnet_core)
target_link_options(pool_test PRIVATE -Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc -Wl,--wrap=aligned_alloc -Wl,--wrap=free)
bftnet_test(pool_mt_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/pool_test.c ${CMAKE_CURRENT_SOURCE_DIR}/lib/count_alloc.c LIBS bftnet_core Threads::Threads ARGS mt LABELS threads TIMEOUT 120)
target_link_options(pool_mt_test PRIVATE -Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc -Wl,--wrap=aligned_alloc -Wl,--wrap=free)
