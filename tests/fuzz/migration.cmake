# migration/ core fuzzer (libFuzzer; BFTNET_FUZZ=ON with clang). The core's
# header is private to migration/: migration/src is a test-only include here.
bftnet_fuzz(fuzz_migration SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_migration.c LIBS bftnet_migration
  PRIVATE_INC ${CMAKE_SOURCE_DIR}/migration/src)
# The confirmation stream's reader (a sequence of messages, cut anywhere).
bftnet_fuzz(fuzz_confirm_stream SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_confirm_stream.c LIBS bftnet_migration
  PRIVATE_INC ${CMAKE_SOURCE_DIR}/migration/src)
