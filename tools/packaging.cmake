# What `cmake --install` puts where (GNUInstallDirs), and the Debian packages `make package` makes
# of it (CPack, one package per install component):
#
#   component  package        holds
#   daemon     coproc         coprocd, coproc-stat, coproc-bench (+ its ORT worker script), the
#                             systemd unit, the example config, the docs, and libcoproc.so.0
#   sdk        libcoproc-dev  coproc.h, the libcoproc.so link, the CMake package, coproc.pc, the
#                             example client; Depends: coproc (= the same version)
#
# The shared library ships in the daemon's package rather than a libcoproc0 of its own: coproc is
# a local coprocessor, so every host whose services link libcoproc runs coprocd, and the library
# speaks the daemon's segment and ring protocol (a mismatch is refused at connect), so the two
# must be installed and upgraded together, which one package guarantees. coproc-bench links it
# too. The -dev package is only for building clients, as Debian users expect.

install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT daemon)
file(GLOB _docs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/docs/*.md)
install(FILES ${_docs} DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT daemon)

set(CPACK_PACKAGE_NAME coproc)
set(CPACK_PACKAGE_VENDOR coproc)
set(CPACK_PACKAGE_CONTACT "coproc maintainers <coproc@localhost>")
set(CPACK_PACKAGE_DIRECTORY ${CMAKE_BINARY_DIR}/packages)
set(CPACK_GENERATOR DEB)
set(CPACK_COMPONENTS_ALL daemon sdk)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # <package>_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION misc)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Depends of the binaries' shared libraries, from dpkg-shlibdeps (dpkg-dev, and `file`).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)

set(CPACK_DEBIAN_DAEMON_PACKAGE_NAME coproc)
set(CPACK_DEBIAN_DAEMON_PACKAGE_SECTION misc)
set(CPACK_DEBIAN_DAEMON_DESCRIPTION
  "local inference coprocessor: the daemon, its tools and the client library
coprocd serves ONNX models to the processes of one host through shared memory,
batching their requests on the CPU (OpenBLAS) or an OpenCL device. This
package holds the daemon, coproc-stat (its status), coproc-bench (latency and
load), a systemd unit, an example configuration, and libcoproc, the runtime
library the clients link.")
# What dpkg-shlibdeps cannot see: the GPU device needs an OpenCL implementation (an ICD) behind
# the ICD loader it links; without one coprocd runs on the CPU, so it is a recommendation.
# `coproc-bench ort` runs ONNX Runtime in Python (pip's onnxruntime; Debian has none).
set(CPACK_DEBIAN_DAEMON_PACKAGE_RECOMMENDS "pocl-opencl-icd | opencl-icd")
set(CPACK_DEBIAN_DAEMON_PACKAGE_SUGGESTS "python3-numpy")
# A shlibs file, so packages of client services get "Depends: coproc (>= this version)" from
# their own dpkg-shlibdeps, and ldconfig in postinst, as for any package with a shared library.
# Each description's first line is its synopsis (no CPACK_PACKAGE_DESCRIPTION_SUMMARY, which
# CPack would put before it).
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")

set(CPACK_DEBIAN_SDK_PACKAGE_NAME libcoproc-dev)
set(CPACK_DEBIAN_SDK_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_SDK_DESCRIPTION
  "local inference coprocessor: client SDK
Everything to build a client of coprocd in C or C++: coproc.h, the libcoproc
link, a CMake package (find_package(coproc)), a pkg-config file (coproc.pc)
and an example client.")
# The exact version of the daemon package, which holds the library and its protocol.
set(CPACK_COMPONENT_SDK_DEPENDS daemon)
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)
set(CPACK_DEBIAN_SDK_PACKAGE_DEPENDS "libc6-dev | libc-dev")
set(CPACK_DEBIAN_SDK_PACKAGE_RECOMMENDS "pkgconf | pkg-config")

include(CPack)
