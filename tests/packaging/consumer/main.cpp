// The packaging test's consumer: one call through ksvc::default_instance from an installed ksvc.
// Exit status: 0 on success, 1 on failure, 77 when this kernel refuses io_uring.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <system_error>

#include <ksvc/executor/sys.hpp>
#include <ksvc/module/presets.hpp>

int main() {
    try {
        ksvc::default_instance inst;
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) {
            std::perror("pipe2");
            return 1;
        }
        const char msg[] = "hello from an installed ksvc";
        const ksvc::completion_entry c = inst.call(ksvc::sys::write(fds[1], msg, sizeof msg));
        char buf[sizeof msg] = {};
        const ssize_t n = ::read(fds[0], buf, sizeof buf);
        ::close(fds[0]);
        ::close(fds[1]);
        const ksvc::route_info r = inst.router().route(ksvc::syscalls::native::write);
        if (!c.ok() || c.result != static_cast<long>(sizeof msg) || n != c.result || std::memcmp(buf, msg, sizeof msg)) {
            std::fprintf(stderr, "ksvc consumer: write returned %lld (%s), read back %zd bytes\n",
                         static_cast<long long>(c.result), c.error().message().c_str(), n);
            return 1;
        }
        std::printf("ksvc consumer: inst.call(write) via %s returned %lld, read back \"%s\": ok\n",
                    std::string(ksvc::to_string(r.tier)).c_str(), static_cast<long long>(c.result), buf);
        return 0;
    } catch (const std::system_error& e) {
        if (e.code() == ksvc::errc::io_uring_unavailable) {
            std::printf("ksvc consumer: io_uring unavailable: %s\n", e.what());
            return 77;
        }
        std::fprintf(stderr, "ksvc consumer: %s\n", e.what());
        return 1;
    }
}
