# tools/: bftnet-replica's statistics (tools/lib/stats.*) and the replica pair.
if(TARGET bftnet_toolkit)
  bftnet_test(stats_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/stats_test.c LIBS bftnet_toolkit)
endif()
if(TARGET bftnet-replica AND TARGET bftnet-keygen)
  add_test(NAME replica_pair COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/replica_pair.sh
    $<TARGET_FILE:bftnet-replica> $<TARGET_FILE:bftnet-keygen>)
  set_tests_properties(replica_pair PROPERTIES TIMEOUT 60 LABELS "integration;threads")
endif()
