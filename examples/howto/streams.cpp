// How-to: streams (docs/how-to/streams.md). An echo server as two asynchronous generators on
// server_instance — accept_stream for connections, a recv_stream per connection yielding
// leases of the provided buffer ring — served to four client threads; then a stop request ends
// both streams, each saying why.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include <ksvc/executor/op.hpp>
#include <ksvc/executor/stream.hpp>
#include <ksvc/executor/sys.hpp>
#include <ksvc/executor/task.hpp>
#include <ksvc/module/presets.hpp>

using ksvc::server_instance;

// One connection: every lease received is sent back, then the socket is closed.
ksvc::task<void> echo(server_instance& inst, int fd, std::stop_token stop) {
    {
        ksvc::recv_stream<server_instance> in(inst, fd, stop);
        while (std::optional<ksvc::recv_stream<server_instance>::lease> lease = co_await in.next()) {
            // The lease lives until the send completed: the buffer goes back to the ring after.
            const ksvc::completion_entry sent = co_await ksvc::async(inst, ksvc::op::send(fd, *lease, MSG_NOSIGNAL));
            if (sent.result < 0) break;
        }
        std::printf("connection %d: %s\n", fd, ksvc::to_string(in.end())); // peer closed, cancelled or error
    }
    co_await ksvc::async(inst, ksvc::sys::close(fd));
}

ksvc::task<void> serve(server_instance& inst, int listener, std::stop_token stop) {
    ksvc::task_scope connections; // the connection tasks, joined before returning
    ksvc::accept_stream<server_instance> accepted(inst, listener, stop);
    while (std::optional<int> fd = co_await accepted.next()) connections.spawn(echo(inst, *fd, stop));
    std::printf("accept stream: %s\n", ksvc::to_string(accepted.end()));
    co_await connections.join();
}

int main() {
    const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listener, 64) != 0 ||
        ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
        return 1;

    std::stop_source stop;
    int good = 0;
    std::thread clients([&] {
        for (int i = 0; i < 4; ++i) {
            const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (::connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return;
            const std::string msg = "message " + std::to_string(i) + std::string(5000, static_cast<char>('a' + i));
            ::send(c, msg.data(), msg.size(), 0);
            std::string back(msg.size(), '\0');
            std::size_t got = 0;
            while (got < msg.size()) {
                const ssize_t n = ::recv(c, back.data() + got, msg.size() - got, 0);
                if (n <= 0) break;
                got += static_cast<std::size_t>(n);
            }
            good += back == msg;
            if (i < 3) ::close(c); // the last one stays open: the stop must end its stream
        }
        stop.request_stop(); // from this thread: the server's streams end `cancelled`
    });
    server_instance inst;
    ksvc::sync_wait(inst, serve(inst, listener, stop.get_token()));
    clients.join();
    ::close(listener);
    if (good != 4) {
        std::fprintf(stderr, "FAILED: %d of 4 echoes came back whole\n", good);
        return 1;
    }
    std::printf("4 echoes checked; every stream ended and said why\n");
    return 0;
}
