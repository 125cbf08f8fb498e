#include <ksvc/module/workers/lazy_pool.hpp>

#include <cerrno>
#include <new>
#include <stdexcept>

#include <ksvc/module/process.hpp>
#include <ksvc/module/workers/syscall_runner.hpp>

namespace ksvc {

lazy_pool::lazy_pool(pool_options o)
    : max_(o.threads), capacity_(o.queue_capacity), idle_(o.idle_timeout),
      fork_gen_(process::fork_generation()) {
    if (o.queue_capacity == 0) throw std::invalid_argument("lazy_pool: queue_capacity must be non-zero");
    if (o.idle_timeout.count() <= 0) throw std::invalid_argument("lazy_pool: idle_timeout must be positive");
}

lazy_pool::~lazy_pool() {
    if (fork_gen_ != process::fork_generation()) {
        for (auto& w : workers_) w.t.detach(); // inherited across fork: not threads of this process
        return;
    }
    shutdown();
}

std::error_code lazy_pool::enqueue(const submit_entry& e) noexcept { return admit(job{e, nullptr}, 1); }

std::error_code lazy_pool::enqueue_chain(std::span<const submit_entry> chain) noexcept {
    if (chain.size() > capacity_) return make_error_code(errc::chain_too_long);
    std::unique_ptr<std::vector<submit_entry>> copy;
    try {
        copy = std::make_unique<std::vector<submit_entry>>(chain.begin(), chain.end());
    } catch (...) {
        return make_error_code(errc::ring_full);
    }
    return admit(job{submit_entry{}, std::move(copy)}, chain.size());
}

std::error_code lazy_pool::admit(job j, std::size_t entries) noexcept {
    std::unique_lock lock(lock_);
    if (stopping_) return make_error_code(errc::shut_down);
    if (outstanding_ + entries > capacity_) return make_error_code(errc::ring_full);
    // Room for every completion it may hold (workers push_back without allocating), made with
    // the first job rather than at construction: a pool that never runs one costs nothing.
    if (out_.capacity() < capacity_) {
        try {
            out_.reserve(capacity_);
        } catch (...) {
            return make_error_code(errc::ring_full);
        }
    }
    // A thread for this job unless an idle one will take it (queued jobs are owed one each).
    if (idle_waiting_ <= in_.size() && alive_ < max_workers()) {
        join_finished();
        int refused = 0; // the errno of a thread the system would not start
        try {
            worker& w = workers_.emplace_back();
            w.t = std::thread([this, &w] { run(&w); });
            ++alive_;
            ++started_;
        } catch (const std::system_error& x) {
            refused = x.code().value() > 0 ? x.code().value() : EAGAIN;
        } catch (...) {
            refused = ENOMEM;
        }
        if (refused && !workers_.empty() && !workers_.back().t.joinable()) workers_.pop_back();
        if (refused && alive_ == 0) {
            // Nobody could ever run it (RLIMIT_NPROC, out of memory): it completes now with the
            // errno the thread creation gave, instead of waiting for a thread the system refuses.
            if (j.chain) {
                for (const submit_entry& m : *j.chain) out_.push_back(make_completion(m, -refused));
            } else {
                out_.push_back(make_completion(j.e, -refused)); // room: reserved to capacity
            }
            outstanding_ += entries;
            lock.unlock();
            wake_();
            return {};
        }
    }
    try {
        in_.push_back(std::move(j));
    } catch (...) {
        return make_error_code(errc::ring_full);
    }
    outstanding_ += entries;
    lock.unlock();
    work_.notify_one();
    return {};
}

std::size_t lazy_pool::reap(std::span<completion_entry> out) noexcept {
    std::lock_guard lock(lock_);
    const std::size_t n = out.size() < out_.size() ? out.size() : out_.size();
    for (std::size_t i = 0; i < n; ++i) out[i] = out_[i];
    out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(n));
    outstanding_ -= n;
    return n;
}

void lazy_pool::shutdown() noexcept {
    std::list<worker> all;
    {
        std::lock_guard lock(lock_);
        stopping_ = true; // workers drain what was accepted, then exit
        all.splice(all.end(), workers_);
    }
    work_.notify_all();
    for (auto& w : all)
        if (w.t.joinable()) w.t.join();
}

std::size_t lazy_pool::outstanding() const noexcept {
    std::lock_guard lock(lock_);
    return outstanding_;
}
std::size_t lazy_pool::active_workers() const noexcept {
    std::lock_guard lock(lock_);
    return active_;
}
std::size_t lazy_pool::total_workers() const noexcept {
    std::lock_guard lock(lock_);
    return alive_;
}
std::size_t lazy_pool::started() const noexcept {
    std::lock_guard lock(lock_);
    return started_;
}

void lazy_pool::join_finished() noexcept {
    for (auto it = workers_.begin(); it != workers_.end();) {
        if (it->done) {
            it->t.join(); // it has left run(): the join is immediate
            it = workers_.erase(it);
        } else {
            ++it;
        }
    }
}

detail::interruptible_slot::found lazy_pool::cancel(std::uint64_t corr_id) noexcept {
    if (corr_id == 0) return detail::interruptible_slot::found::no;
    {
        std::lock_guard lock(lock_);
        for (auto it = in_.begin(); it != in_.end(); ++it) {
            if (it->chain || it->e.corr_id != corr_id) continue;
            out_.push_back(make_completion(it->e, -ECANCELED)); // room: reserved to capacity
            in_.erase(it);
            wake_();
            return detail::interruptible_slot::found::removed;
        }
        for (worker& w : workers_)
            if (!w.done && w.slot.cancel(corr_id) == detail::interruptible_slot::found::signalled)
                return detail::interruptible_slot::found::signalled;
    }
    return detail::interruptible_slot::found::no;
}

void lazy_pool::run(worker* self) noexcept {
    process::block_sigpipe_on_this_thread();
    std::unique_lock lock(lock_);
    ++idle_waiting_; // idle from here on: admit() leaves a queued job to this thread
    for (;;) {
        const bool got = work_.wait_for(lock, idle_, [this] { return !in_.empty() || stopping_; });
        if (in_.empty()) {
            if (stopping_ || !got) break; // drained, or idle for idle_timeout
            continue;
        }
        --idle_waiting_;
        job j = std::move(in_.front());
        in_.pop_front();
        ++active_;
        lock.unlock();
        std::size_t n = 1;
        completion_entry single;
        std::vector<completion_entry> done;
        if (j.chain) {
            done.resize(j.chain->size());
            detail::run_chain(j.chain->data(), j.chain->size(), done.data());
            n = done.size();
        } else {
            single = self->slot.run(j.e);
        }
        lock.lock();
        if (j.chain) out_.insert(out_.end(), done.begin(), done.begin() + static_cast<std::ptrdiff_t>(n));
        else out_.push_back(single); // room: reserved to capacity, outstanding <= capacity
        --active_;
        // Idle again before the completion can reach anyone: a job submitted in answer to it
        // must find this thread, not start another.
        ++idle_waiting_;
        lock.unlock();
        wake_();
        lock.lock();
    }
    --idle_waiting_;
    --alive_;
    self->done = true; // joined by the next admit() or by shutdown()
}

} // namespace ksvc
