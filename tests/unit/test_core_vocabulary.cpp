#include <boost/test/unit_test.hpp>

#include <ksvc/core/core.hpp>

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

BOOST_AUTO_TEST_SUITE_END()
