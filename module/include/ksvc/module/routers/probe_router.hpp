#pragma once
//! probe_router — routes by the live (or an injected) capability snapshot, decided once at
//! construction into a flat table: route() is one bounds check and one load.
#include <array>
#include <cstddef>
#include <cstdint>

#include <ksvc/core/concepts/syscall_router.hpp>
#include <ksvc/core/kernel.hpp>
#include <ksvc/module/capabilities.hpp>
#include <ksvc/module/routers/route_table.hpp>

namespace ksvc {

class probe_router {
public:
    //! Routes with the process-wide snapshot (ksvc::current_capabilities()).
    probe_router() : probe_router(current_capabilities()) {}
    //! Routes for an injected snapshot (tests, --assume-kernel).
    explicit probe_router(const capabilities& caps) noexcept {
        for (std::uint32_t n = 0; n < table_.size(); ++n) {
            table_[n] = routing::resolve(n, [&](opcode op) { return caps.has(op); });
            ++counts_[static_cast<std::size_t>(table_[n].tier)];
        }
    }

    [[nodiscard]] route_info route(std::uint32_t nr) const noexcept {
        return nr < table_.size() ? table_[nr] : route_info{tier::legacy, opcode::none, false};
    }
    [[nodiscard]] std::size_t table_size() const noexcept { return table_.size(); }
    [[nodiscard]] std::size_t count(tier t) const noexcept { return counts_[static_cast<std::size_t>(t)]; }

private:
    std::array<route_info, routing::x86_64_classes.size()> table_{};
    std::array<std::size_t, tier_count> counts_{};
};
static_assert(syscall_router<probe_router>);

} // namespace ksvc
