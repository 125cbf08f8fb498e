// epoll_backend: readiness plus non-blocking syscalls (see the header for the rules).
#include <ksvc/module/backends/epoll_backend.hpp>

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <limits>

#include <ksvc/core/operations.hpp>
#include <ksvc/core/syscalls.hpp>
#include <ksvc/module/process.hpp>

namespace ksvc {

namespace {
namespace nr = ksvc::syscalls::x86_64;

constexpr std::uint64_t doorbell_tag = ~0ull;
constexpr unsigned timeout_abs = 1u; // IORING_TIMEOUT_ABS
constexpr int rwf_nowait = 0x00000008; // RWF_NOWAIT (Linux 4.14)

std::int64_t result_of(long r) noexcept { return r == -1 ? -static_cast<std::int64_t>(errno) : r; }

std::uint64_t now_ns() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

// Which readiness an entry waits for; 0: it does not wait on an fd.
std::uint32_t direction(std::uint32_t number) noexcept {
    switch (number) {
    case nr::read: case nr::readv: case nr::recvfrom: case nr::recvmsg: case nr::accept: case nr::accept4:
        return EPOLLIN;
    case nr::write: case nr::writev: case nr::sendto: case nr::sendmsg: return EPOLLOUT;
    default: break;
    }
    switch (static_cast<operation>(number)) {
    case operation::accept_multishot: case operation::recv_select: case operation::recv_multishot: return EPOLLIN;
    default: return 0;
    }
}

bool is_accept(std::uint32_t number) noexcept {
    return number == nr::accept || number == nr::accept4 ||
           number == static_cast<std::uint32_t>(operation::accept_multishot);
}

constexpr auto recv_multishot_nr = static_cast<std::uint32_t>(operation::recv_multishot);
constexpr auto recv_select_nr = static_cast<std::uint32_t>(operation::recv_select);
constexpr auto accept_multishot_nr = static_cast<std::uint32_t>(operation::accept_multishot);

// The byte count a read asks for, when one buffer holds it (a short read then drained a stream).
std::uint64_t requested(const submit_entry& e) noexcept {
    return (e.nr == nr::read || e.nr == nr::recvfrom) ? e.args[2] : 0;
}
} // namespace

epoll_backend::epoll_backend(const capabilities& caps, io_uring_options opts, epoll_readiness type_default)
    : caps_(caps), opts_(opts), edge_(opts.epoll_readiness_mode.value_or(type_default) == epoll_readiness::edge) {
    epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) throw std::system_error(errno, std::system_category(), "ksvc::epoll_backend: epoll_create1");
    std::size_t n = opts.max_inflight ? opts.max_inflight : (opts.cq_entries ? opts.cq_entries : opts.entries);
    if (n == 0) n = 256;
    slots_.resize(n);
    for (std::uint32_t i = 0; i < n; ++i) slots_[i].next = i + 1 < n ? i + 1 : npos;
    free_ = 0;
    ready_.reserve(64);
    counted_.reserve(n); // pushed from noexcept paths: never reallocates
    // No fd reaches the hard RLIMIT_NOFILE: a larger number is not an open file, and must not
    // size the fd table (INT_MAX would ask for gigabytes).
    rlimit rl{};
    max_fds_ = ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY
                   ? static_cast<std::size_t>(std::min<rlim_t>(rl.rlim_max, rlim_t{1} << 22))
                   : std::size_t{1} << 20;
    events_.resize(std::min<std::size_t>(n + 1, 1024));
    features_.notes = "epoll backend: no ring (fixed files, registered and provided buffers, restrictions are not in effect)";
}

epoll_backend::~epoll_backend() {
    if (epfd_ >= 0) ::close(epfd_);
}

routing::backend_offer epoll_backend::offer_for(const capabilities& caps) {
    (void)caps; // epoll (2.6) and RWF_NOWAIT (4.14) predate every kernel ksvc supports
    routing::backend_offer o;
    o.backend = name();
    for (std::uint32_t n : {nr::read, nr::write, nr::readv, nr::writev, nr::recvfrom, nr::sendto, nr::recvmsg,
                            nr::sendmsg, nr::accept, nr::accept4, nr::socket, nr::bind, nr::listen, nr::shutdown,
                            nr::close, nr::pipe, nr::pipe2, nr::epoll_ctl})
        o.syscalls[n] = true;
    auto set = [&](operation op, bool emulated) {
        const operation_info* i = info(op);
        o.operations[static_cast<std::uint32_t>(op) - operation_base] = {tier::io_uring, i->code, false, emulated};
    };
    set(operation::nop, false);
    set(operation::poll, false);
    set(operation::poll_multishot, false);
    set(operation::timeout, false);
    set(operation::link_timeout, false);
    set(operation::cancel, false);
    set(operation::accept_multishot, true);
    set(operation::recv_select, false);    // into add_user_buffers' rings (-ENOBUFS without one)
    set(operation::recv_multishot, true);
    return o;
}

bool epoll_backend::supports(opcode op) const noexcept {
    switch (op) {
    case opcode::nop: case opcode::read: case opcode::write: case opcode::readv: case opcode::writev:
    case opcode::recv: case opcode::send: case opcode::recvmsg: case opcode::sendmsg: case opcode::accept:
    case opcode::socket: case opcode::bind: case opcode::listen: case opcode::shutdown: case opcode::close:
    case opcode::pipe: case opcode::epoll_ctl: case opcode::poll_add: case opcode::timeout:
    case opcode::link_timeout: case opcode::async_cancel: return true;
    default: return false;
    }
}

// ---- slots and completions --------------------------------------------------------------------

std::uint32_t epoll_backend::alloc() noexcept {
    const std::uint32_t i = free_;
    if (i == npos) return npos;
    free_ = slots_[i].next;
    slot& s = slots_[i];
    const std::uint32_t gen = s.gen + 1;
    s = slot{};
    s.gen = gen;
    s.in_use = true;
    ++used_;
    return i;
}

void epoll_backend::release(std::uint32_t i) noexcept {
    slot& s = slots_[i];
    s.in_use = false;
    ++s.gen; // invalidates its timer-heap entry
    s.next = free_;
    free_ = i;
    --used_;
}

void epoll_backend::post(const submit_entry& e, std::int64_t result, std::uint32_t flags, std::uint32_t aux) noexcept {
    completion_entry c = make_completion(e, result);
    c.flags = flags;
    c.aux = aux;
    ready_.push_back(c);
    if (!counted_.empty()) count_completion();
}

// Timeouts with a count complete once that many other completions were posted.
void epoll_backend::count_completion() noexcept {
    for (std::size_t k = 0; k < counted_.size();) {
        const std::uint32_t i = counted_[k];
        if (slots_[i].in_use && slots_[i].count > 0 && --slots_[i].count == 0) {
            counted_.erase(counted_.begin() + static_cast<std::ptrdiff_t>(k));
            const submit_entry e = slots_[i].e;
            release(i);
            post(e, 0);
            continue;
        }
        if (!slots_[i].in_use) {
            counted_.erase(counted_.begin() + static_cast<std::ptrdiff_t>(k));
            continue;
        }
        ++k;
    }
}

// Completes slot i with `result`; a linked pair completes both: the entry's link_timeout gets
// -ECANCELED when the entry finished first, the entry -ECANCELED when its timeout fired.
void epoll_backend::finish(std::uint32_t i, std::int64_t result, std::uint32_t flags, std::uint32_t aux) noexcept {
    slot& s = slots_[i];
    if (s.waiting) unlink_waiter(i);
    const submit_entry e = s.e;
    const std::uint32_t partner = s.partner;
    const bool timer = s.kind == wait_kind::link_timer;
    release(i);
    if (partner == npos) {
        post(e, result, flags, aux);
        return;
    }
    slot& p = slots_[partner];
    if (p.waiting) unlink_waiter(partner);
    const submit_entry pe = p.e;
    release(partner);
    if (timer) { // the deadline passed (or the timer was cancelled): the entry is cancelled first
        post(pe, -ECANCELED);
        post(e, result);
    } else {
        post(e, result, flags, aux);
        post(pe, -ECANCELED);
    }
}

// ---- fd state ------------------------------------------------------------------------------

epoll_backend::fd_state* epoll_backend::state_for(int fd) noexcept {
    if (fd < 0) return nullptr;
    const auto n = static_cast<std::size_t>(fd);
    if (n >= max_fds_) return nullptr;
    if (n >= fds_.size()) {
        try {
            fds_.resize(std::min(max_fds_, std::max<std::size_t>(n + 1, fds_.size() * 2)));
        } catch (...) {
            return nullptr;
        }
    }
    return &fds_[n];
}

// Reads the fd's type and O_NONBLOCK. 0, -errno (EBADF), or 1 when it cannot be polled.
int epoll_backend::refresh(int fd, fd_state& s) noexcept {
    struct stat st{};
    if (::fstat(fd, &st) != 0) return -errno;
    const int fl = ::fcntl(fd, F_GETFL);
    if (fl < 0) return -errno;
    s.nonblocking = fl & O_NONBLOCK;
    s.in_drained = s.out_full = false;
    if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISLNK(st.st_mode)) {
        s.kind = fd_kind::unknown; // not kept: the number may name a pollable file next time
        return 1;
    }
    s.kind = S_ISSOCK(st.st_mode) ? fd_kind::socket : fd_kind::other;
    s.fifo = S_ISFIFO(st.st_mode);
    s.no_nowait = false;
    return 0;
}

// ---- running syscalls ----------------------------------------------------------------------

// The non-blocking form of an fd entry, and what it teaches about the files: a pipe that refuses
// RWF_NOWAIT (before 6.4; learnt on its first read or write) is read and written by size from
// then on, and a number accept gave out drops what was known of the file it named before.
// -EAGAIN: not ready.
std::int64_t epoll_backend::attempt(const submit_entry& e, fd_state& s) noexcept {
    std::int64_t r = try_once(e, s);
    if (r == -EOPNOTSUPP && s.fifo && !s.no_nowait && (e.nr == nr::read || e.nr == nr::write)) {
        s.no_nowait = true;
        r = try_once(e, s);
    }
    if (r >= 0 && is_accept(e.number())) note_new_fd(static_cast<int>(r));
    return r;
}

std::int64_t epoll_backend::try_once(const submit_entry& e, const fd_state& s) noexcept {
    const auto* a = e.args;
    took_flags_ = took_buffer_ = 0;
    const int fd = static_cast<int>(a[0]);
    if (s.no_nowait && (e.nr == nr::read || e.nr == nr::write)) return pipe_without_nowait(e);
    switch (e.nr) {
    case nr::read: {
        iovec v{reinterpret_cast<void*>(a[1]), static_cast<std::size_t>(a[2])};
        return result_of(::syscall(SYS_preadv2, fd, &v, 1, -1L, 0L, rwf_nowait));
    }
    case nr::readv: return result_of(::syscall(SYS_preadv2, a[0], a[1], a[2], -1L, 0L, rwf_nowait));
    case nr::write:
    case nr::writev: {
        std::int64_t r;
        if (e.nr == nr::write) {
            iovec v{reinterpret_cast<void*>(a[1]), static_cast<std::size_t>(a[2])};
            r = result_of(::syscall(SYS_pwritev2, fd, &v, 1, -1L, 0L, rwf_nowait));
        } else {
            r = result_of(::syscall(SYS_pwritev2, a[0], a[1], a[2], -1L, 0L, rwf_nowait));
        }
        // A write to a pipe or socket whose reader is gone raised SIGPIPE on this (blocked) thread.
        if (r == -EPIPE) process::consume_sigpipe();
        return r;
    }
    case nr::recvfrom:
        return result_of(::syscall(SYS_recvfrom, a[0], a[1], a[2], a[3] | MSG_DONTWAIT, a[4], a[5]));
    case nr::sendto:
        return result_of(::syscall(SYS_sendto, a[0], a[1], a[2], a[3] | MSG_DONTWAIT | MSG_NOSIGNAL, a[4], a[5]));
    case nr::recvmsg: return result_of(::syscall(SYS_recvmsg, a[0], a[1], a[2] | MSG_DONTWAIT));
    case nr::sendmsg: return result_of(::syscall(SYS_sendmsg, a[0], a[1], a[2] | MSG_DONTWAIT | MSG_NOSIGNAL));
    case nr::accept:
    case nr::accept4: {
        // No per-call non-blocking accept: a blocking listener is attempted only after readiness.
        const int flags = e.nr == nr::accept4 ? static_cast<int>(a[3]) : 0;
        return result_of(::syscall(SYS_accept4, a[0], a[1], a[2], flags));
    }
    default: break;
    }
    const std::uint32_t number = e.number();
    if (number == accept_multishot_nr) return result_of(::syscall(SYS_accept4, a[0], 0, 0, static_cast<int>(a[1])));
    if (number == recv_select_nr || number == recv_multishot_nr) return recv_into_buffer(e);
    (void)s;
    return -EINVAL;
}

// A pipe on a kernel without RWF_NOWAIT for pipes: read what FIONREAD says is there, write what
// fits (all or nothing up to PIPE_BUF, keeping such writes atomic) — neither can block while this
// loop is that end's only user. -EAGAIN: not ready.
std::int64_t epoll_backend::pipe_without_nowait(const submit_entry& e) noexcept {
    const int fd = static_cast<int>(e.args[0]);
    const auto want = static_cast<std::size_t>(e.args[2]);
    pollfd p{fd, static_cast<short>(e.nr == nr::read ? POLLIN : POLLOUT), 0};
    if (::poll(&p, 1, 0) < 0) return -errno;
    if (p.revents & POLLNVAL) return -EBADF;
    if (e.nr == nr::read) {
        int avail = 0;
        if (::ioctl(fd, FIONREAD, &avail) != 0) return -errno;
        if (avail == 0 && !(p.revents & POLLHUP)) return want == 0 ? 0 : -EAGAIN; // HUP + empty: EOF
        return result_of(::read(fd, reinterpret_cast<void*>(e.args[1]), std::min<std::size_t>(want, static_cast<std::size_t>(avail))));
    }
    std::int64_t r;
    if (p.revents & POLLERR) { // no reader: EPIPE, as the write itself says
        r = result_of(::write(fd, reinterpret_cast<void*>(e.args[1]), 0 < want ? 1 : 0));
    } else {
        int queued = 0;
        const int size = ::fcntl(fd, F_GETPIPE_SZ);
        if (size < 0 || ::ioctl(fd, FIONREAD, &queued) != 0) return -errno;
        const auto room = static_cast<std::size_t>(size > queued ? size - queued : 0);
        if (room == 0 || (want <= PIPE_BUF && room < want)) return -EAGAIN;
        r = result_of(::write(fd, reinterpret_cast<void*>(e.args[1]), std::min(want, room)));
    }
    if (r == -EPIPE) process::consume_sigpipe();
    return r;
}

// recv_select / recv_multishot: into the next buffer of the entry's group, taken only when
// bytes arrived (EAGAIN and end of stream leave it in the ring). -ENOBUFS: no such group, or
// every buffer is leased (the stream recovers once leases are dropped and it is submitted again).
std::int64_t epoll_backend::recv_into_buffer(const submit_entry& e) noexcept {
    buffer_group* g = nullptr;
    for (buffer_group& x : groups_)
        if (x.r.group == e.buffer_group()) g = &x;
    if (!g) return -ENOBUFS;
    const std::uint16_t tail = __atomic_load_n(&g->r.ring->tail, __ATOMIC_ACQUIRE); // the provider's release
    if (tail == g->head) return -ENOBUFS;
    const io_uring_buf& b = g->r.ring->bufs[g->head & (g->r.entries - 1)];
    const bool multishot = e.number() == recv_multishot_nr;
    std::uint64_t len = b.len;
    const std::uint64_t limit = multishot ? e.args[2] : e.args[1];
    if (limit && limit < len) len = limit;
    const auto flags = static_cast<int>(multishot ? e.args[1] : e.args[2]);
    const std::int64_t r = result_of(::recv(static_cast<int>(e.args[0]), reinterpret_cast<void*>(b.addr),
                                            static_cast<std::size_t>(len), flags | MSG_DONTWAIT));
    if (r > 0) {
        took_flags_ = completion_flags::buffer;
        took_buffer_ = b.bid;
        ++g->head;
    }
    return r;
}

// Syscalls that never block, and close: run now.
std::int64_t epoll_backend::run_in_place(const submit_entry& e) noexcept {
    const auto* a = e.args;
    if (e.nr == nr::close) {
        const int fd = static_cast<int>(a[0]);
        if (fd >= 0 && static_cast<std::size_t>(fd) < fds_.size()) {
            fd_state& s = fds_[static_cast<std::size_t>(fd)];
            fail_waiters(fd, s, -EBADF); // they named a number that is about to mean nothing
            // Before close: a dup of the file would keep the registration (and its events) alive.
            if (s.registered) ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
            s = fd_state{};
        }
    }
    return result_of(::syscall(static_cast<long>(e.nr), a[0], a[1], a[2], a[3], a[4], a[5]));
}

// ---- waiting -------------------------------------------------------------------------------

void epoll_backend::enqueue_waiter(int fd, fd_state& s, std::uint32_t i) noexcept {
    slot& w = slots_[i];
    w.fd = fd;
    w.waiting = true;
    w.next = npos;
    if (s.tail == npos) s.head = i;
    else slots_[s.tail].next = i;
    s.tail = i;
    ++fd_waiters_;
}

void epoll_backend::unlink_waiter(std::uint32_t i) noexcept {
    slot& w = slots_[i];
    fd_state& s = fds_[static_cast<std::size_t>(w.fd)];
    std::uint32_t prev = npos;
    for (std::uint32_t k = s.head; k != npos; prev = k, k = slots_[k].next) {
        if (k != i) continue;
        if (prev == npos) s.head = w.next;
        else slots_[prev].next = w.next;
        if (s.tail == i) s.tail = prev;
        break;
    }
    w.waiting = false;
    w.next = npos;
    --fd_waiters_;
}

// Arms the fd's one registration for what its waiters need. 0, or -errno from epoll_ctl.
// `force`: re-arm even when armed already — a new waiter makes sure the registration still
// belongs to the file the number names now (EPOLL_CTL_MOD says ENOENT otherwise).
int epoll_backend::arm(int fd, fd_state& s, bool force) noexcept {
    if (s.registered && s.edge) return 0; // armed for every readiness, for as long as the fd lives
    std::uint32_t want = 0;
    bool blocking_accept = false;
    for (std::uint32_t k = s.head; k != npos; k = slots_[k].next) {
        want |= slots_[k].events;
        blocking_accept |= slots_[k].kind == wait_kind::accept && !s.nonblocking;
    }
    if (want == 0 || (s.armed == want && !force)) return 0;
    // Edge-triggered only where every wait ends in a syscall that says EAGAIN when readiness is
    // gone (a socket's MSG_DONTWAIT); a blocking listener accepts once per report (one-shot).
    const bool edge = !s.registered && edge_ && s.kind == fd_kind::socket && !blocking_accept;
    epoll_event ev{};
    ev.events = edge ? (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET) : (want | EPOLLONESHOT);
    ev.data.u64 = static_cast<std::uint32_t>(fd);
    if (s.registered) {
        if (::epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) == 0) {
            s.armed = want;
            return 0;
        }
        if (errno != ENOENT) return -errno;
        // The number names another file now (closed and reused behind ksvc's back).
        return -ENOENT;
    }
    if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
        if (errno != EEXIST) return -errno;
        if (::epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) != 0) return -errno;
    }
    s.registered = true;
    s.edge = edge;
    s.armed = edge ? ev.events : want;
    return 0;
}

void epoll_backend::fail_waiters(int fd, fd_state& s, std::int64_t result, std::uint32_t except) noexcept {
    (void)fd;
    std::uint32_t k = s.head;
    while (k != npos) {
        const std::uint32_t next = slots_[k].next;
        if (k != except) finish(k, result);
        k = next;
    }
}

// The kernel just gave out `fd` (accept, socket): whatever file the number named before was
// closed, behind ksvc's back. Entries still waiting on it can never be served, and its
// registration (gone with the file, or left on a file a dup keeps open) is not this file's.
void epoll_backend::note_new_fd(int fd) noexcept {
    if (fd < 0 || static_cast<std::size_t>(fd) >= fds_.size()) return;
    fd_state& s = fds_[static_cast<std::size_t>(fd)];
    if (s.kind == fd_kind::unknown && !s.registered && s.head == npos) return;
    fail_waiters(fd, s, -EBADF);
    s = fd_state{};
}

// Starts an entry: Tier-1 syscalls and the operations. `link` is the slot of a link_timeout
// already allocated for it (npos: none).
status epoll_backend::start(const submit_entry& e, std::uint32_t link, std::uint64_t deadline_ns) noexcept {
    const std::uint32_t number = e.number();
    took_flags_ = took_buffer_ = 0; // on_ready's last attempt may have left a buffer named
    auto complete_now = [&](std::int64_t r, std::uint32_t flags = 0) {
        const std::uint32_t aux = took_buffer_;
        flags |= took_flags_;
        took_flags_ = took_buffer_ = 0;
        if (link != npos) {
            // The entry finished first: its link_timeout is cancelled.
            post(e, r, flags, aux);
            const submit_entry te = slots_[link].e;
            release(link);
            post(te, -ECANCELED);
        } else {
            post(e, r, flags, aux);
        }
        return status::ok;
    };
    const std::uint32_t dir = direction(number);
    if (dir == 0) {
        switch (static_cast<operation>(number)) {
        case operation::nop: return complete_now(0);
        case operation::poll: case operation::poll_multishot: break; // below
        case operation::timeout: {
            const std::uint32_t i = alloc();
            if (i == npos) return status::ring_full;
            slot& s = slots_[i];
            s.e = e;
            s.kind = wait_kind::timer;
            if (e.args[2] & ~std::uint64_t{timeout_abs}) {
                release(i);
                return complete_now(-EINVAL);
            }
            s.deadline_ns = (e.args[2] & timeout_abs) ? e.args[0] : now_ns() + e.args[0];
            s.count = e.args[1];
            if (s.count) counted_.push_back(i);
            add_timer(i);
            return status::ok;
        }
        case operation::cancel: {
            const std::uint64_t mode = e.args[0], key = e.args[1];
            if (mode > cancel_by::all) return complete_now(-EINVAL);
            std::int64_t n = 0;
            for (std::uint32_t i = 0; i < slots_.size(); ++i) {
                const slot& s = slots_[i];
                if (!s.in_use || s.kind == wait_kind::link_timer) continue;
                const bool match = mode == cancel_by::all || (mode == cancel_by::corr_id && s.e.corr_id == key) ||
                                   (mode == cancel_by::fd && s.fd >= 0 && static_cast<std::uint64_t>(s.fd) == key);
                if (match && cancel_slot(i)) ++n;
            }
            return complete_now(n ? n : -ENOENT);
        }
        default:
            switch (number) { // only what offer_for() lists: never a syscall it was not given
            case nr::socket: case nr::bind: case nr::listen: case nr::shutdown: case nr::close: case nr::pipe:
            case nr::pipe2: case nr::epoll_ctl: {
                const std::int64_t r = run_in_place(e);
                if (r >= 0 && e.nr == nr::socket) note_new_fd(static_cast<int>(r));
                return complete_now(r);
            }
            default: return status::unsupported;
            }
        }
    }
    // An entry on an fd.
    const int fd = static_cast<int>(e.args[0]);
    const bool poll_op = dir == 0;
    const std::uint32_t events = poll_op ? (static_cast<std::uint32_t>(e.args[1]) & (EPOLLIN | EPOLLOUT | EPOLLPRI | EPOLLRDHUP)) : dir;
    fd_state* s = state_for(fd);
    if (!s) {
        if (poll_op || number >= operation_base) return complete_now(-EBADF);
        // A negative fd fails at once (the non-blocking form says how); one beyond the hard
        // RLIMIT_NOFILE is bogus, or predates a lowered limit: a worker's syscall says which.
        fd_state none;
        if (fd < 0) return complete_now(attempt(e, none));
        return status::unsupported;
    }
    if (s->kind == fd_kind::unknown) {
        const int r = refresh(fd, *s);
        if (r < 0) return complete_now(poll_op ? r : attempt(e, *s)); // EBADF: let the syscall say it
        if (r == 1) {
            // Regular files are always ready (as poll(2) says); I/O on them belongs to the workers.
            if (poll_op) return complete_now(static_cast<std::int64_t>(events & (EPOLLIN | EPOLLOUT)));
            return status::unsupported;
        }
    }
    if (is_accept(number)) {
        // What accept4 would refuse at once must not wait for a connection first.
        const std::uint64_t flags = number == nr::accept4 ? e.args[3] : number == nr::accept ? 0 : e.args[1];
        if (flags & ~std::uint64_t{SOCK_NONBLOCK | SOCK_CLOEXEC}) return complete_now(-EINVAL);
        if (s->kind != fd_kind::socket) return complete_now(attempt(e, *s)); // ENOTSOCK, at once
    }
    if (s->no_nowait && (number == nr::readv || number == nr::writev)) return status::unsupported; // see the header
    if (s->edge && is_accept(number) && !s->nonblocking) {
        s->edge = false; // a blocking listener after all: one-shot from here (arm() below re-arms it)
        s->armed = 0;
    }
    if (s->edge && poll_op) {
        // An edge registration reports changes only: what is ready now is asked for directly.
        pollfd p{fd, static_cast<short>(events), 0};
        if (::poll(&p, 1, 0) > 0 && (p.revents & (events | POLLERR | POLLHUP | POLLNVAL))) {
            if (p.revents & POLLNVAL) return complete_now(-EBADF);
            if (number == static_cast<std::uint32_t>(operation::poll)) return complete_now(p.revents & (events | POLLERR | POLLHUP));
            post(e, p.revents & (events | POLLERR | POLLHUP), completion_flags::more);
            ++rearms_; // a multishot poll reports this, then waits for the next change
        }
    }
    // A multishot stream always waits: an attempt that succeeded here would complete with `more`
    // and leave nothing waiting for the rest (on_ready drains it: until EAGAIN, which on a
    // non-blocking listener keeps the stream waiting, as io_uring's does).
    const bool readiness_first = poll_op || (is_accept(number) && !s->nonblocking) || number == recv_multishot_nr ||
                                 number == accept_multishot_nr;
    // FIFO per fd: an entry does not overtake one already waiting for the same readiness.
    bool queued_ahead = false;
    for (std::uint32_t k = s->head; k != npos; k = slots_[k].next) queued_ahead |= (slots_[k].events & events) != 0;
    const bool skip = readiness_first || queued_ahead || (dir == EPOLLIN && s->in_drained && !s->nonblocking) ||
                      (dir == EPOLLOUT && s->out_full && !s->nonblocking);
    if (!skip) {
        std::int64_t r = attempt(e, *s);
        if (r == -ENOTSOCK && s->kind == fd_kind::socket) { // the number names another file now
            note_new_fd(fd); // its waiters and registration were the socket's
            refresh(fd, *s);
            r = attempt(e, *s);
        }
        if (r == -EOPNOTSUPP && (number == nr::read || number == nr::write || number == nr::readv || number == nr::writev))
            return status::unsupported; // no RWF_NOWAIT for this file type (a tty): a worker runs it
        if (r == -EAGAIN && s->nonblocking) {
            const int fl = ::fcntl(fd, F_GETFL); // the cached flag may be older than the file
            s->nonblocking = fl >= 0 && (fl & O_NONBLOCK);
        }
        if (r != -EAGAIN || s->nonblocking) {
            if (dir == EPOLLIN && r >= 0 && static_cast<std::uint64_t>(r) < requested(e)) s->in_drained = true;
            return complete_now(r);
        }
        if (dir == EPOLLIN) s->in_drained = true;
        else s->out_full = true;
    }
    const std::uint32_t i = alloc();
    if (i == npos) return status::ring_full;
    slot& w = slots_[i];
    w.e = e;
    w.events = events;
    w.kind = poll_op ? wait_kind::poll : is_accept(number) ? wait_kind::accept : wait_kind::io;
    w.multishot = is_stream(number);
    enqueue_waiter(fd, *s, i);
    int r = arm(fd, *s, true);
    if (r == -ENOENT || (r == 0 && !s->registered)) {
        // Registered under another file: those waiters named a file that is gone.
        fail_waiters(fd, *s, -EBADF, i);
        s->registered = false;
        s->armed = 0;
        const int rr = refresh(fd, *s);
        r = rr < 0 ? rr : rr == 1 ? -EPERM : arm(fd, *s);
    }
    if (r != 0) {
        unlink_waiter(i);
        release(i);
        if (r == -EPERM) { // not pollable after all (epoll refuses regular files)
            if (poll_op) return complete_now(static_cast<std::int64_t>(events & (EPOLLIN | EPOLLOUT)));
            return status::unsupported;
        }
        if (r == -EBADF) return complete_now(-EBADF);
        if (!poll_op) return status::unsupported; // ENOMEM, ENOSPC (max_user_watches): a worker blocks instead
        return complete_now(r);
    }
    if (link != npos) {
        w.partner = link;
        slots_[link].partner = i;
        slots_[link].deadline_ns = deadline_ns;
        add_timer(link);
    }
    // An edge registration does not report what was ready before this entry waited: an entry
    // that skipped its attempt (a multishot recv) on a file not known to be drained is tried now.
    if (s->edge && !poll_op && !(dir == EPOLLIN ? s->in_drained : s->out_full)) on_ready(fd, dir);
    return status::ok;
}

status epoll_backend::submit(const submit_entry& e, route_info r) noexcept {
    (void)r;
    const bool buffered = e.number() == recv_select_nr || e.number() == recv_multishot_nr;
    if ((e.flags & entry_flags::fixed_file) || (!buffered && (e.flags & (entry_flags::buffer_select | entry_flags::bundle))))
        return status::unsupported; // registered files and buffers live in a ring
    if (e.flags & entry_flags::drain) return status::invalid_argument;
    if (e.continues_chain()) return status::unsupported; // chains come through submit_chain
    if (inflight() >= capacity()) return status::ring_full;
    if (e.number() == static_cast<std::uint32_t>(operation::link_timeout)) {
        post(e, -EINVAL); // a link_timeout must follow a linked entry
        return status::ok;
    }
    return start(e, npos, 0);
}

status epoll_backend::submit_chain(std::span<const submit_entry> chain, const route_info* routes) noexcept {
    (void)routes;
    if (chain.size() != 2 || chain[1].number() != static_cast<std::uint32_t>(operation::link_timeout) ||
        !(chain[0].flags & entry_flags::link) || chain[1].continues_chain() ||
        chain[0].number() == static_cast<std::uint32_t>(operation::link_timeout))
        return status::unsupported;
    if (chain[0].flags & (entry_flags::fixed_file | entry_flags::buffer_select | entry_flags::bundle | entry_flags::drain))
        return status::unsupported;
    if (inflight() + 2 > capacity()) return status::ring_full;
    const submit_entry& t = chain[1];
    const std::uint32_t lt = alloc();
    slot& ls = slots_[lt];
    ls.e = t;
    ls.kind = wait_kind::link_timer;
    const std::uint64_t deadline = (t.args[1] & timeout_abs) ? t.args[0] : now_ns() + t.args[0];
    submit_entry first = chain[0];
    first.flags &= ~entry_flags::chain_mask;
    first.flags |= chain[0].flags & entry_flags::chain_mask; // echoed as submitted
    const status s = start(first, lt, deadline);
    if (s != status::ok && slots_[lt].in_use && slots_[lt].partner == npos) release(lt);
    return s;
}

// ---- readiness ---------------------------------------------------------------------------------

void epoll_backend::on_ready(int fd, std::uint32_t ev) noexcept {
    if (fd < 0 || static_cast<std::size_t>(fd) >= fds_.size()) return;
    fd_state& s = fds_[static_cast<std::size_t>(fd)];
    if (!s.edge) s.armed = 0; // the one-shot fired
    const bool broken = ev & (EPOLLERR | EPOLLHUP);
    if (ev & (EPOLLIN | EPOLLRDHUP) || broken) s.in_drained = false;
    if (ev & EPOLLOUT || broken) s.out_full = false;
    std::uint32_t blocked = 0; // readiness a waiter found gone (EAGAIN): later ones keep waiting
    std::uint32_t k = s.head;
    while (k != npos) {
        const std::uint32_t next = slots_[k].next;
        slot& w = slots_[k];
        const std::uint32_t mine = ev & (w.events | EPOLLERR | EPOLLHUP);
        if (!mine || (w.events & blocked)) {
            k = next;
            continue;
        }
        if (w.kind == wait_kind::poll) {
            if (!w.multishot) {
                finish(k, static_cast<std::int64_t>(mine));
            } else {
                post(w.e, static_cast<std::int64_t>(mine), completion_flags::more);
                ++rearms_;
            }
            k = next;
            continue;
        }
        const std::int64_t r = attempt(w.e, s);
        if (r == -EAGAIN) {
            blocked |= w.events;
            k = next;
            continue;
        }
        if (w.multishot) {
            // accept_multishot: a connection each; recv_multishot: a buffer each — until EAGAIN,
            // or an error, ENOBUFS or the end of the stream (recv 0) ends it without `more`.
            const bool recv = w.e.number() == recv_multishot_nr;
            if (r > 0 || (r == 0 && !recv)) {
                post(w.e, r, completion_flags::more | completion_flags::emulated | took_flags_, took_buffer_);
                ++rearms_;
                if (!recv && !s.nonblocking) { // a blocking listener: one accept per readiness report
                    blocked |= w.events;
                    k = next;
                }
                continue; // else the same waiter again, until EAGAIN
            }
            unlink_waiter(k);
            const submit_entry e = w.e;
            release(k);
            post(e, r, completion_flags::emulated);
            k = next;
            continue;
        }
        if (w.events == EPOLLIN && r >= 0 && static_cast<std::uint64_t>(r) < requested(w.e)) s.in_drained = true;
        if (w.kind == wait_kind::accept && !s.nonblocking) blocked |= w.events; // one accept per report: the next could block
        finish(k, r, took_flags_, took_buffer_);
        k = next;
    }
    if (s.head == npos || s.edge) return;
    // Blocked waiters keep waiting; the rest saw no readiness of theirs yet.
    if (const int r = arm(fd, s); r != 0) {
        s.registered = r != -ENOENT && s.registered;
        fail_waiters(fd, s, r == -ENOENT ? -EBADF : r);
    }
}

void epoll_backend::add_timer(std::uint32_t i) noexcept {
    try {
        timers_.push({slots_[i].deadline_ns, i, slots_[i].gen});
    } catch (...) {
        finish(i, -ENOMEM);
    }
}

void epoll_backend::expire_timers() noexcept {
    if (timers_.empty()) return;
    const std::uint64_t now = now_ns();
    while (!timers_.empty() && timers_.top().deadline_ns <= now) {
        const timer_ref t = timers_.top();
        timers_.pop();
        slot& s = slots_[t.slot];
        if (!s.in_use || s.gen != t.gen) continue; // completed or cancelled meanwhile
        if (s.kind == wait_kind::timer) {
            std::erase(counted_, t.slot);
            finish(t.slot, -ETIME);
        } else if (s.kind == wait_kind::link_timer) {
            finish(t.slot, -ETIME); // its entry gets -ECANCELED first
        }
    }
}

int epoll_backend::next_timer_ms(int timeout_ms) const noexcept {
    // Drop nothing here (const): stale entries only shorten one sleep.
    if (timers_.empty()) return timeout_ms;
    const std::uint64_t now = now_ns(), at = timers_.top().deadline_ns;
    const std::uint64_t ms = at <= now ? 0 : (at - now + 999'999) / 1'000'000;
    const int t = static_cast<int>(std::min<std::uint64_t>(ms, std::numeric_limits<int>::max()));
    return timeout_ms < 0 ? t : std::min(timeout_ms, t);
}

void epoll_backend::poll_kernel(int timeout_ms) noexcept {
    const int n = ::epoll_wait(epfd_, events_.data(), static_cast<int>(events_.size()), next_timer_ms(timeout_ms));
    for (int j = 0; j < n; ++j) {
        if (events_[static_cast<std::size_t>(j)].data.u64 == doorbell_tag) continue; // the dispatcher consumes it
        on_ready(static_cast<int>(events_[static_cast<std::size_t>(j)].data.u64), events_[static_cast<std::size_t>(j)].events);
    }
    expire_timers();
}

std::size_t epoll_backend::reap_posted(std::span<completion_entry> out) noexcept {
    const std::size_t avail = ready_.size() - ready_head_;
    const std::size_t n = std::min(avail, out.size());
    std::copy_n(ready_.begin() + static_cast<std::ptrdiff_t>(ready_head_), n, out.begin());
    ready_head_ += n;
    if (ready_head_ == ready_.size()) {
        ready_.clear();
        ready_head_ = 0;
    }
    return n;
}

std::size_t epoll_backend::reap(std::span<completion_entry> out) noexcept {
    // Right after wait() (or a look of our own) epoll has nothing new worth a syscall: the loop
    // reaps once per turn, and a turn that slept has just looked.
    if (!looked_ && ready_.size() - ready_head_ < out.size() && (fd_waiters_ || !timers_.empty())) poll_kernel(0);
    looked_ = false;
    return reap_posted(out);
}

int epoll_backend::wait(int fd, int timeout_ms) noexcept {
    if (ready_.size() > ready_head_) return 0;
    if (fd >= 0 && fd != doorbell_) {
        if (doorbell_ >= 0) ::epoll_ctl(epfd_, EPOLL_CTL_DEL, doorbell_, nullptr);
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = doorbell_tag;
        if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) return -errno;
        doorbell_ = fd;
    }
    const int n = ::epoll_wait(epfd_, events_.data(), static_cast<int>(events_.size()), next_timer_ms(timeout_ms));
    looked_ = true;
    if (n < 0) {
        const int err = errno;
        expire_timers();
        return -err;
    }
    for (int j = 0; j < n; ++j) {
        const epoll_event& ev = events_[static_cast<std::size_t>(j)];
        if (ev.data.u64 != doorbell_tag) on_ready(static_cast<int>(ev.data.u64), ev.events);
    }
    expire_timers();
    return (n == 0 && ready_.size() == ready_head_) ? -ETIME : 0;
}

// ---- cancellation ------------------------------------------------------------------------------

bool epoll_backend::cancel_slot(std::uint32_t i) noexcept {
    slot& s = slots_[i];
    if (!s.in_use) return false;
    if (s.kind == wait_kind::timer) std::erase(counted_, i);
    if (s.multishot) { // a stream ends with its final completion, without `more`
        unlink_waiter(i);
        const submit_entry e = s.e;
        release(i);
        post(e, -ECANCELED, s.kind == wait_kind::accept ? completion_flags::emulated : 0);
        return true;
    }
    if (s.kind == wait_kind::link_timer) { // cancelling the timer cancels its entry too
        const std::uint32_t p = s.partner;
        if (p != npos) {
            finish(p, -ECANCELED);
            return true;
        }
    }
    finish(i, -ECANCELED);
    return true;
}

std::error_code epoll_backend::cancel(std::uint64_t corr_id) noexcept {
    for (std::uint32_t i = 0; i < slots_.size(); ++i)
        if (slots_[i].in_use && slots_[i].kind != wait_kind::link_timer && slots_[i].e.corr_id == corr_id) {
            cancel_slot(i);
            return {};
        }
    return {ENOENT, std::system_category()};
}

std::size_t epoll_backend::cancel_all() noexcept {
    std::size_t n = 0;
    for (std::uint32_t i = 0; i < slots_.size(); ++i)
        if (slots_[i].in_use && slots_[i].kind != wait_kind::link_timer && cancel_slot(i)) ++n;
    return n;
}

} // namespace ksvc
