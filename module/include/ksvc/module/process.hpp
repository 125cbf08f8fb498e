#pragma once
//! Process-level facts policies need: fork detection, SIGPIPE containment, the CPUs to use.
#include <atomic>
#include <cstddef>
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

//! The CPUs this process may run on (sched_getaffinity: a cpuset or taskset counts, as in a
//! container), at least 1. One syscall, no sysfs read (sysconf's online count opens a file).
std::size_t usable_cpus() noexcept;

//! Blocks SIGPIPE on the calling thread (once per thread). A write to a pipe or socket whose
//! reader is gone then returns EPIPE instead of killing the process; consume_sigpipe() removes
//! the signal that the kernel leaves pending on the thread.
void block_sigpipe_on_this_thread() noexcept;

//! Discards a pending thread-directed SIGPIPE (after a -EPIPE result). No-op if none.
void consume_sigpipe() noexcept;

//! Copies between this process's memory and a user pointer through process_vm_readv/writev,
//! so a bad pointer gives false (the syscall's EFAULT) instead of a crash on the thread that
//! translates or answers an entry. Used only where ksvc itself must read or write user memory.
bool copy_from_user(void* dst, const void* user_src, std::size_t n) noexcept;
bool copy_to_user(void* user_dst, const void* src, std::size_t n) noexcept;

//! Blocks SIGPIPE on the calling thread for one syscall run on a caller's own thread: the
//! constructor blocks it (one sigprocmask), the destructor consumes a SIGPIPE the call raised
//! (only after an EPIPE reported through result()) and restores the mask. When the thread already had
//! SIGPIPE blocked nothing changes: the signal stays pending exactly as the raw syscall leaves it.
class sigpipe_scope {
public:
    sigpipe_scope() noexcept;
    ~sigpipe_scope();
    sigpipe_scope(const sigpipe_scope&) = delete;
    sigpipe_scope& operator=(const sigpipe_scope&) = delete;
    void result(long long r) noexcept { epipe_ = r == -32; }

private:
    bool was_blocked_ = false;
    bool epipe_ = false;
};

} // namespace ksvc::process
