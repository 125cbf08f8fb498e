#pragma once
//! ring_completion_sink — a bounded single-producer (the dispatcher) single-consumer ring.
//! push() stages, flush_and_notify() publishes the batch with one release store and one wake.
//! When it is full the dispatcher stops reaping and stops taking submissions (backpressure):
//! nothing is ever dropped or overwritten.
#include <atomic>
#include <bit>
#include <cstddef>
#include <memory>
#include <span>

#include <ksvc/core/concepts/completion_sink.hpp>
#include <ksvc/executor/submit_ring.hpp>

namespace ksvc {

class ring_completion_sink {
public:
    explicit ring_completion_sink(std::size_t capacity = 4096)
        : mask_(std::bit_ceil(capacity < 2 ? std::size_t{2} : capacity) - 1),
          buf_(mask_ + 1) {}

    bool push(const completion_entry& c) noexcept {
        if (staged_ - head_.load(std::memory_order_acquire) > mask_) return false;
        buf_[staged_ & mask_] = c;
        ++staged_;
        return true;
    }
    void flush_and_notify() noexcept {
        if (staged_ == tail_.load(std::memory_order_relaxed)) return;
        tail_.store(staged_, std::memory_order_release);
        wake_();
    }
    std::size_t pop(std::span<completion_entry> out) noexcept {
        const std::size_t h = head_.load(std::memory_order_relaxed);
        const std::size_t t = tail_.load(std::memory_order_acquire);
        std::size_t n = t - h;
        if (n > out.size()) n = out.size();
        for (std::size_t i = 0; i < n; ++i) out[i] = buf_[(h + i) & mask_];
        head_.store(h + n, std::memory_order_release);
        return n;
    }
    void attach(waker w) noexcept { wake_ = w; }
    [[nodiscard]] std::size_t free_slots() const noexcept {
        return mask_ + 1 - (staged_ - head_.load(std::memory_order_acquire));
    }
    [[nodiscard]] std::size_t capacity() const noexcept { return mask_ + 1; }

private:
    const std::size_t mask_;
    zero_page_array<completion_entry> buf_;
    std::size_t staged_ = 0; // dispatcher-private
    waker wake_{};
    alignas(cache_line) std::atomic<std::size_t> tail_{0};
    alignas(cache_line) std::atomic<std::size_t> head_{0};
};
static_assert(completion_sink<ring_completion_sink>);

} // namespace ksvc
