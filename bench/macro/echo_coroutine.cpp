//! The coroutine echo server: the work of examples/echo-server (server_instance, multishot
//! accept into direct descriptors, multishot recv into the provided ring, each buffer sent back
//! from its lease) written as straight-line coroutines — an accept_stream, a recv_stream per
//! connection, co_await ksvc::async for each send, sync_wait driving the instance.
//!   echo_coroutine [--port 0] [--conns N] [--buffers 4096] [--buffer-size 4096]
//! Prints a JSON line when ready and one at exit (CPU time); exits once N connections closed.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <optional>
#include <span>
#include <type_traits>

#include <ksvc/executor/op.hpp>
#include <ksvc/executor/stream.hpp>
#include <ksvc/executor/sys.hpp>
#include <ksvc/executor/task.hpp>
#include <ksvc/module/presets.hpp>

#include "../common/harness.hpp"

namespace {

ksvc::submit_entry send_of(ksvc::direct_fd fd, const void* p, std::size_t n) { return ksvc::op::send(fd, p, n, MSG_NOSIGNAL); }
ksvc::submit_entry send_of(int fd, const void* p, std::size_t n) { return ksvc::sys::sendto(fd, p, n, MSG_NOSIGNAL); }

template <class Fd>
ksvc::task<void> echo(ksvc::server_instance& inst, Fd fd, std::uint64_t& closed) {
    {
        ksvc::recv_stream<ksvc::server_instance> in(inst, fd);
        while (auto lease = co_await in.next()) {
            std::span<std::byte> d = lease->data();
            while (!d.empty()) {
                const ksvc::completion_entry s = co_await ksvc::async(inst, send_of(fd, d.data(), d.size()));
                if (s.result <= 0) goto done;
                d = d.subspan(static_cast<std::size_t>(s.result));
            }
        }
    }
done:
    if constexpr (std::is_same_v<Fd, ksvc::direct_fd>) (void)co_await ksvc::async(inst, ksvc::op::close(fd));
    else (void)co_await ksvc::async(inst, ksvc::sys::close(fd));
    ++closed;
}

template <class Fd>
ksvc::task<void> serve(ksvc::server_instance& inst, int listener, std::uint64_t conns) {
    ksvc::task_scope connections;
    std::uint64_t closed = 0;
    {
        ksvc::accept_stream<ksvc::server_instance, Fd> accepted(inst, listener);
        for (std::uint64_t i = 0; i < conns; ++i) {
            const std::optional<Fd> fd = co_await accepted.next();
            if (!fd) break;
            connections.spawn(echo(inst, *fd, closed));
        }
    }
    co_await connections.join();
}

} // namespace

int main(int argc, char** argv) {
    bench::args a(argc, argv);
    const auto conns = static_cast<std::uint64_t>(a.num("conns", 1));
    int port = 0;
    const int lfd = bench::tcp_listen(static_cast<int>(a.num("port", 0)), false, port);
    ksvc::instance_options o;
    o.buffer_count = static_cast<std::size_t>(a.num("buffers", 4096));
    o.buffer_size = static_cast<std::size_t>(a.num("buffer-size", 4096));
    ksvc::server_instance inst(o);
    (void)inst.call(ksvc::op::nop()); // the ring and its resources, before the clock starts
    bench::announce_ready(port, "ksvc_coroutine", inst.features().setup_flags);
    if (inst.features().fixed_files > 0) ksvc::sync_wait(inst, serve<ksvc::direct_fd>(inst, lfd, conns));
    else ksvc::sync_wait(inst, serve<int>(inst, lfd, conns));
    bench::rusage_json("exit");
    ::close(lfd);
    return 0;
}
