#pragma once
//! buffer_provider — hands out I/O buffers.
//!
//! Contract:
//! - `acquire(min)` returns a lease of at least `min` bytes, or an empty lease when the pool is
//!   exhausted or `min` is larger than a buffer (never blocks, never throws).
//! - A lease is move-only and returns its buffer when destroyed or released; the caller must
//!   not release a buffer the kernel may still write (the dispatcher's rule: after the
//!   completion is reaped).
//! - `is_registered()` says whether buffers are registered with the kernel (fixed buffers).
//! - `pool_size()` buffers in all, `in_use()` leased now. Single-threaded unless a model says so.
#include <concepts>
#include <cstddef>
#include <span>

namespace ksvc {

template <class P>
concept buffer_provider = requires(P& p, const P& cp, std::size_t n) {
    typename P::lease;
    { p.acquire(n) } noexcept -> std::same_as<typename P::lease>;
    { cp.is_registered() } noexcept -> std::same_as<bool>;
    { cp.pool_size() } noexcept -> std::convertible_to<std::size_t>;
    { cp.in_use() } noexcept -> std::convertible_to<std::size_t>;
    { cp.buffer_size() } noexcept -> std::convertible_to<std::size_t>;
} && std::movable<typename P::lease> && !std::copyable<typename P::lease> &&
    requires(typename P::lease& l) {
        { l.data() } noexcept -> std::convertible_to<std::span<std::byte>>;
        { static_cast<bool>(l) } noexcept;
        { l.id() } noexcept -> std::convertible_to<std::size_t>;
    };

} // namespace ksvc
