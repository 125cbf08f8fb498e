# cmake -DKSVC_SOURCE_DIR=… -DKSVC_BUILD_DIR=… -DKSVC_VERSION=… -DCONSUMER_DIR=… -DWORK_DIR=…
#       -DGENERATOR=… -DCXX=… -DBUILD_TYPE=… -DCXX_FLAGS=… -DCXX_FLAGS_CONFIG=… -DEXE_LINKER_FLAGS=…
#       -P install_and_consume.cmake
#
# 1. cmake --install <build> --prefix <fresh temporary prefix>
# 2. the install tree has every public header, libksvc_module.a, ksvcConfig.cmake,
#    ksvcConfigVersion.cmake, ksvcTargets.cmake and Findliburing.cmake
# 3. the consumer configures against the prefix only (no package registry, no build tree),
#    builds and runs: one inst.call through ksvc::default_instance
# 4. asking for an incompatible version (1.0) fails at configure time
cmake_minimum_required(VERSION 3.25)
foreach(v KSVC_SOURCE_DIR KSVC_BUILD_DIR KSVC_VERSION CONSUMER_DIR WORK_DIR GENERATOR CXX)
  if(NOT ${v})
    message(FATAL_ERROR "install_and_consume.cmake: -D${v}=… is required")
  endif()
endforeach()

function(run what)
  execute_process(COMMAND ${ARGN} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (exit ${rc}):\n  ${ARGN}\n--- stdout\n${out}\n--- stderr\n${err}")
  endif()
  set(run_out "${out}" PARENT_SCOPE)
endfunction()

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

execute_process(COMMAND "${WORK_DIR}/consumer/ksvc_consumer" OUTPUT_VARIABLE out ERROR_VARIABLE err
                RESULT_VARIABLE rc)
if(rc EQUAL 77)
  message("KSVC_PACKAGING_SKIP: the consumer built, but this kernel refuses io_uring: ${out}")
  return()
endif()
if(NOT rc EQUAL 0 OR NOT out MATCHES "ksvc consumer: .*: ok")
  message(FATAL_ERROR "the consumer failed (exit ${rc}):\n--- stdout\n${out}\n--- stderr\n${err}")
endif()
string(STRIP "${out}" out)
message(STATUS "${out}")

# --- 4. an incompatible version is refused ------------------------------------------------------
execute_process(COMMAND ${CMAKE_COMMAND} -S "${CONSUMER_DIR}" -B "${WORK_DIR}/consumer-v1" ${common}
                        -DKSVC_WANT_VERSION=1.0
                OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
if(rc EQUAL 0 OR NOT "${out}${err}" MATCHES "version")
  message(FATAL_ERROR "find_package(ksvc 1.0) should fail against ksvc ${KSVC_VERSION} (exit ${rc}):\n${out}\n${err}")
endif()
message(STATUS "find_package(ksvc 1.0) is refused, as it should be")
message(STATUS "packaging: ok")
