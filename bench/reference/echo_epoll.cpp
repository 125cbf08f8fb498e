//! Reference: an epoll echo server — edge-triggered, non-blocking sockets, recv until EAGAIN,
//! echo each chunk at once, keep what the socket would not take and flush it on EPOLLOUT.
//! Shares no ksvc code.
//!   echo_epoll [--port 0] [--conns N] [--bufsize 16384]
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "../common/harness.hpp"

namespace {

struct conn {
    int fd = -1;
    std::string backlog; // bytes the socket did not accept yet
};

} // namespace

int main(int argc, char** argv) {
    bench::args a(argc, argv);
    const auto want = static_cast<std::uint64_t>(a.num("conns", 0));
    const auto bufsize = static_cast<std::size_t>(a.num("bufsize", 16384));
    int port = 0;
    const int lfd = bench::tcp_listen(static_cast<int>(a.num("port", 0)), true, port);
    const int ep = ::epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) bench::die("epoll_create1");
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLET;
    ev.data.u64 = ~0ull;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    std::vector<conn> conns;
    std::vector<std::uint32_t> free_idx;
    std::unique_ptr<char[]> buf(new char[bufsize]);
    std::uint64_t accepted = 0, closed = 0;
    bench::announce_ready(port, "epoll", 0);

    auto close_conn = [&](std::uint32_t i) {
        ::close(conns[i].fd); // also removes it from the epoll set
        conns[i].fd = -1;
        conns[i].backlog.clear();
        free_idx.push_back(i);
        ++closed;
    };
    // Sends what it can; false when the connection failed.
    auto flush = [&](conn& c, const char* p, std::size_t n) {
        if (!c.backlog.empty()) {
            c.backlog.append(p, n);
            p = c.backlog.data();
            n = c.backlog.size();
        }
        std::size_t done = 0;
        while (done < n) {
            const ssize_t w = ::send(c.fd, p + done, n - done, MSG_NOSIGNAL);
            if (w > 0) {
                done += static_cast<std::size_t>(w);
            } else if (w < 0 && errno == EINTR) {
                continue;
            } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                break;
            } else {
                return false;
            }
        }
        if (c.backlog.empty()) {
            if (done < n) c.backlog.assign(p + done, n - done);
        } else {
            c.backlog.erase(0, done);
        }
        return true;
    };

    std::vector<epoll_event> events(1024);
    while (want == 0 || closed < want) {
        const int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            bench::die("epoll_wait");
        }
        for (int k = 0; k < n; ++k) {
            const epoll_event& e = events[static_cast<std::size_t>(k)];
            if (e.data.u64 == ~0ull) {
                for (;;) {
                    const int fd = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0) break; // EAGAIN: accepted everything queued
                    std::uint32_t idx;
                    if (!free_idx.empty()) {
                        idx = free_idx.back();
                        free_idx.pop_back();
                    } else {
                        idx = static_cast<std::uint32_t>(conns.size());
                        conns.emplace_back();
                    }
                    conns[idx].fd = fd;
                    ++accepted;
                    epoll_event ce{};
                    ce.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
                    ce.data.u64 = idx;
                    ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce);
                }
                continue;
            }
            const auto i = static_cast<std::uint32_t>(e.data.u64);
            conn& c = conns[i];
            if (c.fd < 0) continue;
            bool dead = (e.events & EPOLLERR) != 0;
            if (!dead && (e.events & EPOLLOUT) && !c.backlog.empty()) dead = !flush(c, nullptr, 0);
            if (!dead && (e.events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))) {
                for (;;) {
                    const ssize_t r = ::recv(c.fd, buf.get(), bufsize, 0);
                    if (r > 0) {
                        if (!flush(c, buf.get(), static_cast<std::size_t>(r))) {
                            dead = true;
                            break;
                        }
                        if (static_cast<std::size_t>(r) < bufsize) {
                            // A short read drained the socket unless the peer also closed: one
                            // more recv tells EAGAIN from EOF only when RDHUP was reported.
                            if (!(e.events & (EPOLLRDHUP | EPOLLHUP))) break;
                        }
                    } else if (r == 0) {
                        dead = true;
                        break;
                    } else if (errno == EINTR) {
                        continue;
                    } else {
                        if (errno != EAGAIN && errno != EWOULDBLOCK) dead = true;
                        break;
                    }
                }
            }
            if (dead) close_conn(i);
        }
    }
    bench::rusage_json("exit");
    ::close(ep);
    ::close(lfd);
    (void)accepted;
    return 0;
}
