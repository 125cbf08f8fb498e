// completion_sink laws, over ring_completion_sink and the archetype (capacity 8):
// - push() succeeds until the sink is full, then returns false (backpressure, not a drop), and
//   a refused push disturbs nothing;
// - free_slots() == capacity() - staged-or-published-but-not-popped;
// - nothing pushed is visible to pop() before flush_and_notify();
// - completions come out in FIFO order, also across wrap-around and from another thread;
// - flush_and_notify() after pushes calls the attached waker once.
#include <boost/mpl/list.hpp>
#include <boost/test/unit_test.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

#include <ksvc/core/concepts/completion_sink.hpp>
#include <ksvc/module/sinks/ring_completion_sink.hpp>

#include "support/archetypes/archetype_sink.hpp"

namespace {
using namespace ksvc;

template <class S>
struct factory {
    static S make() { return S(8); }
};

using sinks = boost::mpl::list<ring_completion_sink, test::archetype_sink>;

completion_entry numbered(std::uint64_t i) {
    completion_entry c;
    c.corr_id = i;
    c.result = static_cast<std::int64_t>(i) * 3;
    return c;
}

struct wake_counter {
    std::atomic<int> n{0};
    waker get() {
        return {[](void* self) noexcept { static_cast<wake_counter*>(self)->n.fetch_add(1); }, this};
    }
};

} // namespace

BOOST_AUTO_TEST_SUITE(laws_completion_sink)

BOOST_AUTO_TEST_CASE_TEMPLATE(push_until_full_then_false, S, sinks) {
    auto s = factory<S>::make();
    const std::size_t cap = s.capacity();
    BOOST_TEST_REQUIRE(cap >= 8u);
    BOOST_TEST(s.free_slots() == cap);
    for (std::size_t i = 0; i < cap; ++i) {
        BOOST_TEST(s.push(numbered(i)));
        BOOST_TEST(s.free_slots() == cap - i - 1);
    }
    BOOST_TEST(!s.push(numbered(1000)));
    BOOST_TEST(s.free_slots() == 0u);
    s.flush_and_notify();
    BOOST_TEST(!s.push(numbered(1001))); // published but not popped still occupies the slot
    std::array<completion_entry, 3> out{};
    BOOST_TEST(s.pop(out) == 3u);
    BOOST_TEST(s.free_slots() == 3u);
    for (std::uint64_t i = 0; i < 3; ++i) BOOST_TEST(out[i].corr_id == i);
    // The refused entries are nowhere; the rest is intact.
    std::vector<completion_entry> rest(cap);
    BOOST_TEST(s.pop(rest) == cap - 3);
    for (std::size_t i = 0; i < cap - 3; ++i) BOOST_TEST(rest[i].corr_id == i + 3);
    BOOST_TEST(s.free_slots() == cap);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(nothing_is_visible_before_flush, S, sinks) {
    auto s = factory<S>::make();
    std::array<completion_entry, 8> out{};
    BOOST_TEST(s.pop(out) == 0u);
    for (std::uint64_t i = 0; i < 3; ++i) BOOST_TEST(s.push(numbered(i)));
    BOOST_TEST(s.pop(out) == 0u);
    BOOST_TEST(s.free_slots() == s.capacity() - 3);
    s.flush_and_notify();
    BOOST_TEST(s.push(numbered(3))); // staged after the flush: not part of this batch
    BOOST_TEST(s.pop(out) == 3u);
    BOOST_TEST(s.pop(out) == 0u);
    s.flush_and_notify();
    BOOST_TEST(s.pop(out) == 1u);
    BOOST_TEST(out[0].corr_id == 3u);
    BOOST_TEST(out[0].result == 9);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(fifo_across_wrap_around, S, sinks) {
    auto s = factory<S>::make();
    const std::size_t cap = s.capacity();
    std::uint64_t next_in = 0, next_out = 0;
    std::array<completion_entry, 3> out{};
    // Push and pop in uneven batches so the ring wraps many times.
    for (int round = 0; round < 50; ++round) {
        const std::size_t room = s.free_slots();
        for (std::size_t i = 0; i < (room + 1) / 2 + 1 && i < room; ++i) BOOST_TEST(s.push(numbered(next_in++)));
        s.flush_and_notify();
        const std::size_t n = s.pop(out);
        for (std::size_t i = 0; i < n; ++i) BOOST_TEST(out[i].corr_id == next_out++);
        BOOST_TEST(s.free_slots() == cap - (next_in - next_out));
    }
    for (std::size_t n; (n = s.pop(out)) > 0;)
        for (std::size_t i = 0; i < n; ++i) BOOST_TEST(out[i].corr_id == next_out++);
    BOOST_TEST(next_out == next_in);
    BOOST_TEST(next_in > 3 * cap);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(flush_wakes_the_consumer, S, sinks) {
    auto s = factory<S>::make();
    wake_counter wakes;
    s.attach(wakes.get());
    BOOST_TEST(s.push(numbered(1)));
    BOOST_TEST(s.push(numbered(2)));
    BOOST_TEST(wakes.n.load() == 0); // pushing alone does not wake
    s.flush_and_notify();
    BOOST_TEST(wakes.n.load() == 1); // once per batch
    BOOST_TEST(s.push(numbered(3)));
    s.flush_and_notify();
    BOOST_TEST(wakes.n.load() == 2);
}

// The dispatcher pushes on its thread while one consumer pops on another.
BOOST_AUTO_TEST_CASE_TEMPLATE(fifo_between_two_threads, S, sinks) {
    auto s = factory<S>::make();
    constexpr std::uint64_t total = 20000;
    std::atomic<bool> refused{false}; // Boost.Test assertions belong to the main thread
    std::thread producer([&] {
        std::uint64_t i = 0;
        while (i < total) {
            std::size_t room = s.free_slots();
            if (room == 0) {
                std::this_thread::yield();
                continue;
            }
            for (; room > 0 && i < total; --room)
                if (!s.push(numbered(i++))) refused = true;
            s.flush_and_notify();
        }
    });
    std::uint64_t expected = 0;
    bool in_order = true;
    std::array<completion_entry, 5> out{};
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (expected < total && std::chrono::steady_clock::now() < deadline) {
        const std::size_t n = s.pop(out);
        for (std::size_t i = 0; i < n; ++i) in_order = in_order && out[i].corr_id == expected++;
        if (n == 0) std::this_thread::yield();
    }
    producer.join();
    BOOST_TEST(!refused.load(), "push refused although free_slots() said there was room");
    BOOST_TEST(in_order);
    BOOST_TEST(expected == total);
}

BOOST_AUTO_TEST_SUITE_END()
