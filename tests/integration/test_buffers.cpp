// Buffer policies wired to the backend: a provided buffer ring (recv_select, recv_multishot,
// ENOBUFS and recovery, incremental consumption) and registered buffers (READ_FIXED /
// WRITE_FIXED, and the fallback when RLIMIT_MEMLOCK refuses the registration), over real
// loopback sockets and files, under the resource ring setups (basic in both modes, DEFER_TASKRUN
// inline, SQPOLL, a 4-entry ring).
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <ksvc/executor/op.hpp>
#include <ksvc/executor/sys.hpp>
#include <ksvc/module/counters/publisher.hpp>
#include <ksvc/module/presets.hpp>

#include "support/fixtures.hpp"

namespace ksvc::test::buffers {

namespace bdata = boost::unit_test::data;
using namespace std::chrono_literals;

using provided_instance = instance<probe_router, basic_io_uring, fixed_pool, eventfd_notifier, provided_buffer_ring>;
using fixed_instance = instance<probe_router, basic_io_uring, fixed_pool, eventfd_notifier, registered_buffers>;

const std::vector<ring_setup>& modes = ring_setups();

//! This kernel, or a snapshot of 5.15: no registered buffer rings (5.19) and no native
//! multishot recv (6.0), so the ring is fed by PROVIDE_BUFFERS SQEs and streams are emulated.
const capabilities& kernel_5_15() {
    static const capabilities c = current_capabilities().assume({5, 15});
    return c;
}
const std::vector<bool> legacy_or_not = {false, true};

instance_options options(const ring_setup& m, std::size_t count, std::size_t size, bool incremental = true,
                         bool legacy = false) {
    instance_options o;
    if (legacy) o.caps = &kernel_5_15();
    m.apply(o);
    o.buffer_count = count;
    o.buffer_size = size;
    o.buffer_group = 3;
    o.buffer_incremental = incremental;
    return o;
}

std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 26) % 26);
    return s;
}

//! IOU_PBUF_RING_INC arrived in 6.12; before it the ring registers without it.
bool kernel_has_incremental_buffers() { return current_capabilities().version >= kernel_version{6, 12}; }

std::string bytes_of(const provided_buffer_ring::lease& l) {
    return {reinterpret_cast<const char*>(l.data().data()), l.data().size()};
}

BOOST_AUTO_TEST_SUITE(buffer_policies)

BOOST_DATA_TEST_CASE(recv_select_takes_a_kernel_picked_buffer, bdata::make(modes) * bdata::make(legacy_or_not), mode,
                     legacy) {
    provided_instance inst(options(mode, 8, 256, false, legacy));
    auto [client, server] = tcp_pair();
    const std::string msg = pattern(200);
    BOOST_REQUIRE(::send(client, msg.data(), msg.size(), 0) == static_cast<ssize_t>(msg.size()));
    BOOST_REQUIRE(!inst.submit(op::tagged(op::recv_select(server, 256, inst.buffers().group()), 1)));
    const auto got = take(inst, 1);
    BOOST_REQUIRE(got.size() == 1u);
    BOOST_TEST(got[0].result == 200, got[0]);
    BOOST_TEST((got[0].flags & completion_flags::buffer) != 0u);
    BOOST_TEST(inst.buffers().is_registered());
    BOOST_TEST(inst.buffers().legacy() == legacy);
    {
        auto l = inst.buffers().take(got[0]);
        BOOST_REQUIRE(static_cast<bool>(l));
        BOOST_TEST(bytes_of(l) == msg);
        BOOST_TEST(inst.buffers().in_use() == 1u);
        BOOST_TEST(!inst.buffers().take(got[0])); // one completion, one lease
    }
    BOOST_TEST(inst.buffers().in_use() == 0u);
    BOOST_TEST(inst.buffers().recycled() == 1u);
}

// A multishot recv delivers the stream buffer by buffer; end of stream is a final completion
// with result 0 and no `more`.
BOOST_DATA_TEST_CASE(recv_multishot_delivers_the_stream_in_order,
                     bdata::make(modes) * bdata::make({false, true}) * bdata::make(legacy_or_not), mode, incremental, legacy) {
    provided_instance inst(options(mode, 16, 512, incremental, legacy));
    auto [client, server] = tcp_pair();
    BOOST_REQUIRE(!inst.submit(op::tagged(op::recv_multishot(server, inst.buffers().group()), 5)));
    const std::string msg = pattern(40000);
    std::thread writer([&, fd = int(client)] {
        for (std::size_t at = 0; at < msg.size();) {
            const std::size_t n = std::min<std::size_t>(700, msg.size() - at);
            const ssize_t w = ::send(fd, msg.data() + at, n, 0);
            if (w <= 0) return;
            at += static_cast<std::size_t>(w);
            if (at % 7000 < 700) std::this_thread::sleep_for(1ms);
        }
        ::shutdown(fd, SHUT_WR);
    });
    std::string received;
    bool ended = false;
    int rearms = 0;
    completion_entry out[32];
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!ended && std::chrono::steady_clock::now() < deadline) {
        const std::size_t n = inst.wait_completions(out, 20);
        for (std::size_t i = 0; i < n; ++i) {
            const completion_entry& c = out[i];
            BOOST_REQUIRE(c.corr_id == 5u);
            if (c.result > 0) {
                auto l = inst.buffers().take(c);
                BOOST_REQUIRE(static_cast<bool>(l));
                received += bytes_of(l);
            }
            if (!c.more()) {
                if (c.result == -ENOBUFS) { // the ring ran dry between our drops: re-arm
                    ++rearms;
                    BOOST_REQUIRE(!inst.submit(op::tagged(op::recv_multishot(server, inst.buffers().group()), 5)));
                } else {
                    BOOST_TEST(c.result == 0, c); // end of stream
                    ended = true;
                }
            }
        }
    }
    writer.join();
    BOOST_TEST(ended);
    BOOST_TEST(received.size() == msg.size());
    BOOST_TEST((received == msg));
    BOOST_TEST(inst.buffers().in_use() == 0u);
    BOOST_TEST(inst.buffers().incremental() == (incremental && !legacy && kernel_has_incremental_buffers()));
    BOOST_TEST(inst.buffers().legacy() == legacy);
    if (legacy) BOOST_TEST(inst.buffers().recycled() >= 40000u / 512 - 16); // provided again by SQE, many times
    BOOST_TEST_MESSAGE("re-arms after ENOBUFS: " << rearms);
}

// An empty ring: the multishot recv ends with ENOBUFS (no `more`); once the consumer drops its
// leases and re-arms, the rest of the stream arrives — no byte lost or duplicated.
BOOST_DATA_TEST_CASE(an_empty_ring_gives_enobufs_then_recovers, bdata::make(modes) * bdata::make(legacy_or_not), mode,
                     legacy) {
    provided_instance inst(options(mode, 4, 64, false, legacy));
    auto [client, server] = tcp_pair();
    const std::string msg = pattern(1000);
    BOOST_REQUIRE(::send(client, msg.data(), msg.size(), 0) == static_cast<ssize_t>(msg.size()));
    std::vector<provided_buffer_ring::lease> held;
    std::string received;
    bool enobufs = false;
    std::uint64_t enobufs_seen = 0; // the live counters must say the same
    for (int round = 0; round < 40 && received.size() < msg.size(); ++round) {
        BOOST_REQUIRE(!inst.submit(op::tagged(op::recv_multishot(server, inst.buffers().group()), 9)));
        bool done = false;
        while (!done && received.size() < msg.size()) {
            const auto got = take(inst, 1);
            BOOST_REQUIRE_MESSAGE(!got.empty(), "round " << round << " received " << received.size());
            for (const completion_entry& c : got) {
                BOOST_REQUIRE(!done); // nothing after the final completion
                enobufs_seen += c.result == -ENOBUFS;
                if (c.result > 0) {
                    held.push_back(inst.buffers().take(c));
                    BOOST_REQUIRE(static_cast<bool>(held.back()));
                    received += bytes_of(held.back());
                }
                if (!c.more()) {
                    done = true;
                    if (received.size() < msg.size()) {
                        BOOST_TEST(c.result == -ENOBUFS, c);
                        enobufs = enobufs || c.result == -ENOBUFS;
                    }
                }
            }
        }
        BOOST_TEST(held.size() <= 4u); // never more buffers than the ring has
        held.clear();                   // recycle, then re-arm
    }
    BOOST_TEST(enobufs);
    BOOST_TEST((received == msg));
    BOOST_TEST(inst.buffers().in_use() == 0u);
    // The last stream may still be armed (6.18 waits for data before it picks a buffer) or may
    // have ended on its own with ENOBUFS (6.1 picks one at once and finds the ring empty). A
    // cancel ends it either way; its final completion says which.
    BOOST_REQUIRE(!inst.submit(op::tagged(op::cancel(9), 10)));
    bool cancel_done = false, stream_done = false;
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!(cancel_done && stream_done) && std::chrono::steady_clock::now() < deadline) {
        for (const auto& c : take(inst, 1, 200ms)) {
            if (c.corr_id == 10) {
                cancel_done = true;
                BOOST_TEST((c.result == 1 || c.result == -ENOENT), c);
                if (c.result == -ENOENT) stream_done = true; // it had ended before the cancel
            } else {
                BOOST_REQUIRE(c.corr_id == 9u);
                BOOST_TEST(((c.result == -ECANCELED || c.result == -ENOBUFS) && !c.more()), c);
                enobufs_seen += c.result == -ENOBUFS;
                stream_done = true;
            }
        }
    }
    BOOST_TEST(cancel_done);
    BOOST_TEST(stream_done);
    // ksvc-top's ENOBUFS column: every ENOBUFS completion delivered, all of them seen by now
    if (inst.counters()) BOOST_TEST(read_totals(*inst.counters()).enobufs == enobufs_seen);
}

// Incremental consumption: small messages share one large buffer; each lease covers its own
// bytes, and the buffer goes back to the ring only when the kernel is done with it and every
// lease of it was dropped.
BOOST_DATA_TEST_CASE(incremental_consumption_shares_a_buffer, bdata::make(modes), mode) {
    provided_instance inst(options(mode, 2, 4096, true));
    if (!kernel_has_incremental_buffers()) { // asked for, refused by the kernel: whole buffers
        BOOST_REQUIRE(!inst.submit(op::tagged(op::nop(), 1))); // an inline loop registers on its first drive
        BOOST_REQUIRE(take(inst, 1).size() == 1u);
        BOOST_TEST(inst.buffers().is_registered());
        BOOST_TEST(!inst.buffers().incremental());
        return;
    }
    auto [client, server] = tcp_pair();
    BOOST_REQUIRE(!inst.submit(op::tagged(op::recv_multishot(server, inst.buffers().group()), 2)));
    std::vector<provided_buffer_ring::lease> held;
    std::string received;
    const std::string msg = pattern(100);
    for (int i = 0; i < 10; ++i) {
        BOOST_REQUIRE(::send(client, msg.data() + i * 10, 10, 0) == 10);
        const auto got = take(inst, 1);
        BOOST_REQUIRE(got.size() == 1u);
        BOOST_REQUIRE(got[0].result > 0);
        held.push_back(inst.buffers().take(got[0]));
        received += bytes_of(held.back());
        if (inst.buffers().incremental()) {
            BOOST_TEST((got[0].flags & completion_flags::buffer_more) != 0u, got[0]);
            BOOST_TEST(held.back().id() == held.front().id()); // the same buffer, further along
        }
    }
    BOOST_TEST((received == msg));
    BOOST_TEST(inst.buffers().incremental());
    held.clear();
    BOOST_TEST(inst.buffers().recycled() == 0u); // the kernel still fills that buffer
    inst.submit(op::tagged(op::cancel(2), 3));
    const auto rest = take(inst, 2);
    BOOST_TEST(rest.size() == 2u);
}

// Recv bundles (6.10): one completion fills several buffers, the named one and those after it
// in ring order; the lease spans them and a send of it is one sendmsg over its segments. Below
// 6.10 (a 6.6 snapshot) every completion fills one buffer: a bundle of one.
BOOST_DATA_TEST_CASE(recv_bundles_span_several_buffers,
                     bdata::make(modes) * bdata::make({false, true}) * bdata::make({false, true}), mode, incremental,
                     before_6_10) {
    static const capabilities k66 = current_capabilities().assume({6, 6});
    instance_options o = options(mode, 16, 256, incremental);
    if (before_6_10) o.caps = &k66;
    provided_instance inst(o);
    const bool bundles = !before_6_10 && current_capabilities().has_feature(ring_feature::recvsend_bundle);
    auto [client, server] = tcp_pair();
    const std::string msg = pattern(3000);
    BOOST_REQUIRE(::send(client, msg.data(), msg.size(), 0) == static_cast<ssize_t>(msg.size()));
    BOOST_REQUIRE(!inst.submit(op::tagged(op::bundled(op::recv_multishot(server, inst.buffers().group())), 5)));
    std::string received;
    std::size_t most_segments = 0, completions = 0;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (received.size() < msg.size() && std::chrono::steady_clock::now() < deadline) {
        for (const completion_entry& c : take(inst, 1)) {
            BOOST_REQUIRE(c.corr_id == 5u);
            BOOST_REQUIRE_MESSAGE(c.result > 0, c); // 16 x 256 B hold the whole message
            BOOST_REQUIRE(c.more());
            ++completions;
            provided_buffer_ring::lease l = inst.buffers().take(c);
            BOOST_REQUIRE(static_cast<bool>(l));
            BOOST_TEST(l.size() == static_cast<std::size_t>(c.result));
            std::size_t segments = 0, bytes = 0;
            for (std::span<std::byte> seg : l.segments()) {
                received.append(reinterpret_cast<const char*>(seg.data()), seg.size());
                bytes += seg.size();
                ++segments;
            }
            BOOST_TEST(segments == l.segment_count());
            BOOST_TEST(bytes == l.size());
            most_segments = std::max(most_segments, segments);
            // Echo it from the buffers themselves: a bundle goes out as one sendmsg.
            const completion_entry sent = inst.call(op::send(server, l, MSG_NOSIGNAL));
            BOOST_TEST(sent.result == c.result, sent);
        } // the lease drops: its buffers go back to the ring
    }
    BOOST_TEST((received == msg));
    std::string back(msg.size(), '\0');
    std::size_t got = 0;
    while (got < back.size()) {
        const ssize_t r = ::recv(client, back.data() + got, back.size() - got, 0);
        BOOST_REQUIRE(r > 0);
        got += static_cast<std::size_t>(r);
    }
    BOOST_TEST((back == msg));
    BOOST_TEST_MESSAGE("completions " << completions << ", most segments " << most_segments);
    if (bundles) BOOST_TEST(most_segments > 1u);
    else BOOST_TEST(most_segments == 1u);
    BOOST_TEST(inst.buffers().in_use() == 0u);
    // The stream goes on over recycled buffers, and ends at end of stream.
    ::shutdown(client, SHUT_WR);
    bool ended = false;
    while (!ended && std::chrono::steady_clock::now() < deadline)
        for (const completion_entry& c : take(inst, 1)) {
            BOOST_TEST(c.result == 0, c);
            ended = !c.more();
        }
    BOOST_TEST(ended);
}

// A bundle is a recv's: on any other entry the flag is refused, not ignored.
BOOST_DATA_TEST_CASE(bundle_on_another_entry_is_einval, bdata::make(modes), mode) {
    provided_instance inst(options(mode, 4, 256, false));
    auto [client, server] = tcp_pair();
    char byte = 'x';
    const completion_entry c = inst.call(op::bundled(sys::sendto(server, &byte, 1, 0, nullptr, 0)));
    BOOST_TEST(c.result == -EINVAL, c);
}

// A resource SQE the kernel refuses (here PROVIDE_BUFFERS of zero buffers: E2BIG) is never
// ignored: features().notes says so and the log hears it once, however many fail; the ring
// keeps serving.
BOOST_AUTO_TEST_CASE(a_refused_resource_sqe_is_noted_once) {
    struct bad_provider {
        int attempts = 0;
        static int attach(void*, io_uring&, resource_context& ctx) noexcept {
            ctx.wants_replenish = true;
            return 0;
        }
        static unsigned replenish(void* self, io_uring& ring) noexcept {
            auto* p = static_cast<bad_provider*>(self);
            if (p->attempts == 2) return 0;
            io_uring_sqe* sqe = io_uring_get_sqe(&ring);
            if (!sqe) return 0;
            static char byte;
            io_uring_prep_provide_buffers(sqe, &byte, 1, 0, 7, 0); // nbufs 0: E2BIG
            sqe->user_data = detail::resource_tag;
            ++p->attempts;
            return 1;
        }
    } bad;
    static int logged = 0;
    logged = 0;
    io_uring_options o;
    o.log = [](std::string_view) noexcept { ++logged; };
    basic_io_uring b(current_capabilities(), o);
    b.add_resource({"bad_provider", &bad, &bad_provider::attach, nullptr, &bad_provider::replenish});
    b.attach_to_this_thread();
    const route_info nop_route{tier::io_uring, opcode::nop, true};
    for (std::uint64_t i = 1; i <= 2; ++i) {
        BOOST_REQUIRE((b.submit(op::tagged(op::nop(), i), nop_route) == status::ok));
        BOOST_REQUIRE(b.flush() >= 0);
        completion_entry out[4];
        std::size_t n = 0;
        for (int spin = 0; spin < 100 && n == 0; ++spin) {
            b.wait(-1, 10);
            n = b.reap(out);
        }
        BOOST_REQUIRE(n == 1u); // the resource's CQE is not the caller's
        BOOST_TEST(out[0].corr_id == i);
        BOOST_TEST(out[0].result == 0);
    }
    BOOST_TEST(bad.attempts == 2);
    BOOST_TEST(b.features().notes.find("PROVIDE_BUFFERS) failed: Argument list too long") != std::string::npos, b.features().notes);
    BOOST_TEST(logged == 1);
}

BOOST_DATA_TEST_CASE(registered_buffers_read_and_write_fixed, bdata::make(modes), mode) {
    fixed_instance inst(options(mode, 4, 8192));
    temp_dir dir;
    const std::string path = dir.file("fixed");
    unique_fd f(::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600));
    const std::string msg = pattern(8192);
    auto w = inst.buffers().acquire(8192);
    auto r = inst.buffers().acquire(8192);
    BOOST_REQUIRE(static_cast<bool>(w) && static_cast<bool>(r));
    BOOST_TEST(w.index() != r.index());
    std::memcpy(w.data().data(), msg.data(), msg.size());
    // The first drive registers the pool (threaded: the loop thread already did).
    BOOST_TEST(inst.call(op::nop()).ok());
    BOOST_REQUIRE(inst.buffers().is_registered());
    BOOST_TEST((inst.features().setup_flags & mode.setup_flags) == mode.setup_flags); // the setup asked for
    const submit_entry we = op::write_fixed(f, w, 8192, 0);
    BOOST_TEST(we.number() == static_cast<std::uint32_t>(operation::write_fixed));
    BOOST_REQUIRE(!inst.submit(op::tagged(we, 1)));
    BOOST_REQUIRE(take(inst, 1).at(0).result == 8192);
    BOOST_REQUIRE(!inst.submit(op::tagged(op::read_fixed(f, r, 8192, 0), 2)));
    const auto got = take(inst, 1);
    BOOST_REQUIRE(got.size() == 1u);
    BOOST_TEST(got[0].result == 8192, got[0]);
    BOOST_TEST(got[0].nr == static_cast<std::uint32_t>(operation::read_fixed));
    BOOST_TEST(std::memcmp(r.data().data(), msg.data(), msg.size()) == 0);
    BOOST_TEST(inst.buffers().in_use() == 2u);
}

// Vectored fixed I/O: WRITEV_FIXED gathers three pieces of one lease, READV_FIXED scatters the
// file into two pieces of another — on this kernel natively (6.15), on a 5.15 snapshot as plain
// pwritev / preadv with the same bytes. An iovec outside the lease is the kernel's to refuse.
BOOST_DATA_TEST_CASE(registered_buffers_readv_and_writev_fixed, bdata::make(modes) * bdata::make(legacy_or_not), mode,
                     legacy) {
    fixed_instance inst(options(mode, 4, 8192, true, legacy));
    temp_dir dir;
    unique_fd f(::open(dir.file("vec").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600));
    BOOST_TEST(inst.call(op::nop()).ok());
    BOOST_REQUIRE(inst.buffers().is_registered());
    const bool native = !legacy && current_capabilities().has(opcode::readv_fixed);
    auto w = inst.buffers().acquire(8192);
    auto r = inst.buffers().acquire(8192);
    BOOST_TEST(w.vectored() == native);
    const std::string msg = pattern(8192);
    std::memcpy(w.data().data(), msg.data(), msg.size());
    std::byte* wb = w.data().data();
    // Out of order, and with a gap: the file gets msg[4096..6144) + msg[0..100) + msg[7000..8192).
    const iovec out[3] = {{wb + 4096, 2048}, {wb, 100}, {wb + 7000, 1192}};
    const std::string expect = msg.substr(4096, 2048) + msg.substr(0, 100) + msg.substr(7000, 1192);
    const submit_entry we = op::writev_fixed(f, w, out, 3, 10);
    BOOST_TEST(we.number() == (native ? static_cast<std::uint32_t>(operation::writev_fixed) : std::uint32_t{syscalls::native::pwritev}));
    BOOST_TEST(inst.call(we).result == static_cast<std::int64_t>(expect.size()));
    std::string on_disk(expect.size(), '\0');
    BOOST_REQUIRE(::pread(f, on_disk.data(), on_disk.size(), 10) == static_cast<ssize_t>(on_disk.size()));
    BOOST_TEST((on_disk == expect));

    std::byte* rb = r.data().data();
    const iovec in[2] = {{rb + 5000, 1000}, {rb + 100, expect.size() - 1000}};
    const submit_entry re = op::readv_fixed(f, r, in, 2, 10);
    BOOST_TEST(re.number() == (native ? static_cast<std::uint32_t>(operation::readv_fixed) : std::uint32_t{syscalls::native::preadv}));
    BOOST_REQUIRE(!inst.submit(op::tagged(re, 7)));
    const auto got = take(inst, 1);
    BOOST_REQUIRE(got.size() == 1u);
    BOOST_TEST(got[0].result == static_cast<std::int64_t>(expect.size()), got[0]);
    BOOST_TEST(std::memcmp(rb + 5000, expect.data(), 1000) == 0);
    BOOST_TEST(std::memcmp(rb + 100, expect.data() + 1000, expect.size() - 1000) == 0);

    // An iovec reaching past the lease: the native entry, which fails — never a plain preadv
    // into memory the lease does not own.
    const iovec past[1] = {{rb + 8000, 400}};
    const submit_entry bad = op::readv_fixed(f, r, past, 1, 0);
    BOOST_TEST(bad.number() == static_cast<std::uint32_t>(operation::readv_fixed));
    const completion_entry c = inst.call(bad);
    if (native) BOOST_TEST(c.result == -EFAULT, c);
    else BOOST_TEST((c.error() == errc::unsupported), c);
    // An empty (moved-from) lease owns no buffer: the native entry with an index no pool has.
    registered_buffers::lease gone = std::move(r);
    const submit_entry empty = op::readv_fixed(f, r, in, 2, 0);
    BOOST_TEST(empty.number() == static_cast<std::uint32_t>(operation::readv_fixed));
    const completion_entry e2 = inst.call(empty);
    if (native) BOOST_TEST(e2.result == -EFAULT, e2);
    else BOOST_TEST((e2.error() == errc::unsupported), e2);
}

// Root escapes RLIMIT_MEMLOCK (CAP_IPC_LOCK): a child drops to nobody, lowers the limit, and the
// registration fails — logged, in features().notes, and fixed I/O through a lease falls back to
// plain pread/pwrite with the same bytes.
BOOST_AUTO_TEST_CASE(registration_refused_by_memlock_falls_back_to_plain_io) {
    temp_dir dir;
    const std::string path = dir.file("memlock");
    const std::string msg = pattern(1 << 20);
    {
        unique_fd f(::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
        BOOST_REQUIRE(::write(f, msg.data(), msg.size()) == static_cast<ssize_t>(msg.size()));
    }
    unique_fd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    const int status = run_unprivileged([&] {
        // Room for the rings (the probe's and the instance's), not for 4 MiB of buffers.
        const rlimit lim{512 * 1024, 512 * 1024};
        if (::setrlimit(RLIMIT_MEMLOCK, &lim) != 0) return 10;
        instance_options o = options(ring_setups()[1], 4, 1 << 20);
        static std::string logged;
        o.ring.log = [](std::string_view line) noexcept { logged += std::string(line) + "\n"; };
        fixed_instance inst(o);
        if (!inst.call(op::nop()).ok()) return 12;
        if (inst.buffers().is_registered()) return 13;
        if (inst.features().notes.find("registered_buffers: registration failed") == std::string::npos) return 14;
        if (logged.find("registered_buffers") == std::string::npos) return 15;
        auto l = inst.buffers().acquire(1 << 20);
        const submit_entry e = op::read_fixed(f, l, 1 << 20, 0);
        if (e.number() != syscalls::native::pread64) return 16;
        const completion_entry c = inst.call(e);
        if (c.result != (1 << 20) || std::memcmp(l.data().data(), msg.data(), msg.size()) != 0) return 17;
        // The raw builder names an index the kernel does not have: its error, not a crash.
        const completion_entry raw = inst.call(op::read_fixed(f, l.data().data(), 4096, 0, 0));
        return raw.result == -EFAULT ? 0 : 18;
    });
    BOOST_TEST(child_exited_with(status, 0),
               describe_child(status) << " (10 setrlimit, 12 nop, 13 registered, 14 notes, 15 log, 16 builder, 17 data, 18 raw error)");
}

//! The /proc/self/smaps block of the mapping that starts at `start` (empty if none does).
std::string smaps_of(const void* start) {
    std::ifstream in("/proc/self/smaps");
    char head[32];
    std::snprintf(head, sizeof head, "%lx-", static_cast<unsigned long>(reinterpret_cast<std::uintptr_t>(start)));
    std::string line, block;
    bool inside = false;
    while (std::getline(in, line)) {
        const bool vma_line = line.find('-') < line.find(' ') && std::isxdigit(static_cast<unsigned char>(line[0]));
        if (vma_line) {
            if (inside) break;
            inside = line.rfind(head, 0) == 0;
        }
        if (inside) block += line + "\n";
    }
    return block;
}
std::size_t smaps_kib(const std::string& block, const std::string& field) {
    const auto at = block.find("\n" + field + ":");
    return at == std::string::npos ? 0 : std::stoul(block.substr(at + field.size() + 2));
}
bool thp_enabled() {
    std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
    std::string s;
    std::getline(in, s);
    return !s.empty() && s.find("[never]") == std::string::npos;
}

// A pool of at least one huge page is mapped 2 MiB-aligned, exactly its size, and eligible for
// transparent huge pages (the kernel then registers a buffer inside one folio as one segment);
// fixed I/O through buffers at offsets inside a folio moves the right bytes.
BOOST_DATA_TEST_CASE(registered_pool_is_mapped_for_huge_pages, bdata::make(modes), mode) {
    constexpr std::size_t size = 256 * 1024;
    fixed_instance inst(options(mode, 16, size));
    BOOST_TEST(inst.call(op::nop()).ok());
    BOOST_REQUIRE(inst.buffers().is_registered());
    std::vector<registered_buffers::lease> ls;
    for (int i = 0; i < 16; ++i) ls.push_back(inst.buffers().acquire(size));
    const std::byte* base = ls.front().data().data();
    for (const auto& l : ls) base = std::min(base, static_cast<const std::byte*>(l.data().data()));
    BOOST_TEST(reinterpret_cast<std::uintptr_t>(base) % (2u << 20) == 0u);
    const std::string vma = smaps_of(base);
    BOOST_REQUIRE_MESSAGE(!vma.empty(), "no mapping starts at the pool");
    BOOST_TEST(smaps_kib(vma, "Size") == 16 * size / 1024, vma); // the alignment slack was given back
    if (thp_enabled()) BOOST_TEST(smaps_kib(vma, "THPeligible") == 1u, vma);

    temp_dir dir;
    unique_fd f(::open(dir.file("huge").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600));
    const std::string msg = pattern(4 * size);
    // Write from four leases (one at a folio's start, others inside it), read back through four others.
    for (std::size_t k = 0; k < 4; ++k) {
        std::memcpy(ls[3 + k * 3].data().data(), msg.data() + k * size, size);
        BOOST_REQUIRE(!inst.submit(op::tagged(op::write_fixed(f, ls[3 + k * 3], size, static_cast<off_t>(k * size)), k)));
    }
    for (const auto& c : take(inst, 4)) BOOST_TEST(c.result == static_cast<std::int64_t>(size), c);
    for (std::size_t k = 0; k < 4; ++k)
        BOOST_REQUIRE(!inst.submit(op::tagged(op::read_fixed(f, ls[k * 4], size, static_cast<off_t>(k * size)), 10 + k)));
    for (const auto& c : take(inst, 4)) BOOST_TEST(c.result == static_cast<std::int64_t>(size), c);
    for (std::size_t k = 0; k < 4; ++k)
        BOOST_TEST(std::memcmp(ls[k * 4].data().data(), msg.data() + k * size, size) == 0, "chunk " << k);
}

// The kernel charges a pinned huge page whole to RLIMIT_MEMLOCK: a 3 MiB pool (one huge page and
// 1 MiB of small ones) registers under a 3.5 MiB limit, so no huge page reaches past the pool.
// Root escapes the limit: a child drops to nobody.
BOOST_AUTO_TEST_CASE(registered_pool_on_huge_pages_is_charged_its_own_size) {
    const int status = run_unprivileged([] {
        const rlimit lim{3 * 1024 * 1024 + 512 * 1024, 3 * 1024 * 1024 + 512 * 1024};
        if (::setrlimit(RLIMIT_MEMLOCK, &lim) != 0) return 10;
        fixed_instance inst(options(ring_setups()[1], 3, 1 << 20));
        if (!inst.call(op::nop()).ok()) return 12;
        return inst.buffers().is_registered() ? 0 : 13;
    });
    BOOST_TEST(child_exited_with(status, 0), describe_child(status) << " (10 setrlimit, 12 nop, 13 registration refused)");
}

// Teardown with a multishot recv armed: the drain cancels it before the ring closes and the
// buffers (declared before the backend) outlive the ring; ASan checks nothing is touched late.
BOOST_DATA_TEST_CASE(teardown_with_a_multishot_recv_in_flight, bdata::make(modes), mode) {
    auto [client, server] = tcp_pair();
    {
        provided_instance inst(options(mode, 8, 256));
        BOOST_REQUIRE(!inst.submit(op::tagged(op::recv_multishot(server, inst.buffers().group()), 1)));
        BOOST_REQUIRE(::send(client, "hello", 5, 0) == 5);
        const auto got = take(inst, 1);
        BOOST_REQUIRE(got.size() == 1u);
        BOOST_TEST(bytes_of(inst.buffers().take(got[0])) == "hello");
        BOOST_TEST(got[0].more());
    }
    BOOST_TEST(::send(client, "late", 4, MSG_NOSIGNAL) == 4); // nobody is left to receive it
}

BOOST_AUTO_TEST_CASE(bad_sizes_are_refused_with_a_message) {
    auto what = [](auto make) {
        try {
            make();
        } catch (const std::invalid_argument& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    BOOST_TEST(what([] { provided_buffer_ring r(3, 64); }).find("power of two") != std::string::npos);
    BOOST_TEST(what([] { provided_buffer_ring r(4, 0); }).find("size") != std::string::npos);
    BOOST_TEST(what([] { registered_buffers r(0, 64); }).find("count") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace ksvc::test::buffers

namespace ksvc::test::buffers {

BOOST_AUTO_TEST_SUITE(multishot_stream_ends)

// A peer reset in the middle of a multishot recv: the data before it arrives, then a final
// completion without `more` that says why (ECONNRESET); every lease goes back.
BOOST_DATA_TEST_CASE(a_peer_reset_ends_the_recv_stream_with_its_reason, bdata::make(modes), mode) {
    provided_instance inst(options(mode, 8, 256, false));
    auto [client, server] = tcp_pair();
    BOOST_REQUIRE(!inst.submit(op::tagged(op::recv_multishot(server, inst.buffers().group()), 1)));
    BOOST_REQUIRE(::send(client, "before", 6, 0) == 6);
    std::string received;
    completion_entry last{};
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    bool reset_sent = false, ended = false;
    completion_entry out[16];
    while (!ended && std::chrono::steady_clock::now() < deadline) {
        const std::size_t n = inst.wait_completions(out, 20);
        for (std::size_t i = 0; i < n; ++i) {
            if (out[i].result > 0) received += bytes_of(inst.buffers().take(out[i]));
            if (!out[i].more()) {
                ended = true;
                last = out[i];
            }
        }
        if (received == "before" && !reset_sent) {
            linger l{1, 0}; // close with RST
            BOOST_REQUIRE(::setsockopt(client, SOL_SOCKET, SO_LINGER, &l, sizeof l) == 0);
            client = unique_fd();
            reset_sent = true;
        }
    }
    BOOST_TEST(received == "before");
    BOOST_REQUIRE(ended);
    BOOST_TEST(last.result == -ECONNRESET, last);
    BOOST_TEST(inst.buffers().in_use() == 0u);
}

// EMFILE during a multishot accept (RLIMIT_NOFILE lowered in a child): the stream ends with
// EMFILE, no `more`; once descriptors are free a re-armed stream serves again.
BOOST_AUTO_TEST_CASE(emfile_ends_the_accept_stream_and_it_serves_again) {
    const pid_t pid = ::fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) try {
        instance_options o;
        o.mode = dispatch_mode::inline_mode;
        default_instance inst(o);
        loopback_listener l;
        std::vector<unique_fd> clients, spare;
        // Leave room for exactly two accepted connections (the clients need their own fds).
        for (int i = 0; i < 4; ++i) {
            clients.emplace_back(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
            if (::connect(clients.back(), reinterpret_cast<const sockaddr*>(&l.addr), sizeof l.addr) != 0) ::_exit(10);
        }
        int highest = 0;
        for (int fd = 0; fd < 1024; ++fd)
            if (::fcntl(fd, F_GETFD) != -1) highest = fd;
        rlimit lim{};
        ::getrlimit(RLIMIT_NOFILE, &lim);
        const rlim_t saved = lim.rlim_cur;
        lim.rlim_cur = static_cast<rlim_t>(highest + 3); // fds highest+1, highest+2 free
        for (int fd = 0; fd <= highest; ++fd) // holes below the highest fd would be used first
            if (::fcntl(fd, F_GETFD) == -1) spare.emplace_back(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) ::_exit(11);
        if (inst.submit(op::tagged(op::accept_multishot(l.fd, SOCK_CLOEXEC), 1))) ::_exit(15);
        std::vector<completion_entry> got;
        completion_entry out[8];
        const auto deadline = std::chrono::steady_clock::now() + 5s;
        while (std::chrono::steady_clock::now() < deadline && (got.empty() || got.back().more())) {
            const std::size_t n = inst.wait_completions(out, 20);
            got.insert(got.end(), out, out + n);
        }
        if (got.size() != 3) ::_exit(12);
        if (got[0].result < 0 || got[1].result < 0) ::_exit(13);
        if (got[2].result != -EMFILE || got[2].more()) ::_exit(14);
        for (int i = 0; i < 2; ++i) ::close(static_cast<int>(got[i].result));
        lim.rlim_cur = saved;
        ::setrlimit(RLIMIT_NOFILE, &lim);
        if (inst.submit(op::tagged(op::accept_multishot(l.fd, SOCK_CLOEXEC), 2))) ::_exit(15);
        std::vector<completion_entry> again;
        const auto until = std::chrono::steady_clock::now() + 5s;
        while (again.size() < 1 && std::chrono::steady_clock::now() < until) {
            const std::size_t n = inst.wait_completions(out, 20);
            again.insert(again.end(), out, out + n);
        }
        // The connection the kernel could not hand over is still in the backlog, or was dropped
        // (kernels differ); a new client is served in any case.
        if (again.empty()) {
            clients.emplace_back(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
            if (::connect(clients.back(), reinterpret_cast<const sockaddr*>(&l.addr), sizeof l.addr) != 0) ::_exit(16);
            const auto until2 = std::chrono::steady_clock::now() + 5s;
            while (again.empty() && std::chrono::steady_clock::now() < until2) {
                const std::size_t n = inst.wait_completions(out, 20);
                again.insert(again.end(), out, out + n);
            }
        }
        if (again.empty() || again[0].result < 0 || !again[0].more()) ::_exit(17);
        ::_exit(0);
    } catch (...) {
        ::_exit(19);
    }
    int st = 0;
    BOOST_REQUIRE(::waitpid(pid, &st, 0) == pid);
    BOOST_TEST((WIFEXITED(st) && WEXITSTATUS(st) == 0),
               "child status " << st << " (10 connect, 11 setrlimit, 12 count, 13 accepted, 14 emfile, 15 submit, "
                                        "16 reconnect, 17 served again, 19 exception)");
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace ksvc::test::buffers
