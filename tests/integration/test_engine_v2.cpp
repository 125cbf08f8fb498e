// Engine v2: the operation space end to end, linked chains, completion targets, the blocking
// facade's paths, owner-thread rings in both modes, and a regression test for each defect the
// engine issue listed. Real rings on this kernel, real pipes, files and loopback sockets.
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/close_range.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <ksvc/executor/op.hpp>
#include <ksvc/executor/sys.hpp>
#include <ksvc/module/presets.hpp>

#include "support/fixtures.hpp"

namespace ksvc::test::engine_v2 {

namespace bdata = boost::unit_test::data;
namespace nr = ksvc::syscalls::native;
using namespace std::chrono_literals;

using owner_instance = instance<probe_router, owner_thread_io_uring, fixed_pool, eventfd_notifier, heap_buffers>;

//! Fails the whole process if the scope is still alive after `limit` (a hang must not wait for
//! ctest's timeout, and must say where it was).
struct watchdog {
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
    std::thread t;
    watchdog(std::chrono::seconds limit, const char* what) {
        t = std::thread([this, limit, what] {
            std::unique_lock lock(m);
            if (!cv.wait_for(lock, limit, [this] { return done; })) {
                std::fprintf(stderr, "FATAL: %s did not finish within %lld s\n", what, static_cast<long long>(limit.count()));
                std::_Exit(1);
            }
        });
    }
    ~watchdog() {
        {
            std::lock_guard lock(m);
            done = true;
        }
        cv.notify_one();
        t.join();
    }
};

inline std::pair<unique_fd, unique_fd> make_pipe() {
    int p[2];
    BOOST_REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    return {unique_fd(p[0]), unique_fd(p[1])};
}

template <class I>
std::map<std::uint64_t, std::vector<completion_entry>> by_id(const std::vector<completion_entry>& v) {
    std::map<std::uint64_t, std::vector<completion_entry>> m;
    for (const auto& c : v) m[c.corr_id].push_back(c);
    return m;
}

instance_options mode_options(dispatch_mode m) {
    instance_options o;
    o.mode = m;
    return o;
}

const std::vector<dispatch_mode> modes = {dispatch_mode::threaded, dispatch_mode::inline_mode};


BOOST_AUTO_TEST_SUITE(engine_v2)

// ---- the two hangs ----------------------------------------------------------------------------

BOOST_DATA_TEST_CASE(call_returns_while_the_sink_is_full, bdata::make(modes), mode) {
    instance_options o = mode_options(mode);
    o.sink_capacity = 4;
    default_instance inst(o);
    unique_fd null(::open("/dev/null", O_WRONLY | O_CLOEXEC));
    const char byte = 'x';
    for (std::uint64_t id = 1; id <= 8; ++id) BOOST_REQUIRE(!inst.submit(op::tagged(sys::write(null, &byte, 1), id)));
    if (mode == dispatch_mode::threaded) std::this_thread::sleep_for(50ms); // let the sink fill
    {
        watchdog dog(10s, "call() with a full sink");
        for (int i = 0; i < 3; ++i) {
            const completion_entry c = inst.call(sys::write(null, &byte, 1));
            BOOST_TEST(c.result == 1, c);
            const completion_entry t2 = inst.call(sys::fcntl(null, F_GETFL)); // Tier 2 too
            BOOST_TEST(t2.ok(), t2);
        }
    }
    // Nothing submitted was lost or duplicated meanwhile.
    const auto got = take(inst, 8);
    BOOST_TEST(got.size() == 8u);
    std::vector<int> seen(9, 0);
    for (const auto& c : got) {
        BOOST_TEST(c.result == 1, c);
        BOOST_REQUIRE(c.corr_id >= 1u);
        BOOST_REQUIRE(c.corr_id <= 8u);
        ++seen[c.corr_id];
    }
    for (int i = 1; i <= 8; ++i) BOOST_TEST(seen[i] == 1, "corr " << i);
}

// SINGLE_ISSUER (alone, with DEFER_TASKRUN, and the typed owner-thread ring) serves in both
// modes: the ring is enabled by, and driven from, the thread that runs the loop.
BOOST_DATA_TEST_CASE(owner_thread_rings_serve_in_both_modes,
                     bdata::make(modes) * bdata::make({0u, 1u, 2u}), mode, variant) {
    temp_dir dir;
    const std::string path = dir.file("f");
    {
        unique_fd w(::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
        BOOST_REQUIRE(::write(w, "owner thread", 12) == 12);
    }
    unique_fd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    auto exercise = [&](auto& inst) {
        watchdog dog(10s, "owner-thread ring");
        char buf[32] = {};
        const completion_entry c = inst.call(sys::pread(f, buf, sizeof buf, 0));
        BOOST_TEST(c.result == 12, c);
        BOOST_TEST(std::string(buf, 12) == "owner thread");
        for (std::uint64_t id = 1; id <= 16; ++id) BOOST_REQUIRE(!inst.submit(op::tagged(sys::pread(f, buf, 5, 6), id)));
        const auto got = take(inst, 16);
        BOOST_TEST(got.size() == 16u);
        for (const auto& g : got) BOOST_TEST(g.result == 5, g);
        BOOST_TEST(inst.features().owner_thread);
        BOOST_TEST((inst.features().setup_flags & IORING_SETUP_SINGLE_ISSUER) != 0u);
    };
    instance_options o = mode_options(mode);
    if (variant == 2) {
        owner_instance inst(o);
        exercise(inst);
        BOOST_TEST((inst.features().setup_flags & IORING_SETUP_DEFER_TASKRUN) != 0u);
        BOOST_TEST(inst.features().registered_ring_fd);
    } else {
        o.ring.setup_flags = IORING_SETUP_SINGLE_ISSUER | (variant == 1 ? IORING_SETUP_DEFER_TASKRUN : 0u);
        default_instance inst(o);
        exercise(inst);
    }
}

// Inline mode on a thread-bound ring: the first thread that drives it keeps it. Another thread
// is refused clearly (with a registered ring fd its enter would name a ring in *its* table),
// and the owner keeps serving. A plain ring may change hands between run_once() calls.
BOOST_AUTO_TEST_CASE(an_inline_thread_bound_ring_refuses_a_second_driver) {
    owner_instance inst(mode_options(dispatch_mode::inline_mode));
    unique_fd null(::open("/dev/null", O_WRONLY | O_CLOEXEC));
    const char byte = 'x';
    BOOST_TEST(inst.call(sys::write(null, &byte, 1)).result == 1); // binds the ring to this thread
    BOOST_REQUIRE(!inst.submit(op::tagged(sys::write(null, &byte, 1), 7)));
    std::thread other([&] {
        watchdog dog(10s, "a second driver of a thread-bound inline ring");
        BOOST_TEST(!inst.loop().may_drive_here());
        BOOST_TEST(inst.run_once(true, 1000) == 0u);
        completion_entry out[4];
        BOOST_TEST(inst.wait_completions(out, -1) == 0u); // returns at once, never spins
        const completion_entry c = inst.call(op::tagged(sys::write(null, &byte, 1), 9));
        BOOST_TEST(c.error() == make_error_code(errc::not_owner), c);
        BOOST_TEST(c.corr_id == 9u);
    });
    other.join();
    const auto got = take(inst, 1);
    BOOST_REQUIRE(got.size() == 1u); // the entry the owner queued is still the owner's to run
    BOOST_TEST(got[0].corr_id == 7u);
    BOOST_TEST(got[0].result == 1);

    default_instance plain(mode_options(dispatch_mode::inline_mode));
    BOOST_TEST(plain.call(sys::write(null, &byte, 1)).result == 1);
    std::thread next([&] {
        BOOST_TEST(plain.loop().may_drive_here());
        BOOST_TEST(plain.call(sys::write(null, &byte, 1)).result == 1);
    });
    next.join();
}

// The dispatch mode as part of the type: fixed modes ignore nothing silently.
using inline_typed = instance<probe_router, basic_io_uring, fixed_pool, eventfd_notifier, heap_buffers,
                              ring_completion_sink, process_shared_page, inline_dispatch>;
using inline_worker_typed = instance<probe_router, basic_io_uring, inline_worker, eventfd_notifier, heap_buffers,
                                     ring_completion_sink, process_shared_page, inline_dispatch>;
using inline_worker_any = instance<probe_router, basic_io_uring, inline_worker, eventfd_notifier, heap_buffers>;
static_assert(inline_typed::fixed_mode == dispatch_mode::inline_mode);
static_assert(!default_instance::fixed_mode.has_value());

template <class I>
std::string construction_error(const instance_options& o) {
    try {
        I inst(o);
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return {};
}

BOOST_AUTO_TEST_CASE(a_dispatch_mode_fixed_by_the_type_refuses_a_contradicting_option) {
    {
        inline_typed inst; // no option: the type's mode
        BOOST_TEST((inst.loop().mode() == dispatch_mode::inline_mode));
        auto [r, w] = make_pipe();
        BOOST_TEST(inst.call(sys::write(w, "ab", 2)).result == 2);
        char buf[2];
        BOOST_TEST(inst.call(sys::read(r, buf, 2)).result == 2);
    }
    {
        inline_typed inst(mode_options(dispatch_mode::inline_mode)); // repeating it is fine
        BOOST_TEST((inst.loop().mode() == dispatch_mode::inline_mode));
    }
    const std::string why = construction_error<inline_typed>(mode_options(dispatch_mode::threaded));
    BOOST_TEST(why.find("instance_options::mode = threaded contradicts the instance type") != std::string::npos, why);
    BOOST_TEST(why.find("fixes inline_mode dispatch") != std::string::npos, why);

    // inline_worker runs Tier 2 on the dispatching thread: threaded dispatch is refused when the
    // options pick it (the type cannot: see the compile-fail test), inline dispatch serves.
    const std::string worker_why = construction_error<inline_worker_any>({});
    BOOST_TEST(worker_why.find("inline_worker") != std::string::npos, worker_why);
    inline_worker_typed inst;
    auto [r, w] = make_pipe();
    BOOST_REQUIRE(inst.router().route(nr::dup).tier == tier::worker_pool);
    BOOST_REQUIRE(!inst.submit(op::tagged(sys::dup(w), 1)));
    const auto got = take(inst, 1);
    BOOST_REQUIRE(got.size() == 1u);
    BOOST_TEST(got[0].result >= 0, got[0]);
    unique_fd copy(static_cast<int>(got[0].result));
    BOOST_TEST(::write(copy, "q", 1) == 1); // a real duplicate of the pipe's write end
    char c = 0;
    BOOST_TEST(::read(r, &c, 1) == 1);
    BOOST_TEST(c == 'q');
    BOOST_TEST(inst.loop().executed(tier::worker_pool) == 1u);
}

// ---- stop() ------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(two_threads_stop_at_once) {
    for (int round = 0; round < 20; ++round) {
        default_instance inst;
        auto [r, w] = make_pipe();
        char buf[8];
        BOOST_REQUIRE(!inst.submit(op::tagged(sys::read(r, buf, sizeof buf), 1)));
        std::this_thread::sleep_for(1ms);
        watchdog dog(10s, "two concurrent stop()");
        std::thread a([&] { inst.stop(); });
        std::thread b([&] { inst.stop(); });
        a.join();
        b.join();
        BOOST_TEST(inst.loop().drained());
        completion_entry out[4];
        BOOST_TEST(inst.poll(out) == 1u);
        BOOST_TEST(out[0].result == -ECANCELED, out[0]);
    }
}

// Inline: stop() from another thread while the owner is blocked in call() or in run_once()
// only asks; the owner drains (no second thread ever drives the loop).
BOOST_AUTO_TEST_CASE(inline_stop_from_another_thread_while_the_owner_is_in_call) {
    default_instance inst(mode_options(dispatch_mode::inline_mode));
    auto [r, w] = make_pipe();
    std::thread stopper([&] {
        std::this_thread::sleep_for(50ms);
        inst.stop();
    });
    char buf[8];
    completion_entry c;
    {
        watchdog dog(10s, "inline call() across stop()");
        c = inst.call(sys::read(r, buf, sizeof buf)); // Tier 1, through the loop: blocked
    }
    stopper.join();
    BOOST_TEST(c.result == -ECANCELED, c);
    BOOST_TEST(inst.loop().drained());
    BOOST_TEST((inst.submit(sys::getpid()) == errc::shut_down));
}

BOOST_AUTO_TEST_CASE(inline_stop_from_another_thread_while_the_owner_runs) {
    default_instance inst(mode_options(dispatch_mode::inline_mode));
    auto [r, w] = make_pipe();
    char buf[8];
    BOOST_REQUIRE(!inst.submit(op::tagged(sys::read(r, buf, sizeof buf), 3)));
    std::thread stopper([&] {
        std::this_thread::sleep_for(50ms);
        inst.stop();
    });
    {
        watchdog dog(10s, "inline run() across stop()");
        inst.run(); // returns once stop() asked, after the owner drained
    }
    stopper.join();
    completion_entry out[4];
    BOOST_TEST(inst.poll(out) == 1u);
    BOOST_TEST(out[0].result == -ECANCELED, out[0]);
}

// ---- syscall semantics the SQE does not have -----------------------------------------------------

BOOST_DATA_TEST_CASE(splice_and_tee_refuse_flags_the_syscall_does_not_know, bdata::make(modes), mode) {
    default_instance inst(mode_options(mode));
    auto [r1, w1] = make_pipe();
    auto [r2, w2] = make_pipe();
    BOOST_REQUIRE(::write(w1, "abc", 3) == 3);
    constexpr unsigned fd_in_fixed = 1u << 31; // SPLICE_F_FD_IN_FIXED
    const auto s = inst.call(sys::make(nr::splice, int(r1), nullptr, int(w2), nullptr, 3, fd_in_fixed));
    BOOST_TEST(s.result == direct(nr::splice, int(r1), nullptr, int(w2), nullptr, 3, fd_in_fixed));
    BOOST_TEST(s.result == -EINVAL);
    const auto t = inst.call(sys::make(nr::tee, int(r1), int(w2), 3, fd_in_fixed));
    BOOST_TEST(t.result == -EINVAL);
    char buf[4];
    BOOST_TEST(::read(r1, buf, sizeof buf) == 3); // nothing was moved
}

BOOST_DATA_TEST_CASE(sendto_with_an_address_longer_than_sockaddr_storage_is_einval, bdata::make(modes), mode) {
    default_instance inst(mode_options(mode));
    unique_fd u(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    unique_fd rx(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    BOOST_REQUIRE(::bind(rx, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    BOOST_REQUIRE(::getsockname(rx, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    alignas(8) char big[sizeof(sockaddr_storage) + 64] = {};
    std::memcpy(big, &a, sizeof a);
    const auto too_long = static_cast<socklen_t>(sizeof big);
    const auto c = inst.call(sys::sendto(u, "x", 1, 0, reinterpret_cast<sockaddr*>(big), too_long));
    BOOST_TEST(c.result == direct(nr::sendto, int(u), "x", 1, 0, big, too_long));
    BOOST_TEST(c.result == -EINVAL);
    const auto ok = inst.call(sys::sendto(u, "y", 1, 0, reinterpret_cast<sockaddr*>(&a), sizeof a));
    BOOST_TEST(ok.result == 1, ok);
}

//! A page nobody may touch: a pointer into it is the kernel's to reject.
struct no_access_page {
    void* p = ::mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    no_access_page() { BOOST_REQUIRE(p != MAP_FAILED); }
    ~no_access_page() { ::munmap(p, 4096); }
    template <class T>
    T* as() const { return static_cast<T*>(p); }
};

BOOST_DATA_TEST_CASE(bad_user_pointers_give_efault_not_a_crash, bdata::make(modes), mode) {
    default_instance inst(mode_options(mode));
    no_access_page bad;
    // Tier 0 answers write into user memory: from call() (the caller's thread) and from the
    // loop (submit()).
    const submit_entry tier0[] = {
        sys::uname(bad.as<struct utsname>()),
        sys::getrlimit(RLIMIT_NOFILE, bad.as<struct rlimit>()),
        sys::make(nr::time, bad.p),
        sys::make(nr::clock_gettime, CLOCK_MONOTONIC, bad.p),
        sys::make(nr::gettimeofday, bad.p, nullptr),
    };
    for (const submit_entry& e : tier0) {
        BOOST_TEST_CONTEXT("syscall " << e.nr) {
            BOOST_TEST((inst.router().route(e.nr).tier == tier::shared_page));
            BOOST_TEST(inst.call(e).result == -EFAULT);
            BOOST_REQUIRE(!inst.submit(op::tagged(e, 100 + e.nr)));
            const auto got = take(inst, 1);
            BOOST_REQUIRE(got.size() == 1u);
            BOOST_TEST(got[0].result == -EFAULT, got[0]);
        }
    }
    // recvfrom's *addrlen: the syscall receives, then fails storing the address length.
    unique_fd rx(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    unique_fd tx(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    BOOST_REQUIRE(::bind(rx, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    BOOST_REQUIRE(::getsockname(rx, reinterpret_cast<sockaddr*>(&a), &alen) == 0);
    for (int i = 0; i < 2; ++i)
        BOOST_REQUIRE(::sendto(tx, "dg", 2, 0, reinterpret_cast<sockaddr*>(&a), sizeof a) == 2);
    sockaddr_in from{};
    char buf[8];
    const auto c = inst.call(sys::recvfrom(rx, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), bad.as<socklen_t>()));
    BOOST_TEST(c.result == direct(nr::recvfrom, int(rx), buf, sizeof buf, 0, &from, bad.p));
    BOOST_TEST(c.result == -EFAULT);
    // splice's offsets: read before the call, stored after it.
    auto [pr, pw] = make_pipe();
    temp_dir dir;
    const std::string path = dir.file("s");
    unique_fd file(::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600));
    BOOST_REQUIRE(::write(file, "splice me", 9) == 9);
    const auto s = inst.call(sys::make(nr::splice, int(file), bad.p, int(pw), nullptr, 9, 0));
    BOOST_TEST(s.result == direct(nr::splice, int(file), bad.p, int(pw), nullptr, 9, 0));
    BOOST_TEST(s.result == -EFAULT);
}

// readv/writev at the file position need IORING_FEAT_RW_CUR_POS: on a kernel without it (an
// injected 5.5) they run on a worker, and preadv2 with offset -1 too — with the same results.
BOOST_DATA_TEST_CASE(vectored_io_at_the_position_without_rw_cur_pos, bdata::make(modes), mode) {
    const capabilities caps = current_capabilities().assume({5, 5});
    BOOST_REQUIRE(!caps.has_feature(ring_feature::rw_cur_pos));
    instance_options o = mode_options(mode);
    o.caps = &caps;
    default_instance inst(o);
    BOOST_TEST((inst.router().route(nr::readv).tier == tier::worker_pool));
    BOOST_TEST((inst.router().route(nr::preadv2).tier == tier::io_uring)); // positional form stays
    temp_dir dir;
    const std::string path = dir.file("v");
    unique_fd f(::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600));
    char a[] = "0123456789";
    iovec iov{a, 10};
    BOOST_TEST(inst.call(sys::writev(f, &iov, 1)).result == 10);
    BOOST_TEST(::lseek(f, 0, SEEK_CUR) == 10);
    BOOST_REQUIRE(::lseek(f, 2, SEEK_SET) == 2);
    char b[4] = {};
    iovec in{b, 4};
    const auto c = inst.call(sys::preadv2(f, &in, 1, -1, 0)); // the position: needs the worker here
    BOOST_TEST(c.result == 4, c);
    BOOST_TEST(std::string(b, 4) == "2345");
    BOOST_TEST(::lseek(f, 0, SEEK_CUR) == 6);
}

BOOST_DATA_TEST_CASE(close_of_an_io_uring_fd_succeeds_as_the_syscall_does, bdata::make(modes), mode) {
    default_instance inst(mode_options(mode));
    io_uring ring;
    BOOST_REQUIRE(io_uring_queue_init(4, &ring, 0) == 0);
    const int fd = ring.ring_fd;
    const auto c = inst.call(sys::close(fd));
    BOOST_TEST(c.result == 0, c);
    BOOST_TEST(::fcntl(fd, F_GETFD) == -1);
    BOOST_TEST(errno == EBADF);
    ring.ring_fd = -1; // already closed
    ::munmap(ring.sq.ring_ptr, ring.sq.ring_sz);
    if (ring.cq.ring_ptr != ring.sq.ring_ptr) ::munmap(ring.cq.ring_ptr, ring.cq.ring_sz);
    ::munmap(ring.sq.sqes, ring.sq.ring_entries * sizeof(io_uring_sqe));
}

// ksvc maps its rings itself (no MAP_POPULATE): the struct io_uring it fills must be the one
// liburing fills for the same ring — liburing's inline helpers and io_uring_queue_exit use it —
// and a ring mapped so must work (a NOP and a pipe read through it).
BOOST_DATA_TEST_CASE(map_ring_fills_the_ring_as_liburing_does,
                     bdata::make({0u, unsigned{IORING_SETUP_CQSIZE}, unsigned{IORING_SETUP_SQE128 | IORING_SETUP_CQE32}}),
                     extra_flags) {
    io_uring_params p{};
    p.flags = extra_flags;
    if (extra_flags & IORING_SETUP_CQSIZE) p.cq_entries = 64;
    const long fd = ::syscall(__NR_io_uring_setup, 8, &p);
    BOOST_REQUIRE_MESSAGE(fd >= 0, "io_uring_setup: " << std::strerror(errno));
    io_uring ours, theirs;
    BOOST_REQUIRE(detail::map_ring(static_cast<int>(fd), p, ours) == 0);
    io_uring_params q = p;
    BOOST_REQUIRE(io_uring_queue_mmap(static_cast<int>(fd), &q, &theirs) == 0);
    const auto at = [](const void* base, const void* field) {
        return static_cast<const char*>(field) - static_cast<const char*>(base);
    };
    BOOST_TEST(ours.sq.ring_sz == theirs.sq.ring_sz);
    BOOST_TEST(ours.cq.ring_sz == theirs.cq.ring_sz);
    BOOST_TEST((ours.sq.ring_ptr == ours.cq.ring_ptr) == (theirs.sq.ring_ptr == theirs.cq.ring_ptr));
    for (auto [o, t] : {std::pair{ours.sq.khead, theirs.sq.khead}, {ours.sq.ktail, theirs.sq.ktail},
                        {ours.sq.kring_mask, theirs.sq.kring_mask}, {ours.sq.kring_entries, theirs.sq.kring_entries},
                        {ours.sq.kflags, theirs.sq.kflags}, {ours.sq.kdropped, theirs.sq.kdropped},
                        {ours.sq.array, theirs.sq.array}})
        BOOST_TEST(at(ours.sq.ring_ptr, o) == at(theirs.sq.ring_ptr, t));
    for (auto [o, t] : {std::pair{ours.cq.khead, theirs.cq.khead}, {ours.cq.ktail, theirs.cq.ktail},
                        {ours.cq.kring_mask, theirs.cq.kring_mask}, {ours.cq.kring_entries, theirs.cq.kring_entries},
                        {ours.cq.kflags, theirs.cq.kflags}, {ours.cq.koverflow, theirs.cq.koverflow}})
        BOOST_TEST(at(ours.cq.ring_ptr, o) == at(theirs.cq.ring_ptr, t));
    BOOST_TEST(at(ours.cq.ring_ptr, ours.cq.cqes) == at(theirs.cq.ring_ptr, theirs.cq.cqes));
    BOOST_TEST(ours.sq.ring_mask == theirs.sq.ring_mask);
    BOOST_TEST(ours.sq.ring_entries == theirs.sq.ring_entries);
    BOOST_TEST(ours.cq.ring_mask == theirs.cq.ring_mask);
    BOOST_TEST(ours.cq.ring_entries == theirs.cq.ring_entries);
    BOOST_TEST(ours.flags == theirs.flags);
    BOOST_TEST(ours.ring_fd == theirs.ring_fd);
    BOOST_TEST(ours.features == p.features);
    BOOST_TEST(ours.sq.ring_entries == p.sq_entries);
    for (unsigned i = 0; i < ours.sq.ring_entries; ++i) BOOST_TEST_REQUIRE(ours.sq.array[i] == i);
    BOOST_TEST(ours.cq.ring_entries == p.cq_entries);
    // liburing's copy goes; its fd is ours.
    ::munmap(theirs.sq.sqes, theirs.sq.ring_entries * ((p.flags & IORING_SETUP_SQE128) ? 128 : sizeof(io_uring_sqe)));
    ::munmap(theirs.sq.ring_ptr, theirs.sq.ring_sz);
    if (theirs.cq.ring_ptr != theirs.sq.ring_ptr) ::munmap(theirs.cq.ring_ptr, theirs.cq.ring_sz);

    pipe_pair pp;
    BOOST_REQUIRE(::write(pp.w, "ring", 4) == 4);
    char b[4] = {};
    io_uring_prep_nop(io_uring_get_sqe(&ours));
    io_uring_sqe* rd = io_uring_get_sqe(&ours);
    io_uring_prep_read(rd, pp.r, b, 4, 0);
    rd->user_data = 7;
    BOOST_REQUIRE(io_uring_submit_and_wait(&ours, 2) == 2);
    int seen = 0;
    io_uring_cqe* cqe;
    while (io_uring_peek_cqe(&ours, &cqe) == 0) {
        if (cqe->user_data == 7) BOOST_TEST(cqe->res == 4);
        else BOOST_TEST(cqe->res == 0);
        io_uring_cqe_seen(&ours, cqe);
        ++seen;
    }
    BOOST_TEST(seen == 2);
    BOOST_TEST(std::string(b, 4) == "ring");
    io_uring_queue_exit(&ours); // unmaps what map_ring mapped and closes the fd
    BOOST_TEST(::fcntl(static_cast<int>(fd), F_GETFD) == -1);
}

// IORING_SETUP_NO_SQARRAY (6.6) is newer than liburing 2.3, but a user may ask for it through
// io_uring_options::setup_flags: the ring has no SQ array (its offset is 0, where the SQ head
// lives), so nothing may be written there, and SQEs go by the tail alone.
BOOST_AUTO_TEST_CASE(map_ring_serves_a_ring_without_an_sq_array) {
    io_uring_params p{};
    p.flags = 1u << 16; // IORING_SETUP_NO_SQARRAY
    const long fd = ::syscall(__NR_io_uring_setup, 8, &p);
    if (fd < 0 && errno == EINVAL) {
        BOOST_TEST_MESSAGE("skipped: this kernel has no IORING_SETUP_NO_SQARRAY");
        return;
    }
    BOOST_REQUIRE_MESSAGE(fd >= 0, "io_uring_setup: " << std::strerror(errno));
    io_uring ring;
    BOOST_REQUIRE(detail::map_ring(static_cast<int>(fd), p, ring) == 0);
    BOOST_TEST(ring.sq.array == nullptr);
    BOOST_TEST(*ring.sq.khead == 0u); // not overwritten by an identity array
    BOOST_TEST(*ring.sq.ktail == 0u);
    for (int round = 0; round < 3; ++round) { // past the ring's 8 entries: indices wrap
        for (int i = 0; i < 4; ++i) {
            io_uring_sqe* sqe = io_uring_get_sqe(&ring);
            io_uring_prep_nop(sqe);
            sqe->user_data = static_cast<std::uint64_t>(round * 4 + i + 1);
        }
        BOOST_REQUIRE(io_uring_submit_and_wait(&ring, 4) == 4);
        unsigned seen = 0;
        io_uring_cqe* cqe;
        while (io_uring_peek_cqe(&ring, &cqe) == 0) {
            BOOST_TEST(cqe->res == 0);
            BOOST_TEST(cqe->user_data == static_cast<std::uint64_t>(round * 4 + seen + 1));
            io_uring_cqe_seen(&ring, cqe);
            ++seen;
        }
        BOOST_TEST(seen == 4u);
    }
    io_uring_queue_exit(&ring);
}

// perf_event_open(pid 0) and close_range(CLOSE_RANGE_UNSHARE) act on the calling thread: call()
// runs them there, submit() refuses them (a pool thread would act on itself).
BOOST_DATA_TEST_CASE(thread_bound_calls_run_on_the_caller_or_are_refused, bdata::make(modes), mode) {
    // On a thread of its own (the instance's owner in inline mode): the unshared fd table stays
    // that thread's. Unsharing the test's main thread would leave its io-wq workers, created
    // earlier, on the old table, and later requests punted to them would see other fds.
    std::thread t([mode] {
        default_instance inst(mode_options(mode));
        const submit_entry unshare = sys::make(nr::close_range, ~0u - 1, ~0u, CLOSE_RANGE_UNSHARE);
        const std::uint64_t before = inst.loop().executed_by_callers(tier::worker_pool);
        const auto c = inst.call(unshare);
        BOOST_TEST(c.result == 0, c);
        BOOST_TEST(inst.loop().executed_by_callers(tier::worker_pool) == before + 1);
        BOOST_REQUIRE(!inst.submit(op::tagged(unshare, 7)));
        const auto got = take(inst, 1);
        BOOST_REQUIRE(got.size() == 1u);
        BOOST_TEST((got[0].error() == errc::thread_bound), got[0]);
        const submit_entry other_pid = sys::make(nr::close_range, ~0u - 1, ~0u, 0); // no UNSHARE: any thread
        BOOST_TEST(inst.call(other_pid).result == 0);
    });
    t.join();
}

// A zero-copy send completes twice: the result (`more`), then the notification (`notif`) once
// the kernel let go of the buffer. Over loopback the kernel always copies.
BOOST_DATA_TEST_CASE(send_zc_reports_the_result_then_the_notification, bdata::make(modes), mode) {
    default_instance inst(mode_options(mode));
    if (inst.router().route(static_cast<std::uint32_t>(operation::send_zc)).tier != tier::io_uring) {
        BOOST_TEST_MESSAGE("SEND_ZC absent on this kernel: refused, as documented");
        return;
    }
    auto [client, server] = tcp_pair();
    static const char data[] = "zero copy";
    BOOST_REQUIRE(!inst.submit(op::tagged(op::send_zc(client, data, 9), 5)));
    const auto got = take(inst, 2);
    BOOST_REQUIRE(got.size() == 2u);
    BOOST_TEST(got[0].result == 9, got[0]);
    BOOST_TEST(got[0].more());
    BOOST_TEST(!(got[0].flags & completion_flags::notif));
    BOOST_TEST((got[1].flags & completion_flags::notif) != 0u, got[1]);
    BOOST_TEST(!got[1].more());
    BOOST_TEST(got[1].result == 0);
    char buf[16];
    BOOST_TEST(::recv(server, buf, sizeof buf, 0) == 9);
    BOOST_TEST(inst.backend().inflight() == 0u);
}

// ---- operations ----------------------------------------------------------------------------------

BOOST_DATA_TEST_CASE(nop_timeout_and_poll, bdata::make(modes), mode) {
    default_instance inst(mode_options(mode));
    BOOST_TEST(inst.call(op::nop()).result == 0);
    const auto t0 = std::chrono::steady_clock::now();
    const auto t = inst.call(op::timeout(30ms));
    BOOST_TEST(t.result == -ETIME, t);
    BOOST_TEST((std::chrono::steady_clock::now() - t0 >= 25ms));
    auto [r, w] = make_pipe();
    BOOST_REQUIRE(!inst.submit(op::tagged(op::poll(r, POLLIN), 1)));
    BOOST_TEST(take(inst, 1, 50ms).empty()); // nothing to read yet
    BOOST_REQUIRE(::write(w, "p", 1) == 1);
    const auto got = take(inst, 1);
    BOOST_REQUIRE(got.size() == 1u);
    BOOST_TEST((got[0].result & POLLIN) != 0, got[0]);
}

BOOST_DATA_TEST_CASE(link_timeout_and_call_deadline_cancel_a_blocked_read, bdata::make(modes), mode) {
    default_instance inst(mode_options(mode));
    auto [r, w] = make_pipe();
    char buf[8];
    const submit_entry chain[] = {op::tagged(op::linked(sys::read(r, buf, sizeof buf)), 1),
                                  op::tagged(op::link_timeout(30ms), 2)};
    BOOST_REQUIRE(!inst.submit(chain));
    const auto got = by_id<default_instance>(take(inst, 2));
    BOOST_REQUIRE(got.count(1));
    BOOST_REQUIRE(got.count(2));
    BOOST_TEST(got.at(1)[0].result == -ECANCELED, got.at(1)[0]);
    BOOST_TEST(got.at(2)[0].result == -ETIME, got.at(2)[0]);
    // call() with a deadline is the same link timeout.
    const auto t0 = std::chrono::steady_clock::now();
    const auto c = inst.call(sys::read(r, buf, sizeof buf), 40ms);
    BOOST_TEST(c.result == -ECANCELED, c);
    BOOST_TEST((std::chrono::steady_clock::now() - t0 >= 35ms));
    // And a call that finishes first is not disturbed.
    BOOST_REQUIRE(::write(w, "ok", 2) == 2);
    BOOST_TEST(inst.call(sys::read(r, buf, sizeof buf), 1000ms).result == 2);
}

// poll_multishot natively, and emulated (an injected 5.10: before IORING_POLL_ADD_MULTI) —
// the consumer sees the same stream: one completion per event with `more`, and a last one
// without `more` that says why it ended (-ECANCELED here).
BOOST_DATA_TEST_CASE(poll_multishot_native_and_emulated, bdata::make(modes) * bdata::make({false, true}), mode, emulate) {
    const capabilities caps = emulate ? current_capabilities().assume({5, 10}) : current_capabilities();
    instance_options o = mode_options(mode);
    o.caps = &caps;
    default_instance inst(o);
    const route_info r = inst.router().route(static_cast<std::uint32_t>(operation::poll_multishot));
    BOOST_REQUIRE(r.tier == tier::io_uring);
    BOOST_TEST(r.emulated == emulate);
    auto [rd, wr] = make_pipe();
    BOOST_REQUIRE(!inst.submit(op::tagged(op::poll_multishot(rd, POLLIN), 9)));
    BOOST_TEST((inst.call(op::poll_multishot(rd, POLLIN)).error() == errc::multishot_call));
    for (int i = 0; i < 3; ++i) {
        BOOST_REQUIRE(::write(wr, "e", 1) == 1);
        auto got = take(inst, 1);
        BOOST_REQUIRE_MESSAGE(!got.empty(), "event " << i);
        char c;
        BOOST_REQUIRE(::read(rd, &c, 1) == 1); // not readable again until the next write
        // Native multishot poll fires once per wake-up; the emulation re-arms a one-shot poll,
        // which is level-triggered: it may fire again before the byte was read (documented).
        for (;;) { // until quiet
            const auto extra = take(inst, 1, 30ms);
            if (extra.empty()) break;
            got.insert(got.end(), extra.begin(), extra.end());
        }
        if (!emulate) BOOST_TEST(got.size() == 1u, "event " << i);
        for (const auto& g : got) {
            BOOST_TEST(g.corr_id == 9u);
            BOOST_TEST((g.result & POLLIN) != 0, g);
            BOOST_TEST(g.more());
            BOOST_TEST(static_cast<bool>(g.flags & completion_flags::emulated) == emulate);
        }
    }
    BOOST_TEST(take(inst, 1, 30ms).empty()); // nothing ready: the stream is quiet
    BOOST_REQUIRE(!inst.submit(op::tagged(op::cancel(9), 10)));
    std::vector<completion_entry> rest;
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    auto ended = [&] {
        bool cancel = false, last = false;
        for (const auto& c : rest) {
            cancel = cancel || c.corr_id == 10;
            last = last || (c.corr_id == 9 && !c.more());
        }
        return cancel && last;
    };
    while (!ended() && std::chrono::steady_clock::now() < deadline) {
        const auto more = take(inst, 1, 20ms);
        rest.insert(rest.end(), more.begin(), more.end());
    }
    const auto got = by_id<default_instance>(rest);
    BOOST_REQUIRE(got.count(10));
    BOOST_TEST(got.at(10)[0].result == 1); // one request asked to stop
    BOOST_REQUIRE(got.count(9));
    const completion_entry& last = got.at(9).back();
    BOOST_TEST(!last.more());
    BOOST_TEST(last.result == -ECANCELED, last);
    BOOST_TEST(inst.backend().inflight() == 0u);
}

BOOST_DATA_TEST_CASE(cancel_by_corr_id_by_fd_and_all, bdata::make(modes), mode) {
    default_instance inst(mode_options(mode));
    auto [r1, w1] = make_pipe();
    auto [r2, w2] = make_pipe();
    char b[4][4];
    BOOST_REQUIRE(!inst.submit(op::tagged(sys::read(r1, b[0], 4), 1)));
    BOOST_REQUIRE(!inst.submit(op::tagged(sys::read(r1, b[1], 4), 2)));
    BOOST_REQUIRE(!inst.submit(op::tagged(sys::read(r2, b[2], 4), 3)));
    BOOST_REQUIRE(!inst.submit(op::tagged(sys::read(r2, b[3], 4), 4)));
    BOOST_TEST(take(inst, 1, 50ms).empty());
    BOOST_TEST(inst.call(op::cancel(12345)).result == -ENOENT);
    BOOST_REQUIRE(!inst.submit(op::tagged(op::cancel_fd(r1), 10)));
    auto got = by_id<default_instance>(take(inst, 3));
    BOOST_REQUIRE(got.count(10));
    BOOST_TEST(got.at(10)[0].result == 2);
    BOOST_TEST(got.at(1)[0].result == -ECANCELED);
    BOOST_TEST(got.at(2)[0].result == -ECANCELED);
    BOOST_REQUIRE(!inst.submit(op::tagged(op::cancel(3), 11)));
    got = by_id<default_instance>(take(inst, 2));
    BOOST_TEST(got.at(11)[0].result == 1);
    BOOST_TEST(got.at(3)[0].result == -ECANCELED);
    BOOST_REQUIRE(!inst.submit(op::tagged(op::cancel_all(), 12)));
    got = by_id<default_instance>(take(inst, 2));
    BOOST_TEST(got.at(12)[0].result == 1);
    BOOST_TEST(got.at(4)[0].result == -ECANCELED);
    BOOST_TEST(inst.backend().inflight() == 0u);
}

BOOST_DATA_TEST_CASE(msg_ring_reaches_another_instance, bdata::make(modes), mode) {
    default_instance sender(mode_options(mode));
    default_instance receiver; // threaded: its loop reaps the message
    const auto c = sender.call(op::msg_ring(receiver.backend().ring_fd(), 77, 1234));
    BOOST_TEST(c.result == 0, c);
    BOOST_REQUIRE(!sender.submit(op::tagged(op::msg_ring(receiver.backend().ring_fd(), 78, 1235), 5)));
    const auto sent = take(sender, 1);
    BOOST_REQUIRE(sent.size() == 1u);
    BOOST_TEST(sent[0].result == 0);
    const auto got = by_id<default_instance>(take(receiver, 2));
    BOOST_REQUIRE(got.count(1234));
    BOOST_REQUIRE(got.count(1235));
    BOOST_TEST(got.at(1234)[0].result == 77);
    BOOST_TEST((got.at(1234)[0].flags & completion_flags::message) != 0u);
    BOOST_TEST(got.at(1234)[0].nr == static_cast<std::uint32_t>(operation::msg_ring));
    BOOST_TEST(got.at(1235)[0].result == 78);
}

BOOST_AUTO_TEST_CASE(operations_below_their_kernel_are_refused_as_unsupported) {
    const capabilities caps = current_capabilities().assume({5, 15});
    instance_options o;
    o.caps = &caps;
    default_instance inst(o);
    unique_fd null(::open("/dev/null", O_WRONLY | O_CLOEXEC));
    const auto c = inst.call(op::send_zc(null, "x", 1)); // two completions: call() refuses it first
    BOOST_TEST((c.error() == errc::multishot_call), c);
    BOOST_REQUIRE(!inst.submit(op::tagged(op::send_zc(null, "x", 1), 3)));
    const auto got = take(inst, 1);
    BOOST_REQUIRE(got.size() == 1u);
    BOOST_TEST((got[0].error() == errc::unsupported), got[0]);
    BOOST_TEST((inst.call(op::msg_ring(inst.backend().ring_fd(), 1, 1)).error() == errc::unsupported)); // MSG_RING is 5.18
}

// ---- chains --------------------------------------------------------------------------------------

BOOST_DATA_TEST_CASE(a_chain_on_io_uring_runs_in_order, bdata::make(modes), mode) {
    default_instance inst(mode_options(mode));
    auto [r, w] = make_pipe();
    char buf[8] = {};
    const submit_entry chain[] = {op::tagged(op::linked(sys::write(w, "abc", 3)), 1),
                                  op::tagged(sys::read(r, buf, sizeof buf), 2)};
    BOOST_REQUIRE(!inst.submit(chain));
    const auto got = by_id<default_instance>(take(inst, 2));
    BOOST_TEST(got.at(1)[0].result == 3);
    BOOST_TEST(got.at(2)[0].result == 3);
    BOOST_TEST(std::string(buf, 3) == "abc");
    BOOST_TEST(inst.loop().executed(tier::io_uring) >= 2u);
}

// A chain is never split across two enters: with three of four slots taken by blocked reads,
// a two-entry chain waits whole (its second entry does not run ahead of its first).
BOOST_DATA_TEST_CASE(a_chain_is_never_split_by_a_full_ring, bdata::make(modes), mode) {
    instance_options o = mode_options(mode);
    o.ring.entries = 4;
    default_instance inst(o);
    BOOST_REQUIRE(inst.backend().capacity() == 4u);
    auto [r, w] = make_pipe();
    auto [r2, w2] = make_pipe();
    unique_fd null(::open("/dev/null", O_WRONLY | O_CLOEXEC));
    char b[4];
    for (std::uint64_t id = 1; id <= 3; ++id) BOOST_REQUIRE(!inst.submit(op::tagged(sys::read(r, &b[id], 1), id)));
    const submit_entry chain[] = {op::tagged(op::linked(sys::read(r2, &b[0], 1)), 10),
                                  op::tagged(sys::write(null, "z", 1), 11)};
    BOOST_REQUIRE(!inst.submit(chain));
    BOOST_TEST(take(inst, 1, 100ms).empty()); // the write did not run ahead
    BOOST_REQUIRE(::write(w, "123", 3) == 3); // the three reads finish: room for the chain
    auto got = take(inst, 3);
    BOOST_TEST(got.size() == 3u);
    for (const auto& c : got) BOOST_TEST(c.corr_id <= 3u, c); // still no write
    BOOST_TEST(take(inst, 1, 100ms).empty());
    BOOST_REQUIRE(::write(w2, "4", 1) == 1);
    got = take(inst, 2);
    BOOST_REQUIRE(got.size() == 2u);
    BOOST_TEST(got[0].corr_id == 10u);
    BOOST_TEST(got[1].corr_id == 11u);
    BOOST_TEST(got[1].result == 1);
}

// A chain with a Tier-2 entry runs on one worker in order, stopping at the first failure
// (-ECANCELED for the rest, as the kernel does); a chain mixing ring-only and worker-only
// entries is refused whole; one longer than the ring can hold is refused whole.
BOOST_DATA_TEST_CASE(mixed_chains_run_on_one_worker_or_are_refused_whole, bdata::make(modes), mode) {
    instance_options o = mode_options(mode);
    o.ring.entries = 4;
    default_instance inst(o);
    unique_fd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
    const long fl = ::fcntl(null, F_GETFL);
    const std::uint64_t workers_before = inst.loop().executed(tier::worker_pool);
    const submit_entry ok_chain[] = {op::tagged(op::linked(sys::write(null, "ab", 2)), 1),
                                     op::tagged(op::linked(sys::fcntl(null, F_GETFL)), 2),
                                     op::tagged(sys::write(null, "c", 1), 3)};
    BOOST_REQUIRE(!inst.submit(ok_chain));
    auto got = by_id<default_instance>(take(inst, 3));
    BOOST_TEST(got.at(1)[0].result == 2);
    BOOST_TEST(got.at(2)[0].result == fl);
    BOOST_TEST(got.at(3)[0].result == 1);
    BOOST_TEST(inst.loop().executed(tier::worker_pool) == workers_before + 3);

    const int bad = closed_fd();
    const submit_entry failing[] = {op::tagged(op::linked(sys::fcntl(bad, F_GETFL)), 4),
                                    op::tagged(sys::write(null, "d", 1), 5)};
    BOOST_REQUIRE(!inst.submit(failing));
    got = by_id<default_instance>(take(inst, 2));
    BOOST_TEST(got.at(4)[0].result == -EBADF);
    BOOST_TEST(got.at(5)[0].result == -ECANCELED);

    const submit_entry hard[] = {op::tagged(op::hardlinked(sys::fcntl(bad, F_GETFL)), 6),
                                 op::tagged(sys::write(null, "e", 1), 7)};
    BOOST_REQUIRE(!inst.submit(hard));
    got = by_id<default_instance>(take(inst, 2));
    BOOST_TEST(got.at(6)[0].result == -EBADF);
    BOOST_TEST(got.at(7)[0].result == 1); // a hard link continues

    const submit_entry mixed[] = {op::tagged(op::linked(op::nop()), 8), op::tagged(sys::fcntl(null, F_GETFL), 9)};
    BOOST_REQUIRE(!inst.submit(mixed));
    got = by_id<default_instance>(take(inst, 2));
    BOOST_TEST((got.at(8)[0].error() == errc::chain_refused), got.at(8)[0]);
    BOOST_TEST((got.at(9)[0].error() == errc::chain_refused), got.at(9)[0]);

    std::vector<submit_entry> longer;
    for (std::uint64_t id = 20; id < 26; ++id) longer.push_back(op::tagged(op::linked(op::nop()), id));
    longer.back().flags &= ~entry_flags::link;
    BOOST_REQUIRE(!inst.submit(std::span<const submit_entry>(longer)));
    got = by_id<default_instance>(take(inst, 6));
    BOOST_TEST(got.size() == 6u);
    for (const auto& [id, cs] : got) BOOST_TEST((cs[0].error() == errc::chain_too_long), cs[0]);
}

BOOST_AUTO_TEST_CASE(threaded_submit_of_a_lone_linked_entry_is_refused) {
    default_instance inst;
    BOOST_TEST((inst.submit(op::linked(op::nop())) == errc::invalid_argument));
    BOOST_TEST((inst.call(op::linked(op::nop())).error() == errc::invalid_argument));
}

// ---- lifetimes -----------------------------------------------------------------------------------

// What an entry points to is read when the loop flushes, not at submit(): it must live until
// the completion. Inline mode makes the moment visible.
BOOST_AUTO_TEST_CASE(arguments_are_read_when_the_loop_flushes_not_at_submit) {
    default_instance inst(mode_options(dispatch_mode::inline_mode));
    auto [r, w] = make_pipe();
    char data[] = "before";
    BOOST_REQUIRE(!inst.submit(op::tagged(sys::write(w, data, 6), 1)));
    std::memcpy(data, "after!", 6); // after submit(), before the loop ran
    const auto got = take(inst, 1);
    BOOST_REQUIRE(got.size() == 1u);
    char buf[8] = {};
    BOOST_REQUIRE(::read(r, buf, sizeof buf) == 6);
    BOOST_TEST(std::string(buf, 6) == "after!");
}

// close() of an fd does not cancel work in flight on it: the request holds its own reference
// to the file and completes normally.
BOOST_DATA_TEST_CASE(close_does_not_cancel_work_in_flight, bdata::make(modes), mode) {
    default_instance inst(mode_options(mode));
    auto [r, w] = make_pipe();
    char buf[8] = {};
    const int rfd = r.release();
    BOOST_REQUIRE(!inst.submit(op::tagged(sys::read(rfd, buf, sizeof buf), 1)));
    BOOST_TEST(take(inst, 1, 50ms).empty());
    BOOST_TEST(inst.call(sys::close(rfd)).result == 0);
    BOOST_REQUIRE(::write(w, "still", 5) == 5);
    const auto got = take(inst, 1);
    BOOST_REQUIRE(got.size() == 1u);
    BOOST_TEST(got[0].result == 5, got[0]);
    BOOST_TEST(std::string(buf, 5) == "still");
}

// ---- the blocking facade ------------------------------------------------------------------------

// Threaded: a Tier-2 call runs on the caller's thread (no hand-off), a Tier-1 call on a private
// ring; the per-tier counters see both. Inline: Tier 2 stays on the pool.
BOOST_DATA_TEST_CASE(blocking_calls_take_the_cheapest_path, bdata::make(modes), mode) {
    default_instance inst(mode_options(mode));
    unique_fd null(::open("/dev/null", O_WRONLY | O_CLOEXEC));
    const std::uint64_t t1 = inst.loop().executed(tier::io_uring), t2 = inst.loop().executed(tier::worker_pool);
    const std::uint64_t c1 = inst.loop().executed_by_callers(tier::io_uring);
    const std::uint64_t c2 = inst.loop().executed_by_callers(tier::worker_pool);
    BOOST_TEST(inst.call(sys::fcntl(null, F_GETFL)).ok());
    BOOST_TEST(inst.call(sys::write(null, "x", 1)).result == 1);
    BOOST_TEST(inst.loop().executed(tier::io_uring) == t1 + 1);
    BOOST_TEST(inst.loop().executed(tier::worker_pool) == t2 + 1);
    const bool threaded = mode == dispatch_mode::threaded;
    BOOST_TEST(inst.loop().executed_by_callers(tier::worker_pool) == c2 + (threaded ? 1 : 0));
    BOOST_TEST(inst.loop().executed_by_callers(tier::io_uring) == c1 + (threaded ? 1 : 0));
}

// The EPIPE-not-SIGPIPE promise holds on the caller's own thread, and its signal mask is left
// as it was.
BOOST_AUTO_TEST_CASE(a_caller_thread_call_contains_sigpipe) {
    default_instance inst;
    auto [r, w] = make_pipe();
    r.reset();
    temp_dir dir;
    const std::string path = dir.file("src");
    unique_fd src(::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600));
    BOOST_REQUIRE(::write(src, "data", 4) == 4);
    sigset_t before, after, pending;
    ::pthread_sigmask(SIG_BLOCK, nullptr, &before);
    off_t off = 0;
    const auto c = inst.call(sys::make(nr::sendfile, int(w), int(src), &off, 4)); // Tier 2, this thread
    BOOST_TEST(c.result == -EPIPE, c);
    const auto d = inst.call(sys::write(w, "x", 1)); // Tier 1, this thread's private ring
    BOOST_TEST(d.result == -EPIPE, d);
    ::pthread_sigmask(SIG_BLOCK, nullptr, &after);
    BOOST_TEST(sigismember(&after, SIGPIPE) == sigismember(&before, SIGPIPE));
    sigemptyset(&pending);
    ::sigpending(&pending);
    BOOST_TEST(!sigismember(&pending, SIGPIPE));
}

// stop() cancels a call blocked on a private ring (no loop involved).
BOOST_AUTO_TEST_CASE(stop_cancels_a_call_blocked_on_its_private_ring) {
    default_instance inst;
    auto [r, w] = make_pipe();
    std::thread stopper([&] {
        std::this_thread::sleep_for(50ms);
        inst.stop();
    });
    char buf[4];
    completion_entry c;
    {
        watchdog dog(10s, "private-ring call across stop()");
        c = inst.call(sys::read(r, buf, sizeof buf));
    }
    stopper.join();
    BOOST_TEST(c.result == -ECANCELED, c);
    BOOST_TEST((inst.call(sys::read(r, buf, sizeof buf)).error() == errc::shut_down));
}

// Many threads calling at once: each gets its own completion, with its own corr_id.
BOOST_AUTO_TEST_CASE(concurrent_callers_get_their_own_completions) {
    default_instance inst;
    unique_fd null(::open("/dev/null", O_WRONLY | O_CLOEXEC));
    std::atomic<int> wrong{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t)
        ts.emplace_back([&, t] {
            for (int i = 0; i < 2000; ++i) {
                const std::uint64_t id = static_cast<std::uint64_t>(t) << 32 | static_cast<std::uint64_t>(i);
                const std::size_t len = static_cast<std::size_t>(i % 7 + 1);
                const auto c = inst.call(op::tagged(sys::write(null, "abcdefg", len), id));
                if (c.corr_id != id || c.result != static_cast<std::int64_t>(len)) ++wrong;
            }
        });
    for (auto& t : ts) t.join();
    BOOST_TEST(wrong.load() == 0);
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace ksvc::test::engine_v2
