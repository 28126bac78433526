# membership/ fuzzer: the JSON membership file (libFuzzer; BFTNET_FUZZ=ON with clang).
bftnet_fuzz(fuzz_membership_json SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_membership_json.c LIBS bftnet_membership)
