// The epoll backend (epoll_instance, and default_instance/server_instance falling back to it):
// what it routes where, one registration per fd, dup()ed fds, fds closed through ksvc and behind
// its back, regular files on the workers, O_NONBLOCK untouched, cancellation, timeouts and
// deadlines, poll, emulated multishot accept, EPIPE without SIGPIPE, peer reset, teardown in
// flight, fd exhaustion — and io_uring blocked by a real seccomp filter. Real loopback sockets,
// pipes and files, both dispatch modes.
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <sys/epoll.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <ksvc/executor/op.hpp>
#include <ksvc/executor/sys.hpp>
#include <ksvc/module/presets.hpp>

#include "support/block_io_uring.hpp"
#include "support/fixtures.hpp"

namespace ksvc::test::epoll {

namespace bdata = boost::unit_test::data;
namespace nr = ksvc::syscalls::native;
using namespace std::chrono_literals;

//! A dispatch mode and a way of waiting on sockets: each case runs under all four.
struct epoll_config {
    dispatch_mode mode;
    epoll_readiness readiness;
    operator dispatch_mode() const noexcept { return mode; } // NOLINT: the cases compare modes
};
std::ostream& operator<<(std::ostream& os, const epoll_config& c) {
    return os << (c.mode == dispatch_mode::inline_mode ? "inline" : "threaded") << '/'
              << (c.readiness == epoll_readiness::edge ? "edge" : "one-shot");
}
const std::vector<epoll_config> modes = {{dispatch_mode::threaded, epoll_readiness::edge},
                                         {dispatch_mode::inline_mode, epoll_readiness::edge},
                                         {dispatch_mode::threaded, epoll_readiness::one_shot},
                                         {dispatch_mode::inline_mode, epoll_readiness::one_shot}};
const std::vector<epoll_config> one_shot_modes = {{dispatch_mode::threaded, epoll_readiness::one_shot},
                                                  {dispatch_mode::inline_mode, epoll_readiness::one_shot}};

instance_options mode_options(epoll_config c, unsigned entries = 256) {
    instance_options o;
    o.mode = c.mode;
    o.ring.entries = entries;
    o.ring.epoll_readiness_mode = c.readiness;
    return o;
}
instance_options mode_options(dispatch_mode m, unsigned entries = 256) {
    return mode_options(epoll_config{m, epoll_readiness::edge}, entries);
}

unique_fd connect_to(const loopback_listener& l) {
    unique_fd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    BOOST_REQUIRE(::connect(c, reinterpret_cast<const sockaddr*>(&l.addr), sizeof l.addr) == 0);
    return c;
}

//! Registrations in an epoll instance (its /proc fdinfo has a "tfd:" line per registration).
std::size_t registrations(int epfd) {
    std::ifstream f("/proc/self/fdinfo/" + std::to_string(epfd));
    std::size_t n = 0;
    for (std::string line; std::getline(f, line);) n += line.rfind("tfd:", 0) == 0;
    return n;
}

//! Completions of one instance, taken as they come and kept until asked for (drives an inline loop).
template <class I>
struct feed {
    I& inst;
    std::vector<completion_entry> kept{};
    bool wait_for(std::uint64_t corr, completion_entry& out, std::chrono::milliseconds limit = 5000ms) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        for (;;) {
            for (auto it = kept.begin(); it != kept.end(); ++it)
                if (it->corr_id == corr) {
                    out = *it;
                    kept.erase(it);
                    return true;
                }
            if (std::chrono::steady_clock::now() >= deadline) return false;
            completion_entry buf[16];
            const std::size_t n = inst.wait_completions(buf, 10);
            kept.insert(kept.end(), buf, buf + n);
        }
    }
};
template <class I>
feed(I&) -> feed<I>;

//! Until the loop has placed `n` entries in the backend (threaded: the loop thread does it;
//! inline: one turn here).
template <class I>
void settle(I& inst, std::uint64_t n) {
    if (inst.fixed_mode == dispatch_mode::inline_mode || inst.loop().mode() == dispatch_mode::inline_mode) {
        inst.run_once();
        return;
    }
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (inst.loop().executed(tier::io_uring) < n && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(1ms);
}

template <class I>
std::error_code submit_as(I& inst, submit_entry e, std::uint64_t corr) {
    e.corr_id = corr;
    return inst.submit(e);
}

BOOST_AUTO_TEST_SUITE(epoll_backend_routes)

BOOST_AUTO_TEST_CASE(sockets_and_pipes_to_the_backend_files_to_workers_ring_only_refused) {
    const auto& caps = current_capabilities();
    const probe_router r(epoll_backend::offer_for(caps));
    for (std::uint32_t n : {nr::read, nr::write, nr::readv, nr::writev, nr::recvfrom, nr::sendto, nr::recvmsg,
                            nr::sendmsg, nr::accept, nr::accept4, nr::socket, nr::bind, nr::listen, nr::shutdown,
                            nr::close, nr::pipe2})
        BOOST_TEST((r.route(n).tier == tier::io_uring), "syscall " << syscalls::name_of(n));
    for (std::uint32_t n : {nr::openat, nr::statx, nr::pread64, nr::pwrite64, nr::fsync, nr::fallocate, nr::connect,
                            nr::splice, nr::renameat2, nr::unlinkat, nr::ftruncate})
        BOOST_TEST((r.route(n).tier == tier::worker_pool), "syscall " << syscalls::name_of(n));
    // Tier 0 and Tier 3 do not depend on the backend.
    const probe_router u(caps);
    for (std::uint32_t n : {nr::getpid, nr::fork, nr::dup, nr::fcntl}) BOOST_TEST((r.route(n) == u.route(n)));
    for (operation op : {operation::nop, operation::poll, operation::poll_multishot, operation::timeout,
                         operation::link_timeout, operation::cancel, operation::accept_multishot,
                         operation::recv_select, operation::recv_multishot})
        BOOST_TEST((r.route(static_cast<std::uint32_t>(op)).tier == tier::io_uring), to_string(op));
    BOOST_TEST(r.route(static_cast<std::uint32_t>(operation::accept_multishot)).emulated);
    BOOST_TEST(r.route(static_cast<std::uint32_t>(operation::recv_multishot)).emulated);
    for (operation op : {operation::send_zc, operation::read_fixed,
                         operation::msg_ring, operation::accept_direct, operation::close_direct, operation::openat_direct})
        BOOST_TEST((r.route(static_cast<std::uint32_t>(op)).tier == tier::legacy), to_string(op));
}

BOOST_DATA_TEST_CASE(ring_only_operations_complete_with_unsupported, bdata::make(modes), mode) {
    epoll_instance inst(mode_options(mode));
    feed f{inst};
    auto [c, s] = tcp_pair();
    char buf[8];
    std::uint64_t corr = 100;
    for (submit_entry e : {op::send_zc(s, "x", 1), op::read_fixed(s, buf, 8, 0, 0),
                           op::openat_direct(AT_FDCWD, "/", O_RDONLY)}) {
        BOOST_REQUIRE(!submit_as(inst, e, ++corr));
        completion_entry got;
        BOOST_REQUIRE(f.wait_for(corr, got));
        BOOST_TEST((got.error() == errc::unsupported), got);
        BOOST_TEST(!got.more());
    }
    // No provided buffer ring in this composition: a buffer-select recv finds no group (ENOBUFS,
    // as the kernel answers for an unknown group).
    BOOST_REQUIRE(::send(c, "data", 4, 0) == 4);
    BOOST_TEST(inst.call(op::recv_select(s, 8, 0)).result == -ENOBUFS);
    // A direct descriptor can never reach a worker: refused, never run with the wrong fd.
    const completion_entry got = inst.call(op::read(direct_fd{0}, buf, sizeof buf));
    BOOST_TEST((got.error() == errc::needs_ring), got);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(epoll_backend_fds)

BOOST_DATA_TEST_CASE(one_registration_per_fd_however_many_wait_and_fifo_order, bdata::make(modes), mode) {
    epoll_instance inst(mode_options(mode));
    feed f{inst};
    auto [c, s] = tcp_pair();
    char bufs[3][4] = {};
    for (std::uint64_t i = 0; i < 3; ++i) BOOST_REQUIRE(!submit_as(inst, sys::recvfrom(s, bufs[i], 4, 0), 10 + i));
    BOOST_REQUIRE(!submit_as(inst, sys::sendto(s, "ping", 4, 0), 20)); // a writer on the same fd
    completion_entry done;
    BOOST_REQUIRE(f.wait_for(20, done));
    BOOST_TEST(done.result == 4);
    BOOST_TEST(registrations(inst.backend().epoll_fd()) <= 2u); // the socket (+ the doorbell)
    BOOST_TEST(inst.backend().inflight() == 3u);
    BOOST_REQUIRE(::send(c, "aaaa", 4, 0) == 4);
    BOOST_REQUIRE(f.wait_for(10, done));
    BOOST_TEST(done.result == 4);
    BOOST_REQUIRE(::send(c, "bbbbcccc", 8, 0) == 8);
    completion_entry second, third;
    BOOST_REQUIRE(f.wait_for(11, second));
    BOOST_REQUIRE(f.wait_for(12, third));
    BOOST_TEST(std::string(bufs[0], 4) == "aaaa");
    BOOST_TEST(std::string(bufs[1], 4) == "bbbb"); // in submission order
    BOOST_TEST(std::string(bufs[2], 4) == "cccc");
    // The user's fd was never made non-blocking.
    BOOST_TEST((::fcntl(s, F_GETFL) & O_NONBLOCK) == 0);
}

BOOST_DATA_TEST_CASE(dup_fds_are_registered_apart_and_both_served, bdata::make(modes), mode) {
    epoll_instance inst(mode_options(mode));
    feed f{inst};
    auto [c, s] = tcp_pair();
    unique_fd d(::dup(s));
    char a[4] = {}, b[4] = {};
    BOOST_REQUIRE(!submit_as(inst, sys::recvfrom(s, a, 4, 0), 1));
    BOOST_REQUIRE(!submit_as(inst, sys::recvfrom(d, b, 4, 0), 2));
    settle(inst, 2);
    BOOST_REQUIRE(::send(c, "1111", 4, 0) == 4);
    completion_entry first{};
    completion_entry got[4];
    std::size_t n = 0;
    for (int i = 0; i < 200 && n == 0; ++i) n = inst.wait_completions(got, 10);
    BOOST_REQUIRE(n == 1u);
    first = got[0];
    BOOST_REQUIRE(::send(c, "2222", 4, 0) == 4);
    completion_entry other;
    BOOST_REQUIRE(f.wait_for(first.corr_id == 1 ? 2 : 1, other));
    BOOST_TEST(first.result == 4);
    BOOST_TEST(other.result == 4);
    BOOST_TEST(std::string(a, 4) + std::string(b, 4) == (first.corr_id == 1 ? "11112222" : "22221111"));
    // Closing the dup through ksvc leaves the original registered and working.
    BOOST_TEST(inst.call(sys::close(d.release())).result == 0);
    BOOST_REQUIRE(::send(c, "3333", 4, 0) == 4);
    BOOST_TEST(inst.call(sys::recvfrom(s, a, 4, 0)).result == 4);
}

BOOST_DATA_TEST_CASE(close_through_ksvc_fails_its_waiters_with_ebadf, bdata::make(modes), mode) {
    epoll_instance inst(mode_options(mode));
    feed f{inst};
    auto [c, s] = tcp_pair();
    char buf[4];
    BOOST_REQUIRE(!submit_as(inst, sys::recvfrom(s, buf, 4, 0), 7));
    settle(inst, 1);
    BOOST_TEST(inst.call(sys::close(s.release())).result == 0);
    completion_entry done;
    BOOST_REQUIRE(f.wait_for(7, done));
    BOOST_TEST(done.result == -EBADF);
    BOOST_TEST(inst.backend().inflight() == 0u);
}

// One-shot only: an edge registration is kept without a check per wait (the header says so).
BOOST_DATA_TEST_CASE(fd_closed_behind_ksvcs_back_and_reused_serves_the_new_file, bdata::make(one_shot_modes), mode) {
    epoll_instance inst(mode_options(mode));
    feed f{inst};
    auto [c, s] = tcp_pair();
    const int num = s;
    char old_buf[4], new_buf[8] = {};
    BOOST_REQUIRE(!submit_as(inst, sys::recvfrom(num, old_buf, 4, 0), 1));
    settle(inst, 1);
    pipe_pair p;
    s.reset(); // closed directly: epoll forgets the registration, ksvc does not know
    // The pipe's read end takes the same number.
    BOOST_REQUIRE(::dup2(p.r, num) == num);
    unique_fd reused(num);
    BOOST_REQUIRE(!submit_as(inst, sys::read(num, new_buf, sizeof new_buf), 2));
    settle(inst, 2);
    BOOST_REQUIRE_MESSAGE(::write(p.w, "new file", 8) == 8, std::strerror(errno));
    completion_entry old_done, new_done;
    BOOST_REQUIRE(f.wait_for(2, new_done));
    BOOST_TEST(new_done.result == 8);
    BOOST_TEST(std::string(new_buf, 8) == "new file");
    BOOST_REQUIRE(f.wait_for(1, old_done)); // it named a file that is gone
    BOOST_TEST(old_done.result == -EBADF);
}

//! The event mask of `fd`'s registration in `epfd` (its /proc fdinfo line), or 0 when none.
std::uint32_t registered_events(int epfd, int fd) {
    std::ifstream f("/proc/self/fdinfo/" + std::to_string(epfd));
    for (std::string line; std::getline(f, line);) {
        int tfd = -1;
        unsigned events = 0;
        if (std::sscanf(line.c_str(), "tfd: %d events: %x", &tfd, &events) == 2 && tfd == fd) return events;
    }
    return 0;
}

// Edge-triggered: one registration for every readiness, made at the first wait and never
// changed again (no epoll_ctl per wait), serving 200 round trips with every byte checked.
BOOST_DATA_TEST_CASE(edge_registration_is_made_once_and_kept, bdata::make(modes), mode) {
    epoll_instance inst(mode_options(mode));
    feed f{inst};
    auto [c, s] = tcp_pair();
    for (std::uint64_t i = 0; i < 200; ++i) {
        char buf[16] = {};
        BOOST_REQUIRE(!submit_as(inst, sys::recvfrom(s, buf, sizeof buf, 0), i));
        if (i % 2 == 0) settle(inst, i + 1); // half wait in the backend before the bytes come
        const std::string msg = "msg " + std::to_string(i);
        BOOST_REQUIRE(::send(c, msg.data(), msg.size(), 0) == static_cast<ssize_t>(msg.size()));
        completion_entry done;
        BOOST_REQUIRE(f.wait_for(i, done));
        BOOST_REQUIRE(done.result == static_cast<std::int64_t>(msg.size()));
        BOOST_REQUIRE(std::string(buf, msg.size()) == msg);
        const std::uint32_t ev = registered_events(inst.backend().epoll_fd(), s);
        if (mode.readiness == epoll_readiness::edge) {
            BOOST_REQUIRE((ev & EPOLLET) != 0);
            BOOST_REQUIRE((ev & (EPOLLIN | EPOLLOUT | EPOLLRDHUP)) == (EPOLLIN | EPOLLOUT | EPOLLRDHUP));
        } else if (ev != 0) {
            BOOST_REQUIRE((ev & EPOLLONESHOT) != 0); // re-armed for each wait
        }
    }
    BOOST_TEST((inst.backend().readiness() == mode.readiness));
}

// A number given out again by accept through ksvc after the socket was closed behind its back:
// the waiter on the old socket gets -EBADF and the new connection is served (both modes).
BOOST_DATA_TEST_CASE(number_reused_by_an_accept_through_ksvc_is_served, bdata::make(modes), mode) {
    epoll_instance inst(mode_options(mode));
    feed f{inst};
    loopback_listener l;
    unique_fd c1 = connect_to(l);
    const completion_entry a1 = inst.call(sys::accept4(l.fd, nullptr, nullptr, SOCK_CLOEXEC));
    BOOST_REQUIRE(a1.result >= 0);
    const int num = static_cast<int>(a1.result);
    char old_buf[4];
    BOOST_REQUIRE(!submit_as(inst, sys::recvfrom(num, old_buf, 4, 0), 1));
    settle(inst, 2);
    unique_fd c2(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)); // before the number is free
    BOOST_REQUIRE(::close(num) == 0); // behind ksvc's back, with a recv waiting on it
    BOOST_REQUIRE(::connect(c2, reinterpret_cast<const sockaddr*>(&l.addr), sizeof l.addr) == 0);
    const completion_entry a2 = inst.call(sys::accept4(l.fd, nullptr, nullptr, SOCK_CLOEXEC));
    BOOST_REQUIRE(a2.result == num); // the lowest free number: the same one
    unique_fd s2(num);
    char buf[8] = {};
    BOOST_REQUIRE(!submit_as(inst, sys::recvfrom(num, buf, sizeof buf, 0), 2));
    settle(inst, 4);
    // Edge: failed when the accept gave the number out; one-shot (whose threaded call() runs
    // accept on this thread): when the new recv re-armed the number and epoll said ENOENT.
    completion_entry old_done;
    BOOST_REQUIRE(f.wait_for(1, old_done));
    BOOST_TEST(old_done.result == -EBADF);
    BOOST_REQUIRE(::send(c2, "second", 6, 0) == 6);
    completion_entry done;
    BOOST_REQUIRE(f.wait_for(2, done));
    BOOST_TEST(done.result == 6);
    BOOST_TEST(std::string(buf, 6) == "second");
}

// What was ready before an entry waited is served without a new edge: a poll on a socket that
// still holds bytes after a full read completes at once.
BOOST_DATA_TEST_CASE(readiness_from_before_the_wait_is_not_missed, bdata::make(modes), mode) {
    epoll_instance inst(mode_options(mode));
    feed f{inst};
    auto [c, s] = tcp_pair();
    char buf[4];
    BOOST_REQUIRE(!submit_as(inst, sys::recvfrom(s, buf, sizeof buf, 0), 1)); // registers the socket
    settle(inst, 1);
    BOOST_REQUIRE(::send(c, "abcdefgh", 8, 0) == 8);
    completion_entry done;
    BOOST_REQUIRE(f.wait_for(1, done)); // a full read: the socket is not known to be drained
    BOOST_REQUIRE(done.result == 4);
    BOOST_REQUIRE(!submit_as(inst, op::poll(s, POLLIN), 2));
    BOOST_REQUIRE(f.wait_for(2, done, 2000ms));
    BOOST_TEST((done.result & POLLIN) != 0);
    BOOST_TEST(inst.call(sys::recvfrom(s, buf, sizeof buf, 0)).result == 4);
}

// Two accepts waiting on a blocking listener and one connection: one is served and the other
// keeps waiting (the loop never blocks in accept4) until the next connection.
BOOST_DATA_TEST_CASE(blocking_listener_accepts_once_per_connection, bdata::make(modes), mode) {
    epoll_instance inst(mode_options(mode));
    feed f{inst};
    loopback_listener l;
    BOOST_REQUIRE(!submit_as(inst, sys::accept4(l.fd, nullptr, nullptr, SOCK_CLOEXEC), 1));
    BOOST_REQUIRE(!submit_as(inst, sys::accept4(l.fd, nullptr, nullptr, SOCK_CLOEXEC), 2));
    settle(inst, 2);
    unique_fd c1 = connect_to(l);
    completion_entry first;
    BOOST_REQUIRE(f.wait_for(1, first));
    BOOST_REQUIRE(first.result >= 0);
    unique_fd s1(static_cast<int>(first.result));
    completion_entry second;
    BOOST_TEST(!f.wait_for(2, second, 200ms)); // still waiting, and the loop still turns
    BOOST_TEST(inst.call(op::nop()).result == 0);
    unique_fd c2 = connect_to(l);
    BOOST_REQUIRE(f.wait_for(2, second));
    BOOST_REQUIRE(second.result >= 0);
    unique_fd s2(static_cast<int>(second.result));
}

BOOST_DATA_TEST_CASE(regular_files_run_on_workers_and_nonblocking_fds_say_eagain, bdata::make(modes), mode) {
    epoll_instance inst(mode_options(mode));
    feed f{inst};
    temp_dir d;
    const std::string path = d.file("f");
    unique_fd file(::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644));
    const std::uint64_t workers_before = inst.loop().executed(tier::worker_pool);
    BOOST_REQUIRE(!submit_as(inst, sys::write(file, "on a worker", 11), 1));
    completion_entry done;
    BOOST_REQUIRE(f.wait_for(1, done));
    BOOST_TEST(done.result == 11);
    BOOST_TEST(inst.loop().executed(tier::worker_pool) > workers_before);
    BOOST_TEST(registrations(inst.backend().epoll_fd()) <= 1u); // never registered (the doorbell may be)
    // /dev/null cannot be polled either: the workers run it.
    unique_fd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    char b[4];
    BOOST_TEST(inst.call(sys::read(null, b, sizeof b)).result == 0);
    // A pipe the user made O_NONBLOCK: EAGAIN at once, as the syscall says.
    pipe_pair p(O_CLOEXEC | O_NONBLOCK);
    BOOST_TEST(inst.call(sys::read(p.r, b, sizeof b)).result == -EAGAIN);
    BOOST_TEST((::fcntl(p.r, F_GETFL) & O_NONBLOCK) != 0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(epoll_backend_operations)

BOOST_DATA_TEST_CASE(cancel_in_flight_by_id_by_fd_and_at_teardown, bdata::make(modes), mode) {
    auto [c, s] = tcp_pair();
    pipe_pair p;
    char b1[4], b2[4], b3[4];
    completion_entry held[8];
    std::size_t held_n = 0;
    {
        epoll_instance inst(mode_options(mode));
        feed f{inst};
        BOOST_REQUIRE(!submit_as(inst, sys::recvfrom(s, b1, 4, 0), 1));
        BOOST_REQUIRE(!submit_as(inst, sys::read(p.r, b2, 4), 2));
        BOOST_REQUIRE(!submit_as(inst, sys::read(p.r, b3, 4), 3));
        settle(inst, 3);
        completion_entry done;
        BOOST_TEST(inst.call(op::cancel(1)).result == 1);
        BOOST_REQUIRE(f.wait_for(1, done));
        BOOST_TEST(done.result == -ECANCELED);
        BOOST_TEST(inst.call(op::cancel(1)).result == -ENOENT);
        BOOST_TEST(inst.call(op::cancel_fd(p.r)).result == 2);
        BOOST_REQUIRE(f.wait_for(2, done));
        BOOST_TEST(done.result == -ECANCELED);
        BOOST_REQUIRE(f.wait_for(3, done));
        BOOST_TEST(done.result == -ECANCELED);
        // Teardown in flight: a waiting recv completes as cancelled, nothing is left behind.
        BOOST_REQUIRE(!submit_as(inst, sys::recvfrom(s, b1, 4, 0), 4));
        inst.run_once();
        inst.stop();
        held_n = inst.poll(held);
    }
    BOOST_REQUIRE(held_n == 1u);
    BOOST_TEST(held[0].corr_id == 4u);
    BOOST_TEST(held[0].result == -ECANCELED);
    // The fds are the user's and still work.
    BOOST_REQUIRE(::send(c, "ok", 2, 0) == 2);
    BOOST_TEST(::recv(s, b1, 2, 0) == 2);
}

BOOST_DATA_TEST_CASE(timeouts_deadlines_and_poll, bdata::make(modes), mode) {
    epoll_instance inst(mode_options(mode));
    feed f{inst};
    auto [c, s] = tcp_pair();
    const auto t0 = std::chrono::steady_clock::now();
    completion_entry t = inst.call(op::timeout(30ms));
    BOOST_TEST(t.result == -ETIME);
    BOOST_TEST((std::chrono::steady_clock::now() - t0 >= 25ms));
    // A count: completes with 0 after two other completions.
    BOOST_REQUIRE(!submit_as(inst, op::timeout(10s, 2), 50));
    BOOST_REQUIRE(!submit_as(inst, op::nop(), 51));
    BOOST_REQUIRE(!submit_as(inst, op::nop(), 52));
    completion_entry done;
    BOOST_REQUIRE(f.wait_for(50, done, 2000ms));
    BOOST_TEST(done.result == 0);
    // call() with a deadline: a recv on an idle socket is cancelled when it passes.
    char b[4];
    const completion_entry r = inst.call(sys::recvfrom(s, b, 4, 0), 40ms);
    BOOST_TEST(r.result == -ECANCELED);
    // The same deadline on a regular file: the workers run it (without the deadline).
    temp_dir d;
    unique_fd file(::open(d.file("f").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644));
    BOOST_TEST(inst.call(sys::write(file, "abc", 3), 40ms).result == 3);
    // Data arriving first: the result, not a cancellation.
    BOOST_REQUIRE(::send(c, "abcd", 4, 0) == 4);
    BOOST_TEST(inst.call(sys::recvfrom(s, b, 4, 0), 1000ms).result == 4);
    // poll: one readiness mask; poll_multishot: one per event until cancelled.
    BOOST_REQUIRE(!submit_as(inst, op::poll(s, POLLIN), 60));
    inst.run_once();
    BOOST_REQUIRE(::send(c, "x", 1, 0) == 1);
    BOOST_REQUIRE(f.wait_for(60, done));
    BOOST_TEST((done.result & POLLIN) != 0);
    BOOST_TEST(inst.call(op::poll(s, POLLOUT)).result == POLLOUT);
    BOOST_REQUIRE(::recv(s, b, 1, 0) == 1); // nothing left to read: the stream below waits
    temp_dir d2;
    unique_fd g(::open(d2.file("g").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644));
    BOOST_TEST(inst.call(op::poll(g, POLLIN | POLLOUT)).result == (POLLIN | POLLOUT)); // files are always ready
    BOOST_REQUIRE(!submit_as(inst, op::poll_multishot(s, POLLIN), 61));
    inst.run_once();
    for (const char* m : {"1", "2"}) {
        BOOST_REQUIRE(::send(c, m, 1, 0) == 1);
        BOOST_REQUIRE(f.wait_for(61, done));
        BOOST_TEST(done.more());
        BOOST_TEST((done.result & POLLIN) != 0);
        BOOST_REQUIRE(::recv(s, b, 1, 0) == 1);
    }
    BOOST_TEST(inst.call(op::cancel(61)).result == 1);
    for (;;) {
        BOOST_REQUIRE(f.wait_for(61, done));
        if (!done.more()) break;
    }
    BOOST_TEST(done.result == -ECANCELED);
}

BOOST_DATA_TEST_CASE(multishot_accept_is_emulated_and_ends_on_cancel, bdata::make(modes), mode) {
    epoll_instance inst(mode_options(mode));
    feed f{inst};
    loopback_listener l;
    BOOST_REQUIRE(!submit_as(inst, op::accept_multishot(l.fd, SOCK_CLOEXEC), 9));
    inst.run_once();
    std::vector<unique_fd> clients, accepted;
    for (int i = 0; i < 5; ++i) clients.push_back(connect_to(l));
    completion_entry done;
    while (accepted.size() < 5 && f.wait_for(9, done)) {
        BOOST_REQUIRE(done.result >= 0);
        BOOST_TEST(done.more());
        BOOST_TEST((done.flags & completion_flags::emulated) != 0);
        accepted.emplace_back(static_cast<int>(done.result));
        BOOST_TEST((::fcntl(accepted.back(), F_GETFD) & FD_CLOEXEC) != 0);
    }
    BOOST_TEST(accepted.size() == 5u);
    BOOST_TEST(inst.call(op::cancel(9)).result == 1);
    BOOST_REQUIRE(f.wait_for(9, done));
    BOOST_TEST(!done.more());
    BOOST_TEST(done.result == -ECANCELED);
}

// On a non-blocking listener the emulated stream accepts until EAGAIN and keeps waiting (as
// io_uring's multishot accept does): connections queued before the submission and after it.
BOOST_DATA_TEST_CASE(multishot_accept_on_a_nonblocking_listener_keeps_streaming, bdata::make(modes), mode) {
    epoll_instance inst(mode_options(mode));
    feed f{inst};
    loopback_listener l;
    BOOST_REQUIRE(::fcntl(l.fd, F_SETFL, ::fcntl(l.fd, F_GETFL) | O_NONBLOCK) == 0);
    std::vector<unique_fd> clients, accepted;
    for (int i = 0; i < 3; ++i) clients.push_back(connect_to(l));
    BOOST_REQUIRE(!submit_as(inst, op::accept_multishot(l.fd, SOCK_CLOEXEC), 9));
    completion_entry done;
    while (accepted.size() < 3 && f.wait_for(9, done)) {
        BOOST_REQUIRE(done.result >= 0);
        BOOST_REQUIRE(done.more());
        accepted.emplace_back(static_cast<int>(done.result));
    }
    for (int i = 0; i < 2; ++i) clients.push_back(connect_to(l));
    while (accepted.size() < 5 && f.wait_for(9, done)) {
        BOOST_REQUIRE(done.result >= 0);
        BOOST_REQUIRE(done.more());
        accepted.emplace_back(static_cast<int>(done.result));
    }
    BOOST_TEST(accepted.size() == 5u);
    BOOST_TEST(inst.call(op::cancel(9)).result == 1);
    BOOST_REQUIRE(f.wait_for(9, done));
    BOOST_TEST(!done.more());
    BOOST_TEST(done.result == -ECANCELED);
}

// recv_multishot and recv_select into a provided_buffer_ring the epoll backend consumes in user
// space: buffers named by the completions, leases recycled into the ring, ENOBUFS when all are
// leased (the stream ends), and the stream working again once leases are dropped.
using epoll_buffers_instance = instance<probe_router, epoll_backend, fixed_pool, eventfd_notifier, provided_buffer_ring>;

BOOST_DATA_TEST_CASE(multishot_recv_into_provided_buffers_and_enobufs_recovery, bdata::make(modes), mode) {
    instance_options o = mode_options(mode);
    o.buffer_count = 4;
    o.buffer_size = 16;
    o.buffer_group = 3;
    epoll_buffers_instance inst(o);
    feed f{inst};
    BOOST_TEST(!inst.buffers().is_registered()); // no ring: the backend takes them itself
    auto [c, s] = tcp_pair();
    BOOST_REQUIRE(!submit_as(inst, op::recv_multishot(s, 3), 1));
    std::vector<provided_buffer_ring::lease> held;
    std::string got;
    for (const char* m : {"alpha", "beta", "gamma", "delta"}) {
        BOOST_REQUIRE(::send(c, m, std::strlen(m), 0) == static_cast<ssize_t>(std::strlen(m)));
        completion_entry done;
        BOOST_REQUIRE(f.wait_for(1, done));
        BOOST_REQUIRE(done.result > 0);
        BOOST_TEST(done.more());
        BOOST_TEST((done.flags & completion_flags::buffer) != 0);
        BOOST_TEST((done.flags & completion_flags::emulated) != 0);
        auto l = inst.buffers().take(done);
        BOOST_REQUIRE(static_cast<bool>(l));
        got.append(reinterpret_cast<const char*>(l.data().data()), l.data().size());
        held.push_back(std::move(l)); // keep all four leased
    }
    BOOST_TEST(got == "alphabetagammadelta");
    // Every buffer is leased: the next bytes end the stream with ENOBUFS.
    BOOST_REQUIRE(::send(c, "epsilon", 7, 0) == 7);
    completion_entry end;
    BOOST_REQUIRE(f.wait_for(1, end));
    BOOST_TEST(!end.more());
    BOOST_TEST(end.result == -ENOBUFS);
    // Dropping the leases recycles the buffers; submitted again, the stream delivers the waiting bytes.
    held.clear();
    BOOST_TEST(inst.buffers().in_use() == 0u);
    BOOST_REQUIRE(!submit_as(inst, op::recv_multishot(s, 3), 2));
    completion_entry again;
    BOOST_REQUIRE(f.wait_for(2, again));
    BOOST_REQUIRE(again.result == 7);
    {
        auto l = inst.buffers().take(again);
        BOOST_TEST(std::string(reinterpret_cast<const char*>(l.data().data()), l.data().size()) == "epsilon");
    }
    // The peer closes: the stream ends with 0.
    c.reset();
    completion_entry eof;
    do {
        BOOST_REQUIRE(f.wait_for(2, eof));
    } while (eof.more());
    BOOST_TEST(eof.result == 0);
    // A single recv_select takes one buffer the same way.
    auto [c2, s2] = tcp_pair();
    BOOST_REQUIRE(::send(c2, "one", 3, 0) == 3);
    const completion_entry one = inst.call(op::recv_select(s2, 16, 3));
    BOOST_REQUIRE(one.result == 3);
    BOOST_TEST((one.flags & completion_flags::buffer) != 0);
    auto l = inst.buffers().take(one);
    BOOST_TEST(std::string(reinterpret_cast<const char*>(l.data().data()), l.data().size()) == "one");
}

BOOST_DATA_TEST_CASE(epipe_without_sigpipe_and_peer_reset, bdata::make(modes), mode) {
    epoll_instance inst(mode_options(mode));
    feed f{inst};
    pipe_pair p;
    p.r.reset();
    BOOST_TEST(inst.call(sys::write(p.w, "x", 1)).result == -EPIPE); // and the process lives on
    auto [c, s] = tcp_pair();
    linger lg{1, 0};
    BOOST_REQUIRE(::setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
    char b[4];
    BOOST_REQUIRE(!submit_as(inst, sys::recvfrom(s, b, 4, 0), 3));
    inst.run_once();
    c.reset(); // RST
    completion_entry done;
    BOOST_REQUIRE(f.wait_for(3, done));
    BOOST_TEST(done.result == -ECONNRESET);
    BOOST_TEST(inst.call(sys::sendto(s, "x", 1, 0)).result == -EPIPE);
}

// fd exhaustion: the accept stream ends with EMFILE (without `more`), the instance keeps serving.
// In a child: RLIMIT_NOFILE is the process's.
BOOST_AUTO_TEST_CASE(fd_exhaustion_ends_the_accept_stream_with_emfile) {
    loopback_listener l;
    const pid_t pid = ::fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
        int code = 0;
        {
            epoll_instance inst(mode_options(dispatch_mode::inline_mode));
            unique_fd c1(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)); // before the limit
            submit_entry e = op::accept_multishot(l.fd, SOCK_CLOEXEC);
            e.corr_id = 1;
            if (inst.submit(e)) ::_exit(10);
            inst.run_once();
            // Room for nothing more: the next accepted connection has no fd.
            int highest = ::open("/dev/null", O_RDONLY);
            rlimit rl{static_cast<rlim_t>(highest + 1), static_cast<rlim_t>(highest + 1)};
            ::close(highest);
            highest = ::open("/dev/null", O_RDONLY); // fills the last slot
            if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) ::_exit(11);
            if (::connect(c1, reinterpret_cast<const sockaddr*>(&l.addr), sizeof l.addr) != 0) ::_exit(12);
            completion_entry done;
            bool ended = false;
            for (int i = 0; i < 500 && !ended; ++i) {
                completion_entry out[4];
                const std::size_t n = inst.wait_completions(out, 10);
                for (std::size_t k = 0; k < n; ++k)
                    if (out[k].corr_id == 1 && !out[k].more()) {
                        done = out[k];
                        ended = true;
                    }
            }
            if (!ended) code = 13;
            else if (done.result != -EMFILE) code = 14;
            else if (inst.call(op::nop()).result != 0) code = 15;
        }
        ::_exit(code);
    }
    int st = 0;
    BOOST_REQUIRE(::waitpid(pid, &st, 0) == pid);
    BOOST_TEST(WIFEXITED(st));
    BOOST_TEST(WEXITSTATUS(st) == 0, "child status " << WEXITSTATUS(st) << " (13 no end, 14 wrong result)");
}

BOOST_AUTO_TEST_SUITE_END()

// io_uring blocked by a real seccomp filter (EPERM for io_uring_setup/enter/register, as Docker's
// default profile): the snapshot says why, and default_instance and server_instance serve file,
// pipe and loopback TCP work through the epoll backend, every byte checked. Each in a forked
// child: a filter cannot be removed.
namespace {

// File, pipe and TCP work through `inst`, every byte checked; 0 or the step that failed.
template <class I>
int serve_everything(I& inst) {
    if (std::string(inst.backend().name()) != "epoll") return 30;
    temp_dir d;
    const std::string path = d.file("data");
    const std::string data = [] {
        std::string s(256 * 1024, '\0');
        for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>(i * 31 + 7);
        return s;
    }();
    const std::int64_t fd = inst.call(sys::openat(AT_FDCWD, path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600)).result;
    if (fd < 0) return 31;
    if (inst.call(sys::pwrite(static_cast<int>(fd), data.data(), data.size(), 0)).result != static_cast<std::int64_t>(data.size())) return 32;
    std::string back(data.size(), '\0');
    if (inst.call(sys::pread(static_cast<int>(fd), back.data(), back.size(), 0)).result != static_cast<std::int64_t>(data.size())) return 33;
    if (back != data) return 34;
    inst.call(sys::close(static_cast<int>(fd)));
    int p[2];
    if (inst.call(sys::pipe2(p, O_CLOEXEC)).result != 0) return 35;
    if (inst.call(sys::write(p[1], data.data(), 4096)).result != 4096) return 36;
    if (inst.call(sys::read(p[0], back.data(), 4096)).result != 4096 || std::memcmp(back.data(), data.data(), 4096) != 0) return 37;
    inst.call(sys::close(p[0]));
    inst.call(sys::close(p[1]));
    loopback_listener l;
    unique_fd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (::connect(c, reinterpret_cast<const sockaddr*>(&l.addr), sizeof l.addr) != 0) return 38;
    const std::int64_t a = inst.call(sys::accept4(l.fd, nullptr, nullptr, SOCK_CLOEXEC)).result;
    if (a < 0) return 39;
    unique_fd srv(static_cast<int>(a));
    // 64 KiB each way through the instance: sends and recvs that wait for readiness.
    std::size_t sent = 0, got = 0;
    std::string echoed(64 * 1024, '\0');
    while (got < echoed.size()) {
        if (sent < echoed.size()) {
            const ssize_t n = ::send(c, data.data() + sent, std::min<std::size_t>(8192, echoed.size() - sent), 0);
            if (n <= 0) return 40;
            sent += static_cast<std::size_t>(n);
        }
        const std::int64_t n = inst.call(sys::recvfrom(srv, echoed.data() + got, echoed.size() - got, 0)).result;
        if (n <= 0) return 41;
        if (inst.call(sys::sendto(srv, echoed.data() + got, static_cast<std::size_t>(n), 0)).result != n) return 42;
        got += static_cast<std::size_t>(n);
        std::string tmp(static_cast<std::size_t>(n), '\0');
        std::size_t have = 0;
        while (have < tmp.size()) {
            const ssize_t m = ::recv(c, tmp.data() + have, tmp.size() - have, 0);
            if (m <= 0) return 43;
            have += static_cast<std::size_t>(m);
        }
        if (std::memcmp(tmp.data(), data.data() + got - tmp.size(), tmp.size()) != 0) return 44;
    }
    if (std::memcmp(echoed.data(), data.data(), echoed.size()) != 0) return 45;
    return 0;
}

std::vector<std::string> lines;
void keep(std::string_view l) noexcept { lines.emplace_back(l); }

int child_under_seccomp(bool fresh_probe, dispatch_mode mode) {
    if (const int e = block_io_uring(); e != 0) return 20; // support/block_io_uring.hpp
    // A fresh probe names seccomp; a snapshot taken before the filter (inherited) makes the ring's
    // own setup fail with EPERM, which falls back the same way.
    const capabilities caps = fresh_probe ? detect_capabilities() : current_capabilities();
    if (fresh_probe && (caps.io_uring_available || caps.unavailable_reason.find("seccomp") == std::string::npos)) return 21;
    instance_options o;
    o.mode = mode;
    o.caps = &caps;
    o.ring.log = &keep;
    int r = 0;
    {
        default_instance inst(o);
        r = serve_everything(inst);
    }
    if (r) return r;
    if (lines.size() != 1 || lines[0].find("epoll backend") == std::string::npos) return 22;
    if (fresh_probe && lines[0].find("seccomp") == std::string::npos) return 23;
    instance_options so;
    so.caps = &caps;
    so.ring.log = &keep;
    server_instance server(so);
    if (server.features().fixed_files != 0 || server.features().restricted) return 24;
    if (const int e = serve_everything(server)) return e;
    // Its multishot recv into the provided buffer ring, emulated by the epoll backend.
    loopback_listener l;
    unique_fd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (::connect(c, reinterpret_cast<const sockaddr*>(&l.addr), sizeof l.addr) != 0) return 50;
    unique_fd srv(::accept4(l.fd, nullptr, nullptr, SOCK_CLOEXEC));
    submit_entry e = op::recv_multishot(srv, server.buffers().group());
    e.corr_id = 77;
    if (server.submit(e)) return 51;
    if (::send(c, "multishot", 9, 0) != 9) return 52;
    completion_entry out[4];
    bool received = false;
    for (int i = 0; i < 500 && !received; ++i) {
        const std::size_t n = server.wait_completions(out, 10);
        for (std::size_t k = 0; k < n; ++k) {
            if (out[k].corr_id != 77) continue;
            if (out[k].result != 9 || !out[k].more()) return 53;
            auto lease = server.buffers().take(out[k]);
            if (std::string(reinterpret_cast<const char*>(lease.data().data()), lease.data().size()) != "multishot") return 54;
            received = true;
            break;
        }
    }
    if (!received) return 55;
    // What only a ring can do is refused by name, never run some other way: zero-copy send,
    // an accept or open into the (absent) file table, I/O on a direct descriptor.
    const auto submitted = [&](submit_entry z) { // send_zc is not call()able: it may complete twice
        completion_entry got{};
        if (server.submit(op::tagged(z, 78))) return got;
        for (int i = 0; i < 500; ++i)
            for (std::size_t k = 0, n = server.wait_completions(out, 10); k < n; ++k)
                if (out[k].corr_id == 78) return out[k];
        return got;
    };
    if (submitted(op::send_zc(srv, "x", 1)).error() != errc::unsupported) return 56;
    if (server.call(op::accept_direct(l.fd)).error() != errc::unsupported) return 57;
    if (server.call(op::openat_direct(AT_FDCWD, "/", O_RDONLY)).error() != errc::unsupported) return 58;
    char b[4];
    if (server.call(op::read(direct_fd{0}, b, sizeof b)).error() != errc::needs_ring) return 59;
    // The connection still serves after the refusals.
    if (server.call(sys::sendto(srv, "ok", 2, 0, nullptr, 0)).result != 2) return 60;
    return ::recv(c, b, 2, MSG_WAITALL) == 2 && std::memcmp(b, "ok", 2) == 0 ? 0 : 61;
}

} // namespace

BOOST_AUTO_TEST_SUITE(io_uring_blocked_by_seccomp)

BOOST_DATA_TEST_CASE(default_and_server_instance_serve_through_epoll,
                     bdata::make(std::vector<int>{0, 1, 2, 3}), variant) {
    (void)current_capabilities(); // the parent's snapshot, inherited by the child
    const bool fresh = variant < 2;
    const dispatch_mode mode = variant % 2 ? dispatch_mode::inline_mode : dispatch_mode::threaded;
    const pid_t pid = ::fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) ::_exit(child_under_seccomp(fresh, mode));
    int st = 0;
    BOOST_REQUIRE(::waitpid(pid, &st, 0) == pid);
    BOOST_TEST(WIFEXITED(st));
    BOOST_TEST(WEXITSTATUS(st) == 0, "child failed at step " << WEXITSTATUS(st) << (fresh ? " (fresh probe)" : " (inherited snapshot)")
                                                              << " in " << mode << " mode");
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace ksvc::test::epoll
