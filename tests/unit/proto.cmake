# proto/ codecs: uvarint, length-prefixed, multistream, base58, peer IDs,
# multiaddrs, and protobufs through the capped arena.
bftnet_test(proto_uvarint_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/proto_uvarint_test.c LIBS bftnet_proto)
bftnet_test(proto_lp_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/proto_lp_test.c LIBS bftnet_proto)
bftnet_test(proto_multistream_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/proto_multistream_test.c LIBS bftnet_proto)
bftnet_test(proto_base58_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/proto_base58_test.c LIBS bftnet_proto)
bftnet_test(proto_peerid_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/proto_peerid_test.c LIBS bftnet_proto)
bftnet_test(proto_multiaddr_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/proto_multiaddr_test.c LIBS bftnet_proto)
bftnet_test(proto_pb_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/proto_pb_test.c LIBS bftnet_proto)
