#pragma once
//! call_waiter — one blocking call's rendezvous. The dispatcher stores the completion, then the
//! flag (release), then FUTEX_WAKEs the flag's address. The waiter may return and reuse that
//! stack memory before the wake is issued; a futex wake on a stale address is harmless by the
//! kernel's contract (at worst a spurious wake-up, which every futex waiter tolerates).
#include <atomic>
#include <cstdint>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ksvc/core/entry.hpp>

namespace ksvc {

struct call_waiter {
    completion_entry result{};
    std::atomic<std::uint32_t> done{0};

    void complete(const completion_entry& c) noexcept {
        result = c;
        done.store(1, std::memory_order_release);
        ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&done), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
    }
    [[nodiscard]] bool ready() const noexcept { return done.load(std::memory_order_acquire) != 0; }
    void wait() noexcept {
        while (!ready())
            ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&done), FUTEX_WAIT_PRIVATE, 0, nullptr, nullptr, 0);
    }
};
static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));

} // namespace ksvc
