#pragma once
//! fallback_backend<Primary, Fallback> — the trait map's composite backend: it holds one of two
//! backends, chosen once at construction, and forwards every call to it behind one predictable
//! branch (no virtual call). default_instance and server_instance use it as
//! fallback_backend<their io_uring backend, epoll_backend>: io_uring where the process may use
//! it, epoll where it may not.
//!
//! The choice: Primary when the capability snapshot says io_uring is available and its
//! construction succeeds. Fallback when the snapshot says io_uring is unavailable — sysctl
//! kernel.io_uring_disabled, a seccomp filter (EPERM with the sysctl at 0), ENOSYS, or
//! KSVC_DISABLE_IO_URING — or when the ring's setup is refused at run time with one of those
//! errors (EPERM, ENOSYS, EACCES: a snapshot taken before a filter was installed). Any other
//! setup error (ENOMEM under RLIMIT_MEMLOCK, a `strict` feature the kernel lacks, bad options)
//! still throws: falling back would hide something the caller can fix. One line through io_uring_options::log says which backend serves and why;
//! features().notes keeps it.
//!
//! On the fallback, what needs a ring drops out: registered resources are not attached
//! (add_resource does nothing; resource_result says -EOPNOTSUPP; a provided buffer ring is
//! consumed in user space instead, add_user_buffers), features() has nothing in effect, and the router (built from offer()) sends files to the workers and refuses
//! ring-only operations with errc::unsupported.
#include <cerrno>
#include <optional>
#include <span>
#include <string>
#include <system_error>

#include <ksvc/core/concepts/io_backend.hpp>
#include <ksvc/core/kernel.hpp>
#include <ksvc/module/backends/epoll_backend.hpp>
#include <ksvc/module/backends/io_uring_backend.hpp>

// The hot forwards are inlined into the dispatcher as the wrapped backend's own members are:
// left to the inliner, the extra layer pushed run_once out of line (a 6 % loss at batch 1). The
// fallback's side of each is a cold out-of-line call, so the inlined code is the primary's own.
#define KSVC_FORWARD [[gnu::always_inline]] inline

namespace ksvc {

namespace detail {
//! Whether a ring setup failure means "this process may not use io_uring" (fall back), as
//! opposed to a configuration the caller must hear about.
inline bool io_uring_refused(const std::system_error& e) noexcept {
    if (e.code() == errc::io_uring_unavailable) return true;
    if (e.code().category() != std::system_category()) return false;
    const int v = e.code().value();
    return v == EPERM || v == ENOSYS || v == EACCES;
}
} // namespace detail

template <io_backend Primary, io_backend Fallback = epoll_backend>
class fallback_backend {
public:
    fallback_backend(const capabilities& caps, io_uring_options opts) {
        std::string why;
        if (caps.io_uring_available) {
            try {
                primary_.emplace(caps, opts);
                on_primary_ = true;
                return;
            } catch (const std::system_error& e) {
                if (!detail::io_uring_refused(e)) throw;
                why = e.what();
            }
        } else {
            why = caps.unavailable_reason.empty() ? std::string("io_uring unavailable") : caps.unavailable_reason;
        }
        fallback_.emplace(caps, opts);
        const std::string line = std::string("serving with the ") + Fallback::name() + " backend: " + why;
        if constexpr (requires { fallback_->add_note(line); }) fallback_->add_note(line);
        if (opts.log) opts.log(line);
    }

    //! Whether the primary (io_uring) backend serves.
    [[nodiscard]] bool on_primary() const noexcept { return on_primary_; }
    [[nodiscard]] const char* name() const noexcept { return on_primary_ ? Primary::name() : Fallback::name(); }
    static routing::backend_offer offer_for(const capabilities& caps) {
        return caps.io_uring_available ? Primary::offer_for(caps) : Fallback::offer_for(caps);
    }
    [[nodiscard]] routing::backend_offer offer() const { return on_primary_ ? primary_->offer() : fallback_->offer(); }
    [[nodiscard]] bool can_wait_futex() const noexcept { return on_primary_; }
    Primary* primary() noexcept { return on_primary_ ? &*primary_ : nullptr; }
    Fallback* fallback() noexcept { return on_primary_ ? nullptr : &*fallback_; }

    // ---- io_backend --------------------------------------------------------------------------
    KSVC_FORWARD status submit(const submit_entry& e, route_info r) noexcept {
        if (on_primary_) [[likely]] return primary_->submit(e, r);
        return cold([&] { return fallback_->submit(e, r); });
    }
    KSVC_FORWARD status submit_chain(std::span<const submit_entry> chain, const route_info* routes) noexcept {
        if (on_primary_) [[likely]] return chain_of(*primary_, chain, routes);
        return cold([&] { return chain_of(*fallback_, chain, routes); });
    }
    KSVC_FORWARD int flush() noexcept {
        if (on_primary_) [[likely]] return primary_->flush();
        return cold([&] { return fallback_->flush(); });
    }
    KSVC_FORWARD int flush_and_run() noexcept {
        if (on_primary_) [[likely]] {
            if constexpr (requires(Primary& p) { p.flush_and_run(); }) return primary_->flush_and_run();
            else return primary_->flush();
        }
        return cold([&] { return fallback_->flush(); });
    }
    KSVC_FORWARD std::size_t reap(std::span<completion_entry> out) noexcept {
        if (on_primary_) [[likely]] return primary_->reap(out);
        return cold([&] { return fallback_->reap(out); });
    }
    KSVC_FORWARD std::size_t reap_posted(std::span<completion_entry> out) noexcept {
        if (on_primary_) [[likely]] return posted_of(*primary_, out);
        return cold([&] { return posted_of(*fallback_, out); });
    }
    std::error_code cancel(std::uint64_t id) noexcept { return on_primary_ ? primary_->cancel(id) : fallback_->cancel(id); }
    std::size_t cancel_all() noexcept { return on_primary_ ? primary_->cancel_all() : fallback_->cancel_all(); }
    KSVC_FORWARD int wait(int fd, int timeout_ms = -1) noexcept {
        if (on_primary_) [[likely]] return primary_->wait(fd, timeout_ms);
        return cold([&] { return fallback_->wait(fd, timeout_ms); });
    }
    //! Only on the primary: the instance gives a fallback-served loop an fd doorbell (see
    //! can_wait_futex()); should a futex word reach the fallback anyway, it naps 1 ms at most.
    int wait_futex(const std::uint32_t* word, int timeout_ms = -1) noexcept {
        if (on_primary_) {
            if constexpr (requires(Primary& p) { p.wait_futex(word, timeout_ms); }) return primary_->wait_futex(word, timeout_ms);
        }
        const int bounded = timeout_ms < 0 || timeout_ms > 1 ? 1 : timeout_ms;
        return on_primary_ ? primary_->wait(-1, bounded) : fallback_->wait(-1, bounded);
    }
    [[nodiscard]] KSVC_FORWARD std::size_t inflight() const noexcept {
        if (on_primary_) [[likely]] return primary_->inflight();
        return cold([&] { return fallback_->inflight(); });
    }
    [[nodiscard]] KSVC_FORWARD std::size_t capacity() const noexcept {
        if (on_primary_) [[likely]] return primary_->capacity();
        return cold([&] { return fallback_->capacity(); });
    }
    [[nodiscard]] bool supports(opcode op) const noexcept { return on_primary_ ? primary_->supports(op) : fallback_->supports(op); }

    // ---- the optional members the dispatcher and the instance use --------------------------
    void attach_to_this_thread() noexcept {
        if constexpr (requires(Primary& p) { p.attach_to_this_thread(); })
            if (on_primary_) primary_->attach_to_this_thread();
    }
    [[nodiscard]] bool attached() const noexcept {
        if constexpr (requires(const Primary& p) { p.attached(); })
            if (on_primary_) return primary_->attached();
        return true;
    }
    void close_on_this_thread() noexcept {
        if constexpr (requires(Primary& p) { p.close_on_this_thread(); })
            if (on_primary_) primary_->close_on_this_thread();
    }
    bool call_here(const submit_entry& e, route_info r, int timeout_ms, completion_entry& out) noexcept {
        if constexpr (requires(Primary& p) { p.call_here(e, r, timeout_ms, out); })
            if (on_primary_) return primary_->call_here(e, r, timeout_ms, out);
        return false;
    }
    void interrupt_calls() noexcept {
        if constexpr (requires(Primary& p) { p.interrupt_calls(); })
            if (on_primary_) primary_->interrupt_calls();
    }
    void add_resource(const ring_resource& r) {
        if constexpr (requires(Primary& p) { p.add_resource(r); })
            if (on_primary_) primary_->add_resource(r);
    }
    void add_user_buffers(const user_buffer_ring& r) {
        if constexpr (requires(Fallback& f) { f.add_user_buffers(r); })
            if (!on_primary_) fallback_->add_user_buffers(r);
    }
    [[nodiscard]] int resource_result(std::size_t i) const noexcept {
        if constexpr (requires(const Primary& p) { p.resource_result(i); })
            if (on_primary_) return primary_->resource_result(i);
        return -EOPNOTSUPP;
    }
    [[nodiscard]] bool needs_loop(const submit_entry& e) const noexcept {
        if constexpr (requires(const Fallback& f) { f.needs_loop(e); })
            if (!on_primary_) return fallback_->needs_loop(e);
        return false;
    }
    [[nodiscard]] bool owner_thread() const noexcept {
        if constexpr (requires(const Primary& p) { p.owner_thread(); })
            if (on_primary_) return primary_->owner_thread();
        return false;
    }
    [[nodiscard]] int ring_fd() const noexcept {
        if constexpr (requires(const Primary& p) { p.ring_fd(); })
            if (on_primary_) return primary_->ring_fd();
        return -1;
    }
    [[nodiscard]] std::uint32_t setup_flags() const noexcept { return features().setup_flags; }
    [[nodiscard]] const effective_features& features() const noexcept {
        return on_primary_ ? primary_->features() : fallback_->features();
    }
    [[nodiscard]] int last_enter_error() const noexcept {
        if constexpr (requires(const Primary& p) { p.last_enter_error(); })
            if (on_primary_) return primary_->last_enter_error();
        return 0;
    }
    [[nodiscard]] std::uint64_t overflow_flushes() const noexcept {
        if constexpr (requires(const Primary& p) { p.overflow_flushes(); })
            if (on_primary_) return primary_->overflow_flushes();
        return 0;
    }
    [[nodiscard]] std::uint64_t stream_rearms() const noexcept {
        if (on_primary_) {
            if constexpr (requires(const Primary& p) { p.stream_rearms(); }) return primary_->stream_rearms();
            return 0;
        }
        if constexpr (requires(const Fallback& f) { f.stream_rearms(); }) return fallback_->stream_rearms();
        return 0;
    }
    [[nodiscard]] std::uint64_t kernel_skipped() const noexcept {
        if constexpr (requires(const Primary& p) { p.kernel_skipped(); })
            if (on_primary_) return primary_->kernel_skipped();
        return 0;
    }
    [[nodiscard]] std::uint64_t auto_sends_plain() const noexcept {
        if constexpr (requires(const Primary& p) { p.auto_sends_plain(); })
            if (on_primary_) return primary_->auto_sends_plain();
        return 0;
    }

private:
    // The fallback's side of a hot forward: out of line and cold, away from the primary's path.
    template <class F>
    [[gnu::noinline, gnu::cold]] static auto cold(F&& f) noexcept {
        return f();
    }
    template <class B>
    static status chain_of(B& b, std::span<const submit_entry> chain, const route_info* routes) noexcept {
        if constexpr (requires { b.submit_chain(chain, routes); }) return b.submit_chain(chain, routes);
        else return status::unsupported;
    }
    template <class B>
    static std::size_t posted_of(B& b, std::span<completion_entry> out) noexcept {
        if constexpr (requires { b.reap_posted(out); }) return b.reap_posted(out);
        else return b.reap(out);
    }

    std::optional<Primary> primary_;
    std::optional<Fallback> fallback_;
    bool on_primary_ = false;
};

//! basic_io_uring where io_uring may be used, the epoll backend elsewhere (default_instance).
using basic_io_uring_or_epoll = fallback_backend<basic_io_uring>;
static_assert(io_backend<basic_io_uring_or_epoll>);

} // namespace ksvc

#undef KSVC_FORWARD
