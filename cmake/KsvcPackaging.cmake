# Debian packages through CPack (`cpack -G DEB` in a build tree, or the packaging test):
#   libksvc-dev  the dev component: headers, libksvc_module.a, the CMake package, ksvc.pc
#   ksvc-tools   the tools component: ksvc-probe, ksvc-cp, ksvc-top and their man pages
# Each package carries its copyright file and Debian changelog, as Debian policy (and lintian)
# asks. Build them from an optimised, uninstrumented tree (the release preset): a sanitizer
# build would package instrumented tools.
set(KSVC_DEB_MAINTAINER "ksvc maintainers <maintainers@users.noreply.b-seed-e4a7d585.example>"
    CACHE STRING "Maintainer field of the Debian packages")

# The per-package documentation Debian requires: /usr/share/doc/<package>/{copyright,changelog.Debian.gz}.
# gzip -n: no name or timestamp in the header, so the package is reproducible.
find_program(KSVC_GZIP gzip REQUIRED)
set(_ksvc_changelog_gz ${CMAKE_CURRENT_BINARY_DIR}/packaging/changelog.Debian.gz)
add_custom_command(OUTPUT ${_ksvc_changelog_gz}
                   COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/packaging
                   COMMAND ${KSVC_GZIP} -9nc ${PROJECT_SOURCE_DIR}/cmake/debian/changelog > ${_ksvc_changelog_gz}
                   DEPENDS ${PROJECT_SOURCE_DIR}/cmake/debian/changelog
                   COMMENT "Compressing the Debian changelog")
add_custom_target(ksvc_package_docs ALL DEPENDS ${_ksvc_changelog_gz})
foreach(pair "dev;libksvc-dev" "tools;ksvc-tools")
  list(GET pair 0 component)
  list(GET pair 1 package)
  install(FILES ${PROJECT_SOURCE_DIR}/cmake/debian/copyright ${_ksvc_changelog_gz}
          DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/${package} COMPONENT ${component})
endforeach()

set(CPACK_PACKAGE_NAME ksvc)
set(CPACK_PACKAGE_VENDOR "ksvc")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${KSVC_DEB_MAINTAINER}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/packages)
set(CPACK_COMPONENTS_ALL dev tools)
set(CPACK_STRIP_FILES ON)
set(CPACK_GENERATOR DEB)

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${KSVC_DEB_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://github.com/ksvc/ksvc")
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libksvc-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
# The headers include liburing's and Boost.Hana's; the static library links liburing.
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "liburing-dev (>= 2.3), libboost-dev (>= 1.74)")
set(CPACK_COMPONENT_DEV_DESCRIPTION
    "C++20 library routing Linux system calls to io_uring, workers or user space\n\
ksvc routes each system call to the cheapest safe way of running it:\n\
answered from cached process data, translated into an io_uring submission,\n\
run on a worker thread, or refused when it alters the process. Every axis\n\
(router, backend, worker pool, notifier, buffers, completion sink) is a\n\
concept-constrained policy.\n\
.\n\
This package contains the headers, the static library libksvc_module.a,\n\
the CMake package (find_package(ksvc)) and the pkg-config file (ksvc.pc).")

set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME ksvc-tools)
set(CPACK_DEBIAN_TOOLS_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_TOOLS_PACKAGE_SHLIBDEPS ON)
set(CPACK_COMPONENT_TOOLS_DESCRIPTION
    "command-line tools built on the ksvc system call router\n\
ksvc routes each system call to the cheapest safe way of running it\n\
(io_uring, a worker thread pool or cached user-space answers).\n\
.\n\
This package contains ksvc-probe (what the running kernel's io_uring offers\n\
and where each system call is routed), ksvc-cp (a file and tree copy tool)\n\
and ksvc-top (live counters of running ksvc programs).")

include(CPack)
