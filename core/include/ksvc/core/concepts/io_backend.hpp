#pragma once
//! io_backend — executes Tier-1 entries asynchronously (io_uring or an equivalent).
//!
//! Contract (one driving thread: the dispatcher's; nothing here is thread-safe):
//! - `submit(e, r)` queues `e` (translated per its route `r`) and never blocks. It returns a
//!   small status, not an error_code (the hot path): status::ring_full when `inflight() ==
//!   capacity()` (retry after reaping), status::unsupported when this entry has no exact
//!   translation (the dispatcher then runs it on a worker if the entry is worker-safe).
//!   What the arguments point to (buffers, iovecs, addresses, paths) must stay valid until the
//!   entry's completion is reaped — not only until submit() or flush() returns.
//! - `flush()` hands queued entries to the kernel; never blocks; returns 0 or -errno. A
//!   persistent error fails the entries it carried (each completes with that -errno).
//! - `reap(out)` moves up to out.size() completions into `out` and returns how many; every
//!   accepted entry produces exactly one completion (a multishot one several, the last
//!   without `more`; a zero-copy send its result and then a `notif` completion).
//! - `cancel(corr_id)` asks the kernel to cancel in-flight work with that id; the cancelled
//!   entry still completes (with -ECANCELED) and must still be reaped. `cancel_all()` does
//!   that for everything in flight (teardown) and returns how many requests it queued.
//! - `wait(fd, timeout_ms)` first hands queued entries to the kernel (as flush()), then blocks
//!   until a completion is ready — one that reap() would return now counts: it must not block
//!   then — `fd` becomes readable (the dispatcher's doorbell; -1 for none) or `timeout_ms`
//!   passes (-1: no limit). Returns 0, or -errno (-ETIME on timeout, -EINTR); it may return
//!   early — callers loop.
//! - `supports(op)` reports whether the backend can execute opcode `op` natively.
//!
//! Optional members the dispatcher uses when present: `submit_chain(span, routes)` (a linked
//! chain placed all or nothing), `attach_to_this_thread()` / `close_on_this_thread()` (the
//! driving thread sets the ring up and tears it down), `call_here(e, r, timeout_ms, out)` (a
//! blocking call on the caller's thread), `interrupt_calls()`, `owner_thread()`,
//! `wait_futex(word, timeout_ms)` (wait() with the doorbell a futex word instead of an fd).
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
    { b.submit(e, r) } noexcept -> std::same_as<status>;
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
