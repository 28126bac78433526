# Noise: handshake messages, the libp2p payload, transport frames.
bftnet_fuzz(fuzz_noise_payload SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_noise_payload.c LIBS bftnet_net_codec PRIVATE_INC ${CMAKE_SOURCE_DIR}/net/codec)
bftnet_fuzz(fuzz_noise_handshake SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_noise_handshake.c LIBS bftnet_net_codec PRIVATE_INC ${CMAKE_SOURCE_DIR}/net/codec)
bftnet_fuzz(fuzz_noise_transport SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_noise_transport.c LIBS bftnet_net_codec PRIVATE_INC ${CMAKE_SOURCE_DIR}/net/codec)
