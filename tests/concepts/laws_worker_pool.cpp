// worker_pool laws, over fixed_pool (2 threads), lazy_pool (at most 2), inline_worker and the archetype, each with a
// queue of 8:
// - every accepted entry completes exactly once, with its own result;
// - the waker runs after a completion is published: once it has run, reap() finds the entry;
// - enqueue() never waits for room: with nobody reaping, the 9th entry is errc::ring_full at
//   once, nothing is lost, and there is room again after reaping;
// - shutdown() drains: everything accepted has completed when it returns; later enqueues are
//   errc::shut_down; shutdown() may be repeated;
// - outstanding() counts accepted, unreaped entries and returns to 0;
// - EPIPE on a worker is a result, never a SIGPIPE that kills the process.
#include <boost/mpl/list.hpp>
#include <boost/test/unit_test.hpp>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <map>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include <ksvc/core/concepts/worker_pool.hpp>
#include <ksvc/executor/sys.hpp>
#include <ksvc/module/workers/fixed_pool.hpp>
#include <ksvc/module/workers/inline_worker.hpp>
#include <ksvc/module/workers/lazy_pool.hpp>

#include "support/archetypes/archetype_worker_pool.hpp"
#include "support/fixtures.hpp"

namespace {
using namespace ksvc;
using namespace std::chrono_literals;
using test::unique_fd;
namespace nr = syscalls::x86_64;

constexpr std::size_t queue = 8;

template <class W>
struct factory;
template <>
struct factory<fixed_pool> {
    static fixed_pool make() { return fixed_pool(pool_options{.threads = 2, .queue_capacity = queue}); }
};
template <>
struct factory<lazy_pool> {
    static lazy_pool make() { return lazy_pool(pool_options{.threads = 2, .queue_capacity = queue}); }
};
template <>
struct factory<inline_worker> {
    static inline_worker make() { return inline_worker(queue); }
};
template <>
struct factory<test::archetype_worker_pool> {
    static test::archetype_worker_pool make() { return test::archetype_worker_pool(queue); }
};

using pools = boost::mpl::list<fixed_pool, lazy_pool, inline_worker, test::archetype_worker_pool>;

struct wake_counter {
    std::atomic<int> n{0};
    waker get() {
        return {[](void* self) noexcept { static_cast<wake_counter*>(self)->n.fetch_add(1, std::memory_order_release); },
                this};
    }
};

template <class Pred>
bool eventually(Pred p) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!p()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(1ms);
    }
    return true;
}

// Reaps until `want` completions arrived (5 s at most); then checks nothing more turns up.
template <class W>
std::vector<completion_entry> collect(W& w, std::size_t want) {
    std::vector<completion_entry> got;
    std::array<completion_entry, 3> buf{};
    eventually([&] {
        const std::size_t n = w.reap(buf);
        BOOST_TEST(n <= buf.size());
        got.insert(got.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
        return got.size() >= want;
    });
    std::this_thread::sleep_for(10ms);
    BOOST_TEST(w.reap(buf) == 0u);
    BOOST_TEST(got.size() == want);
    return got;
}

submit_entry tagged(const submit_entry& in, std::uint64_t id) {
    submit_entry e = in;
    e.corr_id = id;
    return e;
}

// A quick entry with a known result, chosen by i: getppid, an 8-byte read of /dev/zero, or
// close(-1) (-EBADF).
struct quick_entries {
    unique_fd zero{::open("/dev/zero", O_RDONLY | O_CLOEXEC)};
    std::array<std::array<char, 8>, 64> bufs{};
    submit_entry make(std::size_t i) {
        switch (i % 3) {
        case 0: return tagged(sys::make(nr::getppid), i);
        case 1: return tagged(sys::read(zero, bufs[i % bufs.size()].data(), 8), i);
        default: return tagged(sys::close(-1), i);
        }
    }
    static std::int64_t expected(std::size_t i) {
        switch (i % 3) {
        case 0: return ::getppid();
        case 1: return 8;
        default: return -EBADF;
        }
    }
};

void check_all(const std::vector<completion_entry>& got, std::size_t first, std::size_t n) {
    std::map<std::uint64_t, completion_entry> seen;
    for (const auto& c : got) BOOST_TEST(seen.emplace(c.corr_id, c).second, "corr_id " << c.corr_id << " twice");
    for (std::size_t i = first; i < first + n; ++i) {
        auto it = seen.find(i);
        BOOST_TEST_REQUIRE((it != seen.end()), "corr_id " << i << " never completed");
        BOOST_TEST(it->second.result == quick_entries::expected(i), "corr_id " << i);
    }
}

} // namespace

BOOST_AUTO_TEST_SUITE(laws_worker_pool)

BOOST_AUTO_TEST_CASE_TEMPLATE(every_accepted_entry_completes_once, W, pools) {
    quick_entries q;
    wake_counter wakes;
    auto w = factory<W>::make();
    w.attach(wakes.get());
    BOOST_TEST(w.outstanding() == 0u);
    for (std::size_t round = 0; round < 3; ++round) {
        for (std::size_t i = 0; i < queue; ++i) BOOST_TEST(!w.enqueue(q.make(round * queue + i)));
        check_all(collect(w, queue), round * queue, queue);
        BOOST_TEST(w.outstanding() == 0u);
    }
    BOOST_TEST(wakes.n.load() >= 1);
    BOOST_TEST(w.active_workers() <= w.total_workers());
    BOOST_TEST(w.total_workers() <= w.max_workers());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(the_waker_runs_after_the_completion_is_published, W, pools) {
    quick_entries q;
    wake_counter wakes;
    auto w = factory<W>::make();
    w.attach(wakes.get());
    std::array<completion_entry, 1> out{};
    for (int i = 0; i < 20; ++i) {
        const int before = wakes.n.load(std::memory_order_acquire);
        BOOST_TEST(!w.enqueue(q.make(static_cast<std::size_t>(i))));
        BOOST_TEST_REQUIRE(eventually([&] { return wakes.n.load(std::memory_order_acquire) > before; }));
        // A dispatcher that slept until the wake must now find the completion.
        BOOST_TEST_REQUIRE(w.reap(out) == 1u, "woken before the completion was visible");
        BOOST_TEST(out[0].corr_id == static_cast<std::uint64_t>(i));
    }
    BOOST_TEST(w.outstanding() == 0u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(beyond_capacity_is_ring_full_and_nothing_is_lost, W, pools) {
    quick_entries q;
    auto w = factory<W>::make();
    for (std::size_t i = 0; i < queue; ++i) BOOST_TEST(!w.enqueue(q.make(i)));
    // Nobody reaps: a pool that waited for room would hang here.
    for (int attempt = 0; attempt < 3; ++attempt) {
        const std::error_code ec = w.enqueue(q.make(99));
        BOOST_TEST((ec == errc::ring_full), ec.message());
    }
    BOOST_TEST(w.outstanding() == queue);
    check_all(collect(w, queue), 0, queue);
    BOOST_TEST(w.outstanding() == 0u);
    BOOST_TEST(!w.enqueue(q.make(queue))); // room again
    check_all(collect(w, 1), queue, 1);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(shutdown_drains_what_it_accepted, W, pools) {
    auto w = factory<W>::make();
    // Entries that take a while, so a threaded pool still has queued work at shutdown.
    const timespec nap{0, 5'000'000};
    for (std::size_t i = 0; i < queue; ++i) BOOST_TEST(!w.enqueue(tagged(sys::make(nr::nanosleep, &nap, nullptr), i)));
    w.shutdown();
    BOOST_TEST(w.outstanding() == queue); // done, not yet reaped
    std::array<completion_entry, queue> out{};
    BOOST_TEST_REQUIRE(w.reap(out) == queue); // all of them, without waiting
    std::array<bool, queue> seen{};
    for (const auto& c : out) {
        BOOST_TEST_REQUIRE(c.corr_id < queue);
        BOOST_TEST(!seen[c.corr_id]);
        seen[c.corr_id] = true;
        BOOST_TEST(c.result == 0);
    }
    BOOST_TEST(w.outstanding() == 0u);
    const std::error_code ec = w.enqueue(tagged(sys::make(nr::getppid), 100));
    BOOST_TEST((ec == errc::shut_down), ec.message());
    w.shutdown(); // again: harmless
    BOOST_TEST(w.outstanding() == 0u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(epipe_is_a_result_not_a_signal, W, pools) {
    int fds[2];
    BOOST_REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    unique_fd r(fds[0]), wr(fds[1]);
    r.reset(); // no reader left
    auto w = factory<W>::make();
    BOOST_TEST(!w.enqueue(tagged(sys::write(wr, "x", 1), 1)));
    const auto got = collect(w, 1);
    BOOST_TEST_REQUIRE(got.size() == 1u);
    BOOST_TEST(got[0].result == -EPIPE);
}

BOOST_AUTO_TEST_SUITE_END()
