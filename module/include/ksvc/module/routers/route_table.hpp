#pragma once
//! The x86_64 classification of every syscall: which tier it belongs to before probing, which
//! SQE opcode translates it exactly, and whether it may run on another thread.
//!
//! Rules (see docs/design/architecture.md):
//! - Tier 1 only where basic_io_uring's translation is exact (positional offsets, sendto and
//!   recvfrom with addresses, fallocate's argument order, fdatasync vs fsync, renameat2 flags,
//!   accept vs accept4, the legacy path forms via AT_FDCWD, …). stat/fstat/lstat/newfstatat
//!   are not statx and stay Tier 2.
//! - Tier 3 for calls that alter the process (fork, execve, exit, the mmap family, set*id, …)
//!   or whose meaning depends on the calling thread (gettid, sigprocmask, sched_setaffinity(0),
//!   prctl, setpriority(PRIO_PROCESS, 0), getcpu, …): running them on a pool thread would be wrong.
//! - Everything else is Tier 2: correct on any thread of the process.
#include <array>
#include <bitset>
#include <cstdint>

#include <ksvc/core/entry.hpp>
#include <ksvc/core/kernel.hpp>
#include <ksvc/core/operations.hpp>
#include <ksvc/core/route.hpp>
#include <ksvc/core/syscalls.hpp>

#if !defined(__x86_64__)
#error "ksvc's route table is defined for x86_64; aarch64 routing is future work (syscalls.hpp has its numbers)"
#endif

namespace ksvc::routing {

struct syscall_class {
    ksvc::tier tier = tier::legacy; //!< the tier when everything it needs is available
    opcode op = opcode::none;       //!< Tier-1 opcode
    bool worker_safe = false;       //!< may run on a worker thread (fallback for tiers 0 and 1)
    bool known = false;             //!< listed below (every native syscall is)
};

namespace detail {
namespace nr = ksvc::syscalls::x86_64;

struct tier1_row {
    std::uint32_t nr;
    opcode op;
};

// Tier 1: syscall -> opcode. basic_io_uring::translate has a case for each of these.
inline constexpr tier1_row io_uring_rows[] = {
    {nr::read, opcode::read}, {nr::write, opcode::write}, {nr::pread64, opcode::read},
    {nr::pwrite64, opcode::write}, {nr::readv, opcode::readv}, {nr::writev, opcode::writev},
    {nr::preadv, opcode::readv}, {nr::pwritev, opcode::writev}, {nr::preadv2, opcode::readv},
    {nr::pwritev2, opcode::writev}, {nr::open, opcode::openat}, {nr::creat, opcode::openat},
    {nr::openat, opcode::openat}, {nr::openat2, opcode::openat2}, {nr::close, opcode::close},
    {nr::statx, opcode::statx}, {nr::fsync, opcode::fsync}, {nr::fdatasync, opcode::fsync},
    {nr::sync_file_range, opcode::sync_file_range}, {nr::fallocate, opcode::fallocate},
    {nr::fadvise64, opcode::fadvise}, {nr::madvise, opcode::madvise}, {nr::ftruncate, opcode::ftruncate},
    {nr::socket, opcode::socket}, {nr::bind, opcode::bind}, {nr::listen, opcode::listen},
    {nr::accept, opcode::accept}, {nr::accept4, opcode::accept}, {nr::connect, opcode::connect},
    {nr::sendto, opcode::send}, {nr::recvfrom, opcode::recv}, {nr::sendmsg, opcode::sendmsg},
    {nr::recvmsg, opcode::recvmsg}, {nr::shutdown, opcode::shutdown},
    {nr::rename, opcode::renameat}, {nr::renameat, opcode::renameat}, {nr::renameat2, opcode::renameat},
    {nr::unlink, opcode::unlinkat}, {nr::rmdir, opcode::unlinkat}, {nr::unlinkat, opcode::unlinkat},
    {nr::mkdir, opcode::mkdirat}, {nr::mkdirat, opcode::mkdirat}, {nr::symlink, opcode::symlinkat},
    {nr::symlinkat, opcode::symlinkat}, {nr::link, opcode::linkat}, {nr::linkat, opcode::linkat},
    {nr::splice, opcode::splice}, {nr::tee, opcode::tee}, {nr::epoll_ctl, opcode::epoll_ctl},
    {nr::pipe, opcode::pipe}, {nr::pipe2, opcode::pipe},
};

// Tier 0: answered from the shared page. getppid is not here: reparenting changes it
// without any call of ours. Those it cannot answer for a given entry fall back
// to a worker, except clock_gettime (a thread CPU clock must be read by the caller's thread).
inline constexpr std::uint32_t shared_page_rows[] = {
    nr::getpid, nr::getuid, nr::geteuid, nr::getgid, nr::getegid, nr::getpgrp,
    nr::getpgid, nr::getsid, nr::getrlimit, nr::uname, nr::gettimeofday, nr::time,
};
inline constexpr std::uint32_t shared_page_caller_only_rows[] = {nr::clock_gettime};

// Tier 3: process-altering or bound to the calling thread.
inline constexpr std::uint32_t legacy_rows[] = {
    // process lifecycle
    nr::clone, nr::clone3, nr::fork, nr::vfork, nr::execve, nr::execveat, nr::exit, nr::exit_group,
    // the address space: mmap family, thread-local storage, LDT
    nr::mmap, nr::munmap, nr::mprotect, nr::mremap, nr::brk, nr::remap_file_pages, nr::pkey_mprotect,
    nr::pkey_alloc, nr::pkey_free, nr::shmat, nr::shmdt, nr::mbind, nr::set_mempolicy,
    nr::get_mempolicy, nr::set_mempolicy_home_node, nr::modify_ldt, nr::arch_prctl,
    nr::set_thread_area, nr::get_thread_area,
    // credentials (the raw syscalls change only the calling thread)
    nr::setuid, nr::setgid, nr::setreuid, nr::setregid, nr::setresuid, nr::setresgid, nr::setfsuid,
    nr::setfsgid, nr::setgroups, nr::capset, nr::capget,
    // signals and per-thread signal state
    nr::rt_sigaction, nr::rt_sigprocmask, nr::rt_sigreturn, nr::rt_sigsuspend, nr::rt_sigtimedwait,
    nr::rt_sigpending, nr::sigaltstack, nr::pause, nr::restart_syscall,
    // thread identity and per-thread attributes
    nr::gettid, nr::set_tid_address, nr::set_robust_list, nr::get_robust_list, nr::rseq, nr::getcpu,
    nr::prctl, nr::personality, nr::seccomp, nr::unshare, nr::setns, nr::chroot, nr::pivot_root,
    nr::landlock_restrict_self, nr::ptrace, nr::iopl, nr::ioperm, nr::sched_setaffinity,
    nr::sched_getaffinity, nr::sched_setscheduler, nr::sched_getscheduler, nr::sched_setparam,
    nr::sched_getparam, nr::sched_setattr, nr::sched_getattr, nr::sched_rr_get_interval,
    nr::setpriority, nr::getpriority, nr::ioprio_set, nr::ioprio_get, nr::getrusage,
    // rings owned by the caller's task
    nr::io_uring_setup, nr::io_uring_enter, nr::io_uring_register,
};

// Tier 2: correct on any thread; may block.
inline constexpr std::uint32_t worker_rows[] = {
    nr::stat, nr::fstat, nr::lstat, nr::newfstatat, nr::poll, nr::lseek, nr::ioctl, nr::access,
    nr::select, nr::getppid, nr::sched_yield, nr::msync, nr::mincore, nr::shmget, nr::shmctl, nr::dup, nr::dup2,
    nr::nanosleep, nr::getitimer, nr::alarm, nr::setitimer, nr::sendfile, nr::getsockname,
    nr::getpeername, nr::socketpair, nr::setsockopt, nr::getsockopt, nr::wait4, nr::kill, nr::semget,
    nr::semop, nr::semctl, nr::msgget, nr::msgsnd, nr::msgrcv, nr::msgctl, nr::fcntl, nr::flock,
    nr::truncate, nr::getdents, nr::getcwd, nr::chdir, nr::fchdir, nr::readlink, nr::chmod, nr::fchmod,
    nr::chown, nr::fchown, nr::lchown, nr::umask, nr::sysinfo, nr::times, nr::syslog, nr::setpgid,
    nr::setsid, nr::getgroups, nr::getresuid, nr::getresgid, nr::rt_sigqueueinfo, nr::utime,
    nr::mknod, nr::uselib, nr::ustat, nr::statfs, nr::fstatfs, nr::sysfs, nr::sched_get_priority_max,
    nr::sched_get_priority_min, nr::mlock, nr::munlock, nr::mlockall, nr::munlockall, nr::vhangup,
    nr::_sysctl, nr::adjtimex, nr::setrlimit, nr::sync, nr::acct, nr::settimeofday, nr::mount,
    nr::umount2, nr::swapon, nr::swapoff, nr::reboot, nr::sethostname, nr::setdomainname,
    nr::create_module, nr::init_module, nr::delete_module, nr::get_kernel_syms, nr::query_module,
    nr::quotactl, nr::nfsservctl, nr::getpmsg, nr::putpmsg, nr::afs_syscall, nr::tuxcall, nr::security,
    nr::readahead, nr::setxattr, nr::lsetxattr, nr::fsetxattr, nr::getxattr, nr::lgetxattr,
    nr::fgetxattr, nr::listxattr, nr::llistxattr, nr::flistxattr, nr::removexattr, nr::lremovexattr,
    nr::fremovexattr, nr::tkill, nr::futex, nr::io_setup, nr::io_destroy, nr::io_getevents,
    nr::io_submit, nr::io_cancel, nr::lookup_dcookie, nr::epoll_create, nr::epoll_ctl_old,
    nr::epoll_wait_old, nr::getdents64, nr::semtimedop, nr::timer_create, nr::timer_settime,
    nr::timer_gettime, nr::timer_getoverrun, nr::timer_delete, nr::clock_settime, nr::clock_getres,
    nr::clock_nanosleep, nr::epoll_wait, nr::tgkill, nr::utimes, nr::vserver, nr::mq_open,
    nr::mq_unlink, nr::mq_timedsend, nr::mq_timedreceive, nr::mq_notify, nr::mq_getsetattr,
    nr::kexec_load, nr::waitid, nr::add_key, nr::request_key, nr::keyctl, nr::inotify_init,
    nr::inotify_add_watch, nr::inotify_rm_watch, nr::migrate_pages, nr::mknodat, nr::fchownat,
    nr::futimesat, nr::readlinkat, nr::fchmodat, nr::faccessat, nr::pselect6, nr::ppoll,
    nr::vmsplice, nr::move_pages, nr::utimensat, nr::epoll_pwait, nr::signalfd, nr::timerfd_create,
    nr::eventfd, nr::timerfd_settime, nr::timerfd_gettime, nr::signalfd4, nr::eventfd2,
    nr::epoll_create1, nr::dup3, nr::inotify_init1, nr::rt_tgsigqueueinfo, nr::perf_event_open,
    nr::recvmmsg, nr::fanotify_init, nr::fanotify_mark, nr::prlimit64, nr::name_to_handle_at,
    nr::open_by_handle_at, nr::clock_adjtime, nr::syncfs, nr::sendmmsg, nr::process_vm_readv,
    nr::process_vm_writev, nr::kcmp, nr::finit_module, nr::getrandom, nr::memfd_create,
    nr::kexec_file_load, nr::bpf, nr::userfaultfd, nr::membarrier, nr::mlock2, nr::copy_file_range,
    nr::io_pgetevents, nr::pidfd_send_signal, nr::open_tree, nr::move_mount, nr::fsopen, nr::fsconfig,
    nr::fsmount, nr::fspick, nr::pidfd_open, nr::close_range, nr::pidfd_getfd, nr::faccessat2,
    nr::process_madvise, nr::epoll_pwait2, nr::mount_setattr, nr::quotactl_fd,
    nr::landlock_create_ruleset, nr::landlock_add_rule, nr::memfd_secret, nr::process_mrelease,
    nr::futex_waitv,
};

consteval std::array<syscall_class, nr::table_size> build() {
    std::array<syscall_class, nr::table_size> t{};
    auto set = [&](std::uint32_t n, syscall_class c) {
        if (t[n].known) throw "a syscall is listed twice in the route table";
        c.known = true;
        t[n] = c;
    };
    for (auto r : io_uring_rows) set(r.nr, {tier::io_uring, r.op, true});
    for (auto n : shared_page_rows) set(n, {tier::shared_page, opcode::none, true});
    for (auto n : shared_page_caller_only_rows) set(n, {tier::shared_page, opcode::none, false});
    for (auto n : legacy_rows) set(n, {tier::legacy, opcode::none, false});
    for (auto n : worker_rows) set(n, {tier::worker_pool, opcode::none, true});
    for (const auto& s : nr::names)
        if (!t[s.nr].known) throw "a native syscall is missing from the route table";
    return t;
}
} // namespace detail

//! Indexed by syscall number; numbers that are not syscalls have known == false (-> legacy).
inline constexpr std::array<syscall_class, syscalls::x86_64::table_size> x86_64_classes = detail::build();

constexpr syscall_class classify(std::uint32_t n) noexcept {
    return n < x86_64_classes.size() ? x86_64_classes[n] : syscall_class{};
}

//! Routes one syscall given which opcodes are usable; the common core of every router.
template <class HasOpcode>
constexpr route_info resolve(std::uint32_t n, HasOpcode&& has) noexcept {
    const syscall_class c = classify(n);
    if (!c.known) return {tier::legacy, opcode::none, false};
    if (c.tier == tier::io_uring && !has(c.op))
        return {c.worker_safe ? tier::worker_pool : tier::legacy, opcode::none, c.worker_safe};
    return {c.tier, c.op, c.worker_safe};
}

//! Routes a syscall given what the kernel has: resolve() plus the feature gates of single
//! routes — readv/writev at the current position need IORING_FEAT_RW_CUR_POS (5.6), not only
//! the opcode (5.1). constexpr: static_router builds its whole table with it at compile time.
template <class HasOpcode, class HasFeature>
constexpr route_info resolve(std::uint32_t n, HasOpcode&& has, HasFeature&& has_feature) noexcept {
    namespace nr = ksvc::syscalls::x86_64;
    route_info r = resolve(n, has);
    if (r.tier == tier::io_uring && (n == nr::readv || n == nr::writev) && !has_feature(ring_feature::rw_cur_pos))
        r = {tier::worker_pool, opcode::none, true};
    return r;
}

//! The same for a capability snapshot (probe_router).
inline route_info resolve(std::uint32_t n, const capabilities& caps) noexcept {
    return resolve(n, [&](opcode op) { return caps.has(op); }, [&](std::uint32_t f) { return caps.has_feature(f); });
}

//! Routes an operation number (operations.hpp) for a kernel of version `v` with opcodes `has`:
//! native from its kernel on, emulated where its table row says so and the base opcode exists,
//! else refused (tier::legacy; the dispatcher answers errc::unsupported). No operation may run
//! on a worker.
template <class HasOpcode>
constexpr route_info resolve_operation(std::uint32_t n, HasOpcode&& has, kernel_version v) noexcept {
    // By index, not through info()'s pointer: GCC's UBSan instrumentation makes a null check on
    // a pointer into a constexpr table a non-constant expression.
    if (n < operation_base || n - operation_base >= operation_table.size()) return {tier::legacy, opcode::none, false};
    const operation_info& i = operation_table[n - operation_base];
    if (i.code == opcode::none || !has(i.code)) return {tier::legacy, opcode::none, false};
    if (v >= i.since) return {tier::io_uring, i.code, false};
    if (i.below == fallback::emulated) return {tier::io_uring, i.code, false, true};
    return {tier::legacy, opcode::none, false};
}

inline route_info resolve_operation(std::uint32_t n, const capabilities& caps) noexcept {
    return resolve_operation(n, [&](opcode op) { return caps.has(op); }, caps.version);
}

//! What a backend executes, as routes: the Tier-1 syscalls it serves and the route of every
//! operation. probe_router is built from the configured backend's offer, so every backend gets
//! correct routes — an epoll backend serves sockets and pipes and sends files to the workers;
//! an io_uring backend serves what the probed kernel has.
struct backend_offer {
    const char* backend = "io_uring";                       //!< for ksvc-probe and logs
    std::bitset<syscalls::x86_64::table_size> syscalls;     //!< Tier-1 rows it executes
    std::array<route_info, operation_count> operations{};   //!< tier::legacy: refused
};

//! An io_uring backend's offer on the kernel of `caps` (nothing when io_uring is unavailable).
inline backend_offer uring_offer(const capabilities& caps) {
    backend_offer o;
    for (const auto& row : detail::io_uring_rows)
        o.syscalls[row.nr] = resolve(row.nr, caps).tier == tier::io_uring;
    for (std::uint32_t i = 0; i < operation_count; ++i) o.operations[i] = resolve_operation(operation_base + i, caps);
    return o;
}

//! Routes syscall or operation `n` for a backend's offer: a Tier-1 syscall the backend does not
//! execute goes to the workers (or Tier 3 when it may not run on another thread).
inline route_info resolve(std::uint32_t n, const backend_offer& o) noexcept {
    if (n - operation_base < operation_count) return o.operations[n - operation_base];
    const syscall_class c = classify(n);
    if (!c.known) return {tier::legacy, opcode::none, false};
    if (c.tier == tier::io_uring && !o.syscalls[n])
        return {c.worker_safe ? tier::worker_pool : tier::legacy, opcode::none, c.worker_safe};
    return {c.tier, c.op, c.worker_safe};
}

//! Whether this entry acts on the calling thread although its syscall usually does not
//! (perf_event_open for pid 0, close_range with CLOSE_RANGE_UNSHARE, wait4/waitid with
//! __WNOTHREAD): it must run on the caller's thread, never on a pool thread.
constexpr bool thread_bound(const submit_entry& e) noexcept {
    namespace nr = ksvc::syscalls::x86_64;
    switch (e.nr) {
    case nr::perf_event_open: // (attr, pid, cpu, group_fd, flags): pid 0 = this thread
        return static_cast<int>(e.args[1]) == 0 && !(e.args[4] & 4u /* PERF_FLAG_PID_CGROUP */);
    case nr::close_range: return e.args[2] & 2u; // CLOSE_RANGE_UNSHARE unshares this thread's table
    case nr::wait4: return e.args[2] & 0x20000000u; // __WNOTHREAD
    case nr::waitid: return e.args[3] & 0x20000000u;
    default: return false;
    }
}

//! Whether a worker may run this entry: its route allows it, it names no ring resource
//! (a registered-file index or a buffer group means nothing to syscall(2)) and it is not
//! bound to the calling thread.
constexpr bool worker_safe(const submit_entry& e, route_info r) noexcept {
    constexpr std::uint32_t ring_only = entry_flags::fixed_file | entry_flags::buffer_select;
    return r.worker_safe && !(e.flags & ring_only) && !thread_bound(e);
}

//! Syscalls that can raise SIGPIPE (a write to a pipe or socket whose reader is gone).
constexpr bool may_raise_sigpipe(std::uint32_t n) noexcept {
    namespace nr = ksvc::syscalls::x86_64;
    switch (n) {
    case nr::write: case nr::writev: case nr::pwrite64: case nr::pwritev: case nr::pwritev2:
    case nr::sendto: case nr::sendmsg: case nr::sendmmsg: case nr::splice: case nr::tee:
    case nr::vmsplice: case nr::sendfile: case nr::copy_file_range: return true;
    default: return false;
    }
}

} // namespace ksvc::routing
