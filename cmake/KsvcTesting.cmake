# ksvc_add_test(NAME <name> SOURCES <files...> LABELS <labels...> [TIMEOUT <s>] [NEEDS_IO_URING])
# One Boost.Test executable = one ctest entry. Tests that need io_uring exit 77 when the kernel
# refuses it (ctest reports them skipped, never passed).
find_package(Boost 1.74 REQUIRED COMPONENTS unit_test_framework)

function(ksvc_add_test)
  cmake_parse_arguments(T "NEEDS_IO_URING" "NAME;TIMEOUT" "SOURCES;LABELS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_executable(${T_NAME} ${T_SOURCES} ${PROJECT_SOURCE_DIR}/tests/support/main.cpp)
  target_include_directories(${T_NAME} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  target_link_libraries(${T_NAME} PRIVATE ksvc::ksvc Boost::unit_test_framework)
  target_compile_definitions(${T_NAME} PRIVATE BOOST_TEST_DYN_LINK
                                               $<$<BOOL:${T_NEEDS_IO_URING}>:KSVC_TEST_NEEDS_IO_URING=1>)
  ksvc_own_code(${T_NAME})
  add_test(NAME ${T_NAME} COMMAND ${T_NAME} --log_level=test_suite --report_level=short)
  set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT} SKIP_RETURN_CODE 77)
endfunction()

# ksvc_add_compile_fail(NAME <name> SOURCE <file> EXPECT <regex>)
# Two tests: <name> must fail to compile with a diagnostic matching EXPECT, and <name>_twin
# (the same file with -DKSVC_TWIN) must compile — so a failure is never an unrelated typo.
function(ksvc_add_compile_fail)
  cmake_parse_arguments(T "" "NAME;SOURCE;EXPECT" "" ${ARGN})
  foreach(variant fail twin)
    set(tgt cf_${T_NAME}_${variant})
    add_library(${tgt} OBJECT EXCLUDE_FROM_ALL ${T_SOURCE})
    target_include_directories(${tgt} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
    target_link_libraries(${tgt} PRIVATE ksvc::ksvc)
    if(variant STREQUAL "twin")
      target_compile_definitions(${tgt} PRIVATE KSVC_TWIN=1)
    endif()
    add_test(NAME compile_fail.${T_NAME}.${variant}
             COMMAND ${CMAKE_COMMAND} --build ${PROJECT_BINARY_DIR} --target ${tgt})
    set_tests_properties(compile_fail.${T_NAME}.${variant} PROPERTIES LABELS compile_fail TIMEOUT 300
                         RESOURCE_LOCK compile_fail)
    if(variant STREQUAL "fail")
      set_tests_properties(compile_fail.${T_NAME}.${variant} PROPERTIES PASS_REGULAR_EXPRESSION "${T_EXPECT}")
    endif()
  endforeach()
endfunction()
