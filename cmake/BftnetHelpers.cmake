# Compiler flags, sanitizers, and one-line test/fuzz registration helpers.

function(bftnet_setup_flags)
  add_compile_options(-Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
    -Wno-unused-parameter -Wvla -Wpointer-arith -Wformat=2 -fno-common)
  if(BFTNET_WERROR)
    add_compile_options(-Werror)
  endif()
  # Assertions stay on in every build type: a broken invariant stops a release build too.
  string(REPLACE "-DNDEBUG" "" _r "${CMAKE_C_FLAGS_RELWITHDEBINFO}")
  set(CMAKE_C_FLAGS_RELWITHDEBINFO "${_r}" PARENT_SCOPE)
  string(REPLACE "-DNDEBUG" "" _r "${CMAKE_C_FLAGS_RELEASE}")
  set(CMAKE_C_FLAGS_RELEASE "${_r}" PARENT_SCOPE)
  add_compile_definitions(_GNU_SOURCE)
  if(BFTNET_ASAN AND BFTNET_TSAN)
    message(FATAL_ERROR "BFTNET_ASAN and BFTNET_TSAN are exclusive")
  endif()
  if(BFTNET_ASAN)
    add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
    add_link_options(-fsanitize=address,undefined)
  endif()
  if(BFTNET_TSAN)
    add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
    add_link_options(-fsanitize=thread)
  endif()
  if(BFTNET_FUZZ)
    if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
      message(FATAL_ERROR "BFTNET_FUZZ needs clang (CC=clang)")
    endif()
    add_compile_options(-fsanitize=fuzzer-no-link)
  endif()
endfunction()

# bftnet_module(NAME SOURCES... DEPS...): a static module library.
# The module folder is its PUBLIC include dir (its exposed header lives there);
# private headers live in src/ and are visible to the module and its tests only.
function(bftnet_module name)
  cmake_parse_arguments(M "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  if(NOT M_SOURCES)
    # A module with no code yet: an interface library keeps the layering.
    add_library(${name} INTERFACE)
    target_include_directories(${name} INTERFACE ${CMAKE_CURRENT_SOURCE_DIR})
    target_link_libraries(${name} INTERFACE ${M_DEPS})
    return()
  endif()
  add_library(${name} STATIC ${M_SOURCES})
  target_include_directories(${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}
    PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_link_libraries(${name} PUBLIC ${M_DEPS} PRIVATE ${M_PRIVATE_DEPS})
  target_compile_definitions(${name} PRIVATE BFTNET_BUILDING)
endfunction()

# bftnet_test(NAME SOURCES... LIBS... [PRIVATE_INC dirs] [TIMEOUT s] [LABELS l]):
# one process per test, with a timeout (libuv's rule).
function(bftnet_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;PRIVATE_INC;LABELS;ARGS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} bftnet_testlib)
  target_include_directories(${name} PRIVATE ${T_PRIVATE_INC})
  add_test(NAME ${name} COMMAND ${name} ${T_ARGS})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 60)
  endif()
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT})
  if(T_LABELS)
    set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}")
  endif()
endfunction()

# bftnet_fuzz(NAME SOURCE LIBS... [PRIVATE_INC dirs]): a libFuzzer target plus a
# bounded run in the default suite (BFTNET_FUZZ_SECONDS) over its seed corpus.
function(bftnet_fuzz name)
  cmake_parse_arguments(F "" "" "SOURCES;LIBS;PRIVATE_INC" ${ARGN})
  if(NOT BFTNET_FUZZ)
    return()
  endif()
  add_executable(${name} ${F_SOURCES})
  target_compile_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(${name} PRIVATE ${F_LIBS})
  target_include_directories(${name} PRIVATE ${F_PRIVATE_INC})
  set(corpus ${CMAKE_CURRENT_LIST_DIR}/corpus/${name})
  set(work ${CMAKE_CURRENT_BINARY_DIR}/corpus-${name})
  add_test(NAME ${name}
    COMMAND ${CMAKE_COMMAND} -E env ${CMAKE_SOURCE_DIR}/tests/fuzz/run_fuzz.sh
            $<TARGET_FILE:${name}> ${corpus} ${work} ${BFTNET_FUZZ_SECONDS})
  math(EXPR _to "${BFTNET_FUZZ_SECONDS} + 60")
  set_tests_properties(${name} PROPERTIES TIMEOUT ${_to} LABELS fuzz)
endfunction()
