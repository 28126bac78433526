# receiver/ fuzzers (libFuzzer; BFTNET_FUZZ=ON with clang).
bftnet_fuzz(fuzz_deframer SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_deframer.c LIBS bftnet_receiver)
