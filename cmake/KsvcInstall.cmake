include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS ksvc_core ksvc_executor ksvc_module ksvc EXPORT ksvcTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        FILE_SET HEADERS DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT ksvcTargets NAMESPACE ksvc:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ksvc)
configure_package_config_file(cmake/ksvcConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/ksvcConfig.cmake
                              INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ksvc)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/ksvcConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/ksvcConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/ksvcConfigVersion.cmake
              cmake/Findliburing.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ksvc)
