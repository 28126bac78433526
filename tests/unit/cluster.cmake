# bftnet-cluster (tools/cluster/, tools/lib/cluster_*): the pure
# helpers, then real runs of about 10 s each (ctest -L cluster): clean,
# cuts + kill -9/restart, membership change, path failover, and (as root)
# the same in network namespaces with a real link-down.
if(TARGET bftnet_toolkit)
  bftnet_test(cluster_stats_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/cluster_stats_test.c
    LIBS bftnet_toolkit bftnet_core LABELS cluster)
  bftnet_test(cluster_plan_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/cluster_plan_test.c
    LIBS bftnet_toolkit bftnet_core LABELS cluster)
endif()
if(TARGET bftnet-cluster AND TARGET bftnet-replica)
  # report.json checker (jq may be missing; jansson is a build dependency).
  add_executable(cluster_check ${CMAKE_CURRENT_SOURCE_DIR}/unit/cluster_check.c)
  target_link_libraries(cluster_check PRIVATE PkgConfig::JANSSON)
  foreach(mode clean faults members failover netns direct classes)
    add_test(NAME cluster_${mode} COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/unit/cluster_run.sh
      ${mode} $<TARGET_FILE:bftnet-cluster> $<TARGET_FILE:cluster_check>)
    set_tests_properties(cluster_${mode} PROPERTIES TIMEOUT 120 LABELS cluster)
  endforeach()
  # --netns needs root and `ip netns`: skipped (77) elsewhere.
  set_tests_properties(cluster_netns PROPERTIES SKIP_RETURN_CODE 77)
endif()
