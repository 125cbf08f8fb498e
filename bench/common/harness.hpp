#pragma once
//! Benchmark harness helpers shared by the references and the ksvc arms. Nothing here is ksvc
//! code: clocks, argument parsing, loopback sockets, rusage reporting, and the byte pattern the
//! load generator sends and verifies.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>

namespace bench {

inline std::uint64_t now_ns() noexcept {
    timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

[[noreturn]] inline void die(const char* what, int err = errno) {
    std::fprintf(stderr, "fatal: %s: %s\n", what, std::strerror(err));
    std::exit(2);
}

//! `--key value` and `--flag` arguments.
class args {
public:
    args(int argc, char** argv) {
        for (int i = 1; i < argc; ++i) {
            std::string k = argv[i];
            if (k.rfind("--", 0) != 0) throw std::invalid_argument("unexpected argument " + k);
            k = k.substr(2);
            if (auto eq = k.find('='); eq != std::string::npos) {
                kv_[k.substr(0, eq)] = k.substr(eq + 1);
            } else if (i + 1 < argc && std::strncmp(argv[i + 1], "--", 2) != 0) {
                kv_[k] = argv[++i];
            } else {
                kv_[k] = "1";
            }
        }
    }
    std::string str(const std::string& k, const std::string& def = "") const {
        auto it = kv_.find(k);
        return it == kv_.end() ? def : it->second;
    }
    long long num(const std::string& k, long long def) const {
        auto it = kv_.find(k);
        return it == kv_.end() ? def : std::strtoll(it->second.c_str(), nullptr, 0);
    }
    double real(const std::string& k, double def) const {
        auto it = kv_.find(k);
        return it == kv_.end() ? def : std::strtod(it->second.c_str(), nullptr);
    }
    bool flag(const std::string& k) const { return kv_.count(k) && kv_.at(k) != "0"; }

private:
    std::map<std::string, std::string> kv_;
};

inline void pin_to_cpu(int cpu) {
    if (cpu < 0) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (::sched_setaffinity(0, sizeof set, &set) != 0) die("sched_setaffinity");
}

//! This process's CPU time (user + system, all threads) in microseconds.
inline std::uint64_t self_cpu_us() {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    auto us = [](const timeval& t) { return static_cast<std::uint64_t>(t.tv_sec) * 1000000ull + static_cast<std::uint64_t>(t.tv_usec); };
    return us(ru.ru_utime) + us(ru.ru_stime);
}

inline void rusage_json(const char* phase) {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    auto us = [](const timeval& t) { return static_cast<long long>(t.tv_sec) * 1000000ll + t.tv_usec; };
    std::printf("{\"phase\":\"%s\",\"utime_us\":%lld,\"stime_us\":%lld,\"nvcsw\":%ld,\"nivcsw\":%ld}\n", phase,
                us(ru.ru_utime), us(ru.ru_stime), ru.ru_nvcsw, ru.ru_nivcsw);
    std::fflush(stdout);
}

//! A listening TCP socket on 127.0.0.1:port (0: ephemeral). TCP_NODELAY is set on the listener,
//! which accepted sockets inherit on Linux, so every server arm gets it without a setsockopt.
inline int tcp_listen(int port, bool nonblock, int& bound_port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0) die("socket");
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("bind");
    if (::listen(fd, 4096) != 0) die("listen");
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    bound_port = ntohs(a.sin_port);
    return fd;
}

//! Servers announce readiness with their CPU time so far; the harness subtracts it.
inline void announce_ready(int port, const char* arm, unsigned ring_flags) {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    auto us = [](const timeval& t) { return static_cast<long long>(t.tv_sec) * 1000000ll + t.tv_usec; };
    std::printf("{\"phase\":\"ready\",\"port\":%d,\"arm\":\"%s\",\"ring_flags\":%u,\"utime_us\":%lld,\"stime_us\":%lld}\n",
                port, arm, ring_flags, us(ru.ru_utime), us(ru.ru_stime));
    std::fflush(stdout);
}

//! The stream pattern: byte k of connection c is table[(k + c * 977) % prime]. The table is
//! stored twice so that any window up to `prime` bytes is contiguous (sent without copying).
struct pattern {
    static constexpr std::size_t prime = 65521;
    unsigned char bytes[2 * prime];
    pattern() {
        std::uint64_t x = 0x9e3779b97f4a7c15ull;
        for (std::size_t i = 0; i < prime; ++i) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            bytes[i] = bytes[i + prime] = static_cast<unsigned char>(x);
        }
    }
    const unsigned char* at(std::uint32_t conn, std::uint64_t offset) const noexcept {
        return bytes + (offset + std::uint64_t{conn} * 977u) % prime;
    }
    //! Whether `n` received bytes at stream `offset` of `conn` are the ones sent.
    bool verify(std::uint32_t conn, std::uint64_t offset, const unsigned char* p, std::size_t n) const noexcept {
        while (n > 0) {
            const std::size_t chunk = n < prime ? n : prime;
            if (std::memcmp(at(conn, offset), p, chunk) != 0) return false;
            offset += chunk;
            p += chunk;
            n -= chunk;
        }
        return true;
    }
};

} // namespace bench
