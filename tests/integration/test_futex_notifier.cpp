// futex_notifier in an instance: the loop sleeps in io_uring_enter with an IORING_OP_FUTEX_WAIT
// armed on the notifier's word — no eventfd is opened, a submission from another thread and a
// worker's completion each wake it, and an idle loop stays asleep (it does not poll). On a 6.6
// snapshot the notifier says it needs the eventfd doorbell and the instance serves through it.
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <ksvc/executor/op.hpp>
#include <ksvc/executor/sys.hpp>
#include <ksvc/module/notifiers/futex_notifier.hpp>
#include <ksvc/module/presets.hpp>

#include "support/fixtures.hpp"

namespace ksvc::test::futex_doorbell {

namespace bdata = boost::unit_test::data;
namespace nr = ksvc::syscalls::native;
using namespace std::chrono_literals;

using futex_instance = instance<probe_router, basic_io_uring, fixed_pool, futex_notifier, heap_buffers>;
const std::vector<dispatch_mode> modes = {dispatch_mode::threaded, dispatch_mode::inline_mode};

// Descriptors of this process that are eventfds.
int eventfds() {
    int n = 0;
    DIR* d = ::opendir("/proc/self/fd");
    while (dirent* e = ::readdir(d)) {
        char link[256]{};
        const std::string path = std::string("/proc/self/fd/") + e->d_name;
        if (::readlink(path.c_str(), link, sizeof link - 1) > 0 && std::strstr(link, "[eventfd]")) ++n;
    }
    ::closedir(d);
    return n;
}

completion_entry wait_one(futex_instance& inst, int ms = 5000) {
    completion_entry c{};
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < deadline)
        if (inst.wait_completions({&c, 1}, 100) == 1) return c;
    BOOST_FAIL("no completion within the deadline");
    return c;
}

BOOST_AUTO_TEST_SUITE(futex_notifier_doorbell)

BOOST_DATA_TEST_CASE(the_loop_sleeps_on_the_futex_word_and_opens_no_eventfd, bdata::make(modes), mode) {
    if (!current_capabilities().has(opcode::futex_wait)) return; // the 6.6 case below covers it
    const int before = eventfds();
    instance_options o;
    o.mode = mode;
    futex_instance inst(o);
    BOOST_TEST(eventfds() == before);
    BOOST_TEST(!inst.notifier().uses_eventfd());

    auto [rd, wr] = tcp_pair();
    char in[8]{};
    // Threaded: the loop is asleep when the submission arrives; the doorbell must wake it.
    // Inline: the owner's wait sleeps in the ring, the peer's data wakes it.
    for (std::uint64_t id = 1; id <= 5; ++id) {
        std::this_thread::sleep_for(20ms);
        BOOST_REQUIRE(!inst.submit(op::tagged(sys::read(rd.fd, in, sizeof in), id)));
        ssize_t written = 0;
        std::thread peer([&, wfd = wr.fd] {
            std::this_thread::sleep_for(10ms);
            written = ::write(wfd, "ping", 4);
        });
        const completion_entry c = wait_one(inst);
        peer.join();
        BOOST_TEST(written == 4);
        BOOST_TEST(c.corr_id == id);
        BOOST_TEST(c.result == 4);
        BOOST_TEST(std::memcmp(in, "ping", 4) == 0);
    }

    // Idle: a loop woken only by its futex sleeps a handful of times in 200 ms, not every ms.
    std::this_thread::sleep_for(50ms);
    const std::uint64_t sleeps = inst.loop().sleeps();
    std::this_thread::sleep_for(200ms);
    BOOST_TEST(inst.loop().sleeps() - sleeps <= 3u);
}

BOOST_DATA_TEST_CASE(a_worker_completion_wakes_the_sleeping_loop, bdata::make(modes), mode) {
    instance_options o;
    o.mode = mode;
    futex_instance inst(o);
    BOOST_REQUIRE(inst.router().route(nr::nanosleep).tier == tier::worker_pool);
    static const timespec ts{0, 30'000'000};
    for (std::uint64_t id = 1; id <= 3; ++id) {
        const auto start = std::chrono::steady_clock::now();
        BOOST_REQUIRE(!inst.submit(op::tagged(sys::make(nr::nanosleep, &ts, nullptr), id)));
        const completion_entry c = wait_one(inst);
        BOOST_TEST(c.corr_id == id);
        BOOST_TEST(c.result == 0);
        BOOST_TEST((std::chrono::steady_clock::now() - start >= 29ms));
    }
}

BOOST_DATA_TEST_CASE(a_kernel_without_futex_wait_gets_the_eventfd_doorbell, bdata::make(modes), mode) {
    const capabilities k66 = capabilities::for_kernel({6, 6});
    instance_options o;
    o.mode = mode;
    o.caps = &k66;
    const int before = eventfds();
    futex_instance inst(o);
    BOOST_TEST(inst.notifier().uses_eventfd());
    // the consumer's notifier, the loop's doorbell, and — threaded only: an inline call()
    // never uses a private ring, so none is opened — the stop signal of the private call
    // rings (an eventfd where the kernel has no FUTEX_WAIT)
    BOOST_TEST(eventfds() == before + (mode == dispatch_mode::threaded ? 3 : 2));
    auto [rd, wr] = tcp_pair();
    char in[8]{};
    BOOST_REQUIRE(!inst.submit(op::tagged(sys::read(rd.fd, in, sizeof in), 7)));
    ssize_t written = 0;
    std::thread peer([&, wfd = wr.fd] {
        std::this_thread::sleep_for(20ms);
        written = ::write(wfd, "pong", 4);
    });
    const completion_entry c = wait_one(inst);
    peer.join();
    BOOST_TEST(written == 4);
    BOOST_TEST(c.corr_id == 7u);
    BOOST_TEST(c.result == 4);
    static const timespec ts{0, 10'000'000};
    BOOST_REQUIRE(!inst.submit(op::tagged(sys::make(nr::nanosleep, &ts, nullptr), 8)));
    BOOST_TEST(wait_one(inst).corr_id == 8u);
}

// A consumer blocked in wait_completions (threaded: on the notifier's futex) is woken by the
// loop's delivery, and call() from other threads meanwhile is unaffected.
BOOST_AUTO_TEST_CASE(a_consumer_waiting_on_the_futex_is_woken_by_delivery) {
    futex_instance inst;
    auto [rd, wr] = tcp_pair();
    char in[8]{};
    BOOST_REQUIRE(!inst.submit(op::tagged(sys::read(rd.fd, in, sizeof in), 11)));
    std::int64_t written = 0; // checked here: Boost.Test is not to be called from another thread
    std::thread peer([&, wfd = wr.fd] {
        std::this_thread::sleep_for(30ms);
        written = inst.call(sys::write(wfd, "abc", 3)).result;
    });
    completion_entry c{};
    BOOST_TEST(inst.wait_completions({&c, 1}, 10000) == 1u); // one wait: a lost wake-up times out
    peer.join();
    BOOST_TEST(written == 3);
    BOOST_TEST(c.corr_id == 11u);
    BOOST_TEST(c.result == 3);
}

// Many producers against one sleeping loop (its futex doorbell, or the eventfd before 6.7), in
// threaded mode — inline mode takes submissions from its owner thread only. In each round three
// threads submit at once and then call() with a deadline (which goes through the loop's
// completion-target lane: without one, a threaded call() uses a private ring) while the
// consumer sleeps on its futex and the loop in the kernel. Every wait must end with a completion, never by its
// 10 s limit: a wake-up lost between a producer's store and the sleeper's check would stall it.
BOOST_AUTO_TEST_CASE(many_producers_never_lose_a_wake_up) {
    futex_instance inst;
    BOOST_REQUIRE(inst.call(op::nop()).ok());
    constexpr int producers = 3, rounds = 300;
    std::atomic<int> round{0}, submitted{0}, refused{0}, calls_failed{0};
    std::atomic<bool> done{false};
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p) {
        threads.emplace_back([&, p] {
            int seen = 0;
            while (!done.load(std::memory_order_acquire)) {
                const int r = round.load(std::memory_order_acquire);
                if (r == seen) {
                    std::this_thread::yield();
                    continue;
                }
                seen = r;
                if (inst.submit(op::tagged(op::nop(), static_cast<std::uint64_t>((r - 1) * producers + p + 1)))) ++refused;
                ++submitted;
                if (!inst.call(op::nop(), 10s).ok()) ++calls_failed;
            }
        });
    }
    std::vector<int> got(static_cast<std::size_t>(rounds * producers + 1), 0);
    int stalls = 0;
    for (int r = 1; r <= rounds && stalls == 0; ++r) {
        round.store(r, std::memory_order_release);
        for (int have = 0; have < producers;) {
            completion_entry out[producers];
            const auto t0 = std::chrono::steady_clock::now();
            const std::size_t n = inst.wait_completions(out, 10000);
            if (n == 0 && std::chrono::steady_clock::now() - t0 >= 9s) {
                BOOST_TEST_MESSAGE("stalled in round " << r << " with " << have << " of " << producers);
                ++stalls;
                break;
            }
            for (std::size_t i = 0; i < n; ++i) {
                if (out[i].corr_id < got.size()) ++got[out[i].corr_id];
                ++have;
            }
        }
    }
    done.store(true, std::memory_order_release);
    for (auto& t : threads) t.join();
    BOOST_TEST(stalls == 0);
    BOOST_TEST(refused.load() == 0);
    BOOST_TEST(calls_failed.load() == 0);
    BOOST_TEST(submitted.load() == rounds * producers);
    int once = 0;
    for (std::size_t id = 1; id < got.size(); ++id) once += got[id] == 1;
    BOOST_TEST(once == rounds * producers); // every entry completed exactly once
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace ksvc::test::futex_doorbell
