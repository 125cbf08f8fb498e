// Tier 1, file descriptors: read/write and their positional and vectored forms, close, the
// sync family, fallocate, fadvise64, madvise, ftruncate — each through ksvc::default_instance
// under every run configuration, compared with the direct syscall (result, data, file position,
// size), plus the asynchronous path for a batch.
#include "test_tier1_common.hpp"

#include <linux/falloc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <algorithm>
#include <chrono>
#include <array>
#include <cstring>
#include <map>
#include <vector>

using namespace ksvc::test;
using namespace ksvc::test::tier1;
namespace sys = ksvc::sys;

namespace {

//! Two identical files opened the same way: `k` for the call through ksvc, `d` for the direct one.
struct twin_files {
    temp_dir dir;
    unique_fd k, d;
    std::string kpath, dpath;
    explicit twin_files(const std::string& content, int flags = O_RDWR) {
        kpath = dir.file("k");
        dpath = dir.file("d");
        write_file(kpath, content);
        write_file(dpath, content);
        k = unique_fd(::open(kpath.c_str(), flags | O_CLOEXEC));
        d = unique_fd(::open(dpath.c_str(), flags | O_CLOEXEC));
        BOOST_REQUIRE(k >= 0);
        BOOST_REQUIRE(d >= 0);
    }
    void seek(off_t off) {
        BOOST_REQUIRE(::lseek(k, off, SEEK_SET) == off);
        BOOST_REQUIRE(::lseek(d, off, SEEK_SET) == off);
    }
    void expect_same_position() { BOOST_TEST(pos(k) == pos(d)); }
    void expect_same_content() {
        BOOST_TEST(read_file(kpath) == read_file(dpath));
        BOOST_TEST(size_of(k) == size_of(d));
    }
};

} // namespace

BOOST_AUTO_TEST_SUITE(tier1_files)

BOOST_DATA_TEST_CASE(read_write_use_and_advance_the_file_position, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    twin_files f(pattern(4096));
    f.seek(100);
    char kb[64] = {}, db[64] = {};
    BOOST_TEST(h.call(sys::read(f.k, kb, sizeof kb)) == direct(nr::read, int(f.d), db, sizeof db));
    BOOST_TEST(std::memcmp(kb, db, sizeof kb) == 0);
    BOOST_TEST(pos(f.k) == 164);
    f.expect_same_position();
    // A second read continues where the first stopped.
    BOOST_TEST(h.call(sys::read(f.k, kb, sizeof kb)) == direct(nr::read, int(f.d), db, sizeof db));
    BOOST_TEST(std::memcmp(kb, db, sizeof kb) == 0);
    f.expect_same_position();

    const std::string msg = "written at the current position";
    BOOST_TEST(h.call(sys::write(f.k, msg.data(), msg.size())) == direct(nr::write, int(f.d), msg.data(), msg.size()));
    BOOST_TEST(pos(f.k) == 228 + static_cast<off_t>(msg.size()));
    f.expect_same_position();
    f.expect_same_content();

    // Reading at end of file: 0, position unchanged.
    f.seek(4096);
    BOOST_TEST(h.call(sys::read(f.k, kb, sizeof kb)) == 0);
    BOOST_TEST(direct(nr::read, int(f.d), db, sizeof db) == 0);
    f.expect_same_position();
}

BOOST_DATA_TEST_CASE(write_on_an_append_fd_goes_to_the_end, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    twin_files f(pattern(1000), O_RDWR | O_APPEND);
    f.seek(10);
    const std::string msg = "tail";
    BOOST_TEST(h.call(sys::write(f.k, msg.data(), msg.size())) == direct(nr::write, int(f.d), msg.data(), msg.size()));
    BOOST_TEST(size_of(f.k) == 1004);
    f.expect_same_position();
    f.expect_same_content();
}

BOOST_DATA_TEST_CASE(pread_pwrite_do_not_move_the_file_position, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    twin_files f(pattern(8192));
    f.seek(3);
    char kb[100] = {}, db[100] = {};
    BOOST_TEST(h.call(sys::pread(f.k, kb, sizeof kb, 5000)) == direct(nr::pread64, int(f.d), db, sizeof db, 5000));
    BOOST_TEST(std::memcmp(kb, db, sizeof kb) == 0);
    BOOST_TEST(std::memcmp(kb, pattern(8192).data() + 5000, sizeof kb) == 0);
    BOOST_TEST(pos(f.k) == 3);
    f.expect_same_position();

    const std::string msg = "positional";
    BOOST_TEST(h.call(sys::pwrite(f.k, msg.data(), msg.size(), 9000)) ==
               direct(nr::pwrite64, int(f.d), msg.data(), msg.size(), 9000));
    BOOST_TEST(pos(f.k) == 3);
    BOOST_TEST(size_of(f.k) == 9000 + static_cast<off_t>(msg.size())); // extends, leaving a hole
    f.expect_same_position();
    f.expect_same_content();

    // Short read at the end, then 0 past it.
    BOOST_TEST(h.call(sys::pread(f.k, kb, sizeof kb, 8990)) == direct(nr::pread64, int(f.d), db, sizeof db, 8990));
    BOOST_TEST(h.call(sys::pread(f.k, kb, sizeof kb, 1 << 20)) == direct(nr::pread64, int(f.d), db, sizeof db, 1 << 20));
    f.expect_same_position();
}

BOOST_DATA_TEST_CASE(pread64_with_a_negative_offset_is_einval, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    twin_files f(pattern(100));
    char b[8];
    BOOST_TEST(direct(nr::pread64, int(f.d), b, sizeof b, -1) == -EINVAL);
    BOOST_TEST(h.call(sys::pread(f.k, b, sizeof b, -1)) == direct(nr::pread64, int(f.d), b, sizeof b, -1));
    BOOST_TEST(h.call(sys::pread(f.k, b, sizeof b, -4096)) == direct(nr::pread64, int(f.d), b, sizeof b, -4096));
    BOOST_TEST(h.call(sys::pwrite(f.k, b, sizeof b, -1)) == direct(nr::pwrite64, int(f.d), b, sizeof b, -1));
    BOOST_TEST(h.call(sys::preadv(f.k, nullptr, 0, -1)) == direct(nr::preadv, int(f.d), nullptr, 0, -1, 0));
    // The offset is checked before the fd: a closed fd still gets EINVAL.
    const int bad = closed_fd();
    BOOST_TEST(h.call(sys::pread(bad, b, sizeof b, -1)) == direct(nr::pread64, bad, b, sizeof b, -1));
    BOOST_TEST(h.call(sys::pwrite(bad, b, sizeof b, -1)) == direct(nr::pwrite64, bad, b, sizeof b, -1));
    f.expect_same_content();
}

BOOST_DATA_TEST_CASE(readv_writev_scatter_gather_and_advance_the_position, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    twin_files f(pattern(4096));
    f.seek(10);
    char k1[7], k2[100], k3[33], d1[7], d2[100], d3[33];
    iovec kv[] = {{k1, sizeof k1}, {k2, sizeof k2}, {k3, sizeof k3}};
    iovec dv[] = {{d1, sizeof d1}, {d2, sizeof d2}, {d3, sizeof d3}};
    BOOST_TEST(h.call(sys::readv(f.k, kv, 3)) == direct(nr::readv, int(f.d), dv, 3));
    BOOST_TEST(std::memcmp(k1, d1, sizeof k1) == 0);
    BOOST_TEST(std::memcmp(k2, d2, sizeof k2) == 0);
    BOOST_TEST(std::memcmp(k3, d3, sizeof k3) == 0);
    BOOST_TEST(pos(f.k) == 150);
    f.expect_same_position();

    std::string a = "alpha", b = "-beta-", c = "gamma";
    iovec wv[] = {{a.data(), a.size()}, {b.data(), b.size()}, {c.data(), c.size()}};
    BOOST_TEST(h.call(sys::writev(f.k, wv, 3)) == direct(nr::writev, int(f.d), wv, 3));
    f.expect_same_position();
    f.expect_same_content();
    BOOST_TEST(read_file(f.kpath).substr(150, 16) == "alpha-beta-gamma");
}

BOOST_DATA_TEST_CASE(preadv_pwritev_are_positional, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    twin_files f(pattern(4096));
    f.seek(7);
    char k1[50], k2[60], d1[50], d2[60];
    iovec kv[] = {{k1, sizeof k1}, {k2, sizeof k2}};
    iovec dv[] = {{d1, sizeof d1}, {d2, sizeof d2}};
    BOOST_TEST(h.call(sys::preadv(f.k, kv, 2, 1000)) == direct(nr::preadv, int(f.d), dv, 2, 1000, 0));
    BOOST_TEST(std::memcmp(k1, d1, sizeof k1) == 0);
    BOOST_TEST(std::memcmp(k2, d2, sizeof k2) == 0);
    BOOST_TEST(std::memcmp(k1, pattern(4096).data() + 1000, sizeof k1) == 0);
    BOOST_TEST(pos(f.k) == 7);
    f.expect_same_position();

    std::string a = "one", b = "two";
    iovec wv[] = {{a.data(), a.size()}, {b.data(), b.size()}};
    BOOST_TEST(h.call(sys::pwritev(f.k, wv, 2, 5000)) == direct(nr::pwritev, int(f.d), wv, 2, 5000, 0));
    BOOST_TEST(pos(f.k) == 7);
    f.expect_same_position();
    f.expect_same_content();
    BOOST_TEST(size_of(f.k) == 5006);
}

BOOST_DATA_TEST_CASE(preadv2_with_offset_minus_one_uses_and_advances_the_position, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    twin_files f(pattern(4096));
    f.seek(200);
    char k1[40], d1[40];
    iovec kv[] = {{k1, sizeof k1}};
    iovec dv[] = {{d1, sizeof d1}};
    BOOST_TEST(h.call(sys::preadv2(f.k, kv, 1, -1, 0)) == direct(nr::preadv2, int(f.d), dv, 1, -1, 0, 0));
    BOOST_TEST(std::memcmp(k1, d1, sizeof k1) == 0);
    BOOST_TEST(std::memcmp(k1, pattern(4096).data() + 200, sizeof k1) == 0);
    BOOST_TEST(pos(f.k) == 240);
    f.expect_same_position();

    // An explicit offset reads there and leaves the position alone.
    BOOST_TEST(h.call(sys::preadv2(f.k, kv, 1, 3000, 0)) == direct(nr::preadv2, int(f.d), dv, 1, 3000, 0, 0));
    BOOST_TEST(std::memcmp(k1, d1, sizeof k1) == 0);
    BOOST_TEST(pos(f.k) == 240);
    f.expect_same_position();

    std::string w = "v2-write";
    iovec wv[] = {{w.data(), w.size()}};
    BOOST_TEST(h.call(sys::pwritev2(f.k, wv, 1, -1, 0)) == direct(nr::pwritev2, int(f.d), wv, 1, -1, 0, 0));
    BOOST_TEST(pos(f.k) == 248);
    f.expect_same_position();
    BOOST_TEST(h.call(sys::pwritev2(f.k, wv, 1, 100, 0)) == direct(nr::pwritev2, int(f.d), wv, 1, 100, 0, 0));
    f.expect_same_position();
    f.expect_same_content();

    // Offsets below -1 are EINVAL, as is an unknown RWF flag.
    BOOST_TEST(h.call(sys::preadv2(f.k, kv, 1, -2, 0)) == direct(nr::preadv2, int(f.d), dv, 1, -2, 0, 0));
    BOOST_TEST(h.call(sys::preadv2(f.k, kv, 1, 0, 0x40000000)) == direct(nr::preadv2, int(f.d), dv, 1, 0, 0, 0x40000000));
    f.expect_same_position();
}

BOOST_DATA_TEST_CASE(pwritev2_rwf_append_writes_at_the_end, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    twin_files f(pattern(500));
    f.seek(5);
    std::string w = "appended";
    iovec wv[] = {{w.data(), w.size()}};
    BOOST_TEST(h.call(sys::pwritev2(f.k, wv, 1, -1, RWF_APPEND)) ==
               direct(nr::pwritev2, int(f.d), wv, 1, -1, 0, RWF_APPEND));
    BOOST_TEST(size_of(f.k) == 508);
    f.expect_same_position();
    f.expect_same_content();
}

BOOST_DATA_TEST_CASE(ebadf_on_a_closed_fd_matches_the_direct_call, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    const int bad = closed_fd();
    char buf[16] = {};
    iovec iov[] = {{buf, sizeof buf}};
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t salen = sizeof sa;
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = 1;
    struct ::statx stx {};
    struct {
        const char* name;
        ksvc::submit_entry e;
        std::int64_t d;
    } rows[] = {
        {"read", sys::read(bad, buf, sizeof buf), direct(nr::read, bad, buf, sizeof buf)},
        {"write", sys::write(bad, buf, sizeof buf), direct(nr::write, bad, buf, sizeof buf)},
        {"pread64", sys::pread(bad, buf, sizeof buf, 0), direct(nr::pread64, bad, buf, sizeof buf, 0)},
        {"pwrite64", sys::pwrite(bad, buf, sizeof buf, 0), direct(nr::pwrite64, bad, buf, sizeof buf, 0)},
        {"readv", sys::readv(bad, iov, 1), direct(nr::readv, bad, iov, 1)},
        {"writev", sys::writev(bad, iov, 1), direct(nr::writev, bad, iov, 1)},
        {"preadv", sys::preadv(bad, iov, 1, 0), direct(nr::preadv, bad, iov, 1, 0, 0)},
        {"pwritev", sys::pwritev(bad, iov, 1, 0), direct(nr::pwritev, bad, iov, 1, 0, 0)},
        {"preadv2", sys::preadv2(bad, iov, 1, -1, 0), direct(nr::preadv2, bad, iov, 1, -1, 0, 0)},
        {"pwritev2", sys::pwritev2(bad, iov, 1, 0, 0), direct(nr::pwritev2, bad, iov, 1, 0, 0, 0)},
        {"close", sys::close(bad), direct(nr::close, bad)},
        {"fsync", sys::fsync(bad), direct(nr::fsync, bad)},
        {"fdatasync", sys::fdatasync(bad), direct(nr::fdatasync, bad)},
        {"sync_file_range", sys::make(nr::sync_file_range, bad, 0, 0, 0), direct(nr::sync_file_range, bad, 0, 0, 0)},
        {"fallocate", sys::fallocate(bad, 0, 0, 4096), direct(nr::fallocate, bad, 0, 0, 4096)},
        {"fadvise64", sys::make(nr::fadvise64, bad, 0, 0, POSIX_FADV_NORMAL),
         direct(nr::fadvise64, bad, 0, 0, POSIX_FADV_NORMAL)},
        {"ftruncate", sys::ftruncate(bad, 0), direct(nr::ftruncate, bad, 0)},
        {"statx(AT_EMPTY_PATH)", sys::statx(bad, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &stx),
         direct(nr::statx, bad, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &stx)},
        {"bind", sys::bind(bad, reinterpret_cast<sockaddr*>(&sa), sizeof sa),
         direct(nr::bind, bad, &sa, sizeof sa)},
        {"listen", sys::listen(bad, 1), direct(nr::listen, bad, 1)},
        {"accept4", sys::accept4(bad, reinterpret_cast<sockaddr*>(&sa), &salen, 0),
         direct(nr::accept4, bad, &sa, &salen, 0)},
        {"connect", sys::connect(bad, reinterpret_cast<sockaddr*>(&sa), sizeof sa),
         direct(nr::connect, bad, &sa, sizeof sa)},
        {"sendto", sys::sendto(bad, buf, sizeof buf, 0), direct(nr::sendto, bad, buf, sizeof buf, 0, nullptr, 0)},
        {"recvfrom", sys::recvfrom(bad, buf, sizeof buf, 0), direct(nr::recvfrom, bad, buf, sizeof buf, 0, nullptr, nullptr)},
        {"sendmsg", sys::sendmsg(bad, &msg, 0), direct(nr::sendmsg, bad, &msg, 0)},
        {"recvmsg", sys::recvmsg(bad, &msg, 0), direct(nr::recvmsg, bad, &msg, 0)},
        {"shutdown", sys::shutdown(bad, SHUT_RDWR), direct(nr::shutdown, bad, SHUT_RDWR)},
    };
    for (const auto& r : rows) {
        BOOST_TEST_CONTEXT(r.name) {
            BOOST_TEST(r.d == -EBADF);
            BOOST_TEST(h.call(r.e) == r.d);
        }
    }
}

BOOST_DATA_TEST_CASE(fsync_fdatasync_on_a_file_and_on_a_pipe, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    twin_files f(pattern(4096));
    BOOST_TEST(h.call(sys::fsync(f.k)) == 0);
    BOOST_TEST(h.call(sys::fdatasync(f.k)) == 0);
    BOOST_TEST(direct(nr::fsync, int(f.d)) == 0);

    int p[2];
    BOOST_REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    unique_fd r(p[0]), w(p[1]);
    BOOST_TEST(h.call(sys::fsync(w)) == direct(nr::fsync, int(w)));
    BOOST_TEST(h.call(sys::fdatasync(w)) == direct(nr::fdatasync, int(w)));
    BOOST_TEST(direct(nr::fsync, int(w)) == -EINVAL);
}

BOOST_DATA_TEST_CASE(sync_file_range_matches, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    twin_files f(pattern(8192));
    const unsigned flags = SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER;
    BOOST_TEST(h.call(nr::sync_file_range, int(f.k), 0, 4096, flags) == 0);
    BOOST_TEST(h.call(nr::sync_file_range, int(f.k), 0, 0, flags) == direct(nr::sync_file_range, int(f.d), 0, 0, flags));
    // Invalid flags, negative offset: EINVAL; a pipe: ESPIPE.
    BOOST_TEST(h.call(nr::sync_file_range, int(f.k), 0, 4096, 0x80u) ==
               direct(nr::sync_file_range, int(f.d), 0, 4096, 0x80u));
    BOOST_TEST(h.call(nr::sync_file_range, int(f.k), -1, 4096, flags) ==
               direct(nr::sync_file_range, int(f.d), -1, 4096, flags));
    int p[2];
    BOOST_REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    unique_fd r(p[0]), w(p[1]);
    BOOST_TEST(h.call(nr::sync_file_range, int(w), 0, 4096, flags) == direct(nr::sync_file_range, int(w), 0, 4096, flags));
}

BOOST_DATA_TEST_CASE(fallocate_takes_mode_offset_len_in_that_order, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    twin_files f("");
    // fallocate(2) may fail with EINTR, and on tmpfs (the test's files) does whenever the thread
    // has a signal or task work pending — on 6.1 a late io_uring task-work notification of an
    // earlier ring counts (TIF_NOTIFY_SIGNAL). Both sides are retried alike; nothing else is.
    const auto k = [&](int fd, long mode, long off, long len) {
        std::int64_t r = -EINTR;
        for (int i = 0; i < 5 && r == -EINTR; ++i) r = h.call(sys::fallocate(fd, static_cast<int>(mode), off, len));
        return r;
    };
    const auto d = [&](int fd, long mode, long off, long len) {
        std::int64_t r = -EINTR;
        for (int i = 0; i < 5 && r == -EINTR; ++i) r = direct(nr::fallocate, fd, mode, off, len);
        return r;
    };
    BOOST_TEST(k(f.k, 0, 4096, 8192) == 0);
    BOOST_TEST(d(f.d, 0, 4096, 8192) == 0);
    BOOST_TEST(size_of(f.k) == 12288);
    BOOST_TEST(size_of(f.d) == 12288);

    // FALLOC_FL_KEEP_SIZE allocates without changing the size.
    BOOST_TEST(k(f.k, FALLOC_FL_KEEP_SIZE, 0, 65536) == d(f.d, FALLOC_FL_KEEP_SIZE, 0, 65536));
    BOOST_TEST(size_of(f.k) == 12288);
    struct stat ks {}, ds{};
    ::fstat(f.k, &ks);
    ::fstat(f.d, &ds);
    BOOST_TEST(ks.st_blocks == ds.st_blocks);
    BOOST_TEST(ks.st_blocks >= 65536 / 512);

    // Invalid: zero length, negative offset, unknown mode; a pipe gives ESPIPE.
    BOOST_TEST(k(f.k, 0, 0, 0) == d(f.d, 0, 0, 0));
    BOOST_TEST(k(f.k, 0, -1, 10) == d(f.d, 0, -1, 10));
    BOOST_TEST(k(f.k, 0x1000000, 0, 10) == d(f.d, 0x1000000, 0, 10));
    int p[2];
    BOOST_REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    unique_fd r(p[0]), w(p[1]);
    BOOST_TEST(k(w, 0, 0, 10) == d(w, 0, 0, 10));
    f.expect_same_content();
}

BOOST_DATA_TEST_CASE(fadvise64_matches, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    twin_files f(pattern(8192));
    for (int advice : {POSIX_FADV_NORMAL, POSIX_FADV_SEQUENTIAL, POSIX_FADV_RANDOM, POSIX_FADV_WILLNEED,
                       POSIX_FADV_DONTNEED, POSIX_FADV_NOREUSE, 99}) {
        BOOST_TEST_CONTEXT("advice " << advice) {
            BOOST_TEST(h.call(nr::fadvise64, int(f.k), 0, 4096, advice) ==
                       direct(nr::fadvise64, int(f.d), 0, 4096, advice));
        }
    }
    BOOST_TEST(h.call(nr::fadvise64, int(f.k), 0, -1, POSIX_FADV_NORMAL) ==
               direct(nr::fadvise64, int(f.d), 0, -1, POSIX_FADV_NORMAL));
    int p[2];
    BOOST_REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    unique_fd r(p[0]), w(p[1]);
    BOOST_TEST(h.call(nr::fadvise64, int(r), 0, 0, POSIX_FADV_NORMAL) ==
               direct(nr::fadvise64, int(r), 0, 0, POSIX_FADV_NORMAL));
    f.expect_same_content();
}

BOOST_DATA_TEST_CASE(madvise_dontneed_zeroes_anonymous_memory, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    const std::size_t len = 4 * page;
    auto map = [&] {
        void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        BOOST_REQUIRE(p != MAP_FAILED);
        std::memset(p, 0xab, len);
        return static_cast<unsigned char*>(p);
    };
    unsigned char* k = map();
    unsigned char* d = map();
    BOOST_TEST(h.call(nr::madvise, k + page, 2 * page, MADV_DONTNEED) == direct(nr::madvise, d + page, 2 * page, MADV_DONTNEED));
    for (std::size_t i = 0; i < len; i += 512) BOOST_TEST_REQUIRE(k[i] == d[i]);
    BOOST_TEST(k[0] == 0xab);
    BOOST_TEST(k[page] == 0);
    BOOST_TEST(k[3 * page] == 0xab);
    BOOST_TEST(h.call(nr::madvise, k, len, MADV_WILLNEED) == direct(nr::madvise, d, len, MADV_WILLNEED));
    // Unaligned address, unknown advice: EINVAL.
    BOOST_TEST(h.call(nr::madvise, k + 1, page, MADV_DONTNEED) == direct(nr::madvise, d + 1, page, MADV_DONTNEED));
    BOOST_TEST(h.call(nr::madvise, k, page, 12345) == direct(nr::madvise, d, page, 12345));
    ::munmap(k, len);
    ::munmap(d, len);
}

BOOST_DATA_TEST_CASE(ftruncate_sets_the_size, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    twin_files f(pattern(1000));
    BOOST_TEST(h.call(sys::ftruncate(f.k, 100)) == direct(nr::ftruncate, int(f.d), 100));
    BOOST_TEST(size_of(f.k) == 100);
    BOOST_TEST(h.call(sys::ftruncate(f.k, 20000)) == direct(nr::ftruncate, int(f.d), 20000));
    BOOST_TEST(size_of(f.k) == 20000);
    f.expect_same_content();
    BOOST_TEST(h.call(sys::ftruncate(f.k, -1)) == direct(nr::ftruncate, int(f.d), -1));
    // Not open for writing: EINVAL.
    unique_fd ro(::open(f.kpath.c_str(), O_RDONLY | O_CLOEXEC));
    unique_fd rod(::open(f.dpath.c_str(), O_RDONLY | O_CLOEXEC));
    BOOST_TEST(h.call(sys::ftruncate(ro, 0)) == direct(nr::ftruncate, int(rod), 0));
    BOOST_TEST(size_of(f.k) == 20000);
}

BOOST_DATA_TEST_CASE(close_closes_the_fd, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    BOOST_REQUIRE(fd >= 0);
    BOOST_TEST(h.call(sys::close(fd)) == 0);
    BOOST_TEST(::fcntl(fd, F_GETFD) == -1);
    BOOST_TEST(errno == EBADF);
    BOOST_TEST(h.call(sys::close(fd)) == direct(nr::close, fd));
}

// The asynchronous path: 64 preads at distinct offsets, each with its own corr_id, submitted
// without waiting (a tiny ring reports ring_full: drain and retry), all delivered exactly once
// with the right bytes.
BOOST_DATA_TEST_CASE(async_batch_of_preads_is_delivered_exactly_once, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    constexpr std::size_t count = 64, chunk = 512;
    const std::string content = pattern(count * chunk, 11);
    twin_files f(content);
    f.seek(17);
    std::vector<std::array<char, chunk>> bufs(count);
    std::map<std::uint64_t, ksvc::completion_entry> seen;
    std::size_t duplicates = 0;
    std::vector<ksvc::completion_entry> out(16);
    auto collect = [&](int ms) {
        const std::size_t n = h.inst.wait_completions(std::span(out), ms);
        for (std::size_t i = 0; i < n; ++i)
            if (!seen.emplace(out[i].corr_id, out[i]).second) ++duplicates;
        return n;
    };
    // Submitted in a scrambled order so completions cannot match by position.
    for (std::size_t j = 0; j < count; ++j) {
        const std::size_t i = (j * 37) % count;
        ksvc::submit_entry e = sys::pread(f.k, bufs[i].data(), chunk, static_cast<off_t>(i * chunk));
        e.corr_id = 0x1000 + i;
        BOOST_TEST_REQUIRE((h.inst.router().route(e.nr).tier == (h.ring_has(e.nr) ? ksvc::tier::io_uring : ksvc::tier::worker_pool)));
        for (;;) {
            const std::error_code ec = h.inst.submit(e);
            if (!ec) break;
            BOOST_TEST_REQUIRE((ec == ksvc::errc::ring_full), ec.message());
            collect(10);
        }
    }
    // Bounded by time, not by the number of waits: in inline mode wait_completions() may return
    // at once while entries queue behind a full ring (the dispatcher does not block then).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (seen.size() < count && std::chrono::steady_clock::now() < deadline) collect(10);
    BOOST_TEST(seen.size() == count);
    BOOST_TEST(duplicates == 0u);
    for (std::size_t i = 0; i < count; ++i) {
        BOOST_TEST_CONTEXT("chunk " << i) {
            auto it = seen.find(0x1000 + i);
            BOOST_TEST_REQUIRE((it != seen.end()));
            BOOST_TEST(it->second.result == static_cast<std::int64_t>(chunk));
            BOOST_TEST(it->second.nr == nr::pread64);
            BOOST_TEST(std::memcmp(bufs[i].data(), content.data() + i * chunk, chunk) == 0);
        }
    }
    BOOST_TEST(pos(f.k) == 17);
}

// Writes in a batch, then the file read back directly.
BOOST_DATA_TEST_CASE(async_batch_of_pwrites_lands_every_chunk, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    constexpr std::size_t count = 32, chunk = 256;
    const std::string content = pattern(count * chunk, 5);
    twin_files f("");
    std::size_t got = 0, ok = 0;
    std::vector<ksvc::completion_entry> out(8);
    auto collect = [&](int ms) {
        const std::size_t n = h.inst.wait_completions(std::span(out), ms);
        for (std::size_t i = 0; i < n; ++i) {
            ++got;
            if (out[i].result == static_cast<std::int64_t>(chunk)) ++ok;
        }
    };
    for (std::size_t i = 0; i < count; ++i) {
        ksvc::submit_entry e = sys::pwrite(f.k, content.data() + i * chunk, chunk, static_cast<off_t>(i * chunk));
        e.corr_id = i + 1;
        while (h.inst.submit(e)) collect(10);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (got < count && std::chrono::steady_clock::now() < deadline) collect(10);
    BOOST_TEST(got == count, "queued " << h.inst.loop().queued() << ", backend inflight " << h.inst.backend().inflight()
                                       << ", accepted " << h.inst.loop().accepted() << ", delivered "
                                       << h.inst.loop().delivered());
    BOOST_TEST(ok == count);
    BOOST_TEST(read_file(f.kpath) == content);
    BOOST_TEST(pos(f.k) == 0);
}

BOOST_AUTO_TEST_SUITE_END()
