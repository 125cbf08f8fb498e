// custom-policy — writing your own ksvc policies and composing them into an instance.
//
// Two policies a user might write:
//   * pinned_tier_router: routes like ksvc::probe_router, except for a set of syscalls you
//     choose, which it sends to another tier (here: openat and statx to the worker pool — say a
//     filesystem whose io_uring path you do not trust — and getpid away from the shared page).
//   * counting_pipe_notifier: a notifier over a pipe that counts how often the consumer was
//     actually woken. Its native_handle() lets the dispatcher sleep in the kernel on it.
// Then it composes them with shipped policies into `my_instance`, checks every slot at compile
// time (static_assert with the concepts), runs real work through it and prints which tier ran
// each call. docs/how-to/write-a-policy.md walks through this file.
//
//   ksvc-custom-policy [--quiet]      exit 0 when every check passed, 1 otherwise, 77 without io_uring
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>

#include <ksvc/core/concepts.hpp>
#include <ksvc/executor/sys.hpp>
#include <ksvc/module/presets.hpp>

namespace my {

namespace nr = ksvc::syscalls::native;

// ---- a router ------------------------------------------------------------------------------

//! The probe router's decisions, with chosen syscalls pinned to a tier. Immutable after
//! construction (the syscall_router contract: route() may be called from any thread at once,
//! O(1), noexcept). The instance builds it with the capability snapshot, as it does probe_router.
class pinned_tier_router {
public:
    explicit pinned_tier_router(const ksvc::capabilities& caps) : base_(caps) {
        pin(nr::openat, ksvc::tier::worker_pool);
        pin(nr::statx, ksvc::tier::worker_pool);
        pin(nr::getpid, ksvc::tier::worker_pool);
    }

    [[nodiscard]] ksvc::route_info route(std::uint32_t n) const noexcept {
        if (n < pinned_.size() && pinned_[n]) return *pinned_[n];
        return base_.route(n);
    }
    [[nodiscard]] std::size_t table_size() const noexcept { return base_.table_size(); }
    [[nodiscard]] std::size_t count(ksvc::tier t) const noexcept {
        std::size_t c = base_.count(t);
        for (std::uint32_t n = 0; n < pinned_.size(); ++n) {
            if (!pinned_[n]) continue;
            c -= base_.route(n).tier == t;
            c += pinned_[n]->tier == t;
        }
        return c;
    }

private:
    // A syscall may only go where it is correct: the worker pool runs it with syscall(2) on
    // another thread, so only calls the base router marks worker-safe may be pinned there.
    void pin(std::uint32_t n, ksvc::tier t) {
        ksvc::route_info r = base_.route(n);
        if (t == ksvc::tier::worker_pool && !r.worker_safe) return;
        r.tier = t;
        r.op = ksvc::opcode::none; // no SQE: it does not go to the ring
        pinned_[n] = r;
    }
    ksvc::probe_router base_;
    std::array<std::optional<ksvc::route_info>, 512> pinned_{};
};
static_assert(ksvc::syscall_router<pinned_tier_router>);

// ---- a notifier ----------------------------------------------------------------------------

//! Wakes the consumer through a pipe. notify() never blocks and coalesces (a pending flag: a
//! burst of notifies costs one write); wait()/wait_for_ms() sleep in poll(2) on the read end.
//! Counts the notifies that had to write and the notifications the consumer took.
class counting_pipe_notifier {
public:
    counting_pipe_notifier() {
        if (::pipe2(fds_, O_CLOEXEC | O_NONBLOCK) != 0)
            throw std::system_error(errno, std::system_category(), "counting_pipe_notifier: pipe2");
    }
    ~counting_pipe_notifier() {
        ::close(fds_[0]);
        ::close(fds_[1]);
    }
    counting_pipe_notifier(const counting_pipe_notifier&) = delete;
    counting_pipe_notifier& operator=(const counting_pipe_notifier&) = delete;

    void notify() noexcept {
        if (pending_.exchange(true, std::memory_order_acq_rel)) return; // already signalled
        const char b = 1;
        while (::write(fds_[1], &b, 1) < 0 && errno == EINTR) {
        }
        writes_.fetch_add(1, std::memory_order_relaxed);
    }
    void wait() noexcept {
        while (!wait_for_ms(-1)) {
        }
    }
    bool try_wait() noexcept { return consume(); }
    bool wait_for_ms(int ms) noexcept {
        if (consume()) return true;
        pollfd p{fds_[0], POLLIN, 0};
        if (::poll(&p, 1, ms) <= 0) return false;
        return consume();
    }
    //! Pollable: the dispatcher sleeps in the kernel on it (no polling sleep).
    [[nodiscard]] int native_handle() const noexcept { return fds_[0]; }

    [[nodiscard]] std::uint64_t writes() const noexcept { return writes_.load(std::memory_order_relaxed); }
    [[nodiscard]] std::uint64_t wakes() const noexcept { return wakes_.load(std::memory_order_relaxed); }

private:
    bool consume() noexcept {
        if (!pending_.load(std::memory_order_acquire)) return false;
        char buf[64];
        while (::read(fds_[0], buf, sizeof buf) > 0) {
        }
        pending_.store(false, std::memory_order_release);
        wakes_.fetch_add(1, std::memory_order_relaxed);
        return true;
    }
    int fds_[2] = {-1, -1};
    std::atomic<bool> pending_{false};
    std::atomic<std::uint64_t> writes_{0}, wakes_{0};
};
static_assert(ksvc::notifier<counting_pipe_notifier>);

// ---- the composition -----------------------------------------------------------------------

//! Slots: router, io backend, worker pool, notifier, buffer provider (then the defaulted sink,
//! shared page and dispatch mode). An incomplete policy fails here with the slot named, e.g.
//! "ksvc::instance slot 4 (notifier): the type does not model ksvc::notifier".
using my_instance = ksvc::instance<pinned_tier_router, ksvc::basic_io_uring, ksvc::lazy_pool, counting_pipe_notifier,
                                   ksvc::heap_buffers>;
static_assert(ksvc::instance_composition<my_instance>);

} // namespace my

int main(int argc, char** argv) {
    const bool quiet = argc > 1 && std::string_view(argv[1]) == "--quiet";
    if (argc > 1 && !quiet) {
        std::printf("usage: ksvc-custom-policy [--quiet]\n"
                    "Runs a file and pipe workload through an instance with a custom router and notifier,\n"
                    "and checks where each call ran. Exit 0: every check passed; 1: one failed; 77: no io_uring.\n");
        return std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h" ? 0 : 2;
    }
    int failures = 0;
    auto check = [&](bool ok, const char* what) {
        if (!ok) ++failures;
        if (!quiet || !ok) std::printf("%s  %s\n", ok ? "ok  " : "FAIL", what);
    };
    try {
        my::my_instance inst; // threaded: a loop thread drives the ring, any thread may call
        namespace nr = ksvc::syscalls::native;
        const auto& r = inst.router();
        check(r.route(nr::openat).tier == ksvc::tier::worker_pool, "openat is pinned to the worker pool");
        check(r.route(nr::statx).tier == ksvc::tier::worker_pool, "statx is pinned to the worker pool");
        check(r.route(nr::read).tier == ksvc::probe_router(inst.caps()).route(nr::read).tier, "read keeps the probe router's route");

        char path[] = "/tmp/ksvc-custom-policy-XXXXXX";
        const int tmp = ::mkstemp(path);
        if (tmp < 0) return std::perror("mkstemp"), 1;
        const char text[] = "written through a custom instance\n";
        check(::write(tmp, text, sizeof text - 1) == static_cast<ssize_t>(sizeof text - 1), "test file written");
        ::close(tmp);

        const ksvc::completion_entry o = inst.call(ksvc::sys::openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC));
        check(o.ok(), "openat through the worker pool");
        struct ::statx st{};
        const ksvc::completion_entry s = inst.call(ksvc::sys::statx(AT_FDCWD, path, 0, STATX_SIZE, &st));
        check(s.ok() && st.stx_size == sizeof text - 1, "statx through the worker pool sees the size");
        char buf[64] = {};
        ksvc::submit_entry rd = ksvc::sys::pread(static_cast<int>(o.result), buf, sizeof buf, 0);
        rd.corr_id = 1;
        check(!inst.submit(rd), "pread submitted asynchronously");
        ksvc::completion_entry done[4];
        std::size_t n = 0;
        while (n == 0) n = inst.wait_completions(done, 1000); // sleeps on counting_pipe_notifier
        check(n == 1 && done[0].corr_id == 1 && done[0].result == static_cast<long>(sizeof text - 1) &&
                  std::memcmp(buf, text, sizeof text - 1) == 0,
              "pread's completion woke the consumer with every byte");
        check(inst.call(ksvc::sys::getpid()).result == ::getpid(), "getpid on a worker returns this process's pid");

        // A completion that arrives while the consumer waits: the custom notifier wakes it.
        int p[2];
        if (::pipe2(p, O_CLOEXEC) != 0) return std::perror("pipe2"), 1;
        char byte = 0;
        ksvc::submit_entry pr = ksvc::sys::read(p[0], &byte, 1);
        pr.corr_id = 2;
        check(!inst.submit(pr), "a read on an empty pipe submitted");
        const std::uint64_t wakes_before = inst.notifier().wakes();
        std::thread writer([fd = p[1]] {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            (void)!::write(fd, "!", 1);
        });
        n = 0;
        while (n == 0) n = inst.wait_completions(done, 2000);
        writer.join();
        check(n == 1 && done[0].corr_id == 2 && done[0].result == 1 && byte == '!', "the pipe read completed with its byte");
        check(inst.notifier().wakes() > wakes_before, "the custom notifier woke the waiting consumer");
        ::close(p[0]);
        ::close(p[1]);
        inst.call(ksvc::sys::close(static_cast<int>(o.result)));
        ::unlink(path);

        const auto ran = [&](ksvc::tier t) { return inst.loop().executed(t); };
        check(ran(ksvc::tier::worker_pool) == 3, "the three pinned calls (openat, statx, getpid) ran in Tier 2");
        check(ran(ksvc::tier::io_uring) == 3, "pread, close and the pipe read ran in Tier 1");
        check(ran(ksvc::tier::shared_page) == 0, "nothing was answered from the shared page");
        if (!quiet) {
            std::printf("\ntier          calls\n");
            for (std::size_t i = 0; i < ksvc::tier_count; ++i)
                std::printf("%-12s %6llu\n", std::string(ksvc::to_string(static_cast<ksvc::tier>(i))).c_str(),
                            static_cast<unsigned long long>(ran(static_cast<ksvc::tier>(i))));
            std::printf("notifier: %llu writes, %llu wakes\n", static_cast<unsigned long long>(inst.notifier().writes()),
                        static_cast<unsigned long long>(inst.notifier().wakes()));
        }
    } catch (const std::system_error& e) {
        if (e.code() == ksvc::errc::io_uring_unavailable) {
            std::printf("ksvc-custom-policy: io_uring is unavailable here: %s\n", e.what());
            return 77;
        }
        std::fprintf(stderr, "ksvc-custom-policy: %s\n", e.what());
        return 1;
    }
    return failures ? 1 : 0;
}
