#pragma once
//! io_uring_backend<Features...> — the Tier-1 backend, with ring features as types that
//! compose orthogonally:
//!
//!   using my_ring = io_uring_backend<single_issuer, defer_taskrun, registered_ring_fd>;
//!
//! A feature type names its IORING_SETUP_* bits, what it requires and excludes, whether it
//! binds the ring to one thread, and its default `auto / on / off` setting with its fallback
//! `strict / graceful / warn` (overridable per instance through io_uring_options::override_of).
//! The set is checked at compile time (Boost.Hana folds it): duplicates, DEFER_TASKRUN without
//! SINGLE_ISSUER, TASKRUN_FLAG without COOP_TASKRUN or DEFER_TASKRUN, SQPOLL with COOP_TASKRUN
//! or DEFER_TASKRUN are errors that name both features.
//!
//! At run time each feature is decided against the capability snapshot:
//!   auto     use it when the kernel has it (SQPOLL only with more than two CPUs: a poller
//!            thread competes with the application on a small machine);
//!   on       wanted; if the kernel lacks it: strict throws std::system_error naming the feature,
//!            the kernel and the reason; graceful takes the next best (DEFER_TASKRUN ->
//!            COOP_TASKRUN -> none, registered ring fd -> plain fd, SQPOLL -> none); warn does the
//!            same and logs one line through the log hook;
//!   off      not used.
//! A setup the kernel refuses with EINVAL is retried down the same ladder. features() reports
//! what the ring got.
//!
//! Threads: the ring is driven by one thread — the loop thread in threaded mode, the owner in
//! inline mode. A ring that binds to its thread (SINGLE_ISSUER) is created disabled and enabled
//! by the first thread that drives it (attach_to_this_thread), which also registers the ring fd;
//! teardown runs there too (close_on_this_thread).
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <boost/hana/any_of.hpp>
#include <boost/hana/contains.hpp>
#include <boost/hana/fold_left.hpp>
#include <boost/hana/integral_constant.hpp>
#include <boost/hana/length.hpp>
#include <boost/hana/sort.hpp>
#include <boost/hana/tuple.hpp>
#include <boost/hana/type.hpp>
#include <boost/hana/unique.hpp>

#include <ksvc/core/concepts/io_backend.hpp>
#include <ksvc/core/kernel.hpp>
#include <ksvc/module/backends/uring_engine.hpp>
#include <ksvc/module/routers/route_table.hpp>

namespace ksvc {

enum class feature_mode : std::uint8_t { automatic, on, off };
enum class fallback_policy : std::uint8_t { strict, graceful, warn };
struct feature_setting {
    feature_mode mode = feature_mode::off;
    fallback_policy fallback = fallback_policy::graceful;
};

enum class feature_id : std::uint8_t {
    sqpoll, coop_taskrun, taskrun_flag, single_issuer, defer_taskrun, registered_ring_fd, submit_all,
    cq_entries, iowq_max_workers, fixed_files, restricted, count
};
inline constexpr std::size_t feature_count = static_cast<std::size_t>(feature_id::count);
std::string_view to_string(feature_id f) noexcept;

//! One line of text, once per instance and fallback (`warn`), or a setup note.
using log_hook = void (*)(std::string_view line) noexcept;
//! The default hook: one line on stderr, prefixed "ksvc: ".
void log_to_stderr(std::string_view line) noexcept;

//! How the epoll backend waits on a socket (epoll_backend.hpp, "Readiness, two ways").
enum class epoll_readiness : std::uint8_t { one_shot, edge };

struct io_uring_options {
    unsigned entries = 256;        //!< SQ entries; the CQ gets `cq_entries` (default 2x)
    unsigned cq_entries = 0;       //!< 0: 2 x entries (cq_entries<N> feature or this)
    //! Entries in flight at once (0: the SQ size). Above the SQ size the SQ is submitted as it
    //! fills; completions beyond the CQ size wait in the kernel's overflow list (IORING_FEAT_NODROP,
    //! 5.5) and ksvc flushes it, so size the CQ for the common case, not the worst.
    unsigned max_inflight = 0;
    std::uint32_t setup_flags = 0; //!< extra raw IORING_SETUP_* bits (expert escape hatch)
    //! Run-time override of a feature's setting, whatever the type says.
    std::array<std::optional<feature_setting>, feature_count> override_of{};
    log_hook log = &log_to_stderr;
    //! Test hook: replaces io_uring_setup(2) (return an fd or -errno), to inject refusals.
    int (*setup_hook)(unsigned entries, io_uring_params* p) noexcept = nullptr;
    //! CPUs for `auto` decisions (0: those this process may run on, process::usable_cpus()).
    unsigned online_cpus = 0;
    //! op::send_auto: the size from which SEND_ZC is used (peers measured plain send faster below
    //! about 8 KiB: pinning pages and the notification cost more than the copy).
    std::uint32_t zc_threshold = 8192;
    //! op::send_auto to a peer on this machine (loopback, or one of its own addresses): the
    //! kernel always copies then, so plain send unless this is set (tests use it to reach SEND_ZC).
    bool zc_local_peers = false;
    //! Open one private ring for the blocking facade at construction (its fd is taken now, not
    //! at some later first call). The instance turns it off in inline mode, whose call() never
    //! uses a private ring (one io_uring_setup less at start-up).
    bool reserve_call_ring = true;
    //! Where the epoll backend serves (epoll_instance, or the fallback where io_uring is
    //! refused): unset, the backend type's way (epoll_backend: one-shot; epoll_edge_backend: edge).
    std::optional<epoll_readiness> epoll_readiness_mode{};
};

namespace detail {
//! Requested ring setup: the feature types' settings folded, then the instance's overrides.
struct ring_request {
    io_uring_options opts;
    std::array<feature_setting, feature_count> settings{};
    std::array<bool, feature_count> named{}; //!< by the type or an override (else: not asked for)
    unsigned sqpoll_idle_ms = 1000;
    int sqpoll_cpu = -1;
    unsigned iowq_bounded = 0, iowq_unbounded = 0;
    unsigned fixed_files = 0;
};
} // namespace detail

// ---- feature types --------------------------------------------------------------------------
namespace features {
template <feature_id Id, std::uint32_t Bits, bool BindsThread, feature_mode M, fallback_policy F>
struct basic_feature {
    static constexpr feature_id id = Id;
    static constexpr std::uint32_t setup_bits = Bits;
    static constexpr bool binds_thread = BindsThread;
    static constexpr feature_setting setting{M, F};
    static void apply(detail::ring_request&) noexcept {}
};
} // namespace features

//! IORING_SETUP_SQPOLL: a kernel thread polls the SQ (idle `IdleMs`, pinned to `Cpu` if >= 0).
template <unsigned IdleMs = 1000, int Cpu = -1, feature_mode M = feature_mode::on,
          fallback_policy F = fallback_policy::graceful>
struct sqpoll : features::basic_feature<feature_id::sqpoll, setup_flag::sqpoll, false, M, F> {
    static void apply(detail::ring_request& r) noexcept {
        r.sqpoll_idle_ms = IdleMs;
        r.sqpoll_cpu = Cpu;
    }
};
template <feature_mode M = feature_mode::on, fallback_policy F = fallback_policy::graceful>
using coop_taskrun_t = features::basic_feature<feature_id::coop_taskrun, setup_flag::coop_taskrun, false, M, F>;
template <feature_mode M = feature_mode::on, fallback_policy F = fallback_policy::graceful>
using taskrun_flag_t = features::basic_feature<feature_id::taskrun_flag, setup_flag::taskrun_flag, false, M, F>;
template <feature_mode M = feature_mode::on, fallback_policy F = fallback_policy::graceful>
using single_issuer_t = features::basic_feature<feature_id::single_issuer, setup_flag::single_issuer, true, M, F>;
template <feature_mode M = feature_mode::on, fallback_policy F = fallback_policy::graceful>
using defer_taskrun_t = features::basic_feature<feature_id::defer_taskrun, setup_flag::defer_taskrun, true, M, F>;
template <feature_mode M = feature_mode::on, fallback_policy F = fallback_policy::graceful>
using registered_ring_fd_t = features::basic_feature<feature_id::registered_ring_fd, 0, true, M, F>;
template <feature_mode M = feature_mode::on, fallback_policy F = fallback_policy::graceful>
using submit_all_t = features::basic_feature<feature_id::submit_all, setup_flag::submit_all, false, M, F>;

//! Least privilege (5.10): the ring is created disabled, IORING_REGISTER_RESTRICTIONS allows
//! only the SQE opcodes ksvc's translations use (the route table's and the operations', plus the
//! doorbell, cancellation and timeouts), the SQE flags its entries use and the registrations its
//! features make, then the driving thread enables it. Anything else — a raw SQE with another
//! opcode — fails with -EACCES. features().restricted says whether it is in effect.
template <feature_mode M = feature_mode::on, fallback_policy F = fallback_policy::graceful>
using restricted_t = features::basic_feature<feature_id::restricted, 0, false, M, F>;

// The defaults as types of their own, so diagnostics and test names say what they are.
struct coop_taskrun : coop_taskrun_t<> {};
struct taskrun_flag : taskrun_flag_t<> {};
struct single_issuer : single_issuer_t<> {};
struct defer_taskrun : defer_taskrun_t<> {};
struct registered_ring_fd : registered_ring_fd_t<> {};
struct submit_all : submit_all_t<> {};
struct restricted : restricted_t<> {};

//! CQ size (IORING_SETUP_CQSIZE): N entries instead of 2 x SQ — and, unless
//! io_uring_options::max_inflight says otherwise, up to N entries in flight. A multishot stream
//! holds its slot until it ends, so a server with a recv stream per connection needs room for
//! every connection plus its sends: the SQ size alone would stall the sends behind the streams.
template <unsigned N>
struct cq_entries : features::basic_feature<feature_id::cq_entries, 0, false, feature_mode::on, fallback_policy::graceful> {
    static_assert(N > 0 && (N & (N - 1)) == 0, "ksvc::cq_entries<N>: N must be a power of two");
    static void apply(detail::ring_request& r) noexcept {
        if (r.opts.cq_entries == 0) r.opts.cq_entries = N;
        if (r.opts.max_inflight == 0) r.opts.max_inflight = N;
    }
};
//! io-wq limits (IORING_REGISTER_IOWQ_MAX_WORKERS, 5.15): bounded and unbounded workers.
template <unsigned Bounded, unsigned Unbounded, feature_mode M = feature_mode::on,
          fallback_policy F = fallback_policy::graceful>
struct iowq_max_workers : features::basic_feature<feature_id::iowq_max_workers, 0, false, M, F> {
    static void apply(detail::ring_request& r) noexcept {
        r.iowq_bounded = Bounded;
        r.iowq_unbounded = Unbounded;
    }
};

//! A sparse registered-file table of N slots (IORING_REGISTER_FILES2 sparse, 5.19), registered on
//! the driving thread: accept_direct / accept_multishot_direct / openat_direct allocate slots in
//! it, entries name them with ksvc::direct_fd. The table counts against RLIMIT_NOFILE: above the
//! soft limit it is cut to that limit (logged, noted, features().fixed_files says how many); a
//! refused registration is logged and noted (features().fixed_files stays 0).
template <unsigned N, feature_mode M = feature_mode::on, fallback_policy F = fallback_policy::graceful>
struct fixed_files : features::basic_feature<feature_id::fixed_files, 0, false, M, F> {
    static_assert(N > 0 && N <= (1u << 20), "ksvc::fixed_files<N>: N must be in [1, 1048576]");
    static void apply(detail::ring_request& r) noexcept { r.fixed_files = N; }
};

namespace detail {
namespace hana = boost::hana;

template <class... F>
struct feature_set {
    static constexpr auto ids = hana::make_tuple(hana::integral_c<int, static_cast<int>(F::id)>...);
    template <feature_id Id>
    static constexpr bool has = hana::contains(ids, hana::integral_c<int, static_cast<int>(Id)>);
    static constexpr bool unique = hana::length(hana::unique(hana::sort(ids))) == hana::length(ids);
    static constexpr std::uint32_t setup_bits =
        hana::fold_left(hana::make_tuple(F::setup_bits...), std::uint32_t{0}, [](std::uint32_t a, std::uint32_t b) { return a | b; });
    static constexpr bool binds_thread = hana::any_of(hana::make_tuple(hana::bool_c<F::binds_thread>...), [](auto b) { return b; });
};

template <class... F>
constexpr bool check_features() {
    using set = feature_set<F...>;
    // GCC 12's static_assert takes only a literal: one message per rule.
    static_assert(set::unique, "ksvc::io_uring_backend: a feature is listed twice");
    static_assert(!set::template has<feature_id::defer_taskrun> || set::template has<feature_id::single_issuer>,
                  "ksvc::io_uring_backend: defer_taskrun requires single_issuer (IORING_SETUP_DEFER_TASKRUN needs IORING_SETUP_SINGLE_ISSUER)");
    static_assert(!set::template has<feature_id::taskrun_flag> || set::template has<feature_id::coop_taskrun> ||
                      set::template has<feature_id::defer_taskrun>,
                  "ksvc::io_uring_backend: taskrun_flag requires coop_taskrun or defer_taskrun");
    static_assert(!set::template has<feature_id::sqpoll> || !set::template has<feature_id::coop_taskrun>,
                  "ksvc::io_uring_backend: sqpoll excludes coop_taskrun (an SQPOLL ring runs task work on its poller)");
    static_assert(!set::template has<feature_id::sqpoll> || !set::template has<feature_id::defer_taskrun>,
                  "ksvc::io_uring_backend: sqpoll excludes defer_taskrun (the kernel refuses the pair)");
    return true;
}
} // namespace detail

template <class... Features>
class io_uring_backend {
    static_assert(detail::check_features<Features...>());

public:
    using feature_set = detail::feature_set<Features...>;
    //! Whether the ring, by its type, binds to the one thread that drives it.
    static constexpr bool binds_thread = feature_set::binds_thread;

    explicit io_uring_backend(const capabilities& caps, io_uring_options opts = {}) : engine_(caps, request(opts)) {}

    static constexpr const char* name() noexcept { return "io_uring"; }
    //! What it executes on the kernel of `caps`, for the router.
    static routing::backend_offer offer_for(const capabilities& caps) { return routing::uring_offer(caps); }
    [[nodiscard]] routing::backend_offer offer() const { return routing::uring_offer(engine_.caps()); }
    //! The loop may sleep in this backend with a futex word as its doorbell (wait_futex).
    static constexpr bool can_wait_futex() noexcept { return true; }

    status submit(const submit_entry& e, route_info r) noexcept { return engine_.submit(e, r); }
    status submit_chain(std::span<const submit_entry> chain, const route_info* routes) noexcept {
        return engine_.submit_chain(chain, routes);
    }
    int flush() noexcept { return engine_.flush(); }
    //! flush() that also runs deferred task work (DEFER_TASKRUN) in the same enter.
    int flush_and_run() noexcept { return engine_.flush_and_run(); }
    std::size_t reap(std::span<completion_entry> out) noexcept { return engine_.reap(out); }
    //! reap() without entering the kernel for deferred task work: for a loop about to sleep
    //! in wait(), whose enter runs it.
    std::size_t reap_posted(std::span<completion_entry> out) noexcept { return engine_.reap(out, false); }
    std::error_code cancel(std::uint64_t corr_id) noexcept { return engine_.cancel(corr_id); }
    std::size_t cancel_all() noexcept { return engine_.cancel_all(); }
    int wait(int fd, int timeout_ms = -1) noexcept { return engine_.wait(fd, timeout_ms); }
    int wait_futex(const std::uint32_t* word, int timeout_ms = -1) noexcept { return engine_.wait_futex(word, timeout_ms); }
    std::size_t inflight() const noexcept { return engine_.inflight(); }
    std::size_t capacity() const noexcept { return engine_.capacity(); }
    bool supports(opcode op) const noexcept { return engine_.supports(op); }

    void attach_to_this_thread() noexcept { engine_.attach_to_this_thread(); }
    bool attached() const noexcept { return engine_.attached(); }
    void close_on_this_thread() noexcept { engine_.close_on_this_thread(); }
    bool call_here(const submit_entry& e, route_info r, int timeout_ms, completion_entry& out) noexcept {
        return engine_.call_here(e, r, timeout_ms, out);
    }
    void interrupt_calls() noexcept { engine_.interrupt_calls(); }
    //! A resource to register on the driving thread (see ring_resource); before the loop starts.
    void add_resource(const ring_resource& r) { engine_.add_resource(r); }
    [[nodiscard]] int resource_result(std::size_t i) const noexcept { return engine_.resource_result(i); }
    //! The live ring binds to its driving thread (by type, or through raw setup_flags).
    bool owner_thread() const noexcept { return engine_.features().owner_thread; }

    int ring_fd() const noexcept { return engine_.ring_fd(); }
    std::uint32_t setup_flags() const noexcept { return engine_.features().setup_flags; }
    const effective_features& features() const noexcept { return engine_.features(); }
    int last_enter_error() const noexcept { return engine_.last_enter_error(); }
    std::uint64_t overflow_flushes() const noexcept { return engine_.overflow_flushes(); }
    std::uint64_t stream_rearms() const noexcept { return engine_.stream_rearms(); }
    std::uint64_t kernel_skipped() const noexcept { return engine_.kernel_skipped(); }
    std::uint64_t auto_sends_plain() const noexcept { return engine_.auto_sends_plain(); }

private:
    static detail::ring_request request(const io_uring_options& o) noexcept {
        detail::ring_request r;
        r.opts = o;
        // Features a type does not name: submit_all is on when the kernel has it (a batch
        // continues past a failing SQE), the rest are off.
        r.settings[static_cast<std::size_t>(feature_id::submit_all)] = {feature_mode::automatic, fallback_policy::graceful};
        ((r.settings[static_cast<std::size_t>(Features::id)] = Features::setting), ...);
        ((r.named[static_cast<std::size_t>(Features::id)] = true), ...);
        (Features::apply(r), ...);
        for (std::size_t i = 0; i < feature_count; ++i)
            if (o.override_of[i]) {
                r.settings[i] = *o.override_of[i];
                r.named[i] = true;
            }
        return r;
    }
    detail::uring_engine engine_;
};

//! The plain ring.
using basic_io_uring = io_uring_backend<>;
static_assert(io_backend<basic_io_uring>);
//! A kernel thread polls the submission queue.
using sqpoll_io_uring = io_uring_backend<sqpoll<>>;
static_assert(io_backend<sqpoll_io_uring>);
//! One thread submits and completes: the kernel defers task work to it.
using owner_thread_io_uring = io_uring_backend<single_issuer, defer_taskrun, registered_ring_fd>;
static_assert(io_backend<owner_thread_io_uring>);
//! A plain ring with a 1024-slot sparse fixed-file table (direct descriptors).
using fixed_file_io_uring = io_uring_backend<fixed_files<1024>>;
static_assert(io_backend<fixed_file_io_uring>);

} // namespace ksvc
