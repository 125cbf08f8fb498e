// The capability snapshot: version-derived models (for_kernel), narrowing (assume), the
// environment overrides, and live detection on this machine.
#include <boost/test/unit_test.hpp>

#include "support/env_guard.hpp"

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>

#include <sys/utsname.h>

#include <ksvc/core/kernel.hpp>
#include <ksvc/module/capabilities.hpp>

namespace {

using ksvc::capabilities;
using ksvc::kernel_version;
using ksvc::opcode;
namespace sf = ksvc::setup_flag;
namespace rf = ksvc::ring_feature;

//! Sets an environment variable for one scope and restores the previous value.
using ksvc::test::env_guard;

// The process-wide snapshot is cached on first use: compute it before any test here touches the
// environment, whichever order the suites run in.
struct snapshot_before_env_changes {
    snapshot_before_env_changes() { (void)ksvc::current_capabilities(); }
};

std::size_t table_count(kernel_version v) {
    std::size_t n = 0;
    for (const auto& o : ksvc::opcode_table)
        if (o.since <= v) ++n;
    return n;
}

bool is_subset(const std::bitset<256>& a, const std::bitset<256>& b) { return (a & ~b).none(); }

//! A probed-looking snapshot of a 6.18 kernel with every opcode, flag and feature ksvc knows.
capabilities full_618() {
    capabilities c = capabilities::for_kernel({6, 18});
    c.assumed = false;
    return c;
}

} // namespace

BOOST_AUTO_TEST_SUITE(capabilities_snapshot, *boost::unit_test::fixture<snapshot_before_env_changes>())

BOOST_AUTO_TEST_CASE(for_kernel_5_1) {
    const capabilities c = capabilities::for_kernel({5, 1});
    BOOST_TEST(c.io_uring_available);
    BOOST_TEST(c.assumed);
    BOOST_TEST((c.version == kernel_version{5, 1}));
    BOOST_TEST(c.opcodes.count() == 8u); // NOP … POLL_REMOVE
    for (auto op : {opcode::nop, opcode::readv, opcode::writev, opcode::fsync, opcode::read_fixed,
                    opcode::write_fixed, opcode::poll_add, opcode::poll_remove})
        BOOST_TEST(c.has(op), ksvc::to_string(op));
    for (auto op : {opcode::sync_file_range, opcode::read, opcode::write, opcode::openat, opcode::accept,
                    opcode::socket})
        BOOST_TEST(!c.has(op), ksvc::to_string(op));
    BOOST_TEST(c.setup_flags == (sf::iopoll | sf::sqpoll | sf::sq_aff));
    BOOST_TEST(c.features == 0u); // SINGLE_MMAP is 5.4
    BOOST_TEST(!c.has(opcode::none));
}

BOOST_AUTO_TEST_CASE(for_kernel_5_19) {
    const capabilities c = capabilities::for_kernel({5, 19});
    BOOST_TEST(c.io_uring_available);
    BOOST_TEST(c.opcodes.count() == table_count({5, 19}));
    BOOST_TEST(c.opcodes.count() == 47u); // NOP … URING_CMD
    BOOST_TEST(c.has(opcode::socket));
    BOOST_TEST(c.has(opcode::uring_cmd));
    BOOST_TEST(c.has(opcode::msg_ring));
    BOOST_TEST(c.has(opcode::mkdirat));
    BOOST_TEST(!c.has(opcode::send_zc));
    BOOST_TEST(!c.has(opcode::bind));
    BOOST_TEST(c.has_setup_flag(sf::coop_taskrun | sf::taskrun_flag | sf::sqe128 | sf::cqe32 | sf::submit_all));
    BOOST_TEST(!c.has_setup_flag(sf::single_issuer));
    BOOST_TEST(!c.has_setup_flag(sf::defer_taskrun));
    BOOST_TEST(c.has_feature(rf::cqe_skip | rf::linked_file | rf::nodrop | rf::ext_arg));
    BOOST_TEST(!c.has_feature(rf::reg_reg_ring));
}

BOOST_AUTO_TEST_CASE(for_kernel_6_1) {
    const capabilities c = capabilities::for_kernel({6, 1});
    BOOST_TEST(c.opcodes.count() == 49u); // NOP … SENDMSG_ZC: exactly liburing 2.3's set
    BOOST_TEST(c.has(opcode::send_zc));
    BOOST_TEST(c.has(opcode::sendmsg_zc));
    BOOST_TEST(!c.has(opcode::read_multishot));
    BOOST_TEST(!c.has(opcode::ftruncate));
    BOOST_TEST(c.has_setup_flag(sf::single_issuer | sf::defer_taskrun));
    BOOST_TEST(!c.has_setup_flag(sf::no_mmap));
    BOOST_TEST(!c.has_feature(rf::reg_reg_ring));
}

BOOST_AUTO_TEST_CASE(for_kernel_6_11) {
    const capabilities c = capabilities::for_kernel({6, 11});
    BOOST_TEST(c.opcodes.count() == 58u); // … LISTEN
    BOOST_TEST(c.has(opcode::bind));
    BOOST_TEST(c.has(opcode::listen));
    BOOST_TEST(c.has(opcode::ftruncate));
    BOOST_TEST(c.has(opcode::futex_waitv));
    BOOST_TEST(!c.has(opcode::recv_zc));
    BOOST_TEST(!c.has(opcode::pipe));
    BOOST_TEST(c.has_setup_flag(sf::no_sqarray | sf::no_mmap | sf::registered_fd_only));
    BOOST_TEST(c.has_feature(rf::reg_reg_ring));
    // 6.10 is the last release without BIND/LISTEN.
    const capabilities before = capabilities::for_kernel({6, 10});
    BOOST_TEST(!before.has(opcode::bind));
    BOOST_TEST(!before.has(opcode::listen));
}

BOOST_AUTO_TEST_CASE(for_kernel_6_18) {
    const capabilities c = capabilities::for_kernel({6, 18});
    BOOST_TEST(c.opcodes.count() == ksvc::opcode_count);
    for (const auto& o : ksvc::opcode_table) BOOST_TEST(c.has(o.op), o.name);
    std::uint32_t all_flags = 0, all_features = 0;
    for (const auto& f : sf::table) all_flags |= f.bit;
    for (const auto& f : rf::table) all_features |= f.bit;
    BOOST_TEST(c.setup_flags == all_flags);
    BOOST_TEST(c.features == all_features);
    BOOST_TEST(c.io_uring_disabled_sysctl == 0);
}

BOOST_AUTO_TEST_CASE(for_kernel_before_5_1_has_no_io_uring) {
    const capabilities c = capabilities::for_kernel({5, 0});
    BOOST_TEST(!c.io_uring_available);
    BOOST_TEST(c.unavailable_errno == ENOSYS);
    BOOST_TEST(c.unavailable_reason.find("5.1") != std::string::npos, c.unavailable_reason);
    BOOST_TEST(c.opcodes.none());
    BOOST_TEST(!c.has(opcode::nop));
    BOOST_TEST(!c.has_setup_flag(0));
}

BOOST_AUTO_TEST_CASE(every_version_counts_what_the_table_dates) {
    for (kernel_version v : {kernel_version{5, 1}, kernel_version{5, 6}, kernel_version{5, 11}, kernel_version{5, 15},
                             kernel_version{5, 19}, kernel_version{6, 1}, kernel_version{6, 9}, kernel_version{6, 11},
                             kernel_version{6, 16}, kernel_version{6, 18}, kernel_version{7, 0}}) {
        BOOST_TEST_CONTEXT("kernel " << v.to_string()) {
            const capabilities c = capabilities::for_kernel(v);
            BOOST_TEST(c.opcodes.count() == table_count(v));
            for (const auto& o : ksvc::opcode_table) BOOST_TEST(c.has(o.op) == (o.since <= v), o.name);
        }
    }
}

BOOST_AUTO_TEST_CASE(assume_narrows) {
    const capabilities live = full_618();
    for (kernel_version v : {kernel_version{5, 1}, kernel_version{5, 19}, kernel_version{6, 1}, kernel_version{6, 11}}) {
        BOOST_TEST_CONTEXT("assume " << v.to_string()) {
            const capabilities model = capabilities::for_kernel(v);
            const capabilities a = live.assume(v);
            BOOST_TEST((a.version == v));
            BOOST_TEST(a.assumed);
            BOOST_TEST(a.io_uring_available);
            BOOST_TEST((a.opcodes == (live.opcodes & model.opcodes)));
            BOOST_TEST(a.setup_flags == (live.setup_flags & model.setup_flags));
            BOOST_TEST(a.features == (live.features & model.features));
            BOOST_TEST(is_subset(a.opcodes, live.opcodes));
        }
    }
    const capabilities a61 = live.assume({6, 1});
    BOOST_TEST(a61.has(opcode::sendmsg_zc));
    BOOST_TEST(!a61.has(opcode::bind));
    BOOST_TEST(!a61.has(opcode::pipe));
}

BOOST_AUTO_TEST_CASE(assume_never_widens) {
    // A snapshot from an old kernel stays old when told the kernel is newer …
    const capabilities old = capabilities::for_kernel({5, 6});
    const capabilities a = old.assume({6, 18});
    BOOST_TEST((a.opcodes == old.opcodes));
    BOOST_TEST(a.setup_flags == old.setup_flags);
    BOOST_TEST(a.features == old.features);
    BOOST_TEST(!a.has(opcode::socket));
    // … a probed gap (an opcode filtered by the kernel or a policy) stays a gap …
    capabilities gappy = full_618();
    gappy.opcodes.reset(static_cast<std::size_t>(opcode::write));
    gappy.setup_flags &= ~sf::sqpoll;
    const capabilities g = gappy.assume({6, 11});
    BOOST_TEST(!g.has(opcode::write));
    BOOST_TEST(g.has(opcode::read));
    BOOST_TEST(!g.has_setup_flag(sf::sqpoll));
    // … and an unavailable io_uring stays unavailable.
    capabilities off = full_618();
    off.disable(EPERM, "sysctl");
    const capabilities o = off.assume({6, 18});
    BOOST_TEST(!o.io_uring_available);
    BOOST_TEST(o.unavailable_errno == EPERM);
    BOOST_TEST(!o.has(opcode::nop));
    // Assuming a kernel without io_uring removes it.
    const capabilities none = full_618().assume({4, 19});
    BOOST_TEST(!none.io_uring_available);
    BOOST_TEST(none.unavailable_errno == ENOSYS);
    BOOST_TEST(!none.has(opcode::nop));
}

BOOST_AUTO_TEST_CASE(with_environment_without_variables_is_identity) {
    env_guard k("KSVC_ASSUME_KERNEL", nullptr), d("KSVC_DISABLE_IO_URING", nullptr);
    const capabilities live = full_618();
    const capabilities c = live.with_environment();
    BOOST_TEST((c.version == live.version));
    BOOST_TEST((c.opcodes == live.opcodes));
    BOOST_TEST(c.io_uring_available);
    BOOST_TEST(!c.assumed);
}

BOOST_AUTO_TEST_CASE(with_environment_assume_kernel) {
    env_guard d("KSVC_DISABLE_IO_URING", nullptr);
    const capabilities live = full_618();
    {
        env_guard k("KSVC_ASSUME_KERNEL", "6.1");
        const capabilities c = live.with_environment();
        BOOST_TEST((c.version == kernel_version{6, 1}));
        BOOST_TEST(c.assumed);
        BOOST_TEST(c.io_uring_available);
        BOOST_TEST((c.opcodes == capabilities::for_kernel({6, 1}).opcodes));
        BOOST_TEST(!c.has(opcode::bind));
        BOOST_TEST(c.has(opcode::socket));
    }
    {
        env_guard k("KSVC_ASSUME_KERNEL", "5.19.17-custom");
        const capabilities c = live.with_environment();
        BOOST_TEST((c.version == kernel_version{5, 19, 17}));
        BOOST_TEST(c.has(opcode::socket));
        BOOST_TEST(!c.has(opcode::send_zc));
    }
    {
        env_guard k("KSVC_ASSUME_KERNEL", ""); // empty: ignored
        BOOST_TEST((live.with_environment().opcodes == live.opcodes));
    }
}

BOOST_AUTO_TEST_CASE(with_environment_disable_io_uring) {
    env_guard k("KSVC_ASSUME_KERNEL", nullptr);
    const capabilities live = full_618();
    for (const char* yes : {"1", "true", "yes", "on"}) {
        env_guard d("KSVC_DISABLE_IO_URING", yes);
        const capabilities c = live.with_environment();
        BOOST_TEST_CONTEXT("KSVC_DISABLE_IO_URING=" << yes) {
            BOOST_TEST(!c.io_uring_available);
            BOOST_TEST(c.unavailable_reason.find("KSVC_DISABLE_IO_URING") != std::string::npos, c.unavailable_reason);
            BOOST_TEST(!c.has(opcode::read));
            BOOST_TEST(!c.has_setup_flag(sf::sqpoll));
        }
    }
    for (const char* no : {"0", "false", "no", "off", ""}) {
        env_guard d("KSVC_DISABLE_IO_URING", no);
        BOOST_TEST_CONTEXT("KSVC_DISABLE_IO_URING=" << no) { BOOST_TEST(live.with_environment().io_uring_available); }
    }
    // Both at once: assumed 6.1 and disabled.
    env_guard a("KSVC_ASSUME_KERNEL", "6.1");
    env_guard d("KSVC_DISABLE_IO_URING", "1");
    const capabilities c = live.with_environment();
    BOOST_TEST(!c.io_uring_available);
    BOOST_TEST((c.version == kernel_version{6, 1}));
}

BOOST_AUTO_TEST_CASE(with_environment_rejects_garbage_naming_the_variable) {
    const capabilities live = full_618();
    {
        env_guard d("KSVC_DISABLE_IO_URING", nullptr);
        for (const char* bad : {"banana", "6", "six.one", ".1", "6.x"}) {
            env_guard k("KSVC_ASSUME_KERNEL", bad);
            BOOST_TEST_CONTEXT("KSVC_ASSUME_KERNEL=" << bad) {
                bool thrown = false;
                try {
                    (void)live.with_environment();
                } catch (const std::invalid_argument& e) {
                    thrown = true;
                    BOOST_TEST(std::string(e.what()).find("KSVC_ASSUME_KERNEL") != std::string::npos, e.what());
                    BOOST_TEST(std::string(e.what()).find(bad) != std::string::npos, e.what());
                }
                BOOST_TEST(thrown);
            }
        }
    }
    {
        env_guard k("KSVC_ASSUME_KERNEL", nullptr);
        for (const char* bad : {"banana", "2", "yes please"}) {
            env_guard d("KSVC_DISABLE_IO_URING", bad);
            BOOST_TEST_CONTEXT("KSVC_DISABLE_IO_URING=" << bad) {
                bool thrown = false;
                try {
                    (void)live.with_environment();
                } catch (const std::invalid_argument& e) {
                    thrown = true;
                    BOOST_TEST(std::string(e.what()).find("KSVC_DISABLE_IO_URING") != std::string::npos, e.what());
                }
                BOOST_TEST(thrown);
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(detect_capabilities_on_this_machine) {
    const capabilities c = ksvc::detect_capabilities();
    BOOST_REQUIRE_MESSAGE(c.io_uring_available, "io_uring unavailable here: " << c.unavailable_reason);
    BOOST_TEST(!c.assumed);
    BOOST_TEST(c.unavailable_errno == 0);
    utsname u{};
    BOOST_REQUIRE(::uname(&u) == 0);
    const auto v = kernel_version::parse(u.release);
    BOOST_REQUIRE(v.has_value());
    BOOST_TEST((c.version == *v), "uname " << u.release << " vs " << c.version.to_string());
    BOOST_TEST_MESSAGE("detected " << c.version.to_string() << ": " << c.opcodes.count() << " opcodes, setup flags 0x"
                                   << std::hex << c.setup_flags << ", features 0x" << c.features);

    // The trial setups found the flags this kernel (>= 6.1) takes.
    BOOST_TEST(c.has_setup_flag(sf::sqpoll));
    BOOST_TEST(c.has_setup_flag(sf::single_issuer));
    BOOST_TEST(c.has_setup_flag(sf::defer_taskrun));
    BOOST_TEST(c.has_setup_flag(sf::cqsize));
    BOOST_TEST(c.has_setup_flag(sf::submit_all));
    // Only flags ksvc knows were tried.
    std::uint32_t known = 0;
    for (const auto& f : sf::table) known |= f.bit;
    BOOST_TEST((c.setup_flags & ~known) == 0u);
    BOOST_TEST(c.has_feature(rf::single_mmap | rf::nodrop | rf::fast_poll | rf::ext_arg));
    BOOST_TEST(c.has(opcode::nop));
    BOOST_TEST(c.has(opcode::read));

    // kernel.io_uring_disabled as /proc reports it.
    std::ifstream f("/proc/sys/kernel/io_uring_disabled");
    int sysctl = -1;
    if (!(f >> sysctl)) sysctl = -1;
    BOOST_TEST(c.io_uring_disabled_sysctl == sysctl);

    // The process-wide snapshot is the same detection (without environment overrides here).
    if (!std::getenv("KSVC_ASSUME_KERNEL") && !std::getenv("KSVC_DISABLE_IO_URING")) {
        const capabilities& cur = ksvc::current_capabilities();
        BOOST_TEST((cur.version == c.version));
        BOOST_TEST((cur.opcodes == c.opcodes));
        BOOST_TEST(cur.setup_flags == c.setup_flags);
        BOOST_TEST(&cur == &ksvc::current_capabilities()); // cached
    }
}

BOOST_AUTO_TEST_CASE(setup_failure_descriptions_name_the_cause) {
    const std::string enomem = ksvc::describe_setup_failure(ENOMEM);
    BOOST_TEST(enomem.find("io_uring_setup") != std::string::npos, enomem);
    BOOST_TEST(enomem.find("RLIMIT_MEMLOCK") != std::string::npos, enomem);
    const std::string eperm = ksvc::describe_setup_failure(EPERM);
    BOOST_TEST((eperm.find("sysctl") != std::string::npos || eperm.find("seccomp") != std::string::npos), eperm);
    BOOST_TEST(ksvc::describe_setup_failure(ENOSYS).find("without io_uring") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
