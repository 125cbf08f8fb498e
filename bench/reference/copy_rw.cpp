//! Reference: the plain read/write loop copy. Shares no ksvc code.
//!   copy_rw --src F --dst G [--chunk 262144] [--direct]
#include <unistd.h>

#include <cstdint>
#include <cstdlib>

#include "../common/copy_common.hpp"

int main(int argc, char** argv) {
    bench::args a(argc, argv);
    const unsigned chunk = static_cast<unsigned>(a.num("chunk", 256 * 1024));
    bench::copy_files f(a.str("src"), a.str("dst"), a.flag("direct"), a.flag("overwrite"));
    unsigned char* buf = nullptr;
    if (::posix_memalign(reinterpret_cast<void**>(&buf), 4096, chunk) != 0) bench::die("posix_memalign", ENOMEM);
    std::uint64_t copied = 0;
    const std::uint64_t cpu0 = bench::self_cpu_us();
    const std::uint64_t t0 = bench::now_ns();
    for (;;) {
        const ssize_t r = ::read(f.in, buf, chunk);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) bench::die("read");
        if (r == 0) break;
        ssize_t done = 0;
        while (done < r) {
            const ssize_t w = ::write(f.out, buf + done, static_cast<std::size_t>(r - done));
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) bench::die("write");
            done += w;
        }
        copied += static_cast<std::uint64_t>(r);
    }
    const std::uint64_t t1 = bench::now_ns();
    bench::copy_result("rw_loop", "rw", f, copied, t0, t1, cpu0, bench::self_cpu_us(), 1, chunk, 0);
    std::free(buf);
    return copied == f.size ? 0 : 1;
}
