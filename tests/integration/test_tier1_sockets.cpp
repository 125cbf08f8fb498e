// Tier 1, sockets: socket, bind, listen, accept/accept4, connect, sendto/recvfrom (with and
// without addresses), sendmsg/recvmsg, shutdown — through ksvc::default_instance under every
// run configuration, compared with the direct syscall: results, errno, the addresses and
// address lengths the kernel fills in, the flags of new fds, what the peer sees.
#include "test_tier1_common.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

using namespace ksvc::test;
using namespace ksvc::test::tier1;
namespace sys = ksvc::sys;

namespace {

sockaddr_in loopback(std::uint16_t port = 0) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    return a;
}

sockaddr_in local_of(int fd) {
    sockaddr_in a{};
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    return a;
}

sockaddr* sa(sockaddr_in& a) { return reinterpret_cast<sockaddr*>(&a); }
const sockaddr* sa(const sockaddr_in& a) { return reinterpret_cast<const sockaddr*>(&a); }

bool same_addr(const sockaddr_in& a, const sockaddr_in& b) {
    return a.sin_family == b.sin_family && a.sin_port == b.sin_port && a.sin_addr.s_addr == b.sin_addr.s_addr;
}

//! A UDP socket bound to 127.0.0.1 on an ephemeral port.
unique_fd udp_bound() {
    unique_fd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_in a = loopback();
    BOOST_REQUIRE(::bind(fd, sa(a), sizeof a) == 0);
    return fd;
}

int sockopt(int fd, int level, int name) {
    int v = -1;
    socklen_t len = sizeof v;
    ::getsockopt(fd, level, name, &v, &len);
    return v;
}

//! A port on 127.0.0.1 that nobody listens on: bound (so it stays ours) but never listening.
struct closed_port {
    unique_fd holder;
    sockaddr_in addr{};
    closed_port() {
        holder = unique_fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        addr = loopback();
        BOOST_REQUIRE(::bind(holder, sa(addr), sizeof addr) == 0);
        addr = local_of(holder);
    }
};

//! Waits (bounded) for the completion with `corr`; false if it did not arrive within `ms`.
bool wait_for(harness& h, std::uint64_t corr, ksvc::completion_entry& out, int ms) {
    ksvc::completion_entry buf[4];
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < deadline) {
        std::size_t n = h.inst.wait_completions(std::span(buf), 10);
        for (std::size_t i = 0; i < n; ++i)
            if (buf[i].corr_id == corr) {
                out = buf[i];
                return true;
            }
    }
    return false;
}

} // namespace

BOOST_AUTO_TEST_SUITE(tier1_sockets)

BOOST_DATA_TEST_CASE(socket_creates_with_type_flags, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    const int type = SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK;
    const std::int64_t kr = h.call(sys::socket(AF_INET, type, 0));
    const std::int64_t dr = direct(nr::socket, AF_INET, type, 0);
    BOOST_TEST_REQUIRE(kr >= 0);
    BOOST_TEST_REQUIRE(dr >= 0);
    unique_fd k(static_cast<int>(kr)), d(static_cast<int>(dr));
    BOOST_TEST(sockopt(k, SOL_SOCKET, SO_TYPE) == SOCK_STREAM);
    BOOST_TEST(sockopt(k, SOL_SOCKET, SO_DOMAIN) == AF_INET);
    BOOST_TEST(sockopt(k, SOL_SOCKET, SO_PROTOCOL) == sockopt(d, SOL_SOCKET, SO_PROTOCOL));
    BOOST_TEST(fd_flags(k) == fd_flags(d));
    BOOST_TEST(fl_flags(k) == fl_flags(d));
    BOOST_TEST((fl_flags(k) & O_NONBLOCK) != 0);

    const std::int64_t ku = h.call(sys::socket(AF_UNIX, SOCK_DGRAM, 0));
    BOOST_TEST_REQUIRE(ku >= 0);
    unique_fd u(static_cast<int>(ku));
    BOOST_TEST(sockopt(u, SOL_SOCKET, SO_TYPE) == SOCK_DGRAM);
    BOOST_TEST((fd_flags(u) & FD_CLOEXEC) == 0);
    // Unknown family, bad type, bad flag bits, a protocol that does not fit.
    BOOST_TEST(h.call(sys::socket(12345, SOCK_STREAM, 0)) == direct(nr::socket, 12345, SOCK_STREAM, 0));
    BOOST_TEST(h.call(sys::socket(AF_INET, 99, 0)) == direct(nr::socket, AF_INET, 99, 0));
    BOOST_TEST(h.call(sys::socket(AF_INET, SOCK_STREAM | 0x10000, 0)) == direct(nr::socket, AF_INET, SOCK_STREAM | 0x10000, 0));
    BOOST_TEST(h.call(sys::socket(AF_INET, SOCK_STREAM, IPPROTO_UDP)) == direct(nr::socket, AF_INET, SOCK_STREAM, IPPROTO_UDP));
}

BOOST_DATA_TEST_CASE(bind_listen_then_connect_works, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    const std::int64_t s = h.call(sys::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    BOOST_TEST_REQUIRE(s >= 0);
    unique_fd srv(static_cast<int>(s));
    sockaddr_in a = loopback();
    BOOST_TEST(h.call(sys::bind(srv, sa(a), sizeof a)) == 0);
    const sockaddr_in bound = local_of(srv);
    BOOST_TEST(bound.sin_port != 0);
    BOOST_TEST(bound.sin_addr.s_addr == htonl(INADDR_LOOPBACK));
    BOOST_TEST(h.call(sys::listen(srv, 16)) == 0);
    BOOST_TEST(sockopt(srv, SOL_SOCKET, SO_ACCEPTCONN) == 1);

    // connect through ksvc, accept directly.
    const std::int64_t c = h.call(sys::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    BOOST_TEST_REQUIRE(c >= 0);
    unique_fd cli(static_cast<int>(c));
    BOOST_TEST(h.call(sys::connect(cli, sa(bound), sizeof bound)) == 0);
    unique_fd acc(::accept4(srv, nullptr, nullptr, SOCK_CLOEXEC));
    BOOST_TEST_REQUIRE(acc >= 0);
    BOOST_TEST(::write(cli, "ping", 4) == 4);
    char buf[8] = {};
    BOOST_TEST(::read(acc, buf, sizeof buf) == 4);
    BOOST_TEST(std::string(buf) == "ping");
    // Connecting an already connected socket: EISCONN, like the direct call.
    BOOST_TEST(h.call(sys::connect(cli, sa(bound), sizeof bound)) == direct(nr::connect, int(cli), &bound, sizeof bound));

    // Binding twice, a short address, listen on a UDP socket.
    sockaddr_in other = loopback();
    BOOST_TEST(h.call(sys::bind(srv, sa(other), sizeof other)) == direct(nr::bind, int(srv), &other, sizeof other));
    unique_fd fresh_k(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)), fresh_d(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    BOOST_TEST(h.call(sys::bind(fresh_k, sa(other), 4)) == direct(nr::bind, int(fresh_d), &other, 4));
    unique_fd uk = udp_bound(), ud = udp_bound();
    BOOST_TEST(h.call(sys::listen(uk, 1)) == direct(nr::listen, int(ud), 1));
    BOOST_TEST(direct(nr::listen, int(ud), 1) == -EOPNOTSUPP);
}

BOOST_DATA_TEST_CASE(bind_to_a_port_in_use_is_eaddrinuse, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    loopback_listener busy;
    unique_fd k(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)), d(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    BOOST_TEST(h.call(sys::bind(k, sa(busy.addr), sizeof busy.addr)) == direct(nr::bind, int(d), &busy.addr, sizeof busy.addr));
    BOOST_TEST(direct(nr::bind, int(d), &busy.addr, sizeof busy.addr) == -EADDRINUSE);
    // UDP too.
    unique_fd u = udp_bound();
    const sockaddr_in ua = local_of(u);
    unique_fd uk(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)), ud(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    BOOST_TEST(h.call(sys::bind(uk, sa(ua), sizeof ua)) == direct(nr::bind, int(ud), &ua, sizeof ua));
    BOOST_TEST(direct(nr::bind, int(ud), &ua, sizeof ua) == -EADDRINUSE);
}

BOOST_DATA_TEST_CASE(connect_to_a_closed_port_is_econnrefused, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    closed_port port;
    unique_fd k(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)), d(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    BOOST_TEST(h.call(sys::connect(k, sa(port.addr), sizeof port.addr)) == direct(nr::connect, int(d), &port.addr, sizeof port.addr));
    BOOST_TEST(direct(nr::connect, int(d), &port.addr, sizeof port.addr) == -ECONNREFUSED);
    // Wrong family, short length, not a socket.
    sockaddr_in6 v6{};
    v6.sin6_family = AF_INET6;
    unique_fd k2(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)), d2(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    BOOST_TEST(h.call(sys::connect(k2, reinterpret_cast<sockaddr*>(&v6), sizeof v6)) ==
               direct(nr::connect, int(d2), &v6, sizeof v6));
    BOOST_TEST(h.call(sys::connect(k2, sa(port.addr), 3)) == direct(nr::connect, int(d2), &port.addr, 3));
    unique_fd file(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    BOOST_TEST(h.call(sys::connect(file, sa(port.addr), sizeof port.addr)) == direct(nr::connect, int(file), &port.addr, sizeof port.addr));
}

BOOST_DATA_TEST_CASE(accept4_applies_flags_and_fills_the_peer_address, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    loopback_listener l;
    unique_fd c1(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)), c2(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    BOOST_REQUIRE(::connect(c1, sa(l.addr), sizeof l.addr) == 0);
    BOOST_REQUIRE(::connect(c2, sa(l.addr), sizeof l.addr) == 0);

    sockaddr_in kp{}, dp{};
    socklen_t klen = sizeof kp, dlen = sizeof dp;
    const int flags = SOCK_NONBLOCK | SOCK_CLOEXEC;
    const std::int64_t kr = h.call(sys::accept4(l.fd, sa(kp), &klen, flags));
    const std::int64_t dr = direct(nr::accept4, int(l.fd), &dp, &dlen, flags);
    BOOST_TEST_REQUIRE(kr >= 0);
    BOOST_TEST_REQUIRE(dr >= 0);
    unique_fd k(static_cast<int>(kr)), d(static_cast<int>(dr));
    BOOST_TEST(klen == dlen);
    BOOST_TEST(klen == sizeof(sockaddr_in));
    BOOST_TEST(kp.sin_family == AF_INET);
    // Each accepted peer is one of the two clients, and the address is that client's own.
    const sockaddr_in a1 = local_of(c1), a2 = local_of(c2);
    BOOST_TEST((same_addr(kp, a1) || same_addr(kp, a2)));
    BOOST_TEST((same_addr(dp, a1) || same_addr(dp, a2)));
    BOOST_TEST(!same_addr(kp, dp));
    BOOST_TEST(fd_flags(k) == fd_flags(d));
    BOOST_TEST((fd_flags(k) & FD_CLOEXEC) != 0);
    BOOST_TEST(fl_flags(k) == fl_flags(d));
    BOOST_TEST((fl_flags(k) & O_NONBLOCK) != 0);
    // The accepted fd talks to its client.
    unique_fd& peer = same_addr(kp, a1) ? c1 : c2;
    BOOST_TEST(::write(peer, "hi", 2) == 2);
    char b[4] = {};
    for (int i = 0; i < 1000 && ::read(k, b, sizeof b) < 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    BOOST_TEST(std::string(b) == "hi");
}

BOOST_DATA_TEST_CASE(accept_plain_and_address_edge_cases, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    loopback_listener l;
    std::vector<unique_fd> clients;
    for (int i = 0; i < 4; ++i) {
        clients.emplace_back(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        BOOST_REQUIRE(::connect(clients.back(), sa(l.addr), sizeof l.addr) == 0);
    }
    // accept: no flags on the new fd.
    sockaddr_in p{};
    socklen_t plen = sizeof p;
    std::int64_t r = h.call(nr::accept, int(l.fd), &p, &plen);
    BOOST_TEST_REQUIRE(r >= 0);
    unique_fd a(static_cast<int>(r));
    BOOST_TEST(fd_flags(a) == 0);
    BOOST_TEST((fl_flags(a) & O_NONBLOCK) == 0);
    BOOST_TEST(plen == sizeof(sockaddr_in));
    BOOST_TEST(p.sin_addr.s_addr == htonl(INADDR_LOOPBACK));
    // No address wanted.
    r = h.call(nr::accept, int(l.fd), nullptr, nullptr);
    BOOST_TEST_REQUIRE(r >= 0);
    unique_fd b(static_cast<int>(r));
    // A short buffer: truncated address, *addrlen the full length (as direct).
    unsigned char kshort[16], dshort[16];
    std::memset(kshort, 0x5a, sizeof kshort);
    std::memset(dshort, 0x5a, sizeof dshort);
    socklen_t kl = 6, dl = 6;
    const std::int64_t kr = h.call(sys::accept4(l.fd, reinterpret_cast<sockaddr*>(kshort), &kl, SOCK_CLOEXEC));
    const std::int64_t dr = direct(nr::accept4, int(l.fd), dshort, &dl, SOCK_CLOEXEC);
    BOOST_TEST_REQUIRE(kr >= 0);
    BOOST_TEST_REQUIRE(dr >= 0);
    unique_fd kf(static_cast<int>(kr)), df(static_cast<int>(dr));
    BOOST_TEST(kl == dl);
    BOOST_TEST(kl == sizeof(sockaddr_in));
    BOOST_TEST(std::memcmp(kshort, dshort, 2) == 0); // the family; the ports are two different clients'
    BOOST_TEST(std::memcmp(kshort + 4, dshort + 4, 2) == 0); // the first address bytes
    BOOST_TEST(kshort[6] == 0x5a);
    BOOST_TEST(dshort[6] == 0x5a);
    // Bad flags: EINVAL; not listening: EINVAL; not a socket: ENOTSOCK.
    BOOST_TEST(h.call(sys::accept4(l.fd, nullptr, nullptr, 0x1)) == direct(nr::accept4, int(l.fd), nullptr, nullptr, 0x1));
    unique_fd idle(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    BOOST_TEST(h.call(sys::accept4(idle, nullptr, nullptr, 0)) == direct(nr::accept4, int(idle), nullptr, nullptr, 0));
    unique_fd file(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    BOOST_TEST(h.call(sys::accept4(file, nullptr, nullptr, 0)) == direct(nr::accept4, int(file), nullptr, nullptr, 0));
}

BOOST_DATA_TEST_CASE(udp_sendto_with_and_without_a_destination, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    unique_fd sender = udp_bound(), receiver = udp_bound();
    const sockaddr_in to = local_of(receiver);
    const std::string msg = "datagram with address";
    BOOST_TEST(h.call(sys::sendto(sender, msg.data(), msg.size(), 0, sa(to), sizeof to)) ==
               static_cast<std::int64_t>(msg.size()));
    char buf[64] = {};
    sockaddr_in from{};
    socklen_t flen = sizeof from;
    BOOST_TEST(::recvfrom(receiver, buf, sizeof buf, 0, sa(from), &flen) == static_cast<ssize_t>(msg.size()));
    BOOST_TEST(std::string(buf) == msg);
    BOOST_TEST(same_addr(from, local_of(sender)));

    // Unconnected, no destination: EDESTADDRREQ like the direct call.
    unique_fd other = udp_bound();
    BOOST_TEST(h.call(sys::sendto(sender, msg.data(), msg.size(), 0)) ==
               direct(nr::sendto, int(other), msg.data(), msg.size(), 0, nullptr, 0));
    BOOST_TEST(direct(nr::sendto, int(other), msg.data(), msg.size(), 0, nullptr, 0) == -EDESTADDRREQ);
    // Connected, no destination.
    BOOST_REQUIRE(::connect(sender, sa(to), sizeof to) == 0);
    const std::string m2 = "connected datagram";
    BOOST_TEST(h.call(sys::sendto(sender, m2.data(), m2.size(), 0)) == static_cast<std::int64_t>(m2.size()));
    std::memset(buf, 0, sizeof buf);
    BOOST_TEST(::recv(receiver, buf, sizeof buf, 0) == static_cast<ssize_t>(m2.size()));
    BOOST_TEST(std::string(buf) == m2);
    // A bad destination length, a wrong family.
    BOOST_TEST(h.call(sys::sendto(other, msg.data(), msg.size(), 0, sa(to), 3)) ==
               direct(nr::sendto, int(other), msg.data(), msg.size(), 0, &to, 3));
    sockaddr_in6 v6{};
    v6.sin6_family = AF_INET6;
    BOOST_TEST(h.call(sys::sendto(other, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&v6), sizeof v6)) ==
               direct(nr::sendto, int(other), msg.data(), msg.size(), 0, &v6, sizeof v6));
    // Larger than a datagram can be: EMSGSIZE.
    std::string huge(70000, 'x');
    BOOST_TEST(h.call(sys::sendto(other, huge.data(), huge.size(), 0, sa(to), sizeof to)) ==
               direct(nr::sendto, int(other), huge.data(), huge.size(), 0, &to, sizeof to));
}

BOOST_DATA_TEST_CASE(udp_recvfrom_fills_the_source_address_like_direct, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    unique_fd sender = udp_bound(), rk = udp_bound(), rd = udp_bound();
    const sockaddr_in src = local_of(sender), tk = local_of(rk), td = local_of(rd);
    auto send_both = [&](const std::string& m) {
        BOOST_REQUIRE(::sendto(sender, m.data(), m.size(), 0, sa(tk), sizeof tk) == static_cast<ssize_t>(m.size()));
        BOOST_REQUIRE(::sendto(sender, m.data(), m.size(), 0, sa(td), sizeof td) == static_cast<ssize_t>(m.size()));
    };
    // Exact-size address buffer.
    send_both("first");
    {
        char kb[32] = {}, db[32] = {};
        sockaddr_in ka{}, da{};
        socklen_t kl = sizeof ka, dl = sizeof da;
        BOOST_TEST(h.call(sys::recvfrom(rk, kb, sizeof kb, 0, sa(ka), &kl)) ==
                   direct(nr::recvfrom, int(rd), db, sizeof db, 0, &da, &dl));
        BOOST_TEST(std::string(kb) == "first");
        BOOST_TEST(std::string(kb) == std::string(db));
        BOOST_TEST(kl == dl);
        BOOST_TEST(kl == sizeof(sockaddr_in));
        BOOST_TEST(std::memcmp(&ka, &da, sizeof ka) == 0);
        BOOST_TEST(same_addr(ka, src));
    }
    // A larger buffer (sockaddr_storage): *addrlen shrinks to the real length.
    send_both("second");
    {
        char kb[32] = {}, db[32] = {};
        sockaddr_storage ka, da;
        std::memset(&ka, 0x77, sizeof ka);
        std::memset(&da, 0x77, sizeof da);
        socklen_t kl = sizeof ka, dl = sizeof da;
        BOOST_TEST(h.call(sys::recvfrom(rk, kb, sizeof kb, 0, reinterpret_cast<sockaddr*>(&ka), &kl)) ==
                   direct(nr::recvfrom, int(rd), db, sizeof db, 0, &da, &dl));
        BOOST_TEST(kl == dl);
        BOOST_TEST(kl == sizeof(sockaddr_in));
        BOOST_TEST(std::memcmp(&ka, &da, sizeof ka) == 0); // same bytes written, same left alone
    }
    // A short buffer: the address is truncated and *addrlen reports the full length.
    send_both("third");
    {
        char kb[32] = {}, db[32] = {};
        unsigned char ka[16], da[16];
        std::memset(ka, 0x33, sizeof ka);
        std::memset(da, 0x33, sizeof da);
        socklen_t kl = 4, dl = 4;
        BOOST_TEST(h.call(sys::recvfrom(rk, kb, sizeof kb, 0, reinterpret_cast<sockaddr*>(ka), &kl)) ==
                   direct(nr::recvfrom, int(rd), db, sizeof db, 0, da, &dl));
        BOOST_TEST(kl == dl);
        BOOST_TEST(kl == sizeof(sockaddr_in));
        BOOST_TEST(std::memcmp(ka, da, sizeof ka) == 0);
        BOOST_TEST(ka[4] == 0x33);
    }
    // *addrlen == 0: nothing written, length reported.
    send_both("fourth");
    {
        char kb[32] = {}, db[32] = {};
        sockaddr_in ka{}, da{};
        socklen_t kl = 0, dl = 0;
        BOOST_TEST(h.call(sys::recvfrom(rk, kb, sizeof kb, 0, sa(ka), &kl)) ==
                   direct(nr::recvfrom, int(rd), db, sizeof db, 0, &da, &dl));
        BOOST_TEST(kl == dl);
        BOOST_TEST(ka.sin_family == 0);
    }
    // Negative *addrlen: the syscall receives (dequeues) the datagram, then fails with EINVAL
    // copying the address out. The queues must be left in the same state.
    send_both("fifth");
    {
        char kb[32] = {}, db[32] = {};
        sockaddr_in ka{}, da{};
        socklen_t kl = static_cast<socklen_t>(-1), dl = static_cast<socklen_t>(-1);
        BOOST_TEST(h.call(sys::recvfrom(rk, kb, sizeof kb, 0, sa(ka), &kl)) ==
                   direct(nr::recvfrom, int(rd), db, sizeof db, 0, &da, &dl));
        BOOST_TEST(kl == dl);
        char pk[32] = {}, pd[32] = {};
        BOOST_TEST(::recv(rk, pk, sizeof pk, MSG_PEEK | MSG_DONTWAIT) == ::recv(rd, pd, sizeof pd, MSG_PEEK | MSG_DONTWAIT),
                   "after recvfrom with *addrlen < 0 the queues differ: ksvc left '" << pk << "', direct left '" << pd << "'");
        ::recv(rk, pk, sizeof pk, MSG_DONTWAIT); // realign so the rest of the test is independent
        ::recv(rd, pd, sizeof pd, MSG_DONTWAIT);
    }
    // Without an address; MSG_PEEK leaves it queued; a short buffer truncates (MSG_TRUNC
    // reports the real length).
    send_both("peeked");
    {
        char kb[32] = {}, db[32] = {};
        BOOST_TEST(h.call(sys::recvfrom(rk, kb, sizeof kb, MSG_PEEK)) ==
                   direct(nr::recvfrom, int(rd), db, sizeof db, MSG_PEEK, nullptr, nullptr));
        BOOST_TEST(std::string(kb) == "peeked");
        BOOST_TEST(h.call(sys::recvfrom(rk, kb, 2, MSG_TRUNC)) == direct(nr::recvfrom, int(rd), db, 2, MSG_TRUNC, nullptr, nullptr));
        BOOST_TEST(std::string(kb, 2) == std::string(db, 2));
        BOOST_TEST(std::string(kb, 2) == "pe");
    }
    // An address buffer with a null addrlen pointer: the data is consumed, then EFAULT.
    send_both("sixth");
    {
        char kb[32] = {}, db[32] = {};
        sockaddr_in ka{}, da{};
        BOOST_TEST(h.call(sys::recvfrom(rk, kb, sizeof kb, 0, sa(ka), nullptr)) ==
                   direct(nr::recvfrom, int(rd), db, sizeof db, 0, &da, nullptr));
        BOOST_TEST(std::string(kb) == std::string(db));
    }
    // Both queues are drained identically.
    char tmp[8];
    BOOST_TEST(::recv(rk, tmp, sizeof tmp, MSG_DONTWAIT) == -1);
    BOOST_TEST(::recv(rd, tmp, sizeof tmp, MSG_DONTWAIT) == -1);
}

BOOST_DATA_TEST_CASE(tcp_sendto_recvfrom_without_addresses, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    auto [c, s] = tcp_pair();
    const std::string msg = pattern(3000, 1);
    BOOST_TEST(h.call(sys::sendto(c, msg.data(), msg.size(), 0)) == static_cast<std::int64_t>(msg.size()));
    std::string got(msg.size(), '\0');
    std::size_t have = 0;
    while (have < msg.size()) {
        const std::int64_t r = h.call(sys::recvfrom(s, got.data() + have, msg.size() - have, 0));
        BOOST_TEST_REQUIRE(r > 0);
        have += static_cast<std::size_t>(r);
    }
    BOOST_TEST(got == msg);
    // recvfrom with an address on a stream socket: no address, *addrlen 0 (as direct).
    auto [c2, s2] = tcp_pair();
    BOOST_REQUIRE(::send(c, "ab", 2, 0) == 2);
    BOOST_REQUIRE(::send(c2, "ab", 2, 0) == 2);
    char kb[4] = {}, db[4] = {};
    sockaddr_in ka{}, da{};
    socklen_t kl = sizeof ka, dl = sizeof da;
    BOOST_TEST(h.call(sys::recvfrom(s, kb, sizeof kb, 0, sa(ka), &kl)) ==
               direct(nr::recvfrom, int(s2), db, sizeof db, 0, &da, &dl));
    BOOST_TEST(kl == dl);
    BOOST_TEST(std::string(kb) == std::string(db));
    // sendto with a destination on a connected stream socket: the address is ignored (or
    // EISCONN) exactly as the direct call does.
    const sockaddr_in any = loopback(9);
    BOOST_TEST(h.call(sys::sendto(c, "x", 1, 0, sa(any), sizeof any)) == direct(nr::sendto, int(c2), "x", 1, 0, &any, sizeof any));
}

BOOST_DATA_TEST_CASE(sendmsg_recvmsg_with_iovecs_names_and_scm_rights, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    // UDP: two iovecs out, name filled on the way in.
    unique_fd a = udp_bound(), b = udp_bound();
    sockaddr_in to = local_of(b);
    std::string p1 = "scatter-", p2 = "gather";
    iovec out[] = {{p1.data(), p1.size()}, {p2.data(), p2.size()}};
    msghdr m{};
    m.msg_name = &to;
    m.msg_namelen = sizeof to;
    m.msg_iov = out;
    m.msg_iovlen = 2;
    BOOST_TEST(h.call(sys::sendmsg(a, &m, 0)) == static_cast<std::int64_t>(p1.size() + p2.size()));
    char r1[5] = {}, r2[32] = {};
    iovec in[] = {{r1, sizeof r1}, {r2, sizeof r2}};
    sockaddr_storage from;
    std::memset(&from, 0, sizeof from);
    msghdr rm{};
    rm.msg_name = &from;
    rm.msg_namelen = sizeof from;
    rm.msg_iov = in;
    rm.msg_iovlen = 2;
    BOOST_TEST(h.call(sys::recvmsg(b, &rm, 0)) == static_cast<std::int64_t>(p1.size() + p2.size()));
    BOOST_TEST(std::string(r1, 5) + std::string(r2) == p1 + p2);
    BOOST_TEST(rm.msg_namelen == sizeof(sockaddr_in));
    BOOST_TEST(same_addr(*reinterpret_cast<sockaddr_in*>(&from), local_of(a)));
    BOOST_TEST(rm.msg_flags == 0);
    // Truncation: MSG_TRUNC in msg_flags, like the direct call.
    unique_fd b2 = udp_bound();
    sockaddr_in to2 = local_of(b2);
    BOOST_REQUIRE(::sendto(a, "0123456789", 10, 0, sa(to), sizeof to) == 10);
    BOOST_REQUIRE(::sendto(a, "0123456789", 10, 0, sa(to2), sizeof to2) == 10);
    char small_k[4], small_d[4];
    iovec sk{small_k, sizeof small_k}, sd{small_d, sizeof small_d};
    msghdr km{}, dm{};
    km.msg_iov = &sk;
    km.msg_iovlen = 1;
    dm.msg_iov = &sd;
    dm.msg_iovlen = 1;
    BOOST_TEST(h.call(sys::recvmsg(b, &km, 0)) == direct(nr::recvmsg, int(b2), &dm, 0));
    BOOST_TEST(km.msg_flags == dm.msg_flags);
    BOOST_TEST((km.msg_flags & MSG_TRUNC) != 0);

    // AF_UNIX with SCM_RIGHTS: the descriptor arrives.
    int sp[2];
    BOOST_REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0);
    unique_fd u0(sp[0]), u1(sp[1]);
    unique_fd passed(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    char one = '!';
    iovec iov1{&one, 1};
    alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int))] = {};
    msghdr fm{};
    fm.msg_iov = &iov1;
    fm.msg_iovlen = 1;
    fm.msg_control = ctl;
    fm.msg_controllen = sizeof ctl;
    cmsghdr* cm = CMSG_FIRSTHDR(&fm);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    const int pfd = passed;
    std::memcpy(CMSG_DATA(cm), &pfd, sizeof pfd);
    BOOST_TEST(h.call(sys::sendmsg(u0, &fm, 0)) == 1);
    char got = 0;
    iovec giov{&got, 1};
    alignas(cmsghdr) char rctl[CMSG_SPACE(sizeof(int))] = {};
    msghdr gm{};
    gm.msg_iov = &giov;
    gm.msg_iovlen = 1;
    gm.msg_control = rctl;
    gm.msg_controllen = sizeof rctl;
    BOOST_TEST(h.call(sys::recvmsg(u1, &gm, MSG_CMSG_CLOEXEC)) == 1);
    BOOST_TEST(got == '!');
    cmsghdr* rc = CMSG_FIRSTHDR(&gm);
    BOOST_TEST_REQUIRE(rc != nullptr);
    BOOST_TEST(rc->cmsg_type == SCM_RIGHTS);
    int recvd = -1;
    std::memcpy(&recvd, CMSG_DATA(rc), sizeof recvd);
    unique_fd rfd(recvd);
    struct stat s1 {}, s2{};
    BOOST_TEST(::fstat(rfd, &s1) == 0);
    ::fstat(passed, &s2);
    BOOST_TEST(s1.st_ino == s2.st_ino);
    BOOST_TEST((fd_flags(rfd) & FD_CLOEXEC) != 0); // MSG_CMSG_CLOEXEC honoured
    // sendmsg on a file: ENOTSOCK.
    BOOST_TEST(h.call(sys::sendmsg(passed, &fm, 0)) == direct(nr::sendmsg, int(passed), &fm, 0));
}

BOOST_DATA_TEST_CASE(shutdown_wr_makes_the_peer_read_zero, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    auto [c, s] = tcp_pair();
    BOOST_REQUIRE(::write(c, "last", 4) == 4);
    BOOST_TEST(h.call(sys::shutdown(c, SHUT_WR)) == 0);
    char buf[8] = {};
    BOOST_TEST(::read(s, buf, sizeof buf) == 4);
    BOOST_TEST(::read(s, buf, sizeof buf) == 0); // EOF
    // The other direction still works.
    BOOST_TEST(::write(s, "back", 4) == 4);
    std::memset(buf, 0, sizeof buf);
    BOOST_TEST(::read(c, buf, sizeof buf) == 4);
    BOOST_TEST(std::string(buf) == "back");
    // Writing after SHUT_WR: EPIPE (MSG_NOSIGNAL on both).
    BOOST_TEST(h.call(sys::sendto(c, "x", 1, MSG_NOSIGNAL)) == -EPIPE);
    // Invalid how, not connected, not a socket.
    BOOST_TEST(h.call(sys::shutdown(c, 7)) == direct(nr::shutdown, int(c), 7));
    unique_fd lone_k(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)), lone_d(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    BOOST_TEST(h.call(sys::shutdown(lone_k, SHUT_RDWR)) == direct(nr::shutdown, int(lone_d), SHUT_RDWR));
    unique_fd file(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    BOOST_TEST(h.call(sys::shutdown(file, SHUT_RD)) == direct(nr::shutdown, int(file), SHUT_RD));
}

BOOST_DATA_TEST_CASE(send_to_a_reset_connection_without_msg_nosignal_returns_epipe, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    auto [c, s] = tcp_pair();
    ::shutdown(c, SHUT_WR);
    // The process must survive the SIGPIPE the kernel raises for the ring's submitting thread.
    BOOST_TEST(h.call(sys::sendto(c, "x", 1, 0)) == -EPIPE);
    BOOST_TEST(h.call(sys::write(c, "x", 1)) == -EPIPE);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(tier1_known_deviations)

// Calls that would block on an O_NONBLOCK socket or pipe: the direct call returns EAGAIN at
// once; io_uring, for files that support nowait, ignores O_NONBLOCK and arms poll (the kernel's
// io_rw_init_file: "If the file is marked O_NONBLOCK, still allow retry for it if it supports
// async"), so the request stays pending until data arrives. MSG_DONTWAIT/RWF_NOWAIT would be
// exact, but only for fds that are O_NONBLOCK, which the translation cannot see.
BOOST_DATA_TEST_CASE(nonblocking_socket_with_nothing_to_do_gives_eagain_directly, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    auto [c, s] = tcp_pair();
    const int fl = ::fcntl(s, F_GETFL);
    BOOST_REQUIRE(::fcntl(s, F_SETFL, fl | O_NONBLOCK) == 0);
    char buf[8];
    BOOST_TEST(direct(nr::recvfrom, int(s), buf, sizeof buf, 0, nullptr, nullptr) == -EAGAIN);
    BOOST_TEST(direct(nr::read, int(s), buf, sizeof buf) == -EAGAIN);
    struct probe {
        const char* name;
        ksvc::submit_entry e;
    };
    sockaddr_in from{};
    socklen_t flen = sizeof from;
    iovec iov{buf, sizeof buf};
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    loopback_listener l;
    const int lfl = ::fcntl(l.fd, F_GETFL);
    BOOST_REQUIRE(::fcntl(l.fd, F_SETFL, lfl | O_NONBLOCK) == 0);
    BOOST_TEST(direct(nr::accept4, int(l.fd), nullptr, nullptr, SOCK_CLOEXEC) == -EAGAIN);
    int pfd[2];
    BOOST_REQUIRE(::pipe2(pfd, O_CLOEXEC | O_NONBLOCK) == 0);
    unique_fd pr(pfd[0]), pw(pfd[1]);
    BOOST_TEST(direct(nr::read, int(pr), buf, sizeof buf) == -EAGAIN);
    probe probes[] = {
        {"read(pipe)", sys::read(pr, buf, sizeof buf)},
        {"read", sys::read(s, buf, sizeof buf)},
        {"recvfrom", sys::recvfrom(s, buf, sizeof buf, 0)},
        {"recvfrom(addr)", sys::recvfrom(s, buf, sizeof buf, 0, sa(from), &flen)},
        {"recvmsg", sys::recvmsg(s, &m, 0)},
        {"readv", sys::readv(s, &iov, 1)},
        {"accept4", sys::accept4(l.fd, nullptr, nullptr, SOCK_CLOEXEC)},
    };
    std::uint64_t corr = 500;
    for (auto& p : probes) {
        BOOST_TEST_CONTEXT(p.name) {
            p.e.corr_id = ++corr;
            BOOST_TEST_REQUIRE((h.inst.router().route(p.e.nr).tier == ksvc::tier::io_uring));
            BOOST_TEST_REQUIRE(!h.inst.submit(p.e));
            ksvc::completion_entry done{};
            const bool arrived = wait_for(h, corr, done, 100);
            // Known deviation (kernel behaviour, see the report in the commit): io_uring keeps
            // retrying an O_NONBLOCK fd that supports nowait (arms poll) instead of returning
            // EAGAIN. A warning until the translation can express O_NONBLOCK; a hard check once
            // it completes.
            BOOST_WARN_MESSAGE(arrived, p.name << " on an O_NONBLOCK socket stays pending in io_uring; "
                                                  "the direct call returns EAGAIN at once");
            if (arrived) {
                BOOST_TEST(done.result == -EAGAIN);
                continue;
            }
            // Unstick it so the instance can shut down: give it something to complete with.
            unique_fd extra;
            if (p.e.nr == nr::accept4) {
                extra = unique_fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
                ::connect(extra, sa(l.addr), sizeof l.addr);
            } else if (p.e.args[0] == static_cast<std::uint64_t>(int(pr))) {
                BOOST_REQUIRE(::write(pw, "z", 1) == 1);
            } else {
                BOOST_REQUIRE(::write(c, "z", 1) == 1);
            }
            BOOST_TEST_REQUIRE(wait_for(h, corr, done, 5000));
            if (p.e.nr == nr::accept4) {
                BOOST_TEST(done.result >= 0);
                if (done.result >= 0) ::close(static_cast<int>(done.result));
            } else {
                BOOST_TEST(done.result == 1); // the pending read got the byte
            }
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
