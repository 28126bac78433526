# js-libp2p interop tests (included from tests/CMakeLists.txt, so targets made
# here land in ${CMAKE_BINARY_DIR}/tests/). Each scenario is one ctest test that
# runs run_interop.sh; it exits 77 (skip) when Node >= 20 or
# tests/interop/node_modules is missing (scripts/deps.sh runs `npm ci` there).
if(NOT BFTNET_INTEROP)
  return()
endif()

set(_interop_dir ${CMAKE_CURRENT_LIST_DIR})
set(_interop_run ${_interop_dir}/run_interop.sh)

# bftnet_interop_test(SCENARIO [ENV var=value...])
function(bftnet_interop_test scenario)
  cmake_parse_arguments(I "" "" "ENV" ${ARGN})
  add_test(NAME interop_${scenario}
    COMMAND bash ${_interop_run} ${CMAKE_BINARY_DIR} ${scenario})
  set_tests_properties(interop_${scenario} PROPERTIES
    SKIP_RETURN_CODE 77 TIMEOUT 120 LABELS interop)
  if(I_ENV)
    set_tests_properties(interop_${scenario} PROPERTIES ENVIRONMENT "${I_ENV}")
  endif()
endfunction()

# The harness against itself: js listen + js dial.
bftnet_interop_test(js-self)

# The C peer: pings, serves /ipfs/ping/1.0.0 and /bftnet/echo/1.0.0 (listen),
# or pings and runs the echo protocol against js (dial). It is built on the
# test harness's network helpers (bftnet_th_net, tests/lib).
if(EXISTS ${_interop_dir}/interop_peer.c)
  add_executable(interop_peer ${_interop_dir}/interop_peer.c)
  target_link_libraries(interop_peer PRIVATE bftnet_th_net)
  set(_peer_env "INTEROP_PEER_BIN=$<TARGET_FILE:interop_peer>")
  if(TARGET bftnet-ping)
    bftnet_interop_test(c-dials-js ENV
      "BFTNET_PING_BIN=$<TARGET_FILE:bftnet-ping>" "${_peer_env}")
  else()
    message(STATUS "interop: tools/bftnet-ping.c not there yet; c-dials-js not registered")
  endif()
  bftnet_interop_test(js-dials-c ENV "${_peer_env}")
else()
  message(STATUS "interop: tests/interop/interop_peer.c not there yet; C scenarios not registered")
endif()

# Stream migration against a js-libp2p peer on its stock yamux that speaks
# docs/PROTOCOL.md section 11 (js_mig_peer.mjs): cuts, resumes, a graceful
# failback, flush on both sides. The driver runs bftnet and two fault proxies
# (tools/lib); it reads the pair's leader rule from the migration core.
if(TARGET bftnet_toolkit)
  add_executable(mig_interop ${_interop_dir}/mig_interop.c)
  target_link_libraries(mig_interop PRIVATE bftnet_static bftnet_toolkit bftnet_th_base
    Threads::Threads PkgConfig::UV)
  target_include_directories(mig_interop PRIVATE ${CMAKE_SOURCE_DIR}/migration/src
    ${CMAKE_SOURCE_DIR}/net/codec)
  bftnet_interop_test(js-migration ENV "MIG_INTEROP_BIN=$<TARGET_FILE:mig_interop>")
  set_tests_properties(interop_js-migration PROPERTIES TIMEOUT 180)
endif()
