// ksvc-echo-server — a complete TCP echo server on ksvc::server_instance, written to be copied.
//
// One thread drives everything: a multishot accept puts each connection into the ring's file
// table (a direct descriptor; a plain fd where the kernel has no table), a multishot recv per
// connection fills buffers the kernel picks from the provided ring, and each received buffer is
// sent back from its lease — the buffer returns to the ring when the send is done. SIGINT or
// SIGTERM arrive as a completion (a signalfd polled through the ring): the server stops
// accepting, cancels what is in flight, closes every connection and prints its counters.
//
// Exit status: 0 after a clean shutdown, 1 when the server fails, 2 on bad usage.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include <ksvc/executor/op.hpp>
#include <ksvc/executor/sys.hpp>
#include <ksvc/module/presets.hpp>

namespace {

constexpr const char* usage_text = R"(Usage: ksvc-echo-server [options]

A TCP echo server on ksvc::server_instance: multishot accept into direct descriptors,
multishot recv into a provided buffer ring, the echo sent from the received buffer.

Options:
  --port N          TCP port to listen on (default 7878; 0: any free port, printed)
  --address A       IPv4 address to bind (default 127.0.0.1)
  --max-conns N     connections served at once; more are closed on arrival (default 10000)
  --buffers N       provided buffers, a power of two up to 32768 (default 4096)
  --buffer-size B   bytes per buffer (default 4096)
  --exit-after N    exit after N connections were served and closed (default 0: run until
                    SIGINT or SIGTERM)
  --json            one JSON line when ready and one at exit (counters, CPU time) on stdout
  --quiet           print nothing but errors
  -h, --help        this text

Exit status: 0 clean shutdown, 1 failure, 2 bad usage.
)";

struct config {
    int port = 7878;
    std::string address = "127.0.0.1";
    std::size_t max_conns = 10000;
    std::size_t buffers = 4096;
    std::size_t buffer_size = 4096;
    std::uint64_t exit_after = 0;
    bool json = false, quiet = false;
};

[[noreturn]] void bad_usage(const std::string& why) {
    std::fprintf(stderr, "ksvc-echo-server: %s\n(see --help)\n", why.c_str());
    std::exit(2);
}

unsigned long long number(const char* flag, const char* v) {
    if (!v) bad_usage(std::string(flag) + " needs a value");
    char* end = nullptr;
    errno = 0;
    const unsigned long long n = std::strtoull(v, &end, 10);
    if (errno || end == v || *end || v[0] == '-') bad_usage(std::string(flag) + ": not a number: " + v);
    return n;
}

config parse(int argc, char** argv) {
    config c;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
        if (a == "-h" || a == "--help") {
            std::fputs(usage_text, stdout);
            std::exit(0);
        } else if (a == "--json") c.json = true;
        else if (a == "--quiet") c.quiet = true;
        else if (a == "--port") {
            const auto p = number("--port", v);
            ++i;
            if (p > 65535) bad_usage("--port: above 65535");
            c.port = static_cast<int>(p);
        }
        else if (a == "--address") { if (!v) bad_usage("--address needs a value"); c.address = v; ++i; }
        else if (a == "--max-conns") { c.max_conns = number("--max-conns", v); ++i; if (c.max_conns == 0) bad_usage("--max-conns: must be at least 1"); }
        else if (a == "--buffers") { c.buffers = number("--buffers", v); ++i; }
        else if (a == "--buffer-size") { c.buffer_size = number("--buffer-size", v); ++i; }
        else if (a == "--exit-after") { c.exit_after = number("--exit-after", v); ++i; }
        else bad_usage("unknown option " + std::string(a));
    }
    return c;
}

// Completion tags: the kind in the top byte, the connection's index below.
enum kind : std::uint64_t { k_accept = 1, k_accept_retry, k_signal, k_recv, k_send, k_close, k_reject, k_cancel };
constexpr std::uint64_t tag(kind k, std::uint64_t i = 0) { return (std::uint64_t{k} << 56) | i; }
constexpr kind kind_of(std::uint64_t t) { return static_cast<kind>(t >> 56); }
constexpr std::size_t index_of(std::uint64_t t) { return static_cast<std::size_t>(t & ((std::uint64_t{1} << 56) - 1)); }

class echo_server {
public:
    echo_server(ksvc::server_instance& inst, const config& cfg, int listen_fd, int signal_fd)
        : inst_(inst), cfg_(cfg), listen_fd_(listen_fd), signal_fd_(signal_fd), direct_(inst.features().fixed_files > 0) {}

    // Serves until a signal or --exit-after; returns the exit status.
    int run() {
        submit(ksvc::op::tagged(ksvc::op::poll(signal_fd_, POLLIN), tag(k_signal)));
        arm_accept();
        ksvc::completion_entry out[256];
        const auto give_up_at = [] { return std::chrono::steady_clock::now() + std::chrono::seconds(5); };
        std::chrono::steady_clock::time_point deadline{};
        while (!(stopping_ && open_ == 0 && !accept_armed_ && !accept_retrying_)) {
            flush_pending();
            const std::size_t n = inst_.wait_completions(out, stopping_ ? 10 : 1000);
            for (std::size_t i = 0; i < n; ++i) on(out[i]);
            rearm_starved();
            if (!stopping_ && cfg_.exit_after && closed_ >= cfg_.exit_after) begin_shutdown();
            if (stopping_ && deadline == std::chrono::steady_clock::time_point{}) deadline = give_up_at();
            if (stopping_ && std::chrono::steady_clock::now() > deadline) {
                std::fprintf(stderr, "ksvc-echo-server: %zu connections did not close in 5 s\n", open_);
                return 1;
            }
            if (failed_) return 1;
        }
        return 0;
    }

    void report(std::FILE* f, bool json) const {
        using ksvc::tier;
        const auto& loop = inst_.loop();
        if (json) {
            std::fprintf(f,
                         "{\"phase\":\"exit\",\"accepted\":%llu,\"rejected\":%llu,\"closed\":%llu,\"bytes\":%llu,"
                         "\"recvs\":%llu,\"rearms\":%llu,\"enobufs\":%llu,\"short_sends\":%llu,\"tier_shared_page\":%llu,\"tier_io_uring\":%llu,"
                         "\"tier_worker_pool\":%llu,\"tier_legacy\":%llu,\"utime_us\":%llu,\"stime_us\":%llu}\n",
                         u(accepted_), u(rejected_), u(closed_), u(bytes_), u(recvs_), u(rearms_), u(enobufs_), u(short_sends_),
                         u(loop.executed(tier::shared_page)), u(loop.executed(tier::io_uring)),
                         u(loop.executed(tier::worker_pool)), u(loop.executed(tier::legacy)), u(utime()), u(stime()));
            return;
        }
        std::fprintf(f, "connections: %llu accepted, %llu rejected (over --max-conns), %llu closed\n", u(accepted_),
                     u(rejected_), u(closed_));
        std::fprintf(f, "echoed: %llu bytes in %llu receives; %llu recv streams re-armed (%llu for want of buffers); %llu short sends\n",
                     u(bytes_), u(recvs_), u(rearms_), u(enobufs_), u(short_sends_));
        std::fprintf(f, "entries per tier: shared_page %llu, io_uring %llu, worker_pool %llu, legacy %llu\n",
                     u(loop.executed(tier::shared_page)), u(loop.executed(tier::io_uring)),
                     u(loop.executed(tier::worker_pool)), u(loop.executed(tier::legacy)));
    }

    static std::uint64_t utime() { return part(true); }
    static std::uint64_t stime() { return part(false); }

private:
    struct conn {
        int id = -1; // a direct descriptor's slot, or an fd
        // Received, not yet echoed (front: sending). A vector: an idle connection holds none and
        // allocates nothing (a deque allocates a 512-byte node even when empty).
        std::vector<ksvc::provided_buffer_ring::lease> out;
        std::size_t sent = 0;                                // of out.front()
        bool sending = false, receiving = false, eof = false, open = false;
    };

    static unsigned long long u(std::uint64_t v) { return static_cast<unsigned long long>(v); }
    static std::uint64_t part(bool user) {
        rusage r{};
        ::getrusage(RUSAGE_SELF, &r);
        const timeval& t = user ? r.ru_utime : r.ru_stime;
        return static_cast<std::uint64_t>(t.tv_sec) * 1000000u + static_cast<std::uint64_t>(t.tv_usec);
    }

    // The submit ring is bounded: what does not fit waits here, in order, for the next turn.
    void submit(const ksvc::submit_entry& e) {
        if (!pending_.empty()) {
            pending_.push_back(e);
            return;
        }
        if (const std::error_code ec = inst_.submit(e)) {
            if (ec != ksvc::errc::ring_full) return fail("submit", ec);
            pending_.push_back(e);
        }
    }
    void flush_pending() {
        while (!pending_.empty()) {
            if (const std::error_code ec = inst_.submit(pending_.front())) {
                if (ec != ksvc::errc::ring_full) return fail("submit", ec);
                return;
            }
            pending_.pop_front();
        }
    }
    void fail(const char* what, std::error_code ec) {
        std::fprintf(stderr, "ksvc-echo-server: %s: %s\n", what, ec.message().c_str());
        failed_ = true;
    }

    void arm_accept() {
        // A direct descriptor is no fd: close-on-exec does not apply (the kernel refuses the flag).
        submit(ksvc::op::tagged(direct_ ? ksvc::op::accept_multishot_direct(listen_fd_)
                                        : ksvc::op::accept_multishot(listen_fd_, SOCK_CLOEXEC),
                                tag(k_accept)));
        accept_armed_ = true;
    }
    void arm_recv(std::size_t i) {
        const std::uint16_t g = inst_.buffers().group();
        const int id = conns_[i].id;
        submit(ksvc::op::tagged(direct_ ? ksvc::op::recv_multishot(ksvc::direct_fd{static_cast<std::uint32_t>(id)}, g)
                                        : ksvc::op::recv_multishot(id, g),
                                tag(k_recv, i)));
        conns_[i].receiving = true;
    }
    void send_front(std::size_t i) {
        conn& c = conns_[i];
        const auto d = c.out.front().data().subspan(c.sent);
        submit(ksvc::op::tagged(direct_ ? ksvc::op::send(ksvc::direct_fd{static_cast<std::uint32_t>(c.id)}, d.data(), d.size(), MSG_NOSIGNAL)
                                        : ksvc::sys::sendto(c.id, d.data(), d.size(), MSG_NOSIGNAL),
                                tag(k_send, i)));
        c.sending = true;
    }
    ksvc::submit_entry close_of(int id) const {
        return direct_ ? ksvc::op::close(ksvc::direct_fd{static_cast<std::uint32_t>(id)}) : ksvc::sys::close(id);
    }
    void maybe_close(std::size_t i) {
        conn& c = conns_[i];
        if (!c.open || !c.eof || c.sending || c.receiving) return;
        c.out.clear(); // unsent data of a connection that failed: its buffers go back
        c.open = false;
        submit(ksvc::op::tagged(close_of(c.id), tag(k_close, i)));
    }

    void begin_shutdown() {
        if (stopping_) return;
        stopping_ = true;
        // Everything in flight completes with -ECANCELED: the accept, every recv stream, sends.
        submit(ksvc::op::tagged(ksvc::op::cancel_all(), tag(k_cancel)));
        for (std::size_t i = 0; i < conns_.size(); ++i) {
            conns_[i].eof = true;
            maybe_close(i);
        }
    }

    void on(const ksvc::completion_entry& c) {
        const std::size_t i = index_of(c.corr_id);
        switch (kind_of(c.corr_id)) {
        case k_signal:
            if (!cfg_.quiet && !cfg_.json && c.result >= 0) std::fprintf(stderr, "ksvc-echo-server: shutting down\n");
            if (c.result >= 0 || !stopping_) begin_shutdown();
            break;
        case k_accept: on_accept(c); break;
        case k_accept_retry:
            accept_retrying_ = false;
            if (!stopping_) arm_accept();
            break;
        case k_recv: on_recv(i, c); break;
        case k_send: on_send(i, c); break;
        case k_close:
            --open_;
            ++closed_;
            free_.push_back(i);
            break;
        case k_reject:
        case k_cancel: break;
        }
    }

    void on_accept(const ksvc::completion_entry& c) {
        if (c.result >= 0) {
            const int id = static_cast<int>(c.result);
            if (stopping_ || open_ >= cfg_.max_conns) {
                ++rejected_;
                submit(ksvc::op::tagged(close_of(id), tag(k_reject)));
            } else {
                std::size_t i;
                if (!free_.empty()) {
                    i = free_.back();
                    free_.pop_back();
                } else {
                    i = conns_.size();
                    conns_.emplace_back();
                }
                conns_[i] = conn{};
                conns_[i].id = id;
                conns_[i].open = true;
                ++open_;
                ++accepted_;
                arm_recv(i);
            }
        }
        if (c.more()) return;
        accept_armed_ = false;
        if (stopping_) return;
        // The stream ended: out of descriptors or table slots (EMFILE / ENFILE), or the kernel
        // could not post a completion. Try again shortly rather than spin.
        if (c.result < 0 && c.result != last_accept_error_) { // once per cause, not per retry
            last_accept_error_ = c.result;
            std::fprintf(stderr, "ksvc-echo-server: accept: %s; retrying every 20 ms\n", std::strerror(static_cast<int>(-c.result)));
        }
        if (c.result < 0) {
            submit(ksvc::op::tagged(ksvc::op::timeout(std::chrono::milliseconds(20)), tag(k_accept_retry)));
            accept_retrying_ = true;
        } else {
            arm_accept();
        }
    }

    void on_recv(std::size_t i, const ksvc::completion_entry& c) {
        conn& k = conns_[i];
        if (c.result > 0) {
            ++recvs_;
            bytes_ += static_cast<std::uint64_t>(c.result);
            auto l = inst_.buffers().take(c);
            if (l) {
                k.out.push_back(std::move(l));
                if (!k.sending) send_front(i);
            }
        }
        if (c.more()) return;
        k.receiving = false;
        if (!stopping_ && (c.result > 0 || c.result == -ENOBUFS)) {
            // Ended with data (the kernel could not post more) or for want of buffers: serve on.
            ++rearms_;
            if (c.result == -ENOBUFS) {
                ++enobufs_;
                starved_.push_back(i); // re-armed once buffers come back
            } else {
                arm_recv(i);
            }
            return;
        }
        k.eof = true; // 0: the peer closed; < 0: reset, cancelled, ...
        maybe_close(i);
    }

    void on_send(std::size_t i, const ksvc::completion_entry& c) {
        conn& k = conns_[i];
        k.sending = false;
        if (c.result <= 0) { // EPIPE, ECONNRESET, ECANCELED: this connection is done
            k.eof = true;
            k.out.clear();
            maybe_close(i);
            return;
        }
        // A short send (the peer's window was full): the rest goes in the next one.
        if (k.sent + static_cast<std::size_t>(c.result) < k.out.front().data().size()) ++short_sends_;
        k.sent += static_cast<std::size_t>(c.result);
        if (k.sent == k.out.front().data().size()) {
            k.out.erase(k.out.begin()); // the buffer goes back to the ring
            k.sent = 0;
            recycled_ = true;
        }
        if (!k.out.empty()) send_front(i);
        else maybe_close(i);
    }

    void rearm_starved() {
        if (!recycled_ || starved_.empty()) return;
        recycled_ = false;
        for (std::size_t i : starved_)
            if (conns_[i].open && !conns_[i].eof && !conns_[i].receiving) arm_recv(i);
        starved_.clear();
    }

    ksvc::server_instance& inst_;
    const config& cfg_;
    int listen_fd_, signal_fd_;
    bool direct_;
    std::vector<conn> conns_; // grows by moving: leases move, nothing holds a conn& across accept
    std::vector<std::size_t> free_, starved_;
    std::deque<ksvc::submit_entry> pending_;
    std::size_t open_ = 0;
    std::int64_t last_accept_error_ = 0;
    bool accept_armed_ = false, accept_retrying_ = false, stopping_ = false, failed_ = false, recycled_ = false;
    std::uint64_t accepted_ = 0, rejected_ = 0, closed_ = 0, bytes_ = 0, recvs_ = 0, rearms_ = 0, enobufs_ = 0, short_sends_ = 0;
};

int listen_on(const config& cfg, int& port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(cfg.port));
    if (::inet_pton(AF_INET, cfg.address.c_str(), &a.sin_addr) != 1) bad_usage("--address: not an IPv4 address: " + cfg.address);
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    if (fd < 0 || ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 4096) != 0) {
        std::fprintf(stderr, "ksvc-echo-server: listen on %s:%d: %s\n", cfg.address.c_str(), cfg.port, std::strerror(errno));
        std::exit(1);
    }
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    return fd;
}

} // namespace

int main(int argc, char** argv) {
    const config cfg = parse(argc, argv);
    // Signals become a completion: blocked here (before any thread exists, so every thread
    // inherits the mask) and read through a signalfd the ring polls.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    ::sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
    const int sfd = ::signalfd(-1, &stop_signals, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) {
        std::perror("ksvc-echo-server: signalfd");
        return 1;
    }
    // A server raises its soft descriptor limit: without a file table each connection is an fd.
    rlimit nofile{};
    if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &nofile);
    }
    int port = 0;
    const int lfd = listen_on(cfg, port);
    try {
        ksvc::instance_options o;
        o.buffer_count = cfg.buffers;
        o.buffer_size = cfg.buffer_size;
        ksvc::server_instance inst(o);
        if (const auto c = inst.call(ksvc::op::nop()); !c.ok()) { // attaches the ring and its resources
            std::fprintf(stderr, "ksvc-echo-server: the ring does not serve: %s\n", c.error().message().c_str());
            return 1;
        }
        if (!inst.buffers().is_registered()) {
            std::fprintf(stderr, "ksvc-echo-server: the provided buffer ring was refused: %s\n", inst.features().notes.c_str());
            return 1;
        }
        echo_server server(inst, cfg, lfd, sfd);
        const auto& f = inst.features();
        if (cfg.json) {
            std::printf("{\"phase\":\"ready\",\"port\":%d,\"ring_flags\":%u,\"fixed_files\":%u,\"futex_doorbell\":%s,"
                        "\"utime_us\":%llu,\"stime_us\":%llu}\n",
                        port, f.setup_flags, f.fixed_files, inst.notifier().uses_eventfd() ? "false" : "true",
                        static_cast<unsigned long long>(echo_server::utime()),
                        static_cast<unsigned long long>(echo_server::stime()));
            std::fflush(stdout);
        } else if (!cfg.quiet) {
            std::printf("ksvc-echo-server: listening on %s:%d (%s, %u-slot file table, %s doorbell, %zu x %zu B buffers%s)\n",
                        cfg.address.c_str(), port, f.owner_thread ? "owner-thread ring" : "plain ring", f.fixed_files,
                        inst.notifier().uses_eventfd() ? "eventfd" : "futex", cfg.buffers, cfg.buffer_size,
                        inst.buffers().incremental() ? ", incremental" : "");
            if (!f.notes.empty()) std::printf("ring notes: %s\n", f.notes.c_str());
            std::fflush(stdout);
        }
        const int status = server.run();
        if (cfg.json) server.report(stdout, true);
        else if (!cfg.quiet) server.report(stdout, false);
        std::fflush(stdout);
        ::close(lfd);
        ::close(sfd);
        return status;
    } catch (const std::system_error& e) {
        std::fprintf(stderr, "ksvc-echo-server: %s\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ksvc-echo-server: %s\n", e.what());
        return 2;
    }
}
