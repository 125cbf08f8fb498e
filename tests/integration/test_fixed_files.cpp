// Fixed files: a sparse registered table (io_uring_backend<fixed_files<N>>), multishot accept and
// openat straight into it, I/O on direct descriptors, fixed_fd_install, close direct — and the
// refusals: a direct descriptor never reaches a worker, a chain using one is refused whole.
// Real loopback sockets and files, under the resource ring setups (basic in both modes,
// DEFER_TASKRUN inline, SQPOLL, a 4-entry ring).
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include <ksvc/executor/op.hpp>
#include <ksvc/executor/sys.hpp>
#include <ksvc/module/presets.hpp>

#include "support/fixtures.hpp"

namespace ksvc::test::fixed {

namespace bdata = boost::unit_test::data;
using namespace std::chrono_literals;

using files_instance = instance<probe_router, fixed_file_io_uring, fixed_pool, eventfd_notifier, heap_buffers>;
using tiny_table = instance<probe_router, io_uring_backend<fixed_files<2>>, fixed_pool, eventfd_notifier, heap_buffers>;

const std::vector<ring_setup>& modes = ring_setups();

instance_options mode_options(const ring_setup& m) {
    instance_options o;
    m.apply(o);
    return o;
}

unique_fd connect_to(const loopback_listener& l) {
    unique_fd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    BOOST_REQUIRE(::connect(c, reinterpret_cast<const sockaddr*>(&l.addr), sizeof l.addr) == 0);
    return c;
}

BOOST_AUTO_TEST_SUITE(fixed_files_table)

BOOST_DATA_TEST_CASE(multishot_accept_into_the_table_then_echo_through_direct_descriptors, bdata::make(modes), mode) {
    files_instance inst(mode_options(mode));
    BOOST_TEST(inst.call(op::nop()).ok());
    BOOST_TEST((inst.features().setup_flags & mode.setup_flags) == mode.setup_flags); // the setup asked for
    BOOST_TEST(inst.call(op::nop()).ok()); // inline: the first drive registers the table
    BOOST_TEST(inst.features().fixed_files == 1024u);
    loopback_listener l;
    BOOST_REQUIRE(!inst.submit(op::tagged(op::accept_multishot_direct(l.fd), 1)));
    std::vector<unique_fd> clients;
    for (int i = 0; i < 3; ++i) clients.push_back(connect_to(l));
    const auto accepted = take(inst, 3);
    BOOST_REQUIRE(accepted.size() == 3u);
    std::vector<direct_fd> slots;
    for (const auto& c : accepted) {
        BOOST_TEST(c.result >= 0, c);
        BOOST_TEST(c.more());
        slots.push_back(direct_fd{static_cast<std::uint32_t>(c.result)});
    }
    BOOST_TEST((slots[0] != slots[1] && slots[1] != slots[2]));
    // The slot numbers are not fds: the process gained no descriptors for them.
    for (std::size_t i = 0; i < clients.size(); ++i) {
        const std::string msg = "hello " + std::to_string(i);
        BOOST_REQUIRE(::send(clients[i], msg.data(), msg.size(), 0) == static_cast<ssize_t>(msg.size()));
    }
    char bufs[3][32] = {};
    for (std::size_t i = 0; i < slots.size(); ++i) BOOST_REQUIRE(!inst.submit(op::tagged(op::recv(slots[i], bufs[i], 32), 10 + i)));
    const auto got = take(inst, 3);
    BOOST_REQUIRE(got.size() == 3u);
    for (const auto& c : got) {
        BOOST_REQUIRE(c.corr_id >= 10 && c.corr_id < 13);
        const std::size_t i = c.corr_id - 10;
        // Which slot got which client is the kernel's order: match by content length and prefix.
        BOOST_TEST(c.result == 7, c);
        BOOST_TEST(std::string(bufs[i], 6) == "hello ");
    }
    // Echo back through the direct descriptor with call(): it goes through the shared ring.
    for (std::size_t i = 0; i < slots.size(); ++i) {
        const completion_entry c = inst.call(op::send(slots[i], bufs[i], 7));
        BOOST_TEST(c.result == 7, c);
    }
    for (auto& cl : clients) {
        char back[16] = {};
        BOOST_TEST(::recv(cl, back, sizeof back, 0) == 7);
        BOOST_TEST(std::string(back, 6) == "hello ");
    }
    // A real fd when one is needed: the same socket.
    // (IORING_OP_FIXED_FD_INSTALL is 6.8: before it the operation is refused, nothing runs.)
    const completion_entry inst_fd = inst.call(op::fixed_fd_install(slots[0]));
    if (inst.caps().has(opcode::fixed_fd_install)) {
        BOOST_REQUIRE(inst_fd.result >= 0);
        unique_fd real(static_cast<int>(inst_fd.result));
        BOOST_TEST((::fcntl(real, F_GETFD) & FD_CLOEXEC) != 0);
        int type = 0;
        socklen_t len = sizeof type;
        BOOST_TEST(::getsockopt(real, SOL_SOCKET, SO_TYPE, &type, &len) == 0);
        BOOST_TEST(type == SOCK_STREAM);
    } else {
        BOOST_TEST(!inst_fd.ok(), inst_fd);
    }
    // Close direct: the slot is free; I/O on it fails as the kernel says (EBADF).
    for (const auto& s : slots) BOOST_TEST(inst.call(op::close(s)).result == 0);
    char b[4];
    BOOST_TEST(inst.call(op::recv(slots[1], b, 4)).result == -EBADF);
    BOOST_REQUIRE(!inst.submit(op::tagged(op::cancel(1), 2)));
    const auto rest = take(inst, 2);
    BOOST_TEST(rest.size() == 2u);
}

BOOST_DATA_TEST_CASE(openat_direct_reads_and_writes_a_file, bdata::make(modes), mode) {
    files_instance inst(mode_options(mode));
    temp_dir dir;
    const std::string path = dir.file("direct");
    const completion_entry o = inst.call(op::openat_direct(AT_FDCWD, path.c_str(), O_CREAT | O_RDWR, 0600));
    BOOST_REQUIRE(o.result >= 0);
    const direct_fd f{static_cast<std::uint32_t>(o.result)};
    BOOST_TEST(inst.call(op::pwrite(f, "direct!", 7, 0)).result == 7);
    char buf[8] = {};
    BOOST_TEST(inst.call(op::pread(f, buf, 7, 0)).result == 7);
    BOOST_TEST(std::string(buf) == "direct!");
    struct stat st {};
    BOOST_TEST(::stat(path.c_str(), &st) == 0);
    BOOST_TEST(st.st_size == 7);
    BOOST_TEST(inst.call(op::close(f)).result == 0);
}

// A direct descriptor must never reach a worker: it would be read as an fd.
BOOST_DATA_TEST_CASE(a_direct_descriptor_never_reaches_a_worker, bdata::make(modes), mode) {
    files_instance inst(mode_options(mode));
    const direct_fd nowhere{3};
    submit_entry dup_direct = sys::dup(3);
    dup_direct.flags |= entry_flags::fixed_file; // a worker-tier syscall naming a slot
    BOOST_REQUIRE(inst.router().route(dup_direct.number()).tier == tier::worker_pool);
    const completion_entry c = inst.call(dup_direct);
    BOOST_TEST((c.error() == errc::needs_ring), c);
    BOOST_REQUIRE(!inst.submit(op::tagged(dup_direct, 1)));
    auto got = take(inst, 1);
    BOOST_REQUIRE(got.size() == 1u);
    BOOST_TEST((got[0].error() == errc::needs_ring), got[0]);
    // A chain with a direct descriptor and an entry only a worker can run: refused whole.
    const std::size_t fds_before = open_fds();
    char buf[4];
    const submit_entry chain[2] = {op::tagged(op::linked(op::read(nowhere, buf, 4)), 2), op::tagged(sys::dup(0), 3)};
    BOOST_REQUIRE(!inst.submit(std::span<const submit_entry>(chain)));
    got = take(inst, 2);
    BOOST_REQUIRE(got.size() == 2u);
    for (const auto& g : got) BOOST_TEST((g.error() == errc::chain_refused || g.error() == errc::needs_ring), g);
    BOOST_TEST(open_fds() == fds_before); // no worker duplicated anything
}

// A full table: the multishot accept ends with ENFILE (no `more`). The kernel had accepted that
// connection and drops it (its client sees the end of the stream); once a slot is closed, the
// next connection is accepted into it.
BOOST_DATA_TEST_CASE(a_full_table_ends_the_accept_stream_with_enfile, bdata::make(modes), mode) {
    tiny_table inst(mode_options(mode));
    BOOST_TEST(inst.call(op::nop()).ok());
    BOOST_REQUIRE(inst.features().fixed_files == 2u);
    loopback_listener l;
    BOOST_REQUIRE(!inst.submit(op::tagged(op::accept_multishot_direct(l.fd), 1)));
    std::vector<unique_fd> clients;
    for (int i = 0; i < 3; ++i) clients.push_back(connect_to(l));
    const auto got = take(inst, 3);
    BOOST_REQUIRE(got.size() == 3u);
    BOOST_TEST(got[0].result >= 0);
    BOOST_TEST(got[1].result >= 0);
    BOOST_TEST((got[2].result == -ENFILE && !got[2].more()), got[2]);
    BOOST_TEST(inst.call(op::close(direct_fd{static_cast<std::uint32_t>(got[0].result)})).result == 0);
    char b;
    const ssize_t dropped = ::recv(clients[2], &b, 1, 0);
    BOOST_TEST((dropped == 0 || (dropped < 0 && errno == ECONNRESET)), "recv " << dropped);
    BOOST_REQUIRE(!inst.submit(op::tagged(op::accept_direct(l.fd), 4)));
    clients.push_back(connect_to(l));
    const auto again = take(inst, 1);
    BOOST_REQUIRE(again.size() == 1u);
    BOOST_TEST(again[0].result == got[0].result, again[0]); // the freed slot, for the fourth client
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace ksvc::test::fixed
