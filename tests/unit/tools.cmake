# tools/lib (bftnet_toolkit): the fault SPEC parser and the fault-injecting proxy.
bftnet_test(fault_spec_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/fault_spec_test.c LIBS bftnet_toolkit bftnet_core)
bftnet_test(fault_proxy_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/fault_proxy_test.c LIBS bftnet_toolkit bftnet_core TIMEOUT 60)
