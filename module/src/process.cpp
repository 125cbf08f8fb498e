#include <ksvc/module/process.hpp>

#include <atomic>
#include <csignal>
#include <ctime>

#include <pthread.h>

namespace ksvc::process {
std::atomic<std::uint64_t> detail::fork_generation_counter{0};

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

} // namespace ksvc::process
