# The shared library exports the public API and nothing else.
add_test(NAME exports_only_public_api
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/unit/check_exports.sh $<TARGET_FILE:bftnet>
          ${CMAKE_SOURCE_DIR}/include/bftnet.h)
