//! The ksvc echo server: accept4, recvfrom, sendto and close submitted as ordinary system calls
//! through ksvc's asynchronous API (inst.submit + inst.wait_completions) on a default_instance.
//! Single-shot like the raw reference: one recv or send in flight per connection.
//!   echo_ksvc [--preset default] [--mode threaded|inline] [--port 0] [--conns N] [--bufsize 16384]
//!             [--entries 4096] [--ring-flags 0] [--batch 64] [--spin-us 50]
//! A new preset becomes an arm by adding one line to `presets` below (and one to scripts/bench).
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <ksvc/executor/sys.hpp>
#include <ksvc/module/presets.hpp>

#include "../common/harness.hpp"

namespace {

enum op : std::uint64_t { op_accept = 1, op_recv = 2, op_send = 3, op_close = 4 };
constexpr std::uint64_t tag(op o, std::uint32_t idx) { return (std::uint64_t{o} << 32) | idx; }

struct conn {
    int fd = -1;
    std::uint32_t sent = 0, len = 0;
    std::unique_ptr<char[]> buf;
};

} // namespace

template <class Instance>
int run(const bench::args& a, const std::string& preset) {
    const bool inline_mode = a.str("mode", "threaded") == "inline";
    const auto want = static_cast<std::uint64_t>(a.num("conns", 0));
    const auto bufsize = static_cast<std::uint32_t>(a.num("bufsize", 16384));
    int port = 0;
    const int lfd = bench::tcp_listen(static_cast<int>(a.num("port", 0)), false, port);

    ksvc::instance_options o;
    o.mode = inline_mode ? ksvc::dispatch_mode::inline_mode : ksvc::dispatch_mode::threaded;
    o.ring.entries = static_cast<unsigned>(a.num("entries", 4096));
    // Extra IORING_SETUP_* bits (e.g. SINGLE_ISSUER | DEFER_TASKRUN = 12288, legal only inline).
    o.ring.setup_flags = static_cast<std::uint32_t>(a.num("ring-flags", 0));
    // Entries the dispatcher takes per iteration (instance_options::batch, default 64).
    if (a.num("batch", 0) > 0) o.batch = static_cast<std::size_t>(a.num("batch", 0));
    // Threaded idle spin (instance_options::spin); negative keeps the default.
    if (a.num("spin-us", -1) >= 0) o.spin = std::chrono::microseconds(a.num("spin-us", -1));
    Instance inst(o);

    std::vector<conn> conns;
    std::vector<std::uint32_t> free_idx;
    std::uint64_t accepted = 0, closed = 0;

    auto submit = [&](ksvc::submit_entry e, std::uint64_t corr) {
        e.corr_id = corr;
        while (auto ec = inst.submit(e)) {
            if (ec != ksvc::errc::ring_full) bench::die("ksvc submit", ec.value());
            if (inline_mode) inst.run_once(false);
            else std::this_thread::yield();
        }
    };
    auto arm_recv = [&](std::uint32_t i) {
        submit(ksvc::sys::recvfrom(conns[i].fd, conns[i].buf.get(), bufsize, 0), tag(op_recv, i));
    };
    auto arm_send = [&](std::uint32_t i) {
        conn& c = conns[i];
        submit(ksvc::sys::sendto(c.fd, c.buf.get() + c.sent, c.len - c.sent, 0), tag(op_send, i));
    };
    auto arm_close = [&](std::uint32_t i) { submit(ksvc::sys::close(conns[i].fd), tag(op_close, i)); };
    auto arm_accept = [&] { submit(ksvc::sys::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC), tag(op_accept, 0)); };

    arm_accept();
    const std::string arm = "ksvc_" + preset + (inline_mode ? "_inline" : "_threaded");
    bench::announce_ready(port, arm.c_str(), inst.backend().setup_flags());

    std::vector<ksvc::completion_entry> done(1024);
    while (want == 0 || closed < want) {
        const std::size_t n = inst.wait_completions(done, -1);
        for (std::size_t k = 0; k < n; ++k) {
            const ksvc::completion_entry& c = done[k];
            const auto o_ = static_cast<op>(c.corr_id >> 32);
            const auto i = static_cast<std::uint32_t>(c.corr_id);
            const auto res = c.result;
            switch (o_) {
            case op_accept:
                if (res >= 0) {
                    std::uint32_t idx;
                    if (!free_idx.empty()) {
                        idx = free_idx.back();
                        free_idx.pop_back();
                    } else {
                        idx = static_cast<std::uint32_t>(conns.size());
                        conns.emplace_back();
                        conns.back().buf = std::make_unique<char[]>(bufsize);
                    }
                    conns[idx].fd = static_cast<int>(res);
                    ++accepted;
                    arm_recv(idx);
                }
                if (want == 0 || accepted < want) arm_accept();
                break;
            case op_recv:
                if (res <= 0) {
                    arm_close(i);
                } else {
                    conns[i].len = static_cast<std::uint32_t>(res);
                    conns[i].sent = 0;
                    arm_send(i);
                }
                break;
            case op_send:
                if (res < 0) {
                    arm_close(i);
                    break;
                }
                conns[i].sent += static_cast<std::uint32_t>(res);
                if (conns[i].sent < conns[i].len) arm_send(i);
                else arm_recv(i);
                break;
            case op_close:
                conns[i].fd = -1;
                free_idx.push_back(i);
                ++closed;
                break;
            }
        }
    }
    bench::rusage_json("exit");
    inst.stop();
    return 0;
}

int main(int argc, char** argv) {
    bench::args a(argc, argv);
    const std::string preset = a.str("preset", "default");
    if (preset == "default") return run<ksvc::default_instance>(a, preset);
    if (preset == "epoll") return run<ksvc::epoll_instance>(a, preset);
    std::fprintf(stderr, "echo_ksvc: unknown preset %s\n", preset.c_str());
    return 2;
}
