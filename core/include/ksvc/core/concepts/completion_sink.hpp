#pragma once
//! completion_sink — where the dispatcher delivers completions for a consumer to take.
//!
//! Contract:
//! - `push(c)` is called by the dispatcher thread only and never blocks. It returns false
//!   only when `free_slots() == 0`; the dispatcher checks `free_slots()` first and stops taking
//!   new submissions while the sink is full — a completion is never dropped.
//! - `flush_and_notify()` publishes pushed completions and wakes the consumer (once per batch).
//! - `pop(out)` takes up to out.size() published completions (one consumer thread at a time).
//! - `attach(w)`: the wake-up used by flush_and_notify.
#include <concepts>
#include <cstddef>
#include <span>

#include <ksvc/core/entry.hpp>

namespace ksvc {

template <class S>
concept completion_sink = requires(S& s, const S& cs, const completion_entry& c,
                                   std::span<completion_entry> out, waker w) {
    { s.push(c) } noexcept -> std::same_as<bool>;
    { s.flush_and_notify() } noexcept;
    { s.pop(out) } noexcept -> std::same_as<std::size_t>;
    { s.attach(w) } noexcept;
    { cs.free_slots() } noexcept -> std::convertible_to<std::size_t>;
    { cs.capacity() } noexcept -> std::convertible_to<std::size_t>;
};

} // namespace ksvc
