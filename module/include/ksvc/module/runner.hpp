#pragma once
//! sharded_runner — thread-per-core serving: N inline instances (server_instance by default),
//! one per shard, each on its own thread pinned to its own CPU, each running a coroutine that
//! the caller supplies. Connections reach shards through SO_REUSEPORT listeners (one per shard,
//! shard::listen; the kernel spreads connections over them); shards talk through msg_ring
//! (shard::send / shard::receive: a completion posted straight into the other shard's ring).
//!
//!   ksvc::sharded_runner<> r({.shards = 2});
//!   r.run([&](ksvc::sharded_runner<>::shard& sh) -> ksvc::task<void> {
//!       ksvc::accept_stream<ksvc::server_instance> conns(sh.instance(), sh.listen(addr), sh.stop_token());
//!       while (auto fd = co_await conns.next()) sh.spawn(serve(sh, *fd));
//!   });                                           // returns after SIGINT / SIGTERM or stop()
//!
//! Stopping: run() blocks the stop signals (SIGINT and SIGTERM unless options say otherwise)
//! in every shard and waits for them on the calling thread; one signal, or stop() from any
//! thread, triggers every shard's stop_token. What a shard does with it is its coroutine's
//! business — streams given the token end `cancelled` — and run() returns once every shard's
//! main task and every task it spawned have finished, each instance has been torn down (so its
//! ring and every descriptor it held are gone), and the signal mask is restored. An exception
//! that leaves a shard's task stops all shards and is rethrown by run().
//!
//! Threads: each shard's instance is made, driven and destroyed on its shard thread; shard
//! methods are for that thread, except index(), count() and the stop token.
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cerrno>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <ksvc/executor/op.hpp>
#include <ksvc/executor/task.hpp>
#include <ksvc/module/presets.hpp>
#include <ksvc/module/process.hpp>

namespace ksvc {

struct runner_options {
    unsigned shards = 0;          //!< 0: one per usable CPU (sched_getaffinity)
    bool pin = true;              //!< pin shard i to the i-th usable CPU (modulo their count)
    instance_options instance{};  //!< every shard's instance (mode: inline)
    std::vector<int> stop_signals{SIGINT, SIGTERM}; //!< empty: only stop() stops the runner
};

//! A message from another shard (shard::receive): who sent it and its 32-bit value.
struct shard_message {
    unsigned from = 0;
    std::uint32_t value = 0;
};

template <class Instance = server_instance>
class sharded_runner {
public:
    class shard;

    explicit sharded_runner(runner_options o = {}) : opts_(std::move(o)) {
        if (opts_.shards == 0) opts_.shards = static_cast<unsigned>(process::usable_cpus());
        if (opts_.shards == 0) opts_.shards = 1;
        opts_.instance.mode = dispatch_mode::inline_mode;
    }
    sharded_runner(const sharded_runner&) = delete;
    sharded_runner& operator=(const sharded_runner&) = delete;

    [[nodiscard]] unsigned shards() const noexcept { return opts_.shards; }

    //! Stops every shard (any thread, before or during run(); not from inside a signal
    //! handler). A stopped runner stays stopped: a later run() ends as soon as it starts.
    void stop() noexcept { stop_.request_stop(); }

    //! Runs `main(shard&) -> task<void>` on every shard until all have finished (see above).
    template <class F>
    void run(F main);

    //! CPU time (user + system, µs) each shard's thread used in the last run().
    [[nodiscard]] const std::vector<std::uint64_t>& cpu_us() const noexcept { return cpu_us_; }

private:
    struct rendezvous; // what the shards share during one run()

    runner_options opts_;
    std::stop_source stop_;
    std::vector<std::uint64_t> cpu_us_;
};

//! One shard: its instance, its stop token, the tasks it spawned, and its messages.
template <class Instance>
class sharded_runner<Instance>::shard {
public:
    [[nodiscard]] unsigned index() const noexcept { return index_; }
    [[nodiscard]] unsigned count() const noexcept { return count_; }
    [[nodiscard]] Instance& instance() noexcept { return *inst_; }
    [[nodiscard]] std::stop_token stop_token() const noexcept { return stop_; }
    [[nodiscard]] bool stop_requested() const noexcept { return stop_.stop_requested(); }

    //! Starts a task that this shard keeps until it finishes (run() waits for it).
    void spawn(task<void> t) { scope_.spawn(std::move(t)); }

    //! A listening socket on `addr` with SO_REUSEPORT: every shard that listens on the same
    //! address gets its share of the connections. Closed when the shard ends. Throws
    //! std::system_error naming the call that failed.
    int listen(const sockaddr_in& addr, int backlog = 4096) {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) throw std::system_error(errno, std::system_category(), "sharded_runner: socket");
        const int one = 1;
        const char* what = nullptr;
        if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) what = "setsockopt(SO_REUSEADDR)";
        else if (::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) what = "setsockopt(SO_REUSEPORT)";
        else if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) what = "bind";
        else if (::listen(fd, backlog) != 0) what = "listen";
        if (what) {
            const int e = errno;
            ::close(fd);
            throw std::system_error(e, std::system_category(), std::string("sharded_runner: ") + what);
        }
        listeners_.push_back(fd);
        return fd;
    }

    //! Posts `value` into shard `to`'s ring (msg_ring; the target wakes if it sleeps): co_await
    //! it for the sender's completion: 0, or -errno — -EBADF when `to` is not a shard or that
    //! shard has finished; errc::unsupported on a backend without msg_ring (the epoll fallback).
    //! A message sent while the target is finishing is dropped with it: the completion may then
    //! say 0, or the kernel's word for a ring whose thread is gone (-EOWNERDEAD). The runner
    //! holds a duplicate of every shard's ring fd until run() returns, so a target's descriptor
    //! number is never reused for something else while a shard may still send (a finished
    //! shard's ring stays open that long, its file table and buffers already released).
    auto send(unsigned to, std::uint32_t value) {
        const int target = to < count_ && !gone_[to].load(std::memory_order_acquire) ? (*rings_)[to] : -1;
        return ksvc::async(*inst_, op::msg_ring(target, value, encode(index_)));
    }

    struct receive_awaiter {
        shard& s;
        bool await_ready() const noexcept { return s.head_ < s.inbox_.size() || s.stop_.stop_requested(); }
        void await_suspend(std::coroutine_handle<> h) noexcept { s.receiver_ = h; }
        std::optional<shard_message> await_resume() noexcept {
            if (s.head_ == s.inbox_.size()) return std::nullopt; // stopping
            const shard_message m = s.inbox_[s.head_++];
            if (s.head_ == s.inbox_.size()) s.inbox_.clear(), s.head_ = 0;
            return m;
        }
    };
    //! The next message sent to this shard, in arrival order; std::nullopt once the runner
    //! stops (messages still queued then are dropped). One receiver at a time.
    receive_awaiter receive() noexcept { return {*this}; }

private:
    friend class sharded_runner;
    static constexpr std::uint64_t message_mark = 0x6b737663ull << 16; // "ksvc": not some other tag
    static std::uint64_t encode(unsigned from) noexcept { return message_mark | from; }

    // Completions that reached the sink: messages from other shards (anything else is a bug of
    // the shard's code — an entry submitted without a target — and is counted).
    void take_messages() {
        completion_entry out[64];
        while (const std::size_t n = inst_->poll(out)) {
            for (std::size_t i = 0; i < n; ++i) {
                const completion_entry& c = out[i];
                if ((c.flags & completion_flags::message) && (c.corr_id & ~std::uint64_t{0xffff}) == message_mark) {
                    inbox_.push_back({static_cast<unsigned>(c.corr_id & 0xffff), static_cast<std::uint32_t>(c.result)});
                } else {
                    ++strays_;
                }
            }
        }
        if (receiver_ && (head_ < inbox_.size() || stop_.stop_requested())) std::exchange(receiver_, {}).resume();
    }

    unsigned index_ = 0, count_ = 0;
    Instance* inst_ = nullptr;
    std::stop_token stop_;
    const std::vector<int>* rings_ = nullptr;
    const std::atomic<bool>* gone_ = nullptr; // per shard: its instance is finishing or gone
    task_scope scope_;
    std::vector<int> listeners_;
    std::vector<shard_message> inbox_;
    std::size_t head_ = 0;
    std::coroutine_handle<> receiver_;
    std::uint64_t strays_ = 0;
};

template <class Instance>
struct sharded_runner<Instance>::rendezvous {
    std::mutex m;
    std::condition_variable cv;
    std::vector<int> rings;       // a duplicate of every shard's ring fd (closed by run()), once all are made
    std::unique_ptr<std::atomic<bool>[]> gone; // per shard: set before its instance is destroyed
    unsigned made = 0, finished = 0;
    bool abandoned = false;       // a shard failed before the rest were made
    std::exception_ptr error;
};

template <class Instance>
template <class F>
void sharded_runner<Instance>::run(F main) {
    const unsigned n = opts_.shards;
    cpu_us_.assign(n, 0);
    // Blocked before the shard threads exist, so they inherit the mask: the signals stay
    // pending for the wait below instead of killing a shard.
    sigset_t sigs, old;
    sigemptyset(&sigs);
    for (int s : opts_.stop_signals) sigaddset(&sigs, s);
    pthread_sigmask(SIG_BLOCK, &sigs, &old);

    rendezvous rv;
    rv.rings.assign(n, -1);
    rv.gone = std::make_unique<std::atomic<bool>[]>(n);
    const auto close_rings = [&] {
        for (int fd : rv.rings)
            if (fd >= 0) ::close(fd);
    };
    const std::vector<int> cpus = [&] {
        std::vector<int> v;
        cpu_set_t set;
        CPU_ZERO(&set);
        if (::sched_getaffinity(0, sizeof set, &set) == 0)
            for (int c = 0; c < CPU_SETSIZE; ++c)
                if (CPU_ISSET(c, &set)) v.push_back(c);
        return v;
    }();

    auto body = [&, stop = stop_.get_token()](unsigned i) {
        if (opts_.pin && !cpus.empty()) {
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(cpus[i % cpus.size()], &one);
            ::pthread_setaffinity_np(::pthread_self(), sizeof one, &one); // a refusal only costs locality
        }
        shard sh;
        sh.index_ = i;
        sh.count_ = n;
        sh.stop_ = stop;
        sh.rings_ = &rv.rings;
        sh.gone_ = rv.gone.get();
        std::exception_ptr failed;
        try {
            Instance inst(opts_.instance);
            // Destroyed before the instance: senders see the shard gone before its ring is.
            struct mark_gone {
                std::atomic<bool>& flag;
                ~mark_gone() { flag.store(true, std::memory_order_release); }
            } gone_on_exit{rv.gone[i]};
            sh.inst_ = &inst;
            (void)inst.call(op::nop()); // the first drive makes the ring (and its resources) here
            int ring = -1; // none on the epoll fallback: send() then gives errc::unsupported
            if constexpr (requires { inst.backend().ring_fd(); }) {
                if (const int own = inst.backend().ring_fd(); own >= 0) {
                    ring = ::fcntl(own, F_DUPFD_CLOEXEC, 0);
                    if (ring < 0) throw std::system_error(errno, std::system_category(), "sharded_runner: dup of a shard's ring fd");
                }
            }
            {
                std::unique_lock lock(rv.m);
                rv.rings[i] = ring;
                ++rv.made;
                rv.cv.notify_all();
                rv.cv.wait(lock, [&] { return rv.made == n || rv.abandoned; });
            }
            // Wakes this shard's loop when the runner stops, so receive() and the tasks see it.
            std::stop_callback wake(stop, [&] { inst.loop().wake(); });
            {
                scheduler sched;
                scheduler::scope here(sched);
                bool main_done = false;
                std::exception_ptr main_error;
                auto runner_main = [&]() -> task<void> { co_await main(sh); };
                detail::coro::outcome<void> out;
                detail::coro::run_into(runner_main(), out, [&] { main_done = true; });
                // Messages reach the sink only through a turn of the loop: they are taken after it.
                for (;;) {
                    sched.run_ready();
                    if (sched.has_ready()) continue;
                    if (main_done && sh.scope_.running() == 0) break;
                    inst.run_once(true, stop.stop_requested() ? 10 : -1);
                    sh.take_messages();
                }
                if (out.error) failed = out.error;
                else {
                    // Spawned tasks that threw: the scope keeps the first.
                    task_scope::join_awaiter j = sh.scope_.join();
                    try {
                        j.await_resume();
                    } catch (...) {
                        failed = std::current_exception();
                    }
                }
            }
            sh.inst_ = nullptr;
        } catch (...) {
            failed = std::current_exception();
        }
        for (int fd : sh.listeners_) ::close(fd);
        rusage ru{};
        ::getrusage(RUSAGE_THREAD, &ru);
        cpu_us_[i] = static_cast<std::uint64_t>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
                     static_cast<std::uint64_t>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
        std::lock_guard lock(rv.m);
        if (failed) {
            if (!rv.error) rv.error = failed;
            rv.abandoned = true;
            stop_.request_stop();
        }
        ++rv.finished;
        rv.cv.notify_all();
    };

    std::vector<std::thread> threads;
    threads.reserve(n);
    try {
        for (unsigned i = 0; i < n; ++i) threads.emplace_back(body, i);
    } catch (...) {
        stop_.request_stop();
        { std::lock_guard lock(rv.m); rv.abandoned = true; rv.cv.notify_all(); }
        for (auto& t : threads) t.join();
        close_rings();
        pthread_sigmask(SIG_SETMASK, &old, nullptr);
        throw;
    }
    // The calling thread waits for a stop signal, or for every shard to be done.
    for (;;) {
        {
            std::unique_lock lock(rv.m);
            if (rv.finished == n) break;
        }
        if (!opts_.stop_signals.empty()) {
            timespec tick{0, 20 * 1000 * 1000};
            if (::sigtimedwait(&sigs, nullptr, &tick) > 0) stop_.request_stop();
        } else {
            std::unique_lock lock(rv.m);
            rv.cv.wait_for(lock, std::chrono::milliseconds(20), [&] { return rv.finished == n; });
        }
    }
    for (auto& t : threads) t.join();
    close_rings();
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    if (rv.error) std::rethrow_exception(rv.error);
}

} // namespace ksvc
