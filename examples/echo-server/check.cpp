// ksvc-echo-server-check SERVER — drives the echo server as an outside client would: starts it
// on a free port (--json), echoes 64 connections × 64 KiB of varied bytes through it (every
// byte checked) and 8 MiB to a slow reader whose full window makes the server's sends short,
// then sends SIGINT with connections still open and expects a clean exit (status 0, every
// connection counted, nothing left open); a second server with --max-conns 2 closes a third
// connection on arrival and counts it. Exit 0 when all holds, 1 otherwise.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {
int failures = 0;
void check(bool ok, const std::string& what) {
    if (!ok) {
        std::fprintf(stderr, "FAIL: %s\n", what.c_str());
        ++failures;
    }
}
std::string read_line(int fd) {
    std::string s;
    char ch;
    pollfd p{fd, POLLIN, 0};
    while (::poll(&p, 1, 10000) == 1 && ::read(fd, &ch, 1) == 1 && ch != '\n') s.push_back(ch);
    return s;
}
long field(const std::string& json, const std::string& key) {
    const auto at = json.find("\"" + key + "\":");
    return at == std::string::npos ? -1 : std::strtol(json.c_str() + at + key.size() + 3, nullptr, 10);
}
} // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s path/to/ksvc-echo-server\n", argv[0]);
        return 2;
    }
    int out[2];
    if (::pipe(out) != 0) return 1;
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(out[1], 1);
        ::execl(argv[1], argv[1], "--port", "0", "--json", "--max-conns", "1000", "--buffers", "256", "--buffer-size", "65536", nullptr);
        ::_exit(127);
    }
    ::close(out[1]);
    const std::string ready = read_line(out[0]);
    const long port = field(ready, "port");
    if (port <= 0) {
        std::fprintf(stderr, "FAIL: no ready line (got '%s')\n", ready.c_str());
        ::kill(pid, SIGKILL);
        return 1;
    }
    constexpr int conns = 64;
    constexpr std::size_t bytes = 64 * 1024;
    std::vector<int> fds;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < conns; ++i) {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        check(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0, "connect");
        fds.push_back(fd);
    }
    std::vector<std::string> sent(conns), got(conns);
    std::vector<std::size_t> off(conns, 0);
    for (int i = 0; i < conns; ++i)
        for (std::size_t k = 0; k < bytes; ++k) sent[i].push_back(static_cast<char>((k * 31 + static_cast<std::size_t>(i) * 7 + k / 977) & 0xff));
    // Writes in uneven pieces, interleaved with reads, until every byte came back.
    bool done = false;
    for (int round = 0; !done && round < 200000; ++round) {
        done = true;
        for (int i = 0; i < conns; ++i) {
            if (off[i] < bytes) {
                const std::size_t piece = std::min<std::size_t>(1 + (static_cast<std::size_t>(round) * 53 + static_cast<std::size_t>(i)) % 3000, bytes - off[i]);
                const ssize_t w = ::send(fds[i], sent[i].data() + off[i], piece, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (w > 0) off[i] += static_cast<std::size_t>(w);
            }
            char buf[8192];
            ssize_t r;
            while ((r = ::recv(fds[i], buf, sizeof buf, MSG_DONTWAIT)) > 0) got[i].append(buf, static_cast<std::size_t>(r));
            done = done && got[i].size() >= bytes;
        }
        if (!done) ::usleep(50);
    }
    for (int i = 0; i < conns; ++i) check(got[i] == sent[i], "connection " + std::to_string(i) + ": the echo differs");
    // A slow reader with a tiny receive buffer: the server's sends meet a full window and come
    // back short; the rest must follow, every byte in order.
    constexpr std::size_t slow_bytes = 8 << 20;
    {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const int small = 4096;
        ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        check(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0, "connect (slow reader)");
        std::string s, g;
        for (std::size_t k = 0; k < slow_bytes; ++k) s.push_back(static_cast<char>((k * 13 + k / 1031) & 0xff));
        std::size_t at = 0;
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (g.size() < slow_bytes && std::chrono::steady_clock::now() < give_up) {
            if (at < slow_bytes) {
                const ssize_t w = ::send(fd, s.data() + at, std::min<std::size_t>(65536, slow_bytes - at), MSG_NOSIGNAL | MSG_DONTWAIT);
                if (w > 0) at += static_cast<std::size_t>(w);
            }
            char buf[700];
            const ssize_t r = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (r > 0) g.append(buf, static_cast<std::size_t>(r));
            ::usleep(20);
        }
        check(g == s, "slow reader: the echo differs (" + std::to_string(g.size()) + " bytes back)");
        ::close(fd);
    }
    // Half the clients hang up first; the rest are open when SIGINT arrives.
    for (int i = 0; i < conns / 2; ++i) ::close(fds[i]);
    ::usleep(100000);
    ::kill(pid, SIGINT);
    const std::string exit_line = read_line(out[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit status " + std::to_string(status));
    check(field(exit_line, "accepted") == conns + 1, "accepted: " + exit_line);
    check(field(exit_line, "closed") == conns + 1, "closed: " + exit_line);
    check(field(exit_line, "bytes") == static_cast<long>(conns * bytes + slow_bytes), "bytes: " + exit_line);
    check(field(exit_line, "short_sends") > 0, "no short send reached the server (slow reader): " + exit_line);
    check(field(exit_line, "tier_io_uring") > 0, "tier counters: " + exit_line);
    for (int i = conns / 2; i < conns; ++i) {
        char b;
        check(::recv(fds[i], &b, 1, 0) == 0, "an open client sees the end of the stream at shutdown");
        ::close(fds[i]);
    }
    // --max-conns 2: a third connection is closed on arrival (the client reads the end of the
    // stream), the two served ones still echo, and the exit counts one rejection.
    {
        int out2[2];
        if (::pipe(out2) != 0) return 1;
        const pid_t small = ::fork();
        if (small == 0) {
            ::dup2(out2[1], 1);
            ::execl(argv[1], argv[1], "--port", "0", "--json", "--max-conns", "2", nullptr);
            ::_exit(127);
        }
        ::close(out2[1]);
        sockaddr_in b = a;
        b.sin_port = htons(static_cast<std::uint16_t>(field(read_line(out2[0]), "port")));
        int c[3];
        for (int& fd : c) {
            fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            check(::connect(fd, reinterpret_cast<sockaddr*>(&b), sizeof b) == 0, "connect (--max-conns 2)");
            timeval tv{5, 0};
            ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            ::usleep(20000); // accepted in this order
        }
        char back[4];
        for (int i = 0; i < 2; ++i)
            check(::send(c[i], "abcd", 4, MSG_NOSIGNAL) == 4 && ::recv(c[i], back, 4, MSG_WAITALL) == 4 &&
                      std::memcmp(back, "abcd", 4) == 0,
                  "--max-conns 2: connection " + std::to_string(i) + " echoes");
        check(::recv(c[2], back, 1, 0) == 0, "--max-conns 2: the third connection is closed on arrival");
        for (int fd : c) ::close(fd);
        ::usleep(50000);
        ::kill(small, SIGINT);
        const std::string last = read_line(out2[0]);
        int st = 0;
        ::waitpid(small, &st, 0);
        check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "--max-conns 2: exit status " + std::to_string(st));
        check(field(last, "rejected") == 1 && field(last, "accepted") == 2, "--max-conns 2: counters " + last);
    }
    if (failures == 0) std::printf("ok: %d connections x %zu bytes echoed, clean SIGINT shutdown\n", conns, bytes);
    return failures ? 1 : 0;
}
