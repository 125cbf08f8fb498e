#pragma once
//! uring_engine — the io_uring machinery under io_uring_backend<Features...>. The per-entry
//! path (translate, submit, reap) is inline here so the compiler can fold it into the
//! dispatcher's loop; ring setup, teardown, the feature ladder and the blocking-call rings are
//! out of line (module/src/io_uring_backend.cpp).
//!
//! user_data: an in-flight entry is its slot index + 1 (below 2^32); a few values at the top
//! are ksvc's own requests; bit 62 marks a message posted by another ring's msg_ring.
#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <atomic>
#include <bitset>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <ksvc/core/entry.hpp>
#include <ksvc/core/kernel.hpp>
#include <ksvc/core/operations.hpp>
#include <ksvc/core/route.hpp>
#include <ksvc/core/syscalls.hpp>
#include <ksvc/module/process.hpp>

namespace ksvc {

//! What the ring setup actually got, after `auto` decisions and fallbacks.
struct effective_features {
    std::uint32_t setup_flags = 0;   //!< IORING_SETUP_* of the live ring
    std::uint32_t ring_features = 0; //!< IORING_FEAT_* it reported
    unsigned sq_entries = 0, cq_entries = 0;
    bool registered_ring_fd = false;
    bool owner_thread = false;       //!< SINGLE_ISSUER/DEFER_TASKRUN/registered fd: one thread drives it
    unsigned iowq_bounded = 0, iowq_unbounded = 0; //!< io-wq limits set (0: the kernel's)
    unsigned fixed_files = 0;        //!< slots of the registered (sparse) file table, 0: none
    bool restricted = false;         //!< IORING_REGISTER_RESTRICTIONS in effect (restricted<>)
    std::string notes;               //!< one line per fallback taken ("defer_taskrun -> coop_taskrun: …")
};

//! A kernel resource registered with the ring on the thread that drives it (a provided buffer
//! ring, registered buffers, a fixed-file table) and released at teardown, after the drain and
//! before the ring closes. The object behind `self` must outlive the ring (the instance declares
//! its buffer provider before its backend). `attach` returns 0 or -errno.
//!
//! A resource the kernel takes through SQEs rather than registration (legacy provided buffers
//! before 5.19) has `replenish`: the engine calls it on the driving thread before it places
//! new entries and before each enter, and it queues SQEs tagged detail::resource_tag (the
//! count it returns; it may queue fewer than it wants when the SQ is full and is called again)
//! — if its attach asked for it (resource_context::wants_replenish).
//! A failed one is noted in features().notes and logged once.
struct resource_context {
    kernel_version kernel{};        //!< the snapshot's kernel (a resource acts as that kernel would)
    bool provide_buffers = false;   //!< IORING_OP_PROVIDE_BUFFERS (5.7)
    bool vectored_fixed = false;    //!< IORING_OP_READV_FIXED and WRITEV_FIXED (6.15)
    bool wants_replenish = false;   //!< set by attach: call `replenish` (else never: it costs a call per entry)
};
//! A provided-buffer ring consumed in user space by a backend without a ring (epoll_backend), as
//! the kernel would consume it: entries from the backend's own head up to the ring's tail (read
//! with acquire), the provider recycling buffers by advancing the tail.
struct user_buffer_ring {
    io_uring_buf_ring* ring = nullptr;
    std::uint32_t entries = 0; //!< a power of two
    std::uint16_t group = 0;
};
struct ring_resource {
    const char* name = "";
    void* self = nullptr;
    int (*attach)(void* self, io_uring& ring, resource_context& ctx) noexcept = nullptr;
    void (*detach)(void* self, io_uring& ring) noexcept = nullptr;
    unsigned (*replenish)(void* self, io_uring& ring) noexcept = nullptr;
};

namespace detail {

//! What a restricted ring allows (restricted<>): the SQE opcodes ksvc can emit, the SQE flags its
//! entries use, the register operations its features and resources make after the ring is
//! enabled — each only where the kernel of `caps` has it (the kernel refuses a set naming an
//! opcode or register op it does not know).
struct restriction_set {
    std::bitset<256> sqe_ops;
    std::bitset<64> register_ops;
    std::uint8_t sqe_flags = 0;
};
restriction_set ksvc_restrictions(const capabilities& caps) noexcept;
//! IORING_REGISTER_RESTRICTIONS on a ring created disabled (0 or -errno). liburing 2.3's shared
//! library does not export io_uring_register_restrictions: the syscall is made directly.
int register_restrictions(int ring_fd, const restriction_set& set) noexcept;

//! io_uring_queue_mmap without MAP_POPULATE: maps the rings of `fd` (set up with `p`) into
//! `ring`, exactly as liburing fills it, so io_uring_queue_exit and liburing's inline helpers
//! work on it unchanged. The kernel maps a ring's pages when it is mapped (remap_pfn_range,
//! vm_insert_pages since 6.5), so liburing's MAP_POPULATE only walks present pages again: on
//! this machine's 6.18 it was 6–7 µs of every ring's ~15 µs setup. 0 or -errno (nothing mapped).
int map_ring(int fd, const io_uring_params& p, io_uring& ring) noexcept;
//! io_uring_setup + map_ring; the fd is closed if the mapping fails. 0 or -errno.
int setup_ring(unsigned entries, io_uring_params& p, io_uring& ring) noexcept;

inline constexpr std::uint64_t liburing_timeout_tag = ~0ull; // LIBURING_UDATA_TIMEOUT: ignored
inline constexpr std::uint64_t doorbell_tag = ~0ull - 1;
inline constexpr std::uint64_t cancel_tag = ~0ull - 2;
inline constexpr std::uint64_t stop_tag = ~0ull - 3;
inline constexpr std::uint64_t resource_tag = ~0ull - 4; // SQEs a ring_resource queued (replenish)
inline constexpr std::uint64_t first_internal_tag = resource_tag;
inline constexpr std::uint64_t message_bit = 1ull << 62;
inline constexpr std::uint64_t message_mask = message_bit - 1;

// Kernel ABI newer than liburing 2.3's header.
inline constexpr unsigned cqe_f_buf_more = 1u << 4;             // IORING_CQE_F_BUF_MORE (6.12)
inline constexpr unsigned notif_usage_zc_copied = 1u << 31;     // IORING_NOTIF_USAGE_ZC_COPIED (6.2)
inline constexpr unsigned send_zc_report_usage = 1u << 3;       // IORING_SEND_ZC_REPORT_USAGE (6.2)
inline constexpr unsigned splice_f_fd_in_fixed = 1u << 31;      // SPLICE_F_FD_IN_FIXED
inline constexpr unsigned splice_f_all = 0x0f;                  // the flags splice(2) accepts
inline constexpr unsigned recvsend_bundle = 1u << 4;            // IORING_RECVSEND_BUNDLE (6.10), in ioprio

//! Scratch the kernel reads until completion (msghdrs, timespecs) and what a syscall's result
//! is post-processed with. Kept apart from the slot, in a table of its own that is touched only
//! by the entries that need it: an idle recv stream never does.
struct slot_scratch { // trivial: written by the translation that uses it, before the kernel reads it
    socklen_t* addrlen_out;           // recvfrom: *addrlen = msg_namelen after completion
    loff_t* off_in;                   // splice: the syscall advances the caller's offsets
    loff_t* off_out;
    loff_t off_in_value, off_out_value;
    msghdr msg;
    iovec iov;
    __kernel_timespec ts;
};

//! Per in-flight entry, one cache line: the entry's identity and state, and the arguments a
//! stream (multishot accept, recv, poll: all 32-bit) is re-armed from.
struct alignas(64) uring_slot {
    std::uint64_t corr_id = 0;
    std::uint32_t nr = 0;
    std::uint32_t flags = 0;
    route_info route{};
    int fd = -1;                      // the SQE's fd, for cancel by fd and close()
    bool busy = false;
    bool rearm = false;               // emulated multishot: resubmit after each completion
    bool native_stream = false;       // native multishot: resubmit if the kernel ends it on a full CQ
    bool cancel_requested = false;    // do not re-arm; the stream ends with -ECANCELED
    bool kernel_skips = false;        // sent with CQE_SKIP_SUCCESS: no CQE if it succeeds
    bool posts_notif = false;         // send_auto sent as a plain send: ksvc posts its notification
    bool post = false;                // the result is post-processed from x (addrlen, offsets)
    std::uint32_t chain_serial = 0;   // which chain the slot belongs to (0: none)
    std::uint32_t chain_prev = 0;     // the previous member's slot index + 1 (0: first)
    std::uint32_t chain_next = 0;     // the next member's slot index + 1 (0: last)
    std::uint32_t stream_args[3] = {};
    slot_scratch* x = nullptr;        // this slot's scratch

    [[nodiscard]] submit_entry entry() const noexcept {
        submit_entry e;
        e.corr_id = corr_id;
        e.nr = nr;
        e.flags = flags;
        for (int i = 0; i < 3; ++i) e.args[i] = stream_args[i];
        return e;
    }
};
static_assert(sizeof(uring_slot) == 64);

enum class outcome : std::uint8_t { queued, unsupported, immediate };
struct translation {
    outcome kind = outcome::queued;
    std::int64_t immediate_result = 0;
};

//! What translation needs to know about the ring beyond the entry.
struct translate_env {
    bool rw_cur_pos = true;     //!< IORING_FEAT_RW_CUR_POS: offset -1 means the file position
    bool cqe_skip = false;      //!< IORING_FEAT_CQE_SKIP, and no drain entry seen on the ring yet
    bool send_zc = false;       //!< the kernel has IORING_OP_SEND_ZC (send_auto may use it)
    bool zc_local_peers = false;
    std::uint32_t zc_threshold = 8192;
    bool zc_report_usage = false;
    bool recv_bundle = false;   //!< IORING_FEAT_RECVSEND_BUNDLE (6.10)
};

inline void prep(io_uring_sqe& s, opcode op, int fd, std::uint64_t addr, std::uint32_t len, std::uint64_t off) noexcept {
    s.opcode = static_cast<std::uint8_t>(op);
    s.fd = fd;
    s.addr = addr;
    s.len = len;
    s.off = off;
}

// IORING_OP_FUTEX_WAIT (6.7; liburing 2.3 has no helper): fd carries the futex2 flags, addr the
// word, addr2 the expected value, addr3 the wake mask.
inline void prep_futex_wait(io_uring_sqe& s, const std::uint32_t* word, std::uint32_t expected) noexcept {
    constexpr int futex2_size_u32 = 0x02, futex2_private = 128;
    std::memset(&s, 0, sizeof s);
    prep(s, opcode::futex_wait, futex2_size_u32 | futex2_private, reinterpret_cast<std::uintptr_t>(word), 0, expected);
    s.addr3 = 0xffffffffu; // FUTEX_BITSET_MATCH_ANY: the mask FUTEX_WAKE uses
}

inline bool fits_u32(std::uint64_t v) noexcept { return v <= UINT32_MAX; }

inline void set_timespec(__kernel_timespec& ts, std::uint64_t ns) noexcept {
    ts.tv_sec = static_cast<long long>(ns / 1'000'000'000u);
    ts.tv_nsec = static_cast<long long>(ns % 1'000'000'000u);
}

//! Operation numbers -> SQEs. `single` asks for the one-shot form of a multishot operation
//! (the emulation re-arms it).
//! Whether a connected socket's peer is on this machine (loopback, or one of its own addresses):
//! zero-copy send to it always copies. Not a connected inet socket (or unknown): true — a plain
//! send then gives the kernel's own answer (ENOTCONN, ENOTSOCK, …).
bool peer_is_local(int fd) noexcept;

inline translation translate_operation(const submit_entry& e, bool single, io_uring_sqe& s, uring_slot& sl,
                                       const translate_env& env) noexcept {
    const auto* a = e.args;
    const int fd0 = static_cast<int>(a[0]);
    switch (static_cast<operation>(e.number())) {
    case operation::nop: prep(s, opcode::nop, -1, 0, 0, 0); return {};
    case operation::accept_multishot:
    case operation::accept_direct:
    case operation::accept_multishot_direct:
        prep(s, opcode::accept, fd0, 0, 0, 0);
        s.accept_flags = static_cast<std::uint32_t>(a[1]);
        if (e.number() != static_cast<std::uint32_t>(operation::accept_multishot)) s.file_index = IORING_FILE_INDEX_ALLOC;
        if (!single && e.number() != static_cast<std::uint32_t>(operation::accept_direct)) s.ioprio |= IORING_ACCEPT_MULTISHOT;
        return {};
    case operation::openat_direct:
        prep(s, opcode::openat, fd0, a[1], static_cast<std::uint32_t>(a[3]), 0);
        s.open_flags = static_cast<std::uint32_t>(a[2]);
        s.file_index = IORING_FILE_INDEX_ALLOC;
        return {};
    case operation::recv_multishot: {
        const std::uint64_t max = a[2] ? a[2] : (single ? (1u << 30) : 0);
        if (!fits_u32(max)) return {outcome::immediate, -EINVAL};
        prep(s, opcode::recv, fd0, 0, static_cast<std::uint32_t>(max), 0);
        s.msg_flags = static_cast<std::uint32_t>(a[1]);
        if (!single) s.ioprio |= IORING_RECV_MULTISHOT;
        if ((e.flags & entry_flags::bundle) && env.recv_bundle) s.ioprio |= recvsend_bundle;
        return {};
    }
    case operation::recv_select:
    case operation::send_select:
        if (!fits_u32(a[1])) return {outcome::immediate, -EINVAL};
        prep(s, e.number() == static_cast<std::uint32_t>(operation::recv_select) ? opcode::recv : opcode::send, fd0, 0,
             static_cast<std::uint32_t>(a[1]), 0);
        s.msg_flags = static_cast<std::uint32_t>(a[2]);
        if ((e.flags & entry_flags::bundle) && env.recv_bundle) s.ioprio |= recvsend_bundle; // recv_select's only: translate() refuses others
        return {};
    case operation::read_fixed:
    case operation::write_fixed:
    case operation::readv_fixed:
    case operation::writev_fixed: // (fd, buf or iovec*, len or count, off, buf_index): one layout
        if (!fits_u32(a[2]) || a[4] > UINT16_MAX) return {outcome::immediate, -EINVAL};
        prep(s, operation_table[e.number() - operation_base].code, fd0, a[1], static_cast<std::uint32_t>(a[2]), a[3]);
        s.buf_index = static_cast<std::uint16_t>(a[4]);
        return {};
    case operation::send_zc:
        if (!fits_u32(a[2])) return {outcome::immediate, -EINVAL};
        prep(s, opcode::send_zc, fd0, a[1], static_cast<std::uint32_t>(a[2]), 0);
        s.msg_flags = static_cast<std::uint32_t>(a[3]);
        return {};
    case operation::send_auto: {
        if (!fits_u32(a[2])) return {outcome::immediate, -EINVAL};
        const bool zc = env.send_zc && a[2] >= env.zc_threshold &&
                        (env.zc_local_peers || (e.flags & entry_flags::fixed_file) || !peer_is_local(fd0));
        prep(s, zc ? opcode::send_zc : opcode::send, fd0, a[1], static_cast<std::uint32_t>(a[2]), 0);
        s.msg_flags = static_cast<std::uint32_t>(a[3]);
        if (zc && env.zc_report_usage) s.ioprio |= send_zc_report_usage;
        sl.posts_notif = !zc;
        return {};
    }
    case operation::sendmsg_zc:
        prep(s, opcode::sendmsg_zc, fd0, a[1], 1, 0);
        s.msg_flags = static_cast<std::uint32_t>(a[2]);
        return {};
    case operation::poll:
    case operation::poll_multishot:
        prep(s, opcode::poll_add, fd0, 0, 0, 0);
        s.poll32_events = static_cast<std::uint32_t>(a[1]);
        if (!single && e.number() == static_cast<std::uint32_t>(operation::poll_multishot)) s.len = IORING_POLL_ADD_MULTI;
        return {};
    case operation::timeout:
        set_timespec(sl.x->ts, a[0]);
        prep(s, opcode::timeout, -1, reinterpret_cast<std::uint64_t>(&sl.x->ts), 1, a[1]);
        s.timeout_flags = static_cast<std::uint32_t>(a[2]);
        return {};
    case operation::link_timeout:
        set_timespec(sl.x->ts, a[0]);
        prep(s, opcode::link_timeout, -1, reinterpret_cast<std::uint64_t>(&sl.x->ts), 1, 0);
        s.timeout_flags = static_cast<std::uint32_t>(a[1]);
        return {};
    case operation::close_direct:
        if (a[0] >= UINT32_MAX) return {outcome::immediate, -EINVAL};
        prep(s, opcode::close, 0, 0, 0, 0);
        s.file_index = static_cast<std::uint32_t>(a[0]) + 1;
        return {};
    case operation::files_update:
        if (!fits_u32(a[1])) return {outcome::immediate, -EINVAL};
        prep(s, opcode::files_update, -1, a[0], static_cast<std::uint32_t>(a[1]), a[2]);
        return {};
    case operation::fixed_fd_install:
        prep(s, opcode::fixed_fd_install, fd0, 0, 0, 0);
        s.flags |= IOSQE_FIXED_FILE;
        s.rw_flags = static_cast<__kernel_rwf_t>(a[1]);
        return {};
    case operation::msg_ring:
        if (!fits_u32(a[1])) return {outcome::immediate, -EINVAL};
        prep(s, opcode::msg_ring, fd0, 0 /* IORING_MSG_DATA */, static_cast<std::uint32_t>(a[1]),
             message_bit | (a[2] & message_mask));
        return {};
    case operation::cancel: // handled by the engine over its in-flight table
    case operation::last: break;
    }
    return {outcome::unsupported, 0};
}

//! The exact x86_64 syscall -> SQE translations, selected by the router's opcode. Anything the
//! SQE cannot express identically (a length over 32 bits, a negative splice offset, recvfrom
//! with a null addrlen) is refused as unsupported so the dispatcher runs it on a worker
//! instead; results the syscall decides before touching the fd are produced immediately.
//! User memory that ksvc itself must read is read through process::copy_from_user, so a bad
//! pointer gives the syscall's EFAULT, never a crash.
inline translation translate_syscall(const submit_entry& e, opcode op, io_uring_sqe& s, uring_slot& sl,
                                     const translate_env& env) noexcept {
    namespace nr = ksvc::syscalls::x86_64;
    const auto* a = e.args;
    const int fd0 = static_cast<int>(a[0]);
    constexpr translation einval{outcome::immediate, -EINVAL};
    constexpr translation unsupported{outcome::unsupported, 0};
    constexpr auto cur = static_cast<std::uint64_t>(-1);
    const std::uint32_t n = e.nr;
    switch (op) {
    case opcode::read:
    case opcode::write:
        if (n == nr::read || n == nr::write) {
            if (!fits_u32(a[2])) return unsupported;
            prep(s, op, fd0, a[1], static_cast<std::uint32_t>(a[2]), cur);
            return {};
        }
        // pread64 / pwrite64: a negative offset is EINVAL before the fd is looked up
        if (static_cast<std::int64_t>(a[3]) < 0) return einval;
        if (!fits_u32(a[2])) return unsupported;
        prep(s, op, fd0, a[1], static_cast<std::uint32_t>(a[2]), a[3]);
        return {};
    // Vectored forms: the syscalls narrow vlen to unsigned (import_iovec's nr_segs), so
    // truncating to the SQE's 32-bit len is exact.
    case opcode::readv:
    case opcode::writev:
        if (n == nr::readv || n == nr::writev) {
            if (!env.rw_cur_pos) return unsupported;
            prep(s, op, fd0, a[1], static_cast<std::uint32_t>(a[2]), cur);
            return {};
        }
        if (n == nr::preadv || n == nr::pwritev) { // (fd, iov, vlen, pos_l, pos_h): pos_l on 64-bit
            if (static_cast<std::int64_t>(a[3]) < 0) return einval;
            prep(s, op, fd0, a[1], static_cast<std::uint32_t>(a[2]), a[3]);
            return {};
        }
        // preadv2 / pwritev2: position -1 is the current position, which needs RW_CUR_POS
        if (static_cast<std::int64_t>(a[3]) < -1) return einval;
        if (static_cast<std::int64_t>(a[3]) == -1 && !env.rw_cur_pos) return unsupported;
        prep(s, op, fd0, a[1], static_cast<std::uint32_t>(a[2]), a[3]);
        s.rw_flags = static_cast<__kernel_rwf_t>(a[5]);
        return {};
    case opcode::openat:
        if (n == nr::open) { // open(path, flags, mode) == openat(AT_FDCWD, …)
            prep(s, op, AT_FDCWD, a[0], static_cast<std::uint32_t>(a[2]), 0);
            s.open_flags = static_cast<std::uint32_t>(a[1]);
        } else if (n == nr::creat) { // == open(path, O_CREAT|O_WRONLY|O_TRUNC, mode)
            prep(s, op, AT_FDCWD, a[0], static_cast<std::uint32_t>(a[1]), 0);
            s.open_flags = O_CREAT | O_WRONLY | O_TRUNC;
        } else {
            prep(s, op, fd0, a[1], static_cast<std::uint32_t>(a[3]), 0);
            s.open_flags = static_cast<std::uint32_t>(a[2]);
        }
        return {};
    case opcode::openat2: // (dfd, path, how, size): SQE takes size in len and how in off
        prep(s, op, fd0, a[1], static_cast<std::uint32_t>(a[3]), a[2]);
        return {};
    case opcode::close: prep(s, op, fd0, 0, 0, 0); return {};
    case opcode::statx: // (dfd, path, flags, mask, buf)
        prep(s, op, fd0, a[1], static_cast<std::uint32_t>(a[3]), a[4]);
        s.statx_flags = static_cast<std::uint32_t>(a[2]);
        return {};
    case opcode::fsync:
        prep(s, op, fd0, 0, 0, 0);
        s.fsync_flags = n == nr::fdatasync ? IORING_FSYNC_DATASYNC : 0;
        return {};
    case opcode::sync_file_range: // (fd, offset, nbytes, flags)
        if (!fits_u32(a[2])) return unsupported;
        prep(s, op, fd0, 0, static_cast<std::uint32_t>(a[2]), a[1]);
        s.sync_range_flags = static_cast<std::uint32_t>(a[3]);
        return {};
    case opcode::fallocate: // (fd, mode, offset, len): mode in len, offset in off, len in addr
        prep(s, op, fd0, a[3], static_cast<std::uint32_t>(a[1]), a[2]);
        return {};
    case opcode::fadvise: // (fd, offset, len, advice)
        if (!fits_u32(a[2])) return unsupported;
        prep(s, op, fd0, 0, static_cast<std::uint32_t>(a[2]), a[1]);
        s.fadvise_advice = static_cast<std::uint32_t>(a[3]);
        return {};
    case opcode::madvise: // (addr, len, advice)
        if (!fits_u32(a[1])) return unsupported;
        prep(s, op, -1, a[0], static_cast<std::uint32_t>(a[1]), 0);
        s.fadvise_advice = static_cast<std::uint32_t>(a[2]);
        return {};
    case opcode::ftruncate: // (fd, length): a negative length is EINVAL before the fd is looked up
        if (static_cast<std::int64_t>(a[1]) < 0) return einval;
        prep(s, op, fd0, 0, 0, a[1]);
        return {};
    case opcode::socket: prep(s, op, fd0, 0, static_cast<std::uint32_t>(a[2]), a[1]); return {};
    case opcode::bind: prep(s, op, fd0, a[1], 0, a[2]); return {}; // addrlen in addr2 (== off)
    case opcode::listen: prep(s, op, fd0, 0, static_cast<std::uint32_t>(a[1]), 0); return {};
    case opcode::accept: // (fd, addr, addrlen*[, flags]): addrlen pointer in off
        prep(s, op, fd0, a[1], 0, a[2]);
        s.accept_flags = n == nr::accept4 ? static_cast<std::uint32_t>(a[3]) : 0;
        return {};
    case opcode::connect: prep(s, op, fd0, a[1], 0, a[2]); return {}; // addrlen by value in off
    case opcode::send:    // sendto(fd, buf, len, flags, dest, addrlen)
    case opcode::sendmsg: // sendmsg(fd, msg, flags)
        if (n == nr::sendmsg) {
            prep(s, op, fd0, a[1], 1, 0);
            s.msg_flags = static_cast<std::uint32_t>(a[2]);
            return {};
        }
        if (!fits_u32(a[2])) return unsupported;
        if (a[4] == 0) {
            prep(s, opcode::send, fd0, a[1], static_cast<std::uint32_t>(a[2]), 0);
        } else {
            // The syscall takes addrlen as an int and refuses one outside 0..sizeof(sockaddr_storage)
            // with EINVAL; SENDMSG would clamp it silently.
            const int alen = static_cast<int>(a[5]);
            if (alen < 0 || alen > static_cast<int>(sizeof(sockaddr_storage))) return einval;
            sl.x->iov = {reinterpret_cast<void*>(a[1]), a[2]};
            sl.x->msg = {};
            sl.x->msg.msg_name = reinterpret_cast<void*>(a[4]);
            sl.x->msg.msg_namelen = static_cast<socklen_t>(alen);
            sl.x->msg.msg_iov = &sl.x->iov;
            sl.x->msg.msg_iovlen = 1;
            prep(s, opcode::sendmsg, fd0, reinterpret_cast<std::uint64_t>(&sl.x->msg), 1, 0);
        }
        s.msg_flags = static_cast<std::uint32_t>(a[3]);
        return {};
    case opcode::recv:    // recvfrom(fd, buf, len, flags, src, addrlen*)
    case opcode::recvmsg: // recvmsg(fd, msg, flags)
        if (n == nr::recvmsg) {
            prep(s, op, fd0, a[1], 1, 0);
            s.msg_flags = static_cast<std::uint32_t>(a[2]);
            return {};
        }
        if (!fits_u32(a[2])) return unsupported;
        if (a[4] == 0) {
            prep(s, opcode::recv, fd0, a[1], static_cast<std::uint32_t>(a[2]), 0);
        } else {
            // The syscall receives first and only then fails copying the address out (EFAULT for
            // a null or bad addrlen, EINVAL for a negative *addrlen), so the data is consumed;
            // RECVMSG would refuse at prep without receiving. Let a worker run the real syscall.
            socklen_t len = 0;
            auto* lenp = reinterpret_cast<socklen_t*>(a[5]);
            if (!lenp || !process::copy_from_user(&len, lenp, sizeof len) || static_cast<int>(len) < 0)
                return unsupported;
            sl.x->iov = {reinterpret_cast<void*>(a[1]), a[2]};
            sl.x->msg = {};
            sl.x->msg.msg_name = reinterpret_cast<void*>(a[4]);
            sl.x->msg.msg_namelen = len;
            sl.x->msg.msg_iov = &sl.x->iov;
            sl.x->msg.msg_iovlen = 1;
            sl.x->addrlen_out = lenp;
            sl.post = true;
            prep(s, opcode::recvmsg, fd0, reinterpret_cast<std::uint64_t>(&sl.x->msg), 1, 0);
        }
        s.msg_flags = static_cast<std::uint32_t>(a[3]);
        return {};
    case opcode::shutdown: prep(s, op, fd0, 0, static_cast<std::uint32_t>(a[1]), 0); return {};
    case opcode::renameat:
        if (n == nr::rename) {
            prep(s, op, AT_FDCWD, a[0], static_cast<std::uint32_t>(AT_FDCWD), a[1]);
            s.rename_flags = 0;
        } else { // renameat / renameat2 (olddfd, old, newdfd, new[, flags])
            prep(s, op, fd0, a[1], static_cast<std::uint32_t>(a[2]), a[3]);
            s.rename_flags = n == nr::renameat2 ? static_cast<std::uint32_t>(a[4]) : 0;
        }
        return {};
    case opcode::unlinkat:
        if (n == nr::unlinkat) {
            prep(s, op, fd0, a[1], 0, 0);
            s.unlink_flags = static_cast<std::uint32_t>(a[2]);
        } else { // unlink / rmdir
            prep(s, op, AT_FDCWD, a[0], 0, 0);
            s.unlink_flags = n == nr::rmdir ? AT_REMOVEDIR : 0;
        }
        return {};
    case opcode::mkdirat:
        if (n == nr::mkdir) prep(s, op, AT_FDCWD, a[0], static_cast<std::uint32_t>(a[1]), 0);
        else prep(s, op, fd0, a[1], static_cast<std::uint32_t>(a[2]), 0);
        return {};
    case opcode::symlinkat:
        if (n == nr::symlink) prep(s, op, AT_FDCWD, a[0], 0, a[1]);
        else prep(s, op, static_cast<int>(a[1]), a[0], 0, a[2]); // (target, newdfd, linkpath)
        return {};
    case opcode::linkat:
        if (n == nr::link) {
            prep(s, op, AT_FDCWD, a[0], static_cast<std::uint32_t>(AT_FDCWD), a[1]);
            s.hardlink_flags = 0;
        } else {
            prep(s, op, fd0, a[1], static_cast<std::uint32_t>(a[2]), a[3]);
            s.hardlink_flags = static_cast<std::uint32_t>(a[4]);
        }
        return {};
    case opcode::splice: { // (fd_in, off_in*, fd_out, off_out*, len, flags)
        // splice(2) refuses flags it does not know (SPLICE_F_FD_IN_FIXED among them) with
        // EINVAL; passed through, the SQE would read fd_in as a registered-file index.
        if (a[5] & ~static_cast<std::uint64_t>(splice_f_all)) return einval;
        if (!fits_u32(a[4])) return unsupported;
        auto* in = reinterpret_cast<loff_t*>(a[1]);
        auto* out = reinterpret_cast<loff_t*>(a[3]);
        sl.x->off_in_value = sl.x->off_out_value = -1;
        if (in && !process::copy_from_user(&sl.x->off_in_value, in, sizeof(loff_t))) return {outcome::immediate, -EFAULT};
        if (out && !process::copy_from_user(&sl.x->off_out_value, out, sizeof(loff_t)))
            return {outcome::immediate, -EFAULT};
        // -1 means "no offset" to the SQE, so a negative caller offset cannot be expressed.
        if ((in && sl.x->off_in_value < 0) || (out && sl.x->off_out_value < 0)) return unsupported;
        prep(s, op, static_cast<int>(a[2]), 0, static_cast<std::uint32_t>(a[4]), static_cast<std::uint64_t>(sl.x->off_out_value));
        s.splice_off_in = static_cast<std::uint64_t>(sl.x->off_in_value);
        s.splice_fd_in = fd0;
        s.splice_flags = static_cast<std::uint32_t>(a[5]);
        sl.x->off_in = in;
        sl.x->off_out = out;
        sl.post = true;
        return {};
    }
    case opcode::tee: // (fd_in, fd_out, len, flags)
        if (a[3] & ~static_cast<std::uint64_t>(splice_f_all)) return einval;
        if (!fits_u32(a[2])) return unsupported;
        prep(s, op, static_cast<int>(a[1]), 0, static_cast<std::uint32_t>(a[2]), 0);
        s.splice_off_in = 0;
        s.splice_fd_in = fd0;
        s.splice_flags = static_cast<std::uint32_t>(a[3]);
        return {};
    case opcode::epoll_ctl: prep(s, op, fd0, a[3], static_cast<std::uint32_t>(a[1]), a[2]); return {};
    case opcode::pipe: // (fds[2][, flags]); the kernel requires fd == 0
        prep(s, op, 0, a[0], 0, 0);
        s.rw_flags = n == nr::pipe2 ? static_cast<__kernel_rwf_t>(a[1]) : 0;
        return {};
    default: return unsupported;
    }
}

//! One entry into `s` per its route: operation or syscall, plus the per-entry modifiers.
//! `single`: an emulated multishot operation's one-shot form.
inline translation translate(const submit_entry& e, route_info r, io_uring_sqe& s, uring_slot& sl,
                             const translate_env& env) noexcept {
    const bool op = e.number() >= operation_base;
    if ((e.flags & entry_flags::bundle) && e.number() != static_cast<std::uint32_t>(operation::recv_select) &&
        e.number() != static_cast<std::uint32_t>(operation::recv_multishot)) [[unlikely]]
        return {outcome::immediate, -EINVAL}; // a bundle is a recv's, into provided buffers
    sl.post = sl.posts_notif = false; // set by the translations that need them
    translation t = op ? translate_operation(e, r.emulated, s, sl, env) : translate_syscall(e, r.op, s, sl, env);
    if (t.kind != outcome::queued) return t;
    // Both zero-copy sends ask the kernel to say in the notification whether it copied.
    if (op && (e.number() == static_cast<std::uint32_t>(operation::send_zc) ||
               e.number() == static_cast<std::uint32_t>(operation::sendmsg_zc)) && env.zc_report_usage)
        s.ioprio |= send_zc_report_usage;
    // entry_flags modifiers mirror IOSQE_* from bit 8 (fixed_file, drain, link, hardlink, async,
    // buffer_select); skip_success is ksvc's own: the CQE still arrives, so the slot is released.
    s.flags |= static_cast<std::uint8_t>((e.flags >> 8) & 0x3fu);
    if (e.flags & entry_flags::buffer_select) s.buf_group = e.buffer_group();
    sl.fd = (e.flags & entry_flags::fixed_file) ? -1 : s.fd;
    return t;
}

//! The completion for one CQE of slot `sl` (post-processing the syscall semantics that the
//! SQE does not have: recvfrom's *addrlen, splice's offsets, close of an io_uring fd).
inline completion_entry finish(uring_slot& sl, std::int64_t res, unsigned cqe_flags) noexcept {
    namespace nr = ksvc::syscalls::x86_64;
    if (sl.post && res >= 0 && sl.x->addrlen_out) [[unlikely]] {
        if (!process::copy_to_user(sl.x->addrlen_out, &sl.x->msg.msg_namelen, sizeof(socklen_t))) res = -EFAULT;
    }
    if (sl.post && res > 0 && (sl.x->off_in || sl.x->off_out)) [[unlikely]] {
        const loff_t in = sl.x->off_in_value + res, out = sl.x->off_out_value + res;
        if ((sl.x->off_in && !process::copy_to_user(sl.x->off_in, &in, sizeof in)) ||
            (sl.x->off_out && !process::copy_to_user(sl.x->off_out, &out, sizeof out)))
            res = -EFAULT; // as splice(2) when it cannot store the offsets back
    }
    // IORING_OP_CLOSE refuses io_uring descriptors (EBADF) where close(2) succeeds. Closing by
    // syscall now is linearizable: the call was still in flight.
    if (res == -EBADF && sl.nr == nr::close && sl.route.op == opcode::close) {
        res = ::syscall(SYS_close, sl.fd) == 0 ? 0 : -static_cast<std::int64_t>(errno);
    }
    if (res == -EPIPE) process::consume_sigpipe();
    completion_entry c{sl.corr_id, res, 0, 0, sl.flags, sl.nr};
    if (cqe_flags & IORING_CQE_F_MORE) c.flags |= completion_flags::more;
    if (cqe_flags & IORING_CQE_F_BUFFER) {
        c.flags |= completion_flags::buffer;
        c.aux = cqe_flags >> IORING_CQE_BUFFER_SHIFT;
    }
    if (cqe_flags & IORING_CQE_F_SOCK_NONEMPTY) c.flags |= completion_flags::sock_nonempty;
    if (cqe_flags & cqe_f_buf_more) c.flags |= completion_flags::buffer_more;
    if (cqe_flags & IORING_CQE_F_NOTIF) {
        c.flags |= completion_flags::notif;
        if (static_cast<std::uint32_t>(res) & notif_usage_zc_copied) c.aux |= completion_flags::zc_copied_aux;
        c.result = 0;
    }
    return c;
}

//! Requested ring setup, after the feature types and the instance's overrides.
struct ring_request;

class call_ring_pool;


class uring_engine {
public:
    //! Sets the ring up (see io_uring_backend for the feature ladder). Throws std::system_error
    //! naming the call and the reason, or errc::io_uring_unavailable with the snapshot's reason.
    uring_engine(const capabilities& caps, const ring_request& req);
    ~uring_engine();
    uring_engine(const uring_engine&) = delete;
    uring_engine& operator=(const uring_engine&) = delete;

    //! On the thread that will drive the ring (the loop thread): enables a ring created
    //! disabled (so SINGLE_ISSUER names this thread) and makes the registrations that belong to
    //! a thread (the ring fd, io-wq limits). Idempotent per thread.
    void attach_to_this_thread() noexcept;
    //! Whether a thread has attached the ring (its features are final from then on).
    [[nodiscard]] bool attached() const noexcept { return attached_.load(std::memory_order_acquire); }
    //! Teardown on the driving thread after the drain: unregisters, unmaps. Idempotent.
    void close_on_this_thread() noexcept;
    //! Adds a resource to register on the driving thread (before the ring is first driven; a
    //! later one is registered by the next attach). A refusal is logged once and kept in
    //! features().notes; the entries that name the resource then fail as the kernel says.
    void add_resource(const ring_resource& r);
    //! The result of registering resource `i` (in add order): 0, -errno, or 1 when not yet tried.
    [[nodiscard]] int resource_result(std::size_t i) const noexcept {
        return i < resources_.size() ? resources_[i].result : -EINVAL;
    }

    [[gnu::always_inline]] status submit(const submit_entry& e, route_info r) noexcept {
        if (forked()) [[unlikely]]
            return status::forked_child;
        if (e.number() == static_cast<std::uint32_t>(operation::cancel)) return submit_cancel(e);
        if (busy_ + ready_.size() >= capacity_) return status::ring_full;
        if (replenishing_) [[unlikely]]
            replenish(); // buffers given back go into the SQ before the entries that may need them
        if (e.flags & entry_flags::drain) [[unlikely]]
            env_.cqe_skip = false; // a ring that drains never turns drain off (see skip_success)
        if (free_list_.empty()) [[unlikely]]
            grow_slots(1);
        const std::uint32_t idx = free_list_.back();
        uring_slot& sl = slots_[idx];
        // Translate straight into the ring's SQE (no staging copy); an SQE that ends up unused
        // is handed back: liburing hands SQEs out by advancing sqe_tail, nothing else saw it.
        io_uring_sqe* sqe = get_sqe();
        if (!sqe) return status::ring_full;
        std::memset(sqe, 0, sizeof *sqe);
        const translation t = translate(e, r, *sqe, sl, env_);
        if (t.kind != outcome::queued) {
            --ring_.sq.sqe_tail;
            if (t.kind == outcome::unsupported) return status::unsupported;
            ready_.push_back(make_completion(e, t.immediate_result));
            return status::ok;
        }
        occupy(idx, e, r, *sqe);
        return status::ok;
    }

    //! A link/hardlink chain, placed all or nothing: either every entry is in the SQ (never
    //! split across two enters) or none is. ring_full: not now (retry after reaping);
    //! unsupported: some entry has no exact SQE; chain_too_long: it can never fit.
    status submit_chain(std::span<const submit_entry> chain, const route_info* routes) noexcept;

    int flush() noexcept {
        if (forked()) return -ECHILD;
        if (replenishing_) [[unlikely]]
            replenish();
        if (io_uring_sq_ready(&ring_) == 0) return 0;
        return enter_submit(0);
    }
    //! flush(), and with DEFER_TASKRUN run the deferred task work in the same enter: what it
    //! posts is reapable now, as a raw loop's submit_and_wait gets it once per turn.
    int flush_and_run() noexcept {
        if (!defer_taskrun_ || busy_ + internal_ == 0) return flush();
        if (forked()) return -ECHILD;
        if (replenishing_) [[unlikely]]
            replenish();
        return enter_submit(0, true);
    }

    //! The completions posted so far. `run_task_work`: with DEFER_TASKRUN and nothing posted,
    //! enter the kernel to run the deferred work first; false when the caller is about to
    //! sleep in an enter that runs it anyway (one syscall per loop turn, not two).
    [[gnu::always_inline]] std::size_t reap(std::span<completion_entry> out, bool run_task_work = true) noexcept {
        std::size_t n = 0;
        if (!ready_.empty()) [[unlikely]] { // in the order they were decided
            n = std::min(out.size(), ready_.size());
            std::copy_n(ready_.begin(), n, out.begin());
            ready_.erase(ready_.begin(), ready_.begin() + static_cast<std::ptrdiff_t>(n));
        }
        if (forked()) return n;
        // DEFER_TASKRUN: completions are posted only when the owner enters the kernel to get
        // events; with nothing visible and work in flight, run the deferred task work now.
        // A CQ that overflowed: the kernel holds the rest (NODROP) until an enter flushes them.
        if (io_uring_cq_ready(&ring_) == 0) {
            if (IO_URING_READ_ONCE(*ring_.sq.kflags) & IORING_SQ_CQ_OVERFLOW) [[unlikely]] {
                ++overflow_flushes_;
                io_uring_get_events(&ring_);
            } else if (run_task_work && defer_taskrun_ && busy_ + internal_ > 0) {
                io_uring_get_events(&ring_);
            }
        }
        unsigned head, seen = 0;
        io_uring_cqe* cqe = nullptr;
        io_uring_for_each_cqe(&ring_, head, cqe) {
            const std::uint64_t ud = cqe->user_data;
            if (ud >= first_internal_tag) {
                ++seen;
                if (ud == resource_tag && cqe->res < 0) [[unlikely]]
                    note_resource_error(cqe->res);
                if (ud == doorbell_tag) doorbell_armed_ = false;
                if (ud != liburing_timeout_tag) --internal_;
                continue;
            }
            if (n == out.size()) break;
            ++seen;
            if (ud & message_bit) {
                out[n++] = completion_entry{ud & message_mask, cqe->res, completion_flags::message, 0, 0,
                                            static_cast<std::uint32_t>(operation::msg_ring)};
                continue;
            }
            if (deliver_cqe(static_cast<std::uint32_t>(ud - 1), cqe->res, cqe->flags, out[n])) ++n;
        }
        io_uring_cq_advance(&ring_, seen);
        return n;
    }

    std::error_code cancel(std::uint64_t corr_id) noexcept;
    std::size_t cancel_all() noexcept;
    int wait(int fd, int timeout_ms) noexcept;
    //! wait() with the doorbell a futex word (IORING_OP_FUTEX_WAIT, 6.7; -EOPNOTSUPP without it):
    //! wakes when the word leaves 0 and a FUTEX_WAKE is issued on it.
    int wait_futex(const std::uint32_t* word, int timeout_ms) noexcept;

    //! A blocking call on the calling thread through a private ring (one per concurrent caller,
    //! pooled): no hand-off to the loop thread. `timeout_ms` >= 0 links a timeout. Returns false
    //! when the entry must take another path (it has no exact SQE, or no private ring could be
    //! made); `out` is then untouched.
    bool call_here(const submit_entry& e, route_info r, int timeout_ms, completion_entry& out) noexcept;
    //! stop(): completes every private-ring call in flight with -ECANCELED (or its result).
    void interrupt_calls() noexcept;

    //! Whether syscall `nr` (routed to io_uring) has an SQE translation; for the route tests.
    static bool translates(std::uint32_t nr) noexcept;

    [[nodiscard]] std::size_t inflight() const noexcept { return busy_ + ready_.size(); }
    [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
    [[nodiscard]] bool supports(opcode op) const noexcept { return caps_.has(op); }
    [[nodiscard]] int ring_fd() const noexcept { return ring_.ring_fd; }
    [[nodiscard]] const effective_features& features() const noexcept { return features_; }
    [[nodiscard]] const capabilities& caps() const noexcept { return caps_; }
    //! The last persistent error an enter returned (0: none); the entries it hit were failed with it.
    [[nodiscard]] int last_enter_error() const noexcept { return last_enter_error_; }
    //! Times the CQ had overflowed and its overflow list was flushed.
    [[nodiscard]] std::uint64_t overflow_flushes() const noexcept { return overflow_flushes_; }
    //! op::send_auto entries sent as a plain SEND (below the threshold, a local peer, no SEND_ZC).
    [[nodiscard]] std::uint64_t auto_sends_plain() const noexcept { return auto_sends_plain_; }
    //! Chain members whose success the kernel did not post (IOSQE_CQE_SKIP_SUCCESS).
    [[nodiscard]] std::uint64_t kernel_skipped() const noexcept { return kernel_skipped_; }
    //! Native multishot streams the kernel ended on a full CQ and ksvc re-armed.
    [[nodiscard]] std::uint64_t stream_rearms() const noexcept { return stream_rearms_; }

private:
    bool forked() const noexcept { return fork_gen_ != process::fork_generation(); }
    int wait_on(int fd, const std::uint32_t* word, int timeout_ms) noexcept;

    io_uring_sqe* get_sqe() noexcept {
        io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
        if (!sqe) [[unlikely]] {
            enter_submit(0);
            sqe = io_uring_get_sqe(&ring_);
            // SQPOLL: the poller frees SQ room on its own time; waiting for it takes microseconds.
            for (int i = 0; !sqe && sqpoll_ && i < 1000; ++i) {
                io_uring_sqring_wait(&ring_);
                sqe = io_uring_get_sqe(&ring_);
            }
        }
        return sqe;
    }

    void occupy(std::uint32_t idx, const submit_entry& e, route_info r, io_uring_sqe& sqe) noexcept {
        uring_slot& sl = slots_[idx];
        sqe.user_data = idx + 1;
        sl.corr_id = e.corr_id;
        sl.nr = e.nr;
        sl.flags = e.flags;
        const bool stream = is_stream(e.number());
        if (r.emulated || stream) [[unlikely]]
            for (int i = 0; i < 3; ++i) sl.stream_args[i] = static_cast<std::uint32_t>(e.args[i]);
        sl.route = r;
        sl.busy = true;
        sl.rearm = r.emulated;
        sl.native_stream = stream && !r.emulated;
        sl.cancel_requested = false;
        sl.kernel_skips = false;
        sl.chain_serial = 0;
        sl.chain_prev = sl.chain_next = 0;
        free_list_.pop_back();
        ++busy_;
    }

    void release(std::uint32_t idx) noexcept {
        uring_slot& sl = slots_[idx];
        sl.busy = false;
        sl.posts_notif = false;
        sl.post = false;
        free_list_.push_back(idx);
        --busy_;
    }

    // One CQE of slot idx into `out`; false when nothing is to be delivered.
    bool deliver_cqe(std::uint32_t idx, std::int32_t res, unsigned flags, completion_entry& out) noexcept {
        uring_slot& sl = slots_[idx];
        out = finish(sl, res, flags);
        if (sl.chain_serial) [[unlikely]]
            settle_chain(idx, res, true);
        // A stream's completion, or send_zc's result: the slot stays busy (the notification
        // comes last).
        if (flags & IORING_CQE_F_MORE) return true;
        if (sl.posts_notif) [[unlikely]] { // send_auto as a plain send: the buffer is free now
            out.flags |= completion_flags::more;
            completion_entry n{sl.corr_id, 0, completion_flags::notif, completion_flags::zc_copied_aux, sl.flags, sl.nr};
            ready_.push_back(n);
            ++auto_sends_plain_;
            release(idx);
            return true;
        }
        // A native stream ends with a result that would have continued it only when the kernel
        // could not post its next completion (a full CQ): the data or connection is in this
        // completion, the rest waits in the socket. Re-armed, the stream goes on in order.
        if ((sl.rearm || sl.native_stream) && !sl.cancel_requested && continues_stream(sl, res) && rearm(idx)) {
            out.flags |= completion_flags::more | (sl.rearm ? completion_flags::emulated : completion_flags::rearmed);
            if (sl.native_stream) ++stream_rearms_;
            return true;
        }
        if (sl.rearm) out.flags |= completion_flags::emulated;
        release(idx);
        return true;
    }

    static bool continues_stream(const uring_slot& sl, std::int32_t res) noexcept {
        switch (sl.route.op) {
        case opcode::poll_add: return res > 0;
        case opcode::accept: return res >= 0;
        case opcode::recv: return res > 0;
        default: return false;
        }
    }

    bool rearm(std::uint32_t idx) noexcept; // out of line: the rare emulation path
    //! Constructs fresh slots (a batch, at least `need`, within capacity) into the free list.
    void grow_slots(std::size_t need) noexcept;
    //! A chain member completed with `res`: the members before it that the kernel skipped
    //! succeeded (result 0, which the dispatcher drops: skip_success). A skipping member that
    //! failed a soft link makes the kernel cancel the rest without CQEs: they get -ECANCELED
    //! here. Slots are released; `report` false (teardown) only releases.
    void settle_chain(std::uint32_t idx, std::int32_t res, bool report) noexcept;
    status submit_cancel(const submit_entry& e) noexcept;
    //! Lets every resource with a replenish hook queue its SQEs (see ring_resource).
    void replenish() noexcept;
    void note_resource_error(int res) noexcept;
    bool queue_cancel(std::uint64_t user_data) noexcept;
    int enter_submit(unsigned wait_nr, bool get_events = false) noexcept;
    int enter_failed(int r) noexcept;
    void fail_unsubmitted(int err) noexcept;

    io_uring ring_{};
    capabilities caps_;
    translate_env env_{};
    bool defer_taskrun_ = false;
    bool sqpoll_ = false;
    bool doorbell_armed_ = false;
    bool ring_open_ = false;
    bool disabled_ = false;     // created with R_DISABLED, enabled by attach_to_this_thread()
    std::atomic<bool> attached_{false};
    bool want_restrictions_ = false; // restricted<>: registered by attach_to_this_thread, before enabling
    bool want_ring_fd_ = false; // registrations that belong to the driving thread
    bool want_iowq_ = false;
    bool want_resources_ = false;
    bool want_files_ = false;
    bool replenishing_ = false; // some attached resource has a replenish hook
    bool resource_error_noted_ = false;
    struct registered_resource {
        ring_resource r;
        int result = 1; // 1: not attached yet
        bool replenish = false;
    };
    std::vector<registered_resource> resources_;
    // The in-flight table: `capacity_` slots reserved (mapped, untouched), the first
    // `constructed_` of them in use or in the free list. A server sized for 16 384 entries pays
    // in memory only for the entries it ever had in flight at once.
    uring_slot* slots_ = nullptr;
    slot_scratch* scratch_ = nullptr; // capacity_ entries, mapped beside the slots
    std::size_t capacity_ = 0, constructed_ = 0;
    std::vector<std::uint32_t> free_list_; // reserved to capacity_: pushes never allocate
    std::vector<completion_entry> ready_; // results decided at submit, reaped first
    std::vector<io_uring_sqe*> chain_sqes_;
    std::size_t busy_ = 0;
    std::size_t internal_ = 0; // doorbell poll and cancel requests in flight
    int last_enter_error_ = 0;
    std::uint64_t overflow_flushes_ = 0;
    std::uint64_t stream_rearms_ = 0;
    std::uint64_t kernel_skipped_ = 0;
    std::uint64_t auto_sends_plain_ = 0;
    std::uint32_t chain_serial_ = 0;
    std::uint64_t fork_gen_ = 0;
    effective_features features_;
    std::unique_ptr<ring_request> request_;
    std::unique_ptr<call_ring_pool> calls_;
};

} // namespace detail
} // namespace ksvc
