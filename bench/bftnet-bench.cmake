# bftnet-bench: bftnet against ZeroMQ (with and without CURVE), raw TCP with
# one ChaCha20-Poly1305 per 16 KiB record, and raw TCP, in one run
# (docs/BENCHMARKS.md). Plus the ctest smoke test `bench_smoke`.
#
# This file has two uses. Included by bench/CMakeLists.txt it defines the
# target and the test; run as a script (`cmake -DBENCH=... -DJSON=... -P
# bftnet-bench.cmake`) it is the smoke test itself: it runs the quick bench
# and checks that the JSON parses and has every top-level key.

if(CMAKE_SCRIPT_MODE_FILE)
  execute_process(COMMAND ${BENCH} --quick --sizes 128 --rounds 1 --json ${JSON}
    RESULT_VARIABLE rc TIMEOUT 50)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "bftnet-bench exited with ${rc}")
  endif()
  file(READ ${JSON} doc)
  foreach(key schema date host config throughput ratios migration rtt broadcast
              all_to_all memory targets failures elapsed_seconds)
    string(JSON type ERROR_VARIABLE err TYPE "${doc}" ${key})
    if(err)
      message(FATAL_ERROR "bench JSON: no key '${key}' (${err})")
    endif()
  endforeach()
  string(JSON schema GET "${doc}" schema)
  string(JSON nt LENGTH "${doc}" throughput)
  string(JSON nv LENGTH "${doc}" targets)
  string(JSON nf LENGTH "${doc}" failures)
  if(NOT schema STREQUAL "bftnet-bench/1" OR nt LESS 6 OR nv LESS 1 OR NOT nf EQUAL 0)
    message(FATAL_ERROR "bench JSON: schema '${schema}', ${nt} throughput rows, ${nv} targets, ${nf} failures")
  endif()
  # Every throughput row of the run measured something.
  math(EXPR last "${nt} - 1")
  foreach(i RANGE ${last})
    string(JSON mps GET "${doc}" throughput ${i} msgs_per_s)
    string(JSON sys GET "${doc}" throughput ${i} system)
    if(mps STREQUAL "null" OR mps STREQUAL "" OR mps LESS_EQUAL 0)
      message(FATAL_ERROR "bench JSON: ${sys} measured no throughput")
    endif()
  endforeach()
  message(STATUS "bench JSON ok: ${nt} throughput rows, ${nv} targets")
  return()
endif()

pkg_check_modules(ZMQ IMPORTED_TARGET libzmq)
if(NOT ZMQ_FOUND)
  message(STATUS "bftnet-bench: libzmq not found (libzmq3-dev): not built")
  return()
endif()

add_executable(bftnet-bench
  ${CMAKE_CURRENT_SOURCE_DIR}/bftnet_bench.c
  ${CMAKE_CURRENT_SOURCE_DIR}/bench_report.c
  ${CMAKE_CURRENT_SOURCE_DIR}/bench_bftnet.c
  ${CMAKE_CURRENT_SOURCE_DIR}/bench_zmq.c
  ${CMAKE_CURRENT_SOURCE_DIR}/bench_tcp.c)
# The crypto limit uses bftnet's own cipher code: the library target that
# holds it (aead.h is private to that target: its include dirs come with it).
target_include_directories(bftnet-bench PRIVATE
  $<TARGET_PROPERTY:bftnet_net_codec,INCLUDE_DIRECTORIES>)
target_link_libraries(bftnet-bench PRIVATE bftnet_bench_harness bftnet bftnet_net_codec
  PkgConfig::ZMQ PkgConfig::SODIUM PkgConfig::UV PkgConfig::JANSSON Threads::Threads m)
if(BFTNET_TESTS)
  add_test(NAME bench_smoke
    COMMAND ${CMAKE_COMMAND} -DBENCH=$<TARGET_FILE:bftnet-bench>
            -DJSON=${CMAKE_CURRENT_BINARY_DIR}/bench_smoke.json
            -P ${CMAKE_CURRENT_LIST_FILE})
  set_tests_properties(bench_smoke PROPERTIES TIMEOUT 60 LABELS bench RUN_SERIAL TRUE)
  # Its command line, as every tool's (tests/unit/tools_cli_test.py).
  find_package(Python3 COMPONENTS Interpreter)
  if(Python3_FOUND)
    add_test(NAME bench_cli COMMAND Python3::Interpreter
      ${CMAKE_SOURCE_DIR}/tests/unit/tools_cli_test.py ${CMAKE_SOURCE_DIR}/README.md
      ${PROJECT_VERSION} $<TARGET_FILE:bftnet-bench>)
    set_tests_properties(bench_cli PROPERTIES TIMEOUT 60)
  endif()
endif()
