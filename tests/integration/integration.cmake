# Integration tests: real nodes on loopback, driven on one libuv loop.
add_library(bftnet_th_net STATIC ${CMAKE_CURRENT_SOURCE_DIR}/lib/th_net.c)
target_include_directories(bftnet_th_net PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/lib
  ${CMAKE_SOURCE_DIR}/net/src ${CMAKE_SOURCE_DIR}/net/codec)
target_link_libraries(bftnet_th_net PUBLIC bftnet_net bftnet_testlib)

# A real bftnet node beside a hand-made peer on net_t (migration_byz_test,
# migration_confirm_test). The peer's key follows the pair's leader rule, from
# the migration core's private header (migration/src/mig_core.h).
add_library(bftnet_th_node STATIC ${CMAKE_CURRENT_SOURCE_DIR}/lib/th_node.c)
target_include_directories(bftnet_th_node PRIVATE ${CMAKE_SOURCE_DIR}/migration/src)
target_link_libraries(bftnet_th_node PUBLIC bftnet_static bftnet_th_net bftnet_th_base
  Threads::Threads PkgConfig::UV)

# Real bftnet nodes on 127.0.0.1 through the public API (messaging_test,
# classes_test, class_loss_test).
add_library(bftnet_th_app STATIC ${CMAKE_CURRENT_SOURCE_DIR}/lib/th_app.c)
target_link_libraries(bftnet_th_app PUBLIC bftnet_static bftnet_testlib)

bftnet_test(net_loopback_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/net_loopback_test.c
  LIBS bftnet_th_net TIMEOUT 120)

# Every normal close sends yamux GO_AWAY (code 0) first; other closes do not.
bftnet_test(net_goaway_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/net_goaway_test.c
  LIBS bftnet_th_net TIMEOUT 60)

# The libuv world seam: cross-thread wakeups, run modes, an owned loop.
bftnet_test(seam_uv_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/seam_uv_test.c
  LIBS bftnet_net bftnet_testlib bftnet_th_base Threads::Threads TIMEOUT 60 LABELS threads)

# Messaging through the public API: nodes on their own loop threads.
bftnet_test(messaging_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/messaging_test.c
  LIBS bftnet_th_app Threads::Threads PkgConfig::UV TIMEOUT 180 LABELS threads)

# Secure links through the fault-injecting proxy (tools/lib/fault_proxy).
if(TARGET bftnet_toolkit)
  bftnet_test(net_faults_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/net_faults_test.c
    LIBS bftnet_th_net bftnet_toolkit TIMEOUT 120)
endif()

# Migratable streams end to end through the fault proxy: cuts, blackholes,
# dial storms, failover/failback, address change, every exchange offset,
# restart, detach timeout.
if(TARGET bftnet_toolkit)
  bftnet_test(migration_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/migration_test.c
    LIBS bftnet_static bftnet_toolkit bftnet_th_base Threads::Threads PkgConfig::UV TIMEOUT 300
    LABELS threads)
endif()

# Stream migration against a real node (public API, own loop thread), driven
# by a hand-made peer on net_t that sends well-formed and Byzantine
# StreamMigration input (PROTOCOL.md section 11.10).
# It encodes and decodes those messages with the core's codec: the private
# core header (migration/src/mig_core.h) is a test-only include here.
bftnet_test(migration_byz_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/migration_byz_test.c
  LIBS bftnet_th_node Threads::Threads PkgConfig::UV TIMEOUT 120 LABELS threads
  PRIVATE_INC ${CMAKE_SOURCE_DIR}/migration/src)

# Confirmations (Confirm messages, never yamux window updates) and GO_AWAY
# against a real node, from a hand-made peer on net_t that reads every frame.
bftnet_test(migration_confirm_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/migration_confirm_test.c
  LIBS bftnet_th_node Threads::Threads PkgConfig::UV TIMEOUT 120 LABELS threads
  PRIVATE_INC ${CMAKE_SOURCE_DIR}/migration/src)

# A member that answers na to /libp2p/stream-migration gets plain streams.
bftnet_test(migration_na_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/migration_na_test.c
  LIBS bftnet_static bftnet_th_net Threads::Threads PkgConfig::UV TIMEOUT 60 LABELS threads)

# Traffic classes through the public API: validation, order and counts per
# class, keep-latest, the scheduling bound (bytes ahead of a vote), the
# minimum share, one full inbound queue alone, a class the peer lacks.
bftnet_test(classes_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/classes_test.c
  LIBS bftnet_th_app bftnet_th_base Threads::Threads PkgConfig::UV TIMEOUT 180 LABELS threads)

# The in-flight cap of a paced connection, behind a tbf link in a network
# namespace of the test's own (root; skips otherwise).
bftnet_test(class_inflight_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/class_inflight_test.c
  LIBS bftnet_th_app bftnet_th_base Threads::Threads TIMEOUT 120 LABELS threads)
set_tests_properties(class_inflight_test PROPERTIES SKIP_RETURN_CODE 77)

# Received messages lost before the application took them, per class: a
# TentativeReceiver's evictions (promoted or not), a removed member's unread
# queue; the per-class counts sum to the node counters.
bftnet_test(class_loss_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/class_loss_test.c
  LIBS bftnet_th_app bftnet_th_base TIMEOUT 120 LABELS threads)
