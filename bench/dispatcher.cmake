# ring_bench: dispatcher/ ring push/pop (1 thread, producers + consumer, bare
# ck_ring for comparison) and framer throughput.
add_executable(ring_bench ${CMAKE_CURRENT_SOURCE_DIR}/ring_bench.c)
target_link_libraries(ring_bench PRIVATE bftnet_dispatcher bftnet_bench_harness Threads::Threads)
