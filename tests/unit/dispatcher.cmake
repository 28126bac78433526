# dispatcher/: messages, the drop-oldest ring, the framer, backoff. The
# single-threaded test counts allocations through --wrap; the threaded one
# runs under ThreadSanitizer in scripts/test.sh (label "threads").
bftnet_test(dispatcher_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/dispatcher_test.c ${CMAKE_CURRENT_SOURCE_DIR}/lib/count_alloc.c LIBS bftnet_dispatcher)
target_link_options(dispatcher_test PRIVATE -Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc -Wl,--wrap=aligned_alloc -Wl,--wrap=free)
bftnet_test(dispatcher_ring_mt_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/dispatcher_ring_mt_test.c ${CMAKE_CURRENT_SOURCE_DIR}/lib/count_alloc.c LIBS bftnet_dispatcher Threads::Threads LABELS threads TIMEOUT 120)
target_link_options(dispatcher_ring_mt_test PRIVATE -Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc -Wl,--wrap=aligned_alloc -Wl,--wrap=free)
bftnet_test(dispatcher_blog_mt_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/dispatcher_blog_mt_test.c ${CMAKE_CURRENT_SOURCE_DIR}/lib/count_alloc.c LIBS bftnet_dispatcher Threads::Threads LABELS threads TIMEOUT 120)
target_link_options(dispatcher_blog_mt_test PRIVATE -Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc -Wl,--wrap=aligned_alloc -Wl,--wrap=free)
# Traffic classes' building blocks: the scheduler, keep-latest and byte-capped
# rings, the delay histogram.
bftnet_test(dispatcher_classes_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/dispatcher_classes_test.c ${CMAKE_CURRENT_SOURCE_DIR}/lib/count_alloc.c LIBS bftnet_dispatcher)
target_link_options(dispatcher_classes_test PRIVATE -Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc -Wl,--wrap=aligned_alloc -Wl,--wrap=free)
