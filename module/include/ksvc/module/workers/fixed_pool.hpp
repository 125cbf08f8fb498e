#pragma once
//! fixed_pool — N threads (default min(8, max(1, nproc/2))) started at construction, a bounded
//! lock-free queue in, a bounded queue of completions out. enqueue never blocks: once
//! `queue_capacity` entries are outstanding (accepted, not yet reaped) it returns ring_full.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <semaphore>
#include <span>
#include <system_error>
#include <thread>
#include <vector>

#include <ksvc/core/concepts/worker_pool.hpp>
#include <ksvc/executor/submit_ring.hpp>
#include <ksvc/module/workers/syscall_runner.hpp>

namespace ksvc {

struct pool_options {
    std::size_t threads = 0;          //!< 0: min(8, max(1, nproc/2)) (lazy_pool: the most it starts)
    std::size_t queue_capacity = 1024;
    //! lazy_pool: a thread idle this long exits.
    std::chrono::milliseconds idle_timeout{std::chrono::seconds(10)};
};

class fixed_pool {
public:
    explicit fixed_pool(pool_options o = {});
    ~fixed_pool();
    fixed_pool(const fixed_pool&) = delete;
    fixed_pool& operator=(const fixed_pool&) = delete;

    std::error_code enqueue(const submit_entry& e) noexcept;
    //! A linked chain, run in order by one worker (see detail::run_chain). Never blocks.
    std::error_code enqueue_chain(std::span<const submit_entry> chain) noexcept;
    std::size_t reap(std::span<completion_entry> out) noexcept;
    void attach(waker w) noexcept { wake_ = w; }
    void shutdown() noexcept;
    [[nodiscard]] std::size_t outstanding() const noexcept { return outstanding_.load(std::memory_order_acquire); }
    [[nodiscard]] std::size_t active_workers() const noexcept { return active_.load(std::memory_order_relaxed); }
    [[nodiscard]] std::size_t total_workers() const noexcept { return threads_.size(); }
    [[nodiscard]] std::size_t max_workers() const noexcept { return threads_.size(); }
    [[nodiscard]] std::size_t queue_capacity() const noexcept { return capacity_; }

    static std::size_t default_threads() noexcept;
    //! Cancellation (the loop's thread): a worker running the entry `corr_id` is interrupted
    //! (detail::interruptible_slot; ask again while it still runs). A queued entry is not
    //! removed: it runs when a worker takes it.
    detail::interruptible_slot::found cancel(std::uint64_t corr_id) noexcept;

private:
    static constexpr std::uint32_t chain_marker = 0xffffffffu;
    void run(std::size_t index) noexcept;
    std::size_t capacity_;
    bounded_ring<submit_entry> in_;
    bounded_ring<completion_entry> out_;
    std::counting_semaphore<> work_{0};
    std::atomic<std::size_t> outstanding_{0};
    std::atomic<std::size_t> active_{0};
    std::atomic<bool> stopping_{false};
    waker wake_{};
    std::unique_ptr<detail::interruptible_slot[]> slots_; // one per thread
    std::vector<std::thread> threads_;
    std::uint64_t fork_gen_;
};
static_assert(worker_pool<fixed_pool>);

} // namespace ksvc
