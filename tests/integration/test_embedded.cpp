// embedded_instance<Profile>: built for a known kernel, it routes with the compile-time table,
// sets its ring up with the features the profile fixes, serves real work, and refuses to start —
// naming what is missing — on a kernel that lacks what the profile promises.
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <system_error>

#include <ksvc/executor/sys.hpp>
#include <ksvc/module/embedded.hpp>

#include "support/block_io_uring.hpp"
#include "support/env_guard.hpp"
#include "support/fixtures.hpp"

namespace ksvc::test::embedded {

namespace nr = ksvc::syscalls::native;

template <class I>
void pipe_round_trip(I& inst) {
    int p[2];
    BOOST_REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    unique_fd rd(p[0]), wr(p[1]);
    const char msg[] = "embedded";
    BOOST_TEST(inst.call(sys::write(wr, msg, sizeof msg)).result == static_cast<long>(sizeof msg));
    char buf[sizeof msg] = {};
    BOOST_TEST(inst.call(sys::read(rd, buf, sizeof buf)).result == static_cast<long>(sizeof msg));
    BOOST_TEST(std::memcmp(buf, msg, sizeof msg) == 0);
}

BOOST_AUTO_TEST_SUITE(embedded_instance_suite)

BOOST_AUTO_TEST_CASE(a_6_1_profile_serves_with_its_own_routes_and_ring) {
    if (current_capabilities().version < kernel_version{6, 1}) return; // the profile needs 6.1
    for (const auto mode : {dispatch_mode::threaded, dispatch_mode::inline_mode}) {
        instance_options o;
        o.mode = mode;
        embedded_instance<linux_6_1> inst(o);
        BOOST_TEST(inst.caps().assumed); // the profile is the snapshot: nothing was probed
        BOOST_TEST(inst.caps().version.to_string() == "6.1.0");
        BOOST_TEST((inst.router().route(nr::bind).tier == tier::worker_pool)); // 6.1 has no IORING_OP_BIND
        BOOST_TEST((inst.router().route(nr::read) == static_router<linux_6_1>{}.route(nr::read)));
        BOOST_TEST((inst.backend().setup_flags() & (setup_flag::single_issuer | setup_flag::defer_taskrun)) ==
                   (setup_flag::single_issuer | setup_flag::defer_taskrun));
        pipe_round_trip(inst);
        // bind on the worker tier, as the profile routes it
        unique_fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        const std::uint64_t workers_before = inst.loop().executed(tier::worker_pool);
        BOOST_TEST(inst.call(sys::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a)).result == 0);
        BOOST_TEST(inst.loop().executed(tier::worker_pool) == workers_before + 1);
    }
}

BOOST_AUTO_TEST_CASE(a_5_10_profile_gets_the_plain_ring) {
    embedded_instance<linux_5_10> inst;
    BOOST_TEST((inst.backend().setup_flags() & (setup_flag::single_issuer | setup_flag::coop_taskrun)) == 0u);
    BOOST_TEST((inst.router().route(nr::socket).tier == tier::worker_pool)); // IORING_OP_SOCKET: 5.19
    pipe_round_trip(inst);
}

BOOST_AUTO_TEST_CASE(a_lesser_kernel_is_refused_with_what_it_lacks) {
    env_guard older("KSVC_ASSUME_KERNEL", "6.1"); // this kernel, narrowed to what 6.1 offers
    try {
        embedded_instance<linux_6_18> inst;
        BOOST_FAIL("a 6.18 profile started on a kernel narrowed to 6.1");
    } catch (const std::system_error& e) {
        BOOST_TEST(e.code() == make_error_code(errc::profile_mismatch));
        const std::string what = e.what();
        BOOST_TEST_MESSAGE(what);
        BOOST_TEST(what.find("kernel 6.1.0 lacks what the profile for 6.18 promises: opcodes ") != std::string::npos);
        for (const char* op : {"BIND", "LISTEN", "PIPE", "FTRUNCATE"}) BOOST_TEST(what.find(op) != std::string::npos, op);
    }
}

BOOST_AUTO_TEST_CASE(io_uring_forbidden_is_said_without_a_ring) {
    env_guard off("KSVC_DISABLE_IO_URING", "1");
    try {
        embedded_instance<linux_5_10> inst;
        BOOST_FAIL("started with io_uring disabled");
    } catch (const std::system_error& e) {
        BOOST_TEST(e.code() == make_error_code(errc::io_uring_unavailable));
        BOOST_TEST(std::string(e.what()).find("KSVC_DISABLE_IO_URING") != std::string::npos);
    }
}

// io_uring refused by a real seccomp filter (EPERM, as Docker >= 25 does), in a child: the kernel
// check's own setup (threaded) or the instance's ring (inline) fails, and the error says
// io_uring is unavailable and why — no descriptor left behind by the check's ring.
BOOST_AUTO_TEST_CASE(io_uring_refused_by_seccomp_is_said_in_both_modes) {
    for (const auto mode : {dispatch_mode::threaded, dispatch_mode::inline_mode}) {
        const pid_t pid = ::fork();
        BOOST_REQUIRE(pid >= 0);
        if (pid == 0) {
            if (block_io_uring() != 0) ::_exit(20);
            const int fds_before = ::fcntl(0, F_DUPFD_CLOEXEC, 0); // the lowest free descriptor
            ::close(fds_before);
            int code = 21;
            try {
                instance_options o;
                o.mode = mode;
                embedded_instance<linux_5_10> inst(o);
            } catch (const std::system_error& e) {
                const std::string what = e.what();
                if (mode == dispatch_mode::threaded)
                    code = e.code() == make_error_code(errc::io_uring_unavailable) &&
                                   what.find("io_uring_setup failed") != std::string::npos &&
                                   what.find("seccomp") != std::string::npos
                               ? 0
                               : 22;
                else // the instance's own ring: the setup names the errno
                    code = what.find("io_uring") != std::string::npos && e.code().value() == EPERM ? 0 : 23;
                if (code) std::fprintf(stderr, "mode %d: %s\n", static_cast<int>(mode), what.c_str());
            } catch (...) {
                code = 24;
            }
            const int fd_after = ::fcntl(0, F_DUPFD_CLOEXEC, 0);
            if (code == 0 && fd_after != fds_before) code = 25; // a descriptor leaked
            ::_exit(code);
        }
        int status = 0;
        BOOST_REQUIRE(::waitpid(pid, &status, 0) == pid);
        BOOST_REQUIRE(WIFEXITED(status));
        BOOST_TEST(WEXITSTATUS(status) == 0, "mode " << static_cast<int>(mode) << ": child exit " << WEXITSTATUS(status));
    }
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace ksvc::test::embedded
