#pragma once
//! io_backend — executes Tier-1 entries asynchronously (io_uring or an equivalent).
//!
//! Contract (one owner thread: the dispatcher; nothing here is thread-safe):
//! - `submit(e, r)` queues `e` (translated per `r`) and never blocks. Errors: errc::ring_full
//!   when `inflight() == capacity()` (retry after reaping), errc::unsupported when this entry
//!   cannot be translated exactly (the dispatcher then runs it on a worker if r.worker_safe).
//!   The memory the arguments point to must stay valid until the completion is reaped.
//! - `flush()` hands queued entries to the kernel; never blocks; returns 0 or -errno.
//! - `reap(out)` moves up to out.size() completions into `out` and returns how many; every
//!   accepted entry produces exactly one completion (or several ending without `more`).
//! - `cancel(corr_id)` asks the kernel to cancel in-flight work with that id; the cancelled
//!   entry still completes (with -ECANCELED) and must still be reaped. `cancel_all()` does
//!   that for everything in flight (teardown) and returns how many requests it queued.
//! - `wait(fd, timeout_ms)` first hands queued entries to the kernel (as flush()), then blocks
//!   until a completion is ready — one that reap() would return now counts: it must not block
//!   then — `fd` becomes readable (the dispatcher's doorbell; -1 for none) or `timeout_ms`
//!   passes (-1: no limit). Returns 0, or -errno (-ETIME on timeout, -EINTR); it may return
//!   early — callers loop.
//! - `supports(op)` reports whether the backend can execute opcode `op` natively.
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>

#include <ksvc/core/entry.hpp>
#include <ksvc/core/route.hpp>

namespace ksvc {

template <class B>
concept io_backend = requires(B& b, const B& cb, const submit_entry& e, route_info r,
                              std::span<completion_entry> out, std::uint64_t id, int fd, int ms, opcode op) {
    { b.submit(e, r) } noexcept -> std::same_as<std::error_code>;
    { b.flush() } noexcept -> std::same_as<int>;
    { b.reap(out) } noexcept -> std::same_as<std::size_t>;
    { b.cancel(id) } noexcept -> std::same_as<std::error_code>;
    { b.cancel_all() } noexcept -> std::convertible_to<std::size_t>;
    { b.wait(fd, ms) } noexcept -> std::same_as<int>;
    { cb.inflight() } noexcept -> std::convertible_to<std::size_t>;
    { cb.capacity() } noexcept -> std::convertible_to<std::size_t>;
    { cb.supports(op) } noexcept -> std::same_as<bool>;
};

} // namespace ksvc
