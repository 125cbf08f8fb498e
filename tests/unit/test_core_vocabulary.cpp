#include <boost/test/unit_test.hpp>

#include <ksvc/core/core.hpp>
#include <ksvc/executor/submit_ring.hpp>

BOOST_AUTO_TEST_SUITE(core_vocabulary)

BOOST_AUTO_TEST_CASE(entry_layouts) {
    BOOST_TEST(sizeof(ksvc::submit_entry) == 64u);
    BOOST_TEST(alignof(ksvc::submit_entry) == 64u);
    BOOST_TEST(sizeof(ksvc::completion_entry) == 32u);
}

BOOST_AUTO_TEST_CASE(completion_errors_map_to_categories) {
    ksvc::submit_entry e;
    auto c = ksvc::make_completion(e, -9);
    BOOST_TEST(c.error() == std::error_code(EBADF, std::system_category()));
    auto f = ksvc::make_framework_completion(e, ksvc::errc::refused);
    BOOST_TEST(f.error() == ksvc::errc::refused);
    BOOST_TEST(f.error().category().name() == std::string("ksvc"));
    BOOST_TEST(ksvc::make_completion(e, 3).error().value() == 0);
}

BOOST_AUTO_TEST_CASE(kernel_version_parsing) {
    auto v = ksvc::kernel_version::parse("6.18.44-fc-v657");
    BOOST_REQUIRE(v.has_value());
    BOOST_TEST(v->major == 6);
    BOOST_TEST(v->minor == 18);
    BOOST_TEST(v->patch == 44);
    BOOST_TEST(ksvc::kernel_version::parse("5.1").has_value());
    BOOST_TEST(!ksvc::kernel_version::parse("six").has_value());
    BOOST_TEST(!ksvc::kernel_version::parse("6").has_value());
    BOOST_TEST((ksvc::kernel_version{6, 1} < ksvc::kernel_version{6, 11}));
}

// Two rings in one mapping (the dispatcher's lanes): each keeps its own cells through full,
// empty and many wrap-arounds, and neither writes into the other's bytes.
BOOST_AUTO_TEST_CASE(bounded_rings_share_one_mapping) {
    constexpr std::size_t cap = 6; // rounded up to 8
    const std::size_t each = ksvc::bounded_ring<std::uint64_t>::memory_for(cap);
    BOOST_TEST(each % ksvc::cache_line == 0u);
    BOOST_TEST(each >= 8 * 2 * sizeof(std::uint64_t));
    ksvc::zero_pages mem(2 * each);
    ksvc::bounded_ring<std::uint64_t> a(cap, mem.data()), b(cap, mem.data() + each);
    BOOST_TEST(a.capacity() == 8u);
    std::uint64_t next_a = 0, next_b = 1u << 20, want_a = 0, want_b = 1u << 20;
    for (int round = 0; round < 100; ++round) {
        while (a.try_push(next_a)) ++next_a; // fill a to the brim, then b
        while (b.try_push(next_b)) ++next_b;
        BOOST_TEST_REQUIRE(a.size() == 8u);
        BOOST_TEST_REQUIRE(b.size() == 8u);
        std::uint64_t v = 0;
        for (int i = 0; i < 5; ++i) { // drain part of each, in order
            BOOST_TEST_REQUIRE(a.try_pop(v));
            BOOST_TEST_REQUIRE(v == want_a++);
            BOOST_TEST_REQUIRE(b.try_pop(v));
            BOOST_TEST_REQUIRE(v == want_b++);
        }
    }
    std::uint64_t v = 0;
    while (a.try_pop(v)) BOOST_TEST_REQUIRE(v == want_a++);
    while (b.try_pop(v)) BOOST_TEST_REQUIRE(v == want_b++);
    BOOST_TEST(want_a == next_a);
    BOOST_TEST(want_b == next_b);
    BOOST_TEST(a.empty());
    BOOST_TEST(b.empty());
}

BOOST_AUTO_TEST_SUITE_END()
