// lazy_pool in an instance: no threads until Tier-2 work arrives, growth up to the maximum under
// blocking work, idle threads exiting after the timeout, and growth again — every entry
// completing once with its result, in both dispatch modes.
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <thread>
#include <vector>

#include <ksvc/executor/op.hpp>
#include <ksvc/executor/sys.hpp>
#include <ksvc/module/presets.hpp>
#include <ksvc/module/workers/lazy_pool.hpp>

#include "support/fixtures.hpp"

namespace ksvc::test::lazy {

namespace bdata = boost::unit_test::data;
namespace nr = ksvc::syscalls::native;
using namespace std::chrono_literals;

using lazy_instance = instance<probe_router, basic_io_uring, lazy_pool, eventfd_notifier, heap_buffers>;
const std::vector<dispatch_mode> modes = {dispatch_mode::threaded, dispatch_mode::inline_mode};

template <class Pred>
bool eventually(Pred p, std::chrono::milliseconds limit = 5000ms) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!p()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

BOOST_AUTO_TEST_SUITE(lazy_pool_policy)

BOOST_DATA_TEST_CASE(threads_appear_with_work_and_leave_when_idle, bdata::make(modes), mode) {
    instance_options o;
    o.mode = mode;
    o.pool.threads = 3;
    o.pool.idle_timeout = 100ms;
    lazy_instance inst(o);
    BOOST_TEST(inst.workers().total_workers() == 0u); // nothing has needed a thread yet
    const submit_entry sleep_entry = sys::make(nr::nanosleep, nullptr, nullptr);
    BOOST_REQUIRE(inst.router().route(nr::nanosleep).tier == tier::worker_pool);
    static const timespec ts{0, 150'000'000}; // 150 ms: blocks a worker
    for (int round = 0; round < 2; ++round) {
        for (std::uint64_t id = 1; id <= 6; ++id) {
            submit_entry e = sleep_entry;
            e.args[0] = reinterpret_cast<std::uint64_t>(&ts);
            BOOST_REQUIRE(!inst.submit(op::tagged(e, id)));
        }
        std::vector<int> seen(7, 0);
        std::size_t got = 0, most = 0;
        completion_entry out[8];
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (got < 6 && std::chrono::steady_clock::now() < deadline) {
            const std::size_t n = inst.wait_completions(out, 10);
            most = std::max(most, inst.workers().total_workers());
            for (std::size_t i = 0; i < n; ++i) {
                BOOST_TEST(out[i].result == 0, out[i]);
                ++seen.at(out[i].corr_id);
            }
            got += n;
        }
        BOOST_TEST(got == 6u);
        for (int id = 1; id <= 6; ++id) BOOST_TEST(seen[id] == 1, "id " << id);
        BOOST_TEST(most <= 3u);                             // never above the maximum
        BOOST_TEST(inst.workers().started() >= 3u * (round + 1)); // grew under blocking work
        // Idle for the timeout: every thread leaves.
        BOOST_TEST(eventually([&] { return inst.workers().total_workers() == 0u; }));
    }
    BOOST_TEST(inst.loop().executed(tier::worker_pool) == 12u);
}

// Idle threads are reused before new ones are started.
BOOST_AUTO_TEST_CASE(an_idle_thread_takes_the_next_job) {
    instance_options o;
    o.pool.threads = 4;
    o.pool.idle_timeout = 10s;
    lazy_instance inst(o);
    unique_fd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    for (std::uint64_t id = 1; id <= 20; ++id) {
        submit_entry d = sys::dup(null);
        BOOST_REQUIRE(!inst.submit(op::tagged(d, id)));
        completion_entry out[1];
        std::size_t got = 0; // a stale wake-up may return nothing: wait again
        for (int i = 0; i < 500 && got == 0; ++i) got = inst.wait_completions(out, 10);
        BOOST_REQUIRE(got == 1u);
        BOOST_TEST(out[0].result >= 0);
        ::close(static_cast<int>(out[0].result));
    }
    BOOST_TEST(inst.workers().started() == 1u); // one at a time: the idle thread served them all
}

// RLIMIT_NPROC refuses the first thread: the entry completes with EAGAIN instead of waiting
// for a thread that cannot come (a call() used to hang), and once the limit is lifted the pool
// starts a thread and runs the next one. Root escapes RLIMIT_NPROC: the child drops to nobody.
BOOST_DATA_TEST_CASE(a_thread_the_system_refuses_fails_the_entry_with_eagain, bdata::make(modes), mode) {
    const int status = run_unprivileged([mode] {
        instance_options o;
        o.mode = mode;
        o.pool.threads = 2;
        lazy_instance inst(o); // threaded mode starts its loop thread here, before the limit
        unique_fd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        rlimit was{};
        if (::getrlimit(RLIMIT_NPROC, &was) != 0) return 11;
        const rlimit none{0, was.rlim_max};
        if (::setrlimit(RLIMIT_NPROC, &none) != 0) return 12;
        // Submitted, not call()ed: threaded call() runs Tier-2 work on the calling thread.
        const auto run = [&](submit_entry e) {
            completion_entry c{};
            if (inst.submit(op::tagged(e, 9))) return c;
            for (int i = 0; i < 200; ++i)
                if (inst.wait_completions(std::span(&c, 1), 10) == 1) return c;
            return c;
        };
        if (run(sys::dup(null)).result != -EAGAIN) return 13;
        if (inst.workers().total_workers() != 0u) return 14;
        // A chain that would run on a worker: every entry says why, none ran.
        submit_entry chain[2] = {op::tagged(op::linked(sys::dup(null)), 1), op::tagged(sys::dup(null), 2)};
        if (inst.submit(chain)) return 15;
        int eagain = 0;
        completion_entry out[2];
        for (int i = 0, got = 0; i < 200 && got < 2; ++i) {
            const std::size_t n = inst.wait_completions(out, 10);
            for (std::size_t k = 0; k < n; ++k, ++got) eagain += out[k].result == -EAGAIN;
        }
        if (eagain != 2) return 16;
        if (::setrlimit(RLIMIT_NPROC, &was) != 0) return 17;
        const completion_entry ran = run(sys::dup(null));
        if (ran.result < 0) return 18;
        ::close(static_cast<int>(ran.result));
        return inst.workers().started() == 1u ? 0 : 19;
    });
    BOOST_TEST(child_exited_with(status, 0),
               describe_child(status) << " (11/12 rlimit, 13 not EAGAIN, 14 a thread, 15 chain refused, "
                                         "16 chain completions, 17 rlimit back, 18 no run after, 19 started)");
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace ksvc::test::lazy
