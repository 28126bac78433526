# migration/: the pure core (IDs, codec, state machine, registry). The tests
# drive it directly: its header (migration/src/mig_core.h) is private to the
# folder, so they get migration/src as a test-only include directory.
set(MIG_CORE_INC ${CMAKE_SOURCE_DIR}/migration/src)
bftnet_test(migration_sm_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/migration_sm_test.c LIBS bftnet_migration
  PRIVATE_INC ${MIG_CORE_INC})
bftnet_test(migration_sim_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/migration_sim_test.c LIBS bftnet_migration
  PRIVATE_INC ${MIG_CORE_INC} TIMEOUT 300)
bftnet_test(mig_ring_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/mig_ring_test.c LIBS bftnet_migration
  PRIVATE_INC ${MIG_CORE_INC})
bftnet_test(migration_order_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/migration_order_test.c LIBS bftnet_migration
  PRIVATE_INC ${MIG_CORE_INC})
