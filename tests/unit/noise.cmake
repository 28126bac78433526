# Noise XX, the libp2p handshake payload, and the identity key (net/codec/noise.c, identity.c).
bftnet_test(noise_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/noise_test.c LIBS bftnet_net_codec PkgConfig::SODIUM PRIVATE_INC ${CMAKE_SOURCE_DIR}/net/codec)
bftnet_test(noise_libp2p_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/noise_libp2p_test.c LIBS bftnet_net_codec PkgConfig::SODIUM PRIVATE_INC ${CMAKE_SOURCE_DIR}/net/codec)
bftnet_test(identity_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/identity_test.c LIBS bftnet_net_codec PkgConfig::SODIUM PRIVATE_INC ${CMAKE_SOURCE_DIR}/net/codec)
# ChaCha20-Poly1305 (net/codec/aead.c): the implementation in use against
# libsodium's, byte for byte; tampering; threads (label "threads": TSan).
bftnet_test(aead_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/aead_test.c LIBS bftnet_net_codec PkgConfig::SODIUM Threads::Threads PRIVATE_INC ${CMAKE_SOURCE_DIR}/net/codec LABELS threads)
if(LIBCRYPTO_FOUND)
  target_compile_definitions(aead_test PRIVATE BFTNET_HAVE_OPENSSL)
endif()
