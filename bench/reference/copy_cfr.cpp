//! Reference: copy_file_range(2) until the whole file is copied (the kernel copies in place;
//! on filesystems without reflink it splices page to page). Shares no ksvc code.
//!   copy_cfr --src F --dst G [--chunk 1073741824]
#include <unistd.h>

#include <cstdint>

#include "../common/copy_common.hpp"

int main(int argc, char** argv) {
    bench::args a(argc, argv);
    const auto chunk = static_cast<std::size_t>(a.num("chunk", 1ll << 30));
    bench::copy_files f(a.str("src"), a.str("dst"), false, a.flag("overwrite"));
    std::uint64_t copied = 0;
    const std::uint64_t cpu0 = bench::self_cpu_us();
    const std::uint64_t t0 = bench::now_ns();
    while (copied < f.size) {
        const ssize_t r = ::copy_file_range(f.in, nullptr, f.out, nullptr, chunk, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) bench::die("copy_file_range");
        if (r == 0) break;
        copied += static_cast<std::uint64_t>(r);
    }
    const std::uint64_t t1 = bench::now_ns();
    bench::copy_result("copy_file_range", "copy_file_range", f, copied, t0, t1, cpu0, bench::self_cpu_us(), 1,
                       static_cast<unsigned>(chunk > 0xffffffffu ? 0xffffffffu : chunk), 0);
    return copied == f.size ? 0 : 1;
}
