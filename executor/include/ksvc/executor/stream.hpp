#pragma once
//! Streams for coroutines: accept_stream and recv_stream, asynchronous generators over a
//! multishot accept and a multishot recv (native io_uring multishot, or the emulation of the
//! epoll backend and of kernels without multishot — the same completions either way).
//!
//!   ksvc::task<void> serve(ksvc::server_instance& inst, int listener) {
//!       ksvc::accept_stream<ksvc::server_instance> conns(inst, listener);
//!       while (std::optional<int> fd = co_await conns.next()) { ... }
//!   }
//!   ksvc::task<void> echo(ksvc::server_instance& inst, int fd) {
//!       ksvc::recv_stream<ksvc::server_instance> in(inst, fd);
//!       while (auto lease = co_await in.next()) co_await ksvc::async(inst, ksvc::op::send(fd, *lease));
//!       // in.end(): stream_end::peer_closed, cancelled or error (in.error() says which error)
//!   }
//!
//! The contract:
//! - next() yields the next item, or std::nullopt once the stream has ended; end() and error()
//!   then say why. One next() at a time per stream, from tasks on one scheduler's thread.
//! - Re-arming is invisible: a multishot request the kernel ended while the stream is still
//!   good (its CQ was full, a recv ran out of provided buffers, an accept ran out of
//!   descriptors) is submitted again, after a short pause where retrying at once would spin
//!   (ENOBUFS twice in a row: 1 ms; EMFILE / ENFILE / ENOMEM on accept: 20 ms). rearms() and
//!   retries() count them. What retrying cannot mend ends the stream `error` with
//!   errc::not_registered: a direct accept on an instance without a fixed-file table, a recv on
//!   a provided buffer ring whose registration the kernel refused.
//! - recv_stream's items are leases of the instance's provided buffers (dropping one gives the
//!   buffer back to the ring); an item is never lost or repeated. It needs a buffer provider
//!   with a group (provided_buffer_ring).
//! - Cancellation: a stop request on the token (any thread, any time) cancels the request in
//!   flight; items that arrived before it are still yielded, then the stream ends `cancelled`.
//! - Lifetime: the stream is the completion target of its request, so it may be destroyed
//!   only when the kernel is done with it. Its destructor makes sure of that: it cancels a
//!   request in flight and waits for the last completion (inline: driving the instance, which
//!   requires the owner thread; threaded: sleeping until the loop delivers it). Items that
//!   arrived and were never taken are released: buffers recycled, accepted sockets closed.
//! - Allocation: a stream allocates its queue once (it grows only if completions arrive faster
//!   than they are taken) and next()'s coroutine frame once: frames are reused, nothing is
//!   allocated per item.
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <coroutine>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <system_error>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include <unistd.h>

#include <ksvc/core/entry.hpp>
#include <ksvc/core/error.hpp>
#include <ksvc/core/operations.hpp>
#include <ksvc/executor/frame_stack.hpp>
#include <ksvc/executor/op.hpp>
#include <ksvc/executor/sys.hpp>
#include <ksvc/executor/task.hpp>

namespace ksvc {

//! Why a stream stopped yielding (running while it has not).
enum class stream_end : std::uint8_t {
    running,
    peer_closed, //!< recv: the peer shut down its side (a zero-byte receive)
    cancelled,   //!< the stop token was triggered
    error,       //!< error() says which
};
constexpr const char* to_string(stream_end e) noexcept {
    switch (e) {
    case stream_end::running: return "running";
    case stream_end::peer_closed: return "peer closed";
    case stream_end::cancelled: return "cancelled";
    case stream_end::error: return "error";
    }
    return "?";
}

namespace detail::coro {

// One reusable block for the frame of next(): a stream runs one next() at a time, so the
// frame of the previous call is always gone when the next one is made.
class frame_arena {
public:
    void* allocate(std::size_t n) {
        if (in_use_) throw std::logic_error("ksvc stream: next() called while another next() of the same stream is running");
        if (n > size_) {
            block_.reset(new std::byte[n]);
            size_ = n;
        }
        in_use_ = true;
        return block_.get();
    }
    void deallocate(void*, std::size_t) noexcept { in_use_ = false; }

private:
    std::unique_ptr<std::byte[]> block_;
    std::size_t size_ = 0;
    bool in_use_ = false;
};
template <class T>
using arena_allocator = frame_source_allocator<frame_arena, T>;

//! What arrived: a completion, and what was made of it where it was delivered (`Extra`: a
//! recv's lease, taken in completion order; nothing for accept).
template <class Extra>
struct arrival {
    completion_entry c;
    Extra extra;
};

//! The machinery both streams share: one multishot request whose completions queue here until
//! next() takes them, and the coroutine waiting for one. `capture` runs where a completion is
//! delivered, in completion order, and makes its Extra.
template <class Instance, class Extra>
class stream_core : completion_target {
public:
    stream_core(const stream_core&) = delete;
    stream_core& operator=(const stream_core&) = delete;

    //! The instance the stream's request runs on.
    [[nodiscard]] Instance& owner() const noexcept { return inst_; }
    [[nodiscard]] stream_end end() const noexcept { return end_; }
    //! Whether a request is in flight, so the kernel may still deliver into the queue: false
    //! before the first next(), once the stream ended, and while a throttled stream (max_queued
    //! reached and its cancel landed) waits for the consumer. Any thread may ask.
    [[nodiscard]] bool armed() const noexcept { return armed_.load(std::memory_order_acquire); }
    //! The error that ended the stream (end() == error), ECANCELED when cancelled, else none.
    [[nodiscard]] std::error_code error() const noexcept { return error_; }
    //! Times the request was submitted again after the kernel ended it.
    [[nodiscard]] std::uint64_t rearms() const noexcept { return rearms_; }
    //! Of those, the ones that waited first (ENOBUFS in a row; EMFILE, ENFILE, ENOMEM on accept).
    [[nodiscard]] std::uint64_t retries() const noexcept { return retries_; }

protected:
    using capture_fn = Extra (*)(stream_core& self, const completion_entry& c) noexcept;
    stream_core(Instance& inst, const submit_entry& arm, std::stop_token stop, capture_fn capture)
        : inst_(inst), capture_(capture), arm_(arm), stop_(std::move(stop)) {
        complete = &on_complete;
        arm_.corr_id = reinterpret_cast<std::uint64_t>(static_cast<completion_target*>(this));
        arm_.flags |= entry_flags::completion_target;
        cancel_.corr_id = arm_.corr_id;
        queue_.reserve(16);
        if (stop_.stop_possible()) on_stop_.emplace(stop_, canceller{this});
    }
    ~stream_core() = default; // the derived stream calls finish() first

    // Cancels a request in flight and waits for its last completion; withdraws any cancel
    // request. The derived destructor calls it, then releases what is left in the queue.
    void finish() noexcept {
        on_stop_.reset(); // no callback runs after this
        if (armed_.load(std::memory_order_acquire)) {
            inst_.loop().request_cancel(cancel_);
            if (inst_.loop().mode() == dispatch_mode::inline_mode) {
                // Only the owner can drive the loop that delivers the last completion.
                if (!inst_.loop().may_drive_here()) std::terminate();
                while (armed_.load(std::memory_order_acquire)) inst_.run_once(true, 10);
            } else {
                std::unique_lock lock(mutex_);
                final_cv_.wait(lock, [&] { return !armed_.load(std::memory_order_acquire); });
            }
        }
        inst_.loop().withdraw_cancel(cancel_);
    }

    // (Re)submits the request. Returns false (and ends the stream) if the instance refuses it.
    bool arm() {
        if (stop_.stop_requested()) return end_with(stream_end::cancelled, std::errc::operation_canceled);
        // A throttle's cancel for the last request (which then ended another way) must not reach
        // this one: withdrawn while it waits, it never will; once the loop has taken it, it was
        // bound to the last request (the backend cancels that request's slot, not the id). A
        // stop requested meanwhile is asked again after the submission, below.
        inst_.loop().withdraw_cancel(cancel_);
        {
            std::lock_guard lock(mutex_);
            throttled_ = false;
        }
        armed_.store(true, std::memory_order_seq_cst);
        if (const std::error_code ec = submit_retrying(inst_, arm_)) {
            armed_.store(false, std::memory_order_release);
            return end_with(stream_end::error, ec);
        }
        // A stop between the check above and `armed_` was seen by nobody: cancel now.
        if (stop_.stop_requested()) inst_.loop().request_cancel(cancel_);
        return true;
    }
    // Nothing in flight and nothing queued: the last request's completions have all been taken,
    // so it may be submitted again. (Arming while its final completion still waits in the queue
    // would race that completion: a stream cancelled or closed meanwhile would be armed anew.)
    [[nodiscard]] bool idle() const noexcept {
        std::lock_guard lock(mutex_);
        return !armed_.load(std::memory_order_acquire) && head_ == queue_.size();
    }

    [[nodiscard]] bool stop_requested() const noexcept { return stop_.stop_requested(); }
    // Whether the request's end came from the queue bound (max_queued): cleared when asked.
    bool take_throttled() noexcept {
        std::lock_guard lock(mutex_);
        return std::exchange(throttled_, false);
    }

    // co_await next_completion(): the oldest completion not yet taken.
    struct completion_awaiter {
        stream_core& s;
        bool await_ready() noexcept {
            std::lock_guard lock(s.mutex_);
            return s.head_ < s.queue_.size();
        }
        bool await_suspend(std::coroutine_handle<> h) {
            scheduler* sched = scheduler::current();
            if (!sched) throw std::logic_error("ksvc stream: next() awaited outside a ksvc::scheduler (run the task with ksvc::sync_wait)");
            std::lock_guard lock(s.mutex_);
            if (s.head_ < s.queue_.size()) return false; // arrived meanwhile
            s.sched_ = sched;
            s.waiting_ = h;
            return true;
        }
        arrival<Extra> await_resume() noexcept {
            std::lock_guard lock(s.mutex_);
            arrival<Extra> a = std::move(s.queue_[s.head_++]);
            if (s.head_ == s.queue_.size()) s.queue_.clear(), s.head_ = 0;
            return a;
        }
    };
    completion_awaiter next_completion() noexcept { return {*this}; }

    // Pauses before a retry that would otherwise spin; a stop request cuts it short. Its frame
    // has an arena of its own (next()'s frame is alive meanwhile).
    task<void> pause(std::chrono::milliseconds d) {
        ++retries_;
        return pause_impl(std::allocator_arg, arena_allocator<std::byte>(&pause_frames_), d);
    }

    bool end_with(stream_end why, std::error_code ec = {}) noexcept {
        end_ = why;
        error_ = ec;
        inst_.loop().withdraw_cancel(cancel_);
        return false;
    }
    bool end_with(stream_end why, std::errc e) noexcept { return end_with(why, std::make_error_code(e)); }
    // A completion that ended the request: -ECANCELED after a stop is `cancelled`.
    bool end_with_result(std::int64_t result, const completion_entry& c) noexcept {
        if (result == -ECANCELED && stop_.stop_requested()) return end_with(stream_end::cancelled, std::errc::operation_canceled);
        return end_with(stream_end::error, c.error());
    }

    // Completions that arrived and were never taken (the destructor releases their items).
    template <class F>
    void drain_untaken(F&& release) noexcept {
        std::lock_guard lock(mutex_);
        for (std::size_t i = head_; i < queue_.size(); ++i) release(queue_[i].c);
        queue_.clear(); // and what was captured with them (leases go back)
        head_ = 0;
    }

    Instance& inst_;
    capture_fn capture_;
    frame_arena frames_, pause_frames_;
    std::uint64_t rearms_ = 0, retries_ = 0;
    // Items delivered and not yet taken at which the request is cancelled (0: no bound): a
    // consumer that stops taking then holds at most this many, the rest waits in the kernel.
    std::size_t max_queued_ = 0;

private:
    task<void> pause_impl(std::allocator_arg_t, arena_allocator<std::byte>, std::chrono::milliseconds d) {
        co_await ksvc::async(inst_, op::timeout(d), stop_);
    }

    static void on_complete(completion_target* self, const completion_entry& c) noexcept {
        auto* s = static_cast<stream_core*>(self);
        std::coroutine_handle<> h;
        scheduler* sched = nullptr;
        bool throttle = false;
        {
            std::lock_guard lock(s->mutex_);
            try {
                s->queue_.push_back({c, s->capture_(*s, c)});
            } catch (...) {
                std::terminate(); // a completion that cannot be kept would be lost
            }
            h = std::exchange(s->waiting_, {});
            sched = s->sched_;
            if (!c.more()) {
                s->armed_.store(false, std::memory_order_release);
                s->final_cv_.notify_all(); // under the lock: the stream may go once it is released
            } else if (s->max_queued_ && !s->throttled_ && s->queue_.size() - s->head_ >= s->max_queued_) {
                s->throttled_ = throttle = true;
            }
        }
        // Still armed (`more`): its final completion is yet to come, so the stream cannot be
        // gone. The request ends with -ECANCELED and next() arms it again once the consumer has
        // taken what is queued.
        if (throttle) s->inst_.loop().request_cancel(s->cancel_);
        if (h) sched->post(h); // after the lock, `s` is not touched again
    }

    struct canceller {
        stream_core* self;
        void operator()() const noexcept {
            if (self->armed_.load(std::memory_order_seq_cst)) self->inst_.loop().request_cancel(self->cancel_);
        }
    };

    submit_entry arm_;
    std::stop_token stop_;
    std::optional<std::stop_callback<canceller>> on_stop_;
    cancel_request cancel_;
    std::atomic<bool> armed_{false};
    stream_end end_ = stream_end::running;
    std::error_code error_;

    mutable std::mutex mutex_; // guards what follows: the delivering thread and the consumer
    std::condition_variable final_cv_;
    std::vector<arrival<Extra>> queue_;
    std::size_t head_ = 0;
    bool throttled_ = false;
    std::coroutine_handle<> waiting_;
    scheduler* sched_ = nullptr;
};

} // namespace detail::coro

//! Connections from a listening socket, one per next(): plain descriptors (Fd = int; closed
//! with close(2) or sys::close by the consumer) or direct descriptors of the ring's file table
//! (Fd = direct_fd; close them with op::close). `flags` are accept4's (SOCK_CLOEXEC is added
//! for plain descriptors).
template <class Instance, class Fd = int>
class accept_stream : public detail::coro::stream_core<Instance, std::monostate> {
    static_assert(std::is_same_v<Fd, int> || std::is_same_v<Fd, direct_fd>,
                  "ksvc::accept_stream<Instance, Fd>: Fd is int (plain descriptors) or ksvc::direct_fd");
    using core = detail::coro::stream_core<Instance, std::monostate>;

public:
    accept_stream(Instance& inst, int listen_fd, std::stop_token stop = {}, int flags = 0)
        : core(inst, arm_entry(listen_fd, flags), std::move(stop), [](core&, const completion_entry&) noexcept {
              return std::monostate{};
          }) {}
    ~accept_stream() {
        this->finish();
        this->drain_untaken([&](const completion_entry& c) noexcept {
            if (c.result < 0) return;
            if constexpr (std::is_same_v<Fd, int>) {
                ::close(static_cast<int>(c.result));
            } else {
                // No completion is wanted: a failure to close a slot nobody uses is harmless.
                (void)this->inst_.submit(op::skip_success(op::close(direct_fd{static_cast<std::uint32_t>(c.result)})));
            }
        });
    }

    //! The next connection, or std::nullopt when the stream ended (end(), error()).
    task<std::optional<Fd>> next() { return next_impl(std::allocator_arg, detail::coro::arena_allocator<std::byte>(&this->frames_)); }

private:
    static submit_entry arm_entry(int listen_fd, int flags) noexcept {
        if constexpr (std::is_same_v<Fd, int>) return op::accept_multishot(listen_fd, flags | SOCK_CLOEXEC);
        else return op::accept_multishot_direct(listen_fd, flags);
    }

    task<std::optional<Fd>> next_impl(std::allocator_arg_t, detail::coro::arena_allocator<std::byte>) {
        for (;;) {
            if (this->end() != stream_end::running) co_return std::nullopt;
            if (this->idle() && !this->arm()) co_return std::nullopt;
            // A local, not (co_await …).c: GCC 12 mis-parses that inside a template.
            const detail::coro::arrival<std::monostate> a = co_await this->next_completion();
            const completion_entry& c = a.c;
            const std::int64_t r = c.result;
            if constexpr (std::is_same_v<Fd, direct_fd> && requires(const Instance& i) { i.features().fixed_files; }) {
                // No file table at all: ENFILE forever, not a table that will have a free slot.
                if (r == -ENFILE && !c.more() && this->owner().features().fixed_files == 0) {
                    this->end_with(stream_end::error, make_error_code(errc::not_registered));
                    co_return std::nullopt;
                }
            }
            // Ended by the kernel with a connection (its CQ was full), or out of descriptors or
            // memory: armed again by the next turn. Plain descriptors: the connections wait in
            // the backlog meanwhile. Direct ones: a full table fails after the kernel accepted,
            // so that one connection is closed (the kernel's order), and later ones wait.
            const bool recoverable = r >= 0 || r == -EMFILE || r == -ENFILE || r == -ENOMEM || r == -ENOBUFS;
            if (!c.more() && recoverable) ++this->rearms_;
            if (r >= 0) {
                if constexpr (std::is_same_v<Fd, int>) co_return static_cast<int>(r);
                else co_return direct_fd{static_cast<std::uint32_t>(r)};
            }
            if (c.more()) continue; // a failed accept the stream survives
            if (!recoverable) {
                this->end_with_result(r, c);
                co_return std::nullopt;
            }
            co_await this->pause(std::chrono::milliseconds(20));
        }
    }
};

//! Bytes from a connected socket as leases of the instance's provided buffers, one per
//! next() (a bundle lease may span several buffers). Ends peer_closed at the peer's shutdown.
//!
//! About `max_queued` leases at most wait untaken (default 64; 0: no bound): at the bound the
//! request is cancelled (what arrives before the cancel takes effect still queues) and armed
//! again when next() has taken them, so a consumer that stops taking — a connection whose
//! answers wait for a slow peer — cannot hold every buffer of the ring while its peer keeps
//! sending. The unread bytes wait in the socket (TCP pushes back on the peer); none is lost or
//! reordered. rearms() counts these too.
template <class Instance>
class recv_stream : public detail::coro::stream_core<Instance,
                                                      decltype(std::declval<typename Instance::buffer_type&>().take(std::declval<const completion_entry&>()))> {
    using provider = typename Instance::buffer_type;
    static_assert(requires(provider& p, const completion_entry& c) {
        { p.group() } -> std::convertible_to<std::uint16_t>;
        p.take(c);
    }, "ksvc::recv_stream needs an instance whose buffer provider is a group the kernel picks from (provided_buffer_ring)");

public:
    using lease = decltype(std::declval<provider&>().take(std::declval<const completion_entry&>()));

    static constexpr std::size_t default_max_queued = 64;

    recv_stream(Instance& inst, int fd, std::stop_token stop = {}, int flags = 0, std::size_t max_queued = default_max_queued)
        : core(inst, op::recv_multishot(fd, shared_group(inst), flags), std::move(stop), &capture) {
        this->max_queued_ = max_queued;
    }
    recv_stream(Instance& inst, direct_fd fd, std::stop_token stop = {}, int flags = 0,
                std::size_t max_queued = default_max_queued)
        : core(inst, op::recv_multishot(fd, shared_group(inst), flags), std::move(stop), &capture) {
        this->max_queued_ = max_queued;
    }
    ~recv_stream() {
        this->finish();
        this->drain_untaken([](const completion_entry&) noexcept {}); // the queued leases go back
    }

    //! The next received bytes, or std::nullopt when the stream ended (end(), error()).
    task<std::optional<lease>> next() { return next_impl(std::allocator_arg, detail::coro::arena_allocator<std::byte>(&this->frames_)); }

private:
    using core = detail::coro::stream_core<Instance, lease>;

    // Buffers are taken where completions are delivered, in the order they were posted (with
    // incremental consumption that order places the bytes). A threaded instance delivers on its
    // loop thread while the consumer drops leases on its own: the provider must allow both.
    static std::uint16_t shared_group(Instance& inst) noexcept {
        if (inst.loop().mode() == dispatch_mode::threaded) {
            if constexpr (requires { inst.buffers().share_between_threads(); }) inst.buffers().share_between_threads();
        }
        return inst.buffers().group();
    }
    static lease capture(core& self, const completion_entry& c) noexcept {
        return c.result > 0 ? self.owner().buffers().take(c) : lease{};
    }

    task<std::optional<lease>> next_impl(std::allocator_arg_t, detail::coro::arena_allocator<std::byte>) {
        for (;;) {
            if (this->end() != stream_end::running) co_return std::nullopt;
            if (this->idle() && !this->arm()) co_return std::nullopt;
            detail::coro::arrival<lease> a = co_await this->next_completion();
            const completion_entry& c = a.c;
            if (c.result > 0) {
                starved_ = false;
                if (!c.more()) ++this->rearms_; // the kernel ended it with data (a full CQ)
                if (a.extra) co_return std::optional<lease>(std::move(a.extra));
                // A completion naming no buffer of this provider cannot happen with a group
                // recv; treat it as the error it would be rather than lose bytes silently.
                this->end_with(stream_end::error, std::make_error_code(std::errc::no_buffer_space));
                co_return std::nullopt;
            }
            if (c.result == 0) {
                this->end_with(stream_end::peer_closed);
                co_return std::nullopt;
            }
            if (c.more()) continue;
            if (this->take_throttled() && c.result == -ECANCELED && !this->stop_requested()) {
                ++this->rearms_; // ended by the queue bound: everything queued was taken, arm again
                continue;
            }
            if (c.result == -ENOBUFS) {
                if constexpr (requires(provider& pr) { pr.registration_error(); }) {
                    // A group the kernel never took: ENOBUFS forever, not a ring waiting for drops.
                    if (this->owner().buffers().registration_error() != 0) {
                        this->end_with(stream_end::error, make_error_code(errc::not_registered));
                        co_return std::nullopt;
                    }
                }
                // Every buffer is leased: at once the first time (leases drop all the time),
                // after 1 ms when it happens again with nothing received in between.
                ++this->rearms_;
                if (std::exchange(starved_, true)) co_await this->pause(std::chrono::milliseconds(1));
                continue;
            }
            this->end_with_result(c.result, c);
            co_return std::nullopt;
        }
    }

    bool starved_ = false;
};

} // namespace ksvc
