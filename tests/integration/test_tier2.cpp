// Tier 2: every worker-pool route family that can run safely in a test, through
// ksvc::default_instance under each ring configuration, compared with the same call made directly.
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <linux/limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <ksvc/executor/sys.hpp>
#include <ksvc/module/presets.hpp>

#include "support/fixtures.hpp"

namespace ksvc::test::tier2 {
namespace {

namespace bdata = boost::unit_test::data;
namespace nr = ksvc::syscalls::native;

//! One default_instance for one configuration; call() proves the route is Tier 2 and that the
//! completion is a kernel result, not a framework error.
struct harness {
    run_config cfg;
    default_instance inst;
    explicit harness(const run_config& c) : cfg(c), inst(options_for(c)) {}

    std::int64_t call(const submit_entry& e) {
        const route_info r = inst.router().route(e.nr);
        BOOST_TEST((r.tier == tier::worker_pool),
                   syscalls::name_of(e.nr) << " is routed to " << to_string(r.tier) << ", not worker_pool");
        const completion_entry c = inst.call(e);
        BOOST_TEST(!(c.flags & completion_flags::ksvc_error), syscalls::name_of(e.nr) << ": framework error " << c);
        BOOST_TEST(c.nr == e.nr);
        return c.result;
    }
    template <class... A>
    std::int64_t call(std::uint32_t n, A... a) {
        return call(sys::make(n, a...));
    }

    //! The same entry through submit() + the completion queue (corr_id echoed).
    std::int64_t submit_and_wait(const submit_entry& in, std::uint64_t corr) {
        submit_entry e = in;
        e.corr_id = corr;
        BOOST_REQUIRE(!inst.submit(e));
        completion_entry out[8];
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (std::chrono::steady_clock::now() < deadline) {
            std::size_t n = inst.wait_completions(out, 10);
            for (std::size_t i = 0; i < n; ++i) {
                BOOST_TEST(out[i].corr_id == corr);
                if (out[i].corr_id == corr) return out[i].result;
            }
        }
        BOOST_FAIL("no completion for corr_id " << corr);
        return 0;
    }
};

const std::int64_t ebadf = -EBADF;

struct stat stat_of(int fd) {
    struct stat st {};
    BOOST_REQUIRE(::fstat(fd, &st) == 0);
    return st;
}

bool same_stat(const struct stat& a, const struct stat& b) {
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_mode == b.st_mode && a.st_nlink == b.st_nlink &&
           a.st_uid == b.st_uid && a.st_gid == b.st_gid && a.st_rdev == b.st_rdev && a.st_size == b.st_size &&
           a.st_blksize == b.st_blksize && a.st_blocks == b.st_blocks && a.st_mtim.tv_sec == b.st_mtim.tv_sec &&
           a.st_mtim.tv_nsec == b.st_mtim.tv_nsec && a.st_ctim.tv_sec == b.st_ctim.tv_sec &&
           a.st_ctim.tv_nsec == b.st_ctim.tv_nsec;
}

void write_file(const std::string& path, const std::string& content) {
    unique_fd fd(::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644));
    BOOST_REQUIRE(fd >= 0);
    BOOST_REQUIRE(::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()));
}

std::pair<unique_fd, unique_fd> make_pipe() {
    int p[2];
    BOOST_REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    return {unique_fd(p[0]), unique_fd(p[1])};
}

} // namespace

BOOST_AUTO_TEST_SUITE(tier2_worker_pool)

BOOST_DATA_TEST_CASE(dup_family, bdata::make(run_configs()), cfg) {
    harness h(cfg);
    temp_dir d;
    write_file(d.file("f"), "hello");
    unique_fd fd(::open(d.file("f").c_str(), O_RDONLY | O_CLOEXEC));
    BOOST_REQUIRE(fd >= 0);
    const ino_t ino = stat_of(fd).st_ino;

    // dup: a new descriptor on the same file, without FD_CLOEXEC.
    const std::int64_t d1 = h.call(nr::dup, fd.fd);
    BOOST_REQUIRE(d1 >= 0);
    unique_fd g1(static_cast<int>(d1));
    BOOST_TEST(g1.fd != fd.fd);
    BOOST_TEST(stat_of(g1).st_ino == ino);
    BOOST_TEST(::fcntl(g1, F_GETFD) == 0);
    BOOST_TEST(h.call(nr::dup, -1) == direct(nr::dup, -1));
    BOOST_TEST(h.call(nr::dup, -1) == ebadf);

    // dup2 onto an open descriptor replaces it; dup2(fd, fd) is a no-op returning fd.
    unique_fd target(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    BOOST_REQUIRE(target >= 0);
    BOOST_TEST(h.call(nr::dup2, fd.fd, target.fd) == target.fd);
    BOOST_TEST(stat_of(target).st_ino == ino);
    BOOST_TEST(h.call(nr::dup2, fd.fd, fd.fd) == fd.fd);
    BOOST_TEST(h.call(nr::dup2, -1, target.fd) == direct(nr::dup2, -1, target.fd));

    // dup3 with O_CLOEXEC sets FD_CLOEXEC; dup3(fd, fd) and unknown flags are EINVAL as direct.
    unique_fd target3(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    BOOST_REQUIRE(target3 >= 0);
    BOOST_TEST(h.call(nr::dup3, fd.fd, target3.fd, O_CLOEXEC) == target3.fd);
    BOOST_TEST(stat_of(target3).st_ino == ino);
    BOOST_TEST(::fcntl(target3, F_GETFD) == FD_CLOEXEC);
    BOOST_TEST(h.call(nr::dup3, fd.fd, fd.fd, 0) == direct(nr::dup3, fd.fd, fd.fd, 0));
    BOOST_TEST(h.call(nr::dup3, fd.fd, fd.fd, 0) == -EINVAL);
    BOOST_TEST(h.call(nr::dup3, fd.fd, target3.fd, 0x4) == direct(nr::dup3, fd.fd, target3.fd, 0x4));
}

BOOST_DATA_TEST_CASE(fcntl_flags, bdata::make(run_configs()), cfg) {
    harness h(cfg);
    auto [r, w] = make_pipe();
    BOOST_TEST(h.call(nr::fcntl, r.fd, F_GETFL) == direct(nr::fcntl, r.fd, F_GETFL));
    BOOST_TEST(h.call(nr::fcntl, r.fd, F_GETFD) == direct(nr::fcntl, r.fd, F_GETFD));
    BOOST_TEST(h.call(nr::fcntl, r.fd, F_GETFD) == FD_CLOEXEC);

    // F_SETFL O_NONBLOCK is visible to a direct F_GETFL (same open file description).
    const int before = ::fcntl(r, F_GETFL);
    BOOST_TEST(h.call(nr::fcntl, r.fd, F_SETFL, before | O_NONBLOCK) == 0);
    BOOST_TEST((::fcntl(r, F_GETFL) & O_NONBLOCK) != 0);
    char c;
    BOOST_TEST(::read(r, &c, 1) == -1); // and it takes effect: an empty pipe says EAGAIN
    BOOST_TEST(errno == EAGAIN);
    BOOST_TEST(h.call(nr::fcntl, r.fd, F_SETFL, before) == 0);
    BOOST_TEST((::fcntl(r, F_GETFL) & O_NONBLOCK) == 0);

    // F_SETFD clears close-on-exec; F_DUPFD_CLOEXEC allocates at or above the floor.
    BOOST_TEST(h.call(nr::fcntl, w.fd, F_SETFD, 0) == 0);
    BOOST_TEST(::fcntl(w, F_GETFD) == 0);
    const std::int64_t dupfd = h.call(nr::fcntl, w.fd, F_DUPFD_CLOEXEC, 100);
    BOOST_TEST(dupfd >= 100);
    if (dupfd >= 0) ::close(static_cast<int>(dupfd));

    // Errors as direct: bad fd, bad command.
    BOOST_TEST(h.call(nr::fcntl, -1, F_GETFL) == direct(nr::fcntl, -1, F_GETFL));
    BOOST_TEST(h.call(nr::fcntl, r.fd, 0x7fff) == direct(nr::fcntl, r.fd, 0x7fff));
    BOOST_TEST(h.call(nr::fcntl, r.fd, 0x7fff) == -EINVAL);
    // The same through submit() and the completion queue.
    BOOST_TEST(h.submit_and_wait(sys::fcntl(r.fd, F_GETFL), 42) == direct(nr::fcntl, r.fd, F_GETFL));
}

BOOST_DATA_TEST_CASE(lseek_positions, bdata::make(run_configs()), cfg) {
    harness h(cfg);
    temp_dir d;
    write_file(d.file("f"), std::string(100, 'x'));
    unique_fd fd(::open(d.file("f").c_str(), O_RDONLY | O_CLOEXEC));
    BOOST_REQUIRE(fd >= 0);
    BOOST_TEST(h.call(nr::lseek, fd.fd, 10, SEEK_SET) == 10);
    BOOST_TEST(::lseek(fd, 0, SEEK_CUR) == 10);
    BOOST_TEST(h.call(nr::lseek, fd.fd, 5, SEEK_CUR) == 15);
    BOOST_TEST(h.call(nr::lseek, fd.fd, -1, SEEK_END) == 99);
    BOOST_TEST(::lseek(fd, 0, SEEK_CUR) == 99);
    BOOST_TEST(h.call(nr::lseek, fd.fd, 0, SEEK_DATA) == direct(nr::lseek, fd.fd, 0, SEEK_DATA));
    // Errors as direct: negative result, bad whence, a pipe, a bad fd.
    BOOST_TEST(h.call(nr::lseek, fd.fd, -1000, SEEK_SET) == direct(nr::lseek, fd.fd, -1000, SEEK_SET));
    BOOST_TEST(h.call(nr::lseek, fd.fd, 0, 42) == -EINVAL);
    auto [r, w] = make_pipe();
    BOOST_TEST(h.call(nr::lseek, r.fd, 0, SEEK_SET) == direct(nr::lseek, r.fd, 0, SEEK_SET));
    BOOST_TEST(h.call(nr::lseek, r.fd, 0, SEEK_SET) == -ESPIPE);
    BOOST_TEST(h.call(nr::lseek, -1, 0, SEEK_SET) == ebadf);
}

BOOST_DATA_TEST_CASE(getdents64_matches_readdir, bdata::make(run_configs()), cfg) {
    harness h(cfg);
    temp_dir d;
    std::set<std::string> files = {"alpha", "beta", "gamma.txt", std::string(200, 'l')};
    for (int i = 0; i < 40; ++i) files.insert("file-" + std::to_string(i)); // more than one buffer's worth
    for (const auto& f : files) write_file(d.file(f), f);
    BOOST_REQUIRE(::mkdir(d.file("subdir").c_str(), 0755) == 0);

    std::map<std::string, unsigned char> expected;
    DIR* dir = ::opendir(d.path.c_str());
    BOOST_REQUIRE(dir != nullptr);
    while (dirent* e = ::readdir(dir)) expected[e->d_name] = e->d_type;
    ::closedir(dir);
    BOOST_TEST(expected.size() == files.size() + 3); // + subdir, ".", ".."

    unique_fd fd(::open(d.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    BOOST_REQUIRE(fd >= 0);
    std::map<std::string, unsigned char> got;
    alignas(8) char buf[1024]; // small: several calls are needed
    for (int rounds = 0; rounds < 1000; ++rounds) {
        const std::int64_t n = h.call(nr::getdents64, fd.fd, buf, sizeof buf);
        BOOST_REQUIRE(n >= 0);
        if (n == 0) break;
        for (std::int64_t off = 0; off < n;) {
            // struct linux_dirent64 { u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
            std::uint16_t reclen;
            std::memcpy(&reclen, buf + off + 16, sizeof reclen);
            const unsigned char type = static_cast<unsigned char>(buf[off + 18]);
            const std::string name(buf + off + 19);
            BOOST_TEST(got.count(name) == 0u, "duplicate " << name);
            got[name] = type;
            BOOST_REQUIRE(reclen > 0);
            off += reclen;
        }
    }
    BOOST_TEST((got == expected));
    BOOST_TEST(got.at("subdir") == DT_DIR);
    BOOST_TEST(got.at("alpha") == DT_REG);
    // Errors as direct: not a directory, bad fd, a buffer too small for one entry.
    unique_fd file(::open(d.file("alpha").c_str(), O_RDONLY | O_CLOEXEC));
    BOOST_TEST(h.call(nr::getdents64, file.fd, buf, sizeof buf) == direct(nr::getdents64, file.fd, buf, sizeof buf));
    BOOST_TEST(h.call(nr::getdents64, -1, buf, sizeof buf) == ebadf);
    unique_fd fd2(::open(d.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    unique_fd fd3(::open(d.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    BOOST_TEST(h.call(nr::getdents64, fd2.fd, buf, 8) == direct(nr::getdents64, fd3.fd, buf, 8));
}

BOOST_DATA_TEST_CASE(socket_options, bdata::make(run_configs()), cfg) {
    harness h(cfg);
    unique_fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    BOOST_REQUIRE(s >= 0);
    int one = 1;
    BOOST_TEST(h.call(nr::setsockopt, s.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0);
    int v = 0;
    socklen_t len = sizeof v;
    BOOST_REQUIRE(::getsockopt(s, SOL_SOCKET, SO_REUSEADDR, &v, &len) == 0);
    BOOST_TEST(v == 1);

    const int rcvbuf = 65536;
    BOOST_TEST(h.call(nr::setsockopt, s.fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) == 0);
    int via_ksvc = 0, via_direct = 0;
    socklen_t l1 = sizeof via_ksvc, l2 = sizeof via_direct;
    BOOST_TEST(h.call(nr::getsockopt, s.fd, SOL_SOCKET, SO_RCVBUF, &via_ksvc, &l1) == 0);
    BOOST_TEST(direct(nr::getsockopt, s.fd, SOL_SOCKET, SO_RCVBUF, &via_direct, &l2) == 0);
    BOOST_TEST(via_ksvc == via_direct);
    BOOST_TEST(l1 == l2);
    BOOST_TEST(via_ksvc >= rcvbuf); // the kernel doubles it

    BOOST_TEST(h.call(nr::setsockopt, s.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0);
    v = 0;
    l1 = sizeof v;
    BOOST_TEST(h.call(nr::getsockopt, s.fd, IPPROTO_TCP, TCP_NODELAY, &v, &l1) == 0);
    BOOST_TEST(v == 1);

    // Errors as direct: not a socket, unknown option, short optlen.
    auto [r, w] = make_pipe();
    BOOST_TEST(h.call(nr::setsockopt, r.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ==
               direct(nr::setsockopt, r.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
    BOOST_TEST(h.call(nr::setsockopt, r.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == -ENOTSOCK);
    BOOST_TEST(h.call(nr::setsockopt, s.fd, SOL_SOCKET, 0x7777, &one, sizeof one) ==
               direct(nr::setsockopt, s.fd, SOL_SOCKET, 0x7777, &one, sizeof one));
    BOOST_TEST(h.call(nr::setsockopt, s.fd, SOL_SOCKET, SO_REUSEADDR, &one, 1) ==
               direct(nr::setsockopt, s.fd, SOL_SOCKET, SO_REUSEADDR, &one, 1));
}

BOOST_DATA_TEST_CASE(socket_names_and_pairs, bdata::make(run_configs()), cfg) {
    harness h(cfg);
    loopback_listener l;
    sockaddr_in a{}, b{};
    socklen_t la = sizeof a, lb = sizeof b;
    BOOST_TEST(h.call(nr::getsockname, l.fd.fd, &a, &la) == 0);
    BOOST_TEST(direct(nr::getsockname, l.fd.fd, &b, &lb) == 0);
    BOOST_TEST(la == lb);
    BOOST_TEST(std::memcmp(&a, &b, sizeof a) == 0);
    BOOST_TEST(a.sin_port == l.addr.sin_port);
    auto [c, s] = tcp_pair();
    la = sizeof a;
    BOOST_TEST(h.call(nr::getpeername, s.fd, &a, &la) == 0);
    lb = sizeof b;
    BOOST_TEST(::getsockname(c, reinterpret_cast<sockaddr*>(&b), &lb) == 0);
    BOOST_TEST(a.sin_port == b.sin_port);
    BOOST_TEST(h.call(nr::getpeername, l.fd.fd, &a, &la) == -ENOTCONN);

    // socketpair: both ends work.
    int sv[2] = {-1, -1};
    BOOST_TEST(h.call(nr::socketpair, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    unique_fd s0(sv[0]), s1(sv[1]);
    BOOST_REQUIRE(s0 >= 0);
    BOOST_REQUIRE(s1 >= 0);
    BOOST_TEST(::write(s0, "ping", 4) == 4);
    char buf[8] = {};
    BOOST_TEST(::read(s1, buf, sizeof buf) == 4);
    BOOST_TEST(std::string(buf, 4) == "ping");
    BOOST_TEST(::fcntl(s0, F_GETFD) == FD_CLOEXEC);
    BOOST_TEST(h.call(nr::socketpair, AF_INET, SOCK_STREAM, 0, sv) == direct(nr::socketpair, AF_INET, SOCK_STREAM, 0, sv));
}

BOOST_DATA_TEST_CASE(ioctl_fionread, bdata::make(run_configs()), cfg) {
    harness h(cfg);
    auto [r, w] = make_pipe();
    int n = -1, m = -1;
    BOOST_TEST(h.call(nr::ioctl, r.fd, FIONREAD, &n) == 0);
    BOOST_TEST(n == 0);
    BOOST_REQUIRE(::write(w, "hello", 5) == 5);
    BOOST_TEST(h.call(nr::ioctl, r.fd, FIONREAD, &n) == 0);
    BOOST_TEST(direct(nr::ioctl, r.fd, FIONREAD, &m) == 0);
    BOOST_TEST(n == 5);
    BOOST_TEST(n == m);
    // Errors as direct: unknown request, bad fd.
    BOOST_TEST(h.call(nr::ioctl, r.fd, 0x5489, &n) == direct(nr::ioctl, r.fd, 0x5489, &n));
    BOOST_TEST(h.call(nr::ioctl, -1, FIONREAD, &n) == ebadf);
}

BOOST_DATA_TEST_CASE(stat_family, bdata::make(run_configs()), cfg) {
    harness h(cfg);
    temp_dir d;
    write_file(d.file("f"), "some bytes");
    BOOST_REQUIRE(::symlink("f", d.file("link").c_str()) == 0);
    const std::string f = d.file("f"), link = d.file("link");

    struct stat a {}, b {};
    BOOST_TEST(h.call(nr::stat, f.c_str(), &a) == 0);
    BOOST_TEST(direct(nr::stat, f.c_str(), &b) == 0);
    BOOST_TEST(same_stat(a, b));
    BOOST_TEST(std::memcmp(&a, &b, sizeof a) == 0);
    BOOST_TEST(a.st_size == 10);

    // stat follows the link, lstat does not.
    struct stat sl {}, ll {}, lld {};
    BOOST_TEST(h.call(nr::stat, link.c_str(), &sl) == 0);
    BOOST_TEST(same_stat(sl, a));
    BOOST_TEST(h.call(nr::lstat, link.c_str(), &ll) == 0);
    BOOST_TEST(direct(nr::lstat, link.c_str(), &lld) == 0);
    BOOST_TEST(same_stat(ll, lld));
    BOOST_TEST(S_ISLNK(ll.st_mode));

    unique_fd fd(::open(f.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat fa {}, fb {};
    BOOST_TEST(h.call(nr::fstat, fd.fd, &fa) == 0);
    BOOST_TEST(direct(nr::fstat, fd.fd, &fb) == 0);
    BOOST_TEST(std::memcmp(&fa, &fb, sizeof fa) == 0);

    unique_fd dir(::open(d.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    struct stat na {}, nb {};
    BOOST_TEST(h.call(nr::newfstatat, dir.fd, "link", &na, AT_SYMLINK_NOFOLLOW) == 0);
    BOOST_TEST(direct(nr::newfstatat, dir.fd, "link", &nb, AT_SYMLINK_NOFOLLOW) == 0);
    BOOST_TEST(std::memcmp(&na, &nb, sizeof na) == 0);
    BOOST_TEST(S_ISLNK(na.st_mode));
    BOOST_TEST(h.call(nr::newfstatat, dir.fd, "link", &na, 0) == 0);
    BOOST_TEST(same_stat(na, a));
    BOOST_TEST(h.call(nr::newfstatat, fd.fd, "", &na, AT_EMPTY_PATH) == 0);
    BOOST_TEST(same_stat(na, a));

    // Errors as direct.
    const std::string missing = d.file("missing");
    BOOST_TEST(h.call(nr::stat, missing.c_str(), &a) == direct(nr::stat, missing.c_str(), &b));
    BOOST_TEST(h.call(nr::stat, missing.c_str(), &a) == -ENOENT);
    BOOST_TEST(h.call(nr::fstat, -1, &a) == ebadf);
    BOOST_TEST(h.call(nr::newfstatat, dir.fd, "x", &a, 0x12345678) == direct(nr::newfstatat, dir.fd, "x", &b, 0x12345678));
}

BOOST_DATA_TEST_CASE(access_and_readlink, bdata::make(run_configs()), cfg) {
    harness h(cfg);
    temp_dir d;
    write_file(d.file("f"), "x");
    BOOST_REQUIRE(::symlink("f", d.file("link").c_str()) == 0);
    const std::string f = d.file("f"), link = d.file("link"), missing = d.file("missing");

    BOOST_TEST(h.call(nr::access, f.c_str(), F_OK) == 0);
    BOOST_TEST(h.call(nr::access, f.c_str(), R_OK | W_OK) == direct(nr::access, f.c_str(), R_OK | W_OK));
    BOOST_TEST(h.call(nr::access, f.c_str(), X_OK) == direct(nr::access, f.c_str(), X_OK));
    BOOST_TEST(h.call(nr::access, missing.c_str(), F_OK) == -ENOENT);
    BOOST_TEST(h.call(nr::access, f.c_str(), 0x40) == direct(nr::access, f.c_str(), 0x40));
    unique_fd dir(::open(d.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    BOOST_TEST(h.call(nr::faccessat, dir.fd, "f", R_OK) == 0);
    BOOST_TEST(h.call(nr::faccessat, dir.fd, "missing", F_OK) == direct(nr::faccessat, dir.fd, "missing", F_OK));
    BOOST_TEST(h.call(nr::faccessat2, dir.fd, "link", F_OK, AT_SYMLINK_NOFOLLOW) ==
               direct(nr::faccessat2, dir.fd, "link", F_OK, AT_SYMLINK_NOFOLLOW));

    char a[PATH_MAX] = {}, b[PATH_MAX] = {};
    const std::int64_t n = h.call(nr::readlink, link.c_str(), a, sizeof a);
    BOOST_TEST(n == direct(nr::readlink, link.c_str(), b, sizeof b));
    BOOST_TEST(n == 1);
    BOOST_TEST(std::string(a, 1) == "f");
    BOOST_TEST(h.call(nr::readlinkat, dir.fd, "link", a, sizeof a) == 1);
    BOOST_TEST(h.call(nr::readlink, f.c_str(), a, sizeof a) == -EINVAL); // not a link
    BOOST_TEST(h.call(nr::readlink, missing.c_str(), a, sizeof a) == -ENOENT);
}

BOOST_DATA_TEST_CASE(chmod_truncate_utimes, bdata::make(run_configs()), cfg) {
    harness h(cfg);
    temp_dir d;
    write_file(d.file("f"), std::string(100, 'y'));
    const std::string f = d.file("f"), missing = d.file("missing");
    struct stat st {};

    BOOST_TEST(h.call(nr::chmod, f.c_str(), 0640) == 0);
    BOOST_REQUIRE(::stat(f.c_str(), &st) == 0);
    BOOST_TEST((st.st_mode & 07777) == 0640u);
    unique_fd fd(::open(f.c_str(), O_RDWR | O_CLOEXEC));
    BOOST_TEST(h.call(nr::fchmod, fd.fd, 0600) == 0);
    BOOST_REQUIRE(::fstat(fd, &st) == 0);
    BOOST_TEST((st.st_mode & 07777) == 0600u);
    unique_fd dir(::open(d.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    BOOST_TEST(h.call(nr::fchmodat, dir.fd, "f", 0604) == 0);
    BOOST_REQUIRE(::fstat(fd, &st) == 0);
    BOOST_TEST((st.st_mode & 07777) == 0604u);
    BOOST_TEST(h.call(nr::chmod, missing.c_str(), 0600) == direct(nr::chmod, missing.c_str(), 0600));
    BOOST_TEST(h.call(nr::fchmod, -1, 0600) == ebadf);

    BOOST_TEST(h.call(nr::truncate, f.c_str(), 10) == 0);
    BOOST_REQUIRE(::fstat(fd, &st) == 0);
    BOOST_TEST(st.st_size == 10);
    BOOST_TEST(h.call(nr::truncate, f.c_str(), -1) == direct(nr::truncate, f.c_str(), -1));
    BOOST_TEST(h.call(nr::truncate, f.c_str(), -1) == -EINVAL);
    BOOST_TEST(h.call(nr::truncate, missing.c_str(), 0) == -ENOENT);

    BOOST_TEST(h.call(nr::fchown, fd.fd, ::getuid(), ::getgid()) == 0);
    const timespec times[2] = {{1000000000, 0}, {1234567890, 500}};
    BOOST_TEST(h.call(nr::utimensat, dir.fd, "f", times, 0) == 0);
    BOOST_REQUIRE(::fstat(fd, &st) == 0);
    BOOST_TEST(st.st_mtim.tv_sec == 1234567890);
    BOOST_TEST(st.st_mtim.tv_nsec == 500);
    BOOST_TEST(h.call(nr::flock, fd.fd, LOCK_EX | LOCK_NB) == 0);
    BOOST_TEST(h.call(nr::flock, fd.fd, LOCK_UN) == 0);
}

BOOST_DATA_TEST_CASE(process_wide_state, bdata::make(run_configs()), cfg) {
    harness h(cfg);
    // getcwd returns the length including the terminating NUL, like the raw syscall.
    char a[PATH_MAX] = {}, b[PATH_MAX] = {};
    const std::int64_t n = h.call(nr::getcwd, a, sizeof a);
    BOOST_TEST(n == direct(nr::getcwd, b, sizeof b));
    BOOST_TEST(std::string(a) == std::string(b));
    char libc[PATH_MAX];
    BOOST_REQUIRE(::getcwd(libc, sizeof libc) != nullptr);
    BOOST_TEST(std::string(a) == std::string(libc));
    BOOST_TEST(n == static_cast<std::int64_t>(std::strlen(libc) + 1));
    BOOST_TEST(h.call(nr::getcwd, a, 1) == -ERANGE);

    // umask is per process: the worker's change is the caller's.
    const mode_t old = ::umask(022);
    BOOST_TEST(h.call(nr::umask, 027) == 022);
    BOOST_TEST(::umask(old) == 027u);

    BOOST_TEST(h.call(nr::getppid) == static_cast<std::int64_t>(::getppid()));
    BOOST_TEST(h.call(nr::kill, ::getpid(), 0) == 0);
    BOOST_TEST(h.call(nr::sched_yield) == 0);
    uid_t r1, e1, s1, r2, e2, s2;
    BOOST_TEST(h.call(nr::getresuid, &r1, &e1, &s1) == 0);
    BOOST_TEST(::getresuid(&r2, &e2, &s2) == 0);
    BOOST_TEST(r1 == r2);
    BOOST_TEST(e1 == e2);
    BOOST_TEST(s1 == s2);
    rlimit via{}, dir{};
    BOOST_TEST(h.call(nr::prlimit64, 0, RLIMIT_NOFILE, nullptr, &via) == 0);
    BOOST_REQUIRE(::getrlimit(RLIMIT_NOFILE, &dir) == 0);
    BOOST_TEST(via.rlim_cur == dir.rlim_cur);
    BOOST_TEST(via.rlim_max == dir.rlim_max);
    timespec ra{}, rb{};
    BOOST_TEST(h.call(nr::clock_getres, CLOCK_MONOTONIC, &ra) == 0);
    BOOST_REQUIRE(::clock_getres(CLOCK_MONOTONIC, &rb) == 0);
    BOOST_TEST(ra.tv_nsec == rb.tv_nsec);
    struct statfs fa {}, fb {};
    BOOST_TEST(h.call(nr::statfs, "/", &fa) == 0);
    BOOST_REQUIRE(::statfs("/", &fb) == 0);
    BOOST_TEST(fa.f_type == fb.f_type);
    BOOST_TEST(fa.f_bsize == fb.f_bsize);
}

BOOST_DATA_TEST_CASE(new_descriptors, bdata::make(run_configs()), cfg) {
    harness h(cfg);
    // eventfd2: the counter starts at the initial value.
    const std::int64_t efd = h.call(nr::eventfd2, 3, EFD_CLOEXEC);
    BOOST_REQUIRE(efd >= 0);
    unique_fd e(static_cast<int>(efd));
    std::uint64_t v = 0;
    BOOST_TEST(::read(e, &v, sizeof v) == static_cast<ssize_t>(sizeof v));
    BOOST_TEST(v == 3u);
    BOOST_TEST(::fcntl(e, F_GETFD) == FD_CLOEXEC);
    BOOST_TEST(h.call(nr::eventfd2, 0, 0x7fffffff) == direct(nr::eventfd2, 0, 0x7fffffff));

    // memfd_create: an anonymous file named as asked.
    const std::int64_t mfd = h.call(nr::memfd_create, "ksvc-tier2", MFD_CLOEXEC);
    BOOST_REQUIRE(mfd >= 0);
    unique_fd m(static_cast<int>(mfd));
    BOOST_TEST(::write(m, "abc", 3) == 3);
    BOOST_TEST(stat_of(m).st_size == 3);
    char link[PATH_MAX] = {};
    const std::string proc = "/proc/self/fd/" + std::to_string(m.fd);
    BOOST_REQUIRE(::readlink(proc.c_str(), link, sizeof link - 1) > 0);
    BOOST_TEST(std::string(link).find("memfd:ksvc-tier2") != std::string::npos, link); // "/memfd:… (deleted)"
    BOOST_TEST(h.call(nr::memfd_create, "x", 0x7fff0000) == direct(nr::memfd_create, "x", 0x7fff0000));

    // copy_file_range and sendfile between two files.
    const std::int64_t out = h.call(nr::memfd_create, "ksvc-tier2-out", MFD_CLOEXEC);
    BOOST_REQUIRE(out >= 0);
    unique_fd o(static_cast<int>(out));
    loff_t in_off = 0;
    BOOST_TEST(h.call(nr::copy_file_range, m.fd, &in_off, o.fd, nullptr, 3, 0) == 3);
    BOOST_TEST(in_off == 3);
    off_t send_off = 1;
    BOOST_TEST(h.call(nr::sendfile, o.fd, m.fd, &send_off, 2) == 2);
    BOOST_TEST(send_off == 3);
    char buf[8] = {};
    BOOST_TEST(::pread(o, buf, sizeof buf, 0) == 5);
    BOOST_TEST(std::string(buf, 5) == "abcbc");
}

BOOST_DATA_TEST_CASE(getrandom_bytes, bdata::make(run_configs()), cfg) {
    harness h(cfg);
    unsigned char buf[64] = {};
    BOOST_TEST(h.call(nr::getrandom, buf, sizeof buf, 0) == 64);
    BOOST_TEST(std::any_of(std::begin(buf), std::end(buf), [](unsigned char c) { return c != 0; }));
    unsigned char other[64] = {};
    BOOST_TEST(h.call(nr::getrandom, other, sizeof other, GRND_NONBLOCK) == 64);
    BOOST_TEST(std::memcmp(buf, other, sizeof buf) != 0);
    BOOST_TEST(h.call(nr::getrandom, buf, sizeof buf, 0x4000) == direct(nr::getrandom, buf, sizeof buf, 0x4000));
    BOOST_TEST(h.call(nr::getrandom, buf, sizeof buf, 0x4000) == -EINVAL);
}

BOOST_DATA_TEST_CASE(nanosleep_short, bdata::make(run_configs()), cfg) {
    harness h(cfg);
    const timespec req{0, 2'000'000};
    timespec rem{};
    const auto t0 = std::chrono::steady_clock::now();
    BOOST_TEST(h.call(nr::nanosleep, &req, &rem) == 0);
    const auto dt = std::chrono::steady_clock::now() - t0;
    BOOST_TEST(dt >= std::chrono::milliseconds(2));
    BOOST_TEST(dt < std::chrono::seconds(5));
    const timespec bad{0, 2'000'000'000};
    BOOST_TEST(h.call(nr::nanosleep, &bad, &rem) == direct(nr::nanosleep, &bad, &rem));
    BOOST_TEST(h.call(nr::nanosleep, &bad, &rem) == -EINVAL);
    const timespec tiny{0, 1000};
    BOOST_TEST(h.call(nr::clock_nanosleep, CLOCK_MONOTONIC, 0, &tiny, nullptr) == 0);
}

BOOST_DATA_TEST_CASE(wait4_on_a_child, bdata::make(run_configs()), cfg) {
    harness h(cfg);
    const pid_t pid = ::fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) ::_exit(7);
    int status = 0;
    rusage ru{};
    // A child of the process (not of the worker thread) is reaped from the pool: wait4 without
    // __WNOTHREAD waits for children of every thread in the group.
    BOOST_TEST(h.call(nr::wait4, pid, &status, 0, &ru) == pid);
    BOOST_TEST(WIFEXITED(status));
    BOOST_TEST(WEXITSTATUS(status) == 7);
    // Nothing left to wait for: ECHILD as direct.
    BOOST_TEST(h.call(nr::wait4, pid, &status, WNOHANG, nullptr) == direct(nr::wait4, pid, &status, WNOHANG, nullptr));
    BOOST_TEST(h.call(nr::wait4, pid, &status, WNOHANG, nullptr) == -ECHILD);
    BOOST_TEST(h.call(nr::wait4, pid, &status, 0x40000000, nullptr) == direct(nr::wait4, pid, &status, 0x40000000, nullptr));
}

BOOST_DATA_TEST_CASE(closed_descriptors_are_ebadf, bdata::make(run_configs()), cfg) {
    harness h(cfg);
    int p[2];
    BOOST_REQUIRE(::pipe(p) == 0);
    ::close(p[0]);
    ::close(p[1]);
    struct stat st {};
    int n = 0;
    for (int fd : {p[0], -1, 1 << 20}) {
        BOOST_TEST_CONTEXT("fd " << fd) {
            BOOST_TEST(h.call(nr::fcntl, fd, F_GETFL) == ebadf);
            BOOST_TEST(h.call(nr::fstat, fd, &st) == direct(nr::fstat, fd, &st));
            BOOST_TEST(h.call(nr::lseek, fd, 0, SEEK_SET) == ebadf);
            BOOST_TEST(h.call(nr::ioctl, fd, FIONREAD, &n) == ebadf);
            BOOST_TEST(h.call(nr::dup, fd) == ebadf);
            BOOST_TEST(h.call(nr::fchmod, fd, 0600) == ebadf);
        }
    }
}

BOOST_DATA_TEST_CASE(call_echoes_corr_id_and_user_flags, bdata::make(run_configs()), cfg) {
    // Whatever tier answers, call() returns the caller's corr_id and flags, never the
    // executor's internal waiter address.
    harness h(cfg);
    auto [r, w] = make_pipe();
    BOOST_REQUIRE(::write(w, "x", 1) == 1);
    char buf[4];
    const submit_entry entries[] = {
        sys::getpid(),                             // Tier 0
        sys::read(r, buf, sizeof buf),             // Tier 1
        sys::fcntl(r, F_GETFL),                    // Tier 2
        sys::make(nr::getrlimit, RLIMIT_STACK, nullptr), // Tier 0 falling back to a worker
        sys::make(nr::setuid, 0),                  // Tier 3
        sys::make(5000),                           // unknown
    };
    std::uint64_t corr = 0x1234'5678'9abc'0000ull;
    for (submit_entry e : entries) {
        e.corr_id = ++corr;
        e.flags = 0x00420000u;
        const completion_entry c = h.inst.call(e);
        BOOST_TEST_CONTEXT(syscalls::name_of(e.nr) << " (" << e.nr << ")") {
            BOOST_TEST(c.corr_id == e.corr_id, c);
            BOOST_TEST(c.entry_flags == e.flags);
            BOOST_TEST(c.nr == e.nr);
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()

} // namespace ksvc::test::tier2
