# cmake -DKSVC_SOURCE_DIR=… -DKSVC_BUILD_DIR=… -DKSVC_VERSION=… -DCONSUMER_DIR=… -DTEST_PACKAGE_DIR=…
#       -DWORK_DIR=… -DGENERATOR=… -DCXX=… -DBUILD_TYPE=… -DCXX_FLAGS=… -DCXX_FLAGS_CONFIG=…
#       -DEXE_LINKER_FLAGS=… -P install_and_consume.cmake
#
# 1. cmake --install <build> --prefix <fresh temporary prefix>
# 2. the install tree has every public header, libksvc_module.a, ksvcConfig.cmake,
#    ksvcConfigVersion.cmake, ksvcTargets.cmake and Findliburing.cmake
# 3. the consumer configures against the prefix only (no package registry, no build tree),
#    builds and runs: one inst.call through ksvc::default_instance
# 4. asking for an incompatible version (1.0) fails at configure time
# 5. the Conan recipe's test_package (conan/test_package), a plain CMake project too, configures
#    against the prefix, builds and runs; so does its header-only variant (core and executor only)
# A program that exits 77 (this kernel refuses io_uring) makes the test skip, after every other
# step has run.
cmake_minimum_required(VERSION 3.25)
foreach(v KSVC_SOURCE_DIR KSVC_BUILD_DIR KSVC_VERSION CONSUMER_DIR TEST_PACKAGE_DIR WORK_DIR GENERATOR CXX)
  if(NOT ${v})
    message(FATAL_ERROR "install_and_consume.cmake: -D${v}=… is required")
  endif()
endforeach()

include("${CMAKE_CURRENT_LIST_DIR}/common.cmake")

# Runs a built program; its stdout must match `expect`. Exit 77 is recorded in `skipped` (the
# caller's) instead of failing.
function(run_program what program expect)
  execute_process(COMMAND "${program}" OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
  string(STRIP "${out}" out)
  if(rc EQUAL 77)
    message(STATUS "${what}: built, but this kernel refuses io_uring: ${out}")
    set(skipped "${skipped}${what}: ${out}\n" PARENT_SCOPE)
    return()
  endif()
  if(NOT rc EQUAL 0 OR NOT out MATCHES "${expect}")
    message(FATAL_ERROR "${what} failed (exit ${rc}), expected output matching '${expect}':\n--- stdout\n${out}\n--- stderr\n${err}")
  endif()
  message(STATUS "${out}")
endfunction()
set(skipped "")

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")

# --- 1. install ---------------------------------------------------------------------------------
run("cmake --install" ${CMAKE_COMMAND} --install "${KSVC_BUILD_DIR}" --prefix "${prefix}")
message(STATUS "installed ${KSVC_BUILD_DIR} into ${prefix}")

# --- 2. the install tree ----------------------------------------------------------------------
set(missing "")
# Every public header of the three components, at the same relative path.
foreach(component core executor module)
  file(GLOB_RECURSE headers RELATIVE "${KSVC_SOURCE_DIR}/${component}/include"
       "${KSVC_SOURCE_DIR}/${component}/include/*.hpp")
  if(NOT headers)
    list(APPEND missing "(no headers found under ${component}/include in the source tree)")
  endif()
  foreach(h ${headers})
    if(NOT EXISTS "${prefix}/include/${h}")
      list(APPEND missing "include/${h}")
    endif()
  endforeach()
  list(LENGTH headers n)
  message(STATUS "  ${component}: ${n} headers")
endforeach()
file(GLOB_RECURSE libs "${prefix}/*/libksvc_module.a")
if(NOT libs)
  list(APPEND missing "lib*/libksvc_module.a")
endif()
file(GLOB_RECURSE configs "${prefix}/*/ksvcConfig.cmake")
if(NOT configs)
  list(APPEND missing "lib*/cmake/ksvc/ksvcConfig.cmake")
  set(cfgdir "${prefix}/lib/cmake/ksvc")
else()
  list(GET configs 0 cfg)
  get_filename_component(cfgdir "${cfg}" DIRECTORY)
endif()
foreach(f ksvcConfigVersion.cmake ksvcTargets.cmake Findliburing.cmake)
  if(NOT EXISTS "${cfgdir}/${f}")
    list(APPEND missing "${cfgdir}/${f}")
  endif()
endforeach()
if(missing)
  list(JOIN missing "\n  " m)
  message(FATAL_ERROR "the install tree at ${prefix} lacks:\n  ${m}")
endif()
message(STATUS "install tree complete: ${libs}, ${cfgdir}")

# --- 3. a consumer against the prefix ---------------------------------------------------------
set(common
    -G "${GENERATOR}"
    "-DCMAKE_CXX_COMPILER=${CXX}"
    "-DCMAKE_PREFIX_PATH=${prefix}"
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
    -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF)
if(BUILD_TYPE)
  string(TOUPPER "${BUILD_TYPE}" cfg)
  list(APPEND common "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}" "-DCMAKE_CXX_FLAGS_${cfg}=${CXX_FLAGS_CONFIG}")
endif()
list(APPEND common "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}" "-DCMAKE_EXE_LINKER_FLAGS=${EXE_LINKER_FLAGS}")

run("configuring the consumer" ${CMAKE_COMMAND} -S "${CONSUMER_DIR}" -B "${WORK_DIR}/consumer" ${common})
string(REGEX MATCH "ksvc_DIR=([^\n]*)" _ "${run_out}")
set(found_dir "${CMAKE_MATCH_1}")
string(FIND "${found_dir}" "${prefix}/" at)
if(NOT at EQUAL 0)
  message(FATAL_ERROR "the consumer found ksvc at '${found_dir}', not in the install prefix ${prefix}")
endif()
string(REGEX MATCH "ksvc_VERSION=([^\n]*)" _ "${run_out}")
if(NOT CMAKE_MATCH_1 STREQUAL KSVC_VERSION)
  message(FATAL_ERROR "the installed package reports version '${CMAKE_MATCH_1}', expected ${KSVC_VERSION}")
endif()
message(STATUS "consumer configured: ksvc ${KSVC_VERSION} from ${found_dir}")

run("building the consumer" ${CMAKE_COMMAND} --build "${WORK_DIR}/consumer")
run_program("the consumer" "${WORK_DIR}/consumer/ksvc_consumer" "ksvc consumer: .*: ok")

# --- 4. an incompatible version is refused ------------------------------------------------------
execute_process(COMMAND ${CMAKE_COMMAND} -S "${CONSUMER_DIR}" -B "${WORK_DIR}/consumer-v1" ${common}
                        -DKSVC_WANT_VERSION=1.0
                OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
if(rc EQUAL 0 OR NOT "${out}${err}" MATCHES "version")
  message(FATAL_ERROR "find_package(ksvc 1.0) should fail against ksvc ${KSVC_VERSION} (exit ${rc}):\n${out}\n${err}")
endif()
message(STATUS "find_package(ksvc 1.0) is refused, as it should be")

# --- 5. the Conan recipe's test_package against the prefix ---------------------------------------
# The same project Conan builds against the package's CMakeDeps files; here it meets the
# project's own CMake package, which must provide the same ksvc::ksvc.
foreach(variant full header-only)
  set(dir "${WORK_DIR}/test_package-${variant}")
  set(extra "")
  set(expect "inst\\.call\\(write\\) returned .*ksvc test_package: ok")
  if(variant STREQUAL "header-only")
    set(extra -DKSVC_TEST_PACKAGE_HEADER_ONLY=ON)
    set(expect "header-only .*ksvc test_package: ok")
  endif()
  run("configuring the test_package (${variant})" ${CMAKE_COMMAND} -S "${TEST_PACKAGE_DIR}" -B "${dir}" ${common} ${extra})
  file(STRINGS "${dir}/CMakeCache.txt" found_dir REGEX "^ksvc_DIR:")
  string(REGEX REPLACE "^ksvc_DIR:[A-Z]+=" "" found_dir "${found_dir}")
  string(FIND "${found_dir}" "${prefix}/" at)
  if(NOT at EQUAL 0)
    message(FATAL_ERROR "the test_package found ksvc at '${found_dir}', not in the install prefix ${prefix}")
  endif()
  run("building the test_package (${variant})" ${CMAKE_COMMAND} --build "${dir}")
  run_program("the test_package (${variant})" "${dir}/test_package" "${expect}")
endforeach()

if(skipped)
  message("KSVC_PACKAGING_SKIP: every step passed, but these programs could not run:\n${skipped}")
  return()
endif()
message(STATUS "packaging: ok")
