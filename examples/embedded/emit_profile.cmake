# cmake -DPROBE=<ksvc-probe> -DOUT=<header> -P emit_profile.cmake
# Writes this machine's kernel profile (ksvc-probe --emit-profile). Where io_uring is unavailable
# at build time, writes the oldest shipped profile instead, saying so (the build still works; the
# program then checks that profile at start-up).
execute_process(COMMAND ${PROBE} --emit-profile --profile-name target_kernel
                OUTPUT_VARIABLE header ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(WARNING "ksvc-probe --emit-profile failed (${err}); using ksvc::linux_5_10")
  set(header "// ksvc-probe --emit-profile failed at build time: ${err}\n#pragma once\n#include <ksvc/module/profiles/kernel_profile.hpp>\nusing target_kernel = ksvc::linux_5_10;\n")
endif()
file(WRITE "${OUT}.tmp" "${header}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
