// ksvc-embedded — an embedded_instance built for a known kernel: the profile header
// (target_kernel.hpp) was written by `ksvc-probe --emit-profile` at build time (see
// examples/CMakeLists.txt), the route table is computed by the compiler, and start-up probes
// nothing — one small ring checks that the running kernel offers what the profile promises.
//
//   ksvc-embedded [--quiet]
// Exit status: 0 when the work checked out, 1 on a failure, 3 when the running kernel lacks what
// the profile promises (the message names it), 77 when io_uring is unavailable.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>

#include <ksvc/executor/sys.hpp>
#include <ksvc/module/embedded.hpp>

#include "target_kernel.hpp"

namespace nr = ksvc::syscalls::native;
using router = ksvc::static_router<target_kernel>;

// Decided by the compiler: a read is always an io_uring read on any profile ksvc ships.
static_assert(router{}.route(nr::read).tier == ksvc::tier::io_uring);
static_assert(router{}.route(nr::getpid).tier == ksvc::tier::shared_page);

int main(int argc, char** argv) {
    const bool quiet = argc > 1 && std::string_view(argv[1]) == "--quiet";
    if (argc > 1 && !quiet) {
        std::printf("usage: ksvc-embedded [--quiet]\n"
                    "Runs a pipe round trip through ksvc::embedded_instance<target_kernel> (built for kernel %u.%u).\n"
                    "Exit 0: ok; 1: a check failed; 3: this kernel lacks what the profile promises; 77: no io_uring.\n",
                    target_kernel::version.major, target_kernel::version.minor);
        return std::string_view(argv[1]) == "--help" ? 0 : 2;
    }
    try {
        ksvc::instance_options o;
        o.mode = ksvc::dispatch_mode::inline_mode;
        o.name = "ksvc-embedded";
        ksvc::embedded_instance<target_kernel> inst(o);
        int p[2];
        if (::pipe2(p, O_CLOEXEC) != 0) return std::perror("pipe2"), 1;
        const char msg[] = "routed at compile time";
        const ksvc::completion_entry w = inst.call(ksvc::sys::write(p[1], msg, sizeof msg));
        char buf[sizeof msg] = {};
        const ksvc::completion_entry r = inst.call(ksvc::sys::read(p[0], buf, sizeof buf));
        ::close(p[0]);
        ::close(p[1]);
        const bool ok = w.result == static_cast<long>(sizeof msg) && r.result == w.result && std::memcmp(buf, msg, sizeof msg) == 0;
        if (!quiet || !ok)
            std::printf("ksvc-embedded: profile %u.%u, running %s: write %lld, read %lld (%s), ring setup flags 0x%x: %s\n",
                        target_kernel::version.major, target_kernel::version.minor, inst.caps().version.to_string().c_str(),
                        static_cast<long long>(w.result), static_cast<long long>(r.result),
                        std::string(ksvc::to_string(inst.router().route(nr::read).tier)).c_str(), inst.backend().setup_flags(),
                        ok ? "ok" : "FAILED");
        return ok ? 0 : 1;
    } catch (const std::system_error& e) {
        std::fprintf(stderr, "ksvc-embedded: %s\n", e.what());
        if (e.code() == ksvc::errc::profile_mismatch) return 3;
        if (e.code() == ksvc::errc::io_uring_unavailable) return 77;
        return 1;
    }
}
