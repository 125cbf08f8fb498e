#pragma once
//! archetype_worker_pool — the minimal threaded worker_pool: one thread, one mutex, bounded
//! vectors reserved up front (nothing allocates after construction). The lock is only ever held
//! for a few copies, never across a syscall, so enqueue() never waits for work to finish.
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <system_error>
#include <thread>
#include <vector>

#include <csignal>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ksvc/core/concepts/worker_pool.hpp>

namespace ksvc::test {

class archetype_worker_pool {
public:
    explicit archetype_worker_pool(std::size_t capacity = 8) : capacity_(capacity) {
        queue_.reserve(capacity);
        done_.reserve(capacity);
        thread_ = std::thread([this] { run(); });
    }
    ~archetype_worker_pool() { shutdown(); }
    archetype_worker_pool(const archetype_worker_pool&) = delete;
    archetype_worker_pool& operator=(const archetype_worker_pool&) = delete;

    std::error_code enqueue(const submit_entry& e) noexcept {
        {
            std::lock_guard lk(mu_);
            if (stopped_) return make_error_code(errc::shut_down);
            if (outstanding_ >= capacity_) return make_error_code(errc::ring_full);
            queue_.push_back(e);
            ++outstanding_;
        }
        cv_.notify_one();
        return {};
    }
    std::size_t reap(std::span<completion_entry> out) noexcept {
        std::lock_guard lk(mu_);
        std::size_t n = 0;
        for (; n < out.size() && n < done_.size(); ++n) out[n] = done_[n];
        done_.erase(done_.begin(), done_.begin() + static_cast<std::ptrdiff_t>(n));
        outstanding_ -= n;
        return n;
    }
    void attach(waker w) noexcept {
        std::lock_guard lk(mu_);
        wake_ = w;
    }
    //! Stops intake; the thread finishes the queue before it exits (drain). Idempotent.
    void shutdown() noexcept {
        {
            std::lock_guard lk(mu_);
            stopped_ = true;
        }
        cv_.notify_one();
        if (thread_.joinable()) thread_.join();
    }
    [[nodiscard]] std::size_t outstanding() const noexcept {
        std::lock_guard lk(mu_);
        return outstanding_;
    }
    [[nodiscard]] std::size_t active_workers() const noexcept {
        std::lock_guard lk(mu_);
        return busy_ ? 1 : 0;
    }
    [[nodiscard]] std::size_t total_workers() const noexcept { return 1; }
    [[nodiscard]] std::size_t max_workers() const noexcept { return 1; }

private:
    void run() noexcept {
        sigset_t pipe;
        sigemptyset(&pipe);
        sigaddset(&pipe, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe, nullptr); // EPIPE instead of a process-wide SIGPIPE
        std::unique_lock lk(mu_);
        for (;;) {
            cv_.wait(lk, [this] { return stopped_ || !queue_.empty(); });
            if (queue_.empty()) return; // stopped and drained
            const submit_entry e = queue_.front();
            queue_.erase(queue_.begin());
            busy_ = true;
            lk.unlock();
            const auto* a = e.args;
            const long r = ::syscall(static_cast<long>(e.nr), a[0], a[1], a[2], a[3], a[4], a[5]);
            const completion_entry c = make_completion(e, r == -1 ? -static_cast<std::int64_t>(errno) : r);
            lk.lock();
            busy_ = false;
            done_.push_back(c);
            const waker w = wake_;
            lk.unlock();
            w(); // after the completion is visible to reap()
            lk.lock();
        }
    }

    const std::size_t capacity_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::vector<submit_entry> queue_;
    std::vector<completion_entry> done_;
    std::size_t outstanding_ = 0; // accepted, not yet reaped: queue_ + running + done_
    bool busy_ = false;
    bool stopped_ = false;
    waker wake_{};
    std::thread thread_;
};
static_assert(worker_pool<archetype_worker_pool>);

} // namespace ksvc::test
