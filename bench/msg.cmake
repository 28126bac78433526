# msg_bench: two-node messaging throughput through the public API vs raw TCP.
add_executable(msg_bench ${CMAKE_CURRENT_SOURCE_DIR}/msg_bench.c)
target_link_libraries(msg_bench PRIVATE bftnet bftnet_bench_harness)
