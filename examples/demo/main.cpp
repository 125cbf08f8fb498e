// ksvc-demo — real work through ksvc::default_instance, with every call's route shown.
//
//   1. files: creates a few MiB of data in a temporary directory, copies it twice — once with
//      the blocking facade (openat/read/write/close through inst.call) and once with batched
//      asynchronous submission (pread/pwrite, 8 in flight, inst.submit + wait_completions) —
//      and verifies both copies byte for byte with a checksum;
//   2. sockets: a loopback TCP echo (socket/bind/listen/accept4/connect/sendto/recvfrom);
//   3. pipes: pipe2, and a write whose reader is gone (EPIPE, never a SIGPIPE kill);
//   4. the other tiers: getpid from the shared page, dup/fcntl on the worker pool, and fork
//      refused (Tier 3: the caller must run it itself).
// Then a table: every syscall used, the tier and opcode it was routed to, and how many calls.
//
//   ksvc-demo [--inline] [--size MiB] [--quiet]
// Where the process may not use io_uring (sysctl, a seccomp filter, KSVC_DISABLE_IO_URING), the
// same work runs through the epoll backend default_instance falls back to; Tier 1 then reads
// "epoll" in the table.
// Exit status: 0 when every result was verified, 1 on a failure, 2 on a usage error.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdarg>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <ksvc/executor/sys.hpp>
#include <ksvc/module/presets.hpp>

namespace {

namespace nr = ksvc::syscalls::native;
using clock_type = std::chrono::steady_clock;

bool quiet = false;

[[gnu::format(printf, 1, 2)]] void say(const char* fmt, ...) {
    if (quiet) return;
    va_list ap;
    va_start(ap, fmt);
    std::vprintf(fmt, ap);
    va_end(ap);
    std::fflush(stdout);
}

double ms_since(clock_type::time_point t0) {
    return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
}

std::string_view name_of(std::uint32_t n) {
    auto s = ksvc::syscalls::name_of(n);
    return s.empty() ? std::string_view("?") : s;
}

// ---- a thin wrapper that records where each call went --------------------------------------

class traced {
public:
    explicit traced(ksvc::default_instance& inst) : inst_(inst) {}

    //! Blocking call; throws std::system_error naming the syscall when it fails.
    std::int64_t call(const ksvc::submit_entry& e) {
        const ksvc::completion_entry c = try_call(e);
        if (!c.ok()) throw std::system_error(c.error(), std::string(name_of(e.nr)));
        return c.result;
    }
    //! Blocking call; the caller looks at the result (for expected failures).
    ksvc::completion_entry try_call(const ksvc::submit_entry& e) {
        note(e.nr);
        const ksvc::completion_entry c = inst_.call(e);
        if (!c.ok()) ++stats_[e.nr].failed;
        return c;
    }
    //! Asynchronous submission; the completion comes back through wait(). The demo keeps at
    //! most a handful of entries in flight, far below the submit ring's capacity, so ring_full
    //! (which a real program would answer by consuming completions and retrying) is an error here.
    void submit(const ksvc::submit_entry& e) {
        note(e.nr);
        if (const std::error_code ec = inst_.submit(e))
            throw std::system_error(ec, "submit " + std::string(name_of(e.nr)));
    }
    //! Waits for at least one completion; returns them.
    std::span<const ksvc::completion_entry> wait() {
        std::size_t n = 0;
        while (n == 0) n = inst_.wait_completions(buf_, 1000);
        for (std::size_t i = 0; i < n; ++i)
            if (!buf_[i].ok()) ++stats_[buf_[i].nr].failed;
        return {buf_.data(), n};
    }

    // Tier 1 is whichever backend serves it: io_uring, or epoll where io_uring is refused.
    std::string tier_name(ksvc::tier t) const {
        if (t == ksvc::tier::io_uring) return inst_.backend().name();
        return std::string(ksvc::to_string(t));
    }
    void print_table() const {
        std::size_t per_tier[ksvc::tier_count] = {};
        std::uint64_t calls_per_tier[ksvc::tier_count] = {};
        say("\n  %-12s %-12s %-10s %7s %7s\n", "syscall", "tier", "opcode", "calls", "failed");
        for (const auto& [n, s] : stats_) {
            const ksvc::route_info r = inst_.router().route(n);
            const bool sqe = r.op != ksvc::opcode::none && inst_.backend().on_primary();
            const std::string op = sqe ? std::string(ksvc::to_string(r.op)) : "-";
            say("  %-12.*s %-12s %-10s %7llu %7llu\n", static_cast<int>(name_of(n).size()), name_of(n).data(),
                tier_name(r.tier).c_str(), op.c_str(), static_cast<unsigned long long>(s.calls),
                static_cast<unsigned long long>(s.failed));
            ++per_tier[static_cast<std::size_t>(r.tier)];
            calls_per_tier[static_cast<std::size_t>(r.tier)] += s.calls;
        }
        say("\n  by tier:\n");
        for (std::size_t t = 0; t < ksvc::tier_count; ++t)
            say("    %-12s %5llu calls of %2zu different syscalls\n",
                tier_name(static_cast<ksvc::tier>(t)).c_str(),
                static_cast<unsigned long long>(calls_per_tier[t]), per_tier[t]);
    }

    ksvc::default_instance& inst() { return inst_; }
    std::string route_text(std::uint32_t n) const {
        const ksvc::route_info r = inst_.router().route(n);
        std::string s = tier_name(r.tier);
        if (r.op != ksvc::opcode::none && r.tier == ksvc::tier::io_uring && inst_.backend().on_primary()) s += "/" + std::string(ksvc::to_string(r.op));
        return s;
    }

private:
    struct counters {
        std::uint64_t calls = 0;
        std::uint64_t failed = 0;
    };
    void note(std::uint32_t n) { ++stats_[n].calls; }

    ksvc::default_instance& inst_;
    std::map<std::uint32_t, counters> stats_;
    std::array<ksvc::completion_entry, 64> buf_{};
};

// ---- helpers over ksvc calls ------------------------------------------------------------------

std::uint64_t fnv1a(std::span<const std::byte> data, std::uint64_t h = 0xcbf29ce484222325ull) {
    for (std::byte b : data) {
        h ^= static_cast<std::uint64_t>(b);
        h *= 0x100000001b3ull;
    }
    return h;
}

std::vector<std::byte> make_data(std::size_t size) {
    std::vector<std::byte> v(size);
    std::uint64_t x = 0x9e3779b97f4a7c15ull;
    for (auto& b : v) { // xorshift64: reproducible, incompressible enough
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b = static_cast<std::byte>(x >> 32);
    }
    return v;
}

int open_file(traced& t, int dir, const char* name, int flags, mode_t mode = 0600) {
    return static_cast<int>(t.call(ksvc::sys::openat(dir, name, flags | O_CLOEXEC, mode)));
}

void write_all(traced& t, int fd, std::span<const std::byte> data) {
    std::size_t done = 0;
    while (done < data.size()) {
        const std::size_t n = std::min<std::size_t>(data.size() - done, 1 << 20);
        done += static_cast<std::size_t>(t.call(ksvc::sys::write(fd, data.data() + done, n)));
    }
}

// Reads a whole file back (pread) and checksums it.
std::uint64_t checksum_file(traced& t, int dir, const char* name, std::size_t& size_out) {
    const int fd = open_file(t, dir, name, O_RDONLY);
    std::vector<std::byte> buf(256 * 1024);
    std::uint64_t h = 0xcbf29ce484222325ull;
    std::size_t off = 0;
    for (;;) {
        const auto n = static_cast<std::size_t>(t.call(ksvc::sys::pread(fd, buf.data(), buf.size(), static_cast<off_t>(off))));
        if (n == 0) break;
        h = fnv1a({buf.data(), n}, h);
        off += n;
    }
    t.call(ksvc::sys::close(fd));
    size_out = off;
    return h;
}

// ---- 1. files ----------------------------------------------------------------------------------

struct temp_dir {
    traced& t;
    std::string path;
    int fd = -1;
    std::vector<std::string> files;

    explicit temp_dir(traced& tr) : t(tr) {
        const char* base = std::getenv("TMPDIR");
        if (!base || !*base) base = "/tmp";
        const auto pid = t.call(ksvc::sys::getpid()); // Tier 0: answered without a syscall
        for (int attempt = 0;; ++attempt) {
            path = std::string(base) + "/ksvc-demo-" + std::to_string(pid) + "-" + std::to_string(attempt);
            const auto c = t.try_call(ksvc::sys::mkdirat(AT_FDCWD, path.c_str(), 0700));
            if (c.ok()) break;
            if (c.result != -EEXIST || attempt > 100) throw std::system_error(c.error(), "mkdirat " + path);
        }
        fd = open_file(t, AT_FDCWD, path.c_str(), O_RDONLY | O_DIRECTORY);
    }
    ~temp_dir() {
        try {
            for (const auto& f : files) t.try_call(ksvc::sys::unlinkat(fd, f.c_str(), 0));
            t.try_call(ksvc::sys::close(fd));
            t.try_call(ksvc::sys::unlinkat(AT_FDCWD, path.c_str(), AT_REMOVEDIR));
        } catch (...) {
        }
    }
    const char* add(const char* name) {
        files.emplace_back(name);
        return name;
    }
};

// Copy 1: the blocking facade, one call at a time.
std::size_t copy_blocking(traced& t, int dir, const char* from, const char* to, std::size_t chunk) {
    const int in = open_file(t, dir, from, O_RDONLY);
    const int out = open_file(t, dir, to, O_WRONLY | O_CREAT | O_TRUNC);
    std::vector<std::byte> buf(chunk);
    std::size_t total = 0;
    for (;;) {
        const auto n = static_cast<std::size_t>(t.call(ksvc::sys::read(in, buf.data(), buf.size())));
        if (n == 0) break;
        write_all(t, out, {buf.data(), n});
        total += n;
    }
    t.call(ksvc::sys::fsync(out));
    t.call(ksvc::sys::close(in));
    t.call(ksvc::sys::close(out));
    return total;
}

// Copy 2: batched asynchronous submission. Each of `depth` slots cycles pread -> pwrite -> next
// chunk; short reads and writes are resubmitted for the remainder.
std::size_t copy_batched(traced& t, int dir, const char* from, const char* to, std::size_t size, std::size_t chunk,
                         std::size_t depth, std::size_t& max_inflight) {
    const int in = open_file(t, dir, from, O_RDONLY);
    const int out = open_file(t, dir, to, O_WRONLY | O_CREAT | O_TRUNC);
    struct slot {
        std::vector<std::byte> buf;
        std::size_t off = 0, len = 0, got = 0, put = 0;
        bool busy = false, writing = false;
    };
    std::vector<slot> slots(depth);
    std::size_t next = 0, inflight = 0, copied = 0;
    max_inflight = 0;

    auto issue = [&](std::size_t i) {
        slot& s = slots[i];
        ksvc::submit_entry e =
            s.writing ? ksvc::sys::pwrite(out, s.buf.data() + s.put, s.got - s.put, static_cast<off_t>(s.off + s.put))
                      : ksvc::sys::pread(in, s.buf.data() + s.got, s.len - s.got, static_cast<off_t>(s.off + s.got));
        e.corr_id = i;
        t.submit(e);
        ++inflight;
        if (inflight > max_inflight) max_inflight = inflight;
    };
    auto start_next = [&](std::size_t i) {
        slot& s = slots[i];
        if (next >= size) {
            s.busy = false;
            return;
        }
        s.off = next;
        s.len = std::min(chunk, size - next);
        s.got = s.put = 0;
        s.busy = true;
        s.writing = false;
        next += s.len;
        issue(i);
    };

    for (std::size_t i = 0; i < depth; ++i) {
        slots[i].buf.resize(chunk);
        start_next(i);
    }
    while (inflight > 0) {
        for (const ksvc::completion_entry& c : t.wait()) {
            --inflight;
            slot& s = slots[c.corr_id];
            if (!c.ok()) throw std::system_error(c.error(), std::string(name_of(c.nr)) + " (batched copy)");
            if (!s.writing) {
                if (c.result == 0) throw std::runtime_error("unexpected end of file during the batched copy");
                s.got += static_cast<std::size_t>(c.result);
                if (s.got == s.len) s.writing = true;
                issue(c.corr_id);
            } else {
                s.put += static_cast<std::size_t>(c.result);
                if (s.put < s.got) {
                    issue(c.corr_id);
                } else {
                    copied += s.len;
                    start_next(c.corr_id);
                }
            }
        }
    }
    t.call(ksvc::sys::fdatasync(out));
    t.call(ksvc::sys::close(in));
    t.call(ksvc::sys::close(out));
    return copied;
}

bool demo_files(traced& t, std::size_t size) {
    say("\n[1] files: %zu bytes through openat/read/write/pread/pwrite\n", size);
    temp_dir dir(t);
    say("    temp dir %s (mkdirat: %s)\n", dir.path.c_str(), t.route_text(nr::mkdirat).c_str());

    const auto data = make_data(size);
    const std::uint64_t want = fnv1a(data);
    {
        const int fd = open_file(t, dir.fd, dir.add("source"), O_WRONLY | O_CREAT | O_TRUNC);
        write_all(t, fd, data);
        t.call(ksvc::sys::close(fd));
    }
    say("    wrote source: %zu bytes, fnv1a %016llx\n", size, static_cast<unsigned long long>(want));

    constexpr std::size_t chunk = 128 * 1024;
    auto t0 = clock_type::now();
    const std::size_t n1 = copy_blocking(t, dir.fd, "source", dir.add("copy-blocking"), chunk);
    const double ms1 = ms_since(t0);
    say("    copy 1, blocking inst.call():      %zu bytes in %.1f ms (read %s, write %s)\n", n1, ms1,
        t.route_text(nr::read).c_str(), t.route_text(nr::write).c_str());

    std::size_t max_inflight = 0;
    t0 = clock_type::now();
    const std::size_t n2 = copy_batched(t, dir.fd, "source", dir.add("copy-batched"), size, chunk, 8, max_inflight);
    const double ms2 = ms_since(t0);
    say("    copy 2, batched submit (%zu in flight): %zu bytes in %.1f ms (pread64 %s, pwrite64 %s)\n", max_inflight, n2,
        ms2, t.route_text(nr::pread64).c_str(), t.route_text(nr::pwrite64).c_str());

    bool ok = true;
    for (const char* name : {"copy-blocking", "copy-batched"}) {
        std::size_t got_size = 0;
        const std::uint64_t h = checksum_file(t, dir.fd, name, got_size);
        struct statx stx {};
        t.call(ksvc::sys::statx(dir.fd, name, 0, STATX_SIZE, &stx));
        const bool good = h == want && got_size == size && stx.stx_size == size;
        ok = ok && good;
        say("    verify %-13s fnv1a %016llx, %zu bytes, statx size %llu: %s\n", name,
            static_cast<unsigned long long>(h), got_size, static_cast<unsigned long long>(stx.stx_size),
            good ? "identical to the source" : "MISMATCH");
    }
    return ok;
}

// ---- 2. sockets --------------------------------------------------------------------------------

// Sends `msg` on `from` and receives it on `to`, both submitted at once; returns what arrived.
std::string transfer(traced& t, int from, int to, const std::string& msg) {
    std::string got(msg.size(), '\0');
    ksvc::submit_entry rx = ksvc::sys::recvfrom(to, got.data(), got.size(), 0);
    rx.corr_id = 1;
    ksvc::submit_entry tx = ksvc::sys::sendto(from, msg.data(), msg.size(), MSG_NOSIGNAL);
    tx.corr_id = 2;
    t.submit(rx); // the receive is waiting in the kernel before the data is sent
    t.submit(tx);
    std::size_t received = 0;
    bool sent = false, rx_done = false;
    while (!sent || !rx_done) {
        for (const ksvc::completion_entry& c : t.wait()) {
            if (!c.ok()) throw std::system_error(c.error(), std::string(name_of(c.nr)) + " (echo)");
            if (c.corr_id == 2) {
                if (static_cast<std::size_t>(c.result) != msg.size()) throw std::runtime_error("short send");
                sent = true;
            } else {
                received += static_cast<std::size_t>(c.result);
                rx_done = true;
            }
        }
    }
    while (received < got.size()) { // TCP may deliver in pieces
        const auto n = t.call(ksvc::sys::recvfrom(to, got.data() + received, got.size() - received, 0));
        if (n == 0) throw std::runtime_error("connection closed mid-message");
        received += static_cast<std::size_t>(n);
    }
    return got;
}

bool demo_sockets(traced& t) {
    say("\n[2] sockets: loopback TCP echo\n");
    const int listener = static_cast<int>(t.call(ksvc::sys::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    t.call(ksvc::sys::bind(listener, reinterpret_cast<const sockaddr*>(&addr), sizeof addr));
    t.call(ksvc::sys::listen(listener, 16));
    socklen_t alen = sizeof addr;
    t.call(ksvc::sys::make(nr::getsockname, listener, reinterpret_cast<sockaddr*>(&addr), &alen));
    say("    listening on 127.0.0.1:%u (socket %s, bind %s, listen %s, getsockname %s)\n", ntohs(addr.sin_port),
        t.route_text(nr::socket).c_str(), t.route_text(nr::bind).c_str(), t.route_text(nr::listen).c_str(),
        t.route_text(nr::getsockname).c_str());

    // accept4 and connect in flight together.
    const int client = static_cast<int>(t.call(ksvc::sys::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)));
    sockaddr_in peer{};
    socklen_t plen = sizeof peer;
    ksvc::submit_entry acc = ksvc::sys::accept4(listener, reinterpret_cast<sockaddr*>(&peer), &plen, SOCK_CLOEXEC);
    acc.corr_id = 10;
    ksvc::submit_entry con = ksvc::sys::connect(client, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    con.corr_id = 11;
    t.submit(acc);
    t.submit(con);
    int conn = -1;
    bool connected = false;
    while (conn < 0 || !connected) {
        for (const ksvc::completion_entry& c : t.wait()) {
            if (!c.ok()) throw std::system_error(c.error(), std::string(name_of(c.nr)));
            if (c.corr_id == 10) conn = static_cast<int>(c.result);
            else connected = true;
        }
    }
    char peer_ip[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &peer.sin_addr, peer_ip, sizeof peer_ip);
    say("    accepted %s:%u (accept4 %s, connect %s — submitted together)\n", peer_ip, ntohs(peer.sin_port),
        t.route_text(nr::accept4).c_str(), t.route_text(nr::connect).c_str());

    bool ok = plen == sizeof peer && peer.sin_family == AF_INET;
    const char* messages[] = {"hello", "ksvc routes system calls", "through io_uring, a worker pool, or user space",
                              "bye"};
    for (const char* m : messages) {
        const std::string there = transfer(t, client, conn, m);  // client -> server
        const std::string back = transfer(t, conn, client, there); // server echoes it
        const bool good = back == m;
        ok = ok && good;
        say("    echo \"%s\" -> \"%s\" %s\n", m, back.c_str(), good ? "ok" : "MISMATCH");
    }
    say("    (sendto %s, recvfrom %s)\n", t.route_text(nr::sendto).c_str(), t.route_text(nr::recvfrom).c_str());

    t.call(ksvc::sys::shutdown(client, SHUT_WR));
    char c = 0;
    const auto eof = t.call(ksvc::sys::recvfrom(conn, &c, 1, 0));
    say("    client shutdown(SHUT_WR) -> server reads %lld bytes (end of stream): %s\n", static_cast<long long>(eof),
        eof == 0 ? "ok" : "UNEXPECTED");
    ok = ok && eof == 0;
    for (int fd : {conn, client, listener}) t.call(ksvc::sys::close(fd));
    return ok;
}

// ---- 3. pipes ----------------------------------------------------------------------------------

bool demo_pipes(traced& t) {
    say("\n[3] pipes: pipe2 and a write whose reader is gone\n");
    int fds[2] = {-1, -1};
    t.call(ksvc::sys::pipe2(fds, O_CLOEXEC));
    const char msg[] = "through a pipe";
    t.call(ksvc::sys::write(fds[1], msg, sizeof msg));
    char buf[sizeof msg] = {};
    const auto n = t.call(ksvc::sys::read(fds[0], buf, sizeof buf));
    bool ok = n == static_cast<std::int64_t>(sizeof msg) && std::memcmp(buf, msg, sizeof msg) == 0;
    say("    pipe2 (%s): wrote and read back \"%s\": %s\n", t.route_text(nr::pipe2).c_str(), buf, ok ? "ok" : "MISMATCH");

    t.call(ksvc::sys::close(fds[0]));
    const ksvc::completion_entry c = t.try_call(ksvc::sys::write(fds[1], msg, sizeof msg));
    const bool epipe = c.result == -EPIPE;
    say("    write after the reader closed: %s — the process is still alive (SIGPIPE blocked on ksvc threads): %s\n",
        c.error().message().c_str(), epipe ? "ok" : "UNEXPECTED");
    t.call(ksvc::sys::close(fds[1]));
    return ok && epipe;
}

// ---- 4. the other tiers -----------------------------------------------------------------------

bool demo_tiers(traced& t) {
    say("\n[4] the other tiers\n");
    const auto pid = t.call(ksvc::sys::getpid());
    const bool pid_ok = pid == ::getpid();
    say("    getpid (%s) = %lld, direct getpid() = %d: %s\n", t.route_text(nr::getpid).c_str(),
        static_cast<long long>(pid), ::getpid(), pid_ok ? "equal" : "DIFFERENT");

    const int fd = static_cast<int>(t.call(ksvc::sys::openat(AT_FDCWD, "/dev/null", O_WRONLY | O_CLOEXEC)));
    const int copy = static_cast<int>(t.call(ksvc::sys::dup(fd)));
    const auto fl = t.call(ksvc::sys::fcntl(copy, F_GETFL));
    const bool fl_ok = (fl & O_ACCMODE) == O_WRONLY;
    say("    dup (%s) -> fd %d, fcntl(F_GETFL) (%s) = 0%llo: %s\n", t.route_text(nr::dup).c_str(), copy,
        t.route_text(nr::fcntl).c_str(), static_cast<unsigned long long>(fl), fl_ok ? "write-only as opened" : "WRONG");
    t.call(ksvc::sys::close(copy));
    t.call(ksvc::sys::close(fd));

    const ksvc::completion_entry c = t.try_call(ksvc::sys::make(nr::fork));
    const bool refused = c.error() == ksvc::errc::refused;
    say("    fork (%s): %s — %s\n", t.route_text(nr::fork).c_str(), c.error().message().c_str(),
        refused ? "nothing was forked" : "UNEXPECTED");
    return pid_ok && fl_ok && refused;
}

} // namespace

int main(int argc, char** argv) {
    bool inline_mode = false;
    std::size_t mib = 4;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--inline") inline_mode = true;
        else if (a == "--quiet") quiet = true;
        else if (a == "--size" && i + 1 < argc) mib = std::strtoul(argv[++i], nullptr, 10);
        else {
            std::fprintf(stderr, "usage: ksvc-demo [--inline] [--size MiB] [--quiet]\n");
            return 2;
        }
    }
    if (mib == 0 || mib > 1024) {
        std::fprintf(stderr, "ksvc-demo: --size must be 1..1024 MiB\n");
        return 2;
    }

    try {
        ksvc::instance_options o;
        o.mode = inline_mode ? ksvc::dispatch_mode::inline_mode : ksvc::dispatch_mode::threaded;
        auto inst = std::make_unique<ksvc::default_instance>(o);
        say("ksvc-demo: ksvc::default_instance in %s mode on kernel %s (io_uring %s; Tier 1 served by %s)\n",
            inline_mode ? "inline" : "threaded", inst->caps().version.to_string().c_str(),
            inst->caps().io_uring_available ? "available" : "unavailable", inst->backend().name());

        traced t(*inst);
        const auto t0 = clock_type::now();
        // An odd size so that the last chunk is short.
        const bool ok1 = demo_files(t, mib * 1024 * 1024 + 4321);
        const bool ok2 = demo_sockets(t);
        const bool ok3 = demo_pipes(t);
        const bool ok4 = demo_tiers(t);
        const double total_ms = ms_since(t0);

        say("\nWhere the calls went (route = inst.router().route(nr)):");
        t.print_table();
        say("  dispatcher: %llu entries accepted, %llu completions delivered; shared page answered %llu; %.1f ms in all\n",
            static_cast<unsigned long long>(inst->loop().accepted()),
            static_cast<unsigned long long>(inst->loop().delivered()),
            static_cast<unsigned long long>(inst->page().answered()), total_ms);
        const bool ok = ok1 && ok2 && ok3 && ok4;
        std::printf("ksvc-demo (%s): %s\n", inline_mode ? "inline" : "threaded",
                    ok ? "all results verified" : "FAILED: some results did not match");
        return ok ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ksvc-demo: %s\n", e.what());
        return 1;
    }
}
