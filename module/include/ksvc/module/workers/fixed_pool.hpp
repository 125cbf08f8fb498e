#pragma once
//! fixed_pool — N threads (default min(8, max(1, nproc/2))) started at construction, a bounded
//! lock-free queue in, a bounded queue of completions out. enqueue never blocks: once
//! `queue_capacity` entries are outstanding (accepted, not yet reaped) it returns ring_full.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
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
    //! Cancellation (the loop's thread, again each turn while the request waits): a worker
    //! running the entry `corr_id` is interrupted (detail::interruptible_slot). Otherwise the
    //! entry may still be queued (or not placed yet): it is marked, and the worker that takes a
    //! marked entry completes it with -ECANCELED without running it (the first one taken with
    //! that id, as ASYNC_CANCEL by user_data would; a chain runs whole and is not marked). The
    //! queue is lock-free, so a queued entry cannot be found in it: the mark lasts until
    //! forget_cancel().
    detail::interruptible_slot::found cancel(std::uint64_t corr_id) noexcept;
    //! The request for `corr_id` is over (its completion came, or it was withdrawn): its mark
    //! goes, so a later entry reusing the id is not cancelled.
    void forget_cancel(std::uint64_t corr_id) noexcept;
    //! Marks waiting (0 once every cancel request is over): for tests and diagnostics.
    [[nodiscard]] std::size_t pending_marks() const noexcept { return mark_count_.load(std::memory_order_acquire); }

private:
    static constexpr std::uint32_t chain_marker = 0xffffffffu;
    void run(std::size_t index) noexcept;
    bool take_mark(std::uint64_t corr_id) noexcept;
    std::size_t capacity_;
    bounded_ring<submit_entry> in_;
    bounded_ring<completion_entry> out_;
    std::counting_semaphore<> work_{0};
    std::atomic<std::size_t> outstanding_{0};
    std::atomic<std::size_t> active_{0};
    std::atomic<bool> stopping_{false};
    waker wake_{};
    std::unique_ptr<detail::interruptible_slot[]> slots_; // one per thread
    std::mutex marks_mutex_;
    std::vector<std::uint64_t> marks_;          // corr_ids to cancel when taken (few, short-lived)
    std::atomic<std::size_t> mark_count_{0};    // the workers' lock-free "none" check
    std::vector<std::thread> threads_;
    std::uint64_t fork_gen_;
};
static_assert(worker_pool<fixed_pool>);

} // namespace ksvc
