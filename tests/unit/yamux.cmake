# yamux: the session state machine (net/codec/yamux.c), end to end and as tables.
bftnet_test(yamux_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/yamux_test.c LIBS bftnet_net_codec PRIVATE_INC ${CMAKE_SOURCE_DIR}/net/codec)
bftnet_test(yamux_table_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/yamux_table_test.c LIBS bftnet_net_codec PRIVATE_INC ${CMAKE_SOURCE_DIR}/net/codec)
bftnet_test(yamux_oom_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/yamux_oom_test.c LIBS bftnet_net_codec PRIVATE_INC ${CMAKE_SOURCE_DIR}/net/codec)
target_link_options(yamux_oom_test PRIVATE -Wl,--wrap=calloc) # allocation-failure injection
