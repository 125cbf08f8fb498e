#include <ksvc/module/workers/fixed_pool.hpp>
#include <ksvc/module/workers/syscall_runner.hpp>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <new>
#include <vector>

#include <csignal>
#include <sys/syscall.h>
#include <unistd.h>

#include <ksvc/module/process.hpp>
#include <ksvc/module/routers/route_table.hpp>

namespace ksvc {

completion_entry detail::run_syscall(const submit_entry& e) noexcept {
    const auto* a = e.args;
    long r = ::syscall(static_cast<long>(e.nr), a[0], a[1], a[2], a[3], a[4], a[5]);
    const std::int64_t res = r == -1 ? -static_cast<std::int64_t>(errno) : r;
    if (res == -EPIPE) process::consume_sigpipe();
    return make_completion(e, res);
}

completion_entry detail::run_syscall_here(const submit_entry& e) noexcept {
    if (!routing::may_raise_sigpipe(e.nr)) {
        const auto* a = e.args;
        const long r = ::syscall(static_cast<long>(e.nr), a[0], a[1], a[2], a[3], a[4], a[5]);
        return make_completion(e, r == -1 ? -static_cast<std::int64_t>(errno) : r);
    }
    process::sigpipe_scope scope;
    const auto* a = e.args;
    const long r = ::syscall(static_cast<long>(e.nr), a[0], a[1], a[2], a[3], a[4], a[5]);
    const std::int64_t res = r == -1 ? -static_cast<std::int64_t>(errno) : r;
    scope.result(res);
    return make_completion(e, res);
}

namespace {
// The byte count a chained transfer asks for, when the syscall has a scalar one: a result
// below it is a short transfer, which breaks a `link` as it does in io_uring.
std::int64_t requested_bytes(const submit_entry& e) noexcept {
    namespace nr = ksvc::syscalls::x86_64;
    switch (e.nr) {
    case nr::read: case nr::write: case nr::pread64: case nr::pwrite64: case nr::sendto: case nr::recvfrom:
    case nr::tee: return static_cast<std::int64_t>(e.args[2]);
    case nr::splice: return static_cast<std::int64_t>(e.args[4]);
    default: return -1;
    }
}
} // namespace

void detail::run_chain(const submit_entry* chain, std::size_t n, completion_entry* out) noexcept {
    bool broken = false;
    for (std::size_t i = 0; i < n; ++i) {
        const submit_entry& e = chain[i];
        if (broken) {
            out[i] = make_completion(e, -ECANCELED);
            continue;
        }
        out[i] = run_syscall(e);
        const std::int64_t want = requested_bytes(e);
        const bool failed = out[i].result < 0 || (want >= 0 && out[i].result < want);
        if (failed && (e.flags & entry_flags::link) && !(e.flags & entry_flags::hardlink)) broken = true;
    }
}

namespace {
// Counts the interrupt signals this thread has handled, so a canceller can tell whether the
// signal it sent already arrived (touched by interruptible_slot::run before any can come: the
// handler never makes the first access to the thread_local, which may allocate).
thread_local std::atomic<std::uint32_t> interrupts_handled{0};
void on_interrupt(int) noexcept { interrupts_handled.fetch_add(1, std::memory_order_release); }
bool interrupt_installed() noexcept {
    static const bool ok = [] {
        const int sig = detail::interrupt_signal();
        struct sigaction old{};
        if (::sigaction(sig, nullptr, &old) != 0) return false;
        if (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN) return false; // the program's own
        struct sigaction sa{};
        sa.sa_handler = &on_interrupt; // no SA_RESTART: blocked syscalls return EINTR
        ::sigemptyset(&sa.sa_mask);
        return ::sigaction(sig, &sa, nullptr) == 0;
    }();
    return ok;
}
} // namespace

int detail::interrupt_signal() noexcept { return SIGRTMIN + 5; }

completion_entry detail::interruptible_slot::run(const submit_entry& e) noexcept {
    if (!interrupt_installed()) return run_syscall(e);
    {
        std::lock_guard lock(mutex_);
        thread_ = ::pthread_self();
        handled_ = &interrupts_handled;
        handled_at_start_ = handled_->load(std::memory_order_acquire);
        signals_sent_ = 0;
        corr_ = e.corr_id;
        running_ = true;
        cancelled_ = false;
    }
    completion_entry c = run_syscall(e);
    bool cancelled;
    {
        std::lock_guard lock(mutex_);
        running_ = false;
        cancelled = cancelled_;
    }
    // A signal sent while the syscall ran is delivered, at the latest, on its return: it
    // cannot reach the next entry's syscall.
    if (cancelled && c.result == -EINTR) c.result = -ECANCELED;
    return c;
}

detail::interruptible_slot::found detail::interruptible_slot::cancel(std::uint64_t corr_id) noexcept {
    std::lock_guard lock(mutex_);
    if (corr_id == 0 || !running_ || corr_ != corr_id) return found::no;
    cancelled_ = true;
    // One signal in flight at a time: the interrupt is a real-time signal, so each send queues
    // another. Resending every turn while the last one waits for delivery once flooded a slow
    // (emulated) worker, which then spent all its time in the handler and never left the
    // syscall. A signal that was handled while the worker still runs this entry was lost before
    // the syscall began (or the syscall ignores signals): that one is repeated at once. One not
    // seen handled is repeated after resend_after — its handler may have been deferred (TSan
    // runs them at the thread's next intercepted call) or replaced by the program's own.
    const auto now = std::chrono::steady_clock::now();
    const std::uint32_t handled = handled_->load(std::memory_order_acquire) - handled_at_start_;
    if ((handled >= signals_sent_ || now - last_sent_ >= resend_after) && ::pthread_kill(thread_, interrupt_signal()) == 0) {
        ++signals_sent_;
        last_sent_ = now;
    }
    return found::signalled;
}

std::size_t fixed_pool::default_threads() noexcept {
    return std::min<std::size_t>(8, std::max<std::size_t>(1, process::usable_cpus() / 2));
}

fixed_pool::fixed_pool(pool_options o)
    : capacity_(o.queue_capacity), in_(o.queue_capacity), out_(o.queue_capacity),
      fork_gen_(process::fork_generation()) {
    if (o.queue_capacity == 0) throw std::invalid_argument("fixed_pool: queue_capacity must be non-zero");
    const std::size_t n = o.threads ? o.threads : default_threads();
    slots_ = std::make_unique<detail::interruptible_slot[]>(n);
    threads_.reserve(n);
    for (std::size_t i = 0; i < n; ++i) threads_.emplace_back([this, i] { run(i); });
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

// A chain travels as one marker entry whose args[0] points at a heap copy of it: one worker
// pops it and runs it in order.
std::error_code fixed_pool::enqueue_chain(std::span<const submit_entry> chain) noexcept {
    if (stopping_.load(std::memory_order_relaxed)) return make_error_code(errc::shut_down);
    if (chain.size() > capacity_) return make_error_code(errc::chain_too_long);
    if (outstanding_.fetch_add(chain.size(), std::memory_order_acq_rel) + chain.size() > capacity_) {
        outstanding_.fetch_sub(chain.size(), std::memory_order_acq_rel);
        return make_error_code(errc::ring_full);
    }
    auto* copy = new (std::nothrow) std::vector<submit_entry>();
    bool ok = copy != nullptr;
    if (ok) {
        try {
            copy->assign(chain.begin(), chain.end());
        } catch (...) {
            ok = false;
        }
    }
    submit_entry marker;
    marker.nr = chain_marker;
    marker.args[0] = reinterpret_cast<std::uint64_t>(copy);
    if (!ok || !in_.try_push(marker)) {
        delete copy;
        outstanding_.fetch_sub(chain.size(), std::memory_order_acq_rel);
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

detail::interruptible_slot::found fixed_pool::cancel(std::uint64_t corr_id) noexcept {
    if (corr_id == 0) return detail::interruptible_slot::found::no;
    for (std::size_t i = 0; i < threads_.size(); ++i)
        if (slots_[i].cancel(corr_id) == detail::interruptible_slot::found::signalled)
            return detail::interruptible_slot::found::signalled;
    std::lock_guard lock(marks_mutex_);
    if (std::find(marks_.begin(), marks_.end(), corr_id) == marks_.end()) {
        try {
            marks_.push_back(corr_id);
        } catch (...) {
            return detail::interruptible_slot::found::no; // no mark: the entry runs, as before
        }
        mark_count_.store(marks_.size(), std::memory_order_release);
    }
    return detail::interruptible_slot::found::no; // asked again next turn: it may start meanwhile
}

void fixed_pool::forget_cancel(std::uint64_t corr_id) noexcept {
    if (mark_count_.load(std::memory_order_acquire) == 0) return;
    std::lock_guard lock(marks_mutex_);
    marks_.erase(std::remove(marks_.begin(), marks_.end(), corr_id), marks_.end());
    mark_count_.store(marks_.size(), std::memory_order_release);
}

bool fixed_pool::take_mark(std::uint64_t corr_id) noexcept {
    if (corr_id == 0 || mark_count_.load(std::memory_order_acquire) == 0) return false;
    std::lock_guard lock(marks_mutex_);
    const auto it = std::find(marks_.begin(), marks_.end(), corr_id);
    if (it == marks_.end()) return false;
    marks_.erase(it);
    mark_count_.store(marks_.size(), std::memory_order_release);
    return true;
}

void fixed_pool::run(std::size_t index) noexcept {
    process::block_sigpipe_on_this_thread();
    submit_entry e;
    for (;;) {
        work_.acquire();
        if (!in_.try_pop(e)) {
            if (stopping_.load(std::memory_order_acquire)) return;
            continue;
        }
        active_.fetch_add(1, std::memory_order_relaxed);
        // Idle again before the completions are published (release): whoever has them sees
        // this worker no longer busy (the workers_busy gauge).
        if (e.nr == chain_marker) {
            std::unique_ptr<std::vector<submit_entry>> chain(reinterpret_cast<std::vector<submit_entry>*>(e.args[0]));
            std::vector<completion_entry> done(chain->size());
            detail::run_chain(chain->data(), chain->size(), done.data());
            active_.fetch_sub(1, std::memory_order_release);
            for (const completion_entry& c : done) out_.try_push(c); // room: counted at enqueue
        } else {
            // Cancelled while it waited in the queue: completed without running.
            const completion_entry c = take_mark(e.corr_id) ? make_completion(e, -ECANCELED) : slots_[index].run(e);
            active_.fetch_sub(1, std::memory_order_release);
            out_.try_push(c); // room guaranteed: outstanding <= capacity_
        }
        wake_();
    }
}

} // namespace ksvc
