// Faults: bounded queues under pressure. A full submit ring refuses with ring_full and loses
// nothing it accepted; a tiny io_uring carries entries over; a full completion sink stops the
// dispatcher from taking work until the consumer drains, and no completion is dropped.
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include <ksvc/executor/sys.hpp>
#include <ksvc/module/presets.hpp>

#include "support/fixtures.hpp"

namespace ksvc::test::faults_backpressure {

namespace nr = ksvc::syscalls::native;

//! A mixed workload with a known result per entry: Tier 0, Tier 1 and Tier 2.
struct workload {
    unique_fd devnull{::open("/dev/null", O_WRONLY | O_CLOEXEC)};
    temp_dir dir;
    unique_fd file;
    char buf[4096] = {};
    long flags = 0;
    workload() {
        BOOST_REQUIRE(devnull >= 0);
        const std::string path = dir.file("data");
        unique_fd w(::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
        BOOST_REQUIRE(w >= 0);
        const std::string content(64, 'k');
        BOOST_REQUIRE(::write(w, content.data(), content.size()) == 64);
        file = unique_fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        BOOST_REQUIRE(file >= 0);
        flags = ::fcntl(devnull, F_GETFL);
    }
    //! Entry `id` (>= 1): getpid, write to /dev/null, pread of the file, fcntl F_GETFL.
    submit_entry entry(std::uint64_t id) {
        submit_entry e;
        const std::size_t len = id % 32 + 1;
        switch (id % 4) {
        case 0: e = sys::getpid(); break;
        case 1: e = sys::write(devnull, buf, len); break;
        case 2: e = sys::pread(file, buf + 64 * (id % 32), len, 0); break;
        default: e = sys::fcntl(devnull, F_GETFL); break;
        }
        e.corr_id = id;
        return e;
    }
    std::int64_t expected(std::uint64_t id) const {
        const auto len = static_cast<std::int64_t>(id % 32 + 1);
        switch (id % 4) {
        case 0: return ::getpid();
        case 1: return len;
        case 2: return len; // the file has 64 bytes, len <= 32
        default: return flags;
        }
    }
};

//! Counts each corr_id's completions and checks its result.
struct ledger {
    std::vector<int> seen;
    std::size_t total = 0, wrong = 0, unknown = 0;
    explicit ledger(std::size_t n) : seen(n + 1, 0) {}
    void take(const workload& w, const completion_entry& c) {
        ++total;
        if (c.corr_id == 0 || c.corr_id >= seen.size()) {
            ++unknown;
            return;
        }
        ++seen[c.corr_id];
        if (c.result != w.expected(c.corr_id)) {
            ++wrong;
            BOOST_TEST_MESSAGE("corr " << c.corr_id << ": " << c << ", expected " << w.expected(c.corr_id));
        }
    }
    void check(std::size_t upto) const {
        BOOST_TEST(unknown == 0u);
        BOOST_TEST(wrong == 0u);
        std::size_t missing = 0, dup = 0;
        for (std::size_t i = 1; i <= upto; ++i) {
            if (seen[i] == 0) ++missing;
            if (seen[i] > 1) ++dup;
        }
        BOOST_TEST(missing == 0u);
        BOOST_TEST(dup == 0u);
        BOOST_TEST(total == upto);
    }
};

//! Inline mode: runs the loop and polls until `want` completions or the deadline.
inline void drain_inline(default_instance& inst, const workload& w, ledger& l, std::size_t want) {
    completion_entry out[64];
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (l.total < want && std::chrono::steady_clock::now() < deadline) {
        inst.run_once(false);
        const std::size_t n = inst.poll(out);
        for (std::size_t i = 0; i < n; ++i) l.take(w, out[i]);
        if (n == 0) std::this_thread::yield();
    }
}

BOOST_AUTO_TEST_SUITE(faults_backpressure)

BOOST_AUTO_TEST_CASE(full_submit_ring_refuses_and_loses_nothing) {
    workload w;
    instance_options o;
    o.mode = dispatch_mode::inline_mode;
    o.submit_capacity = 8;
    default_instance inst(o);
    // No run_once: the ring fills after exactly 8.
    for (std::uint64_t id = 1; id <= 8; ++id) {
        const std::error_code ec = inst.submit(w.entry(id));
        BOOST_TEST(!ec, "entry " << id << ": " << ec.message());
    }
    BOOST_TEST(inst.loop().queued() == 8u);
    for (std::uint64_t id = 9; id <= 12; ++id) {
        const std::error_code ec = inst.submit(w.entry(id));
        BOOST_TEST((ec == errc::ring_full), "entry " << id << ": " << ec.message());
        BOOST_TEST(ec.category().name() == std::string("ksvc"));
    }
    BOOST_TEST(inst.loop().queued() == 8u);
    BOOST_TEST(inst.loop().accepted() == 8u);
    // Run the loop: each accepted entry completes exactly once, none of the refused ones.
    ledger l(12);
    drain_inline(inst, w, l, 8);
    // Nothing more arrives.
    for (int i = 0; i < 10; ++i) {
        inst.run_once(false);
        completion_entry out[8];
        const std::size_t n = inst.poll(out);
        for (std::size_t k = 0; k < n; ++k) l.take(w, out[k]);
    }
    l.check(8);
    for (std::uint64_t id = 9; id <= 12; ++id) BOOST_TEST(l.seen[id] == 0);
    BOOST_TEST(inst.loop().delivered() == 8u);
    // Room again.
    BOOST_TEST(!inst.submit(w.entry(9)));
}

BOOST_AUTO_TEST_CASE(full_submit_ring_threaded_call_waits_for_room) {
    // Threaded: a blocking call() never fails with ring_full, even when submitters keep the
    // ring full; submit() reports ring_full and the caller retries.
    workload w;
    instance_options o;
    o.mode = dispatch_mode::threaded;
    o.submit_capacity = 8;
    default_instance inst(o);
    constexpr std::size_t count = 2000;
    ledger l(count);
    std::size_t ring_full = 0;
    std::uint64_t next = 1;
    completion_entry out[64];
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (l.total < count && std::chrono::steady_clock::now() < deadline) {
        while (next <= count) {
            const std::error_code ec = inst.submit(w.entry(next));
            if (ec == errc::ring_full) {
                ++ring_full;
                break;
            }
            BOOST_REQUIRE(!ec);
            ++next;
        }
        const completion_entry c = inst.call(sys::getpid());
        BOOST_TEST(c.result == ::getpid());
        const std::size_t n = inst.poll(out);
        for (std::size_t i = 0; i < n; ++i) l.take(w, out[i]);
    }
    l.check(count);
    BOOST_TEST_MESSAGE("ring_full seen " << ring_full << " times");
    BOOST_TEST(ring_full > 0u);
}

BOOST_AUTO_TEST_CASE(tiny_io_uring_thousand_submissions_inline) {
    workload w;
    instance_options o;
    o.mode = dispatch_mode::inline_mode;
    o.ring.entries = 4;
    default_instance inst(o);
    BOOST_TEST(inst.backend().capacity() == 4u);
    constexpr std::size_t count = 1000;
    for (std::uint64_t id = 1; id <= count; ++id) BOOST_REQUIRE(!inst.submit(w.entry(id)));
    ledger l(count);
    drain_inline(inst, w, l, count);
    l.check(count);
    BOOST_TEST(inst.loop().accepted() == count);
    BOOST_TEST(inst.loop().delivered() == count);
}

BOOST_AUTO_TEST_CASE(tiny_io_uring_and_tiny_submit_ring_inline) {
    workload w;
    instance_options o;
    o.mode = dispatch_mode::inline_mode;
    o.ring.entries = 4;
    o.submit_capacity = 8;
    default_instance inst(o);
    constexpr std::size_t count = 1000;
    ledger l(count);
    std::uint64_t next = 1;
    std::size_t refusals = 0;
    completion_entry out[64];
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (l.total < count && std::chrono::steady_clock::now() < deadline) {
        while (next <= count) {
            const std::error_code ec = inst.submit(w.entry(next));
            if (ec) {
                BOOST_REQUIRE((ec == errc::ring_full));
                ++refusals;
                break;
            }
            ++next;
        }
        inst.run_once(false);
        const std::size_t n = inst.poll(out);
        for (std::size_t i = 0; i < n; ++i) l.take(w, out[i]);
    }
    l.check(count);
    BOOST_TEST(refusals > 0u);
}

BOOST_AUTO_TEST_CASE(full_sink_stops_intake_threaded) {
    workload w;
    instance_options o;
    o.mode = dispatch_mode::threaded;
    o.sink_capacity = 16;
    o.submit_capacity = 4096;
    default_instance inst(o);
    constexpr std::size_t count = 3000;
    for (std::uint64_t id = 1; id <= count; ++id) BOOST_REQUIRE(!inst.submit(w.entry(id)));
    BOOST_TEST(inst.loop().accepted() == count);

    // Nobody polls: the dispatcher fills the sink and then stops taking submissions.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const std::size_t queued = inst.loop().queued();
    const std::uint64_t delivered = inst.loop().delivered();
    BOOST_TEST_MESSAGE("after 300 ms without polling: queued " << queued << ", delivered " << delivered);
    BOOST_TEST(queued > 0u);
    BOOST_TEST(delivered <= 16u); // exactly what the sink holds
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    BOOST_TEST(inst.loop().queued() == queued); // still stalled, not trickling
    BOOST_TEST(inst.loop().delivered() == delivered);

    // The consumer drains: everything arrives exactly once.
    ledger l(count);
    completion_entry out[8]; // smaller than the sink: many partial pops
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (l.total < count && std::chrono::steady_clock::now() < deadline) {
        const std::size_t n = inst.wait_completions(out, 100);
        for (std::size_t i = 0; i < n; ++i) l.take(w, out[i]);
    }
    l.check(count);
    BOOST_TEST(inst.loop().queued() == 0u);
    BOOST_TEST(inst.loop().delivered() == count);
}

BOOST_AUTO_TEST_CASE(full_sink_with_only_worker_completions_threaded) {
    // Tier-2 completions held back by a full sink: the loop must be woken by the consumer
    // (there is no io_uring completion or submission left to wake it).
    workload w;
    instance_options o;
    o.mode = dispatch_mode::threaded;
    o.sink_capacity = 16;
    default_instance inst(o);
    constexpr std::size_t count = 48; // fits the submit ring, three sinks' worth
    for (std::uint64_t id = 1; id <= count; ++id) {
        submit_entry e = sys::fcntl(w.devnull, F_GETFL);
        e.corr_id = id * 4 + 3; // expected(): fcntl
        BOOST_REQUIRE(!inst.submit(e));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    BOOST_TEST(inst.loop().delivered() <= 16u);
    std::size_t got = 0;
    completion_entry out[4];
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    std::vector<int> seen(count + 1, 0);
    while (got < count && std::chrono::steady_clock::now() < deadline) {
        const std::size_t n = inst.wait_completions(out, 100);
        for (std::size_t i = 0; i < n; ++i) {
            BOOST_TEST(out[i].result == w.flags);
            const auto id = (out[i].corr_id - 3) / 4;
            BOOST_REQUIRE(id >= 1);
            BOOST_REQUIRE(id <= count);
            ++seen[id];
        }
        got += n;
    }
    BOOST_TEST(got == count);
    for (std::size_t i = 1; i <= count; ++i) BOOST_TEST(seen[i] == 1, "corr " << i);
}

BOOST_AUTO_TEST_CASE(full_sink_stops_intake_inline) {
    workload w;
    instance_options o;
    o.mode = dispatch_mode::inline_mode;
    o.sink_capacity = 16;
    default_instance inst(o);
    constexpr std::size_t count = 500;
    for (std::uint64_t id = 1; id <= count; ++id) BOOST_REQUIRE(!inst.submit(w.entry(id)));
    // Drive the loop without consuming: it never delivers more than the sink holds.
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
    while (std::chrono::steady_clock::now() < until) inst.run_once(false);
    BOOST_TEST(inst.loop().delivered() <= 16u);
    BOOST_TEST(inst.loop().queued() > 0u);
    ledger l(count);
    drain_inline(inst, w, l, count);
    l.check(count);
}

BOOST_AUTO_TEST_CASE(io_uring_and_worker_completions_share_the_sink_room_inline) {
    // Both completion sources become ready at once while the sink has room for one batch:
    // intake reserves one sink slot per entry in flight, so they never overflow it.
    instance_options o;
    o.mode = dispatch_mode::inline_mode;
    o.sink_capacity = 16;
    o.pool.threads = 4;
    default_instance inst(o);
    int p[2];
    BOOST_REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    unique_fd r(p[0]), w(p[1]);
    char bytes[16];
    const timespec nap{0, 20'000'000};
    for (std::uint64_t id = 1; id <= 16; ++id) { // Tier 1, pending until the pipe has data
        submit_entry e = sys::read(r, &bytes[id - 1], 1);
        e.corr_id = id;
        BOOST_REQUIRE(!inst.submit(e));
    }
    for (std::uint64_t id = 17; id <= 32; ++id) { // Tier 2, done 20 ms later
        submit_entry e = sys::make(nr::nanosleep, &nap, nullptr);
        e.corr_id = id;
        BOOST_REQUIRE(!inst.submit(e));
    }
    inst.run_once(false); // 16 reads into the ring (one sink's worth of room)
    inst.run_once(false); // nothing completed yet, and no room is left for the naps
    BOOST_TEST(inst.loop().queued() == 16u);
    BOOST_REQUIRE(::write(w, "0123456789abcdef", 16) == 16);
    std::this_thread::sleep_for(std::chrono::milliseconds(300)); // everything is ready now
    inst.run_once(false);
    BOOST_TEST(inst.loop().delivered() <= 16u, "delivered " << inst.loop().delivered() << " into a sink of 16");
    std::vector<int> seen(33, 0);
    std::size_t got = 0;
    completion_entry out[64];
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (got < 32 && std::chrono::steady_clock::now() < deadline) {
        const std::size_t n = inst.poll(out);
        for (std::size_t i = 0; i < n; ++i) {
            BOOST_REQUIRE(out[i].corr_id >= 1u);
            BOOST_REQUIRE(out[i].corr_id <= 32u);
            ++seen[out[i].corr_id];
            BOOST_TEST(out[i].result == (out[i].corr_id <= 16 ? 1 : 0), out[i]);
        }
        got += n;
        inst.run_once(false);
    }
    BOOST_TEST(got == 32u);
    for (int i = 1; i <= 32; ++i) BOOST_TEST(seen[i] == 1, "corr " << i);
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace ksvc::test::faults_backpressure
