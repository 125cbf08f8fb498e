// notifier laws, over eventfd_notifier, futex_notifier (futex mode and the eventfd mode it takes
// on a kernel without IORING_OP_FUTEX_WAIT) and the archetype:
// - notifies coalesce: any number before a wait wake it once; the next try_wait() is false;
// - try_wait() consumes one pending notification and never blocks;
// - a notify from another thread wakes a waiter blocked in wait() or wait_for_ms();
// - wait_for_ms() times out (false) when nobody notifies, after at least the timeout;
// - no wake-up is lost: two threads ping-pong through two notifiers many times, and a waiter
//   keeps being woken during a storm of notifies from another thread.
#include <boost/mpl/list.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include <ksvc/core/concepts/notifier.hpp>
#include <ksvc/module/notifiers/eventfd_notifier.hpp>
#include <ksvc/module/notifiers/futex_notifier.hpp>

#include "support/archetypes/archetype_notifier.hpp"

namespace {
using namespace ksvc;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

// futex_notifier as it is on a 6.6 kernel: an eventfd doorbell.
struct futex_notifier_on_6_6 : futex_notifier {
    futex_notifier_on_6_6() : futex_notifier(capabilities::for_kernel({6, 6})) {}
};

using notifiers = boost::mpl::list<eventfd_notifier, futex_notifier, futex_notifier_on_6_6, test::archetype_notifier>;

} // namespace

BOOST_AUTO_TEST_SUITE(laws_notifier)

BOOST_AUTO_TEST_CASE_TEMPLATE(notifies_coalesce, N, notifiers) {
    N n;
    for (int i = 0; i < 100; ++i) n.notify();
    BOOST_TEST(n.wait_for_ms(1000));
    BOOST_TEST(!n.try_wait());
    BOOST_TEST(!n.wait_for_ms(0));
    for (int i = 0; i < 5; ++i) n.notify();
    n.wait(); // returns at once: notified before the wait
    BOOST_TEST(!n.try_wait());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(try_wait_consumes_one_pending_notification, N, notifiers) {
    N n;
    BOOST_TEST(!n.try_wait());
    n.notify();
    BOOST_TEST(n.try_wait());
    BOOST_TEST(!n.try_wait());
    n.notify();
    n.notify();
    BOOST_TEST(n.try_wait());
    BOOST_TEST(!n.wait_for_ms(0));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(a_notify_from_another_thread_wakes_a_waiter, N, notifiers) {
    N n;
    std::atomic<bool> notified{false};
    std::thread t([&] {
        std::this_thread::sleep_for(20ms);
        notified.store(true);
        n.notify();
    });
    n.wait();
    BOOST_TEST(notified.load()); // not a spurious return
    t.join();

    std::thread u([&] {
        std::this_thread::sleep_for(20ms);
        n.notify();
    });
    const auto start = clock_type::now();
    BOOST_TEST(n.wait_for_ms(10'000));
    BOOST_TEST((clock_type::now() - start < 5s));
    u.join();
    BOOST_TEST(!n.try_wait());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(wait_for_ms_times_out_when_not_notified, N, notifiers) {
    N n;
    const auto start = clock_type::now();
    BOOST_TEST(!n.wait_for_ms(30));
    const auto waited = clock_type::now() - start;
    BOOST_TEST((waited >= 29ms), std::chrono::duration_cast<std::chrono::microseconds>(waited).count() << " us");
    BOOST_TEST(!n.wait_for_ms(0));
    BOOST_TEST(!n.try_wait());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(no_wakeup_is_lost, N, notifiers) {
    N ping, pong;
    constexpr int rounds = 2000;
    std::atomic<bool> stop{false};
    std::thread echo([&] {
        for (;;) {
            ping.wait();
            if (stop.load()) return;
            pong.notify();
        }
    });
    int answered = 0;
    for (int i = 0; i < rounds; ++i) {
        ping.notify();
        if (!pong.wait_for_ms(5000)) break; // a lost wake-up: report instead of hanging
        ++answered;
    }
    stop.store(true);
    ping.notify(); // pending until the echo thread's next wait consumes it
    echo.join();
    BOOST_TEST(answered == rounds);
}

// A waiter facing a storm of notifies from another thread is woken every time. A notifier that
// can strand its state (pending recorded, nothing left to wake on) swallows every later notify;
// that is a race, so this is a stress test with a fixed time budget.
BOOST_AUTO_TEST_CASE_TEMPLATE(a_notify_storm_never_strands_the_waiter, N, notifiers) {
    N n;
    std::atomic<bool> stop{false};
    std::thread storm([&] {
        while (!stop.load(std::memory_order_relaxed)) n.notify();
    });
    int woken = 0;
    bool stranded = false;
    const auto end = clock_type::now() + 1s;
    while (!stranded && clock_type::now() < end) {
        if (n.wait_for_ms(1000)) ++woken;
        else stranded = true;
    }
    stop.store(true);
    storm.join();
    BOOST_TEST(!stranded, "a wait timed out during a notify storm, after " << woken << " wake-ups");
}

BOOST_AUTO_TEST_CASE(futex_notifier_takes_its_doorbell_from_the_kernel) {
    const futex_notifier plain;
    BOOST_TEST(!plain.uses_eventfd());
    BOOST_TEST(plain.native_handle() == -1); // no file descriptor
    BOOST_TEST(plain.futex_word() != nullptr);
    const futex_notifier on_6_7(capabilities::for_kernel({6, 7}));
    BOOST_TEST(!on_6_7.uses_eventfd());
    const futex_notifier_on_6_6 old;
    BOOST_TEST(old.uses_eventfd()); // IORING_OP_FUTEX_WAIT is 6.7: it says it needs the eventfd
    BOOST_TEST(old.native_handle() >= 0);
    BOOST_TEST(old.futex_word() == nullptr);
}

BOOST_AUTO_TEST_SUITE_END()
