// The KSVC_BUILD_IO_URING_PROBE=OFF code path of the capability snapshot, compiled apart: prints
// what current_capabilities() says. ctest runs it under strace, which must see no io_uring call.
#include <cstdio>

#include <ksvc/module/capabilities.hpp>

int main() {
    const ksvc::capabilities& c = ksvc::current_capabilities();
    const ksvc::capabilities d = ksvc::detect_capabilities();
    std::printf("io_uring_available=%s: %s\n", c.io_uring_available ? "true" : "false", c.unavailable_reason.c_str());
    std::printf("detect: io_uring_available=%s: %s\n", d.io_uring_available ? "true" : "false", d.unavailable_reason.c_str());
    return c.io_uring_available || d.io_uring_available ? 1 : 0;
}
