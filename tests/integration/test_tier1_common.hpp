#pragma once
// Shared by the Tier-1 integration tests (test_tier1_*.cpp): every io_uring route is run through
// ksvc::default_instance under each ring configuration and compared with the same call made
// directly with syscall(2) — result, errno and side effects.
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>

#include <ksvc/executor/sys.hpp>
#include <ksvc/module/presets.hpp>

#include "support/fixtures.hpp"

namespace ksvc::test::tier1 {

namespace bdata = boost::unit_test::data;
namespace nr = ksvc::syscalls::native;

//! One default_instance for one run configuration, and a call() that also proves the route is
//! Tier 1 and that the completion is a kernel result (not a framework refusal).
struct harness {
    default_instance inst;
    bool inline_mode;
    explicit harness(const run_config& c) : inst(options_for(c)), inline_mode(c.mode == dispatch_mode::inline_mode) {}

    //! Whether the backend serving this instance executes syscall `n`: io_uring where the running
    //! kernel has the opcode the table gives it (an older real kernel sends the others to the pool:
    //! the same results, another tier), epoll for sockets and pipes (epoll_backend::offer_for).
    bool ring_has(std::uint32_t n) {
        if (!inst.backend().on_primary()) return ksvc::epoll_backend::offer_for(inst.caps()).syscalls[n];
        for (const auto& row : ksvc::routing::detail::io_uring_rows)
            if (row.nr == n) return inst.caps().has(row.op);
        return false;
    }
    //! Served by default_instance's epoll fallback (io_uring refused in this configuration).
    bool epoll() { return !inst.backend().on_primary(); }
    std::int64_t call(const submit_entry& e) {
        const route_info r = inst.router().route(e.nr);
        const tier want = ring_has(e.nr) ? tier::io_uring : tier::worker_pool;
        BOOST_TEST((r.tier == want), "syscall " << e.nr << " is routed to " << to_string(r.tier));
        const completion_entry c = inst.call(e);
        BOOST_TEST(!(c.flags & completion_flags::ksvc_error), "syscall " << e.nr << " got a framework error " << c);
        BOOST_TEST(c.nr == e.nr);
        return c.result;
    }
    template <class... A>
    std::int64_t call(std::uint32_t n, A... a) {
        return call(sys::make(n, a...));
    }
};

//! Current file position (lseek(fd, 0, SEEK_CUR)).
inline off_t pos(int fd) { return ::lseek(fd, 0, SEEK_CUR); }

//! Whole-file size via fstat.
inline off_t size_of(int fd) {
    struct stat st {};
    return ::fstat(fd, &st) == 0 ? st.st_size : -1;
}

inline off_t size_of(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

inline bool exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

//! Writes `content` to a new file at `path` (mode 0644) and returns nothing; throws on failure.
inline void write_file(const std::string& path, const std::string& content) {
    unique_fd fd(::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644));
    BOOST_REQUIRE(fd >= 0);
    BOOST_REQUIRE(::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()));
}

inline std::string read_file(const std::string& path) {
    unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd < 0) return "<missing>";
    std::string out;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
}

//! 0..255 repeating, `n` bytes, starting at `seed`.
inline std::string pattern(std::size_t n, unsigned seed = 0) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i + seed) * 7 + 3);
    return s;
}

inline int fd_flags(int fd) { return ::fcntl(fd, F_GETFD); }
inline int fl_flags(int fd) { return ::fcntl(fd, F_GETFL); }

} // namespace ksvc::test::tier1
