//! Reference: the optimized raw liburing echo server — multishot accept, multishot recv into a
//! provided buffer ring, the echo sent straight from the provided buffer (recycled when the send
//! completes), IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN. Sends on one connection
//! are kept in order: at most one in flight, the rest queued. Shares no ksvc code.
//!   echo_uring_multishot [--port 0] [--conns N] [--entries 4096] [--bufs 4096] [--bufsize 4096]
#include <liburing.h>

#include <cstdint>
#include <cstdio>
#include <vector>

#include "../common/harness.hpp"
#include "buf_ring.hpp"

namespace {

enum op : std::uint64_t { op_accept = 1, op_recv = 2, op_send = 3, op_close = 4 };
constexpr std::uint64_t tag(op o, std::uint32_t idx) { return (std::uint64_t{o} << 32) | idx; }

struct pending_send {
    std::uint16_t bid;
    std::uint32_t off, len;
};

struct conn {
    int fd = -1;
    bool eof = false, sending = false;
    std::vector<pending_send> q; // q[head..] not yet fully sent; q[head] in flight when sending
    std::size_t head = 0;
};

struct server {
    io_uring ring{};
    bench::buf_ring* bufs = nullptr;
    int lfd = -1;
    std::vector<conn> conns;
    std::vector<std::uint32_t> free_idx;
    std::uint64_t accepted = 0, closed = 0;

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
        io_uring_prep_multishot_accept(s, lfd, nullptr, nullptr, SOCK_CLOEXEC);
        io_uring_sqe_set_data64(s, tag(op_accept, 0));
    }
    void arm_recv(std::uint32_t i) {
        io_uring_sqe* s = sqe();
        io_uring_prep_recv_multishot(s, conns[i].fd, nullptr, 0, 0);
        s->flags |= IOSQE_BUFFER_SELECT;
        s->buf_group = bufs->group();
        io_uring_sqe_set_data64(s, tag(op_recv, i));
    }
    void arm_send(std::uint32_t i) {
        conn& c = conns[i];
        const pending_send& p = c.q[c.head];
        io_uring_sqe* s = sqe();
        io_uring_prep_send(s, c.fd, bufs->buffer(p.bid) + p.off, p.len - p.off, 0);
        io_uring_sqe_set_data64(s, tag(op_send, i));
        c.sending = true;
    }
    void arm_close(std::uint32_t i) {
        io_uring_sqe* s = sqe();
        io_uring_prep_close(s, conns[i].fd);
        io_uring_sqe_set_data64(s, tag(op_close, i));
    }
    void maybe_close(std::uint32_t i) {
        conn& c = conns[i];
        if (c.eof && !c.sending && c.fd >= 0) {
            for (std::size_t k = c.head; k < c.q.size(); ++k) bufs->recycle(c.q[k].bid);
            c.q.clear();
            c.head = 0;
            arm_close(i);
        }
    }
};

} // namespace

int main(int argc, char** argv) {
    bench::args a(argc, argv);
    server sv;
    const auto want = static_cast<std::uint64_t>(a.num("conns", 0));
    int port = 0;
    sv.lfd = bench::tcp_listen(static_cast<int>(a.num("port", 0)), false, port);
    io_uring_params p{};
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    if (int r = io_uring_queue_init_params(static_cast<unsigned>(a.num("entries", 4096)), &sv.ring, &p); r < 0)
        bench::die("io_uring_queue_init_params", -r);
    bench::buf_ring bufs(sv.ring, 1, static_cast<unsigned>(a.num("bufs", 4096)), static_cast<unsigned>(a.num("bufsize", 4096)));
    sv.bufs = &bufs;
    sv.arm_accept();
    bench::announce_ready(port, "raw_multishot", p.flags);

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
            const bool more = cqe->flags & IORING_CQE_F_MORE;
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
                    }
                    sv.conns[idx] = conn{};
                    sv.conns[idx].fd = res;
                    ++sv.accepted;
                    sv.arm_recv(idx);
                }
                if (!more) sv.arm_accept();
                break;
            case op_recv: {
                conn& c = sv.conns[i];
                if (res > 0) {
                    const auto bid = static_cast<std::uint16_t>(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
                    c.q.push_back({bid, 0, static_cast<std::uint32_t>(res)});
                    if (!c.sending) sv.arm_send(i);
                }
                if (!more) {
                    if (res > 0 || res == -ENOBUFS) sv.arm_recv(i); // ended for want of buffers: re-arm
                    else {
                        c.eof = true;
                        sv.maybe_close(i);
                    }
                }
                break;
            }
            case op_send: {
                conn& c = sv.conns[i];
                c.sending = false;
                if (res < 0) {
                    c.eof = true;
                    sv.maybe_close(i);
                    break;
                }
                pending_send& ps = c.q[c.head];
                ps.off += static_cast<std::uint32_t>(res);
                if (ps.off == ps.len) {
                    sv.bufs->recycle(ps.bid);
                    if (++c.head == c.q.size()) {
                        c.q.clear();
                        c.head = 0;
                    }
                }
                if (c.head < c.q.size()) sv.arm_send(i);
                else sv.maybe_close(i);
                break;
            }
            case op_close:
                sv.conns[i].fd = -1;
                sv.free_idx.push_back(i);
                ++sv.closed;
                break;
            }
        }
        io_uring_cq_advance(&sv.ring, seen);
        sv.bufs->publish();
    }
    bench::rusage_json("exit");
    return 0;
}
