# proto/ codec fuzzers (libFuzzer; BFTNET_FUZZ=ON with clang).
bftnet_fuzz(fuzz_uvarint SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_uvarint.c LIBS bftnet_proto)
bftnet_fuzz(fuzz_lp SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_lp.c LIBS bftnet_proto)
bftnet_fuzz(fuzz_multistream SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_multistream.c LIBS bftnet_proto)
bftnet_fuzz(fuzz_multiaddr SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_multiaddr.c LIBS bftnet_proto)
bftnet_fuzz(fuzz_peerid SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_peerid.c LIBS bftnet_proto)
bftnet_fuzz(fuzz_pb_migration SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_pb_migration.c LIBS bftnet_proto)
