#pragma once
//! archetype_notifier — the minimal notifier: one "pending" flag under a mutex, a condition
//! variable for the wait side. Coalesces because the flag is a bool, not a count.
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <utility>

#include <ksvc/core/concepts/notifier.hpp>

namespace ksvc::test {

class archetype_notifier {
public:
    void notify() noexcept {
        {
            std::lock_guard lk(mu_);
            pending_ = true;
        }
        cv_.notify_one();
    }
    void wait() noexcept {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [this] { return pending_; });
        pending_ = false;
    }
    bool try_wait() noexcept {
        std::lock_guard lk(mu_);
        return std::exchange(pending_, false);
    }
    //! ms < 0 waits without a bound, as wait() does.
    bool wait_for_ms(int ms) noexcept {
        if (ms < 0) {
            wait();
            return true;
        }
        std::unique_lock lk(mu_);
        if (!cv_.wait_for(lk, std::chrono::milliseconds(ms), [this] { return pending_; })) return false;
        pending_ = false;
        return true;
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    bool pending_ = false;
};
static_assert(notifier<archetype_notifier>);

} // namespace ksvc::test
