#pragma once
//! dispatcher — the generic loop that drives any composition of policies.
//!
//! One iteration (run_once):
//!   1. reap backend completions, 2. reap worker completions (both limited to the sink's free
//!   slots, so a full sink holds completions where they are instead of dropping them),
//!   3. take a batch from the submit ring (unless the sink is full or the instance is
//!   stopping), 4. route each entry: answer Tier 0 in place, submit Tier 1, enqueue Tier 2,
//!   refuse Tier 3, 5. kick the backend once for the batch — or, when the iteration may block
//!   and delivered nothing, sleep in the enter that submits it and reap what woke it,
//!   6. flush the sink and notify its consumer.
//!
//! Two modes over the same loop:
//! - threaded: start() runs the loop on a dedicated thread; submit() is callable from any
//!   thread (MPSC ring). When idle it spins for `spin_ns`, then blocks in the kernel (the
//!   backend's wait on the doorbell's fd) until a completion or a doorbell arrives.
//! - inline: the owner thread calls run_once() / run(); nothing else touches the loop.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <system_error>
#include <thread>
#include <vector>

#include <sched.h>

#include <ksvc/core/concepts.hpp>
#include <ksvc/core/entry.hpp>
#include <ksvc/core/syscalls.hpp>
#include <ksvc/executor/submit_ring.hpp>
#include <ksvc/executor/waiter.hpp>

namespace ksvc {

enum class dispatch_mode { inline_mode, threaded };

struct dispatcher_options {
    dispatch_mode mode = dispatch_mode::threaded;
    std::size_t submit_capacity = 4096; //!< bounded submit ring (rounded up to a power of two)
    std::size_t batch = 64;             //!< entries taken per iteration, completions reaped per pass
    //! Idle spin before sleeping; none when the loop thread may use only one CPU.
    std::chrono::nanoseconds spin{std::chrono::microseconds(50)};
};

//! Hooks the dispatcher needs from its thread environment.
struct dispatcher_hooks {
    //! Once per thread that runs the loop (the module blocks SIGPIPE there: an io_uring write
    //! to a broken pipe raises it on the submitting thread).
    void (*on_loop_thread)() noexcept = nullptr;
};

template <syscall_router R, io_backend B, worker_pool W, completion_sink S, shared_page SP, notifier N>
class dispatcher {
public:
    struct parts {
        const R& router;
        B& backend;
        W& workers;
        S& sink;
        SP& page;
        N& doorbell;
    };

    dispatcher(parts p, dispatcher_options o, dispatcher_hooks h = {})
        : p_(p), opts_(o), hooks_(h), ring_(o.submit_capacity), scratch_(o.batch ? o.batch : 1) {
        if (opts_.batch == 0) opts_.batch = 1;
        p_.workers.attach(waker{&ring_doorbell, this});
    }
    ~dispatcher() { stop(); }
    dispatcher(const dispatcher&) = delete;
    dispatcher& operator=(const dispatcher&) = delete;

    [[nodiscard]] dispatch_mode mode() const noexcept { return opts_.mode; }

    //! Queues `e`. Any thread in threaded mode; the owner in inline mode. Never blocks.
    //! errc::ring_full when the submit ring is full (nothing was queued), errc::shut_down after stop().
    //! The direct_waiter flag is reserved for call() and cleared here.
    std::error_code submit(const submit_entry& e) noexcept {
        return push(e, e.corr_id, e.flags & ~entry_flags::direct_waiter);
    }

    //! Whether the loop has finished its shutdown drain.
    [[nodiscard]] bool drained() const noexcept { return drained_.load(std::memory_order_acquire); }

    //! For an object inherited across fork(): forget the loop thread (it does not exist in this
    //! process) without touching shared state.
    void abandon() noexcept {
        if (thread_.joinable()) thread_.detach();
        drain_claimed_.store(true, std::memory_order_release);
        drained_.store(true, std::memory_order_release);
    }

private:
    // Writes `e` into a ring slot with its corr_id and flags replaced. Field by field on
    // purpose: callers have usually just stored corr_id, and a 16-byte copy over that fresh
    // 8-byte store cannot be store-forwarded (perf: most of the enqueue cost).
    struct entry_writer {
        const submit_entry& e;
        std::uint64_t corr_id;
        std::uint32_t flags;
        void operator()(submit_entry& slot) const noexcept {
            slot.corr_id = corr_id;
            slot.nr = e.nr;
            slot.flags = flags;
            for (int i = 0; i < 6; ++i) slot.args[i] = e.args[i];
        }
    };

    std::error_code push(const submit_entry& e, std::uint64_t corr_id, std::uint32_t flags) noexcept {
        const entry_writer write{e, corr_id, flags};
        // Inline mode: only the owner thread submits, and the loop runs on that same thread, so
        // no producer can race the shutdown drain or a sleeping loop. Skip the producer count,
        // the fence and the doorbell check (four locked instructions per entry).
        if (inline_mode()) {
            if (stopping_.load(std::memory_order_relaxed)) return make_error_code(errc::shut_down);
            if (!ring_.try_emplace_exclusive(write)) return make_error_code(errc::ring_full);
            accepted_.store(accepted_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
            return {};
        }
        // Announce ourselves before checking `stopping_`: the shutdown drain waits for
        // producers_ == 0 after setting it, so no accepted entry can land after the drain.
        producers_.fetch_add(1, std::memory_order_seq_cst);
        if (stopping_.load(std::memory_order_seq_cst)) {
            producers_.fetch_sub(1, std::memory_order_release);
            return make_error_code(errc::shut_down);
        }
        const bool ok = ring_.try_emplace(write);
        producers_.fetch_sub(1, std::memory_order_release);
        if (!ok) return make_error_code(errc::ring_full);
        accepted_.fetch_add(1, std::memory_order_relaxed);
        // Pairs with the fence in sleep(): either we see the loop asleep, or it sees our entry.
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (sleeping_.load(std::memory_order_relaxed)) p_.doorbell.notify();
        return {};
    }

public:
    //! One iteration; returns how much happened (0 = idle). Owner thread only. With
    //! `may_block`, an iteration that has delivered nothing sleeps in the kernel until a
    //! completion, a doorbell or `timeout_ms` (-1: no limit), then delivers what woke it. The
    //! entries it just placed are submitted by that same sleep: one io_uring_enter submits and
    //! waits, as a raw liburing loop's io_uring_submit_and_wait does.
    std::size_t run_once(bool may_block = false, int timeout_ms = -1) noexcept {
        enter_loop_thread();
        const std::uint64_t delivered_before = delivered();
        std::size_t progress = drain_completions();
        if (!stopping_.load(std::memory_order_acquire)) progress += intake();
        if (may_block && delivered() == delivered_before) {
            sleep(timeout_ms); // flushes the backend on every path
            progress += drain_completions();
        } else {
            p_.backend.flush(); // once per batch; a no-op when only other tiers were placed
        }
        p_.sink.flush_and_notify();
        return progress;
    }

    //! Inline mode: loops until stop() (from any thread) — blocking in the kernel when idle.
    void run() noexcept {
        // seq_cst pairs with stop(): either stop() sees us running and leaves the drain to us,
        // or we see its request before the first iteration. Both may happen; never neither.
        running_.store(true, std::memory_order_seq_cst);
        while (!stop_requested_.load(std::memory_order_seq_cst)) run_once(true);
        drain_for_shutdown();
        running_.store(false, std::memory_order_release);
    }

    //! Threaded mode: starts the loop thread.
    void start() {
        if (opts_.mode != dispatch_mode::threaded || thread_.joinable()) return;
        thread_ = std::thread([this] { threaded_loop(); });
    }

    //! Stops intake, cancels in-flight Tier-1 work, drains everything (completions are
    //! delivered: results, or -ECANCELED), joins the loop thread. Idempotent.
    //! In inline mode while run() is active on another thread, this only asks run() to return
    //! (run() drains); otherwise the caller drains.
    void stop() noexcept {
        stopping_.store(true, std::memory_order_seq_cst);
        stop_requested_.store(true, std::memory_order_seq_cst);
        p_.doorbell.notify();
        if (thread_.joinable()) thread_.join(); // the loop thread drains before it exits
        else if (!running_.load(std::memory_order_seq_cst)) drain_for_shutdown();
    }

    //! Blocking facade: runs `e` and returns its completion to the calling thread. Tier 0 is
    //! answered here without queueing; Tier 3 is refused here. In inline mode the caller must
    //! be the owner thread: it drives the loop until its own completion arrives.
    completion_entry call(const submit_entry& in) noexcept {
        const submit_entry& e = in;
        const route_info r = p_.router.route(e.nr);
        if (r.tier == tier::shared_page) {
            std::int64_t v = 0;
            if (p_.page.answer(e, v)) return make_completion(e, v);
            if (!r.worker_safe) return make_framework_completion(e, errc::refused);
        } else if (r.tier == tier::legacy) {
            return make_framework_completion(e, refusal(e.nr));
        }
        call_waiter w;
        const auto waiter_id = reinterpret_cast<std::uint64_t>(&w);
        const std::uint32_t flags = e.flags | entry_flags::direct_waiter;
        if (inline_mode()) {
            // Owner thread: no queue hop when the ring has room; retry while it is full.
            while (auto ec = push(e, waiter_id, flags)) {
                if (ec != errc::ring_full) return make_framework_completion(in, static_cast<errc>(ec.value()));
                run_once(false);
            }
            while (!w.ready()) run_once(true);
        } else {
            std::error_code ec;
            // A full ring is transient for a blocking caller: wait for room rather than fail.
            while ((ec = push(e, waiter_id, flags)) == errc::ring_full) std::this_thread::yield();
            if (ec) return make_framework_completion(in, static_cast<errc>(ec.value()));
            w.wait();
        }
        // corr_id carried the waiter's address: give the caller back its own id and flags.
        completion_entry c = w.result;
        c.corr_id = in.corr_id;
        c.entry_flags = in.flags;
        return c;
    }

    //! Completions that did not fit the sink at shutdown (then poll them from here).
    std::size_t take_leftovers(std::span<completion_entry> out) noexcept {
        if (!has_leftovers_.load(std::memory_order_acquire)) return 0; // the common case: no lock
        std::lock_guard lock(leftover_mutex_);
        std::size_t n = 0;
        while (n < out.size() && leftover_head_ < leftovers_.size()) out[n++] = leftovers_[leftover_head_++];
        return n;
    }

    //! The consumer took completions: if the loop sleeps because the sink was full, wake it.
    void on_consumed() noexcept {
        if (inline_mode()) return; // only a threaded loop sleeps on a full sink
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (sink_blocked_.load(std::memory_order_relaxed)) p_.doorbell.notify();
    }

    [[nodiscard]] std::uint64_t accepted() const noexcept { return accepted_.load(std::memory_order_relaxed); }
    [[nodiscard]] std::uint64_t delivered() const noexcept { return delivered_.load(std::memory_order_relaxed); }
    [[nodiscard]] std::uint64_t sleeps() const noexcept { return sleeps_; }
    [[nodiscard]] std::size_t queued() const noexcept { return ring_.size(); }

private:
    static void ring_doorbell(void* self) noexcept { static_cast<dispatcher*>(self)->p_.doorbell.notify(); }

    bool inline_mode() const noexcept { return opts_.mode == dispatch_mode::inline_mode; }

    static errc refusal(std::uint32_t nr) noexcept {
        return syscalls::is_known(nr) ? errc::refused : errc::unknown_syscall;
    }

    void enter_loop_thread() noexcept {
        thread_local const void* entered = nullptr;
        if (entered == this) return;
        entered = this;
        if (hooks_.on_loop_thread) hooks_.on_loop_thread();
    }

    void deliver(const completion_entry& c) noexcept {
        if (c.result >= 0) p_.page.observe(c.nr);
        // Single writer (the loop thread): a plain increment, no locked instruction.
        delivered_.store(delivered_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        if (c.entry_flags & entry_flags::direct_waiter) {
            reinterpret_cast<call_waiter*>(c.corr_id)->complete(c);
            return;
        }
        if (!p_.sink.push(c)) park(c); // only at shutdown (room is checked first)
    }

    std::size_t drain_completions() noexcept {
        std::size_t total = 0;
        for (;;) {
            const std::size_t room = p_.sink.free_slots();
            const std::size_t want = room < scratch_.size() ? room : scratch_.size();
            if (want == 0) break;
            std::span<completion_entry> buf(scratch_.data(), want);
            std::size_t n = p_.backend.reap(buf);
            for (std::size_t i = 0; i < n; ++i) deliver(buf[i]);
            // Both sources share the `want` free sink slots: a second full batch would overflow
            // the sink into leftovers_, which the consumer reads concurrently (and out of order).
            std::size_t m = p_.workers.reap(buf.first(want - n));
            for (std::size_t i = 0; i < m; ++i) deliver(buf[i]);
            total += n + m;
            if (n + m < want) break;
        }
        return total;
    }

    // Routes and places one entry. Returns false when it must wait (a full backend or pool):
    // the entry then stays at the front of the submit ring and is retried first, preserving order.
    bool place(const submit_entry& e) noexcept {
        const route_info r = p_.router.route(e.nr);
        switch (r.tier) {
        case tier::shared_page: {
            std::int64_t v = 0;
            if (p_.page.answer(e, v)) {
                deliver(make_completion(e, v));
                return true;
            }
            if (!r.worker_safe) {
                deliver(make_framework_completion(e, errc::refused));
                return true;
            }
            return to_workers(e);
        }
        case tier::io_uring: {
            const std::error_code ec = p_.backend.submit(e, r);
            if (!ec) return true;
            if (ec == errc::ring_full) return false;
            if (ec == errc::unsupported && r.worker_safe) return to_workers(e);
            deliver(make_framework_completion(e, static_cast<errc>(ec.value())));
            return true;
        }
        case tier::worker_pool: return to_workers(e);
        case tier::legacy: deliver(make_framework_completion(e, refusal(e.nr))); return true;
        }
        return true;
    }

    bool to_workers(const submit_entry& e) noexcept {
        const std::error_code ec = p_.workers.enqueue(e);
        if (!ec) return true;
        if (ec == errc::ring_full) return false;
        deliver(make_framework_completion(e, static_cast<errc>(ec.value())));
        return true;
    }

    std::size_t intake() noexcept {
        std::size_t taken = 0;
        // One sink slot per entry that might complete in place keeps "never drop" exact.
        std::size_t room = p_.sink.free_slots();
        blocked_ = false;
        while (taken < opts_.batch && room > 0) {
            // Placed from its ring cell, not copied out; one that must wait stays at the front.
            const submit_entry* e = ring_.front_exclusive();
            if (!e) break;
            if (!place(*e)) {
                blocked_ = true;
                break;
            }
            ring_.pop_front_exclusive();
            ++taken;
            --room;
        }
        return taken; // run_once submits the batch: with one flush, or with the sleep's wait
    }

    // Always leaves the backend flushed: run_once defers a batch's flush to the wait here.
    void sleep(int timeout_ms = -1) noexcept {
        if (p_.sink.free_slots() == 0) {
            p_.backend.flush();
            // Backpressure: nothing can move until the consumer pops. In inline mode the owner
            // is the consumer, so return to it; threaded, sleep until on_consumed() rings.
            if (inline_mode()) return;
            sink_blocked_.store(true, std::memory_order_relaxed);
            std::atomic_thread_fence(std::memory_order_seq_cst);
            if (p_.sink.free_slots() == 0 && !stop_requested_.load(std::memory_order_acquire)) {
                ++sleeps_;
                p_.doorbell.wait_for_ms(timeout_ms);
            }
            sink_blocked_.store(false, std::memory_order_relaxed);
            return;
        }
        // Only threaded producers look at sleeping_ (an inline owner cannot submit while the
        // loop sleeps), so inline mode skips the flag and its fence.
        const bool announce = !inline_mode();
        if (announce) {
            sleeping_.store(true, std::memory_order_relaxed);
            std::atomic_thread_fence(std::memory_order_seq_cst);
        }
        // Idle with nothing queued, or stuck behind a full backend or pool (`blocked_`): either
        // way only a completion, a doorbell or the timeout can change anything.
        if ((ring_.empty() || blocked_) && !stop_requested_.load(std::memory_order_acquire)) {
            ++sleeps_;
            if constexpr (requires { p_.doorbell.native_handle(); }) {
                p_.backend.wait(p_.doorbell.native_handle(), timeout_ms); // submits, then waits
            } else {
                p_.backend.flush();
                p_.doorbell.wait_for_ms(timeout_ms < 0 ? 1 : timeout_ms);
            }
        } else {
            p_.backend.flush();
        }
        if (announce) sleeping_.store(false, std::memory_order_relaxed);
        p_.doorbell.try_wait(); // consume the doorbell (no syscall unless it was rung)
    }

    // Spinning pays only while another CPU can run whoever we wait for (a producer, the
    // consumer, io-wq). On a thread allowed a single CPU it burns the time slice they need.
    static bool may_run_on_several_cpus() noexcept {
        cpu_set_t set;
        CPU_ZERO(&set);
        if (::sched_getaffinity(0, sizeof set, &set) != 0) return true;
        return CPU_COUNT(&set) > 1;
    }

    void threaded_loop() noexcept {
        const bool spin = opts_.spin.count() > 0 && may_run_on_several_cpus();
        auto idle_since = std::chrono::steady_clock::time_point{};
        bool idle = false;
        unsigned idle_passes = 0;
        while (!stop_requested_.load(std::memory_order_acquire)) {
            if (run_once(false)) {
                idle = false;
                continue;
            }
            if (!spin) {
                sleep();
                continue;
            }
            // Read the clock every 64 idle passes, not every pass: it is most of an idle pass.
            if (!idle) {
                idle = true;
                idle_passes = 0;
                idle_since = std::chrono::steady_clock::now();
            } else if ((++idle_passes & 63) == 0 && std::chrono::steady_clock::now() - idle_since >= opts_.spin) {
                sleep();
                idle = false;
            }
        }
        drain_for_shutdown();
    }

    // Called on the loop thread (or by stop() when no loop thread exists).
    void drain_for_shutdown() noexcept {
        // Exactly one caller drains (run()'s owner, stop() from another thread, the destructor);
        // the others wait until it has finished.
        if (drain_claimed_.exchange(true, std::memory_order_acq_rel)) {
            while (!drained()) std::this_thread::yield();
            return;
        }
        enter_loop_thread();
        stopping_.store(true, std::memory_order_seq_cst);
        while (producers_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
        // Accepted but never started: complete as cancelled.
        while (const submit_entry* e = ring_.front_exclusive()) {
            deliver(make_completion(*e, -125 /* ECANCELED */));
            ring_.pop_front_exclusive();
        }
        p_.backend.cancel_all();
        p_.backend.flush();
        p_.workers.shutdown(); // finishes what it accepted
        while (p_.backend.inflight() > 0 || p_.workers.outstanding() > 0) {
            if (drain_completions() == 0) {
                // With a full sink, park what is visible; when nothing is, enter the kernel: the
                // cancellations may still be running, or their CQEs may sit in the kernel's
                // overflow list (in-flight + cancels + the doorbell can exceed the CQ), which
                // only an io_uring_enter flushes. Reaping without entering would spin forever.
                const std::size_t parked = p_.sink.free_slots() == 0 ? drain_into_leftovers() : 0;
                if (parked == 0 && p_.backend.inflight() > 0) p_.backend.wait(-1, -1);
            }
        }
        drain_completions();
        p_.sink.flush_and_notify();
        drained_.store(true, std::memory_order_release);
    }

    // The sink is full and nobody may be consuming during shutdown: park completions aside.
    // Completions that found the sink full during shutdown; the consumer may be polling
    // concurrently, hence the lock (never taken on the normal path).
    void park(const completion_entry& c) noexcept {
        std::lock_guard lock(leftover_mutex_);
        leftovers_.push_back(c);
        has_leftovers_.store(true, std::memory_order_release);
    }

    std::size_t drain_into_leftovers() noexcept {
        std::span<completion_entry> buf(scratch_.data(), scratch_.size());
        std::size_t n = p_.backend.reap(buf);
        n += p_.workers.reap(buf.subspan(n));
        for (std::size_t i = 0; i < n; ++i) {
            if (buf[i].entry_flags & entry_flags::direct_waiter)
                reinterpret_cast<call_waiter*>(buf[i].corr_id)->complete(buf[i]);
            else
                park(buf[i]);
        }
        delivered_.fetch_add(n, std::memory_order_relaxed);
        return n;
    }

    parts p_;
    dispatcher_options opts_;
    dispatcher_hooks hooks_;
    submit_ring ring_;
    std::vector<completion_entry> scratch_;
    bool blocked_ = false; // the front entry waits for room in the backend or the pool
    std::uint64_t sleeps_ = 0;
    std::mutex leftover_mutex_;
    std::vector<completion_entry> leftovers_;
    std::size_t leftover_head_ = 0;
    std::atomic<bool> has_leftovers_{false};
    std::atomic<bool> drained_{false};
    std::atomic<bool> running_{false};
    std::atomic<bool> drain_claimed_{false};
    std::atomic<std::size_t> producers_{0};
    std::thread thread_;
    alignas(cache_line) std::atomic<bool> sleeping_{false};
    std::atomic<bool> sink_blocked_{false};
    std::atomic<bool> stopping_{false};
    std::atomic<bool> stop_requested_{false};
    std::atomic<std::uint64_t> accepted_{0};
    std::atomic<std::uint64_t> delivered_{0};
};

} // namespace ksvc
