#pragma once
//! epoll_backend — the Tier-1 backend where io_uring is not: readiness from epoll plus syscalls
//! that cannot block, for sockets, pipes, FIFOs, eventfds and other pollable files.
//!
//! What it executes (offer_for(); the router sends the rest of Tier 1 to the workers):
//!   read, write, readv, writev — preadv2/pwritev2 at the current position with RWF_NOWAIT
//!   recvfrom, sendto, recvmsg, sendmsg — with MSG_DONTWAIT (sends also MSG_NOSIGNAL: EPIPE, no SIGPIPE)
//!   accept, accept4 — on readiness (no per-call non-blocking accept exists; see below)
//!   socket, bind, listen, shutdown, pipe, pipe2, epoll_ctl — never block: run in place
//!   close — drops ksvc's registration first; operations waiting on that fd get -EBADF
//!   operations: nop, poll, poll_multishot, timeout (relative or IORING_TIMEOUT_ABS, with a
//!   count), link_timeout (a [entry, link_timeout] chain: call() with a deadline), cancel (by
//!   corr_id, fd or all), accept_multishot (emulated: accepts on readiness until EAGAIN, which
//!   keeps it waiting even on a non-blocking listener, as io_uring's does; a blocking listener
//!   accepts once per readiness report; `emulated` is set in its completions), recv_select and recv_multishot (emulated) into a provided
//!   buffer ring consumed in user space (add_user_buffers: the instance hands it its
//!   provided_buffer_ring; an unknown group or an empty ring is -ENOBUFS, as in the kernel, and a
//!   multishot recv ends with it). Everything else needing a ring (fixed files, registered
//!   buffers, zero-copy sends, msg_ring) is refused with errc::unsupported by the router.
//!
//! How an entry runs: the syscall is attempted at once in its non-blocking form; EAGAIN on a
//! file the user opened blocking means "wait": the entry joins its fd's FIFO of waiters, the fd
//! is armed in epoll (EPOLLONESHOT, the union of what its waiters need: one registration per fd
//! however many entries wait on it) and the attempt is repeated when epoll reports readiness.
//! A user's fd is never made O_NONBLOCK (the user would see it). On a fd the user made
//! O_NONBLOCK the attempt's EAGAIN is the result, as with the syscall. After a read that
//! drained a stream (short read) or an EAGAIN, the next entry skips the attempt and waits: arming
//! a one-shot registration reports a file that is already ready at once, so nothing is missed.
//!
//! Regular files, directories and block devices cannot be polled (epoll_ctl: EPERM): submit()
//! returns status::unsupported for them and the dispatcher runs the entry on a worker. So does a
//! file whose type has no non-blocking read or write (RWF_NOWAIT: EOPNOTSUPP, e.g. a tty) — except
//! pipes, which older kernels (before 6.4) also refuse RWF_NOWAIT: their read and write run on
//! readiness, sized so they cannot block (FIONREAD bytes; the free room, whole if at most
//! PIPE_BUF) — safe while this loop is the pipe end's only reader or writer. readv/writev on such
//! a pipe go to a worker.
//!
//! Readiness, two ways (the type says which):
//! - epoll_backend: EPOLLONESHOT, re-armed (EPOLL_CTL_MOD) for each wait — one epoll_ctl per
//!   wait, and no fd can be closed behind ksvc's back unnoticed (below). The fallback of
//!   default_instance and server_instance, whose users did not choose epoll.
//! - epoll_edge_backend: EPOLLET, registered once for every readiness of a socket and kept for as
//!   long as the fd lives — no epoll_ctl per wait, like a hand-written edge-triggered server
//!   (libuv, Asio and mio keep their registrations the same way). Its contract is theirs: a
//!   socket waited on is closed through ksvc (close runs on the loop and drops the registration
//!   first), or its number is next given out through ksvc (accept, socket: the stale state is
//!   dropped then). A socket closed with ::close() and its number reused by a file ksvc did not
//!   create (open, dup2 on a worker, or the user's own syscalls) keeps the old registration: an
//!   entry waiting on the new file waits until cancelled. Blocking listeners and everything that
//!   is not a socket stay one-shot. epoll_instance uses it.
//!
//! fds closed behind ksvc's back: the registration belongs to (file, fd). A one-shot fd is
//! re-armed with EPOLL_CTL_MOD, which fails with ENOENT once the number names another file: the
//! entries that waited on the old file then complete with -EBADF and the fd is registered afresh
//! (its type and O_NONBLOCK read again). A number handed out again by accept or socket (seen by
//! the backend) does the same at once, in both modes. dup()ed fds are registered apart (each fd
//! its own waiters). An fd closed outside ksvc while entries wait on it, and never reused, leaves
//! them waiting until they are cancelled (cancel, or the instance's teardown).
//!
//! Limits, documented rather than hidden:
//! - accept on a blocking listener runs after readiness: if another thread or process accepts
//!   the same connection first, accept4 blocks the driving thread until the next connection.
//! - O_NONBLOCK is read when the fd is registered; set or clear it before handing it to ksvc.
//! - `drain` is not supported (errc::invalid_argument); chains other than [entry, link_timeout]
//!   go to one worker in order when every member may, as on a kernel without io_uring.
//!
//! Threads: one thread drives it (the dispatcher's), like a ring; nothing here is thread-safe.
#include <sys/epoll.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <queue>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include <ksvc/core/concepts/io_backend.hpp>
#include <ksvc/core/kernel.hpp>
#include <ksvc/module/backends/io_uring_backend.hpp>
#include <ksvc/module/routers/route_table.hpp>

namespace ksvc {

class epoll_backend {
public:
    static constexpr const char* name() noexcept { return "epoll"; }
    //! Entries in flight: io_uring_options::max_inflight, else its cq_entries, else its entries.
    //! Throws std::system_error naming epoll_create1 when the kernel refuses an epoll instance.
    //! Readiness: io_uring_options::epoll_readiness_mode, else `type_default`.
    explicit epoll_backend(const capabilities& caps, io_uring_options opts = {},
                           epoll_readiness type_default = epoll_readiness::one_shot);
    ~epoll_backend();
    epoll_backend(const epoll_backend&) = delete;
    epoll_backend& operator=(const epoll_backend&) = delete;

    //! What it executes, for the router (the same on every kernel with epoll).
    static routing::backend_offer offer_for(const capabilities& caps);
    [[nodiscard]] routing::backend_offer offer() const { return offer_for(caps_); }

    status submit(const submit_entry& e, route_info r) noexcept;
    //! [entry with `link`, link_timeout]: the entry with a deadline. Any other chain: unsupported.
    status submit_chain(std::span<const submit_entry> chain, const route_info* routes) noexcept;
    int flush() noexcept { return 0; } // every entry was issued (or armed) by submit()
    //! Completions ready, after a non-blocking look at epoll when entries wait on fds or timers.
    std::size_t reap(std::span<completion_entry> out) noexcept;
    //! Completions ready, without a syscall (for a loop about to sleep in wait()).
    std::size_t reap_posted(std::span<completion_entry> out) noexcept;
    std::error_code cancel(std::uint64_t corr_id) noexcept;
    std::size_t cancel_all() noexcept;
    int wait(int fd, int timeout_ms = -1) noexcept;
    [[nodiscard]] std::size_t inflight() const noexcept { return used_ + ready_.size() - ready_head_; }
    [[nodiscard]] std::size_t capacity() const noexcept { return slots_.size(); }
    [[nodiscard]] bool supports(opcode op) const noexcept;
    //! A provided-buffer ring to take recv buffers from (its group), before the loop starts.
    void add_user_buffers(const user_buffer_ring& r) { groups_.push_back({r, 0}); }

    //! Entries the blocking facade must not run on its caller's thread: close, so that the fd's
    //! registration and waiters are dropped before the number can be reused — and, with edge
    //! registrations, accept and socket, so that a number given out again is seen here.
    [[nodiscard]] bool needs_loop(const submit_entry& e) const noexcept {
        namespace nr = syscalls::x86_64;
        return e.nr == nr::close || (edge_ && (e.nr == nr::accept || e.nr == nr::accept4 || e.nr == nr::socket));
    }

    //! No ring: the fields say nothing is in effect, and `notes` says why this backend serves.
    [[nodiscard]] const effective_features& features() const noexcept { return features_; }
    void add_note(const std::string& line) { features_.notes += (features_.notes.empty() ? "" : "\n") + line; }
    [[nodiscard]] int epoll_fd() const noexcept { return epfd_; }
    [[nodiscard]] static constexpr std::uint32_t setup_flags() noexcept { return 0; } // no ring
    //! Emulated multishot completions produced (accept_multishot, poll_multishot re-arms).
    [[nodiscard]] std::uint64_t stream_rearms() const noexcept { return rearms_; }
    [[nodiscard]] epoll_readiness readiness() const noexcept { return edge_ ? epoll_readiness::edge : epoll_readiness::one_shot; }

private:
    static constexpr std::uint32_t npos = ~0u;
    enum class fd_kind : std::uint8_t { unknown, socket, other };
    enum class wait_kind : std::uint8_t { io, poll, accept, timer, link_timer };
    struct slot {
        submit_entry e;
        std::uint64_t deadline_ns = 0; // timers and linked entries: CLOCK_MONOTONIC
        std::uint64_t count = 0;       // timeout with a count: completes after this many others
        std::uint32_t next = npos;     // the next waiter on the same fd; the free list
        std::uint32_t partner = npos;  // a linked entry's link_timeout and back
        std::uint32_t gen = 0;         // stale timer-heap entries carry an older generation
        std::int32_t fd = -1;          // the fd it waits on, -1: none (a timer)
        std::uint32_t events = 0;      // EPOLLIN / EPOLLOUT it waits for
        wait_kind kind = wait_kind::io;
        bool in_use = false;
        bool multishot = false;
        bool waiting = false;          // linked into its fd's waiters
    };
    struct fd_state {
        std::uint32_t head = npos, tail = npos;
        std::uint32_t armed = 0;        // events armed in the kernel (0: none, or the one-shot fired)
        fd_kind kind = fd_kind::unknown;
        bool registered = false;
        bool nonblocking = false;
        bool in_drained = false, out_full = false; // skip the attempt: wait for readiness
        bool fifo = false;      // a pipe or FIFO
        bool no_nowait = false; // a pipe on a kernel without RWF_NOWAIT for pipes (before 6.4): see attempt()
        bool edge = false;      // registered edge-triggered for every readiness (epoll_edge_backend)
    };
    struct buffer_group {
        user_buffer_ring r;
        std::uint16_t head = 0; // the next entry this backend takes (the kernel's head)
    };
    struct timer_ref {
        std::uint64_t deadline_ns;
        std::uint32_t slot, gen;
        bool operator>(const timer_ref& o) const noexcept { return deadline_ns > o.deadline_ns; }
    };

    enum class attempt_result : std::uint8_t { done, wait, worker };
    std::uint32_t alloc() noexcept;
    void release(std::uint32_t i) noexcept;
    void post(const submit_entry& e, std::int64_t result, std::uint32_t flags = 0, std::uint32_t aux = 0) noexcept;
    std::int64_t recv_into_buffer(const submit_entry& e) noexcept;
    std::int64_t pipe_without_nowait(const submit_entry& e) noexcept;
    // Completes slot i (and its link partner).
    void finish(std::uint32_t i, std::int64_t result, std::uint32_t flags = 0, std::uint32_t aux = 0) noexcept;
    fd_state* state_for(int fd) noexcept;
    int refresh(int fd, fd_state& s) noexcept;
    std::int64_t attempt(const submit_entry& e, fd_state& s) noexcept;
    std::int64_t try_once(const submit_entry& e, const fd_state& s) noexcept;
    std::int64_t run_in_place(const submit_entry& e) noexcept;
    status start(const submit_entry& e, std::uint32_t link, std::uint64_t deadline_ns) noexcept;
    void enqueue_waiter(int fd, fd_state& s, std::uint32_t i) noexcept;
    void unlink_waiter(std::uint32_t i) noexcept;
    int arm(int fd, fd_state& s, bool force = false) noexcept;
    void fail_waiters(int fd, fd_state& s, std::int64_t result, std::uint32_t except = npos) noexcept;
    void note_new_fd(int fd) noexcept;
    void on_ready(int fd, std::uint32_t events) noexcept;
    void poll_kernel(int timeout_ms) noexcept;
    void expire_timers() noexcept;
    void add_timer(std::uint32_t i) noexcept;
    void count_completion() noexcept;
    int next_timer_ms(int timeout_ms) const noexcept;
    bool cancel_slot(std::uint32_t i) noexcept;

    capabilities caps_;
    io_uring_options opts_;
    int epfd_ = -1;
    int doorbell_ = -1; // the fd registered as the dispatcher's doorbell
    std::vector<slot> slots_;
    std::uint32_t free_ = npos;
    std::size_t used_ = 0;
    std::size_t fd_waiters_ = 0; // slots waiting on an fd
    std::vector<fd_state> fds_;
    std::size_t max_fds_ = 0; // the hard RLIMIT_NOFILE: no fd reaches it
    std::vector<completion_entry> ready_;
    std::size_t ready_head_ = 0;
    std::priority_queue<timer_ref, std::vector<timer_ref>, std::greater<>> timers_;
    std::vector<std::uint32_t> counted_; // timeouts with a completion count
    std::vector<epoll_event> events_;
    std::vector<buffer_group> groups_;
    std::uint32_t took_flags_ = 0, took_buffer_ = 0; // what the last attempt's completion carries
    effective_features features_;
    std::uint64_t rearms_ = 0;
    bool looked_ = false; // wait() polled epoll since the last reap()
    bool edge_ = false;   // sockets edge-triggered (epoll_edge_backend)
};
static_assert(io_backend<epoll_backend>);

//! The epoll backend with sockets registered once, edge-triggered (see "Readiness, two ways"),
//! unless io_uring_options::epoll_readiness_mode says one-shot.
class epoll_edge_backend : public epoll_backend {
public:
    explicit epoll_edge_backend(const capabilities& caps, io_uring_options opts = {})
        : epoll_backend(caps, opts, epoll_readiness::edge) {}
};
static_assert(io_backend<epoll_edge_backend>);

} // namespace ksvc
