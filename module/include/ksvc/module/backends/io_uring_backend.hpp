#pragma once
//! io_uring_backend<Features...> — the Tier-1 backend over liburing. Features compose
//! orthogonally (later issues add sqpoll, fixed_files, fixed_buffers); `basic_io_uring` is the
//! plain ring. All work happens in the non-template uring_engine (module/src), so the feature
//! template stays thin and cheap to instantiate.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <system_error>

#include <ksvc/core/concepts/io_backend.hpp>
#include <ksvc/core/kernel.hpp>

namespace ksvc {

struct io_uring_options {
    unsigned entries = 256;       //!< SQ entries; the CQ gets 2x, in-flight is capped at `entries`
    std::uint32_t setup_flags = 0; //!< extra IORING_SETUP_* bits
};

namespace detail {
class uring_engine {
public:
    //! Throws std::system_error naming io_uring_queue_init_params (ENOMEM names
    //! RLIMIT_MEMLOCK), or errc::io_uring_unavailable with the snapshot's reason.
    uring_engine(const capabilities& caps, io_uring_options opts);
    ~uring_engine();
    uring_engine(const uring_engine&) = delete;
    uring_engine& operator=(const uring_engine&) = delete;

    std::error_code submit(const submit_entry& e, route_info r) noexcept;
    int flush() noexcept;
    std::size_t reap(std::span<completion_entry> out) noexcept;
    std::error_code cancel(std::uint64_t corr_id) noexcept;
    std::size_t cancel_all() noexcept;
    int wait(int fd, int timeout_ms) noexcept;
    std::size_t inflight() const noexcept;
    std::size_t capacity() const noexcept;
    bool supports(opcode op) const noexcept;
    //! Whether `e` (routed to io_uring) has an exact SQE translation; for the route tests.
    static bool translates(std::uint32_t nr) noexcept;
    int ring_fd() const noexcept;
    std::uint32_t setup_flags() const noexcept;

private:
    struct state;
    std::unique_ptr<state> s_;
};
} // namespace detail

template <class... Features>
class io_uring_backend {
public:
    explicit io_uring_backend(const capabilities& caps, io_uring_options opts = {})
        : engine_(caps, with_features(opts)) {}

    std::error_code submit(const submit_entry& e, route_info r) noexcept { return engine_.submit(e, r); }
    int flush() noexcept { return engine_.flush(); }
    std::size_t reap(std::span<completion_entry> out) noexcept { return engine_.reap(out); }
    std::error_code cancel(std::uint64_t corr_id) noexcept { return engine_.cancel(corr_id); }
    std::size_t cancel_all() noexcept { return engine_.cancel_all(); }
    int wait(int fd, int timeout_ms = -1) noexcept { return engine_.wait(fd, timeout_ms); }
    std::size_t inflight() const noexcept { return engine_.inflight(); }
    std::size_t capacity() const noexcept { return engine_.capacity(); }
    bool supports(opcode op) const noexcept { return engine_.supports(op); }
    int ring_fd() const noexcept { return engine_.ring_fd(); }
    std::uint32_t setup_flags() const noexcept { return engine_.setup_flags(); }

private:
    static io_uring_options with_features(io_uring_options o) noexcept {
        (Features::apply(o), ...);
        return o;
    }
    detail::uring_engine engine_;
};

using basic_io_uring = io_uring_backend<>;
static_assert(io_backend<basic_io_uring>);

} // namespace ksvc
