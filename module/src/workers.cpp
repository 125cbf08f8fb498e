#include <ksvc/module/workers/fixed_pool.hpp>
#include <ksvc/module/workers/syscall_runner.hpp>

#include <algorithm>
#include <cerrno>

#include <sys/syscall.h>
#include <unistd.h>

#include <ksvc/module/process.hpp>

namespace ksvc {

completion_entry detail::run_syscall(const submit_entry& e) noexcept {
    const auto* a = e.args;
    long r = ::syscall(static_cast<long>(e.nr), a[0], a[1], a[2], a[3], a[4], a[5]);
    const std::int64_t res = r == -1 ? -static_cast<std::int64_t>(errno) : r;
    if (res == -EPIPE) process::consume_sigpipe();
    return make_completion(e, res);
}

std::size_t fixed_pool::default_threads() noexcept {
    const long n = ::sysconf(_SC_NPROCESSORS_ONLN);
    return std::min<std::size_t>(8, std::max<std::size_t>(1, n > 0 ? static_cast<std::size_t>(n) / 2 : 1));
}

fixed_pool::fixed_pool(pool_options o)
    : capacity_(o.queue_capacity), in_(o.queue_capacity), out_(o.queue_capacity),
      fork_gen_(process::fork_generation()) {
    if (o.queue_capacity == 0) throw std::invalid_argument("fixed_pool: queue_capacity must be non-zero");
    const std::size_t n = o.threads ? o.threads : default_threads();
    threads_.reserve(n);
    for (std::size_t i = 0; i < n; ++i) threads_.emplace_back([this] { run(); });
}

fixed_pool::~fixed_pool() {
    if (fork_gen_ != process::fork_generation()) {
        // Inherited across fork: the threads do not exist in this process.
        for (auto& t : threads_) t.detach();
        return;
    }
    shutdown();
}

std::error_code fixed_pool::enqueue(const submit_entry& e) noexcept {
    if (stopping_.load(std::memory_order_relaxed)) return make_error_code(errc::shut_down);
    if (outstanding_.fetch_add(1, std::memory_order_acq_rel) >= capacity_) {
        outstanding_.fetch_sub(1, std::memory_order_acq_rel);
        return make_error_code(errc::ring_full);
    }
    if (!in_.try_push(e)) { // cannot happen while outstanding <= capacity, kept for safety
        outstanding_.fetch_sub(1, std::memory_order_acq_rel);
        return make_error_code(errc::ring_full);
    }
    work_.release();
    return {};
}

std::size_t fixed_pool::reap(std::span<completion_entry> out) noexcept {
    std::size_t n = 0;
    while (n < out.size() && out_.try_pop(out[n])) ++n;
    if (n) outstanding_.fetch_sub(n, std::memory_order_acq_rel);
    return n;
}

void fixed_pool::shutdown() noexcept {
    if (stopping_.exchange(true)) {
        for (auto& t : threads_)
            if (t.joinable()) t.join();
        return;
    }
    // One extra token per thread: a worker exits when it finds the queue empty after stop,
    // so everything accepted before shutdown still runs (drain).
    work_.release(static_cast<std::ptrdiff_t>(threads_.size()));
    for (auto& t : threads_)
        if (t.joinable()) t.join();
}

void fixed_pool::run() noexcept {
    process::block_sigpipe_on_this_thread();
    submit_entry e;
    for (;;) {
        work_.acquire();
        if (!in_.try_pop(e)) {
            if (stopping_.load(std::memory_order_acquire)) return;
            continue;
        }
        active_.fetch_add(1, std::memory_order_relaxed);
        const completion_entry c = detail::run_syscall(e);
        active_.fetch_sub(1, std::memory_order_relaxed);
        out_.try_push(c); // room guaranteed: out_ holds `capacity_` and outstanding <= capacity_
        wake_();
    }
}

} // namespace ksvc
