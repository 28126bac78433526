# resume_bench: time from an abrupt cut to resumed delivery (migratable streams).
if(TARGET bftnet_toolkit)
  add_executable(resume_bench ${CMAKE_CURRENT_SOURCE_DIR}/resume_bench.c)
  target_link_libraries(resume_bench PRIVATE bftnet bftnet_toolkit bftnet_bench_harness PkgConfig::UV
    Threads::Threads)
endif()
