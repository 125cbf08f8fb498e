#pragma once
// Shared test fixtures: the ring configurations every ring test runs under, temporary
// directories, loopback socket pairs, an unprivileged child for limits root escapes, and a
// completion pretty-printer for Boost.Test.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <string_view>
#include <vector>

#include <ksvc/executor/sys.hpp>
#include <ksvc/module/presets.hpp>

namespace ksvc::test {

//! One way to run the dispatcher. Ring tests run under each (liburing test/ style).
struct run_config {
    const char* name;
    dispatch_mode mode;
    unsigned ring_entries;
    std::size_t submit_capacity;
    bool epoll = false; //!< io_uring refused: default_instance serves through its epoll fallback
    bool edge = false;  //!< that fallback registers sockets edge-triggered (epoll_readiness::edge)
};

inline std::ostream& operator<<(std::ostream& os, const run_config& c) { return os << c.name; }

inline const std::vector<run_config>& run_configs() {
    static const std::vector<run_config> v = {
        {"threaded/ring256", dispatch_mode::threaded, 256, 4096},
        {"inline/ring256", dispatch_mode::inline_mode, 256, 4096},
        {"threaded/ring4", dispatch_mode::threaded, 4, 8}, // tiny: exercises ring_full + carry-over
        {"inline/ring4", dispatch_mode::inline_mode, 4, 8},
    };
    return v;
}

//! The ring setups the resource suites (buffers, fixed files, zero-copy) run under: the basic
//! ring in both modes, single issuer + DEFER_TASKRUN inline, SQPOLL, and a 4-entry ring (its
//! SQ fills: entries, and legacy PROVIDE_BUFFERS refills, carry over). Converts to its mode.
struct ring_setup {
    const char* name;
    dispatch_mode mode;
    unsigned entries = 256;
    std::size_t submit_capacity = 4096;
    std::uint32_t setup_flags = 0;
    operator dispatch_mode() const noexcept { return mode; }
    void apply(instance_options& o) const {
        o.mode = mode;
        o.ring.entries = entries;
        o.submit_capacity = submit_capacity;
        o.ring.setup_flags |= setup_flags;
    }
};
inline std::ostream& operator<<(std::ostream& os, const ring_setup& s) { return os << s.name; }
inline const std::vector<ring_setup>& ring_setups() {
    static const std::vector<ring_setup> v = {
        {"threaded/basic", dispatch_mode::threaded},
        {"inline/basic", dispatch_mode::inline_mode},
        {"inline/defer-taskrun", dispatch_mode::inline_mode, 256, 4096, IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN},
        {"threaded/sqpoll", dispatch_mode::threaded, 256, 4096, IORING_SETUP_SQPOLL},
        {"inline/ring4", dispatch_mode::inline_mode, 4, 8},
    };
    return v;
}

//! The configurations of the suites that also run on the epoll backend (sockets, pipes): every
//! ring configuration, plus default_instance with io_uring refused, in both modes (ring4: four
//! entries in flight, so the backend fills and entries carry over), one-shot and edge-triggered.
inline const std::vector<run_config>& backend_configs() {
    static const std::vector<run_config> v = [] {
        std::vector<run_config> r = run_configs();
        r.push_back({"epoll/threaded/256", dispatch_mode::threaded, 256, 4096, true});
        r.push_back({"epoll/inline/256", dispatch_mode::inline_mode, 256, 4096, true});
        r.push_back({"epoll/inline/4", dispatch_mode::inline_mode, 4, 8, true});
        r.push_back({"epoll-edge/threaded/256", dispatch_mode::threaded, 256, 4096, true, true});
        r.push_back({"epoll-edge/inline/4", dispatch_mode::inline_mode, 4, 8, true, true});
        return r;
    }();
    return v;
}

//! This kernel's snapshot with io_uring refused (as sysctl kernel.io_uring_disabled=2 would).
inline const capabilities& io_uring_refused_caps() {
    static const capabilities c = [] {
        capabilities k = current_capabilities();
        k.disable(1 /* EPERM */, "io_uring refused for this test configuration");
        return k;
    }();
    return c;
}

inline void quiet_log(std::string_view) noexcept {}

inline instance_options options_for(const run_config& c) {
    instance_options o;
    o.mode = c.mode;
    o.ring.entries = c.ring_entries;
    o.submit_capacity = c.submit_capacity;
    if (c.epoll) {
        o.caps = &io_uring_refused_caps();
        o.ring.log = &quiet_log;
        o.ring.epoll_readiness_mode = c.edge ? epoll_readiness::edge : epoll_readiness::one_shot;
    }
    return o;
}

//! Takes completions until `want` arrived or `limit` passed (drives an inline loop).
template <class I>
std::vector<completion_entry> take(I& inst, std::size_t want,
                                   std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
    std::vector<completion_entry> got;
    completion_entry out[32];
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (got.size() < want && std::chrono::steady_clock::now() < deadline) {
        const std::size_t n = inst.wait_completions(out, 20);
        got.insert(got.end(), out, out + n);
    }
    return got;
}

//! The same call made directly: the raw result, or -errno (the shape of a completion's result).
template <class... A>
std::int64_t direct(std::uint32_t n, A... a) {
    errno = 0;
    const long r = ::syscall(static_cast<long>(n), sys::detail::arg(a)...);
    return r == -1 ? -static_cast<std::int64_t>(errno) : static_cast<std::int64_t>(r);
}

//! A descriptor number that was open and is now closed (nothing else opened it meanwhile).
inline int closed_fd() {
    const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error("open /dev/null failed");
    ::close(fd);
    return fd;
}

//! Open descriptors of this process, not counting the one that lists them.
inline std::size_t open_fds() {
    std::size_t n = 0;
    if (DIR* d = ::opendir("/proc/self/fd")) {
        while (const dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
        ::closedir(d);
    }
    return n - 1;
}

//! A fresh directory under $TMPDIR, removed with everything in it.
struct temp_dir {
    std::filesystem::path path;
    temp_dir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "ksvc-test-XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        path = tmpl;
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    std::string file(const std::string& name) const { return (path / name).string(); }
};

//! RAII fd.
struct unique_fd {
    int fd = -1;
    unique_fd() = default;
    explicit unique_fd(int f) : fd(f) {}
    unique_fd(unique_fd&& o) noexcept : fd(o.fd) { o.fd = -1; }
    unique_fd& operator=(unique_fd&& o) noexcept {
        reset();
        fd = o.fd;
        o.fd = -1;
        return *this;
    }
    ~unique_fd() { reset(); }
    void reset() {
        if (fd >= 0) ::close(fd);
        fd = -1;
    }
    int release() {
        int f = fd;
        fd = -1;
        return f;
    }
    operator int() const { return fd; }
};

//! A pipe: {r, w}, created with `flags` (pipe2).
struct pipe_pair {
    unique_fd r, w;
    explicit pipe_pair(int flags = O_CLOEXEC) {
        int p[2];
        if (::pipe2(p, flags) != 0) throw std::runtime_error("pipe2 failed");
        r = unique_fd(p[0]);
        w = unique_fd(p[1]);
    }
};

//! A listening TCP socket on 127.0.0.1 with an ephemeral port.
struct loopback_listener {
    unique_fd fd;
    sockaddr_in addr{};
    loopback_listener() {
        fd = unique_fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 64) != 0 ||
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
            throw std::runtime_error("loopback_listener setup failed");
    }
};

//! A connected TCP pair over loopback: {client, server}.
inline std::pair<unique_fd, unique_fd> tcp_pair() {
    loopback_listener l;
    unique_fd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (::connect(c, reinterpret_cast<sockaddr*>(&l.addr), sizeof l.addr) != 0) throw std::runtime_error("connect");
    unique_fd s(::accept4(l.fd, nullptr, nullptr, SOCK_CLOEXEC));
    if (s < 0) throw std::runtime_error("accept");
    return {std::move(c), std::move(s)};
}

//! Exit codes of run_unprivileged's child beyond what its body returns.
enum : int { child_setuid_refused = 96, child_threw = 97 };

//! Runs `body` (returning an exit code) in a forked child that dropped root for nobody when it
//! had it: root escapes RLIMIT_MEMLOCK, RLIMIT_NPROC and permission checks. The child never
//! returns into the test framework: an exception exits child_threw, and a child still running
//! after `alarm_s` seconds dies of SIGALRM (a hang is a failure, not a stuck test). Returns the
//! wait status; describe_child() puts it in words.
template <class F>
int run_unprivileged(F body, unsigned alarm_s = 20) {
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork");
    if (pid == 0) {
        ::alarm(alarm_s);
        if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) ::_exit(child_setuid_refused);
        int code = child_threw;
        try {
            code = body();
        } catch (...) {
        }
        ::_exit(code);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) throw std::runtime_error("waitpid");
    return status;
}
inline bool child_exited_with(int status, int code) { return WIFEXITED(status) && WEXITSTATUS(status) == code; }
inline std::string describe_child(int status) {
    if (WIFSIGNALED(status))
        return "killed by signal " + std::to_string(WTERMSIG(status)) + (WTERMSIG(status) == SIGALRM ? " (it hung)" : "");
    const int code = WEXITSTATUS(status);
    if (code == child_setuid_refused) return "exit 96 (could not drop root)";
    if (code == child_threw) return "exit 97 (an exception)";
    return "exit " + std::to_string(code);
}

} // namespace ksvc::test

namespace ksvc {
inline std::ostream& operator<<(std::ostream& os, dispatch_mode m) {
    return os << (m == dispatch_mode::threaded ? "threaded" : "inline");
}
inline std::ostream& operator<<(std::ostream& os, const completion_entry& c) {
    os << "{corr " << c.corr_id << ", nr " << c.nr << ", result " << c.result;
    if (c.result < 0) os << " (" << c.error().message() << ")";
    return os << ", flags " << c.flags << "}";
}
} // namespace ksvc
