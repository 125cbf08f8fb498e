#pragma once
//! dispatcher — the generic loop that drives any composition of policies.
//!
//! One iteration (run_once):
//!   1. deliver completions: the backend's and the workers', every one of them — to its
//!      completion target (call(), coroutines) directly, to the sink otherwise; what the full
//!      sink cannot take is held in order and handed over as the consumer makes room;
//!   2. take entries: the target lane always (a caller waiting for its own completion never
//!      waits for sink room), the submit lane only while nothing is held for the sink;
//!   3. route each entry (a linked chain as one unit): answer Tier 0 in place, submit Tier 1,
//!      enqueue Tier 2, refuse Tier 3;
//!   4. kick the backend once for the batch — or, when the iteration may block and delivered
//!      nothing, sleep in the enter that submits it and deliver what woke it;
//!   5. publish the sink and wake its consumer.
//!
//! Two modes over the same loop:
//! - threaded: start() runs the loop on a dedicated thread, which owns the backend's ring
//!   (attaches it, drives it, tears it down); submit() is callable from any thread (MPSC lanes).
//!   Idle, it spins for `spin`, then blocks in the kernel until a completion or a doorbell.
//! - inline: the owner thread calls run_once() / run(); it alone submits and drives the loop.
//!   stop() from another thread only asks: the owner drains (in run_once/run, or the destructor).
//!
//! The blocking facade call() pays for no hand-off it does not need: threaded, a Tier-2 call
//! runs on the caller's thread (which is blocked anyway) and a Tier-1 call goes through the
//! backend's own blocking path when it has one (io_uring: a private ring per concurrent caller);
//! entries that need the shared ring (registered resources, an owner-thread ring) go through
//! the loop, as do all calls in inline mode.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <span>
#include <system_error>
#include <thread>
#include <vector>

#include <sched.h>

#include <ksvc/core/concepts.hpp>
#include <ksvc/core/counters.hpp>
#include <ksvc/core/entry.hpp>
#include <ksvc/core/operations.hpp>
#include <ksvc/core/syscalls.hpp>
#include <ksvc/executor/submit_ring.hpp>
#include <ksvc/executor/waiter.hpp>

namespace ksvc {

enum class dispatch_mode { inline_mode, threaded };

//! A request to cancel the entry whose corr_id is `corr_id`, made from any thread (a coroutine's
//! std::stop_token: executor/task.hpp). Intrusive — it lives in the requester, no allocation —
//! and withdrawn by the requester before it goes away (dispatcher::withdraw_cancel), so a
//! request can never outlive its entry and hit a later one that reuses the same corr_id.
struct cancel_request {
    std::uint64_t corr_id = 0;
    cancel_request* next = nullptr;
    bool queued = false; // guarded by the dispatcher's cancel mutex
};

//! The dispatch mode as part of an instance's type (instance's last parameter):
//! `threaded_dispatch` and `inline_dispatch` fix it — instance_options::mode may then only
//! repeat it — and `any_dispatch` leaves it to instance_options::mode (threaded by default).
//! Fixing it lets the instance check at compile time what would otherwise fail at run time.
template <dispatch_mode M>
struct fixed_dispatch {
    static constexpr std::optional<dispatch_mode> fixed_mode = M;
};
using threaded_dispatch = fixed_dispatch<dispatch_mode::threaded>;
using inline_dispatch = fixed_dispatch<dispatch_mode::inline_mode>;
struct any_dispatch {
    static constexpr std::optional<dispatch_mode> fixed_mode{};
};
template <class D>
concept dispatch_policy = requires {
    { D::fixed_mode } -> std::convertible_to<std::optional<dispatch_mode>>;
};

struct dispatcher_options {
    dispatch_mode mode = dispatch_mode::threaded;
    std::size_t submit_capacity = 4096; //!< each bounded lane (rounded up to a power of two)
    std::size_t batch = 64;             //!< entries taken per iteration, completions reaped per pass
    //! Idle spin before sleeping; none when the loop thread may use only one CPU.
    std::chrono::nanoseconds spin{std::chrono::microseconds(50)};
};

//! What the dispatcher needs from the module that composes it.
struct dispatcher_hooks {
    //! Once per thread that runs the loop (the module blocks SIGPIPE there: an io_uring write
    //! to a broken pipe raises it on the submitting thread).
    void (*on_loop_thread)() noexcept = nullptr;
    //! Runs an entry with syscall(2) on the calling thread, SIGPIPE contained (call()'s
    //! caller-thread path). Without it, call() always goes through the loop.
    completion_entry (*run_here)(const submit_entry&) noexcept = nullptr;
    //! Whether this entry acts on the calling thread (it may then only run there).
    bool (*thread_bound)(const submit_entry&) noexcept = nullptr;
};

template <syscall_router R, io_backend B, worker_pool W, notifier N, completion_sink S, shared_page SP>
class dispatcher {
public:
    struct parts {
        const R& router;
        B& backend;
        W& workers;
        N& doorbell;
        S& sink;
        SP& page;
    };

    dispatcher(parts p, dispatcher_options o, dispatcher_hooks h = {})
        : p_(p), opts_(o), hooks_(h), lanes_memory_(2 * submit_ring::memory_for(o.submit_capacity)),
          lane_(o.submit_capacity, lanes_memory_.data()),
          targets_(o.submit_capacity, lanes_memory_.data() + submit_ring::memory_for(o.submit_capacity)),
          scratch_(o.batch ? o.batch : 1), owner_(std::this_thread::get_id()) {
        if (opts_.batch == 0) opts_.batch = 1;
        routes_.reserve(64);
        p_.workers.attach(waker{&ring_doorbell, this});
    }
    ~dispatcher() {
        stop();
        // The destroyer is the last user: it drains if nobody has (an inline owner that left).
        if (!drained()) drain_for_shutdown();
    }
    dispatcher(const dispatcher&) = delete;
    dispatcher& operator=(const dispatcher&) = delete;

    [[nodiscard]] dispatch_mode mode() const noexcept { return opts_.mode; }

    //! Where the loop and the blocking facade count their work (ksvc/core/counters.hpp);
    //! nullptr: nothing is counted. Set before start(); the block must outlive the dispatcher.
    void attach_counters(counters_block* b) noexcept { counters_ = b; }
    [[nodiscard]] counters_block* counters() const noexcept { return counters_; }

    // ---- producer protocol ----------------------------------------------------------------

    //! Queues `e`. Any thread in threaded mode; the owner in inline mode. Never blocks.
    //! errc::ring_full when its lane is full (nothing was queued), errc::shut_down after stop().
    //! An entry flagged completion_target completes to the target its corr_id names, never
    //! through the sink. A linked chain must be submitted whole with submit(span) in threaded
    //! mode (other producers could interleave single submissions): errc::invalid_argument.
    std::error_code submit(const submit_entry& e) noexcept {
        if (!inline_mode() && e.continues_chain()) return make_error_code(errc::invalid_argument);
        return push_one(e);
    }
    //! Queues entries contiguously, all or nothing: a linked chain (each entry but the last
    //! flagged link or hardlink) is placed as one unit. All entries must share one lane (all or
    //! none with completion_target).
    std::error_code submit(std::span<const submit_entry> es) noexcept { return push(es); }

private:
    // Writes `e` into a ring cell field by field: callers have usually just stored corr_id,
    // and a wide copy over that fresh 8-byte store cannot be store-forwarded (perf: most of
    // the enqueue cost when it was a struct copy).
    struct entry_writer {
        const submit_entry& e;
        void operator()(submit_entry& slot) const noexcept {
            slot.corr_id = e.corr_id;
            slot.nr = e.nr;
            slot.flags = e.flags;
            for (int i = 0; i < 6; ++i) slot.args[i] = e.args[i];
        }
    };

    // The one-entry path of push(): no span walk, no lambda indirection.
    std::error_code push_one(const submit_entry& e) noexcept {
        submit_ring& lane = (e.flags & entry_flags::completion_target) ? targets_ : lane_;
        if (inline_mode()) {
            if (stopping_.load(std::memory_order_relaxed)) return make_error_code(errc::shut_down);
            if (!lane.try_emplace_exclusive(entry_writer{e})) return make_error_code(errc::ring_full);
            accepted_.store(accepted_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
            return {};
        }
        return push(std::span<const submit_entry>(&e, 1));
    }

    std::error_code push(std::span<const submit_entry> es) noexcept {
        if (es.empty()) return {};
        const bool to_target = es[0].flags & entry_flags::completion_target;
        for (const submit_entry& e : es)
            if (static_cast<bool>(e.flags & entry_flags::completion_target) != to_target)
                return make_error_code(errc::invalid_argument);
        submit_ring& lane = to_target ? targets_ : lane_;
        auto write = [&](std::size_t i, submit_entry& slot) noexcept { slot = es[i]; };
        // Inline mode: only the owner thread submits, and the loop runs on that same thread, so
        // no producer can race the shutdown drain or a sleeping loop. Skip the producer count,
        // the fence and the doorbell check (four locked instructions per entry).
        if (inline_mode()) {
            if (stopping_.load(std::memory_order_relaxed)) return make_error_code(errc::shut_down);
            bool ok;
            if (es.size() == 1) ok = lane.try_emplace_exclusive([&](submit_entry& s) noexcept { write(0, s); });
            else ok = lane.try_emplace_n(es.size(), write);
            if (!ok) return make_error_code(errc::ring_full);
            accepted_.store(accepted_.load(std::memory_order_relaxed) + es.size(), std::memory_order_relaxed);
            return {};
        }
        // Announce ourselves before checking `stopping_`: the shutdown drain waits for
        // producers_ == 0 after setting it, so no accepted entry can land after the drain.
        producers_.fetch_add(1, std::memory_order_seq_cst);
        if (stopping_.load(std::memory_order_seq_cst)) {
            producers_.fetch_sub(1, std::memory_order_release);
            return make_error_code(errc::shut_down);
        }
        const bool ok = es.size() == 1 ? lane.try_emplace([&](submit_entry& s) noexcept { write(0, s); })
                                       : lane.try_emplace_n(es.size(), write);
        producers_.fetch_sub(1, std::memory_order_release);
        if (!ok) return make_error_code(errc::ring_full);
        accepted_.fetch_add(es.size(), std::memory_order_relaxed);
        // Pairs with the fence in sleep(): either we see the loop asleep, or it sees our entry.
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (sleeping_.load(std::memory_order_relaxed)) p_.doorbell.notify();
        return {};
    }

public:
    // ---- blocking facade -------------------------------------------------------------------

    //! Runs `e` and returns its completion to the calling thread (corr_id and flags are the
    //! caller's own). Tier 0 is answered here; Tier 3 is refused here; a multishot operation is
    //! refused (errc::multishot_call). `timeout_ms` >= 0 bounds a Tier-1 call with a link
    //! timeout (the call then completes with -ECANCELED); a syscall running on a thread cannot
    //! be interrupted, so Tier-2 calls ignore it. Inline mode: owner thread only; it drives
    //! the loop until its completion arrives. Never waits for sink room.
    completion_entry call(const submit_entry& in, int timeout_ms = -1) noexcept {
        submit_entry e = in;
        if (e.continues_chain() || (e.flags & entry_flags::completion_target))
            return make_framework_completion(in, errc::invalid_argument);
        e.flags &= ~entry_flags::skip_success; // the caller waits for this completion
        const std::uint32_t number = e.number();
        const route_info r = p_.router.route(number);
        if (is_operation(number)) {
            const operation_info* oi = info(static_cast<operation>(number));
            if (oi->multishot) return make_framework_completion(in, errc::multishot_call);
        }
        completion_entry c;
        if (!call_without_loop(e, r, timeout_ms, c)) {
            if (r.tier == tier::legacy) return make_framework_completion(in, refusal(number));
            c = call_through_loop(e, r, timeout_ms);
        }
        c.corr_id = in.corr_id;
        c.entry_flags = in.flags;
        return c;
    }

private:
    // The paths that need no loop iteration. False: go through the loop.
    bool call_without_loop(const submit_entry& e, route_info r, int timeout_ms, completion_entry& out) noexcept {
        if (r.tier == tier::shared_page) {
            std::int64_t v = 0;
            if (p_.page.answer(e, v)) {
                count_caller(tier::shared_page, e.nr);
                out = make_completion(e, v);
                caller_done(tier::shared_page, out);
                return true;
            }
            if (!r.worker_safe) { // e.g. this thread's CPU clock: only this thread can read it
                if (!hooks_.run_here) {
                    out = make_framework_completion(e, errc::refused);
                    return true;
                }
                count_caller(tier::worker_pool, e.nr);
                out = hooks_.run_here(e);
                caller_done(tier::worker_pool, out);
                return true;
            }
        }
        if (r.tier == tier::legacy) return false;
        // The caller's own thread: required for thread-bound entries, free for any Tier-2 entry
        // of a threaded instance (the caller is blocked anyway; a pool thread would cost two
        // hand-offs). Inline mode keeps Tier 2 on the pool: the owner must not stall its loop.
        const bool bound = hooks_.thread_bound && hooks_.thread_bound(e);
        if (bound && !hooks_.run_here) {
            out = make_framework_completion(e, errc::thread_bound);
            return true;
        }
        if (inline_mode() && !bound) return false;
        if (!hooks_.run_here) return false;
        // Registered files and buffers live in the shared ring: a private ring has none.
        const bool ring_only = (e.flags & (entry_flags::fixed_file | entry_flags::buffer_select)) ||
                               (is_operation(e.number()) && info(static_cast<operation>(e.number()))->needs_resources);
        if (r.tier == tier::io_uring && !bound) {
            if (ring_only || backend_owner_bound()) return false;
            if constexpr (requires(B& b, completion_entry& c) { b.call_here(e, r, timeout_ms, c); }) {
                count_caller(tier::io_uring, e.nr); // before it runs: a blocked call shows in flight
                if (p_.backend.call_here(e, r, timeout_ms, out)) {
                    caller_done(tier::io_uring, out);
                    if (out.result >= 0) p_.page.observe(e.nr);
                    return true;
                }
                uncount_caller(tier::io_uring, e.nr); // goes through the loop instead
            }
            if (!r.worker_safe || ring_only) return false;
            // A deadline needs the backend's link timeout; a syscall on this thread could not
            // honour it. And some entries change what the backend tracks (epoll: close).
            if (timeout_ms >= 0) return false;
            if constexpr (requires(const B& b) { b.needs_loop(e); })
                if (p_.backend.needs_loop(e)) return false;
        } else if (ring_only) {
            out = make_framework_completion(e, errc::needs_ring);
            return true;
        }
        if (stopping_.load(std::memory_order_acquire)) {
            out = make_framework_completion(e, errc::shut_down);
            return true;
        }
        count_caller(tier::worker_pool, e.nr);
        out = hooks_.run_here(e);
        caller_done(tier::worker_pool, out);
        if (out.result >= 0) p_.page.observe(e.nr);
        return true;
    }

    completion_entry call_through_loop(submit_entry e, route_info r, int timeout_ms) noexcept {
        call_waiter w;
        e.corr_id = reinterpret_cast<std::uint64_t>(static_cast<completion_target*>(&w));
        e.flags |= entry_flags::completion_target;
        submit_entry chain[2] = {e, {}};
        std::size_t n = 1;
        if (timeout_ms >= 0 && r.tier == tier::io_uring) {
            chain[0].flags |= entry_flags::link;
            chain[1].nr = static_cast<std::uint32_t>(operation::link_timeout);
            chain[1].args[0] = static_cast<std::uint64_t>(timeout_ms) * 1'000'000u;
            chain[1].corr_id = e.corr_id;
            chain[1].flags = entry_flags::completion_target;
            n = 2;
        }
        w.expected = static_cast<std::uint32_t>(n);
        const std::span<const submit_entry> es(chain, n);
        if (inline_mode()) {
            if (!may_drive_here()) return make_framework_completion(e, errc::not_owner);
            // Owner thread: retry while the lane is full, driving the loop meanwhile.
            while (auto ec = push(es)) {
                if (ec != errc::ring_full) return make_framework_completion(e, static_cast<errc>(ec.value()));
                run_once(false);
            }
            while (!w.ready()) run_once(true);
        } else {
            std::error_code ec;
            // A full lane is transient for a blocking caller: wait for room rather than fail.
            while ((ec = push(es)) == errc::ring_full) std::this_thread::yield();
            if (ec) return make_framework_completion(e, static_cast<errc>(ec.value()));
            w.wait();
        }
        return w.result;
    }

    bool backend_owner_bound() const noexcept {
        if constexpr (requires(const B& b) { b.owner_thread(); }) return p_.backend.owner_thread();
        else return false;
    }

public:
    // ---- loop iteration --------------------------------------------------------------------

    //! Whether an iteration (run_once) is running now — on its own thread: a coroutine resumed
    //! there would have re-entered the loop.
    [[nodiscard]] bool in_loop() const noexcept { return in_loop_.load(std::memory_order_relaxed); }

    //! One iteration; returns how much happened (0 = idle). Owner thread only. With
    //! `may_block`, an iteration that has delivered nothing sleeps in the kernel until a
    //! completion, a doorbell or `timeout_ms` (-1: no limit), then delivers what woke it. The
    //! entries it just placed are submitted by that same sleep: one io_uring_enter submits and
    //! waits, as a raw liburing loop's io_uring_submit_and_wait does.
    std::size_t run_once(bool may_block = false, int timeout_ms = -1) noexcept {
        if (drained() || !enter_loop_thread()) return 0;
        in_loop_.store(true, std::memory_order_relaxed);
        const std::uint64_t delivered_before = delivered();
        // About to sleep if nothing is posted: that sleep's enter runs the deferred task work,
        // so this drain does not enter the kernel for it (a raw loop's one enter per turn).
        std::size_t progress = drain_completions(!may_block);
        if (!stopping_.load(std::memory_order_acquire)) progress += intake();
        // After intake: an entry submitted before its cancel request was made is placed by now.
        if (cancel_pending_.load(std::memory_order_acquire)) apply_cancels();
        if (may_block && delivered() == delivered_before && !stop_requested_.load(std::memory_order_acquire)) {
            sleep(timeout_ms); // flushes the backend on every path
            progress += drain_completions();
        } else if constexpr (requires { p_.backend.flush_and_run(); }) {
            if (may_block) { // an event loop's turn: one enter submits and runs the task work
                p_.backend.flush_and_run();
                progress += drain_completions(false);
            } else {
                p_.backend.flush();
            }
        } else {
            p_.backend.flush(); // once per batch; a no-op when only other tiers were placed
        }
        // Gauges before the sink's publish: a poll()/wait_completions() consumer holding this
        // turn's completions sees gauges at least this fresh (a worker whose completion it holds
        // is no longer counted busy). Completion targets were resumed during the drain, earlier.
        refresh_gauges();
        p_.sink.flush_and_notify();
        in_loop_.store(false, std::memory_order_relaxed);
        // Inline: a stop() from another thread only asked; the owner drains here.
        if (inline_mode() && stop_requested_.load(std::memory_order_acquire)) drain_for_shutdown();
        return progress;
    }

    //! Asks the loop to cancel `r.corr_id` (Tier 1: IORING_OP_ASYNC_CANCEL, or the epoll
    //! backend's cancel): any thread, any mode (an inline loop asleep in the kernel is woken).
    //! The request stays until the backend has found the entry — placed after the request, or
    //! never, if it runs elsewhere — or until withdraw_cancel(). The entry completes with
    //! -ECANCELED, or with its result if it finished first. Tier 2, with a pool that has
    //! cancel() (fixed_pool, lazy_pool): a queued entry is removed (lazy_pool), a running
    //! syscall is interrupted by a signal (it returns EINTR, reported as -ECANCELED); a syscall
    //! that cannot be interrupted (disk I/O) completes when it is done.
    void request_cancel(cancel_request& r) noexcept {
        {
            std::lock_guard lock(cancel_mutex_);
            if (!r.queued) {
                r.next = cancels_;
                cancels_ = &r;
                r.queued = true;
            }
            cancel_pending_.store(true, std::memory_order_release);
        }
        wake();
    }
    //! Wakes the loop if it sleeps in the kernel, or makes its next sleep return at once (any
    //! thread, any mode): an inline owner blocked in run_once() returns to its caller.
    void wake() noexcept { p_.doorbell.notify(); }
    //! Removes `r` if it is still waiting (any thread); afterwards the loop never reads it.
    //! True if it was waiting (so it never reached its target).
    bool withdraw_cancel(cancel_request& r) noexcept {
        std::lock_guard lock(cancel_mutex_);
        if (!r.queued) return false;
        for (cancel_request** p = &cancels_; *p; p = &(*p)->next)
            if (*p == &r) {
                *p = r.next;
                break;
            }
        r.queued = false;
        cancel_pending_.store(cancels_ != nullptr, std::memory_order_release);
        forget_in_pool(r.corr_id); // the id may be reused by new work
        return true;
    }

    //! Inline mode: loops until stop() (from any thread) — blocking in the kernel when idle.
    void run() noexcept {
        if (!may_drive_here()) return;
        while (!stop_requested_.load(std::memory_order_seq_cst)) run_once(true);
        drain_for_shutdown();
    }

    //! Threaded mode: starts the loop thread and returns once it has attached the backend (its
    //! ring enabled and its resources registered: what registration failed is known by then).
    void start() {
        if (opts_.mode != dispatch_mode::threaded || thread_.joinable()) return;
        thread_ = std::thread([this] { threaded_loop(); });
        loop_attached_.wait(false, std::memory_order_acquire);
    }

    //! Stops intake, cancels in-flight Tier-1 work (and private-ring calls), drains everything
    //! (completions are delivered: results, or -ECANCELED), joins the loop thread. Any thread,
    //! any number of times, concurrently: one caller joins, the others wait for the drain.
    //! Inline mode: from the owner (outside the loop) it drains; from another thread, or while
    //! the owner is inside run_once()/call(), it asks, and the owner drains when it returns.
    void stop() noexcept {
        stopping_.store(true, std::memory_order_seq_cst);
        stop_requested_.store(true, std::memory_order_seq_cst);
        if constexpr (requires(B& b) { b.interrupt_calls(); }) p_.backend.interrupt_calls();
        p_.doorbell.notify();
        if (!inline_mode()) {
            if (!join_claimed_.exchange(true, std::memory_order_acq_rel)) {
                if (thread_.joinable()) thread_.join(); // the loop thread drains before it exits
                else drain_for_shutdown();              // never started
            } else {
                wait_drained();
            }
            return;
        }
        if (std::this_thread::get_id() == owner_.load(std::memory_order_relaxed) && !in_loop_.load(std::memory_order_relaxed)) drain_for_shutdown();
    }

    //! Inline mode: the owner touched the instance (poll); a stop() another thread asked for
    //! is carried out here, on the owner's thread.
    void on_owner_poll() noexcept {
        if (inline_mode() && stop_requested_.load(std::memory_order_acquire) && !drained() &&
            !in_loop_.load(std::memory_order_relaxed))
            drain_for_shutdown();
    }

    //! Completions held back while the sink was full, in order (poll them after the sink's).
    std::size_t take_leftovers(std::span<completion_entry> out) noexcept {
        if (!has_held_.load(std::memory_order_acquire)) return 0; // the common case: no lock
        std::lock_guard lock(held_mutex_);
        std::size_t n = 0;
        while (n < out.size() && !held_.empty()) {
            out[n++] = held_.front();
            held_.pop_front();
        }
        if (held_.empty()) has_held_.store(false, std::memory_order_release);
        return n;
    }

    //! The consumer took completions: if the loop holds completions for the sink, wake it.
    void on_consumed() noexcept {
        if (inline_mode()) return; // the owner is the consumer
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (sink_blocked_.load(std::memory_order_relaxed)) p_.doorbell.notify();
    }

    //! Whether the calling thread may drive the loop: false only on a thread-bound ring
    //! (single issuer, deferred task work, registered ring fd) that another thread drove first.
    [[nodiscard]] bool may_drive_here() const noexcept {
        const std::thread::id d = driver_.load(std::memory_order_relaxed);
        return d == std::thread::id{} || d == std::this_thread::get_id();
    }
    [[nodiscard]] bool drained() const noexcept { return drained_.load(std::memory_order_acquire); }
    [[nodiscard]] std::uint64_t accepted() const noexcept { return accepted_.load(std::memory_order_relaxed); }
    [[nodiscard]] std::uint64_t delivered() const noexcept { return delivered_.load(std::memory_order_relaxed); }
    //! Times the loop went to sleep (any thread may read it).
    [[nodiscard]] std::uint64_t sleeps() const noexcept { return sleeps_.load(std::memory_order_relaxed); }
    [[nodiscard]] std::size_t queued() const noexcept { return lane_.size() + targets_.size(); }
    //! Entries that ran in tier `t`: placed by the loop, or run by call() without it.
    [[nodiscard]] std::uint64_t executed(tier t) const noexcept {
        const auto i = static_cast<std::size_t>(t);
        return loop_tier_[i].load(std::memory_order_relaxed) + caller_tier_[i].load(std::memory_order_relaxed);
    }
    //! Of those, the entries call() ran on its caller's thread or private ring.
    [[nodiscard]] std::uint64_t executed_by_callers(tier t) const noexcept {
        return caller_tier_[static_cast<std::size_t>(t)].load(std::memory_order_relaxed);
    }

    //! For an object inherited across fork(): forget the loop thread (it does not exist in this
    //! process) without touching shared state.
    void abandon() noexcept {
        if (thread_.joinable()) thread_.detach();
        join_claimed_.store(true, std::memory_order_release);
        drain_claimed_.store(true, std::memory_order_release);
        drained_.store(true, std::memory_order_release);
    }

private:
    static void ring_doorbell(void* self) noexcept { static_cast<dispatcher*>(self)->p_.doorbell.notify(); }

    bool inline_mode() const noexcept { return opts_.mode == dispatch_mode::inline_mode; }

    static errc refusal(std::uint32_t nr) noexcept {
        if (is_operation(nr)) return errc::unsupported;
        return syscalls::is_known(nr) ? errc::refused : errc::unknown_syscall;
    }

    // An entry placed in tier `t` by the loop. Single writer (the loop thread): plain stores.
    void count_loop(tier t, std::uint32_t nr) noexcept {
        const auto ti = static_cast<std::size_t>(t);
        detail::bump(loop_tier_[ti]);
        if (counters_) {
            detail::bump(counters_->loop.tier_calls[ti]);
            detail::bump(counters_->loop.calls[counter_index(nr)]);
        }
    }
    // A completion the loop delivers; `from` is the tier that produced it (uncounted: an entry
    // that was never placed, completed as cancelled at shutdown).
    static constexpr std::uint8_t uncounted = 0xff;
    void count_delivered(const completion_entry& c, std::uint8_t from) noexcept {
        if (!counters_) return;
        counter_tally& l = counters_->loop;
        detail::bump(l.delivered);
        const bool framework = c.flags & completion_flags::ksvc_error;
        if (c.result == -ENOBUFS && !framework) detail::bump(l.enobufs);
        if (from == uncounted || (c.flags & (completion_flags::more | completion_flags::message))) return;
        const std::size_t i = counter_index(c.nr);
        detail::bump(l.tier_done[from]);
        detail::bump(l.done[i]);
        if (c.result < 0) {
            detail::bump(l.tier_failures[from]);
            detail::bump(l.failures[i]);
        }
    }
    // The blocking facade: any thread, so locked increments (these calls are not the hot path).
    // count_caller: a call about to run on the caller's thread or its private ring;
    // uncount_caller: one the private ring did not take after all (it goes through the loop).
    void count_caller(tier t, std::uint32_t nr) noexcept { add_caller(t, nr, 1); }
    void uncount_caller(tier t, std::uint32_t nr) noexcept { add_caller(t, nr, ~std::uint64_t{0}); }
    void add_caller(tier t, std::uint32_t nr, std::uint64_t n) noexcept { // n: 1, or -1 as it wraps
        const auto ti = static_cast<std::size_t>(t);
        caller_tier_[ti].fetch_add(n, std::memory_order_relaxed);
        if (!counters_) return;
        counters_->callers.tier_calls[ti].fetch_add(n, std::memory_order_relaxed);
        counters_->callers.calls[counter_index(nr)].fetch_add(n, std::memory_order_relaxed);
    }
    void caller_done(tier t, const completion_entry& c) noexcept {
        if (!counters_) return;
        counter_tally& k = counters_->callers;
        const auto ti = static_cast<std::size_t>(t);
        const std::size_t i = counter_index(c.nr);
        k.tier_done[ti].fetch_add(1, std::memory_order_relaxed);
        k.done[i].fetch_add(1, std::memory_order_relaxed);
        if (c.result < 0) {
            k.tier_failures[ti].fetch_add(1, std::memory_order_relaxed);
            k.failures[i].fetch_add(1, std::memory_order_relaxed);
        }
        if (c.result == -ENOBUFS && !(c.flags & completion_flags::ksvc_error)) k.enobufs.fetch_add(1, std::memory_order_relaxed);
    }
    // Gauges: once per loop turn.
    void refresh_gauges() noexcept {
        if (!counters_) return;
        counters_block& b = *counters_;
        const auto set = [](std::atomic<std::uint64_t>& g, std::uint64_t v) { g.store(v, std::memory_order_relaxed); };
        set(b.workers_busy, p_.workers.active_workers());
        set(b.workers_total, p_.workers.total_workers());
        set(b.workers_max, p_.workers.max_workers());
        set(b.workers_queued, p_.workers.outstanding());
        if constexpr (requires(const B& bk) { bk.overflow_flushes(); }) set(b.cq_overflows, p_.backend.overflow_flushes());
        if constexpr (requires(const B& bk) { bk.stream_rearms(); }) set(b.stream_rearms, p_.backend.stream_rearms());
        detail::bump(b.loop_turns);
    }

    // False when this thread may not drive the loop: the backend's ring is bound to the thread
    // that drove it first (SINGLE_ISSUER, DEFER_TASKRUN, a registered ring fd, whose index
    // names a ring in the *calling* thread's table — entering it from another thread would
    // fail, or reach that thread's own ring).
    bool enter_loop_thread() noexcept {
        // By serial, not address: a new dispatcher may reuse a destroyed one's address.
        thread_local std::uint64_t entered = 0;
        if (entered == serial_) return true;
        if (!may_drive_here()) return false;
        entered = serial_;
        owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
        if (backend_owner_bound()) driver_.store(std::this_thread::get_id(), std::memory_order_relaxed);
        if (hooks_.on_loop_thread) hooks_.on_loop_thread();
        if constexpr (requires(B& b) { b.attach_to_this_thread(); }) p_.backend.attach_to_this_thread();
        return true;
    }

    // ---- delivery --------------------------------------------------------------------------

    void deliver(const completion_entry& c, std::uint8_t from) noexcept {
        count_delivered(c, from);
        if (c.result >= 0 && !(c.flags & completion_flags::message)) p_.page.observe(c.nr);
        // Single writer (the loop thread): a plain increment, no locked instruction.
        delivered_.store(delivered_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        if (c.entry_flags & entry_flags::completion_target) {
            if (!(c.flags & completion_flags::more)) --targets_inflight_;
            complete_target(c);
            return;
        }
        if (!(c.flags & (completion_flags::more | completion_flags::message)) && !is_stream(c.nr & 0xffffu)) --sink_inflight_;
        if ((c.entry_flags & entry_flags::skip_success) && c.result >= 0 && !(c.flags & completion_flags::more)) return;
        // Keep order: nothing goes into the sink ahead of what is already held.
        if (!has_held_.load(std::memory_order_relaxed) && p_.sink.push(c)) return;
        hold(c);
    }

    void hold(const completion_entry& c) noexcept {
        std::lock_guard lock(held_mutex_);
        held_.push_back(c);
        has_held_.store(true, std::memory_order_release);
    }

    // Hands held completions to the sink while it has room.
    void release_held() noexcept {
        if (!has_held_.load(std::memory_order_acquire)) return;
        std::lock_guard lock(held_mutex_);
        while (!held_.empty() && p_.sink.push(held_.front())) held_.pop_front();
        if (held_.empty()) has_held_.store(false, std::memory_order_release);
    }

    // Every completion that is ready, however full the sink: waiting callers must get theirs.
    // Held completions are bounded by the work in flight (intake stops while any are held),
    // except a multishot stream's, which keep coming while its consumer does not poll.
    std::size_t drain_completions(bool run_task_work = true) noexcept {
        release_held();
        std::size_t total = 0;
        const std::span<completion_entry> buf(scratch_.data(), scratch_.size());
        for (;;) {
            std::size_t n;
            if constexpr (requires { p_.backend.reap_posted(buf); })
                n = run_task_work ? p_.backend.reap(buf) : p_.backend.reap_posted(buf);
            else
                n = p_.backend.reap(buf);
            for (std::size_t i = 0; i < n; ++i) deliver(buf[i], static_cast<std::uint8_t>(tier::io_uring));
            const std::size_t m = p_.workers.reap(buf);
            for (std::size_t i = 0; i < m; ++i) deliver(buf[i], static_cast<std::uint8_t>(tier::worker_pool));
            total += n + m;
            if (n < buf.size() && m < buf.size()) break;
        }
        return total;
    }

    // ---- placement -------------------------------------------------------------------------

    enum class placed { done, wait };

    placed place(const submit_entry& e) noexcept {
        const route_info r = p_.router.route(e.number());
        // Only entries bound for a worker need the (out-of-line) thread-binding check.
        auto bound = [&] { return hooks_.thread_bound && hooks_.thread_bound(e); };
        switch (r.tier) {
        case tier::shared_page: {
            std::int64_t v = 0;
            if (p_.page.answer(e, v)) {
                count_loop(tier::shared_page, e.nr);
                deliver(make_completion(e, v), static_cast<std::uint8_t>(tier::shared_page));
                return placed::done;
            }
            if (!r.worker_safe) return refuse(e, errc::refused);
            return to_workers(e);
        }
        case tier::io_uring: {
            const status s = p_.backend.submit(e, r);
            if (s == status::ok) {
                count_loop(tier::io_uring, e.nr);
                return placed::done;
            }
            if (s == status::ring_full) return placed::wait;
            if (s == status::unsupported && r.worker_safe && !bound()) {
                if (e.flags & (entry_flags::fixed_file | entry_flags::buffer_select)) return refuse(e, errc::needs_ring);
                return to_workers(e);
            }
            return refuse(e, to_errc(s));
        }
        case tier::worker_pool:
            if (bound()) return refuse(e, errc::thread_bound);
            if (e.flags & (entry_flags::fixed_file | entry_flags::buffer_select)) return refuse(e, errc::needs_ring);
            return to_workers(e);
        case tier::legacy: return refuse(e, refusal(e.number()));
        }
        return placed::done;
    }

    placed refuse(const submit_entry& e, errc why) noexcept {
        count_loop(tier::legacy, e.nr);
        deliver(make_framework_completion(e, why), static_cast<std::uint8_t>(tier::legacy));
        return placed::done;
    }

    placed to_workers(const submit_entry& e) noexcept {
        const std::error_code ec = p_.workers.enqueue(e);
        if (!ec) {
            count_loop(tier::worker_pool, e.nr);
            return placed::done;
        }
        if (ec == errc::ring_full) return placed::wait;
        return refuse(e, static_cast<errc>(ec.value()));
    }

    // A linked chain: to io_uring when every entry can go there, else to one worker in order
    // when every entry may run on a worker, else refused whole (one completion per entry).
    placed place_chain(std::span<const submit_entry> chain) noexcept {
        routes_.resize(chain.size());
        bool all_ring = true, all_workers = true;
        for (std::size_t i = 0; i < chain.size(); ++i) {
            const submit_entry& e = chain[i];
            const route_info r = p_.router.route(e.number());
            routes_[i] = r;
            all_ring = all_ring && r.tier == tier::io_uring &&
                       e.number() != static_cast<std::uint32_t>(operation::cancel);
            const bool bound = hooks_.thread_bound && hooks_.thread_bound(e);
            all_workers = all_workers && r.tier != tier::legacy && r.worker_safe && !bound &&
                          !(e.flags & (entry_flags::fixed_file | entry_flags::buffer_select));
        }
        if (all_ring) {
            status s = status::unsupported;
            if constexpr (requires(B& b) { b.submit_chain(chain, routes_.data()); })
                s = p_.backend.submit_chain(chain, routes_.data());
            if (s == status::ok) {
                for (const submit_entry& m : chain) count_loop(tier::io_uring, m.nr);
                return placed::done;
            }
            if (s == status::ring_full) return placed::wait;
            if (s != status::unsupported) return refuse_chain(chain, to_errc(s));
            // call() with a deadline on an entry the backend hands to the workers (an epoll
            // backend and a regular file): a syscall on a thread cannot be interrupted, so it
            // runs there without the deadline, as a Tier-2 call() does.
            if (chain.size() == 2 && chain[1].number() == static_cast<std::uint32_t>(operation::link_timeout) &&
                routes_[0].worker_safe && !(hooks_.thread_bound && hooks_.thread_bound(chain[0])) &&
                !(chain[0].flags & (entry_flags::fixed_file | entry_flags::buffer_select))) {
                submit_entry alone = chain[0];
                alone.flags &= ~entry_flags::chain_mask;
                const placed p = to_workers(alone);
                if (p == placed::done) {
                    count_loop(tier::io_uring, chain[1].nr);
                    deliver(make_completion(chain[1], -ECANCELED), static_cast<std::uint8_t>(tier::io_uring));
                }
                return p;
            }
        }
        if (all_workers) {
            if constexpr (requires(W& w) { w.enqueue_chain(chain); }) {
                const std::error_code ec = p_.workers.enqueue_chain(chain);
                if (!ec) {
                    for (const submit_entry& m : chain) count_loop(tier::worker_pool, m.nr);
                    return placed::done;
                }
                if (ec == errc::ring_full) return placed::wait;
                return refuse_chain(chain, static_cast<errc>(ec.value()));
            }
        }
        return refuse_chain(chain, errc::chain_refused);
    }

    placed refuse_chain(std::span<const submit_entry> chain, errc why) noexcept {
        for (const submit_entry& e : chain) refuse(e, why);
        return placed::done;
    }

    // Takes entries from one lane. Returns how many were placed; `blocked` when the front
    // entry (or chain) must wait for room in the backend or the pool.
    std::size_t take(submit_ring& lane, std::size_t limit, bool& blocked) noexcept {
        std::size_t taken = 0;
        while (taken < limit) {
            const submit_entry* e = lane.front_exclusive();
            if (!e) break;
            if (!e->continues_chain()) {
                if (place(*e) == placed::wait) {
                    blocked = true;
                    break;
                }
                streams_taken_ += is_stream(e->number());
                lane.pop_front_exclusive();
                ++taken;
                continue;
            }
            // A chain: wait until all of it is published, then place it as one unit.
            chain_.clear();
            const submit_entry* c = e;
            for (std::size_t i = 0; c; c = lane.peek_exclusive(++i)) {
                chain_.push_back(*c);
                if (!c->continues_chain()) break;
            }
            if (!c) break; // the rest is still being written
            if (place_chain(chain_) == placed::wait) {
                blocked = true;
                break;
            }
            for (const submit_entry& m : chain_) streams_taken_ += is_stream(m.number());
            for (std::size_t i = 0; i < chain_.size(); ++i) lane.pop_front_exclusive();
            taken += chain_.size();
        }
        return taken;
    }

    // A request is over: a pool that marks queued entries for cancellation (fixed_pool) drops
    // the mark for its id.
    void forget_in_pool(std::uint64_t corr_id) noexcept {
        if constexpr (requires(W& w) { w.forget_cancel(corr_id); }) p_.workers.forget_cancel(corr_id);
    }

    // Each waiting request goes to the backend, then to the workers (on this, the loop's
    // thread). An entry the backend found, or a queued one a pool removed, ends its request;
    // the rest wait for the next turn — an entry not placed yet, or a worker's syscall that the
    // signal may have missed (signalled again each turn; sleep() turns every millisecond
    // while requests wait) — until the requester withdraws it.
    void apply_cancels() noexcept {
        std::lock_guard lock(cancel_mutex_);
        for (cancel_request** p = &cancels_; *p;) {
            cancel_request* r = *p;
            bool done = !p_.backend.cancel(r->corr_id);
            if constexpr (requires(W& w) { w.cancel(r->corr_id); }) {
                if (!done) {
                    using found = decltype(p_.workers.cancel(r->corr_id));
                    done = p_.workers.cancel(r->corr_id) == found::removed;
                }
            }
            if (done) {
                *p = r->next;
                r->queued = false;
                forget_in_pool(r->corr_id); // marked while it was not placed yet
            } else {
                p = &r->next;
            }
        }
        cancel_pending_.store(cancels_ != nullptr, std::memory_order_release);
    }

    std::size_t intake() noexcept {
        blocked_ = false;
        const std::size_t targeted = take(targets_, opts_.batch, blocked_);
        targets_inflight_ += static_cast<long>(targeted);
        std::size_t taken = targeted;
        // The submit lane waits while completions are held for a full sink, and takes no more
        // entries than the sink has room for (backpressure: single-shot work then never
        // outgrows the sink; only a multishot stream's completions are ever held).
        // A stream holds no room: it has no fixed number of completions, and those the sink
        // cannot take are held in order (10 000 idle recv streams must not stop the sends).
        const long room = static_cast<long>(p_.sink.free_slots()) - sink_inflight_;
        if (!has_held_.load(std::memory_order_relaxed) && room > 0) {
            streams_taken_ = 0;
            const std::size_t n = take(lane_, std::min(static_cast<std::size_t>(room), opts_.batch), blocked_);
            sink_inflight_ += static_cast<long>(n - streams_taken_);
            taken += n;
        }
        return taken; // run_once submits the batch: with one flush, or with the sleep's wait
    }

    // ---- sleep and doorbell ----------------------------------------------------------------

    bool intake_possible() const noexcept {
        if (!targets_.empty()) return true;
        return !lane_.empty() && !has_held_.load(std::memory_order_relaxed) &&
               static_cast<long>(p_.sink.free_slots()) > sink_inflight_;
    }

    // The backend sleeps with the doorbell armed in it: a futex word (futex_notifier on a kernel
    // with IORING_OP_FUTEX_WAIT) or a pollable fd.
    int backend_wait(int timeout_ms) noexcept {
        if constexpr (requires { p_.doorbell.futex_word(); }) {
            if (const std::uint32_t* w = p_.doorbell.futex_word()) {
                if constexpr (requires { p_.backend.wait_futex(w, timeout_ms); }) {
                    return p_.backend.wait_futex(w, timeout_ms);
                } else { // a backend that cannot arm it: sleep on the word itself
                    p_.backend.flush();
                    p_.doorbell.wait_for_ms(timeout_ms < 0 ? 1 : timeout_ms);
                    return 0;
                }
            }
        }
        return p_.backend.wait(p_.doorbell.native_handle(), timeout_ms);
    }

    // Always leaves the backend flushed: run_once defers a batch's flush to the wait here.
    void sleep(int timeout_ms = -1) noexcept {
        // Cancel requests still waiting are retried each turn (apply_cancels): turn soon.
        if (cancel_pending_.load(std::memory_order_acquire) && (timeout_ms < 0 || timeout_ms > 1)) timeout_ms = 1;
        // Only threaded producers look at sleeping_ (an inline owner cannot submit while the
        // loop sleeps), so inline mode skips the flag and its fence.
        const bool announce = !inline_mode();
        // Only the loop fills the sink, so "stuck" seen here stays true until a consumer pops;
        // the pop after the fence below sees sink_blocked_ and rings (Dekker, as sleeping_).
        const bool sink_stuck = has_held_.load(std::memory_order_relaxed) || p_.sink.free_slots() == 0;
        if (announce) {
            sleeping_.store(true, std::memory_order_relaxed);
            if (sink_stuck) sink_blocked_.store(true, std::memory_order_relaxed);
            std::atomic_thread_fence(std::memory_order_seq_cst);
        }
        // Idle, or stuck behind a full backend, pool or sink: only a completion, a doorbell
        // (a submission, a consumer making room, stop) or the timeout can change anything.
        // Inline mode does not sleep on a full sink unless a completion target waits: the
        // owner is the sink's consumer.
        if (inline_mode() && sink_stuck && targets_inflight_ <= 0) {
            p_.backend.flush();
        } else if ((blocked_ || !intake_possible()) && !stop_requested_.load(std::memory_order_acquire)) {
            detail::bump(sleeps_);
            if constexpr (requires { p_.doorbell.native_handle(); }) {
                const int r = backend_wait(timeout_ms); // submits, then waits
                if (r < 0 && r != -EINTR && r != -ETIME && r != -EAGAIN && r != -EBUSY)
                    p_.doorbell.wait_for_ms(1); // a broken ring: its entries were failed; do not spin
            } else {
                p_.backend.flush();
                p_.doorbell.wait_for_ms(timeout_ms < 0 ? 1 : timeout_ms);
            }
        } else {
            p_.backend.flush();
        }
        if (announce) {
            sleeping_.store(false, std::memory_order_relaxed);
            sink_blocked_.store(false, std::memory_order_relaxed);
        }
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
        enter_loop_thread();
        loop_attached_.store(true, std::memory_order_release);
        loop_attached_.notify_all();
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

    // ---- shutdown --------------------------------------------------------------------------

    void wait_drained() noexcept {
        while (!drained()) drained_.wait(false, std::memory_order_acquire);
    }

    // On the loop thread (threaded), the owner (inline), or the destroyer.
    void drain_for_shutdown() noexcept {
        // Exactly one caller drains; the others wait until it has finished.
        if (drain_claimed_.exchange(true, std::memory_order_acq_rel)) {
            wait_drained();
            return;
        }
        enter_loop_thread();
        stopping_.store(true, std::memory_order_seq_cst);
        while (producers_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
        // Accepted but never started: complete as cancelled.
        for (submit_ring* lane : {&targets_, &lane_}) {
            while (const submit_entry* e = lane->front_exclusive()) {
                deliver(make_completion(*e, -125 /* ECANCELED */), uncounted);
                lane->pop_front_exclusive();
            }
        }
        p_.backend.cancel_all();
        p_.backend.flush();
        p_.workers.shutdown(); // finishes what it accepted
        while (p_.backend.inflight() > 0 || p_.workers.outstanding() > 0) {
            // The cancellations may still be running, or their CQEs may sit in the kernel's
            // overflow list, which only an io_uring_enter flushes: reaping alone could spin.
            if (drain_completions() == 0 && p_.backend.inflight() > 0) {
                p_.backend.cancel_all(); // what a full submission queue refused the first time
                const int r = p_.backend.wait(-1, -1);
                if (r < 0 && r != -EINTR && r != -ETIME && r != -EAGAIN && r != -EBUSY)
                    std::this_thread::sleep_for(std::chrono::milliseconds(1));
            }
        }
        drain_completions();
        refresh_gauges(); // before the publish, as in run_once
        p_.sink.flush_and_notify();
        if constexpr (requires(B& b) { b.close_on_this_thread(); }) p_.backend.close_on_this_thread();
        drained_.store(true, std::memory_order_release);
        drained_.notify_all();
    }

    parts p_;
    dispatcher_options opts_;
    dispatcher_hooks hooks_;
    zero_pages lanes_memory_; // both lanes' cells: one mapping
    submit_ring lane_;    // entries whose completions go to the sink
    submit_ring targets_; // entries whose completions go to a completion target
    std::vector<completion_entry> scratch_;
    std::vector<submit_entry> chain_;  // the chain being placed (loop thread)
    std::vector<route_info> routes_;   // its routes
    bool blocked_ = false; // the front entry waits for room in the backend or the pool
    long sink_inflight_ = 0;    // submit-lane entries taken whose completion has not been delivered
    std::size_t streams_taken_ = 0; // of those taken by the last take(): streams (no room held)
    long targets_inflight_ = 0; // target-lane entries taken, not yet completed (drained ones make it negative)
    std::atomic<std::uint64_t> sleeps_{0}; // written by the loop alone, read by anyone
    std::atomic<std::thread::id> owner_; // inline: the thread that drives the loop (stop() reads it)
    std::atomic<std::thread::id> driver_{}; // the one thread allowed to drive a thread-bound ring
    const std::uint64_t serial_ = next_serial();
    static std::uint64_t next_serial() noexcept {
        static std::atomic<std::uint64_t> n{0};
        return n.fetch_add(1, std::memory_order_relaxed) + 1;
    }
    std::mutex held_mutex_;
    std::mutex cancel_mutex_;
    cancel_request* cancels_ = nullptr; // requests not yet matched (cancel_mutex_)
    std::atomic<bool> cancel_pending_{false};
    std::deque<completion_entry> held_; // for the sink, in order, while it is full
    std::atomic<bool> has_held_{false};
    std::atomic<bool> drained_{false};
    std::atomic<bool> loop_attached_{false};
    std::atomic<bool> in_loop_{false};
    std::atomic<bool> drain_claimed_{false};
    std::atomic<bool> join_claimed_{false};
    std::atomic<std::size_t> producers_{0};
    std::thread thread_;
    std::atomic<std::uint64_t> loop_tier_[tier_count] = {};
    std::atomic<std::uint64_t> caller_tier_[tier_count] = {};
    alignas(cache_line) std::atomic<bool> sleeping_{false};
    std::atomic<bool> sink_blocked_{false};
    std::atomic<bool> stopping_{false};
    std::atomic<bool> stop_requested_{false};
    std::atomic<std::uint64_t> accepted_{0};
    std::atomic<std::uint64_t> delivered_{0};
    counters_block* counters_ = nullptr;
};

} // namespace ksvc
