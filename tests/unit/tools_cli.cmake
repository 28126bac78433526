# Every tool's command line (-h/--help, --version, unknown options, missing
# values) and the README's synopses against each --help: flags and exit
# codes (tools/*, README.md "Tools" and "Running a cluster").
find_package(Python3 COMPONENTS Interpreter)
if(Python3_FOUND)
  add_test(NAME tools_cli COMMAND Python3::Interpreter
    ${CMAKE_CURRENT_SOURCE_DIR}/unit/tools_cli_test.py --complete ${CMAKE_SOURCE_DIR}/README.md
    ${PROJECT_VERSION} $<TARGET_FILE:bftnet-keygen> $<TARGET_FILE:bftnet-ping>
    $<TARGET_FILE:bftnet-proxy> $<TARGET_FILE:bftnet-replica> $<TARGET_FILE:bftnet-cluster>)
  set_tests_properties(tools_cli PROPERTIES TIMEOUT 60)
endif()
