// Least-privilege rings (restricted<>): the kernel refuses an SQE opcode outside ksvc's set and
// a registration ksvc does not make, with -EACCES; a restricted backend serves the usual work in
// both dispatch modes; server_instance has it on.
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include <liburing.h>

#include <ksvc/executor/op.hpp>
#include <ksvc/executor/sys.hpp>
#include <ksvc/module/presets.hpp>

#include "support/fixtures.hpp"

namespace ksvc::test::restricted_rings {

namespace bdata = boost::unit_test::data;
namespace nr = ksvc::syscalls::native;
const std::vector<dispatch_mode> modes = {dispatch_mode::threaded, dispatch_mode::inline_mode};

// One raw SQE through a ring: its completion's result.
int submit_raw(io_uring& ring, std::uint8_t opcode) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    BOOST_REQUIRE(sqe);
    io_uring_prep_nop(sqe);
    sqe->opcode = opcode;
    sqe->fd = -1;
    BOOST_REQUIRE(io_uring_submit(&ring) == 1);
    io_uring_cqe* cqe = nullptr;
    BOOST_REQUIRE(io_uring_wait_cqe(&ring, &cqe) == 0);
    const int res = cqe->res;
    io_uring_cqe_seen(&ring, cqe);
    return res;
}

BOOST_AUTO_TEST_SUITE(restricted_ring)

BOOST_AUTO_TEST_CASE(the_kernel_refuses_what_the_set_leaves_out) {
    const detail::restriction_set set = detail::ksvc_restrictions(current_capabilities());
    BOOST_TEST(set.sqe_ops.test(IORING_OP_READ));
    BOOST_TEST(set.sqe_ops.test(IORING_OP_ASYNC_CANCEL));
    BOOST_TEST(!set.sqe_ops.test(IORING_OP_URING_CMD)); // nothing in ksvc sends a uring_cmd
    constexpr std::uint8_t outside = IORING_OP_URING_CMD;

    io_uring open_ring{}, locked{};
    BOOST_REQUIRE(io_uring_queue_init(4, &open_ring, 0) == 0);
    const int unrestricted = submit_raw(open_ring, outside); // the kernel's own answer (EBADF, …)
    io_uring_queue_exit(&open_ring);
    BOOST_TEST(unrestricted != -EACCES);

    io_uring_params p{};
    p.flags = IORING_SETUP_R_DISABLED;
    BOOST_REQUIRE(io_uring_queue_init_params(4, &locked, &p) == 0);
    BOOST_REQUIRE(detail::register_restrictions(locked.ring_fd, set) == 0);
    BOOST_REQUIRE(::syscall(__NR_io_uring_register, locked.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0) == 0);
    BOOST_TEST(submit_raw(locked, IORING_OP_NOP) == 0);
    BOOST_TEST(submit_raw(locked, outside) == -EACCES);
    // A registration ksvc never makes after enabling: an eventfd for completions.
    const int efd = ::eventfd(0, EFD_CLOEXEC);
    BOOST_TEST(io_uring_register_eventfd(&locked, efd) == -EACCES);
    ::close(efd);
    io_uring_queue_exit(&locked);
}

using restricted_instance = instance<probe_router, io_uring_backend<restricted>, fixed_pool, eventfd_notifier, heap_buffers>;

BOOST_DATA_TEST_CASE(a_restricted_backend_serves, bdata::make(modes), mode) {
    instance_options o;
    o.mode = mode;
    restricted_instance inst(o);
    inst.call(op::nop()); // attached (inline: the first drive)
    BOOST_TEST(inst.features().restricted);
    BOOST_TEST(inst.features().notes == "");
    temp_dir dir;
    const std::string path = dir.file("data");
    const long fd = inst.call(sys::openat(AT_FDCWD, path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600)).result;
    BOOST_REQUIRE(fd >= 0);
    const char msg[] = "restricted but serving";
    BOOST_TEST(inst.call(sys::pwrite(static_cast<int>(fd), msg, sizeof msg, 0)).result == static_cast<long>(sizeof msg));
    char buf[sizeof msg] = {};
    BOOST_TEST(inst.call(sys::pread(static_cast<int>(fd), buf, sizeof buf, 0)).result == static_cast<long>(sizeof msg));
    BOOST_TEST(std::memcmp(buf, msg, sizeof msg) == 0);
    struct ::statx st{};
    BOOST_TEST(inst.call(sys::statx(AT_FDCWD, path.c_str(), 0, STATX_SIZE, &st)).result == 0);
    BOOST_TEST(st.stx_size == sizeof msg);
    BOOST_TEST(inst.call(sys::close(static_cast<int>(fd))).result == 0);
    // a loopback connection, and a read bounded by a link timeout
    auto [a, b] = tcp_pair();
    BOOST_TEST(inst.call(sys::sendto(a, msg, sizeof msg, 0)).result == static_cast<long>(sizeof msg));
    BOOST_TEST(inst.call(sys::recvfrom(b, buf, sizeof buf, 0)).result == static_cast<long>(sizeof msg));
    BOOST_TEST(inst.call(sys::recvfrom(b, buf, sizeof buf, 0), std::chrono::milliseconds(20)).result == -ECANCELED);
}

BOOST_AUTO_TEST_CASE(server_instance_runs_restricted) {
    server_instance inst;
    inst.call(op::nop());
    BOOST_TEST(inst.features().restricted == (current_capabilities().version >= kernel_version{5, 10}));
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace ksvc::test::restricted_rings
