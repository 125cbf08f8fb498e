// Tier 3: process-altering calls are refused with a clear error and never run; numbers that are
// not syscalls are reported as unknown. Both through call() and through submit().
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <ksvc/executor/sys.hpp>
#include <ksvc/module/presets.hpp>

#include "support/fixtures.hpp"

namespace ksvc::test::tier3 {

namespace bdata = boost::unit_test::data;
namespace nr = ksvc::syscalls::native;

struct refused_case {
    const char* what;
    submit_entry e;
};

inline char* const empty_argv[] = {nullptr};

//! Entries that would alter the process if anything ran them. Arguments are real, so a
//! leak would show (a child, a mapping, a changed uid or mask, or the test process exiting).
inline std::vector<refused_case> refused_cases() {
    static const char* path = "/bin/false";
    static sigset_t all;
    sigfillset(&all);
    return {
        {"fork", sys::make(nr::fork)},
        {"vfork", sys::make(nr::vfork)},
        {"clone", sys::make(nr::clone, SIGCHLD, 0, nullptr, nullptr, 0)},
        {"execve", sys::make(nr::execve, path, empty_argv, empty_argv)},
        {"mmap", sys::make(nr::mmap, nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)},
        {"munmap", sys::make(nr::munmap, nullptr, 4096)},
        {"setuid", sys::make(nr::setuid, 65534)},
        {"rt_sigprocmask", sys::make(nr::rt_sigprocmask, SIG_BLOCK, &all, nullptr, sizeof(std::uint64_t))},
        {"exit_group", sys::make(nr::exit_group, 3)},
        {"gettid", sys::make(nr::gettid)},
        {"sched_setaffinity", sys::make(nr::sched_setaffinity, 0, 0, nullptr)},
    };
}

inline bool mentions_tier3(const std::string& msg) {
    std::string m = msg;
    std::transform(m.begin(), m.end(), m.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return m.find("tier-3") != std::string::npos || m.find("tier 3") != std::string::npos;
}

//! Submits `e` with `corr` and waits for its completion (bounded).
inline completion_entry submit_and_wait(default_instance& inst, const submit_entry& in,
                                        std::uint64_t corr) {
    submit_entry e = in;
    e.corr_id = corr;
    const std::error_code ec = inst.submit(e);
    BOOST_REQUIRE_MESSAGE(!ec, "submit: " << ec.message());
    completion_entry out[8];
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
        std::size_t n = inst.wait_completions(out, 10);
        for (std::size_t i = 0; i < n; ++i) {
            BOOST_TEST(out[i].corr_id == corr);
            if (out[i].corr_id == corr) return out[i];
        }
    }
    BOOST_FAIL("no completion for corr_id " << corr);
    return {};
}

//! What would show that a refused call ran anyway.
struct process_state {
    uid_t uid = ::getuid();
    sigset_t mask{};
    process_state() { ::pthread_sigmask(SIG_SETMASK, nullptr, &mask); }
};

inline void expect_unchanged(const process_state& before) {
    BOOST_TEST(::getuid() == before.uid);
    sigset_t now;
    ::pthread_sigmask(SIG_SETMASK, nullptr, &now);
    BOOST_TEST(sigismember(&now, SIGTERM) == sigismember(&before.mask, SIGTERM));
    BOOST_TEST(sigismember(&now, SIGUSR1) == sigismember(&before.mask, SIGUSR1));
    // No child was created.
    int status = 0;
    BOOST_TEST(::waitpid(-1, &status, WNOHANG) == -1);
    BOOST_TEST(errno == ECHILD);
}

BOOST_AUTO_TEST_SUITE(tier3_refusal)

BOOST_DATA_TEST_CASE(refused_through_call, bdata::make(run_configs()), cfg) {
    default_instance inst(options_for(cfg));
    const process_state before;
    for (const auto& rc : refused_cases()) {
        BOOST_TEST_CONTEXT(rc.what) {
            BOOST_TEST((inst.router().route(rc.e.nr).tier == tier::legacy));
            const completion_entry c = inst.call(rc.e);
            BOOST_TEST(!c.ok());
            BOOST_TEST((c.flags & completion_flags::ksvc_error) != 0u);
            BOOST_TEST(c.nr == rc.e.nr);
            BOOST_TEST((c.error() == errc::refused), c);
            BOOST_TEST(c.error().category().name() == std::string("ksvc"));
            BOOST_TEST(mentions_tier3(c.error().message()), c.error().message());
        }
    }
    expect_unchanged(before);
    // The instance keeps working after refusals.
    BOOST_TEST(inst.call(sys::getpid()).result == ::getpid());
    BOOST_TEST(inst.call(sys::fcntl(0, F_GETFD)).result == ::fcntl(0, F_GETFD));
}

BOOST_DATA_TEST_CASE(refused_through_submit, bdata::make(run_configs()), cfg) {
    default_instance inst(options_for(cfg));
    const process_state before;
    std::uint64_t corr = 100;
    for (const auto& rc : refused_cases()) {
        BOOST_TEST_CONTEXT(rc.what) {
            submit_entry e = rc.e;
            e.flags = 0xabc00000u; // user bits are echoed
            const completion_entry c = submit_and_wait(inst, e, ++corr);
            BOOST_TEST((c.error() == errc::refused), c);
            BOOST_TEST(c.nr == rc.e.nr);
            BOOST_TEST(c.entry_flags == 0xabc00000u);
            BOOST_TEST(mentions_tier3(c.error().message()), c.error().message());
        }
    }
    expect_unchanged(before);
    BOOST_TEST(inst.loop().accepted() == inst.loop().delivered());
}

BOOST_DATA_TEST_CASE(unknown_syscall_numbers, bdata::make(run_configs()), cfg) {
    default_instance inst(options_for(cfg));
    // 400 is in x86_64's gap (335..423), 5000 is past the table, 0xffffffff is absurd.
    std::uint64_t corr = 500;
    for (std::uint32_t n : {400u, 335u, 423u, 451u, 5000u, 0xffffffffu}) {
        BOOST_TEST_CONTEXT("nr " << n) {
            BOOST_TEST(!syscalls::is_known(n));
            const completion_entry c = inst.call(sys::make(n, 1, 2, 3));
            BOOST_TEST((c.error() == errc::unknown_syscall), c);
            BOOST_TEST(c.nr == n);
            const completion_entry q = submit_and_wait(inst, sys::make(n, 1, 2, 3), ++corr);
            BOOST_TEST((q.error() == errc::unknown_syscall), q);
            BOOST_TEST(q.nr == n);
            BOOST_TEST(!q.error().message().empty());
        }
    }
}

BOOST_DATA_TEST_CASE(refusals_mixed_with_work_nothing_lost, bdata::make(run_configs()), cfg) {
    default_instance inst(options_for(cfg));
    const uid_t uid = ::getuid();
    // A batch mixing every tier: each entry gets exactly one completion, refusals included.
    std::vector<submit_entry> batch;
    for (int i = 0; i < 64; ++i) {
        submit_entry e;
        switch (i % 4) {
        case 0: e = sys::getpid(); break;
        case 1: e = sys::fcntl(0, F_GETFD); break;
        case 2: e = sys::make(nr::setuid, 65534); break;
        default: e = sys::make(5000); break;
        }
        e.corr_id = static_cast<std::uint64_t>(i) + 1;
        batch.push_back(e);
    }
    std::vector<int> seen(batch.size() + 1, 0);
    std::size_t next = 0, done = 0;
    completion_entry out[16];
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (done < batch.size() && std::chrono::steady_clock::now() < deadline) {
        while (next < batch.size() && !inst.submit(batch[next])) ++next;
        std::size_t n = inst.wait_completions(out, 10);
        for (std::size_t i = 0; i < n; ++i) {
            const auto id = out[i].corr_id;
            BOOST_REQUIRE(id >= 1);
            BOOST_REQUIRE(id <= batch.size());
            ++seen[id];
            ++done;
            switch ((id - 1) % 4) {
            case 0: BOOST_TEST(out[i].result == ::getpid()); break;
            case 1: BOOST_TEST(out[i].result == ::fcntl(0, F_GETFD)); break;
            case 2: BOOST_TEST((out[i].error() == errc::refused), out[i]); break;
            default: BOOST_TEST((out[i].error() == errc::unknown_syscall), out[i]); break;
            }
        }
    }
    BOOST_TEST(done == batch.size());
    for (std::size_t i = 1; i <= batch.size(); ++i) BOOST_TEST(seen[i] == 1, "corr " << i);
    BOOST_TEST(::getuid() == uid);
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace ksvc::test::tier3
