// static_router<Profile> and the kernel profiles: compile-time routes for every shipped profile,
// the same routes as probe_router for the same kernel (the model, and the running kernel's
// probe), `ksvc-probe --emit-profile` printing the shipped profile on the kernels ksvc ships
// one for, and the shortfall message an embedded build gives on a lesser kernel.
#include <boost/test/unit_test.hpp>

#include <boost/hana/for_each.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <ksvc/core/syscalls.hpp>
#include <ksvc/module/capabilities.hpp>
#include <ksvc/module/profiles/kernel_profile.hpp>
#include <ksvc/module/routers/probe_router.hpp>
#include <ksvc/module/routers/static_router.hpp>

namespace ksvc::test::static_routes {

namespace hana = boost::hana;
namespace nr = ksvc::syscalls::native;

// ---- compile time: route lookups are constant expressions ------------------------------------
constexpr tier tier_of(auto router, std::uint32_t n) { return router.route(n).tier; }
static_assert(tier_of(static_router<linux_6_1>{}, nr::bind) == tier::worker_pool);     // IORING_OP_BIND: 6.11
static_assert(tier_of(static_router<linux_6_12>{}, nr::bind) == tier::io_uring);
static_assert(tier_of(static_router<linux_6_6>{}, nr::listen) == tier::worker_pool);
static_assert(tier_of(static_router<linux_6_18>{}, nr::listen) == tier::io_uring);
static_assert(tier_of(static_router<linux_6_6>{}, nr::ftruncate) == tier::worker_pool); // 6.9
static_assert(tier_of(static_router<linux_6_12>{}, nr::ftruncate) == tier::io_uring);
static_assert(tier_of(static_router<linux_6_12>{}, nr::pipe2) == tier::worker_pool);   // 6.16
static_assert(tier_of(static_router<linux_6_18>{}, nr::pipe2) == tier::io_uring);
static_assert(tier_of(static_router<linux_5_10>{}, nr::socket) == tier::worker_pool);  // 5.19
static_assert(tier_of(static_router<linux_5_15>{}, nr::read) == tier::io_uring);
static_assert(tier_of(static_router<linux_5_10>{}, nr::getpid) == tier::shared_page);
static_assert(tier_of(static_router<linux_6_18>{}, nr::execve) == tier::legacy);
static_assert(static_router<linux_6_18>{}.route(nr::read).op == opcode::read);
// operations: multishot accept native from 5.19, emulated before
static_assert(static_router<linux_5_15>{}.route(static_cast<std::uint32_t>(operation::accept_multishot)).emulated);
static_assert(!static_router<linux_6_1>{}.route(static_cast<std::uint32_t>(operation::accept_multishot)).emulated);
static_assert(tier_of(static_router<linux_6_6>{}, static_cast<std::uint32_t>(operation::fixed_fd_install)) == tier::legacy); // 6.8
static_assert(tier_of(static_router<linux_6_12>{}, static_cast<std::uint32_t>(operation::fixed_fd_install)) == tier::io_uring);
// the profiles themselves
static_assert(linux_6_18::opcodes.has(opcode::pipe) && !linux_6_12::opcodes.has(opcode::pipe));
static_assert((linux_6_1::setup_flags & setup_flag::defer_taskrun) && !(linux_5_15::setup_flags & setup_flag::defer_taskrun));
static_assert((linux_6_12::features & ring_feature::recvsend_bundle) && !(linux_6_6::features & ring_feature::recvsend_bundle));

BOOST_AUTO_TEST_SUITE(static_router_suite)

template <class P>
void expect_same_routes(const probe_router& probe, const char* what) {
    const static_router<P> s;
    BOOST_TEST(s.table_size() == probe.table_size());
    std::size_t differ = 0;
    for (std::uint32_t n = 0; n < s.table_size(); ++n)
        if (!(s.route(n) == probe.route(n))) {
            ++differ;
            BOOST_TEST_MESSAGE(what << ": syscall " << n << " " << syscalls::name_of(n) << " differs");
        }
    for (std::uint32_t i = 0; i < operation_count; ++i)
        if (!(s.route(operation_base + i) == probe.route(operation_base + i))) {
            ++differ;
            BOOST_TEST_MESSAGE(what << ": operation " << operation_table[i].name << " differs");
        }
    BOOST_TEST(differ == 0u, what << ": " << differ << " routes differ");
    for (std::size_t t = 0; t < tier_count; ++t) BOOST_TEST(s.count(static_cast<tier>(t)) == probe.count(static_cast<tier>(t)));
}

BOOST_AUTO_TEST_CASE(every_shipped_profile_routes_as_probe_router_on_that_model) {
    hana::for_each(shipped_profiles, [](auto t) {
        using P = typename decltype(t)::type;
        expect_same_routes<P>(probe_router(capabilities::for_kernel(P::version)), P::version.to_string().c_str());
    });
}

// The running kernel, when ksvc ships its profile: the probe (not the model) must agree.
BOOST_AUTO_TEST_CASE(the_running_kernels_profile_routes_as_its_probe) {
    const capabilities& caps = current_capabilities();
    if (!caps.io_uring_available || caps.assumed) {
        BOOST_TEST_MESSAGE("io_uring unavailable or assumed here: nothing to compare (" << caps.unavailable_reason << ")");
        return;
    }
    bool matched = false;
    hana::for_each(shipped_profiles, [&](auto t) {
        using P = typename decltype(t)::type;
        if (P::version.major != caps.version.major || P::version.minor != caps.version.minor) return;
        matched = true;
        BOOST_TEST(profile_shortfall<P>(caps) == "");
        expect_same_routes<P>(probe_router(caps), "running kernel");
    });
    if (!matched) BOOST_TEST_MESSAGE("no shipped profile for " << caps.version.to_string() << ": compared nothing");
}

BOOST_AUTO_TEST_CASE(a_lesser_kernel_is_named_with_what_it_lacks) {
    const std::string s = profile_shortfall<linux_6_18>(capabilities::for_kernel({6, 1}));
    BOOST_TEST_MESSAGE(s);
    BOOST_TEST(s.starts_with("kernel 6.1.0 lacks what the profile for 6.18 promises: opcodes "));
    for (const char* name : {"BIND", "LISTEN", "FTRUNCATE", "PIPE", "FUTEX_WAIT"}) BOOST_TEST(s.find(name) != std::string::npos, name);
    BOOST_TEST(s.find("setup flags NO_MMAP, REGISTERED_FD_ONLY, NO_SQARRAY") != std::string::npos);
    BOOST_TEST(s.find("features REG_REG_RING, RECVSEND_BUNDLE") != std::string::npos);
    BOOST_TEST(profile_shortfall<linux_6_1>(capabilities::for_kernel({6, 18})) == "");
    capabilities off = capabilities::for_kernel({6, 18});
    off.disable(1, "blocked by seccomp");
    BOOST_TEST(profile_shortfall<linux_6_1>(off) == "the profile for 6.1 needs io_uring, which is unavailable here: blocked by seccomp");
}

#ifdef KSVC_PROBE_PATH
// `ksvc-probe --emit-profile` on this kernel prints the shipped profile of its major.minor.
BOOST_AUTO_TEST_CASE(emit_profile_prints_the_shipped_profile) {
    const capabilities& caps = current_capabilities();
    if (!caps.io_uring_available || caps.assumed) return;
    std::FILE* f = ::popen((std::string(KSVC_PROBE_PATH) + " --emit-profile --profile-name here").c_str(), "r");
    BOOST_REQUIRE(f);
    std::string out;
    char buf[4096];
    while (const std::size_t n = std::fread(buf, 1, sizeof buf, f)) out.append(buf, n);
    BOOST_REQUIRE(::pclose(f) == 0);
    // The numbers after each marker (std::regex trips GCC 12's -Wmaybe-uninitialized under ASan).
    auto numbers_after = [&](const std::string& marker, std::size_t count) {
        std::vector<unsigned long long> v;
        const std::size_t at = out.find(marker);
        BOOST_REQUIRE_MESSAGE(at != std::string::npos, "no '" << marker << "' in:\n" << out);
        const char* p = out.c_str() + at + marker.size();
        while (v.size() < count) {
            while (*p && !(*p >= '0' && *p <= '9')) ++p;
            char* end = nullptr;
            v.push_back(std::strtoull(p, &end, 0));
            p = end;
        }
        return v;
    };
    const auto ver = numbers_after("version{", 2);
    const auto major = static_cast<unsigned>(ver[0]), minor = static_cast<unsigned>(ver[1]);
    const auto words = numbers_after("opcodes{{", 4);
    opcode_set ops;
    for (int i = 0; i < 4; ++i) ops.words[i] = words[static_cast<std::size_t>(i)];
    const auto flags = static_cast<std::uint32_t>(numbers_after("setup_flags =", 1)[0]);
    const auto features = static_cast<std::uint32_t>(numbers_after("features =", 1)[0]);
    BOOST_TEST(major == caps.version.major);
    BOOST_TEST(minor == caps.version.minor);
    bool matched = false;
    hana::for_each(shipped_profiles, [&](auto t) {
        using P = typename decltype(t)::type;
        if (P::version.major != major || P::version.minor != minor) return;
        matched = true;
        BOOST_TEST((ops == P::opcodes), "the emitted opcodes differ from the shipped profile for " << P::version.to_string());
        BOOST_TEST(flags == P::setup_flags);
        BOOST_TEST(features == P::features);
    });
    if (!matched) BOOST_TEST_MESSAGE("no shipped profile for " << major << "." << minor << ": compared nothing");
}
#endif

BOOST_AUTO_TEST_SUITE_END()

} // namespace ksvc::test::static_routes
