# link_bench: secure-link throughput / handshake / ping against raw TCP.
if(TARGET bftnet_th_net)
  add_executable(link_bench ${CMAKE_CURRENT_SOURCE_DIR}/link_bench.c)
  target_link_libraries(link_bench PRIVATE bftnet_th_net bftnet_bench_harness)
endif()
