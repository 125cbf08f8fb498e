# cmake -DSTRACE=<strace> -DPROBE=<ksvc-probe> -DWORK=<dir> -P check_no_probe.cmake
# With KSVC_DISABLE_IO_URING=1 not a single io_uring_setup is made (a platform whose seccomp
# filter kills the process on it must be able to run ksvc): strace counts them, and the report
# still says why io_uring is unavailable.
file(MAKE_DIRECTORY ${WORK})
set(log ${WORK}/strace-disabled.log)
set(ENV{KSVC_DISABLE_IO_URING} 1)
execute_process(COMMAND ${STRACE} -f -qq -e trace=io_uring_setup -o ${log} ${PROBE} --json
                OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "ksvc-probe --json failed under strace (exit ${rc}):\n${out}\n${err}")
endif()
if(NOT out MATCHES "disabled by KSVC_DISABLE_IO_URING")
  message(FATAL_ERROR "ksvc-probe does not say io_uring was disabled:\n${out}")
endif()
file(STRINGS ${log} lines REGEX "io_uring_setup\\(")
list(LENGTH lines n)
if(NOT n EQUAL 0)
  message(FATAL_ERROR "with KSVC_DISABLE_IO_URING=1 ksvc-probe made ${n} io_uring_setup calls:\n${lines}")
endif()
message(STATUS "KSVC_DISABLE_IO_URING=1: no io_uring_setup, and the report says why")
