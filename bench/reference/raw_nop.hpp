#pragma once
//! The raw liburing batch loop: prepare `batch` SQEs, submit and wait for all of them with one
//! io_uring_enter, reap them. Written as a careful engineer would, sharing no ksvc code; the
//! ring is created once, outside any timed region. Used by the reference binary (nop_raw) and by
//! the micro benchmark next to ksvc's inline dispatcher.
#include <liburing.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fcntl.h>
#include <unistd.h>

namespace bench::raw {

enum class nop_op {
    nop,        //!< IORING_OP_NOP: what io_uring itself costs
    write_null, //!< a 1-byte IORING_OP_WRITE to /dev/null: the cheapest op a syscall maps to
    read_zero,  //!< a 0-byte IORING_OP_READ from /dev/zero
};

class nop_ring {
public:
    explicit nop_ring(unsigned entries = 256, unsigned flags = 0) {
        io_uring_params p{};
        p.flags = flags;
        if (int r = io_uring_queue_init_params(entries, &ring_, &p); r < 0) {
            std::fprintf(stderr, "io_uring_queue_init_params: %s\n", std::strerror(-r));
            std::exit(77);
        }
        flags_ = p.flags;
        null_fd_ = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
        zero_fd_ = ::open("/dev/zero", O_RDONLY | O_CLOEXEC);
    }
    ~nop_ring() {
        io_uring_queue_exit(&ring_);
        ::close(null_fd_);
        ::close(zero_fd_);
    }
    nop_ring(const nop_ring&) = delete;
    nop_ring& operator=(const nop_ring&) = delete;

    //! One batch; returns the number of completions with an unexpected result.
    unsigned run_batch(unsigned batch, nop_op op) noexcept {
        for (unsigned i = 0; i < batch; ++i) {
            io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
            switch (op) {
            case nop_op::nop: io_uring_prep_nop(sqe); break;
            case nop_op::write_null: io_uring_prep_write(sqe, null_fd_, byte_, 1, static_cast<__u64>(-1)); break;
            case nop_op::read_zero: io_uring_prep_read(sqe, zero_fd_, byte_, 0, static_cast<__u64>(-1)); break;
            }
            sqe->user_data = i;
        }
        io_uring_submit_and_wait(&ring_, batch);
        unsigned bad = 0, seen = 0, head;
        io_uring_cqe* cqe;
        const int want = op == nop_op::write_null ? 1 : 0;
        io_uring_for_each_cqe(&ring_, head, cqe) {
            ++seen;
            bad += cqe->res != want;
        }
        io_uring_cq_advance(&ring_, seen);
        // submit_and_wait(batch) returns once `batch` CQEs exist: seen == batch here.
        return bad + (batch - seen);
    }
    [[nodiscard]] unsigned setup_flags() const noexcept { return flags_; }
    int null_fd() const noexcept { return null_fd_; }
    int zero_fd() const noexcept { return zero_fd_; }

private:
    io_uring ring_{};
    unsigned flags_ = 0;
    int null_fd_ = -1;
    int zero_fd_ = -1;
    char byte_[1] = {'x'};
};

} // namespace bench::raw
