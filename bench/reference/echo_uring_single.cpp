//! Reference: a raw liburing echo server, single-shot (one accept, one recv, one send in flight
//! per connection), written as a careful engineer would and sharing no ksvc code.
//!   echo_uring_single [--port 0] [--conns N] [--bufsize 16384] [--entries 4096] [--flags 0]
//! Exits once N connections have been accepted and closed (N = 0: never). Prints a "ready" JSON
//! line (port, CPU so far) when listening and an "exit" line with its rusage at the end.
#include <liburing.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "../common/harness.hpp"

namespace {

enum op : std::uint64_t { op_accept = 1, op_recv = 2, op_send = 3, op_close = 4 };
constexpr std::uint64_t tag(op o, std::uint32_t idx) { return (std::uint64_t{o} << 32) | idx; }

struct conn {
    int fd = -1;
    std::uint32_t sent = 0, len = 0;
    std::unique_ptr<char[]> buf;
};

struct server {
    io_uring ring{};
    int lfd = -1;
    std::uint32_t bufsize = 16384;
    std::vector<conn> conns;
    std::vector<std::uint32_t> free_idx;
    std::uint64_t accepted = 0, closed = 0, messages = 0;

    io_uring_sqe* sqe() {
        io_uring_sqe* s = io_uring_get_sqe(&ring);
        if (!s) {
            io_uring_submit(&ring);
            s = io_uring_get_sqe(&ring);
        }
        return s;
    }
    void arm_accept() {
        io_uring_sqe* s = sqe();
        io_uring_prep_accept(s, lfd, nullptr, nullptr, SOCK_CLOEXEC);
        io_uring_sqe_set_data64(s, tag(op_accept, 0));
    }
    void arm_recv(std::uint32_t i) {
        io_uring_sqe* s = sqe();
        io_uring_prep_recv(s, conns[i].fd, conns[i].buf.get(), bufsize, 0);
        io_uring_sqe_set_data64(s, tag(op_recv, i));
    }
    void arm_send(std::uint32_t i) {
        conn& c = conns[i];
        io_uring_sqe* s = sqe();
        io_uring_prep_send(s, c.fd, c.buf.get() + c.sent, c.len - c.sent, 0);
        io_uring_sqe_set_data64(s, tag(op_send, i));
    }
    void arm_close(std::uint32_t i) {
        io_uring_sqe* s = sqe();
        io_uring_prep_close(s, conns[i].fd);
        io_uring_sqe_set_data64(s, tag(op_close, i));
    }
};

} // namespace

int main(int argc, char** argv) {
    bench::args a(argc, argv);
    server sv;
    sv.bufsize = static_cast<std::uint32_t>(a.num("bufsize", 16384));
    const auto want = static_cast<std::uint64_t>(a.num("conns", 0));
    int port = 0;
    sv.lfd = bench::tcp_listen(static_cast<int>(a.num("port", 0)), false, port);
    io_uring_params p{};
    p.flags = static_cast<unsigned>(a.num("flags", 0));
    if (int r = io_uring_queue_init_params(static_cast<unsigned>(a.num("entries", 4096)), &sv.ring, &p); r < 0)
        bench::die("io_uring_queue_init_params", -r);
    sv.arm_accept();
    bench::announce_ready(port, "raw_single", p.flags);

    while (want == 0 || sv.closed < want) {
        if (int r = io_uring_submit_and_wait(&sv.ring, 1); r < 0 && r != -EINTR) bench::die("io_uring_submit_and_wait", -r);
        unsigned head, seen = 0;
        io_uring_cqe* cqe;
        io_uring_for_each_cqe(&sv.ring, head, cqe) {
            ++seen;
            const std::uint64_t ud = io_uring_cqe_get_data64(cqe);
            const auto o = static_cast<op>(ud >> 32);
            const auto i = static_cast<std::uint32_t>(ud);
            const int res = cqe->res;
            switch (o) {
            case op_accept:
                if (res >= 0) {
                    std::uint32_t idx;
                    if (!sv.free_idx.empty()) {
                        idx = sv.free_idx.back();
                        sv.free_idx.pop_back();
                    } else {
                        idx = static_cast<std::uint32_t>(sv.conns.size());
                        sv.conns.emplace_back();
                        sv.conns.back().buf = std::make_unique<char[]>(sv.bufsize);
                    }
                    sv.conns[idx].fd = res;
                    ++sv.accepted;
                    sv.arm_recv(idx);
                }
                if (want == 0 || sv.accepted < want) sv.arm_accept();
                break;
            case op_recv:
                if (res <= 0) {
                    sv.arm_close(i);
                } else {
                    sv.conns[i].len = static_cast<std::uint32_t>(res);
                    sv.conns[i].sent = 0;
                    sv.arm_send(i);
                }
                break;
            case op_send:
                if (res < 0) {
                    sv.arm_close(i);
                    break;
                }
                sv.conns[i].sent += static_cast<std::uint32_t>(res);
                if (sv.conns[i].sent < sv.conns[i].len) {
                    sv.arm_send(i);
                } else {
                    ++sv.messages;
                    sv.arm_recv(i);
                }
                break;
            case op_close:
                sv.conns[i].fd = -1;
                sv.free_idx.push_back(i);
                ++sv.closed;
                break;
            }
        }
        io_uring_cq_advance(&sv.ring, seen);
    }
    bench::rusage_json("exit");
    io_uring_queue_exit(&sv.ring);
    return 0;
}
