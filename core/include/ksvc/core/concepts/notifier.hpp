#pragma once
//! notifier — wakes a consumer that waits for completions.
//!
//! Contract:
//! - `notify()` never blocks, may be called from any thread, and coalesces: any number of
//!   notifies before a wait wake it once.
//! - `wait()` blocks until a notify happened since the last wait returned; `try_wait()` consumes a
//!   pending notification without blocking and says whether there was one.
//! - `wait_for_ms(ms)` is `wait()` bounded by a timeout; returns whether it was notified.
#include <concepts>

namespace ksvc {

template <class N>
concept notifier = requires(N& n, int ms) {
    { n.notify() } noexcept;
    { n.wait() } noexcept;
    { n.try_wait() } noexcept -> std::same_as<bool>;
    { n.wait_for_ms(ms) } noexcept -> std::same_as<bool>;
};

} // namespace ksvc
