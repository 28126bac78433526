# class_bench: votes behind blocks, with and without traffic classes (one
# process per node on loopback; ratios within one run).
add_executable(class_bench ${CMAKE_CURRENT_SOURCE_DIR}/class_bench.c)
target_link_libraries(class_bench PRIVATE bftnet bftnet_bench_harness Threads::Threads)
