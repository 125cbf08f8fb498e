# Install rules. Two components, which are also the Debian packages (cmake/KsvcPackaging.cmake):
#   dev    headers, libksvc_module.a, the CMake package (ksvcConfig*.cmake) and ksvc.pc
#   tools  the command-line tools and their man pages (examples/CMakeLists.txt)
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS ksvc_core ksvc_executor ksvc_module ksvc EXPORT ksvcTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
        FILE_SET HEADERS DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)
install(EXPORT ksvcTargets NAMESPACE ksvc:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ksvc COMPONENT dev)
configure_package_config_file(cmake/ksvcConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/ksvcConfig.cmake
                              INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ksvc)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/ksvcConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/ksvcConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/ksvcConfigVersion.cmake
              cmake/Findliburing.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ksvc COMPONENT dev)

# pkg-config: prefix is found from the .pc file's own place (${pcfiledir}), so the same file
# serves /usr (the Debian package), /usr/local and a tree unpacked anywhere else.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(KSVC_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH _up "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
  set(KSVC_PC_PREFIX "\${pcfiledir}/${_up}")
endif()
foreach(kind LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${kind}}")
    set(KSVC_PC_${kind} "${CMAKE_INSTALL_${kind}}")
  else()
    set(KSVC_PC_${kind} "\${prefix}/${CMAKE_INSTALL_${kind}}")
  endif()
endforeach()
configure_file(cmake/ksvc.pc.in ${CMAKE_CURRENT_BINARY_DIR}/ksvc.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/ksvc.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)
