#pragma once
//! archetype_backend — the minimal io_backend, with no io_uring: entries wait in user space until
//! poll(2) says their fd is ready (or the call would fail at once), then run with syscall(2),
//! which then cannot block.
//! It translates read and write only; anything else is errc::unsupported. Single owner thread,
//! like every backend. Nothing allocates after construction.
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ksvc/core/concepts/io_backend.hpp>
#include <ksvc/core/syscalls.hpp>

namespace ksvc::test {

class archetype_backend {
public:
    explicit archetype_backend(std::size_t capacity = 8) : capacity_(capacity) {
        pending_.reserve(capacity);
        done_.reserve(capacity);
        fds_.reserve(capacity + 1);
    }

    status submit(const submit_entry& e, route_info) noexcept {
        if (inflight() >= capacity_) return status::ring_full;
        if (e.nr != syscalls::x86_64::read && e.nr != syscalls::x86_64::write)
            return status::unsupported;
        pending_.push_back({e, false, false});
        return {};
    }
    int flush() noexcept {
        for (op& o : pending_) o.flushed = true;
        return 0;
    }
    std::size_t reap(std::span<completion_entry> out) noexcept {
        progress();
        std::size_t n = 0;
        for (; n < out.size() && n < done_.size(); ++n) out[n] = done_[n];
        done_.erase(done_.begin(), done_.begin() + static_cast<std::ptrdiff_t>(n));
        return n;
    }
    std::error_code cancel(std::uint64_t corr_id) noexcept {
        bool found = false;
        for (op& o : pending_)
            if (o.e.corr_id == corr_id) found = o.cancelled = true;
        return found ? std::error_code{} : std::error_code(ENOENT, std::system_category());
    }
    std::size_t cancel_all() noexcept {
        for (op& o : pending_) o.cancelled = true;
        return pending_.size();
    }
    //! Like io_uring_enter, waiting also submits what is queued.
    int wait(int fd, int timeout_ms) noexcept {
        flush();
        progress();
        if (!done_.empty()) return 0;
        fds_.clear();
        fds_.push_back({fd, POLLIN, 0}); // a negative fd is ignored by poll
        for (const op& o : pending_)
            if (o.flushed) fds_.push_back(poll_for(o));
        const int r = ::poll(fds_.data(), fds_.size(), timeout_ms);
        return r < 0 ? -errno : r == 0 ? -ETIME : 0;
    }
    [[nodiscard]] std::size_t inflight() const noexcept { return pending_.size() + done_.size(); }
    [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
    [[nodiscard]] bool supports(opcode o) const noexcept { return o == opcode::read || o == opcode::write; }

private:
    struct op {
        submit_entry e;
        bool flushed;
        bool cancelled;
    };

    static pollfd poll_for(const op& o) noexcept {
        const bool reading = o.e.nr == syscalls::x86_64::read;
        return {static_cast<int>(o.e.args[0]), static_cast<short>(reading ? POLLIN : POLLOUT), 0};
    }

    // Whether the syscall would return now: the fd is ready, or the call fails at once (a bad
    // fd, or one not open in that direction, which poll(2) alone would never report).
    static bool ready(const op& o) noexcept {
        const pollfd p0 = poll_for(o);
        const int mode = p0.fd < 0 ? -1 : ::fcntl(p0.fd, F_GETFL);
        if (mode < 0 || (mode & O_ACCMODE) == (p0.events == POLLIN ? O_WRONLY : O_RDONLY)) return true;
        pollfd p = p0;
        return ::poll(&p, 1, 0) > 0; // EINTR: try again later
    }

    // Completes every flushed entry that is cancelled or whose fd is ready, in submission order.
    void progress() noexcept {
        std::size_t kept = 0;
        for (op& o : pending_) {
            if (!o.flushed || (!o.cancelled && !ready(o))) {
                pending_[kept++] = o;
                continue;
            }
            std::int64_t res = -ECANCELED;
            if (!o.cancelled) {
                const long r = ::syscall(static_cast<long>(o.e.nr), o.e.args[0], o.e.args[1], o.e.args[2]);
                res = r == -1 ? -static_cast<std::int64_t>(errno) : r;
            }
            done_.push_back(make_completion(o.e, res));
        }
        pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(kept), pending_.end());
    }

    std::size_t capacity_;
    std::vector<op> pending_;
    std::vector<completion_entry> done_;
    std::vector<pollfd> fds_;
};
static_assert(io_backend<archetype_backend>);

} // namespace ksvc::test
