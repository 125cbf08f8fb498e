#pragma once
//! instance<R, B, W, N, P> — the compositor: owns one model per slot and the dispatcher that
//! drives them. Slots: syscall_router, io_backend, worker_pool, notifier, buffer_provider
//! (plus completion_sink, shared_page and the dispatch mode, defaulted: any_dispatch lets
//! instance_options::mode choose; threaded_dispatch / inline_dispatch fix it in the type).
//!
//! Threads: in threaded mode every public member may be called from any thread except
//! poll()/wait_completions() (one consumer at a time). In inline mode everything belongs to
//! the owner thread, which drives the loop with run_once()/run() (call() drives it itself);
//! on a ring bound to its thread (single issuer, deferred task work, registered ring fd) the
//! first thread to drive it stays the only one: run_once() elsewhere does nothing and call()
//! completes with errc::not_owner.
//! After fork() the child must not use the parent's instance: every call reports
//! errc::forked_child and destruction only releases this process's mappings.
#include <chrono>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <span>
#include <system_error>
#include <type_traits>

#include <ksvc/core/concepts.hpp>
#include <ksvc/core/kernel.hpp>
#include <ksvc/executor/dispatcher.hpp>
#include <ksvc/module/backends/io_uring_backend.hpp>
#include <ksvc/module/capabilities.hpp>
#include <ksvc/module/counters/publisher.hpp>
#include <ksvc/module/process.hpp>
#include <ksvc/module/routers/route_table.hpp>
#include <ksvc/module/shared_page/process_shared_page.hpp>
#include <ksvc/module/sinks/ring_completion_sink.hpp>
#include <ksvc/module/workers/fixed_pool.hpp>
#include <ksvc/module/workers/syscall_runner.hpp>

namespace ksvc {

struct instance_options {
    //! Unset: the instance type's mode (any_dispatch: threaded). Set: must agree with a mode the
    //! type fixes (threaded_dispatch / inline_dispatch), else the constructor throws.
    std::optional<dispatch_mode> mode{};
    const capabilities* caps = nullptr; //!< injected snapshot; default current_capabilities()
    io_uring_options ring{};
    pool_options pool{};
    std::size_t submit_capacity = 4096;
    std::size_t sink_capacity = 4096;
    std::size_t batch = 64;
    std::chrono::nanoseconds spin{std::chrono::microseconds(50)};
    std::size_t buffer_count = 64;
    std::size_t buffer_size = 64 * 1024;
    std::uint16_t buffer_group = 0;  //!< provided_buffer_ring: its buffer group id
    bool buffer_incremental = true;  //!< provided_buffer_ring: incremental consumption where the kernel has it (6.12)
    //! Live counters in a shared-memory file only this user can read (ksvc-top shows them;
    //! ksvc/module/counters/publisher.hpp). Unset: on unless KSVC_COUNTERS is 0, off, no or false.
    std::optional<bool> publish_counters{};
    std::string name = "ksvc"; //!< how ksvc-top names this instance
};

namespace detail {
// Builds a policy from whichever of the instance's settings its constructor accepts, so a user
// policy needs no particular constructor (default-constructible is enough). Returning a
// prvalue lets non-movable policies be built in place.
template <class T>
T make_policy(const instance_options& o, const capabilities& c) {
    if constexpr (std::is_constructible_v<T, const capabilities&, io_uring_options>) return T(c, o.ring);
    else if constexpr (std::is_constructible_v<T, const capabilities&>) return T(c);
    else if constexpr (std::is_constructible_v<T, pool_options>) return T(o.pool);
    else if constexpr (std::is_constructible_v<T, std::size_t, std::size_t, std::uint16_t, bool>)
        return T(o.buffer_count, o.buffer_size, o.buffer_group, o.buffer_incremental);
    else if constexpr (std::is_constructible_v<T, std::size_t, std::size_t>) return T(o.buffer_count, o.buffer_size);
    else return T();
}

//! A worker pool that runs Tier-2 entries on the dispatching thread itself (inline_worker).
template <class W>
inline constexpr bool runs_on_dispatching_thread = requires { requires W::runs_on_dispatching_thread; };

inline constexpr const char* threaded_inline_worker_message =
    "ksvc::instance: threaded dispatch with a worker pool that runs Tier-2 syscalls on the dispatching thread "
    "(inline_worker): one blocking syscall would stall the loop thread, and with it every caller and stop(); "
    "use fixed_pool, or inline dispatch";
} // namespace detail

//! Satisfied by an instance whose every slot models its concept.
template <class I>
concept instance_composition = syscall_router<typename I::router_type> && io_backend<typename I::backend_type> &&
    worker_pool<typename I::worker_type> && notifier<typename I::notifier_type> &&
    buffer_provider<typename I::buffer_type> && requires { sizeof(I); };

template <class R, class B, class W, class N, class P, class S = ring_completion_sink, class SP = process_shared_page,
          class D = any_dispatch>
class instance {
    static_assert(syscall_router<R>, "ksvc::instance slot 1 (router): the type does not model ksvc::syscall_router");
    static_assert(io_backend<B>, "ksvc::instance slot 2 (io backend): the type does not model ksvc::io_backend");
    static_assert(worker_pool<W>, "ksvc::instance slot 3 (worker pool): the type does not model ksvc::worker_pool");
    static_assert(notifier<N>, "ksvc::instance slot 4 (notifier): the type does not model ksvc::notifier");
    static_assert(buffer_provider<P>, "ksvc::instance slot 5 (buffer provider): the type does not model ksvc::buffer_provider");
    static_assert(completion_sink<S>, "ksvc::instance slot 6 (completion sink): the type does not model ksvc::completion_sink");
    static_assert(shared_page<SP>, "ksvc::instance slot 7 (shared page): the type does not model ksvc::shared_page");
    static_assert(dispatch_policy<D>, "ksvc::instance slot 8 (dispatch): the type is not threaded_dispatch, inline_dispatch or any_dispatch");
    // One literal per rule (GCC 12's static_assert takes no constant expression as its message).
    static_assert(!(D::fixed_mode == dispatch_mode::threaded && detail::runs_on_dispatching_thread<W>),
                  "ksvc::instance: threaded_dispatch with inline_worker, which runs Tier-2 syscalls on the loop thread: "
                  "one blocking syscall would stall every caller and stop(); use fixed_pool, or inline_dispatch");

public:
    using router_type = R;
    using backend_type = B;
    using worker_type = W;
    using notifier_type = N;
    using buffer_type = P;
    using dispatcher_type = dispatcher<R, B, W, N, S, SP>;
    //! The dispatch mode the type fixes (empty: chosen by instance_options::mode).
    static constexpr std::optional<dispatch_mode> fixed_mode = D::fixed_mode;

    //! Throws std::invalid_argument when `o.mode` contradicts the type (or picks threaded
    //! dispatch for a pool that runs on the dispatching thread), before anything is built.
    explicit instance(instance_options o = {})
        : opts_(resolve_mode(o)), caps_(o.caps ? *o.caps : current_capabilities()),
          buffers_(detail::make_policy<P>(o, caps_)), backend_(detail::make_policy<B>(opts_, caps_)),
          router_(make_router(o)), workers_(detail::make_policy<W>(o, caps_)),
          notifier_(detail::make_policy<N>(o, doorbell_caps())), doorbell_(detail::make_policy<N>(o, doorbell_caps())),
          sink_(o.sink_capacity), counters_(make_publisher(o, opts_)),
          dispatcher_({router_, backend_, workers_, doorbell_, sink_, page_}, {*opts_.mode, o.submit_capacity, o.batch, o.spin},
                      {&process::block_sigpipe_on_this_thread, &detail::run_syscall_here, &thread_bound_entry}),
          fork_gen_(process::fork_generation()) {
        sink_.attach(waker{&notify_consumer, this});
        dispatcher_.attach_counters(counters_.block());
        // Buffers the kernel must know (a provided ring, registered buffers) are registered by
        // the backend on the thread that drives the ring, before its first entry.
        if constexpr (requires(B& b, P& p) { b.add_resource(p.resource()); }) backend_.add_resource(buffers_.resource());
        // A backend without a ring takes provided buffers in user space (epoll: recv_multishot).
        if constexpr (requires(B& b, P& p) { b.add_user_buffers(p.user_ring()); })
            backend_.add_user_buffers(buffers_.user_ring());
        dispatcher_.start();
        // Threaded: the loop thread has attached the ring by now. Inline: the owner's first
        // drive attaches it, and publishes the features again then.
        publish_features();
    }
    ~instance() {
        if (forked()) dispatcher_.abandon();
        else dispatcher_.stop();
    }
    instance(const instance&) = delete;
    instance& operator=(const instance&) = delete;

    //! Blocking facade: the completion of `e` (check .ok(), .result, .error()). Any thread in
    //! threaded mode (a Tier-2 call runs on the calling thread; a Tier-1 call on a private ring
    //! unless the entry needs the shared one); the owner in inline mode. Never waits for sink
    //! room. Refuses multishot operations (errc::multishot_call).
    completion_entry call(const submit_entry& e) noexcept { return call(e, -1); }
    //! The same with a deadline: a Tier-1 call is bounded by a link timeout and completes with
    //! -ECANCELED when it passes. A syscall running on a thread cannot be interrupted: Tier-2
    //! calls ignore the deadline.
    completion_entry call(const submit_entry& e, std::chrono::milliseconds timeout) noexcept {
        return call(e, static_cast<int>(timeout.count() < 0 ? 0 : timeout.count()));
    }
    //! Asynchronous: the completion arrives through poll()/wait_completions(), or at the
    //! completion target the entry names.
    std::error_code submit(const submit_entry& e) noexcept {
        if (forked()) return make_error_code(errc::forked_child);
        return dispatcher_.submit(e);
    }
    //! Several entries, contiguously and all or nothing: the way to submit a linked chain.
    std::error_code submit(std::span<const submit_entry> es) noexcept {
        if (forked()) return make_error_code(errc::forked_child);
        return dispatcher_.submit(es);
    }
    //! Takes delivered completions (one consumer thread at a time); never blocks.
    std::size_t poll(std::span<completion_entry> out) noexcept {
        if (forked()) return 0;
        dispatcher_.on_owner_poll();
        std::size_t n = sink_.pop(out);
        if (n) dispatcher_.on_consumed();
        if (n < out.size()) n += dispatcher_.take_leftovers(out.subspan(n));
        return n;
    }
    //! Waits up to `ms` (-1: until at least one arrives) for completions, then takes them.
    //! Inline mode drives the loop (owner thread only).
    std::size_t wait_completions(std::span<completion_entry> out, int ms = -1) noexcept {
        for (;;) {
            if (std::size_t n = poll(out)) return n;
            if (opts_.mode == dispatch_mode::inline_mode) {
                if (!dispatcher_.may_drive_here()) return 0; // a thread-bound ring's other thread
                dispatcher_.run_once(ms != 0, ms);
                if (!features_final_) publish_features();
            }
            else if (!notifier_.wait_for_ms(ms)) return poll(out);
            if (ms >= 0) return poll(out); // one bounded attempt; a stale wake-up may yield 0
        }
    }

    //! Inline mode: one loop iteration on the owner's thread (see dispatcher::run_once).
    //! Threaded mode: the loop thread drives itself; this does nothing and returns 0 (driving
    //! the loop from a second thread would race it).
    std::size_t run_once(bool may_block = false, int timeout_ms = -1) noexcept {
        if (forked() || opts_.mode == dispatch_mode::threaded) return 0;
        const std::size_t n = dispatcher_.run_once(may_block, timeout_ms);
        if (!features_final_) publish_features();
        return n;
    }
    //! Inline mode: loops until stop(). Threaded mode: returns at once (the loop thread runs).
    void run() noexcept {
        if (forked() || opts_.mode == dispatch_mode::threaded) return;
        if (!features_final_) { // the ring attaches on the first turn
            dispatcher_.run_once(false);
            publish_features();
        }
        dispatcher_.run();
    }
    void stop() noexcept {
        if (!forked()) dispatcher_.stop();
    }

    const capabilities& caps() const noexcept { return caps_; }
    //! The ring features in effect (after auto decisions and fallbacks), for io_uring backends.
    decltype(auto) features() const noexcept
        requires requires(const B& b) { b.features(); }
    {
        return backend_.features();
    }
    const R& router() const noexcept { return router_; }
    B& backend() noexcept { return backend_; }
    W& workers() noexcept { return workers_; }
    N& notifier() noexcept { return notifier_; }
    P& buffers() noexcept { return buffers_; }
    SP& page() noexcept { return page_; }
    dispatcher_type& loop() noexcept { return dispatcher_; }
    //! The live counters (nullptr when not published), and where they are.
    const counters_block* counters() const noexcept { return counters_.block(); }
    const counters_publisher& counters_file() const noexcept { return counters_; }

private:
    static instance_options resolve_mode(instance_options o) {
        auto name = [](dispatch_mode m) { return m == dispatch_mode::threaded ? "threaded" : "inline_mode"; };
        if constexpr (D::fixed_mode.has_value()) {
            if (o.mode && *o.mode != *D::fixed_mode)
                throw std::invalid_argument(std::string("ksvc::instance: instance_options::mode = ") + name(*o.mode) +
                                            " contradicts the instance type, which fixes " + name(*D::fixed_mode) +
                                            " dispatch");
            o.mode = D::fixed_mode;
        } else if (!o.mode) {
            o.mode = dispatch_mode::threaded;
        }
        if (*o.mode == dispatch_mode::threaded && detail::runs_on_dispatching_thread<W>)
            throw std::invalid_argument(detail::threaded_inline_worker_message);
        // Inline mode's call() never uses a private ring: do not open one up front.
        if (*o.mode == dispatch_mode::inline_mode) o.ring.reserve_call_ring = false;
        return o;
    }

    completion_entry call(const submit_entry& e, int timeout_ms) noexcept {
        if (forked()) return make_framework_completion(e, errc::forked_child);
        completion_entry c = dispatcher_.call(e, timeout_ms);
        if (!features_final_ && opts_.mode == dispatch_mode::inline_mode) publish_features();
        return c;
    }
    counters_publisher make_publisher(const instance_options& o, const instance_options& resolved) const {
        if (!o.publish_counters.value_or(counters_enabled_by_environment())) return {};
        const char* backend = "custom";
        if constexpr (requires(const B& b) { b.name(); }) backend = backend_.name();
        return counters_publisher(o.name, backend, *resolved.mode == dispatch_mode::threaded ? "threaded" : "inline");
    }
    // The router routes what the backend executes (its offer) when both know how; else it is
    // built from the kernel's snapshot like any other policy.
    R make_router(const instance_options& o) const {
        if constexpr (std::is_constructible_v<R, const routing::backend_offer&> && requires(const B& b) { b.offer(); })
            return R(backend_.offer());
        else return detail::make_policy<R>(o, caps_);
    }
    // A notifier that could sleep on a futex word (futex_notifier) may do so only where the
    // backend can wait on one; elsewhere it must use its fd doorbell, which the backend polls.
    capabilities doorbell_caps() const {
        bool futex = false;
        if constexpr (requires(const B& b) { b.can_wait_futex(); }) futex = backend_.can_wait_futex();
        if (futex) return caps_;
        capabilities c = caps_;
        c.opcodes.reset(static_cast<std::size_t>(opcode::futex_wait));
        return c;
    }
    // What the ring got, once it is attached (threaded: at construction; inline: first drive).
    void publish_features() noexcept {
        if constexpr (requires(const B& b) { b.features(); b.attached(); }) {
            counters_.set_features(backend_.features());
            features_final_ = backend_.attached() || opts_.mode == dispatch_mode::threaded;
        } else if constexpr (requires(const B& b) { b.features(); }) {
            counters_.set_features(backend_.features());
            features_final_ = true;
        } else {
            features_final_ = true;
        }
    }
    static bool thread_bound_entry(const submit_entry& e) noexcept { return routing::thread_bound(e); }
    static void notify_consumer(void* self) noexcept { static_cast<instance*>(self)->notifier_.notify(); }
    bool forked() const noexcept { return fork_gen_ != process::fork_generation(); }

    instance_options opts_;
    capabilities caps_;
    P buffers_; // before the backend: the kernel may write buffers until the ring is torn down
    B backend_;
    R router_;  // after the backend: it routes what the backend executes
    W workers_;
    N notifier_;
    N doorbell_; // wakes the dispatcher (submissions, worker completions, stop)
    S sink_;
    SP page_;
    counters_publisher counters_; // before the dispatcher: it counts until its drain is done
    dispatcher_type dispatcher_;
    std::uint64_t fork_gen_;
    bool features_final_ = false;
};

} // namespace ksvc
