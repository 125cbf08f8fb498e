// sharded_runner (module/runner.hpp): two pinned shards of server_instance behind SO_REUSEPORT
// listeners serving a coroutine echo, messages between the shards through msg_ring, one
// SIGTERM stopping everything with nothing leaked, and a shard's exception stopping the rest.
#include <boost/test/unit_test.hpp>

#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <ksvc/executor/op.hpp>
#include <ksvc/executor/stream.hpp>
#include <ksvc/executor/sys.hpp>
#include <ksvc/module/runner.hpp>

#include "support/fixtures.hpp"

namespace ksvc::test::runner {

using namespace std::chrono_literals;
using shard = sharded_runner<>::shard;


// A port every shard can listen on: held by a bound, never listening SO_REUSEPORT socket.
struct reserved_port {
    unique_fd fd;
    sockaddr_in addr{};
    reserved_port() {
        fd = unique_fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        const int one = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
            throw std::runtime_error("reserved_port");
    }
};

void block_stop_signals_here() {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGINT);
    sigaddset(&s, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &s, nullptr);
}

task<void> echo(shard& sh, int fd) {
    server_instance& inst = sh.instance();
    {
        recv_stream<server_instance> in(inst, fd, sh.stop_token());
        while (auto lease = co_await in.next())
            if ((co_await ksvc::async(inst, op::send(fd, *lease, MSG_NOSIGNAL))).result <= 0) break;
    }
    (void)co_await ksvc::async(inst, sys::close(fd));
}

BOOST_AUTO_TEST_SUITE(sharded_runner_suite)

BOOST_AUTO_TEST_CASE(two_shards_serve_exchange_messages_and_stop_on_one_signal) {
    reserved_port port;
    const std::size_t fds_before = open_fds();
    runner_options o;
    o.shards = 2;
    o.instance.buffer_count = 64;
    o.instance.buffer_size = 4096;
    sharded_runner<> r(o);
    std::array<std::atomic<int>, 2> accepted{}, pongs{}, pings{};
    std::array<std::atomic<bool>, 2> listening{};
    constexpr int clients = 40;
    std::atomic<int> echoed_ok{0};

    std::thread load([&] {
        block_stop_signals_here();
        while (!listening[0] || !listening[1]) std::this_thread::sleep_for(1ms);
        std::vector<std::thread> cl;
        for (int i = 0; i < clients; ++i)
            cl.emplace_back([&, i] {
                unique_fd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
                if (::connect(c, reinterpret_cast<const sockaddr*>(&port.addr), sizeof port.addr) != 0) return;
                const std::string msg = "client " + std::to_string(i) + std::string(300, static_cast<char>('a' + i % 26));
                if (::send(c, msg.data(), msg.size(), 0) != static_cast<ssize_t>(msg.size())) return;
                std::string back;
                char buf[1024];
                while (back.size() < msg.size()) {
                    const ssize_t n = ::recv(c, buf, sizeof buf, 0);
                    if (n <= 0) return;
                    back.append(buf, static_cast<std::size_t>(n));
                }
                echoed_ok += back == msg;
            });
        for (auto& t : cl) t.join();
        // Wait for the ping-pong too, then one signal for the whole process.
        for (int i = 0; i < 2000 && pongs[0] < 10; ++i) std::this_thread::sleep_for(1ms);
        ::kill(::getpid(), SIGTERM);
    });

    r.run([&](shard& sh) -> task<void> {
        const int l = sh.listen(port.addr);
        listening[sh.index()] = true;
        auto serve = [&]() -> task<void> {
            accept_stream<server_instance> conns(sh.instance(), l, sh.stop_token());
            while (auto fd = co_await conns.next()) {
                ++accepted[sh.index()];
                sh.spawn(echo(sh, *fd));
            }
        };
        // Shard 0 pings shard 1 ten times; shard 1 answers each ping with value + 1000.
        auto talk = [&]() -> task<void> {
            if (sh.index() == 0) {
                for (std::uint32_t v = 1; v <= 10; ++v) {
                    if ((co_await sh.send(1, v)).result < 0) co_return;
                    auto m = co_await sh.receive();
                    if (!m) co_return;
                    if (m->from == 1 && m->value == v + 1000) ++pongs[0];
                }
            } else {
                while (auto m = co_await sh.receive()) {
                    ++pings[1];
                    (void)co_await sh.send(m->from, m->value + 1000);
                }
            }
        };
        (void)co_await when_all(serve(), talk());
    });
    load.join();

    BOOST_TEST(echoed_ok == clients);
    BOOST_TEST(accepted[0] + accepted[1] == clients);
    BOOST_TEST(accepted[0] > 0); // SO_REUSEPORT spread 40 connections over both
    BOOST_TEST(accepted[1] > 0);
    BOOST_TEST(pongs[0] == 10);
    BOOST_TEST(pings[1] == 10);
    BOOST_TEST(r.cpu_us().size() == 2u);
    // Both rings, both listeners and every accepted socket are gone.
    port.fd.reset();
    BOOST_TEST(open_fds() == fds_before - 1);
}

// SIGTERM with 12 connections open and idle in their recv streams, and one whose echo is under
// way: run() returns, every accepted socket is closed (the clients read the end of the stream),
// both rings and listeners are gone; and each shard ran pinned to its own CPU.
BOOST_AUTO_TEST_CASE(one_signal_with_connections_open_leaves_nothing_behind) {
    reserved_port port;
    const std::size_t fds_before = open_fds();
    runner_options o;
    o.shards = 2;
    o.instance.buffer_count = 64;
    sharded_runner<> r(o);
    std::array<std::atomic<bool>, 2> listening{};
    std::array<std::atomic<int>, 2> pinned_to{};
    pinned_to[0] = pinned_to[1] = -2;
    constexpr int clients = 12;
    std::vector<unique_fd> open_clients;
    std::atomic<int> echoed{0};

    std::thread load([&] {
        block_stop_signals_here();
        while (!listening[0] || !listening[1]) std::this_thread::sleep_for(1ms);
        for (int i = 0; i < clients; ++i) {
            unique_fd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
            if (::connect(c, reinterpret_cast<const sockaddr*>(&port.addr), sizeof port.addr) != 0) continue;
            char b[4];
            timeval tv{5, 0};
            ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            if (::send(c, "ping", 4, 0) == 4 && ::recv(c, b, 4, MSG_WAITALL) == 4) ++echoed;
            open_clients.push_back(std::move(c)); // stays open, idle
        }
        ::kill(::getpid(), SIGTERM);
    });

    r.run([&](shard& sh) -> task<void> {
        cpu_set_t mine;
        if (::sched_getaffinity(0, sizeof mine, &mine) == 0) { // the one CPU it may run on, or -1
            pinned_to[sh.index()] = -1;
            for (int cpu = 0; CPU_COUNT(&mine) == 1 && cpu < CPU_SETSIZE; ++cpu)
                if (CPU_ISSET(cpu, &mine)) pinned_to[sh.index()] = cpu;
        }
        const int l = sh.listen(port.addr);
        listening[sh.index()] = true;
        accept_stream<server_instance> conns(sh.instance(), l, sh.stop_token());
        while (auto fd = co_await conns.next()) sh.spawn(echo(sh, *fd));
    });
    load.join();

    BOOST_TEST(echoed == clients);
    for (const unique_fd& c : open_clients) {
        char b;
        BOOST_TEST(::recv(c, &b, 1, 0) == 0); // the server closed it: end of stream, not a hang
    }
    if (process::usable_cpus() >= 2) {
        BOOST_TEST(pinned_to[0] >= 0);
        BOOST_TEST(pinned_to[1] >= 0);
        BOOST_TEST(pinned_to[0] != pinned_to[1]);
    }
    open_clients.clear();
    port.fd.reset();
    BOOST_TEST(open_fds() == fds_before - 1);
}

BOOST_AUTO_TEST_CASE(stop_from_another_thread_and_a_failing_shard) {
    runner_options o;
    o.shards = 2;
    o.stop_signals.clear();
    {
        sharded_runner<> r(o);
        std::thread stopper([&] {
            std::this_thread::sleep_for(50ms);
            r.stop();
        });
        std::atomic<int> woke{0};
        r.run([&](shard& sh) -> task<void> {
            // Nothing but waiting for a message that never comes: the stop must end it.
            auto m = co_await sh.receive();
            woke += !m.has_value();
        });
        stopper.join();
        BOOST_TEST(woke == 2);
    }
    {
        sharded_runner<> r(o);
        std::atomic<int> stopped{0};
        BOOST_CHECK_EXCEPTION(r.run([&](shard& sh) -> task<void> {
            if (sh.index() == 1) throw std::runtime_error("shard 1 failed");
            auto m = co_await sh.receive(); // ended by the failure of shard 1
            stopped += !m.has_value();
        }),
                              std::runtime_error, [](const std::runtime_error& e) { return std::string(e.what()) == "shard 1 failed"; });
        BOOST_TEST(stopped == 1);
    }
}

// A message to a shard that has finished, or to no shard at all, completes with EBADF: the
// sender is told, and the target's descriptor number cannot have been reused meanwhile (the
// runner holds a duplicate of every ring fd until run() returns). A shard can still message itself.
BOOST_AUTO_TEST_CASE(a_message_to_a_finished_shard_says_ebadf) {
    runner_options o;
    o.shards = 2;
    o.stop_signals.clear();
    sharded_runner<> r(o);
    std::atomic<bool> shard1_done{false};
    std::int64_t to_gone = 1, to_nobody = 1, to_self = 1;
    std::optional<shard_message> self_message;
    int sends_before = 0, while_finishing = 0;
    r.run([&](shard& sh) -> task<void> {
        if (sh.index() == 1) {
            shard1_done = true;
            co_return; // its instance is destroyed while shard 0 keeps running
        }
        // Until shard 1's instance is gone, a send may still land in its ring (and be dropped
        // with it: 0, or the kernel's -EOWNERDEAD for a ring whose thread has gone).
        for (int i = 0; i < 500; ++i) {
            const completion_entry c = co_await sh.send(1, 7);
            to_gone = c.result;
            if (c.result == -EBADF) break;
            if (c.result == 0) ++sends_before;
            else ++while_finishing;
            (void)co_await ksvc::async(sh.instance(), op::timeout(10ms));
        }
        to_nobody = (co_await sh.send(9, 7)).result;
        to_self = (co_await sh.send(0, 42)).result;
        self_message = co_await sh.receive();
    });
    BOOST_TEST(shard1_done.load());
    BOOST_TEST(to_gone == -EBADF, "sends before: " << sends_before << " delivered, " << while_finishing << " refused");
    BOOST_TEST(to_nobody == -EBADF);
    BOOST_TEST(to_self == 0);
    BOOST_REQUIRE(self_message.has_value());
    BOOST_TEST(self_message->from == 0u);
    BOOST_TEST(self_message->value == 42u);
}

// A finished shard's direct descriptors close with its instance, though the runner still holds
// a duplicate of its ring fd: shard 1 accepts a connection into its file table and finishes
// without closing it; once shard 1 is gone, the client reads the end of the stream.
BOOST_AUTO_TEST_CASE(a_finished_shards_direct_connections_close_with_it) {
    runner_options o;
    o.shards = 2;
    o.stop_signals.clear();
    sharded_runner<> r(o);
    loopback_listener l;
    unique_fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    BOOST_REQUIRE(::connect(client, reinterpret_cast<const sockaddr*>(&l.addr), sizeof l.addr) == 0);
    std::atomic<bool> accepted{false};
    std::int64_t gone = 1;
    int readable = -1;
    ssize_t got = -2;
    r.run([&](shard& sh) -> task<void> {
        if (sh.index() == 1) {
            const completion_entry c = co_await ksvc::async(sh.instance(), op::accept_direct(l.fd));
            accepted = c.result >= 0; // a direct descriptor, left open on purpose
            co_return;
        }
        for (int i = 0; i < 500 && gone != -EBADF; ++i) {
            gone = (co_await sh.send(1, 1)).result;
            (void)co_await ksvc::async(sh.instance(), op::timeout(10ms));
        }
        pollfd p{client.fd, POLLIN, 0};
        readable = ::poll(&p, 1, 5000); // blocks this shard's thread: nothing else runs here
        char b = 0;
        got = ::recv(client.fd, &b, 1, MSG_DONTWAIT);
    });
    BOOST_TEST(accepted.load());
    BOOST_TEST(gone == -EBADF);
    BOOST_TEST(readable == 1);
    BOOST_TEST(got == 0); // the end of the stream: the server side was closed with its table
}

// Where io_uring is refused the shards serve through the epoll fallback: the runner still
// starts and stops them all, and a message between shards says errc::unsupported.
BOOST_AUTO_TEST_CASE(shards_on_the_epoll_fallback_run_and_say_messages_are_unsupported) {
    runner_options o;
    o.shards = 2;
    o.stop_signals.clear();
    o.instance.caps = &io_uring_refused_caps();
    o.instance.ring.log = &quiet_log;
    sharded_runner<> r(o);
    std::atomic<int> unsupported{0}, served{0};
    r.run([&](shard& sh) -> task<void> {
        const completion_entry c = co_await sh.send(1 - sh.index(), 3);
        unsupported += c.error() == errc::unsupported;
        // The shard's instance serves all the same.
        auto [a, b] = tcp_pair();
        char x = 0;
        if ((co_await ksvc::async(sh.instance(), sys::sendto(a.fd, "z", 1, 0))).result == 1 &&
            (co_await ksvc::async(sh.instance(), sys::recvfrom(b.fd, &x, 1, 0))).result == 1 && x == 'z')
            ++served;
    });
    BOOST_TEST(unsupported.load() == 2);
    BOOST_TEST(served.load() == 2);
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace ksvc::test::runner
