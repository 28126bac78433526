# examples/embed.c: compiled by gcc and clang with warnings as errors, run as
# two replicas started half a second apart, and shown verbatim in the README.
add_test(NAME embed_compilers COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/unit/embed_compile.sh
  ${CMAKE_SOURCE_DIR}/examples/embed.c ${CMAKE_SOURCE_DIR}/include $<TARGET_LINKER_FILE:bftnet>
  $<IF:$<OR:$<BOOL:${BFTNET_ASAN}>,$<BOOL:${BFTNET_TSAN}>,$<BOOL:${BFTNET_FUZZ}>>,sanitized,plain>)
add_test(NAME embed_two_processes COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/unit/embed_run.sh
  $<TARGET_FILE:embed_example> $<TARGET_FILE:bftnet-keygen>)
add_test(NAME embed_readme COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/unit/embed_readme.sh
  ${CMAKE_SOURCE_DIR}/README.md ${CMAKE_SOURCE_DIR}/examples/embed.c)
set_tests_properties(embed_compilers embed_two_processes embed_readme PROPERTIES LABELS example)
set_tests_properties(embed_compilers PROPERTIES TIMEOUT 120 SKIP_RETURN_CODE 77)
set_tests_properties(embed_two_processes PROPERTIES TIMEOUT 90)
