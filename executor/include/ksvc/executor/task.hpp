#pragma once
//! C++20 coroutines over any instance: ksvc::task<T>, co_await inst.async(entry) — here
//! ksvc::async(inst, entry) — a ksvc::scheduler that resumes them, sync_wait, when_all and
//! task_scope (tasks left running, joined later). Streams (multishot) are in stream.hpp.
//!
//!   ksvc::task<std::int64_t> copy_once(ksvc::default_instance& inst, int in, int out) {
//!       char buf[4096];
//!       const auto r = co_await ksvc::async(inst, ksvc::sys::read(in, buf, sizeof buf));
//!       if (r.result <= 0) co_return r.result;
//!       co_return (co_await ksvc::async(inst, ksvc::sys::write(out, buf, r.result))).result;
//!   }
//!   std::int64_t n = ksvc::sync_wait(inst, copy_once(inst, a, b));
//!
//! Where a coroutine resumes (the contract):
//! - A completion never resumes its coroutine where it is delivered. The delivering thread
//!   (the loop thread in threaded mode; the owner inside run_once() in inline mode) posts the
//!   coroutine to the scheduler that awaited it, and that scheduler's thread resumes it.
//! - sync_wait(inst, t) runs a scheduler on the calling thread until `t` is done. Inline mode:
//!   it drives the instance itself — one run_once() (which may sleep in the kernel), then the
//!   coroutines that became ready, never from inside the loop. Threaded mode: it sleeps until a
//!   completion posts work, so a coroutine never resumes on the loop thread.
//! - Awaiting ksvc::async outside a scheduler (no sync_wait or scheduler::scope on this thread)
//!   throws std::logic_error at the co_await; so does sync_wait on a thread that may not drive
//!   an inline instance (one whose ring is bound to another thread).
//!
//! Errors: a completion's result is the syscall's (-errno); a full submit lane is waited out (the
//! loop drains it: inline, one turn that does not block; threaded, the loop thread); a submission
//! the instance refuses (shut down, a forked child, a multishot operation — use a stream) throws
//! std::system_error with ksvc::errc at the co_await. Exceptions propagate through co_await of
//! a task and out of sync_wait; when_all rethrows the first after every branch has finished.
//!
//! Allocation: one coroutine frame per task; none per co_await ksvc::async (the awaiter lives in
//! the frame, the completion reaches it through its completion_target). A task's frame comes
//! from `::operator new`, or from an allocator passed as `std::allocator_arg, alloc` leading the
//! coroutine's parameters (the allocator hook).
//!
//! Threads: a task is started and resumed by one scheduler thread at a time; async() may be
//! awaited from any task on a scheduler's thread, whatever the instance's mode (inline: the
//! scheduler's thread must be the instance's owner).
#include <atomic>
#include <condition_variable>
#include <coroutine>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <system_error>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <ksvc/core/entry.hpp>
#include <ksvc/core/error.hpp>
#include <ksvc/core/operations.hpp>
#include <ksvc/executor/dispatcher.hpp>

namespace ksvc {

// ---- scheduler ----------------------------------------------------------------------------

//! Coroutines ready to resume, and the thread that resumes them. post() may be called from any
//! thread; run_ready() and wait() belong to the scheduler's thread.
class scheduler {
public:
    scheduler() { ready_.reserve(64), running_.reserve(64), local_.reserve(64); }
    scheduler(const scheduler&) = delete;
    scheduler& operator=(const scheduler&) = delete;

    void post(std::coroutine_handle<> h) noexcept {
        // From the scheduler's own thread (an inline loop delivering inside run_once): nobody
        // waits, nothing to lock.
        if (current_ == this) {
            try {
                local_.push_back(h);
            } catch (...) {
                std::terminate();
            }
            return;
        }
        std::lock_guard lock(mutex_);
        try {
            ready_.push_back(h);
        } catch (...) {
            std::terminate(); // a completion that cannot be handed over would be lost
        }
        // Under the lock: once the scheduler's thread sees this coroutine it may finish and
        // destroy the scheduler, which must not happen while a notify is still running.
        wake_.notify_one();
    }
    //! Resumes every coroutine posted so far (and those they post meanwhile, in a later round).
    //! Returns how many it resumed.
    std::size_t run_ready() {
        std::size_t n = 0;
        for (;;) {
            running_.swap(local_);
            if (running_.empty()) {
                std::lock_guard lock(mutex_);
                if (ready_.empty()) return n;
                running_.swap(ready_);
            }
            for (std::coroutine_handle<> h : running_) h.resume();
            n += running_.size();
            running_.clear();
        }
    }
    [[nodiscard]] bool has_ready() const {
        if (!local_.empty()) return true;
        std::lock_guard lock(mutex_);
        return !ready_.empty();
    }
    //! Sleeps until something is posted (returns at once if something is).
    void wait() {
        if (!local_.empty()) return;
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return !ready_.empty(); });
    }

    //! The scheduler of this thread (set by sync_wait, or a scope), or nullptr.
    static scheduler* current() noexcept { return current_; }
    //! Makes `s` this thread's scheduler for its lifetime (restores the previous one).
    class scope {
    public:
        explicit scope(scheduler& s) noexcept : previous_(std::exchange(current_, &s)) {}
        ~scope() { current_ = previous_; }
        scope(const scope&) = delete;
        scope& operator=(const scope&) = delete;

    private:
        scheduler* previous_;
    };

private:
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::vector<std::coroutine_handle<>> ready_, running_; // ready_: posts from other threads
    std::vector<std::coroutine_handle<>> local_;           // posts from the scheduler's own thread
    static inline thread_local scheduler* current_ = nullptr;
};

// ---- task ---------------------------------------------------------------------------------

template <class T = void>
class task;

namespace detail::coro {

// Every frame carries, after itself, the function that frees it: ::operator delete for the
// default, or the allocator's deallocate for frames made through the allocator hook.
struct frame_tail {
    void (*release)(void* frame, std::size_t bytes) noexcept;
};
inline constexpr std::size_t tail_offset(std::size_t n) noexcept {
    return (n + alignof(std::max_align_t) - 1) / alignof(std::max_align_t) * alignof(std::max_align_t);
}
template <class Alloc>
using byte_allocator = typename std::allocator_traits<Alloc>::template rebind_alloc<std::byte>;

template <class Alloc>
void release_with(void* frame, std::size_t n) noexcept {
    auto* tail = reinterpret_cast<std::byte*>(frame) + tail_offset(n);
    auto* stored = reinterpret_cast<byte_allocator<Alloc>*>(tail + sizeof(frame_tail));
    byte_allocator<Alloc> a(std::move(*stored));
    stored->~byte_allocator<Alloc>();
    a.deallocate(static_cast<std::byte*>(frame), tail_offset(n) + sizeof(frame_tail) + sizeof(byte_allocator<Alloc>));
}
inline void release_default(void* frame, std::size_t n) noexcept {
    ::operator delete(frame, tail_offset(n) + sizeof(frame_tail));
}

struct promise_base {
    std::coroutine_handle<> continuation = std::noop_coroutine();
    std::exception_ptr error;

    std::suspend_always initial_suspend() noexcept { return {}; } // lazy: runs when awaited
    struct final_awaiter {
        bool await_ready() const noexcept { return false; }
        template <class P>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
            return h.promise().continuation; // symmetric transfer: no stack growth
        }
        void await_resume() const noexcept {}
    };
    final_awaiter final_suspend() noexcept { return {}; }
    void unhandled_exception() noexcept { error = std::current_exception(); }

    // The allocator hook. Default: ::operator new, with the tail saying how to free.
    static void* operator new(std::size_t n) {
        void* p = ::operator new(tail_offset(n) + sizeof(frame_tail));
        new (static_cast<std::byte*>(p) + tail_offset(n)) frame_tail{&release_default};
        return p;
    }
    // A coroutine whose parameters start with (std::allocator_arg_t, const Alloc&, ...) — as a
    // free function or a member (the object comes first then).
    template <class Alloc, class... Args>
    static void* operator new(std::size_t n, std::allocator_arg_t, const Alloc& alloc, const Args&...) {
        return allocate_with(n, alloc);
    }
    template <class This, class Alloc, class... Args>
        requires(!std::is_same_v<std::remove_cvref_t<This>, std::allocator_arg_t>)
    static void* operator new(std::size_t n, const This&, std::allocator_arg_t, const Alloc& alloc, const Args&...) {
        return allocate_with(n, alloc);
    }
    static void operator delete(void* p, std::size_t n) noexcept {
        reinterpret_cast<frame_tail*>(static_cast<std::byte*>(p) + tail_offset(n))->release(p, n);
    }

private:
    template <class Alloc>
    static void* allocate_with(std::size_t n, const Alloc& alloc) {
        byte_allocator<Alloc> a(alloc);
        std::byte* p = a.allocate(tail_offset(n) + sizeof(frame_tail) + sizeof(byte_allocator<Alloc>));
        new (p + tail_offset(n)) frame_tail{&release_with<Alloc>};
        new (p + tail_offset(n) + sizeof(frame_tail)) byte_allocator<Alloc>(std::move(a));
        return p;
    }
};

template <class T>
struct promise final : promise_base {
    std::optional<T> value;
    task<T> get_return_object() noexcept;
    template <class U>
        requires std::is_convertible_v<U&&, T>
    void return_value(U&& v) {
        value.emplace(std::forward<U>(v));
    }
    T take() {
        if (error) std::rethrow_exception(error);
        return std::move(*value);
    }
};
template <>
struct promise<void> final : promise_base {
    task<void> get_return_object() noexcept;
    void return_void() noexcept {}
    void take() {
        if (error) std::rethrow_exception(error);
    }
};

} // namespace detail::coro

//! A lazy coroutine producing a T: it starts when awaited (or handed to sync_wait / when_all),
//! resumes its awaiter by symmetric transfer when done, and rethrows what it threw. Move-only;
//! destroying a task that never ran frees its frame.
template <class T>
class [[nodiscard]] task {
public:
    using promise_type = detail::coro::promise<T>;
    using value_type = T;

    task(task&& o) noexcept : h_(std::exchange(o.h_, {})) {}
    task& operator=(task&& o) noexcept {
        if (this != &o) {
            if (h_) h_.destroy();
            h_ = std::exchange(o.h_, {});
        }
        return *this;
    }
    ~task() {
        if (h_) h_.destroy();
    }

    bool await_ready() const noexcept { return !h_ || h_.done(); }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) noexcept {
        h_.promise().continuation = awaiting;
        return h_;
    }
    T await_resume() {
        if (!h_) throw std::logic_error("ksvc::task: awaited after being moved from");
        return h_.promise().take();
    }

private:
    friend struct detail::coro::promise<T>;
    explicit task(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
    std::coroutine_handle<promise_type> h_;
};

namespace detail::coro {
template <class T>
task<T> promise<T>::get_return_object() noexcept {
    return task<T>(std::coroutine_handle<promise<T>>::from_promise(*this));
}
inline task<void> promise<void>::get_return_object() noexcept {
    return task<void>(std::coroutine_handle<promise<void>>::from_promise(*this));
}
} // namespace detail::coro

// ---- async: an entry as an awaitable ------------------------------------------------------

//! co_await ksvc::async(inst, entry[, stop_token]) submits `entry` with the awaiter as its
//! completion target and yields its completion_entry (result: the syscall's value or -errno;
//! corr_id is the awaiter's). Any single-shot entry or operation; streams (multishot) are
//! refused.
//!
//! Cancellation: a stop request on `stop` — from any thread, at any time — cancels the entry
//! where it is (Tier 1: IORING_OP_ASYNC_CANCEL, or the epoll backend's cancel; through
//! dispatcher::request_cancel, so an inline instance's loop is woken from another thread) and
//! the awaiter completes with -ECANCELED, or with the entry's result if it finished first. A
//! stop requested before the co_await submits nothing: -ECANCELED at once. Tier 2 (fixed_pool,
//! lazy_pool): a queued entry is removed (lazy_pool), a worker blocked in the syscall is
//! interrupted by a signal (detail::interrupt_signal()); a syscall that cannot be interrupted
//! (disk I/O) completes when it is done.
namespace detail::coro {

// Submits `e`; while the submit lane is full, lets the loop drain it (inline: one turn that
// does not block, on the owner's thread — never from inside the loop, as coroutines do not run
// there; threaded: the loop thread drains it meanwhile). Other refusals are returned.
template <class Instance>
std::error_code submit_retrying(Instance& inst, const submit_entry& e) {
    for (;;) {
        const std::error_code ec = inst.submit(e);
        if (ec != errc::ring_full) return ec;
        if (inst.loop().mode() == dispatch_mode::inline_mode) inst.run_once(false, 0);
        else std::this_thread::yield();
    }
}

} // namespace detail::coro

template <class Instance>
class async_awaiter : completion_target {
public:
    async_awaiter(Instance& inst, submit_entry e, std::stop_token stop = {}) noexcept
        : inst_(inst), entry_(e), stop_(std::move(stop)) {
        complete = &on_complete;
    }
    async_awaiter(const async_awaiter&) = delete;
    async_awaiter& operator=(const async_awaiter&) = delete;

    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) {
        sched_ = scheduler::current();
        if (!sched_)
            throw std::logic_error("ksvc::async: awaited outside a ksvc::scheduler (run the task with ksvc::sync_wait)");
        if (is_stream(entry_.number())) {
            refused_ = make_error_code(errc::multishot_call);
            return false;
        }
        handle_ = h;
        entry_.corr_id = reinterpret_cast<std::uint64_t>(static_cast<completion_target*>(this));
        entry_.flags |= entry_flags::completion_target;
        if (stop_.stop_requested()) {
            result_ = make_completion(entry_, -ECANCELED);
            return false;
        }
        // After a successful submit the completion may arrive (threaded: on the loop thread) and
        // post the coroutine before this returns; it resumes only on this scheduler's thread,
        // which is this one, so not before this returns.
        if (std::error_code ec = detail::coro::submit_retrying(inst_, entry_)) {
            refused_ = ec;
            return false;
        }
        if (stop_.stop_possible()) {
            cancel_.corr_id = entry_.corr_id;
            on_stop_.emplace(stop_, canceller{this}); // runs at once if stop was requested meanwhile
        }
        return true;
    }
    completion_entry await_resume() {
        if (on_stop_) {
            on_stop_.reset(); // waits for a callback running on another thread
            inst_.loop().withdraw_cancel(cancel_); // no request outlives this awaiter
        }
        if (refused_) throw std::system_error(refused_, "ksvc::async: submit");
        return result_;
    }

private:
    static void on_complete(completion_target* self, const completion_entry& c) noexcept {
        auto* a = static_cast<async_awaiter*>(self);
        a->result_ = c;
        a->sched_->post(a->handle_);
    }

    struct canceller {
        async_awaiter* self;
        void operator()() const noexcept { self->inst_.loop().request_cancel(self->cancel_); }
    };

    Instance& inst_;
    submit_entry entry_;
    std::stop_token stop_;
    std::optional<std::stop_callback<canceller>> on_stop_;
    cancel_request cancel_;
    scheduler* sched_ = nullptr;
    std::coroutine_handle<> handle_;
    completion_entry result_{};
    std::error_code refused_;
};

template <class Instance>
async_awaiter<Instance> async(Instance& inst, const submit_entry& e, std::stop_token stop = {}) noexcept {
    return async_awaiter<Instance>(inst, e, std::move(stop));
}

// ---- sync_wait and when_all ---------------------------------------------------------------

namespace detail::coro {

// A coroutine that starts at once and frees itself when done, telling `on_done` — the
// branches of when_all and the root of sync_wait.
struct detached {
    struct promise_type {
        detached get_return_object() noexcept { return {}; }
        std::suspend_never initial_suspend() noexcept { return {}; }
        std::suspend_never final_suspend() noexcept { return {}; }
        void return_void() noexcept {}
        void unhandled_exception() noexcept { std::terminate(); } // the bodies below catch everything
    };
};

template <class T>
using stored_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

template <class T>
struct outcome {
    std::optional<stored_t<T>> value;
    std::exception_ptr error;
};

template <class T, class Done>
detached run_into(task<T> t, outcome<T>& out, Done done) {
    try {
        if constexpr (std::is_void_v<T>) {
            co_await std::move(t);
            out.value.emplace();
        } else {
            out.value.emplace(co_await std::move(t));
        }
    } catch (...) {
        out.error = std::current_exception();
    }
    done();
}

template <class... T>
struct when_all_state {
    std::tuple<outcome<T>...> results;
    std::size_t remaining = sizeof...(T);
    std::coroutine_handle<> parent;
};

template <class... T>
struct when_all_awaiter {
    explicit when_all_awaiter(task<T>&&... ts) : tasks(std::move(ts)...) {}
    std::tuple<task<T>...> tasks;
    when_all_state<T...> state;

    bool await_ready() const noexcept { return sizeof...(T) == 0; }
    void await_suspend(std::coroutine_handle<> parent) {
        state.parent = parent;
        start(std::index_sequence_for<T...>{});
    }
    std::tuple<stored_t<T>...> await_resume() {
        std::apply([](auto&... o) { ((o.error ? std::rethrow_exception(o.error) : void()), ...); }, state.results);
        return std::apply([](auto&... o) { return std::tuple<stored_t<T>...>(std::move(*o.value)...); }, state.results);
    }

private:
    template <std::size_t... I>
    void start(std::index_sequence<I...>) {
        // Branches run one after another until each first suspends; the last to finish
        // resumes the parent (all on this scheduler's thread).
        (run_into(std::move(std::get<I>(tasks)), std::get<I>(state.results),
                  [s = &state] {
                      if (--s->remaining == 0) s->parent.resume();
                  }),
         ...);
    }
};

} // namespace detail::coro

//! Runs the tasks concurrently (each until it awaits, then the next) and completes when all
//! have: a tuple of their values (std::monostate for task<void>). If any threw, the first
//! exception in argument order is rethrown once all have finished.
template <class... T>
task<std::tuple<detail::coro::stored_t<T>...>> when_all(task<T>... tasks) {
    // A named awaiter, not a temporary in the co_await expression: GCC 12 destroys such
    // temporaries twice in some coroutines.
    detail::coro::when_all_awaiter<T...> all(std::move(tasks)...);
    co_return co_await all;
}

//! Tasks started and left to run — a connection handler per accepted socket — and a way to
//! wait for all of them. spawn() starts a task at once on the calling thread (it runs until it
//! first suspends) and keeps it alive until it finishes; join() completes when every task
//! spawned so far has (at once if none is running) and rethrows the first exception one threw.
//! One scheduler thread uses a scope; it must have been joined (nothing running) when it is
//! destroyed — a scope destroyed with tasks still running terminates the program, as a joinable
//! std::thread does.
class task_scope {
public:
    task_scope() = default;
    task_scope(const task_scope&) = delete;
    task_scope& operator=(const task_scope&) = delete;
    ~task_scope() {
        if (running_ != 0) std::terminate();
    }

    void spawn(task<void> t) {
        ++running_;
        ++spawned_;
        run_spawned(std::move(t), *this);
    }
    [[nodiscard]] std::size_t running() const noexcept { return running_; }
    [[nodiscard]] std::uint64_t spawned() const noexcept { return spawned_; }

    struct join_awaiter {
        task_scope& scope;
        bool await_ready() const noexcept { return scope.running_ == 0; }
        void await_suspend(std::coroutine_handle<> h) noexcept { scope.joiner_ = h; }
        void await_resume() {
            if (scope.error_) std::rethrow_exception(std::exchange(scope.error_, nullptr));
        }
    };
    //! co_await scope.join(): every spawned task has finished (one joiner at a time).
    join_awaiter join() noexcept { return {*this}; }

private:
    static detail::coro::detached run_spawned(task<void> t, task_scope& s) {
        try {
            co_await std::move(t);
        } catch (...) {
            if (!s.error_) s.error_ = std::current_exception();
        }
        if (--s.running_ == 0 && s.joiner_) std::exchange(s.joiner_, {}).resume();
    }

    std::size_t running_ = 0;
    std::uint64_t spawned_ = 0;
    std::exception_ptr error_;
    std::coroutine_handle<> joiner_;
};

//! Runs `t` to completion on the calling thread, with a scheduler of its own (see the header
//! comment for what drives what in each mode), and returns its value or rethrows.
template <class Instance, class T>
T sync_wait(Instance& inst, task<T> t) {
    const bool drive = inst.loop().mode() == dispatch_mode::inline_mode;
    // Inline: only the owner may drive the loop; on another thread run_once() does nothing and
    // this would spin for ever.
    if (drive && !inst.loop().may_drive_here())
        throw std::logic_error("ksvc::sync_wait: an inline instance is driven by its owner thread only");
    scheduler s;
    scheduler::scope here(s);
    detail::coro::outcome<T> out;
    bool done = false;
    detail::coro::run_into(std::move(t), out, [&] { done = true; });
    while (!done) {
        if (s.run_ready() != 0) continue;
        if (drive) inst.run_once(!s.has_ready(), -1);
        else s.wait();
    }
    if (out.error) std::rethrow_exception(out.error);
    if constexpr (!std::is_void_v<T>) return std::move(*out.value);
}

} // namespace ksvc
