// Faults at shutdown: work that would block forever is cancelled (-ECANCELED) and still
// delivered, entries never started complete as cancelled, nothing hangs, and a stopped instance
// refuses new work with shut_down.
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include <ksvc/executor/sys.hpp>
#include <ksvc/module/presets.hpp>

#include "support/fixtures.hpp"

namespace ksvc::test::faults_shutdown {

inline std::pair<unique_fd, unique_fd> make_pipe() {
    int p[2];
    BOOST_REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    return {unique_fd(p[0]), unique_fd(p[1])};
}

//! Runs `f` and fails the whole process if it has not returned within `limit` (a hang).
template <class F>
void within(std::chrono::seconds limit, const char* what, F f) {
    auto fut = std::async(std::launch::async, f);
    if (fut.wait_for(limit) != std::future_status::ready) {
        std::fprintf(stderr, "FATAL: %s did not return within %lld s\n", what, static_cast<long long>(limit.count()));
        std::_Exit(1);
    }
    fut.get();
}

//! Polls (never blocks) until `want` completions or nothing more comes.
inline std::vector<completion_entry> poll_all(default_instance& inst, std::size_t want) {
    std::vector<completion_entry> got;
    completion_entry out[16];
    for (int idle = 0; got.size() < want && idle < 100;) {
        const std::size_t n = inst.poll(out);
        got.insert(got.end(), out, out + n);
        if (n == 0) {
            ++idle;
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }
    return got;
}

BOOST_AUTO_TEST_SUITE(faults_shutdown)

BOOST_AUTO_TEST_CASE(blocked_read_is_cancelled_by_stop_threaded) {
    instance_options o;
    o.mode = dispatch_mode::threaded;
    default_instance inst(o);
    auto [r, w] = make_pipe();
    char buf[16];
    submit_entry e = sys::read(r, buf, sizeof buf); // nobody writes: blocks forever
    e.corr_id = 1;
    BOOST_REQUIRE(!inst.submit(e));
    std::this_thread::sleep_for(std::chrono::milliseconds(50)); // in the kernel by now
    completion_entry out[4];
    BOOST_TEST(inst.poll(out) == 0u);
    within(std::chrono::seconds(20), "stop()", [&] { inst.stop(); });
    BOOST_TEST(inst.loop().drained());
    const auto got = poll_all(inst, 1);
    BOOST_REQUIRE(got.size() == 1u);
    BOOST_TEST(got[0].corr_id == 1u);
    BOOST_TEST(got[0].result == -ECANCELED, got[0]);
    BOOST_TEST((got[0].error() == std::error_code(ECANCELED, std::system_category())));
    BOOST_TEST(inst.poll(out) == 0u); // exactly once
    // A stopped instance refuses new work, through both front ends.
    BOOST_TEST((inst.submit(sys::getpid()) == errc::shut_down));
    BOOST_TEST((inst.call(sys::read(r, buf, sizeof buf)).error() == errc::shut_down));
    within(std::chrono::seconds(5), "second stop()", [&] { inst.stop(); }); // idempotent
}

BOOST_AUTO_TEST_CASE(blocked_read_is_cancelled_by_stop_inline) {
    instance_options o;
    o.mode = dispatch_mode::inline_mode;
    default_instance inst(o);
    auto [r, w] = make_pipe();
    char buf[16];
    submit_entry e = sys::read(r, buf, sizeof buf);
    e.corr_id = 1;
    BOOST_REQUIRE(!inst.submit(e));
    inst.run_once(false); // submitted to the ring
    BOOST_TEST(inst.backend().inflight() == 1u);
    within(std::chrono::seconds(20), "stop()", [&] { inst.stop(); });
    const auto got = poll_all(inst, 1);
    BOOST_REQUIRE(got.size() == 1u);
    BOOST_TEST(got[0].result == -ECANCELED, got[0]);
    BOOST_TEST((inst.submit(sys::getpid()) == errc::shut_down));
}

// The same on the epoll backend default_instance falls back to: the read waits for readiness in
// the loop, and stop() completes it as cancelled, exactly once, in both modes.
BOOST_AUTO_TEST_CASE(blocked_read_is_cancelled_by_stop_on_epoll) {
    for (auto mode : {dispatch_mode::threaded, dispatch_mode::inline_mode}) {
        BOOST_TEST_CONTEXT(mode) {
            instance_options o;
            o.mode = mode;
            o.caps = &io_uring_refused_caps();
            o.ring.log = &quiet_log;
            default_instance inst(o);
            BOOST_REQUIRE(!inst.backend().on_primary());
            auto [r, w] = make_pipe();
            char buf[16];
            submit_entry e = sys::read(r, buf, sizeof buf);
            e.corr_id = 1;
            BOOST_REQUIRE(!inst.submit(e));
            if (mode == dispatch_mode::inline_mode) {
                inst.run_once(false);
                BOOST_TEST(inst.backend().inflight() == 1u);
            } else {
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
            within(std::chrono::seconds(20), "stop()", [&] { inst.stop(); });
            const auto got = poll_all(inst, 2);
            BOOST_REQUIRE(got.size() == 1u);
            BOOST_TEST(got[0].result == -ECANCELED, got[0]);
            BOOST_TEST((inst.submit(sys::getpid()) == errc::shut_down));
        }
    }
}

BOOST_AUTO_TEST_CASE(queued_entries_complete_as_cancelled) {
    // Inline, nothing run: every accepted entry is still delivered once, as cancelled.
    instance_options o;
    o.mode = dispatch_mode::inline_mode;
    default_instance inst(o);
    for (std::uint64_t id = 1; id <= 10; ++id) {
        submit_entry e = sys::getpid();
        e.corr_id = id;
        BOOST_REQUIRE(!inst.submit(e));
    }
    within(std::chrono::seconds(20), "stop()", [&] { inst.stop(); });
    const auto got = poll_all(inst, 10);
    BOOST_REQUIRE(got.size() == 10u);
    std::vector<int> seen(11, 0);
    for (const auto& c : got) {
        BOOST_TEST(c.result == -ECANCELED, c);
        BOOST_REQUIRE(c.corr_id >= 1u);
        BOOST_REQUIRE(c.corr_id <= 10u);
        ++seen[c.corr_id];
    }
    for (int i = 1; i <= 10; ++i) BOOST_TEST(seen[i] == 1);
}

BOOST_AUTO_TEST_CASE(many_blocked_reads_beyond_the_sink_threaded) {
    // More blocked reads than the sink holds: shutdown parks the overflow, poll() returns all.
    instance_options o;
    o.mode = dispatch_mode::threaded;
    o.sink_capacity = 16;
    o.ring.entries = 64;
    default_instance inst(o);
    constexpr std::size_t count = 100; // 64 in the ring, the rest queued or carried
    std::vector<std::pair<unique_fd, unique_fd>> pipes;
    std::vector<char> bufs(count * 8);
    for (std::size_t i = 0; i < count; ++i) {
        pipes.push_back(make_pipe());
        submit_entry e = sys::read(pipes.back().first, &bufs[i * 8], 8);
        e.corr_id = i + 1;
        BOOST_REQUIRE(!inst.submit(e));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    within(std::chrono::seconds(20), "stop()", [&] { inst.stop(); });
    const auto got = poll_all(inst, count);
    BOOST_TEST(got.size() == count);
    std::vector<int> seen(count + 1, 0);
    for (const auto& c : got) {
        BOOST_TEST(c.result == -ECANCELED, c);
        if (c.corr_id >= 1 && c.corr_id <= count) ++seen[c.corr_id];
    }
    for (std::size_t i = 1; i <= count; ++i) BOOST_TEST(seen[i] == 1, "corr " << i);
}

BOOST_AUTO_TEST_CASE(destroying_with_blocked_work_does_not_hang) {
    for (auto mode : {dispatch_mode::threaded, dispatch_mode::inline_mode}) {
        auto inst = std::make_unique<default_instance>([&] {
            instance_options o;
            o.mode = mode;
            return o;
        }());
        auto [r, w] = make_pipe();
        char buf[16];
        for (std::uint64_t id = 1; id <= 8; ++id) {
            submit_entry e = sys::read(r, buf, sizeof buf);
            e.corr_id = id;
            BOOST_REQUIRE(!inst->submit(e));
        }
        if (mode == dispatch_mode::inline_mode) inst->run_once(false);
        else std::this_thread::sleep_for(std::chrono::milliseconds(20));
        within(std::chrono::seconds(20), "~instance", [&] { inst.reset(); });
        // The buffer is no longer the kernel's: the reads were cancelled before teardown finished.
        BOOST_REQUIRE(::write(w, "late", 4) == 4);
        char probe[8];
        BOOST_TEST(::read(r, probe, sizeof probe) == 4); // the data was not consumed by a stale read
    }
}

BOOST_AUTO_TEST_CASE(call_in_progress_when_stop_is_requested) {
    // A blocking call() on another thread waiting for a read that never completes: stop()
    // cancels it, and the caller wakes with -ECANCELED instead of hanging.
    instance_options o;
    o.mode = dispatch_mode::threaded;
    default_instance inst(o);
    auto [r, w] = make_pipe();
    std::promise<completion_entry> result;
    std::thread caller([&] {
        char buf[16];
        result.set_value(inst.call(sys::read(r, buf, sizeof buf)));
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    within(std::chrono::seconds(20), "stop()", [&] { inst.stop(); });
    auto fut = result.get_future();
    if (fut.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
        std::fprintf(stderr, "FATAL: call() did not return after stop()\n");
        std::_Exit(1);
    }
    const completion_entry c = fut.get();
    caller.join();
    BOOST_TEST(c.result == -ECANCELED, c);
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace ksvc::test::faults_shutdown
