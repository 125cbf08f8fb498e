// buffer_provider laws, over heap_buffers, registered_buffers and the archetype (4 buffers of
// 4 KiB each; provided_buffer_ring hands out buffers only through completions — the kernel picks
// them — so its laws are in tests/integration/test_buffers.cpp):
// - acquire/release accounting: in_use() follows the live leases;
// - a lease holds at least `min` bytes; min larger than a buffer gives an empty lease;
// - exhaustion gives an empty lease (never blocks), and a released buffer can be leased again;
// - moving a lease transfers it: the moved-from lease releases nothing (no double free) and
//   move-assignment releases the target's old buffer;
// - distinct leases have distinct ids and disjoint memory.
#include <boost/mpl/list.hpp>
#include <boost/test/unit_test.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <set>
#include <stdexcept>
#include <utility>
#include <vector>

#include <ksvc/core/concepts/buffer_provider.hpp>
#include <ksvc/module/buffers/heap_buffers.hpp>
#include <ksvc/module/buffers/registered_buffers.hpp>

#include "support/archetypes/archetype_buffer_provider.hpp"

namespace {
using namespace ksvc;

constexpr std::size_t count = 4, size = 4096;

template <class P>
struct factory {
    static P make() { return P(count, size); }
};

using providers = boost::mpl::list<heap_buffers, registered_buffers, test::archetype_buffer_provider>;

template <class P>
std::vector<typename P::lease> acquire_all(P& p) {
    std::vector<typename P::lease> v;
    for (std::size_t i = 0; i < p.pool_size(); ++i) {
        v.push_back(p.acquire(1));
        BOOST_TEST(static_cast<bool>(v.back()), "lease " << i);
    }
    return v;
}

} // namespace

BOOST_AUTO_TEST_SUITE(laws_buffer_provider)

BOOST_AUTO_TEST_CASE_TEMPLATE(in_use_follows_the_leases, P, providers) {
    auto p = factory<P>::make();
    BOOST_TEST(p.pool_size() == count);
    BOOST_TEST(p.buffer_size() == size);
    BOOST_TEST(p.in_use() == 0u);
    {
        auto a = p.acquire(100);
        BOOST_TEST_REQUIRE(static_cast<bool>(a));
        BOOST_TEST(a.data().size() >= 100u);
        BOOST_TEST(p.in_use() == 1u);
        {
            auto b = p.acquire(size); // exactly a buffer: allowed
            BOOST_TEST_REQUIRE(static_cast<bool>(b));
            BOOST_TEST(b.data().size() >= size);
            BOOST_TEST(p.in_use() == 2u);
        }
        BOOST_TEST(p.in_use() == 1u);
    }
    BOOST_TEST(p.in_use() == 0u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(too_large_a_minimum_gives_an_empty_lease, P, providers) {
    auto p = factory<P>::make();
    auto l = p.acquire(size + 1);
    BOOST_TEST(!l);
    BOOST_TEST(l.data().empty());
    BOOST_TEST(p.in_use() == 0u);
    auto huge = p.acquire(static_cast<std::size_t>(-1));
    BOOST_TEST(!huge);
    BOOST_TEST(p.in_use() == 0u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(exhaustion_gives_an_empty_lease, P, providers) {
    auto p = factory<P>::make();
    auto all = acquire_all(p);
    BOOST_TEST(p.in_use() == count);
    for (int i = 0; i < 3; ++i) {
        auto none = p.acquire(1);
        BOOST_TEST(!none);
        BOOST_TEST(none.data().empty());
    }
    BOOST_TEST(p.in_use() == count);
    const std::size_t freed = all.back().id();
    all.pop_back();
    BOOST_TEST(p.in_use() == count - 1);
    auto again = p.acquire(1);
    BOOST_TEST_REQUIRE(static_cast<bool>(again));
    BOOST_TEST(again.id() == freed); // the only free buffer
    BOOST_TEST(p.in_use() == count);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(moves_transfer_without_double_free, P, providers) {
    auto p = factory<P>::make();
    {
        auto a = p.acquire(1);
        const std::size_t id = a.id();
        auto b = std::move(a);
        BOOST_TEST(static_cast<bool>(b));
        BOOST_TEST(b.id() == id);
        BOOST_TEST(p.in_use() == 1u);
        auto c = p.acquire(1);
        BOOST_TEST(p.in_use() == 2u);
        c = std::move(b); // c's own buffer goes back; c now holds `id`
        BOOST_TEST(p.in_use() == 1u);
        BOOST_TEST(c.id() == id);
        auto d = std::move(c);
        BOOST_TEST(p.in_use() == 1u);
    } // a, b, c are moved-from: only d returns a buffer
    BOOST_TEST(p.in_use() == 0u);
    // A double free would now hand some buffer out twice.
    auto all = acquire_all(p);
    std::set<std::size_t> ids;
    for (const auto& l : all) ids.insert(l.id());
    BOOST_TEST(ids.size() == count);
    BOOST_TEST(!p.acquire(1));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(distinct_leases_do_not_overlap, P, providers) {
    auto p = factory<P>::make();
    auto all = acquire_all(p);
    std::set<std::size_t> ids;
    for (std::size_t i = 0; i < all.size(); ++i) {
        ids.insert(all[i].id());
        for (auto& b : all[i].data()) b = static_cast<std::byte>(i + 1);
    }
    BOOST_TEST(ids.size() == all.size());
    for (std::size_t i = 0; i < all.size(); ++i) {
        const auto d = all[i].data();
        BOOST_TEST(d.size() >= size);
        bool intact = true;
        for (auto b : d) intact = intact && b == static_cast<std::byte>(i + 1);
        BOOST_TEST(intact, "lease " << i << " was overwritten through another lease");
        for (std::size_t j = i + 1; j < all.size(); ++j) {
            const auto e = all[j].data();
            const auto lo = std::less<>{}(d.data(), e.data());
            const bool disjoint = lo ? d.data() + d.size() <= e.data() : e.data() + e.size() <= d.data();
            BOOST_TEST(disjoint, "leases " << i << " and " << j << " overlap");
        }
    }
}

// heap_buffers allocates its pool at the first lease (start-up pays nothing for a pool nobody
// uses): a pool too large to allocate is built, says how large it is, and gives empty leases —
// nothing throws out of acquire(), and a bad size is still refused at construction.
BOOST_AUTO_TEST_CASE(heap_buffers_allocate_at_the_first_lease_and_fail_empty) {
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__) // sanitizers abort on a failed allocation
    ksvc::heap_buffers huge(4, std::size_t{1} << 46); // 256 TiB: more than any address space here
    BOOST_TEST(huge.pool_size() == 4u);
    BOOST_TEST(!huge.acquire(1));
    BOOST_TEST(huge.in_use() == 0u);
#endif
    BOOST_CHECK_THROW(ksvc::heap_buffers(SIZE_MAX / 2, 4), std::invalid_argument); // count x size overflows
    ksvc::heap_buffers small(2, 16);
    auto a = small.acquire(16);
    BOOST_REQUIRE(a);
    a.data()[15] = std::byte{7}; // the pool exists once leased
    BOOST_TEST(small.in_use() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
