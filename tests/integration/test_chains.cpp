// Chains over resources: IOSQE_CQE_SKIP_SUCCESS for members whose success needs no completion
// (the kernel posts none; a later member's completion releases them), failures that still
// report, teardown with a skipped member done and a later one blocked, the kernel's drain rule,
// and the echo step of a server as one chain: send a provided buffer's lease (its success
// skipped) linked to the next recv into the ring — one completion per message, the buffer
// recycled only once the send is known to be done. Basic and owner-thread rings, both modes.
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <ksvc/executor/op.hpp>
#include <ksvc/executor/sys.hpp>
#include <ksvc/module/presets.hpp>

#include "support/fixtures.hpp"

namespace ksvc::test::chains {

namespace bdata = boost::unit_test::data;
using namespace std::chrono_literals;

template <class Backend>
using chain_instance = instance<probe_router, Backend, fixed_pool, eventfd_notifier, provided_buffer_ring>;

const std::vector<dispatch_mode> modes = {dispatch_mode::threaded, dispatch_mode::inline_mode};

instance_options options(dispatch_mode m) {
    instance_options o;
    o.mode = m;
    o.buffer_count = 8;
    o.buffer_size = 512;
    o.buffer_incremental = false;
    return o;
}


bool kernel_skips_cqes() { return current_capabilities().version >= kernel_version{5, 17}; }

// write, write (both skipping success) -> read: one completion, the data in order, and the
// kernel posted no CQE for the writes.
template <class Backend>
void skipped_members_post_nothing(dispatch_mode mode) {
    chain_instance<Backend> inst(options(mode));
    pipe_pair p;
    char buf[16] = {};
    const submit_entry chain[] = {op::tagged(op::skip_success(op::linked(sys::write(p.w, "abc", 3))), 1),
                                  op::tagged(op::skip_success(op::linked(sys::write(p.w, "def", 3))), 2),
                                  op::tagged(sys::read(p.r, buf, 6), 3)};
    BOOST_REQUIRE(!inst.submit(chain));
    const auto got = take(inst, 1);
    BOOST_REQUIRE(got.size() == 1u);
    BOOST_TEST(got[0].corr_id == 3u);
    BOOST_TEST(got[0].result == 6);
    BOOST_TEST(std::string(buf, 6) == "abcdef");
    BOOST_TEST(take(inst, 1, 100ms).empty()); // nothing for the writes, ever
    BOOST_TEST(inst.backend().inflight() == 0u);
    BOOST_TEST(inst.backend().kernel_skipped() == (kernel_skips_cqes() ? 2u : 0u));
}

BOOST_AUTO_TEST_SUITE(chains_over_resources)

BOOST_DATA_TEST_CASE(skipped_members_post_no_completion, bdata::make(modes), mode) {
    skipped_members_post_nothing<basic_io_uring>(mode);
}
BOOST_DATA_TEST_CASE(skipped_members_post_no_completion_owner_thread, bdata::make(modes), mode) {
    skipped_members_post_nothing<owner_thread_io_uring>(mode);
}

// A failing member still reports: write to a closed fd (skip_success) -> write -> read. The
// first completes with EBADF, the rest with ECANCELED, as without the flag.
BOOST_DATA_TEST_CASE(a_failing_skipped_member_reports_and_cancels_the_rest, bdata::make(modes), mode) {
    chain_instance<basic_io_uring> inst(options(mode));
    pipe_pair p;
    const int bad = closed_fd();
    char buf[4];
    const submit_entry chain[] = {op::tagged(op::skip_success(op::linked(sys::write(bad, "x", 1))), 1),
                                  op::tagged(op::skip_success(op::linked(sys::write(p.w, "y", 1))), 2),
                                  op::tagged(sys::read(p.r, buf, 1), 3)};
    BOOST_REQUIRE(!inst.submit(chain));
    auto got = take(inst, 3);
    BOOST_REQUIRE(got.size() == 3u);
    std::sort(got.begin(), got.end(), [](auto& a, auto& b) { return a.corr_id < b.corr_id; });
    BOOST_TEST(got[0].result == -EBADF, got[0]);
    BOOST_TEST(got[1].result == -ECANCELED, got[1]);
    BOOST_TEST(got[2].result == -ECANCELED, got[2]);
    BOOST_TEST(inst.backend().inflight() == 0u);
    BOOST_TEST(inst.backend().kernel_skipped() == 0u);
    // The slots are reused by a following chain: its skipped member is released by its own
    // chain's completion, not mistaken for one of the failed chain's.
    char b2[2] = {};
    const submit_entry again[] = {op::tagged(op::skip_success(op::linked(sys::write(p.w, "ok", 2))), 4),
                                  op::tagged(sys::read(p.r, b2, 2), 5)};
    BOOST_REQUIRE(!inst.submit(again));
    got = take(inst, 1);
    BOOST_REQUIRE(got.size() == 1u);
    BOOST_TEST(got[0].corr_id == 5u);
    BOOST_TEST(std::string(b2, 2) == "ok");
    BOOST_TEST(take(inst, 1, 50ms).empty()); // the write's success is counted, not delivered
    BOOST_TEST(inst.backend().inflight() == 0u);
}

// Teardown while a skipped member has succeeded and the member after it is blocked: the drain
// cancels the blocked one and releases the skipped one with it — no hang, nothing left.
BOOST_DATA_TEST_CASE(teardown_with_a_skipped_member_done_and_the_next_blocked, bdata::make(modes), mode) {
    pipe_pair p, idle;
    char buf[4];
    {
        chain_instance<basic_io_uring> inst(options(mode));
        const submit_entry chain[] = {op::tagged(op::skip_success(op::linked(sys::write(p.w, "x", 1))), 1),
                                      op::tagged(sys::read(idle.r, buf, 1), 2)};
        BOOST_REQUIRE(!inst.submit(chain));
        BOOST_TEST(take(inst, 1, 100ms).empty());
        BOOST_TEST(inst.backend().inflight() == 2u); // the write done, unreported; the read waits
    }
    char b;
    BOOST_TEST(::read(p.r, &b, 1) == 1); // the write did happen
}

// The kernel's rule: after CQE_SKIP_SUCCESS a ring refuses IOSQE_IO_DRAIN with EOPNOTSUPP — a
// clear error for the drain entry, nothing hangs.
BOOST_AUTO_TEST_CASE(drain_and_skip_success_on_one_ring) {
    if (!kernel_skips_cqes()) return;
    {
        chain_instance<basic_io_uring> inst(options(dispatch_mode::inline_mode));
        pipe_pair p;
        char buf[2];
        const submit_entry chain[] = {op::tagged(op::skip_success(op::linked(sys::write(p.w, "a", 1))), 1),
                                      op::tagged(sys::read(p.r, buf, 1), 2)};
        BOOST_REQUIRE(!inst.submit(chain));
        BOOST_REQUIRE(take(inst, 1).size() == 1u);
        BOOST_REQUIRE(!inst.submit(op::tagged(op::with(op::nop(), entry_flags::drain), 3)));
        const auto got = take(inst, 1);
        BOOST_REQUIRE(got.size() == 1u);
        BOOST_TEST(got[0].result == -EOPNOTSUPP, got[0]);
    }
}

// The echo step as one chain per message: recv into the provided ring; then send that lease
// (success skipped) linked to the next recv. The recv's completion says the send finished, so
// the previous lease is dropped only then. 40 messages, every byte echoed in order; the buffer
// of a message in flight is never handed out again before its send is done.
template <class Backend>
void echo_chain(dispatch_mode mode) {
    chain_instance<Backend> inst(options(mode));
    auto [client, server] = tcp_pair();
    const std::uint16_t g = inst.buffers().group();
    BOOST_REQUIRE(!inst.submit(op::tagged(op::recv_select(server, 512, g), 1)));
    constexpr int messages = 40;
    std::string sent, echoed;
    std::optional<provided_buffer_ring::lease> sending; // held until the linked recv completes
    std::size_t completions = 0;
    for (int i = 0; i < messages; ++i) {
        const std::string m = "message " + std::to_string(i) + std::string(static_cast<std::size_t>(i * 7 % 300), '.');
        BOOST_REQUIRE(::send(client, m.data(), m.size(), 0) == static_cast<ssize_t>(m.size()));
        sent += m;
        const auto got = take(inst, 1);
        BOOST_REQUIRE(got.size() == 1u);
        ++completions;
        BOOST_REQUIRE_MESSAGE(got[0].result > 0, got[0]);
        sending.reset(); // the previous send is done: its buffer may go back now
        auto l = inst.buffers().take(got[0]);
        BOOST_REQUIRE(static_cast<bool>(l));
        BOOST_TEST(inst.buffers().in_use() == 1u);
        // The echo of this message, then the next recv, as one chain.
        const submit_entry chain[] = {op::tagged(op::skip_success(op::linked(op::send(server, l))), 100 + i),
                                      op::tagged(op::recv_select(server, 512, g), 1)};
        sending.emplace(std::move(l));
        BOOST_REQUIRE(!inst.submit(chain));
        // Read the echo from the client while the chain's recv waits.
        std::string e(static_cast<std::size_t>(got[0].result), '\0');
        std::size_t at = 0;
        const auto until = std::chrono::steady_clock::now() + 5s;
        while (at < e.size() && std::chrono::steady_clock::now() < until) {
            completion_entry none[1];
            BOOST_REQUIRE(inst.wait_completions(none, 1) == 0u); // drives an inline loop; nothing to report
            const ssize_t r = ::recv(client, e.data() + at, e.size() - at, MSG_DONTWAIT);
            if (r > 0) at += static_cast<std::size_t>(r);
            else BOOST_REQUIRE(errno == EAGAIN);
        }
        echoed += e;
    }
    BOOST_TEST((echoed == sent));
    // End: the peer closes; the pending recv completes with 0 (and releases the last send).
    ::shutdown(client, SHUT_WR);
    const auto last = take(inst, 1);
    BOOST_REQUIRE(last.size() == 1u);
    BOOST_TEST(last[0].result == 0, last[0]);
    ++completions;
    sending.reset();
    BOOST_TEST(completions == static_cast<std::size_t>(messages + 1)); // one per message, none per send
    BOOST_TEST(take(inst, 1, 50ms).empty());
    BOOST_TEST(inst.buffers().in_use() == 0u);
    BOOST_TEST(inst.backend().inflight() == 0u);
    BOOST_TEST(inst.backend().kernel_skipped() == (kernel_skips_cqes() ? std::uint64_t{messages} : 0u));
}

BOOST_DATA_TEST_CASE(echo_as_a_send_recv_chain_of_one_provided_buffer, bdata::make(modes), mode) {
    echo_chain<basic_io_uring>(mode);
}
BOOST_DATA_TEST_CASE(echo_as_a_send_recv_chain_of_one_provided_buffer_owner_thread, bdata::make(modes), mode) {
    echo_chain<owner_thread_io_uring>(mode);
}

// The send of a chain fails (the peer reset): its completion arrives — the consumer learns the
// send is over and drops the lease — and the linked recv is cancelled.
BOOST_DATA_TEST_CASE(a_failed_send_in_the_echo_chain_reports_and_releases, bdata::make(modes), mode) {
    chain_instance<basic_io_uring> inst(options(mode));
    auto [client, server] = tcp_pair();
    const std::uint16_t g = inst.buffers().group();
    BOOST_REQUIRE(::send(client, "ping", 4, 0) == 4);
    BOOST_REQUIRE(!inst.submit(op::tagged(op::recv_select(server, 512, g), 1)));
    auto got = take(inst, 1);
    BOOST_REQUIRE(got.size() == 1u);
    auto l = inst.buffers().take(got[0]);
    linger lg{1, 0};
    BOOST_REQUIRE(::setsockopt(client, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
    client = unique_fd(); // RST
    std::this_thread::sleep_for(20ms);
    const submit_entry chain[] = {op::tagged(op::skip_success(op::linked(op::send(server, l, MSG_NOSIGNAL))), 2),
                                  op::tagged(op::recv_select(server, 512, g), 3)};
    BOOST_REQUIRE(!inst.submit(chain));
    got = take(inst, 2);
    BOOST_REQUIRE(got.size() == 2u);
    std::sort(got.begin(), got.end(), [](auto& a, auto& b) { return a.corr_id < b.corr_id; });
    BOOST_TEST((got[0].result == -ECONNRESET || got[0].result == -EPIPE), got[0]);
    BOOST_TEST(got[1].result == -ECANCELED, got[1]);
    l = {}; // the send is over: recycle
    BOOST_TEST(take(inst, 1, 50ms).empty());
    BOOST_TEST(inst.buffers().in_use() == 0u);
    BOOST_TEST(inst.backend().inflight() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace ksvc::test::chains
