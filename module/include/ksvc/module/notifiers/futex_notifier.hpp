#pragma once
//! futex_notifier — a notifier without a file descriptor: one 32-bit futex word (0 idle,
//! 1 pending). notify() sets it and wakes waiters with one futex(2) per burst; a consumer waits
//! in FUTEX_WAIT; a dispatcher loop asleep in io_uring_enter is woken through an
//! IORING_OP_FUTEX_WAIT armed on the same word (the backend's wait_futex), so the sleep needs no
//! eventfd and no polling.
//!
//! IORING_OP_FUTEX_WAIT is 6.7: on an older kernel (from the capability snapshot it is built
//! with) the notifier says so (`uses_eventfd()`), holds an eventfd and behaves as
//! eventfd_notifier — `native_handle()` is then the doorbell the loop polls. Default-constructed
//! it is always futex-only (a consumer's notifier needs no ring).
//!
//! Threads: notify() from any thread; wait()/wait_for_ms()/try_wait() by one consumer at a time.
#include <atomic>
#include <cstdint>
#include <optional>

#include <ksvc/core/concepts/notifier.hpp>
#include <ksvc/module/capabilities.hpp>
#include <ksvc/module/notifiers/eventfd_notifier.hpp>

namespace ksvc {

class futex_notifier {
public:
    futex_notifier() noexcept = default;
    //! Futex doorbell where the kernel has IORING_OP_FUTEX_WAIT, else an eventfd (throws
    //! std::system_error naming eventfd if it cannot make one).
    explicit futex_notifier(const capabilities& c);
    futex_notifier(const futex_notifier&) = delete;
    futex_notifier& operator=(const futex_notifier&) = delete;

    void notify() noexcept;
    void wait() noexcept { wait_for_ms(-1); }
    bool try_wait() noexcept;
    bool wait_for_ms(int ms) noexcept;

    //! The word a backend arms IORING_OP_FUTEX_WAIT on (expected value 0); null in eventfd mode.
    [[nodiscard]] const std::uint32_t* futex_word() const noexcept {
        return fallback_ ? nullptr : reinterpret_cast<const std::uint32_t*>(&word_);
    }
    //! The eventfd in eventfd mode, else -1.
    [[nodiscard]] int native_handle() const noexcept { return fallback_ ? fallback_->native_handle() : -1; }
    //! True when the kernel lacks IORING_OP_FUTEX_WAIT and the doorbell is an eventfd.
    [[nodiscard]] bool uses_eventfd() const noexcept { return fallback_.has_value(); }

private:
    static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t) &&
                  std::atomic<std::uint32_t>::is_always_lock_free);
    std::atomic<std::uint32_t> word_{0};
    std::optional<eventfd_notifier> fallback_;
};
static_assert(notifier<futex_notifier>);

} // namespace ksvc
