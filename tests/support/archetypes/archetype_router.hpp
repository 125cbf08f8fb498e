#pragma once
//! archetype_router — the minimal syscall_router: exactly the three members the concept asks for.
//! A fixed table over the first 64 x86_64 numbers: read/write go to io_uring, getpid to the
//! shared page, a few calls to the worker tier, everything else (fork, execve, and numbers it does
//! not know) is refused. Immutable after construction, so route() is safe from any thread.
#include <array>
#include <cstddef>
#include <cstdint>

#include <ksvc/core/concepts/syscall_router.hpp>
#include <ksvc/core/syscalls.hpp>

namespace ksvc::test {

namespace archetype_detail {
constexpr std::array<route_info, 64> archetype_routes() noexcept {
    namespace nr = syscalls::x86_64;
    std::array<route_info, 64> t{}; // default: legacy, no opcode, not worker-safe
    t[nr::read] = {tier::io_uring, opcode::read, true};
    t[nr::write] = {tier::io_uring, opcode::write, true};
    t[nr::getpid] = {tier::shared_page, opcode::none, true};
    for (std::uint32_t n : {nr::dup, nr::lseek, nr::fstat, nr::dup2, nr::nanosleep})
        t[n] = {tier::worker_pool, opcode::none, true};
    return t;
}
} // namespace archetype_detail

class archetype_router {
public:
    [[nodiscard]] route_info route(std::uint32_t nr) const noexcept {
        return nr < table_.size() ? table_[nr] : route_info{};
    }
    [[nodiscard]] std::size_t table_size() const noexcept { return table_.size(); }
    [[nodiscard]] std::size_t count(tier t) const noexcept {
        std::size_t n = 0;
        for (const route_info& r : table_) n += r.tier == t;
        return n;
    }

private:
    static constexpr std::array<route_info, 64> table_ = archetype_detail::archetype_routes();
};
static_assert(syscall_router<archetype_router>);

} // namespace ksvc::test
