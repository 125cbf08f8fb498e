// Tier 1, paths: open/creat/openat/openat2, statx, the rename/unlink/mkdir/symlink/link
// families — legacy path forms (translated via AT_FDCWD) and *at forms — through
// ksvc::default_instance under every run configuration, compared with the direct syscall
// on a twin directory (result, errno, and what the tree looks like afterwards).
#include "test_tier1_common.hpp"

#include <linux/openat2.h>
#include <sys/stat.h>

#include <climits>
#include <cstring>

using namespace ksvc::test;
using namespace ksvc::test::tier1;
namespace sys = ksvc::sys;

namespace {

//! Two identical directories: `k` is worked on through ksvc, `d` directly.
struct twin_dirs {
    temp_dir root;
    std::string kdir, ddir;
    unique_fd kfd, dfd;
    twin_dirs() {
        kdir = root.file("k");
        ddir = root.file("d");
        BOOST_REQUIRE(::mkdir(kdir.c_str(), 0755) == 0);
        BOOST_REQUIRE(::mkdir(ddir.c_str(), 0755) == 0);
        kfd = unique_fd(::open(kdir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        dfd = unique_fd(::open(ddir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        BOOST_REQUIRE(kfd >= 0);
        BOOST_REQUIRE(dfd >= 0);
    }
    std::string k(const std::string& name) const { return kdir + "/" + name; }
    std::string d(const std::string& name) const { return ddir + "/" + name; }
    void file(const std::string& name, const std::string& content) {
        write_file(k(name), content);
        write_file(d(name), content);
    }
    void dir(const std::string& name) {
        BOOST_REQUIRE(::mkdir(k(name).c_str(), 0755) == 0);
        BOOST_REQUIRE(::mkdir(d(name).c_str(), 0755) == 0);
    }
    //! Both trees hold the same entry: existence, type, mode, size, content, link target.
    void expect_same(const std::string& name) {
        BOOST_TEST_CONTEXT("entry " << name) {
            struct stat ks {}, ds{};
            const int kr = ::lstat(k(name).c_str(), &ks);
            const int dr = ::lstat(d(name).c_str(), &ds);
            BOOST_TEST(kr == dr);
            if (kr != 0 || dr != 0) return;
            BOOST_TEST(ks.st_mode == ds.st_mode);
            BOOST_TEST(ks.st_nlink == ds.st_nlink);
            if (S_ISREG(ks.st_mode)) BOOST_TEST(read_file(k(name)) == read_file(d(name)));
            if (S_ISLNK(ks.st_mode)) {
                char kb[PATH_MAX] = {}, db[PATH_MAX] = {};
                BOOST_TEST(::readlink(k(name).c_str(), kb, sizeof kb) == ::readlink(d(name).c_str(), db, sizeof db));
                BOOST_TEST(std::string(kb) == std::string(db));
            }
        }
    }
};

//! Sets the umask for the test's duration (umask is per process; the tests run one at a time).
struct scoped_umask {
    mode_t old;
    explicit scoped_umask(mode_t m) : old(::umask(m)) {}
    ~scoped_umask() { ::umask(old); }
};

mode_t mode_of(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0 ? st.st_mode : 0;
}

} // namespace

BOOST_AUTO_TEST_SUITE(tier1_paths)

BOOST_DATA_TEST_CASE(open_honours_flags_and_mode_after_umask, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    twin_dirs t;
    scoped_umask um(027);
    const int flags = O_CREAT | O_RDWR | O_CLOEXEC | O_APPEND | O_NONBLOCK;
    const std::int64_t kr = h.call(nr::open, t.k("f").c_str(), flags, 0777);
    const std::int64_t dr = direct(nr::open, t.d("f").c_str(), flags, 0777);
    BOOST_TEST_REQUIRE(kr >= 0);
    BOOST_TEST_REQUIRE(dr >= 0);
    unique_fd kf(static_cast<int>(kr)), df(static_cast<int>(dr));
    BOOST_TEST((mode_of(t.k("f")) & 07777) == 0750u);
    t.expect_same("f");
    BOOST_TEST(fd_flags(kf) == fd_flags(df));
    BOOST_TEST((fd_flags(kf) & FD_CLOEXEC) != 0);
    BOOST_TEST(fl_flags(kf) == fl_flags(df));
    BOOST_TEST((fl_flags(kf) & (O_APPEND | O_NONBLOCK)) == (O_APPEND | O_NONBLOCK));

    // O_CREAT|O_EXCL on an existing file: EEXIST.
    BOOST_TEST(h.call(nr::open, t.k("f").c_str(), O_CREAT | O_EXCL | O_RDWR, 0600) ==
               direct(nr::open, t.d("f").c_str(), O_CREAT | O_EXCL | O_RDWR, 0600));
    BOOST_TEST(direct(nr::open, t.d("f").c_str(), O_CREAT | O_EXCL | O_RDWR, 0600) == -EEXIST);
    // Missing without O_CREAT, a directory for writing, O_DIRECTORY on a file.
    BOOST_TEST(h.call(nr::open, t.k("missing").c_str(), O_RDONLY, 0) == direct(nr::open, t.d("missing").c_str(), O_RDONLY, 0));
    BOOST_TEST(h.call(nr::open, t.kdir.c_str(), O_WRONLY, 0) == direct(nr::open, t.ddir.c_str(), O_WRONLY, 0));
    BOOST_TEST(h.call(nr::open, t.k("f").c_str(), O_RDONLY | O_DIRECTORY, 0) ==
               direct(nr::open, t.d("f").c_str(), O_RDONLY | O_DIRECTORY, 0));
}

BOOST_DATA_TEST_CASE(openat_o_creat_o_excl_twice_is_eexist, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    twin_dirs t;
    scoped_umask um(022);
    const int flags = O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC;
    const std::int64_t kr = h.call(sys::openat(t.kfd, "x", flags, 0666));
    const std::int64_t dr = direct(nr::openat, int(t.dfd), "x", flags, 0666);
    BOOST_TEST_REQUIRE(kr >= 0);
    BOOST_TEST_REQUIRE(dr >= 0);
    unique_fd kf(static_cast<int>(kr)), df(static_cast<int>(dr));
    BOOST_TEST((mode_of(t.k("x")) & 07777) == 0644u);
    t.expect_same("x");
    BOOST_TEST(fl_flags(kf) == fl_flags(df));
    BOOST_TEST(h.call(sys::openat(t.kfd, "x", flags, 0666)) == -EEXIST);
    BOOST_TEST(direct(nr::openat, int(t.dfd), "x", flags, 0666) == -EEXIST);
}

BOOST_DATA_TEST_CASE(openat_resolves_relative_to_the_dirfd, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    twin_dirs t;
    t.dir("sub");
    t.file("sub/data", "inside");
    unique_fd ksub(::open(t.k("sub").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    const std::int64_t kr = h.call(sys::openat(ksub, "data", O_RDONLY | O_CLOEXEC));
    BOOST_TEST_REQUIRE(kr >= 0);
    unique_fd kf(static_cast<int>(kr));
    char buf[16] = {};
    BOOST_TEST(::read(kf, buf, sizeof buf) == 6);
    BOOST_TEST(std::string(buf) == "inside");
    // A closed dirfd with a relative path: EBADF; with an absolute path the dirfd is ignored.
    const int bad = closed_fd();
    BOOST_TEST(h.call(sys::openat(bad, "data", O_RDONLY | O_CLOEXEC)) == direct(nr::openat, bad, "data", O_RDONLY | O_CLOEXEC, 0));
    const std::int64_t abs = h.call(sys::openat(bad, t.k("sub/data").c_str(), O_RDONLY | O_CLOEXEC));
    BOOST_TEST(abs >= 0);
    if (abs >= 0) ::close(static_cast<int>(abs));
    // A regular file as dirfd: ENOTDIR.
    BOOST_TEST(h.call(sys::openat(kf, "data", O_RDONLY | O_CLOEXEC)) == direct(nr::openat, int(kf), "data", O_RDONLY | O_CLOEXEC, 0));
}

BOOST_DATA_TEST_CASE(openat2_honours_open_how, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    twin_dirs t;
    scoped_umask um(022);
    t.file("present", "x");
    open_how how{};
    how.flags = O_CREAT | O_RDWR | O_CLOEXEC;
    how.mode = 0640;
    const std::int64_t kr = h.call(nr::openat2, int(t.kfd), "new", &how, sizeof how);
    const std::int64_t dr = direct(nr::openat2, int(t.dfd), "new", &how, sizeof how);
    BOOST_TEST_REQUIRE(kr >= 0);
    BOOST_TEST_REQUIRE(dr >= 0);
    unique_fd kf(static_cast<int>(kr)), df(static_cast<int>(dr));
    t.expect_same("new");
    BOOST_TEST((mode_of(t.k("new")) & 07777) == 0640u);
    BOOST_TEST(fd_flags(kf) == fd_flags(df));

    // RESOLVE_BENEATH refuses an escape with EXDEV.
    open_how beneath{};
    beneath.flags = O_RDONLY | O_CLOEXEC;
    beneath.resolve = RESOLVE_BENEATH;
    BOOST_TEST(h.call(nr::openat2, int(t.kfd), "../d/present", &beneath, sizeof beneath) ==
               direct(nr::openat2, int(t.dfd), "../k/present", &beneath, sizeof beneath));
    BOOST_TEST(direct(nr::openat2, int(t.dfd), "../k/present", &beneath, sizeof beneath) == -EXDEV);
    // A mode without O_CREAT, a short struct, an unknown resolve bit: EINVAL.
    open_how bad_mode{};
    bad_mode.flags = O_RDONLY;
    bad_mode.mode = 0600;
    BOOST_TEST(h.call(nr::openat2, int(t.kfd), "present", &bad_mode, sizeof bad_mode) ==
               direct(nr::openat2, int(t.dfd), "present", &bad_mode, sizeof bad_mode));
    BOOST_TEST(h.call(nr::openat2, int(t.kfd), "present", &how, 8) == direct(nr::openat2, int(t.dfd), "present", &how, 8));
    open_how bad_resolve{};
    bad_resolve.resolve = 1ull << 40;
    BOOST_TEST(h.call(nr::openat2, int(t.kfd), "present", &bad_resolve, sizeof bad_resolve) ==
               direct(nr::openat2, int(t.dfd), "present", &bad_resolve, sizeof bad_resolve));
    // O_CREAT|O_EXCL on an existing file.
    open_how excl{};
    excl.flags = O_CREAT | O_EXCL | O_WRONLY;
    excl.mode = 0600;
    BOOST_TEST(h.call(nr::openat2, int(t.kfd), "present", &excl, sizeof excl) == -EEXIST);
    BOOST_TEST(direct(nr::openat2, int(t.dfd), "present", &excl, sizeof excl) == -EEXIST);
}

BOOST_DATA_TEST_CASE(creat_truncates_and_opens_write_only, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    twin_dirs t;
    scoped_umask um(077);
    t.file("old", pattern(5000));
    const std::int64_t kr = h.call(nr::creat, t.k("old").c_str(), 0644);
    const std::int64_t dr = direct(nr::creat, t.d("old").c_str(), 0644);
    BOOST_TEST_REQUIRE(kr >= 0);
    BOOST_TEST_REQUIRE(dr >= 0);
    unique_fd kf(static_cast<int>(kr)), df(static_cast<int>(dr));
    BOOST_TEST(size_of(t.k("old")) == 0);
    t.expect_same("old");
    BOOST_TEST((fl_flags(kf) & O_ACCMODE) == O_WRONLY);
    BOOST_TEST(fl_flags(kf) == fl_flags(df));
    BOOST_TEST(fd_flags(kf) == fd_flags(df));
    // A new file gets mode & ~umask.
    const std::int64_t kn = h.call(nr::creat, t.k("new").c_str(), 0666);
    const std::int64_t dn = direct(nr::creat, t.d("new").c_str(), 0666);
    BOOST_TEST_REQUIRE(kn >= 0);
    BOOST_TEST_REQUIRE(dn >= 0);
    ::close(static_cast<int>(kn));
    ::close(static_cast<int>(dn));
    BOOST_TEST((mode_of(t.k("new")) & 07777) == 0600u);
    t.expect_same("new");
    // A path under a missing directory.
    BOOST_TEST(h.call(nr::creat, t.k("no/such").c_str(), 0644) == direct(nr::creat, t.d("no/such").c_str(), 0644));
}

BOOST_DATA_TEST_CASE(statx_fills_the_same_fields_as_direct_statx, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    temp_dir dir;
    const std::string path = dir.file("s");
    write_file(path, pattern(12345));
    BOOST_REQUIRE(::symlink(path.c_str(), dir.file("ln").c_str()) == 0);
    auto compare = [&](int dfd, const char* p, int flags, unsigned mask) {
        struct ::statx ks {}, ds{};
        std::memset(&ks, 0xee, sizeof ks);
        std::memset(&ds, 0xee, sizeof ds);
        const std::int64_t kr = h.call(sys::statx(dfd, p, flags, mask, &ks));
        const std::int64_t dr = direct(nr::statx, dfd, p, flags, mask, &ds);
        BOOST_TEST(kr == dr);
        if (kr != 0 || dr != 0) return;
        BOOST_TEST(ks.stx_mask == ds.stx_mask);
        BOOST_TEST(ks.stx_size == ds.stx_size);
        BOOST_TEST(ks.stx_mode == ds.stx_mode);
        BOOST_TEST(ks.stx_ino == ds.stx_ino);
        BOOST_TEST(ks.stx_nlink == ds.stx_nlink);
        BOOST_TEST(ks.stx_uid == ds.stx_uid);
        BOOST_TEST(ks.stx_gid == ds.stx_gid);
        BOOST_TEST(ks.stx_blocks == ds.stx_blocks);
        BOOST_TEST(ks.stx_dev_major == ds.stx_dev_major);
        BOOST_TEST(ks.stx_dev_minor == ds.stx_dev_minor);
        BOOST_TEST(ks.stx_mtime.tv_sec == ds.stx_mtime.tv_sec);
        BOOST_TEST(ks.stx_mtime.tv_nsec == ds.stx_mtime.tv_nsec);
    };
    struct ::statx st {};
    BOOST_TEST(h.call(sys::statx(AT_FDCWD, path.c_str(), 0, STATX_BASIC_STATS, &st)) == 0);
    BOOST_TEST(st.stx_size == 12345u);
    BOOST_TEST(S_ISREG(st.stx_mode));
    compare(AT_FDCWD, path.c_str(), 0, STATX_BASIC_STATS);
    compare(AT_FDCWD, dir.file("ln").c_str(), 0, STATX_BASIC_STATS);                     // follows
    compare(AT_FDCWD, dir.file("ln").c_str(), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS);   // the link itself
    compare(AT_FDCWD, dir.file("missing").c_str(), 0, STATX_BASIC_STATS);                // ENOENT
    compare(AT_FDCWD, path.c_str(), 0x12345678, STATX_BASIC_STATS);                      // bad flags
    compare(AT_FDCWD, path.c_str(), 0, STATX__RESERVED);                                 // reserved mask
    unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    compare(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS | STATX_BTIME);
    compare(fd, "", 0, STATX_BASIC_STATS); // empty path without AT_EMPTY_PATH: ENOENT
    unique_fd dfd(::open(dir.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    compare(dfd, "s", 0, STATX_ALL);
}

BOOST_DATA_TEST_CASE(rename_moves_and_replaces, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    twin_dirs t;
    t.file("a", "AAA");
    t.file("b", "BBBB");
    BOOST_TEST(h.call(nr::rename, t.k("a").c_str(), t.k("c").c_str()) == direct(nr::rename, t.d("a").c_str(), t.d("c").c_str()));
    t.expect_same("a");
    t.expect_same("c");
    BOOST_TEST(!exists(t.k("a")));
    BOOST_TEST(read_file(t.k("c")) == "AAA");
    // Onto an existing file: replaced.
    BOOST_TEST(h.call(nr::rename, t.k("c").c_str(), t.k("b").c_str()) == direct(nr::rename, t.d("c").c_str(), t.d("b").c_str()));
    BOOST_TEST(read_file(t.k("b")) == "AAA");
    t.expect_same("b");
    t.expect_same("c");
    // Errors: missing source, a directory onto a non-empty directory, a file onto a directory.
    t.dir("d1");
    t.dir("d2");
    t.file("d2/x", "x");
    BOOST_TEST(h.call(nr::rename, t.k("nope").c_str(), t.k("z").c_str()) == direct(nr::rename, t.d("nope").c_str(), t.d("z").c_str()));
    BOOST_TEST(h.call(nr::rename, t.k("d1").c_str(), t.k("d2").c_str()) == direct(nr::rename, t.d("d1").c_str(), t.d("d2").c_str()));
    BOOST_TEST(h.call(nr::rename, t.k("b").c_str(), t.k("d1").c_str()) == direct(nr::rename, t.d("b").c_str(), t.d("d1").c_str()));
    t.expect_same("d1");
    t.expect_same("d2/x");
}

BOOST_DATA_TEST_CASE(renameat_uses_both_dirfds, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    twin_dirs t;
    t.dir("src");
    t.dir("dst");
    t.file("src/f", "moved");
    unique_fd ks(::open(t.k("src").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    unique_fd kd(::open(t.k("dst").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    unique_fd ds(::open(t.d("src").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    unique_fd dd(::open(t.d("dst").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    BOOST_TEST(h.call(nr::renameat, int(ks), "f", int(kd), "g") == direct(nr::renameat, int(ds), "f", int(dd), "g"));
    t.expect_same("src/f");
    t.expect_same("dst/g");
    BOOST_TEST(read_file(t.k("dst/g")) == "moved");
    const int bad = closed_fd();
    BOOST_TEST(h.call(nr::renameat, int(kd), "g", bad, "h") == direct(nr::renameat, int(dd), "g", bad, "h"));
    t.expect_same("dst/g");
}

BOOST_DATA_TEST_CASE(renameat2_noreplace_and_exchange, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    twin_dirs t;
    t.file("a", "AAA");
    t.file("b", "BBBB");
    // RENAME_NOREPLACE onto an existing name: EEXIST, nothing changes.
    BOOST_TEST(h.call(sys::renameat2(t.kfd, "a", t.kfd, "b", RENAME_NOREPLACE)) ==
               direct(nr::renameat2, int(t.dfd), "a", int(t.dfd), "b", RENAME_NOREPLACE));
    BOOST_TEST(direct(nr::renameat2, int(t.dfd), "a", int(t.dfd), "b", RENAME_NOREPLACE) == -EEXIST);
    BOOST_TEST(read_file(t.k("a")) == "AAA");
    BOOST_TEST(read_file(t.k("b")) == "BBBB");
    // RENAME_EXCHANGE swaps.
    BOOST_TEST(h.call(sys::renameat2(t.kfd, "a", t.kfd, "b", RENAME_EXCHANGE)) ==
               direct(nr::renameat2, int(t.dfd), "a", int(t.dfd), "b", RENAME_EXCHANGE));
    BOOST_TEST(read_file(t.k("a")) == "BBBB");
    BOOST_TEST(read_file(t.k("b")) == "AAA");
    t.expect_same("a");
    t.expect_same("b");
    // RENAME_EXCHANGE with a missing target: ENOENT; NOREPLACE onto a free name works.
    BOOST_TEST(h.call(sys::renameat2(t.kfd, "a", t.kfd, "none", RENAME_EXCHANGE)) ==
               direct(nr::renameat2, int(t.dfd), "a", int(t.dfd), "none", RENAME_EXCHANGE));
    BOOST_TEST(h.call(sys::renameat2(t.kfd, "a", t.kfd, "c", RENAME_NOREPLACE)) ==
               direct(nr::renameat2, int(t.dfd), "a", int(t.dfd), "c", RENAME_NOREPLACE));
    t.expect_same("a");
    t.expect_same("c");
    // Both flags together, or an unknown flag: EINVAL.
    BOOST_TEST(h.call(sys::renameat2(t.kfd, "c", t.kfd, "b", RENAME_NOREPLACE | RENAME_EXCHANGE)) ==
               direct(nr::renameat2, int(t.dfd), "c", int(t.dfd), "b", RENAME_NOREPLACE | RENAME_EXCHANGE));
    BOOST_TEST(h.call(sys::renameat2(t.kfd, "c", t.kfd, "b", 0x100u)) ==
               direct(nr::renameat2, int(t.dfd), "c", int(t.dfd), "b", 0x100u));
    // Flags 0: a plain rename.
    BOOST_TEST(h.call(sys::renameat2(t.kfd, "c", t.kfd, "b", 0)) == direct(nr::renameat2, int(t.dfd), "c", int(t.dfd), "b", 0));
    t.expect_same("b");
    t.expect_same("c");
}

BOOST_DATA_TEST_CASE(unlink_rmdir_unlinkat, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    twin_dirs t;
    t.file("f", "x");
    t.file("g", "y");
    t.dir("empty");
    t.dir("empty2");
    t.dir("full");
    t.file("full/x", "x");
    BOOST_TEST(h.call(nr::unlink, t.k("f").c_str()) == direct(nr::unlink, t.d("f").c_str()));
    BOOST_TEST(!exists(t.k("f")));
    BOOST_TEST(h.call(nr::unlink, t.k("f").c_str()) == direct(nr::unlink, t.d("f").c_str())); // ENOENT
    BOOST_TEST(h.call(nr::unlink, t.k("empty").c_str()) == direct(nr::unlink, t.d("empty").c_str())); // EISDIR
    BOOST_TEST(h.call(nr::rmdir, t.k("empty").c_str()) == direct(nr::rmdir, t.d("empty").c_str()));
    BOOST_TEST(!exists(t.k("empty")));
    BOOST_TEST(h.call(nr::rmdir, t.k("full").c_str()) == direct(nr::rmdir, t.d("full").c_str())); // ENOTEMPTY
    BOOST_TEST(h.call(nr::rmdir, t.k("g").c_str()) == direct(nr::rmdir, t.d("g").c_str()));       // ENOTDIR
    // unlinkat: flags 0 removes a file, AT_REMOVEDIR a directory, the wrong one fails the same way.
    BOOST_TEST(h.call(sys::unlinkat(t.kfd, "empty2", 0)) == direct(nr::unlinkat, int(t.dfd), "empty2", 0));
    BOOST_TEST(h.call(sys::unlinkat(t.kfd, "g", AT_REMOVEDIR)) == direct(nr::unlinkat, int(t.dfd), "g", AT_REMOVEDIR));
    BOOST_TEST(h.call(sys::unlinkat(t.kfd, "empty2", AT_REMOVEDIR)) == direct(nr::unlinkat, int(t.dfd), "empty2", AT_REMOVEDIR));
    BOOST_TEST(h.call(sys::unlinkat(t.kfd, "g", 0)) == direct(nr::unlinkat, int(t.dfd), "g", 0));
    BOOST_TEST(h.call(sys::unlinkat(t.kfd, "full", 0x1)) == direct(nr::unlinkat, int(t.dfd), "full", 0x1)); // EINVAL
    for (const char* n : {"f", "g", "empty", "empty2", "full", "full/x"}) t.expect_same(n);
    BOOST_TEST(!exists(t.k("g")));
    BOOST_TEST(!exists(t.k("empty2")));
    BOOST_TEST(exists(t.k("full/x")));
}

BOOST_DATA_TEST_CASE(mkdir_mkdirat_apply_the_umask, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    twin_dirs t;
    scoped_umask um(023);
    BOOST_TEST(h.call(nr::mkdir, t.k("m").c_str(), 0777) == direct(nr::mkdir, t.d("m").c_str(), 0777));
    BOOST_TEST((mode_of(t.k("m")) & 07777) == 0754u);
    BOOST_TEST(S_ISDIR(mode_of(t.k("m"))));
    t.expect_same("m");
    BOOST_TEST(h.call(nr::mkdir, t.k("m").c_str(), 0777) == direct(nr::mkdir, t.d("m").c_str(), 0777)); // EEXIST
    BOOST_TEST(h.call(nr::mkdir, t.k("no/m").c_str(), 0777) == direct(nr::mkdir, t.d("no/m").c_str(), 0777)); // ENOENT
    BOOST_TEST(h.call(sys::mkdirat(t.kfd, "ma", 01750)) == direct(nr::mkdirat, int(t.dfd), "ma", 01750));
    t.expect_same("ma");
    BOOST_TEST(h.call(sys::mkdirat(t.kfd, "ma", 0700)) == -EEXIST);
    const int bad = closed_fd();
    BOOST_TEST(h.call(sys::mkdirat(bad, "x", 0700)) == direct(nr::mkdirat, bad, "x", 0700));
}

BOOST_DATA_TEST_CASE(symlink_symlinkat_create_links, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    twin_dirs t;
    t.file("target", "T");
    BOOST_TEST(h.call(nr::symlink, "target", t.k("l1").c_str()) == direct(nr::symlink, "target", t.d("l1").c_str()));
    BOOST_TEST(S_ISLNK(mode_of(t.k("l1"))));
    BOOST_TEST(read_file(t.k("l1")) == "T");
    t.expect_same("l1");
    BOOST_TEST(h.call(nr::symlink, "x", t.k("l1").c_str()) == direct(nr::symlink, "x", t.d("l1").c_str())); // EEXIST
    BOOST_TEST(h.call(nr::symlinkat, "dangling/target", int(t.kfd), "l2") ==
               direct(nr::symlinkat, "dangling/target", int(t.dfd), "l2"));
    t.expect_same("l2");
    BOOST_TEST(h.call(nr::symlinkat, "", int(t.kfd), "l3") == direct(nr::symlinkat, "", int(t.dfd), "l3")); // ENOENT
    const int bad = closed_fd();
    BOOST_TEST(h.call(nr::symlinkat, "t", bad, "l4") == direct(nr::symlinkat, "t", bad, "l4"));
}

BOOST_DATA_TEST_CASE(link_linkat_create_hard_links, bdata::make(backend_configs()), cfg) {
    harness h(cfg);
    twin_dirs t;
    t.file("f", "content");
    BOOST_REQUIRE(::symlink("f", t.k("sl").c_str()) == 0);
    BOOST_REQUIRE(::symlink("f", t.d("sl").c_str()) == 0);
    BOOST_TEST(h.call(nr::link, t.k("f").c_str(), t.k("h1").c_str()) == direct(nr::link, t.d("f").c_str(), t.d("h1").c_str()));
    struct stat a {}, b{};
    ::stat(t.k("f").c_str(), &a);
    ::stat(t.k("h1").c_str(), &b);
    BOOST_TEST(a.st_ino == b.st_ino);
    BOOST_TEST(a.st_nlink == 2u);
    t.expect_same("h1");
    BOOST_TEST(h.call(nr::link, t.k("f").c_str(), t.k("h1").c_str()) == direct(nr::link, t.d("f").c_str(), t.d("h1").c_str())); // EEXIST
    // linkat without AT_SYMLINK_FOLLOW links the symlink itself; with it, the target.
    BOOST_TEST(h.call(nr::linkat, int(t.kfd), "sl", int(t.kfd), "h2", 0) == direct(nr::linkat, int(t.dfd), "sl", int(t.dfd), "h2", 0));
    BOOST_TEST(S_ISLNK(mode_of(t.k("h2"))));
    BOOST_TEST(h.call(nr::linkat, int(t.kfd), "sl", int(t.kfd), "h3", AT_SYMLINK_FOLLOW) ==
               direct(nr::linkat, int(t.dfd), "sl", int(t.dfd), "h3", AT_SYMLINK_FOLLOW));
    BOOST_TEST(S_ISREG(mode_of(t.k("h3"))));
    for (const char* n : {"f", "h1", "h2", "h3", "sl"}) t.expect_same(n);
    // Unknown flag: EINVAL; a directory: EPERM.
    BOOST_TEST(h.call(nr::linkat, int(t.kfd), "f", int(t.kfd), "h4", 0x1) == direct(nr::linkat, int(t.dfd), "f", int(t.dfd), "h4", 0x1));
    BOOST_TEST(h.call(nr::link, t.kdir.c_str(), t.k("h5").c_str()) == direct(nr::link, t.ddir.c_str(), t.d("h5").c_str()));
    t.expect_same("h4");
    t.expect_same("h5");
}

BOOST_AUTO_TEST_SUITE_END()
