# Debian packages with CPack, one per install component (cmake/BftnetInstall.cmake):
#
#   libbftnet0     libbftnet.so.0                           (component lib)
#   libbftnet-dev  bftnet.h, libbftnet.so, bftnet.pc, CMake  (component dev)
#   bftnet-tools   bftnet-keygen, bftnet-ping, bftnet-replica, ... (component tools)
#
#   cmake -S . -B build -DCMAKE_INSTALL_PREFIX=/usr   # /usr: the multiarch libdir
#   cmake --build build -j
#   cd build && cpack -G DEB                          # or: cpack -G DEB --config build/CPackConfig.cmake
#
# Runtime dependencies come from dpkg-shlibdeps (Debian: dpkg-dev), so they
# name the library packages the build really linked (libuv1, libsodium23, ...).
# The packages install under /usr whatever CMAKE_INSTALL_PREFIX is; configure
# with -DCMAKE_INSTALL_PREFIX=/usr so that the library goes to the multiarch
# directory (/usr/lib/<triplet>) rather than /usr/lib.

set(BFTNET_DEB_MAINTAINER "bftnet developers <bftnet-dev@lists.example.org>"
  CACHE STRING "Maintainer field of the Debian packages")
set(BFTNET_DEB_RELEASE 1 CACHE STRING "Debian revision of the packages (the -N of 0.1.0-N)")

set(CPACK_PACKAGE_NAME bftnet)
set(CPACK_PACKAGE_VENDOR bftnet)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${BFTNET_DEB_MAINTAINER}")
set(CPACK_STRIP_FILES TRUE)
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL lib dev tools)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE ${BFTNET_DEB_RELEASE})
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${BFTNET_DEB_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)

# Depends: from dpkg-shlibdeps; the tools' libbftnet.so.0 is found in this
# build (it is in no installed package yet) and its package named below.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
get_target_property(_bftnet_libdir bftnet LIBRARY_OUTPUT_DIRECTORY)
if(NOT _bftnet_libdir)
  get_target_property(_bftnet_libdir bftnet BINARY_DIR)
endif()
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${_bftnet_libdir})
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)

set(CPACK_DEBIAN_LIB_PACKAGE_NAME libbftnet0)
set(CPACK_DEBIAN_LIB_PACKAGE_SECTION libs)
# DEBIAN/shlibs for libbftnet.so.0 (only the lib package has a shared object)
# and the ldconfig trigger; CPack adds an ldconfig call to postinst/postrm too.
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
set(CPACK_DEBIAN_LIB_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/cmake/deb/triggers)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_COMPONENT_LIB_DESCRIPTION "networking module for BFT consensus replicas
bftnet carries a Byzantine-fault-tolerant replica's messages to the other
members of its cluster over the libp2p wire protocols (TCP, Noise, yamux),
in order per member, with bounded and counted loss, and moves each
member's stream to another connection when one breaks.
.
This package contains the shared library.")

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libbftnet-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_COMPONENT_DEV_DEPENDS lib)
set(CPACK_COMPONENT_DEV_DESCRIPTION "networking module for BFT consensus replicas - development files
bftnet carries a Byzantine-fault-tolerant replica's messages to the other
members of its cluster over the libp2p wire protocols (TCP, Noise, yamux).
.
This package contains the header bftnet.h, the pkg-config file and the
CMake package (find_package(bftnet CONFIG) gives bftnet::bftnet).")

set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME bftnet-tools)
set(CPACK_DEBIAN_TOOLS_PACKAGE_SECTION net)
set(CPACK_COMPONENT_TOOLS_DEPENDS lib)
set(CPACK_COMPONENT_TOOLS_DESCRIPTION "tools for bftnet, the networking module of BFT replicas
bftnet-keygen makes identity keys and prints peer IDs, bftnet-ping checks a
peer, bftnet-replica is a load-test replica and bftnet-cluster runs a local
cluster of them with fault injection.")

# Every package carries its copyright file and changelog
# (/usr/share/doc/<package>/), installed only when a component is packaged.
set(_bftnet_deb_doc ${PROJECT_BINARY_DIR}/deb-doc)
file(MAKE_DIRECTORY ${_bftnet_deb_doc})
string(TIMESTAMP _bftnet_deb_date "%a, %d %b %Y %H:%M:%S +0000" UTC) # honours SOURCE_DATE_EPOCH
foreach(_c lib dev tools)
  string(TOUPPER ${_c} _C)
  set(_pkg ${CPACK_DEBIAN_${_C}_PACKAGE_NAME})
  set(BFTNET_DEB_PACKAGE ${_pkg})
  set(BFTNET_DEB_DATE "${_bftnet_deb_date}")
  configure_file(${PROJECT_SOURCE_DIR}/cmake/deb/changelog.in ${_bftnet_deb_doc}/${_pkg}/changelog.Debian @ONLY)
  execute_process(COMMAND gzip -9nf ${_bftnet_deb_doc}/${_pkg}/changelog.Debian RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(WARNING "gzip failed: the Debian packages will lack their changelog")
  endif()
  install(FILES ${PROJECT_SOURCE_DIR}/cmake/deb/copyright ${_bftnet_deb_doc}/${_pkg}/changelog.Debian.gz
    DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/${_pkg} COMPONENT ${_c} EXCLUDE_FROM_ALL)
endforeach()

include(CPack)
