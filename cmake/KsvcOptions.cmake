# Options are prefixed by intent: KSVC_BUILD_* selects what is built, KSVC_DEV_* tunes the
# developer build of ksvc itself (never imposed on consumers).
set(_ksvc_top OFF)
if(CMAKE_SOURCE_DIR STREQUAL PROJECT_SOURCE_DIR)
  set(_ksvc_top ON)
endif()
option(KSVC_BUILD_TESTS "Build the test suites" ${_ksvc_top})
option(KSVC_BUILD_EXAMPLES "Build the examples (ksvc-probe, demo)" ${_ksvc_top})
option(KSVC_BUILD_BENCHMARKS "Build the benchmarks (needs Google Benchmark)" OFF)
option(KSVC_BUILD_IO_URING_PROBE "Let ksvc probe io_uring at run time (OFF: never call io_uring_setup; every instance serves through epoll — for platforms whose seccomp filter kills on io_uring)" ON)
option(KSVC_DEV_WERROR "Treat warnings in ksvc's own code as errors" ${_ksvc_top})

set(CMAKE_CXX_STANDARD 20)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)
set(CMAKE_EXPORT_COMPILE_COMMANDS ON)

# Warnings for targets that are ksvc's own code; third-party headers come in as SYSTEM.
function(ksvc_own_code target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion
                                           $<$<BOOL:${KSVC_DEV_WERROR}>:-Werror>)
endfunction()
