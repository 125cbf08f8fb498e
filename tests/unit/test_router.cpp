// probe_router over injected capability snapshots: which tier every family lands in on the
// kernels ksvc cares about, and what happens without io_uring.
#include <boost/test/unit_test.hpp>

#include "support/kernels.hpp"

#include "support/env_guard.hpp"

#include <array>
#include <cstdlib>
#include <optional>
#include <ostream>
#include <string>

#include <ksvc/core/kernel.hpp>
#include <ksvc/core/syscalls.hpp>
#include <ksvc/module/routers/probe_router.hpp>
#include <ksvc/module/routers/route_table.hpp>

// Printable enums for Boost.Test messages (internal linkage: no clash with other suites).
namespace ksvc {
[[maybe_unused]] static std::ostream& operator<<(std::ostream& os, tier t) { return os << to_string(t); }
[[maybe_unused]] static std::ostream& operator<<(std::ostream& os, opcode o) {
    return o == opcode::none ? os << "none" : os << to_string(o);
}
} // namespace ksvc

namespace {

using ksvc::capabilities;
using ksvc::kernel_version;
using ksvc::opcode;
using ksvc::tier;
namespace nr = ksvc::syscalls::x86_64;

const auto& kernels = ksvc::test::snapshot_kernels; // one table for every suite

std::string name(std::uint32_t n) { return std::string(ksvc::syscalls::name_of(n)) + " (" + std::to_string(n) + ")"; }

//! Expects `n` on io_uring with `op` from kernel `since` on, and on the worker pool before.
void expect_tier1_from(std::uint32_t n, opcode op, kernel_version since) {
    for (kernel_version v : kernels) {
        const ksvc::probe_router r(capabilities::for_kernel(v));
        const ksvc::route_info ri = r.route(n);
        BOOST_TEST_CONTEXT(name(n) << " on " << v.to_string()) {
            if (v >= since) {
                BOOST_TEST(ri.tier == tier::io_uring);
                BOOST_TEST(ri.op == op);
            } else {
                BOOST_TEST(ri.tier == tier::worker_pool);
                BOOST_TEST(ri.op == opcode::none);
            }
            BOOST_TEST(ri.worker_safe);
        }
    }
    // The boundary itself: the release before `since` routes to the worker pool.
    kernel_version before = since;
    if (before.minor > 0) {
        --before.minor;
    } else {
        --before.major;
        before.minor = 19;
    }
    const ksvc::probe_router r(capabilities::for_kernel(before));
    BOOST_TEST(r.route(n).tier == tier::worker_pool, name(n) << " on " << before.to_string());
    const ksvc::probe_router at(capabilities::for_kernel(since));
    BOOST_TEST(at.route(n).tier == tier::io_uring, name(n) << " on " << since.to_string());
}

void expect_everywhere(std::uint32_t n, tier t) {
    for (kernel_version v : kernels) {
        const ksvc::probe_router r(capabilities::for_kernel(v));
        BOOST_TEST(r.route(n).tier == t, name(n) << " on " << v.to_string());
        BOOST_TEST(r.route(n).op == opcode::none, name(n));
    }
    capabilities off = capabilities::for_kernel({6, 18});
    off.disable(1, "test");
    const ksvc::probe_router r(off);
    BOOST_TEST(r.route(n).tier == t, name(n) << " without io_uring");
}

using ksvc::test::env_guard;

struct snapshot_before_env_changes {
    snapshot_before_env_changes() { (void)ksvc::current_capabilities(); }
};

std::size_t tier1_rows() {
    std::size_t n = 0;
    for (const auto& c : ksvc::routing::x86_64_classes)
        if (c.known && c.tier == tier::io_uring) ++n;
    return n;
}

//! Every Tier-1 call lands on the worker pool, the other tiers are untouched.
void expect_no_io_uring(const ksvc::probe_router& r) {
    const ksvc::probe_router full(capabilities::for_kernel({6, 18}));
    BOOST_TEST(r.count(tier::io_uring) == 0u);
    BOOST_TEST(r.count(tier::worker_pool) == full.count(tier::worker_pool) + full.count(tier::io_uring));
    BOOST_TEST(r.count(tier::shared_page) == full.count(tier::shared_page));
    BOOST_TEST(r.count(tier::legacy) == full.count(tier::legacy));
    for (const auto& s : ksvc::syscalls::native::names) {
        const auto cls = ksvc::routing::classify(s.nr);
        if (cls.tier != tier::io_uring) continue;
        BOOST_TEST(r.route(s.nr).tier == tier::worker_pool, name(s.nr));
        BOOST_TEST(r.route(s.nr).op == opcode::none, name(s.nr));
    }
    BOOST_TEST(r.route(nr::read).tier == tier::worker_pool);
    BOOST_TEST(r.route(nr::getpid).tier == tier::shared_page);
    BOOST_TEST(r.route(nr::fork).tier == tier::legacy);
}

} // namespace

BOOST_AUTO_TEST_SUITE(router, *boost::unit_test::fixture<snapshot_before_env_changes>())

BOOST_AUTO_TEST_CASE(bind_and_listen_from_6_11) {
    expect_tier1_from(nr::bind, opcode::bind, {6, 11});
    expect_tier1_from(nr::listen, opcode::listen, {6, 11});
}

BOOST_AUTO_TEST_CASE(pipe_from_6_16) {
    expect_tier1_from(nr::pipe2, opcode::pipe, {6, 16});
    expect_tier1_from(nr::pipe, opcode::pipe, {6, 16});
}

BOOST_AUTO_TEST_CASE(socket_from_5_19) { expect_tier1_from(nr::socket, opcode::socket, {5, 19}); }

BOOST_AUTO_TEST_CASE(ftruncate_from_6_9) { expect_tier1_from(nr::ftruncate, opcode::ftruncate, {6, 9}); }

BOOST_AUTO_TEST_CASE(open_read_write_from_5_6) {
    expect_tier1_from(nr::openat, opcode::openat, {5, 6});
    expect_tier1_from(nr::open, opcode::openat, {5, 6});
    expect_tier1_from(nr::read, opcode::read, {5, 6});
    expect_tier1_from(nr::write, opcode::write, {5, 6});
    expect_tier1_from(nr::pread64, opcode::read, {5, 6});
    expect_tier1_from(nr::pwrite64, opcode::write, {5, 6});
    expect_tier1_from(nr::close, opcode::close, {5, 6});
    expect_tier1_from(nr::statx, opcode::statx, {5, 6});
    expect_tier1_from(nr::sendto, opcode::send, {5, 6});
    expect_tier1_from(nr::recvfrom, opcode::recv, {5, 6});
}

BOOST_AUTO_TEST_CASE(rename_and_unlink_from_5_11) {
    for (auto n : {nr::rename, nr::renameat, nr::renameat2}) expect_tier1_from(n, opcode::renameat, {5, 11});
    for (auto n : {nr::unlink, nr::unlinkat, nr::rmdir}) expect_tier1_from(n, opcode::unlinkat, {5, 11});
    expect_tier1_from(nr::shutdown, opcode::shutdown, {5, 11});
}

BOOST_AUTO_TEST_CASE(mkdir_symlink_link_from_5_15) {
    for (auto n : {nr::mkdir, nr::mkdirat}) expect_tier1_from(n, opcode::mkdirat, {5, 15});
    for (auto n : {nr::symlink, nr::symlinkat}) expect_tier1_from(n, opcode::symlinkat, {5, 15});
    for (auto n : {nr::link, nr::linkat}) expect_tier1_from(n, opcode::linkat, {5, 15});
}

BOOST_AUTO_TEST_CASE(vectored_io_at_the_file_position_needs_rw_cur_pos) {
    // READV/WRITEV exist since 5.1, but readv/writev (offset -1: the file position) need
    // IORING_FEAT_RW_CUR_POS (5.6); before it they run on a worker. FSYNC stays on io_uring.
    for (kernel_version v : kernels) {
        const ksvc::probe_router r(capabilities::for_kernel(v));
        const tier expected = v >= kernel_version{5, 6} ? tier::io_uring : tier::worker_pool;
        BOOST_TEST(r.route(nr::readv).tier == expected, v.to_string());
        BOOST_TEST(r.route(nr::writev).tier == expected, v.to_string());
        BOOST_TEST(r.route(nr::preadv).tier == tier::io_uring, v.to_string()); // positional: fine from 5.1
        BOOST_TEST(r.route(nr::fsync).tier == tier::io_uring, v.to_string());
        BOOST_TEST(r.route(nr::fdatasync).op == opcode::fsync, v.to_string());
    }
}

BOOST_AUTO_TEST_CASE(kernel_5_1_has_io_uring_but_no_read) {
    const capabilities c = capabilities::for_kernel({5, 1});
    BOOST_REQUIRE(c.io_uring_available);
    const ksvc::probe_router r(c);
    BOOST_TEST(r.route(nr::read).tier == tier::worker_pool);
    BOOST_TEST(r.route(nr::write).tier == tier::worker_pool);
    BOOST_TEST(r.route(nr::openat).tier == tier::worker_pool);
    BOOST_TEST(r.route(nr::accept4).tier == tier::worker_pool); // ACCEPT is 5.5
    BOOST_TEST(r.route(nr::readv).tier == tier::worker_pool);   // no RW_CUR_POS before 5.6
    BOOST_TEST(r.route(nr::preadv).tier == tier::io_uring);
    BOOST_TEST(r.route(nr::sync_file_range).tier == tier::worker_pool); // 5.2
}

BOOST_AUTO_TEST_CASE(kernel_6_18_routes_every_tier1_row_to_io_uring) {
    const ksvc::probe_router r(capabilities::for_kernel({6, 18}));
    BOOST_TEST(r.count(tier::io_uring) == tier1_rows());
    for (const auto& s : ksvc::syscalls::native::names) {
        const auto cls = ksvc::routing::classify(s.nr);
        if (cls.tier != tier::io_uring) continue;
        BOOST_TEST(r.route(s.nr).tier == tier::io_uring, name(s.nr));
        BOOST_TEST(r.route(s.nr).op == cls.op, name(s.nr));
        BOOST_TEST(r.route(s.nr).op != opcode::none, name(s.nr));
    }
}

BOOST_AUTO_TEST_CASE(missing_single_opcode_falls_back_to_workers) {
    capabilities c = capabilities::for_kernel({6, 18});
    c.opcodes.reset(static_cast<std::size_t>(opcode::write));
    const ksvc::probe_router r(c);
    BOOST_TEST(r.route(nr::write).tier == tier::worker_pool);
    BOOST_TEST(r.route(nr::pwrite64).tier == tier::worker_pool);
    BOOST_TEST(r.route(nr::read).tier == tier::io_uring);
    BOOST_TEST(r.route(nr::writev).tier == tier::io_uring);
}

BOOST_AUTO_TEST_CASE(unavailable_io_uring_sends_tier1_to_workers) {
    capabilities c = capabilities::for_kernel({6, 18});
    c.disable(1, "disabled for the test");
    expect_no_io_uring(ksvc::probe_router(c));
    // A kernel before 5.1 the same way.
    expect_no_io_uring(ksvc::probe_router(capabilities::for_kernel({4, 19})));
}

BOOST_AUTO_TEST_CASE(ksvc_disable_io_uring_sends_tier1_to_workers) {
    env_guard k("KSVC_ASSUME_KERNEL", nullptr);
    env_guard d("KSVC_DISABLE_IO_URING", "1");
    const capabilities c = capabilities::for_kernel({6, 18}).with_environment();
    BOOST_REQUIRE(!c.io_uring_available);
    expect_no_io_uring(ksvc::probe_router(c));
}

BOOST_AUTO_TEST_CASE(ksvc_assume_kernel_routes_like_that_kernel) {
    env_guard d("KSVC_DISABLE_IO_URING", nullptr);
    env_guard k("KSVC_ASSUME_KERNEL", "6.1");
    const ksvc::probe_router r(capabilities::for_kernel({6, 18}).with_environment());
    BOOST_TEST(r.route(nr::bind).tier == tier::worker_pool);
    BOOST_TEST(r.route(nr::socket).tier == tier::io_uring);
    BOOST_TEST(r.route(nr::ftruncate).tier == tier::worker_pool);
}

BOOST_AUTO_TEST_CASE(legacy_on_every_kernel) {
    for (auto n : {nr::fork, nr::vfork, nr::execve, nr::execveat, nr::clone, nr::clone3, nr::exit, nr::exit_group,
                   nr::mmap, nr::munmap, nr::mprotect, nr::brk, nr::setuid, nr::setgid, nr::setresuid,
                   nr::rt_sigprocmask, nr::rt_sigaction, nr::gettid, nr::sched_setaffinity, nr::prctl,
                   nr::io_uring_setup, nr::io_uring_enter})
        expect_everywhere(n, tier::legacy);
}

BOOST_AUTO_TEST_CASE(shared_page_on_every_kernel) {
    for (auto n : {nr::getpid, nr::getuid, nr::geteuid, nr::getgid, nr::getegid, nr::getpgrp, nr::getpgid,
                   nr::getsid, nr::uname, nr::getrlimit, nr::gettimeofday, nr::time, nr::clock_gettime})
        expect_everywhere(n, tier::shared_page);
    const ksvc::probe_router r(capabilities::for_kernel({6, 18}));
    BOOST_TEST(r.route(nr::getpid).worker_safe);
    BOOST_TEST(!r.route(nr::clock_gettime).worker_safe); // thread CPU clocks: caller only
}

BOOST_AUTO_TEST_CASE(worker_pool_on_every_kernel) {
    for (auto n : {nr::dup, nr::dup2, nr::dup3, nr::fcntl, nr::lseek, nr::getdents64, nr::setsockopt, nr::getsockopt,
                   nr::ioctl, nr::stat, nr::fstat, nr::lstat, nr::newfstatat, nr::access, nr::getcwd, nr::umask,
                   nr::wait4, nr::getppid, nr::nanosleep, nr::eventfd2, nr::memfd_create, nr::getrandom})
        expect_everywhere(n, tier::worker_pool);
}

BOOST_AUTO_TEST_CASE(every_native_syscall_has_a_route) {
    for (kernel_version v : kernels) {
        BOOST_TEST_CONTEXT("kernel " << v.to_string()) {
            const ksvc::probe_router r(capabilities::for_kernel(v));
            BOOST_TEST(r.table_size() == static_cast<std::size_t>(ksvc::syscalls::native::table_size));
            std::size_t sum = 0;
            for (std::size_t t = 0; t < ksvc::tier_count; ++t) sum += r.count(static_cast<tier>(t));
            BOOST_TEST(sum == r.table_size());
            std::array<std::size_t, ksvc::tier_count> seen{};
            for (std::uint32_t n = 0; n < r.table_size(); ++n) ++seen[static_cast<std::size_t>(r.route(n).tier)];
            for (std::size_t t = 0; t < ksvc::tier_count; ++t) BOOST_TEST(seen[t] == r.count(static_cast<tier>(t)));
            for (const auto& s : ksvc::syscalls::native::names) {
                const auto cls = ksvc::routing::classify(s.nr);
                BOOST_TEST(cls.known, name(s.nr));
                const ksvc::route_info ri = r.route(s.nr);
                BOOST_TEST((ri.tier == tier::io_uring) == (ri.op != opcode::none), name(s.nr));
                if (cls.tier == tier::io_uring) {
                    BOOST_TEST((ri.tier == tier::io_uring || ri.tier == tier::worker_pool), name(s.nr));
                } else {
                    BOOST_TEST(ri.tier == cls.tier, name(s.nr));
                }
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(numbers_outside_the_table_are_legacy) {
    const ksvc::probe_router r(capabilities::for_kernel({6, 18}));
    for (std::uint32_t n : {400u, 335u, 423u, 451u, 5000u, 0xffffffffu}) {
        BOOST_TEST(!ksvc::syscalls::is_known(n), n);
        BOOST_TEST(r.route(n).tier == tier::legacy, n);
        BOOST_TEST(!r.route(n).worker_safe, n);
    }
}

BOOST_AUTO_TEST_SUITE_END()
