#pragma once
//! eventfd_notifier — an eventfd plus a "pending" flag so that a burst of notify() calls costs
//! one write(2). The fd is pollable (native_handle) so a consumer can fold it into its own loop.
#include <atomic>

#include <ksvc/core/concepts/notifier.hpp>

namespace ksvc {

class eventfd_notifier {
public:
    eventfd_notifier(); //!< throws std::system_error naming eventfd
    ~eventfd_notifier();
    eventfd_notifier(const eventfd_notifier&) = delete;
    eventfd_notifier& operator=(const eventfd_notifier&) = delete;

    void notify() noexcept;
    void wait() noexcept;
    bool try_wait() noexcept;
    bool wait_for_ms(int ms) noexcept;
    [[nodiscard]] int native_handle() const noexcept { return fd_; }

private:
    bool consume() noexcept;
    int fd_ = -1;
    std::atomic<bool> pending_{false};
};
static_assert(notifier<eventfd_notifier>);

} // namespace ksvc
