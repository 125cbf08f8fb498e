#pragma once
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>

#include <ksvc/core/entry.hpp>

namespace ksvc::detail {
//! Runs `e` with syscall(2) on this thread and builds its completion (-errno on failure).
//! SIGPIPE must already be blocked on this thread; a pending one is consumed after EPIPE.
completion_entry run_syscall(const submit_entry& e) noexcept;

//! The same on a thread ksvc does not own (a blocking caller's): SIGPIPE is blocked around
//! syscalls that can raise it and a SIGPIPE they raised is consumed (EPIPE, not a kill).
completion_entry run_syscall_here(const submit_entry& e) noexcept;

//! Runs a linked chain in order on this thread as io_uring would: after a `link` entry fails
//! or transfers less than asked, the rest complete with -ECANCELED (`hardlink` continues).
//! Writes one completion per entry into `out` (same size as `chain`).
void run_chain(const submit_entry* chain, std::size_t n, completion_entry* out) noexcept;

//! The signal that interrupts a worker's blocked syscall for a cancellation (SIGRTMIN + 5),
//! with a handler that only counts it, installed without SA_RESTART the first time a worker runs
//! an entry — unless the program already handles that signal; workers are then not interrupted.
int interrupt_signal() noexcept;

//! What one worker thread is running, for cancellation from the loop's thread: the worker runs
//! each single entry through run(); cancel() sends the interrupt signal to it while it runs the
//! entry whose corr_id matches. A syscall the signal interrupts (EINTR) completes with
//! -ECANCELED; one that finished first keeps its result; one that cannot be interrupted (disk
//! I/O) completes when it is done.
class interruptible_slot {
public:
    enum class found : std::uint8_t { no, signalled, removed }; // removed: a queued entry (pools)
    completion_entry run(const submit_entry& e) noexcept;
    //! Signals the worker if it runs `corr_id` now. Called again while it does, it signals
    //! again once the last signal was handled (a signal that came just before the syscall
    //! started is lost, so the canceller repeats it), or resend_after after the last send —
    //! never flooding the worker with queued signals.
    found cancel(std::uint64_t corr_id) noexcept;
    static constexpr std::chrono::milliseconds resend_after{50};

private:
    // Locked twice per entry, by the worker alone unless a cancel comes: so a signal can only
    // go to the worker while it runs the entry asked for, never to its next one.
    std::mutex mutex_;
    std::uint64_t corr_ = 0;
    bool running_ = false, cancelled_ = false;
    pthread_t thread_{};
    // The worker's count of handled interrupt signals, its value when the entry started, the
    // signals sent for this entry and when the last went: a new one goes out only when none is
    // still pending, or resend_after after the last.
    const std::atomic<std::uint32_t>* handled_ = nullptr;
    std::uint32_t handled_at_start_ = 0, signals_sent_ = 0;
    std::chrono::steady_clock::time_point last_sent_{};
};
} // namespace ksvc::detail
