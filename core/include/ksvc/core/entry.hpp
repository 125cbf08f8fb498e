#pragma once
//! The two records that travel through ksvc: a submission and its completion.
//!
//! submit_entry layout (64 bytes, one cache line):
//!   corr_id  the caller's correlation id, echoed in the completion. With
//!            entry_flags::completion_target it is the address of a completion_target instead.
//!   nr       bits 0-15: a syscall number (below 0x8000) or a ksvc operation number
//!            (0x8000 and up, see operations.hpp). Bits 16-31: the provided-buffer group when
//!            entry_flags::buffer_select is set, else zero (a non-zero high half without
//!            buffer_select is an unknown number and is refused).
//!   flags    bits 0-7 the framework's (completion_target), bits 8-15 per-entry modifiers
//!            (link, hardlink, drain, force_async, skip_success, fixed_file, buffer_select, bundle),
//!            bits 16-31 the user's, echoed untouched.
//!   args     six raw arguments: a syscall's as syscall(2) takes them, or an operation's as
//!            its builder in ksvc::op documents.
#include <cstddef>
#include <cstdint>
#include <system_error>

#include <ksvc/core/error.hpp>

namespace ksvc {

namespace entry_flags {
//! corr_id is the address of a completion_target; the completion bypasses the sink.
inline constexpr std::uint32_t completion_target = 1u << 0;
inline constexpr std::uint32_t framework_mask = 0x000000ffu;

//! Per-entry modifiers (bits 8-15), in the order of IOSQE_* shifted by 8 so the backend maps
//! them with one shift. A worker honours link/hardlink (the chain runs in order on one thread)
//! and ignores the hints.
inline constexpr std::uint32_t fixed_file = 1u << 8;    //!< the fd argument is a registered-file index
inline constexpr std::uint32_t drain = 1u << 9;         //!< starts after everything submitted before it completed
inline constexpr std::uint32_t link = 1u << 10;         //!< the next entry runs only if this one succeeds fully
inline constexpr std::uint32_t hardlink = 1u << 11;     //!< the next entry runs after this one, whatever its result
inline constexpr std::uint32_t force_async = 1u << 12;  //!< io_uring: go straight to io-wq (a hint)
inline constexpr std::uint32_t buffer_select = 1u << 13; //!< the kernel picks a buffer from group nr >> 16
//! No completion is delivered when it succeeds. In a chain, a member followed by another is
//! sent with IOSQE_CQE_SKIP_SUCCESS where the ring has IORING_FEAT_CQE_SKIP (5.17): the kernel
//! posts no CQE and the member's slot is released when a later member completes. Elsewhere
//! ksvc reaps the CQE and drops it. (The kernel's rule: once a ring has seen CQE_SKIP_SUCCESS,
//! a later `drain` entry fails with EOPNOTSUPP; a ring that ran a drain entry first keeps
//! draining and skips in user space.)
inline constexpr std::uint32_t skip_success = 1u << 14;
//! recv_select / recv_multishot: one completion may fill several buffers of the group, the
//! ones after the named buffer in ring order (IORING_RECVSEND_BUNDLE, 6.10); the provider's
//! lease of it spans them. Below 6.10 each completion fills one buffer, which is a bundle of
//! one. On any other entry it is refused (EINVAL).
inline constexpr std::uint32_t bundle = 1u << 15;
inline constexpr std::uint32_t modifier_mask = 0x0000ff00u;
inline constexpr std::uint32_t chain_mask = link | hardlink;

//! Bits 16..31 belong to the user and are echoed untouched.
inline constexpr std::uint32_t user_mask = 0xffff0000u;
} // namespace entry_flags

//! One system call or ksvc operation to run: 64 bytes, one cache line.
struct alignas(64) submit_entry {
    std::uint64_t corr_id = 0;  //!< caller's correlation id, returned in the completion
    std::uint32_t nr = 0;       //!< syscall or operation number (+ buffer group, see above)
    std::uint32_t flags = 0;    //!< entry_flags
    std::uint64_t args[6] = {}; //!< raw arguments

    //! The number the router routes: nr without the buffer group.
    [[nodiscard]] constexpr std::uint32_t number() const noexcept {
        return (flags & entry_flags::buffer_select) ? (nr & 0xffffu) : nr;
    }
    [[nodiscard]] constexpr std::uint16_t buffer_group() const noexcept {
        return (flags & entry_flags::buffer_select) ? static_cast<std::uint16_t>(nr >> 16) : 0;
    }
    [[nodiscard]] constexpr bool continues_chain() const noexcept { return flags & entry_flags::chain_mask; }
};
static_assert(sizeof(submit_entry) == 64);

namespace completion_flags {
inline constexpr std::uint32_t more = 1u << 0;        //!< multishot: more completions follow
inline constexpr std::uint32_t buffer = 1u << 1;      //!< aux holds a provided-buffer id
inline constexpr std::uint32_t ksvc_error = 1u << 2;  //!< result is -ksvc::errc, not -errno
inline constexpr std::uint32_t notif = 1u << 3;       //!< zero-copy send: the buffer is free again
inline constexpr std::uint32_t buffer_more = 1u << 4; //!< incremental consumption: the buffer stays in use
inline constexpr std::uint32_t sock_nonempty = 1u << 5; //!< recv: more data is waiting in the socket
inline constexpr std::uint32_t message = 1u << 6;     //!< posted by another ring's msg_ring, not by an entry
inline constexpr std::uint32_t emulated = 1u << 7;    //!< produced by ksvc's emulation, not natively
//! A native multishot stream the kernel ended on this completion because it could not post the
//! next one (its CQ was full): ksvc re-armed it, so `more` is set and the stream continues.
inline constexpr std::uint32_t rearmed = 1u << 8;
//! notif completions: the kernel copied the data anyway (IORING_NOTIF_USAGE_ZC_COPIED), in aux bit 31.
inline constexpr std::uint32_t zc_copied_aux = 1u << 31;
} // namespace completion_flags

//! The outcome of one submit_entry: 32 bytes.
struct alignas(32) completion_entry {
    std::uint64_t corr_id = 0;
    std::int64_t result = 0;       //!< value, or -errno (or -errc with completion_flags::ksvc_error)
    std::uint32_t flags = 0;       //!< completion_flags
    std::uint32_t aux = 0;         //!< provided-buffer id when flags has `buffer`
    std::uint32_t entry_flags = 0; //!< the submit_entry's flags, echoed
    std::uint32_t nr = 0;          //!< the syscall or operation that produced it

    [[nodiscard]] bool ok() const noexcept { return result >= 0; }
    [[nodiscard]] bool more() const noexcept { return flags & completion_flags::more; }
    //! The failure as an error_code: system_category for -errno, ksvc category for framework errors.
    [[nodiscard]] std::error_code error() const noexcept {
        if (result >= 0) return {};
        if (flags & completion_flags::ksvc_error) return make_error_code(static_cast<errc>(-result));
        return {static_cast<int>(-result), std::system_category()};
    }
};
static_assert(sizeof(completion_entry) == 32);

//! A completion carrying a framework error instead of a kernel result.
constexpr completion_entry make_framework_completion(const submit_entry& e, errc why) noexcept {
    return {e.corr_id, -static_cast<std::int64_t>(why), completion_flags::ksvc_error, 0, e.flags, e.nr};
}

constexpr completion_entry make_completion(const submit_entry& e, std::int64_t result) noexcept {
    return {e.corr_id, result, 0, 0, e.flags, e.nr};
}

//! Where a completion goes instead of the sink: a function pointer and the object it lives
//! in (no virtual call, no allocation). An entry whose flags carry completion_target has the
//! target's address in corr_id; the target must stay alive until `complete` has been called
//! (exactly once per completion; several for a multishot entry, the last without `more`).
//! `complete` runs on the thread that delivers (the loop, or the caller itself) and must not block.
struct completion_target {
    void (*complete)(completion_target* self, const completion_entry& c) noexcept = nullptr;
};

//! A non-owning wake-up callback (function pointer + context): no virtual dispatch, no allocation.
struct waker {
    void (*fn)(void*) noexcept = nullptr;
    void* ctx = nullptr;
    void operator()() const noexcept {
        if (fn) fn(ctx);
    }
};

} // namespace ksvc
