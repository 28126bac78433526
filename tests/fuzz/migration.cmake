# migration/ core fuzzer (libFuzzer; BFTNET_FUZZ=ON with clang).
bftnet_fuzz(fuzz_migration SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_migration.c LIBS bftnet_migration)
