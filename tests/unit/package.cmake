# Debian packages (cmake/BftnetPackage.cmake): built with cpack, extracted,
# the example built and run against them, lintian without errors. Skipped in
# sanitizer builds and without dpkg-dev/lintian.
if(BFTNET_ASAN OR BFTNET_TSAN OR BFTNET_FUZZ)
  set(_pkg_mode sanitized)
else()
  set(_pkg_mode plain)
endif()
add_test(NAME deb_packages COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/unit/package_test.sh
  ${CMAKE_BINARY_DIR} ${CMAKE_SOURCE_DIR} ${CMAKE_C_COMPILER} ${CMAKE_CPACK_COMMAND} ${_pkg_mode})
set_tests_properties(deb_packages PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77 LABELS packaging)
