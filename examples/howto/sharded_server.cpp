// How-to: a sharded server (docs/how-to/sharded-server.md). Two shards, each a pinned thread
// with its own server_instance and SO_REUSEPORT listener, serve an echo; shard 0 asks shard 1
// for its connection count through msg_ring; stop() ends everything (a signal would too).
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <ksvc/executor/op.hpp>
#include <ksvc/executor/stream.hpp>
#include <ksvc/executor/sys.hpp>
#include <ksvc/executor/task.hpp>
#include <ksvc/module/runner.hpp>

using shard = ksvc::sharded_runner<>::shard;
using ksvc::server_instance;

ksvc::task<void> echo(shard& sh, int fd) {
    {
        ksvc::recv_stream<server_instance> in(sh.instance(), fd, sh.stop_token());
        while (auto lease = co_await in.next())
            if ((co_await ksvc::async(sh.instance(), ksvc::op::send(fd, *lease, MSG_NOSIGNAL))).result < 0) break;
    }
    co_await ksvc::async(sh.instance(), ksvc::sys::close(fd));
}

int main() {
    // A port both shards can share: bound (not listening) with SO_REUSEPORT to learn it.
    const int holder = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(holder, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(holder, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(holder, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
        return 1;

    ksvc::runner_options o;
    o.shards = 2;
    ksvc::sharded_runner<> runner(o);
    std::atomic<int> listening{0}, accepted[2] = {0, 0}, echoed{0};
    std::atomic<std::uint32_t> reported{0};

    std::thread clients([&] {
        while (listening < 2) std::this_thread::yield();
        for (int i = 0; i < 20; ++i) {
            const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (::connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) break;
            const std::string msg = "hello " + std::to_string(i);
            ::send(c, msg.data(), msg.size(), 0);
            std::string back(msg.size(), '\0');
            echoed += ::recv(c, back.data(), back.size(), MSG_WAITALL) == static_cast<ssize_t>(msg.size()) && back == msg;
            ::close(c);
        }
        while (reported == 0) std::this_thread::yield();
        runner.stop(); // every shard's stop token: streams end, tasks finish, rings close
    });

    runner.run([&](shard& sh) -> ksvc::task<void> {
        const int listener = sh.listen(addr); // SO_REUSEPORT: the kernel spreads connections
        ++listening;
        auto serve = [&]() -> ksvc::task<void> {
            ksvc::accept_stream<server_instance> conns(sh.instance(), listener, sh.stop_token());
            while (auto fd = co_await conns.next()) {
                ++accepted[sh.index()];
                sh.spawn(echo(sh, *fd));
            }
        };
        auto talk = [&]() -> ksvc::task<void> {
            if (sh.index() == 0) {
                while (echoed < 20 && !sh.stop_requested()) // ask shard 1 once the clients are done
                    co_await ksvc::async(sh.instance(), ksvc::op::timeout(std::chrono::milliseconds(5)));
                co_await sh.send(1, 0);                      // msg_ring into shard 1's ring
                if (auto answer = co_await sh.receive()) reported = answer->value + 1;
            } else if (auto ask = co_await sh.receive()) {
                co_await sh.send(ask->from, static_cast<std::uint32_t>(accepted[1].load()));
            }
        };
        co_await ksvc::when_all(serve(), talk());
    });
    clients.join();
    ::close(holder);
    std::printf("shard 0 accepted %d, shard 1 accepted %d (shard 1 says %u), %d echoes checked\n", accepted[0].load(),
                accepted[1].load(), reported.load() - 1, echoed.load());
    const bool ok = echoed == 20 && accepted[0] + accepted[1] == 20 && reported == static_cast<std::uint32_t>(accepted[1] + 1);
    if (!ok) std::fprintf(stderr, "FAILED\n");
    return ok ? 0 : 1;
}
