//! The echo load generator. io_uring-based (SINGLE_ISSUER | DEFER_TASKRUN, multishot recv into
//! a provided buffer ring, one submit_and_wait per loop iteration for every connection's work),
//! so that on a shared machine it costs less per message than the servers it drives.
//!
//!   loadgen --port P [--conns 100] [--size 64] [--depth 1] [--warmup 0.3] [--duration 1.0]
//!           [--messages 0] [--cpu -1] [--entries 4096] [--flush 0]
//!
//! Each connection keeps `depth` messages in flight (one send in flight at a time, queued
//! messages coalesced into it). Every echoed byte is checked against the pattern sent; a
//! mismatch fails the run (exit 3). Latency = from the loop iteration that issued a message's
//! send to the iteration that received its last byte. The warm-up lasts `warmup` seconds and
//! until every connection has had a message echoed; messages completing during it are not counted; the measurement ends after `duration` seconds or `messages` messages. Then no new
//! message is sent, the ones in flight are drained and verified, and the connections are closed.
//! Prints one JSON line.
#include <liburing.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "../common/harness.hpp"
#include "../reference/buf_ring.hpp"

namespace {

//! Log-linear latency histogram (64 sub-buckets per power of two: < 1.6 % error).
class histogram {
public:
    void record(std::uint64_t v) noexcept {
        ++counts_[index(v)];
        ++n_;
        sum_ += v;
        max_ = std::max(max_, v);
    }
    [[nodiscard]] std::uint64_t count() const noexcept { return n_; }
    [[nodiscard]] double mean() const noexcept { return n_ ? static_cast<double>(sum_) / static_cast<double>(n_) : 0; }
    [[nodiscard]] std::uint64_t max() const noexcept { return max_; }
    [[nodiscard]] std::uint64_t percentile(double p) const noexcept {
        if (n_ == 0) return 0;
        const auto rank = static_cast<std::uint64_t>(p / 100.0 * static_cast<double>(n_ - 1)) + 1;
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < buckets; ++i) {
            seen += counts_[i];
            if (seen >= rank) return std::min(midpoint(i), max_);
        }
        return max_;
    }

private:
    static constexpr std::size_t buckets = 64 * 64;
    static std::size_t index(std::uint64_t v) noexcept {
        if (v < 128) return static_cast<std::size_t>(v);
        const int msb = 63 - __builtin_clzll(v);
        const int shift = msb - 6;
        return static_cast<std::size_t>((shift << 6) + static_cast<int>(v >> shift));
    }
    static std::uint64_t lower(std::size_t i) noexcept {
        if (i < 128) return i;
        const std::size_t shift = (i >> 6) - 1;
        return ((i & 63) + 64) << shift;
    }
    static std::uint64_t midpoint(std::size_t i) noexcept {
        if (i < 128) return i;
        const std::size_t shift = (i >> 6) - 1;
        return lower(i) + ((std::uint64_t{1} << shift) >> 1);
    }
    std::vector<std::uint64_t> counts_ = std::vector<std::uint64_t>(buckets);
    std::uint64_t n_ = 0, sum_ = 0, max_ = 0;
};

enum op : std::uint64_t { op_recv = 1, op_send = 2 };
constexpr std::uint64_t tag(op o, std::uint32_t idx) { return (std::uint64_t{o} << 32) | idx; }

struct conn {
    int fd = -1;
    std::uint64_t queued = 0;   // messages whose send has been issued
    std::uint64_t done = 0;     // messages fully echoed
    std::uint64_t received = 0; // bytes echoed and verified
    std::uint64_t send_pos = 0, send_end = 0; // the send in flight covers [send_pos, send_end)
    bool sending = false, recv_armed = false, eof = false;
    std::vector<std::uint64_t> sent_at; // per in-flight message (ring of `depth`)
};

} // namespace

int main(int argc, char** argv) {
    bench::args a(argc, argv);
    const int port = static_cast<int>(a.num("port", 0));
    const auto nconns = static_cast<std::uint32_t>(a.num("conns", 100));
    const auto size = static_cast<std::uint64_t>(a.num("size", 64));
    const auto depth = static_cast<std::uint64_t>(a.num("depth", 1));
    const double warmup = a.real("warmup", 0.3);
    const double duration = a.real("duration", 1.0);
    const auto max_messages = static_cast<std::uint64_t>(a.num("messages", 0));
    // Submit queued sends every `flush` of them instead of once per loop iteration (0), so the
    // server gets work while the rest of a burst is still being processed.
    const auto flush_every = static_cast<unsigned>(a.num("flush", 0));
    bench::pin_to_cpu(static_cast<int>(a.num("cpu", -1)));
    if (port <= 0 || nconns == 0 || size == 0 || depth == 0 || size * depth > bench::pattern::prime) {
        std::fprintf(stderr, "loadgen: bad arguments (need --port, size * depth <= %zu)\n", bench::pattern::prime);
        return 2;
    }
    static const bench::pattern pat;

    io_uring ring{};
    io_uring_params p{};
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    if (int r = io_uring_queue_init_params(static_cast<unsigned>(a.num("entries", 4096)), &ring, &p); r < 0)
        bench::die("io_uring_queue_init_params", -r);
    const unsigned bufsize = size * depth > 4096 ? 16384 : 4096;
    bench::buf_ring bufs(ring, 7, bufsize > 4096 ? 2048 : 4096, bufsize);

    const std::uint64_t cpu_start = bench::self_cpu_us();
    std::vector<conn> conns(nconns);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (auto& c : conns) {
        c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c.fd < 0) bench::die("socket");
        int one = 1;
        ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (::connect(c.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) bench::die("connect");
        c.sent_at.resize(depth);
    }

    auto get_sqe = [&] {
        io_uring_sqe* s = io_uring_get_sqe(&ring);
        if (!s) {
            io_uring_submit(&ring);
            s = io_uring_get_sqe(&ring);
        }
        return s;
    };
    auto arm_recv = [&](std::uint32_t i) {
        io_uring_sqe* s = get_sqe();
        io_uring_prep_recv_multishot(s, conns[i].fd, nullptr, 0, 0);
        s->flags |= IOSQE_BUFFER_SELECT;
        s->buf_group = bufs.group();
        io_uring_sqe_set_data64(s, tag(op_recv, i));
        conns[i].recv_armed = true;
    };
    unsigned unflushed = 0;
    auto issue_send = [&](std::uint32_t i) {
        conn& c = conns[i];
        if (flush_every && ++unflushed >= flush_every) {
            io_uring_submit(&ring);
            unflushed = 0;
        }
        io_uring_sqe* s = get_sqe();
        io_uring_prep_send(s, c.fd, pat.at(i, c.send_pos), static_cast<std::size_t>(c.send_end - c.send_pos), 0);
        io_uring_sqe_set_data64(s, tag(op_send, i));
        c.sending = true;
    };
    bool stopping = false;
    // Queues as many new messages as the depth allows, in one send.
    auto top_up = [&](std::uint32_t i, std::uint64_t now) {
        conn& c = conns[i];
        if (c.sending || stopping) return;
        const std::uint64_t room = depth - (c.queued - c.done);
        if (room == 0) return;
        for (std::uint64_t k = 0; k < room; ++k) c.sent_at[(c.queued + k) % depth] = now;
        c.send_pos = c.queued * size;
        c.queued += room;
        c.send_end = c.queued * size;
        issue_send(i);
    };

    histogram lat;
    std::uint64_t window_msgs = 0, total_msgs = 0, errors = 0, verify_failures = 0;
    const std::uint64_t t_start = bench::now_ns();
    const auto warm_end = t_start + static_cast<std::uint64_t>(warmup * 1e9);
    auto meas_end = warm_end + static_cast<std::uint64_t>(duration * 1e9);
    std::uint64_t t_meas_begin = 0, t_meas_end = 0;
    const std::uint64_t cpu_begin0 = bench::self_cpu_us();
    std::uint64_t cpu_meas_begin = cpu_begin0, cpu_meas_end = cpu_begin0;
    bool measuring = false;
    std::uint32_t open_conns = nconns;
    std::uint32_t live = 0; // connections with at least one message echoed

    for (std::uint32_t i = 0; i < nconns; ++i) {
        arm_recv(i);
        top_up(i, t_start);
    }
    const std::uint64_t hard_deadline = meas_end + 30'000'000'000ull; // a stuck server fails the run
    const std::uint64_t live_deadline = warm_end + 20'000'000'000ull; // every connection echoed once by then

    for (;;) {
        if (int r = io_uring_submit_and_wait(&ring, 1); r < 0 && r != -EINTR && r != -ETIME) bench::die("io_uring_submit_and_wait", -r);
        const std::uint64_t now = bench::now_ns();
        // The warm-up lasts at least `warmup` seconds and until every connection has had one
        // message echoed (a server accepting 1 000 connections one by one is still accepting),
        // so no measured latency includes a connection's wait to be accepted.
        if (!measuring && !stopping && now >= warm_end && live == nconns) {
            measuring = true;
            t_meas_begin = now;
            cpu_meas_begin = bench::self_cpu_us();
            meas_end = now + static_cast<std::uint64_t>(duration * 1e9);
        }
        unsigned head, seen = 0;
        io_uring_cqe* cqe;
        io_uring_for_each_cqe(&ring, head, cqe) {
            ++seen;
            const std::uint64_t ud = io_uring_cqe_get_data64(cqe);
            const auto i = static_cast<std::uint32_t>(ud);
            conn& c = conns[i];
            const int res = cqe->res;
            if ((ud >> 32) == op_send) {
                c.sending = false;
                if (res <= 0) {
                    ++errors;
                    continue;
                }
                c.send_pos += static_cast<std::uint64_t>(res);
                if (c.send_pos < c.send_end) issue_send(i);
                else top_up(i, now);
                continue;
            }
            // recv
            if (res > 0) {
                const unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
                const auto n = static_cast<std::uint64_t>(res);
                if (!pat.verify(i, c.received, bufs.buffer(bid), n) || c.received + n > c.queued * size) ++verify_failures;
                c.received += n;
                bufs.recycle(bid);
                if (c.done == 0 && c.received >= size) ++live;
                while ((c.done + 1) * size <= c.received) {
                    const std::uint64_t l = now - c.sent_at[c.done % depth];
                    ++c.done;
                    ++total_msgs;
                    if (measuring) {
                        lat.record(l);
                        ++window_msgs;
                    }
                }
                top_up(i, now);
            } else if (res == 0 || (res < 0 && res != -ENOBUFS)) {
                if (res < 0) ++errors;
                c.eof = true;
            }
            if (!(cqe->flags & IORING_CQE_F_MORE)) {
                c.recv_armed = false;
                if (!c.eof) arm_recv(i);
            }
        }
        io_uring_cq_advance(&ring, seen);
        bufs.publish();
        if (verify_failures || errors) break;
        if (measuring && (now >= meas_end || (max_messages && window_msgs >= max_messages))) {
            measuring = false;
            stopping = true;
            t_meas_end = now;
            cpu_meas_end = bench::self_cpu_us();
        }
        if (stopping) {
            bool drained = true;
            for (const auto& c : conns) drained = drained && c.done == c.queued && !c.sending;
            if (drained) break;
        }
        if (!measuring && !stopping && live < nconns && now > live_deadline) {
            std::fprintf(stderr, "loadgen: only %u of %u connections were served within 20 s\n", live, nconns);
            ++errors;
            break;
        }
        if (now > hard_deadline) {
            std::fprintf(stderr, "loadgen: the server stopped answering\n");
            ++errors;
            break;
        }
    }
    for (auto& c : conns) {
        ::close(c.fd);
        --open_conns;
    }
    // The whole run's CPU (connect to close), to add to the server's: on loopback the sender's
    // context also runs much of the receiver's TCP processing, so the split between the two
    // processes depends on the server's timing; their sum does not.
    const std::uint64_t cpu_total = bench::self_cpu_us() - cpu_start;
    const double secs = static_cast<double>(t_meas_end - t_meas_begin) / 1e9;
    std::printf("{\"conns\":%u,\"size\":%llu,\"depth\":%llu,\"seconds\":%.6f,\"messages\":%llu,\"msgs_per_sec\":%.1f,"
                "\"bytes_per_sec\":%.1f,\"total_messages\":%llu,\"lat_mean_us\":%.3f,\"lat_p50_us\":%.3f,"
                "\"lat_p90_us\":%.3f,\"lat_p99_us\":%.3f,\"lat_p999_us\":%.3f,\"lat_max_us\":%.3f,"
                "\"verify_failures\":%llu,\"errors\":%llu,\"loadgen_cpu_us\":%llu,\"loadgen_total_cpu_us\":%llu,"
                "\"loadgen_ring_flags\":%u,\"warmup_seconds\":%.3f}\n",
                nconns, static_cast<unsigned long long>(size), static_cast<unsigned long long>(depth), secs,
                static_cast<unsigned long long>(window_msgs), secs > 0 ? static_cast<double>(window_msgs) / secs : 0.0,
                secs > 0 ? static_cast<double>(window_msgs * size) / secs : 0.0, static_cast<unsigned long long>(total_msgs),
                lat.mean() / 1e3, static_cast<double>(lat.percentile(50)) / 1e3, static_cast<double>(lat.percentile(90)) / 1e3,
                static_cast<double>(lat.percentile(99)) / 1e3, static_cast<double>(lat.percentile(99.9)) / 1e3,
                static_cast<double>(lat.max()) / 1e3, static_cast<unsigned long long>(verify_failures),
                static_cast<unsigned long long>(errors), static_cast<unsigned long long>(cpu_meas_end - cpu_meas_begin),
                static_cast<unsigned long long>(cpu_total), p.flags,
                t_meas_begin ? static_cast<double>(t_meas_begin - t_start) / 1e9 : 0.0);
    io_uring_queue_exit(&ring);
    return verify_failures ? 3 : errors ? 4 : 0;
}
