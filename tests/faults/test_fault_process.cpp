// Faults at the process level: an instance used in a forked child, a ring setup the kernel
// refuses (ENOMEM under RLIMIT_MEMLOCK), and an io_uring the snapshot says is unavailable.
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <liburing.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>
#include <thread>

#include <ksvc/executor/sys.hpp>
#include <ksvc/module/presets.hpp>

#include "support/fixtures.hpp"

namespace ksvc::test::faults_process {

namespace bdata = boost::unit_test::data;
namespace nr = ksvc::syscalls::native;

//! Waits for `pid` and returns its exit status (or 128 + signal).
inline int wait_child(pid_t pid) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

inline std::pair<unique_fd, unique_fd> make_pipe() {
    int p[2];
    BOOST_REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    return {unique_fd(p[0]), unique_fd(p[1])};
}

//! Proves the parent's instance is intact: a Tier-1 read, a Tier-2 call, a queued round trip.
inline void expect_parent_instance_works(default_instance& inst) {
    auto [r, w] = make_pipe();
    BOOST_REQUIRE(::write(w, "after-fork", 10) == 10);
    char buf[16] = {};
    const completion_entry c = inst.call(sys::read(r, buf, sizeof buf));
    BOOST_TEST(c.result == 10, c);
    BOOST_TEST(std::string(buf, 10) == "after-fork");
    BOOST_TEST(inst.call(sys::fcntl(r, F_GETFD)).result == FD_CLOEXEC);
    BOOST_TEST(inst.call(sys::getpid()).result == ::getpid());
    submit_entry e = sys::write(w, "q", 1);
    e.corr_id = 77;
    BOOST_REQUIRE(!inst.submit(e));
    completion_entry out[4];
    std::size_t n = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (n == 0 && std::chrono::steady_clock::now() < deadline) {
        n = inst.wait_completions(out, 10);
    }
    BOOST_REQUIRE(n == 1u);
    BOOST_TEST(out[0].corr_id == 77u);
    BOOST_TEST(out[0].result == 1);
}

BOOST_AUTO_TEST_SUITE(faults_process)

BOOST_DATA_TEST_CASE(instance_used_in_forked_child, bdata::make(backend_configs()), cfg) {
    default_instance inst(options_for(cfg));
    BOOST_TEST(inst.call(sys::getpid()).result == ::getpid()); // warm: the loop has run
    auto [r, w] = make_pipe();
    const pid_t pid = ::fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
        int bad = 0;
        char buf[8];
        const completion_entry c = inst.call(sys::read(r, buf, sizeof buf));
        if (c.error() != errc::forked_child) bad |= 1;
        if (inst.call(sys::getpid()).error() != errc::forked_child) bad |= 2;
        if (inst.call(sys::fcntl(r, F_GETFL)).error() != errc::forked_child) bad |= 4;
        submit_entry e = sys::read(r, buf, sizeof buf);
        e.corr_id = 5;
        if (inst.submit(e) != errc::forked_child) bad |= 8;
        completion_entry out[4];
        if (inst.poll(out) != 0) bad |= 16;
        if (inst.run_once(false) != 0) bad |= 32;
        if (inst.wait_completions(out, 0) != 0) bad |= 64;
        ::_exit(bad);
    }
    const int st = wait_child(pid);
    BOOST_TEST(st == 0, "child status " << st << " (failure bits)");
    expect_parent_instance_works(inst);
}

BOOST_DATA_TEST_CASE(child_destroying_inherited_instance_leaves_parent_intact, bdata::make(backend_configs()), cfg) {
    // The parent has a read in flight on the shared ring when it forks; the child destroys its
    // copy of the instance. Nothing may be cancelled or torn down on the parent's ring.
    auto inst = std::make_unique<default_instance>(options_for(cfg));
    auto [r, w] = make_pipe();
    char buf[16] = {};
    submit_entry e = sys::read(r, buf, sizeof buf);
    e.corr_id = 9;
    BOOST_REQUIRE(!inst->submit(e));
    if (cfg.mode == dispatch_mode::inline_mode) inst->run_once(false); // now in the kernel
    else std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const pid_t pid = ::fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
        inst.reset(); // ~instance in the child: must only drop this process's mappings
        ::_exit(0);
    }
    BOOST_TEST(wait_child(pid) == 0);
    // The in-flight read is still live in the parent: feed it.
    BOOST_REQUIRE(::write(w, "still-here", 10) == 10);
    completion_entry out[4];
    std::size_t n = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (n == 0 && std::chrono::steady_clock::now() < deadline) {
        n = inst->wait_completions(out, 10);
    }
    BOOST_REQUIRE(n == 1u);
    BOOST_TEST(out[0].corr_id == 9u);
    BOOST_TEST(out[0].result == 10, out[0]);
    BOOST_TEST(std::string(buf, 10) == "still-here");
    expect_parent_instance_works(*inst);
}

// Exit codes of the ENOMEM child.
enum : int { enomem_ok = 0, enomem_skip_rlimit = 77, enomem_not_charged = 78, enomem_no_throw = 10,
             enomem_wrong_code = 11, enomem_message = 12, enomem_wrong_exception = 13, enomem_setuid = 14 };

BOOST_AUTO_TEST_CASE(ring_setup_enomem_names_the_call_and_rlimit_memlock) {
    // The child inherits the parent's cached snapshot (io_uring available), so it is the ring
    // setup in the instance's constructor that meets ENOMEM.
    BOOST_REQUIRE(current_capabilities().io_uring_available);
    const pid_t pid = ::fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
        rlimit zero{0, 0};
        if (::setrlimit(RLIMIT_MEMLOCK, &zero) != 0) ::_exit(enomem_skip_rlimit);
        // Root has CAP_IPC_LOCK, which lifts the limit: drop to nobody first.
        if (::geteuid() == 0 && ::setuid(65534) != 0) ::_exit(enomem_setuid);
        // Does this kernel charge ring memory against RLIMIT_MEMLOCK at all? (5.12 .. 6.x moved
        // ring memory to memcg; newer kernels charge it again.) Ask it with a raw ring first.
        io_uring_params p{};
        const int fd = static_cast<int>(::syscall(__NR_io_uring_setup, 256, &p));
        if (fd >= 0) {
            ::close(fd);
            ::_exit(enomem_not_charged);
        }
        try {
            default_instance inst;
            ::_exit(enomem_no_throw);
        } catch (const std::system_error& e) {
            const std::string what = e.what();
            ::fprintf(stderr, "child: %s\n", what.c_str());
            if (e.code() != std::error_code(ENOMEM, std::system_category())) ::_exit(enomem_wrong_code);
            if (what.find("io_uring_queue_init_params") == std::string::npos ||
                what.find("RLIMIT_MEMLOCK") == std::string::npos)
                ::_exit(enomem_message);
            ::_exit(enomem_ok);
        } catch (...) {
            ::_exit(enomem_wrong_exception);
        }
    }
    const int st = wait_child(pid);
    if (st == enomem_skip_rlimit) {
        BOOST_TEST_MESSAGE("skipped: RLIMIT_MEMLOCK cannot be lowered here");
        return;
    }
    if (st == enomem_not_charged) {
        BOOST_TEST_MESSAGE("skipped: this kernel does not charge io_uring rings against RLIMIT_MEMLOCK");
        return;
    }
    BOOST_TEST(st == static_cast<int>(enomem_ok),
               "child status " << st << " (10 no throw, 11 wrong code, 12 message, 13 wrong exception, 14 setuid)");
}

namespace {
std::vector<std::string> logged;
void keep_line(std::string_view line) noexcept { logged.emplace_back(line); }
} // namespace

// An instance whose backend is io_uring alone refuses to start without it; default_instance
// serves through the epoll backend instead and says why in one log line.
BOOST_AUTO_TEST_CASE(unavailable_io_uring_is_refused_or_falls_back_at_construction) {
    using ring_only_instance = instance<probe_router, basic_io_uring, fixed_pool, eventfd_notifier, heap_buffers>;
    capabilities caps = current_capabilities();
    caps.disable(EPERM, "io_uring disabled for this test (kernel.io_uring_disabled=2)");
    BOOST_REQUIRE(!caps.io_uring_available);
    for (auto mode : {dispatch_mode::threaded, dispatch_mode::inline_mode}) {
        instance_options o;
        o.mode = mode;
        o.caps = &caps;
        o.ring.log = &keep_line;
        bool thrown = false;
        try {
            ring_only_instance inst(o);
        } catch (const std::system_error& e) {
            thrown = true;
            BOOST_TEST((e.code() == errc::io_uring_unavailable), e.code().message());
            BOOST_TEST(std::string(e.what()).find("io_uring_disabled") != std::string::npos, e.what());
        }
        BOOST_TEST(thrown);

        logged.clear();
        default_instance inst(o);
        BOOST_TEST(std::string(inst.backend().name()) == "epoll");
        BOOST_REQUIRE(logged.size() == 1u);
        BOOST_TEST(logged[0].find("epoll backend") != std::string::npos, logged[0]);
        BOOST_TEST(logged[0].find("io_uring_disabled=2") != std::string::npos, logged[0]);
        BOOST_TEST(inst.features().notes.find("io_uring_disabled=2") != std::string::npos, inst.features().notes);
        BOOST_TEST(inst.features().setup_flags == 0u);
        BOOST_TEST(inst.features().fixed_files == 0u);
        BOOST_TEST(!inst.features().restricted);
        int p[2];
        const completion_entry c = inst.call(sys::pipe2(p, O_CLOEXEC));
        BOOST_REQUIRE(c.result == 0);
        BOOST_TEST(inst.call(sys::write(p[1], "ok", 2)).result == 2);
        char got[2] = {};
        BOOST_TEST(inst.call(sys::read(p[0], got, 2)).result == 2);
        BOOST_TEST(std::string_view(got, 2) == "ok");
        BOOST_TEST(inst.call(sys::close(p[0])).result == 0);
        BOOST_TEST(inst.call(sys::close(p[1])).result == 0);
    }
    // A bad ring size is refused clearly too.
    instance_options o;
    o.ring.entries = 0;
    BOOST_CHECK_EXCEPTION(default_instance{o}, std::system_error,
                          [](const std::system_error& e) { return e.code() == errc::invalid_argument; });
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace ksvc::test::faults_process
