// Ring features as types, decided at run time: the effective set under each injected kernel
// snapshot of the shared table, `auto` decisions, the strict/graceful/warn fallbacks, and the
// EINVAL ladder (this kernel never refuses, so a setup hook injects the refusal). Real rings.
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <string>
#include <system_error>

#include <ksvc/executor/sys.hpp>
#include <ksvc/module/presets.hpp>

#include "support/fixtures.hpp"
#include "support/kernels.hpp"
#include "support/ring_features.hpp"

namespace ksvc::test::features_suite {

namespace bdata = boost::unit_test::data;

using owner_instance = instance<probe_router, owner_thread_io_uring, fixed_pool, eventfd_notifier, heap_buffers>;

BOOST_AUTO_TEST_SUITE(ring_features)

// single_issuer + defer_taskrun + registered_ring_fd, each kernel of the table: what the ring
// got, and that it serves (one call and one submission, inline and threaded).
BOOST_DATA_TEST_CASE(owner_thread_ring_on_each_kernel, bdata::make(snapshot_kernels), v) {
    const capabilities caps = current_capabilities().assume(v);
    for (dispatch_mode mode : {dispatch_mode::inline_mode, dispatch_mode::threaded}) {
        instance_options o;
        o.mode = mode;
        o.caps = &caps;
        owner_instance inst(o);
        unique_fd null(::open("/dev/null", O_WRONLY | O_CLOEXEC));
        BOOST_TEST(inst.call(sys::write(null, "x", 1)).result == 1);
        BOOST_REQUIRE(!inst.submit(sys::write(null, "yz", 2)));
        completion_entry out[2];
        std::size_t n = 0;
        for (int i = 0; i < 500 && n == 0; ++i) n = inst.wait_completions(out, 10);
        BOOST_REQUIRE(n == 1u);
        BOOST_TEST(out[0].result == 2);
        const effective_features& f = inst.features();
        BOOST_TEST_CONTEXT("kernel " << v.to_string() << ", notes: " << f.notes) {
            check_owner_thread_ring(f, v);
            BOOST_TEST(f.notes.empty() == (v >= kernel_version{6, 1}));
        }
    }
}

BOOST_AUTO_TEST_CASE(auto_sqpoll_needs_more_than_two_cpus) {
    io_uring_options o;
    o.override_of[static_cast<std::size_t>(feature_id::sqpoll)] = feature_setting{feature_mode::automatic, fallback_policy::graceful};
    o.online_cpus = 2;
    basic_io_uring small(current_capabilities(), o);
    BOOST_TEST(!has(small.features(), IORING_SETUP_SQPOLL));
    o.online_cpus = 8;
    basic_io_uring big(current_capabilities(), o);
    BOOST_TEST(has(big.features(), IORING_SETUP_SQPOLL));
    // `off` wins over the type.
    io_uring_options off;
    off.override_of[static_cast<std::size_t>(feature_id::sqpoll)] = feature_setting{feature_mode::off, fallback_policy::strict};
    sqpoll_io_uring none(current_capabilities(), off);
    BOOST_TEST(!has(none.features(), IORING_SETUP_SQPOLL));
}

BOOST_AUTO_TEST_CASE(strict_names_the_feature_the_kernel_and_the_reason) {
    const capabilities caps = current_capabilities().assume({5, 15});
    using strict_ring = io_uring_backend<single_issuer_t<feature_mode::on, fallback_policy::strict>>;
    try {
        strict_ring b(caps);
        BOOST_FAIL("a strict single_issuer on 5.15 must throw");
    } catch (const std::system_error& e) {
        const std::string what = e.what();
        BOOST_TEST(what.find("single_issuer") != std::string::npos, what);
        BOOST_TEST(what.find("5.15") != std::string::npos, what);
        BOOST_TEST(what.find("IORING_SETUP_SINGLE_ISSUER") != std::string::npos, what);
        BOOST_TEST((e.code() == errc::unsupported));
    }
}

std::atomic<int> log_lines{0};
std::string last_line;
void count_log(std::string_view line) noexcept {
    ++log_lines;
    last_line = std::string(line);
}

// This kernel takes DEFER_TASKRUN; the hook refuses it with EINVAL as an older or restricted
// kernel would, and the ladder steps down to COOP_TASKRUN.
int refuse_defer_taskrun(unsigned entries, io_uring_params* p) noexcept {
    if (p->flags & IORING_SETUP_DEFER_TASKRUN) return -EINVAL;
    const long fd = ::syscall(__NR_io_uring_setup, entries, p);
    return fd < 0 ? -errno : static_cast<int>(fd);
}

BOOST_AUTO_TEST_CASE(einval_at_setup_steps_down_the_ladder) {
    using graceful_ring = io_uring_backend<single_issuer, defer_taskrun>;
    io_uring_options o;
    o.setup_hook = &refuse_defer_taskrun;
    o.log = &count_log;
    {
        graceful_ring b(current_capabilities(), o);
        BOOST_TEST(!has(b.features(), IORING_SETUP_DEFER_TASKRUN));
        BOOST_TEST(has(b.features(), IORING_SETUP_COOP_TASKRUN));
        BOOST_TEST(has(b.features(), IORING_SETUP_SINGLE_ISSUER));
        BOOST_TEST(b.features().notes.find("defer_taskrun") != std::string::npos, b.features().notes);
        BOOST_TEST(log_lines.load() == 0); // graceful: no log line
    }
    using warn_ring = io_uring_backend<single_issuer, defer_taskrun_t<feature_mode::on, fallback_policy::warn>>;
    {
        warn_ring b(current_capabilities(), o);
        BOOST_TEST(has(b.features(), IORING_SETUP_COOP_TASKRUN));
        BOOST_TEST(log_lines.load() == 1);
        BOOST_TEST(last_line.find("defer_taskrun") != std::string::npos, last_line);
    }
    using strict_ring = io_uring_backend<single_issuer, defer_taskrun_t<feature_mode::on, fallback_policy::strict>>;
    BOOST_CHECK_THROW(strict_ring(current_capabilities(), o), std::system_error);
    // The instance override turns the type's strict into graceful at run time.
    o.override_of[static_cast<std::size_t>(feature_id::defer_taskrun)] = feature_setting{feature_mode::on, fallback_policy::graceful};
    strict_ring relaxed(current_capabilities(), o);
    BOOST_TEST(has(relaxed.features(), IORING_SETUP_COOP_TASKRUN));
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace ksvc::test::features_suite
