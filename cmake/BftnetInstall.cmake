# What `cmake --install` puts where, and how a program outside the tree finds it.
# Included from the top-level CMakeLists.txt once the `bftnet` target exists and
# before the tools are defined (the RPATH and the install component below apply
# to the targets created after this file).
#
#   lib    libbftnet.so.0 (the runtime: Debian package libbftnet0)
#   dev    include/bftnet.h, the libbftnet.so link, bftnet.pc, the CMake
#          package bftnetConfig.cmake (libbftnet-dev)
#   tools  every install() without a COMPONENT after this point: the tools
#          (bftnet-tools)
#
# Only the shared library is installed: the static one (bftnet_static) is the
# tests' and would need every module archive with it, so neither bftnet.pc nor
# the CMake package mention it.

include(CMakePackageConfigHelpers)

if(NOT TARGET bftnet)
  message(FATAL_ERROR "cmake/BftnetInstall.cmake: include it after the bftnet target is defined")
endif()

# In-tree users (add_subdirectory, examples/) spell the library as installed users do.
if(NOT TARGET bftnet::bftnet)
  add_library(bftnet::bftnet ALIAS bftnet)
endif()

# Installed executables find libbftnet.so.0 relative to themselves, so a
# prefix chosen at install time (`cmake --install build --prefix P`) works and
# the Debian package needs no system-wide path ($ORIGIN is allowed there).
file(RELATIVE_PATH _bftnet_bin_to_lib "${CMAKE_INSTALL_FULL_BINDIR}" "${CMAKE_INSTALL_FULL_LIBDIR}")
set(CMAKE_INSTALL_RPATH "$ORIGIN/${_bftnet_bin_to_lib}")
set(CMAKE_INSTALL_DEFAULT_COMPONENT_NAME tools)

# The tools' --version (for the targets of this directory and those added after).
add_compile_definitions(BFTNET_TOOLS_VERSION="${PROJECT_VERSION}")

# Installed users get include/ (unless the target already says so).
get_target_property(_bftnet_inc bftnet INTERFACE_INCLUDE_DIRECTORIES)
set(_bftnet_inc_dest)
if(NOT "${_bftnet_inc}" MATCHES "INSTALL_INTERFACE")
  set(_bftnet_inc_dest INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endif()
install(TARGETS bftnet EXPORT bftnetTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT lib NAMELINK_COMPONENT dev
  ${_bftnet_inc_dest})
install(FILES ${PROJECT_SOURCE_DIR}/include/bftnet.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)

# pkg-config: the .pc finds the prefix from its own place, so any install
# prefix works without editing it.
file(RELATIVE_PATH BFTNET_PC_TO_PREFIX "${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig" "${CMAKE_INSTALL_PREFIX}")
string(REGEX REPLACE "/$" "" BFTNET_PC_TO_PREFIX "${BFTNET_PC_TO_PREFIX}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/bftnet.pc.in ${PROJECT_BINARY_DIR}/bftnet.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/bftnet.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)

# CMake: find_package(bftnet CONFIG REQUIRED) gives the imported target bftnet::bftnet.
set(BFTNET_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/bftnet)
install(EXPORT bftnetTargets NAMESPACE bftnet:: DESTINATION ${BFTNET_CMAKE_DIR} COMPONENT dev)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/bftnetConfig.cmake.in
  ${PROJECT_BINARY_DIR}/bftnetConfig.cmake INSTALL_DESTINATION ${BFTNET_CMAKE_DIR})
# 0.x: a minor version may break the API, so only the same minor is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/bftnetConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/bftnetConfig.cmake ${PROJECT_BINARY_DIR}/bftnetConfigVersion.cmake
  DESTINATION ${BFTNET_CMAKE_DIR} COMPONENT dev)
