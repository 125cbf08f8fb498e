# Findliburing — provides liburing::liburing.
# Sets liburing_VERSION from the pkg-config file when available, and checks which helpers newer
# than liburing 2.3 the header has (KSVC_HAVE_* compile definitions on the imported target).
find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND)
  pkg_check_modules(PC_LIBURING QUIET liburing)
endif()
find_path(liburing_INCLUDE_DIR liburing.h HINTS ${PC_LIBURING_INCLUDE_DIRS})
find_library(liburing_LIBRARY NAMES uring HINTS ${PC_LIBURING_LIBRARY_DIRS})
set(liburing_VERSION ${PC_LIBURING_VERSION})

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(liburing REQUIRED_VARS liburing_LIBRARY liburing_INCLUDE_DIR
                                  VERSION_VAR liburing_VERSION)

if(liburing_FOUND AND NOT TARGET liburing::liburing)
  add_library(liburing::liburing UNKNOWN IMPORTED)
  set_target_properties(liburing::liburing PROPERTIES IMPORTED_LOCATION "${liburing_LIBRARY}"
                                                      INTERFACE_INCLUDE_DIRECTORIES "${liburing_INCLUDE_DIR}")
  include(CheckSymbolExists)
  set(CMAKE_REQUIRED_INCLUDES ${liburing_INCLUDE_DIR})
  # Helpers that appeared after 2.3; ksvc defines what it needs itself when they are absent.
  foreach(sym io_uring_prep_bind io_uring_prep_listen io_uring_prep_pipe io_uring_prep_ftruncate
              io_uring_setup_buf_ring io_uring_prep_recv_multishot io_uring_prep_read_multishot)
    string(TOUPPER ${sym} _up)
    check_symbol_exists(${sym} liburing.h KSVC_HAVE_${_up})
    if(KSVC_HAVE_${_up})
      set_property(TARGET liburing::liburing APPEND PROPERTY INTERFACE_COMPILE_DEFINITIONS KSVC_HAVE_${_up}=1)
    endif()
  endforeach()
  unset(CMAKE_REQUIRED_INCLUDES)
endif()
mark_as_advanced(liburing_INCLUDE_DIR liburing_LIBRARY)
