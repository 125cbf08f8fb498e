//! Start-up of an instance in a fresh process (the capability snapshot is cached per process, so
//! only a fresh one shows the probe): the time from main() to the instance's first completed
//! call, printed as one JSON line.
//!   startup --preset default|embedded
//! default: ksvc::default_instance, inline (the snapshot probes the kernel: trial rings).
//! embedded: ksvc::embedded_instance<target_kernel>, inline, for the profile emitted at build time
//! (one check ring, no probe).
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string_view>

#include <ksvc/executor/sys.hpp>
#include <ksvc/module/embedded.hpp>
#include <ksvc/module/presets.hpp>

#include "target_kernel.hpp"

long minor_faults() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    return u.ru_minflt;
}

template <class Instance>
int run(const char* preset) {
    const long f0 = minor_faults();
    const auto t0 = std::chrono::steady_clock::now();
    ksvc::instance_options o;
    o.mode = ksvc::dispatch_mode::inline_mode;
    o.publish_counters = false; // the same for both arms
    Instance inst(o);
    const int fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    const char b = 'x';
    const ksvc::completion_entry c = inst.call(ksvc::sys::write(fd, &b, 1));
    const auto t1 = std::chrono::steady_clock::now();
    const long faults = minor_faults() - f0;
    ::close(fd);
    if (c.result != 1) {
        std::fprintf(stderr, "startup: write returned %lld\n", static_cast<long long>(c.result));
        return 1;
    }
    // The page faults in the window (first touches of fresh memory and of code) are the
    // start-up's other cost besides its syscalls.
    std::printf("{\"preset\":\"%s\",\"startup_ns\":%lld,\"minor_faults\":%ld}\n", preset,
                static_cast<long long>(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()), faults);
    return 0;
}

int main(int argc, char** argv) {
    const std::string_view p = argc > 2 && std::string_view(argv[1]) == "--preset" ? argv[2] : "";
    try {
        if (p == "default") return run<ksvc::default_instance>("default");
        if (p == "embedded") return run<ksvc::embedded_instance<target_kernel>>("embedded");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "startup: %s\n", e.what());
        return 1;
    }
    std::fprintf(stderr, "usage: startup --preset default|embedded\n");
    return 2;
}
