#pragma once
//! inline_worker — runs Tier-2 entries synchronously inside enqueue() on the dispatcher's
//! thread. No threads: deterministic, for tests and single-threaded embedding. The bound keeps
//! the same "full -> ring_full" contract as the threaded pools.
#include <cstddef>
#include <span>
#include <system_error>
#include <vector>

#include <ksvc/core/concepts/worker_pool.hpp>
#include <ksvc/module/process.hpp>
#include <ksvc/module/workers/syscall_runner.hpp>

namespace ksvc {

class inline_worker {
public:
    //! Runs on the dispatching thread: legal with inline dispatch only (instance checks it).
    static constexpr bool runs_on_dispatching_thread = true;

    explicit inline_worker(std::size_t capacity = 1024) : capacity_(capacity) { done_.reserve(capacity); }

    std::error_code enqueue(const submit_entry& e) noexcept {
        if (stopped_) return make_error_code(errc::shut_down);
        if (done_.size() >= capacity_) return make_error_code(errc::ring_full);
        process::block_sigpipe_on_this_thread();
        done_.push_back(detail::run_syscall(e));
        wake_();
        return {};
    }
    std::error_code enqueue_chain(std::span<const submit_entry> chain) noexcept {
        if (stopped_) return make_error_code(errc::shut_down);
        if (done_.size() + chain.size() > capacity_) return make_error_code(errc::ring_full);
        process::block_sigpipe_on_this_thread();
        const std::size_t at = done_.size();
        done_.resize(at + chain.size()); // reserved to capacity_ at construction
        detail::run_chain(chain.data(), chain.size(), done_.data() + at);
        wake_();
        return {};
    }
    std::size_t reap(std::span<completion_entry> out) noexcept {
        std::size_t n = done_.size() < out.size() ? done_.size() : out.size();
        for (std::size_t i = 0; i < n; ++i) out[i] = done_[i];
        done_.erase(done_.begin(), done_.begin() + static_cast<std::ptrdiff_t>(n));
        return n;
    }
    void attach(waker w) noexcept { wake_ = w; }
    void shutdown() noexcept { stopped_ = true; }
    [[nodiscard]] std::size_t outstanding() const noexcept { return done_.size(); }
    [[nodiscard]] std::size_t active_workers() const noexcept { return 0; }
    [[nodiscard]] std::size_t total_workers() const noexcept { return 0; }
    [[nodiscard]] std::size_t max_workers() const noexcept { return 0; }

private:
    std::size_t capacity_;
    std::vector<completion_entry> done_;
    waker wake_{};
    bool stopped_ = false;
};
static_assert(worker_pool<inline_worker>);

} // namespace ksvc
