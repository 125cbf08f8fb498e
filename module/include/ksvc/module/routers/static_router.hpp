#pragma once
//! static_router<Profile> — the probe router's decisions for a kernel known at compile time:
//! the whole table is computed by the compiler from the profile (kernel_profile.hpp), route()
//! is constexpr, and nothing is probed at start-up.
//!
//!   static_assert(ksvc::static_router<ksvc::linux_6_1>{}.route(SYS_bind).tier == ksvc::tier::worker_pool);
//!
//! For every syscall and operation it gives the route probe_router gives on a kernel that
//! offers exactly the profile (tested against the probe on the real 6.1, 6.12 and 6.18 kernels).
#include <array>
#include <cstddef>
#include <cstdint>

#include <ksvc/core/concepts/syscall_router.hpp>
#include <ksvc/core/operations.hpp>
#include <ksvc/module/profiles/kernel_profile.hpp>
#include <ksvc/module/routers/route_table.hpp>

namespace ksvc {

template <kernel_profile P>
class static_router {
    struct tables {
        std::array<route_info, routing::x86_64_classes.size()> syscalls{};
        std::array<route_info, operation_count> operations{};
        std::array<std::size_t, tier_count> counts{};
    };
    static constexpr tables build() {
        tables t;
        const auto has = [](opcode op) { return P::opcodes.has(op); };
        const auto has_feature = [](std::uint32_t f) { return (P::features & f) == f; };
        for (std::uint32_t n = 0; n < t.syscalls.size(); ++n) {
            t.syscalls[n] = routing::resolve(n, has, has_feature);
            ++t.counts[static_cast<std::size_t>(t.syscalls[n].tier)];
        }
        for (std::uint32_t i = 0; i < t.operations.size(); ++i)
            t.operations[i] = routing::resolve_operation(operation_base + i, has, P::version);
        return t;
    }
    static constexpr tables tables_ = build();

public:
    using profile = P;

    [[nodiscard]] constexpr route_info route(std::uint32_t nr) const noexcept {
        if (nr < tables_.syscalls.size()) [[likely]]
            return tables_.syscalls[nr];
        if (nr - operation_base < tables_.operations.size()) return tables_.operations[nr - operation_base];
        return route_info{tier::legacy, opcode::none, false};
    }
    [[nodiscard]] constexpr std::size_t table_size() const noexcept { return tables_.syscalls.size(); }
    [[nodiscard]] constexpr std::size_t count(tier t) const noexcept { return tables_.counts[static_cast<std::size_t>(t)]; }
};
static_assert(syscall_router<static_router<linux_6_18>>);

} // namespace ksvc
