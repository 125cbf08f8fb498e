#include <ksvc/module/process.hpp>

#include <atomic>
#include <csignal>
#include <ctime>

#include <pthread.h>
#include <sched.h>
#include <sys/uio.h>
#include <unistd.h>

namespace ksvc::process {
std::atomic<std::uint64_t> detail::fork_generation_counter{0};

std::size_t usable_cpus() noexcept {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof set, &set) == 0) {
        const int n = CPU_COUNT(&set);
        if (n > 0) return static_cast<std::size_t>(n);
    }
    const long n = ::sysconf(_SC_NPROCESSORS_ONLN); // more than 1024 CPUs, or no affinity call
    return n > 0 ? static_cast<std::size_t>(n) : 1;
}

namespace {
void on_fork_child() noexcept { detail::fork_generation_counter.fetch_add(1, std::memory_order_relaxed); }

// Registered during static initialisation of this translation unit, before any instance can
// exist (every instance reads fork_generation_counter, which links this object in).
[[maybe_unused]] const int registered = [] { return ::pthread_atfork(nullptr, nullptr, on_fork_child); }();
} // namespace

void block_sigpipe_on_this_thread() noexcept {
    thread_local bool done = false;
    if (done) return;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    ::pthread_sigmask(SIG_BLOCK, &s, nullptr);
    done = true;
}

void consume_sigpipe() noexcept {
    sigset_t pending;
    sigemptyset(&pending);
    if (::sigpending(&pending) != 0 || !sigismember(&pending, SIGPIPE)) return;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    timespec zero{0, 0};
    ::sigtimedwait(&s, nullptr, &zero);
}

bool copy_from_user(void* dst, const void* user_src, std::size_t n) noexcept {
    if (n == 0) return true;
    iovec local{dst, n};
    iovec remote{const_cast<void*>(user_src), n};
    return ::process_vm_readv(::getpid(), &local, 1, &remote, 1, 0) == static_cast<ssize_t>(n);
}

bool copy_to_user(void* user_dst, const void* src, std::size_t n) noexcept {
    if (n == 0) return true;
    iovec local{const_cast<void*>(src), n};
    iovec remote{user_dst, n};
    return ::process_vm_writev(::getpid(), &local, 1, &remote, 1, 0) == static_cast<ssize_t>(n);
}

sigpipe_scope::sigpipe_scope() noexcept {
    sigset_t s, old;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    ::pthread_sigmask(SIG_BLOCK, &s, &old);
    was_blocked_ = sigismember(&old, SIGPIPE);
}

sigpipe_scope::~sigpipe_scope() {
    if (was_blocked_) return;
    if (epipe_) consume_sigpipe();
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    ::pthread_sigmask(SIG_UNBLOCK, &s, nullptr);
}

} // namespace ksvc::process
