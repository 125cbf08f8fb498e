#include <ksvc/module/process.hpp>

#include <atomic>
#include <csignal>
#include <ctime>

#include <pthread.h>

namespace ksvc::process {
namespace {
std::atomic<std::uint64_t> generation{0};

void on_fork_child() noexcept { generation.fetch_add(1, std::memory_order_relaxed); }

// Registered during static initialisation of this translation unit, before any instance can
// exist (every instance calls fork_generation() in its constructor).
[[maybe_unused]] const int registered = [] { return ::pthread_atfork(nullptr, nullptr, on_fork_child); }();
} // namespace

std::uint64_t fork_generation() noexcept { return generation.load(std::memory_order_relaxed); }

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
