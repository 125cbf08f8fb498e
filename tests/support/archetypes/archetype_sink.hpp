#pragma once
//! archetype_sink — the minimal completion_sink: a bounded ring under one mutex. push() stages,
//! flush_and_notify() publishes the staged batch and wakes once; pop() sees published entries only.
#include <cstddef>
#include <mutex>
#include <span>
#include <vector>

#include <ksvc/core/concepts/completion_sink.hpp>

namespace ksvc::test {

class archetype_sink {
public:
    explicit archetype_sink(std::size_t capacity = 8) : buf_(capacity) {}

    bool push(const completion_entry& c) noexcept {
        std::lock_guard lk(mu_);
        if (staged_ - head_ == buf_.size()) return false;
        buf_[staged_++ % buf_.size()] = c;
        return true;
    }
    void flush_and_notify() noexcept {
        waker w;
        {
            std::lock_guard lk(mu_);
            if (published_ == staged_) return;
            published_ = staged_;
            w = wake_;
        }
        w();
    }
    std::size_t pop(std::span<completion_entry> out) noexcept {
        std::lock_guard lk(mu_);
        std::size_t n = 0;
        for (; n < out.size() && head_ < published_; ++n) out[n] = buf_[head_++ % buf_.size()];
        return n;
    }
    void attach(waker w) noexcept {
        std::lock_guard lk(mu_);
        wake_ = w;
    }
    [[nodiscard]] std::size_t free_slots() const noexcept {
        std::lock_guard lk(mu_);
        return buf_.size() - (staged_ - head_);
    }
    [[nodiscard]] std::size_t capacity() const noexcept { return buf_.size(); }

private:
    mutable std::mutex mu_;
    std::vector<completion_entry> buf_;
    std::size_t head_ = 0;      // next to pop
    std::size_t published_ = 0; // visible to pop
    std::size_t staged_ = 0;    // pushed
    waker wake_{};
};
static_assert(completion_sink<archetype_sink>);

} // namespace ksvc::test
