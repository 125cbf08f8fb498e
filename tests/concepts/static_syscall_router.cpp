// Compile-time conformance of syscall_router: the archetype and the shipped models satisfy it;
// a probe type with exactly one flaw (a member missing, returning the wrong type, not noexcept,
// or not callable on a const router) does not. The probe without a flaw is the control.
#include <boost/test/unit_test.hpp>

#include <cstddef>
#include <cstdint>

#include <ksvc/core/concepts/syscall_router.hpp>
#include <ksvc/module/routers/probe_router.hpp>

#include "concepts/flaws.hpp"
#include "support/archetypes/archetype_router.hpp"

namespace {
using namespace ksvc;

static_assert(syscall_router<test::archetype_router>);
static_assert(syscall_router<probe_router>);

enum class flaw {
    none,
    route_missing, route_wrong_type, route_throws, route_not_const,
    table_size_missing, table_size_wrong_type, table_size_throws,
    count_missing, count_wrong_type, count_throws,
    end
};

template <flaw F>
struct router_probe {
    route_info route(std::uint32_t) const noexcept(F != flaw::route_throws)
        requires(F != flaw::route_missing && F != flaw::route_wrong_type && F != flaw::route_not_const);
    tier route(std::uint32_t) const noexcept requires(F == flaw::route_wrong_type); // same_as<route_info>
    route_info route(std::uint32_t) noexcept requires(F == flaw::route_not_const);

    std::size_t table_size() const noexcept(F != flaw::table_size_throws)
        requires(F != flaw::table_size_missing && F != flaw::table_size_wrong_type);
    void table_size() const noexcept requires(F == flaw::table_size_wrong_type);

    std::size_t count(tier) const noexcept(F != flaw::count_throws)
        requires(F != flaw::count_missing && F != flaw::count_wrong_type);
    const char* count(tier) const noexcept requires(F == flaw::count_wrong_type);
};

constexpr auto models = []<class T> { return syscall_router<T>; };
static_assert(test::every_flaw_breaks<flaw, router_probe, decltype(models)>());

// A route() that may throw is the headline case: the router sits on every call's path.
struct throwing_router {
    route_info route(std::uint32_t) const;
    std::size_t table_size() const noexcept;
    std::size_t count(tier) const noexcept;
};
static_assert(!syscall_router<throwing_router>);
static_assert(!syscall_router<int>);

} // namespace

BOOST_AUTO_TEST_CASE(static_syscall_router_archetype_routes) {
    constexpr test::archetype_router r;
    BOOST_TEST((r.route(syscalls::x86_64::read).tier == tier::io_uring));
    BOOST_TEST((r.route(static_cast<std::uint32_t>(r.table_size())).tier == tier::legacy));
}
