# The shared library exports the public API and nothing else.
add_test(NAME exports_only_public_api
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/unit/check_exports.sh $<TARGET_FILE:bftnet>
          ${CMAKE_SOURCE_DIR}/include/bftnet.h)

# cmake --install into a scratch prefix: the installed tools run, and a program
# outside the tree builds and runs with pkg-config and with find_package, with
# the same compiler and sanitizer flags as this build.
set(_app_flags)
if(BFTNET_ASAN)
  list(APPEND _app_flags -fsanitize=address,undefined)
endif()
if(BFTNET_TSAN)
  list(APPEND _app_flags -fsanitize=thread)
endif()
if(BFTNET_FUZZ)
  list(APPEND _app_flags -fsanitize=fuzzer-no-link)
endif()
add_test(NAME install_and_link COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/unit/install_test.sh
  ${CMAKE_BINARY_DIR} ${CMAKE_C_COMPILER} ${CMAKE_SOURCE_DIR} ${_app_flags})
set_tests_properties(install_and_link PROPERTIES TIMEOUT 120)
