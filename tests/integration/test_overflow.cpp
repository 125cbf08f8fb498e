// In-flight work beyond the SQ size and CQ overflow: with io_uring_options::max_inflight above
// the SQ, entries keep flowing as the SQ fills; completions beyond the CQ wait in the kernel's
// overflow list (IORING_FEAT_NODROP) and are flushed — every one delivered exactly once.
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include <ksvc/executor/op.hpp>
#include <ksvc/executor/sys.hpp>
#include <ksvc/module/presets.hpp>

#include "support/fixtures.hpp"

namespace ksvc::test::overflow {

namespace bdata = boost::unit_test::data;
using namespace std::chrono_literals;

const std::vector<dispatch_mode> modes = {dispatch_mode::threaded, dispatch_mode::inline_mode};

BOOST_AUTO_TEST_SUITE(inflight_and_overflow)

// A 4-entry SQ with an 8-entry CQ, 64 entries in flight: 10 000 completions, each once.
BOOST_DATA_TEST_CASE(a_tiny_cq_overflows_and_loses_nothing, bdata::make(modes), mode) {
    instance_options o;
    o.mode = mode;
    o.ring.entries = 4;
    o.ring.cq_entries = 8;
    o.ring.max_inflight = 64;
    default_instance inst(o);
    BOOST_REQUIRE(inst.backend().capacity() == 64u);
    constexpr std::uint64_t count = 10000;
    std::vector<int> seen(count + 1, 0);
    std::uint64_t next = 1, got = 0;
    completion_entry out[64];
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (got < count && std::chrono::steady_clock::now() < deadline) {
        while (next <= count && next - got <= 256) {
            if (inst.submit(op::tagged(op::nop(), next))) break; // lane full: take some first
            ++next;
        }
        const std::size_t n = inst.wait_completions(out, 10);
        for (std::size_t i = 0; i < n; ++i) {
            BOOST_REQUIRE(out[i].corr_id >= 1 && out[i].corr_id <= count);
            BOOST_TEST(out[i].result == 0, out[i]);
            ++seen[out[i].corr_id];
        }
        got += n;
    }
    BOOST_TEST(got == count);
    std::size_t wrong = 0;
    for (std::uint64_t id = 1; id <= count; ++id) wrong += seen[id] != 1;
    BOOST_TEST(wrong == 0u);
    BOOST_TEST(inst.backend().overflow_flushes() > 0u); // the CQ did overflow
    BOOST_TEST(inst.backend().inflight() == 0u);
}

// 5 000 reads blocked on one pipe at once — far beyond the 256-entry SQ and the 512-entry CQ —
// then 5 000 bytes: every read gets its byte, every completion arrives once.
BOOST_DATA_TEST_CASE(thousands_in_flight_beyond_the_sq, bdata::make(modes), mode) {
    instance_options o;
    o.mode = mode;
    o.ring.max_inflight = 8192;
    o.sink_capacity = 8192;
    o.submit_capacity = 8192;
    default_instance inst(o);
    int p[2];
    BOOST_REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    unique_fd r(p[0]), w(p[1]);
    constexpr std::size_t count = 5000;
    std::vector<char> bytes(count, 0);
    for (std::size_t i = 0; i < count; ++i) BOOST_REQUIRE(!inst.submit(op::tagged(sys::read(r, &bytes[i], 1), i + 1)));
    // Let every read reach the kernel before a byte exists.
    const auto until = std::chrono::steady_clock::now() + 10s;
    while (inst.backend().inflight() < count && std::chrono::steady_clock::now() < until) inst.wait_completions({}, 1);
    BOOST_TEST(inst.backend().inflight() == count);
    const std::string payload(count, 'z');
    BOOST_REQUIRE(::write(w, payload.data(), payload.size()) == static_cast<ssize_t>(count));
    std::vector<int> seen(count + 1, 0);
    std::size_t got = 0;
    completion_entry out[128];
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (got < count && std::chrono::steady_clock::now() < deadline) {
        const std::size_t n = inst.wait_completions(out, 20);
        for (std::size_t i = 0; i < n; ++i) {
            BOOST_TEST(out[i].result == 1, out[i]);
            ++seen[out[i].corr_id];
        }
        got += n;
    }
    BOOST_TEST(got == count);
    std::size_t wrong = 0;
    for (std::size_t id = 1; id <= count; ++id) wrong += seen[id] != 1 || bytes[id - 1] != 'z';
    BOOST_TEST(wrong == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace ksvc::test::overflow
