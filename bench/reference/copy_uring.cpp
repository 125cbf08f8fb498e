//! Reference: a raw liburing file copy with `qd` chunks in flight. Each slot reads a chunk at its
//! offset, then writes it at the same offset, then takes the next offset. With --method splice a
//! slot moves its chunk file -> pipe -> file with two IORING_OP_SPLICE instead (no user copy).
//! With --fixed the slots' buffers are registered (io_uring_register_buffers, one per slot) and
//! every read and write is READ_FIXED / WRITE_FIXED; a refused registration is fatal.
//! Shares no ksvc code.
//!   copy_uring --src F --dst G [--qd 16] [--chunk 262144] [--direct] [--method rw|splice] [--fixed]
#include <liburing.h>

#include <fcntl.h>
#include <sys/uio.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "../common/copy_common.hpp"

namespace {

struct slot : bench::chunk_storage {
    std::uint64_t pos = 0, end = 0; // the range this slot copies; pos = start of the current piece
    std::uint32_t len = 0, done = 0; // current piece: bytes read, bytes written so far
    bool writing = false;
};

} // namespace

int main(int argc, char** argv) {
    bench::args a(argc, argv);
    const unsigned qd = static_cast<unsigned>(a.num("qd", 16));
    const unsigned chunk = static_cast<unsigned>(a.num("chunk", 256 * 1024));
    const bool splice = a.str("method", "rw") == "splice";
    const bool fixed = a.flag("fixed");
    if (fixed && splice) bench::die("--fixed copies with --method rw only", EINVAL);
    bench::copy_files f(a.str("src"), a.str("dst"), a.flag("direct"), a.flag("overwrite"));
    io_uring ring{};
    io_uring_params p{};
    if (int r = io_uring_queue_init_params(qd * 2, &ring, &p); r < 0) bench::die("io_uring_queue_init_params", -r);
    std::vector<slot> slots(qd);
    for (auto& s : slots) static_cast<bench::chunk_storage&>(s) = bench::make_chunk_storage(splice, chunk);
    if (fixed) {
        std::vector<iovec> iov(qd);
        for (unsigned i = 0; i < qd; ++i) iov[i] = {slots[i].buf, chunk};
        if (int r = io_uring_register_buffers(&ring, iov.data(), qd); r < 0) bench::die("io_uring_register_buffers", -r);
    }
    std::uint64_t next = 0, copied = 0;
    unsigned inflight = 0;
    // Reads the next piece of the slot's range, taking a new range when it is done.
    auto start_read = [&](std::uint32_t i) {
        slot& s = slots[i];
        if (s.pos == s.end) {
            if (next >= f.size) return;
            s.pos = next;
            s.end = next + chunk < f.size ? next + chunk : f.size;
            next = s.end;
        }
        s.len = static_cast<std::uint32_t>(s.end - s.pos);
        s.done = 0;
        s.writing = false;
        io_uring_sqe* sqe = io_uring_get_sqe(&ring);
        if (splice) io_uring_prep_splice(sqe, f.in, static_cast<std::int64_t>(s.pos), s.pipe_w, -1, s.len, 0);
        else if (fixed) io_uring_prep_read_fixed(sqe, f.in, s.buf, s.len, s.pos, static_cast<int>(i));
        else io_uring_prep_read(sqe, f.in, s.buf, s.len, s.pos);
        io_uring_sqe_set_data64(sqe, i);
        ++inflight;
    };
    auto start_write = [&](std::uint32_t i) {
        slot& s = slots[i];
        s.writing = true;
        io_uring_sqe* sqe = io_uring_get_sqe(&ring);
        if (splice) io_uring_prep_splice(sqe, s.pipe_r, -1, f.out, static_cast<std::int64_t>(s.pos + s.done), s.len - s.done, 0);
        else if (fixed) io_uring_prep_write_fixed(sqe, f.out, s.buf + s.done, s.len - s.done, s.pos + s.done, static_cast<int>(i));
        else io_uring_prep_write(sqe, f.out, s.buf + s.done, s.len - s.done, s.pos + s.done);
        io_uring_sqe_set_data64(sqe, i);
        ++inflight;
    };

    const std::uint64_t cpu0 = bench::self_cpu_us();
    const std::uint64_t t0 = bench::now_ns();
    for (std::uint32_t i = 0; i < qd; ++i) start_read(i);
    while (inflight > 0) {
        if (int r = io_uring_submit_and_wait(&ring, 1); r < 0 && r != -EINTR) bench::die("io_uring_submit_and_wait", -r);
        unsigned head, seen = 0;
        io_uring_cqe* cqe;
        io_uring_for_each_cqe(&ring, head, cqe) {
            ++seen;
            --inflight;
            const auto i = static_cast<std::uint32_t>(io_uring_cqe_get_data64(cqe));
            slot& s = slots[i];
            if (cqe->res <= 0) bench::die(s.writing ? "write" : "read", cqe->res < 0 ? -cqe->res : EIO);
            const auto n = static_cast<std::uint32_t>(cqe->res);
            if (!s.writing) {
                s.len = n; // a short read: write what arrived, read the rest of the range after
                start_write(i);
            } else if ((s.done += n) < s.len) {
                start_write(i);
            } else {
                copied += s.len;
                s.pos += s.len;
                start_read(i);
            }
        }
        io_uring_cq_advance(&ring, seen);
    }
    const std::uint64_t t1 = bench::now_ns();
    bench::copy_result("raw_uring", splice ? "splice" : fixed ? "rw_fixed" : "rw", f, copied, t0, t1, cpu0, bench::self_cpu_us(), qd, chunk, p.flags);
    io_uring_queue_exit(&ring);
    return copied == f.size ? 0 : 1;
}
