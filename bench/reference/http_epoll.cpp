//! Reference: a static-file HTTP/1.1 server on epoll, doing what examples/http-server does for
//! the requests the benchmark makes — keep-alive, pipelining, the same request parser and
//! response headers (examples/http-server/http_parser.hpp and http_response.hpp: Server, Date,
//! Content-Type, Content-Length, Last-Modified, Connection), the file opened beneath the root with
//! openat2 (RESOLVE_BENEATH), fstat, If-Modified-Since → 304, refusals with the same statuses —
//! and the body by sendfile(2). One thread, edge-triggered, non-blocking sockets.
//! Shares no ksvc library code.
//!   http_epoll --root DIR [--port 0]      (SIGINT / SIGTERM: prints its CPU time and exits)
#include <fcntl.h>
#include <linux/openat2.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include "../common/harness.hpp"
#include "../../examples/http-server/http_parser.hpp"
#include "../../examples/http-server/http_response.hpp"

namespace {

struct conn {
    int fd = -1;
    std::string in;      // received, not yet answered
    std::string out;     // response bytes the socket has not taken yet
    int file = -1;       // a body being sent
    off_t file_off = 0;
    off_t file_size = 0;
    bool close_after = false;
};

} // namespace

int main(int argc, char** argv) {
    bench::args a(argc, argv);
    const std::string root = a.str("root");
    if (root.empty()) {
        std::fprintf(stderr, "usage: http_epoll --root DIR [--port N]\n");
        return 2;
    }
    const int root_fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0) bench::die("open root");
    int port = 0;
    const int lfd = bench::tcp_listen(static_cast<int>(a.num("port", 0)), true, port);
    ::signal(SIGPIPE, SIG_IGN);
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    ::sigprocmask(SIG_BLOCK, &stop, nullptr);
    const int sfd = ::signalfd(-1, &stop, SFD_CLOEXEC | SFD_NONBLOCK);
    const int ep = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLET;
    ev.data.u64 = ~0ull;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    ev.events = EPOLLIN;
    ev.data.u64 = ~1ull;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
    std::vector<conn> conns;
    std::vector<std::uint32_t> free_idx;
    std::uint64_t requests = 0;
    char buf[16384];
    bench::announce_ready(port, "http_epoll", 0);

    auto close_conn = [&](std::uint32_t i) {
        conn& c = conns[i];
        if (c.file >= 0) ::close(c.file);
        ::close(c.fd);
        c = conn{};
        free_idx.push_back(i);
    };
    // Sends queued header bytes, then the body; false when the connection is done with.
    auto pump_out = [&](conn& c) -> bool {
        while (!c.out.empty()) {
            const ssize_t w = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL | (c.file >= 0 ? MSG_MORE : 0));
            if (w < 0) return errno == EAGAIN;
            c.out.erase(0, static_cast<std::size_t>(w));
        }
        while (c.file >= 0 && c.file_off < c.file_size) {
            const ssize_t w = ::sendfile(c.fd, c.file, &c.file_off, static_cast<std::size_t>(c.file_size - c.file_off));
            if (w < 0) return errno == EAGAIN;
            if (w == 0) return false;
        }
        if (c.file >= 0) {
            ::close(c.file);
            c.file = -1;
        }
        return true;
    };
    // Answers what is complete in c.in, one response at a time; false: the peer is gone.
    auto serve = [&](conn& c) -> bool {
        while (c.out.empty() && c.file < 0 && !c.close_after) {
            http::parse_result r = http::parse(c.in);
            if (r.what == http::parse_result::incomplete) return true;
            ++requests;
            if (r.what == http::parse_result::refused) {
                http::write_response_head(c.out, r.status, "text/html; charset=utf-8", 0, false);
                c.close_after = true;
                c.in.clear();
                return pump_out(c);
            }
            const http::request& q = r.req;
            c.in.erase(0, r.consumed);
            c.close_after = !q.keep_alive;
            open_how how{};
            how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
            how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
            const std::string path = q.path.empty() ? "." : q.path;
            const int f = static_cast<int>(::syscall(SYS_openat2, root_fd, path.c_str(), &how, sizeof how));
            struct stat st{};
            if (f < 0 || ::fstat(f, &st) != 0 || !S_ISREG(st.st_mode)) {
                if (f >= 0) ::close(f);
                http::write_response_head(c.out, f < 0 && errno != EACCES ? 404 : 403, "text/html; charset=utf-8", 0, q.keep_alive);
                if (!pump_out(c)) return false;
                continue;
            }
            const auto since = q.if_modified_since.empty() ? std::nullopt : http::parse_date(q.if_modified_since);
            if (since && st.st_mtime <= *since) {
                ::close(f);
                http::write_response_head(c.out, 304, "", 0, q.keep_alive, st.st_mtime);
                if (!pump_out(c)) return false;
                continue;
            }
            http::write_response_head(c.out, 200, http::content_type(path), static_cast<std::uint64_t>(st.st_size), q.keep_alive,
                                      st.st_mtime);
            if (q.verb == http::method::get && st.st_size > 0) {
                c.file = f;
                c.file_off = 0;
                c.file_size = st.st_size;
            } else {
                ::close(f);
            }
            if (!pump_out(c)) return false;
        }
        return true;
    };

    epoll_event events[256];
    for (bool running = true; running;) {
        const int n = ::epoll_wait(ep, events, 256, -1);
        for (int k = 0; k < n; ++k) {
            const std::uint64_t id = events[k].data.u64;
            if (id == ~1ull) {
                running = false;
                continue;
            }
            if (id == ~0ull) {
                for (;;) {
                    const int fd = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0) break;
                    std::uint32_t i;
                    if (!free_idx.empty()) i = free_idx.back(), free_idx.pop_back();
                    else i = static_cast<std::uint32_t>(conns.size()), conns.emplace_back();
                    conns[i].fd = fd;
                    epoll_event e{};
                    e.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
                    e.data.u64 = i;
                    ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
                }
                continue;
            }
            const auto i = static_cast<std::uint32_t>(id);
            conn& c = conns[i];
            if (c.fd < 0) continue;
            bool ok = true, eof = false;
            if (events[k].events & EPOLLOUT) ok = pump_out(c);
            if (ok && (events[k].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
                for (;;) {
                    const ssize_t r = ::recv(c.fd, buf, sizeof buf, 0);
                    if (r > 0) {
                        c.in.append(buf, static_cast<std::size_t>(r));
                        continue;
                    }
                    if (r == 0) eof = true; // answer what came, then close
                    else if (errno != EAGAIN) ok = false;
                    break;
                }
            }
            if (ok) ok = serve(c);
            const bool drained = c.out.empty() && c.file < 0;
            if (!ok || (drained && (c.close_after || eof))) close_conn(i);
        }
    }
    for (std::uint32_t i = 0; i < conns.size(); ++i)
        if (conns[i].fd >= 0) close_conn(i);
    bench::rusage_json("exit");
    std::fprintf(stderr, "http_epoll: %llu requests\n", static_cast<unsigned long long>(requests));
    return 0;
}
