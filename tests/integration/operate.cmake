# Operating bftnet (docs/OPERATING.md): events that say what happened,
# the members' health, the metrics; then the metrics of real replicas
# checked by promtool and scraped by a real Prometheus server.
bftnet_test(events_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/events_test.c
  LIBS bftnet_static Threads::Threads TIMEOUT 120 LABELS threads)

# The metrics of real replicas: promtool's check, and a real Prometheus
# server scraping three replicas (both skip, 77, where the Debian package
# prometheus is missing).
if(TARGET bftnet-replica AND TARGET bftnet-keygen)
  foreach(t metrics_promtool metrics_prometheus)
    add_test(NAME ${t} COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/${t}.sh
      $<TARGET_FILE:bftnet-replica> $<TARGET_FILE:bftnet-keygen>)
    set_tests_properties(${t} PROPERTIES TIMEOUT 90 SKIP_RETURN_CODE 77 LABELS "integration;threads")
  endforeach()
endif()
