#pragma once
//! probe_router — routes by the live (or an injected) capability snapshot, decided once at
//! construction into flat tables: route() is one bounds check and one load for a syscall, two
//! for an operation number.
#include <array>
#include <cstddef>
#include <cstdint>

#include <ksvc/core/concepts/syscall_router.hpp>
#include <ksvc/core/kernel.hpp>
#include <ksvc/core/operations.hpp>
#include <ksvc/module/capabilities.hpp>
#include <ksvc/module/routers/route_table.hpp>

namespace ksvc {

class probe_router {
public:
    //! Routes with the process-wide snapshot (ksvc::current_capabilities()).
    probe_router() : probe_router(current_capabilities()) {}
    //! Routes for an io_uring backend on an injected snapshot (tests, --assume-kernel).
    explicit probe_router(const capabilities& caps) : probe_router(routing::uring_offer(caps)) {}
    //! Routes for what a backend executes (the instance passes its backend's offer()).
    explicit probe_router(const routing::backend_offer& offer) noexcept {
        for (std::uint32_t n = 0; n < table_.size(); ++n) {
            table_[n] = routing::resolve(n, offer);
            ++counts_[static_cast<std::size_t>(table_[n].tier)];
        }
        operations_ = offer.operations;
    }

    [[nodiscard]] route_info route(std::uint32_t nr) const noexcept {
        if (nr < table_.size()) [[likely]]
            return table_[nr];
        if (nr - operation_base < operations_.size()) return operations_[nr - operation_base];
        return route_info{tier::legacy, opcode::none, false};
    }
    //! One past the highest routed syscall number (operation numbers are routed too, apart).
    [[nodiscard]] std::size_t table_size() const noexcept { return table_.size(); }
    //! How many syscall numbers route to `t` (operations are not counted).
    [[nodiscard]] std::size_t count(tier t) const noexcept { return counts_[static_cast<std::size_t>(t)]; }

private:
    std::array<route_info, routing::x86_64_classes.size()> table_{};
    std::array<route_info, operation_count> operations_{};
    std::array<std::size_t, tier_count> counts_{};
};
static_assert(syscall_router<probe_router>);

} // namespace ksvc
