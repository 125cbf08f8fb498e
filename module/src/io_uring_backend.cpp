#include <ksvc/module/backends/io_uring_backend.hpp>

#include <cerrno>
#include <climits>
#include <cstring>
#include <vector>

#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <ksvc/core/syscalls.hpp>
#include <ksvc/module/capabilities.hpp>
#include <ksvc/module/process.hpp>
#include <ksvc/module/routers/route_table.hpp>

namespace ksvc::detail {
namespace {
namespace nr = ksvc::syscalls::x86_64;

// ~0 is LIBURING_UDATA_TIMEOUT (liburing's own timeout SQE on kernels without EXT_ARG):
// ignored when seen, never used for ours.
constexpr std::uint64_t liburing_timeout_tag = ~0ull;
constexpr std::uint64_t doorbell_tag = ~0ull - 1;
constexpr std::uint64_t cancel_tag = ~0ull - 2;

// Per in-flight entry: identity, plus scratch the kernel reads or that completion writes back.
// What reap() reads for every completion shares the first cache line; the msghdr scratch that
// only sendto/recvfrom with an address use comes after it.
struct alignas(64) slot {
    std::uint64_t corr_id = 0;
    std::uint32_t entry_flags = 0;
    std::uint32_t nr = 0;
    bool busy = false;
    socklen_t* addrlen_out = nullptr; // recvfrom: *addrlen = msg_namelen after completion
    loff_t* off_in = nullptr;         // splice: the syscall advances the caller's offsets
    loff_t* off_out = nullptr;
    // sendto/recvfrom with an address travel as SENDMSG/RECVMSG over this msghdr.
    msghdr msg{};
    iovec iov{};
};

enum class outcome { queued, unsupported, immediate };

struct translation {
    outcome kind = outcome::queued;
    std::int64_t immediate_result = 0;
};

void prep(io_uring_sqe& s, opcode op, int fd, std::uint64_t addr, std::uint32_t len, std::uint64_t off) {
    s.opcode = static_cast<std::uint8_t>(op);
    s.fd = fd;
    s.addr = addr;
    s.len = len;
    s.off = off;
}

bool fits_u32(std::uint64_t v) { return v <= UINT32_MAX; }

// The exact x86_64 syscall -> SQE translations. Anything the SQE cannot express identically
// (a length over 32 bits, a negative splice offset, recvfrom with a null addrlen) is refused as
// unsupported so the dispatcher runs it on a worker instead; results the syscall decides before
// touching the fd (negative positional offsets) are produced immediately.
translation translate(const submit_entry& e, io_uring_sqe& s, slot& sl) {
    const auto* a = e.args;
    const int fd0 = static_cast<int>(a[0]);
    auto einval = translation{outcome::immediate, -EINVAL};
    auto unsupported = translation{outcome::unsupported, 0};
    switch (e.nr) {
    case nr::read:
    case nr::write:
        if (!fits_u32(a[2])) return unsupported;
        prep(s, e.nr == nr::read ? opcode::read : opcode::write, fd0, a[1], static_cast<std::uint32_t>(a[2]),
             static_cast<std::uint64_t>(-1));
        return {};
    case nr::pread64:
    case nr::pwrite64:
        if (static_cast<std::int64_t>(a[3]) < 0) return einval; // checked before the fd, as the syscall does
        if (!fits_u32(a[2])) return unsupported;
        prep(s, e.nr == nr::pread64 ? opcode::read : opcode::write, fd0, a[1], static_cast<std::uint32_t>(a[2]), a[3]);
        return {};
    // Vectored forms: the syscalls narrow vlen to unsigned (import_iovec's nr_segs), so
    // truncating to the SQE's 32-bit len is exact — readv(fd, iov, 1ull << 32 | 1) reads one
    // segment, it is not EINVAL.
    case nr::readv:
    case nr::writev:
        prep(s, e.nr == nr::readv ? opcode::readv : opcode::writev, fd0, a[1], static_cast<std::uint32_t>(a[2]),
             static_cast<std::uint64_t>(-1));
        return {};
    case nr::preadv:
    case nr::pwritev: // (fd, iov, vlen, pos_l, pos_h): on 64-bit the position is pos_l
        if (static_cast<std::int64_t>(a[3]) < 0) return einval;
        prep(s, e.nr == nr::preadv ? opcode::readv : opcode::writev, fd0, a[1], static_cast<std::uint32_t>(a[2]), a[3]);
        return {};
    case nr::preadv2:
    case nr::pwritev2: // position -1 means "current position" for both the syscall and the SQE
        if (static_cast<std::int64_t>(a[3]) < -1) return einval;
        prep(s, e.nr == nr::preadv2 ? opcode::readv : opcode::writev, fd0, a[1], static_cast<std::uint32_t>(a[2]), a[3]);
        s.rw_flags = static_cast<__kernel_rwf_t>(a[5]);
        return {};
    case nr::open: // open(path, flags, mode) == openat(AT_FDCWD, …)
        prep(s, opcode::openat, AT_FDCWD, a[0], static_cast<std::uint32_t>(a[2]), 0);
        s.open_flags = static_cast<std::uint32_t>(a[1]);
        return {};
    case nr::creat: // creat(path, mode) == open(path, O_CREAT|O_WRONLY|O_TRUNC, mode)
        prep(s, opcode::openat, AT_FDCWD, a[0], static_cast<std::uint32_t>(a[1]), 0);
        s.open_flags = O_CREAT | O_WRONLY | O_TRUNC;
        return {};
    case nr::openat:
        prep(s, opcode::openat, fd0, a[1], static_cast<std::uint32_t>(a[3]), 0);
        s.open_flags = static_cast<std::uint32_t>(a[2]);
        return {};
    case nr::openat2: // (dfd, path, how, size): SQE takes size in len and how in off
        prep(s, opcode::openat2, fd0, a[1], static_cast<std::uint32_t>(a[3]), a[2]);
        return {};
    case nr::close:
        prep(s, opcode::close, fd0, 0, 0, 0);
        return {};
    case nr::statx: // (dfd, path, flags, mask, buf)
        prep(s, opcode::statx, fd0, a[1], static_cast<std::uint32_t>(a[3]), a[4]);
        s.statx_flags = static_cast<std::uint32_t>(a[2]);
        return {};
    case nr::fsync:
    case nr::fdatasync:
        prep(s, opcode::fsync, fd0, 0, 0, 0);
        s.fsync_flags = e.nr == nr::fdatasync ? IORING_FSYNC_DATASYNC : 0;
        return {};
    case nr::sync_file_range: // (fd, offset, nbytes, flags)
        if (!fits_u32(a[2])) return unsupported;
        prep(s, opcode::sync_file_range, fd0, 0, static_cast<std::uint32_t>(a[2]), a[1]);
        s.sync_range_flags = static_cast<std::uint32_t>(a[3]);
        return {};
    case nr::fallocate: // (fd, mode, offset, len): mode in len, offset in off, len in addr
        prep(s, opcode::fallocate, fd0, a[3], static_cast<std::uint32_t>(a[1]), a[2]);
        return {};
    case nr::fadvise64: // (fd, offset, len, advice)
        if (!fits_u32(a[2])) return unsupported;
        prep(s, opcode::fadvise, fd0, 0, static_cast<std::uint32_t>(a[2]), a[1]);
        s.fadvise_advice = static_cast<std::uint32_t>(a[3]);
        return {};
    case nr::madvise: // (addr, len, advice)
        if (!fits_u32(a[1])) return unsupported;
        prep(s, opcode::madvise, -1, a[0], static_cast<std::uint32_t>(a[1]), 0);
        s.fadvise_advice = static_cast<std::uint32_t>(a[2]);
        return {};
    case nr::ftruncate: // (fd, length): a negative length is EINVAL before the fd is looked up
        if (static_cast<std::int64_t>(a[1]) < 0) return einval;
        prep(s, opcode::ftruncate, fd0, 0, 0, a[1]);
        return {};
    case nr::socket: // (domain, type, protocol)
        prep(s, opcode::socket, fd0, 0, static_cast<std::uint32_t>(a[2]), a[1]);
        return {};
    case nr::bind: // (fd, addr, addrlen): addrlen in addr2 (== off)
        prep(s, opcode::bind, fd0, a[1], 0, a[2]);
        return {};
    case nr::listen: // (fd, backlog)
        prep(s, opcode::listen, fd0, 0, static_cast<std::uint32_t>(a[1]), 0);
        return {};
    case nr::accept:
    case nr::accept4: // (fd, addr, addrlen*[, flags]): addrlen pointer in off
        prep(s, opcode::accept, fd0, a[1], 0, a[2]);
        s.accept_flags = e.nr == nr::accept4 ? static_cast<std::uint32_t>(a[3]) : 0;
        return {};
    case nr::connect: // (fd, addr, addrlen): addrlen by value in off
        prep(s, opcode::connect, fd0, a[1], 0, a[2]);
        return {};
    case nr::sendto: // (fd, buf, len, flags, dest, addrlen)
        if (!fits_u32(a[2])) return unsupported;
        if (a[4] == 0) {
            prep(s, opcode::send, fd0, a[1], static_cast<std::uint32_t>(a[2]), 0);
        } else {
            sl.iov = {reinterpret_cast<void*>(a[1]), a[2]};
            sl.msg = {};
            sl.msg.msg_name = reinterpret_cast<void*>(a[4]);
            sl.msg.msg_namelen = static_cast<socklen_t>(a[5]);
            sl.msg.msg_iov = &sl.iov;
            sl.msg.msg_iovlen = 1;
            prep(s, opcode::sendmsg, fd0, reinterpret_cast<std::uint64_t>(&sl.msg), 1, 0);
        }
        s.msg_flags = static_cast<std::uint32_t>(a[3]);
        return {};
    case nr::recvfrom: // (fd, buf, len, flags, src, addrlen*)
        if (!fits_u32(a[2])) return unsupported;
        if (a[4] == 0) {
            prep(s, opcode::recv, fd0, a[1], static_cast<std::uint32_t>(a[2]), 0);
        } else {
            // The syscall receives first and only then fails copying the address out (EFAULT for
            // a null addrlen, EINVAL for a negative *addrlen), so the data is consumed; RECVMSG
            // would refuse both at prep without receiving. Let a worker run the real syscall.
            if (a[5] == 0) return unsupported;
            auto* lenp = reinterpret_cast<socklen_t*>(a[5]);
            if (static_cast<int>(*lenp) < 0) return unsupported;
            sl.iov = {reinterpret_cast<void*>(a[1]), a[2]};
            sl.msg = {};
            sl.msg.msg_name = reinterpret_cast<void*>(a[4]);
            sl.msg.msg_namelen = *lenp;
            sl.msg.msg_iov = &sl.iov;
            sl.msg.msg_iovlen = 1;
            sl.addrlen_out = lenp;
            prep(s, opcode::recvmsg, fd0, reinterpret_cast<std::uint64_t>(&sl.msg), 1, 0);
        }
        s.msg_flags = static_cast<std::uint32_t>(a[3]);
        return {};
    case nr::sendmsg:
    case nr::recvmsg: // (fd, msg, flags)
        prep(s, e.nr == nr::sendmsg ? opcode::sendmsg : opcode::recvmsg, fd0, a[1], 1, 0);
        s.msg_flags = static_cast<std::uint32_t>(a[2]);
        return {};
    case nr::shutdown:
        prep(s, opcode::shutdown, fd0, 0, static_cast<std::uint32_t>(a[1]), 0);
        return {};
    case nr::rename: // (old, new)
        prep(s, opcode::renameat, AT_FDCWD, a[0], static_cast<std::uint32_t>(AT_FDCWD), a[1]);
        s.rename_flags = 0;
        return {};
    case nr::renameat:
    case nr::renameat2: // (olddfd, old, newdfd, new[, flags])
        prep(s, opcode::renameat, fd0, a[1], static_cast<std::uint32_t>(a[2]), a[3]);
        s.rename_flags = e.nr == nr::renameat2 ? static_cast<std::uint32_t>(a[4]) : 0;
        return {};
    case nr::unlink:
    case nr::rmdir:
        prep(s, opcode::unlinkat, AT_FDCWD, a[0], 0, 0);
        s.unlink_flags = e.nr == nr::rmdir ? AT_REMOVEDIR : 0;
        return {};
    case nr::unlinkat: // (dfd, path, flags)
        prep(s, opcode::unlinkat, fd0, a[1], 0, 0);
        s.unlink_flags = static_cast<std::uint32_t>(a[2]);
        return {};
    case nr::mkdir: // (path, mode)
        prep(s, opcode::mkdirat, AT_FDCWD, a[0], static_cast<std::uint32_t>(a[1]), 0);
        return {};
    case nr::mkdirat: // (dfd, path, mode)
        prep(s, opcode::mkdirat, fd0, a[1], static_cast<std::uint32_t>(a[2]), 0);
        return {};
    case nr::symlink: // (target, linkpath)
        prep(s, opcode::symlinkat, AT_FDCWD, a[0], 0, a[1]);
        return {};
    case nr::symlinkat: // (target, newdfd, linkpath)
        prep(s, opcode::symlinkat, static_cast<int>(a[1]), a[0], 0, a[2]);
        return {};
    case nr::link: // (old, new)
        prep(s, opcode::linkat, AT_FDCWD, a[0], static_cast<std::uint32_t>(AT_FDCWD), a[1]);
        s.hardlink_flags = 0;
        return {};
    case nr::linkat: // (olddfd, old, newdfd, new, flags)
        prep(s, opcode::linkat, fd0, a[1], static_cast<std::uint32_t>(a[2]), a[3]);
        s.hardlink_flags = static_cast<std::uint32_t>(a[4]);
        return {};
    case nr::splice: { // (fd_in, off_in*, fd_out, off_out*, len, flags)
        if (!fits_u32(a[4])) return unsupported;
        auto* in = reinterpret_cast<loff_t*>(a[1]);
        auto* out = reinterpret_cast<loff_t*>(a[3]);
        // -1 means "no offset" to the SQE, so a negative caller offset cannot be expressed.
        if ((in && *in < 0) || (out && *out < 0)) return unsupported;
        prep(s, opcode::splice, static_cast<int>(a[2]), 0, static_cast<std::uint32_t>(a[4]),
             out ? static_cast<std::uint64_t>(*out) : static_cast<std::uint64_t>(-1));
        s.splice_off_in = in ? static_cast<std::uint64_t>(*in) : static_cast<std::uint64_t>(-1);
        s.splice_fd_in = fd0;
        s.splice_flags = static_cast<std::uint32_t>(a[5]);
        sl.off_in = in;
        sl.off_out = out;
        return {};
    }
    case nr::tee: // (fd_in, fd_out, len, flags)
        if (!fits_u32(a[2])) return unsupported;
        prep(s, opcode::tee, static_cast<int>(a[1]), 0, static_cast<std::uint32_t>(a[2]), 0);
        s.splice_off_in = 0;
        s.splice_fd_in = fd0;
        s.splice_flags = static_cast<std::uint32_t>(a[3]);
        return {};
    case nr::epoll_ctl: // (epfd, op, fd, event*)
        prep(s, opcode::epoll_ctl, fd0, a[3], static_cast<std::uint32_t>(a[1]), a[2]);
        return {};
    case nr::pipe:
    case nr::pipe2: // (fds[2][, flags]); the kernel requires fd == 0
        prep(s, opcode::pipe, 0, a[0], 0, 0);
        s.rw_flags = e.nr == nr::pipe2 ? static_cast<__kernel_rwf_t>(a[1]) : 0;
        return {};
    default:
        return unsupported;
    }
}

} // namespace

struct uring_engine::state {
    io_uring ring{};
    capabilities caps;
    std::uint32_t flags = 0;
    std::vector<slot> slots;
    std::vector<std::uint32_t> free_list;
    std::vector<completion_entry> ready; // immediate results, reaped first
    std::size_t busy = 0;
    std::size_t internal = 0; // doorbell poll and cancel requests in flight
    bool doorbell_armed = false;
    std::uint64_t fork_gen = 0;

    bool forked() const noexcept { return fork_gen != process::fork_generation(); }

    io_uring_sqe* get_sqe() noexcept {
        io_uring_sqe* sqe = io_uring_get_sqe(&ring);
        if (!sqe) {
            io_uring_submit(&ring);
            sqe = io_uring_get_sqe(&ring);
        }
        return sqe;
    }

    bool queue_cancel(std::uint64_t user_data) noexcept {
        io_uring_sqe* sqe = get_sqe();
        if (!sqe) return false;
        io_uring_prep_cancel64(sqe, user_data, 0);
        sqe->user_data = cancel_tag;
        ++internal;
        return true;
    }

    void release(std::uint32_t idx) noexcept {
        slots[idx].busy = false;
        slots[idx].addrlen_out = nullptr;
        slots[idx].off_in = slots[idx].off_out = nullptr;
        free_list.push_back(idx);
        --busy;
    }
};

uring_engine::uring_engine(const capabilities& caps, io_uring_options opts) : s_(std::make_unique<state>()) {
    if (!caps.io_uring_available)
        throw std::system_error(make_error_code(errc::io_uring_unavailable), caps.unavailable_reason);
    if (opts.entries == 0 || opts.entries > 32768)
        throw std::system_error(make_error_code(errc::invalid_argument),
                                "io_uring_options::entries must be in 1..32768, got " + std::to_string(opts.entries));
    s_->caps = caps;
    io_uring_params p{};
    p.flags = opts.setup_flags;
    // Continue a batch past a failing SQE (its error still arrives as a CQE).
    if (caps.has_setup_flag(setup_flag::submit_all)) p.flags |= IORING_SETUP_SUBMIT_ALL;
    p.flags |= IORING_SETUP_CQSIZE;
    p.cq_entries = opts.entries * 2;
    if (int r = io_uring_queue_init_params(opts.entries, &s_->ring, &p); r < 0)
        throw std::system_error(-r, std::system_category(), "io_uring_queue_init_params: " + describe_setup_failure(-r));
    s_->flags = p.flags;
    const std::size_t cap = p.sq_entries;
    s_->slots.resize(cap);
    s_->free_list.reserve(cap);
    for (std::size_t i = cap; i-- > 0;) s_->free_list.push_back(static_cast<std::uint32_t>(i));
    s_->ready.reserve(cap);
    s_->fork_gen = process::fork_generation();
}

uring_engine::~uring_engine() {
    if (!s_) return;
    if (!s_->forked()) {
        // Teardown cancels and drains: nothing may be freed while the kernel can still write
        // into a slot's scratch or the caller's buffers.
        for (std::uint32_t i = 0; i < s_->slots.size(); ++i)
            if (s_->slots[i].busy) s_->queue_cancel(i + 1);
        if (s_->doorbell_armed) s_->queue_cancel(doorbell_tag);
        while (s_->busy > 0 || s_->internal > 0) {
            io_uring_cqe* cqe = nullptr;
            if (io_uring_submit_and_wait(&s_->ring, 1) < 0 && errno != EINTR) {
                // keep trying: the ring cannot be unmapped while operations are live
            }
            unsigned head, seen = 0;
            io_uring_for_each_cqe(&s_->ring, head, cqe) {
                ++seen;
                if (cqe->user_data == liburing_timeout_tag) continue;
                if (cqe->user_data == cancel_tag || cqe->user_data == doorbell_tag) {
                    --s_->internal;
                } else if (!(cqe->flags & IORING_CQE_F_MORE)) {
                    s_->release(static_cast<std::uint32_t>(cqe->user_data - 1));
                }
            }
            io_uring_cq_advance(&s_->ring, seen);
        }
    }
    // In a forked child the ring belongs to the parent: only drop this process's mapping.
    io_uring_queue_exit(&s_->ring);
}

std::error_code uring_engine::submit(const submit_entry& e, route_info) noexcept {
    state& st = *s_;
    if (st.forked()) return make_error_code(errc::forked_child);
    if (st.busy + st.ready.size() >= st.slots.size()) return make_error_code(errc::ring_full);
    const std::uint32_t idx = st.free_list.back();
    slot& sl = st.slots[idx];
    // Translate straight into the ring's SQE (no staging copy); an SQE that ends up unused is
    // handed back: liburing hands SQEs out by advancing sqe_tail, nothing else has seen it.
    io_uring_sqe* sqe = st.get_sqe();
    if (!sqe) return make_error_code(errc::ring_full);
    std::memset(sqe, 0, sizeof *sqe);
    const translation t = translate(e, *sqe, sl);
    if (t.kind != outcome::queued) {
        --st.ring.sq.sqe_tail;
        if (t.kind == outcome::unsupported) return make_error_code(errc::unsupported);
        st.ready.push_back(make_completion(e, t.immediate_result));
        return {};
    }
    sqe->user_data = idx + 1;
    sl.corr_id = e.corr_id;
    sl.entry_flags = e.flags;
    sl.nr = e.nr;
    sl.busy = true;
    st.free_list.pop_back();
    ++st.busy;
    return {};
}

int uring_engine::flush() noexcept {
    if (s_->forked()) return -ECHILD;
    if (io_uring_sq_ready(&s_->ring) == 0) return 0;
    const int r = io_uring_submit(&s_->ring);
    return r < 0 ? r : 0;
}

std::size_t uring_engine::reap(std::span<completion_entry> out) noexcept {
    state& st = *s_;
    std::size_t n = 0;
    while (n < out.size() && !st.ready.empty()) {
        out[n++] = st.ready.back();
        st.ready.pop_back();
    }
    if (st.forked()) return n;
    unsigned head, seen = 0;
    io_uring_cqe* cqe = nullptr;
    io_uring_for_each_cqe(&st.ring, head, cqe) {
        if (cqe->user_data == liburing_timeout_tag) {
            ++seen;
            continue;
        }
        if (cqe->user_data == cancel_tag || cqe->user_data == doorbell_tag) {
            if (cqe->user_data == doorbell_tag) st.doorbell_armed = false;
            --st.internal;
            ++seen;
            continue;
        }
        if (n == out.size()) break;
        ++seen;
        const auto idx = static_cast<std::uint32_t>(cqe->user_data - 1);
        slot& sl = st.slots[idx];
        const std::int64_t res = cqe->res;
        if (res >= 0 && sl.addrlen_out) *sl.addrlen_out = sl.msg.msg_namelen;
        if (res > 0 && sl.off_in) *sl.off_in += res;
        if (res > 0 && sl.off_out) *sl.off_out += res;
        if (res == -EPIPE) process::consume_sigpipe();
        completion_entry c{sl.corr_id, res, 0, 0, sl.entry_flags, sl.nr};
        if (cqe->flags & IORING_CQE_F_MORE) c.flags |= completion_flags::more;
        if (cqe->flags & IORING_CQE_F_BUFFER) {
            c.flags |= completion_flags::buffer;
            c.aux = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        }
        out[n++] = c;
        if (!(cqe->flags & IORING_CQE_F_MORE)) st.release(idx);
    }
    io_uring_cq_advance(&st.ring, seen);
    return n;
}

std::error_code uring_engine::cancel(std::uint64_t corr_id) noexcept {
    state& st = *s_;
    if (st.forked()) return make_error_code(errc::forked_child);
    // Cancels complete on the CQ too; keep their count within the CQ's headroom: the CQ holds
    // 2 x capacity, user entries take at most capacity, so internal requests may take the rest.
    if (st.internal >= st.slots.size()) return make_error_code(errc::ring_full);
    bool found = false;
    for (std::uint32_t i = 0; i < st.slots.size(); ++i) {
        if (st.slots[i].busy && st.slots[i].corr_id == corr_id) {
            if (!st.queue_cancel(i + 1)) return make_error_code(errc::ring_full);
            found = true;
        }
    }
    return found ? std::error_code{} : std::error_code(ENOENT, std::system_category());
}

std::size_t uring_engine::cancel_all() noexcept {
    state& st = *s_;
    if (st.forked()) return 0;
    std::size_t n = 0;
    for (std::uint32_t i = 0; i < st.slots.size(); ++i)
        if (st.slots[i].busy && st.queue_cancel(i + 1)) ++n;
    io_uring_submit(&st.ring);
    return n;
}

int uring_engine::wait(int fd, int timeout_ms) noexcept {
    state& st = *s_;
    if (st.forked()) return -ECHILD;
    // Results decided at submit (immediate EINVALs) are already reapable: submit, do not block.
    if (!st.ready.empty()) return flush();
    if (fd >= 0 && !st.doorbell_armed) {
        io_uring_sqe* sqe = st.get_sqe();
        if (!sqe) return -EBUSY;
        io_uring_prep_poll_add(sqe, fd, POLLIN);
        sqe->user_data = doorbell_tag;
        st.doorbell_armed = true;
        ++st.internal;
    }
    if (timeout_ms < 0) {
        const int r = io_uring_submit_and_wait(&st.ring, 1);
        return r < 0 ? r : 0;
    }
    // Submit first: liburing 2.3's submit_and_wait_timeout reports the submitted count, not
    // -ETIME, when one enter both submits and times out.
    if (const int r = io_uring_submit(&st.ring); r < 0) return r;
    __kernel_timespec ts{timeout_ms / 1000, static_cast<long long>(timeout_ms % 1000) * 1000000};
    io_uring_cqe* cqe = nullptr;
    const int r = io_uring_wait_cqe_timeout(&st.ring, &cqe, &ts);
    return r < 0 ? r : 0;
}

std::size_t uring_engine::inflight() const noexcept { return s_->busy + s_->ready.size(); }
std::size_t uring_engine::capacity() const noexcept { return s_->slots.size(); }
bool uring_engine::supports(opcode op) const noexcept { return s_->caps.has(op); }
int uring_engine::ring_fd() const noexcept { return s_->ring.ring_fd; }
std::uint32_t uring_engine::setup_flags() const noexcept { return s_->flags; }

bool uring_engine::translates(std::uint32_t n) noexcept {
    if (routing::classify(n).tier != tier::io_uring) return false;
    io_uring_sqe s{};
    slot sl{};
    submit_entry e{};
    e.nr = n;
    // Null pointers everywhere: every Tier-1 case must still produce a decision.
    loff_t zero = 0;
    socklen_t len = 0;
    if (n == nr::recvfrom) e.args[5] = reinterpret_cast<std::uint64_t>(&len);
    if (n == nr::splice) e.args[1] = reinterpret_cast<std::uint64_t>(&zero);
    return translate(e, s, sl).kind != outcome::unsupported;
}

} // namespace ksvc::detail
