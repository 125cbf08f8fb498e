#pragma once
//! lazy_pool — no threads until Tier-2 work arrives; a thread is started when work is queued
//! and no idle thread can take it, up to `pool_options::threads` (0: fixed_pool's default);
//! a thread idle for `pool_options::idle_timeout` exits. For servers whose Tier-2 work is rare:
//! an idle instance costs no threads. enqueue never blocks: once `queue_capacity` entries are
//! outstanding (accepted, not yet reaped) it returns ring_full. When no thread is alive and the
//! system refuses to start one (RLIMIT_NPROC: EAGAIN; out of memory: ENOMEM), the work is
//! accepted and completes at once with that errno, every entry of a chain alike — a caller
//! never waits for a thread that cannot come; the next enqueue tries to start one again. The
//! queue is a mutex and a condition variable: Tier-2 work is a syscall on a thread, which costs
//! far more than the lock.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <span>
#include <system_error>
#include <thread>
#include <vector>

#include <ksvc/core/concepts/worker_pool.hpp>
#include <ksvc/module/workers/fixed_pool.hpp>
#include <ksvc/module/workers/syscall_runner.hpp>

namespace ksvc {

class lazy_pool {
public:
    explicit lazy_pool(pool_options o = {});
    ~lazy_pool();
    lazy_pool(const lazy_pool&) = delete;
    lazy_pool& operator=(const lazy_pool&) = delete;

    std::error_code enqueue(const submit_entry& e) noexcept;
    //! A linked chain, run in order by one worker (see detail::run_chain). Never blocks.
    std::error_code enqueue_chain(std::span<const submit_entry> chain) noexcept;
    std::size_t reap(std::span<completion_entry> out) noexcept;
    void attach(waker w) noexcept { wake_ = w; }
    void shutdown() noexcept;
    [[nodiscard]] std::size_t outstanding() const noexcept;
    [[nodiscard]] std::size_t active_workers() const noexcept;
    //! Threads alive now (0 while no Tier-2 work has come, and again after idle_timeout).
    [[nodiscard]] std::size_t total_workers() const noexcept;
    //! pool_options::threads, or (0) the default, worked out when first needed: a pool that
    //! never runs Tier-2 work asks nothing of the system at construction.
    [[nodiscard]] std::size_t max_workers() const noexcept {
        std::size_t n = max_.load(std::memory_order_relaxed);
        if (n == 0) max_.store(n = fixed_pool::default_threads(), std::memory_order_relaxed); // same value on any thread
        return n;
    }
    //! Threads started since construction (each idle exit and restart counts again).
    [[nodiscard]] std::size_t started() const noexcept;
    //! Cancellation (the loop's thread): a queued entry `corr_id` is removed and completes with
    //! -ECANCELED; a worker running it is interrupted (detail::interruptible_slot; ask again
    //! while it still runs).
    detail::interruptible_slot::found cancel(std::uint64_t corr_id) noexcept;

private:
    struct job {
        submit_entry e;
        std::unique_ptr<std::vector<submit_entry>> chain; // set: a linked chain
    };
    struct worker {
        std::thread t;
        bool done = false;
        detail::interruptible_slot slot;
    };
    std::error_code admit(job j, std::size_t entries) noexcept;
    void run(worker* self) noexcept;
    void join_finished() noexcept; // under lock_

    mutable std::atomic<std::size_t> max_; // 0: not worked out yet
    std::size_t capacity_;
    std::chrono::milliseconds idle_;
    mutable std::mutex lock_;
    std::condition_variable work_;
    std::deque<job> in_;
    std::vector<completion_entry> out_;
    std::list<worker> workers_; // stable addresses: a thread marks its own entry done
    std::size_t alive_ = 0, idle_waiting_ = 0, active_ = 0, outstanding_ = 0, started_ = 0;
    bool stopping_ = false;
    waker wake_{};
    std::uint64_t fork_gen_;
};
static_assert(worker_pool<lazy_pool>);

} // namespace ksvc
