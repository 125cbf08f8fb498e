// shared_page laws, over process_shared_page and the archetype:
// - answer(getpid) gives ::getpid() and counts one answer; the accessors match the live values;
// - whatever it answers, it answers as syscall(2) would, output buffers included;
// - an entry the page cannot answer returns false and counts nothing;
// - observe() of a call that changes a value (setrlimit) refreshes it; refresh() re-reads all;
// - answer() is safe from several threads at once;
// - in a forked child the page answers for the child.
#include <boost/mpl/list.hpp>
#include <boost/test/unit_test.hpp>

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ksvc/core/concepts/shared_page.hpp>
#include <ksvc/executor/sys.hpp>
#include <ksvc/module/shared_page/process_shared_page.hpp>

#include "support/archetypes/archetype_shared_page.hpp"

namespace {
using namespace ksvc;
namespace nr = syscalls::x86_64;

using pages = boost::mpl::list<process_shared_page, test::archetype_shared_page>;

rlimit nofile() {
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    return rl;
}

} // namespace

BOOST_AUTO_TEST_SUITE(laws_shared_page)

BOOST_AUTO_TEST_CASE_TEMPLATE(answers_getpid_like_the_kernel, SP, pages) {
    const SP page;
    const std::uint64_t before = page.answered();
    std::int64_t r = -1;
    BOOST_TEST_REQUIRE(page.answer(sys::getpid(), r));
    BOOST_TEST(r == ::getpid());
    BOOST_TEST(page.answered() == before + 1);
    BOOST_TEST_REQUIRE(page.answer(sys::getuid(), r));
    BOOST_TEST(r == static_cast<std::int64_t>(::getuid()));
    BOOST_TEST(page.answered() == before + 2);
}

// Whatever the page chooses to answer, it answers exactly as syscall(2) does: the same result
// and the same bytes in the output buffer.
BOOST_AUTO_TEST_CASE_TEMPLATE(an_answer_is_what_the_syscall_returns, SP, pages) {
    const SP page;
    struct probe {
        std::uint32_t nr;
        std::int64_t arg0;
        bool out; // args[1] (getrlimit) or args[0] (uname) points at an output buffer
    };
    const std::int64_t self = ::getpid();
    const probe probes[] = {
        {nr::getpid, 0, false}, {nr::getuid, 0, false},     {nr::geteuid, 0, false},
        {nr::getgid, 0, false}, {nr::getegid, 0, false},    {nr::getpgrp, 0, false},
        {nr::getpgid, 0, false}, {nr::getpgid, self, false}, {nr::getsid, 0, false},
        {nr::getsid, self, false}, {nr::getrlimit, RLIMIT_NOFILE, true}, {nr::uname, 0, true},
    };
    std::size_t answered = 0;
    for (const probe& p : probes) {
        std::array<unsigned char, 512> mine{}, kernels{}; // large enough for struct utsname
        auto entry = [&](void* buf) {
            if (p.nr == nr::uname) return sys::make(p.nr, buf);
            return p.out ? sys::make(p.nr, p.arg0, buf) : sys::make(p.nr, p.arg0);
        };
        std::int64_t r = 0;
        if (!page.answer(entry(mine.data()), r)) continue;
        ++answered;
        const submit_entry k = entry(kernels.data());
        const long expect = ::syscall(static_cast<long>(k.nr), k.args[0], k.args[1]);
        BOOST_TEST(r == (expect == -1 ? -static_cast<std::int64_t>(errno) : expect), "nr " << p.nr);
        BOOST_TEST((mine == kernels), "nr " << p.nr << " filled its buffer differently");
    }
    BOOST_TEST(answered > 0u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(accessors_match_the_process, SP, pages) {
    const SP page;
    BOOST_TEST(page.pid() == ::getpid());
    BOOST_TEST(page.ppid() == ::getppid());
    BOOST_TEST(page.pgid() == ::getpgrp());
    BOOST_TEST(page.sid() == ::getsid(0));
    BOOST_TEST(page.uid() == static_cast<long>(::getuid()));
    BOOST_TEST(page.gid() == static_cast<long>(::getgid()));
    BOOST_TEST(page.euid() == static_cast<long>(::geteuid()));
    BOOST_TEST(page.egid() == static_cast<long>(::getegid()));
    BOOST_TEST(page.rlimit_nofile() == static_cast<std::uint64_t>(nofile().rlim_cur));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(unanswerable_entries_return_false, SP, pages) {
    const SP page;
    const std::uint64_t before = page.answered();
    char buf[4];
    const std::array<submit_entry, 4> cannot = {
        sys::read(0, buf, sizeof buf),                                 // real I/O
        sys::make(nr::fork),                                            // process-altering
        sys::make(100000u),                                             // not a syscall
        sys::make(nr::getpgid, ::getppid() == 1 ? 2 : ::getppid()), // another process
    };
    for (const submit_entry& e : cannot) {
        std::int64_t r = 0;
        BOOST_TEST(!page.answer(e, r), "nr " << e.nr);
    }
    BOOST_TEST(page.answered() == before);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(observe_and_refresh_pick_up_changes, SP, pages) {
    SP page;
    const rlimit original = nofile();
    BOOST_TEST(page.rlimit_nofile() == static_cast<std::uint64_t>(original.rlim_cur));
    page.observe(nr::read); // unrelated: changes nothing
    BOOST_TEST(page.rlimit_nofile() == static_cast<std::uint64_t>(original.rlim_cur));
    if (original.rlim_cur == RLIM_INFINITY || original.rlim_cur < 64) {
        BOOST_TEST_MESSAGE("RLIMIT_NOFILE soft limit " << original.rlim_cur << ": not lowering it");
        return;
    }
    rlimit lower = original;
    lower.rlim_cur = original.rlim_cur - 1;
    BOOST_REQUIRE(::setrlimit(RLIMIT_NOFILE, &lower) == 0);
    page.observe(nr::setrlimit); // what the dispatcher does after a completed setrlimit
    const std::uint64_t observed = page.rlimit_nofile();
    BOOST_REQUIRE(::setrlimit(RLIMIT_NOFILE, &original) == 0);
    BOOST_TEST(observed == static_cast<std::uint64_t>(lower.rlim_cur));
    page.refresh();
    BOOST_TEST(page.rlimit_nofile() == static_cast<std::uint64_t>(original.rlim_cur));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(answer_is_safe_from_several_threads, SP, pages) {
    const SP page;
    const std::uint64_t before = page.answered();
    constexpr int per_thread = 2000;
    std::array<int, 3> right{};
    std::vector<std::thread> ts;
    for (std::size_t t = 0; t < right.size(); ++t)
        ts.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i) {
                std::int64_t r = 0;
                right[t] += page.answer(sys::getpid(), r) && r == ::getpid();
            }
        });
    for (auto& t : ts) t.join();
    for (int n : right) BOOST_TEST(n == per_thread);
    BOOST_TEST(page.answered() == before + right.size() * per_thread);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(a_forked_child_gets_its_own_answers, SP, pages) {
    const SP page;
    std::int64_t r = 0;
    BOOST_TEST(page.answer(sys::getpid(), r)); // warm: the parent's values are cached
    const pid_t child = ::fork();
    BOOST_REQUIRE(child >= 0);
    if (child == 0) {
        std::int64_t mine = 0;
        const bool ok = page.answer(sys::getpid(), mine) && mine == ::getpid() && page.pid() == ::getpid() &&
                        page.ppid() == ::getppid();
        ::_exit(ok ? 0 : 1);
    }
    int status = 0;
    BOOST_REQUIRE(::waitpid(child, &status, 0) == child);
    BOOST_TEST(WIFEXITED(status));
    BOOST_TEST(WEXITSTATUS(status) == 0, "the child saw its parent's pid");
}

BOOST_AUTO_TEST_SUITE_END()
