// Zero-copy send: op::send_auto picks SEND_ZC from io_uring_options::zc_threshold bytes up to a
// peer on another machine and a plain SEND otherwise (a small message, a loopback peer, a peer at
// one of this machine's own addresses, a unix socket) — with the same two completions either
// way: the result with `more`, then the notification that frees the buffer. Every byte checked
// at the peer; the buffer is reused only after the notification. Teardown with a send_zc blocked
// on a full socket and a multishot recv armed: nothing is freed while the kernel holds it (ASan).
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <ksvc/executor/op.hpp>
#include <ksvc/executor/sys.hpp>
#include <ksvc/module/presets.hpp>

#include "support/fixtures.hpp"

namespace ksvc::test::zero_copy {

namespace bdata = boost::unit_test::data;
using namespace std::chrono_literals;

const std::vector<ring_setup>& modes = ring_setups();

std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('0' + (i * 31 + i / 97) % 64);
    return s;
}

std::string read_exactly(int fd, std::size_t n) {
    std::string s(n, '\0');
    std::size_t at = 0;
    while (at < n) {
        const ssize_t r = ::recv(fd, s.data() + at, n - at, 0);
        if (r <= 0) break;
        at += static_cast<std::size_t>(r);
    }
    s.resize(at);
    return s;
}

bool kernel_has_send_zc() { return current_capabilities().has(opcode::send_zc); }
bool kernel_reports_zc_usage() { return current_capabilities().version >= kernel_version{6, 2}; }

//! One send_auto of `msg` from `from`, read at `to` on a thread; checks the two completions and
//! the bytes, then overwrites the buffer (allowed once the notification came). Returns how many
//! plain sends the backend made for it (0 or 1).
template <class I>
std::uint64_t send_once(I& inst, int from, int to, std::string msg) {
    const std::uint64_t plain_before = inst.backend().auto_sends_plain();
    std::string at_peer;
    std::thread reader([&] { at_peer = read_exactly(to, msg.size()); });
    BOOST_REQUIRE(!inst.submit(op::tagged(op::send_auto(from, msg.data(), static_cast<std::uint32_t>(msg.size())), 7)));
    const auto got = take(inst, 2);
    reader.join();
    BOOST_REQUIRE(got.size() == 2u);
    BOOST_TEST(got[0].result == static_cast<std::int64_t>(msg.size()), got[0]);
    BOOST_TEST(got[0].more());
    BOOST_TEST(!(got[0].flags & completion_flags::notif));
    BOOST_TEST((got[1].flags & completion_flags::notif) != 0u, got[1]);
    BOOST_TEST(!got[1].more());
    const std::string original = msg;
    msg.assign(msg.size(), 'X'); // the notification freed the buffer
    BOOST_TEST((at_peer == original));
    BOOST_TEST(inst.backend().inflight() == 0u);
    const std::uint64_t plain = inst.backend().auto_sends_plain() - plain_before;
    // Every peer here is on this machine, so the data was copied either way: a plain send says
    // so always, SEND_ZC where the kernel reports its usage (6.2).
    if (plain || kernel_reports_zc_usage()) BOOST_TEST((got[1].aux & completion_flags::zc_copied_aux) != 0u, got[1]);
    return plain;
}

BOOST_AUTO_TEST_SUITE(zero_copy_send)

BOOST_DATA_TEST_CASE(send_auto_to_a_loopback_peer_is_a_plain_send, bdata::make(modes), mode) {
    instance_options o;
    mode.apply(o);
    default_instance inst(o);
    auto [client, server] = tcp_pair();
    BOOST_TEST(send_once(inst, client, server, pattern(64 * 1024)) == 1u);
    BOOST_TEST(send_once(inst, client, server, pattern(100)) == 1u);
}

// zc_local_peers lets a loopback peer stand in for a remote one: from the threshold up the
// kernel's SEND_ZC runs (and, to a loopback peer, reports that it copied); below it, plain send.
BOOST_DATA_TEST_CASE(send_auto_uses_send_zc_from_the_threshold, bdata::make(modes), mode) {
    instance_options o;
    mode.apply(o);
    o.ring.zc_threshold = 4096;
    o.ring.zc_local_peers = true;
    default_instance inst(o);
    auto [client, server] = tcp_pair();
    BOOST_TEST(send_once(inst, client, server, pattern(4095)) == 1u);
    BOOST_TEST(send_once(inst, client, server, pattern(64 * 1024)) == (kernel_has_send_zc() ? 0u : 1u));
    BOOST_TEST(send_once(inst, client, server, pattern(4096)) == (kernel_has_send_zc() ? 0u : 1u));
}

// SEND_ZC and SENDMSG_ZC themselves, to a loopback peer: the result with `more`, then the
// notification, which says the kernel copied (a loopback peer always gets a copy); the bytes
// arrive whole, and the buffers are rewritten only after the notification.
BOOST_DATA_TEST_CASE(send_zc_and_sendmsg_zc_report_that_the_kernel_copied, bdata::make(modes), mode) {
    if (!current_capabilities().has(opcode::sendmsg_zc)) {
        BOOST_TEST_MESSAGE("skipped: no SENDMSG_ZC");
        return;
    }
    instance_options o;
    mode.apply(o);
    default_instance inst(o);
    auto [client, server] = tcp_pair();
    std::string a = pattern(20000), b = pattern(3000) + "tail";
    iovec iov[2] = {{a.data(), a.size()}, {b.data(), b.size()}};
    msghdr m{};
    m.msg_iov = iov;
    m.msg_iovlen = 2;
    std::string at_peer;
    std::thread reader([&, fd = server.fd] { at_peer = read_exactly(fd, 2 * a.size() + b.size()); });
    BOOST_REQUIRE(!inst.submit(op::tagged(op::send_zc(client, a.data(), static_cast<std::uint32_t>(a.size())), 1)));
    BOOST_REQUIRE(!inst.submit(op::tagged(op::sendmsg_zc(client, &m), 2)));
    const auto got = take(inst, 4);
    reader.join();
    BOOST_REQUIRE(got.size() == 4u);
    const std::string expect = a + a + b;
    for (std::uint64_t id : {1u, 2u}) {
        std::vector<completion_entry> mine;
        for (const auto& c : got)
            if (c.corr_id == id) mine.push_back(c);
        BOOST_REQUIRE(mine.size() == 2u);
        BOOST_TEST(mine[0].result == static_cast<std::int64_t>(id == 1 ? a.size() : a.size() + b.size()), mine[0]);
        BOOST_TEST(mine[0].more());
        BOOST_TEST((mine[1].flags & completion_flags::notif) != 0u, mine[1]);
        if (kernel_reports_zc_usage()) BOOST_TEST((mine[1].aux & completion_flags::zc_copied_aux) != 0u, mine[1]);
    }
    a.assign(a.size(), 'X'); // both notifications came: the buffers are the program's again
    b.assign(b.size(), 'Y');
    BOOST_TEST((at_peer == expect));
}

BOOST_DATA_TEST_CASE(send_auto_on_a_unix_socket_is_a_plain_send, bdata::make(modes), mode) {
    instance_options o;
    mode.apply(o);
    o.ring.zc_threshold = 1;
    default_instance inst(o);
    int sv[2];
    BOOST_REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    unique_fd a(sv[0]), b(sv[1]);
    BOOST_TEST(send_once(inst, a, b, pattern(32 * 1024)) == 1u);
}

// A peer reached through one of this machine's own (non-loopback) addresses is still local: the
// kernel routes it over loopback and copies. Skipped where the machine has no such address.
BOOST_AUTO_TEST_CASE(send_auto_to_this_machines_own_address_is_a_plain_send) {
    ifaddrs* ifs = nullptr;
    BOOST_REQUIRE(::getifaddrs(&ifs) == 0);
    in_addr own{};
    bool found = false;
    for (ifaddrs* i = ifs; i && !found; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
        own = reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr;
        found = (ntohl(own.s_addr) >> 24) != 127;
    }
    ::freeifaddrs(ifs);
    if (!found) {
        BOOST_TEST_MESSAGE("no non-loopback IPv4 address: skipped");
        return;
    }
    unique_fd lfd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr = own;
    socklen_t len = sizeof addr;
    BOOST_REQUIRE(::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    BOOST_REQUIRE(::listen(lfd, 4) == 0);
    BOOST_REQUIRE(::getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    unique_fd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    BOOST_REQUIRE(::connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    unique_fd s(::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC));
    BOOST_REQUIRE(s >= 0);
    instance_options o;
    o.mode = dispatch_mode::inline_mode;
    default_instance inst(o);
    BOOST_TEST(send_once(inst, c, s, pattern(64 * 1024)) == 1u);
}

// A bad descriptor gets the kernel's answer through the same two completions.
BOOST_AUTO_TEST_CASE(send_auto_on_a_closed_fd_fails_and_still_frees_the_buffer) {
    instance_options o;
    o.mode = dispatch_mode::inline_mode;
    default_instance inst(o);
    const int bad = closed_fd();
    BOOST_REQUIRE(!inst.submit(op::tagged(op::send_auto(bad, "x", 1), 3)));
    const auto got = take(inst, 2);
    BOOST_REQUIRE(got.size() == 2u);
    BOOST_TEST(got[0].result == -EBADF, got[0]);
    BOOST_TEST((got[1].flags & completion_flags::notif) != 0u, got[1]);
    BOOST_TEST((inst.call(op::send_auto(bad, "x", 1)).error() == errc::multishot_call)); // two completions
}

// Teardown while a send_zc waits on a peer that reads late (its socket is full) and a multishot
// recv is armed: the drain cancels both, and returns only once the notification says the kernel
// let go of the pages — which needs the queued bytes taken by the peer (or the socket closed).
// ASan watches the buffer freed right after.
BOOST_DATA_TEST_CASE(teardown_with_send_zc_and_a_multishot_recv_in_flight, bdata::make(modes), mode) {
    if (!kernel_has_send_zc()) return;
    auto [client, server] = tcp_pair();
    int small = 4096;
    BOOST_REQUIRE(::setsockopt(client, SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
    BOOST_REQUIRE(::setsockopt(server, SOL_SOCKET, SO_RCVBUF, &small, sizeof small) == 0);
    auto payload = std::make_unique<std::string>(pattern(4 << 20));
    std::size_t read_by_peer = 0;
    std::thread late_reader;
    std::chrono::steady_clock::duration teardown{};
    {
        using I = instance<probe_router, basic_io_uring, fixed_pool, eventfd_notifier, provided_buffer_ring>;
        instance_options o;
        mode.apply(o);
        o.buffer_count = 8;
        o.buffer_size = 256;
        I inst(o);
        BOOST_REQUIRE(!inst.submit(op::tagged(op::recv_multishot(client, inst.buffers().group()), 1)));
        BOOST_REQUIRE(!inst.submit(op::tagged(op::send_zc(client, payload->data(), static_cast<std::uint32_t>(payload->size()),
                                                           MSG_WAITALL | MSG_NOSIGNAL), 2))); // all of it, or until cancelled
        BOOST_TEST(take(inst, 1, 100ms).empty()); // the send waits for the peer, the recv for data
        BOOST_TEST(inst.backend().inflight() == 2u);
        late_reader = std::thread([&, fd = int(server)] {
            std::this_thread::sleep_for(300ms);
            char buf[65536];
            for (;;) {
                pollfd p{fd, POLLIN, 0};
                if (::poll(&p, 1, 500) != 1) break; // nothing more for half a second: done
                const ssize_t r = ::recv(fd, buf, sizeof buf, 0);
                if (r <= 0) break;
                read_by_peer += static_cast<std::size_t>(r);
            }
        });
        const auto t0 = std::chrono::steady_clock::now();
        BOOST_TEST_CHECKPOINT("destroying with the send in flight");
        inst.stop();
        teardown = std::chrono::steady_clock::now() - t0;
    }
    payload.reset(); // ASan: nothing of ksvc or the kernel still refers to it
    late_reader.join();
    BOOST_TEST(read_by_peer > 0u);
    BOOST_TEST(teardown >= 250ms); // it waited for the notification, not only for the cancel
    BOOST_TEST_MESSAGE("teardown waited " << std::chrono::duration_cast<std::chrono::milliseconds>(teardown).count()
                                          << " ms; the peer read " << read_by_peer << " bytes");
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace ksvc::test::zero_copy
