# yamux: a client and a server session fed arbitrary bytes, with callbacks acting on the input.
bftnet_fuzz(fuzz_yamux SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_yamux.c LIBS bftnet_net_codec PRIVATE_INC ${CMAKE_SOURCE_DIR}/net/codec)
