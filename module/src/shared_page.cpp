#include <ksvc/module/shared_page/process_shared_page.hpp>

#include <cerrno>
#include <cstring>
#include <ctime>

#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>

#include <ksvc/core/syscalls.hpp>
#include <ksvc/module/process.hpp>

namespace ksvc {
namespace nr = syscalls::x86_64;

void process_shared_page::refresh() noexcept {
    pid_.store(::getpid(), std::memory_order_relaxed);
    ppid_.store(::getppid(), std::memory_order_relaxed);
    pgid_.store(::getpgrp(), std::memory_order_relaxed);
    sid_.store(::getsid(0), std::memory_order_relaxed);
    uid_.store(::getuid(), std::memory_order_relaxed);
    gid_.store(::getgid(), std::memory_order_relaxed);
    euid_.store(::geteuid(), std::memory_order_relaxed);
    egid_.store(::getegid(), std::memory_order_relaxed);
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    nofile_cur_.store(rl.rlim_cur, std::memory_order_relaxed);
    nofile_max_.store(rl.rlim_max, std::memory_order_relaxed);
    {
        std::lock_guard lock(uts_mutex_);
        ::uname(&uts_);
    }
    generation_.store(process::fork_generation(), std::memory_order_release);
}

bool process_shared_page::answer(const submit_entry& e, std::int64_t& r) const noexcept {
    const auto* a = e.args;
    switch (e.nr) {
    case nr::getpid: r = pid(); break;
    case nr::getuid: r = uid(); break;
    case nr::geteuid: r = euid(); break;
    case nr::getgid: r = gid(); break;
    case nr::getegid: r = egid(); break;
    case nr::getpgrp: r = pgid(); break;
    case nr::getpgid:
    case nr::getsid: {
        const auto pid = static_cast<long>(static_cast<int>(a[0]));
        if (pid != 0 && pid != this->pid()) return false; // another process: ask the kernel
        r = e.nr == nr::getpgid ? pgid() : sid();
        break;
    }
    // The answers below write into user memory: through process::copy_to_user, so a bad
    // pointer gives EFAULT as the syscall does, never a crash of the answering thread.
    case nr::getrlimit: {
        if (static_cast<int>(a[0]) != RLIMIT_NOFILE || a[1] == 0) return false;
        const rlimit out{rlimit_nofile(), nofile_max_.load(std::memory_order_relaxed)};
        r = process::copy_to_user(reinterpret_cast<void*>(a[1]), &out, sizeof out) ? 0 : -EFAULT;
        break;
    }
    case nr::uname: {
        if (a[0] == 0) return false; // EFAULT comes from the kernel
        (void)pid(); // refresh first if inherited across fork
        struct utsname copy;
        {
            std::lock_guard lock(uts_mutex_);
            copy = uts_;
        }
        r = process::copy_to_user(reinterpret_cast<void*>(a[0]), &copy, sizeof copy) ? 0 : -EFAULT;
        break;
    }
    case nr::gettimeofday: { // vDSO: no syscall
        timeval tv{};
        struct timezone tz {};
        if (::gettimeofday(&tv, &tz) != 0) {
            r = -static_cast<std::int64_t>(errno);
            break;
        }
        const bool ok = (a[0] == 0 || process::copy_to_user(reinterpret_cast<void*>(a[0]), &tv, sizeof tv)) &&
                        (a[1] == 0 || process::copy_to_user(reinterpret_cast<void*>(a[1]), &tz, sizeof tz));
        r = ok ? 0 : -EFAULT;
        break;
    }
    case nr::time: {
        const std::time_t t = ::time(nullptr);
        if (a[0] && !process::copy_to_user(reinterpret_cast<void*>(a[0]), &t, sizeof t)) {
            r = -EFAULT;
            break;
        }
        r = t;
        break;
    }
    case nr::clock_gettime: {
        const auto clk = static_cast<clockid_t>(a[0]);
        // Thread CPU clocks name the calling thread: only the caller can read them.
        if (clk == CLOCK_THREAD_CPUTIME_ID || (clk < 0 && (clk & 4) && (clk & 3) != 3)) return false;
        timespec ts{};
        if (::clock_gettime(clk, &ts) != 0) {
            r = -static_cast<std::int64_t>(errno);
            break;
        }
        r = process::copy_to_user(reinterpret_cast<void*>(a[1]), &ts, sizeof ts) ? 0 : -EFAULT;
        break;
    }
    default: return false;
    }
    answered_.fetch_add(1, std::memory_order_relaxed);
    return true;
}

} // namespace ksvc
