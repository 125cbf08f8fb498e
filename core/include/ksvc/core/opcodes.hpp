#pragma once
//! io_uring opcode numbers (kernel ABI, include/uapi/linux/io_uring.h) with the kernel release
//! that introduced each. liburing 2.3 (Debian 12) stops at SENDMSG_ZC = 48; the rest are ours,
//! checked against the live IORING_REGISTER_PROBE in tests/unit.
#include <array>
#include <cstdint>
#include <string_view>

#include <ksvc/core/kernel_version.hpp>

namespace ksvc {

enum class opcode : std::uint8_t {
    nop = 0, readv, writev, fsync, read_fixed, write_fixed, poll_add, poll_remove,
    sync_file_range, sendmsg, recvmsg, timeout, timeout_remove, accept, async_cancel,
    link_timeout, connect, fallocate, openat, close, files_update, statx, read, write, fadvise,
    madvise, send, recv, openat2, epoll_ctl, splice, provide_buffers, remove_buffers, tee,
    shutdown, renameat, unlinkat, mkdirat, symlinkat, linkat, msg_ring, fsetxattr, setxattr,
    fgetxattr, getxattr, socket, uring_cmd, send_zc, sendmsg_zc,
    read_multishot = 49, waitid, futex_wait, futex_wake, futex_waitv, fixed_fd_install,
    ftruncate, bind, listen, recv_zc, epoll_wait, readv_fixed, writev_fixed, pipe,
    last, //!< one past the highest opcode ksvc knows (63)
    none = 0xff,
};

struct opcode_info {
    opcode op;
    std::string_view name;
    kernel_version since;
};

inline constexpr std::size_t opcode_count = static_cast<std::size_t>(opcode::last);

inline constexpr std::array<opcode_info, opcode_count> opcode_table{{
    {opcode::nop, "NOP", {5, 1}},
    {opcode::readv, "READV", {5, 1}},
    {opcode::writev, "WRITEV", {5, 1}},
    {opcode::fsync, "FSYNC", {5, 1}},
    {opcode::read_fixed, "READ_FIXED", {5, 1}},
    {opcode::write_fixed, "WRITE_FIXED", {5, 1}},
    {opcode::poll_add, "POLL_ADD", {5, 1}},
    {opcode::poll_remove, "POLL_REMOVE", {5, 1}},
    {opcode::sync_file_range, "SYNC_FILE_RANGE", {5, 2}},
    {opcode::sendmsg, "SENDMSG", {5, 3}},
    {opcode::recvmsg, "RECVMSG", {5, 3}},
    {opcode::timeout, "TIMEOUT", {5, 4}},
    {opcode::timeout_remove, "TIMEOUT_REMOVE", {5, 5}},
    {opcode::accept, "ACCEPT", {5, 5}},
    {opcode::async_cancel, "ASYNC_CANCEL", {5, 5}},
    {opcode::link_timeout, "LINK_TIMEOUT", {5, 5}},
    {opcode::connect, "CONNECT", {5, 5}},
    {opcode::fallocate, "FALLOCATE", {5, 6}},
    {opcode::openat, "OPENAT", {5, 6}},
    {opcode::close, "CLOSE", {5, 6}},
    {opcode::files_update, "FILES_UPDATE", {5, 6}},
    {opcode::statx, "STATX", {5, 6}},
    {opcode::read, "READ", {5, 6}},
    {opcode::write, "WRITE", {5, 6}},
    {opcode::fadvise, "FADVISE", {5, 6}},
    {opcode::madvise, "MADVISE", {5, 6}},
    {opcode::send, "SEND", {5, 6}},
    {opcode::recv, "RECV", {5, 6}},
    {opcode::openat2, "OPENAT2", {5, 6}},
    {opcode::epoll_ctl, "EPOLL_CTL", {5, 6}},
    {opcode::splice, "SPLICE", {5, 7}},
    {opcode::provide_buffers, "PROVIDE_BUFFERS", {5, 7}},
    {opcode::remove_buffers, "REMOVE_BUFFERS", {5, 7}},
    {opcode::tee, "TEE", {5, 8}},
    {opcode::shutdown, "SHUTDOWN", {5, 11}},
    {opcode::renameat, "RENAMEAT", {5, 11}},
    {opcode::unlinkat, "UNLINKAT", {5, 11}},
    {opcode::mkdirat, "MKDIRAT", {5, 15}},
    {opcode::symlinkat, "SYMLINKAT", {5, 15}},
    {opcode::linkat, "LINKAT", {5, 15}},
    {opcode::msg_ring, "MSG_RING", {5, 18}},
    {opcode::fsetxattr, "FSETXATTR", {5, 19}},
    {opcode::setxattr, "SETXATTR", {5, 19}},
    {opcode::fgetxattr, "FGETXATTR", {5, 19}},
    {opcode::getxattr, "GETXATTR", {5, 19}},
    {opcode::socket, "SOCKET", {5, 19}},
    {opcode::uring_cmd, "URING_CMD", {5, 19}},
    {opcode::send_zc, "SEND_ZC", {6, 0}},
    {opcode::sendmsg_zc, "SENDMSG_ZC", {6, 1}},
    {opcode::read_multishot, "READ_MULTISHOT", {6, 7}},
    {opcode::waitid, "WAITID", {6, 7}},
    {opcode::futex_wait, "FUTEX_WAIT", {6, 7}},
    {opcode::futex_wake, "FUTEX_WAKE", {6, 7}},
    {opcode::futex_waitv, "FUTEX_WAITV", {6, 7}},
    {opcode::fixed_fd_install, "FIXED_FD_INSTALL", {6, 8}},
    {opcode::ftruncate, "FTRUNCATE", {6, 9}},
    {opcode::bind, "BIND", {6, 11}},
    {opcode::listen, "LISTEN", {6, 11}},
    {opcode::recv_zc, "RECV_ZC", {6, 15}},
    {opcode::epoll_wait, "EPOLL_WAIT", {6, 15}},
    {opcode::readv_fixed, "READV_FIXED", {6, 15}},
    {opcode::writev_fixed, "WRITEV_FIXED", {6, 15}},
    {opcode::pipe, "PIPE", {6, 16}},
}};

constexpr bool check_opcode_table() noexcept {
    for (std::size_t i = 0; i < opcode_table.size(); ++i)
        if (static_cast<std::size_t>(opcode_table[i].op) != i) return false;
    return true;
}
static_assert(check_opcode_table(), "opcode_table must be indexed by opcode number");

constexpr const opcode_info* info(opcode op) noexcept {
    auto i = static_cast<std::size_t>(op);
    return i < opcode_table.size() ? &opcode_table[i] : nullptr;
}

constexpr std::string_view to_string(opcode op) noexcept {
    auto* i = info(op);
    return i ? i->name : std::string_view{};
}

} // namespace ksvc
