# bftnet-keygen's command line (tools/bftnet-keygen.c).
add_test(NAME keygen_cli COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/unit/keygen_cli_test.sh
  $<TARGET_FILE:bftnet-keygen>)
set_tests_properties(keygen_cli PROPERTIES TIMEOUT 30)
