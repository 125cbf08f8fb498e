//! The idle-connection client (no ksvc code): opens `conns` loopback TCP connections to an echo
//! server and keeps them idle until the harness has sampled the server's memory, then checks
//! that every one of them is served and closes them all. Driven through stdin/stdout, one JSON
//! line per phase:
//!
//!   idle_conns --port P [--conns 10000] [--timeout-ms 10000]
//!   -> {"phase":"connected",...}      every connection established (and left idle)
//!   <- any line                        the harness sampled the server
//!   -> {"phase":"verified",...}       each connection sent one byte and got it echoed back
//!   <- any line
//!   -> {"phase":"closed"}             every connection reset (SO_LINGER 0: no TIME_WAIT left
//!                                     behind to weigh on the next round)
//!
//! Raises its soft RLIMIT_NOFILE to the hard limit (each connection is an fd here). Exit status
//! 0 when every connection was served, 3 when one was not, 2 on a setup failure.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <vector>

#include "../common/harness.hpp"

namespace {

bool wait_line() {
    char line[64];
    return std::fgets(line, sizeof line, stdin) != nullptr;
}

unsigned char byte_of(std::size_t i) { return static_cast<unsigned char>(i * 151u + 7u); }

} // namespace

int main(int argc, char** argv) {
    bench::args a(argc, argv);
    const auto n = static_cast<std::size_t>(a.num("conns", 10000));
    const int port = static_cast<int>(a.num("port", 0));
    const int timeout_ms = static_cast<int>(a.num("timeout-ms", 10000));
    rlimit nofile{};
    if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &nofile);
    }
    if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < n + 16) {
        std::fprintf(stderr, "idle_conns: RLIMIT_NOFILE %llu is below %zu connections\n",
                     static_cast<unsigned long long>(nofile.rlim_cur), n);
        return 2;
    }

    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::vector<int> fds;
    fds.reserve(n);
    const std::uint64_t t0 = bench::now_ns();
    std::uint64_t slowest = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) bench::die("socket");
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        const std::uint64_t c0 = bench::now_ns();
        if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
            std::fprintf(stderr, "idle_conns: connection %zu: ", i);
            bench::die("connect");
        }
        const std::uint64_t c = bench::now_ns() - c0;
        if (c > slowest) slowest = c;
        fds.push_back(fd);
    }
    std::printf("{\"phase\":\"connected\",\"conns\":%zu,\"seconds\":%.3f,\"slowest_connect_ms\":%.3f}\n", n,
                static_cast<double>(bench::now_ns() - t0) / 1e9, static_cast<double>(slowest) / 1e6);
    std::fflush(stdout);
    if (!wait_line()) return 2;

    // Every connection is served: one byte each way, all sent first, then each echo checked.
    const std::uint64_t t1 = bench::now_ns();
    std::size_t served = 0, failed = 0, first_failed = n;
    std::vector<bool> ok(n, true);
    for (std::size_t i = 0; i < n; ++i) {
        const unsigned char b = byte_of(i);
        if (::send(fds[i], &b, 1, MSG_NOSIGNAL) != 1) ok[i] = false;
    }
    const std::uint64_t deadline = bench::now_ns() + static_cast<std::uint64_t>(timeout_ms) * 1000000ull;
    for (std::size_t i = 0; i < n; ++i) {
        unsigned char b = 0;
        bool got = false;
        while (ok[i]) {
            const std::uint64_t now = bench::now_ns();
            if (now >= deadline) break;
            pollfd p{fds[i], POLLIN, 0};
            const int r = ::poll(&p, 1, static_cast<int>((deadline - now) / 1000000ull) + 1);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) break;
            const ssize_t k = ::recv(fds[i], &b, 1, 0);
            if (k < 0 && errno == EINTR) continue;
            got = k == 1 && b == byte_of(i);
            break;
        }
        if (got) {
            ++served;
        } else {
            ++failed;
            if (first_failed == n) first_failed = i;
        }
    }
    std::printf("{\"phase\":\"verified\",\"conns\":%zu,\"served\":%zu,\"failed\":%zu,\"first_failed\":%lld,\"seconds\":%.3f}\n", n,
                served, failed, first_failed == n ? -1ll : static_cast<long long>(first_failed),
                static_cast<double>(bench::now_ns() - t1) / 1e9);
    std::fflush(stdout);
    wait_line(); // EOF closes as well

    const linger reset{1, 0};
    for (const int fd : fds) {
        ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
        ::close(fd);
    }
    std::printf("{\"phase\":\"closed\"}\n");
    std::fflush(stdout);
    return failed == 0 ? 0 : 3;
}
