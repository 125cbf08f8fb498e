#pragma once
//! call_waiter — one blocking call's rendezvous, a completion_target.
//!
//! The waiter spins briefly (a round trip through the loop thread usually takes a few µs, far
//! less than two context switches), then announces that it sleeps and FUTEX_WAITs. The
//! delivering thread stores the completion, swaps the state to `done` and issues FUTEX_WAKE
//! only when the waiter had announced sleeping — no syscall when it was still spinning. The
//! waiter may return and reuse that stack memory before the wake is issued; a futex wake on a
//! stale address is harmless by the kernel's contract (at worst a spurious wake-up).
//!
//! `expected` completions end the wait: 1, or 2 when call() linked a timeout to the entry (the
//! link timeout's own completion is counted, not kept).
#include <atomic>
#include <chrono>
#include <cstdint>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ksvc/core/entry.hpp>
#include <ksvc/core/operations.hpp>

namespace ksvc {

struct call_waiter : completion_target {
    static constexpr std::uint32_t waiting = 0, done = 1, sleeping = 2;
    static constexpr std::chrono::microseconds spin_limit{5};

    completion_entry result{};
    std::atomic<std::uint32_t> state{waiting};
    std::uint32_t expected = 1; // set before submission; counted down by the delivering thread

    call_waiter() noexcept { complete = &on_complete; }

    [[nodiscard]] bool ready() const noexcept { return state.load(std::memory_order_acquire) == done; }

    void wait() noexcept {
        const auto start = std::chrono::steady_clock::now();
        for (unsigned i = 1; !ready(); ++i) {
            pause();
            if ((i & 63) == 0 && std::chrono::steady_clock::now() - start >= spin_limit) break;
        }
        std::uint32_t expect = waiting;
        if (!state.compare_exchange_strong(expect, sleeping, std::memory_order_acq_rel)) return; // done
        while (state.load(std::memory_order_acquire) != done)
            ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&state), FUTEX_WAIT_PRIVATE, sleeping, nullptr,
                      nullptr, 0);
    }

private:
    static void on_complete(completion_target* self, const completion_entry& c) noexcept {
        auto* w = static_cast<call_waiter*>(self);
        if (c.nr != static_cast<std::uint32_t>(operation::link_timeout)) w->result = c;
        if (--w->expected != 0) return;
        if (w->state.exchange(done, std::memory_order_acq_rel) == sleeping)
            ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&w->state), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
    }

    static void pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        asm volatile("yield");
#endif
    }
};
static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));

//! Delivers `c` to the completion_target its corr_id names.
inline void complete_target(const completion_entry& c) noexcept {
    auto* t = reinterpret_cast<completion_target*>(c.corr_id);
    t->complete(t, c);
}

} // namespace ksvc
