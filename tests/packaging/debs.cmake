# cmake -DKSVC_BUILD_DIR=… -DKSVC_VERSION=… -DCONSUMER_DIR=… -DWORK_DIR=… -DGENERATOR=… -DCXX=…
#       -P debs.cmake
#
# 1. cpack builds libksvc-dev and ksvc-tools from this build tree
# 2. their control fields: names, version, architecture, the dependencies on Debian's packages
# 3. lintian reports no errors on either
# 4. both unpack into a temporary root (dpkg-deb -x), which holds the headers, the library, the
#    CMake package, ksvc.pc, the tools and their man pages
# 5. a consumer builds against that root with find_package(ksvc) and with
#    `pkg-config --cflags --libs ksvc`, and both programs run; the unpacked ksvc-probe answers --help
cmake_minimum_required(VERSION 3.25)
foreach(v KSVC_BUILD_DIR KSVC_VERSION CONSUMER_DIR WORK_DIR GENERATOR CXX)
  if(NOT ${v})
    message(FATAL_ERROR "debs.cmake: -D${v}=… is required")
  endif()
endforeach()

include("${CMAKE_CURRENT_LIST_DIR}/common.cmake")

foreach(tool dpkg-deb lintian pkg-config)
  find_program(have_${tool} ${tool})
  if(NOT have_${tool})
    message(FATAL_ERROR "debs.cmake needs ${tool} (Debian packages dpkg, lintian, pkgconf: ./scripts/test installs them)")
  endif()
endforeach()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}/debs" "${WORK_DIR}/root")

# --- 1. cpack -----------------------------------------------------------------------------------
run("cpack" cpack --config "${KSVC_BUILD_DIR}/CPackConfig.cmake" -B "${WORK_DIR}/debs")
set(deb_version "${KSVC_VERSION}-1")
execute_process(COMMAND dpkg --print-architecture OUTPUT_VARIABLE arch OUTPUT_STRIP_TRAILING_WHITESPACE)
set(dev_deb "${WORK_DIR}/debs/libksvc-dev_${deb_version}_${arch}.deb")
set(tools_deb "${WORK_DIR}/debs/ksvc-tools_${deb_version}_${arch}.deb")
foreach(deb "${dev_deb}" "${tools_deb}")
  if(NOT EXISTS "${deb}")
    file(GLOB made "${WORK_DIR}/debs/*.deb")
    message(FATAL_ERROR "cpack did not make ${deb}; it made: ${made}")
  endif()
endforeach()
message(STATUS "cpack made ${dev_deb} and ${tools_deb}")

# --- 2. control fields --------------------------------------------------------------------------
function(expect_field deb field regex)
  run("dpkg-deb -f" dpkg-deb -f "${deb}" "${field}")
  string(STRIP "${run_out}" value)
  if(NOT value MATCHES "${regex}")
    message(FATAL_ERROR "${deb}: ${field} is '${value}', expected to match '${regex}'")
  endif()
  message(STATUS "  ${field}: ${value}")
endfunction()
expect_field("${dev_deb}" Package "^libksvc-dev$")
expect_field("${dev_deb}" Version "^${deb_version}$")
expect_field("${dev_deb}" Section "^libdevel$")
expect_field("${dev_deb}" Depends "liburing-dev \\(>= 2\\.3\\)")
expect_field("${dev_deb}" Depends "libboost-dev \\(>= 1\\.74\\)")
expect_field("${tools_deb}" Package "^ksvc-tools$")
expect_field("${tools_deb}" Depends "liburing2")
expect_field("${tools_deb}" Depends "libc6")

# --- 3. lintian ---------------------------------------------------------------------------------
foreach(deb "${dev_deb}" "${tools_deb}")
  execute_process(COMMAND lintian --fail-on error --no-tag-display-limit "${deb}"
                  OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0 OR out MATCHES "(^|\n)E: ")
    message(FATAL_ERROR "lintian reports errors on ${deb} (exit ${rc}):\n${out}\n${err}")
  endif()
  message(STATUS "lintian: no errors on ${deb}\n${out}")
endforeach()

# --- 4. unpack into a temporary root ------------------------------------------------------------
set(root "${WORK_DIR}/root")
foreach(deb "${dev_deb}" "${tools_deb}")
  run("dpkg-deb -x" dpkg-deb -x "${deb}" "${root}")
endforeach()
set(missing "")
foreach(f usr/include/ksvc/module/presets.hpp usr/include/ksvc/core/core.hpp usr/bin/ksvc-probe
          usr/share/man/man1/ksvc-probe.1.gz usr/bin/ksvc-cp usr/share/man/man1/ksvc-cp.1.gz
          usr/bin/ksvc-top usr/share/man/man1/ksvc-top.1.gz
          usr/share/doc/libksvc-dev/copyright
          usr/share/doc/ksvc-tools/changelog.Debian.gz)
  if(NOT EXISTS "${root}/${f}")
    list(APPEND missing "${f}")
  endif()
endforeach()
file(GLOB_RECURSE pcs "${root}/*/ksvc.pc")
file(GLOB_RECURSE libs "${root}/*/libksvc_module.a")
file(GLOB_RECURSE cfgs "${root}/*/ksvcConfig.cmake")
foreach(v pcs libs cfgs)
  if(NOT ${v})
    list(APPEND missing "(${v})")
  endif()
endforeach()
if(missing)
  message(FATAL_ERROR "the unpacked packages lack: ${missing}")
endif()
run("ksvc-probe --help" "${root}/usr/bin/ksvc-probe" --help)
if(NOT run_out MATCHES "usage: ksvc-probe")
  message(FATAL_ERROR "the packaged ksvc-probe --help printed:\n${run_out}")
endif()

function(run_consumer exe how)
  execute_process(COMMAND "${exe}" OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(rc EQUAL 77)
    message("KSVC_PACKAGING_SKIP: the ${how} consumer built, but this kernel refuses io_uring: ${out}")
  elseif(NOT rc EQUAL 0 OR NOT out MATCHES "ksvc consumer: .*: ok")
    message(FATAL_ERROR "the ${how} consumer failed (exit ${rc}):\n--- stdout\n${out}\n--- stderr\n${err}")
  else()
    string(STRIP "${out}" out)
    message(STATUS "${how} consumer: ${out}")
  endif()
endfunction()

# --- 5a. find_package -------------------------------------------------------------------------
run("configuring the consumer" ${CMAKE_COMMAND} -S "${CONSUMER_DIR}" -B "${WORK_DIR}/consumer" -G "${GENERATOR}"
    "-DCMAKE_CXX_COMPILER=${CXX}" "-DCMAKE_PREFIX_PATH=${root}/usr" -DCMAKE_BUILD_TYPE=Release
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF)
string(REGEX MATCH "ksvc_DIR=([^\n]*)" _ "${run_out}")
string(FIND "${CMAKE_MATCH_1}" "${root}/" at)
if(NOT at EQUAL 0)
  message(FATAL_ERROR "the consumer found ksvc at '${CMAKE_MATCH_1}', not in the unpacked root ${root}")
endif()
run("building the consumer" ${CMAKE_COMMAND} --build "${WORK_DIR}/consumer")
run_consumer("${WORK_DIR}/consumer/ksvc_consumer" find_package)

# --- 5b. pkg-config ---------------------------------------------------------------------------
list(GET pcs 0 pc)
get_filename_component(pcdir "${pc}" DIRECTORY)
set(ENV{PKG_CONFIG_PATH} "${pcdir}")
run("pkg-config --cflags --libs ksvc" pkg-config --cflags --libs ksvc)
string(STRIP "${run_out}" flags)
message(STATUS "pkg-config --cflags --libs ksvc: ${flags}")
separate_arguments(flag_list UNIX_COMMAND "${flags}")
run("compiling the consumer with pkg-config's flags"
    "${CXX}" -std=c++20 -O1 "${CONSUMER_DIR}/main.cpp" ${flag_list} -o "${WORK_DIR}/consumer-pc")
run_consumer("${WORK_DIR}/consumer-pc" pkg-config)
message(STATUS "debian packages: ok")
