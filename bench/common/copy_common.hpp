#pragma once
//! File-copy harness shared by the copy references and the ksvc copy arm (no ksvc code):
//! opening source and destination (optionally O_DIRECT), per-slot chunk storage, the result line.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "harness.hpp"

namespace bench {

//! Per-slot storage for one chunk in flight, the same in every copy arm: a pipe grown to the
//! chunk size (splice arms) or a page-aligned buffer (read/write arms).
struct chunk_storage {
    unsigned char* buf = nullptr;
    int pipe_r = -1, pipe_w = -1;
};

inline chunk_storage make_chunk_storage(bool splice, std::uint32_t chunk) {
    chunk_storage c;
    if (splice) {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) die("pipe2");
        ::fcntl(fds[1], F_SETPIPE_SZ, chunk);
        c.pipe_r = fds[0];
        c.pipe_w = fds[1];
    } else if (::posix_memalign(reinterpret_cast<void**>(&c.buf), 4096, chunk) != 0) {
        die("posix_memalign", ENOMEM);
    }
    return c;
}

struct copy_files {
    int in = -1, out = -1;
    std::uint64_t size = 0;
    bool direct = false;

    //! `overwrite`: write over an existing destination in place (no O_TRUNC), so a warm
    //! destination's page-cache pages are reused instead of freshly allocated.
    copy_files(const std::string& src, const std::string& dst, bool want_direct, bool overwrite = false) {
        const int dflag = want_direct ? O_DIRECT : 0;
        in = ::open(src.c_str(), O_RDONLY | O_CLOEXEC | dflag);
        if (in < 0) die(("open " + src).c_str());
        out = ::open(dst.c_str(), O_WRONLY | O_CREAT | (overwrite ? 0 : O_TRUNC) | O_CLOEXEC | dflag, 0644);
        if (out < 0) die(("open " + dst).c_str());
        struct stat st{};
        ::fstat(in, &st);
        size = static_cast<std::uint64_t>(st.st_size);
        direct = want_direct;
        if (direct && size % 4096 != 0) die("O_DIRECT copy needs a size that is a multiple of 4096", EINVAL);
    }
    ~copy_files() {
        ::close(in);
        ::close(out);
    }
    copy_files(const copy_files&) = delete;
    copy_files& operator=(const copy_files&) = delete;
};

//! One JSON line: what was copied, how fast, and the process's CPU time for the copy.
//! `extra`: more members, each starting with a comma (an arm's own facts).
inline void copy_result(const char* arm, const char* method, const copy_files& f, std::uint64_t copied, std::uint64_t t0,
                        std::uint64_t t1, std::uint64_t cpu0, std::uint64_t cpu1, unsigned qd, unsigned chunk,
                        unsigned ring_flags, const char* extra = "") {
    const double s = static_cast<double>(t1 - t0) / 1e9;
    std::printf("{\"arm\":\"%s\",\"method\":\"%s\",\"direct\":%s,\"bytes\":%llu,\"expected\":%llu,\"seconds\":%.6f,"
                "\"bytes_per_sec\":%.1f,\"cpu_us\":%llu,\"qd\":%u,\"chunk\":%u,\"ring_flags\":%u%s}\n",
                arm, method, f.direct ? "true" : "false", static_cast<unsigned long long>(copied),
                static_cast<unsigned long long>(f.size), s, static_cast<double>(copied) / s,
                static_cast<unsigned long long>(cpu1 - cpu0), qd, chunk, ring_flags, extra);
    std::fflush(stdout);
}

} // namespace bench
