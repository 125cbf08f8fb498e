#pragma once
//! syscall_router — decides the tier (and SQE opcode) of every syscall number.
//!
//! Contract:
//! - `route(nr)` is O(1), `noexcept`, allocation-free and callable from any thread at once
//!   (a router is immutable after construction). An unknown `nr` routes to tier::legacy.
//! - `table_size()` is one past the highest routed syscall number.
//! - `count(t)` is how many numbers of the table route to tier `t` (for logs and ksvc-probe).
#include <concepts>
#include <cstddef>
#include <cstdint>

#include <ksvc/core/route.hpp>

namespace ksvc {

template <class R>
concept syscall_router = requires(const R& r, std::uint32_t nr, tier t) {
    { r.route(nr) } noexcept -> std::same_as<route_info>;
    { r.table_size() } noexcept -> std::convertible_to<std::size_t>;
    { r.count(t) } noexcept -> std::convertible_to<std::size_t>;
};

} // namespace ksvc
