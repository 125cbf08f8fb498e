#pragma once
//! ksvc operations: work that is not a syscall (multishot streams, registered resources,
//! timeouts, cancellation, cross-ring messages), numbered from 0x8000 in submit_entry::nr so
//! one router routes both spaces. Build entries with ksvc::op::* (executor/op.hpp).
//!
//! Each operation has a minimum kernel for its native form and says what happens below it:
//! - native:    translated into its SQE;
//! - emulated:  ksvc produces the same completions another way (a multishot stream as re-armed
//!              single-shot operations; `emulated` is set in their flags);
//! - refused:   errc::unsupported, never silently different.
#include <array>
#include <cstdint>
#include <string_view>

#include <ksvc/core/kernel_version.hpp>
#include <ksvc/core/opcodes.hpp>

namespace ksvc {

inline constexpr std::uint32_t operation_base = 0x8000;

enum class operation : std::uint32_t {
    nop = operation_base,
    accept_multishot, //!< (fd, flags): one completion per connection, `more` until it ends
    recv_multishot,   //!< (fd, flags) + buffer_select: one completion per received buffer
    recv_select,      //!< (fd, len, flags) + buffer_select: one recv into a kernel-picked buffer
    send_select,      //!< (fd, len, flags) + buffer_select: a send from the group's buffers (6.10)
    read_fixed,       //!< (fd, buf, len, off, buf_index): into a registered buffer
    write_fixed,      //!< (fd, buf, len, off, buf_index)
    send_zc,          //!< (fd, buf, len, flags): the result, then a `notif` completion when the buffer is free
    sendmsg_zc,       //!< (fd, msghdr*, flags)
    poll,             //!< (fd, events): one completion with the ready mask
    poll_multishot,   //!< (fd, events): a completion each time the fd becomes ready, `more` until cancelled
    timeout,          //!< (ns, count, flags): -ETIME when it expires, 0 after `count` other completions
    link_timeout,     //!< (ns, flags): bounds the previous (linked) entry; it then gets -ECANCELED
    cancel,           //!< (mode, key): mode cancel_by::{corr_id, fd, all}; result = requests cancelled or -ENOENT
    close_direct,     //!< (file_index): closes a registered-file slot
    files_update,     //!< (fds*, count, offset): updates registered-file slots
    fixed_fd_install, //!< (file_index, flags): a real fd for a registered file
    msg_ring,         //!< (ring_fd, value, target_corr_id): a completion posted on another ring
    accept_direct,    //!< (fd, flags): one connection into a free registered-file slot; result = the slot
    accept_multishot_direct, //!< (fd, flags): a slot per connection, `more` until it ends (ENFILE: table full)
    openat_direct,    //!< (dfd, path, flags, mode): opens into a free registered-file slot; result = the slot
    //! (fd, buf, len, flags): zero-copy where it can pay — SEND_ZC from
    //! io_uring_options::zc_threshold bytes up to a peer on another machine, else a plain SEND.
    //! Either way the result comes with `more`, then a `notif` completion when the buffer is
    //! free (zc_copied_aux when the data was copied: always for a plain send).
    send_auto,
    //! (fd, iovec*, count, off, buf_index): vectored read / write in which every iovec lies
    //! inside registered buffer buf_index (6.15). The iovec array must stay valid until the
    //! completion. Below 6.15 refused: a lease's op::readv_fixed builds a plain preadv there.
    readv_fixed,
    writev_fixed,
    last,
};
inline constexpr std::size_t operation_count = static_cast<std::uint32_t>(operation::last) - operation_base;

//! A stream: an operation whose completions keep coming (`more`) until it ends or is cancelled
//! — any number of them, so no fixed room can be reserved for it. `number` as submit_entry::number().
constexpr bool is_stream(std::uint32_t number) noexcept {
    switch (static_cast<operation>(number)) {
    case operation::accept_multishot:
    case operation::accept_multishot_direct:
    case operation::recv_multishot:
    case operation::poll_multishot: return true;
    default: return false;
    }
}

//! operation::cancel modes (args[0]).
namespace cancel_by {
inline constexpr std::uint64_t corr_id = 0, fd = 1, all = 2;
}

enum class fallback : std::uint8_t { native_only, emulated, refused };

struct operation_info {
    operation op;
    std::string_view name;
    opcode code;            //!< its SQE opcode
    kernel_version since;   //!< the first kernel with its native form
    fallback below;         //!< what happens on an older kernel
    bool multishot;         //!< several completions per entry: call() refuses it
    bool needs_resources;   //!< uses registered files or buffers (see the resource policies)
    std::string_view lacking; //!< the documented behaviour where the kernel lacks it
};

inline constexpr std::array<operation_info, operation_count> operation_table{{
    {operation::nop, "nop", opcode::nop, {5, 1}, fallback::refused, false, false, "refused (io_uring below 5.1)"},
    {operation::accept_multishot, "accept_multishot", opcode::accept, {5, 19}, fallback::emulated, true, false,
     "emulated from 5.5: one accept re-armed after each connection"},
    {operation::recv_multishot, "recv_multishot", opcode::recv, {6, 0}, fallback::emulated, true, true,
     "emulated from 5.7: one buffer-select recv re-armed after each completion"},
    {operation::recv_select, "recv_select", opcode::recv, {5, 7}, fallback::refused, false, true,
     "refused below 5.7 (no provided buffers)"},
    {operation::send_select, "send_select", opcode::send, {6, 10}, fallback::refused, false, true,
     "refused below 6.10 (no send buffer selection)"},
    {operation::read_fixed, "read_fixed", opcode::read_fixed, {5, 1}, fallback::refused, false, true, "refused"},
    {operation::write_fixed, "write_fixed", opcode::write_fixed, {5, 1}, fallback::refused, false, true, "refused"},
    {operation::send_zc, "send_zc", opcode::send_zc, {6, 0}, fallback::refused, true, false,
     "refused below 6.0 (use send)"},
    {operation::sendmsg_zc, "sendmsg_zc", opcode::sendmsg_zc, {6, 1}, fallback::refused, true, false,
     "refused below 6.1 (use sendmsg)"},
    {operation::poll, "poll", opcode::poll_add, {5, 1}, fallback::refused, false, false, "refused"},
    {operation::poll_multishot, "poll_multishot", opcode::poll_add, {5, 13}, fallback::emulated, true, false,
     "emulated from 5.1: a one-shot poll re-armed after each event (level-triggered: a still-ready fd completes again)"},
    {operation::timeout, "timeout", opcode::timeout, {5, 4}, fallback::refused, false, false, "refused below 5.4"},
    {operation::link_timeout, "link_timeout", opcode::link_timeout, {5, 5}, fallback::refused, false, false,
     "refused below 5.5"},
    {operation::cancel, "cancel", opcode::async_cancel, {5, 5}, fallback::refused, false, false,
     "refused below 5.5; by fd and all are done by ksvc over its own in-flight table on every kernel"},
    {operation::close_direct, "close_direct", opcode::close, {5, 15}, fallback::refused, false, true,
     "refused below 5.15"},
    {operation::files_update, "files_update", opcode::files_update, {5, 6}, fallback::refused, false, true,
     "refused below 5.6"},
    {operation::fixed_fd_install, "fixed_fd_install", opcode::fixed_fd_install, {6, 8}, fallback::refused, false,
     true, "refused below 6.8"},
    {operation::msg_ring, "msg_ring", opcode::msg_ring, {5, 18}, fallback::refused, false, false,
     "refused below 5.18"},
    {operation::accept_direct, "accept_direct", opcode::accept, {5, 19}, fallback::refused, false, true,
     "refused below 5.19 (no slot allocation)"},
    {operation::accept_multishot_direct, "accept_multishot_direct", opcode::accept, {5, 19}, fallback::refused, true,
     true, "refused below 5.19 (no slot allocation)"},
    {operation::openat_direct, "openat_direct", opcode::openat, {5, 19}, fallback::refused, false, true,
     "refused below 5.19 (no slot allocation)"},
    {operation::send_auto, "send_auto", opcode::send, {5, 6}, fallback::refused, true, false,
     "a plain send below 6.0 (no SEND_ZC), with the notification ksvc posts; refused below 5.6"},
    {operation::readv_fixed, "readv_fixed", opcode::readv_fixed, {6, 15}, fallback::refused, false, true,
     "refused below 6.15 (a registered lease's builder makes a plain preadv)"},
    {operation::writev_fixed, "writev_fixed", opcode::writev_fixed, {6, 15}, fallback::refused, false, true,
     "refused below 6.15 (a registered lease's builder makes a plain pwritev)"},
}};

//! A registered-file slot (a "direct descriptor"): its own type, so it cannot be passed where an
//! fd is meant. Entries built from one carry entry_flags::fixed_file and never run on a worker
//! (errc::needs_ring instead: a worker would read the slot number as an fd).
struct direct_fd {
    std::uint32_t index = 0;
    friend constexpr bool operator==(direct_fd, direct_fd) = default;
};

constexpr bool check_operation_table() noexcept {
    for (std::size_t i = 0; i < operation_table.size(); ++i)
        if (static_cast<std::uint32_t>(operation_table[i].op) != operation_base + i) return false;
    return true;
}
static_assert(check_operation_table(), "operation_table must be indexed by operation number");

constexpr bool is_operation(std::uint32_t nr) noexcept {
    return nr >= operation_base && nr < static_cast<std::uint32_t>(operation::last);
}

constexpr const operation_info* info(operation op) noexcept {
    const auto n = static_cast<std::uint32_t>(op);
    return is_operation(n) ? &operation_table[n - operation_base] : nullptr;
}

constexpr std::string_view to_string(operation op) noexcept {
    auto* i = info(op);
    return i ? i->name : std::string_view{};
}

} // namespace ksvc
