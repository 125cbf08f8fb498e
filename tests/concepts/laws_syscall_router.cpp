// syscall_router laws, over every shipped router and the archetype:
// - route() is deterministic (also from several threads at once: a router is immutable);
// - a number that is not a syscall (past the table, or a hole in the numbering) routes to
//   tier::legacy (no opcode, not worker-safe);
// - count(t) is the number of table entries routed to t, and the counts sum to table_size();
// - a route has an opcode exactly when its tier is io_uring; worker-tier routes are worker-safe
//   and refused (legacy) routes are not (nothing may fall back to another thread from there).
// probe_router runs under the live snapshot and under injected ones (an old kernel, and io_uring
// disabled), where the io_uring routes must degrade the same way.
#include <boost/mpl/list.hpp>
#include <boost/test/unit_test.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <thread>
#include <vector>

#include <ksvc/core/concepts/syscall_router.hpp>
#include <ksvc/core/syscalls.hpp>
#include <ksvc/module/capabilities.hpp>
#include <ksvc/module/routers/probe_router.hpp>

#include "support/archetypes/archetype_router.hpp"

namespace {
using namespace ksvc;

// Every configuration a router type is checked under.
template <class R>
struct configs;

template <>
struct configs<probe_router> {
    static void each(const std::function<void(const probe_router&)>& fn) {
        fn(probe_router(current_capabilities()));
        fn(probe_router(capabilities::for_kernel({5, 1})));  // read/write/openat/… missing
        fn(probe_router(capabilities::for_kernel({6, 16}))); // bind/listen/pipe present
        capabilities off = capabilities::for_kernel({6, 16});
        off.disable(1, "disabled for the test");
        fn(probe_router(off));
    }
};

template <>
struct configs<test::archetype_router> {
    static void each(const std::function<void(const test::archetype_router&)>& fn) { fn(test::archetype_router{}); }
};

using routers = boost::mpl::list<probe_router, test::archetype_router>;

// A few numbers past the table, including the largest.
template <class R>
std::vector<std::uint32_t> outside(const R& r) {
    const auto n = static_cast<std::uint32_t>(r.table_size());
    return {n, n + 1, n + 1000, 1u << 31, std::numeric_limits<std::uint32_t>::max()};
}

} // namespace

BOOST_AUTO_TEST_SUITE(laws_syscall_router)

BOOST_AUTO_TEST_CASE_TEMPLATE(route_is_deterministic, R, routers) {
    configs<R>::each([](const R& r) {
        std::vector<route_info> first;
        for (std::uint32_t nr = 0; nr < r.table_size() + 64; ++nr) first.push_back(r.route(nr));
        // Concurrent readers see the same table, again and again.
        std::array<bool, 3> same{};
        std::vector<std::thread> readers;
        for (std::size_t t = 0; t < same.size(); ++t)
            readers.emplace_back([&, t] {
                bool ok = true;
                for (int round = 0; round < 50; ++round)
                    for (std::uint32_t nr = 0; nr < first.size(); ++nr) ok = ok && r.route(nr) == first[nr];
                same[t] = ok;
            });
        for (auto& th : readers) th.join();
        for (bool ok : same) BOOST_TEST(ok);
        for (std::uint32_t nr = 0; nr < first.size(); ++nr) BOOST_TEST((r.route(nr) == first[nr]), "nr " << nr);
    });
}

BOOST_AUTO_TEST_CASE_TEMPLATE(unknown_numbers_are_legacy, R, routers) {
    configs<R>::each([](const R& r) {
        std::vector<std::uint32_t> unknown = outside(r);
        for (std::uint32_t nr = 0; nr < r.table_size(); ++nr) // holes in the numbering (x86_64: 335..423)
            if (!syscalls::is_known(nr)) unknown.push_back(nr);
        for (std::uint32_t nr : unknown) {
            const route_info i = r.route(nr);
            BOOST_TEST((i.tier == tier::legacy), "nr " << nr);
            BOOST_TEST((i.op == opcode::none), "nr " << nr);
            BOOST_TEST(!i.worker_safe, "nr " << nr);
        }
    });
}

BOOST_AUTO_TEST_CASE_TEMPLATE(counts_partition_the_table, R, routers) {
    configs<R>::each([](const R& r) {
        BOOST_TEST(r.table_size() > 0u);
        std::array<std::size_t, tier_count> seen{};
        for (std::uint32_t nr = 0; nr < r.table_size(); ++nr) ++seen[static_cast<std::size_t>(r.route(nr).tier)];
        std::size_t sum = 0;
        for (std::size_t t = 0; t < tier_count; ++t) {
            BOOST_TEST(r.count(static_cast<tier>(t)) == seen[t], "tier " << to_string(static_cast<tier>(t)));
            sum += r.count(static_cast<tier>(t));
        }
        BOOST_TEST(sum == r.table_size());
    });
}

BOOST_AUTO_TEST_CASE_TEMPLATE(opcodes_and_fallbacks_are_sane, R, routers) {
    configs<R>::each([](const R& r) {
        for (std::uint32_t nr = 0; nr < r.table_size(); ++nr) {
            const route_info i = r.route(nr);
            if (i.tier == tier::io_uring) {
                BOOST_TEST((i.op != opcode::none), "nr " << nr);
                BOOST_TEST(static_cast<std::size_t>(i.op) < opcode_count, "nr " << nr << " opcode " << static_cast<int>(i.op));
            } else {
                BOOST_TEST((i.op == opcode::none), "nr " << nr << " tier " << to_string(i.tier));
            }
            if (i.tier == tier::worker_pool) BOOST_TEST(i.worker_safe, "nr " << nr << " runs on a worker");
            if (i.tier == tier::legacy) BOOST_TEST(!i.worker_safe, "nr " << nr << " is refused");
        }
    });
}

// A router may only put a call on io_uring when the snapshot it was built from has the opcode;
// otherwise the call goes to a worker when that is safe and is refused when it is not.
BOOST_AUTO_TEST_CASE(probe_router_degrades_without_opcodes) {
    const probe_router full(capabilities::for_kernel({6, 16}));
    capabilities none = capabilities::for_kernel({6, 16});
    none.disable(1, "disabled for the test");
    const probe_router bare(none);
    const probe_router old(capabilities::for_kernel({5, 1}));
    const capabilities old_caps = capabilities::for_kernel({5, 1});
    BOOST_TEST(bare.count(tier::io_uring) == 0u);
    for (std::uint32_t nr = 0; nr < full.table_size(); ++nr) {
        const route_info f = full.route(nr);
        if (f.tier != tier::io_uring) {
            BOOST_TEST((bare.route(nr) == f), "nr " << nr);
            continue;
        }
        const route_info fallback{f.worker_safe ? tier::worker_pool : tier::legacy, opcode::none, f.worker_safe};
        BOOST_TEST((bare.route(nr) == fallback), "nr " << nr);
        // readv/writev also need IORING_FEAT_RW_CUR_POS (5.6): a 5.1 kernel runs them on a worker.
        const bool at_position = nr == syscalls::x86_64::readv || nr == syscalls::x86_64::writev;
        const bool usable = old_caps.has(f.op) && (!at_position || old_caps.has_feature(ring_feature::rw_cur_pos));
        BOOST_TEST((old.route(nr) == (usable ? f : fallback)), "nr " << nr);
    }
}

BOOST_AUTO_TEST_SUITE_END()
