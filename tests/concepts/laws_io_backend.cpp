// io_backend laws, over the io_uring presets, the epoll backend and the archetype (8 entries unless a law says otherwise):
// - every accepted entry completes exactly once, with its corr_id, nr and flags echoed;
// - inflight() counts accepted entries until they are reaped, then returns to 0;
// - past capacity(), submit() says errc::ring_full and accepts nothing; nothing accepted is lost;
// - an entry the backend cannot translate is errc::unsupported and not accepted;
// - an entry the kernel fails (a bad fd) still completes exactly once, with -errno;
// - cancel(id) of a read blocked on an empty pipe completes it with -ECANCELED, also when the
//   cancel comes before the entry was flushed, and in the smallest rings; cancel of an unknown
//   id is an error; cancel_all() cancels everything in flight;
// - wait(fd) returns once fd is readable or a completion is ready, and internal requests
//   (the doorbell poll, cancel requests) never surface as completions.
// The io_uring cases are skipped, naming the reason, when the kernel refuses io_uring.
#include <boost/mpl/list.hpp>
#include <boost/test/unit_test.hpp>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <ksvc/core/concepts/io_backend.hpp>
#include <ksvc/executor/sys.hpp>
#include <ksvc/module/backends/epoll_backend.hpp>
#include <ksvc/module/backends/io_uring_backend.hpp>
#include <ksvc/module/capabilities.hpp>

#include "support/archetypes/archetype_backend.hpp"
#include "support/fixtures.hpp"

namespace {
using namespace ksvc;
using namespace std::chrono_literals;
using test::pipe_pair;
using test::unique_fd;

// Every real backend is built the same way: this kernel's snapshot and an SQ of `entries`.
template <class B>
struct factory {
    static B make(unsigned entries = 8) { return B(current_capabilities(), io_uring_options{.entries = entries}); }
};
template <>
struct factory<test::archetype_backend> {
    static test::archetype_backend make(unsigned entries = 8) { return test::archetype_backend(entries); }
};

using backends =
    boost::mpl::list<basic_io_uring, sqpoll_io_uring, owner_thread_io_uring, epoll_backend, epoll_edge_backend,
                     test::archetype_backend>;

// Skips the io_uring instantiations when the kernel refuses io_uring. A decorator applies to
// every type of a template test case, so it picks them by the type in the test-case name.
struct io_uring_usable {
    boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id id) const {
        const std::string& name = boost::unit_test::framework::get(id, boost::unit_test::TUT_ANY).p_name.get();
        const capabilities& caps = current_capabilities();
        if (name.find("io_uring_backend") == std::string::npos || caps.io_uring_available) return true;
        boost::test_tools::assertion_result r(false);
        r.message() << "io_uring unavailable: " << caps.unavailable_reason;
        return r;
    }
};
#define KSVC_LAW(name) \
    BOOST_TEST_DECORATOR(*boost::unit_test::precondition(io_uring_usable{})) \
    BOOST_AUTO_TEST_CASE_TEMPLATE(name, B, backends)

constexpr route_info read_route{tier::io_uring, opcode::read, true};
constexpr route_info write_route{tier::io_uring, opcode::write, true};

submit_entry tagged(const submit_entry& in, std::uint64_t id) {
    submit_entry e = in;
    e.corr_id = id;
    e.flags = static_cast<std::uint32_t>(id << 16) & entry_flags::user_mask; // echoed untouched
    return e;
}


bool readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 0) == 1;
}

// Flushes and reaps until `want` completions arrived or 5 s passed; then checks that nothing
// more turns up for a moment (a duplicate, or an internal request leaking out).
template <class B>
std::vector<completion_entry> collect(B& b, std::size_t want) {
    std::vector<completion_entry> got;
    std::array<completion_entry, 4> buf{}; // smaller than capacity: reap must respect out.size()
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (got.size() < want && std::chrono::steady_clock::now() < deadline) {
        BOOST_TEST(b.flush() == 0);
        const std::size_t n = b.reap(buf);
        BOOST_TEST(n <= buf.size());
        got.insert(got.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
        if (n == 0) std::this_thread::sleep_for(1ms);
    }
    std::this_thread::sleep_for(20ms);
    b.flush();
    const std::size_t extra = b.reap(buf);
    BOOST_TEST(extra == 0u, "unexpected completion " << buf[0]);
    BOOST_TEST(got.size() == want);
    return got;
}

// Each id exactly once.
std::map<std::uint64_t, completion_entry> by_id(const std::vector<completion_entry>& cs) {
    std::map<std::uint64_t, completion_entry> m;
    for (const auto& c : cs) BOOST_TEST(m.emplace(c.corr_id, c).second, "corr_id " << c.corr_id << " completed twice");
    return m;
}

} // namespace

BOOST_AUTO_TEST_SUITE(laws_io_backend)

KSVC_LAW(accepted_entries_complete_exactly_once) {
    unique_fd zero(::open("/dev/zero", O_RDONLY | O_CLOEXEC)), null(::open("/dev/null", O_WRONLY | O_CLOEXEC));
    BOOST_REQUIRE(zero >= 0);
    BOOST_REQUIRE(null >= 0);
    auto b = factory<B>::make();
    BOOST_TEST(b.inflight() == 0u);
    BOOST_REQUIRE(b.capacity() > 0u);
    BOOST_TEST(b.supports(opcode::read));
    BOOST_TEST(b.supports(opcode::write));
    BOOST_TEST(!b.supports(opcode::none));

    const std::size_t n = b.capacity();
    std::vector<std::array<char, 16>> bufs(n);
    std::map<std::uint64_t, submit_entry> sent;
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint64_t id = 100 + i;
        // Alternate a 16-byte read of /dev/zero, a 0-byte read, and a 16-byte write to /dev/null.
        submit_entry e = i % 3 == 2 ? sys::write(null, bufs[i].data(), 16) : sys::read(zero, bufs[i].data(), i % 3 ? 0 : 16);
        e = tagged(e, id);
        BOOST_TEST((b.submit(e, i % 3 == 2 ? write_route : read_route) == status::ok));
        sent.emplace(id, e);
        BOOST_TEST(b.inflight() == i + 1);
    }
    const auto got = by_id(collect(b, n));
    BOOST_TEST(got.size() == n);
    for (const auto& [id, e] : sent) {
        auto it = got.find(id);
        BOOST_TEST_REQUIRE((it != got.end()), "corr_id " << id << " never completed");
        BOOST_TEST(it->second.result == static_cast<std::int64_t>(e.args[2]));
        BOOST_TEST(it->second.nr == e.nr);
        BOOST_TEST(it->second.entry_flags == e.flags);
        BOOST_TEST(it->second.flags == 0u);
    }
    BOOST_TEST(b.inflight() == 0u);
}

KSVC_LAW(submit_beyond_capacity_is_ring_full_and_loses_nothing) {
    pipe_pair p;
    auto b = factory<B>::make();
    const std::size_t cap = b.capacity();
    std::vector<char> bytes(cap + 1);
    for (std::size_t i = 0; i < cap; ++i) BOOST_TEST((b.submit(tagged(sys::read(p.r, &bytes[i], 1), i + 1), read_route) == status::ok));
    BOOST_TEST(b.flush() == 0);
    BOOST_TEST(b.inflight() == cap);
    // Full: refused, twice, and the refusals are not accepted behind our back.
    for (int attempt = 0; attempt < 2; ++attempt) {
        const std::error_code ec = to_error_code(b.submit(tagged(sys::read(p.r, &bytes[cap], 1), 999), read_route));
        BOOST_TEST((ec == errc::ring_full), ec.message());
        BOOST_TEST(b.inflight() == cap);
    }
    const std::string data(cap, 'x');
    BOOST_REQUIRE(::write(p.w, data.data(), cap) == static_cast<ssize_t>(cap));
    const auto got = by_id(collect(b, cap));
    for (std::uint64_t id = 1; id <= cap; ++id) {
        auto it = got.find(id);
        BOOST_TEST_REQUIRE((it != got.end()), "corr_id " << id << " lost");
        BOOST_TEST(it->second.result == 1);
    }
    BOOST_TEST(!got.count(999));
    BOOST_TEST(b.inflight() == 0u);
    BOOST_TEST(!readable(p.r)); // every byte went to exactly one read
    // Room again.
    BOOST_TEST((b.submit(tagged(sys::write(p.w, data.data(), 1), 1000), write_route) == status::ok));
    BOOST_TEST(collect(b, 1).at(0).result == 1);
}

KSVC_LAW(untranslatable_entries_are_unsupported) {
    auto b = factory<B>::make();
    // getpid has no SQE: whatever the route claims, the backend must refuse it, not guess.
    const std::error_code ec = to_error_code(b.submit(tagged(sys::getpid(), 5), {tier::io_uring, opcode::nop, true}));
    BOOST_TEST((ec == errc::unsupported), ec.message());
    BOOST_TEST(b.inflight() == 0u);
    collect(b, 0);
}

KSVC_LAW(cancel_of_a_blocked_read_completes_it_with_ecanceled) {
    pipe_pair p;
    auto b = factory<B>::make();
    char c = 0;
    BOOST_TEST((b.submit(tagged(sys::read(p.r, &c, 1), 7), read_route) == status::ok));
    BOOST_TEST(b.flush() == 0);
    std::this_thread::sleep_for(10ms);
    std::array<completion_entry, 2> none{};
    BOOST_TEST(b.reap(none) == 0u); // blocked: nothing to read
    BOOST_TEST(!b.cancel(7));
    const auto got = collect(b, 1);
    BOOST_TEST_REQUIRE(got.size() == 1u);
    BOOST_TEST(got[0].corr_id == 7u);
    BOOST_TEST(got[0].result == -ECANCELED);
    BOOST_TEST(b.inflight() == 0u);
}

KSVC_LAW(a_cancel_in_the_same_batch_as_its_entry_still_cancels_it) {
    pipe_pair p;
    auto b = factory<B>::make();
    char c = 0;
    BOOST_TEST((b.submit(tagged(sys::read(p.r, &c, 1), 9), read_route) == status::ok));
    BOOST_TEST(!b.cancel(9)); // accepted, not yet flushed: still in flight
    const auto got = collect(b, 1);
    BOOST_TEST_REQUIRE(got.size() == 1u);
    BOOST_TEST(got[0].corr_id == 9u);
    BOOST_TEST(got[0].result == -ECANCELED);
    BOOST_TEST(b.inflight() == 0u);
}

KSVC_LAW(kernel_errors_are_completions_too) {
    pipe_pair p;
    auto b = factory<B>::make();
    char c = 0;
    BOOST_TEST((b.submit(tagged(sys::read(-1, &c, 1), 10), read_route) == status::ok));
    BOOST_TEST((b.submit(tagged(sys::write(p.r, "x", 1), 11), write_route) == status::ok)); // the read end
    BOOST_TEST((b.submit(tagged(sys::read(p.w, &c, 1), 12), read_route) == status::ok));    // the write end
    const auto got = by_id(collect(b, 3));
    BOOST_TEST_REQUIRE(got.size() == 3u);
    BOOST_TEST(got.at(10).result == -EBADF);
    BOOST_TEST(got.at(11).result == -EBADF);
    BOOST_TEST(got.at(12).result == -EBADF);
    BOOST_TEST(b.inflight() == 0u);
}

// The smallest rings still cancel: at capacity 1, and at capacity 2 while wait() has a doorbell
// armed (the dispatcher's idle state). A refusal here would never clear: the entry is blocked.
KSVC_LAW(cancel_works_in_the_smallest_rings) {
    {
        pipe_pair p;
        auto b = factory<B>::make(1);
        BOOST_TEST_REQUIRE(b.capacity() == 1u);
        char c = 0;
        BOOST_TEST((b.submit(tagged(sys::read(p.r, &c, 1), 40), read_route) == status::ok));
        BOOST_TEST(b.flush() == 0);
        const std::error_code ec = b.cancel(40);
        BOOST_TEST(!ec, ec.message());
        if (ec) BOOST_REQUIRE(::write(p.w, "u", 1) == 1); // unblock it so the test can go on
        const auto got = collect(b, 1);
        BOOST_TEST_REQUIRE(got.size() == 1u);
        BOOST_TEST(got[0].result == -ECANCELED);
    }
    {
        unique_fd quiet(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)); // never written
        unique_fd null(::open("/dev/null", O_WRONLY | O_CLOEXEC));
        pipe_pair p;
        auto b = factory<B>::make(2);
        BOOST_TEST_REQUIRE(b.capacity() == 2u);
        char c = 0;
        BOOST_TEST((b.submit(tagged(sys::read(p.r, &c, 1), 41), read_route) == status::ok));
        BOOST_TEST((b.submit(tagged(sys::write(null, "v", 1), 42), write_route) == status::ok));
        BOOST_TEST(b.flush() == 0);
        std::array<completion_entry, 2> out{};
        std::size_t n = 0;
        for (int i = 0; i < 100 && n == 0; ++i) { // arms the doorbell; returns for the write
            b.wait(quiet, -1);
            n = b.reap(out);
        }
        BOOST_TEST_REQUIRE(n == 1u);
        BOOST_TEST(out[0].corr_id == 42u);
        const std::error_code ec = b.cancel(41);
        BOOST_TEST(!ec, ec.message());
        if (ec) BOOST_REQUIRE(::write(p.w, "u", 1) == 1);
        const auto got = collect(b, 1);
        BOOST_TEST_REQUIRE(got.size() == 1u);
        BOOST_TEST(got[0].result == -ECANCELED);
    }
}

KSVC_LAW(cancel_of_an_unknown_id_is_an_error) {
    pipe_pair p;
    auto b = factory<B>::make();
    BOOST_TEST(static_cast<bool>(b.cancel(12345)));
    char c = 0;
    BOOST_TEST((b.submit(tagged(sys::read(p.r, &c, 1), 8), read_route) == status::ok));
    BOOST_TEST(b.flush() == 0);
    BOOST_TEST(static_cast<bool>(b.cancel(12345)));
    // The entry in flight is untouched by the failed cancel.
    BOOST_REQUIRE(::write(p.w, "y", 1) == 1);
    const auto got = collect(b, 1);
    BOOST_TEST_REQUIRE(got.size() == 1u);
    BOOST_TEST(got[0].corr_id == 8u);
    BOOST_TEST(got[0].result == 1);
    BOOST_TEST(c == 'y');
    BOOST_TEST(static_cast<bool>(b.cancel(8))); // completed and reaped: unknown again
}

KSVC_LAW(cancel_all_cancels_everything_in_flight) {
    pipe_pair p;
    auto b = factory<B>::make();
    const std::size_t n = b.capacity() < 4 ? b.capacity() : 4;
    std::vector<char> bytes(n);
    for (std::size_t i = 0; i < n; ++i) BOOST_TEST((b.submit(tagged(sys::read(p.r, &bytes[i], 1), 20 + i), read_route) == status::ok));
    BOOST_TEST(b.flush() == 0);
    BOOST_TEST(b.cancel_all() == n);
    const auto got = by_id(collect(b, n));
    for (const auto& [id, c] : got) BOOST_TEST(c.result == -ECANCELED, "corr_id " << id);
    BOOST_TEST(b.inflight() == 0u);
}

KSVC_LAW(wait_returns_when_the_fd_becomes_readable) {
    unique_fd efd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    BOOST_REQUIRE(efd >= 0);
    auto b = factory<B>::make();
    ssize_t rung = 0; // Boost.Test assertions belong to the main thread
    std::thread doorbell([&] {
        std::this_thread::sleep_for(30ms);
        const std::uint64_t one = 1;
        rung = ::write(efd, &one, sizeof one);
    });
    while (!readable(efd)) { // wait may return early; callers loop
        const int r = b.wait(efd, -1);
        BOOST_TEST((r == 0 || r == -EINTR), "wait returned " << r);
    }
    doorbell.join();
    BOOST_TEST(rung == 8);
    BOOST_TEST(b.inflight() == 0u);
    collect(b, 0); // the doorbell is not a completion
    // A second round on the same fd (already readable) returns at once.
    BOOST_TEST(b.wait(efd, -1) == 0);
    collect(b, 0);
}

KSVC_LAW(wait_returns_when_a_completion_is_ready) {
    unique_fd quiet(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)); // never written
    unique_fd null(::open("/dev/null", O_WRONLY | O_CLOEXEC));
    pipe_pair p;
    auto b = factory<B>::make();
    // With a doorbell that never rings.
    BOOST_TEST((b.submit(tagged(sys::write(null, "z", 1), 30), write_route) == status::ok));
    BOOST_TEST(b.flush() == 0);
    std::array<completion_entry, 2> out{};
    std::size_t n = 0;
    for (int i = 0; i < 100 && n == 0; ++i) {
        const int r = b.wait(quiet, -1);
        BOOST_TEST((r == 0 || r == -EINTR), "wait returned " << r);
        n = b.reap(out);
    }
    BOOST_TEST_REQUIRE(n == 1u);
    BOOST_TEST(out[0].corr_id == 30u);
    // Without a doorbell (fd -1, the shutdown drain): a read completed by another thread's write.
    char c = 0;
    BOOST_TEST((b.submit(tagged(sys::read(p.r, &c, 1), 31), read_route) == status::ok));
    BOOST_TEST(b.flush() == 0);
    ssize_t wrote = 0;
    std::thread writer([&] {
        std::this_thread::sleep_for(30ms);
        wrote = ::write(p.w, "w", 1);
    });
    n = 0;
    for (int i = 0; i < 100 && n == 0; ++i) {
        const int r = b.wait(-1, -1);
        BOOST_TEST((r == 0 || r == -EINTR), "wait returned " << r);
        n = b.reap(out);
    }
    writer.join();
    BOOST_TEST(wrote == 1);
    BOOST_TEST_REQUIRE(n == 1u);
    BOOST_TEST(out[0].corr_id == 31u);
    BOOST_TEST(out[0].result == 1);
    BOOST_TEST(b.inflight() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

KSVC_LAW(wait_times_out_when_nothing_happens) {
    unique_fd quiet(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)); // never written
    pipe_pair p;
    auto b = factory<B>::make();
    char c = 0;
    BOOST_TEST((b.submit(tagged(sys::read(p.r, &c, 1), 40), read_route) == status::ok)); // blocks: nobody writes
    BOOST_TEST(b.flush() == 0);
    int r = -EINTR;
    for (int i = 0; i < 10 && r == -EINTR; ++i) r = b.wait(quiet, 20);
    BOOST_TEST(r == -ETIME, "wait(fd, 20 ms) with nothing to do returned " << r);
    BOOST_TEST(b.inflight() == 1u);
    BOOST_TEST(b.cancel(40).value() == 0);
    collect(b, 1);
}
