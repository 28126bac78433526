# The public API's contracts: error texts that name what to fix, output
# buffers that are too small, per-node logs (api_errors_test); what loop
# callbacks and the application's loop may call (api_loop_test).
bftnet_test(api_errors_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/api_errors_test.c
  LIBS bftnet_static TIMEOUT 60)
bftnet_test(api_loop_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/api_loop_test.c
  LIBS bftnet_static Threads::Threads PkgConfig::UV TIMEOUT 120 LABELS threads)
# Messages above a member's max_message_size: refused on send, skipped and
# counted on receipt while the stream goes on (a hand-made peer on net/
# plays one that never says its limit).
bftnet_test(api_oversize_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/api_oversize_test.c
  LIBS bftnet_static bftnet_th_net Threads::Threads PkgConfig::UV TIMEOUT 120 LABELS threads)
