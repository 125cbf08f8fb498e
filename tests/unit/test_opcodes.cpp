// opcodes.hpp against liburing's IORING_OP_* enum (0..48, what liburing 2.3 defines) and against
// the live IORING_REGISTER_PROBE of the running kernel (every opcode, including ours past 48).
#include <boost/test/unit_test.hpp>

#include <liburing.h>
#include <sys/utsname.h>

#include <cstddef>
#include <string>
#include <string_view>

#include <ksvc/core/kernel.hpp>
#include <ksvc/core/opcodes.hpp>
#include <ksvc/module/capabilities.hpp>

namespace {

// X(ksvc name, liburing suffix) for every opcode liburing 2.3 defines.
#define KSVC_LIBURING_OPCODES(X)                                                                              \
    X(nop, NOP) X(readv, READV) X(writev, WRITEV) X(fsync, FSYNC) X(read_fixed, READ_FIXED)                      \
    X(write_fixed, WRITE_FIXED) X(poll_add, POLL_ADD) X(poll_remove, POLL_REMOVE)                                \
    X(sync_file_range, SYNC_FILE_RANGE) X(sendmsg, SENDMSG) X(recvmsg, RECVMSG) X(timeout, TIMEOUT)              \
    X(timeout_remove, TIMEOUT_REMOVE) X(accept, ACCEPT) X(async_cancel, ASYNC_CANCEL)                            \
    X(link_timeout, LINK_TIMEOUT) X(connect, CONNECT) X(fallocate, FALLOCATE) X(openat, OPENAT)                  \
    X(close, CLOSE) X(files_update, FILES_UPDATE) X(statx, STATX) X(read, READ) X(write, WRITE)                  \
    X(fadvise, FADVISE) X(madvise, MADVISE) X(send, SEND) X(recv, RECV) X(openat2, OPENAT2)                      \
    X(epoll_ctl, EPOLL_CTL) X(splice, SPLICE) X(provide_buffers, PROVIDE_BUFFERS)                                \
    X(remove_buffers, REMOVE_BUFFERS) X(tee, TEE) X(shutdown, SHUTDOWN) X(renameat, RENAMEAT)                    \
    X(unlinkat, UNLINKAT) X(mkdirat, MKDIRAT) X(symlinkat, SYMLINKAT) X(linkat, LINKAT)                          \
    X(msg_ring, MSG_RING) X(fsetxattr, FSETXATTR) X(setxattr, SETXATTR) X(fgetxattr, FGETXATTR)                  \
    X(getxattr, GETXATTR) X(socket, SOCKET) X(uring_cmd, URING_CMD) X(send_zc, SEND_ZC)                          \
    X(sendmsg_zc, SENDMSG_ZC)

#define KSVC_CHECK_NUMBER(ours, theirs)                                                                       \
    static_assert(static_cast<int>(ksvc::opcode::ours) == static_cast<int>(IORING_OP_##theirs),              \
                  "ksvc::opcode::" #ours " != IORING_OP_" #theirs);
KSVC_LIBURING_OPCODES(KSVC_CHECK_NUMBER)
#undef KSVC_CHECK_NUMBER

struct liburing_row {
    ksvc::opcode ours;
    int theirs;
    std::string_view name;
};
#define KSVC_ROW(ours, theirs) {ksvc::opcode::ours, static_cast<int>(IORING_OP_##theirs), #theirs},
constexpr liburing_row liburing_rows[] = {KSVC_LIBURING_OPCODES(KSVC_ROW)};
#undef KSVC_ROW

ksvc::kernel_version running_kernel() {
    utsname u{};
    BOOST_REQUIRE(::uname(&u) == 0);
    auto v = ksvc::kernel_version::parse(u.release);
    BOOST_REQUIRE_MESSAGE(v.has_value(), "uname release does not parse: " << u.release);
    return *v;
}

int highest_set(const std::bitset<256>& b) {
    for (int i = 255; i >= 0; --i)
        if (b.test(static_cast<std::size_t>(i))) return i;
    return -1;
}

} // namespace

BOOST_AUTO_TEST_SUITE(opcodes)

BOOST_AUTO_TEST_CASE(numbers_0_to_48_equal_liburing) {
    BOOST_TEST(std::size(liburing_rows) == 49u);
    for (std::size_t i = 0; i < std::size(liburing_rows); ++i) {
        const auto& r = liburing_rows[i];
        BOOST_TEST_CONTEXT("IORING_OP_" << r.name) {
            BOOST_TEST(static_cast<int>(r.ours) == r.theirs);
            BOOST_TEST(r.theirs == static_cast<int>(i));
            BOOST_TEST(ksvc::to_string(r.ours) == r.name);
            BOOST_TEST(ksvc::opcode_table[i].name == r.name);
        }
    }
    // liburing stops at 48 or later; whatever it knows, ours extends it without gaps.
    BOOST_TEST(static_cast<int>(IORING_OP_LAST) <= static_cast<int>(ksvc::opcode::last));
    BOOST_TEST(static_cast<int>(IORING_OP_LAST) >= 49);
}

BOOST_AUTO_TEST_CASE(table_is_ordered_and_dense) {
    BOOST_TEST(ksvc::opcode_count == 63u);
    for (std::size_t i = 0; i < ksvc::opcode_table.size(); ++i) {
        BOOST_TEST(static_cast<std::size_t>(ksvc::opcode_table[i].op) == i);
        BOOST_TEST(!ksvc::opcode_table[i].name.empty());
        if (i > 0) BOOST_TEST((ksvc::opcode_table[i - 1].since <= ksvc::opcode_table[i].since));
    }
    BOOST_TEST(ksvc::info(ksvc::opcode::none) == nullptr);
    BOOST_TEST(ksvc::to_string(ksvc::opcode::none).empty());
}

// Numbers past liburing 2.3, from include/uapi/linux/io_uring.h.
BOOST_AUTO_TEST_CASE(numbers_past_48_match_the_kernel_abi) {
    struct row {
        ksvc::opcode op;
        int nr;
        std::string_view name;
    };
    constexpr row rows[] = {
        {ksvc::opcode::read_multishot, 49, "READ_MULTISHOT"}, {ksvc::opcode::waitid, 50, "WAITID"},
        {ksvc::opcode::futex_wait, 51, "FUTEX_WAIT"},         {ksvc::opcode::futex_wake, 52, "FUTEX_WAKE"},
        {ksvc::opcode::futex_waitv, 53, "FUTEX_WAITV"},       {ksvc::opcode::fixed_fd_install, 54, "FIXED_FD_INSTALL"},
        {ksvc::opcode::ftruncate, 55, "FTRUNCATE"},           {ksvc::opcode::bind, 56, "BIND"},
        {ksvc::opcode::listen, 57, "LISTEN"},                 {ksvc::opcode::recv_zc, 58, "RECV_ZC"},
        {ksvc::opcode::epoll_wait, 59, "EPOLL_WAIT"},         {ksvc::opcode::readv_fixed, 60, "READV_FIXED"},
        {ksvc::opcode::writev_fixed, 61, "WRITEV_FIXED"},     {ksvc::opcode::pipe, 62, "PIPE"},
    };
    for (const auto& r : rows) {
        BOOST_TEST_CONTEXT(r.name) {
            BOOST_TEST(static_cast<int>(r.op) == r.nr);
            BOOST_TEST(ksvc::to_string(r.op) == r.name);
        }
    }
}

// The running kernel (6.18 on the development machine) supports every opcode ksvc dates at or
// before its version; the probe's highest opcode agrees with the table unless the kernel knows
// more than ksvc does.
BOOST_AUTO_TEST_CASE(live_probe_supports_every_opcode_up_to_the_running_kernel) {
    const auto& caps = ksvc::current_capabilities();
    BOOST_REQUIRE_MESSAGE(caps.io_uring_available, "io_uring unavailable: " << caps.unavailable_reason);
    const ksvc::kernel_version v = running_kernel();
    BOOST_TEST_MESSAGE("running kernel " << v.to_string() << ", probe reports " << caps.opcodes.count()
                                         << " opcodes, highest " << highest_set(caps.opcodes));
    int highest_known_for_version = -1;
    for (const auto& o : ksvc::opcode_table) {
        if (o.since > v) continue;
        highest_known_for_version = static_cast<int>(o.op);
        BOOST_TEST_CONTEXT("IORING_OP_" << o.name << " (since " << o.since.to_string() << ")") {
            BOOST_TEST(caps.opcodes.test(static_cast<std::size_t>(o.op)));
            BOOST_TEST(caps.has(o.op));
        }
    }
    const int probe_highest = highest_set(caps.opcodes);
    const int last_known = static_cast<int>(ksvc::opcode_count) - 1;
    // The probe may report opcodes newer than ksvc's table (fine); up to what ksvc knows,
    // the highest supported opcode is the highest the table dates at or before this kernel.
    BOOST_TEST(highest_known_for_version == (probe_highest < last_known ? probe_highest : last_known));
}

BOOST_AUTO_TEST_CASE(live_probe_knows_our_post_liburing_numbers_by_name) {
    const auto& caps = ksvc::current_capabilities();
    BOOST_REQUIRE(caps.io_uring_available);
    const ksvc::kernel_version v = running_kernel();
    if (v < ksvc::kernel_version{6, 16}) {
        BOOST_TEST_MESSAGE("kernel " << v.to_string() << " predates 6.16: checking only what it has");
    }
    // Each of ours past 48 that the kernel is new enough for must be in the probe under its number.
    for (std::size_t i = 49; i < ksvc::opcode_count; ++i) {
        const auto& o = ksvc::opcode_table[i];
        if (o.since > v) continue;
        BOOST_TEST_CONTEXT(o.name << " = " << i) { BOOST_TEST(caps.opcodes.test(i)); }
    }
    if (v >= ksvc::kernel_version{6, 11}) {
        BOOST_TEST(caps.opcodes.test(56)); // BIND
        BOOST_TEST(caps.opcodes.test(57)); // LISTEN
        BOOST_TEST(caps.has(ksvc::opcode::bind));
        BOOST_TEST(caps.has(ksvc::opcode::listen));
    }
    if (v >= ksvc::kernel_version{6, 9}) BOOST_TEST(caps.has(ksvc::opcode::ftruncate)); // 55
    if (v >= ksvc::kernel_version{6, 16}) {
        BOOST_TEST(caps.opcodes.test(62)); // PIPE
        BOOST_TEST(caps.has(ksvc::opcode::pipe));
    }
}

BOOST_AUTO_TEST_SUITE_END()
