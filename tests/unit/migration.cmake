# migration/: the pure core (IDs, codec, logical streams, registry).
bftnet_test(migration_sm_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/migration_sm_test.c LIBS bftnet_migration)
bftnet_test(migration_sim_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/migration_sim_test.c LIBS bftnet_migration TIMEOUT 300)
bftnet_test(mig_ring_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/mig_ring_test.c LIBS bftnet_migration)
