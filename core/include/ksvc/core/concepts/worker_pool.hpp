#pragma once
//! worker_pool — runs Tier-2 entries with syscall(2) on threads that may block freely.
//!
//! Contract:
//! - `enqueue(e)` never blocks: a full pool returns errc::ring_full, a stopped one
//!   errc::shut_down. Called by the dispatcher thread only.
//! - `reap(out)` returns finished completions (dispatcher thread only). Every accepted entry
//!   completes exactly once; a full completion side is impossible because `enqueue` refuses
//!   work once `outstanding()` (accepted, not yet reaped) reaches the queue capacity.
//! - `attach(w)`: `w()` is called (from any pool thread, never blocking) after a completion is
//!   published, so the dispatcher can sleep in the kernel.
//! - `shutdown()` stops intake, finishes (drains) everything accepted, and joins the threads.
//! - A syscall that fails with EPIPE on a pool thread never delivers SIGPIPE to the process.
#include <concepts>
#include <cstddef>
#include <span>
#include <system_error>

#include <ksvc/core/entry.hpp>

namespace ksvc {

template <class W>
concept worker_pool = requires(W& w, const W& cw, const submit_entry& e, std::span<completion_entry> out,
                               waker wk) {
    { w.enqueue(e) } noexcept -> std::same_as<std::error_code>;
    { w.reap(out) } noexcept -> std::same_as<std::size_t>;
    { w.attach(wk) } noexcept;
    { w.shutdown() } noexcept;
    { cw.outstanding() } noexcept -> std::convertible_to<std::size_t>;
    { cw.active_workers() } noexcept -> std::convertible_to<std::size_t>;
    { cw.total_workers() } noexcept -> std::convertible_to<std::size_t>;
    { cw.max_workers() } noexcept -> std::convertible_to<std::size_t>;
};

} // namespace ksvc
