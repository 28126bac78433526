# core/src/log.c: per-logger levels and callbacks, the rate limiter.
bftnet_test(log_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/log_test.c LIBS bftnet_core)
