#pragma once
//! Typed builders: ksvc::sys::read(fd, buf, n) -> submit_entry. They only pack arguments in the
//! syscall's own order; routing and translation happen in the dispatcher and backend.
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <ksvc/core/entry.hpp>
#include <ksvc/core/syscalls.hpp>

struct statx;
struct rlimit;
struct utsname;
struct open_how;

namespace ksvc::sys {

namespace detail {
template <class T>
constexpr std::uint64_t arg(T v) noexcept {
    if constexpr (std::is_pointer_v<T>) return reinterpret_cast<std::uint64_t>(v);
    else if constexpr (std::is_same_v<T, std::nullptr_t>) return 0;
    else if constexpr (std::is_signed_v<T>) return static_cast<std::uint64_t>(static_cast<std::int64_t>(v));
    else return static_cast<std::uint64_t>(v);
}
} // namespace detail

//! Any syscall by number (arguments as syscall(2) takes them).
template <class... A>
constexpr submit_entry make(std::uint32_t nr, A... a) noexcept {
    static_assert(sizeof...(A) <= 6, "a syscall takes at most six arguments");
    submit_entry e;
    e.nr = nr;
    std::size_t i = 0;
    ((e.args[i++] = detail::arg(a)), ...);
    return e;
}

namespace n = ksvc::syscalls::native;

inline submit_entry read(int fd, void* buf, std::size_t count) noexcept { return make(n::read, fd, buf, count); }
inline submit_entry write(int fd, const void* buf, std::size_t count) noexcept { return make(n::write, fd, buf, count); }
inline submit_entry pread(int fd, void* buf, std::size_t count, off_t off) noexcept { return make(n::pread64, fd, buf, count, off); }
inline submit_entry pwrite(int fd, const void* buf, std::size_t count, off_t off) noexcept { return make(n::pwrite64, fd, buf, count, off); }
inline submit_entry readv(int fd, const iovec* iov, int cnt) noexcept { return make(n::readv, fd, iov, cnt); }
inline submit_entry writev(int fd, const iovec* iov, int cnt) noexcept { return make(n::writev, fd, iov, cnt); }
inline submit_entry preadv(int fd, const iovec* iov, int cnt, off_t off) noexcept { return make(n::preadv, fd, iov, cnt, off, 0); }
inline submit_entry pwritev(int fd, const iovec* iov, int cnt, off_t off) noexcept { return make(n::pwritev, fd, iov, cnt, off, 0); }
inline submit_entry preadv2(int fd, const iovec* iov, int cnt, off_t off, int flags) noexcept { return make(n::preadv2, fd, iov, cnt, off, 0, flags); }
inline submit_entry pwritev2(int fd, const iovec* iov, int cnt, off_t off, int flags) noexcept { return make(n::pwritev2, fd, iov, cnt, off, 0, flags); }
inline submit_entry openat(int dfd, const char* path, int flags, mode_t mode = 0) noexcept { return make(n::openat, dfd, path, flags, mode); }
inline submit_entry close(int fd) noexcept { return make(n::close, fd); }
inline submit_entry statx(int dfd, const char* path, int flags, unsigned mask, struct ::statx* buf) noexcept { return make(n::statx, dfd, path, flags, mask, buf); }
inline submit_entry fsync(int fd) noexcept { return make(n::fsync, fd); }
inline submit_entry fdatasync(int fd) noexcept { return make(n::fdatasync, fd); }
inline submit_entry fallocate(int fd, int mode, off_t off, off_t len) noexcept { return make(n::fallocate, fd, mode, off, len); }
inline submit_entry ftruncate(int fd, off_t len) noexcept { return make(n::ftruncate, fd, len); }
inline submit_entry socket(int domain, int type, int protocol) noexcept { return make(n::socket, domain, type, protocol); }
inline submit_entry bind(int fd, const sockaddr* a, socklen_t len) noexcept { return make(n::bind, fd, a, len); }
inline submit_entry listen(int fd, int backlog) noexcept { return make(n::listen, fd, backlog); }
inline submit_entry accept4(int fd, sockaddr* a, socklen_t* len, int flags) noexcept { return make(n::accept4, fd, a, len, flags); }
inline submit_entry connect(int fd, const sockaddr* a, socklen_t len) noexcept { return make(n::connect, fd, a, len); }
inline submit_entry sendto(int fd, const void* b, std::size_t len, int flags, const sockaddr* to = nullptr, socklen_t tolen = 0) noexcept { return make(n::sendto, fd, b, len, flags, to, tolen); }
inline submit_entry recvfrom(int fd, void* b, std::size_t len, int flags, sockaddr* from = nullptr, socklen_t* fromlen = nullptr) noexcept { return make(n::recvfrom, fd, b, len, flags, from, fromlen); }
inline submit_entry sendmsg(int fd, const msghdr* m, int flags) noexcept { return make(n::sendmsg, fd, m, flags); }
inline submit_entry recvmsg(int fd, msghdr* m, int flags) noexcept { return make(n::recvmsg, fd, m, flags); }
inline submit_entry shutdown(int fd, int how) noexcept { return make(n::shutdown, fd, how); }
inline submit_entry renameat2(int od, const char* o, int nd, const char* nw, unsigned flags) noexcept { return make(n::renameat2, od, o, nd, nw, flags); }
inline submit_entry unlinkat(int dfd, const char* path, int flags) noexcept { return make(n::unlinkat, dfd, path, flags); }
inline submit_entry mkdirat(int dfd, const char* path, mode_t mode) noexcept { return make(n::mkdirat, dfd, path, mode); }
inline submit_entry pipe2(int* fds, int flags) noexcept { return make(n::pipe2, fds, flags); }
inline submit_entry dup(int fd) noexcept { return make(n::dup, fd); }
inline submit_entry fcntl(int fd, int cmd, long arg = 0) noexcept { return make(n::fcntl, fd, cmd, arg); }
inline submit_entry lseek(int fd, off_t off, int whence) noexcept { return make(n::lseek, fd, off, whence); }
inline submit_entry getpid() noexcept { return make(n::getpid); }
inline submit_entry getuid() noexcept { return make(n::getuid); }
inline submit_entry uname(struct ::utsname* u) noexcept { return make(n::uname, u); }
inline submit_entry getrlimit(int res, struct ::rlimit* r) noexcept { return make(n::getrlimit, res, r); }

} // namespace ksvc::sys
