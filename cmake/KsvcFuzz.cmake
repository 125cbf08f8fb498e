# ksvc_add_fuzz_target(NAME <name> SOURCE <file.cpp>)
#
# Builds a libFuzzer target at ${CMAKE_CURRENT_BINARY_DIR}/<name>. libFuzzer comes with clang,
# not with the compiler of this build: where clang++ can link -fsanitize=fuzzer (Debian: clang
# and libclang-rt-14-dev), the target is compiled by clang++ with address and undefined-behaviour
# sanitizers. Elsewhere the same source is built by this compiler with KSVC_FUZZ_STANDALONE, a
# driver of its own (the seed corpus, then deterministic mutations), so the test still runs.
# The fuzz target includes only headers of its own folder and the standard library.
include_guard(GLOBAL)

find_program(KSVC_CLANGXX NAMES clang++ clang++-16 clang++-15 clang++-14)
if(KSVC_CLANGXX AND NOT DEFINED CACHE{KSVC_LIBFUZZER_WORKS})
  set(_probe ${CMAKE_BINARY_DIR}/CMakeFiles/ksvc_libfuzzer_probe.cpp)
  file(WRITE ${_probe} "#include <cstddef>\n#include <cstdint>\nextern \"C\" int LLVMFuzzerTestOneInput(const std::uint8_t*, std::size_t) { return 0; }\n")
  execute_process(COMMAND ${KSVC_CLANGXX} -fsanitize=fuzzer ${_probe} -o ${CMAKE_BINARY_DIR}/CMakeFiles/ksvc_libfuzzer_probe
                  RESULT_VARIABLE _rc OUTPUT_QUIET ERROR_QUIET)
  if(_rc EQUAL 0)
    set(KSVC_LIBFUZZER_WORKS ON CACHE INTERNAL "clang++ links -fsanitize=fuzzer")
  else()
    set(KSVC_LIBFUZZER_WORKS OFF CACHE INTERNAL "clang++ links -fsanitize=fuzzer")
  endif()
endif()

function(ksvc_add_fuzz_target)
  cmake_parse_arguments(F "" "NAME;SOURCE" "" ${ARGN})
  set(_out ${CMAKE_CURRENT_BINARY_DIR}/${F_NAME})
  if(KSVC_CLANGXX AND KSVC_LIBFUZZER_WORKS)
    get_filename_component(_dir ${F_SOURCE} DIRECTORY)
    file(GLOB _headers ${_dir}/*.hpp)
    add_custom_command(OUTPUT ${_out}
                       COMMAND ${KSVC_CLANGXX} -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined
                               -fno-sanitize-recover=undefined ${F_SOURCE} -o ${_out}
                       DEPENDS ${F_SOURCE} ${_headers}
                       COMMENT "libFuzzer target ${F_NAME} (clang++)")
    add_custom_target(${F_NAME}.libfuzzer ALL DEPENDS ${_out}) # not ${F_NAME}: ninja names the file so
    message(STATUS "ksvc: ${F_NAME}: libFuzzer (${KSVC_CLANGXX})")
  else()
    add_executable(${F_NAME} ${F_SOURCE})
    target_compile_definitions(${F_NAME} PRIVATE KSVC_FUZZ_STANDALONE=1)
    set_target_properties(${F_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
    ksvc_own_code(${F_NAME})
    message(STATUS "ksvc: ${F_NAME}: no clang with libFuzzer; built with its own mutation driver")
  endif()
endfunction()
