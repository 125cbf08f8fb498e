#pragma once
//! Process-level facts policies need: fork detection and SIGPIPE containment.
#include <atomic>
#include <cstdint>

namespace ksvc::process {

namespace detail {
extern std::atomic<std::uint64_t> fork_generation_counter; // constant-initialised
} // namespace detail

//! Incremented in the child by a pthread_atfork handler. An object that records the
//! generation at construction knows it was inherited across fork when the value differs.
//! Inline: every submit checks it, so it is one relaxed load, not a call.
inline std::uint64_t fork_generation() noexcept {
    return detail::fork_generation_counter.load(std::memory_order_relaxed);
}

//! Blocks SIGPIPE on the calling thread (once per thread). A write to a pipe or socket whose
//! reader is gone then returns EPIPE instead of killing the process; consume_sigpipe() removes
//! the signal that the kernel leaves pending on the thread.
void block_sigpipe_on_this_thread() noexcept;

//! Discards a pending thread-directed SIGPIPE (after a -EPIPE result). No-op if none.
void consume_sigpipe() noexcept;

} // namespace ksvc::process
