#pragma once
//! Typed builders for ksvc operations (core/operations.hpp): ksvc::op::poll(fd, POLLIN) etc.
//! -> submit_entry, next to ksvc::sys::* for syscalls, plus the per-entry modifiers.
//!
//! Argument lifetime: what an entry points to (buffers, iovecs, msghdrs, addresses, paths) is
//! read by the kernel when the loop flushes and written until the completion: it must stay
//! valid until the entry's completion (the last one, for multishot), not only until submit().
//! Durations travel by value (the timespec lives in ksvc's in-flight slot).
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>

#include <sys/socket.h>

#include <ksvc/core/entry.hpp>
#include <ksvc/core/operations.hpp>
#include <ksvc/executor/sys.hpp>

namespace ksvc::op {

namespace detail {
template <class... A>
constexpr submit_entry make(operation o, A... a) noexcept {
    submit_entry e;
    e.nr = static_cast<std::uint32_t>(o);
    std::size_t i = 0;
    ((e.args[i++] = static_cast<std::uint64_t>(a)), ...);
    return e;
}
inline std::uint64_t ptr(const void* p) noexcept { return reinterpret_cast<std::uint64_t>(p); }
inline std::uint64_t ns(std::chrono::nanoseconds d) noexcept {
    return d.count() < 0 ? 0 : static_cast<std::uint64_t>(d.count());
}
} // namespace detail

inline submit_entry nop() noexcept { return detail::make(operation::nop); }

//! Multishot accept: a completion per connection (the new fd), `more` until the stream ends.
inline submit_entry accept_multishot(int fd, int flags = 0) noexcept {
    return detail::make(operation::accept_multishot, static_cast<std::uint64_t>(fd), static_cast<std::uint32_t>(flags));
}
//! Multishot recv from buffer group `group`: a completion per buffer (flags `buffer`, aux = id).
inline submit_entry recv_multishot(int fd, std::uint16_t group, int flags = 0, std::uint32_t max_len = 0) noexcept {
    submit_entry e = detail::make(operation::recv_multishot, static_cast<std::uint64_t>(fd),
                                  static_cast<std::uint32_t>(flags), max_len);
    e.flags |= entry_flags::buffer_select;
    e.nr |= static_cast<std::uint32_t>(group) << 16;
    return e;
}
//! One recv into a buffer the kernel picks from group `group`.
inline submit_entry recv_select(int fd, std::uint32_t len, std::uint16_t group, int flags = 0) noexcept {
    submit_entry e = detail::make(operation::recv_select, static_cast<std::uint64_t>(fd), len, static_cast<std::uint32_t>(flags));
    e.flags |= entry_flags::buffer_select;
    e.nr |= static_cast<std::uint32_t>(group) << 16;
    return e;
}
//! One send from the buffers of group `group` (6.10).
inline submit_entry send_select(int fd, std::uint32_t len, std::uint16_t group, int flags = 0) noexcept {
    submit_entry e = detail::make(operation::send_select, static_cast<std::uint64_t>(fd), len, static_cast<std::uint32_t>(flags));
    e.flags |= entry_flags::buffer_select;
    e.nr |= static_cast<std::uint32_t>(group) << 16;
    return e;
}
//! Read into / write from registered buffer `index` (which `buf` must lie in).
inline submit_entry read_fixed(int fd, void* buf, std::uint32_t len, std::uint64_t off, std::uint16_t index) noexcept {
    return detail::make(operation::read_fixed, static_cast<std::uint64_t>(fd), detail::ptr(buf), len, off, index);
}
inline submit_entry write_fixed(int fd, const void* buf, std::uint32_t len, std::uint64_t off, std::uint16_t index) noexcept {
    return detail::make(operation::write_fixed, static_cast<std::uint64_t>(fd), detail::ptr(buf), len, off, index);
}
//! A lease of a registered buffer pool (registered_buffers::lease): its buffer, its registered
//! index, whether the pool is registered now, and (vectored_lease) whether its ring's kernel has
//! READV_FIXED / WRITEV_FIXED.
template <class Lease>
concept registered_lease = requires(const Lease& l) {
    { l.index() } -> std::convertible_to<std::uint16_t>;
    { l.registered() } -> std::convertible_to<bool>;
    { l.data() } -> std::convertible_to<std::span<std::byte>>;
};
template <class Lease>
concept vectored_lease = registered_lease<Lease> && requires(const Lease& l) {
    { l.vectored() } -> std::convertible_to<bool>;
    static_cast<bool>(l);
};
//! read_fixed / write_fixed through a lease of a registered buffer pool: READ_FIXED /
//! WRITE_FIXED while the pool is registered, else a plain pread / pwrite of the same bytes
//! (registration can fail, e.g. under RLIMIT_MEMLOCK: slower, never wrong). `len` is clamped
//! to the lease.
template <registered_lease Lease>
submit_entry read_fixed(int fd, const Lease& l, std::size_t len, std::uint64_t off) noexcept {
    const std::span<std::byte> d = l.data();
    const auto n = static_cast<std::uint32_t>(len < d.size() ? len : d.size());
    if (l.registered()) return read_fixed(fd, d.data(), n, off, l.index());
    return sys::pread(fd, d.data(), n, static_cast<off_t>(off));
}
template <registered_lease Lease>
submit_entry write_fixed(int fd, const Lease& l, std::size_t len, std::uint64_t off) noexcept {
    const std::span<std::byte> d = l.data();
    const auto n = static_cast<std::uint32_t>(len < d.size() ? len : d.size());
    if (l.registered()) return write_fixed(fd, d.data(), n, off, l.index());
    return sys::pwrite(fd, d.data(), n, static_cast<off_t>(off));
}
//! Vectored read into / write from registered buffer `index`: every iovec must lie inside it
//! (else EFAULT). READV_FIXED / WRITEV_FIXED (6.15; refused below). `iov` must stay valid until
//! the completion.
inline submit_entry readv_fixed(int fd, const iovec* iov, unsigned count, std::uint64_t off, std::uint16_t index) noexcept {
    return detail::make(operation::readv_fixed, static_cast<std::uint64_t>(fd), detail::ptr(iov), count, off, index);
}
inline submit_entry writev_fixed(int fd, const iovec* iov, unsigned count, std::uint64_t off, std::uint16_t index) noexcept {
    return detail::make(operation::writev_fixed, static_cast<std::uint64_t>(fd), detail::ptr(iov), count, off, index);
}
namespace detail {
// No pool has this index (registered_buffers holds at most 16384): the kernel answers EFAULT.
inline constexpr std::uint16_t no_buffer_index = UINT16_MAX;
template <class Lease>
bool inside(const Lease& l, const iovec* iov, unsigned count) noexcept {
    const std::span<std::byte> d = l.data();
    const auto lo = reinterpret_cast<std::uintptr_t>(d.data()), hi = lo + d.size();
    for (unsigned i = 0; i < count; ++i) {
        const auto b = reinterpret_cast<std::uintptr_t>(iov[i].iov_base);
        if (b < lo || b > hi || iov[i].iov_len > hi - b) return false;
    }
    return true;
}
// The vectored lease builders: the plain preadv / pwritev only for a registered lease whose
// ring's kernel lacks the native op and whose iovecs lie inside it; else the native entry, with
// the lease's index — or, for an empty lease, an index no pool has — which the kernel checks.
template <class Lease>
submit_entry vectored_fixed(bool read, int fd, const Lease& l, const iovec* iov, unsigned count, std::uint64_t off) noexcept {
    if (l && !l.vectored() && inside(l, iov, count))
        return read ? sys::preadv(fd, iov, static_cast<int>(count), static_cast<off_t>(off))
                    : sys::pwritev(fd, iov, static_cast<int>(count), static_cast<off_t>(off));
    return make(read ? operation::readv_fixed : operation::writev_fixed, static_cast<std::uint64_t>(fd), ptr(iov), count, off,
                l ? l.index() : no_buffer_index);
}
} // namespace detail
//! The same through a lease of a registered pool, `iov` pointing inside the lease: READV_FIXED /
//! WRITEV_FIXED where the pool is registered and the kernel has them (lease.vectored()), else a
//! plain preadv / pwritev of the same bytes. An iovec outside the lease, or an empty lease,
//! builds the native entry whatever the kernel, so it fails (EFAULT, or errc::unsupported below
//! 6.15) instead of reading or writing memory the lease does not own.
template <vectored_lease Lease>
submit_entry readv_fixed(int fd, const Lease& l, const iovec* iov, unsigned count, std::uint64_t off) noexcept {
    return detail::vectored_fixed(true, fd, l, iov, count, off);
}
template <vectored_lease Lease>
submit_entry writev_fixed(int fd, const Lease& l, const iovec* iov, unsigned count, std::uint64_t off) noexcept {
    return detail::vectored_fixed(false, fd, l, iov, count, off);
}
//! Zero-copy send: the result, then a `notif` completion once the kernel let go of `buf`
//! (aux has completion_flags::zc_copied_aux when it copied anyway). Keep `buf` until then.
inline submit_entry send_zc(int fd, const void* buf, std::uint32_t len, int flags = 0) noexcept {
    return detail::make(operation::send_zc, static_cast<std::uint64_t>(fd), detail::ptr(buf), len, static_cast<std::uint32_t>(flags));
}
//! send_zc where zero copy can pay, plain send elsewhere (operation::send_auto): the same two
//! completions either way, so the buffer's owner waits for the notification in both cases.
inline submit_entry send_auto(int fd, const void* buf, std::uint32_t len, int flags = 0) noexcept {
    return detail::make(operation::send_auto, static_cast<std::uint64_t>(fd), detail::ptr(buf), len, static_cast<std::uint32_t>(flags));
}
//! send_zc of a msghdr's iovecs: the same two completions (zc_copied_aux in the notification
//! when the kernel copied). Keep the msghdr and its buffers until the notification.
inline submit_entry sendmsg_zc(int fd, const msghdr* m, int flags = 0) noexcept {
    return detail::make(operation::sendmsg_zc, static_cast<std::uint64_t>(fd), detail::ptr(m), static_cast<std::uint32_t>(flags));
}
//! One readiness completion (the ready poll mask).
inline submit_entry poll(int fd, std::uint32_t events) noexcept {
    return detail::make(operation::poll, static_cast<std::uint64_t>(fd), events);
}
//! A completion each time `fd` is ready, `more` until cancelled (emulated before 5.13).
inline submit_entry poll_multishot(int fd, std::uint32_t events) noexcept {
    return detail::make(operation::poll_multishot, static_cast<std::uint64_t>(fd), events);
}
//! Completes with -ETIME after `d`, or with 0 once `count` other completions were posted.
inline submit_entry timeout(std::chrono::nanoseconds d, std::uint32_t count = 0, std::uint32_t flags = 0) noexcept {
    return detail::make(operation::timeout, detail::ns(d), count, flags);
}
//! Bounds the entry before it (which must carry the `link` modifier): when `d` passes first,
//! that entry completes with -ECANCELED and this one with -ETIME.
inline submit_entry link_timeout(std::chrono::nanoseconds d, std::uint32_t flags = 0) noexcept {
    return detail::make(operation::link_timeout, detail::ns(d), flags);
}
//! Cancels Tier-1 work in flight: the result is how many requests were asked to stop
//! (each then completes with -ECANCELED, or with its result if it finished first), or -ENOENT.
inline submit_entry cancel(std::uint64_t corr_id) noexcept { return detail::make(operation::cancel, cancel_by::corr_id, corr_id); }
inline submit_entry cancel_fd(int fd) noexcept {
    return detail::make(operation::cancel, cancel_by::fd, static_cast<std::uint64_t>(fd));
}
inline submit_entry cancel_all() noexcept { return detail::make(operation::cancel, cancel_by::all, 0); }
//! Closes registered-file slot `index`.
inline submit_entry close_direct(std::uint32_t index) noexcept { return detail::make(operation::close_direct, index); }
//! Updates registered-file slots from `offset` with `fds`.
inline submit_entry files_update(std::span<int> fds, std::uint32_t offset) noexcept {
    return detail::make(operation::files_update, detail::ptr(fds.data()), fds.size(), offset);
}
//! A real fd for registered file `index` (O_CLOEXEC unless flags say IORING_FIXED_FD_NO_CLOEXEC).
inline submit_entry fixed_fd_install(std::uint32_t index, std::uint32_t flags = 0) noexcept {
    submit_entry e = detail::make(operation::fixed_fd_install, index, flags);
    e.flags |= entry_flags::fixed_file;
    return e;
}
//! Posts a completion on the ring `ring_fd` (another instance's backend().ring_fd()): its
//! consumer receives corr_id `target_corr_id` (62 bits), result `value`, flag `message`.
inline submit_entry msg_ring(int ring_fd, std::uint32_t value, std::uint64_t target_corr_id) noexcept {
    return detail::make(operation::msg_ring, static_cast<std::uint64_t>(ring_fd), value, target_corr_id);
}

// ---- direct descriptors (a registered-file table: io_uring_backend<fixed_files<N>>) -----------
//! One connection into a free slot of the table: the result is the slot (direct_fd{result}).
inline submit_entry accept_direct(int listen_fd, int flags = 0) noexcept {
    return detail::make(operation::accept_direct, static_cast<std::uint64_t>(listen_fd), static_cast<std::uint32_t>(flags));
}
//! A slot per connection, `more` until the stream ends (-ENFILE when the table is full).
inline submit_entry accept_multishot_direct(int listen_fd, int flags = 0) noexcept {
    return detail::make(operation::accept_multishot_direct, static_cast<std::uint64_t>(listen_fd),
                        static_cast<std::uint32_t>(flags));
}
//! openat into a free slot: the result is the slot. `path` must live until the completion.
inline submit_entry openat_direct(int dfd, const char* path, int flags, unsigned mode = 0) noexcept {
    return detail::make(operation::openat_direct, static_cast<std::uint64_t>(static_cast<std::int64_t>(dfd)),
                        detail::ptr(path), static_cast<std::uint32_t>(flags), mode);
}
namespace detail {
inline submit_entry on_slot(submit_entry e) noexcept {
    e.flags |= entry_flags::fixed_file;
    return e;
}
inline int slot(direct_fd d) noexcept { return static_cast<int>(d.index); }
} // namespace detail
inline submit_entry read(direct_fd d, void* buf, std::size_t n) noexcept { return detail::on_slot(sys::read(detail::slot(d), buf, n)); }
inline submit_entry write(direct_fd d, const void* buf, std::size_t n) noexcept {
    return detail::on_slot(sys::write(detail::slot(d), buf, n));
}
inline submit_entry pread(direct_fd d, void* buf, std::size_t n, off_t off) noexcept {
    return detail::on_slot(sys::pread(detail::slot(d), buf, n, off));
}
inline submit_entry pwrite(direct_fd d, const void* buf, std::size_t n, off_t off) noexcept {
    return detail::on_slot(sys::pwrite(detail::slot(d), buf, n, off));
}
inline submit_entry recv(direct_fd d, void* buf, std::size_t n, int flags = 0) noexcept {
    return detail::on_slot(sys::recvfrom(detail::slot(d), buf, n, flags, nullptr, nullptr));
}
inline submit_entry send(direct_fd d, const void* buf, std::size_t n, int flags = 0) noexcept {
    return detail::on_slot(sys::sendto(detail::slot(d), buf, n, flags, nullptr, 0));
}
inline submit_entry recv_multishot(direct_fd d, std::uint16_t group, int flags = 0, std::uint32_t max_len = 0) noexcept {
    return detail::on_slot(recv_multishot(detail::slot(d), group, flags, max_len));
}
inline submit_entry recv_select(direct_fd d, std::uint32_t len, std::uint16_t group, int flags = 0) noexcept {
    return detail::on_slot(recv_select(detail::slot(d), len, group, flags));
}
namespace detail {
template <class Lease>
concept spans_segments = requires(const Lease& l) {
    { l.segment_count() } -> std::convertible_to<std::size_t>;
    { l.as_msghdr() } -> std::convertible_to<const msghdr*>;
};
} // namespace detail

//! A send of the bytes a lease holds (a provided or registered buffer; a bundle lease of
//! several buffers goes out as one sendmsg over its segments). The lease must stay alive until
//! the send's completion — or, for a send that skips its success in a chain, until a later
//! member's completion: dropping it recycles the buffer the kernel is still reading.
template <class Lease>
    requires requires(const Lease& l) {
        { l.data() } -> std::convertible_to<std::span<std::byte>>;
    }
submit_entry send(int fd, const Lease& l, int flags = 0) noexcept {
    if constexpr (detail::spans_segments<Lease>) {
        if (l.segment_count() > 1) return sys::sendmsg(fd, l.as_msghdr(), flags);
    }
    const std::span<std::byte> d = l.data();
    return sys::sendto(fd, d.data(), d.size(), flags, nullptr, 0);
}
template <class Lease>
    requires requires(const Lease& l) {
        { l.data() } -> std::convertible_to<std::span<std::byte>>;
    }
submit_entry send(direct_fd fd, const Lease& l, int flags = 0) noexcept {
    if constexpr (detail::spans_segments<Lease>) {
        if (l.segment_count() > 1) return detail::on_slot(sys::sendmsg(detail::slot(fd), l.as_msghdr(), flags));
    }
    const std::span<std::byte> d = l.data();
    return send(fd, d.data(), d.size(), flags);
}
inline submit_entry close(direct_fd d) noexcept { return close_direct(d.index); }
inline submit_entry fixed_fd_install(direct_fd d, std::uint32_t flags = 0) noexcept { return fixed_fd_install(d.index, flags); }

// ---- modifiers -------------------------------------------------------------------------------
inline submit_entry with(submit_entry e, std::uint32_t modifiers) noexcept {
    e.flags |= modifiers & entry_flags::modifier_mask;
    return e;
}
inline submit_entry linked(submit_entry e) noexcept { return with(e, entry_flags::link); }
//! No completion when it succeeds (see entry_flags::skip_success): in a chain, the kernel posts
//! none either, and a later member's completion says this one succeeded.
inline submit_entry skip_success(submit_entry e) noexcept { return with(e, entry_flags::skip_success); }
inline submit_entry hardlinked(submit_entry e) noexcept { return with(e, entry_flags::hardlink); }
//! A recv_select / recv_multishot whose completions may each fill several provided buffers
//! (see entry_flags::bundle): fewer completions for a stream that arrives faster than it is read.
inline submit_entry bundled(submit_entry e) noexcept { return with(e, entry_flags::bundle); }
inline submit_entry tagged(submit_entry e, std::uint64_t corr_id) noexcept {
    e.corr_id = corr_id;
    return e;
}

} // namespace ksvc::op
