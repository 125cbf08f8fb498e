// ksvc's test_package: one call through ksvc::default_instance (or, for a header_only=True
// package, which has no ksvc::module, one entry built by the executor's headers).
// Exit status: 0 on success, 1 on failure, 77 when this kernel refuses io_uring.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <system_error>

#include <ksvc/executor/sys.hpp>
#if KSVC_TEST_PACKAGE_MODULE
#include <ksvc/module/presets.hpp>
#endif

int main() {
    const char msg[] = "ksvc test_package";
#if KSVC_TEST_PACKAGE_MODULE
    try {
        ksvc::default_instance inst;
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) {
            std::perror("pipe2");
            return 1;
        }
        const ksvc::completion_entry c = inst.call(ksvc::sys::write(fds[1], msg, sizeof msg));
        char buf[sizeof msg] = {};
        const ssize_t n = ::read(fds[0], buf, sizeof buf);
        ::close(fds[0]);
        ::close(fds[1]);
        if (!c.ok() || c.result != static_cast<long>(sizeof msg) || n != c.result || std::memcmp(buf, msg, sizeof msg)) {
            std::fprintf(stderr, "ksvc test_package: write returned %lld (%s), read back %zd bytes\n",
                         static_cast<long long>(c.result), c.error().message().c_str(), n);
            return 1;
        }
        std::printf("ksvc test_package: inst.call(write) returned %lld\n", static_cast<long long>(c.result));
    } catch (const std::system_error& e) {
        if (e.code() == ksvc::errc::io_uring_unavailable) {
            std::printf("ksvc test_package: io_uring unavailable: %s\n", e.what());
            return 77;
        }
        std::fprintf(stderr, "ksvc test_package: %s\n", e.what());
        return 1;
    }
#else
    const ksvc::submit_entry e = ksvc::sys::write(1, msg, sizeof msg);
    if (e.number() != ksvc::syscalls::native::write || e.args[0] != 1 || e.args[2] != sizeof msg) {
        std::fprintf(stderr, "ksvc test_package: sys::write built nr=%u args[0]=%llu args[2]=%llu\n", e.nr,
                     static_cast<unsigned long long>(e.args[0]), static_cast<unsigned long long>(e.args[2]));
        return 1;
    }
    std::printf("ksvc test_package: header-only (core, executor): sys::write built entry nr=%u\n", e.nr);
#endif
    std::printf("ksvc test_package: ok\n");
    return 0;
}
