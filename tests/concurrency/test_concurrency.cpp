// Concurrency: many producers through the threaded dispatcher with one consumer, the blocking
// facade from several threads, and the MPMC bounded_ring on its own. Every completion must be
// delivered exactly once with the right result. Runs under ThreadSanitizer too (the sizes shrink
// there so the suite stays around ten seconds); Boost.Test assertions are made on the main
// thread only, the workers just count.
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <stop_token>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include <ksvc/executor/submit_ring.hpp>
#include <ksvc/executor/sys.hpp>
#include <ksvc/executor/task.hpp>
#include <ksvc/module/presets.hpp>
#include <ksvc/module/workers/syscall_runner.hpp>

#include "support/fixtures.hpp"

#if defined(__SANITIZE_THREAD__)
#define KSVC_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define KSVC_TEST_TSAN 1
#endif
#endif

namespace ksvc::test::concurrency {

namespace bdata = boost::unit_test::data;
namespace nr = ksvc::syscalls::native;

#ifdef KSVC_TEST_TSAN // half size: about 4 s on 2 cores under TSan
inline constexpr std::size_t per_producer = 50'000;
inline constexpr std::size_t per_caller = 10'000;
inline constexpr std::size_t ring_items = 500'000;
#else
inline constexpr std::size_t per_producer = 100'000;
inline constexpr std::size_t per_caller = 20'000;
inline constexpr std::size_t ring_items = 1'000'000;
#endif

//! What every thread needs to build entries and know their results. Read-only once built.
struct workload {
    int devnull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    long flags = ::fcntl(devnull, F_GETFL);
    long pid = ::getpid();
    char buf[64] = {}; // only ever read by the kernel (writes to /dev/null)
    ~workload() { ::close(devnull); }

    //! Tier 0 getpid, Tier 1 write to /dev/null, Tier 2 fcntl(F_GETFL), by corr_id.
    submit_entry entry(std::uint64_t corr) const {
        submit_entry e;
        switch (corr % 3) {
        case 0: e = sys::getpid(); break;
        case 1: e = sys::write(devnull, buf, corr % 64 + 1); break;
        default: e = sys::fcntl(devnull, F_GETFL); break;
        }
        e.corr_id = corr;
        return e;
    }
    std::int64_t expected(std::uint64_t corr) const {
        switch (corr % 3) {
        case 0: return pid;
        case 1: return static_cast<std::int64_t>(corr % 64 + 1);
        default: return flags;
        }
    }
};

struct mpsc_case {
    std::size_t producers;
    std::size_t submit_capacity;
    std::size_t sink_capacity;
};
inline std::ostream& operator<<(std::ostream& os, const mpsc_case& c) {
    return os << c.producers << " producers, submit ring " << c.submit_capacity << ", sink " << c.sink_capacity;
}
inline const std::vector<mpsc_case>& mpsc_cases() {
    static const std::vector<mpsc_case> v = {{2, 4096, 4096}, {4, 4096, 4096}, {4, 64, 4096}, {4, 4096, 16}};
    return v;
}

//! After the expected count arrived: nothing more may (a late duplicate would show here).
template <class I>
std::size_t late_arrivals(I& inst) {
    completion_entry out[16];
    std::size_t n = 0;
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
    while (std::chrono::steady_clock::now() < until) n += inst.wait_completions(out, 10);
    return n;
}

BOOST_AUTO_TEST_SUITE(concurrency)

BOOST_DATA_TEST_CASE(producers_through_threaded_dispatcher, bdata::make(mpsc_cases()), c) {
    const workload w;
    BOOST_REQUIRE(w.devnull >= 0);
    instance_options o;
    o.mode = dispatch_mode::threaded;
    o.submit_capacity = c.submit_capacity;
    o.sink_capacity = c.sink_capacity;
    default_instance inst(o);

    const std::size_t total = c.producers * per_producer;
    std::atomic<std::size_t> ring_full{0};
    std::atomic<std::size_t> other_errors{0};
    std::atomic<bool> producers_done{false};

    // One consumer: counts each corr_id (ids are 1..total) and checks results.
    std::vector<std::uint8_t> seen(total + 1, 0);
    std::size_t received = 0, duplicates = 0, wrong = 0, foreign = 0;
    std::thread consumer([&] {
        completion_entry out[256];
        auto last_progress = std::chrono::steady_clock::now();
        while (received < total) {
            const std::size_t n = inst.wait_completions(out, 100);
            for (std::size_t i = 0; i < n; ++i) {
                const std::uint64_t id = out[i].corr_id;
                if (id == 0 || id > total) {
                    ++foreign;
                    continue;
                }
                if (seen[id]++) ++duplicates;
                if (out[i].result != w.expected(id)) ++wrong;
                ++received;
            }
            const auto now = std::chrono::steady_clock::now();
            if (n) last_progress = now;
            else if (producers_done.load() && now - last_progress > std::chrono::seconds(30)) break; // lost
        }
    });

    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> producers;
    for (std::size_t p = 0; p < c.producers; ++p) {
        producers.emplace_back([&, p] {
            for (std::size_t i = 0; i < per_producer; ++i) {
                const submit_entry e = w.entry(p * per_producer + i + 1);
                for (;;) {
                    const std::error_code ec = inst.submit(e);
                    if (!ec) break;
                    if (ec == errc::ring_full) {
                        ring_full.fetch_add(1, std::memory_order_relaxed);
                        std::this_thread::yield();
                        continue;
                    }
                    other_errors.fetch_add(1, std::memory_order_relaxed);
                    break;
                }
            }
        });
    }
    for (auto& t : producers) t.join();
    producers_done.store(true);
    consumer.join();
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);

    BOOST_TEST_MESSAGE(c << ": " << total << " entries in " << ms.count() << " ms, ring_full retries "
                         << ring_full.load());
    BOOST_TEST(other_errors.load() == 0u);
    BOOST_TEST(received == total);
    BOOST_TEST(duplicates == 0u);
    BOOST_TEST(wrong == 0u);
    BOOST_TEST(foreign == 0u);
    std::size_t missing = 0;
    for (std::size_t id = 1; id <= total; ++id) missing += seen[id] == 0;
    BOOST_TEST(missing == 0u);
    BOOST_TEST(late_arrivals(inst) == 0u);
    BOOST_TEST(inst.loop().accepted() == total);
    BOOST_TEST(inst.loop().delivered() == total);
    BOOST_TEST(inst.loop().queued() == 0u);
    BOOST_TEST(inst.backend().inflight() == 0u);
    BOOST_TEST(inst.page().answered() >= total / 3);
}

// stop() while several threads keep submitting: every entry submit() accepted is delivered
// exactly once (result or -ECANCELED), nothing is accepted after the drain, nothing is lost.
BOOST_AUTO_TEST_CASE(stop_while_producers_submit) {
    const workload w;
    instance_options o;
    o.submit_capacity = 256;
    default_instance inst(o);
    constexpr std::size_t producers = 3, cap = 1'000'000;
    std::vector<std::vector<std::uint64_t>> accepted(producers);
    std::atomic<std::size_t> after_stop_ok{0};
    std::atomic<bool> stopped{false};
    std::vector<std::thread> ts;
    for (std::size_t p = 0; p < producers; ++p)
        ts.emplace_back([&, p] {
            for (std::uint64_t i = 0; i < cap; ++i) {
                const std::uint64_t id = p * cap + i + 1;
                const bool was_stopped = stopped.load();
                const std::error_code ec = inst.submit(w.entry(id));
                if (!ec) {
                    accepted[p].push_back(id);
                    if (was_stopped) after_stop_ok.fetch_add(1);
                } else if (ec == errc::shut_down) {
                    break;
                } else {
                    std::this_thread::yield();
                }
            }
        });
    // A consumer keeps the sink moving until the drain is over.
    std::vector<std::uint8_t> seen(producers * cap + 1, 0);
    std::size_t received = 0, duplicates = 0, foreign = 0;
    std::thread consumer([&] {
        completion_entry out[256];
        for (;;) {
            const std::size_t n = inst.wait_completions(out, 10);
            for (std::size_t i = 0; i < n; ++i) {
                const auto id = out[i].corr_id;
                if (id == 0 || id > producers * cap) {
                    ++foreign;
                    continue;
                }
                if (seen[id]++) ++duplicates;
                ++received;
            }
            if (n == 0 && inst.loop().drained() && stopped.load()) {
                if (inst.poll(out) == 0) break;
            }
        }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    stopped.store(true);
    inst.stop();
    for (auto& t : ts) t.join();
    consumer.join();
    std::size_t total = 0, missing = 0;
    for (const auto& v : accepted) {
        total += v.size();
        for (auto id : v) missing += seen[id] == 0;
    }
    BOOST_TEST_MESSAGE(total << " accepted before stop() took effect");
    BOOST_TEST(total > 0u);
    BOOST_TEST(missing == 0u);
    BOOST_TEST(duplicates == 0u);
    BOOST_TEST(foreign == 0u);
    BOOST_TEST(received == total);
    BOOST_TEST(inst.loop().accepted() == total);
    BOOST_TEST(inst.loop().delivered() == total);
}

// Inline: the owner submits and drives the loop while other threads only call stop() — and
// an owner that polls with a full sink keeps every completion.
BOOST_AUTO_TEST_CASE(inline_owner_with_a_small_sink) {
    const workload w;
    instance_options o;
    o.mode = dispatch_mode::inline_mode;
    o.sink_capacity = 8;
    default_instance inst(o);
    constexpr std::size_t total = 20'000;
    std::vector<std::uint8_t> seen(total + 1, 0);
    std::size_t received = 0, wrong = 0, duplicates = 0;
    completion_entry out[5];
    std::uint64_t next = 1;
    while (received < total) {
        while (next <= total && !inst.submit(w.entry(next))) ++next;
        const std::size_t n = inst.wait_completions(out, 10);
        for (std::size_t i = 0; i < n; ++i) {
            const auto id = out[i].corr_id;
            BOOST_REQUIRE(id >= 1u);
            BOOST_REQUIRE(id <= total);
            if (seen[id]++) ++duplicates;
            if (out[i].result != w.expected(id)) ++wrong;
            ++received;
        }
    }
    BOOST_TEST(duplicates == 0u);
    BOOST_TEST(wrong == 0u);
    BOOST_TEST(late_arrivals(inst) == 0u);
    BOOST_TEST(inst.loop().queued() == 0u);
}

BOOST_AUTO_TEST_CASE(blocking_facade_from_four_threads) {
    const workload w;
    BOOST_REQUIRE(w.devnull >= 0);
    instance_options o;
    o.mode = dispatch_mode::threaded;
    default_instance inst(o);
    constexpr std::size_t threads = 4;
    std::atomic<std::size_t> wrong{0}, done{0};
    std::vector<std::thread> callers;
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t t = 0; t < threads; ++t) {
        callers.emplace_back([&, t] {
            for (std::size_t i = 0; i < per_caller; ++i) {
                const std::uint64_t corr = t * per_caller + i + 1;
                const completion_entry c = inst.call(w.entry(corr));
                if (c.result != w.expected(corr) || c.nr != w.entry(corr).nr) wrong.fetch_add(1, std::memory_order_relaxed);
                done.fetch_add(1, std::memory_order_relaxed);
            }
        });
    }
    for (auto& t : callers) t.join();
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    BOOST_TEST_MESSAGE(threads << " x " << per_caller << " blocking calls in " << ms.count() << " ms");
    BOOST_TEST(done.load() == threads * per_caller);
    BOOST_TEST(wrong.load() == 0u);
    // call() completions go straight to their waiters: nothing lands in the completion queue.
    completion_entry out[4];
    BOOST_TEST(inst.poll(out) == 0u);
}

BOOST_AUTO_TEST_CASE(blocking_facade_and_async_submitters_together) {
    // Two threads call(), two submit(), one consumes: call() completions never reach the
    // consumer and submit() completions never reach a caller.
    const workload w;
    instance_options o;
    o.mode = dispatch_mode::threaded;
    o.submit_capacity = 256;
    default_instance inst(o);
    const std::size_t n = per_caller;
    std::atomic<std::size_t> call_wrong{0};
    std::vector<std::uint8_t> seen(2 * n + 1, 0);
    std::size_t received = 0, bad = 0;
    std::atomic<bool> submitters_done{false};
    std::thread consumer([&] {
        completion_entry out[64];
        auto last = std::chrono::steady_clock::now();
        while (received < 2 * n) {
            const std::size_t k = inst.wait_completions(out, 100);
            for (std::size_t i = 0; i < k; ++i) {
                const auto id = out[i].corr_id;
                if (id == 0 || id > 2 * n || seen[id]++ || out[i].result != w.expected(id)) ++bad;
                ++received;
            }
            if (k) last = std::chrono::steady_clock::now();
            else if (submitters_done.load() && std::chrono::steady_clock::now() - last > std::chrono::seconds(30)) break;
        }
    });
    std::vector<std::thread> ts;
    for (std::size_t s = 0; s < 2; ++s) {
        ts.emplace_back([&, s] {
            for (std::size_t i = 0; i < n; ++i) {
                const submit_entry e = w.entry(s * n + i + 1);
                while (inst.submit(e)) std::this_thread::yield();
            }
        });
        ts.emplace_back([&, s] {
            for (std::size_t i = 0; i < n; ++i) {
                const std::uint64_t corr = 1'000'000'000ull + s * n + i;
                // The result identifies the entry (a write's length, the pid, the flags): a
                // completion crossed between callers would show here.
                const completion_entry c = inst.call(w.entry(corr));
                if (c.result != w.expected(corr)) call_wrong.fetch_add(1);
            }
        });
    }
    for (auto& t : ts) t.join();
    submitters_done.store(true);
    consumer.join();
    BOOST_TEST(late_arrivals(inst) == 0u);
    BOOST_TEST(received == 2 * n);
    BOOST_TEST(bad == 0u);
    BOOST_TEST(call_wrong.load() == 0u);
}

// Threaded mode: run_once() and run() from a thread other than the loop's do nothing (they
// used to drive the loop a second time, racing the loop thread on a plain ring); every entry
// still completes once, delivered by the loop thread.
BOOST_AUTO_TEST_CASE(threaded_run_once_from_another_thread_does_not_drive_the_loop) {
    instance_options o;
    o.mode = dispatch_mode::threaded;
    o.ring.entries = 4;
    o.submit_capacity = 8;
    default_instance inst(o);
    unique_fd null(::open("/dev/null", O_WRONLY | O_CLOEXEC));
    const char byte = 'x';
    constexpr std::uint64_t count = 2000;
    std::vector<int> seen(count + 1, 0);
    std::uint64_t next = 1, got = 0;
    completion_entry out[32];
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (got < count && std::chrono::steady_clock::now() < deadline) {
        while (next <= count) {
            submit_entry e = sys::write(null, &byte, 1);
            e.corr_id = next;
            if (inst.submit(e)) break;
            ++next;
        }
        BOOST_TEST(inst.run_once(false) == 0u); // not this thread's loop
        inst.run();                              // returns at once
        const std::size_t n = inst.poll(out);
        for (std::size_t i = 0; i < n; ++i) {
            BOOST_REQUIRE(out[i].corr_id >= 1 && out[i].corr_id <= count);
            BOOST_TEST(out[i].result == 1);
            ++seen[out[i].corr_id];
        }
        got += n;
    }
    BOOST_TEST(got == count);
    std::size_t wrong = 0;
    for (std::uint64_t id = 1; id <= count; ++id) wrong += seen[id] != 1;
    BOOST_TEST(wrong == 0u);
}

BOOST_AUTO_TEST_CASE(bounded_ring_mpmc_stress) {
    constexpr std::size_t producers = 4, consumers = 4;
    constexpr std::size_t per = ring_items / producers;
    bounded_ring<std::uint64_t> ring(64); // small: producers and consumers meet full and empty
    std::atomic<std::size_t> popped{0};
    std::atomic<std::uint64_t> sum{0};
    std::atomic<std::size_t> order_violations{0}, full_hits{0};
    std::vector<std::thread> ts;
    for (std::size_t p = 0; p < producers; ++p) {
        ts.emplace_back([&, p] {
            for (std::uint64_t i = 1; i <= per; ++i) {
                const std::uint64_t v = (static_cast<std::uint64_t>(p) << 32) | i;
                while (!ring.try_push(v)) {
                    full_hits.fetch_add(1, std::memory_order_relaxed);
                    std::this_thread::yield();
                }
            }
        });
    }
    for (std::size_t c = 0; c < consumers; ++c) {
        ts.emplace_back([&] {
            std::uint64_t last[producers] = {};
            std::uint64_t local_sum = 0;
            while (popped.load(std::memory_order_relaxed) < producers * per) {
                std::uint64_t v;
                if (!ring.try_pop(v)) {
                    std::this_thread::yield();
                    continue;
                }
                popped.fetch_add(1, std::memory_order_relaxed);
                const std::size_t p = static_cast<std::size_t>(v >> 32);
                const std::uint64_t i = v & 0xffffffffu;
                // One producer's values reach any single consumer in increasing order (FIFO).
                if (p >= producers || i <= last[p]) order_violations.fetch_add(1, std::memory_order_relaxed);
                else last[p] = i;
                local_sum += i;
            }
            sum.fetch_add(local_sum);
        });
    }
    for (auto& t : ts) t.join();
    BOOST_TEST(popped.load() == producers * per);
    BOOST_TEST(sum.load() == producers * (per * (per + 1) / 2));
    BOOST_TEST(order_violations.load() == 0u);
    BOOST_TEST(ring.empty());
    std::uint64_t v;
    BOOST_TEST(!ring.try_pop(v));
    BOOST_TEST_MESSAGE("ring full " << full_hits.load() << " times");
}

BOOST_AUTO_TEST_CASE(bounded_ring_of_submit_entries_is_never_torn) {
    // Whole 64-byte entries: a consumer must never see a half-written one.
    constexpr std::size_t producers = 4, consumers = 4;
    constexpr std::size_t per = ring_items / 20;
    submit_ring ring(16);
    std::atomic<std::size_t> popped{0}, torn{0};
    std::vector<std::thread> ts;
    for (std::size_t p = 0; p < producers; ++p) {
        ts.emplace_back([&, p] {
            for (std::uint64_t i = 1; i <= per; ++i) {
                submit_entry e;
                e.corr_id = (p << 32) | i;
                e.nr = static_cast<std::uint32_t>(i);
                for (auto& a : e.args) a = e.corr_id ^ 0x5a5a5a5a5a5a5a5aull;
                while (!ring.try_push(e)) std::this_thread::yield();
            }
        });
    }
    for (std::size_t c = 0; c < consumers; ++c) {
        ts.emplace_back([&] {
            while (popped.load(std::memory_order_relaxed) < producers * per) {
                submit_entry e;
                if (!ring.try_pop(e)) {
                    std::this_thread::yield();
                    continue;
                }
                popped.fetch_add(1, std::memory_order_relaxed);
                bool ok = e.nr == static_cast<std::uint32_t>(e.corr_id & 0xffffffffu);
                for (auto a : e.args) ok = ok && a == (e.corr_id ^ 0x5a5a5a5a5a5a5a5aull);
                if (!ok) torn.fetch_add(1, std::memory_order_relaxed);
            }
        });
    }
    for (auto& t : ts) t.join();
    BOOST_TEST(popped.load() == producers * per);
    BOOST_TEST(torn.load() == 0u);
}

// The dispatcher's consumer side: several producers emplace in place, one consumer reads the
// front in place and releases it only after use (an entry that must wait stays the front).
BOOST_AUTO_TEST_CASE(bounded_ring_single_consumer_reads_front_in_place) {
    constexpr std::size_t producers = 3;
    constexpr std::size_t per = ring_items / 20;
    submit_ring ring(8);
    std::vector<std::thread> ts;
    for (std::size_t p = 0; p < producers; ++p) {
        ts.emplace_back([&, p] {
            for (std::uint64_t i = 1; i <= per; ++i) {
                const std::uint64_t id = (p << 32) | i;
                while (!ring.try_emplace([&](submit_entry& slot) noexcept {
                    slot.corr_id = id;
                    slot.nr = static_cast<std::uint32_t>(i);
                    for (auto& a : slot.args) a = id ^ 0x5a5a5a5a5a5a5a5aull;
                }))
                    std::this_thread::yield();
            }
        });
    }
    std::size_t popped = 0, torn = 0, order_violations = 0, moved_front = 0;
    std::uint64_t last[producers] = {};
    while (popped < producers * per) {
        const submit_entry* e = ring.front_exclusive();
        if (!e) {
            std::this_thread::yield();
            continue;
        }
        // Not released yet: the same cell stays the front, whatever the producers do.
        if (ring.front_exclusive() != e) ++moved_front;
        bool ok = e->nr == static_cast<std::uint32_t>(e->corr_id & 0xffffffffu);
        for (auto a : e->args) ok = ok && a == (e->corr_id ^ 0x5a5a5a5a5a5a5a5aull);
        torn += !ok;
        const std::size_t p = static_cast<std::size_t>(e->corr_id >> 32);
        const std::uint64_t i = e->corr_id & 0xffffffffu;
        if (p >= producers || i <= last[p]) ++order_violations;
        else last[p] = i;
        ring.pop_front_exclusive();
        ++popped;
    }
    for (auto& t : ts) t.join();
    BOOST_TEST(torn == 0u);
    BOOST_TEST(order_violations == 0u);
    BOOST_TEST(moved_front == 0u);
    BOOST_TEST(ring.empty());
    BOOST_TEST(ring.front_exclusive() == nullptr);
}

// Coroutine cancellation from another thread (executor/task.hpp): a read blocked on an empty
// pipe and a recv on an idle socket, each awaited with a stop_token whose stop is requested by
// a second thread — under every ring configuration and the epoll fallback, threaded and inline
// (the inline loop asleep in the kernel is woken by the request). The awaiter gets -ECANCELED,
// the descriptor still works afterwards, and an entry that finished first keeps its result.
task<std::int64_t> read_one(default_instance& inst, int fd, std::stop_token st) {
    char b = 0;
    co_return (co_await async(inst, sys::read(fd, &b, 1), st)).result;
}
task<std::int64_t> recv_one(default_instance& inst, int fd, std::stop_token st) {
    char b = 0;
    co_return (co_await async(inst, sys::recvfrom(fd, &b, 1, 0), st)).result;
}

// Entries the loop has placed in any tier (relaxed atomics: readable from any thread).
template <class I>
std::uint64_t placed(I& inst) {
    std::uint64_t n = 0;
    for (tier t : {tier::shared_page, tier::io_uring, tier::worker_pool, tier::legacy}) n += inst.loop().executed(t);
    return n;
}

BOOST_DATA_TEST_CASE(blocked_awaits_cancelled_from_another_thread, bdata::make(backend_configs()), c) {
    default_instance inst(options_for(c));
    pipe_pair p;
    auto [client, server] = tcp_pair();
    for (int which = 0; which < 2; ++which) {
        std::stop_source source;
        const std::uint64_t before = placed(inst);
        bool was_in_flight = false;
        // The stop comes once the loop has placed the read (so it is in flight, not merely
        // about to be submitted) and has had time to block on it.
        std::thread stopper([&] {
            const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
            while (placed(inst) == before && std::chrono::steady_clock::now() < give_up)
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
            was_in_flight = placed(inst) > before;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            source.request_stop();
        });
        const std::int64_t r = which == 0 ? sync_wait(inst, read_one(inst, p.r, source.get_token()))
                                          : sync_wait(inst, recv_one(inst, server, source.get_token()));
        stopper.join();
        BOOST_TEST(was_in_flight);
        BOOST_TEST(r == -ECANCELED);
    }
    // Both descriptors still serve, and a completed await keeps its result despite a later stop.
    BOOST_REQUIRE(::write(p.w, "k", 1) == 1);
    std::stop_source late;
    BOOST_TEST(sync_wait(inst, read_one(inst, p.r, late.get_token())) == 1);
    late.request_stop();
    BOOST_REQUIRE(::send(client, "s", 1, 0) == 1);
    std::stop_source unused;
    BOOST_TEST(sync_wait(inst, recv_one(inst, server, unused.get_token())) == 1);
    // Stopped before the co_await: nothing is submitted (the byte stays in the pipe).
    BOOST_REQUIRE(::write(p.w, "q", 1) == 1);
    std::stop_source early;
    early.request_stop();
    BOOST_TEST(sync_wait(inst, read_one(inst, p.r, early.get_token())) == -ECANCELED);
    BOOST_TEST(sync_wait(inst, read_one(inst, p.r, std::stop_token{})) == 1);
}

// Tier 2: flock on a file another open file description holds runs on a worker and blocks
// there; a stop request from another thread interrupts it (-ECANCELED), with fixed_pool and
// with lazy_pool, in both modes, and the lock is taken normally once it is free.
template <class Instance>
task<std::int64_t> lock_file(Instance& inst, int fd, std::stop_token st) {
    submit_entry e;
    e.nr = syscalls::x86_64::flock;
    e.args[0] = static_cast<std::uint64_t>(fd);
    e.args[1] = LOCK_EX;
    const completion_entry c = co_await ksvc::async(inst, e, std::move(st));
    co_return c.result;
}

template <class Instance>
void cancel_a_blocked_worker(dispatch_mode mode) {
    instance_options o;
    o.mode = mode;
    Instance inst(o);
    BOOST_REQUIRE(inst.router().route(syscalls::x86_64::flock).tier == tier::worker_pool);
    temp_dir d;
    const std::string path = d.file("locked");
    unique_fd holder(::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600));
    unique_fd waiter(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    BOOST_REQUIRE(::flock(holder, LOCK_EX) == 0);
    std::stop_source source;
    std::thread stopper([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        source.request_stop();
    });
    const std::int64_t r = sync_wait(inst, lock_file(inst, waiter, source.get_token()));
    stopper.join();
    BOOST_TEST(r == -ECANCELED);
    BOOST_REQUIRE(::flock(holder, LOCK_UN) == 0);
    BOOST_TEST(sync_wait(inst, lock_file(inst, waiter, std::stop_token{})) == 0);
}

BOOST_DATA_TEST_CASE(blocked_worker_syscall_cancelled_from_another_thread,
                     bdata::make({dispatch_mode::threaded, dispatch_mode::inline_mode}), mode) {
    cancel_a_blocked_worker<default_instance>(mode);
    cancel_a_blocked_worker<instance<probe_router, basic_io_uring_or_epoll, lazy_pool, eventfd_notifier, heap_buffers>>(mode);
}

// The canceller repeats its signal while the worker still runs the entry (one that came just
// before the syscall began is lost), but it does not queue a second before the first was
// handled, unless resend_after has passed: the interrupt is a real-time signal, so each send
// queues one more, and a flood of them once kept a slow worker (an emulated 6.1 kernel) inside
// its handler for good — the flock was never left and the test above hung. Here the worker
// blocks the signal, so the first one stays pending: a thousand more cancels queue none, and
// one after resend_after queues the second.
BOOST_AUTO_TEST_CASE(a_worker_being_cancelled_has_at_most_one_interrupt_queued) {
    using namespace std::chrono_literals;
    using slot_type = detail::interruptible_slot;
    temp_dir d;
    const std::string path = d.file("locked");
    unique_fd holder(::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600));
    unique_fd waiter(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    BOOST_REQUIRE(::flock(holder, LOCK_EX) == 0);
    submit_entry e;
    e.nr = syscalls::x86_64::flock;
    e.args[0] = static_cast<std::uint64_t>(waiter.fd);
    e.args[1] = LOCK_EX;
    e.corr_id = 7;
    slot_type slot;
    std::int64_t result = 1;
    int queued = -1;
    std::thread worker([&] {
        const int sig = detail::interrupt_signal();
        sigset_t only;
        ::sigemptyset(&only);
        ::sigaddset(&only, sig);
        ::pthread_sigmask(SIG_BLOCK, &only, nullptr);
        result = slot.run(e).result;
        // Count what is queued for this thread, taking each without waiting.
        const timespec now{};
        for (queued = 0; ::sigtimedwait(&only, nullptr, &now) == sig;) ++queued;
    });
    // No BOOST_REQUIRE until the join: the worker must not outlive the test's locals.
    using found = slot_type::found;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    bool signalled = false;
    while (!(signalled = slot.cancel(7) == found::signalled) && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(1ms);
    const auto first_sent = std::chrono::steady_clock::now();
    int refused = 0;
    for (int i = 0; signalled && i < 1000; ++i) refused += slot.cancel(7) != found::signalled;
    const auto burst = std::chrono::steady_clock::now() - first_sent;
    std::this_thread::sleep_for(slot_type::resend_after + 10ms);
    const bool resent = signalled && slot.cancel(7) == found::signalled;
    const bool other = slot.cancel(8) == found::no; // another entry's id: never this worker
    const bool unlocked = ::flock(holder, LOCK_UN) == 0; // the flock completes, not interrupted
    worker.join();
    BOOST_TEST(signalled);
    BOOST_TEST(refused == 0);
    BOOST_TEST(resent);
    BOOST_TEST(other);
    BOOST_TEST(unlocked);
    BOOST_TEST(result == 0);
    // The first and the late one; a burst slower than resend_after (a loaded machine) may add
    // one per resend_after it took.
    BOOST_TEST(queued >= 2);
    BOOST_TEST(queued <= 2 + static_cast<int>(burst / slot_type::resend_after));
}

// Tier 2, queued: one worker, blocked in a flock; an fchmod waiting behind it in the queue is
// cancelled from another thread — it completes -ECANCELED without ever running (the file's mode
// is unchanged), with fixed_pool and with lazy_pool, in both modes. Then the flock is cancelled
// too, and an fchmod with the same id runs normally (no cancellation outlives its request).
template <class Instance>
task<std::int64_t> chmod_file(Instance& inst, int fd, mode_t m, std::stop_token st) {
    submit_entry e;
    e.nr = syscalls::x86_64::fchmod;
    e.args[0] = static_cast<std::uint64_t>(fd);
    e.args[1] = m;
    const completion_entry c = co_await ksvc::async(inst, e, std::move(st));
    co_return c.result;
}

template <class Instance>
void cancel_a_queued_entry(dispatch_mode mode) {
    instance_options o;
    o.mode = mode;
    o.pool.threads = 1;
    Instance inst(o);
    BOOST_REQUIRE(inst.router().route(syscalls::x86_64::fchmod).tier == tier::worker_pool);
    temp_dir d;
    const std::string path = d.file("queued");
    unique_fd holder(::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644));
    unique_fd waiter(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    BOOST_REQUIRE(::fchmod(holder, 0644) == 0);
    BOOST_REQUIRE(::flock(holder, LOCK_EX) == 0);
    std::stop_source stop_lock, stop_chmod;
    std::int64_t lock_result = 1, chmod_result = 1;
    std::thread stopper([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(60)); // the flock blocks the worker
        stop_chmod.request_stop();
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
        stop_lock.request_stop();
    });
    // Captureless coroutines: their arguments live in their frames (a capturing lambda's
    // closure would be gone while the spawned task still runs).
    auto store = [](task<std::int64_t> t, std::int64_t& out) -> task<void> { out = co_await std::move(t); };
    sync_wait(inst, [](task<void> a, task<void> b) -> task<void> {
        task_scope both;
        both.spawn(std::move(a));
        both.spawn(std::move(b));
        co_await both.join();
    }(store(lock_file(inst, waiter, stop_lock.get_token()), lock_result),
      store(chmod_file(inst, waiter, 0600, stop_chmod.get_token()), chmod_result)));
    stopper.join();
    BOOST_TEST(chmod_result == -ECANCELED);
    BOOST_TEST(lock_result == -ECANCELED);
    struct ::stat st{};
    BOOST_REQUIRE(::fstat(holder, &st) == 0);
    BOOST_TEST((st.st_mode & 0777) == 0644u); // the cancelled fchmod never ran
    BOOST_TEST(sync_wait(inst, chmod_file(inst, waiter, 0600, std::stop_token{})) == 0);
    BOOST_REQUIRE(::fstat(holder, &st) == 0);
    BOOST_TEST((st.st_mode & 0777) == 0600u);
    // Both requests are over: no mark is left to cancel later work that reuses an id.
    if constexpr (requires { inst.workers().pending_marks(); }) BOOST_TEST(inst.workers().pending_marks() == 0u);
}

BOOST_DATA_TEST_CASE(queued_worker_entry_cancelled_without_running,
                     bdata::make({dispatch_mode::threaded, dispatch_mode::inline_mode}), mode) {
    cancel_a_queued_entry<default_instance>(mode);
    cancel_a_queued_entry<instance<probe_router, basic_io_uring_or_epoll, lazy_pool, eventfd_notifier, heap_buffers>>(mode);
}

// A stop that races the completion it would cancel: a writer thread makes a blocked read
// complete while a stopper thread requests the stop, released together, each after its own
// short delay. The await ends exactly
// one way — the byte (taken from the pipe) or -ECANCELED (the byte still there) — and the
// cancel request never outlives its await: the next read, with no stop at all, is served, though
// it may reuse the cancelled one's frame and correlation id.
BOOST_DATA_TEST_CASE(a_stop_racing_the_completion_ends_the_await_exactly_once, bdata::make(backend_configs()), c) {
    default_instance inst(options_for(c));
    pipe_pair p;
    int got_byte = 0, got_cancel = 0, other = 0, stale = 0;
    for (int i = 0; i < 150; ++i) {
        std::stop_source source;
        std::atomic<bool> go{false};
        const std::uint64_t before = placed(inst);
        // Each side waits 0–80 µs after the read is in flight: either may come first.
        const auto write_after = std::chrono::microseconds(20 * (i % 5)), stop_after = std::chrono::microseconds(20 * (i / 5 % 5));
        std::thread writer([&] {
            const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
            while (placed(inst) == before && std::chrono::steady_clock::now() < give_up)
                std::this_thread::yield(); // the read is in flight
            go.store(true, std::memory_order_release);
            std::this_thread::sleep_for(write_after);
            (void)!::write(p.w, "r", 1);
        });
        std::thread stopper([&] {
            while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
            std::this_thread::sleep_for(stop_after);
            source.request_stop();
        });
        const std::int64_t r = sync_wait(inst, read_one(inst, p.r, source.get_token()));
        writer.join();
        stopper.join();
        char b = 0;
        pollfd readable{p.r, POLLIN, 0};
        if (r == 1) {
            ++got_byte;
        } else if (r == -ECANCELED) {
            ++got_cancel;
            // Cancelled: the byte must still be there (polled first: a lost byte fails, not hangs).
            if (::poll(&readable, 1, 1000) != 1 || ::read(p.r, &b, 1) != 1) ++other;
        } else {
            ++other;
        }
        // No stop here: a cancel request left over from the race would end it -ECANCELED.
        BOOST_REQUIRE(::write(p.w, "n", 1) == 1);
        if (sync_wait(inst, read_one(inst, p.r, std::stop_token{})) != 1) ++stale;
    }
    BOOST_TEST(other == 0);
    BOOST_TEST(stale == 0);
    BOOST_TEST(got_byte + got_cancel == 150);
    BOOST_TEST_MESSAGE(got_byte << " reads won, " << got_cancel << " stops won");
}

// The shared page reads the process's identity at its first answer, not at construction: four
// threads asking at once all get the kernel's answers (refresh() publishes with release, the
// answers load with acquire; TSan checks the pairing).
BOOST_AUTO_TEST_CASE(shared_page_first_answers_from_many_threads_agree) {
    for (int round = 0; round < 50; ++round) {
        ksvc::process_shared_page page;
        std::atomic<bool> go{false};
        std::atomic<int> wrong{0};
        std::vector<std::thread> ts;
        for (int t = 0; t < 4; ++t)
            ts.emplace_back([&] {
                while (!go.load(std::memory_order_acquire)) {
                }
                std::int64_t pid = 0, uid = 0;
                if (!page.answer(ksvc::sys::getpid(), pid) || pid != ::getpid()) ++wrong;
                if (!page.answer(ksvc::sys::getuid(), uid) || uid != static_cast<std::int64_t>(::getuid())) ++wrong;
            });
        go.store(true, std::memory_order_release);
        for (auto& t : ts) t.join();
        BOOST_TEST_REQUIRE(wrong.load() == 0);
    }
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace ksvc::test::concurrency

// Inline mode: stop() from another thread may come before, during or after the owner enters
// run(). Exactly one of them drains; neither hangs (before the fix both drained and both
// joined the pool: a hang every time).
BOOST_AUTO_TEST_CASE(inline_stop_from_another_thread_races_run) {
    for (int i = 0; i < 100; ++i) {
        ksvc::instance_options o;
        o.mode = ksvc::dispatch_mode::inline_mode;
        ksvc::default_instance inst(o);
        std::thread stopper([&] { inst.stop(); });
        inst.run();
        stopper.join();
        BOOST_TEST_REQUIRE(inst.loop().drained());
        BOOST_TEST_REQUIRE((inst.submit(ksvc::sys::getpid()) == ksvc::errc::shut_down));
    }
}
