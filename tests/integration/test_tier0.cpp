// Tier 0: answers from the shared page equal the direct calls — in the parent, in a forked child
// with its own instance, and for the parent's page used in a child (refreshed after fork).
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include <ksvc/executor/sys.hpp>
#include <ksvc/module/presets.hpp>

#include "support/fixtures.hpp"

namespace ksvc::test::tier0 {

namespace bdata = boost::unit_test::data;
namespace nr = ksvc::syscalls::native;

struct harness {
    run_config cfg;
    default_instance inst;
    explicit harness(const run_config& c) : cfg(c), inst(options_for(c)) {}

    //! Through call(): answered on the calling thread, never queued.
    std::int64_t call(const submit_entry& e) {
        BOOST_TEST((inst.router().route(e.nr).tier == tier::shared_page), syscalls::name_of(e.nr) << " is not Tier 0");
        const completion_entry c = inst.call(e);
        BOOST_TEST(!(c.flags & completion_flags::ksvc_error), syscalls::name_of(e.nr) << ": framework error " << c);
        return c.result;
    }
    template <class... A>
    std::int64_t call(std::uint32_t n, A... a) {
        return call(sys::make(n, a...));
    }

    //! Through submit() + the completion queue: answered by the dispatcher.
    template <class... A>
    std::int64_t queued(std::uint32_t n, A... a) {
        submit_entry e = sys::make(n, a...);
        e.corr_id = ++corr;
        BOOST_REQUIRE(!inst.submit(e));
        completion_entry out[8];
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (std::chrono::steady_clock::now() < deadline) {
            std::size_t got = inst.wait_completions(out, 10);
            for (std::size_t i = 0; i < got; ++i) {
                BOOST_TEST(out[i].corr_id == e.corr_id);
                BOOST_TEST(!(out[i].flags & completion_flags::ksvc_error));
                if (out[i].corr_id == e.corr_id) return out[i].result;
            }
        }
        BOOST_FAIL("no completion for " << syscalls::name_of(n));
        return 0;
    }
    std::uint64_t corr = 0;
};

inline std::int64_t ts_ns(const timespec& t) { return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec; }

BOOST_AUTO_TEST_SUITE(tier0_shared_page)

BOOST_DATA_TEST_CASE(identity_equals_direct, bdata::make(run_configs()), cfg) {
    harness h(cfg);
    const std::uint64_t before = h.inst.page().answered();
    for (int via_queue = 0; via_queue < 2; ++via_queue) {
        BOOST_TEST_CONTEXT((via_queue ? "submit()" : "call()")) {
            auto get = [&](std::uint32_t n, auto... a) { return via_queue ? h.queued(n, a...) : h.call(n, a...); };
            BOOST_TEST(get(nr::getpid) == direct(nr::getpid));
            BOOST_TEST(get(nr::getuid) == direct(nr::getuid));
            BOOST_TEST(get(nr::geteuid) == direct(nr::geteuid));
            BOOST_TEST(get(nr::getgid) == direct(nr::getgid));
            BOOST_TEST(get(nr::getegid) == direct(nr::getegid));
            BOOST_TEST(get(nr::getpgrp) == direct(nr::getpgrp));
            BOOST_TEST(get(nr::getpgid, 0) == direct(nr::getpgid, 0));
            BOOST_TEST(get(nr::getsid, 0) == direct(nr::getsid, 0));
            // Our own pid named explicitly is answered too; another process's goes to the kernel.
            BOOST_TEST(get(nr::getpgid, ::getpid()) == direct(nr::getpgid, ::getpid()));
            BOOST_TEST(get(nr::getsid, ::getppid()) == direct(nr::getsid, ::getppid()));
            BOOST_TEST(get(nr::getpgid, 0x3fffffff) == direct(nr::getpgid, 0x3fffffff)); // ESRCH
        }
    }
    BOOST_TEST(h.inst.page().pid() == ::getpid());
    BOOST_TEST(h.inst.page().uid() == static_cast<long>(::getuid()));
    BOOST_TEST(h.inst.page().answered() >= before + 18); // 2 x 9 answered from the page
}

BOOST_DATA_TEST_CASE(getrlimit_and_fallback, bdata::make(run_configs()), cfg) {
    harness h(cfg);
    rlimit via{}, dir{};
    const std::uint64_t a0 = h.inst.page().answered();
    BOOST_TEST(h.call(nr::getrlimit, RLIMIT_NOFILE, &via) == 0);
    BOOST_TEST(h.inst.page().answered() == a0 + 1);
    BOOST_REQUIRE(::getrlimit(RLIMIT_NOFILE, &dir) == 0);
    BOOST_TEST(via.rlim_cur == dir.rlim_cur);
    BOOST_TEST(via.rlim_max == dir.rlim_max);
    BOOST_TEST(h.inst.page().rlimit_nofile() == dir.rlim_cur);

    // Any other resource is not cached: it falls back to a worker and still equals direct.
    for (int res : {RLIMIT_STACK, RLIMIT_CORE, RLIMIT_AS, RLIMIT_NPROC}) {
        rlimit a{}, b{};
        const std::uint64_t n0 = h.inst.page().answered();
        BOOST_TEST(h.call(nr::getrlimit, res, &a) == direct(nr::getrlimit, res, &b), "resource " << res);
        BOOST_TEST(a.rlim_cur == b.rlim_cur, "resource " << res);
        BOOST_TEST(a.rlim_max == b.rlim_max, "resource " << res);
        BOOST_TEST(h.inst.page().answered() == n0, "resource " << res << " was not answered by the page");
    }
    rlimit q{};
    BOOST_TEST(h.queued(nr::getrlimit, RLIMIT_STACK, &q) == 0);
    // Errors come from the kernel: an unknown resource, a null pointer.
    BOOST_TEST(h.call(nr::getrlimit, 1000, &via) == direct(nr::getrlimit, 1000, &dir));
    BOOST_TEST(h.call(nr::getrlimit, RLIMIT_NOFILE, nullptr) == direct(nr::getrlimit, RLIMIT_NOFILE, nullptr));
    BOOST_TEST(h.call(nr::getrlimit, RLIMIT_NOFILE, nullptr) == -EFAULT);
}

BOOST_DATA_TEST_CASE(uname_equals_direct, bdata::make(run_configs()), cfg) {
    harness h(cfg);
    utsname a{}, b{}, q{};
    std::memset(&a, 0x5a, sizeof a); // the whole struct is written, padding included
    const std::uint64_t a0 = h.inst.page().answered();
    BOOST_TEST(h.call(nr::uname, &a) == 0);
    BOOST_TEST(h.inst.page().answered() == a0 + 1);
    BOOST_TEST(direct(nr::uname, &b) == 0);
    BOOST_TEST(std::memcmp(&a, &b, sizeof a) == 0);
    BOOST_TEST(std::string(a.sysname) == "Linux");
    BOOST_TEST(std::string(a.release) == std::string(b.release));
    BOOST_TEST(h.queued(nr::uname, &q) == 0);
    BOOST_TEST(std::memcmp(&q, &b, sizeof q) == 0);
    BOOST_TEST(h.call(nr::uname, nullptr) == -EFAULT);
}

BOOST_DATA_TEST_CASE(clocks_are_live, bdata::make(run_configs()), cfg) {
    harness h(cfg);
    const std::uint64_t a0 = h.inst.page().answered();
    timespec prev{};
    BOOST_REQUIRE(::clock_gettime(CLOCK_MONOTONIC, &prev) == 0);
    for (int i = 0; i < 100; ++i) {
        timespec t{}, after{};
        BOOST_TEST(h.call(nr::clock_gettime, CLOCK_MONOTONIC, &t) == 0);
        BOOST_REQUIRE(::clock_gettime(CLOCK_MONOTONIC, &after) == 0);
        // Monotonic and between the direct reads around it: never a cached value.
        BOOST_TEST(ts_ns(t) >= ts_ns(prev));
        BOOST_TEST(ts_ns(t) <= ts_ns(after));
        prev = t;
    }
    BOOST_TEST(h.inst.page().answered() == a0 + 100);
    timespec r{}, d{};
    BOOST_TEST(h.call(nr::clock_gettime, CLOCK_REALTIME, &r) == 0);
    BOOST_REQUIRE(::clock_gettime(CLOCK_REALTIME, &d) == 0);
    BOOST_TEST(std::llabs(ts_ns(d) - ts_ns(r)) < 1'000'000'000LL);
    timespec q{}, qd{};
    BOOST_TEST(h.queued(nr::clock_gettime, CLOCK_MONOTONIC, &q) == 0);
    BOOST_REQUIRE(::clock_gettime(CLOCK_MONOTONIC, &qd) == 0);
    BOOST_TEST(ts_ns(q) <= ts_ns(qd));
    BOOST_TEST(ts_ns(q) >= ts_ns(prev));
    BOOST_TEST(h.call(nr::clock_gettime, CLOCK_MONOTONIC, nullptr) == -EFAULT);
    BOOST_TEST(h.call(nr::clock_gettime, 12345, &r) == direct(nr::clock_gettime, 12345, &d)); // EINVAL

    // The calling thread's CPU clock is read on the caller's own thread through call(): its
    // value lies between two direct reads of this thread's clock. submit() refuses it (the
    // loop or a worker would read its own clock).
    timespec cpu{}, before{}, after{};
    BOOST_REQUIRE(::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &before) == 0);
    const completion_entry c = h.inst.call(sys::make(nr::clock_gettime, CLOCK_THREAD_CPUTIME_ID, &cpu));
    BOOST_REQUIRE(::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &after) == 0);
    BOOST_TEST(c.result == 0, c);
    BOOST_TEST(ts_ns(cpu) >= ts_ns(before));
    BOOST_TEST(ts_ns(cpu) <= ts_ns(after));
    {
        submit_entry e = sys::make(nr::clock_gettime, CLOCK_THREAD_CPUTIME_ID, &cpu);
        e.corr_id = 777;
        BOOST_REQUIRE(!h.inst.submit(e));
        completion_entry out[4];
        std::size_t n = 0;
        for (int i = 0; i < 500 && n == 0; ++i) n = h.inst.wait_completions(out, 10);
        BOOST_REQUIRE(n == 1u);
        BOOST_TEST((out[0].error() == errc::refused), out[0]);
    }

    // gettimeofday and time: close to direct.
    timeval tv{}, tvd{};
    BOOST_TEST(h.call(nr::gettimeofday, &tv, nullptr) == 0);
    BOOST_REQUIRE(::gettimeofday(&tvd, nullptr) == 0);
    BOOST_TEST(tv.tv_sec <= tvd.tv_sec);
    BOOST_TEST(tvd.tv_sec - tv.tv_sec <= 1);
    std::time_t tt = 0;
    const std::int64_t t1 = h.call(nr::time, &tt);
    const std::time_t t2 = ::time(nullptr);
    BOOST_TEST(t1 == static_cast<std::int64_t>(tt));
    BOOST_TEST(t1 <= t2);
    BOOST_TEST(t2 - t1 <= 1);
    const std::int64_t t3 = h.call(nr::time, nullptr);
    const std::int64_t t4 = ::time(nullptr);
    BOOST_TEST(t3 <= t4);
    BOOST_TEST(t4 - t3 <= 1);
    BOOST_TEST(t3 >= t2);
    BOOST_TEST(h.queued(nr::time, nullptr) > 0);
}

// A child with its own instance: getpid there is the child's pid (no state from the parent's).
BOOST_DATA_TEST_CASE(new_instance_in_forked_child, bdata::make(run_configs()), cfg) {
#if defined(__SANITIZE_THREAD__)
    BOOST_TEST_MESSAGE("skipped under ThreadSanitizer: it cannot start threads after a multi-threaded fork");
    return;
#endif
    // Fork only once every thread of the parent's instance has finished starting: a thread that
    // is still starting may hold an allocator lock at fork(), which the child then inherits
    // locked (glibc's malloc guards against that; GCC 12's ASan allocator does not). One worker,
    // and a call through each thread before forking, make that deterministic.
    instance_options o = options_for(cfg);
    o.pool.threads = 1;
    default_instance parent_inst(o);
    BOOST_TEST(parent_inst.call(sys::getpid()).result == ::getpid()); // the parent's page is warm
    BOOST_TEST(parent_inst.call(sys::make(nr::getppid)).result == ::getppid()); // the worker ran
    BOOST_TEST(parent_inst.call(sys::close(-1)).result == -EBADF);             // the loop ran
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
        int failures = 0;
        try {
            default_instance child(options_for(cfg));
            const completion_entry c = child.call(sys::getpid());
            if (c.result != ::getpid()) failures |= 1;
            if (c.result == parent) failures |= 2;
            if (child.page().pid() != ::getpid()) failures |= 4;
            rlimit rl{}, rd{};
            ::getrlimit(RLIMIT_NOFILE, &rd);
            if (child.call(sys::getrlimit(RLIMIT_NOFILE, &rl)).result != 0 || rl.rlim_cur != rd.rlim_cur) failures |= 8;
            // The new instance is fully usable: a queued getppid (Tier 2) names the parent.
            submit_entry e = sys::make(nr::getppid);
            e.corr_id = 7;
            if (child.submit(e)) failures |= 16;
            completion_entry out[4];
            std::size_t n = 0;
            for (int i = 0; i < 1000 && n == 0; ++i) {
                if (cfg.mode == dispatch_mode::inline_mode) {
                    child.run_once(false);
                    n = child.poll(out);
                    if (!n) ::usleep(1000);
                } else {
                    n = child.wait_completions(out, 10);
                }
            }
            if (n != 1 || out[0].corr_id != 7 || out[0].result != parent) failures |= 32;
        } catch (...) {
            failures |= 64;
        }
        ::_exit(failures);
    }
    int status = 0;
    BOOST_REQUIRE(::waitpid(pid, &status, 0) == pid);
    BOOST_REQUIRE(WIFEXITED(status));
    BOOST_TEST(WEXITSTATUS(status) == 0, "child failure bits " << WEXITSTATUS(status));
    BOOST_TEST(parent_inst.call(sys::getpid()).result == ::getpid()); // the parent is unaffected
}

// The parent's instance in a child created after it: the page refreshes (fork generation), so
// page().pid() is the child's pid, while call() refuses (the instance belongs to the parent).
BOOST_DATA_TEST_CASE(parents_page_in_forked_child, bdata::make(run_configs()), cfg) {
    harness h(cfg);
    BOOST_TEST(h.inst.page().pid() == ::getpid());
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
        int failures = 0;
        if (h.inst.page().pid() != ::getpid()) failures |= 1;
        if (h.inst.page().pid() == parent) failures |= 2;
        if (h.inst.page().ppid() != parent) failures |= 4;
        std::int64_t v = 0;
        if (!h.inst.page().answer(sys::getpid(), v) || v != ::getpid()) failures |= 8;
        const completion_entry c = h.inst.call(sys::getpid());
        if (c.error() != errc::forked_child) failures |= 16;
        ::_exit(failures);
    }
    int status = 0;
    BOOST_REQUIRE(::waitpid(pid, &status, 0) == pid);
    BOOST_REQUIRE(WIFEXITED(status));
    BOOST_TEST(WEXITSTATUS(status) == 0, "child failure bits " << WEXITSTATUS(status));
    // The parent's page still holds the parent's identity.
    BOOST_TEST(h.inst.page().pid() == ::getpid());
    BOOST_TEST(h.call(nr::getpid) == ::getpid());
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace ksvc::test::tier0
